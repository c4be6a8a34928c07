/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvirt for the agent (see virt.h): the connection and its event loop
 * thread, the lifecycle, block job and close callbacks, domains, their
 * XML and the disk-only snapshot. Freeze and thaw are in virt_freeze.c,
 * block jobs in virt_job.c. Nothing here decides what to back up;
 * backup.c and decide.c do. Every libvirt failure is turned into the
 * error slot with libvirt's own message and the operation that failed.
 */
#include "agent/live/virt_int.h"

#include <errno.h>
#include <libvirt/virterror.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void
virt_silent_error(void *opaque, virErrorPtr err)
{
    (void)opaque;
    (void)err;
}

/* The error of a libvirt call that failed with message m; one where QEMU
 * was refused a file or a socket gets its usual causes as a hint. */
static int
libvirt_error(const char *what, const char *m)
{
    lb_fail(EIO, "%s: %s", what, m && *m ? m : "unknown libvirt error");
    if (m && strstr(m, "Permission denied"))
        lb_error_hint("QEMU runs as a user of its own (libvirt-qemu on a "
                      "stock Debian host), which must be able to pass "
                      "through every directory above its files, and may be "
                      "confined by AppArmor: see \"QEMU's user and "
                      "AppArmor\" in the README");
    return -1;
}

int
virt_fail(const char *what)
{
    return libvirt_error(what, LV(virGetLastErrorMessage));
}

bool
agent_virt_lost(struct agent_virt *v)
{
    bool closed;

    pthread_mutex_lock(&v->lock);
    closed = v->closed != 0;
    pthread_mutex_unlock(&v->lock);
    /* The close callback may not have run yet when a call failed on the
     * dead socket; the client already knows. */
    return closed || LV(virConnectIsAlive, v->conn) == 0;
}

int
virt_lost_fail(struct agent_virt *v, const char *what)
{
    lb_fail(ENOTCONN, "libvirtd closed the connection (%s) during %s", v->uri,
            what);
    lb_error_hint("start libvirtd again; QEMU and the guest are not "
                  "affected by it");
    return -1;
}

/* A libvirt call that needs only the connection failed. */
static int
conn_fail(struct agent_virt *v, const char *what)
{
    char msg[512];

    snprintf(msg, sizeof msg, "%s",
             LV(virGetLastErrorMessage) ? LV(virGetLastErrorMessage) : "");
    if (v && agent_virt_lost(v))
        return virt_lost_fail(v, what);
    return libvirt_error(what, msg);
}

bool
virt_dom_ended(struct agent_dom *d)
{
    bool ended = false;

    pthread_mutex_lock(&d->v->lock);
    for (size_t i = 0; i < d->v->ndw; i++)
        if (strcmp(d->v->dw[i].uuid, d->uuid) == 0)
            ended = d->v->dw[i].ended;
    pthread_mutex_unlock(&d->v->lock);
    return ended || LV(virDomainIsActive, d->d) == 0;
}

int
virt_dom_fail(struct agent_dom *d, const char *what)
{
    char msg[512];

    snprintf(msg, sizeof msg, "%s",
             LV(virGetLastErrorMessage) ? LV(virGetLastErrorMessage) : "");
    if (agent_virt_lost(d->v))
        return virt_lost_fail(d->v, what);
    if (virt_dom_ended(d)) {
        char st[128];
        agent_dom_state_text(d, st, sizeof st);
        return lb_fail(ESRCH, "QEMU of %s ended during %s (%s)", d->name, what,
                       st);
    }
    return libvirt_error(what, msg);
}

static void *
event_loop(void *arg)
{
    struct agent_virt *v = arg;

    while (!atomic_load(&v->stop))
        if (LV(virEventRunDefaultImpl) < 0)
            break;
    return NULL;
}

static void
wake_loop(int timer, void *opaque)
{
    (void)opaque;
    LV(virEventRemoveTimeout, timer);
}

