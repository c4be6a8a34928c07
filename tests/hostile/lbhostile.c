/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lbhostile: a hostile client of backupd (issue 10). It speaks the
 * protocol directly, with proto's encoders and no agent, and tries one
 * thing a broken-into VM host could send:
 *
 *   lbhostile CASE [ARGS...] --socket PATH          (to backupd listen)
 *   lbhostile CASE [ARGS...] -- COMMAND [ARGS...]   (backupd serve, e.g.
 *                                                    over ssh)
 *
 * It prints what backupd answered, one line ("CASE: ERROR 9 INVALID:
 * message", "CASE: COMMITTED ID", ...), and exits 0 when the answer is the
 * secure one the case expects, 1 when it is not, 2 on a usage error. What
 * the client cannot see (the daemon alive, other sessions unharmed, the
 * repository sound) tests/integration/test_hostile.sh checks.
 *
 * Cases (tests/integration/test_hostile.sh runs each):
 *   meta-begin          256 metadata keys at BACKUP_BEGIN: INVALID
 *   meta-commit         200 at BACKUP_BEGIN and 200 at COMMIT: INVALID
 *   xml-junk            domain_xml "junk": INVALID
 *   xml-raw             domain_xml naming a RAW chunk: INVALID
 *   ref-type            a DELTA chunk named as RAW: INVALID
 *   raw-short           a RAW chunk shorter than its window: INVALID
 *   claim               a stored DELTA chunk sent again as RAW: CORRUPT
 *   amplify             4 disks of 2^24 windows, no data: COMMITTED
 *   junk NAME ok|denied a backup of set NAME (one window of junk)
 *   read-other ID       GET_MANIFEST of another set's backup: NOT_FOUND
 *   list-only GLOB      LIST of everything: only sets matching GLOB
 *   prune-all           PRUNE of every set (dry run): DENIED
 *   idle SECONDS        says nothing: closed with BUSY within SECONDS
 *   open MODE ok|busy   OPEN(read|write), then holds the session until
 *                       its standard input ends (for the bounds)
 *   recommit ID NAME XML  a backup of NAME with ID's windows and XML
 *                       (a file) as its saved domain XML: COMMITTED
 *
 * And one server: lbhostile liar [--flood-list|--flood-manifest] --
 * COMMAND... relays a backupd and flips a byte of the first chunk it
 * sends, or repeats its first LIST_ENTRY or MANIFEST_DATA without end
 * (liar.c).
 */
#include "tests/hostile/hostile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>

void
say(struct h *h, const char *fmt, ...)
{
    va_list ap;

    printf("%s: ", h->name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* ---- the connection ------------------------------------------------------ */

static int
h_connect(struct h *h, char **argv, int argc)
{
    if (argc >= 2 && strcmp(argv[0], "--socket") == 0) {
        int fd = lb_unix_connect(argv[1]);
        if (fd < 0)
            return lb_error(errno, "connect to %s", argv[1]);
        h->c = proto_conn_new(fd, fd);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[0], "--") == 0) {
        int to[2], from[2];
        if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
            return lb_error(errno, "pipe");
        h->child = fork();
        if (h->child < 0)
            return lb_error(errno, "fork");
        if (h->child == 0) {
            dup2(to[0], 0);
            dup2(from[1], 1);
            execvp(argv[1], argv + 1);
            _exit(127);
        }
        close(to[0]);
        close(from[1]);
        h->c = proto_conn_new(from[0], to[1]);
        return 0;
    }
    return lb_fail(EINVAL, "give --socket PATH or -- COMMAND");
}

static void
h_close(struct h *h)
{
    proto_conn_free(h->c, true);
    lb_buf_free(&h->out);
    if (h->child > 0)
        waitpid(h->child, NULL, 0);
}

int
h_send(struct h *h)
{
    return proto_conn_send_buf(h->c, &h->out);
}

int
h_expect(struct h *h, uint16_t type, const uint8_t **p, uint32_t *len)
{
    struct proto_hdr hd;
    const uint8_t *q;

    if (proto_conn_recv(h->c, &hd, &q) < 0) {
        snprintf(h->msg, sizeof h->msg, "%s", lb_error_msg());
        h->code = 0;
        return -1;
    }
    if (hd.type == PROTO_T_ERROR) {
        struct proto_error e;
        if (proto_dec_error(q, hd.len, &e) != PROTO_OK)
            return -1;
        h->code = e.code;
        snprintf(h->msg, sizeof h->msg, "%.*s", (int)e.msg.len, e.msg.p);
        return 1;
    }
    if (hd.type != type) {
        snprintf(h->msg, sizeof h->msg, "expected %s, got %s",
                 proto_type_name(type), proto_type_name(hd.type));
        return -1;
    }
    if (p)
        *p = q;
    if (len)
        *len = hd.len;
    return 0;
}

int
outcome(struct h *h, int got, uint32_t want)
{
    if (got == 1)
        say(h, "ERROR %u %s: %s", h->code, proto_err_name(h->code), h->msg);
    else if (got < 0)
        say(h, "connection failed: %s", h->msg);
    if (want == 0)
        return got == 0 ? 0 : 1;
    return got == 1 && h->code == want ? 0 : 1;
}

int
hello_open(struct h *h, uint8_t mode)
{
    struct proto_hello hi = {PROTO_VERSION, PROTO_VERSION, 0, {"lbhostile", 9}};
    struct proto_repo_info ri;
    const uint8_t *p;
    uint32_t len;
    int r;

    proto_enc_hello(&h->out, PROTO_T_HELLO, &hi);
    if (h_send(h) < 0)
        return -1;
    r = h_expect(h, PROTO_T_HELLO_REPLY, &p, &len);
    if (r)
        return r;
    proto_enc_open(&h->out, mode);
    if (h_send(h) < 0)
        return -1;
    r = h_expect(h, PROTO_T_REPO_INFO, &p, &len);
    if (r)
        return r;
    if (proto_dec_repo_info(p, len, &ri) != PROTO_OK)
        return -1;
    h->window_size = ri.window_size;
    return 0;
}

/* ---- the pieces of a backup ---------------------------------------------- */

void
chunk_make(struct chunk *k, uint8_t type, uint8_t *plain, size_t len)
{
    memset(k, 0, sizeof *k);
    k->plain = plain;
    k->c.type = type;
    k->c.comp = PROTO_COMP_NONE;
    k->c.raw_len = (uint32_t)len;
    k->c.data = plain;
    k->c.data_len = (uint32_t)len;
    if (proto_chunk_digest(type, plain, len, &k->c.d) < 0)
        abort();
}

void
chunk_random(struct chunk *k, uint8_t type, size_t len)
{
    uint8_t *p = lb_xmalloc(len);

    if (lb_random(p, len) < 0)
        abort();
    chunk_make(k, type, p, len);
}

/* A DELTA of one data run of 512 bytes, for a window of wl bytes. */
void
chunk_delta(struct chunk *k, uint32_t wl)
{
    struct proto_run run = {0, 512, PROTO_RUN_DATA};
    uint8_t data[512];
    size_t len = proto_delta_size(1, sizeof data);
    uint8_t *p = lb_xmalloc(len);

    if (lb_random(data, sizeof data) < 0 ||
        proto_delta_encode(p, len, wl, &run, 1, data) != len)
        abort();
    chunk_make(k, PROTO_CHUNK_DELTA, p, len);
}

void
send_chunk(struct h *h, const struct chunk *k)
{
    proto_enc_chunk(&h->out, PROTO_T_CHUNK, &k->c);
}

void
send_window(struct h *h, uint64_t index, uint8_t type,
            const struct proto_digest *d)
{
    struct proto_window_rec r = {.index = index, .op = PROTO_WIN_SET, .n = 1};
    size_t f = proto_frame_begin(&h->out, PROTO_T_WINDOWS);
    size_t at = proto_enc_windows_start(&h->out);

    r.refs[0].type = type;
    r.refs[0].d = *d;
    proto_enc_window_rec(&h->out, &r);
    proto_enc_windows_finish(&h->out, at, 1);
    proto_frame_end(&h->out, f);
}

void
many_keys(struct proto_kv *kv, const char *prefix, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof k, "%s%u", prefix, i);
        proto_kv_set(kv, k, "v");
    }
}

