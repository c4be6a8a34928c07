/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent's end of a repository connection. A local repository is
 * served by a `backupd serve` child; ssh://[user@]host[:port]/path runs
 * `ssh [opts] host backupd serve --repo /path` (the ssh command can be
 * replaced with --rsh, like rsync's -e). Either way the agent speaks only
 * the protocol, over the child's stdin/stdout; the child's stderr goes to
 * ours so ssh and backupd messages reach the user.
 */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* 'quoted' for the remote shell. */
static char *
shell_quote(const char *s)
{
    struct lb_buf b = {0};

    lb_buf_put_u8(&b, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            lb_buf_append(&b, "'\\''", 4);
        else
            lb_buf_put_u8(&b, (uint8_t)*s);
    }
    lb_buf_append(&b, "'", 2); /* quote and NUL */
    return (char *)b.data;
}

static char *
local_backupd(void)
{
    const char *env = getenv("LIVEBACKUP_BACKUPD");
    CLEANUP_FREE char *dir = NULL;

    if (env && *env)
        return lb_xstrdup(env);
    dir = lb_exe_dir();
    if (dir) {
        /* Installed side by side, or in the build tree. */
        static const char *const rel[] = {"backupd", "../backupd/backupd"};
        for (size_t i = 0; i < LB_ARRAY_SIZE(rel); i++) {
            char *p = lb_xasprintf("%s/%s", dir, rel[i]);
            if (access(p, X_OK) == 0)
                return p;
            free(p);
        }
    }
    return lb_xstrdup("backupd");
}

/* Parse ssh://[user@]host[:port]/path. */
/* ssh://[user@]host[:port]/path[?socket=/run/backupd.sock] */
static int
parse_ssh_url(const char *url, char **userhost, char **port, char **path,
              char **socket_path)
{
    const char *p = url + 6, *slash = strchr(p, '/'), *colon;
    char *hostpart;

    if (!slash || slash == p || !slash[1])
        return lb_fail(EINVAL,
                       "bad repository URL '%s': expected "
                       "ssh://[user@]host[:port]/path",
                       url);
    hostpart = strndup(p, (size_t)(slash - p));
    colon = strrchr(hostpart, ':');
    *port = NULL;
    if (colon && !strchr(colon, ']')) {
        *port = lb_xstrdup(colon + 1);
        hostpart[colon - hostpart] = '\0';
    }
    *userhost = hostpart;
    *path = lb_xstrdup(slash);
    *socket_path = NULL;
    {
        char *q = strchr(*path, '?');
        if (q) {
            *q++ = '\0';
            if (strncmp(q, "socket=", 7) != 0 || !q[7])
                return lb_fail(
                    EINVAL,
                    "bad repository URL '%s': the only option is "
                    "?socket=PATH (a backupd listen daemon's socket)",
                    url);
            *socket_path = lb_xstrdup(q + 7);
        }
    }
    return 0;
}

static int
spawn(struct agent_repo *r, char **argv)
{
    int to[2], from[2];
    pid_t pid;

    if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
        return lb_error(errno, "pipe");
    /* 1 MiB pipes rather than 64 KiB: a 4 MiB window's chunk crosses in a
     * few reads, not dozens of wake-ups (best effort: the size is capped
     * by /proc/sys/fs/pipe-max-size for an unprivileged user). */
    (void)fcntl(to[1], F_SETPIPE_SZ, 1 << 20);
    (void)fcntl(from[1], F_SETPIPE_SZ, 1 << 20);
    pid = fork();
    if (pid < 0)
        return lb_error(errno, "fork");
    if (pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        /* Our own process group: a Ctrl-C reaches the agent, which then
         * ends the session cleanly instead of killing backupd mid-write. */
        setpgid(0, 0);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], argv);
        dprintf(2, "livebackup: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    r->child = pid;
    r->conn = proto_conn_new(from[0], to[1]);
    return 0;
}

/* Wait up to ms for the child; returns its status or -1 if still alive. */
static int
reap(struct agent_repo *r, int ms)
{
    int status;

    if (r->child <= 0)
        return -1;
    for (int waited = 0;; waited += 50) {
        pid_t p = waitpid(r->child, &status, WNOHANG);
        if (p == r->child) {
            r->child = 0;
            return status;
        }
        if (p < 0 && errno != EINTR) {
            r->child = 0;
            return -1;
        }
        if (waited >= ms)
            return -1;
        usleep(50 * 1000);
    }
}

void
agent_repo_explain(struct agent_repo *r)
{
    char msg[1024], hint[512];
    int status;

    snprintf(msg, sizeof msg, "%s", lb_error_msg());
    snprintf(hint, sizeof hint, "%s", lb_error_hint_msg());
    /* The server may have said why before it closed: read what it sent
     * (an ERROR frame), waiting a little for it. */
    while (r->conn && !proto_conn_got_error(r->conn) &&
           !proto_conn_eof(r->conn) &&
           proto_conn_wait_readable(r->conn, 2000) == 1) {
        struct proto_hdr h;
        const uint8_t *p;
        if (proto_conn_recv(r->conn, &h, &p) < 0)
            break;
        if (h.type == PROTO_T_ERROR) {
            proto_conn_take_error(r->conn, p, h.len, NULL);
            return;
        }
    }
    if (r->conn && proto_conn_got_error(r->conn)) {
        /* The server's message is in the slot: it says it all. */
        lb_error(0, "%s", msg);
        if (hint[0])
            lb_error_hint("%s", hint);
        return;
    }
    lb_error(0, "%s", msg);
    if (hint[0])
        lb_error_hint("%s", hint);
    proto_conn_free(r->conn, true);
    r->conn = NULL;
    status = reap(r, 5000);
    if (status < 0)
        return;
    if (WIFSIGNALED(status)) {
        lb_error(0, "%s (%s was killed by signal %d)", msg,
                 r->host ? "ssh" : "backupd", WTERMSIG(status));
        lb_error_hint("nothing half-done was committed; run the command "
                      "again (a backup reuses the data already stored)");
    } else if (WIFEXITED(status) && r->host && WEXITSTATUS(status) == 255 &&
               r->established) {
        lb_error(0,
                 "the connection to %s was cut: %s (ssh ended with status "
                 "255: the remote backupd or sshd went away)",
                 r->host, msg);
        lb_error_hint("nothing half-done was committed; run the command "
                      "again (a backup reuses the data already stored)");
    } else if (WIFEXITED(status) && r->host && WEXITSTATUS(status) == 255) {
        lb_error(0, "ssh to %s failed (see ssh's message above)", r->host);
        lb_error_hint("check the host name, port, key and that sshd runs "
                      "there (ssh options go in --rsh \"ssh -i KEY ...\")");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        if (r->host) {
            lb_error(0,
                     "backupd is not installed on %s (the remote shell "
                     "could not find it)",
                     r->host);
            lb_error_hint("install livebackup on %s, or give its path with "
                          "--remote-backupd PATH",
                          r->host);
        } else {
            lb_error(0, "cannot start backupd for the local repository");
            lb_error_hint("install livebackup, or set LIVEBACKUP_BACKUPD");
        }
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        lb_error(0, "%s (%s exited with status %d)", msg,
                 r->host ? "the remote side" : "backupd", WEXITSTATUS(status));
        if (hint[0])
            lb_error_hint("%s", hint);
    }
}

/*
 * A local repository served by a `backupd listen` daemon (REPO/listen names
 * its socket): talk to it directly, as the backupd child would after its
 * BRIDGE frame, which we send ourselves (PROTOCOL.md, "Bridging"): one
 * process and one copy of every byte fewer. NULL if no daemon answers, or
 * it may not be reached (then the child reports why).
 */
static struct proto_conn *
daemon_conn(const char *repo)
{
    CLEANUP_FREE char *sock = lb_repo_daemon_socket(repo);
    struct proto_conn *c;
    struct proto_kv kv = {0};
    struct lb_buf f = {0};
    int fd;

    if (!sock)
        return NULL;
    fd = lb_unix_connect(sock);
    if (fd < 0)
        return NULL;
    lb_debug("talking to backupd listen at %s", sock);
    c = proto_conn_new(fd, fd);
    proto_kv_set(&kv, "append_only", "0");
    proto_kv_set(&kv, "trusted", "1"); /* as our own child would be */
    proto_kv_set(&kv, "peer", "local");
    proto_enc_kv(&f, PROTO_T_BRIDGE, &kv);
    proto_kv_free(&kv);
    if (proto_conn_send_buf(c, &f) < 0) {
        lb_buf_free(&f);
        proto_conn_free(c, true);
        lb_error_clear();
        return NULL;
    }
    lb_buf_free(&f);
    return c;
}

struct agent_repo *
agent_repo_connect(const char *url)
{
    struct agent_repo *r = lb_xcalloc(1, sizeof *r);
    struct proto_hello h = {
        PROTO_VERSION,
        PROTO_VERSION,
        0,
        {"livebackup " LB_VERSION, sizeof("livebackup " LB_VERSION) - 1}};
    const uint8_t *p;
    uint32_t len;
    char wait_s[16];

    r->url = lb_xstrdup(url);
    snprintf(wait_s, sizeof wait_s, "%u", agent_opts.lock_wait);
    if (strncmp(url, "ssh://", 6) == 0) {
        CLEANUP_FREE char *port = NULL;
        CLEANUP_FREE char *qpath = NULL;
        CLEANUP_FREE char *remote = NULL;
        const char *rsh = agent_opts.rsh ? agent_opts.rsh : "ssh";
        const char *rb =
            agent_opts.remote_backupd ? agent_opts.remote_backupd : "backupd";
        size_t n;
        char **argv;

        CLEANUP_FREE char *sock = NULL;
        CLEANUP_FREE char *qsock = NULL;

        if (parse_ssh_url(url, &r->host, &port, &r->path, &sock) < 0)
            goto fail;
        qpath = shell_quote(r->path);
        qsock = sock ? shell_quote(sock) : NULL;
        remote =
            lb_xasprintf("%s serve --repo %s --lock-wait %s%s%s", rb, qpath,
                         wait_s, sock ? " --socket " : "", sock ? qsock : "");
        argv = lb_split_words(rsh, &n);
        argv = lb_xrealloc(argv, (n + 6) * sizeof *argv);
        if (port) {
            argv[n++] = lb_xstrdup("-p");
            argv[n++] = lb_xstrdup(port);
        }
        argv[n++] = lb_xstrdup(r->host);
        argv[n++] = lb_xstrdup(remote);
        argv[n] = NULL;
        lb_debug("running: %s ... %s %s", argv[0], r->host, remote);
        int sr = spawn(r, argv);
        for (size_t i = 0; i < n; i++)
            free(argv[i]);
        free(argv);
        if (sr < 0)
            goto fail;
    } else if ((r->conn = daemon_conn(url)) != NULL) {
        r->path = lb_xstrdup(url);
    } else {
        CLEANUP_FREE char *bd = local_backupd();
        /* Our own child, on files we could write ourselves: re-hashing
         * every upload would protect nothing (verify still checks). */
        char *argv[] = {bd,
                        "serve",
                        "--repo",
                        (char *)url,
                        "--lock-wait",
                        wait_s,
                        "--trusted-client",
                        NULL};
        r->path = lb_xstrdup(url);
        if (spawn(r, argv) < 0)
            goto fail;
    }
    if (agent_opts.bwlimit) {
        lb_debug("pacing the connection at %llu bytes/s",
                 (unsigned long long)agent_opts.bwlimit);
        proto_conn_set_bwlimit(r->conn, agent_opts.bwlimit);
    }
    proto_enc_hello(&r->out, PROTO_T_HELLO, &h);
    if (agent_repo_call(r, PROTO_T_HELLO_REPLY, &p, &len, NULL) < 0)
        goto fail;
    {
        struct proto_hello reply;
        if (proto_dec_hello(p, len, &reply) != PROTO_OK ||
            proto_hello_check_reply(&reply, PROTO_VERSION, PROTO_VERSION,
                                    h.features) != PROTO_OK) {
            lb_error(0, "backupd answered HELLO with an unsupported version");
            goto fail;
        }
    }
    r->established = true;
    return r;
fail : {
    char msg[1024], hint[512];
    snprintf(msg, sizeof msg, "%s", lb_error_msg());
    snprintf(hint, sizeof hint, "%s", lb_error_hint_msg());
    agent_repo_close(r);
    lb_error(0, "%s", msg);
    if (hint[0])
        lb_error_hint("%s", hint);
}
    return NULL;
}

void
agent_repo_end(struct agent_repo *r)
{
    proto_conn_free(r->conn, true);
    r->conn = NULL;
    if (r->child > 0 && reap(r, 10000) < 0) {
        kill(r->child, SIGTERM);
        reap(r, 2000);
    }
}

void
agent_repo_close(struct agent_repo *r)
{
    if (!r)
        return;
    agent_repo_end(r);
    lb_buf_free(&r->out);
    free(r->url);
    free(r->path);
    free(r->host);
    free(r);
}

int
agent_repo_init(struct agent_repo *r, uint32_t window_size)
{
    const uint8_t *p;
    uint32_t len;

    proto_enc_init(&r->out, window_size);
    return agent_repo_call(r, PROTO_T_OK, &p, &len, NULL);
}

int
agent_repo_call(struct agent_repo *r, uint16_t type, const uint8_t **p,
                uint32_t *len, uint32_t *code)
{
    if (proto_conn_send_buf(r->conn, &r->out) < 0 ||
        proto_conn_expect(r->conn, type, p, len, code) < 0) {
        agent_repo_explain(r);
        return -1;
    }
    return 0;
}

int
agent_repo_open(struct agent_repo *r, uint8_t mode)
{
    const uint8_t *p;
    uint32_t len;
    struct proto_repo_info ri;

    uint32_t code = 0;

    proto_enc_open(&r->out, mode);
    if (agent_repo_call(r, PROTO_T_REPO_INFO, &p, &len, &code) < 0) {
        /* backupd knows only its path: name the URL the user gave. */
        if (code == PROTO_ERR_NO_REPO && r->host &&
            strstr(lb_error_msg(), "no repository"))
            lb_error_hint("create one with: livebackup init --repo %s", r->url);
        return -1;
    }
    if (proto_dec_repo_info(p, len, &ri) != PROTO_OK)
        return lb_error(0, "backupd sent a malformed REPO_INFO");
    r->window_size = ri.window_size;
    r->append_only = ri.flags & PROTO_REPO_F_APPEND_ONLY;
    proto_str_copy(r->repo_id, sizeof r->repo_id, ri.repo_id);
    return 0;
}

int
agent_repo_list(struct agent_repo *r, const char *name, struct agent_list *out)
{
    struct proto_hdr h;
    const uint8_t *p;

    out->n = 0;
    out->b = NULL;
    proto_enc_str(&r->out, PROTO_T_LIST, name ? name : "");
    if (proto_conn_send_buf(r->conn, &r->out) < 0)
        goto fail;
    for (;;) {
        if (proto_conn_recv(r->conn, &h, &p) < 0)
            goto fail;
        if (h.type == PROTO_T_LIST_END)
            return 0;
        if (h.type == PROTO_T_ERROR) {
            proto_conn_take_error(r->conn, p, h.len, NULL);
            agent_list_free(out);
            return -1;
        }
        if (h.type != PROTO_T_LIST_ENTRY) {
            lb_error(0, "protocol error: unexpected %s in a listing",
                     proto_type_name(h.type));
            agent_list_free(out);
            return -1;
        }
        out->b = lb_xrealloc(out->b, (out->n + 1) * sizeof *out->b);
        if (proto_dec_kv(p, h.len, &out->b[out->n]) != PROTO_OK) {
            agent_list_free(out);
            return lb_error(0, "protocol error: malformed LIST_ENTRY");
        }
        out->n++;
    }
fail:
    agent_list_free(out);
    agent_repo_explain(r);
    return -1;
}

void
agent_list_free(struct agent_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        proto_kv_free(&l->b[i]);
    free(l->b);
    l->b = NULL;
    l->n = 0;
}

ssize_t
agent_list_pick(const struct agent_list *l, const char *name, const char *spec)
{
    int64_t t;

    if (l->n == 0) {
        lb_fail(ENOENT, "no backups of %s in this repository", name);
        lb_error_hint("livebackup list shows the backups and their names");
        return -1;
    }
    if (!spec || strcmp(spec, "latest") == 0)
        return (ssize_t)l->n - 1;
    if (proto_backup_id_valid(spec, strlen(spec))) {
        for (size_t i = 0; i < l->n; i++)
            if (strcmp(proto_kv_get(&l->b[i], "id"), spec) == 0)
                return (ssize_t)i;
        lb_fail(ENOENT, "no backup %s of %s", spec, name);
        lb_error_hint("livebackup list --name %s shows its backups", name);
        return -1;
    }
    if (lb_parse_time(spec, &t) == 0) {
        ssize_t best = -1;
        for (size_t i = 0; i < l->n; i++)
            if ((int64_t)proto_kv_get_u64(&l->b[i], "time", 0) <= t)
                best = (ssize_t)i;
        if (best < 0) {
            char first[32];
            lb_format_time(first, sizeof first,
                           (int64_t)proto_kv_get_u64(&l->b[0], "time", 0));
            lb_fail(ENOENT,
                    "no backup of %s at or before %s (the first is "
                    "from %s)",
                    name, spec, first);
        }
        return best;
    }
    lb_fail(EINVAL,
            "'%s' is neither a backup id, 'latest', nor a time "
            "(YYYY-MM-DD[THH:MM[:SS]], UTC)",
            spec);
    return -1;
}

int
agent_repo_get_manifest(struct agent_repo *r, const char *id)
{
    char tmpl[] = "/tmp/livebackup-manifest-XXXXXX";
    const char *dir = getenv("TMPDIR");
    CLEANUP_FREE char *path = NULL;
    uint64_t total = 0, want;
    const uint8_t *p;
    struct proto_hdr h;
    int fd;

    path = dir && *dir ? lb_xasprintf("%s/livebackup-manifest-XXXXXX", dir)
                       : lb_xstrdup(tmpl);
    fd = mkstemp(path);
    if (fd < 0)
        return lb_error(errno, "create a temporary file in %s",
                        dir ? dir : "/tmp");
    unlink(path);
    proto_enc_str(&r->out, PROTO_T_GET_MANIFEST, id);
    if (proto_conn_send_buf(r->conn, &r->out) < 0)
        goto conn_fail;
    for (;;) {
        if (proto_conn_recv(r->conn, &h, &p) < 0)
            goto conn_fail;
        if (h.type == PROTO_T_MANIFEST_DATA) {
            if (lb_write_full(fd, p, h.len) < 0) {
                lb_error(errno, "write the manifest to a temporary file");
                goto fail;
            }
            total += h.len;
            continue;
        }
        if (h.type == PROTO_T_MANIFEST_END) {
            if (proto_dec_u64(p, h.len, &want) != PROTO_OK || want != total) {
                lb_error(0, "manifest of %s: transfer incomplete", id);
                goto fail;
            }
            break;
        }
        if (h.type == PROTO_T_ERROR) {
            proto_conn_take_error(r->conn, p, h.len, NULL);
            goto fail;
        }
        lb_error(0, "protocol error: unexpected %s", proto_type_name(h.type));
        goto fail;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        lb_error(errno, "seek");
        goto fail;
    }
    return fd;
conn_fail:
    agent_repo_explain(r);
fail:
    close(fd);
    return -1;
}
