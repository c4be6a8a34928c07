/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Domain commands: backup, recover, status, untrack.
 */
#include "agent/cli/cli.h"
#include "agent/client/event.h"
#include "agent/live/live.h"

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
    struct cli_notify notify;
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
    long v;

    memset(a, 0, sizeof *a);
    a->jobs = 1;
    a->uri = getenv("LIVEBACKUP_DEFAULT_URI");
    if (!a->uri || !*a->uri)
        a->uri = "qemu:///system";
    a->o.freeze_timeout = 10;
    /* livebackup.conf or the environment; --on-failure '' and
     * --metrics-file '' turn a configured one off. */
    a->notify.on_failure = cli_config_get(CLI_CONF_ON_FAILURE);
    a->notify.metrics_file = cli_config_get(CLI_CONF_METRICS_FILE);
    a->o.overlay_dir = cli_config_get(CLI_CONF_OVERLAY_DIR);
    cli_getopt(cmd, &g);
    optind = 1;
    while ((c = cli_getopt_next(&g, argc, argv)) != -1) {
        if (c == CLI_OPT_ERROR)
            return 2;
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
            if (!cli_number("--freeze-timeout", optarg, 1, 3600,
                            "a number of seconds from 1 to 3600", &v))
                return 2;
            a->o.freeze_timeout = (unsigned)v;
            break;
        case 'o':
            a->o.overlay_dir = cli_abs_path(optarg);
            break;
        case 's':
            cli_set_state_dir(optarg);
            break;
        case 'a':
            a->all = true;
            break;
        case 'j':
            if (!cli_number("-j", optarg, 1, 64, "1 to 64 domains at once", &v))
                return 2;
            a->jobs = (unsigned)v;
            break;
        case 'B':
            a->o.background_commit = true;
            break;
        case 'O':
            a->notify.on_failure = optarg;
            break;
        case 'M':
            a->notify.metrics_file = optarg;
            break;
        case 'E':
            if (!cli_number("--full-every", optarg, 1, 100000,
                            "a count from 1 to 100000", &v))
                return 2;
            a->o.full_every = (unsigned)v;
            break;
        case 'h':
            free_args(a);
            exit(cli_help(cmd));
        default:
            free_args(a);
            return cli_usage(cmd, NULL);
        }
    }
    if (a->notify.on_failure && !*a->notify.on_failure)
        a->notify.on_failure = NULL;
    if (a->notify.metrics_file && !*a->notify.metrics_file)
        a->notify.metrics_file = NULL;
    a->names = argv + optind;
    a->nnames = (size_t)(argc - optind);
    /* getopt moved the operands to the end: argv[1..optind) are options */
    a->opt_argv = argv + 1;
    a->opt_argc = optind - 1;
    for (size_t i = 0; i < a->nnames; i++)
        if (!cli_name_ok(cmd, NULL, a->names[i])) {
            free_args(a);
            return 2;
        }
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

/* The summary of a backup: printed (an event with --json) and returned
 * for the run's hook and metrics. */
static struct json_object *
print_result(const char *name, const struct livebk_result *res)
{
    const struct proto_kv *m = &res->bk.meta;
    char rd[16], snt[16];
    struct proto_kv kv = {0};
    struct json_object *o;

    proto_kv_set(&kv, "domain", name);
    proto_kv_set(&kv, "status", res->skipped[0] ? "warning" : "ok");
    /* Disk names from the domain's XML: made valid, never an abort. */
    proto_kv_set_lossy(&kv, "skipped", res->skipped);
    if (res->skipped[0]) {
        char w[sizeof res->skipped + 16];
        snprintf(w, sizeof w, "skipped %s", res->skipped);
        proto_kv_set_lossy(&kv, "warning", w);
    }
    proto_kv_set_u64(&kv, "disks_full", res->disks_full);
    proto_kv_set_u64(&kv, "disks_incremental", res->disks_incremental);
    proto_kv_set_u64(&kv, "commit_failures", (uint64_t)res->commit_failures);
    proto_kv_set_u64(&kv, "bytes_read", res->bk.bytes_read);
    proto_kv_set_u64(&kv, "bytes_sent", res->bk.bytes_sent);
    agent_chunk_counts_kv(&res->bk, &kv);
    proto_kv_setf(&kv, "seconds", "%.3f", res->bk.seconds);
    agent_phases_kv(&res->ph, &res->bk.ph, &kv);
    o = agent_event_new("summary", m, &kv, NULL, NULL);
    proto_kv_free(&kv);
    if (agent_opts.json) {
        agent_event_print(o);
        return o;
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
    if (res->skipped[0])
        printf("%s: warning: not backed up: %s\n", name, res->skipped);
    return o;
}

/* The libvirt connection's time, counted in the first domain's phases. */
static uint64_t connect_ns;

/* The error event of a domain that failed (after agent_fail). */
static struct json_object *
error_result(const char *name)
{
    struct proto_kv kv = {0};
    struct json_object *o;

    proto_kv_set_lossy(&kv, "domain", name);
    proto_kv_set_lossy(&kv, "message", lb_error_msg());
    if (lb_error_hint_msg()[0])
        proto_kv_set_lossy(&kv, "hint", lb_error_hint_msg());
    o = agent_event_new("error", NULL, &kv, NULL, NULL);
    proto_kv_free(&kv);
    return o;
}

/* One domain, in this process: its summary, or its error; the result
 * goes to run. Returns LB_EXIT_OK, _WARNING or _FAILURE. */
static int
backup_one(struct agent_virt *v, const struct dom_args *a, const char *name,
           struct cli_run *run)
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
        ok = res.skipped[0] ? LB_EXIT_WARNING : LB_EXIT_OK;
        cli_run_add(run, name, ok ? "warning" : "ok", ok,
                    print_result(b.dom.name[0] ? b.dom.name : name, &res));
    } else {
        lb_error_prefix("%s", name);
        agent_fail();
        ok = LB_EXIT_FAILURE;
        cli_run_add(run, name, "failed", ok, error_result(name));
    }
    agent_backup_result_free(&res.bk);
    agent_repo_close(r);
    return ok;
}

