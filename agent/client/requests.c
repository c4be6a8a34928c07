/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The requests of a session answered by a stream of frames (PROTOCOL.md,
 * "Requests"): LIST, GET_MANIFEST, VERIFY and PRUNE all go through one
 * receive loop, agent_repo_stream; DELETE and GC get one reply. And a
 * backup opened for reading: listed, picked, its manifest downloaded and
 * checked.
 */
#include "agent/client/client_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>

const char *const agent_keep_rules[AGENT_KEEP_NRULES] = {
    "last", "hourly", "daily", "weekly", "monthly", "yearly"};

int
agent_repo_stream(struct agent_repo *r, uint16_t entry, uint16_t end,
                  agent_frame_fn fn, void *opaque, const uint8_t **endp,
                  uint32_t *endlen)
{
    *endp = NULL;
    *endlen = 0;
    if (proto_conn_send_buf(r->conn, &r->out) < 0) {
        agent_repo_explain(r);
        return -1;
    }
    for (;;) {
        struct proto_hdr h;
        const uint8_t *p;

        if (proto_conn_recv(r->conn, &h, &p) < 0) {
            agent_repo_explain(r);
            return -1;
        }
        if (h.type == end) {
            *endp = p;
            *endlen = h.len;
            return 0;
        }
        if (h.type == PROTO_T_ERROR) {
            proto_conn_take_error(r->conn, p, h.len, NULL);
            return -1;
        }
        if (h.type != entry) {
            lb_error(0, "protocol error: unexpected %s (expected %s)",
                     proto_type_name(h.type), proto_type_name(entry));
            return -1;
        }
        if (fn(opaque, p, h.len) < 0)
            return -1;
    }
}

/* ---- entries that are key/value lists ---------------------------------- */

struct kv_stream {
    uint16_t type;
    agent_entry_fn fn;
    void *opaque;
    const char *const *need; /* keys every entry must hold (NULL-ended) */
};

static int
kv_entry(void *opaque, const uint8_t *p, uint32_t len)
{
    struct kv_stream *k = opaque;
    struct proto_kv e;
    int r = 0;

    if (proto_dec_kv(p, len, &e) != PROTO_OK)
        return lb_error(0, "protocol error: malformed %s",
                        proto_type_name(k->type));
    for (const char *const *n = k->need; n && *n && r == 0; n++)
        if (!proto_kv_get(&e, *n))
            r = lb_error(0, "protocol error: %s without %s",
                         proto_type_name(k->type), *n);
    if (r == 0)
        r = k->fn(k->opaque, &e);
    proto_kv_free(&e);
    return r;
}

/* The end frame's key/value list into *out (if not NULL). */
static int
kv_end(uint16_t type, const uint8_t *p, uint32_t len, struct proto_kv *out)
{
    struct proto_kv kv;

    if (proto_dec_kv(p, len, &kv) != PROTO_OK)
        return lb_error(0, "protocol error: malformed %s",
                        proto_type_name(type));
    if (out)
        *out = kv;
    else
        proto_kv_free(&kv);
    return 0;
}

/* ---- LIST -------------------------------------------------------------- */

/* Send what r->out holds (a LIST, or nothing when it was sent before),
 * then read the LIST's answer. */
static int
list_read(struct agent_repo *r, agent_entry_fn fn, void *opaque)
{
    static const char *const need[] = {"id", NULL};
    struct kv_stream k = {PROTO_T_LIST_ENTRY, fn, opaque, need};
    const uint8_t *p;
    uint32_t len;

    return agent_repo_stream(r, PROTO_T_LIST_ENTRY, PROTO_T_LIST_END, kv_entry,
                             &k, &p, &len);
}

int
agent_name_check(const char *name)
{
    char *safe;

    if (proto_name_valid(name, strlen(name)))
        return 0;
    safe = lb_term_line(name);
    lb_fail(EINVAL,
            "invalid name '%s': a name is 1 to 200 bytes, with no '/' and "
            "no control character, and not '.' or '..'",
            safe);
    free(safe);
    return -1;
}

int
agent_repo_list_each(struct agent_repo *r, const char *name, agent_entry_fn fn,
                     void *opaque)
{
    /* On the wire an empty name lists every set. */
    if (name && agent_name_check(name) < 0)
        return -1;
    proto_enc_str(&r->out, PROTO_T_LIST, name ? name : "");
    return list_read(r, fn, opaque);
}

