/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The requests of a session besides a backup's: reading (LIST,
 * GET_MANIFEST, GET_CHUNKS, VERIFY) and administration (DELETE, PRUNE,
 * GC). Streamed replies are batched into few writes.
 */
#include "backupd/session.h"
#include "proto/crypt.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

int
backupd_req_list(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_str name;
    struct store_list l;
    char filter[256];
    uint64_t sent = 0;
    int st = proto_dec_str(p, len, &name);

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "LIST", st);
    if (backupd_session_need_store(s, PROTO_OPEN_READ, "LIST") < 0)
        return -1;
    if (name.len && (!proto_name_valid(name.p, name.len) ||
                     !proto_str_copy(filter, sizeof filter, name))) {
        lb_fail(EINVAL, "invalid name in LIST");
        return backupd_session_fail(s, PROTO_ERR_INVALID);
    }
    if (name.len && !backupd_session_name_allowed(s, filter))
        return backupd_session_deny_name(s, filter);
    if (store_list(s->st, name.len ? filter : NULL, &l) < 0)
        return backupd_session_fail(s, 0);
    for (size_t i = 0; i < l.n; i++) {
        const char *set = proto_kv_get(&l.b[i].meta, "name");
        /* Other sets are not listed through a restricted key. */
        if (!set || !backupd_session_name_allowed(s, set))
            continue;
        proto_enc_kv(&s->out, PROTO_T_LIST_ENTRY, &l.b[i].meta);
        sent++;
        if (s->out.len > (256u << 10) && backupd_session_send(s) < 0)
            break;
    }
    store_list_free(&l);
    proto_enc_u64(&s->out, PROTO_T_LIST_END, sent);
    return backupd_session_send(s);
}

int
backupd_req_get_manifest(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_str sid;
    char id[PROTO_ID_LEN + 1];
    CLEANUP_CLOSE int fd = -1;
    uint64_t total = 0;
    int st = proto_dec_str(p, len, &sid);

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "GET_MANIFEST", st);
    if (backupd_session_need_store(s, PROTO_OPEN_READ, "GET_MANIFEST") < 0)
        return -1;
    if (!proto_backup_id_valid(sid.p, sid.len)) {
        lb_fail(EINVAL, "invalid backup id");
        return backupd_session_fail(s, PROTO_ERR_INVALID);
    }
    proto_str_copy(id, sizeof id, sid);
    if (backupd_session_check_backup(s, id) < 0)
        return -1;
    fd = store_manifest_open(s->st, id);
    if (fd < 0)
        return backupd_session_fail(s, 0);
    for (;;) {
        size_t f = proto_frame_begin(&s->out, PROTO_T_MANIFEST_DATA);
        ssize_t n;
        lb_buf_reserve(&s->out, 1u << 20);
        n = lb_read_full(fd, s->out.data + s->out.len, 1u << 20);
        if (n < 0) {
            lb_buf_reset(&s->out);
            lb_error(errno, "read manifest of %s", id);
            return backupd_session_fail(s, 0);
        }
        if (n == 0) {
            s->out.len = f;
            break;
        }
        s->out.len += (size_t)n;
        proto_frame_end(&s->out, f);
        total += (uint64_t)n;
        if (backupd_session_send(s) < 0)
            return -1;
    }
    proto_enc_u64(&s->out, PROTO_T_MANIFEST_END, total);
    return backupd_session_send(s);
}

