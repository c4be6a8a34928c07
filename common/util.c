/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Full-length I/O, crash-safe small files, sizes, times, hex and the other
 * helpers every module needs. Nothing here knows about backups.
 */
#include "common/common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <wchar.h>

void
lb_cleanup_free(void *ptr)
{
    free(*(void **)ptr);
}

void
lb_cleanup_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}

void
lb_cleanup_fclose(FILE **fp)
{
    if (*fp)
        fclose(*fp);
}

int
lb_write_full(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t r = write(fd, p, len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

int
lb_write2_full(int fd, const void *a, size_t alen, const void *b, size_t blen)
{
    struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
    ssize_t r;

    do
        r = writev(fd, iov, 2);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -1;
    /* a short write: the rest as lb_write_full writes it */
    if ((size_t)r < alen) {
        if (lb_write_full(fd, (const uint8_t *)a + r, alen - (size_t)r) < 0)
            return -1;
        r = (ssize_t)alen;
    }
    return lb_write_full(fd, (const uint8_t *)b + ((size_t)r - alen),
                         blen - ((size_t)r - alen));
}

ssize_t
lb_read_full(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t done = 0;

    while (done < len) {
        ssize_t r = read(fd, p + done, len - done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

int
lb_pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t r = pwrite(fd, p, len, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        off += r;
        len -= (size_t)r;
    }
    return 0;
}

ssize_t
lb_pread_full(int fd, void *buf, size_t len, off_t off)
{
    uint8_t *p = buf;
    size_t done = 0;

    while (done < len) {
        ssize_t r = pread(fd, p + done, len - done, off + (off_t)done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

int
lb_fsync_dir(const char *dir)
{
    CLEANUP_CLOSE int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return lb_error(errno, "open directory %s", dir);
    if (fsync(fd) < 0)
        return lb_error(errno, "fsync directory %s", dir);
    return 0;
}

int
lb_mkdir_p(const char *path, mode_t mode)
{
    char *copy = lb_xstrdup(path);
    char *p = copy;
    int r = 0;

    if (*p == '/')
        p++;
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (*copy && mkdir(copy, mode) < 0 && errno != EEXIST) {
            r = lb_error(errno, "create directory %s", copy);
            break;
        }
        if (!slash)
            break;
        *slash = '/';
        p = slash + 1;
    }
    free(copy);
    return r;
}

int
lb_write_file_atomic(const char *dir, const char *name, const void *buf,
                     size_t len, mode_t mode)
{
    CLEANUP_FREE char *tmp = NULL;
    CLEANUP_FREE char *dst = lb_xasprintf("%s/%s", dir, name);
    uint8_t rnd[8];
    char hex[17];
    int fd;

    /* A name nobody can guess, created only if it does not exist. */
    if (lb_random(rnd, sizeof rnd) < 0)
        return -1;
    lb_hex_encode(hex, rnd, sizeof rnd);
    tmp = lb_xasprintf("%s/.%s.tmp.%s", dir, name, hex);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return lb_error(errno, "create %s", tmp);
    if (lb_write_full(fd, buf, len) < 0 || fsync(fd) < 0) {
        lb_error(errno, "write %s", tmp);
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) < 0) {
        lb_error(errno, "close %s", tmp);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, dst) < 0) {
        lb_error(errno, "rename %s to %s", tmp, dst);
        unlink(tmp);
        return -1;
    }
    return lb_fsync_dir(dir);
}

char *
lb_read_file(const char *path, size_t max, size_t *len_out)
{
    CLEANUP_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *buf;
    ssize_t r;

    if (fd < 0) {
        lb_error(errno, "open %s", path);
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        lb_error(errno, "stat %s", path);
        return NULL;
    }
    if ((uint64_t)st.st_size > max) {
        lb_error(0, "%s: file too large (%lld bytes, at most %zu)", path,
                 (long long)st.st_size, max);
        errno = EFBIG;
        return NULL;
    }
    buf = lb_xmalloc((size_t)st.st_size + 1);
    r = lb_read_full(fd, buf, (size_t)st.st_size);
    if (r < 0) {
        lb_error(errno, "read %s", path);
        free(buf);
        return NULL;
    }
    buf[r] = '\0';
    if (len_out)
        *len_out = (size_t)r;
    return buf;
}

/* ---- allocation -------------------------------------------------------- */

static void
oom(void)
{
    fputs("livebackup: out of memory\n", stderr);
    abort();
}

void *
lb_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *
lb_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *
lb_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

char *
lb_xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        oom();
    return p;
}

char *
lb_xasprintf(const char *fmt, ...)
{
    char *s;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        oom();
    va_end(ap);
    return s;
}

/* ---- time, sizes, hex -------------------------------------------------- */

uint64_t
lb_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t
lb_wall_time(void)
{
    /* Test-only clock override (documented in docs/reliability.md): lets
     * the retention tests create backups "in the past". */
    const char *fake = getenv("LIVEBACKUP_FAKE_TIME");
    int64_t t;

    if (fake && *fake && lb_parse_time(fake, &t) == 0)
        return t;
    return (int64_t)time(NULL);
}

/* The length of the UTF-8 sequence lead byte b begins, 0 if b begins
 * none (a continuation byte, C0, C1, F5-FF). */
static size_t
utf8_lead_len(unsigned char b)
{
    return b < 0x80                 ? 1
           : b >= 0xc2 && b <= 0xdf ? 2
           : b >= 0xe0 && b <= 0xef ? 3
           : b >= 0xf0 && b <= 0xf4 ? 4
                                    : 0;
}

/* The code point of the well-formed UTF-8 sequence at s (len > 0 bytes)
 * into *cp, and its length; 0 where there is none (a stray continuation
 * byte, an overlong form, a surrogate, past U+10FFFF, or cut short). */
static size_t
utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n = utf8_lead_len(s[0]);
    uint32_t c = s[0];

    if (n == 1) {
        *cp = c;
        return 1;
    }
    if (n == 0 || len < n)
        return 0;
    c &= 0x7fu >> n;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* How term_safe writes the sequence at hand (k bytes of code point cp;
 * k == 0: a byte that is not UTF-8): 0, as it is; 4, as \xHH for each
 * byte; 6, as \u00HH. lb_text_cols counts the same. */
static int
term_escape(size_t k, uint32_t cp, bool one_line)
{
    if (k == 0 || cp == 0x7f ||
        (cp < 0x20 && (one_line || (cp != '\n' && cp != '\t'))))
        return 4;
    return cp >= 0x80 && cp <= 0x9f ? 6 : 0;
}

size_t
lb_utf8_partial_tail(const char *s, size_t len)
{
    const unsigned char *c = (const unsigned char *)s;

    /* a lead byte among the last three whose sequence runs past the end */
    for (size_t k = 1; k <= 3 && k <= len; k++) {
        unsigned char b = c[len - k];
        size_t need = utf8_lead_len(b);
        if (need)
            return need > k ? k : 0;
        if ((b & 0xc0) != 0x80)
            return 0;
    }
    return 0;
}

/* C.UTF-8's character widths (glibc's wcwidth under that locale), made
 * once; NULL where the locale is missing (then a code point is a column). */
static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void
utf8_locale_init(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

int
lb_text_cols(const char *s)
{
    const unsigned char *c = (const unsigned char *)s;
    size_t len = strlen(s);
    locale_t old = (locale_t)0;
    int n = 0;

    pthread_once(&utf8_once, utf8_locale_init);
    if (utf8_locale)
        old = uselocale(utf8_locale);
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t k = utf8_next(c + i, len - i, &cp);
        int w = term_escape(k, cp, true); /* as lb_term_line prints it */
        if (w == 0)
            w = utf8_locale ? wcwidth((wchar_t)cp) : 1;
        n += w < 0 ? 1 : w;
        i += k ? k : 1;
    }
    if (utf8_locale)
        uselocale(old);
    return n;
}

int
lb_pad_width(const char *s, int cols)
{
    return cols + (int)strlen(s) - lb_text_cols(s);
}

pid_t
lb_proc_running(long pid, const char *comm)
{
    char path[64], stat[512];
    size_t cl = strlen(comm);
    ssize_t n;
    int fd;
    char *p;

    if (pid <= 1 || pid > INT_MAX)
        return 0;
    /* "PID (COMM) S ..." (procfs files have no size: one read) */
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, stat, sizeof stat - 1);
    close(fd);
    if (n <= 0)
        return 0;
    stat[n] = '\0';
    p = strchr(stat, '(');
    if (!p || strncmp(p + 1, comm, cl) != 0 || p[1 + cl] != ')' ||
        p[2 + cl] != ' ' || p[3 + cl] == 'Z')
        return 0;
    return (pid_t)pid;
}

/* s as terminal text into b: see lb_term_safe; with one_line, newline and
 * tab are escaped too. */
static void
term_safe(struct lb_buf *b, const char *s, size_t len, bool one_line)
{
    const unsigned char *c = (const unsigned char *)s;
    char esc[8];

    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t k = utf8_next(c + i, len - i, &cp);
        int e = term_escape(k, cp, one_line);
        if (e == 4) {
            snprintf(esc, sizeof esc, "\\x%02x", c[i]);
            lb_buf_append(b, esc, 4);
            i++;
            continue;
        }
        if (e == 6) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
            lb_buf_append(b, esc, 6);
        } else {
            lb_buf_append(b, c + i, k);
        }
        i += k;
    }
    lb_buf_put_u8(b, 0);
}

