/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Full or incremental, and why: the decision a backup makes for each disk
 * (DESIGN.md, "Change tracking": a disk whose tracking was lost falls back
 * to a full backup of that disk, with a clear message). Pure: livebk.c
 * gathers the facts (the journal, the live chain, the repository's
 * listing, the options) and acts on the answer.
 */
#include "agent/live/live.h"

#include <string.h>

void
livebk_decide(const struct livebk_disk_facts *f, struct livebk_decision *d)
{
    memset(d, 0, sizeof *d);
    if (!f->tracked) {
        snprintf(d->why, sizeof d->why, "first backup of this disk");
        return;
    }
    if (f->full) {
        snprintf(d->why, sizeof d->why, "--full");
    } else if (!f->parent_ok) {
        d->lost = true;
        if (f->other_repo)
            snprintf(d->why, sizeof d->why,
                     "tracking refers to another repository");
        else
            snprintf(d->why, sizeof d->why,
                     "its last backup %s is gone from the repository",
                     f->last_backup ? f->last_backup : "");
    } else if (!f->chain_intact) {
        /* Our overlays are part of the user's chain now. */
        d->lost = true;
        snprintf(d->why, sizeof d->why, "%s",
                 f->chain_why ? f->chain_why : "its chain changed");
        return;
    } else if (f->size != f->tracked_size) {
        d->lost = true;
        d->keep = true;
        snprintf(d->why, sizeof d->why, "it was resized (%llu -> %llu bytes)",
                 (unsigned long long)f->tracked_size,
                 (unsigned long long)f->size);
        return;
    } else if (f->full_every && f->incrementals + 1 >= f->full_every) {
        d->keep = true;
        snprintf(d->why, sizeof d->why, "--full-every %u", f->full_every);
        return;
    } else {
        d->incremental = d->keep = true;
        return;
    }
    /* --full or a lost parent: still on our overlays if its chain is. */
    d->keep = f->chain_intact;
}
