/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Instant restore: a domain that runs within seconds on a backup, however
 * large its disks. Each restored disk starts as a local qcow2 overlay
 * (DIR/NAME-vda.instant.qcow2) whose backing file is an NBD export of that
 * disk of the backup (nbdkit with our plugin, a daemon of its own on a
 * unix socket in the state directory); the guest's writes go to the
 * overlay only (the export is read-only), its reads of what it has not
 * written come from the export.
 *
 * The pull, in the background, in two steps per disk:
 * 1. the fill: nbdcopy copies the disk from the export into its base,
 *    DIR/NAME-vda.raw (sparse; written as BASE.part, flushed, renamed), at
 *    the export's full speed: many requests in flight, the backup's holes
 *    skipped. The guest runs on meanwhile; its writes stay in the overlay.
 * 2. the move: the top, DIR/NAME-vda.qcow2 (the path the restored XML
 *    names), is made empty over the base, and a shallow block copy
 *    (libvirt's blockcopy --shallow --reuse-external: QEMU's mirror of the
 *    overlay's own clusters only, every new write mirrored synchronously)
 *    fills it with the guest's writes; once ready the domain pivots onto
 *    it and its persistent definition is rewritten to name it. The overlay
 *    goes, the exports stop, the journal goes: the domain runs on
 *    NAME-vda.qcow2 over NAME-vda.raw, nothing of the repository beneath.
 * (QEMU 7.2's block-stream, the first way, pulls 512 KiB at a time with
 * one request in flight, holes included: 3x a plain restore's time at 8
 * GiB, bench/results-instant.md; a full mirror of the chain through the
 * export was 2x.) A shut-off domain is finished offline: the fill, then the
 * overlay rebased onto the base without a copy (qemu-img rebase -u: the
 * base holds what the export serves) and moved to the top's name.
 *
 * Who finishes it: a watcher process (`livebackup __instant-watch NAME`,
 * started detached by the restore); if it is gone (killed, host rebooted)
 * or a step failed (the export or the repository went away), `livebackup
 * recover NAME` does the same in the foreground: it restarts what is gone
 * (the exports; a fill starts again from the start), resumes a guest that
 * paused on a read error, and waits.
 *
 * The pivot: until it, the overlay holds every write the guest flushed
 * (QEMU flushes the top when the copy completes, and the guest's flushes
 * go to the top after it). libvirt leaves the persistent definition on the
 * overlay after a pivot of a TRANSIENT_JOB copy: it is rewritten, and the
 * guest is paused from before the pivot until after the rewrite, so that
 * no write falls between the two (pivot_paused).
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
#include <libvirt/libvirt.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* How long recover and the watcher wait for a pull (they also end when
 * the domain stops or libvirtd goes away). */
#define PULL_WAIT_S (30u * 24 * 3600)
#define SUN_PATH_MAX 107

/* ---- the files -------------------------------------------------------------- */

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

/* The qcow2 the domain ends on, empty over base. Any earlier one is a copy
 * that never finished (the domain never ran on it: the caller checked). */
static int
top_create(const struct instant_disk *d)
{
    char sz[32];
    char *argv[] = {"qemu-img", "create", "-q", "-f",   "qcow2", "-b", d->base,
                    "-F",       "raw",    "--", d->top, sz,      NULL};

    snprintf(sz, sizeof sz, "%llu", (unsigned long long)d->size);
    if (unlink(d->top) < 0 && errno != ENOENT)
        return lb_error(errno, "remove %s", d->top);
    return agent_run_ok(argv, NULL);
}

/* 1 if disk target of the domain's persistent (inactive) or live
 * definition has path as its top image, 0 if not, -1. */
static int
dom_on(struct agent_dom *dom, const char *target, const char *path,
       bool inactive)
{
    struct agent_vdisk *vd;
    size_t nd;
    int on = 0;

    if (agent_virt_disks(dom, inactive, &vd, &nd) < 0)
        return -1;
    for (size_t k = 0; k < nd; k++)
        if (strcmp(vd[k].target, target) == 0 && vd[k].source &&
            strcmp(vd[k].source, path) == 0)
            on = 1;
    agent_vdisks_free(vd, nd);
    return on;
}

/* Is disk d finished: does the domain's live or persistent definition name
 * its top (over its base, nothing of the backup beneath)? */
static int
disk_done(struct agent_dom *dom, const struct instant_disk *d, bool *done)
{
    int on = dom_on(dom, d->target, d->top, false);

    if (on == 0)
        on = dom_on(dom, d->target, d->top, true);
    if (on < 0)
        return -1;
    *done = on == 1;
    return 0;
}

