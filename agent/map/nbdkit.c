/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nbdkit-livebackup-plugin: one disk of one backup as a read-only NBD
 * export, served by nbdkit (`livebackup map` starts it). Reads and block
 * status go to the client layer's reader (agent/client/reader.c), which
 * fetches, checks and decodes only the windows a request touches.
 *
 *   nbdkit nbdkit-livebackup-plugin.so repo=URL disk=vda [name=N]
 *          [backup=ID|latest|TIME] [cache=64M] [readahead=4]
 *          [rsh='ssh ...'] [remote_backupd=PATH] [unix=PATH] [pidfile=PATH]
 *
 * Threads: nbdkit's parallel model. Every connection shares the one
 * reader (one repository session, one cache): reads of cached windows run
 * side by side, fetches one at a time (sequential reads have the reader's
 * read-ahead thread fetch ahead of them, started on the first such read:
 * after nbdkit's fork). The export never changes, so several connections
 * see the same data (multi-conn is safe). With nbdkit -v (`livebackup
 * map -v`), the reader's counts are logged when the export stops.
 *
 * The reader is opened in .get_ready, before nbdkit forks into the
 * background, so that a wrong repository, name or disk fails `nbdkit`
 * (and `livebackup map`) at once with the client's message.
 *
 * unix= and pidfile= repeat nbdkit's --unix and --pidfile: nbdkit leaves
 * both behind when it stops, and a stale pid file names, some day, another
 * process. Once serving (.after_fork) the plugin notes which socket and pid
 * are its own; when nbdkit stops (.cleanup, every connection closed) it
 * removes the socket if it is still that one and the pid file if it still
 * holds this pid, never another export's.
 */
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "agent/client/client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static struct {
    char *repo, *name, *backup, *disk, *rsh, *remote_backupd;
    char *unix_path, *pidfile;
    struct agent_reader_opts o;
    struct agent_reader *rd;
    bool serving;     /* .after_fork ran: the files below are ours */
    struct stat sock; /* the socket nbdkit listens on */
} map;

static void
map_unload(void)
{
    if (map.rd) {
        struct agent_reader_stats st;
        agent_reader_get_stats(map.rd, &st);
        nbdkit_debug("reader: %" PRIu64 " window hits, %" PRIu64
                     " misses, %" PRIu64 " windows fetched, %" PRIu64
                     " batches read ahead in the background, %" PRIu64
                     " reconnects",
                     st.hits, st.misses, st.windows_fetched, st.prefetches,
                     st.reconnects);
    }
    agent_reader_close(map.rd);
    free(map.repo);
    free(map.name);
    free(map.backup);
    free(map.disk);
    free(map.rsh);
    free(map.remote_backupd);
    free(map.unix_path);
    free(map.pidfile);
    memset(&map, 0, sizeof map);
}

static int
set_str(char **dst, const char *value)
{
    free(*dst);
    *dst = strdup(value);
    if (!*dst) {
        nbdkit_error("out of memory");
        return -1;
    }
    return 0;
}

static int
map_config(const char *key, const char *value)
{
    int64_t n;

    if (strcmp(key, "repo") == 0)
        return set_str(&map.repo, value);
    if (strcmp(key, "name") == 0)
        return set_str(&map.name, value);
    if (strcmp(key, "backup") == 0)
        return set_str(&map.backup, value);
    if (strcmp(key, "disk") == 0)
        return set_str(&map.disk, value);
    if (strcmp(key, "rsh") == 0)
        return set_str(&map.rsh, value);
    if (strcmp(key, "remote_backupd") == 0)
        return set_str(&map.remote_backupd, value);
    if (strcmp(key, "unix") == 0)
        return set_str(&map.unix_path, value);
    if (strcmp(key, "pidfile") == 0)
        return set_str(&map.pidfile, value);
    if (strcmp(key, "cache") == 0) {
        if ((n = nbdkit_parse_size(value)) < 0)
            return -1;
        map.o.cache_bytes = (uint64_t)n;
        return 0;
    }
    if (strcmp(key, "readahead") == 0) {
        if ((n = nbdkit_parse_size(value)) < 0 || n > 64) {
            nbdkit_error("readahead: 0 to 64 windows");
            return -1;
        }
        map.o.readahead = (unsigned)n;
        return 0;
    }
    nbdkit_error("unknown parameter '%s'", key);
    return -1;
}

static int
map_config_complete(void)
{
    if (!map.repo || !map.disk) {
        nbdkit_error("repo= and disk= are required");
        return -1;
    }
    if (!map.name && !map.backup) {
        nbdkit_error("name= or backup=ID is required");
        return -1;
    }
    return 0;
}

/* The client's error slot, for nbdkit (and so for the NBD client), as
 * text: nbdkit writes it to the terminal of a `livebackup map` in the
 * foreground, and it may quote the repository. */
static void
report(void)
{
    CLEANUP_FREE char *msg = lb_term_safe(lb_error_msg());
    CLEANUP_FREE char *hint = lb_term_safe(lb_error_hint_msg());

    if (hint[0])
        nbdkit_error("%s (%s)", msg, hint);
    else
        nbdkit_error("%s", msg);
    nbdkit_set_error(lb_error_errno() == EINVAL ? EINVAL : EIO);
}

