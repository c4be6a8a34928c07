/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * common/util.c and common/buf.c: sizes, times, hex, lb_is_zero, and the
 * growable buffer.
 */
#include "common/common.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

/* ---- lb_parse_long ------------------------------------------------------- */

Test(parse_long, takes_whole_decimal_numbers_in_range)
{
    static const struct {
        const char *s;
        long lo, hi, v;
    } ok[] = {
        {"0", 0, 10, 0},
        {"10", 0, 10, 10},
        {"-5", -5, 19, -5},
        {"007", 0, 10, 7},
        {"-0", 0, 0, 0},
        {"86400", 0, 86400, 86400},
        {"9223372036854775807", 0, LONG_MAX, LONG_MAX},
    };
    static const struct {
        const char *s;
        long lo, hi;
    } bad[] = {
        {"", 0, 10},
        {"-", -10, 10},
        {"10s", 0, 100},
        {"1 ", 0, 10},
        {" 1", 0, 10},
        {"+1", 0, 10},
        {"--1", -10, 10},
        {"-1", 0, 10},
        {"11", 0, 10},
        {"-6", -5, 19},
        {"0x10", 0, 100},
        {"1e3", 0, 5000},
        {"abc", 0, 10},
        {"1.0", 0, 10},
        {"9223372036854775808", 0, LONG_MAX},
        {"-9223372036854775809", LONG_MIN, 0},
        {"18446744073709551615", 0, LONG_MAX},
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(ok); i++) {
        long v = 12345;
        cr_assert_eq(lb_parse_long(ok[i].s, ok[i].lo, ok[i].hi, &v), 0,
                     "'%s' rejected", ok[i].s);
        cr_assert_eq(v, ok[i].v, "'%s' -> %ld", ok[i].s, v);
    }
    for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++) {
        long v = 12345;
        errno = 0;
        cr_assert_eq(lb_parse_long(bad[i].s, bad[i].lo, bad[i].hi, &v), -1,
                     "'%s' accepted", bad[i].s);
        cr_assert_eq(errno, EINVAL, "'%s': errno %d", bad[i].s, errno);
        cr_assert_eq(v, 12345, "'%s' changed the output", bad[i].s);
    }
    cr_assert_eq(lb_parse_long(NULL, 0, 1, &(long){0}), -1);
}

/* ---- lb_parse_size ------------------------------------------------------- */

Test(parse_size, accepts_numbers_and_binary_suffixes)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"0", 0},
        {"4096", 4096},
        {"512k", 512ull << 10},
        {"512K", 512ull << 10},
        {"1KiB", 1024},
        {"1kb", 1024},
        {"20M", 20ull << 20},
        {"20MiB", 20ull << 20},
        {"1.5G", 3ull << 29},
        {"1.5k", 1536},
        {"2t", 2ull << 40},
        {"16777215T", (16777215ull) << 40}, /* largest whole-T below 2^64 */
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(ok); i++) {
        uint64_t v = 12345;
        cr_assert_eq(lb_parse_size(ok[i].s, &v), 0, "'%s' rejected", ok[i].s);
        cr_assert_eq(v, ok[i].v, "'%s' -> %llu, want %llu", ok[i].s,
                     (unsigned long long)v, (unsigned long long)ok[i].v);
    }
}

Test(parse_size, rejects_bad_input_and_leaves_output_alone)
{
    static const char *const bad[] = {
        "",
        "-1",
        "-0",
        "abc",
        "k",
        "1x",
        "1kx",
        "1KiBB",
        "1iB",
        "1 k",
        "1k ",
        "nan",
        "NaN",
        "inf",
        "1e30",
        "16777216T",
        "18446744073709551616",
        "99999999999999999999999",
    };
    uint64_t v = 777;

    cr_assert_eq(lb_parse_size(NULL, &v), -1);
    for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++)
        cr_assert_eq(lb_parse_size(bad[i], &v), -1, "'%s' accepted", bad[i]);
    cr_assert_eq(v, 777);
}

/* ---- lb_parse_time / lb_format_time -------------------------------------- */

