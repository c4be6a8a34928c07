/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * restore --in-place: a backup's disks written over the domain's own
 * images (which must be at rest: files replaced by a rename, block
 * devices written in place), the domain's definition pointed back at
 * them and its tracking dropped, so that its next backup enrols it afresh.
 * Which files those are comes from the domain as it is defined now and
 * this host's journal, matched by target, never from the backup's saved
 * XML: a hostile repository cannot name a file on the host.
 * The disks themselves are rebuilt by the client layer; this file does
 * what needs libvirt and the journal.
 */
#include "agent/live/live.h"

#include <errno.h>
#include <libvirt/libvirt.h>
#include <string.h>
#include <sys/stat.h>

_Static_assert(AGENT_UUID_STRING_BUFLEN == VIR_UUID_STRING_BUFLEN,
               "live/virt.h: AGENT_UUID_STRING_BUFLEN");

/* Where each restored disk goes: b->disks[i] to final[i] (NULL: not
 * restored), in fmts[i], a block device written in place if device[i];
 * and the same as parallel lists of the n restored ones, for
 * agent_xml_set_disks. */
struct inplace_plan {
    size_t nd, n;
    char **final;
    enum agent_format *fmts;
    bool *device;
    char **targets, **paths, **formats; /* borrowed strings */
};

static void
plan_free(struct inplace_plan *p)
{
    for (size_t i = 0; i < p->nd; i++)
        free(p->final[i]);
    free(p->final);
    free(p->fmts);
    free(p->device);
    free(p->targets);
    free(p->paths);
    free(p->formats);
}

static bool
disk_wanted(const struct livebk_inplace *a, const char *disk)
{
    if (!a->ndisks)
        return true;
    for (size_t i = 0; i < a->ndisks; i++)
        if (strcmp(a->disks[i], disk) == 0)
            return true;
    return false;
}

/* Is path one of the tracking overlays of td (a disk on them runs on
 * ours, and its own image is td->user_top)? */
static bool
our_overlay(const struct track_disk *td, const char *path)
{
    for (size_t k = 0; k < td->nov; k++)
        if (strcmp(td->ov[k], path) == 0)
            return true;
    return td->newov && strcmp(td->newov, path) == 0;
}

/*
 * The image an in-place restore of disk target writes over: the disk of
 * that target in the domain as it is defined now (never a path the
 * backup's saved XML names: a repository is not trusted with the host's
 * files), its own image below our tracking overlays, a raw or qcow2 file
 * or a raw block device (*device) at an absolute path. *path and *fmt
 * point into cur or st.
 */
static int
own_image(const struct agent_vdisk *cur, size_t ncur, struct track_state *st,
          const char *domain, const char *target, const char **path,
          const char **fmt, bool *device)
{
    const struct agent_vdisk *d = NULL;
    const struct track_disk *td;
    struct stat sb;

    for (size_t k = 0; k < ncur; k++)
        if (strcmp(cur[k].target, target) == 0)
            d = &cur[k];
    if (!d || strcmp(d->device, "disk") != 0 || !d->source) {
        lb_fail(EINVAL,
                "disk %s of the backup is not a disk of %s as it is "
                "defined now: an in-place restore writes only over the "
                "domain's own disks",
                target, domain);
        lb_error_hint("restore it with --to DIR instead");
        return -1;
    }
    if (d->kind != AGENT_DISK_FILE && d->kind != AGENT_DISK_BLOCK) {
        lb_fail(EINVAL, "disk %s of %s is neither a file nor a block device",
                target, domain);
        return -1;
    }
    *path = d->source;
    *fmt = d->format;
    td = track_disk_get(st, target);
    if (td && td->nov && td->user_top) {
        if (!our_overlay(td, d->source)) {
            lb_fail(EINVAL,
                    "disk %s of %s runs on %s, not on the tracking overlay "
                    "this host made: in-place restore cannot tell its own "
                    "image",
                    target, domain, d->source);
            lb_error_hint("restore it with --to DIR instead");
            return -1;
        }
        *path = td->user_top;
        *fmt = td->user_fmt ? td->user_fmt : "raw";
    }
    if ((*path)[0] != '/' || strcmp(*path, "/") == 0) {
        lb_fail(EINVAL, "disk %s of %s: '%s' is not an absolute file path",
                target, domain, *path);
        return -1;
    }
    if (stat(*path, &sb) < 0)
        return lb_error(errno, "disk %s of %s: %s", target, domain, *path);
    *device = S_ISBLK(sb.st_mode);
    if (*device && strcmp(*fmt, "raw") != 0) {
        lb_fail(EINVAL,
                "disk %s is %s on the block device %s: in-place restore "
                "writes a block device raw only",
                target, *fmt, *path);
        lb_error_hint("restore it with --to DIR instead");
        return -1;
    }
    if (!*device && !S_ISREG(sb.st_mode)) {
        lb_fail(EINVAL,
                "disk %s of %s: %s is neither a regular file nor a block "
                "device",
                target, domain, *path);
        return -1;
    }
    if (strcmp(*fmt, "raw") != 0 && strcmp(*fmt, "qcow2") != 0) {
        lb_fail(EINVAL,
                "disk %s is %s: in-place restore writes raw or qcow2 only",
                target, *fmt);
        return -1;
    }
    return 0;
}

static int
plan_targets(const struct livebk_inplace *a, const struct agent_backup *b,
             struct livebk *lb, struct inplace_plan *p)
{
    CLEANUP_FREE char *xml = agent_virt_xml(&lb->dom, VIR_DOMAIN_XML_INACTIVE);
    struct agent_vdisk *cur = NULL;
    size_t ncur = 0, nd = b->ndisks;
    int ret = -1;

