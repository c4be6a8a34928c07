/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * verify --key: what the server cannot check without the key, checked
 * through the session with it (store/FORMAT.md, "verify"). Every manifest
 * is downloaded and authenticated (its MAC), every chunk the manifests
 * name is fetched once and opened (authenticated against its id, type and
 * length, decompressed, its id recomputed); damage is then named per
 * backup and disk, as the server's verify names it. On an unencrypted
 * repository the same walk re-checks every chunk's digest on this host.
 *
 * Memory: 33 bytes per distinct chunk the backups name (a sorted array),
 * plus one chunk's buffers.
 */
#include "agent/client/client_int.h"

#include <errno.h>
#include <string.h>

struct ref {
    uint8_t d[PROTO_DIGEST_LEN];
    uint8_t type;
};

struct vstate {
    struct agent_repo *r;
    agent_entry_fn fn;
    void *opaque;
    struct ref *refs;
    uint8_t *bad; /* per ref: 0 sound, 1 missing, 2 damaged */
    size_t n, cap;
    uint64_t backups, backups_damaged, chunks_damaged, missing, bytes;
    uint8_t *plain;
    struct proto_zctx *z;
    size_t next; /* the ref the next CHUNK_DATA answers */
};

static int
damage(struct vstate *v, const char *id, const char *name, const char *disk,
       const char *what)
{
    struct proto_kv ev = {0};
    int r;

    proto_kv_set(&ev, "event", "damage");
    proto_kv_set(&ev, "id", id);
    proto_kv_set(&ev, "name", name);
    proto_kv_set(&ev, "disk", disk);
    proto_kv_set(&ev, "what", what);
    r = v->fn(v->opaque, &ev);
    proto_kv_free(&ev);
    return r;
}

static void
add_ref(struct vstate *v, const uint8_t *d, uint8_t type)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 4096;
        v->refs = lb_xrealloc(v->refs, v->cap * sizeof *v->refs);
    }
    memcpy(v->refs[v->n].d, d, PROTO_DIGEST_LEN);
    v->refs[v->n++].type = type;
}

static int
cmp_ref(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(struct ref));
}

/*
 * Walk the windows of a manifest already authenticated: collect each ref
 * (report false), or report the windows of each disk that name a damaged
 * or missing chunk (1 if there were any).
 */
static int
walk(struct vstate *v, int fd, const char *id, const char *name, bool report)
{
    struct proto_mf_reader *rd;
    struct proto_mf_hdr h;
    struct proto_mf_disk d;
    int got, rc = -1, bad = 0;

    if (lseek(fd, 0, SEEK_SET) < 0)
        return lb_error(errno, "seek manifest");
    rd = proto_mf_reader_new(agent_manifest_fd_read, &fd);
    if (!rd || proto_mf_read_header(rd, &h) < 0)
        goto out;
    while ((got = proto_mf_next_disk(rd, &d)) == 1) {
        uint64_t nbad = 0, first = 0;
        char what[400] = "";
        for (uint64_t i = 0; i < d.nwindows; i++) {
            struct proto_mf_window w;
            if (proto_mf_next_window(rd, &w) < 0)
                goto out;
            for (uint8_t k = 0; k < w.depth; k++) {
                struct ref key, *f;
                if (!report) {
                    add_ref(v, w.refs[k].d.b, w.refs[k].type);
                    continue;
                }
                memcpy(key.d, w.refs[k].d.b, sizeof key.d);
                key.type = w.refs[k].type;
                f = bsearch(&key, v->refs, v->n, sizeof *f, cmp_ref);
                if (!f || !v->bad[f - v->refs])
                    continue;
                if (nbad++ == 0) {
                    char hex[65];
                    first = i;
                    proto_digest_hex(&w.refs[k].d, hex);
                    snprintf(what, sizeof what, "chunk %s %s", hex,
                             v->bad[f - v->refs] == 1
                                 ? "missing"
                                 : "damaged (it does not authenticate)");
                }
                break;
            }
        }
        if (nbad) {
            char msg[600];
            snprintf(msg, sizeof msg,
                     "%llu damaged window(s), first at byte offset %llu: %s",
                     (unsigned long long)nbad,
                     (unsigned long long)first * d.window_size, what);
            if (damage(v, id, name, d.name, msg) < 0)
                goto out;
            bad = 1;
        }
        if (proto_mf_read_disk_end(rd, NULL) < 0)
            goto out;
    }
    rc = got < 0 ? -1 : bad;
out:
    proto_mf_reader_free(rd);
    return rc;
}

/* One backup's manifest: downloaded, authenticated, its refs collected
 * (report false) or the damage of its windows reported. 1 if it is
 * damaged (its manifest, or with report its windows). */
static int
one_backup(struct vstate *v, const struct proto_kv *e, bool report)
{
    const char *id = proto_kv_get(e, "id");
    const char *name = proto_kv_get(e, "name") ? proto_kv_get(e, "name") : "";
    struct agent_restore_disk *disks = NULL;
    struct proto_kv meta = {0};
    size_t nd = 0;
    int fd, rc;

    fd = agent_repo_get_manifest(v->r, id);
    if (fd < 0)
        return -1; /* the session: LIST named it, it was there */
    rc = agent_manifest_read(v->r, fd, id, &disks, &nd, &meta);
    free(disks);
    if (rc < 0) {
        close(fd);
        if (report)
            return 0;
        return damage(v, id, name, "", lb_error_msg()) < 0 ? -1 : 1;
    }
    rc = walk(v, fd, id, name, report);
    if (rc == 0 && !report && proto_kv_get(&meta, "domain_xml")) {
        struct proto_digest x;
        if (proto_digest_parse(proto_kv_get(&meta, "domain_xml"), &x) == 0)
            add_ref(v, x.b, PROTO_CHUNK_BLOB);
    }
    proto_kv_free(&meta);
    close(fd);
    return rc;
}

