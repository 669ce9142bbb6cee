/* lg_relay.c: the relay scenarios. N pairs of registered connections; each sender sends offers
 * of about --size bytes to its receiver.
 *   relay:   closed loop, at most --window offers in flight per pair: delivered messages/s.
 *   latency: open loop at a fixed --rate (all pairs together): one-way latency, from the
 *            timestamp the sender writes into the payload to the receiver reading the frame
 *            (one process, one clock: CLOCK_MONOTONIC). */
#include "lg.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_MSG 4096
/* Bounds independent of the options: no run sends more than this many messages. */
#define MAX_TOTAL_MSGS 200000000ull
#define THROUGHPUT_SAMPLES 2000000u

typedef struct pair {
    uint64_t sent, recv, next_seq;
    uint32_t len, seq_off, ts_off;
    char *msg;
} pair_t;

typedef struct relay {
    int latency_mode;
    pair_t *pairs;
    uint32_t npairs, window;
    lg_pop_t *snd, *rcv;
    int sending;
    uint64_t t_meas, t_end;
    uint64_t total_sent, total_recv, in_window, sent_in_window;
    uint64_t order_err, other_msgs, skipped, scheduled;
    uint64_t max_inflight;
    uint64_t *lat, *lat_sock; /* read by the generator; arrived in the receiver's socket */
    size_t nlat, caplat;
    uint32_t sample_every, sample_tick;
    /* Busy-polling only: loop turns over 100 us apart in the measured window. A turn handles a
     * few messages in microseconds, so such a gap is time the generator was kept off its core. */
    uint64_t gap_ns, gaps_over_1ms, max_gap, last_turn;
} relay_t;

static void send_one(relay_t *r, uint32_t i, uint64_t now)
{
    pair_t *p = &r->pairs[i];
    lg_conn_t *c = r->snd->conns[i];
    if (!c || r->total_sent >= MAX_TOTAL_MSGS)
        return;
    lg_put_digits(p->msg + p->seq_off, LG_SEQ_DIGITS, p->sent);
    lg_put_digits(p->msg + p->ts_off, LG_TS_DIGITS, now);
    lg_send_text(c, p->msg, p->len);
    p->sent++;
    r->total_sent++;
    if (now >= r->t_meas && now < r->t_end)
        r->sent_in_window++;
}

static void refill(relay_t *r, uint32_t i, uint64_t now)
{
    pair_t *p = &r->pairs[i];
    while (r->sending == 1 && p->sent - p->recv < r->window && r->snd->conns[i] &&
           r->total_sent < MAX_TOTAL_MSGS)
        send_one(r, i, now);
}

static void report_other(relay_t *r, const lg_conn_t *c, const char *msg, size_t len)
{
    if (++r->other_msgs <= 3)
        fprintf(stderr, "loadgen: unexpected message to %s: %.*s\n", c->uid,
                (int)(len > 200 ? 200 : len), msg);
}

static void relay_msg(lg_scen_t *s, lg_conn_t *c, char *msg, size_t len)
{
    relay_t *r = s->ud;
    uint64_t seq, ts;
    if (c->role != 1 || lg_relay_parse(msg, len, &seq, &ts) != 0) {
        report_other(r, c, msg, len);
        return;
    }
    uint64_t now = lg_now_ns();
    pair_t *p = &r->pairs[c->idx];
    if (seq != p->next_seq)
        r->order_err++;
    p->next_seq = seq + 1;
    p->recv++;
    r->total_recv++;
    int counted =
        r->latency_mode ? (ts >= r->t_meas && ts < r->t_end) : (now >= r->t_meas && now < r->t_end);
    if (counted) {
        r->in_window++;
        if (++r->sample_tick >= r->sample_every) {
            r->sample_tick = 0;
            if (r->nlat < r->caplat) {
                if (r->lat_sock)
                    r->lat_sock[r->nlat] = c->rx_ns > ts ? c->rx_ns - ts : 0;
                r->lat[r->nlat++] = now - ts;
            }
        }
    }
    if (!r->latency_mode)
        refill(r, c->idx, now);
}

static void relay_lost(lg_scen_t *s, lg_conn_t *c, int err)
{
    (void)s;
    fprintf(stderr, "loadgen: %s closed during the run (%d)\n", c->uid, err);
}

static uint64_t inflight(const relay_t *r)
{
    return r->total_sent - r->total_recv;
}

