/* client.c: the session. One connection attempt at a time to one of the server URLs; on
 * hello it registers (Ed25519 signature over the connection's nonce), restores the presence
 * subscriptions and reports REGISTERED; on loss it fails the pending requests, waits a backoff
 * delay (exponential, full jitter) and tries the next URL. Two outcomes stop it for good:
 * volli_client_close, and a permanent error (the server refused our identity, or another
 * connection replaced us), after which reconnecting could only fail again or fight the other
 * connection.
 *
 * Re-entrancy: the application may call anything, including volli_client_close and
 * volli_client_free, from its callbacks. Every entry from the loop is bracketed by
 * vl_enter/vl_leave, state is re-checked after each callback, and a free requested from a
 * callback happens in the outermost vl_leave. */
#include "client_impl.h"

#include "common/base64.h"
#include "transport/ws.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_REQUEST_TIMEOUT_MS 10000
#define DEFAULT_BACKOFF_INITIAL_MS 200
#define DEFAULT_BACKOFF_MAX_MS 10000
#define DEFAULT_IDLE_TIMEOUT_MS 65000 /* two server pings (30 s) plus slack */
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define MAX_SERVERS 64

static void on_ws_open(void *ud);
static void on_ws_text(void *ud, char *data, size_t len);
static void on_ws_closed(void *ud, int err, unsigned close_code, const char *why);
static const vl_ws_events_t ws_events = {on_ws_open, on_ws_text, on_ws_closed};

/* ---- life cycle ---- */

static void free_all(volli_client_t *c)
{
    for (size_t i = 0; i < c->nurls; i++)
        vl_url_free(&c->urls[i]);
    free(c->urls);
    vl_subs_free(c);
    free(c->text);
    free(c->payload);
    vl_pq_free(c);
    OPENSSL_cleanse(&c->key, sizeof c->key);
    free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    volli_client_t *c = h->data;
    if (--c->timers_open == 0 && !c->own)
        free_all(c);
}

static void destroy(volli_client_t *c)
{
    if (c->destroyed)
        return;
    c->destroyed = 1;
    if (c->ws) {
        vl_ws_detach(c->ws);
        c->ws = NULL;
    }
    vl_request_t *r;
    while ((r = c->req_head) != NULL) { /* none left after close; no callbacks here anyway */
        c->req_head = r->next;
        vl_req_free(r);
    }
    c->req_tail = NULL;
    c->timers_open = 3;
    uv_close((uv_handle_t *)&c->req_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->retry_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->giveup_timer, on_timer_closed);
    if (c->own) {
        /* Only our handles live on our loop: this returns once they are closed. */
        uv_run(c->loop, UV_RUN_DEFAULT);
        uv_loop_close(c->loop);
        free_all(c);
    }
}

void vl_enter(volli_client_t *c)
{
    c->depth++;
}

void vl_leave(volli_client_t *c)
{
    if (--c->depth > 0 || !c->free_pending)
        return;
    if (c->running)
        uv_stop(c->loop); /* volli_client_run frees it once uv_run has returned */
    else
        destroy(c);
}

/* The client will do nothing more by itself: let volli_client_run return. */
static void finished(volli_client_t *c)
{
    if (c->running)
        uv_stop(c->loop);
}

void vl_emit(volli_client_t *c, volli_event_t *ev)
{
    if (!c->on_event || c->state == C_CLOSING || c->state == C_CLOSED || c->free_pending)
        return;
    if (!ev->server_url)
        ev->server_url = c->urls[c->cur].text;
    vl_enter(c);
    c->on_event(c, ev, c->ud);
    vl_leave(c);
}

static void emit_error(volli_client_t *c, const char *code, const char *message)
{
    volli_event_t ev = {.type = VOLLI_EVENT_ERROR, .error_code = code, .error_message = message};
    vl_emit(c, &ev);
}

/* ---- connecting ---- */

