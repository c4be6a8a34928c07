/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * livebackup mount: the backups of a repository as a read-only FUSE
 * filesystem (like borg's and restic's mount), DIR/NAME/BACKUP/DISK, each
 * disk a file served by the client layer's reader (agent_reader: only the
 * windows a read touches are fetched). With --fs the filesystems found on
 * each disk (the whole disk, or the partitions of its MBR or GPT) are
 * mounted read-only on DIR/NAME/BACKUP/DISK.fs or DISK.pN: ext2/3/4 by
 * fuse2fs (at an offset into the disk file), XFS by guestmount
 * (guestmount.c: a libguestfs appliance reads the disk file). Nothing
 * needs a kernel NBD client or a loop device.
 *
 * The tree comes from one listing at mount time (the backups and their
 * disks' sizes); a disk's reader, with a session of its own, opens on the
 * first open of its file and closes with the last.
 */
#define FUSE_USE_VERSION 312
#include <fuse.h>

#include "agent/client/client.h"
#include "agent/client/run.h"
#include "agent/map/map.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#define MOUNT_CACHE (32u << 20)

struct m_mnt {
    char name[80]; /* vda.fs, vda.p1 */
    uint64_t off;
    unsigned part; /* 1-based, 0 for the whole disk */
    enum map_fs fs;
    pid_t pid; /* the guestmount serving it, 0 if none */
};

struct m_disk {
    char name[65];
    uint64_t size;
    struct agent_reader *rd;
    unsigned opens;
    struct m_mnt *mnt;
    size_t nmnt;
};

struct m_backup {
    char id[PROTO_ID_LEN + 1];
    int64_t time;
    struct m_disk *d;
    size_t nd;
};

struct m_set {
    char *name;
    struct m_backup *b;
    size_t nb;
};

static struct {
    struct map_mount_opts o;
    struct m_set *sets;
    size_t nsets;
    pthread_mutex_t lock; /* the readers' opening and closing */
    time_t now;
    int ready_fd; /* in the background: tells the command we are ready */
    int err_fd;   /* in the background: our stderr's pipe, read end */
    int done_fd;  /* in the background: EOF once the command relayed it */
    char dir[4096];
} M = {.lock = PTHREAD_MUTEX_INITIALIZER,
       .ready_fd = -1,
       .err_fd = -1,
       .done_fd = -1};

/* Once the command has returned: what the processes we started before
 * (a backupd, fuse2fs) write to the stderr they got, the pipe fd, goes to
 * our log (syslog), never to a pipe with no reader (SIGPIPE) or a full
 * one (they would block). */
static void *
err_drain(void *arg)
{
    int fd = *(const int *)arg;
    char line[1024];
    size_t len = 0;
    ssize_t n;

    while ((n = read(fd, line + len, sizeof line - 1 - len)) != 0) {
        char *nl;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        len += (size_t)n;
        line[len] = '\0';
        while ((nl = strchr(line, '\n')) != NULL || len == sizeof line - 1) {
            size_t l = nl ? (size_t)(nl - line) : len;
            line[l] = '\0';
            if (l)
                lb_warn("%s", line);
            l = nl ? l + 1 : l;
            memmove(line, line + l, len - l + 1);
            len -= l;
        }
    }
    close(fd);
    return NULL;
}

/* Tell the waiting command (map_mount's parent) how the mount went: 0,
 * or the error slot's message. */
static void
ready(int rc)
{
    const char *msg = rc == 0 ? "" : lb_error_msg();
    const char *hint = rc == 0 ? "" : lb_error_hint_msg();
    /* "MESSAGE\0HINT\0", in one write */
    struct iovec iov[2] = {{(void *)msg, strlen(msg) + 1},
                           {(void *)hint, strlen(hint) + 1}};
    int null;

    if (M.ready_fd < 0)
        return;
    (void)!writev(M.ready_fd, iov, 2);
    close(M.ready_fd);
    M.ready_fd = -1;
    /* What we wrote before the word is the command's to relay: our pipe's
     * read end is not read here until the command has (it closes its end
     * of done_fd then, or exits; 10 s at most, should it hang). Reading
     * it sooner took a warning away from the user now and then. */
    if (M.done_fd >= 0) {
        struct pollfd pfd = {M.done_fd, POLLIN, 0};
        while (poll(&pfd, 1, 10000) < 0 && errno == EINTR)
            ;
        close(M.done_fd);
        M.done_fd = -1;
    }
    /* from now on nothing to print to: the command has returned */
    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        close(null);
    }
    lb_log_set_target(LB_LOG_TO_SYSLOG);
    if (M.err_fd >= 0) {
        static int drain_fd; /* err_drain's, for good */
        pthread_t t;
        drain_fd = M.err_fd;
        M.err_fd = -1;
        if (pthread_create(&t, NULL, err_drain, &drain_fd) == 0)
            pthread_detach(t);
        else
            close(drain_fd);
    }
}