    p->nd = nd;
    p->final = lb_xcalloc(nd ? nd : 1, sizeof *p->final);
    p->fmts = lb_xcalloc(nd ? nd : 1, sizeof *p->fmts);
    p->device = lb_xcalloc(nd ? nd : 1, sizeof *p->device);
    p->targets = lb_xcalloc(nd ? nd : 1, sizeof *p->targets);
    p->paths = lb_xcalloc(nd ? nd : 1, sizeof *p->paths);
    p->formats = lb_xcalloc(nd ? nd : 1, sizeof *p->formats);
    if (!xml || agent_xml_disks(xml, &cur, &ncur) < 0)
        return -1;
    for (size_t i = 0; i < nd; i++) {
        const char *path, *fmt;
        if (!disk_wanted(a, b->disks[i].name))
            continue;
        if (own_image(cur, ncur, lb->st, lb->dom.name, b->disks[i].name, &path,
                      &fmt, &p->device[i]) < 0)
            goto out;
        p->final[i] = lb_xstrdup(path);
        p->fmts[i] = strcmp(fmt, "raw") == 0 ? AGENT_FMT_RAW : AGENT_FMT_QCOW2;
        p->targets[p->n] = (char *)b->disks[i].name; /* only read */
        p->paths[p->n] = p->final[i];
        p->formats[p->n] = (char *)agent_format_name(p->fmts[i]);
        p->n++;
    }
    ret = 0;
out:
    agent_vdisks_free(cur, ncur);
    return ret;
}

/* The directory of an absolute file path (own_image checked it). */
static char *
dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *d;

    if (!slash || slash == path)
        return lb_xstrdup("/");
    d = lb_xstrdup(path);
    d[slash - path] = '\0';
    return d;
}

/* The new images sit beside the old ones until renamed over them: each
 * filesystem needs room for all the disks restored into it. A device is
 * written in place (its size is checked when it is opened). */
static int
check_room(const struct agent_backup *b, const struct inplace_plan *p)
{
    uint64_t ws = agent_repo_window_size(b->r);

    for (size_t i = 0; i < p->nd; i++) {
        CLEANUP_FREE char *dir = NULL;
        uint64_t need = 0;
        bool seen = false;
        if (!p->final[i] || p->device[i])
            continue;
        dir = dir_of(p->final[i]);
        for (size_t k = 0; k < p->nd; k++) {
            CLEANUP_FREE char *dk =
                p->final[k] && !p->device[k] ? dir_of(p->final[k]) : NULL;
            if (!dk || strcmp(dk, dir) != 0)
                continue;
            seen |= k < i;
            need += b->disks[k].nonempty_windows * ws;
        }
        if (!seen && agent_restore_check_space(dir, need) < 0)
            return -1;
    }
    return 0;
}

/* Back on its own images, untracked: the definition names them again,
 * our overlays and state are dropped. */
static int
untrack_restored(struct livebk *lb, const struct inplace_plan *p)
{
    CLEANUP_FREE char *ix = agent_virt_xml(&lb->dom, VIR_DOMAIN_XML_INACTIVE);
    CLEANUP_FREE char *nx =
        ix ? agent_xml_set_disks(ix, p->n, p->targets, p->paths, p->formats)
           : NULL;
    struct track_state *st = lb->st;
    bool any = false;

    if (!nx || agent_virt_define(lb->v, nx) < 0)
        return -1;
    for (size_t i = 0; i < st->nd; i++) {
        struct track_disk *td = &st->d[i];
        bool restored = false;
        for (size_t k = 0; k < p->n; k++)
            restored |= strcmp(p->targets[k], td->target) == 0;
        if (!restored)
            continue;
        for (size_t k = 0; k < td->nov; k++)
            if (unlink(td->ov[k]) < 0 && errno != ENOENT)
                lb_warn("cannot delete %s: %s", td->ov[k], strerror(errno));
        track_disk_reset(td);
    }
    for (size_t i = 0; i < st->nd; i++)
        any |= st->d[i].nov > 0;
    return any ? track_save(lb->h) : track_remove(lb->h);
}

int
livebk_restore_in_place(const struct livebk_inplace *a, struct agent_backup *b)
{
    struct livebk lb = {0};
    struct inplace_plan p = {0};
    int ret = -1;

    lb.v = agent_virt_open(a->uri);
    if (!lb.v || agent_virt_lookup(lb.v, a->domain, &lb.dom) < 0)
        goto out;
    lb.h = track_open(lb.dom.uuid, lb.dom.name, &lb.st);
    if (!lb.h)
        goto out;
    if (lb.dom.running) {
        lb_fail(EBUSY, "%s is running: an in-place restore needs it shut off",
                lb.dom.name);
        lb_error_hint("virsh shutdown %s, then run the restore again",
                      lb.dom.name);
        goto out;
    }
    if (plan_targets(a, b, &lb, &p) < 0 || check_room(b, &p) < 0)
        goto out;
    /* Every chunk must be there before anything is written. */
    for (size_t i = 0; i < p.nd; i++)
        if (p.final[i] && agent_restore_check(b, b->disks[i].name) < 0)
            goto out;
    if (agent_restore_disks(b, p.final, p.fmts, p.device, NULL) < 0 ||
        untrack_restored(&lb, &p) < 0)
        goto out;
    ret = 0;
out:
    plan_free(&p);
    track_close(lb.h);
    agent_dom_free(&lb.dom);
    agent_virt_close(lb.v);
    return ret;
}
