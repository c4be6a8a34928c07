/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Domain commands: backup, recover, status, untrack.
 */
#include "agent/cli/cli.h"
#include "agent/live/live.h"
#include "common/json.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

struct dom_args {
    const char *repo, *uri;
    bool all;
    unsigned jobs;
    char **opt_argv; /* the options, for child runs (-j) */
    int opt_argc;
    struct livebk_opts o;
    char **names;
    size_t nnames;
    char *disks_arg;
};

static void
free_args(struct dom_args *a)
{
    free(a->o.disks);
    free(a->disks_arg);
    a->o.disks = NULL;
    a->o.ndisks = 0;
    a->disks_arg = NULL;
}

static int
parse_dom_args(int argc, char **argv, const char *cmd, bool need_repo,
               bool need_names, struct dom_args *a)
{
    struct cli_getopt g;
    int c;

    memset(a, 0, sizeof *a);
    a->jobs = 1;
    a->uri = getenv("LIVEBACKUP_DEFAULT_URI");
    if (!a->uri || !*a->uri)
        a->uri = "qemu:///system";
    a->o.freeze_timeout = 10;
    cli_getopt(cmd, &g);
    optind = 1;
    while ((c = getopt_long(argc, argv, g.shortopts, g.opts, NULL)) != -1) {
        int k = agent_common_opt(c, optarg);
        if (k < 0)
            return 2;
        if (k)
            continue;
        switch (c) {
        case 'r':
            a->repo = optarg;
            break;
        case 'c':
            a->uri = optarg;
            break;
        case 'F':
            a->o.full = true;
            break;
        case 'd': {
            char *save = NULL;
            a->disks_arg = lb_xstrdup(optarg);
            for (char *t = strtok_r(a->disks_arg, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                a->o.disks = lb_xrealloc(a->o.disks, (a->o.ndisks + 1) *
                                                         sizeof *a->o.disks);
                a->o.disks[a->o.ndisks++] = t;
            }
            break;
        }
        case 'C':
            if (strcmp(optarg, "quiesce") == 0)
                a->o.crash = false;
            else if (strcmp(optarg, "crash") == 0)
                a->o.crash = true;
            else {
                fprintf(stderr, "livebackup: --consistency quiesce or crash\n");
                return 2;
            }
            break;
        case 't':
            a->o.freeze_timeout = (unsigned)strtoul(optarg, NULL, 10);
            if (a->o.freeze_timeout == 0) {
                fprintf(stderr, "livebackup: --freeze-timeout SECONDS (> 0)\n");
                return 2;
            }
            break;
        case 'o':
            a->o.overlay_dir = optarg;
            break;
        case 's':
            setenv("LIVEBACKUP_STATE_DIR", optarg, 1);
            break;
        case 'a':
            a->all = true;
            break;
        case 'j':
            a->jobs = (unsigned)strtoul(optarg, NULL, 10);
            if (a->jobs == 0 || a->jobs > 64) {
                fprintf(stderr, "livebackup: -j N: 1 to 64 domains at once\n");
                return 2;
            }
            break;
        case 'B':
            a->o.background_commit = true;
            break;
        case 'E':
            a->o.full_every = (unsigned)strtoul(optarg, NULL, 10);
            if (a->o.full_every == 0) {
                fprintf(stderr, "livebackup: --full-every N (N >= 1)\n");
                return 2;
            }
            break;
        case 'h':
            free_args(a);
            exit(cli_help(cmd));
        default:
            free_args(a);
            return cli_usage(cmd, NULL);
        }
    }
    a->names = argv + optind;
    a->nnames = (size_t)(argc - optind);
    /* getopt moved the operands to the end: argv[1..optind) are options */
    a->opt_argv = argv + 1;
    a->opt_argc = optind - 1;
    if (need_names && a->nnames == 0 && !a->all) {
        free_args(a);
        return cli_usage(cmd, "name a DOMAIN%s",
                         strcmp(cmd, "backup") == 0 ? " (or --all)" : "");
    }
    if (need_repo && !(a->repo = cli_need_repo(cmd, a->repo))) {
        free_args(a);
        return 2;
    }
    return 0;
}

/* Lock and load one domain. */
static int
open_dom(struct livebk *b, struct agent_virt *v, const char *name,
         const struct livebk_opts *o)
{
    memset(b, 0, sizeof *b);
    b->o = o;
    b->v = v;
    if (agent_virt_lookup(v, name, &b->dom) < 0)
        return -1;
    b->h = track_open(b->dom.uuid, b->dom.name, &b->st);
    if (!b->h) {
        agent_dom_free(&b->dom);
        return -1;
    }
    return 0;
}

static void
close_dom(struct livebk *b)
{
    track_close(b->h);
    agent_dom_free(&b->dom);
}

/* Every domain with at least one disk (for --all). */
static int
all_domains(struct agent_virt *v, char ***names, size_t *n)
{
    char **all;
    size_t na;

    *names = NULL;
    *n = 0;
    if (agent_virt_list(v, &all, &na) < 0)
        return -1;
    *names = lb_xcalloc(na + 1, sizeof **names);
    for (size_t i = 0; i < na; i++) {
        struct agent_dom d;
        struct agent_vdisk *vd;
        size_t nd = 0, disks = 0;
        if (agent_virt_lookup(v, all[i], &d) == 0 &&
            agent_virt_disks(&d, !d.running, &vd, &nd) == 0) {
            for (size_t k = 0; k < nd; k++)
                disks += strcmp(vd[k].device, "disk") == 0 && vd[k].source &&
                         !vd[k].readonly && !vd[k].shareable;
            agent_vdisks_free(vd, nd);
        }
        agent_dom_free(&d);
        if (disks)
            (*names)[(*n)++] = all[i];
        else
            free(all[i]);
    }
    free(all);
    return 0;
}

/* ---- several domains at once (-j N) ------------------------------------- */

struct child {
    const char *name;
    pid_t pid;
    int fd;
    struct lb_buf out;
    bool ok;
    char *line; /* the summary or error event */
};

/* One line per domain as it finishes. */
static void
report_child(struct child *c)
{
    struct lb_json *j = NULL;

    /* The last summary or error event of its output. */
    lb_buf_put_u8(&c->out, 0);
    for (char *line = strtok((char *)c->out.data, "\n"); line;
         line = strtok(NULL, "\n")) {
        if (strstr(line, "\"event\":\"summary\"") ||
            strstr(line, "\"event\":\"error\"")) {
            free(c->line);
            c->line = lb_xstrdup(line);
        }
    }
    if (c->line) {
        char err[64];
        j = lb_json_parse(c->line, strlen(c->line), err, sizeof err);
    }
    if (agent_opts.json) {
        if (c->line)
            printf("%s\n", c->line);
        else
            printf("{\"event\":\"error\",\"domain\":\"%s\",\"message\":\"no "
                   "result\"}\n",
                   c->name);
    } else if (c->ok && j) {
        printf("%-20s ok      %s %-11s %s, frozen %s ms, sent %s bytes in %s "
               "s\n",
               c->name, lb_json_str(lb_json_get(j, "id")),
               lb_json_str(lb_json_get(j, "kind")),
               lb_json_str(lb_json_get(j, "consistency")),
               lb_json_get(j, "freeze_ms") ? lb_json_get(j, "freeze_ms")->str
                                           : "0",
               lb_json_get(j, "bytes_received")
                   ? lb_json_get(j, "bytes_received")->str
                   : "?",
               lb_json_str(lb_json_get(j, "seconds")));
    } else {
        printf("%-20s FAILED  %s\n", c->name,
               j && lb_json_str(lb_json_get(j, "message"))
                   ? lb_json_str(lb_json_get(j, "message"))
                   : "(no result: see the messages above)");
    }
    fflush(stdout);
    lb_json_free(j);
}

/*
 * Back up names[] with up to jobs children at a time, each one
 * `livebackup backup NAME --json OPTIONS`: a crash in one never touches
 * the others. --bwlimit is the host's: each child gets an equal share.
 * Returns the number that failed.
 */
static size_t
backup_parallel(const struct dom_args *a, char **names, size_t n)
{
    struct child *c = lb_xcalloc(n, sizeof *c);
    size_t next = 0, running = 0, failed = 0;
    char exe[4096], rate[24] = "";
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);

    if (el <= 0) {
        free(c);
        return n;
    }
    exe[el] = '\0';
    if (agent_opts.bwlimit) {
        uint64_t share = agent_opts.bwlimit / LB_MIN((uint64_t)a->jobs, n);
        snprintf(rate, sizeof rate, "%llu",
                 (unsigned long long)LB_MAX(share, 1));
    }
    if (!agent_opts.json)
        printf("%-20s %-7s %s\n", "DOMAIN", "RESULT", "BACKUP");
    while (next < n || running) {
        struct pollfd pfd[64];
        size_t idx[64], np = 0;

        while (next < n && running < a->jobs) {
            struct child *k = &c[next];
            int p[2];
            char **argv = lb_xcalloc((size_t)a->opt_argc + 8, sizeof *argv);
            int ac = 0;

            k->name = names[next++];
            argv[ac++] = exe;
            argv[ac++] = "backup";
            argv[ac++] = (char *)k->name;
            argv[ac++] = "--json";
            for (int i = 0; i < a->opt_argc; i++) {
                const char *o = a->opt_argv[i];
                if (strcmp(o, "--all") == 0 || strcmp(o, "--json") == 0)
                    continue;
                if (strcmp(o, "-j") == 0 || strcmp(o, "--jobs") == 0) {
                    i++;
                    continue;
                }
                if (strncmp(o, "-j", 2) == 0 || strncmp(o, "--jobs=", 7) == 0 ||
                    strncmp(o, "--bwlimit=", 10) == 0)
                    continue;
                if (strcmp(o, "--bwlimit") == 0) {
                    i++;
                    continue;
                }
                argv[ac++] = (char *)o;
            }
            if (rate[0]) {
                argv[ac++] = "--bwlimit";
                argv[ac++] = rate;
            }
            argv[ac] = NULL;
            if (pipe2(p, O_CLOEXEC) < 0) {
                free(argv);
                k->pid = -1;
                failed++;
                report_child(k);
                continue;
            }
            k->pid = fork();
            if (k->pid == 0) {
                dup2(p[1], 1);
                execv(exe, argv);
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
            k->ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            failed += !k->ok;
            running--;
            report_child(k);
        }
    }
    for (size_t i = 0; i < n; i++) {
        lb_buf_free(&c[i].out);
        free(c[i].line);
    }
    free(c);
    return failed;
}

static void
print_result(const char *name, const struct livebk_result *res)
{
    const struct proto_kv *m = &res->bk.meta;
    char rd[16], snt[16];

    if (agent_opts.json) {
        struct proto_kv kv = {0};
        proto_kv_set(&kv, "domain", name);
        proto_kv_set_u64(&kv, "disks_full", res->disks_full);
        proto_kv_set_u64(&kv, "disks_incremental", res->disks_incremental);
        proto_kv_set_u64(&kv, "commit_failures",
                         (uint64_t)res->commit_failures);
        proto_kv_setf(&kv, "seconds", "%.3f", res->bk.seconds);
        agent_phases_kv(&res->ph, &res->bk.ph, &kv);
        agent_event_merge("summary", m, &kv, NULL, NULL);
        proto_kv_free(&kv);
        return;
    }
    lb_human_size(rd, sizeof rd, res->bk.bytes_read);
    lb_human_size(snt, sizeof snt, res->bk.bytes_sent);
    printf("%s: backup %s (%s%s%s, %s", name, res->bk.id,
           proto_kv_get(m, "kind"), res->bk.parent[0] ? " on " : "",
           res->bk.parent, res->quiesced ? "quiesced" : "crash-consistent");
    if (res->quiesced)
        printf(", guest frozen %llu ms", (unsigned long long)res->freeze_ms);
    printf("): %u disk(s) incremental, %u full; read %s, sent %s in %.1f s\n",
           res->disks_incremental, res->disks_full, rd, snt, res->bk.seconds);
    if (res->commit_failures)
        printf("%s: warning: %d disk(s) keep a backed-up overlay in their "
               "chain until the next run commits it\n",
               name, res->commit_failures);
}

/* The libvirt connection's time, counted in the first domain's phases. */
static uint64_t connect_ns;

/* One domain, in this process: its summary, or its error. */
static int
backup_one(struct agent_virt *v, const struct dom_args *a, const char *name)
{
    struct livebk b;
    struct livebk_result res;
    struct agent_repo *r = NULL;
    struct agent_phases ph = {0};
    uint64_t t = lb_now_ns() - connect_ns;
    int ok = -1;

    connect_ns = 0;
    memset(&res, 0, sizeof res);
    if (open_dom(&b, v, name, &a->o) == 0) {
        /* An interrupted run is finished before the repository session
         * starts: its block commit may take long, and a session that
         * waits idle is closed (backupd --idle-timeout). The key is
         * unlocked before anything happens to the guest: a wrong
         * passphrase leaves the domain as it was. */
        t = agent_phase_add(&ph, AGENT_PH_LIBVIRT, t);
        if (livebk_recover(&b, false) == 0) {
            t = agent_phase_add(&ph, AGENT_PH_RECOVER, t);
            r = agent_repo_connect(a->repo);
            if (r && agent_repo_open(r, PROTO_OPEN_WRITE) == 0 &&
                agent_repo_unlock(r) == 0) {
                agent_phase_add(&ph, AGENT_PH_REPO, t);
                ok = livebk_backup(&b, r, &res);
                for (int i = AGENT_PH_LIBVIRT; i <= AGENT_PH_RECOVER; i++)
                    res.ph.us[i] += ph.us[i];
            }
        }
        livebk_record_attempt(&b, ok == 0, &res);
        close_dom(&b);
    }
    if (ok == 0) {
        print_result(b.dom.name[0] ? b.dom.name : name, &res);
    } else {
        lb_error_prefix("%s", name);
        agent_fail();
    }
    agent_backup_result_free(&res.bk);
    agent_repo_close(r);
    return ok;
}

int
cmd_backup(int argc, char **argv)
{
    struct dom_args a;
    struct agent_virt *v = NULL;
    char **names = NULL;
    size_t n, failed = 0;
    bool own_names = false;
    int rc = parse_dom_args(argc, argv, "backup", true, true, &a);

    if (rc)
        return rc;
    connect_ns = lb_now_ns();
    v = agent_virt_open(a.uri);
    if (!v) {
        free_args(&a);
        return agent_fail();
    }
    connect_ns = lb_now_ns() - connect_ns;
    names = a.names;
    n = a.nnames;
    if (a.all) {
        if (all_domains(v, &names, &n) < 0) {
            agent_virt_close(v);
            free_args(&a);
            return agent_fail();
        }
        own_names = true;
        if (n == 0)
            printf("no domains with disks on %s\n", a.uri);
    }
    if (a.jobs > 1 && n > 1) {
        failed = backup_parallel(&a, names, n);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        failed += backup_one(v, &a, names[i]) < 0;
done:
    if (a.all || n > 1) {
        if (agent_opts.json) {
            struct proto_kv kv = {0};
            proto_kv_set_u64(&kv, "domains", n);
            proto_kv_set_u64(&kv, "failed", failed);
            agent_event("done", &kv);
            proto_kv_free(&kv);
        } else {
            printf("%zu domain(s) backed up, %zu failed\n", n - failed, failed);
        }
    }
    if (own_names) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
    }
    agent_virt_close(v);
    free_args(&a);
    return failed ? 1 : 0;
}

int
cmd_recover(int argc, char **argv)
{
    struct dom_args a;
    struct agent_virt *v;
    size_t failed = 0;
    int rc = parse_dom_args(argc, argv, "recover", false, true, &a);

    if (rc)
        return rc;
    v = agent_virt_open(a.uri);
    if (!v) {
        free_args(&a);
        return agent_fail();
    }
    for (size_t i = 0; i < a.nnames; i++) {
        struct livebk b;
        /* An instant restore of it first: its pulls finished (waited
         * for), its exports stopped. */
        int inst = livebk_instant_finish(a.uri, a.names[i], true);
        if (inst == 0 && !agent_opts.json)
            printf("%s: the instant restore is finished\n", a.names[i]);
        if (inst < 0 || open_dom(&b, v, a.names[i], &a.o) < 0 ||
            livebk_recover(&b, inst == 1) < 0) {
            if (inst < 0)
                memset(&b, 0, sizeof b);
            lb_error_prefix("%s", a.names[i]);
            agent_fail();
            failed++;
        }
        if (b.h)
            close_dom(&b);
    }
    agent_virt_close(v);
    free_args(&a);
    return failed ? 1 : 0;
}

int
cmd_untrack(int argc, char **argv)
{
    struct dom_args a;
    struct agent_virt *v;
    size_t failed = 0;
    int rc = parse_dom_args(argc, argv, "untrack", false, true, &a);

    if (rc)
        return rc;
    v = agent_virt_open(a.uri);
    if (!v) {
        free_args(&a);
        return agent_fail();
    }
    for (size_t i = 0; i < a.nnames; i++) {
        struct livebk b;
        if (open_dom(&b, v, a.names[i], &a.o) < 0 || livebk_untrack(&b) < 0) {
            lb_error_prefix("%s", a.names[i]);
            agent_fail();
            failed++;
        } else if (!agent_opts.json) {
            printf("%s: no longer tracked; its disks are back on their own "
                   "images\n",
                   b.dom.name);
        }
        if (b.h)
            close_dom(&b);
    }
    agent_virt_close(v);
    free_args(&a);
    return failed ? 1 : 0;
}

/* Bytes the guest wrote above the acknowledged point: the next
 * incremental. -1 if it cannot be read. */
static int64_t
pending_bytes(const struct track_disk *td)
{
    struct agent_source *s;
    struct agent_extent *e = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0, size;
    const uint64_t step = 1ull << 30;

    if (td->nov == 0)
        return -1;
    s = agent_source_open(td->ov[td->nov - 1], track_acked_point(td), true);
    if (!s)
        return -1;
    size = agent_source_size(s);
    for (uint64_t off = 0; off < size; off += step) {
        if (agent_source_map(s, off, LB_MIN(step, size - off), &e, &n, &cap) <
            0) {
            total = UINT64_MAX;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (e[i].changed)
                total += e[i].len;
    }
    free(e);
    agent_source_close(s);
    return total == UINT64_MAX ? -1 : (int64_t)total;
}

/* One domain: a summary row, then a row per tracked disk. */
static void
status_domain(const struct agent_dom *d, struct track_state *st, bool *header)
{
    int64_t now = lb_wall_time();
    char age[16] = "-", size[16] = "-", frozen[24] = "-", run[640] = "never";

    if (st->last_time) {
        lb_human_age(age, sizeof age, now - st->last_time);
        lb_human_size(size, sizeof size, st->last_size);
        snprintf(frozen, sizeof frozen, "%llu ms",
                 (unsigned long long)st->last_freeze_ms);
    }
    if (st->attempt_time) {
        char when[32];
        lb_format_time(when, sizeof when, st->attempt_time);
        if (st->attempt_ok)
            snprintf(run, sizeof run, "ok, %s", when);
        else
            snprintf(run, sizeof run, "FAILED, %s: %s", when, st->attempt_msg);
    }
    if (agent_opts.json) {
        struct proto_kv kv = {0};
        proto_kv_set(&kv, "domain", d->name);
        proto_kv_set(&kv, "last_backup", st->last_backup);
        if (st->last_time) {
            proto_kv_set_u64(&kv, "last_time", (uint64_t)st->last_time);
            proto_kv_set_u64(&kv, "age_seconds",
                             (uint64_t)LB_MAX(0, now - st->last_time));
            proto_kv_set_u64(&kv, "size", st->last_size);
            proto_kv_set_u64(&kv, "freeze_ms", st->last_freeze_ms);
        }
        proto_kv_set(&kv, "last_run",
                     !st->attempt_time ? "never"
                     : st->attempt_ok  ? "ok"
                                       : "failed");
        if (st->attempt_time) {
            proto_kv_set_u64(&kv, "last_run_time", (uint64_t)st->attempt_time);
            proto_kv_set(&kv, "message", st->attempt_msg);
        }
        proto_kv_set(&kv, "step", track_step_name(st->step));
        agent_event("status", &kv);
        proto_kv_free(&kv);
    } else {
        if (!*header) {
            printf("%-16s %-20s %-8s %-10s %-8s %s\n", "DOMAIN", "LAST BACKUP",
                   "AGE", "SIZE", "FROZEN", "LAST RUN");
            *header = true;
        }
        printf("%-16s %-20s %-8s %-10s %-8s %s\n", d->name,
               st->last_backup[0] ? st->last_backup : "-", age, size, frozen,
               run);
    }
    for (size_t k = 0; k < st->nd; k++) {
        struct track_disk *td = &st->d[k];
        int64_t pend = pending_bytes(td);
        char ps[16] = "?";
        const char *state = td->nov == 0 ? "none"
                            : st->step != TRACK_IDLE || td->acked
                                ? "interrupted"
                                : "enrolled";
        if (pend >= 0)
            lb_human_size(ps, sizeof ps, (uint64_t)pend);
        if (agent_opts.json) {
            struct proto_kv kv = {0};
            proto_kv_set(&kv, "domain", d->name);
            proto_kv_set(&kv, "disk", td->target);
            proto_kv_set(&kv, "tracking", state);
            proto_kv_set(&kv, "overlay", td->nov ? td->ov[td->nov - 1] : "");
            proto_kv_set(&kv, "image", td->user_top);
            proto_kv_set(&kv, "last_backup", td->last_backup);
            if (pend >= 0)
                proto_kv_set_u64(&kv, "pending_bytes", (uint64_t)pend);
            agent_event("disk", &kv);
            proto_kv_free(&kv);
        } else {
            printf("  %-6s %-11s pending %-10s last %s  on %s\n", td->target,
                   state, ps, td->last_backup[0] ? td->last_backup : "-",
                   td->nov ? td->ov[td->nov - 1] : td->user_top);
        }
    }
    if (st->step == TRACK_COMMITTING && !agent_opts.json)
        printf("  the last backup's block commit runs in QEMU: the next run "
               "(or livebackup recover %s) deletes the committed overlay\n",
               d->name);
    else if (st->step != TRACK_IDLE && !agent_opts.json)
        printf("  a run was interrupted at step %s: livebackup recover %s "
               "finishes it\n",
               track_step_name(st->step), d->name);
}

int
cmd_status(int argc, char **argv)
{
    struct dom_args a;
    struct agent_virt *v;
    char **names;
    size_t n;
    bool own = false, header = false;
    int rc = parse_dom_args(argc, argv, "status", false, false, &a);

    if (rc)
        return rc;
    v = agent_virt_open(a.uri);
    if (!v) {
        free_args(&a);
        return agent_fail();
    }
    names = a.names;
    n = a.nnames;
    if (n == 0) { /* every domain */
        if (agent_virt_list(v, &names, &n) < 0) {
            agent_virt_close(v);
            free_args(&a);
            return agent_fail();
        }
        own = true;
    }
    for (size_t i = 0; i < n; i++) {
        struct agent_dom d;
        struct track_state st;
        int r;

        if (agent_virt_lookup(v, names[i], &d) < 0) {
            agent_fail();
            continue;
        }
        r = track_peek(d.uuid, &st);
        if (r < 0) {
            agent_fail();
            agent_dom_free(&d);
            continue;
        }
        if (r == 1)
            memset(&st, 0, sizeof st);
        status_domain(&d, &st, &header);
        cli_status_instant(&d);
        if (r == 0)
            track_free(&st);
        agent_dom_free(&d);
    }
    if (own) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
    }
    agent_virt_close(v);
    free_args(&a);
    return 0;
}
