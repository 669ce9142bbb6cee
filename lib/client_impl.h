/* client_impl.h: the client object shared by client.c (session life cycle, incoming messages,
 * reconnection) and requests.c (requests, their ids and timeouts, subscriptions).
 *
 * Must never: be included outside lib/, or let a request outlive the connection it was sent on
 * (every pending request completes, exactly once, when that connection ends). */
#ifndef VOLLI_LIB_CLIENT_IMPL_H
#define VOLLI_LIB_CLIENT_IMPL_H

#include "internal.h"

#include "protocol/userid.h"

#include <jansson.h>

/* Session states. Requests need C_REGISTERED (a ping only an open WebSocket: C_REGISTERING,
 * C_OPEN or C_REGISTERED); anything else answers VOLLI_ENOTCONN. C_CONNECTING..C_REGISTERED is
 * the range in which a connection exists and is wanted. */
enum {
    C_IDLE,        /* created, connect not called */
    C_CONNECTING,  /* resolve, TCP, upgrade, waiting for hello */
    C_REGISTERING, /* hello received, register sent */
    C_OPEN,        /* hello received, and no identity to register (connect-only client) */
    C_REGISTERED,
    C_DROPPING, /* we aborted the connection; on_closed schedules the next attempt */
    C_WAITING,  /* backoff timer running */
    C_STOPPING, /* permanent error: closing, will not reconnect */
    C_STOPPED,
    C_CLOSING, /* volli_client_close: closing */
    C_CLOSED
};

/* Request kinds; the first four (up to R_PQ, the post-quantum handshake) are the session's own. */
enum {
    R_HELLO,
    R_REGISTER,
    R_RESTORE,
    R_PQ,
    R_PING,
    R_DISCOVER,
    R_SUBSCRIBE,
    R_UNSUBSCRIBE,
    R_SEND
};

/* The post-quantum session (pq.c; docs/protocol.md, "Post-quantum session"). Everything secret
 * in here is wiped when the connection ends and when the client is freed. */
typedef struct vl_pq {
    int alg;           /* VOLLI_PQ_*: 0 off */
    uint8_t trust[32]; /* the server key signatures must verify with */
    int trusted;       /* trust[] set: pinned by the application, or learned (TOFU) */
    int pinned;        /* trust[] came from volli_options_t.server_key */
    /* Per connection: */
    int active;  /* keys established: every text frame is an enc frame */
    int pending; /* a handshake was sent, its response not yet handled */
    uint8_t k_out[32], k_in[32];
    uint64_t seq_out, seq_in;
    uint8_t dk[2400];  /* ML-KEM-768 decapsulation key of the pending handshake */
    uint8_t xpriv[32]; /* its X25519 private key (hybrid) */
    uint8_t pk[1216];  /* its client_public_key, for TH */
    size_t pk_len;
    int pk_alg; /* the algorithm of the pending handshake */
    char sid[40];
    char **held; /* plaintexts sent while a rekey is pending, sent once the keys switch */
    size_t *held_len;
    size_t nheld, held_cap;
    uint8_t *pt; /* scratch for opened frames */
    size_t pt_cap;
} vl_pq_t;

typedef struct vl_request {
    struct vl_request *next, *prev;
    int kind;
    char id[24]; /* "c<n>"; "" for R_HELLO, which is never sent */
    uint64_t deadline;
    volli_result_cb cb; /* application requests; may be NULL */
    void *ud;
    char **ids; /* R_SUBSCRIBE / R_UNSUBSCRIBE: folded ids applied to the set on success */
    size_t nids;
} vl_request_t;

struct volli_client {
    uv_loop_t *loop;
    uv_loop_t own_loop;
    int own; /* loop is own_loop */
    vl_logger_t log;
    volli_event_cb on_event;
    void *ud;
    vl_url_t *urls;
    size_t nurls, cur;               /* cur: the URL of the current or next attempt */
    char user_id[VS_USERID_MAX + 1]; /* folded */
    volli_keypair_t key;
    char public_key[48];
    unsigned request_timeout_ms;
    vl_ws_config_t wscfg;
    vl_backoff_t backoff;
    int state;
    int moving;                      /* the server said reconnect: next URL, no backoff */
    vl_ws_t *ws; /* the connection, or NULL between attempts */
    char nonce[128];
    uint64_t next_id;
    vl_request_t *req_head, *req_tail; /* in deadline order: every request has the same timeout */
    uv_timer_t req_timer, retry_timer, giveup_timer;
    int timers_open;
    char **subs; /* folded ids to restore after every reconnect */
    size_t nsubs, subs_cap;
    char *text; /* NUL-terminated copy of the message being handled */
    size_t text_cap;
    char *payload; /* NUL-terminated copy of its payload member */
    size_t payload_cap;
    int anonymous;       /* no user id and key: connect-only, never registers */
    int ever_registered; /* (anonymous: ever connected) */
    int run_result;
    int running; /* inside volli_client_run's uv_run */
    int depth;   /* nesting of library code that may call the application */
    int free_pending;
    int destroyed;
    vl_pq_t pq;
};

