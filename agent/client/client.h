/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent's repository client (agent/client/, library lb_agent_client):
 * the repository session, uploads, restores, listings and manifests, and
 * disk images read through qemu-nbd. The command line (agent/cli) and the
 * live layer (agent/live) are its callers; it needs neither libvirt nor
 * libxml2 (CMake checks that it does not link them).
 *
 * The agent reaches a repository only through the protocol: a local
 * repository is served by a `backupd serve` child (or a `backupd listen`
 * daemon), a remote one by `ssh host backupd serve`. Every frame the agent
 * sends is encoded here, behind one call per request. It reads disk images
 * only through QEMU's block layer (qemu-nbd + libnbd), so raw, qcow2 and
 * backing chains all work the way QEMU sees them.
 *
 * Unless a contract says otherwise: functions that can fail return 0 (or a
 * pointer) on success and -1 (NULL) with the error slot set (common.h);
 * a session that failed a request is closed, not used again; nothing is
 * thread-safe but what says so.
 */
#ifndef LB_AGENT_CLIENT_H
#define LB_AGENT_CLIENT_H

#include "common/common.h"
#include "proto/proto.h"

/* ---- settings ---------------------------------------------------------- */

struct agent_opts {
    bool json;     /* machine-readable events and summary on stdout */
    bool progress; /* progress line on stderr (default: if a tty) */
    /* ssh's stderr relayed, its control characters written out (the
     * command line, when stderr is a tty; not the nbdkit plugin, whose
     * nbdkit may fork into the background after connecting) */
    bool stderr_relay;
    const char *rsh;             /* ssh command line, like rsync -e */
    const char *remote_backupd;  /* backupd command on the remote host */
    uint64_t bwlimit;            /* bytes/s, 0 = unlimited */
    int zlevel;                  /* zstd level */
    unsigned lock_wait;          /* seconds */
    unsigned max_stack;          /* deltas per window before a full window */
    unsigned threads;            /* worker threads (0: CPUs) */
    const char *passphrase_file; /* --passphrase-file */
    const char *new_passphrase_file; /* --new-passphrase-file */
    const char *key_file;            /* --key-file (keyfile repositories) */
    /* a session whose server takes nothing and sends nothing for
     * LIVEBACKUP_IO_TIMEOUT seconds (600; 0: never) is ended: the commands
     * of the data path (backup, restore, copy) and the exports (map,
     * mount, instant restore's) set it; every other session is armed
     * when its server sends WORKING while it works long (list, verify,
     * prune, gc, delete) */
    bool io_watch;
};

/* The settings of this process's client work, set by the command line
 * (defined in repo.c, with its defaults). */
extern struct agent_opts agent_opts;

/* ---- progress and events ----------------------------------------------- */

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

/* ---- where a backup's time went ---------------------------------------- */

/* The phases of one backup, in the order they run. Each slot adds up the
 * wall time spent in it; --json prints them in the summary as "us_NAME"
 * (microseconds), which bench/ reads for its breakdowns. */
enum agent_phase {
    AGENT_PH_LIBVIRT,     /* libvirtd: the domain looked up, its journal */
    AGENT_PH_REPO,        /* backupd (or ssh) started, HELLO, OPEN */
    AGENT_PH_RECOVER,     /* recovery check, the domain's state and disks */
    AGENT_PH_PLAN,        /* the set's backups listed, image info, chains */
    AGENT_PH_OVERLAY,     /* the new overlays journaled and created */
    AGENT_PH_GUARD,       /* thaw guard and agent timeout, before freezing */
    AGENT_PH_FREEZE,      /* the freeze call (guest agent) */
    AGENT_PH_SNAPSHOT,    /* the snapshot call (libvirt, QEMU) */
    AGENT_PH_THAW,        /* the thaw call */
    AGENT_PH_JOURNAL,     /* the switch journaled */
    AGENT_PH_BEGIN,       /* BACKUP_BEGIN answered, domain XML sent */
    AGENT_PH_OPEN,        /* image info, qemu-nbd started, NBD handshake */
    AGENT_PH_DATA,        /* map, read, compress and send the data */
    AGENT_PH_CLOSE,       /* qemu-nbd closed */
    AGENT_PH_COMMIT,      /* COMMIT until COMMITTED (durable) */
    AGENT_PH_ACK,         /* acknowledgement journaled, session ended */
    AGENT_PH_BLOCKCOMMIT, /* the acknowledged overlays block-committed */
    AGENT_PH_N
};

