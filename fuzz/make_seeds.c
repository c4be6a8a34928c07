/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Seed corpora for the fuzz targets, made with the real encoders so they
 * follow the formats exactly:
 *
 *   fuzz_make_seeds DIR          write DIR/<target>/seed-<name>
 *   fuzz_make_seeds --check DIR  compare them with what is there (ctest)
 *
 * Everything is deterministic (no time, no randomness, no zstd output), so
 * the committed seeds can always be regenerated bit for bit. Inputs found
 * by fuzzing live beside them under other names and are not touched.
 */
#include "proto/crypt.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

struct out {
    const char *dir;
    bool check;
    unsigned n, bad;
};

static void
emit(struct out *o, const char *target, const char *name, const void *p,
     size_t len)
{
    CLEANUP_FREE char *dir = lb_xasprintf("%s/%s", o->dir, target);
    CLEANUP_FREE char *path = lb_xasprintf("%s/seed-%s", dir, name);

    o->n++;
    if (o->check) {
        size_t have = 0;
        CLEANUP_FREE char *old = lb_read_file(path, 1 << 24, &have);
        if (!old || have != len || memcmp(old, p, len) != 0) {
            fprintf(stderr, "make_seeds: %s differs from the generator\n",
                    path);
            o->bad++;
        }
        return;
    }
    if (lb_mkdir_p(dir, 0755) < 0 ||
        lb_write_file_atomic(dir, strrchr(path, '/') + 1, p, len, 0644) < 0) {
        fprintf(stderr, "make_seeds: %s\n", lb_error_msg());
        exit(1);
    }
}

static void
emit_buf(struct out *o, const char *target, const char *name, struct lb_buf *b)
{
    emit(o, target, name, b->data, b->len);
    lb_buf_reset(b);
}

static struct proto_digest
dg(uint8_t seed)
{
    struct proto_digest d;

    for (int i = 0; i < PROTO_DIGEST_LEN; i++)
        d.b[i] = (uint8_t)(seed * 37 + i * 3);
    return d;
}

/* ---- frames -------------------------------------------------------------- */

static void
kv_sample(struct proto_kv *kv)
{
    memset(kv, 0, sizeof *kv);
    proto_kv_set(kv, "kind", "incremental");
    proto_kv_set(kv, "consistency", "fs-frozen");
    proto_kv_set(kv, "source_chain", "/images/web1.qcow2\n/images/base.qcow2");
    proto_kv_set_u64(kv, "bytes_read", 10737418240ull);
}

static void
frame_windows(struct lb_buf *b)
{
    struct proto_window_rec r = {0};
    size_t f = proto_frame_begin(b, PROTO_T_WINDOWS);
    size_t at = proto_enc_windows_start(b);

    r.index = 0;
    r.op = PROTO_WIN_SET; /* an empty window */
    proto_enc_window_rec(b, &r);
    r.index = 1;
    r.n = 2;
    r.refs[0].type = PROTO_CHUNK_RAW;
    r.refs[0].d = dg(1);
    r.refs[1].type = PROTO_CHUNK_DELTA;
    r.refs[1].d = dg(2);
    proto_enc_window_rec(b, &r);
    r.index = 1000;
    r.op = PROTO_WIN_PUSH;
    r.n = 1;
    r.refs[0].type = PROTO_CHUNK_DELTA;
    r.refs[0].d = dg(3);
    proto_enc_window_rec(b, &r);
    proto_enc_windows_finish(b, at, 3);
    proto_frame_end(b, f);
}

