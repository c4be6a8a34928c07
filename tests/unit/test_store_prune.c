/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store/prune.c: the keep rules over chosen timestamps (hour, day, ISO
 * week, month and year boundaries, gaps, ties, rules mixed, the latest
 * backup always kept, clocks out of order), then store_prune on a real
 * repository: dry run, removal per set, the name filter and refusals.
 */
#include "store/store.h"
#include "tests/unit/store_util.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

/* ---- the pure decision --------------------------------------------------- */

enum { LAST, HOURLY, DAILY, WEEKLY, MONTHLY, YEARLY };

static int64_t
T(const char *iso)
{
    int64_t t;

    cr_assert_eq(lb_parse_time(iso, &t), 0, "bad time %s", iso);
    return t;
}

/*
 * Decide over times[] (commit order) and compare each item's reasons with
 * expect[] ("" = removed, "latest" = kept only as the latest).
 */
static void
check_times(const struct store_prune_policy *p, const int64_t *times, size_t n,
            const char *const *expect)
{
    struct store_prune_item *it = lb_xcalloc(n ? n : 1, sizeof *it);

    for (size_t i = 0; i < n; i++)
        it[i].time = times[i];
    store_prune_decide(p, it, n);
    for (size_t i = 0; i < n; i++) {
        char why[256];
        store_prune_reasons(&it[i], why, sizeof why);
        cr_expect_str_eq(why, expect[i], "item %zu (time %lld): '%s', not '%s'",
                         i, (long long)times[i], why, expect[i]);
        cr_expect_eq(it[i].keep, expect[i][0] != '\0', "item %zu keep", i);
    }
    free(it);
}

static void
check(const struct store_prune_policy *p, const char *const *iso,
      const char *const *expect, size_t n)
{
    int64_t *t = lb_xcalloc(n ? n : 1, sizeof *t);

    for (size_t i = 0; i < n; i++)
        t[i] = T(iso[i]);
    check_times(p, t, n, expect);
    free(t);
}

#define CHECK(pol, iso, exp)                                                   \
    do {                                                                       \
        cr_assert_eq(LB_ARRAY_SIZE(iso), LB_ARRAY_SIZE(exp));                  \
        check(pol, iso, exp, LB_ARRAY_SIZE(iso));                              \
    } while (0)

Test(decide, keep_last_keeps_the_most_recent)
{
    struct store_prune_policy p = {.keep = {[LAST] = 3}};
    const char *iso[] = {"2025-01-01T00:00:00Z", "2025-01-01T00:00:01Z",
                         "2025-01-01T00:00:02Z", "2025-01-01T00:00:03Z",
                         "2025-01-01T00:00:04Z"};
    const char *exp[] = {"", "", "last 3", "last 2", "last 1"};

    CHECK(&p, iso, exp);
}

Test(decide, keep_last_more_than_there_are)
{
    struct store_prune_policy p = {.keep = {[LAST] = 10}};
    const char *iso[] = {"2025-01-01", "2025-01-02", "2025-01-03"};
    const char *exp[] = {"last 3", "last 2", "last 1"};

    CHECK(&p, iso, exp);
}

Test(decide, one_backup_is_kept)
{
    struct store_prune_policy p = {.keep = {[YEARLY] = 1}};
    const char *iso[] = {"2025-06-01T12:00:00Z"};
    const char *exp[] = {"yearly 1"};

    CHECK(&p, iso, exp);
}

Test(decide, no_backups)
{
    struct store_prune_policy p = {.keep = {[LAST] = 1}};

    check_times(&p, NULL, 0, NULL);
}

Test(decide, hourly_boundaries)
{
    struct store_prune_policy p = {.keep = {[HOURLY] = 2}};
    const char *iso[] = {"2025-03-10T10:00:00Z", "2025-03-10T10:59:59Z",
                         "2025-03-10T11:00:00Z", "2025-03-10T11:30:00Z",
                         "2025-03-10T12:00:00Z"};
    const char *exp2[] = {"", "", "", "hourly 2", "hourly 1"};
    const char *exp3[] = {"", "hourly 3", "", "hourly 2", "hourly 1"};

    CHECK(&p, iso, exp2);
    p.keep[HOURLY] = 3;
    CHECK(&p, iso, exp3);
}

