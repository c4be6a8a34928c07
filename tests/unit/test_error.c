/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * common/error.c: the per-thread error slot (message, errno class, hint,
 * prefixing) that every module reports through.
 */
#include "common/common.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
clear(void)
{
    lb_error_clear();
}

TestSuite(error, .init = clear);

Test(error, records_message_and_errno)
{
    errno = EAGAIN;
    cr_assert_eq(lb_error(ENOENT, "open %s", "/x/y"), -1);
    cr_assert_eq(errno, EAGAIN, "lb_error must preserve errno");
    cr_assert_eq(lb_error_errno(), ENOENT);
    cr_assert_str_eq(lb_error_msg(), "open /x/y: No such file or directory");
}

Test(error, errnum_zero_adds_no_suffix)
{
    lb_error(0, "plain %d", 7);
    cr_assert_str_eq(lb_error_msg(), "plain 7");
    cr_assert_eq(lb_error_errno(), 0);
}

Test(error, fail_classifies_without_strerror)
{
    errno = EINTR;
    cr_assert_eq(lb_fail(ENOENT, "no backup %s", "x"), -1);
    cr_assert_eq(errno, EINTR, "lb_fail must preserve errno");
    cr_assert_str_eq(lb_error_msg(), "no backup x");
    cr_assert_eq(lb_error_errno(), ENOENT);
    lb_error_hint("h");
    lb_fail(EINVAL, "next");
    cr_assert_str_eq(lb_error_hint_msg(), "", "lb_fail clears the hint");
    cr_assert_eq(lb_error_errno(), EINVAL);
}

Test(error, empty_slot_reads_unknown)
{
    cr_assert_str_eq(lb_error_msg(), "unknown error");
    cr_assert_eq(lb_error_errno(), 0);
    cr_assert_str_eq(lb_error_hint_msg(), "");
}

Test(error, prefix_adds_context)
{
    lb_error(EIO, "read chunk");
    lb_error_prefix("backup %s", "20261123-114600-abcd");
    cr_assert_str_eq(lb_error_msg(), "backup 20261123-114600-abcd: read "
                                     "chunk: Input/output error");
    cr_assert_eq(lb_error_errno(), EIO, "prefix keeps the errno class");
    lb_error_prefix("outer");
    cr_assert_eq(strncmp(lb_error_msg(), "outer: backup ", 14), 0);
}

