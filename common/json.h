/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A small, strict, bounded JSON reader (for qemu-img and guest agent
 * output) and a string escaper (for --json output). Parsing allocates a
 * tree; lb_json_free releases it. Accessors accept NULL and return NULL /
 * -1 / the default, so lookups chain without checks in between.
 */
#ifndef LB_JSON_H
#define LB_JSON_H

#include "common/common.h"

#define LB_JSON_MAX_INPUT (64u << 20)

enum lb_json_type {
    LB_JSON_NULL,
    LB_JSON_BOOL,
    LB_JSON_NUMBER,
    LB_JSON_STRING,
    LB_JSON_ARRAY,
    LB_JSON_OBJECT,
};

struct lb_json {
    enum lb_json_type type;
    bool b;
    char *str; /* STRING (unescaped) or NUMBER (its text) */
    size_t len;
    size_t n; /* children of ARRAY / OBJECT */
    struct lb_json **kids;
    char **keys; /* OBJECT keys (NULL for ARRAY) */
};

/* Parse text[0..len). NULL on error, with a message in err (if not NULL). */
struct lb_json *lb_json_parse(const char *text, size_t len, char *err,
                              size_t errlen);
void lb_json_free(struct lb_json *j);

const struct lb_json *lb_json_get(const struct lb_json *j, const char *key);
const struct lb_json *lb_json_at(const struct lb_json *j, size_t i);
const char *lb_json_str(const struct lb_json *j);
int lb_json_u64(const struct lb_json *j, uint64_t *out);
int lb_json_i64(const struct lb_json *j, int64_t *out);
bool lb_json_bool(const struct lb_json *j, bool def);

/* Append s as a JSON string literal (with quotes). */
void lb_json_escape(struct lb_buf *b, const char *s);

#endif /* LB_JSON_H */
