/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store's part of encryption (store/FORMAT.md, "Encryption"): the
 * version 2 config and the key's record, keys/repokey read and replaced,
 * sealed chunk files (version 2, a CRC-32C of their bytes) and the form a
 * repository accepts, verify without the key, the two-step commit that
 * needs the manifest's MAC. The store never has a key: chunks here are
 * sealed with test keys through proto/crypt.h, as the client seals them.
 */
#include "proto/crypt.h"
#include "store/store.h"
#include "tests/unit/store_util.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#define WS (64u << 10)

static char *tmp, *repo;
static struct store *st;
static struct store_scratch *sc;
static uint8_t kf_bytes[PROTO_KEYFILE_LEN];
static struct proto_keys keys;
static struct proto_sealer sealer;

/* A key file of master 00 .. 1f (cheap Argon2id: the store never opens it). */
static void
make_key(void)
{
    uint8_t m[PROTO_KEY_LEN];
    struct proto_keyfile kf;

    for (int i = 0; i < PROTO_KEY_LEN; i++)
        m[i] = (uint8_t)i;
    cr_assert_eq(proto_keyfile_wrap(m, "pw", 2, 0, 4, &kf), 0);
    proto_keyfile_encode(kf_bytes, &kf);
    cr_assert_eq(proto_keys_derive(m, &keys), 0);
    cr_assert_eq(proto_sealer_init(&sealer, keys.data), 0);
}

static void
setup(void)
{
    struct store_key k = {PROTO_ENC_REPOKEY, {0}, kf_bytes, sizeof kf_bytes};

    tmp = tu_mkdtemp();
    repo = lb_xasprintf("%s/repo", tmp);
    lb_log_set_level(LB_LOG_ERROR);
    make_key();
    memcpy(k.key_id, keys.key_id, sizeof k.key_id);
    cr_assert_eq(store_init_keyed(repo, WS, &k), 0, "%s", lb_error_msg());
    st = store_open(repo, STORE_WRITE, 0);
    cr_assert_not_null(st, "%s", lb_error_msg());
    sc = store_scratch_new();
}

static void
teardown(void)
{
    store_scratch_free(sc);
    store_close(st);
    tu_rm_rf(tmp);
    free(tmp);
    free(repo);
}

TestSuite(crypt, .init = setup, .fini = teardown);

/* A sealed chunk of type holding len bytes from seed, as the client
 * makes it (stored as is inside). c->data is *buf (caller frees). */
static void
sealed_chunk(struct proto_chunk *c, uint8_t type, size_t len, uint32_t seed,
             uint8_t **buf)
{
    uint8_t *plain = lb_xmalloc(len), aad[PROTO_CHUNK_AAD];
    uint8_t *env = lb_xmalloc(len + PROTO_SEAL_OVERHEAD + 1);

    tu_fill_random(plain, len, seed);
    memset(c, 0, sizeof *c);
    c->type = type;
    c->comp = PROTO_COMP_SEALED;
    c->raw_len = (uint32_t)len;
    cr_assert_eq(proto_chunk_id(&keys, type, plain, len, &c->d), 0);
    env[PROTO_SEAL_HDR] = PROTO_COMP_NONE;
    memcpy(env + PROTO_SEAL_HDR + 1, plain, len);
    proto_chunk_aad(aad, c);
    cr_assert_eq(proto_seal(&sealer, aad, sizeof aad, env, len + 1), 0);
    c->data = env;
    c->data_len = (uint32_t)(len + 1 + PROTO_SEAL_OVERHEAD);
    *buf = env;
    free(plain);
}

static char *
chunk_path(const struct proto_digest *d)
{
    char hex[65];

    proto_digest_hex(d, hex);
    return lb_xasprintf("%s/chunks/%.2s/%s", repo, hex, hex);
}

Test(crypt, config_and_key_record)
{
    CLEANUP_FREE char *cfg = lb_xasprintf("%s/config", repo);
    size_t len;
    uint8_t *text = tu_read_file(cfg, &len), out[256];
    char hex[33];

    cr_assert(strstr((char *)text, "livebackup-repository 2\n"));
    cr_assert(strstr((char *)text, "encryption repokey\n"));
    lb_hex_encode(hex, keys.key_id, 16);
    cr_assert(strstr((char *)text, hex), "the key id is recorded");
    free(text);
    cr_assert_eq(store_format_version(st), 2);
    cr_assert_eq(store_encryption(st), PROTO_ENC_REPOKEY);
    cr_assert_arr_eq(store_key_id(st), keys.key_id, 16);
    cr_assert_eq(store_key_get(st, out, sizeof out), PROTO_KEYFILE_LEN);
    cr_assert_arr_eq(out, kf_bytes, PROTO_KEYFILE_LEN);
}

