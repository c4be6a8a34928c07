/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internals shared by the store's source files. Not part of the contract:
 * nothing outside store/ includes this.
 */
#ifndef LB_STORE_INT_H
#define LB_STORE_INT_H

#include "store/backend.h"
#include "store/store.h"

#include <pthread.h>

/* Chunk file header (FORMAT.md, "Chunk files"): version 1 for plain
 * chunks, 2 (a longer header with a checksum) for sealed ones. */
#define STORE_CHUNK_MAGIC 0x4C42434Bu /* "LBCK" */
#define STORE_CHUNK_VERSION 1
#define STORE_CHUNK_HDR 16
#define STORE_CHUNK_VERSION_SEALED 2
#define STORE_CHUNK_HDR_SEALED 24

struct store {
    char *path;
    enum store_mode mode;
    uint32_t window_size;
    char repo_id[128];
    unsigned format_version;
    uint8_t encryption; /* enum proto_encryption */
    uint8_t key_id[PROTO_KEY_ID_BYTES];
    bool append_only;
    bool trusted;
    /* Temp file names in the session's directory (st->be->tmp_dir). */
    pthread_mutex_t tmp_lock;
    unsigned long tmp_seq;
    /* The backend holding the repository's objects (backend.h): the
     * directory's (file) or a RADOS pool's; an object backend's
     * repository lock. */
    struct store_be *be;
    int be_lock;
    /* store_set_tick's */
    void (*tick)(void *opaque);
    void *tick_opaque;
};

/* A long operation made progress (store_set_tick); a fault point
 * (store:tick), so that a test can slow or stop one anywhere. */
static inline void
store_tick(struct store *st)
{
    lb_fault_point("store:tick");
    if (st->tick)
        st->tick(st->tick_opaque);
}

struct store_scratch {
    uint8_t *plain; /* PROTO_MAX_CHUNK_RAW bytes */
    struct lb_buf file;
    struct proto_zctx *z;
};

/* A set of digests, each with what is known of its chunk (type and
 * raw_len, from its header; STORE_DSET_ANY when unknown or irrelevant).
 * Zero-initialise; free with store_dset_free. */
#define STORE_DSET_ANY STORE_TYPE_UNKNOWN
struct digest_set {
    struct proto_digest *slot;
    uint8_t *type; /* 0: an empty slot */
    uint32_t *raw_len;
    size_t cap, n;
};
bool store_dset_has(const struct digest_set *s, const struct proto_digest *d);
void store_dset_add(struct digest_set *s, const struct proto_digest *d);
/* Add d, or update what is known of it. */
void store_dset_put(struct digest_set *s, const struct proto_digest *d,
                    uint8_t type, uint32_t raw_len);
/* true (and *type, *raw_len) if d is in the set. */
bool store_dset_get(const struct digest_set *s, const struct proto_digest *d,
                    uint8_t *type, uint32_t *raw_len);
void store_dset_free(struct digest_set *s);

/*
 * Check that the chunk d (noted in a transaction, or stored) is what a
 * ref of type want in a window of wl bytes needs (txn.c): 0, or -1 with
 * the error slot set (EINVAL: not there or not of that kind; EPROTO:
 * damaged) and why (without the backup's context) in why.
 */
int store_chunk_check_ref(struct store *st, const struct digest_set *noted,
                          uint8_t want, uint32_t wl,
                          const struct proto_digest *d, char *why,
                          size_t why_len);

/* A fresh temp path in this session's directory. Caller frees. */
char *store_tmp_name(struct store *st, const char *what);
/* "chunks/ab/abcd..." relative to the repository. */
void store_chunk_relpath(char out[80], const struct proto_digest *d);
/* ---- reading manifests (manifests.c) ---------------------------------- */

/* A backup's manifest's object name, "backups/ID". Caller frees. */
char *store_manifest_obj(const char *id);
/* 1 if backup id exists, 0 if not, -1 on error. */
int store_manifest_exists(struct store *st, const char *id);
/* Read callback for proto_mf_reader over a file descriptor (opaque is a
 * pointer to the int fd). */
