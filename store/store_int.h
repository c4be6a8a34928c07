/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internals shared by the store's source files. Not part of the contract:
 * nothing outside store/ includes this.
 */
#ifndef LB_STORE_INT_H
#define LB_STORE_INT_H

#include "store/store.h"

#include <pthread.h>

/* Chunk file header (FORMAT.md, "Chunk files"). */
#define STORE_CHUNK_MAGIC 0x4C42434Bu /* "LBCK" */
#define STORE_CHUNK_VERSION 1
#define STORE_CHUNK_HDR 16

struct store {
    char *path;
    int dir_fd;
    enum store_mode mode;
    uint32_t window_size;
    char repo_id[128];
    int lock_fd;
    bool append_only;
    bool trusted;
    /* Writers: a private directory for temp files, locked while alive. */
    char *session_dir;
    int session_lock_fd;
    pthread_mutex_t tmp_lock;
    unsigned long tmp_seq;
};

struct store_scratch {
    uint8_t *plain; /* PROTO_MAX_CHUNK_RAW bytes */
    struct lb_buf file;
    struct proto_zctx *z;
};

/* A set of digests. Zero-initialise; free with store_dset_free. */
struct digest_set {
    struct proto_digest *slot;
    uint8_t *used;
    size_t cap, n;
};
bool store_dset_has(const struct digest_set *s, const struct proto_digest *d);
void store_dset_add(struct digest_set *s, const struct proto_digest *d);
void store_dset_free(struct digest_set *s);

/* rm -rf; best effort. */
int store_rm_tree(const char *path);
/* A fresh temp path in this session's directory. Caller frees. */
char *store_tmp_name(struct store *st, const char *what);
/* "chunks/ab/abcd..." relative to the repository. */
void store_chunk_relpath(char out[80], const struct proto_digest *d);
/* Path of a backup's manifest. Caller frees. */
char *store_manifest_path(const struct store *st, const char *id);
/* Read callback for proto_mf_reader over a file descriptor (opaque is a
 * pointer to the int fd). */
ssize_t store_fd_read(void *opaque, void *buf, size_t len);

#endif /* LB_STORE_INT_H */
