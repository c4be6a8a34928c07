/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * common/json.c: the strict JSON reader (valid documents, accessors, every
 * class of malformed input) and the string escaper.
 */
#include "common/json.h"

#include <criterion/criterion.h>
#include <string.h>

static struct lb_json *
parse(const char *s)
{
    return lb_json_parse(s, strlen(s), NULL, 0);
}

/* Expect s (len bytes) to be rejected with a message. */
static void
reject_n(const char *s, size_t len)
{
    char err[128] = "unset";
    struct lb_json *j = lb_json_parse(s, len, err, sizeof err);

    cr_assert_null(j, "accepted: '%.*s'", (int)len, s);
    cr_assert_neq(err[0], '\0', "no message for '%.*s'", (int)len, s);
    cr_assert_neq(strstr(err, "at byte"), NULL, "'%s'", err);
}

static void
reject(const char *s)
{
    reject_n(s, strlen(s));
}

/* `qemu-img info --output=json --backing-chain` of a qcow2 with a backing
 * file and a persistent dirty bitmap (qemu 7.2). */
static const char qemu_img_info[] =
    "[\n"
    "    {\n"
    "        \"children\": [\n"
    "            {\n"
    "                \"name\": \"file\",\n"
    "                \"info\": {\n"
    "                    \"children\": [],\n"
    "                    \"virtual-size\": 1380188160,\n"
    "                    \"filename\": "
    "\"/var/lib/libvirt/images/web1.qcow2\",\n"
    "                    \"format\": \"file\",\n"
    "                    \"actual-size\": 1380061184,\n"
    "                    \"format-specific\": {\n"
    "                        \"type\": \"file\",\n"
    "                        \"data\": {}\n"
    "                    },\n"
    "                    \"dirty-flag\": false\n"
    "                }\n"
    "            }\n"
    "        ],\n"
    "        \"backing-filename-format\": \"qcow2\",\n"
    "        \"virtual-size\": 21474836480,\n"
    "        \"filename\": \"/var/lib/libvirt/images/web1.qcow2\",\n"
    "        \"cluster-size\": 65536,\n"
    "        \"format\": \"qcow2\",\n"
    "        \"actual-size\": 1380061184,\n"
    "        \"format-specific\": {\n"
    "            \"type\": \"qcow2\",\n"
    "            \"data\": {\n"
    "                \"compat\": \"1.1\",\n"
    "                \"compression-type\": \"zlib\",\n"
    "                \"lazy-refcounts\": false,\n"
    "                \"bitmaps\": [\n"
    "                    {\n"
    "                        \"flags\": [\n"
    "                            \"auto\"\n"
    "                        ],\n"
    "                        \"name\": \"livebackup-20261123-114600-abcd\",\n"
    "                        \"granularity\": 65536\n"
    "                    }\n"
    "                ],\n"
    "                \"refcount-bits\": 16,\n"
    "                \"corrupt\": false,\n"
    "                \"extended-l2\": false\n"
    "            }\n"
    "        },\n"
    "        \"full-backing-filename\": "
    "\"/var/lib/libvirt/images/base.qcow2\",\n"
    "        \"backing-filename\": \"base.qcow2\",\n"
    "        \"dirty-flag\": false\n"
    "    },\n"
    "    {\n"
    "        \"virtual-size\": 21474836480,\n"
    "        \"filename\": \"/var/lib/libvirt/images/base.qcow2\",\n"
    "        \"cluster-size\": 65536,\n"
    "        \"format\": \"qcow2\",\n"
    "        \"actual-size\": 2147745792,\n"
    "        \"dirty-flag\": false\n"
    "    }\n"
    "]\n";

