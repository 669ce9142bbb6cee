/* lg_presence.c: the Volli-only scenarios.
 *   fanout:   --subs subscribers watch one user; that user comes online (register) and goes
 *             offline (closes) --cycles times; time until the last subscriber knows.
 *   discover: --clients registered connections keep --window discover requests in flight for
 *             --duration seconds, for online users or (--offline N) for users who registered
 *             and left, whose key the server reads from its store. */
#include "lg.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PHASE_TIMEOUT_NS 15000000000ull
/* No discover run sends more requests than this, whatever its duration. */
#define MAX_REQUESTS 200000000ull

/* ------------------------------------------------------------------------------------------ */
/* fanout                                                                                       */

typedef struct fan {
    lg_pop_t *subs, *tgt;
    uint32_t subscribed, got, stamp;
    int phase; /* 0 subscribing, 1 waiting for online, 2 waiting for offline */
    uint32_t *seen;
    uint64_t *arrive, *arrive_sock; /* read by the generator; arrived in the subscriber's socket */
    uint64_t t_last, t_last_sock, errors;
} fan_t;

static void fan_ready(lg_scen_t *s, lg_conn_t *c)
{
    fan_t *f = s->ud;
    if (c->role != 0)
        return;
    char msg[128], target[LG_UID_MAX];
    lg_uid(target, s->o->tag, 't', 0);
    int n = snprintf(msg, sizeof msg, "{\"type\":\"subscribe\",\"id\":\"s\",\"userIds\":[\"%s\"]}",
                     target);
    lg_send_text(c, msg, (size_t)n);
    (void)f;
}

static void fan_msg(lg_scen_t *s, lg_conn_t *c, char *msg, size_t len)
{
    fan_t *f = s->ud;
    const char *v;
    int tl = lg_json_str(msg, len, "type", &v);
    if (c->role != 0 || tl != 8 || memcmp(v, "presence", 8) != 0) {
        if (++f->errors <= 3)
            fprintf(stderr, "loadgen: unexpected message to %s: %.*s\n", c->uid,
                    (int)(len > 200 ? 200 : len), msg);
        return;
    }
    int online = memmem(msg, len, "\"online\":true", 13) != NULL;
    if (f->phase == 0) {
        if (lg_json_str(msg, len, "id", &v) == 1 && !online && f->seen[c->idx] == 0) {
            f->seen[c->idx] = 1;
            f->subscribed++;
        }
        return;
    }
    if (online != (f->phase == 1) || f->seen[c->idx] == f->stamp)
        return;
    uint64_t now = lg_now_ns();
    f->seen[c->idx] = f->stamp;
    f->arrive_sock[f->got] = c->rx_ns ? c->rx_ns : now;
    if (f->arrive_sock[f->got] > f->t_last_sock)
        f->t_last_sock = f->arrive_sock[f->got];
    f->arrive[f->got++] = now;
    f->t_last = now;
}

/* Runs the loop until every subscriber saw the change, or the phase times out. */
static int fan_wait(lg_scen_t *s, fan_t *f, uint32_t want)
{
    uint64_t limit = lg_now_ns() + PHASE_TIMEOUT_NS;
    while (f->got < want && lg_now_ns() < limit && !lg_scen_expired(s)) {
        lg_scen_fill(s, s->o->conc);
        lg_loop_run_once(&s->loop, 5000000);
    }
    return f->got >= want ? 0 : -1;
}