static int start_attempt(volli_client_t *c)
{
    vl_log(&c->log, VL_LOG_DEBUG, "connecting to %s", c->urls[c->cur].text);
    int rc = vl_ws_connect(c->loop, &c->urls[c->cur], &c->wscfg, &ws_events, c, &c->log, &c->ws);
    if (rc != 0) {
        c->ws = NULL;
        return rc;
    }
    c->state = C_CONNECTING;
    return 0;
}

static void on_retry(uv_timer_t *t)
{
    volli_client_t *c = t->data;
    vl_enter(c);
    if (c->state == C_WAITING) {
        int rc = start_attempt(c);
        if (rc != 0) {
            unsigned delay = vl_backoff_next(&c->backoff);
            vl_log(&c->log, VL_LOG_WARN, "cannot start connecting (%s); retrying in %u ms",
                   volli_strerror(rc), delay);
            uv_timer_start(&c->retry_timer, on_retry, delay, 0);
        }
    }
    vl_leave(c);
}

void vl_drop(volli_client_t *c, int err, const char *why)
{
    if (!c->ws || c->state < C_CONNECTING || c->state > C_REGISTERED)
        return;
    vl_log(&c->log, VL_LOG_WARN, "dropping the connection to %s: %s", c->urls[c->cur].text, why);
    c->state = C_DROPPING;
    vl_ws_abort(c->ws, err, why);
}

/* Stops for good after an error that reconnecting cannot fix. */
static void stop_permanently(volli_client_t *c, const char *code, const char *message)
{
    vl_log(&c->log, VL_LOG_ERROR, "%s: %s; not reconnecting", code, message ? message : "");
    c->state = C_STOPPING;
    emit_error(c, code, message);
    if (c->state == C_STOPPING && c->ws)
        vl_ws_close(c->ws, VS_WS_CLOSE_NORMAL);
}

static void on_ws_open(void *ud)
{
    volli_client_t *c = ud;
    vl_enter(c);
    if (c->state == C_CONNECTING) {
        /* The hello must follow at once; a server that never sends it is dropped. */
        vl_request_t *r = vl_req_new(c, R_HELLO, NULL, NULL);
        if (r)
            vl_req_add(c, r);
        else
            vl_drop(c, VOLLI_ENOMEM, "out of memory");
    }
    vl_leave(c);
}

static void on_ws_closed(void *ud, int err, unsigned close_code, const char *why)
{
    volli_client_t *c = ud;
    const char *url = c->urls[c->cur].text;
    vl_enter(c);
    c->ws = NULL;
    vl_pq_reset(c);
    int prev = c->state;
    if (prev == C_CLOSING) {
        c->state = C_CLOSED;
        finished(c);
    } else if (prev == C_STOPPING || close_code == 4000) {
        int replaced_now = prev != C_STOPPING; /* 4000 without the "replaced" error first */
        c->state = C_STOPPED;
        c->run_result = VOLLI_EWIRE;
        vl_req_fail_all(c, VOLLI_ENOTCONN);
        if (replaced_now && c->state == C_STOPPED) {
            vl_log(&c->log, VL_LOG_ERROR, "replaced by another connection; not reconnecting");
            emit_error(c, "replaced", "another connection registered the same user id");
        }
        volli_event_t ev = {
            .type = VOLLI_EVENT_DISCONNECTED, .server_url = url, .error_message = why};
        if (c->state == C_STOPPED)
            vl_emit(c, &ev);
        finished(c);
    } else {
        /* A draining server asked us to move: at once, to the next URL. */
        unsigned delay = c->moving ? 0 : vl_backoff_next(&c->backoff);
        c->moving = 0;
        c->cur = (c->cur + 1) % c->nurls;
        c->state = C_WAITING;
        uv_timer_start(&c->retry_timer, on_retry, delay, 0);
        vl_log(&c->log, VL_LOG_INFO, "disconnected from %s (%s: %s); next attempt: %s in %u ms",
               url, err ? volli_strerror(err) : "closed", why, c->urls[c->cur].text, delay);
        vl_req_fail_all(c, VOLLI_ENOTCONN);
        volli_event_t ev = {.type = VOLLI_EVENT_DISCONNECTED,
                            .server_url = url,
                            .reconnect_in_ms = delay,
                            .error_message = why};
        if (c->state == C_WAITING)
            vl_emit(c, &ev);
    }
    vl_leave(c);
}