static void
frames(struct out *o)
{
    /* A zstd frame for "hello" x 7 (made once with the zstd CLI). */
    static const uint8_t zframe[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x65,
                                     0x00, 0x00, 0x30, 0x68, 0x65, 0x6c, 0x6c,
                                     0x6f, 0x20, 0x01, 0x00, 0xb9, 0x4b, 0x11};
    static const uint8_t depths[] = {0, 1, 2, 8, 32, 0, 0, 1};
    static const uint8_t bits[] = {0x5A, 0x01};
    struct lb_buf b = {0};
    struct proto_kv kv, empty = {0};
    struct proto_hello h = {1, 1, 0, {"livebackup 0.1.0", 16}};
    struct proto_repo_info ri = {1,
                                 4u << 20,
                                 PROTO_REPO_F_APPEND_ONLY,
                                 {"00112233445566778899aabbccddeeff", 32}};
    struct proto_digest q[3] = {dg(1), dg(2), dg(3)};
    struct proto_chunk c = {dg(4), PROTO_CHUNK_RAW,          PROTO_COMP_NONE,
                            5,     (const uint8_t *)"hello", 5};

    kv_sample(&kv);
    proto_enc_hello(&b, PROTO_T_HELLO, &h);
    emit_buf(o, "frame", "hello", &b);
    proto_enc_hello(&b, PROTO_T_HELLO_REPLY, &h);
    emit_buf(o, "frame", "hello_reply", &b);
    proto_enc_error(&b, PROTO_ERR_LOCKED, "repository /srv/repo is locked",
                    "try again later");
    emit_buf(o, "frame", "error", &b);
    proto_enc_ok(&b, 0);
    emit_buf(o, "frame", "ok", &b);
    proto_enc_init(&b, 4u << 20);
    emit_buf(o, "frame", "init", &b);
    {
        uint8_t kb[PROTO_KEYFILE_LEN];
        struct proto_keyfile kf;
        struct proto_key_info k = {PROTO_ENC_REPOKEY, {0}, kb, sizeof kb};
        uint8_t mac[PROTO_SEAL_MAC_LEN];
        memset(&kf, 0, sizeof kf);
        kf.kdf = PROTO_KDF_ARGON2ID;
        kf.log2n = PROTO_ARGON2_LOG2M;
        kf.r = PROTO_ARGON2_T;
        kf.p = PROTO_ARGON2_P;
        for (size_t i = 0; i < sizeof kf.key_id; i++)
            k.key_id[i] = kf.key_id[i] = (uint8_t)(0xA0 + i);
        memset(kf.salt, 0x5A, sizeof kf.salt);
        memset(kf.wrapped, 0xC3, sizeof kf.wrapped);
        proto_keyfile_encode(kb, &kf);
        proto_enc_init_keyed(&b, 4u << 20, &k);
        emit_buf(o, "frame", "init_repokey", &b);
        proto_enc_key_data(&b, &k);
        emit_buf(o, "frame", "key_data", &b);
        {
            size_t f = proto_frame_begin(&b, PROTO_T_KEY_SET);
            lb_buf_append(&b, kb, sizeof kb);
            proto_frame_end(&b, f);
            emit_buf(o, "frame", "key_set", &b);
        }
        k.encryption = PROTO_ENC_KEYFILE;
        k.key = NULL;
        k.key_len = 0;
        proto_enc_init_keyed(&b, 4u << 20, &k);
        emit_buf(o, "frame", "init_keyfile", &b);
        proto_enc_empty(&b, PROTO_T_KEY_GET);
        emit_buf(o, "frame", "key_get", &b);
        memset(mac, 0x77, sizeof mac);
        proto_enc_seal(&b, mac);
        emit_buf(o, "frame", "seal", &b);
        proto_enc_kv(&b, PROTO_T_COMMIT_META, &kv);
        emit_buf(o, "frame", "commit_meta", &b);
    }
    proto_enc_open(&b, PROTO_OPEN_WRITE);
    emit_buf(o, "frame", "open", &b);
    proto_enc_repo_info(&b, &ri);
    emit_buf(o, "frame", "repo_info", &b);
    proto_enc_waiting(&b, &(struct proto_waiting){2, 3600});
    emit_buf(o, "frame", "waiting", &b);
    proto_enc_str(&b, PROTO_T_LIST, "web1");
    emit_buf(o, "frame", "list", &b);
    proto_enc_kv(&b, PROTO_T_LIST_ENTRY, &kv);
    emit_buf(o, "frame", "list_entry", &b);
    proto_enc_u64(&b, PROTO_T_LIST_END, 2);
    emit_buf(o, "frame", "list_end", &b);
    proto_enc_backup_begin(&b, "web1", "20261123-114600-abcd", &kv);
    emit_buf(o, "frame", "backup_begin", &b);
    proto_enc_backup_started(&b, "20261124-010203-0f0f",
                             "20261123-114600-abcd");
    emit_buf(o, "frame", "backup_started", &b);
    proto_enc_disk_begin(&b, "vda", 10737418240ull, PROTO_DISK_INCR, &kv);
    emit_buf(o, "frame", "disk_begin", &b);
    proto_enc_disk_ready(&b, 2560, 4u << 20);
    emit_buf(o, "frame", "disk_ready", &b);
    proto_enc_depths(&b, 0, depths, sizeof depths);
    emit_buf(o, "frame", "depths", &b);
    proto_enc_query(&b, PROTO_T_QUERY, q, 3);
    emit_buf(o, "frame", "query", &b);
    proto_enc_have(&b, bits, 9);
    emit_buf(o, "frame", "have", &b);
    proto_enc_chunk(&b, PROTO_T_CHUNK, &c);
    emit_buf(o, "frame", "chunk", &b);
    c.type = PROTO_CHUNK_DELTA;
    c.comp = PROTO_COMP_ZSTD;
    c.raw_len = 35;
    c.data = zframe;
    c.data_len = sizeof zframe;
    proto_enc_chunk(&b, PROTO_T_CHUNK, &c);
    emit_buf(o, "frame", "chunk_zstd", &b);
    {
        /* A sealed chunk's shape (not one that opens: no key here). */
        static uint8_t env[PROTO_SEAL_OVERHEAD + 1 + 5];
        struct proto_chunk sc = {dg(5), PROTO_CHUNK_RAW, PROTO_COMP_SEALED, 5,
                                 env,   sizeof env};
        for (size_t i = 0; i < sizeof env; i++)
            env[i] = (uint8_t)(i * 13 + 1);
        proto_enc_chunk(&b, PROTO_T_CHUNK, &sc);
        emit_buf(o, "frame", "chunk_sealed", &b);
    }
    frame_windows(&b);
    emit_buf(o, "frame", "windows", &b);
    proto_enc_kv(&b, PROTO_T_DISK_END, &kv);
    emit_buf(o, "frame", "disk_end", &b);
    proto_enc_kv(&b, PROTO_T_COMMIT, &empty);
    emit_buf(o, "frame", "commit", &b);
    proto_enc_kv(&b, PROTO_T_COMMITTED, &kv);
    emit_buf(o, "frame", "committed", &b);
    proto_enc_empty(&b, PROTO_T_ABORT);
    emit_buf(o, "frame", "abort", &b);
    proto_enc_empty(&b, PROTO_T_WORKING);
    emit_buf(o, "frame", "working", &b);
    proto_enc_str(&b, PROTO_T_GET_MANIFEST, "20261123-114600-abcd");
    emit_buf(o, "frame", "get_manifest", &b);
    {
        size_t f = proto_frame_begin(&b, PROTO_T_MANIFEST_DATA);
        lb_buf_append(&b, PROTO_MF_MAGIC, 8);
        proto_frame_end(&b, f);
        emit_buf(o, "frame", "manifest_data", &b);
    }
    proto_enc_u64(&b, PROTO_T_MANIFEST_END, 4242);
    emit_buf(o, "frame", "manifest_end", &b);
    proto_enc_query(&b, PROTO_T_GET_CHUNKS, q, 2);
    emit_buf(o, "frame", "get_chunks", &b);
    proto_enc_query(&b, PROTO_T_GET_STORED, q, 2);
    emit_buf(o, "frame", "get_stored", &b);
    proto_enc_chunk_bad(&b, &q[0], PROTO_CHUNK_DAMAGED,
                        "chunk ab/cd: data does not match its digest");
    emit_buf(o, "frame", "chunk_bad", &b);
    proto_enc_import(&b, "20261123-114600-abcd", "web1", "20261122-013000-1ad2",
                     &kv);
    emit_buf(o, "frame", "import", &b);
    c.type = PROTO_CHUNK_BLOB;
    proto_enc_chunk(&b, PROTO_T_CHUNK_DATA, &c);
    emit_buf(o, "frame", "chunk_data", &b);
    proto_enc_kv(&b, PROTO_T_VERIFY, &empty);
    emit_buf(o, "frame", "verify", &b);
    {
        struct proto_kv ev = {0};
        proto_kv_set(&ev, "event", "damage");
        proto_kv_set(&ev, "id", "20261123-114600-abcd");
        proto_kv_set(&ev, "disk", "vda");
        proto_kv_set(&ev, "what", "chunk 00ff missing");
        proto_enc_kv(&b, PROTO_T_VERIFY_EVENT, &ev);
        emit_buf(o, "frame", "verify_event", &b);
        proto_kv_free(&ev);
    }
    proto_enc_kv(&b, PROTO_T_VERIFY_END, &kv);
    emit_buf(o, "frame", "verify_end", &b);
    proto_enc_str(&b, PROTO_T_DELETE, "20261123-114600-abcd");
    emit_buf(o, "frame", "delete", &b);
    proto_enc_kv(&b, PROTO_T_PRUNE, &kv);
    emit_buf(o, "frame", "prune", &b);
    proto_enc_kv(&b, PROTO_T_PRUNE_ENTRY, &kv);
    emit_buf(o, "frame", "prune_entry", &b);
    proto_enc_kv(&b, PROTO_T_GC, &empty);
    emit_buf(o, "frame", "gc", &b);
    proto_enc_kv(&b, PROTO_T_GC_END, &kv);
    emit_buf(o, "frame", "gc_end", &b);

    /* A few invalid ones: the decoders' error paths. */
    {
        uint8_t hdr[PROTO_HDR_SIZE];
        proto_hdr_encode(hdr, PROTO_T_OK, 8);
        hdr[0] ^= 1;
        emit(o, "frame", "bad_magic", hdr, sizeof hdr);
        proto_hdr_encode(hdr, PROTO_T_OK, 8);
        hdr[7] = 1;
        emit(o, "frame", "bad_flags", hdr, sizeof hdr);
        proto_hdr_encode(hdr, PROTO_T_CHUNK, PROTO_MAX_PAYLOAD + 1);
        emit(o, "frame", "too_big", hdr, sizeof hdr);
        proto_hdr_encode(hdr, 0x0099, 0);
        emit(o, "frame", "unknown_type", hdr, sizeof hdr);
        emit(o, "frame", "short_header", hdr, 7);
    }
    {
        size_t f = proto_frame_begin(&b, PROTO_T_QUERY);
        lb_buf_put_be32(&b, 0x08000001u); /* count * 32 wraps 32 bits */
        proto_frame_end(&b, f);
        emit_buf(o, "frame", "query_overflow", &b);
        f = proto_frame_begin(&b, PROTO_T_LIST_ENTRY);
        lb_buf_put_be16(&b, 1);
        lb_buf_put_str16(&b, "k", 1);
        lb_buf_put_be32(&b, 0xFFFFFFFFu);
        proto_frame_end(&b, f);
        emit_buf(o, "frame", "kv_huge_value", &b);
    }
    proto_kv_free(&kv);
    lb_buf_free(&b);
}