Test(decide, hours_without_backups_do_not_count)
{
    /* "the N most recent hours that have backups", not the last N hours */
    struct store_prune_policy p = {.keep = {[HOURLY] = 3}};
    const char *iso[] = {"2025-03-01T01:10:00Z", "2025-03-05T07:10:00Z",
                         "2025-03-09T23:10:00Z", "2025-03-10T12:00:00Z"};
    const char *exp[] = {"", "hourly 3", "hourly 2", "hourly 1"};

    CHECK(&p, iso, exp);
}

Test(decide, daily_boundary_at_midnight_utc)
{
    struct store_prune_policy p = {.keep = {[DAILY] = 2}};
    const char *iso[] = {"2025-05-01T00:00:00Z", "2025-05-01T23:59:59Z",
                         "2025-05-02T00:00:00Z"};
    const char *exp[] = {"", "daily 2", "daily 1"};

    CHECK(&p, iso, exp);
}

Test(decide, daily_gaps_count_days_with_backups)
{
    struct store_prune_policy p = {.keep = {[DAILY] = 3}};
    const char *iso[] = {"2025-01-01T08:00:00Z", "2025-01-05T08:00:00Z",
                         "2025-01-05T20:00:00Z", "2025-01-10T08:00:00Z",
                         "2025-01-11T08:00:00Z"};
    const char *exp[] = {"", "", "daily 3", "daily 2", "daily 1"};

    CHECK(&p, iso, exp);
}

Test(decide, weekly_is_monday_to_sunday)
{
    /* 2025-03-09 is a Sunday, 2025-03-10 a Monday, 2025-03-16 a Sunday. */
    struct store_prune_policy p = {.keep = {[WEEKLY] = 3}};
    const char *iso[] = {"2025-03-03T00:00:00Z", "2025-03-09T23:59:59Z",
                         "2025-03-10T00:00:00Z", "2025-03-16T23:59:59Z",
                         "2025-03-17T00:00:00Z"};
    const char *exp[] = {"", "weekly 3", "", "weekly 2", "weekly 1"};

    CHECK(&p, iso, exp);
}

Test(decide, iso_week_spans_new_year)
{
    /* 2024-12-29 (Sunday) ends 2024-W52; 2024-12-30 (Monday) and
     * 2025-01-01 (Wednesday) are both in 2025-W01. */
    struct store_prune_policy p = {.keep = {[WEEKLY] = 2}};
    const char *iso[] = {"2024-12-29T12:00:00Z", "2024-12-30T12:00:00Z",
                         "2025-01-01T12:00:00Z"};
    const char *exp[] = {"weekly 2", "", "weekly 1"};

    CHECK(&p, iso, exp);
}

Test(decide, iso_week_53)
{
    /* 2020 had 53 ISO weeks: 2020-12-28 .. 2021-01-03 is 2020-W53. */
    struct store_prune_policy p = {.keep = {[WEEKLY] = 5}};
    const char *iso[] = {"2020-12-27T23:00:00Z", "2020-12-28T00:00:00Z",
                         "2021-01-03T23:59:59Z", "2021-01-04T00:00:00Z"};
    const char *exp[] = {"weekly 3", "", "weekly 2", "weekly 1"};

    CHECK(&p, iso, exp);
}

Test(decide, monthly_boundaries_and_leap_day)
{
    struct store_prune_policy p = {.keep = {[MONTHLY] = 4}};
    const char *iso[] = {"2024-01-31T23:59:59Z", "2024-02-01T00:00:00Z",
                         "2024-02-29T23:59:59Z", "2024-03-01T00:00:00Z",
                         "2024-03-31T10:00:00Z", "2024-12-31T23:59:59Z",
                         "2025-01-01T00:00:00Z"};
    const char *exp[] = {"",          "",          "monthly 4", "",
                         "monthly 3", "monthly 2", "monthly 1"};

    CHECK(&p, iso, exp);
}

Test(decide, monthly_keeps_the_last_of_each_month)
{
    struct store_prune_policy p = {.keep = {[MONTHLY] = 12}};
    const char *iso[] = {"2025-01-01", "2025-01-15", "2025-01-31T23:00:00Z",
                         "2025-02-01", "2025-02-14", "2025-04-02"};
    const char *exp[] = {"", "", "monthly 3", "", "monthly 2", "monthly 1"};

    CHECK(&p, iso, exp);
}

