/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What livebk.c (the tracking overlays: create, check, commit, recover,
 * untrack) lends backup.c (one backup's phases). Nothing outside
 * agent/live includes this.
 */
#ifndef LB_AGENT_LIVEBK_INT_H
#define LB_AGENT_LIVEBK_INT_H

#include "agent/live/live.h"

/* A fresh overlay path for disk target of domain dom, next to its top
 * image or in --overlay-dir. Caller frees. */
char *livebk_overlay_path(const struct livebk_opts *o, const char *dom,
                          const char *target, const char *top);
/* Fail, saying why, if that path would be under /dev: in memory, lost at
 * reboot with the guest's writes since the last backup. */
int livebk_overlay_dir_check(const struct livebk_opts *o, const char *target,
                             const char *top);
/* Virtual size, format and backing file of an image (also one a running
 * QEMU holds); fmt and backing may be NULL, else the caller frees them. */
int livebk_image_info(const char *path, uint64_t *size, char **fmt,
                      char **backing);
/* A tracking overlay (qcow2, 128k clusters, extended L2) over backing. */
int livebk_create_overlay(const char *path, const char *backing,
                          const char *fmt, uint64_t size);
/* Does the disk still run on our overlays exactly? Fills why (for the
 * message) when not. */
bool livebk_chain_intact(const struct agent_vdisk *vd,
                         const struct track_disk *td, bool live, char *why,
                         size_t whylen);
/* Commit every disk's acknowledged overlays into its user_top: the number
 * of disks that failed (left for the next run), or -1. */
int livebk_commit_acked(struct livebk *b);
/* A running domain: start the block commits of the acknowledged overlays
 * and return (step committing); the next run's recovery waits for them and
 * deletes the overlays. At rest: livebk_commit_acked. Returns the number
 * of disks whose commit could not be started. */
int livebk_commit_start(struct livebk *b);

#endif /* LB_AGENT_LIVEBK_INT_H */
