#include "transport/conn.h"

#include "common/alloc.h"
#include "common/base64.h"
#include "common/error.h"
#include "common/log.h"
#include "cluster/cluster.h"
#include "core/pq.h"
#include "core/server_impl.h"
#include "core/session.h"
#include "crypto/sign.h"
#include "transport/http.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define CONN_OF(h) ((vs_conn_t *)((char *)(h) - offsetof(vs_conn_t, tcp)))

void vs_conn_list_add(vs_conn_list_t *l, vs_conn_t *c)
{
    c->list = l;
    c->prev = NULL;
    c->next = l->head;
    if (l->head)
        l->head->prev = c;
    l->head = c;
    l->n++;
}

static void list_del(vs_conn_t *c)
{
    vs_conn_list_t *l = c->list;
    if (!l)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    l->n--;
    c->list = NULL;
    c->prev = c->next = NULL;
}

static void mark_flush(vs_conn_t *c)
{
    if (c->flags & VS_CONN_IN_FLUSH)
        return;
    c->flags |= VS_CONN_IN_FLUSH;
    c->flush_next = c->srv->flush_head;
    c->srv->flush_head = c;
}

void vs_conn_doom(vs_conn_t *c)
{
    if (c->flags & VS_CONN_DOOMED)
        return;
    c->flags |= VS_CONN_DOOMED;
    uv_read_stop((uv_stream_t *)&c->tcp);
    mark_flush(c);
}

/* Reserves n raw bytes at the end of the output queue, enforcing max-queue when limit is set
 * (a single HTTP response is bounded by its file instead). */
static char *out_reserve_limit(vs_conn_t *c, size_t n, int limit)
{
    vs_server_t *s = c->srv;
    if (limit && (size_t)c->out_len + c->inflight + n > s->cfg->max_queue) {
        s->metrics.slow_consumers++;
        VS_LOG(VS_LOG_WARN, "slow_consumer", "queued", "%zu", (size_t)c->out_len + c->inflight,
               "limit", "%zu", s->cfg->max_queue, NULL);
        vs_conn_doom(c);
        return NULL;
    }
    if (c->out_cap - c->out_len < n) {
        size_t cap = c->out_cap ? c->out_cap : 512;
        while (cap - c->out_len < n)
            cap *= 2;
        c->out = vs_realloc(c->out, cap);
        c->out_cap = (uint32_t)cap;
    }
    char *p = c->out + c->out_len;
    c->out_len += (uint32_t)n;
    mark_flush(c);
    return p;
}

static char *out_reserve(vs_conn_t *c, size_t n)
{
    return out_reserve_limit(c, n, 1);
}

char *vs_conn_frame(vs_conn_t *c, int opcode, size_t len)
{
    if (c->state != VS_CONN_WS || (c->flags & VS_CONN_DOOMED))
        return NULL;
    uint8_t hdr[VS_WS_MAX_HEADER];
    size_t h = vs_ws_frame_header(hdr, opcode, len);
    char *p = out_reserve(c, h + len);
    if (!p)
        return NULL;
    memcpy(p, hdr, h);
    return p + h;
}

void vs_conn_send_text(vs_conn_t *c, const char *data, size_t len)
{
    if (c->pq) {
        vs_pq_send(c, data, len);
        return;
    }
    char *p = vs_conn_frame(c, VS_WS_OP_TEXT, len);
    if (p)
        memcpy(p, data, len);
}

/* A deferred message: u32 length, u64 arrival time, then the plaintext. */
#define DEFERRED_HDR 12

static void wipe_free(char *d)
{
    uint32_t len;
    memcpy(&len, d, 4);
    OPENSSL_cleanse(d, DEFERRED_HDR + len);
    free(d);
}

static void free_deferred(vs_conn_t *c)
{
    if (c->deferred)
        wipe_free(c->deferred);
    c->deferred = NULL;
}

