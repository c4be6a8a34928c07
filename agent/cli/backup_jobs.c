/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * `livebackup backup -j N`: each domain in its own child process (a crash
 * in one never touches the others), N at a time; the parent reads each
 * child's JSON result (json-c), prints a row per domain (ok, WARN,
 * FAILED) as it ends, and hands the results to the run (notify.c).
 */
#include "agent/cli/cli.h"
#include "agent/client/event.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- several domains at once (-j N) ------------------------------------- */

struct child {
    const char *name;
    pid_t pid;
    int fd;
    struct lb_buf out;
    int status; /* LB_EXIT_OK, _WARNING or _FAILURE */
};

/* The last summary or error event of a child's output (a JSON object per
 * line; other lines are skipped), or NULL. */
static struct json_object *
child_result(struct lb_buf *out)
{
    struct json_object *last = NULL;
    const char *p = (const char *)out->data, *end = p + out->len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        struct json_tokener *tok = json_tokener_new();
        struct json_object *o =
            len ? json_tokener_parse_ex(tok, p, (int)LB_MIN(len, INT_MAX))
                : NULL;
        const char *ev = agent_event_str(o, "event");

        if (o && json_tokener_get_parse_end(tok) == len && ev &&
            (strcmp(ev, "summary") == 0 || strcmp(ev, "error") == 0)) {
            json_object_put(last);
            last = o;
        } else {
            json_object_put(o);
        }
        json_tokener_free(tok);
        p += len + 1;
    }
    return last;
}

/* A field of a child's event as text, or def (a child is another
 * process: what it printed is checked, not trusted). */
static const char *
field(struct json_object *j, const char *key, const char *def)
{
    struct json_object *f;

    if (!json_object_object_get_ex(j, key, &f) || !f)
        return def;
    return json_object_get_string(f);
}

static const char *
result_word(int status)
{
    return status == LB_EXIT_OK        ? "ok"
           : status == LB_EXIT_WARNING ? "warning"
                                       : "failed";
}

/* One line per domain as it finishes, the names nw columns wide; the
 * result goes to run. */
static void
report_child(struct child *c, struct cli_run *run, int nw)
{
    struct json_object *j = child_result(&c->out);
    const char *msg = agent_event_str(j, "message");
    const char *ev = agent_event_str(j, "event");

    if (!j || !ev ||
        (strcmp(ev, "summary") != 0 && c->status != LB_EXIT_FAILURE)) {
        /* No result: a crash, or a summary it never printed. */
        json_object_put(j);
        j = json_object_new_object();
        json_object_object_add(j, "event", json_object_new_string("error"));
        json_object_object_add(j, "domain", json_object_new_string(c->name));
        json_object_object_add(
            j, "message",
            json_object_new_string("no result: see the messages above"));
        c->status = LB_EXIT_FAILURE;
    }
    if (agent_opts.json) {
        agent_event_print(j);
    } else {
        /* the child's words (and the repository's in them) as text */
        CLEANUP_FREE char *name = lb_term_line(c->name);
        CLEANUP_FREE char *line = NULL, *safe = NULL;
        if (c->status != LB_EXIT_FAILURE)
            line = lb_xasprintf(
                "%-*s %-7s %s %-11s %s, frozen %s ms, sent %s bytes in %s s",
                lb_pad_width(name, nw), name,
                c->status == LB_EXIT_OK ? "ok" : "WARN", field(j, "id", "?"),
                field(j, "kind", "?"), field(j, "consistency", "?"),
                field(j, "freeze_ms", "0"), field(j, "bytes_received", "?"),
                field(j, "seconds", "?"));
        else
            line =
                lb_xasprintf("%-*s FAILED  %s", lb_pad_width(name, nw), name,
                             msg ? msg : "(no result: see the messages above)");
        safe = lb_term_safe(line);
        printf("%s\n", safe);
        if (c->status == LB_EXIT_WARNING) {
            CLEANUP_FREE char *w =
                lb_term_safe(field(j, "warning", "(see the messages above)"));
            printf("%-*s %-7s %s\n", nw, "", "", w);
        }
    }
    fflush(stdout);
    cli_run_add(run, c->name, result_word(c->status), c->status, j);
}

/*
 * Back up names[] with up to jobs children at a time, each one
 * `livebackup backup NAME --json OPTIONS`: a crash in one never touches
 * the others. --bwlimit is the host's: each child gets an equal share.
 * Each result goes to run; returns the number that failed.
 */