static int
on_block_job(virConnectPtr conn, virDomainPtr dom, const char *disk, int type,
             int status, void *opaque)
{
    struct agent_virt *v = opaque;
    char uuid[VIR_UUID_STRING_BUFLEN];

    (void)conn;
    if (LV(virDomainGetUUIDString, dom, uuid) < 0)
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

/* STOPPED ends every wait on the domain; SHUTDOWN and CRASHED (QEMU may
 * live on, paused) make the waiters look at their jobs again. */
static int
on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail,
             void *opaque)
{
    struct agent_virt *v = opaque;
    char uuid[VIR_UUID_STRING_BUFLEN];

    (void)conn;
    if (event != VIR_DOMAIN_EVENT_STOPPED &&
        event != VIR_DOMAIN_EVENT_STARTED &&
        event != VIR_DOMAIN_EVENT_SHUTDOWN && event != VIR_DOMAIN_EVENT_CRASHED)
        return 0;
    if (LV(virDomainGetUUIDString, dom, uuid) < 0)
        return 0;
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < v->ndw; i++) {
        if (strcmp(v->dw[i].uuid, uuid) != 0)
            continue;
        if (event == VIR_DOMAIN_EVENT_STOPPED)
            v->dw[i].ended = true;
        else if (event == VIR_DOMAIN_EVENT_STARTED)
            v->dw[i].ended = false;
        v->wakes++;
        pthread_cond_broadcast(&v->cv);
    }
    pthread_mutex_unlock(&v->lock);
    lb_debug("lifecycle event: %s event %d detail %d", uuid, event, detail);
    return 0;
}

static void
on_close(virConnectPtr conn, int reason, void *opaque)
{
    struct agent_virt *v = opaque;

    (void)conn;
    pthread_mutex_lock(&v->lock);
    v->closed = 1 + reason;
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->lock);
    lb_debug("libvirt connection closed (reason %d)", reason);
}

/* Events and callbacks on a new connection (the event loop runs). */
static int
virt_register(struct agent_virt *v)
{
    v->cb_id = LV(virConnectDomainEventRegisterAny, v->conn, NULL,
                  VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
                  VIR_DOMAIN_EVENT_CALLBACK(on_block_job), v, NULL);
    if (v->cb_id < 0)
        return virt_fail("libvirt block job events");
    v->life_id = LV(virConnectDomainEventRegisterAny, v->conn, NULL,
                    VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                    VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), v, NULL);
    if (v->life_id < 0)
        return virt_fail("libvirt lifecycle events");
    if (LV(virConnectRegisterCloseCallback, v->conn, on_close, v, NULL) < 0)
        return virt_fail("libvirt close callback");
    v->close_cb = true;
    /* A libvirtd that hangs would hold every call: keepalive closes the
     * connection, which ends them. Local drivers have none (ignored). */
    if (LV(virConnectSetKeepAlive, v->conn, KEEPALIVE_INTERVAL,
           KEEPALIVE_COUNT) < 0)
        lb_debug("no keepalive on %s: %s", v->uri, LV(virGetLastErrorMessage));
    return 0;
}

