/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: the whole streaming read of a manifest (header, every
 * disk, window and disk end, meta block, trailer) from the input bytes,
 * handed to the reader in odd-sized pieces to exercise its buffering.
 *
 * Each input is read twice: as it is, and with its meta digest and trailer
 * recomputed, so that mutations also reach what the digests guard.
 *
 * Oracle beyond "no crash, no leak": everything the reader accepts is
 * written again with proto_mf_writer (of the version the header says) as
 * it is read, and a manifest the reader accepts whole must come out byte
 * for byte the same: version 2's runs of empty windows have one encoding.
 */
#include "fuzz/fuzz.h"
#include "proto/proto.h"

#include <openssl/evp.h>
#include <string.h>
#include <sys/mman.h>

struct src {
    const uint8_t *p;
    size_t len, off;
    unsigned calls;
};

/* Pieces of 1, 3, 7, ... bytes in turn: never what the reader asked for. */
static ssize_t
src_read(void *opaque, void *buf, size_t len)
{
    static const size_t piece[] = {1,   3,   7,   13,   31,   61,
                                   127, 251, 509, 1021, 4093, 65521};
    struct src *s = opaque;
    size_t want = piece[s->calls++ % LB_ARRAY_SIZE(piece)];
    size_t n = LB_MIN(len, s->len - s->off);

    n = LB_MIN(n, want);
    memcpy(buf, s->p + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

/* Read everything through r, copying what is read into *w (a writer of
 * the version read, on fd). 0 if the reader accepted the whole manifest. */
static int
read_all(struct proto_mf_reader *r, int fd, struct proto_mf_writer **wp)
{
    struct proto_mf_hdr h;
    struct proto_mf_disk d;
    struct proto_mf_window win;
    struct proto_kv meta;
    struct proto_mf_writer *w;
    int got;

    if (proto_mf_read_header(r, &h) < 0)
        return -1;
    CHECK(h.ndisks <= PROTO_MF_MAX_DISKS && h.meta_len <= PROTO_MF_MAX_META);
    CHECK(h.version >= PROTO_MF_VERSION_MIN && h.version <= PROTO_MF_VERSION);
    w = *wp = proto_mf_writer_new_version(fd, h.version);
    CHECK(w != NULL);
    while ((got = proto_mf_next_disk(r, &d)) == 1) {
        CHECK(proto_disk_name_valid(d.name, strlen(d.name)));
        CHECK(d.nwindows == proto_mf_windows_for(d.size, d.window_size));
        if (proto_mf_write_disk(w, d.name, d.size, d.window_size) < 0)
            __builtin_trap(); /* the reader accepted what the writer refuses */
        for (uint64_t i = 0; i < d.nwindows; i++) {
            if (proto_mf_next_window(r, &win) < 0)
                return -1;
            CHECK(win.depth <= PROTO_MAX_STACK);
            for (int k = 0; k < win.depth; k++)
                CHECK(win.refs[k].type == PROTO_CHUNK_DELTA ||
                      (win.refs[k].type == PROTO_CHUNK_RAW && k == 0));
            if (proto_mf_write_window(w, &win) < 0)
                __builtin_trap();
        }
        if (proto_mf_read_disk_end(r, &meta) < 0)
            return -1;
        if (proto_mf_write_disk_end(w, &meta) < 0)
            __builtin_trap();
        proto_kv_free(&meta);
    }
    if (got < 0 || proto_mf_read_meta(r, &meta) < 0)
        return -1;
    if (proto_mf_finish(r) < 0) {
        proto_kv_free(&meta);
        return -1;
    }
    if (proto_mf_write_finish(w, &meta) < 0)
        __builtin_trap();
    proto_kv_free(&meta);
    return 0;
}

/* Read data as a manifest; if accepted, it must re-encode to itself. */
static void
one(const uint8_t *data, size_t size)
{
    /* One in-memory file for the copy, emptied for every input. */
    static int fd = -1;
    struct src s = {data, size, 0, 0};
    struct proto_mf_reader *r = proto_mf_reader_new(src_read, &s);
    struct proto_mf_writer *w = NULL;

    if (fd < 0)
        fd = memfd_create("fuzz_manifest", MFD_CLOEXEC);
    CHECK(fd >= 0 && ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
    CHECK(r != NULL);
    if (read_all(r, fd, &w) == 0) {
        uint8_t *back = lb_xmalloc(size);
        CHECK(s.off == size);
        CHECK(lseek(fd, 0, SEEK_END) == (off_t)size);
        CHECK(lb_pread_full(fd, back, size, 0) == (ssize_t)size);
        CHECK(memcmp(back, data, size) == 0);
        free(back);
    }
    proto_mf_writer_free(w);
    proto_mf_reader_free(r);
    lb_error_clear();
}

static void
sha256(const uint8_t *p, size_t len, uint8_t out[PROTO_DIGEST_LEN])
{
    unsigned n = 0;

    CHECK(EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) == 1);
}

/*
 * A copy of the input with the header's meta digest and the trailer made
 * right for the bytes as they are (the zstd fuzzers' checksum trick): a
 * mutation then reaches the checks behind the digests instead of failing
 * at them. NULL if the header does not say where they go.
 */
static uint8_t *
fix_digests(const uint8_t *data, size_t size)
{
    struct proto_mf_hdr h;
    uint8_t cat[PROTO_MF_HDR_SIZE + PROTO_DIGEST_LEN];
    uint8_t *q;
    size_t end;

    if (proto_mf_hdr_decode(data, size, &h) != PROTO_OK || h.meta_off > size ||
        h.meta_len > size - h.meta_off ||
        size - h.meta_off - h.meta_len < PROTO_DIGEST_LEN)
        return NULL;
    end = (size_t)h.meta_off + h.meta_len;
    q = lb_xmalloc(size);
    memcpy(q, data, size);
    sha256(q + h.meta_off, h.meta_len, q + 32);
    memcpy(cat, q, PROTO_MF_HDR_SIZE);
    sha256(q + PROTO_MF_HDR_SIZE, end - PROTO_MF_HDR_SIZE,
           cat + PROTO_MF_HDR_SIZE);
    sha256(cat, sizeof cat, q + end);
    return q;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *fixed = fix_digests(data, size);

    one(data, size);
    if (fixed) {
        one(fixed, size);
        free(fixed);
    }
    return 0;
}