/* Everything the connection holds in the directory and the register queue. */
static void detach(vs_conn_t *c)
{
    vs_server_t *s = c->srv;
    if (c->waiting)
        vs_lookup_cancel(c); /* every lookup entry of c counts in c->waiting */
    if (s->cluster)
        vs_cluster_conn_gone(s->cluster, c);
    if (c->user) {
        vs_user_t *u = c->user;
        c->user = NULL;
        vs_directory_set_offline(s->dir, u, c);
    }
    vs_directory_unsubscribe_all(s->dir, &c->watch);
    vs_rooms_leave_all(s->rooms, &c->rooms);
    if (c->reg) {
        vs_session_cancel_register(c);
        c->reg = NULL;
    }
    free(c->held);
    c->held = NULL;
    c->held_len = 0;
    free_deferred(c);
}

void vs_conn_close(vs_conn_t *c, uint16_t code, const char *reason)
{
    if (c->flags & VS_CONN_DOOMED)
        return;
    if (c->state != VS_CONN_WS) {
        if (c->state == VS_CONN_HTTP)
            vs_conn_doom(c);
        return;
    }
    uint8_t payload[VS_WS_MAX_CONTROL];
    size_t n = vs_ws_close_payload(payload, code, reason ? reason : "");
    char *p = vs_conn_frame(c, VS_WS_OP_CLOSE, n);
    if (p)
        memcpy(p, payload, n);
    detach(c);
    c->state = VS_CONN_CLOSING;
    c->since = vs_server_now(c->srv);
    list_del(c);
    vs_conn_list_add(&c->srv->pending, c);
    mark_flush(c);
}

static void on_closed(uv_handle_t *h)
{
    vs_conn_t *c = CONN_OF(h);
    free(c);
}