Test(time, format_parse_round_trip)
{
    static const int64_t ts[] = {
        0,          1,          59,         86399,      951782400,   1700000000,
        1795434360, 2147483647, 2147483648, 4102444800, 253402300799};
    char buf[21];

    for (size_t i = 0; i < LB_ARRAY_SIZE(ts); i++) {
        int64_t back = -1;
        lb_format_time(buf, sizeof buf, ts[i]);
        cr_assert_eq(strlen(buf), 20, "'%s'", buf);
        cr_assert_eq(lb_parse_time(buf, &back), 0, "'%s' rejected", buf);
        cr_assert_eq(back, ts[i], "'%s' -> %lld", buf, (long long)back);
    }
    cr_assert_str_eq(lb_format_time(buf, sizeof buf, 0),
                     "1970-01-01T00:00:00Z");
    cr_assert_str_eq(lb_format_time(buf, sizeof buf, 1795434360),
                     "2026-11-23T11:46:00Z");
    cr_assert_str_eq(lb_format_time(buf, sizeof buf, 253402300799),
                     "9999-12-31T23:59:59Z");
}

Test(time, unformattable_times_still_give_a_string_that_parses_back)
{
    /* Years past 9999 do not fit the 21-byte buffer, and gmtime cannot
     * represent the largest values at all: whatever the time (a backup's
     * "time" comes from the repository), the buffer must hold a
     * NUL-terminated string that lb_parse_time reads back. */
    static const int64_t ts[] = {-1, 253402300800, 99999999999999999, INT64_MAX,
                                 -99999999999999999};

    for (size_t i = 0; i < LB_ARRAY_SIZE(ts); i++) {
        char buf[21];
        int64_t back = 0;

        memset(buf, 'x', sizeof buf);
        lb_format_time(buf, sizeof buf, ts[i]);
        cr_assert_not_null(memchr(buf, '\0', sizeof buf),
                           "%lld: not terminated", (long long)ts[i]);
        cr_assert_eq(lb_parse_time(buf, &back), 0, "%lld -> '%s'",
                     (long long)ts[i], buf);
        cr_assert_eq(back, ts[i], "'%s'", buf);
    }
}

Test(time, parses_every_documented_form)
{
    static const struct {
        const char *s;
        int64_t v;
    } ok[] = {
        {"2026-11-23T11:46:00Z", 1795434360},
        {"2026-11-23T11:46:00", 1795434360},
        {"2026-11-23 11:46:00", 1795434360},
        {"2026-11-23T11:46", 1795434360},
        {"2026-11-23 11:46", 1795434360},
        {"2026-11-23", 1795392000},
        {"2028-02-29", 1835395200},
        {"2026-12-31T23:59:59Z", 1798761599},
        {"@0", 0},
        {"@1795434360", 1795434360},
        {"@-5", -5},
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(ok); i++) {
        int64_t v = -12345;
        cr_assert_eq(lb_parse_time(ok[i].s, &v), 0, "'%s' rejected", ok[i].s);
        cr_assert_eq(v, ok[i].v, "'%s' -> %lld", ok[i].s, (long long)v);
    }
}

Test(time, rejects_bad_input)
{
    static const char *const bad[] = {
        "",
        "@",
        "@12x",
        "@1.5",
        "@99999999999999999999",
        "yesterday",
        "2026-11-23T",
        "2026-11-23T11:46:00Zjunk",
        "2026-13-01",
        "2026-02-30",
        "2026-02-29",
        "2026-04-31",
        "2026-11-23T11:46:60",
        "2026-11-23 24:00",
        "2026/11/23",
        "11:46",
        "2026-11-23 11:46:00 UTC",
    };
    int64_t v = 42;

    for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++)
        cr_assert_eq(lb_parse_time(bad[i], &v), -1, "'%s' accepted", bad[i]);
    cr_assert_eq(v, 42);
}

/* ---- hex ----------------------------------------------------------------- */

