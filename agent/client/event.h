/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * --json events as json-c objects, typed by one schema (docs/json.md):
 * a field's JSON type follows from its name, never from its value, so a
 * set named "2024" stays a string and a count stays a number. The events
 * themselves are built from proto_kv lists (what the repository and the
 * agent's own code hold); this file is the one place that types them.
 */
#ifndef AGENT_EVENT_H
#define AGENT_EVENT_H

#include "agent/client/client.h"

#include <json-c/json.h>

enum agent_ev_type {
    AGENT_EV_STRING,  /* names, ids, paths, messages; the default */
    AGENT_EV_INT,     /* counts, bytes, times (seconds since the epoch) */
    AGENT_EV_SECONDS, /* a duration in seconds, three decimals */
    AGENT_EV_BOOL,    /* "1"/"yes"/"true" or "0"/"no"/"false"/"" */
    AGENT_EV_DISKS,   /* "vda=SIZE vdb=SIZE": [{"name","size"}, ...] */
    AGENT_EV_LIST,    /* "a, b": ["a", "b"] */
};

/* The schema's type of field key. */
enum agent_ev_type agent_event_type(const char *key);

/* text as the JSON value of field key: a new object, or NULL (JSON null)
 * when text does not fit the field's type (a repository that stored junk
 * for a number). */
struct json_object *agent_event_value(const char *key, const char *text);

/* The event object of agent_event_merge (see client.h); the caller puts
 * it (json_object_put). */
struct json_object *agent_event_new(const char *event,
                                    const struct proto_kv *theirs,
                                    const struct proto_kv *ours,
                                    const char *text_key, const char *text);

/* Print o as one line on stdout (under the progress lock). */
void agent_event_print(struct json_object *o);

/* The string of field key of o, or NULL if it is missing or no string. */
const char *agent_event_str(struct json_object *o, const char *key);

#endif /* AGENT_EVENT_H */