int
backupd_req_get_chunks(struct session *s, const uint8_t *p, uint32_t len)
{
    const uint8_t *dg;
    uint32_t n;
    CLEANUP_BUF struct lb_buf file = {0};
    int st = proto_dec_query(p, len, &dg, &n);

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "GET_CHUNKS", st);
    if (n > PROTO_MAX_GET_CHUNKS)
        return backupd_session_proto_fail(s, "GET_CHUNKS", PROTO_E_RANGE);
    if (backupd_session_need_store(s, PROTO_OPEN_READ, "GET_CHUNKS") < 0)
        return -1;
    if (!s->chunk_reads_reserved) {
        if (!backupd_session_reserve(s, SESSION_CHUNK_READ_BYTES,
                                     "reading chunks"))
            return backupd_session_fail(s, PROTO_ERR_BUSY);
        s->chunk_reads_reserved = true;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct proto_digest d;
        struct proto_chunk c;
        memcpy(d.b, dg + (size_t)i * PROTO_DIGEST_LEN, PROTO_DIGEST_LEN);
        if (store_chunk_read(s->st, &d, &file, &c) < 0) {
            lb_buf_reset(&s->out);
            return backupd_session_fail(s, 0);
        }
        /* Header, then the file's bytes as they are: no copy. */
        proto_enc_chunk_head(&s->out, PROTO_T_CHUNK_DATA, &c);
        if (proto_conn_send_frame(s->conn, &s->out, c.data, c.data_len) < 0)
            return -1;
        lb_fault_point("backupd:chunk-sent");
    }
    return 0;
}

/* One chunk GET_STORED checks, on a slot's thread. */
struct stored_job {
    struct store *st;
    struct store_scratch *sc;
    struct proto_digest d;
    struct proto_chunk c;
    int rc, err;
    char msg[LB_ERR_MAX];
};

static void
stored_check(struct stored_job *j)
{
    j->rc = store_chunk_read_checked(j->st, j->sc, &j->d, &j->c);
    if (j->rc < 0) {
        j->err = lb_error_errno();
        snprintf(j->msg, sizeof j->msg, "%s", lb_error_msg());
    }
}

/*
 * GET_STORED's checking slots: made with the session's first GET_STORED,
 * each with its scratch (reserved with it) and a thread that waits for a
 * chunk to check, ended with the session. A copy asks for thousands of
 * chunks, 64 a request: a thread each cost more than many a check (a
 * small chunk's). A slot whose thread could not be made checks on the
 * request's thread.
 */
struct stored_slot {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct store_scratch *sc; /* each job's */
    struct stored_job job;
    bool queued; /* job handed to the thread, not yet checked */
    bool quit;
    bool running; /* the thread exists */
    pthread_t th;
};

struct backupd_stored {
    struct stored_slot slot[SESSION_STORED_THREADS];
    unsigned n;
};