/* ---- registration ---- */

static void send_register(volli_client_t *c)
{
    char text[sizeof c->nonce + VS_USERID_MAX + 32];
    uint8_t sig[64];
    char sig64[96];
    int n = vs_register_message(c->nonce, c->user_id, text, sizeof text);
    if (n < 0) {
        vl_drop(c, VOLLI_EPROTO, "the server's hello nonce is unusable");
        return;
    }
    int rc = vl_sign(&c->key, text, (size_t)n, sig);
    if (rc != 0) {
        vl_drop(c, rc, "signing the register message failed");
        return;
    }
    vs_base64_encode(sig, sizeof sig, sig64);
    vl_request_t *r = vl_req_new(c, R_REGISTER, NULL, NULL);
    if (!r) {
        vl_drop(c, VOLLI_ENOMEM, "out of memory");
        return;
    }
    /* Every value is [a-z0-9._+@-] or base64: nothing to escape. */
    char msg[512];
    n = snprintf(msg, sizeof msg,
                 "{\"type\":\"register\",\"id\":\"%s\",\"userId\":\"%s\",\"publicKey\":\"%s\","
                 "\"signature\":\"%s\"}",
                 r->id, c->user_id, c->public_key, sig64);
    const char *texts[1] = {msg};
    size_t lens[1] = {(size_t)n};
    rc = vl_send(c, texts, lens, 1);
    if (rc != 0) {
        vl_req_free(r);
        vl_drop(c, rc, "could not send register");
        return;
    }
    vl_req_add(c, r);
}

static void on_registered(volli_client_t *c)
{
    c->state = C_REGISTERED;
    c->ever_registered = 1;
    vl_backoff_reset(&c->backoff);
    uv_timer_stop(&c->giveup_timer);
    vl_log(&c->log, VL_LOG_INFO, "registered as %s on %s (%zu subscriptions to restore)",
           c->user_id, c->urls[c->cur].text, c->nsubs);
    int rc = vl_restore_subscriptions(c);
    if (rc != 0) {
        vl_drop(c, rc, "could not restore the subscriptions");
        return;
    }
    volli_event_t ev = {.type = VOLLI_EVENT_REGISTERED, .user_id = c->user_id};
    vl_emit(c, &ev);
}

static int is_permanent(const char *code)
{
    return code && (strcmp(code, "key_mismatch") == 0 || strcmp(code, "bad_signature") == 0 ||
                    strcmp(code, "invalid_user_id") == 0);
}

void vl_session_request_done(volli_client_t *c, vl_request_t *r, int status, const char *code,
                             json_t *root)
{
    const char *message = root ? json_string_value(json_object_get(root, "message")) : NULL;
    if (status == VOLLI_ENOTCONN || status == VOLLI_ECANCELED)
        return; /* the connection is already gone */
    if (status == VOLLI_ETIMEDOUT) {
        vl_drop(c, VOLLI_ETIMEDOUT,
                r->kind == R_HELLO ? "no hello from the server" : "the server stopped answering");
        return;
    }
    if (r->kind == R_REGISTER) {
        if (status == 0 && c->state == C_REGISTERING)
            on_registered(c);
        else if (status == VOLLI_EWIRE && is_permanent(code))
            stop_permanently(c, code, message);
        else if (status == VOLLI_EWIRE) {
            emit_error(c, code, message);
            vl_drop(c, VOLLI_EWIRE, "register refused");
        }
    } else if (r->kind == R_PQ && status == VOLLI_EWIRE) {
        emit_error(c, code, message);
        vl_drop(c, VOLLI_EWIRE, "the post-quantum handshake was refused");
    } else if (r->kind == R_RESTORE && status == VOLLI_EWIRE) {
        vl_log(&c->log, VL_LOG_ERROR, "restoring subscriptions failed: %s", code ? code : "?");
        emit_error(c, code, message);
    }
}