Test(hex, round_trip)
{
    uint8_t in[256], out[256];
    char hex[513];

    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)i;
    lb_hex_encode(hex, in, sizeof in);
    cr_assert_eq(strlen(hex), 512);
    cr_assert_eq(strncmp(hex, "000102", 6), 0);
    cr_assert_str_eq(hex + 506, "fdfeff");
    cr_assert_eq(lb_hex_decode(out, sizeof out, hex), 0);
    cr_assert_arr_eq(out, in, sizeof in);
    /* Upper case is accepted on input. */
    cr_assert_eq(lb_hex_decode(out, 2, "ABcd"), 0);
    cr_assert_eq(out[0], 0xab);
    cr_assert_eq(out[1], 0xcd);
    cr_assert_eq(lb_hex_decode(out, 0, ""), 0);
}

Test(hex, decode_errors)
{
    static const char *const bad[] = {
        "",     "a",    "abc",  "abcdef", "zz00",  "0g00",
        "00 0", " 000", "0x00", "00-0",   "0\n00", "ab\xc3\xa9",
    };
    uint8_t out[2];

    for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++)
        cr_assert_eq(lb_hex_decode(out, 2, bad[i]), -1, "'%s' accepted",
                     bad[i]);
}

/* ---- lb_is_zero ---------------------------------------------------------- */

Test(is_zero, empty_and_all_zero)
{
    static const size_t lens[] = {0, 1, 7, 8, 9, 63, 4095, 4096, 4097, 12291};
    uint8_t *p = calloc(1, 12291);

    for (size_t i = 0; i < LB_ARRAY_SIZE(lens); i++)
        cr_assert(lb_is_zero(p, lens[i]), "len %zu", lens[i]);
    free(p);
}

Test(is_zero, finds_any_non_zero_byte)
{
    const size_t len = 12291; /* three 4 KiB blocks and an odd tail */
    uint8_t *p = calloc(1, len);

    for (size_t pos = 0; pos < len; pos++) {
        p[pos] = 0x80;
        cr_assert_not(lb_is_zero(p, len), "byte %zu missed", pos);
        /* A length that stops before the byte sees only zeros. */
        cr_assert(lb_is_zero(p, pos), "false positive before %zu", pos);
        p[pos] = 0;
    }
    free(p);
}

/* ---- human sizes --------------------------------------------------------- */

Test(human_size, units)
{
    char b[32];

    cr_assert_str_eq(lb_human_size(b, sizeof b, 0), "0 B");
    cr_assert_str_eq(lb_human_size(b, sizeof b, 1023), "1023 B");
    cr_assert_str_eq(lb_human_size(b, sizeof b, 1024), "1.0 KiB");
    cr_assert_str_eq(lb_human_size(b, sizeof b, 3ull << 29), "1.5 GiB");
    cr_assert_str_eq(lb_human_size(b, sizeof b, UINT64_MAX), "16384.0 PiB");
}

/* ---- table columns ------------------------------------------------------- */

#define E_ACUTE "\xc3\xa9" /* é: 2 bytes, 1 column */

Test(text_cols, counts_terminal_columns)
{
    char b[64];
    static const char *const odd[] = {
        "a\x1b[2Jb",
        "\xc2\x9b"
        "2J",
        "\x9b"
        "2J",
        "caf\xe9",
        "\xe6\x9c",
        "x\ty\nz",
        "\xed\xa0\x80",
        "\xc0\x80",
    };

    cr_assert_eq(lb_text_cols(""), 0);
    cr_assert_eq(lb_text_cols("web 1"), 5);
    cr_assert_eq(lb_text_cols("w" E_ACUTE "b"), 3); /* é: 2 bytes */
    /* 服务: wide East Asian, two columns each */
    cr_assert_eq(lb_text_cols("\xe6\x9c\x8d\xe5\x8a\xa1"), 4);
    cr_assert_eq(lb_text_cols("\xf0\x9f\x92\xbe"), 2); /* 💾 */
    cr_assert_eq(lb_text_cols("e\xcc\x81"), 1);        /* e + combining acute */
    cr_assert_eq(lb_text_cols("\xef\xbc\xa1"), 2);     /* fullwidth A */
    /* what lb_term_line prints of it: an escape's columns */
    cr_assert_eq(lb_text_cols("a\x1b"), 5);
    cr_assert_eq(lb_text_cols("\xc2\x9b"), 6);
    cr_assert_eq(lb_text_cols("\x9b"), 4);
    for (size_t i = 0; i < LB_ARRAY_SIZE(odd); i++) {
        CLEANUP_FREE char *line = lb_term_line(odd[i]);
        cr_assert_eq(lb_text_cols(odd[i]), lb_text_cols(line), "%s", line);
        cr_assert_eq(lb_text_cols(line), (int)strlen(line), "%s", line);
    }
    /* 服务 padded to 6 columns: two spaces, not four */
    snprintf(b, sizeof b, "%-*s|", lb_pad_width("\xe6\x9c\x8d\xe5\x8a\xa1", 6),
             "\xe6\x9c\x8d\xe5\x8a\xa1");
    cr_assert_str_eq(b, "\xe6\x9c\x8d\xe5\x8a\xa1  |");
    /* padded to 6 columns, then a bar: the bar lands in column 7 */
    snprintf(b, sizeof b, "%-*s|", lb_pad_width("w" E_ACUTE "b", 6),
             "w" E_ACUTE "b");
    cr_assert_str_eq(b, "w" E_ACUTE "b   |");
    snprintf(b, sizeof b, "%-*s|", lb_pad_width("abc", 6), "abc");
    cr_assert_str_eq(b, "abc   |");
    /* a name wider than the column is printed whole */
    snprintf(b, sizeof b, "%-*s|", lb_pad_width("abcdefgh", 6), "abcdefgh");
    cr_assert_str_eq(b, "abcdefgh|");
}

