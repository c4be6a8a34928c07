/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvirt for the agent (see virt.h). Nothing here decides what to back
 * up; backup.c and decide.c do. Every libvirt failure is turned into the
 * error slot with libvirt's own message and the operation that failed.
 */
#include "agent/live/virt.h"

#include <errno.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/tree.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#define MAX_JOBS 64

struct job_event {
    char uuid[VIR_UUID_STRING_BUFLEN];
    char target[65];
    int status; /* -1: none yet, else VIR_DOMAIN_BLOCK_JOB_* */
    int type;
};

struct agent_virt {
    char *uri;
    virConnectPtr conn;
    pthread_t loop;
    bool loop_running;
    volatile int stop;
    int cb_id;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    struct job_event ev[MAX_JOBS];
    size_t nev;
    /* the thaw guard of the guest being frozen */
    pid_t guard;
    int guard_fd;
};

static void
silent_error(void *opaque, virErrorPtr err)
{
    (void)opaque;
    (void)err;
}

static int
virt_fail(const char *what)
{
    const char *m = virGetLastErrorMessage();
    return lb_fail(EIO, "%s: %s", what, m ? m : "unknown libvirt error");
}

static void *
event_loop(void *arg)
{
    struct agent_virt *v = arg;

    while (!v->stop)
        if (virEventRunDefaultImpl() < 0)
            break;
    return NULL;
}

static void
wake_loop(int timer, void *opaque)
{
    (void)opaque;
    virEventRemoveTimeout(timer);
}

static int
on_block_job(virConnectPtr conn, virDomainPtr dom, const char *disk, int type,
             int status, void *opaque)
{
    struct agent_virt *v = opaque;
    char uuid[VIR_UUID_STRING_BUFLEN];

    (void)conn;
    if (virDomainGetUUIDString(dom, uuid) < 0)
        return 0;
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < v->nev; i++) {
        if (strcmp(v->ev[i].uuid, uuid) == 0 &&
            strcmp(v->ev[i].target, disk) == 0) {
            v->ev[i].status = status;
            v->ev[i].type = type;
            pthread_cond_broadcast(&v->cv);
            break;
        }
    }
    pthread_mutex_unlock(&v->lock);
    lb_debug("block job event: %s %s type %d status %d", uuid, disk, type,
             status);
    return 0;
}

struct agent_virt *
agent_virt_open(const char *uri)
{
    static bool registered;
    struct agent_virt *v = lb_xcalloc(1, sizeof *v);

    v->uri = lb_xstrdup(uri);
    v->cb_id = -1;
    v->guard_fd = -1;
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->cv, NULL);
    virSetErrorFunc(NULL, silent_error);
    if (!registered) {
        if (virEventRegisterDefaultImpl() < 0) {
            virt_fail("libvirt event loop");
            goto fail;
        }
        registered = true;
    }
    v->conn = virConnectOpen(uri);
    if (!v->conn) {
        virt_fail("cannot connect to libvirt");
        lb_error_prefix("%s", uri);
        lb_error_hint("is libvirtd running? (-c URI picks another "
                      "connection)");
        goto fail;
    }
    v->cb_id = virConnectDomainEventRegisterAny(
        v->conn, NULL, VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
        VIR_DOMAIN_EVENT_CALLBACK(on_block_job), v, NULL);
    if (v->cb_id < 0) {
        virt_fail("libvirt block job events");
        goto fail;
    }
    if (pthread_create(&v->loop, NULL, event_loop, v) != 0) {
        lb_error(errno, "event loop thread");
        goto fail;
    }
    v->loop_running = true;
    return v;
fail:
    agent_virt_close(v);
    return NULL;
}

