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
 *
 * This file holds the overlays' life (create, check, commit, recover,
 * untrack); backup.c runs one backup through the phases above, and
 * decide.c decides, per disk, between full and incremental.
 */
#include "agent/client/run.h"
#include "agent/live/livebk_int.h"

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

/* The directory a new overlay over top goes to. Caller frees. */
static char *
overlay_dir(const struct livebk_opts *o, const char *top)
{
    const char *slash = strrchr(top, '/');

    if (o->overlay_dir)
        return lb_xstrdup(o->overlay_dir);
    return slash && slash != top ? lb_xasprintf("%.*s", (int)(slash - top), top)
                                 : lb_xstrdup("/");
}

int
livebk_overlay_dir_check(const struct livebk_opts *o, const char *target,
                         const char *top)
{
    CLEANUP_FREE char *dir = overlay_dir(o, top);
    char real[PATH_MAX];
    const char *d = realpath(dir, real) ? real : dir;

    /* devtmpfs: beside an LV's node (/dev/VG, /dev/mapper) an overlay
     * lives in memory, and a reboot takes it with every write the guest
     * made since the last backup. */
    if (strcmp(d, "/dev") != 0 && strncmp(d, "/dev/", 5) != 0)
        return 0;
    lb_fail(EINVAL,
            "disk %s is on %s: its tracking overlay would go to %s, which "
            "is in memory and lost at reboot, with the guest's writes since "
            "the last backup",
            target, top, d);
    lb_error_hint("give --overlay-dir DIR on a persistent filesystem (or "
                  "overlay-dir = DIR in livebackup.conf)");
    return -1;
}

char *
livebk_overlay_path(const struct livebk_opts *o, const char *dom,
                    const char *target, const char *top)
{
    CLEANUP_FREE char *dir = overlay_dir(o, top);
    CLEANUP_FREE char *name = sanitize(dom);
    char stamp[32];
    uint16_t rnd = 0;
    time_t t = time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
    lb_random(&rnd, sizeof rnd);
    return lb_xasprintf("%s/%s-%s.lbtrack-%s-%04x.qcow2", dir, name, target,
                        stamp, rnd);
}

/* Virtual size and format of an image (also one a running QEMU holds). */
int
livebk_image_info(const char *path, uint64_t *size, char **fmt, char **backing)
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

