/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Libraries loaded when first needed (dl.h): dlopen by the soname the
 * package installs, then each function by name, all of them before any is
 * used. A missing library or function fails the operation that needed it,
 * with the package to install, never the process.
 */
#include "common/dl.h"

#include "common/common.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void
load(struct lb_dl *d)
{
    void *h = dlopen(d->soname, RTLD_NOW | RTLD_LOCAL);

    if (!h) {
        snprintf(d->error, sizeof d->error, "%s", dlerror());
        return;
    }
    for (size_t i = 0; i < d->n; i++) {
        d->fn[i] = dlsym(h, d->names[i]);
        if (!d->fn[i]) {
            snprintf(d->error, sizeof d->error, "it has no function %s",
                     d->names[i]);
            return;
        }
    }
    d->loaded = true;
}

int
lb_dl_load(struct lb_dl *d, const char *what)
{
    bool ok;

    pthread_mutex_lock(&lock);
    if (!d->tried) {
        d->tried = true;
        load(d);
    }
    ok = d->loaded;
    pthread_mutex_unlock(&lock);
    if (ok)
        return 0;
    lb_fail(ENOSYS, "cannot load %s for %s: %s", d->soname, what, d->error);
    lb_error_hint("install Debian's %s package (apt install %s)", d->package,
                  d->package);
    return -1;
}