static void *
stored_slot_main(void *opaque)
{
    struct stored_slot *t = opaque;

    pthread_mutex_lock(&t->lock);
    for (;;) {
        while (!t->queued && !t->quit)
            pthread_cond_wait(&t->cond, &t->lock);
        if (!t->queued)
            break;
        pthread_mutex_unlock(&t->lock);
        stored_check(&t->job);
        pthread_mutex_lock(&t->lock);
        t->queued = false;
        pthread_cond_broadcast(&t->cond);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

static void
stored_slot_add(struct backupd_stored *w)
{
    struct stored_slot *t = &w->slot[w->n++];

    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    t->sc = store_scratch_new();
    t->running = pthread_create(&t->th, NULL, stored_slot_main, t) == 0;
}

void
backupd_stored_free(struct backupd_stored *w)
{
    if (!w)
        return;
    for (unsigned i = 0; i < w->n; i++) {
        struct stored_slot *t = &w->slot[i];
        if (t->running) {
            pthread_mutex_lock(&t->lock);
            t->quit = true;
            pthread_cond_broadcast(&t->cond);
            pthread_mutex_unlock(&t->lock);
            pthread_join(t->th, NULL);
        }
        store_scratch_free(t->sc);
        pthread_mutex_destroy(&t->lock);
        pthread_cond_destroy(&t->cond);
    }
    free(w);
}

/* The session's checking slots: one per CPU and one for the chunk being
 * sent, up to SESSION_STORED_THREADS, and as the memory bound lets it
 * reserve. Returns how many (at least one), or -1. */
static int
stored_slots(struct session *s)
{
    unsigned want = LB_MIN(lb_ncpus() + 1, (unsigned)SESSION_STORED_THREADS);
    struct backupd_stored *w = s->stored;

    if (w)
        return (int)w->n;
    if (!backupd_session_reserve(s, SESSION_VERIFY_THREAD_BYTES,
                                 "reading chunks for a copy"))
        return -1;
    s->stored = w = lb_xcalloc(1, sizeof *w);
    stored_slot_add(w);
    while (w->n < want &&
           backupd_limits_take(s->o->limits, SESSION_VERIFY_THREAD_BYTES)) {
        s->reserved += SESSION_VERIFY_THREAD_BYTES;
        stored_slot_add(w);
    }
    return (int)w->n;
}

/* Send one checked chunk, or CHUNK_BAD for one that is missing or
 * damaged. -1: the session ends. */
static int
stored_send(struct session *s, struct stored_job *j)
{
    if (j->rc < 0) {
        if (j->err != ENOENT && j->err != EPROTO) {
            lb_fail(j->err, "%s", j->msg);
            return backupd_session_fail(s, 0);
        }
        lb_warn("copy: %s", j->msg);
        proto_enc_chunk_bad(&s->out, &j->d,
                            j->err == ENOENT ? PROTO_CHUNK_MISSING
                                             : PROTO_CHUNK_DAMAGED,
                            j->msg);
        return backupd_session_send(s);
    }
    proto_enc_chunk_head(&s->out, PROTO_T_CHUNK_DATA, &j->c);
    return proto_conn_send_frame(s->conn, &s->out, j->c.data, j->c.data_len);
}

/* Hand chunk i of dg to slot t: checked on its thread, or here when it
 * has none. */
static void
stored_start(struct session *s, struct stored_slot *t, const uint8_t *dg,
             uint32_t i)
{
    t->job = (struct stored_job){.st = s->st, .sc = t->sc};
    memcpy(t->job.d.b, dg + (size_t)i * PROTO_DIGEST_LEN, PROTO_DIGEST_LEN);
    if (!t->running) {
        stored_check(&t->job);
        return;
    }
    pthread_mutex_lock(&t->lock);
    t->queued = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

/* Wait until slot t has checked what it was handed. */
static void
stored_wait(struct stored_slot *t)
{
    pthread_mutex_lock(&t->lock);
    while (t->queued)
        pthread_cond_wait(&t->cond, &t->lock);
    pthread_mutex_unlock(&t->lock);
}

/* The chunks of a GET_STORED after the first ones being checked, looked
 * up and read into the page cache ahead of their checking (a hint, on a
 * thread of its own: on a cold cache, the disk then serves many reads at
 * once, where each checking thread would wait for its own in turn, and
 * no more memory is needed than for the checking threads). */
struct stored_ahead {
    struct store *st;
    const uint8_t *dg;
    uint32_t from, n;
    atomic_bool stop;
    pthread_t th;
    bool running;
};

static void *
stored_ahead_main(void *opaque)
{
    struct stored_ahead *a = opaque;

    for (uint32_t i = a->from; i < a->n && !atomic_load(&a->stop); i++) {
        struct proto_digest d;
        memcpy(d.b, a->dg + (size_t)i * PROTO_DIGEST_LEN, PROTO_DIGEST_LEN);
        store_chunk_prefetch(a->st, &d);
    }
    return NULL;
}

/*
 * GET_STORED (PROTOCOL.md, "Copy"): chunks as GET_CHUNKS sends them, each
 * checked first as verify checks it without a key (a plain chunk
 * re-hashed, a sealed one's bytes against their CRC-32C): a chunk that is
 * missing or damaged is answered CHUNK_BAD, and the session goes on, so
 * that a copy fails only the backups that use it. The chunks are checked
 * nscratch at a time, ahead of the one being sent: chunk i is sent, in
 * order, while the next ones are checked, and its slot then checks chunk
 * i + nscratch (checking is the cost here; sending waits on the client).
 */
int
backupd_req_get_stored(struct session *s, const uint8_t *p, uint32_t len)
{
    struct stored_slot *slot;
    const uint8_t *dg;
    uint32_t n, started = 0;
    int st, ns, r = 0;
    struct stored_ahead ahead;

    if (!(s->features & PROTO_FEATURE_COPY)) {
        lb_error(0, "GET_STORED without the copy feature");
        return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
    }
    st = proto_dec_query(p, len, &dg, &n);
    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "GET_STORED", st);
    if (n > PROTO_MAX_GET_CHUNKS)
        return backupd_session_proto_fail(s, "GET_STORED", PROTO_E_RANGE);
    if (backupd_session_need_store(s, PROTO_OPEN_READ, "GET_STORED") < 0)
        return -1;
    ns = stored_slots(s);
    if (ns <= 0)
        return backupd_session_fail(s, PROTO_ERR_BUSY);
    slot = s->stored->slot;
    ahead = (struct stored_ahead){
        .st = s->st, .dg = dg, .from = (uint32_t)ns, .n = n};
    atomic_init(&ahead.stop, false);
    if (n > (uint32_t)ns)
        ahead.running =
            pthread_create(&ahead.th, NULL, stored_ahead_main, &ahead) == 0;
    for (; started < n && started < (unsigned)ns; started++)
        stored_start(s, &slot[started], dg, started);
    for (uint32_t i = 0; i < n; i++) {
        struct stored_slot *t = &slot[i % (unsigned)ns];
        stored_wait(t);
        if (r == 0 && stored_send(s, &t->job) < 0)
            r = -1;
        /* After a failure, only what was handed is waited for. */
        if (r == 0 && started < n) {
            stored_start(s, t, dg, started);
            started++;
        }
        if (r < 0)
            atomic_store(&ahead.stop, true);
    }
    if (ahead.running)
        pthread_join(ahead.th, NULL);
    return r;
}

/* KEY_GET and KEY_SET exist with the ENCRYPTION feature only, on an
 * encrypted repository. */
static int
need_keys(struct session *s, uint8_t mode, const char *what)
{
    if (!(s->features & PROTO_FEATURE_ENCRYPTION)) {
        lb_error(0, "%s without the encryption feature", what);
        return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
    }
    if (backupd_session_need_store(s, mode, what) < 0)
        return -1;
    if (store_encryption(s->st) == PROTO_ENC_NONE) {
        lb_fail(EINVAL, "repository %s is not encrypted", s->o->repo);
        return backupd_session_fail(s, PROTO_ERR_INVALID);
    }
    return 0;
}

int
backupd_req_key_get(struct session *s, uint32_t len)
{
    struct proto_key_info k = {0};

    if (len != 0)
        return backupd_session_proto_fail(s, "KEY_GET", PROTO_E_TRAILING);
    if (need_keys(s, PROTO_OPEN_READ, "KEY_GET") < 0)
        return -1;
    k.encryption = store_encryption(s->st);
    memcpy(k.key_id, store_key_id(s->st), sizeof k.key_id);
    if (k.encryption == PROTO_ENC_REPOKEY) {
        /* A lost or damaged key file is no reason to end the session:
         * the client says what to do (import an exported copy). */
        uint8_t key[PROTO_KEYFILE_LEN];
        ssize_t n = store_key_get(s->st, key, sizeof key);
        if (n < 0)
            lb_warn("%s", lb_error_msg());
        k.key = n > 0 ? key : NULL;
        k.key_len = n > 0 ? (uint32_t)n : 0;
        proto_enc_key_data(&s->out, &k);
    } else {
        proto_enc_key_data(&s->out, &k);
    }
    return backupd_session_send(s);
}

int
backupd_req_key_set(struct session *s, const uint8_t *p, uint32_t len)
{
    if (need_keys(s, PROTO_OPEN_WRITE, "KEY_SET") < 0)
        return -1;
    if (s->o->append_only) {
        lb_fail(EPERM, "this repository connection is append-only: the "
                       "repository's key cannot be replaced");
        lb_error_hint("change the passphrase on the backup server, or "
                      "through a key without --append-only");
        return backupd_session_fail(s, PROTO_ERR_DENIED);
    }
    if (store_key_set(s->st, p, len) < 0)
        return backupd_session_fail(s, 0);
    lb_info("the key file of %s was replaced", s->o->repo);
    proto_enc_ok(&s->out, 0);
    return backupd_session_send(s);
}

static void
verify_damage(void *opaque, const char *id, const char *name, const char *disk,
              const char *what)
{
    struct session *s = opaque;
    struct proto_kv ev = {0};

    /* Through a restricted key, no word of other sets' backups (nor of
     * one whose set is unknown: its manifest is unreadable). */
    if (*id && backupd_session_restricted(s) &&
        (!*name || !backupd_session_name_allowed(s, name)))
        return;
    /* Texts read from the repository or made of error messages: made
     * valid, never a reason to stop. */
    proto_kv_set(&ev, "event", "damage");
    proto_kv_set_lossy(&ev, "id", id);
    proto_kv_set_lossy(&ev, "name", name);
    proto_kv_set_lossy(&ev, "disk", disk);
    proto_kv_set_lossy(&ev, "what", what);
    proto_enc_kv(&s->out, PROTO_T_VERIFY_EVENT, &ev);
    proto_kv_free(&ev);
    backupd_session_send(s);
}

static void
verify_progress(void *opaque, uint64_t done, uint64_t total)
{
    struct session *s = opaque;
    struct proto_kv ev = {0};
    uint64_t now = lb_now_ns();

    if (now - s->verify_last_ns < 250000000u && done != total)
        return;
    s->verify_last_ns = now;
    proto_kv_set(&ev, "event", "progress");
    proto_kv_set_u64(&ev, "done", done);
    proto_kv_set_u64(&ev, "total", total);
    proto_enc_kv(&s->out, PROTO_T_VERIFY_EVENT, &ev);
    proto_kv_free(&ev);
    backupd_session_send(s);
}

int
backupd_req_verify(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_kv req, stats = {0};
    struct store_verify_cb cb = {s, verify_damage, verify_progress};
    int st = proto_dec_kv(p, len, &req);
    uint64_t need;
    int r;

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "VERIFY", st);
    proto_kv_free(&req);
    if (backupd_session_need_store(s, PROTO_OPEN_READ, "VERIFY") < 0)
        return -1;
    /* store_verify's threads, each with its scratch, while it runs. */
    need = LB_MIN(lb_ncpus(), 8u) * SESSION_VERIFY_THREAD_BYTES;
    if (!backupd_session_reserve(s, need, "a verify"))
        return backupd_session_fail(s, PROTO_ERR_BUSY);
    r = store_verify(s->st, &cb, &stats);
    backupd_session_unreserve(s, need);
    if (r < 0) {
        proto_kv_free(&stats);
        return backupd_session_fail(s, 0);
    }
    proto_kv_set(&stats, "result", r ? "damaged" : "ok");
    proto_enc_kv(&s->out, PROTO_T_VERIFY_END, &stats);
    proto_kv_free(&stats);
    return backupd_session_send(s);
}

int
backupd_req_delete(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_str sid;
    char id[PROTO_ID_LEN + 1];
    int st = proto_dec_str(p, len, &sid);

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "DELETE", st);
    if (backupd_session_need_store(s, PROTO_OPEN_ADMIN, "DELETE") < 0)
        return -1;
    if (!proto_backup_id_valid(sid.p, sid.len)) {
        lb_fail(EINVAL, "invalid backup id");
        return backupd_session_fail(s, PROTO_ERR_INVALID);
    }
    proto_str_copy(id, sizeof id, sid);
    if (backupd_session_check_backup(s, id) < 0)
        return -1;
    if (store_delete(s->st, id) < 0)
        return backupd_session_fail(s, 0);
    lb_info("backup %s deleted", id);
    proto_enc_ok(&s->out, 0);
    return backupd_session_send(s);
}