static int
list_collect(void *opaque, struct proto_kv *e)
{
    struct agent_list *l = opaque;
    /* the entry in the array, its entries' array and each string: an
     * allocation of its own (malloc's chunks: 8 bytes more, 16-aligned) */
    size_t size = sizeof *e + e->n * sizeof *e->e + 32;

    for (size_t i = 0; i < e->n; i++)
        size += ((strlen(e->e[i].key) + 24) & ~(size_t)15) +
                ((strlen(e->e[i].val) + 24) & ~(size_t)15);
    if (l->bytes + size > AGENT_LIST_MAX)
        return lb_fail(EPROTO,
                       "the repository listed more than %zu MiB of backups "
                       "(%zu of them) and went on: refused (a damaged or "
                       "broken-into backupd?)",
                       AGENT_LIST_MAX >> 20, l->n);
    l->bytes += size;
    if ((l->n & (l->n - 1)) == 0) /* 0, 1, 2, 4...: full, double it */
        l->b = lb_xrealloc(l->b, (l->n ? 2 * l->n : 1) * sizeof *l->b);
    l->b[l->n++] = *e;
    memset(e, 0, sizeof *e);
    return 0;
}

int
agent_repo_list(struct agent_repo *r, const char *name, struct agent_list *out)
{
    memset(out, 0, sizeof *out);
    if (agent_repo_list_each(r, name, list_collect, out) < 0) {
        agent_list_free(out);
        return -1;
    }
    return 0;
}

int
agent_repo_list_two(struct agent_repo *a, struct agent_repo *b,
                    struct agent_list *la, struct agent_list *lb)
{
    memset(la, 0, sizeof *la);
    memset(lb, 0, sizeof *lb);
    /* b lists its backups while a's listing is read */
    proto_enc_str(&b->out, PROTO_T_LIST, "");
    if (proto_conn_send_buf(b->conn, &b->out) < 0) {
        agent_repo_explain(b);
        return -1;
    }
    if (agent_repo_list(a, NULL, la) < 0)
        return -1;
    if (list_read(b, list_collect, lb) < 0) {
        agent_list_free(la);
        agent_list_free(lb);
        return -1;
    }
    return 0;
}

void
agent_list_free(struct agent_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        proto_kv_free(&l->b[i]);
    free(l->b);
    l->b = NULL;
    l->n = 0;
    l->bytes = 0;
}

ssize_t
agent_list_pick(const struct agent_list *l, const char *name, const char *spec)
{
    int64_t t;

    if (l->n == 0) {
        lb_fail(ENOENT, "no backups of %s in this repository", name);
        lb_error_hint("livebackup list shows the backups and their names");
        return -1;
    }
    if (!spec || strcmp(spec, "latest") == 0)
        return (ssize_t)l->n - 1;
    if (proto_backup_id_valid(spec, strlen(spec))) {
        for (size_t i = 0; i < l->n; i++)
            if (strcmp(proto_kv_get(&l->b[i], "id"), spec) == 0)
                return (ssize_t)i;
        lb_fail(ENOENT, "no backup %s of %s", spec, name);
        lb_error_hint("livebackup list --name %s shows its backups", name);
        return -1;
    }
    if (lb_parse_time(spec, &t) == 0) {
        ssize_t best = -1;
        for (size_t i = 0; i < l->n; i++)
            if ((int64_t)proto_kv_get_u64(&l->b[i], "time", 0) <= t)
                best = (ssize_t)i;
        if (best < 0) {
            char first[32];
            lb_format_time(first, sizeof first,
                           (int64_t)proto_kv_get_u64(&l->b[0], "time", 0));
            lb_fail(ENOENT,
                    "no backup of %s at or before %s (the first is "
                    "from %s)",
                    name, spec, first);
        }
        return best;
    }
    lb_fail(EINVAL,
            "'%s' is neither a backup id, 'latest', nor a time "
            "(YYYY-MM-DD[THH:MM[:SS]], UTC)",
            spec);
    return -1;
}

/* ---- GET_MANIFEST ------------------------------------------------------ */

struct manifest_sink {
    int fd;
    uint64_t total;
    const char *id, *dir;
    uint64_t keep; /* bytes to leave free where it goes */
};

/* Every this much of a manifest, the room left where it goes is looked
 * at. */
#define MANIFEST_CHECK_EVERY ((uint64_t)1 << 20)