static int
map_get_ready(void)
{
    lb_log_init("nbdkit-livebackup-plugin", LB_LOG_WARN);
    agent_opts.rsh = map.rsh;
    agent_opts.remote_backupd = map.remote_backupd;
    agent_opts.progress = false;
    /* a server that stalls is given up on, and the read tried again on a
     * new session, rather than hold the client's read for ever */
    agent_opts.io_watch = true;
    map.rd =
        agent_reader_open(map.repo, map.name,
                          map.backup ? map.backup : "latest", map.disk, &map.o);
    if (!map.rd) {
        report();
        return -1;
    }
    nbdkit_debug("backup %s, disk %s: %llu bytes",
                 agent_reader_backup_id(map.rd), map.disk,
                 (unsigned long long)agent_reader_size(map.rd));
    return 0;
}

/* Serving, in the process that stays: which socket is ours. */
static int
map_after_fork(void)
{
    map.serving = true;
    if (map.unix_path && lstat(map.unix_path, &map.sock) < 0)
        memset(&map.sock, 0, sizeof map.sock);
    return 0;
}

/* nbdkit stops: remove its socket and pid file if they are still ours
 * (another export may have taken the names since). */
static void
map_cleanup(void)
{
    struct stat sb;

    if (!map.serving)
        return;
    if (map.unix_path && map.sock.st_ino && lstat(map.unix_path, &sb) == 0 &&
        S_ISSOCK(sb.st_mode) && sb.st_dev == map.sock.st_dev &&
        sb.st_ino == map.sock.st_ino && unlink(map.unix_path) < 0)
        nbdkit_debug("unlink %s: %m", map.unix_path);
    if (map.pidfile) {
        CLEANUP_FREE char *text = lb_read_file(map.pidfile, 64, NULL);
        if (text && strtol(text, NULL, 10) == (long)getpid() &&
            unlink(map.pidfile) < 0)
            nbdkit_debug("unlink %s: %m", map.pidfile);
    }
}

static void *
map_open(int readonly)
{
    (void)readonly;
    return &map;
}

static int64_t
map_get_size(void *h)
{
    (void)h;
    return (int64_t)agent_reader_size(map.rd);
}

static int
map_can_multi_conn(void *h)
{
    (void)h;
    return 1;
}

static int
map_can_extents(void *h)
{
    (void)h;
    return 1;
}

static int
map_block_size(void *h, uint32_t *minimum, uint32_t *preferred,
               uint32_t *maximum)
{
    (void)h;
    /* Not the window size: clients keep many requests of the preferred
     * size in flight, and nbdkit holds a buffer for each (measured with
     * nbdcopy: 4 MiB gave a 212 MiB peak RSS and 3.2 s for 1 GiB, 256 KiB
     * 89 MiB and 1.8 s). */
    *minimum = 1;
    *preferred = 256u << 10;
    *maximum = 0xffffffff;
    return 0;
}

static int
map_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
    (void)h;
    (void)flags;
    if (agent_reader_pread(map.rd, buf, count, offset) < 0) {
        report();
        return -1;
    }
    return 0;
}

static int
add_extent(void *opaque, uint64_t off, uint64_t len, unsigned kind)
{
    uint32_t type = kind == AGENT_EXTENT_HOLE
                        ? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO
                    : kind == AGENT_EXTENT_ZERO ? NBDKIT_EXTENT_ZERO
                                                : 0;

    if (nbdkit_add_extent(opaque, off, len, type) < 0)
        return lb_fail(errno ? errno : EIO, "nbdkit: cannot add an extent");
    return 0;
}

static int
map_extents(void *h, uint32_t count, uint64_t offset, uint32_t flags,
            struct nbdkit_extents *extents)
{
    (void)h;
    (void)flags; /* REQ_ONE: nbdkit keeps the first */
    if (agent_reader_extents(map.rd, offset, count, add_extent, extents) < 0) {
        report();
        return -1;
    }
    return 0;
}

static struct nbdkit_plugin plugin = {
    .name = "livebackup",
    .longname = "livebackup: one disk of a backup, read on demand",
    .version = LB_VERSION,
    .description = "A read-only export of one disk of a livebackup backup",
    .unload = map_unload,
    .config = map_config,
    .config_complete = map_config_complete,
    .config_help = "repo=URL disk=DISK [name=NAME] [backup=ID|latest|TIME] "
                   "[cache=SIZE] [readahead=N] [rsh=CMD] "
                   "[remote_backupd=PATH] [unix=PATH] [pidfile=PATH]",
    .get_ready = map_get_ready,
    .after_fork = map_after_fork,
    .cleanup = map_cleanup,
    .open = map_open,
    .get_size = map_get_size,
    .can_multi_conn = map_can_multi_conn,
    .can_extents = map_can_extents,
    .block_size = map_block_size,
    .pread = map_pread,
    .extents = map_extents,
    .errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
