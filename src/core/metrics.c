#include "core/metrics.h"

#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

static const double bucket_le[VS_METRICS_BUCKETS] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                                     0.0025,  0.005,  0.01,    0.025,  0.05,
                                                     0.1,     0.25,   0.5,     1.0};

void vs_metrics_observe(vs_metrics_t *m, vs_msg_type_t t, double seconds)
{
    if ((unsigned)t >= VS_MSG_COUNT)
        return;
    m->req_count[t]++;
    m->req_sum[t] += seconds;
    for (int i = 0; i < VS_METRICS_BUCKETS; i++)
        if (seconds <= bucket_le[i]) {
            m->req_bucket[t][i]++;
            break;
        }
}

static void gauge(vs_buf_t *o, const char *name, const char *help, uint64_t v)
{
    vs_buf_printf(o, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", name, help, name, name,
                  (unsigned long long)v);
}

static void counter(vs_buf_t *o, const char *name, const char *help, uint64_t v)
{
    vs_buf_printf(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                  (unsigned long long)v);
}

static void process_metrics(vs_buf_t *o, double start_time)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned long vsz = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu %lu", &vsz, &rss) != 2)
            vsz = rss = 0;
        fclose(f);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    gauge(o, "process_resident_memory_bytes", "Resident memory size in bytes.",
          (uint64_t)rss * (uint64_t)page);
    gauge(o, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
          (uint64_t)vsz * (uint64_t)page);
    vs_buf_printf(o,
                  "# HELP process_cpu_seconds_total Total user and system CPU time in seconds.\n"
                  "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.6f\n",
                  cpu);
    vs_buf_printf(o,
                  "# HELP process_start_time_seconds Start time since the epoch in seconds.\n"
                  "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
                  start_time);
}

