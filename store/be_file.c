/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The file backend's objects (backend.h): an object is a regular file
 * under the repository directory, named by its object name. Creates are
 * temp file + fdatasync + link (EEXIST: it existed) + fsync of the
 * directory; replaces go by rename. Locks are flock(2) of a file, released
 * by the kernel when the holder dies (no lease to renew). gc's conditional
 * remove moves the file aside, reads its mtime again and puts it back if
 * it was touched meanwhile (the same inode: a touch before the move shows
 * after it).
 */
#include "store/be_file_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

/* Object names never climb out of the directory. */
static int
name_ok(const struct be_file *b, const char *obj)
{
    if (!*obj || obj[0] == '/' || strstr(obj, "..") != NULL)
        return lb_fail(EINVAL, "bad object name '%s' in %s", obj, b->be.where);
    return 0;
}

static ssize_t
file_read(struct store_be *be, const char *obj, void *buf, size_t len,
          uint64_t off)
{
    struct be_file *b = to_file(be);
    CLEANUP_CLOSE int fd = -1;
    ssize_t n;

    if (name_ok(b, obj) < 0)
        return -1;
    fd = openat(b->dir_fd, obj, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT
                   ? lb_fail(ENOENT, "no object %s in %s", obj, be->where)
                   : lb_error(errno == ELOOP ? EPROTO : errno, "open %s/%s",
                              be->where, obj);
    n = lb_pread_full(fd, buf, len, (off_t)off);
    if (n < 0)
        return lb_error(errno, "read %s/%s", be->where, obj);
    return n;
}

static int
file_stat(struct store_be *be, const char *obj, uint64_t *size, int64_t *mtime)
{
    struct be_file *b = to_file(be);
    struct stat sb;

    if (name_ok(b, obj) < 0)
        return -1;
    if (fstatat(b->dir_fd, obj, &sb, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT
                   ? lb_fail(ENOENT, "no object %s in %s", obj, be->where)
                   : lb_error(errno, "stat %s/%s", be->where, obj);
    if (!S_ISREG(sb.st_mode))
        return lb_fail(EPROTO, "%s/%s is not a file", be->where, obj);
    if (size)
        *size = (uint64_t)sb.st_size;
    if (mtime)
        *mtime = (int64_t)sb.st_mtime;
    return 0;
}

static int
file_touch(struct store_be *be, const char *obj)
{
    struct be_file *b = to_file(be);

    if (name_ok(b, obj) < 0)
        return -1;
    if (utimensat(b->dir_fd, obj, NULL, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT
                   ? lb_fail(ENOENT, "no object %s in %s", obj, be->where)
                   : lb_error(errno, "touch %s/%s", be->where, obj);
    return 0;
}

static int
file_open(struct store_be *be, const char *obj)
{
    struct be_file *b = to_file(be);
    int fd;

    if (name_ok(b, obj) < 0)
        return -1;
    fd = openat(b->dir_fd, obj, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT
                   ? lb_fail(ENOENT, "no object %s in %s", obj, be->where)
                   : lb_error(errno, "open %s/%s", be->where, obj);
    return fd;
}

static void
file_prefetch(struct store_be *be, const char *obj)
{
    struct be_file *b = to_file(be);
    int fd;

    if (!*obj || obj[0] == '/' || strstr(obj, "..") != NULL)
        return;
    fd = openat(b->dir_fd, obj, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
    close(fd);
}

/* One object of a batch: open, fstat, touch (futimens: the same inode
 * whose header is read) unless its mtime is at or after the session's
 * start already (created or touched since: gc's cutoff is before it, and
 * a touch would only dirty the inode for the commit's syncfs to write),
 * pread. err: ENOENT, or EPROTO for what is not a regular file (a
 * symlink, a directory). */
static int
file_head_one(struct be_file *b, const char *obj, bool touch, uint8_t *head,
              size_t head_len, size_t *got, uint64_t *size, int *err)
{
    CLEANUP_CLOSE int fd = -1;
    struct stat sb;
    ssize_t n;

    if (name_ok(b, obj) < 0)
        return -1;
    fd = openat(b->dir_fd, obj, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ELOOP) {
            *err = errno == ENOENT ? ENOENT : EPROTO;
            return 0;
        }
        return lb_error(errno, "open %s/%s", b->be.where, obj);
    }
    if (fstat(fd, &sb) < 0)
        return lb_error(errno, "stat %s/%s", b->be.where, obj);
    if (!S_ISREG(sb.st_mode)) {
        *err = EPROTO;
        return 0;
    }
    if (touch &&
        (b->session_start == 0 || (int64_t)sb.st_mtime < b->session_start) &&
        futimens(fd, NULL) < 0)
        return lb_error(errno, "touch %s/%s (gc must see it is in use)",
                        b->be.where, obj);
    n = lb_pread_full(fd, head, head_len, 0);
    if (n < 0)
        return lb_error(errno, "read %s/%s", b->be.where, obj);
    *got = (size_t)n;
    *size = (uint64_t)sb.st_size;
    return 0;
}

/* Work on a batch of objects, shared by up to PAR_THREADS threads (this
 * one among them): on a cold page cache each object is a few dependent
 * reads from disk (directory, inode, first block) that one thread would
 * wait for one after the other, where the disk serves many at once.
 * Below per_thread objects a thread, fewer. */
#define PAR_THREADS 16

struct par {
    int (*fn)(void *arg, size_t i); /* -1: the batch fails, others stop */
    void *arg;
    size_t n;
    atomic_size_t next;   /* the next object to work on */
    atomic_bool failed;   /* one failed: the others stop */
    pthread_mutex_t lock; /* saved: the first failure's error */
    bool saved_set;
    struct lb_error_saved saved;
};

static void *
par_worker(void *arg)
{
    struct par *p = arg;

    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n || atomic_load(&p->failed))
            return NULL;
        if (p->fn(p->arg, i) < 0) {
            pthread_mutex_lock(&p->lock);
            if (!p->saved_set)
                lb_error_save(&p->saved);
            p->saved_set = true;
            pthread_mutex_unlock(&p->lock);
            atomic_store(&p->failed, true);
            return NULL;
        }
    }
}

/* fn(arg, i) for every i below n: 0, or -1 with the first failure's
 * error (the objects after it may not have been worked on). */
static int
par_each(size_t n, size_t per_thread, int (*fn)(void *arg, size_t i), void *arg)
{
    struct par *p = lb_xcalloc(1, sizeof *p);
    pthread_t th[PAR_THREADS];
    size_t want = 1; /* threads, this one included: per_thread objects each */
    size_t nth = 0;
    int r = 0;

    while (want < PAR_THREADS && want * per_thread < n)
        want++;

    p->fn = fn;
    p->arg = arg;
    p->n = n;
    atomic_init(&p->next, 0);
    atomic_init(&p->failed, false);
    pthread_mutex_init(&p->lock, NULL);
    /* a thread that cannot start is none */
    while (nth + 1 < want && pthread_create(&th[nth], NULL, par_worker, p) == 0)
        nth++;
    par_worker(p);
    for (size_t i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    if (p->saved_set)
        r = lb_error_restore(&p->saved);
    pthread_mutex_destroy(&p->lock);
    free(p);
    return r;
}

/* A QUERY's lookups: 16 a thread (each an open, a touch, a read). */
#define HEAD_PER_THREAD 16

struct head_batch {
    struct be_file *b;
    const char *const *objs;
    bool touch;
    uint8_t *head;
    size_t head_len;
    size_t *got;
    uint64_t *size;
    int *err;
};

static int
head_at(void *arg, size_t i)
{
    struct head_batch *h = arg;

    h->err[i] = 0;
    h->got[i] = 0;
    h->size[i] = 0;
    return file_head_one(h->b, h->objs[i], h->touch, h->head + i * h->head_len,
                         h->head_len, &h->got[i], &h->size[i], &h->err[i]);
}

static int
file_head_many(struct store_be *be, const char *const *objs, size_t n,
               bool touch, uint8_t *head, size_t head_len, size_t *got,
               uint64_t *size, int *err)
{
    struct head_batch h = {.b = to_file(be),
                           .objs = objs,
                           .touch = touch,
                           .head = head,
                           .head_len = head_len,
                           .got = got,
                           .size = size,
                           .err = err};

    return par_each(n, HEAD_PER_THREAD, head_at, &h);
}

/* A listing's reads (manifests' headers, then their meta blocks): 32 a
 * thread, each an open and one small read. Measured on 1000 backups:
 * with 4 a thread a warm listing took 23 ms instead of 18-20 (16 threads
 * on 2 CPUs for reads the page cache answers), and 32 kept most of the
 * cold gain (145 -> 90 ms). */
#define READ_PER_THREAD 32

struct read_batch {
    struct store_be *be;
    const char *const *objs;
    uint8_t *const *bufs;
    const size_t *lens;
    const uint64_t *offs;
    ssize_t *got;
};

static int
read_at(void *arg, size_t i)
{
    struct read_batch *r = arg;

    r->got[i] = store_be_read_one(r->be, r->objs[i], r->bufs[i], r->lens[i],
                                  r->offs[i]);
    return 0;
}

static void
file_read_many(struct store_be *be, const char *const *objs, size_t n,
               uint8_t *const *bufs, const size_t *lens, const uint64_t *offs,
               ssize_t *got)
{
    struct read_batch r = {.be = be,
                           .objs = objs,
                           .bufs = bufs,
                           .lens = lens,
                           .offs = offs,
                           .got = got};

    (void)par_each(n, READ_PER_THREAD, read_at, &r);
}

/* The directory part of obj ("." if none) and its fsync. */
int
be_file_sync_parent(struct be_file *b, const char *obj)
{
    CLEANUP_FREE char *dir = lb_xasprintf("%s/%s", b->be.where, obj);

    *strrchr(dir, '/') = '\0';
    return lb_fsync_dir(dir);
}

/* Create the file name (relative) exclusively, for writing; with mkdirs,
 * the directory of obj (name's too) made on first use (keys/, ids/).
 * A descriptor, or -1 with errno set. */
static int
open_new(struct be_file *b, const char *name, const char *obj, bool mkdirs)
{
    int fd =
        openat(b->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd < 0 && errno == ENOENT && mkdirs && strchr(obj, '/')) {
        CLEANUP_FREE char *dir = lb_xasprintf("%s/%s", b->be.where, obj);
        *strrchr(dir, '/') = '\0';
        if (lb_mkdir_p(dir, 0700) == 0)
            fd = openat(b->dir_fd, name,
                        O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        else
            errno = lb_error_errno();
    }
    return fd;
}

/* A temp file beside obj, written and fdatasync'd: its name in tmp. */
static int
write_temp(struct be_file *b, const char *obj, const void *p, size_t len,
           bool mkdirs, char **tmp)
{
    unsigned long n;
    int fd, e = 0;

    pthread_mutex_lock(&b->lock);
    n = ++b->tmp_seq;
    pthread_mutex_unlock(&b->lock);
    *tmp = lb_xasprintf("%s.tmp-%ld-%lu", obj, (long)getpid(), n);
    fd = open_new(b, *tmp, obj, mkdirs);
    if (fd < 0) {
        e = errno;
        free(*tmp);
        *tmp = NULL;
        return lb_error(e, "create %s/%s", b->be.where, obj);
    }
    if (lb_write_full(fd, p, len) < 0 || fdatasync(fd) < 0)
        e = errno;
    if (close(fd) < 0 && !e)
        e = errno;
    if (e) {
        unlinkat(b->dir_fd, *tmp, 0);
        free(*tmp);
        *tmp = NULL;
        return lb_error(e, "write %s/%s", b->be.where, obj);
    }
    return 0;
}

static int
file_create(struct store_be *be, const char *obj, const void *p, size_t len)
{
    struct be_file *b = to_file(be);
    CLEANUP_FREE char *tmp = NULL;
    int e;

    if (name_ok(b, obj) < 0 || write_temp(b, obj, p, len, false, &tmp) < 0 ||
        !tmp)
        return -1;
    e = linkat(b->dir_fd, tmp, b->dir_fd, obj, 0) < 0 ? errno : 0;
    unlinkat(b->dir_fd, tmp, 0);
    if (e == EEXIST)
        return 1;
    if (e)
        return lb_error(e, "create %s/%s", be->where, obj);
    return be_file_sync_parent(b, obj);
}

static int
file_replace(struct store_be *be, const char *obj, const void *p, size_t len)
{
    struct be_file *b = to_file(be);
    CLEANUP_FREE char *tmp = NULL;

    if (name_ok(b, obj) < 0 || write_temp(b, obj, p, len, true, &tmp) < 0 ||
        !tmp)
        return -1;
    if (renameat(b->dir_fd, tmp, b->dir_fd, obj) < 0) {
        int e = errno;
        unlinkat(b->dir_fd, tmp, 0);
        return lb_error(e, "replace %s/%s", be->where, obj);
    }
    return be_file_sync_parent(b, obj);
}

static int
file_remove(struct store_be *be, const char *obj)
{
    struct be_file *b = to_file(be);

    if (name_ok(b, obj) < 0)
        return -1;
    if (unlinkat(b->dir_fd, obj, 0) < 0)
        return errno == ENOENT
                   ? lb_fail(ENOENT, "no object %s in %s", obj, be->where)
                   : lb_error(errno, "remove %s/%s", be->where, obj);
    return be_file_sync_parent(b, obj);
}

/* An empty file, no sync: a reservation is for the writers running now. */
static int
file_reserve(struct store_be *be, const char *obj)
{
    struct be_file *b = to_file(be);
    int fd;

    if (name_ok(b, obj) < 0)
        return -1;
    fd = open_new(b, obj, obj, true);
    if (fd < 0)
        return errno == EEXIST
                   ? 1
                   : lb_error(errno, "create %s/%s", be->where, obj);
    close(fd);
    return 0;
}

static void
file_unreserve(struct store_be *be, const char *obj)
{
    struct be_file *b = to_file(be);

    if (name_ok(b, obj) == 0)
        unlinkat(b->dir_fd, obj, 0);
}

/* List dir (relative, "" for the top) and below, names joined to rel. */
static int
list_dir(struct be_file *b, const char *rel, const char *prefix,
         store_be_list_fn fn, void *opaque)
{
    int fd = *rel ? openat(b->dir_fd, rel,
                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                  : dup(b->dir_fd);
    DIR *d;
    struct dirent *e;
    int r = 0;

    if (fd < 0)
        return errno == ENOENT ? 0 : lb_error(errno, "open %s", rel);
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return lb_error(errno, "open %s", rel);
    }
    rewinddir(d);
    while (r == 0 && (e = readdir(d)) != NULL) {
        CLEANUP_FREE char *name = NULL;
        size_t n;
        unsigned char type;
        if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp-") ||
            strstr(e->d_name, ".gc-"))
            continue;
        name = *rel ? lb_xasprintf("%s/%s", rel, e->d_name)
                    : lb_xstrdup(e->d_name);
        n = LB_MIN(strlen(name), strlen(prefix));
        if (strncmp(name, prefix, n) != 0)
            continue;
        type = e->d_type;
        if (type == DT_UNKNOWN) {
            /* Not every filesystem fills d_type (a missed manifest would
             * let gc sweep what it names). */
            struct stat sb;
            if (fstatat(b->dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                    continue;
                r = lb_error(errno, "stat %s/%s", b->be.where, name);
                break;
            }
            type = S_ISDIR(sb.st_mode)   ? DT_DIR
                   : S_ISREG(sb.st_mode) ? DT_REG
                                         : DT_UNKNOWN;
        }
        if (type == DT_DIR)
            r = list_dir(b, name, prefix, fn, opaque);
        else if (type == DT_REG && strlen(name) >= strlen(prefix))
            r = fn(opaque, name);
    }
    closedir(d);
    return r;
}

static int
file_list(struct store_be *be, const char *prefix, store_be_list_fn fn,
          void *opaque)
{
    return list_dir(to_file(be), "", prefix, fn, opaque);
}

/* "%020llu\n": fixed width, so a rewrite covers the whole record. */
#define COUNTER_RECORD 21

static bool
counter_parse(const char *buf, ssize_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n != COUNTER_RECORD || buf[COUNTER_RECORD - 1] != '\n')
        return false;
    for (int i = 0; i < COUNTER_RECORD - 1; i++) {
        if (buf[i] < '0' || buf[i] > '9' || lb_mul_overflow(v, 10, &v) ||
            lb_add_overflow(v, (uint64_t)(buf[i] - '0'), &v))
            return false;
    }
    *out = v;
    return true;
}

/* Read and advance under an exclusive flock of the file, held for the
 * read and the write only. No fsync: the commit's barrier (syncfs) makes
 * it durable before the manifest that holds the number. */
static int
file_counter_next(struct store_be *be, const char *obj, store_be_floor_fn floor,
                  void *opaque, uint64_t *v)
{
    struct be_file *b = to_file(be);
    CLEANUP_CLOSE int fd = -1;
    char buf[COUNTER_RECORD + 1];
    uint64_t cur = 0;
    ssize_t n;

    if (name_ok(b, obj) < 0)
        return -1;
    fd =
        openat(b->dir_fd, obj, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return lb_error(errno, "open %s/%s", be->where, obj);
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR)
            return lb_error(errno, "lock %s/%s", be->where, obj);
    n = lb_pread_full(fd, buf, sizeof buf, 0);
    if (n < 0)
        return lb_error(errno, "read %s/%s", be->where, obj);
    if (!counter_parse(buf, n, &cur)) {
        if (n > 0)
            lb_warn("%s/%s does not read back (%zd bytes): starting again "
                    "from its floor",
                    be->where, obj, n);
        cur = 0;
        if (floor && floor(opaque, &cur) < 0)
            return -1;
    }
    if (cur == UINT64_MAX)
        return lb_fail(ERANGE, "%s/%s: no number left", be->where, obj);
    snprintf(buf, sizeof buf, "%020llu\n", (unsigned long long)cur + 1);
    if (lb_pwrite_full(fd, buf, COUNTER_RECORD, 0) < 0)
        return lb_error(errno, "write %s/%s", be->where, obj);
    *v = cur + 1;
    return 0;
}

static int
file_lock(struct store_be *be, const char *obj, bool excl, unsigned lease_secs,
          unsigned wait_secs, const char *desc, char *holder, size_t holder_len)
{
    struct be_file *b = to_file(be);
    uint64_t deadline = lb_now_ns() + (uint64_t)wait_secs * 1000000000u;
    int fd, slot = -1;

    (void)lease_secs; /* the kernel drops a dead holder's flock at once */
    if (name_ok(b, obj) < 0)
        return -1;
    fd =
        openat(b->dir_fd, obj, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return lb_error(errno, "open %s/%s", be->where, obj);
    while (flock(fd, (excl ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
        ssize_t n;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            close(fd);
            return lb_error(e, "lock %s/%s", be->where, obj);
        }
        if (lb_now_ns() < deadline) {
            struct timespec ts = {0, 200L * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        n = pread(fd, holder, holder_len - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        if (!holder[0])
            snprintf(holder, holder_len, "another process");
        close(fd);
        errno = EWOULDBLOCK;
        return lb_fail(EWOULDBLOCK, "%s/%s is locked by %s", be->where, obj,
                       holder);
    }
    /* An exclusive holder says who it is, one line (emptied at unlock). */
    if (excl && desc && ftruncate(fd, 0) == 0) {
        CLEANUP_FREE char *line = lb_xasprintf("%s\n", desc);
        (void)!pwrite(fd, line, strlen(line), 0);
    }
    pthread_mutex_lock(&b->lock);
    for (int i = 0; i < FILE_MAX_LOCKS; i++)
        if (b->locks[i] < 0) {
            b->locks[i] = fd;
            b->lock_excl[i] = excl;
            slot = i;
            break;
        }
    pthread_mutex_unlock(&b->lock);
    if (slot < 0) {
        close(fd);
        return lb_fail(EAGAIN, "too many locks held in %s", be->where);
    }
    return slot;
}

static int
file_lock_renew(struct store_be *be)
{
    (void)be;
    return 0;
}

static void
file_unlock(struct store_be *be, int handle)
{
    struct be_file *b = to_file(be);

    if (handle < 0 || handle >= FILE_MAX_LOCKS)
        return;
    pthread_mutex_lock(&b->lock);
    if (b->locks[handle] >= 0) {
        if (b->lock_excl[handle] && ftruncate(b->locks[handle], 0) < 0)
            lb_debug("cannot empty a lock's holder line in %s", be->where);
        close(b->locks[handle]);
        b->locks[handle] = -1;
    }
    pthread_mutex_unlock(&b->lock);
}

static int
file_lock_held(struct store_be *be, const char *obj, bool *held)
{
    struct be_file *b = to_file(be);
    CLEANUP_CLOSE int fd = -1;

    if (name_ok(b, obj) < 0)
        return -1;
    fd = openat(b->dir_fd, obj, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        *held = false;
        return errno == ENOENT ? 0 : lb_error(errno, "open %s", obj);
    }
    /* A shared try conflicts only with an exclusive holder. */
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        *held = false;
        return 0;
    }
    if (errno != EWOULDBLOCK)
        return lb_error(errno, "lock %s", obj);
    *held = true;
    return 0;
}

static void
file_close(struct store_be *be)
{
    struct be_file *b = to_file(be);

    be_file_session_end(be);
    be_file_trash_end(be);
    for (int i = 0; i < FILE_MAX_LOCKS; i++)
        file_unlock(be, i);
    if (b->dir_fd >= 0)
        close(b->dir_fd);
    pthread_mutex_destroy(&b->lock);
    free(b->be.where);
    free(b);
}

static const struct store_be_ops file_ops = {
    .kind = "file",
    .close = file_close,
    .read = file_read,
    .stat = file_stat,
    .touch = file_touch,
    .create = file_create,
    .reserve = file_reserve,
    .unreserve = file_unreserve,
    .replace = file_replace,
    .remove = file_remove,
    .remove_if_old = be_file_remove_if_old,
    .sweep_end = be_file_trash_end,
    .list = file_list,
    .counter_next = file_counter_next,
    .lock = file_lock,
    .lock_renew = file_lock_renew,
    .unlock = file_unlock,
    .lock_held = file_lock_held,
    .head_many = file_head_many,
    .read_many = file_read_many,
    .open = file_open,
    .prefetch = file_prefetch,
    .session_begin = be_file_session_begin,
    .sessions_oldest = be_file_sessions_oldest,
    .stage = be_file_stage,
    .publish = be_file_publish,
    .sync_staged = be_file_sync_staged,
    .unstage = be_file_unstage,
    .barrier = be_file_barrier,
    .commit = be_file_commit,
};

struct store_be *
store_be_file_open(const char *path)
{
    struct be_file *b = lb_xcalloc(1, sizeof *b);

    b->be.ops = &file_ops;
    b->be.where = lb_xstrdup(path);
    b->be.tmp_lock_fd = -1;
    b->be.session_lock = -1;
    b->trash_fd = -1;
    b->trash_lock_fd = -1;
    pthread_mutex_init(&b->lock, NULL);
    for (int i = 0; i < FILE_MAX_LOCKS; i++)
        b->locks[i] = -1;
    b->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (b->dir_fd < 0) {
        int e = errno;
        lb_error(e, "open %s", path);
        file_close(&b->be);
        errno = e;
        return NULL;
    }
    return &b->be;
}
