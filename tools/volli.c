/* tools/volli.c: the `volli` command-line client. Runs one command as one session of the public
 * client library on a libuv loop of its own making, so that SIGINT/SIGTERM, the --timeout give-up
 * timer and the library's callbacks all happen on one thread. Owns the session and the
 * per-command state; it must never reach into src/ (only include/volli), never block the loop,
 * and never print key material other than the public key. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "volli/volli.h"

#include "cli.h"

/* How long a graceful close may take before the process exits anyway. */
#define CLOSE_GUARD_MS 5000

struct watched {
    char *id;  /* folded, owned */
    int state; /* -1 not known yet, 0 offline, 1 online */
};

struct session {
    const struct cli_args *args;
    uv_loop_t loop;
    uv_signal_t sig_int, sig_term;
    uv_timer_t give_up;     /* --timeout for the first registration */
    uv_timer_t close_guard; /* unreferenced: only fires if closing hangs */
    volli_client_t *client;
    int registers; /* whether this session registers (every command but a bare ping) */
    int ready;     /* registered (or connected, for a bare ping) at least once */
    int finished;
    int exit_code;
    int guard_fired;  /* closing hung: the library's handles may still be live */
    int creating;     /* inside volli_client_new: its error logs explain a refusal */
    char *server_url; /* the server of the current or last connection; owned */
    size_t next;      /* discover/watch: index of the first id of the next batch */
    size_t batch;     /* ids in the request in flight */
    int resubscribe;  /* watch: a subscribe was lost with its connection; redo on register */
    int up;           /* registered since the last DISCONNECTED we reported */
    struct watched *watched;
    uint64_t ping_start_ns;
};

static int long_running(const struct session *s)
{
    return s->args->cmd == CLI_CMD_WATCH || s->args->cmd == CLI_CMD_LISTEN;
}

/* The server's folding of user ids, so that replies can be matched to what was typed. */
static char *fold(const char *id)
{
    char *f = strdup(id);
    if (!f)
        return NULL;
    for (char *p = f; *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    }
    return f;
}

static const char *url_of(const struct session *s)
{
    return s->server_url ? s->server_url : "?";
}

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_close_guard(uv_timer_t *t)
{
    struct session *s = t->data;
    cli_note("the client library did not close within %d ms; exiting anyway", CLOSE_GUARD_MS);
    s->guard_fired = 1;
    uv_stop(&s->loop);
}

/* Ends the session with `code` (the first call wins). The loop then runs until the library has
 * closed its connection gracefully. */
static void finish(struct session *s, int code)
{
    if (s->finished)
        return;
    s->finished = 1;
    s->exit_code = code;
    uv_timer_stop(&s->give_up);
    uv_close((uv_handle_t *)&s->give_up, on_handle_closed);
    uv_close((uv_handle_t *)&s->sig_int, on_handle_closed);
    uv_close((uv_handle_t *)&s->sig_term, on_handle_closed);
    uv_timer_start(&s->close_guard, on_close_guard, CLOSE_GUARD_MS, 0);
    uv_unref((uv_handle_t *)&s->close_guard);
    volli_client_close(s->client);
}

/* After a write to stdout failed (a closed pipe), there is nobody left to report to. */
static void check_out(struct session *s, int rc)
{
    if (rc < 0)
        finish(s, CLI_EXIT_FAIL);
}

/* The "message" member of a wire error object (json borrowed); caller-frees. */
static char *wire_message(const char *json, size_t len)
{
    char *msg = NULL;
    json_t *v = json ? json_loadb(json, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL) : NULL;
    json_t *m = json_object_get(v, "message");
    if (json_is_string(m))
        msg = strdup(json_string_value(m));
    json_decref(v);
    return msg;
}

/* Reports a failed request and ends the session with exit 1. */
static void request_failed(struct session *s, int status, const char *code, const char *json,
                           size_t len)
{
    if (s->finished)
        return; /* VOLLI_ECANCELED after our own close */
    if (status == VOLLI_EWIRE) {
        char *msg = wire_message(json, len);
        cli_error(code ? code : "wire", "%s", msg ? msg : volli_strerror(status));
        free(msg);
    } else if (status == VOLLI_ETIMEDOUT) {
        cli_error(cli_errno_code(status), "no answer from %s within %u ms", url_of(s),
                  s->args->timeout_ms);
    } else if (status == VOLLI_ENOTCONN) {
        cli_error(cli_errno_code(status), "the connection to %s was lost before the answer",
                  url_of(s));
    } else {
        cli_error(cli_errno_code(status), "%s", volli_strerror(status));
    }
    finish(s, CLI_EXIT_FAIL);
}

