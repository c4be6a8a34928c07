/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Block jobs (virt.h): block commits and the waits for their end. A wait
 * ends on the job's event, on the domain's QEMU ending (lifecycle event),
 * on the connection closing, or when a poll of the job's info finds it
 * gone without its event (then the backing chain says how it ended).
 */
#include "agent/live/virt_int.h"

#include "agent/live/xml_dl.h"
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static struct job_event *
job_slot(struct agent_virt *v, struct agent_dom *d, const char *target)
{
    struct job_event *e = NULL;

    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < v->nev; i++)
        if (strcmp(v->ev[i].uuid, d->uuid) == 0 &&
            strcmp(v->ev[i].target, target) == 0)
            e = &v->ev[i];
    if (!e && v->nev < MAX_JOBS)
        e = &v->ev[v->nev++];
    if (e) {
        snprintf(e->uuid, sizeof e->uuid, "%s", d->uuid);
        snprintf(e->target, sizeof e->target, "%s", target);
        e->status = -1;
    }
    pthread_mutex_unlock(&v->lock);
    return e;
}

/* 1 if a block job runs on target, 2 if it is a mirroring job that is
 * ready (libvirt reports cur == end only then), 0 if none, -1 (libvirt's
 * error left for the caller). */
static int
job_poll(struct agent_dom *d, const char *target)
{
    virDomainBlockJobInfo info;
    int r = LV(virDomainGetBlockJobInfo, d->d, target, &info, 0);

    if (r <= 0)
        return r;
    if ((info.type == VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT ||
         info.type == VIR_DOMAIN_BLOCK_JOB_TYPE_COPY) &&
        info.end > 0 && info.cur == info.end)
        return 2;
    return 1;
}

static bool
wanted_status(const struct job_event *e, unsigned want)
{
    return e->status >= 0 && (want & (1u << e->status));
}

static bool
ended_locked(struct agent_virt *v, const char *uuid)
{
    for (size_t i = 0; i < v->ndw; i++)
        if (strcmp(v->dw[i].uuid, uuid) == 0)
            return v->dw[i].ended;
    return false;
}

/*
 * Wait for an event among want (bitmask of 1 << status) on e, at most
 * timeout_s. Ends at once when the domain stops or the connection closes
 * (-1, virt_dom_fail's error); polls the job every JOB_POLL_MS (and after every
 * lifecycle event): a job gone without its event gives JOB_VANISHED, a
 * ready mirroring job READY. what names the job for messages.
 */
static int
wait_event(struct agent_dom *d, struct job_event *e, unsigned want,
           unsigned timeout_s, const char *what, int *status)
{
    struct agent_virt *v = d->v;
    uint64_t now = lb_now_ns();
    uint64_t deadline = now + (uint64_t)timeout_s * 1000000000u;
    uint64_t next_poll = now + (uint64_t)JOB_POLL_MS * 1000000u;
    unsigned seen, errors = 0;
    int r = 0;

    pthread_mutex_lock(&v->lock);
    seen = v->wakes;
    while (!wanted_status(e, want)) {
        if (v->closed || ended_locked(v, d->uuid)) {
            r = -1;
            break;
        }
        now = lb_now_ns();
        if (now >= deadline) {
            r = -2;
            break;
        }
        if (now >= next_poll || seen != v->wakes) {
            int p;
            seen = v->wakes;
            pthread_mutex_unlock(&v->lock);
            p = job_poll(d, e->target);
            if (p < 0 && ++errors >= JOB_POLL_ERRORS) {
                /* Keep libvirt's message for virt_dom_fail. */
                pthread_mutex_lock(&v->lock);
                r = -1;
                break;
            }
            pthread_mutex_lock(&v->lock);
            if (p >= 0)
                errors = 0;
            next_poll = lb_now_ns() + (uint64_t)JOB_POLL_MS * 1000000u;
            if (wanted_status(e, want))
                break;
            if (p == 0) {
                lb_debug("block job on %s gone without its event", e->target);
                e->status = JOB_VANISHED;
                break;
            }
            if (p == 2 && (want & (1u << VIR_DOMAIN_BLOCK_JOB_READY))) {
                e->status = VIR_DOMAIN_BLOCK_JOB_READY;
                break;
            }
            continue;
        }
        {
            uint64_t until = LB_MIN(next_poll, deadline);
            struct timespec ts = {.tv_sec = (time_t)(until / 1000000000u),
                                  .tv_nsec = (long)(until % 1000000000u)};
            pthread_cond_timedwait(&v->cv, &v->lock, &ts);
        }
    }
    *status = e->status;
    pthread_mutex_unlock(&v->lock);
    if (r == -1)
        return virt_dom_fail(d, what);
    if (r == -2)
        return lb_fail(ETIMEDOUT,
                       "%s did not finish within %u s (it goes on in QEMU)",
                       what, timeout_s);
    return 0;
}

