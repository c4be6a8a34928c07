/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proto/crypt.h: the encryption of a repository, as both ends share it
 * (store/FORMAT.md, "Encryption", is the normative description).
 *
 * - primitives, thin wrappers of OpenSSL: HMAC-SHA256, HKDF-SHA256
 *   (RFC 5869), scrypt (RFC 7914), AES-256-GCM with a 96-bit nonce; and
 *   of libargon2: Argon2id (RFC 9106);
 * - the keys: a random master key, the keys derived from it, and the key
 *   file that holds the master key wrapped by a passphrase;
 * - the envelope every sealed byte string uses (chunks, metadata): a
 *   per-session key derived from a base key and a random salt, and a
 *   nonce unique under it;
 * - sealed metadata (a kv list sealed into one value) and the MAC of a
 *   manifest (over a canonical form that does not depend on how the
 *   manifest file encodes its window stacks).
 *
 * The agent uses all of it; backupd only the structural checks (key file
 * layout, sealed chunk sizes): it never has a key.
 *
 * Functions that can fail return 0 or -1 with the error slot set; an
 * authentication failure (a wrong key or passphrase, or damaged bytes) is
 * errno EBADMSG in the slot. Decoders named _decode are pure (no logging,
 * no allocation) and return a PROTO_E_* status. Everything is thread-safe
 * (OpenSSL contexts are kept per thread, set up with the last key each was
 * given, and wiped and freed when the thread ends).
 * Key material on the stack is wiped with proto_wipe when done.
 */
#ifndef LB_PROTO_CRYPT_H
#define LB_PROTO_CRYPT_H

#include "proto/proto.h"

#define PROTO_KEY_LEN 32    /* every symmetric key */
#define PROTO_KEY_ID_LEN 16 /* names a master key (config, key file) */
#define PROTO_MAC_LEN 32    /* HMAC-SHA256 */
#define PROTO_GCM_NONCE 12
#define PROTO_GCM_TAG 16

/* ---- primitives ---------------------------------------------------------- */

/* Overwrite len bytes at p with zeros (not optimised away). */
void proto_wipe(void *p, size_t len);

/* HMAC-SHA256(key, a || b) into out (b may be NULL with blen 0). */
int proto_hmac_sha256(const uint8_t *key, size_t klen, const void *a,
                      size_t alen, const void *b, size_t blen,
                      uint8_t out[PROTO_MAC_LEN]);

/* HKDF-SHA256 (RFC 5869): extract with salt (NULL/0: HashLen zeros), then
 * expand with info into out (outlen <= 255 * 32). */
int proto_hkdf_sha256(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt,
                      size_t saltlen, const void *info, size_t infolen,
                      uint8_t *out, size_t outlen);

/* scrypt (RFC 7914) of pass and salt with cost N (a power of two), block
 * size r and parallelism p into out. */
int proto_scrypt(const void *pass, size_t passlen, const uint8_t *salt,
                 size_t saltlen, uint64_t n, uint32_t r, uint32_t p,
                 uint8_t *out, size_t outlen);

/* Argon2id version 0x13 (RFC 9106) of pass and salt, with an optional
 * secret and associated data (NULL/0), t passes over m_kib KiB of memory
 * in p lanes (run on p threads), into out. */
int proto_argon2id(const void *pass, size_t passlen, const uint8_t *salt,
                   size_t saltlen, const void *secret, size_t secretlen,
                   const void *ad, size_t adlen, uint32_t t, uint32_t m_kib,
                   uint32_t p, uint8_t *out, size_t outlen);

/* AES-256-GCM with a 96-bit nonce: len bytes of in encrypted into out (in
 * == out is allowed), the tag into tag. */
int proto_gcm_seal(const uint8_t key[PROTO_KEY_LEN],
                   const uint8_t nonce[PROTO_GCM_NONCE], const void *aad,
                   size_t aadlen, const uint8_t *in, size_t len, uint8_t *out,
                   uint8_t tag[PROTO_GCM_TAG]);
