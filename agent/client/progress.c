/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Progress for long work: a line on stderr when it is a terminal (bytes
 * done of total, rate, ETA), JSON "progress" events with --json (at most
 * one a second), nothing otherwise (cron, systemd). And where a backup's
 * time went (agent_phases), for --json summaries.
 */
#include "agent/client/client.h"
#include "agent/client/event.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t draw_lock = PTHREAD_MUTEX_INITIALIZER;

void
agent_event_print(struct json_object *o)
{
    size_t len;
    const char *text = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

    pthread_mutex_lock(&draw_lock);
    fwrite(text, 1, len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&draw_lock);
}

static void
draw(struct agent_progress *p, bool final)
{
    uint64_t now = lb_now_ns(), done = p->done;
    double secs = (double)(now - p->start_ns) / 1e9;
    double rate = secs > 0 ? (double)done / secs : 0;
    char d[16], t[16], r[16], eta[32] = "";

    if (agent_opts.json) {
        struct proto_kv kv = {0};
        proto_kv_set(&kv, "what", p->what);
        proto_kv_set_u64(&kv, "done", done);
        proto_kv_set_u64(&kv, "total", p->total);
        proto_kv_set_u64(&kv, "bytes_per_second", (uint64_t)rate);
        agent_event("progress", &kv);
        proto_kv_free(&kv);
        return;
    }
    lb_human_size(d, sizeof d, done);
    lb_human_size(t, sizeof t, p->total);
    lb_human_size(r, sizeof r, (uint64_t)rate);
    if (!final && rate > 0 && p->total > done) {
        uint64_t left = (uint64_t)((double)(p->total - done) / rate);
        snprintf(eta, sizeof eta, "  ETA %llu:%02llu",
                 (unsigned long long)(left / 60),
                 (unsigned long long)(left % 60));
    }
    fprintf(stderr, "\r\033[K  %s: %s / %s  %3.0f%%  %s/s%s%s", p->what, d, t,
            p->total ? 100.0 * (double)done / (double)p->total : 100.0, r, eta,
            final ? "\n" : "");
    fflush(stderr);
}

void
agent_progress_begin(struct agent_progress *p, const char *what, uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->what = what;
    p->total = total;
    p->start_ns = p->last_ns = lb_now_ns();
}

void
agent_progress_add(struct agent_progress *p, uint64_t n)
{
    uint64_t now, every;
    bool due;

    p->done += n;
    if (!agent_opts.progress && !agent_opts.json)
        return;
    every = agent_opts.json ? 1000000000u : 250000000u;
    now = lb_now_ns();
    /* Several threads add progress: one of them draws, at most every
     * `every` nanoseconds. */
    pthread_mutex_lock(&draw_lock);
    due = now - p->last_ns >= every;
    if (due) {
        p->last_ns = now;
        p->shown = true;
    }
    pthread_mutex_unlock(&draw_lock);
    if (due)
        draw(p, false);
}

void
agent_progress_end(struct agent_progress *p)
{
    if ((agent_opts.progress && p->shown) || agent_opts.json)
        draw(p, true);
}

uint64_t
agent_phase_add(struct agent_phases *p, enum agent_phase ph, uint64_t t0)
{
    uint64_t now = lb_now_ns();

    if (p && now > t0)
        p->us[ph] += (now - t0) / 1000u;
    return now;
}

void
agent_phases_kv(const struct agent_phases *p, const struct agent_phases *q,
                struct proto_kv *kv)
{
    static const char *const names[AGENT_PH_N] = {
        [AGENT_PH_LIBVIRT] = "libvirt",
        [AGENT_PH_REPO] = "repo",
        [AGENT_PH_RECOVER] = "recover",
        [AGENT_PH_PLAN] = "plan",
        [AGENT_PH_OVERLAY] = "overlay",
        [AGENT_PH_GUARD] = "guard",
        [AGENT_PH_FREEZE] = "freeze",
        [AGENT_PH_SNAPSHOT] = "snapshot",
        [AGENT_PH_THAW] = "thaw",
        [AGENT_PH_JOURNAL] = "journal",
        [AGENT_PH_BEGIN] = "begin",
        [AGENT_PH_OPEN] = "open",
        [AGENT_PH_DATA] = "data",
        [AGENT_PH_CLOSE] = "close",
        [AGENT_PH_COMMIT] = "commit",
        [AGENT_PH_ACK] = "ack",
        [AGENT_PH_BLOCKCOMMIT] = "blockcommit",
    };

    for (int i = 0; i < AGENT_PH_N; i++) {
        uint64_t us = p->us[i] + (q ? q->us[i] : 0);
        char key[32];

        if (us == 0)
            continue;
        snprintf(key, sizeof key, "us_%s", names[i]);
        proto_kv_set_u64(kv, key, us);
    }
}
