/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proto/manifest.c, version 2 (issue 10, item 5): a run of empty windows is
 * one record, so a manifest's size follows what a backup holds, not the
 * size its disks declare (a 200-byte request declaring 4 disks of 2^24
 * windows made backupd write a 64 MiB manifest of zero depths). Version 1
 * manifests are still read; the runs have one encoding only.
 */
#include "proto/proto.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/mman.h>

#define WS (64u << 10)

struct mem {
    const uint8_t *p;
    size_t len, off;
};

static ssize_t
mem_read(void *opaque, void *buf, size_t len)
{
    struct mem *m = opaque;
    size_t n = LB_MIN(len, m->len - m->off);

    n = LB_MIN(n, (size_t)7); /* small pieces: runs cross reads */
    memcpy(buf, m->p + m->off, n);
    m->off += n;
    return (ssize_t)n;
}

/* A window with data when pattern[i] is 'X', empty when '.'. */
static void
window_of(const char *pattern, uint64_t i, struct proto_mf_window *w)
{
    memset(w, 0, sizeof *w);
    if (pattern[i] != 'X')
        return;
    w->depth = 1;
    w->refs[0].type = PROTO_CHUNK_RAW;
    memset(w->refs[0].d.b, (int)(i + 1), PROTO_DIGEST_LEN);
}

/* Write one disk of strlen(pattern) windows (or nw empty ones when
 * pattern is NULL) in the given version; returns the file (caller frees). */
static uint8_t *
write_disk(uint16_t version, const char *pattern, uint64_t nw, size_t *len)
{
    int fd = memfd_create("mf", MFD_CLOEXEC);
    struct proto_mf_writer *w = proto_mf_writer_new_version(fd, version);
    struct proto_kv meta = {0};
    uint8_t *p;

    cr_assert_not_null(w, "%s", lb_error_msg());
    if (pattern)
        nw = strlen(pattern);
    cr_assert_eq(proto_mf_write_disk(w, "vda", nw * WS, WS), 0);
    for (uint64_t i = 0; i < nw; i++) {
        struct proto_mf_window win = {0};
        if (pattern)
            window_of(pattern, i, &win);
        cr_assert_eq(proto_mf_write_window(w, &win), 0, "%s", lb_error_msg());
    }
    cr_assert_eq(proto_mf_write_disk_end(w, &meta), 0);
    proto_kv_set(&meta, "name", "vm1");
    cr_assert_eq(proto_mf_write_finish(w, &meta), 0);
    proto_mf_writer_free(w);
    proto_kv_free(&meta);
    *len = (size_t)lseek(fd, 0, SEEK_END);
    p = lb_xmalloc(*len);
    cr_assert_eq(lb_pread_full(fd, p, *len, 0), (ssize_t)*len);
    close(fd);
    return p;
}

/* Read the manifest whole; its one disk's windows must follow pattern.
 * skip: pass the disk with proto_mf_skip_disk instead. 0, or -1 when
 * the reader refused it. */
static int
read_disk(const uint8_t *p, size_t len, const char *pattern, bool skip)
{
    struct mem m = {p, len, 0};
    struct proto_mf_reader *r = proto_mf_reader_new(mem_read, &m);
    struct proto_mf_hdr h;
    struct proto_mf_disk d;
    struct proto_kv meta = {0};
    int rc = -1;

    if (proto_mf_read_header(r, &h) < 0 || proto_mf_next_disk(r, &d) != 1)
        goto out;
    if (skip) {
        if (proto_mf_skip_disk(r) < 0)
            goto out;
    } else {
        for (uint64_t i = 0; i < d.nwindows; i++) {
            struct proto_mf_window got, want;
            if (proto_mf_next_window(r, &got) < 0)
                goto out;
            if (pattern) {
                window_of(pattern, i, &want);
                cr_assert_eq(got.depth, want.depth, "window %llu",
                             (unsigned long long)i);
                cr_assert_arr_eq(got.refs, want.refs,
                                 sizeof got.refs[0] * got.depth);
            } else {
                cr_assert_eq(got.depth, 0);
            }
        }
    }
    if (proto_mf_read_disk_end(r, NULL) < 0 || proto_mf_next_disk(r, &d) != 0 ||
        proto_mf_read_meta(r, &meta) < 0 || proto_mf_finish(r) < 0)
        goto out;
    rc = 0;
out:
    proto_kv_free(&meta);
    proto_mf_reader_free(r);
    return rc;
}

static const char pattern[] = "...X.XX......X..........X.";

Test(runs, both_versions_read_back_the_same_windows)
{
    size_t l1, l2;
    uint8_t *v1 = write_disk(1, pattern, 0, &l1);
    uint8_t *v2 = write_disk(2, pattern, 0, &l2);

    cr_assert_eq(lb_load_be16(v1 + 8), 1);
    cr_assert_eq(lb_load_be16(v2 + 8), 2);
    cr_assert_eq(read_disk(v1, l1, pattern, false), 0, "%s", lb_error_msg());
    cr_assert_eq(read_disk(v2, l2, pattern, false), 0, "%s", lb_error_msg());
    cr_assert_eq(read_disk(v1, l1, pattern, true), 0, "%s", lb_error_msg());
    cr_assert_eq(read_disk(v2, l2, pattern, true), 0, "%s", lb_error_msg());
    /* 21 empty windows in 5 runs: a byte each in version 1, five bytes a
     * run in version 2 (more for lone empty windows between stacks of 34
     * bytes or more: at most 4 bytes per such stack). */
    cr_assert_eq(l2 - l1, 5 * 5 - 21, "%zu vs %zu", l1, l2);
    free(v1);
    free(v2);
}