struct agent_phases {
    uint64_t us[AGENT_PH_N];
};

/* Add the time since t0 (lb_now_ns) to phase ph of p (p may be NULL);
 * returns lb_now_ns(), the start of the next phase. */
uint64_t agent_phase_add(struct agent_phases *p, enum agent_phase ph,
                         uint64_t t0);
/* Set "us_NAME" in kv for every phase of p that took time; a phase that
 * is also in q (may be NULL) counts the sum of both. */
void agent_phases_kv(const struct agent_phases *p, const struct agent_phases *q,
                     struct proto_kv *kv);

/* --json: one JSON object per line on stdout, each field typed by its
 * name (agent/client/event.h, docs/json.md). Thread-safe. */
void agent_event(const char *event, const struct proto_kv *kv);
/* The same for an event made of the repository's metadata (theirs, any
 * number of keys, as a server sent them) with the agent's own keys (ours,
 * which win over theirs) and, if text_key is not NULL, one text of any
 * length (a saved domain XML). Never aborts on what theirs holds. */
void agent_event_merge(const char *event, const struct proto_kv *theirs,
                       const struct proto_kv *ours, const char *text_key,
                       const char *text);

/* ---- the agent's own record (parents.c) --------------------------------- */

/* Where the agent keeps its state: $LIVEBACKUP_STATE_DIR or
 * /var/lib/livebackup. */
const char *agent_state_dir(void);

/*
 * The parent of a disk image's incremental: the last backup of set name
 * this host committed to the repository repo_id (backup-image records it
 * once the repository acknowledged it). get: 0 with id filled, 1 when
 * there is no record, -1 on error (EPROTO: a damaged record).
 */
int agent_image_parent_get(const char *repo_id, const char *name,
                           char id[PROTO_ID_LEN + 1]);
int agent_image_parent_set(const char *repo_id, const char *name,
                           const char *id);

/* ---- repository URLs --------------------------------------------------- */

/* A repository URL: a path, or ssh://[user@]host[:port]/path[?socket=PATH]
 * (PATH: the socket of a `backupd listen` daemon on that host). */
struct agent_url {
    char *host;   /* [user@]host; NULL for a local path */
    char *port;   /* NULL: ssh's default */
    char *path;   /* the repository's path (on the host) */
    char *socket; /* ?socket=, or NULL */
};

/* Parse url into *u (every field owned by u). A pure function. */
int agent_url_parse(const char *url, struct agent_url *u);
/* A RADOS spec, rados:POOL[/NS][?OPTIONS]: u->path is the spec without
 * its socket=PATH option, u->socket that PATH (NULL if none); an error
 * names whole (the spec, or the URL it is part of). */
int agent_url_rados(const char *spec, const char *whole, struct agent_url *u);
void agent_url_free(struct agent_url *u);

/* ---- the repository session -------------------------------------------- */

/* One session with one repository (a backupd child, an ssh pipe or a
 * backupd listen daemon). Opaque. */
struct agent_repo;

/* The backupd a local repository is served by (caller frees):
 * $LIVEBACKUP_BACKUPD, else the one beside this program (installed side
 * by side, or in the build tree), else "backupd" from PATH. */
char *agent_backupd_path(void);
/* Connect to the repository at url and exchange HELLO. Errors say what to
 * do (ssh failing, backupd missing on the remote host, ...). */
struct agent_repo *agent_repo_connect(const char *url);
/* INIT then nothing else (the session ends with close). */
int agent_repo_init(struct agent_repo *r, uint32_t window_size);
/* OPEN in mode (PROTO_OPEN_READ, _WRITE or _ADMIN): every other request
 * needs it. */
int agent_repo_open(struct agent_repo *r, uint8_t mode);
/* agent_repo_connect and agent_repo_open in two halves: start sends HELLO
 * and OPEN at once and returns without an answer, so that the caller's
 * own work (opening its disks) runs while backupd starts and opens the
 * repository (a RADOS one connects to its cluster); finish reads both
 * answers. Nothing else may be sent in between. */
struct agent_repo *agent_repo_open_start(const char *url, uint8_t mode);
int agent_repo_open_finish(struct agent_repo *r);
/* End the session and reap its process. NULL is a no-op. */
void agent_repo_close(struct agent_repo *r);
/* End the session now (its locks on the repository go with it): close
 * the connection, reap the child; r stays for agent_repo_close, and no
 * other call may use it. */
void agent_repo_end(struct agent_repo *r);

