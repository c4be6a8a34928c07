/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Restoring a disk from one backup's manifest alone (no chain replay):
 * every window is its stack of chunks applied in order on zeros. The
 * chunks are fetched ahead (GET_CHUNKS, pipelined), checked against their
 * digests and applied by worker threads, which write only the non-zero
 * 4 KiB blocks: holes stay holes, into the output image (sink.c). For
 * qcow2, several windows' writes are in flight in qemu-nbd at once (one
 * synchronous 4 MiB write at a time left the writer waiting on each of
 * qemu-nbd's round trips).
 *
 * The image is written under a temporary name next to the target and
 * renamed when complete, so a half-restored disk never looks complete; an
 * interrupted restore can simply be run again.
 */
#include "agent/client/client_int.h"
#include "agent/client/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/statvfs.h>

#define MAX_WORKERS 16
#define BLOCK 4096
/* qcow2: windows whose writes may be in flight in qemu-nbd at once. */
#define MAX_INFLIGHT 4

int
agent_restore_check(struct agent_backup *b, const char *disk)
{
    uint8_t bits[PROTO_MAX_QUERY / 8];
    const char *id = b->id;
    int mfd = b->mfd;
    struct proto_mf_reader *rd;
    struct proto_mf_disk d;
    struct proto_digest *batch = lb_xmalloc(PROTO_MAX_QUERY * sizeof *batch);
    uint64_t *where = lb_xmalloc(PROTO_MAX_QUERY * sizeof *where);
    uint32_t nb = 0;
    uint64_t missing = 0, first_off = 0;
    char first[65] = "";
    int ret = -1;

    rd = agent_manifest_seek_disk(&mfd, disk, &d);
    if (!rd)
        goto out;
    for (uint64_t i = 0; i <= d.nwindows; i++) {
        struct proto_mf_window w = {0};
        if (i < d.nwindows && proto_mf_next_window(rd, &w) < 0)
            goto out;
        /* Flush when the batch could overflow, and at the end. */
        if (nb && (nb + w.depth > PROTO_MAX_QUERY || i == d.nwindows)) {
            if (agent_repo_have(b->r, batch, nb, bits) < 0)
                goto out;
            for (uint32_t k = 0; k < nb; k++) {
                if (proto_bit(bits, k))
                    continue;
                if (missing++ == 0) {
                    proto_digest_hex(&batch[k], first);
                    first_off = where[k];
                }
            }
            nb = 0;
        }
        for (uint8_t k = 0; k < w.depth; k++) {
            batch[nb] = w.refs[k].d;
            where[nb++] = i * d.window_size;
        }
    }
    if (missing) {
        lb_fail(EPROTO,
                "backup %s, disk %s: %llu chunk(s) missing from the "
                "repository (the first, %s, holds data at offset %llu)",
                id, disk, (unsigned long long)missing, first,
                (unsigned long long)first_off);
        lb_error_hint("livebackup verify names every damaged backup; "
                      "restore another backup of this disk");
        goto out;
    }
    ret = 0;
out:
    proto_mf_reader_free(rd);
    free(batch);
    free(where);
    return ret;
}

/* ---- the pipeline -------------------------------------------------------- */

/* FETCHING: chunks requested; FETCHED: received; WORKING: a worker builds
 * the window; BUILT: ready for the writer; WRITING: being written. */
enum rslot_state {
    R_FREE,
    R_FETCHING,
    R_FETCHED,
    R_WORKING,
    R_BUILT,
    R_WRITING
};

struct rslot {
    enum rslot_state st;
    unsigned pending; /* qcow2: its writes still in flight */
    uint8_t *win;     /* the rebuilt window, until the writer wrote it */
    uint64_t index;
    uint32_t wl;
    struct proto_mf_window w;
    struct lb_buf data;          /* the chunks' stored bytes, back to back */
    size_t off[PROTO_MAX_STACK]; /* where each starts in data */
    struct proto_chunk c[PROTO_MAX_STACK];
};