/* A manifest is written where the VM host's images may be too: one that
 * never ends (a damaged or broken-into backupd) must not fill that
 * filesystem, its guests' writes failing meanwhile. It stops while a
 * tenth of the filesystem (at most 1 GiB), and half the room it found,
 * are still free. */
static uint64_t
manifest_keep(int fd)
{
    struct statfs fs;
    uint64_t keep = (uint64_t)1 << 30;

    if (fstatfs(fd, &fs) < 0)
        return 0;
    if ((uint64_t)fs.f_blocks * fs.f_bsize / 10 < keep)
        keep = (uint64_t)fs.f_blocks * fs.f_bsize / 10;
    if ((uint64_t)fs.f_bavail * fs.f_bsize / 2 < keep)
        keep = (uint64_t)fs.f_bavail * fs.f_bsize / 2;
    return keep;
}

static int
manifest_data(void *opaque, const uint8_t *p, uint32_t len)
{
    struct manifest_sink *m = opaque;
    struct statfs fs;

    if (lb_write_full(m->fd, p, len) < 0)
        return lb_error(errno, "write the manifest to a temporary file");
    m->total += len;
    if (m->total / MANIFEST_CHECK_EVERY !=
            (m->total - len) / MANIFEST_CHECK_EVERY &&
        fstatfs(m->fd, &fs) == 0 &&
        (uint64_t)fs.f_bavail * fs.f_bsize < m->keep) {
        lb_fail(ENOSPC,
                "the manifest of backup %s is %" PRIu64
                " MiB so far: the filesystem of %s would be left with "
                "less than %" PRIu64 " MiB free; refused",
                m->id, m->total >> 20, m->dir, m->keep >> 20);
        lb_error_hint("set TMPDIR to a directory with room, or check the "
                      "repository server (a damaged or broken-into backupd "
                      "sends a manifest without end)");
        return -1;
    }
    return 0;
}

int
agent_repo_get_manifest(struct agent_repo *r, const char *id)
{
    const char *dir = getenv("TMPDIR");
    CLEANUP_FREE char *path = NULL;
    struct manifest_sink m = {-1, 0, id, dir && *dir ? dir : "/tmp", 0};
    const uint8_t *p;
    uint32_t len;
    uint64_t want;

    path = lb_xasprintf("%s/livebackup-manifest-XXXXXX", m.dir);
    m.fd = mkstemp(path);
    if (m.fd < 0)
        return lb_error(errno, "create a temporary file in %s", m.dir);
    unlink(path);
    m.keep = manifest_keep(m.fd);
    proto_enc_str(&r->out, PROTO_T_GET_MANIFEST, id);
    if (agent_repo_stream(r, PROTO_T_MANIFEST_DATA, PROTO_T_MANIFEST_END,
                          manifest_data, &m, &p, &len) < 0)
        goto fail;
    if (proto_dec_u64(p, len, &want) != PROTO_OK || want != m.total) {
        lb_error(0, "manifest of %s: transfer incomplete", id);
        goto fail;
    }
    if (lseek(m.fd, 0, SEEK_SET) < 0) {
        lb_error(errno, "seek");
        goto fail;
    }
    return m.fd;
fail:
    close(m.fd);
    return -1;
}

int
agent_repo_read_depths(struct agent_repo *r, uint64_t nwin, uint8_t *out)
{
    uint64_t got = 0;

    while (got < nwin) {
        const uint8_t *p, *d;
        uint32_t len;
        uint64_t first;
        size_t n;
        if (proto_conn_expect(r->conn, PROTO_T_DEPTHS, &p, &len, NULL) < 0)
            return -1;
        if (proto_dec_depths(p, len, &first, &d, &n) != PROTO_OK ||
            first != got || n > nwin - got)
            return lb_error(0, "protocol error: bad DEPTHS");
        if (out)
            memcpy(out + got, d, n);
        got += n;
    }
    return 0;
}

/* ---- VERIFY, PRUNE, DELETE, GC ----------------------------------------- */

int
agent_repo_verify(struct agent_repo *r, agent_entry_fn fn, void *opaque,
                  struct proto_kv *summary)
{
    static const char *const need[] = {"event", NULL};
    struct kv_stream k = {PROTO_T_VERIFY_EVENT, fn, opaque, need};
    struct proto_kv req = {0};
    const uint8_t *p;
    uint32_t len;

