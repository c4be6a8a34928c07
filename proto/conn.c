/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Blocking frame I/O over a pair of file descriptors: the agent's side of a
 * pipe to backupd (local child or ssh), and backupd serve's side of stdin/
 * stdout. Reads are buffered (many small frames per read(2)); sends are
 * serialised by a lock so a sender and a receiver thread can share a
 * connection. --bwlimit paces each direction with its own token bucket:
 * the bytes sent (a backup) and the bytes read (a restore; the peer then
 * waits on the full pipe or socket). A relay (livebackup copy) moves a
 * large payload from one connection to another without reading it:
 * proto_conn_recv_head, then proto_conn_forward, through splice(2) where
 * both ends allow it.
 */
#include "proto/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#define CONN_RBUF_INIT (256u << 10)

struct proto_conn {
    int fd_in, fd_out;
    uint8_t *rbuf;
    size_t rcap, rstart, rend, consume;
    /* payload bytes of the frame last received still to be forwarded
     * (proto_conn_recv_head), none of them buffered past consume but
     * those at its end */
    size_t left;
    bool no_splice; /* splice(2) failed with EINVAL: copy instead */
    bool eof;
    bool skip_working; /* proto_conn_skip_working */
    bool got_error;
    uint32_t error_code; /* of the ERROR received, once got_error */
    /* Nothing moved either way for this long fails a wait (0: none). A
     * reader and a writer may wait at once, in two threads: moved_ns is
     * when the last read, write or wait of either began or ended. The
     * first wait to give up writes to wake, which ends every other. */
    _Atomic int timeout_ms;
    _Atomic uint64_t moved_ns;
    int wake[2];
    _Atomic bool timed_out;
    _Atomic bool broken;
    pthread_mutex_t send_lock;
    uint64_t bytes_in, bytes_out;
    /* token buckets, in bytes; rate 0 means unlimited */
    uint64_t rate;
    struct bucket {
        double tokens;
        uint64_t last_ns;
    } out_bucket, in_bucket;
};

struct proto_conn *
proto_conn_new(int fd_in, int fd_out)
{
    struct proto_conn *c = lb_xcalloc(1, sizeof *c);

    c->fd_in = fd_in;
    c->fd_out = fd_out;
    c->rcap = CONN_RBUF_INIT;
    c->rbuf = lb_xmalloc(c->rcap);
    c->wake[0] = c->wake[1] = -1;
    pthread_mutex_init(&c->send_lock, NULL);
    return c;
}

void
proto_conn_free(struct proto_conn *c, bool close_fds)
{
    if (!c)
        return;
    if (close_fds) {
        if (c->fd_in >= 0)
            close(c->fd_in);
        if (c->fd_out >= 0 && c->fd_out != c->fd_in)
            close(c->fd_out);
    }
    if (c->wake[0] >= 0) {
        close(c->wake[0]);
        close(c->wake[1]);
    }
    pthread_mutex_destroy(&c->send_lock);
    free(c->rbuf);
    free(c);
}

void
proto_conn_set_bwlimit(struct proto_conn *c, uint64_t rate)
{
    pthread_mutex_lock(&c->send_lock);
    c->rate = rate;
    c->out_bucket.tokens = c->in_bucket.tokens = 0;
    c->out_bucket.last_ns = c->in_bucket.last_ns = lb_now_ns();
    pthread_mutex_unlock(&c->send_lock);
}

int
proto_conn_set_timeout(struct proto_conn *c, unsigned timeout_ms)
{
    int fds[2] = {c->fd_in, c->fd_out};

    /* Non-blocking, so that no read or write can outwait the timeout
     * (poll says when there is room, not how much). */
    if (timeout_ms && c->wake[0] < 0 &&
        pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) < 0)
        return lb_error(errno, "pipe");
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(fds[i], F_GETFL);
        if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) < 0)
            return lb_error(errno, "set the connection non-blocking");
    }
    c->timeout_ms = timeout_ms > INT32_MAX ? INT32_MAX : (int)timeout_ms;
    return 0;
}

bool
proto_conn_timed_out(const struct proto_conn *c)
{
    return c->timed_out;
}

/* Something began or ended on the connection (wait_ready). */
static void
io_mark(struct proto_conn *c)
{
    c->moved_ns = lb_now_ns();
}

/* Wait until fd is ready for events: 0, or -1 with ETIMEDOUT (the error
 * slot set) once nothing has moved either way for the timeout, or at once
 * if another wait gave up. Either way, not one direction's silence: a
 * writer whose bytes the peer still takes keeps a reader waiting for its
 * answer (and the reverse); a peer that stops both is a stall. */
