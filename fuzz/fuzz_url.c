/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: agent_url_parse (agent/client/repo.c), what --repo,
 * --from and --to name: a local path, ssh://[user@]host[:port]/path with
 * ?socket=, or a RADOS spec behind ssh.
 *
 * Oracle beyond "no crash, no leak": a local path is the input as it is;
 * of an ssh URL, the host is not empty and is no ssh option, the port is
 * a number ssh takes, and the parts written back as a URL parse to the
 * same parts; a refusal is EINVAL and names the URL (its first 512
 * bytes: the error slot holds LB_ERR_MAX).
 */
#include "agent/client/client.h"
#include "fuzz/fuzz.h"

#include <errno.h>
#include <string.h>

static bool
same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The URL of u's parts. */
static char *
compose(const struct agent_url *u)
{
    const char *at = strrchr(u->host, '@');
    const char *h = at ? at + 1 : u->host;
    bool v6 = strchr(h, ':') != NULL;
    const char *sep = !u->socket                           ? ""
                      : !strchr(u->path, '?')              ? "?socket="
                      : strncmp(u->path, "rados:", 6) == 0 ? "&socket="
                                                           : NULL;

    CHECK(sep);
    return lb_xasprintf("ssh://%.*s%s%s%s%s%s%s%s%s%s", (int)(h - u->host),
                        u->host, v6 ? "[" : "", h, v6 ? "]" : "",
                        u->port ? ":" : "", u->port ? u->port : "",
                        u->path[0] == '/' ? "" : "/", u->path, sep,
                        u->socket ? u->socket : "");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = lb_xmalloc(size + 1);
    struct agent_url u, again;

    memcpy(url, data, size);
    url[size] = '\0';
    lb_error_clear();
    if (agent_url_parse(url, &u) < 0) {
        /* named, as much of it as the error slot holds (LB_ERR_MAX) */
        char *head = lb_xasprintf("%.512s", url);
        CHECK(lb_error_errno() == EINVAL && strstr(lb_error_msg(), head));
        free(head);
        CHECK(!u.host && !u.path && !u.port && !u.socket);
        free(url);
        return 0;
    }
    if (!u.host) {
        CHECK(u.path && strcmp(u.path, url) == 0 && !u.port && !u.socket);
    } else {
        const char *at = strrchr(u.host, '@');
        const char *h = at ? at + 1 : u.host;
        CHECK(u.host[0] != '-' && h[0] && h[0] != '-');
        if (u.port) {
            char *end;
            unsigned long port = strtoul(u.port, &end, 10);
            CHECK(u.port[0] >= '1' && u.port[0] <= '9' && !*end &&
                  port <= 65535);
        }
        CHECK(u.path && u.path[0] && (!u.socket || u.socket[0]));
        char *c = compose(&u);
        CHECK(agent_url_parse(c, &again) == 0);
        CHECK(same(u.host, again.host) && same(u.port, again.port) &&
              same(u.path, again.path) && same(u.socket, again.socket));
        agent_url_free(&again);
        free(c);
    }
    agent_url_free(&u);
    free(url);
    return 0;
}