static int
job_outcome(const char *what, int status)
{
    if (status == VIR_DOMAIN_BLOCK_JOB_COMPLETED)
        return 0;
    return lb_fail(EIO, "%s %s", what,
                   status == VIR_DOMAIN_BLOCK_JOB_FAILED     ? "failed"
                   : status == VIR_DOMAIN_BLOCK_JOB_CANCELED ? "was cancelled"
                                                             : "ended oddly");
}

static bool
same_file(const char *a, const char *b)
{
    struct stat sa, sb;

    if (!a || !b)
        return false;
    return strcmp(a, b) == 0 ||
           (stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
            sa.st_ino == sb.st_ino);
}

/* Where path is in target's live chain: 0 the top, 1.. below it; -2 not
 * in it; -1 error. Judges a job that ended without its event. */
static int
chain_index(struct agent_dom *d, const char *target, const char *path)
{
    struct agent_vdisk *vd;
    size_t nd;
    int at = -2;

    if (agent_virt_disks(d, false, &vd, &nd) < 0)
        return -1;
    for (size_t k = 0; k < nd; k++) {
        if (strcmp(vd[k].target, target) != 0)
            continue;
        if (same_file(vd[k].source, path))
            at = 0;
        for (size_t c = 0; c < vd[k].nchain && at == -2; c++)
            if (same_file(vd[k].chain[c], path))
                at = (int)c + 1;
    }
    agent_vdisks_free(vd, nd);
    return at;
}

/* The job of what ended without its event: done if gone is no longer in
 * the chain (done_at_top: if it is not the top any more). */
static int
job_vanished(struct agent_dom *d, const char *target, const char *what,
             const char *gone, bool done_at_top)
{
    int at = chain_index(d, target, gone);

    if (at == -1)
        return -1;
    if (at == -2 || (done_at_top && at != 0))
        return 0;
    return lb_fail(EIO, "%s ended without finishing (%s is still in the chain)",
                   what, gone);
}

/* Bandwidth of our block commits (tests slow them down to act during
 * one): LIVEBACKUP_COMMIT_BANDWIDTH bytes/s, 0 = unlimited. */
static unsigned long
commit_bandwidth(unsigned *flags)
{
    const char *e = getenv("LIVEBACKUP_COMMIT_BANDWIDTH");
    unsigned long bw = e ? strtoul(e, NULL, 10) : 0;

    if (bw)
        *flags |= VIR_DOMAIN_BLOCK_COMMIT_BANDWIDTH_BYTES;
    return bw;
}

int
agent_virt_commit(struct agent_virt *v, struct agent_dom *d, const char *target,
                  const char *base, const char *top, unsigned timeout_s)
{
    struct job_event *e = job_slot(v, d, target);
    unsigned want = 1u << VIR_DOMAIN_BLOCK_JOB_COMPLETED |
                    1u << VIR_DOMAIN_BLOCK_JOB_FAILED |
                    1u << VIR_DOMAIN_BLOCK_JOB_CANCELED;
    unsigned flags = 0;
    unsigned long bw = commit_bandwidth(&flags);
    char what[128];
    int status;

    snprintf(what, sizeof what, "the block commit of %s", target);
    if (!e)
        return lb_fail(EIO, "too many block jobs");
    if (LV(virDomainBlockCommit, d->d, target, base, top, bw, flags) < 0)
        return virt_dom_fail(d, what);
    lb_fault_point("agent:during-block-commit");
    if (wait_event(d, e, want, timeout_s, what, &status) < 0)
        return -1;
    if (status == JOB_VANISHED)
        return job_vanished(d, target, what, top, false);
    return job_outcome(what, status);
}

int
agent_virt_commit_start(struct agent_dom *d, const char *target,
                        const char *base, const char *top)
{
    unsigned flags = 0;
    unsigned long bw = commit_bandwidth(&flags);
    char what[128];

    snprintf(what, sizeof what, "the block commit of %s", target);
    if (LV(virDomainBlockCommit, d->d, target, base, top, bw, flags) < 0)
        return virt_dom_fail(d, what);
    return 0;
}

/* A mirror job (a block copy, an active commit) that is gone without the
 * event we waited for: done if the domain runs on onto, its target. */
