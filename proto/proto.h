/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proto: the livebackup wire protocol and the formats both ends share.
 *
 * The normative spec is proto/PROTOCOL.md; this header is its C contract:
 *
 * - frames: a fixed 12-byte big-endian header (magic, type, flags, length)
 *   and a payload of at most PROTO_MAX_PAYLOAD bytes;
 * - message payload encoders (into a caller-owned struct lb_buf) and pure
 *   decoders (they never log and never allocate: they fill structs whose
 *   pointers point into the caller's buffer, and return a PROTO_E* code);
 * - chunks: digests, the DELTA run encoding, zstd (de)compression;
 * - the manifest codec (one backup's window stacks), streaming both ways;
 * - struct proto_conn: blocking frame I/O over a pair of file descriptors.
 *
 * Thread safety: decoders and encoders are reentrant. A proto_conn may be
 * used by one sending and one receiving thread at the same time.
 */
#ifndef LB_PROTO_H
#define LB_PROTO_H

#include "common/common.h"

/* ---- frames ------------------------------------------------------------ */

#define PROTO_MAGIC 0x4C424B50u /* "LBKP" */
#define PROTO_VERSION 1
#define PROTO_HDR_SIZE 12
#define PROTO_MAX_PAYLOAD (9u << 20) /* 9 MiB: one compressed 8 MiB window */

/* Feature bits offered in HELLO (PROTOCOL.md, "Version negotiation"). */
#define PROTO_FEATURE_ENCRYPTION 1ull /* encrypted repositories */
#define PROTO_FEATURE_COPY 2ull       /* IMPORT, GET_STORED, CHUNK_BAD (copy) */
#define PROTO_FEATURE_WAIT 4ull       /* WAITING before an OPEN's answer */
/* an IMPORT's disks may be incremental on its parent (copy) */
#define PROTO_FEATURE_COPY_INCR 8ull
/* WORKING while a long request makes progress */
#define PROTO_FEATURE_WORKING 16ull
#define PROTO_FEATURES_KNOWN                                                   \
    (PROTO_FEATURE_ENCRYPTION | PROTO_FEATURE_COPY | PROTO_FEATURE_WAIT |      \
     PROTO_FEATURE_COPY_INCR | PROTO_FEATURE_WORKING)

enum proto_type {
    PROTO_T_HELLO = 0x0001,
    PROTO_T_HELLO_REPLY = 0x0002,
    PROTO_T_ERROR = 0x0003,
    PROTO_T_OK = 0x0004,

    PROTO_T_INIT = 0x0010,
    PROTO_T_OPEN = 0x0011,
    PROTO_T_REPO_INFO = 0x0012,
    PROTO_T_KEY_GET = 0x0013,  /* ENCRYPTION feature */
    PROTO_T_KEY_DATA = 0x0014, /* ENCRYPTION feature */
    PROTO_T_KEY_SET = 0x0015,  /* ENCRYPTION feature */
    PROTO_T_WAITING = 0x0016,  /* WAIT feature */
    PROTO_T_WORKING = 0x0017,  /* WORKING feature */

    PROTO_T_LIST = 0x0020,
    PROTO_T_LIST_ENTRY = 0x0021,
    PROTO_T_LIST_END = 0x0022,

    PROTO_T_BACKUP_BEGIN = 0x0030,
    PROTO_T_BACKUP_STARTED = 0x0031,
    PROTO_T_DISK_BEGIN = 0x0032,
    PROTO_T_DISK_READY = 0x0033,
    PROTO_T_DEPTHS = 0x0034,
    PROTO_T_QUERY = 0x0035,
    PROTO_T_HAVE = 0x0036,
    PROTO_T_CHUNK = 0x0037,
    PROTO_T_WINDOWS = 0x0038,
    PROTO_T_DISK_END = 0x0039,
    PROTO_T_COMMIT = 0x003A,
    PROTO_T_COMMITTED = 0x003B,
    PROTO_T_ABORT = 0x003C,
    PROTO_T_COMMIT_META = 0x003D, /* ENCRYPTION feature */
    PROTO_T_SEAL = 0x003E,        /* ENCRYPTION feature */
    PROTO_T_IMPORT = 0x003F,      /* COPY feature */

    PROTO_T_GET_MANIFEST = 0x0040,
    PROTO_T_MANIFEST_DATA = 0x0041,
    PROTO_T_MANIFEST_END = 0x0042,
    PROTO_T_GET_CHUNKS = 0x0043,
    PROTO_T_CHUNK_DATA = 0x0044,
    PROTO_T_GET_STORED = 0x0045, /* COPY feature */
    PROTO_T_CHUNK_BAD = 0x0046,  /* COPY feature */

    PROTO_T_VERIFY = 0x0050,
    PROTO_T_VERIFY_EVENT = 0x0051,
    PROTO_T_VERIFY_END = 0x0052,
    PROTO_T_DELETE = 0x0053,
    PROTO_T_PRUNE = 0x0054,
    PROTO_T_PRUNE_ENTRY = 0x0055,
    PROTO_T_GC = 0x0056,
    PROTO_T_GC_END = 0x0057,

    PROTO_T_BRIDGE = 0x0060,
};

/* Decoder results. 0 is success; positive values are "need more bytes". */
enum proto_status {
    PROTO_OK = 0,
    PROTO_E_MAGIC = -1,     /* bad frame magic */
    PROTO_E_TOO_BIG = -2,   /* length over PROTO_MAX_PAYLOAD */
    PROTO_E_RESERVED = -3,  /* reserved bits or fields not zero */
    PROTO_E_TYPE = -4,      /* unknown frame type */
    PROTO_E_TRUNCATED = -5, /* payload shorter than its fields */
    PROTO_E_TRAILING = -6,  /* bytes left after the last field */
    PROTO_E_RANGE = -7,     /* a count, length or value out of range */
    PROTO_E_STRING = -8,    /* a string with NUL or bad characters */
    PROTO_E_ORDER = -9,     /* records out of order or overlapping */
};

/* Human-readable text of a proto_status (static string). */
const char *proto_status_str(int status);

struct proto_hdr {
    uint16_t type;
    uint16_t flags;
    uint32_t len;
};

/*
 * Decode a frame header from buf[0..len). Returns PROTO_OK, the number of
 * bytes still needed (> 0) when len < PROTO_HDR_SIZE, or a PROTO_E_* code.
 * Unknown types are rejected here so nothing downstream sees them.
 */
int proto_hdr_decode(const uint8_t *buf, size_t len, struct proto_hdr *out);
void proto_hdr_encode(uint8_t out[PROTO_HDR_SIZE], uint16_t type, uint32_t len);
bool proto_type_known(uint16_t type);
const char *proto_type_name(uint16_t type);

/*
 * Frame building: proto_frame_begin appends a header with length 0 to b
 * and returns its offset; append the payload, then proto_frame_end patches
 * the length. Several frames can be built back to back in one buffer.
 */
size_t proto_frame_begin(struct lb_buf *b, uint16_t type);
void proto_frame_end(struct lb_buf *b, size_t start);

/* ---- a bounds-checked cursor over untrusted bytes ---------------------- */

/* Every getter fails sticky: after the first short read, all return zero
 * and pr->err is set. Check pr->err (or use proto_rd_done) at the end. */
struct proto_rd {
    const uint8_t *p;
    size_t len;
    size_t off;
    int err;
};

void proto_rd_init(struct proto_rd *pr, const uint8_t *p, size_t len);
uint8_t proto_rd_u8(struct proto_rd *pr);
uint16_t proto_rd_be16(struct proto_rd *pr);
uint32_t proto_rd_be32(struct proto_rd *pr);
uint64_t proto_rd_be64(struct proto_rd *pr);
const uint8_t *proto_rd_bytes(struct proto_rd *pr, size_t n);
size_t proto_rd_left(const struct proto_rd *pr);
/* PROTO_OK if no error and nothing left, else the error. */
int proto_rd_done(const struct proto_rd *pr);

/* A string view into a decoded payload: not NUL-terminated. */
struct proto_str {
    const char *p;
    uint16_t len;
};

/* u16 length + bytes; rejects NUL and control characters. */
struct proto_str proto_rd_str16(struct proto_rd *pr);
/* Copy a view into a NUL-terminated buffer of size cap; false if too long. */
bool proto_str_copy(char *dst, size_t cap, struct proto_str s);
bool proto_str_eq(struct proto_str s, const char *c);

/* ---- key/value lists ----------------------------------------------------- */

/*
 * Metadata travels as key/value lists: u16 count, then per entry a str16
 * key ([a-z0-9_.-], 1..64 bytes) and a u32-length value (no NUL, at most
 * PROTO_MAX_VALUE bytes). Keys are unique.
 */
#define PROTO_MAX_KEY 64
#define PROTO_MAX_VALUE (256u << 10)
#define PROTO_MAX_KV 256

struct proto_kv_entry {
    char *key;
    char *val;
};

/* An owned, decoded list. Free with proto_kv_free. */
struct proto_kv {
    size_t n;
    struct proto_kv_entry *e;
};

/* Validate and decode a KV list at the cursor; allocates only after the
 * whole list validated. Returns PROTO_OK or an error (and sets pr->err). */
int proto_kv_decode(struct proto_rd *pr, struct proto_kv *out);
void proto_kv_encode(struct lb_buf *b, const struct proto_kv *kv);
/* Set (replace) key; copies both. Aborts on a key that would not encode. */
void proto_kv_set(struct proto_kv *kv, const char *key, const char *val);
void proto_kv_setf(struct proto_kv *kv, const char *key, const char *fmt, ...)
    LB_PRINTF(3, 4);
void proto_kv_set_u64(struct proto_kv *kv, const char *key, uint64_t v);
const char *proto_kv_get(const struct proto_kv *kv, const char *key);
/* Parse a decimal value; def when absent or malformed. */
uint64_t proto_kv_get_u64(const struct proto_kv *kv, const char *key,
                          uint64_t def);
void proto_kv_free(struct proto_kv *kv);
bool proto_kv_key_valid(const char *k, size_t len);
/* Bytes of the encoding of kv (proto_kv_encode). */
size_t proto_kv_encoded_len(const struct proto_kv *kv);
/*
 * Merge src into dst: each key of src is set in dst (replacing its
 * value). For lists that came from a peer: unlike proto_kv_set, it never
 * aborts; if the result would hold more than max_n entries or encode to
 * more than max_bytes it fails, -1 with the error slot set (EINVAL), and
 * dst is left as it was. Returns 0 on success.
 */
int proto_kv_merge(struct proto_kv *dst, const struct proto_kv *src,
                   size_t max_n, size_t max_bytes);
/* Set key to val made valid: bytes a value may not hold become '?', and
 * it is cut at PROTO_MAX_VALUE bytes (for text from outside, such as an
 * error message naming a file). The key must be valid. */
void proto_kv_set_lossy(struct proto_kv *kv, const char *key, const char *val);

/* ---- names --------------------------------------------------------------- */

/* A backup set name (domain or image name): 1..200 bytes, no NUL, no
 * control characters, no '/', not "." or "..". */
bool proto_name_valid(const char *s, size_t len);
/* A disk name: [A-Za-z0-9_.-], 1..64 bytes, not starting with '.'. */
bool proto_disk_name_valid(const char *s, size_t len);
/* A backup id as made by proto_backup_id_make: YYYYMMDD-HHMMSS-xxxx. */
#define PROTO_ID_LEN 20
bool proto_backup_id_valid(const char *s, size_t len);
/* Make an id for time t with 16 random bits; out has PROTO_ID_LEN+1. */
void proto_backup_id_make(char out[PROTO_ID_LEN + 1], int64_t t, uint16_t rnd);

/* ---- chunks -------------------------------------------------------------- */

#define PROTO_DIGEST_LEN 32
#define PROTO_MIN_WINDOW (64u << 10)
#define PROTO_MAX_WINDOW (8u << 20)
#define PROTO_DEFAULT_WINDOW (4u << 20)
#define PROTO_MAX_STACK 32 /* hard limit on a window's chunk stack */
#define PROTO_MAX_BLOB (4u << 20)
/* A DELTA may hold at most one run per 512 bytes of window. */
#define PROTO_DELTA_HDR 12
#define PROTO_DELTA_RUN 9
#define PROTO_MAX_CHUNK_RAW                                                    \
    (PROTO_MAX_WINDOW + PROTO_DELTA_HDR +                                      \
     (PROTO_MAX_WINDOW / 512) * PROTO_DELTA_RUN)

enum proto_chunk_type {
    PROTO_CHUNK_RAW = 1,   /* the whole window's bytes */
    PROTO_CHUNK_DELTA = 2, /* runs of data or zero inside a window */
    PROTO_CHUNK_BLOB = 3,  /* opaque bytes (a saved domain XML) */
};

enum proto_compression {
    PROTO_COMP_NONE = 0,
    PROTO_COMP_ZSTD = 1,
    PROTO_COMP_SEALED = 2, /* encrypted (proto/crypt.h): no plaintext view */
};

struct proto_digest {
    uint8_t b[PROTO_DIGEST_LEN];
};

/* One entry of a window stack. */
struct proto_ref {
    uint8_t type; /* enum proto_chunk_type: RAW or DELTA */
    struct proto_digest d;
};

bool proto_window_size_valid(uint32_t w);
bool proto_chunk_type_valid(uint8_t t);

/*
 * digest = SHA-256(type byte || plaintext). Returns 0, or -1 (error slot
 * set) if OpenSSL fails.
 */
int proto_chunk_digest(uint8_t type, const void *data, size_t len,
                       struct proto_digest *out);
/* Lower-case hex (65 bytes with NUL). */
void proto_digest_hex(const struct proto_digest *d, char out[65]);
int proto_digest_parse(const char *hex, struct proto_digest *out);

/*
 * DELTA plaintext: u32 magic "LBDT", u32 window_len, u32 nruns, nruns runs
 * of (u32 offset, u32 length, u8 kind), then the data of the DATA runs,
 * concatenated in order. Runs are sorted, disjoint, non-empty, inside
 * window_len.
 */
#define PROTO_DELTA_MAGIC 0x4C424454u
enum proto_run_kind {
    PROTO_RUN_ZERO = 0,
    PROTO_RUN_DATA = 1,
};

struct proto_run {
    uint32_t off;
    uint32_t len;
    uint8_t kind;
};

/* Size of the encoding of nruns runs carrying data_len data bytes. */
size_t proto_delta_size(uint32_t nruns, size_t data_len);
/*
 * Encode into out (capacity cap, at least proto_delta_size). data holds
 * the DATA runs' bytes back to back. Returns bytes written or 0 if cap is
 * too small.
 */
size_t proto_delta_encode(uint8_t *out, size_t cap, uint32_t window_len,
                          const struct proto_run *runs, uint32_t nruns,
                          const uint8_t *data);
/*
 * Validate a DELTA plaintext against a window of window_len bytes and, if
 * win is not NULL, apply it (DATA runs copied, ZERO runs zeroed). Pure.
 * Returns PROTO_OK or a PROTO_E_* code (win untouched on error).
 */
int proto_delta_apply(uint8_t *win, uint32_t window_len, const uint8_t *p,
                      size_t len);
/*
 * The runs of a DELTA plaintext that proto_delta_apply accepted (and only
 * such a one: nothing is checked again): their count, and run i (i below
 * it). Pure. What a reader of a backup reports as data or zero.
 */
uint32_t proto_delta_nruns(const uint8_t *p);
struct proto_run proto_delta_run(const uint8_t *p, uint32_t i);

/* A reusable (de)compression context, one per thread. */
struct proto_zctx;
struct proto_zctx *proto_zctx_new(int level);
void proto_zctx_free(struct proto_zctx *z);

/*
 * Compress src into dst (capacity cap). If zstd does not shrink the data,
 * stores it as is. Sets *comp to the proto_compression used. Returns the
 * stored length, or -1 (error slot set).
 */
ssize_t proto_chunk_compress(struct proto_zctx *z, uint8_t *dst, size_t cap,
                             const uint8_t *src, size_t len, uint8_t *comp);
/* Worst-case output size of proto_chunk_compress for len input bytes. */
size_t proto_chunk_compress_bound(size_t len);
/*
 * Decompress exactly raw_len bytes into dst (capacity >= raw_len).
 * Rejects a frame whose content size is not raw_len. Returns 0 or -1
 * (error slot set).
 */
int proto_chunk_decompress(struct proto_zctx *z, uint8_t *dst, size_t raw_len,
                           const uint8_t *src, size_t len, uint8_t comp);

/* ---- messages ------------------------------------------------------------ */

struct proto_hello {
    uint16_t version_min;
    uint16_t version_max;
    uint64_t features;
    struct proto_str software;
};
void proto_enc_hello(struct lb_buf *b, uint16_t type,
                     const struct proto_hello *h);
int proto_dec_hello(const uint8_t *p, size_t len, struct proto_hello *out);

/*
 * Version negotiation (PROTOCOL.md, "Version negotiation"). The server
 * answers an offer: *reply gets the highest version both speak (min = max
 * = it) and the offered features it also knows. Returns the version, or 0
 * if there is none in common. Pure.
 */
uint16_t proto_hello_negotiate(const struct proto_hello *offer, uint16_t my_min,
                               uint16_t my_max, uint64_t my_features,
                               struct proto_hello *reply);
/* The client checks the answer to its offer: one version in its range,
 * no feature it did not offer. PROTO_OK or a PROTO_E_* code. Pure. */
int proto_hello_check_reply(const struct proto_hello *reply, uint16_t my_min,
                            uint16_t my_max, uint64_t offered);

enum proto_err {
    PROTO_ERR_PROTOCOL = 1,
    PROTO_ERR_VERSION = 2,
    PROTO_ERR_NO_REPO = 3,
    PROTO_ERR_LOCKED = 4,
    PROTO_ERR_NOT_FOUND = 5,
    PROTO_ERR_NO_SPACE = 6,
    PROTO_ERR_IO = 7,
    PROTO_ERR_CORRUPT = 8,
    PROTO_ERR_INVALID = 9,
    PROTO_ERR_EXISTS = 10,
    PROTO_ERR_DENIED = 11,
    PROTO_ERR_INTERNAL = 12,
    PROTO_ERR_REPO_VERSION = 13,
    PROTO_ERR_NOT_EMPTY = 14,
    PROTO_ERR_BUSY = 15,
};
#define PROTO_ERR_MAX 15
const char *proto_err_name(uint32_t code);

struct proto_error {
    uint32_t code;
    struct proto_str msg;
    struct proto_str hint;
};
void proto_enc_error(struct lb_buf *b, uint32_t code, const char *msg,
                     const char *hint);
int proto_dec_error(const uint8_t *p, size_t len, struct proto_error *out);

/* OK, LIST_END and MANIFEST_END carry one u64 (OK: meaning depends on the
 * request, 0 when none; MANIFEST_END: the manifest's length). */
void proto_enc_u64(struct lb_buf *b, uint16_t type, uint64_t value);
int proto_dec_u64(const uint8_t *p, size_t len, uint64_t *value);
#define proto_enc_ok(b, v) proto_enc_u64(b, PROTO_T_OK, v)
/* Frames with an empty payload (ABORT). */
void proto_enc_empty(struct lb_buf *b, uint16_t type);

/* INIT: u32 window size. OPEN: u8 mode. */
enum proto_open_mode {
    PROTO_OPEN_READ = 0,  /* list, restore, verify */
    PROTO_OPEN_WRITE = 1, /* backups (shared with other writers) */
    PROTO_OPEN_ADMIN = 2, /* delete, prune, gc (exclusive) */
};
void proto_enc_init(struct lb_buf *b, uint32_t window_size);
int proto_dec_init(const uint8_t *p, size_t len, uint32_t *window_size);

/* A repository's encryption (store/FORMAT.md, "Encryption"). */
enum proto_encryption {
    PROTO_ENC_NONE = 0,
    PROTO_ENC_REPOKEY = 1, /* the wrapped key is in the repository */
    PROTO_ENC_KEYFILE = 2, /* the wrapped key is on the client */
};
#define PROTO_KEY_ID_BYTES 16

/* INIT of an encrypted repository (ENCRYPTION feature): window size,
 * then u8 encryption, key id, u32 length + the key file (128 bytes for
 * REPOKEY, none for KEYFILE). KEY_DATA carries the same without the
 * window size (REPOKEY with no key file: the repository lost it). */
struct proto_key_info {
    uint8_t encryption; /* enum proto_encryption */
    uint8_t key_id[PROTO_KEY_ID_BYTES];
    const uint8_t *key; /* the key file's bytes, or NULL */
    uint32_t key_len;
};
void proto_enc_init_keyed(struct lb_buf *b, uint32_t window_size,
                          const struct proto_key_info *k);
/* Either form of INIT: k->encryption is NONE for the plain one. */
int proto_dec_init_keyed(const uint8_t *p, size_t len, uint32_t *window_size,
                         struct proto_key_info *k);
void proto_enc_key_data(struct lb_buf *b, const struct proto_key_info *k);
int proto_dec_key_data(const uint8_t *p, size_t len, struct proto_key_info *k);
/* SEAL: the manifest's MAC (PROTO_SEAL_MAC_LEN bytes). */
#define PROTO_SEAL_MAC_LEN 32
void proto_enc_seal(struct lb_buf *b, const uint8_t *mac);
int proto_dec_seal(const uint8_t *p, size_t len, const uint8_t **mac);
void proto_enc_open(struct lb_buf *b, uint8_t mode);
int proto_dec_open(const uint8_t *p, size_t len, uint8_t *mode);

struct proto_repo_info {
    uint32_t format_version;
    uint32_t window_size;
    uint64_t flags; /* PROTO_REPO_F_* */
    struct proto_str repo_id;
};
#define PROTO_REPO_F_APPEND_ONLY 1ull
#define PROTO_REPO_F_ENCRYPTED 2ull /* ENCRYPTION feature only */
void proto_enc_repo_info(struct lb_buf *b, const struct proto_repo_info *ri);
int proto_dec_repo_info(const uint8_t *p, size_t len,
                        struct proto_repo_info *out);

/* WAITING (WAIT feature): the server holds the OPEN's answer until the
 * memory it needs is free, behind `ahead` sessions, for at most `wait`
 * seconds. */
struct proto_waiting {
    uint32_t ahead;
    uint32_t wait;
};
void proto_enc_waiting(struct lb_buf *b, const struct proto_waiting *w);
int proto_dec_waiting(const uint8_t *p, size_t len, struct proto_waiting *out);

/* Frames whose payload is one str16 (LIST name filter, GET_MANIFEST id,
 * DELETE id). */
void proto_enc_str(struct lb_buf *b, uint16_t type, const char *s);
int proto_dec_str(const uint8_t *p, size_t len, struct proto_str *out);

/* Frames whose payload is one KV list (LIST_ENTRY, DISK_END, COMMIT,
 * COMMITTED, VERIFY, VERIFY_EVENT, VERIFY_END, PRUNE, PRUNE_ENTRY, GC,
 * GC_END). Decoding allocates only after validation. */
void proto_enc_kv(struct lb_buf *b, uint16_t type, const struct proto_kv *kv);
int proto_dec_kv(const uint8_t *p, size_t len, struct proto_kv *out);

/* BACKUP_BEGIN: str16 name, str16 parent id ("" for none), KV meta. */
struct proto_backup_begin {
    struct proto_str name;
    struct proto_str parent;
    struct proto_kv meta; /* owned: proto_kv_free */
};
void proto_enc_backup_begin(struct lb_buf *b, const char *name,
                            const char *parent, const struct proto_kv *meta);
int proto_dec_backup_begin(const uint8_t *p, size_t len,
                           struct proto_backup_begin *out);

/* IMPORT (COPY feature): str16 id, then BACKUP_BEGIN's payload: a
 * backup copied from another repository, under its own id, with its
 * whole metadata (PROTOCOL.md, "Copy"). */
struct proto_import {
    struct proto_str id;
    struct proto_backup_begin b; /* b.meta owned: proto_kv_free */
};
void proto_enc_import(struct lb_buf *b, const char *id, const char *name,
                      const char *parent, const struct proto_kv *meta);
int proto_dec_import(const uint8_t *p, size_t len, struct proto_import *out);

/* BACKUP_STARTED: str16 id, str16 parent id. */
void proto_enc_backup_started(struct lb_buf *b, const char *id,
                              const char *parent);
int proto_dec_backup_started(const uint8_t *p, size_t len, struct proto_str *id,
                             struct proto_str *parent);

/* DISK_BEGIN: str16 disk, u64 size, u8 mode, KV meta. */
enum proto_disk_mode {
    PROTO_DISK_FULL = 0, /* unsent windows are empty (zero) */
    PROTO_DISK_INCR = 1, /* unsent windows keep the parent's stack */
};
struct proto_disk_begin {
    struct proto_str disk;
    uint64_t size;
    uint8_t mode;
    struct proto_kv meta; /* owned */
};
void proto_enc_disk_begin(struct lb_buf *b, const char *disk, uint64_t size,
                          uint8_t mode, const struct proto_kv *meta);
int proto_dec_disk_begin(const uint8_t *p, size_t len,
                         struct proto_disk_begin *out);

/* DISK_READY: u64 nwindows, u32 window_size. For INCR it is followed by
 * DEPTHS frames: u64 first window, then one depth byte per window. */
void proto_enc_disk_ready(struct lb_buf *b, uint64_t nwindows,
                          uint32_t window_size);
int proto_dec_disk_ready(const uint8_t *p, size_t len, uint64_t *nwindows,
                         uint32_t *window_size);
#define PROTO_MAX_DEPTHS_PER_FRAME (1u << 20)
void proto_enc_depths(struct lb_buf *b, uint64_t first, const uint8_t *d,
                      size_t n);
int proto_dec_depths(const uint8_t *p, size_t len, uint64_t *first,
                     const uint8_t **d, size_t *n);

/* QUERY: u32 count, count digests. HAVE: u32 count, bitmap. */
#define PROTO_MAX_QUERY 4096
void proto_enc_query(struct lb_buf *b, uint16_t type,
                     const struct proto_digest *d, uint32_t n);
int proto_dec_query(const uint8_t *p, size_t len, const uint8_t **digests,
                    uint32_t *n);
void proto_enc_have(struct lb_buf *b, const uint8_t *bits, uint32_t n);
int proto_dec_have(const uint8_t *p, size_t len, const uint8_t **bits,
                   uint32_t *n);
static inline bool
proto_bit(const uint8_t *bits, uint32_t i)
{
    return bits[i / 8] >> (i % 8) & 1;
}

/* CHUNK and CHUNK_DATA: digest, u8 type, u8 compression, u16 reserved,
 * u32 raw_len, then the stored bytes (for PROTO_COMP_SEALED, an envelope
 * of the sizes proto_chunk_sealed_check accepts). */
#define PROTO_CHUNK_HDR (PROTO_DIGEST_LEN + 8)
struct proto_chunk {
    struct proto_digest d;
    uint8_t type;
    uint8_t comp;
    uint32_t raw_len;
    const uint8_t *data;
    uint32_t data_len;
};
void proto_enc_chunk(struct lb_buf *b, uint16_t type,
                     const struct proto_chunk *c);
/* The frame and chunk headers only (length covering c->data_len bytes of
 * data the caller sends right after, to avoid copying large payloads). */
void proto_enc_chunk_head(struct lb_buf *b, uint16_t type,
                          const struct proto_chunk *c);
int proto_dec_chunk(const uint8_t *p, size_t len, struct proto_chunk *out);
/* The first len (>= PROTO_CHUNK_HDR) bytes of a CHUNK or CHUNK_DATA
 * payload of payload_len bytes, checked as proto_dec_chunk checks them but
 * for the data, which is not at hand: out->data is NULL, out->data_len
 * the size it must have. For a relay that moves the data unread
 * (proto_conn_forward). */
int proto_dec_chunk_head(const uint8_t *p, size_t len, uint32_t payload_len,
                         struct proto_chunk *out);

/* WINDOWS: u32 count, then per record u64 index, u8 op, u8 n, n refs. */
enum proto_window_op {
    PROTO_WIN_SET = 1,  /* the window's stack becomes exactly refs */
    PROTO_WIN_PUSH = 2, /* refs are pushed onto the parent's stack */
};
#define PROTO_MAX_WINDOW_RECORDS 4096
struct proto_window_rec {
    uint64_t index;
    uint8_t op;
    uint8_t n;
    struct proto_ref refs[PROTO_MAX_STACK];
};
/* Append records to a WINDOWS frame being built: proto_frame_begin, then
 * proto_enc_windows_start (a count placeholder; returns where it is), the
 * records, proto_enc_windows_finish (the count written there), then
 * proto_frame_end. */
size_t proto_enc_windows_start(struct lb_buf *b);
void proto_enc_window_rec(struct lb_buf *b, const struct proto_window_rec *r);
void proto_enc_windows_finish(struct lb_buf *b, size_t start, uint32_t count);
/* Iterate the records of a WINDOWS payload: call proto_dec_windows_init,
 * then proto_dec_window_next until it returns 0 (done) or < 0 (error).
 * Checks bounds and op/type values; ordering is the caller's business. */
int proto_dec_windows_init(struct proto_rd *pr, const uint8_t *p, size_t len,
                           uint32_t *count);
int proto_dec_window_next(struct proto_rd *pr, struct proto_window_rec *r);

/* GET_CHUNKS: same layout as QUERY. MANIFEST_DATA: raw bytes. */
#define PROTO_MAX_GET_CHUNKS 64

/* GET_STORED (COPY feature): same layout as GET_CHUNKS; each digest is
 * answered by CHUNK_DATA, or by CHUNK_BAD: digest, u8 reason, str16
 * message (a chunk the repository lacks or holds damaged). */
enum proto_chunk_bad {
    PROTO_CHUNK_MISSING = 1,
    PROTO_CHUNK_DAMAGED = 2,
};
void proto_enc_chunk_bad(struct lb_buf *b, const struct proto_digest *d,
                         uint8_t reason, const char *msg);
int proto_dec_chunk_bad(const uint8_t *p, size_t len, struct proto_digest *d,
                        uint8_t *reason, struct proto_str *msg);

/* ---- manifests ----------------------------------------------------------- */

#define PROTO_MF_MAGIC "LBMANIF1"
/* The version written (2: runs of empty windows are one record, see
 * FORMAT.md "Disk section"); readers take 1 and 2. */
#define PROTO_MF_VERSION 2
#define PROTO_MF_VERSION_MIN 1
#define PROTO_MF_HDR_SIZE 64
#define PROTO_MF_DISK_MAGIC 0x4C42444Bu /* "LBDK" */
#define PROTO_MF_MAX_DISKS 64
#define PROTO_MF_MAX_META (1u << 20)
#define PROTO_MF_MAX_DISK_META (64u << 10)
#define PROTO_MF_MAX_SIZE (1ull << 50) /* 1 PiB per disk */
/* Windows per disk (64 TiB with 4 MiB windows) and per backup: what a
 * client can make the server write and hash is bounded by what it sends
 * plus these, not by the sizes it declares. */
#define PROTO_MF_MAX_WINDOWS (1ull << 24)
#define PROTO_MF_MAX_BACKUP_WINDOWS (1ull << 26)

struct proto_mf_hdr {
    uint16_t version; /* encode: 0 is PROTO_MF_VERSION */
    uint32_t ndisks;
    uint64_t meta_off;
    uint32_t meta_len;
    uint8_t meta_digest[PROTO_DIGEST_LEN];
};
int proto_mf_hdr_decode(const uint8_t *p, size_t len, struct proto_mf_hdr *out);
void proto_mf_hdr_encode(uint8_t out[PROTO_MF_HDR_SIZE],
                         const struct proto_mf_hdr *h);

struct proto_mf_disk {
    char name[65];
    uint64_t size;
    uint32_t window_size;
    uint64_t nwindows;
};

struct proto_mf_window {
    uint8_t depth;
    struct proto_ref refs[PROTO_MAX_STACK];
};

/* Source of bytes for a manifest reader: fill buf with up to len bytes,
 * return the count (0 at end) or -1 with the error slot set. */
typedef ssize_t (*proto_mf_read_fn)(void *opaque, void *buf, size_t len);

/*
 * A streaming manifest reader: bounded memory whatever the size of the
 * disks. Order of calls: proto_mf_reader_new, proto_mf_read_header,
 * then for each disk proto_mf_next_disk, proto_mf_next_window for every
 * window (or proto_mf_skip_disk), proto_mf_read_disk_end (the disk's
 * metadata, which follows its windows), until next_disk returns 0; then
 * proto_mf_read_meta, then proto_mf_finish (which checks the trailing
 * digest over everything). Every function returns -1 with the error slot
 * set on bad input.
 */
struct proto_mf_reader;
struct proto_mf_reader *proto_mf_reader_new(proto_mf_read_fn fn, void *opaque);
void proto_mf_reader_free(struct proto_mf_reader *r);
int proto_mf_read_header(struct proto_mf_reader *r, struct proto_mf_hdr *h);
/* 1 with *d filled, 0 when no disks remain. */
int proto_mf_next_disk(struct proto_mf_reader *r, struct proto_mf_disk *d);
int proto_mf_next_window(struct proto_mf_reader *r, struct proto_mf_window *w);
/* Skip the remaining windows of the current disk. */
int proto_mf_skip_disk(struct proto_mf_reader *r);
/* Read the disk's metadata after its last window; meta may be NULL. */
int proto_mf_read_disk_end(struct proto_mf_reader *r, struct proto_kv *meta);
int proto_mf_read_meta(struct proto_mf_reader *r, struct proto_kv *meta);
int proto_mf_finish(struct proto_mf_reader *r);
/* Decode a meta block checked against the header's digest (for listing
 * without reading the windows). */
int proto_mf_meta_decode(const struct proto_mf_hdr *h, const uint8_t *p,
                         size_t len, struct proto_kv *meta);

/* A streaming manifest writer to a file descriptor (a temp file), of
 * version PROTO_MF_VERSION, or of an older one that readers still take
 * (for tests, and for copying a manifest as it is). */
struct proto_mf_writer;
struct proto_mf_writer *proto_mf_writer_new(int fd);
struct proto_mf_writer *proto_mf_writer_new_version(int fd, uint16_t version);
void proto_mf_writer_free(struct proto_mf_writer *w);
int proto_mf_write_disk(struct proto_mf_writer *w, const char *name,
                        uint64_t size, uint32_t window_size);
int proto_mf_write_window(struct proto_mf_writer *w,
                          const struct proto_mf_window *win);
/* After the disk's last window: its metadata. */
int proto_mf_write_disk_end(struct proto_mf_writer *w,
                            const struct proto_kv *meta);
/* Write meta, header and trailer; the caller fsyncs and renames. */
int proto_mf_write_finish(struct proto_mf_writer *w,
                          const struct proto_kv *meta);
uint64_t proto_mf_windows_for(uint64_t size, uint32_t window_size);

/* ---- connections --------------------------------------------------------- */

/*
 * Blocking frame I/O on a pair of descriptors (the same fd twice for a
 * socket). proto_conn_recv returns a frame whose payload stays valid until
 * the next recv. Errors set the error slot: EOF on a frame boundary reads
 * as errno 0 with "connection closed".
 */
struct proto_conn;
struct proto_conn *proto_conn_new(int fd_in, int fd_out);
/* Closes the fds only when owned is true. */
void proto_conn_free(struct proto_conn *c, bool close_fds);
int proto_conn_send(struct proto_conn *c, const void *p, size_t len);
/* Send what head holds (reset after), then len bytes of data, with no
 * other thread's send between them: a frame whose payload is elsewhere. */
int proto_conn_send_frame(struct proto_conn *c, struct lb_buf *head,
                          const void *data, size_t len);
int proto_conn_send_buf(struct proto_conn *c, struct lb_buf *b);
/* 0 on a frame, -1 on error or EOF (proto_conn_eof tells which). */
int proto_conn_recv(struct proto_conn *c, struct proto_hdr *h,
                    const uint8_t **payload);
/*
 * proto_conn_recv, but a frame of the given type comes with only its
 * first head bytes at *payload (all of it if shorter): the rest of its
 * payload, h->len - head bytes, MUST then be moved by proto_conn_forward
 * before the next receive (which fails otherwise). Frames of other types
 * come whole.
 */
int proto_conn_recv_head(struct proto_conn *c, uint16_t type, uint32_t head,
                         struct proto_hdr *h, const uint8_t **payload);
/*
 * Send the rest of the frame proto_conn_recv_head cut short on from, as
 * it comes, to `to` (after the caller sent a frame header that counts
 * it), or drop it when to is NULL. The bytes move in the kernel
 * (splice(2)) when either end is a pipe and neither is paced, else
 * through from's buffer. Takes to's send lock. 0, or -1 (error slot set;
 * the failing connection is broken).
 */
int proto_conn_forward(struct proto_conn *from, struct proto_conn *to);
bool proto_conn_eof(const struct proto_conn *c);
/* 1 if a frame's bytes are buffered or the input is readable within
 * timeout_ms, 0 if not, -1 on error. */
int proto_conn_wait_readable(struct proto_conn *c, int timeout_ms);
/* Byte counters (payload + headers). */
uint64_t proto_conn_bytes_out(const struct proto_conn *c);
uint64_t proto_conn_bytes_in(const struct proto_conn *c);
/*
 * Fail a read or write that waits on the peer while nothing has moved
 * either way on the connection for timeout_ms (0: wait for ever; a reader
 * waiting for an answer while a writer's bytes still go out, in another
 * thread, waits on) with ETIMEDOUT: "nothing received from the peer for N
 * s" (then, if no frame was cut short, the connection is not broken: an
 * answer can still be sent) or "nothing taken by the peer". Every other
 * wait on the connection then ends at once, failing the same way ("the
 * connection was given up"). Makes both descriptors non-blocking; may be
 * called again to change the limit. 0, or -1 (error slot set).
 */
int proto_conn_set_timeout(struct proto_conn *c, unsigned timeout_ms);
/* True once a wait on the connection failed by the timeout. */
bool proto_conn_timed_out(const struct proto_conn *c);
/* From now on a WORKING frame received (the peer works on a request) is
 * taken in and dropped by every receive: it only moved bytes (the
 * timeout's clock). One with a payload is a protocol error. */
void proto_conn_skip_working(struct proto_conn *c);
/* Throttle sends to rate bytes/s (0: unlimited): a token bucket. */
void proto_conn_set_bwlimit(struct proto_conn *c, uint64_t rate);

/*
 * Turn a received ERROR frame into the error slot ("message", with its
 * hint) and remember that the peer reported an error. Returns -1 (also
 * for a malformed ERROR frame). *code receives the error code if not NULL.
 */
int proto_conn_take_error(struct proto_conn *c, const uint8_t *p, uint32_t len,
                          uint32_t *code);
/* True once an ERROR frame was received on this connection. */
bool proto_conn_got_error(const struct proto_conn *c);
/* The code of that ERROR (PROTO_ERR_*), 0 if none came. */
uint32_t proto_conn_error_code(const struct proto_conn *c);
/* True once a send or a receive failed (the stream is unusable). */
bool proto_conn_broken(const struct proto_conn *c);

/*
 * Receive a frame of the expected type. An ERROR frame is turned into the
 * error slot ("backupd: <message>", with its hint) and returns -1 with
 * *err_code set (when not NULL). Any other type is a protocol error.
 */
int proto_conn_expect(struct proto_conn *c, uint16_t type,
                      const uint8_t **payload, uint32_t *len,
                      uint32_t *err_code);
/* The same, handing the frames of type `notice` that come first to
 * fn(opaque, payload, len) (a non-zero return ends the call with -1). */
int proto_conn_expect_noting(
    struct proto_conn *c, uint16_t type, uint16_t notice,
    int (*fn)(void *opaque, const uint8_t *p, uint32_t len), void *opaque,
    const uint8_t **payload, uint32_t *len, uint32_t *err_code);

#endif /* LB_PROTO_H */
