/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The filesystems mount --fs cannot mount with a FUSE driver of their own
 * (XFS: Debian 12 ships none) are mounted by libguestfs's guestmount,
 * which boots a small appliance (a Linux kernel under QEMU) that mounts
 * the filesystem and serves it through FUSE. guestmount runs in the
 * foreground (--no-fork) as a child of the mount's daemon, so that it is
 * the appliance's parent and waits for it on unmount, and the daemon
 * holds its pid: the daemon ends it and reaps it, and the mount table
 * names it (source livebackup-guestmount:PID) for `umount` to wait on.
 *
 * Always the direct backend: the appliance's QEMU must run as the user
 * who owns the mount (libvirt's would run as another user, and could not
 * read a FUSE mount made without allow_other).
 */
#include "agent/client/run.h"
#include "agent/map/map.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define GM_FSNAME "livebackup-guestmount:"
#define GM_ERR_MAX 4096 /* what the message quotes of guestmount's stderr */
#define GM_TERM_WAIT_MS 10000 /* from SIGTERM to SIGKILL */
#define GM_END_WAIT_MS 30000  /* from its word "failed" to its end */

bool
map_pid_wait_end(pid_t pid, int ms)
{
    int fd = (int)pidfd_open(pid, 0);
    struct pollfd p;
    int r;

    if (fd < 0)
        return errno == ESRCH;
    p.fd = fd;
    p.events = POLLIN;
    do
        r = poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    close(fd);
    return r > 0;
}

/* The child: stdin and stdout /dev/null, stderr the file err_fd, ready_fd
 * kept open across exec; then guestmount. Only async-signal-safe calls. */
static void
gm_child(char **argv, char **env, char *opt, size_t opt_size, int ready_fd,
         int err_fd)
{
    int null = open("/dev/null", O_RDWR);

    agent_put_decimal(opt, opt_size, (unsigned long)getpid());
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
        dup2(err_fd, 2) < 0 || fcntl(ready_fd, F_SETFD, 0) < 0)
        _exit(126);
    execvpe(argv[0], argv, env);
    if (errno == ENOENT)
        _exit(127);
    _exit(126);
}

/* What guestmount said on stderr (the last GM_ERR_MAX bytes), trimmed. */
static char *
gm_stderr(int fd)
{
    struct stat st;
    off_t end = fstat(fd, &st) == 0 ? st.st_size : 0;
    off_t from = end > GM_ERR_MAX ? end - GM_ERR_MAX : 0;
    char *s = lb_xcalloc(GM_ERR_MAX + 1, 1);
    ssize_t n = end > 0 ? pread(fd, s, GM_ERR_MAX, from) : 0;
    size_t len = n > 0 ? (size_t)n : 0;

    while (len && (s[len - 1] == '\n' || s[len - 1] == ' '))
        len--;
    s[len] = '\0';
    return s;
}

