/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * restore: a whole VM from one backup (its disks and its saved XML), as a
 * new domain beside the original or in place of it; and show: what a
 * backup holds.
 */
#include "agent/livebk.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libvirt/libvirt.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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

/* Free bytes in dir, or UINT64_MAX if unknown. */
static uint64_t
free_bytes(const char *dir)
{
    struct statvfs sv;

    if (statvfs(dir, &sv) < 0)
        return UINT64_MAX;
    return (uint64_t)sv.f_bavail * sv.f_frsize;
}

static int
check_space(const char *dir, uint64_t need)
{
    uint64_t have = free_bytes(dir);

    if (have != UINT64_MAX && need > have) {
        char n[16], h[16];
        lb_human_size(n, sizeof n, need);
        lb_human_size(h, sizeof h, have);
        lb_fail(ENOSPC,
                "not enough space in %s: the restore needs up to %s, "
                "%s are free",
                dir, n, h);
        lb_error_hint("free space there, or restore elsewhere with --to DIR");
        return -1;
    }
    return 0;
}

static const char *
fmt_name(enum agent_format f)
{
    return f == AGENT_FMT_RAW ? "raw" : "qcow2";
}

/* DIR/.NAME.restore-incomplete: from the first rename of a restored disk
 * into place until its XML is written. A rerun that finds it may replace
 * the files that restore left without --force. */
static char *
incomplete_marker(const char *dir, const char *newname)
{
    return lb_xasprintf("%s/.%s.restore-incomplete", dir, newname);
}

/* Restore the selected disks to final[i], via temporary names: nothing
 * looks complete until every disk is (and its XML, written after, says
 * so); marker is created before the first rename. */
static int
restore_disks(struct agent_repo *r, int mfd, const char *id,
              struct agent_restore_disk *ds, size_t nd, char **final,
              const enum agent_format *fmts, const char *marker)
{
    char **tmp = lb_xcalloc(nd ? nd : 1, sizeof *tmp);
    int ret = -1;
    size_t i;

    for (i = 0; i < nd; i++) {
        if (!final[i])
            continue;
        const char *slash = strrchr(final[i], '/');
        tmp[i] = lb_xasprintf("%.*s/.%s.restoring", (int)(slash - final[i]),
                              final[i], slash + 1);
        if (agent_restore_disk(r, mfd, id, ds[i].name, tmp[i], fmts[i], true) <
            0)
            goto out;
    }
    if (marker) {
        int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || fsync(fd) < 0) {
            lb_error(errno, "create %s", marker);
            if (fd >= 0)
                close(fd);
            goto out;
        }
        close(fd);
    }
    for (i = 0; i < nd; i++) {
        if (!final[i])
            continue;
        if (rename(tmp[i], final[i]) < 0) {
            lb_error(errno, "rename %s to %s", tmp[i], final[i]);
            goto out;
        }
        lb_fault_point("agent:restore-renamed");
    }
    ret = 0;
out:
    for (i = 0; i < nd; i++) {
        if (ret < 0 && tmp[i])
            unlink(tmp[i]);
        free(tmp[i]);
    }
    free(tmp);
    return ret;
}

/* In place: over the domain's own images, which must be at rest; the
 * domain ends untracked so the next backup enrols it afresh. */
