/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The RADOS backend's cluster connections. A connection costs a session
 * more than its small backups' data: loading librados, reading the
 * config, and connecting (cephx, the maps) take 20-30 ms here. A process
 * that serves many sessions (backupd listen) keeps the connections its
 * sessions are done with and gives each to the next session of the same
 * cluster and client: one at a time, never two sessions on one (each
 * session's lookups would queue behind the other's creates, which is why
 * a session has a second connection for them, be_rados_query.c). Any
 * other process connects per session and shuts down at its end, as
 * before. A kept connection the cluster cut off while it was idle
 * (blocklisted, `ceph osd blocklist add`: every operation then fails
 * with ESHUTDOWN) is found by one stat when it is taken, and replaced.
 */
#include "store/be_rados_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A connection made for one kind of use (the main one, or the lookups')
 * of one cluster as one client, with one op timeout. */
struct kept {
    struct kept *next;
    char conf[sizeof ((struct store_be_rados_spec *)0)->conf];
    char id[sizeof ((struct store_be_rados_spec *)0)->id];
    unsigned timeout;
    bool query;
    rados_t cl;
};

static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kept *kept_list;
static unsigned kept_max, kept_n;

void
store_rados_keep_connections(unsigned max_idle)
{
    pthread_mutex_lock(&kept_lock);
    kept_max = max_idle;
    pthread_mutex_unlock(&kept_lock);
}

void
store_rados_connections_close(void)
{
    struct kept *k;

    pthread_mutex_lock(&kept_lock);
    k = kept_list;
    kept_list = NULL;
    kept_n = kept_max = 0;
    pthread_mutex_unlock(&kept_lock);
    while (k) {
        struct kept *next = k->next;
        LR(rados_shutdown, k->cl);
        free(k);
        k = next;
    }
}

static bool
kept_matches(const struct kept *k, const struct store_be_rados_spec *o,
             bool query)
{
    return k->query == query && k->timeout == o->timeout &&
           strcmp(k->conf, o->conf) == 0 && strcmp(k->id, o->id) == 0;
}

/* A kept connection for o, taken out of the list; NULL if none. */
static rados_t
kept_take(const struct store_be_rados_spec *o, bool query)
{
    rados_t cl = NULL;

    pthread_mutex_lock(&kept_lock);
    for (struct kept **pp = &kept_list; *pp; pp = &(*pp)->next) {
        struct kept *k = *pp;
        if (kept_matches(k, o, query)) {
            *pp = k->next;
            kept_n--;
            cl = k->cl;
            free(k);
            break;
        }
    }
    pthread_mutex_unlock(&kept_lock);
    return cl;
}

static int
connect_new(struct be_rados *b, const struct store_be_rados_spec *o,
            rados_t *cl)
{
    char t[32];
    int r = LR(rados_create, cl, o->id);

    if (r < 0) {
        *cl = NULL;
        return lb_error(-r, "%s: rados_create", b->be.where);
    }
    r = LR(rados_conf_read_file, *cl, o->conf);
    if (r < 0) {
        lb_error(-r, "%s: read Ceph config %s", b->be.where, o->conf);
        goto fail;
    }
    /* A full OSD blocks writes: fail them instead of hanging. */
    snprintf(t, sizeof t, "%u", o->timeout);
    if (LR(rados_conf_set, *cl, "rados_osd_op_timeout", t) < 0 ||
        LR(rados_conf_set, *cl, "rados_mon_op_timeout", t) < 0 ||
        LR(rados_conf_set, *cl, "client_mount_timeout", t) < 0) {
        lb_fail(EINVAL, "%s: cannot set the op timeouts", b->be.where);
        goto fail;
    }
    r = LR(rados_connect, *cl);
    if (r < 0) {
        lb_error(-r, "%s: connect to the Ceph cluster of %s as client.%s",
                 b->be.where, o->conf, o->id);
        lb_error_hint("check the config, the keyring and `ceph -s`");
        goto fail;
    }
    if (lb_log_get_level() >= LB_LOG_DEBUG) {
        char *addrs = NULL;

        /* what `ceph osd blocklist add` fences this connection by */
        if (LR(rados_getaddrs, *cl, &addrs) < 0)
            addrs = NULL;
        lb_debug("%s: connected as client.%s (client.%llu at %s)",
                 b->be.where, o->id,
                 (unsigned long long)LR(rados_get_instance_id, *cl),
                 addrs ? addrs : "?");
        if (addrs)
            LR(rados_buffer_free, addrs);
    }
    return 0;
fail:
    LR(rados_shutdown, *cl);
    *cl = NULL;
    return -1;
}

/* Has the cluster cut off this kept connection? One stat of the
 * repository's config object tells (any other outcome: it has not, and
 * the operations that follow say what else is wrong). */
static bool
cut_off(rados_t cl, const struct store_be_rados_spec *o)
{
    rados_ioctx_t io;
    uint64_t size;
    time_t mtime;
    int r = LR(rados_ioctx_create, cl, o->pool, &io);

    if (r < 0)
        return false;
    LR(rados_ioctx_set_namespace, io, o->ns);
    r = LR(rados_stat, io, "config", &size, &mtime);
    LR(rados_ioctx_destroy, io);
    return r == -ESHUTDOWN;
}

int
be_rados_connect(struct be_rados *b, const struct store_be_rados_spec *o,
                 bool query, rados_t *cl)
{
    *cl = kept_take(o, query);
    if (*cl && cut_off(*cl, o)) {
        lb_info("%s: the Ceph cluster cut off a kept connection "
                "(blocklisted): connecting again",
                b->be.where);
        LR(rados_shutdown, *cl);
        *cl = NULL;
    }
    if (*cl) {
        b->n_reused++;
        return 0;
    }
    return connect_new(b, o, cl);
}

void
be_rados_disconnect(struct be_rados *b, const struct store_be_rados_spec *o,
                    bool query, rados_t cl)
{
    struct kept *k = NULL;

    if (!cl)
        return;
    pthread_mutex_lock(&kept_lock);
    /* A client the cluster cut off (blocklisted: every operation fails
     * with ESHUTDOWN) is never handed on. */
    if (kept_n < kept_max && !b->cut_off) {
        k = lb_xcalloc(1, sizeof *k);
        snprintf(k->conf, sizeof k->conf, "%s", o->conf);
        snprintf(k->id, sizeof k->id, "%s", o->id);
        k->timeout = o->timeout;
        k->query = query;
        k->cl = cl;
        k->next = kept_list;
        kept_list = k;
        kept_n++;
    }
    pthread_mutex_unlock(&kept_lock);
    if (!k)
        LR(rados_shutdown, cl);
}
