/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * proto/conn.c: blocking frame I/O over a socket pair: frames in and out
 * (many per read, or larger than the read buffer), end of stream on and off
 * a frame boundary, bad headers, ERROR frames turned into the error slot,
 * readiness, WORKING frames skipped, a closed peer, the bandwidth limit,
 * the timeout (one call;
 * a reader and a writer in two threads, a stall counted from the last
 * movement either way, every wait ended by one that gave up); a relay (a
 * frame's head read, the rest forwarded) between pipes, sockets, non-blocking
 * and paced ends.
 */
#include "proto/proto.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int sv[2] = {-1, -1};
static struct proto_conn *a, *b;

static void
setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    a = proto_conn_new(sv[0], sv[0]);
    b = proto_conn_new(sv[1], sv[1]);
}

static void
teardown(void)
{
    proto_conn_free(a, true);
    proto_conn_free(b, true);
}

TestSuite(conn, .init = setup, .fini = teardown);

/* Close b's end (the peer of a) and forget it. */
static void
close_b(void)
{
    proto_conn_free(b, true);
    b = NULL;
}

Test(conn, frames_in_and_out)
{
    struct lb_buf out = {0};
    struct proto_hdr h;
    const uint8_t *p;
    uint64_t v;

    /* Three frames in one write: received one by one. */
    proto_enc_ok(&out, 7);
    proto_enc_str(&out, PROTO_T_LIST, "web1");
    proto_enc_empty(&out, PROTO_T_ABORT);
    cr_assert_eq(proto_conn_send_buf(a, &out), 0);
    cr_assert_eq(out.len, 0, "send_buf empties the buffer");
    cr_assert_eq(proto_conn_recv(b, &h, &p), 0, "%s", lb_error_msg());
    cr_assert_eq(h.type, PROTO_T_OK);
    cr_assert_eq(proto_dec_u64(p, h.len, &v), PROTO_OK);
    cr_assert_eq(v, 7);
    cr_assert_eq(proto_conn_wait_readable(b, 0), 1, "frames are buffered");
    cr_assert_eq(proto_conn_recv(b, &h, &p), 0);
    cr_assert_eq(h.type, PROTO_T_LIST);
    cr_assert_eq(h.len, 6);
    cr_assert_arr_eq(p, "\0\4web1", 6);
    cr_assert_eq(proto_conn_recv(b, &h, &p), 0);
    cr_assert_eq(h.type, PROTO_T_ABORT);
    cr_assert_eq(h.len, 0);
    cr_assert_eq(proto_conn_bytes_out(a), 3 * PROTO_HDR_SIZE + 8 + 6);
    cr_assert_eq(proto_conn_bytes_in(b), proto_conn_bytes_out(a));
    cr_assert_eq(proto_conn_wait_readable(b, 10), 0, "nothing more");
    cr_assert_not(proto_conn_broken(b));
    lb_buf_free(&out);
}

struct sender {
    struct proto_conn *c;
    const uint8_t *p;
    size_t len;
    int r;
};

static void *
send_thread(void *arg)
{
    struct sender *s = arg;

    s->r = proto_conn_send(s->c, s->p, s->len);
    return NULL;
}

Test(conn, a_frame_larger_than_the_read_buffer)
{
    size_t plen = 3u << 20;
    struct lb_buf out = {0};
    struct sender s;
    pthread_t th;
    struct proto_hdr h;
    const uint8_t *p;
    uint8_t *data = lb_xmalloc(plen);
    size_t f;

    tu_fill_random(data, plen, 5);
    f = proto_frame_begin(&out, PROTO_T_MANIFEST_DATA);
    lb_buf_append(&out, data, plen);
    proto_frame_end(&out, f);
    proto_enc_ok(&out, 1); /* and a small frame right behind it */
    s = (struct sender){a, out.data, out.len, -2};
    cr_assert_eq(pthread_create(&th, NULL, send_thread, &s), 0);
    cr_assert_eq(proto_conn_recv(b, &h, &p), 0, "%s", lb_error_msg());
    cr_assert_eq(h.len, plen);
    cr_assert_arr_eq(p, data, plen);
    cr_assert_eq(proto_conn_recv(b, &h, &p), 0);
    cr_assert_eq(h.type, PROTO_T_OK);
    pthread_join(th, NULL);
    cr_assert_eq(s.r, 0);
    free(data);
    lb_buf_free(&out);
}

