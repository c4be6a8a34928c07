/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Guest freeze and thaw (virt.h), and the thaw guard: a process started
 * before every freeze that thaws the guest if the agent dies while it is
 * frozen, or when libvirtd went away before the agent could thaw it.
 */
#include "agent/live/track.h"
#include "agent/live/virt_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Start the guard and wait until it is connected and watching. */
static int
guard_start(struct agent_virt *v, struct agent_dom *d)
{
    int in[2], ready[2];
    char c;
    ssize_t n;
    pid_t pid;
    struct pollfd pfd;

    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0)
        return lb_error(errno, "pipe");
    pid = fork();
    if (pid < 0)
        return lb_error(errno, "fork");
    if (pid == 0) {
        char *argv[] = {"livebackup", "__thaw-guard", v->uri, d->uuid, NULL};
        dup2(in[0], 0);
        dup2(ready[1], 1);
        /* Its own session: a Ctrl-C to the agent must not kill it. */
        setsid();
        /* Our own image, not its path: a package upgrade or a rebuild may
         * have replaced the file since we started. */
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(in[0]);
    close(ready[1]);
    pfd.fd = ready[0];
    pfd.events = POLLIN;
    n = poll(&pfd, 1, 15000) == 1 ? read(ready[0], &c, 1) : 0;
    close(ready[0]);
    if (n != 1 || c != 'R') {
        close(in[1]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return lb_fail(EIO, "the thaw guard did not start: not freezing the "
                            "guest without it");
    }
    v->guard = pid;
    v->guard_fd = in[1];
    return 0;
}

static void
guard_stop(struct agent_virt *v)
{
    if (v->guard <= 0)
        return;
    (void)!write(v->guard_fd, "T", 1);
    close(v->guard_fd);
    waitpid(v->guard, NULL, 0);
    v->guard = 0;
    v->guard_fd = -1;
}

/* End-of-file without 'T': the guard thaws the guest once libvirtd
 * answers again. It is not waited for. */
static pid_t
guard_leave(struct agent_virt *v)
{
    pid_t pid = v->guard;

    if (pid <= 0)
        return 0;
    close(v->guard_fd);
    v->guard_left = pid;
    v->guard = 0;
    v->guard_fd = -1;
    return pid;
}

int
agent_virt_freeze(struct agent_virt *v, struct agent_dom *d, unsigned timeout_s,
                  uint64_t *t_call)
{
    int r;

    if (guard_start(v, d) < 0)
        return -1;
    if (agent_virt_set_agent_timeout(d, (int)timeout_s) < 0) {
        guard_stop(v);
        return -1;
    }
    lb_fault_point("agent:before-freeze");
    if (t_call)
        *t_call = lb_now_ns();
    r = LV(virDomainFSFreeze, d->d, NULL, 0, 0);
    if (r < 0) {
        virErrorPtr e = LV(virGetLastError);
        int code = e ? e->code : 0;
        char msg[1024];
        struct lb_error_saved saved = {0};
        snprintf(msg, sizeof msg, "%s",
                 LV(virGetLastErrorMessage) ? LV(virGetLastErrorMessage) : "");
        if (agent_virt_lost(v) || virt_dom_ended(d)) {
            virt_dom_fail(d, "the freeze");
            lb_error_save(&saved);
            agent_virt_thaw(v, d, false);
            return lb_error_restore(&saved);
        }
        /* The agent may have frozen the guest after all (late answer):
         * thaw in any case. */
        agent_virt_thaw(v, d, false);
        if (strstr(msg, "not connected") || strstr(msg, "not configured"))
            lb_fail(EIO, "cannot quiesce %s: no guest agent is connected (%s)",
                    d->name, msg);
        else if (code == VIR_ERR_AGENT_UNRESPONSIVE ||
                 code == VIR_ERR_OPERATION_TIMEOUT ||
                 strstr(msg, "timed out") || strstr(msg, "timeout"))
            lb_fail(EIO,
                    "cannot quiesce %s: the guest agent did not answer "
                    "within %u s (%s); the guest was left thawed",
                    d->name, timeout_s, msg);
        else
            lb_fail(EIO,
                    "cannot quiesce %s: freezing its filesystems "
                    "failed: %s",
                    d->name, msg);
        lb_error_hint("install and start qemu-guest-agent in the guest, or "
                      "back up crash-consistent with --consistency crash");
        return -1;
    }
    return 0;
}

int
agent_virt_set_agent_timeout(struct agent_dom *d, int secs)
{
    if (LV(virDomainAgentSetResponseTimeout, d->d, secs, 0) < 0)
        return virt_dom_fail(d, "setting the guest agent timeout");
    return 0;
}

int
agent_virt_thaw(struct agent_virt *v, struct agent_dom *d, bool must)
{
    pid_t left;

    /* Thawing a thawed guest succeeds (0 filesystems); a guest without a
     * responsive agent cannot have been frozen by us, so that only
     * matters when we froze it. */
    if (LV(virDomainFSThaw, d->d, NULL, 0, 0) >= 0) {
        if (v)
            guard_stop(v);
        return 0;
    }
    if (v && agent_virt_lost(v) && (left = guard_leave(v)) > 0) {
        lb_warn("%s may still be frozen: libvirtd went away before it was "
                "thawed; the thaw guard (pid %ld) thaws it as soon as "
                "libvirtd answers again, and so does `livebackup recover %s`",
                d->name, (long)left, d->name);
        return 0;
    }
    if (must && !virt_dom_ended(d)) {
        virt_dom_fail(d, "the thaw");
        if (v)
            guard_stop(v);
        return -1;
    }
    /* A QEMU that ended holds no frozen guest. */
    if (v)
        guard_stop(v);
    return 0;
}

/* Take the domain's lock (track.c's) while thawing: no new run freezes the
 * guest under us, and the one that had it is gone. -2 if another run holds
 * it past the deadline (its recovery thaws first), -1 if it cannot be
 * opened (thaw anyway). */
static int
guard_lock(const char *uuid, uint64_t deadline)
{
    CLEANUP_FREE char *path = lb_xasprintf("%s/%s.lock", track_dir(), uuid);
    int fd = open(path, O_RDWR | O_CLOEXEC);

    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (lb_now_ns() >= deadline) {
            close(fd);
            return -2;
        }
        usleep(100 * 1000);
    }
    {
        char who[64];
        snprintf(who, sizeof who, "pid %ld (thaw guard)\n", (long)getpid());
        if (ftruncate(fd, 0) == 0)
            (void)!pwrite(fd, who, strlen(who), 0);
    }
    return fd;
}

