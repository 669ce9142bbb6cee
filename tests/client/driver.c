/* driver.c (client_driver): one libvolli client on an application-owned libuv loop, driven by
 * the integration tests. Commands arrive on stdin, one JSON object per line; every event,
 * request result and immediate error is printed on stdout as one JSON line. Uses only the
 * public API (include/volli), like an application.
 *
 * Usage: client_driver [--user ID --key FILE] [--request-timeout MS] [--idle-timeout MS]
 *                      [--connect-timeout MS] [--backoff-initial MS] [--backoff-max MS]
 *                      [--pq 1|2] [--server-key-hex HEX] [--log] URL...
 * The key file is created (volli_keygen + volli_key_save) when it does not exist. Without
 * --user and --key the client is connect-only (it never registers). --pq sets
 * volli_options_t.pq (VOLLI_PQ_*), --server-key-hex its server_key (64 hex digits).
 *
 * Commands ("tag" is optional and echoed in the result):
 *   {"cmd":"ping"}  {"cmd":"discover","ids":[...]}  {"cmd":"subscribe","ids":[...]}
 *   {"cmd":"unsubscribe","ids":[...]}  {"cmd":"connect"}  {"cmd":"state"}
 *   {"cmd":"send","to":ID,"type":"offer"|"answer"|"ice-candidate"|"bye","payload":TEXT|null}
 *   {"cmd":"close"}  (graceful close, free, exit 0; also on stdin EOF and SIGTERM)
 * Output:
 *   {"event":"connected"|"disconnected"|"registered"|"presence"|"offer"|...|"error", ...}
 *   {"result":CMD,"tag":T,"status":N,"error":TEXT,"code":WIRE|null,"reply":TEXT|null
 *    [,"immediate":true]}   (immediate: the call itself failed, no callback)
 *   {"event":"exit"} last, after everything was freed. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "volli/volli.h"

static uv_loop_t loop;
static uv_pipe_t in;
static uv_signal_t sigterm;
static volli_client_t *client;
static char *line_buf;
static size_t line_len, line_cap;
static int closing;

/* Prints o as one line and takes it. */
static void out(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (!s) {
        fputs("{\"event\":\"driver_error\",\"what\":\"json\"}\n", stdout);
    } else {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
    fflush(stdout);
    json_decref(o);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *text_or_null(const char *s, size_t n)
{
    return s ? json_stringn(s, n) : json_null();
}

static void on_event(volli_client_t *c, const volli_event_t *ev, void *ud)
{
    (void)c, (void)ud;
    json_t *o = json_pack("{s:s, s:o}", "event", volli_event_name(ev->type), "url",
                          str_or_null(ev->server_url));
    switch (ev->type) {
    case VOLLI_EVENT_DISCONNECTED:
        json_object_set_new(o, "reconnectInMs", json_integer(ev->reconnect_in_ms));
        json_object_set_new(o, "reason", str_or_null(ev->error_message));
        break;
    case VOLLI_EVENT_REGISTERED:
        json_object_set_new(o, "userId", str_or_null(ev->user_id));
        break;
    case VOLLI_EVENT_PRESENCE:
        json_object_set_new(o, "userId", str_or_null(ev->user_id));
        json_object_set_new(o, "online", json_boolean(ev->online));
        json_object_set_new(o, "json", text_or_null(ev->json, ev->json_len));
        break;
    case VOLLI_EVENT_OFFER:
    case VOLLI_EVENT_ANSWER:
    case VOLLI_EVENT_ICE_CANDIDATE:
    case VOLLI_EVENT_BYE:
        json_object_set_new(o, "from", str_or_null(ev->user_id));
        json_object_set_new(o, "payload", text_or_null(ev->payload, ev->payload_len));
        json_object_set_new(o, "json", text_or_null(ev->json, ev->json_len));
        /* The library promises NUL-terminated texts: check it here. */
        if ((ev->json && strlen(ev->json) != ev->json_len) ||
            (ev->payload && strlen(ev->payload) != ev->payload_len))
            json_object_set_new(o, "notTerminated", json_true());
        break;
    case VOLLI_EVENT_ERROR:
        json_object_set_new(o, "code", str_or_null(ev->error_code));
        json_object_set_new(o, "message", str_or_null(ev->error_message));
        break;
    default:
        break;
    }
    out(o);
}

struct pending {
    char cmd[16];
    json_t *tag;
};

static void result(const char *cmd, json_t *tag, int status, const char *code, const char *json,
                   size_t len, int immediate)
{
    json_t *o =
        json_pack("{s:s, s:O, s:i, s:s, s:o, s:o}", "result", cmd, "tag", tag ? tag : json_null(),
                  "status", status, "error", volli_strerror(status), "code", str_or_null(code),
                  "reply", text_or_null(json, len));
    if (immediate)
        json_object_set_new(o, "immediate", json_true());
    out(o);
}

static void on_result(volli_client_t *c, int status, const char *code, const char *json, size_t len,
                      void *ud)
{
    (void)c;
    struct pending *p = ud;
    result(p->cmd, p->tag, status, code, json, len, 0);
    json_decref(p->tag);
    free(p);
}

static void shutdown_all(void)
{
    if (closing)
        return;
    closing = 1;
    volli_client_free(client); /* closes gracefully first */
    client = NULL;
    uv_close((uv_handle_t *)&in, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
}

/* ids: a JSON array of strings, borrowed into a NULL-terminated array (caller frees). */
static const char **id_list(json_t *ids, size_t *n)
{
    *n = json_array_size(ids);
    const char **v = calloc(*n + 1, sizeof *v);
    for (size_t i = 0; v && i < *n; i++)
        v[i] = json_string_value(json_array_get(ids, i));
    return v;
}

static void command(const char *line)
{
    json_error_t err;
    json_t *o = json_loads(line, 0, &err);
    const char *cmd = json_string_value(json_object_get(o, "cmd"));
    if (!cmd || strlen(cmd) >= 16) {
        out(json_pack("{s:s, s:s}", "event", "driver_error", "what", line));
        json_decref(o);
        return;
    }
    json_t *tag = json_object_get(o, "tag");
    if (strcmp(cmd, "close") == 0) {
        shutdown_all();
        json_decref(o);
        return;
    }
    if (closing) {
        json_decref(o);
        return;
    }
    if (strcmp(cmd, "state") == 0) {
        out(json_pack("{s:s, s:O, s:b}", "result", "state", "tag", tag ? tag : json_null(),
                      "registered", volli_client_registered(client)));
        json_decref(o);
        return;
    }
    if (strcmp(cmd, "connect") == 0) {
        result(cmd, tag, volli_client_connect(client), NULL, NULL, 0, 1);
        json_decref(o);
        return;
    }
    struct pending *p = calloc(1, sizeof *p);
    strcpy(p->cmd, cmd);
    p->tag = tag ? json_incref(tag) : NULL;
    size_t n = 0;
    const char **ids = id_list(json_object_get(o, "ids"), &n);
    int rc;
    if (strcmp(cmd, "ping") == 0) {
        rc = volli_ping(client, on_result, p);
    } else if (strcmp(cmd, "discover") == 0) {
        rc = volli_discover(client, ids, n, on_result, p);
    } else if (strcmp(cmd, "subscribe") == 0) {
        rc = volli_subscribe(client, ids, n, on_result, p);
    } else if (strcmp(cmd, "unsubscribe") == 0) {
        rc = volli_unsubscribe(client, ids, n, on_result, p);
    } else if (strcmp(cmd, "send") == 0) {
        rc = volli_send(client, json_string_value(json_object_get(o, "to")),
                        json_string_value(json_object_get(o, "type")),
                        json_string_value(json_object_get(o, "payload")), on_result, p);
    } else {
        rc = VOLLI_EINVAL;
    }
    if (rc != 0) {
        result(cmd, tag, rc, NULL, NULL, 0, 1);
        json_decref(p->tag);
        free(p);
    }
    free(ids);
    json_decref(o);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    if (line_cap - line_len < 4096) {
        line_cap = line_cap * 2 + 8192;
        line_buf = realloc(line_buf, line_cap);
    }
    *buf = uv_buf_init(line_buf + line_len, (unsigned)(line_cap - line_len - 1));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)s, (void)buf;
    if (nread < 0) {
        shutdown_all();
        return;
    }
    line_len += (size_t)nread;
    char *nl;
    while (!closing && (nl = memchr(line_buf, '\n', line_len)) != NULL) {
        *nl = '\0';
        if (nl > line_buf)
            command(line_buf);
        size_t used = (size_t)(nl + 1 - line_buf);
        memmove(line_buf, nl + 1, line_len - used);
        line_len -= used;
    }
}

static void on_sigterm(uv_signal_t *h, int sig)
{
    (void)h, (void)sig;
    shutdown_all();
}

static void on_log(int level, const char *message, void *ud)
{
    (void)ud;
    static const char *const names[] = {"error", "warn", "info", "debug"};
    fprintf(stderr, "[libvolli %s] %s\n", level >= 0 && level <= 3 ? names[level] : "?", message);
}

static int load_or_create_key(const char *path, volli_keypair_t *kp)
{
    int rc = volli_key_load(path, kp);
    int created = 0;
    if (rc == VOLLI_EIO) {
        rc = volli_keygen(kp);
        if (rc == 0)
            rc = volli_key_save(kp, path);
        created = 1;
    }
    if (rc != 0) {
        out(json_pack("{s:s, s:s, s:i, s:s}", "event", "fatal", "where", "key", "status", rc,
                      "error", volli_strerror(rc)));
        return rc;
    }
    char b64[64];
    volli_key_public_base64(kp, b64, sizeof b64);
    out(json_pack("{s:s, s:b, s:s}", "event", "key", "created", created, "publicKey", b64));
    return 0;
}

int main(int argc, char **argv)
{
    const char *servers[16];
    size_t nservers = 0;
    const char *user = NULL, *key_path = NULL;
    volli_options_t opt = {0};
    uint8_t server_key[32];
    int log = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        unsigned *num = strcmp(a, "--request-timeout") == 0   ? &opt.request_timeout_ms
                        : strcmp(a, "--idle-timeout") == 0    ? &opt.idle_timeout_ms
                        : strcmp(a, "--connect-timeout") == 0 ? &opt.connect_timeout_ms
                        : strcmp(a, "--backoff-initial") == 0 ? &opt.backoff_initial_ms
                        : strcmp(a, "--backoff-max") == 0     ? &opt.backoff_max_ms
                                                              : NULL;
        if (num && i + 1 < argc)
            *num = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(a, "--user") == 0 && i + 1 < argc)
            user = argv[++i];
        else if (strcmp(a, "--key") == 0 && i + 1 < argc)
            key_path = argv[++i];
        else if (strcmp(a, "--log") == 0)
            log = 1;
        else if (strcmp(a, "--pq") == 0 && i + 1 < argc)
            opt.pq = atoi(argv[++i]);
        else if (strcmp(a, "--server-key-hex") == 0 && i + 1 < argc) {
            const char *h = argv[++i];
            for (size_t k = 0; k < 32; k++) {
                if (strlen(h) != 64 || sscanf(h + 2 * k, "%2hhx", &server_key[k]) != 1) {
                    fprintf(stderr, "client_driver: --server-key-hex needs 64 hex digits\n");
                    return 2;
                }
            }
            opt.server_key = server_key;
        } else if (a[0] != '-' && nservers < 16)
            servers[nservers++] = a;
        else {
            fprintf(stderr, "client_driver: bad argument %s\n", a);
            return 2;
        }
    }
    if (!user != !key_path) {
        fprintf(stderr, "usage: client_driver [--user ID --key FILE] [options] URL...\n");
        return 2;
    }
    volli_keypair_t kp;
    if (key_path && load_or_create_key(key_path, &kp) != 0)
        return 1;
    uv_loop_init(&loop);
    opt.servers = servers;
    opt.nservers = nservers;
    opt.user_id = user;
    opt.key = key_path ? &kp : NULL;
    opt.uv_loop = &loop;
    opt.on_event = on_event;
    opt.log = log ? on_log : NULL;
    int rc = volli_client_new(&opt, &client);
    if (rc == 0)
        rc = volli_client_connect(client);
    if (rc != 0) {
        out(json_pack("{s:s, s:s, s:i, s:s}", "event", "fatal", "where", "new", "status", rc,
                      "error", volli_strerror(rc)));
        volli_client_free(client);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    uv_pipe_init(&loop, &in, 0);
    uv_pipe_open(&in, 0);
    uv_read_start((uv_stream_t *)&in, on_alloc, on_read);
    uv_signal_init(&loop, &sigterm);
    uv_signal_start(&sigterm, on_sigterm, SIGTERM);
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&loop);
    free(line_buf);
    out(json_pack("{s:s, s:i}", "event", "exit", "loopClose", rc));
    return rc == 0 ? 0 : 1;
}
