/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: version negotiation. Input: u16 server min, u16 server
 * max, then a HELLO payload (the client's offer).
 *
 * Oracle: a negotiated version lies in both ranges; the server's reply
 * encodes, decodes, and passes the client's check of its own offer; no
 * version is chosen when the ranges are disjoint.
 */
#include "fuzz/fuzz.h"
#include "proto/proto.h"

#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_hello offer, reply, back;
    struct proto_hdr h;
    struct lb_buf b = {0};
    uint16_t smin, smax, v;

    if (size < 4)
        return 0;
    smin = lb_load_be16(data);
    smax = lb_load_be16(data + 2);
    if (smin == 0 || smin > smax)
        return 0;
    if (proto_dec_hello(data + 4, size - 4, &offer) != PROTO_OK)
        return 0;
    v = proto_hello_negotiate(&offer, smin, smax, 0x5ull, &reply);
    if (v == 0) {
        CHECK(offer.version_max < smin || offer.version_min > smax);
        return 0;
    }
    CHECK(v >= smin && v <= smax && v >= offer.version_min &&
          v <= offer.version_max);
    CHECK((reply.features & ~offer.features) == 0);
    reply.software.p = "fuzz";
    reply.software.len = 4;
    proto_enc_hello(&b, PROTO_T_HELLO_REPLY, &reply);
    CHECK(proto_hdr_decode(b.data, b.len, &h) == PROTO_OK);
    CHECK(h.type == PROTO_T_HELLO_REPLY && h.len == b.len - PROTO_HDR_SIZE);
    CHECK(proto_dec_hello(b.data + PROTO_HDR_SIZE, h.len, &back) == PROTO_OK);
    CHECK(proto_hello_check_reply(&back, offer.version_min, offer.version_max,
                                  offer.features) == PROTO_OK);
    lb_buf_free(&b);
    return 0;
}
