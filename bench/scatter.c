/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench/scatter.c: the benchmarks' change generator, run inside the test
 * guest (built static by bench/lib.sh, copied in through the guest agent).
 * It rewrites COUNT distinct 4 KiB blocks inside the existing files under
 * DIR, in place, the way a database or a log rewrite touches a disk:
 *
 *   scatter DIR COUNT SEED RANDOM_PCT [HOT_SHARE HOT_PCT]
 *
 * The blocks are drawn uniformly (fixed seed) over every whole 4 KiB block
 * of every regular file under DIR (one filesystem; DIR/wl, the workload's
 * directory, and lost+found are left out); with HOT_SHARE and HOT_PCT,
 * HOT_SHARE% of them are drawn from the hot files only: HOT_PCT% of the
 * files, the same ones whatever the seed (a file is hot by a hash of its
 * path), the way a day's changes come back to the same files. RANDOM_PCT of
 * them get random bytes (incompressible); the others keep their own content but
 * for 64 random bytes at a random place (compressible like the disk's own data,
 * never what was there). No other file is read: reads of other files
 * would dirty their inodes (atime) and make the guest's freeze write them.
 * Each file is written with pwrite and fsync'd; then
 * "scatter: BLOCKS FILES RANDOM EDITED" is printed.
 * Exit 0 on success, 1 on any error (with a message on stderr), 2 on
 * usage. Not part of livebackup: it is bench/ tooling only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLK 4096u

struct file {
    char *path;
    uint64_t first; /* global index of its first block */
    uint64_t nblk;
};

static struct file *files;
static size_t nfiles, capfiles;
static uint64_t total;
static uint64_t *hot; /* global indices of the hot files' first blocks */
static size_t nhot;
static uint64_t hot_total;
static unsigned long hot_pct;
static const char *skip_wl, *skip_lf;
static uint64_t rng_state;

static uint64_t
rng(void)
{
    /* xorshift64*: fast, good enough for picking blocks and filling them */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static int
visit(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)f;
    if (type == FTW_D &&
        (strcmp(path, skip_wl) == 0 || strcmp(path, skip_lf) == 0))
        return FTW_SKIP_SUBTREE;
    if (type != FTW_F || !S_ISREG(st->st_mode) || st->st_size < (off_t)BLK)
        return FTW_CONTINUE;
    if (nfiles == capfiles) {
        capfiles = capfiles ? capfiles * 2 : 4096;
        files = realloc(files, capfiles * sizeof *files);
        if (!files) {
            perror("scatter: realloc");
            exit(1);
        }
    }
    files[nfiles].path = strdup(path);
    files[nfiles].first = total;
    files[nfiles].nblk = (uint64_t)st->st_size / BLK;
    total += files[nfiles].nblk;
    nfiles++;
    return FTW_CONTINUE;
}

/* FNV-1a of the path: whether a file is hot does not depend on the seed. */
static bool
is_hot(const char *path)
{
    uint64_t h = 14695981039346656037ull;

    for (; *path; path++)
        h = (h ^ (unsigned char)*path) * 1099511628211ull;
    return h % 100 < hot_pct;
}

/* A block drawn uniformly from the hot files' blocks. */
static uint64_t
hot_block(void)
{
    uint64_t r = rng() % hot_total;

    for (size_t i = 0; i < nhot; i++) {
        const struct file *f = &files[hot[i]];
        if (r < f->nblk)
            return f->first + r;
        r -= f->nblk;
    }
    return 0;
}

