#include "transport/http.h"

#include "cluster/cluster.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/url.h"
#include "core/metrics.h"
#include "core/pq.h"
#include "core/server_impl.h"
#include "core/session.h"
#include "crypto/token.h"
#include "transport/assets.h"
#include "transport/conn.h"

#include <http_parser.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#define MAX_REQUEST_BYTES 8192

enum hdr { H_NONE, H_HOST, H_UPGRADE, H_CONNECTION, H_KEY, H_VERSION, H_INM, H_XFF, H_AUTH };

struct vs_http_req {
    http_parser parser;
    size_t total;
    char url[VS_TOKEN_MAX + 512]; /* room for ?access_token= */
    char field[32];
    char upgrade[64], connection[128], key[64], version[8], inm[80], xff[256];
    char auth[VS_TOKEN_MAX + 64];
    uint16_t url_len, field_len, lens[9];
    uint8_t cur, in_value, done, overflow, has_host;
};

vs_http_req_t *vs_http_req_new(void)
{
    vs_http_req_t *r = vs_calloc(1, sizeof *r);
    http_parser_init(&r->parser, HTTP_REQUEST);
    return r;
}

void vs_http_req_free(vs_http_req_t *r)
{
    free(r);
}

static vs_http_req_t *req_of(http_parser *p)
{
    return ((vs_conn_t *)p->data)->http;
}

static int append(char *dst, uint16_t *len, size_t cap, const char *at, size_t n, uint8_t *ovf)
{
    if (*len + n >= cap) {
        *ovf = 1;
        return 0;
    }
    memcpy(dst + *len, at, n);
    *len = (uint16_t)(*len + n);
    dst[*len] = '\0';
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    vs_http_req_t *r = req_of(p);
    return append(r->url, &r->url_len, sizeof r->url, at, n, &r->overflow);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    vs_http_req_t *r = req_of(p);
    if (r->in_value) {
        r->in_value = 0;
        r->field_len = 0;
        r->field[0] = '\0';
    }
    uint8_t ignore = 0; /* a long field name is simply not one we care about */
    append(r->field, &r->field_len, sizeof r->field, at, n, &ignore);
    if (ignore) {
        /* Forget the prefix too: "Host" read before the rest of "Host-Foo-..." must not count. */
        r->field[0] = '\0';
        r->field_len = sizeof r->field - 1;
    }
    return 0;
}

static enum hdr classify(const char *f)
{
    static const struct {
        const char *name;
        enum hdr h;
    } known[] = {{"host", H_HOST},
                 {"upgrade", H_UPGRADE},
                 {"connection", H_CONNECTION},
                 {"sec-websocket-key", H_KEY},
                 {"sec-websocket-version", H_VERSION},
                 {"if-none-match", H_INM},
                 {"x-forwarded-for", H_XFF},
                 {"authorization", H_AUTH}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcasecmp(f, known[i].name) == 0)
            return known[i].h;
    return H_NONE;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    vs_http_req_t *r = req_of(p);
    if (!r->in_value) {
        r->in_value = 1;
        r->cur = (uint8_t)classify(r->field);
        if (r->cur == H_HOST)
            r->has_host = 1;
    }
    switch (r->cur) {
    case H_UPGRADE:
        return append(r->upgrade, &r->lens[H_UPGRADE], sizeof r->upgrade, at, n, &r->overflow);
    case H_CONNECTION:
        return append(r->connection, &r->lens[H_CONNECTION], sizeof r->connection, at, n,
                      &r->overflow);
    case H_KEY:
        return append(r->key, &r->lens[H_KEY], sizeof r->key, at, n, &r->overflow);
    case H_VERSION:
        return append(r->version, &r->lens[H_VERSION], sizeof r->version, at, n, &r->overflow);
    case H_XFF:
        return append(r->xff, &r->lens[H_XFF], sizeof r->xff, at, n, &r->overflow);
    case H_AUTH:
        return append(r->auth, &r->lens[H_AUTH], sizeof r->auth, at, n, &r->overflow);
    case H_INM: {
        uint8_t ignore = 0; /* a long list of tags only costs a cache miss */
        return append(r->inm, &r->lens[H_INM], sizeof r->inm, at, n, &ignore);
    }
    default:
        return 0;
    }
}

