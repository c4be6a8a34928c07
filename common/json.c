/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A small JSON reader for the output of qemu-img and the guest agent, and
 * a string escaper for our own --json output. Strict (RFC 8259 values),
 * bounded (depth, size), and fuzzed (fuzz/fuzz_json.c). Numbers are kept
 * as text and converted on demand.
 */
#include "common/json.h"

#include <errno.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

struct parser {
    const char *start, *p, *end;
    int depth;
    char *err;
    size_t errlen;
};

static struct lb_json *parse_value(struct parser *ps);

static void
jerr(struct parser *ps, const char *what)
{
    if (ps->err && ps->err[0] == '\0')
        snprintf(ps->err, ps->errlen, "%s at byte %ld", what,
                 (long)(ps->p - ps->start));
}

static void
skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
                               *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static struct lb_json *
node(enum lb_json_type t)
{
    struct lb_json *j = lb_xcalloc(1, sizeof *j);

    j->type = t;
    return j;
}

static int
hex4(const char *p, unsigned *out)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void
put_utf8(struct lb_buf *b, unsigned cp)
{
    uint8_t u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xC0 | cp >> 6);
        u[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xE0 | cp >> 12);
        u[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (uint8_t)(0xF0 | cp >> 18);
        u[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 4;
    }
    lb_buf_append(b, u, n);
}

/* A string at ps->p (which points at the opening quote); NUL-terminated
 * copy in *out (may contain no NUL: \u0000 is rejected). */
static int
parse_string(struct parser *ps, char **out, size_t *len)
{
    struct lb_buf b = {0};

    ps->p++; /* opening quote */
    for (;;) {
        char c;
        if (ps->p >= ps->end) {
            jerr(ps, "unterminated string");
            goto fail;
        }
        c = *ps->p++;
        if (c == '"')
            break;
        if ((unsigned char)c < 0x20) {
            jerr(ps, "control character in string");
            goto fail;
        }
        if (c != '\\') {
            lb_buf_append(&b, &c, 1);
            continue;
        }
        if (ps->p >= ps->end) {
            jerr(ps, "truncated escape");
            goto fail;
        }
        c = *ps->p++;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            lb_buf_append(&b, &c, 1);
            break;
        case 'b':
            lb_buf_put_u8(&b, '\b');
            break;
        case 'f':
            lb_buf_put_u8(&b, '\f');
            break;
        case 'n':
            lb_buf_put_u8(&b, '\n');
            break;
        case 'r':
            lb_buf_put_u8(&b, '\r');
            break;
        case 't':
            lb_buf_put_u8(&b, '\t');
            break;
        case 'u': {
            unsigned cp, lo;
            if (ps->end - ps->p < 4 || hex4(ps->p, &cp) < 0) {
                jerr(ps, "bad \\u escape");
                goto fail;
            }
            ps->p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' ||
                    ps->p[1] != 'u' || hex4(ps->p + 2, &lo) < 0 ||
                    lo < 0xDC00 || lo > 0xDFFF) {
                    jerr(ps, "bad surrogate pair");
                    goto fail;
                }
                ps->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
                jerr(ps, "bad \\u code point");
                goto fail;
            }
            put_utf8(&b, cp);
            break;
        }
        default:
            jerr(ps, "bad escape");
            goto fail;
        }
    }
    *len = b.len;
    lb_buf_put_u8(&b, '\0');
    *out = (char *)b.data;
    return 0;
fail:
    lb_buf_free(&b);
    return -1;
}

static struct lb_json *
parse_number(struct parser *ps)
{
    const char *s = ps->p;
    struct lb_json *j;

    if (ps->p < ps->end && *ps->p == '-')
        ps->p++;
    if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9')) {
        jerr(ps, "bad number");
        return NULL;
    }
    if (*ps->p == '0')
        ps->p++;
    else
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9')) {
            jerr(ps, "bad fraction");
            return NULL;
        }
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9')) {
            jerr(ps, "bad exponent");
            return NULL;
        }
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    j = node(LB_JSON_NUMBER);
    j->len = (size_t)(ps->p - s);
    j->str = lb_xmalloc(j->len + 1);
    memcpy(j->str, s, j->len);
    j->str[j->len] = '\0';
    return j;
}

static bool
literal(struct parser *ps, const char *w)
{
    size_t n = strlen(w);

    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0)
        return false;
    ps->p += n;
    return true;
}

static void
add_child(struct lb_json *parent, char *key, struct lb_json *child)
{
    size_t n = parent->n + 1;

    /* sizeof of one element, a pointer: what is meant */
    // NOLINTNEXTLINE(bugprone-sizeof-expression)
    parent->kids = lb_xrealloc(parent->kids, n * sizeof *parent->kids);
    parent->keys = lb_xrealloc(parent->keys, n * sizeof *parent->keys);
    parent->kids[parent->n] = child;
    parent->keys[parent->n] = key;
    parent->n++;
}

