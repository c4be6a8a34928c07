/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * restore: a whole VM from one backup (its disks and its saved XML), as a
 * new domain beside the original or in place of it; and show: what a
 * backup holds.
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
    bool fmt_given, define, start, new_mac, in_place, force;
    char *disks_arg;
    char **disks;
    size_t ndisks;
};

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

/* The saved domain XML of a backup. */
static char *
saved_xml(struct agent_repo *r, const struct proto_kv *meta)
{
    const char *hex = proto_kv_get(meta, "domain_xml");
    struct proto_digest d;
    char *xml = NULL;
    size_t len;

    if (!hex || proto_digest_parse(hex, &d) < 0) {
        lb_fail(EINVAL,
                "backup %s holds no domain XML (it was made by "
                "backup-image)",
                proto_kv_get(meta, "id"));
        lb_error_hint("restore its disks with livebackup restore-image");
        return NULL;
    }
    if (agent_get_blob(r, &d, &xml, &len) < 0) {
        lb_error_prefix("backup %s: saved domain XML",
                        proto_kv_get(meta, "id"));
        return NULL;
    }
    return xml;
}

/* DIR/.NAME.restore-incomplete: from the first rename of a restored disk
 * into place until its XML is written. A rerun that finds it may replace
 * the files that restore left without --force. */
static char *
incomplete_marker(const char *dir, const char *newname)
{
    return lb_xasprintf("%s/.%s.restore-incomplete", dir, newname);
}

