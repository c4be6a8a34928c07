/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * livebackup copy: the backups of one repository that another lacks,
 * copied there with their ids, times and metadata (off-site copies, and a
 * pull from an off-site host with a read-only key). The work is the
 * client's (agent/client/copy.c); this file parses options and prints.
 */
#include "agent/cli/cli.h"
#include "agent/client/client.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_SELECT 256

struct copy_args {
    const char *from, *to;
    char *names[MAX_SELECT], *ids[MAX_SELECT];
    struct agent_copy_req q;
};

static int
copy_opt(int c, struct copy_args *a)
{
    long v;

    switch (c) {
    case 'f':
        a->from = optarg;
        return 0;
    case 't':
        a->to = optarg;
        return 0;
    case 'n':
        if (a->q.nnames == MAX_SELECT)
            return -1;
        a->names[a->q.nnames++] = optarg;
        return 0;
    case 'b':
        if (a->q.nids == MAX_SELECT ||
            !proto_backup_id_valid(optarg, strlen(optarg))) {
            fprintf(stderr, "livebackup copy: --backup %s: not a backup id\n",
                    optarg);
            return -1;
        }
        a->ids[a->q.nids++] = optarg;
        return 0;
    case 'l':
        if (lb_parse_long(optarg, 1, 1000000, &v) < 0) {
            fprintf(stderr, "livebackup copy: --last %s: a count from 1\n",
                    optarg);
            return -1;
        }
        a->q.last = (unsigned)v;
        return 0;
    case 's':
        if (lb_parse_time(optarg, &a->q.since) < 0) {
            fprintf(stderr,
                    "livebackup copy: --since %s: expected "
                    "YYYY-MM-DD[THH:MM[:SS]] (UTC)\n",
                    optarg);
            return -1;
        }
        return 0;
    case 'd':
        a->q.dry_run = true;
        return 0;
    case 'h':
        exit(cli_help("copy"));
    default:
        return -1;
    }
}

/* A remote path as text: "/" runs, "." components and a trailing "/"
 * dropped. ".." and links are the remote host's to resolve. */
static char *
path_text(const char *p)
{
    char *out = lb_xmalloc(strlen(p) + 2), *w = out;

    while (*p) {
        if (p[0] == '/' && (p[1] == '/' || (p[1] == '\0' && w > out))) {
            p++;
            continue;
        }
        if ((w == out || w[-1] == '/') && p[0] == '.' &&
            (p[1] == '/' || p[1] == '\0')) {
            p += p[1] ? 2 : 1;
            continue;
        }
        *w++ = *p++;
    }
    while (w > out + 1 && w[-1] == '/')
        w--;
    *w = '\0';
    return out;
}

