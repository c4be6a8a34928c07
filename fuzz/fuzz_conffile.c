/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: cli_conf_parse (livebackup.conf, agent/cli/conffile.c)
 * on the input bytes.
 *
 * Oracle beyond "no crash, no leak": a rejected file names a line within
 * it (or none, for a NUL byte) and says why; an accepted file's values are
 * valid, single-line and trimmed, and written out again as "key = value"
 * lines they parse to the same values.
 */
#include "agent/cli/cli.h"
#include "fuzz/fuzz.h"

#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cli_conf c, again;
    unsigned line, lines = 1;
    char err[256], err2[256];
    char *text = lb_xstrdup("");

    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (cli_conf_parse((const char *)data, size, &c, &line, err, sizeof err) <
        0) {
        CHECK(err[0] != '\0');
        CHECK(line <= lines);
        CHECK(line > 0 || memchr(data, '\0', size));
        for (size_t k = 0; k < CLI_CONF_N; k++)
            CHECK(!c.value[k]);
        free(text);
        return 0;
    }
    for (size_t k = 0; k < CLI_CONF_N; k++) {
        const char *v = c.value[k];
        char *t;

        if (!v)
            continue;
        CHECK(c.line[k] >= 1 && c.line[k] <= lines);
        CHECK(!strchr(v, '\n'));
        CHECK(!*v ||
              (!strchr(" \t\r", v[0]) && !strchr(" \t\r", v[strlen(v) - 1])));
        CHECK(cli_conf_check((enum cli_conf_key)k, v, err2, sizeof err2) == 0);
        t = lb_xasprintf("%s%s = %s\n", text,
                         cli_conf_name((enum cli_conf_key)k), v);
        free(text);
        text = t;
    }
    CHECK(cli_conf_parse(text, strlen(text), &again, &line, err2,
                         sizeof err2) == 0);
    for (size_t k = 0; k < CLI_CONF_N; k++)
        CHECK(!c.value[k] == !again.value[k] &&
              (!c.value[k] || strcmp(c.value[k], again.value[k]) == 0));
    cli_conf_free(&c);
    cli_conf_free(&again);
    free(text);
    return 0;
}
