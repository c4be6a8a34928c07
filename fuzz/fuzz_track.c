/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: track_parse (the agent's per-domain tracking state,
 * agent/live/track.c) on the input bytes.
 *
 * Oracle beyond "no crash, no leak": an accepted state formats to text
 * that parses again to a state that formats to the same text.
 */
#include "agent/live/track.h"
#include "fuzz/fuzz.h"

#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct track_state st, again;
    char *t1, *t2;

    if (track_parse((const char *)data, size, &st) < 0)
        return 0;
    t1 = track_format(&st);
    if (track_parse(t1, strlen(t1), &again) < 0)
        __builtin_trap();
    t2 = track_format(&again);
    if (strcmp(t1, t2) != 0)
        __builtin_trap();
    free(t1);
    free(t2);
    track_free(&st);
    track_free(&again);
    return 0;
}