static int on_message_complete(http_parser *p)
{
    req_of(p)->done = 1;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_message_complete = on_message_complete,
};

/* Does the comma-separated header value list contain token (case-insensitive)? */
static int has_token(const char *list, const char *token)
{
    size_t tl = strlen(token);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - start) == tl && strncasecmp(start, token, tl) == 0)
            return 1;
    }
    return 0;
}

/* RFC 9110 9.3.2: the answer to a complete HEAD request carries the headers only. */
static int wants_body(const vs_conn_t *c)
{
    const vs_http_req_t *r = c->http;
    return !(r && r->done && r->parser.method == HTTP_HEAD);
}

static void respond_json(vs_conn_t *c, int status, const char *extra, const char *body)
{
    vs_conn_http_send(c, status, "application/json", extra, body, strlen(body), wants_body(c));
}

/* 200 {"status":"ok"}, or 503 with the reason while the cluster's Redis is unavailable (or
 * while the node drains). */
static void serve_health(vs_conn_t *c)
{
    vs_server_t *s = c->srv;
    const char *reason = NULL;
    if (s->shutting_down)
        reason = "draining: this node is shutting down";
    else if (s->cluster && !vs_cluster_up(s->cluster, &reason) && !reason)
        reason = "redis unavailable";
    if (!reason) {
        respond_json(c, 200, NULL, "{\"status\":\"ok\"}");
        return;
    }
    vs_buf_t out;
    vs_buf_init(&out);
    vs_buf_puts(&out, "{\"status\":\"unavailable\",\"reason\":");
    vs_buf_json_str(&out, reason, strlen(reason));
    vs_buf_puts(&out, "}");
    vs_conn_http_send(c, 503, "application/json", "Retry-After: 1\r\n", out.p, out.len,
                      wants_body(c));
    vs_buf_deinit(&out);
}

static void serve_metrics(vs_conn_t *c)
{
    vs_server_t *s = c->srv;
    vs_metrics_gauges_t g = {
        .connections = s->active.n,
        .online_users = vs_directory_online_count(s->dir),
        .registered_users = s->registered_users,
        .directory_entries = vs_directory_entry_count(s->dir),
        .pending_registers = s->regq.n + s->regq.batch_n,
        .rooms = vs_rooms_count(s->rooms),
        .room_participants = vs_rooms_participants(s->rooms),
    };
    vs_buf_t out;
    vs_buf_init(&out);
    vs_metrics_render(&s->metrics, &g, s->start_time, &out);
    if (s->cluster)
        vs_cluster_metrics(s->cluster, &out);
    vs_conn_http_send(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, out.p, out.len,
                      wants_body(c));
    vs_buf_deinit(&out);
}

static void serve_server_key(vs_conn_t *c)
{
    char body[96];
    snprintf(body, sizeof body, "{\"serverKey\":\"%s\"}", c->srv->server_key_b64);
    respond_json(c, 200, NULL, body);
}

static void serve_pq_stats(vs_conn_t *c)
{
    vs_buf_t out;
    vs_buf_init(&out);
    vs_pq_stats_json(c->srv, &out);
    vs_buf_append(&out, "", 1);
    respond_json(c, 200, NULL, out.p);
    vs_buf_deinit(&out);
}

#define SERVER_KEY_PATH "/.well-known/volli/server.json"

