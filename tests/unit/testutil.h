/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers shared by the unit tests: temporary directories (for Criterion
 * fixtures), whole-file I/O, a deterministic pseudo-random generator, and
 * chunk construction (digest, optional zstd) for the store tests.
 *
 * Every helper aborts the test with a Criterion failure on a system error,
 * so tests can call them without checks.
 */
#ifndef LB_TESTUTIL_H
#define LB_TESTUTIL_H

#include "common/common.h"
#include "proto/proto.h"

/* mkdtemp under $TMPDIR (or /tmp). Caller frees; remove with tu_rm_rf. */
char *tu_mkdtemp(void);
/* rm -rf path (no error if it does not exist). */
void tu_rm_rf(const char *path);

/* Create or replace path with len bytes. */
void tu_write_file(const char *path, const void *p, size_t len);
/* Read a whole file (caller frees); NULL if it does not exist. */
uint8_t *tu_read_file(const char *path, size_t *len);
bool tu_exists(const char *path);
/* Number of entries in a directory, ignoring those starting with '.'. */
size_t tu_count_entries(const char *dir);

/* Deterministic bytes (xorshift32) from seed. */
void tu_fill_random(uint8_t *p, size_t len, uint32_t seed);
uint32_t tu_rand(uint32_t *state);

/* A chunk built in memory: c.data points at stored, which this owns. */
struct tu_chunk {
    struct proto_chunk c;
    uint8_t *plain;
    size_t plain_len;
    uint8_t *stored;
};

/* Build a chunk of the given type from plain (copied); compress with zstd
 * when asked (the stored form falls back to PROTO_COMP_NONE if zstd does not
 * shrink it). */
void tu_chunk_make(struct tu_chunk *tc, uint8_t type, const uint8_t *plain,
                   size_t len, bool compress);
/* A RAW chunk of len bytes filled from seed. */
void tu_chunk_raw(struct tu_chunk *tc, size_t len, uint32_t seed);
/* A DELTA chunk for a window of window_len bytes: one data run of 512
 * bytes at off, filled from seed. */
void tu_chunk_delta(struct tu_chunk *tc, uint32_t window_len, uint32_t off,
                    uint32_t seed);
void tu_chunk_free(struct tu_chunk *tc);

/* A window record helper: op, then n refs given as (type, digest*) pairs. */
void tu_rec(struct proto_window_rec *r, uint64_t index, uint8_t op, unsigned n,
            ...);

/* A digest whose bytes are derived from seed. */
struct proto_digest tu_digest(uint8_t seed);

/* Check the frame header of the one message in b (type, length) and return
 * a copy of its payload in an exactly sized allocation, so that ASan sees
 * any over-read. Caller frees. */
uint8_t *tu_payload(const struct lb_buf *b, uint16_t type, size_t *len);

/* Decode a WINDOWS payload completely, as a receiver must: the records
 * must be exactly as many as the count says. The first max records are
 * copied to recs (may be NULL). Returns PROTO_OK or a PROTO_E_* code. */
int tu_dec_windows(const uint8_t *p, size_t len, struct proto_window_rec *recs,
                   uint32_t max);

#endif /* LB_TESTUTIL_H */