/* ---- the tree --------------------------------------------------------------- */

static int
add_entry(void *opaque, struct proto_kv *e)
{
    const char *name = proto_kv_get(e, "name");
    const char *id = proto_kv_get(e, "id");
    const char *disks = proto_kv_get(e, "disks");
    char names[PROTO_MF_MAX_DISKS][65];
    uint64_t sizes[PROTO_MF_MAX_DISKS];
    struct m_set *s = NULL;
    struct m_backup *b;
    size_t nd;

    (void)opaque;
    if (!name || !id || !disks || !proto_name_valid(name, strlen(name)) ||
        !proto_backup_id_valid(id, strlen(id)) ||
        map_list_disks(disks, names, sizes, PROTO_MF_MAX_DISKS, &nd) < 0)
        return lb_fail(EPROTO, "a malformed listing entry");
    if (M.o.spec && strcmp(M.o.spec, id) != 0)
        return 0;
    for (size_t i = 0; i < M.nsets; i++)
        if (strcmp(M.sets[i].name, name) == 0)
            s = &M.sets[i];
    if (!s) {
        M.sets = lb_xrealloc(M.sets, (M.nsets + 1) * sizeof *M.sets);
        s = &M.sets[M.nsets++];
        memset(s, 0, sizeof *s);
        s->name = lb_xstrdup(name);
    }
    s->b = lb_xrealloc(s->b, (s->nb + 1) * sizeof *s->b);
    b = &s->b[s->nb++];
    memset(b, 0, sizeof *b);
    snprintf(b->id, sizeof b->id, "%s", id);
    b->time = (int64_t)proto_kv_get_u64(e, "time", 0);
    b->nd = nd;
    b->d = lb_xcalloc(nd ? nd : 1, sizeof *b->d);
    for (size_t i = 0; i < nd; i++) {
        memcpy(b->d[i].name, names[i], sizeof b->d[i].name);
        b->d[i].size = sizes[i];
    }
    return 0;
}

static int
tree_load(void)
{
    struct agent_repo *r = agent_repo_connect(M.o.url);
    int rc;

    if (!r)
        return -1;
    rc = agent_repo_open(r, PROTO_OPEN_READ);
    if (rc == 0)
        rc = agent_repo_list_each(r, M.o.name, add_entry, NULL);
    agent_repo_close(r);
    if (rc == 0 && M.nsets == 0) {
        lb_fail(ENOENT, "no backups%s%s%s%s in %s", M.o.name ? " of " : "",
                M.o.name ? M.o.name : "", M.o.spec ? " with id " : "",
                M.o.spec ? M.o.spec : "", M.o.url);
        return -1;
    }
    return rc;
}

static void
tree_free(void)
{
    for (size_t i = 0; i < M.nsets; i++) {
        for (size_t k = 0; k < M.sets[i].nb; k++) {
            struct m_backup *b = &M.sets[i].b[k];
            for (size_t d = 0; d < b->nd; d++) {
                agent_reader_close(b->d[d].rd);
                free(b->d[d].mnt);
            }
            free(b->d);
        }
        free(M.sets[i].b);
        free(M.sets[i].name);
    }
    free(M.sets);
    M.sets = NULL;
    M.nsets = 0;
}

/* What a path names: depth 0 root, 1 a set, 2 a backup, 3 a disk or a
 * mountpoint (mnt set); -1 nothing. */
struct m_node {
    int depth;
    struct m_set *s;
    struct m_backup *b;
    struct m_disk *d;
    struct m_mnt *mnt;
};