Test(conn, end_of_stream_on_a_frame_boundary)
{
    struct proto_hdr h;
    const uint8_t *p;

    close_b();
    cr_assert_eq(proto_conn_recv(a, &h, &p), -1);
    cr_assert(proto_conn_eof(a));
    cr_assert(proto_conn_broken(a));
    cr_assert_str_eq(lb_error_msg(), "connection closed by the peer");
    cr_assert_eq(lb_error_errno(), 0);
    cr_assert_eq(proto_conn_wait_readable(a, 0), 0);
}

Test(conn, end_of_stream_inside_a_frame)
{
    struct lb_buf out = {0};
    struct proto_hdr h;
    const uint8_t *p;

    proto_enc_str(&out, PROTO_T_LIST, "a longer name");
    cr_assert_eq(proto_conn_send(b, out.data, out.len - 3), 0);
    close_b();
    cr_assert_eq(proto_conn_recv(a, &h, &p), -1);
    cr_assert(proto_conn_eof(a));
    cr_assert_neq(strstr(lb_error_msg(), "middle of a frame"), NULL, "%s",
                  lb_error_msg());
    lb_buf_free(&out);
}

Test(conn, bad_headers_break_the_connection)
{
    uint8_t hdr[PROTO_HDR_SIZE];
    struct proto_hdr h;
    const uint8_t *p;

    proto_hdr_encode(hdr, PROTO_T_CHUNK, PROTO_MAX_PAYLOAD + 1);
    cr_assert_eq(proto_conn_send(b, hdr, sizeof hdr), 0);
    cr_assert_eq(proto_conn_recv(a, &h, &p), -1, "no payload is awaited");
    cr_assert_neq(strstr(lb_error_msg(), "protocol error"), NULL);
    cr_assert(proto_conn_broken(a));
    cr_assert_not(proto_conn_eof(a));
}

Test(conn, bad_magic)
{
    uint8_t hdr[PROTO_HDR_SIZE];
    struct proto_hdr h;
    const uint8_t *p;

    proto_hdr_encode(hdr, PROTO_T_OK, 0);
    hdr[0] = 'X';
    cr_assert_eq(proto_conn_send(b, hdr, sizeof hdr), 0);
    cr_assert_eq(proto_conn_recv(a, &h, &p), -1);
    cr_assert_neq(strstr(lb_error_msg(), "magic"), NULL, "%s", lb_error_msg());
}

Test(conn, expect_turns_error_frames_into_the_slot)
{
    struct lb_buf out = {0};
    const uint8_t *p;
    uint32_t len, code = 99;

    proto_enc_error(&out, PROTO_ERR_LOCKED, "repository /r is locked",
                    "try again later");
    proto_enc_ok(&out, 5);
    proto_enc_ok(&out, 6);
    cr_assert_eq(proto_conn_send_buf(b, &out), 0);

    cr_assert_eq(proto_conn_expect(a, PROTO_T_OK, &p, &len, &code), -1);
    cr_assert_eq(code, PROTO_ERR_LOCKED);
    cr_assert_neq(strstr(lb_error_msg(), "repository /r is locked"), NULL);
    cr_assert_str_eq(lb_error_hint_msg(), "try again later");
    cr_assert(proto_conn_got_error(a));

    cr_assert_eq(proto_conn_expect(a, PROTO_T_OK, &p, &len, &code), 0);
    cr_assert_eq(code, 0);
    cr_assert_eq(len, 8);
    cr_assert_eq(lb_load_be64(p), 5);
    cr_assert_eq(proto_conn_expect(a, PROTO_T_LIST_END, &p, &len, NULL), -1,
                 "another type is a protocol error");
    cr_assert_neq(strstr(lb_error_msg(), "expected LIST_END, got OK"), NULL,
                  "%s", lb_error_msg());
    lb_buf_free(&out);
}

