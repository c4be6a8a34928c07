/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: a key file (proto_keyfile_decode), as a client reads
 * it from a repository (keys/repokey over KEY_DATA) or from its own disk,
 * and as backupd checks one (INIT, KEY_SET).
 *
 * Oracle beyond "no crash, no leak": an accepted key file is exactly 128
 * bytes and re-encodes to the same bytes; its scrypt parameters are within
 * the bounds a client will spend; when they are cheap, unwrapping with the
 * passphrase "fuzz" either fails with EBADMSG (the tag) or gives a master
 * key whose key id is the file's.
 */
#include "fuzz/fuzz.h"
#include "proto/crypt.h"

#include <errno.h>
#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_keyfile kf;
    uint8_t out[PROTO_KEYFILE_LEN], master[PROTO_KEY_LEN];
    struct proto_keys k;
    int st = proto_keyfile_decode(data, size, &kf);

    (void)proto_status_str(st);
    if (st != PROTO_OK)
        return 0;
    CHECK(size == PROTO_KEYFILE_LEN);
    CHECK(kf.kdf == PROTO_KDF_SCRYPT || kf.kdf == PROTO_KDF_ARGON2ID);
    if (kf.kdf == PROTO_KDF_SCRYPT)
        CHECK(128ull * kf.r * (1ull << kf.log2n) <= PROTO_KDF_MAX_MEM);
    else
        CHECK((1024ull << kf.log2n) <= PROTO_KDF_MAX_MEM &&
              (1u << kf.log2n) >= 8u * kf.p);
    proto_keyfile_encode(out, &kf);
    CHECK(memcmp(out, data, PROTO_KEYFILE_LEN) == 0);
    /* Unwrapping costs the KDF: only for cheap parameters. */
    if (kf.log2n > 8 || kf.r > 4 || kf.p > 2)
        return 0;
    if (proto_keyfile_unwrap(&kf, "fuzz", 4, master) == 0) {
        CHECK(proto_keys_derive(master, &k) == 0);
        CHECK(memcmp(k.key_id, kf.key_id, sizeof k.key_id) == 0);
    } else {
        CHECK(lb_error_errno() == EBADMSG || lb_error_errno() == EPROTO);
    }
    return 0;
}