/* A strictly decimal value of a request key, at most max; def if absent.
 * -1 (error slot set) when malformed. */
static int
req_uint(const struct proto_kv *kv, const char *key, uint64_t max, uint64_t def,
         uint64_t *out)
{
    const char *v = proto_kv_get(kv, key);
    uint64_t x = 0;

    *out = def;
    if (!v)
        return 0;
    if (!*v || strlen(v) > 20)
        return lb_fail(EINVAL, "%s: not a number: '%.40s'", key, v);
    for (const char *c = v; *c; c++) {
        if (*c < '0' || *c > '9' || lb_mul_overflow(x, 10, &x) ||
            lb_add_overflow(x, (uint64_t)(*c - '0'), &x))
            return lb_fail(EINVAL, "%s: not a number: '%.40s'", key, v);
    }
    if (x > max)
        return lb_fail(EINVAL, "%s: %llu is more than %llu", key,
                       (unsigned long long)x, (unsigned long long)max);
    *out = x;
    return 0;
}

struct prune_out {
    struct session *s;
    bool dry_run;
};

static int
send_prune_entry(void *opaque, const struct store_backup *b,
                 const struct store_prune_item *it)
{
    struct prune_out *o = opaque;
    struct proto_kv ev = {0};
    char reasons[256];

    store_prune_reasons(it, reasons, sizeof reasons);
    proto_kv_set(&ev, "id", b->id);
    proto_kv_set(&ev, "name", proto_kv_get(&b->meta, "name"));
    proto_kv_set_u64(&ev, "time", (uint64_t)b->time);
    proto_kv_set(&ev, "action", it->keep ? "keep" : "remove");
    proto_kv_set(&ev, "reasons", reasons);
    proto_enc_kv(&o->s->out, PROTO_T_PRUNE_ENTRY, &ev);
    proto_kv_free(&ev);
    if (!it->keep && !o->dry_run)
        lb_info("backup %s pruned", b->id);
    /* Batched: one write per 64 KiB of entries. */
    if (o->s->out.len > (64u << 10))
        return backupd_session_send(o->s);
    return 0;
}

