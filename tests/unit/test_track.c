/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * agent/live/track.c: the journal. Its state machine as a backup drives
 * it (idle, prepared, switched, committed, blockcommit, idle), each step
 * written and read back as a crash would find it; the acknowledged point
 * an incremental is taken since; the per-domain lock; and the text format
 * (round trip, escaping, and what a parser must refuse). The format is
 * also fuzzed (fuzz/fuzz_track.c).
 */
#include "agent/live/track.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#define UUID "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
#define ID1 "20261123-124820-a879"
#define ID2 "20261124-013002-c0a7"

static char *dir;

static void
setup(void)
{
    dir = tu_mkdtemp();
    setenv("LIVEBACKUP_STATE_DIR", dir, 1);
    lb_log_set_level(LB_LOG_ERROR);
}

static void
teardown(void)
{
    tu_rm_rf(dir);
    free(dir);
}

TestSuite(track, .init = setup, .fini = teardown);

/* What a crash at this point would leave for the next run. */
static void
peek(struct track_state *out)
{
    cr_assert_eq(track_peek(UUID, out), 0, "%s", lb_error_msg());
}

Test(track, a_backup_walks_the_steps_and_each_is_durable)
{
    struct track_state *st, seen;
    struct track_handle *h = track_open(UUID, "web1", &st);
    struct track_disk *d;

    cr_assert_not_null(h, "%s", lb_error_msg());
    cr_assert_eq(track_peek(UUID, &seen), 1, "nothing journaled yet");
    cr_assert_eq(st->step, TRACK_IDLE);

    /* Enrolment: prepare an overlay over the user's image. */
    d = track_disk_add(st, "vda");
    d->user_top = lb_xstrdup("/img/web1 vda.qcow2"); /* a space survives */
    d->user_fmt = lb_xstrdup("qcow2");
    d->size = 8ull << 30;
    d->newov = lb_xstrdup("/img/web1-vda.lbtrack-1.qcow2");
    st->step = TRACK_PREPARED;
    cr_assert_eq(track_save(h), 0, "%s", lb_error_msg());
    peek(&seen);
    cr_assert_eq(seen.step, TRACK_PREPARED);
    cr_assert_str_eq(seen.d[0].newov, "/img/web1-vda.lbtrack-1.qcow2");
    cr_assert_eq(seen.d[0].nov, 0);
    cr_assert_str_eq(track_acked_point(&seen.d[0]), "/img/web1 vda.qcow2");
    track_free(&seen);

    /* Switched: the guest runs on it. */
    d->ov[d->nov++] = d->newov;
    d->newov = NULL;
    st->step = TRACK_SWITCHED;
    cr_assert_eq(track_save(h), 0);
    peek(&seen);
    cr_assert_eq(seen.step, TRACK_SWITCHED);
    cr_assert_null(seen.d[0].newov);
    cr_assert_eq(seen.d[0].nov, 1);
    cr_assert_eq(seen.d[0].acked, 0);
    track_free(&seen);

    /* Committed: the repository acknowledged ID1. */
    st->step = TRACK_COMMITTED;
    snprintf(st->backup, sizeof st->backup, ID1);
    snprintf(st->last_backup, sizeof st->last_backup, ID1);
    snprintf(st->repo_id, sizeof st->repo_id, "0123456789abcdef");
    snprintf(d->last_backup, sizeof d->last_backup, ID1);
    d->acked = d->nov - 1; /* the active overlay is not acknowledged */
    cr_assert_eq(track_save(h), 0);
    peek(&seen);
    cr_assert_eq(seen.step, TRACK_COMMITTED);
    cr_assert_str_eq(seen.backup, ID1);
    cr_assert_str_eq(seen.last_backup, ID1);
    cr_assert_str_eq(seen.repo_id, "0123456789abcdef");
    cr_assert_str_eq(seen.d[0].last_backup, ID1);
    track_free(&seen);

    /* Next backup: a second overlay, then both acknowledged. */
    d->ov[d->nov++] = lb_xstrdup("/img/web1-vda.lbtrack-2.qcow2");
    d->acked = 1;
    d->incrementals = 1;
    st->step = TRACK_BLOCKCOMMIT;
    cr_assert_eq(track_save(h), 0);
    peek(&seen);
    cr_assert_eq(seen.step, TRACK_BLOCKCOMMIT);
    cr_assert_eq(seen.d[0].nov, 2);
    cr_assert_eq(seen.d[0].acked, 1);
    cr_assert_eq(seen.d[0].incrementals, 1);
    cr_assert_str_eq(track_acked_point(&seen.d[0]),
                     "/img/web1-vda.lbtrack-1.qcow2");
    track_free(&seen);

    st->step = TRACK_IDLE;
    cr_assert_eq(track_save(h), 0);
    peek(&seen);
    cr_assert_eq(seen.step, TRACK_IDLE);
    cr_assert_str_eq(seen.name, "web1");
    cr_assert_str_eq(seen.uuid, UUID);
    track_free(&seen);

    cr_assert_eq(track_remove(h), 0);
    cr_assert_eq(track_peek(UUID, &seen), 1, "untracked: no state");
    track_close(h);
}

