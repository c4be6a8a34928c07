/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers shared by the unit tests (see testutil.h).
 */
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

char *
tu_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char *path =
        lb_xasprintf("%s/lb-unit-XXXXXX", base && *base ? base : "/tmp");

    if (!mkdtemp(path))
        cr_assert_fail("mkdtemp %s: %s", path, strerror(errno));
    return path;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void
tu_rm_rf(const char *path)
{
    if (path)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void
tu_write_file(const char *path, const void *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
    cr_assert(lb_write_full(fd, p, len) == 0, "write %s", path);
    close(fd);
}

uint8_t *
tu_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    uint8_t *buf;

    if (fd < 0)
        return NULL;
    cr_assert(fstat(fd, &sb) == 0);
    buf = lb_xmalloc((size_t)sb.st_size + 1);
    cr_assert(lb_read_full(fd, buf, (size_t)sb.st_size) == sb.st_size);
    close(fd);
    *len = (size_t)sb.st_size;
    return buf;
}

bool
tu_exists(const char *path)
{
    struct stat sb;

    return lstat(path, &sb) == 0;
}

size_t
tu_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    cr_assert(d != NULL, "opendir %s: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

uint32_t
tu_rand(uint32_t *state)
{
    uint32_t x = *state ? *state : 0x9E3779B9u;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

void
tu_fill_random(uint8_t *p, size_t len, uint32_t seed)
{
    uint32_t s = seed;

    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(tu_rand(&s) >> 24);
}

void
tu_chunk_make(struct tu_chunk *tc, uint8_t type, const uint8_t *plain,
              size_t len, bool compress)
{
    memset(tc, 0, sizeof *tc);
    tc->plain = lb_xmalloc(len);
    memcpy(tc->plain, plain, len);
    tc->plain_len = len;
    cr_assert(proto_chunk_digest(type, plain, len, &tc->c.d) == 0);
    tc->c.type = type;
    tc->c.raw_len = (uint32_t)len;
    if (compress) {
        struct proto_zctx *z = proto_zctx_new(3);
        size_t cap = proto_chunk_compress_bound(len);
        ssize_t n;

        tc->stored = lb_xmalloc(cap);
        n = proto_chunk_compress(z, tc->stored, cap, plain, len, &tc->c.comp);
        cr_assert(n > 0, "compress: %s", lb_error_msg());
        tc->c.data_len = (uint32_t)n;
        proto_zctx_free(z);
    } else {
        tc->stored = lb_xmalloc(len);
        memcpy(tc->stored, plain, len);
        tc->c.comp = PROTO_COMP_NONE;
        tc->c.data_len = (uint32_t)len;
    }
    tc->c.data = tc->stored;
}

void
tu_chunk_raw(struct tu_chunk *tc, size_t len, uint32_t seed)
{
    uint8_t *p = lb_xmalloc(len);

    /* Half random, half zero: compressible but not trivially so. */
    memset(p, 0, len);
    tu_fill_random(p, len / 2, seed);
    tu_chunk_make(tc, PROTO_CHUNK_RAW, p, len, true);
    free(p);
}

void
tu_chunk_delta(struct tu_chunk *tc, uint32_t window_len, uint32_t off,
               uint32_t seed)
{
    struct proto_run run = {off, 512, PROTO_RUN_DATA};
    uint8_t data[512];
    uint8_t buf[PROTO_DELTA_HDR + PROTO_DELTA_RUN + 512];
    size_t n;

    tu_fill_random(data, sizeof data, seed);
    n = proto_delta_encode(buf, sizeof buf, window_len, &run, 1, data);
    cr_assert(n == sizeof buf);
    tu_chunk_make(tc, PROTO_CHUNK_DELTA, buf, n, false);
}

void
tu_chunk_free(struct tu_chunk *tc)
{
    free(tc->plain);
    free(tc->stored);
    memset(tc, 0, sizeof *tc);
}

void
tu_rec(struct proto_window_rec *r, uint64_t index, uint8_t op, unsigned n, ...)
{
    va_list ap;

    memset(r, 0, sizeof *r);
    r->index = index;
    r->op = op;
    r->n = (uint8_t)n;
    va_start(ap, n);
    for (unsigned i = 0; i < n; i++) {
        r->refs[i].type = (uint8_t)va_arg(ap, int);
        r->refs[i].d = *va_arg(ap, const struct proto_digest *);
    }
    va_end(ap);
}

struct proto_digest
tu_digest(uint8_t seed)
{
    struct proto_digest d;

    for (int i = 0; i < PROTO_DIGEST_LEN; i++)
        d.b[i] = (uint8_t)(seed * 31 + i);
    return d;
}

uint8_t *
tu_payload(const struct lb_buf *b, uint16_t type, size_t *len)
{
    struct proto_hdr h;
    uint8_t *p;

    cr_assert_eq(proto_hdr_decode(b->data, b->len, &h), PROTO_OK);
    cr_assert_eq(h.type, type, "type 0x%04x, want 0x%04x", h.type, type);
    cr_assert_eq((size_t)h.len, b->len - PROTO_HDR_SIZE, "length field");
    *len = h.len;
    p = lb_xmalloc(h.len ? h.len : 1);
    memcpy(p, b->data + PROTO_HDR_SIZE, h.len);
    return p;
}

int
tu_dec_windows(const uint8_t *p, size_t len, struct proto_window_rec *recs,
               uint32_t max)
{
    struct proto_rd pr;
    struct proto_window_rec r;
    uint32_t count, seen = 0;
    int st = proto_dec_windows_init(&pr, p, len, &count);

    if (st != PROTO_OK)
        return st;
    while ((st = proto_dec_window_next(&pr, &r)) == 1) {
        if (recs && seen < max)
            recs[seen] = r;
        seen++;
    }
    if (st < 0)
        return st;
    return seen == count ? PROTO_OK : PROTO_E_RANGE;
}
