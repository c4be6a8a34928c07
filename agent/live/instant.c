/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Instant restore: a domain that runs within seconds on a backup, however
 * large its disks. Each restored disk is a local qcow2 overlay whose
 * backing file is an NBD export of that disk of the backup (nbdkit with
 * our plugin, a daemon of its own on a unix socket in the state
 * directory); the guest's writes go to the overlay only (the export is
 * read-only), its reads of what it has not written come from the export.
 * A block pull (QEMU's block-stream) copies every block into the overlay
 * in the background; when it completes, the overlay stands alone, the
 * exports stop and the journal goes.
 *
 * Who finishes it: a watcher process (`livebackup __instant-watch NAME`,
 * started detached by the restore) waits for the pulls; if it is gone
 * (killed, host rebooted) or a pull failed (the export or the repository
 * went away), `livebackup recover NAME` does the same in the foreground:
 * it restarts what is gone (the exports, the pulls), resumes a guest that
 * paused on a read error, and waits. A shut-off domain is finished
 * offline (qemu-img rebase onto nothing, through the export).
 *
 * The disks are restored with error_policy and rerror_policy "stop": while
 * an export is unreachable, a guest read that needs it pauses the guest
 * instead of failing inside it, and recover resumes it. (libvirt 9.0 has
 * no XML for QEMU's NBD reconnect-delay; QEMU's client connects again on
 * the next request once the export is back.) Until the pulls complete the
 * domain depends on the repository being reachable.
 */
#include "agent/live/instant.h"
#include "agent/client/run.h"
#include "agent/live/live.h"
#include "common/json.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* How long recover and the watcher wait for a pull (they also end when
 * the domain stops or libvirtd goes away). */
#define PULL_WAIT_S (30u * 24 * 3600)
#define SUN_PATH_MAX 107

/* ---- the exports ------------------------------------------------------------ */

/* The pid of disk d's export if it runs, else 0. */
static pid_t
export_pid(const struct instant_disk *d)
{
    CLEANUP_FREE char *text = lb_read_file(d->pidfile, 64, NULL);
    char path[64], stat[512];
    CLEANUP_CLOSE int fd = -1;
    ssize_t n;
    long pid;
    char *p;

    lb_error_clear();
    if (!text || (pid = strtol(text, NULL, 10)) <= 1)
        return 0;
    /* "PID (nbdkit) S ...": ours, and not a zombie (procfs files have no
     * size: read, not lb_read_file) */
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || (n = read(fd, stat, sizeof stat - 1)) <= 0)
        return 0;
    stat[n] = '\0';
    if (!strstr(stat, "(nbdkit)") || !(p = strrchr(stat, ')')) || p[1] != ' ' ||
        p[2] == 'Z')
        return 0;
    return (pid_t)pid;
}

static int
export_up(const struct instant_state *st, const struct instant_disk *d)
{
    struct agent_export e = {0};

    if (export_pid(d) > 0)
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
    lb_info("%s: the export of %s from backup %s serves on %s (pid %ld)",
            st->name, d->target, st->backup, d->socket, (long)export_pid(d));
    return 0;
}

static void
export_stop(const struct instant_disk *d)
{
    pid_t pid = export_pid(d);

    if (pid > 0 && kill(pid, SIGTERM) == 0) {
        for (int i = 0; i < 200 && export_pid(d) == pid; i++)
            usleep(50 * 1000);
        /* nbdkit waits for its plugin's requests in flight: one stuck on
         * a repository that does not answer must not keep it (and its
         * socket) for ever once its pid file is gone. */
        if (export_pid(d) == pid) {
            lb_warn("the export of %s (pid %ld) did not stop in 10 s: killed",
                    d->target, (long)pid);
            kill(pid, SIGKILL);
        }
    }
    unlink(d->socket);
    unlink(d->pidfile);
}

/* ---- the overlays ---------------------------------------------------------- */

