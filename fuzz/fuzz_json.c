/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: lb_json_parse on the input bytes.
 *
 * Oracle beyond "no crash, no leak": an accepted document is walked with
 * the accessors, written out again (strings through lb_json_escape,
 * numbers as their text) and parsed again; both trees must be equal.
 */
#include "common/json.h"
#include "fuzz/fuzz.h"

#include <string.h>

static void
write_json(struct lb_buf *b, const struct lb_json *j)
{
    switch (j->type) {
    case LB_JSON_NULL:
        lb_buf_append(b, "null", 4);
        break;
    case LB_JSON_BOOL:
        if (j->b)
            lb_buf_append(b, "true", 4);
        else
            lb_buf_append(b, "false", 5);
        break;
    case LB_JSON_NUMBER:
        lb_buf_append(b, j->str, j->len);
        break;
    case LB_JSON_STRING:
        lb_json_escape(b, j->str);
        break;
    case LB_JSON_ARRAY:
    case LB_JSON_OBJECT:
        lb_buf_put_u8(b, j->type == LB_JSON_ARRAY ? '[' : '{');
        for (size_t i = 0; i < j->n; i++) {
            if (i)
                lb_buf_put_u8(b, ',');
            if (j->type == LB_JSON_OBJECT) {
                lb_json_escape(b, j->keys[i]);
                lb_buf_put_u8(b, ':');
            }
            write_json(b, j->kids[i]);
        }
        lb_buf_put_u8(b, j->type == LB_JSON_ARRAY ? ']' : '}');
        break;
    }
}

/* Accessors must agree with the tree; strings hold no NUL. */
static void
walk(const struct lb_json *j)
{
    uint64_t u;
    int64_t i64;

    switch (j->type) {
    case LB_JSON_NUMBER:
        CHECK(j->str && strlen(j->str) == j->len && j->len > 0);
        (void)lb_json_u64(j, &u);
        (void)lb_json_i64(j, &i64);
        break;
    case LB_JSON_STRING:
        CHECK(j->str && strlen(j->str) == j->len);
        CHECK(lb_json_str(j) == j->str);
        break;
    case LB_JSON_BOOL:
        CHECK(lb_json_bool(j, !j->b) == j->b);
        break;
    case LB_JSON_ARRAY:
        for (size_t i = 0; i < j->n; i++) {
            CHECK(lb_json_at(j, i) == j->kids[i]);
            walk(j->kids[i]);
        }
        CHECK(lb_json_at(j, j->n) == NULL);
        break;
    case LB_JSON_OBJECT:
        for (size_t i = 0; i < j->n; i++) {
            const struct lb_json *first = lb_json_get(j, j->keys[i]);
            CHECK(first != NULL);
            /* The first child of that key. */
            for (size_t k = 0; k < i; k++)
                if (strcmp(j->keys[k], j->keys[i]) == 0) {
                    CHECK(first == j->kids[k]);
                    goto next;
                }
            CHECK(first == j->kids[i]);
        next:
            walk(j->kids[i]);
        }
        break;
    case LB_JSON_NULL:
        break;
    }
}

static bool
equal(const struct lb_json *a, const struct lb_json *b)
{
    if (a->type != b->type || a->n != b->n || a->b != b->b || a->len != b->len)
        return false;
    if ((a->str || b->str) &&
        (!a->str || !b->str || memcmp(a->str, b->str, a->len) != 0))
        return false;
    for (size_t i = 0; i < a->n; i++) {
        if (a->type == LB_JSON_OBJECT && strcmp(a->keys[i], b->keys[i]) != 0)
            return false;
        if (!equal(a->kids[i], b->kids[i]))
            return false;
    }
    return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[128];
    struct lb_json *j =
        lb_json_parse((const char *)data, size, err, sizeof err);
    struct lb_json *again;
    struct lb_buf b = {0};

    if (!j) {
        CHECK(err[0] != '\0');
        return 0;
    }
    walk(j);
    write_json(&b, j);
    again = lb_json_parse((const char *)b.data, b.len, err, sizeof err);
    CHECK(again != NULL);
    CHECK(equal(j, again));
    lb_json_free(again);
    lb_json_free(j);
    lb_buf_free(&b);
    return 0;
}