static int notices;

static int
count_notice(void *opaque, const uint8_t *p, uint32_t len)
{
    struct proto_waiting w;

    (void)opaque;
    cr_assert_eq(proto_dec_waiting(p, len, &w), PROTO_OK);
    notices++;
    return w.ahead == 99 ? lb_error(0, "enough") : 0;
}

Test(conn, expect_noting_hands_notices_over_first)
{
    struct lb_buf out = {0};
    const uint8_t *p;
    uint32_t len, code = 99;
    struct proto_waiting w = {2, 3600};

    proto_enc_waiting(&out, &w);
    w.ahead = 1;
    proto_enc_waiting(&out, &w);
    proto_enc_ok(&out, 7);
    proto_enc_waiting(&out, &w);
    proto_enc_error(&out, PROTO_ERR_BUSY, "busy", "");
    w.ahead = 99;
    proto_enc_waiting(&out, &w);
    proto_enc_waiting(&out, &w);
    cr_assert_eq(proto_conn_send_buf(b, &out), 0);

    notices = 0;
    cr_assert_eq(proto_conn_expect_noting(a, PROTO_T_OK, PROTO_T_WAITING,
                                          count_notice, NULL, &p, &len, &code),
                 0);
    cr_assert_eq(notices, 2);
    cr_assert_eq(code, 0);
    cr_assert_eq(lb_load_be64(p), 7);
    /* an ERROR after a notice is still an ERROR */
    cr_assert_eq(proto_conn_expect_noting(a, PROTO_T_OK, PROTO_T_WAITING,
                                          count_notice, NULL, &p, &len, &code),
                 -1);
    cr_assert_eq(notices, 3);
    cr_assert_eq(code, PROTO_ERR_BUSY);
    /* the handler's refusal ends the call at once */
    cr_assert_eq(proto_conn_expect_noting(a, PROTO_T_OK, PROTO_T_WAITING,
                                          count_notice, NULL, &p, &len, &code),
                 -1);
    cr_assert_eq(notices, 4);
    cr_assert_str_eq(lb_error_msg(), "enough");
    /* without a notice type, a notice is a protocol error */
    cr_assert_eq(proto_conn_expect(a, PROTO_T_OK, &p, &len, &code), -1);
    cr_assert_neq(strstr(lb_error_msg(), "expected OK, got WAITING"), NULL,
                  "%s", lb_error_msg());
    lb_buf_free(&out);
}

Test(conn, malformed_error_frame)
{
    struct lb_buf out = {0};
    const uint8_t *p;
    uint32_t len, code = 0;
    size_t f = proto_frame_begin(&out, PROTO_T_ERROR);

    lb_buf_put_be32(&out, 0); /* code 0 is not a code */
    lb_buf_put_str16(&out, "x", 1);
    lb_buf_put_str16(&out, "", 0);
    proto_frame_end(&out, f);
    cr_assert_eq(proto_conn_send_buf(b, &out), 0);
    cr_assert_eq(proto_conn_expect(a, PROTO_T_OK, &p, &len, &code), -1);
    cr_assert_neq(strstr(lb_error_msg(), "malformed"), NULL);
    lb_buf_free(&out);
}

/* WORKING frames (the server works on a request): dropped by every
 * receive once asked, a plain frame before; one with a payload is a
 * protocol error. */