/* BACKUP_BEGIN of name with meta: 0, 1 (ERROR) or -1. */
int
begin(struct h *h, const char *name, const struct proto_kv *meta)
{
    struct proto_kv none = {0};

    proto_enc_backup_begin(&h->out, name, "", meta ? meta : &none);
    if (h_send(h) < 0)
        return -1;
    return h_expect(h, PROTO_T_BACKUP_STARTED, NULL, NULL);
}

/* DISK_BEGIN of a full disk: 0, 1 or -1. */
int
disk(struct h *h, const char *name, uint64_t size)
{
    struct proto_kv none = {0};

    proto_enc_disk_begin(&h->out, name, size, PROTO_DISK_FULL, &none);
    if (h_send(h) < 0)
        return -1;
    return h_expect(h, PROTO_T_DISK_READY, NULL, NULL);
}

/* DISK_END then COMMIT with meta: 0 (COMMITTED, its id printed), 1, -1. */
int
finish(struct h *h, bool end_disk, const struct proto_kv *meta)
{
    struct proto_kv none = {0}, out;
    const uint8_t *p;
    uint32_t len;
    int r;

    if (end_disk)
        proto_enc_kv(&h->out, PROTO_T_DISK_END, &none);
    proto_enc_kv(&h->out, PROTO_T_COMMIT, meta ? meta : &none);
    if (h_send(h) < 0)
        return -1;
    r = h_expect(h, PROTO_T_COMMITTED, &p, &len);
    if (r == 0 && proto_dec_kv(p, len, &out) == PROTO_OK) {
        say(h, "COMMITTED %s", proto_kv_get(&out, "id"));
        proto_kv_free(&out);
    }
    return r;
}

