/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mount and umount: the backups of a repository as a read-only FUSE
 * filesystem, and the filesystems inside their disks (agent/map).
 */
#include "agent/cli/cli.h"
#include "agent/map/map.h"

#include <getopt.h>
#include <string.h>

static const char mount_usage[] =
    "livebackup mount --repo R [--name NAME] [--backup ID] [--fs] "
    "[--foreground] [--cache-size SIZE] DIR";

int
cmd_mount(int argc, char **argv)
{
    static const struct option opts[] = {
        {"repo", required_argument, NULL, 'r'},
        {"name", required_argument, NULL, 'n'},
        {"backup", required_argument, NULL, 'b'},
        {"fs", no_argument, NULL, 'F'},
        {"foreground", no_argument, NULL, 'f'},
        {"cache-size", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        AGENT_COMMON_LONGOPTS,
        {0},
    };
    struct map_mount_opts o = {0};
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "vqhf", opts, NULL)) != -1) {
        int k = agent_common_opt(c, optarg);
        if (k < 0)
            return 2;
        if (k)
            continue;
        switch (c) {
        case 'r':
            o.url = optarg;
            break;
        case 'n':
            o.name = optarg;
            break;
        case 'b':
            o.spec = optarg;
            break;
        case 'F':
            o.fs = true;
            break;
        case 'f':
            o.foreground = true;
            break;
        case 'C':
            if (lb_parse_size(optarg, &o.cache_bytes) < 0) {
                fprintf(stderr, "livebackup: --cache-size: a size like 32M\n");
                return 2;
            }
            break;
        case 'h':
            printf("Usage: %s\n", mount_usage);
            return 0;
        default:
            fprintf(stderr, "Usage: %s\n", mount_usage);
            return 2;
        }
    }
    if (optind + 1 != argc || !o.url) {
        fprintf(stderr, "Usage: %s\n", mount_usage);
        return 2;
    }
    o.dir = argv[optind];
    if (map_mount(&o) < 0)
        return agent_fail();
    return 0;
}

int
cmd_umount(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "Usage: livebackup umount DIR\n");
        return 2;
    }
    if (map_umount(argv[1]) < 0)
        return agent_fail();
    return 0;
}
