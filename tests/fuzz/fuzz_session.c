/* fuzz_session.c: whole-message handling (core/session.c, core/register.c, the directory and
 * the store behind them) on a real, inert server (core/testing.h) with socketless connections.
 *
 * Input: records separated by 0xFF bytes (a byte valid UTF-8 text never holds). A record's first
 * byte picks the sending connection (byte % 3), the rest is one text message. Each input runs on
 * three fresh open WebSockets with fixed nonces, so that corpus files can carry valid register
 * signatures (RFC 8032 test keys 1-3 are alice, bob and carol):
 *   0: registered as "bob"   (nonce AAECAwQFBgcICQoLDA0ODw), a trusted local peer
 *   1: registered as "carol" (nonce EBESExQVFhcYGRobHB0eHw), a trusted local peer
 *   2: not registered        (nonce ICEiIyQlJicoKSorLC0uLw), from 192.0.2.1
 * A message goes to vs_session_on_text only while its connection is open and not doomed (what
 * conn.c's on_message checks); a register waiting for the store is settled before the next
 * message, as conn.c holds later frames until it completes.
 *
 * After each message every frame queued on any connection must be a well-formed server frame:
 * a text frame holding a JSON object with a string "type" the server may send, with the
 * members that type promises (known error codes, folded user ids, discover/presence answers
 * that match the request and the directory, relays carrying the sender's "from" and reaching
 * the "to" user), an "id" only if it is the request's own, a success reply always echoing a
 * valid request id; or a close 4000 after "replaced". A message with no output at all must be
 * an unsubscribe. After the input every connection is destroyed and the server must hold
 * nothing: no connection, directory entry, subscription or waiting register. ASan/LSan/UBSan
 * do the rest. The store keeps what valid registers bound across inputs, as a server would. */
#include "fuzz.h"

#include "common/base64.h"
#include "common/error.h"
#include "common/log.h"
#include "core/config.h"
#include "core/session.h"
#include "core/testing.h"
#include "protocol/envelope.h"
#include "protocol/userid.h"
#include "protocol/wire.h"
#include "transport/conn.h"
#include "transport/ws.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NCONN 3
#define SEP 0xFF
#define MAX_ID_CHARS 64

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_session: check failed at line %d: %s\n", __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char *const nonces[NCONN] = {"AAECAwQFBgcICQoLDA0ODw", "EBESExQVFhcYGRobHB0eHw",
                                          "ICEiIyQlJicoKSorLC0uLw"};
static const char *const users[NCONN] = {"bob", "carol", NULL};
static const char *const addrs[NCONN] = {NULL, NULL, "192.0.2.1"};
/* RFC 8032 test 2 and test 3 public keys. */
static const uint8_t keys[NCONN][32] = {
    {0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a,
     0xa7, 0x4d, 0x1b, 0x7e, 0xbc, 0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4,
     0x96, 0x8c, 0xc0, 0xcd, 0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c},
    {0xfc, 0x51, 0xcd, 0x8e, 0x62, 0x18, 0xa1, 0xa3, 0x8d, 0xa4, 0x7e,
     0xd0, 0x02, 0x30, 0xf0, 0x58, 0x08, 0x16, 0xed, 0x13, 0xba, 0x33,
     0x03, 0xac, 0x5d, 0xeb, 0x91, 0x15, 0x48, 0x90, 0x80, 0x25},
    {0},
};

static const vs_config_t *cfg; /* the server's settings */
static int trace; /* VS_FUZZ_TRACE set: print every message and frame (corpus work) */
static vs_server_t *srv;

/* The run: the connections (NULL once freed) and the message being checked. */
static struct {
    vs_conn_t *c[NCONN];
    size_t seen[NCONN];  /* output bytes already checked */
    int replaced[NCONN]; /* a "replaced" error was queued on it */
    int sender;          /* -1 while connections are being freed */
    json_t *req;         /* the message as jansson reads it, when it is an object */
    const char *type;    /* its "type", when a string */
    json_t *id;          /* its "id", when a string of at most 64 characters */
    size_t frames;       /* frames the message caused, on any connection */
    size_t presence_replies, errors_to_sender;
} run;

