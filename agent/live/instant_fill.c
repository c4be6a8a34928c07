/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An instant restore's exports and its fill (instant.c has the rest): the
 * nbdkit daemons that serve each disk of the backup, and the copy of each
 * disk from its export into its local raw base.
 */
#include "agent/client/run.h"
#include "agent/live/instant.h"
#include "agent/live/live.h"
#include "agent/live/track.h"
#include "common/json.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the exports ------------------------------------------------------------ */

/* Where a rate-limited fill's nbdkit listens (LIVEBACKUP_PULL_BANDWIDTH):
 * beside the export's socket, "x.sock" -> "x.rate" (as short). */
static char *
rate_socket(const struct instant_disk *d)
{
    size_t len = strlen(d->socket);

    if (len > 5 && strcmp(d->socket + len - 5, ".sock") == 0)
        return lb_xasprintf("%.*s.rate", (int)(len - 5), d->socket);
    return lb_xasprintf("%s.rate", d->socket);
}

/* A killed watcher's fill leaves it. */
static void
unlink_rate_socket(const struct instant_disk *d)
{
    CLEANUP_FREE char *path = rate_socket(d);

    unlink(path);
}

/* The pid of disk d's export if it runs, else 0. */
pid_t
instant_export_pid(const struct instant_disk *d)
{
    return agent_export_pid(d->pidfile);
}

/*
 * 0 when QEMU's user (uid, gid and the groups of uid's name) may connect
 * to socket: every directory on the way to it searchable, the socket
 * writable. Else 1 + the number of the first directory that is not
 * (counted from the root), or 255 for the socket itself. Checked by a
 * child that becomes that user: the kernel's own checks, ACLs included.
 */
static int
blocked_for(const char *socket, const char *user, uid_t uid, gid_t gid)
{
    gid_t groups[256];
    int ng = (int)LB_ARRAY_SIZE(groups), st;
    pid_t pid;

    groups[0] = gid;
    if (!user || getgrouplist(user, gid, groups, &ng) < 0)
        ng = 1;
    pid = fork(); /* the child makes system calls only */
    if (pid < 0)
        return lb_error(errno, "fork");
    if (pid == 0) {
        char prefix[PATH_MAX];
        int n = 0;
        if (setgroups((size_t)ng, groups) < 0 || setresgid(gid, gid, gid) < 0 ||
            setresuid(uid, uid, uid) < 0)
            _exit(254);
        for (size_t i = 1; i < sizeof prefix && socket[i]; i++) {
            if (socket[i] != '/')
                continue;
            memcpy(prefix, socket, i);
            prefix[i] = '\0';
            if (++n < 250 && access(prefix, X_OK) < 0)
                _exit(1 + n);
        }
        _exit(access(socket, W_OK) == 0 ? 0 : 255);
    }
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return lb_error(errno, "wait");
    if (!WIFEXITED(st) || WEXITSTATUS(st) == 254)
        return lb_fail(EPERM,
                       "cannot become QEMU's user (uid %u) to check "
                       "its access to %s",
                       (unsigned)uid, socket);
    return WEXITSTATUS(st);
}

/*
 * QEMU, when it runs as another user than root (libvirt-qemu on a stock
 * Debian host), must reach disk d's socket (QEMU connects to it: libvirt
 * labels no socket of a backing chain). The socket becomes its own and
 * nobody else's (0600); its directory, the state directory (0700, ours),
 * one that others may pass through but not list (0711: every file in it
 * is 0600). Then checked as QEMU's user: a directory above that does not
 * let it through is named here, before QEMU fails on it.
 */
static int
export_grant(const struct instant_state *st, const struct instant_disk *d)
{
    CLEANUP_FREE char *dir = lb_xstrdup(d->socket);
    const char *end = d->socket;
    struct passwd pw, *pp = NULL;
    char buf[4096], who[300];
    struct stat sb;
    int r;

    if (st->qemu_uid == 0)
        return 0;
    if (getpwuid_r(st->qemu_uid, &pw, buf, sizeof buf, &pp) != 0)
        pp = NULL;
    snprintf(who, sizeof who, "%s%s(uid %u)", pp ? pp->pw_name : "",
             pp ? " " : "", (unsigned)st->qemu_uid);
    *strrchr(dir, '/') = '\0';
    if (stat(dir, &sb) == 0 && sb.st_uid == geteuid() &&
        (sb.st_mode & 011) != 011)
        (void)chmod(dir, (sb.st_mode & 07777) | 011);
    if (chmod(d->socket, 0600) < 0 ||
        chown(d->socket, st->qemu_uid, st->qemu_gid) < 0)
        return lb_error(errno, "give QEMU's user %s the export's socket %s",
                        who, d->socket);
    r = blocked_for(d->socket, pp ? pp->pw_name : NULL, st->qemu_uid,
                    st->qemu_gid);
    if (r <= 0)
        return r;
    if (r == 255)
        return lb_fail(EACCES,
                       "QEMU's user %s cannot connect to the "
                       "export's socket %s",
                       who, d->socket);
    for (int n = r - 1; n > 0 && (end = strchr(end + 1, '/')); n--)
        ;
    lb_fail(EACCES,
            "QEMU's user %s cannot pass through %.*s to reach the "
            "export's socket %s",
            who, end ? (int)(end - d->socket) : 0, d->socket, d->socket);
    lb_error_hint("give the state directory a place QEMU's user can reach "
                  "(--state-dir, LIVEBACKUP_STATE_DIR; the default "
                  "/var/lib/livebackup is one)");
    return -1;
}

