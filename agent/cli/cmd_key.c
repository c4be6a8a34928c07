/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * key: an encrypted repository's key (store/FORMAT.md, "Key files").
 *
 *   livebackup key export --repo R --to FILE
 *   livebackup key import --repo R --from FILE
 *   livebackup key change-passphrase --repo R [--new-passphrase-file F]
 *
 * Export writes the wrapped master key (useless without the passphrase)
 * for safekeeping; import puts such a copy back (into the repository, or
 * this host's key file for a keyfile repository); change-passphrase wraps
 * the same key again, so every backup stays readable.
 */
#include "agent/cli/cli.h"
#include "agent/client/client.h"

#include <getopt.h>
#include <string.h>

static int
key_done(const char *what, const char *repo, const char *where)
{
    if (agent_opts.json) {
        struct proto_kv kv = {0};
        proto_kv_set(&kv, "action", what);
        proto_kv_set(&kv, "repo", repo);
        if (where)
            proto_kv_set(&kv, "file", where);
        agent_event("key", &kv);
        proto_kv_free(&kv);
    } else if (strcmp(what, "export") == 0) {
        printf("exported the key of %s to %s (keep it apart from the "
               "repository; it is useless without the passphrase)\n",
               repo, where);
    } else if (strcmp(what, "import") == 0) {
        printf("imported the key of %s from %s\n", repo, where);
    } else {
        printf("changed the passphrase of the key of %s (%s); every backup "
               "stays readable with the new one\n",
               repo, where);
    }
    return 0;
}

/* The subcommand and its options: 0, or a usage error naming the
 * problem. */
static int
key_check(const char *what, const char *to, const char *from, int nargs)
{
    if (nargs > 0)
        return cli_usage("key", "unexpected argument");
    if (strcmp(what, "export") == 0) {
        if (!to)
            return cli_missing("key", "export: --to FILE");
        return from ? cli_usage("key", "export takes --to, not --from") : 0;
    }
    if (strcmp(what, "import") == 0) {
        if (!from)
            return cli_missing("key", "import: --from FILE");
        return to ? cli_usage("key", "import takes --from, not --to") : 0;
    }
    if (strcmp(what, "change-passphrase") == 0)
        return to || from ? cli_usage("key", "change-passphrase takes no "
                                             "--to or --from")
                          : 0;
    return cli_usage("key",
                     "unknown subcommand '%s' (export, import, "
                     "change-passphrase)",
                     what);
}

int
cmd_key(int argc, char **argv)
{
    struct cli_getopt g;
    const char *repo = NULL, *to = NULL, *from = NULL, *what;
    struct agent_repo *r;
    CLEANUP_FREE char *where = NULL;
    int c, rc;

    if (argc >= 2 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return cli_help("key");
    if (argc < 2 || argv[1][0] == '-')
        return cli_usage("key", "export, import or change-passphrase?");
    what = argv[1];
    cli_getopt("key", &g);
    optind = 2;
    while ((c = cli_getopt_next(&g, argc, argv)) != -1) {
        if (c == CLI_OPT_ERROR)
            return 2;
        switch (c) {
        case 'r':
            repo = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 'f':
            from = optarg;
            break;
        case 'h':
            return cli_help("key");
        default:
            return cli_usage("key", NULL);
        }
    }
    if ((rc = key_check(what, to, from, argc - optind)) != 0)
        return rc;
    if (!(repo = cli_need_repo("key", repo)))
        return 2;
    r = agent_repo_connect(repo);
    if (!r)
        return agent_fail();
    /* Replacing the repository's key file needs a writer's session. */
    rc = agent_repo_open(r, strcmp(what, "export") == 0 ? PROTO_OPEN_READ
                                                        : PROTO_OPEN_WRITE);
    if (rc == 0 && strcmp(what, "export") == 0)
        rc = agent_key_export(r, to);
    else if (rc == 0 && strcmp(what, "import") == 0)
        rc = agent_key_import(r, from);
    else if (rc == 0)
        rc = agent_key_change_passphrase(r, &where);
    agent_repo_close(r);
    if (rc < 0)
        return agent_fail();
    return key_done(what, repo, to ? to : from ? from : where);
}