static char *
backing_json(const struct instant_disk *d)
{
    struct lb_buf b = {0};

    lb_buf_append(&b,
                  "json:{\"driver\":\"nbd\",\"server\":{\"type\":"
                  "\"unix\",\"path\":",
                  52);
    lb_json_escape(&b, d->socket);
    lb_buf_append(&b, "}}", 3);
    return (char *)b.data;
}

static int
overlay_create(const struct instant_disk *d)
{
    CLEANUP_FREE char *backing = backing_json(d);
    char sz[32];
    char *argv[] = {"qemu-img", "create", "-q",  "-f", "qcow2",    "-u", "-b",
                    backing,    "-F",     "raw", "--", d->overlay, sz,   NULL};

    snprintf(sz, sizeof sz, "%llu", (unsigned long long)d->size);
    return agent_run_ok(argv, NULL);
}

/* Does the overlay still have a backing file (the export)? Its header
 * says: QEMU rewrites it when a pull completes. */
static int
overlay_backed(const struct instant_disk *d, bool *backed)
{
    char *argv[] = {"qemu-img", "info",     "-U", "--output=json",
                    "--",       d->overlay, NULL};
    CLEANUP_FREE char *out = NULL;
    struct lb_json *j;
    char err[128];

    if (agent_run_ok(argv, &out) < 0)
        return -1;
    j = lb_json_parse(out, strlen(out), err, sizeof err);
    if (!j)
        return lb_fail(EPROTO, "qemu-img info %s: %s", d->overlay, err);
    *backed = lb_json_get(j, "backing-filename") != NULL;
    lb_json_free(j);
    return 0;
}

/* ---- the restore -------------------------------------------------------------- */

static unsigned long
pull_bandwidth(void)
{
    /* tests slow the pull down to act during it */
    const char *e = getenv("LIVEBACKUP_PULL_BANDWIDTH");

    return e ? strtoul(e, NULL, 10) : 0;
}

/* Where disk i's export lives: the state directory (a unix socket path
 * must fit in 108 bytes). */
static int
plan_disk(struct instant_state *st, const struct agent_restore_disk *rd,
          const char *overlay)
{
    struct instant_disk *d = &st->d[st->nd];
    const char *dir = track_dir();

    snprintf(d->target, sizeof d->target, "%s", rd->name);
    d->size = rd->size;
    d->overlay = lb_xstrdup(overlay);
    d->socket = lb_xasprintf("%s/%.8s-%s.sock", dir, st->uuid, rd->name);
    d->pidfile = lb_xasprintf("%s/%s-%s.export.pid", dir, st->name, rd->name);
    d->log = lb_xasprintf("%s/%s-%s.export.log", dir, st->name, rd->name);
    st->nd++;
    if (strlen(d->socket) > SUN_PATH_MAX) {
        lb_fail(ENAMETOOLONG, "the export's socket %s is too long a path",
                d->socket);
        lb_error_hint("set a shorter state directory (--state-dir, "
                      "LIVEBACKUP_STATE_DIR)");
        return -1;
    }
    return 0;
}

static int
plan_state(const struct livebk_instant *o, const struct agent_backup *b,
           struct instant_state *st)
{
    const char *set = proto_kv_get(&b->meta, "name");

    memset(st, 0, sizeof *st);
    snprintf(st->name, sizeof st->name, "%s", o->name);
    snprintf(st->uuid, sizeof st->uuid, "%s", o->uuid);
    snprintf(st->backup, sizeof st->backup, "%s", b->id);
    st->url = lb_xstrdup(o->url);
    st->set = lb_xstrdup(set ? set : "");
    st->rsh = lb_xstrdup(agent_opts.rsh ? agent_opts.rsh : "");
    st->remote_backupd =
        lb_xstrdup(agent_opts.remote_backupd ? agent_opts.remote_backupd : "");
    st->cache_bytes = o->cache_bytes;
    st->started = lb_wall_time();
    for (size_t i = 0; i < b->ndisks; i++)
        if (o->overlays[i] && plan_disk(st, &b->disks[i], o->overlays[i]) < 0)
            return -1;
    return 0;
}