/* After OPEN: the repository's window size and id (REPO_INFO). */
uint32_t agent_repo_window_size(const struct agent_repo *r);
const char *agent_repo_id(const struct agent_repo *r);
/* Bytes received on the session so far. */
uint64_t agent_repo_bytes_in(const struct agent_repo *r);

/*
 * A request answered by a stream of entries calls fn once per entry, in
 * order, as it arrives. fn may take the entry (move it out and leave *e
 * zeroed); otherwise it is freed when fn returns. fn returns 0 to go on,
 * or -1 (error slot set) to stop: the request fails with that error.
 */
typedef int (*agent_entry_fn)(void *opaque, struct proto_kv *e);

/* 0 if name is a valid set or domain name (proto_name_valid), else -1
 * with an error that quotes it (made safe for a terminal) and says the
 * rule. An empty name is no filter: a script's `--name "$VM"` with VM
 * unset must not pick the latest backup of any set. */
int agent_name_check(const char *name);

/* LIST: the backups of name (every backup if NULL; an invalid name,
 * empty too, fails: agent_name_check), oldest first (commit order), one
 * listing entry each: id, name, time, kind, size, ... */
int agent_repo_list_each(struct agent_repo *r, const char *name,
                         agent_entry_fn fn, void *opaque);

/* The same, collected. */
struct agent_list {
    size_t n;
    struct proto_kv *b; /* metadata of each */
    size_t bytes;       /* what the entries hold, about (AGENT_LIST_MAX) */
};
/* The most memory a listing may take: a repository server that lists
 * without end (damaged, or broken into) is refused there, not followed
 * until the VM host runs out of memory. A backup's entry takes 1-2 KiB:
 * some 70,000 backups in one listing. */
#define AGENT_LIST_MAX ((size_t)128 << 20)
int agent_repo_list(struct agent_repo *r, const char *name,
                    struct agent_list *out);
/* agent_repo_list of every backup of two repositories, b's LIST sent
 * before a's answer is read: both read their manifests at once. On
 * failure (-1) la and lb hold nothing; b's answer may be unread (its
 * session is not used again). */
int agent_repo_list_two(struct agent_repo *a, struct agent_repo *b,
                        struct agent_list *la, struct agent_list *lb);
void agent_list_free(struct agent_list *l);
/*
 * Pick a backup of name: spec is an id, "latest", or a time (the latest
 * backup at or before it). Returns the index in l, or -1 (error set).
 */
ssize_t agent_list_pick(const struct agent_list *l, const char *name,
                        const char *spec);

/* VERIFY: fn gets each event (event=progress: done, total; event=damage:
 * id, name, disk, what); *summary (caller frees) the final counts. Needs
 * OPEN for reading. */
int agent_repo_verify(struct agent_repo *r, agent_entry_fn fn, void *opaque,
                      struct proto_kv *summary);

/* The keep rules of prune, in protocol order (request keys keep_RULE). */
#define AGENT_KEEP_NRULES 6
extern const char *const agent_keep_rules[AGENT_KEEP_NRULES];

struct agent_prune_req {
    const char *name; /* only this set (every set if NULL) */
    uint64_t keep[AGENT_KEEP_NRULES];
    bool dry_run;
};

/* PRUNE: fn gets the decision on each backup (id, name, time, action keep
 * or remove, reasons), checked to hold those; a removal is done when its
 * entry arrives. Needs OPEN for administration (reading for a dry run). */
int agent_repo_prune(struct agent_repo *r, const struct agent_prune_req *q,
                     agent_entry_fn fn, void *opaque);

/* DELETE one backup (needs OPEN for administration). */
int agent_repo_delete(struct agent_repo *r, const char *id);

/* GC (needs OPEN for writing); *summary (caller frees) its counts. */
int agent_repo_gc(struct agent_repo *r, bool dry_run, struct proto_kv *summary);

/* ---- chunks ------------------------------------------------------------ */

/*
 * QUERY: which of the n digests (1 to PROTO_MAX_QUERY) the repository
 * holds: bit i of have (proto_bit; the caller's (n + 7) / 8 bytes) for
 * d[i]. On a session OPENed for writing, the chunks it holds are kept from
 * gc as if this backup wrote them (FORMAT.md, "Garbage collection").
 */
int agent_repo_have(struct agent_repo *r, const struct proto_digest *d,
                    uint32_t n, uint8_t *have);

/* One chunk as the repository stores it (compressed; not yet checked
 * against its digest). Its data is valid during the call only. */