/* ---- incoming messages ---- */

static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    char *p = realloc(*buf, need);
    if (!p)
        return VOLLI_ENOMEM;
    *buf = p;
    *cap = need;
    return 0;
}

static void session_open(volli_client_t *c);

static void on_hello(volli_client_t *c, json_t *root)
{
    const char *nonce = json_string_value(json_object_get(root, "nonce"));
    vl_request_t *r = c->req_head;
    while (r && r->kind != R_HELLO)
        r = r->next;
    if (c->state != C_CONNECTING || !r)
        return;
    vl_req_complete(c, r, 0, NULL, NULL, 0, NULL);
    if (!nonce || strlen(nonce) >= sizeof c->nonce) {
        vl_drop(c, VOLLI_EPROTO, "hello without a usable nonce");
        return;
    }
    strcpy(c->nonce, nonce);
    if (c->pq.alg) {
        /* Nothing else is sent before the session is set up: register travels inside it. */
        const char *why = NULL;
        if (vl_pq_on_hello(c, root, &why) != 0) {
            stop_permanently(c, "pq_unsupported", why);
            return;
        }
        int rc = vl_pq_handshake(c);
        if (rc != 0)
            vl_drop(c, rc, "could not send the post-quantum handshake");
        return;
    }
    session_open(c);
}

/* The connection is usable (after hello, or after the post-quantum handshake). */
static void session_open(volli_client_t *c)
{
    vl_log(&c->log, VL_LOG_INFO, "connected to %s%s", c->urls[c->cur].text,
           c->pq.active ? " (post-quantum session)" : "");
    if (c->anonymous) {
        /* Nothing to register: this is as far as a connect-only session goes. */
        c->state = C_OPEN;
        c->ever_registered = 1;
        vl_backoff_reset(&c->backoff);
        uv_timer_stop(&c->giveup_timer);
    } else {
        c->state = C_REGISTERING;
    }
    volli_event_t ev = {.type = VOLLI_EVENT_CONNECTED};
    vl_emit(c, &ev);
    if (c->state == C_REGISTERING)
        send_register(c);
}

static void on_relay(volli_client_t *c, volli_event_type_t type, const char *member, json_t *root,
                     const char *text, size_t len)
{
    volli_event_t ev = {.type = type, .json = text, .json_len = len};
    ev.user_id = json_string_value(json_object_get(root, "from"));
    size_t s, e;
    int found = vl_json_member_span(text, len, member, &s, &e);
    if (found < 0) {
        vl_drop(c, found, "out of memory");
        return;
    }
    if (found) {
        if (reserve(&c->payload, &c->payload_cap, e - s + 1) != 0) {
            vl_drop(c, VOLLI_ENOMEM, "out of memory");
            return;
        }
        memcpy(c->payload, text + s, e - s);
        c->payload[e - s] = '\0';
        ev.payload = c->payload;
        ev.payload_len = e - s;
    }
    vl_emit(c, &ev);
}

static void on_pq_response(volli_client_t *c, vl_request_t *r, json_t *root)
{
    if (!r || r->kind != R_PQ) {
        vl_drop(c, VOLLI_EPROTO, "an unexpected pq_handshake_response");
        return;
    }
    int rc = vl_pq_on_response(c, root);
    if (rc == VOLLI_ECRYPTO) {
        stop_permanently(c, "pq_bad_signature",
                         "the post-quantum handshake is not signed by the trusted server key");
        return;
    }
    if (rc != 0) {
        vl_drop(c, rc,
                rc == VOLLI_EPROTO ? "a malformed pq_handshake_response"
                                   : "could not complete the post-quantum handshake");
        return;
    }
    vl_req_complete(c, r, 0, NULL, NULL, 0, NULL);
    if (c->state == C_CONNECTING)
        session_open(c);
}

