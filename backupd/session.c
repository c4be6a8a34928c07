/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One backupd session: BRIDGE (from a relay), HELLO, then requests until
 * the client closes the connection (PROTOCOL.md, "Session"). This file is
 * the protocol's frame: the handshake, OPEN and INIT, the request loop and
 * how every error ends the session; the requests themselves are in
 * session_backup.c and session_repo.c, the chunk pool of a writing session
 * in pool.c.
 *
 * Every client is untrusted: frames are decoded by proto's pure decoders,
 * names are checked before they reach a path, and chunks are re-hashed
 * before they are stored.
 */
#include "backupd/session.h"
#include "backupd/query.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>

uint32_t
backupd_err_code(int errnum)
{
    switch (errnum) {
    case ENOENT:
        return PROTO_ERR_NOT_FOUND;
    case ENOSPC:
    case EDQUOT:
        return PROTO_ERR_NO_SPACE;
    case EWOULDBLOCK:
        return PROTO_ERR_LOCKED;
    case EPROTO:
    case EBADMSG:
        return PROTO_ERR_CORRUPT;
    case EINVAL:
        return PROTO_ERR_INVALID;
    case EEXIST:
        return PROTO_ERR_EXISTS;
    case EPERM:
    case EACCES:
    case EROFS:
        return PROTO_ERR_DENIED;
    case ERANGE:
        return PROTO_ERR_REPO_VERSION;
    case ENOTEMPTY:
        return PROTO_ERR_NOT_EMPTY;
    case ENOTDIR:
        return PROTO_ERR_NO_REPO;
    case EBUSY:
        return PROTO_ERR_BUSY;
    default:
        return PROTO_ERR_IO;
    }
}

void
backupd_session_send_error(struct session *s, struct lb_buf *buf, uint32_t code)
{
    const char *hint = lb_error_hint_msg();

    if (code == 0)
        code = backupd_err_code(lb_error_errno());
    if (code == PROTO_ERR_NO_SPACE && !hint[0])
        hint = s->importing
                   ? "free space on the repository's filesystem and run the "
                     "copy again: the chunks already stored will not be "
                     "sent again"
                   : "free space on the repository's filesystem and run the "
                     "backup again: the data already stored will be reused";
    lb_info("session error: %s", lb_error_msg());
    lb_buf_reset(buf);
    proto_enc_error(buf, code, lb_error_msg(), hint);
    proto_conn_send_buf(s->conn, buf);
}

int
backupd_session_fail(struct session *s, uint32_t code)
{
    backupd_session_send_error(s, &s->out, code);
    return -1;
}

int
backupd_session_proto_fail(struct session *s, const char *what, int status)
{
    lb_error(0, "protocol error in %s: %s", what, proto_status_str(status));
    return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
}

int
backupd_session_send(struct session *s)
{
    return proto_conn_send_buf(s->conn, &s->out);
}

int
backupd_session_send_buf(struct session *s, struct lb_buf *buf)
{
    return proto_conn_send_buf(s->conn, buf);
}

int
backupd_session_need_store(struct session *s, uint8_t mode, const char *what)
{
    if (!s->st) {
        lb_error(0, "%s before OPEN", what);
        return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
    }
    if (s->mode < mode) {
        lb_fail(EPERM, "%s needs the repository opened for %s", what,
                mode == PROTO_OPEN_WRITE ? "writing" : "administration");
        return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
    }
    return 0;
}

static void
fail_busy(struct session *s, const char *what)
{
    char max[16];

    lb_human_size(max, sizeof max, backupd_limits_max(s->o->limits));
    lb_fail(EBUSY,
            "backupd has reserved as much memory for its sessions as it "
            "may (--max-memory %s): %s refused",
            max, what);
    lb_error_hint("retry later, when other backups or restores are done");
}

bool
backupd_session_reserve(struct session *s, uint64_t bytes, const char *what)
{
    if (backupd_limits_take(s->o->limits, bytes)) {
        s->reserved += bytes;
        return true;
    }
    fail_busy(s, what);
    return false;
}

/* Has the client left (or the daemon been asked to stop) while its
 * session waits for memory? */
