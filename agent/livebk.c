/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Live (and at rest) backup of a libvirt domain on tracking overlays
 * (DESIGN.md, "Change tracking"; track.h for the state):
 *
 *   prepare   create a new qcow2 overlay (128k clusters, extended L2: 4 KiB
 *             subclusters) over each disk's top, journal it. No freeze yet.
 *   switch    running: freeze, one atomic disk-only snapshot of every disk
 *             onto its overlay, thaw at once; shut off: redefine the
 *             domain with the overlays. Journal.
 *   back up   the layer the guest just left: an incremental of what was
 *             allocated above the acknowledged point (a full read for a new
 *             disk or when tracking was lost).
 *   commit    only after the repository acknowledged the backup: block-
 *             commit the acknowledged overlays into the user's top image
 *             (qemu-img commit at rest), delete them. Journal.
 *
 * livebk_recover runs before every backup and for `livebackup recover`:
 * thaw first, always; then finish or undo whatever a crash left.
 */
#include "agent/livebk.h"
#include "agent/run.h"

#include <errno.h>
#include <libvirt/libvirt.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define COMMIT_TIMEOUT 3600

/* Same file? (paths in the XML and in our state may differ in spelling) */
static bool
same_path(const char *a, const char *b)
{
    struct stat sa, sb;

    if (!a || !b)
        return false;
    if (strcmp(a, b) == 0)
        return true;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static char *
sanitize(const char *s)
{
    char *r = lb_xstrdup(s);

    for (char *p = r; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
            *p = '_';
    return r;
}

static char *
overlay_path(const struct livebk_opts *o, const char *dom, const char *target,
             const char *top)
{
    CLEANUP_FREE char *dir = NULL;
    CLEANUP_FREE char *name = sanitize(dom);
    char stamp[32];
    uint16_t rnd = 0;
    time_t t = time(NULL);
    struct tm tm;

    if (o->overlay_dir) {
        dir = lb_xstrdup(o->overlay_dir);
    } else {
        const char *slash = strrchr(top, '/');
        dir = slash && slash != top ? strndup(top, (size_t)(slash - top))
                                    : lb_xstrdup("/");
    }
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
    lb_random(&rnd, sizeof rnd);
    return lb_xasprintf("%s/%s-%s.lbtrack-%s-%04x.qcow2", dir, name, target,
                        stamp, rnd);
}

/* Virtual size and format of an image (also one a running QEMU holds). */
static int
image_info(const char *path, uint64_t *size, char **fmt, char **backing)
{
    struct agent_layer *l;
    size_t n;

    if (agent_chain(path, true, &l, &n) < 0)
        return -1;
    *size = l[0].size;
    if (fmt)
        *fmt = lb_xstrdup(l[0].format);
    if (backing)
        *backing = n > 1 ? lb_xstrdup(l[1].path) : NULL;
    agent_chain_free(l, n);
    return 0;
}

static int
create_overlay(const char *path, const char *backing, const char *fmt,
               uint64_t size)
{
    char sz[32];
    char *argv[] = {"qemu-img", "create",
                    "-q",       "-f",
                    "qcow2",    "-u",
                    "-o",       "cluster_size=128k,extended_l2=on",
                    "-b",       (char *)backing,
                    "-F",       (char *)fmt,
                    "--",       (char *)path,
                    sz,         NULL};

    snprintf(sz, sizeof sz, "%llu", (unsigned long long)size);
    if (agent_run_ok(argv, NULL) < 0) {
        lb_error_prefix("cannot create the tracking overlay %s", path);
        lb_error_hint("the overlay directory must be writable and have room "
                      "(--overlay-dir DIR puts overlays elsewhere)");
        return -1;
    }
    return 0;
}

/* ---- chain checks ---------------------------------------------------------
 */

/*
 * Does the disk still run on our overlays exactly? Its top must be our
 * active overlay, below it our older overlays, then the user's top. Fills
 * why (for the message) when not.
 */
static bool
chain_intact(const struct agent_vdisk *vd, const struct track_disk *td,
             bool live, char *why, size_t whylen)
{
    struct agent_layer *l = NULL;
    size_t n = 0, need = td->nov + 1;
    bool ok = true;

    if (!same_path(vd->source, td->ov[td->nov - 1])) {
        snprintf(why, whylen, "its image is now %s, not the tracking overlay",
                 vd->source);
        return false;
    }
    /* The chain below the top: libvirt's (live), or the images' own. */
    if (!live || vd->nchain < td->nov) {
        if (agent_chain(vd->source, true, &l, &n) < 0) {
            snprintf(why, whylen, "its chain cannot be read (%s)",
                     lb_error_msg());
            return false;
        }
    }
    for (size_t k = 1; k < need && ok; k++) {
        const char *want = k < td->nov ? td->ov[td->nov - 1 - k] : td->user_top;
        const char *have = l ? (k < n ? l[k].path : NULL)
                             : (k - 1 < vd->nchain ? vd->chain[k - 1] : NULL);
        if (!same_path(have, want)) {
            snprintf(why, whylen,
                     "its backing chain was changed (found %s "
                     "where %s should be)",
                     have ? have : "nothing", want);
            ok = false;
        }
    }
    agent_chain_free(l, n);
    return ok;
}

/* ---- the commit phase
 * -------------------------------------------------------- */

static void
drop_committed(struct track_disk *td)
{
    for (size_t k = 0; k < td->acked; k++) {
        if (unlink(td->ov[k]) < 0 && errno != ENOENT)
            lb_warn("cannot delete %s: %s", td->ov[k], strerror(errno));
        free(td->ov[k]);
    }
    memmove(td->ov, td->ov + td->acked, (td->nov - td->acked) * sizeof *td->ov);
    td->nov -= td->acked;
    td->acked = 0;
}

/* Offline: qemu-img commit into user_top, rebase the next layer onto it. */
static int
commit_at_rest(struct track_disk *td)
{
    char *commit[] = {"qemu-img",
                      "commit",
                      "-q",
                      "-b",
                      td->user_top,
                      "--",
                      td->ov[td->acked - 1],
                      NULL};
    char *rebase[] = {"qemu-img",        "rebase", "-u",         "-b",
                      td->user_top,      "-F",     td->user_fmt, "--",
                      td->ov[td->acked], NULL};

    if (agent_run_ok(commit, NULL) < 0 || agent_run_ok(rebase, NULL) < 0)
        return -1;
    return 0;
}

/*
 * Commit every disk's acknowledged overlays into its user_top. A failure
 * leaves the overlays in the chain (the guest is healthy) and is reported;
 * the next run retries. Returns the number of disks that failed.
 */
static int
commit_acked(struct livebk *b)
{
    int failed = 0;

    b->st->step = TRACK_BLOCKCOMMIT;
    if (track_save(b->h) < 0)
        return -1;
    for (size_t i = 0; i < b->st->nd; i++) {
        struct track_disk *td = &b->st->d[i];
        int r;

        if (td->acked == 0 || td->nov <= td->acked)
            continue;
        if (agent_dom_refresh(&b->dom) < 0)
            return -1;
        if (b->dom.running) {
            r = agent_virt_wait_job(b->v, &b->dom, td->target, COMMIT_TIMEOUT);
            if (r == 0) {
                /* Was it already committed (a job a crash left behind)? */
                struct agent_vdisk *vd;
                size_t nd;
                bool still = true;
                if (agent_virt_disks(&b->dom, false, &vd, &nd) == 0) {
                    for (size_t k = 0; k < nd; k++) {
                        if (strcmp(vd[k].target, td->target) != 0)
                            continue;
                        still = false;
                        for (size_t c = 0; c < vd[k].nchain; c++)
                            still |= same_path(vd[k].chain[c],
                                               td->ov[td->acked - 1]);
                    }
                    agent_vdisks_free(vd, nd);
                }
                r = still
                        ? agent_virt_commit(b->v, &b->dom, td->target,
                                            td->user_top, td->ov[td->acked - 1],
                                            COMMIT_TIMEOUT)
                        : 0;
            }
        } else {
            r = commit_at_rest(td);
        }
        if (r < 0) {
            lb_warn("disk %s: committing the backed-up overlay failed: %s; it "
                    "stays in the chain and the next run commits it",
                    td->target, lb_error_msg());
            failed++;
            continue;
        }
        drop_committed(td);
        if (track_save(b->h) < 0)
            return -1;
    }
    b->st->step = TRACK_IDLE;
    if (track_save(b->h) < 0)
        return -1;
    return failed;
}

/* ---- recovery
 * -------------------------------------------------------------------- */

int
livebk_recover(struct livebk *b, bool verbose)
{
    struct track_state *st = b->st;
    struct agent_vdisk *vd = NULL;
    size_t nd = 0;
    bool acted = false;

    /* Thaw first, always: a guest left frozen by a crash must not wait for
     * anything else (nor for an agent that does not answer). */
    if (b->dom.running) {
        /* A working agent answers in well under a second; one that does
         * not must not hold the run up (the freeze will say so). */
        agent_virt_set_agent_timeout(&b->dom,
                                     (int)LB_MIN(2u, b->o->freeze_timeout));
        agent_virt_thaw(b->v, &b->dom, false);
        agent_virt_set_agent_timeout(&b->dom,
                                     VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_DEFAULT);
    }
    if (st->step == TRACK_IDLE) {
        bool pending = false;
        for (size_t i = 0; i < st->nd; i++)
            pending |= st->d[i].acked > 0 || st->d[i].newov;
        if (!pending) {
            if (verbose)
                lb_info("%s: nothing to recover", st->name);
            return 0;
        }
    }
    if (verbose || st->step != TRACK_IDLE)
        lb_info("%s: recovering from an interrupted run (step %s)", st->name,
                track_step_name(st->step));
    if (agent_virt_disks(&b->dom, !b->dom.running, &vd, &nd) < 0)
        return -1;

    /* Overlays prepared but perhaps not switched in. */
    for (size_t i = 0; i < st->nd; i++) {
        struct track_disk *td = &st->d[i];
        const struct agent_vdisk *cur = NULL;

        if (!td->newov)
            continue;
        for (size_t k = 0; k < nd; k++)
            if (strcmp(vd[k].target, td->target) == 0)
                cur = &vd[k];
        if (cur && same_path(cur->source, td->newov)) {
            /* The switch happened before the crash: adopt the overlay. */
            CLEANUP_FREE char *backing = NULL;
            CLEANUP_FREE char *bfmt = NULL;
            uint64_t sz;
            if (image_info(td->newov, &sz, NULL, &backing) < 0)
                goto fail;
            if (td->nov && same_path(backing, td->ov[td->nov - 1])) {
                td->ov[td->nov++] = td->newov;
            } else {
                uint64_t bsz;
                if (!backing || image_info(backing, &bsz, &bfmt, NULL) < 0)
                    goto fail;
                track_disk_reset(td);
                td->user_top = lb_xstrdup(backing);
                td->user_fmt = lb_xstrdup(bfmt);
                td->size = sz;
                td->ov[td->nov++] = td->newov;
            }
            lb_info("%s: disk %s runs on %s (kept; its changes go into the "
                    "next backup)",
                    st->name, td->target, td->newov);
        } else {
            lb_info("%s: disk %s: removing the unused overlay %s", st->name,
                    td->target, td->newov);
            if (unlink(td->newov) < 0 && errno != ENOENT)
                lb_warn("cannot delete %s: %s", td->newov, strerror(errno));
            free(td->newov);
        }
        td->newov = NULL;
        acted = true;
    }
    /* A switched backup that did not commit: its overlays stay and their
     * changes go into the next backup, which sends everything above the
     * acknowledged point. */
    st->step = TRACK_IDLE;
    if (track_save(b->h) < 0)
        goto fail;
    /* Acknowledged overlays not yet committed (also a crash during a block
     * commit, whose job may still run): finish. */
    for (size_t i = 0; i < st->nd; i++)
        if (st->d[i].acked > 0) {
            acted = true;
            if (commit_acked(b) < 0)
                goto fail;
            break;
        }
    if (verbose && !acted)
        lb_info("%s: nothing to recover", st->name);
    agent_vdisks_free(vd, nd);
    return 0;
fail:
    agent_vdisks_free(vd, nd);
    return -1;
}

/* ---- one backup
 * ------------------------------------------------------------------ */

struct plan {
    const struct agent_vdisk *vd;
    struct track_disk *td;
    bool incremental;
    bool keep; /* the disk still runs on our overlays (even if full) */
    char *old_top, *old_fmt;
    uint64_t size;
    char *newov;
    char why[512];
};

static bool
wanted(const struct livebk_opts *o, const char *target)
{
    if (!o->disks)
        return true;
    for (size_t i = 0; i < o->ndisks; i++)
        if (strcmp(o->disks[i], target) == 0)
            return true;
    return false;
}

/* The XML saved with the backup: the user's images, not our overlays. */
static char *
saved_xml(struct livebk *b)
{
    CLEANUP_FREE char *xml = agent_virt_xml(
        &b->dom, b->dom.persistent ? VIR_DOMAIN_XML_INACTIVE : 0);
    char **t = lb_xcalloc(b->st->nd + 1, sizeof *t);
    char **p = lb_xcalloc(b->st->nd + 1, sizeof *p);
    char **f = lb_xcalloc(b->st->nd + 1, sizeof *f);
    size_t n = 0;
    char *out = NULL;

    if (!xml)
        goto out;
    for (size_t i = 0; i < b->st->nd; i++) {
        struct track_disk *td = &b->st->d[i];
        if (td->nov == 0)
            continue;
        t[n] = td->target;
        p[n] = td->user_top;
        f[n] = td->user_fmt;
        n++;
    }
    out = agent_xml_set_disks(xml, n, t, p, f);
out:
    free(t);
    free(p);
    free(f);
    return out;
}

static void
plan_free(struct plan *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].old_top);
        free(p[i].old_fmt);
        free(p[i].newov);
    }
    free(p);
}

