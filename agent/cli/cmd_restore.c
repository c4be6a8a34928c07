/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * restore: a whole VM from one backup (its disks and its saved XML), as a
 * new domain beside the original, or in place of it (the live layer's
 * livebk_restore_in_place).
 */
#include "agent/cli/cli.h"
#include "agent/live/live.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct restore_args {
    const char *repo, *uri, *backup, *to, *name;
    const char *domain;
    enum agent_format fmt;
    bool define, start, new_mac, in_place, force, keep_host_access, instant;
    char **disks; /* --disks vda,vdb (each string owned) */
    size_t ndisks;
};

/* The new domain: where each disk goes, and its XML. */
struct new_domain {
    char *name;   /* NEWNAME */
    char *marker; /* DIR/.NAME.restore-incomplete */
    char uuid[37];
    char **final; /* per disk of the backup: its path, NULL if not restored */
    enum agent_format *fmts;
    char *xml;
};

static void
free_args(struct restore_args *a)
{
    for (size_t i = 0; i < a->ndisks; i++)
        free(a->disks[i]);
    free(a->disks);
}

static void
new_domain_free(struct new_domain *nd, size_t ndisks)
{
    for (size_t i = 0; nd->final && i < ndisks; i++)
        free(nd->final[i]);
    free(nd->final);
    free(nd->fmts);
    free(nd->name);
    free(nd->marker);
    free(nd->xml);
}

static bool
disk_wanted(const struct restore_args *a, const char *disk)
{
    if (!a->ndisks)
        return true;
    for (size_t i = 0; i < a->ndisks; i++)
        if (strcmp(a->disks[i], disk) == 0)
            return true;
    return false;
}

/* One option of restore; 0, or the exit code to return. */
static int
restore_opt(int c, struct restore_args *a)
{
    switch (c) {
    case 'r':
        a->repo = optarg;
        return 0;
    case 'c':
        a->uri = optarg;
        return 0;
    case 'b':
        a->backup = optarg;
        return 0;
    case 't':
        a->to = optarg;
        return 0;
    case 'n':
        a->name = optarg;
        return 0;
    case 'f':
        if (strcmp(optarg, "raw") == 0) {
            a->fmt = AGENT_FMT_RAW;
        } else if (strcmp(optarg, "qcow2") == 0) {
            a->fmt = AGENT_FMT_QCOW2;
        } else {
            fprintf(stderr, "livebackup: --format qcow2 or raw\n");
            return 2;
        }
        return 0;
    case 'd': {
        CLEANUP_FREE char *list = lb_xstrdup(optarg);
        char *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t;
             t = strtok_r(NULL, ",", &save)) {
            a->disks =
                lb_xrealloc(a->disks, (a->ndisks + 1) * sizeof *a->disks);
            a->disks[a->ndisks++] = lb_xstrdup(t);
        }
        return 0;
    }
    case 'D':
        a->define = true;
        return 0;
    case 'S':
        a->start = a->define = true;
        return 0;
    case 'M':
        a->new_mac = true;
        return 0;
    case 'K':
        a->keep_host_access = true;
        return 0;
    case 'I':
        a->in_place = true;
        return 0;
    case 'F':
        a->force = true;
        return 0;
    case 'i':
        a->instant = true;
        return 0;
    case 's':
        cli_set_state_dir(optarg);
        return 0;
    case 'h':
        cli_help("restore");
        return -1;
    default:
        return cli_usage("restore", NULL);
    }
}

/* The combination of options: 0, or a usage error naming what is wrong. */
static int
restore_check(const struct restore_args *a, int nargs)
{
    if (nargs == 0)
        return cli_missing("restore", "the DOMAIN of the backup");
    if (nargs > 1)
        return cli_usage("restore", "one DOMAIN at a time");
    if (a->in_place) {
        if (a->to || a->name || a->define || a->instant)
            return cli_usage("restore", "--in-place goes without --to, "
                                        "--name, --define, --start and "
                                        "--instant");
        if (!a->force)
            return cli_usage("restore", "--in-place replaces the domain's "
                                        "disks: add --force if that is "
                                        "what you want");
        return 0;
    }
    if (!a->to)
        return cli_usage("restore", "--to DIR is required (or --in-place "
                                    "--force)");
    if (a->instant && a->fmt != AGENT_FMT_QCOW2)
        return cli_usage("restore", "--instant restores to qcow2 only");
    return 0;
}

