/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * restore --in-place: a backup's disks written over the domain's own
 * images (which must be at rest), the domain's definition pointed back at
 * them and its tracking dropped, so that its next backup enrols it afresh.
 * The disks themselves are rebuilt by the client layer; this file does
 * what needs libvirt and the journal.
 */
#include "agent/live/live.h"

#include <errno.h>
#include <libvirt/libvirt.h>
#include <string.h>

_Static_assert(AGENT_UUID_STRING_BUFLEN == VIR_UUID_STRING_BUFLEN,
               "live/virt.h: AGENT_UUID_STRING_BUFLEN");

/* Where each restored disk goes: b->disks[i] to final[i] (NULL: not
 * restored), in fmts[i]; and the same as parallel lists of the n restored
 * ones, for agent_xml_set_disks. */
struct inplace_plan {
    size_t nd, n;
    char **final;
    enum agent_format *fmts;
    char **targets, **paths, **formats; /* borrowed strings */
};

static void
plan_free(struct inplace_plan *p)
{
    for (size_t i = 0; i < p->nd; i++)
        free(p->final[i]);
    free(p->final);
    free(p->fmts);
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

/* The disk's own image, from the XML saved with the backup: a raw or
 * qcow2 file. */
static const struct agent_vdisk *
own_image(const struct agent_vdisk *sd, size_t nsd, const char *disk)
{
    const struct agent_vdisk *d = NULL;

    for (size_t k = 0; k < nsd; k++)
        if (strcmp(sd[k].target, disk) == 0)
            d = &sd[k];
    if (!d || !d->source) {
        lb_fail(EINVAL, "disk %s is not in the saved XML", disk);
        return NULL;
    }
    if (strncmp(d->source, "/dev/", 5) == 0) {
        lb_fail(EINVAL,
                "disk %s is the block device %s: in-place restore "
                "of block devices is not supported yet",
                d->target, d->source);
        lb_error_hint("restore it elsewhere with --to DIR and copy it");
        return NULL;
    }
    if (strcmp(d->format, "raw") != 0 && strcmp(d->format, "qcow2") != 0) {
        lb_fail(EINVAL,
                "disk %s is %s: in-place restore writes raw or qcow2 only",
                d->target, d->format);
        return NULL;
    }
    return d;
}

static int
plan_targets(const struct livebk_inplace *a, const struct agent_backup *b,
             const char *xml, struct inplace_plan *p)
{
    struct agent_vdisk *sd = NULL;
    size_t nsd = 0, nd = b->ndisks;
    int ret = -1;

    p->nd = nd;
    p->final = lb_xcalloc(nd ? nd : 1, sizeof *p->final);
    p->fmts = lb_xcalloc(nd ? nd : 1, sizeof *p->fmts);
    p->targets = lb_xcalloc(nd ? nd : 1, sizeof *p->targets);
    p->paths = lb_xcalloc(nd ? nd : 1, sizeof *p->paths);
    p->formats = lb_xcalloc(nd ? nd : 1, sizeof *p->formats);
    if (agent_xml_disks(xml, &sd, &nsd) < 0)
        return -1;
    for (size_t i = 0; i < nd; i++) {
        const struct agent_vdisk *d;
        if (!disk_wanted(a, b->disks[i].name))
            continue;
        d = own_image(sd, nsd, b->disks[i].name);
        if (!d)
            goto out;
        p->final[i] = lb_xstrdup(d->source);
        p->fmts[i] =
            strcmp(d->format, "raw") == 0 ? AGENT_FMT_RAW : AGENT_FMT_QCOW2;
        p->targets[p->n] = (char *)b->disks[i].name; /* only read */
        p->paths[p->n] = p->final[i];
        p->formats[p->n] = (char *)agent_format_name(p->fmts[i]);
        p->n++;
    }
    ret = 0;
out:
    agent_vdisks_free(sd, nsd);
    return ret;
}

/* The new images sit beside the old ones until renamed over them: each
 * filesystem needs room for all the disks restored into it. */
static int
check_room(const struct agent_backup *b, const struct inplace_plan *p)
{
    uint64_t ws = agent_repo_window_size(b->r);

    for (size_t i = 0; i < p->nd; i++) {
        CLEANUP_FREE char *dir = NULL;
        uint64_t need = 0;
        bool seen = false;
        if (!p->final[i])
            continue;
        dir = lb_xstrdup(p->final[i]);
        *strrchr(dir, '/') = '\0';
        for (size_t k = 0; k < p->nd; k++) {
            CLEANUP_FREE char *dk =
                p->final[k] ? lb_xstrdup(p->final[k]) : NULL;
            if (!dk)
                continue;
            *strrchr(dk, '/') = '\0';
            if (strcmp(dk, dir) != 0)
                continue;
            seen |= k < i;
            need += b->disks[k].nonempty_windows * ws;
        }
        if (!seen && agent_restore_check_space(*dir ? dir : "/", need) < 0)
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
livebk_restore_in_place(const struct livebk_inplace *a, struct agent_backup *b,
                        const char *xml)
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
    if (plan_targets(a, b, xml, &p) < 0 || check_room(b, &p) < 0)
        goto out;
    /* Every chunk must be there before anything is written. */
    for (size_t i = 0; i < p.nd; i++)
        if (p.final[i] && agent_restore_check(b, b->disks[i].name) < 0)
            goto out;
    if (agent_restore_disks(b, p.final, p.fmts, NULL) < 0 ||
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
