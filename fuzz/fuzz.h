/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every fuzz target and the replay driver share: the libFuzzer entry
 * point, and CHECK for a target's oracle (a failed check is a crash that
 * libFuzzer records, in every build, with or without assertions).
 */
#ifndef LB_FUZZ_H
#define LB_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c))                                                              \
            __builtin_trap();                                                  \
    } while (0)

#endif