/* The HTTP API port: read-only JSON and metrics, never a WebSocket or a file. */
static void route_api(vs_conn_t *c, const char *path, int get)
{
    int known = strcmp(path, "/volly/sessions/stats") == 0 || strcmp(path, "/healthz") == 0 ||
                strcmp(path, "/metrics") == 0 || strcmp(path, SERVER_KEY_PATH) == 0;
    if (!known)
        respond_json(c, 404, NULL, "{\"error\":\"not found\"}");
    else if (!get)
        respond_json(c, 405, "Allow: GET, HEAD\r\n", "{\"error\":\"method not allowed\"}");
    else if (strcmp(path, "/volly/sessions/stats") == 0)
        serve_pq_stats(c);
    else if (strcmp(path, "/healthz") == 0)
        serve_health(c);
    else if (strcmp(path, "/metrics") == 0)
        serve_metrics(c);
    else
        serve_server_key(c);
}

/* The percent-decoded value of the query parameter name, into out (cap bytes). Returns its
 * length, -1 when absent, -2 when malformed or too long. */
static long query_param(const char *url, const char *name, char *out, size_t cap)
{
    const char *q = strchr(url, '?');
    if (!q)
        return -1;
    size_t nl = strlen(name);
    for (const char *p = q + 1; *p && *p != '#';) {
        size_t n = strcspn(p, "&#");
        if (n > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            long len = vs_percent_decode(p + nl + 1, n - nl - 1, out, cap);
            return len < 0 ? -2 : len;
        } else if (n == nl && strncmp(p, name, nl) == 0) {
            out[0] = '\0';
            return 0;
        }
        p += n + (p[n] == '&');
    }
    return -1;
}

/* An access token, from ?access_token= or "Authorization: Bearer", is verified before the
 * upgrade; a refused one gets 401 and no WebSocket. No token: a key-registered connection.
 * Returns 1 to go on with the upgrade, 0 when the request was answered. */
static int check_token(vs_conn_t *c, vs_http_req_t *r)
{
    static char qbuf[VS_TOKEN_MAX + 512];
    const char *tok = NULL;
    size_t len = 0;
    long q = query_param(r->url, "access_token", qbuf, sizeof qbuf);
    if (q >= 0 || q == -2) {
        tok = qbuf;
        len = q >= 0 ? (size_t)q : 0;
    } else if (r->lens[H_AUTH] && strncasecmp(r->auth, "bearer ", 7) == 0) {
        tok = r->auth + 7;
        while (*tok == ' ')
            tok++;
        len = strlen(tok);
        while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
            len--;
    }
    if (!tok)
        return 1;
    vs_server_t *s = c->srv;
    vs_token_claims_t claims;
    vs_token_reason_t why;
    int rc = vs_token_verify(&s->keys, tok, len, (int64_t)time(NULL), &claims, &why);
    OPENSSL_cleanse(qbuf, sizeof qbuf);
    s->metrics.tokens[why]++;
    if (rc != 0) {
        char body[96];
        snprintf(body, sizeof body, "{\"error\":\"invalid_token\",\"reason\":\"%s\"}",
                 vs_token_reason_name(why));
        VS_LOG(VS_LOG_INFO, "token_refused", "reason", "%s", vs_token_reason_name(why), NULL);
        respond_json(c, 401, "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n", body);
        return 0;
    }
    c->token = vs_malloc(sizeof *c->token);
    *c->token = claims;
    return 1;
}

static void upgrade(vs_conn_t *c, vs_http_req_t *r, uint8_t *rest, size_t rest_len)
{
    http_parser *p = &r->parser;
    if (p->method != HTTP_GET || p->http_major != 1 || p->http_minor < 1 || !r->has_host ||
        !has_token(r->upgrade, "websocket") || !has_token(r->connection, "upgrade")) {
        respond_json(c, 400, NULL, "{\"error\":\"invalid WebSocket handshake\"}");
        return;
    }
    if (strcmp(r->version, "13") != 0) {
        respond_json(c, 426, "Sec-WebSocket-Version: 13\r\n",
                     "{\"error\":\"unsupported WebSocket version\"}");
        return;
    }
    char accept[VS_WS_ACCEPT_LEN + 1];
    if (vs_ws_accept_key(r->key, r->lens[H_KEY], accept) != 0) {
        respond_json(c, 400, NULL, "{\"error\":\"invalid Sec-WebSocket-Key\"}");
        return;
    }
    if (!check_token(c, r))
        return;
    vs_conn_upgrade(c, accept, rest, rest_len);
}

