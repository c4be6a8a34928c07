/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Change tracking state, one file per domain (the journal): which
 * tracking overlays each disk runs on, which of them the repository has
 * acknowledged, and the step a backup was at. Written atomically (temp,
 * fsync, rename, fsync dir) before each step, so a crash at any point
 * leaves a state that `livebackup recover` can finish or undo.
 *
 * A disk's chain, bottom to top:
 *
 *   user's own chain ... <- user_top <- ov[0] <- ... <- ov[nov-1] (active)
 *
 * The first `acked` overlays (and user_top) are covered by the last
 * acknowledged backup: the next incremental sends what the layers above
 * them hold; after it commits, they are block-committed into user_top.
 */
#ifndef LB_AGENT_TRACK_H
#define LB_AGENT_TRACK_H

#include "common/common.h"
#include "proto/proto.h"

#define TRACK_MAX_OVERLAYS 64

enum track_step {
    TRACK_IDLE,      /* nothing in flight */
    TRACK_PREPARED,  /* new overlays (disk.newov) created, not switched in */
    TRACK_SWITCHED,  /* the guest runs on the new overlays; backup in flight */
    TRACK_COMMITTED, /* the repository acknowledged `backup` */
    TRACK_BLOCKCOMMIT, /* committing acknowledged overlays into user_top */
    TRACK_COMMITTING,  /* their block commits run in QEMU, not waited for
                          (backup --background-commit): the next run
                          waits for them and deletes the overlays */
};

struct track_disk {
    char target[65];
    char *user_top; /* the user's own top image */
    char *user_fmt;
    uint64_t size;
    size_t nov, acked;
    char *ov[TRACK_MAX_OVERLAYS];
    char *newov;           /* TRACK_PREPARED: created, not yet switched in */
    unsigned incrementals; /* backups of it since its last full read */
    char last_backup[PROTO_ID_LEN + 1];
};

struct track_state {
    char name[256];
    char uuid[40];
    char repo_id[128]; /* the repository the acknowledgements refer to */
    enum track_step step;
    char backup[PROTO_ID_LEN + 1];      /* committed, for TRACK_COMMITTED */
    char last_backup[PROTO_ID_LEN + 1]; /* the parent of the next backup */
    /* for status: the last attempt, and the last backup that committed */
    int64_t attempt_time;
    bool attempt_ok;
    bool attempt_warning; /* ok, but disks were skipped (attempt_msg) */
    char attempt_msg[512];
    int64_t last_time;
    uint64_t last_size, last_freeze_ms;
    size_t nd;
    struct track_disk *d;
};

const char *track_step_name(enum track_step s);

/* Parse a state file's text (fuzzed: fuzz/fuzz_track.c). 0 or -1 with
 * the error slot set; st is cleared first. */
int track_parse(const char *text, size_t len, struct track_state *st);
/* Serialise (caller frees). */
char *track_format(const struct track_state *st);
void track_free(struct track_state *st);

struct track_disk *track_disk_get(struct track_state *st, const char *target);
struct track_disk *track_disk_add(struct track_state *st, const char *target);
void track_disk_reset(struct track_disk *d);
/* The layer the next incremental is taken since: ov[acked-1] or user_top. */
const char *track_acked_point(const struct track_disk *d);

/* Where the state lives: $LIVEBACKUP_STATE_DIR or /var/lib/livebackup. */
const char *track_dir(void);

/*
 * Lock and load the state of a domain (uuid); a missing file gives an
 * empty state. The lock (flock on DIR/UUID.lock) is held until
 * track_close; a second agent gets a clear error at once.
 */
struct track_handle;
struct track_handle *track_open(const char *uuid, const char *name,
                                struct track_state **st);
/* Read a domain's state without locking it (status): 0, 1 if there is
 * none, -1 on error. */
int track_peek(const char *uuid, struct track_state *st);
/* Write the state atomically (journal a step). */
int track_save(struct track_handle *h);
/* Remove the state (untrack). */
int track_remove(struct track_handle *h);
void track_close(struct track_handle *h);

#endif
