/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Backing up libvirt domains on tracking overlays (livebk.c), and the
 * recovery that finishes or undoes an interrupted run.
 */
#ifndef LB_AGENT_LIVEBK_H
#define LB_AGENT_LIVEBK_H

#include "agent/agent.h"
#include "agent/track.h"
#include "agent/virt.h"

struct livebk_opts {
    bool full;               /* read every disk whole */
    unsigned full_every;     /* every N-th backup of a disk reads it whole */
    bool crash;              /* --consistency crash: no freeze */
    unsigned freeze_timeout; /* seconds */
    const char *overlay_dir; /* NULL: next to each disk's image */
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
};

/* Thaw first, then finish or undo an interrupted run. verbose (the
 * recover command): say when there was nothing to do, and fail when a
 * backed-up overlay could not be committed (the domain or libvirtd is
 * gone). */
int livebk_recover(struct livebk *b, bool verbose);
/* One backup of the domain into the repository (OPENed for writing). */
int livebk_backup(struct livebk *b, struct agent_repo *r,
                  struct livebk_result *res);
/* Commit the tracking overlays and return the domain to its images. */
int livebk_untrack(struct livebk *b);

#endif