/* ---- manifests ----------------------------------------------------------- */

struct mdisk {
    const char *name;
    uint64_t size;
    uint32_t ws;
};

/* Window i of a disk: a cycle of empty, RAW, RAW + DELTAs, DELTAs, deep. */
static void
mwin(uint64_t i, struct proto_mf_window *w)
{
    static const uint8_t depth[] = {0, 1, 3, 2, 8};
    unsigned k = (unsigned)(i % LB_ARRAY_SIZE(depth));

    memset(w, 0, sizeof *w);
    w->depth = depth[k];
    for (int j = 0; j < w->depth; j++) {
        w->refs[j].type =
            j == 0 && k != 3 ? PROTO_CHUNK_RAW : PROTO_CHUNK_DELTA;
        w->refs[j].d = dg((uint8_t)(i * 5 + (uint64_t)j));
    }
}

/* pattern (may be NULL): a window is empty where it says '.', else as
 * mwin makes it. */
static void
manifest(struct out *o, const char *name, uint16_t version,
         const struct mdisk *disks, size_t n, const struct proto_kv *meta,
         const char *pattern)
{
    int fd = memfd_create("seed", MFD_CLOEXEC);
    struct proto_mf_writer *w;
    struct proto_kv dm = {0};
    off_t len;
    uint8_t *buf;

    if (fd < 0 || !(w = proto_mf_writer_new_version(fd, version))) {
        fprintf(stderr, "make_seeds: memfd: %s\n", strerror(errno));
        exit(1);
    }
    proto_kv_set(&dm, "mode", "full");
    proto_kv_set(&dm, "source", "/var/lib/libvirt/images/web1.qcow2");
    for (size_t d = 0; d < n; d++) {
        uint64_t nw = proto_mf_windows_for(disks[d].size, disks[d].ws);
        struct proto_mf_window win;
        if (proto_mf_write_disk(w, disks[d].name, disks[d].size, disks[d].ws) <
            0)
            goto fail;
        for (uint64_t i = 0; i < nw; i++) {
            mwin(i + d, &win);
            if (pattern && pattern[i % strlen(pattern)] == '.')
                win.depth = 0;
            if (proto_mf_write_window(w, &win) < 0)
                goto fail;
        }
        if (proto_mf_write_disk_end(w, &dm) < 0)
            goto fail;
    }
    if (proto_mf_write_finish(w, meta) < 0)
        goto fail;
    proto_mf_writer_free(w);
    proto_kv_free(&dm);
    len = lseek(fd, 0, SEEK_END);
    buf = lb_xmalloc((size_t)len);
    if (lb_pread_full(fd, buf, (size_t)len, 0) != len)
        goto fail;
    close(fd);
    emit(o, "manifest", name, buf, (size_t)len);
    free(buf);
    return;
fail:
    fprintf(stderr, "make_seeds: manifest %s: %s\n", name, lb_error_msg());
    exit(1);
}

