/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the targets that drive backupd sessions share (fuzz_session,
 * fuzz_listen): a fuzz repository, and whether a client's bytes start with
 * a BRIDGE that makes its session trusted.
 */
#ifndef LB_FUZZ_BACKUPD_H
#define LB_FUZZ_BACKUPD_H

#include "proto/proto.h"
#include "store/store.h"

#include <string.h>

/*
 * A session whose first frame is a BRIDGE with trusted 1 (and not
 * append_only 1) is trusted, as the daemon's own user's (socketpair and
 * socket peers here are): its chunks are not re-hashed, so a chunk stored
 * under a digest it does not match is its right, not a finding. Decided as
 * backupd's do_bridge decides.
 */
static inline bool
fz_trusted_bridge(const uint8_t *data, size_t size)
{
    struct proto_hdr h;
    struct proto_kv kv;
    bool trusted;

    if (size < PROTO_HDR_SIZE || proto_hdr_decode(data, size, &h) != PROTO_OK ||
        h.type != PROTO_T_BRIDGE || h.len > size - PROTO_HDR_SIZE ||
        proto_dec_kv(data + PROTO_HDR_SIZE, h.len, &kv) != PROTO_OK)
        return false;
    trusted = proto_kv_get_u64(&kv, "trusted", 0) &&
              !proto_kv_get_u64(&kv, "append_only", 0);
    proto_kv_free(&kv);
    return trusted;
}

/* store_verify's damage callback: a chunk stored with data that does not
 * match its name is a finding. */
static inline void
fz_damage_cb(void *opaque, const char *id, const char *name, const char *disk,
             const char *what)
{
    (void)opaque;
    (void)name;
    (void)disk;
    if (!*id && strncmp(what, "chunk ", 6) == 0)
        __builtin_trap();
}

/* Verify repo (when no session writes to it): no planted chunk. */
static inline void
fz_verify(const char *repo)
{
    struct store *st = store_open(repo, STORE_READ, 0);
    struct proto_kv stats = {0};
    struct store_verify_cb cb = {NULL, fz_damage_cb, NULL};

    if (st) {
        store_verify(st, &cb, &stats);
        store_close(st);
    }
    proto_kv_free(&stats);
}

#endif