static int
lookup(const char *path, struct m_node *n)
{
    char buf[1024], *save = NULL, *part[4];
    int k = 0;

    memset(n, 0, sizeof *n);
    if (strlen(path) >= sizeof buf)
        return -1;
    memcpy(buf, path, strlen(path) + 1);
    for (char *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save))
        if (k == 4 || !(part[k++] = t))
            return -1;
    n->depth = k;
    if (k == 0)
        return 0;
    for (size_t i = 0; i < M.nsets && !n->s; i++)
        if (strcmp(M.sets[i].name, part[0]) == 0)
            n->s = &M.sets[i];
    if (!n->s)
        return -1;
    if (k == 1)
        return 0;
    for (size_t i = 0; i < n->s->nb && !n->b; i++)
        if (strcmp(n->s->b[i].id, part[1]) == 0)
            n->b = &n->s->b[i];
    if (!n->b)
        return -1;
    if (k == 2)
        return 0;
    for (size_t i = 0; i < n->b->nd; i++) {
        struct m_disk *d = &n->b->d[i];
        if (strcmp(d->name, part[2]) == 0) {
            n->d = d;
            return 0;
        }
        for (size_t m = 0; m < d->nmnt; m++)
            if (strcmp(d->mnt[m].name, part[2]) == 0) {
                n->d = d;
                n->mnt = &d->mnt[m];
                return 0;
            }
    }
    return -1;
}

/* ---- FUSE operations ------------------------------------------------------------ */

static int
m_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    struct m_node n;

    (void)fi;
    if (lookup(path, &n) < 0)
        return -ENOENT;
    memset(st, 0, sizeof *st);
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_mtime = st->st_ctime = st->st_atime = n.b ? n.b->time : M.now;
    if (n.depth == 3 && !n.mnt) {
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = (off_t)n.d->size;
        st->st_blocks = (blkcnt_t)(n.d->size / 512);
    } else {
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
    }
    return 0;
}

static int
m_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
          struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    struct m_node n;

    (void)off;
    (void)fi;
    (void)flags;
    if (lookup(path, &n) < 0)
        return -ENOENT;
    if (n.depth == 3)
        return n.mnt ? 0 : -ENOTDIR;
    fill(buf, ".", NULL, 0, 0);
    fill(buf, "..", NULL, 0, 0);
    if (n.depth == 0)
        for (size_t i = 0; i < M.nsets; i++)
            fill(buf, M.sets[i].name, NULL, 0, 0);
    if (n.depth == 1)
        for (size_t i = 0; i < n.s->nb; i++)
            fill(buf, n.s->b[i].id, NULL, 0, 0);
    if (n.depth == 2)
        for (size_t i = 0; i < n.b->nd; i++) {
            fill(buf, n.b->d[i].name, NULL, 0, 0);
            for (size_t m = 0; m < n.b->d[i].nmnt; m++)
                fill(buf, n.b->d[i].mnt[m].name, NULL, 0, 0);
        }
    return 0;
}

/* The reader of (b, d), opened on its first user. */
static struct agent_reader *
disk_ref(struct m_backup *b, struct m_disk *d)
{
    struct agent_reader_opts ro = {
        .cache_bytes = M.o.cache_bytes ? M.o.cache_bytes : MOUNT_CACHE};
    struct agent_reader *rd;

    pthread_mutex_lock(&M.lock);
    if (!d->rd) {
        d->rd = agent_reader_open(M.o.url, NULL, b->id, d->name, &ro);
        if (!d->rd)
            lb_warn("%s/%s: %s", b->id, d->name, lb_error_msg());
    }
    if (d->rd)
        d->opens++;
    rd = d->rd;
    pthread_mutex_unlock(&M.lock);
    return rd;
}

static void
disk_unref(struct m_disk *d)
{
    pthread_mutex_lock(&M.lock);
    if (d->opens && --d->opens == 0) {
        agent_reader_close(d->rd);
        d->rd = NULL;
    }
    pthread_mutex_unlock(&M.lock);
}

static int
m_open(const char *path, struct fuse_file_info *fi)
{
    struct m_node n;

    if (lookup(path, &n) < 0)
        return -ENOENT;
    if (n.depth != 3 || n.mnt)
        return -EISDIR;
    if ((fi->flags & O_ACCMODE) != O_RDONLY)
        return -EROFS;
    if (!disk_ref(n.b, n.d))
        return -EIO;
    fi->fh = (uint64_t)(uintptr_t)n.d;
    fi->keep_cache = 1; /* a backup never changes */
    return 0;
}

static int
m_read(const char *path, char *buf, size_t len, off_t off,
       struct fuse_file_info *fi)
{
    /* FUSE keeps a file's handle as an integer: ours is its disk */
    // NOLINTNEXTLINE(performance-no-int-to-ptr)
    struct m_disk *d = (struct m_disk *)(uintptr_t)fi->fh;

