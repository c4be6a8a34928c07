/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Repository commands: init, list, verify, delete.
 */
#include "agent/cli/cli.h"
#include "agent/client/client.h"

#include <getopt.h>
#include <string.h>

/* Parse the options of a simple command: --repo, --name, --backup and the
 * common ones. Returns 0, or the exit code to return (2 on usage). */
struct simple_args {
    const char *repo, *name, *backup, *encryption, *key_from;
    bool latest, key;
    uint64_t window;
};

static int
parse_simple(int argc, char **argv, const char *cmd, struct simple_args *a)
{
    struct cli_getopt g;
    int c;

    memset(a, 0, sizeof *a);
    a->window = PROTO_DEFAULT_WINDOW;
    cli_getopt(cmd, &g);
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
            a->backup = optarg;
            break;
        case 'L':
            a->latest = true;
            break;
        case 'e':
            a->encryption = optarg;
            break;
        case 'K':
            a->key = true;
            break;
        case 'k':
            a->key_from = optarg;
            break;
        case 'w':
            if (lb_parse_size(optarg, &a->window) < 0 ||
                !proto_window_size_valid((uint32_t)a->window) ||
                a->window > UINT32_MAX) {
                fprintf(stderr, "livebackup: --window-size must be a power "
                                "of two from 64K to 8M\n");
                return 2;
            }
            break;
        case 'h':
            exit(cli_help(cmd));
        default:
            return cli_usage(cmd, NULL);
        }
    }
    if (optind < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    a->repo = cli_need_repo(cmd, a->repo);
    return a->repo ? 0 : 2;
}

/* --encryption (default: LIVEBACKUP_ENCRYPTION, else repokey): -1 on a
 * name that is none of the three. */
static int
encryption_mode(const char *arg)
{
    const char *e = arg ? arg : getenv("LIVEBACKUP_ENCRYPTION");

    if (!e || !*e || strcmp(e, "repokey") == 0)
        return PROTO_ENC_REPOKEY;
    if (strcmp(e, "keyfile") == 0)
        return PROTO_ENC_KEYFILE;
    if (strcmp(e, "none") == 0)
        return PROTO_ENC_NONE;
    fprintf(stderr, "livebackup: %s '%s': expected repokey, keyfile or none\n",
            arg ? "--encryption" : "LIVEBACKUP_ENCRYPTION", e);
    return -1;
}

static void
print_init(const struct simple_args *a, int enc, const char *key_path)
{
    static const char *const names[] = {"none", "repokey", "keyfile"};

    if (agent_opts.json) {
        struct proto_kv kv = {0};
        proto_kv_set(&kv, "repo", a->repo);
        proto_kv_set_u64(&kv, "window_size", a->window);
        proto_kv_set(&kv, "encryption", names[enc]);
        if (key_path)
            proto_kv_set(&kv, "key_file", key_path);
        agent_event("initialized", &kv);
        proto_kv_free(&kv);
        return;
    }
    printf("created repository %s (window size %llu KiB, encryption %s)\n",
           a->repo, (unsigned long long)a->window >> 10, names[enc]);
    if (enc == PROTO_ENC_REPOKEY)
        printf("its key is in the repository, wrapped by your passphrase: "
               "keep the passphrase, and a copy of the key (livebackup key "
               "export): without both every backup is lost\n");
    else if (enc == PROTO_ENC_KEYFILE)
        printf("its key is in %s, wrapped by your passphrase: keep a copy "
               "of that file and the passphrase elsewhere: without both "
               "every backup is lost\n",
               key_path);
}

int
cmd_init(int argc, char **argv)
{
    struct simple_args a;
    struct agent_repo *r;
    CLEANUP_FREE char *key_path = NULL;
    int enc, rc = parse_simple(argc, argv, "init", &a);

    if (rc)
        return rc;
    enc = encryption_mode(a.encryption);
    if (enc < 0)
        return 2;
    if (a.key_from && enc == PROTO_ENC_NONE) {
        fprintf(stderr, "livebackup init: --key-from makes an encrypted "
                        "repository: not with --encryption none\n");
        return 2;
    }
    r = agent_repo_connect(a.repo);
    if (!r)
        return agent_fail();
    if ((a.key_from
             ? agent_repo_init_from_key(r, (uint32_t)a.window, (uint8_t)enc,
                                        a.key_from, &key_path)
             : agent_repo_init_keyed(r, (uint32_t)a.window, (uint8_t)enc,
                                     &key_path)) < 0) {
        agent_fail();
        agent_repo_close(r);
        return 1;
    }
    agent_repo_close(r);
    print_init(&a, enc, key_path);
    return 0;
}