Test(track, one_agent_per_domain)
{
    struct track_state *st, *st2;
    struct track_handle *h = track_open(UUID, "web1", &st);
    struct track_handle *h2;

    cr_assert_not_null(h);
    h2 = track_open(UUID, "web1", &st2);
    cr_assert_null(h2, "a second agent is refused at once");
    cr_assert_eq(lb_error_errno(), EWOULDBLOCK);
    cr_assert(strstr(lb_error_msg(), "another livebackup (pid ") != NULL, "%s",
              lb_error_msg());
    track_close(h);
    h2 = track_open(UUID, "web1", &st2);
    cr_assert_not_null(h2, "free again: %s", lb_error_msg());
    track_close(h2);
}

Test(track, a_damaged_state_is_refused_with_a_way_out)
{
    CLEANUP_FREE char *file = lb_xasprintf("%s/%s.state", dir, UUID);
    struct track_state *st;

    tu_write_file(file, "livebackup-track 2\n", 19);
    cr_assert_null(track_open(UUID, "web1", &st));
    cr_assert(strstr(lb_error_msg(), file) != NULL, "%s", lb_error_msg());
    cr_assert(strstr(lb_error_hint_msg(), "move the file aside") != NULL);
}

Test(track, format_round_trip)
{
    struct track_state a = {0}, b;
    struct track_disk *d;
    CLEANUP_FREE char *t1 = NULL;
    CLEANUP_FREE char *t2 = NULL;

    snprintf(a.name, sizeof a.name, "web-%%1 ,x");
    snprintf(a.uuid, sizeof a.uuid, UUID);
    a.step = TRACK_SWITCHED;
    snprintf(a.last_backup, sizeof a.last_backup, ID2);
    a.attempt_time = 1795397400;
    a.attempt_ok = false;
    snprintf(a.attempt_msg, sizeof a.attempt_msg, "web1 is paused: -");
    a.last_time = 1795397000;
    a.last_size = 1ull << 40;
    a.last_freeze_ms = 173;
    d = track_disk_add(&a, "vdb");
    d->user_top = lb_xstrdup("-");
    d->user_fmt = lb_xstrdup("raw");
    d->size = 1;
    for (int i = 0; i < TRACK_MAX_OVERLAYS; i++)
        d->ov[d->nov++] = lb_xasprintf("/o,%d=%%", i);
    d->acked = TRACK_MAX_OVERLAYS;
    t1 = track_format(&a);
    cr_assert_eq(track_parse(t1, strlen(t1), &b), 0, "%s\n%s", lb_error_msg(),
                 t1);
    t2 = track_format(&b);
    cr_assert_str_eq(t1, t2);
    cr_assert_str_eq(b.name, "web-%1 ,x");
    cr_assert_str_eq(b.attempt_msg, "web1 is paused: -");
    cr_assert_eq(b.last_size, 1ull << 40);
    cr_assert_str_eq(b.d[0].user_top, "-");
    cr_assert_str_eq(b.d[0].ov[63], "/o,63=%");
    cr_assert_str_eq(track_acked_point(&b.d[0]), "/o,63=%");
    track_free(&a);
    track_free(&b);
}

