/* session.h: what a registered or unregistered WebSocket client may say, and the replies.
 * It validates every message (the envelope scanner on the relay path, jansson elsewhere),
 * relays, answers discover/subscribe/ping, and hands registers to the group commit. It never
 * touches the socket (conn.h does) and never logs payloads, keys or signatures. */
#ifndef VS_CORE_SESSION_H
#define VS_CORE_SESSION_H

#include "common/buf.h"
#include "protocol/userid.h"
#include "protocol/wire.h"
#include "transport/conn.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* One request being answered. id is the raw contents of the request's "id" string (borrowed
 * from the frame), or NULL. */
typedef struct vs_req {
    vs_conn_t *c;
    vs_msg_type_t type;
    const char *id;
    size_t id_len;
    uint64_t t0;     /* uv_hrtime() at arrival */
    const char *raw; /* the whole message as handled (plaintext), or NULL: see vs_conn_defer */
    size_t raw_len;
} vs_req_t;

/* A text message from c; data is borrowed for the call and may be modified. */
void vs_session_on_text(vs_conn_t *c, uint8_t *data, size_t len);
/* The same for a message that arrived at t0 (uv_hrtime) and is handled again now. */
void vs_session_on_text_at(vs_conn_t *c, uint8_t *data, size_t len, uint64_t t0);
void vs_session_reject_binary(vs_conn_t *c);
void vs_session_error_too_large(vs_conn_t *c);
/* what: "messages" or "bytes". */
void vs_session_error_rate_limited(vs_conn_t *c, const char *what);
void vs_session_error_timeout(vs_conn_t *c);

/* Sends {"type":"error","code":..,"message":..[,"id":..][,"to":..]}; to may be NULL. */
void vs_reply_error(const vs_req_t *rq, vs_wire_error_t code, const char *message, const char *to);
/* Sends a reply built in buf (a JSON object without its closing brace): appends the id and the
 * brace, sends, and records the request's duration. */
void vs_reply_finish(const vs_req_t *rq, vs_buf_t *buf);

/* A connection that presented a valid access token (c->token): registers it as the token's
 * identity right after hello ({"type":"registered",...,"via":"token"}) and joins the granted
 * room when the token says roomJoin. */
void vs_session_token_start(vs_conn_t *c);

/* register.c: puts rq's connection online as uid (borrowed, folded) with key (borrowed, 32
 * bytes; NULL for a token connection), replacing an older connection of uid, and answers
 * `registered` (with "via":"token" when via_token). */
void vs_register_online(const vs_req_t *rq, const char *uid, const uint8_t *key, int via_token);

/* Answers a discover for ids (n of them; single: the one-user form) with keys[i] where found[i]
 * (from the store), unless the directory knows better now. All borrowed. */
void vs_discover_finish(const vs_req_t *rq, int single, const char (*ids)[VS_USERID_MAX + 1],
                        size_t n, const uint8_t (*keys)[32], const int *found);

/* lookup.c: discover's store reads on a worker thread, for a store whose reads may block the
 * loop (PostgreSQL). Queues the lookup of ids (copied; keys[i] is already known where found[i]
 * is set, and only the others are read) and holds rq's connection's later frames until
 * vs_discover_finish (or an `unavailable` error) has answered it. */
void vs_lookup_submit(const vs_req_t *rq, int single, const char (*ids)[VS_USERID_MAX + 1],
                      size_t n, const uint8_t (*keys)[32], const int *found);
/* Called at the end of each loop turn: starts the waiting lookups as one batch. */
void vs_lookup_flush(vs_server_t *s);
/* c goes away: its lookups are answered to nobody. */
void vs_lookup_cancel(vs_conn_t *c);
/* 1 while lookups are queued or in flight. */
int vs_lookup_busy(const vs_server_t *s);

/* register.c: answers `registered` for uid (borrowed). */
void vs_register_reply(const vs_req_t *rq, const char *uid, int via_token);

/* register.c: the register request and the group commit of new key bindings. */
void vs_register_handle(const vs_req_t *rq, json_t *root);
/* Called at the end of each loop turn: submits waiting bindings as one batch. */
void vs_register_submit(vs_server_t *s);
/* Forgets c's pending register (c is going away); the binding may still commit. */
void vs_session_cancel_register(vs_conn_t *c);

#endif
