/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A backup into an encrypted repository, besides its chunks (see
 * seal.h): sealed metadata, and the manifest's MAC computed from what the
 * client knows to be true: its own window records, merged window by
 * window with the stacks of the parent's manifest (downloaded and
 * authenticated first), exactly as the server merges them (store/txn.c).
 * The MAC then also covers the final metadata the server shows before it
 * commits, once every key the client sent is found there unchanged.
 */
#include "agent/client/seal.h"

#include <errno.h>
#include <string.h>

/* What list, prune and gc show or need stays readable (FORMAT.md,
 * "Sealed metadata"); every other key a client sets is sealed, so a new
 * key is sealed unless it is added here. */
static const char *const clear_keys[] = {
    "kind",          "consistency",       "freeze_ms",
    "domain_xml",    "agent_bytes_read",  "agent_seconds_x1000",
    "bytes_read",    "bytes_changed",     "windows_full",
    "windows_delta", "windows_compacted",
};

bool
agent_meta_clear(const char *key)
{
    for (size_t i = 0; i < LB_ARRAY_SIZE(clear_keys); i++)
        if (strcmp(key, clear_keys[i]) == 0)
            return true;
    return false;
}

struct agent_seal {
    struct agent_repo *r;
    char id[PROTO_ID_LEN + 1], parent[PROTO_ID_LEN + 1];
    char *name;
    struct proto_mf_mac *mac;
    int pfd; /* the parent's manifest, or -1 */
    /* the disk being sent */
    struct proto_mf_reader *prd; /* its parent's windows (incremental) */
    uint64_t next, nwindows;
    /* what was sent, which the final metadata must hold */
    struct proto_kv sent;
    struct proto_kv sent_disk[PROTO_MF_MAX_DISKS];
    char disks[PROTO_MF_MAX_DISKS][65];
    size_t ndisks;
};

struct agent_seal *
agent_seal_start(struct agent_repo *r, const char *id, const char *name,
                 const char *parent)
{
    struct agent_seal *s = lb_xcalloc(1, sizeof *s);
    struct agent_restore_disk *d = NULL;
    size_t n = 0;

    s->r = r;
    s->pfd = -1;
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->parent, sizeof s->parent, "%s", parent);
    s->name = lb_xstrdup(name);
    s->mac = proto_mf_mac_new();
    if (!s->mac)
        goto fail;
    if (parent[0]) {
        /* The stacks this backup inherits, from a manifest the key
         * authenticates (not from what the server says they are). */
        s->pfd = agent_repo_get_manifest(r, parent);
        if (s->pfd < 0 ||
            agent_manifest_read(r, s->pfd, parent, &d, &n, NULL) < 0) {
            lb_error_prefix("parent backup %s", parent);
            goto fail;
        }
        free(d);
    }
    return s;
fail:
    agent_seal_free(s);
    return NULL;
}

void
agent_seal_free(struct agent_seal *s)
{
    if (!s)
        return;
    proto_mf_reader_free(s->prd);
    if (s->pfd >= 0)
        close(s->pfd);
    proto_mf_mac_free(s->mac);
    proto_kv_free(&s->sent);
    for (size_t i = 0; i < PROTO_MF_MAX_DISKS; i++)
        proto_kv_free(&s->sent_disk[i]);
    free(s->name);
    free(s);
}

void
agent_seal_split(const struct proto_kv *in, struct proto_kv *out,
                 struct proto_kv *held)
{
    for (size_t i = 0; i < in->n; i++)
        proto_kv_set(agent_meta_clear(in->e[i].key) ? out : held, in->e[i].key,
                     in->e[i].val);
}

/* The kv that remembers what was sent for disk ("": the backup's). */
static struct proto_kv *
sent_for(struct agent_seal *s, const char *disk)
{
    if (!disk[0])
        return &s->sent;
    for (size_t i = 0; i < s->ndisks; i++)
        if (strcmp(s->disks[i], disk) == 0)
            return &s->sent_disk[i];
    return NULL;
}

void
agent_seal_sent(struct agent_seal *s, const char *disk,
                const struct proto_kv *kv)
{
    struct proto_kv *to = sent_for(s, disk);

    for (size_t i = 0; to && i < kv->n; i++)
        proto_kv_set(to, kv->e[i].key, kv->e[i].val);
}

int
agent_seal_meta(struct agent_seal *s, const char *disk,
                const struct proto_kv *in, struct proto_kv *out)
{
    if (proto_meta_seal(&s->r->keys->meta, s->id, disk, in, agent_meta_clear,
                        out) < 0)
        return -1;
    agent_seal_sent(s, disk, out);
    return 0;
}

