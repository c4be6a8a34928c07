/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The reader's extents (NBD block status): from the manifest's stack
 * index and the DELTAs' runs, never from the data. A window with an empty
 * stack is a hole, one with a RAW chunk at its bottom data; a window of
 * DELTAs on zeros is decoded (fetched if it is the first asked about) and
 * its block map says which 4 KiB blocks are data and which zero.
 */
#include "agent/client/reader_int.h"

#include <errno.h>
#include <string.h>

/* ---- extents ------------------------------------------------------------------ */

/* The block map of a cached window into map; false if it is not cached.
 * rd->lock held. */
static bool
map_cached(struct agent_reader *rd, uint64_t w, uint8_t *map)
{
    struct rd_slot *s = rd_cache_find(rd, w);

    if (!s)
        return false;
    memcpy(map, s->map, rd->ws / RD_BLOCK / 8 + 1);
    return true;
}

struct ext_out {
    agent_extent_fn fn;
    void *opaque;
    uint64_t off, len; /* pending extent */
    unsigned kind;
};

static int
ext_emit(struct ext_out *o, uint64_t off, uint64_t len, unsigned kind)
{
    if (o->len && o->kind == kind && o->off + o->len == off) {
        o->len += len;
        return 0;
    }
    if (o->len && o->fn(o->opaque, o->off, o->len, o->kind) < 0)
        return -1;
    o->off = off;
    o->len = len;
    o->kind = kind;
    return 0;
}

/* The extents of [from, to) inside window w, from its block map. */
static int
ext_window_map(struct agent_reader *rd, struct ext_out *o, uint64_t w,
               const uint8_t *map, uint64_t from, uint64_t to)
{
    uint64_t base = w * rd->ws;

    while (from < to) {
        uint32_t b = (uint32_t)((from - base) / RD_BLOCK);
        bool data = map[b / 8] >> (b % 8) & 1;
        uint64_t end = LB_MIN(base + (uint64_t)(b + 1) * RD_BLOCK, to);
        if (ext_emit(o, from, end - from,
                     data ? AGENT_EXTENT_DATA : AGENT_EXTENT_ZERO) < 0)
            return -1;
        from = end;
    }
    return 0;
}

int
agent_reader_extents(struct agent_reader *rd, uint64_t off, uint64_t len,
                     agent_extent_fn fn, void *opaque)
{
    struct ext_out o = {fn, opaque, 0, 0, 0};
    CLEANUP_FREE uint8_t *map = lb_xmalloc(rd->ws / RD_BLOCK / 8 + 1);
    uint64_t end;

    if (off > rd->size || len > rd->size - off)
        return lb_fail(EINVAL, "extents past the end of disk %s", rd->disk);
    end = off + len;
    while (off < end) {
        uint64_t w = off / rd->ws;
        uint64_t wend = LB_MIN((w + 1) * rd->ws, end);
        unsigned d = rd->depth[w];
        int got;

        if ((d & RD_DEPTH_MASK) == 0) {
            if (ext_emit(&o, off, wend - off, AGENT_EXTENT_HOLE) < 0)
                return -1;
        } else if (d & RD_RAW_BOTTOM) {
            if (ext_emit(&o, off, wend - off, AGENT_EXTENT_DATA) < 0)
                return -1;
        } else {
            /* DELTAs on zeros: their runs say, once the window is
             * decoded. Beyond the first window only cached ones are
             * looked at: the caller asks again for the rest. */
            pthread_mutex_lock(&rd->lock);
            got = map_cached(rd, w, map);
            pthread_mutex_unlock(&rd->lock);
            if (!got && o.len)
                break;
            if (!got) {
                pthread_mutex_lock(&rd->fetch);
                got = rd_fetch(rd, w);
                pthread_mutex_lock(&rd->lock);
                if (got == 0 && !map_cached(rd, w, map))
                    got = lb_fail(EIO, "window %llu of disk %s was not cached",
                                  (unsigned long long)w, rd->disk);
                pthread_mutex_unlock(&rd->lock);
                pthread_mutex_unlock(&rd->fetch);
                if (got < 0)
                    return -1;
            }
            if (ext_window_map(rd, &o, w, map, off, wend) < 0)
                return -1;
        }
        off = wend;
    }
    if (o.len && fn(opaque, o.off, o.len, o.kind) < 0)
        return -1;
    return 0;
}