/* Ended, or killed after ms: reap pid. Returns its wait status. */
static int
gm_reap(pid_t pid, int ms)
{
    int st = 0;

    if (!map_pid_wait_end(pid, ms)) {
        kill(pid, SIGTERM);
        if (!map_pid_wait_end(pid, GM_TERM_WAIT_MS))
            kill(pid, SIGKILL);
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

/* The error of a guestmount that ended (status st) or was ended before it
 * was ready. */
static int
gm_fail(const char *mp, int st, bool timed_out, unsigned timeout_s, int err_fd)
{
    CLEANUP_FREE char *err = gm_stderr(err_fd);

    if (timed_out) {
        lb_fail(ETIMEDOUT,
                "guestmount on %s: the libguestfs appliance did not start "
                "within %u s%s%s",
                mp, timeout_s, err[0] ? ": " : "", err);
        lb_error_hint("libguestfs-test-tool shows why; where /dev/kvm is "
                      "there but unusable, set "
                      "LIBGUESTFS_BACKEND_SETTINGS=force_tcg");
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
        lb_fail(ENOENT, "guestmount on %s: guestmount not found", mp);
        lb_error_hint("install Debian's libguestfs-tools and a kernel for "
                      "its appliance (linux-image-amd64)");
    } else {
        lb_fail(EIO, "guestmount on %s failed (%s %d)%s%s", mp,
                WIFEXITED(st) ? "exit status" : "signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
                err[0] ? ": " : "", err);
        lb_error_hint("libguestfs-test-tool checks that its appliance "
                      "starts here");
    }
    return -1;
}

/* Wait for guestmount's word on ready_fd, up to timeout_s. 1: mounted, 0:
 * it ended first, -1: timed out. */
static int
gm_wait_ready(int ready_fd, unsigned timeout_s)
{
    struct pollfd p = {.fd = ready_fd, .events = POLLIN};
    struct timespec t0, t;
    char c;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        long long left;
        int r;
        clock_gettime(CLOCK_MONOTONIC, &t);
        left =
            (long long)timeout_s * 1000 - ((t.tv_sec - t0.tv_sec) * 1000LL +
                                           (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            return -1;
        r = poll(&p, 1, (int)LB_MIN(left, 60000LL));
        if (r < 0 && errno != EINTR)
            return 0;
        if (r <= 0)
            continue;
        r = (int)read(ready_fd, &c, 1);
        if (r == 1)
            return 1;
        if (r == 0 || errno != EINTR)
            return 0;
    }
}

/* Start guestmount for partition part of img at mp, its stderr the file
 * err_fd, its word "mounted" on ready_fd. Returns its pid, -1 on error. */
static pid_t
gm_spawn(const char *img, unsigned part, const char *mp, int ready_fd,
         int err_fd)
{
    char dev[32], fd_arg[32];
    size_t n;
    char **env = agent_env_without("LIBGUESTFS_BACKEND=", 1, &n);
    pid_t child;

    if (part)
        snprintf(dev, sizeof dev, "/dev/sda%u", part);
    else
        snprintf(dev, sizeof dev, "/dev/sda");
    snprintf(fd_arg, sizeof fd_arg, "--fd=%d", ready_fd);
    env[n] = "LIBGUESTFS_BACKEND=direct";
    child = fork();
    if (child == 0) {
        char opt[96] = "fsname=" GM_FSNAME; /* its pid added in gm_child */
        char *argv[] = {"guestmount", "--no-fork", fd_arg, "--ro",
                        "--format=raw", "-a", (char *)img, "-m", dev,
                        /* one option a time: guestmount hands the string
                         * to libfuse 2 whole */
                        "-o", "ro", "-o", opt, (char *)mp, NULL};
        gm_child(argv, env, opt, sizeof opt, ready_fd, err_fd);
    }
    if (child < 0)
        lb_error(errno, "fork");
    free(env);
    return child;
}

int
map_guestmount_start(const char *img, unsigned part, const char *mp,
                     unsigned timeout_s, pid_t *pid)
{
    const char *tmp = getenv("TMPDIR");
    CLEANUP_FREE char *tmpl = lb_xasprintf("%s/livebackup-guestmount.XXXXXX",
                                           tmp && tmp[0] ? tmp : "/tmp");
    CLEANUP_CLOSE int err_fd = -1;
    int ready[2] = {-1, -1}, st, got;
    pid_t child;

    *pid = 0;
    /* its stderr: a file, which it may go on writing to once mounted */
    err_fd = mkostemp(tmpl, O_CLOEXEC);
    if (err_fd < 0)
        return lb_error(errno, "%s", tmpl);
    unlink(tmpl);
    if (pipe2(ready, O_CLOEXEC) < 0)
        return lb_error(errno, "pipe");
    child = gm_spawn(img, part, mp, ready[1], err_fd);
    close(ready[1]);
    if (child < 0) {
        close(ready[0]);
        return -1;
    }
    got = gm_wait_ready(ready[0], timeout_s);
    close(ready[0]);
    if (got == 1) {
        *pid = child;
        return 0;
    }
    /* it ended, or is ended now: reap it (its appliance goes with it) */
    st = gm_reap(child, got == 0 ? GM_END_WAIT_MS : 0);
    return gm_fail(mp, st, got < 0, timeout_s, err_fd);
}

void
map_guestmount_stop(pid_t pid, const char *mp)
{
    int st;

    if (pid <= 0)
        return;
    /* still serving (our own mount ended under it): unmount it, and it
     * ends after its appliance */
    if (waitpid(pid, &st, WNOHANG) == 0) {
        char *argv[] = {"fusermount3", "-u", "-q", (char *)mp, NULL};
        CLEANUP_FREE char *err = NULL;
        (void)agent_run(argv, NULL, &err);
        gm_reap(pid, GM_TERM_WAIT_MS);
    }
}

pid_t
map_guestmount_pid(const char *src)
{
    if (strncmp(src, GM_FSNAME, strlen(GM_FSNAME)) != 0)
        return 0;
    return (pid_t)strtol(src + strlen(GM_FSNAME), NULL, 10);
}
