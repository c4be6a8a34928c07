/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * common: small helpers shared by every module of livebackup.
 *
 * - cleanup macros for locals (the nbdkit/libnbd pattern);
 * - big-endian load/store for wire and disk formats (never cast structs
 *   onto untrusted bytes);
 * - overflow-checked arithmetic;
 * - the error slot: a thread-local (errno, message) set once where a failure
 *   is found, read by whoever reports it (the CLI prints it, backupd sends
 *   it in an ERROR frame);
 * - logging to stderr (or syslog when asked) with a verbosity level;
 * - full-length I/O and crash-safe file helpers.
 */
#ifndef LB_COMMON_H
#define LB_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

/* ---- cleanup ---------------------------------------------------------- */

void lb_cleanup_free(void *ptr);
void lb_cleanup_close(int *fd);
void lb_cleanup_fclose(FILE **fp);
#define CLEANUP_FREE __attribute__((cleanup(lb_cleanup_free)))
#define CLEANUP_CLOSE __attribute__((cleanup(lb_cleanup_close)))
#define CLEANUP_FCLOSE __attribute__((cleanup(lb_cleanup_fclose)))

#define LB_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define LB_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LB_MAX(a, b) ((a) > (b) ? (a) : (b))
#define LB_UNUSED __attribute__((unused))
#define LB_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---- big-endian load/store -------------------------------------------- */

static inline uint16_t
lb_load_be16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t
lb_load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static inline uint64_t
lb_load_be64(const uint8_t *p)
{
    return (uint64_t)lb_load_be32(p) << 32 | lb_load_be32(p + 4);
}

static inline void
lb_store_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void
lb_store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void
lb_store_be64(uint8_t *p, uint64_t v)
{
    lb_store_be32(p, (uint32_t)(v >> 32));
    lb_store_be32(p + 4, (uint32_t)v);
}

/* ---- checked arithmetic ----------------------------------------------- */

/* Each returns true on overflow, leaving *r unspecified. */
#define lb_add_overflow(a, b, r) __builtin_add_overflow(a, b, r)
#define lb_mul_overflow(a, b, r) __builtin_mul_overflow(a, b, r)

/* ---- errors ------------------------------------------------------------ */

/*
 * Record an error in this thread's slot: errnum (an errno value, 0 if none)
 * and a formatted message. When errnum is non-zero, ": strerror(errnum)" is
 * appended. Returns -1 so callers can `return lb_error(...)`.
 * errno is preserved.
 */
int lb_error(int errnum, const char *fmt, ...) LB_PRINTF(2, 3);

/*
 * Record an error that is not a failed system call: the message is shown
 * as is (no strerror), errnum only classifies it (ENOENT "not found",
 * EINVAL "bad request", ...; backupd maps it to a protocol error code).
 * Returns -1.
 */
int lb_fail(int errnum, const char *fmt, ...) LB_PRINTF(2, 3);

/* Prefix the current message with more context ("context: old message"). */
void lb_error_prefix(const char *fmt, ...) LB_PRINTF(1, 2);

/* The message and errno of this thread's last lb_error (never NULL). */
const char *lb_error_msg(void);
int lb_error_errno(void);

/*
 * An optional hint for the user ("free space in the repository and run the
 * backup again"): kept with the error and cleared by the next lb_error.
 */
void lb_error_hint(const char *fmt, ...) LB_PRINTF(1, 2);
const char *lb_error_hint_msg(void); /* "" if none */

/* Set the slot's errno class without touching the message (to carry an
 * error from one thread to another). */
void lb_error_set_errno(int errnum);

/* Clear the slot. */
void lb_error_clear(void);

/*
 * Keep the first error while rolling back: lb_error_save copies the slot
 * (message, hint, errno) into *s; the undo steps may then fail and
 * overwrite the slot; lb_error_restore puts the saved error back and
 * returns -1. A struct on the caller's stack, no allocation.
 */
#define LB_ERR_MAX 1024
struct lb_error_saved {
    int errnum;
    char msg[LB_ERR_MAX];
    char hint[LB_ERR_MAX / 2];
};
void lb_error_save(struct lb_error_saved *s);
int lb_error_restore(const struct lb_error_saved *s);

/* ---- logging ----------------------------------------------------------- */

enum lb_log_level {
    LB_LOG_ERROR,
    LB_LOG_WARN,
    LB_LOG_INFO,
    LB_LOG_DEBUG,
};