static bool
session_gone(void *opaque)
{
    const struct session *s = opaque;
    struct pollfd pfd = {s->fd_in, POLLRDHUP, 0};

    if (s->o->stop && *s->o->stop)
        return true;
    return poll(&pfd, 1, 0) > 0 &&
           (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* The store made progress on a long request (gc, verify, list, prune,
 * delete): WORKING, at most one a second, so that a client's stall limit
 * tells a server at work from one that hangs (PROTOCOL.md, "Working").
 * From the request's threads; its own frame, so between whole frames. */
static void
session_tick(void *opaque)
{
    struct session *s = opaque;
    uint64_t now = lb_now_ns(), last = s->working_ns;
    struct lb_buf b = {0};

    if (now - last < 1000000000u ||
        !atomic_compare_exchange_strong(&s->working_ns, &last, now))
        return;
    proto_enc_empty(&b, PROTO_T_WORKING);
    /* a client gone is seen by the request's next send */
    (void)proto_conn_send_buf(s->conn, &b);
    lb_buf_free(&b);
}

/* A session begins to wait for memory: say so in the log and, if it can
 * read it, to the client (WAITING, before the OPEN's answer). */
static void
session_waiting(void *opaque, unsigned ahead)
{
    struct session *s = opaque;

    lb_info("session waits for memory (--max-memory): %u session%s waiting "
            "before it",
            ahead, ahead == 1 ? "" : "s");
    if (s->st && (s->features & PROTO_FEATURE_WAIT)) {
        struct proto_waiting w = {ahead, s->o->memory_wait};
        struct lb_buf b = {0};

        proto_enc_waiting(&b, &w);
        /* a client gone is seen by session_gone */
        if (proto_conn_send_buf(s->conn, &b) < 0)
            lb_debug("WAITING not sent: %s", lb_error_msg());
        lb_buf_free(&b);
    }
}

bool
backupd_session_reserve_wait(struct session *s, uint64_t bytes,
                             const char *what)
{
    static const struct backupd_wait_ops ops = {session_waiting,
                                                session_gone};
    uint64_t t0 = lb_now_ns();
    int e = backupd_limits_take_wait(s->o->limits, bytes, s->reserved,
                                     s->o->memory_wait, &ops, s);
    uint64_t ms = (lb_now_ns() - t0) / 1000000;

    if (e == 0) {
        if (ms >= 1000)
            lb_info("%s waited %" PRIu64 " s for memory", what, ms / 1000);
        s->reserved += bytes;
        return true;
    }
    if (e == ETIMEDOUT) {
        char max[16];

        lb_human_size(max, sizeof max, backupd_limits_max(s->o->limits));
        lb_fail(EBUSY,
                "backupd's other sessions held its memory (--max-memory %s) "
                "for the %u s %s waited (--memory-wait): refused",
                max, s->o->memory_wait, what);
        lb_error_hint("retry later, or give backupd listen more "
                      "--max-memory or --memory-wait");
    } else if (e == ECONNABORTED && s->o->stop && *s->o->stop) {
        lb_fail(EBUSY, "backupd is shutting down");
        lb_error_hint("run the backup again when backupd is back");
    } else if (e == ECONNABORTED) {
        lb_fail(ECONNABORTED, "the client left while %s waited for memory",
                what);
    } else {
        fail_busy(s, what);
    }
    return false;
}

void
backupd_session_unreserve(struct session *s, uint64_t bytes)
{
    bytes = LB_MIN(bytes, s->reserved);
    backupd_limits_give(s->o->limits, bytes);
    s->reserved -= bytes;
}

/* Reserve as many more of `unit` bytes as there is spare room for, up
 * to most: how many. */
static unsigned
reserve_spare(struct session *s, unsigned most, uint64_t unit)
{
    unsigned n = most;

    while (n > 0 && !backupd_limits_take_spare(s->o->limits, n * unit))
        n--;
    s->reserved += n * unit;
    return n;
}

/* A writer's chunk pool: as many checking threads as the memory bound
 * lets it reserve (at least one, and its QUERY thread: waited for). On a
 * backend that keeps chunks in memory until they are published (RADOS),
 * each thread comes with room for the chunk it writes, and there is room
 * for one more per sync thread as far as the bound lets it. */
static int
start_pool(struct session *s)
{
    /* the largest chunk a frame carries, staged (0: in a file) */
    uint64_t staged = store_staged_mem(s->st, PROTO_MAX_PAYLOAD);
    uint64_t unit = BACKUPD_POOL_WORKER_BYTES + staged;
    unsigned n, more = 0;

    if (!backupd_session_reserve_wait(s, unit + BACKUPD_QUERY_BYTES,
                                      "a backup"))
        return -1;
    n = 1 + reserve_spare(s, backupd_pool_nworkers(s->o->workers) - 1, unit);
    if (staged)
        more = reserve_spare(s, BACKUPD_POOL_SYNC_THREADS, staged);
    s->pool = backupd_pool_start(s->st, n, (n + more) * staged);
    s->query = backupd_query_start(s);
    return s->query ? 0 : -1;
}

static int
do_hello(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_hello h, mine;
    int st = proto_dec_hello(p, len, &h);
    static const char sw[] = "backupd " LB_VERSION;

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "HELLO", st);
    if (proto_hello_negotiate(&h, PROTO_VERSION, PROTO_VERSION,
                              PROTO_FEATURES_KNOWN, &mine) == 0) {
        lb_error(0,
                 "protocol versions %u..%u offered, this backupd speaks "
                 "version %u",
                 h.version_min, h.version_max, PROTO_VERSION);
        lb_error_hint("install the same livebackup version on both hosts");
        return backupd_session_fail(s, PROTO_ERR_VERSION);
    }
    mine.software.p = sw;
    mine.software.len = (uint16_t)strlen(sw);
    s->features = mine.features;
    proto_enc_hello(&s->out, PROTO_T_HELLO_REPLY, &mine);
    return backupd_session_send(s);
}

int
backupd_session_refuse(struct session *s)
{
    lb_fail(EPERM, "this repository connection is append-only: delete, "
                   "prune and gc are refused");
    lb_error_hint("run them on the backup server, or through a key "
                  "without --append-only");
    return backupd_session_fail(s, PROTO_ERR_DENIED);
}

bool
backupd_name_glob_valid(const char *glob)
{
    size_t n = strlen(glob);

    if (n == 0 || n > 256)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)glob[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static bool
any_glob(char *const *globs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(globs[i], name, 0) == 0)
            return true;
    return false;
}

bool
backupd_session_restricted(const struct session *s)
{
    return s->o->nnames || s->nbridge_names;
}

bool
backupd_session_name_allowed(const struct session *s, const char *name)
{
    if (s->o->nnames && !any_glob(s->o->names, s->o->nnames, name))
        return false;
    return !s->nbridge_names ||
           any_glob(s->bridge_names, s->nbridge_names, name);
}

int
backupd_session_deny_name(struct session *s, const char *name)
{
    lb_fail(EPERM,
            "this repository connection may not use the set '%.200s' "
            "(backupd --restrict-names)",
            name);
    lb_error_hint("back up under a name the key's --restrict-names allows");
    return backupd_session_fail(s, PROTO_ERR_DENIED);
}

int
backupd_session_check_backup(struct session *s, const char *id)
{
    struct proto_kv meta;
    const char *name;
    bool ok;

    if (!backupd_session_restricted(s))
        return 0;
    if (store_backup_meta(s->st, id, &meta) < 0)
        return backupd_session_fail(s, 0);
    name = proto_kv_get(&meta, "name");
    ok = name && backupd_session_name_allowed(s, name);
    proto_kv_free(&meta);
    if (ok)
        return 0;
    /* Like a backup that does not exist: nothing is told of other sets. */
    lb_fail(ENOENT, "no backup %s in a set this connection may read", id);
    return backupd_session_fail(s, PROTO_ERR_NOT_FOUND);
}

/* backupd serve --read-only (a pull's key): every request that would
 * change the repository is refused at OPEN or INIT. */
static int
refuse_read_only(struct session *s, const char *what)
{
    lb_fail(EPERM,
            "this repository connection is read-only: it may list and "
            "read backups, not %s",
            what);
    lb_error_hint("back up, delete, prune and gc through a key without "
                  "--read-only");
    return backupd_session_fail(s, PROTO_ERR_DENIED);
}

static int
do_open(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_repo_info ri = {0};
    uint8_t mode;
    int st = proto_dec_open(p, len, &mode);

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "OPEN", st);
    if (s->st) {
        lb_error(0, "repository opened twice");
        return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
    }
    if (mode == PROTO_OPEN_ADMIN && s->o->append_only)
        return backupd_session_refuse(s);
    if (mode != PROTO_OPEN_READ && s->o->read_only)
        return refuse_read_only(s, "open the repository for writing");
    s->st = store_open(s->o->repo,
                       mode == PROTO_OPEN_ADMIN   ? STORE_ADMIN
                       : mode == PROTO_OPEN_WRITE ? STORE_WRITE
                                                  : STORE_READ,
                       s->o->lock_wait);
    if (!s->st) {
        int e = lb_error_errno();
        return backupd_session_fail(s, e == ENOENT ? PROTO_ERR_NO_REPO
                                                   : backupd_err_code(e));
    }
    /* A client that does not know encryption would read the repository
     * as an unencrypted one: it gets a reason instead. */
    if (store_encryption(s->st) != PROTO_ENC_NONE &&
        !(s->features & PROTO_FEATURE_ENCRYPTION)) {
        lb_fail(EPERM,
                "repository %s is encrypted, and this livebackup is too old "
                "to use encrypted repositories",
                s->o->repo);
        lb_error_hint("upgrade livebackup on this host to the version of "
                      "the backup server");
        return backupd_session_fail(s, PROTO_ERR_DENIED);
    }
    store_set_append_only(s->st, s->o->append_only);
    store_set_trusted(s->st, s->o->trusted && !s->o->append_only);
    if (s->features & PROTO_FEATURE_WORKING)
        store_set_tick(s->st, session_tick, s);
    s->mode = mode;
    if (mode != PROTO_OPEN_READ && start_pool(s) < 0)
        return backupd_session_fail(s, PROTO_ERR_BUSY);
    ri.format_version = store_format_version(s->st);
    ri.window_size = store_window_size(s->st);
    ri.flags = s->o->append_only ? PROTO_REPO_F_APPEND_ONLY : 0;
    if (store_encryption(s->st) != PROTO_ENC_NONE)
        ri.flags |= PROTO_REPO_F_ENCRYPTED;
    ri.repo_id.p = store_repo_id(s->st);
    ri.repo_id.len = (uint16_t)strlen(ri.repo_id.p);
    proto_enc_repo_info(&s->out, &ri);
    return backupd_session_send(s);
}

