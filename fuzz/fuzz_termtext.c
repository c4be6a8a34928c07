/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: lb_term_safe_n, lb_term_line, lb_text_cols and
 * lb_utf8_partial_tail (common/util.c), what every human output of a
 * repository's text (set names, metadata, the saved XML, a server's
 * messages, ssh's stderr) goes through before it reaches a terminal.
 *
 * Oracle beyond "no crash": the output is well-formed UTF-8 with no C0
 * control but newline and tab (none in the one-line form), no DEL and no
 * C1 control; a well-formed input without controls comes out unchanged;
 * the escapes' columns are counted (lb_text_cols of the input is that of
 * its one-line form); a stream cut anywhere and escaped piece by piece,
 * holding back the cut-short tail as the ssh relay does, prints what the
 * whole input prints.
 */
#include "common/common.h"
#include "fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

/* Is s (len bytes) well-formed UTF-8 without C0 (but \n and \t when
 * text), DEL or C1? */
static bool
clean(const unsigned char *s, size_t len, bool text)
{
    for (size_t i = 0; i < len;) {
        unsigned c = s[i], n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        unsigned cp = n == 1 ? c : c & (0x7f >> n);
        if ((c >= 0x80 && c < 0xc2) || c > 0xf4 || i + n > len)
            return false;
        for (unsigned k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        if ((cp < 0x20 && !(text && (cp == '\n' || cp == '\t'))) ||
            cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
            return false;
        i += n;
    }
    return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = lb_xmalloc(size + 1), *safe, *line, *cut;
    size_t nul, at, keep;
    struct lb_buf parts = {0};

    memcpy(s, data, size);
    s[size] = '\0';
    nul = strlen(s); /* the C-string functions see up to the first NUL */

    safe = lb_term_safe_n((const char *)data, size);
    CHECK(clean((const unsigned char *)safe, strlen(safe), true));
    if (clean(data, size, true) && nul == size)
        CHECK(strcmp(safe, s) == 0);

    line = lb_term_line(s);
    CHECK(clean((const unsigned char *)line, strlen(line), false));
    CHECK(lb_text_cols(s) == lb_text_cols(line));
    if (clean((const unsigned char *)s, nul, false))
        CHECK(strcmp(line, s) == 0);

    /* the relay: cut at one point, hold the tail, escape each piece */
    at = size ? data[0] % (size + 1) : 0;
    keep = lb_utf8_partial_tail((const char *)data, at);
    CHECK(keep <= 3 && keep <= at);
    cut = lb_term_safe_n((const char *)data, at - keep);
    lb_buf_append(&parts, cut, strlen(cut));
    free(cut);
    cut = lb_term_safe_n((const char *)data + at - keep, size - at + keep);
    lb_buf_append(&parts, cut, strlen(cut) + 1);
    free(cut);
    CHECK(strcmp((const char *)parts.data, safe) == 0);

    lb_buf_free(&parts);
    free(line);
    free(safe);
    free(s);
    return 0;
}