int lg_run_fanout(const lg_opts_t *o)
{
    if (o->proto != LG_PROTO_VOLLI)
        lg_die("fanout: presence is a Volli Signal feature (PeerJS has none)");
    if (o->subs == 0 || o->cycles == 0 || o->cycles > 100)
        lg_die("fanout: --subs > 0, --cycles 1..100");
    fan_t f = {0};
    lg_scen_t s;
    lg_scen_init(&s, o, o->src);
    s.loop.rx_timestamps = 1;
    s.ud = &f;
    s.on_ready = fan_ready;
    s.on_msg = fan_msg;
    f.subs = lg_pop_add(&s, 'f', o->subs, 0);
    f.tgt = lg_pop_add(&s, 't', 1, 0);
    f.tgt->n = 0;
    f.seen = lg_xcalloc(o->subs, sizeof *f.seen);
    f.arrive = lg_xcalloc(o->subs, sizeof *f.arrive);
    f.arrive_sock = lg_xcalloc(o->subs, sizeof *f.arrive_sock);
    f.stamp = 1;
    int setup = lg_scen_bring_up(&s);
    uint64_t limit = lg_now_ns() + PHASE_TIMEOUT_NS;
    while (setup == 0 && f.subscribed < o->subs && lg_now_ns() < limit && !lg_scen_expired(&s))
        lg_loop_run_once(&s.loop, 5000000);
    printf("{\"scenario\":\"fanout\",\"subs\":%u,\"subscribed\":%u,\"cycles\":[", o->subs,
           f.subscribed);
    int rc = setup == 0 && f.subscribed == o->subs ? 0 : 3;
    pid_t pids[2] = {o->server_pid, getpid()};
    lg_cpu_snap_t ca, cb;
    lg_cpu_snap(&ca, pids, 2);
    lg_mark_measuring();
    /* Arrival times of the last online cycle, relative to its register: read, then in-socket. */
    uint64_t *last_read = lg_xcalloc(o->subs, sizeof *last_read);
    uint64_t *last_sock = lg_xcalloc(o->subs, sizeof *last_sock);
    uint32_t last_n = 0;
    for (uint32_t k = 0; rc == 0 && k < o->cycles; k++) {
        /* Online: the target connects and registers; t0 is when its register was queued. */
        f.phase = 1;
        f.got = 0;
        f.t_last_sock = 0;
        f.stamp++;
        f.tgt->next = 0;
        f.tgt->n = 1;
        int ok_on = fan_wait(&s, &f, o->subs);
        lg_conn_t *t = f.tgt->conns[0];
        if (ok_on != 0 || !t || t->sess != LG_SESS_READY) {
            rc = 3;
            break;
        }
        uint64_t t0 = t->t_register;
        double on_ms = (double)(f.t_last - t0) / 1e6;
        double on_sock_ms = (double)(f.t_last_sock - t0) / 1e6;
        double reg_ms = (double)(f.tgt->t_last_ready - t0) / 1e6;
        for (uint32_t i = 0; i < f.got; i++) {
            last_read[i] = f.arrive[i] - t0;
            last_sock[i] = f.arrive_sock[i] > t0 ? f.arrive_sock[i] - t0 : 0;
        }
        last_n = f.got;
        /* Offline: the target closes its socket (FIN); t0 is the close. */
        f.phase = 2;
        f.got = 0;
        f.t_last_sock = 0;
        f.stamp++;
        uint64_t t1 = lg_now_ns();
        lg_pop_close_all(f.tgt, 0);
        int ok_off = fan_wait(&s, &f, o->subs);
        double off_ms = ok_off == 0 ? (double)(f.t_last - t1) / 1e6 : -1;
        double off_sock_ms = ok_off == 0 ? (double)(f.t_last_sock - t1) / 1e6 : -1;
        printf("%s{\"online_ms\":%.3f,\"online_socket_ms\":%.3f,\"registered_ms\":%.3f,"
               "\"offline_ms\":%.3f,\"offline_socket_ms\":%.3f}",
               k ? "," : "", on_ms, on_sock_ms, reg_ms, off_ms, off_sock_ms);
        if (ok_off != 0)
            rc = 3;
        lg_scen_sleep(&s, 0.2);
    }
    lg_cpu_snap(&cb, pids, 2);
    printf("],");
    lg_print_percentiles(stdout, "last_cycle_read", last_read, last_n);
    putchar(',');
    lg_print_percentiles(stdout, "last_cycle_socket", last_sock, last_n);
    putchar(',');
    lg_cpu_print(stdout, &ca, &cb, 1);
    putchar(',');
    lg_print_counters(stdout, &s);
    printf("}\n");
    if (o->cdf && last_n) {
        char path[4096];
        snprintf(path, sizeof path, "%s.socket", o->cdf);
        if (lg_write_cdf(o->cdf, last_read, last_n) != 0 ||
            lg_write_cdf(path, last_sock, last_n) != 0)
            rc = 1;
    }
    free(last_read);
    free(last_sock);
    free(f.seen);
    free(f.arrive);
    free(f.arrive_sock);
    lg_scen_deinit(&s);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* discover                                                                                     */

typedef struct disc {
    lg_pop_t *users, *off;
    uint32_t clients, window, ntargets;
    char role;         /* of the targets: 'u' online, 'o' offline */
    uint64_t *sent_at; /* per client: window slots */
    uint32_t *sent_id, *head, *count, *next_id;
    int sending;
    uint64_t t_meas, t_end, rr;
    uint64_t sent, in_window, total, errors, mismatches;
    uint64_t *lat;
    size_t nlat, caplat;
} disc_t;

static void disc_send(lg_scen_t *s, disc_t *d, lg_conn_t *c)
{
    uint32_t i = c->idx;
    if (d->sending != 1 || d->count[i] >= d->window || d->sent >= MAX_REQUESTS)
        return;
    char target[LG_UID_MAX], msg[160];
    lg_uid(target, s->o->tag, d->role, (uint32_t)((d->rr++ * 7919) % d->ntargets));
    uint32_t id = d->next_id[i]++;
    int n = snprintf(msg, sizeof msg, "{\"type\":\"discover\",\"id\":\"%u\",\"userId\":\"%s\"}", id,
                     target);
    uint32_t slot = (d->head[i] + d->count[i]) % d->window;
    d->sent_at[(size_t)i * d->window + slot] = lg_now_ns();
    d->sent_id[(size_t)i * d->window + slot] = id;
    d->count[i]++;
    d->sent++;
    lg_send_text(c, msg, (size_t)n);
}

static void disc_msg(lg_scen_t *s, lg_conn_t *c, char *msg, size_t len)
{
    disc_t *d = s->ud;
    uint32_t i = c->idx;
    const char *v;
    if (c->role != 0 || i >= d->clients || d->count[i] == 0) {
        d->errors++;
        return;
    }
    uint64_t now = lg_now_ns();
    size_t slot = (size_t)i * d->window + d->head[i];
    uint64_t t = d->sent_at[slot];
    uint32_t want = d->sent_id[slot];
    d->head[i] = (d->head[i] + 1) % d->window;
    d->count[i]--;
    int tl = lg_json_str(msg, len, "type", &v);
    if (tl != 8 || memcmp(v, "discover", 8) != 0) {
        if (++d->errors <= 3)
            fprintf(stderr, "loadgen: discover answered with: %.*s\n", (int)(len > 200 ? 200 : len),
                    msg);
    } else {
        int il = lg_json_str(msg, len, "id", &v);
        int want_online = d->role == 'u';
        int online = memmem(msg, len, "\"online\":true", 13) != NULL;
        if (il <= 0 || lg_get_digits(v, il) != want || online != want_online ||
            !memmem(msg, len, "\"publicKey\":\"", 13))
            d->mismatches++;
        d->total++;
        if (now >= d->t_meas && now < d->t_end) {
            d->in_window++;
            if (d->nlat < d->caplat)
                d->lat[d->nlat++] = now - t;
        }
    }
    disc_send(s, d, c);
}

int lg_run_discover(const lg_opts_t *o)
{
    if (o->proto != LG_PROTO_VOLLI)
        lg_die("discover: a Volli Signal request (PeerJS has none)");
    if (o->users == 0 || o->clients == 0 || o->clients > o->users || o->window == 0 ||
        o->window > 1024 || o->duration <= 0)
        lg_die("discover: --users > 0, --clients 1..users, --window 1..1024, --duration > 0");
    disc_t d = {.clients = o->clients, .window = o->window};
    lg_scen_t s;
    lg_scen_init(&s, o, o->src);
    s.ud = &d;
    s.on_msg = disc_msg;
    d.users = lg_pop_add(&s, 'u', o->users, 0);
    if (o->offline)
        d.off = lg_pop_add(&s, 'o', o->offline, 0);
    d.role = o->offline ? 'o' : 'u';
    d.ntargets = o->offline ? o->offline : o->users;
    if (lg_scen_bring_up(&s) != 0) {
        printf("{\"scenario\":\"discover\",\"error\":\"setup failed\",");
        lg_print_counters(stdout, &s);
        printf("}\n");
        lg_scen_deinit(&s);
        return 3;
    }
    if (d.off) {
        /* They leave: the server keeps their key in the store only. */
        lg_pop_close_all(d.off, 0);
        lg_scen_sleep(&s, 1.0);
    }
    size_t slots = (size_t)d.clients * d.window;
    d.sent_at = lg_xcalloc(slots, sizeof *d.sent_at);
    d.sent_id = lg_xcalloc(slots, sizeof *d.sent_id);
    d.head = lg_xcalloc(d.clients, sizeof *d.head);
    d.count = lg_xcalloc(d.clients, sizeof *d.count);
    d.next_id = lg_xcalloc(d.clients, sizeof *d.next_id);
    d.caplat = 4000000;
    d.lat = lg_xmalloc(d.caplat * sizeof *d.lat);
    uint64_t t0 = lg_now_ns();
    d.t_meas = t0 + (uint64_t)(o->warmup * 1e9);
    d.t_end = d.t_meas + (uint64_t)(o->duration * 1e9);
    d.sending = 1;
    for (uint32_t i = 0; i < d.clients; i++)
        for (uint32_t k = 0; k < d.window; k++)
            if (d.users->conns[i])
                disc_send(&s, &d, d.users->conns[i]);
    pid_t pids[2] = {o->server_pid, getpid()};
    lg_cpu_snap_t ca, cb;
    lg_scen_sleep(&s, o->warmup);
    lg_cpu_snap(&ca, pids, 2);
    lg_mark_measuring();
    lg_scen_sleep(&s, o->duration);
    lg_cpu_snap(&cb, pids, 2);
    d.sending = 2;
    lg_scen_sleep(&s, 0.5);
    double secs = (double)(cb.t_ns - ca.t_ns) / 1e9;
    printf("{\"scenario\":\"discover\",\"target\":\"%s\",\"users\":%u,\"clients\":%u,"
           "\"window\":%u,\"seconds\":%.3f,\"answered\":%llu,\"per_sec\":%.1f,\"errors\":%llu,"
           "\"mismatches\":%llu,",
           d.role == 'u' ? "online" : "offline", o->users, d.clients, d.window, secs,
           (unsigned long long)d.in_window, secs > 0 ? (double)d.in_window / secs : 0.0,
           (unsigned long long)d.errors, (unsigned long long)d.mismatches);
    lg_print_percentiles(stdout, "latency", d.lat, d.nlat);
    putchar(',');
    lg_cpu_print(stdout, &ca, &cb, 1);
    putchar(',');
    lg_print_counters(stdout, &s);
    printf("}\n");
    int rc = d.errors || d.mismatches || d.in_window == 0 ? 3 : 0;
    free(d.sent_at);
    free(d.sent_id);
    free(d.head);
    free(d.count);
    free(d.next_id);
    free(d.lat);
    lg_scen_deinit(&s);
    return rc;
}
