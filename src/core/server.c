#include "core/server_impl.h"

#include "cluster/cluster.h"
#include "common/alloc.h"
#include "common/base64.h"
#include "common/error.h"
#include "common/log.h"
#include "core/pq.h"
#include "core/session.h"
#include "crypto/pqkx.h"
#include "storage/store_pg.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#define CLOSE_HANDSHAKE_MS 2000
#define SWEEP_INTERVAL_MS 1000

static void send_presence(void *conn, const char *data, size_t len, void *ud)
{
    (void)ud;
    vs_conn_send_text(conn, data, len);
}

static void on_flush_check(uv_check_t *h)
{
    vs_server_t *s = h->data;
    if (s->cluster)
        vs_cluster_resume_synced(s->cluster);
    vs_register_submit(s);
    vs_lookup_flush(s);
    if (s->cluster)
        vs_cluster_flush(s->cluster);
    vs_conn_flush_all(s);
}

static void close_all(vs_server_t *s);

static void on_ping_timer(uv_timer_t *t)
{
    vs_conn_ping_all(t->data);
}

static void on_sweep_timer(uv_timer_t *t)
{
    vs_server_t *s = t->data;
    vs_conn_sweep(s, CLOSE_HANDSHAKE_MS);
    vs_pq_sweep(s);
    vs_ip_table_gc(s->ips, s->cfg->register_rate / 60.0, s->cfg->register_rate,
                   vs_server_now(s));
    if (!s->shutting_down)
        return;
    if (s->draining) {
        if (s->active.n > 0 && vs_server_now(s) < s->drain_deadline)
            return;
        close_all(s);
    }
    int idle = s->active.n == 0 && s->pending.n == 0 && !s->regq.busy && !s->regq.head &&
               !vs_lookup_busy(s);
    if (idle || vs_server_now(s) >= s->shutdown_deadline) {
        if (!idle)
            VS_LOG(VS_LOG_WARN, "shutdown_timeout", "connections", "%zu",
                   s->active.n + s->pending.n, NULL);
        /* Anything still open is dropped; the store batch in flight is waited for below. */
        for (vs_conn_t *c = s->active.head; c; c = c->next)
            vs_conn_doom(c);
        for (vs_conn_t *c = s->pending.head; c; c = c->next)
            vs_conn_doom(c);
        vs_conn_flush_all(s);
        uv_stop(&s->loop);
    }
}

/* The end of the drain: this node leaves the cluster and closes what is still open. */
static void close_all(vs_server_t *s)
{
    s->draining = 0;
    if (s->cluster)
        vs_cluster_leave(s->cluster);
    s->shutdown_deadline = vs_server_now(s) + (uint64_t)(s->cfg->shutdown_timeout * 1000.0);
    for (vs_conn_t *c = s->active.head, *next; c; c = next) {
        next = c->next;
        if (c->flags & VS_CONN_DOOMED)
            continue;
        vs_conn_close(c, VS_WS_CLOSE_GOING_AWAY, "server shutting down");
    }
}

/* SIGTERM: no new connections; the clients are told to move to another server
 * ({"type":"reconnect","reason":"draining"}) and get drain-timeout to do so; then the rest is
 * closed with 1001. */
static void begin_shutdown(vs_server_t *s, const char *why)
{
    if (s->shutting_down)
        return;
    s->shutting_down = 1;
    VS_LOG(VS_LOG_INFO, "shutting_down", "signal", "%s", why, "connections", "%zu",
           s->active.n + s->pending.n, "drain_seconds", "%.3f", s->cfg->drain_timeout, NULL);
    uv_close((uv_handle_t *)&s->listener, NULL);
    if (s->api_listening)
        uv_close((uv_handle_t *)&s->api_listener, NULL);
    uv_timer_stop(&s->ping_timer);
    for (vs_conn_t *c = s->pending.head; c; c = c->next)
        if (c->state == VS_CONN_HTTP)
            vs_conn_doom(c);
    static const char notice[] = "{\"type\":\"reconnect\",\"reason\":\"draining\"}";
    for (vs_conn_t *c = s->active.head; c; c = c->next)
        if (c->state == VS_CONN_WS && !(c->flags & VS_CONN_DOOMED))
            vs_conn_send_text(c, notice, sizeof notice - 1);
    s->drain_deadline = vs_server_now(s) + (uint64_t)(s->cfg->drain_timeout * 1000.0);
    s->draining = 1;
    if (s->active.n == 0 || s->cfg->drain_timeout <= 0)
        close_all(s);
    /* Check often now, so the process exits as soon as the last close handshake is done. */
    uv_timer_start(&s->sweep_timer, on_sweep_timer, 20, 20);
}

