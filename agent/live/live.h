/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent's live layer (agent/live/, library lb_agent_live): everything
 * that needs libvirt or libxml2, and the journal. Backing up libvirt
 * domains on tracking overlays (livebk.c), the recovery that finishes or
 * undoes an interrupted run, and the in-place restore of a domain
 * (restore.c); the libvirt wrapper (virt.h) and the journal (track.h) it
 * builds on. The repository work goes through the client layer
 * (agent/client/client.h). This header compiles without libvirt's.
 */
#ifndef LB_AGENT_LIVE_H
#define LB_AGENT_LIVE_H

#include "agent/client/client.h"
#include "agent/live/instant.h"
#include "agent/live/track.h"
#include "agent/live/virt.h"

struct livebk_opts {
    bool full;               /* read every disk whole */
    unsigned full_every;     /* every N-th backup of a disk reads it whole */
    bool crash;              /* --consistency crash: no freeze */
    unsigned freeze_timeout; /* seconds */
    const char *overlay_dir; /* NULL: next to each disk's image */
    bool background_commit;  /* start the block commits, do not wait */
    char **disks;            /* --disks: only these targets */
    size_t ndisks;
};

/* One domain being worked on: its connection, state and lock. */
struct livebk {
    const struct livebk_opts *o;
    struct agent_virt *v;
    struct agent_dom dom;
    struct track_handle *h;
    struct track_state *st;
};

struct livebk_result {
    struct agent_backup_result bk;
    uint64_t freeze_ms;
    bool quiesced;
    unsigned disks_full, disks_incremental;
    int commit_failures; /* overlays left for the next run to commit */
    /* Disks with a medium the backup left out, and why ("hdc: a cdrom,
     * vdb: a network disk"): a warning (exit status 3), not a success. */
    char skipped[400];
    struct agent_phases ph; /* where the time went, but in bk (its own) */
};

/* Thaw first, then finish or undo an interrupted run. verbose (the
 * recover command): say when there was nothing to do, and fail when a
 * backed-up overlay could not be committed (the domain or libvirtd is
 * gone). */
int livebk_recover(struct livebk *b, bool verbose);
/* One backup of the domain into the repository (OPENed for writing). */
int livebk_backup(struct livebk *b, struct agent_repo *r,
                  struct livebk_result *res);
/* What status shows of the last attempt: when, how it went (the error
 * slot's message if it failed) and, if it committed, its size and freeze
 * time; journaled. The error slot is kept. */
void livebk_record_attempt(struct livebk *b, bool ok,
                           const struct livebk_result *res);
/* Commit the tracking overlays and return the domain to its images. */
int livebk_untrack(struct livebk *b);

/* ---- full or incremental, and why (decide.c) --------------------------- */

/* What is known of one disk when a backup is planned. */
struct livebk_disk_facts {
    bool tracked;            /* the journal has tracking overlays for it */
    bool full;               /* --full */
    bool parent_ok;          /* the journal's last backup (the parent of an
                                incremental) is in this repository */
    bool other_repo;         /* the journal refers to another repository */
    const char *last_backup; /* the journal's last backup, for the message */
    bool chain_intact;       /* tracked: the disk runs on our overlays, its
                                backing chain as the journal has it */
    const char *chain_why;   /* !chain_intact: what changed */
    uint64_t tracked_size;   /* tracked: its size when tracking began */
    uint64_t size;           /* its size now */
    unsigned full_every;     /* --full-every N (0: none) */
    unsigned incrementals;   /* incrementals in a row since its last full */
};

struct livebk_decision {
    bool incremental; /* send what changed above the acknowledged point */
    bool keep;        /* its tracking overlays stay in its chain (they are
                         acknowledged by this backup and committed after) */
    bool lost;        /* tracking was lost, not a full asked for: warn */
    char why[512];    /* why full ("" when incremental) */
};

/*
 * Full or incremental for this disk, and why: the first backup of a disk,
 * --full, a parent gone (or in another repository), a changed chain, a
 * resize or --full-every make it full; else it is incremental. A pure
 * function (tests/unit/test_decide.c holds its table).
 */
void livebk_decide(const struct livebk_disk_facts *f,
                   struct livebk_decision *d);

/* restore --in-place: which domain, which of its disks. */
struct livebk_inplace {
    const char *uri;    /* the libvirt connection */
    const char *domain; /* name or UUID */
    char *const *disks; /* only these targets (every disk if ndisks is 0) */
    size_t ndisks;
};

/*
 * Restore the disks of backup b over the domain's own images, which must
 * be at rest (raw or qcow2 files): the disks of the domain as it is
 * defined now, matched by target (below this host's tracking overlays),
 * never paths the backup's saved XML names; a disk of the backup the
 * domain has not, or not as such a file, is refused. Every chunk is
 * checked first, the new images replace the old ones only when all are
 * written, the definition is pointed back at them and the domain's
 * tracking is dropped (its next backup enrols it afresh).
 */
int livebk_restore_in_place(const struct livebk_inplace *o,
                            struct agent_backup *b);

/* ---- instant restore (instant.c) -------------------------------------- */

struct livebk_instant {
    const char *uri;         /* libvirt */
    const char *url;         /* the repository: the exports read from it */
    const char *name, *uuid; /* the new domain */
    const char *xml;         /* its XML: disks on their tops (qcow2),
                                error_policy and rerror_policy stop */
    char *const *tops;       /* per disk of the backup: the qcow2 it ends
                                on (DIR/NAME-vda.qcow2, over DIR/NAME-
                                vda.raw), NULL when not restored */
    uint64_t cache_bytes;    /* the exports' cache (0: default) */
    bool force;              /* replace an overlay or base left there */
};

/*
 * Restore backup b as a new domain that runs at once on local overlays
 * (DIR/NAME-vda.instant.qcow2) backed by NBD exports of its disks (one
 * nbdkit each, daemons of their own), and start a detached watcher that
 * pulls them (livebk_instant_finish). Journaled (instant.h); a failure
 * before the domain runs undoes everything. 0 once the domain runs.
 */
int livebk_instant_restore(const struct livebk_instant *o,
                           struct agent_backup *b);
/*
 * Finish the instant restore of domain name (recover, and the watcher), and
 * wait for it: per disk, the backup's disk copied from its export into its
 * base (a raw file beside the top), then the domain moved onto its top (a
 * qcow2 over the base) by a shallow block copy of the overlay (the guest's
 * writes) and a pivot; a shut-off domain's overlay is rebased onto the base
 * and moved to the top's name instead. What is gone is restarted (exports;
 * a guest paused on a read of a vanished export is resumed). Once every
 * disk runs on its top, the exports stop and the journal goes. 1 if there
 * is no instant restore of name, 0, or -1 (error set; the journal stays
 * for the next try).
 */
int livebk_instant_finish(const char *uri, const char *name);
/* The hidden command the restore starts: __instant-watch NAME -c URI. */
int cmd_instant_watch(int argc, char **argv);

struct livebk_instant_disk {
    bool done;    /* the domain runs on its top */
    bool pulling; /* its base is being filled or its copy runs: cur of end */
    uint64_t cur, end;
    pid_t export_pid; /* 0: its export does not run */
};

struct livebk_instant_info {
    struct instant_state st;
    bool finishing; /* a watcher or recover is at work on it */
    struct livebk_instant_disk d[INSTANT_MAX_DISKS];
};

/* For status: the instant restore of dom, if any (1 if none). */
int livebk_instant_query(struct agent_dom *dom,
                         struct livebk_instant_info *out);
void livebk_instant_info_free(struct livebk_instant_info *i);

#endif