void vs_conn_destroy(vs_conn_t *c)
{
    vs_server_t *s = c->srv;
    detach(c);
    list_del(c);
    s->nconns--;
    if (c->ip)
        c->ip->conns--;
    vs_http_req_free(c->http);
    c->http = NULL;
    if (c->token) {
        vs_token_claims_deinit(c->token);
        free(c->token);
        c->token = NULL;
    }
    vs_pq_free(c);
    vs_ws_parser_deinit(&c->ws);
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    c->flags |= VS_CONN_DOOMED;
    /* A write still in flight is cancelled by uv_close; on_write frees its buffer. */
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_write(uv_write_t *req, int status)
{
    vs_conn_t *c = req->handle->data;
    free(req->data);
    free(req);
    c->wreq = NULL;
    c->inflight = 0;
    if (c->flags & VS_CONN_DOOMED)
        return;
    if (status < 0) {
        VS_LOG(VS_LOG_DEBUG, "write_failed", "error", "%s", uv_strerror(status), NULL);
        vs_conn_doom(c);
        return;
    }
    mark_flush(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

static void flush(vs_conn_t *c)
{
    if (!c->wreq && c->out_len) {
        uv_buf_t b = uv_buf_init(c->out, c->out_len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n == UV_EAGAIN)
            n = 0;
        if (n < 0) {
            vs_conn_doom(c);
            return;
        }
        if ((uint32_t)n == c->out_len) {
            free(c->out);
        } else {
            /* The kernel's buffer is full: hand the rest to libuv, which owns it until written. */
            uv_write_t *w = vs_malloc(sizeof *w);
            w->data = c->out;
            uv_buf_t rest = uv_buf_init(c->out + n, c->out_len - (uint32_t)n);
            c->inflight = rest.len;
            c->wreq = w;
            if (uv_write(w, (uv_stream_t *)&c->tcp, &rest, 1, on_write) < 0) {
                free(w->data);
                free(w);
                c->wreq = NULL;
                c->inflight = 0;
                c->out = NULL;
                c->out_len = c->out_cap = 0;
                vs_conn_doom(c);
                return;
            }
        }
        c->out = NULL;
        c->out_len = c->out_cap = 0;
    }
    if (c->state == VS_CONN_CLOSING && !c->wreq && !c->out_len &&
        !(c->flags & VS_CONN_SHUTDOWN)) {
        /* Half-close after the last byte, then wait for the peer's close frame or EOF. */
        c->flags |= VS_CONN_SHUTDOWN;
        uv_shutdown_t *req = vs_malloc(sizeof *req);
        if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
            free(req);
            vs_conn_doom(c);
        }
    }
}

void vs_conn_flush_all(vs_server_t *s)
{
    vs_conn_t *c;
    while ((c = s->flush_head) != NULL) {
        s->flush_head = c->flush_next;
        c->flush_next = NULL;
        c->flags &= (uint8_t)~VS_CONN_IN_FLUSH;
        if (c->flags & VS_CONN_DOOMED)
            vs_conn_destroy(c);
        else
            flush(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* ---- WebSocket input ---- */

static void hold(vs_conn_t *c, int opcode, const uint8_t *data, size_t len)
{
    /* Frames behind a pending register wait, in order, as [opcode][u32 len][bytes]. */
    size_t need = c->held_len + 5 + len;
    c->held = vs_realloc(c->held, need);
    char *w = c->held + c->held_len;
    uint32_t l32 = (uint32_t)len;
    w[0] = (char)opcode;
    memcpy(w + 1, &l32, 4);
    memcpy(w + 5, data, len);
    c->held_len = (uint32_t)need;
}

static void dispatch(vs_conn_t *c, int opcode, uint8_t *data, size_t len)
{
    /* Decrypted here rather than on arrival: a held rekey must switch keys before what follows. */
    if (c->pq)
        vs_pq_on_frame(c, opcode, data, len);
    else if (opcode == VS_WS_OP_BINARY)
        vs_session_reject_binary(c);
    else
        vs_session_on_text(c, data, len);
}

/* The per-connection message and byte buckets. Returns 1 when the message may be handled. */
static int within_rate(vs_conn_t *c, size_t len)
{
    vs_server_t *s = c->srv;
    const vs_config_t *cfg = s->cfg;
    uint64_t now = vs_server_now(s);
    double mrate = cfg->rate_messages, brate = (double)cfg->rate_bytes;
    int kind = -1;
    if (!vs_bucket_take(&c->rate_msgs, mrate, 10 * mrate, 1, now))
        kind = VS_LIMIT_MESSAGES;
    else if (!vs_bucket_take(&c->rate_bytes, brate, 10 * brate, (double)len, now))
        kind = VS_LIMIT_BYTES;
    if (kind < 0) {
        c->strikes = 0;
        return 1;
    }
    s->metrics.rate_limited[kind]++;
    if (++c->strikes >= (uint32_t)cfg->rate_strikes) {
        s->metrics.rate_disconnects++;
        VS_LOG(VS_LOG_WARN, "rate_disconnect", "addr", "%s", c->ip ? c->ip->addr : "?", NULL);
        vs_conn_close(c, VS_WS_CLOSE_POLICY, "rate limit exceeded");
        return 0;
    }
    vs_session_error_rate_limited(c, kind == VS_LIMIT_MESSAGES ? "messages" : "bytes");
    return 0;
}

static int on_message(void *ud, int opcode, uint8_t *data, size_t len)
{
    vs_conn_t *c = ud;
    if (c->state != VS_CONN_WS || (c->flags & VS_CONN_DOOMED))
        return 0;
    if (!within_rate(c, len))
        return 0;
    if (c->reg || c->waiting || c->held_len)
        hold(c, opcode, data, len);
    else
        dispatch(c, opcode, data, len);
    return 0;
}

static int on_ping(void *ud, const uint8_t *data, size_t len)
{
    vs_conn_t *c = ud;
    char *p = vs_conn_frame(c, VS_WS_OP_PONG, len);
    if (p)
        memcpy(p, data, len);
    return 0;
}

static int on_pong(void *ud, const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    ((vs_conn_t *)ud)->pings_missed = 0;
    return 0;
}

static int on_close(void *ud, uint16_t code, const uint8_t *reason, size_t len)
{
    (void)reason;
    (void)len;
    vs_conn_t *c = ud;
    if (c->state == VS_CONN_WS)
        vs_conn_close(c, code == VS_WS_CLOSE_NO_STATUS ? VS_WS_CLOSE_NORMAL : code, NULL);
    else
        vs_conn_doom(c); /* our close was answered: the handshake is complete */
    return 1;
}

static const vs_ws_callbacks_t ws_callbacks = {on_message, on_ping, on_pong, on_close};

static void feed_ws(vs_conn_t *c, uint8_t *data, size_t len)
{
    int rc = vs_ws_parse(&c->ws, data, len, &ws_callbacks, c);
    if (rc >= 0 || rc == VS_ECLOSED)
        return;
    if (rc == VS_ENOMEM) {
        /* ws.c fails softly for the client library; the server's policy is to abort. */
        VS_LOG(VS_LOG_ERROR, "out_of_memory", "where", "%s", "ws_parse", NULL);
        abort();
    }
    uint16_t code = vs_ws_parser_close_code(&c->ws);
    vs_server_t *s = c->srv;
    s->metrics.ws_protocol_errors++;
    VS_LOG(VS_LOG_DEBUG, "ws_protocol_error", "close_code", "%d", (int)code, NULL);
    if (code == VS_WS_CLOSE_TOO_BIG)
        vs_session_error_too_large(c);
    vs_conn_close(c, code, code == VS_WS_CLOSE_TOO_BIG ? "message too large" : "protocol error");
    if (c->reg || c->waiting || c->held_len) {
        /* Nothing more will be read from this peer. */
        free(c->held);
        c->held = NULL;
        c->held_len = 0;
    }
}

void vs_conn_defer(vs_conn_t *c, const char *msg, size_t len, uint64_t t0)
{
    uint32_t l32 = (uint32_t)len;
    free_deferred(c);
    c->deferred = vs_malloc(DEFERRED_HDR + len);
    memcpy(c->deferred, &l32, 4);
    memcpy(c->deferred + 4, &t0, 8);
    memcpy(c->deferred + DEFERRED_HDR, msg, len);
    c->waiting++;
}

void vs_conn_resume(vs_conn_t *c)
{
    if (c->deferred && !c->reg && !c->waiting && c->state == VS_CONN_WS &&
        !(c->flags & VS_CONN_DOOMED)) {
        /* Already decrypted: straight to the session, which now answers from what it knows. */
        char *d = c->deferred;
        c->deferred = NULL;
        uint32_t len;
        uint64_t t0;
        memcpy(&len, d, 4);
        memcpy(&t0, d + 4, 8);
        c->flags |= VS_CONN_SYNCED;
        vs_session_on_text_at(c, (uint8_t *)d + DEFERRED_HDR, len, t0);
        c->flags &= (uint8_t)~VS_CONN_SYNCED;
        wipe_free(d);
    }
    /* Replay what arrived behind the register, stopping if another one goes pending. */
    size_t off = 0;
    while (off < c->held_len && !c->reg && !c->waiting && c->state == VS_CONN_WS &&
           !(c->flags & VS_CONN_DOOMED)) {
        int opcode = (uint8_t)c->held[off];
        uint32_t len;
        memcpy(&len, c->held + off + 1, 4);
        uint8_t *data = (uint8_t *)c->held + off + 5;
        off += 5 + len;
        dispatch(c, opcode, data, len);
    }
    if (!c->held) {
        /* nothing was held */
    } else if (off >= c->held_len) {
        free(c->held);
        c->held = NULL;
        c->held_len = 0;
    } else {
        memmove(c->held, c->held + off, c->held_len - off);
        c->held_len -= (uint32_t)off;
    }
    if (!c->reg && !c->waiting && (c->flags & VS_CONN_READ_HELD) &&
        !(c->flags & VS_CONN_DOOMED)) {
        c->flags &= (uint8_t)~VS_CONN_READ_HELD;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

/* ---- socket callbacks ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    vs_conn_t *c = CONN_OF(h);
    buf->base = c->srv->rbuf;
    buf->len = sizeof c->srv->rbuf;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    vs_conn_t *c = CONN_OF(stream);
    if (nread == 0)
        return;
    if (nread < 0) {
        vs_conn_doom(c);
        return;
    }
    if (c->flags & VS_CONN_DOOMED)
        return;
    if (c->state == VS_CONN_HTTP) {
        vs_http_feed(c, (uint8_t *)buf->base, (size_t)nread);
    } else if (c->flags & VS_CONN_UPGRADED) {
        feed_ws(c, (uint8_t *)buf->base, (size_t)nread);
        if ((c->reg || c->waiting) && !(c->flags & (VS_CONN_READ_HELD | VS_CONN_DOOMED))) {
            /* Back-pressure while the store commits: what is already read waits in held. */
            c->flags |= VS_CONN_READ_HELD;
            uv_read_stop(stream);
        }
    }
}

void vs_conn_upgrade(vs_conn_t *c, const char *accept_key, uint8_t *extra, size_t extra_len)
{
    vs_server_t *s = c->srv;
    vs_http_req_free(c->http);
    c->http = NULL;
    char resp[160];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept_key);
    char *p = out_reserve(c, (size_t)n);
    if (!p)
        return;
    memcpy(p, resp, (size_t)n);
    uint8_t raw[16];
    if (vs_random_bytes(raw, sizeof raw) != 0) {
        VS_LOG(VS_LOG_ERROR, "random_failed", NULL);
        vs_conn_doom(c);
        return;
    }
    vs_base64url_encode(raw, sizeof raw, c->nonce);
    vs_ws_parser_init(&c->ws, s->cfg->max_frame);
    c->state = VS_CONN_WS;
    c->since = vs_server_now(s); /* the register timeout counts from the upgrade */
    c->flags |= VS_CONN_UPGRADED;
    c->pings_missed = 0;
    c->watch.conn = c;
    list_del(c);
    vs_conn_list_add(&s->active, c);
    s->metrics.connections_total++;
    vs_buf_t *b = &s->scratch;
    b->len = 0;
    vs_buf_printf(b, "{\"type\":\"hello\",\"version\":1,\"nonce\":\"%s\"", c->nonce);
    vs_pq_hello_members(s, b);
    vs_buf_append(b, "}", 1);
    vs_conn_send_text(c, b->p, b->len);
    if (c->token)
        vs_session_token_start(c);
    if (extra_len)
        feed_ws(c, extra, extra_len);
}

void vs_conn_http_respond(vs_conn_t *c, int status, const char *content_type, const char *extra,
                          const char *body, size_t len)
{
    vs_conn_http_send(c, status, content_type, extra, body, len, 1);
}

void vs_conn_http_send(vs_conn_t *c, int status, const char *content_type, const char *extra,
                       const char *body, size_t len, int with_body)
{
    static const struct {
        int code;
        const char *text;
    } reasons[] = {{200, "OK"},          {304, "Not Modified"}, {400, "Bad Request"},
                   {401, "Unauthorized"}, {404, "Not Found"},   {405, "Method Not Allowed"},
                   {426, "Upgrade Required"}, {431, "Request Header Fields Too Large"},
                   {503, "Service Unavailable"}};
    const char *reason = "Error";
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].code == status)
            reason = reasons[i].text;
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "X-Content-Type-Options: nosniff\r\n%sConnection: close\r\n%s\r\n",
                     status, reason, content_type, len,
                     extra && strstr(extra, "Cache-Control:") ? "" : "Cache-Control: no-store\r\n",
                     extra ? extra : "");
    c->srv->metrics.http_requests_total++;
    size_t blen = with_body ? len : 0;
    char *p = out_reserve_limit(c, (size_t)n + blen, 0);
    if (!p)
        return;
    memcpy(p, head, (size_t)n);
    if (blen)
        memcpy(p + n, body, blen);
    vs_http_req_free(c->http);
    c->http = NULL;
    c->state = VS_CONN_CLOSING;
    c->since = vs_server_now(c->srv);
}