char *
lb_term_safe_n(const char *s, size_t len)
{
    struct lb_buf b = {0};

    term_safe(&b, s, len, false);
    return (char *)b.data;
}

char *
lb_term_safe(const char *s)
{
    return lb_term_safe_n(s, strlen(s));
}

char *
lb_term_line(const char *s)
{
    struct lb_buf b = {0};

    term_safe(&b, s, strlen(s), true);
    return (char *)b.data;
}

char *
lb_human_size(char *buf, size_t len, uint64_t bytes)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    size_t i = 0;

    while (v >= 1024 && i + 1 < LB_ARRAY_SIZE(unit)) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%.1f %s", v, unit[i]);
    return buf;
}

char *
lb_human_age(char *buf, size_t len, int64_t s)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(buf, len, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(buf, len, "%lldm %02llds", (long long)(s / 60),
                 (long long)(s % 60));
    else if (s < 86400)
        snprintf(buf, len, "%lldh %02lldm", (long long)(s / 3600),
                 (long long)(s % 3600 / 60));
    else
        snprintf(buf, len, "%lldd %02lldh", (long long)(s / 86400),
                 (long long)(s % 86400 / 3600));
    return buf;
}

int
lb_parse_size(const char *s, uint64_t *out)
{
    char *end;
    double v;
    uint64_t mult = 1;

    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    v = strtod(s, &end);
    /* !(v >= 0) also rejects NaN, which no comparison below would catch
     * and whose conversion to an integer is undefined. */
    if (errno || end == s || !(v >= 0))
        return -1;
    switch (tolower((unsigned char)*end)) {
    case '\0':
        break;
    case 'k':
        mult = 1ull << 10;
        break;
    case 'm':
        mult = 1ull << 20;
        break;
    case 'g':
        mult = 1ull << 30;
        break;
    case 't':
        mult = 1ull << 40;
        break;
    default:
        return -1;
    }
    if (*end) {
        end++;
        if (tolower((unsigned char)*end) == 'i')
            end++;
        if (tolower((unsigned char)*end) == 'b')
            end++;
        if (*end)
            return -1;
    }
    v *= (double)mult;
    if (v >= 18446744073709551615.0)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int
lb_parse_long(const char *s, long lo, long hi, long *out)
{
    const char *d = s && *s == '-' ? s + 1 : s;
    char *end;
    long v;

    /* strtol itself takes blanks and a '+' first */
    if (!d || *d < '0' || *d > '9') {
        errno = EINVAL;
        return -1;
    }
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        errno = EINVAL;
        return -1;
    }
    *out = v;
    return 0;
}