Test(conn, working_frames_are_skipped_once_asked)
{
    struct lb_buf out = {0};
    struct proto_hdr h;
    const uint8_t *p;
    size_t f;

    proto_enc_empty(&out, PROTO_T_WORKING);
    proto_enc_ok(&out, 7);
    cr_assert_eq(proto_conn_send_buf(b, &out), 0);
    cr_assert_eq(proto_conn_recv(a, &h, &p), 0);
    cr_assert_eq(h.type, PROTO_T_WORKING, "not asked: a frame as any");
    cr_assert_eq(proto_conn_recv(a, &h, &p), 0);
    cr_assert_eq(h.type, PROTO_T_OK);

    proto_conn_skip_working(a);
    for (int i = 0; i < 3; i++)
        proto_enc_empty(&out, PROTO_T_WORKING);
    proto_enc_ok(&out, 8);
    proto_enc_empty(&out, PROTO_T_WORKING);
    proto_enc_ok(&out, 9);
    cr_assert_eq(proto_conn_send_buf(b, &out), 0);
    cr_assert_eq(proto_conn_recv(a, &h, &p), 0);
    cr_assert_eq(h.type, PROTO_T_OK);
    cr_assert_eq(lb_load_be64(p), 8);
    cr_assert_eq(proto_conn_recv(a, &h, &p), 0);
    cr_assert_eq(h.type, PROTO_T_OK);
    cr_assert_eq(lb_load_be64(p), 9);

    f = proto_frame_begin(&out, PROTO_T_WORKING);
    lb_buf_put_be32(&out, 1);
    proto_frame_end(&out, f);
    cr_assert_eq(proto_conn_send_buf(b, &out), 0);
    cr_assert_eq(proto_conn_recv(a, &h, &p), -1);
    cr_assert(strstr(lb_error_msg(), "WORKING frame with a payload"), "%s",
              lb_error_msg());
    cr_assert(proto_conn_broken(a));
    lb_buf_free(&out);
}

Test(conn, sending_to_a_closed_peer_fails)
{
    struct lb_buf out = {0};

    close_b();
    proto_enc_ok(&out, 1);
    cr_assert_eq(proto_conn_send_buf(a, &out), -1);
    cr_assert(proto_conn_broken(a));
    cr_assert_neq(strstr(lb_error_msg(), "closed"), NULL, "%s", lb_error_msg());
    lb_buf_free(&out);
}

/* Read len bytes from b's end, as they come. */
static void
drain_b(size_t len)
{
    for (size_t got = 0; got < len;) {
        uint8_t buf[65536];
        ssize_t n = read(sv[1], buf, sizeof buf);
        cr_assert_gt(n, 0);
        got += (size_t)n;
    }
}

Test(conn, bandwidth_limit_paces_sends)
{
    size_t len = 400u << 10;
    uint8_t *data = calloc(1, len);
    struct sender s = {a, data, len, -2};
    pthread_t th;
    uint64_t t0;

    /* 2 MiB/s with at most 1/20 s of credit: 400 KiB take >= ~0.15 s. */
    proto_conn_set_bwlimit(a, 2u << 20);
    t0 = lb_now_ns();
    cr_assert_eq(pthread_create(&th, NULL, send_thread, &s), 0);
    drain_b(len);
    pthread_join(th, NULL);
    cr_assert_eq(s.r, 0);
    cr_assert_geq(lb_now_ns() - t0, 150000000ull, "sent too fast");
    free(data);
}

/* --idle-timeout (issue 10, item 4): a read or a write that makes no
 * progress for the timeout fails with ETIMEDOUT; between frames the
 * connection stays usable (the server can still say why it closes). */