/* The reverse; -1 with EBADMSG if tag does not authenticate (key, nonce,
 * aad and data must all be the ones sealed); out is then unspecified. */
int proto_gcm_open(const uint8_t key[PROTO_KEY_LEN],
                   const uint8_t nonce[PROTO_GCM_NONCE], const void *aad,
                   size_t aadlen, const uint8_t *in, size_t len, uint8_t *out,
                   const uint8_t tag[PROTO_GCM_TAG]);

/* CRC-32C (Castagnoli, RFC 3720) of len bytes, continuing from crc (0 to
 * start): the checksum of a sealed chunk's stored bytes. */
uint32_t proto_crc32c(uint32_t crc, const void *p, size_t len);

/* ---- keys ---------------------------------------------------------------- */

/* The keys derived from a master key: HKDF-SHA256(master, no salt, info)
 * with the info strings of FORMAT.md. */
struct proto_keys {
    uint8_t id[PROTO_KEY_LEN];   /* chunk ids: HMAC(id, type || plain) */
    uint8_t data[PROTO_KEY_LEN]; /* base key of sealed chunks */
    uint8_t meta[PROTO_KEY_LEN]; /* base key of sealed metadata */
    uint8_t mac[PROTO_KEY_LEN];  /* manifest MACs */
    uint8_t key_id[PROTO_KEY_ID_LEN];
};
int proto_keys_derive(const uint8_t master[PROTO_KEY_LEN],
                      struct proto_keys *k);

/* A chunk's id under keys: HMAC-SHA256(k->id, type || plain). */
int proto_chunk_id(const struct proto_keys *k, uint8_t type, const void *plain,
                   size_t len, struct proto_digest *out);

/* ---- key files ----------------------------------------------------------- */

/*
 * A key file (FORMAT.md, "Key files"): 128 bytes, the master key wrapped
 * by AES-256-GCM under a key derived from a passphrase by Argon2id (what
 * livebackup writes) or scrypt (what it wrote before, still read). The
 * same bytes are the repository's REPO/keys/repokey, a client's key file,
 * and what `key export` writes.
 */
#define PROTO_KEYFILE_MAGIC "LBKEYFL1"
#define PROTO_KEYFILE_LEN 128
#define PROTO_KEYFILE_AAD 80 /* the header the tag also covers */
#define PROTO_KDF_SCRYPT 1
#define PROTO_KDF_ARGON2ID 2
/* Parameters of new key files: Argon2id over 64 MiB, one pass, two lanes
 * (at least OWASP's 46 MiB, t = 1; its lanes run on two threads): about
 * 0.05 s here. */
#define PROTO_ARGON2_LOG2M 16 /* m = 2^16 KiB */
#define PROTO_ARGON2_T 1
#define PROTO_ARGON2_P 2
/* scrypt's, as livebackup wrote them (OWASP's for 32 MiB of memory):
 * about 0.2 s. */
#define PROTO_SCRYPT_LOG2N 15
#define PROTO_SCRYPT_R 8
#define PROTO_SCRYPT_P 3
/* What a reader accepts: a key file from a hostile repository must not
 * make the client spend more memory than this, nor more than four times
 * it of work (bytes of memory touched, all passes and lanes). */
#define PROTO_KDF_MAX_MEM (256u << 20)
#define PROTO_MAX_PASSPHRASE 1024

struct proto_keyfile {
    uint8_t kdf;   /* PROTO_KDF_ARGON2ID or PROTO_KDF_SCRYPT */
    uint8_t log2n; /* scrypt: log2 N; Argon2id: log2 of m in KiB */
    uint8_t r;     /* scrypt: r; Argon2id: t, the passes */
    uint8_t p;     /* the lanes */
    uint8_t key_id[PROTO_KEY_ID_LEN];
    uint8_t salt[32];
    uint8_t nonce[PROTO_GCM_NONCE];
    uint8_t wrapped[PROTO_KEY_LEN];
    uint8_t tag[PROTO_GCM_TAG];
};
/* Pure: the layout, reserved bytes zero, parameters in range. */
int proto_keyfile_decode(const uint8_t *p, size_t len,
                         struct proto_keyfile *out);
