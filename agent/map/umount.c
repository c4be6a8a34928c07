/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * livebackup umount: the livebackup mounts at or below a directory (from
 * mountinfo: source "livebackup:PID") and what is mounted inside them
 * (--fs's fuse2fs and guestmount), unmounted deepest first; it waits for
 * the processes that served them. Another program's FUSE mount below the
 * directory is left alone.
 */
#include "agent/client/client.h"
#include "agent/client/run.h"
#include "agent/map/map.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UMOUNT_WAIT_MS 60000 /* for a process that serves a mount to end */

struct m_below {
    char *mp;
    pid_t pid; /* the process that serves it, 0 if unknown */
    bool ours; /* a livebackup mount itself ("livebackup:PID") */
    bool keep; /* ours, or inside one of ours: to unmount */
};

/* Who serves the FUSE mount mp from source src: our own mount and a
 * guestmount say their pid in their source name; fuse2fs is the process
 * with mp as its second argument. */
static pid_t
server_of(const char *mp, const char *src)
{
    CLEANUP_FREE char *path = NULL;
    DIR *proc;
    struct dirent *e;
    pid_t pid = 0;

    /* anyone can name a FUSE mount so: a livebackup process, or none */
    if (strncmp(src, "livebackup:", 11) == 0)
        return lb_proc_running(strtol(src + 11, NULL, 10), "livebackup");
    if ((pid = map_guestmount_pid(src)) > 0)
        return pid;
    proc = opendir("/proc");
    while (proc && pid == 0 && (e = readdir(proc)) != NULL) {
        /* fuse2fs, the image and the mount point: paths, each whole */
        char cl[3 * PATH_MAX + 16];
        CLEANUP_CLOSE int fd = -1;
        ssize_t n;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        free(path);
        path = lb_xasprintf("/proc/%s/cmdline", e->d_name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || (n = read(fd, cl, sizeof cl - 1)) <= 0)
            continue;
        cl[n] = '\0';
        /* argv[0] fuse2fs, argv[1] the image, argv[2] the mountpoint */
        {
            const char *a0 = cl, *a1 = a0 + strlen(a0) + 1, *a2;
            const char *base = strrchr(a0, '/');
            if (strcmp(base ? base + 1 : a0, "fuse2fs") != 0 || a1 >= cl + n)
                continue;
            a2 = a1 + strlen(a1) + 1;
            if (a2 < cl + n && strcmp(a2, mp) == 0)
                pid = (pid_t)strtol(e->d_name, NULL, 10);
        }
    }
    if (proc)
        closedir(proc);
    return pid;
}

/* The FUSE mounts at or below dir, deepest first, from mountinfo. */
static size_t
mounts_below(const char *dir, struct m_below **out)
{
    CLEANUP_CLOSE int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    CLEANUP_BUF struct lb_buf b = {0};
    size_t n = 0;
    char *save = NULL, *info;
    ssize_t got;

    *out = NULL;
    /* procfs files have no size: read to the end */
    do {
        lb_buf_reserve(&b, 65536);
        got = fd < 0 ? 0 : read(fd, b.data + b.len, 65536);
        if (got > 0)
            b.len += (size_t)got;
    } while (got > 0 || (got < 0 && errno == EINTR));
    lb_buf_put_u8(&b, 0);
    info = (char *)b.data;
    for (char *line = strtok_r(info, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        struct map_mountinfo m;
        if (map_mountinfo_line(line, &m) < 0 || !map_path_within(m.mp, dir) ||
            strncmp(m.type, "fuse", 4) != 0)
            continue;
        *out = lb_xrealloc(*out, (n + 1) * sizeof **out);
        (*out)[n].mp = lb_xstrdup(m.mp);
        (*out)[n].pid = server_of(m.mp, m.src);
        (*out)[n].ours = strncmp(m.src, "livebackup:", 11) == 0;
        (*out)[n].keep = false;
        n++;
    }
    /* deepest (longest) first */
    for (size_t i = 0; i < n; i++)
        for (size_t k = i + 1; k < n; k++)
            if (strlen((*out)[k].mp) > strlen((*out)[i].mp)) {
                struct m_below t = (*out)[i];
                (*out)[i] = (*out)[k];
                (*out)[k] = t;
            }
    return n;
}

int
map_umount(const char *dir)
{
    char real[4096];
    struct m_below *mps;
    size_t n, ours = 0;
    int ret = 0;

    if (!realpath(dir, real))
        return lb_error(errno, "%s", dir);
    n = mounts_below(real, &mps);
    /* Only our mounts and what is mounted inside them (the filesystems of
     * --fs): never another program's FUSE mount that lies below dir. */
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < n && !mps[i].keep; k++)
            mps[i].keep = mps[k].ours && map_path_within(mps[i].mp, mps[k].mp);
        ours += mps[i].keep;
    }
    if (ours == 0)
        ret = lb_fail(EINVAL, "no livebackup mount at or below %s", real);
    for (size_t i = 0; i < n; i++) {
        char *argv[] = {"fusermount3", "-u", mps[i].mp, NULL};
        if (!mps[i].keep) {
            free(mps[i].mp);
            continue;
        }
        if (ret == 0 && agent_run_ok(argv, NULL) < 0)
            ret = -1;
        /* its process ends once it sees the unmount (a guestmount after
         * its appliance): wait for it, so that nothing of ours is left
         * when we return, and nothing holds the disk file above */
        if (ret == 0 && mps[i].pid > 0 &&
            !map_pid_wait_end(mps[i].pid, UMOUNT_WAIT_MS))
            lb_warn("%s: its process %ld did not end within %d s", mps[i].mp,
                    (long)mps[i].pid, UMOUNT_WAIT_MS / 1000);
        free(mps[i].mp);
    }
    free(mps);
    return ret;
}