void vs_metrics_render(const vs_metrics_t *m, const vs_metrics_gauges_t *g, double start_time,
                       vs_buf_t *o)
{
    gauge(o, "volli_connections", "Open WebSocket connections.", g->connections);
    gauge(o, "volli_online_users", "Users registered on an open connection.", g->online_users);
    gauge(o, "volli_registered_users", "User ids with a key bound in the store.",
          g->registered_users);
    gauge(o, "volli_directory_entries", "Users held in memory (online or watched).",
          g->directory_entries);
    gauge(o, "volli_pending_registers", "Registrations waiting for the store.",
          g->pending_registers);
    counter(o, "volli_connections_total", "WebSocket connections accepted.", m->connections_total);
    counter(o, "volli_connections_refused_total", "Connections refused over max-connections.",
            m->connections_refused);
    counter(o, "volli_http_requests_total", "Plain HTTP requests served.", m->http_requests_total);
    counter(o, "volli_ws_protocol_errors_total", "Connections closed for WebSocket violations.",
            m->ws_protocol_errors);
    counter(o, "volli_slow_consumers_total", "Connections dropped for exceeding max-queue.",
            m->slow_consumers);
    counter(o, "volli_keepalive_drops_total", "Connections dropped after two missed pings.",
            m->keepalive_drops);
    counter(o, "volli_store_batches_total", "Group commits of key bindings.", m->store_batches);
    counter(o, "volli_store_bindings_total", "Key bindings created.", m->store_bindings);
    counter(o, "volli_store_failures_total", "Failed store transactions.", m->store_failures);

    counter(o, "volli_rate_disconnects_total",
            "Connections closed after rate-strikes limited messages in a row.",
            m->rate_disconnects);
    counter(o, "volli_per_ip_refused_total", "Connections refused over max-connections-per-ip.",
            m->per_ip_refused);
    counter(o, "volli_handshake_timeouts_total", "Connections dropped before finishing the upgrade.",
            m->handshake_timeouts);
    counter(o, "volli_register_timeouts_total", "WebSockets dropped for not registering in time.",
            m->register_timeouts);
    gauge(o, "volli_rooms", "Rooms with at least one participant.", g->rooms);
    gauge(o, "volli_room_participants", "Room memberships, hidden participants included.",
          g->room_participants);
    counter(o, "volli_room_messages_total", "room_message requests fanned out to a room.",
            m->room_messages);
    vs_buf_puts(o, "# HELP volli_tokens_total Access tokens presented at the upgrade, by result.\n"
                   "# TYPE volli_tokens_total counter\n");
    for (int r = 0; r < VS_TOKEN_REASON_COUNT; r++)
        vs_buf_printf(o, "volli_tokens_total{result=\"%s\"} %llu\n",
                      vs_token_reason_name((vs_token_reason_t)r), (unsigned long long)m->tokens[r]);
    static const char *const kinds[] = {"messages", "bytes", "register", "lookup"};
    vs_buf_puts(o, "# HELP volli_rate_limited_total Requests refused by a rate limit, by kind.\n"
                   "# TYPE volli_rate_limited_total counter\n");
    for (int k = 0; k < 4; k++)
        vs_buf_printf(o, "volli_rate_limited_total{kind=\"%s\"} %llu\n", kinds[k],
                      (unsigned long long)m->rate_limited[k]);

    static const char *const pq_algs[] = {"ML-KEM-768", "X25519MLKEM768"};
    vs_buf_puts(o, "# HELP volli_pq_handshakes_total Post-quantum handshakes and rekeys "
                   "completed, by algorithm.\n"
                   "# TYPE volli_pq_handshakes_total counter\n");
    for (int a = 0; a < 2; a++)
        vs_buf_printf(o, "volli_pq_handshakes_total{algorithm=\"%s\"} %llu\n", pq_algs[a],
                      (unsigned long long)m->pq_handshakes[a]);
    static const char *const pq_reasons[] = {"bad_request", "key_mismatch", "bad_key",
                                             "plaintext",   "bad_seq",      "bad_tag",
                                             "rekey_timeout"};
    _Static_assert(sizeof pq_reasons / sizeof pq_reasons[0] == VS_PQ_FAIL_COUNT,
                   "pq_reasons[] is indexed by vs_pq_failure");
    vs_buf_puts(o, "# HELP volli_pq_failures_total Post-quantum handshakes and frames refused, "
                   "by reason.\n"
                   "# TYPE volli_pq_failures_total counter\n");
    for (int r = 0; r < VS_PQ_FAIL_COUNT; r++)
        vs_buf_printf(o, "volli_pq_failures_total{reason=\"%s\"} %llu\n", pq_reasons[r],
                      (unsigned long long)m->pq_failures[r]);

    vs_buf_puts(o, "# HELP volli_messages_relayed_total Messages relayed to a peer, by type.\n"
                   "# TYPE volli_messages_relayed_total counter\n");
    for (int t = 0; t < VS_MSG_COUNT; t++)
        if (vs_msg_is_relay((vs_msg_type_t)t))
            vs_buf_printf(o, "volli_messages_relayed_total{type=\"%s\"} %llu\n",
                          vs_msg_type_name((vs_msg_type_t)t), (unsigned long long)m->relayed[t]);

    vs_buf_puts(o, "# HELP volli_errors_total Error replies sent, by wire code.\n"
                   "# TYPE volli_errors_total counter\n");
    for (int e = 0; e < VS_WERR_COUNT; e++)
        vs_buf_printf(o, "volli_errors_total{code=\"%s\"} %llu\n",
                      vs_wire_error_name((vs_wire_error_t)e), (unsigned long long)m->errors[e]);

    vs_buf_puts(o, "# HELP volli_request_duration_seconds Time from a request's arrival to its "
                   "reply (or forward), by type.\n"
                   "# TYPE volli_request_duration_seconds histogram\n");
    for (int t = 0; t < VS_MSG_COUNT; t++) {
        const char *name = vs_msg_type_name((vs_msg_type_t)t);
        uint64_t cum = 0;
        for (int i = 0; i < VS_METRICS_BUCKETS; i++) {
            cum += m->req_bucket[t][i];
            vs_buf_printf(o, "volli_request_duration_seconds_bucket{type=\"%s\",le=\"%g\"} %llu\n",
                          name, bucket_le[i], (unsigned long long)cum);
        }
        vs_buf_printf(o,
                      "volli_request_duration_seconds_bucket{type=\"%s\",le=\"+Inf\"} %llu\n"
                      "volli_request_duration_seconds_sum{type=\"%s\"} %.9f\n"
                      "volli_request_duration_seconds_count{type=\"%s\"} %llu\n",
                      name, (unsigned long long)m->req_count[t], name, m->req_sum[t], name,
                      (unsigned long long)m->req_count[t]);
    }
    process_metrics(o, start_time);
}
