/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The journal of an instant restore (instant.h): a small JSON document,
 * read with common/json.c's bounded parser and checked field by field.
 */
#include "agent/live/instant.h"
#include "agent/live/track.h"
#include "common/json.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>

#define INSTANT_MAX_FILE (256u << 10)

void
instant_free(struct instant_state *st)
{
    for (size_t i = 0; i < st->nd; i++) {
        free(st->d[i].overlay);
        free(st->d[i].base);
        free(st->d[i].top);
        free(st->d[i].socket);
        free(st->d[i].pidfile);
        free(st->d[i].log);
    }
    free(st->url);
    free(st->set);
    free(st->rsh);
    free(st->remote_backupd);
    memset(st, 0, sizeof *st);
}

/* A string field into a fixed buffer; absent or too long is an error. */
static int
get_fixed(const struct lb_json *j, const char *key, char *dst, size_t cap)
{
    const char *s = lb_json_str(lb_json_get(j, key));

    if (!s || strlen(s) >= cap)
        return lb_fail(EINVAL, "field %s missing or too long", key);
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

/* A string field, owned; an absolute path when path is true. */
static int
get_str(const struct lb_json *j, const char *key, bool path, char **dst)
{
    const char *s = lb_json_str(lb_json_get(j, key));

    if (!s || strlen(s) > 4096 || (path && s[0] != '/'))
        return lb_fail(EINVAL, "field %s missing or not a valid %s", key,
                       path ? "absolute path" : "string");
    *dst = lb_xstrdup(s);
    return 0;
}

/* An optional uid or gid (0 when absent: a journal of a version that
 * ran QEMU's exports as root only). */
_Static_assert(sizeof(uid_t) == sizeof(unsigned) &&
                   sizeof(gid_t) == sizeof(unsigned),
               "uid_t and gid_t are unsigned int");

static int
get_id(const struct lb_json *j, const char *key, unsigned *dst)
{
    const struct lb_json *v = lb_json_get(j, key);
    uint64_t n = 0;

    if (v && (lb_json_u64(v, &n) < 0 || n >= UINT32_MAX))
        return -1;
    *dst = (unsigned)n;
    return 0;
}

static int
parse_disk(const struct lb_json *j, struct instant_disk *d)
{
    if (get_fixed(j, "target", d->target, sizeof d->target) < 0 ||
        !proto_disk_name_valid(d->target, strlen(d->target)))
        return lb_fail(EINVAL, "a disk without a valid target");
    if (get_str(j, "overlay", true, &d->overlay) < 0 ||
        get_str(j, "base", true, &d->base) < 0 ||
        get_str(j, "top", true, &d->top) < 0 ||
        get_str(j, "socket", true, &d->socket) < 0 ||
        get_str(j, "pidfile", true, &d->pidfile) < 0 ||
        get_str(j, "log", true, &d->log) < 0 ||
        lb_json_u64(lb_json_get(j, "size"), &d->size) < 0 || d->size == 0)
        return lb_fail(EINVAL, "disk %s: a field is missing or invalid",
                       d->target);
    return 0;
}

static int
parse_fields(const struct lb_json *j, struct instant_state *st)
{
    const struct lb_json *disks = lb_json_get(j, "disks");
    uint64_t v;

    if (lb_json_u64(lb_json_get(j, "version"), &v) < 0 || v != 2)
        return lb_fail(EINVAL, "not a version 2 journal (one of version 1 "
                               "was made by a livebackup before 2026-12-03, "
                               "which finishes it)");
    if (get_fixed(j, "name", st->name, sizeof st->name) < 0 ||
        get_fixed(j, "uuid", st->uuid, sizeof st->uuid) < 0 ||
        get_fixed(j, "backup", st->backup, sizeof st->backup) < 0 ||
        !proto_backup_id_valid(st->backup, strlen(st->backup)) ||
        get_str(j, "url", false, &st->url) < 0 ||
        get_str(j, "set", false, &st->set) < 0 ||
        get_str(j, "rsh", false, &st->rsh) < 0 ||
        get_str(j, "remote_backupd", false, &st->remote_backupd) < 0 ||
        lb_json_u64(lb_json_get(j, "cache_bytes"), &st->cache_bytes) < 0 ||
        lb_json_i64(lb_json_get(j, "started"), &st->started) < 0 ||
        get_id(j, "qemu_uid", &st->qemu_uid) < 0 ||
        get_id(j, "qemu_gid", &st->qemu_gid) < 0)
        return lb_fail(EINVAL, "a field is missing or invalid");
    st->pulling = lb_json_bool(lb_json_get(j, "pulling"), false);
    st->paused = lb_json_bool(lb_json_get(j, "paused"), false);
    if (!disks || disks->type != LB_JSON_ARRAY || disks->n == 0 ||
        disks->n > INSTANT_MAX_DISKS)
        return lb_fail(EINVAL, "no disks, or too many");
    for (size_t i = 0; i < disks->n; i++) {
        if (parse_disk(lb_json_at(disks, i), &st->d[st->nd++]) < 0)
            return -1;
        for (size_t k = 0; k < i; k++)
            if (strcmp(st->d[k].target, st->d[i].target) == 0)
                return lb_fail(EINVAL, "disk %s twice", st->d[i].target);
    }
    return 0;
}

int
instant_parse(const char *text, size_t len, struct instant_state *st)
{
    char err[256];
    struct lb_json *j;
    int r;

    memset(st, 0, sizeof *st);
    j = lb_json_parse(text, len, err, sizeof err);
    if (!j)
        return lb_fail(EINVAL, "instant restore journal: %s", err);
    r = j->type == LB_JSON_OBJECT
            ? parse_fields(j, st)
            : lb_fail(EINVAL, "instant restore journal: not an object");
    lb_json_free(j);
    if (r < 0) {
        lb_error_prefix("instant restore journal");
        instant_free(st);
    }
    return r;
}

static void
kv_str(struct lb_buf *b, const char *key, const char *val, bool last)
{
    lb_json_escape(b, key);
    lb_buf_put_u8(b, ':');
    lb_json_escape(b, val ? val : "");
    if (!last)
        lb_buf_put_u8(b, ',');
}

static void
kv_num(struct lb_buf *b, const char *key, long long val)
{
    char num[32];

    lb_json_escape(b, key);
    snprintf(num, sizeof num, ":%lld,", val);
    lb_buf_append(b, num, strlen(num));
}

char *
instant_format(const struct instant_state *st)
{
    struct lb_buf b = {0};

    lb_buf_put_u8(&b, '{');
    kv_num(&b, "version", 2);
    kv_str(&b, "name", st->name, false);
    kv_str(&b, "uuid", st->uuid, false);
    kv_str(&b, "url", st->url, false);
    kv_str(&b, "set", st->set, false);
    kv_str(&b, "backup", st->backup, false);
    kv_str(&b, "rsh", st->rsh, false);
    kv_str(&b, "remote_backupd", st->remote_backupd, false);
    kv_num(&b, "cache_bytes", (long long)st->cache_bytes);
    kv_num(&b, "started", (long long)st->started);
    kv_num(&b, "qemu_uid", st->qemu_uid);
    kv_num(&b, "qemu_gid", st->qemu_gid);
    lb_json_escape(&b, "pulling");
    lb_buf_append(&b, st->pulling ? ":true," : ":false,", st->pulling ? 6 : 7);
    lb_json_escape(&b, "paused");
    lb_buf_append(&b, st->paused ? ":true," : ":false,", st->paused ? 6 : 7);
    lb_json_escape(&b, "disks");
    lb_buf_append(&b, ":[", 2);
    for (size_t i = 0; i < st->nd; i++) {
        const struct instant_disk *d = &st->d[i];
        lb_buf_append(&b, i ? ",\n{" : "\n{", i ? 3 : 2);
        kv_str(&b, "target", d->target, false);
        kv_str(&b, "overlay", d->overlay, false);
        kv_str(&b, "base", d->base, false);
        kv_str(&b, "top", d->top, false);
        kv_str(&b, "socket", d->socket, false);
        kv_str(&b, "pidfile", d->pidfile, false);
        kv_str(&b, "log", d->log, false);
        lb_json_escape(&b, "size");
        {
            char num[32];
            snprintf(num, sizeof num, ":%llu}", (unsigned long long)d->size);
            lb_buf_append(&b, num, strlen(num));
        }
    }
    lb_buf_append(&b, "]}\n", 4); /* with its NUL */
    return (char *)b.data;
}

char *
instant_path(const char *name)
{
    return lb_xasprintf("%s/%s.instant", track_dir(), name);
}

int
instant_lock(const char *name)
{
    CLEANUP_FREE char *path =
        lb_xasprintf("%s/%s.instant.lock", track_dir(), name);
    char pid[32];
    int fd;

    if (lb_mkdir_p(track_dir(), 0700) < 0)
        return -1;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return lb_error(errno, "open %s", path);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char who[64] = "";
        ssize_t n = pread(fd, who, sizeof who - 1, 0);
        who[n > 0 ? n : 0] = '\0';
        who[strcspn(who, "\n")] = '\0';
        close(fd);
        lb_fail(EWOULDBLOCK,
                "the instant restore of %s is being finished by another "
                "livebackup (%s)",
                name, who[0] ? who : "pid unknown");
        lb_error_hint("livebackup status %s shows its progress", name);
        return -1;
    }
    snprintf(pid, sizeof pid, "pid %ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0)
        (void)!pwrite(fd, pid, strlen(pid), 0);
    return fd;
}

int
instant_load(const char *name, struct instant_state *st)
{
    CLEANUP_FREE char *path = instant_path(name);
    CLEANUP_FREE char *text = NULL;
    size_t len;

    memset(st, 0, sizeof *st);
    text = lb_read_file(path, INSTANT_MAX_FILE, &len);
    if (!text) {
        if (lb_error_errno() == ENOENT) {
            lb_error_clear();
            return 1;
        }
        return -1;
    }
    if (instant_parse(text, len, st) < 0) {
        lb_error_prefix("%s", path);
        return -1;
    }
    return 0;
}

int
instant_save(const struct instant_state *st)
{
    CLEANUP_FREE char *text = instant_format(st);
    CLEANUP_FREE char *name = lb_xasprintf("%s.instant", st->name);

    if (lb_mkdir_p(track_dir(), 0700) < 0)
        return -1;
    return lb_write_file_atomic(track_dir(), name, text, strlen(text), 0600);
}

void
instant_remove(const char *name)
{
    CLEANUP_FREE char *path = instant_path(name);
    CLEANUP_FREE char *lock = lb_xasprintf("%s.lock", path);

    unlink(path);
    unlink(lock);
    lb_fsync_dir(track_dir());
}