/* The thaw has to wait for libvirtd, perhaps for minutes. A stderr that
 * is a pipe or a socket has a reader that may wait for its end (the
 * shell of `out=$(livebackup backup vm 2>&1)`, an ssh session, a
 * script's `| tee`): let it go, and go on reporting to syslog. A terminal
 * or a file keeps getting the outcome. */
static void
guard_detach(void)
{
    static bool detached;
    struct stat st;
    int fd;

    if (detached || fstat(2, &st) < 0 ||
        !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
        return;
    detached = true;
    lb_info("the thaw guard (pid %ld) goes on trying in the background for "
            "up to %d s; its outcome goes to syslog",
            (long)getpid(), GUARD_RETRY_S);
    lb_log_set_target(LB_LOG_TO_SYSLOG);
    fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        dup2(fd, 2);
        close(fd);
    }
}

/* Thaw until it works, reconnecting while libvirtd is away, until the
 * deadline; a domain that is not running holds no frozen guest. */
static void
guard_thaw(const char *uri, const char *uuid, virConnectPtr c,
           uint64_t deadline)
{
    virDomainPtr d = NULL;

    for (;;) {
        if (c && LV(virConnectIsAlive, c) == 0) {
            if (d)
                LV(virDomainFree, d);
            LV(virConnectClose, c);
            c = NULL;
            d = NULL;
        }
        if (!c)
            c = LV(virConnectOpen, uri);
        if (c && !d) {
            d = LV(virDomainLookupByUUIDString, c, uuid);
            if (!d && LV(virGetLastErrorCode) == VIR_ERR_NO_DOMAIN)
                break; /* gone: nothing is frozen */
        }
        if (d && LV(virDomainIsActive, d) == 0)
            break;
        if (d && LV(virDomainFSThaw, d, NULL, 0, 0) >= 0) {
            const char *name = LV(virDomainGetName, d);
            lb_info("the backup ended while the guest of %s was frozen: "
                    "thawed it",
                    name ? name : uuid);
            break;
        }
        if (lb_now_ns() >= deadline) {
            lb_warn("could not thaw domain %s within %d s: run "
                    "livebackup recover on it",
                    uuid, GUARD_RETRY_S);
            break;
        }
        guard_detach();
        sleep(1);
    }
    if (d)
        LV(virDomainFree, d);
    if (c)
        LV(virConnectClose, c);
}

/*
 * livebackup __thaw-guard URI UUID: started by agent_virt_freeze with a
 * pipe on stdin. It connects, says 'R' on stdout, then waits: 'T' means
 * the agent thawed the guest itself; end-of-file means the agent died, or
 * could not thaw because libvirtd went away, and the guard thaws the
 * guest, holding the domain's lock meanwhile.
 */
int
cmd_thaw_guard(int argc, char **argv)
{
    virConnectPtr c;
    uint64_t deadline;
    char ch = 0;
    ssize_t n;
    int lock;

    if (argc != 3)
        return 2;
    /* Not SIGTERM either: systemd stops a unit (systemctl stop, a
     * timeout, a shutdown) by sending it to every process of the unit at
     * once, the agent's death this guard is here for. Its life is bounded
     * (the agent's 'T', or a thaw given GUARD_RETRY_S), and systemd's
     * SIGKILL after TimeoutStopSec still ends it. */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    if (lb_virt_load() < 0)
        return 1;
    LV(virSetErrorFunc, NULL, virt_silent_error);
    c = LV(virConnectOpen, argv[1]);
    if (!c || write(1, "R", 1) != 1)
        return 1;
    close(1);
    do
        n = read(0, &ch, 1);
    while (n < 0 && errno == EINTR);
    if (n == 1 && ch == 'T') {
        LV(virConnectClose, c);
        return 0;
    }
    deadline = lb_now_ns() + (uint64_t)GUARD_RETRY_S * 1000000000u;
    lock = guard_lock(argv[2], deadline);
    if (lock != -2)
        guard_thaw(argv[1], argv[2], c, deadline);
    else
        LV(virConnectClose, c);
    if (lock >= 0) {
        if (ftruncate(lock, 0) < 0)
            lb_debug("cannot clear the lock file");
        close(lock);
    }
    return 0;
}
