/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An NBD export of one disk of a backup: nbdkit running our plugin
 * (agent/map/nbdkit.c), started by `livebackup map` in the foreground and
 * by the instant restore as a daemon that outlives it. Here: where the
 * plugin is, nbdkit's command line, and starting it in the background.
 */
#include "agent/client/client_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PLUGIN "nbdkit-livebackup-plugin.so"

char *
agent_export_plugin(void)
{
    const char *env = getenv("LIVEBACKUP_NBDKIT_PLUGIN");
    CLEANUP_FREE char *dir = NULL;

    if (env && *env)
        return lb_xstrdup(env);
    dir = lb_exe_dir();
    if (dir) {
        /* the build tree: build/agent/livebackup, build/agent/map/ */
        char *p = lb_xasprintf("%s/map/%s", dir, PLUGIN);
        if (access(p, R_OK) == 0)
            return p;
        free(p);
    }
    return lb_xstrdup(LB_PLUGIN_DIR "/" PLUGIN);
}

static void
add(char ***v, size_t *n, char *s)
{
    *v = lb_xrealloc(*v, (*n + 2) * sizeof **v);
    (*v)[(*n)++] = s;
    (*v)[*n] = NULL;
}

char **
agent_export_argv(const struct agent_export *e)
{
    char **v = NULL;
    size_t n = 0;

    add(&v, &n, lb_xstrdup("nbdkit"));
    if (!e->daemon)
        add(&v, &n, lb_xstrdup("--foreground"));
    add(&v, &n, lb_xstrdup("--readonly"));
    if (e->verbose)
        add(&v, &n, lb_xstrdup("--verbose"));
    if (e->log_stderr)
        add(&v, &n, lb_xstrdup("--log=stderr"));
    if (e->socket) {
        add(&v, &n, lb_xasprintf("--unix=%s", e->socket));
    } else {
        add(&v, &n, lb_xasprintf("--port=%s", e->port));
        add(&v, &n,
            lb_xasprintf("--ipaddr=%s", e->bind ? e->bind : "127.0.0.1"));
    }
    if (e->pidfile)
        add(&v, &n, lb_xasprintf("--pidfile=%s", e->pidfile));
    add(&v, &n, agent_export_plugin());
    add(&v, &n, lb_xasprintf("repo=%s", e->url));
    if (e->name)
        add(&v, &n, lb_xasprintf("name=%s", e->name));
    add(&v, &n, lb_xasprintf("backup=%s", e->spec ? e->spec : "latest"));
    add(&v, &n, lb_xasprintf("disk=%s", e->disk));
    /* the plugin removes them when nbdkit stops (if still its own) */
    if (e->socket)
        add(&v, &n, lb_xasprintf("unix=%s", e->socket));
    if (e->pidfile)
        add(&v, &n, lb_xasprintf("pidfile=%s", e->pidfile));
    if (e->cache_bytes)
        add(&v, &n,
            lb_xasprintf("cache=%llu", (unsigned long long)e->cache_bytes));
    if (agent_opts.rsh)
        add(&v, &n, lb_xasprintf("rsh=%s", agent_opts.rsh));
    if (agent_opts.remote_backupd)
        add(&v, &n,
            lb_xasprintf("remote_backupd=%s", agent_opts.remote_backupd));
    return v;
}

void
agent_export_argv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* Name a file the plugin reads (from nbdkit's working directory, which
 * may not be ours) in the environment it inherits. */
static void
export_env_path(const char *var, const char *path)
{
    CLEANUP_FREE char *abs = path ? realpath(path, NULL) : NULL;

    if (path)
        setenv(var, abs ? abs : path, 1);
}

/* nbdkit finds backupd through the plugin, not beside itself; an
 * encrypted repository's passphrase and key file as this command was
 * given them (the plugin reads them as any command does: keys.c). */
static void
export_env(void)
{
    CLEANUP_FREE char *bd = agent_backupd_path();

    setenv("LIVEBACKUP_BACKUPD", bd, 0);
    export_env_path("LIVEBACKUP_PASSPHRASE_FILE", agent_opts.passphrase_file);
    export_env_path("LIVEBACKUP_KEY_FILE", agent_opts.key_file);
}

/*
 * nbdkit leaves its socket behind when it exits: one that nothing listens
 * on any more is removed; one that is served is an error.
 */