static void
manifests(struct out *o)
{
    static const struct mdisk one[] = {{"vda", 65537, 65536}};
    static const struct mdisk three[] = {
        {"vda", 10 * 65536 + 512, 65536},
        {"vdb", 1, 65536},
        {"sda.data-1", 3u << 20, 1u << 20},
    };
    static const struct mdisk big_window[] = {{"nvme0", 17u << 20, 8u << 20}};
    struct proto_kv meta = {0}, none = {0};

    proto_kv_set(&meta, "id", "20261123-114600-abcd");
    proto_kv_set(&meta, "name", "web1");
    proto_kv_set(&meta, "parent", "");
    proto_kv_set(&meta, "kind", "full");
    proto_kv_set_u64(&meta, "time", 1795434360);
    static const struct mdisk empty[] = {{"vda", 1ull << 40, 65536}};

    /* Version 1, what older backupds wrote. */
    manifest(o, "one_disk", 1, one, 1, &meta, NULL);
    manifest(o, "three_disks", 1, three, 3, &meta, NULL);
    manifest(o, "big_window", 1, big_window, 1, &none, NULL);
    manifest(o, "no_disks", 1, NULL, 0, &meta, NULL);
    /* Version 2: runs of empty windows. */
    manifest(o, "v2_three_disks", 2, three, 3, &meta, NULL);
    manifest(o, "v2_runs", 2, three, 3, &meta, "X...X.XX..");
    manifest(o, "v2_empty_tib", 2, empty, 1, &meta, ".");
    proto_kv_free(&meta);
}

/* ---- JSON ---------------------------------------------------------------- */

static void
json(struct out *o)
{
    static const struct {
        const char *name, *text;
    } docs[] = {
        {"qemu_img_chain.json",
         "[\n    {\n        \"virtual-size\": 21474836480,\n"
         "        \"filename\": \"/var/lib/libvirt/images/web1.qcow2\",\n"
         "        \"cluster-size\": 65536,\n        \"format\": \"qcow2\",\n"
         "        \"actual-size\": 1380061184,\n"
         "        \"format-specific\": {\n            \"type\": \"qcow2\",\n"
         "            \"data\": {\n                \"compat\": \"1.1\",\n"
         "                \"compression-type\": \"zlib\",\n"
         "                \"lazy-refcounts\": false,\n"
         "                \"bitmaps\": [\n                    {\n"
         "                        \"flags\": [\n"
         "                            \"auto\"\n                        ],\n"
         "                        \"name\": \"livebackup-0\",\n"
         "                        \"granularity\": 65536\n"
         "                    }\n                ],\n"
         "                \"refcount-bits\": 16,\n"
         "                \"corrupt\": false,\n"
         "                \"extended-l2\": false\n            }\n        },\n"
         "        \"full-backing-filename\": "
         "\"/var/lib/libvirt/images/base.qcow2\",\n"
         "        \"backing-filename\": \"base.qcow2\",\n"
         "        \"dirty-flag\": false\n    },\n    {\n"
         "        \"virtual-size\": 21474836480,\n"
         "        \"filename\": \"/var/lib/libvirt/images/base.qcow2\",\n"
         "        \"cluster-size\": 65536,\n        \"format\": \"qcow2\",\n"
         "        \"actual-size\": 2147745792,\n"
         "        \"dirty-flag\": false\n    }\n]\n"},
        {"qemu_img_raw.json",
         "[{\"virtual-size\": 1073741824, \"filename\": \"/dev/vg0/web1\", "
         "\"format\": \"raw\", \"dirty-flag\": false}]"},
        {"qga_fsinfo.json",
         "{\"return\": [{\"name\": \"vda1\", \"mountpoint\": \"/\", "
         "\"type\": \"ext4\", \"used-bytes\": 1234567, \"total-bytes\": "
         "9876543, \"disk\": [{\"serial\": \"\", \"bus-type\": \"virtio\", "
         "\"bus\": 0, \"unit\": 0, \"target\": 0, \"dev\": \"/dev/vda1\"}]}]}"},
        {"qga_freeze.json", "{\"return\": 2}\n"},
        {"qga_error.json",
         "{\"error\": {\"class\": \"GenericError\", \"desc\": "
         "\"fsfreeze is already frozen\"}}"},
        {"escapes.json", "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\u00e9\\u20ac\", "
                         "\"\\ud83d\\ude00\", \"caf\xc3\xa9\"]"},
        {"numbers.json",
         "[0, -0, 1, -1, 1.5, -2.5e-3, 1E+10, 18446744073709551615, "
         "18446744073709551616, -9223372036854775808, 0.000001]"},
        {"literals.json", " {\"a\": true, \"b\": false, \"c\": null, "
                          "\"d\": {}, \"e\": []} "},
        {"bad_surrogate.json", "[\"\\ud800\"]"},
        {"bad_trailing.json", "{\"a\": 1} x"},
        {"bad_nul.json", "\"\\u0000\""},
    };
    char deep[2 * 65];

    for (size_t i = 0; i < LB_ARRAY_SIZE(docs); i++)
        emit(o, "json", docs[i].name, docs[i].text, strlen(docs[i].text));
    /* The deepest nesting accepted, and one more. */
    for (int d = 64; d <= 65; d++) {
        char name[32];
        memset(deep, '[', (size_t)d);
        memset(deep + d, ']', (size_t)d);
        snprintf(name, sizeof name, "depth%d.json", d);
        emit(o, "json", name, deep, 2 * (size_t)d);
    }
}

