/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: the --json event typing (agent/client/event.c) of a
 * repository's metadata. The input is lines "key=value" (a kv list as a
 * server sends it: any key, any value); half of them go to "theirs", the
 * rest to "ours", and agent_event_new builds the event.
 *
 * Oracle beyond "no crash, no leak": the event serializes, json-c parses
 * it back, and every field has its schema type (agent_event_type): a
 * string, an integer or null, a number or null, a boolean or null, an
 * array of {name: string, size: integer or null}, an array of strings.
 */
#include "agent/client/event.h"
#include "fuzz/fuzz.h"

#include <string.h>

/* The agent prints events; the target only builds them. */
void
agent_event_print(struct json_object *o)
{
    (void)o;
}

static bool
int_or_null(struct json_object *v)
{
    return !v || json_object_is_type(v, json_type_int);
}

static bool
field_ok(const char *key, struct json_object *v)
{
    switch (agent_event_type(key)) {
    case AGENT_EV_STRING:
        return v && json_object_is_type(v, json_type_string);
    case AGENT_EV_INT:
        return int_or_null(v);
    case AGENT_EV_SECONDS:
        return !v || json_object_is_type(v, json_type_double);
    case AGENT_EV_BOOL:
        return !v || json_object_is_type(v, json_type_boolean);
    case AGENT_EV_DISKS:
        if (!v || !json_object_is_type(v, json_type_array))
            return false;
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            struct json_object *d = json_object_array_get_idx(v, i), *x;
            if (!json_object_is_type(d, json_type_object) ||
                !json_object_object_get_ex(d, "name", &x) ||
                !json_object_is_type(x, json_type_string) ||
                !json_object_object_get_ex(d, "size", &x) || !int_or_null(x))
                return false;
        }
        return true;
    case AGENT_EV_LIST:
        if (!v || !json_object_is_type(v, json_type_array))
            return false;
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (!json_object_is_type(json_object_array_get_idx(v, i),
                                     json_type_string))
                return false;
        return true;
    }
    return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_kv theirs = {0}, ours = {0};
    char *text = lb_xmalloc(size + 1);
    char *save = NULL;
    unsigned n = 0;
    struct json_object *o, *back;
    const char *s;

    memcpy(text, data, size);
    text[size] = '\0';
    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        struct proto_kv *kv = n % 2 ? &ours : &theirs;
        if (!eq || !proto_kv_key_valid(line, (size_t)(eq - line)) ||
            kv->n >= PROTO_MAX_KV)
            continue;
        *eq = '\0';
        proto_kv_set_lossy(kv, line, eq + 1);
        n++;
    }
    o = agent_event_new("fuzz", &theirs, &ours, "text", "a text");
    s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                              JSON_C_TO_STRING_NOSLASHESCAPE);
    back = json_tokener_parse(s);
    CHECK(back != NULL);
    json_object_object_foreach(back, key, val)
    {
        if (strcmp(key, "event") == 0 || strcmp(key, "text") == 0)
            CHECK(val && json_object_is_type(val, json_type_string));
        else
            CHECK(field_ok(key, val));
    }
    json_object_put(back);
    json_object_put(o);
    proto_kv_free(&theirs);
    proto_kv_free(&ours);
    free(text);
    return 0;
}