static int
job_mirror_vanished(struct agent_dom *d, const char *target, const char *onto,
                    const char *what)
{
    int at = chain_index(d, target, onto);

    if (at == -1)
        return -1;
    return at == 0 ? 0 : lb_fail(EIO, "%s ended without finishing", what);
}

/* A mirror job that is ready: switch the domain onto its target (onto)
 * and wait for the job to end. */
static int
job_pivot(struct agent_virt *v, struct agent_dom *d, const char *target,
          const char *onto, const char *how, unsigned timeout_s)
{
    struct job_event *e = job_slot(v, d, target); /* for the completion */
    unsigned want = 1u << VIR_DOMAIN_BLOCK_JOB_COMPLETED |
                    1u << VIR_DOMAIN_BLOCK_JOB_FAILED |
                    1u << VIR_DOMAIN_BLOCK_JOB_CANCELED;
    char what[128];
    int status;

    snprintf(what, sizeof what, "the pivot of %s%s", target, how);
    if (!e)
        return lb_fail(EIO, "too many block jobs");
    if (LV(virDomainBlockJobAbort, d->d, target,
           VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT) < 0)
        return virt_dom_fail(d, what);
    if (wait_event(d, e, want, timeout_s, what, &status) < 0)
        return -1;
    if (status == JOB_VANISHED)
        return job_mirror_vanished(d, target, onto, what);
    return job_outcome(what, status);
}

int
agent_virt_commit_active(struct agent_virt *v, struct agent_dom *d,
                         const char *target, const char *base,
                         unsigned timeout_s)
{
    struct job_event *e = job_slot(v, d, target);
    unsigned want = 1u << VIR_DOMAIN_BLOCK_JOB_READY |
                    1u << VIR_DOMAIN_BLOCK_JOB_COMPLETED |
                    1u << VIR_DOMAIN_BLOCK_JOB_FAILED |
                    1u << VIR_DOMAIN_BLOCK_JOB_CANCELED;
    char what[128];
    int status;

    snprintf(what, sizeof what, "the active commit of %s", target);
    if (!e)
        return lb_fail(EIO, "too many block jobs");
    if (LV(virDomainBlockCommit, d->d, target, base, NULL, 0,
           VIR_DOMAIN_BLOCK_COMMIT_ACTIVE) < 0)
        return virt_dom_fail(d, what);
    if (wait_event(d, e, want, timeout_s, what, &status) < 0)
        return -1;
    if (status == JOB_VANISHED)
        return job_vanished(d, target, what, base, false) < 0
                   ? -1
                   : lb_fail(EIO, "%s ended before it was ready", what);
    if (status != VIR_DOMAIN_BLOCK_JOB_READY)
        return job_outcome(what, status);
    return job_pivot(v, d, target, base, "", timeout_s);
}

int
agent_virt_job_running(struct agent_dom *d, const char *target)
{
    int r = job_poll(d, target);

    if (r < 0)
        return virt_dom_fail(d, "a block job query");
    return r > 0;
}

/* Wait (timeout_s) for the next event of the job that runs on target: 1
 * with *status (JOB_VANISHED if it went without one), 0 if no job runs,
 * -1 (error set). */
static int
job_wait_running(struct agent_virt *v, struct agent_dom *d, const char *target,
                 const char *what, unsigned timeout_s, int *status)
{
    struct job_event *e = job_slot(v, d, target);
    unsigned want = 1u << VIR_DOMAIN_BLOCK_JOB_COMPLETED |
                    1u << VIR_DOMAIN_BLOCK_JOB_FAILED |
                    1u << VIR_DOMAIN_BLOCK_JOB_CANCELED |
                    1u << VIR_DOMAIN_BLOCK_JOB_READY;
    int r;

    if (!e)
        return lb_fail(EIO, "too many block jobs");
    /* Registered before asking: an event cannot slip between. */
    r = agent_virt_job_running(d, target);
    if (r <= 0)
        return r;
    return wait_event(d, e, want, timeout_s, what, status) < 0 ? -1 : 1;
}

int
agent_virt_wait_job(struct agent_virt *v, struct agent_dom *d,
                    const char *target, unsigned timeout_s)
{
    char what[128];
    int status = JOB_VANISHED, r;

    snprintf(what, sizeof what, "the block job on %s", target);
    r = job_wait_running(v, d, target, what, timeout_s, &status);
    if (r <= 0)
        return r;
    if (status == VIR_DOMAIN_BLOCK_JOB_READY) {
        /* An active commit someone left ready: abort (keeps the top). */
        if (LV(virDomainBlockJobAbort, d->d, target, 0) < 0)
            return virt_dom_fail(d, "ending a leftover block job");
        return 0;
    }
    return 0;
}

