/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store/seq.c: the commit order. Every commit gets a seq above every
 * backup committed before it, from REPO/seq (never the manifests' scan,
 * once the file exists); a deleted backup's number is not handed out
 * again; two writers never share one; a repository without the file, or
 * with one that does not read back, continues from its manifests.
 */
#include "store/store_int.h"
#include "tests/unit/store_util.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#define WS (64u << 10)

static char *tmp, *repo, *seqfile;
static struct store *st;

static void
setup(void)
{
    tmp = tu_mkdtemp();
    repo = lb_xasprintf("%s/repo", tmp);
    seqfile = lb_xasprintf("%s/seq", repo);
    lb_log_set_level(LB_LOG_ERROR);
    cr_assert_eq(store_init(repo, WS), 0, "%s", lb_error_msg());
    st = store_open(repo, STORE_WRITE, 0);
    cr_assert_not_null(st, "%s", lb_error_msg());
}

static void
teardown(void)
{
    store_close(st);
    tu_rm_rf(tmp);
    free(tmp);
    free(repo);
    free(seqfile);
}

TestSuite(seq, .init = setup, .fini = teardown);

/* Commit a backup of one empty window through s; its seq. */
static uint64_t
commit_one(struct store *s, char id[PROTO_ID_LEN + 1])
{
    struct proto_kv meta = {0}, dmeta = {0}, out;
    struct proto_window_rec r = {.index = 0, .op = PROTO_WIN_SET};
    struct store_txn *t = store_txn_begin(s, "vm1", "", &meta);
    uint8_t *depths = NULL;
    uint64_t nw, seq;

    cr_assert_not_null(t, "%s", lb_error_msg());
    cr_assert_eq(
        tu_disk_begin(t, "vda", WS, PROTO_DISK_FULL, &dmeta, &nw, &depths), 0);
    cr_assert_eq(store_txn_window(t, &r), 0, "%s", lb_error_msg());
    cr_assert_eq(store_txn_disk_end(t, &dmeta), 0, "%s", lb_error_msg());
    if (id)
        snprintf(id, PROTO_ID_LEN + 1, "%s", store_txn_id(t));
    cr_assert_eq(store_txn_commit(t, &meta, &out), 0, "%s", lb_error_msg());
    seq = proto_kv_get_u64(&out, "seq", 0);
    proto_kv_free(&out);
    return seq;
}

/* The seq recorded in a committed manifest, as list reads it. */
static uint64_t
listed_seq(const char *id)
{
    struct store_list l;
    uint64_t seq = 0;

    cr_assert_eq(store_list(st, NULL, &l), 0, "%s", lb_error_msg());
    for (size_t i = 0; i < l.n; i++)
        if (strcmp(l.b[i].id, id) == 0)
            seq = l.b[i].seq;
    store_list_free(&l);
    return seq;
}

Test(seq, counts_from_one_and_is_recorded)
{
    char id[PROTO_ID_LEN + 1];
    size_t len;
    uint8_t *f;

    cr_assert_eq(commit_one(st, NULL), 1);
    cr_assert_eq(commit_one(st, NULL), 2);
    cr_assert_eq(commit_one(st, id), 3);
    cr_assert_eq(listed_seq(id), 3);
    f = tu_read_file(seqfile, &len);
    cr_assert_not_null(f);
    cr_assert_eq(len, 21);
    cr_assert_arr_eq(f, "00000000000000000003\n", 21);
    free(f);
}

Test(seq, a_deleted_backups_number_is_not_reused)
{
    char id[PROTO_ID_LEN + 1];
    struct store *adm;

    commit_one(st, NULL);
    commit_one(st, id);
    store_close(st);
    adm = store_open(repo, STORE_ADMIN, 0);
    cr_assert_not_null(adm, "%s", lb_error_msg());
    cr_assert_eq(store_delete(adm, id), 0, "%s", lb_error_msg());
    store_close(adm);
    st = store_open(repo, STORE_WRITE, 0);
    cr_assert_not_null(st, "%s", lb_error_msg());
    /* Still after everything committed before, the deleted one too. */
    cr_assert_eq(commit_one(st, NULL), 3);
}

Test(seq, the_file_is_what_counts_once_it_exists)
{
    /* Not a scan per commit: a number the file says was handed out is
     * never handed out again, whatever backups/ holds. */
    tu_write_file(seqfile, "00000000000000000041\n", 21);
    cr_assert_eq(commit_one(st, NULL), 42);
    cr_assert_eq(commit_one(st, NULL), 43);
}

Test(seq, a_repository_without_the_file_continues_from_its_manifests)
{
    char id[PROTO_ID_LEN + 1];

    commit_one(st, NULL);
    commit_one(st, NULL);
    commit_one(st, NULL);
    cr_assert_eq(unlink(seqfile), 0); /* as made by an older backupd */
    cr_assert_eq(commit_one(st, id), 4);
    cr_assert_eq(listed_seq(id), 4);
    cr_assert(tu_exists(seqfile));
}

Test(seq, a_record_that_does_not_read_back_is_rebuilt)
{
    static const char *const bad[] = {
        "",                         /* empty: created, never written */
        "0000000000000000000",      /* short */
        "00000000000000000007",     /* no newline */
        "0000000000000000000x\n",   /* not a number */
        "00000000000000000009\nzz", /* trailing bytes */
        "99999999999999999999\n",   /* past 2^64 */
    };

    commit_one(st, NULL);
    commit_one(st, NULL);
    for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++) {
        tu_write_file(seqfile, bad[i], strlen(bad[i]));
        cr_assert_eq(commit_one(st, NULL), 3 + i, "record %zu", i);
    }
}

/* ---- two writers -------------------------------------------------------- */

#define WRITERS 4
#define EACH 50

struct writer {
    uint64_t got[EACH];
};

static void *
writer(void *arg)
{
    struct writer *w = arg;
    struct store *s = store_open(repo, STORE_WRITE, 0);

    if (!s)
        return NULL;
    for (int i = 0; i < EACH; i++)
        if (store_seq_next(s, &w->got[i]) < 0)
            w->got[i] = 0;
    store_close(s);
    return NULL;
}

Test(seq, writers_at_once_never_share_a_number)
{
    struct writer w[WRITERS];
    pthread_t th[WRITERS];
    static bool seen[WRITERS * EACH + 1];

    memset(w, 0, sizeof w);
    for (int i = 0; i < WRITERS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, writer, &w[i]), 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < WRITERS; i++) {
        for (int k = 0; k < EACH; k++) {
            uint64_t n = w[i].got[k];
            cr_assert(n >= 1 && n <= WRITERS * EACH, "writer %d got %llu", i,
                      (unsigned long long)n);
            cr_assert_not(seen[n], "%llu handed out twice",
                          (unsigned long long)n);
            seen[n] = true;
            /* Each writer's own numbers go up. */
            cr_assert(k == 0 || n > w[i].got[k - 1]);
        }
    }
    cr_assert_eq(commit_one(st, NULL), WRITERS * EACH + 1);
}
