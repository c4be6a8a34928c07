/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Run a helper program (qemu-img, ...) without a shell and capture its
 * output; it is sent SIGTERM if the thread that runs it dies. Arguments are
 * passed as a vector, so image paths with spaces or shell characters are safe.
 */
#include "agent/client/run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUN_MAX_OUTPUT (16u << 20)

int
agent_run(char *const argv[], char **out, char **err)
{
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    struct lb_buf bo = {0}, be = {0};
    pid_t pid, parent;
    int status;
    bool open_o = true, open_e = true;

    if (out)
        *out = NULL;
    if (err)
        *err = NULL;
    if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
        lb_error(errno, "pipe");
        goto fail;
    }
    parent = getpid();
    pid = fork();
    if (pid < 0) {
        lb_error(errno, "fork");
        goto fail;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        /* A helper does not outlive the command that waits for it (a
         * killed instant-restore watcher's nbdcopy would fill a file no
         * one uses). */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
            _exit(127);
        if (null >= 0)
            dup2(null, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        execvp(argv[0], argv);
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    po[1] = pe[1] = -1;
    while (open_o || open_e) {
        struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            struct lb_buf *b = i ? &be : &bo;
            bool *open_ = i ? &open_e : &open_o;
            char chunk[65536];
            ssize_t n;
            if (!*open_ || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            n = read(fds[i].fd, chunk, sizeof chunk);
            if (n <= 0) {
                if (n < 0 && errno == EINTR)
                    continue;
                *open_ = false;
                fds[i].fd = -1;
                continue;
            }
            if (b->len + (size_t)n <= RUN_MAX_OUTPUT)
                lb_buf_append(b, chunk, (size_t)n);
        }
        if (!open_o)
            po[0] = po[0] >= 0 ? (close(po[0]), -1) : -1;
        if (!open_e)
            pe[0] = pe[0] >= 0 ? (close(pe[0]), -1) : -1;
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            lb_error(errno, "waitpid %s", argv[0]);
            goto fail;
        }
    lb_buf_put_u8(&bo, 0);
    lb_buf_put_u8(&be, 0);
    if (out)
        *out = (char *)bo.data;
    else
        lb_buf_free(&bo);
    if (err)
        *err = (char *)be.data;
    else
        lb_buf_free(&be);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
fail:
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
    }
    lb_buf_free(&bo);
    lb_buf_free(&be);
    return -1;
}

/* The Debian package that has prog (a program agent_run_ok runs). */
static const char *
package_of(const char *prog)
{
    static const struct {
        const char *prog, *pkg;
    } pk[] = {{"fuse2fs", "fuse2fs"},
              {"fusermount3", "fuse3"},
              {"guestmount", "libguestfs-tools"},
              {"nbdcopy", "libnbd-bin"},
              {"nbdkit", "nbdkit"}};

    for (size_t i = 0; i < LB_ARRAY_SIZE(pk); i++)
        if (strcmp(prog, pk[i].prog) == 0)
            return pk[i].pkg;
    return "qemu-utils"; /* qemu-img, qemu-nbd */
}

int
agent_run_ok(char *const argv[], char **out)
{
    CLEANUP_FREE char *err = NULL;
    int r = agent_run(argv, out, &err);

    if (r == 0)
        return 0;
    if (r > 0) {
        size_t n = strlen(err);
        while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = '\0';
        lb_error(0, "%s failed: %s", argv[0],
                 n ? err : (r == 127 ? "not found" : "exit status"));
        if (r == 127 && strstr(err, "cannot run"))
            lb_error_hint("install %s (Debian package %s)", argv[0],
                          package_of(argv[0]));
    }
    if (out) {
        free(*out);
        *out = NULL;
    }
    return -1;
}

char **
agent_env_without(const char *prefix, size_t extra, size_t *n)
{
    extern char **environ;
    size_t all = 0, k = 0, plen = strlen(prefix);
    char **env;

    while (environ[all])
        all++;
    env = lb_xcalloc(all + extra + 1, sizeof *env);
    for (size_t i = 0; i < all; i++)
        if (strncmp(environ[i], prefix, plen) != 0)
            env[k++] = environ[i];
    *n = k;
    return env;
}

void
agent_put_decimal(char *buf, size_t size, unsigned long v)
{
    char digits[24];
    size_t n = 0, at = strlen(buf);

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0 && at + 1 < size)
        buf[at++] = digits[--n];
    buf[at] = '\0';
}

int
agent_listen_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int lfd;

    if (strlen(path) >= sizeof sa.sun_path)
        return lb_fail(ENAMETOOLONG, "socket path too long: %s", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(lfd, SOMAXCONN) < 0) {
        lb_error(errno, "listen on %s", path);
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    return lfd;
}

#define LISTEN_PID "LISTEN_PID="

/* In the child, between fork and exec: only async-signal-safe calls. */
static void
activated_child(int lfd, int log, char *pidvar, size_t pidvar_size, char **env,
                char *const argv[])
{
    sigset_t none;

    agent_put_decimal(pidvar, pidvar_size, (unsigned long)getpid());
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* stderr to log; fd 3, without close-on-exec, the first socket of
     * the protocol (dup2 clears close-on-exec). Copies above both first:
     * either may be 2 or 3. */
    if ((log >= 0 && (log = fcntl(log, F_DUPFD_CLOEXEC, 10)) < 0) ||
        (lfd = fcntl(lfd, F_DUPFD_CLOEXEC, 10)) < 0 ||
        (log >= 0 && dup2(log, 2) < 0) || dup2(lfd, 3) < 0)
        _exit(127);
    execvpe(argv[0], argv, env);
    {
        static const char msg[] = "cannot run ";
        const char *e = strerror(errno); /* glibc's table: no allocation */
        if (write(2, msg, sizeof msg - 1) < 0 ||
            write(2, argv[0], strlen(argv[0])) < 0 || write(2, ": ", 2) < 0 ||
            write(2, e, strlen(e)) < 0 || write(2, "\n", 1) < 0)
            _exit(127);
    }
    _exit(127);
}

pid_t
agent_spawn_activated(char *const argv[], int lfd, int log)
{
    char pidvar[sizeof LISTEN_PID + 24];
    size_t n;
    char **env;
    pid_t pid;

    /* LISTEN_PID's value is the child's pid, written after fork */
    env = agent_env_without("LISTEN_", 2, &n);
    snprintf(pidvar, sizeof pidvar, "%s", LISTEN_PID);
    env[n] = pidvar;
    env[n + 1] = "LISTEN_FDS=1";
    pid = fork();
    if (pid == 0)
        activated_child(lfd, log, pidvar, sizeof pidvar, env, argv);
    if (pid < 0)
        lb_error(errno, "fork");
    free(env);
    return pid;
}

void
agent_kill_reap(pid_t pid)
{
    kill(pid, SIGTERM);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}
