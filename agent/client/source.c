/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Disk images read through QEMU's own block layer: a qemu-nbd child
 * (systemd socket activation, lb_nbd_start; it leaves when we do), block
 * status with "base:allocation" (data or zero) and, for --since, with
 * "qemu:allocation-depth" (in which layer of the chain an extent is
 * allocated: 1 is the top). A cluster allocated in a layer above the
 * --since layer is a change: written, zeroed or discarded alike.
 *
 * Block status is asked for large ranges and cached, so mapping a disk
 * costs a round trip per gigabyte, not per window.
 */
#include "agent/client/client.h"
#include "agent/client/nbd_dl.h"
#include "agent/client/run.h"
#include "common/json.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/io_uring.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAP_REQUEST (1ull << 30)
/* Reads in flight at most (qemu-nbd serves 16 at once; the rest wait in
 * the socket and in libnbd's queue, so that it never waits for us). */
#define READS_IN_FLIGHT 256

struct agent_source {
    struct nbd_handle *h;
    struct lb_nbd_server server; /* h's qemu-nbd */
    uint64_t size;
    char *format;
    char *chain;
    unsigned since_depth; /* 0: no --since */
    /* cached extents covering [c_off, c_end) */
    struct agent_extent *cache;
    size_t nc, capc;
    uint64_t c_off, c_end;
    /* reads issued and not yet retired: a ring of libnbd cookies (and
     * offsets, for messages), read number k at fly[k % READS_IN_FLIGHT];
     * reads_issued and reads_retired count them all, so a ticket names
     * the reads issued up to it */
    struct {
        int64_t cookie;
        uint64_t off;
    } fly[READS_IN_FLIGHT];
    uint64_t reads_issued, reads_retired;
    bool read_failed;
    /* scratch for one block status reply */
    struct {
        uint64_t end;
        uint32_t *e; /* (length, flags) pairs */
        size_t n, cap;
    } ctx[2];
};

void
agent_chain_free(struct agent_layer *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].path);
        free(l[i].format);
    }
    free(l);
}

int
agent_chain(const char *path, bool force_share, struct agent_layer **out,
            size_t *n)
{
    char *argv[8];
    int a = 0;
    CLEANUP_FREE char *json = NULL;
    struct lb_json *j;
    char err[128];
    struct agent_layer *l;

    argv[a++] = "qemu-img";
    argv[a++] = "info";
    argv[a++] = "--backing-chain";
    argv[a++] = "--output=json";
    if (force_share)
        argv[a++] = "-U"; /* the image is in use by a running QEMU */
    argv[a++] = "--";
    argv[a++] = (char *)path;
    argv[a] = NULL;
    if (agent_run_ok(argv, &json) < 0) {
        lb_error_prefix("cannot read image %s", path);
        return -1;
    }
    j = lb_json_parse(json, strlen(json), err, sizeof err);
    if (!j || j->type != LB_JSON_ARRAY || j->n == 0) {
        lb_json_free(j);
        return lb_error(0, "qemu-img info %s: unexpected output (%s)", path,
                        err);
    }
    l = lb_xcalloc(j->n, sizeof *l);
    for (size_t i = 0; i < j->n; i++) {
        const struct lb_json *e = lb_json_at(j, i);
        const char *fn = lb_json_str(lb_json_get(e, "filename"));
        const char *fmt = lb_json_str(lb_json_get(e, "format"));
        char real[PATH_MAX];

        if (!fn || !fmt ||
            lb_json_u64(lb_json_get(e, "virtual-size"), &l[i].size) < 0) {
            agent_chain_free(l, j->n);
            lb_json_free(j);
            return lb_error(0,
                            "qemu-img info %s: layer %zu has no filename, "
                            "format or size",
                            path, i);
        }
        l[i].path = lb_xstrdup(realpath(fn, real) ? real : fn);
        l[i].format = lb_xstrdup(fmt);
    }
    *n = j->n;
    *out = l;
    lb_json_free(j);
    return 0;
}

