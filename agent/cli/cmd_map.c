/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * map: one disk of a backup as a read-only NBD export, served by nbdkit
 * with our plugin until stopped (SIGTERM), in the foreground or with
 * --daemon in the background (--pid-file says which process to stop).
 */
#include "agent/cli/cli.h"
#include "agent/client/client.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

/* A pid file that names an export still running is not taken over: the
 * new one would leave that export without the name it is stopped by. */
static int
pidfile_free(const char *path)
{
    pid_t pid = path ? agent_export_pid(path) : 0;

    if (pid == 0)
        return 0;
    lb_fail(EEXIST, "%s names an export that is still running (pid %ld)", path,
            (long)pid);
    lb_error_hint("stop it first (kill %ld), or give another --pid-file",
                  (long)pid);
    return -1;
}

int
cmd_map(int argc, char **argv)
{
    struct cli_getopt g;
    struct agent_export e = {.spec = "latest"};
    int c;
    long port;

    cli_getopt("map", &g);
    optind = 1;
    while ((c = cli_getopt_next(&g, argc, argv)) != -1) {
        if (c == CLI_OPT_ERROR)
            return 2;
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
            /* sockaddr_un's 108 bytes, with its NUL: nbdkit refuses more */
            if (strlen(optarg) > 107)
                return cli_usage("map",
                                 "--socket: %zu bytes, at most 107 "
                                 "for a socket's path",
                                 strlen(optarg));
            e.socket = optarg;
            break;
        case 'p':
            /* nbdkit took 0 (a port nobody is told) and 70000 */
            if (lb_parse_long(optarg, 1, 65535, &port) < 0)
                return cli_usage("map",
                                 "--port '%s': a TCP port from 1 to "
                                 "65535",
                                 optarg);
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
            if (lb_parse_size(optarg, &e.cache_bytes) < 0)
                return cli_usage("map", "--cache-size '%s': a size like 64M",
                                 optarg);
            break;
        case 'h':
            return cli_help("map");
        default:
            return cli_usage("map", NULL);
        }
    }
    if (optind != argc)
        return cli_usage("map", "unexpected argument '%s'", argv[optind]);
    if (!e.name)
        return cli_missing("map", "--name NAME");
    if (!e.disk)
        return cli_missing("map", "--disk DISK");
    if (!e.socket == !e.port)
        return cli_usage("map", "give one of --socket PATH and --port N");
    if (!(e.url = cli_need_repo("map", e.url)))
        return 2;
    e.verbose = lb_log_get_level() >= LB_LOG_DEBUG;
    if (pidfile_free(e.pidfile) < 0)
        return agent_fail();
    /* --daemon returns once the export serves and its pid file is there
     * (nbdkit's parent exits before its child writes it). */
    if (e.daemon)
        return agent_export_start(&e, NULL) < 0 ? agent_fail() : 0;
    agent_export_exec(&e);
    return agent_fail();
}
