/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Help, getopt tables and man page sections from one command table
 * (common/help.h).
 */
#include "common/help.h"
#include "common/common.h"

#include <string.h>

#define HELP_WIDTH 79
#define HELP_INDENT 30

/* Print text word-wrapped to HELP_WIDTH; the first line starts at column
 * col (already printed up to there), the others at indent. */
static void
wrap(FILE *f, const char *text, size_t col, size_t indent)
{
    const char *p = text;
    bool first = true;

    while (*p) {
        size_t n = strcspn(p, " ");

        if (!first && col + 1 + n > HELP_WIDTH && col > indent) {
            fprintf(f, "\n%*s", (int)indent, "");
            col = indent;
        } else if (!first) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, n, f);
        col += n;
        first = false;
        p += n;
        while (*p == ' ')
            p++;
    }
    fputc('\n', f);
}

static void
add_opt(struct option *out, size_t *n, char *shortopts, size_t *ns,
        const struct lb_help_opt *o)
{
    if (*n + 2 > LB_HELP_MAX_OPTS)
        abort(); /* the table outgrew LB_HELP_MAX_OPTS */
    out[*n] = (struct option){o->name, o->arg ? required_argument : no_argument,
                              NULL, o->letter ? o->letter : o->val};
    (*n)++;
    if (o->letter) {
        shortopts[(*ns)++] = (char)o->letter;
        if (o->arg)
            shortopts[(*ns)++] = ':';
    }
}

void
lb_help_getopt(const struct lb_help_cmd *cmd, const struct lb_help_opt *common,
               struct option *out, char *shortopts)
{
    static const struct lb_help_opt help = {"help", 'h', 'h', NULL, NULL};
    size_t n = 0, ns = 0;

    for (const struct lb_help_opt *o = cmd->opts; o && o->name; o++)
        add_opt(out, &n, shortopts, &ns, o);
    for (const struct lb_help_opt *o = common; cmd->common && o && o->name; o++)
        add_opt(out, &n, shortopts, &ns, o);
    add_opt(out, &n, shortopts, &ns, &help);
    out[n] = (struct option){0};
    shortopts[ns] = '\0';
}

void
lb_help_getopt_all(const struct lb_help_cmd *cmds,
                   const struct lb_help_opt *common, struct option *out,
                   char *shortopts)
{
    static const struct lb_help_opt help = {"help", 'h', 'h', NULL, NULL};
    size_t n = 0, ns = 0;

    for (const struct lb_help_cmd *c = cmds; c->name; c++)
        for (const struct lb_help_opt *o = c->opts; o && o->name; o++) {
            bool dup = false;
            for (size_t i = 0; i < n && !dup; i++)
                dup = strcmp(out[i].name, o->name) == 0;
            if (!dup)
                add_opt(out, &n, shortopts, &ns, o);
        }
    for (const struct lb_help_opt *o = common; o && o->name; o++)
        add_opt(out, &n, shortopts, &ns, o);
    add_opt(out, &n, shortopts, &ns, &help);
    out[n] = (struct option){0};
    shortopts[ns] = '\0';
}

static void
print_opts(FILE *f, const struct lb_help_opt *opts)
{
    for (const struct lb_help_opt *o = opts; o && o->name; o++) {
        int col;

        if (o->letter)
            col = fprintf(f, "  -%c, --%s%s%s", o->letter, o->name,
                          o->arg ? " " : "", o->arg ? o->arg : "");
        else
            col = fprintf(f, "      --%s%s%s", o->name, o->arg ? " " : "",
                          o->arg ? o->arg : "");
        if (col + 2 > HELP_INDENT) {
            fprintf(f, "\n%*s", HELP_INDENT, "");
            col = HELP_INDENT;
        } else {
            fprintf(f, "%*s", HELP_INDENT - col, "");
            col = HELP_INDENT;
        }
        wrap(f, o->text, (size_t)col, HELP_INDENT);
    }
}

/* "Usage: PROG CMD FORM", one line per '\n'-separated form. */
static void
print_synopsis(FILE *f, const char *prog, const struct lb_help_cmd *cmd)
{
    const char *p = cmd->synopsis ? cmd->synopsis : "";
    const char *lead = "Usage:";

    do {
        size_t n = strcspn(p, "\n");
        fprintf(f, "%s %s %s %.*s\n", lead, prog, cmd->name, (int)n, p);
        lead = "      ";
        p += n;
    } while (*p++ == '\n');
}

void
lb_help_print(FILE *f, const char *prog, const struct lb_help_cmd *cmd,
              const struct lb_help_opt *common, const char *common_title)
{
    const char *p = cmd->description ? cmd->description : "";

    print_synopsis(f, prog, cmd);
    while (*p) {
        size_t n = strcspn(p, "\n");
        CLEANUP_FREE char *para = lb_xasprintf("%.*s", (int)n, p);

        fputc('\n', f);
        wrap(f, para, 0, 0);
        p += n;
        while (*p == '\n')
            p++;
    }
    if (cmd->opts && cmd->opts->name) {
        fputs("\nOptions:\n", f);
        print_opts(f, cmd->opts);
    }
    if (cmd->common && common) {
        fprintf(f, "\n%s:\n", common_title);
        print_opts(f, common);
    }
    fprintf(f, "  -h, --help%*sthis help\n", HELP_INDENT - 12, "");
}

void
lb_help_print_list(FILE *f, const struct lb_help_cmd *cmds)
{
    for (const struct lb_help_cmd *c = cmds; c->name; c++) {
        int col = fprintf(f, "  %-16s", c->name);
        wrap(f, c->summary, (size_t)col, (size_t)col);
    }
}

/* scdoc text: its markup characters escaped. */
static void
scdoc_text(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i]; i++) {
        if (strchr("\\*_", s[i]))
            fputc('\\', f);
        fputc(s[i], f);
    }
}

static void
scdoc_opt(FILE *f, const struct lb_help_opt *o)
{
    if (o->letter)
        fprintf(f, "*-%c*, ", o->letter);
    fputs("*--", f);
    scdoc_text(f, o->name, strlen(o->name));
    fputc('*', f);
    if (o->arg) {
        fputs(" _", f);
        scdoc_text(f, o->arg, strlen(o->arg));
        fputc('_', f);
    }
    fputs("\n\t", f);
    scdoc_text(f, o->text, strlen(o->text));
    fputs("\n\n", f);
}

void
lb_help_print_scdoc_opts(FILE *f, const struct lb_help_opt *opts)
{
    for (const struct lb_help_opt *o = opts; o && o->name; o++)
        scdoc_opt(f, o);
}

void
lb_help_print_scdoc(FILE *f, const char *prog, const struct lb_help_cmd *cmd,
                    const char *level)
{
    const char *p = cmd->synopsis ? cmd->synopsis : "";

    fprintf(f, "%s %s\n\n", level, cmd->name);
    do {
        size_t n = strcspn(p, "\n");
        fprintf(f, "*%s %s* ", prog, cmd->name);
        scdoc_text(f, p, n);
        fputs("\n\n", f);
        p += n;
    } while (*p++ == '\n');
    p = cmd->description ? cmd->description : "";
    while (*p) {
        size_t n = strcspn(p, "\n");
        scdoc_text(f, p, n);
        fputs("\n\n", f);
        p += n;
        while (*p == '\n')
            p++;
    }
    lb_help_print_scdoc_opts(f, cmd->opts);
}

const struct lb_help_cmd *
lb_help_find(const struct lb_help_cmd *cmds, const char *name)
{
    for (const struct lb_help_cmd *c = cmds; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}