/* The byte layout FORMAT.md gives: "...X" is a run (00, u32 3), then a
 * stack (depth 1, type, digest). */
Test(runs, layout)
{
    size_t len;
    uint8_t *p = write_disk(2, "...X", 0, &len);
    const uint8_t *w = p + PROTO_MF_HDR_SIZE + 4 + 2 + 3 + 8 + 4 + 4 + 8;

    cr_assert_eq(w[0], 0);
    cr_assert_eq(lb_load_be32(w + 1), 3);
    cr_assert_eq(w[5], 1);
    cr_assert_eq(w[6], PROTO_CHUNK_RAW);
    free(p);
}

/* 64 TiB of nothing (2^24 windows of 4 MiB): version 1 took 16 MiB, one
 * byte per window; version 2 takes one record. */
Test(runs, an_empty_disk_costs_one_record)
{
    size_t len;
    uint8_t *p = write_disk(2, NULL, PROTO_MF_MAX_WINDOWS, &len);

    cr_assert_lt(len, 200, "%zu bytes", len);
    cr_assert_eq(read_disk(p, len, NULL, false), 0, "%s", lb_error_msg());
    cr_assert_eq(read_disk(p, len, NULL, true), 0, "%s", lb_error_msg());
    free(p);
}

/* A manifest built by hand: one disk of nw windows whose window records
 * are body, with digests that match, in the given version. */
static uint8_t *
craft(uint16_t version, uint64_t nw, const uint8_t *body, size_t blen,
      size_t *len)
{
    struct lb_buf b = {0};
    struct proto_mf_hdr h = {.version = version, .ndisks = 1};
    uint8_t cat[PROTO_MF_HDR_SIZE + PROTO_DIGEST_LEN];
    unsigned n;

    lb_buf_reserve(&b, PROTO_MF_HDR_SIZE);
    b.len = PROTO_MF_HDR_SIZE;
    lb_buf_put_be32(&b, PROTO_MF_DISK_MAGIC);
    lb_buf_put_str16(&b, "vda", 3);
    lb_buf_put_be64(&b, nw * WS);
    lb_buf_put_be32(&b, WS);
    lb_buf_put_be32(&b, 0);
    lb_buf_put_be64(&b, nw);
    lb_buf_append(&b, body, blen);
    lb_buf_put_be32(&b, 2); /* disk meta: an empty list */
    lb_buf_put_be16(&b, 0);
    h.meta_off = b.len;
    h.meta_len = 2;
    lb_buf_put_be16(&b, 0);
    EVP_Digest(b.data + h.meta_off, 2, h.meta_digest, &n, EVP_sha256(), NULL);
    proto_mf_hdr_encode(b.data, &h);
    memcpy(cat, b.data, PROTO_MF_HDR_SIZE);
    EVP_Digest(b.data + PROTO_MF_HDR_SIZE, b.len - PROTO_MF_HDR_SIZE,
               cat + PROTO_MF_HDR_SIZE, &n, EVP_sha256(), NULL);
    lb_buf_reserve(&b, PROTO_DIGEST_LEN);
    EVP_Digest(cat, sizeof cat, b.data + b.len, &n, EVP_sha256(), NULL);
    b.len += PROTO_DIGEST_LEN;
    *len = b.len;
    return b.data;
}

static int
read_crafted(uint16_t version, uint64_t nw, const uint8_t *body, size_t blen)
{
    size_t len;
    uint8_t *p = craft(version, nw, body, blen, &len);
    int r = read_disk(p, len, NULL, false);
    int s = read_disk(p, len, NULL, true);

    free(p);
    cr_assert_eq(r, s, "reading and skipping disagree");
    return r;
}

Test(runs, one_encoding_only)
{
    static const uint8_t run4[] = {0, 0, 0, 0, 4};
    static const uint8_t run2_run2[] = {0, 0, 0, 0, 2, 0, 0, 0, 0, 2};
    static const uint8_t run0[] = {0, 0, 0, 0, 0};
    static const uint8_t run5[] = {0, 0, 0, 0, 5};
    static const uint8_t ones[] = {0, 0, 0, 0};
    static const uint8_t cut[] = {0, 0, 0};

    cr_assert_eq(read_crafted(2, 4, run4, sizeof run4), 0, "%s",
                 lb_error_msg());
    cr_assert_eq(read_crafted(2, 4, run2_run2, sizeof run2_run2), -1,
                 "two runs in a row");
    cr_assert(strstr(lb_error_msg(), "two runs"), "%s", lb_error_msg());
    cr_assert_eq(read_crafted(2, 4, run0, sizeof run0), -1, "an empty run");
    cr_assert_eq(read_crafted(2, 4, run5, sizeof run5), -1, "past the disk");
    cr_assert_eq(read_crafted(2, 4, cut, sizeof cut), -1, "cut short");
    /* Version 1: a 0 is one empty window, no count follows. */
    cr_assert_eq(read_crafted(1, 4, ones, sizeof ones), 0, "%s",
                 lb_error_msg());
    cr_assert_eq(read_crafted(1, 4, run4, sizeof run4), -1,
                 "a version 1 reader takes no runs");
    cr_assert_eq(read_crafted(2, 4, ones, sizeof ones), -1,
                 "version 2 has no single zero byte");
}