typedef int (*agent_chunk_fn)(void *opaque, const struct proto_chunk *c);

/* GET_CHUNKS: the chunks of the n digests (1 to PROTO_MAX_GET_CHUNKS), in
 * order, one call of fn each. */
int agent_repo_get_chunks(struct agent_repo *r, const struct proto_digest *d,
                          uint32_t n, agent_chunk_fn fn, void *opaque);

/* ---- a backup, opened for reading ------------------------------------- */

/* A disk of a backup, from its manifest. */
struct agent_restore_disk {
    char name[65];
    uint64_t size;
    uint64_t nonempty_windows; /* for the space estimate */
    char mode[16];             /* full or incremental read of the source */
    char full_reason[256];     /* why a tracked disk was read whole */
};

/* One backup: its listing entry and its manifest, checked whole. What map,
 * restore and show read a backup through. */
struct agent_backup {
    struct agent_repo *r;  /* the session it is read through */
    bool own_repo;         /* r was connected for it: closed with it */
    uint64_t connected_ns; /* lb_now_ns() when r was connected */
    struct proto_kv meta;  /* its listing entry */
    const char *id;        /* meta's id */
    int mfd;               /* the manifest, in an anonymous temp file */
    struct agent_restore_disk *disks;
    size_t ndisks;
};

/*
 * On a session OPENed for reading: pick the backup of name by spec (an
 * id, "latest" or a time: agent_list_pick), or with name NULL the backup
 * whose id spec is, and download and check its manifest into *b.
 */
int agent_backup_pick(struct agent_repo *r, const char *name, const char *spec,
                      struct agent_backup *b);
/* The same on a session of its own: connect to url, OPEN it for reading,
 * pick. */
int agent_backup_open(const char *url, const char *name, const char *spec,
                      struct agent_backup *b);
/* Free *b (and close its session if it owns it). A zeroed *b is a no-op. */
void agent_backup_close(struct agent_backup *b);
/* The disk of that name, or NULL (error: the disks the backup has). */
const struct agent_restore_disk *agent_backup_disk(const struct agent_backup *b,
                                                   const char *disk);
/* The domain XML saved with the backup (caller frees), or NULL: an error
 * also when it holds none (a backup-image backup). */
char *agent_backup_domain_xml(struct agent_backup *b);

/* ---- encryption (store/FORMAT.md, "Encryption") ----------------------- */

/* After OPEN: whether the repository is encrypted. */
bool agent_repo_encrypted(const struct agent_repo *r);

/*
 * Load the repository's key (after OPEN): the wrapped master key from the
 * repository (repokey) or the client's key file (keyfile: --key-file,
 * LIVEBACKUP_KEY_FILE, or LIVEBACKUP_KEYS_DIR/KEYID.key, by default
 * ~/.config/livebackup/keys/), unwrapped with the passphrase (from
 * --passphrase-file, LIVEBACKUP_PASSPHRASE_FILE, LIVEBACKUP_PASSPHRASE, or
 * the systemd credential livebackup-passphrase). A no-op for an
 * unencrypted repository, and once done. Every call below that makes or
 * reads backup data unlocks by itself; a caller that must fail early
 * (before freezing a guest) calls it first. Errors name the repository
 * and the cause: no passphrase, wrong passphrase, no key file, a key file
 * of another key, a --key-file for a repository that keeps its key.
 * After agent_repo_unlock_start it waits for the KDF's thread.
 */
int agent_repo_unlock(struct agent_repo *r);

/*
 * The same in two steps, to hide the KDF's time (Argon2id: about 0.04 s)
 * behind work that does not need the key: find the key file and read the
 * passphrase now (their errors come now), and run the KDF on a thread of
 * its own; agent_repo_unlock then waits for it and reports its errors
 * (a wrong passphrase) where the key is first needed, so a command still
 * fails before it writes anything if it calls agent_repo_unlock before
 * its first write. Uses r's connection: call it from the thread that
 * owns r. A no-op when unlocked or started already, or unencrypted.
 * agent_repo_close waits for a thread still running.
 */
int agent_repo_unlock_start(struct agent_repo *r);

/*
 * INIT an encrypted repository (PROTO_ENC_REPOKEY or _KEYFILE; NONE is
 * agent_repo_init): a random master key, wrapped under the passphrase;
 * for KEYFILE written to the client's key file first (*key_path, caller
 * frees, receives where). The server must know encryption.
 */
