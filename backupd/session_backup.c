/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The requests of a backup (PROTOCOL.md, "Backup flow"): BACKUP_BEGIN
 * (or IMPORT, "Copy"),
 * then per disk DISK_BEGIN (DISK_READY and the parent's DEPTHS back),
 * QUERY/HAVE (to the QUERY thread), CHUNK (to the pool) and WINDOWS,
 * DISK_END; COMMIT once every
 * chunk is durable, or ABORT. The manifest is built by store/txn.c.
 */
#include "backupd/query.h"
#include "backupd/session.h"

#include <errno.h>
#include <string.h>

int
backupd_req_backup_begin(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_backup_begin bb;
    char name[256], parent[PROTO_ID_LEN + 1] = "";
    int st = proto_dec_backup_begin(p, len, &bb);

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "BACKUP_BEGIN", st);
    if (backupd_session_need_store(s, PROTO_OPEN_WRITE, "BACKUP_BEGIN") < 0 ||
        s->txn) {
        proto_kv_free(&bb.meta);
        if (s->txn) {
            lb_error(0, "a backup is already in progress in this session");
            return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
        }
        return -1;
    }
    proto_str_copy(name, sizeof name, bb.name);
    proto_str_copy(parent, sizeof parent, bb.parent);
    if (!backupd_session_name_allowed(s, name) ||
        (parent[0] && backupd_session_check_backup(s, parent) < 0)) {
        proto_kv_free(&bb.meta);
        if (!backupd_session_name_allowed(s, name))
            return backupd_session_deny_name(s, name);
        return -1;
    }
    s->txn = store_txn_begin(s->st, name, parent, &bb.meta);
    proto_kv_free(&bb.meta);
    if (!s->txn)
        return backupd_session_fail(s, 0);
    s->bytes_received_at_begin = proto_conn_bytes_in(s->conn);
    lb_info("backup %s of %s started%s%s", store_txn_id(s->txn), name,
            parent[0] ? ", parent " : "", parent);
    proto_enc_backup_started(&s->out, store_txn_id(s->txn), parent);
    return backupd_session_send(s);
}

/*
 * IMPORT (PROTOCOL.md, "Copy"): a backup of another repository, under its
 * own id and with its whole metadata; its disks follow as a full
 * backup's, and COMMIT (no keys) makes it the same backup here. Needs the
 * COPY feature and a writer; the store checks the rest (the id new here
 * and its time, an append-only connection's rule).
 */
int
backupd_req_import(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_import im;
    char id[PROTO_ID_LEN + 1], name[256], parent[PROTO_ID_LEN + 1];
    int st;

    if (!(s->features & PROTO_FEATURE_COPY)) {
        lb_error(0, "IMPORT without the copy feature");
        return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
    }
    st = proto_dec_import(p, len, &im);
    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "IMPORT", st);
    if (backupd_session_need_store(s, PROTO_OPEN_WRITE, "IMPORT") < 0 ||
        s->txn) {
        proto_kv_free(&im.b.meta);
        if (s->txn) {
            lb_error(0, "a backup is already in progress in this session");
            return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
        }
        return -1;
    }
    proto_str_copy(id, sizeof id, im.id);
    proto_str_copy(name, sizeof name, im.b.name);
    proto_str_copy(parent, sizeof parent, im.b.parent);
    if (!backupd_session_name_allowed(s, name)) {
        proto_kv_free(&im.b.meta);
        return backupd_session_deny_name(s, name);
    }
    s->txn = store_txn_import(s->st, id, name, parent, &im.b.meta);
    proto_kv_free(&im.b.meta);
    if (!s->txn)
        return backupd_session_fail(s, 0);
    s->importing = true;
    s->bytes_received_at_begin = proto_conn_bytes_in(s->conn);
    lb_info("import of backup %s of %s started", id, name);
    proto_enc_backup_started(&s->out, id, parent);
    return backupd_session_send(s);
}

/* DISK_READY goes out before the first DEPTHS frame. */
struct depths_out {
    struct session *s;
    uint64_t nwin;
    bool ready_sent;
};

static int
send_depths(void *opaque, uint64_t first, const uint8_t *d, size_t n)
{
    struct depths_out *o = opaque;

    if (!o->ready_sent) {
        proto_enc_disk_ready(&o->s->out, o->nwin, store_window_size(o->s->st));
        o->ready_sent = true;
    }
    proto_enc_depths(&o->s->out, first, d, n);
    return backupd_session_send(o->s);
}