struct agent_virt *
agent_virt_open(const char *uri)
{
    static bool registered;
    struct agent_virt *v = lb_xcalloc(1, sizeof *v);
    pthread_condattr_t ca;

    v->uri = lb_xstrdup(uri);
    atomic_init(&v->stop, false);
    v->cb_id = v->life_id = -1;
    v->guard_fd = -1;
    pthread_mutex_init(&v->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&v->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (lb_virt_load() < 0)
        goto fail;
    LV(virSetErrorFunc, NULL, virt_silent_error);
    if (!registered) {
        if (LV(virEventRegisterDefaultImpl) < 0) {
            virt_fail("libvirt event loop");
            goto fail;
        }
        registered = true;
    }
    v->conn = LV(virConnectOpen, uri);
    if (!v->conn) {
        virt_fail("cannot connect to libvirt");
        lb_error_prefix("%s", uri);
        lb_error_hint("is libvirtd running? (-c URI picks another "
                      "connection)");
        goto fail;
    }
    if (virt_register(v) < 0)
        goto fail;
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
    /* A guard left to thaw goes on alone; reap it if it is done. */
    if (v->guard_left > 0)
        waitpid(v->guard_left, NULL, WNOHANG);
    if (v->close_cb)
        LV(virConnectUnregisterCloseCallback, v->conn, on_close);
    if (v->life_id >= 0)
        LV(virConnectDomainEventDeregisterAny, v->conn, v->life_id);
    if (v->cb_id >= 0)
        LV(virConnectDomainEventDeregisterAny, v->conn, v->cb_id);
    if (v->loop_running) {
        atomic_store(&v->stop, true);
        LV(virEventAddTimeout, 0, wake_loop, NULL, NULL);
        pthread_join(v->loop, NULL);
    }
    if (v->conn)
        LV(virConnectClose, v->conn);
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

    if (LV(virDomainGetState, d->d, &state, &reason, 0) < 0)
        return conn_fail(d->v, "a domain state query");
    d->running = state == VIR_DOMAIN_RUNNING || state == VIR_DOMAIN_PAUSED ||
                 state == VIR_DOMAIN_BLOCKED || state == VIR_DOMAIN_PMSUSPENDED;
    d->paused = state == VIR_DOMAIN_PAUSED;
    d->persistent = LV(virDomainIsPersistent, d->d) == 1;
    return 0;
}

void
agent_dom_state_text(struct agent_dom *d, char *buf, size_t len)
{
    static const char *const shutoff[] = {
        [VIR_DOMAIN_SHUTOFF_UNKNOWN] = "shut off",
        [VIR_DOMAIN_SHUTOFF_SHUTDOWN] = "shut off: the guest shut down",
        [VIR_DOMAIN_SHUTOFF_DESTROYED] = "shut off: destroyed",
        [VIR_DOMAIN_SHUTOFF_CRASHED] = "shut off: crashed",
        [VIR_DOMAIN_SHUTOFF_MIGRATED] = "shut off: migrated",
        [VIR_DOMAIN_SHUTOFF_SAVED] = "shut off: saved",
        [VIR_DOMAIN_SHUTOFF_FAILED] = "shut off: failed to start",
        [VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT] = "shut off: snapshot reverted",
    };
    int state, reason;

    if (LV(virDomainGetState, d->d, &state, &reason, 0) < 0)
        snprintf(buf, len, "state unknown");
    else if (state != VIR_DOMAIN_SHUTOFF)
        snprintf(buf, len, "%s",
                 state == VIR_DOMAIN_CRASHED ? "crashed" : "still active");
    else
        snprintf(buf, len, "%s",
                 reason >= 0 && (size_t)reason < LB_ARRAY_SIZE(shutoff) &&
                         shutoff[reason]
                     ? shutoff[reason]
                     : "shut off");
}

static void
watch_add(struct agent_virt *v, const char *uuid)
{
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < v->ndw; i++)
        if (strcmp(v->dw[i].uuid, uuid) == 0)
            goto out;
    /* Past MAX_DOMS a domain's end is found by polling alone. */
    if (v->ndw < MAX_DOMS)
        snprintf(v->dw[v->ndw++].uuid, sizeof v->dw[0].uuid, "%s", uuid);
out:
    pthread_mutex_unlock(&v->lock);
}

int
agent_virt_lookup(struct agent_virt *v, const char *what, struct agent_dom *out)
{
    memset(out, 0, sizeof *out);
    out->v = v;
    out->d = LV(virDomainLookupByName, v->conn, what);
    if (!out->d)
        out->d = LV(virDomainLookupByUUIDString, v->conn, what);
    if (!out->d) {
        if (agent_virt_lost(v))
            return virt_lost_fail(v, "the domain lookup");
        lb_fail(ENOENT, "no domain %s on %s", what, v->uri);
        lb_error_hint("virsh -c %s list --all shows the domains", v->uri);
        return -1;
    }
    snprintf(out->name, sizeof out->name, "%s", LV(virDomainGetName, out->d));
    if (LV(virDomainGetUUIDString, out->d, out->uuid) < 0)
        return virt_fail("domain UUID");
    watch_add(v, out->uuid);
    return agent_dom_refresh(out);
}