/* Escape commas for --image-opts values (QEMU doubles them). */
static char *
opts_escape(const char *s)
{
    struct lb_buf b = {0};

    for (; *s; s++) {
        lb_buf_put_u8(&b, (uint8_t)*s);
        if (*s == ',')
            lb_buf_put_u8(&b, ',');
    }
    lb_buf_put_u8(&b, 0);
    return (char *)b.data;
}

/*
 * May a full read every layer of the chain with O_DIRECT? Only where each
 * layer is a file (or device) that takes it: a layer on a filesystem
 * without O_DIRECT (tmpfs before Linux 6.6, some FUSE ones) or one QEMU
 * reaches another way (a URL) is read through the page cache as before.
 */
static bool
direct_ok(const struct agent_layer *chain, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int fd = open(chain[i].path, O_RDONLY | O_DIRECT | O_CLOEXEC);
        if (fd < 0) {
            lb_debug("%s: no O_DIRECT (%s): read through the page cache",
                     chain[i].path, strerror(errno));
            return false;
        }
        close(fd);
    }
    return true;
}

/* How qemu-nbd reads the image. */
enum read_mode { READ_CACHED, READ_DIRECT, READ_URING };

/* May this process (and so its qemu-nbd child) use io_uring? Not where
 * the kernel lacks it, a sysctl (kernel.io_uring_disabled) or a seccomp
 * filter (a container's) forbids it. Probed once. */
static bool
io_uring_ok(void)
{
    static int ok = -1;

    if (ok < 0) {
        struct io_uring_params p;
        long fd;

        memset(&p, 0, sizeof p);
        fd = syscall(__NR_io_uring_setup, 1u, &p);
        ok = fd >= 0;
        if (fd >= 0)
            close((int)fd);
        else
            lb_debug("no io_uring here (%s)", strerror(errno));
    }
    return ok;
}

