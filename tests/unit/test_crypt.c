/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proto/crypt.c, keyfile.c, sealmeta.c: every primitive against its
 * published test vectors (HMAC-SHA256: RFC 4231; HKDF-SHA256: RFC 5869;
 * scrypt: RFC 7914; AES-256-GCM: McGrew and Viega's GCM specification,
 * test cases 13 to 16; CRC-32C: RFC 3720), then what livebackup builds
 * from them: the derived keys (FORMAT.md's example, so that a second
 * implementation can check itself), the envelope, key files, sealed
 * metadata and the manifest MAC, each against tampering.
 */
#include "proto/crypt.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

/* Hex to bytes into a fresh buffer of *len bytes (caller frees). */
static uint8_t *
unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    uint8_t *p = lb_xmalloc(n ? n : 1);

    cr_assert_eq(lb_hex_decode(p, n, hex), 0, "%s", hex);
    *len = n;
    return p;
}

static void
assert_hex(const uint8_t *p, size_t len, const char *hex)
{
    char *got = lb_xmalloc(2 * len + 1);

    lb_hex_encode(got, p, len);
    cr_assert_str_eq(got, hex);
    free(got);
}

/* ---- HMAC-SHA256, RFC 4231 section 4 ------------------------------------- */

Test(hmac, rfc4231)
{
    static const struct {
        const char *key, *data, *mac;
        size_t maclen; /* case 5 publishes 128 bits */
    } v[] = {
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
         32},
        {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
         32},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
         "dddddddddddddddddddddddddddddddddd",
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
         32},
        {"0102030405060708090a0b0c0d0e0f10111213141516171819",
         "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
         "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
         32},
        {"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c",
         "546573742057697468205472756e636174696f6e",
         "a3b6167473100ee06e0c796c2955552b", 16},
        {NULL,
         "54657374205573696e67204c6172676572205468616e20426c6f636b2d53"
         "697a65204b6579202d2048617368204b6579204669727374",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
         32},
        {NULL,
         "5468697320697320612074657374207573696e672061206c617267657220"
         "7468616e20626c6f636b2d73697a65206b657920616e642061206c617267"
         "6572207468616e20626c6f636b2d73697a6520646174612e20546865206b"
         "6579206e6565647320746f20626520686173686564206265666f72652062"
         "65696e6720757365642062792074686520484d414320616c676f72697468"
         "6d2e",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
         32},
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(v); i++) {
        uint8_t big[131], out[32];
        size_t kl, dl;
        uint8_t *k = v[i].key ? unhex(v[i].key, &kl) : NULL;
        uint8_t *d = unhex(v[i].data, &dl);
        if (!k) { /* cases 6 and 7: 131 bytes of 0xaa */
            memset(big, 0xaa, sizeof big);
            kl = sizeof big;
        }
        cr_assert_eq(proto_hmac_sha256(k ? k : big, kl, d, dl, NULL, 0, out),
                     0);
        assert_hex(out, v[i].maclen, v[i].mac);
        /* a message in two parts is the same message */
        cr_assert_eq(proto_hmac_sha256(k ? k : big, kl, d, dl / 2, d + dl / 2,
                                       dl - dl / 2, out),
                     0);
        assert_hex(out, v[i].maclen, v[i].mac);
        free(k);
        free(d);
    }
}

/* ---- HKDF-SHA256, RFC 5869 appendix A, cases 1 to 3 ---------------------- */

Test(hkdf, rfc5869)
{
    static const struct {
        const char *ikm, *salt, *info, *okm;
    } v[] = {
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
         "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9",
         "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
         "34007208d5b887185865"},
        {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
         "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
         "404142434445464748494a4b4c4d4e4f",
         "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
         "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
         "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
         "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
         "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
         "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
         "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
         "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
         "cc30c58179ec3e87c14c01d5c1f3434f1d87"},
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
         "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
         "9d201395faa4b61a96c8"},
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(v); i++) {
        size_t il, sl, nl, ol;
        uint8_t *ikm = unhex(v[i].ikm, &il), *salt = unhex(v[i].salt, &sl);
        uint8_t *info = unhex(v[i].info, &nl), *okm = unhex(v[i].okm, &ol);
        uint8_t out[128];
        cr_assert_eq(
            proto_hkdf_sha256(ikm, il, sl ? salt : NULL, sl, info, nl, out, ol),
            0);
        cr_assert_arr_eq(out, okm, ol, "case %zu", i + 1);
        free(ikm);
        free(salt);
        free(info);
        free(okm);
    }
}

/* ---- scrypt, RFC 7914 section 12 (the fourth, 1 GiB, is left out) ------- */

Test(scrypt, rfc7914)
{
    static const struct {
        const char *pass, *salt;
        uint64_t n;
        uint32_t r, p;
        const char *dk;
    } v[] = {
        {"", "", 16, 1, 1,
         "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
         "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"},
        {"password", "NaCl", 1024, 8, 16,
         "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
         "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"},
        {"pleaseletmein", "SodiumChloride", 16384, 8, 1,
         "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
         "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887"},
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(v); i++) {
        uint8_t out[64];
        cr_assert_eq(proto_scrypt(v[i].pass, strlen(v[i].pass),
                                  (const uint8_t *)v[i].salt, strlen(v[i].salt),
                                  v[i].n, v[i].r, v[i].p, out, sizeof out),
                     0, "%s", lb_error_msg());
        assert_hex(out, sizeof out, v[i].dk);
    }
}

/* ---- Argon2id: RFC 9106 section 5.3, and the reference implementation's
 * own vectors (phc-winner-argon2, src/test.c: "password", "somesalt") -- */

