/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * common/util.c I/O helpers: full-length reads and writes, mkdir -p, the
 * atomic small-file write and the bounded whole-file read.
 */
#include "common/common.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

static char *tmp;

static void
setup(void)
{
    tmp = tu_mkdtemp();
    lb_error_clear();
}

static void
teardown(void)
{
    tu_rm_rf(tmp);
    free(tmp);
}

TestSuite(io, .init = setup, .fini = teardown);

Test(io, write_file_atomic_then_read_file)
{
    size_t len = 0;
    char *s;
    struct stat sb;
    CLEANUP_FREE char *path = lb_xasprintf("%s/cfg", tmp);

    cr_assert_eq(lb_write_file_atomic(tmp, "cfg", "one\n", 4, 0600), 0);
    cr_assert_eq(lb_write_file_atomic(tmp, "cfg", "two lines\nx\n", 12, 0640),
                 0, "replaces");
    s = lb_read_file(path, 100, &len);
    cr_assert_not_null(s);
    cr_assert_eq(len, 12);
    cr_assert_str_eq(s, "two lines\nx\n", "NUL-terminated");
    free(s);
    cr_assert_eq(stat(path, &sb), 0);
    {
        mode_t um = umask(0);
        umask(um);
        cr_assert_eq(sb.st_mode & 0777, 0640 & ~um, "the last write's mode");
    }
    cr_assert_eq(tu_count_entries(tmp), 1, "no temp file left");
}

Test(io, read_file_errors)
{
    CLEANUP_FREE char *missing = lb_xasprintf("%s/missing", tmp);
    CLEANUP_FREE char *big = lb_xasprintf("%s/big", tmp);

    errno = 0;
    cr_assert_null(lb_read_file(missing, 100, NULL));
    cr_assert_eq(errno, ENOENT);
    cr_assert_eq(lb_error_errno(), ENOENT);
    cr_assert_neq(strstr(lb_error_msg(), "missing"), NULL);

    tu_write_file(big, "0123456789", 10);
    errno = 0;
    cr_assert_null(lb_read_file(big, 9, NULL));
    cr_assert_eq(errno, EFBIG);
    {
        char *s = lb_read_file(big, 10, NULL);
        cr_assert_str_eq(s, "0123456789", "exactly max is fine");
        free(s);
    }
}

Test(io, write_file_atomic_into_missing_dir_fails)
{
    CLEANUP_FREE char *dir = lb_xasprintf("%s/nope", tmp);

    cr_assert_eq(lb_write_file_atomic(dir, "x", "y", 1, 0600), -1);
    cr_assert_eq(lb_error_errno(), ENOENT);
}

Test(io, mkdir_p)
{
    CLEANUP_FREE char *deep = lb_xasprintf("%s/a/b/c", tmp);
    CLEANUP_FREE char *file = lb_xasprintf("%s/f", tmp);
    CLEANUP_FREE char *under = lb_xasprintf("%s/f/x", tmp);
    struct stat sb;

    cr_assert_eq(lb_mkdir_p(deep, 0700), 0);
    cr_assert_eq(stat(deep, &sb), 0);
    cr_assert(S_ISDIR(sb.st_mode));
    cr_assert_eq(lb_mkdir_p(deep, 0700), 0, "existing is fine");
    tu_write_file(file, "x", 1);
    cr_assert_eq(lb_mkdir_p(under, 0700), -1);
    cr_assert_eq(lb_error_errno(), ENOTDIR);
    cr_assert_eq(lb_fsync_dir(deep), 0);
    cr_assert_eq(lb_fsync_dir(file), -1, "not a directory");
}

Test(io, full_reads_and_writes_over_a_pipe)
{
    int p[2];
    uint8_t out[3000], in[4000];
    ssize_t n;

    tu_fill_random(out, sizeof out, 7);
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(lb_write_full(p[1], out, sizeof out), 0);
    close(p[1]);
    n = lb_read_full(p[0], in, sizeof in);
    cr_assert_eq(n, (ssize_t)sizeof out, "short only at EOF");
    cr_assert_arr_eq(in, out, sizeof out);
    cr_assert_eq(lb_read_full(p[0], in, 10), 0);
    close(p[0]);
    cr_assert_eq(lb_read_full(-1, in, 10), -1);
    cr_assert_eq(lb_write_full(-1, in, 10), -1);
}