int
agent_seal_disk_begin(struct agent_seal *s, const char *disk, uint64_t size,
                      uint32_t window_size, uint64_t nwindows, bool incremental)
{
    struct proto_mf_disk d = {
        .size = size, .window_size = window_size, .nwindows = nwindows};

    if (s->ndisks == PROTO_MF_MAX_DISKS)
        return lb_fail(EINVAL, "too many disks in one backup");
    snprintf(d.name, sizeof d.name, "%s", disk);
    snprintf(s->disks[s->ndisks++], sizeof s->disks[0], "%s", disk);
    if (incremental) {
        struct proto_mf_disk pd;
        s->prd =
            s->pfd >= 0 ? agent_manifest_seek_disk(&s->pfd, disk, &pd) : NULL;
        if (!s->prd) {
            lb_error_prefix("parent backup %s", s->parent);
            return -1;
        }
        if (pd.size != size || pd.window_size != window_size)
            return lb_fail(EINVAL,
                           "disk %s: its size differs from the parent's: an "
                           "incremental is not possible",
                           disk);
    }
    s->next = 0;
    s->nwindows = nwindows;
    return proto_mf_mac_disk_begin(s->mac, &d);
}

/* Windows [next, upto) as the server writes them unsent: the parent's
 * stack (incremental) or empty. */
static int
fill(struct agent_seal *s, uint64_t upto)
{
    struct proto_mf_window w = {0};

    for (; s->next < upto; s->next++)
        if ((s->prd && proto_mf_next_window(s->prd, &w) < 0) ||
            proto_mf_mac_window(s->mac, &w) < 0)
            return -1;
    return 0;
}

int
agent_seal_record(void *opaque, const struct proto_window_rec *rec)
{
    struct agent_seal *s = opaque;
    struct proto_mf_window w = {0};

    if (rec->index < s->next || rec->index >= s->nwindows)
        return lb_error(0, "window %llu out of order",
                        (unsigned long long)rec->index);
    if (fill(s, rec->index) < 0 ||
        (s->prd && proto_mf_next_window(s->prd, &w) < 0))
        return -1;
    if (rec->op == PROTO_WIN_SET)
        w.depth = 0;
    if ((size_t)w.depth + rec->n > PROTO_MAX_STACK)
        return lb_error(0, "window %llu: stack deeper than %d",
                        (unsigned long long)rec->index, PROTO_MAX_STACK);
    for (uint8_t i = 0; i < rec->n; i++)
        w.refs[w.depth++] = rec->refs[i];
    s->next = rec->index + 1;
    return proto_mf_mac_window(s->mac, &w);
}

int
agent_seal_disk_end(struct agent_seal *s)
{
    int r = fill(s, s->nwindows);

    proto_mf_reader_free(s->prd);
    s->prd = NULL;
    return r < 0 ? -1 : proto_mf_mac_disk_end(s->mac);
}

/* A COMMIT_META frame into *kv: it must hold every key of want. */
static int
final_meta(struct agent_seal *s, const char *what, const struct proto_kv *want,
           struct proto_kv *kv)
{
    struct agent_repo *r = s->r;
    const uint8_t *p;
    uint32_t len;

    if (proto_conn_expect(r->conn, PROTO_T_COMMIT_META, &p, &len, NULL) < 0)
        return -1;
    if (proto_dec_kv(p, len, kv) != PROTO_OK)
        return lb_error(0, "protocol error: malformed COMMIT_META");
    for (size_t i = 0; i < want->n; i++) {
        const char *v = proto_kv_get(kv, want->e[i].key);
        if (!v || strcmp(v, want->e[i].val) != 0)
            return lb_fail(EPROTO,
                           "backupd changed the metadata %s of %s: the "
                           "backup is not sealed",
                           want->e[i].key, what);
    }
    return 0;
}

int
agent_seal_commit(struct agent_seal *s)
{
    struct proto_kv kv = {0}, want = {0};
    uint8_t mac[PROTO_MAC_LEN];
    int r = -1;

    for (size_t i = 0; i < s->ndisks; i++) {
        if (final_meta(s, s->disks[i], &s->sent_disk[i], &kv) < 0 ||
            proto_mf_mac_disk_meta(s->mac, i, &kv) < 0)
            goto out;
        proto_kv_free(&kv);
    }
    /* The server names the backup; it must be the one it started. */
    for (size_t i = 0; i < s->sent.n; i++)
        proto_kv_set(&want, s->sent.e[i].key, s->sent.e[i].val);
    proto_kv_set(&want, "id", s->id);
    proto_kv_set(&want, "name", s->name);
    proto_kv_set(&want, "parent", s->parent);
    if (final_meta(s, "the backup", &want, &kv) < 0 ||
        proto_mf_mac_finish(s->mac, s->r->keys->k.mac, &kv, mac) < 0)
        goto out;
    proto_enc_seal(&s->r->out, mac);
    r = proto_conn_send_buf(s->r->conn, &s->r->out);
out:
    proto_kv_free(&kv);
    proto_kv_free(&want);
    return r;
}