void proto_keyfile_encode(uint8_t out[PROTO_KEYFILE_LEN],
                          const struct proto_keyfile *kf);
/* Wrap master under passphrase (fresh salt and nonce). kdf 0 is the
 * default: Argon2id with the parameters above. A kdf and a log2n not 0
 * (tests: a cheap KDF, or scrypt as earlier versions wrote) take that
 * KDF's default other parameters. */
int proto_keyfile_wrap(const uint8_t master[PROTO_KEY_LEN], const char *pass,
                       size_t passlen, uint8_t kdf, uint8_t log2n,
                       struct proto_keyfile *out);
/* Unwrap: -1 with EBADMSG for a wrong passphrase (or a damaged file), and
 * EPROTO when the key inside is not the one key_id names. */
int proto_keyfile_unwrap(const struct proto_keyfile *kf, const char *pass,
                         size_t passlen, uint8_t master[PROTO_KEY_LEN]);
/* "Argon2id, m 65536 KiB, t 1, p 2" or "scrypt, N 2^15, r 8, p 3". */
void proto_keyfile_kdf_name(const struct proto_keyfile *kf, char *buf,
                            size_t len);

/* ---- the envelope -------------------------------------------------------- */

/*
 * salt[16] || nonce[12] || AES-256-GCM ciphertext || tag[16], under the
 * session key HKDF-SHA256(base, salt, "livebackup v1 session"). A sealer
 * is one session: a random salt and a counter for the nonces, so no
 * nonce repeats under its key whatever the number of seals.
 */
#define PROTO_SEAL_SALT 16
#define PROTO_SEAL_HDR (PROTO_SEAL_SALT + PROTO_GCM_NONCE)
#define PROTO_SEAL_OVERHEAD (PROTO_SEAL_HDR + PROTO_GCM_TAG)

struct proto_sealer {
    uint8_t salt[PROTO_SEAL_SALT];
    uint8_t key[PROTO_KEY_LEN];
    _Atomic uint64_t next; /* the next nonce's counter */
};
/* A new session under base (random salt). */
int proto_sealer_init(struct proto_sealer *s,
                      const uint8_t base[PROTO_KEY_LEN]);
void proto_sealer_wipe(struct proto_sealer *s);
/* Seal in place: buf holds PROTO_SEAL_HDR bytes of room, then the len
 * bytes of plaintext, then PROTO_GCM_TAG bytes of room; all of it becomes
 * the envelope (len + PROTO_SEAL_OVERHEAD bytes). Thread-safe. */
int proto_seal(struct proto_sealer *s, const void *aad, size_t aadlen,
               uint8_t *buf, size_t len);
/* Open an envelope of envlen bytes sealed under base into out (envlen -
 * PROTO_SEAL_OVERHEAD bytes; out may be env + PROTO_SEAL_HDR). -1 with
 * EBADMSG when it does not authenticate, EPROTO when it is too short. */
int proto_unseal(const uint8_t base[PROTO_KEY_LEN], const void *aad,
                 size_t aadlen, const uint8_t *env, size_t envlen,
                 uint8_t *out);

/* ---- sealed chunks ------------------------------------------------------- */

/*
 * A sealed chunk (compression PROTO_COMP_SEALED) stores the envelope of
 * u8 inner compression (NONE or ZSTD) || the v1 stored bytes, under the
 * data key, with associated data id || type || raw_len (the chunk's own
 * header, so a chunk moved under another id does not open).
 */
