/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store/verify.c: a sound repository verifies clean; after a chunk file is
 * corrupted, another deleted and a manifest truncated, verify reports the
 * damage per backup and disk, and only there.
 */
#include "store/store.h"
#include "tests/unit/store_util.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#define WS (64u << 10)

static char *tmp, *repo;
static struct store *st;
static struct store_scratch *sc;
static struct tu_chunk R1, R2, R3, D1;

static void
put(struct tu_chunk *c)
{
    uint64_t stored;

    cr_assert_geq(store_chunk_put(st, sc, &c->c, &stored), 0, "%s",
                  lb_error_msg());
}

static void
setup(void)
{
    tmp = tu_mkdtemp();
    repo = lb_xasprintf("%s/repo", tmp);
    lb_log_set_level(LB_LOG_ERROR);
    cr_assert_eq(store_init(repo, WS), 0, "%s", lb_error_msg());
    st = store_open(repo, STORE_WRITE, 0);
    cr_assert_not_null(st, "%s", lb_error_msg());
    sc = store_scratch_new();
    tu_chunk_raw(&R1, WS, 11);
    tu_chunk_raw(&R2, WS, 12);
    tu_chunk_raw(&R3, 5000, 13);
    tu_chunk_delta(&D1, WS, 1024, 14);
    put(&R1);
    put(&R2);
    put(&R3);
    put(&D1);
}

static void
teardown(void)
{
    tu_chunk_free(&R1);
    tu_chunk_free(&R2);
    tu_chunk_free(&R3);
    tu_chunk_free(&D1);
    store_scratch_free(sc);
    store_close(st);
    tu_rm_rf(tmp);
    free(tmp);
    free(repo);
}

TestSuite(verify, .init = setup, .fini = teardown);

/* One disk's windows: each entry a stack of up to two chunks. */
struct disk {
    const char *name;
    uint64_t size;
    struct tu_chunk *w[3][2];
};

/* Commit a full backup of set name with the given disks; returns its id. */
static void
backup(const char *name, const struct disk *disks, size_t ndisks,
       char id[PROTO_ID_LEN + 1])
{
    struct proto_kv meta = {0};
    struct store_txn *t = store_txn_begin(st, name, "", &meta);

    cr_assert_not_null(t, "%s", lb_error_msg());
    for (size_t i = 0; i < ndisks; i++) {
        uint64_t nw;
        uint8_t *depths;
        cr_assert_eq(tu_disk_begin(t, disks[i].name, disks[i].size,
                                   PROTO_DISK_FULL, &meta, &nw, &depths),
                     0, "%s", lb_error_msg());
        for (uint64_t k = 0; k < nw && k < 3; k++) {
            struct proto_window_rec r = {0};
            r.index = k;
            r.op = PROTO_WIN_SET;
            for (int j = 0; j < 2 && disks[i].w[k][j]; j++) {
                r.refs[j].type = disks[i].w[k][j]->c.type;
                r.refs[j].d = disks[i].w[k][j]->c.d;
                r.n++;
            }
            cr_assert_eq(store_txn_window(t, &r), 0, "%s", lb_error_msg());
        }
        cr_assert_eq(store_txn_disk_end(t, &meta), 0);
    }
    snprintf(id, PROTO_ID_LEN + 1, "%s", store_txn_id(t));
    cr_assert_eq(store_txn_commit(t, &meta, NULL), 0, "%s", lb_error_msg());
}

struct report {
    char *id, *name, *disk, *what;
};

struct reports {
    struct report r[64];
    size_t n;
    uint64_t progress_calls, last_done, last_total;
};

static void
on_damage(void *opaque, const char *id, const char *name, const char *disk,
          const char *what)
{
    struct reports *rs = opaque;

    cr_assert_lt(rs->n, LB_ARRAY_SIZE(rs->r));
    rs->r[rs->n].id = lb_xstrdup(id);
    rs->r[rs->n].name = lb_xstrdup(name);
    rs->r[rs->n].disk = lb_xstrdup(disk);
    rs->r[rs->n].what = lb_xstrdup(what);
    rs->n++;
}

static void
on_progress(void *opaque, uint64_t done, uint64_t total)
{
    struct reports *rs = opaque;

    cr_assert_leq(done, total);
    cr_assert_geq(done, rs->last_done, "progress never goes back");
    rs->progress_calls++;
    rs->last_done = done;
    rs->last_total = total;
}

