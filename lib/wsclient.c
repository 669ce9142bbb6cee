/* wsclient.c: one WebSocket client connection on libuv: resolve, TCP connect (trying every
 * address of a host name in turn), the HTTP/1.1 upgrade (request written here, response parsed
 * with http_parser in HTTP_RESPONSE mode and checked against RFC 6455 4.1), then masked frames
 * out and src/transport/ws.c's client-mode parser in. It answers pings, sends its own ping when
 * the server has been quiet for half the idle timeout, and gives up on a server that stays
 * silent for the whole of it.
 *
 * Lifetime: a connection ends exactly once, through fail(), which closes its handles; when the
 * last close callback has run, on_closed is called and the struct is freed. Nothing is ever
 * freed synchronously, so a callback may close or abort the connection it was called from. */
#include "internal.h"

#include "common/base64.h"
#include "common/error.h"
#include "transport/ws.h"

#include <http_parser.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define READ_BUF 65536
#define MAX_RESPONSE_HEADERS 8192
#define CLOSE_GRACE_MS 1000

enum { WS_RESOLVING, WS_CONNECTING, WS_UPGRADING, WS_OPEN, WS_CLOSING, WS_DEAD };

/* The response headers RFC 6455 4.1 makes the client check. */
enum { H_OTHER, H_UPGRADE, H_CONNECTION, H_ACCEPT, H_EXTENSIONS, H_PROTOCOL };

struct vl_ws {
    uv_loop_t *loop;
    const vl_url_t *url;
    vl_ws_config_t cfg;
    const vl_ws_events_t *ev; /* NULL once detached */
    void *ud;
    const vl_logger_t *lg;
    int state;
    int handles; /* open or closing handles: the timer and TCP handles */
    int gai_pending;
    uv_getaddrinfo_t gai;
    struct addrinfo *ai, *ai_next;
    uv_tcp_t *tcp; /* the current attempt's handle (heap: one per address tried) */
    uv_connect_t connect_req;
    uv_timer_t timer; /* connect deadline, then idle checks, then close grace */

    http_parser http;
    size_t header_bytes;
    int headers_done;
    int h_in_value, h_kind;
    char h_name[32];
    size_t h_name_len;
    char upgrade[32], connection[128], accept_got[32];
    size_t upgrade_len, connection_len, accept_len;
    int bad_header; /* an extension or subprotocol we never asked for, or an oversized value */
    char key[25], accept[29];

    vs_ws_parser_t parser;
    uint64_t last_rx;
    int ping_sent, close_sent, close_received;
    int we_closed; /* the close handshake was ours */
    unsigned close_code;
    int err;
    const char *why;
    char whybuf[128];
    uint8_t pool[64]; /* random bytes for masking keys */
    size_t pool_left;
    uint8_t rbuf[READ_BUF];
};

struct wreq {
    uv_write_t req;
    size_t len;
    uint8_t data[];
};

static void fail(vl_ws_t *ws, int err, const char *why);

static void maybe_finish(vl_ws_t *ws)
{
    if (ws->handles > 0 || ws->gai_pending)
        return;
    if (ws->ai)
        uv_freeaddrinfo(ws->ai);
    if (ws->ev && ws->ev->on_closed)
        ws->ev->on_closed(ws->ud, ws->err, ws->close_code, ws->why);
    free(ws);
}

static void on_handle_closed(uv_handle_t *h)
{
    vl_ws_t *ws = h->data;
    if (h != (uv_handle_t *)&ws->timer)
        free(h);
    ws->handles--;
    maybe_finish(ws);
}

static void close_tcp(vl_ws_t *ws)
{
    if (ws->tcp) {
        uv_close((uv_handle_t *)ws->tcp, on_handle_closed);
        ws->tcp = NULL;
    }
}

static void fail(vl_ws_t *ws, int err, const char *why)
{
    if (ws->state == WS_DEAD)
        return;
    ws->state = WS_DEAD;
    ws->err = err;
    ws->why = why;
    uv_timer_stop(&ws->timer);
    if (ws->gai_pending)
        uv_cancel((uv_req_t *)&ws->gai);
    close_tcp(ws);
    uv_close((uv_handle_t *)&ws->timer, on_handle_closed);
    vs_ws_parser_deinit(&ws->parser);
}

