/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * agent/live/decide.c: full or incremental for one disk, and why. One row
 * per case, like libvirt's qemuBackup* checks: the facts the backup
 * gathers, and what it must decide.
 */
#include "agent/live/live.h"

#include <criterion/criterion.h>
#include <string.h>

#define GiB (1ull << 30)

/* A tracked disk whose chain, parent and size are all as the journal
 * says, with two incrementals behind it: an incremental. */
static const struct livebk_disk_facts healthy = {
    .tracked = true,
    .parent_ok = true,
    .last_backup = "20261123-124820-a879",
    .chain_intact = true,
    .tracked_size = 8 * GiB,
    .size = 8 * GiB,
    .incrementals = 2,
};

struct row {
    const char *name;
    struct livebk_disk_facts f;
    bool incremental, keep, lost;
    const char *why; /* exact, or NULL for "" */
};

static struct livebk_disk_facts
with(void (*change)(struct livebk_disk_facts *))
{
    struct livebk_disk_facts f = healthy;
    change(&f);
    return f;
}

static void
untracked(struct livebk_disk_facts *f)
{
    f->tracked = false;
    f->chain_intact = false;
}
static void
full(struct livebk_disk_facts *f)
{
    f->full = true;
}
static void
full_broken_chain(struct livebk_disk_facts *f)
{
    f->full = true;
    f->chain_intact = false;
    f->chain_why = "its image is now /x, not the tracking overlay";
}
static void
parent_gone(struct livebk_disk_facts *f)
{
    f->parent_ok = false;
}
static void
parent_gone_chain_broken(struct livebk_disk_facts *f)
{
    f->parent_ok = false;
    f->chain_intact = false;
}
static void
other_repo(struct livebk_disk_facts *f)
{
    f->parent_ok = false;
    f->other_repo = true;
}
static void
chain_broken(struct livebk_disk_facts *f)
{
    f->chain_intact = false;
    f->chain_why = "its backing chain was changed (found /a where /b should "
                   "be)";
}
static void
chain_broken_resized(struct livebk_disk_facts *f)
{
    chain_broken(f);
    f->size = 16 * GiB;
}
static void
resized(struct livebk_disk_facts *f)
{
    f->size = 16 * GiB;
}
static void
every3_due(struct livebk_disk_facts *f)
{
    f->full_every = 3; /* 2 incrementals behind: the third backup is full */
}
static void
every4_not_due(struct livebk_disk_facts *f)
{
    f->full_every = 4;
}
static void
every1(struct livebk_disk_facts *f)
{
    f->full_every = 1;
    f->incrementals = 0;
}
static void
full_and_every(struct livebk_disk_facts *f)
{
    f->full = true;
    f->full_every = 3;
}
static void
resized_and_every(struct livebk_disk_facts *f)
{
    f->size = 4 * GiB;
    f->full_every = 3;
}
static void
untracked_full(struct livebk_disk_facts *f)
{
    untracked(f);
    f->full = true;
    f->parent_ok = false;
}

Test(decide, table)
{
    const struct row rows[] = {
        {"healthy", healthy, true, true, false, NULL},
        {"first backup", with(untracked), false, false, false,
         "first backup of this disk"},
        {"first backup beats --full", with(untracked_full), false, false, false,
         "first backup of this disk"},
        {"--full keeps the overlays", with(full), false, true, false, "--full"},
        {"--full on a changed chain starts afresh", with(full_broken_chain),
         false, false, false, "--full"},
        {"parent gone", with(parent_gone), false, true, true,
         "its last backup 20261123-124820-a879 is gone from the repository"},
        {"parent gone, chain changed", with(parent_gone_chain_broken), false,
         false, true,
         "its last backup 20261123-124820-a879 is gone from the repository"},
        {"another repository", with(other_repo), false, true, true,
         "tracking refers to another repository"},
        {"chain changed", with(chain_broken), false, false, true,
         "its backing chain was changed (found /a where /b should be)"},
        {"chain changed beats resize", with(chain_broken_resized), false, false,
         true, "its backing chain was changed (found /a where /b should be)"},
        {"resized", with(resized), false, true, true,
         "it was resized (8589934592 -> 17179869184 bytes)"},
        {"--full-every 3, third backup", with(every3_due), false, true, false,
         "--full-every 3"},
        {"--full-every 4, third backup", with(every4_not_due), true, true,
         false, NULL},
        {"--full-every 1", with(every1), false, true, false, "--full-every 1"},
        {"--full beats --full-every", with(full_and_every), false, true, false,
         "--full"},
        {"resize beats --full-every", with(resized_and_every), false, true,
         true, "it was resized (8589934592 -> 4294967296 bytes)"},
    };

    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        struct livebk_decision d;

        memset(&d, 0xa5, sizeof d); /* every field must be set */
        livebk_decide(&r->f, &d);
        cr_expect_eq(d.incremental, r->incremental, "%s: incremental", r->name);
        cr_expect_eq(d.keep, r->keep, "%s: keep", r->name);
        cr_expect_eq(d.lost, r->lost, "%s: lost", r->name);
        cr_expect_str_eq(d.why, r->why ? r->why : "", "%s: why", r->name);
    }
}

Test(decide, incrementals_count_up_to_the_full)
{
    /* --full-every 4: incrementals 0, 1, 2, then a full. */
    struct livebk_disk_facts f = healthy;
    struct livebk_decision d;
    unsigned n;

    f.full_every = 4;
    for (n = 0; n < 10; n++) {
        f.incrementals = n;
        livebk_decide(&f, &d);
        if (!d.incremental)
            break;
    }
    cr_assert_eq(n, 3);
    cr_assert_str_eq(d.why, "--full-every 4");
}

Test(decide, long_chain_reason_is_cut_not_overrun)
{
    struct livebk_disk_facts f = healthy;
    struct livebk_decision d;
    char why[2000];

    memset(why, 'x', sizeof why - 1);
    why[sizeof why - 1] = '\0';
    f.chain_intact = false;
    f.chain_why = why;
    livebk_decide(&f, &d);
    cr_assert_eq(strlen(d.why), sizeof d.why - 1);
    cr_assert_not(d.incremental);
}