/* Small limits, so that one input can reach every refusal. */
static void tune(vs_config_t *c)
{
    c->max_subscriptions = 8;
    c->lookup_rate = 250;
    c->register_rate = 5;
    c->max_queue = 16 * 1024;
}
static void setup(void)
{
    if (srv)
        return;
    vs_log_setup(VS_LOG_ERROR, VS_LOG_TEXT);
    trace = getenv("VS_FUZZ_TRACE") != NULL;
    srv = vs_testing_fuzz_server(tune, &cfg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setup(); /* before libFuzzer installs its signal handlers */
    return 0;
}

/* ---- what the server may send ---- */

static int is_folded_id(json_t *v)
{
    char out[VS_USERID_MAX + 1];
    return json_is_string(v) &&
           vs_userid_fold(json_string_value(v), json_string_length(v), out) == 0 &&
           strlen(out) == json_string_length(v) && strcmp(out, json_string_value(v)) == 0;
}

/* Whether uid is online on one of the run's connections. */
static int online(const char *uid)
{
    for (int k = 0; k < NCONN; k++)
        if (run.c[k] && run.c[k]->user && strcmp(run.c[k]->user->id, uid) == 0)
            return 1;
    return 0;
}

static size_t utf8_chars(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += ((unsigned char)s[i] & 0xC0) != 0x80;
    return count;
}

static void check_known_members(json_t *o, const char *const *allowed)
{
    for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
        const char *key = json_object_iter_key(it);
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(key, *a) == 0;
        CHECK(ok);
    }
}

/* {"userId","online","publicKey"} of one discovered user; want is the folded id asked for. */
static void check_user_entry(json_t *o, json_t *asked)
{
    json_t *uid = json_object_get(o, "userId"), *on = json_object_get(o, "online"),
           *pk = json_object_get(o, "publicKey");
    CHECK(is_folded_id(uid) && json_is_boolean(on) && pk);
    if (asked) {
        char want[VS_USERID_MAX + 1];
        CHECK(json_is_string(asked) &&
              vs_userid_fold(json_string_value(asked), json_string_length(asked), want) == 0);
        CHECK(strcmp(want, json_string_value(uid)) == 0);
    }
    CHECK(json_is_true(on) == online(json_string_value(uid)));
    if (json_is_true(on))
        CHECK(json_is_string(pk));
    if (json_is_string(pk)) {
        uint8_t key[32];
        CHECK(vs_base64_decode(json_string_value(pk), json_string_length(pk), key, sizeof key) ==
              32);
    } else {
        CHECK(json_is_null(pk));
    }
}

static void check_error(int k, json_t *o)
{
    static const char *const allowed[] = {"type", "code", "message", "id", "to", NULL};
    json_t *code = json_object_get(o, "code"), *to = json_object_get(o, "to");
    check_known_members(o, allowed);
    CHECK(json_is_string(code) && json_is_string(json_object_get(o, "message")));
    const char *name = json_string_value(code);
    int known = 0;
    for (int e = 0; e < VS_WERR_COUNT; e++)
        known |= strcmp(name, vs_wire_error_name((vs_wire_error_t)e)) == 0;
    CHECK(known);
    CHECK(!to == (strcmp(name, "peer_offline") != 0));
    if (to)
        CHECK(is_folded_id(to));
    /* The scanner refusing what jansson accepts (or the reverse) shows as a bad_json that
     * carries the id: the scanner's own bad_json never can. */
    if (strcmp(name, "bad_json") == 0)
        CHECK(!json_object_get(o, "id"));
    if (strcmp(name, "replaced") == 0) {
        CHECK(k != run.sender && !json_object_get(o, "id"));
        run.replaced[k] = 1;
    } else {
        CHECK(k == run.sender);
        run.errors_to_sender++;
    }
}