/* Program name for messages and the level shown (default LB_LOG_INFO). */
void lb_log_init(const char *progname, enum lb_log_level level);
void lb_log_set_level(enum lb_log_level level);
enum lb_log_level lb_log_get_level(void);
/* Where log lines go. */
enum lb_log_target {
    LB_LOG_TO_STDERR,
    LB_LOG_TO_SYSLOG,
    LB_LOG_TO_BOTH,
};
void lb_log_set_target(enum lb_log_target t);
/*
 * The usual choice: stderr on a terminal or when systemd connects stderr
 * to the journal (JOURNAL_STREAM); otherwise syslog, and stderr too when
 * keep_stderr (a cron job mails what a command prints).
 */
void lb_log_target_auto(bool keep_stderr);
void lb_log(enum lb_log_level level, const char *fmt, ...) LB_PRINTF(2, 3);
#define lb_debug(...) lb_log(LB_LOG_DEBUG, __VA_ARGS__)
#define lb_info(...) lb_log(LB_LOG_INFO, __VA_ARGS__)
#define lb_warn(...) lb_log(LB_LOG_WARN, __VA_ARGS__)
/* Log the current error slot at LB_LOG_ERROR, with its hint if any. */
void lb_log_error_slot(void);

/* ---- I/O --------------------------------------------------------------- */

/* Write/read exactly len bytes, retrying on EINTR and short transfers.
 * lb_read_full returns the number of bytes read (< len only at EOF) or -1.
 * Neither sets the error slot: callers add context. */
int lb_write_full(int fd, const void *buf, size_t len);
/* Two buffers, one after the other, in one write where the kernel takes
 * them whole (writev): a file's header and its data. */
int lb_write2_full(int fd, const void *a, size_t alen, const void *b,
                   size_t blen);
ssize_t lb_read_full(int fd, void *buf, size_t len);
int lb_pwrite_full(int fd, const void *buf, size_t len, off_t off);
ssize_t lb_pread_full(int fd, void *buf, size_t len, off_t off);

/* fsync a directory (after a rename into it). Sets the error slot. */
int lb_fsync_dir(const char *dir);

/* mkdir -p with mode for created components. Sets the error slot. */
int lb_mkdir_p(const char *path, mode_t mode);

/*
 * Write a small file atomically: DIR/.NAME.tmp.RANDOM (created with
 * O_EXCL|O_NOFOLLOW: never through a link or over a file someone else
 * planted in DIR), fsync, rename to DIR/NAME (which replaces a link
 * there, never follows it), fsync DIR. Sets the error slot.
 */
int lb_write_file_atomic(const char *dir, const char *name, const void *buf,
                         size_t len, mode_t mode);

/* Read a whole (small) file, at most max bytes, NUL-terminated.
 * Sets the error slot; errno ENOENT when it does not exist, EFBIG if
 * larger than max. Caller frees. */
char *lb_read_file(const char *path, size_t max, size_t *len_out);

/* A connected AF_UNIX stream socket to path (close-on-exec), or -1 with
 * errno set (ENAMETOOLONG when path does not fit sun_path). */
int lb_unix_connect(const char *path);

/* The socket a `backupd listen` daemon of repository repo announced in
 * REPO/listen (its first line; store/FORMAT.md), or NULL if there is none
 * (the error slot left clear). Caller frees. */
char *lb_repo_daemon_socket(const char *repo);

/* malloc/calloc/realloc/strdup that abort on failure: used only for small
 * bounded allocations (never sizes taken from the wire). */
#define LB_NONNULL_RET __attribute__((returns_nonnull))
void *lb_xmalloc(size_t n) LB_NONNULL_RET;
void *lb_xcalloc(size_t n, size_t size) LB_NONNULL_RET;
void *lb_xrealloc(void *p, size_t n) LB_NONNULL_RET;
char *lb_xstrdup(const char *s) LB_NONNULL_RET;
char *lb_xasprintf(const char *fmt, ...) LB_PRINTF(1, 2) LB_NONNULL_RET;

/* ---- small utilities --------------------------------------------------- */

/* Monotonic clock in nanoseconds / wall clock in seconds. */
uint64_t lb_now_ns(void);
int64_t lb_wall_time(void);

/* "1.5 GiB" style; buf of at least 16 bytes. Returns buf. */
char *lb_human_size(char *buf, size_t len, uint64_t bytes);

/* "45s", "3h 02m", "5d 04h"; buf of at least 16 bytes. Returns buf. */
char *lb_human_age(char *buf, size_t len, int64_t seconds);

/*
 * Table columns for names: the columns a UTF-8 string takes on a terminal
 * (wcwidth under C.UTF-8: "ü" is two bytes and one column, a wide East
 * Asian character two, a combining accent none; a control character or a
 * byte that is not UTF-8, the width of its escape: lb_text_cols(s) is
 * lb_text_cols(lb_term_line(s))), and the printf field width ("%-*s")
 * that pads s to cols columns.
 */
int lb_text_cols(const char *s);
int lb_pad_width(const char *s, int cols);