/* A request the library refused outright (its callback will not run). */
static void request_refused(struct session *s, const char *what, int rc)
{
    cli_error(cli_errno_code(rc), "cannot %s: %s%s", what, volli_strerror(rc),
              rc == VOLLI_EINVAL ? " (is every user id valid?)" : "");
    finish(s, CLI_EXIT_FAIL);
}

static void print_registered(struct session *s, const char *user_id, int to_stdout)
{
    if (cli_out_json_mode()) {
        check_out(s, cli_out_json(json_pack("{s:s, s:s, s:s}", "type", "registered", "userId",
                                            user_id, "server", url_of(s))));
    } else if (to_stdout) {
        check_out(s, cli_out_line("registered %s on %s", user_id, url_of(s)));
    } else {
        cli_note("registered %s on %s", user_id, url_of(s));
    }
}

/* ---- discover ---- */

/* Returns 0, -1 for an answer of the wrong shape, -2 when stdout failed. */
static int print_discovered(json_t *u)
{
    const char *id = json_string_value(json_object_get(u, "userId"));
    json_t *online = json_object_get(u, "online");
    json_t *key = json_object_get(u, "publicKey");
    if (!id || !json_is_boolean(online) || !(json_is_string(key) || json_is_null(key)))
        return -1;
    int rc;
    if (cli_out_json_mode())
        rc = cli_out_json(json_pack("{s:s, s:s, s:O, s:O}", "type", "discover", "userId", id,
                                    "online", online, "publicKey", key));
    else
        rc = cli_out_line("%s %s %s", id, json_is_true(online) ? "online" : "offline",
                          json_is_string(key) ? json_string_value(key) : "-");
    return rc < 0 ? -2 : 0;
}

static void discover_next(struct session *s);

static void on_discovered(volli_client_t *c, int status, const char *code, const char *json,
                          size_t len, void *ud)
{
    (void)c;
    struct session *s = ud;
    if (status != 0) {
        request_failed(s, status, code, json, len);
        return;
    }
    if (s->finished)
        return;
    json_t *v = json ? json_loadb(json, len, JSON_DECODE_INT_AS_REAL, NULL) : NULL;
    json_t *users = json_object_get(v, "users");
    int bad = 0;
    if (json_is_array(users)) {
        bad = json_array_size(users) != s->batch ? -1 : 0;
        for (size_t i = 0; !bad && i < json_array_size(users); i++)
            bad = print_discovered(json_array_get(users, i));
    } else {
        bad = s->batch != 1 || !json_is_object(v) ? -1 : print_discovered(v);
    }
    json_decref(v);
    if (bad == -2) {
        finish(s, CLI_EXIT_FAIL);
        return;
    }
    if (bad) {
        cli_error("proto", "unexpected answer to discover from %s", url_of(s));
        finish(s, CLI_EXIT_FAIL);
        return;
    }
    s->next += s->batch;
    discover_next(s);
}

static void discover_next(struct session *s)
{
    if (s->finished)
        return;
    if (s->next >= s->args->nids) {
        finish(s, CLI_EXIT_OK);
        return;
    }
    s->batch = s->args->nids - s->next;
    if (s->batch > CLI_BATCH)
        s->batch = CLI_BATCH;
    int rc = volli_discover(s->client, s->args->ids + s->next, s->batch, on_discovered, s);
    if (rc < 0)
        request_refused(s, "discover", rc);
}

/* ---- watch ---- */

static void on_presence(struct session *s, const char *user_id, int online)
{
    for (size_t i = 0; i < s->args->nids; i++) {
        struct watched *w = &s->watched[i];
        if (strcmp(w->id, user_id) != 0)
            continue;
        /* The same state again (the answer to a subscription restored after a reconnect, or
         * an id listed twice) is not a change. */
        if (w->state == online)
            return;
        w->state = online;
        if (cli_out_json_mode()) {
            check_out(s, cli_out_json(json_pack("{s:s, s:s, s:b}", "type", "presence", "userId",
                                                w->id, "online", online)));
        } else {
            check_out(s, cli_out_line("%s %s", w->id, online ? "online" : "offline"));
        }
        return;
    }
}

