/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: store_be_rados_spec_parse and store_be_rados_restrict
 * (store/backend.c), which backupd runs on the repository a client names
 * in SSH_ORIGINAL_COMMAND under `--restrict-to-repo rados:...`. The input
 * is the allowed spec, a newline, then the asked one (no newline: both
 * the same).
 *
 * Oracle beyond "no crash, no leak": an accepted spec's pool and
 * namespace are names ([A-Za-z0-9._-]), its numbers in range, and written
 * out again with every option it parses to the same parts; a refusal sets
 * EINVAL. A spec is allowed for itself; an allowed request names the same
 * pool and namespace, and no option it names differs.
 */
#include "fuzz/fuzz.h"
#include "store/backend.h"

#include <errno.h>
#include <string.h>

static bool
name_ok(const char *s, bool empty_ok)
{
    if (!*s)
        return empty_ok;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._-") == strlen(s);
}

static bool
same(const struct store_be_rados_spec *a, const struct store_be_rados_spec *b)
{
    return strcmp(a->pool, b->pool) == 0 && strcmp(a->ns, b->ns) == 0 &&
           strcmp(a->conf, b->conf) == 0 && strcmp(a->id, b->id) == 0 &&
           a->lease == b->lease && a->timeout == b->timeout;
}

/* Parse s; if accepted, check it and return true. */
static bool
check_one(const char *s, struct store_be_rados_spec *o)
{
    struct store_be_rados_spec again;
    char *text;

    lb_error_clear();
    if (store_be_rados_spec_parse(s, o) < 0) {
        CHECK(lb_error_errno() == EINVAL);
        return false;
    }
    CHECK(name_ok(o->pool, false) && name_ok(o->ns, true));
    CHECK(name_ok(o->id, false) && o->conf[0]);
    CHECK(o->lease >= 3 && o->lease <= 86400);
    CHECK(o->timeout >= 1 && o->timeout <= 86400);
    /* conf holds no '&' (the separator): written out, it reads back. */
    text = lb_xasprintf("rados:%s%s%s?conf=%s&id=%s&lease=%u&timeout=%u",
                        o->pool, o->ns[0] ? "/" : "", o->ns, o->conf, o->id,
                        o->lease, o->timeout);
    CHECK(store_be_rados_spec_parse(text, &again) == 0);
    CHECK(same(o, &again));
    free(text);
    CHECK(store_be_rados_restrict(s, s) == 0);
    return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct store_be_rados_spec a, c;
    char *in, *nl;
    const char *asked;
    bool aok, cok;

    if (memchr(data, '\0', size))
        return 0;
    in = strndup((const char *)data, size);
    if (!in)
        return 0;
    nl = strchr(in, '\n');
    if (nl)
        *nl = '\0';
    asked = nl ? nl + 1 : in;
    aok = check_one(in, &a);
    cok = check_one(asked, &c);
    lb_error_clear();
    if (store_be_rados_restrict(in, asked) == 0) {
        CHECK(aok && cok);
        CHECK(strcmp(a.pool, c.pool) == 0 && strcmp(a.ns, c.ns) == 0);
        CHECK(!(c.given & STORE_BE_RADOS_CONF) || !strcmp(a.conf, c.conf));
        CHECK(!(c.given & STORE_BE_RADOS_ID) || !strcmp(a.id, c.id));
        CHECK(!(c.given & STORE_BE_RADOS_LEASE) || a.lease == c.lease);
        CHECK(!(c.given & STORE_BE_RADOS_TIMEOUT) || a.timeout == c.timeout);
    } else {
        CHECK(lb_error_errno() == (aok ? EPERM : EINVAL));
    }
    free(in);
    return 0;
}
