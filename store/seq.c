/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The commit order (FORMAT.md, "Meta block"): every manifest's seq is
 * greater than that of every backup committed before it. REPO/seq holds
 * the last number handed out, so a commit costs one small file's read and
 * write instead of reading the metadata of every backup.
 *
 * - Two writers (sessions of one daemon, or backupd processes on two
 *   hosts) read and advance it atomically, through the backend's counter
 *   (file: under an exclusive flock of the file; RADOS: compare-and-swap
 *   of an xattr): they never get the same number.
 * - It is written before the manifest it goes into is committed, and the
 *   commit's barrier (file: syncfs) makes it durable first: a crash between the
 * two leaves a number unused (a gap), never one used twice.
 * - A repository without it (made before it) or with a record that does
 *   not read back whole gets it from the manifests: one more than the
 *   highest seq in backups/, as before.
 */
#include "store/store_int.h"

/* The highest seq of the manifests in backups/ (0 if none): the floor
 * of a repository without a counter. */
static int
seq_scan(void *opaque, uint64_t *out)
{
    struct store *st = opaque;
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
    *seq = 0;
    return st->be->ops->counter_next(st->be, "seq", seq_scan, st, seq);
}