int
livebk_create_overlay(const char *path, const char *backing, const char *fmt,
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

/* ---- chain checks -------------------------------------------------------- */

/*
 * Does the disk still run on our overlays exactly? Its top must be our
 * active overlay, below it our older overlays, then the user's top. Fills
 * why (for the message) when not.
 */
bool
livebk_chain_intact(const struct agent_vdisk *vd, const struct track_disk *td,
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

/* ---- the commit phase ---------------------------------------------------- */

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
 * After a commit at rest: a persistent definition that names our active
 * overlay may also spell out its backing chain (libvirt records it at a
 * live snapshot: a domain whose QEMU ended during the run), which names
 * the overlay just committed. Name the active overlay alone; libvirt reads
 * the chain from the images. A definition naming another image is the
 * user's: left alone.
 */
static int
rest_redefine(struct livebk *b, struct track_disk *td)
{
    char *t[] = {td->target}, *p[] = {td->ov[td->nov - 1]}, *f[] = {"qcow2"};
    CLEANUP_FREE char *ix = NULL;
    CLEANUP_FREE char *nx = NULL;
    struct agent_vdisk *vd;
    size_t nd;
    bool ours = false;

    if (!b->dom.persistent)
        return 0;
    ix = agent_virt_xml(&b->dom, VIR_DOMAIN_XML_INACTIVE);
    if (!ix || agent_xml_disks(ix, &vd, &nd) < 0)
        return -1;
    for (size_t k = 0; k < nd; k++)
        ours |= strcmp(vd[k].target, td->target) == 0 &&
                same_path(vd[k].source, p[0]) && vd[k].nchain > 0;
    agent_vdisks_free(vd, nd);
    if (!ours)
        return 0;
    nx = agent_xml_set_disks(ix, 1, t, p, f);
    return nx ? agent_virt_define(b->v, nx) : -1;
}

/* Commit one disk's acknowledged overlays: live (a job a crash left
 * behind is waited for first) or, shut off, with qemu-img. */
static int
commit_disk(struct livebk *b, struct track_disk *td)
{
    struct agent_vdisk *vd;
    size_t nd;
    bool still = true;
    int r;

    if (!b->dom.running)
        return commit_at_rest(td) < 0 ? -1 : rest_redefine(b, td);
    r = agent_virt_wait_job(b->v, &b->dom, td->target, COMMIT_TIMEOUT);
    if (r < 0)
        return -1;
    /* Was it already committed (a job a crash left behind)? */
    if (agent_virt_disks(&b->dom, false, &vd, &nd) == 0) {
        for (size_t k = 0; k < nd; k++) {
            if (strcmp(vd[k].target, td->target) != 0)
                continue;
            still = false;
            for (size_t c = 0; c < vd[k].nchain; c++)
                still |= same_path(vd[k].chain[c], td->ov[td->acked - 1]);
        }
        agent_vdisks_free(vd, nd);
    }
    if (!still)
        return 0;
    return agent_virt_commit(b->v, &b->dom, td->target, td->user_top,
                             td->ov[td->acked - 1], COMMIT_TIMEOUT);
}

/* What a failed commit leaves, and what the next run does about it. */
static void
commit_warn(const struct livebk *b, const struct track_disk *td)
{
    int e = lb_error_errno();

    lb_warn("disk %s: %s; the backup is stored: the next backup or "
            "`livebackup recover %s` commits the overlay%s",
            td->target, lb_error_msg(), b->st->name,
            e == ESRCH      ? " (live once the domain runs again, or offline "
                              "while it is shut off)"
            : e == ENOTCONN ? " once libvirtd answers again"
                            : "");
    if (*lb_error_hint_msg()) /* QEMU refused the file: where to look */
        lb_warn("%s", lb_error_hint_msg());
}

/*
 * Commit every disk's acknowledged overlays into its user_top. A failure
 * leaves the overlays in the chain (the guest is healthy) and is reported;
 * the next run retries. A domain whose QEMU ended meanwhile is committed
 * at rest. Returns the number of disks that failed.
 */
int
livebk_commit_acked(struct livebk *b)
{
    int failed = 0;
    bool was_running = b->dom.running;

    b->st->step = TRACK_BLOCKCOMMIT;
    if (track_save(b->h) < 0)
        return -1;
    for (size_t i = 0; i < b->st->nd; i++) {
        struct track_disk *td = &b->st->d[i];
        int r;

        if (td->acked == 0 || td->nov <= td->acked)
            continue;
        r = agent_dom_refresh(&b->dom);
        if (r == 0 && was_running && !b->dom.running) {
            char why[128];
            agent_dom_state_text(&b->dom, why, sizeof why);
            lb_warn("QEMU of %s ended during this run (%s): committing the "
                    "backed-up overlays offline",
                    b->st->name, why);
            was_running = false;
        }
        if (r == 0)
            r = commit_disk(b, td);
        if (r < 0) {
            commit_warn(b, td);
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

int
livebk_commit_start(struct livebk *b)
{
    int failed = 0;

    if (agent_dom_refresh(&b->dom) == 0 && !b->dom.running)
        return livebk_commit_acked(b);
    b->st->step = TRACK_COMMITTING;
    if (track_save(b->h) < 0)
        return -1;
    for (size_t i = 0; i < b->st->nd; i++) {
        struct track_disk *td = &b->st->d[i];
        int r;

        if (td->acked == 0 || td->nov <= td->acked)
            continue;
        /* A job a crash left behind goes on; the next run waits for it. */
        r = agent_virt_job_running(&b->dom, td->target);
        if (r == 0)
            r = agent_virt_commit_start(&b->dom, td->target, td->user_top,
                                        td->ov[td->acked - 1]);
        if (r < 0) {
            commit_warn(b, td);
            failed++;
        }
    }
    return failed;
}

/* ---- recovery ------------------------------------------------------------ */

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
    if (st->step == TRACK_COMMITTING)
        lb_debug("%s: finishing the block commit the last backup started",
                 st->name);
    else if (verbose || st->step != TRACK_IDLE)
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
            if (livebk_image_info(td->newov, &sz, NULL, &backing) < 0)
                goto fail;
            if (td->nov && same_path(backing, td->ov[td->nov - 1])) {
                td->ov[td->nov++] = td->newov;
            } else {
                uint64_t bsz;
                if (!backing ||
                    livebk_image_info(backing, &bsz, &bfmt, NULL) < 0)
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
            int left;
            acted = true;
            left = livebk_commit_acked(b);
            if (left < 0)
                goto fail;
            if (left > 0 && verbose) {
                lb_fail(EAGAIN,
                        "%d disk(s) still keep a backed-up overlay that "
                        "could not be committed",
                        left);
                lb_error_hint("run livebackup recover %s again once the "
                              "domain runs (or is shut off) and libvirtd "
                              "answers",
                              st->name);
                goto fail;
            }
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

/* ---- untrack ------------------------------------------------------------- */

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
