/* lg_pqhs.c: the pq-handshake scenario. --concurrency connections at a time, each: TCP connect,
 * WebSocket upgrade, hello, pq_handshake (--pq, from the pregenerated pool), the response; then
 * --per-conn - 1 more handshakes inside the session (rekeys, each under the keys of the one
 * before), and the connection is reset and replaced. Every --verify-every-th connection (and
 * every connection that rekeys) also verifies the signature, derives the keys and proves them
 * with one sealed ping answered by a sealed pong before it goes. Handshakes completed in the
 * measured window, after --warmup, count; the server's CPU time over the same window gives its
 * cost per handshake. Bounded by --duration, --timeout and --conns (connections started). */
#include "lg.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SAMPLES 2000000u

enum slot_state { SLOT_HANDSHAKE = 0, SLOT_KEY_CHECK };

typedef struct hs {
    lg_loop_t loop;
    const lg_opts_t *o;
    lg_conn_t **slot;
    uint32_t *done_on_conn;
    uint8_t *state;
    uint32_t nslots;
    int stopping;
    uint64_t t_meas, t_end;
    uint64_t conns_started, conns_done, handshakes, in_window, conns_in_window;
    uint64_t key_checks, failed, unexpected;
    uint64_t *rtt, *setup;
    size_t nrtt, nsetup;
} hs_t;

static void start_slot(hs_t *h, uint32_t i)
{
    h->slot[i] = NULL;
    if (h->stopping || h->conns_started >= h->o->conns)
        return;
    char uid[LG_UID_MAX];
    lg_uid(uid, h->o->tag, 'h', (uint32_t)h->conns_started);
    h->conns_started++;
    h->done_on_conn[i] = 0;
    h->state[i] = SLOT_HANDSHAKE;
    lg_conn_t *c = lg_connect(&h->loop, uid, i, 0);
    if (!c)
        h->failed++;
    h->slot[i] = c;
}

static void retire(hs_t *h, lg_conn_t *c, int ok)
{
    uint32_t i = c->idx;
    if (ok) {
        h->conns_done++;
        uint64_t now = lg_now_ns();
        if (now >= h->t_meas && now < h->t_end)
            h->conns_in_window++;
    } else {
        h->failed++;
    }
    /* A reset: neither side keeps TIME_WAIT, so the ports last the whole run. */
    lg_close(c, 1);
    start_slot(h, i);
}

static void report(hs_t *h, const lg_conn_t *c, const char *what, const char *msg, size_t len)
{
    if (++h->unexpected <= 3) {
        const char *type;
        int n = lg_json_str(msg, len, "type", &type);
        fprintf(stderr, "loadgen: %s: %s (type %.*s)\n", c->uid, what, n < 0 ? 1 : n,
                n < 0 ? "?" : type);
    }
}

/* One handshake answered on c: count it, then rekey, prove the keys, or let the slot go. */
static void handshake_done(hs_t *h, lg_conn_t *c)
{
    uint64_t now = lg_now_ns();
    h->handshakes++;
    if (now >= h->t_meas && now < h->t_end) {
        h->in_window++;
        if (h->nrtt < MAX_SAMPLES)
            h->rtt[h->nrtt++] = lg_pq_last_rtt_ns(c);
        if (h->done_on_conn[c->idx] == 0 && h->nsetup < MAX_SAMPLES)
            h->setup[h->nsetup++] = now - c->t_start;
    }
    uint32_t i = c->idx;
    if (++h->done_on_conn[i] < h->o->per_conn) {
        lg_pq_start(c, 1);
        return;
    }
    if (lg_pq_active(c)) {
        static const char ping[] = "{\"type\":\"ping\",\"id\":\"k\"}";
        h->state[i] = SLOT_KEY_CHECK;
        lg_send_text(c, ping, sizeof ping - 1);
        return;
    }
    retire(h, c, 1);
}

static void on_text(lg_conn_t *c, char *msg, size_t len)
{
    hs_t *h = c->loop->ud;
    if (c->sess != LG_SESS_READY) {
        switch (lg_sess_feed(c, msg, len)) {
        case LG_SESS_NOW_READY:
            handshake_done(h, c);
            break;
        case LG_SESS_FAILED:
            retire(h, c, 0);
            break;
        default:
            break;
        }
        return;
    }
    /* Inside the session (frames already opened by the reader). */
    if (h->state[c->idx] == SLOT_KEY_CHECK) {
        const char *type;
        if (lg_json_str(msg, len, "type", &type) == 4 && memcmp(type, "pong", 4) == 0) {
            h->key_checks++;
            retire(h, c, 1);
        } else {
            report(h, c, "expected a sealed pong", msg, len);
            retire(h, c, 0);
        }
        return;
    }
    if (lg_pq_waiting(c)) {
        if (lg_pq_finish(c, msg, len) < 0) {
            report(h, c, "bad rekey response", msg, len);
            retire(h, c, 0);
        } else {
            handshake_done(h, c);
        }
        return;
    }
    report(h, c, "unexpected message", msg, len);
}

static void on_close(lg_conn_t *c, int err)
{
    hs_t *h = c->loop->ud;
    if (h->failed + 1 <= 3)
        fprintf(stderr, "loadgen: %s closed by the server or the network (%d)\n", c->uid, err);
    h->failed++;
    start_slot(h, c->idx);
}

static const lg_handlers_t handlers = {.on_text = on_text, .on_close = on_close};

