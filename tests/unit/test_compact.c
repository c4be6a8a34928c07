/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * agent/client/compact.c: the pure part of compacting a stack. A window's
 * bottom, deltas above it and tonight's changes, at random: one DELTA
 * built from the union of their blocks, with the current data, applied on
 * the bottom gives exactly what the whole stack and tonight give.
 */
#include "agent/client/compact.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static uint32_t seed = 12345;

static uint32_t
rnd(uint32_t n)
{
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % n;
}

/* A random DELTA's runs over a window of wl (sorted, disjoint). */
static uint32_t
random_runs(uint32_t wl, struct proto_run *runs, uint32_t max)
{
    uint32_t n = 0, at = rnd(wl / 4);

    while (n < max && at < wl) {
        uint32_t len = 1 + rnd(LB_MIN(wl - at, 20000u));
        runs[n++] = (struct proto_run){at, len, (uint8_t)rnd(2)};
        at += len + rnd(wl / 3);
    }
    return n;
}

/* Apply runs (data from src at the same offsets) to win. */
static void
apply(uint8_t *win, const uint8_t *src, const struct proto_run *runs,
      uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        if (runs[k].kind == PROTO_RUN_DATA)
            memcpy(win + runs[k].off, src + runs[k].off, runs[k].len);
        else
            memset(win + runs[k].off, 0, runs[k].len);
    }
}

static void
one_window(uint32_t wl, unsigned ndeltas)
{
    size_t mb = agent_compact_map_bytes(wl);
    uint8_t *cur = malloc(wl), *noise = malloc(wl), *out = malloc(wl);
    uint8_t *bits = calloc(1, mb), *data = calloc(1, mb);
    struct proto_run *runs = calloc(wl / 512 + 1, sizeof *runs);
    struct proto_run tmp[16];
    uint8_t *plain, *packed;
    size_t plen, dlen = 0;
    uint32_t nruns;

    /* the bottom: random data with holes */
    for (uint32_t i = 0; i < wl; i++)
        cur[i] = i % 7000 < 3000 ? 0 : (uint8_t)rnd(256);
    memcpy(out, cur, wl);
    /* the deltas above it and tonight's changes, all marked */
    for (unsigned d = 0; d <= ndeltas; d++) {
        uint32_t n = random_runs(wl, tmp, 16);
        for (uint32_t i = 0; i < wl; i++)
            noise[i] = (uint8_t)(rnd(255) + 1);
        apply(cur, noise, tmp, n);
        for (uint32_t k = 0; k < n; k++)
            agent_compact_mark(bits, wl, tmp[k].off, tmp[k].len);
    }
    /* data: the blocks that are not all zero now */
    for (uint32_t b = 0; b * 512 < wl; b++) {
        uint32_t len = LB_MIN(512u, wl - b * 512);
        for (uint32_t i = 0; i < len; i++)
            if (cur[b * 512 + i]) {
                agent_compact_mark(data, wl, b * 512, 1);
                break;
            }
    }
    nruns = agent_compact_runs(bits, data, wl, runs);
    cr_assert_leq(nruns, wl / 512 + 1);
    {
        uint64_t covered = 0;
        for (uint32_t k = 0; k < nruns; k++) {
            covered += runs[k].len;
            if (k)
                cr_assert(runs[k - 1].off + runs[k - 1].len < runs[k].off ||
                              runs[k - 1].kind != runs[k].kind,
                          "runs %u and %u could be one", k - 1, k);
        }
        cr_assert_eq(covered, agent_compact_bytes(bits, wl));
    }
    /* the compacted DELTA, encoded and applied on the bottom */
    packed = malloc(wl);
    for (uint32_t k = 0; k < nruns; k++)
        if (runs[k].kind == PROTO_RUN_DATA) {
            memcpy(packed + dlen, cur + runs[k].off, runs[k].len);
            dlen += runs[k].len;
        }
    plen = proto_delta_size(nruns, dlen);
    plain = malloc(plen);
    cr_assert_eq(proto_delta_encode(plain, plen, wl, runs, nruns, packed),
                 plen);
    cr_assert_eq(proto_delta_apply(out, wl, plain, plen), PROTO_OK);
    cr_assert(memcmp(out, cur, wl) == 0,
              "window of %u, %u deltas: the compacted stack differs", wl,
              ndeltas);
    free(cur);
    free(noise);
    free(out);
    free(bits);
    free(data);
    free(runs);
    free(packed);
    free(plain);
}

Test(compact, gives_the_stack)
{
    for (unsigned r = 0; r < 40; r++) {
        one_window(1u << 20, 1 + r % 7);
        one_window(70000, 1 + r % 3); /* a disk's shorter last window */
    }
}

Test(compact, marks_blocks)
{
    uint32_t wl = 4096 + 100;
    uint8_t bits[2] = {0}, none[2] = {0};
    struct proto_run runs[10];

    agent_compact_mark(bits, wl, 511, 2); /* blocks 0 and 1 */
    cr_assert_eq(bits[0], 0x03);
    agent_compact_mark(bits, wl, 4096, 1000); /* block 8, clipped */
    cr_assert_eq(bits[1], 0x01);
    cr_assert_eq(agent_compact_bytes(bits, wl), 1024 + 100);
    cr_assert_eq(agent_compact_runs(bits, none, wl, runs), 2);
    cr_assert_eq(runs[0].off, 0);
    cr_assert_eq(runs[0].len, 1024);
    cr_assert_eq(runs[0].kind, PROTO_RUN_ZERO);
    cr_assert_eq(runs[1].off, 4096);
    cr_assert_eq(runs[1].len, 100);
    cr_assert_eq(agent_compact_bytes(none, wl), 0);
    cr_assert_eq(agent_compact_runs(none, none, wl, runs), 0);
}