int lg_run_relay(const lg_opts_t *o)
{
    relay_t r = {.latency_mode = strcmp(o->scenario, "latency") == 0, .window = o->window};
    if (o->pairs == 0 || o->duration <= 0 || o->warmup < 0 || o->size < 100 ||
        o->size > MAX_MSG - 200)
        lg_die("relay: --pairs > 0, --duration > 0, --size 100..%d", MAX_MSG - 200);
    if (r.latency_mode && (o->rate <= 0 || o->rate > 10e6))
        lg_die("latency: --rate must be in (0, 10M] messages/s");
    if (!r.latency_mode && (o->window == 0 || o->window > 4096))
        lg_die("relay: --window 1..4096");
    /* Every connection a PQ session: the keys of each are used, so each is derived. */
    lg_pq_setup(o->pq, o->pq_pool, 1, LG_PQ_REGISTER);
    lg_scen_t s;
    lg_scen_init(&s, o, o->src);
    s.loop.rx_timestamps = r.latency_mode;
    s.ud = &r;
    s.on_msg = relay_msg;
    s.on_lost = relay_lost;
    r.npairs = o->pairs;
    r.snd = lg_pop_add(&s, 's', o->pairs, 0);
    r.rcv = lg_pop_add(&s, 'r', o->pairs, 0);
    if (o->port2) {
        r.snd->node = o->place == LG_PLACE_CROSS ? LG_NODE_FIRST : LG_NODE_BY_INDEX;
        r.rcv->node = o->place == LG_PLACE_CROSS ? LG_NODE_SECOND : LG_NODE_BY_INDEX;
    }
    const char *name = r.latency_mode ? "latency" : "relay";
    if (lg_scen_bring_up(&s) != 0) {
        printf("{\"scenario\":\"%s\",\"error\":\"setup failed\",", name);
        lg_print_counters(stdout, &s);
        printf("}\n");
        lg_scen_deinit(&s);
        return 3;
    }
    /* A node learns of another node's users through the cluster's event channel, after their
     * `registered`: a relay sent at once could still find the receiver unknown there. */
    if (o->port2)
        lg_scen_sleep(&s, 0.5);
    r.pairs = lg_xcalloc(r.npairs, sizeof *r.pairs);
    size_t msg_len = 0;
    for (uint32_t i = 0; i < r.npairs; i++) {
        pair_t *p = &r.pairs[i];
        char to[LG_UID_MAX];
        size_t so, to_off;
        lg_uid(to, o->tag, 'r', i);
        p->msg = lg_xmalloc(MAX_MSG);
        p->len = (uint32_t)lg_relay_template(o->proto, to, o->size, p->msg, MAX_MSG, &so, &to_off);
        p->seq_off = (uint32_t)so;
        p->ts_off = (uint32_t)to_off;
        msg_len = p->len;
    }
    uint64_t t0 = lg_now_ns();
    r.t_meas = t0 + (uint64_t)(o->warmup * 1e9);
    r.t_end = r.t_meas + (uint64_t)(o->duration * 1e9);
    if (r.latency_mode) {
        r.caplat = (size_t)(o->rate * o->duration * 1.05) + 1000;
        r.sample_every = 1;
        /* Two seconds' worth in flight means the server is not keeping up: stop adding. */
        r.max_inflight = (uint64_t)(o->rate * 2) + 1000;
    } else {
        r.caplat = THROUGHPUT_SAMPLES;
        r.sample_every = 8;
    }
    r.lat = lg_xmalloc(r.caplat * sizeof *r.lat);
    if (r.latency_mode)
        r.lat_sock = lg_xmalloc(r.caplat * sizeof *r.lat_sock);
    /* The system under test: the server, or with a cluster both nodes and Redis. */
    pid_t pids[4] = {o->server_pid, o->server_pid2, o->redis_pid, getpid()};
    lg_cpu_snap_t ca, cb;
    int have_a = 0, have_b = 0;
    r.sending = 1;
    if (!r.latency_mode)
        for (uint32_t i = 0; i < r.npairs; i++)
            refill(&r, i, t0);
    double interval = r.latency_mode ? 1e9 / o->rate : 0;
    uint32_t rr = 0;
    while (!lg_scen_expired(&s)) {
        uint64_t now = lg_now_ns();
        if (o->busy_poll && now >= r.t_meas && now < r.t_end) {
            uint64_t gap = r.last_turn ? now - r.last_turn : 0;
            if (gap > 100000) {
                r.gap_ns += gap;
                r.gaps_over_1ms += gap > 1000000;
                if (gap > r.max_gap)
                    r.max_gap = gap;
            }
        }
        r.last_turn = now;
        if (!have_a && now >= r.t_meas) {
            lg_cpu_snap(&ca, pids, 4);
            have_a = 1;
            lg_mark_measuring();
        }
        if (now >= r.t_end) {
            if (!have_b) {
                lg_cpu_snap(&cb, pids, 4);
                have_b = 1;
            }
            r.sending = 2;
            break;
        }
        int64_t wait = (int64_t)(r.t_end - now);
        if (r.latency_mode) {
            uint64_t due = (uint64_t)((double)(now - t0) / interval) + 1;
            while (r.scheduled < due) {
                r.scheduled++;
                if (inflight(&r) >= r.max_inflight)
                    r.skipped++;
                else
                    send_one(&r, rr, now);
                rr = rr + 1 == r.npairs ? 0 : rr + 1;
            }
            int64_t next =
                (int64_t)(t0 + (uint64_t)((double)r.scheduled * interval)) - (int64_t)lg_now_ns();
            if (next < wait)
                wait = next;
        } else if (wait > 50000000) {
            wait = 50000000;
        }
        if (!have_a && (int64_t)(r.t_meas - now) < wait)
            wait = (int64_t)(r.t_meas - now);
        lg_loop_run_once(&s.loop, o->busy_poll ? 0 : wait);
    }
    if (!have_a)
        lg_cpu_snap(&ca, pids, 4);
    if (!have_b)
        lg_cpu_snap(&cb, pids, 4);
    /* Drain: whatever is still in flight gets two seconds, then counts as lost. */
    uint64_t drain_end = lg_now_ns() + 2000000000ull;
    while (inflight(&r) > 0 && lg_now_ns() < drain_end && !lg_scen_expired(&s))
        lg_loop_run_once(&s.loop, 10000000);
    double secs = (double)(cb.t_ns - ca.t_ns) / 1e9;
    printf("{\"scenario\":\"%s\",\"proto\":\"%s\",\"pairs\":%u,\"msg_bytes\":%zu,", name,
           o->proto == LG_PROTO_PEERJS ? "peerjs" : "volli", r.npairs, msg_len);
    if (o->pq != LG_PQ_NONE) {
        lg_pq_print(stdout);
        putchar(',');
    }
    if (r.latency_mode)
        printf("\"target_rate\":%.0f,\"busy_poll\":%d,\"gen_stalled_pct\":%.3f,"
               "\"gen_gaps_over_1ms\":%llu,\"gen_max_gap_us\":%.1f,\"sent_in_window\":%llu,"
               "\"sent_rate\":%.1f,\"skipped\":%llu,",
               o->rate, o->busy_poll, secs > 0 ? (double)r.gap_ns / 1e9 / secs * 100 : 0.0,
               (unsigned long long)r.gaps_over_1ms, (double)r.max_gap / 1e3,
               (unsigned long long)r.sent_in_window,
               secs > 0 ? (double)r.sent_in_window / secs : 0.0, (unsigned long long)r.skipped);
    else
        printf("\"window\":%u,", r.window);
    printf("\"seconds\":%.3f,\"delivered\":%llu,\"per_sec\":%.1f,\"sent\":%llu,"
           "\"received\":%llu,\"lost\":%llu,\"order_errors\":%llu,\"other_msgs\":%llu,",
           secs, (unsigned long long)r.in_window, secs > 0 ? (double)r.in_window / secs : 0.0,
           (unsigned long long)r.total_sent, (unsigned long long)r.total_recv,
           (unsigned long long)inflight(&r), (unsigned long long)r.order_err,
           (unsigned long long)r.other_msgs);
    lg_print_percentiles(stdout, "latency", r.lat, r.nlat);
    putchar(',');
    if (r.lat_sock) {
        lg_print_percentiles(stdout, "latency_socket", r.lat_sock, r.nlat);
        putchar(',');
    }
    lg_cpu_print(stdout, &ca, &cb, 3);
    putchar(',');
    if (o->port2)
        printf("\"cluster\":{\"place\":\"%s\",\"cpu_node1\":%.3f,\"cpu_node2\":%.3f,"
               "\"cpu_redis\":%.3f},",
               o->place == LG_PLACE_CROSS ? "cross" : "spread", lg_cpu_pid_cores(&ca, &cb, 0),
               lg_cpu_pid_cores(&ca, &cb, 1), lg_cpu_pid_cores(&ca, &cb, 2));
    else if (o->redis_pid)
        printf("\"cluster\":{\"place\":\"single\",\"cpu_node1\":%.3f,\"cpu_redis\":%.3f},",
               lg_cpu_pid_cores(&ca, &cb, 0), lg_cpu_pid_cores(&ca, &cb, 2));
    lg_print_counters(stdout, &s);
    printf("}\n");
    int rc = 0;
    if (o->cdf && lg_write_cdf(o->cdf, r.lat, r.nlat) != 0) {
        fprintf(stderr, "loadgen: cannot write %s\n", o->cdf);
        rc = 1;
    }
    if (o->cdf && r.lat_sock) {
        char path[4096];
        snprintf(path, sizeof path, "%s.socket", o->cdf);
        if (lg_write_cdf(path, r.lat_sock, r.nlat) != 0)
            rc = 1;
    }
    if (r.order_err || r.in_window == 0 || r.snd->lost || r.rcv->lost ||
        lg_pq_stats()->open_failed || lg_pq_stats()->bad_response)
        rc = 3;
    for (uint32_t i = 0; i < r.npairs; i++)
        free(r.pairs[i].msg);
    free(r.pairs);
    free(r.lat);
    free(r.lat_sock);
    lg_scen_deinit(&s);
    lg_pq_teardown();
    return rc;
}
