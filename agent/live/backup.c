/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One backup of a libvirt domain on tracking overlays, in the phases of
 * livebk.c's picture, each a function:
 *
 *   plan the disks       which disks, full or incremental and why
 *                        (livebk_decide on what the journal, the live
 *                        chain and the repository say)
 *   prepare overlays     journal them, create them (no freeze yet)
 *   switch the disks     freeze, one atomic snapshot, thaw (one error
 *                        path: the overlays are removed if it fails); at
 *                        rest, redefine the domain. Journal.
 *   send each layer      the layer the guest left, to the repository
 *   acknowledge, commit  journal the acknowledgement, then commit the
 *                        acknowledged overlays (livebk_commit_acked)
 */
#include "agent/live/livebk_int.h"

#include <errno.h>
#include <libvirt/libvirt.h>
#include <string.h>
#include <unistd.h>

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

/* One backup in progress: what its phases share. */
struct run {
    struct livebk *b;
    struct agent_repo *r;
    struct livebk_result *res;
    struct agent_vdisk *vd; /* the domain's disks */
    size_t nd;
    struct plan *pl; /* the disks backed up (nd entries allocated) */
    size_t np;
    bool any_incr, quiesce;
    bool snapshot_tried; /* the snapshot call was made (it may have run) */
    uint64_t t_freeze, t_thaw;
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
    for (size_t i = 0; p && i < n; i++) {
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

/* The parent: the backup our acknowledgements refer to, which must still
 * be in this repository. */
static int
parent_in_repo(struct run *k, bool *ok)
{
    struct track_state *st = k->b->st;
    struct agent_list l = {0};

    *ok = false;
    if (agent_repo_list(k->r, st->name, &l) < 0)
        return -1;
    if (st->last_backup[0] && strcmp(st->repo_id, agent_repo_id(k->r)) == 0)
        for (size_t i = 0; i < l.n; i++)
            *ok |= strcmp(proto_kv_get(&l.b[i], "id"), st->last_backup) == 0;
    agent_list_free(&l);
    return 0;
}

/* A disk with a medium that the backup leaves out: a warning, and a note
 * in res->skipped. */
static void
skip_disk(struct livebk_result *res, const char *name,
          const struct agent_vdisk *d, const char *why)
{
    size_t len = strlen(res->skipped);

    lb_warn("%s: disk %s is %s: skipped (--disks names the disks to back "
            "up)",
            name, d->target, why);
    snprintf(res->skipped + len, sizeof res->skipped - len, "%s%s: %s",
             len ? ", " : "", d->target, why);
}

/* Is d a disk the backup reads? If not, say why: a disk left out by
 * --disks or an empty drive silently, any other with a warning. */
static bool
readable_disk(const struct livebk *b, const struct agent_vdisk *d,
              struct livebk_result *res)
{
    const char *name = b->st->name;

    if (!wanted(b->o, d->target))
        return false;
    if (!d->source) {
        lb_info("%s: disk %s has no medium: skipped", name, d->target);
        return false;
    }
    if (strcmp(d->device, "disk") != 0 && strcmp(d->device, "lun") != 0) {
        skip_disk(res, name, d,
                  strcmp(d->device, "cdrom") == 0    ? "a cdrom"
                  : strcmp(d->device, "floppy") == 0 ? "a floppy"
                                                     : "not a disk");
        return false;
    }
    if (d->readonly || d->shareable) {
        skip_disk(res, name, d, d->readonly ? "read-only" : "shareable");
        return false;
    }
    if (d->kind == AGENT_DISK_NETWORK || d->kind == AGENT_DISK_OTHER) {
        skip_disk(res, name, d,
                  d->kind == AGENT_DISK_NETWORK
                      ? "a network disk (not supported yet)"
                      : "of a kind not supported yet");
        return false;
    }
    return true;
}

/* Full or incremental for one disk: the facts, then livebk_decide. */
static int
plan_disk(struct run *k, const struct agent_vdisk *d, bool parent_ok,
          struct plan *p)
{
    struct livebk *b = k->b;
    struct track_state *st = b->st;
    struct livebk_disk_facts f = {0};
    struct livebk_decision dec;
    char chain_why[512] = "";

    p->vd = d;
    p->td = track_disk_get(st, d->target);
    p->old_top = lb_xstrdup(d->source);
    if (livebk_overlay_dir_check(b->o, d->target, d->source) < 0 ||
        livebk_image_info(d->source, &p->size, &p->old_fmt, NULL) < 0)
        return -1;
    f.tracked = p->td && p->td->nov;
    f.full = b->o->full;
    f.parent_ok = parent_ok;
    f.other_repo =
        st->last_backup[0] && strcmp(st->repo_id, agent_repo_id(k->r)) != 0;
    f.last_backup = st->last_backup;
    f.size = p->size;
    f.full_every = b->o->full_every;
    if (f.tracked) {
        f.chain_intact = livebk_chain_intact(d, p->td, b->dom.running,
                                             chain_why, sizeof chain_why);
        f.chain_why = chain_why;
        f.tracked_size = p->td->size;
        f.incrementals = p->td->incrementals;
    }
    livebk_decide(&f, &dec);
    /* Beside tracked disks: one added since (the README promises a
     * message for each disk that falls back to full). */
    if (!p->td && st->nd > 0)
        lb_info("%s: disk %s is new since the last backup: full backup of "
                "this disk",
                st->name, d->target);
    p->incremental = dec.incremental;
    p->keep = dec.keep;
    snprintf(p->why, sizeof p->why, "%s", dec.why);
    if (dec.lost)
        lb_warn("%s: disk %s: tracking lost (%s): full backup of this disk",
                st->name, d->target, p->why);
    return 0;
}

/* Plan the disks: which, and full or incremental. */
static int
plan_disks(struct run *k)
{
    bool parent_ok;

    if (parent_in_repo(k, &parent_ok) < 0)
        return -1;
    k->pl = lb_xcalloc(k->nd ? k->nd : 1, sizeof *k->pl);
    for (size_t i = 0; i < k->nd; i++) {
        if (!readable_disk(k->b, &k->vd[i], k->res))
            continue;
        if (plan_disk(k, &k->vd[i], parent_ok, &k->pl[k->np]) < 0)
            return -1;
        k->any_incr |= k->pl[k->np].incremental;
        k->np++;
    }
    if (k->np == 0)
        return lb_fail(EINVAL, "%s has no disk livebackup can back up",
                       k->b->st->name);
    return 0;
}

/* Prepare: journal the overlays, then create them (no freeze yet). */
static int
prepare_overlays(struct run *k)
{
    struct livebk *b = k->b;
    struct track_state *st = b->st;

    for (size_t i = 0; i < k->np; i++) {
        struct plan *p = &k->pl[i];
        if (!p->td) {
            p->td = track_disk_add(st, p->vd->target);
            p->td->user_top = lb_xstrdup(p->old_top);
            p->td->user_fmt = lb_xstrdup(p->old_fmt);
            p->td->size = p->size;
        }
        p->newov =
            livebk_overlay_path(b->o, st->name, p->vd->target, p->old_top);
        p->td->newov = lb_xstrdup(p->newov);
    }
    /* track_disk_add may have moved the array: refresh the pointers. */
    for (size_t i = 0; i < k->np; i++)
        k->pl[i].td = track_disk_get(st, k->pl[i].vd->target);
    st->step = TRACK_PREPARED;
    if (track_save(b->h) < 0)
        return -1;
    for (size_t i = 0; i < k->np; i++)
        if (livebk_create_overlay(k->pl[i].newov, k->pl[i].old_top,
                                  k->pl[i].old_fmt, k->pl[i].size) < 0) {
            struct lb_error_saved e;
            lb_error_save(&e);
            undo_prepare(b, k->pl, k->np);
            return lb_error_restore(&e);
        }
    return 0;
}

/*
 * A running domain: freeze (when quiesced), one atomic snapshot of every
 * disk onto its overlay, thaw at once. The freeze covers the snapshot
 * call, nothing else (its XML is made before); the first error is kept
 * through the thaw.
 */
static int
snapshot_live(struct run *k, size_t n, char **targets, char **overlays)
{
    struct livebk *b = k->b;
    struct agent_phases *ph = &k->res->ph;
    struct lb_error_saved e;
    uint64_t t = lb_now_ns();
    CLEANUP_FREE char *xml =
        agent_virt_snapshot_xml(&b->dom, n, targets, overlays);
    int rc;

    if (!xml)
        return -1;
    if (!k->quiesce) {
        k->snapshot_tried = true;
        rc = agent_virt_snapshot(&b->dom, xml);
        agent_phase_add(ph, AGENT_PH_SNAPSHOT, t);
        return rc;
    }
    t = agent_phase_add(ph, AGENT_PH_GUARD, t);
    k->t_freeze = t;
    rc = agent_virt_freeze(b->v, &b->dom, b->o->freeze_timeout, &k->t_freeze);
    ph->us[AGENT_PH_GUARD] += (k->t_freeze - t) / 1000u;
    t = agent_phase_add(ph, AGENT_PH_FREEZE, k->t_freeze);
    if (rc == 0) {
        lb_fault_point("agent:after-freeze");
        k->snapshot_tried = true;
        rc = agent_virt_snapshot(&b->dom, xml);
        t = agent_phase_add(ph, AGENT_PH_SNAPSHOT, t);
        lb_error_save(&e);
        if (agent_virt_thaw(b->v, &b->dom, true) < 0)
            lb_warn("%s", lb_error_msg());
        k->t_thaw = agent_phase_add(ph, AGENT_PH_THAW, t);
        if (rc < 0)
            lb_error_restore(&e);
    }
    /* The domain keeps libvirt's own agent timeout. */
    lb_error_save(&e);
    agent_virt_set_agent_timeout(&b->dom,
                                 VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_DEFAULT);
    return rc < 0 ? lb_error_restore(&e) : 0;
}

/*
 * The switch failed; keeps the error. If libvirtd went away during the
 * snapshot, the switch may have happened: the journal (PREPARED, naming the
 * new overlays) stays, and the next run sees from the domain whether it
 * runs on them. Else nothing was switched: remove the new overlays.
 */
static int
switch_failed(struct run *k)
{
    struct lb_error_saved err;

    lb_error_save(&err);
    if (k->snapshot_tried && err.errnum == ENOTCONN) {
        lb_error_hint("nothing is lost: once libvirtd answers again, the "
                      "next backup or `livebackup recover %s` sees whether "
                      "the guest runs on the new overlays, and keeps or "
                      "removes them",
                      k->b->st->name);
        return -1;
    }
    undo_prepare(k->b, k->pl, k->np);
    lb_error_restore(&err);
    if (err.errnum == ENOTCONN)
        lb_error_hint("nothing was switched; the next backup (once libvirtd "
                      "answers again) includes every change");
    else if (err.errnum == ESRCH)
        lb_error_hint("nothing was switched; the next backup (the domain "
                      "started again or shut off) includes every change");
    return -1;
}

/* Switch every disk onto its overlay: the snapshot of a running domain,
 * or its definition redefined at rest. If that fails, the overlays are
 * removed (unless the domain may run on them: switch_failed) and the
 * first error kept. */
static int
switch_disks(struct run *k)
{
    struct livebk *b = k->b;
    char **t = lb_xcalloc(k->np, sizeof *t),
         **ov = lb_xcalloc(k->np, sizeof *ov);
    char **f = lb_xcalloc(k->np, sizeof *f);
    int rc;

    for (size_t i = 0; i < k->np; i++) {
        t[i] = (char *)k->pl[i].vd->target;
        ov[i] = k->pl[i].newov;
        f[i] = "qcow2";
    }
    if (b->dom.running) {
        rc = snapshot_live(k, k->np, t, ov);
    } else {
        uint64_t t0 = lb_now_ns();
        CLEANUP_FREE char *ix =
            agent_virt_xml(&b->dom, VIR_DOMAIN_XML_INACTIVE);
        CLEANUP_FREE char *nx =
            ix ? agent_xml_set_disks(ix, k->np, t, ov, f) : NULL;
        rc = nx ? agent_virt_define(b->v, nx) : -1;
        agent_phase_add(&k->res->ph, AGENT_PH_SNAPSHOT, t0);
    }
    free(t);
    free(ov);
    free(f);
    return rc < 0 ? switch_failed(k) : 0;
}

/* Journal the switch. A disk whose chain was changed starts tracking
 * afresh over the image it had: our old overlays are part of the user's
 * chain now. Every other disk keeps its overlays (a full backup
 * acknowledges them all, and they are committed after it). */
static int
journal_switch(struct run *k)
{
    for (size_t i = 0; i < k->np; i++) {
        struct track_disk *td = k->pl[i].td;
        if (!k->pl[i].keep) {
            for (size_t j = 0; j < td->nov; j++)
                free(td->ov[j]);
            td->nov = td->acked = 0;
            free(td->user_top);
            free(td->user_fmt);
            td->user_top = lb_xstrdup(k->pl[i].old_top);
            td->user_fmt = lb_xstrdup(k->pl[i].old_fmt);
        }
        td->size = k->pl[i].size;
        td->ov[td->nov++] = td->newov;
        td->newov = NULL;
    }
    k->b->st->step = TRACK_SWITCHED;
    return track_save(k->b->h);
}

/* Send each layer the guest left: everything above the acknowledged
 * point (incremental), or the whole disk. */
static int
send_layers(struct run *k)
{
    struct livebk *b = k->b;
    struct track_state *st = b->st;
    struct agent_disk_spec *specs = lb_xcalloc(k->np, sizeof *specs);
    struct proto_kv meta = {0};
    CLEANUP_FREE char *xml = NULL;
    char host[256] = "";
    uint64_t t = lb_now_ns();
    int rc = -1;

    for (size_t i = 0; i < k->np; i++) {
        struct track_disk *td = k->pl[i].td;
        specs[i].name = td->target;
        specs[i].path = td->nov >= 2 ? td->ov[td->nov - 2] : td->user_top;
        specs[i].since = k->pl[i].incremental ? track_acked_point(td) : NULL;
        proto_kv_set(&specs[i].meta, "source", td->user_top);
        proto_kv_set(&specs[i].meta, "format", td->user_fmt);
        if (!k->pl[i].incremental)
            proto_kv_set(&specs[i].meta, "full_reason", k->pl[i].why);
        k->res->disks_incremental += k->pl[i].incremental;
        k->res->disks_full += !k->pl[i].incremental;
    }
    xml = saved_xml(b);
    if (!xml)
        goto out;
    proto_kv_set(&meta, "kind", k->any_incr ? "incremental" : "full");
    proto_kv_set(&meta, "source", "libvirt");
    proto_kv_set(&meta, "domain_uuid", st->uuid);
    proto_kv_set(&meta, "consistency", k->quiesce ? "quiesced" : "crash");
    proto_kv_set_u64(&meta, "freeze_ms", k->res->freeze_ms);
    proto_kv_set(&meta, "domain_state",
                 b->dom.running ? "running" : "shut off");
    gethostname(host, sizeof host - 1);
    proto_kv_set(&meta, "host", host);
    agent_phase_add(&k->res->ph, AGENT_PH_BEGIN, t);
    rc = agent_backup_disks(k->r, st->name, k->any_incr ? st->last_backup : "",
                            specs, k->np, &meta, xml, &k->res->bk);
out:
    for (size_t i = 0; i < k->np; i++)
        proto_kv_free(&specs[i].meta);
    free(specs);
    proto_kv_free(&meta);
    return rc;
}

/* The backup did not commit: the guest runs on the new overlays; the old
 * ones keep their data, and the next backup sends all of it. */
static void
backup_failed(struct livebk *b)
{
    struct lb_error_saved e;

    lb_error_save(&e);
    b->st->step = TRACK_IDLE;
    track_save(b->h);
    lb_error_restore(&e);
    /* libvirtd or QEMU gone: what matters is that nothing is lost. */
    if (!e.hint[0] || e.errnum == ENOTCONN || e.errnum == ESRCH)
        lb_error_hint("nothing is lost: the next backup of this domain "
                      "includes these changes");
}

/* Acknowledged: everything below the active overlays is in the
 * repository. Journal, then commit them into the user's images. */
static int
acknowledge(struct run *k)
{
    struct track_state *st = k->b->st;
    const char *id = k->res->bk.id;
    uint64_t t = lb_now_ns();

    st->step = TRACK_COMMITTED;
    snprintf(st->backup, sizeof st->backup, "%s", id);
    snprintf(st->last_backup, sizeof st->last_backup, "%s", id);
    snprintf(st->repo_id, sizeof st->repo_id, "%s", agent_repo_id(k->r));
    for (size_t i = 0; i < k->np; i++) {
        struct track_disk *td = k->pl[i].td;
        td->acked = td->nov - 1;
        td->incrementals = k->pl[i].incremental ? td->incrementals + 1 : 0;
        snprintf(td->last_backup, sizeof td->last_backup, "%s", id);
    }
    if (track_save(k->b->h) < 0)
        return -1;
    /* The repository has what it needs: let it go before any wait on QEMU
     * (a slow or stuck commit must not hold its shared lock). */
    agent_repo_end(k->r);
    t = agent_phase_add(&k->res->ph, AGENT_PH_ACK, t);
    lb_fault_point("agent:after-ack");
    k->res->commit_failures = k->b->o->background_commit
                                  ? livebk_commit_start(k->b)
                                  : livebk_commit_acked(k->b);
    agent_phase_add(&k->res->ph, AGENT_PH_BLOCKCOMMIT, t);
    return k->res->commit_failures < 0 ? -1 : 0;
}

int
livebk_backup(struct livebk *b, struct agent_repo *r, struct livebk_result *res)
{
    struct run k = {.b = b, .r = r, .res = res};
    struct agent_phases *ph = &res->ph;
    uint64_t t = lb_now_ns();
    int ret = -1;

    memset(res, 0, sizeof *res);
    if (livebk_recover(b, false) < 0 || agent_dom_refresh(&b->dom) < 0)
        return -1;
    k.quiesce = !b->o->crash && b->dom.running;
    if (k.quiesce && b->dom.paused) {
        lb_fail(EINVAL, "%s is paused: the guest agent cannot freeze it",
                b->st->name);
        lb_error_hint("resume it, or back it up with --consistency crash (a "
                      "paused guest does not write)");
        return -1;
    }
    if (agent_virt_disks(&b->dom, !b->dom.running, &k.vd, &k.nd) < 0)
        return -1;
    t = agent_phase_add(ph, AGENT_PH_RECOVER, t);
    if (plan_disks(&k) < 0)
        goto out;
    t = agent_phase_add(ph, AGENT_PH_PLAN, t);
    if (prepare_overlays(&k) < 0)
        goto out;
    agent_phase_add(ph, AGENT_PH_OVERLAY, t);
    if (switch_disks(&k) < 0)
        goto out;
    t = lb_now_ns();
    if (journal_switch(&k) < 0)
        goto out;
    agent_phase_add(ph, AGENT_PH_JOURNAL, t);
    lb_fault_point("agent:after-snapshot");
    if (k.t_thaw)
        res->freeze_ms = (k.t_thaw - k.t_freeze) / 1000000u;
    res->quiesced = k.quiesce;
    if (send_layers(&k) < 0) {
        backup_failed(b);
        goto out;
    }
    if (acknowledge(&k) < 0)
        goto out;
    ret = 0;
out:
    plan_free(k.pl, k.nd);
    agent_vdisks_free(k.vd, k.nd);
    return ret;
}

void
livebk_record_attempt(struct livebk *b, bool ok,
                      const struct livebk_result *res)
{
    struct track_state *st = b->st;
    struct lb_error_saved e;

    lb_error_save(&e);
    st->attempt_time = lb_wall_time();
    st->attempt_ok = ok;
    st->attempt_warning = ok && res->skipped[0];
    if (st->attempt_warning)
        snprintf(st->attempt_msg, sizeof st->attempt_msg, "skipped %s",
                 res->skipped);
    else
        snprintf(st->attempt_msg, sizeof st->attempt_msg, "%s",
                 ok ? "" : lb_error_msg());
    if (ok) {
        st->last_time = st->attempt_time;
        st->last_size = proto_kv_get_u64(&res->bk.meta, "size", 0);
        st->last_freeze_ms = res->freeze_ms;
    }
    if (track_save(b->h) < 0)
        lb_warn("cannot record the attempt: %s", lb_error_msg());
    lb_error_restore(&e);
}