    (void)path;
    if (off < 0 || (uint64_t)off >= d->size)
        return 0;
    len = (size_t)LB_MIN((uint64_t)len, d->size - (uint64_t)off);
    if (agent_reader_pread(d->rd, buf, len, (uint64_t)off) < 0) {
        lb_warn("read of %s at %lld: %s", path, (long long)off, lb_error_msg());
        return -EIO;
    }
    return (int)len;
}

static int
m_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    // NOLINTNEXTLINE(performance-no-int-to-ptr)
    disk_unref((struct m_disk *)(uintptr_t)fi->fh);
    return 0;
}

static void *
m_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    cfg->kernel_cache = 1;
    cfg->entry_timeout = cfg->attr_timeout = 3600;
    return NULL;
}

static const struct fuse_operations m_ops = {
    .init = m_init,
    .getattr = m_getattr,
    .readdir = m_readdir,
    .open = m_open,
    .read = m_read,
    .release = m_release,
};

/* ---- filesystems inside the disks (--fs) ---------------------------------------- */

/* Give disk d a mountpoint name for the filesystem fs found on partition
 * part (0: the whole disk) at off, if it is one we mount. */
static void
add_mnt(struct m_disk *d, enum map_fs fs, unsigned part, uint64_t off)
{
    struct m_mnt *m;

    if (fs == MAP_FS_NONE)
        return;
    d->mnt = lb_xrealloc(d->mnt, (d->nmnt + 1) * sizeof *d->mnt);
    m = &d->mnt[d->nmnt++];
    memset(m, 0, sizeof *m);
    if (part)
        snprintf(m->name, sizeof m->name, "%s.p%u", d->name, part);
    else
        snprintf(m->name, sizeof m->name, "%s.fs", d->name);
    m->off = off;
    m->part = part;
    m->fs = fs;
}

/* The filesystem of the len bytes at off, from its superblock; a read
 * that fails says so (what it would have mounted is not). */
static enum map_fs
fs_at(struct agent_reader *rd, const char *what, uint64_t off, uint64_t len)
{
    uint8_t sb[MAP_FS_HEAD];

    if (len < sizeof sb)
        return MAP_FS_NONE;
    if (agent_reader_pread(rd, sb, sizeof sb, off) < 0) {
        lb_warn("%s: no filesystem looked for at byte %llu: %s", what,
                (unsigned long long)off, lb_error_msg());
        return MAP_FS_NONE;
    }
    return map_fs_probe(sb, sizeof sb);
}

/* Find the filesystems of one disk: mountpoints in the tree. */
static void
fs_scan(struct m_backup *b, struct m_disk *d)
{
    struct map_part parts[MAP_MAX_PARTS];
    CLEANUP_FREE uint8_t *head = NULL;
    struct agent_reader *rd = disk_ref(b, d);
    CLEANUP_FREE char *what = NULL;
    size_t n = 0, len;

    if (!rd)
        return;
    what = lb_xasprintf("%s/%s", b->id, d->name);
    len = (size_t)LB_MIN((uint64_t)MAP_PARTS_HEAD, d->size);
    head = lb_xmalloc(len);
    if (agent_reader_pread(rd, head, len, 0) < 0)
        lb_warn("%s: no filesystem looked for: its partition table: %s", what,
                lb_error_msg());
    else if (map_parts_parse(head, len, d->size, parts, &n) == MAP_TABLE_NONE)
        add_mnt(d, fs_at(rd, what, 0, d->size), 0, 0);
    for (size_t i = 0; i < n; i++)
        add_mnt(d, fs_at(rd, what, parts[i].off, parts[i].len), parts[i].index,
                parts[i].off);
    disk_unref(d);
}

/* A filesystem not mounted: "WHAT: message; hint", a warning. */
static void
warn_unmounted(const char *what)
{
    const char *hint = lb_error_hint_msg();

    lb_warn("%s: %s%s%s", what, lb_error_msg(), hint[0] ? "; " : "", hint);
}

/* Mount one filesystem: ext2/3/4 with fuse2fs (it goes into the
 * background once mounted), XFS with guestmount (our child), and with
 * --fs-appliance every one with guestmount: fuse2fs runs as root here, on
 * a filesystem the guest wrote. A failure is a warning: the disk stays
 * readable as a file. */
