/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Retention (FORMAT.md, "Retention"): which backups of a set to keep under
 * keep-last/hourly/daily/weekly/monthly/yearly rules, with restic's
 * semantics (each rule counts on its own; a backup is kept if any rule keeps
 * it), and applying the decision to a repository. The decision is a pure
 * function over times, so it is tested with chosen timestamps; calendar
 * periods are computed in UTC without the C library's time zone state.
 *
 * The latest backup of every set is always kept: incrementals and the VM
 * tracking state build on it.
 */
#include "store/store_int.h"

#include <errno.h>
#include <string.h>

static const char *const rule_names[STORE_KEEP_NRULES] = {
    "last", "hourly", "daily", "weekly", "monthly", "yearly",
};

const char *
store_keep_rule_name(enum store_keep_rule r)
{
    return (unsigned)r < STORE_KEEP_NRULES ? rule_names[r] : "?";
}

bool
store_prune_policy_any(const struct store_prune_policy *p)
{
    for (unsigned r = 0; r < STORE_KEEP_NRULES; r++)
        if (p->keep[r] > 0)
            return true;
    return false;
}

/* ---- calendar periods (UTC) -------------------------------------------- */

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if (a % b != 0 && (a < 0) != (b < 0))
        q--;
    return q;
}

/* Year and month (1..12) of a day number (days since 1970-01-01), after
 * Howard Hinnant's civil_from_days: exact for any int64 day in range. */
static void
civil_from_days(int64_t z, int64_t *year, unsigned *month)
{
    int64_t era, y;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = floor_div(z, 146097);
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = (int64_t)yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = y + (*month <= 2);
}

/* The period a backup falls in under rule r: equal values, same period.
 * For keep-last every backup is a period of its own (its position). */
static int64_t
period_of(enum store_keep_rule r, int64_t t, size_t pos)
{
    int64_t day = floor_div(t, 86400), y;
    unsigned m;

    switch (r) {
    case STORE_KEEP_LAST:
        return (int64_t)pos;
    case STORE_KEEP_HOURLY:
        return floor_div(t, 3600);
    case STORE_KEEP_DAILY:
        return day;
    case STORE_KEEP_WEEKLY:
        /* 1970-01-01 was a Thursday: +3 makes weeks start on Monday, so
         * a week number names one ISO 8601 week (whatever its ISO year). */
        return floor_div(day + 3, 7);
    case STORE_KEEP_MONTHLY:
        civil_from_days(day, &y, &m);
        return y * 12 + (int64_t)m - 1;
    case STORE_KEEP_YEARLY:
        civil_from_days(day, &y, &m);
        return y;
    default:
        return 0;
    }
}

/* ---- the decision ------------------------------------------------------ */

struct order {
    int64_t time;
    size_t pos;
};

/* Most recent first: by time, then by commit order. */
static int
cmp_recent(const void *a, const void *b)
{
    const struct order *x = a, *y = b;

    if (x->time != y->time)
        return x->time > y->time ? -1 : 1;
    if (x->pos != y->pos)
        return x->pos > y->pos ? -1 : 1;
    return 0;
}

void
store_prune_decide(const struct store_prune_policy *p,
                   struct store_prune_item *items, size_t n)
{
    struct order *o;
    int64_t last[STORE_KEEP_NRULES] = {0};
    unsigned count[STORE_KEEP_NRULES] = {0};

    for (size_t i = 0; i < n; i++) {
        items[i].keep = false;
        items[i].latest = false;
        memset(items[i].rank, 0, sizeof items[i].rank);
    }
    if (n == 0)
        return;
    o = lb_xcalloc(n, sizeof *o);
    for (size_t i = 0; i < n; i++)
        o[i] = (struct order){items[i].time, i};
    qsort(o, n, sizeof *o, cmp_recent);
    for (size_t k = 0; k < n; k++) {
        struct store_prune_item *it = &items[o[k].pos];
        for (unsigned r = 0; r < STORE_KEEP_NRULES; r++) {
            int64_t per;
            if (count[r] >= p->keep[r])
                continue;
            per = period_of((enum store_keep_rule)r, it->time, o[k].pos);
            /* The first backup met in a period is its most recent one. */
            if (count[r] > 0 && per == last[r])
                continue;
            last[r] = per;
            it->rank[r] = ++count[r];
            it->keep = true;
        }
    }
    free(o);
    items[n - 1].latest = true;
    items[n - 1].keep = true;
}