static int
do_init(struct session *s, const uint8_t *p, uint32_t len)
{
    uint32_t ws;
    struct proto_key_info k;
    struct store_key sk = {0};
    int st = proto_dec_init_keyed(p, len, &ws, &k);

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "INIT", st);
    if (k.encryption != PROTO_ENC_NONE &&
        !(s->features & PROTO_FEATURE_ENCRYPTION))
        return backupd_session_proto_fail(s, "INIT", PROTO_E_TRAILING);
    if (s->o->append_only) {
        lb_fail(EPERM, "this connection is append-only: it cannot create "
                       "repositories");
        return backupd_session_fail(s, PROTO_ERR_DENIED);
    }
    if (s->o->read_only)
        return refuse_read_only(s, "create a repository");
    sk.encryption = k.encryption;
    memcpy(sk.key_id, k.key_id, sizeof sk.key_id);
    sk.keyfile = k.key;
    sk.keyfile_len = k.key_len;
    if (store_init_keyed(s->o->repo, ws, &sk) < 0)
        return backupd_session_fail(s, 0);
    lb_info("created repository %s (window %u KiB%s)", s->o->repo, ws >> 10,
            k.encryption == PROTO_ENC_REPOKEY   ? ", encrypted, repokey"
            : k.encryption == PROTO_ENC_KEYFILE ? ", encrypted, keyfile"
                                                : "");
    proto_enc_ok(&s->out, 0);
    return backupd_session_send(s);
}