static void
reports_free(struct reports *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        free(rs->r[i].id);
        free(rs->r[i].name);
        free(rs->r[i].disk);
        free(rs->r[i].what);
    }
}

/* The report about (id, disk), or NULL. */
static const struct report *
find(const struct reports *rs, const char *id, const char *disk)
{
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->r[i].id, id) == 0 && strcmp(rs->r[i].disk, disk) == 0)
            return &rs->r[i];
    return NULL;
}

static char *
chunk_path(const struct tu_chunk *c)
{
    char hex[65];

    proto_digest_hex(&c->c.d, hex);
    return lb_xasprintf("%s/chunks/%.2s/%s", repo, hex, hex);
}

/* A: vm1 (vda [R1] [R1 D1], vdb [R2]); B: vm2 (vda [R3]); C: vm3 (vda
 * [R2]). */
static void
three_backups(char a[PROTO_ID_LEN + 1], char b[PROTO_ID_LEN + 1],
              char c[PROTO_ID_LEN + 1])
{
    const struct disk da[] = {
        {"vda", 2 * WS, {{&R1, NULL}, {&R1, &D1}}},
        {"vdb", WS, {{&R2, NULL}}},
    };
    const struct disk db[] = {{"vda", 5000, {{&R3, NULL}}}};
    const struct disk dc[] = {{"vda", WS, {{&R2, NULL}}}};

    backup("vm1", da, 2, a);
    backup("vm2", db, 1, b);
    backup("vm3", dc, 1, c);
}

static uint64_t
stat_u64(const struct proto_kv *kv, const char *key)
{
    const char *v = proto_kv_get(kv, key);

    cr_assert_not_null(v, "stats lack %s", key);
    return proto_kv_get_u64(kv, key, UINT64_MAX);
}

Test(verify, sound_repository)
{
    char a[PROTO_ID_LEN + 1], b[PROTO_ID_LEN + 1], c[PROTO_ID_LEN + 1];
    struct reports rs = {0};
    struct store_verify_cb cb = {&rs, on_damage, on_progress};
    struct proto_kv stats = {0};

    three_backups(a, b, c);
    cr_assert_eq(store_verify(st, &cb, &stats), 0, "%s",
                 rs.n ? rs.r[0].what : lb_error_msg());
    cr_assert_eq(rs.n, 0);
    cr_assert_eq(stat_u64(&stats, "backups"), 3);
    cr_assert_eq(stat_u64(&stats, "backups_damaged"), 0);
    cr_assert_eq(stat_u64(&stats, "chunks"), 4);
    cr_assert_eq(stat_u64(&stats, "chunks_damaged"), 0);
    cr_assert_eq(stat_u64(&stats, "chunk_refs_missing"), 0);
    cr_assert_gt(stat_u64(&stats, "bytes"), 0);
    cr_assert_eq(rs.progress_calls, 4, "one call per chunk");
    cr_assert_eq(rs.last_done, rs.last_total);
    cr_assert_eq(rs.last_done, stat_u64(&stats, "bytes"));
    proto_kv_free(&stats);

    /* No callbacks at all is fine too. */
    cr_assert_eq(store_verify(st, NULL, &stats), 0);
    proto_kv_free(&stats);
}

