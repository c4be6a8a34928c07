/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Replay driver: runs a libFuzzer target's LLVMFuzzerTestOneInput on every
 * file of the directories (or the files) named on the command line, so the
 * committed corpora are replayed by every normal build's `ctest`, with any
 * compiler and with or without sanitizers. A crash or sanitizer report
 * fails the test; so does finding no input at all (an empty corpus would
 * otherwise pass without testing anything).
 */
#include "fuzz/fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Run one file; -1 if it cannot be read. */
static int
replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct stat sb;
    uint8_t *buf;

    if (!f || fstat(fileno(f), &sb) < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    /* Exactly sized, so ASan catches a read past the input. */
    buf = malloc(sb.st_size ? (size_t)sb.st_size : 1);
    if (!buf || fread(buf, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
        fprintf(stderr, "replay: %s: short read\n", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)sb.st_size);
    free(buf);
    return 0;
}

static int
skip_entry(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Replay a file or every regular file of a directory, in name order.
 * Returns the number of inputs run, or -1 on error. */
static long
replay_path(const char *path)
{
    struct dirent **names;
    struct stat sb;
    long n = 0;
    int count;

    if (stat(path, &sb) < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode))
        return replay_file(path) < 0 ? -1 : 1;
    count = scandir(path, &names, skip_entry, alphasort);
    if (count < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < count; i++) {
        size_t len = strlen(path) + strlen(names[i]->d_name) + 2;
        char *p = malloc(len);
        struct stat fs;

        snprintf(p, len, "%s/%s", path, names[i]->d_name);
        if (stat(p, &fs) == 0 && S_ISREG(fs.st_mode)) {
            if (replay_file(p) < 0)
                n = -1;
            else if (n >= 0)
                n++;
        }
        free(p);
        free(names[i]);
    }
    free(names);
    return n;
}

int
main(int argc, char **argv)
{
    long total = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        long n = replay_path(argv[i]);
        if (n < 0)
            return 1;
        total += n;
    }
    printf("%s: replayed %ld inputs\n", argv[0], total);
    if (total == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    return 0;
}