int agent_repo_init_keyed(struct agent_repo *r, uint32_t window_size,
                          uint8_t encryption, char **key_path);

/* INIT an encrypted repository with the key of the key file at from (a
 * `key export` of another repository, or a keyfile repository's key
 * file): a repository of the same key, which backups copy into as they
 * are stored (PROTOCOL.md, "Copy"). KEYFILE: *key_path as for
 * agent_repo_init_keyed (written there when it is not yet). */
int agent_repo_init_from_key(struct agent_repo *r, uint32_t window_size,
                             uint8_t encryption, const char *from,
                             char **key_path);

/* `livebackup key export`: the repository's key file (its wrapped master
 * key, useless without the passphrase) to path (which must not exist). */
int agent_key_export(struct agent_repo *r, const char *path);
/* `livebackup key import`: a key file of the repository's key (checked:
 * its key id, and that the passphrase opens it) becomes the repository's
 * (repokey: needs OPEN for writing) or this client's (keyfile). */
int agent_key_import(struct agent_repo *r, const char *path);
/* `livebackup key change-passphrase`: the key wrapped again under the new
 * passphrase (--new-passphrase-file, LIVEBACKUP_NEW_PASSPHRASE_FILE,
 * LIVEBACKUP_NEW_PASSPHRASE, credential livebackup-new-passphrase);
 * repokey needs OPEN for writing. *where receives what was rewritten. */
int agent_key_change_passphrase(struct agent_repo *r, char **where);

/*
 * `verify --key`: read every manifest and every chunk they name through
 * this session and authenticate them with the key (for an unencrypted
 * repository: check each chunk's digest). fn gets damage events (id,
 * name, disk, what) as VERIFY_EVENT does; *summary (caller frees): backups,
 * backups_damaged, chunks, chunks_damaged, chunk_refs_missing, bytes.
 * Returns 0 (1 in *damaged if damage was found) or -1.
 */
int agent_verify_data(struct agent_repo *r, agent_entry_fn fn, void *opaque,
                      struct proto_kv *summary, bool *damaged);

/* ---- chunks: what the repository stores, made and read in one place ---- */

/*
 * The id of a chunk of type (PROTO_CHUNK_*) holding plain (len bytes): the
 * name the repository stores it under and dedups by. 0, or -1 (error set).
 * Thread-safe.
 */
int agent_chunk_id(const struct agent_repo *r, uint8_t type, const void *plain,
                   size_t len, struct proto_digest *d);
/* Worst-case stored size of a chunk of len plaintext bytes. */
size_t agent_chunk_seal_bound(const struct agent_repo *r, size_t len);
/*
 * The stored form of c's plaintext: c->d, c->type and c->raw_len set by the
 * caller (the id from agent_chunk_id); writes into dst (capacity cap, at
 * least agent_chunk_seal_bound) and sets c->comp, c->data = dst and
 * c->data_len. Returns the stored length, or -1 (error set). Thread-safe
 * with one z per thread.
 */
ssize_t agent_chunk_seal(const struct agent_repo *r, struct proto_zctx *z,
                         struct proto_chunk *c, const void *plain, uint8_t *dst,
                         size_t cap);
/*
 * The plaintext of a chunk the repository sent (CHUNK_DATA) into dst
 * (capacity >= c->raw_len), checked against its id: 0, or -1 with EPROTO
 * and "chunk HEX is damaged: ..." in the error slot (the caller adds which
 * backup and disk). Nothing derived from a chunk is used before this
 * returned 0. Thread-safe with one z per thread.
 */
int agent_chunk_open(const struct agent_repo *r, struct proto_zctx *z,
                     const struct proto_chunk *c, uint8_t *dst);
/*
 * The same for a caller that owns the chunk's stored bytes (stored ==
 * c->data, writable): an encrypted chunk is opened in place, without a
 * buffer of its own, and the stored bytes are consumed (unspecified
 * afterwards, whatever the result).
 */
int agent_chunk_open_own(const struct agent_repo *r, struct proto_zctx *z,
                         const struct proto_chunk *c, uint8_t *stored,
                         uint8_t *dst);

/* Store a blob (a saved domain XML) as a chunk; *d receives its digest. */
int agent_put_blob(struct agent_repo *r, const void *data, size_t len,
                   struct proto_digest *d);
/* Fetch a blob by digest (caller frees *data). */
int agent_get_blob(struct agent_repo *r, const struct proto_digest *d,
                   char **data, size_t *len);