void
agent_virt_close(struct agent_virt *v)
{
    if (!v)
        return;
    if (v->guard > 0) {
        /* Never leave a guard behind: it would thaw a guest later. */
        if (v->guard_fd >= 0)
            (void)!write(v->guard_fd, "T", 1);
        close(v->guard_fd);
        waitpid(v->guard, NULL, 0);
    }
    if (v->cb_id >= 0)
        virConnectDomainEventDeregisterAny(v->conn, v->cb_id);
    if (v->loop_running) {
        v->stop = 1;
        virEventAddTimeout(0, wake_loop, NULL, NULL);
        pthread_join(v->loop, NULL);
    }
    if (v->conn)
        virConnectClose(v->conn);
    pthread_mutex_destroy(&v->lock);
    pthread_cond_destroy(&v->cv);
    free(v->uri);
    free(v);
}

const char *
agent_virt_uri(const struct agent_virt *v)
{
    return v->uri;
}

int
agent_dom_refresh(struct agent_dom *d)
{
    int state, reason;

    if (virDomainGetState(d->d, &state, &reason, 0) < 0)
        return virt_fail("domain state");
    d->running = state == VIR_DOMAIN_RUNNING || state == VIR_DOMAIN_PAUSED ||
                 state == VIR_DOMAIN_BLOCKED || state == VIR_DOMAIN_PMSUSPENDED;
    d->paused = state == VIR_DOMAIN_PAUSED;
    d->persistent = virDomainIsPersistent(d->d) == 1;
    return 0;
}

int
agent_virt_lookup(struct agent_virt *v, const char *what, struct agent_dom *out)
{
    memset(out, 0, sizeof *out);
    out->d = virDomainLookupByName(v->conn, what);
    if (!out->d)
        out->d = virDomainLookupByUUIDString(v->conn, what);
    if (!out->d) {
        lb_fail(ENOENT, "no domain %s on %s", what, v->uri);
        lb_error_hint("virsh -c %s list --all shows the domains", v->uri);
        return -1;
    }
    snprintf(out->name, sizeof out->name, "%s", virDomainGetName(out->d));
    if (virDomainGetUUIDString(out->d, out->uuid) < 0)
        return virt_fail("domain UUID");
    return agent_dom_refresh(out);
}

