/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Which backend a repository argument names (backend.h): "rados:..." is a
 * RADOS pool, anything else a directory.
 */
#include "store/backend.h"

#include <string.h>

bool
store_be_is_rados(const char *repo)
{
    return strncmp(repo, "rados:", 6) == 0;
}