void
agent_dom_free(struct agent_dom *d)
{
    if (d->d)
        LV(virDomainFree, d->d);
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
    int k = LV(virConnectListAllDomains, v->conn, &doms, 0);

    *names = NULL;
    *n = 0;
    if (k < 0)
        return virt_fail("list domains");
    *names = lb_xcalloc((size_t)k + 1, sizeof **names);
    for (int i = 0; i < k; i++) {
        (*names)[i] = lb_xstrdup(LV(virDomainGetName, doms[i]));
        LV(virDomainFree, doms[i]);
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
    char *x = LV(virDomainGetXMLDesc, d->d, flags);

    if (!x)
        conn_fail(d->v, "a domain XML query");
    return x;
}

int
agent_virt_define(struct agent_virt *v, const char *xml)
{
    virDomainPtr d = LV(virDomainDefineXML, v->conn, xml);

    if (!d)
        return virt_fail("redefine the domain");
    LV(virDomainFree, d);
    return 0;
}

int
agent_virt_qemu_owner(struct agent_virt *v, const char *xml, uid_t *uid,
                      gid_t *gid)
{
    char *caps = LV(virConnectGetCapabilities, v->conn);
    int r;

    if (!caps)
        return virt_fail("read the host's capabilities");
    r = agent_xml_qemu_owner(xml, caps, uid, gid);
    free(caps);
    return r;
}

int
agent_virt_start(struct agent_virt *v, const char *name)
{
    virDomainPtr d = LV(virDomainLookupByName, v->conn, name);
    int r = d ? LV(virDomainCreate, d) : -1;

    if (r < 0)
        virt_fail("start the restored domain");
    if (d)
        LV(virDomainFree, d);
    return r < 0 ? -1 : 0;
}

int
agent_dom_ioerror(struct agent_dom *d)
{
    int state, reason;

    if (LV(virDomainGetState, d->d, &state, &reason, 0) < 0)
        return conn_fail(d->v, "a domain state query");
    return state == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_IOERROR;
}

int
agent_virt_resume(struct agent_dom *d)
{
    if (LV(virDomainResume, d->d) < 0)
        return virt_dom_fail(d, "resuming the domain");
    return 0;
}

int
agent_virt_suspend(struct agent_dom *d)
{
    if (LV(virDomainSuspend, d->d) < 0)
        return virt_dom_fail(d, "pausing the domain");
    return 0;
}

int
agent_virt_save_restart(struct agent_dom *d)
{
    if (LV(virDomainManagedSave, d->d, 0) < 0)
        return virt_dom_fail(d, "saving the domain (managedsave)");
    if (LV(virDomainCreate, d->d) < 0)
        return virt_fail("starting the domain again from its saved state");
    return agent_dom_refresh(d);
}

int
agent_virt_destroy(struct agent_dom *d, bool undefine)
{
    int r = 0;

    if (agent_dom_refresh(d) == 0 && d->running &&
        LV(virDomainDestroy, d->d) < 0)
        r = virt_fail("destroy the domain");
    if (undefine && LV(virDomainUndefine, d->d) < 0)
        r = virt_fail("undefine the domain");
    return r;
}

int
agent_virt_defined(const char *uri, const char *name)
{
    virConnectPtr c;
    virDomainPtr d;

    /* Without libvirt no domain is defined: what needs it says so. */
    if (lb_virt_load() < 0) {
        lb_error_clear();
        return 0;
    }
    LV(virSetErrorFunc, NULL, virt_silent_error);
    c = LV(virConnectOpenReadOnly, uri);
    d = c ? LV(virDomainLookupByName, c, name) : NULL;
    if (d)
        LV(virDomainFree, d);
    if (c)
        LV(virConnectClose, c);
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

/* ---- snapshots ---------------------------------------------------------- */

char *
agent_virt_snapshot_xml(struct agent_dom *d, size_t n, char *const *targets,
                        char *const *overlays)
{
    struct agent_vdisk *disks;
    size_t nd;
    char *xml;

    if (agent_virt_disks(d, false, &disks, &nd) < 0) {
        if (agent_virt_lost(d->v))
            virt_lost_fail(d->v, "the disk-only snapshot onto the tracking "
                                 "overlays");
        return NULL;
    }
    xml = agent_xml_snapshot(disks, nd, n, targets, overlays);
    agent_vdisks_free(disks, nd);
    return xml;
}

int
agent_virt_snapshot(struct agent_dom *d, const char *xml)
{
    unsigned flags = VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY |
                     VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC |
                     VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA |
                     VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT;
    virDomainSnapshotPtr s = LV(virDomainSnapshotCreateXML, d->d, xml, flags);

    if (!s)
        return virt_dom_fail(
            d, "the disk-only snapshot onto the tracking overlays");
    LV(virDomainSnapshotFree, s);
    return 0;
}
