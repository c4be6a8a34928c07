/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a backup run tells the world when it ends: the --on-failure hook
 * (a command that gets the run's JSON on stdin and its status in the
 * environment, when the run did not fully succeed) and the
 * --metrics-file (a Prometheus node-exporter textfile, replaced
 * atomically after every run). See the README, "Notifications and
 * metrics", and docs/json.md for the hook's document.
 */
#include "agent/cli/cli.h"
#include "agent/client/event.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void
cli_run_init(struct cli_run *r)
{
    memset(r, 0, sizeof *r);
    r->domains = json_object_new_array();
    r->start = lb_wall_time();
    r->start_ns = lb_now_ns();
}

static struct json_object *
find(struct cli_run *r, const char *domain)
{
    for (size_t i = 0; i < json_object_array_length(r->domains); i++) {
        struct json_object *d = json_object_array_get_idx(r->domains, i);
        const char *n = agent_event_str(d, "domain");
        if (n && strcmp(n, domain) == 0)
            return d;
    }
    return NULL;
}

void
cli_run_add(struct cli_run *r, const char *domain, const char *status,
            int exit_status, struct json_object *result)
{
    struct json_object *d = json_object_new_object();

    json_object_object_add(d, "domain", json_object_new_string(domain));
    json_object_object_add(d, "status", json_object_new_string(status));
    json_object_object_add(d, "exit_status", json_object_new_int(exit_status));
    json_object_object_add(d, "result", result);
    json_object_array_add(r->domains, d);
}

void
cli_run_last_success(struct cli_run *r, const char *domain, int64_t t)
{
    struct json_object *d = find(r, domain);

    if (d && t > 0)
        json_object_object_add(d, "last_success_time",
                               json_object_new_int64(t));
}

/* A number field of a domain's result, or -1. */
static double
result_num(struct json_object *d, const char *key)
{
    struct json_object *res, *v;

    if (!json_object_object_get_ex(d, "result", &res) ||
        !json_object_object_get_ex(res, key, &v) ||
        !(json_object_is_type(v, json_type_int) ||
          json_object_is_type(v, json_type_double)))
        return -1;
    return json_object_get_double(v);
}

/* The value of a Prometheus label: \, " and newline escaped. */
static void
label(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static const struct {
    const char *name, *help, *key; /* key: of the result, or NULL */
} metrics[] = {
    {"livebackup_last_run_exit_status",
     "Exit status of the last backup run (0 ok, 1 failed, 3 warning)", NULL},
    {"livebackup_last_run_timestamp_seconds", "When the last backup run ended",
     NULL},
    {"livebackup_last_success_timestamp_seconds",
     "When the last backup that committed ended", NULL},
    {"livebackup_last_run_duration_seconds",
     "Duration of the last committed backup", "seconds"},
    {"livebackup_last_run_read_bytes",
     "Bytes the last committed backup read from the disks", "bytes_read"},
    {"livebackup_last_run_sent_bytes",
     "Bytes the last committed backup sent to the repository", "bytes_sent"},
    {"livebackup_last_run_frozen_milliseconds",
     "How long the last committed backup kept the guest frozen", "freeze_ms"},
};

static void
metric_rows(FILE *f, struct cli_run *r, size_t m, int64_t now)
{
    fprintf(f, "# HELP %s %s.\n# TYPE %s gauge\n", metrics[m].name,
            metrics[m].help, metrics[m].name);
    for (size_t i = 0; i < json_object_array_length(r->domains); i++) {
        struct json_object *d = json_object_array_get_idx(r->domains, i), *v;
        double x = -1;

        if (m == 0 && json_object_object_get_ex(d, "exit_status", &v))
            x = json_object_get_int(v);
        else if (m == 1)
            x = (double)now;
        else if (m == 2 &&
                 json_object_object_get_ex(d, "last_success_time", &v))
            x = (double)json_object_get_int64(v);
        else if (metrics[m].key)
            x = result_num(d, metrics[m].key);
        if (x < 0)
            continue;
        fprintf(f, "%s{domain=\"", metrics[m].name);
        label(f, agent_event_str(d, "domain"));
        fprintf(f, "\"} %.15g\n", x);
    }
}

/* Write the textfile next to path and rename it over path: the node
 * exporter never reads half a file. */
static int
write_metrics(struct cli_run *r, const char *path)
{
    CLEANUP_FREE char *tmp = lb_xasprintf("%s.%ld.tmp", path, (long)getpid());
    int64_t now = lb_wall_time();
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    FILE *f;
    int err = 0;

    if (fd < 0)
        return lb_error(errno, "metrics file %s", tmp);
    f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return lb_error(errno, "metrics file %s", tmp);
    }
    for (size_t m = 0; m < LB_ARRAY_SIZE(metrics); m++)
        metric_rows(f, r, m, now);
    if (fflush(f) != 0 || fsync(fileno(f)) < 0)
        err = errno;
    if (fclose(f) != 0 && !err)
        err = errno;
    if (!err && rename(tmp, path) < 0)
        err = errno;
    if (err) {
        unlink(tmp);
        return lb_error(err, "metrics file %s", path);
    }
    return 0;
}