Test(argon2id, rfc9106)
{
    uint8_t pass[32], salt[16], secret[8], ad[12], out[32];

    memset(pass, 0x01, sizeof pass);
    memset(salt, 0x02, sizeof salt);
    memset(secret, 0x03, sizeof secret);
    memset(ad, 0x04, sizeof ad);
    /* t 3, m 32 KiB, p 4: four lanes on four threads */
    cr_assert_eq(proto_argon2id(pass, sizeof pass, salt, sizeof salt, secret,
                                sizeof secret, ad, sizeof ad, 3, 32, 4, out,
                                sizeof out),
                 0, "%s", lb_error_msg());
    assert_hex(
        out, sizeof out,
        "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659");
}

Test(argon2id, reference)
{
    static const struct {
        uint32_t t, m, p;
        const char *salt, *tag;
    } v[] = {
        {2, 1u << 16, 1, "somesalt",
         "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7"},
        {2, 1u << 8, 1, "somesalt",
         "9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe"},
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(v); i++) {
        uint8_t out[32];
        cr_assert_eq(proto_argon2id("password", 8, (const uint8_t *)v[i].salt,
                                    strlen(v[i].salt), NULL, 0, NULL, 0, v[i].t,
                                    v[i].m, v[i].p, out, sizeof out),
                     0, "%s", lb_error_msg());
        assert_hex(out, sizeof out, v[i].tag);
    }
    /* below RFC 9106's 8 KiB per lane: an error, not a crash */
    {
        uint8_t out[32];
        cr_assert_eq(proto_argon2id("password", 8, (const uint8_t *)"somesalt",
                                    8, NULL, 0, NULL, 0, 1, 8, 2, out,
                                    sizeof out),
                     -1);
    }
}

/* ---- AES-256-GCM: the GCM specification's test cases 13 to 16 ----------- */

#define K_ZERO                                                                 \
    "0000000000000000000000000000000000000000000000000000000000000000"
#define K_FEFF                                                                 \
    "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
#define P_64                                                                   \
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"         \
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
#define C_64                                                                   \
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"         \
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"

Test(gcm, mcgrew_viega_13_to_16)
{
    static const struct {
        const char *key, *iv, *aad, *pt, *ct, *tag;
        size_t len; /* bytes of pt/ct used (case 16: 60) */
    } v[] = {
        {K_ZERO, "000000000000000000000000", "", "", "",
         "530f8afbc74536b9a963b4f1c4cb738b", 0},
        {K_ZERO, "000000000000000000000000", "",
         "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18",
         "d0d1c8a799996bf0265b98b5d48ab919", 16},
        {K_FEFF, "cafebabefacedbaddecaf888", "", P_64, C_64,
         "b094dac5d93471bdec1a502270e3cc6c", 64},
        {K_FEFF, "cafebabefacedbaddecaf888",
         "feedfacedeadbeeffeedfacedeadbeefabaddad2", P_64, C_64,
         "76fc6ece0f4e1768cddf8853bb2d551b", 60},
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(v); i++) {
        size_t kl, nl, al, pl, cl, tl;
        uint8_t *key = unhex(v[i].key, &kl), *iv = unhex(v[i].iv, &nl);
        uint8_t *aad = unhex(v[i].aad, &al), *pt = unhex(v[i].pt, &pl);
        uint8_t *ct = unhex(v[i].ct, &cl), *tag = unhex(v[i].tag, &tl);
        uint8_t out[64], back[64], t[16];

        cr_assert_eq(proto_gcm_seal(key, iv, aad, al, pt, v[i].len, out, t), 0);
        cr_assert_arr_eq(out, ct, v[i].len, "case %zu", i + 13);
        cr_assert_arr_eq(t, tag, 16, "case %zu", i + 13);
        cr_assert_eq(proto_gcm_open(key, iv, aad, al, out, v[i].len, back, t),
                     0);
        cr_assert_arr_eq(back, pt, v[i].len);
        /* in place */
        memcpy(out, pt, v[i].len);
        cr_assert_eq(proto_gcm_seal(key, iv, aad, al, out, v[i].len, out, t),
                     0);
        cr_assert_arr_eq(out, ct, v[i].len);
        /* any change of tag, data, aad or nonce: EBADMSG */
        t[0] ^= 1;
        cr_assert_eq(proto_gcm_open(key, iv, aad, al, out, v[i].len, back, t),
                     -1);
        cr_assert_eq(lb_error_errno(), EBADMSG);
        t[0] ^= 1;
        if (v[i].len) {
            out[v[i].len - 1] ^= 0x80;
            cr_assert_eq(
                proto_gcm_open(key, iv, aad, al, out, v[i].len, back, t), -1);
            out[v[i].len - 1] ^= 0x80;
        }
        iv[11] ^= 1;
        cr_assert_eq(proto_gcm_open(key, iv, aad, al, out, v[i].len, back, t),
                     -1);
        iv[11] ^= 1;
        cr_assert_eq(proto_gcm_open(key, iv, "x", 1, out, v[i].len, back, t),
                     -1);
        free(key);
        free(iv);
        free(aad);
        free(pt);
        free(ct);
        free(tag);
    }
}

/* ---- CRC-32C, RFC 3720 appendix B.4 -------------------------------------- */

