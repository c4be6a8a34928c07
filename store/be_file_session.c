/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The file backend's writer side (backend.h; FORMAT.md, "Locking",
 * "Chunk files", "Committing a backup"):
 *
 * - a session is the directory tmp/PID-RAND/ with its .lock, locked
 *   exclusively while the writer lives (its mtime is the session's start);
 *   opening one first removes those of writers that are gone, putting back
 *   into chunks/ what a dead gc left in its trash (tmp/gc-*);
 * - a create in two steps writes an unnamed file (O_TMPFILE) in the
 *   session's directory, or a temp file there where the filesystem or the
 *   process cannot link an unnamed one (stage), then fdatasyncs it and
 *   links it into place (publish: EEXIST means stored already). No name
 *   is made and removed per chunk, and a crash leaves nothing of an
 *   unnamed one behind. The names become durable at the barrier, one
 *   syncfs of the repository's filesystem before the commit, instead of
 *   an fsync of a directory per chunk;
 * - the commit links the manifest's temp file to its name (never
 *   replacing one) and fsyncs backups/.
 */
#include "store/be_file_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The prefix of gc's trash session directories (tmp/gc-PID-RANDOM). */
#define TRASH_PREFIX "gc-"

/* The session directory tmp/NAME and its .lock, locked (also gc's trash):
 * its path into *dir (caller frees), the lock's descriptor into *lock_fd.
 * The lock file is created under a temporary name, locked, and only then
 * renamed to .lock: whoever finds a .lock finds it locked while its owner
 * lives. */
static int
session_create(struct store_be *be, const char *name, char **dir, int *lock_fd)
{
    CLEANUP_FREE char *d = lb_xasprintf("%s/tmp/%s", be->where, name);

    *dir = NULL;
    *lock_fd = -1;
    if (mkdir(d, 0700) < 0)
        return lb_error(errno, "create %s", d);
    if (store_tmp_dir_lock(d, lock_fd) < 0) {
        rmdir(d);
        return -1;
    }
    *dir = d;
    d = NULL;
    return 0;
}

/* Move a chunk from the trash back to chunks/ (never over a fresh copy a
 * backup stored meanwhile: same content, keep that one). */
static int
put_back(int trash_fd, const char *name, int dir_fd, const char *to)
{
    if (renameat2(trash_fd, name, dir_fd, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == EEXIST)
        return unlinkat(trash_fd, name, 0) == 0 || errno == ENOENT ? 0 : -1;
    if (errno == EINVAL || errno == ENOSYS) /* no RENAME_NOREPLACE here */
        return renameat(trash_fd, name, dir_fd, to);
    return -1;
}

static bool
is_digest_hex(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return i == 64;
}

/* Put every chunk of a gc's trash dir back into chunks/: 0 when none is
 * left there (dir may go), -1 if one could not be (logged). */
static int
restore_trash(struct store_be *be, const char *dir)
{
    struct be_file *b = to_file(be);
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;

    if (!d)
        return errno == ENOENT ? 0 : -1;
    while ((e = readdir(d)) != NULL) {
        char rel[16];
        CLEANUP_CLOSE int cfd = -1;

        if (!is_digest_hex(e->d_name))
            continue;
        snprintf(rel, sizeof rel, "chunks/%.2s", e->d_name);
        cfd = openat(b->dir_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cfd < 0 || put_back(dirfd(d), e->d_name, cfd, e->d_name) < 0) {
            lb_warn("cannot put chunk %s back from %s: %s", e->d_name, dir,
                    strerror(errno));
            rc = -1;
        } else {
            lb_info("put chunk %s back from the trash of gc", e->d_name);
        }
    }
    closedir(d);
    return rc;
}

/* Remove a dead session's directory. A gc that died may have left a chunk
 * it had moved aside in its trash: that goes back first. */
static void
remove_session(struct store_be *be, const char *name, const char *dir)
{
    if (strncmp(name, TRASH_PREFIX, strlen(TRASH_PREFIX)) == 0 &&
        restore_trash(be, dir) < 0)
        return;
    store_rm_tree(dir);
}

static void
stale_session(const char *dir, const char *name, void *opaque)
{
    lb_debug("removing files of an interrupted session: %s", dir);
    remove_session(opaque, name, dir);
}

/* Remove session directories whose owner is gone (its lock is free). */
static void
clean_stale_sessions(struct store_be *be)
{
    CLEANUP_FREE char *tmp = lb_xasprintf("%s/tmp", be->where);

    store_tmp_sweep(tmp, "", 60, stale_session, be);
}

/* Link the unnamed file fd to obj under dir_fd as mode says: 0, or -1
 * with errno. */
static int
link_unnamed(enum be_file_stage_mode mode, int fd, int dir_fd, const char *obj)
{
    char proc[64];

    if (mode == BE_FILE_STAGE_EMPTY_PATH)
        return linkat(fd, "", dir_fd, obj, AT_EMPTY_PATH);
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, dir_fd, obj, AT_SYMLINK_FOLLOW);
}

