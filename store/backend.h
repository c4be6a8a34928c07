/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Storage backends: the operations a repository needs from whatever
 * holds its objects (FORMAT.md, "Backends"). An object has a name
 * ("config", "chunks/ab/<sha256 hex>", "backups/<id>", ...), bytes, and a
 * modification time; names are the same on every backend. The repository
 * code (store/) has one path for both backends: every repository, file or
 * RADOS, is opened with its backend (st->be is never NULL), and what
 * differs between them is behind these operations.
 *
 *   file   a directory (the embedded default; be_file.c,
 *          be_file_session.c); an object is a file under it. Its tuned
 *          paths are operations too: chunks staged as temp files in the
 *          writer's session directory and made durable by one syncfs at
 *          the commit (barrier), gc's trash directory (remove_if_old).
 *   rados  a Ceph RADOS pool (and namespace) through librados
 *          (be_rados.c, be_obj.c): an object is a RADOS object; creates
 *          are exclusive, completion is durability (the barrier only
 *          renews the locks), locks are RADOS advisory locks with a lease.
 *
 * Every operation returns -1 with the error slot set on failure; errno
 * classes as in store.h (ENOENT, EEXIST, EWOULDBLOCK, EPROTO, ...).
 * Thread safety: the data operations (read, stat, touch, create, remove,
 * remove_if_old, list, stage, publish, unstage, head_many, open) may be
 * called from several threads at once.
 */
#ifndef LB_STORE_BACKEND_H
#define LB_STORE_BACKEND_H

#include "common/common.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

struct store_be;

/* A backup id's reservation while its backup is written (FORMAT.md,
 * "Committing a backup"): STORE_BE_ID_PREFIX then the id. */
#define STORE_BE_ID_PREFIX "ids/"
#define STORE_BE_ID_PREFIX_LEN (sizeof STORE_BE_ID_PREFIX - 1)
/* A manifest's object name: STORE_BE_MF_PREFIX then the backup's id. */
#define STORE_BE_MF_PREFIX "backups/"
#define STORE_BE_MF_PREFIX_LEN (sizeof STORE_BE_MF_PREFIX - 1)

/* The backup id a manifest's object name ends with, or NULL if obj is
 * not a manifest's (not checked as an id). */
static inline const char *
store_be_mf_id(const char *obj)
{
    return strncmp(obj, STORE_BE_MF_PREFIX, STORE_BE_MF_PREFIX_LEN) == 0
               ? obj + STORE_BE_MF_PREFIX_LEN
               : NULL;
}

/* Bytes staged for a create (stage, publish): a temp file of the
 * session (fd, path) or a copy in memory (data, len). */
struct store_be_staged {
    int fd;
    char *path;
    bool synced;
    uint8_t *data;
    size_t len;
};

/* Called once per object whose name starts with the listing's prefix. A
 * non-zero return stops the listing and is returned. */
typedef int (*store_be_list_fn)(void *opaque, const char *name);
/* A test hook (remove_if_old). */
typedef void (*store_be_hook_fn)(void *opaque, const char *what);
/* A counter's floor (counter_next): 0 and *floor, or -1. */
typedef int (*store_be_floor_fn)(void *opaque, uint64_t *floor);

