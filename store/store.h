/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store: the backup repository (store/FORMAT.md is the normative format).
 *
 * A repository is a directory (or a Ceph RADOS pool namespace,
 * "rados:POOL/NS?...": backend.h) holding content-addressed chunks (zstd,
 * named by SHA-256), one manifest per backup, a config file and a lock.
 * Every backup is a synthetic full: its manifest names, for every window
 * of every disk, the stack of chunks that rebuilds it.
 *
 * Concurrency: any number of STORE_READ and STORE_WRITE openers may work
 * at once (shared lock); STORE_ADMIN (delete, prune) is exclusive. Chunk
 * writes are atomic and idempotent, manifests are committed by rename, so
 * concurrent writers never corrupt each other. gc runs beside backups (a
 * STORE_WRITE opener; one gc at a time).
 *
 * Thread safety: store_chunk_* may be called from several threads on one
 * struct store; a struct store_txn belongs to one thread.
 *
 * Errors: functions return -1 (or NULL) with the error slot set; its errno
 * tells the class (ENOENT not found, ENOSPC disk full, EWOULDBLOCK locked,
 * EPROTO damaged data, EINVAL bad request, EEXIST exists, EPERM refused by
 * policy, ENOTDIR not a repository, ERANGE format too new, ENOTEMPTY
 * foreign directory).
 */
#ifndef LB_STORE_H
#define LB_STORE_H

#include "common/common.h"
#include "proto/proto.h"

/* The newest format this store reads and writes: 1 for an unencrypted
 * repository, 2 for an encrypted one (FORMAT.md, "config"). */
#define STORE_FORMAT_VERSION 2

enum store_mode {
    STORE_READ,  /* list, read manifests and chunks, verify */
    STORE_WRITE, /* + write chunks, commit backups, gc */
    STORE_ADMIN, /* + delete backups, prune (exclusive) */
};

struct store;

/*
 * Create a repository at path: it must not exist or be an empty directory
 * (or a repository creation interrupted earlier). window_size must satisfy
 * proto_window_size_valid.
 */
int store_init(const char *path, uint32_t window_size);

/* What an encrypted repository records of its key (FORMAT.md,
 * "Encryption"). The store never sees a key, only these. */
struct store_key {
    uint8_t encryption;                 /* enum proto_encryption */
    uint8_t key_id[PROTO_KEY_ID_BYTES]; /* names the master key */
    const uint8_t *keyfile;             /* REPOKEY: the key file */
    size_t keyfile_len;
};

/*
 * store_init of an encrypted repository (k NULL or PROTO_ENC_NONE: an
 * unencrypted one): a REPOKEY repository keeps the key file, checked to be
 * one (its layout) of key k->key_id, in keys/repokey.
 */
int store_init_keyed(const char *path, uint32_t window_size,
                     const struct store_key *k);

/*
 * The repository's files are private to their owner (0600): a writer
 * running as another user (root) would leave files the owner's backupd
 * cannot read. 0 if the directory path belongs to the effective user,
 * else -1 with EPERM and a hint naming the owner and what to run.
 * store_open (but STORE_READ) and store_init (an existing directory)
 * check it.
 */
int store_owner_check(const char *path);

/*
 * Open the repository at path. lock_wait_secs: how long to wait for a
 * conflicting lock (0: fail at once with EWOULDBLOCK and a message naming
 * the holder). Also removes temporary files left by crashed sessions.
 */
struct store *store_open(const char *path, enum store_mode mode,
                         unsigned lock_wait_secs);
void store_close(struct store *st);
/*
 * fn(opaque) is called now and then while a long operation makes
 * progress (a manifest opened or read, every few thousand of its windows,
 * a chunk examined or removed, a backup deleted: gc, verify, list, prune,
 * delete), from any of its threads; never while it waits on nothing. For
 * a server to tell its client it works (PROTOCOL.md, WORKING). NULL: none.
 */
void store_set_tick(struct store *st, void (*fn)(void *opaque), void *opaque);

uint32_t store_window_size(const struct store *st);
const char *store_repo_id(const struct store *st);
const char *store_path(const struct store *st);
/* The repository's format version (1 or 2) and encryption. */
unsigned store_format_version(const struct store *st);
uint8_t store_encryption(const struct store *st);
/* The key id of an encrypted repository (PROTO_KEY_ID_BYTES). */
const uint8_t *store_key_id(const struct store *st);
/* A REPOKEY repository's key file into out (at most cap bytes); returns
 * its length, or -1 (ENOENT: keys/repokey is missing, EPROTO: damaged). */