static void dispatch(volli_client_t *c, json_t *root, const char *text, size_t len)
{
    const char *type = json_string_value(json_object_get(root, "type"));
    const char *id = json_string_value(json_object_get(root, "id"));
    vl_request_t *r;
    if (!type) {
        vl_log(&c->log, VL_LOG_WARN, "ignoring a message without a type");
    } else if (strcmp(type, "hello") == 0) {
        on_hello(c, root);
    } else if (strcmp(type, "registered") == 0 || strcmp(type, "pong") == 0 ||
               strcmp(type, "discover") == 0) {
        /* A barrier ping's pong is not a reply the application asked for: no json then. */
        int barrier = 0;
        if ((r = vl_req_find(c, id)) != NULL) {
            barrier = r->kind == R_SUBSCRIBE || r->kind == R_UNSUBSCRIBE || r->kind == R_SEND ||
                      r->kind == R_RESTORE;
            vl_req_complete(c, r, 0, NULL, barrier ? NULL : text, len, root);
        }
    } else if (strcmp(type, "error") == 0) {
        const char *code = json_string_value(json_object_get(root, "code"));
        const char *message = json_string_value(json_object_get(root, "message"));
        if ((r = vl_req_find(c, id)) != NULL)
            vl_req_complete(c, r, VOLLI_EWIRE, code ? code : "", text, len, root);
        else if (code && strcmp(code, "replaced") == 0)
            stop_permanently(c, code, message);
        else if (!id)
            emit_error(c, code, message);
    } else if (strcmp(type, "pq_handshake_response") == 0 && c->pq.alg && c->pq.pending) {
        on_pq_response(c, vl_req_find(c, id), root);
    } else if (strcmp(type, "reconnect") == 0) {
        /* The server is going away (drain): leave now, before it closes us, and let the next
         * server take over; the subscriptions are restored there. */
        const char *reason = json_string_value(json_object_get(root, "reason"));
        vl_log(&c->log, VL_LOG_INFO, "%s asks clients to reconnect elsewhere (%s)",
               c->urls[c->cur].text, reason ? reason : "no reason given");
        c->moving = 1;
        vl_drop(c, 0, "the server asked to reconnect elsewhere");
    } else if (strcmp(type, "rekey_required") == 0 && c->pq.active) {
        /* A rekey already under way answers it too. */
        int rc = c->pq.pending ? 0 : vl_pq_handshake(c);
        if (rc != 0)
            vl_drop(c, rc, "could not send the rekey handshake");
    } else if (strcmp(type, "presence") == 0) {
        volli_event_t ev = {.type = VOLLI_EVENT_PRESENCE, .json = text, .json_len = len};
        ev.user_id = json_string_value(json_object_get(root, "userId"));
        ev.online = json_is_true(json_object_get(root, "online"));
        if (ev.user_id)
            vl_emit(c, &ev);
    } else if (strcmp(type, "offer") == 0) {
        on_relay(c, VOLLI_EVENT_OFFER, "offer", root, text, len);
    } else if (strcmp(type, "answer") == 0) {
        on_relay(c, VOLLI_EVENT_ANSWER, "answer", root, text, len);
    } else if (strcmp(type, "ice-candidate") == 0) {
        on_relay(c, VOLLI_EVENT_ICE_CANDIDATE, "candidate", root, text, len);
    } else if (strcmp(type, "bye") == 0) {
        on_relay(c, VOLLI_EVENT_BYE, "reason", root, text, len);
    } else {
        vl_log(&c->log, VL_LOG_DEBUG, "ignoring a message of type %.32s", type);
    }
}