int
backupd_req_disk_begin(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_disk_begin db;
    char disk[65];
    struct depths_out o = {s, 0, false};
    int st = proto_dec_disk_begin(p, len, &db);

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "DISK_BEGIN", st);
    if (!s->txn) {
        proto_kv_free(&db.meta);
        lb_error(0, "DISK_BEGIN outside a backup");
        return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
    }
    if (backupd_query_wait(s->query) < 0) {
        proto_kv_free(&db.meta);
        return -1;
    }
    proto_str_copy(disk, sizeof disk, db.disk);
    /* The window count is known before the parent is read. */
    o.nwin = proto_mf_windows_for(db.size, store_window_size(s->st));
    st = store_txn_disk_begin(s->txn, disk, db.size, db.mode, &db.meta, &o.nwin,
                              send_depths, &o);
    proto_kv_free(&db.meta);
    if (st < 0) {
        if (o.ready_sent)
            /* The client is reading DEPTHS: it gets the error next. */
            lb_buf_reset(&s->out);
        return backupd_session_fail(s, 0);
    }
    s->in_disk = true;
    if (!o.ready_sent)
        proto_enc_disk_ready(&s->out, o.nwin, store_window_size(s->st));
    return backupd_session_send(s);
}

int
backupd_req_query(struct session *s, const uint8_t *p, uint32_t len)
{
    const uint8_t *dg;
    uint32_t n;
    uint8_t bits[PROTO_MAX_QUERY / 8] = {0};
    int st = proto_dec_query(p, len, &dg, &n);

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "QUERY", st);
    if (backupd_session_need_store(s, PROTO_OPEN_READ, "QUERY") < 0)
        return -1;
    if (s->txn)
        return backupd_query_submit(s->query, dg, n);
    for (uint32_t i = 0; i < n; i++) {
        struct proto_digest d;
        int have;
        memcpy(d.b, dg + (size_t)i * PROTO_DIGEST_LEN, PROTO_DIGEST_LEN);
        have = store_chunk_touch(s->st, &d);
        if (have < 0)
            return backupd_session_fail(s, 0);
        if (have)
            bits[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    proto_enc_have(&s->out, bits, n);
    return backupd_session_send(s);
}

int
backupd_req_chunk(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_chunk c;
    int st = proto_dec_chunk(p, len, &c);

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "CHUNK", st);
    if (backupd_session_need_store(s, PROTO_OPEN_WRITE, "CHUNK") < 0)
        return -1;
    if (c.type == PROTO_CHUNK_RAW && c.raw_len > store_window_size(s->st)) {
        lb_fail(EINVAL, "RAW chunk larger than the repository's window");
        return backupd_session_fail(s, PROTO_ERR_INVALID);
    }
    if (s->txn)
        backupd_query_note_chunk(s->query, s->txn, &c.d, c.type, c.raw_len);
    backupd_pool_submit(s->pool, &c);
    return 0;
}

int
backupd_req_windows(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_rd pr;
    struct proto_window_rec rec;
    uint32_t count, seen = 0;
    int st = proto_dec_windows_init(&pr, p, len, &count);

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "WINDOWS", st);
    if (!s->txn || !s->in_disk) {
        lb_error(0, "WINDOWS outside a disk");
        return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
    }
    if (backupd_query_wait(s->query) < 0)
        return -1;
    while ((st = proto_dec_window_next(&pr, &rec)) == 1) {
        if (++seen > count)
            break;
        if (store_txn_window(s->txn, &rec) < 0)
            return backupd_session_fail(s, 0);
    }
    if (st < 0)
        return backupd_session_proto_fail(s, "WINDOWS", st);
    if (seen != count)
        return backupd_session_proto_fail(s, "WINDOWS", PROTO_E_RANGE);
    return 0;
}

int
backupd_req_disk_end(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_kv meta;
    int st = proto_dec_kv(p, len, &meta);

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "DISK_END", st);
    if (!s->txn || !s->in_disk) {
        proto_kv_free(&meta);
        lb_error(0, "DISK_END outside a disk");
        return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
    }
    if (backupd_query_wait(s->query) < 0) {
        proto_kv_free(&meta);
        return -1;
    }
    st = store_txn_disk_end(s->txn, &meta);
    proto_kv_free(&meta);
    s->in_disk = false;
    return st < 0 ? backupd_session_fail(s, 0) : 0;
}