static void
print_backup_row(const struct proto_kv *raw, int nw)
{
    struct proto_kv row = {0}, *b = &row;
    char when[32], size[16], sent[16], stored[16];

    cli_kv_terminal_copy(raw, &row);

    lb_format_time(when, sizeof when, (int64_t)proto_kv_get_u64(b, "time", 0));
    lb_human_size(size, sizeof size, proto_kv_get_u64(b, "size", 0));
    lb_human_size(sent, sizeof sent, proto_kv_get_u64(b, "bytes_received", 0));
    lb_human_size(stored, sizeof stored, proto_kv_get_u64(b, "bytes_new", 0));
    const char *name = proto_kv_get(b, "name") ? proto_kv_get(b, "name") : "?";

    printf("%-20s  %-20s  %-*s  %-11s  %10s  %10s  %10s\n",
           proto_kv_get(b, "id"), when, lb_pad_width(name, nw), name,
           proto_kv_get(b, "kind") ? proto_kv_get(b, "kind") : "?", size, sent,
           stored);
    proto_kv_free(&row);
}

/* The columns of the widest name in l, at least min (a name's columns on
 * the terminal, escapes and all: lb_text_cols). */
static int
names_cols(const struct agent_list *l, int min)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *nm = proto_kv_get(&l->b[i], "name");
        if (nm)
            min = LB_MAX(min, lb_text_cols(nm));
    }
    return min;
}

/* One row of list --latest, its text made safe for the terminal (after
 * the rows were grouped by their raw names). */
static void
print_latest_row(const struct proto_kv *raw, int nw, size_t count,
                 const char *age, const char *size)
{
    struct proto_kv row = {0}, *b = &row;
    const char *name;
    char fz[32] = "-";

    cli_kv_terminal_copy(raw, &row);
    name = proto_kv_get(b, "name") ? proto_kv_get(b, "name") : "?";
    if (proto_kv_get(b, "freeze_ms"))
        snprintf(fz, sizeof fz, "%s ms", proto_kv_get(b, "freeze_ms"));
    printf("%-*s %7zu  %-20s %-8s %-11s %10s %8s  %s\n", lb_pad_width(name, nw),
           name, count, proto_kv_get(b, "id"), age,
           proto_kv_get(b, "kind") ? proto_kv_get(b, "kind") : "?", size, fz,
           proto_kv_get(b, "consistency") ? proto_kv_get(b, "consistency")
                                          : "-");
    proto_kv_free(&row);
}

/* list --latest: one row per set (domain or image name). */
static void
print_latest(const struct agent_list *l)
{
    int64_t now = lb_wall_time();
    bool header = false;
    int nw = names_cols(l, 20);

    for (size_t i = 0; i < l->n; i++) {
        const struct proto_kv *b = &l->b[i];
        const char *name = proto_kv_get(b, "name");
        size_t count = 0;
        bool later = false;
        char age[16], size[16];
        int64_t t = (int64_t)proto_kv_get_u64(b, "time", 0);

        for (size_t k = 0; k < l->n; k++) {
            const char *nk = proto_kv_get(&l->b[k], "name");
            if (!name || !nk || strcmp(nk, name) != 0)
                continue;
            count++;
            later |= k > i;
        }
        if (later)
            continue; /* only the latest of each set */
        lb_human_age(age, sizeof age, now - t);
        lb_human_size(size, sizeof size, proto_kv_get_u64(b, "size", 0));
        if (agent_opts.json) {
            struct proto_kv kv = {0};
            proto_kv_set_u64(&kv, "backups", count);
            proto_kv_set_u64(&kv, "age_seconds", (uint64_t)LB_MAX(0, now - t));
            agent_event_merge("set", b, &kv, NULL, NULL);
            proto_kv_free(&kv);
            continue;
        }
        if (!header) {
            printf("%-*s %7s  %-20s %-8s %-11s %10s %8s  %s\n", nw, "NAME",
                   "BACKUPS", "LAST BACKUP", "AGE", "KIND", "SIZE", "FROZEN",
                   "CONSISTENCY");
            header = true;
        }
        print_latest_row(b, nw, count, age, size);
    }
}

int
cmd_list(int argc, char **argv)
{
    struct simple_args a;
    struct agent_repo *r;
    struct agent_list l;
    int rc = parse_simple(argc, argv, "list", &a);

    if (rc)
        return rc;
    r = agent_repo_connect(a.repo);
    if (!r)
        return agent_fail();
    if (agent_repo_open(r, PROTO_OPEN_READ) < 0 ||
        agent_repo_list(r, a.name, &l) < 0) {
        agent_fail();
        agent_repo_close(r);
        return 1;
    }
    agent_repo_close(r);
    if (l.n == 0 && !agent_opts.json) {
        printf("no backups%s%s\n", a.name ? " of " : "", a.name ? a.name : "");
    } else if (a.latest) {
        print_latest(&l);
    } else if (agent_opts.json) {
        for (size_t i = 0; i < l.n; i++)
            agent_event_merge("backup", &l.b[i], NULL, NULL, NULL);
    } else {
        int nw = names_cols(&l, 4);
        printf("%-20s  %-20s  %-*s  %-11s  %10s  %10s  %10s\n", "ID",
               "TIME (UTC)", nw, "NAME", "KIND", "SIZE", "SENT", "STORED");
        for (size_t i = 0; i < l.n; i++)
            print_backup_row(&l.b[i], nw);
    }
    agent_list_free(&l);
    return 0;
}

/* What verify prints as its events arrive: progress, and each damage. */
struct verify_out {
    struct agent_progress prog;
    bool started, damaged;
};