Test(conn, a_receive_times_out_between_frames)
{
    struct lb_buf out = {0};
    struct proto_hdr h;
    const uint8_t *p;
    uint64_t t0 = lb_now_ns();

    cr_assert_eq(proto_conn_set_timeout(b, 300), 0);
    proto_enc_ok(&out, 1);
    cr_assert_eq(proto_conn_send_buf(a, &out), 0);
    cr_assert_eq(proto_conn_recv(b, &h, &p), 0, "a frame there: no wait");
    cr_assert_eq(proto_conn_recv(b, &h, &p), -1);
    cr_assert_eq(lb_error_errno(), ETIMEDOUT);
    cr_assert(strstr(lb_error_msg(), "nothing received from the peer"), "%s",
              lb_error_msg());
    cr_assert_geq(lb_now_ns() - t0, 300 * 1000000ull, "it waited");
    cr_assert_not(proto_conn_broken(b), "between frames: still whole");
    proto_enc_ok(&out, 2);
    cr_assert_eq(proto_conn_send_buf(b, &out), 0, "an answer still goes");
    cr_assert_eq(proto_conn_recv(a, &h, &p), 0);
    lb_buf_free(&out);
}

Test(conn, a_receive_times_out_inside_a_frame)
{
    struct lb_buf out = {0};
    struct proto_hdr h;
    const uint8_t *p;

    cr_assert_eq(proto_conn_set_timeout(b, 200), 0);
    proto_enc_str(&out, PROTO_T_LIST, "web1");
    cr_assert_eq(write(sv[0], out.data, out.len - 2), (ssize_t)out.len - 2);
    cr_assert_eq(proto_conn_recv(b, &h, &p), -1);
    cr_assert_eq(lb_error_errno(), ETIMEDOUT);
    cr_assert(proto_conn_broken(b), "half a frame: broken");
    lb_buf_free(&out);
}

Test(conn, a_send_to_a_peer_that_does_not_read_times_out)
{
    struct lb_buf out = {0};
    uint8_t *big = lb_xcalloc(1, 4u << 20);
    int rc = 0;

    cr_assert_eq(proto_conn_set_timeout(a, 200), 0);
    /* The socket buffers hold far less than 64 MiB. */
    for (int i = 0; i < 16 && rc == 0; i++)
        rc = proto_conn_send(a, big, 4u << 20);
    cr_assert_eq(rc, -1, "the peer never read");
    cr_assert_eq(lb_error_errno(), ETIMEDOUT);
    cr_assert(strstr(lb_error_msg(), "nothing taken by the peer"), "%s",
              lb_error_msg());
    cr_assert(proto_conn_broken(a));
    free(big);
    lb_buf_free(&out);
}

/* ---- the timeout with two threads: what the agent's stall limit is ---- */

struct receiver {
    struct proto_conn *c;
    int r;
    int err;
    uint64_t end_ns;
};

static void *
recv_thread(void *arg)
{
    struct receiver *rc = arg;
    struct proto_hdr h;
    const uint8_t *p;

    rc->r = proto_conn_recv(rc->c, &h, &p);
    rc->err = lb_error_errno();
    rc->end_ns = lb_now_ns();
    return NULL;
}

/* A reader waits for an answer while the writer's frames still go out
 * (the upload engine: HAVE answers read in one thread, queries and chunks
 * written in another, the peer slow to answer): no stall while anything
 * moves; the stall is counted from the last movement either way. A
 * timeout of each call alone gave up on the reader at 0.4 s. */
Test(conn, a_reader_waits_on_while_the_writer_moves)
{
    struct receiver rc = {a, -2, 0, 0};
    struct lb_buf out = {0};
    pthread_t th;
    uint64_t t0 = lb_now_ns(), last;

    cr_assert_eq(proto_conn_set_timeout(a, 400), 0);
    cr_assert_eq(pthread_create(&th, NULL, recv_thread, &rc), 0);
    for (int i = 0; i < 24; i++) {
        usleep(50000);
        proto_enc_ok(&out, (uint32_t)i);
        cr_assert_eq(proto_conn_send_buf(a, &out), 0, "%s", lb_error_msg());
    }
    last = lb_now_ns();
    pthread_join(th, NULL);
    cr_assert_eq(rc.r, -1, "nothing was sent to it");
    cr_assert_eq(rc.err, ETIMEDOUT);
    cr_assert_geq(rc.end_ns, last + 390 * 1000000ull,
                  "gave up %.2f s after the start, %.2f s after the last send",
                  (double)(rc.end_ns - t0) / 1e9,
                  ((double)rc.end_ns - (double)last) / 1e9);
    cr_assert(proto_conn_timed_out(a));
    lb_buf_free(&out);
}

