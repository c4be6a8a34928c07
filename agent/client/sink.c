/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The output image of a restore (see sink.h): raw through pwrite, qcow2
 * through a qemu-nbd child (lb_nbd_start) with asynchronous writes.
 */
#include "agent/client/sink.h"
#include "agent/client/nbd_dl.h"
#include "agent/client/run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a partial file, removed when a signal ends the process ------------ */

/* Ctrl-C or a SIGTERM ended a restore by the signal's default action,
 * which left its hidden partial file, as large as what was written, until
 * a restore to the same path. The open sinks record theirs here; the
 * handler removes them (unlink is async-signal-safe) and ends the process
 * as the signal would have. A restore has one sink open at a time. */
#define SINK_MAX_OPEN 8
static struct {
    volatile sig_atomic_t used;
    char path[PATH_MAX];
} open_partial[SINK_MAX_OPEN];

static void
partial_signal(int sig)
{
    for (int i = 0; i < SINK_MAX_OPEN; i++)
        if (open_partial[i].used)
            unlink(open_partial[i].path);
    signal(sig, SIG_DFL);
    raise(sig); /* delivered once the handler returns */
}

/* For the signals that end a process by default and are not ignored
 * (nohup, a background job's SIGINT: left as they are). */
static void
partial_handlers(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};

    for (size_t i = 0; i < LB_ARRAY_SIZE(sigs); i++) {
        struct sigaction old, sa = {.sa_handler = partial_signal};
        sigemptyset(&sa.sa_mask);
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
            sigaction(sigs[i], &sa, NULL);
    }
}

/* Record path (-1: no free slot, it stays unrecorded) or forget slot. */
static int
partial_record(const char *path)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    size_t len = strlen(path);

    pthread_once(&once, partial_handlers);
    if (len >= PATH_MAX)
        return -1;
    for (int i = 0; i < SINK_MAX_OPEN; i++)
        if (!open_partial[i].used) {
            memcpy(open_partial[i].path, path, len + 1);
            __atomic_store_n(&open_partial[i].used, 1, __ATOMIC_RELEASE);
            return i;
        }
    return -1;
}

static void
partial_forget(int slot)
{
    if (slot >= 0)
        __atomic_store_n(&open_partial[slot].used, 0, __ATOMIC_RELEASE);
}

/* Create the partial file beside the output, exclusively (never through
 * a link planted under its name); its errors name what the user asked
 * for, not only our temporary name. */
