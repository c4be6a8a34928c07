/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The cases of lbhostile (lbhostile.c says what each tries and expects).
 * Each returns 0 when backupd answered as it must, 1 otherwise.
 */
#include "tests/hostile/hostile.h"

#include <fnmatch.h>
#include <poll.h>
#include <string.h>

/* Item 1: metadata a merge would take past PROTO_MAX_KV. */
static int
meta_begin(struct h *h)
{
    struct proto_kv meta = {0};
    int r = hello_open(h, PROTO_OPEN_WRITE);

    many_keys(&meta, "k", PROTO_MAX_KV);
    if (r == 0)
        r = begin(h, "host1-meta", &meta);
    proto_kv_free(&meta);
    return outcome(h, r, PROTO_ERR_INVALID);
}

static int
meta_commit(struct h *h)
{
    struct proto_kv bm = {0}, cm = {0};
    struct chunk k;
    int r = hello_open(h, PROTO_OPEN_WRITE);

    many_keys(&bm, "a", 200);
    many_keys(&cm, "b", 200);
    if (r == 0) {
        chunk_random(&k, PROTO_CHUNK_RAW, h->window_size);
        r = one_window_backup(h, "host1-meta", &k, PROTO_CHUNK_RAW, &bm, &cm);
        free(k.plain);
    }
    proto_kv_free(&bm);
    proto_kv_free(&cm);
    return outcome(h, r, PROTO_ERR_INVALID);
}

/* Item 2: a domain_xml gc and restore cannot use. */
static int
xml_case(struct h *h, bool junk)
{
    struct proto_kv cm = {0};
    struct chunk k;
    char hex[65];
    int r = hello_open(h, PROTO_OPEN_WRITE);

    if (r)
        return outcome(h, r, PROTO_ERR_INVALID);
    chunk_random(&k, PROTO_CHUNK_RAW, h->window_size);
    proto_digest_hex(&k.c.d, hex);
    proto_kv_set(&cm, "domain_xml", junk ? "junk" : hex);
    r = one_window_backup(h, "host1-xml", &k, PROTO_CHUNK_RAW, NULL, &cm);
    free(k.plain);
    proto_kv_free(&cm);
    return outcome(h, r, PROTO_ERR_INVALID);
}

/* Item 6: refs restore could not use. */
static int
ref_case(struct h *h, bool short_raw)
{
    struct chunk k;
    int r = hello_open(h, PROTO_OPEN_WRITE);

    if (r)
        return outcome(h, r, PROTO_ERR_INVALID);
    if (short_raw)
        chunk_random(&k, PROTO_CHUNK_RAW, 1000);
    else
        chunk_delta(&k, h->window_size);
    r = one_window_backup(h, "host1-ref", &k, PROTO_CHUNK_RAW, NULL, NULL);
    free(k.plain);
    return outcome(h, r, PROTO_ERR_INVALID);
}

/* A DELTA stored (committed in a first backup), then sent again in a
 * second one as a RAW chunk of a whole window under the same digest. */
static int
claim(struct h *h)
{
    struct chunk d, lie;
    uint8_t *junk;
    int r = hello_open(h, PROTO_OPEN_WRITE);

    if (r)
        return outcome(h, r, PROTO_ERR_CORRUPT);
    chunk_delta(&d, h->window_size);
    r = one_window_backup(h, "host1-claim", &d, PROTO_CHUNK_DELTA, NULL, NULL);
    if (r)
        return outcome(h, r, PROTO_ERR_CORRUPT) | 1;
    junk = lb_xcalloc(1, h->window_size);
    chunk_make(&lie, PROTO_CHUNK_RAW, junk, h->window_size);
    lie.c.d = d.c.d;
    r = one_window_backup(h, "host1-claim", &lie, PROTO_CHUNK_RAW, NULL, NULL);
    free(junk);
    free(d.plain);
    return outcome(h, r, PROTO_ERR_CORRUPT);
}

/* Item 5: the largest disks a backup may declare, nothing in them. */
static int
amplify(struct h *h)
{
    struct proto_kv none = {0};
    int r = hello_open(h, PROTO_OPEN_WRITE);

    if (r == 0)
        r = begin(h, "host1-amp", NULL);
    for (int i = 0; r == 0 && i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "vd%c", 'a' + i);
        r = disk(h, name, PROTO_MF_MAX_WINDOWS * (uint64_t)h->window_size);
        if (r == 0) {
            proto_enc_kv(&h->out, PROTO_T_DISK_END, &none);
            r = h_send(h) < 0 ? -1 : 0;
        }
    }
    if (r == 0)
        r = finish(h, false, NULL);
    return outcome(h, r, 0);
}

/* Item 3: a backup of any set. */
static int
junk(struct h *h, const char *name, bool want_ok)
{
    struct chunk k;
    struct proto_kv bm = {0};
    int r = hello_open(h, PROTO_OPEN_WRITE);

    proto_kv_set(&bm, "kind", "full");
    if (r == 0) {
        chunk_random(&k, PROTO_CHUNK_RAW, h->window_size);
        r = one_window_backup(h, name, &k, PROTO_CHUNK_RAW, &bm, NULL);
        free(k.plain);
    }
    proto_kv_free(&bm);
    return outcome(h, r, want_ok ? 0 : PROTO_ERR_DENIED);
}

