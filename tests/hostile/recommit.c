/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lbhostile recommit ID NAME XML: what a broken-into host (or a hostile
 * repository) can make of a genuine backup: a new backup of set NAME whose
 * disks are ID's, window for window (every chunk is in the repository
 * already), and whose saved domain XML is the file XML, however it names
 * the host's files. For the restore tests (issue 10, item 7).
 */
#include "tests/hostile/hostile.h"

#include <string.h>

struct mem {
    const uint8_t *p;
    size_t len, off;
};

static ssize_t
mem_read(void *opaque, void *buf, size_t len)
{
    struct mem *m = opaque;
    size_t n = LB_MIN(len, m->len - m->off);

    memcpy(buf, m->p + m->off, n);
    m->off += n;
    return (ssize_t)n;
}

/* GET_MANIFEST id, whole, into b: 0, 1 or -1. */
static int
get_manifest(struct h *h, const char *id, struct lb_buf *b)
{
    proto_enc_str(&h->out, PROTO_T_GET_MANIFEST, id);
    if (h_send(h) < 0)
        return -1;
    for (;;) {
        struct proto_hdr hd;
        const uint8_t *p;
        if (proto_conn_recv(h->c, &hd, &p) < 0)
            return -1;
        if (hd.type == PROTO_T_MANIFEST_END)
            return 0;
        if (hd.type == PROTO_T_ERROR) {
            struct proto_error e;
            if (proto_dec_error(p, hd.len, &e) == PROTO_OK) {
                h->code = e.code;
                snprintf(h->msg, sizeof h->msg, "%.*s", (int)e.msg.len,
                         e.msg.p);
            }
            return 1;
        }
        if (hd.type != PROTO_T_MANIFEST_DATA)
            return -1;
        lb_buf_append(b, p, hd.len);
    }
}

/* One disk of the manifest, as SET records of its stacks. */
static int
copy_disk(struct h *h, struct proto_mf_reader *r, const struct proto_mf_disk *d)
{
    struct proto_kv none = {0};
    size_t f = 0, at = 0;
    uint32_t count = 0;
    int rc = disk(h, d->name, d->size);

    for (uint64_t i = 0; rc == 0 && i < d->nwindows; i++) {
        struct proto_mf_window w;
        struct proto_window_rec rec = {.index = i, .op = PROTO_WIN_SET};
        if (proto_mf_next_window(r, &w) < 0)
            return -1;
        if (w.depth == 0)
            continue;
        if (count == 0) {
            f = proto_frame_begin(&h->out, PROTO_T_WINDOWS);
            at = proto_enc_windows_start(&h->out);
        }
        rec.n = w.depth;
        memcpy(rec.refs, w.refs, sizeof w.refs[0] * w.depth);
        proto_enc_window_rec(&h->out, &rec);
        if (++count == PROTO_MAX_WINDOW_RECORDS || i + 1 == d->nwindows) {
            proto_enc_windows_finish(&h->out, at, count);
            proto_frame_end(&h->out, f);
            count = 0;
            if (h_send(h) < 0)
                return -1;
        }
    }
    if (rc)
        return rc;
    if (count) {
        proto_enc_windows_finish(&h->out, at, count);
        proto_frame_end(&h->out, f);
    }
    if (proto_mf_read_disk_end(r, NULL) < 0)
        return -1;
    proto_enc_kv(&h->out, PROTO_T_DISK_END, &none);
    return h_send(h) < 0 ? -1 : 0;
}

int
recommit(struct h *h, const char *id, const char *name, const char *xml_file)
{
    CLEANUP_BUF struct lb_buf mf = {0};
    CLEANUP_FREE char *xml = NULL;
    struct proto_kv meta = {0}, cm = {0};
    struct proto_mf_reader *r = NULL;
    struct proto_mf_hdr hdr;
    struct proto_mf_disk d;
    struct mem m;
    struct chunk blob;
    char hex[65];
    size_t xlen;
    int rc = hello_open(h, PROTO_OPEN_WRITE), got;

    if (rc == 0)
        rc = get_manifest(h, id, &mf);
    if (rc)
        return outcome(h, rc, 0);
    xml = lb_read_file(xml_file, PROTO_MAX_BLOB, &xlen);
    if (!xml || xlen == 0) {
        say(h, "cannot read %s: %s", xml_file, lb_error_msg());
        return 1;
    }
    m = (struct mem){mf.data, mf.len, 0};
    r = proto_mf_reader_new(mem_read, &m);
    if (!r || proto_mf_read_header(r, &hdr) < 0)
        goto bad;
    rc = begin(h, name, NULL);
    while (rc == 0 && (got = proto_mf_next_disk(r, &d)) == 1)
        rc = copy_disk(h, r, &d);
    if (rc == 0 && (got < 0 || proto_mf_read_meta(r, &meta) < 0))
        goto bad;
    if (rc == 0) {
        chunk_make(&blob, PROTO_CHUNK_BLOB, (uint8_t *)xml, xlen);
        send_chunk(h, &blob);
        proto_digest_hex(&blob.c.d, hex);
        proto_kv_set(&cm, "domain_xml", hex);
        if (proto_kv_get(&meta, "kind"))
            proto_kv_set(&cm, "kind", proto_kv_get(&meta, "kind"));
        rc = finish(h, false, &cm);
    }
    proto_kv_free(&cm);
    proto_kv_free(&meta);
    proto_mf_reader_free(r);
    return outcome(h, rc, 0);
bad:
    say(h, "the manifest of %s does not read: %s", id, lb_error_msg());
    proto_kv_free(&meta);
    proto_mf_reader_free(r);
    return 1;
}