static void on_signal(uv_signal_t *h, int signum)
{
    begin_shutdown(h->data, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

int vs_addr_canonical(const char *in, size_t len, char out[46])
{
    char tmp[64];
    unsigned char bin[16];
    while (len && (*in == ' ' || *in == '\t')) {
        in++;
        len--;
    }
    while (len && (in[len - 1] == ' ' || in[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= sizeof tmp)
        return VS_EINVAL;
    memcpy(tmp, in, len);
    tmp[len] = '\0';
    if (uv_inet_pton(AF_INET, tmp, bin) == 0)
        return uv_inet_ntop(AF_INET, bin, out, 46) == 0 ? 0 : VS_EINVAL;
    if (uv_inet_pton(AF_INET6, tmp, bin) == 0)
        return uv_inet_ntop(AF_INET6, bin, out, 46) == 0 ? 0 : VS_EINVAL;
    return VS_EINVAL;
}

int vs_server_trusts(const vs_server_t *s, const char *addr)
{
    for (size_t i = 0; i < s->ntrusted; i++)
        if (strcmp(s->trusted[i], addr) == 0)
            return 1;
    return 0;
}

static int parse_trusted(vs_server_t *s, char *err, size_t errlen)
{
    const char *p = s->cfg->trusted_proxies;
    if (!p || strcmp(p, "none") == 0)
        return 0;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n) {
            if (s->ntrusted == sizeof s->trusted / sizeof s->trusted[0]) {
                snprintf(err, errlen, "--trusted-proxies: at most %zu addresses",
                         sizeof s->trusted / sizeof s->trusted[0]);
                return VS_EINVAL;
            }
            if (vs_addr_canonical(p, n, s->trusted[s->ntrusted]) != 0) {
                snprintf(err, errlen, "--trusted-proxies: \"%.*s\" is not an IP address",
                         (int)(n < 64 ? n : 64), p);
                return VS_EINVAL;
            }
            s->ntrusted++;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

/* Logs the address a listener actually bound (the kernel picks the port for 0). */
static void log_bound(uv_tcp_t *listener, const char *event, int port)
{
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    char host[64] = "?";
    if (uv_tcp_getsockname(listener, (struct sockaddr *)&bound, &blen) == 0) {
        if (bound.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&bound, host, sizeof host);
            port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&bound, host, sizeof host);
            port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        }
    }
    VS_LOG(VS_LOG_INFO, event, "host", "%s", host, "port", "%d", port, NULL);
}

static int listen_on(vs_server_t *s, char *err, size_t errlen)
{
    const vs_config_t *cfg = s->cfg;
    struct sockaddr_storage addr;
    if (uv_ip4_addr(cfg->host, cfg->port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(cfg->host, cfg->port, (struct sockaddr_in6 *)&addr) != 0) {
        snprintf(err, errlen, "--host: \"%s\" is not an IPv4 or IPv6 address", cfg->host);
        return VS_EINVAL;
    }
    uv_tcp_init(&s->loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 4096, vs_conn_on_connection);
    if (rc != 0) {
        if (rc == UV_EADDRINUSE)
            snprintf(err, errlen, "cannot listen on %s:%d: the address is already in use",
                     cfg->host, cfg->port);
        else
            snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->host, cfg->port,
                     uv_strerror(rc));
        return VS_EIO;
    }
    log_bound(&s->listener, "listening", cfg->port);
    return 0;
}

/* The HTTP API port. It serves statistics only, so failing to bind it is logged and the
 * signaling service runs on without it (several servers on one host share the default). */
static void listen_api(vs_server_t *s)
{
    const vs_config_t *cfg = s->cfg;
    if (cfg->api_port < 0)
        return;
    struct sockaddr_storage addr;
    if (uv_ip4_addr(cfg->api_host, cfg->api_port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(cfg->api_host, cfg->api_port, (struct sockaddr_in6 *)&addr) != 0) {
        VS_LOG(VS_LOG_WARN, "api_listen_failed", "host", "%s", cfg->api_host, "error", "%s",
               "not an IPv4 or IPv6 address", NULL);
        return;
    }
    uv_tcp_init(&s->loop, &s->api_listener);
    s->api_listener.data = s;
    int rc = uv_tcp_bind(&s->api_listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->api_listener, 128, vs_conn_on_api_connection);
    if (rc != 0) {
        VS_LOG(VS_LOG_WARN, "api_listen_failed", "host", "%s", cfg->api_host, "port", "%d",
               cfg->api_port, "error", "%s", uv_strerror(rc), NULL);
        uv_close((uv_handle_t *)&s->api_listener, NULL);
        return;
    }
    s->api_listening = 1;
    log_bound(&s->api_listener, "api_listening", cfg->api_port);
}

vs_server_t *vs_server_new(const vs_config_t *cfg, char *err, size_t errlen, int *exit_code)
{
    *exit_code = 1;
    vs_server_t *s = vs_calloc(1, sizeof *s);
    int rc;
    s->cfg = cfg;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    s->start_time = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
    if (uv_loop_init(&s->loop) != 0) {
        snprintf(err, errlen, "cannot create the event loop");
        free(s);
        return NULL;
    }
    if (parse_trusted(s, err, errlen) != 0 ||
        vs_token_keys_load(&s->keys, getenv, cfg->dev, err, errlen) != 0) {
        *exit_code = 2;
        uv_loop_close(&s->loop);
        free(s);
        return NULL;
    }
    if (cfg->dev)
        VS_LOG(VS_LOG_WARN, "dev_mode",
               "warning", "%s", "DEVELOPMENT MODE: access tokens signed with the public "
               "development key pair are accepted; never run --dev in production",
               "api_key", "%s", VS_TOKEN_DEV_KEY, NULL);
    if (cfg->redis && cfg->cluster_node_timeout <= 2 * cfg->cluster_heartbeat) {
        snprintf(err, errlen, "--cluster-node-timeout (%.3g s) must be more than twice "
                              "--cluster-heartbeat (%.3g s), or live nodes would be taken "
                              "for dead between two heartbeats",
                 cfg->cluster_node_timeout, cfg->cluster_heartbeat);
        *exit_code = 2;
        goto fail_store;
    }
    if (cfg->redis && !cfg->database) {
        snprintf(err, errlen, "--redis needs --database postgres://...: the nodes of a cluster "
                              "must share one durable directory");
        *exit_code = 2;
        goto fail_store;
    }
    /* With PostgreSQL the data directory still holds the server's identity key. */
    rc = cfg->database ? vs_store_prepare_dir(cfg->data_dir, err, errlen) : 0;
    if (rc == 0)
        rc = cfg->database ? vs_store_pg_open(cfg->database, &s->store, err, errlen)
                           : vs_store_sqlite_open(cfg->data_dir, &s->store, err, errlen);
    if (rc != 0)
        goto fail_store;
    s->store_blocks = cfg->database != NULL;
    rc = vs_store_count_users(&s->store, &s->registered_users);
    if (rc != 0) {
        snprintf(err, errlen, "cannot read the store in %s: %s", cfg->data_dir, vs_strerror(rc));
        goto fail_store;
    }
    uint8_t server_priv[32], server_pub[32];
    if (vs_server_key_load(cfg->data_dir, server_priv, server_pub, err, errlen) != 0)
        goto fail_store;
    s->signer = vs_pq_signer_new(server_priv);
    OPENSSL_cleanse(server_priv, sizeof server_priv);
    if (!s->signer) {
        snprintf(err, errlen, "cannot use the server key in %s", cfg->data_dir);
        goto fail_store;
    }
    vs_base64_encode(server_pub, sizeof server_pub, s->server_key_b64);
    if (cfg->redis && vs_cluster_new(s, &s->cluster, err, errlen) != 0) {
        *exit_code = 2;
        goto fail_store;
    }
    /* Signals are caught before "listening" is logged: a supervisor may stop us at once. */
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sigint);
    s->sigterm.data = s->sigint.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    rc = listen_on(s, err, errlen);
    if (rc != 0) {
        if (rc == VS_EINVAL)
            *exit_code = 2;
        uv_close((uv_handle_t *)&s->listener, NULL);
        uv_close((uv_handle_t *)&s->sigterm, NULL);
        uv_close((uv_handle_t *)&s->sigint, NULL);
        uv_run(&s->loop, UV_RUN_NOWAIT);
        goto fail_store;
    }
    listen_api(s);
    s->dir = vs_directory_new(send_presence, s);
    s->rooms = vs_rooms_new(send_presence, s);
    s->ips = vs_ip_table_new();
    uv_check_init(&s->loop, &s->flush_check);
    s->flush_check.data = s;
    uv_check_start(&s->flush_check, on_flush_check);
    uint64_t ping_ms = (uint64_t)(cfg->ping_interval * 1000.0);
    if (ping_ms == 0)
        ping_ms = 1;
    uv_timer_init(&s->loop, &s->ping_timer);
    s->ping_timer.data = s;
    uv_timer_start(&s->ping_timer, on_ping_timer, ping_ms, ping_ms);
    uv_timer_init(&s->loop, &s->sweep_timer);
    s->sweep_timer.data = s;
    /* Often enough that no timeout is overshot by more than half of itself. */
    double shortest = cfg->handshake_timeout < cfg->register_timeout ? cfg->handshake_timeout
                                                                      : cfg->register_timeout;
    uint64_t sweep_ms = (uint64_t)(shortest * 500.0);
    if (sweep_ms > SWEEP_INTERVAL_MS)
        sweep_ms = SWEEP_INTERVAL_MS;
    if (sweep_ms < 20)
        sweep_ms = 20;
    uv_timer_start(&s->sweep_timer, on_sweep_timer, sweep_ms, sweep_ms);
    VS_LOG(VS_LOG_INFO, "started", "version", "%s", VS_VERSION, "data_dir", "%s", cfg->data_dir,
           "registered_users", "%llu", (unsigned long long)s->registered_users, NULL);
    *exit_code = 0;
    return s;

fail_store:
    vs_cluster_free(s->cluster);
    vs_pq_signer_free(s->signer);
    vs_token_keys_deinit(&s->keys);
    vs_store_close(&s->store);
    uv_loop_close(&s->loop);
    free(s);
    return NULL;
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int vs_server_run(vs_server_t *s)
{
    uv_run(&s->loop, UV_RUN_DEFAULT);
    /* The leave (and the last records) reach Redis before the connections drop. */
    uint64_t until = uv_now(&s->loop) + 500;
    while (s->cluster && vs_cluster_busy(s->cluster) && uv_now(&s->loop) < until)
        uv_run(&s->loop, UV_RUN_ONCE);
    vs_cluster_free(s->cluster);
    s->cluster = NULL;
    /* Finish the store batch in flight and anything queued behind it: every binding a client
     * was told about is already durable; these complete the rest before exit. */
    while (s->regq.busy || s->regq.head || vs_lookup_busy(s)) {
        vs_register_submit(s);
        vs_lookup_flush(s);
        uv_run(&s->loop, UV_RUN_ONCE);
    }
    vs_conn_flush_all(s);
    uv_walk(&s->loop, close_handle, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    VS_LOG(VS_LOG_INFO, "stopped", NULL);
    return 0;
}

void vs_server_free(vs_server_t *s)
{
    if (!s)
        return;
    vs_cluster_free(s->cluster);
    vs_rooms_free(s->rooms);
    vs_directory_free(s->dir);
    vs_ip_table_free(s->ips);
    vs_token_keys_deinit(&s->keys);
    vs_store_close(&s->store);
    vs_buf_deinit(&s->scratch);
    vs_buf_deinit(&s->pq_scratch);
    vs_pq_signer_free(s->signer);
    uv_loop_close(&s->loop);
    free(s);
}