Test(decide, yearly_boundary)
{
    struct store_prune_policy p = {.keep = {[YEARLY] = 2}};
    const char *iso[] = {"2023-06-01", "2023-12-31T23:59:59Z",
                         "2024-01-01T00:00:00Z", "2024-12-31T23:59:59Z",
                         "2025-01-01T00:00:00Z"};
    const char *exp[] = {"", "", "", "yearly 2", "yearly 1"};

    CHECK(&p, iso, exp);
}

Test(decide, centuries_and_the_year_2100_rule)
{
    /* 2100 is not a leap year: 2100-02-28 + 1 day is March 1st. */
    struct store_prune_policy p = {.keep = {[MONTHLY] = 3, [DAILY] = 3}};
    const char *iso[] = {"2100-02-28T12:00:00Z", "2100-03-01T00:00:00Z",
                         "2100-03-01T23:00:00Z"};
    const char *exp[] = {"daily 2, monthly 2", "", "daily 1, monthly 1"};

    CHECK(&p, iso, exp);
}

Test(decide, every_rule_counts_on_its_own)
{
    /* restic semantics: a backup kept by keep-last still counts as its
     * day's backup for keep-daily; reasons list every rule. */
    struct store_prune_policy p = {.keep = {[LAST] = 2, [DAILY] = 3}};
    const char *iso[] = {"2025-01-01T10:00:00Z", "2025-01-01T15:00:00Z",
                         "2025-01-02T09:00:00Z", "2025-01-02T18:00:00Z",
                         "2025-01-03T08:00:00Z", "2025-01-03T20:00:00Z"};
    const char *exp[] = {"",        "daily 3", "",
                         "daily 2", "last 2",  "last 1, daily 1"};

    CHECK(&p, iso, exp);
}

Test(decide, all_rules_together)
{
    struct store_prune_policy p = {.keep = {1, 1, 1, 1, 1, 1}};
    struct store_prune_policy q = {.keep = {1, 2, 2, 2, 2, 2}};
    const char *iso[] = {"2024-11-20T08:00:00Z", "2025-01-06T08:00:00Z",
                         "2025-01-07T09:00:00Z", "2025-01-07T09:30:00Z"};
    const char *exp1[] = {"", "", "",
                          "last 1, hourly 1, daily 1, weekly 1, monthly 1, "
                          "yearly 1"};
    /* 09:00 and 09:30 share an hour and a day; Monday the 6th and
     * Tuesday the 7th share a week. */
    const char *exp2[] = {"weekly 2, monthly 2, yearly 2", "hourly 2, daily 2",
                          "",
                          "last 1, hourly 1, daily 1, weekly 1, monthly 1, "
                          "yearly 1"};

    CHECK(&p, iso, exp1);
    CHECK(&q, iso, exp2);
}

Test(decide, ties_go_to_the_later_commit)
{
    struct store_prune_policy p = {.keep = {[LAST] = 1}};
    struct store_prune_policy d = {.keep = {[DAILY] = 1}};
    const int64_t t[] = {1000, 5000, 5000};
    const char *exp[] = {"", "", "last 1"};
    const char *expd[] = {"", "", "daily 1"};

    check_times(&p, t, 3, exp);
    check_times(&d, t, 3, expd);
}

Test(decide, the_latest_is_always_kept)
{
    /* The clock went back: the last commit (which incrementals build on)
     * is not the most recent by time; no rule keeps it, it stays. */
    struct store_prune_policy p = {.keep = {[LAST] = 1}};
    const int64_t t[] = {100000, 300000, 200000};
    const char *exp[] = {"", "last 1", "latest"};

    check_times(&p, t, 3, exp);
}

Test(decide, latest_flag_is_set_on_the_last_commit_only)
{
    struct store_prune_policy p = {.keep = {[LAST] = 5}};
    struct store_prune_item it[3] = {{.time = 1}, {.time = 2}, {.time = 3}};

    store_prune_decide(&p, it, 3);
    cr_assert(!it[0].latest && !it[1].latest && it[2].latest);
    cr_assert_eq(it[2].rank[STORE_KEEP_LAST], 1);
    cr_assert_eq(it[0].rank[STORE_KEEP_LAST], 3);
}