int
instant_export_up(const struct instant_state *st, const struct instant_disk *d)
{
    struct agent_export e = {0};

    if (instant_export_pid(d) > 0)
        return 0;
    e.url = st->url;
    e.name = st->set;
    e.spec = st->backup;
    e.disk = d->target;
    e.socket = d->socket;
    e.pidfile = d->pidfile;
    e.cache_bytes = st->cache_bytes;
    agent_opts.rsh = st->rsh[0] ? st->rsh : NULL;
    agent_opts.remote_backupd =
        st->remote_backupd[0] ? st->remote_backupd : NULL;
    unlink(d->pidfile);
    if (agent_export_start(&e, d->log) < 0)
        return -1;
    if (export_grant(st, d) < 0) {
        struct lb_error_saved why;
        lb_error_save(&why);
        instant_export_stop(d);
        return lb_error_restore(&why);
    }
    lb_info("%s: the export of %s from backup %s serves on %s (pid %ld)",
            st->name, d->target, st->backup, d->socket,
            (long)instant_export_pid(d));
    return 0;
}

void
instant_export_stop(const struct instant_disk *d)
{
    pid_t pid = instant_export_pid(d);

    if (pid > 0 && kill(pid, SIGTERM) == 0) {
        for (int i = 0; i < 200 && instant_export_pid(d) == pid; i++)
            usleep(50 * 1000);
        /* nbdkit waits for its plugin's requests in flight: one stuck on
         * a repository that does not answer must not keep it (and its
         * socket) for ever once its pid file is gone. */
        if (instant_export_pid(d) == pid) {
            lb_warn("the export of %s (pid %ld) did not stop in 10 s: killed",
                    d->target, (long)pid);
            kill(pid, SIGKILL);
        }
    }
    unlink(d->socket);
    unlink(d->pidfile);
    unlink_rate_socket(d);
}

static unsigned long
pull_bandwidth(void)
{
    /* tests slow the pull down to act during it */
    const char *e = getenv("LIVEBACKUP_PULL_BANDWIDTH");

    return e ? strtoul(e, NULL, 10) : 0;
}

/* ---- the fill: the backup's disk into base ---------------------------------- */

/* nbdcopy's progress ("N/100" lines) while disk d is filled, for status. */
char *
instant_fill_progress(const struct instant_state *st,
                      const struct instant_disk *d)
{
    return lb_xasprintf("%s/%s-%s.fill", track_dir(), st->name, d->target);
}

static bool
base_filled(const struct instant_disk *d)
{
    struct stat s;

    return stat(d->base, &s) == 0;
}

/* An NBD URI of a unix socket: nbd+unix:///?socket=PATH, the path
 * percent-encoded but for RFC 3986's unreserved characters and '/'. */
static char *
socket_uri(const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    struct lb_buf b = {0};

    lb_buf_append(&b, "nbd+unix:///?socket=", 20);
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
            (*c >= '0' && *c <= '9') || strchr("-._~/", *c)) {
            lb_buf_put_u8(&b, *c);
            continue;
        }
        lb_buf_put_u8(&b, '%');
        lb_buf_put_u8(&b, (uint8_t)hex[*c >> 4]);
        lb_buf_put_u8(&b, (uint8_t)hex[*c & 15]);
    }
    lb_buf_put_u8(&b, 0);
    return (char *)b.data;
}

/* Rename from to to, the name made durable (the directory synced). */
int
instant_rename_durable(const char *from, const char *to)
{
    CLEANUP_FREE char *dir = lb_xstrdup(to);

    if (rename(from, to) < 0)
        return lb_error(errno, "rename %s", from);
    *strrchr(dir, '/') = '\0';
    return lb_fsync_dir(dir[0] ? dir : "/");
}

