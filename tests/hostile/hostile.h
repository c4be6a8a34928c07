/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lbhostile's parts (lbhostile.c: the connection and the pieces of a
 * backup; cases.c, recommit.c: what it tries).
 */
#ifndef LB_TESTS_HOSTILE_H
#define LB_TESTS_HOSTILE_H

#include "proto/proto.h"

struct h {
    const char *name; /* the case */
    struct proto_conn *c;
    struct lb_buf out;
    pid_t child;
    uint32_t window_size;
    /* the last ERROR received */
    uint32_t code;
    char msg[1024];
};

/* Print "CASE: ..." on stdout. */
void say(struct h *h, const char *fmt, ...) LB_PRINTF(2, 3);
/* Send what h->out holds; 0 or -1. */
int h_send(struct h *h);
/* Receive a frame of type: 0 (payload in *p, *len; both may be NULL), 1
 * for an ERROR (h->code, h->msg), -1 when the connection failed. */
int h_expect(struct h *h, uint16_t type, const uint8_t **p, uint32_t *len);
/* Say how it ended and judge it: 0 if got is an ERROR of code want (or,
 * want 0, anything but an ERROR), else 1. */
int outcome(struct h *h, int got, uint32_t want);
/* HELLO, then OPEN(mode): 0, 1 or -1 as h_expect. */
int hello_open(struct h *h, uint8_t mode);

struct chunk {
    struct proto_chunk c;
    uint8_t *plain; /* owned by the caller */
};
void chunk_make(struct chunk *k, uint8_t type, uint8_t *plain, size_t len);
/* plain of len random bytes (caller frees k->plain). */
void chunk_random(struct chunk *k, uint8_t type, size_t len);
/* A DELTA of one data run for a window of wl bytes (caller frees). */
void chunk_delta(struct chunk *k, uint32_t wl);
void send_chunk(struct h *h, const struct chunk *k);
/* A WINDOWS frame of one SET record of one ref. */
void send_window(struct h *h, uint64_t index, uint8_t type,
                 const struct proto_digest *d);
void many_keys(struct proto_kv *kv, const char *prefix, unsigned n);
/* BACKUP_BEGIN, DISK_BEGIN (full), DISK_END + COMMIT: 0, 1 or -1. */
int begin(struct h *h, const char *name, const struct proto_kv *meta);
int disk(struct h *h, const char *name, uint64_t size);
int finish(struct h *h, bool end_disk, const struct proto_kv *meta);
/* A full backup of set name, disk vda of one window holding k. */
int one_window_backup(struct h *h, const char *name, const struct chunk *k,
                      uint8_t type, const struct proto_kv *bmeta,
                      const struct proto_kv *cmeta);

/* The cases: argv after the case's name, n of them. */
int run_case(struct h *h, char **a, int n);
int recommit(struct h *h, const char *id, const char *name,
             const char *xml_file);
/* lbhostile liar -- COMMAND...: argv is COMMAND...; its exit status. */
int liar(char **argv);

#endif