/* Remove overlays created for a switch that did not happen. */
static void
undo_prepare(struct livebk *b, struct plan *pl, size_t np)
{
    for (size_t i = 0; i < np; i++) {
        if (!pl[i].newov)
            continue;
        unlink(pl[i].newov);
        if (pl[i].td->newov) {
            free(pl[i].td->newov);
            pl[i].td->newov = NULL;
        }
    }
    b->st->step = TRACK_IDLE;
    track_save(b->h);
}

int
livebk_backup(struct livebk *b, struct agent_repo *r, struct livebk_result *res)
{
    const struct livebk_opts *o = b->o;
    struct track_state *st = b->st;
    struct agent_vdisk *vd = NULL;
    size_t nd = 0, np = 0;
    struct plan *pl = NULL;
    struct agent_list l = {0};
    bool parent_ok = false, any_incr = false, quiesce;
    struct agent_disk_spec *specs = NULL;
    struct proto_kv meta = {0};
    CLEANUP_FREE char *xml = NULL;
    uint64_t t_freeze = 0, t_thaw = 0;
    int ret = -1;

    memset(res, 0, sizeof *res);
    if (livebk_recover(b, false) < 0)
        return -1;
    if (agent_dom_refresh(&b->dom) < 0)
        return -1;
    quiesce = !o->crash && b->dom.running;
    if (quiesce && b->dom.paused) {
        lb_fail(EINVAL, "%s is paused: the guest agent cannot freeze it",
                st->name);
        lb_error_hint("resume it, or back it up with --consistency crash (a "
                      "paused guest does not write)");
        return -1;
    }
    if (agent_virt_disks(&b->dom, !b->dom.running, &vd, &nd) < 0)
        return -1;

    /* The parent: the backup our acknowledgements refer to, which must
     * still be in this repository. */
    if (agent_repo_list(r, st->name, &l) < 0)
        goto out;
    if (st->last_backup[0] && strcmp(st->repo_id, r->repo_id) == 0)
        for (size_t i = 0; i < l.n; i++)
            parent_ok |=
                strcmp(proto_kv_get(&l.b[i], "id"), st->last_backup) == 0;

    /* Plan the disks. */
    pl = lb_xcalloc(nd ? nd : 1, sizeof *pl);
    for (size_t i = 0; i < nd; i++) {
        const struct agent_vdisk *d = &vd[i];
        struct plan *p = &pl[np];

        if (!wanted(o, d->target))
            continue;
        if (strcmp(d->device, "disk") != 0 && strcmp(d->device, "lun") != 0) {
            lb_info("%s: disk %s is a %s: skipped", st->name, d->target,
                    d->device);
            continue;
        }
        if (d->readonly || d->shareable) {
            lb_info("%s: disk %s is %s: skipped", st->name, d->target,
                    d->readonly ? "read-only" : "shareable");
            continue;
        }
        if (d->kind == AGENT_DISK_NETWORK || d->kind == AGENT_DISK_OTHER) {
            lb_warn("%s: disk %s: %s disks are not supported yet: skipped",
                    st->name, d->target,
                    d->kind == AGENT_DISK_NETWORK ? "network" : "this kind of");
            continue;
        }
        if (!d->source) {
            lb_info("%s: disk %s has no medium: skipped", st->name, d->target);
            continue;
        }
        p->vd = d;
        p->td = track_disk_get(st, d->target);
        p->old_top = lb_xstrdup(d->source);
        if (image_info(d->source, &p->size, &p->old_fmt, NULL) < 0)
            goto out;
        if (!p->td || p->td->nov == 0) {
            snprintf(p->why, sizeof p->why, "first backup of this disk");
            /* Beside tracked disks: one added since (the README promises
             * a message for each disk that falls back to full). */
            if (!p->td && st->nd > 0)
                lb_info("%s: disk %s is new since the last backup: full "
                        "backup of this disk",
                        st->name, d->target);
        } else if (o->full) {
            snprintf(p->why, sizeof p->why, "--full");
        } else if (!parent_ok) {
            if (st->last_backup[0] && strcmp(st->repo_id, r->repo_id) != 0)
                snprintf(p->why, sizeof p->why,
                         "tracking refers to another repository");
            else
                snprintf(p->why, sizeof p->why,
                         "its last backup %s is gone from the repository",
                         st->last_backup);
        } else if (!chain_intact(d, p->td, b->dom.running, p->why,
                                 sizeof p->why)) {
            /* why filled; the overlays are part of the user's chain now */
        } else if (p->size != p->td->size) {
            p->keep = true;
            snprintf(p->why, sizeof p->why,
                     "it was resized (%llu -> %llu "
                     "bytes)",
                     (unsigned long long)p->td->size,
                     (unsigned long long)p->size);
        } else if (o->full_every &&
                   p->td->incrementals + 1 >= o->full_every) {
            snprintf(p->why, sizeof p->why, "--full-every %u", o->full_every);
            p->keep = true;
        } else {
            p->incremental = p->keep = true;
        }
        /* --full or a lost parent: still on our overlays. */
        if (!p->incremental && p->td && p->td->nov && !p->keep) {
            char unused[512];
            p->keep =
                chain_intact(d, p->td, b->dom.running, unused, sizeof unused);
        }
        if (!p->incremental && p->td && p->td->nov &&
            strncmp(p->why, "--full", 6) != 0)
            lb_warn("%s: disk %s: tracking lost (%s): full backup of this disk",
                    st->name, d->target, p->why);
        any_incr |= p->incremental;
        np++;
    }
    if (np == 0) {
        lb_fail(EINVAL, "%s has no disk livebackup can back up", st->name);
        goto out;
    }

    /* Prepare: journal the overlays, then create them (no freeze yet). */
    for (size_t i = 0; i < np; i++) {
        struct plan *p = &pl[i];
        if (!p->td) {
            p->td = track_disk_add(st, p->vd->target);
            p->td->user_top = lb_xstrdup(p->old_top);
            p->td->user_fmt = lb_xstrdup(p->old_fmt);
            p->td->size = p->size;
        }
        p->newov = overlay_path(o, st->name, p->vd->target, p->old_top);
        p->td->newov = lb_xstrdup(p->newov);
    }
    /* track_disk_add may have moved the array: refresh the pointers. */
    for (size_t i = 0; i < np; i++)
        pl[i].td = track_disk_get(st, pl[i].vd->target);
    st->step = TRACK_PREPARED;
    if (track_save(b->h) < 0)
        goto out;
    for (size_t i = 0; i < np; i++)
        if (create_overlay(pl[i].newov, pl[i].old_top, pl[i].old_fmt,
                           pl[i].size) < 0) {
            undo_prepare(b, pl, np);
            goto out;
        }

    /* Switch: the freeze covers one snapshot call, nothing else. */
    {
        char **t = lb_xcalloc(np, sizeof *t), **ov = lb_xcalloc(np, sizeof *ov);
        char **f = lb_xcalloc(np, sizeof *f);
        int rc = 0;
        for (size_t i = 0; i < np; i++) {
            t[i] = (char *)pl[i].vd->target;
            ov[i] = pl[i].newov;
            f[i] = "qcow2";
        }
        if (b->dom.running) {
            if (quiesce) {
                t_freeze = lb_now_ns();
                rc = agent_virt_freeze(b->v, &b->dom, o->freeze_timeout);
                if (rc == 0)
                    lb_fault_point("agent:after-freeze");
            }
            if (rc == 0) {
                rc = agent_virt_snapshot(&b->dom, np, t, ov);
                if (quiesce) {
                    char msg[1024];
                    snprintf(msg, sizeof msg, "%s",
                             rc < 0 ? lb_error_msg() : "");
                    if (agent_virt_thaw(b->v, &b->dom, true) < 0)
                        lb_warn("%s", lb_error_msg());
                    t_thaw = lb_now_ns();
                    if (rc < 0)
                        lb_fail(EIO, "%s", msg);
                }
            }
            if (quiesce) {
                /* The domain keeps libvirt's own agent timeout. */
                char msg[1024], hint[512];
                snprintf(msg, sizeof msg, "%s", lb_error_msg());
                snprintf(hint, sizeof hint, "%s", lb_error_hint_msg());
                agent_virt_set_agent_timeout(
                    &b->dom, VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_DEFAULT);
                if (rc < 0) {
                    lb_fail(EIO, "%s", msg);
                    if (hint[0])
                        lb_error_hint("%s", hint);
                }
            }
        } else {
            CLEANUP_FREE char *ix =
                agent_virt_xml(&b->dom, VIR_DOMAIN_XML_INACTIVE);
            CLEANUP_FREE char *nx =
                ix ? agent_xml_set_disks(ix, np, t, ov, f) : NULL;
            rc = nx ? agent_virt_define(b->v, nx) : -1;
        }
        free(t);
        free(ov);
        free(f);
        if (rc < 0) {
            char msg[1024], hint[512];
            snprintf(msg, sizeof msg, "%s", lb_error_msg());
            snprintf(hint, sizeof hint, "%s", lb_error_hint_msg());
            undo_prepare(b, pl, np);
            lb_fail(EIO, "%s", msg);
            if (hint[0])
                lb_error_hint("%s", hint);
            goto out;
        }
    }
    /* Journal the switch. A disk whose chain was changed starts tracking
     * afresh over the image it had: our old overlays are part of the
     * user's chain now. Every other disk keeps its overlays (a full backup
     * acknowledges them all, and they are committed after it). */
    for (size_t i = 0; i < np; i++) {
        struct track_disk *td = pl[i].td;
        if (!pl[i].keep) {
            for (size_t k = 0; k < td->nov; k++)
                free(td->ov[k]);
            td->nov = td->acked = 0;
            free(td->user_top);
            free(td->user_fmt);
            td->user_top = lb_xstrdup(pl[i].old_top);
            td->user_fmt = lb_xstrdup(pl[i].old_fmt);
        }
        td->size = pl[i].size;
        td->ov[td->nov++] = td->newov;
        td->newov = NULL;
    }
    st->step = TRACK_SWITCHED;
    if (track_save(b->h) < 0)
        goto out;
    lb_fault_point("agent:after-snapshot");
    if (t_thaw)
        res->freeze_ms = (t_thaw - t_freeze) / 1000000u;
    res->quiesced = quiesce;

    /* Back up the layer the guest left. */
    specs = lb_xcalloc(np, sizeof *specs);
    for (size_t i = 0; i < np; i++) {
        struct track_disk *td = pl[i].td;
        specs[i].name = td->target;
        specs[i].path = td->nov >= 2 ? td->ov[td->nov - 2] : td->user_top;
        specs[i].since = pl[i].incremental ? track_acked_point(td) : NULL;
        proto_kv_set(&specs[i].meta, "source", td->user_top);
        proto_kv_set(&specs[i].meta, "format", td->user_fmt);
        if (!pl[i].incremental)
            proto_kv_set(&specs[i].meta, "full_reason", pl[i].why);
        res->disks_incremental += pl[i].incremental;
        res->disks_full += !pl[i].incremental;
    }
    xml = saved_xml(b);
    if (!xml)
        goto failed_backup;
    proto_kv_set(&meta, "kind", any_incr ? "incremental" : "full");
    proto_kv_set(&meta, "source", "libvirt");
    proto_kv_set(&meta, "domain_uuid", st->uuid);
    proto_kv_set(&meta, "consistency", quiesce ? "quiesced" : "crash");
    proto_kv_set_u64(&meta, "freeze_ms", res->freeze_ms);
    proto_kv_set(&meta, "domain_state",
                 b->dom.running ? "running" : "shut off");
    {
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        proto_kv_set(&meta, "host", host);
    }
    if (agent_backup_disks(r, st->name, any_incr ? st->last_backup : "", specs,
                           np, &meta, xml, &res->bk) < 0)
        goto failed_backup;

    /* Acknowledged: everything below the active overlays is in the
     * repository. Journal, then commit them into the user's images. */
    st->step = TRACK_COMMITTED;
    snprintf(st->backup, sizeof st->backup, "%s", res->bk.id);
    snprintf(st->last_backup, sizeof st->last_backup, "%s", res->bk.id);
    snprintf(st->repo_id, sizeof st->repo_id, "%s", r->repo_id);
    for (size_t i = 0; i < np; i++) {
        pl[i].td->acked = pl[i].td->nov - 1;
        pl[i].td->incrementals =
            pl[i].incremental ? pl[i].td->incrementals + 1 : 0;
        snprintf(pl[i].td->last_backup, sizeof pl[i].td->last_backup, "%s",
                 res->bk.id);
    }
    if (track_save(b->h) < 0)
        goto out;
    res->commit_failures = commit_acked(b);
    if (res->commit_failures < 0)
        goto out;
    ret = 0;
    goto out;

failed_backup:
    /* The guest runs on the new overlays; the old ones keep their data,
     * and the next backup sends all of it. */
    {
        char msg[1024], hint[512];
        snprintf(msg, sizeof msg, "%s", lb_error_msg());
        snprintf(hint, sizeof hint, "%s", lb_error_hint_msg());
        st->step = TRACK_IDLE;
        track_save(b->h);
        lb_fail(lb_error_errno(), "%s", msg);
        lb_error_hint("%s", hint[0] ? hint
                                    : "nothing is lost: the next backup of "
                                      "this domain includes these changes");
    }
out:
    for (size_t i = 0; specs && i < np; i++)
        proto_kv_free(&specs[i].meta);
    free(specs);
    proto_kv_free(&meta);
    agent_list_free(&l);
    plan_free(pl, np);
    agent_vdisks_free(vd, nd);
    return ret;
}