static int
read_other(struct h *h, const char *id)
{
    int r = hello_open(h, PROTO_OPEN_READ);

    if (r == 0) {
        proto_enc_str(&h->out, PROTO_T_GET_MANIFEST, id);
        r = h_send(h) < 0 ? -1 : h_expect(h, PROTO_T_MANIFEST_DATA, NULL, NULL);
        if (r == 0)
            say(h, "the manifest of %s was sent", id);
    }
    return outcome(h, r, PROTO_ERR_NOT_FOUND);
}

static int
list_only(struct h *h, const char *glob)
{
    int r = hello_open(h, PROTO_OPEN_READ), bad = 0;
    unsigned n = 0;

    if (r)
        return outcome(h, r, 0);
    proto_enc_str(&h->out, PROTO_T_LIST, "");
    if (h_send(h) < 0)
        return outcome(h, -1, 0);
    for (;;) {
        struct proto_hdr hd;
        const uint8_t *p;
        struct proto_kv kv;
        if (proto_conn_recv(h->c, &hd, &p) < 0)
            return outcome(h, -1, 0);
        if (hd.type == PROTO_T_LIST_END)
            break;
        if (hd.type != PROTO_T_LIST_ENTRY ||
            proto_dec_kv(p, hd.len, &kv) != PROTO_OK)
            return outcome(h, -1, 0);
        n++;
        if (fnmatch(glob, proto_kv_get(&kv, "name"), 0) != 0) {
            say(h, "listed %s of set %s", proto_kv_get(&kv, "id"),
                proto_kv_get(&kv, "name"));
            bad = 1;
        }
        proto_kv_free(&kv);
    }
    say(h, "%u backup(s) listed", n);
    return bad;
}

static int
prune_all(struct h *h)
{
    struct proto_kv req = {0};
    int r = hello_open(h, PROTO_OPEN_READ);

    proto_kv_set(&req, "keep_last", "1");
    proto_kv_set(&req, "dry_run", "1");
    if (r == 0) {
        proto_enc_kv(&h->out, PROTO_T_PRUNE, &req);
        r = h_send(h) < 0 ? -1 : h_expect(h, PROTO_T_OK, NULL, NULL);
    }
    proto_kv_free(&req);
    return outcome(h, r, PROTO_ERR_DENIED);
}

/* Item 4: a session that says nothing after OPEN is closed, with BUSY,
 * within the seconds given (the daemon's --idle-timeout and a margin). */
static int
idle(struct h *h, unsigned secs)
{
    uint64_t t0 = lb_now_ns();
    int r = hello_open(h, PROTO_OPEN_WRITE);

    if (r)
        return outcome(h, r, PROTO_ERR_BUSY);
    if (proto_conn_wait_readable(h->c, (int)secs * 1000) <= 0) {
        say(h, "still open after %u s", secs);
        return 1;
    }
    r = h_expect(h, PROTO_T_OK, NULL, NULL);
    say(h, "closed after %.1f s", (double)(lb_now_ns() - t0) / 1e9);
    return outcome(h, r, PROTO_ERR_BUSY);
}

/* Item 8: hold a session open (its answer said first) until stdin ends. */
static int
hold(struct h *h, const char *mode, bool want_ok)
{
    int r = hello_open(h, strcmp(mode, "write") == 0 ? PROTO_OPEN_WRITE
                                                     : PROTO_OPEN_READ);
    char buf[64];

    if (r == 0)
        say(h, "open");
    else
        outcome(h, r, 0);
    while (r == 0 && read(0, buf, sizeof buf) > 0)
        ;
    return want_ok ? (r == 0 ? 0 : 1)
                   : (r == 1 && h->code == PROTO_ERR_BUSY ? 0 : 1);
}

int
run_case(struct h *h, char **a, int n)
{
    const char *c = h->name;

    if (strcmp(c, "meta-begin") == 0 && n == 0)
        return meta_begin(h);
    if (strcmp(c, "meta-commit") == 0 && n == 0)
        return meta_commit(h);
    if (strcmp(c, "xml-junk") == 0 && n == 0)
        return xml_case(h, true);
    if (strcmp(c, "xml-raw") == 0 && n == 0)
        return xml_case(h, false);
    if (strcmp(c, "ref-type") == 0 && n == 0)
        return ref_case(h, false);
    if (strcmp(c, "raw-short") == 0 && n == 0)
        return ref_case(h, true);
    if (strcmp(c, "claim") == 0 && n == 0)
        return claim(h);
    if (strcmp(c, "amplify") == 0 && n == 0)
        return amplify(h);
    if (strcmp(c, "junk") == 0 && n == 2)
        return junk(h, a[0], strcmp(a[1], "ok") == 0);
    if (strcmp(c, "read-other") == 0 && n == 1)
        return read_other(h, a[0]);
    if (strcmp(c, "list-only") == 0 && n == 1)
        return list_only(h, a[0]);
    if (strcmp(c, "prune-all") == 0 && n == 0)
        return prune_all(h);
    if (strcmp(c, "idle") == 0 && n == 1)
        return idle(h, (unsigned)strtoul(a[0], NULL, 10));
    if (strcmp(c, "open") == 0 && n == 2)
        return hold(h, a[0], strcmp(a[1], "ok") == 0);
    if (strcmp(c, "recommit") == 0 && n == 3)
        return recommit(h, a[0], a[1], a[2]);
    fprintf(stderr, "lbhostile: unknown case or arguments: %s\n", c);
    return 2;
}