ssize_t store_fd_read(void *opaque, void *buf, size_t len);
/* The meta block of the manifest open on fd, checked against the header's
 * digest, without reading its windows. 0, or -1 (EPROTO, the message
 * without the backup's id: callers prefix it). */
int store_manifest_read_meta(int fd, struct proto_kv *meta);
/* The same of backup id, read from the backend in place (ENOENT: no
 * such manifest). */
int store_manifest_read_meta_obj(struct store *st, const char *id,
                                 struct proto_kv *meta);
/* The same of n backups (valid ids), the reads of many sent at once:
 * errs[i] 0 (metas[i] filled, the caller frees it), ENOENT, or another
 * errno (read it alone for the message). */
void store_manifest_read_meta_many(struct store *st, char *const *ids, size_t n,
                                   struct proto_kv *metas, int *errs);
/* A reader over the manifest open on *fd (which must outlive it), past
 * its header; NULL (error set) if the header is bad. */
struct proto_mf_reader *store_manifest_reader(int *fd);
/* A reader positioned at the windows of disk in the parent backup id (its
 * file in *fd_out, closed with the reader by the caller; *d filled); NULL
 * (error set: ENOENT if the parent has no such disk). */
struct proto_mf_reader *store_parent_disk(struct store *st, const char *id,
                                          const char *disk, int *fd_out,
                                          struct proto_mf_disk *d);
/* The same reader again over *fd, the manifest store_parent_disk opened
 * (read from its start: nothing fetched again); on failure *fd is closed
 * (-1). */
struct proto_mf_reader *store_parent_disk_again(int *fd, const char *id,
                                                const char *disk,
                                                struct proto_mf_disk *d);

/* The ids of every backup in the repository, in no order (caller frees
 * with store_ids_free): by the backend's index if it has one (which may
 * name a backup being committed or deleted: not there when read). */
int store_backup_ids(struct store *st, char ***ids, size_t *n);
/* The same by walking backups/, never by an index (gc). */
int store_backup_ids_walk(struct store *st, char ***ids, size_t *n);
void store_ids_free(char **ids, size_t n);

/* ---- commit order (seq.c) ---------------------------------------------- */

/*
 * The seq of the backup about to commit (FORMAT.md, "Meta block"): one
 * more than the last one handed out in this repository, kept in REPO/seq.
 * Two writers never get the same number; the number is durable once the
 * commit's syncfs has run, before its manifest is linked.
 */
int store_seq_next(struct store *st, uint64_t *seq);

/* Whether a manifest's meta block may be committed and read as this
 * repository's: in an encrypted one it holds the MAC of the manifest
 * (FORMAT.md, "Manifest MAC"; whether it is right needs the key), in
 * another nothing is needed (txn.c). */
bool store_meta_has_mac(const struct store *st, const struct proto_kv *meta);

/* ---- repositories on an object backend (obj.c) ------------------------ */

/* Take the repository lock "lock" (FORMAT.md, "Locking"): shared, or
 * exclusive for STORE_ADMIN, waiting up to wait_secs (EWOULDBLOCK then,
 * saying who holds it). Released when st->be closes. */
int store_repo_lock(struct store *st, unsigned wait_secs);
/* Parse the config text into st (repo.c). */
int store_config_parse(struct store *st, char *text);
/* Create the repository at spec: keys/repokey (if keyfile), then the
 * config object, exclusively. */
int store_obj_init(const char *spec, const char *cfg, const uint8_t *keyfile,
                   size_t keyfile_len);
/* Connect st->be, read the config, take the repository lock and (writers)
 * a session. */
int store_obj_open(struct store *st, unsigned lock_wait_secs);
/* A small object whole into out: its length, or -1. */
ssize_t store_obj_get(struct store *st, const char *obj, uint8_t *out,
                      size_t cap);

#endif /* LB_STORE_INT_H */
