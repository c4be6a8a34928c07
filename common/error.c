/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The per-thread error slot and the logger.
 *
 * A failing function records what failed, on what, and errno once, where the
 * failure is found; callers that only propagate it return -1. The top of
 * the program decides how to show it: the CLI prints it, backupd sends it
 * to the client. This keeps library code free of printing.
 */
#include "common/common.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>

static _Thread_local char err_msg[LB_ERR_MAX];
static _Thread_local char err_hint[LB_ERR_MAX / 2];
static _Thread_local int err_errno;

static void __attribute__((format(printf, 2, 0)))
vformat_error(int errnum, const char *fmt, va_list ap)
{
    int n = vsnprintf(err_msg, sizeof err_msg, fmt, ap);

    if (n < 0)
        n = 0;
    if (errnum != 0 && (size_t)n < sizeof err_msg) {
        char buf[256];
        const char *s = strerror_r(errnum, buf, sizeof buf);
        snprintf(err_msg + n, sizeof err_msg - (size_t)n, ": %s", s);
    }
    err_errno = errnum;
    err_hint[0] = '\0';
}

int
lb_error(int errnum, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    vformat_error(errnum, fmt, ap);
    va_end(ap);
    errno = saved;
    return -1;
}

int
lb_fail(int errnum, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    vformat_error(0, fmt, ap);
    va_end(ap);
    err_errno = errnum;
    errno = saved;
    return -1;
}

void
lb_error_prefix(const char *fmt, ...)
{
    char prefix[LB_ERR_MAX / 2];
    size_t pl, ol;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    pl = strlen(prefix);
    ol = strlen(err_msg);
    /* "prefix: old", truncating the old message if it must. */
    if (pl + 2 + ol + 1 > sizeof err_msg)
        ol = sizeof err_msg - pl - 3;
    memmove(err_msg + pl + 2, err_msg, ol);
    err_msg[pl + 2 + ol] = '\0';
    memcpy(err_msg, prefix, pl);
    err_msg[pl] = ':';
    err_msg[pl + 1] = ' ';
}

void
lb_error_hint(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err_hint, sizeof err_hint, fmt, ap);
    va_end(ap);
}

const char *
lb_error_msg(void)
{
    return err_msg[0] ? err_msg : "unknown error";
}

const char *
lb_error_hint_msg(void)
{
    return err_hint;
}

int
lb_error_errno(void)
{
    return err_errno;
}

void
lb_error_set_errno(int errnum)
{
    err_errno = errnum;
}

void
lb_error_save(struct lb_error_saved *s)
{
    *s = (struct lb_error_saved){.errnum = err_errno};
    snprintf(s->msg, sizeof s->msg, "%s", err_msg);
    snprintf(s->hint, sizeof s->hint, "%s", err_hint);
}

int
lb_error_restore(const struct lb_error_saved *s)
{
    snprintf(err_msg, sizeof err_msg, "%s", s->msg);
    snprintf(err_hint, sizeof err_hint, "%s", s->hint);
    err_errno = s->errnum;
    return -1;
}

void
lb_error_clear(void)
{
    err_msg[0] = '\0';
    err_hint[0] = '\0';
    err_errno = 0;
}

/* ---- logging ----------------------------------------------------------- */

static const char *log_prog = "livebackup";
static enum lb_log_level log_level = LB_LOG_INFO;
static bool log_syslog, log_stderr = true;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void
lb_log_init(const char *progname, enum lb_log_level level)
{
    log_prog = progname;
    log_level = level;
}

void
lb_log_set_level(enum lb_log_level level)
{
    log_level = level;
}

enum lb_log_level
lb_log_get_level(void)
{
    return log_level;
}

void
lb_log_set_target(enum lb_log_target t)
{
    bool sys = t != LB_LOG_TO_STDERR;

    if (sys && !log_syslog)
        openlog(log_prog, LOG_PID, LOG_DAEMON);
    log_syslog = sys;
    log_stderr = t != LB_LOG_TO_SYSLOG;
}

void
lb_log_target_auto(bool keep_stderr)
{
    const char *js = getenv("JOURNAL_STREAM");

    if (isatty(2) || (js && *js))
        lb_log_set_target(LB_LOG_TO_STDERR);
    else
        lb_log_set_target(keep_stderr ? LB_LOG_TO_BOTH : LB_LOG_TO_SYSLOG);
}

