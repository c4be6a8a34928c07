/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The tracking state file (see track.h). Text, one record per line, with
 * %XX-escaped values so any path survives:
 *
 *   livebackup-track 1
 *   name NAME
 *   uuid UUID
 *   repo REPO-ID
 *   step idle|prepared|switched|committed|blockcommit|committing
 *   backup ID|-
 *   last ID|-
 *   disk TARGET top=PATH fmt=FMT size=N acked=N incr=N last=ID|- new=PATH|-
 *        ov=PATH,PATH  (all on one line)
 */
#include "agent/live/track.h"
#include "agent/client/client.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#define TRACK_MAX_FILE (1u << 20)

static const char *const step_names[] = {
    "idle", "prepared", "switched", "committed", "blockcommit", "committing"};

const char *
track_step_name(enum track_step s)
{
    return (unsigned)s < LB_ARRAY_SIZE(step_names) ? step_names[s] : "?";
}

/* ---- escaping ---------------------------------------------------------- */

static bool
plain_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || strchr("._/+-:@~", c);
}

static void
put_esc(struct lb_buf *b, const char *s)
{
    if (!s || !*s) {
        lb_buf_put_u8(b, '-');
        return;
    }
    if (strcmp(s, "-") == 0) {
        lb_buf_append(b, "%2D", 3);
        return;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (plain_char(c)) {
            lb_buf_put_u8(b, c);
        } else {
            char h[4];
            snprintf(h, sizeof h, "%%%02X", c);
            lb_buf_append(b, h, 3);
        }
    }
}

/* Decode s[0..len) ("-" is empty); NULL on a bad escape or a NUL. */
static char *
get_esc(const char *s, size_t len)
{
    char *out, *o;

    if (len == 1 && s[0] == '-')
        return lb_xstrdup("");
    out = o = lb_xmalloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            if (!plain_char((unsigned char)s[i])) {
                free(out);
                return NULL;
            }
            *o++ = s[i];
            continue;
        }
        uint8_t v;
        char hex[3];
        if (i + 2 >= len) {
            free(out);
            return NULL;
        }
        hex[0] = s[i + 1];
        hex[1] = s[i + 2];
        hex[2] = '\0';
        if (lb_hex_decode(&v, 1, hex) < 0 || v == 0) {
            free(out);
            return NULL;
        }
        *o++ = (char)v;
        i += 2;
    }
    *o = '\0';
    return out;
}

/* ---- parse / format ------------------------------------------------------ */

void
track_disk_reset(struct track_disk *d)
{
    free(d->user_top);
    free(d->user_fmt);
    for (size_t i = 0; i < d->nov; i++)
        free(d->ov[i]);
    free(d->newov);
    d->user_top = d->user_fmt = d->newov = NULL;
    d->nov = d->acked = 0;
    d->size = 0;
    d->incrementals = 0;
    d->last_backup[0] = '\0';
}

void
track_free(struct track_state *st)
{
    for (size_t i = 0; i < st->nd; i++)
        track_disk_reset(&st->d[i]);
    free(st->d);
    memset(st, 0, sizeof *st);
}

struct track_disk *
track_disk_get(struct track_state *st, const char *target)
{
    for (size_t i = 0; i < st->nd; i++)
        if (strcmp(st->d[i].target, target) == 0)
            return &st->d[i];
    return NULL;
}

struct track_disk *
track_disk_add(struct track_state *st, const char *target)
{
    struct track_disk *d = track_disk_get(st, target);

    if (d)
        return d;
    st->d = lb_xrealloc(st->d, (st->nd + 1) * sizeof *st->d);
    d = &st->d[st->nd++];
    memset(d, 0, sizeof *d);
    snprintf(d->target, sizeof d->target, "%s", target);
    return d;
}

const char *
track_acked_point(const struct track_disk *d)
{
    return d->acked ? d->ov[d->acked - 1] : d->user_top;
}

static bool
id_field_ok(const char *s)
{
    return !*s || proto_backup_id_valid(s, strlen(s));
}

/* Copy an id field ("-" or an id). */
static int
get_id(char out[PROTO_ID_LEN + 1], const char *s, size_t len)
{
    char *v = get_esc(s, len);
    int r = -1;

    if (v && strlen(v) <= PROTO_ID_LEN && id_field_ok(v)) {
        snprintf(out, PROTO_ID_LEN + 1, "%s", v);
        r = 0;
    }
    free(v);
    return r;
}

