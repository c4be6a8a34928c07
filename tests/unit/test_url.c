/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * agent/client: the pure parts of a repository session. agent_url_parse
 * (what --repo names) and agent_list_pick (which backup --backup names).
 */
#include "agent/client/client.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

struct url_row {
    const char *url;
    const char *host, *port, *path, *socket; /* NULL: absent */
};

static void
expect_str(const char *got, const char *want, const char *url, const char *what)
{
    if (!want)
        cr_expect_null(got, "%s: %s is %s", url, what, got);
    else
        cr_expect(got && strcmp(got, want) == 0, "%s: %s is %s, not %s", url,
                  what, got ? got : "(none)", want);
}

Test(url, parses)
{
    static const struct url_row rows[] = {
        {"/srv/backups", NULL, NULL, "/srv/backups", NULL},
        {"relative/repo", NULL, NULL, "relative/repo", NULL},
        {"ssh://backup.example/srv/b", "backup.example", NULL, "/srv/b", NULL},
        {"ssh://backup@server:2222/srv/b", "backup@server", "2222", "/srv/b",
         NULL},
        /* ssh takes an IPv6 address bare, the port apart */
        {"ssh://[::1]/srv/b", "::1", NULL, "/srv/b", NULL},
        {"ssh://u@[fe80::1]:22/r", "u@fe80::1", "22", "/r", NULL},
        {"ssh://user@[::1]:2222/srv/b", "user@::1", "2222", "/srv/b", NULL},
        {"ssh://h/srv/b?socket=/run/backupd/backupd.sock", "h", NULL, "/srv/b",
         "/run/backupd/backupd.sock"},
        {"ssh://h:7/a b/c?socket=s", "h", "7", "/a b/c", "s"},
        /* a RADOS repository behind the remote backupd: its options are
         * its own, passed on whole */
        {"ssh://fe1/rados:pool/ns?conf=/etc/ceph/ceph.conf&id=backup", "fe1",
         NULL, "rados:pool/ns?conf=/etc/ceph/ceph.conf&id=backup", NULL},
        {"rados:pool?id=x", NULL, NULL, "rados:pool?id=x", NULL},
        {"ssh://h/rados:p/n?conf=c&socket=/s", "h", NULL, "rados:p/n?conf=c",
         "/s"},
        {"ssh://h/rados:p/n?socket=/s&id=x", "h", NULL, "rados:p/n?id=x", "/s"},
        {"ssh://h/rados:p?socket=/s", "h", NULL, "rados:p", "/s"},
        {"ssh://h/rados:p?conf=c&socket=/s&id=x", "h", NULL,
         "rados:p?conf=c&id=x", "/s"},
        {"ssh://h/rados:p?mysocket=1", "h", NULL, "rados:p?mysocket=1", NULL},
        {"ssh://h:65535/p", "h", "65535", "/p", NULL},
        {"ssh://h:1/p", "h", "1", "/p", NULL},
        {"ssh://h/rados:p?mysocket=1&socket=/s", "h", NULL,
         "rados:p?mysocket=1", "/s"},
    };

    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct url_row *r = &rows[i];
        struct agent_url u;

        cr_assert_eq(agent_url_parse(r->url, &u), 0, "%s: %s", r->url,
                     lb_error_msg());
        expect_str(u.host, r->host, r->url, "host");
        expect_str(u.port, r->port, r->url, "port");
        expect_str(u.path, r->path, r->url, "path");
        expect_str(u.socket, r->socket, r->url, "socket");
        agent_url_free(&u);
        cr_expect_null(u.path, "free leaves it empty");
    }
}