size_t
cli_backup_jobs(int opt_argc, char **opt_argv, unsigned jobs, char **names,
                size_t n, struct cli_run *run)
{
    struct child *c = lb_xcalloc(n, sizeof *c);
    size_t next = 0, running = 0, failed = 0;
    char rate[24] = "";
    int nw = 20;

    lb_fault_point("agent:jobs-start");
    if (agent_opts.bwlimit) {
        uint64_t share = agent_opts.bwlimit / LB_MIN((uint64_t)jobs, n);
        snprintf(rate, sizeof rate, "%llu",
                 (unsigned long long)LB_MAX(share, 1));
    }
    for (size_t i = 0; i < n; i++)
        nw = LB_MAX(nw, lb_text_cols(names[i]));
    if (!agent_opts.json)
        printf("%-*s %-7s %s\n", nw, "DOMAIN", "RESULT", "BACKUP");
    while (next < n || running) {
        struct pollfd pfd[64];
        size_t idx[64], np = 0;

        while (next < n && running < jobs) {
            struct child *k = &c[next];
            int p[2];
            char **argv = lb_xcalloc((size_t)opt_argc + 10, sizeof *argv);
            int ac = 0;

            k->name = names[next++];
            argv[ac++] = "livebackup";
            argv[ac++] = "backup";
            argv[ac++] = (char *)k->name;
            argv[ac++] = "--json";
            for (int i = 0; i < opt_argc; i++) {
                const char *o = opt_argv[i];
                if (strcmp(o, "--all") == 0 || strcmp(o, "--json") == 0)
                    continue;
                if (strcmp(o, "-j") == 0 || strcmp(o, "--jobs") == 0) {
                    i++;
                    continue;
                }
                if (strncmp(o, "-j", 2) == 0 || strncmp(o, "--jobs=", 7) == 0 ||
                    strncmp(o, "--bwlimit=", 10) == 0 ||
                    strncmp(o, "--on-failure=", 13) == 0 ||
                    strncmp(o, "--metrics-file=", 15) == 0)
                    continue;
                /* The run's hook and metrics are the parent's. */
                if (strcmp(o, "--bwlimit") == 0 ||
                    strcmp(o, "--on-failure") == 0 ||
                    strcmp(o, "--metrics-file") == 0) {
                    i++;
                    continue;
                }
                argv[ac++] = (char *)o;
            }
            if (rate[0]) {
                argv[ac++] = "--bwlimit";
                argv[ac++] = rate;
            }
            /* The parent runs the hook and writes the metrics, for the
             * whole run: the children turn off configured ones (file or
             * environment). */
            argv[ac++] = "--on-failure=";
            argv[ac++] = "--metrics-file=";
            argv[ac] = NULL;
            if (pipe2(p, O_CLOEXEC) < 0) {
                free(argv);
                k->pid = -1;
                k->status = LB_EXIT_FAILURE;
                failed++;
                report_child(k, run, nw);
                continue;
            }
            k->pid = fork();
            if (k->pid == 0) {
                dup2(p[1], 1);
                /* This very program, even if its file was replaced (a
                 * package upgrade) while the run goes on. */
                execv("/proc/self/exe", argv);
                _exit(127);
            }
            free(argv);
            close(p[1]);
            k->fd = p[0];
            running++;
        }
        for (size_t i = 0; i < n && np < LB_ARRAY_SIZE(pfd); i++)
            if (c[i].pid > 0 && c[i].fd >= 0) {
                pfd[np] = (struct pollfd){c[i].fd, POLLIN, 0};
                idx[np++] = i;
            }
        if (np == 0)
            break;
        if (poll(pfd, np, -1) < 0 && errno != EINTR)
            break;
        for (size_t i = 0; i < np; i++) {
            struct child *k = &c[idx[i]];
            char buf[4096];
            ssize_t r;
            int status;

            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            r = read(k->fd, buf, sizeof buf);
            if (r > 0) {
                lb_buf_append(&k->out, buf, (size_t)r);
                continue;
            }
            close(k->fd);
            k->fd = -1;
            waitpid(k->pid, &status, 0);
            k->status = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
            if (k->status != LB_EXIT_OK && k->status != LB_EXIT_WARNING)
                k->status = LB_EXIT_FAILURE;
            failed += k->status == LB_EXIT_FAILURE;
            running--;
            report_child(k, run, nw);
        }
    }
    for (size_t i = 0; i < n; i++)
        lb_buf_free(&c[i].out);
    free(c);
    return failed;
}