static int
parse_disk(struct track_state *st, const char *p, const char *end)
{
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    CLEANUP_FREE char *target = NULL;
    struct track_disk *d;

    target = get_esc(p, (size_t)((sp ? sp : end) - p));
    if (!target || !proto_disk_name_valid(target, strlen(target)) ||
        track_disk_get(st, target) || st->nd >= PROTO_MF_MAX_DISKS)
        return lb_fail(EPROTO, "bad disk record");
    d = track_disk_add(st, target);
    p = sp ? sp + 1 : end;
    while (p < end) {
        const char *e = memchr(p, ' ', (size_t)(end - p));
        const char *eq;
        size_t klen;
        e = e ? e : end;
        eq = memchr(p, '=', (size_t)(e - p));
        if (!eq)
            return lb_fail(EPROTO, "bad field in disk %s", d->target);
        klen = (size_t)(eq - p);
        eq++;
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(p, k, klen) == 0)
        if (KEY("top")) {
            free(d->user_top);
            d->user_top = get_esc(eq, (size_t)(e - eq));
            if (!d->user_top)
                return lb_fail(EPROTO, "bad top in disk %s", d->target);
        } else if (KEY("fmt")) {
            free(d->user_fmt);
            d->user_fmt = get_esc(eq, (size_t)(e - eq));
            if (!d->user_fmt)
                return lb_fail(EPROTO, "bad fmt in disk %s", d->target);
        } else if (KEY("size") || KEY("acked") || KEY("incr")) {
            char num[24];
            char *ne;
            unsigned long long v;
            if ((size_t)(e - eq) == 0 || (size_t)(e - eq) >= sizeof num)
                return lb_fail(EPROTO, "bad number in disk %s", d->target);
            memcpy(num, eq, (size_t)(e - eq));
            num[e - eq] = '\0';
            errno = 0;
            v = strtoull(num, &ne, 10);
            if (errno || *ne || num[0] == '-')
                return lb_fail(EPROTO, "bad number in disk %s", d->target);
            if (KEY("size"))
                d->size = v;
            else if (KEY("incr"))
                d->incrementals = v > UINT32_MAX ? UINT32_MAX : (unsigned)v;
            else
                d->acked = (size_t)v;
        } else if (KEY("last")) {
            if (get_id(d->last_backup, eq, (size_t)(e - eq)) < 0)
                return lb_fail(EPROTO, "bad last in disk %s", d->target);
        } else if (KEY("new")) {
            free(d->newov);
            d->newov = get_esc(eq, (size_t)(e - eq));
            if (!d->newov)
                return lb_fail(EPROTO, "bad new in disk %s", d->target);
            if (!*d->newov) {
                free(d->newov);
                d->newov = NULL;
            }
        } else if (KEY("ov")) {
            const char *q = eq;
            while (q < e && !(e - eq == 1 && *eq == '-')) {
                const char *c = memchr(q, ',', (size_t)(e - q));
                char *path;
                c = c ? c : e;
                if (d->nov == TRACK_MAX_OVERLAYS)
                    return lb_fail(EPROTO, "too many overlays in disk %s",
                                   d->target);
                path = get_esc(q, (size_t)(c - q));
                if (!path || !*path) {
                    free(path);
                    return lb_fail(EPROTO, "bad overlay in disk %s", d->target);
                }
                d->ov[d->nov++] = path;
                q = c + 1;
            }
        } /* unknown fields: ignored (a newer version added them) */
#undef KEY
        p = e + 1;
    }
    if (!d->user_top || !d->user_fmt || !*d->user_top || d->acked > d->nov)
        return lb_fail(EPROTO, "incomplete disk %s", d->target);
    return 0;
}