static void route(vs_conn_t *c, vs_http_req_t *r, uint8_t *rest, size_t rest_len)
{
    size_t plen = strcspn(r->url, "?#");
    char path[sizeof r->url];
    memcpy(path, r->url, plen);
    path[plen] = '\0';
    int get = r->parser.method == HTTP_GET || r->parser.method == HTTP_HEAD;

    if (c->flags & VS_CONN_API) {
        route_api(c, path, get);
        return;
    }
    const vs_config_t *cfg = c->srv->cfg;
    char rel[sizeof r->url + 8];
    int is_ws_path = strcmp(path, "/") == 0 || strcmp(path, "/rtc") == 0;
    int is_api = strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0 ||
                 strcmp(path, SERVER_KEY_PATH) == 0;
    if (is_ws_path && (r->lens[H_UPGRADE] || r->parser.upgrade)) {
        upgrade(c, r, rest, rest_len);
    } else if (is_api && !get) {
        respond_json(c, 405, "Allow: GET, HEAD\r\n", "{\"error\":\"method not allowed\"}");
    } else if (strcmp(path, "/healthz") == 0) {
        serve_health(c);
    } else if (strcmp(path, "/metrics") == 0) {
        serve_metrics(c);
    } else if (strcmp(path, SERVER_KEY_PATH) == 0) {
        serve_server_key(c);
    } else if (get && strcmp(path, "/rtc") != 0 &&
               vs_asset_map(path, cfg->demo, rel, sizeof rel) == 0) {
        vs_asset_serve(c, rel, cfg->web_dir, r->parser.method == HTTP_HEAD,
                       r->lens[H_INM] ? r->inm : NULL);
    } else if (is_ws_path) {
        respond_json(c, 426, "Upgrade: websocket\r\n",
                     "{\"error\":\"this endpoint speaks WebSocket only\"}");
    } else {
        respond_json(c, 404, NULL, "{\"error\":\"not found\"}");
    }
}

/* Behind a trusted proxy the client is the last X-Forwarded-For entry (the one the proxy
 * added); per-address limits apply to it. Returns 0 when the request was answered instead. */
static int client_address(vs_conn_t *c, vs_http_req_t *r)
{
    const char *last = strrchr(r->xff, ',');
    last = last ? last + 1 : r->xff;
    char addr[46];
    if (vs_addr_canonical(last, strlen(last), addr) != 0) {
        respond_json(c, 400, NULL, "{\"error\":\"invalid X-Forwarded-For\"}");
        return 0;
    }
    if (vs_conn_attach_ip(c, addr) != 0) {
        respond_json(c, 503, "Retry-After: 10\r\n",
                     "{\"error\":\"too many connections from this address\"}");
        return 0;
    }
    return 1;
}

void vs_http_feed(vs_conn_t *c, uint8_t *data, size_t len)
{
    vs_http_req_t *r = c->http;
    r->parser.data = c;
    size_t n = http_parser_execute(&r->parser, &settings, (const char *)data, len);
    r->total += n;
    if (r->overflow || r->total > MAX_REQUEST_BYTES) {
        respond_json(c, 431, NULL, "{\"error\":\"request headers too large\"}");
        return;
    }
    if (r->done) {
        if ((c->flags & VS_CONN_TRUSTED) && r->lens[H_XFF] && !client_address(c, r))
            return;
        route(c, r, data + n, len - n);
        return;
    }
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
    if (e != HPE_OK) {
        VS_LOG(VS_LOG_DEBUG, "http_bad_request", "error", "%s", http_errno_name(e), NULL);
        respond_json(c, 400, NULL, "{\"error\":\"malformed HTTP request\"}");
    }
}