struct store_be_ops {
    const char *kind; /* "file", "rados" */
    /* stage keeps a chunk in memory until it is published (file: in a
     * temporary file) */
    bool stages_in_memory;
    void (*close)(struct store_be *be);
    /* Up to len bytes from off into buf: the count (short at the end), or
     * -1 (ENOENT: no such object). */
    ssize_t (*read)(struct store_be *be, const char *obj, void *buf, size_t len,
                    uint64_t off);
    /* Optional (NULL: read, one after the other): n reads sent at once
     * (a listing's manifests: one round trip on RADOS; on files, reads
     * on several threads, a cold disk serving many at once); got[i] the
     * bytes read into bufs[i], or -errno (-ENOENT: no such object). */
    void (*read_many)(struct store_be *be, const char *const *objs, size_t n,
                      uint8_t *const *bufs, const size_t *lens,
                      const uint64_t *offs, ssize_t *got);
    /* Size and modification time (UTC seconds). */
    int (*stat)(struct store_be *be, const char *obj, uint64_t *size,
                int64_t *mtime);
    /* Set the modification time to now: 0, or -1 (ENOENT). */
    int (*touch)(struct store_be *be, const char *obj);
    /* Create obj holding p[0..len) unless it exists: all of it or nothing,
     * durable when this returns. 0 created, 1 it existed (left as it
     * was), -1 error. */
    int (*create)(struct store_be *be, const char *obj, const void *p,
                  size_t len);
    /* Replace obj (or create it) atomically and durably. */
    int (*replace)(struct store_be *be, const char *obj, const void *p,
                   size_t len);
    /* Remove obj: 0, or -1 (ENOENT). */
    int (*remove)(struct store_be *be, const char *obj);
    /* Reserve obj (ids/ID) for this writer: create it exclusively, empty.
     * Atomic against every other writer but not durable (file: no sync):
     * it keeps the writers running now from taking one backup id, and a
     * crash ends those. 0 reserved, 1 taken, -1 error. */
    int (*reserve)(struct store_be *be, const char *obj);
    /* Drop a reservation: best effort, nothing reported (one left behind
     * names a past second, which no new backup takes; gc removes it). */
    void (*unreserve)(struct store_be *be, const char *obj);
    /* Remove obj only if its modification time is older than cutoff and
     * nobody touched it between this call's check and the removal (gc,
     * FORMAT.md "Garbage collection"; file: it goes through gc's trash
     * directory tmp/gc-PID-RAND, until sweep_end or close):
     * 1 removed (*size its size), 0 kept (not older, or gone), 2 kept
     * (touched meanwhile), -1 error. between (a test hook, NULL in
     * production) is called inside that window: with the path of the file
     * moved into the trash, or with obj. */
    int (*remove_if_old)(struct store_be *be, const char *obj, int64_t cutoff,
                         uint64_t *size, store_be_hook_fn between,
                         void *opaque);
    /* gc is done with remove_if_old (file: its trash is emptied back into
     * chunks/, if anything is left, and removed; rados: nothing). */
    void (*sweep_end)(struct store_be *be);
    /* Every object whose name starts with prefix, in no particular order. */
    int (*list)(struct store_be *be, const char *prefix, store_be_list_fn fn,
                void *opaque);
    /* The manifests (backups/ID) by the backend's index, without walking
     * every object (RADOS: the omap of `index`): 0, -1 error, or 1 when
     * there is no index (then list "backups/"). It may name a manifest
     * being committed or removed (not there: ENOENT when read), never
     * leaves out one that is there. With set non-NULL it may leave out
     * the backups its index knows to be of another set (the caller still
     * checks each one's meta). NULL: no index (file). */
    int (*list_backups)(struct store_be *be, const char *set,
                        store_be_list_fn fn, void *opaque);
    /* gc, after it listed the manifests by a walk (ids, n): the index
     * made to name each of them, and entries older than cutoff whose
     * manifest is not there dropped. NULL: no index. */
    int (*index_sync)(struct store_be *be, char *const *ids, size_t n,
                      int64_t cutoff);
    /* Advance the counter in obj by one atomically: the new value into
     * *v. A missing counter, or one that does not read back, continues
     * from what floor gives (called only then, at most once; NULL: 0).
     * Durable at the next barrier. */
    int (*counter_next)(struct store_be *be, const char *obj,
                        store_be_floor_fn floor, void *opaque, uint64_t *v);
    /* Take the advisory lock named obj: exclusive, or shared with every
     * other shared holder. A lock has a lease: a holder that dies loses it
     * after lease_secs (the file backend's flock goes with the process at
     * once); a live holder keeps it with store_be_lock_renew. wait_secs: how
     * long to wait for a conflicting holder (EWOULDBLOCK then, with who
     * holds it in holder). desc describes this holder for others; NULL
     * for a lock no one else takes (a session's: its object says who):
     * nothing is recorded. Returns a lock handle >= 0. */
    int (*lock)(struct store_be *be, const char *obj, bool excl,
                unsigned lease_secs, unsigned wait_secs, const char *desc,
                char *holder, size_t holder_len);
    /* Renew every lock this backend holds (the lease starts again). */
    int (*lock_renew)(struct store_be *be);
    void (*unlock)(struct store_be *be, int handle);
    /* The lock named obj is held by someone (for gc: a live session). */
    int (*lock_held)(struct store_be *be, const char *obj, bool *held);
    /* For each of n objects at once (a QUERY's batch): touch it if asked,
     * then its size into size[i] and up to head_len first bytes into
     * head + i * head_len (got[i] of them); err[i] is 0, ENOENT, or
     * EPROTO (not an object: a file backend's symlink or directory). A
     * backend sends the operations together. -1 on another error. */
    int (*head_many)(struct store_be *be, const char *const *objs, size_t n,
                     bool touch, uint8_t *head, size_t head_len, size_t *got,
                     uint64_t *size, int *err);
    /* ---- a writer's session, creates in two steps, the commit ---------
     * Begin this writer's session (FORMAT.md, "Locking"; RADOS backend):
     * a private temp directory on local disk (tmp_dir below) for its temp
     * files, locked while it lives, and a mark whose start gc's cutoff
     * respects; the sessions of writers that are gone are removed first.
     * It ends when the backend is closed. */
    int (*session_begin)(struct store_be *be);
    /* gc's cutoff: the start (UTC seconds) of the oldest live session of
     * another writer, or t0, and how many are live; sessions of writers
     * that are gone (their lock free) are not counted (RADOS: removed). */
    int (*sessions_oldest)(struct store_be *be, int64_t t0, int64_t *oldest,
                           uint64_t *live);
    /* Stage obj's bytes (hdr, then p) for publish where no reader sees
     * them (file: a temp file in the session's directory; rados: memory):
     * 0 (*out set), or 1 if the backend can tell at once that obj exists
     * (file: a stat; nothing staged), -1 error. */
    int (*stage)(struct store_be *be, const char *obj, const void *hdr,
                 size_t hdr_len, const void *p, size_t len,
                 struct store_be_staged **out);
    /* Create obj from staged bytes, as create (0 created, 1 it existed);
     * may be called again (it was removed meanwhile). Durable at the next
     * barrier (file: the data at once, the name at the barrier; rados:
     * completion is durability). */
    int (*publish)(struct store_be *be, struct store_be_staged *s,
                   const char *obj);
    /* Make the bytes of n staged creates durable at once, before they are
     * published (file, n > 1: one syncfs of the repository's filesystem
     * instead of an fdatasync each: one journal commit and one cache
     * flush for them all); publish then only names them. 0, or -1 (none
     * of them counts as durable). NULL: publish does it one by one. */
    int (*sync_staged)(struct store_be *be, struct store_be_staged *const *s,
                       size_t n);
    void (*unstage)(struct store_be *be, struct store_be_staged *s);
    /* Everything published before is durable, and this writer still holds
     * its locks (a commit follows): file syncfs; rados a lock renewal
     * that fails if a lease lapsed. */
    int (*barrier)(struct store_be *be);
    /* The commit point: create obj exclusively from the whole temp file
     * tmp of the session (open on fd, fsync'd), after a barrier; durable
     * when this returns. 0, or -1 (EEXIST: obj exists). set: the backup's
     * set name (its meta's "name"), for a backend whose index says it,
     * or NULL. */
    int (*commit)(struct store_be *be, const char *tmp, int fd,
                  const char *obj, const char *set);
    /* A descriptor reading obj from its start (what a streaming reader of
     * a manifest takes): the file itself, or a copy of the object in
     * memory. The caller closes it; -1 (ENOENT: no such object). */
    int (*open)(struct store_be *be, const char *obj);
    /* Optional (NULL: nothing to gain): obj will be read soon; start
     * fetching it (file: its inode now, its data into the page cache in
     * the background). A hint: nothing is reported. */
    void (*prefetch)(struct store_be *be, const char *obj);
};