static void subscribe_next(struct session *s);

static void on_subscribed(volli_client_t *c, int status, const char *code, const char *json,
                          size_t len, void *ud)
{
    (void)c;
    struct session *s = ud;
    if (status == VOLLI_ENOTCONN && !s->finished) {
        /* The library only remembers (and restores) subscriptions the server confirmed: this
         * batch is ours to send again once the client has registered again. */
        s->resubscribe = 1;
        return;
    }
    if (status != 0) {
        request_failed(s, status, code, json, len);
        return;
    }
    if (s->finished)
        return;
    /* The presence answers may come as events, or one of them as this reply. */
    json_t *v = json ? json_loadb(json, len, JSON_DECODE_INT_AS_REAL, NULL) : NULL;
    const char *type = json_string_value(json_object_get(v, "type"));
    const char *id = json_string_value(json_object_get(v, "userId"));
    json_t *online = json_object_get(v, "online");
    if (type && strcmp(type, "presence") == 0 && id && json_is_boolean(online))
        on_presence(s, id, json_is_true(online));
    json_decref(v);
    s->next += s->batch;
    subscribe_next(s);
}

static void subscribe_next(struct session *s)
{
    if (s->finished || s->next >= s->args->nids)
        return;
    s->batch = s->args->nids - s->next;
    if (s->batch > CLI_BATCH)
        s->batch = CLI_BATCH;
    int rc = volli_subscribe(s->client, s->args->ids + s->next, s->batch, on_subscribed, s);
    if (rc < 0)
        request_refused(s, "subscribe", rc);
}

/* ---- send, listen, ping ---- */

static void on_sent(volli_client_t *c, int status, const char *code, const char *json, size_t len,
                    void *ud)
{
    (void)c;
    struct session *s = ud;
    if (status != 0) {
        request_failed(s, status, code, json, len);
        return;
    }
    if (s->finished)
        return;
    char *to = fold(s->args->ids[0]);
    if (!to) {
        cli_error("nomem", "out of memory");
        finish(s, CLI_EXIT_FAIL);
        return;
    }
    int rc;
    if (cli_out_json_mode()) {
        rc = cli_out_json(
            json_pack("{s:s, s:s, s:s}", "type", "sent", "message", s->args->send_type, "to", to));
    } else {
        rc = cli_out_line("sent %s to %s", s->args->send_type, to);
    }
    free(to);
    finish(s, rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK);
}

static void on_relay(struct session *s, const volli_event_t *ev)
{
    const char *type = volli_event_name(ev->type); /* the wire type: "ice-candidate" */
    const char *from = ev->user_id ? ev->user_id : "?";
    if (cli_out_json_mode()) {
        if (ev->json) {
            check_out(s, cli_out_raw_json(ev->json, ev->json_len));
            return;
        }
        json_t *payload =
            ev->payload
                ? json_loadb(ev->payload, ev->payload_len,
                             JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL)
                : NULL;
        check_out(s, cli_out_json(json_pack("{s:s, s:s, s:o*}", "type", type, "from", from,
                                            "payload", payload)));
        return;
    }
    if (!ev->payload) {
        check_out(s, cli_out_line("%s from %s", type, from));
        return;
    }
    char *p = cli_json_compact(ev->payload, ev->payload_len);
    if (!p) {
        cli_error("nomem", "out of memory");
        finish(s, CLI_EXIT_FAIL);
        return;
    }
    check_out(s, cli_out_line("%s from %s: %s", type, from, p));
    free(p);
}

static void on_pong(volli_client_t *c, int status, const char *code, const char *json, size_t len,
                    void *ud)
{
    (void)c;
    struct session *s = ud;
    if (status != 0) {
        request_failed(s, status, code, json, len);
        return;
    }
    if (s->finished)
        return;
    double ms = (double)(uv_hrtime() - s->ping_start_ns) / 1e6;
    int rc;
    if (cli_out_json_mode()) {
        rc = cli_out_json(
            json_pack("{s:s, s:s, s:f}", "type", "pong", "server", url_of(s), "ms", ms));
    } else {
        rc = cli_out_line("pong from %s in %.2f ms", url_of(s), ms);
    }
    finish(s, rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK);
}

/* ---- the session ---- */