    memset(summary, 0, sizeof *summary);
    proto_enc_kv(&r->out, PROTO_T_VERIFY, &req);
    if (agent_repo_stream(r, PROTO_T_VERIFY_EVENT, PROTO_T_VERIFY_END, kv_entry,
                          &k, &p, &len) < 0)
        return -1;
    return kv_end(PROTO_T_VERIFY_END, p, len, summary);
}

/* A PRUNE_ENTRY's action is keep or remove. */
struct prune_stream {
    agent_entry_fn fn;
    void *opaque;
};

static int
prune_entry(void *opaque, struct proto_kv *e)
{
    struct prune_stream *ps = opaque;
    const char *action = proto_kv_get(e, "action");

    if (strcmp(action, "keep") != 0 && strcmp(action, "remove") != 0)
        return lb_error(0, "protocol error: malformed PRUNE_ENTRY");
    return ps->fn(ps->opaque, e);
}

int
agent_repo_prune(struct agent_repo *r, const struct agent_prune_req *q,
                 agent_entry_fn fn, void *opaque)
{
    static const char *const need[] = {"id", "name", "action", NULL};
    struct prune_stream ps = {fn, opaque};
    struct kv_stream k = {PROTO_T_PRUNE_ENTRY, prune_entry, &ps, need};
    struct proto_kv req = {0};
    const uint8_t *p;
    uint32_t len;

    proto_kv_set(&req, "name", q->name ? q->name : "");
    for (size_t i = 0; i < AGENT_KEEP_NRULES; i++) {
        char key[32];
        snprintf(key, sizeof key, "keep_%s", agent_keep_rules[i]);
        proto_kv_set_u64(&req, key, q->keep[i]);
    }
    proto_kv_set_u64(&req, "dry_run", q->dry_run);
    proto_enc_kv(&r->out, PROTO_T_PRUNE, &req);
    proto_kv_free(&req);
    return agent_repo_stream(r, PROTO_T_PRUNE_ENTRY, PROTO_T_OK, kv_entry, &k,
                             &p, &len);
}

int
agent_repo_delete(struct agent_repo *r, const char *id)
{
    const uint8_t *p;
    uint32_t len;

    proto_enc_str(&r->out, PROTO_T_DELETE, id);
    return agent_repo_call(r, PROTO_T_OK, &p, &len, NULL);
}

int
agent_repo_gc(struct agent_repo *r, bool dry_run, struct proto_kv *summary)
{
    struct proto_kv req = {0};
    const uint8_t *p;
    uint32_t len;

    memset(summary, 0, sizeof *summary);
    proto_kv_set_u64(&req, "dry_run", dry_run);
    proto_enc_kv(&r->out, PROTO_T_GC, &req);
    proto_kv_free(&req);
    if (agent_repo_call(r, PROTO_T_GC_END, &p, &len, NULL) < 0)
        return -1;
    return kv_end(PROTO_T_GC_END, p, len, summary);
}

/* ---- chunks ------------------------------------------------------------ */

int
agent_repo_have(struct agent_repo *r, const struct proto_digest *d, uint32_t n,
                uint8_t *have)
{
    const uint8_t *p, *bits;
    uint32_t len, got;

    proto_enc_query(&r->out, PROTO_T_QUERY, d, n);
    if (agent_repo_call(r, PROTO_T_HAVE, &p, &len, NULL) < 0)
        return -1;
    if (proto_dec_have(p, len, &bits, &got) != PROTO_OK || got != n)
        return lb_fail(EPROTO, "protocol error: bad HAVE");
    memcpy(have, bits, (n + 7) / 8);
    return 0;
}

int
agent_repo_get_chunks(struct agent_repo *r, const struct proto_digest *d,
                      uint32_t n, agent_chunk_fn fn, void *opaque)
{
    proto_enc_query(&r->out, PROTO_T_GET_CHUNKS, d, n);
    if (proto_conn_send_buf(r->conn, &r->out) < 0) {
        agent_repo_explain(r);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p;
        uint32_t len;
        struct proto_chunk c;
        if (proto_conn_expect(r->conn, PROTO_T_CHUNK_DATA, &p, &len, NULL) <
            0) {
            agent_repo_explain(r);
            return -1;
        }
        if (proto_dec_chunk(p, len, &c) != PROTO_OK ||
            memcmp(c.d.b, d[i].b, PROTO_DIGEST_LEN) != 0)
            return lb_fail(EPROTO, "protocol error: CHUNK_DATA does not "
                                   "answer GET_CHUNKS");
        if (fn(opaque, &c) < 0)
            return -1;
    }
    return 0;
}