/* ---- random access to a disk of a backup (reader.c) ------------------- */

/*
 * One disk of one backup read at any offset: map, mount and the instant
 * restore serve it. Reads fetch, check and decode only the windows they
 * touch (the window's RAW chunk and the DELTAs above it), through a
 * session of the reader's own, and keep the decoded windows in an LRU
 * cache; sequential reads fetch the next windows in the same batch.
 * Memory: the cache, plus about 1.1 bytes per window of the disk for the
 * index of its stacks (kept in an unlinked file in $TMPDIR).
 *
 * Thread-safe: reads of cached windows run in parallel; fetches (one
 * repository session) run one at a time. A read that fails sets errno EIO
 * in the error slot (a damaged or missing chunk, the repository gone) and
 * affects no other read; a session that failed is replaced on the next
 * fetch.
 */
struct agent_reader;

#define AGENT_READER_CACHE (64u << 20) /* default cache: 16 windows of 4M */

struct agent_reader_opts {
    uint64_t cache_bytes; /* 0: AGENT_READER_CACHE (at least 4 windows) */
    unsigned readahead;   /* windows read ahead of sequential reads
                             (0: 4; at most 15 and half the cache) */
};

struct agent_reader_stats {
    uint64_t hits, misses;    /* window lookups of reads */
    uint64_t windows_fetched; /* decoded into the cache */
    uint64_t bytes_in;        /* chunk frames received */
    uint64_t reconnects;      /* sessions opened again after a failure */
    uint64_t prefetches;      /* batches read ahead in the background */
};

/* Open disk of the backup of name picked by spec (agent_backup_open: with
 * name NULL, spec is a backup id) on a session of its own to url; o may
 * be NULL. */
struct agent_reader *agent_reader_open(const char *url, const char *name,
                                       const char *spec, const char *disk,
                                       const struct agent_reader_opts *o);
/* Close it and its session. NULL is a no-op. */
void agent_reader_close(struct agent_reader *rd);
uint64_t agent_reader_size(const struct agent_reader *rd);
uint32_t agent_reader_window_size(const struct agent_reader *rd);
const char *agent_reader_backup_id(const struct agent_reader *rd);
void agent_reader_get_stats(struct agent_reader *rd,
                            struct agent_reader_stats *s);

/* len bytes at off (inside the disk) into buf. 0, or -1 (EIO; EINVAL
 * past the end). */
int agent_reader_pread(struct agent_reader *rd, void *buf, size_t len,
                       uint64_t off);

enum agent_extent_kind {
    AGENT_EXTENT_DATA = 0, /* data (a RAW window, or a DELTA's data run) */
    AGENT_EXTENT_ZERO = 1, /* reads as zeros (a DELTA's zero run, or the
                              zeros a window of DELTAs starts from) */
    AGENT_EXTENT_HOLE = 2, /* nothing stored: reads as zeros */
};
/* One extent: fn returns 0 to go on, -1 (error set) to stop. */
typedef int (*agent_extent_fn)(void *opaque, uint64_t off, uint64_t len,
                               unsigned kind);
/*
 * The extents from off, in order, merged, covering [off, off+len) or a
 * prefix of it (at least one extent; the caller asks again for the rest):
 * a window of DELTAs not yet cached is fetched when it is the first,
 * otherwise the answer stops before it. 0 or -1 (error set).
 */
int agent_reader_extents(struct agent_reader *rd, uint64_t off, uint64_t len,
                         agent_extent_fn fn, void *opaque);

/* ---- an NBD export of a disk of a backup (export.c) -------------------- */

/* nbdkit with our plugin (agent/map/nbdkit.c), which serves the disk
 * through an agent_reader; the session settings (--rsh, ...) are
 * agent_opts'. */
struct agent_export {
    const char *url, *name, *spec, *disk; /* as agent_reader_open */
    const char *socket;                   /* a unix socket, or: */
    const char *port, *bind;              /* TCP (bind NULL: 127.0.0.1) */
    const char *pidfile;                  /* NULL: none */
    uint64_t cache_bytes;                 /* 0: the reader's default */
    bool daemon;                          /* nbdkit forks once ready */
    bool verbose;                         /* nbdkit --verbose */
    bool log_stderr;                      /* nbdkit --log=stderr */
};

/* The plugin: $LIVEBACKUP_NBDKIT_PLUGIN, the build tree's, or the
 * installed one (caller frees). */