Test(term_safe, escapes_what_a_terminal_would_act_on)
{
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"", ""},
        {"plain <xml/>\n\tnext", "plain <xml/>\n\tnext"},
        {"a\x1b]52;c;ZXZpbA==\x07"
         "b",
         "a\\x1b]52;c;ZXZpbA==\\x07b"},
        {"\r\x7f\x01", "\\x0d\\x7f\\x01"},
        /* C1 in UTF-8: U+009B is a CSI for some terminals */
        {"x\xc2\x9b"
         "2Jy",
         "x\\u009b"
         "2Jy"},
        /* other characters stay: é (C3 A9), U+00A0 (C2 A0), 服, 💾 */
        {"\xc3\xa9\xc2\xa0\xe6\x9c\x8d\xf0\x9f\x92\xbe",
         "\xc3\xa9\xc2\xa0\xe6\x9c\x8d\xf0\x9f\x92\xbe"},
        /* what is not UTF-8, byte by byte: 0x9B alone is a CSI for an
         * 8-bit terminal; a lone lead byte, a sequence cut short, an
         * overlong NUL, a surrogate, past U+10FFFF */
        {"\x9b"
         "2J",
         "\\x9b"
         "2J"},
        {"a\xc2", "a\\xc2"},
        {"\xe6\x9c"
         "x",
         "\\xe6\\x9c"
         "x"},
        {"\xc0\x80", "\\xc0\\x80"},
        {"\xed\xa0\x80", "\\xed\\xa0\\x80"},
        {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"},
        {"caf\xe9!", "caf\\xe9!"},
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(rows); i++) {
        CLEANUP_FREE char *got = lb_term_safe(rows[i].in);
        cr_assert_str_eq(got, rows[i].out, "row %zu", i);
    }
}

Test(term_safe, one_line_escapes_newline_and_tab)
{
    CLEANUP_FREE char *line = lb_term_line("a\nb\tc\xc2\x85"
                                           "d");
    CLEANUP_FREE char *text = lb_term_safe("a\nb\tc");

    cr_assert_str_eq(line, "a\\x0ab\\x09c\\u0085d");
    cr_assert_str_eq(text, "a\nb\tc");
}

Test(term_safe, a_stream_holds_a_sequence_cut_short)
{
    static const struct {
        const char *s;
        size_t keep;
    } rows[] = {
        {"", 0},
        {"abc", 0},
        {"a\xc2", 1},        /* C2 of a two-byte sequence */
        {"a\xc2\x9b", 0},    /* complete */
        {"\xe6", 1},         /* three-byte lead */
        {"\xe6\x9c", 2},     /* two of three */
        {"\xe6\x9c\x8d", 0}, /* complete */
        {"\xf0\x9f\x92", 3}, /* three of four */
        {"\x80\x80\x80", 0}, /* stray continuations: nothing to wait */
        {"\xff", 0},         /* never UTF-8 */
        {"\xc2\x80\x80", 0}, /* C2 80 then a stray one */
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(rows); i++)
        cr_assert_eq(lb_utf8_partial_tail(rows[i].s, strlen(rows[i].s)),
                     rows[i].keep, "row %zu", i);
}

