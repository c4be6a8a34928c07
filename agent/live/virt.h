/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent's libvirt layer: one connection with an event loop thread,
 * domain lookup, disk discovery from the domain XML (libxml2), guest
 * freeze/thaw with a deadline and a guard process that thaws the guest if
 * the agent dies while it is frozen, disk-only snapshots onto pre-created
 * overlays, and block commits.
 *
 * No wait outlives QEMU or libvirtd. Block jobs are awaited through
 * VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, with virDomainGetBlockJobInfo polled
 * every second as the fallback for a job that ends without its event; a
 * lifecycle event (the domain stopped) or the connection closing (the
 * close callback; keepalive finds a libvirtd that stopped answering) ends
 * every wait on the domain at once. Such a failure sets the error slot's
 * errno to ESRCH (QEMU of the domain ended: "QEMU of D ended during the
 * block commit of vda (shut off: crashed)") or ENOTCONN (libvirtd closed
 * the connection), so callers can say what the next run does.
 */
#ifndef LB_AGENT_VIRT_H
#define LB_AGENT_VIRT_H

#include "agent/client/client.h"

/* libvirt's virDomainPtr, without its headers: only the live layer's .c
 * files include libvirt. */
struct _virDomain;
/* VIR_UUID_STRING_BUFLEN (live/restore.c checks that they agree) */
#define AGENT_UUID_STRING_BUFLEN 37

struct agent_virt;

struct agent_virt *agent_virt_open(const char *uri);
void agent_virt_close(struct agent_virt *v);
const char *agent_virt_uri(const struct agent_virt *v);
/* True once libvirtd closed the connection (it died, or keepalive gave it
 * up): every later call fails at once. Thread-safe. */
bool agent_virt_lost(struct agent_virt *v);

struct agent_dom {
    struct agent_virt *v; /* the connection it was looked up on */
    struct _virDomain *d; /* virDomainPtr */
    char name[256];
    char uuid[AGENT_UUID_STRING_BUFLEN];
    bool running; /* running or paused: QEMU has the disks open */
    bool paused;
    bool persistent;
};

/* By name or UUID. */
int agent_virt_lookup(struct agent_virt *v, const char *what,
                      struct agent_dom *out);
void agent_dom_free(struct agent_dom *d);
/* Refresh running/paused. */
int agent_dom_refresh(struct agent_dom *d);
/* The domain's state for a message ("shut off: crashed"); "unknown" when
 * libvirtd cannot say. */
void agent_dom_state_text(struct agent_dom *d, char *buf, size_t len);
/* Every domain (running or not), names sorted. Caller frees. */
int agent_virt_list(struct agent_virt *v, char ***names, size_t *n);

enum agent_disk_kind {
    AGENT_DISK_FILE,
    AGENT_DISK_BLOCK,
    AGENT_DISK_NETWORK,
    AGENT_DISK_OTHER,
};

struct agent_vdisk {
    char target[65]; /* vda */
    enum agent_disk_kind kind;
    char *device; /* disk, cdrom, floppy, lun */
    char *source; /* top image path (NULL: empty drive) */
    char *format; /* driver type: qcow2, raw, ... */
    bool readonly, shareable;
    /* the backing chain below source, as libvirt reports it (live XML:
     * top first); empty for an inactive XML without backingStore */
    size_t nchain;
    char **chain;
    char **chain_fmt;
};

/* The disks of the domain's live (inactive=false) or persistent XML. */
int agent_virt_disks(struct agent_dom *d, bool inactive,
                     struct agent_vdisk **out, size_t *n);
/* The disks of a domain XML document (domxml.c). */
int agent_xml_disks(const char *xml, struct agent_vdisk **out, size_t *n);
void agent_vdisks_free(struct agent_vdisk *v, size_t n);

/* The domain XML (flags: VIR_DOMAIN_XML_*). Caller frees. */
char *agent_virt_xml(struct agent_dom *d, unsigned flags);

/*
 * Rewrite a domain XML: for each disk target in targets[i], set its source
 * file to paths[i] and driver type to formats[i], and drop its
 * backingStore. Returns the new XML (caller frees) or NULL.
 */
