/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backup-image and restore-image: the data path on plain disk images,
 * which the live VM backup and restore are built on.
 */
#include "agent/cli/cli.h"
#include "agent/client/client.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <string.h>

#define MAX_DISKS PROTO_MF_MAX_DISKS

static void
print_summary(const struct agent_backup_result *res, const char *name,
              size_t ndisks)
{
    const struct proto_kv *m = &res->meta;

    if (agent_opts.json) {
        struct proto_kv kv = {0};
        proto_kv_set_u64(&kv, "agent_bytes_sent", res->bytes_sent);
        agent_chunk_counts_kv(res, &kv);
        proto_kv_setf(&kv, "seconds", "%.3f", res->seconds);
        agent_event_merge("summary", m, &kv, NULL, NULL);
        proto_kv_free(&kv);
        return;
    }
    {
        char rd[16], snt[16], st[16], sz[16];
        double mbs = res->seconds > 0
                         ? (double)res->bytes_read / res->seconds / (1 << 20)
                         : 0;
        lb_human_size(rd, sizeof rd, res->bytes_read);
        lb_human_size(snt, sizeof snt, res->bytes_sent);
        lb_human_size(st, sizeof st, proto_kv_get_u64(m, "bytes_new", 0));
        lb_human_size(sz, sizeof sz, proto_kv_get_u64(m, "size", 0));
        printf("backup %s of %s: %s%s%s, %zu disk(s), %s\n", res->id, name,
               proto_kv_get(m, "kind") ? proto_kv_get(m, "kind") : "full",
               res->parent[0] ? " on " : "", res->parent, ndisks, sz);
        printf("  read %s in %.1f s (%.0f MiB/s), sent %s, stored %s new "
               "(%llu new chunks)\n",
               rd, res->seconds, mbs, snt, st,
               (unsigned long long)proto_kv_get_u64(m, "chunks_new", 0));
    }
}

struct image_args {
    const char *repo, *name;
    struct agent_disk_spec disks[MAX_DISKS];
    size_t ndisks;
    const char *since[MAX_DISKS];
    size_t nsince;
    const char *parent; /* --parent ID|auto (auto with --since) */
    bool force_share;
};

/* --disk NAME=PATH (NAME like vda). */
static int
add_disk(struct image_args *a, char *arg)
{
    char *eq = strchr(arg, '=');

    if (!eq || a->ndisks == MAX_DISKS ||
        !proto_disk_name_valid(arg, (size_t)(eq - arg))) {
        fprintf(stderr,
                "livebackup: --disk %s: expected NAME=PATH (NAME like vda)\n",
                arg);
        return -1;
    }
    *eq = '\0';
    a->disks[a->ndisks].name = arg;
    a->disks[a->ndisks].path = eq + 1;
    a->ndisks++;
    return 0;
}

/* --since LAYER (one disk) or --since DISK=LAYER, onto their disks; no
 * disk twice. */
static int
pair_since(struct image_args *a)
{
    for (size_t i = 0; i < a->nsince; i++) {
        const char *s = a->since[i], *eq = strchr(s, '=');
        size_t d;
        if (!eq || eq == s) {
            if (a->ndisks != 1) {
                fprintf(stderr, "livebackup: with several disks, use --since "
                                "DISK=LAYER\n");
                return -1;
            }
            a->disks[0].since = s;
            continue;
        }
        for (d = 0; d < a->ndisks; d++)
            if (strlen(a->disks[d].name) == (size_t)(eq - s) &&
                strncmp(a->disks[d].name, s, (size_t)(eq - s)) == 0)
                break;
        if (d == a->ndisks) {
            fprintf(stderr, "livebackup: --since %s names no --disk\n", s);
            return -1;
        }
        a->disks[d].since = eq + 1;
    }
    for (size_t i = 0; i < a->ndisks; i++)
        for (size_t k = 0; k < i; k++)
            if (strcmp(a->disks[k].name, a->disks[i].name) == 0) {
                fprintf(stderr, "livebackup: disk %s given twice\n",
                        a->disks[i].name);
                return -1;
            }
    return 0;
}