ssize_t store_key_get(struct store *st, uint8_t *out, size_t cap);
/* Replace a REPOKEY repository's key file by one of the same key id
 * (another passphrase), atomically. Needs STORE_WRITE; refused in
 * append-only mode. */
int store_key_set(struct store *st, const uint8_t *p, size_t len);
/*
 * Trust the client's digests: store_chunk_put checks only a chunk's frame
 * (sizes, type), not its content. Only for a client that could write the
 * repository's files itself anyway: the agent's own local backupd child.
 */
void store_set_trusted(struct store *st, bool on);

/* Refuse delete, prune and gc (backupd serve --append-only). */
void store_set_append_only(struct store *st, bool on);
bool store_append_only(const struct store *st);

/* ---- chunks ------------------------------------------------------------- */

/* 1 if the chunk is stored, 0 if not, -1 on error. */
int store_chunk_exists(struct store *st, const struct proto_digest *d);

/*
 * Answer "is this chunk stored?" for a backup that will reuse it: 1 if it
 * is, 0 if not, -1 on error. For a STORE_WRITE or STORE_ADMIN opener the
 * chunk file's mtime is also set to now, which tells a concurrent gc that a
 * running backup depends on it (FORMAT.md, "Garbage collection"); a
 * STORE_READ opener (a restore) only checks, like store_chunk_exists.
 */
int store_chunk_touch(struct store *st, const struct proto_digest *d);

/* A chunk type not known (yet): a header that could not be read. */
#define STORE_TYPE_UNKNOWN 0xff

/* A chunk file's header (FORMAT.md, "Chunk files"): version 1 (plain or
 * zstd) or 2 (sealed, with a CRC-32C of the stored bytes). */
struct store_chunk_hdr {
    uint8_t version, type, comp;
    uint32_t raw_len, stored_len;
    uint32_t crc;   /* version 2 */
    size_t hdr_len; /* where the stored bytes start */
};

/*
 * Read and check a stored chunk's header: magic, version, type,
 * compression, lengths in range (a RAW chunk at most a window, a BLOB at
 * most PROTO_MAX_BLOB), the file's size, and the repository's form (sealed
 * in an encrypted one, plain or zstd in another). Returns 0, or -1 with the
 * error slot set: ENOENT if the chunk is not stored, EPROTO if its header
 * is bad. With touch, a STORE_WRITE or STORE_ADMIN opener also sets the
 * file's mtime to now, as store_chunk_touch does.
 */
int store_chunk_head(struct store *st, const struct proto_digest *d, bool touch,
                     struct store_chunk_hdr *h);

/*
 * store_chunk_head for n chunks at once (a QUERY's batch; at most
 * PROTO_MAX_QUERY): h[i] and err[i] (0, ENOENT: not stored, EPROTO: a bad
 * header). An object backend sends the operations together. -1 on another
 * error (the slot set).
 */
int store_chunk_head_many(struct store *st, const struct proto_digest *d,
                          size_t n, bool touch, struct store_chunk_hdr *h,
                          int *err);

/* Scratch space one thread reuses for chunk work (plaintext buffer and a
 * zstd context). */
struct store_scratch;
struct store_scratch *store_scratch_new(void);
void store_scratch_free(struct store_scratch *s);

/*
 * Check a received chunk (decompress, re-hash, validate a DELTA's runs
 * against the window size; only its sizes for a trusted client) and store
 * it atomically (temp file, fdatasync, link). Returns 1 if it was already
 * stored (then touched, as by store_chunk_touch), 0 if written, -1 on error
 * (EPROTO: the data does not match its digest). *stored_bytes receives the
 * bytes written to disk (0 if it existed).
 * Needs STORE_WRITE.
 */
int store_chunk_put(struct store *st, struct store_scratch *s,
                    const struct proto_chunk *c, uint64_t *stored_bytes);