/* Start `livebackup __instant-watch NAME` detached (a grandchild: no
 * zombie for us to reap), its output appended to the journal's log. */
static int
watcher_spawn(const char *uri, const char *name)
{
    CLEANUP_FREE char *log =
        lb_xasprintf("%s/%s.instant.log", track_dir(), name);
    pid_t pid = fork();
    int st;

    if (pid < 0)
        return lb_error(errno, "fork");
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        char *argv[] = {"livebackup", "__instant-watch", (char *)name,
                        "-c",         (char *)uri,       NULL};
        setsid();
        if (fork() != 0)
            _exit(0);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (null >= 0)
            dup2(null, 0);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return 0;
}

/* Undo a restore that did not get its domain running. */
static void
rollback(struct agent_virt *v, const struct instant_state *st, bool defined)
{
    struct lb_error_saved e;
    struct agent_dom dom;

    lb_error_save(&e);
    if (defined && agent_virt_lookup(v, st->name, &dom) == 0) {
        agent_virt_destroy(&dom, true);
        agent_dom_free(&dom);
    }
    for (size_t i = 0; i < st->nd; i++) {
        export_stop(&st->d[i]);
        unlink(st->d[i].overlay);
        unlink(st->d[i].log);
    }
    instant_remove(st->name);
    lb_error_restore(&e);
}

int
livebk_instant_restore(const struct livebk_instant *o, struct agent_backup *b)
{
    struct instant_state st = {0};
    struct agent_virt *v = NULL;
    struct agent_dom dom = {0};
    unsigned long bw = pull_bandwidth();
    bool defined = false;
    int lock = -1, ret = -1;

    lock = instant_lock(o->name);
    if (lock < 0)
        return -1;
    if (instant_load(o->name, &st) != 1) {
        instant_free(&st);
        lb_fail(EEXIST, "an instant restore of %s is in progress", o->name);
        lb_error_hint("livebackup status %s shows it; livebackup recover %s "
                      "finishes it",
                      o->name, o->name);
        close(lock);
        return -1;
    }
    v = agent_virt_open(o->uri);
    if (!v)
        goto out;
    if (agent_virt_lookup(v, o->name, &dom) == 0) {
        lb_fail(EEXIST, "a domain %s is already defined", o->name);
        lb_error_hint("restore under another --name");
        goto out;
    }
    lb_error_clear();
    if (plan_state(o, b, &st) < 0 || instant_save(&st) < 0)
        goto undo;
    for (size_t i = 0; i < st.nd; i++)
        if (export_up(&st, &st.d[i]) < 0 || overlay_create(&st.d[i]) < 0)
            goto undo;
    if (agent_virt_define(v, o->xml) < 0)
        goto undo;
    defined = true;
    if (agent_virt_start(v, o->name) < 0 ||
        agent_virt_lookup(v, o->name, &dom) < 0)
        goto undo;
    for (size_t i = 0; i < st.nd; i++)
        if (agent_virt_pull(v, &dom, st.d[i].target, bw) < 0)
            goto undo;
    st.pulling = true;
    if (instant_save(&st) < 0)
        goto undo;
    close(lock);
    lock = -1;
    if (watcher_spawn(o->uri, o->name) < 0)
        lb_warn("%s: %s; livebackup recover %s finishes the restore", o->name,
                lb_error_msg(), o->name);
    ret = 0;
    goto out;
undo:
    rollback(v, &st, defined);
out:
    agent_dom_free(&dom);
    agent_virt_close(v);
    instant_free(&st);
    if (lock >= 0)
        close(lock);
    return ret;
}

/* ---- finishing it --------------------------------------------------------------- */

