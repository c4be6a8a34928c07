/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Command-line help from one table per program: the same lb_help_cmd
 * entries build getopt_long's option array, print `COMMAND --help`, list
 * the commands for `help`, and write the scdoc source of the man page
 * (docs/man/, built by scdoc at build time). An option that is not in the
 * table is neither parsed nor documented, so the two cannot drift apart.
 */
#ifndef LB_COMMON_HELP_H
#define LB_COMMON_HELP_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

/* One option. Tables end with an entry whose name is NULL. */
struct lb_help_opt {
    const char *name; /* long name, without "--" */
    int letter;       /* short option letter, or 0 */
    int val;          /* what getopt_long returns (the letter if 0) */
    const char *arg;  /* the argument's name; NULL: it takes none */
    const char *text; /* what it does: sentences, no newlines */
};

/* One command. Tables end with an entry whose name is NULL. */
struct lb_help_cmd {
    const char *name;
    const char *summary;            /* one line, for `help` */
    const char *synopsis;           /* operands and options after the name; '\n'
                                     * separates alternative forms */
    const char *description;        /* paragraphs separated by '\n' */
    const struct lb_help_opt *opts; /* its own options (NULL: none) */
    bool common;                    /* also takes the program's common ones */
};

#define LB_HELP_MAX_OPTS 64

/*
 * Fill out[] (LB_HELP_MAX_OPTS entries) with getopt_long's table for cmd,
 * its own options then, if cmd->common, those of common (may be NULL), then
 * --help (val 'h'), ending with a zero entry; and shortopts (at least
 * 2 * LB_HELP_MAX_OPTS + 1 bytes) with the letters. Aborts if the table
 * does not fit: a programming error, found by any test that runs the
 * command.
 */
void lb_help_getopt(const struct lb_help_cmd *cmd,
                    const struct lb_help_opt *common, struct option *out,
                    char *shortopts);

/*
 * Like lb_help_getopt, for a program whose options come before or after
 * its command (backupd): every option of every command in cmds (ending
 * with name NULL) and of common, each once.
 */
void lb_help_getopt_all(const struct lb_help_cmd *cmds,
                        const struct lb_help_opt *common, struct option *out,
                        char *shortopts);

/* `PROG CMD --help`: synopsis, description, options, then the common ones
 * under common_title. Wraps to 80 columns. */
void lb_help_print(FILE *f, const char *prog, const struct lb_help_cmd *cmd,
                   const struct lb_help_opt *common, const char *common_title);

/* `PROG help`: every command (table ends with name NULL) and its summary. */
void lb_help_print_list(FILE *f, const struct lb_help_cmd *cmds);

/* The command's section of the man page, in scdoc; level is the heading
 * level ("##" for a subsection). */
void lb_help_print_scdoc(FILE *f, const char *prog,
                         const struct lb_help_cmd *cmd, const char *level);

/* An option table as an scdoc list (for the common options' section). */
void lb_help_print_scdoc_opts(FILE *f, const struct lb_help_opt *opts);

/* The command named name in cmds, or NULL. */
const struct lb_help_cmd *lb_help_find(const struct lb_help_cmd *cmds,
                                       const char *name);

#endif /* LB_COMMON_HELP_H */
