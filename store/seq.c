/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The commit order (FORMAT.md, "Meta block"): every manifest's seq is
 * greater than that of every backup committed before it. REPO/seq holds
 * the last number handed out, so a commit costs one small file's read and
 * write instead of reading the metadata of every backup.
 *
 * - Two writers (sessions of one daemon, or backupd processes on two
 *   hosts' ssh sessions) read and advance it under an exclusive flock of
 *   the file: they never get the same number.
 * - It is written before the manifest it goes into is linked, and the
 *   commit's syncfs makes it durable first: a crash between the two leaves
 *   a number unused (a gap), never one used twice.
 * - A repository without it (made before it) or with a record that does
 *   not read back whole gets it from the manifests: one more than the
 *   highest seq in backups/, as before.
 */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>

/* "%020llu\n": fixed width, so a rewrite covers the whole record. */
#define SEQ_RECORD 21

static bool
seq_parse(const char *buf, ssize_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n != SEQ_RECORD || buf[SEQ_RECORD - 1] != '\n')
        return false;
    for (int i = 0; i < SEQ_RECORD - 1; i++) {
        if (buf[i] < '0' || buf[i] > '9' || lb_mul_overflow(v, 10, &v) ||
            lb_add_overflow(v, (uint64_t)(buf[i] - '0'), &v))
            return false;
    }
    *out = v;
    return true;
}

/* The highest seq of the manifests in backups/ (0 if none). */
static int
seq_scan(struct store *st, uint64_t *out)
{
    struct store_list l;

    *out = 0;
    if (store_list(st, NULL, &l) < 0)
        return -1;
    for (size_t i = 0; i < l.n; i++)
        *out = LB_MAX(*out, l.b[i].seq);
    store_list_free(&l);
    return 0;
}

int
store_seq_next(struct store *st, uint64_t *seq)
{
    CLEANUP_FREE char *path = lb_xasprintf("%s/seq", st->path);
    CLEANUP_CLOSE int fd = -1;
    char buf[SEQ_RECORD + 1];
    uint64_t last;
    ssize_t n;

    if (!store_on_files(st))
        return store_obj_seq_next(st, seq);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return lb_error(errno, "open %s", path);
    /* Held for a read and a write: other writers wait an instant. */
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR)
            return lb_error(errno, "lock %s", path);
    n = lb_pread_full(fd, buf, sizeof buf, 0);
    if (n < 0)
        return lb_error(errno, "read %s", path);
    if (!seq_parse(buf, n, &last)) {
        if (n > 0)
            lb_warn("%s does not read back (%zd bytes): taking the commit "
                    "order from the manifests",
                    path, n);
        if (seq_scan(st, &last) < 0)
            return -1;
    }
    if (last == UINT64_MAX)
        return lb_fail(ERANGE, "%s: no commit number left", path);
    *seq = last + 1;
    snprintf(buf, sizeof buf, "%020llu\n", (unsigned long long)*seq);
    if (lb_pwrite_full(fd, buf, SEQ_RECORD, 0) < 0)
        return lb_error(errno, "write %s", path);
    return 0;
}