/*
 * store_chunk_put in two steps, so that a caller can make many chunks
 * durable at once from several threads (concurrent fdatasyncs share the
 * filesystem's journal commits): store_chunk_write checks the chunk and
 * stages it with the backend (backend.h: a temp file of the session, or
 * memory), and returns 1 if the backend tells at once that it is stored
 * (then touched, and its header checked as sent), 0 with *w filled, -1 on
 * error; store_chunk_publish creates it exclusively (the file backend:
 * fdatasync and link; its name durable at the commit's barrier) and
 * returns 1 if it was stored already (touched, checked), 0 with
 * *stored_bytes set, -1 on error (EPROTO: stored with another header);
 * store_chunk_written_drop drops a staged chunk that will not be
 * published. Until it is published, a staged chunk does not exist for
 * anyone.
 */
struct store_be;
struct store_be_staged;
struct store_written {
    struct store_be *be;
    struct store_be_staged *staged;
    struct proto_digest d;
    uint8_t type;
    uint32_t raw_len;
    uint64_t size;
};
int store_chunk_write(struct store *st, struct store_scratch *s,
                      const struct proto_chunk *c, struct store_written *w);
/* What store_chunk_write of a chunk of data_len stored bytes holds in
 * memory until the chunk is published or dropped, at most, with the copy
 * the backend's library makes to send it: 0 on a backend that stages
 * chunks in temporary files (RADOS keeps them in memory). */
uint64_t store_staged_mem(const struct store *st, uint64_t data_len);
int store_chunk_publish(struct store *st, struct store_written *w,
                        uint64_t *stored_bytes);
/* Make n written chunks durable together before they are published (the
 * file backend: one syncfs for them all instead of an fdatasync each;
 * others: nothing to do). 0, or -1: publish them one by one still works
 * (each then syncs its own), or drop them. */
int store_chunks_sync(struct store *st, struct store_written *w, size_t n);
/* Whether store_chunks_sync does anything here (else publish chunks from
 * several threads at once: each one makes its own durable). */
bool store_chunks_sync_together(const struct store *st);
void store_chunk_written_drop(struct store_written *w);

/*
 * Read a chunk's stored form: fills *c (data points into out, which is
 * reset first). Checks the header, not the content.
 */
int store_chunk_read(struct store *st, const struct proto_digest *d,
                     struct lb_buf *out, struct proto_chunk *c);

/* Pure: decode the header of a chunk file of file_len bytes (p holds at
 * least its first min(file_len, 24) bytes), checking its fields and that
 * the file is exactly as long as it says. PROTO_OK or a PROTO_E_* code. */
int store_chunk_hdr_decode(const uint8_t *p, size_t len, size_t file_len,
                           struct store_chunk_hdr *h);
/* The header of h (its version's length: h->hdr_len, set here) into out
 * (at least 24 bytes). */
void store_chunk_hdr_encode(uint8_t *out, struct store_chunk_hdr *h);

/*
 * Check a stored chunk as verify does without a key: a plain one is
 * decompressed and re-hashed against its name, a sealed one's stored
 * bytes against their CRC-32C and its sizes against its raw length.
 * Its header into *h if h. 0, or -1 (EPROTO: damaged; ENOENT: gone).
 */
int store_chunk_check(struct store *st, struct store_scratch *s,
                      const struct proto_digest *d, struct store_chunk_hdr *h);

/*
 * store_chunk_check, and the chunk's stored form into *c (data valid
 * until s is used again): what a copy reads (GET_STORED), checked before
 * it leaves. 0, or -1 (EPROTO: damaged; ENOENT: not stored).
 */
int store_chunk_read_checked(struct store *st, struct store_scratch *s,
                             const struct proto_digest *d,
                             struct proto_chunk *c);

/*
 * A hint that chunk d will be read soon (store_chunk_read_checked): the
 * file backend looks up its file and starts reading it into the page
 * cache, so that reads of many cold chunks overlap; other backends do
 * nothing. Never fails. Thread-safe.
 */
void store_chunk_prefetch(struct store *st, const struct proto_digest *d);

/*
 * Read, decompress and check a chunk against its digest; *plain points
 * into the scratch space (valid until its next use), *plain_len its size,
 * *type its type.
 */
int store_chunk_load(struct store *st, struct store_scratch *s,
                     const struct proto_digest *d, const uint8_t **plain,
                     size_t *plain_len, uint8_t *type);

/* ---- backups (writing) --------------------------------------------------- */