/* How this process can stage in dir (the session's directory): an
 * unnamed file linked by its descriptor, or through /proc, or a name. */
static enum be_file_stage_mode
stage_probe(const char *dir)
{
    static const enum be_file_stage_mode modes[] = {BE_FILE_STAGE_EMPTY_PATH,
                                                    BE_FILE_STAGE_PROC_FD};
    enum be_file_stage_mode found = BE_FILE_STAGE_NAMED;
    CLEANUP_CLOSE int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dfd < 0)
        return found;
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        int fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0)
            break; /* no O_TMPFILE here */
        if (link_unnamed(modes[i], fd, dfd, "probe") == 0) {
            unlinkat(dfd, "probe", 0);
            found = modes[i];
        }
        close(fd);
        if (found != BE_FILE_STAGE_NAMED)
            break;
    }
    return found;
}

int
be_file_session_begin(struct store_be *be)
{
    struct stat sb;
    uint8_t rnd[8];
    char hex[17], name[64];

    if (be->tmp_dir)
        return lb_fail(EINVAL, "%s: a session is open already", be->where);
    clean_stale_sessions(be);
    if (lb_random(rnd, sizeof rnd) < 0)
        return -1;
    lb_hex_encode(hex, rnd, sizeof rnd);
    snprintf(name, sizeof name, "%ld-%s", (long)getpid(), hex);
    if (session_create(be, name, &be->tmp_dir, &be->tmp_lock_fd) < 0)
        return -1;
    if (be->tmp_dir && to_file(be)->stage_mode == BE_FILE_STAGE_UNKNOWN)
        to_file(be)->stage_mode = stage_probe(be->tmp_dir);
    /* The start gc's cutoff respects (be_file_sessions_oldest); unknown,
     * every chunk a lookup finds is touched. */
    to_file(be)->session_start =
        fstat(be->tmp_lock_fd, &sb) == 0 ? (int64_t)sb.st_mtime : 0;
    return 0;
}

void
be_file_session_end(struct store_be *be)
{
    to_file(be)->session_start = 0;
    store_be_tmp_drop(be);
}

/* ---- creates in two steps ----------------------------------------------- */

int
be_file_stage(struct store_be *be, const char *obj, const void *hdr,
              size_t hdr_len, const void *p, size_t len,
              struct store_be_staged **out)
{
    struct be_file *b = to_file(be);
    struct store_be_staged *s;
    struct stat sb;