static void on_ws_text(void *ud, char *data, size_t len)
{
    volli_client_t *c = ud;
    if (c->state < C_CONNECTING || c->state > C_REGISTERED)
        return;
    vl_enter(c);
    if (c->pq.active) {
        int rc = vl_pq_open(c, data, len, &data, &len);
        if (rc != 0) {
            vl_drop(c, rc,
                    rc == VOLLI_ENOMEM ? "out of memory" : "a frame that is not a valid enc frame");
            vl_leave(c);
            return;
        }
    }
    /* A NUL-terminated copy: events hand the application C strings. */
    if (reserve(&c->text, &c->text_cap, len + 1) != 0) {
        vl_drop(c, VOLLI_ENOMEM, "out of memory");
        vl_leave(c);
        return;
    }
    memcpy(c->text, data, len);
    c->text[len] = '\0';
    json_error_t err;
    json_t *root = json_loadb(c->text, len, VL_JSON_FLAGS, &err);
    if (!root) {
        /* The server only sends (and relays) JSON it parsed with these very flags, so this is
           out-of-memory or a broken server: either way a message is lost, and dropping the
           connection is the only way the application learns of it. */
        int oom = json_error_code(&err) == json_error_out_of_memory;
        vl_drop(c, oom ? VOLLI_ENOMEM : VOLLI_EPROTO,
                oom ? "out of memory" : "the server sent a message that is not valid JSON");
    } else if (!json_is_object(root)) {
        vl_log(&c->log, VL_LOG_WARN, "ignoring a message that is not a JSON object");
    } else {
        dispatch(c, root, c->text, len);
    }
    json_decref(root);
    vl_leave(c);
}

/* ---- the public API ---- */

static int copy_options(volli_client_t *c, const volli_options_t *o)
{
    char folded[VS_USERID_MAX + 1];
    if (!o->servers || o->nservers == 0 || o->nservers > MAX_SERVERS || !o->user_id != !o->key)
        return VOLLI_EINVAL;
    c->anonymous = !o->user_id;
    if (!c->anonymous) {
        if (vs_userid_fold(o->user_id, strlen(o->user_id), folded) != 0)
            return VOLLI_EINVAL;
        strcpy(c->user_id, folded);
        uint8_t pub[32];
        if (vl_public_from_seed(o->key->private_key, pub) != 0)
            return VOLLI_ECRYPTO;
        if (memcmp(pub, o->key->public_key, 32) != 0)
            return VOLLI_EINVAL;
        c->key = *o->key;
        vs_base64_encode(pub, 32, c->public_key);
    }
    if (o->pq < VOLLI_PQ_OFF || o->pq > VOLLI_PQ_X25519MLKEM768)
        return VOLLI_EINVAL;
    c->pq.alg = o->pq;
    if (o->server_key) {
        memcpy(c->pq.trust, o->server_key, 32);
        c->pq.trusted = c->pq.pinned = 1;
    }
    if (!(c->urls = calloc(o->nservers, sizeof *c->urls)))
        return VOLLI_ENOMEM;
    c->nurls = o->nservers;
    for (size_t i = 0; i < o->nservers; i++) {
        int rc = vl_url_parse(o->servers[i], &c->urls[i]);
        if (rc == VOLLI_EUNSUPPORTED)
            vl_log(&c->log, VL_LOG_ERROR,
                   "%s: wss:// (TLS) is not supported by this libvolli; use ws:// (behind a "
                   "TLS-terminating proxy if needed)",
                   o->servers[i]);
        else if (rc == VOLLI_EINVAL)
            vl_log(&c->log, VL_LOG_ERROR, "server URL %zu is not ws://host[:port][/path]", i);
        if (rc != 0)
            return rc;
    }
    return 0;
}