/* ---- lb_buf -------------------------------------------------------------- */

Test(buf, puts_big_endian_fields)
{
    struct lb_buf b = {0};
    static const uint8_t want[] = {
        0x7f,                                           /* u8 */
        0x12, 0x34,                                     /* be16 */
        0xde, 0xad, 0xbe, 0xef,                         /* be32 */
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* be64 */
        0x00, 0x03, 'a',  'b',  'c',                    /* str16 */
        'x',  'y',                                      /* bytes */
    };

    lb_buf_put_u8(&b, 0x7f);
    lb_buf_put_be16(&b, 0x1234);
    lb_buf_put_be32(&b, 0xdeadbeef);
    lb_buf_put_be64(&b, 0x0102030405060708ull);
    lb_buf_put_str16(&b, "abcdef", 3);
    lb_buf_append(&b, "xy", 2);
    lb_buf_append(&b, NULL, 0);
    cr_assert_eq(b.len, sizeof want);
    cr_assert_arr_eq(b.data, want, sizeof want);
    cr_assert_eq(lb_load_be64(b.data + 7), 0x0102030405060708ull);
    lb_buf_free(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);
}

Test(buf, grows_keeps_content_and_resets)
{
    struct lb_buf b = {0};
    uint8_t chunk[1000];
    size_t cap;

    for (int i = 0; i < 1000; i++)
        chunk[i] = (uint8_t)(i * 7);
    for (int i = 0; i < 300; i++)
        lb_buf_append(&b, chunk, sizeof chunk);
    cr_assert_eq(b.len, 300000);
    cr_assert_geq(b.cap, b.len);
    for (int i = 0; i < 300; i++)
        cr_assert_arr_eq(b.data + (size_t)i * 1000, chunk, sizeof chunk);

    cap = b.cap;
    lb_buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, cap, "reset keeps the allocation");
    lb_buf_reserve(&b, cap);
    cr_assert_eq(b.cap, cap, "no growth when the capacity suffices");
    lb_buf_reserve(&b, cap + 1);
    cr_assert_gt(b.cap, cap);
    lb_buf_free(&b);
    lb_buf_free(&b); /* idempotent */
}

static void
cleanup_buf_scope(void)
{
    CLEANUP_BUF struct lb_buf b = {0};
    CLEANUP_FREE char *s = lb_xstrdup("freed by the cleanup attribute");

    lb_buf_append(&b, s, strlen(s));
}

Test(buf, cleanup_macros_release_memory)
{
    /* Under ASan/LSan a leak here fails the test run. */
    cleanup_buf_scope();
}

Test(misc, load_store_helpers)
{
    uint8_t b[8];

    lb_store_be16(b, 0xA1B2);
    cr_assert_eq(b[0], 0xA1);
    cr_assert_eq(lb_load_be16(b), 0xA1B2);
    lb_store_be32(b, 0x01020304);
    cr_assert_eq(b[3], 0x04);
    cr_assert_eq(lb_load_be32(b), 0x01020304);
    lb_store_be64(b, 0xF1F2F3F4F5F6F7F8ull);
    cr_assert_eq(b[0], 0xF1);
    cr_assert_eq(b[7], 0xF8);
    cr_assert_eq(lb_load_be64(b), 0xF1F2F3F4F5F6F7F8ull);
}

Test(misc, checked_arithmetic)
{
    uint32_t r32;
    size_t rs;

    cr_assert(lb_mul_overflow(0x08000000u, 32u, &r32));
    cr_assert_not(lb_mul_overflow(0x07FFFFFFu, 32u, &r32));
    cr_assert_eq(r32, 0xFFFFFFE0u);
    cr_assert(lb_add_overflow(SIZE_MAX, (size_t)1, &rs));
}