/* Returns 0, or the exit code to return (2 on usage, -1 for --help). */
static int
parse_restore(int argc, char **argv, struct restore_args *a)
{
    struct cli_getopt g;
    int c;

    memset(a, 0, sizeof *a);
    a->fmt = AGENT_FMT_QCOW2;
    a->backup = "latest";
    a->uri = getenv("LIVEBACKUP_DEFAULT_URI");
    if (!a->uri || !*a->uri)
        a->uri = "qemu:///system";
    cli_getopt("restore", &g);
    optind = 1;
    while ((c = cli_getopt_next(&g, argc, argv)) != -1) {
        int k;
        if (c == CLI_OPT_ERROR)
            return 2;
        if ((k = restore_opt(c, a)) != 0)
            return k;
    }
    if ((c = restore_check(a, argc - optind)) != 0)
        return c;
    if (!cli_name_ok("restore", NULL, argv[optind]))
        return 2;
    /* The new domain's XML names its disks by absolute paths (libvirt
     * would take a relative one from its own working directory). */
    if (a->to)
        a->to = cli_abs_path(a->to);
    if (!(a->repo = cli_need_repo("restore", a->repo)))
        return 2;
    a->domain = argv[optind];
    return 0;
}

/* A version 4 UUID. */
static void
new_uuid(char out[37])
{
    uint8_t b[16];

    lb_random(b, sizeof b);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x"
             "%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

/* NEWNAME: --name, or DOMAIN-restore-TIME of the backup. */
static char *
new_name(const struct restore_args *a, const struct agent_backup *b)
{
    time_t t = (time_t)proto_kv_get_u64(&b->meta, "time", 0);
    char stamp[32];
    struct tm tm;

    if (a->name)
        return lb_xstrdup(a->name);
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    return lb_xasprintf("%s-restore-%s", a->domain, stamp);
}

/* The saved XML came from the repository: say what of it would reach
 * into this host, and whether it was kept. */
static void
warn_host_access(const char *access, bool kept)
{
    if (!access || !*access)
        return;
    if (kept)
        lb_warn("the restored domain keeps what runs host programs or opens "
                "host files (--keep-host-access): %s",
                access);
    else
        lb_warn("the restored domain leaves out what would run host "
                "programs or open host files: %s; restore with "
                "--keep-host-access to keep them, only from a backup you "
                "trust",
                access);
}

static void
add_existing(struct lb_buf *exists, const char *path)
{
    struct stat sb;

    if (stat(path, &sb) == 0) {
        lb_buf_append(exists, " ", 1);
        lb_buf_append(exists, path, strlen(path));
    }
}

/*
 * Where the disks go (DIR/NEWNAME-DISK.FMT) and the new XML (new name,
 * UUID, disks; the others left out). Files an interrupted run of this
 * restore left (DIR/.NEWNAME.restore-incomplete says so) are ours;
 * others are replaced only with --force. The room they need is checked.
 */
static int
plan_new_domain(const struct restore_args *a, const struct agent_backup *b,
                const char *xml, struct new_domain *n)
{
    CLEANUP_FREE char *xmlpath = NULL;
    CLEANUP_BUF struct lb_buf exists = {0};
    struct agent_restore_xml rx = {0};
    char **tg = lb_xcalloc(b->ndisks + 1, sizeof *tg);
    char **fs = lb_xcalloc(b->ndisks + 1, sizeof *fs);
    char **ps = lb_xcalloc(b->ndisks + 1, sizeof *ps);
    uint64_t need = 0;
    struct stat sb;
    bool resuming;
    CLEANUP_FREE char *access = NULL;

    n->name = new_name(a, b);
    n->marker = lb_xasprintf("%s/.%s.restore-incomplete", a->to, n->name);
    n->final = lb_xcalloc(b->ndisks + 1, sizeof *n->final);
    n->fmts = lb_xcalloc(b->ndisks + 1, sizeof *n->fmts);
    xmlpath = lb_xasprintf("%s/%s.xml", a->to, n->name);
    resuming = stat(n->marker, &sb) == 0;
    if (resuming)
        lb_info("%s: finishing an interrupted restore of %s into %s", a->domain,
                n->name, a->to);
    for (size_t i = 0; i < b->ndisks; i++) {
        if (!disk_wanted(a, b->disks[i].name))
            continue;
        n->fmts[i] = a->fmt;
        n->final[i] = lb_xasprintf("%s/%s-%s.%s", a->to, n->name,
                                   b->disks[i].name, agent_format_name(a->fmt));
        if (!resuming)
            add_existing(&exists, n->final[i]);
        need += b->disks[i].nonempty_windows * agent_repo_window_size(b->r);
        tg[rx.n] = (char *)b->disks[i].name; /* only read */
        fs[rx.n] = (char *)agent_format_name(a->fmt);
        ps[rx.n++] = n->final[i];
    }
    if (!resuming)
        add_existing(&exists, xmlpath);
    lb_buf_put_u8(&exists, 0);
    new_uuid(n->uuid);
    rx.name = n->name;
    rx.uuid = n->uuid;
    rx.targets = tg;
    rx.paths = ps;
    rx.formats = fs;
    rx.drop_others = true;
    rx.new_mac = a->new_mac;
    rx.log_dir = a->to;
    rx.keep_host_access = a->keep_host_access;
    rx.host_access = &access;
    rx.stop_on_error = a->instant;
    n->xml = agent_xml_restore(xml, &rx);
    warn_host_access(access, a->keep_host_access);
    free(tg);
    free(fs);
    free(ps);
    if (exists.len > 1 && !a->force) {
        lb_fail(EEXIST, "these files already exist:%s", (char *)exists.data);
        lb_error_hint("restore into another --to DIR or under another "
                      "--name, or replace them with --force");
        return -1;
    }
    if (!n->xml || agent_restore_check_space(a->to, need) < 0)
        return -1;
    return 0;
}

/* What a new domain beside the original needs before anything is written,
 * restored or instant: DIR, its plan, every chunk of its disks there. */
static int
prepare_new_domain(const struct restore_args *a, struct agent_backup *b,
                   const char *xml, struct new_domain *n)
{
    if (lb_mkdir_p(a->to, 0755) < 0 || plan_new_domain(a, b, xml, n) < 0)
        return -1;
    for (size_t i = 0; i < b->ndisks; i++)
        if (n->final[i] && agent_restore_check(b, b->disks[i].name) < 0)
            return -1;
    /* Two guests with one MAC collide: warn if the original exists. */
    if (!a->new_mac && strstr(n->xml, "<interface") &&
        agent_virt_defined(a->uri, a->domain))
        lb_warn("%s is still defined: the restored domain has the same MAC "
                "address(es); use --new-mac before starting both",
                a->domain);
    return 0;
}

/* A new domain beside the original: disks, then its XML (which says the
 * restore is complete), then define and start if asked. */
static int
restore_new_domain(const struct restore_args *a, struct agent_backup *b,
                   const char *xml, struct new_domain *n)
{
    CLEANUP_FREE char *xmlname = NULL;

    if (prepare_new_domain(a, b, xml, n) < 0)
        return -1;
    if (agent_restore_disks(b, n->final, n->fmts, NULL, n->marker) < 0)
        return -1;
    xmlname = lb_xasprintf("%s.xml", n->name);
    if (lb_write_file_atomic(a->to, xmlname, n->xml, strlen(n->xml), 0644) < 0)
        return -1;
    unlink(n->marker);
    if (a->define) {
        struct agent_virt *v = agent_virt_open(a->uri);
        int ok = v ? agent_virt_define(v, n->xml) : -1;
        if (ok == 0 && a->start)
            ok = agent_virt_start(v, n->name);
        agent_virt_close(v);
        if (ok < 0)
            return -1;
    }
    return 0;
}

/* --instant: the domain runs on overlays over exports of the backup, its
 * disks pulled in the background (the live layer's instant.c). */
static int
restore_instant(const struct restore_args *a, struct agent_backup *b,
                const char *xml, struct new_domain *n)
{
    CLEANUP_FREE char *xmlname = NULL;
    CLEANUP_FREE char *xmlpath = NULL;
    struct livebk_instant io = {0};

    if (prepare_new_domain(a, b, xml, n) < 0)
        return -1;
    xmlname = lb_xasprintf("%s.xml", n->name);
    if (lb_write_file_atomic(a->to, xmlname, n->xml, strlen(n->xml), 0644) < 0)
        return -1;
    io.uri = a->uri;
    io.url = a->repo;
    io.name = n->name;
    io.uuid = n->uuid;
    io.xml = n->xml;
    io.tops = n->final;
    io.force = a->force;
    if (livebk_instant_restore(&io, b) < 0) {
        struct lb_error_saved e;
        lb_error_save(&e);
        xmlpath = lb_xasprintf("%s/%s", a->to, xmlname);
        unlink(xmlpath);
        return lb_error_restore(&e);
    }
    return 0;
}

static void
print_restored(const struct restore_args *a, const struct agent_backup *b,
               const struct new_domain *n, double secs)
{
    if (agent_opts.json) {
        struct proto_kv kv = {0};
        proto_kv_set(&kv, "id", b->id);
        proto_kv_set(&kv, "domain", a->domain);
        proto_kv_set(&kv, "name", n->name);
        proto_kv_set(&kv, "to", a->to);
        proto_kv_set(&kv, "defined", a->define ? "yes" : "no");
        proto_kv_set(&kv, "started", a->start ? "yes" : "no");
        proto_kv_setf(&kv, "seconds", "%.3f", secs);
        agent_event("summary", &kv);
        proto_kv_free(&kv);
        return;
    }
    printf("restored %s from backup %s as %s in %s (%.1f s)%s\n", a->domain,
           b->id, n->name, a->to, secs,
           a->start    ? ": defined and started"
           : a->define ? ": defined"
                       : "");
    for (size_t i = 0; i < b->ndisks; i++)
        if (n->final[i])
            printf("  %s: %s\n", b->disks[i].name, n->final[i]);
    printf("  XML: %s/%s.xml\n", a->to, n->name);
}

static void
print_instant(const struct restore_args *a, const struct agent_backup *b,
              const struct new_domain *n, double secs)
{
    if (agent_opts.json) {
        struct proto_kv kv = {0};
        proto_kv_set(&kv, "id", b->id);
        proto_kv_set(&kv, "domain", a->domain);
        proto_kv_set(&kv, "name", n->name);
        proto_kv_set(&kv, "to", a->to);
        proto_kv_set(&kv, "instant", "yes");
        proto_kv_set(&kv, "started", "yes");
        proto_kv_setf(&kv, "seconds", "%.3f", secs);
        agent_event("summary", &kv);
        proto_kv_free(&kv);
        return;
    }
    printf("started %s from backup %s of %s in %.1f s; its disks are pulled "
           "from the repository in the background (livebackup status %s)\n",
           n->name, b->id, a->domain, secs, n->name);
    for (size_t i = 0; i < b->ndisks; i++)
        if (n->final[i])
            printf("  %s: %s\n", b->disks[i].name, n->final[i]);
    printf("  XML: %s/%s.xml\n", a->to, n->name);
}

int
cmd_restore(int argc, char **argv)
{
    struct restore_args a;
    struct agent_backup b = {0};
    struct new_domain n = {0};
    CLEANUP_FREE char *xml = NULL;
    uint64_t t0 = lb_now_ns();
    int rc = parse_restore(argc, argv, &a);

    agent_opts.io_watch = true; /* the data path: a stalled server ends */
    if (rc) {
        free_args(&a);
        return rc < 0 ? 0 : rc;
    }
    rc = 1;
    if (agent_backup_open(a.repo, a.domain, a.backup, &b) < 0 ||
        !(xml = agent_backup_domain_xml(&b)))
        goto fail;
    for (size_t i = 0; i < a.ndisks; i++)
        if (!agent_backup_disk(&b, a.disks[i]))
            goto fail;
    if (a.in_place) {
        struct livebk_inplace io = {a.uri, a.domain, a.disks, a.ndisks};
        if (livebk_restore_in_place(&io, &b) < 0)
            goto fail;
        if (!agent_opts.json)
            printf("restored %s in place from backup %s in %.1f s; it is "
                   "untracked: its next backup is full\n",
                   a.domain, b.id, (double)(lb_now_ns() - t0) / 1e9);
    } else if (a.instant) {
        if (restore_instant(&a, &b, xml, &n) < 0)
            goto fail;
        print_instant(&a, &b, &n, (double)(lb_now_ns() - t0) / 1e9);
    } else {
        if (restore_new_domain(&a, &b, xml, &n) < 0)
            goto fail;
        print_restored(&a, &b, &n, (double)(lb_now_ns() - t0) / 1e9);
    }
    rc = 0;
    goto out;
fail:
    agent_fail();
out:
    new_domain_free(&n, b.ndisks);
    agent_backup_close(&b);
    free_args(&a);
    return rc;
}

void
cli_status_instant(struct agent_dom *d)
{
    struct livebk_instant_info in;
    char when[32];

    if (livebk_instant_query(d, &in) != 0) {
        lb_error_clear();
        return;
    }
    lb_format_time(when, sizeof when, in.st.started);
    if (!agent_opts.json && in.finishing)
        printf("  instant restore of backup %s (%s), started %s: being "
               "finished in the background\n",
               in.st.backup, in.st.set, when);
    else if (!agent_opts.json)
        printf("  instant restore of backup %s (%s), started %s: nothing is "
               "finishing it (livebackup recover %s does)\n",
               in.st.backup, in.st.set, when, d->name);
    for (size_t i = 0; i < in.st.nd; i++) {
        const struct livebk_instant_disk *x = &in.d[i];
        const char *state = x->done      ? "done"
                            : x->pulling ? "pulling"
                                         : "interrupted";
        if (agent_opts.json) {
            struct proto_kv kv = {0};
            proto_kv_set(&kv, "domain", d->name);
            proto_kv_set(&kv, "backup", in.st.backup);
            proto_kv_set(&kv, "disk", in.st.d[i].target);
            proto_kv_set(&kv, "state", state);
            proto_kv_set_u64(&kv, "pulled", x->cur);
            proto_kv_set_u64(&kv, "total", x->end);
            proto_kv_set_u64(&kv, "export_pid", (uint64_t)x->export_pid);
            proto_kv_set(&kv, "finishing", in.finishing ? "yes" : "no");
            agent_event("instant", &kv);
            proto_kv_free(&kv);
            continue;
        }
        if (x->pulling) {
            char cur[16], end[16];
            lb_human_size(cur, sizeof cur, x->cur);
            lb_human_size(end, sizeof end, x->end);
            printf("    %-8s pulling %3.0f%% (%s of %s)", in.st.d[i].target,
                   x->end ? 100.0 * (double)x->cur / (double)x->end : 0.0, cur,
                   end);
        } else {
            printf("    %-8s %s", in.st.d[i].target, state);
        }
        if (x->export_pid)
            printf(", export pid %ld\n", (long)x->export_pid);
        else
            printf(", export stopped\n");
    }
    livebk_instant_info_free(&in);
}