void
store_prune_reasons(const struct store_prune_item *it, char *buf, size_t len)
{
    size_t off = 0;

    if (len == 0)
        return;
    buf[0] = '\0';
    for (unsigned r = 0; r < STORE_KEEP_NRULES; r++) {
        int w;
        if (!it->rank[r])
            continue;
        w = snprintf(buf + off, len - off, "%s%s %u", off ? ", " : "",
                     rule_names[r], it->rank[r]);
        if (w < 0 || (size_t)w >= len - off)
            return;
        off += (size_t)w;
    }
    if (off == 0 && it->latest)
        snprintf(buf, len, "latest");
}

/* ---- applying it ------------------------------------------------------- */

/* A backup of the listing with its set name, for grouping by set. */
struct member {
    const char *name;
    size_t pos; /* in the listing: commit order */
};

/* Sets in name order, each in commit order. */
static int
cmp_member(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c != 0)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Decide and apply for one set: m[0..n) in commit order. */
static int
prune_set(struct store *st, const struct store_list *l, const struct member *m,
          size_t n, const struct store_prune_policy *p, bool dry_run,
          store_prune_fn fn, void *opaque, uint64_t *removed)
{
    struct store_prune_item *it = lb_xcalloc(n, sizeof *it);
    int r = 0;

    for (size_t i = 0; i < n; i++)
        it[i].time = l->b[m[i].pos].time;
    store_prune_decide(p, it, n);
    for (size_t i = 0; i < n && r == 0; i++) {
        const struct store_backup *b = &l->b[m[i].pos];
        if (!it[i].keep) {
            if (!dry_run && store_delete(st, b->id) < 0) {
                r = -1;
                break;
            }
            (*removed)++;
        }
        if (fn && fn(opaque, b, &it[i]) != 0)
            r = -1;
    }
    free(it);
    return r;
}

int
store_prune(struct store *st, const char *name,
            const struct store_prune_policy *p, bool dry_run, store_prune_fn fn,
            void *opaque, uint64_t *removed)
{
    struct store_list l;
    struct member *m;
    size_t nm = 0;
    uint64_t nrem = 0;
    int r = 0;

    if (removed)
        *removed = 0;
    if (st->append_only) {
        lb_fail(EPERM, "this repository connection is append-only: "
                       "backups cannot be pruned through it");
        errno = EPERM;
        return -1;
    }
    if (!dry_run && st->mode != STORE_ADMIN)
        return lb_fail(EPERM, "pruning needs the repository's exclusive lock");
    if (!store_prune_policy_any(p))
        return lb_fail(EINVAL, "prune needs at least one keep rule above 0");
    if (store_list(st, name, &l) < 0)
        return -1;
    m = lb_xcalloc(l.n ? l.n : 1, sizeof *m);
    for (size_t i = 0; i < l.n; i++) {
        const char *set = proto_kv_get(&l.b[i].meta, "name");
        if (set)
            m[nm++] = (struct member){set, i};
    }
    if (nm)
        qsort(m, nm, sizeof *m, cmp_member);
    for (size_t i = 0, j; i < nm && r == 0; i = j) {
        for (j = i + 1; j < nm && strcmp(m[j].name, m[i].name) == 0; j++)
            ;
        r = prune_set(st, &l, m + i, j - i, p, dry_run, fn, opaque, &nrem);
    }
    free(m);
    store_list_free(&l);
    if (removed)
        *removed = nrem;
    return r;
}