VOLLI_PUBLIC int volli_client_new(const volli_options_t *opt, volli_client_t **out)
{
    if (!opt || !out)
        return VOLLI_EINVAL;
    *out = NULL;
    volli_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return VOLLI_ENOMEM;
    c->log.cb = opt->log;
    c->log.ud = opt->ud;
    c->on_event = opt->on_event;
    c->ud = opt->ud;
    int rc = copy_options(c, opt);
    uint64_t seed = 0;
    if (rc == 0 && RAND_bytes((unsigned char *)&seed, sizeof seed) != 1)
        rc = VOLLI_ECRYPTO;
    if (rc == 0 && !opt->uv_loop) {
        if (uv_loop_init(&c->own_loop) != 0)
            rc = VOLLI_ENOMEM;
        c->own = rc == 0;
    }
    if (rc != 0) {
        free_all(c);
        return rc;
    }
    c->loop = c->own ? &c->own_loop : opt->uv_loop;
    c->request_timeout_ms =
        opt->request_timeout_ms ? opt->request_timeout_ms : DEFAULT_REQUEST_TIMEOUT_MS;
    c->wscfg.idle_timeout_ms =
        opt->idle_timeout_ms ? opt->idle_timeout_ms : DEFAULT_IDLE_TIMEOUT_MS;
    c->wscfg.connect_timeout_ms =
        opt->connect_timeout_ms ? opt->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    c->wscfg.max_message = VL_MAX_MESSAGE;
    vl_backoff_init(&c->backoff,
                    opt->backoff_initial_ms ? opt->backoff_initial_ms : DEFAULT_BACKOFF_INITIAL_MS,
                    opt->backoff_max_ms ? opt->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS, seed);
    uv_timer_init(c->loop, &c->req_timer);
    uv_timer_init(c->loop, &c->retry_timer);
    uv_timer_init(c->loop, &c->giveup_timer);
    c->req_timer.data = c->retry_timer.data = c->giveup_timer.data = c;
    c->state = C_IDLE;
    *out = c;
    return 0;
}

VOLLI_PUBLIC int volli_client_connect(volli_client_t *c)
{
    if (!c || c->state == C_CLOSING || c->state == C_CLOSED || c->free_pending)
        return VOLLI_EINVAL;
    if (c->state == C_STOPPING)
        return VOLLI_EINVAL; /* still closing: retry from the DISCONNECTED event */
    if (c->state != C_IDLE && c->state != C_STOPPED)
        return 0;
    vl_backoff_reset(&c->backoff);
    c->run_result = 0;
    return start_attempt(c);
}

static void on_give_up(uv_timer_t *t)
{
    volli_client_t *c = t->data;
    vl_enter(c);
    if (!c->ever_registered) {
        vl_log(&c->log, VL_LOG_ERROR, "no server reachable; giving up");
        volli_client_close(c);
        c->run_result = VOLLI_EUNREACHABLE;
    }
    vl_leave(c);
}

VOLLI_PUBLIC int volli_client_run(volli_client_t *c, unsigned give_up_ms)
{
    if (!c || !c->own || c->running || c->free_pending)
        return VOLLI_EINVAL;
    if (c->state == C_CLOSED)
        return c->run_result;
    if (c->state == C_STOPPED)
        return VOLLI_EWIRE;
    if (c->state == C_IDLE) {
        int rc = volli_client_connect(c);
        if (rc != 0)
            return rc;
    }
    if (give_up_ms > 0 && !c->ever_registered)
        uv_timer_start(&c->giveup_timer, on_give_up, give_up_ms, 0);
    c->running = 1;
    uv_run(c->loop, UV_RUN_DEFAULT);
    c->running = 0;
    int rc = c->run_result;
    if (c->free_pending && c->depth == 0)
        destroy(c);
    else
        uv_timer_stop(&c->giveup_timer);
    return rc;
}

VOLLI_PUBLIC void volli_client_close(volli_client_t *c)
{
    if (!c || c->state == C_CLOSING || c->state == C_CLOSED)
        return;
    vl_enter(c);
    c->state = C_CLOSING;
    uv_timer_stop(&c->retry_timer);
    uv_timer_stop(&c->giveup_timer);
    vl_req_fail_all(c, VOLLI_ECANCELED);
    if (c->ws) {
        vl_ws_close(c->ws, VS_WS_CLOSE_NORMAL);
    } else {
        c->state = C_CLOSED;
        finished(c);
    }
    vl_leave(c);
}

VOLLI_PUBLIC void volli_client_free(volli_client_t *c)
{
    if (!c || c->free_pending)
        return;
    c->free_pending = 1;
    vl_enter(c);
    volli_client_close(c);
    vl_leave(c);
}

VOLLI_PUBLIC int volli_client_registered(const volli_client_t *c)
{
    return c && c->state == C_REGISTERED;
}
