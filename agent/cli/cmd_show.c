/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * show: what a backup holds (its metadata, its disks and how each was
 * read, its saved domain XML).
 */
#include "agent/cli/cli.h"
#include "agent/client/client.h"

#include <getopt.h>
#include <string.h>

static void
show_json(const struct agent_backup *b, const char *xml)
{
    agent_event_merge("backup", &b->meta, NULL, xml ? "domain_xml_text" : NULL,
                      xml);
    for (size_t i = 0; i < b->ndisks; i++) {
        const struct agent_restore_disk *d = &b->disks[i];
        struct proto_kv dk = {0};
        proto_kv_set(&dk, "disk", d->name);
        proto_kv_set_u64(&dk, "size", d->size);
        proto_kv_set_u64(&dk, "windows_with_data", d->nonempty_windows);
        if (d->mode[0])
            proto_kv_set(&dk, "mode", d->mode);
        if (d->full_reason[0])
            proto_kv_set(&dk, "full_reason", d->full_reason);
        agent_event("disk", &dk);
        proto_kv_free(&dk);
    }
}

static void
show_text(const struct agent_backup *b, const char *xml)
{
    struct proto_kv safe = {0}, *m = &safe;
    const char *par, *name;
    char when[32], sz[16];

    /* the repository wrote all of it: no escape sequences for the terminal */
    cli_kv_terminal_copy(&b->meta, &safe);
    par = proto_kv_get(m, "parent");
    name = proto_kv_get(m, "name") ? proto_kv_get(m, "name") : "?";

    lb_format_time(when, sizeof when, (int64_t)proto_kv_get_u64(m, "time", 0));
    printf("backup:      %s\n", proto_kv_get(m, "id"));
    printf("name:        %s\n", name);
    if (proto_kv_get(m, "domain_uuid"))
        printf("domain uuid: %s\n", proto_kv_get(m, "domain_uuid"));
    printf("time:        %s\n", when);
    printf("kind:        %s\n",
           proto_kv_get(m, "kind") ? proto_kv_get(m, "kind") : "?");
    printf("parent:      %s\n", par && *par ? par : "-");
    if (proto_kv_get(m, "consistency"))
        printf("consistency: %s (guest frozen %s ms)\n",
               proto_kv_get(m, "consistency"),
               proto_kv_get(m, "freeze_ms") ? proto_kv_get(m, "freeze_ms")
                                            : "0");
    lb_human_size(sz, sizeof sz, proto_kv_get_u64(m, "bytes_new", 0));
    printf("stored new:  %s\n", sz);
    printf("disks:\n");
    for (size_t i = 0; i < b->ndisks; i++) {
        const struct agent_restore_disk *d = &b->disks[i];
        char dsz[16], dat[16];
        lb_human_size(dsz, sizeof dsz, d->size);
        lb_human_size(dat, sizeof dat,
                      d->nonempty_windows * agent_repo_window_size(b->r));
        CLEANUP_FREE char *mode = lb_term_line(d->mode);
        CLEANUP_FREE char *why = lb_term_line(d->full_reason);
        printf("  %-8s %10s  (data in %s of windows)", d->name, dsz, dat);
        if (*mode)
            printf(", %s", mode);
        if (*why)
            printf(": %s", why);
        putchar('\n');
    }
    if (xml) {
        CLEANUP_FREE char *text = lb_term_safe(xml);
        printf("domain XML:\n%s\n", text);
    }
    proto_kv_free(&safe);
}

int
cmd_show(int argc, char **argv)
{
    struct cli_getopt g;
    const char *repo = NULL, *spec = NULL, *name = NULL;
    struct agent_backup b = {0};
    CLEANUP_FREE char *xml = NULL;
    int c;

    cli_getopt("show", &g);
    optind = 1;
    while ((c = cli_getopt_next(&g, argc, argv)) != -1) {
        if (c == CLI_OPT_ERROR)
            return 2;
        switch (c) {
        case 'r':
            repo = optarg;
            break;
        case 'b':
            spec = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'h':
            return cli_help("show");
        default:
            return cli_usage("show", NULL);
        }
    }
    if (optind != argc)
        return cli_usage("show", "unexpected argument '%s'", argv[optind]);
    if (!spec)
        return cli_missing("show", "--backup ID");
    if (!name && !proto_backup_id_valid(spec, strlen(spec)))
        return cli_usage("show",
                         "--name NAME is required with --backup %s "
                         "(latest or a time)",
                         spec);
    if (!(repo = cli_need_repo("show", repo)))
        return 2;
    if (agent_backup_open(repo, name, spec, &b) < 0) {
        agent_fail();
        agent_backup_close(&b);
        return 1;
    }
    /* A damaged saved XML does not hide the rest. */
    if (proto_kv_get(&b.meta, "domain_xml"))
        xml = agent_backup_domain_xml(&b);
    if (agent_opts.json)
        show_json(&b, xml);
    else
        show_text(&b, xml);
    agent_backup_close(&b);
    return 0;
}