Test(verify, damage_is_reported_per_backup_and_disk)
{
    char a[PROTO_ID_LEN + 1], b[PROTO_ID_LEN + 1], c[PROTO_ID_LEN + 1];
    char hex1[65], hex3[65];
    struct reports rs = {0};
    struct store_verify_cb cb = {&rs, on_damage, NULL};
    struct proto_kv stats = {0};
    CLEANUP_FREE char *p1 = chunk_path(&R1);
    CLEANUP_FREE char *p3 = chunk_path(&R3);
    CLEANUP_FREE char *mc = NULL;
    const struct report *r;
    uint8_t *f;
    size_t len;

    three_backups(a, b, c);
    proto_digest_hex(&R1.c.d, hex1);
    proto_digest_hex(&R3.c.d, hex3);

    /* R1 (used by A's vda only): one byte flipped in its data. */
    f = tu_read_file(p1, &len);
    f[len / 2] ^= 0x10;
    tu_write_file(p1, f, len);
    free(f);
    /* R3 (B's vda): gone. */
    cr_assert_eq(unlink(p3), 0);
    /* C's manifest: cut in the middle. */
    mc = lb_xasprintf("%s/backups/%s", repo, c);
    f = tu_read_file(mc, &len);
    tu_write_file(mc, f, len / 2);
    free(f);

    cr_assert_eq(store_verify(st, &cb, &stats), 1);

    r = find(&rs, "", "");
    cr_assert_not_null(r, "the damaged chunk itself is reported");
    cr_assert_neq(strstr(r->what, hex1), NULL, "%s", r->what);

    r = find(&rs, a, "vda");
    cr_assert_not_null(r, "A/vda names the damaged chunk");
    cr_assert_str_eq(r->name, "vm1");
    cr_assert_neq(strstr(r->what, hex1), NULL, "%s", r->what);
    cr_assert_neq(strstr(r->what, "damaged"), NULL, "%s", r->what);
    cr_assert_neq(strstr(r->what, "2 damaged window"), NULL,
                  "both windows use R1: %s", r->what);
    cr_assert_null(find(&rs, a, "vdb"), "A/vdb is sound");
    cr_assert_null(find(&rs, a, ""), "A's manifest is sound");

    r = find(&rs, b, "vda");
    cr_assert_not_null(r, "B/vda names the missing chunk");
    cr_assert_str_eq(r->name, "vm2");
    cr_assert_neq(strstr(r->what, hex3), NULL, "%s", r->what);
    cr_assert_neq(strstr(r->what, "missing"), NULL, "%s", r->what);

    r = find(&rs, c, "");
    cr_assert_not_null(r, "C's manifest is damaged");
    cr_assert_null(find(&rs, c, "vda"));

    cr_assert_eq(rs.n, 4, "exactly these four reports");
    cr_assert_eq(stat_u64(&stats, "backups"), 3);
    cr_assert_eq(stat_u64(&stats, "backups_damaged"), 3);
    cr_assert_eq(stat_u64(&stats, "chunks"), 3, "R3 is gone");
    cr_assert_eq(stat_u64(&stats, "chunks_damaged"), 1);
    cr_assert_eq(stat_u64(&stats, "chunk_refs_missing"), 1);
    proto_kv_free(&stats);
    reports_free(&rs);
}

Test(verify, a_chunk_only_damage_fails_verify)
{
    char a[PROTO_ID_LEN + 1], b[PROTO_ID_LEN + 1], c[PROTO_ID_LEN + 1];
    struct reports rs = {0};
    struct store_verify_cb cb = {&rs, on_damage, NULL};
    struct proto_kv stats = {0};
    struct tu_chunk orphan;
    uint64_t stored;
    CLEANUP_FREE char *p = NULL;
    uint8_t *f;
    size_t len;

    three_backups(a, b, c);
    /* A chunk no backup names, damaged: still damage. */
    tu_chunk_raw(&orphan, 3000, 99);
    cr_assert_eq(store_chunk_put(st, sc, &orphan.c, &stored), 0);
    p = chunk_path(&orphan);
    f = tu_read_file(p, &len);
    f[3] ^= 1; /* the magic */
    tu_write_file(p, f, len);
    free(f);
    cr_assert_eq(store_verify(st, &cb, &stats), 1);
    cr_assert_eq(rs.n, 1);
    cr_assert_str_eq(rs.r[0].id, "");
    cr_assert_eq(stat_u64(&stats, "backups_damaged"), 0);
    cr_assert_eq(stat_u64(&stats, "chunks_damaged"), 1);
    proto_kv_free(&stats);
    reports_free(&rs);
    tu_chunk_free(&orphan);
}

Test(verify, stray_files_are_named)
{
    struct reports rs = {0};
    struct store_verify_cb cb = {&rs, on_damage, NULL};
    struct proto_kv stats = {0};
    CLEANUP_FREE char *stray = lb_xasprintf("%s/chunks/00/notes.txt", repo);
    char hex[65];
    CLEANUP_FREE char *misplaced = NULL;

    tu_write_file(stray, "x", 1);
    /* A well-formed name in the wrong fan-out directory. */
    proto_digest_hex(&R1.c.d, hex);
    misplaced = lb_xasprintf("%s/chunks/%s/%s", repo,
                             strncmp(hex, "ff", 2) ? "ff" : "fe", hex);
    tu_write_file(misplaced, "y", 1);
    store_verify(st, &cb, &stats);
    cr_assert_eq(rs.n, 2, "%zu reports", rs.n);
    for (size_t i = 0; i < rs.n; i++) {
        cr_assert_str_eq(rs.r[i].id, "");
        cr_assert_neq(strstr(rs.r[i].what, "stray"), NULL, "%s", rs.r[i].what);
    }
    proto_kv_free(&stats);
    reports_free(&rs);
}