/* How often recover starts a pull again that ended without finishing (a
 * pull that was running while the export was away fails once the export
 * is back, on its first read of it). */
#define PULL_TRIES 3

/* One pass over a disk of a running domain: its export up, its pull
 * running. An export that had to be started again means QEMU's
 * connection to it is gone, and QEMU 7.2's NBD client does not connect
 * again by itself: the domain is saved and started again from its saved
 * state (managedsave), which opens its disks afresh; a guest paused on a
 * read of the vanished export goes on where it was. */
static int
pull_running(struct agent_virt *v, struct agent_dom *dom,
             const struct instant_state *st, const struct instant_disk *d,
             bool reopen)
{
    uint64_t cur, end;
    bool resume;
    int job;

    reopen |= export_pid(d) == 0;
    if (export_up(st, d) < 0 || agent_dom_refresh(dom) < 0)
        return -1;
    job = agent_virt_job_info(dom, d->target, &cur, &end);
    if (job < 0)
        return -1;
    /* Resume it afterwards if it runs now or paused on a read error: a
     * guest that reads the vanished export between this look and the save
     * pauses meanwhile, and comes back from its saved state paused. A
     * guest paused for another reason (a user) stays paused. */
    resume = !dom->paused || agent_dom_ioerror(dom) == 1;
    if (reopen) {
        lb_info("%s: saving the domain and starting it again, so that it "
                "connects to the export afresh",
                st->name);
        if ((job > 0 && agent_virt_job_abort(v, dom, d->target) < 0) ||
            agent_virt_save_restart(dom) < 0)
            return -1;
        job = 0;
    }
    if (resume && dom->paused) {
        lb_info("%s: resuming the guest (a read of the backup failed while "
                "the export was away)",
                st->name);
        if (agent_virt_resume(dom) < 0)
            return -1;
    }
    if (job == 0) {
        lb_info("%s: pulling %s from backup %s", st->name, d->target,
                st->backup);
        if (agent_virt_pull(v, dom, d->target, pull_bandwidth()) < 0)
            return -1;
    }
    return 0;
}

/* A disk of a running domain, until its overlay stands alone (with wait;
 * else once its pull runs). A pull that ends unfinished is started again
 * on a fresh connection, PULL_TRIES times at most. */
static int
finish_live(struct agent_virt *v, struct agent_dom *dom,
            const struct instant_state *st, const struct instant_disk *d,
            bool wait)
{
    bool backed = true;

    for (int tries = 0; backed && tries < PULL_TRIES; tries++) {
        if (pull_running(v, dom, st, d, tries > 0) < 0)
            return -1;
        if (!wait)
            return 0;
        if (agent_virt_wait_job(v, dom, d->target, PULL_WAIT_S) < 0 ||
            overlay_backed(d, &backed) < 0)
            return -1;
        if (backed)
            lb_info("%s: the pull of %s ended before it finished", st->name,
                    d->target);
    }
    if (backed)
        return lb_fail(EIO,
                       "%s: the pull of %s did not complete in %d tries (the "
                       "export's log: %s)",
                       st->name, d->target, PULL_TRIES, d->log);
    return 0;
}

/* An option value for --image-opts: commas doubled. */
static void
opt_escape(struct lb_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == ',')
            lb_buf_put_u8(b, ',');
        lb_buf_put_u8(b, (uint8_t)*v);
    }
}

/* One disk of a shut-off domain: copy what the overlay lacks from the
 * export, offline. The backing is given as options (QEMU's raw format over
 * a json: nbd backing file name does not open outside libvirt). */