/* Returns 0, or the exit code to return (2 on usage, -1 for --help). */
static int
parse_backup_image(int argc, char **argv, struct image_args *a)
{
    struct cli_getopt g;
    int c;

    memset(a, 0, sizeof *a);
    cli_getopt("backup-image", &g);
    optind = 1;
    while ((c = cli_getopt_next(&g, argc, argv)) != -1) {
        if (c == CLI_OPT_ERROR)
            return 2;
        switch (c) {
        case 'r':
            a->repo = optarg;
            break;
        case 'n':
            a->name = optarg;
            break;
        case 'd':
            if (add_disk(a, optarg) < 0)
                return 2;
            break;
        case 's':
            if (a->nsince == MAX_DISKS)
                return cli_usage("backup-image", "more than %d --since",
                                 MAX_DISKS);
            a->since[a->nsince++] = optarg;
            break;
        case 'U':
            a->force_share = true;
            break;
        case 'p':
            a->parent = optarg;
            break;
        case 'S':
            cli_set_state_dir(optarg);
            break;
        case 'h':
            cli_help("backup-image");
            return -1;
        default:
            return cli_usage("backup-image", NULL);
        }
    }
    if (optind < argc)
        return cli_usage("backup-image", "unexpected argument '%s'",
                         argv[optind]);
    if (!a->name)
        return cli_missing("backup-image", "--name NAME");
    if (a->ndisks == 0)
        return cli_missing("backup-image", "--disk DISK=PATH");
    if (!(a->repo = cli_need_repo("backup-image", a->repo)))
        return 2;
    if (a->parent && (a->nsince == 0 ||
                      (strcmp(a->parent, "auto") != 0 &&
                       !proto_backup_id_valid(a->parent, strlen(a->parent))))) {
        fprintf(stderr, "livebackup: --parent ID|auto goes with --since (the "
                        "backup an incremental builds on)\n");
        return 2;
    }
    return pair_since(a) < 0 ? 2 : 0;
}

/*
 * The parent of an incremental (--since): --parent ID, a backup of the set;
 * or auto, the last backup of the set this host committed to this
 * repository (its record), and only while it is still the set's latest: a
 * newer one (another host's, a junk commit, or one of ours whose
 * acknowledgement was lost) makes which backup LAYER was the top of
 * ambiguous, an error rather than an incremental over the wrong data.
 */
static int
pick_parent(struct agent_repo *r, const char *name, const char *want,
            char *parent, size_t len)
{
    struct agent_list l = {0};
    char rec[PROTO_ID_LEN + 1] = "";
    const char *latest;
    bool found = false;
    int rc = -1;

    if (strcmp(want, "auto") != 0) {
        snprintf(rec, sizeof rec, "%s", want);
    } else {
        int got = agent_image_parent_get(agent_repo_id(r), name, rec);
        if (got < 0)
            return -1;
        if (got == 1) {
            lb_fail(ENOENT,
                    "this host has made no backup of %s to this repository "
                    "(none recorded in %s): an incremental needs the backup "
                    "--since's layer was the top of",
                    name, agent_state_dir());
            lb_error_hint("give it with --parent ID (livebackup list --name "
                          "%s), or back up in full: without --since",
                          name);
            return -1;
        }
    }
    if (agent_repo_list(r, name, &l) < 0)
        return -1;
    for (size_t i = 0; i < l.n; i++)
        found |= strcmp(proto_kv_get(&l.b[i], "id"), rec) == 0;
    latest = l.n ? proto_kv_get(&l.b[l.n - 1], "id") : "";
    if (!found) {
        lb_fail(ENOENT, "backup %s%s is not a backup of %s in the repository",
                rec,
                strcmp(want, "auto") == 0 ? " (the last this host made)" : "",
                name);
        lb_error_hint("back up in full (without --since), or give --parent ID "
                      "of a backup of %s",
                      name);
    } else if (strcmp(want, "auto") == 0 && strcmp(latest, rec) != 0) {
        lb_fail(EEXIST,
                "%s has a newer backup (%s) than the last this host made "
                "(%s): which of them --since's layer was the top of is "
                "ambiguous",
                name, latest, rec);
        lb_error_hint("give it with --parent ID; if %s is not yours, another "
                      "host backs up under the name %s (see livebackup show "
                      "--backup %s)",
                      latest, name, latest);
    } else {
        snprintf(parent, len, "%s", rec);
        rc = 0;
    }
    agent_list_free(&l);
    return rc;
}

int
cmd_backup_image(int argc, char **argv)
{
    struct image_args a;
    struct agent_repo *r = NULL;
    struct agent_backup_result res = {0};
    struct proto_kv meta = {0};
    char parent[PROTO_ID_LEN + 1] = "";
    bool incremental = false;
    int rc = parse_backup_image(argc, argv, &a);

    agent_opts.io_watch = true; /* the data path: a stalled server ends */
    if (rc)
        return rc < 0 ? 0 : rc;
    rc = 1;
    for (size_t i = 0; i < a.ndisks; i++) {
        char real[PATH_MAX];
        a.disks[i].force_share = a.force_share;
        incremental |= a.disks[i].since != NULL;
        proto_kv_set(&a.disks[i].meta, "source",
                     realpath(a.disks[i].path, real) ? real : a.disks[i].path);
    }
    proto_kv_set(&meta, "kind", incremental ? "incremental" : "full");
    proto_kv_set(&meta, "source", "image");
    /* The first disk opens (qemu-img info, qemu-nbd and its handshake)
     * while backupd starts and opens the repository; the key's KDF runs
     * on its thread while the parent is picked (agent_repo_unlock_start). */
    r = agent_repo_open_start(a.repo, PROTO_OPEN_WRITE);
    if (r && a.ndisks)
        a.disks[0].src = agent_source_open(a.disks[0].path, a.disks[0].since,
                                           a.disks[0].force_share);
    if (!r || (a.ndisks && !a.disks[0].src) || agent_repo_open_finish(r) < 0 ||
        agent_repo_unlock_start(r) < 0 ||
        (incremental && pick_parent(r, a.name, a.parent ? a.parent : "auto",
                                    parent, sizeof parent) < 0) ||
        agent_backup_disks(r, a.name, parent, a.disks, a.ndisks, &meta, NULL,
                           &res) < 0) {
        agent_fail();
    } else {
        /* Acknowledged: the parent of this host's next incremental. */
        if (agent_image_parent_set(agent_repo_id(r), a.name, res.id) < 0)
            lb_warn("backup %s is stored, but this host could not record "
                    "it as the parent of its next incremental: %s",
                    res.id, lb_error_msg());
        print_summary(&res, a.name, a.ndisks);
        rc = 0;
    }
    agent_backup_result_free(&res);
    proto_kv_free(&meta);
    for (size_t i = 0; i < a.ndisks; i++) {
        agent_source_close(a.disks[i].src); /* not taken: a failure before */
        proto_kv_free(&a.disks[i].meta);
    }
    agent_repo_close(r);
    return rc;
}

