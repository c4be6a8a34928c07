/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: proto_delta_apply. The first 4 bytes of the input
 * (big-endian) are the window length, the rest is the DELTA plaintext.
 *
 * Oracle beyond "no crash, no leak": validating alone (win == NULL) and
 * applying give the same verdict; on error the window is untouched; on
 * success the DELTA re-encodes to the same bytes, every run's range holds
 * its data or zeros, and every byte outside the runs is untouched.
 */
#include "fuzz/fuzz.h"
#include "proto/proto.h"

#include <string.h>

/* Windows up to this size are really applied (larger ones only
 * validated), to keep each run fast. */
#define APPLY_MAX (256u << 10)

static void
check_applied(const uint8_t *win, const uint8_t *before, uint32_t wl,
              const uint8_t *p, size_t len)
{
    uint32_t nruns = lb_load_be32(p + 8);
    struct proto_run *runs = lb_xmalloc((size_t)nruns * sizeof *runs);
    const uint8_t *d = p + PROTO_DELTA_HDR + (size_t)nruns * PROTO_DELTA_RUN;
    uint32_t pos = 0;
    uint8_t *re = lb_xmalloc(len);

    for (uint32_t i = 0; i < nruns; i++) {
        const uint8_t *r = p + PROTO_DELTA_HDR + (size_t)i * PROTO_DELTA_RUN;
        runs[i].off = lb_load_be32(r);
        runs[i].len = lb_load_be32(r + 4);
        runs[i].kind = r[8];
        /* Untouched gap before the run, then the run. */
        CHECK(runs[i].off >= pos);
        CHECK(memcmp(win + pos, before + pos, runs[i].off - pos) == 0);
        if (runs[i].kind == PROTO_RUN_DATA) {
            CHECK(memcmp(win + runs[i].off, d, runs[i].len) == 0);
            d += runs[i].len;
        } else {
            CHECK(lb_is_zero(win + runs[i].off, runs[i].len));
        }
        pos = runs[i].off + runs[i].len;
    }
    CHECK(pos <= wl && memcmp(win + pos, before + pos, wl - pos) == 0);
    CHECK(d == p + len);
    CHECK(proto_delta_encode(re, len, wl, runs, nruns,
                             p + PROTO_DELTA_HDR +
                                 (size_t)nruns * PROTO_DELTA_RUN) == len);
    CHECK(memcmp(re, p, len) == 0);
    free(re);
    free(runs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p;
    size_t len;
    uint32_t wl;
    uint8_t *win, *before;
    int v, a;

    if (size < 4)
        return 0;
    wl = lb_load_be32(data);
    p = data + 4;
    len = size - 4;
    v = proto_delta_apply(NULL, wl, p, len);
    CHECK(v <= 0);
    (void)proto_status_str(v);
    if (wl > APPLY_MAX)
        return 0;
    win = lb_xmalloc(wl ? wl : 1);
    before = lb_xmalloc(wl ? wl : 1);
    for (uint32_t i = 0; i < wl; i++)
        win[i] = (uint8_t)(i * 131 + 7) | 1; /* never zero */
    memcpy(before, win, wl);
    a = proto_delta_apply(win, wl, p, len);
    CHECK(a == v);
    if (a != PROTO_OK)
        CHECK(memcmp(win, before, wl) == 0);
    else
        check_applied(win, before, wl, p, len);
    free(win);
    free(before);
    return 0;
}