/* ---- DELTA --------------------------------------------------------------- */

static void
delta(struct out *o, const char *name, uint32_t wl, const struct proto_run *r,
      uint32_t n)
{
    uint8_t data[4096], buf[4 + PROTO_DELTA_HDR + 64 * PROTO_DELTA_RUN + 4096];
    size_t dlen = 0, len;

    for (uint32_t i = 0; i < n; i++)
        if (r[i].kind == PROTO_RUN_DATA)
            dlen += r[i].len;
    for (size_t i = 0; i < dlen && i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    lb_store_be32(buf, wl);
    len = proto_delta_encode(buf + 4, sizeof buf - 4, wl, r, n, data);
    if (len == 0) {
        fprintf(stderr, "make_seeds: delta %s does not fit\n", name);
        exit(1);
    }
    emit(o, "delta", name, buf, 4 + len);
}

static void
deltas(struct out *o)
{
    static const struct proto_run one[] = {{512, 1024, PROTO_RUN_DATA}};
    static const struct proto_run mixed[] = {
        {0, 100, PROTO_RUN_DATA},
        {100, 900, PROTO_RUN_ZERO},
        {4000, 96, PROTO_RUN_DATA},
    };
    static const struct proto_run whole[] = {{0, 1000, PROTO_RUN_ZERO}};
    static const struct proto_run overlap[] = {{0, 600, PROTO_RUN_ZERO},
                                               {512, 100, PROTO_RUN_DATA}};
    static const struct proto_run past[] = {{4000, 200, PROTO_RUN_ZERO}};
    static const struct proto_run empty[] = {{10, 0, PROTO_RUN_ZERO}};
    struct proto_run many[8];

    for (int i = 0; i < 8; i++) {
        many[i].off = (uint32_t)i * 512;
        many[i].len = 64;
        many[i].kind = i % 2 ? PROTO_RUN_ZERO : PROTO_RUN_DATA;
    }
    delta(o, "one_data_run", 65536, one, 1);
    delta(o, "mixed", 4096, mixed, 3);
    delta(o, "short_window", 1000, whole, 1);
    delta(o, "max_runs", 4096, many, 8);
    delta(o, "bad_overlap", 4096, overlap, 2);
    delta(o, "bad_past_end", 4096, past, 1);
    delta(o, "bad_empty_run", 4096, empty, 1);
    delta(o, "bad_too_many_runs", 4095, many, 8);
    {
        uint8_t b[4 + PROTO_DELTA_HDR];
        lb_store_be32(b, 4096);
        lb_store_be32(b + 4, 0x4C424455u); /* wrong magic */
        lb_store_be32(b + 8, 4096);
        lb_store_be32(b + 12, 1);
        emit(o, "delta", "bad_magic", b, sizeof b);
    }
}

/* ---- whole sessions (fuzz_session, fuzz_listen) -------------------------- */

#define SEED_WINDOW PROTO_MIN_WINDOW /* the fuzz repositories' */
#define SEED_SPLIT "\nLBSPLIT\n"     /* fuzz_listen: between connections */

static void
s_hello(struct lb_buf *b, uint8_t mode)
{
    struct proto_hello h = {PROTO_VERSION, PROTO_VERSION, 0, {"seed", 4}};

    proto_enc_hello(b, PROTO_T_HELLO, &h);
    proto_enc_open(b, mode);
}

/* A chunk of len bytes of a pattern (stored as it is: no zstd output in
 * a seed), sent as CHUNK. */
static struct proto_digest
s_chunk(struct lb_buf *b, uint8_t type, const uint8_t *plain, size_t len)
{
    struct proto_chunk c = {.type = type, .comp = PROTO_COMP_NONE};

    c.raw_len = (uint32_t)len;
    c.data = plain;
    c.data_len = (uint32_t)len;
    if (proto_chunk_digest(type, plain, len, &c.d) < 0)
        exit(1);
    proto_enc_chunk(b, PROTO_T_CHUNK, &c);
    return c.d;
}

static void
s_window(struct lb_buf *b, uint64_t index, uint8_t type, struct proto_digest d)
{
    struct proto_window_rec r = {.index = index, .op = PROTO_WIN_SET, .n = 1};
    size_t f = proto_frame_begin(b, PROTO_T_WINDOWS);
    size_t at = proto_enc_windows_start(b);

    r.refs[0].type = type;
    r.refs[0].d = d;
    proto_enc_window_rec(b, &r);
    proto_enc_windows_finish(b, at, 1);
    proto_frame_end(b, f);
}

static void
s_keys(struct proto_kv *kv, const char *prefix, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof k, "%s%u", prefix, i);
        proto_kv_set(kv, k, "v");
    }
}