/*
 * An encrypted repository's commit (PROTOCOL.md, "Backup flow"): the
 * final metadata of each disk, then of the backup, go to the client
 * (COMMIT_META), which answers with the manifest's MAC (SEAL). On return
 * *meta holds the one key left to commit: "mac". -1: the client was told
 * why (or is gone).
 */
static int
seal_exchange(struct session *s, struct proto_kv *meta)
{
    struct proto_hdr h;
    const uint8_t *p, *mac;
    char hex[2 * PROTO_SEAL_MAC_LEN + 1];
    int st;

    if (store_txn_prepare(s->txn, meta) < 0)
        return backupd_session_fail(s, 0);
    proto_kv_free(meta);
    for (size_t i = 0; i < store_txn_ndisks(s->txn); i++)
        proto_enc_kv(&s->out, PROTO_T_COMMIT_META,
                     store_txn_disk_meta(s->txn, i));
    proto_enc_kv(&s->out, PROTO_T_COMMIT_META, store_txn_meta(s->txn));
    if (backupd_session_send(s) < 0)
        return -1;
    if (proto_conn_recv(s->conn, &h, &p) < 0) {
        lb_warn("session ended: %s", lb_error_msg());
        return -1;
    }
    if (h.type != PROTO_T_SEAL) {
        lb_error(0, "expected SEAL, got %s", proto_type_name(h.type));
        return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
    }
    st = proto_dec_seal(p, h.len, &mac);
    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "SEAL", st);
    lb_hex_encode(hex, mac, PROTO_SEAL_MAC_LEN);
    proto_kv_set(meta, "mac", hex);
    return 0;
}

int
backupd_req_commit(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_kv meta, out;
    char id[PROTO_ID_LEN + 1];
    uint64_t chunks_new, bytes_new;
    int st = proto_dec_kv(p, len, &meta);

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "COMMIT", st);
    if (!s->txn || s->in_disk) {
        proto_kv_free(&meta);
        lb_error(0, "COMMIT without a finished backup");
        return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
    }
    lb_fault_point("backupd:commit-received");
    if (backupd_query_wait(s->query) < 0) {
        proto_kv_free(&meta);
        return -1;
    }
    /* Every chunk this backup sent must be stored before the manifest. */
    if (backupd_pool_wait(s->pool) < 0) {
        proto_kv_free(&meta);
        store_txn_abort(s->txn);
        s->txn = NULL;
        return backupd_session_fail(s, 0);
    }
    backupd_pool_take_stats(s->pool, &chunks_new, &bytes_new);
    store_txn_add_stats(s->txn, chunks_new, bytes_new,
                        proto_conn_bytes_in(s->conn) -
                            s->bytes_received_at_begin);
    snprintf(id, sizeof id, "%s", store_txn_id(s->txn));
    if (s->importing && meta.n) {
        /* Everything an import commits came with IMPORT (its MAC too). */
        proto_kv_free(&meta);
        store_txn_abort(s->txn);
        s->txn = NULL;
        lb_fail(EINVAL, "the COMMIT of an import carries no metadata");
        return backupd_session_fail(s, PROTO_ERR_INVALID);
    }
    if (store_encryption(s->st) != PROTO_ENC_NONE && !s->importing &&
        seal_exchange(s, &meta) < 0) {
        proto_kv_free(&meta);
        store_txn_abort(s->txn);
        s->txn = NULL;
        return -1;
    }
    st = store_txn_commit(s->txn, &meta, &out);
    s->txn = NULL;
    proto_kv_free(&meta);
    if (st < 0)
        return backupd_session_fail(s, 0); /* its hint knows a copy's */
    s->importing = false;
    lb_info("backup %s committed", id);
    proto_enc_kv(&s->out, PROTO_T_COMMITTED, &out);
    proto_kv_free(&out);
    return backupd_session_send(s);
}

int
backupd_req_abort(struct session *s, uint32_t len)
{
    if (len != 0)
        return backupd_session_proto_fail(s, "ABORT", PROTO_E_TRAILING);
    if (s->txn) {
        if (backupd_query_wait(s->query) < 0)
            return -1;
        backupd_pool_wait(s->pool);
        lb_info("backup %s abandoned by the client", store_txn_id(s->txn));
        store_txn_abort(s->txn);
        s->txn = NULL;
        s->in_disk = false;
        s->importing = false;
    }
    proto_enc_ok(&s->out, 0);
    return backupd_session_send(s);
}
