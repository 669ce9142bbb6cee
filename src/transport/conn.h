/* conn.h: one client connection: its socket, the HTTP handshake, WebSocket framing state and
 * the outgoing queue. It owns the connection's memory and is the only module that touches the
 * socket. A connection is destroyed only at a safe point of the loop (the flush check or a
 * top-level read callback), never inside a callback that may still use it: everything else
 * marks it doomed or closing. An idle open connection holds no read or write buffer. */
#ifndef VS_TRANSPORT_CONN_H
#define VS_TRANSPORT_CONN_H

#include "core/limits.h"
#include "crypto/token.h"
#include "directory/rooms.h"
#include "directory/directory.h"
#include "transport/ws.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct vs_server vs_server_t;
typedef struct vs_conn vs_conn_t;
typedef struct vs_http_req vs_http_req_t;
typedef struct vs_pending_reg vs_pending_reg_t;
typedef struct vs_pq vs_pq_t;

typedef struct vs_conn_list {
    vs_conn_t *head;
    size_t n;
} vs_conn_list_t;

enum vs_conn_state {
    VS_CONN_HTTP = 0, /* reading the request */
    VS_CONN_WS,       /* open WebSocket */
    VS_CONN_CLOSING,  /* output draining, then shutdown; waiting for the peer's close/EOF */
};

enum vs_conn_flag {
    VS_CONN_IN_FLUSH = 1 << 0,   /* on the server's flush list */
    VS_CONN_DOOMED = 1 << 1,     /* destroy at the next safe point */
    VS_CONN_SHUTDOWN = 1 << 2,   /* write side shut down */
    VS_CONN_READ_HELD = 1 << 3,  /* reading paused while a register waits for the store */
    VS_CONN_UPGRADED = 1 << 4,   /* the WebSocket parser is initialized */
    VS_CONN_TRUSTED = 1 << 5,    /* the peer is a trusted proxy (or local): see trusted-proxies */
    VS_CONN_API = 1 << 6,        /* accepted on the HTTP API port: no WebSocket there */
    VS_CONN_SYNCED = 1 << 7,     /* handling a message again after a cluster sync (defer) */
};

struct vs_conn {
    uv_tcp_t tcp;
    vs_server_t *srv;
    vs_conn_t *prev, *next;   /* in srv->active or srv->pending */
    vs_conn_list_t *list;
    vs_conn_t *flush_next;
    vs_http_req_t *http;      /* only during the handshake */
    vs_ws_parser_t ws;
    char *out;                /* frames queued this loop turn */
    uint32_t out_len, out_cap;
    uv_write_t *wreq;         /* a write the kernel did not take at once; owns its buffer */
    uint32_t inflight;
    vs_user_t *user;          /* directory entry once registered */
    vs_watcher_t watch;       /* presence subscriptions */
    vs_room_set_t rooms;      /* room memberships */
    vs_token_claims_t *token; /* the access token's claims, owned; NULL without a token */
    vs_pending_reg_t *reg;    /* a register waiting for the store */
    vs_pq_t *pq;              /* the post-quantum session, owned (core/pq.h); NULL before it */
    char *held;               /* frames that arrived while reg was pending */
    char *deferred;           /* a message to handle again: see vs_conn_defer */
    uint32_t held_len;
    uint64_t since;           /* ms: accepted, upgraded, or closing started */
    vs_ip_entry_t *ip;        /* its source address's entry (connection count, register rate) */
    vs_bucket_t rate_msgs, rate_bytes, rate_lookups;
    uint32_t strikes;         /* rate-limited messages in a row */
    uint32_t cl_serial;       /* cluster mode: this connection's registration (see cluster.h) */
    uint64_t cl_seq;          /* its place in the cluster's order; 0 while not yet confirmed */
    uint64_t cl_defer;        /* the newest other registration of its user seen meanwhile */
    uint16_t cl_defer_node;   /* ...and the node it was on */
    uint8_t state, flags, pings_missed;
    uint8_t waiting;          /* a request waits on the cluster: later frames are held */
    char nonce[23];           /* 128 random bits, base64url */
};

/* Puts c at the head of l (newest first) and remembers l as its list. */
void vs_conn_list_add(vs_conn_list_t *l, vs_conn_t *c);
/* Counts c against the source address addr; VS_ETOOBIG (and nothing counted) when that address
 * is at max-connections-per-ip. */
int vs_conn_attach_ip(vs_conn_t *c, const char *addr);
/* Accept callbacks for the WebSocket listener and the HTTP API listener. */
void vs_conn_on_connection(uv_stream_t *listener, int status);
void vs_conn_on_api_connection(uv_stream_t *listener, int status);

/* Queues a complete frame with a payload of len bytes and returns where the payload goes
 * (the caller fills exactly len bytes before returning to the loop), or NULL when the
 * connection is closing or just exceeded max-queue (it is then doomed). The payload goes out
 * as it is: a text message to a connection with a post-quantum session (c->pq) must go
 * through vs_conn_send_text, which encrypts it. */
char *vs_conn_frame(vs_conn_t *c, int opcode, size_t len);
/* Queues a text message (data borrowed, copied); as an `enc` frame when c has a post-quantum
 * session. */
void vs_conn_send_text(vs_conn_t *c, const char *data, size_t len);
/* Starts the close handshake: sends a close frame and stops handling messages. Detaches the
 * connection from the directory at once. */
void vs_conn_close(vs_conn_t *c, uint16_t code, const char *reason);
/* Marks the connection for destruction at the next safe point, without a handshake. */
void vs_conn_doom(vs_conn_t *c);
/* Writes an HTTP response and then closes (used by the HTTP phase). */
void vs_conn_http_respond(vs_conn_t *c, int status, const char *content_type, const char *extra,
                          const char *body, size_t len);
/* The same for GET and HEAD: with_body 0 sends the headers (with the body's length) only. */
void vs_conn_http_send(vs_conn_t *c, int status, const char *content_type, const char *extra,
                       const char *body, size_t len, int with_body);
/* Switches to WebSocket after a valid handshake; extra holds the bytes after the request. With
 * c->token set (by the HTTP phase) the connection is registered from it right after hello. */
void vs_conn_upgrade(vs_conn_t *c, const char *accept_key, uint8_t *extra, size_t extra_len);
/* Resumes reading (and replays held frames) once a pending register completed. */
void vs_conn_resume(vs_conn_t *c);
/* Sets the message being handled (msg, len: its plaintext, copied; t0: when it arrived) aside
 * and counts one more wait in c->waiting: later frames are held. Whoever ends the wait
 * decrements c->waiting and calls vs_conn_resume, which handles this message again first, with
 * VS_CONN_SYNCED set for that call. One at a time: the wait holds every later frame. The copy
 * is wiped when it is freed (it may be a post-quantum session's plaintext). */
void vs_conn_defer(vs_conn_t *c, const char *msg, size_t len, uint64_t t0);

/* The flush check: writes every queued output, destroys doomed connections. */
void vs_conn_flush_all(vs_server_t *s);
/* Sends pings and drops connections that missed two. */
void vs_conn_ping_all(vs_server_t *s);
/* Drops handshakes, unregistered connections and closing connections that took too long. */
void vs_conn_sweep(vs_server_t *s, uint64_t closing_ms);
/* Destroys a connection now; only at a safe point. */
void vs_conn_destroy(vs_conn_t *c);

#endif
