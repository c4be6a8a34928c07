/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proto/manifest.c: manifests written with proto_mf_writer are read back
 * with proto_mf_reader through a callback that hands out small random
 * pieces (to exercise its buffering) and checked field by field; then every
 * single-byte corruption, every truncation, appended bytes and malformed
 * stacks must make reading fail.
 */
#include "proto/proto.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

static char *tmp;

static void
setup(void)
{
    tmp = tu_mkdtemp();
}

static void
teardown(void)
{
    tu_rm_rf(tmp);
    free(tmp);
}

TestSuite(mf, .init = setup, .fini = teardown);

/* ---- a byte source handing out pieces ------------------------------------ */

struct src {
    const uint8_t *p;
    size_t len, off;
    uint32_t rng;
    size_t maxpiece; /* 0: as much as asked for */
};

static ssize_t
src_read(void *opaque, void *buf, size_t len)
{
    struct src *s = opaque;
    size_t n = LB_MIN(len, s->len - s->off);

    if (s->maxpiece) {
        size_t piece = 1 + tu_rand(&s->rng) % s->maxpiece;
        n = LB_MIN(n, piece);
    }
    memcpy(buf, s->p + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

/* ---- the manifest under test --------------------------------------------- */

struct disk_spec {
    const char *name;
    uint64_t size;
    uint32_t ws;
};

static const struct disk_spec big_disks[] = {
    {"vda", 5 * (64u << 10) + 100, 64u << 10}, /* 6 windows, last short */
    {"vdb", 1, 64u << 10},                     /* 1 window of 1 byte */
    {"sda.1-X", 3u << 20, 1u << 20},           /* 3 windows */
    {"big", 5000ull * (64u << 10), 64u << 10}, /* > the reader's buffer */
};

static struct proto_digest
ref_digest(int d, uint64_t i, int k)
{
    struct proto_digest dg;

    for (int b = 0; b < PROTO_DIGEST_LEN; b++)
        dg.b[b] = (uint8_t)(d * 71 + i * 13 + (uint64_t)k * 7 + (uint64_t)b);
    return dg;
}

/* The stack of window i of disk d: empty, RAW only, RAW + DELTAs, a full
 * 32-deep stack, DELTAs only. */
static void
win_spec(int d, uint64_t i, struct proto_mf_window *w)
{
    static const uint8_t depth_cycle[] = {1, 0, 4, PROTO_MAX_STACK, 2, 0};
    bool raw_bottom = (i + (uint64_t)d) % 5 != 4;

    memset(w, 0, sizeof *w);
    w->depth = depth_cycle[(i + (uint64_t)d) % LB_ARRAY_SIZE(depth_cycle)];
    if (d == 3) /* the big disk: shallow stacks, to keep the test quick */
        w->depth = (uint8_t)(i % 4);
    for (int k = 0; k < w->depth; k++) {
        w->refs[k].type =
            k == 0 && raw_bottom ? PROTO_CHUNK_RAW : PROTO_CHUNK_DELTA;
        w->refs[k].d = ref_digest(d, i, k);
    }
}

static void
disk_meta(int d, struct proto_kv *kv)
{
    memset(kv, 0, sizeof *kv);
    if (d == 1)
        return; /* an empty list */
    proto_kv_set(kv, "mode", d == 2 ? "incremental" : "full");
    proto_kv_set(kv, "source", "/var/lib/libvirt/images/web1.qcow2");
    proto_kv_set_u64(kv, "disk_index", (uint64_t)d);
}

static void
top_meta(struct proto_kv *kv, bool big_value)
{
    memset(kv, 0, sizeof *kv);
    proto_kv_set(kv, "id", "20261123-114600-abcd");
    proto_kv_set(kv, "name", "web1");
    proto_kv_set(kv, "parent", "");
    if (big_value) {
        /* Larger than half the reader's buffer: read in pieces. */
        char *v = lb_xmalloc(200001);
        memset(v, 'x', 200000);
        v[200000] = '\0';
        proto_kv_set(kv, "xml", v);
        free(v);
    }
}

static uint8_t *
file_bytes(int fd, size_t *len)
{
    CLEANUP_FREE char *path = lb_xasprintf("%s/m", tmp);

    close(fd);
    return tu_read_file(path, len);
}

static int
new_file(void)
{
    CLEANUP_FREE char *path = lb_xasprintf("%s/m", tmp);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    cr_assert_geq(fd, 0);
    return fd;
}

/* Write the disks of spec with win_spec stacks. */
static uint8_t *
write_manifest(const struct disk_spec *disks, int ndisks, bool big_meta,
               size_t *len)
{
    int fd = new_file();
    struct proto_mf_writer *w = proto_mf_writer_new(fd);
    struct proto_kv kv;

    cr_assert_not_null(w);
    for (int d = 0; d < ndisks; d++) {
        uint64_t nw = proto_mf_windows_for(disks[d].size, disks[d].ws);
        cr_assert_eq(
            proto_mf_write_disk(w, disks[d].name, disks[d].size, disks[d].ws),
            0, "%s", lb_error_msg());
        for (uint64_t i = 0; i < nw; i++) {
            struct proto_mf_window win;
            win_spec(d, i, &win);
            cr_assert_eq(proto_mf_write_window(w, &win), 0);
        }
        disk_meta(d, &kv);
        cr_assert_eq(proto_mf_write_disk_end(w, &kv), 0);
        proto_kv_free(&kv);
    }
    top_meta(&kv, big_meta);
    cr_assert_eq(proto_mf_write_finish(w, &kv), 0, "%s", lb_error_msg());
    proto_kv_free(&kv);
    proto_mf_writer_free(w);
    return file_bytes(fd, len);
}

/* The small manifest the corruption tests work on: one disk, two windows
 * (a RAW chunk, then empty), a little metadata. */
static const struct disk_spec small_disk[] = {{"vda", 65537, 64u << 10}};

static uint8_t *
small_manifest(size_t *len)
{
    return write_manifest(small_disk, 1, false, len);
}

/* ---- reading ------------------------------------------------------------- */

/* Read a whole manifest, checking nothing but success. */
static int
full_read(const uint8_t *p, size_t len, size_t maxpiece, uint32_t seed)
{
    struct src s = {p, len, 0, seed, maxpiece};
    struct proto_mf_reader *r = proto_mf_reader_new(src_read, &s);
    struct proto_mf_hdr h;
    struct proto_mf_disk d;
    struct proto_kv meta = {0};
    int got, ret = -1;

    cr_assert_not_null(r);
    if (proto_mf_read_header(r, &h) < 0)
        goto out;
    while ((got = proto_mf_next_disk(r, &d)) == 1) {
        struct proto_mf_window w;
        for (uint64_t i = 0; i < d.nwindows; i++)
            if (proto_mf_next_window(r, &w) < 0)
                goto out;
        if (proto_mf_read_disk_end(r, &meta) < 0)
            goto out;
        proto_kv_free(&meta);
    }
    if (got < 0 || proto_mf_read_meta(r, &meta) < 0)
        goto out;
    proto_kv_free(&meta);
    ret = proto_mf_finish(r);
out:
    proto_mf_reader_free(r);
    return ret;
}

static void
check_window(const struct proto_mf_window *got, int d, uint64_t i)
{
    struct proto_mf_window want;

    win_spec(d, i, &want);
    cr_assert_eq(got->depth, want.depth, "disk %d window %llu", d,
                 (unsigned long long)i);
    for (int k = 0; k < want.depth; k++) {
        cr_assert_eq(got->refs[k].type, want.refs[k].type);
        cr_assert_arr_eq(got->refs[k].d.b, want.refs[k].d.b, PROTO_DIGEST_LEN);
    }
}

static void
read_and_check_all(const uint8_t *p, size_t len, size_t maxpiece, uint32_t seed)
{
    struct src s = {p, len, 0, seed, maxpiece};
    struct proto_mf_reader *r = proto_mf_reader_new(src_read, &s);
    struct proto_mf_hdr h;
    struct proto_mf_disk d;
    struct proto_kv meta = {0}, want = {0};

    cr_assert_eq(proto_mf_read_header(r, &h), 0, "%s", lb_error_msg());
    cr_assert_eq(h.ndisks, LB_ARRAY_SIZE(big_disks));
    cr_assert_eq(h.meta_off + h.meta_len + PROTO_DIGEST_LEN, len);
    for (int di = 0; di < (int)LB_ARRAY_SIZE(big_disks); di++) {
        cr_assert_eq(proto_mf_next_disk(r, &d), 1, "%s", lb_error_msg());
        cr_assert_str_eq(d.name, big_disks[di].name);
        cr_assert_eq(d.size, big_disks[di].size);
        cr_assert_eq(d.window_size, big_disks[di].ws);
        cr_assert_eq(d.nwindows, proto_mf_windows_for(big_disks[di].size,
                                                      big_disks[di].ws));
        for (uint64_t i = 0; i < d.nwindows; i++) {
            struct proto_mf_window w;
            cr_assert_eq(proto_mf_next_window(r, &w), 0, "%s", lb_error_msg());
            check_window(&w, di, i);
        }
        {
            struct proto_mf_window w;
            cr_assert_eq(proto_mf_next_window(r, &w), -1, "one too many");
        }
        cr_assert_eq(proto_mf_read_disk_end(r, &meta), 0, "%s", lb_error_msg());
        disk_meta(di, &want);
        cr_assert_eq(meta.n, want.n);
        for (size_t k = 0; k < want.n; k++) {
            cr_assert_str_eq(meta.e[k].key, want.e[k].key);
            cr_assert_str_eq(meta.e[k].val, want.e[k].val);
        }
        proto_kv_free(&meta);
        proto_kv_free(&want);
    }
    cr_assert_eq(proto_mf_next_disk(r, &d), 0);
    cr_assert_eq(proto_mf_read_meta(r, &meta), 0, "%s", lb_error_msg());
    top_meta(&want, true);
    cr_assert_eq(meta.n, want.n);
    for (size_t k = 0; k < want.n; k++) {
        cr_assert_str_eq(meta.e[k].key, want.e[k].key);
        cr_assert_str_eq(meta.e[k].val, want.e[k].val);
    }
    proto_kv_free(&meta);
    proto_kv_free(&want);
    cr_assert_eq(proto_mf_finish(r), 0, "%s", lb_error_msg());
    cr_assert_eq(s.off, len, "everything consumed");
    proto_mf_reader_free(r);
}

Test(mf, write_then_read_every_field)
{
    size_t len;
    uint8_t *p =
        write_manifest(big_disks, LB_ARRAY_SIZE(big_disks), true, &len);

    cr_assert_gt(len, 300000, "larger than the reader's buffer");
    read_and_check_all(p, len, 0, 0);    /* whatever the reader asks */
    read_and_check_all(p, len, 1, 0);    /* one byte at a time */
    read_and_check_all(p, len, 97, 42);  /* small random pieces */
    read_and_check_all(p, len, 5000, 7); /* larger random pieces */
    free(p);
}

Test(mf, header_round_trip_and_meta_decode)
{
    size_t len;
    uint8_t *p = write_manifest(big_disks, 2, false, &len);
    struct proto_mf_hdr h, h2;
    struct proto_kv meta;
    uint8_t enc[PROTO_MF_HDR_SIZE];

    cr_assert_eq(proto_mf_hdr_decode(p, len, &h), PROTO_OK);
    cr_assert_arr_eq(p, PROTO_MF_MAGIC, 8);
    cr_assert_eq(h.ndisks, 2);
    proto_mf_hdr_encode(enc, &h);
    cr_assert_arr_eq(enc, p, PROTO_MF_HDR_SIZE, "encode(decode(x)) == x");
    cr_assert_eq(proto_mf_hdr_decode(enc, sizeof enc, &h2), PROTO_OK);

    /* The meta block alone, as store_list reads it. */
    cr_assert_eq(proto_mf_meta_decode(&h, p + h.meta_off, h.meta_len, &meta),
                 0);
    cr_assert_str_eq(proto_kv_get(&meta, "name"), "web1");
    proto_kv_free(&meta);
    cr_assert_eq(
        proto_mf_meta_decode(&h, p + h.meta_off, h.meta_len - 1, &meta), -1,
        "length differs from the header");
    p[h.meta_off + 3] ^= 1;
    cr_assert_eq(proto_mf_meta_decode(&h, p + h.meta_off, h.meta_len, &meta),
                 -1, "digest mismatch");
    free(p);
}

Test(mf, header_decode_rejects)
{
    struct proto_mf_hdr h = {.ndisks = 1, .meta_off = 100, .meta_len = 10}, o;
    uint8_t b[PROTO_MF_HDR_SIZE];

    proto_mf_hdr_encode(b, &h);
    cr_assert_eq(proto_mf_hdr_decode(b, sizeof b, &o), PROTO_OK);
    cr_assert_eq(proto_mf_hdr_decode(b, sizeof b - 1, &o), PROTO_E_TRUNCATED);
    b[7] = '2';
    cr_assert_eq(proto_mf_hdr_decode(b, sizeof b, &o), PROTO_E_MAGIC);
    cr_assert_eq(o.version, PROTO_MF_VERSION, "0 encodes the current one");
    for (uint16_t v = 0; v < 4; v++) {
        proto_mf_hdr_encode(b, &h);
        lb_store_be16(b + 8, v);
        cr_assert_eq(proto_mf_hdr_decode(b, sizeof b, &o),
                     v == 1 || v == 2 ? PROTO_OK : PROTO_E_RANGE, "version %u",
                     v);
    }
    for (int off = 10; off < 12; off++) {
        proto_mf_hdr_encode(b, &h);
        b[off] = 0x40;
        cr_assert_eq(proto_mf_hdr_decode(b, sizeof b, &o), PROTO_E_RESERVED,
                     "flags byte %d", off);
    }
    for (int off = 28; off < 32; off++) {
        proto_mf_hdr_encode(b, &h);
        b[off] = 1;
        cr_assert_eq(proto_mf_hdr_decode(b, sizeof b, &o), PROTO_E_RESERVED,
                     "reserved byte %d", off);
    }
    h.ndisks = PROTO_MF_MAX_DISKS + 1;
    proto_mf_hdr_encode(b, &h);
    cr_assert_eq(proto_mf_hdr_decode(b, sizeof b, &o), PROTO_E_RANGE);
    h.ndisks = 1;
    h.meta_len = PROTO_MF_MAX_META + 1;
    proto_mf_hdr_encode(b, &h);
    cr_assert_eq(proto_mf_hdr_decode(b, sizeof b, &o), PROTO_E_RANGE);
    h.meta_len = 10;
    h.meta_off = PROTO_MF_HDR_SIZE - 1;
    proto_mf_hdr_encode(b, &h);
    cr_assert_eq(proto_mf_hdr_decode(b, sizeof b, &o), PROTO_E_RANGE);
}

Test(mf, skip_disk_and_implicit_disk_end)
{
    size_t len;
    uint8_t *p =
        write_manifest(big_disks, LB_ARRAY_SIZE(big_disks), false, &len);
    struct src s = {p, len, 0, 3, 61};
    struct proto_mf_reader *r = proto_mf_reader_new(src_read, &s);
    struct proto_mf_hdr h;
    struct proto_mf_disk d;
    struct proto_mf_window w;
    struct proto_kv meta;

    cr_assert_eq(proto_mf_read_header(r, &h), 0);
    cr_assert_eq(proto_mf_read_header(r, &h), -1, "header twice");
    cr_assert_eq(proto_mf_read_meta(r, &meta), -1, "meta before the disks");
    /* vda: skip its windows, then its metadata. */
    cr_assert_eq(proto_mf_next_disk(r, &d), 1);
    cr_assert_eq(proto_mf_read_disk_end(r, NULL), -1, "windows left");
    cr_assert_eq(proto_mf_next_disk(r, &d), -1, "windows left");
    cr_assert_eq(proto_mf_skip_disk(r), 0);
    cr_assert_eq(proto_mf_read_disk_end(r, NULL), 0);
    /* vdb: read its window, and let next_disk read the disk end. */
    cr_assert_eq(proto_mf_next_disk(r, &d), 1);
    cr_assert_str_eq(d.name, "vdb");
    cr_assert_eq(proto_mf_next_window(r, &w), 0);
    check_window(&w, 1, 0);
    cr_assert_eq(proto_mf_next_disk(r, &d), 1);
    cr_assert_str_eq(d.name, "sda.1-X");
    /* sda.1-X: skip everything, next_disk does the rest. */
    cr_assert_eq(proto_mf_skip_disk(r), 0);
    cr_assert_eq(proto_mf_next_disk(r, &d), 1);
    cr_assert_str_eq(d.name, "big");
    cr_assert_eq(proto_mf_skip_disk(r), 0);
    cr_assert_eq(proto_mf_finish(r), -1, "finish before the meta block");
    cr_assert_eq(proto_mf_next_disk(r, &d), 0);
    cr_assert_eq(proto_mf_read_meta(r, &meta), 0);
    proto_kv_free(&meta);
    cr_assert_eq(proto_mf_finish(r), 0, "%s", lb_error_msg());
    proto_mf_reader_free(r);
    free(p);
}

Test(mf, windows_for)
{
    cr_assert_eq(proto_mf_windows_for(1, 65536), 1);
    cr_assert_eq(proto_mf_windows_for(65536, 65536), 1);
    cr_assert_eq(proto_mf_windows_for(65537, 65536), 2);
    cr_assert_eq(proto_mf_windows_for(PROTO_MF_MAX_SIZE, PROTO_MIN_WINDOW),
                 PROTO_MF_MAX_SIZE / PROTO_MIN_WINDOW);
    cr_assert_eq(proto_mf_windows_for(PROTO_MF_MAX_SIZE - 1, PROTO_MAX_WINDOW),
                 PROTO_MF_MAX_SIZE / PROTO_MAX_WINDOW);
}

/* ---- damage -------------------------------------------------------------- */

Test(mf, small_manifest_reads)
{
    size_t len;
    uint8_t *p = small_manifest(&len);

    cr_assert_eq(full_read(p, len, 0, 0), 0, "%s", lb_error_msg());
    cr_assert_eq(full_read(p, len, 3, 1), 0, "%s", lb_error_msg());
    free(p);
}

Test(mf, every_single_byte_corruption_fails)
{
    static const uint8_t flips[] = {0x01, 0x80, 0xFF};
    size_t len;
    uint8_t *p = small_manifest(&len);

    for (size_t i = 0; i < len; i++) {
        for (size_t f = 0; f < LB_ARRAY_SIZE(flips); f++) {
            p[i] ^= flips[f];
            cr_assert_eq(full_read(p, len, 0, 0), -1,
                         "byte %zu ^ 0x%02x of %zu accepted", i, flips[f], len);
            cr_assert_eq(full_read(p, len, 7, (uint32_t)i), -1,
                         "byte %zu ^ 0x%02x (pieces) accepted", i, flips[f]);
            p[i] ^= flips[f];
        }
    }
    cr_assert_eq(full_read(p, len, 0, 0), 0, "restored");
    free(p);
}

Test(mf, every_truncation_fails)
{
    size_t len;
    uint8_t *p = small_manifest(&len);

    for (size_t n = 0; n < len; n++) {
        uint8_t *q = lb_xmalloc(n ? n : 1);
        memcpy(q, p, n);
        cr_assert_eq(full_read(q, n, 0, 0), -1, "cut at %zu of %zu", n, len);
        cr_assert_eq(full_read(q, n, 5, (uint32_t)n), -1, "cut at %zu", n);
        free(q);
    }
    free(p);
}

Test(mf, bytes_after_the_trailer_fail)
{
    size_t len;
    uint8_t *p = small_manifest(&len);
    uint8_t *q = lb_xmalloc(len + 1000);

    memcpy(q, p, len);
    memset(q + len, 0, 1000);
    for (size_t extra = 1; extra <= 1000; extra = extra * 3 + 1) {
        /* Whether the extra bytes arrive with the trailer in one read
         * (maxpiece 0) or after it, they must be noticed. */
        cr_assert_eq(full_read(q, len + extra, 0, 0), -1, "+%zu at once",
                     extra);
        cr_assert_eq(full_read(q, len + extra, 1, 0), -1, "+%zu bytewise",
                     extra);
        cr_assert_eq(full_read(q, len + extra, 50, (uint32_t)extra), -1,
                     "+%zu in pieces", extra);
    }
    free(p);
    free(q);
}

/* Read header and first disk; return the result of the first next_window. */
static int
first_window(const uint8_t *p, size_t len, struct proto_mf_window *w)
{
    struct src s = {p, len, 0, 0, 0};
    struct proto_mf_reader *r = proto_mf_reader_new(src_read, &s);
    struct proto_mf_hdr h;
    struct proto_mf_disk d;
    int ret;

    cr_assert_eq(proto_mf_read_header(r, &h), 0);
    cr_assert_eq(proto_mf_next_disk(r, &d), 1);
    ret = proto_mf_next_window(r, w);
    proto_mf_reader_free(r);
    return ret;
}

/* Offset of the first window's depth byte in a one-disk manifest. */
static size_t
first_window_off(const char *name)
{
    return PROTO_MF_HDR_SIZE + 4 + 2 + strlen(name) + 8 + 4 + 4 + 8;
}

Test(mf, stack_depth_over_the_maximum_fails)
{
    size_t len;
    uint8_t *p = small_manifest(&len);
    size_t off = first_window_off("vda");
    struct proto_mf_window w;

    cr_assert_eq(p[off], 1, "the first window holds one RAW ref");
    cr_assert_eq(p[off + 1], PROTO_CHUNK_RAW);
    cr_assert_eq(first_window(p, len, &w), 0);
    /* Checked as soon as the depth is read, before the trailer. */
    p[off] = PROTO_MAX_STACK + 1;
    cr_assert_eq(first_window(p, len, &w), -1);
    p[off] = 255;
    cr_assert_eq(first_window(p, len, &w), -1);
    free(p);

    {
        /* The writer refuses to write one. */
        int fd = new_file();
        struct proto_mf_writer *wr = proto_mf_writer_new(fd);
        struct proto_mf_window win = {0};
        win.depth = PROTO_MAX_STACK + 1;
        cr_assert_eq(proto_mf_write_disk(wr, "vda", 1, 65536), 0);
        cr_assert_eq(proto_mf_write_window(wr, &win), -1);
        proto_mf_writer_free(wr);
        close(fd);
    }
}

static uint8_t *
one_window_manifest(const struct proto_mf_window *win, size_t *len)
{
    int fd = new_file();
    struct proto_mf_writer *w = proto_mf_writer_new(fd);
    struct proto_kv kv = {0};

    cr_assert_eq(proto_mf_write_disk(w, "vda", 4096, 65536), 0);
    cr_assert_eq(proto_mf_write_window(w, win), 0);
    cr_assert_eq(proto_mf_write_disk_end(w, &kv), 0);
    cr_assert_eq(proto_mf_write_finish(w, &kv), 0);
    proto_mf_writer_free(w);
    return file_bytes(fd, len);
}

Test(mf, raw_above_the_bottom_and_bad_ref_types_fail)
{
    struct proto_mf_window win = {0}, w;
    size_t len;
    uint8_t *p;

    win.depth = 3;
    win.refs[0].type = PROTO_CHUNK_RAW;
    win.refs[1].type = PROTO_CHUNK_DELTA;
    win.refs[2].type = PROTO_CHUNK_DELTA;
    p = one_window_manifest(&win, &len);
    cr_assert_eq(full_read(p, len, 0, 0), 0, "RAW at the bottom is fine");
    free(p);

    win.refs[0].type = PROTO_CHUNK_DELTA;
    win.refs[2].type = PROTO_CHUNK_RAW;
    p = one_window_manifest(&win, &len);
    cr_assert_eq(first_window(p, len, &w), -1, "RAW on top of DELTAs");
    free(p);

    win.refs[0].type = PROTO_CHUNK_RAW;
    win.refs[1].type = PROTO_CHUNK_RAW;
    win.refs[2].type = PROTO_CHUNK_DELTA;
    p = one_window_manifest(&win, &len);
    cr_assert_eq(first_window(p, len, &w), -1, "two RAWs");
    free(p);

    for (unsigned t = 0; t < 256; t++) {
        if (t == PROTO_CHUNK_RAW || t == PROTO_CHUNK_DELTA)
            continue;
        win.refs[0].type = PROTO_CHUNK_RAW;
        win.refs[1].type = (uint8_t)t;
        win.refs[2].type = PROTO_CHUNK_DELTA;
        p = one_window_manifest(&win, &len);
        cr_assert_eq(first_window(p, len, &w), -1, "ref type %u", t);
        free(p);
    }
}

Test(mf, meta_block_not_at_meta_off_fails)
{
    size_t len;
    uint8_t *p = small_manifest(&len);
    struct src s = {p, len, 0, 0, 0};
    struct proto_mf_reader *r;
    struct proto_mf_hdr h;
    struct proto_mf_disk d;
    uint64_t off = lb_load_be64(p + 16);

    lb_store_be64(p + 16, off + 1);
    r = proto_mf_reader_new(src_read, &s);
    cr_assert_eq(proto_mf_read_header(r, &h), 0);
    cr_assert_eq(proto_mf_next_disk(r, &d), 1);
    cr_assert_eq(proto_mf_skip_disk(r), 0);
    cr_assert_eq(proto_mf_next_disk(r, &d), -1);
    cr_assert_neq(strstr(lb_error_msg(), "meta"), NULL, "%s", lb_error_msg());
    proto_mf_reader_free(r);
    free(p);
}

Test(mf, disk_section_checks)
{
    size_t len;
    uint8_t *p = small_manifest(&len);
    const size_t d0 = PROTO_MF_HDR_SIZE;
    /* magic 0..3, name len 4..5, name 6..8, size 9..16, ws 17..20,
     * flags 21..24, nwindows 25..32 */
    static const struct {
        size_t off;
        uint8_t val;
        const char *what;
    } bad[] = {
        {0, 'X', "disk magic"},      {5, 0, "empty name"},
        {5, 65, "name over 64"},     {6, '.', "name starting with '.'"},
        {7, '/', "'/' in the name"}, {24, 1, "flags"},
        {21, 0x80, "flags"},         {20, 1, "window size"},
        {32, 3, "nwindows"},         {9, 0x7f, "size over 2^50"},
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++) {
        struct src s = {p, len, 0, 0, 0};
        struct proto_mf_reader *r = proto_mf_reader_new(src_read, &s);
        struct proto_mf_hdr h;
        struct proto_mf_disk d;
        uint8_t save = p[d0 + bad[i].off];

        p[d0 + bad[i].off] = bad[i].val;
        cr_assert_eq(proto_mf_read_header(r, &h), 0);
        cr_assert_eq(proto_mf_next_disk(r, &d), -1, "%s", bad[i].what);
        p[d0 + bad[i].off] = save;
        proto_mf_reader_free(r);
    }
    cr_assert_eq(full_read(p, len, 0, 0), 0);
    free(p);
}

/* ---- the reader's source and the writer's misuse ------------------------- */

static ssize_t
failing_read(void *opaque, void *buf, size_t len)
{
    (void)opaque;
    (void)buf;
    (void)len;
    return lb_error(EIO, "the source failed");
}

Test(mf, source_errors_are_passed_up)
{
    struct proto_mf_reader *r = proto_mf_reader_new(failing_read, NULL);
    struct proto_mf_hdr h;

    cr_assert_eq(proto_mf_read_header(r, &h), -1);
    cr_assert_eq(lb_error_errno(), EIO);
    cr_assert_neq(strstr(lb_error_msg(), "the source failed"), NULL);
    proto_mf_reader_free(r);
    proto_mf_reader_free(NULL);
}

Test(mf, writer_refuses_misuse)
{
    int fd = new_file();
    struct proto_mf_writer *w = proto_mf_writer_new(fd);
    struct proto_mf_window win = {0};
    struct proto_kv kv = {0};

    cr_assert_eq(proto_mf_write_window(w, &win), -1, "window before disk");
    cr_assert_eq(proto_mf_write_disk_end(w, &kv), -1, "end before disk");
    cr_assert_eq(proto_mf_write_disk(w, ".vda", 1, 65536), -1);
    cr_assert_eq(proto_mf_write_disk(w, "vda", 0, 65536), -1, "size 0");
    cr_assert_eq(proto_mf_write_disk(w, "vda", PROTO_MF_MAX_SIZE + 1, 65536),
                 -1);
    cr_assert_eq(proto_mf_write_disk(w, "vda", 1, 65535), -1, "window size");
    cr_assert_eq(proto_mf_write_disk(w, "vda", 65537, 65536), 0);
    cr_assert_eq(proto_mf_write_disk(w, "vdb", 1, 65536), -1, "nested disk");
    cr_assert_eq(proto_mf_write_window(w, &win), 0);
    cr_assert_eq(proto_mf_write_disk_end(w, &kv), -1, "a window missing");
    cr_assert_eq(proto_mf_write_finish(w, &kv), -1, "disk not ended");
    cr_assert_eq(proto_mf_write_window(w, &win), 0);
    cr_assert_eq(proto_mf_write_window(w, &win), -1, "one window too many");
    cr_assert_eq(proto_mf_write_disk_end(w, &kv), 0);
    for (int i = 1; i < PROTO_MF_MAX_DISKS; i++) {
        char name[16];
        snprintf(name, sizeof name, "d%d", i);
        cr_assert_eq(proto_mf_write_disk(w, name, 1, 65536), 0);
        cr_assert_eq(proto_mf_write_window(w, &win), 0);
        cr_assert_eq(proto_mf_write_disk_end(w, &kv), 0);
    }
    cr_assert_eq(proto_mf_write_disk(w, "one-more", 1, 65536), -1,
                 "more than %d disks", PROTO_MF_MAX_DISKS);
    cr_assert_eq(proto_mf_write_finish(w, &kv), 0);
    proto_mf_writer_free(w);
    proto_mf_writer_free(NULL);
    {
        size_t len;
        uint8_t *p = file_bytes(fd, &len);
        cr_assert_eq(full_read(p, len, 0, 0), 0, "64 disks is the maximum");
        free(p);
    }
}

Test(mf, writer_reports_write_errors)
{
    CLEANUP_FREE char *path = lb_xasprintf("%s/ro", tmp);
    int fd;
    struct proto_mf_writer *w;
    struct proto_mf_window win = {0};
    struct proto_kv kv = {0};

    tu_write_file(path, "", 0);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    w = proto_mf_writer_new(fd);
    cr_assert_eq(proto_mf_write_disk(w, "vda", 1, 65536), 0);
    cr_assert_eq(proto_mf_write_window(w, &win), 0);
    cr_assert_eq(proto_mf_write_disk_end(w, &kv), 0);
    cr_assert_eq(proto_mf_write_finish(w, &kv), -1);
    cr_assert_eq(lb_error_errno(), EBADF);
    proto_mf_writer_free(w);
    close(fd);
}