/* The file holding global block g (binary search). */
static size_t
file_of(uint64_t g)
{
    size_t lo = 0, hi = nfiles;

    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (files[mid].first <= g)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
    static unsigned char buf[BLK];
    char wl[4096], lf[4096];
    uint64_t count, *pick, nrand = 0, nedit = 0, nf = 0;
    unsigned long pct, hot_share = 0;
    uint8_t *used;
    int fd = -1;
    size_t cur = (size_t)-1;

    if (argc != 5 && argc != 7) {
        fprintf(
            stderr,
            "usage: scatter DIR COUNT SEED RANDOM_PCT [HOT_SHARE HOT_PCT]\n");
        return 2;
    }
    if (argc == 7) {
        hot_share = strtoul(argv[5], NULL, 10);
        hot_pct = strtoul(argv[6], NULL, 10);
    }
    count = strtoull(argv[2], NULL, 10);
    rng_state = strtoull(argv[3], NULL, 10) * 0x9e3779b97f4a7c15ull + 1;
    pct = strtoul(argv[4], NULL, 10);
    snprintf(wl, sizeof wl, "%s/wl", argv[1]);
    snprintf(lf, sizeof lf, "%s/lost+found", argv[1]);
    skip_wl = wl;
    skip_lf = lf;
    if (nftw(argv[1], visit, 64, FTW_PHYS | FTW_MOUNT | FTW_ACTIONRETVAL) < 0) {
        perror("scatter: nftw");
        return 1;
    }
    if (total < count * 2 || pct > 100) {
        fprintf(stderr, "scatter: %llu blocks in files under %s, %llu wanted\n",
                (unsigned long long)total, argv[1], (unsigned long long)count);
        return 1;
    }
    if (hot_share) {
        hot = calloc(nfiles, sizeof *hot);
        for (size_t i = 0; hot && i < nfiles; i++)
            if (is_hot(files[i].path)) {
                hot[nhot++] = i;
                hot_total += files[i].nblk;
            }
        if (hot_total < count * hot_share / 100 * 2) {
            fprintf(stderr,
                    "scatter: the hot files hold %llu blocks, too few\n",
                    (unsigned long long)hot_total);
            return 1;
        }
    }
    used = calloc(total / 8 + 1, 1);
    pick = malloc(count * sizeof *pick);
    if (!used || !pick) {
        perror("scatter: malloc");
        return 1;
    }
    for (uint64_t k = 0; k < count;) {
        uint64_t g = rng() % 100 < hot_share ? hot_block() : rng() % total;
        if (used[g / 8] & (1u << (g % 8)))
            continue;
        used[g / 8] |= (uint8_t)(1u << (g % 8));
        pick[k++] = g;
    }
    qsort(pick, count, sizeof *pick, cmp_u64);
    for (uint64_t k = 0; k < count; k++) {
        size_t i = file_of(pick[k]);
        off_t off;
        if (i != cur) {
            if (fd >= 0 && (fsync(fd) < 0 || close(fd) < 0)) {
                perror("scatter: fsync");
                return 1;
            }
            fd = open(files[i].path, O_RDWR | O_CLOEXEC);
            if (fd < 0) {
                fprintf(stderr, "scatter: %s: %s\n", files[i].path,
                        strerror(errno));
                return 1;
            }
            cur = i;
            nf++;
        }
        off = (off_t)((pick[k] - files[i].first) * BLK);
        if (rng() % 100 < pct) {
            for (size_t j = 0; j < BLK; j += 8) {
                uint64_t v = rng();
                memcpy(buf + j, &v, 8);
            }
            nrand++;
        } else {
            /* its own data, 64 random bytes (8-aligned) changed */
            size_t at = (size_t)(rng() % (BLK / 64)) * 64;
            if (pread(fd, buf, BLK, off) != (ssize_t)BLK) {
                fprintf(stderr, "scatter: read %s: %s\n", files[i].path,
                        strerror(errno));
                return 1;
            }
            for (size_t j = 0; j < 64; j += 8) {
                uint64_t v = rng();
                memcpy(buf + at + j, &v, 8);
            }
            nedit++;
        }
        if (pwrite(fd, buf, BLK, off) != (ssize_t)BLK) {
            fprintf(stderr, "scatter: write %s: %s\n", files[i].path,
                    strerror(errno));
            return 1;
        }
    }
    if (fd >= 0 && (fsync(fd) < 0 || close(fd) < 0)) {
        perror("scatter: fsync");
        return 1;
    }
    printf("scatter: %llu %llu %llu %llu\n", (unsigned long long)count,
           (unsigned long long)nf, (unsigned long long)nrand,
           (unsigned long long)nedit);
    return 0;
}