static struct lb_json *
parse_container(struct parser *ps, bool object)
{
    struct lb_json *j = node(object ? LB_JSON_OBJECT : LB_JSON_ARRAY);
    char close = object ? '}' : ']';

    if (++ps->depth > JSON_MAX_DEPTH) {
        jerr(ps, "nested too deep");
        goto fail;
    }
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return j;
    }
    for (;;) {
        char *key = NULL;
        size_t klen;
        struct lb_json *v;

        skip_ws(ps);
        if (object) {
            if (ps->p >= ps->end || *ps->p != '"') {
                jerr(ps, "expected a key");
                goto fail;
            }
            if (parse_string(ps, &key, &klen) < 0)
                goto fail;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(key);
                jerr(ps, "expected ':'");
                goto fail;
            }
            ps->p++;
        }
        v = parse_value(ps);
        if (!v) {
            free(key);
            goto fail;
        }
        add_child(j, key, v);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            break;
        }
        jerr(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
        goto fail;
    }
    ps->depth--;
    return j;
fail:
    lb_json_free(j);
    return NULL;
}

static struct lb_json *
parse_value(struct parser *ps)
{
    struct lb_json *j;

    skip_ws(ps);
    if (ps->p >= ps->end) {
        jerr(ps, "unexpected end");
        return NULL;
    }
    switch (*ps->p) {
    case '{':
        return parse_container(ps, true);
    case '[':
        return parse_container(ps, false);
    case '"':
        j = node(LB_JSON_STRING);
        if (parse_string(ps, &j->str, &j->len) < 0) {
            free(j);
            return NULL;
        }
        return j;
    case 't':
        if (literal(ps, "true")) {
            j = node(LB_JSON_BOOL);
            j->b = true;
            return j;
        }
        break;
    case 'f':
        if (literal(ps, "false"))
            return node(LB_JSON_BOOL);
        break;
    case 'n':
        if (literal(ps, "null"))
            return node(LB_JSON_NULL);
        break;
    default:
        return parse_number(ps);
    }
    jerr(ps, "unexpected character");
    return NULL;
}

struct lb_json *
lb_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    struct parser ps = {text, text, text + len, 0, err, errlen};
    struct lb_json *j;

    if (err && errlen)
        err[0] = '\0';
    if (len > LB_JSON_MAX_INPUT) {
        jerr(&ps, "input too large");
        return NULL;
    }
    j = parse_value(&ps);
    if (!j)
        return NULL;
    skip_ws(&ps);
    if (ps.p != ps.end) {
        jerr(&ps, "trailing characters");
        lb_json_free(j);
        return NULL;
    }
    return j;
}

void
lb_json_free(struct lb_json *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->n; i++) {
        lb_json_free(j->kids[i]);
        free(j->keys[i]);
    }
    free(j->kids);
    free(j->keys);
    free(j->str);
    free(j);
}

const struct lb_json *
lb_json_get(const struct lb_json *j, const char *key)
{
    if (!j || j->type != LB_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < j->n; i++)
        if (strcmp(j->keys[i], key) == 0)
            return j->kids[i];
    return NULL;
}

const struct lb_json *
lb_json_at(const struct lb_json *j, size_t i)
{
    if (!j || j->type != LB_JSON_ARRAY || i >= j->n)
        return NULL;
    return j->kids[i];
}

const char *
lb_json_str(const struct lb_json *j)
{
    return j && j->type == LB_JSON_STRING ? j->str : NULL;
}

int
lb_json_u64(const struct lb_json *j, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!j || j->type != LB_JSON_NUMBER || j->str[0] == '-')
        return -1;
    errno = 0;
    v = strtoull(j->str, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int
lb_json_i64(const struct lb_json *j, int64_t *out)
{
    char *end;
    long long v;

    if (!j || j->type != LB_JSON_NUMBER)
        return -1;
    errno = 0;
    v = strtoll(j->str, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

bool
lb_json_bool(const struct lb_json *j, bool def)
{
    return j && j->type == LB_JSON_BOOL ? j->b : def;
}

void
lb_json_escape(struct lb_buf *b, const char *s)
{
    lb_buf_put_u8(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            lb_buf_put_u8(b, '\\');
            lb_buf_put_u8(b, c);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            lb_buf_append(b, esc, 6);
        } else {
            lb_buf_put_u8(b, c);
        }
    }
    lb_buf_put_u8(b, '"');
}