/* The run's metrics need each domain's last committed backup, which a
 * failed run leaves as it was: from the journal. */
static void
last_successes(struct agent_virt *v, char **names, size_t n,
               struct cli_run *run)
{
    for (size_t i = 0; i < n; i++) {
        struct agent_dom d;
        struct track_state st;

        if (agent_virt_lookup(v, names[i], &d) < 0)
            continue;
        if (track_peek(d.uuid, &st) == 0) {
            cli_run_last_success(run, names[i], st.last_time);
            track_free(&st);
        }
        agent_dom_free(&d);
    }
}

int
cmd_backup(int argc, char **argv)
{
    struct dom_args a;
    struct agent_virt *v = NULL;
    char **names = NULL;
    size_t n, failed = 0, warned = 0;
    bool own_names = false;
    struct cli_run run;
    int rc = parse_dom_args(argc, argv, "backup", true, true, &a);

    agent_opts.io_watch = true; /* the data path: a stalled server ends */
    if (rc)
        return rc;
    cli_run_init(&run);
    connect_ns = lb_now_ns();
    v = agent_virt_open(a.uri);
    if (!v) {
        agent_fail();
        cli_run_add(&run, "", "failed", LB_EXIT_FAILURE, error_result(""));
        cli_run_finish(&run, &a.notify, LB_EXIT_FAILURE);
        free_args(&a);
        return LB_EXIT_FAILURE;
    }
    connect_ns = lb_now_ns() - connect_ns;
    names = a.names;
    n = a.nnames;
    if (a.all) {
        if (all_domains(v, &names, &n) < 0) {
            agent_fail();
            cli_run_add(&run, "", "failed", LB_EXIT_FAILURE, error_result(""));
            cli_run_finish(&run, &a.notify, LB_EXIT_FAILURE);
            agent_virt_close(v);
            free_args(&a);
            return LB_EXIT_FAILURE;
        }
        own_names = true;
        if (n == 0)
            printf("no domains with disks on %s\n", a.uri);
    }
    if (a.jobs > 1 && n > 1) {
        failed =
            cli_backup_jobs(a.opt_argc, a.opt_argv, a.jobs, names, n, &run);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        int st = backup_one(v, &a, names[i], &run);
        failed += st == LB_EXIT_FAILURE;
        warned += st == LB_EXIT_WARNING;
    }
done:
    for (size_t i = 0; i < json_object_array_length(run.domains); i++) {
        struct json_object *d = json_object_array_get_idx(run.domains, i);
        const char *st = agent_event_str(d, "status");
        warned += a.jobs > 1 && n > 1 && st && strcmp(st, "warning") == 0;
    }
    last_successes(v, names, n, &run);
    if (a.all || n > 1) {
        if (agent_opts.json) {
            struct proto_kv kv = {0};
            proto_kv_set_u64(&kv, "domains", n);
            proto_kv_set_u64(&kv, "failed", failed);
            proto_kv_set_u64(&kv, "warned", warned);
            agent_event("done", &kv);
            proto_kv_free(&kv);
        } else if (warned) {
            printf("%zu domain(s) backed up (%zu with a warning), %zu failed\n",
                   n - failed, warned, failed);
        } else {
            printf("%zu domain(s) backed up, %zu failed\n", n - failed, failed);
        }
    }
    rc = failed ? LB_EXIT_FAILURE : warned ? LB_EXIT_WARNING : LB_EXIT_OK;
    cli_run_finish(&run, &a.notify, rc);
    if (own_names) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
    }
    agent_virt_close(v);
    free_args(&a);
    return rc;
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
        int inst = livebk_instant_finish(a.uri, a.names[i]);
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
status_domain(const struct agent_dom *d, struct track_state *st, bool *header,
              int nw)
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
        if (st->attempt_ok && st->attempt_warning)
            snprintf(run, sizeof run, "WARN, %s: %s", when, st->attempt_msg);
        else if (st->attempt_ok)
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
                     !st->attempt_time     ? "never"
                     : !st->attempt_ok     ? "failed"
                     : st->attempt_warning ? "warning"
                                           : "ok");
        if (st->attempt_time) {
            proto_kv_set_u64(&kv, "last_run_time", (uint64_t)st->attempt_time);
            proto_kv_set(&kv, "message", st->attempt_msg);
        }
        proto_kv_set(&kv, "step", track_step_name(st->step));
        agent_event("status", &kv);
        proto_kv_free(&kv);
    } else {
        CLEANUP_FREE char *name = lb_term_line(d->name);
        CLEANUP_FREE char *last = lb_term_line(run);
        if (!*header) {
            printf("%-*s %-20s %-8s %-10s %-8s %s\n", nw, "DOMAIN",
                   "LAST BACKUP", "AGE", "SIZE", "FROZEN", "LAST RUN");
            *header = true;
        }
        printf("%-*s %-20s %-8s %-10s %-8s %s\n", lb_pad_width(name, nw), name,
               st->last_backup[0] ? st->last_backup : "-", age, size, frozen,
               last);
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
    int nw = 16;
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
    for (size_t i = 0; i < n; i++)
        nw = LB_MAX(nw, lb_text_cols(names[i]));
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
        status_domain(&d, &st, &header, nw);
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