/* One line to the sinks, escaped (names and messages of a repository or
 * a peer: no escape sequences): "PROG: LABEL: TEXT", or "PROG: TEXT"
 * when label is empty; syslog gets "LABEL: TEXT" only for a label its
 * priority does not say (the hint). */
static void
log_line(int prio, const char *label, bool label_to_syslog, const char *text)
{
    char *safe = lb_term_safe(text);

    if (log_syslog) {
        if (label_to_syslog)
            syslog(prio, "%s: %s", label, safe);
        else
            syslog(prio, "%s", safe);
    }
    if (log_stderr) {
        pthread_mutex_lock(&log_lock);
        if (label[0])
            fprintf(stderr, "%s: %s: %s\n", log_prog, label, safe);
        else
            fprintf(stderr, "%s: %s\n", log_prog, safe);
        pthread_mutex_unlock(&log_lock);
    }
    free(safe);
}

void
lb_log(enum lb_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "", "debug"};
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    char line[2048];
    int saved = errno;
    va_list ap;

    if (level > log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_line(prio[level], names[level], false, line);
    errno = saved;
}

void
lb_log_error_slot(void)
{
    lb_log(LB_LOG_ERROR, "%s", lb_error_msg());
    if (err_hint[0])
        log_line(LOG_ERR, "hint", true, err_hint);
}

/* ---- fault injection (tests only) --------------------------------------- */

/* Does spec ("POINT[@N]..." ) name this point? Sets *nth, returns the rest
 * after POINT[@N], or NULL. */
static const char *
fault_match(const char *spec, const char *name, unsigned long *nth)
{
    size_t n = strlen(name);
    char *end;

    if (strncmp(spec, name, n) != 0)
        return NULL;
    *nth = 1;
    spec += n;
    if (spec[0] == '@' && spec[1] == '*') {
        *nth = 0; /* every time */
        spec += 2;
    } else if (*spec == '@') {
        *nth = strtoul(spec + 1, &end, 10);
        spec = end;
    }
    return spec;
}

/* Run the hook synchronously, its environment ours less the fault
 * variables, plus LIVEBACKUP_FAULT_POINT=name. */
static void
fault_hook_run(const char *name, const char *cmd)
{
    extern char **environ;
    size_t n = 0, k = 0;
    char **envp;
    char point[128];
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    pid_t pid;
    int status = 0, rc;

    while (environ[n])
        n++;
    envp = calloc(n + 2, sizeof *envp);
    if (!envp)
        return;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LIVEBACKUP_FAULT", 16) != 0)
            envp[k++] = environ[i];
    snprintf(point, sizeof point, "LIVEBACKUP_FAULT_POINT=%s", name);
    envp[k] = point;
    fprintf(stderr, "%s: fault injection: running the hook at %s\n", log_prog,
            name);
    rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, envp);
    free(envp);
    if (rc != 0) {
        fprintf(stderr, "%s: fault injection: cannot run the hook: %s\n",
                log_prog, strerror(rc));
        return;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "%s: fault injection: the hook at %s failed (%#x)\n",
                log_prog, name, (unsigned)status);
}

/*
 * LIVEBACKUP_FAULT=POINT or POINT@N: SIGKILL ourselves the N-th time (1 by
 * default) POINT is reached. LIVEBACKUP_FAULT_HOOK=POINT[@N]:COMMAND: run
 * COMMAND (sh -c) there instead, wait for it, and go on; POINT@*:COMMAND
 * runs it every time. The counters are per process.
 */
void
lb_fault_point(const char *name)
{
    static _Atomic unsigned hits, hook_hits;
    const char *want = getenv("LIVEBACKUP_FAULT");
    const char *hook = getenv("LIVEBACKUP_FAULT_HOOK");
    const char *rest;
    unsigned long nth;

    if (hook && (rest = fault_match(hook, name, &nth)) && *rest == ':' &&
        (nth == 0 || ++hook_hits == nth))
        fault_hook_run(name, rest + 1);
    if (want == NULL || *want == '\0')
        return;
    rest = fault_match(want, name, &nth);
    if (!rest || *rest != '\0')
        return;
    if (++hits < nth)
        return;
    fprintf(stderr, "%s: fault injection: killed at %s\n", log_prog, name);
    kill(getpid(), SIGKILL);
}