char *agent_export_plugin(void);
/* nbdkit's command line (NULL-ended; free with agent_export_argv_free). */
char **agent_export_argv(const struct agent_export *e);
void agent_export_argv_free(char **v);
/* Become nbdkit: returns only on failure (-1, error set). */
int agent_export_exec(const struct agent_export *e);
/* Start nbdkit as a daemon of its own (its own session, stdout and stderr
 * appended to log) and return once it serves and its pid is in
 * e->pidfile: 0, or -1 with the last line it logged. log NULL: what it
 * says while starting goes to a memfd, relayed to our stderr (the last
 * line of a failure in the error), so that no process of the export
 * keeps our stderr; after its fork it logs as e says. */
int agent_export_start(const struct agent_export *e, const char *log);
/* The pid of the export whose pid file is pidfile, if it runs (a live
 * nbdkit, not a zombie), else 0. */
pid_t agent_export_pid(const char *pidfile);

/* ---- copy (copy.c) -------------------------------------------------------- */

/* agent_repo_connect for a repository that receives data this host did
 * not check (a copy's destination, from a remote source): never as a
 * trusted client, so backupd re-hashes every chunk it receives. */
struct agent_repo *agent_repo_connect_checked(const char *url);
/* Connect to two repositories (agent_repo_connect, or _checked where
 * *_trusted is false), both started before either answer is awaited: the
 * start-ups of two backupd children overlap. Two ssh URLs connect one
 * after the other (one prompt at a time). 0, or -1 (error set: the first
 * failure); the caller closes *ra and *rb (NULL when not started) either
 * way. */
int agent_repo_connect_two(const char *a, bool a_trusted, const char *b,
                           bool b_trusted, struct agent_repo **ra,
                           struct agent_repo **rb);

/* Which backups of the source a copy takes: those of the sets matching
 * one of names (fnmatch(3); every set if none), with one of ids (any if
 * none), started at or after since, and of each set the last `last`
 * of those (every one if 0). */
struct agent_copy_req {
    char *const *names;
    size_t nnames;
    char *const *ids;
    size_t nids;
    unsigned last;
    int64_t since; /* INT64_MIN: any */
    bool dry_run;
};

struct agent_copy_stats {
    uint64_t selected, copied, present, skipped, failed;
    uint64_t chunks_sent, chunks_reused, bytes_sent;
    double seconds;
};

/*
 * Whether backups can be copied from src to dst (both OPENed): both
 * servers know copies, one window size, both unencrypted or both
 * encrypted with one key (its id compared, no key loaded). 0 or -1.
 */
int agent_copy_check(struct agent_repo *src, struct agent_repo *dst);

/*
 * Copy the selected backups of src (OPENed for reading) that dst (OPENed
 * for writing) lacks, oldest first (PROTOCOL.md, "Copy"). fn gets one
 * entry per selected backup: id, name, time, action (copied, present,
 * skipped: older than dst's latest of its set, failed: the source lacks
 * or holds damaged a chunk it needs, would-copy: --dry-run) and reason,
 * and for copied and failed ones chunks_sent, chunks_reused, bytes_sent.
 * Returns 0 when every backup was gone through (st->failed may be
 * non-zero), -1 when the copy stopped (error slot set; what was
 * committed stays).
 */
int agent_copy(struct agent_repo *src, struct agent_repo *dst,
               const struct agent_copy_req *q, agent_entry_fn fn, void *opaque,
               struct agent_copy_stats *st);

/* ---- image sources (qemu-nbd + libnbd) --------------------------------- */

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

/*
 * Reads in flight together on the NBD connection (so that many small
 * reads cost one round trip, not one each, and the reads of several
 * windows overlap): issue returns once the reads are queued (waiting for
 * older ones only when a few hundred are in flight) and sets *ticket;
 * wait returns once every read issued up to ticket is done, 0 or -1 (a
 * read failed: this or an earlier one; UINT64_MAX waits for every read
 * issued). The buffers of reads not waited for must stay valid until
 * the source is closed or waited on.
 */
int agent_source_issue(struct agent_source *s, const struct agent_read *r,
                       size_t n, uint64_t *ticket);
int agent_source_wait(struct agent_source *s, uint64_t ticket);

/* ---- backing chains ---------------------------------------------------- */

struct agent_layer {
    char *path;   /* absolute */
    char *format; /* "qcow2", "raw", ... */
    uint64_t size;
};

/* The backing chain of path (top first), from qemu-img info. */
int agent_chain(const char *path, bool force_share, struct agent_layer **out,
                size_t *n);