Test(url, refuses)
{
    static const char *const bad[] = {
        "ssh://", "ssh:///srv/b", "ssh://host", "ssh://host/",
        "ssh://host/p?other=1", "ssh://host/p?socket=", "ssh://host/p?sock=x",
        /* brackets: only around a whole address, then only :PORT */
        "ssh://[::1/p", "ssh://u@[]/p", "ssh://[::1]x/p", "ssh://h]/p",
        "ssh://[[::1]/p", "ssh://[::1]]/p",
        /* an ssh option, not a host (nor one for a ProxyCommand's %h) */
        "ssh://-oProxyCommand=touch%20x/p", "ssh://u@-oProxyCommand=x/p",
        /* no host name; a port ssh would not take */
        "ssh://:22/p", "ssh://u@/p", "ssh://[::1]:/p", "ssh://h:/p",
        "ssh://h:0/p", "ssh://h:65536/p", "ssh://h:2x/p", "ssh://h:022/p",
        "ssh://h:999999999999999999999/p",
        /* a RADOS spec's socket=: empty, or twice (which one?) */
        "ssh://h/rados:p?socket=", "ssh://h/rados:p?socket=&id=x",
        "ssh://h/rados:p?socket=/a&socket=/b",
        "ssh://h/rados:p?id=x&socket=/a&conf=c&socket=/b"};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct agent_url u;
        lb_error_clear();
        cr_expect_eq(agent_url_parse(bad[i], &u), -1, "%s", bad[i]);
        cr_expect_eq(lb_error_errno(), EINVAL, "%s", bad[i]);
        cr_expect(strstr(lb_error_msg(), bad[i]) != NULL,
                  "%s: the message names the URL: %s", bad[i], lb_error_msg());
        cr_expect_null(u.host, "%s: nothing left to free", bad[i]);
        cr_expect_null(u.path, "%s: nothing left to free", bad[i]);
    }
}

/* ---- agent_list_pick ---------------------------------------------------- */

static struct agent_list l;

static void
add(const char *id, uint64_t time)
{
    l.b = lb_xrealloc(l.b, (l.n + 1) * sizeof *l.b);
    memset(&l.b[l.n], 0, sizeof l.b[l.n]);
    proto_kv_set(&l.b[l.n], "id", id);
    proto_kv_set_u64(&l.b[l.n], "time", time);
    l.n++;
}

static void
three(void)
{
    /* 2026-11-21T01:30:00Z, 2026-11-22T13:00:00Z, 2026-11-23T01:30:00Z */
    add("20261121-013000-f2b5", 1795224600);
    add("20261122-130000-e0c4", 1795352400);
    add("20261123-013000-6775", 1795397400);
}

static void
done(void)
{
    agent_list_free(&l);
}

TestSuite(pick, .init = three, .fini = done);

Test(pick, latest_id_and_time)
{
    cr_assert_eq(agent_list_pick(&l, "db1", "latest"), 2);
    cr_assert_eq(agent_list_pick(&l, "db1", NULL), 2);
    cr_assert_eq(agent_list_pick(&l, "db1", "20261122-130000-e0c4"), 1);
    /* A time: the latest backup at or before it. */
    cr_assert_eq(agent_list_pick(&l, "db1", "2026-11-22"), 0);
    cr_assert_eq(agent_list_pick(&l, "db1", "2026-11-22T13:00"), 1);
    cr_assert_eq(agent_list_pick(&l, "db1", "2026-11-22T12:59:59"), 0);
    cr_assert_eq(agent_list_pick(&l, "db1", "2027-01-01"), 2);
}

Test(pick, says_what_is_missing)
{
    cr_assert_eq(agent_list_pick(&l, "db1", "20200101-000000-abcd"), -1);
    cr_assert_eq(lb_error_errno(), ENOENT);
    cr_assert_str_eq(lb_error_msg(), "no backup 20200101-000000-abcd of db1");
    cr_assert_eq(agent_list_pick(&l, "db1", "2001-01-01"), -1);
    cr_assert(strstr(lb_error_msg(), "(the first is from "
                                     "2026-11-21T01:30:00Z)") != NULL,
              "%s", lb_error_msg());
    cr_assert_eq(agent_list_pick(&l, "db1", "yesterday"), -1);
    cr_assert_eq(lb_error_errno(), EINVAL);
    done();
    cr_assert_eq(agent_list_pick(&l, "db1", "latest"), -1);
    cr_assert_str_eq(lb_error_msg(), "no backups of db1 in this repository");
}