Test(decide, out_of_order_times_are_ranked_by_time)
{
    struct store_prune_policy p = {.keep = {[DAILY] = 2}};
    const char *iso[] = {"2025-01-03T10:00:00Z", "2025-01-01T10:00:00Z",
                         "2025-01-02T10:00:00Z", "2025-01-03T09:00:00Z"};
    /* day 3: 10:00 is its most recent (not the later commit at 09:00,
     * which is kept only as the latest); day 2 is the second day. */
    const char *exp[] = {"daily 1", "", "daily 2", "latest"};

    CHECK(&p, iso, exp);
}

Test(decide, times_before_1970_use_floor_division)
{
    /* -1 is 1969-12-31T23:59:59Z: another hour, day, month and year than
     * 0. Truncating division would put them together. */
    struct store_prune_policy p = {.keep = {[HOURLY] = 5}};
    const int64_t t[] = {-3601, -1, 0};
    const char *exp[] = {"hourly 3", "hourly 2", "hourly 1"};
    struct store_prune_policy y = {.keep = {[YEARLY] = 5}};
    const char *expy[] = {"", "yearly 2", "yearly 1"};

    check_times(&p, t, 3, exp);
    check_times(&y, t, 3, expy);
}

Test(decide, thousands_of_hourly_backups)
{
    struct store_prune_policy p = {
        .keep = {[LAST] = 3, [DAILY] = 7, [WEEKLY] = 4, [MONTHLY] = 6}};
    const size_t n = 24 * 365;
    struct store_prune_item *it = lb_xcalloc(n, sizeof *it);
    int64_t start = T("2025-01-01T00:30:00Z");
    size_t kept = 0;

    for (size_t i = 0; i < n; i++)
        it[i].time = start + (int64_t)i * 3600;
    store_prune_decide(&p, it, n);
    for (size_t i = 0; i < n; i++)
        kept += it[i].keep;
    /* 3 last (23:30, 22:30, 21:30 of Wednesday Dec 31), the 23:30 of 7
     * days (Dec 25..31), of 4 weeks (Dec 31, then Sundays Dec 28, 21,
     * 14) and of 6 months (Jul..Dec): 16 backups, overlaps counted once. */
    cr_assert(it[n - 1].keep && it[n - 2].keep && it[n - 3].keep);
    cr_assert_eq(it[n - 1].rank[STORE_KEEP_DAILY], 1);
    cr_assert_eq(it[n - 1 - 6 * 24].rank[STORE_KEEP_DAILY], 7);
    cr_assert_eq(it[n - 1 - 7 * 24].rank[STORE_KEEP_DAILY], 0);
    /* Sunday 2025-12-28 23:30 ends the second week */
    cr_assert_eq(it[n - 1 - 3 * 24].rank[STORE_KEEP_WEEKLY], 2);
    cr_assert_eq(kept, 3 - 1 + 7 + 4 - 2 + 6 - 1, "kept %zu", kept);
    free(it);
}

Test(decide, reasons_truncate_safely)
{
    struct store_prune_item it = {.keep = true, .rank = {1, 2, 3, 4, 5, 6}};
    char small[12], one[1];

    memset(small, 'x', sizeof small);
    store_prune_reasons(&it, small, sizeof small);
    cr_assert_lt(strlen(small), sizeof small);
    store_prune_reasons(&it, one, sizeof one);
    cr_assert_eq(one[0], '\0');
    it = (struct store_prune_item){0};
    store_prune_reasons(&it, small, sizeof small);
    cr_assert_str_eq(small, "", "a removed backup has no reasons");
}

Test(decide, policy_and_rule_names)
{
    struct store_prune_policy none = {{0}}, one = {.keep = {[MONTHLY] = 1}};

    cr_assert_not(store_prune_policy_any(&none));
    cr_assert(store_prune_policy_any(&one));
    cr_assert_str_eq(store_keep_rule_name(STORE_KEEP_LAST), "last");
    cr_assert_str_eq(store_keep_rule_name(STORE_KEEP_WEEKLY), "weekly");
    cr_assert_str_eq(store_keep_rule_name(STORE_KEEP_YEARLY), "yearly");
    cr_assert_str_eq(store_keep_rule_name(STORE_KEEP_NRULES), "?");
}

/* ---- applied to a repository --------------------------------------------- */

#define WS (64u << 10)

static char *tmp, *repo;