int
cmd_restore(int argc, char **argv)
{
    static const char usage[] =
        "livebackup restore DOMAIN --repo R [--backup ID|latest|TIME] --to DIR "
        "[--name NEWNAME] [--format qcow2|raw] [--disks vda,...] [--define] "
        "[--start] [--new-mac] [--force] [-c URI]\n"
        "       livebackup restore DOMAIN --repo R [--backup ...] --in-place "
        "--force [-c URI]";
    static const struct option opts[] = {
        {"repo", required_argument, NULL, 'r'},
        {"connect", required_argument, NULL, 'c'},
        {"backup", required_argument, NULL, 'b'},
        {"to", required_argument, NULL, 't'},
        {"name", required_argument, NULL, 'n'},
        {"format", required_argument, NULL, 'f'},
        {"disks", required_argument, NULL, 'd'},
        {"define", no_argument, NULL, 'D'},
        {"start", no_argument, NULL, 'S'},
        {"new-mac", no_argument, NULL, 'M'},
        {"in-place", no_argument, NULL, 'I'},
        {"force", no_argument, NULL, 'F'},
        {"state-dir", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        AGENT_COMMON_LONGOPTS,
        {0},
    };
    struct restore_args a = {.fmt = AGENT_FMT_QCOW2, .backup = "latest"};
    struct agent_repo *r = NULL;
    struct agent_list l = {0};
    struct agent_restore_disk *ds = NULL;
    size_t nd = 0;
    CLEANUP_FREE char *xml = NULL;
    CLEANUP_FREE char *newxml = NULL;
    CLEANUP_FREE char *newname = NULL;
    CLEANUP_FREE char *marker = NULL;
    char **final = NULL;
    enum agent_format *fmts = NULL;
    const char *id;
    ssize_t pick;
    int c, mfd = -1, rc = 1;
    uint64_t t0 = lb_now_ns();

    a.uri = getenv("LIVEBACKUP_DEFAULT_URI");
    if (!a.uri || !*a.uri)
        a.uri = "qemu:///system";
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:vqh", opts, NULL)) != -1) {
        int k = agent_common_opt(c, optarg);
        if (k < 0)
            return 2;
        if (k)
            continue;
        switch (c) {
        case 'r':
            a.repo = optarg;
            break;
        case 'c':
            a.uri = optarg;
            break;
        case 'b':
            a.backup = optarg;
            break;
        case 't':
            a.to = optarg;
            break;
        case 'n':
            a.name = optarg;
            break;
        case 'f':
            a.fmt_given = true;
            if (strcmp(optarg, "raw") == 0)
                a.fmt = AGENT_FMT_RAW;
            else if (strcmp(optarg, "qcow2") == 0)
                a.fmt = AGENT_FMT_QCOW2;
            else {
                fprintf(stderr, "livebackup: --format qcow2 or raw\n");
                return 2;
            }
            break;
        case 'd': {
            char *save = NULL;
            a.disks_arg = lb_xstrdup(optarg);
            for (char *t = strtok_r(a.disks_arg, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                a.disks =
                    lb_xrealloc(a.disks, (a.ndisks + 1) * sizeof *a.disks);
                a.disks[a.ndisks++] = t;
            }
            break;
        }
        case 'D':
            a.define = true;
            break;
        case 'S':
            a.start = a.define = true;
            break;
        case 'M':
            a.new_mac = true;
            break;
        case 'I':
            a.in_place = true;
            break;
        case 'F':
            a.force = true;
            break;
        case 's':
            setenv("LIVEBACKUP_STATE_DIR", optarg, 1);
            break;
        case 'h':
            printf("Usage: %s\n", usage);
            return 0;
        default:
            fprintf(stderr, "Usage: %s\n", usage);
            return 2;
        }
    }
    if (optind + 1 != argc || !a.repo || (!a.to && !a.in_place) ||
        (a.in_place && (a.to || a.name || a.define || !a.force))) {
        if (a.in_place && !a.force)
            fprintf(stderr, "livebackup: --in-place replaces the domain's "
                            "disks: add --force if that is what you want\n");
        fprintf(stderr, "Usage: %s\n", usage);
        free(a.disks);
        free(a.disks_arg);
        return 2;
    }
    a.domain = argv[optind];

    r = agent_repo_connect(a.repo);
    if (!r || agent_repo_open(r, PROTO_OPEN_READ) < 0 ||
        agent_repo_list(r, a.domain, &l) < 0)
        goto fail;
    pick = agent_list_pick(&l, a.domain, a.backup);
    if (pick < 0)
        goto fail;
    id = proto_kv_get(&l.b[pick], "id");
    xml = saved_xml(r, &l.b[pick]);
    if (!xml)
        goto fail;
    mfd = agent_repo_get_manifest(r, id);
    if (mfd < 0 || agent_manifest_disks(mfd, &ds, &nd) < 0)
        goto fail;
    for (size_t i = 0; i < a.ndisks; i++) {
        size_t k;
        for (k = 0; k < nd && strcmp(ds[k].name, a.disks[i]) != 0; k++)
            ;
        if (k == nd) {
            lb_fail(ENOENT, "backup %s has no disk %s", id, a.disks[i]);
            goto fail;
        }
    }

    if (a.in_place) {
        struct livebk_inplace io = {a.uri, a.domain, a.disks, a.ndisks};
        if (livebk_restore_in_place(&io, r, mfd, id, xml, ds, nd) < 0)
            goto fail;
        if (!agent_opts.json)
            printf("restored %s in place from backup %s in %.1f s; it is "
                   "untracked: its next backup is full\n",
                   a.domain, id, (double)(lb_now_ns() - t0) / 1e9);
        rc = 0;
        goto out;
    }

    /* A new domain beside the original. */
    {
        int64_t t = (int64_t)proto_kv_get_u64(&l.b[pick], "time", 0);
        char stamp[32];
        struct tm tm;
        time_t tt = (time_t)t;
        gmtime_r(&tt, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        newname = a.name ? lb_xstrdup(a.name)
                         : lb_xasprintf("%s-restore-%s", a.domain, stamp);
    }
    if (lb_mkdir_p(a.to, 0755) < 0)
        goto fail;
    marker = incomplete_marker(a.to, newname);
    final = lb_xcalloc(nd ? nd : 1, sizeof *final);
    fmts = lb_xcalloc(nd ? nd : 1, sizeof *fmts);
    {
        struct lb_buf exists = {0};
        uint64_t need = 0;
        char **tg = lb_xcalloc(nd ? nd : 1, sizeof *tg);
        char **fs = lb_xcalloc(nd ? nd : 1, sizeof *fs);
        char **ps = lb_xcalloc(nd ? nd : 1, sizeof *ps);
        size_t nt = 0;
        char uuid[37];
        struct agent_restore_xml rx = {0};
        CLEANUP_FREE char *xmlpath = lb_xasprintf("%s/%s.xml", a.to, newname);
        struct stat sb;
        /* Files an interrupted run of this restore left are ours. */
        bool resuming = stat(marker, &sb) == 0;

        if (resuming)
            lb_info("%s: finishing an interrupted restore of %s into %s",
                    a.domain, newname, a.to);
        for (size_t i = 0; i < nd; i++) {
            if (!disk_wanted(&a, ds[i].name))
                continue;
            fmts[i] = a.fmt;
            final[i] = lb_xasprintf("%s/%s-%s.%s", a.to, newname, ds[i].name,
                                    agent_format_name(a.fmt));
            if (!resuming && stat(final[i], &sb) == 0) {
                lb_buf_append(&exists, " ", 1);
                lb_buf_append(&exists, final[i], strlen(final[i]));
            }
            need += ds[i].nonempty_windows * r->window_size;
            tg[nt] = ds[i].name;
            fs[nt] = (char *)agent_format_name(a.fmt);
            ps[nt] = final[i];
            nt++;
        }
        if (!resuming && stat(xmlpath, &sb) == 0) {
            lb_buf_append(&exists, " ", 1);
            lb_buf_append(&exists, xmlpath, strlen(xmlpath));
        }
        lb_buf_put_u8(&exists, 0);
        new_uuid(uuid);
        rx.name = newname;
        rx.uuid = uuid;
        rx.n = nt;
        rx.targets = tg;
        rx.paths = ps;
        rx.formats = fs;
        rx.drop_others = true;
        rx.new_mac = a.new_mac;
        rx.log_dir = a.to;
        newxml = agent_xml_restore(xml, &rx);
        free(tg);
        free(fs);
        free(ps);
        if (exists.len > 1 && !a.force) {
            lb_fail(EEXIST, "these files already exist:%s",
                    (char *)exists.data);
            lb_error_hint("restore into another --to DIR or under another "
                          "--name, or replace them with --force");
            lb_buf_free(&exists);
            goto fail;
        }
        lb_buf_free(&exists);
        if (!newxml || agent_restore_check_space(a.to, need) < 0)
            goto fail;
        /* Every chunk must be there before anything is written. */
        for (size_t i = 0; i < nd; i++)
            if (final[i] && agent_restore_check(r, mfd, id, ds[i].name) < 0)
                goto fail;
    }
    if (!a.new_mac) {
        /* Two guests with one MAC collide: warn if the original exists. */
        if (strstr(newxml, "<interface") && agent_virt_defined(a.uri, a.domain))
            lb_warn("%s is still defined: the restored domain has the same MAC "
                    "address(es); use --new-mac before starting both",
                    a.domain);
    }
    if (agent_restore_disks(r, mfd, id, ds, nd, final, fmts, marker) < 0)
        goto fail;
    {
        CLEANUP_FREE char *name = lb_xasprintf("%s.xml", newname);
        if (lb_write_file_atomic(a.to, name, newxml, strlen(newxml), 0644) < 0)
            goto fail;
        unlink(marker);
    }
    if (a.define) {
        struct agent_virt *v = agent_virt_open(a.uri);
        int ok = v ? agent_virt_define(v, newxml) : -1;
        if (ok == 0 && a.start)
            ok = agent_virt_start(v, newname);
        agent_virt_close(v);
        if (ok < 0)
            goto fail;
    }
    {
        double secs = (double)(lb_now_ns() - t0) / 1e9;
        if (agent_opts.json) {
            struct proto_kv kv = {0};
            proto_kv_set(&kv, "id", id);
            proto_kv_set(&kv, "domain", a.domain);
            proto_kv_set(&kv, "name", newname);
            proto_kv_set(&kv, "to", a.to);
            proto_kv_set(&kv, "defined", a.define ? "yes" : "no");
            proto_kv_set(&kv, "started", a.start ? "yes" : "no");
            proto_kv_setf(&kv, "seconds", "%.3f", secs);
            agent_event("summary", &kv);
            proto_kv_free(&kv);
        } else {
            printf("restored %s from backup %s as %s in %s (%.1f s)%s\n",
                   a.domain, id, newname, a.to, secs,
                   a.start    ? ": defined and started"
                   : a.define ? ": defined"
                              : "");
            for (size_t i = 0; i < nd; i++)
                if (final[i])
                    printf("  %s: %s\n", ds[i].name, final[i]);
            printf("  XML: %s/%s.xml\n", a.to, newname);
        }
    }
    rc = 0;
    goto out;
fail:
    agent_fail();
out:
    for (size_t i = 0; final && i < nd; i++)
        free(final[i]);
    free(final);
    free(fmts);
    if (mfd >= 0)
        close(mfd);
    free(ds);
    agent_list_free(&l);
    agent_repo_close(r);
    free(a.disks);
    free(a.disks_arg);
    return rc;
}

int
cmd_show(int argc, char **argv)
{
    static const char usage[] =
        "livebackup show --repo R --backup ID [--name NAME] [--json]";
    static const struct option opts[] = {
        {"repo", required_argument, NULL, 'r'},
        {"backup", required_argument, NULL, 'b'},
        {"name", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        AGENT_COMMON_LONGOPTS,
        {0},
    };
    const char *repo = NULL, *spec = NULL, *name = NULL;
    struct agent_repo *r = NULL;
    struct agent_list l = {0};
    struct agent_restore_disk *ds = NULL;
    size_t nd = 0;
    CLEANUP_FREE char *xml = NULL;
    const struct proto_kv *m;
    ssize_t pick = -1;
    int c, mfd = -1, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        int k = agent_common_opt(c, optarg);
        if (k < 0)
            return 2;
        if (k)
            continue;
        switch (c) {
        case 'r':
            repo = optarg;
            break;
        case 'b':
            spec = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'h':
            printf("Usage: %s\n", usage);
            return 0;
        default:
            fprintf(stderr, "Usage: %s\n", usage);
            return 2;
        }
    }
    if (optind != argc || !repo || !spec ||
        (!name && !proto_backup_id_valid(spec, strlen(spec)))) {
        fprintf(stderr,
                "Usage: %s\n(--name NAME is needed with latest or a "
                "time)\n",
                usage);
        return 2;
    }
    r = agent_repo_connect(repo);
    if (!r || agent_repo_open(r, PROTO_OPEN_READ) < 0 ||
        agent_repo_list(r, name, &l) < 0)
        goto fail;
    if (name)
        pick = agent_list_pick(&l, name, spec);
    else
        for (size_t i = 0; i < l.n; i++)
            if (strcmp(proto_kv_get(&l.b[i], "id"), spec) == 0)
                pick = (ssize_t)i;
    if (pick < 0) {
        if (!name)
            lb_fail(ENOENT, "no backup %s in this repository", spec);
        goto fail;
    }
    m = &l.b[pick];
    mfd = agent_repo_get_manifest(r, proto_kv_get(m, "id"));
    if (mfd < 0 || agent_manifest_disks(mfd, &ds, &nd) < 0)
        goto fail;
    if (proto_kv_get(m, "domain_xml"))
        xml = saved_xml(r, m);
    if (agent_opts.json) {
        struct proto_kv kv = {0};
        for (size_t i = 0; i < m->n; i++)
            proto_kv_set(&kv, m->e[i].key, m->e[i].val);
        if (xml)
            proto_kv_set(&kv, "domain_xml_text", xml);
        agent_event("backup", &kv);
        proto_kv_free(&kv);
        for (size_t i = 0; i < nd; i++) {
            struct proto_kv dk = {0};
            proto_kv_set(&dk, "disk", ds[i].name);
            proto_kv_set_u64(&dk, "size", ds[i].size);
            proto_kv_set_u64(&dk, "windows_with_data", ds[i].nonempty_windows);
            if (ds[i].mode[0])
                proto_kv_set(&dk, "mode", ds[i].mode);
            if (ds[i].full_reason[0])
                proto_kv_set(&dk, "full_reason", ds[i].full_reason);
            agent_event("disk", &dk);
            proto_kv_free(&dk);
        }
    } else {
        char when[32], sz[16];
        const char *par = proto_kv_get(m, "parent");
        lb_format_time(when, sizeof when,
                       (int64_t)proto_kv_get_u64(m, "time", 0));
        printf("backup:      %s\n", proto_kv_get(m, "id"));
        printf("name:        %s\n", proto_kv_get(m, "name"));
        if (proto_kv_get(m, "domain_uuid"))
            printf("domain uuid: %s\n", proto_kv_get(m, "domain_uuid"));
        printf("time:        %s\n", when);
        printf("kind:        %s\n",
               proto_kv_get(m, "kind") ? proto_kv_get(m, "kind") : "?");
        printf("parent:      %s\n", par && *par ? par : "-");
        if (proto_kv_get(m, "consistency"))
            printf("consistency: %s (guest frozen %s ms)\n",
                   proto_kv_get(m, "consistency"),
                   proto_kv_get(m, "freeze_ms") ? proto_kv_get(m, "freeze_ms")
                                                : "0");
        lb_human_size(sz, sizeof sz, proto_kv_get_u64(m, "bytes_new", 0));
        printf("stored new:  %s\n", sz);
        printf("disks:\n");
        for (size_t i = 0; i < nd; i++) {
            char dsz[16], dat[16];
            lb_human_size(dsz, sizeof dsz, ds[i].size);
            lb_human_size(dat, sizeof dat,
                          ds[i].nonempty_windows * r->window_size);
            printf("  %-8s %10s  (data in %s of windows)", ds[i].name, dsz,
                   dat);
            if (ds[i].mode[0])
                printf(", %s", ds[i].mode);
            if (ds[i].full_reason[0])
                printf(": %s", ds[i].full_reason);
            putchar('\n');
        }
        if (xml)
            printf("domain XML:\n%s\n", xml);
    }
    rc = 0;
    goto out;
fail:
    agent_fail();
out:
    if (mfd >= 0)
        close(mfd);
    free(ds);
    agent_list_free(&l);
    agent_repo_close(r);
    return rc;
}