static int
wait_ready(struct proto_conn *c, int fd, short events)
{
    struct pollfd pfd[2] = {{fd, events, 0}, {c->wake[0], POLLIN, 0}};
    int tmo = c->timeout_ms;

    io_mark(c);
    for (;;) {
        int ms = -1, r;
        if (tmo) {
            uint64_t now = lb_now_ns();
            uint64_t until = c->moved_ns + (uint64_t)tmo * 1000000u;
            if (now >= until)
                break;
            ms = (int)LB_MIN((until - now) / 1000000u + 1, (uint64_t)tmo);
        }
        r = poll(pfd, tmo ? 2 : 1, ms);
        if (r < 0 && errno != EINTR)
            return lb_error(errno, "poll");
        if (r > 0 && tmo && pfd[1].revents)
            return lb_fail(ETIMEDOUT,
                           "the connection was given up: nothing "
                           "moved either way for %d s",
                           tmo / 1000);
        if (r > 0) {
            io_mark(c);
            return 0;
        }
    }
    if (!c->timed_out) {
        c->timed_out = true;
        (void)!write(c->wake[1], "", 1);
    }
    return lb_fail(ETIMEDOUT, "nothing %s the peer for %d s",
                   events == POLLIN ? "received from" : "taken by", tmo / 1000);
}

/* write(2) all of p, waiting for room with the timeout. */
static int
write_all(struct proto_conn *c, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n;
        n = write(c->fd_out, p, len);
        io_mark(c);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_ready(c, c->fd_out, POLLOUT) < 0)
                return -1;
            continue;
        }
        if (n < 0)
            return lb_error(errno, "send to peer");
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Account n bytes moved, waiting as long as the rate asks. The bucket
 * holds at most 1/20 s of credit so the rate stays close to the limit over
 * any few seconds; the debt is paid by sleeping, and time overslept counts
 * as credit for the next bytes. */
static void
pace(struct bucket *b, uint64_t rate, size_t n)
{
    uint64_t now = lb_now_ns();
    double cap = (double)rate / 20;

    b->tokens += (double)(now - b->last_ns) * (double)rate / 1e9;
    if (b->tokens > cap)
        b->tokens = cap;
    b->last_ns = now;
    b->tokens -= (double)n;
    if (b->tokens < 0) {
        double secs = -b->tokens / (double)rate;
        struct timespec ts = {(time_t)secs,
                              (long)((secs - (double)(time_t)secs) * 1e9)};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
}

/* Send len bytes, c->send_lock held: paced, c->broken on failure. */
static int
send_locked(struct proto_conn *c, const uint8_t *b, size_t len)
{
    while (len > 0) {
        /* Pace in slices so a large frame does not burst. */
        size_t n = c->rate ? LB_MIN(len, (size_t)64 << 10) : len;
        if (c->rate)
            pace(&c->out_bucket, c->rate, n);
        if (write_all(c, b, n) < 0) {
            c->broken = true;
            if (lb_error_errno() == EPIPE)
                lb_error(0, "connection closed by the peer while sending");
            return -1;
        }
        c->bytes_out += n;
        b += n;
        len -= n;
    }
    return 0;
}

int
proto_conn_send(struct proto_conn *c, const void *p, size_t len)
{
    int r;

    pthread_mutex_lock(&c->send_lock);
    r = send_locked(c, p, len);
    pthread_mutex_unlock(&c->send_lock);
    return r;
}

int
proto_conn_send_frame(struct proto_conn *c, struct lb_buf *head,
                      const void *data, size_t len)
{
    int r;

    pthread_mutex_lock(&c->send_lock);
    r = send_locked(c, head->data, head->len);
    if (r == 0)
        r = send_locked(c, data, len);
    pthread_mutex_unlock(&c->send_lock);
    lb_buf_reset(head);
    return r;
}

int
proto_conn_send_buf(struct proto_conn *c, struct lb_buf *b)
{
    int r = proto_conn_send(c, b->data, b->len);

    lb_buf_reset(b);
    return r;
}

/* Make n bytes available at rbuf[rstart]. */
static int
fill(struct proto_conn *c, size_t n)
{
    while (c->rend - c->rstart < n) {
        ssize_t got;

        if (c->rstart + n > c->rcap) {
            /* Move the partial frame to the front; grow for a big one
             * (n is bounded by PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD). */
            memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
            c->rend -= c->rstart;
            c->rstart = 0;
            if (n > c->rcap) {
                c->rcap = n;
                c->rbuf = lb_xrealloc(c->rbuf, c->rcap);
            }
        }
        /* Paced: small reads, so the peer feels the limit at once. */
        got = read(c->fd_in, c->rbuf + c->rend,
                   c->rate ? LB_MIN(c->rcap - c->rend, (size_t)64 << 10)
                           : c->rcap - c->rend);
        io_mark(c);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (wait_ready(c, c->fd_in, POLLIN) == 0)
                    continue;
                /* Idle between frames: the stream is still whole (the
                 * server can say why it ends the session). */
                if (c->rend != c->rstart)
                    c->broken = true;
                return -1;
            }
            c->broken = true;
            return lb_error(errno, "receive from peer");
        }
        if (got == 0) {
            c->eof = true;
            c->broken = true;
            if (c->rend == c->rstart)
                return lb_error(0, "connection closed by the peer");
            return lb_error(0, "connection closed by the peer in the middle "
                               "of a frame");
        }
        c->rend += (size_t)got;
        c->bytes_in += (uint64_t)got;
        if (c->rate)
            pace(&c->in_bucket, c->rate, (size_t)got);
    }
    return 0;
}

