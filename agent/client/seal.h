/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One backup into an encrypted repository, beside the upload (seal.c):
 * the metadata that tells about the guest sealed before it is sent, and
 * the MAC of the manifest the server will write, computed as the server
 * builds it (the parent's window stacks, read from its manifest, which
 * the MAC of the parent authenticates, with this backup's window records
 * merged in step), then sent at commit (PROTOCOL.md, "Backup flow").
 */
#ifndef LB_AGENT_SEAL_H
#define LB_AGENT_SEAL_H

#include "agent/client/client_int.h"

struct agent_seal;

/* For backup id (BACKUP_STARTED) of set name on r (unlocked), on parent
 * ("" for none): the parent's manifest is downloaded and checked now. */
struct agent_seal *agent_seal_start(struct agent_repo *r, const char *id,
                                    const char *name, const char *parent);
void agent_seal_free(struct agent_seal *s);

/* Split metadata about to be sent: out gets the keys readable without
 * the key (agent_meta_clear), held gets the others, to be sealed later
 * (the server merges what a backup's or a disk's requests carry: the
 * sealed keys go in one value, in the last of them). */
void agent_seal_split(const struct proto_kv *in, struct proto_kv *out,
                      struct proto_kv *held);
/* out = in's clear keys + "sealed" (in's others), for disk ("" for the
 * backup's own metadata). Also remembered as what was sent. */
int agent_seal_meta(struct agent_seal *s, const char *disk,
                    const struct proto_kv *in, struct proto_kv *out);
/* Remember metadata sent for disk ("" for the backup) as is: the server
 * must keep it. */
void agent_seal_sent(struct agent_seal *s, const char *disk,
                     const struct proto_kv *kv);

/* A disk of nwindows windows: full (unsent windows empty) or incremental
 * (unsent windows keep the parent's stacks). */
int agent_seal_disk_begin(struct agent_seal *s, const char *disk, uint64_t size,
                          uint32_t window_size, uint64_t nwindows,
                          bool incremental);
/* A window record, in index order (the upload engine's sender). */
int agent_seal_record(void *s, const struct proto_window_rec *rec);
int agent_seal_disk_end(struct agent_seal *s);

/* After COMMIT was sent: read the final metadata (COMMIT_META), check
 * that it holds everything sent, and send the MAC (SEAL). */
int agent_seal_commit(struct agent_seal *s);

#endif