/* A writer and a reader both wait on a peer that does neither (16 MiB:
 * far more than the socket buffers): both give up, and from then on a
 * wait on the connection fails at once, not after the timeout again. */
Test(conn, a_stalled_peer_ends_every_wait)
{
    size_t len = 16u << 20;
    uint8_t *data = lb_xcalloc(1, len);
    struct sender s = {a, data, len, -2};
    struct receiver rc = {a, -2, 0, 0};
    struct proto_hdr h;
    const uint8_t *p;
    pthread_t ts, tr;
    uint64_t t0 = lb_now_ns();

    cr_assert_eq(proto_conn_set_timeout(a, 300), 0);
    cr_assert_not(proto_conn_timed_out(a));
    cr_assert_eq(pthread_create(&ts, NULL, send_thread, &s), 0);
    cr_assert_eq(pthread_create(&tr, NULL, recv_thread, &rc), 0);
    pthread_join(ts, NULL);
    pthread_join(tr, NULL);
    cr_assert_eq(s.r, -1);
    cr_assert_eq(rc.r, -1);
    cr_assert_eq(rc.err, ETIMEDOUT);
    cr_assert(proto_conn_timed_out(a));
    cr_assert_lt(lb_now_ns() - t0, 3000 * 1000000ull, "both ended");
    t0 = lb_now_ns();
    cr_assert_eq(proto_conn_recv(a, &h, &p), -1);
    cr_assert_lt(lb_now_ns() - t0, 150 * 1000000ull,
                 "a later wait failed after %.2f s, not at once",
                 (double)(lb_now_ns() - t0) / 1e9);
    cr_assert(strstr(lb_error_msg(), "given up"), "%s", lb_error_msg());
    free(data);
}

/* ---- a relay: proto_conn_recv_head + proto_conn_forward ---------------- */

enum relay_kind {
    RELAY_SOCKETS, /* splice cannot join two sockets: copied */
    RELAY_PIPES,   /* spliced */
    RELAY_PIPES_NONBLOCKING,
    RELAY_PIPES_PACED, /* a bandwidth limit: copied, paced */
};

struct reader {
    struct proto_conn *c;
    const uint8_t *want;
    uint32_t want_len;
    int r; /* 0: the frames came as sent */
};

/* The far end: a CHUNK of want, the OK after it, a second CHUNK. */
static void *
read_relayed(void *arg)
{
    struct reader *rd = arg;
    struct proto_hdr h;
    const uint8_t *p;
    struct proto_chunk c;
    uint64_t v;

    rd->r = -1;
    for (int k = 0; k < 2; k++) {
        if (proto_conn_recv(rd->c, &h, &p) < 0 || h.type != PROTO_T_CHUNK ||
            proto_dec_chunk(p, h.len, &c) != PROTO_OK ||
            c.data_len != rd->want_len ||
            memcmp(c.data, rd->want, rd->want_len) != 0)
            return NULL;
        if (k == 0 &&
            (proto_conn_recv(rd->c, &h, &p) < 0 || h.type != PROTO_T_OK ||
             proto_dec_u64(p, h.len, &v) != PROTO_OK || v != 9))
            return NULL;
    }
    rd->r = 0;
    return NULL;
}

/* One relayed frame: its head read and checked, a new head sent, the
 * data forwarded. */