int vs_conn_attach_ip(vs_conn_t *c, const char *addr)
{
    vs_server_t *s = c->srv;
    vs_ip_entry_t *ip = vs_ip_table_get(s->ips, addr);
    if (ip->conns >= (uint32_t)s->cfg->max_conns_per_ip) {
        s->metrics.per_ip_refused++;
        VS_LOG(VS_LOG_WARN, "connection_refused", "reason", "%s", "max-connections-per-ip reached",
               "addr", "%s", addr, NULL);
        return VS_ETOOBIG;
    }
    ip->conns++;
    c->ip = ip;
    return 0;
}

static void accept_conn(uv_stream_t *listener, int status, uint8_t api)
{
    vs_server_t *s = listener->data;
    if (status < 0) {
        VS_LOG(VS_LOG_WARN, "accept_failed", "error", "%s", uv_strerror(status), NULL);
        return;
    }
    vs_conn_t *c = vs_calloc(1, sizeof *c);
    c->srv = s;
    c->flags = api;
    uv_tcp_init(&s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    if (s->shutting_down || s->nconns >= (size_t)s->cfg->max_connections) {
        s->metrics.connections_refused++;
        VS_LOG(VS_LOG_WARN, "connection_refused", "reason", "%s",
               s->shutting_down ? "shutting down" : "max-connections reached", NULL);
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    struct sockaddr_storage peer;
    int plen = sizeof peer;
    char addr[INET6_ADDRSTRLEN] = "?";
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &plen) == 0) {
        if (peer.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&peer, addr, sizeof addr);
        else
            uv_ip4_name((struct sockaddr_in *)&peer, addr, sizeof addr);
    }
    if (vs_server_trusts(s, addr)) {
        c->flags |= VS_CONN_TRUSTED; /* a local client, or a proxy that names its client later */
    } else if (vs_conn_attach_ip(c, addr) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    s->nconns++;
    uv_tcp_nodelay(&c->tcp, 1);
    c->state = VS_CONN_HTTP;
    c->since = vs_server_now(s);
    c->http = vs_http_req_new();
    vs_conn_list_add(&s->pending, c);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        vs_conn_doom(c);
}

void vs_conn_on_connection(uv_stream_t *listener, int status)
{
    accept_conn(listener, status, 0);
}

void vs_conn_on_api_connection(uv_stream_t *listener, int status)
{
    accept_conn(listener, status, VS_CONN_API);
}

void vs_conn_ping_all(vs_server_t *s)
{
    for (vs_conn_t *c = s->active.head; c; c = c->next) {
        if (c->flags & VS_CONN_DOOMED)
            continue;
        if (c->pings_missed >= 2) {
            s->metrics.keepalive_drops++;
            VS_LOG(VS_LOG_DEBUG, "keepalive_timeout", NULL);
            vs_conn_doom(c);
            continue;
        }
        c->pings_missed++;
        vs_conn_frame(c, VS_WS_OP_PING, 0);
    }
}

void vs_conn_sweep(vs_server_t *s, uint64_t closing_ms)
{
    uint64_t now = vs_server_now(s);
    uint64_t handshake_ms = (uint64_t)(s->cfg->handshake_timeout * 1000.0);
    uint64_t register_ms = (uint64_t)(s->cfg->register_timeout * 1000.0);
    for (vs_conn_t *c = s->pending.head; c; c = c->next) {
        int http = c->state == VS_CONN_HTTP;
        if (!(c->flags & VS_CONN_DOOMED) && now - c->since > (http ? handshake_ms : closing_ms)) {
            if (http)
                s->metrics.handshake_timeouts++;
            vs_conn_doom(c);
        }
    }
    for (vs_conn_t *c = s->active.head, *next; c; c = next) {
        next = c->next; /* closing moves c to the pending list */
        if (c->user || c->reg || (c->flags & VS_CONN_DOOMED) || now - c->since <= register_ms)
            continue;
        s->metrics.register_timeouts++;
        vs_session_error_timeout(c);
        vs_conn_close(c, VS_WS_CLOSE_POLICY, "register timeout");
    }
}