struct restore_image_args {
    const char *repo, *name, *spec, *disk, *to;
    enum agent_format fmt;
    bool force;
};

/* Returns 0, or the exit code to return (2 on usage, 0 for --help). */
static int
parse_restore_image(int argc, char **argv, struct restore_image_args *a)
{
    struct cli_getopt g;
    int c;

    memset(a, 0, sizeof *a);
    a->spec = "latest";
    a->fmt = AGENT_FMT_RAW;
    cli_getopt("restore-image", &g);
    optind = 1;
    while ((c = cli_getopt_next(&g, argc, argv)) != -1) {
        if (c == CLI_OPT_ERROR)
            return 2;
        switch (c) {
        case 'r':
            a->repo = optarg;
            break;
        case 'n':
            a->name = optarg;
            break;
        case 'b':
            a->spec = optarg;
            break;
        case 'd':
            a->disk = optarg;
            break;
        case 't':
            a->to = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "raw") == 0)
                a->fmt = AGENT_FMT_RAW;
            else if (strcmp(optarg, "qcow2") == 0)
                a->fmt = AGENT_FMT_QCOW2;
            else {
                fprintf(stderr, "livebackup: --format raw or qcow2\n");
                return 2;
            }
            break;
        case 'F':
            a->force = true;
            break;
        case 'h':
            cli_help("restore-image");
            return -1;
        default:
            return cli_usage("restore-image", NULL);
        }
    }
    if (optind < argc)
        return cli_usage("restore-image", "unexpected argument '%s'",
                         argv[optind]);
    if (!a->name)
        return cli_missing("restore-image", "--name NAME");
    if (!a->disk)
        return cli_missing("restore-image", "--disk DISK");
    if (!a->to)
        return cli_missing("restore-image", "--to FILE");
    return (a->repo = cli_need_repo("restore-image", a->repo)) ? 0 : 2;
}

int
cmd_restore_image(int argc, char **argv)
{
    struct restore_image_args a;
    struct agent_backup b = {0};
    int rc = parse_restore_image(argc, argv, &a);
    double secs;

    agent_opts.io_watch = true; /* the data path: a stalled server ends */
    if (rc)
        return rc < 0 ? 0 : rc;
    /* Timed like a backup: from the open, not the ssh login. */
    if (agent_backup_open(a.repo, a.name, a.spec, &b) < 0 ||
        !agent_backup_disk(&b, a.disk) || agent_restore_check(&b, a.disk) < 0 ||
        agent_restore_disk(&b, a.disk, a.to, a.fmt,
                           AGENT_RESTORE_DEVICE |
                               (a.force ? AGENT_RESTORE_FORCE : 0)) < 0) {
        agent_fail();
        agent_backup_close(&b);
        return 1;
    }
    secs = (double)(lb_now_ns() - b.connected_ns) / 1e9;
    if (agent_opts.json) {
        struct proto_kv kv = {0};
        proto_kv_set(&kv, "id", b.id);
        proto_kv_set(&kv, "disk", a.disk);
        proto_kv_set(&kv, "to", a.to);
        proto_kv_set(&kv, "format", agent_format_name(a.fmt));
        proto_kv_setf(&kv, "seconds", "%.3f", secs);
        proto_kv_set_u64(&kv, "agent_bytes_received", agent_repo_bytes_in(b.r));
        agent_event("summary", &kv);
        proto_kv_free(&kv);
    } else {
        printf("restored disk %s of backup %s (%s) to %s (%s) in %.1f s\n",
               a.disk, b.id, a.name, a.to, agent_format_name(a.fmt), secs);
    }
    agent_backup_close(&b);
    return 0;
}