Test(json, qemu_img_backing_chain)
{
    char err[128];
    struct lb_json *j =
        lb_json_parse(qemu_img_info, strlen(qemu_img_info), err, sizeof err);
    const struct lb_json *top, *bm;
    uint64_t v;

    cr_assert_not_null(j, "%s", err);
    cr_assert_eq(j->type, LB_JSON_ARRAY);
    cr_assert_eq(j->n, 2);
    top = lb_json_at(j, 0);
    cr_assert_str_eq(lb_json_str(lb_json_get(top, "filename")),
                     "/var/lib/libvirt/images/web1.qcow2");
    cr_assert_str_eq(lb_json_str(lb_json_get(top, "format")), "qcow2");
    cr_assert_eq(lb_json_u64(lb_json_get(top, "virtual-size"), &v), 0);
    cr_assert_eq(v, 21474836480ull);
    cr_assert_eq(lb_json_bool(lb_json_get(top, "dirty-flag"), true), false);
    bm = lb_json_at(
        lb_json_get(lb_json_get(lb_json_get(top, "format-specific"), "data"),
                    "bitmaps"),
        0);
    cr_assert_str_eq(lb_json_str(lb_json_get(bm, "name")),
                     "livebackup-20261123-114600-abcd");
    cr_assert_str_eq(lb_json_str(lb_json_at(lb_json_get(bm, "flags"), 0)),
                     "auto");
    cr_assert_str_eq(lb_json_str(lb_json_get(lb_json_at(j, 1), "filename")),
                     "/var/lib/libvirt/images/base.qcow2");
    cr_assert_null(lb_json_at(j, 2));
    cr_assert_null(lb_json_get(top, "no-such-key"));
    lb_json_free(j);
}

Test(json, guest_agent_reply)
{
    static const char s[] =
        "{\"return\": [{\"name\": \"vda1\", \"mountpoint\": \"/\", "
        "\"type\": \"ext4\", \"used-bytes\": 1234, \"total-bytes\": 5678, "
        "\"disk\": [{\"serial\": \"x\", \"bus-type\": \"virtio\", "
        "\"bus\": 0, \"unit\": 0, \"target\": 0}]}]}";
    struct lb_json *j = parse(s);
    const struct lb_json *fs;
    uint64_t v;

    cr_assert_not_null(j);
    fs = lb_json_at(lb_json_get(j, "return"), 0);
    cr_assert_str_eq(lb_json_str(lb_json_get(fs, "mountpoint")), "/");
    cr_assert_eq(lb_json_u64(lb_json_get(fs, "used-bytes"), &v), 0);
    cr_assert_eq(v, 1234);
    lb_json_free(j);
}

Test(json, scalars_and_whitespace)
{
    struct lb_json *j;
    int64_t i;
    uint64_t u;

    j = parse(" \t\r\n null \n");
    cr_assert_not_null(j);
    cr_assert_eq(j->type, LB_JSON_NULL);
    lb_json_free(j);

    j = parse("true");
    cr_assert_eq(lb_json_bool(j, false), true);
    lb_json_free(j);
    j = parse("false");
    cr_assert_eq(lb_json_bool(j, true), false);
    lb_json_free(j);

    j = parse("-12.5e-3");
    cr_assert_eq(j->type, LB_JSON_NUMBER);
    cr_assert_str_eq(j->str, "-12.5e-3", "numbers keep their text");
    cr_assert_eq(lb_json_i64(j, &i), -1, "not an integer");
    cr_assert_eq(lb_json_u64(j, &u), -1);
    lb_json_free(j);

    j = parse("18446744073709551615");
    cr_assert_eq(lb_json_u64(j, &u), 0);
    cr_assert_eq(u, UINT64_MAX);
    lb_json_free(j);
    j = parse("18446744073709551616");
    cr_assert_eq(lb_json_u64(j, &u), -1, "u64 overflow");
    lb_json_free(j);
    j = parse("-9223372036854775808");
    cr_assert_eq(lb_json_i64(j, &i), 0);
    cr_assert_eq(i, INT64_MIN);
    cr_assert_eq(lb_json_u64(j, &u), -1, "negative is not a u64");
    lb_json_free(j);
    j = parse("-9223372036854775809");
    cr_assert_eq(lb_json_i64(j, &i), -1, "i64 overflow");
    lb_json_free(j);
    j = parse("0");
    cr_assert_eq(lb_json_u64(j, &u), 0);
    cr_assert_eq(u, 0);
    lb_json_free(j);

    j = parse("{}");
    cr_assert_eq(j->type, LB_JSON_OBJECT);
    cr_assert_eq(j->n, 0);
    lb_json_free(j);
    j = parse("[ ]");
    cr_assert_eq(j->type, LB_JSON_ARRAY);
    cr_assert_eq(j->n, 0);
    lb_json_free(j);
}