void
agent_dom_free(struct agent_dom *d)
{
    if (d->d)
        virDomainFree(d->d);
    d->d = NULL;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
agent_virt_list(struct agent_virt *v, char ***names, size_t *n)
{
    virDomainPtr *doms = NULL;
    int k = virConnectListAllDomains(v->conn, &doms, 0);

    *names = NULL;
    *n = 0;
    if (k < 0)
        return virt_fail("list domains");
    *names = lb_xcalloc((size_t)k + 1, sizeof **names);
    for (int i = 0; i < k; i++) {
        (*names)[i] = lb_xstrdup(virDomainGetName(doms[i]));
        virDomainFree(doms[i]);
    }
    free(doms);
    *n = (size_t)k;
    if (k)
        qsort(*names, *n, sizeof **names, cmp_str);
    return 0;
}

char *
agent_virt_xml(struct agent_dom *d, unsigned flags)
{
    char *x = virDomainGetXMLDesc(d->d, flags);

    if (!x)
        virt_fail("domain XML");
    return x;
}

int
agent_virt_define(struct agent_virt *v, const char *xml)
{
    virDomainPtr d = virDomainDefineXML(v->conn, xml);

    if (!d)
        return virt_fail("redefine the domain");
    virDomainFree(d);
    return 0;
}

int
agent_virt_start(struct agent_virt *v, const char *name)
{
    virDomainPtr d = virDomainLookupByName(v->conn, name);
    int r = d ? virDomainCreate(d) : -1;

    if (r < 0)
        virt_fail("start the restored domain");
    if (d)
        virDomainFree(d);
    return r < 0 ? -1 : 0;
}

int
agent_virt_defined(const char *uri, const char *name)
{
    virConnectPtr c;
    virDomainPtr d;

    virSetErrorFunc(NULL, silent_error);
    c = virConnectOpenReadOnly(uri);
    d = c ? virDomainLookupByName(c, name) : NULL;
    if (d)
        virDomainFree(d);
    if (c)
        virConnectClose(c);
    return d != NULL;
}

int
agent_virt_disks(struct agent_dom *d, bool inactive, struct agent_vdisk **out,
                 size_t *n)
{
    CLEANUP_FREE char *xml =
        agent_virt_xml(d, inactive ? VIR_DOMAIN_XML_INACTIVE : 0);

    *out = NULL;
    *n = 0;
    if (!xml)
        return -1;
    return agent_xml_disks(xml, out, n);
}

/* ---- freeze and thaw ----------------------------------------------------- */

/* Start the guard and wait until it is connected and watching. */
static int
guard_start(struct agent_virt *v, struct agent_dom *d)
{
    int in[2], ready[2];
    char exe[4096], c;
    ssize_t n;
    pid_t pid;
    struct pollfd pfd;

    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return lb_error(errno, "find our own executable");
    exe[n] = '\0';
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0)
        return lb_error(errno, "pipe");
    pid = fork();
    if (pid < 0)
        return lb_error(errno, "fork");
    if (pid == 0) {
        char *argv[] = {exe, "__thaw-guard", v->uri, d->uuid, NULL};
        dup2(in[0], 0);
        dup2(ready[1], 1);
        /* Its own session: a Ctrl-C to the agent must not kill it. */
        setsid();
        execv(exe, argv);
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

int
agent_virt_freeze(struct agent_virt *v, struct agent_dom *d, unsigned timeout_s)
{
    int r;

    if (guard_start(v, d) < 0)
        return -1;
    if (agent_virt_set_agent_timeout(d, (int)timeout_s) < 0) {
        guard_stop(v);
        return -1;
    }
    lb_fault_point("agent:before-freeze");
    r = virDomainFSFreeze(d->d, NULL, 0, 0);
    if (r < 0) {
        virErrorPtr e = virGetLastError();
        int code = e ? e->code : 0;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s",
                 virGetLastErrorMessage() ? virGetLastErrorMessage() : "");
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
    if (virDomainAgentSetResponseTimeout(d->d, secs, 0) < 0)
        return virt_fail("set the guest agent timeout");
    return 0;
}

int
agent_virt_thaw(struct agent_virt *v, struct agent_dom *d, bool must)
{
    int ret = 0;

    /* Thawing a thawed guest succeeds (0 filesystems); a guest without a
     * responsive agent cannot have been frozen by us, so that only
     * matters when we froze it. */
    if (virDomainFSThaw(d->d, NULL, 0, 0) < 0 && must) {
        virt_fail("thaw the guest");
        ret = -1;
    }
    if (v)
        guard_stop(v);
    return ret;
}

/*
 * livebackup __thaw-guard URI UUID: started by agent_virt_freeze with a
 * pipe on stdin. It connects, says 'R' on stdout, then waits: 'T' means
 * the agent thawed the guest itself; end-of-file means the agent died, and
 * the guard thaws the guest.
 */
int
cmd_thaw_guard(int argc, char **argv)
{
    virConnectPtr c;
    virDomainPtr d;
    char ch = 0;
    ssize_t n;

    if (argc != 3)
        return 2;
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    virSetErrorFunc(NULL, silent_error);
    c = virConnectOpen(argv[1]);
    d = c ? virDomainLookupByUUIDString(c, argv[2]) : NULL;
    if (!d)
        return 1;
    if (write(1, "R", 1) != 1)
        return 1;
    close(1);
    do
        n = read(0, &ch, 1);
    while (n < 0 && errno == EINTR);
    if (n == 1 && ch == 'T') {
        virDomainFree(d);
        virConnectClose(c);
        return 0;
    }
    for (int i = 0; i < 30; i++) {
        if (virDomainFSThaw(d, NULL, 0, 0) >= 0) {
            fprintf(stderr, "livebackup: the backup ended while the guest "
                            "was frozen: thawed it\n");
            break;
        }
        sleep(1);
    }
    virDomainFree(d);
    virConnectClose(c);
    return 0;
}

/* ---- snapshots and block jobs -------------------------------------------- */

int
agent_virt_snapshot(struct agent_dom *d, size_t n, char *const *targets,
                    char *const *overlays)
{
    struct agent_vdisk *disks;
    size_t nd;
    struct lb_buf x = {0};
    virDomainSnapshotPtr s;
    unsigned flags = VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY |
                     VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC |
                     VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA |
                     VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT;

    if (agent_virt_disks(d, false, &disks, &nd) < 0)
        return -1;
    lb_buf_append(&x, "<domainsnapshot><disks>", 23);
    for (size_t i = 0; i < nd; i++) {
        size_t k;
        char *line;
        for (k = 0; k < n && strcmp(targets[k], disks[i].target) != 0; k++)
            ;
        if (k == n) {
            line = lb_xasprintf("<disk name='%s' snapshot='no'/>",
                                disks[i].target);
        } else {
            xmlChar *esc =
                xmlEncodeSpecialChars(NULL, (const xmlChar *)overlays[k]);
            line = lb_xasprintf("<disk name='%s' snapshot='external' "
                                "type='file'><driver type='qcow2'/><source "
                                "file='%s'/></disk>",
                                disks[i].target, (const char *)esc);
            xmlFree(esc);
        }
        lb_buf_append(&x, line, strlen(line));
        free(line);
    }
    lb_buf_append(&x, "</disks></domainsnapshot>", 26);
    agent_vdisks_free(disks, nd);
    s = virDomainSnapshotCreateXML(d->d, (const char *)x.data, flags);
    lb_buf_free(&x);
    if (!s)
        return virt_fail("disk-only snapshot onto the tracking overlays");
    virDomainSnapshotFree(s);
    return 0;
}

static struct job_event *
job_slot(struct agent_virt *v, struct agent_dom *d, const char *target)
{
    struct job_event *e = NULL;

    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < v->nev; i++)
        if (strcmp(v->ev[i].uuid, d->uuid) == 0 &&
            strcmp(v->ev[i].target, target) == 0)
            e = &v->ev[i];
    if (!e && v->nev < MAX_JOBS)
        e = &v->ev[v->nev++];
    if (e) {
        snprintf(e->uuid, sizeof e->uuid, "%s", d->uuid);
        snprintf(e->target, sizeof e->target, "%s", target);
        e->status = -1;
    }
    pthread_mutex_unlock(&v->lock);
    return e;
}

/* Wait for an event among want (bitmask of 1 << status). */
static int
wait_event(struct agent_virt *v, struct job_event *e, unsigned want,
           unsigned timeout_s, int *status)
{
    struct timespec dl;
    int r = 0;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_s;
    pthread_mutex_lock(&v->lock);
    while (e->status < 0 || !(want & (1u << e->status))) {
        if (pthread_cond_timedwait(&v->cv, &v->lock, &dl) == ETIMEDOUT) {
            r = -1;
            break;
        }
    }
    *status = e->status;
    pthread_mutex_unlock(&v->lock);
    return r;
}

static int
job_outcome(const char *what, const char *target, int status)
{
    if (status == VIR_DOMAIN_BLOCK_JOB_COMPLETED)
        return 0;
    return lb_fail(EIO, "%s of %s %s", what, target,
                   status == VIR_DOMAIN_BLOCK_JOB_FAILED     ? "failed"
                   : status == VIR_DOMAIN_BLOCK_JOB_CANCELED ? "was cancelled"
                                                             : "ended oddly");
}

int
agent_virt_commit(struct agent_virt *v, struct agent_dom *d, const char *target,
                  const char *base, const char *top, unsigned timeout_s)
{
    struct job_event *e = job_slot(v, d, target);
    unsigned want = 1u << VIR_DOMAIN_BLOCK_JOB_COMPLETED |
                    1u << VIR_DOMAIN_BLOCK_JOB_FAILED |
                    1u << VIR_DOMAIN_BLOCK_JOB_CANCELED;
    int status;

    if (!e)
        return lb_fail(EIO, "too many block jobs");
    if (virDomainBlockCommit(d->d, target, base, top, 0, 0) < 0)
        return virt_fail("start the block commit");
    lb_fault_point("agent:during-block-commit");
    if (wait_event(v, e, want, timeout_s, &status) < 0)
        return lb_fail(ETIMEDOUT,
                       "block commit of %s did not finish within "
                       "%u s (it goes on in QEMU; livebackup "
                       "recover finishes it)",
                       target, timeout_s);
    return job_outcome("block commit", target, status);
}

int
agent_virt_commit_active(struct agent_virt *v, struct agent_dom *d,
                         const char *target, const char *base,
                         unsigned timeout_s)
{
    struct job_event *e = job_slot(v, d, target);
    unsigned want = 1u << VIR_DOMAIN_BLOCK_JOB_READY |
                    1u << VIR_DOMAIN_BLOCK_JOB_COMPLETED |
                    1u << VIR_DOMAIN_BLOCK_JOB_FAILED |
                    1u << VIR_DOMAIN_BLOCK_JOB_CANCELED;
    int status;

    if (!e)
        return lb_fail(EIO, "too many block jobs");
    if (virDomainBlockCommit(d->d, target, base, NULL, 0,
                             VIR_DOMAIN_BLOCK_COMMIT_ACTIVE) < 0)
        return virt_fail("start the active block commit");
    if (wait_event(v, e, want, timeout_s, &status) < 0)
        return lb_fail(ETIMEDOUT, "active commit of %s not ready within %u s",
                       target, timeout_s);
    if (status != VIR_DOMAIN_BLOCK_JOB_READY)
        return job_outcome("active commit", target, status);
    job_slot(v, d, target); /* reset for the pivot's completion */
    if (virDomainBlockJobAbort(d->d, target, VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT) <
        0)
        return virt_fail("pivot onto the committed image");
    if (wait_event(v, e, want & ~(1u << VIR_DOMAIN_BLOCK_JOB_READY), timeout_s,
                   &status) < 0)
        return lb_fail(ETIMEDOUT, "pivot of %s did not finish", target);
    return job_outcome("active commit", target, status);
}

int
agent_virt_job_running(struct agent_dom *d, const char *target)
{
    virDomainBlockJobInfo info;
    int r = virDomainGetBlockJobInfo(d->d, target, &info, 0);

    if (r < 0)
        return virt_fail("block job status");
    return r > 0;
}

int
agent_virt_wait_job(struct agent_virt *v, struct agent_dom *d,
                    const char *target, unsigned timeout_s)
{
    struct job_event *e = job_slot(v, d, target);
    unsigned want = 1u << VIR_DOMAIN_BLOCK_JOB_COMPLETED |
                    1u << VIR_DOMAIN_BLOCK_JOB_FAILED |
                    1u << VIR_DOMAIN_BLOCK_JOB_CANCELED |
                    1u << VIR_DOMAIN_BLOCK_JOB_READY;
    int status, r;

    if (!e)
        return lb_fail(EIO, "too many block jobs");
    /* Registered before asking: an event cannot slip between. */
    r = agent_virt_job_running(d, target);
    if (r <= 0)
        return r;
    if (wait_event(v, e, want, timeout_s, &status) < 0)
        return lb_fail(ETIMEDOUT,
                       "the block job on %s did not finish within "
                       "%u s",
                       target, timeout_s);
    if (status == VIR_DOMAIN_BLOCK_JOB_READY) {
        /* An active commit someone left ready: abort (keeps the top). */
        if (virDomainBlockJobAbort(d->d, target, 0) < 0)
            return virt_fail("end a leftover block job");
        return 0;
    }
    return 0;
}
