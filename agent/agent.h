/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent's internal contracts (livebackup, on the VM host).
 *
 * The agent reaches a repository only through the protocol: a local
 * repository is served by a `backupd serve` child, a remote one by
 * `ssh host backupd serve`. It reads disk images only through QEMU's block
 * layer (qemu-nbd + libnbd), so raw, qcow2 and backing chains all work the
 * way QEMU sees them.
 */
#ifndef LB_AGENT_H
#define LB_AGENT_H

#include "common/common.h"
#include "proto/proto.h"

/* ---- global options ---------------------------------------------------------
 */

struct agent_opts {
    bool json;       /* machine-readable events and summary on stdout */
    bool progress;   /* progress line on stderr (default: if a tty) */
    const char *rsh; /* ssh command line, like rsync -e */
    const char *remote_backupd; /* backupd command on the remote host */
    uint64_t bwlimit;           /* bytes/s, 0 = unlimited */
    int zlevel;                 /* zstd level */
    unsigned lock_wait;         /* seconds */
    unsigned max_stack;         /* deltas per window before a full window */
    unsigned threads;           /* worker threads (0: CPUs) */
};

extern struct agent_opts agent_opts;

/* ---- progress and events
 * ------------------------------------------------------ */

struct agent_progress {
    const char *what; /* "backup vda", "restore vda" */
    uint64_t total;
    _Atomic uint64_t done;
    uint64_t start_ns, last_ns;
    bool shown;
};

void agent_progress_begin(struct agent_progress *p, const char *what,
                          uint64_t total);
/* Add done bytes; redraws at most 4 times a second. Thread-safe. */
void agent_progress_add(struct agent_progress *p, uint64_t n);
void agent_progress_end(struct agent_progress *p);

/* --json: one JSON object per line on stdout. kv values that are all
 * digits are emitted as numbers. */
void agent_event(const char *event, const struct proto_kv *kv);

/* ---- repository connection
 * ---------------------------------------------------- */

struct agent_repo {
    char *url;
    char *path; /* repository path (local or on the remote host) */
    char *host; /* ssh host, NULL for local */
    struct proto_conn *conn;
    pid_t child; /* backupd or ssh */
    uint32_t window_size;
    bool append_only;
    char repo_id[128];
    bool established; /* HELLO went through: a later failure is a cut */
    struct lb_buf out;
};

/* Connect to the repository at url (a path or ssh://[user@]host[:port]/path)
 * and exchange HELLO. Errors say what to do (ssh failing, backupd
 * missing on the remote host, ...). */
struct agent_repo *agent_repo_connect(const char *url);
/* INIT then nothing else (the session ends with close). */
int agent_repo_init(struct agent_repo *r, uint32_t window_size);
/* OPEN in mode (PROTO_OPEN_*). */
int agent_repo_open(struct agent_repo *r, uint8_t mode);
/* Close the connection and reap the child. */
void agent_repo_close(struct agent_repo *r);
/* End the session now (its locks on the repository go with it): close
 * the connection, reap the child; r stays for agent_repo_close, and no
 * other call may use it. */
void agent_repo_end(struct agent_repo *r);
/* After a failure: collect an ERROR frame the server may have sent, and
 * the child's exit status, to explain a broken connection. */
void agent_repo_explain(struct agent_repo *r);
/* Send the request encoded in r->out and wait for a reply of `type` (its
 * payload in *p, *len; *code, if not NULL, the code of an ERROR instead).
 * On failure the error slot explains it (agent_repo_explain). */
int agent_repo_call(struct agent_repo *r, uint16_t type, const uint8_t **p,
                    uint32_t *len, uint32_t *code);

/* All backups (of name, or all if NULL), oldest first. */
struct agent_list {
    size_t n;
    struct proto_kv *b; /* metadata of each */
};
int agent_repo_list(struct agent_repo *r, const char *name,
                    struct agent_list *out);
void agent_list_free(struct agent_list *l);
/*
 * Pick a backup of name: spec is an id, "latest", or a time (the latest
 * backup at or before it). Returns the index in l, or -1 (error set).
 */
ssize_t agent_list_pick(const struct agent_list *l, const char *name,
                        const char *spec);

/* Download a backup's manifest into an anonymous temp file; returns its
 * fd positioned at 0, or -1. */
int agent_repo_get_manifest(struct agent_repo *r, const char *id);

/* ---- image sources (qemu-nbd + libnbd)
 * ------------------------------------------ */

struct agent_extent {
    uint64_t off, len;
    bool zero;    /* reads as zeros */
    bool changed; /* allocated above the --since layer (always true
                     without --since) */
};

struct agent_source;

/*
 * Open an image read-only through qemu-nbd. since: NULL for the whole
 * guest-visible disk, or an image in path's backing chain: then extents
 * report `changed` for data allocated in the layers above it.
 * force_share: open an image that a running QEMU holds (no locking).
 */
struct agent_source *agent_source_open(const char *path, const char *since,
                                       bool force_share);
void agent_source_close(struct agent_source *s);
uint64_t agent_source_size(const struct agent_source *s);
const char *agent_source_format(const struct agent_source *s);
/* The chain, top first, as "a.qcow2 -> b.raw" (for messages). */
const char *agent_source_chain(const struct agent_source *s);
/*
 * The extents covering [off, off+len), merged and in order, into *out
 * (reused vector; *n set). Returns 0 or -1.
 */