static void
relay_chunk(struct proto_conn *in, struct proto_conn *out, const uint8_t *d)
{
    struct lb_buf head = {0};
    struct proto_hdr h;
    const uint8_t *p;
    struct proto_chunk c;

    cr_assert_eq(
        proto_conn_recv_head(in, PROTO_T_CHUNK_DATA, PROTO_CHUNK_HDR, &h, &p),
        0, "%s", lb_error_msg());
    cr_assert_eq(h.type, PROTO_T_CHUNK_DATA);
    cr_assert_eq(proto_dec_chunk_head(p, PROTO_CHUNK_HDR, h.len, &c), PROTO_OK);
    cr_assert_eq(c.data, NULL);
    cr_assert_arr_eq(c.d.b, d, PROTO_DIGEST_LEN);
    proto_enc_chunk_head(&head, PROTO_T_CHUNK, &c);
    cr_assert_eq(proto_conn_send_buf(out, &head), 0);
    cr_assert_eq(proto_conn_forward(in, out), 0, "%s", lb_error_msg());
    lb_buf_free(&head);
}

static void
relay(enum relay_kind kind)
{
    uint32_t len = 3u << 20;
    uint8_t *data = lb_xmalloc(len);
    struct proto_chunk c = {.type = PROTO_CHUNK_RAW,
                            .comp = PROTO_COMP_NONE,
                            .raw_len = len,
                            .data_len = len};
    struct lb_buf out = {0}, ok = {0};
    int up[2], down[2];
    struct proto_conn *src, *in, *rout, *far;
    struct sender s;
    struct reader rd;
    pthread_t ts, tr;
    struct proto_hdr h;
    const uint8_t *p;
    uint64_t t0;

    if (kind == RELAY_SOCKETS) {
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, up), 0);
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, down),
                     0);
        src = proto_conn_new(up[1], up[1]);
        in = proto_conn_new(up[0], up[0]);
        rout = proto_conn_new(down[1], down[1]);
        far = proto_conn_new(down[0], down[0]);
    } else {
        cr_assert_eq(pipe2(up, O_CLOEXEC), 0);
        cr_assert_eq(pipe2(down, O_CLOEXEC), 0);
        /* one end each, twice (set_timeout makes both non-blocking) */
        src = proto_conn_new(up[1], up[1]);
        in = proto_conn_new(up[0], up[0]);
        rout = proto_conn_new(down[1], down[1]);
        far = proto_conn_new(down[0], down[0]);
    }
    if (kind == RELAY_PIPES_NONBLOCKING) {
        cr_assert_eq(proto_conn_set_timeout(in, 5000), 0);
        cr_assert_eq(proto_conn_set_timeout(rout, 5000), 0);
    }
    if (kind == RELAY_PIPES_PACED)
        proto_conn_set_bwlimit(rout, 16u << 20);
    tu_fill_random(data, len, 11);
    memset(c.d.b, 0xd1, PROTO_DIGEST_LEN);
    c.data = data;
    /* A chunk, a small frame, the chunk again, a chunk that is dropped. */
    proto_enc_chunk(&out, PROTO_T_CHUNK_DATA, &c);
    proto_enc_ok(&out, 9);
    proto_enc_chunk(&out, PROTO_T_CHUNK_DATA, &c);
    proto_enc_chunk(&out, PROTO_T_CHUNK_DATA, &c);
    proto_enc_ok(&out, 10);
    s = (struct sender){src, out.data, out.len, -2};
    rd = (struct reader){far, data, len, -2};
    t0 = lb_now_ns();
    cr_assert_eq(pthread_create(&ts, NULL, send_thread, &s), 0);
    cr_assert_eq(pthread_create(&tr, NULL, read_relayed, &rd), 0);
    relay_chunk(in, rout, c.d.b);
    /* A frame of another type comes whole. */
    cr_assert_eq(
        proto_conn_recv_head(in, PROTO_T_CHUNK_DATA, PROTO_CHUNK_HDR, &h, &p),
        0);
    cr_assert_eq(h.type, PROTO_T_OK);
    proto_enc_ok(&ok, 9);
    cr_assert_eq(proto_conn_send_buf(rout, &ok), 0);
    relay_chunk(in, rout, c.d.b);
    pthread_join(tr, NULL);
    cr_assert_eq(rd.r, 0, "the far end got the frames as sent");
    /* Dropped: the next frame reads whole. */
    cr_assert_eq(
        proto_conn_recv_head(in, PROTO_T_CHUNK_DATA, PROTO_CHUNK_HDR, &h, &p),
        0);
    cr_assert_eq(proto_conn_forward(in, NULL), 0);
    cr_assert_eq(proto_conn_recv(in, &h, &p), 0, "%s", lb_error_msg());
    cr_assert_eq(h.type, PROTO_T_OK);
    pthread_join(ts, NULL);
    cr_assert_eq(s.r, 0);
    cr_assert_eq(proto_conn_bytes_in(in), proto_conn_bytes_out(src));
    cr_assert_eq(proto_conn_bytes_in(far), proto_conn_bytes_out(rout));
    if (kind == RELAY_PIPES_PACED)
        /* 6 MiB at 16 MiB/s, less 1/20 s of credit: >= 0.32 s */
        cr_assert_geq(lb_now_ns() - t0, 250000000ull, "not paced");
    proto_conn_free(src, true);
    proto_conn_free(in, true);
    proto_conn_free(rout, true);
    proto_conn_free(far, true);
    lb_buf_free(&out);
    lb_buf_free(&ok);
    free(data);
}

