/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: store_be_index_value_set (store/backend.c), which a
 * listing of one set runs on every value of a RADOS repository's index
 * (FORMAT.md, "Index of manifests"): bytes a hostile repository may hold,
 * not a C string. The input is the value.
 *
 * Oracle beyond "no crash": a set found lies inside the value, is not
 * empty, and is exactly what follows its second space; none is found in
 * a value of fewer than two spaces or ending at the second. And the
 * writer's side: the input taken as a set name, a value made of it
 * (store_be_index_value) names it again if it is a valid name, and names
 * none otherwise.
 */
#include "fuzz/fuzz.h"
#include "proto/proto.h"
#include "store/backend.h"

#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *val = (const char *)data;
    const char *set, *sp1, *sp2 = NULL;
    size_t len, slen;
    char v[256];
    char *name;

    set = store_be_index_value_set(val, size, &len);
    sp1 = memchr(val, ' ', size);
    if (sp1)
        sp2 = memchr(sp1 + 1, ' ', size - (size_t)(sp1 + 1 - val));
    if (!sp2 || sp2 + 1 == val + size) {
        CHECK(set == NULL && len == 0);
    } else {
        CHECK(set == sp2 + 1 && len > 0);
        CHECK(set + len == val + size);
    }

    if (memchr(data, '\0', size))
        return 0;
    name = strndup(val, size);
    if (!name)
        return 0;
    store_be_index_value(v, sizeof v, 1767225600, "0123456789abcdef", name);
    set = store_be_index_value_set(v, strlen(v), &slen);
    if (proto_name_valid(name, size))
        CHECK(set && slen == size && memcmp(set, name, size) == 0);
    else
        CHECK(set == NULL);
    free(name);
    return 0;
}