static int
verify_event(void *opaque, struct proto_kv *ev)
{
    struct verify_out *o = opaque;
    const char *id, *name, *disk;

    if (strcmp(proto_kv_get(ev, "event"), "progress") == 0) {
        uint64_t done = proto_kv_get_u64(ev, "done", 0);
        if (!o->started) {
            agent_progress_begin(&o->prog, "verify",
                                 proto_kv_get_u64(ev, "total", 0));
            o->started = true;
        }
        agent_progress_add(&o->prog, done - o->prog.done);
        return 0;
    }
    if (!agent_opts.json)
        cli_kv_for_terminal(ev);
    id = proto_kv_get(ev, "id");
    name = proto_kv_get(ev, "name");
    disk = proto_kv_get(ev, "disk");
    o->damaged = true;
    if (agent_opts.json)
        agent_event("damage", ev);
    else if (id && *id)
        printf("DAMAGED backup %s (%s)%s%s: %s\n", id,
               name && *name ? name : "name unreadable",
               disk && *disk ? " disk " : "", disk ? disk : "",
               proto_kv_get(ev, "what"));
    else
        printf("DAMAGED %s\n", proto_kv_get(ev, "what"));
    return 0;
}

static void
print_verify_summary(const struct proto_kv *end, bool damaged)
{
    char sz[16];

    if (agent_opts.json) {
        agent_event("summary", end);
        return;
    }
    lb_human_size(sz, sizeof sz, proto_kv_get_u64(end, "bytes", 0));
    printf("verified %llu backups and %llu chunks (%s): %s\n",
           (unsigned long long)proto_kv_get_u64(end, "backups", 0),
           (unsigned long long)proto_kv_get_u64(end, "chunks", 0), sz,
           damaged ? "DAMAGE FOUND (see above)" : "all sound");
    if (damaged)
        printf(
            "%llu damaged backup(s), %llu damaged chunk(s), %llu "
            "missing chunk reference(s); the other backups restore "
            "normally\n",
            (unsigned long long)proto_kv_get_u64(end, "backups_damaged", 0),
            (unsigned long long)proto_kv_get_u64(end, "chunks_damaged", 0),
            (unsigned long long)proto_kv_get_u64(end, "chunk_refs_missing", 0));
}

/* verify --key: the chunks and manifests authenticated on this host. */
static int
verify_key(struct agent_repo *r, struct verify_out *o)
{
    struct proto_kv end = {0};
    bool damaged = false;

    if (agent_verify_data(r, verify_event, o, &end, &damaged) < 0)
        return -1;
    if (agent_opts.json) {
        proto_kv_set(&end, "with_key", "1");
        agent_event("summary", &end);
    } else {
        printf("%s %llu backups and %llu chunks %s: %s\n",
               agent_repo_encrypted(r) ? "authenticated" : "checked",
               (unsigned long long)proto_kv_get_u64(&end, "backups", 0),
               (unsigned long long)proto_kv_get_u64(&end, "chunks", 0),
               agent_repo_encrypted(r) ? "with the key" : "on this host",
               damaged ? "DAMAGE FOUND (see above)" : "all sound");
    }
    o->damaged |= damaged;
    proto_kv_free(&end);
    return 0;
}

int
cmd_verify(int argc, char **argv)
{
    struct simple_args a;
    struct agent_repo *r;
    struct verify_out o = {0};
    struct proto_kv end = {0};
    int rc = parse_simple(argc, argv, "verify", &a);

    if (rc)
        return rc;
    r = agent_repo_connect(a.repo);
    if (!r)
        return agent_fail();
    /* --key: the key first, so a wrong passphrase fails at once. */
    if (agent_repo_open(r, PROTO_OPEN_READ) < 0 ||
        (a.key && agent_repo_unlock(r) < 0) ||
        agent_repo_verify(r, verify_event, &o, &end) < 0)
        goto fail;
    if (o.started)
        agent_progress_end(&o.prog);
    print_verify_summary(&end, o.damaged);
    proto_kv_free(&end);
    if (a.key && verify_key(r, &o) < 0)
        goto fail;
    agent_repo_close(r);
    return o.damaged ? 1 : 0;
fail:
    agent_fail();
    proto_kv_free(&end);
    agent_repo_close(r);
    return 1;
}

int
cmd_delete(int argc, char **argv)
{
    struct simple_args a;
    struct agent_repo *r;
    int rc = parse_simple(argc, argv, "delete", &a);

    if (rc)
        return rc;
    if (!a.backup)
        return cli_usage("delete", "--backup ID is required");
    r = agent_repo_connect(a.repo);
    if (!r)
        return agent_fail();
    if (agent_repo_open(r, PROTO_OPEN_ADMIN) < 0 ||
        agent_repo_delete(r, a.backup) < 0)
        goto fail;
    agent_repo_close(r);
    if (!agent_opts.json)
        printf("deleted backup %s (its data is reclaimed by livebackup gc)\n",
               a.backup);
    return 0;
fail:
    agent_fail();
    agent_repo_close(r);
    return 1;
}
