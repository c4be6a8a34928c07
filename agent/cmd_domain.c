/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Domain commands: backup, recover, status, untrack.
 */
#include "agent/livebk.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <time.h>

struct dom_args {
    const char *repo, *uri;
    bool all;
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
}

static int
parse_dom_args(int argc, char **argv, const char *usage, bool need_repo,
               bool need_names, struct dom_args *a)
{
    static const struct option opts[] = {
        {"repo", required_argument, NULL, 'r'},
        {"connect", required_argument, NULL, 'c'},
        {"full", no_argument, NULL, 'F'},
        {"disks", required_argument, NULL, 'd'},
        {"consistency", required_argument, NULL, 'C'},
        {"freeze-timeout", required_argument, NULL, 't'},
        {"overlay-dir", required_argument, NULL, 'o'},
        {"state-dir", required_argument, NULL, 's'},
        {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        AGENT_COMMON_LONGOPTS,
        {0},
    };
    int c;

    memset(a, 0, sizeof *a);
    a->uri = getenv("LIVEBACKUP_DEFAULT_URI");
    if (!a->uri || !*a->uri)
        a->uri = "qemu:///system";
    a->o.freeze_timeout = 10;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:vqh", opts, NULL)) != -1) {
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
        case 'h':
            printf("Usage: %s\n", usage);
            exit(0);
        default:
            fprintf(stderr, "Usage: %s\n", usage);
            return 2;
        }
    }
    a->names = argv + optind;
    a->nnames = (size_t)(argc - optind);
    if ((need_repo && !a->repo) || (need_names && a->nnames == 0 && !a->all)) {
        fprintf(stderr, "Usage: %s\n", usage);
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

static void
print_result(const char *name, const struct livebk_result *res)
{
    const struct proto_kv *m = &res->bk.meta;
    char rd[16], snt[16];

    if (agent_opts.json) {
        struct proto_kv kv = {0};
        for (size_t i = 0; i < m->n; i++)
            proto_kv_set(&kv, m->e[i].key, m->e[i].val);
        proto_kv_set(&kv, "domain", name);
        proto_kv_set_u64(&kv, "disks_full", res->disks_full);
        proto_kv_set_u64(&kv, "disks_incremental", res->disks_incremental);
        proto_kv_set_u64(&kv, "commit_failures",
                         (uint64_t)res->commit_failures);
        proto_kv_setf(&kv, "seconds", "%.3f", res->bk.seconds);
        agent_event("summary", &kv);
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

int
cmd_backup(int argc, char **argv)
{
    static const char usage[] =
        "livebackup backup DOMAIN... --repo R [-c URI] [--full] [--disks "
        "vda,vdb] [--consistency quiesce|crash] [--freeze-timeout SEC] "
        "[--overlay-dir DIR] [--all]";
    struct dom_args a;
    struct agent_virt *v = NULL;
    char **names = NULL;
    size_t n, failed = 0;
    bool own_names = false;
    int rc = parse_dom_args(argc, argv, usage, true, true, &a);

    if (rc)
        return rc;
    v = agent_virt_open(a.uri);
    if (!v) {
        free_args(&a);
        return agent_fail();
    }
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
    for (size_t i = 0; i < n; i++) {
        struct livebk b;
        struct livebk_result res;
        struct agent_repo *r = NULL;
        int ok = -1;

        memset(&res, 0, sizeof res);
        if (open_dom(&b, v, names[i], &a.o) == 0) {
            r = agent_repo_connect(a.repo);
            if (r && agent_repo_open(r, PROTO_OPEN_WRITE) == 0)
                ok = livebk_backup(&b, r, &res);
            close_dom(&b);
        }
        if (ok == 0) {
            print_result(b.dom.name[0] ? b.dom.name : names[i], &res);
        } else {
            lb_error_prefix("%s", names[i]);
            agent_fail();
            failed++;
        }
        agent_backup_result_free(&res.bk);
        agent_repo_close(r);
    }
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
    int rc = parse_dom_args(argc, argv, "livebackup recover DOMAIN... [-c URI]",
                            false, true, &a);

    if (rc)
        return rc;
    v = agent_virt_open(a.uri);
    if (!v) {
        free_args(&a);
        return agent_fail();
    }
    for (size_t i = 0; i < a.nnames; i++) {
        struct livebk b;
        if (open_dom(&b, v, a.names[i], &a.o) < 0 ||
            livebk_recover(&b, true) < 0) {
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
    int rc = parse_dom_args(argc, argv, "livebackup untrack DOMAIN... [-c URI]",
                            false, true, &a);

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

int
cmd_status(int argc, char **argv)
{
    struct dom_args a;
    struct agent_virt *v;
    char **names;
    size_t n;
    bool own = false, header = false;
    int rc = parse_dom_args(argc, argv,
                            "livebackup status [DOMAIN...] [-c URI] [--json]",
                            false, false, &a);

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
        if (!agent_opts.json && !header) {
            printf("%-16s %-6s %-10s %-20s %10s  %s\n", "DOMAIN", "DISK",
                   "TRACKING", "LAST BACKUP", "PENDING", "OVERLAY");
            header = true;
        }
        if (r == 1 || st.nd == 0) {
            if (agent_opts.json) {
                struct proto_kv kv = {0};
                proto_kv_set(&kv, "domain", d.name);
                proto_kv_set(&kv, "tracking", "none");
                agent_event("status", &kv);
                proto_kv_free(&kv);
            } else {
                printf("%-16s %-6s %-10s %-20s %10s  %s\n", d.name, "-", "none",
                       "-", "-", "(never backed up here)");
            }
        }
        for (size_t k = 0; r == 0 && k < st.nd; k++) {
            struct track_disk *td = &st.d[k];
            int64_t pend = pending_bytes(td);
            char ps[16] = "?";
            const char *state = td->nov == 0 ? "none"
                                : st.step != TRACK_IDLE || td->acked
                                    ? "interrupted"
                                    : "enrolled";
            if (pend >= 0)
                lb_human_size(ps, sizeof ps, (uint64_t)pend);
            if (agent_opts.json) {
                struct proto_kv kv = {0};
                proto_kv_set(&kv, "domain", d.name);
                proto_kv_set(&kv, "disk", td->target);
                proto_kv_set(&kv, "tracking", state);
                proto_kv_set(&kv, "overlay",
                             td->nov ? td->ov[td->nov - 1] : "");
                proto_kv_set(&kv, "image", td->user_top);
                proto_kv_set(&kv, "last_backup", td->last_backup);
                if (pend >= 0)
                    proto_kv_set_u64(&kv, "pending_bytes", (uint64_t)pend);
                proto_kv_set(&kv, "step", track_step_name(st.step));
                agent_event("status", &kv);
                proto_kv_free(&kv);
            } else {
                printf("%-16s %-6s %-10s %-20s %10s  %s\n", d.name, td->target,
                       state, td->last_backup[0] ? td->last_backup : "-", ps,
                       td->nov ? td->ov[td->nov - 1] : "-");
            }
        }
        if (r == 0 && st.step != TRACK_IDLE && !agent_opts.json)
            printf("%-16s a run was interrupted at step %s: livebackup "
                   "recover %s finishes it\n",
                   d.name, track_step_name(st.step), d.name);
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