static const char *reason(vl_ws_t *ws, const char *what, int uverr)
{
    snprintf(ws->whybuf, sizeof ws->whybuf, "%s: %s", what, uv_strerror(uverr));
    return ws->whybuf;
}

/* ---- writing ---- */

static void on_written(uv_write_t *req, int status)
{
    vl_ws_t *ws = req->handle->data;
    free(req);
    if (status < 0 && status != UV_ECANCELED && ws->state != WS_DEAD)
        fail(ws, VOLLI_EIO, reason(ws, "write failed", status)); /* reason() reuses whybuf */
}

static int write_buf(vl_ws_t *ws, struct wreq *w)
{
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)ws->tcp, &b, 1, on_written);
    if (rc != 0) {
        free(w);
        fail(ws, VOLLI_EIO, reason(ws, "write failed", rc));
        return VOLLI_EIO;
    }
    return 0;
}

static int next_mask(vl_ws_t *ws, uint8_t mask[4])
{
    if (ws->pool_left < 4) {
        if (RAND_bytes(ws->pool, sizeof ws->pool) != 1)
            return VOLLI_ECRYPTO;
        ws->pool_left = sizeof ws->pool;
    }
    ws->pool_left -= 4;
    memcpy(mask, ws->pool + ws->pool_left, 4);
    return 0;
}

/* Queues n masked frames in one write. */
static int send_frames(vl_ws_t *ws, const int *ops, const void *const *data, const size_t *lens,
                       size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > SIZE_MAX / 2 - total - VS_WS_MAX_HEADER_MASKED)
            return VOLLI_EINVAL;
        total += VS_WS_MAX_HEADER_MASKED + lens[i];
    }
    struct wreq *w = malloc(sizeof *w + total);
    if (!w)
        return VOLLI_ENOMEM;
    uint8_t *p = w->data;
    for (size_t i = 0; i < n; i++) {
        uint8_t mask[4];
        if (next_mask(ws, mask) != 0) {
            free(w);
            return VOLLI_ECRYPTO;
        }
        p += vs_ws_frame_header_masked(p, ops[i], lens[i], mask);
        if (lens[i])
            memcpy(p, data[i], lens[i]);
        vs_ws_mask(p, lens[i], mask);
        p += lens[i];
    }
    w->len = (size_t)(p - w->data);
    return write_buf(ws, w);
}

static int send_control(vl_ws_t *ws, int op, const void *data, size_t len)
{
    return send_frames(ws, &op, &data, &len, 1);
}

static int send_close(vl_ws_t *ws, uint16_t code)
{
    uint8_t payload[VS_WS_MAX_CONTROL];
    size_t n = vs_ws_close_payload(payload, code, NULL);
    ws->close_sent = 1;
    return send_control(ws, VS_WS_OP_CLOSE, payload, n);
}

int vl_ws_send_text(vl_ws_t *ws, const char *const *texts, const size_t *lens, size_t n)
{
    if (!vl_ws_is_open(ws))
        return VOLLI_ENOTCONN;
    int ops[4];
    if (n == 0 || n > sizeof ops / sizeof ops[0])
        return VOLLI_EINVAL;
    for (size_t i = 0; i < n; i++)
        ops[i] = VS_WS_OP_TEXT;
    return send_frames(ws, ops, (const void *const *)texts, lens, n);
}

int vl_ws_is_open(const vl_ws_t *ws)
{
    return ws && ws->state == WS_OPEN;
}

/* ---- the open connection ---- */

static void on_timer(uv_timer_t *t);

static void arm(vl_ws_t *ws, uint64_t ms)
{
    uv_timer_start(&ws->timer, on_timer, ms, 0);
}

static int on_ws_message(void *ud, int opcode, uint8_t *data, size_t len)
{
    vl_ws_t *ws = ud;
    if (ws->state != WS_OPEN)
        return 0; /* closing: the owner wants nothing more */
    if (opcode != VS_WS_OP_TEXT) {
        vl_log(ws->lg, VL_LOG_WARN, "ignoring a binary message from %s", ws->url->text);
        return 0;
    }
    if (ws->ev && ws->ev->on_text)
        ws->ev->on_text(ws->ud, (char *)data, len);
    return ws->state == WS_DEAD ? 1 : 0;
}