Test(crc32c, rfc3720)
{
    uint8_t z[32] = {0}, ff[32], inc[32];
    uint8_t *big = lb_xmalloc(1 << 20);

    memset(ff, 0xFF, sizeof ff);
    for (int i = 0; i < 32; i++)
        inc[i] = (uint8_t)i;
    cr_assert_eq(proto_crc32c(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(proto_crc32c(0, z, sizeof z), 0x8A9136AAu);
    cr_assert_eq(proto_crc32c(0, ff, sizeof ff), 0x62A8AB43u);
    cr_assert_eq(proto_crc32c(0, inc, sizeof inc), 0x46DD794Eu);
    /* in pieces, at every alignment, as whole */
    tu_fill_random(big, 1 << 20, 7);
    {
        uint32_t whole = proto_crc32c(0, big, 1 << 20);
        for (size_t cut = 0; cut < 17; cut++)
            cr_assert_eq(proto_crc32c(proto_crc32c(0, big, cut), big + cut,
                                      (1 << 20) - cut),
                         whole);
        big[12345] ^= 4;
        cr_assert_neq(proto_crc32c(0, big, 1 << 20), whole);
    }
    free(big);
}

/* CRC-32C one bit at a time, straight from the definition. */
static uint32_t
crc32c_bitwise(const uint8_t *p, size_t len)
{
    uint32_t c = 0xFFFFFFFFu;

    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

/* The fast path does long buffers as three interleaved streams put
 * together at the end: every length around its block sizes, at odd
 * alignments, against the definition. */
Test(crc32c, streams)
{
    const size_t max = 3 * 3 * 4096 + 64;
    uint8_t *big = lb_xmalloc(max + 8);
    static const size_t around[] = {
        0, 8, 4096, 3 * 4096, 6 * 4096, 9 * 4096, 3 * 8192, 3 * 256, 2 * 4096};

    tu_fill_random(big, max + 8, 11);
    for (size_t a = 0; a < LB_ARRAY_SIZE(around); a++) {
        for (size_t d = 0; d < 24; d++) {
            size_t len = around[a] + d >= 12 ? around[a] + d - 12 : 0;
            for (size_t off = 0; off < 8; off += 3) {
                if (len + off > max + 8)
                    continue;
                cr_assert_eq(proto_crc32c(0, big + off, len),
                             crc32c_bitwise(big + off, len),
                             "length %zu at offset %zu", len, off);
            }
        }
    }
    free(big);
}

/* ---- the keys: FORMAT.md's example ---------------------------------------- */

static void
example_master(uint8_t m[PROTO_KEY_LEN])
{
    for (int i = 0; i < PROTO_KEY_LEN; i++)
        m[i] = (uint8_t)i;
}

/* The values FORMAT.md ("Keys") gives for master key 00 01 ... 1f,
 * computed with Python's hmac and hashlib (an implementation of HKDF
 * independent of this one). A second implementation checks itself
 * against them. */
#define FORMAT_ID_KEY                                                          \
    "0a13ad1db4db3db86dcba6fc764979bc2cc418acc35e882efda6b5e6d19d0789"
#define FORMAT_DATA_KEY                                                        \
    "4f77b3d169f383966b3dc276569397bbe951e11f5130d787d0f7e69b44e8186c"
#define FORMAT_META_KEY                                                        \
    "5e0684358a8d4d8a1365127cad55b5831ba6acf91f66cf38d71d61fd7b6b352a"
#define FORMAT_MAC_KEY                                                         \
    "6e4dacda97f326f14b4f37f18bd1d2bff6a20f0e27006159f0e53a502cec1d6f"
#define FORMAT_KEY_ID "f600197686de67e0e2d45f486c5e1d51"
#define FORMAT_BLOB_ABC_ID                                                     \
    "c74be34736ee4133e1204ccd34af05f9c77e4a77814c77bfda010d957bcbc992"
Test(keys, format_md_example)
{
    uint8_t m[PROTO_KEY_LEN];
    struct proto_keys k;
    struct proto_digest id;
    char hex[65];

    example_master(m);
    cr_assert_eq(proto_keys_derive(m, &k), 0);
    {
        uint8_t want[32];
        cr_assert_eq(proto_hkdf_sha256(m, 32, NULL, 0, "livebackup v1 chunk id",
                                       22, want, 32),
                     0);
        cr_assert_arr_eq(k.id, want, 32);
    }
    assert_hex(k.id, 32, FORMAT_ID_KEY);
    assert_hex(k.data, 32, FORMAT_DATA_KEY);
    assert_hex(k.meta, 32, FORMAT_META_KEY);
    assert_hex(k.mac, 32, FORMAT_MAC_KEY);
    cr_assert_eq(proto_chunk_id(&k, PROTO_CHUNK_BLOB, "abc", 3, &id), 0);
    {
        uint8_t want[32];
        uint8_t msg[4] = {PROTO_CHUNK_BLOB, 'a', 'b', 'c'};
        cr_assert_eq(proto_hmac_sha256(k.id, 32, msg, 4, NULL, 0, want), 0);
        cr_assert_arr_eq(id.b, want, 32, "id = HMAC(id key, type || plain)");
    }
    /* the five are different, and none is the master key */
    cr_assert_arr_neq(k.id, k.data, 32);
    cr_assert_arr_neq(k.data, k.meta, 32);
    cr_assert_arr_neq(k.meta, k.mac, 32);
    cr_assert_arr_neq(k.id, m, 32);
    assert_hex(k.key_id, sizeof k.key_id, FORMAT_KEY_ID);
    proto_digest_hex(&id, hex);
    cr_assert_str_eq(hex, FORMAT_BLOB_ABC_ID);
}

/* ---- the envelope and sealed chunks -------------------------------------- */

/* FORMAT.md's sealed chunk: BLOB "abc" of the example master key, stored
 * uncompressed (inner byte 0), session salt 40 41 ... 4f, nonce counter 0;
 * made with Python's cryptography package. */
#define FORMAT_SEALED_ABC                                                      \
    "404142434445464748494a4b4c4d4e4f000000000000000000000000a7d024bdd550b1"   \
    "db593850650d0324297f9f7068"

Test(seal, format_md_chunk_opens)
{
    uint8_t m[PROTO_KEY_LEN], aad[PROTO_CHUNK_AAD], out[4];
    struct proto_keys k;
    struct proto_chunk c = {
        .type = PROTO_CHUNK_BLOB, .comp = PROTO_COMP_SEALED, .raw_len = 3};
    size_t len;
    uint8_t *env = unhex(FORMAT_SEALED_ABC, &len);

    example_master(m);
    cr_assert_eq(proto_keys_derive(m, &k), 0);
    cr_assert_eq(proto_chunk_id(&k, c.type, "abc", 3, &c.d), 0);
    c.data = env;
    c.data_len = (uint32_t)len;
    cr_assert_eq(proto_chunk_sealed_check(&c), PROTO_OK);
    proto_chunk_aad(aad, &c);
    cr_assert_eq(proto_unseal(k.data, aad, sizeof aad, env, len, out), 0, "%s",
                 lb_error_msg());
    cr_assert_arr_eq(out, "\0abc", 4);
    /* under another id (a chunk file moved), or another type: no */
    c.d.b[0] ^= 1;
    proto_chunk_aad(aad, &c);
    cr_assert_eq(proto_unseal(k.data, aad, sizeof aad, env, len, out), -1);
    cr_assert_eq(lb_error_errno(), EBADMSG);
    c.d.b[0] ^= 1;
    c.type = PROTO_CHUNK_RAW;
    proto_chunk_aad(aad, &c);
    cr_assert_eq(proto_unseal(k.data, aad, sizeof aad, env, len, out), -1);
    free(env);
}

Test(seal, round_trip_nonces_and_tampering)
{
    uint8_t base[PROTO_KEY_LEN], buf[PROTO_SEAL_OVERHEAD + 100], first[28];
    uint8_t out[100];
    struct proto_sealer s;

    memset(base, 7, sizeof base);
    cr_assert_eq(proto_sealer_init(&s, base), 0);
    for (int round = 0; round < 3; round++) {
        memset(buf + PROTO_SEAL_HDR, 'x', 100);
        cr_assert_eq(proto_seal(&s, "aad", 3, buf, 100), 0);
        cr_assert_arr_eq(buf, s.salt, PROTO_SEAL_SALT);
        /* the nonce counts: 0, 1, 2 */
        cr_assert_eq(lb_load_be64(buf + PROTO_SEAL_SALT + 4), (uint64_t)round);
        if (round == 0)
            memcpy(first, buf, sizeof first);
        cr_assert_eq(proto_unseal(base, "aad", 3, buf, sizeof buf, out), 0);
        cr_assert(out[0] == 'x' && out[99] == 'x');
    }
    /* every byte of the envelope matters */
    for (size_t i = 0; i < sizeof buf; i += 7) {
        buf[i] ^= 0x10;
        cr_assert_eq(proto_unseal(base, "aad", 3, buf, sizeof buf, out), -1,
                     "byte %zu", i);
        buf[i] ^= 0x10;
    }
    cr_assert_eq(proto_unseal(base, "aae", 3, buf, sizeof buf, out), -1);
    cr_assert_eq(proto_unseal(base, "aad", 3, buf, sizeof buf - 1, out), -1);
    cr_assert_eq(proto_unseal(base, "aad", 3, buf, 43, out), -1);
    cr_assert_eq(lb_error_errno(), EPROTO, "shorter than an envelope");
    /* a second session under the same base: another salt, another key */
    {
        struct proto_sealer s2;
        cr_assert_eq(proto_sealer_init(&s2, base), 0);
        cr_assert_arr_neq(s2.salt, s.salt, PROTO_SEAL_SALT);
        cr_assert_arr_neq(s2.key, s.key, PROTO_KEY_LEN);
    }
}

#define HMAC_KEY_LONG 131 /* over SHA-256's block of 64: hashed first */

/* A thread keeps the keys it last set up (HMAC, GCM, the session key of
 * proto_unseal): every change of key, salt or direction must still be
 * seen, also right after a failure. */
Test(seal, kept_keys_follow_every_change)
{
    uint8_t a[PROTO_KEY_LEN], b[PROTO_KEY_LEN], out[64], m1[32], m2[32];
    uint8_t ea[PROTO_SEAL_OVERHEAD + 64], eb[PROTO_SEAL_OVERHEAD + 64];
    uint8_t big[HMAC_KEY_LONG], nonce[PROTO_GCM_NONCE] = {0}, tag[16];
    struct proto_sealer sa, sb;

    memset(a, 7, sizeof a);
    memcpy(b, a, sizeof b);
    b[31] ^= 1; /* differs in its last byte only */
    cr_assert_eq(proto_sealer_init(&sa, a), 0);
    cr_assert_eq(proto_sealer_init(&sb, b), 0);
    memset(ea + PROTO_SEAL_HDR, 'a', 64);
    memset(eb + PROTO_SEAL_HDR, 'b', 64);
    cr_assert_eq(proto_seal(&sa, NULL, 0, ea, 64), 0);
    cr_assert_eq(proto_seal(&sb, NULL, 0, eb, 64), 0);
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(proto_unseal(a, NULL, 0, ea, sizeof ea, out), 0);
        cr_assert_eq(out[63], 'a');
        cr_assert_eq(proto_unseal(b, NULL, 0, ea, sizeof ea, out), -1);
        cr_assert_eq(proto_unseal(a, NULL, 0, eb, sizeof eb, out), -1);
        cr_assert_eq(proto_unseal(b, NULL, 0, eb, sizeof eb, out), 0);
        cr_assert_eq(out[63], 'b');
        /* in place, as a restore opens a chunk */
        memcpy(big, eb, sizeof eb);
        cr_assert_eq(
            proto_unseal(b, NULL, 0, big, sizeof eb, big + PROTO_SEAL_HDR), 0);
        cr_assert_eq(big[PROTO_SEAL_HDR + 63], 'b');
    }
    /* GCM: a key that differs in its last byte, in either direction */
    cr_assert_eq(proto_gcm_seal(a, nonce, NULL, 0, m1, 0, out, tag), 0);
    cr_assert_eq(proto_gcm_seal(b, nonce, NULL, 0, m1, 0, out, out + 32), 0);
    cr_assert_arr_neq(out + 32, tag, 16);
    cr_assert_eq(proto_gcm_open(a, nonce, NULL, 0, out, 0, out, tag), 0);
    cr_assert_eq(proto_gcm_open(b, nonce, NULL, 0, out, 0, out, tag), -1);
    cr_assert_eq(proto_gcm_open(a, nonce, NULL, 0, out, 0, out, tag), 0);
    /* HMAC: keys of one length differing in the last byte, and a key too
     * long to be kept (hashed first) */
    memset(big, 0xaa, sizeof big);
    cr_assert_eq(proto_hmac_sha256(a, 32, "x", 1, NULL, 0, m1), 0);
    cr_assert_eq(proto_hmac_sha256(b, 32, "x", 1, NULL, 0, m2), 0);
    cr_assert_arr_neq(m1, m2, 32);
    cr_assert_eq(proto_hmac_sha256(big, sizeof big, "x", 1, NULL, 0, m2), 0);
    cr_assert_eq(proto_hmac_sha256(a, 32, "x", 1, NULL, 0, m2), 0);
    cr_assert_arr_eq(m1, m2, 32);
    cr_assert_eq(proto_hmac_sha256(big, sizeof big, "x", 1, NULL, 0, m1), 0);
    big[sizeof big - 1] ^= 1;
    cr_assert_eq(proto_hmac_sha256(big, sizeof big, "x", 1, NULL, 0, m2), 0);
    cr_assert_arr_neq(m1, m2, 32);
}

Test(seal, sealed_chunk_sizes)
{
    struct proto_chunk c = {.comp = PROTO_COMP_SEALED, .raw_len = 100};

    c.data_len = PROTO_SEALED_MIN;
    cr_assert_eq(proto_chunk_sealed_check(&c), PROTO_OK);
    c.data_len = PROTO_SEALED_MIN - 1;
    cr_assert_eq(proto_chunk_sealed_check(&c), PROTO_E_RANGE);
    c.data_len = (uint32_t)PROTO_SEALED_MAX(100);
    cr_assert_eq(proto_chunk_sealed_check(&c), PROTO_OK);
    c.data_len++;
    cr_assert_eq(proto_chunk_sealed_check(&c), PROTO_E_RANGE,
                 "more than the plaintext stored as is");
    c.comp = PROTO_COMP_ZSTD;
    c.data_len = PROTO_SEALED_MIN;
    cr_assert_eq(proto_chunk_sealed_check(&c), PROTO_E_RANGE);
}

/* ---- key files ------------------------------------------------------------ */

static void
wrap_unwrap(uint8_t kdf, uint8_t log2n, uint8_t want_r, uint8_t want_p)
{
    uint8_t m[PROTO_KEY_LEN], back[PROTO_KEY_LEN], b[PROTO_KEYFILE_LEN];
    struct proto_keyfile kf, d;
    struct proto_keys k;

    example_master(m);
    cr_assert_eq(proto_keyfile_wrap(m, "pass word", 9, kdf, log2n, &kf), 0,
                 "%s", lb_error_msg());
    cr_assert_eq(kf.kdf, kdf);
    cr_assert_eq(kf.log2n, log2n);
    cr_assert_eq(kf.r, want_r);
    cr_assert_eq(kf.p, want_p);
    cr_assert_eq(proto_keys_derive(m, &k), 0);
    cr_assert_arr_eq(kf.key_id, k.key_id, PROTO_KEY_ID_LEN);
    cr_assert_arr_neq(kf.wrapped, m, PROTO_KEY_LEN, "the key is wrapped");
    proto_keyfile_encode(b, &kf);
    cr_assert_arr_eq(b, PROTO_KEYFILE_MAGIC, 8);
    cr_assert_eq(proto_keyfile_decode(b, sizeof b, &d), PROTO_OK);
    cr_assert_eq(proto_keyfile_unwrap(&d, "pass word", 9, back), 0, "%s",
                 lb_error_msg());
    cr_assert_arr_eq(back, m, PROTO_KEY_LEN);
    cr_assert_eq(proto_keyfile_unwrap(&d, "pass worD", 9, back), -1);
    cr_assert_eq(lb_error_errno(), EBADMSG);
    cr_assert_neq(strstr(lb_error_msg(), "wrong passphrase"), NULL);
    cr_assert_eq(proto_keyfile_unwrap(&d, "", 0, back), -1);
    cr_assert_eq(lb_error_errno(), EINVAL, "an empty passphrase");
    /* the header is authenticated too: cheaper parameters, or the other
     * KDF, are not accepted */
    d.log2n = (uint8_t)(log2n - 1);
    cr_assert_eq(proto_keyfile_unwrap(&d, "pass word", 9, back), -1);
    d.log2n = log2n;
    d.r = (uint8_t)(want_r + 1);
    cr_assert_eq(proto_keyfile_unwrap(&d, "pass word", 9, back), -1);
    d.r = want_r;
    d.kdf = kdf == PROTO_KDF_SCRYPT ? PROTO_KDF_ARGON2ID : PROTO_KDF_SCRYPT;
    cr_assert_eq(proto_keyfile_unwrap(&d, "pass word", 9, back), -1);
    d.kdf = kdf;
    d.key_id[0] ^= 1;
    cr_assert_eq(proto_keyfile_unwrap(&d, "pass word", 9, back), -1);
    /* a fresh wrapping of the same key: another salt, same key id */
    {
        struct proto_keyfile kf2;
        cr_assert_eq(proto_keyfile_wrap(m, "pass word", 9, kdf, log2n, &kf2),
                     0);
        cr_assert_arr_neq(kf2.salt, kf.salt, sizeof kf.salt);
        cr_assert_arr_eq(kf2.key_id, kf.key_id, sizeof kf.key_id);
    }
}

Test(keyfile, wrap_unwrap_and_wrong_passphrase)
{
    /* quick key files for the test: Argon2id over 1 MiB, scrypt N 2^10 */
    wrap_unwrap(PROTO_KDF_ARGON2ID, 10, PROTO_ARGON2_T, PROTO_ARGON2_P);
    wrap_unwrap(PROTO_KDF_SCRYPT, 10, PROTO_SCRYPT_R, PROTO_SCRYPT_P);
}

/* What new key files get: Argon2id with the default parameters, and the
 * passphrase it was wrapped with opens it. */
Test(keyfile, default_is_argon2id)
{
    uint8_t m[PROTO_KEY_LEN], back[PROTO_KEY_LEN];
    struct proto_keyfile kf;

    example_master(m);
    cr_assert_eq(proto_keyfile_wrap(m, "pw", 2, 0, 0, &kf), 0, "%s",
                 lb_error_msg());
    cr_assert_eq(kf.kdf, PROTO_KDF_ARGON2ID);
    cr_assert_eq(kf.log2n, PROTO_ARGON2_LOG2M);
    cr_assert_eq(kf.r, PROTO_ARGON2_T);
    cr_assert_eq(kf.p, PROTO_ARGON2_P);
    cr_assert_eq(proto_keyfile_unwrap(&kf, "pw", 2, back), 0, "%s",
                 lb_error_msg());
    cr_assert_arr_eq(back, m, PROTO_KEY_LEN);
}

/* A key file wrapped as FORMAT.md says, by hand from the primitives, opens
 * through proto_keyfile_unwrap: the KEK is Argon2id(passphrase, salt) with
 * the header's parameters, and the tag covers bytes 0 to 80. */
Test(keyfile, argon2id_as_format_md_says)
{
    uint8_t m[PROTO_KEY_LEN], back[PROTO_KEY_LEN], kek[PROTO_KEY_LEN];
    uint8_t b[PROTO_KEYFILE_LEN];
    struct proto_keyfile kf = {
        .kdf = PROTO_KDF_ARGON2ID, .log2n = 5, .r = 2, .p = 3};
    struct proto_keys k;

    example_master(m);
    cr_assert_eq(proto_keys_derive(m, &k), 0);
    memcpy(kf.key_id, k.key_id, sizeof kf.key_id);
    memset(kf.salt, 0x5a, sizeof kf.salt);
    memset(kf.nonce, 0xa5, sizeof kf.nonce);
    cr_assert_eq(proto_argon2id("secret", 6, kf.salt, sizeof kf.salt, NULL, 0,
                                NULL, 0, 2, 32, 3, kek, sizeof kek),
                 0);
    proto_keyfile_encode(b, &kf);
    cr_assert_eq(b[10], 2);
    cr_assert_eq(b[11], 5);
    cr_assert_eq(b[12], 2);
    cr_assert_eq(b[13], 3);
    cr_assert_eq(proto_gcm_seal(kek, kf.nonce, b, PROTO_KEYFILE_AAD, m,
                                sizeof m, kf.wrapped, kf.tag),
                 0);
    cr_assert_eq(proto_keyfile_unwrap(&kf, "secret", 6, back), 0, "%s",
                 lb_error_msg());
    cr_assert_arr_eq(back, m, PROTO_KEY_LEN);
}

Test(keyfile, decode_rejects_every_malformation)
{
    uint8_t m[PROTO_KEY_LEN], b[PROTO_KEYFILE_LEN + 1];
    struct proto_keyfile kf, d;

    example_master(m);
    cr_assert_eq(proto_keyfile_wrap(m, "p", 1, PROTO_KDF_SCRYPT, 10, &kf), 0);
    proto_keyfile_encode(b, &kf);
    b[PROTO_KEYFILE_LEN] = 0;
    for (size_t n = 0; n < PROTO_KEYFILE_LEN; n++)
        cr_assert_eq(proto_keyfile_decode(b, n, &d), PROTO_E_TRUNCATED);
    cr_assert_eq(proto_keyfile_decode(b, sizeof b, &d), PROTO_E_TRAILING);
#define BAD(off, val, want)                                                    \
    do {                                                                       \
        uint8_t o = b[off];                                                    \
        b[off] = (val);                                                        \
        cr_assert_eq(proto_keyfile_decode(b, PROTO_KEYFILE_LEN, &d), want,     \
                     "byte %d = %d", off, (int)(val));                         \
        b[off] = o;                                                            \
    } while (0)
    BAD(0, 'X', PROTO_E_MAGIC);
    BAD(9, 2, PROTO_E_RANGE);   /* version */
    BAD(10, 0, PROTO_E_RANGE);  /* kdf */
    BAD(10, 3, PROTO_E_RANGE);  /* kdf */
    BAD(11, 0, PROTO_E_RANGE);  /* log2 N */
    BAD(11, 25, PROTO_E_RANGE); /* log2 N */
    BAD(11, 22, PROTO_E_RANGE); /* 512 MiB with r 8: too much */
    BAD(12, 0, PROTO_E_RANGE);  /* r */
    BAD(12, 33, PROTO_E_RANGE); /* r */
    BAD(13, 0, PROTO_E_RANGE);  /* p */
    BAD(13, 17, PROTO_E_RANGE); /* p */
    BAD(14, 1, PROTO_E_RESERVED);
    BAD(15, 1, PROTO_E_RESERVED);
    BAD(76, 1, PROTO_E_RESERVED);
    BAD(79, 1, PROTO_E_RESERVED);
    cr_assert_eq(proto_keyfile_decode(b, PROTO_KEYFILE_LEN, &d), PROTO_OK);
    cr_assert_arr_eq(&d, &kf, sizeof d);

    /* Argon2id: m = 2^log2n KiB, r is t */
    cr_assert_eq(proto_keyfile_wrap(m, "p", 1, PROTO_KDF_ARGON2ID, 6, &kf), 0);
    proto_keyfile_encode(b, &kf);
    BAD(11, 19, PROTO_E_RANGE); /* 512 MiB: too much */
    BAD(11, 25, PROTO_E_RANGE);
    BAD(11, 3, PROTO_E_RANGE);  /* 8 KiB for p 2: below 8 KiB a lane */
    BAD(12, 0, PROTO_E_RANGE);  /* t */
    BAD(12, 33, PROTO_E_RANGE); /* t */
    BAD(13, 0, PROTO_E_RANGE);  /* p */
    BAD(13, 9, PROTO_E_RANGE);  /* 64 KiB for p 9 */
    BAD(13, 17, PROTO_E_RANGE); /* p */
    {
        /* 256 MiB is the most memory, and four times it the most work */
        uint8_t o11 = b[11], o12 = b[12];
        b[11] = 18;
        b[12] = 4;
        cr_assert_eq(proto_keyfile_decode(b, PROTO_KEYFILE_LEN, &d), PROTO_OK);
        BAD(12, 5, PROTO_E_RANGE);
        b[11] = o11;
        b[12] = o12;
    }
#undef BAD
    cr_assert_eq(proto_keyfile_decode(b, PROTO_KEYFILE_LEN, &d), PROTO_OK);
    cr_assert_arr_eq(&d, &kf, sizeof d);
}

/* ---- sealed metadata ------------------------------------------------------ */

static bool
clear_kind(const char *key)
{
    return strcmp(key, "kind") == 0;
}

/* FORMAT.md's sealed metadata: {source: /img/a.qcow2} of disk vda of
 * backup 20261123-114600-abcd, example master key, salt 40 ... 4f, nonce
 * counter 1; made with Python's cryptography package. */
#define FORMAT_SEALED_META                                                     \
    "404142434445464748494a4b4c4d4e4f0000000000000000000000019e13124f4cf352"   \
    "97c01afdf49d6492702237ae7578a3c5c0f1c693ed27867d645d93e30993672736c532"

Test(meta, format_md_example_opens)
{
    uint8_t m[PROTO_KEY_LEN];
    struct proto_keys k;
    struct proto_kv kv = {0};

    example_master(m);
    cr_assert_eq(proto_keys_derive(m, &k), 0);
    proto_kv_set(&kv, "mode", "full");
    proto_kv_set(&kv, PROTO_META_SEALED, FORMAT_SEALED_META);
    cr_assert_eq(proto_meta_unseal(k.meta, "20261123-114600-abcd", "vda", &kv),
                 0, "%s", lb_error_msg());
    cr_assert_eq(kv.n, 2);
    cr_assert_str_eq(proto_kv_get(&kv, "source"), "/img/a.qcow2");
    cr_assert_str_eq(proto_kv_get(&kv, "mode"), "full");
    cr_assert_null(proto_kv_get(&kv, PROTO_META_SEALED));
    proto_kv_free(&kv);
    /* the same value for another disk or backup does not open */
    proto_kv_set(&kv, PROTO_META_SEALED, FORMAT_SEALED_META);
    cr_assert_eq(proto_meta_unseal(k.meta, "20261123-114600-abcd", "vdb", &kv),
                 -1);
    cr_assert_eq(lb_error_errno(), EBADMSG);
    cr_assert_eq(proto_meta_unseal(k.meta, "20261123-114600-abce", "vda", &kv),
                 -1);
    cr_assert_eq(kv.n, 1, "left as it was");
    proto_kv_free(&kv);
}

Test(meta, seal_splits_and_round_trips)
{
    uint8_t base[PROTO_KEY_LEN];
    struct proto_sealer s;
    struct proto_kv in = {0}, out = {0};
    const char *v;

    memset(base, 3, sizeof base);
    cr_assert_eq(proto_sealer_init(&s, base), 0);
    proto_kv_set(&in, "kind", "full");
    proto_kv_set(&in, "host", "vmhost1.example.com");
    proto_kv_set(&in, "domain_uuid", "a5c2f5b2-0000-4000-8000-000000000001");
    cr_assert_eq(proto_meta_seal(&s, "ID", "", &in, clear_kind, &out), 0);
    cr_assert_eq(out.n, 2);
    cr_assert_str_eq(proto_kv_get(&out, "kind"), "full");
    v = proto_kv_get(&out, PROTO_META_SEALED);
    cr_assert_not_null(v);
    cr_assert_null(strstr(v, "vmhost1"), "sealed, not encoded");
    cr_assert_eq(strspn(v, "0123456789abcdef"), strlen(v), "hex");
    cr_assert_eq(proto_meta_unseal(base, "ID", "", &out), 0);
    cr_assert_eq(out.n, 3);
    cr_assert_str_eq(proto_kv_get(&out, "host"), "vmhost1.example.com");
    proto_kv_free(&out);
    /* nothing to seal: no "sealed" entry */
    proto_kv_free(&in);
    proto_kv_set(&in, "kind", "incremental");
    cr_assert_eq(proto_meta_seal(&s, "ID", "", &in, clear_kind, &out), 0);
    cr_assert_eq(out.n, 1);
    cr_assert_null(proto_kv_get(&out, PROTO_META_SEALED));
    proto_kv_free(&out);
    /* the reserved keys cannot be set by a caller */
    proto_kv_set(&in, "mac", "00");
    cr_assert_eq(proto_meta_seal(&s, "ID", "", &in, clear_kind, &out), -1);
    proto_kv_free(&out);
    proto_kv_free(&in);
}

Test(meta, unseal_rejects_malformed_and_duplicate_keys)
{
    uint8_t base[PROTO_KEY_LEN];
    struct proto_sealer s;
    struct proto_kv in = {0}, out = {0};

    memset(base, 4, sizeof base);
    cr_assert_eq(proto_sealer_init(&s, base), 0);
    proto_kv_set(&in, "host", "h");
    cr_assert_eq(proto_meta_seal(&s, "ID", "vda", &in, clear_kind, &out), 0);
    /* a clear key of the same name as a sealed one */
    proto_kv_set(&out, "host", "other");
    cr_assert_eq(proto_meta_unseal(base, "ID", "vda", &out), -1);
    cr_assert_eq(lb_error_errno(), EPROTO);
    proto_kv_free(&out);
    static const char *const bad[] = {"", "0", "zz", "00",
                                      "0123456789abcdef0123456789abcdef"
                                      "0123456789abcdef0123456789abcdef"
                                      "0123456789abcdef0123456789abcdef"};
    for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++) {
        proto_kv_set(&out, PROTO_META_SEALED, bad[i]);
        cr_assert_eq(proto_meta_unseal(base, "ID", "vda", &out), -1, "%s",
                     bad[i]);
        proto_kv_free(&out);
    }
    proto_kv_free(&in);
}

/* ---- manifest MACs -------------------------------------------------------- */

/* The MAC of a small backup: two disks, their windows, metadata. */
static void
mac_of(const struct proto_kv *meta, const struct proto_kv *dmeta,
       uint8_t window_byte, bool swap_order, uint8_t out[PROTO_MAC_LEN])
{
    uint8_t key[PROTO_KEY_LEN];
    struct proto_mf_mac *m = proto_mf_mac_new();
    struct proto_mf_disk d = {"vda", 3u << 20, 1u << 20, 3};

    memset(key, 9, sizeof key);
    cr_assert_not_null(m);
    for (int disk = 0; disk < 2; disk++) {
        snprintf(d.name, sizeof d.name, "vd%c", 'a' + disk);
        cr_assert_eq(proto_mf_mac_disk_begin(m, &d), 0);
        for (uint64_t i = 0; i < d.nwindows; i++) {
            struct proto_mf_window w = {0};
            if (i == 1) {
                w.depth = 2;
                w.refs[0].type = PROTO_CHUNK_RAW;
                w.refs[0].d = tu_digest(window_byte);
                w.refs[1].type = PROTO_CHUNK_DELTA;
                w.refs[1].d = tu_digest(2);
            }
            cr_assert_eq(proto_mf_mac_window(m, &w), 0);
        }
        cr_assert_eq(proto_mf_mac_disk_end(m), 0);
    }
    /* disk metadata in any order */
    cr_assert_eq(proto_mf_mac_disk_meta(m, swap_order ? 1 : 0, dmeta), 0);
    cr_assert_eq(proto_mf_mac_disk_meta(m, swap_order ? 0 : 1, dmeta), 0);
    cr_assert_eq(proto_mf_mac_finish(m, key, meta, out), 0);
    proto_mf_mac_free(m);
}

Test(mac, covers_every_part_and_no_order)
{
    struct proto_kv meta = {0}, meta2 = {0}, dm = {0}, dm2 = {0};
    uint8_t a[32], b[32];

    proto_kv_set(&meta, "id", "20261123-114600-abcd");
    proto_kv_set(&meta, "time", "1");
    proto_kv_set(&dm, "mode", "full");
    mac_of(&meta, &dm, 1, false, a);
    mac_of(&meta, &dm, 1, true, b);
    cr_assert_arr_eq(a, b, 32, "same metadata in every disk");
    /* the same keys in another order */
    proto_kv_set(&meta2, "time", "1");
    proto_kv_set(&meta2, "id", "20261123-114600-abcd");
    mac_of(&meta2, &dm, 1, false, b);
    cr_assert_arr_eq(a, b, 32, "kv order does not matter");
    /* the mac key itself, and the repository's bookkeeping, are left out */
    proto_kv_set(&meta2, PROTO_META_MAC, "ffff");
    proto_kv_set(&meta2, "seq", "7");
    proto_kv_set(&meta2, "chunks_new", "1");
    proto_kv_set(&meta2, "bytes_new", "2");
    proto_kv_set(&meta2, "bytes_received", "3");
    mac_of(&meta2, &dm, 1, false, b);
    cr_assert_arr_eq(a, b, 32);
    cr_assert(proto_mf_mac_covers("time") && proto_mf_mac_covers("id") &&
              !proto_mf_mac_covers("seq") && !proto_mf_mac_covers("mac"));
    /* a window, a value, a disk's metadata: each changes it */
    mac_of(&meta, &dm, 3, false, b);
    cr_assert_arr_neq(a, b, 32);
    proto_kv_set(&meta2, "time", "2");
    mac_of(&meta2, &dm, 1, false, b);
    cr_assert_arr_neq(a, b, 32);
    proto_kv_set(&dm2, "mode", "incremental");
    mac_of(&meta, &dm2, 1, false, b);
    cr_assert_arr_neq(a, b, 32);
    proto_kv_free(&meta);
    proto_kv_free(&meta2);
    proto_kv_free(&dm);
    proto_kv_free(&dm2);
}

Test(mac, refuses_incomplete_input)
{
    struct proto_mf_mac *m = proto_mf_mac_new();
    struct proto_mf_disk d = {"vda", 1u << 20, 1u << 20, 1};
    struct proto_mf_window w = {0};
    struct proto_kv meta = {0};
    uint8_t key[32] = {0}, out[32];

    cr_assert_eq(proto_mf_mac_window(m, &w), -1, "no disk begun");
    cr_assert_eq(proto_mf_mac_disk_begin(m, &d), 0);
    cr_assert_eq(proto_mf_mac_disk_end(m), -1, "a window short");
    cr_assert_eq(proto_mf_mac_window(m, &w), 0);
    cr_assert_eq(proto_mf_mac_window(m, &w), -1, "a window too many");
    cr_assert_eq(proto_mf_mac_disk_end(m), 0);
    cr_assert_eq(proto_mf_mac_finish(m, key, &meta, out), -1,
                 "a disk without its metadata");
    cr_assert_eq(proto_mf_mac_disk_meta(m, 1, &meta), -1);
    cr_assert_eq(proto_mf_mac_disk_meta(m, 0, &meta), 0);
    cr_assert_eq(proto_mf_mac_finish(m, key, &meta, out), 0);
    proto_mf_mac_free(m);
}
