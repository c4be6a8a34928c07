/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Which backend a repository argument names (backend.h): "rados:..." is a
 * RADOS pool, anything else a directory; the parts of a RADOS spec, and
 * whether a client's spec stays inside --restrict-to-repo's.
 */
#include "store/backend.h"

#include "proto/proto.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int
store_be_head_many_seq(struct store_be *be, const char *const *objs, size_t n,
                       bool touch, uint8_t *head, size_t head_len, size_t *got,
                       uint64_t *size, int *err)
{
    for (size_t i = 0; i < n; i++) {
        ssize_t r;
        err[i] = 0;
        got[i] = 0;
        if ((touch && be->ops->touch(be, objs[i]) < 0) ||
            be->ops->stat(be, objs[i], &size[i], NULL) < 0 ||
            (r = be->ops->read(be, objs[i], head + i * head_len, head_len, 0)) <
                0) {
            if (lb_error_errno() != ENOENT)
                return -1;
            lb_error_clear();
            err[i] = ENOENT;
            continue;
        }
        got[i] = (size_t)r;
    }
    return 0;
}

ssize_t
store_be_read_one(struct store_be *be, const char *obj, void *buf, size_t len,
                  uint64_t off)
{
    ssize_t got = be->ops->read(be, obj, buf, len, off);

    if (got < 0) {
        int e = lb_error_errno();
        got = -(e ? e : EIO);
        lb_error_clear();
    }
    return got;
}

void
store_be_read_many(struct store_be *be, const char *const *objs, size_t n,
                   uint8_t *const *bufs, const size_t *lens,
                   const uint64_t *offs, ssize_t *got)
{
    if (be->ops->read_many) {
        be->ops->read_many(be, objs, n, bufs, lens, offs, got);
        return;
    }
    for (size_t i = 0; i < n; i++)
        got[i] = store_be_read_one(be, objs[i], bufs[i], lens[i], offs[i]);
}

int
store_be_open_copy(struct store_be *be, const char *obj)
{
    CLEANUP_FREE uint8_t *buf = NULL;
    uint64_t size, off = 0;
    int fd;

    if (be->ops->stat(be, obj, &size, NULL) < 0)
        return -1;
    fd = memfd_create("object", MFD_CLOEXEC);
    if (fd < 0)
        return lb_error(errno, "memfd_create");
    buf = lb_xmalloc(4u << 20);
    while (off < size) {
        size_t n = (size_t)LB_MIN(size - off, (uint64_t)(4u << 20));
        ssize_t got = be->ops->read(be, obj, buf, n, off);
        if (got <= 0 || lb_write_full(fd, buf, (size_t)got) < 0) {
            int e = got < 0 ? lb_error_errno() : got == 0 ? EPROTO : errno;
            close(fd);
            if (got >= 0)
                lb_error(e, "copy %s from %s", obj, be->where);
            errno = e;
            return -1;
        }
        off += (uint64_t)got;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        int e = errno;
        close(fd);
        return lb_error(e, "seek");
    }
    return fd;
}

void
store_be_index_value(char *v, size_t len, int64_t time, const char *tag,
                     const char *set)
{
    if (set && proto_name_valid(set, strlen(set)))
        snprintf(v, len, "%lld %s %s", (long long)time, tag, set);
    else
        snprintf(v, len, "%lld %s", (long long)time, tag);
}

const char *
store_be_index_value_set(const char *val, size_t val_len, size_t *set_len)
{
    const char *end = val + val_len, *p = val;

    *set_len = 0;
    for (int field = 0; field < 2; field++) {
        p = memchr(p, ' ', (size_t)(end - p));
        if (!p)
            return NULL;
        p++;
    }
    *set_len = (size_t)(end - p);
    return *set_len ? p : NULL;
}

bool
store_be_is_rados(const char *repo)
{
    return strncmp(repo, "rados:", 6) == 0;
}

static bool
spec_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

/* A whole decimal number in [lo, hi]. */
static bool
spec_number(const char *s, unsigned long lo, unsigned long hi, unsigned *v)
{
    char *end;
    unsigned long n;

    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    n = strtoul(s, &end, 10);
    if (errno || *end || n < lo || n > hi)
        return false;
    *v = (unsigned)n;
    return true;
}

/* One KEY=VALUE option of a spec into o. */
static int
spec_option(const char *spec, char *kv, struct store_be_rados_spec *o)
{
    char *eq = strchr(kv, '=');

    if (!eq)
        return lb_fail(EINVAL, "%s: '%s' is not KEY=VALUE", spec, kv);
    *eq++ = '\0';
    if (strcmp(kv, "conf") == 0 && *eq && strlen(eq) < sizeof o->conf) {
        snprintf(o->conf, sizeof o->conf, "%s", eq);
        o->given |= STORE_BE_RADOS_CONF;
    } else if (strcmp(kv, "id") == 0 && spec_name_ok(eq) &&
               strlen(eq) < sizeof o->id) {
        snprintf(o->id, sizeof o->id, "%s", eq);
        o->given |= STORE_BE_RADOS_ID;
    } else if (strcmp(kv, "lease") == 0 &&
               spec_number(eq, 3, 86400, &o->lease)) {
        o->given |= STORE_BE_RADOS_LEASE;
    } else if (strcmp(kv, "timeout") == 0 &&
               spec_number(eq, 1, 86400, &o->timeout)) {
        o->given |= STORE_BE_RADOS_TIMEOUT;
    } else {
        return lb_fail(EINVAL, "%s: bad option '%s=%s'", spec, kv, eq);
    }
    return 0;
}