int agent_source_map(struct agent_source *s, uint64_t off, uint64_t len,
                     struct agent_extent **out, size_t *n, size_t *cap);
int agent_source_pread(struct agent_source *s, void *buf, size_t len,
                       uint64_t off);

/* One read of a batch: len bytes at off into buf. */
struct agent_read {
    void *buf;
    size_t len;
    uint64_t off;
};

/* Several reads at once (in flight together on the NBD connection, so
 * many small reads cost one round trip, not one each). 0 or -1. */
int agent_source_preadv(struct agent_source *s, const struct agent_read *r,
                        size_t n);

/* ---- backing chains
 * ------------------------------------------------------------- */

struct agent_layer {
    char *path;   /* absolute */
    char *format; /* "qcow2", "raw", ... */
    uint64_t size;
};

/* The backing chain of path (top first), from qemu-img info. */
int agent_chain(const char *path, bool force_share, struct agent_layer **out,
                size_t *n);
void agent_chain_free(struct agent_layer *l, size_t n);

/* ---- backups
 * ------------------------------------------------------------------ */

struct agent_disk_spec {
    const char *name;  /* vda */
    const char *path;  /* image to read (top of the chain) */
    const char *since; /* NULL: full; else the layer changes are above */
    bool force_share;
    struct proto_kv meta; /* extra per-disk metadata (source path, ...) */
};

struct agent_backup_result {
    char id[PROTO_ID_LEN + 1];
    char parent[PROTO_ID_LEN + 1];
    struct proto_kv meta; /* the committed metadata */
    uint64_t bytes_read, bytes_sent, chunks_sent, chunks_reused;
    uint64_t changed_bytes;
    double seconds;
};

/*
 * Back up disks into the repository as one backup of set `name`.
 * parent: "" for no parent (every disk must be full), else the parent's
 * id (disks with `since` become incrementals on it). meta: backup
 * metadata (kind, consistency, ...). xml (may be NULL): a domain XML saved
 * with the backup, as a BLOB chunk named by the meta key "domain_xml".
 */
int agent_backup_disks(struct agent_repo *r, const char *name,
                       const char *parent, struct agent_disk_spec *disks,
                       size_t ndisks, const struct proto_kv *meta,
                       const char *xml, struct agent_backup_result *res);
void agent_backup_result_free(struct agent_backup_result *res);

/* Store a blob (a saved domain XML) as a chunk; *d receives its digest. */
int agent_put_blob(struct agent_repo *r, const void *data, size_t len,
                   struct proto_digest *d);
/* Fetch a blob by digest (caller frees *data). */
int agent_get_blob(struct agent_repo *r, const struct proto_digest *d,
                   char **data, size_t *len);

/* ---- restore
 * --------------------------------------------------------------------- */

enum agent_format { AGENT_FMT_RAW, AGENT_FMT_QCOW2 };

struct agent_restore_disk {
    char name[65];
    uint64_t size;
    uint64_t nonempty_windows; /* for the space estimate */
    char mode[16];             /* full or incremental read of the source */
    char full_reason[256];     /* why a tracked disk was read whole */
};

/*
 * From a downloaded manifest (fd from agent_repo_get_manifest): the disks
 * it holds, after checking the manifest whole.
 */
int agent_manifest_disks(int mfd, struct agent_restore_disk **out, size_t *n);

/*
 * Check that the repository holds every chunk disk needs (QUERY); names
 * the first missing one in the error.
 */
int agent_restore_check(struct agent_repo *r, int mfd, const char *id,
                        const char *disk);

/*
 * Rebuild disk from the manifest into out_path (written as out_path's
 * temp sibling, renamed at the end), sparse, in format fmt. force:
 * replace an existing file.
 */
int agent_restore_disk(struct agent_repo *r, int mfd, const char *id,
                       const char *disk, const char *out_path,
                       enum agent_format fmt, bool force);

/* ---- commands
 * ------------------------------------------------------------------- */

int cmd_init(int argc, char **argv);
int cmd_backup_image(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_restore_image(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_untrack(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_gc(int argc, char **argv);

/* Shared option parsing for the global options (--json, --rsh, ...).
 * Returns 1 if opt was one of them (consumed), 0 if not, -1 on error. */
int agent_common_opt(int opt, const char *arg);
#define AGENT_COMMON_LONGOPTS                                                  \
    {"json", no_argument, NULL, 1000}, {"rsh", required_argument, NULL, 1001}, \
        {"remote-backupd", required_argument, NULL, 1002},                     \
        {"bwlimit", required_argument, NULL, 1003},                            \
        {"compress-level", required_argument, NULL, 1004},                     \
        {"lock-wait", required_argument, NULL, 1005},                          \
        {"progress", no_argument, NULL, 1006},                                 \
        {"no-progress", no_argument, NULL, 1007},                              \
        {"verbose", no_argument, NULL, 'v'},                                   \
        {"quiet", no_argument, NULL, 'q'},                                     \
    {                                                                          \
        "threads", required_argument, NULL, 1008                               \
    }

/* Print the error slot (and hint) for the user; returns exit code 1. */
int agent_fail(void);

#endif /* LB_AGENT_H */
