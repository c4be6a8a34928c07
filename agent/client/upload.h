/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The upload engine: windows go in (in index order), frames come out,
 * pipelined (PROTOCOL.md, "Backup flow"):
 *
 *   producer ── fill ──▶ workers ── hash ──▶ sender ── QUERY ──▶ backupd
 *                                               ▲                 │
 *                        workers ◀─ compress ── receiver ◀─ HAVE ─┘
 *                           │
 *                           └──▶ sender ── CHUNK + WINDOWS (in order)
 *
 * A ring of slots bounds memory; only chunks the repository lacks are
 * compressed and sent. A RAW chunk is asked about (QUERY) before it is
 * compressed, while the answers find some stored; after ASK_MISSES
 * "missing" answers in a row (a first backup of new data) only one RAW
 * chunk in PROBE_EVERY is asked about and the others are sent unasked,
 * until an answer finds one stored again. A DELTA is never asked about;
 * a small one (INLINE_MAX) is hashed and compressed by the producer as it
 * is submitted, not by a worker.
 */
#ifndef LB_AGENT_UPLOAD_H
#define LB_AGENT_UPLOAD_H

#include "agent/client/client_int.h"

struct agent_upload;

struct agent_upload_slot {
    uint8_t *plain; /* capacity: agent_upload_plain_cap() */
};

struct agent_upload_stats {
    /* chunks_asked: QUERYed; chunks_reused: of those, found stored */
    uint64_t chunks_sent, chunks_asked, chunks_reused, bytes_sent, windows;
};

/* Called with each window record as it is sent, in index order, on the
 * sender's thread; -1 (error set) stops the upload. */
typedef int (*agent_record_fn)(void *opaque, const struct proto_window_rec *r);

/* prog (may be NULL) advances as windows are sent (or found in the
 * repository), by the work each was submitted with. rec (may be NULL)
 * sees every window record sent. */
struct agent_upload *agent_upload_start(struct agent_repo *r,
                                        uint32_t window_size,
                                        struct agent_progress *prog,
                                        agent_record_fn rec, void *opaque);
size_t agent_upload_plain_cap(const struct agent_upload *u);
/* The next free slot (blocks); NULL if the engine failed. The producer
 * may hold fewer than agent_upload_nslots() slots at once (filling them
 * while the engine works on older ones), and submits them in the order
 * it took them. */
struct agent_upload_slot *agent_upload_slot(struct agent_upload *u);
/* The same without blocking: NULL if the next slot is still busy (or the
 * engine failed: *failed). */
struct agent_upload_slot *agent_upload_slot_nowait(struct agent_upload *u,
                                                   bool *failed);
unsigned agent_upload_nslots(const struct agent_upload *u);
/*
 * Queue the slot as window index with op (PROTO_WIN_SET / PUSH) and a
 * chunk of type holding len bytes of plain; type 0 means "SET to empty"
 * (no chunk). work: the bytes this window counts for progress.
 */
void agent_upload_submit(struct agent_upload *u, struct agent_upload_slot *s,
                         uint64_t index, uint8_t op, uint8_t type, size_t len,
                         uint64_t work);
/* The same, a SET (op) whose record holds base (a chunk the repository
 * stores: not queried, not sent) under the chunk: [base, chunk]. base
 * NULL is agent_upload_submit. */
void agent_upload_submit_on(struct agent_upload *u, struct agent_upload_slot *s,
                            uint64_t index, const struct proto_ref *base,
                            uint8_t op, uint8_t type, size_t len,
                            uint64_t work);
/* Send everything still queued, stop the threads, free the engine.
 * Returns 0 or -1 (error slot set, server's message preferred). */
int agent_upload_finish(struct agent_upload *u,
                        struct agent_upload_stats *stats);

#endif