Test(error, prefix_truncates_long_messages_safely)
{
    char big[2000], pre[600];

    memset(big, 'm', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memset(pre, 'p', sizeof pre - 1);
    pre[sizeof pre - 1] = '\0';
    lb_error(0, "%s", big);
    cr_assert_eq(strlen(lb_error_msg()), 1023, "message truncated to slot");
    lb_error_prefix("%s", pre);
    /* The prefix itself is cut to 511 bytes, then ": ", then what fits. */
    cr_assert_eq(strlen(lb_error_msg()), 1023);
    cr_assert_eq(lb_error_msg()[510], 'p');
    cr_assert_eq(lb_error_msg()[511], ':');
    cr_assert_eq(lb_error_msg()[512], ' ');
    cr_assert_eq(lb_error_msg()[513], 'm');
}

Test(error, full_message_drops_the_strerror_suffix)
{
    char big[1500];

    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    lb_error(ENOSPC, "%s", big);
    cr_assert_eq(strlen(lb_error_msg()), 1023);
    cr_assert_eq(lb_error_errno(), ENOSPC);
}

Test(error, hint_is_kept_until_the_next_error)
{
    lb_error(ENOSPC, "write chunk");
    lb_error_hint("free %d GiB and retry", 3);
    cr_assert_str_eq(lb_error_hint_msg(), "free 3 GiB and retry");
    lb_error_prefix("ctx");
    cr_assert_str_eq(lb_error_hint_msg(), "free 3 GiB and retry",
                     "a prefix keeps the hint");
    lb_error(0, "another failure");
    cr_assert_str_eq(lb_error_hint_msg(), "", "lb_error clears the hint");
}

Test(error, set_errno_keeps_the_message)
{
    lb_error(0, "carried from a worker");
    lb_error_set_errno(EPROTO);
    cr_assert_eq(lb_error_errno(), EPROTO);
    cr_assert_str_eq(lb_error_msg(), "carried from a worker");
}

Test(error, clear_resets_everything)
{
    lb_error(EIO, "x");
    lb_error_hint("y");
    lb_error_clear();
    cr_assert_str_eq(lb_error_msg(), "unknown error");
    cr_assert_str_eq(lb_error_hint_msg(), "");
    cr_assert_eq(lb_error_errno(), 0);
}

static void *
other_thread(void *arg)
{
    (void)arg;
    lb_error(EACCES, "in the other thread");
    lb_error_hint("other hint");
    return NULL;
}

Test(error, slot_is_per_thread)
{
    pthread_t th;

    lb_error(ENOENT, "main thread");
    cr_assert_eq(pthread_create(&th, NULL, other_thread, NULL), 0);
    pthread_join(th, NULL);
    cr_assert_eq(lb_error_errno(), ENOENT);
    cr_assert_str_eq(lb_error_msg(), "main thread: No such file or directory");
    cr_assert_str_eq(lb_error_hint_msg(), "");
}

Test(error, save_restore_keeps_the_first_error_through_a_rollback)
{
    struct lb_error_saved first;

    lb_fail(ENOSPC, "upload of chunk %d", 7);
    lb_error_hint("free space and retry");
    lb_error_save(&first);
    /* the rollback fails too and overwrites the slot */
    lb_error(EIO, "undo overlay");
    cr_assert_str_eq(lb_error_msg(), "undo overlay: Input/output error");
    cr_assert_eq(lb_error_restore(&first), -1);
    cr_assert_str_eq(lb_error_msg(), "upload of chunk 7");
    cr_assert_str_eq(lb_error_hint_msg(), "free space and retry");
    cr_assert_eq(lb_error_errno(), ENOSPC);
}

/* ---- LIVEBACKUP_FAULT_HOOK ---------------------------------------------- */

static char *
read_small(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return NULL;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The hook writes to $LBHOOK_LOG (DIR/log, returned in log). */
static void
hook_setup(char *dir, char *log, size_t len, const char *spec)
{
    cr_assert_not_null(mkdtemp(dir));
    snprintf(log, len, "%s/log", dir);
    setenv("LBHOOK_LOG", log, 1);
    setenv("LIVEBACKUP_FAULT_HOOK", spec, 1);
    setenv("LIVEBACKUP_FAULT", "unit:never", 1);
}

Test(error, fault_hook_runs_at_its_point_and_goes_on)
{
    char dir[] = "/tmp/lbhook.XXXXXX", path[64];

    hook_setup(dir, path, sizeof path,
               "unit:point:echo \"$LIVEBACKUP_FAULT_POINT "
               "${LIVEBACKUP_FAULT_HOOK:-none} "
               "${LIVEBACKUP_FAULT:-none}\" >>\"$LBHOOK_LOG\"");
    lb_fault_point("unit:other");
    lb_fault_point("unit:point-2");
    lb_fault_point("unit:point");
    lb_fault_point("unit:point");
    cr_assert_str_eq(read_small(path), "unit:point none none\n",
                     "once, at its point only, without the fault variables");
    unlink(path);
    rmdir(dir);
}

Test(error, fault_hook_at_the_nth_hit)
{
    char dir[] = "/tmp/lbhook.XXXXXX", path[64];

    hook_setup(dir, path, sizeof path,
               "unit:p@3:echo $LIVEBACKUP_FAULT_POINT >>\"$LBHOOK_LOG\"");
    lb_fault_point("unit:p");
    lb_fault_point("unit:p");
    cr_assert_null(read_small(path), "not before the third hit");
    lb_fault_point("unit:p");
    cr_assert_str_eq(read_small(path), "unit:p\n");
    lb_fault_point("unit:p");
    cr_assert_str_eq(read_small(path), "unit:p\n", "not after it");
    unlink(path);
    rmdir(dir);
}

Test(error, fault_hook_that_fails_is_waited_for)
{
    char dir[] = "/tmp/lbhook.XXXXXX", path[64];

    hook_setup(dir, path, sizeof path,
               "unit:q:sleep 0.2; echo ran >>\"$LBHOOK_LOG\"; exit 3");
    lb_fault_point("unit:q");
    cr_assert_str_eq(read_small(path), "ran\n",
                     "lb_fault_point returns after the hook ended");
    unlink(path);
    rmdir(dir);
}