Test(track, parse_refuses)
{
    static const char *const bad[] = {
        "",
        "livebackup-track 2\n",
        "name web1\nlivebackup-track 1\n",
        "livebackup-track 1\nstep running\n",
        "livebackup-track 1\nbackup not-an-id\n",
        "livebackup-track 1\nname a%0\n",
        "livebackup-track 1\nname a%00b\n",
        "livebackup-track 1\nname a\tb\n",
        "livebackup-track 1\nnoval\n",
        "livebackup-track 1\ndisk vda fmt=raw\n",                /* no top */
        "livebackup-track 1\ndisk vda top=/a fmt=raw acked=1\n", /* > nov */
        "livebackup-track 1\ndisk vda top=/a fmt=raw size=-1\n",
        "livebackup-track 1\ndisk vda top=/a fmt=raw size=\n",
        "livebackup-track 1\ndisk vda top=/a fmt=raw last=x\n",
        "livebackup-track 1\ndisk vda top=/a fmt=raw ov=/a,,/b\n",
        "livebackup-track 1\ndisk vda top=/a fmt=raw junk\n",
        "livebackup-track 1\ndisk ../x top=/a fmt=raw\n",
        "livebackup-track 1\ndisk vda top=/a fmt=raw\n"
        "disk vda top=/b fmt=raw\n", /* twice */
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct track_state st;
        lb_error_clear();
        cr_expect_eq(track_parse(bad[i], strlen(bad[i]), &st), -1, "%zu: %s", i,
                     bad[i]);
        cr_expect_eq(lb_error_errno(), EPROTO, "%zu", i);
        cr_expect_eq(st.nd, 0, "%zu: nothing left allocated", i);
    }
}

Test(track, unknown_fields_of_a_newer_version_are_ignored)
{
    static const char text[] = "livebackup-track 1\nname web1\nfuture x\n"
                               "disk vda top=/a fmt=raw colour=blue ov=-\n";
    struct track_state st;

    cr_assert_eq(track_parse(text, strlen(text), &st), 0, "%s", lb_error_msg());
    cr_assert_eq(st.nd, 1);
    cr_assert_eq(st.d[0].nov, 0);
    track_free(&st);
}

Test(track, too_many_overlays)
{
    struct lb_buf b = {0};
    struct track_state st;

    lb_buf_append(&b, "livebackup-track 1\ndisk vda top=/a fmt=raw ov=", 46);
    for (int i = 0; i <= TRACK_MAX_OVERLAYS; i++) {
        char o[16];
        snprintf(o, sizeof o, "%s/o%d", i ? "," : "", i);
        lb_buf_append(&b, o, strlen(o));
    }
    lb_buf_put_u8(&b, '\n');
    cr_assert_eq(track_parse((char *)b.data, b.len, &st), -1);
    cr_assert(strstr(lb_error_msg(), "too many overlays") != NULL);
    lb_buf_free(&b);
}

Test(track, step_names)
{
    cr_assert_str_eq(track_step_name(TRACK_IDLE), "idle");
    cr_assert_str_eq(track_step_name(TRACK_BLOCKCOMMIT), "blockcommit");
    cr_assert_str_eq(track_step_name(TRACK_COMMITTING), "committing");
    cr_assert_str_eq(track_step_name((enum track_step)99), "?");
}
