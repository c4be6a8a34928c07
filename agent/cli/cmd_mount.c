/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mount and umount: the backups of a repository as a read-only FUSE
 * filesystem, and the filesystems inside their disks (agent/map).
 */
#include "agent/cli/cli.h"
#include "agent/client/client.h"
#include "agent/map/map.h"

#include <getopt.h>
#include <string.h>

int
cmd_mount(int argc, char **argv)
{
    struct cli_getopt g;
    struct map_mount_opts o = {0};
    int c;

    cli_getopt("mount", &g);
    optind = 1;
    while ((c = cli_getopt_next(&g, argc, argv)) != -1) {
        if (c == CLI_OPT_ERROR)
            return 2;
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
        case 'A':
            o.fs = o.appliance = true;
            break;
        case 'f':
            o.foreground = true;
            break;
        case 'C':
            if (lb_parse_size(optarg, &o.cache_bytes) < 0)
                return cli_usage("mount", "--cache-size '%s': a size like 64M",
                                 optarg);
            break;
        case 'h':
            return cli_help("mount");
        default:
            return cli_usage("mount", NULL);
        }
    }
    if (optind == argc)
        return cli_missing("mount", "the mount point DIR");
    if (optind + 1 != argc)
        return cli_usage("mount", "one DIR at a time");
    if (!(o.url = cli_need_repo("mount", o.url)))
        return 2;
    o.dir = argv[optind];
    /* a stalled server: the read tries a new session, then fails (EIO),
     * rather than hang */
    agent_opts.io_watch = true;
    if (map_mount(&o) < 0)
        return agent_fail();
    return 0;
}

int
cmd_umount(int argc, char **argv)
{
    if (argc == 2 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return cli_help("umount");
    if (argc != 2 || argv[1][0] == '-')
        return cli_usage("umount", argc < 2 ? "the mount point DIR is required"
                                            : "expected only DIR");
    if (map_umount(argv[1]) < 0)
        return agent_fail();
    return 0;
}