char *
lb_format_time(char *buf, size_t len, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    /* A time gmtime cannot represent, or past year 9999 (too long for the
     * buffer, where strftime leaves it undefined): the "@UNIX" form, which
     * lb_parse_time reads back. */
    if (!gmtime_r(&tt, &tm) ||
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "@%lld", (long long)t);
    return buf;
}

int
lb_parse_time(const char *s, int64_t *out)
{
    static const char *const fmts[] = {
        "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",     "%Y-%m-%d %H:%M",    "%Y-%m-%d",
    };
    struct tm tm;

    if (s[0] == '@') {
        char *end;
        long long v;
        errno = 0;
        v = strtoll(s + 1, &end, 10);
        if (errno || end == s + 1 || *end)
            return -1;
        *out = v;
        return 0;
    }
    for (size_t i = 0; i < LB_ARRAY_SIZE(fmts); i++) {
        const char *end;
        struct tm want;
        time_t t;

        memset(&tm, 0, sizeof tm);
        end = strptime(s, fmts[i], &tm);
        if (!end || *end != '\0')
            continue;
        /* strptime takes a day 1-31 in any month and an hour's 60th
         * second: timegm would make 2026-02-30 March 2nd (it normalizes
         * tm in place). A time is one the calendar has, or refused. */
        want = tm;
        t = timegm(&tm);
        if (tm.tm_year != want.tm_year || tm.tm_mon != want.tm_mon ||
            tm.tm_mday != want.tm_mday || tm.tm_hour != want.tm_hour ||
            tm.tm_min != want.tm_min || tm.tm_sec != want.tm_sec)
            return -1;
        *out = (int64_t)t;
        return 0;
    }
    return -1;
}