/* A frame, its payload whole, or only its first head bytes if it is of
 * type cut (0: none is). */
static int
recv_one(struct proto_conn *c, uint16_t cut, uint32_t head, struct proto_hdr *h,
         const uint8_t **payload)
{
    size_t want;
    int st;

    if (c->left) {
        c->broken = true;
        lb_error(0, "internal error: a frame was not forwarded to its end");
        return -1;
    }
    c->rstart += c->consume;
    c->consume = 0;
    if (c->rstart == c->rend)
        c->rstart = c->rend = 0;
    if (fill(c, PROTO_HDR_SIZE) < 0)
        return -1;
    st = proto_hdr_decode(c->rbuf + c->rstart, PROTO_HDR_SIZE, h);
    if (st != PROTO_OK) {
        c->broken = true;
        return lb_error(0, "protocol error from peer: %s",
                        proto_status_str(st));
    }
    want = cut && h->type == cut ? LB_MIN(head, h->len) : h->len;
    if (fill(c, PROTO_HDR_SIZE + want) < 0)
        return -1;
    *payload = c->rbuf + c->rstart + PROTO_HDR_SIZE;
    c->consume = PROTO_HDR_SIZE + want;
    c->left = h->len - want;
    return 0;
}

/* recv_one, past the WORKING frames (proto_conn_skip_working). */
static int
recv_frame(struct proto_conn *c, uint16_t cut, uint32_t head,
           struct proto_hdr *h, const uint8_t **payload)
{
    int r;

    while ((r = recv_one(c, cut, head, h, payload)) == 0 && c->skip_working &&
           h->type == PROTO_T_WORKING) {
        if (h->len) {
            c->broken = true;
            return lb_error(0, "protocol error from peer: a WORKING frame "
                               "with a payload");
        }
    }
    return r;
}

void
proto_conn_skip_working(struct proto_conn *c)
{
    c->skip_working = true;
}

int
proto_conn_recv(struct proto_conn *c, struct proto_hdr *h,
                const uint8_t **payload)
{
    return recv_frame(c, 0, 0, h, payload);
}

int
proto_conn_recv_head(struct proto_conn *c, uint16_t type, uint32_t head,
                     struct proto_hdr *h, const uint8_t **payload)
{
    return recv_frame(c, type, head, h, payload);
}

/* Read up to from->left bytes into from->rbuf (nothing is buffered past
 * the part of the frame already forwarded) and send them on to `to`
 * (to->send_lock held), or drop them. */
static int
forward_copy(struct proto_conn *from, struct proto_conn *to)
{
    size_t max = from->rate ? (size_t)64 << 10 : from->rcap;
    ssize_t got;

    from->rstart = from->rend = from->consume = 0;
    got = read(from->fd_in, from->rbuf, LB_MIN(from->left, max));
    io_mark(from);
    if (got < 0) {
        if (errno == EINTR)
            return 0;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (wait_ready(from, from->fd_in, POLLIN) == 0)
                return 0;
            from->broken = true;
            return -1;
        }
        from->broken = true;
        return lb_error(errno, "receive from peer");
    }
    if (got == 0) {
        from->eof = true;
        from->broken = true;
        return lb_error(0, "connection closed by the peer in the middle of "
                           "a frame");
    }
    from->bytes_in += (uint64_t)got;
    if (from->rate)
        pace(&from->in_bucket, from->rate, (size_t)got);
    from->left -= (size_t)got;
    return to ? send_locked(to, from->rbuf, (size_t)got) : 0;
}

/* Move up to from->left bytes from from's input to to's output in the
 * kernel (to->send_lock held). 1: splice(2) cannot join these two (not a
 * pipe at either end): copy instead. */
