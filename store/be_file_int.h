/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The file backend's internals, shared by be_file.c (objects, locks) and
 * be_file_session.c (a writer's session, staged creates, commit, gc's
 * trash). Nothing outside these two includes this.
 */
#ifndef LB_STORE_BE_FILE_INT_H
#define LB_STORE_BE_FILE_INT_H

#include "store/backend.h"

#include <pthread.h>

#define FILE_MAX_LOCKS 8

struct be_file {
    struct store_be be;
    int dir_fd;
    pthread_mutex_t lock;
    unsigned long tmp_seq;
    int locks[FILE_MAX_LOCKS];
    bool lock_excl[FILE_MAX_LOCKS];
};

static inline struct be_file *
to_file(struct store_be *be)
{
    return (struct be_file *)be;
}

/* fsync the directory holding obj. */
int be_file_sync_parent(struct be_file *b, const char *obj);

int be_file_session_begin(struct store_be *be);
/* The session directory tmp/NAME and its .lock, locked (also gc's trash):
 * its path into *dir (caller frees), the lock's descriptor into *lock_fd. */
int be_file_session_create(struct store_be *be, const char *name, char **dir,
                           int *lock_fd);
/* Put every chunk of a dead gc's trash dir back into chunks/: 0 when
 * none is left there (dir may go), -1 if one could not be (logged). */
int be_file_restore_trash(struct store_be *be, const char *dir);
/* Move name from trash_fd's directory back to dir_fd's, never over a
 * file there (then the trash's copy goes). 0, or -1 (errno). */
int be_file_put_back(int trash_fd, int dir_fd, const char *name);
void be_file_session_end(struct store_be *be);
int be_file_stage(struct store_be *be, const char *obj, const void *hdr,
                  size_t hdr_len, const void *p, size_t len,
                  struct store_be_staged **out);
int be_file_publish(struct store_be *be, struct store_be_staged *s,
                    const char *obj);
void be_file_unstage(struct store_be *be, struct store_be_staged *s);
int be_file_barrier(struct store_be *be);
int be_file_commit(struct store_be *be, const char *tmp, int fd,
                   const char *obj);

#endif /* LB_STORE_BE_FILE_INT_H */