/* The persistent definition names disk d's top, or the next start would
 * boot on the overlay (without the writes made since the pivot): libvirt
 * leaves it alone on a pivot of a TRANSIENT_JOB copy, and an offline
 * finish moves the overlay to the top's name. */
static int
top_persist(struct agent_virt *v, struct agent_dom *dom,
            const struct instant_disk *d)
{
    char *t[] = {(char *)d->target}, *p[] = {d->top}, *f[] = {"qcow2"};
    CLEANUP_FREE char *ix = NULL;
    CLEANUP_FREE char *nx = NULL;
    int on = dom_on(dom, d->target, d->top, true);

    if (on != 0)
        return on < 0 ? -1 : 0;
    ix = agent_virt_xml(dom, VIR_DOMAIN_XML_INACTIVE);
    nx = ix ? agent_xml_set_disks(ix, 1, t, p, f) : NULL;
    return nx ? agent_virt_define(v, nx) : -1;
}

/* ---- the restore -------------------------------------------------------------- */

/* Where disk i's files and export live: the overlay and base beside top
 * (the path the restored XML names), the export in the state directory
 * (a unix socket path must fit in 108 bytes). */
static int
plan_disk(struct instant_state *st, const struct agent_restore_disk *rd,
          const char *top)
{
    struct instant_disk *d = &st->d[st->nd];
    const char *dir = track_dir();
    size_t stem = strlen(top);

    if (stem > 6 && strcmp(top + stem - 6, ".qcow2") == 0)
        stem -= 6;
    snprintf(d->target, sizeof d->target, "%s", rd->name);
    d->size = rd->size;
    d->top = lb_xstrdup(top);
    d->overlay = lb_xasprintf("%.*s.instant.qcow2", (int)stem, top);
    d->base = lb_xasprintf("%.*s.raw", (int)stem, top);
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
        if (o->tops[i] && plan_disk(st, &b->disks[i], o->tops[i]) < 0)
            return -1;
    return 0;
}

/* The overlays and bases must not exist (with force they are removed):
 * an instant restore must not take another's files. */
static int
files_free(const struct instant_state *st, bool force)
{
    for (size_t i = 0; i < st->nd; i++) {
        const char *f[] = {st->d[i].overlay, st->d[i].base};
        for (size_t k = 0; k < 2; k++) {
            struct stat s;
            if (force && unlink(f[k]) < 0 && errno != ENOENT)
                return lb_error(errno, "remove %s", f[k]);
            if (!force && lstat(f[k], &s) == 0) {
                lb_fail(EEXIST, "%s already exists", f[k]);
                lb_error_hint("restore into another --to DIR or under "
                              "another --name, or replace it with --force");
                return -1;
            }
        }
    }
    return 0;
}

/* The restored XML with each disk on its overlay: where the domain
 * starts. */
