/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * map: one disk of a backup as a read-only NBD export, served by nbdkit
 * with our plugin until stopped (SIGTERM), in the foreground or with
 * --daemon in the background (--pid-file says which process to stop).
 */
#include "agent/cli/cli.h"
#include "agent/client/client.h"

#include <getopt.h>
#include <string.h>

static const char usage[] =
    "livebackup map --repo R --name NAME [--backup ID|latest|TIME] --disk "
    "DISK\n"
    "       (--socket PATH | --port N [--bind ADDR]) [--daemon] "
    "[--pid-file FILE] [--cache-size SIZE]";

int
cmd_map(int argc, char **argv)
{
    static const struct option opts[] = {
        {"repo", required_argument, NULL, 'r'},
        {"name", required_argument, NULL, 'n'},
        {"backup", required_argument, NULL, 'b'},
        {"disk", required_argument, NULL, 'd'},
        {"socket", required_argument, NULL, 's'},
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'B'},
        {"daemon", no_argument, NULL, 'D'},
        {"pid-file", required_argument, NULL, 'P'},
        {"cache-size", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        AGENT_COMMON_LONGOPTS,
        {0},
    };
    struct agent_export e = {.spec = "latest"};
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        int k = agent_common_opt(c, optarg);
        if (k < 0)
            return 2;
        if (k)
            continue;
        switch (c) {
        case 'r':
            e.url = optarg;
            break;
        case 'n':
            e.name = optarg;
            break;
        case 'b':
            e.spec = optarg;
            break;
        case 'd':
            e.disk = optarg;
            break;
        case 's':
            e.socket = optarg;
            break;
        case 'p':
            e.port = optarg;
            break;
        case 'B':
            e.bind = optarg;
            break;
        case 'D':
            e.daemon = true;
            break;
        case 'P':
            e.pidfile = optarg;
            break;
        case 'C':
            if (lb_parse_size(optarg, &e.cache_bytes) < 0) {
                fprintf(stderr,
                        "livebackup: --cache-size %s: a size like "
                        "64M\n",
                        optarg);
                return 2;
            }
            break;
        case 'h':
            printf("Usage: %s\n", usage);
            return 0;
        default:
            fprintf(stderr, "Usage: %s\n", usage);
            return 2;
        }
    }
    if (optind != argc || !e.url || !e.disk || !e.name ||
        !e.socket == !e.port) {
        fprintf(stderr, "Usage: %s\n", usage);
        return 2;
    }
    e.verbose = lb_log_get_level() >= LB_LOG_DEBUG;
    agent_export_exec(&e);
    return agent_fail();
}