/* The <disk> of a block copy's destination: a qcow2 file (its path in
 * double quotes: xmlEncodeSpecialChars leaves apostrophes alone). */
static char *
copy_dest_xml(const char *path)
{
    xmlChar *p;
    char *xml;

    if (lb_xml_load() < 0)
        return NULL;
    p = LX(xmlEncodeSpecialChars, NULL, BAD_CAST path);
    if (!p) {
        lb_fail(ENOMEM, "the block copy's XML");
        return NULL;
    }
    xml = lb_xasprintf("<disk type=\"file\"><source file=\"%s\"/>"
                       "<driver type=\"qcow2\"/></disk>",
                       (const char *)p);
    LX_FREE(p);
    return xml;
}

int
agent_virt_copy_start(struct agent_dom *d, const char *target, const char *copy)
{
    CLEANUP_FREE char *xml = copy_dest_xml(copy);
    char what[128];

    snprintf(what, sizeof what, "the block copy of %s", target);
    if (!xml)
        return -1;
    /* TRANSIENT_JOB: libvirt 9.0 refuses a copy of a persistent domain's
     * disk without it ("domain is not transient"); the job does not
     * outlive the domain's QEMU anyway, and the caller starts a new one. */
    if (LV(virDomainBlockCopy, d->d, target, xml, NULL, 0,
           VIR_DOMAIN_BLOCK_COPY_SHALLOW | VIR_DOMAIN_BLOCK_COPY_REUSE_EXT |
               VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB |
               VIR_DOMAIN_BLOCK_COPY_SYNCHRONOUS_WRITES) < 0)
        return virt_dom_fail(d, what);
    return 0;
}

int
agent_virt_copy_ready(struct agent_virt *v, struct agent_dom *d,
                      const char *target, const char *copy, unsigned timeout_s)
{
    char what[128];
    int status = JOB_VANISHED, r;

    snprintf(what, sizeof what, "the block copy of %s", target);
    r = job_wait_running(v, d, target, what, timeout_s, &status);
    if (r < 0)
        return -1;
    if (r == 0 || status == JOB_VANISHED ||
        status == VIR_DOMAIN_BLOCK_JOB_COMPLETED)
        return job_mirror_vanished(d, target, copy, what) < 0 ? -1 : 1;
    if (status != VIR_DOMAIN_BLOCK_JOB_READY)
        return job_outcome(what, status);
    return 0;
}

int
agent_virt_copy_pivot(struct agent_virt *v, struct agent_dom *d,
                      const char *target, const char *copy, unsigned timeout_s)
{
    return job_pivot(v, d, target, copy, " onto its copy", timeout_s);
}

int
agent_virt_job_info(struct agent_dom *d, const char *target, uint64_t *cur,
                    uint64_t *end)
{
    virDomainBlockJobInfo info;
    int r = LV(virDomainGetBlockJobInfo, d->d, target, &info, 0);

    if (r < 0)
        return virt_dom_fail(d, "a block job query");
    *cur = r ? info.cur : 0;
    *end = r ? info.end : 0;
    return r;
}

/* How long a job QEMU refused to cancel may take to be gone. */
#define JOB_ABORT_WAIT_S 30

int
agent_virt_job_abort(struct agent_virt *v, struct agent_dom *d,
                     const char *target)
{
    struct lb_error_saved refusal;

    if (LV(virDomainBlockJobAbort, d->d, target, 0) == 0)
        return 0;
    /* A job that ended by itself after the caller looked (a pull failing
     * on a read of a vanished export) is refused by QEMU ("in state
     * 'concluded' cannot accept command verb 'cancel'") until libvirt has
     * dismissed it: what the caller wanted is then on its way. Wait for
     * the job to be gone; keep libvirt's refusal if it is not. */
    virt_dom_fail(d, "ending a block job");
    lb_error_save(&refusal);
    /* Its end event may come before libvirt lets go of it: a second wait
     * then sees it vanish (the poll of wait_event). */
    for (int tries = 0; tries < 2; tries++) {
        int r;

        /* the domain ended, a timeout: their own message */
        if (agent_virt_wait_job(v, d, target, JOB_ABORT_WAIT_S) < 0 ||
            (r = agent_virt_job_running(d, target)) < 0)
            return -1;
        if (r == 0) {
            lb_debug("the block job on %s ended by itself before its cancel",
                     target);
            return 0;
        }
    }
    return lb_error_restore(&refusal);
}