static int
socket_clear(const char *path)
{
    struct stat sb;
    int fd;

    if (!path || lstat(path, &sb) < 0)
        return 0;
    if (!S_ISSOCK(sb.st_mode))
        return lb_fail(EEXIST, "%s exists and is not a socket", path);
    fd = lb_unix_connect(path);
    if (fd >= 0) {
        close(fd);
        return lb_fail(EADDRINUSE, "%s is in use: something serves on it",
                       path);
    }
    lb_error_clear();
    if (unlink(path) < 0 && errno != ENOENT)
        return lb_error(errno, "remove the stale socket %s", path);
    return 0;
}

int
agent_export_exec(const struct agent_export *e)
{
    char **v;

    if (socket_clear(e->socket) < 0)
        return -1;
    v = agent_export_argv(e);
    export_env();
    execvp(v[0], v);
    lb_error(errno, "cannot run nbdkit");
    lb_error_hint("install nbdkit (scripts/deps.sh)");
    agent_export_argv_free(v);
    return -1;
}

pid_t
agent_export_pid(const char *pidfile)
{
    CLEANUP_FREE char *text = lb_read_file(pidfile, 64, NULL);

    lb_error_clear();
    return text ? lb_proc_running(strtol(text, NULL, 10), "nbdkit") : 0;
}

/* What nbdkit (and its plugin) said while starting, from the memfd fd:
 * up to 1 MiB, NUL-terminated. */
static char *
start_output(int fd)
{
    struct stat sb;
    size_t len = fstat(fd, &sb) == 0 ? (size_t)LB_MIN(sb.st_size, 1 << 20) : 0;
    char *text = lb_xmalloc(len + 1);
    ssize_t n = len ? pread(fd, text, len, 0) : 0;

    text[n > 0 ? n : 0] = '\0';
    return text;
}

int
agent_export_start(const struct agent_export *e, const char *log)
{
    struct agent_export d = *e;
    CLEANUP_FREE char *text = NULL;
    char **v;
    pid_t pid;
    int st, fd;

    d.daemon = true;
    d.log_stderr |= log != NULL;
    if (socket_clear(e->socket) < 0)
        return -1;
    v = agent_export_argv(&d);
    export_env();
    /* Without a log, what it says while it starts goes to a memfd that we
     * relay: our caller's stderr must not stay open in the daemon, nor in
     * the backupd its plugin starts (a `$(livebackup map --daemon ...)`
     * or an ssh session would wait for them to end). */
    fd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)
             : memfd_create("nbdkit-start", MFD_CLOEXEC);
    if (fd < 0) {
        agent_export_argv_free(v);
        return lb_error(errno, "%s %s", log ? "open" : "memfd_create",
                        log ? log : "for nbdkit's output");
    }
    pid = fork();
    if (pid < 0) {
        close(fd);
        agent_export_argv_free(v);
        return lb_error(errno, "fork");
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        /* its own session: a terminal's signals are not for it */
        setsid();
        if (null >= 0)
            dup2(null, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execvp(v[0], v);
        dprintf(2, "cannot run nbdkit: %s\n", strerror(errno));
        _exit(127);
    }
    agent_export_argv_free(v);
    /* nbdkit forks once it listens and its plugin is ready: its parent
     * exits 0 then, or non-zero on any error (said in the log). */
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            close(fd);
            return lb_error(errno, "wait for nbdkit");
        }
    text = log ? NULL : start_output(fd);
    close(fd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        const char *last;
        size_t len;
        if (log)
            text = lb_read_file(log, 1u << 20, NULL);
        last = text ? text : "";
        len = strlen(last);
        /* the last line it wrote */
        while (len > 0 && last[len - 1] == '\n')
            len--;
        for (size_t i = len; i > 0; i--)
            if (last[i - 1] == '\n') {
                last += i;
                len -= i;
                break;
            }
        /* without a log, the lines before it as they were */
        if (!log && last > text)
            (void)!write(2, text, (size_t)(last - text));
        return lb_fail(EIO, "the export of disk %s did not start: %.*s",
                       e->disk, (int)len, last);
    }
    /* started: what it said meanwhile (warnings) */
    if (text && text[0])
        (void)!write(2, text, strlen(text));
    /* Its background process writes the pid file just after the fork,
     * racing with us: on a busy machine that can take seconds. A minute
     * without one is an error, not a daemon nobody can stop. */
    for (int i = 0; e->pidfile; i++) {
        struct stat sb;
        if (stat(e->pidfile, &sb) == 0 && sb.st_size > 0)
            break;
        if (i == 1200)
            return lb_fail(EIO,
                           "the export of disk %s started but wrote no pid "
                           "file %s in 60 s (its log: %s)",
                           e->disk, e->pidfile, log ? log : "syslog");
        usleep(50 * 1000);
    }
    return 0;
}