static void
setup(void)
{
    tmp = tu_mkdtemp();
    repo = lb_xasprintf("%s/repo", tmp);
    lb_log_set_level(LB_LOG_ERROR);
    lb_error_clear();
    cr_assert_eq(store_init(repo, WS), 0, "%s", lb_error_msg());
}

static void
teardown(void)
{
    unsetenv("LIVEBACKUP_FAKE_TIME");
    tu_rm_rf(tmp);
    free(tmp);
    free(repo);
}

TestSuite(apply, .init = setup, .fini = teardown);

/* A one-window backup of set name at time iso (the server's clock). */
static void
backup_at(const char *name, const char *iso, char id[PROTO_ID_LEN + 1])
{
    struct store *st = store_open(repo, STORE_WRITE, 0);
    struct store_scratch *sc = store_scratch_new();
    struct proto_kv meta = {0};
    struct store_txn *t;
    struct tu_chunk c;
    struct proto_window_rec r = {0};
    uint64_t nw, stored;
    uint8_t *depths;

    cr_assert_not_null(st, "%s", lb_error_msg());
    setenv("LIVEBACKUP_FAKE_TIME", iso, 1);
    tu_chunk_raw(&c, 4096, (uint32_t)T(iso));
    cr_assert_geq(store_chunk_put(st, sc, &c.c, &stored), 0);
    t = store_txn_begin(st, name, "", &meta);
    cr_assert_not_null(t, "%s", lb_error_msg());
    cr_assert_eq(
        tu_disk_begin(t, "vda", 4096, PROTO_DISK_FULL, &meta, &nw, &depths), 0);
    tu_rec(&r, 0, PROTO_WIN_SET, 1, PROTO_CHUNK_RAW, &c.c.d);
    cr_assert_eq(store_txn_window(t, &r), 0, "%s", lb_error_msg());
    cr_assert_eq(store_txn_disk_end(t, &meta), 0);
    snprintf(id, PROTO_ID_LEN + 1, "%s", store_txn_id(t));
    cr_assert_eq(store_txn_commit(t, &meta, NULL), 0, "%s", lb_error_msg());
    unsetenv("LIVEBACKUP_FAKE_TIME");
    tu_chunk_free(&c);
    store_scratch_free(sc);
    store_close(st);
}

struct seen {
    char line[16][96];
    size_t n;
    int fail_at; /* stop with an error at this call (0: never) */
};

static int
on_entry(void *opaque, const struct store_backup *b,
         const struct store_prune_item *it)
{
    struct seen *s = opaque;
    char why[64];

    cr_assert_lt(s->n, LB_ARRAY_SIZE(s->line));
    store_prune_reasons(it, why, sizeof why);
    snprintf(s->line[s->n], sizeof s->line[0], "%s %s %s %s",
             proto_kv_get(&b->meta, "name"), b->id,
             it->keep ? "keep" : "remove", why);
    s->n++;
    if (s->fail_at && (int)s->n == s->fail_at)
        return lb_fail(EIO, "stop");
    return 0;
}

static bool
exists(const char *id)
{
    CLEANUP_FREE char *p = lb_xasprintf("%s/backups/%s", repo, id);

    return tu_exists(p);
}

/* b: vm-b at days 1, 2, 3; a: vm-a at days 1 (twice) and 3. */
static char a1[21], a2[21], a3[21], b1[21], b2[21], b3[21];

static void
two_sets(void)
{
    backup_at("vm-b", "2025-01-01T10:00:00Z", b1);
    backup_at("vm-a", "2025-01-01T11:00:00Z", a1);
    backup_at("vm-a", "2025-01-01T12:00:00Z", a2);
    backup_at("vm-b", "2025-01-02T10:00:00Z", b2);
    backup_at("vm-b", "2025-01-03T10:00:00Z", b3);
    backup_at("vm-a", "2025-01-03T11:00:00Z", a3);
}