/* The first registration (or connection, for a bare ping): run the command. */
static void on_ready(struct session *s, const char *user_id)
{
    s->ready = 1;
    uv_timer_stop(&s->give_up);
    const struct cli_args *a = s->args;
    int rc;
    switch (a->cmd) {
    case CLI_CMD_REGISTER:
        print_registered(s, user_id, 1);
        finish(s, CLI_EXIT_OK);
        break;
    case CLI_CMD_DISCOVER:
        discover_next(s);
        break;
    case CLI_CMD_WATCH:
        print_registered(s, user_id, 0);
        subscribe_next(s);
        break;
    case CLI_CMD_LISTEN:
        print_registered(s, user_id, 0);
        break;
    case CLI_CMD_SEND:
        rc = volli_send(s->client, a->ids[0], a->send_type, a->send_payload, on_sent, s);
        if (rc < 0)
            request_refused(s, "send", rc);
        break;
    case CLI_CMD_PING:
        s->ping_start_ns = uv_hrtime();
        rc = volli_ping(s->client, on_pong, s);
        if (rc < 0)
            request_refused(s, "ping", rc);
        break;
    default:
        finish(s, CLI_EXIT_FAIL);
        break;
    }
}

static void on_error_event(struct session *s, const volli_event_t *ev)
{
    const char *msg = ev->error_message ? ev->error_message : "";
    if (!ev->error_code) {
        if (s->args->verbose)
            cli_note("%s", msg);
        return;
    }
    /* A wire error while unregistered is the answer to our register (key_mismatch,
     * invalid_user_id, ...): retrying cannot help. After `replaced`, reconnecting would only
     * take the id back from the session that replaced us. The pq_ ones stop the library. */
    int fatal = !s->ready || (s->registers && !volli_client_registered(s->client)) ||
                strcmp(ev->error_code, "replaced") == 0 ||
                strcmp(ev->error_code, "pq_bad_signature") == 0 ||
                strcmp(ev->error_code, "pq_unsupported") == 0; /* the library has stopped */
    if (fatal) {
        cli_error(ev->error_code, "%s", msg);
        finish(s, CLI_EXIT_FAIL);
    } else {
        cli_note("server error %s: %s", ev->error_code, msg);
    }
}

static void on_event(volli_client_t *c, const volli_event_t *ev, void *ud)
{
    (void)c;
    struct session *s = ud;
    if (s->finished)
        return;
    switch (ev->type) {
    case VOLLI_EVENT_CONNECTED:
        if (ev->server_url) {
            free(s->server_url);
            s->server_url = strdup(ev->server_url);
        }
        if (s->args->verbose)
            cli_note("connected to %s", url_of(s));
        if (!s->registers && !s->ready)
            on_ready(s, NULL);
        break;
    case VOLLI_EVENT_DISCONNECTED: {
        /* Reported once per lost session; the failed attempts that follow only with -v. */
        const char *url = ev->server_url ? ev->server_url : url_of(s);
        int report = s->up && long_running(s);
        s->up = 0;
        if (report && cli_out_json_mode()) {
            check_out(s, cli_out_json(json_pack("{s:s, s:s, s:i}", "type", "disconnected", "server",
                                                url, "reconnectInMs", (int)ev->reconnect_in_ms)));
        } else if (report || s->args->verbose) {
            cli_note("disconnected from %s; reconnecting in %u ms", url, ev->reconnect_in_ms);
        }
        break;
    }
    case VOLLI_EVENT_REGISTERED:
        s->up = 1;
        if (!s->ready)
            on_ready(s, ev->user_id ? ev->user_id : s->args->user);
        else if (long_running(s))
            print_registered(s, ev->user_id ? ev->user_id : s->args->user, 0);
        if (s->resubscribe) {
            s->resubscribe = 0;
            subscribe_next(s);
        }
        break;
    case VOLLI_EVENT_PRESENCE:
        if (s->args->cmd == CLI_CMD_WATCH && s->ready && ev->user_id)
            on_presence(s, ev->user_id, ev->online != 0);
        break;
    case VOLLI_EVENT_OFFER:
    case VOLLI_EVENT_ANSWER:
    case VOLLI_EVENT_ICE_CANDIDATE:
    case VOLLI_EVENT_BYE:
        if (s->args->cmd == CLI_CMD_LISTEN)
            on_relay(s, ev);
        break;
    case VOLLI_EVENT_ERROR:
        on_error_event(s, ev);
        break;
    }
}