static int
dispatch(struct session *s, const struct proto_hdr *h, const uint8_t *p)
{
    switch (h->type) {
    case PROTO_T_INIT:
        return do_init(s, p, h->len);
    case PROTO_T_OPEN:
        return do_open(s, p, h->len);
    case PROTO_T_LIST:
        return backupd_req_list(s, p, h->len);
    case PROTO_T_BACKUP_BEGIN:
        return backupd_req_backup_begin(s, p, h->len);
    case PROTO_T_IMPORT:
        return backupd_req_import(s, p, h->len);
    case PROTO_T_DISK_BEGIN:
        return backupd_req_disk_begin(s, p, h->len);
    case PROTO_T_QUERY:
        return backupd_req_query(s, p, h->len);
    case PROTO_T_CHUNK:
        return backupd_req_chunk(s, p, h->len);
    case PROTO_T_WINDOWS:
        return backupd_req_windows(s, p, h->len);
    case PROTO_T_DISK_END:
        return backupd_req_disk_end(s, p, h->len);
    case PROTO_T_COMMIT:
        return backupd_req_commit(s, p, h->len);
    case PROTO_T_ABORT:
        return backupd_req_abort(s, h->len);
    case PROTO_T_KEY_GET:
        return backupd_req_key_get(s, h->len);
    case PROTO_T_KEY_SET:
        return backupd_req_key_set(s, p, h->len);
    case PROTO_T_GET_MANIFEST:
        return backupd_req_get_manifest(s, p, h->len);
    case PROTO_T_GET_CHUNKS:
        return backupd_req_get_chunks(s, p, h->len);
    case PROTO_T_GET_STORED:
        return backupd_req_get_stored(s, p, h->len);
    case PROTO_T_VERIFY:
        return backupd_req_verify(s, p, h->len);
    case PROTO_T_DELETE:
        return backupd_req_delete(s, p, h->len);
    case PROTO_T_PRUNE:
        return backupd_req_prune(s, p, h->len);
    case PROTO_T_GC:
        return backupd_req_gc(s, p, h->len);
    default:
        lb_error(0, "unexpected %s frame from the client",
                 proto_type_name(h->type));
        return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
    }
}