static int
finish_offline(const struct instant_state *st, const struct instant_disk *d)
{
    CLEANUP_BUF struct lb_buf o = {0};
    char *argv[] = {"qemu-img", "rebase",       "-q", "-b",
                    "",         "--image-opts", NULL, NULL};

    if (export_up(st, d) < 0)
        return -1;
    {
        static const char q[] = "driver=qcow2,file.filename=";
        lb_buf_append(&o, q, sizeof q - 1);
    }
    opt_escape(&o, d->overlay);
    {
        static const char b[] = ",backing.driver=nbd,backing.server.type="
                                "unix,backing.server.path=";
        lb_buf_append(&o, b, sizeof b - 1);
    }
    opt_escape(&o, d->socket);
    lb_buf_put_u8(&o, 0);
    argv[6] = (char *)o.data;
    lb_info("%s is shut off: pulling %s from backup %s offline", st->name,
            d->target, st->backup);
    return agent_run_ok(argv, NULL);
}

int
livebk_instant_finish(const char *uri, const char *name, bool wait)
{
    struct instant_state st;
    struct agent_virt *v = NULL;
    struct agent_dom dom = {0};
    size_t done = 0;
    int lock, r, ret = -1;

    lock = instant_lock(name);
    if (lock < 0)
        return -1;
    r = instant_load(name, &st);
    if (r != 0) {
        close(lock);
        return r;
    }
    v = agent_virt_open(uri);
    if (!v || agent_virt_lookup(v, name, &dom) < 0)
        goto out;
    for (size_t i = 0; i < st.nd; i++) {
        const struct instant_disk *d = &st.d[i];
        bool backed = true;
        if (overlay_backed(d, &backed) < 0)
            goto out;
        if (backed && dom.running && finish_live(v, &dom, &st, d, wait) < 0)
            goto out;
        if (backed && !dom.running && finish_offline(&st, d) < 0)
            goto out;
        if (overlay_backed(d, &backed) < 0)
            goto out;
        done += !backed;
    }
    if (done < st.nd) {
        ret = 0; /* pulls running, not waited for */
        goto out;
    }
    for (size_t i = 0; i < st.nd; i++) {
        export_stop(&st.d[i]);
        unlink(st.d[i].log);
    }
    {
        CLEANUP_FREE char *log =
            lb_xasprintf("%s/%s.instant.log", track_dir(), name);
        unlink(log);
    }
    instant_remove(name);
    lb_info("%s: every disk is pulled from backup %s: it runs on its own "
            "images now",
            name, st.backup);
    ret = 0;
out:
    agent_dom_free(&dom);
    agent_virt_close(v);
    instant_free(&st);
    close(lock);
    return ret;
}

int
cmd_instant_watch(int argc, char **argv)
{
    const char *uri = argc == 4 && strcmp(argv[2], "-c") == 0 ? argv[3] : NULL;

    if (!uri)
        return 2;
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    lb_log_set_target(LB_LOG_TO_BOTH);
    if (livebk_instant_finish(uri, argv[1], true) < 0) {
        lb_log_error_slot();
        return 1;
    }
    return 0;
}

/* ---- status -------------------------------------------------------------------- */

int
livebk_instant_query(struct agent_dom *dom, struct livebk_instant_info *out)
{
    int r, fd;

    memset(out, 0, sizeof *out);
    r = instant_load(dom->name, &out->st);
    if (r != 0)
        return r;
    /* someone (the watcher, or recover) is finishing it if it is locked */
    fd = instant_lock(dom->name);
    out->finishing = fd < 0;
    if (fd >= 0)
        close(fd);
    lb_error_clear();
    for (size_t i = 0; i < out->st.nd; i++) {
        struct livebk_instant_disk *x = &out->d[i];
        bool backed = true;
        x->export_pid = export_pid(&out->st.d[i]);
        if (overlay_backed(&out->st.d[i], &backed) == 0)
            x->done = !backed;
        lb_error_clear();
        if (dom->running && !x->done &&
            agent_virt_job_info(dom, out->st.d[i].target, &x->cur, &x->end) ==
                1)
            x->pulling = true;
        lb_error_clear();
    }
    return 0;
}

void
livebk_instant_info_free(struct livebk_instant_info *i)
{
    instant_free(&i->st);
}
