/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Inside the agent's libvirt layer (virt.h): the connection's state, which
 * virt.c (connection, events, domains, snapshots), virt_freeze.c (freeze,
 * thaw, the thaw guard) and virt_job.c (block jobs and their waits) share.
 * Nothing outside those three files includes it.
 */
#ifndef LB_AGENT_VIRT_INT_H
#define LB_AGENT_VIRT_INT_H

#include "agent/live/virt.h"
#include "agent/live/virt_dl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#define MAX_JOBS 64
#define MAX_DOMS 64
/* While a block job's event is awaited its info is polled this often: the
 * fallback for a job that ends without an event reaching us. */
#define JOB_POLL_MS 1000
/* Polls that may fail in a row before the wait gives up with libvirt's
 * message (one failing while libvirtd handles QEMU's end is expected). */
#define JOB_POLL_ERRORS 5
/* A libvirtd that stops answering is given up after about
 * KEEPALIVE_INTERVAL * (KEEPALIVE_COUNT + 1) seconds. */
#define KEEPALIVE_INTERVAL 5
#define KEEPALIVE_COUNT 3
/* How long a thaw guard whose agent is gone keeps trying to thaw. */
#define GUARD_RETRY_S 600

/* A block job that ended without its event reaching us (wait_event). */
#define JOB_VANISHED (-2)

struct job_event {
    char uuid[VIR_UUID_STRING_BUFLEN];
    char target[65];
    int status; /* -1: none yet, else VIR_DOMAIN_BLOCK_JOB_* */
    int type;
};

/* A domain looked up on this connection: has its QEMU ended? */
struct dom_watch {
    char uuid[VIR_UUID_STRING_BUFLEN];
    bool ended; /* a STOPPED event since its last start */
};

struct agent_virt {
    char *uri;
    virConnectPtr conn;
    pthread_t loop;
    bool loop_running;
    atomic_bool stop;
    int cb_id, life_id;
    bool close_cb;
    pthread_mutex_t lock;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    struct job_event ev[MAX_JOBS];
    size_t nev;
    struct dom_watch dw[MAX_DOMS];
    size_t ndw;
    unsigned wakes; /* lifecycle events so far: waiters poll again */
    int closed;     /* 1 + VIR_CONNECT_CLOSE_REASON_* once closed */
    /* the thaw guard of the guest being frozen */
    pid_t guard;
    int guard_fd;
    pid_t guard_left; /* a guard left to thaw after libvirtd went away */
};

/* libvirt's errors go to the error slot, never to stderr. */
void virt_silent_error(void *opaque, virErrorPtr err);
/* A libvirt call failed: "what: libvirt's message" (EIO). */
int virt_fail(const char *what);
/* "libvirtd closed the connection (URI) during what" (ENOTCONN). */
int virt_lost_fail(struct agent_virt *v, const char *what);
/* Has the domain's QEMU ended (a STOPPED event, or libvirt says so)? */
bool virt_dom_ended(struct agent_dom *d);
/*
 * A libvirt call that needs the domain's QEMU failed: say whether libvirtd
 * or QEMU went away (errno ENOTCONN or ESRCH), else libvirt's message.
 * what: "the block commit of vda".
 */
int virt_dom_fail(struct agent_dom *d, const char *what);

#endif
