/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * agent/client/event.c: a --json field's type follows from its name, never
 * from its value (docs/json.md). Each row: a key, the text a kv list
 * holds, and the JSON the event must carry for it.
 */
#include "agent/client/event.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <string.h>

struct row {
    const char *key, *text, *json;
};

static const struct row rows[] = {
    /* names and ids stay strings, whatever they look like */
    {"name", "2024", "\"2024\""},
    {"id", "20261124-013002-c0a7", "\"20261124-013002-c0a7\""},
    {"domain", "007", "\"007\""},
    {"parent", "", "\"\""},
    {"some_future_key", "12", "\"12\""},
    /* numbers stay numbers; junk is null, never a string */
    {"size", "536870912", "536870912"},
    {"freeze_ms", "0", "0"},
    {"time", "1796123367", "1796123367"},
    {"size", "18446744073709551615", "18446744073709551615"},
    {"size", "18446744073709551616", "null"},
    {"size", "12x", "null"},
    {"size", "", "null"},
    {"bytes_read", "-5", "-5"},
    {"us_data", "1302977", "1302977"},
    {"us_data", "1.5", "null"},
    {"seconds", "3.114", "3.114"},
    {"seconds", "3.1", "3.100"},
    {"seconds", "nan", "null"},
    {"seconds", "1e5", "null"},
    /* booleans */
    {"dry_run", "1", "true"},
    {"dry_run", "0", "false"},
    {"defined", "yes", "true"},
    {"finishing", "no", "false"},
    {"with_key", "", "false"},
    {"append_only", "maybe", "null"},
    /* lists */
    {"disks", "vda=268435456 vdb=1073741824",
     "[{\"name\":\"vda\",\"size\":268435456},"
     "{\"name\":\"vdb\",\"size\":1073741824}]"},
    {"disks", "", "[]"},
    {"disks", "vda=x hdc",
     "[{\"name\":\"vda\",\"size\":null},"
     "{\"name\":\"hdc\",\"size\":null}]"},
    {"reasons", "daily 1, weekly 2", "[\"daily 1\",\"weekly 2\"]"},
    {"reasons", "latest", "[\"latest\"]"},
    {"skipped", "", "[]"},
    {"skipped", "hdc: a cdrom, vdc: read-only",
     "[\"hdc: a cdrom\",\"vdc: read-only\"]"},
};

Test(event, types_follow_the_name)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct json_object *v = agent_event_value(rows[i].key, rows[i].text);
        const char *got =
            v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)
              : "null";
        cr_expect_str_eq(got, rows[i].json, "%s=%s", rows[i].key, rows[i].text);
        json_object_put(v);
    }
}

/* The agent's own keys win over the repository's; "event" is never
 * overwritten; the text rides along as a string. */
Test(event, merge)
{
    struct proto_kv theirs = {0}, ours = {0};
    struct json_object *o;

    proto_kv_set(&theirs, "event", "forged");
    proto_kv_set(&theirs, "name", "2024");
    proto_kv_set(&theirs, "size", "7");
    proto_kv_set(&theirs, "domain_xml_text", "shadowed");
    proto_kv_set(&ours, "size", "8");
    o = agent_event_new("backup", &theirs, &ours, "domain_xml_text", "<x/>");
    cr_expect_str_eq(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                     "{\"event\":\"backup\",\"name\":\"2024\",\"size\":8,"
                     "\"domain_xml_text\":\"<x\\/>\"}");
    cr_expect_str_eq(agent_event_str(o, "name"), "2024");
    cr_expect_null(agent_event_str(o, "size"), "a number is no string");
    json_object_put(o);
    proto_kv_free(&theirs);
    proto_kv_free(&ours);
}
