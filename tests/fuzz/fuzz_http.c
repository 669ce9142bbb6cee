/* fuzz_http.c: the HTTP/1.1 request phase (transport/http.c: vs_http_feed, the routes, the
 * upgrade, static files, X-Forwarded-For) on a real, inert server (core/testing.h), through a
 * connection without a socket.
 *
 * Input: one control byte, then the bytes the client sends. Bit 0 of the control byte makes the
 * peer a trusted proxy (X-Forwarded-For is then honoured); bits 1-7 place a split point within
 * the request, which is fed in two reads, each an exact-size heap copy (0: one read). A read
 * reaches vs_http_feed only while the connection is still in the HTTP phase, as in conn.c.
 *
 * The same bytes go through a separate http_parser here, and the queued output must agree with
 * it: nothing while the request is incomplete; otherwise exactly one syntactically valid
 * HTTP/1.1 response (status line, well-formed headers, one Content-Type, Connection: close and
 * a Content-Length equal to the body, or no body for HEAD and 304), whose status fits the
 * request (a 200 never for a path with a dot segment, "//", "%" or "\"), or a 101 only for a
 * GET of / or /rtc with a Host header, whose Sec-WebSocket-Accept is that of the request's key,
 * followed by the hello frame with the connection's nonce and then only well-formed server
 * frames. The connection is then destroyed and the server must hold nothing. */
#include "fuzz.h"

#include "common/log.h"
#include "core/config.h"
#include "core/testing.h"
#include "protocol/envelope.h"
#include "transport/conn.h"
#include "transport/http.h"
#include "transport/ws.h"

#include <http_parser.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_http: check failed at line %d: %s\n", __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);

static int trace; /* VS_FUZZ_TRACE set: print each status line (corpus work) */
static vs_server_t *srv;

