/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The parent of a disk image's incremental (backup-image --since): the
 * backup this host made of that set, recorded here after each one the
 * repository acknowledged, never the set's newest backup in the
 * repository, which any key that may write there can add to. The VM path
 * keeps the same record in its journal (agent/live/track.c).
 *
 * One file per repository and set: STATE/images/REPO_ID/SHA256(NAME),
 * holding the backup id and the name; written by rename.
 */
#include "agent/client/client.h"

#include <errno.h>
#include <string.h>

const char *
agent_state_dir(void)
{
    const char *e = getenv("LIVEBACKUP_STATE_DIR");

    return e && *e ? e : "/var/lib/livebackup";
}

/* STATE/images/REPO_ID (dir) and the file name for name. */
static int
record_path(const char *repo_id, const char *name, char **dir, char file[65])
{
    struct proto_digest d;

    if (!*repo_id || strchr(repo_id, '/') || strcmp(repo_id, "..") == 0 ||
        strcmp(repo_id, ".") == 0)
        return lb_fail(EPROTO, "the repository's id '%s' cannot name a file",
                       repo_id);
    if (proto_chunk_digest(PROTO_CHUNK_BLOB, name, strlen(name), &d) < 0)
        return -1;
    proto_digest_hex(&d, file);
    *dir = lb_xasprintf("%s/images/%s", agent_state_dir(), repo_id);
    return 0;
}

int
agent_image_parent_get(const char *repo_id, const char *name,
                       char id[PROTO_ID_LEN + 1])
{
    CLEANUP_FREE char *dir = NULL;
    CLEANUP_FREE char *path = NULL;
    CLEANUP_FREE char *text = NULL;
    char file[65];
    size_t len;

    id[0] = '\0';
    if (record_path(repo_id, name, &dir, file) < 0)
        return -1;
    path = lb_xasprintf("%s/%s", dir, file);
    text = lb_read_file(path, 4096, &len);
    if (!text) {
        if (errno != ENOENT)
            return -1;
        lb_error_clear();
        return 1;
    }
    /* "ID\nNAME\n": a hash collision, or a file edited by hand, is not a
     * record of this set. */
    if (len < PROTO_ID_LEN + 1 || text[PROTO_ID_LEN] != '\n' ||
        !proto_backup_id_valid(text, PROTO_ID_LEN) ||
        strncmp(text + PROTO_ID_LEN + 1, name, strlen(name)) != 0 ||
        text[PROTO_ID_LEN + 1 + strlen(name)] != '\n')
        return lb_fail(EPROTO, "%s does not record a backup of %s", path, name);
    memcpy(id, text, PROTO_ID_LEN);
    id[PROTO_ID_LEN] = '\0';
    return 0;
}

int
agent_image_parent_set(const char *repo_id, const char *name, const char *id)
{
    CLEANUP_FREE char *dir = NULL;
    CLEANUP_FREE char *text = NULL;
    char file[65];

    if (record_path(repo_id, name, &dir, file) < 0 || lb_mkdir_p(dir, 0700) < 0)
        return -1;
    text = lb_xasprintf("%s\n%s\n", id, name);
    return lb_write_file_atomic(dir, file, text, strlen(text), 0600);
}
