/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Retention commands: prune (which backups to keep, per set, under
 * keep-last/hourly/daily/weekly/monthly/yearly rules) and gc (reclaim the
 * chunks no backup uses). The decisions and the work happen in backupd
 * (store/prune.c, store/gc.c); this file parses options, makes one request
 * through the client and prints what comes back.
 */
#include "agent/cli/cli.h"
#include "agent/client/client.h"

#include <getopt.h>
#include <string.h>

#define MAX_KEEP 1000000

struct retention_args {
    const char *repo, *name;
    uint64_t keep[AGENT_KEEP_NRULES];
    bool dry_run;
};

static int
parse_keep(const char *opt, const char *arg, uint64_t *out)
{
    long v;

    if (lb_parse_long(arg, 0, MAX_KEEP, &v) < 0) {
        fprintf(stderr,
                "livebackup: --keep-%s %s: expected a count from 0 to %d\n",
                opt, arg, MAX_KEEP);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

/*
 * prune's rules: those of the command line, or if it gave none, the keep-*
 * settings (livebackup.conf, LIVEBACKUP_KEEP_*) as a whole, so that a
 * --keep-* option never mixes with a configured rule it did not name.
 */
static int
prune_check(struct retention_args *a, bool keep_given)
{
    bool any = false;

    for (size_t i = 0; !keep_given && i < AGENT_KEEP_NRULES; i++) {
        const char *v =
            cli_config_get((enum cli_conf_key)(CLI_CONF_KEEP_LAST + i));
        if (v && parse_keep(agent_keep_rules[i], v, &a->keep[i]) < 0)
            return 2;
    }
    for (size_t i = 0; i < AGENT_KEEP_NRULES; i++)
        any |= a->keep[i] > 0;
    if (!any)
        return cli_usage("prune", "give at least one --keep-* rule above 0, "
                                  "or keep-* in livebackup.conf (the latest "
                                  "backup of each set is always kept)");
    return 0;
}

/* Parse the options of prune (keep rules allowed) or gc. Returns 0, or the
 * exit code to return (2 on usage). */
static int
parse_retention(int argc, char **argv, bool prune, struct retention_args *a)
{
    const char *cmd = prune ? "prune" : "gc";
    struct cli_getopt g;
    bool keep_given = false;
    int c;

    memset(a, 0, sizeof *a);
    cli_getopt(cmd, &g);
    optind = 1;
    while ((c = cli_getopt_next(&g, argc, argv)) != -1) {
        if (c == CLI_OPT_ERROR)
            return 2;
        if (prune && c >= 2000 && c < 2000 + AGENT_KEEP_NRULES) {
            if (parse_keep(agent_keep_rules[c - 2000], optarg,
                           &a->keep[c - 2000]) < 0)
                return 2;
            keep_given = true;
            continue;
        }
        switch (c) {
        case 'r':
            a->repo = optarg;
            break;
        case 'n':
            a->name = optarg;
            break;
        case 'd':
            a->dry_run = true;
            break;
        case 'h':
            exit(cli_help(cmd));
        default:
            return cli_usage(cmd, NULL);
        }
    }
    if (optind < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    if (!(a->repo = cli_need_repo(cmd, a->repo)))
        return 2;
    return prune ? prune_check(a, keep_given) : 0;
}

/* What prune prints as its decisions arrive. */
struct prune_out {
    bool dry_run;
    uint64_t kept, removed;
};

/* One PRUNE_ENTRY (the client checked it holds id, name, and action keep
 * or remove): printed, counted. */
static int
prune_entry(void *opaque, struct proto_kv *e)
{
    struct prune_out *o = opaque;
    const char *id, *name, *reasons;
    bool keep = strcmp(proto_kv_get(e, "action"), "keep") == 0;
    char when[32];

    (*(keep ? &o->kept : &o->removed))++;
    if (agent_opts.json) {
        proto_kv_set_u64(e, "dry_run", o->dry_run);
        agent_event("prune", e);
        return 0;
    }
    cli_kv_for_terminal(e);
    id = proto_kv_get(e, "id");
    name = proto_kv_get(e, "name");
    reasons = proto_kv_get(e, "reasons");
    lb_format_time(when, sizeof when, (int64_t)proto_kv_get_u64(e, "time", 0));
    if (keep)
        printf("keep   %s  %s  %s  (reasons: %s)\n", id, when, name,
               reasons && *reasons ? reasons : "?");
    else
        printf("remove %s  %s  %s\n", id, when, name);
    return 0;
}

int
cmd_prune(int argc, char **argv)
{
    struct retention_args a;
    struct agent_repo *r;
    struct agent_prune_req q = {0};
    struct prune_out o = {0};
    int rc = parse_retention(argc, argv, true, &a);

    if (rc)
        return rc;
    r = agent_repo_connect(a.repo);
    if (!r)
        return agent_fail();
    q.name = a.name;
    memcpy(q.keep, a.keep, sizeof q.keep);
    q.dry_run = o.dry_run = a.dry_run;
    /* A dry run changes nothing: it needs no exclusive lock, so it works
     * while backups run. */
    if (agent_repo_open(r, a.dry_run ? PROTO_OPEN_READ : PROTO_OPEN_ADMIN) <
            0 ||
        agent_repo_prune(r, &q, prune_entry, &o) < 0)
        goto fail;
    agent_repo_close(r);
    if (agent_opts.json) {
        struct proto_kv kv = {0};
        proto_kv_set_u64(&kv, "kept", o.kept);
        proto_kv_set_u64(&kv, "removed", o.removed);
        proto_kv_set_u64(&kv, "dry_run", a.dry_run);
        agent_event("summary", &kv);
        proto_kv_free(&kv);
    } else if (a.dry_run) {
        printf("dry run: would keep %llu and remove %llu backup(s); nothing "
               "was changed\n",
               (unsigned long long)o.kept, (unsigned long long)o.removed);
    } else {
        printf("kept %llu and removed %llu backup(s)%s\n",
               (unsigned long long)o.kept, (unsigned long long)o.removed,
               o.removed ? "; livebackup gc reclaims their space" : "");
    }
    return 0;
fail:
    /* Entries already printed were applied: say so with the error. */
    if (o.removed && !a.dry_run && !agent_opts.json)
        printf("removed %llu backup(s) before the error\n",
               (unsigned long long)o.removed);
    agent_fail();
    agent_repo_close(r);
    return 1;
}

int
cmd_gc(int argc, char **argv)
{
    struct retention_args a;
    struct agent_repo *r;
    struct proto_kv end = {0};
    int rc = parse_retention(argc, argv, false, &a);

    if (rc)
        return rc;
    r = agent_repo_connect(a.repo);
    if (!r)
        return agent_fail();
    /* Shared, like a backup: gc runs while backups do. */
    if (agent_repo_open(r, PROTO_OPEN_WRITE) < 0 ||
        agent_repo_gc(r, a.dry_run, &end) < 0)
        goto fail;
    agent_repo_close(r);
    if (agent_opts.json) {
        agent_event("summary", &end);
    } else {
        char sz[16], cut[32];
        uint64_t recent = proto_kv_get_u64(&end, "chunks_recent", 0) +
                          proto_kv_get_u64(&end, "chunks_restored", 0);
        lb_human_size(sz, sizeof sz,
                      proto_kv_get_u64(&end, "bytes_reclaimed", 0));
        lb_format_time(cut, sizeof cut,
                       (int64_t)proto_kv_get_u64(&end, "cutoff", 0));
        printf(
            "%s %llu chunk(s), %s; kept %llu referenced chunk(s) and "
            "%llu unreferenced one(s) newer than %s (a running backup "
            "may use them: the next gc decides)\n",
            a.dry_run ? "dry run: would reclaim" : "reclaimed",
            (unsigned long long)proto_kv_get_u64(&end, "chunks_reclaimed", 0),
            sz,
            (unsigned long long)proto_kv_get_u64(&end, "chunks_referenced", 0),
            (unsigned long long)recent, cut);
    }
    proto_kv_free(&end);
    return 0;
fail:
    agent_fail();
    agent_repo_close(r);
    return 1;
}