char *agent_xml_set_disks(const char *xml, size_t n, char *const *targets,
                          char *const *paths, char *const *formats);

/*
 * The <domainsnapshot> XML that switches disk targets[i] (of the domain's
 * disks[0..nd)) onto the qcow2 file overlays[i], and leaves every other
 * disk out of the snapshot (snapshot='no'). Built with libxml2, so any
 * character of a path (an apostrophe, '&', '<') reaches libvirt as it is.
 * Returns the XML (caller frees) or NULL.
 */
char *agent_xml_snapshot(const struct agent_vdisk *disks, size_t nd, size_t n,
                         char *const *targets, char *const *overlays);

/* The XML of a restored domain (agent_xml_restore). */
struct agent_restore_xml {
    const char *name; /* new name (NULL: keep) */
    const char *uuid; /* new UUID (NULL: keep) */
    size_t n;         /* restored disks: target -> path, format */
    char *const *targets, *const *paths, *const *formats;
    bool drop_others;    /* leave out disks that were not restored */
    bool new_mac;        /* fresh 52:54:00 MAC addresses */
    const char *log_dir; /* file consoles go here (NULL: keep) */
    /* what runs host programs or opens host files, devices or sockets
     * (xmlsafe.c) is left out unless keep_host_access; either way
     * host_access (if not NULL) gets what it was, "" if none (caller
     * frees) */
    bool keep_host_access;
    char **host_access;
    bool stop_on_error; /* restored disks: the guest pauses on an I/O
                           error (error_policy, rerror_policy stop) */
};
char *agent_xml_restore(const char *xml, const struct agent_restore_xml *o);

/*
 * Who QEMU runs as for a domain of XML xml: its own DAC label (a
 * <seclabel model='dac'> with a <label>), else the host's base label for
 * its type in the capabilities XML caps, else root. A label is
 * "USER:GROUP", each a name or +N. 0, or -1 with the error set
 * (domxml.c; the libvirt call is agent_virt_qemu_owner).
 */
int agent_xml_qemu_owner(const char *xml, const char *caps, uid_t *uid,
                         gid_t *gid);
int agent_virt_qemu_owner(struct agent_virt *v, const char *xml, uid_t *uid,
                          gid_t *gid);

/* Redefine the persistent definition from xml. */
int agent_virt_define(struct agent_virt *v, const char *xml);
/* Start a defined domain by name. */
int agent_virt_start(struct agent_virt *v, const char *name);
/* 1 if a domain of that name is defined on uri (a read-only connection of
 * its own), 0 if not or if libvirt cannot tell: for warnings only. */
int agent_virt_defined(const char *uri, const char *name);

/*
 * Freeze the guest's filesystems through the guest agent, waiting at most
 * timeout_s. Starts a guard process first: if this process dies before
 * agent_virt_thaw, the guard thaws the guest. On failure the guest is
 * thawed before returning. t_call (may be NULL) gets lb_now_ns() of the
 * moment the freeze itself was asked for (after the guard started): the
 * start of the guest's frozen time.
 */
int agent_virt_freeze(struct agent_virt *v, struct agent_dom *d,
                      unsigned timeout_s, uint64_t *t_call);
/* Bound every guest agent call on d to secs (libvirt keeps it for the
 * domain: put VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_DEFAULT back after). */
int agent_virt_set_agent_timeout(struct agent_dom *d, int secs);
/* Thaw (always safe to call: a thawed guest stays thawed) and stop the
 * guard. must: we froze it, so a failure is an error (else ignored). A
 * guest whose QEMU ended is not frozen (0). If libvirtd is gone, the guard
 * is left running: it takes the domain's lock once this process lets go
 * of it, and thaws the guest as soon as libvirtd answers again (for up to
 * 10 minutes); a warning says so, and it returns 0. */
int agent_virt_thaw(struct agent_virt *v, struct agent_dom *d, bool must);

/*
 * One atomic disk-only external snapshot: disk targets[i] switches onto
 * the pre-created overlays[i] (qcow2); every other disk is left alone.
 * In two steps, so that the guest is frozen for the call alone:
 * agent_virt_snapshot_xml reads the domain's disks and returns the
 * snapshot's XML (the caller frees it; NULL on failure), and
 * agent_virt_snapshot makes the snapshot from it.
 */