Test(apply, dry_run_changes_nothing_and_reports_by_set)
{
    struct store_prune_policy p = {.keep = {[DAILY] = 1}};
    struct store *st;
    struct seen s = {0};
    uint64_t removed;
    char want[96];

    two_sets();
    st = store_open(repo, STORE_READ, 0); /* a dry run needs no lock */
    cr_assert_not_null(st);
    cr_assert_eq(store_prune(st, NULL, &p, true, on_entry, &s, &removed), 0,
                 "%s", lb_error_msg());
    store_close(st);
    cr_assert_eq(removed, 4);
    cr_assert_eq(s.n, 6);
    /* sets in name order, each oldest first */
    snprintf(want, sizeof want, "vm-a %s remove ", a1);
    cr_assert_str_eq(s.line[0], want);
    snprintf(want, sizeof want, "vm-a %s remove ", a2);
    cr_assert_str_eq(s.line[1], want);
    snprintf(want, sizeof want, "vm-a %s keep daily 1", a3);
    cr_assert_str_eq(s.line[2], want);
    snprintf(want, sizeof want, "vm-b %s remove ", b1);
    cr_assert_str_eq(s.line[3], want);
    snprintf(want, sizeof want, "vm-b %s keep daily 1", b3);
    cr_assert_str_eq(s.line[5], want);
    cr_assert(exists(a1) && exists(a2) && exists(b1) && exists(b2));
}

Test(apply, prune_removes_per_set)
{
    struct store_prune_policy p = {.keep = {[DAILY] = 2}};
    struct store *st;
    uint64_t removed;

    two_sets();
    st = store_open(repo, STORE_ADMIN, 0);
    cr_assert_not_null(st);
    cr_assert_eq(store_prune(st, NULL, &p, false, NULL, NULL, &removed), 0,
                 "%s", lb_error_msg());
    store_close(st);
    cr_assert_eq(removed, 2);
    cr_assert(!exists(a1) && exists(a2) && exists(a3));
    cr_assert(!exists(b1) && exists(b2) && exists(b3));
}

Test(apply, name_filter_prunes_one_set)
{
    struct store_prune_policy p = {.keep = {[LAST] = 1}};
    struct store *st;
    struct seen s = {0};
    uint64_t removed;

    two_sets();
    st = store_open(repo, STORE_ADMIN, 0);
    cr_assert_eq(store_prune(st, "vm-b", &p, false, on_entry, &s, &removed), 0);
    cr_assert_eq(removed, 2);
    cr_assert_eq(s.n, 3);
    cr_assert(exists(a1) && exists(a2) && exists(a3));
    cr_assert(!exists(b1) && !exists(b2) && exists(b3));
    /* nothing more to do: the latest stays whatever the rules say */
    cr_assert_eq(store_prune(st, "vm-b", &p, false, NULL, NULL, &removed), 0);
    cr_assert_eq(removed, 0);
    cr_assert_eq(store_prune(st, "nobody", &p, false, NULL, NULL, &removed), 0);
    cr_assert_eq(removed, 0);
    store_close(st);
}

Test(apply, refusals)
{
    struct store_prune_policy p = {.keep = {[LAST] = 1}}, none = {{0}};
    struct store *st;

    two_sets();
    st = store_open(repo, STORE_WRITE, 0);
    cr_assert_eq(store_prune(st, NULL, &p, false, NULL, NULL, NULL), -1);
    cr_assert_eq(lb_error_errno(), EPERM);
    cr_assert(strstr(lb_error_msg(), "exclusive lock"), "%s", lb_error_msg());
    store_close(st);

    st = store_open(repo, STORE_ADMIN, 0);
    cr_assert_eq(store_prune(st, NULL, &none, true, NULL, NULL, NULL), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    store_set_append_only(st, true);
    cr_assert_eq(store_prune(st, NULL, &p, false, NULL, NULL, NULL), -1);
    cr_assert_eq(lb_error_errno(), EPERM);
    cr_assert(strstr(lb_error_msg(), "append-only"), "%s", lb_error_msg());
    cr_assert_eq(store_prune(st, NULL, &p, true, NULL, NULL, NULL), -1,
                 "not even a dry run through an append-only connection");
    store_close(st);
    cr_assert(exists(a1) && exists(b1), "nothing was removed");
}

Test(apply, a_callback_error_stops_the_prune)
{
    struct store_prune_policy p = {.keep = {[LAST] = 1}};
    struct store *st;
    struct seen s = {.fail_at = 1};
    uint64_t removed;

    two_sets();
    st = store_open(repo, STORE_ADMIN, 0);
    cr_assert_eq(store_prune(st, NULL, &p, false, on_entry, &s, &removed), -1);
    store_close(st);
    cr_assert_eq(s.n, 1);
    cr_assert_eq(removed, 1, "the first removal was applied and reported");
    cr_assert(!exists(a1) && exists(a2) && exists(b1));
}