static int on_ws_ping(void *ud, const uint8_t *data, size_t len)
{
    vl_ws_t *ws = ud;
    if (!ws->close_sent) {
        int rc = send_control(ws, VS_WS_OP_PONG, data, len);
        if (rc != 0 && ws->state != WS_DEAD)
            fail(ws, rc, "could not answer a ping");
    }
    return ws->state == WS_DEAD ? 1 : 0;
}

static int on_ws_close(void *ud, uint16_t code, const uint8_t *why, size_t len)
{
    vl_ws_t *ws = ud;
    (void)why, (void)len; /* a server's close reason is not logged: it is peer-controlled text */
    ws->close_received = 1;
    ws->close_code = code == VS_WS_CLOSE_NO_STATUS ? 0 : code;
    if (!ws->close_sent) {
        /* RFC 6455 5.5.1: echo the status code. */
        int rc = send_close(ws, code == VS_WS_CLOSE_NO_STATUS ? 0 : code);
        if (rc != 0) {
            fail(ws, rc, "could not answer the close");
            return 1;
        }
    }
    ws->state = WS_CLOSING;
    arm(ws, CLOSE_GRACE_MS); /* the server closes TCP next */
    return 0;
}

static const vs_ws_callbacks_t ws_callbacks = {on_ws_message, on_ws_ping, NULL, on_ws_close};

static void feed_frames(vl_ws_t *ws, uint8_t *data, size_t len)
{
    int rc = vs_ws_parse(&ws->parser, data, len, &ws_callbacks, ws);
    if (rc >= 0 || ws->state == WS_DEAD)
        return;
    if (rc == VS_ENOMEM) {
        fail(ws, VOLLI_ENOMEM, "out of memory");
        return;
    }
    if (rc == VS_ECLOSED)
        return;
    snprintf(ws->whybuf, sizeof ws->whybuf, "WebSocket protocol violation by the server (%u)",
             (unsigned)vs_ws_parser_close_code(&ws->parser));
    vl_log(ws->lg, VL_LOG_WARN, "%s: %s", ws->url->text, ws->whybuf);
    fail(ws, VOLLI_EPROTO, ws->whybuf);
}

/* ---- the upgrade ---- */

static int header_is(const vl_ws_t *ws, const char *name)
{
    return ws->h_name_len == strlen(name) && strncasecmp(ws->h_name, name, ws->h_name_len) == 0;
}

static void header_done(vl_ws_t *ws)
{
    ws->h_in_value = 0;
    ws->h_name_len = 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    vl_ws_t *ws = p->data;
    if (ws->h_in_value)
        header_done(ws);
    if (len > sizeof ws->h_name - ws->h_name_len)
        len = sizeof ws->h_name - ws->h_name_len; /* too long for one we care about */
    memcpy(ws->h_name + ws->h_name_len, at, len);
    ws->h_name_len += len;
    return 0;
}

static void append(vl_ws_t *ws, char *dst, size_t cap, size_t *used, const char *at, size_t len)
{
    if (len > cap - *used) {
        ws->bad_header = 1;
        return;
    }
    memcpy(dst + *used, at, len);
    *used += len;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    vl_ws_t *ws = p->data;
    if (!ws->h_in_value) {
        ws->h_in_value = 1;
        ws->h_kind = header_is(ws, "upgrade")                    ? H_UPGRADE
                     : header_is(ws, "connection")               ? H_CONNECTION
                     : header_is(ws, "sec-websocket-accept")     ? H_ACCEPT
                     : header_is(ws, "sec-websocket-extensions") ? H_EXTENSIONS
                     : header_is(ws, "sec-websocket-protocol")   ? H_PROTOCOL
                                                                 : H_OTHER;
        if (ws->h_kind == H_EXTENSIONS || ws->h_kind == H_PROTOCOL)
            ws->bad_header = 1; /* RFC 6455 4.1: never requested, so must not be selected */
        if (ws->h_kind == H_CONNECTION && ws->connection_len)
            append(ws, ws->connection, sizeof ws->connection, &ws->connection_len, ",", 1);
    }
    if (ws->h_kind == H_UPGRADE)
        append(ws, ws->upgrade, sizeof ws->upgrade, &ws->upgrade_len, at, len);
    else if (ws->h_kind == H_CONNECTION)
        append(ws, ws->connection, sizeof ws->connection, &ws->connection_len, at, len);
    else if (ws->h_kind == H_ACCEPT)
        append(ws, ws->accept_got, sizeof ws->accept_got, &ws->accept_len, at, len);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    vl_ws_t *ws = p->data;
    ws->headers_done = 1;
    return 2; /* whatever follows the header block is not HTTP */
}