Test(json, accessors_tolerate_null_and_wrong_types)
{
    struct lb_json *j = parse("{\"s\": \"x\", \"n\": 1, \"a\": [1]}");
    uint64_t u = 5;
    int64_t i = 5;

    cr_assert_null(lb_json_get(NULL, "x"));
    cr_assert_null(lb_json_at(NULL, 0));
    cr_assert_null(lb_json_str(NULL));
    cr_assert_eq(lb_json_u64(NULL, &u), -1);
    cr_assert_eq(lb_json_i64(NULL, &i), -1);
    cr_assert_eq(lb_json_bool(NULL, true), true);
    cr_assert_null(lb_json_str(lb_json_get(j, "n")), "a number is no string");
    cr_assert_eq(lb_json_u64(lb_json_get(j, "s"), &u), -1);
    cr_assert_null(lb_json_get(lb_json_get(j, "a"), "x"), "array has no keys");
    cr_assert_null(lb_json_at(j, 0), "object has no index");
    cr_assert_eq(u, 5);
    cr_assert_eq(i, 5);
    lb_json_free(j);
    lb_json_free(NULL);
}

Test(json, string_escapes_decode_to_utf8)
{
    static const char s[] =
        "\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9 \\u20AC \\ud83d\\ude00\"";
    static const char want[] =
        "q\" b\\ s/ \b\f\n\r\t \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    struct lb_json *j = parse(s);

    cr_assert_not_null(j);
    cr_assert_eq(j->len, strlen(want));
    cr_assert_str_eq(j->str, want);
    lb_json_free(j);

    /* Raw UTF-8 passes through; \u007f is allowed (only < 0x20 raw is not). */
    j = parse("\"caf\xc3\xa9 \\u007f\"");
    cr_assert_not_null(j);
    cr_assert_str_eq(j->str, "caf\xc3\xa9 \x7f");
    lb_json_free(j);
}

static char *
nested(int depth, bool object)
{
    char *s = malloc((size_t)depth * 8 + 16);
    size_t n = 0;

    for (int i = 0; i < depth; i++)
        n += (size_t)sprintf(s + n, "%s", object ? "{\"k\":" : "[");
    n += (size_t)sprintf(s + n, "1");
    for (int i = 0; i < depth; i++)
        s[n++] = object ? '}' : ']';
    s[n] = '\0';
    return s;
}

Test(json, depth_limit_is_64)
{
    for (int obj = 0; obj < 2; obj++) {
        char *ok = nested(64, obj);
        char *bad = nested(65, obj);
        struct lb_json *j = parse(ok);

        cr_assert_not_null(j, "depth 64 must parse");
        lb_json_free(j);
        reject(bad);
        free(ok);
        free(bad);
    }
    {
        char *deep = nested(100000, false); /* no stack overflow either */
        reject(deep);
        free(deep);
    }
}

Test(json, rejects_trailing_garbage)
{
    static const char *const bad[] = {
        "{} x",       "1 2",   "[1]]", "{}}",    "null,",
        "\"a\"\"b\"", "truex", "01",   "[1] //", "1.0.0",
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++)
        reject(bad[i]);
    reject_n("[1]\0", 4);
}

Test(json, rejects_bad_escapes)
{
    static const char *const bad[] = {
        "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\U0041\"", "\"\\'\"",
        "\"\\0\"", "\"\\\"",    "\"\\u\"",     "\"\\ \"",     "\"abc\\",
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++)
        reject(bad[i]);
}