struct restore {
    struct agent_repo *r;
    struct agent_sink sink;
    const char *id, *disk;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    struct rslot *slots;
    unsigned nslots;
    unsigned *fifo; /* slots waiting for their CHUNK_DATA, in request order */
    unsigned fhead, flen;
    bool done_requesting, failed, quit;
    struct lb_error_saved err; /* the first failure, of whichever thread */
    pthread_t th[MAX_WORKERS], rx, wr;
    unsigned nth;
    struct agent_progress prog;
    uint64_t written;
};

static void
r_fail(struct restore *x)
{
    if (!x->failed)
        lb_error_save(&x->err);
    x->failed = true;
    pthread_cond_broadcast(&x->cv);
}

/* r_fail, from a thread that does not hold x->lock. */
static void
r_fail_unlocked(struct restore *x)
{
    pthread_mutex_lock(&x->lock);
    r_fail(x);
    pthread_mutex_unlock(&x->lock);
}

static void *
receiver(void *arg)
{
    struct restore *x = arg;

    pthread_mutex_lock(&x->lock);
    for (;;) {
        struct rslot *s;
        while (!x->flen && !x->quit && !x->failed && !(x->done_requesting))
            pthread_cond_wait(&x->cv, &x->lock);
        if (x->failed || (!x->flen && (x->quit || x->done_requesting)))
            break;
        s = &x->slots[x->fifo[x->fhead]];
        pthread_mutex_unlock(&x->lock);

        lb_buf_reset(&s->data);
        for (uint8_t k = 0; k < s->w.depth; k++) {
            const uint8_t *p;
            uint32_t len;
            int bad;
            if (proto_conn_expect(x->r->conn, PROTO_T_CHUNK_DATA, &p, &len,
                                  NULL) < 0) {
                pthread_mutex_lock(&x->lock);
                r_fail(x);
                goto out;
            }
            bad = proto_dec_chunk(p, len, &s->c[k]);
            if (bad != PROTO_OK ||
                memcmp(s->c[k].d.b, s->w.refs[k].d.b, PROTO_DIGEST_LEN) != 0 ||
                s->c[k].type != s->w.refs[k].type) {
                lb_error(0, "protocol error: CHUNK_DATA does not match the "
                            "request");
                pthread_mutex_lock(&x->lock);
                r_fail(x);
                goto out;
            }
            s->off[k] = s->data.len;
            lb_buf_append(&s->data, s->c[k].data, s->c[k].data_len);
        }
        pthread_mutex_lock(&x->lock);
        s->st = R_FETCHED;
        x->fhead = (x->fhead + 1) % x->nslots;
        x->flen--;
        pthread_cond_broadcast(&x->cv);
    }
out:
    pthread_mutex_unlock(&x->lock);
    return NULL;
}

/* Is the block at win[off..) (BLOCK bytes, fewer at the window's end)
 * all zeros? */
static bool
block_is_zero(const uint8_t *win, uint32_t off, uint32_t wl)
{
    return lb_is_zero(win + off, LB_MIN(BLOCK, wl - off));
}

/* Rebuild the window of s in s->win: its stack applied on zeros, every
 * chunk checked against its digest. */
static int
build_window(struct restore *x, struct rslot *s, uint8_t *plain,
             struct proto_zctx *z)
{
    uint64_t base = s->index * x->r->window_size;
    uint8_t *win = s->win;