/* One read_many answer: read's bytes, or -errno (its error cleared). */
ssize_t store_be_read_one(struct store_be *be, const char *obj, void *buf,
                          size_t len, uint64_t off);
/* The backend's read_many, or its reads one after the other. */
void store_be_read_many(struct store_be *be, const char *const *objs, size_t n,
                        uint8_t *const *bufs, const size_t *lens,
                        const uint64_t *offs, ssize_t *got);

/* head_many from read, stat and touch, one object after the other. */
int store_be_head_many_seq(struct store_be *be, const char *const *objs,
                           size_t n, bool touch, uint8_t *head, size_t head_len,
                           size_t *got, uint64_t *size, int *err);

/* open from stat and read: the object copied into a memory file. */
int store_be_open_copy(struct store_be *be, const char *obj);

/* An object backend's parts from the basic operations (be_obj.c): a
 * session as objects (sessions/NAME and its lock) with a local temp
 * directory, staging in memory, publish and commit by exclusive create. */
int store_be_obj_session_begin(struct store_be *be);
int store_be_obj_sessions_oldest(struct store_be *be, int64_t t0,
                                 int64_t *oldest, uint64_t *live);
/* Remove the session's local temp directory (tmp_dir) and its lock. */
void store_be_tmp_drop(struct store_be *be);
int store_be_stage_copy(struct store_be *be, const char *obj, const void *hdr,
                        size_t hdr_len, const void *p, size_t len,
                        struct store_be_staged **out);
int store_be_publish_create(struct store_be *be, struct store_be_staged *s,
                            const char *obj);
void store_be_unstage_copy(struct store_be *be, struct store_be_staged *s);
int store_be_commit_copy(struct store_be *be, const char *tmp, int fd,
                         const char *obj);