/* A full backup of name: vda of 2 whole windows and a short one (RAW,
 * DELTA, short RAW), nkeys keys at BACKUP_BEGIN and at COMMIT, a saved
 * domain XML if xml. */
static void
s_backup(struct lb_buf *b, const char *name, unsigned nkeys, bool xml)
{
    static uint8_t win[SEED_WINDOW], dplain[1024];
    static const char dom[] = "<domain><name>vm1</name></domain>";
    struct proto_run run = {4096, 512, PROTO_RUN_DATA};
    struct proto_kv bm = {0}, cm = {0}, none = {0};
    size_t dl;

    for (size_t i = 0; i < sizeof win; i++)
        win[i] = (uint8_t)(i * 7 + 1);
    dl = proto_delta_encode(dplain, sizeof dplain, SEED_WINDOW, &run, 1, win);
    proto_kv_set(&bm, "kind", "full");
    s_keys(&bm, "b", nkeys);
    s_keys(&cm, "c", nkeys);
    proto_enc_backup_begin(b, name, "", &bm);
    proto_enc_disk_begin(b, "vda", 2 * SEED_WINDOW + 1000, PROTO_DISK_FULL,
                         &none);
    s_window(b, 0, PROTO_CHUNK_RAW,
             s_chunk(b, PROTO_CHUNK_RAW, win, SEED_WINDOW));
    s_window(b, 1, PROTO_CHUNK_DELTA,
             s_chunk(b, PROTO_CHUNK_DELTA, dplain, dl));
    s_window(b, 2, PROTO_CHUNK_RAW, s_chunk(b, PROTO_CHUNK_RAW, win, 1000));
    proto_enc_kv(b, PROTO_T_DISK_END, &none);
    if (xml) {
        char hex[65];
        struct proto_digest d =
            s_chunk(b, PROTO_CHUNK_BLOB, (const uint8_t *)dom, sizeof dom - 1);
        proto_digest_hex(&d, hex);
        proto_kv_set(&cm, "domain_xml", hex);
    }
    proto_enc_kv(b, PROTO_T_COMMIT, &cm);
    proto_kv_free(&bm);
    proto_kv_free(&cm);
}

static void
s_bridge(struct lb_buf *b, bool append_only, bool trusted, const char *names)
{
    struct proto_kv kv = {0};

    proto_kv_set(&kv, "append_only", append_only ? "1" : "0");
    if (trusted)
        proto_kv_set(&kv, "trusted", "1");
    proto_kv_set(&kv, "peer", "192.0.2.1 40000 22");
    if (names)
        proto_kv_set(&kv, "restrict_names", names);
    proto_enc_kv(b, PROTO_T_BRIDGE, &kv);
    proto_kv_free(&kv);
}

/* A copy's session (PROTOCOL.md, "Copy"): HELLO with the COPY feature,
 * IMPORT of a backup of name under id (whose time it is) with a disk of
 * one RAW window, COMMIT; then GET_STORED of that chunk and of one the
 * repository lacks. */
static void
s_import(struct lb_buf *b, const char *id, int64_t time, const char *name)
{
    static uint8_t win[SEED_WINDOW];
    struct proto_hello h = {
        PROTO_VERSION, PROTO_VERSION, PROTO_FEATURE_COPY, {"seed", 4}};
    struct proto_kv meta = {0}, dm = {0}, none = {0};
    struct proto_digest d[2];

    for (size_t i = 0; i < sizeof win; i++)
        win[i] = (uint8_t)(i * 5 + 3);
    proto_enc_hello(b, PROTO_T_HELLO, &h);
    proto_enc_open(b, PROTO_OPEN_WRITE);
    proto_kv_set(&meta, "kind", "incremental");
    proto_kv_set_u64(&meta, "time", (uint64_t)time);
    proto_kv_set_u64(&meta, "end_time", (uint64_t)time + 7);
    proto_kv_set(&meta, "windows_set", "1");
    proto_kv_set(&dm, "mode", "incremental");
    proto_enc_import(b, id, name, "20250101-000000-0001", &meta);
    proto_enc_disk_begin(b, "vda", SEED_WINDOW, PROTO_DISK_FULL, &dm);
    d[0] = s_chunk(b, PROTO_CHUNK_RAW, win, SEED_WINDOW);
    s_window(b, 0, PROTO_CHUNK_RAW, d[0]);
    proto_enc_kv(b, PROTO_T_DISK_END, &none);
    proto_enc_kv(b, PROTO_T_COMMIT, &none);
    memset(d[1].b, 0xee, sizeof d[1].b);
    proto_enc_query(b, PROTO_T_GET_STORED, d, 2);
    proto_kv_free(&meta);
    proto_kv_free(&dm);
}

static void
s_kv_frame(struct lb_buf *b, uint16_t type, const char *k1, const char *v1,
           const char *k2, const char *v2)
{
    struct proto_kv kv = {0};

    if (k1)
        proto_kv_set(&kv, k1, v1);
    if (k2)
        proto_kv_set(&kv, k2, v2);
    proto_enc_kv(b, type, &kv);
    proto_kv_free(&kv);
}

/* The sessions, each a seed of fuzz_session; fuzz_listen's seeds are
 * several of them at once, one per connection. */