char *agent_virt_snapshot_xml(struct agent_dom *d, size_t n,
                              char *const *targets, char *const *overlays);
int agent_virt_snapshot(struct agent_dom *d, const char *xml);

/*
 * Non-active block commit of the layers from top down to (not including)
 * base into base, waiting for the job's COMPLETED event (timeout_s). A job
 * that vanished without its event is judged by the chain: done if top
 * left it. LIVEBACKUP_COMMIT_BANDWIDTH (bytes/s, tests only) throttles it.
 */
int agent_virt_commit(struct agent_virt *v, struct agent_dom *d,
                      const char *target, const char *base, const char *top,
                      unsigned timeout_s);
/* The same commit, started and not waited for: QEMU runs it on; a later
 * agent_virt_wait_job (or the chain) says when it ended. */
int agent_virt_commit_start(struct agent_dom *d, const char *target,
                            const char *base, const char *top);
/* Active commit of the top into base, then pivot onto base. */
int agent_virt_commit_active(struct agent_virt *v, struct agent_dom *d,
                             const char *target, const char *base,
                             unsigned timeout_s);
/* 1 if a block job runs on target, 0 if not; wait for it to end (0 also
 * when it vanished without its event: the caller checks the chain). */
int agent_virt_job_running(struct agent_dom *d, const char *target);
int agent_virt_wait_job(struct agent_virt *v, struct agent_dom *d,
                        const char *target, unsigned timeout_s);

/* Start a shallow block copy (virDomainBlockCopy: QEMU's mirror, several
 * requests in flight) of target's top image into copy, a qcow2 created
 * beforehand (REUSE_EXT) whose backing chain holds what the top's backing
 * chain holds: only the top's own clusters travel. Guest writes are
 * mirrored into copy as they happen (SYNCHRONOUS_WRITES). Does not wait
 * (agent_virt_copy_finish). */
int agent_virt_copy_start(struct agent_dom *d, const char *target,
                          const char *copy);
/* Wait (timeout_s) for the block copy on target to be ready: 0 then (the
 * copy holds every block and gets every write), 1 if the domain already
 * runs on copy (the job ended without us), -1 with the error set if the
 * copy failed, was cancelled or is gone: the domain then stays on its top,
 * which holds every write. */
int agent_virt_copy_ready(struct agent_virt *v, struct agent_dom *d,
                          const char *target, const char *copy,
                          unsigned timeout_s);
/* Pivot a ready block copy: 0 once the domain runs on copy, -1 (error set)
 * if it does not. libvirt leaves the persistent definition as it was
 * (TRANSIENT_JOB): the caller rewrites it. */
int agent_virt_copy_pivot(struct agent_virt *v, struct agent_dom *d,
                          const char *target, const char *copy,
                          unsigned timeout_s);
/* The progress of the block job on target: 1 with *cur of *end, 0 if none
 * runs, -1 (error set). */
int agent_virt_job_info(struct agent_dom *d, const char *target, uint64_t *cur,
                        uint64_t *end);
/* 1 if the domain is paused on an I/O error, 0 if not, -1. */
int agent_dom_ioerror(struct agent_dom *d);
/* End the block job on target (no pivot). */
int agent_virt_job_abort(struct agent_virt *v, struct agent_dom *d,
                         const char *target);
/* Pause a running domain (virDomainSuspend: QEMU stops the vCPUs and
 * drains the disks' requests in flight). */
int agent_virt_suspend(struct agent_dom *d);
/* Resume a paused domain. */
int agent_virt_resume(struct agent_dom *d);
/* Save the running domain's state (virDomainManagedSave: it stops) and
 * start it again from it: its QEMU opens its disks afresh (a dead NBD
 * connection gets a new one); the guest goes on where it was. */
int agent_virt_save_restart(struct agent_dom *d);
/* Destroy the domain if it runs, and undefine it if asked (rollback of a
 * restore that started it). */
int agent_virt_destroy(struct agent_dom *d, bool undefine);

/* The thaw guard (a hidden command the agent execs). */
int cmd_thaw_guard(int argc, char **argv);

#endif