int
backupd_req_prune(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_kv req;
    struct store_prune_policy pol = {{0}};
    struct prune_out o = {s, false};
    char name[256] = "";
    const char *nm;
    uint64_t v, removed;
    uint8_t need;
    int st = proto_dec_kv(p, len, &req);

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "PRUNE", st);
    for (unsigned r = 0; r < STORE_KEEP_NRULES; r++) {
        char key[32];
        snprintf(key, sizeof key, "keep_%s",
                 store_keep_rule_name((enum store_keep_rule)r));
        if (req_uint(&req, key, 1000000, 0, &v) < 0)
            goto invalid;
        pol.keep[r] = (unsigned)v;
    }
    if (req_uint(&req, "dry_run", 1, 0, &v) < 0)
        goto invalid;
    o.dry_run = v == 1;
    nm = proto_kv_get(&req, "name");
    if (nm && *nm) {
        if (!proto_name_valid(nm, strlen(nm)) || strlen(nm) >= sizeof name) {
            lb_fail(EINVAL, "invalid name in PRUNE");
            goto invalid;
        }
        snprintf(name, sizeof name, "%s", nm);
    }
    proto_kv_free(&req);
    if (backupd_session_restricted(s) &&
        (!name[0] || !backupd_session_name_allowed(s, name))) {
        if (!name[0]) {
            lb_fail(EPERM, "this repository connection may prune only the "
                           "sets it may use: name one");
            return backupd_session_fail(s, PROTO_ERR_DENIED);
        }
        return backupd_session_deny_name(s, name);
    }
    if (!store_prune_policy_any(&pol)) {
        lb_fail(EINVAL, "prune needs at least one keep rule above 0");
        return backupd_session_fail(s, PROTO_ERR_INVALID);
    }
    if (s->o->append_only)
        return backupd_session_refuse(s);
    /* A dry run changes nothing: any opener may ask for it. */
    need = o.dry_run ? PROTO_OPEN_READ : PROTO_OPEN_ADMIN;
    if (backupd_session_need_store(s, need, "PRUNE") < 0)
        return -1;
    if (s->txn) {
        lb_error(0, "PRUNE during a backup in the same session");
        return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
    }
    if (store_prune(s->st, name[0] ? name : NULL, &pol, o.dry_run,
                    send_prune_entry, &o, &removed) < 0) {
        /* The entries of what was done go out before the error. */
        if (proto_conn_broken(s->conn) ||
            (s->out.len && backupd_session_send(s) < 0))
            return -1;
        return backupd_session_fail(s, 0);
    }
    proto_enc_ok(&s->out, removed);
    return backupd_session_send(s);
