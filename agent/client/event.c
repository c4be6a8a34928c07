/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * --json events: one json-c object per line on stdout, each field typed by
 * its name from the schema below. docs/json.md documents the same table;
 * a field that is not in it is a string.
 */
#include "agent/client/event.h"
#include "proto/crypt.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *key;
    enum agent_ev_type type;
} schema[] = {
    /* counts and bytes */
    {"age_seconds", AGENT_EV_INT},
    {"agent_bytes_read", AGENT_EV_INT},
    {"agent_bytes_received", AGENT_EV_INT},
    {"agent_bytes_sent", AGENT_EV_INT},
    {"agent_seconds_x1000", AGENT_EV_INT},
    {"backups", AGENT_EV_INT},
    {"backups_damaged", AGENT_EV_INT},
    {"backups_skipped", AGENT_EV_INT},
    {"bytes", AGENT_EV_INT},
    {"bytes_changed", AGENT_EV_INT},
    {"bytes_new", AGENT_EV_INT},
    {"bytes_per_second", AGENT_EV_INT},
    {"bytes_read", AGENT_EV_INT},
    {"bytes_received", AGENT_EV_INT},
    {"bytes_reclaimed", AGENT_EV_INT},
    {"bytes_sent", AGENT_EV_INT},
    {"chunk_refs_missing", AGENT_EV_INT},
    {"chunks", AGENT_EV_INT},
    {"chunks_asked", AGENT_EV_INT},
    {"chunks_damaged", AGENT_EV_INT},
    {"chunks_new", AGENT_EV_INT},
    {"chunks_recent", AGENT_EV_INT},
    {"chunks_reclaimed", AGENT_EV_INT},
    {"chunks_referenced", AGENT_EV_INT},
    {"chunks_reused", AGENT_EV_INT},
    {"chunks_restored", AGENT_EV_INT},
    {"chunks_sent", AGENT_EV_INT},
    {"commit_failures", AGENT_EV_INT},
    {"copied", AGENT_EV_INT},
    {"disks_full", AGENT_EV_INT},
    {"disks_incremental", AGENT_EV_INT},
    {"disks_skipped", AGENT_EV_INT},
    {"domains", AGENT_EV_INT},
    {"done", AGENT_EV_INT},
    {"exit_status", AGENT_EV_INT},
    {"export_pid", AGENT_EV_INT},
    {"failed", AGENT_EV_INT},
    {"freeze_ms", AGENT_EV_INT},
    {"kept", AGENT_EV_INT},
    {"milliseconds", AGENT_EV_INT},
    {"pending_bytes", AGENT_EV_INT},
    {"present", AGENT_EV_INT},
    {"pulled", AGENT_EV_INT},
    {"removed", AGENT_EV_INT},
    {"selected", AGENT_EV_INT},
    {"seq", AGENT_EV_INT},
    {"sessions", AGENT_EV_INT},
    {"size", AGENT_EV_INT},
    {"total", AGENT_EV_INT},
    {"warned", AGENT_EV_INT},
    {"window_size", AGENT_EV_INT},
    {"windows_compacted", AGENT_EV_INT},
    {"windows_delta", AGENT_EV_INT},
    {"windows_full", AGENT_EV_INT},
    {"windows_pushed", AGENT_EV_INT},
    {"windows_set", AGENT_EV_INT},
    {"windows_with_data", AGENT_EV_INT},
    /* times: seconds since the epoch */
    {"cutoff", AGENT_EV_INT},
    {"end_time", AGENT_EV_INT},
    {"last_run_time", AGENT_EV_INT},
    {"last_time", AGENT_EV_INT},
    {"started", AGENT_EV_INT},
    {"time", AGENT_EV_INT},
    /* durations */
    {"seconds", AGENT_EV_SECONDS},
    /* booleans */
    {"append_only", AGENT_EV_BOOL},
    {"defined", AGENT_EV_BOOL},
    {"dry_run", AGENT_EV_BOOL},
    {"finishing", AGENT_EV_BOOL},
    {"instant", AGENT_EV_BOOL},
    {"trusted", AGENT_EV_BOOL},
    {"with_key", AGENT_EV_BOOL},
    /* lists */
    {"disks", AGENT_EV_DISKS},
    {"reasons", AGENT_EV_LIST},
    {"skipped", AGENT_EV_LIST},
};

enum agent_ev_type
agent_event_type(const char *key)
{
    if (strncmp(key, "us_", 3) == 0) /* phase times, microseconds */
        return AGENT_EV_INT;
    for (size_t i = 0; i < LB_ARRAY_SIZE(schema); i++)
        if (strcmp(key, schema[i].key) == 0)
            return schema[i].type;
    return AGENT_EV_STRING;
}