static void
sessions(struct out *o)
{
    struct lb_buf b = {0}, all = {0};
    struct proto_kv none = {0};

    s_bridge(&b, true, false, "host1*\nweb?");
    s_hello(&b, PROTO_OPEN_WRITE);
    proto_enc_str(&b, PROTO_T_LIST, "");
    s_backup(&b, "host1-a", 2, true);
    proto_enc_str(&b, PROTO_T_LIST, "host1-a");
    s_backup(&b, "db1", 0, false); /* not allowed: DENIED */
    lb_buf_append(&all, b.data, b.len);
    emit_buf(o, "session", "bridge_restricted", &b);

    s_bridge(&b, false, true, NULL);
    s_hello(&b, PROTO_OPEN_WRITE);
    s_backup(&b, "vm1", 1, true);
    emit_buf(o, "session", "bridge_trusted", &b);

    /* Issue 10, item 1: 200 keys at BACKUP_BEGIN and 200 at COMMIT, then
     * 256 at BACKUP_BEGIN. */
    s_hello(&b, PROTO_OPEN_WRITE);
    s_backup(&b, "vm1", 200, false);
    lb_buf_append(&all, SEED_SPLIT, strlen(SEED_SPLIT));
    lb_buf_append(&all, b.data, b.len);
    emit_buf(o, "session", "meta_heavy", &b);
    s_hello(&b, PROTO_OPEN_WRITE);
    s_keys(&none, "k", PROTO_MAX_KV);
    proto_enc_backup_begin(&b, "vm1", "", &none);
    proto_kv_free(&none);
    emit_buf(o, "session", "meta_256", &b);

    s_hello(&b, PROTO_OPEN_WRITE);
    s_backup(&b, "vm1", 0, true);
    s_kv_frame(&b, PROTO_T_GC, "dry_run", "1", NULL, NULL);
    s_kv_frame(&b, PROTO_T_GC, "dry_run", "0", NULL, NULL);
    lb_buf_append(&all, SEED_SPLIT, strlen(SEED_SPLIT));
    lb_buf_append(&all, b.data, b.len);
    emit_buf(o, "session", "gc", &b);

    s_hello(&b, PROTO_OPEN_ADMIN);
    s_kv_frame(&b, PROTO_T_PRUNE, "keep_last", "1", "name", "vm1");
    s_kv_frame(&b, PROTO_T_PRUNE, "keep_daily", "2", "keep_weekly", "1");
    proto_enc_str(&b, PROTO_T_DELETE, "20260101-000000-0000");
    lb_buf_append(&all, SEED_SPLIT, strlen(SEED_SPLIT));
    lb_buf_append(&all, b.data, b.len);
    emit_buf(o, "session", "prune", &b);

    s_hello(&b, PROTO_OPEN_READ);
    s_kv_frame(&b, PROTO_T_PRUNE, "keep_last", "1", "dry_run", "1");
    s_kv_frame(&b, PROTO_T_VERIFY, NULL, NULL, NULL, NULL);
    emit_buf(o, "session", "prune_dry_verify", &b);

    /* 2026-11-23 11:46:00 UTC */
    s_import(&b, "20261123-114600-abcd", 1795434360, "vm1");
    lb_buf_append(&all, SEED_SPLIT, strlen(SEED_SPLIT));
    lb_buf_append(&all, b.data, b.len);
    emit_buf(o, "session", "import", &b);
    s_kv_frame(&b, PROTO_T_BRIDGE, "read_only", "1", "peer", "local");
    s_import(&b, "20261123-114600-abcd", 1795434360, "vm1");
    emit_buf(o, "session", "bridge_read_only", &b);

    emit_buf(o, "listen", "four_at_once", &all);
    lb_buf_free(&b);
    lb_buf_free(&all);
}

/* ---- encryption ---------------------------------------------------------- */

static const uint8_t fuzz_key[PROTO_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};

/* A sealer with a fixed salt (not random: the seeds are deterministic). */
static void
fixed_sealer(struct proto_sealer *s, const uint8_t *base)
{
    static const char info[] = "livebackup v1 session";

    for (size_t i = 0; i < sizeof s->salt; i++)
        s->salt[i] = (uint8_t)(0x40 + i);
    if (proto_hkdf_sha256(base, PROTO_KEY_LEN, s->salt, sizeof s->salt, info,
                          sizeof info - 1, s->key, sizeof s->key) < 0)
        exit(1);
    s->next = 0;
}

static bool
clear_a(const char *k)
{
    return k[0] == 'a';
}

/* Key files of master 00 ... 1f under passphrase "fuzz", one per KDF
 * with cheap parameters (scrypt N 16, r 1, p 1; Argon2id m 16 KiB, t 1,
 * p 2: cheap enough for the fuzzer to unwrap), fixed salt and nonce. */