/*
 * What a client's metadata may hold (PROTOCOL.md, "Key/value lists"): the
 * backup's (BACKUP_BEGIN and COMMIT merged) leaves room in the manifest's
 * meta block for the keys the server sets, and is small: a listing holds
 * every backup's metadata at once (an agent sends under 1 KiB); a disk's
 * (DISK_BEGIN and DISK_END merged) leaves room for its "mode". Past them
 * the request fails (EINVAL).
 */
#define STORE_SERVER_KEYS 16
#define STORE_MAX_META_KEYS (PROTO_MAX_KV - STORE_SERVER_KEYS)
#define STORE_MAX_META_BYTES (64u << 10)
#define STORE_MAX_DISK_META_KEYS (PROTO_MAX_KV - 1)
#define STORE_MAX_DISK_META_BYTES (PROTO_MF_MAX_DISK_META - 64)

struct store_txn;

/*
 * Start a backup of set `name` (a domain or image name). parent_id is ""
 * for a backup with no parent, else the id of a committed backup of the
 * same name. meta: the agent's metadata (kind, consistency, ...), copied.
 */
struct store_txn *store_txn_begin(struct store *st, const char *name,
                                  const char *parent_id,
                                  const struct proto_kv *meta);
/*
 * Start the import of a backup copied from another repository
 * (PROTOCOL.md, "Copy"): its id, set name and parent are the source's
 * (the parent need not be here: every manifest is whole), meta its whole
 * metadata (the source's meta block: time, kind, domain_xml, mac, ...),
 * kept as it is but for the repository's own bookkeeping (seq,
 * chunks_new, bytes_new, bytes_received; disks and size follow the disks
 * sent). Its disks are sent whole (PROTO_DISK_FULL) with the source's
 * disk metadata, "mode" included. The id must be new here (EEXIST) and
 * name its time; an append-only repository takes only a new latest
 * backup of its set, not later than now (EPERM).
 */
struct store_txn *store_txn_import(struct store *st, const char *id,
                                   const char *name, const char *parent_id,
                                   const struct proto_kv *meta);
/* An import's metadata: at most PROTO_MAX_KV keys and this many bytes,
 * the server's keys included (a backup's own: 64 KiB from the client, and
 * the server's); its time at most this many seconds ahead of the clock
 * on an append-only connection. */
#define STORE_MAX_IMPORT_META_BYTES (STORE_MAX_META_BYTES + (16u << 10))
#define STORE_IMPORT_SKEW 300
const char *store_txn_id(const struct store_txn *t);
const char *store_txn_parent(const struct store_txn *t);

/*
 * Called with the parent's stack depths, window first.. first+n-1, in
 * order, in pieces of at most PROTO_MAX_DEPTHS_PER_FRAME: memory stays
 * bounded whatever the disk size. Returns 0, or -1 to stop.
 */
typedef int (*store_depths_fn)(void *opaque, uint64_t first, const uint8_t *d,
                               size_t n);

/*
 * Start a disk. mode PROTO_DISK_INCR needs a parent holding a disk of the
 * same name and size; its stack depth per window is streamed to fn. For
 * PROTO_DISK_FULL fn is not called.
 */
int store_txn_disk_begin(struct store_txn *t, const char *disk, uint64_t size,
                         uint8_t mode, const struct proto_kv *meta,
                         uint64_t *nwindows, store_depths_fn fn, void *opaque);

/*
 * Tell the transaction that a chunk is being stored on its behalf (by a
 * worker thread), with the type and raw_len its CHUNK frame declares
 * (store_chunk_write refuses a chunk already stored with another header):
 * window records may then reference it before the write completes. The
 * caller must make sure every such write succeeded before
 * store_txn_commit. Also for a chunk store_chunk_head just found (and
 * touched) for this backup, with what its header says (STORE_TYPE_UNKNOWN
 * for the type when it could not be read: the window records that name
 * it then read it again): a concurrent gc may move it aside for an
 * instant, but never deletes it (FORMAT.md, "Garbage collection").
 */
void store_txn_note_chunk(struct store_txn *t, const struct proto_digest *d,
                          uint8_t type, uint32_t raw_len);

/* Apply window records, in strictly increasing index order per disk.
 * Every referenced chunk must be stored or noted, of the ref's type, and
 * a RAW chunk exactly as long as its window (EINVAL otherwise). */
int store_txn_window(struct store_txn *t, const struct proto_window_rec *r);