static void
fs_mount(const char *img, const char *at, struct m_mnt *m)
{
    if (m->fs == MAP_FS_XFS || M.o.appliance) {
        if (map_guestmount_start(img, m->part, at, MAP_GUESTMOUNT_TIMEOUT,
                                 &m->pid) < 0)
            warn_unmounted(m->fs == MAP_FS_XFS ? "XFS not mounted"
                                               : "ext2/3/4 not mounted");
        return;
    }
    {
        CLEANUP_FREE char *opt =
            lb_xasprintf("ro,fakeroot,offset=%llu", (unsigned long long)m->off);
        char *argv[] = {"fuse2fs", (char *)img, (char *)at, "-o", opt, NULL};
        if (agent_run_ok(argv, NULL) < 0)
            warn_unmounted(at);
    }
}

/* Every filesystem found, in every backup: call fn on each with its disk
 * file and its mountpoint. */
static void
fs_each(void (*fn)(const char *img, const char *at, struct m_mnt *m))
{
    for (size_t i = 0; i < M.nsets; i++)
        for (size_t k = 0; k < M.sets[i].nb; k++) {
            struct m_backup *b = &M.sets[i].b[k];
            for (size_t d = 0; d < b->nd; d++)
                for (size_t m = 0; m < b->d[d].nmnt; m++) {
                    CLEANUP_FREE char *img =
                        lb_xasprintf("%s/%s/%s/%s", M.o.dir, M.sets[i].name,
                                     b->id, b->d[d].name);
                    CLEANUP_FREE char *at =
                        lb_xasprintf("%s/%s/%s/%s", M.o.dir, M.sets[i].name,
                                     b->id, b->d[d].mnt[m].name);
                    fn(img, at, &b->d[d].mnt[m]);
                }
        }
}

/* Run once our own mount serves. */
static void *
fs_mount_all(void *arg)
{
    (void)arg;
    if (M.o.fs)
        fs_each(fs_mount);
    ready(0);
    return NULL;
}

/* Our mount has ended: a guestmount still serving (our mount was lazily
 * unmounted, or never served) is ended and reaped, by its recorded pid. */
static void
fs_stop(const char *img, const char *at, struct m_mnt *m)
{
    (void)img;
    map_guestmount_stop(m->pid, at);
    m->pid = 0;
}

/* ---- mount and umount -------------------------------------------------------------- */

/* The number of NUL bytes in buf[0..len). */
static size_t
count_nul(const char *buf, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += buf[i] == '\0';
    return n;
}

/* The parent's side of background(): copy what the child writes to its
 * stderr (err) to ours until its word comes on rd (ready(): an empty
 * message if it is mounted, else why not and a hint), then what is left
 * in err. */