    /* A window starts as zeros, or as its RAW chunk, decompressed in
     * place (RAW sits only at the bottom of a stack). */
    if (s->w.depth == 0 || s->c[0].type != PROTO_CHUNK_RAW)
        memset(win, 0, s->wl);
    for (uint8_t k = 0; k < s->w.depth; k++) {
        struct proto_chunk *c = &s->c[k];
        bool raw = c->type == PROTO_CHUNK_RAW;
        uint8_t *dst = raw ? win : plain;
        int st;

        if (raw && (k != 0 || c->raw_len != s->wl))
            return lb_fail(EPROTO,
                           "backup %s, disk %s: RAW chunk of the "
                           "wrong size or place at offset %llu",
                           x->id, x->disk, (unsigned long long)base);
        c->data = s->data.data + s->off[k];
        /* the slot's own copy: opened in place */
        if (agent_chunk_open_own(x->r, z, c, s->data.data + s->off[k], dst) <
            0) {
            char hex[65], why[512];
            const char *w = strstr(lb_error_msg(), "is damaged: ");
            /* a copy: the message is rewritten below */
            snprintf(why, sizeof why, "%s", w ? w : "is damaged");
            proto_digest_hex(&c->d, hex);
            return lb_fail(EPROTO,
                           "backup %s, disk %s: chunk %s (offset %llu) %s",
                           x->id, x->disk, hex, (unsigned long long)base, why);
        }
        if (!raw &&
            (st = proto_delta_apply(win, s->wl, plain, c->raw_len)) != PROTO_OK)
            return lb_fail(EPROTO,
                           "backup %s, disk %s: bad DELTA chunk at "
                           "offset %llu: %s",
                           x->id, x->disk, (unsigned long long)base,
                           proto_status_str(st));
    }
    return 0;
}

/* Write the non-zero blocks of a built window; zero blocks stay holes
 * (on a device, zeros). */
static int
write_window(struct restore *x, struct rslot *s)
{
    uint64_t base = s->index * x->r->window_size;
    const uint8_t *win = s->win;

    for (uint32_t b = 0; b < s->wl;) {
        uint32_t e, z = b;
        while (b < s->wl && block_is_zero(win, b, s->wl))
            b += BLOCK;
        b = LB_MIN(b, s->wl);
        if (agent_sink_zero(&x->sink, base + z, b - z) < 0)
            return -1;
        for (e = b; e < s->wl && !block_is_zero(win, e, s->wl); e += BLOCK)
            ;
        e = LB_MIN(e, s->wl);
        if (e > b) {
            if (agent_sink_write(&x->sink, win + b, e - b, base + b,
                                 &s->pending) < 0)
                return -1;
            __atomic_add_fetch(&x->written, e - b, __ATOMIC_RELAXED);
        }
        b = e;
    }
    /* Start writing it to disk now, so the final fsync finds little left
     * and the disk works while we decompress. */
    return agent_sink_writeback(&x->sink, base, s->wl);
}

/* With x->lock held: wait for a slot in state `want` and mark it `next`;
 * NULL once the restore stops or failed. */
static struct rslot *
take_slot(struct restore *x, enum rslot_state want, enum rslot_state next)
{
    for (;;) {
        for (unsigned i = 0; i < x->nslots; i++)
            if (x->slots[i].st == want) {
                x->slots[i].st = next;
                return &x->slots[i];
            }
        if (x->quit || x->failed)
            return NULL;
        pthread_cond_wait(&x->cv, &x->lock);
    }
}

/* With x->lock held: free the written windows (qcow2: once their writes
 * completed); returns how many are still in flight. */
static unsigned
retire_written(struct restore *x)
{
    unsigned n = 0;

    for (unsigned i = 0; i < x->nslots; i++) {
        struct rslot *s = &x->slots[i];
        if (s->st != R_WRITING)
            continue;
        if (s->pending) {
            n++;
            continue;
        }
        s->st = R_FREE;
        pthread_cond_broadcast(&x->cv);
    }
    return n;
}

/* With x->lock held: wait (lock dropped) until at most max windows have
 * writes in flight, freeing the others. */