/* Finish the current disk; meta is merged into the disk's metadata. */
int store_txn_disk_end(struct store_txn *t, const struct proto_kv *meta);

/*
 * Make the backup durable: flush the repository's data (syncfs), write the
 * manifest with meta merged into the begin metadata and the server's
 * statistics, fsync, rename, fsync the directory. On success *out (if not
 * NULL) receives the final metadata (caller frees with proto_kv_free).
 * After store_txn_prepare, meta may only add the "mac" key. The
 * transaction is freed either way.
 */
int store_txn_commit(struct store_txn *t, const struct proto_kv *meta,
                     struct proto_kv *out);

/* Abandon a backup: nothing of it but its (reusable) chunks remains. */
void store_txn_abort(struct store_txn *t);

/* True if the chunk was noted in this transaction (sent by the client). */
bool store_txn_noted(const struct store_txn *t, const struct proto_digest *d);

/* Bytes of chunk data written for this transaction (server statistics). */
void store_txn_add_stats(struct store_txn *t, uint64_t chunks_new,
                         uint64_t bytes_new, uint64_t bytes_received);

/*
 * The commit of an encrypted repository's backup goes in two steps
 * (PROTOCOL.md, "Backup flow"): store_txn_prepare merges meta and the
 * server's own keys (its commit number too) into the final metadata,
 * which the client then sees (store_txn_meta, and each disk's,
 * store_txn_disk_meta) and seals with its MAC; store_txn_commit with the
 * "mac" key then writes the manifest. An encrypted repository refuses a
 * commit without a MAC.
 */
int store_txn_prepare(struct store_txn *t, const struct proto_kv *meta);
const struct proto_kv *store_txn_meta(const struct store_txn *t);
size_t store_txn_ndisks(const struct store_txn *t);
const struct proto_kv *store_txn_disk_meta(const struct store_txn *t, size_t i);

/* ---- backups (reading) --------------------------------------------------- */

/* One backup as listed: its id and manifest metadata (owned by the list). */
struct store_backup {
    char id[PROTO_ID_LEN + 1];
    uint64_t seq; /* commit order in the repository */
    int64_t time;
    struct proto_kv meta;
};

struct store_list {
    size_t n;
    struct store_backup *b;
};

/*
 * List backups, oldest first (in commit order: by seq, then time, then
 * id), of set `name` (all if NULL). Damaged manifests are skipped with a
 * warning (verify names them).
 */
int store_list(struct store *st, const char *name, struct store_list *out);
void store_list_free(struct store_list *l);

/* A backup's metadata (its meta block, checked against the header's
 * digest); ENOENT if unknown, EPROTO if damaged. Caller frees meta. */
int store_backup_meta(struct store *st, const char *id, struct proto_kv *meta);

/* Open a backup's manifest file for reading; ENOENT if unknown. */
int store_manifest_open(struct store *st, const char *id);

/* Delete a backup (STORE_ADMIN, refused in append-only mode). */
int store_delete(struct store *st, const char *id);

/* ---- retention (store/prune.c) ------------------------------------------- */

/* The keep rules, in the order their reasons are printed. */
enum store_keep_rule {
    STORE_KEEP_LAST,
    STORE_KEEP_HOURLY,
    STORE_KEEP_DAILY,
    STORE_KEEP_WEEKLY, /* ISO 8601 weeks: Monday to Sunday, UTC */
    STORE_KEEP_MONTHLY,
    STORE_KEEP_YEARLY,
    STORE_KEEP_NRULES,
};

/* How many backups (last) or periods (the others) each rule keeps; 0 turns
 * a rule off. */
struct store_prune_policy {
    unsigned keep[STORE_KEEP_NRULES];
};

/* One backup of a set, as store_prune_decide sees it. */
struct store_prune_item {
    int64_t time; /* in: the backup's start (UTC seconds) */
    bool keep;    /* out: kept by a rule or as the latest */
    bool latest;  /* out: the set's latest backup (always kept) */
    /* out: for each rule, 0 or the 1-based rank of the period (of the
     * backup, for STORE_KEEP_LAST) it keeps this backup for */
    unsigned rank[STORE_KEEP_NRULES];
};

/* Name of a rule as used in reasons and PRUNE keys: "last", "hourly", ... */
const char *store_keep_rule_name(enum store_keep_rule r);