/* A decimal integer, all of text, or NULL. */
static struct json_object *
int_value(const char *text)
{
    const char *digits = text[0] == '-' ? text + 1 : text;
    char *end;

    if (!*digits || strspn(digits, "0123456789") != strlen(digits))
        return NULL;
    errno = 0;
    if (text[0] == '-') {
        long long v = strtoll(text, &end, 10);
        return errno ? NULL : json_object_new_int64(v);
    }
    unsigned long long u = strtoull(text, &end, 10);
    return errno ? NULL : json_object_new_uint64(u);
}

static struct json_object *
seconds_value(const char *text)
{
    char *end, buf[64];
    double d;

    if (!*text || strspn(text, "0123456789.") != strlen(text))
        return NULL;
    d = strtod(text, &end);
    if (*end || !isfinite(d))
        return NULL;
    snprintf(buf, sizeof buf, "%.3f", d);
    return json_object_new_double_s(d, buf);
}

static struct json_object *
bool_value(const char *text)
{
    if (strcmp(text, "1") == 0 || strcmp(text, "yes") == 0 ||
        strcmp(text, "true") == 0)
        return json_object_new_boolean(1);
    if (!*text || strcmp(text, "0") == 0 || strcmp(text, "no") == 0 ||
        strcmp(text, "false") == 0)
        return json_object_new_boolean(0);
    return NULL;
}

/* "vda=SIZE vdb=SIZE" (the repository's "disks"): one object per disk; a
 * disk without a readable size has "size": null. */
static struct json_object *
disks_value(const char *text)
{
    struct json_object *a = json_object_new_array();
    CLEANUP_FREE char *copy = lb_xstrdup(text);
    char *save = NULL;

    for (char *w = strtok_r(copy, " ", &save); w;
         w = strtok_r(NULL, " ", &save)) {
        struct json_object *d = json_object_new_object();
        char *eq = strrchr(w, '=');

        if (eq)
            *eq = '\0';
        json_object_object_add(d, "name", json_object_new_string(w));
        json_object_object_add(d, "size", eq ? int_value(eq + 1) : NULL);
        json_object_array_add(a, d);
    }
    return a;
}

/* "a, b" or "a,b": ["a", "b"]; "" is []. */
static struct json_object *
list_value(const char *text)
{
    struct json_object *a = json_object_new_array();
    CLEANUP_FREE char *copy = lb_xstrdup(text);
    char *save = NULL;

    for (char *w = strtok_r(copy, ",", &save); w;
         w = strtok_r(NULL, ",", &save)) {
        w += strspn(w, " ");
        if (*w)
            json_object_array_add(a, json_object_new_string(w));
    }
    return a;
}

struct json_object *
agent_event_value(const char *key, const char *text)
{
    switch (agent_event_type(key)) {
    case AGENT_EV_INT:
        return int_value(text);
    case AGENT_EV_SECONDS:
        return seconds_value(text);
    case AGENT_EV_BOOL:
        return bool_value(text);
    case AGENT_EV_DISKS:
        return disks_value(text);
    case AGENT_EV_LIST:
        return list_value(text);
    case AGENT_EV_STRING:
        break;
    }
    return json_object_new_string(text);
}

struct json_object *
agent_event_new(const char *event, const struct proto_kv *theirs,
                const struct proto_kv *ours, const char *text_key,
                const char *text)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "event", json_object_new_string(event));
    for (size_t i = 0; theirs && i < theirs->n; i++) {
        const char *k = theirs->e[i].key;
        /* an encrypted backup's sealed metadata, as listed: ciphertext,
         * of use to nobody reading the event (show opens it) */
        if (strcmp(k, "event") == 0 || (ours && proto_kv_get(ours, k)) ||
            (text_key && strcmp(k, text_key) == 0) ||
            strcmp(k, PROTO_META_SEALED) == 0)
            continue;
        json_object_object_add(o, k, agent_event_value(k, theirs->e[i].val));
    }
    for (size_t i = 0; ours && i < ours->n; i++)
        if (strcmp(ours->e[i].key, "event") != 0)
            json_object_object_add(
                o, ours->e[i].key,
                agent_event_value(ours->e[i].key, ours->e[i].val));
    if (text_key && text)
        json_object_object_add(o, text_key, json_object_new_string(text));
    return o;
}

const char *
agent_event_str(struct json_object *o, const char *key)
{
    struct json_object *v;

    if (!json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

void
agent_event_merge(const char *event, const struct proto_kv *theirs,
                  const struct proto_kv *ours, const char *text_key,
                  const char *text)
{
    struct json_object *o =
        agent_event_new(event, theirs, ours, text_key, text);

    agent_event_print(o);
    json_object_put(o);
}

void
agent_event(const char *event, const struct proto_kv *kv)
{
    agent_event_merge(event, NULL, kv, NULL, NULL);
}