/* ---- a backup, opened for reading -------------------------------------- */

int
agent_backup_pick(struct agent_repo *r, const char *name, const char *spec,
                  struct agent_backup *b)
{
    struct agent_list l = {0};
    struct proto_kv m = {0};
    ssize_t pick = -1;

    memset(b, 0, sizeof *b);
    b->r = r;
    b->mfd = -1;
    if (agent_repo_list(r, name, &l) < 0)
        return -1;
    if (name) {
        pick = agent_list_pick(&l, name, spec);
    } else {
        for (size_t i = 0; i < l.n; i++)
            if (strcmp(proto_kv_get(&l.b[i], "id"), spec) == 0)
                pick = (ssize_t)i;
        if (pick < 0)
            lb_fail(ENOENT, "no backup %s in this repository", spec);
    }
    if (pick < 0) {
        agent_list_free(&l);
        return -1;
    }
    b->meta = l.b[pick];
    memset(&l.b[pick], 0, sizeof l.b[pick]);
    agent_list_free(&l);
    b->id = proto_kv_get(&b->meta, "id");
    /* The manifest comes while the key's KDF may still run; it is read
     * (and authenticated) with the key. */
    b->mfd = agent_repo_get_manifest(r, b->id);
    if (b->mfd < 0 || agent_repo_unlock(r) < 0 ||
        agent_manifest_read(r, b->mfd, b->id, &b->disks, &b->ndisks, &m) < 0)
        return -1;
    /* From here on the backup's metadata is its manifest's, checked (and
     * in an encrypted repository authenticated and opened), not the
     * listing's. */
    proto_kv_free(&b->meta);
    b->meta = m;
    b->id = proto_kv_get(&b->meta, "id");
    return 0;
}

int
agent_backup_open(const char *url, const char *name, const char *spec,
                  struct agent_backup *b)
{
    struct agent_repo *r = agent_repo_connect(url);
    uint64_t t = lb_now_ns();
    int rc;

    memset(b, 0, sizeof *b);
    b->mfd = -1;
    if (!r)
        return -1;
    rc = agent_repo_open(r, PROTO_OPEN_READ);
    /* The key's KDF runs on its thread while the listing comes. */
    if (rc == 0)
        rc = agent_repo_unlock_start(r);
    if (rc == 0)
        rc = agent_backup_pick(r, name, spec, b);
    b->r = r;
    b->own_repo = true;
    b->connected_ns = t;
    return rc;
}

void
agent_backup_close(struct agent_backup *b)
{
    if (b->id && b->mfd >= 0) /* set once id is */
        close(b->mfd);
    free(b->disks);
    proto_kv_free(&b->meta);
    if (b->own_repo)
        agent_repo_close(b->r);
    memset(b, 0, sizeof *b);
    b->mfd = -1;
}

const struct agent_restore_disk *
agent_backup_disk(const struct agent_backup *b, const char *disk)
{
    struct lb_buf names = {0};

    for (size_t i = 0; i < b->ndisks; i++)
        if (strcmp(b->disks[i].name, disk) == 0)
            return &b->disks[i];
    for (size_t k = 0; k < b->ndisks; k++) {
        if (k)
            lb_buf_append(&names, ", ", 2);
        lb_buf_append(&names, b->disks[k].name, strlen(b->disks[k].name));
    }
    lb_buf_put_u8(&names, 0);
    lb_fail(ENOENT, "backup %s has no disk %s (it has: %s)", b->id, disk,
            (char *)names.data);
    lb_buf_free(&names);
    return NULL;
}

char *
agent_backup_domain_xml(struct agent_backup *b)
{
    const char *hex = proto_kv_get(&b->meta, "domain_xml");
    struct proto_digest d;
    char *xml = NULL;
    size_t len;

    if (!hex || proto_digest_parse(hex, &d) < 0) {
        lb_fail(EINVAL,
                "backup %s holds no domain XML (it was made by "
                "backup-image)",
                b->id);
        lb_error_hint("restore its disks with livebackup restore-image");
        return NULL;
    }
    if (agent_get_blob(b->r, &d, &xml, &len) < 0) {
        lb_error_prefix("backup %s: saved domain XML", b->id);
        return NULL;
    }
    return xml;
}