static char *
overlay_xml(const char *xml, const struct instant_state *st)
{
    char *t[INSTANT_MAX_DISKS], *p[INSTANT_MAX_DISKS], *f[INSTANT_MAX_DISKS];

    for (size_t i = 0; i < st->nd; i++) {
        t[i] = (char *)st->d[i].target;
        p[i] = st->d[i].overlay;
        f[i] = "qcow2";
    }
    return agent_xml_set_disks(xml, st->nd, t, p, f);
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

/* Remove what an instant restore made of disk d but the files the domain
 * runs on. */
static void
disk_files_remove(const struct instant_state *st, const struct instant_disk *d)
{
    CLEANUP_FREE char *part = lb_xasprintf("%s.part", d->base);
    CLEANUP_FREE char *prog = instant_fill_progress(st, d);

    unlink(part);
    unlink(prog);
    unlink(d->log);
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
        instant_export_stop(&st->d[i]);
        unlink(st->d[i].overlay);
        disk_files_remove(st, &st->d[i]);
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
    CLEANUP_FREE char *xml = NULL;
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
    if (plan_state(o, b, &st) < 0 || files_free(&st, o->force) < 0)
        goto out; /* nothing made yet, nothing of another's to undo */
    if (!(xml = overlay_xml(o->xml, &st)) ||
        agent_virt_qemu_owner(v, xml, &st.qemu_uid, &st.qemu_gid) < 0 ||
        instant_save(&st) < 0)
        goto undo;
    for (size_t i = 0; i < st.nd; i++)
        if (instant_export_up(&st, &st.d[i]) < 0 ||
            overlay_create(&st.d[i]) < 0)
            goto undo;
    if (agent_virt_define(v, xml) < 0)
        goto undo;
    defined = true;
    if (agent_virt_start(v, o->name) < 0 ||
        agent_virt_lookup(v, o->name, &dom) < 0)
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

/* How often a pull that failed while the domain runs is tried again (a
 * copy that was running while the export went away fails; the export is
 * back on the next try). */
#define PULL_TRIES 3

/* A running domain's disk d served: its export up. An export that had to
 * be started again means QEMU's connection to it is gone, and QEMU 7.2's
 * NBD client does not connect again by itself: the domain is saved and
 * started again from its saved state (managedsave), which opens its disks
 * afresh; a guest paused on a read of the vanished export goes on where it
 * was. */
static int
serve_running(struct agent_virt *v, struct agent_dom *dom,
              struct instant_state *st, const struct instant_disk *d,
              bool reopen)
{
    bool resume;

    reopen |= instant_export_pid(d) == 0;
    if (instant_export_up(st, d) < 0 || agent_dom_refresh(dom) < 0)
        return -1;
    /* Resume it afterwards if it runs now or paused on a read error: a
     * guest that reads the vanished export between this look and the save
     * pauses meanwhile, and comes back from its saved state paused. A
     * guest paused for another reason (a user) stays paused. */
    resume = !dom->paused || agent_dom_ioerror(dom) == 1 || st->paused;
    if (reopen) {
        lb_info("%s: saving the domain and starting it again, so that it "
                "connects to the export afresh",
                st->name);
        int job = agent_virt_job_running(dom, d->target);
        if (job < 0 ||
            (job > 0 && agent_virt_job_abort(v, dom, d->target) < 0) ||
            agent_virt_save_restart(dom) < 0)
            return -1;
    }
    if (resume && dom->paused) {
        lb_info("%s: resuming the guest (%s)", st->name,
                st->paused ? "paused for a pivot by a finisher that did not "
                             "end it"
                           : "a read of the backup failed while the export "
                             "was away");
        if (agent_virt_resume(dom) < 0)
            return -1;
    }
    if (st->paused) {
        st->paused = false;
        return instant_save(st);
    }
    return 0;
}

/*
 * The pivot of a ready copy, the guest paused (QEMU drains its requests in
 * flight): the domain switches onto the top (QEMU flushes it first) and
 * its persistent definition is rewritten to name it before the guest
 * writes again, so that at no moment can a host crash restart the domain
 * on a file that lacks a write the guest flushed (the overlay until the
 * switch, the top after it; between the switch and the rewrite there is
 * no write). About a tenth of a second. The journal says so first: a
 * finisher killed meanwhile leaves the guest paused, and the next one
 * resumes it. A guest paused already (by its user) stays paused.
 */
static int
pivot_paused(struct agent_virt *v, struct agent_dom *dom,
             struct instant_state *st, const struct instant_disk *d)
{
    struct lb_error_saved e;
    bool ours;
    int r;

    if (agent_dom_refresh(dom) < 0)
        return -1;
    ours = !dom->paused;
    if (ours) {
        st->paused = true;
        if (instant_save(st) < 0)
            return -1;
        if (agent_virt_suspend(dom) < 0) {
            lb_error_save(&e);
            st->paused = false;
            instant_save(st);
            return lb_error_restore(&e);
        }
        lb_fault_point("agent:instant-paused");
    }
    r = agent_virt_copy_pivot(v, dom, d->target, d->top, PULL_WAIT_S);
    if (r == 0)
        r = top_persist(v, dom, d);
    if (!ours)
        return r;
    lb_error_save(&e);
    /* a resume that fails leaves the journal saying paused: the next
     * finisher resumes the guest */
    if (agent_virt_resume(dom) < 0)
        return -1;
    st->paused = false;
    if (instant_save(st) < 0)
        return -1;
    return r < 0 ? lb_error_restore(&e) : 0;
}

/* The move of a running domain's disk d: its top, made afresh over the
 * filled base, takes the overlay's own clusters (the guest's writes) by a
 * shallow block copy that mirrors every write as it happens; once ready,
 * the domain pivots onto the top (pivot_paused). A copy left running by a
 * finisher that was killed is ended first: its top is made afresh. */
static int
copy_top(struct agent_virt *v, struct agent_dom *dom, struct instant_state *st,
         const struct instant_disk *d)
{
    int job = agent_virt_job_running(dom, d->target), r;

    if (job < 0 || (job > 0 && agent_virt_job_abort(v, dom, d->target) < 0))
        return -1;
    lb_info("%s: moving %s onto %s (the guest's writes copied from the "
            "overlay, then a pivot)",
            st->name, d->target, d->top);
    if (top_create(d) < 0 || agent_virt_copy_start(dom, d->target, d->top) < 0)
        return -1;
    r = agent_virt_copy_ready(v, dom, d->target, d->top, PULL_WAIT_S);
    if (r < 0)
        return -1;
    if (r == 0 && pivot_paused(v, dom, st, d) < 0)
        return -1;
    return top_persist(v, dom, d);
}

/* A disk of a running domain, until it runs on its top. A step that fails
 * while the domain runs is tried again on a fresh connection to the
 * export, PULL_TRIES times at most. */
static int
finish_live(struct agent_virt *v, struct agent_dom *dom,
            struct instant_state *st, const struct instant_disk *d)
{
    for (int tries = 0; tries < PULL_TRIES; tries++) {
        struct lb_error_saved e;
        if (serve_running(v, dom, st, d, tries > 0) < 0)
            return -1;
        if (instant_fill(st, d) == 0 && copy_top(v, dom, st, d) == 0)
            return 0;
        lb_error_save(&e);
        if (agent_dom_refresh(dom) < 0 || !dom->running) {
            lb_error_restore(&e);
            return -1;
        }
        lb_error_restore(&e);
        lb_info("%s: the pull of %s ended before it finished: %s", st->name,
                d->target, lb_error_msg());
        lb_error_clear();
    }
    return lb_fail(EIO,
                   "%s: the pull of %s did not complete in %d tries (the "
                   "export's log: %s)",
                   st->name, d->target, PULL_TRIES, d->log);
}

/*
 * One disk of a shut-off domain: the base filled, the overlay (which holds
 * the guest's writes) rebased onto it without a copy (the base holds what
 * the export serves: qemu-img rebase -u), moved to the top's name, and the
 * definition rewritten onto it. Each step can be done again: an overlay
 * that is gone was moved already.
 */
static int
finish_offline(struct agent_virt *v, struct agent_dom *dom,
               const struct instant_state *st, const struct instant_disk *d)
{
    struct stat s;

    lb_info("%s is shut off: pulling %s from backup %s offline", st->name,
            d->target, st->backup);
    if (stat(d->overlay, &s) == 0) {
        char *argv[] = {"qemu-img", "rebase", "-q", "-u",  "-f",       "qcow2",
                        "-b",       d->base,  "-F", "raw", d->overlay, NULL};
        if (instant_fill(st, d) < 0 || agent_run_ok(argv, NULL) < 0 ||
            instant_rename_durable(d->overlay, d->top) < 0)
            return -1;
    } else if (errno != ENOENT) {
        return lb_error(errno, "stat %s", d->overlay);
    }
    return top_persist(v, dom, d);
}

int
livebk_instant_finish(const char *uri, const char *name)
{
    struct instant_state st;
    struct agent_virt *v = NULL;
    struct agent_dom dom = {0};
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
        bool done = false;
        if (disk_done(&dom, d, &done) < 0)
            goto out;
        if (done) {
            if (top_persist(v, &dom, d) < 0)
                goto out;
            continue;
        }
        if (agent_dom_refresh(&dom) < 0)
            goto out;
        if ((dom.running ? finish_live(v, &dom, &st, d)
                         : finish_offline(v, &dom, &st, d)) < 0)
            goto out;
    }
    for (size_t i = 0; i < st.nd; i++) {
        instant_export_stop(&st.d[i]);
        if (dom_on(&dom, st.d[i].target, st.d[i].overlay, false) == 0)
            unlink(st.d[i].overlay);
        lb_error_clear();
        disk_files_remove(&st, &st.d[i]);
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
    if (livebk_instant_finish(uri, argv[1]) < 0) {
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
        const struct instant_disk *d = &out->st.d[i];
        struct livebk_instant_disk *x = &out->d[i];
        unsigned pct = 0;
        x->export_pid = instant_export_pid(d);
        if (disk_done(dom, d, &x->done) < 0)
            x->done = false;
        lb_error_clear();
        if (x->done)
            continue;
        if (out->finishing && instant_fill_percent(&out->st, d, &pct) == 1) {
            x->pulling = true;
            x->cur = d->size / 100 * pct;
            x->end = d->size;
        } else if (dom->running &&
                   agent_virt_job_info(dom, d->target, &x->cur, &x->end) == 1) {
            x->pulling = true;
        }
        lb_error_clear();
    }
    return 0;
}

void
livebk_instant_info_free(struct livebk_instant_info *i)
{
    instant_free(&i->st);
}