static int
forward_splice(struct proto_conn *from, struct proto_conn *to)
{
    ssize_t n;

    n = splice(from->fd_in, NULL, to->fd_out, NULL, from->left,
               SPLICE_F_MOVE | SPLICE_F_MORE);
    io_mark(to);
    io_mark(from);

    if (n > 0) {
        from->bytes_in += (uint64_t)n;
        to->bytes_out += (uint64_t)n;
        from->left -= (size_t)n;
        return 0;
    }
    if (n == 0) {
        from->eof = true;
        from->broken = true;
        return lb_error(0, "connection closed by the peer in the middle of "
                           "a frame");
    }
    if (errno == EINTR)
        return 0;
    if (errno == EINVAL || errno == ENOSYS) {
        from->no_splice = true;
        return 1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        /* Non-blocking ends (a timeout): room out there, then data in
         * here; both stay ready until this thread uses them. */
        if (wait_ready(to, to->fd_out, POLLOUT) < 0) {
            to->broken = true;
            return -1;
        }
        if (wait_ready(from, from->fd_in, POLLIN) < 0) {
            from->broken = true;
            return -1;
        }
        return 0;
    }
    if (errno == EPIPE) {
        to->broken = true;
        return lb_error(0, "connection closed by the peer while sending");
    }
    from->broken = true;
    to->broken = true;
    return lb_error(errno, "forward between peers");
}

int
proto_conn_forward(struct proto_conn *from, struct proto_conn *to)
{
    size_t buffered = from->rend - from->rstart - from->consume;
    size_t k = LB_MIN(buffered, from->left);
    int r = 0;

    if (to)
        pthread_mutex_lock(&to->send_lock);
    /* What the last read took in already, then the rest from the fd. */
    if (k && to)
        r = send_locked(to, from->rbuf + from->rstart + from->consume, k);
    from->consume += k;
    from->left -= k;
    while (r == 0 && from->left > 0) {
        if (to && !from->no_splice && !from->rate && !to->rate) {
            r = forward_splice(from, to);
            if (r <= 0)
                continue;
        }
        r = forward_copy(from, to);
    }
    if (to)
        pthread_mutex_unlock(&to->send_lock);
    return r;
}

bool
proto_conn_eof(const struct proto_conn *c)
{
    return c->eof;
}

int
proto_conn_wait_readable(struct proto_conn *c, int timeout_ms)
{
    struct pollfd pfd = {c->fd_in, POLLIN, 0};
    int r;

    if (c->rend - c->rstart > c->consume)
        return 1;
    if (c->eof)
        return 0;
    do
        r = poll(&pfd, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return lb_error(errno, "poll");
    return r > 0;
}

uint64_t
proto_conn_bytes_out(const struct proto_conn *c)
{
    return c->bytes_out;
}

uint64_t
proto_conn_bytes_in(const struct proto_conn *c)
{
    return c->bytes_in;
}

int
proto_conn_take_error(struct proto_conn *c, const uint8_t *p, uint32_t len,
                      uint32_t *code)
{
    struct proto_error e = {0};

    c->got_error = true;
    if (proto_dec_error(p, len, &e) != PROTO_OK)
        return lb_error(0, "the peer sent a malformed ERROR frame");
    if (code)
        *code = e.code;
    c->error_code = e.code;
    lb_error(0, "%.*s", (int)e.msg.len, e.msg.p);
    if (e.hint.len)
        lb_error_hint("%.*s", (int)e.hint.len, e.hint.p);
    return -1;
}

bool
proto_conn_got_error(const struct proto_conn *c)
{
    return c->got_error;
}

uint32_t
proto_conn_error_code(const struct proto_conn *c)
{
    return c->got_error ? c->error_code : 0;
}

bool
proto_conn_broken(const struct proto_conn *c)
{
    return c->broken;
}

int
proto_conn_expect_noting(struct proto_conn *c, uint16_t type, uint16_t notice,
                         int (*fn)(void *opaque, const uint8_t *p,
                                   uint32_t len),
                         void *opaque, const uint8_t **payload, uint32_t *len,
                         uint32_t *err_code)
{
    struct proto_hdr h;
    const uint8_t *p = NULL;

    if (err_code)
        *err_code = 0;
    do {
        if (proto_conn_recv(c, &h, &p) < 0)
            return -1;
    } while (notice && h.type == notice && fn(opaque, p, h.len) == 0);
    if (notice && h.type == notice)
        return -1;
    if (h.type == PROTO_T_ERROR)
        return proto_conn_take_error(c, p, h.len, err_code);
    if (h.type != type)
        return lb_error(0, "protocol error: expected %s, got %s",
                        proto_type_name(type), proto_type_name(h.type));
    *payload = p;
    *len = h.len;
    return 0;
}

int
proto_conn_expect(struct proto_conn *c, uint16_t type, const uint8_t **payload,
                  uint32_t *len, uint32_t *err_code)
{
    return proto_conn_expect_noting(c, type, 0, NULL, NULL, payload, len,
                                    err_code);
}