#define PROTO_CHUNK_AAD (PROTO_DIGEST_LEN + 1 + 4)
#define PROTO_SEALED_MIN (PROTO_SEAL_OVERHEAD + 2)
/* Worst-case stored size of a sealed chunk of raw_len plaintext bytes
 * (what a chunk that zstd does not shrink takes). */
#define PROTO_SEALED_MAX(raw) ((size_t)(raw) + PROTO_SEAL_OVERHEAD + 1)
void proto_chunk_aad(uint8_t out[PROTO_CHUNK_AAD], const struct proto_chunk *c);
/* Pure: the sizes a sealed chunk's stored bytes may have for its raw_len
 * (what a server checks without the key). */
int proto_chunk_sealed_check(const struct proto_chunk *c);

/* ---- sealed metadata ----------------------------------------------------- */

#define PROTO_META_SEALED "sealed" /* the kv key holding the sealed keys */
#define PROTO_META_MAC "mac"       /* the manifest's MAC (meta block) */

/*
 * out gets in's entries whose keys clear(key) accepts, and one entry
 * "sealed": the lower-case hex of the envelope (under s, the metadata
 * session) of the kv encoding of the others, with associated data str16
 * id || str16 disk ("" for the backup's own metadata). No "sealed" entry
 * when every key is clear. out must be empty.
 */
int proto_meta_seal(struct proto_sealer *s, const char *id, const char *disk,
                    const struct proto_kv *in, bool (*clear)(const char *key),
                    struct proto_kv *out);
/* Replace kv's "sealed" entry by the entries it holds (a key both sealed
 * and clear is an error); a kv without one is left as it is. -1 with
 * EBADMSG (wrong key, or moved from another backup or disk) or EPROTO
 * (malformed). */
int proto_meta_unseal(const uint8_t meta_key[PROTO_KEY_LEN], const char *id,
                      const char *disk, struct proto_kv *kv);

/* ---- manifest MACs ------------------------------------------------------- */

/*
 * The MAC of a manifest (FORMAT.md, "Manifest MAC"): HMAC-SHA256 under
 * the mac key of a canonical form: per disk its geometry, the SHA-256 of
 * its window stacks in the stack form of FORMAT.md version 1 and its
 * metadata, then the backup's metadata but the keys proto_mf_mac_covers
 * leaves out; every kv list sorted by key. Fed disk by disk, window by window,
 * in manifest order; a disk's metadata may come any time before finish.
 */
struct proto_mf_mac;
struct proto_mf_mac *proto_mf_mac_new(void);
void proto_mf_mac_free(struct proto_mf_mac *m);
int proto_mf_mac_disk_begin(struct proto_mf_mac *m,
                            const struct proto_mf_disk *d);
int proto_mf_mac_window(struct proto_mf_mac *m,
                        const struct proto_mf_window *w);
/* After the disk's last window. */
int proto_mf_mac_disk_end(struct proto_mf_mac *m);
/* The metadata of disk i (0 = the first begun). */
int proto_mf_mac_disk_meta(struct proto_mf_mac *m, size_t i,
                           const struct proto_kv *meta);
size_t proto_mf_mac_ndisks(const struct proto_mf_mac *m);
int proto_mf_mac_finish(struct proto_mf_mac *m,
                        const uint8_t key[PROTO_KEY_LEN],
                        const struct proto_kv *meta,
                        uint8_t out[PROTO_MAC_LEN]);

/* The canonical form of kv (entries sorted by key; only those keep
 * accepts, every one if keep is NULL): u32 count, then per entry str16
 * key and u32 length + value. */
void proto_kv_canonical(struct lb_buf *b, const struct proto_kv *kv,
                        bool (*keep)(const char *key));
/* Whether the MAC covers a meta block's key: all but "mac" and the
 * repository's bookkeeping (seq, chunks_new, bytes_new, bytes_received). */
bool proto_mf_mac_covers(const char *key);

#endif /* LB_PROTO_CRYPT_H */
