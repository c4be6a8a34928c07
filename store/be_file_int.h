/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The file backend's internals, shared by be_file.c (objects, locks) and
 * be_file_session.c (a writer's session, staged creates, commit, gc's
 * trash). Nothing outside these two includes this but the backend's unit
 * test (tests/unit/test_store_backend.c: each stage mode).
 */
#ifndef LB_STORE_BE_FILE_INT_H
#define LB_STORE_BE_FILE_INT_H

#include "store/backend.h"

#include <pthread.h>

#define FILE_MAX_LOCKS 8

/* How a session stages a create (be_file_session.c): an unnamed file
 * (O_TMPFILE) in the session's directory, linked into place through its
 * descriptor (AT_EMPTY_PATH, which needs CAP_DAC_READ_SEARCH) or through
 * /proc/self/fd; or, where neither works, a temporary name there. */
enum be_file_stage_mode {
    BE_FILE_STAGE_UNKNOWN, /* probed when the session begins */
    BE_FILE_STAGE_EMPTY_PATH,
    BE_FILE_STAGE_PROC_FD,
    BE_FILE_STAGE_NAMED,
};

struct be_file {
    struct store_be be;
    int dir_fd;
    pthread_mutex_t lock;
    unsigned long tmp_seq;
    enum be_file_stage_mode stage_mode;
    int locks[FILE_MAX_LOCKS];
    bool lock_excl[FILE_MAX_LOCKS];
    /* The writer session's start (its .lock's mtime, seconds), 0 without
     * one: a chunk a lookup finds with an mtime at or after it needs no
     * touch (FORMAT.md, "gc"). */
    int64_t session_start;
    /* gc's trash (remove_if_old): tmp/gc-PID-RAND, made on first use. */
    char *trash_dir;
    int trash_fd, trash_lock_fd;
};

static inline struct be_file *
to_file(struct store_be *be)
{
    return (struct be_file *)be;
}

/* fsync the directory holding obj. */
int be_file_sync_parent(struct be_file *b, const char *obj);

int be_file_session_begin(struct store_be *be);

void be_file_session_end(struct store_be *be);
int be_file_stage(struct store_be *be, const char *obj, const void *hdr,
                  size_t hdr_len, const void *p, size_t len,
                  struct store_be_staged **out);
int be_file_publish(struct store_be *be, struct store_be_staged *s,
                    const char *obj);
void be_file_unstage(struct store_be *be, struct store_be_staged *s);
int be_file_sync_staged(struct store_be *be, struct store_be_staged *const *s,
                        size_t n);
int be_file_barrier(struct store_be *be);
int be_file_remove_if_old(struct store_be *be, const char *obj, int64_t cutoff,
                          uint64_t *size, store_be_hook_fn between,
                          void *opaque);
/* Empty gc's trash back into chunks/ and remove it (close). */
void be_file_trash_end(struct store_be *be);
int be_file_sessions_oldest(struct store_be *be, int64_t t0, int64_t *oldest,
                            uint64_t *live);
int be_file_commit(struct store_be *be, const char *tmp, int fd,
                   const char *obj, const char *set);

#endif /* LB_STORE_BE_FILE_INT_H */