/* writev as the kernel may do it: at most writev_cap bytes a call (0:
 * unbounded), and once EINTR before any byte when writev_eintr is set;
 * the calls counted. */
static size_t writev_cap;
static bool writev_eintr;
static unsigned writev_calls;

ssize_t
writev(int fd, const struct iovec *iov, int n)
{
    ssize_t (*real)(int, const struct iovec *, int) =
        (ssize_t(*)(int, const struct iovec *, int))dlsym(RTLD_NEXT,
                                                          "writev");
    struct iovec cut[8];
    size_t left = writev_cap;
    int k = 0;

    writev_calls++;
    if (writev_eintr) {
        writev_eintr = false;
        errno = EINTR;
        return -1;
    }
    if (!writev_cap)
        return real(fd, iov, n);
    for (; k < n && k < 8 && left > 0; k++) {
        cut[k] = iov[k];
        if (cut[k].iov_len > left)
            cut[k].iov_len = left;
        left -= cut[k].iov_len;
    }
    return real(fd, cut, k);
}

/* lb_write2_full writes both buffers whole, in order, whatever a writev
 * takes: both in one call, or a part of the first, or of the second. */
Test(io, write2_full_whole_after_short_writes)
{
    static const size_t caps[] = {0, 5, 16, 17, 100, 4096};
    uint8_t hdr[16], data[9000], back[sizeof hdr + sizeof data];
    char *path = lb_xasprintf("%s/w2", tmp);

    tu_fill_random(hdr, sizeof hdr, 1);
    tu_fill_random(data, sizeof data, 2);
    for (size_t i = 0; i < sizeof caps / sizeof *caps; i++) {
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        cr_assert_geq(fd, 0);
        writev_cap = caps[i];
        writev_eintr = i == 1;
        writev_calls = 0;
        cr_assert_eq(lb_write2_full(fd, hdr, sizeof hdr, data, sizeof data),
                     0, "cap %zu", caps[i]);
        writev_cap = 0;
        cr_assert_eq(writev_calls, i == 1 ? 2u : 1u,
                     "one writev (after EINTR another), the rest written "
                     "as lb_write_full writes it");
        cr_assert_eq(lb_pread_full(fd, back, sizeof back, 0),
                     (ssize_t)sizeof back);
        cr_assert_arr_eq(back, hdr, sizeof hdr, "cap %zu", caps[i]);
        cr_assert_arr_eq(back + sizeof hdr, data, sizeof data, "cap %zu",
                         caps[i]);
        cr_assert_eq(lb_pread_full(fd, back, 1, sizeof back), 0,
                     "nothing more");
        close(fd);
    }
    cr_assert_eq(lb_write2_full(-1, hdr, 1, data, 1), -1);
    free(path);
}

Test(io, pread_pwrite_full)
{
    CLEANUP_FREE char *path = lb_xasprintf("%s/p", tmp);
    CLEANUP_CLOSE int fd = -1;
    uint8_t b[8];

    tu_write_file(path, "abcdefgh", 8);
    fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(lb_pwrite_full(fd, "XY", 2, 3), 0);
    cr_assert_eq(lb_pread_full(fd, b, 8, 0), 8);
    cr_assert_arr_eq(b, "abcXYfgh", 8);
    cr_assert_eq(lb_pread_full(fd, b, 8, 6), 2, "short at EOF");
}

Test(io, exe_dir_and_random)
{
    char *d = lb_exe_dir();
    uint8_t a[32] = {0}, z[32] = {0};

    cr_assert_not_null(d);
    cr_assert_eq(d[0], '/');
    free(d);
    cr_assert_eq(lb_random(a, sizeof a), 0);
    cr_assert(memcmp(a, z, sizeof a) != 0, "32 random bytes all zero");
    cr_assert_geq(lb_ncpus(), 1);
}