Test(conn, a_relay_between_sockets)
{
    relay(RELAY_SOCKETS);
}
Test(conn, a_relay_between_pipes)
{
    relay(RELAY_PIPES);
}
Test(conn, a_relay_between_nonblocking_pipes)
{
    relay(RELAY_PIPES_NONBLOCKING);
}
Test(conn, a_paced_relay)
{
    relay(RELAY_PIPES_PACED);
}

/* A CHUNK_DATA frame of 100 zero bytes, stored raw, into out. */
static void
enc_chunk_data(struct lb_buf *out)
{
    uint8_t data[100] = {0};
    struct proto_chunk c = {.type = PROTO_CHUNK_RAW,
                            .comp = PROTO_COMP_NONE,
                            .raw_len = sizeof data,
                            .data = data,
                            .data_len = sizeof data};

    proto_enc_chunk(out, PROTO_T_CHUNK_DATA, &c);
}

Test(conn, a_frame_cut_short_must_be_forwarded_first)
{
    struct lb_buf out = {0};
    struct proto_hdr h;
    const uint8_t *p;

    enc_chunk_data(&out);
    proto_enc_ok(&out, 1);
    cr_assert_eq(proto_conn_send_buf(a, &out), 0);
    cr_assert_eq(
        proto_conn_recv_head(b, PROTO_T_CHUNK_DATA, PROTO_CHUNK_HDR, &h, &p),
        0);
    cr_assert_eq(h.len, PROTO_CHUNK_HDR + 100);
    cr_assert_eq(proto_conn_recv(b, &h, &p), -1);
    cr_assert(strstr(lb_error_msg(), "not forwarded"), "%s", lb_error_msg());
    cr_assert(proto_conn_broken(b));
    lb_buf_free(&out);
}

Test(conn, a_relay_whose_source_ends_inside_a_frame)
{
    struct lb_buf out = {0};
    struct proto_hdr h;
    const uint8_t *p;

    enc_chunk_data(&out);
    cr_assert_eq(write(sv[0], out.data, out.len - 10), (ssize_t)out.len - 10);
    shutdown(sv[0], SHUT_WR);
    cr_assert_eq(
        proto_conn_recv_head(b, PROTO_T_CHUNK_DATA, PROTO_CHUNK_HDR, &h, &p),
        0);
    cr_assert_eq(proto_conn_forward(b, NULL), -1);
    cr_assert(strstr(lb_error_msg(), "middle of a frame"), "%s",
              lb_error_msg());
    cr_assert(proto_conn_broken(b));
    lb_buf_free(&out);
}