static int
settle_writes(struct restore *x, unsigned max)
{
    while (retire_written(x) > max) {
        int r;
        pthread_mutex_unlock(&x->lock);
        r = agent_sink_poll(&x->sink);
        pthread_mutex_lock(&x->lock);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* With x->lock held: a built window, without waiting while writes are in
 * flight (they are settled first); NULL once the restore stops. */
static struct rslot *
next_built(struct restore *x)
{
    for (;;) {
        for (unsigned i = 0; i < x->nslots; i++)
            if (x->slots[i].st == R_BUILT) {
                x->slots[i].st = R_WRITING;
                return &x->slots[i];
            }
        if (x->quit || x->failed)
            return NULL;
        if (retire_written(x) == 0) {
            pthread_cond_wait(&x->cv, &x->lock);
        } else if (settle_writes(x, 0) < 0) {
            r_fail(x);
            return NULL;
        }
    }
}

/*
 * The one writer: windows are written by a single thread, whatever order
 * the workers finish them in (several threads writing one file only
 * contend on its lock). qcow2: up to MAX_INFLIGHT windows' writes go to
 * qemu-nbd at once; a window is freed when its writes completed.
 */
static void *
writer(void *arg)
{
    struct restore *x = arg;

    pthread_mutex_lock(&x->lock);
    for (;;) {
        struct rslot *s = next_built(x);
        int r;
        if (!s)
            break;
        pthread_mutex_unlock(&x->lock);
        r = write_window(x, s);
        if (r == 0) {
            agent_progress_add(&x->prog, s->wl);
            lb_fault_point("agent:mid-restore");
        }
        pthread_mutex_lock(&x->lock);
        if (r < 0 || settle_writes(x, MAX_INFLIGHT) < 0) {
            r_fail(x);
            break;
        }
    }
    pthread_mutex_unlock(&x->lock);
    return NULL;
}

static void *
worker(void *arg)
{
    struct restore *x = arg;
    uint8_t *plain = lb_xmalloc(PROTO_MAX_CHUNK_RAW);
    struct proto_zctx *z = proto_zctx_new(1);

    pthread_mutex_lock(&x->lock);
    for (;;) {
        struct rslot *s = take_slot(x, R_FETCHED, R_WORKING);
        int r;
        if (!s)
            break;
        pthread_mutex_unlock(&x->lock);
        r = build_window(x, s, plain, z);
        pthread_mutex_lock(&x->lock);
        if (r < 0) {
            r_fail(x);
            break;
        }
        s->st = R_BUILT;
        pthread_cond_broadcast(&x->cv);
    }
    pthread_mutex_unlock(&x->lock);
    free(plain);
    proto_zctx_free(z);
    return NULL;
}

int
agent_restore_disk(struct agent_backup *b, const char *disk,
                   const char *out_path, enum agent_format fmt, unsigned flags)
{
    struct agent_repo *r = b->r;
    struct restore x = {.r = r, .id = b->id, .disk = disk};
    struct proto_mf_reader *rd;
    struct proto_mf_disk d;
    unsigned n = agent_opts.threads ? agent_opts.threads : lb_ncpus();
    uint64_t total = 0, zoff = 0, zlen = 0;
    char what[96];
    int mfd = b->mfd, ret = -1;

    /* The amount of work, for progress: the non-empty windows. */
    for (size_t i = 0; i < b->ndisks; i++)
        if (strcmp(b->disks[i].name, disk) == 0)
            total = b->disks[i].nonempty_windows * r->window_size;
    rd = agent_manifest_seek_disk(&mfd, disk, &d);
    if (!rd)
        return -1;
    if (d.window_size != r->window_size) {
        proto_mf_reader_free(rd);
        return lb_fail(EPROTO, "manifest window size differs from the "
                               "repository's");
    }
    if (agent_sink_open(&x.sink, out_path, fmt, d.size, flags) < 0) {
        proto_mf_reader_free(rd);
        agent_sink_close(&x.sink, false);
        return -1;
    }
    snprintf(what, sizeof what, "restore %s", disk);
    agent_progress_begin(&x.prog, what, total);

    x.nth = LB_MIN(n, MAX_WORKERS);
    x.nslots = 2 * x.nth + 6;
    x.slots = lb_xcalloc(x.nslots, sizeof *x.slots);
    for (unsigned i = 0; i < x.nslots; i++)
        x.slots[i].win = lb_xmalloc(r->window_size);
    x.fifo = lb_xcalloc(x.nslots, sizeof *x.fifo);
    pthread_mutex_init(&x.lock, NULL);
    pthread_cond_init(&x.cv, NULL);
    for (unsigned i = 0; i < x.nth; i++)
        if (pthread_create(&x.th[i], NULL, worker, &x) != 0)
            abort();
    if (pthread_create(&x.wr, NULL, writer, &x) != 0 ||
        pthread_create(&x.rx, NULL, receiver, &x) != 0)
        abort();

    for (uint64_t i = 0; i <= d.nwindows; i++) {
        struct proto_mf_window w = {0};
        struct rslot *s = NULL;
        unsigned si = 0;

        if (i < d.nwindows && proto_mf_next_window(rd, &w) < 0) {
            r_fail_unlocked(&x);
            break;
        }
        if (i < d.nwindows && w.depth == 0) {
            /* a hole (on a device, zeros: a run of holes at once) */
            if (zlen == 0)
                zoff = i * d.window_size;
            zlen += LB_MIN((uint64_t)d.window_size, d.size - i * d.window_size);
            continue;
        }
        if (agent_sink_zero(&x.sink, zoff, zlen) < 0) {
            r_fail_unlocked(&x);
            break;
        }
        zlen = 0;
        if (i == d.nwindows)
            break;
        pthread_mutex_lock(&x.lock);
        for (;;) {
            for (si = 0; si < x.nslots; si++)
                if (x.slots[si].st == R_FREE) {
                    s = &x.slots[si];
                    break;
                }
            if (s || x.failed)
                break;
            pthread_cond_wait(&x.cv, &x.lock);
        }
        if (x.failed) {
            pthread_mutex_unlock(&x.lock);
            break;
        }
        s->st = R_FETCHING;
        s->index = i;
        s->wl = (uint32_t)LB_MIN((uint64_t)d.window_size,
                                 d.size - i * d.window_size);
        s->w = w;
        x.fifo[(x.fhead + x.flen) % x.nslots] = si;
        x.flen++;
        pthread_cond_broadcast(&x.cv);
        pthread_mutex_unlock(&x.lock);
        {
            struct proto_digest dg[PROTO_MAX_STACK];
            for (uint8_t k = 0; k < w.depth; k++)
                dg[k] = w.refs[k].d;
            proto_enc_query(&r->out, PROTO_T_GET_CHUNKS, dg, w.depth);
            if (proto_conn_send_buf(r->conn, &r->out) < 0) {
                r_fail_unlocked(&x);
                break;
            }
        }
    }
    proto_mf_reader_free(rd);
    pthread_mutex_lock(&x.lock);
    x.done_requesting = true;
    pthread_cond_broadcast(&x.cv);
    pthread_mutex_unlock(&x.lock);
    pthread_join(x.rx, NULL);
    /* Let the workers finish what was fetched, then stop them. */
    pthread_mutex_lock(&x.lock);
    for (;;) {
        bool busy = false;
        for (unsigned i = 0; i < x.nslots; i++)
            busy |= x.slots[i].st != R_FREE && x.slots[i].st != R_FETCHING;
        if (!busy || x.failed)
            break;
        pthread_cond_wait(&x.cv, &x.lock);
    }
    x.quit = true;
    pthread_cond_broadcast(&x.cv);
    pthread_mutex_unlock(&x.lock);
    for (unsigned i = 0; i < x.nth; i++)
        pthread_join(x.th[i], NULL);
    pthread_join(x.wr, NULL);
    agent_progress_end(&x.prog);

    if (x.failed) {
        lb_error_restore(&x.err);
        if (strncmp(x.err.msg, "connection closed", 17) == 0)
            agent_repo_explain(r);
        agent_sink_close(&x.sink, false);
    } else {
        ret = agent_sink_close(&x.sink, true);
    }
    for (unsigned i = 0; i < x.nslots; i++) {
        lb_buf_free(&x.slots[i].data);
        free(x.slots[i].win);
    }
    free(x.slots);
    free(x.fifo);
    pthread_mutex_destroy(&x.lock);
    pthread_cond_destroy(&x.cv);
    return ret;
}

/* ---- several disks, and the room they need ---------------------------- */

const char *
agent_format_name(enum agent_format f)
{
    return f == AGENT_FMT_RAW ? "raw" : "qcow2";
}

int
agent_restore_disks(struct agent_backup *b, char *const *final,
                    const enum agent_format *fmts, const bool *device,
                    const char *marker)
{
    size_t nd = b->ndisks;
    char **tmp = lb_xcalloc(nd ? nd : 1, sizeof *tmp);
    const char *written = NULL; /* a device written over */
    int ret = -1;
    size_t i;

    /* A device busy or too small is refused before anything is written. */
    for (i = 0; i < nd; i++)
        if (final[i] && device && device[i] &&
            agent_restore_device_check(final[i], b->disks[i].size) < 0)
            goto out;
    for (i = 0; i < nd; i++) {
        if (!final[i] || (device && device[i]))
            continue;
        const char *slash = strrchr(final[i], '/');
        tmp[i] = lb_xasprintf("%.*s/.%s.restoring", (int)(slash - final[i]),
                              final[i], slash + 1);
        if (agent_restore_disk(b, b->disks[i].name, tmp[i], fmts[i],
                               AGENT_RESTORE_FORCE) < 0)
            goto out;
    }
    for (i = 0; i < nd; i++) {
        if (!final[i] || !device || !device[i])
            continue;
        if (agent_restore_disk(b, b->disks[i].name, final[i], AGENT_FMT_RAW,
                               AGENT_RESTORE_DEVICE | AGENT_RESTORE_FORCE) < 0)
            goto out;
        written = final[i];
    }
    if (written)
        lb_fault_point("agent:restore-devices-written");
    if (marker) {
        /* Ours if it exists (an interrupted run of this restore); never
         * through a link someone put in its place. */
        int fd =
            open(marker, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 || fsync(fd) < 0) {
            lb_error(errno, "create %s", marker);
            if (fd >= 0)
                close(fd);
            goto out;
        }
        close(fd);
    }
    for (i = 0; i < nd; i++) {
        if (!tmp[i])
            continue;
        if (rename(tmp[i], final[i]) < 0) {
            lb_error(errno, "rename %s to %s", tmp[i], final[i]);
            goto out;
        }
        lb_fault_point("agent:restore-renamed");
    }
    ret = 0;
out:
    if (ret < 0 && written)
        lb_warn("%s was written over with the backup's disk before the "
                "restore failed: the restore did not finish",
                written);
    for (i = 0; i < nd; i++) {
        if (ret < 0 && tmp[i])
            unlink(tmp[i]);
        free(tmp[i]);
    }
    free(tmp);
    return ret;
}

/* Free bytes in dir, or UINT64_MAX if unknown. */
static uint64_t
free_bytes(const char *dir)
{
    struct statvfs sv;

    if (statvfs(dir, &sv) < 0)
        return UINT64_MAX;
    return (uint64_t)sv.f_bavail * sv.f_frsize;
}

int
agent_restore_check_space(const char *dir, uint64_t need)
{
    uint64_t have = free_bytes(dir);

    if (have != UINT64_MAX && need > have) {
        char n[16], h[16];
        lb_human_size(n, sizeof n, need);
        lb_human_size(h, sizeof h, have);
        lb_fail(ENOSPC,
                "not enough space in %s: the restore needs up to %s, "
                "%s are free",
                dir, n, h);
        lb_error_hint("free space there, or restore elsewhere with --to DIR");
        return -1;
    }
    return 0;
}