/* rm -rf; best effort. */
int store_rm_tree(const char *path);
/*
 * The temp directories in dir of writers that are gone: each directory
 * (ours, not a symlink) whose name starts with prefix and does not start
 * with '.', whose .lock nobody holds (gone runs with it held), or, when
 * lockless_age > 0, that has no .lock and was changed lockless_age
 * seconds ago or more (its writer died before making it; a younger one
 * may be being made). gone(path, name, opaque) removes it. Best effort.
 */
void store_tmp_sweep(const char *dir, const char *prefix, time_t lockless_age,
                     void (*gone)(const char *path, const char *name,
                                  void *opaque),
                     void *opaque);
/*
 * Give the new temp directory d its .lock, locked before anyone can see
 * it (made as .lock.new, locked, renamed): a sweep never finds it
 * unlocked while its writer lives. Its mtime is now. 0 with *lock_fd
 * holding it, or -1 (d left as it was).
 */
int store_tmp_dir_lock(const char *d, int *lock_fd);

struct store_be {
    const struct store_be_ops *ops;
    char *where; /* for messages: the path, or rados:POOL/NS */
    /* The writer's session (session_begin): its temp directory on local
     * disk and that directory's .lock (held); on an object backend the
     * session's object and its lock handle. */
    char *tmp_dir;
    int tmp_lock_fd;
    char *session;
    int session_lock;
};

/* True if repo names a RADOS repository ("rados:..."). */
bool store_be_is_rados(const char *repo);

/* The parts of a RADOS spec (below), each in its own buffer; given says
 * which options the spec names itself (the others hold their defaults). */
struct store_be_rados_spec {
    char pool[128], ns[128], conf[1024], id[128];
    unsigned lease, timeout;
    unsigned given; /* STORE_BE_RADOS_* */
};
#define STORE_BE_RADOS_CONF 0x1u
#define STORE_BE_RADOS_ID 0x2u
#define STORE_BE_RADOS_LEASE 0x4u
#define STORE_BE_RADOS_TIMEOUT 0x8u

/* Parse spec (store_be_rados_open's form) into o: 0, or -1 with the error
 * slot set (EINVAL, saying what is wrong). Needs no cluster. */
int store_be_rados_spec_parse(const char *spec, struct store_be_rados_spec *o);

/*
 * --restrict-to-repo for RADOS (backupd serve under a forced ssh command):
 * may a client that asked for the repository `asked` be served the one
 * `allowed` names? Yes if asked is a rados: spec of the same pool and
 * namespace whose options, those it names, are allowed's (the client
 * cannot pick the server's Ceph config, key, lease or timeout). 0 yes
 * (serve allowed, as it is written), or -1 with the error slot set (EPERM:
 * saying what differs; EINVAL: allowed itself is not a spec).
 */
int store_be_rados_restrict(const char *allowed, const char *asked);

/* The value of a manifest's key in a RADOS repository's index
 * (FORMAT.md, "Index of manifests"): "<time> <tag>[ <set>]", the set left
 * out unless proto_name_valid (so at most 200 bytes: len >= 256 holds
 * any). */
void store_be_index_value(char *v, size_t len, int64_t time, const char *tag,
                          const char *set);
/* The set such a value names (val_len bytes, not a C string): the bytes
 * after its second space, *set_len of them; NULL if it names none. */
const char *store_be_index_value_set(const char *val, size_t val_len,
                                     size_t *set_len);

/* A file backend over the directory path (which must exist). */
struct store_be *store_be_file_open(const char *path);

/*
 * A RADOS backend: spec is "rados:POOL[/NAMESPACE][?conf=PATH&id=NAME&
 * lease=SECS&timeout=SECS]" (conf: the Ceph config file, default
 * /etc/ceph/ceph.conf; id: the client name without "client.", default
 * admin; lease: the lease of its locks, default 60 s; timeout: the client's
 * op timeout, default 120 s). NULL with the error slot set (EINVAL: bad
 * spec, else what librados said) if it cannot connect.
 */
struct store_be *store_be_rados_open(const char *spec);

/* A process that serves many sessions (backupd listen) keeps up to
 * max_idle cluster connections its sessions are done with, for the next
 * ones of the same cluster and client (be_rados_conn.c); 0 (the default)
 * shuts each down at its session's end. Close shuts down those kept. */
void store_rados_keep_connections(unsigned max_idle);
void store_rados_connections_close(void);
/* The lease, in seconds, a RADOS backend gives its locks (0: none). */
unsigned store_be_lease(const struct store_be *be);

static inline void
store_be_close(struct store_be *be)
{
    if (be)
        be->ops->close(be);
}

#endif /* LB_STORE_BACKEND_H */
