/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The journal of an instant restore (instant_state.c): what `recover` and
 * `status` need to find, restart and finish it after the command that
 * started it is gone. One JSON file per restored domain in the state
 * directory, written atomically before each step, locked (flock on its
 * .lock) by whoever is finishing the restore.
 */
#ifndef LB_AGENT_INSTANT_H
#define LB_AGENT_INSTANT_H

#include "common/common.h"
#include "proto/proto.h"
#include <sys/types.h>

#define INSTANT_MAX_DISKS PROTO_MF_MAX_DISKS

struct instant_disk {
    char target[65];
    char *overlay; /* the local qcow2 the domain starts on (NAME-vda.instant.
                      qcow2): the guest's writes until the pivot */
    char *base;    /* the disk of the backup, copied from the export (raw) */
    char *top;     /* the qcow2 over base the domain ends on (the path the
                      restore's XML names) */
    char *socket;  /* the export's unix socket (the overlay's backing) */
    char *pidfile; /* the export's nbdkit */
    char *log;     /* its log */
    uint64_t size;
};

struct instant_state {
    char name[256]; /* the restored domain */
    char uuid[40];
    char *url;                     /* the repository */
    char *set;                     /* the backup's name */
    char backup[PROTO_ID_LEN + 1]; /* its id */
    char *rsh, *remote_backupd;    /* session settings ("" for none) */
    uint64_t cache_bytes;          /* the exports' cache (0: default) */
    uid_t qemu_uid;                /* who QEMU runs as: its exports' */
    gid_t qemu_gid;                /* sockets are made its own (0: root;
                                      absent from a journal: 0) */
    int64_t started;               /* wall time */
    bool pulling;                  /* the pulls were started */
    bool paused;                   /* a finisher paused the guest for a
                                      pivot: whoever finds it paused
                                      resumes it */
    size_t nd;
    struct instant_disk d[INSTANT_MAX_DISKS];
};

/* Parse a journal's text (fuzzed: fuzz/fuzz_instant.c): 0, or -1 with the
 * error slot set; st is cleared first and freed on failure. */
int instant_parse(const char *text, size_t len, struct instant_state *st);
/* Serialise (caller frees). */
char *instant_format(const struct instant_state *st);
void instant_free(struct instant_state *st);

/* The journal of domain name: DIR/NAME.instant (caller frees). */
char *instant_path(const char *name);
/* Lock (flock, not waiting) the journal of name: the fd, or -1 with
 * EWOULDBLOCK when someone else is finishing it. */
int instant_lock(const char *name);
/* Load it: 0, 1 if there is none, -1 on error. */
int instant_load(const char *name, struct instant_state *st);
/* Write it atomically. */
int instant_save(const struct instant_state *st);
/* Remove it (and its lock file). */
void instant_remove(const char *name);

/* ---- its exports and fill (instant_fill.c) ---- */

/* The pid of disk d's export if it runs, else 0. */
pid_t instant_export_pid(const struct instant_disk *d);
/* Start disk d's export unless it runs. */
int instant_export_up(const struct instant_state *st,
                      const struct instant_disk *d);
/* Stop it (SIGTERM; SIGKILL after 10 s) and remove its socket. */
void instant_export_stop(const struct instant_disk *d);
/* Copy disk d of the backup from its export into its base unless the base
 * exists: nbdcopy into BASE.part, flushed, renamed. */
int instant_fill(const struct instant_state *st, const struct instant_disk *d);
/* The fill's progress file (nbdcopy's "N/100" lines; caller frees). */
char *instant_fill_progress(const struct instant_state *st,
                            const struct instant_disk *d);
/* 1 with *pct if disk d's base is being filled, 0 if not. */
int instant_fill_percent(const struct instant_state *st,
                         const struct instant_disk *d, unsigned *pct);
/* rename(from, to), the directory of to synced. */
int instant_rename_durable(const char *from, const char *to);

#endif
