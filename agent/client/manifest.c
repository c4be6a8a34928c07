/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A backup's manifest as the client reads it (store/FORMAT.md,
 * "Manifests"): downloaded into a temp file, read whole and checked (its
 * trailer; in an encrypted repository its MAC, before anything in it is
 * used, then its sealed metadata opened), and read again, disk by disk,
 * by whoever needs its windows (restore, verify --key, the MAC of an
 * incremental's parent).
 */
#include "agent/client/client_int.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <string.h>

ssize_t
agent_manifest_fd_read(void *opaque, void *buf, size_t len)
{
    ssize_t r = lb_read_full(*(int *)opaque, buf, len);

    if (r < 0)
        return lb_error(errno, "read manifest");
    return r;
}

struct proto_mf_reader *
agent_manifest_seek_disk(int *mfd, const char *disk, struct proto_mf_disk *d)
{
    struct proto_mf_reader *r;
    struct proto_mf_hdr h;
    int got;

    if (lseek(*mfd, 0, SEEK_SET) < 0) {
        lb_error(errno, "seek manifest");
        return NULL;
    }
    r = proto_mf_reader_new(agent_manifest_fd_read, mfd);
    if (!r || proto_mf_read_header(r, &h) < 0)
        goto fail;
    while ((got = proto_mf_next_disk(r, d)) == 1) {
        if (strcmp(d->name, disk) == 0)
            return r;
        if (proto_mf_skip_disk(r) < 0)
            goto fail;
    }
    if (got == 0)
        lb_fail(ENOENT, "the backup has no disk %s", disk);
fail:
    proto_mf_reader_free(r);
    return NULL;
}

/* An encrypted repository's manifest: its MAC (FORMAT.md, "Manifest
 * MAC") must be the one the key gives, before anything sealed in it is
 * opened. */
static int
check_mac(const struct agent_repo *r, struct proto_mf_mac *mac,
          const struct proto_kv *meta, const char *id)
{
    const char *hex = proto_kv_get(meta, PROTO_META_MAC);
    uint8_t want[PROTO_MAC_LEN], got[PROTO_MAC_LEN];

    if (!hex || lb_hex_decode(want, sizeof want, hex) < 0)
        return lb_fail(EPROTO,
                       "backup %s: its manifest has no MAC (every manifest "
                       "of an encrypted repository has one)",
                       id);
    if (proto_mf_mac_finish(mac, r->keys->k.mac, meta, got) < 0)
        return -1;
    if (CRYPTO_memcmp(want, got, sizeof got) != 0)
        return lb_fail(EPROTO,
                       "backup %s: its manifest does not authenticate with "
                       "the repository's key (changed in the repository, or "
                       "not made with this key)",
                       id);
    return 0;
}

/* One disk of a manifest being read: its windows (counted, and fed to the
 * MAC) and its metadata, kept in *dm. */
static int
read_disk(struct proto_mf_reader *rd, struct proto_mf_mac *mac,
          const struct proto_mf_disk *d, struct agent_restore_disk *x,
          struct proto_kv *dm)
{
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", d->name);
    x->size = d->size;
    if (mac && proto_mf_mac_disk_begin(mac, d) < 0)
        return -1;
    for (uint64_t i = 0; i < d->nwindows; i++) {
        struct proto_mf_window w;
        if (proto_mf_next_window(rd, &w) < 0 ||
            (mac && proto_mf_mac_window(mac, &w) < 0))
            return -1;
        x->nonempty_windows += w.depth != 0;
    }
    if (proto_mf_read_disk_end(rd, dm) < 0)
        return -1;
    if (mac &&
        (proto_mf_mac_disk_end(mac) < 0 ||
         proto_mf_mac_disk_meta(mac, proto_mf_mac_ndisks(mac) - 1, dm) < 0))
        return -1;
    return 0;
}

/* What the caller sees of a disk: its metadata, sealed keys opened. */
static int
disk_info(const struct agent_repo *r, const char *id, struct proto_kv *dm,
          struct agent_restore_disk *x)
{
    const char *v;

    if (r->keys && proto_meta_unseal(r->keys->k.meta, id, x->name, dm) < 0) {
        lb_error_prefix("backup %s, disk %s", id, x->name);
        return -1;
    }
    v = proto_kv_get(dm, "mode");
    snprintf(x->mode, sizeof x->mode, "%s", v ? v : "");
    v = proto_kv_get(dm, "full_reason");
    snprintf(x->full_reason, sizeof x->full_reason, "%s", v ? v : "");
    return 0;
}

int
agent_manifest_read(const struct agent_repo *r, int mfd, const char *id,
                    struct agent_restore_disk **out, size_t *n,
                    struct proto_kv *meta)
{
    struct proto_mf_reader *rd = NULL;
    struct proto_mf_mac *mac = NULL;
    struct proto_mf_hdr h;
    struct proto_mf_disk d;
    struct proto_kv m = {0}, dms[PROTO_MF_MAX_DISKS];
    const char *mid;
    int got, ret = -1;

    memset(dms, 0, sizeof dms);
    *out = NULL;
    *n = 0;
    if (r->encrypted && !r->keys)
        return lb_fail(EINVAL, "internal error: manifest read before the "
                               "repository's key was loaded");
    if (lseek(mfd, 0, SEEK_SET) < 0)
        return lb_error(errno, "seek manifest");
    if (r->keys && !(mac = proto_mf_mac_new()))
        return -1;
    rd = proto_mf_reader_new(agent_manifest_fd_read, &mfd);
    if (!rd || proto_mf_read_header(rd, &h) < 0)
        goto bad;
    while ((got = proto_mf_next_disk(rd, &d)) == 1) {
        *out = lb_xrealloc(*out, (*n + 1) * sizeof **out);
        if (read_disk(rd, mac, &d, &(*out)[*n], &dms[*n]) < 0) {
            (*n)++;
            goto bad;
        }
        (*n)++;
    }
    if (got < 0 || proto_mf_read_meta(rd, &m) < 0 || proto_mf_finish(rd) < 0)
        goto bad;
    mid = proto_kv_get(&m, "id");
    if (id && (!mid || strcmp(mid, id) != 0)) {
        lb_fail(EPROTO, "the manifest of backup %s is backup %s's", id,
                mid ? mid : "?");
        goto out;
    }
    if (mac && check_mac(r, mac, &m, id ? id : "?") < 0)
        goto out;
    for (size_t i = 0; i < *n; i++)
        if (disk_info(r, id ? id : "?", &dms[i], &(*out)[i]) < 0)
            goto out;
    if (r->keys &&
        proto_meta_unseal(r->keys->k.meta, id ? id : "?", "", &m) < 0) {
        lb_error_prefix("backup %s", id ? id : "?");
        goto out;
    }
    if (meta) {
        *meta = m;
        memset(&m, 0, sizeof m);
    }
    ret = 0;
    goto out;
bad:
    lb_error_prefix("manifest");
out:
    for (size_t i = 0; i < PROTO_MF_MAX_DISKS; i++)
        proto_kv_free(&dms[i]);
    proto_kv_free(&m);
    proto_mf_reader_free(rd);
    proto_mf_mac_free(mac);
    if (ret < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return ret;
}