int lg_run_pq_handshake(const lg_opts_t *o)
{
    if (o->pq == LG_PQ_NONE)
        lg_die("pq-handshake: --pq ML-KEM-768 or X25519MLKEM768");
    if (o->duration <= 0 || o->warmup < 0 || o->per_conn < 1 || o->per_conn > 100000 ||
        o->conc > 10000 || o->conns == 0)
        lg_die("pq-handshake: --duration > 0, --per-conn 1..100000, --concurrency 1..10000, "
               "--conns > 0");
    /* Connections that rekey use every key; the others derive only a sample. */
    lg_pq_setup(o->pq, o->pq_pool, o->verify_every, o->per_conn > 1 ? LG_PQ_KEEP_KEYS : 0);
    hs_t h = {.o = o, .nslots = o->conc};
    h.slot = lg_xcalloc(h.nslots, sizeof *h.slot);
    h.done_on_conn = lg_xcalloc(h.nslots, sizeof *h.done_on_conn);
    h.state = lg_xcalloc(h.nslots, 1);
    h.rtt = lg_xmalloc(MAX_SAMPLES * sizeof *h.rtt);
    h.setup = lg_xmalloc(MAX_SAMPLES * sizeof *h.setup);
    lg_loop_init(&h.loop, o->proto, o->host, o->port, o->src, o->nsrc, &handlers, &h);
    uint64_t t0 = lg_now_ns(), deadline = t0 + (uint64_t)(o->timeout * 1e9);
    h.t_meas = t0 + (uint64_t)(o->warmup * 1e9);
    h.t_end = h.t_meas + (uint64_t)(o->duration * 1e9);
    if (h.t_end > deadline)
        h.t_end = deadline;
    for (uint32_t i = 0; i < h.nslots; i++)
        start_slot(&h, i);
    pid_t pids[2] = {o->server_pid, getpid()};
    lg_cpu_snap_t ca, cb;
    int have_a = 0;
    uint64_t hs_a = 0;
    for (uint64_t now = lg_now_ns(); now < h.t_end; now = lg_now_ns()) {
        if (!have_a && now >= h.t_meas) {
            lg_cpu_snap(&ca, pids, 2);
            hs_a = h.handshakes;
            have_a = 1;
            lg_mark_measuring();
        }
        uint64_t until = have_a ? h.t_end : h.t_meas;
        int64_t wait = (int64_t)(until - now);
        lg_loop_run_once(&h.loop, wait > 20000000 ? 20000000 : wait);
        if (h.loop.nconns == 0 && h.conns_started >= o->conns)
            break; /* the count bound ran out before the time did */
    }
    if (!have_a) {
        lg_cpu_snap(&ca, pids, 2);
        hs_a = h.handshakes;
    }
    lg_cpu_snap(&cb, pids, 2);
    uint64_t hs_b = h.handshakes;
    h.stopping = 1;
    for (uint32_t i = 0; i < h.nslots; i++)
        if (h.slot[i]) {
            lg_close(h.slot[i], 1);
            h.slot[i] = NULL;
        }
    lg_loop_run_once(&h.loop, 0);

    double secs = (double)(cb.t_ns - ca.t_ns) / 1e9;
    double hz = (double)sysconf(_SC_CLK_TCK);
    double server_s = (double)(cb.ticks[0] - ca.ticks[0]) / hz;
    double gen_s = (double)(cb.ticks[1] - ca.ticks[1]) / hz;
    uint64_t counted = hs_b - hs_a;
    printf("{\"scenario\":\"pq-handshake\",\"algorithm\":\"%s\",\"per_conn\":%u,"
           "\"concurrency\":%u,\"seconds\":%.3f,\"handshakes\":%llu,\"per_sec\":%.1f,"
           "\"connections_per_sec\":%.1f,\"server_cpu_s\":%.3f,\"server_cpu_us_per_hs\":%.2f,"
           "\"per_core\":%.1f,\"gen_cpu_us_per_hs\":%.2f,\"key_checks\":%llu,\"failed\":%llu,"
           "\"unexpected\":%llu,\"connections\":%llu,",
           lg_pq_alg_name(o->pq), o->per_conn, o->conc, secs, (unsigned long long)counted,
           secs > 0 ? (double)counted / secs : 0.0,
           secs > 0 ? (double)h.conns_in_window / secs : 0.0, server_s,
           counted ? server_s * 1e6 / (double)counted : 0.0,
           server_s > 0 ? (double)counted / server_s : 0.0,
           counted ? gen_s * 1e6 / (double)counted : 0.0, (unsigned long long)h.key_checks,
           (unsigned long long)h.failed, (unsigned long long)h.unexpected,
           (unsigned long long)h.conns_started);
    lg_print_percentiles(stdout, "rtt", h.rtt, h.nrtt);
    putchar(',');
    lg_print_percentiles(stdout, "setup", h.setup, h.nsetup);
    putchar(',');
    lg_pq_print(stdout);
    putchar(',');
    lg_cpu_print(stdout, &ca, &cb, 1);
    printf(",\"counters\":{\"connect_failed\":%llu,\"closed_by_server\":%llu,"
           "\"protocol_errors\":%llu}}\n",
           (unsigned long long)h.loop.n_connect_fail, (unsigned long long)h.loop.n_closed_by_peer,
           (unsigned long long)h.loop.n_proto_err);
    const lg_pq_stats_t *st = lg_pq_stats();
    int rc = counted == 0 || h.failed || h.unexpected || st->bad_response || st->refused ||
                     st->open_failed || h.key_checks == 0
                 ? 3
                 : 0;
    lg_loop_deinit(&h.loop);
    free(h.slot);
    free(h.done_on_conn);
    free(h.state);
    free(h.rtt);
    free(h.setup);
    lg_pq_teardown();
    return rc;
}