/* BRIDGE's restrict_names: globs, one per line (none: no restriction). */
static int
bridge_names(struct session *s, const char *v)
{
    CLEANUP_FREE char *copy = NULL;
    char *save = NULL;

    if (!v)
        return 0;
    copy = lb_xstrdup(v);
    for (char *g = strtok_r(copy, "\n", &save); g;
         g = strtok_r(NULL, "\n", &save)) {
        if (!backupd_name_glob_valid(g) ||
            s->nbridge_names == BACKUPD_MAX_NAME_GLOBS)
            return -1;
        s->bridge_names = lb_xrealloc(
            s->bridge_names, (s->nbridge_names + 1) * sizeof *s->bridge_names);
        s->bridge_names[s->nbridge_names++] = lb_xstrdup(g);
    }
    return s->nbridge_names ? 0 : -1;
}

/*
 * BRIDGE (PROTOCOL.md, "Bridging"): `backupd serve` relaying an ssh client
 * to this daemon passes that connection's restrictions first. Accepted
 * only in listen mode, only as the first frame, only from a peer of our
 * own uid (or root): a remote client cannot send one, its bytes come
 * after the bridge's.
 */
static int
do_bridge(struct session *s, struct backupd_opts *so, int fd, const uint8_t *p,
          uint32_t len)
{
    struct ucred cr;
    socklen_t crlen = sizeof cr;
    struct proto_kv kv;
    int st;

    if (!so->accept_bridge ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0 ||
        (cr.uid != 0 && cr.uid != geteuid())) {
        lb_error(0, "BRIDGE refused");
        return backupd_session_fail(s, PROTO_ERR_DENIED);
    }
    st = proto_dec_kv(p, len, &kv);
    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "BRIDGE", st);
    if (proto_kv_get_u64(&kv, "append_only", 0))
        so->append_only = true;
    if (proto_kv_get_u64(&kv, "read_only", 0))
        so->read_only = true;
    if (bridge_names(s, proto_kv_get(&kv, "restrict_names")) < 0) {
        proto_kv_free(&kv);
        lb_error(0, "BRIDGE: restrict_names: not one glob per line");
        return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
    }
    /* The peer is root or our own user: it could write the repository's
     * files itself, so its word that it is a local agent's child (which
     * hashed every chunk it sends) is good enough. */
    if (proto_kv_get_u64(&kv, "trusted", 0) && !so->append_only &&
        !so->read_only)
        so->trusted = true;
    if (proto_kv_get(&kv, "peer"))
        lb_info("bridged session from %s%s%s%s%s", proto_kv_get(&kv, "peer"),
                so->append_only ? " (append-only)" : "",
                so->read_only ? " (read-only)" : "",
                so->trusted ? " (trusted)" : "",
                s->nbridge_names ? " (restricted names)" : "");
    proto_kv_free(&kv);
    return 0;
}

/* A receive failed: tell the client why, if it can still read it. An
 * idle session (--idle-timeout) is told it was closed. */
static void
recv_failed(struct session *s)
{
    if (lb_error_errno() == ETIMEDOUT) {
        lb_error_prefix("backupd closed the session");
        lb_error_hint("a session that waits %u s for a request is closed "
                      "(backupd --idle-timeout)",
                      s->o->idle_timeout);
        lb_warn("%s", lb_error_msg());
        /* Cut in the middle of a frame: nothing more can be said. */
        if (!proto_conn_broken(s->conn))
            backupd_session_fail(s, PROTO_ERR_BUSY);
        return;
    }
    if (!proto_conn_eof(s->conn))
        backupd_session_fail(s, PROTO_ERR_PROTOCOL);
}