static int
restore_in_place(struct restore_args *a, struct agent_repo *r, int mfd,
                 const char *id, const char *xml, struct agent_restore_disk *ds,
                 size_t nd)
{
    struct agent_virt *v = agent_virt_open(a->uri);
    struct livebk b = {0};
    struct agent_vdisk *sd = NULL;
    size_t nsd = 0;
    char **final = lb_xcalloc(nd ? nd : 1, sizeof *final);
    char **fmts_s = lb_xcalloc(nd ? nd : 1, sizeof *fmts_s);
    char **tg = lb_xcalloc(nd ? nd : 1, sizeof *tg);
    enum agent_format *fmts = lb_xcalloc(nd ? nd : 1, sizeof *fmts);
    size_t nt = 0;
    int ret = -1;

    if (!v)
        goto out;
    if (agent_virt_lookup(v, a->domain, &b.dom) < 0)
        goto out;
    b.v = v;
    b.h = track_open(b.dom.uuid, b.dom.name, &b.st);
    if (!b.h)
        goto out;
    if (b.dom.running) {
        lb_fail(EBUSY, "%s is running: an in-place restore needs it shut off",
                b.dom.name);
        lb_error_hint("virsh shutdown %s, then run the restore again",
                      b.dom.name);
        goto out;
    }
    /* The domain's own images, from the XML saved with the backup. */
    if (agent_xml_disks(xml, &sd, &nsd) < 0)
        goto out;
    for (size_t i = 0; i < nd; i++) {
        const struct agent_vdisk *d = NULL;
        if (!disk_wanted(a, ds[i].name))
            continue;
        for (size_t k = 0; k < nsd; k++)
            if (strcmp(sd[k].target, ds[i].name) == 0)
                d = &sd[k];
        if (!d || !d->source) {
            lb_fail(EINVAL, "disk %s is not in the saved XML", ds[i].name);
            goto out;
        }
        if (strncmp(d->source, "/dev/", 5) == 0) {
            lb_fail(EINVAL,
                    "disk %s is the block device %s: in-place restore "
                    "of block devices is not supported yet",
                    d->target, d->source);
            lb_error_hint("restore it elsewhere with --to DIR and copy it");
            goto out;
        }
        if (strcmp(d->format, "raw") != 0 && strcmp(d->format, "qcow2") != 0) {
            lb_fail(EINVAL,
                    "disk %s is %s: in-place restore writes raw or "
                    "qcow2 only",
                    d->target, d->format);
            goto out;
        }
        final[i] = lb_xstrdup(d->source);
        fmts[i] =
            strcmp(d->format, "raw") == 0 ? AGENT_FMT_RAW : AGENT_FMT_QCOW2;
        fmts_s[nt] = (char *)fmt_name(fmts[i]);
        tg[nt] = ds[i].name;
        nt++;
    }
    /* The new images sit beside the old ones until renamed over them:
     * each filesystem needs room for all the disks restored into it. */
    for (size_t i = 0; i < nd; i++) {
        CLEANUP_FREE char *dir = NULL;
        uint64_t need = 0;
        bool seen = false;
        if (!final[i])
            continue;
        dir = lb_xstrdup(final[i]);
        *strrchr(dir, '/') = '\0';
        for (size_t k = 0; k < nd; k++) {
            CLEANUP_FREE char *dk = final[k] ? lb_xstrdup(final[k]) : NULL;
            if (!dk)
                continue;
            *strrchr(dk, '/') = '\0';
            if (strcmp(dk, dir) != 0)
                continue;
            seen |= k < i;
            need += ds[k].nonempty_windows * r->window_size;
        }
        if (!seen && check_space(*dir ? dir : "/", need) < 0)
            goto out;
    }
    for (size_t i = 0; i < nd; i++)
        if (final[i] && agent_restore_check(r, mfd, id, ds[i].name) < 0)
            goto out;
    if (restore_disks(r, mfd, id, ds, nd, final, fmts, NULL) < 0)
        goto out;
    /* Back on its own images, untracked: drop our overlays and state. */
    {
        CLEANUP_FREE char *ix = agent_virt_xml(&b.dom, VIR_DOMAIN_XML_INACTIVE);
        char **paths = lb_xcalloc(nt ? nt : 1, sizeof *paths);
        CLEANUP_FREE char *nx = NULL;
        size_t k = 0;
        for (size_t i = 0; i < nd; i++)
            if (final[i])
                paths[k++] = final[i];
        nx = ix ? agent_xml_set_disks(ix, nt, tg, paths, fmts_s) : NULL;
        free(paths);
        if (!nx || agent_virt_define(v, nx) < 0)
            goto out;
    }
    for (size_t i = 0; i < b.st->nd; i++) {
        struct track_disk *td = &b.st->d[i];
        bool restored = false;
        for (size_t k = 0; k < nt; k++)
            restored |= strcmp(tg[k], td->target) == 0;
        if (!restored)
            continue;
        for (size_t k = 0; k < td->nov; k++)
            if (unlink(td->ov[k]) < 0 && errno != ENOENT)
                lb_warn("cannot delete %s: %s", td->ov[k], strerror(errno));
        track_disk_reset(td);
    }
    {
        bool any = false;
        for (size_t i = 0; i < b.st->nd; i++)
            any |= b.st->d[i].nov > 0;
        if (any ? track_save(b.h) < 0 : track_remove(b.h) < 0)
            goto out;
    }
    ret = 0;
out:
    for (size_t i = 0; i < nd; i++)
        free(final[i]);
    free(final);
    free(fmts);
    free(fmts_s);
    free(tg);
    agent_vdisks_free(sd, nsd);
    track_close(b.h);
    agent_dom_free(&b.dom);
    agent_virt_close(v);
    return ret;
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
        if (restore_in_place(&a, r, mfd, id, xml, ds, nd) < 0)
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
                                    fmt_name(a.fmt));
            if (!resuming && stat(final[i], &sb) == 0) {
                lb_buf_append(&exists, " ", 1);
                lb_buf_append(&exists, final[i], strlen(final[i]));
            }
            need += ds[i].nonempty_windows * r->window_size;
            tg[nt] = ds[i].name;
            fs[nt] = (char *)fmt_name(a.fmt);
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
        if (!newxml || check_space(a.to, need) < 0)
            goto fail;
        /* Every chunk must be there before anything is written. */
        for (size_t i = 0; i < nd; i++)
            if (final[i] && agent_restore_check(r, mfd, id, ds[i].name) < 0)
                goto fail;
    }
    if (!a.new_mac) {
        /* Two guests with one MAC collide: warn if the original exists. */
        virConnectPtr c0 = virConnectOpenReadOnly(a.uri);
        virDomainPtr d0 = c0 ? virDomainLookupByName(c0, a.domain) : NULL;
        if (d0 && strstr(newxml, "<interface"))
            lb_warn("%s is still defined: the restored domain has the same MAC "
                    "address(es); use --new-mac before starting both",
                    a.domain);
        if (d0)
            virDomainFree(d0);
        if (c0)
            virConnectClose(c0);
    }
    if (restore_disks(r, mfd, id, ds, nd, final, fmts, marker) < 0)
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