/* A libnbd handle on a qemu-nbd child serving path (socket activation). */
static int
nbd_start(struct agent_source *s, const char *path, const char *since,
          bool force_share, enum read_mode mode)
{
    CLEANUP_FREE char *imgopts = NULL;
    char *argv[12];
    int a = 0;

    s->h = LN(nbd_create);
    if (!s->h)
        return lb_error(0, "libnbd: %s", LN(nbd_get_error));
    /* Every read's status is checked before its buffer is used, and the
     * server is our own qemu-nbd child: libnbd's zeroing of each read
     * buffer first (a guard for callers that ignore errors) only costs a
     * pass over all the data. */
    if (LN(nbd_set_pread_initialize, s->h, false) < 0 ||
        LN(nbd_add_meta_context, s->h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0 ||
        (since && LN(nbd_add_meta_context, s->h, "qemu:allocation-depth") < 0))
        return lb_error(0, "libnbd: %s", LN(nbd_get_error));
    argv[a++] = "qemu-nbd";
    argv[a++] = "-r";
    if (since)
        argv[a++] = "-A";
    if (force_share) {
        CLEANUP_FREE char *esc = opts_escape(path);
        imgopts = lb_xasprintf("driver=%s,file.driver=file,file.filename=%s,"
                               "force-share=on,read-only=on%s",
                               s->format, esc,
                               mode == READ_DIRECT  ? ",cache.direct=on"
                               : mode == READ_URING ? ",file.aio=io_uring"
                                                    : "");
        argv[a++] = "--image-opts";
        argv[a++] = imgopts;
    } else {
        if (mode == READ_DIRECT)
            argv[a++] = "--cache=none";
        else if (mode == READ_URING)
            argv[a++] = "--aio=io_uring";
        argv[a++] = "-f";
        argv[a++] = s->format;
        argv[a++] = "--";
        argv[a++] = (char *)path;
    }
    argv[a] = NULL;
    if (lb_nbd_start(s->h, argv, &s->server) < 0) {
        lb_error_prefix("cannot open %s with qemu-nbd", path);
        if (strstr(lb_error_msg(), "lock"))
            lb_error_hint("another process has the image open (a running "
                          "VM?): back a VM up with `livebackup backup "
                          "DOMAIN`, or read the image as it is with "
                          "--force-share");
        else if (strstr(lb_error_msg(), "cannot run"))
            lb_error_hint("install qemu-utils (it has qemu-nbd)");
        return -1;
    }
    return 0;
}

struct agent_source *
agent_source_open(const char *path, const char *since, bool force_share)
{
    struct agent_source *s = lb_xcalloc(1, sizeof *s);
    struct agent_layer *chain = NULL;
    size_t nchain = 0;
    struct lb_buf cs = {0};
    int64_t size;
    /* QEMU takes "a:b.qcow2" for protocol a: "./a:b.qcow2" is the file. */
    CLEANUP_FREE char *qpath =
        path[0] == '/' ? lb_xstrdup(path) : lb_xasprintf("./%s", path);

    if (access(path, R_OK) < 0) {
        lb_error(errno, "cannot read image %s", path);
        lb_error_hint("check the path and its permissions");
        goto fail;
    }
    if (agent_chain(qpath, force_share, &chain, &nchain) < 0 || nchain == 0)
        goto fail;
    for (size_t i = 0; i < nchain; i++) {
        char part[PATH_MAX + 32];
        snprintf(part, sizeof part, "%s%s (%s)", i ? " -> " : "", chain[i].path,
                 chain[i].format);
        lb_buf_append(&cs, part, strlen(part));
    }
    lb_buf_put_u8(&cs, 0);
    s->chain = (char *)cs.data;
    s->format = lb_xstrdup(chain[0].format);

    if (since) {
        char real[PATH_MAX];
        const char *want = realpath(since, real) ? real : since;
        for (size_t i = 1; i < nchain; i++)
            if (strcmp(chain[i].path, want) == 0)
                s->since_depth = (unsigned)i;
        if (s->since_depth == 0) {
            if (strcmp(chain[0].path, want) == 0)
                lb_fail(EINVAL,
                        "--since %s is the image itself, not a layer "
                        "below it",
                        since);
            else
                lb_fail(EINVAL,
                        "--since %s is not in the backing chain of "
                        "%s (%s)",
                        since, path, s->chain);
            goto fail;
        }
    }

    if (lb_nbd_load() < 0)
        goto fail;
    /* A full reads all the disk's data once: through the page cache it
     * would push out what the host's VMs use, for nothing read again (and
     * cost a fresh page for each, which on a host that hands free memory
     * back to its hypervisor is most of a cold read's time: 2.1 GB cold in
     * 3.2 s buffered, 0.9 s direct here). QEMU reads it with O_DIRECT,
     * which also sees what a writer left in the cache (the kernel writes
     * such ranges back first). An incremental reads what the guest wrote
     * since the last backup, likely still cached: through the cache, and
     * through io_uring where it can (scattered 4 KiB reads: QEMU's thread
     * pool hands each to a worker and back), else as before. */
    if (!since) {
        if (nbd_start(s, qpath, since, force_share,
                      direct_ok(chain, nchain) ? READ_DIRECT : READ_CACHED) < 0)
            goto fail;
    } else if (!io_uring_ok() ||
               nbd_start(s, qpath, since, force_share, READ_URING) < 0) {
        if (s->h) {
            lb_debug("qemu-nbd without io_uring: %s", lb_error_msg());
            lb_nbd_stop(s->h, &s->server);
            s->h = NULL;
        }
        if (nbd_start(s, qpath, since, force_share, READ_CACHED) < 0)
            goto fail;
    }
    if (LN(nbd_can_meta_context, s->h, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1 ||
        (since &&
         LN(nbd_can_meta_context, s->h, "qemu:allocation-depth") != 1)) {
        lb_error(0, "qemu-nbd does not offer block status for %s", path);
        goto fail;
    }
    size = LN(nbd_get_size, s->h);
    if (size <= 0) {
        lb_nbd_fail(&s->server, "%s: cannot get its size", path);
        goto fail;
    }
    s->size = (uint64_t)size;
    agent_chain_free(chain, nchain);
    return s;
fail:
    agent_chain_free(chain, nchain);
    agent_source_close(s);
    return NULL;
}

void
agent_source_close(struct agent_source *s)
{
    if (!s)
        return;
    lb_nbd_stop(s->h, &s->server);
    free(s->format);
    free(s->chain);
    free(s->cache);
    free(s->ctx[0].e);
    free(s->ctx[1].e);
    free(s);
}

uint64_t
agent_source_size(const struct agent_source *s)
{
    return s->size;
}

const char *
agent_source_format(const struct agent_source *s)
{
    return s->format;
}

const char *
agent_source_chain(const struct agent_source *s)
{
    return s->chain;
}

static int
extent_cb(void *user, const char *meta, uint64_t offset, uint32_t *entries,
          size_t nr, int *error)
{
    struct agent_source *s = user;
    int k = strcmp(meta, LIBNBD_CONTEXT_BASE_ALLOCATION) == 0 ? 0 : 1;
    uint64_t end = offset;

    (void)error;
    if (nr % 2)
        return 0;
    if (s->ctx[k].cap < s->ctx[k].n + nr) {
        s->ctx[k].cap = (s->ctx[k].n + nr) * 2;
        s->ctx[k].e =
            lb_xrealloc(s->ctx[k].e, s->ctx[k].cap * sizeof(uint32_t));
    }
    for (size_t i = 0; i < nr; i += 2)
        end += entries[i];
    memcpy(s->ctx[k].e + s->ctx[k].n, entries, nr * sizeof(uint32_t));
    s->ctx[k].n += nr;
    s->ctx[k].end = end;
    return 0;
}

static void
cache_push(struct agent_source *s, uint64_t off, uint64_t len, bool zero,
           bool changed)
{
    struct agent_extent *last = s->nc ? &s->cache[s->nc - 1] : NULL;

    if (last && last->off + last->len == off && last->zero == zero &&
        last->changed == changed) {
        last->len += len;
        return;
    }
    if (s->nc == s->capc || !s->cache) {
        s->capc = s->capc ? s->capc * 2 : 1024;
        s->cache = lb_xrealloc(s->cache, s->capc * sizeof *s->cache);
    }
    s->cache[s->nc++] = (struct agent_extent){off, len, zero, changed};
}

/* One block status request at off; appends merged extents to the cache. */
static int
map_more(struct agent_source *s, uint64_t off)
{
    uint64_t count = LB_MIN(MAP_REQUEST, s->size - off);
    uint64_t end, pos;
    size_t ia = 0, ib = 0;
    uint64_t left_a = 0, left_b = 0;
    uint32_t fa = 0, fb = 0;

    s->ctx[0].n = s->ctx[1].n = 0;
    if (LN(nbd_block_status, s->h, count, off,
           (nbd_extent_callback){.callback = extent_cb, .user_data = s}, 0) < 0)
        return lb_nbd_fail(&s->server, "block status at %llu",
                           (unsigned long long)off);
    if (s->ctx[0].n == 0 || (s->since_depth && s->ctx[1].n == 0))
        return lb_error(0, "qemu-nbd returned no block status at %llu",
                        (unsigned long long)off);
    end = s->ctx[0].end;
    if (s->since_depth)
        end = LB_MIN(end, s->ctx[1].end);
    end = LB_MIN(end, s->size);
    if (end <= off)
        return lb_error(0, "qemu-nbd returned empty block status");
    /* Walk both extent lists at once, cutting at every boundary. */
    for (pos = off; pos < end;) {
        uint64_t step;
        if (left_a == 0) {
            left_a = s->ctx[0].e[ia];
            fa = s->ctx[0].e[ia + 1];
            ia += 2;
        }
        if (s->since_depth && left_b == 0) {
            left_b = s->ctx[1].e[ib];
            fb = s->ctx[1].e[ib + 1];
            ib += 2;
        }
        step = LB_MIN(left_a, end - pos);
        if (s->since_depth)
            step = LB_MIN(step, left_b);
        if (step == 0)
            return lb_error(0, "qemu-nbd returned a zero-length extent");
        cache_push(s, pos, step, (fa & LIBNBD_STATE_ZERO) != 0,
                   !s->since_depth || (fb >= 1 && fb <= s->since_depth));
        pos += step;
        left_a -= step;
        if (s->since_depth)
            left_b -= step;
    }
    s->c_end = end;
    return 0;
}

int
agent_source_map(struct agent_source *s, uint64_t off, uint64_t len,
                 struct agent_extent **out, size_t *n, size_t *cap)
{
    uint64_t end = LB_MIN(off + len, s->size);
    size_t i;

    *n = 0;
    if (off < s->c_off || off >= s->c_end) {
        s->nc = 0;
        s->c_off = s->c_end = off;
    } else {
        /* Drop cached extents that end before off. */
        for (i = 0; i < s->nc && s->cache[i].off + s->cache[i].len <= off; i++)
            ;
        if (i) {
            memmove(s->cache, s->cache + i, (s->nc - i) * sizeof *s->cache);
            s->nc -= i;
            s->c_off = s->nc ? s->cache[0].off : s->c_end;
        }
    }
    while (s->c_end < end)
        if (map_more(s, s->c_end) < 0)
            return -1;
    for (i = 0; i < s->nc && s->cache[i].off < end; i++) {
        struct agent_extent e = s->cache[i];
        uint64_t a = LB_MAX(e.off, off), b = LB_MIN(e.off + e.len, end);
        if (b <= a)
            continue;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            *out = lb_xrealloc(*out, *cap * sizeof **out);
        }
        (*out)[(*n)++] = (struct agent_extent){a, b - a, e.zero, e.changed};
    }
    return 0;
}

/* Wait for the oldest read in flight and retire it. */
static int
retire_oldest(struct agent_source *s)
{
    int64_t cookie = s->fly[s->reads_retired % READS_IN_FLIGHT].cookie;
    uint64_t off = s->fly[s->reads_retired % READS_IN_FLIGHT].off;
    int done;

    while ((done = LN(nbd_aio_command_completed, s->h, cookie)) == 0)
        if (LN(nbd_poll, s->h, -1) < 0) {
            done = -1;
            break;
        }
    s->reads_retired++;
    if (done < 0 && !s->read_failed) {
        s->read_failed = true;
        return lb_nbd_fail(&s->server, "read at offset %llu",
                           (unsigned long long)off);
    }
    return 0;
}

int
agent_source_issue(struct agent_source *s, const struct agent_read *r, size_t n,
                   uint64_t *ticket)
{
    for (size_t i = 0; i < n; i++) {
        int64_t cookie;

        if (s->reads_issued - s->reads_retired == READS_IN_FLIGHT &&
            retire_oldest(s) < 0)
            return -1;
        cookie = LN(nbd_aio_pread, s->h, r[i].buf, r[i].len, r[i].off,
                    NBD_NULL_COMPLETION, 0);
        if (cookie < 0) {
            s->read_failed = true;
            return lb_nbd_fail(&s->server, "read at offset %llu",
                               (unsigned long long)r[i].off);
        }
        s->fly[s->reads_issued % READS_IN_FLIGHT].cookie = cookie;
        s->fly[s->reads_issued % READS_IN_FLIGHT].off = r[i].off;
        s->reads_issued++;
    }
    /* libnbd has sent what the socket took; the rest goes out as we next
     * wait (qemu-nbd reads no more than 16 requests ahead anyway). */
    *ticket = s->reads_issued;
    return 0;
}

int
agent_source_wait(struct agent_source *s, uint64_t ticket)
{
    if (ticket > s->reads_issued)
        ticket = s->reads_issued;
    while (s->reads_retired < ticket)
        if (retire_oldest(s) < 0)
            return -1;
    /* A read failed before: every later wait fails too (its message was
     * given then). */
    return s->read_failed ? -1 : 0;
}

int
agent_source_pread(struct agent_source *s, void *buf, size_t len, uint64_t off)
{
    if (LN(nbd_pread, s->h, buf, len, off, 0) < 0)
        return lb_nbd_fail(&s->server, "read at offset %llu",
                           (unsigned long long)off);
    return 0;
}