int
store_be_rados_spec_parse(const char *spec, struct store_be_rados_spec *o)
{
    CLEANUP_FREE char *s = NULL;
    char *q, *slash, *save = NULL;

    memset(o, 0, sizeof *o);
    if (!store_be_is_rados(spec))
        return lb_fail(EINVAL, "%s: not rados:POOL[/NAMESPACE]", spec);
    s = lb_xstrdup(spec + 6);
    snprintf(o->conf, sizeof o->conf, "/etc/ceph/ceph.conf");
    snprintf(o->id, sizeof o->id, "admin");
    o->lease = 60;
    o->timeout = 120;
    q = strchr(s, '?');
    if (q)
        *q++ = '\0';
    slash = strchr(s, '/');
    if (slash)
        *slash++ = '\0';
    if (strlen(s) >= sizeof o->pool || !spec_name_ok(s) ||
        (slash && (strlen(slash) >= sizeof o->ns || !spec_name_ok(slash))))
        return lb_fail(
            EINVAL, "%s: not rados:POOL[/NAMESPACE][?conf=PATH&id=NAME]", spec);
    snprintf(o->pool, sizeof o->pool, "%s", s);
    if (slash)
        snprintf(o->ns, sizeof o->ns, "%s", slash);
    for (char *kv = q ? strtok_r(q, "&", &save) : NULL; kv;
         kv = strtok_r(NULL, "&", &save))
        if (spec_option(spec, kv, o) < 0)
            return -1;
    return 0;
}

int
store_be_rados_restrict(const char *allowed, const char *asked)
{
    struct store_be_rados_spec a, c;
    const char *what = NULL;

    if (store_be_rados_spec_parse(allowed, &a) < 0) {
        lb_error_prefix("--restrict-to-repo");
        return -1;
    }
    if (!store_be_is_rados(asked))
        return lb_fail(EPERM,
                       "repository %s is outside the allowed RADOS "
                       "repository %s",
                       asked, allowed);
    if (store_be_rados_spec_parse(asked, &c) < 0) {
        lb_error_set_errno(EPERM);
        return -1;
    }
    if (strcmp(a.pool, c.pool) != 0 || strcmp(a.ns, c.ns) != 0)
        return lb_fail(EPERM,
                       "repository rados:%s%s%s is outside the allowed "
                       "RADOS repository rados:%s%s%s",
                       c.pool, c.ns[0] ? "/" : "", c.ns, a.pool,
                       a.ns[0] ? "/" : "", a.ns);
    if ((c.given & STORE_BE_RADOS_CONF) && strcmp(a.conf, c.conf) != 0)
        what = "conf";
    else if ((c.given & STORE_BE_RADOS_ID) && strcmp(a.id, c.id) != 0)
        what = "id";
    else if ((c.given & STORE_BE_RADOS_LEASE) && a.lease != c.lease)
        what = "lease";
    else if ((c.given & STORE_BE_RADOS_TIMEOUT) && a.timeout != c.timeout)
        what = "timeout";
    if (what) {
        lb_fail(EPERM,
                "repository %s: its %s= is not the allowed repository's "
                "(%s)",
                asked, what, allowed);
        lb_error_hint("leave %s= out: the server's --restrict-to-repo sets it",
                      what);
        return -1;
    }
    return 0;
}

int
store_rm_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;

    if (!d)
        return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
    while ((e = readdir(d)) != NULL) {
        CLEANUP_FREE char *p = NULL;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        p = lb_xasprintf("%s/%s", path, e->d_name);
        if (e->d_type == DT_DIR)
            store_rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    return rmdir(path);
}

int
store_tmp_dir_lock(const char *d, int *lock_fd)
{
    CLEANUP_FREE char *tmp = lb_xasprintf("%s/.lock.new", d);
    CLEANUP_FREE char *lock = lb_xasprintf("%s/.lock", d);
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);

    *lock_fd = -1;
    if (fd < 0)
        return lb_error(errno, "create %s", tmp);
    /* Nobody else knows .lock.new: the lock cannot fail. The mtime marks
     * the start of the session for gc (set: it must not be older). */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0 || futimens(fd, NULL) < 0 ||
        rename(tmp, lock) < 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return lb_error(e, "lock %s", lock);
    }
    *lock_fd = fd;
    return 0;
}

void
store_tmp_sweep(const char *dir, const char *prefix, time_t lockless_age,
                void (*gone)(const char *path, const char *name, void *opaque),
                void *opaque)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        CLEANUP_FREE char *path = NULL;
        CLEANUP_FREE char *lock = NULL;
        CLEANUP_CLOSE int fd = -1;
        struct stat sb;

        if (e->d_name[0] == '.' ||
            strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        path = lb_xasprintf("%s/%s", dir, e->d_name);
        /* Never through a symlink, never someone else's (dir may be a
         * shared $TMPDIR). */
        if (lstat(path, &sb) < 0 || !S_ISDIR(sb.st_mode) ||
            sb.st_uid != geteuid())
            continue;
        lock = lb_xasprintf("%s/.lock", path);
        fd = open(lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT && lockless_age > 0 &&
                sb.st_mtime <= time(NULL) - lockless_age)
                gone(path, e->d_name, opaque);
            continue;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            gone(path, e->d_name, opaque);
    }
    closedir(d);
}