/* base made durable under its name: its data, then the name. */
static int
base_commit(const char *part, const char *base)
{
    int fd = open(part, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return lb_error(errno, "open %s", part);
    if (fdatasync(fd) < 0) {
        int e = errno;
        close(fd);
        return lb_error(e, "fdatasync %s", part);
    }
    close(fd);
    return instant_rename_durable(part, base);
}

/*
 * Copy disk d of the backup from its export into base: nbdcopy, several
 * requests in flight, the backup's holes skipped (the export reports
 * them), into a fresh sparse BASE.part, flushed, then renamed: base exists
 * only whole. A part an earlier fill left (its nbdcopy may still run,
 * orphaned) is unlinked, not reused. LIVEBACKUP_PULL_BANDWIDTH (bytes/s)
 * puts nbdkit's rate filter between the export and nbdcopy.
 */
int
instant_fill(const struct instant_state *st, const struct instant_disk *d)
{
    CLEANUP_FREE char *part = lb_xasprintf("%s.part", d->base);
    CLEANUP_FREE char *prog = instant_fill_progress(st, d);
    CLEANUP_FREE char *uri = NULL;
    CLEANUP_FREE char *sock = lb_xasprintf("socket=%s", d->socket);
    CLEANUP_FREE char *rsock = NULL;
    char rate[64], pfd[32];
    unsigned long bw = pull_bandwidth();
    char *argv[16];
    size_t n = 0;
    int fd, pf, r;
    pid_t rpid = 0;

    if (base_filled(d))
        return 0;
    if (instant_export_up(st, d) < 0)
        return -1;
    if (unlink(part) < 0 && errno != ENOENT)
        return lb_error(errno, "remove %s", part);
    fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return lb_error(errno, "create %s", part);
    r = ftruncate(fd, (off_t)d->size);
    close(fd);
    if (r < 0)
        return lb_error(errno, "size %s", part);
    if (bw) {
        /* nbdkit's rate filter in front of the export, started here on a
         * socket beside the export's (not by nbdcopy's "[ nbdkit ... ]",
         * whose libnbd keeps /tmp/libnbdXXXXXX until it closes: a killed
         * watcher's nbdcopy left one) */
        char *rated[] = {"nbdkit", "--exit-with-parent",
                         "-r",     "--filter=rate",
                         "nbd",    sock,
                         rate,     NULL};
        int lfd;
        snprintf(rate, sizeof rate, "rate=%llu", (unsigned long long)bw * 8);
        rsock = rate_socket(d);
        unlink(rsock);
        lfd = agent_listen_unix(rsock);
        if (lfd < 0)
            return -1;
        rpid = agent_spawn_activated(rated, lfd, -1);
        close(lfd);
        if (rpid < 0) {
            unlink(rsock);
            return -1;
        }
        uri = socket_uri(rsock);
    } else {
        uri = socket_uri(d->socket);
    }
    /* no O_CLOEXEC: nbdcopy writes its progress there */
    pf = open(prog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (pf < 0) {
        r = lb_error(errno, "create %s", prog);
        goto rated_done;
    }
    snprintf(pfd, sizeof pfd, "--progress=%d", pf);
    argv[n++] = "nbdcopy";
    argv[n++] = "--flush";
    argv[n++] = "--destination-is-zero";
    argv[n++] = pfd;
    argv[n++] = "--";
    argv[n++] = uri;
    argv[n++] = part;
    argv[n] = NULL;
    lb_info("%s: copying %s of backup %s from its export into %s", st->name,
            d->target, st->backup, d->base);
    r = agent_run_ok(argv, NULL);
    close(pf);
rated_done:
    if (rpid > 0) {
        agent_kill_reap(rpid);
        unlink(rsock);
    }
    if (r < 0) {
        lb_error_prefix("%s: copying %s from its export", st->name, d->target);
        unlink(part);
        return -1;
    }
    if (base_commit(part, d->base) < 0)
        return -1;
    unlink(prog);
    return 0;
}

/* How far the fill of disk d is (nbdcopy's last "N/100" line): 1 with
 * *pct, 0 if no fill runs. */
int
instant_fill_percent(const struct instant_state *st,
                     const struct instant_disk *d, unsigned *pct)
{
    CLEANUP_FREE char *path = instant_fill_progress(st, d);
    CLEANUP_FREE char *text = NULL;
    size_t len;
    char *line;

    if (base_filled(d))
        return 0;
    text = lb_read_file(path, 1u << 20, &len);
    lb_error_clear();
    if (!text)
        return 0;
    while (len > 0 && text[len - 1] == '\n')
        text[--len] = '\0';
    line = strrchr(text, '\n');
    *pct = (unsigned)strtoul(line ? line + 1 : text, NULL, 10);
    if (*pct > 100)
        *pct = 100;
    return 1;
}
