/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The output image of a restore (restore.c's writer): a raw file written
 * directly, or a qcow2 image qemu-img creates and qemu-nbd writes, with
 * writes in flight. Written under a temporary name next to the target and
 * renamed when complete, so a half-restored disk never looks complete.
 * Or, asked for (AGENT_RESTORE_DEVICE), a block device written in place,
 * raw, its zeros written too: an LV a domain runs on.
 */
#ifndef LB_AGENT_SINK_H
#define LB_AGENT_SINK_H

#include "agent/client/client_int.h"
#include "agent/client/nbd_dl.h"

struct nbd_handle;

struct agent_sink {
    enum agent_format fmt;
    int fd;               /* raw: the temp file; qcow2: for its write-back */
    struct nbd_handle *h; /* qcow2: qemu-nbd on the temp file */
    struct lb_nbd_server server; /* qcow2: that qemu-nbd */
    char *tmp, *dst;             /* a device: both its name */
    bool device;     /* written in place: no rename; zeros written */
    bool touched;    /* a device: written to (atomic) */
    bool no_punch;   /* a device that cannot punch holes (atomic) */
    int slot;        /* the partial file, removed on a fatal signal; -1 */
    int write_error; /* qcow2: the first failed write's errno */
    uint64_t error_off;
    uint64_t evicted; /* the file's pages below this left the page cache */
};

/* Create out's temporary sibling, size bytes, in fmt (an existing out
 * needs AGENT_RESTORE_FORCE), or with AGENT_RESTORE_DEVICE open the
 * device out is. On failure, agent_sink_close(k, false) cleans up. */
int agent_sink_open(struct agent_sink *k, const char *out,
                    enum agent_format fmt, uint64_t size, unsigned flags);
/*
 * Write buf at off. raw: at once. qcow2: queued in qemu-nbd; buf must stay
 * valid until *pending, incremented here, drops back by one (its
 * completion, seen in agent_sink_poll or agent_sink_wait).
 */
int agent_sink_write(struct agent_sink *k, const uint8_t *buf, size_t len,
                     uint64_t off, unsigned *pending);
/*
 * Start writing [off, off+len) to disk (raw), or what qemu-nbd wrote so
 * far (qcow2): the final fsync then finds little left. And keep the
 * image's share of the page cache bounded: what was written more than
 * SINK_CACHE_LAG bytes before the end of what was written so far is
 * waited for on disk and dropped from the cache. Fails on a write-back
 * error (which the final fsync would then no longer see).
 */
int agent_sink_writeback(struct agent_sink *k, uint64_t off, uint64_t len);
/* A device: write zeros over [off, off+len) (the device deallocates them
 * where it can: a thin LV stays thin). Else nothing: a new file reads
 * zeros where nothing was written. On a device (raw: pwrite, fallocate
 * and ioctl) it may run beside agent_sink_write on other ranges. */
int agent_sink_zero(struct agent_sink *k, uint64_t off, uint64_t len);
/* qcow2: wait for one completion or more; fails on a failed write. */
int agent_sink_poll(struct agent_sink *k);
/* qcow2: wait until at most `left` writes are in flight; fails on the
 * first write that failed. raw: 0. */
int agent_sink_wait(struct agent_sink *k, int left);
/* commit: wait for every write, flush, fsync and rename into place;
 * else (or on failure) remove the temporary file. Frees k's strings. */
int agent_sink_close(struct agent_sink *k, bool commit);

#endif