static bool
same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Do two URLs name one repository: a local directory under two spellings
 * (./r and r, or a link to it), or one remote path written two ways
 * (ssh://h/r and ssh://h//r/, served by a daemon or not)? Remote hosts
 * are told apart by their text (user@h and h may be one), RADOS specs
 * too. */
static bool
same_repo(const char *x, const char *y)
{
    struct agent_url ux = {0}, uy = {0};
    struct stat sx, sy;
    bool same = false;

    if (agent_url_parse(x, &ux) == 0 && agent_url_parse(y, &uy) == 0) {
        bool host =
            same_text(ux.host, uy.host) &&
            same_text(ux.port ? ux.port : "22", uy.port ? uy.port : "22");
        if (strncmp(ux.path, "rados:", 6) == 0) {
            same = host && strcmp(ux.path, uy.path) == 0;
        } else if (!ux.host && !uy.host) {
            same = stat(ux.path, &sx) == 0 && stat(uy.path, &sy) == 0 &&
                   S_ISDIR(sx.st_mode) && sx.st_dev == sy.st_dev &&
                   sx.st_ino == sy.st_ino;
        } else if (host) {
            CLEANUP_FREE char *px = path_text(ux.path);
            CLEANUP_FREE char *py = path_text(uy.path);
            same = strcmp(px, py) == 0;
        }
    }
    lb_error_clear();
    agent_url_free(&ux);
    agent_url_free(&uy);
    return same;
}

static int
parse_copy(int argc, char **argv, struct copy_args *a)
{
    struct cli_getopt g;
    int c;

    memset(a, 0, sizeof *a);
    a->q.since = INT64_MIN;
    a->q.names = a->names;
    a->q.ids = a->ids;
    cli_getopt("copy", &g);
    optind = 1;
    while ((c = cli_getopt_next(&g, argc, argv)) != -1) {
        if (c == CLI_OPT_ERROR)
            return 2;
        if (copy_opt(c, a) < 0)
            return cli_usage("copy", NULL);
    }
    if (optind < argc)
        return cli_usage("copy", "unexpected argument '%s'", argv[optind]);
    if (!a->from || !a->to) {
        cli_missing("copy", !a->from ? "--from SRC" : "--to DST");
        return 2;
    }
    if (!*a->from || !*a->to)
        return cli_usage("copy",
                         "%s is empty: give the repository's path or URL",
                         !*a->from ? "--from" : "--to");
    if (strcmp(a->from, a->to) == 0 || same_repo(a->from, a->to))
        return cli_usage("copy", "--from and --to are the same repository");
    return 0;
}

/* One backup's outcome, as it happens. */
static int
copy_entry(void *opaque, struct proto_kv *e)
{
    const char *action, *reason;
    char when[32], sz[16];

    (void)opaque;
    if (agent_opts.json) {
        agent_event("copy", e);
        return 0;
    }
    cli_kv_for_terminal(e);
    action = proto_kv_get(e, "action");
    reason = proto_kv_get(e, "reason");
    lb_format_time(when, sizeof when, (int64_t)proto_kv_get_u64(e, "time", 0));
    lb_human_size(sz, sizeof sz, proto_kv_get_u64(e, "bytes_sent", 0));
    if (strcmp(action, "copied") == 0)
        printf("copied   %s  %s  %s: %llu chunk(s) sent (%s), %llu already "
               "there\n",
               proto_kv_get(e, "id"), when, proto_kv_get(e, "name"),
               (unsigned long long)proto_kv_get_u64(e, "chunks_sent", 0), sz,
               (unsigned long long)proto_kv_get_u64(e, "chunks_reused", 0));
    else if (strcmp(action, "failed") == 0)
        fprintf(stderr, "livebackup: backup %s of %s not copied: %s\n",
                proto_kv_get(e, "id"), proto_kv_get(e, "name"), reason);
    else
        printf("%-8s %s  %s  %s%s%s\n", action, proto_kv_get(e, "id"), when,
               proto_kv_get(e, "name"), *reason ? ": " : "", reason);
    return 0;
}

static void
print_summary(const struct copy_args *a, const struct agent_copy_stats *s)
{
    char sz[16];

    if (agent_opts.json) {
        struct proto_kv kv = {0};
        proto_kv_set(&kv, "from", a->from);
        proto_kv_set(&kv, "to", a->to);
        proto_kv_set_u64(&kv, "selected", s->selected);
        proto_kv_set_u64(&kv, "copied", s->copied);
        proto_kv_set_u64(&kv, "present", s->present);
        proto_kv_set_u64(&kv, "backups_skipped", s->skipped);
        proto_kv_set_u64(&kv, "failed", s->failed);
        proto_kv_set_u64(&kv, "chunks_sent", s->chunks_sent);
        proto_kv_set_u64(&kv, "chunks_reused", s->chunks_reused);
        proto_kv_set_u64(&kv, "bytes_sent", s->bytes_sent);
        proto_kv_set_u64(&kv, "dry_run", a->q.dry_run);
        proto_kv_set_u64(&kv, "milliseconds", (uint64_t)(s->seconds * 1000));
        agent_event("summary", &kv);
        proto_kv_free(&kv);
        return;
    }
    lb_human_size(sz, sizeof sz, s->bytes_sent);
    printf("%s%llu backup(s) copied, %llu already there, %llu skipped, %llu "
           "failed; %llu chunk(s) sent (%s), %llu already there; %.1f s\n",
           a->q.dry_run ? "dry run: " : "", (unsigned long long)s->copied,
           (unsigned long long)s->present, (unsigned long long)s->skipped,
           (unsigned long long)s->failed, (unsigned long long)s->chunks_sent,
           sz, (unsigned long long)s->chunks_reused, s->seconds);
}

int
cmd_copy(int argc, char **argv)
{
    struct copy_args a;
    struct agent_repo *src = NULL, *dst = NULL;
    struct agent_copy_stats st;
    int rc = parse_copy(argc, argv, &a);

    agent_opts.io_watch = true; /* the data path: a stalled server ends */
    if (rc || !a.from || !a.to) /* (parse_copy checked both) */
        return rc ? rc : 2;
    /* The source is only read (a --read-only key will do), and checks
     * every chunk it sends (GET_STORED). A source on this host is as
     * much ours as a disk we back up: the destination then takes the
     * chunks as a local backup's, checking their form; one elsewhere may
     * lie, and the destination checks every chunk's content again. */
    if (agent_repo_connect_two(a.from, true, a.to,
                               strncmp(a.from, "ssh://", 6) != 0, &src,
                               &dst) < 0 ||
        agent_repo_open(src, PROTO_OPEN_READ) < 0 ||
        agent_repo_open(dst, a.q.dry_run ? PROTO_OPEN_READ : PROTO_OPEN_WRITE) <
            0)
        goto fail;
    if (agent_copy(src, dst, &a.q, copy_entry, NULL, &st) < 0) {
        agent_fail();
        print_summary(&a, &st);
        rc = 1;
        goto out;
    }
    print_summary(&a, &st);
    if (st.failed) {
        lb_fail(EPROTO,
                "%llu backup(s) were not copied: the source lacks or holds "
                "damaged chunks they use",
                (unsigned long long)st.failed);
        lb_error_hint("livebackup verify --repo %s names the damage", a.from);
        agent_fail();
        rc = 1;
    }
    goto out;
fail:
    agent_fail();
    rc = 1;
out:
    agent_repo_close(src);
    agent_repo_close(dst);
    return rc;
}
