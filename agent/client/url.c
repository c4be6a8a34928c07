/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What --repo, --from and --to name (client.h, agent_url_parse): a local
 * path, ssh://[user@]host[:port]/path[?socket=PATH], or a RADOS spec
 * behind ssh. A pure function, and the fuzz target fuzz_url's.
 */
#include "agent/client/client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void
agent_url_free(struct agent_url *u)
{
    free(u->host);
    free(u->port);
    free(u->path);
    free(u->socket);
    memset(u, 0, sizeof *u);
}

/* A port ssh takes: 1 to 65535, in decimal. */
static bool
port_valid(const char *s)
{
    unsigned long v = 0;

    if (*s < '1' || *s > '9' || strlen(s) > 5)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (unsigned long)(*s - '0');
    }
    return v <= 65535;
}

/*
 * u->host is [user@]host[:port]: split the port off, and take the
 * brackets off an IPv6 address ([user@][ADDR][:port]): ssh wants the
 * bare address (with -p for the port), as in ssh user@::1. NULL, or
 * what is wrong.
 */
static const char *
url_host_split(struct agent_url *u)
{
    char *at = strrchr(u->host, '@');
    char *h = at ? at + 1 : u->host;

    if (*h != '[') {
        char *colon = strrchr(h, ':');
        if (strchr(h, ']'))
            return "an IPv6 address is written [ADDRESS] or [ADDRESS]:PORT";
        if (colon) {
            u->port = lb_xstrdup(colon + 1);
            *colon = '\0';
        }
    } else {
        char *close = strchr(h, ']');
        if (!close || close == h + 1 || (close[1] && close[1] != ':'))
            return "an IPv6 address is written [ADDRESS] or [ADDRESS]:PORT";
        if (close[1] == ':')
            u->port = lb_xstrdup(close + 2);
        *close = '\0';
        memmove(h, h + 1, strlen(h + 1) + 1);
    }
    if (strpbrk(h, "[]"))
        return "an IPv6 address is written [ADDRESS] or [ADDRESS]:PORT";
    if (!*h)
        return "no host name";
    /* (ssh puts it into a ProxyCommand's %h) */
    if (*h == '-')
        return "a host name does not start with '-'";
    if (u->port && !port_valid(u->port))
        return "the port is a number from 1 to 65535";
    return NULL;
}

/* The next socket= option of a RADOS spec at or after p, or NULL. */
static const char *
socket_option(const char *p)
{
    while (p && (p = strstr(p, "socket=")) != NULL) {
        if (p[-1] == '?' || p[-1] == '&')
            return p;
        p++;
    }
    return NULL;
}

/*
 * ssh://host/rados:POOL/NS?conf=...&id=...[&socket=PATH]: the remote
 * backupd opens that RADOS repository (its options are its own, passed on
 * whole), or relays to the `backupd listen` daemon on socket=PATH there.
 * Errors name whole (the spec, or the URL it is part of).
 */
int
agent_url_rados(const char *spec, const char *whole, struct agent_url *u)
{
    const char *q = strchr(spec, '?');
    const char *p = q ? socket_option(q + 1) : NULL, *end;

    if (!p) {
        u->path = lb_xstrdup(spec);
        return 0;
    }
    end = strchr(p, '&');
    if (p[7] == '\0' || p[7] == '&' || (end && socket_option(end + 1))) {
        agent_url_free(u);
        lb_fail(EINVAL, "bad repository URL '%s': %s", whole,
                p[7] == '\0' || p[7] == '&' ? "an empty socket="
                                            : "socket= given twice");
        return -1;
    }
    u->socket = end ? lb_xasprintf("%.*s", (int)(end - p - 7), p + 7)
                    : lb_xstrdup(p + 7);
    /* The spec without socket=PATH and one separator. */
    if (p[-1] == '?' && end)
        u->path = lb_xasprintf("%.*s%s", (int)(p - spec), spec, end + 1);
    else
        u->path =
            lb_xasprintf("%.*s%s", (int)(p - 1 - spec), spec, end ? end : "");
    return 0;
}

int
agent_url_parse(const char *url, struct agent_url *u)
{
    const char *p = url + 6, *slash, *q, *why;

    memset(u, 0, sizeof *u);
    if (strncmp(url, "ssh://", 6) != 0) {
        u->path = lb_xstrdup(url);
        return 0;
    }
    slash = strchr(p, '/');
    if (!slash || slash == p || !slash[1]) {
        lb_fail(EINVAL,
                "bad repository URL '%s': expected "
                "ssh://[user@]host[:port]/path",
                url);
        return -1;
    }
    if (*p == '-') {
        lb_fail(EINVAL,
                "bad repository URL '%s': a host name does not start with "
                "'-'",
                url);
        return -1;
    }
    u->host = lb_xasprintf("%.*s", (int)(slash - p), p);
    why = url_host_split(u);
    if (why) {
        agent_url_free(u);
        lb_fail(EINVAL, "bad repository URL '%s': %s", url, why);
        return -1;
    }
    if (strncmp(slash + 1, "rados:", 6) == 0)
        return agent_url_rados(slash + 1, url, u);
    u->path = lb_xstrdup(slash);
    q = strchr(slash, '?');
    if (q) {
        u->path[q - slash] = '\0';
        q++;
        if (strncmp(q, "socket=", 7) != 0 || !q[7]) {
            agent_url_free(u);
            lb_fail(EINVAL,
                    "bad repository URL '%s': the only option is "
                    "?socket=PATH (a backupd listen daemon's socket)",
                    url);
            return -1;
        }
        u->socket = lb_xstrdup(q + 7);
    }
    return 0;
}