void agent_chain_free(struct agent_layer *l, size_t n);

/* ---- backups ----------------------------------------------------------- */

struct agent_disk_spec {
    const char *name;  /* vda */
    const char *path;  /* image to read (top of the chain) */
    const char *since; /* NULL: full; else the layer changes are above */
    bool force_share;
    struct proto_kv meta; /* extra per-disk metadata (source path, ...) */
    /* path opened already (agent_backup_disks takes it, NULL then), or
     * NULL: opened when its turn comes */
    struct agent_source *src;
};

struct agent_backup_result {
    char id[PROTO_ID_LEN + 1];
    char parent[PROTO_ID_LEN + 1];
    struct proto_kv meta; /* the committed metadata */
    uint64_t bytes_read, bytes_sent;
    /* RAW chunks asked about, of them found stored; chunks sent */
    uint64_t chunks_asked, chunks_reused, chunks_sent;
    uint64_t changed_bytes;
    double seconds;
    struct agent_phases ph; /* BEGIN to COMMIT */
};

/*
 * Back up disks into the repository (OPENed for writing) as one backup of
 * set `name`. parent: "" for no parent (every disk must be full), else the
 * parent's id (disks with `since` become incrementals on it). meta: backup
 * metadata (kind, consistency, ...). xml (may be NULL): a domain XML saved
 * with the backup, as a BLOB chunk named by the meta key "domain_xml".
 */
int agent_backup_disks(struct agent_repo *r, const char *name,
                       const char *parent, struct agent_disk_spec *disks,
                       size_t ndisks, const struct proto_kv *meta,
                       const char *xml, struct agent_backup_result *res);
void agent_backup_result_free(struct agent_backup_result *res);
/* The agent's chunk counts of res into kv: chunks_asked, chunks_reused,
 * chunks_sent (a backup's --json summary). */
void agent_chunk_counts_kv(const struct agent_backup_result *res,
                           struct proto_kv *kv);

/* ---- restore ----------------------------------------------------------- */

enum agent_format { AGENT_FMT_RAW, AGENT_FMT_QCOW2 };

/* "raw" or "qcow2". */
const char *agent_format_name(enum agent_format f);

/*
 * Check that the repository holds every chunk disk of b needs (QUERY);
 * names the first missing one in the error.
 */
int agent_restore_check(struct agent_backup *b, const char *disk);

/* agent_restore_disk's flags */
enum {
    AGENT_RESTORE_FORCE = 1,  /* replace an existing file */
    AGENT_RESTORE_DEVICE = 2, /* out_path may be a block device, written in
                               * place (with AGENT_RESTORE_FORCE, raw): only
                               * a path the user named, never one made
                               * from theirs */
};

/*
 * Rebuild disk of b into out_path (written as out_path's temp sibling,
 * renamed at the end), sparse, in format fmt; or onto the block device
 * out_path is (AGENT_RESTORE_DEVICE), in place, its zeros written too.
 */
int agent_restore_disk(struct agent_backup *b, const char *disk,
                       const char *out_path, enum agent_format fmt,
                       unsigned flags);

/*
 * Restore several disks of b: b->disks[i] goes to final[i] (skipped when
 * NULL) in format fmts[i]. Each is written under a temporary name beside
 * its target (DIR/.NAME.restoring) and nothing is renamed into place
 * until every one is written, so nothing looks complete before all of it
 * is; marker (may be NULL) is created and fsync'd before the first rename.
 * Existing targets are replaced. On failure the temporary files are
 * removed (renamed ones stay).
 * Where device (may be NULL) is true, final[i] is a block device written
 * in place, raw (AGENT_RESTORE_DEVICE): every device is checked
 * (agent_restore_device_check) before anything is written, and written
 * after the files' temporary images, before their renames; a failure
 * after one was written says so.
 */
int agent_restore_disks(struct agent_backup *b, char *const *final,
                        const enum agent_format *fmts, const bool *device,
                        const char *marker);

/*
 * Fail, saying why, unless path is a block device a disk of size bytes
 * can be written onto in place: large enough, not mounted, not held by
 * another device, not open in any process.
 */
int agent_restore_device_check(const char *path, uint64_t size);

/* Fail (ENOSPC, with a hint) if the filesystem of dir has less than need
 * bytes free; an unknown amount passes. */
int agent_restore_check_space(const char *dir, uint64_t need);

#endif /* LB_AGENT_CLIENT_H */
