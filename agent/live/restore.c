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

int
livebk_restore_in_place(const struct livebk_inplace *a, struct agent_repo *r,
                        int mfd, const char *id, const char *xml,
                        const struct agent_restore_disk *ds, size_t nd)
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
        fmts_s[nt] = (char *)agent_format_name(fmts[i]);
        tg[nt] = (char *)ds[i].name; /* only read */
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
        if (!seen && agent_restore_check_space(*dir ? dir : "/", need) < 0)
            goto out;
    }
    for (size_t i = 0; i < nd; i++)
        if (final[i] && agent_restore_check(r, mfd, id, ds[i].name) < 0)
            goto out;
    if (agent_restore_disks(r, mfd, id, ds, nd, final, fmts, NULL) < 0)
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