static void on_give_up(uv_timer_t *t)
{
    struct session *s = t->data;
    if (s->ready || s->finished)
        return;
    size_t n = s->args->nservers;
    cli_error("unreachable", "could not %s %s%s within %u ms",
              s->registers ? "connect to and register with" : "connect to", s->args->servers[0],
              n > 1 ? " or the other servers" : "", s->args->timeout_ms);
    finish(s, CLI_EXIT_UNREACHABLE);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct session *s = h->data;
    if (long_running(s)) {
        finish(s, CLI_EXIT_OK);
        return;
    }
    cli_error("canceled", "interrupted by %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    finish(s, CLI_EXIT_FAIL);
}

static void on_log(int level, const char *message, void *ud)
{
    const struct session *s = ud;
    static const char *const names[] = {"error", "warn", "info", "debug"};
    if (s->args->verbose || (s->creating && level == 0))
        cli_note("%s: %s", level >= 0 && level <= 3 ? names[level] : "log", message);
}

/* Loads the key for registering. Returns 0, or reports and returns CLI_EXIT_FAIL. */
static int load_key(const char *path, volli_keypair_t *kp)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            cli_error("io", "key file %s does not exist; create one with: volli keygen --out %s",
                      path, path);
        else
            cli_error("io", "cannot read key file %s: %s", path, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    int rc = volli_key_load(path, kp);
    if (rc == VOLLI_EPERM && !S_ISREG(st.st_mode)) {
        cli_error(cli_errno_code(rc), "key file %s is not a regular file", path);
        return CLI_EXIT_FAIL;
    }
    if (rc == VOLLI_EPERM) {
        /* Like ssh: a private key others can read (or replace) is not private any more. */
        cli_error(cli_errno_code(rc),
                  "key file %s is accessible to group or others (mode %03o); refusing to use "
                  "it. Fix: chmod 600 %s",
                  path, (unsigned)(st.st_mode & 0777), path);
        return CLI_EXIT_FAIL;
    }
    if (rc == VOLLI_EINVAL) {
        cli_error(cli_errno_code(rc), "key file %s does not hold an Ed25519 private key", path);
        return CLI_EXIT_FAIL;
    }
    if (rc < 0) {
        cli_error(cli_errno_code(rc), "cannot load key file %s: %s", path, volli_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

static int init_handles(struct session *s)
{
    if (uv_loop_init(&s->loop) != 0)
        return -1;
    uv_signal_init(&s->loop, &s->sig_int);
    uv_signal_init(&s->loop, &s->sig_term);
    uv_timer_init(&s->loop, &s->give_up);
    uv_timer_init(&s->loop, &s->close_guard);
    s->sig_int.data = s->sig_term.data = s;
    s->give_up.data = s->close_guard.data = s;
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    return 0;
}

static void free_watched(struct session *s)
{
    for (size_t i = 0; s->watched && i < s->args->nids; i++)
        free(s->watched[i].id);
    free(s->watched);
    s->watched = NULL;
}

static int alloc_watched(struct session *s)
{
    s->watched = calloc(s->args->nids, sizeof(*s->watched));
    if (!s->watched)
        return -1;
    for (size_t i = 0; i < s->args->nids; i++) {
        s->watched[i].state = -1;
        if (!(s->watched[i].id = fold(s->args->ids[i])))
            return -1;
    }
    return 0;
}

/* Each connection attempt gets a share of --timeout, so that a server that swallows the
 * connection (no answer, no refusal) cannot use up the whole budget before the next URL. */
static unsigned connect_timeout(const struct cli_args *a)
{
    unsigned t = a->timeout_ms;
    if (a->nservers > 1) {
        unsigned floor = t < 1000 ? t : 1000;
        t = (unsigned)(t / a->nservers);
        if (t < floor)
            t = floor;
    }
    return t;
}

static int run_session(const struct cli_args *a)
{
    struct session s = {.args = a, .registers = a->user != NULL};
    volli_keypair_t kp;
    if (s.registers && load_key(a->key_path, &kp) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    if ((a->cmd == CLI_CMD_WATCH && alloc_watched(&s) < 0) || init_handles(&s) < 0) {
        explicit_bzero(&kp, sizeof(kp));
        free_watched(&s);
        cli_error("nomem", "cannot set up the session: out of memory");
        return CLI_EXIT_FAIL;
    }
    volli_options_t opt = {
        .servers = a->servers,
        .nservers = a->nservers,
        .user_id = a->user,
        .key = s.registers ? &kp : NULL,
        .uv_loop = &s.loop,
        .on_event = on_event,
        .ud = &s,
        .log = on_log,
        .request_timeout_ms = a->timeout_ms,
        .connect_timeout_ms = connect_timeout(a),
        .pq = a->pq,
        .server_key = a->has_server_key ? a->server_key : NULL,
    };
    s.creating = 1;
    int rc = volli_client_new(&opt, &s.client);
    s.creating = 0;
    explicit_bzero(&kp, sizeof(kp)); /* the library keeps its own copy */
    if (rc < 0) {
        /* The library validates the URLs and the id (and logs why): usage errors. */
        int usage = rc == VOLLI_EINVAL || rc == VOLLI_EUNSUPPORTED;
        if (usage && !s.registers)
            fprintf(stderr, "volli: the client library refused the options: a --server URL is "
                            "not valid, or it cannot connect without --user and --key\n");
        else if (usage)
            fprintf(stderr, "volli: the client library refused the options: a --server URL "
                            "or the --user id is not valid\n");
        else
            cli_error(cli_errno_code(rc), "cannot create the client: %s", volli_strerror(rc));
        uv_close((uv_handle_t *)&s.sig_int, NULL);
        uv_close((uv_handle_t *)&s.sig_term, NULL);
        uv_close((uv_handle_t *)&s.give_up, NULL);
        uv_close((uv_handle_t *)&s.close_guard, NULL);
        uv_run(&s.loop, UV_RUN_DEFAULT);
        uv_loop_close(&s.loop);
        free_watched(&s);
        return usage ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    uv_timer_start(&s.give_up, on_give_up, a->timeout_ms, 0);
    rc = volli_client_connect(s.client);
    if (rc < 0) {
        cli_error(cli_errno_code(rc), "cannot connect: %s", volli_strerror(rc));
        finish(&s, CLI_EXIT_FAIL);
    }
    uv_run(&s.loop, UV_RUN_DEFAULT);
    if (!s.finished) { /* the loop ran dry: nothing left that could make progress */
        cli_error("io", "the client stopped without an outcome");
        finish(&s, CLI_EXIT_FAIL);
        uv_run(&s.loop, UV_RUN_DEFAULT);
    }
    if (s.guard_fired)
        return s.exit_code; /* freeing under live handles would be worse than exiting */
    volli_client_free(s.client);
    uv_close((uv_handle_t *)&s.close_guard, NULL);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    uv_loop_close(&s.loop);
    free(s.server_url);
    free_watched(&s);
    return s.exit_code;
}

static int keygen(const struct cli_args *a)
{
    volli_keypair_t kp;
    char pub[64];
    int rc = volli_keygen(&kp);
    if (rc == 0)
        rc = volli_key_public_base64(&kp, pub, sizeof(pub));
    if (rc < 0) {
        explicit_bzero(&kp, sizeof(kp));
        cli_error(cli_errno_code(rc), "cannot create a key: %s", volli_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    rc = volli_key_save(&kp, a->key_path);
    explicit_bzero(&kp, sizeof(kp));
    if (rc == VOLLI_EEXISTS) {
        cli_error(cli_errno_code(rc), "key file %s already exists; not overwriting it",
                  a->key_path);
        return CLI_EXIT_FAIL;
    }
    if (rc < 0) {
        cli_error(cli_errno_code(rc), "cannot write key file %s: %s", a->key_path,
                  volli_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    if (cli_out_json_mode())
        rc = cli_out_json(
            json_pack("{s:s, s:s, s:s}", "type", "key", "publicKey", pub, "file", a->key_path));
    else
        rc = cli_out_line("%s", pub);
    return rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    /* A closed stdout must show up as a write error, not kill a watch mid-line. */
    signal(SIGPIPE, SIG_IGN);
    struct cli_args a;
    int rc = cli_args_parse(argc, argv, &a);
    if (rc != CLI_EXIT_OK) {
        cli_args_free(&a);
        return rc;
    }
    cli_out_init(a.json);
    if (a.help_for != CLI_CMD_NONE) {
        cli_help(a.help_for);
        rc = CLI_EXIT_OK;
    } else if (a.version) {
        printf("volli %s\n", VOLLI_VERSION);
        rc = CLI_EXIT_OK;
    } else if (a.cmd == CLI_CMD_KEYGEN) {
        rc = keygen(&a);
    } else {
        rc = run_session(&a);
    }
    cli_args_free(&a);
    return rc;
}