static void check_relay(int k, json_t *o)
{
    vs_conn_t *c = run.c[k], *from = run.sender >= 0 ? run.c[run.sender] : NULL;
    json_t *to = json_object_get(o, "to"), *f = json_object_get(o, "from");
    char folded[VS_USERID_MAX + 1];
    CHECK(from && from->user && c->user);
    CHECK(json_is_string(to) &&
          vs_userid_fold(json_string_value(to), json_string_length(to), folded) == 0);
    CHECK(strcmp(folded, c->user->id) == 0);
    CHECK(json_is_string(f) && strcmp(json_string_value(f), from->user->id) == 0);
    const char *field = vs_msg_relay_field(
        vs_msg_type_from((vs_slice_t){json_string_value(json_object_get(o, "type")),
                                      json_string_length(json_object_get(o, "type"))}));
    if (field)
        CHECK(json_object_get(o, field));
    /* Everything but "from" arrives as sent. */
    CHECK(run.req &&
          json_object_size(run.req) + !json_object_get(run.req, "from") == json_object_size(o));
    for (void *it = json_object_iter(run.req); it; it = json_object_iter_next(run.req, it)) {
        const char *key = json_object_iter_key(it);
        if (strcmp(key, "from") != 0)
            CHECK(json_equal(json_object_iter_value(it), json_object_get(o, key)));
    }
}

static void check_text(int k, const uint8_t *p, size_t n)
{
    vs_conn_t *c = run.c[k];
    if (trace)
        fprintf(stderr, "  -> %d: %.*s\n", k, (int)(n < 300 ? n : 300), (const char *)p);
    CHECK(vs_utf8_valid(p, n));
    json_error_t err;
    json_t *o = json_loadb((const char *)p, n, VS_JSON_FLAGS, &err);
    if (!o)
        fprintf(stderr, "fuzz_session: invalid JSON sent (%s): %.*s\n", err.text,
                (int)(n < 400 ? n : 400), (const char *)p);
    CHECK(o && json_is_object(o));
    json_t *tv = json_object_get(o, "type"), *id = json_object_get(o, "id");
    CHECK(json_is_string(tv));
    const char *type = json_string_value(tv);
    int to_sender = k == run.sender;

    /* Only the request's own id is ever echoed, and a success reply always echoes it. */
    if (id)
        CHECK(run.sender >= 0 && run.req && json_equal(id, json_object_get(run.req, "id")));
    int reply = to_sender && (strcmp(type, "pong") == 0 || strcmp(type, "registered") == 0 ||
                              strcmp(type, "discover") == 0);
    if (reply && run.id)
        CHECK(id && json_equal(id, run.id));

    if (strcmp(type, "error") == 0) {
        check_error(k, o);
    } else if (strcmp(type, "pong") == 0) {
        static const char *const allowed[] = {"type", "id", NULL};
        check_known_members(o, allowed);
        CHECK(to_sender && run.type && strcmp(run.type, "ping") == 0);
    } else if (strcmp(type, "registered") == 0) {
        json_t *uid = json_object_get(o, "userId");
        CHECK(to_sender && run.type && strcmp(run.type, "register") == 0);
        CHECK(is_folded_id(uid) && c->user && strcmp(c->user->id, json_string_value(uid)) == 0);
    } else if (strcmp(type, "discover") == 0) {
        CHECK(to_sender && run.type && strcmp(run.type, "discover") == 0 && c->user);
        json_t *list = json_object_get(o, "users");
        if (list) {
            json_t *asked = json_object_get(run.req, "userIds");
            CHECK(json_is_array(list) && json_is_array(asked) &&
                  json_array_size(list) == json_array_size(asked) && json_array_size(list) > 0);
            for (size_t i = 0; i < json_array_size(list); i++)
                check_user_entry(json_array_get(list, i), json_array_get(asked, i));
        } else {
            check_user_entry(o, json_object_get(run.req, "userId"));
        }
    } else if (strcmp(type, "presence") == 0) {
        static const char *const allowed[] = {"type", "userId", "online", "id", NULL};
        json_t *uid = json_object_get(o, "userId"), *on = json_object_get(o, "online");
        check_known_members(o, allowed);
        CHECK(is_folded_id(uid) && json_is_boolean(on));
        CHECK(json_is_true(on) == online(json_string_value(uid)));
        if (to_sender && run.type && strcmp(run.type, "subscribe") == 0) {
            if (run.id)
                CHECK(id && json_equal(id, run.id));
            run.presence_replies++;
        }
    } else {
        vs_msg_type_t t = vs_msg_type_from((vs_slice_t){type, json_string_length(tv)});
        CHECK(vs_msg_is_relay(t));
        check_relay(k, o);
    }
    json_decref(o);
}