int
track_parse(const char *text, size_t len, struct track_state *st)
{
    const char *p = text, *end = text + len;
    bool header = false;

    memset(st, 0, sizeof *st);
    if (len > TRACK_MAX_FILE)
        return lb_fail(EPROTO, "state file too large");
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *sp;
        size_t klen;
        CLEANUP_FREE char *val = NULL;

        if (le == p) {
            p = le + 1;
            continue;
        }
        sp = memchr(p, ' ', (size_t)(le - p));
        if (!sp)
            goto bad;
        klen = (size_t)(sp - p);
        if (!header) {
            if (klen != 16 || memcmp(p, "livebackup-track", 16) != 0 ||
                le - sp != 2 || sp[1] != '1')
                goto bad;
            header = true;
        } else if (klen == 4 && memcmp(p, "disk", 4) == 0) {
            if (parse_disk(st, sp + 1, le) < 0)
                goto fail;
        } else {
            val = get_esc(sp + 1, (size_t)(le - sp - 1));
            if (!val)
                goto bad;
            if (klen == 4 && memcmp(p, "name", 4) == 0)
                snprintf(st->name, sizeof st->name, "%s", val);
            else if (klen == 4 && memcmp(p, "uuid", 4) == 0)
                snprintf(st->uuid, sizeof st->uuid, "%s", val);
            else if (klen == 4 && memcmp(p, "repo", 4) == 0)
                snprintf(st->repo_id, sizeof st->repo_id, "%s", val);
            else if (klen == 4 && memcmp(p, "step", 4) == 0) {
                size_t i;
                for (i = 0; i < LB_ARRAY_SIZE(step_names); i++)
                    if (strcmp(val, step_names[i]) == 0)
                        break;
                if (i == LB_ARRAY_SIZE(step_names))
                    goto bad;
                st->step = (enum track_step)i;
            } else if (klen == 6 && memcmp(p, "backup", 6) == 0) {
                if (strlen(val) > PROTO_ID_LEN || !id_field_ok(val))
                    goto bad;
                snprintf(st->backup, sizeof st->backup, "%s", val);
            } else if (klen == 4 && memcmp(p, "last", 4) == 0) {
                if (strlen(val) > PROTO_ID_LEN || !id_field_ok(val))
                    goto bad;
                snprintf(st->last_backup, sizeof st->last_backup, "%s", val);
            } else if (klen == 7 && memcmp(p, "attempt", 7) == 0) {
                /* TIME ok|failed */
                long long t;
                char res[8];
                if (sscanf(val, "%lld %7s", &t, res) != 2)
                    goto bad;
                st->attempt_time = t;
                st->attempt_warning = strcmp(res, "warning") == 0;
                st->attempt_ok = strcmp(res, "ok") == 0 || st->attempt_warning;
            } else if (klen == 11 && memcmp(p, "attempt_msg", 11) == 0) {
                snprintf(st->attempt_msg, sizeof st->attempt_msg, "%s", val);
            } else if (klen == 8 && memcmp(p, "lastinfo", 8) == 0) {
                /* TIME SIZE FREEZE_MS */
                long long t;
                unsigned long long sz, fz;
                if (sscanf(val, "%lld %llu %llu", &t, &sz, &fz) != 3)
                    goto bad;
                st->last_time = t;
                st->last_size = sz;
                st->last_freeze_ms = fz;
            }
        }
        p = le + 1;
    }
    if (!header)
        goto bad;
    return 0;
bad:
    lb_fail(EPROTO, "malformed tracking state");
fail:
    track_free(st);
    return -1;
}

char *
track_format(const struct track_state *st)
{
    struct lb_buf b = {0};

#define LINE(k, v)                                                             \
    do {                                                                       \
        lb_buf_append(&b, k " ", sizeof(k));                                   \
        put_esc(&b, v);                                                        \
        lb_buf_put_u8(&b, '\n');                                               \
    } while (0)
    lb_buf_append(&b, "livebackup-track 1\n", 19);
    LINE("name", st->name);
    LINE("uuid", st->uuid);
    LINE("repo", st->repo_id);
    LINE("step", track_step_name(st->step));
    LINE("backup", st->backup);
    LINE("last", st->last_backup);
    if (st->attempt_time) {
        char v[64];
        snprintf(v, sizeof v, "%lld %s", (long long)st->attempt_time,
                 !st->attempt_ok       ? "failed"
                 : st->attempt_warning ? "warning"
                                       : "ok");
        LINE("attempt", v);
        LINE("attempt_msg", st->attempt_msg);
    }
    if (st->last_time) {
        char v[96];
        snprintf(v, sizeof v, "%lld %llu %llu", (long long)st->last_time,
                 (unsigned long long)st->last_size,
                 (unsigned long long)st->last_freeze_ms);
        LINE("lastinfo", v);
    }
#undef LINE
    for (size_t i = 0; i < st->nd; i++) {
        const struct track_disk *d = &st->d[i];
        char num[64];
        lb_buf_append(&b, "disk ", 5);
        put_esc(&b, d->target);
        lb_buf_append(&b, " top=", 5);
        put_esc(&b, d->user_top);
        lb_buf_append(&b, " fmt=", 5);
        put_esc(&b, d->user_fmt);
        snprintf(num, sizeof num, " size=%llu acked=%zu incr=%u last=",
                 (unsigned long long)d->size, d->acked, d->incrementals);
        lb_buf_append(&b, num, strlen(num));
        put_esc(&b, d->last_backup);
        lb_buf_append(&b, " new=", 5);
        put_esc(&b, d->newov);
        lb_buf_append(&b, " ov=", 4);
        if (d->nov == 0)
            lb_buf_put_u8(&b, '-');
        for (size_t k = 0; k < d->nov; k++) {
            if (k)
                lb_buf_put_u8(&b, ',');
            put_esc(&b, d->ov[k]);
        }
        lb_buf_put_u8(&b, '\n');
    }
    lb_buf_put_u8(&b, 0);
    return (char *)b.data;
}