invalid:
    proto_kv_free(&req);
    return backupd_session_fail(s, PROTO_ERR_INVALID);
}

int
backupd_req_gc(struct session *s, const uint8_t *p, uint32_t len)
{
    struct proto_kv req, out = {0};
    struct store_gc_opts go = {0};
    struct store_gc_stats gs;
    uint64_t v;
    int st = proto_dec_kv(p, len, &req);

    if (st != PROTO_OK)
        return backupd_session_proto_fail(s, "GC", st);
    st = req_uint(&req, "dry_run", 1, 0, &v);
    proto_kv_free(&req);
    if (st < 0)
        return backupd_session_fail(s, PROTO_ERR_INVALID);
    go.dry_run = v == 1;
    if (s->o->append_only)
        return backupd_session_refuse(s);
    if (backupd_session_need_store(s, PROTO_OPEN_WRITE, "GC") < 0)
        return -1;
    if (s->txn) {
        lb_error(0, "GC during a backup in the same session");
        return backupd_session_fail(s, PROTO_ERR_PROTOCOL);
    }
    if (store_gc(s->st, &go, &gs) < 0)
        return backupd_session_fail(s, 0);
    lb_info("gc%s: %llu chunks (%llu bytes) reclaimed, %llu referenced, "
            "%llu too recent, %llu put back",
            go.dry_run ? " (dry run)" : "", (unsigned long long)gs.reclaimed,
            (unsigned long long)gs.bytes_reclaimed,
            (unsigned long long)gs.referenced, (unsigned long long)gs.recent,
            (unsigned long long)gs.restored);
    proto_kv_set_u64(&out, "dry_run", go.dry_run);
    proto_kv_set_u64(&out, "backups", gs.backups);
    proto_kv_set_u64(&out, "chunks", gs.chunks);
    proto_kv_set_u64(&out, "chunks_referenced", gs.referenced);
    proto_kv_set_u64(&out, "chunks_recent", gs.recent);
    proto_kv_set_u64(&out, "chunks_restored", gs.restored);
    proto_kv_set_u64(&out, "chunks_reclaimed", gs.reclaimed);
    proto_kv_set_u64(&out, "bytes_reclaimed", gs.bytes_reclaimed);
    proto_kv_set_u64(&out, "sessions", gs.sessions);
    proto_kv_set_u64(&out, "cutoff", (uint64_t)gs.cutoff);
    proto_enc_kv(&s->out, PROTO_T_GC_END, &out);
    proto_kv_free(&out);
    return backupd_session_send(s);
}