/* Run cmd with /bin/sh, doc on its stdin (a deleted temporary file: a
 * hook that reads nothing never blocks us), the status in its env. */
static int
run_hook(const char *cmd, const char *doc, const char *status, int exit_status)
{
    char tmpl[] = "/tmp/livebackup-hook-XXXXXX";
    int fd = mkostemp(tmpl, O_CLOEXEC), ws;
    size_t len = strlen(doc);
    pid_t pid;

    if (fd < 0)
        return lb_error(errno, "--on-failure: temporary file");
    unlink(tmpl);
    if (lb_write_full(fd, doc, len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        close(fd);
        return lb_error(errno, "--on-failure: temporary file");
    }
    pid = fork();
    if (pid < 0) {
        close(fd);
        return lb_error(errno, "--on-failure: fork");
    }
    if (pid == 0) {
        char es[16];
        snprintf(es, sizeof es, "%d", exit_status);
        dup2(fd, 0);
        dup2(2, 1); /* stdout is --json's: the hook's output is a message */
        setenv("LIVEBACKUP_STATUS", status, 1);
        setenv("LIVEBACKUP_EXIT_STATUS", es, 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fd);
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR)
            return lb_error(errno, "--on-failure: wait");
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        return lb_fail(EIO, "--on-failure command '%s' failed (status %d)", cmd,
                       WIFEXITED(ws) ? WEXITSTATUS(ws) : 128);
    return 0;
}

void
cli_run_finish(struct cli_run *r, const struct cli_notify *n, int exit_status)
{
    const char *status = exit_status == LB_EXIT_OK        ? "ok"
                         : exit_status == LB_EXIT_WARNING ? "warning"
                                                          : "failed";

    if (n->metrics_file && write_metrics(r, n->metrics_file) < 0)
        lb_warn("%s", lb_error_msg());
    if (n->on_failure && *n->on_failure && exit_status != LB_EXIT_OK) {
        struct json_object *o = json_object_new_object();
        char secs[32];

        snprintf(secs, sizeof secs, "%.3f",
                 (double)(lb_now_ns() - r->start_ns) / 1e9);
        json_object_object_add(o, "event", json_object_new_string("run"));
        json_object_object_add(o, "status", json_object_new_string(status));
        json_object_object_add(o, "exit_status",
                               json_object_new_int(exit_status));
        json_object_object_add(o, "time", json_object_new_int64(r->start));
        json_object_object_add(o, "seconds",
                               agent_event_value("seconds", secs));
        json_object_object_add(o, "results", json_object_get(r->domains));
        if (run_hook(
                n->on_failure,
                json_object_to_json_string_ext(
                    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                status, exit_status) < 0)
            lb_warn("%s", lb_error_msg());
        json_object_put(o);
    }
    json_object_put(r->domains);
    r->domains = NULL;
}