/*
 * Turn the client away before the session starts (backupd listen at its
 * bounds): the answer it reads is ERROR BUSY; what it sends meanwhile is
 * read and dropped until it closes (closing a socket with unread data
 * would reset the connection before it reads the answer), for at most a
 * few seconds.
 */
static void
refuse_session(struct session *s, int fd_in)
{
    char buf[4096];
    uint64_t deadline = lb_now_ns() + 5000000000ull;

    lb_warn("session refused: %s", lb_error_msg());
    backupd_session_fail(s, PROTO_ERR_BUSY);
    shutdown(fd_in, SHUT_WR);
    for (;;) {
        struct pollfd pfd = {fd_in, POLLIN, 0};
        uint64_t now = lb_now_ns();
        if (now >= deadline ||
            poll(&pfd, 1, (int)((deadline - now) / 1000000) + 1) <= 0 ||
            read(fd_in, buf, sizeof buf) <= 0)
            break;
    }
}

int
backupd_session_run(int fd_in, int fd_out, const struct backupd_opts *o)
{
    struct backupd_opts so = *o; /* BRIDGE may restrict this session */
    struct session s = {.o = &so};
    struct proto_hdr h;
    const uint8_t *p;
    int r = -1;

    s.conn = proto_conn_new(fd_in, fd_out);
    s.fd_in = fd_in;
    if (o->refuse ||
        !backupd_session_reserve_wait(&s, SESSION_BASE_BYTES, "a new session")) {
        if (o->refuse) {
            lb_fail(EBUSY,
                    "backupd serves as many sessions as it may at once "
                    "(--max-sessions %u)",
                    o->max_sessions);
            lb_error_hint("retry later, when other backups or restores are "
                          "done");
        }
        refuse_session(&s, fd_in);
        goto out;
    }
    if (o->idle_timeout &&
        proto_conn_set_timeout(s.conn, o->idle_timeout * 1000u) < 0) {
        lb_log_error_slot();
        goto out;
    }
    if (proto_conn_recv(s.conn, &h, &p) < 0) {
        recv_failed(&s);
        goto out;
    }
    if (h.type == PROTO_T_BRIDGE) {
        if (do_bridge(&s, &so, fd_in, p, h.len) < 0)
            goto out;
        if (proto_conn_recv(s.conn, &h, &p) < 0) {
            recv_failed(&s);
            goto out;
        }
    }
    if (h.type != PROTO_T_HELLO) {
        lb_error(0, "the client did not start with HELLO");
        backupd_session_fail(&s, PROTO_ERR_PROTOCOL);
        goto out;
    }
    if (do_hello(&s, p, h.len) < 0)
        goto out;
    for (;;) {
        if (o->stop && *o->stop) {
            lb_error(0, "backupd is shutting down");
            lb_error_hint("run the backup again when backupd is back");
            backupd_session_fail(&s, PROTO_ERR_BUSY);
            break;
        }
        if (s.txn && backupd_pool_failed(s.pool)) {
            backupd_pool_wait(s.pool);
            backupd_session_fail(&s, 0);
            break;
        }
        /* The QUERY thread told the client already. */
        if (s.txn && backupd_query_failed(s.query)) {
            backupd_query_wait(s.query);
            break;
        }
        if (proto_conn_recv(s.conn, &h, &p) < 0) {
            if (proto_conn_eof(s.conn) && !s.txn &&
                strcmp(lb_error_msg(), "connection closed by the peer") == 0) {
                r = 0;
            } else if (lb_error_errno() == ETIMEDOUT) {
                recv_failed(&s);
            } else {
                /* The client's doing, not ours: a warning. */
                lb_warn("session ended: %s", lb_error_msg());
                if (!proto_conn_eof(s.conn))
                    backupd_session_fail(&s, PROTO_ERR_PROTOCOL);
            }
            break;
        }
        if (dispatch(&s, &h, p) < 0)
            break;
    }
out:
    if (s.txn) {
        backupd_query_wait(s.query);
        backupd_pool_wait(s.pool);
        lb_info("backup %s abandoned: only its chunks remain, for reuse",
                store_txn_id(s.txn));
        store_txn_abort(s.txn);
    }
    backupd_query_stop(s.query);
    backupd_pool_stop(s.pool);
    backupd_stored_free(s.stored);
    backupd_session_unreserve(&s, s.reserved);
    for (size_t i = 0; i < s.nbridge_names; i++)
        free(s.bridge_names[i]);
    free(s.bridge_names);
    store_close(s.st);
    lb_buf_free(&s.out);
    proto_conn_free(s.conn, false);
    return r;
}