/* Bracket every entry from the loop (and every API call that may call back): leave() performs
 * a free the application asked for from a callback, once nothing on the stack uses c. */
void vl_enter(volli_client_t *c);
void vl_leave(volli_client_t *c);

/* Calls the application's event callback (unless closing); fills server_url if unset. */
void vl_emit(volli_client_t *c, volli_event_t *ev);
/* Drops the connection (it will be re-established with backoff). why: static. */
void vl_drop(volli_client_t *c, int err, const char *why);

/* ---- requests.c ---- */

/* A new request of kind with the next id; NULL on out-of-memory. Not yet pending. */
vl_request_t *vl_req_new(volli_client_t *c, int kind, volli_result_cb cb, void *ud);
void vl_req_free(vl_request_t *r);
/* Makes r pending (deadline = now + request timeout) and arms the timer. */
void vl_req_add(volli_client_t *c, vl_request_t *r);
vl_request_t *vl_req_find(volli_client_t *c, const char *id);
/* Completes r (unlinks it, calls back, frees it). json/len: the reply text or NULL; root: the
 * parsed reply or NULL; code: the wire error code for VOLLI_EWIRE. */
void vl_req_complete(volli_client_t *c, vl_request_t *r, int status, const char *code,
                     const char *json, size_t len, json_t *root);
/* Completes every pending request with status. */
void vl_req_fail_all(volli_client_t *c, int status);
void vl_req_timer_cb(uv_timer_t *t);
/* Sends the remembered subscriptions again (batches of 100). Returns 0 or an error. */
int vl_restore_subscriptions(volli_client_t *c);
/* Frees the subscription set. */
void vl_subs_free(volli_client_t *c);

/* ---- pq.c ---- */

/* Sends texts[0..n) (borrowed) on the connection in one write: as they are without a
 * post-quantum session, sealed in enc frames with one, held back (copied) while a rekey is
 * pending. Returns 0 or a VOLLI_E* error (as vl_ws_send_text). */
int vl_send(volli_client_t *c, const char *const *texts, const size_t *lens, size_t n);
/* Sends a pq_handshake (plaintext before the session, sealed for a rekey) as an R_PQ request,
 * with a fresh key pair and session id. Returns 0 or an error. */
int vl_pq_handshake(volli_client_t *c);
/* Handles the pq_handshake_response root (parsed; borrowed): verifies the server's signature
 * over the transcript, derives the keys and switches to them (sequence numbers back to 0),
 * then sends what was held back. Returns 0, VOLLI_ECRYPTO when the signature does not verify
 * with the trusted key (the caller stops for good), VOLLI_EPROTO for a malformed response,
 * or another error. */
int vl_pq_on_response(volli_client_t *c, json_t *root);
/* Opens the enc frame text[0..len) (borrowed) into *pt (scratch owned by c, NUL-terminated,
 * valid until the next call). Returns 0 or VOLLI_EPROTO (not a valid frame: wrong type,
 * sequence number or tag), VOLLI_ENOMEM. */
int vl_pq_open(volli_client_t *c, const char *text, size_t len, char **pt, size_t *pt_len);
/* Learns or checks the server key of a hello (before the handshake): without a pin, the first
 * serverKey seen is trusted from then on (TOFU). Returns 0, VOLLI_EPROTO (no usable serverKey
 * or the algorithm is not offered: *why set to a static reason). */
int vl_pq_on_hello(volli_client_t *c, json_t *hello, const char **why);
/* Forgets the connection's session (keys wiped, held messages freed); keeps the trust. */
void vl_pq_reset(volli_client_t *c);
/* Frees everything, trust included. */
void vl_pq_free(volli_client_t *c);

/* ---- client.c, called by requests.c when a session request ends ---- */
void vl_session_request_done(volli_client_t *c, vl_request_t *r, int status, const char *code,
                             json_t *root);

#endif