/* ---- files --------------------------------------------------------------- */

struct track_handle {
    char *dir, *file;
    int lock_fd;
    struct track_state st;
};

const char *
track_dir(void)
{
    return agent_state_dir();
}

struct track_handle *
track_open(const char *uuid, const char *name, struct track_state **st)
{
    struct track_handle *h = lb_xcalloc(1, sizeof *h);
    CLEANUP_FREE char *lock = NULL;
    CLEANUP_FREE char *text = NULL;
    size_t len;

    h->lock_fd = -1;
    h->dir = lb_xstrdup(track_dir());
    if (lb_mkdir_p(h->dir, 0700) < 0)
        goto fail;
    lock = lb_xasprintf("%s/%s.lock", h->dir, uuid);
    h->file = lb_xasprintf("%s/%s.state", h->dir, uuid);
    h->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (h->lock_fd < 0) {
        lb_error(errno, "open %s", lock);
        goto fail;
    }
    if (flock(h->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        char who[64] = "";
        ssize_t n = pread(h->lock_fd, who, sizeof who - 1, 0);
        who[n > 0 ? n : 0] = '\0';
        who[strcspn(who, "\n")] = '\0';
        lb_fail(EWOULDBLOCK,
                "domain %s is being worked on by another "
                "livebackup (%s)",
                name, who[0] ? who : "pid unknown");
        lb_error_hint("wait for it to finish; two backups of one domain "
                      "never run at once");
        goto fail;
    }
    {
        char pid[32];
        snprintf(pid, sizeof pid, "pid %ld\n", (long)getpid());
        if (ftruncate(h->lock_fd, 0) == 0)
            (void)!pwrite(h->lock_fd, pid, strlen(pid), 0);
    }
    text = lb_read_file(h->file, 1u << 20, &len);
    if (!text) {
        if (errno != ENOENT)
            goto fail;
        lb_error_clear();
        snprintf(h->st.uuid, sizeof h->st.uuid, "%s", uuid);
    } else if (track_parse(text, len, &h->st) < 0) {
        lb_error_prefix("%s", h->file);
        lb_error_hint("move the file aside to start tracking %s afresh "
                      "(the next backup is then full)",
                      name);
        goto fail;
    }
    snprintf(h->st.name, sizeof h->st.name, "%s", name);
    *st = &h->st;
    return h;
fail:
    track_close(h);
    return NULL;
}

int
track_peek(const char *uuid, struct track_state *st)
{
    CLEANUP_FREE char *file = lb_xasprintf("%s/%s.state", track_dir(), uuid);
    CLEANUP_FREE char *text = NULL;
    size_t len;

    memset(st, 0, sizeof *st);
    text = lb_read_file(file, 1u << 20, &len);
    if (!text)
        return errno == ENOENT ? 1 : -1;
    return track_parse(text, len, st);
}

int
track_save(struct track_handle *h)
{
    CLEANUP_FREE char *text = track_format(&h->st);
    CLEANUP_FREE char *base = lb_xstrdup(strrchr(h->file, '/') + 1);

    return lb_write_file_atomic(h->dir, base, text, strlen(text), 0600);
}

int
track_remove(struct track_handle *h)
{
    if (unlink(h->file) < 0 && errno != ENOENT)
        return lb_error(errno, "remove %s", h->file);
    return lb_fsync_dir(h->dir);
}

void
track_close(struct track_handle *h)
{
    if (!h)
        return;
    if (h->lock_fd >= 0) {
        if (ftruncate(h->lock_fd, 0) < 0)
            lb_debug("cannot clear the lock file");
        close(h->lock_fd);
    }
    track_free(&h->st);
    free(h->dir);
    free(h->file);
    free(h);
}