void
lb_hex_encode(char *out, const uint8_t *in, size_t len)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
lb_hex_decode(uint8_t *out, size_t len, const char *hex)
{
    if (strlen(hex) != 2 * len)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int
lb_random(void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t r = getrandom(p, len, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return lb_error(errno, "getrandom");
        }
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

char *
lb_exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    char *slash;

    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    slash = strrchr(buf, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    return lb_xstrdup(buf);
}

/* Split a command line into words: whitespace separates, single and
 * double quotes group, backslash escapes (a small subset of sh). */
char **
lb_split_words(const char *s, size_t *n)
{
    char **v = NULL;
    struct lb_buf w = {0};
    bool in_word = false;
    char q = 0;

    *n = 0;
    for (;; s++) {
        char c = *s;
        if (c == '\0' || (!q && (c == ' ' || c == '\t'))) {
            if (in_word) {
                lb_buf_put_u8(&w, 0);
                v = lb_xrealloc(v, (*n + 2) * sizeof *v);
                v[(*n)++] = (char *)w.data;
                memset(&w, 0, sizeof w);
                in_word = false;
            }
            if (c == '\0')
                break;
            continue;
        }
        in_word = true;
        if (q) {
            if (c == q)
                q = 0;
            else if (c == '\\' && q == '"' && s[1])
                lb_buf_put_u8(&w, (uint8_t) * ++s);
            else
                lb_buf_put_u8(&w, (uint8_t)c);
        } else if (c == '\'' || c == '"') {
            q = c;
        } else if (c == '\\' && s[1]) {
            lb_buf_put_u8(&w, (uint8_t) * ++s);
        } else {
            lb_buf_put_u8(&w, (uint8_t)c);
        }
    }
    lb_buf_free(&w);
    if (!v)
        v = lb_xcalloc(2, sizeof *v);
    v[*n] = NULL;
    return v;
}

void
lb_free_words(char **w)
{
    for (size_t i = 0; w && w[i]; i++)
        free(w[i]);
    free(w);
}

bool
lb_is_zero(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint64_t acc = 0;
    size_t i = 0;

    /* Word at a time (memcpy compiles to plain loads, and the compiler
     * vectorises the loop); bail out early every 4 KiB. */
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        acc |= w;
        if ((i & 4095) == 4088 && acc)
            return false;
    }
    for (; i < len; i++)
        acc |= b[i];
    return acc == 0;
}

unsigned
lb_ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

int
lb_unix_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    int fd;

    if (len >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path, len + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

char *
lb_repo_daemon_socket(const char *repo)
{
    CLEANUP_FREE char *marker = lb_xasprintf("%s/listen", repo);
    char *text = lb_read_file(marker, 8192, NULL);

    if (!text) {
        lb_error_clear();
        return NULL;
    }
    text[strcspn(text, "\n")] = '\0';
    return text;
}
