/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Compacting a window whose stack is at the limit (store/FORMAT.md,
 * "Building a manifest"): instead of sending the window whole, one DELTA
 * holding the current data of every cluster changed since the stack's
 * bottom, SET on top of that bottom. What changed since the bottom is the
 * union of the run tables of the deltas above it (read from the parent's
 * manifest and the DELTA chunks it names) and tonight's changes.
 *
 * The client fetches those for a batch of windows at a time (the upload
 * engine drained: the session carries one request at a time), so memory
 * is bounded by the batch, not the disk.
 */
#ifndef LB_AGENT_COMPACT_H
#define LB_AGENT_COMPACT_H

#include "agent/client/client_int.h"

/* Windows whose stacks one batch holds. */
#define AGENT_COMPACT_BATCH 256u

/* ---- pure helpers: a window's 512-byte blocks as bitmaps --------------- */

/* Bytes of a bitmap with one bit per 512-byte block of a window of wl. */
size_t agent_compact_map_bytes(uint32_t wl);
/* Set the bits of the blocks [off, off+len) touches (clipped to wl). */
void agent_compact_mark(uint8_t *bits, uint32_t wl, uint64_t off, uint64_t len);
/* The bytes of the window the set bits cover (the last block may be
 * shorter). */
uint64_t agent_compact_bytes(const uint8_t *bits, uint32_t wl);
/*
 * The runs of a compacted delta: the set blocks of bits, merged into
 * maximal runs of one kind, DATA where data has the block's bit, ZERO
 * elsewhere. runs: room for wl / 512 + 1. Returns the count.
 */
uint32_t agent_compact_runs(const uint8_t *bits, const uint8_t *data,
                            uint32_t wl, struct proto_run *runs);

/* ---- the parent's stacks, a batch at a time ---------------------------- */

struct agent_compact;

/* For disk (size bytes, windows of ws) of the backup whose parent is
 * parent; nothing is downloaded until the first fetch. */
struct agent_compact *agent_compact_new(struct agent_repo *r,
                                        const char *parent, const char *disk,
                                        uint64_t size, uint32_t ws);
void agent_compact_free(struct agent_compact *c);
/* Forget the batch; windows are then added in increasing order. */
void agent_compact_reset(struct agent_compact *c);
/* Add window i to the batch; false when the batch is full. */
bool agent_compact_want(struct agent_compact *c, uint64_t i);
/* Read the batch's stacks from the parent's manifest (downloaded and
 * checked the first time) and the run tables of their deltas (GET_CHUNKS:
 * the session must be idle). -1 with the error slot set. */
int agent_compact_fetch(struct agent_compact *c);
/* Whether window i is in the fetched batch. */
bool agent_compact_has(const struct agent_compact *c, uint64_t i);
/* Window i of the batch: its stack's bottom ref and the blocks the deltas
 * above it wrote (agent_compact_map_bytes), or NULL if it cannot be
 * compacted (a stack of one ref). */
const uint8_t *agent_compact_get(const struct agent_compact *c, uint64_t i,
                                 struct proto_ref *bottom);

#endif