/* One full backup of name: disk vda of one window holding k as type
 * (SET), commit meta. */
int
one_window_backup(struct h *h, const char *name, const struct chunk *k,
                  uint8_t type, const struct proto_kv *bmeta,
                  const struct proto_kv *cmeta)
{
    int r = begin(h, name, bmeta);

    if (r == 0)
        r = disk(h, "vda", h->window_size);
    if (r)
        return r;
    send_chunk(h, k);
    send_window(h, 0, type, &k->c.d);
    return finish(h, true, cmeta);
}

int
main(int argc, char **argv)
{
    struct h h = {0};
    int i, rc;

    signal(SIGPIPE, SIG_IGN);
    lb_log_init("lbhostile", LB_LOG_WARN);
    if (argc < 2) {
        fputs("usage: lbhostile CASE [ARGS] (--socket PATH | -- COMMAND...)\n",
              stderr);
        return 2;
    }
    h.name = argv[1];
    if (strcmp(h.name, "liar") == 0) /* a server, not a client: liar.c */
        return argc > 4 && strncmp(argv[2], "--flood-", 8) == 0 &&
                       strcmp(argv[3], "--") == 0
                   ? liar(argv + 2)
               : argc > 3 && strcmp(argv[2], "--") == 0 ? liar(argv + 3)
                                                        : 2;
    for (i = 2; i < argc; i++)
        if (strcmp(argv[i], "--socket") == 0 || strcmp(argv[i], "--") == 0)
            break;
    if (h_connect(&h, argv + i, argc - i) < 0) {
        lb_log_error_slot();
        return 2;
    }
    rc = run_case(&h, argv + 2, i - 2);
    h_close(&h);
    return rc;
}