/* Checks the frames queued on connection k since the last check. */
static void check_output(int k)
{
    vs_conn_t *c = run.c[k];
    const uint8_t *buf = (const uint8_t *)c->out;
    size_t off = run.seen[k], n;
    const uint8_t *p;
    int op, rc;
    CHECK(off <= c->out_len);
    while ((rc = vs_testing_next_frame(buf, c->out_len, &off, &op, &p, &n)) == 1) {
        run.frames++;
        if (op == VS_WS_OP_TEXT) {
            check_text(k, p, n);
            continue;
        }
        /* The only close a message can cause: the older connection of a user who registered
         * again elsewhere. */
        CHECK(op == VS_WS_OP_CLOSE && n >= 2 && (p[0] << 8 | p[1]) == 4000 && run.replaced[k]);
        CHECK(c->state == VS_CONN_CLOSING && !c->user);
    }
    CHECK(rc == 0);
    run.seen[k] = off;
}

/* ---- the run ---- */

static void open_conns(void)
{
    CHECK(vs_testing_reset_addresses(srv) == 0);
    memset(&run, 0, sizeof run);
    run.sender = -1;
    for (int k = 0; k < NCONN; k++) {
        vs_conn_t *c = vs_testing_conn_new(srv, addrs[k]);
        CHECK(c && vs_testing_conn_upgrade(c, nonces[k]) == 0);
        if (users[k])
            CHECK(vs_testing_conn_set_user(c, users[k], keys[k]) == 0);
        run.c[k] = c;
    }
}

static void close_conns(void)
{
    run.sender = -1;
    run.req = NULL;
    run.type = NULL;
    run.id = NULL;
    for (int k = 0; k < NCONN; k++) {
        vs_conn_t *c = run.c[k];
        run.c[k] = NULL;
        vs_testing_conn_free(c);
        /* Whoever watched k's user heard it go offline. */
        for (int j = 0; j < NCONN; j++)
            if (run.c[j])
                check_output(j);
    }
    vs_testing_settle(srv);
    CHECK(vs_testing_idle(srv));
}

static void message(int k, const uint8_t *data, size_t len)
{
    vs_conn_t *c = run.c[k];
    if (c->state != VS_CONN_WS || (c->flags & VS_CONN_DOOMED) || len > cfg->max_frame)
        return;
    json_t *req = json_loadb((const char *)data, len, VS_JSON_FLAGS, NULL);
    if (req && !json_is_object(req)) {
        json_decref(req);
        req = NULL;
    }
    run.sender = k;
    run.req = req;
    run.type = req ? json_string_value(json_object_get(req, "type")) : NULL;
    json_t *id = req ? json_object_get(req, "id") : NULL;
    run.id = json_is_string(id) &&
                     utf8_chars(json_string_value(id), json_string_length(id)) <= MAX_ID_CHARS
                 ? id
                 : NULL;
    run.frames = run.presence_replies = run.errors_to_sender = 0;
    if (trace)
        fprintf(stderr, "%d: %.*s\n", k, (int)(len < 300 ? len : 300), (const char *)data);

    /* An exact-size copy, so ASan sees any read past the message; the session may write it. */
    uint8_t *copy = malloc(len ? len : 1);
    CHECK(copy);
    if (len)
        memcpy(copy, data, len);
    vs_session_on_text(c, copy, len);
    vs_testing_settle(srv);
    free(copy);

    for (int j = 0; j < NCONN; j++)
        check_output(j);
    int dropped = (c->flags & VS_CONN_DOOMED) != 0;
    if (run.frames == 0 && !dropped)
        CHECK(run.type && strcmp(run.type, "unsubscribe") == 0);
    if (run.type && strcmp(run.type, "subscribe") == 0 && !run.errors_to_sender && !dropped &&
        c->state == VS_CONN_WS) {
        json_t *ids = json_object_get(req, "userIds");
        CHECK(run.presence_replies == json_array_size(ids));
    }
    json_decref(req);
    run.req = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    open_conns();
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != SEP)
            continue;
        if (i > start)
            message(data[start] % NCONN, data + start + 1, i - start - 1);
        start = i + 1;
    }
    close_conns();
    return 0;
}
