/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: instant_parse (the journal of an instant restore,
 * agent/live/instant_state.c) on the input bytes.
 *
 * Oracle beyond "no crash, no leak": an accepted journal formats to text
 * that parses again to a journal that formats to the same text.
 */
#include "agent/live/instant.h"
#include "fuzz/fuzz.h"

#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct instant_state st, again;
    char *t1, *t2;

    if (instant_parse((const char *)data, size, &st) < 0)
        return 0;
    t1 = instant_format(&st);
    CHECK(instant_parse(t1, strlen(t1), &again) == 0);
    t2 = instant_format(&again);
    CHECK(strcmp(t1, t2) == 0);
    free(t1);
    free(t2);
    instant_free(&st);
    instant_free(&again);
    return 0;
}