Test(json, rejects_lone_and_broken_surrogates)
{
    static const char *const bad[] = {
        "\"\\ud800\"",        "\"\\udbff\"",        "\"\\udc00\"",
        "\"\\udfff\"",        "\"\\ud800\\u0041\"", "\"\\ud800x\"",
        "\"\\ud800\\ud800\"", "\"\\ude00\\ud83d\"", "\"\\ud83d\\ude0\"",
        "\"\\ud83d\\",
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++)
        reject(bad[i]);
}

Test(json, rejects_nul_escape_and_raw_control_characters)
{
    reject("\"\\u0000\"");
    reject("{\"a\\u0000b\": 1}");
    for (int c = 1; c < 0x20; c++) {
        char s[8];
        snprintf(s, sizeof s, "\"a%cb\"", c);
        reject(s);
    }
    reject_n("\"a\0b\"", 5);
}

Test(json, rejects_malformed_values)
{
    static const char *const bad[] = {
        "",      " ",     "nul",      "tru",       "fals",       "NULL",
        "True",  "[1,]",  "[,1]",     "[1 2]",     "{\"a\":1,}", "{\"a\" 1}",
        "{1:2}", "{a:1}", "{\"a\"}",  "{,}",       "'a'",        "-",
        "--1",   "+1",    ".5",       "1.",        "1e",         "1e+",
        "0x10",  "NaN",   "Infinity", "-Infinity", "[",          "]",
        "{",     "}",     "\"",       ":",
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++)
        reject(bad[i]);
}

Test(json, rejects_every_truncation)
{
    static const char doc[] =
        "{\"a\": [1, -2.5e+3, true, false, null, {\"b\": \"x\\u00e9\\n\"}], "
        "\"c\": \"\\ud83d\\ude00\", \"d\": {}}";
    struct lb_json *j = parse(doc);

    cr_assert_not_null(j);
    lb_json_free(j);
    for (size_t len = 0; len < sizeof doc - 1; len++)
        reject_n(doc, len);

    /* The qemu-img document too (prefixes that end inside whitespace after
     * the closing bracket would be valid, so stop before it). */
    for (size_t len = 0; len < strlen(qemu_img_info) - 1; len++)
        reject_n(qemu_img_info, len);
}

Test(json, rejects_oversized_input)
{
    size_t len = LB_JSON_MAX_INPUT + 1;
    char *big = calloc(1, len);

    cr_assert_not_null(big);
    memset(big, ' ', len);
    big[0] = '1';
    reject_n(big, len);
    free(big);
}

Test(json, duplicate_keys_keep_the_first_for_lookup)
{
    struct lb_json *j = parse("{\"k\": 1, \"k\": 2}");
    uint64_t v;

    cr_assert_not_null(j);
    cr_assert_eq(lb_json_u64(lb_json_get(j, "k"), &v), 0);
    cr_assert_eq(v, 1);
    lb_json_free(j);
}

Test(json, escape_output)
{
    struct lb_buf b = {0};
    static const char want[] = "\"a\\\"b\\\\c\\u000a\\u0001\\u001f d\xc3\xa9\"";
    struct lb_json *j;

    lb_json_escape(&b, "a\"b\\c\n\x01\x1f d\xc3\xa9");
    cr_assert_eq(b.len, strlen(want));
    cr_assert_arr_eq(b.data, want, b.len);
    /* What we escape, we read back. */
    j = lb_json_parse((const char *)b.data, b.len, NULL, 0);
    cr_assert_not_null(j);
    cr_assert_str_eq(j->str, "a\"b\\c\n\x01\x1f d\xc3\xa9");
    lb_json_free(j);
    lb_buf_reset(&b);
    lb_json_escape(&b, "");
    cr_assert_eq(b.len, 2);
    cr_assert_arr_eq(b.data, "\"\"", 2);
    lb_buf_free(&b);
}