static int
create_partial(struct agent_sink *k, const char *dir)
{
    int fd = open(k->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
    struct stat sb;

    if (fd >= 0) {
        k->slot = partial_record(k->tmp);
        return fd;
    }
    if (stat(dir, &sb) < 0)
        return lb_error(errno, "cannot restore to %s: %s", k->dst, dir);
    return lb_error(errno, "cannot restore to %s: create %s", k->dst, k->tmp);
}

/* The image is written beside out and renamed onto it when complete:
 * onto a directory that fails once everything was written, and onto a
 * block device's name it would put a file in /dev where the device was,
 * in memory, while the disk itself is never written. Said before anything
 * is read. */
static int
not_a_file(const char *out, const struct stat *sb)
{
    if (S_ISDIR(sb->st_mode)) {
        lb_fail(EISDIR, "%s is a directory", out);
        lb_error_hint("--to names the image file to write, e.g. %s/vda.raw",
                      out);
    } else if (S_ISBLK(sb->st_mode)) {
        lb_fail(ENOTSUP,
                "%s is a block device: this restore writes image "
                "files",
                out);
        lb_error_hint("restore-image --to %s writes a disk onto it", out);
    } else {
        lb_fail(ENOTSUP,
                "%s is not a regular file: a restore writes an image "
                "file there",
                out);
    }
    return -1;
}

/* A process (not us) that has the device rdev open, 0 if none: QEMU
 * running a domain on it does not hold it exclusively. */
static long
device_user(dev_t rdev)
{
    DIR *proc = opendir("/proc");
    struct dirent *e;
    long found = 0;

    if (!proc)
        return 0;
    while (!found && (e = readdir(proc))) {
        char fds[64], path[320];
        long pid = strtol(e->d_name, NULL, 10);
        struct dirent *f;
        struct stat sb;
        DIR *d;

        if (pid <= 0 || pid == (long)getpid())
            continue;
        snprintf(fds, sizeof fds, "/proc/%ld/fd", pid);
        if (!(d = opendir(fds)))
            continue; /* gone, or not ours to see */
        while (!found && (f = readdir(d))) {
            snprintf(path, sizeof path, "%s/%s", fds, f->d_name);
            if (f->d_name[0] != '.' && stat(path, &sb) == 0 &&
                S_ISBLK(sb.st_mode) && sb.st_rdev == rdev)
                found = pid;
        }
        closedir(d);
    }
    closedir(proc);
    return found;
}

/* A block device the user named, written in place: raw, with --force
 * (its data is lost), not in use (mounted, held by device-mapper or md,
 * or open in a process such as a domain's QEMU), and large enough. The
 * device opened for writing (O_EXCL: no one else may open it so while we
 * hold it), its size in *have; or -1. */
static int
device_open(const char *out, const struct stat *sb, enum agent_format fmt,
            uint64_t size, unsigned flags, uint64_t *have)
{
    long pid;
    int fd;

    if (fmt != AGENT_FMT_RAW)
        return lb_fail(ENOTSUP,
                       "%s is a block device: a disk is written "
                       "onto one raw (--format raw)",
                       out);
    if (!(flags & AGENT_RESTORE_FORCE)) {
        lb_fail(EEXIST,
                "%s is a block device: the restore would write over "
                "it",
                out);
        lb_error_hint("add --force to write the disk onto %s (what it holds "
                      "is lost)",
                      out);
        return -1;
    }
    /* O_EXCL: fails while it is mounted or another device holds it */
    fd = open(out, O_WRONLY | O_EXCL | O_CLOEXEC);
    if (fd < 0 && errno == EBUSY)
        return lb_fail(EBUSY,
                       "%s is in use (mounted, or part of another "
                       "device)",
                       out);
    if (fd < 0)
        return lb_error(errno, "open %s", out);
    if ((pid = device_user(sb->st_rdev)) != 0) {
        char path[64], comm[64] = "";
        FILE *f;
        snprintf(path, sizeof path, "/proc/%ld/comm", pid);
        if ((f = fopen(path, "re"))) {
            if (!fgets(comm, sizeof comm, f))
                comm[0] = '\0';
            comm[strcspn(comm, "\n")] = '\0';
            fclose(f);
        }
        lb_fail(EBUSY, "%s is open in process %ld (%s)", out, pid,
                comm[0] ? comm : "?");
        lb_error_hint("stop what uses it (a domain on it: shut it off) "
                      "first");
        close(fd);
        return -1;
    }
    if (ioctl(fd, BLKGETSIZE64, have) < 0) {
        lb_error(errno, "size of %s", out);
        close(fd);
        return -1;
    }
    if (*have < size) {
        lb_fail(ENOSPC, "%s holds %llu bytes, the disk %llu", out,
                (unsigned long long)*have, (unsigned long long)size);
        close(fd);
        return -1;
    }
    return fd;
}

int
agent_restore_device_check(const char *path, uint64_t size)
{
    uint64_t have = 0;
    struct stat sb;
    int fd;

    if (stat(path, &sb) < 0)
        return lb_error(errno, "%s", path);
    if (!S_ISBLK(sb.st_mode))
        return lb_fail(ENOTBLK, "%s is not a block device", path);
    fd =
        device_open(path, &sb, AGENT_FMT_RAW, size, AGENT_RESTORE_FORCE, &have);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int
open_device(struct agent_sink *k, const char *out, const struct stat *sb,
            uint64_t size, unsigned flags)
{
    uint64_t have = 0;

    k->fd = device_open(out, sb, k->fmt, size, flags, &have);
    if (k->fd < 0)
        return -1;
    if (have > size)
        lb_info("%s is larger than the disk (%llu bytes, the disk %llu): "
                "what lies past the disk's end is left as it is",
                out, (unsigned long long)have, (unsigned long long)size);
    k->device = true;
    k->dst = lb_xstrdup(out);
    k->tmp = lb_xstrdup(out);
    return 0;
}

int
agent_sink_open(struct agent_sink *k, const char *out, enum agent_format fmt,
                uint64_t size, unsigned flags)
{
    CLEANUP_FREE char *copy = lb_xstrdup(out);
    CLEANUP_FREE char *copy2 = lb_xstrdup(out);
    const char *dir = dirname(copy), *base = basename(copy2);
    struct stat sb;

    memset(k, 0, sizeof *k);
    k->fd = -1;
    k->slot = -1;
    k->fmt = fmt;
    if (stat(out, &sb) == 0) {
        if (S_ISBLK(sb.st_mode) && (flags & AGENT_RESTORE_DEVICE))
            return open_device(k, out, &sb, size, flags);
        if (!S_ISREG(sb.st_mode))
            return not_a_file(out, &sb);
        if (!(flags & AGENT_RESTORE_FORCE)) {
            lb_fail(EEXIST, "%s already exists", out);
            lb_error_hint("choose another path, or replace it with --force");
            return -1;
        }
    }
    k->dst = lb_xstrdup(out);
    k->tmp = lb_xasprintf("%s/.%s.livebackup-partial", dir, base);
    unlink(k->tmp); /* left by an interrupted restore */
    if (fmt == AGENT_FMT_RAW) {
        k->fd = create_partial(k, dir);
        if (k->fd < 0)
            return -1;
        if (ftruncate(k->fd, (off_t)size) < 0)
            return lb_error(errno, "resize %s", k->tmp);
        return 0;
    }
    {
        char sz[32];
        char *create[] = {"qemu-img", "create", "-q", "-f", "qcow2",
                          "--",       k->tmp,   sz,   NULL};
        char *serve[] = {"qemu-nbd", "-f",   "qcow2", "--cache=writeback",
                         "--",       k->tmp, NULL};
        if (lb_nbd_load() < 0)
            return -1;
        snprintf(sz, sizeof sz, "%llu", (unsigned long long)size);
        /* Created here first: qemu-img then writes over our own file. */
        k->fd = create_partial(k, dir);
        if (k->fd < 0)
            return -1;
        close(k->fd);
        k->fd = -1;
        if (agent_run_ok(create, NULL) < 0)
            return -1;
        k->h = LN(nbd_create);
        if (!k->h)
            return lb_error(0, "libnbd: %s", LN(nbd_get_error));
        if (lb_nbd_start(k->h, serve, &k->server) < 0) {
            lb_error_prefix("qemu-nbd on %s", k->tmp);
            return -1;
        }
        /* only to start its write-back early (agent_sink_writeback) */
        k->fd = open(k->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    }
    return 0;
}

/* A qcow2 write's completion: one write less pending for its window. The
 * callback's type is libnbd's (error is in-out). */
struct wdone {
    struct agent_sink *k;
    unsigned *pending;
    uint64_t off;
};

static int
write_done(void *user, int *error) // cppcheck-suppress constParameter
{
    struct wdone *w = user;

    if (*error && !w->k->write_error) {
        w->k->write_error = *error;
        w->k->error_off = w->off;
    }
    (*w->pending)--;
    return 1; /* retire the command */
}

static void
write_done_free(void *user)
{
    free(user);
}

int
agent_sink_write(struct agent_sink *k, const uint8_t *buf, size_t len,
                 uint64_t off, unsigned *pending)
{
    struct wdone *w;

    if (k->fmt == AGENT_FMT_RAW) {
        __atomic_store_n(&k->touched, true, __ATOMIC_RELAXED);
        if (lb_pwrite_full(k->fd, buf, len, (off_t)off) < 0)
            return lb_error(errno, "write %s", k->tmp);
        return 0;
    }
    w = lb_xmalloc(sizeof *w);
    *w = (struct wdone){k, pending, off};
    (*pending)++;
    if (LN(nbd_aio_pwrite, k->h, buf, len, off,
           (nbd_completion_callback){
               .callback = write_done, .user_data = w, .free = write_done_free},
           0) < 0) {
        (*pending)--;
        return lb_nbd_fail(&k->server, "write %s", k->tmp);
    }
    return 0;
}

/* Below this, zeros are written like data (through the page cache, with
 * the window's other blocks); from it on the device is asked to zero the
 * range without the bytes (device_zero_range). */
#define SINK_ZEROOUT_MIN (1u << 20)

/*
 * Zero [off, off+len) of a device (whole sectors). First as a punched hole
 * (fallocate PUNCH_HOLE on a block device: a write-zeroes that may
 * deallocate, so a thin LV or a loop device over a sparse file stays
 * thin; it reads zeros after, or fails), then, where the device cannot
 * (EOPNOTSUPP: remembered; EINVAL: a range of sectors that is not one of
 * its logical blocks), BLKZEROOUT, which keeps the range allocated and
 * falls back to writing zeros in the kernel.
 */
static int
device_zero_range(struct agent_sink *k, uint64_t off, uint64_t len)
{
    uint64_t range[2] = {off, len};

    if (!__atomic_load_n(&k->no_punch, __ATOMIC_RELAXED)) {
        if (fallocate(k->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      (off_t)off, (off_t)len) == 0)
            return 0;
        if (errno == EOPNOTSUPP || errno == ENOSYS)
            __atomic_store_n(&k->no_punch, true, __ATOMIC_RELAXED);
        else if (errno != EINVAL) /* EINVAL: not whole logical blocks */
            return -1;
    }
    return ioctl(k->fd, BLKZEROOUT, range);
}

int
agent_sink_zero(struct agent_sink *k, uint64_t off, uint64_t len)
{
    static const uint8_t zeros[64 << 10];
    /* whole sectors to the device; a disk's end may not be one */
    uint64_t whole = len >= SINK_ZEROOUT_MIN ? len & ~511ull : 0;

    if (!k->device || len == 0)
        return 0;
    __atomic_store_n(&k->touched, true, __ATOMIC_RELAXED);
    if (whole && device_zero_range(k, off, whole) < 0)
        return lb_error(errno, "write zeros to %s at offset %llu", k->dst,
                        (unsigned long long)off);
    for (uint64_t o = off + whole, end = off + len; o < end;) {
        size_t n = (size_t)LB_MIN(end - o, (uint64_t)sizeof zeros);
        if (lb_pwrite_full(k->fd, zeros, n, (off_t)o) < 0)
            return lb_error(errno, "write %s", k->dst);
        o += n;
    }
    return 0;
}

int
agent_sink_wait(struct agent_sink *k, int left)
{
    if (!k->h)
        return 0;
    while (LN(nbd_aio_in_flight, k->h) > left)
        if (LN(nbd_poll, k->h, -1) < 0)
            return lb_nbd_fail(&k->server, "write %s", k->tmp);
    if (k->write_error)
        return lb_error(k->write_error, "write %s at offset %llu", k->tmp,
                        (unsigned long long)k->error_off);
    return 0;
}

int
agent_sink_close(struct agent_sink *k, bool commit)
{
    int r = 0;

    if (k->h) {
        if (commit && agent_sink_wait(k, 0) < 0)
            r = -1;
        else if (commit &&
                 (LN(nbd_flush, k->h, 0) < 0 || LN(nbd_shutdown, k->h, 0) < 0))
            r = lb_nbd_fail(&k->server, "flush %s", k->tmp);
        /* qemu-nbd has written everything back when it has exited */
        if (lb_nbd_stop(k->h, &k->server) != 0 && r == 0 && commit)
            r = lb_fail(EIO, "qemu-nbd on %s did not exit cleanly", k->tmp);
        k->h = NULL;
        if (r == 0 && commit && k->fd < 0) {
            k->fd = open(k->tmp, O_RDONLY | O_CLOEXEC);
            if (k->fd < 0)
                r = lb_error(errno, "open %s", k->tmp);
        }
    }
    if (k->fd >= 0) {
        if (r == 0 && commit && fsync(k->fd) < 0)
            r = lb_error(errno, "fsync %s", k->tmp);
        close(k->fd);
        k->fd = -1;
    }
    if (k->device) {
        /* nothing to rename or remove: it was written in place */
        if ((r < 0 || !commit) && k->touched)
            lb_warn("%s is partly written: the restore did not finish", k->dst);
    } else if (r == 0 && commit) {
        CLEANUP_FREE char *copy = lb_xstrdup(k->dst);
        if (rename(k->tmp, k->dst) < 0)
            r = lb_error(errno, "rename %s to %s", k->tmp, k->dst);
        else
            lb_fsync_dir(dirname(copy));
    }
    if ((r < 0 || !commit) && k->tmp && !k->device)
        unlink(k->tmp);
    /* (a signal before this unlinks a name already renamed: nothing) */
    partial_forget(k->slot);
    k->slot = -1;
    free(k->tmp);
    free(k->dst);
    k->tmp = k->dst = NULL;
    return r;
}

/*
 * How much of the image, behind the end of what was written, may stay in
 * the page cache. A restore writes each page once and reads none back: a
 * page cache full of it would only push out what the host's other users
 * (its running VMs) read, and on a host whose fresh memory is slow to
 * fault in (a VM with free page reporting, such as the CI machines) each
 * new page costs more than writing it: a 2 GiB write and fdatasync took
 * 4.8-5.6 s there, 1.3-1.4 s with the pages behind 64 MiB dropped (a
 * window of 256 MiB: 2.1-2.2 s).
 */
#define SINK_CACHE_LAG (64u << 20)

int
agent_sink_writeback(struct agent_sink *k, uint64_t off, uint64_t len)
{
    uint64_t end = off + len, upto;
    struct stat sb;

    if (k->fd < 0)
        return 0;
    if (k->fmt == AGENT_FMT_RAW) {
        sync_file_range(k->fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
    } else {
        /* qemu-nbd writes the image through the page cache, where in the
         * file is its business (qcow2 appends its clusters as they come):
         * start the write-back of all it wrote so far. */
        sync_file_range(k->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        if (fstat(k->fd, &sb) < 0)
            return lb_error(errno, "stat %s", k->tmp);
        end = (uint64_t)sb.st_size;
    }
    if (end < k->evicted + 2 * (uint64_t)SINK_CACHE_LAG)
        return 0;
    upto = (end - SINK_CACHE_LAG) & ~(uint64_t)4095;
    /* Its own file's cursor of write-back errors moves here: one seen
     * now is the restore's failure, the final fsync would not see it. */
    if (sync_file_range(k->fd, (off_t)k->evicted, (off_t)(upto - k->evicted),
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                            SYNC_FILE_RANGE_WAIT_AFTER) < 0)
        return lb_error(errno, "write %s", k->tmp);
    /* Pages written again meanwhile (a window written out of order) are
     * dirty: dropping skips them, the final fsync writes them. */
    (void)posix_fadvise(k->fd, (off_t)k->evicted, (off_t)(upto - k->evicted),
                        POSIX_FADV_DONTNEED);
    k->evicted = upto;
    return 0;
}

int
agent_sink_poll(struct agent_sink *k)
{
    if (LN(nbd_poll, k->h, -1) < 0)
        return lb_nbd_fail(&k->server, "write %s", k->tmp);
    return agent_sink_wait(k, INT_MAX);
}