    *out = NULL;
    if (!be->tmp_dir)
        return lb_fail(EINVAL, "%s: no session to stage %s in", be->where, obj);
    /* Stored already: one stat instead of a temp file and its sync. */
    if (fstatat(b->dir_fd, obj, &sb, AT_SYMLINK_NOFOLLOW) == 0)
        return 1;
    if (errno != ENOENT)
        return lb_error(errno, "stat %s/%s", be->where, obj);
    s = lb_xcalloc(1, sizeof *s);
    if (b->stage_mode == BE_FILE_STAGE_EMPTY_PATH ||
        b->stage_mode == BE_FILE_STAGE_PROC_FD) {
        /* no name until publish links it (s->path stays NULL) */
        s->fd = open(be->tmp_dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    } else {
        unsigned long n;

        pthread_mutex_lock(&b->lock);
        n = ++b->tmp_seq;
        pthread_mutex_unlock(&b->lock);
        s->path = lb_xasprintf("%s/chunk.%lu", be->tmp_dir, n);
        s->fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (s->fd < 0) {
        int e = errno;
        free(s->path);
        free(s);
        return lb_error(e, "create a temp file in %s", be->tmp_dir);
    }
    /* one write: a header written alone would have the kernel zero the
     * rest of the file's first page, which the data then overwrites */
    if (lb_write2_full(s->fd, hdr, hdr_len, p, len) < 0) {
        int e = errno;
        be_file_unstage(be, s);
        return lb_error(e, "write %s to %s", obj, be->where);
    }
    *out = s;
    return 0;
}

int
be_file_publish(struct store_be *be, struct store_be_staged *s, const char *obj)
{
    struct be_file *b = to_file(be);
    int r;

    if (!s->synced) {
        if (fdatasync(s->fd) < 0)
            return lb_error(errno, "write %s to %s", obj, be->where);
        s->synced = true;
    }
    /* an unnamed file is linked through its descriptor: kept open */
    if (s->path && s->fd >= 0) {
        int e = close(s->fd) < 0 ? errno : 0;
        s->fd = -1;
        if (e)
            return lb_error(e, "write %s to %s", obj, be->where);
    }
    /* link, not rename: when two sessions store the same object at once,
     * exactly one creates it; the other learns it was stored already. The
     * name is durable at the barrier (syncfs). */
    if (s->path)
        r = linkat(AT_FDCWD, s->path, b->dir_fd, obj, 0);
    else
        r = link_unnamed(b->stage_mode, s->fd, b->dir_fd, obj);
    if (r == 0)
        return 0;
    if (errno == EEXIST)
        return 1;
    return lb_error(errno, "publish %s/%s", be->where, obj);
}

int
be_file_sync_staged(struct store_be *be, struct store_be_staged *const *s,
                    size_t n)
{
    /* One file: its fdatasync (publish) costs less than a syncfs, which
     * also writes what others left dirty on the filesystem. */
    if (n < 2)
        return 0;
    /* syncfs writes back every dirty inode of the filesystem, the
     * unnamed ones too, and flushes the disk's cache once; since Linux
     * 5.8 it reports a writeback error of any of them. */
    if (syncfs(to_file(be)->dir_fd) < 0)
        return lb_error(errno, "sync repository %s", be->where);
    for (size_t i = 0; i < n; i++)
        s[i]->synced = true;
    return 0;
}

void
be_file_unstage(struct store_be *be, struct store_be_staged *s)
{
    (void)be;
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    if (s->path)
        unlink(s->path);
    free(s->path);
    free(s);
}

int
be_file_barrier(struct store_be *be)
{
    /* Every staged file was fdatasync'd when published; syncfs makes the
     * names (and seq) durable. */
    if (syncfs(to_file(be)->dir_fd) < 0)
        return lb_error(errno, "sync repository %s", be->where);
    return 0;
}

int
be_file_commit(struct store_be *be, const char *tmp, int fd, const char *obj,
               const char *set)
{
    struct be_file *b = to_file(be);
    char why[512];
    int e;

    (void)fd;
    (void)set; /* no index: a listing reads each manifest's meta */
    if (linkat(AT_FDCWD, tmp, b->dir_fd, obj, 0) < 0) {
        e = errno;
        lb_error(e, "commit %s/%s", be->where, obj);
        errno = e;
        return -1;
    }
    unlink(tmp);
    if (be_file_sync_parent(b, obj) == 0)
        return 0;
    /* Not durable: not committed, so it must not exist (a client told
     * that the commit failed retries it). */
    e = lb_error_errno();
    snprintf(why, sizeof why, "%s", lb_error_msg());
    if (unlinkat(b->dir_fd, obj, 0) < 0 && errno != ENOENT) {
        lb_warn("%s/%s: %s, and it cannot be removed (%s): it stays, "
                "committed",
                be->where, obj, why, strerror(errno));
        lb_error_clear();
        return 0;
    }
    if (be_file_sync_parent(b, obj) < 0)
        lb_debug("fsync again: %s", lb_error_msg());
    return lb_fail(e, "%s", why);
}

/* ---- gc ----------------------------------------------------------------- */

static const char *
base_name(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;

    return s ? s + 1 : path ? path : "";
}

/*
 * The start of the oldest live writer session, or t0: a session is live
 * while its .lock is locked (session_create renames the lock file into
 * place already locked), and its start is the lock file's mtime. A
 * directory without .lock is a session that died before locking (it has
 * nothing to protect) or one being created now (its every write and touch
 * comes after t0).
 */
int
be_file_sessions_oldest(struct store_be *be, int64_t t0, int64_t *oldest,
                        uint64_t *nlive)
{
    CLEANUP_FREE char *tmp = lb_xasprintf("%s/tmp", be->where);
    DIR *d = opendir(tmp);
    struct dirent *e;

    *oldest = t0;
    *nlive = 0;
    if (!d)
        return lb_error(errno, "open %s", tmp);
    while ((e = readdir(d)) != NULL) {
        CLEANUP_FREE char *lock = NULL;
        CLEANUP_CLOSE int fd = -1;
        struct stat sb;

        if (e->d_name[0] == '.' ||
            strcmp(e->d_name, base_name(be->tmp_dir)) == 0 ||
            strcmp(e->d_name, base_name(to_file(be)->trash_dir)) == 0)
            continue;
        lock = lb_xasprintf("%s/%s/.lock", tmp, e->d_name);
        fd = open(lock, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
            continue;
        if (fd < 0) {
            /* Whether it is live is unknown: gc cannot be safe. */
            int err = errno;
            closedir(d);
            return lb_error(err, "open %s", lock);
        }
        if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
            flock(fd, LOCK_UN); /* its owner is gone */
            continue;
        }
        /* Held (or unknown: count it, which only keeps more). */
        if (fstat(fd, &sb) < 0) {
            int err = errno;
            closedir(d);
            return lb_error(err, "stat %s", lock);
        }
        if (sb.st_mtime < *oldest)
            *oldest = sb.st_mtime;
        (*nlive)++;
    }
    closedir(d);
    return 0;
}

/* gc's trash: a session directory of its own, tmp/gc-PID-RANDOM, locked
 * like a writer's (a writer that finds it unlocked puts its chunks back). */
static int
trash_open(struct be_file *b)
{
    uint8_t rnd[4];
    char hex[9], name[64];
    char *dir = NULL;
    int r = 0;

    pthread_mutex_lock(&b->lock);
    if (b->trash_fd >= 0)
        goto out;
    r = lb_random(rnd, sizeof rnd);
    if (r < 0)
        goto out;
    lb_hex_encode(hex, rnd, sizeof rnd);
    snprintf(name, sizeof name, TRASH_PREFIX "%ld-%s", (long)getpid(), hex);
    r = session_create(&b->be, name, &dir, &b->trash_lock_fd);
    if (r < 0 || !dir) {
        r = r < 0 ? r : lb_fail(EIO, "%s: no trash made", b->be.where);
        goto out;
    }
    b->trash_dir = dir;
    b->trash_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (b->trash_fd < 0)
        r = lb_error(errno, "open %s", dir);
out:
    pthread_mutex_unlock(&b->lock);
    return r;
}

/* Rename the chunk into the trash, read its mtime again (a touch before
 * the rename shows: the same inode) and put it back if it is now at or
 * after the cutoff, else unlink it. A touch after the rename finds no
 * file: the backup is told the chunk is missing and sends it again. */
int
be_file_remove_if_old(struct store_be *be, const char *obj, int64_t cutoff,
                      uint64_t *size, store_be_hook_fn between, void *opaque)
{
    struct be_file *b = to_file(be);
    const char *name = base_name(obj);
    struct stat sb;

    if (strstr(obj, "..") || obj[0] == '/')
        return lb_fail(EINVAL, "bad object name '%s' in %s", obj, be->where);
    if (fstatat(b->dir_fd, obj, &sb, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0
                               : lb_error(errno, "stat %s/%s", be->where, obj);
    if (!S_ISREG(sb.st_mode) || (int64_t)sb.st_mtime >= cutoff)
        return 0;
    if (trash_open(b) < 0)
        return -1;
    if (renameat(b->dir_fd, obj, b->trash_fd, name) < 0)
        return errno == ENOENT ? 0
                               : lb_error(errno, "move %s/%s to %s", be->where,
                                          obj, b->trash_dir);
    if (between) {
        CLEANUP_FREE char *p = lb_xasprintf("%s/%s", b->trash_dir, name);
        between(opaque, p);
    }
    if (fstatat(b->trash_fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
        (int64_t)sb.st_mtime >= cutoff) {
        if (put_back(b->trash_fd, name, b->dir_fd, obj) < 0)
            return lb_error(errno, "put %s/%s back from %s", be->where, obj,
                            b->trash_dir);
        return 2;
    }
    if (unlinkat(b->trash_fd, name, 0) < 0)
        return lb_error(errno, "delete %s/%s", b->trash_dir, name);
    *size = (uint64_t)sb.st_size;
    return 1;
}

void
be_file_trash_end(struct store_be *be)
{
    struct be_file *b = to_file(be);

    if (b->trash_fd >= 0)
        close(b->trash_fd);
    b->trash_fd = -1;
    if (b->trash_dir) {
        /* Normally empty; whatever is left goes back (and what cannot
         * stays for the next writer to put back). */
        if (restore_trash(be, b->trash_dir) == 0)
            store_rm_tree(b->trash_dir);
        free(b->trash_dir);
        b->trash_dir = NULL;
    }
    if (b->trash_lock_fd >= 0)
        close(b->trash_lock_fd);
    b->trash_lock_fd = -1;
}