/* ---- untrack
 * --------------------------------------------------------------------- */

int
livebk_untrack(struct livebk *b)
{
    struct track_state *st = b->st;
    int failed = 0;

    if (livebk_recover(b, false) < 0)
        return -1;
    for (size_t i = 0; i < st->nd; i++) {
        struct track_disk *td = &st->d[i];
        if (td->nov == 0)
            continue;
        if (agent_dom_refresh(&b->dom) < 0)
            return -1;
        if (b->dom.running) {
            if (agent_virt_commit_active(b->v, &b->dom, td->target,
                                         td->user_top, COMMIT_TIMEOUT) < 0) {
                lb_warn("disk %s: %s", td->target, lb_error_msg());
                failed++;
                continue;
            }
        } else {
            char *commit[] = {
                "qemu-img",          "commit", "-q", "-b", td->user_top, "--",
                td->ov[td->nov - 1], NULL};
            char *t[] = {td->target}, *p[] = {td->user_top},
                 *f[] = {td->user_fmt};
            CLEANUP_FREE char *ix = NULL;
            CLEANUP_FREE char *nx = NULL;
            if (agent_run_ok(commit, NULL) < 0) {
                lb_warn("disk %s: %s", td->target, lb_error_msg());
                failed++;
                continue;
            }
            ix = agent_virt_xml(&b->dom, VIR_DOMAIN_XML_INACTIVE);
            nx = ix ? agent_xml_set_disks(ix, 1, t, p, f) : NULL;
            if (!nx || agent_virt_define(b->v, nx) < 0) {
                lb_warn("disk %s: %s", td->target, lb_error_msg());
                failed++;
                continue;
            }
        }
        td->acked = td->nov;
        drop_committed(td);
        lb_info("%s: disk %s is back on %s", st->name, td->target,
                td->user_top);
        if (track_save(b->h) < 0)
            return -1;
    }
    if (failed)
        return lb_fail(EIO,
                       "%d disk(s) could not be returned to their "
                       "images; run untrack again",
                       failed);
    return track_remove(b->h);
}
