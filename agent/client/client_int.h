/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internals shared by the client's files: the session's state and the
 * helpers every request is built on. Nothing outside agent/client
 * includes this.
 */
#ifndef LB_AGENT_CLIENT_INT_H
#define LB_AGENT_CLIENT_INT_H

#include "agent/client/client.h"

#include "proto/crypt.h"
#include <pthread.h>

/* The keys of an unlocked encrypted repository: derived from its master
 * key, and the sessions that seal this process's chunks and metadata. */
struct agent_keys {
    uint8_t encryption; /* PROTO_ENC_REPOKEY or _KEYFILE */
    struct proto_keys k;
    struct proto_sealer data, meta;
};

struct agent_repo {
    char *url;
    char *path; /* repository path (local or on the remote host) */
    char *host; /* ssh host, NULL for local */
    struct proto_conn *conn;
    pid_t child; /* backupd or ssh */
    /* ssh's stderr on a terminal: relayed by a thread, its control
     * characters written out (the remote end's words reach the user's
     * terminal, not its escape sequences) */
    int err_fd;
    bool err_relay;
    pthread_t err_thread;
    uint32_t window_size;
    bool append_only;
    bool encrypted;              /* REPO_INFO said so */
    uint64_t features;           /* acknowledged in HELLO_REPLY */
    struct agent_keys *keys;     /* after agent_repo_unlock (encrypted only) */
    struct agent_unlock *unlock; /* its KDF running (unlock_start) */
    char repo_id[128];
    bool established; /* HELLO went through: a later failure is a cut */
    bool writing;     /* a backup or an import began on this session */
    /* the stall limit (agent_opts.io_watch): nothing moved either way
     * for watch_s seconds (0: no limit) while the session waits on its
     * server ends it */
    unsigned watch_s;
    struct lb_buf out; /* the request being sent */
};

/* After a failure: collect an ERROR frame the server may have sent, and
 * the child's exit status, to explain a broken connection. */
void agent_repo_explain(struct agent_repo *r);
/* After agent_repo_explain: true if the session ended without the server
 * saying why (cut, its server gone or stalled), so that another session
 * may do better; false if the server sent an ERROR. */
bool agent_repo_cut(const struct agent_repo *r);

/* Send the request encoded in r->out and wait for a reply of `type` (its
 * payload in *p, *len; *code, if not NULL, the code of an ERROR instead).
 * On failure the error slot explains it (agent_repo_explain). */
int agent_repo_call(struct agent_repo *r, uint16_t type, const uint8_t **p,
                    uint32_t *len, uint32_t *code);

/* One frame of a reply stream (agent_repo_stream): 0 to go on, -1 (error
 * slot set) to stop. */
typedef int (*agent_frame_fn)(void *opaque, const uint8_t *p, uint32_t len);

/*
 * Send the request encoded in r->out and receive its reply stream: frames
 * of type `entry`, each passed to fn, until one of type `end` (its payload
 * in *endp, *endlen, valid until the next receive). An ERROR frame, any
 * other frame or a broken connection ends it with the error slot set. The
 * one receive loop of every streamed reply.
 */
int agent_repo_stream(struct agent_repo *r, uint16_t entry, uint16_t end,
                      agent_frame_fn fn, void *opaque, const uint8_t **endp,
                      uint32_t *endlen);

/* Download a backup's manifest into an anonymous temp file; returns its
 * fd positioned at 0, or -1. */
int agent_repo_get_manifest(struct agent_repo *r, const char *id);

/* After the DISK_READY of an incremental disk: read the parent's stack
 * depths (DEPTHS frames covering nwin windows, in order) into out, or
 * drop them (out NULL). */
int agent_repo_read_depths(struct agent_repo *r, uint64_t nwin, uint8_t *out);

/* ---- manifests (manifest.c) ---------------------------------------------- */

/*
 * Check a downloaded manifest whole (its trailer; in an encrypted
 * repository its MAC under r's keys, which must be unlocked) and read the
 * disks it holds and its metadata, sealed metadata opened; the metadata's
 * id must be id. *meta may be NULL.
 */
int agent_manifest_read(const struct agent_repo *r, int mfd, const char *id,
                        struct agent_restore_disk **out, size_t *n,
                        struct proto_kv *meta);

/* A reader on the manifest in *mfd positioned at the windows of disk (*d
 * filled); NULL (error set: ENOENT if it has no such disk). */
struct proto_mf_reader *agent_manifest_seek_disk(int *mfd, const char *disk,
                                                 struct proto_mf_disk *d);

/* The read callback of a proto_mf_reader over a manifest's fd (opaque:
 * the int *). */
ssize_t agent_manifest_fd_read(void *opaque, void *buf, size_t len);

/* ---- keys (keys.c, seal.c) ------------------------------------------------- */

/* Free the keys (wiped). */
void agent_keys_free(struct agent_keys *k);

/* Wait for a KDF thread still running (a command that failed before it
 * needed the key) and drop its result; the error slot is kept. */
void agent_repo_unlock_drop(struct agent_repo *r);

/* The metadata keys a backup keeps readable in an encrypted repository
 * (FORMAT.md, "Sealed metadata"): what list, prune and gc show or need. */
bool agent_meta_clear(const char *key);

#endif /* LB_AGENT_CLIENT_INT_H */