static void
keyfile_one(struct out *o, uint8_t kdf, const char *name)
{
    uint8_t m[PROTO_KEY_LEN], kek[PROTO_KEY_LEN], b[PROTO_KEYFILE_LEN];
    struct proto_keyfile kf;
    struct proto_keys k;
    char nm[64];
    int rc;

    memset(&kf, 0, sizeof kf);
    for (int i = 0; i < PROTO_KEY_LEN; i++)
        m[i] = (uint8_t)i;
    kf.kdf = kdf;
    kf.log2n = 4;
    kf.r = 1;
    kf.p = kdf == PROTO_KDF_SCRYPT ? 1 : 2;
    if (proto_keys_derive(m, &k) < 0)
        exit(1);
    memcpy(kf.key_id, k.key_id, sizeof kf.key_id);
    memset(kf.salt, 0x33, sizeof kf.salt);
    memset(kf.nonce, 0x44, sizeof kf.nonce);
    if (kdf == PROTO_KDF_SCRYPT)
        rc = proto_scrypt("fuzz", 4, kf.salt, sizeof kf.salt, 16, 1, 1, kek,
                          sizeof kek);
    else
        rc = proto_argon2id("fuzz", 4, kf.salt, sizeof kf.salt, NULL, 0, NULL,
                            0, 1, 16, 2, kek, sizeof kek);
    if (rc < 0)
        exit(1);
    proto_keyfile_encode(b, &kf);
    if (proto_gcm_seal(kek, kf.nonce, b, PROTO_KEYFILE_AAD, m, sizeof m,
                       kf.wrapped, kf.tag) < 0)
        exit(1);
    proto_keyfile_encode(b, &kf);
    snprintf(nm, sizeof nm, "opens%s", name);
    emit(o, "keyfile", nm, b, sizeof b);
    b[0] ^= 1;
    snprintf(nm, sizeof nm, "bad_magic%s", name);
    emit(o, "keyfile", nm, b, sizeof b);
    b[0] ^= 1;
    if (kdf == PROTO_KDF_SCRYPT) {
        kf.log2n = PROTO_SCRYPT_LOG2N;
        kf.r = PROTO_SCRYPT_R;
        kf.p = PROTO_SCRYPT_P;
    } else {
        kf.log2n = PROTO_ARGON2_LOG2M;
        kf.r = PROTO_ARGON2_T;
        kf.p = PROTO_ARGON2_P;
    }
    proto_keyfile_encode(b, &kf);
    snprintf(nm, sizeof nm, "default_params%s", name);
    emit(o, "keyfile", nm, b, sizeof b);
    snprintf(nm, sizeof nm, "short%s", name);
    emit(o, "keyfile", nm, b, sizeof b - 1);
}

static void
keyfiles(struct out *o)
{
    keyfile_one(o, PROTO_KDF_SCRYPT, "");
    keyfile_one(o, PROTO_KDF_ARGON2ID, "_argon2id");
}

static void
sealed(struct out *o)
{
    struct proto_sealer s;
    struct proto_kv kv, out = {0};
    struct lb_buf b = {0};
    uint8_t env[PROTO_SEAL_OVERHEAD + 1 + 5], aad[PROTO_CHUNK_AAD];
    struct proto_chunk c = {dg(6), PROTO_CHUNK_BLOB, PROTO_COMP_SEALED, 5,
                            env,   sizeof env};

    kv_sample(&kv);
    fixed_sealer(&s, fuzz_key);
    if (proto_meta_seal(&s, "ID", "vda", &kv, clear_a, &out) < 0)
        exit(1);
    lb_buf_put_u8(&b, 0);
    lb_buf_append(&b, proto_kv_get(&out, PROTO_META_SEALED),
                  strlen(proto_kv_get(&out, PROTO_META_SEALED)));
    emit_buf(o, "sealed", "meta_value", &b);
    lb_buf_put_u8(&b, 1);
    proto_kv_encode(&b, &kv);
    emit_buf(o, "sealed", "kv_to_seal", &b);
    /* a sealed BLOB "hello", stored as is (inner byte 0) */
    env[PROTO_SEAL_HDR] = PROTO_COMP_NONE;
    memcpy(env + PROTO_SEAL_HDR + 1, "hello", 5);
    fixed_sealer(&s, fuzz_key);
    proto_chunk_aad(aad, &c);
    if (proto_seal(&s, aad, sizeof aad, env, 6) < 0)
        exit(1);
    proto_enc_chunk(&b, PROTO_T_CHUNK_DATA, &c);
    b.data[PROTO_HDR_SIZE - 1] = 2; /* the selector, over the frame header */
    emit(o, "sealed", "chunk", b.data + PROTO_HDR_SIZE - 1,
         b.len - PROTO_HDR_SIZE + 1);
    lb_buf_reset(&b);
    /* and as a chunk file (version 2) */
    {
        uint8_t hdr[24] = {
            0x4C, 0x42, 0x43, 0x4B, 2, PROTO_CHUNK_BLOB, PROTO_COMP_SEALED};
        lb_store_be32(hdr + 8, 5);
        lb_store_be32(hdr + 12, sizeof env);
        lb_store_be32(hdr + 16, proto_crc32c(0, env, sizeof env));
        lb_buf_append(&b, hdr, sizeof hdr);
        lb_buf_append(&b, env, sizeof env);
        emit_buf(o, "chunkfile", "sealed", &b);
    }
    {
        uint8_t hdr[16] = {0x4C,           0x42, 0x43, 0x4B, 1, PROTO_CHUNK_RAW,
                           PROTO_COMP_NONE};
        lb_store_be32(hdr + 8, 5);
        lb_store_be32(hdr + 12, 5);
        lb_buf_append(&b, hdr, sizeof hdr);
        lb_buf_append(&b, "hello", 5);
        emit_buf(o, "chunkfile", "plain", &b);
        lb_buf_append(&b, hdr, sizeof hdr);
        lb_buf_append(&b, "hello!", 6);
        emit_buf(o, "chunkfile", "trailing", &b);
    }
    proto_kv_free(&kv);
    proto_kv_free(&out);
    lb_buf_free(&b);
}

int
main(int argc, char **argv)
{
    struct out o = {0};

    if (argc == 3 && strcmp(argv[1], "--check") == 0) {
        o.check = true;
        o.dir = argv[2];
    } else if (argc == 2 && argv[1][0] != '-') {
        o.dir = argv[1];
    } else {
        fprintf(stderr, "usage: %s [--check] CORPUS_DIR\n", argv[0]);
        return 2;
    }
    frames(&o);
    manifests(&o);
    json(&o);
    deltas(&o);
    sessions(&o);
    keyfiles(&o);
    sealed(&o);
    if (o.check) {
        printf("make_seeds: %u seeds checked, %u differ\n", o.n, o.bad);
        return o.bad ? 1 : 0;
    }
    printf("make_seeds: %u seeds written under %s\n", o.n, o.dir);
    return 0;
}