/* True if at least one rule keeps something. */
bool store_prune_policy_any(const struct store_prune_policy *p);

/*
 * Decide which backups of one set to keep (restic semantics: every rule
 * counts independently; a backup is kept if any rule keeps it). items are
 * in commit order, oldest first (as store_list returns them); recency is
 * by time, ties broken by commit order. Rule r with count N keeps, for
 * each of the N most recent periods that hold backups, the most recent
 * backup of that period (keep-last: the N most recent backups). The last
 * item -- the set's latest backup, which incrementals build on -- is
 * always kept. Pure: no I/O, no logging; allocates a scratch index only.
 */
void store_prune_decide(const struct store_prune_policy *p,
                        struct store_prune_item *items, size_t n);

/* The reasons an item is kept, "last 1, daily 3" ("latest" when no rule
 * kept it; "" for a removed item), into buf (truncated to len). */
void store_prune_reasons(const struct store_prune_item *it, char *buf,
                         size_t len);

/* Called by store_prune once per backup, after a removal was applied. A
 * non-zero return stops the prune (with the error slot set). */
typedef int (*store_prune_fn)(void *opaque, const struct store_backup *b,
                              const struct store_prune_item *it);

/*
 * Apply the policy to every set (or only to set `name` if not NULL): sets
 * in name order, each set's backups oldest first. Removes the backups no
 * rule keeps with store_delete unless dry_run. Needs STORE_ADMIN (dry
 * run: any mode); refused in append-only mode. *removed (if not NULL)
 * counts the backups removed (or that would be). Backups whose manifest
 * names no set are left alone.
 */
int store_prune(struct store *st, const char *name,
                const struct store_prune_policy *p, bool dry_run,
                store_prune_fn fn, void *opaque, uint64_t *removed);

/* ---- garbage collection (store/gc.c) ------------------------------------- */

struct store_gc_opts {
    bool dry_run; /* count what would be reclaimed, change nothing */
    /* Test hook (NULL in production): called with the trash path of each
     * chunk just moved aside, before its mtime is checked again. */
    void (*after_trash)(void *opaque, const char *trash_path);
    void *opaque;
};

struct store_gc_stats {
    uint64_t backups;    /* manifests read (the mark) */
    uint64_t chunks;     /* chunk files seen */
    uint64_t referenced; /* kept: named by a manifest */
    uint64_t recent;     /* kept: unreferenced but not older than cutoff */
    uint64_t reclaimed;  /* deleted (dry run: would be) */
    uint64_t bytes_reclaimed;
    uint64_t restored; /* moved aside, then put back: touched meanwhile */
    uint64_t sessions; /* live writer sessions seen */
    int64_t cutoff;    /* chunks with an older mtime may be reclaimed */
};

/*
 * Delete the chunk files no manifest references and that are older than
 * the cutoff (FORMAT.md, "Garbage collection"): safe while backups run.
 * Needs STORE_WRITE or STORE_ADMIN (a shared lock keeps delete and prune
 * away); refused in append-only mode; takes REPO/gc.lock itself (EWOULDBLOCK
 * with a message naming the holder if another gc runs). Refuses to sweep
 * (EPROTO) if any manifest cannot be read whole: it could not tell which
 * chunks that backup uses. Fills *stats (also on a dry run).
 */
int store_gc(struct store *st, const struct store_gc_opts *o,
             struct store_gc_stats *stats);

/* ---- verify -------------------------------------------------------------- */

struct store_verify_cb {
    void *opaque;
    /* A damaged or missing item: backup id ("" for a chunk no backup
     * names), disk ("" for the manifest itself), and what is wrong. */
    void (*damage)(void *opaque, const char *id, const char *name,
                   const char *disk, const char *what);
    /* Progress: bytes of chunks checked so far of total. */
    void (*progress)(void *opaque, uint64_t done, uint64_t total);
};

/*
 * Re-read and re-hash every chunk and manifest. Fills stats (backups,
 * backups_damaged, chunks, chunks_damaged, chunks_missing, bytes). Returns
 * 0 if all is well, 1 if damage was found, -1 on error: EACCES when a file
 * could not be read for lack of permission (files another user wrote),
 * which is never counted as damage.
 */
int store_verify(struct store *st, const struct store_verify_cb *cb,
                 struct proto_kv *stats);

#endif /* LB_STORE_H */