static int
relay_until_ready(int rd, int err)
{
    char msg[2 * LB_ERR_MAX + 2], buf[4096];
    ssize_t n, got = 0;
    bool done = false;

    /* a test's hook: the daemon writes and is ready before we read */
    lb_fault_point("mount:relay");
    while (!done) {
        struct pollfd pfd[2] = {{rd, POLLIN, 0}, {err, POLLIN, 0}};
        if (poll(pfd, err >= 0 ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (err >= 0 && pfd[1].revents) {
            n = read(err, buf, sizeof buf);
            if (n > 0)
                (void)!write(2, buf, (size_t)n);
            else if (n == 0 || errno != EINTR) {
                close(err);
                err = -1;
            }
        }
        if (!pfd[0].revents)
            continue;
        n = read(rd, msg + got, sizeof msg - 1 - (size_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            got += n;
        done = n <= 0 || count_nul(msg, (size_t)got) >= 2 ||
               got == (ssize_t)sizeof msg - 1;
    }
    /* written before its word: in the pipe now */
    if (err >= 0) {
        fcntl(err, F_SETFL, O_NONBLOCK);
        while ((n = read(err, buf, sizeof buf)) > 0)
            (void)!write(2, buf, (size_t)n);
        close(err);
    }
    msg[got] = '\0';
    if (got == 0)
        return lb_fail(EIO, "the mount's process ended before it was ready");
    if (!msg[0])
        return 0;
    lb_fail(EIO, "%s", msg);
    if (count_nul(msg, (size_t)got) >= 1 && msg[strlen(msg) + 1])
        lb_error_hint("%s", msg + strlen(msg) + 1);
    return -1;
}

/*
 * Fork: the parent waits for the child's word (it is mounted, or why
 * not) and returns; the child goes on as the mount's daemon. 1 in the
 * parent (0 or -1 in *rc), 0 in the child, -1 on error. The child's
 * stderr is a pipe the parent relays until then: neither the daemon nor
 * a process it starts (a backupd, fuse2fs) holds our caller's stderr, so
 * a `$(livebackup mount ...)` or an ssh session ends with the command.
 */
static int
background(int *rc)
{
    int p[2] = {-1, -1}, e[2] = {-1, -1}, d[2] = {-1, -1};
    pid_t pid = -1;

    if (pipe2(p, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0 ||
        pipe2(d, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
        lb_error(errno, pid < 0 && d[0] >= 0 ? "fork" : "pipe");
        for (int i = 0; i < 2; i++) {
            if (p[i] >= 0)
                close(p[i]);
            if (e[i] >= 0)
                close(e[i]);
            if (d[i] >= 0)
                close(d[i]);
        }
        return -1;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        close(p[0]);
        close(d[1]);
        M.done_fd = d[0];
        M.err_fd = e[0]; /* read once the command has returned (ready) */
        setsid();
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            close(null);
        }
        dup2(e[1], 2);
        close(e[1]);
        M.ready_fd = p[1];
        return 0;
    }
    close(p[1]);
    close(e[1]);
    close(d[0]);
    *rc = relay_until_ready(p[0], e[0]);
    close(p[0]);
    close(d[1]); /* the daemon may read its stderr's pipe now */
    return 1;
}

int
map_mount(const struct map_mount_opts *o)
{
    char *argv[] = {"livebackup", "-o", "ro,default_permissions", NULL};
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    struct fuse_loop_config *lc = NULL;
    struct fuse *f = NULL;
    pthread_t th;
    bool th_started = false;
    int ret = -1, bg;
    struct stat sb;

    M.o = *o;
    M.now = time(NULL);
    if (!realpath(o->dir, M.dir))
        return lb_error(errno, "%s", o->dir);
    /* FUSE mounts over a file too: the file then reads as I/O errors
     * until umount, and nothing of the tree shows */
    if (stat(M.dir, &sb) < 0)
        return lb_error(errno, "%s", o->dir);
    if (!S_ISDIR(sb.st_mode)) {
        lb_fail(ENOTDIR, "%s is not a directory", o->dir);
        lb_error_hint("mount shows the backups in a directory: mkdir one");
        return -1;
    }
    M.o.dir = M.dir;
    /* in the background before the repository's sessions start */
    if (!o->foreground && (bg = background(&ret)) != 0)
        return bg < 0 ? -1 : ret;
    if (tree_load() < 0)
        goto out;
    if (o->fs)
        for (size_t i = 0; i < M.nsets; i++)
            for (size_t k = 0; k < M.sets[i].nb; k++)
                for (size_t d = 0; d < M.sets[i].b[k].nd; d++)
                    fs_scan(&M.sets[i].b[k], &M.sets[i].b[k].d[d]);
    for (size_t i = 0; i < LB_ARRAY_SIZE(argv) - 1; i++)
        fuse_opt_add_arg(&args, argv[i]);
    {
        /* umount finds us by the pid in our source name */
        CLEANUP_FREE char *fsname =
            lb_xasprintf("fsname=livebackup:%ld", (long)getpid());
        fuse_opt_add_arg(&args, "-o");
        fuse_opt_add_arg(&args, fsname);
    }
    f = fuse_new(&args, &m_ops, sizeof m_ops, NULL);
    if (!f) {
        lb_fail(EIO, "FUSE: cannot set up the filesystem");
        goto out;
    }
    if (fuse_mount(f, o->dir) < 0) {
        lb_fail(EIO, "FUSE: cannot mount on %s", o->dir);
        lb_error_hint("is /dev/fuse there, and %s an empty directory?", o->dir);
        fuse_destroy(f);
        f = NULL;
        goto out;
    }
    /* the filesystems inside are mounted once we serve */
    if (pthread_create(&th, NULL, fs_mount_all, NULL) == 0)
        th_started = true;
    lc = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(lc, 16);
    ret = fuse_loop_mt(f, lc) == 0 ? 0 : lb_fail(EIO, "FUSE: the loop failed");
    if (th_started)
        pthread_join(th, NULL);
    fuse_loop_cfg_destroy(lc);
    fs_each(fs_stop);
out:
    ready(ret);
    if (f) {
        fuse_unmount(f);
        fuse_destroy(f);
    }
    fuse_opt_free_args(&args);
    tree_free();
    if (!o->foreground)
        _exit(ret < 0 ? 1 : 0);
    return ret;
}