static void setup(void)
{
    if (srv)
        return;
    vs_log_setup(VS_LOG_ERROR, VS_LOG_TEXT);
    trace = getenv("VS_FUZZ_TRACE") != NULL;
    srv = vs_testing_fuzz_server(NULL, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setup(); /* before libFuzzer installs its signal handlers */
    return 0;
}

/* ---- the request, as an independent http_parser reads it ---- */

struct req {
    http_parser p;
    char url[16384], field[64], key[16384];
    size_t url_len, field_len, key_len;
    int field_long, in_value, is_key, has_host, done;
};

static void grow(char *dst, size_t *len, size_t cap, const char *at, size_t n, int *ovf)
{
    if (*len + n >= cap) {
        if (ovf)
            *ovf = 1;
        return;
    }
    memcpy(dst + *len, at, n);
    *len += n;
    dst[*len] = '\0';
}

static int req_url(http_parser *p, const char *at, size_t n)
{
    struct req *r = p->data;
    grow(r->url, &r->url_len, sizeof r->url, at, n, NULL);
    return 0;
}

static int req_field(http_parser *p, const char *at, size_t n)
{
    struct req *r = p->data;
    if (r->in_value) {
        r->in_value = 0;
        r->field_len = 0;
        r->field_long = 0;
        r->field[0] = '\0';
    }
    grow(r->field, &r->field_len, sizeof r->field, at, n, &r->field_long);
    return 0;
}

static int req_value(http_parser *p, const char *at, size_t n)
{
    struct req *r = p->data;
    if (!r->in_value) {
        r->in_value = 1;
        r->is_key = !r->field_long && strcasecmp(r->field, "sec-websocket-key") == 0;
        if (!r->field_long && strcasecmp(r->field, "host") == 0)
            r->has_host = 1;
    }
    if (r->is_key)
        grow(r->key, &r->key_len, sizeof r->key, at, n, NULL);
    return 0;
}

static int req_complete(http_parser *p)
{
    ((struct req *)p->data)->done = 1;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings req_settings = {
    .on_url = req_url,
    .on_header_field = req_field,
    .on_header_value = req_value,
    .on_message_complete = req_complete,
};

/* 1 when the request failed to parse (not merely incomplete). */
static int parse_request(struct req *r, const uint8_t *data, size_t len)
{
    memset(r, 0, sizeof *r);
    http_parser_init(&r->p, HTTP_REQUEST);
    r->p.data = r;
    http_parser_execute(&r->p, &req_settings, (const char *)data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&r->p);
    return !r->done && e != HPE_OK && e != HPE_PAUSED;
}

/* ---- the response ---- */

struct resp {
    int status;
    size_t head_len; /* through the blank line */
    long content_length;
    int n_length, n_type, conn_close, upgrade_ws, conn_upgrade;
    char accept[64];
};

static int tchar(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Parses the status line and headers of out[0..len); aborts on anything malformed. */
static void parse_response(const char *out, size_t len, struct resp *rs)
{
    memset(rs, 0, sizeof *rs);
    rs->content_length = -1;
    CHECK(len >= 17 && memcmp(out, "HTTP/1.1 ", 9) == 0);
    for (int i = 9; i < 12; i++)
        CHECK(out[i] >= '0' && out[i] <= '9');
    rs->status = (out[9] - '0') * 100 + (out[10] - '0') * 10 + (out[11] - '0');
    CHECK(out[12] == ' ');
    size_t i = 13, start = 13;
    while (i < len && out[i] != '\r') {
        CHECK(out[i] >= 0x20 && out[i] < 0x7f);
        i++;
    }
    CHECK(i > start && i + 1 < len && out[i + 1] == '\n'); /* a reason phrase */
    i += 2;
    for (;;) {
        CHECK(i + 1 < len);
        if (out[i] == '\r') {
            CHECK(out[i + 1] == '\n');
            rs->head_len = i + 2;
            return;
        }
        size_t name = i;
        while (i < len && tchar((unsigned char)out[i]))
            i++;
        size_t name_len = i - name;
        CHECK(name_len > 0 && i + 1 < len && out[i] == ':' && out[i + 1] == ' ');
        i += 2;
        size_t value = i;
        while (i < len && out[i] != '\r') {
            unsigned char ch = (unsigned char)out[i];
            CHECK((ch >= 0x20 && ch < 0x7f) || ch == '\t');
            i++;
        }
        CHECK(i + 1 < len && out[i + 1] == '\n');
        size_t value_len = i - value;
        i += 2;
        const char *nm = out + name, *v = out + value;
#define IS(h) (name_len == sizeof h - 1 && strncasecmp(nm, h, name_len) == 0)
#define VAL(s) (value_len == sizeof s - 1 && strncasecmp(v, s, value_len) == 0)
        if (IS("Content-Length")) {
            rs->n_length++;
            CHECK(value_len > 0 && value_len < 12);
            long n = 0;
            for (size_t k = 0; k < value_len; k++) {
                CHECK(v[k] >= '0' && v[k] <= '9');
                n = n * 10 + (v[k] - '0');
            }
            rs->content_length = n;
        } else if (IS("Content-Type")) {
            rs->n_type++;
            CHECK(value_len > 0);
        } else if (IS("Connection")) {
            rs->conn_close |= VAL("close");
            rs->conn_upgrade |= VAL("Upgrade");
        } else if (IS("Upgrade")) {
            rs->upgrade_ws |= VAL("websocket");
        } else if (IS("Sec-WebSocket-Accept")) {
            CHECK(value_len < sizeof rs->accept);
            memcpy(rs->accept, v, value_len);
            rs->accept[value_len] = '\0';
        }
#undef IS
#undef VAL
    }
}

/* A path a 200 may answer: never one that could climb out of web/ or name a hidden file. */
static int plain_path(const char *path)
{
    return path[0] == '/' && !strstr(path, "/.") && !strstr(path, "//") && !strchr(path, '%') &&
           !strchr(path, '\\');
}

static void check_hello(vs_conn_t *c, const uint8_t *p, size_t n)
{
    json_t *o = json_loadb((const char *)p, n, VS_JSON_FLAGS, NULL);
    CHECK(o && json_is_object(o));
    json_t *nonce = json_object_get(o, "nonce");
    CHECK(json_is_string(json_object_get(o, "type")) &&
          strcmp(json_string_value(json_object_get(o, "type")), "hello") == 0);
    CHECK(json_integer_value(json_object_get(o, "version")) == 1 ||
          json_real_value(json_object_get(o, "version")) == 1.0);
    CHECK(json_is_string(nonce) && json_string_length(nonce) == 22 &&
          strcmp(json_string_value(nonce), c->nonce) == 0);
    json_decref(o);
}

/* What follows the 101: the hello, then whatever the bytes after the request caused. */
static void check_frames(vs_conn_t *c, const uint8_t *buf, size_t len)
{
    size_t off = 0, n;
    const uint8_t *p;
    int op, rc, first = 1;
    while ((rc = vs_testing_next_frame(buf, len, &off, &op, &p, &n)) == 1) {
        if (first) {
            CHECK(op == VS_WS_OP_TEXT);
            check_hello(c, p, n);
            first = 0;
            continue;
        }
        if (op == VS_WS_OP_TEXT) {
            CHECK(vs_utf8_valid(p, n));
            json_t *o = json_loadb((const char *)p, n, VS_JSON_FLAGS, NULL);
            CHECK(o && json_is_object(o) && json_is_string(json_object_get(o, "type")));
            json_decref(o);
        } else if (op == VS_WS_OP_CLOSE) {
            CHECK(n >= 2 && vs_utf8_valid(p + 2, n - 2));
            int code = p[0] << 8 | p[1];
            CHECK((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                  (code >= 3000 && code <= 4999));
            CHECK(c->state == VS_CONN_CLOSING || (c->flags & VS_CONN_DOOMED));
        } else {
            CHECK(op == VS_WS_OP_PONG);
        }
    }
    CHECK(rc == 0 && !first);
}

static void check_accept(const struct req *rq, const char *accept)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char buf[24 + sizeof guid - 1], md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char want[32];
    CHECK(rq->key_len == 24);
    memcpy(buf, rq->key, 24);
    memcpy(buf + 24, guid, sizeof guid - 1);
    CHECK(EVP_Digest(buf, sizeof buf, md, &md_len, EVP_sha1(), NULL) && md_len == 20);
    EVP_EncodeBlock((unsigned char *)want, md, 20);
    CHECK(strcmp(want, accept) == 0);
}

static void check_response(vs_conn_t *c, const struct req *rq, int malformed)
{
    const char *out = c->out;
    size_t len = c->out_len;
    if (len == 0) {
        /* A complete or broken request is always answered at once. */
        CHECK(c->state == VS_CONN_HTTP && !(c->flags & VS_CONN_DOOMED));
        CHECK(!rq->done && !malformed);
        return;
    }
    CHECK(c->state != VS_CONN_HTTP);
    if (trace)
        fprintf(stderr, "%.*s(%zu bytes)\n", (int)strcspn(out, "\r"), out, len);
    struct resp rs;
    parse_response(out, len, &rs);
    char path[sizeof rq->url];
    size_t plen = strcspn(rq->url, "?#");
    memcpy(path, rq->url, plen);
    path[plen] = '\0';

    if (rs.status == 101) {
        CHECK(rq->done && rq->p.method == HTTP_GET && rq->p.http_major == 1 &&
              rq->p.http_minor >= 1 && rq->has_host);
        CHECK(strcmp(path, "/") == 0 || strcmp(path, "/rtc") == 0);
        CHECK(rs.upgrade_ws && rs.conn_upgrade && !rs.n_length);
        check_accept(rq, rs.accept);
        CHECK(c->state == VS_CONN_WS || c->state == VS_CONN_CLOSING);
        check_frames(c, (const uint8_t *)out + rs.head_len, len - rs.head_len);
        return;
    }

    CHECK(c->state == VS_CONN_CLOSING);
    CHECK(rs.n_length == 1 && rs.n_type == 1 && rs.conn_close);
    size_t body = len - rs.head_len;
    /* RFC 9110 9.3.2: no content in a response to HEAD. A 431 may come before the server read
     * the whole request (the first read overflowed), so it may not know it is one. */
    int head = rq->done && rq->p.method == HTTP_HEAD;
    if (rs.status == 431 && head)
        CHECK(body == 0 || body == (size_t)rs.content_length);
    else if (head || rs.status == 304)
        CHECK(body == 0);
    else
        CHECK(body == (size_t)rs.content_length);
    switch (rs.status) {
    case 200:
        CHECK(rq->done && plain_path(path));
        if (strcmp(path, "/healthz") == 0 && !head)
            CHECK(body == 15 && memcmp(out + rs.head_len, "{\"status\":\"ok\"}", 15) == 0);
        break;
    case 304:
        CHECK(rq->done && body == 0 && plain_path(path));
        break;
    case 400:
        CHECK(rq->done || malformed);
        break;
    case 404:
    case 405:
    case 426:
    case 503:
        CHECK(rq->done);
        break;
    case 431:
        break;
    default:
        CHECK(!"unexpected status");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size == 0)
        return 0;
    int trusted = data[0] & 1;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    size_t split = (size_t)(data[0] >> 1) * n / 127;

    static struct req rq;
    int malformed = parse_request(&rq, in, n);

    CHECK(vs_testing_reset_addresses(srv) == 0);
    vs_conn_t *c = vs_testing_conn_new(srv, trusted ? NULL : "192.0.2.7");
    CHECK(c);
    size_t cuts[3] = {0, split && split < n ? split : n, n};
    for (int i = 0; i < 2; i++) {
        size_t len = cuts[i + 1] - cuts[i];
        if (len == 0 || c->state != VS_CONN_HTTP || (c->flags & VS_CONN_DOOMED))
            continue;
        uint8_t *chunk = malloc(len);
        CHECK(chunk);
        memcpy(chunk, in + cuts[i], len);
        vs_http_feed(c, chunk, len);
        free(chunk);
    }
    check_response(c, &rq, malformed);
    vs_testing_conn_free(c);
    vs_testing_settle(srv);
    CHECK(vs_testing_idle(srv));
    return 0;
}