Test(crypt, init_refuses_a_key_file_of_another_key)
{
    CLEANUP_FREE char *other = lb_xasprintf("%s/other", tmp);
    CLEANUP_FREE char *cfg = lb_xasprintf("%s/other/config", tmp);
    struct store_key k = {PROTO_ENC_REPOKEY, {0}, kf_bytes, sizeof kf_bytes};

    memset(k.key_id, 0xEE, sizeof k.key_id);
    cr_assert_eq(store_init_keyed(other, WS, &k), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert_not(tu_exists(cfg), "no repository");
    memcpy(k.key_id, keys.key_id, sizeof k.key_id);
    k.keyfile_len = 100;
    cr_assert_eq(store_init_keyed(other, WS, &k), -1);
    k.encryption = PROTO_ENC_KEYFILE; /* keeps no key file */
    cr_assert_eq(store_init_keyed(other, WS, &k), -1);
    k.keyfile = NULL;
    k.keyfile_len = 0;
    cr_assert_eq(store_init_keyed(other, WS, &k), 0, "%s", lb_error_msg());
    {
        struct store *o = store_open(other, STORE_WRITE, 0);
        uint8_t out[256];
        cr_assert_not_null(o);
        cr_assert_eq(store_encryption(o), PROTO_ENC_KEYFILE);
        cr_assert_eq(store_key_get(o, out, sizeof out), -1, "keyfile: none");
        cr_assert_eq(store_key_set(o, kf_bytes, sizeof kf_bytes), -1);
        store_close(o);
    }
}

Test(crypt, a_version_2_config_must_say_how)
{
    CLEANUP_FREE char *cfg = lb_xasprintf("%s/config", repo);
    static const char text[] = "livebackup-repository 2\nwindow_size 65536\n"
                               "id 0123\nencryption repokey\n";

    tu_write_file(cfg, text, sizeof text - 1);
    cr_assert_null(store_open(repo, STORE_READ, 0), "no key_id");
    cr_assert_eq(lb_error_errno(), EPROTO);
}

Test(crypt, key_set_same_key_only_and_not_append_only)
{
    uint8_t m[PROTO_KEY_LEN], b[PROTO_KEYFILE_LEN], out[256];
    struct proto_keyfile kf;

    /* the same key under another passphrase: taken */
    for (int i = 0; i < PROTO_KEY_LEN; i++)
        m[i] = (uint8_t)i;
    cr_assert_eq(proto_keyfile_wrap(m, "other", 5, 0, 4, &kf), 0);
    proto_keyfile_encode(b, &kf);
    cr_assert_eq(store_key_set(st, b, sizeof b), 0, "%s", lb_error_msg());
    cr_assert_eq(store_key_get(st, out, sizeof out), PROTO_KEYFILE_LEN);
    cr_assert_arr_eq(out, b, sizeof b);
    /* another key: refused, the key file kept */
    m[0] ^= 1;
    cr_assert_eq(proto_keyfile_wrap(m, "other", 5, 0, 4, &kf), 0);
    proto_keyfile_encode(out, &kf);
    cr_assert_eq(store_key_set(st, out, PROTO_KEYFILE_LEN), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    cr_assert_eq(store_key_set(st, b, sizeof b - 1), -1, "not a key file");
    store_set_append_only(st, true);
    cr_assert_eq(store_key_set(st, b, sizeof b), -1);
    cr_assert_eq(lb_error_errno(), EPERM);
    store_set_append_only(st, false);
    cr_assert_eq(store_key_get(st, out, sizeof out), PROTO_KEYFILE_LEN);
    cr_assert_arr_eq(out, b, sizeof b, "the refused ones changed nothing");
}

Test(crypt, sealed_chunks_stored_with_a_checksum)
{
    struct proto_chunk c, back;
    struct lb_buf file = {0};
    uint8_t *buf;
    uint64_t stored;
    CLEANUP_FREE char *path = NULL;
    uint8_t *f;
    size_t len;

    sealed_chunk(&c, PROTO_CHUNK_RAW, WS, 1, &buf);
    cr_assert_eq(store_chunk_put(st, sc, &c, &stored), 0, "%s", lb_error_msg());
    cr_assert_eq(stored, 24 + c.data_len);
    path = chunk_path(&c.d);
    f = tu_read_file(path, &len);
    cr_assert_eq(len, 24 + c.data_len);
    cr_assert_eq(f[4], 2, "version 2");
    cr_assert_eq(f[6], PROTO_COMP_SEALED);
    cr_assert_eq(lb_load_be32(f + 16), proto_crc32c(0, c.data, c.data_len));
    cr_assert_eq(lb_load_be32(f + 20), 0);
    cr_assert_arr_eq(f + 24, c.data, c.data_len);
    cr_assert_eq(store_chunk_read(st, &c.d, &file, &back), 0);
    cr_assert_eq(back.comp, PROTO_COMP_SEALED);
    cr_assert_eq(back.data_len, c.data_len);
    cr_assert_eq(store_chunk_check(st, sc, &c.d, NULL), 0, "%s",
                 lb_error_msg());
    /* bit rot in the stored bytes, or in the checksum: found without the
     * key */
    f[24 + 100] ^= 1;
    tu_write_file(path, f, len);
    cr_assert_eq(store_chunk_check(st, sc, &c.d, NULL), -1);
    cr_assert_eq(lb_error_errno(), EPROTO);
    cr_assert(strstr(lb_error_msg(), "checksum"), "%s", lb_error_msg());
    f[24 + 100] ^= 1;
    f[17] ^= 1;
    tu_write_file(path, f, len);
    cr_assert_eq(store_chunk_check(st, sc, &c.d, NULL), -1);
    f[17] ^= 1;
    tu_write_file(path, f, len);
    cr_assert_eq(store_chunk_check(st, sc, &c.d, NULL), 0);
    free(f);
    free(buf);
    lb_buf_free(&file);
}

Test(crypt, the_repository_takes_its_own_form_only)
{
    struct proto_chunk c;
    struct tu_chunk plain;
    uint8_t *buf;
    uint64_t stored;

    /* a plain chunk in an encrypted repository */
    tu_chunk_raw(&plain, 4096, 3);
    cr_assert_eq(store_chunk_put(st, sc, &plain.c, &stored), -1);
    cr_assert_eq(lb_error_errno(), EPROTO);
    cr_assert(strstr(lb_error_msg(), "not encrypted"), "%s", lb_error_msg());
    /* sizes a sealed chunk cannot have */
    sealed_chunk(&c, PROTO_CHUNK_DELTA, 1000, 4, &buf);
    c.data_len = c.raw_len + PROTO_SEAL_OVERHEAD + 2;
    cr_assert_eq(store_chunk_put(st, sc, &c, &stored), -1);
    c.data_len = PROTO_SEALED_MIN - 1;
    cr_assert_eq(store_chunk_put(st, sc, &c, &stored), -1);
    /* and trusted (the agent's own child) checks the form all the same */
    store_set_trusted(st, true);
    cr_assert_eq(store_chunk_put(st, sc, &plain.c, &stored), -1);
    c.data_len = c.raw_len + 1 + PROTO_SEAL_OVERHEAD;
    cr_assert_eq(store_chunk_put(st, sc, &c, &stored), 0, "%s", lb_error_msg());
    free(buf);
    tu_chunk_free(&plain);
    /* a sealed chunk in an unencrypted repository */
    {
        CLEANUP_FREE char *p = lb_xasprintf("%s/plain", tmp);
        struct store *o;
        cr_assert_eq(store_init(p, WS), 0);
        o = store_open(p, STORE_WRITE, 0);
        sealed_chunk(&c, PROTO_CHUNK_BLOB, 100, 5, &buf);
        cr_assert_eq(store_chunk_put(o, sc, &c, &stored), -1);
        cr_assert(strstr(lb_error_msg(), "is encrypted, and this repository "
                                         "is not"));
        store_close(o);
        free(buf);
    }
}

Test(crypt, chunk_header_codec)
{
    struct store_chunk_hdr
        h = {2, PROTO_CHUNK_RAW, PROTO_COMP_SEALED, 5, 50, 0xCAFE, 0},
        d;
    uint8_t b[24 + 50] = {0};

    store_chunk_hdr_encode(b, &h);
    cr_assert_eq(h.hdr_len, 24);
    cr_assert_eq(store_chunk_hdr_decode(b, sizeof b, sizeof b, &d), PROTO_OK);
    cr_assert_eq(d.crc, 0xCAFE);
    cr_assert_eq(d.hdr_len, 24);
    cr_assert_eq(store_chunk_hdr_decode(b, sizeof b, sizeof b - 1, &d),
                 PROTO_E_TRUNCATED);
    cr_assert_eq(store_chunk_hdr_decode(b, sizeof b, sizeof b + 1, &d),
                 PROTO_E_TRAILING);
    b[6] = PROTO_COMP_ZSTD; /* version 2 is sealed */
    cr_assert_eq(store_chunk_hdr_decode(b, sizeof b, sizeof b, &d),
                 PROTO_E_RANGE);
    b[6] = PROTO_COMP_SEALED;
    b[21] = 1;
    cr_assert_eq(store_chunk_hdr_decode(b, sizeof b, sizeof b, &d),
                 PROTO_E_RESERVED);
    b[21] = 0;
    b[4] = 1; /* version 1 is not sealed */
    cr_assert_eq(store_chunk_hdr_decode(b, sizeof b, sizeof b - 8, &d),
                 PROTO_E_RANGE);
    b[4] = 3;
    cr_assert_eq(store_chunk_hdr_decode(b, sizeof b, sizeof b, &d),
                 PROTO_E_RANGE);
    cr_assert_eq(store_chunk_hdr_decode(b, 20, 20, &d), PROTO_E_RANGE);
}

/* A one-disk backup of one sealed RAW chunk, up to its commit. */
static struct store_txn *
one_backup(struct proto_chunk *c, uint8_t **buf)
{
    struct proto_kv meta = {0};
    struct store_txn *t;
    struct proto_window_rec r = {0};
    uint64_t nw, stored;
    uint8_t *depths = NULL;

    sealed_chunk(c, PROTO_CHUNK_RAW, WS, 7, buf);
    cr_assert_geq(store_chunk_put(st, sc, c, &stored), 0);
    proto_kv_set(&meta, "kind", "full");
    t = store_txn_begin(st, "host1", "", &meta);
    cr_assert_not_null(t);
    cr_assert_eq(
        tu_disk_begin(t, "vda", WS, PROTO_DISK_FULL, &meta, &nw, &depths), 0);
    r.op = PROTO_WIN_SET;
    r.n = 1;
    r.refs[0].type = PROTO_CHUNK_RAW;
    r.refs[0].d = c->d;
    cr_assert_eq(store_txn_window(t, &r), 0);
    cr_assert_eq(store_txn_disk_end(t, &meta), 0);
    proto_kv_free(&meta);
    return t;
}

Test(crypt, commit_needs_the_mac_and_shows_the_final_metadata)
{
    struct proto_chunk c;
    struct proto_kv none = {0}, mac = {0}, out;
    struct store_txn *t;
    struct store_list l;
    uint8_t *buf;

    /* without a MAC: refused, nothing committed */
    t = one_backup(&c, &buf);
    cr_assert_eq(store_txn_commit(t, &none, &out), -1);
    cr_assert(strstr(lb_error_msg(), "MAC"), "%s", lb_error_msg());
    free(buf);
    cr_assert_eq(store_list(st, NULL, &l), 0);
    cr_assert_eq(l.n, 0);
    store_list_free(&l);
    /* prepare, then the MAC only */
    t = one_backup(&c, &buf);
    proto_kv_set(&none, "agent_seconds_x1000", "12");
    cr_assert_eq(store_txn_prepare(t, &none), 0);
    cr_assert_str_eq(proto_kv_get(store_txn_meta(t), "name"), "host1");
    cr_assert_str_eq(proto_kv_get(store_txn_meta(t), "agent_seconds_x1000"),
                     "12");
    cr_assert_not_null(proto_kv_get(store_txn_meta(t), "seq"));
    cr_assert_eq(store_txn_ndisks(t), 1);
    cr_assert_str_eq(proto_kv_get(store_txn_disk_meta(t, 0), "mode"), "full");
    cr_assert_null(store_txn_disk_meta(t, 1));
    cr_assert_eq(store_txn_prepare(t, &none), -1, "prepared once");
    proto_kv_set(&mac, "kind", "incremental");
    cr_assert_eq(store_txn_commit(t, &mac, &out), -1,
                 "nothing but the MAC after prepare");
    free(buf);
    t = one_backup(&c, &buf);
    cr_assert_eq(store_txn_prepare(t, &none), 0);
    proto_kv_free(&mac);
    proto_kv_set(
        &mac, "mac",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddee"
        "ff");
    cr_assert_eq(store_txn_commit(t, &mac, &out), 0, "%s", lb_error_msg());
    cr_assert_not_null(proto_kv_get(&out, "mac"));
    proto_kv_free(&out);
    cr_assert_eq(store_list(st, NULL, &l), 0);
    cr_assert_eq(l.n, 1);
    cr_assert_not_null(proto_kv_get(&l.b[0].meta, "mac"));
    store_list_free(&l);
    proto_kv_free(&none);
    proto_kv_free(&mac);
    free(buf);
}

static void
damage(void *opaque, const char *id, const char *name, const char *disk,
       const char *what)
{
    struct lb_buf *b = opaque;

    (void)name;
    (void)disk;
    lb_buf_append(b, id, strlen(id));
    lb_buf_append(b, ": ", 2);
    lb_buf_append(b, what, strlen(what));
    lb_buf_put_u8(b, '\n');
}

Test(crypt, verify_without_the_key)
{
    struct proto_chunk c;
    struct proto_kv mac = {0}, stats = {0};
    struct lb_buf seen = {0};
    struct store_verify_cb cb = {&seen, damage, NULL};
    struct store_txn *t;
    uint8_t *buf;

    t = one_backup(&c, &buf);
    proto_kv_set(
        &mac, "mac",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddee"
        "ff");
    cr_assert_eq(store_txn_commit(t, &mac, NULL), 0);
    cr_assert_eq(store_verify(st, &cb, &stats), 0, "%.*s", (int)seen.len,
                 (char *)seen.data);
    proto_kv_free(&stats);
    /* bit rot in the chunk: named, and the backup that uses it */
    {
        CLEANUP_FREE char *p = chunk_path(&c.d);
        size_t len;
        uint8_t *f = tu_read_file(p, &len);
        f[len - 1] ^= 0x40;
        tu_write_file(p, f, len);
        free(f);
    }
    cr_assert_eq(store_verify(st, &cb, &stats), 1);
    lb_buf_put_u8(&seen, 0);
    cr_assert(strstr((char *)seen.data, "do not match their checksum"), "%s",
              (char *)seen.data);
    cr_assert(strstr((char *)seen.data, "damaged window"), "%s",
              (char *)seen.data);
    proto_kv_free(&stats);
    proto_kv_free(&mac);
    lb_buf_free(&seen);
    free(buf);
}

/* A manifest without a MAC in an encrypted repository (one an older or
 * broken writer left, or the server made up): verify names it. */
Test(crypt, verify_names_a_manifest_without_a_mac)
{
    CLEANUP_FREE char *path =
        lb_xasprintf("%s/backups/20261201-000000-abcd", repo);
    struct proto_kv meta = {0}, stats = {0};
    struct lb_buf seen = {0};
    struct store_verify_cb cb = {&seen, damage, NULL};
    struct proto_mf_window w = {0};
    struct proto_mf_writer *mw;
    int fd;

    fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    mw = proto_mf_writer_new(fd);
    cr_assert_eq(proto_mf_write_disk(mw, "vda", WS, WS), 0);
    cr_assert_eq(proto_mf_write_window(mw, &w), 0);
    cr_assert_eq(proto_mf_write_disk_end(mw, &meta), 0);
    proto_kv_set(&meta, "id", "20261201-000000-abcd");
    proto_kv_set(&meta, "name", "forged");
    cr_assert_eq(proto_mf_write_finish(mw, &meta), 0);
    proto_mf_writer_free(mw);
    close(fd);
    cr_assert_eq(store_verify(st, &cb, &stats), 1);
    lb_buf_put_u8(&seen, 0);
    cr_assert(
        strstr((char *)seen.data, "20261201-000000-abcd: manifest: no MAC"),
        "%s", (char *)seen.data);
    proto_kv_free(&stats);
    proto_kv_free(&meta);
    lb_buf_free(&seen);
}