static const http_parser_settings http_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
};

static int has_token(const char *list, size_t len, const char *token)
{
    size_t tl = strlen(token), i = 0;
    while (i < len) {
        while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
            i++;
        size_t s = i;
        while (i < len && list[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (list[e - 1] == ' ' || list[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(list + s, token, tl) == 0)
            return 1;
    }
    return 0;
}

/* Checks the response; NULL if it accepts the upgrade, else why not. */
static const char *check_response(vl_ws_t *ws)
{
    if (ws->http.status_code != 101) {
        snprintf(ws->whybuf, sizeof ws->whybuf, "upgrade refused: HTTP status %u",
                 ws->http.status_code);
        return ws->whybuf;
    }
    if (ws->bad_header)
        return "upgrade answer has an unrequested extension or subprotocol, or a huge header";
    if (ws->upgrade_len != 9 || strncasecmp(ws->upgrade, "websocket", 9) != 0)
        return "upgrade answer lacks \"Upgrade: websocket\"";
    if (!has_token(ws->connection, ws->connection_len, "upgrade"))
        return "upgrade answer lacks \"Connection: Upgrade\"";
    if (ws->accept_len != VS_WS_ACCEPT_LEN || memcmp(ws->accept_got, ws->accept, 28) != 0)
        return "upgrade answer has a wrong Sec-WebSocket-Accept";
    return NULL;
}

static void feed_upgrade(vl_ws_t *ws, uint8_t *data, size_t len)
{
    size_t n = http_parser_execute(&ws->http, &http_settings, (const char *)data, len);
    ws->header_bytes += n;
    if (HTTP_PARSER_ERRNO(&ws->http) != HPE_OK) {
        fail(ws, VOLLI_EPROTO, "the upgrade answer is not valid HTTP");
        return;
    }
    if (!ws->headers_done) {
        if (ws->header_bytes > MAX_RESPONSE_HEADERS)
            fail(ws, VOLLI_EPROTO, "the upgrade answer's headers are too long");
        return;
    }
    const char *bad = check_response(ws);
    if (bad) {
        vl_log(ws->lg, VL_LOG_WARN, "%s: %s", ws->url->text, bad);
        fail(ws, VOLLI_EPROTO, bad);
        return;
    }
    ws->state = WS_OPEN;
    vs_ws_parser_init_client(&ws->parser, ws->cfg.max_message);
    ws->last_rx = uv_now(ws->loop);
    arm(ws, ws->cfg.idle_timeout_ms / 2 + 1);
    if (ws->ev && ws->ev->on_open)
        ws->ev->on_open(ws->ud);
    if (ws->state == WS_OPEN && n < len)
        feed_frames(ws, data + n, len - n); /* hello may share the upgrade's packet */
}

/* After a completed close handshake: who started it, and the server's code. */
static const char *closed_reason(vl_ws_t *ws)
{
    if (ws->we_closed)
        return "closed";
    snprintf(ws->whybuf, sizeof ws->whybuf, "the server closed the connection (%u)",
             ws->close_code);
    return ws->whybuf;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    vl_ws_t *ws = h->data;
    *buf = uv_buf_init((char *)ws->rbuf, sizeof ws->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    vl_ws_t *ws = s->data;
    (void)buf;
    if (ws->state == WS_DEAD || nread == 0)
        return;
    if (nread < 0) {
        if (ws->state == WS_CLOSING && ws->close_received && ws->close_sent)
            fail(ws, 0, closed_reason(ws));
        else if (nread == UV_EOF)
            fail(ws, VOLLI_EIO, "the server closed the connection");
        else
            fail(ws, VOLLI_EIO, reason(ws, "connection lost", (int)nread));
        return;
    }
    ws->last_rx = uv_now(ws->loop);
    ws->ping_sent = 0;
    if (ws->state == WS_UPGRADING)
        feed_upgrade(ws, ws->rbuf, (size_t)nread);
    else if (ws->state == WS_OPEN || ws->state == WS_CLOSING)
        feed_frames(ws, ws->rbuf, (size_t)nread);
}

static int send_upgrade(vl_ws_t *ws)
{
    static const char fmt[] = "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                              "Sec-WebSocket-Version: 13\r\nUser-Agent: libvolli/%s\r\n\r\n";
    size_t cap = sizeof fmt + strlen(ws->url->path) + strlen(ws->url->hostport) + 24 + 16;
    struct wreq *w = malloc(sizeof *w + cap);
    if (!w)
        return VOLLI_ENOMEM;
    int n = snprintf((char *)w->data, cap, fmt, ws->url->path, ws->url->hostport, ws->key,
                     VOLLI_VERSION);
    if (n < 0 || (size_t)n >= cap) {
        free(w);
        return VOLLI_EINVAL;
    }
    w->len = (size_t)n;
    return write_buf(ws, w);
}

/* ---- connecting ---- */

static void try_next_address(vl_ws_t *ws, int last_err);

static void on_connected(uv_connect_t *req, int status)
{
    vl_ws_t *ws = req->handle->data;
    if (ws->state == WS_DEAD)
        return;
    if (status < 0) {
        vl_log(ws->lg, VL_LOG_DEBUG, "connect to %s: %s", ws->url->text, uv_strerror(status));
        close_tcp(ws);
        try_next_address(ws, status);
        return;
    }
    ws->state = WS_UPGRADING;
    http_parser_init(&ws->http, HTTP_RESPONSE);
    ws->http.data = ws;
    int rc = uv_read_start((uv_stream_t *)ws->tcp, on_alloc, on_read);
    if (rc != 0) {
        fail(ws, VOLLI_EIO, reason(ws, "read failed", rc));
        return;
    }
    rc = send_upgrade(ws);
    if (rc != 0 && ws->state != WS_DEAD)
        fail(ws, rc, "could not send the upgrade request");
}

/* Returns 0 or a libuv error code; *oom set when the handle could not be allocated. */
static int start_connect(vl_ws_t *ws, const struct sockaddr *addr, int *oom)
{
    uv_tcp_t *tcp = malloc(sizeof *tcp);
    *oom = !tcp;
    if (!tcp)
        return UV_ENOMEM;
    int rc = uv_tcp_init(ws->loop, tcp);
    if (rc != 0) {
        free(tcp);
        return rc;
    }
    tcp->data = ws;
    ws->handles++;
    ws->tcp = tcp;
    uv_tcp_nodelay(tcp, 1);
    rc = uv_tcp_connect(&ws->connect_req, tcp, addr, on_connected);
    if (rc != 0)
        close_tcp(ws);
    return rc;
}

static void try_next_address(vl_ws_t *ws, int last_err)
{
    while (ws->ai_next) {
        struct addrinfo *a = ws->ai_next;
        ws->ai_next = a->ai_next;
        if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
            continue;
        int oom;
        int rc = start_connect(ws, a->ai_addr, &oom);
        if (oom) {
            fail(ws, VOLLI_ENOMEM, "out of memory");
            return;
        }
        if (rc == 0)
            return;
        last_err = rc;
    }
    fail(ws, VOLLI_EUNREACHABLE, reason(ws, "cannot connect", last_err));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    vl_ws_t *ws = req->data;
    ws->gai_pending = 0;
    ws->ai = res;
    if (ws->state == WS_DEAD) {
        maybe_finish(ws);
        return;
    }
    if (status < 0) {
        fail(ws, VOLLI_EUNREACHABLE, reason(ws, "cannot resolve the host", status));
        return;
    }
    ws->state = WS_CONNECTING;
    ws->ai_next = res;
    try_next_address(ws, UV_EAI_NONAME);
}

static void on_timer(uv_timer_t *t)
{
    vl_ws_t *ws = t->data;
    if (ws->state == WS_CLOSING) {
        if (ws->close_received && ws->close_sent)
            fail(ws, 0, closed_reason(ws));
        else
            fail(ws, VOLLI_ETIMEDOUT, "the close handshake did not finish");
        return;
    }
    if (ws->state != WS_OPEN) {
        fail(ws, VOLLI_ETIMEDOUT, "timed out connecting");
        return;
    }
    uint64_t idle = ws->cfg.idle_timeout_ms, half = idle / 2 + 1;
    uint64_t quiet = uv_now(ws->loop) - ws->last_rx;
    if (quiet >= idle) {
        snprintf(ws->whybuf, sizeof ws->whybuf, "nothing received from the server for %u ms",
                 (unsigned)quiet);
        fail(ws, VOLLI_ETIMEDOUT, ws->whybuf);
        return;
    }
    if (quiet >= half && !ws->ping_sent) {
        /* Make a live server answer; its pong resets the clock. */
        int rc = send_control(ws, VS_WS_OP_PING, "", 0);
        if (rc != 0) {
            if (ws->state != WS_DEAD)
                fail(ws, rc, "could not send a ping");
            return;
        }
        ws->ping_sent = 1;
    }
    arm(ws, quiet < half ? half - quiet : idle - quiet);
}

int vl_ws_connect(uv_loop_t *loop, const vl_url_t *url, const vl_ws_config_t *cfg,
                  const vl_ws_events_t *ev, void *ud, const vl_logger_t *lg, vl_ws_t **out)
{
    if (!cfg->idle_timeout_ms || !cfg->connect_timeout_ms)
        return VOLLI_EINVAL;
    vl_ws_t *ws = calloc(1, sizeof *ws);
    if (!ws)
        return VOLLI_ENOMEM;
    ws->loop = loop;
    ws->url = url;
    ws->cfg = *cfg;
    ws->ev = ev;
    ws->ud = ud;
    ws->lg = lg;
    ws->state = WS_RESOLVING;
    uint8_t nonce[16];
    if (RAND_bytes(nonce, sizeof nonce) != 1) {
        free(ws);
        return VOLLI_ECRYPTO;
    }
    vs_base64_encode(nonce, sizeof nonce, ws->key);
    if (vs_ws_accept_key(ws->key, 24, ws->accept) != 0) {
        free(ws);
        return VOLLI_ECRYPTO;
    }
    uv_timer_init(loop, &ws->timer);
    ws->timer.data = ws;
    ws->handles = 1;
    arm(ws, cfg->connect_timeout_ms);
    *out = ws;

    /* From here on every failure is reported through on_closed. */
    struct sockaddr_storage sa;
    int rc;
    if (url->ipv6)
        rc = uv_ip6_addr(url->host, url->port, (struct sockaddr_in6 *)&sa);
    else
        rc = uv_ip4_addr(url->host, url->port, (struct sockaddr_in *)&sa);
    if (rc == 0) {
        int oom;
        ws->state = WS_CONNECTING;
        rc = start_connect(ws, (struct sockaddr *)&sa, &oom);
        if (rc != 0)
            fail(ws, oom ? VOLLI_ENOMEM : VOLLI_EUNREACHABLE,
                 oom ? "out of memory" : reason(ws, "cannot connect", rc));
        return 0;
    }
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)url->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    ws->gai.data = ws;
    rc = uv_getaddrinfo(loop, &ws->gai, on_resolved, url->host, port, &hints);
    if (rc != 0)
        fail(ws, VOLLI_EUNREACHABLE, reason(ws, "cannot resolve the host", rc));
    else
        ws->gai_pending = 1;
    return 0;
}

void vl_ws_close(vl_ws_t *ws, uint16_t code)
{
    if (ws->state == WS_DEAD || ws->close_sent)
        return;
    if (ws->state != WS_OPEN && ws->state != WS_CLOSING) {
        fail(ws, 0, "closed before the upgrade");
        return;
    }
    ws->we_closed = 1;
    int rc = send_close(ws, code);
    if (rc != 0) {
        fail(ws, rc, "could not send the close");
        return;
    }
    ws->state = WS_CLOSING;
    arm(ws, CLOSE_GRACE_MS);
}

void vl_ws_abort(vl_ws_t *ws, int err, const char *why)
{
    fail(ws, err, why);
}

void vl_ws_detach(vl_ws_t *ws)
{
    ws->ev = NULL;
    fail(ws, 0, "detached");
}