/*
 * s as text for a terminal: its control characters but newline and tab
 * (C0, DEL, and C1 in UTF-8, U+0080 to U+009F) written out as \xHH and
 * \u00HH, and every byte that is not part of well-formed UTF-8 as \xHH
 * (an 8-bit terminal takes 0x9B for a CSI), so that text a repository
 * holds cannot send the terminal an escape sequence. Caller frees.
 */
char *lb_term_safe(const char *s) LB_NONNULL_RET;
/* The same of len bytes, NULs among them (written as \x00). */
char *lb_term_safe_n(const char *s, size_t len) LB_NONNULL_RET;
/* The same for one line or one table cell: newline and tab escaped too. */
char *lb_term_line(const char *s) LB_NONNULL_RET;
/* The bytes at the end of s that begin a UTF-8 sequence cut short (0-3):
 * a reader of a stream holds them for the next read. */
size_t lb_utf8_partial_tail(const char *s, size_t len);

/* pid if it is a live process (not a zombie) of the program comm (its
 * /proc/PID/stat name), else 0. */
pid_t lb_proc_running(long pid, const char *comm);

/* Parse "20M", "1.5G", "4096", "512k" (binary multiples). -1 on error. */
int lb_parse_size(const char *s, uint64_t *out);

/* All of s as a decimal integer from lo to hi: digits, '-' first only for
 * a negative number (no '+', blanks, other bytes, or nothing). 0, or -1
 * (errno EINVAL) with *out untouched: an option's "10s", "-1" or "" is
 * refused, never read as 10, a huge number or 0. */
int lb_parse_long(const char *s, long lo, long hi, long *out);

/* ISO 8601 UTC "2026-11-23T11:46:00Z"; buf of at least 21 bytes. A time
 * that does not fit that form (after year 9999) is written "@UNIX". */
char *lb_format_time(char *buf, size_t len, int64_t t);
/* Parse ISO 8601 UTC forms "2026-11-23T11:46:00Z", "2026-11-23 11:46",
 * "2026-11-23", or "@UNIX". -1 on error. */
int lb_parse_time(const char *s, int64_t *out);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void lb_hex_encode(char *out, const uint8_t *in, size_t len);
/* Decode exactly 2*len hex chars; -1 on any bad char or wrong length. */
int lb_hex_decode(uint8_t *out, size_t len, const char *hex);

/* Fill buf with random bytes from getrandom(2). Sets the error slot. */
int lb_random(void *buf, size_t len);

/* Directory of the running executable (from /proc/self/exe). Caller frees. */
char *lb_exe_dir(void);

/*
 * Split a command line into words as a shell would for simple cases:
 * whitespace separates, single and double quotes group, backslash
 * escapes. Returns a NULL-terminated vector (caller frees each word and
 * the vector); *n receives the count.
 */
char **lb_split_words(const char *s, size_t *n);
void lb_free_words(char **w);

/* True if p[0..len) holds only zero bytes. */
bool lb_is_zero(const void *p, size_t len);

/* Number of online CPUs, at least 1. */
unsigned lb_ncpus(void);

/*
 * Test-only fault injection: when the environment variable
 * LIVEBACKUP_FAULT names this point ("agent:after-freeze", ...), the
 * process kills itself with SIGKILL; when LIVEBACKUP_FAULT_HOOK names it
 * ("agent:after-freeze:COMMAND"), COMMAND runs there (sh -c) and the
 * process goes on once it returned (a test kills QEMU or libvirtd there).
 * Documented in docs/reliability.md; never set them in production.
 */
void lb_fault_point(const char *name);

/* ---- growable byte buffer --------------------------------------------- */

/* Owned by whoever declares it; lb_buf_free releases the memory. Appends
 * abort on out-of-memory, so use it only for sizes the caller has already
 * bounded. */
struct lb_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

void lb_buf_reserve(struct lb_buf *b, size_t extra);
void lb_buf_append(struct lb_buf *b, const void *p, size_t n);
void lb_buf_put_u8(struct lb_buf *b, uint8_t v);
void lb_buf_put_be16(struct lb_buf *b, uint16_t v);
void lb_buf_put_be32(struct lb_buf *b, uint32_t v);
void lb_buf_put_be64(struct lb_buf *b, uint64_t v);
/* u16 length then bytes; the caller checks len <= 65535. */
void lb_buf_put_str16(struct lb_buf *b, const char *s, size_t len);
void lb_buf_reset(struct lb_buf *b);
void lb_buf_free(struct lb_buf *b);
void lb_cleanup_buf(struct lb_buf *b);
#define CLEANUP_BUF __attribute__((cleanup(lb_cleanup_buf)))

#endif /* LB_COMMON_H */