/* A chunk fetched (GET_CHUNKS answers in request order). */
static int
got_chunk(void *opaque, const struct proto_chunk *c)
{
    struct vstate *v = opaque;
    const struct ref *f;
    size_t i;

    /* The missing ones were not asked for. */
    while (v->bad[v->next] == 1)
        v->next++;
    i = v->next++;
    f = &v->refs[i];

    v->bytes += c->data_len;
    if (c->type == f->type && agent_chunk_open(v->r, v->z, c, v->plain) == 0) {
        /* What a restore would refuse besides: a RAW chunk longer than a
         * window, a DELTA that does not apply to one. */
        uint32_t wl = c->type == PROTO_CHUNK_DELTA && c->raw_len >= 8
                          ? lb_load_be32(v->plain + 4)
                          : 0;
        if ((c->type != PROTO_CHUNK_RAW ||
             c->raw_len <= agent_repo_window_size(v->r)) &&
            (c->type != PROTO_CHUNK_DELTA ||
             (wl && wl <= agent_repo_window_size(v->r) &&
              proto_delta_apply(NULL, wl, v->plain, c->raw_len) == PROTO_OK)))
            return 0;
    }
    v->bad[i] = 2;
    v->chunks_damaged++;
    return 0;
}

/* Which refs the repository holds, then every one it holds, opened. */
static int
check_chunks(struct vstate *v)
{
    struct proto_digest *d = lb_xmalloc(PROTO_MAX_QUERY * sizeof *d);
    uint8_t bits[PROTO_MAX_QUERY / 8];
    size_t i = 0;
    int rc = -1;

    while (i < v->n) {
        size_t left = v->n - i;
        uint32_t n = left < PROTO_MAX_QUERY ? (uint32_t)left : PROTO_MAX_QUERY;
        for (uint32_t k = 0; k < n; k++)
            memcpy(d[k].b, v->refs[i + k].d, PROTO_DIGEST_LEN);
        if (agent_repo_have(v->r, d, n, bits) < 0)
            goto out;
        for (uint32_t k = 0; k < n; k++)
            if (!proto_bit(bits, k)) {
                v->bad[i + k] = 1;
                v->missing++;
            }
        i += n;
    }
    for (i = 0; i < v->n;) {
        uint32_t n = 0;
        size_t first = i;
        /* A batch of present chunks, in order. */
        while (i < v->n && n < PROTO_MAX_GET_CHUNKS) {
            if (!v->bad[i])
                memcpy(d[n++].b, v->refs[i].d, PROTO_DIGEST_LEN);
            i++;
        }
        if (n == 0)
            continue;
        v->next = first;
        if (agent_repo_get_chunks(v->r, d, n, got_chunk, v) < 0)
            goto out;
    }
    rc = 0;
out:
    free(d);
    return rc;
}

int
agent_verify_data(struct agent_repo *r, agent_entry_fn fn, void *opaque,
                  struct proto_kv *summary, bool *damaged)
{
    struct vstate v = {.r = r, .fn = fn, .opaque = opaque};
    struct agent_list l = {0};
    size_t u = 0;
    int rc = -1;

    memset(summary, 0, sizeof *summary);
    *damaged = false;
    /* The KDF runs while the listing comes. */
    if (agent_repo_unlock_start(r) < 0 || agent_repo_list(r, NULL, &l) < 0 ||
        agent_repo_unlock(r) < 0) {
        agent_list_free(&l);
        return -1;
    }
    for (size_t i = 0; i < l.n; i++) {
        int b = one_backup(&v, &l.b[i], false);
        if (b < 0)
            goto out;
        v.backups_damaged += (uint64_t)b;
    }
    v.backups = l.n;
    /* Each distinct chunk once. */
    if (v.n)
        qsort(v.refs, v.n, sizeof *v.refs, cmp_ref);
    for (size_t i = 0; i < v.n; i++)
        if (u == 0 || memcmp(&v.refs[u - 1], &v.refs[i], sizeof *v.refs) != 0)
            v.refs[u++] = v.refs[i];
    v.n = u;
    v.bad = lb_xcalloc(v.n ? v.n : 1, 1);
    v.plain = lb_xmalloc(PROTO_MAX_CHUNK_RAW);
    v.z = proto_zctx_new(1);
    if (check_chunks(&v) < 0)
        goto out;
    if (v.missing || v.chunks_damaged)
        for (size_t i = 0; i < l.n; i++) {
            int b = one_backup(&v, &l.b[i], true);
            if (b < 0)
                goto out;
            v.backups_damaged += (uint64_t)b;
        }
    *damaged = v.backups_damaged || v.missing || v.chunks_damaged;
    proto_kv_set_u64(summary, "backups", v.backups);
    proto_kv_set_u64(summary, "backups_damaged", v.backups_damaged);
    proto_kv_set_u64(summary, "chunks", v.n);
    proto_kv_set_u64(summary, "chunks_damaged", v.chunks_damaged);
    proto_kv_set_u64(summary, "chunk_refs_missing", v.missing);
    proto_kv_set_u64(summary, "bytes", v.bytes);
    rc = 0;
out:
    agent_list_free(&l);
    free(v.refs);
    free(v.bad);
    free(v.plain);
    proto_zctx_free(v.z);
    return rc;
}
