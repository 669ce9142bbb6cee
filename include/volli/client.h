/* volli/client.h: a Volli Signal client. One client keeps one WebSocket session to one of its
 * servers: it connects, registers with its Ed25519 key, and on loss of the connection
 * reconnects with exponential backoff and jitter, moving on to the next server URL, registers
 * again and restores every presence subscription, without the application doing anything.
 *
 * Threading: a client lives on one libuv loop (its own, or the application's) and must only be
 * used from that loop's thread. Callbacks run on it. No function blocks.
 *
 * Ownership: strings and arrays passed in are copied (borrowed for the call); every pointer a
 * callback receives is borrowed and valid only during the callback. Texts a callback receives
 * (json, payload, user ids, codes, messages) are NUL-terminated; json_len and payload_len give
 * their lengths (a payload may hold an escaped "\u0000" but never a raw NUL).
 *
 * Memory: the library never aborts on out-of-memory; it returns VOLLI_ENOMEM, or drops and
 * re-establishes the connection when it cannot handle a message. See docs/client.md. */
#ifndef VOLLI_CLIENT_H
#define VOLLI_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "volli/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct volli_client volli_client_t;

/* An Ed25519 key pair (raw RFC 8032 bytes). */
typedef struct volli_keypair {
    uint8_t public_key[32];
    uint8_t private_key[32]; /* the seed */
} volli_keypair_t;

typedef enum volli_event_type {
    VOLLI_EVENT_CONNECTED,    /* WebSocket open (hello received); server_url set */
    VOLLI_EVENT_DISCONNECTED, /* lost, or an attempt failed (see volli_event_t) */
    VOLLI_EVENT_REGISTERED,   /* user_id set (after every reconnect too) */
    VOLLI_EVENT_PRESENCE,     /* user_id and online set */
    VOLLI_EVENT_OFFER,        /* relay events: user_id = from, json and payload set */
    VOLLI_EVENT_ANSWER,
    VOLLI_EVENT_ICE_CANDIDATE,
    VOLLI_EVENT_BYE,  /* payload = the reason, or NULL */
    VOLLI_EVENT_ERROR /* an error not tied to a request: error_code, error_message */
} volli_event_type_t;

/* DISCONNECTED: server_url, reconnect_in_ms and error_message (the cause) are set;
 * reconnect_in_ms 0 means the client stopped for good after a permanent error.
 * ERROR codes that stop the client (no reconnecting; volli_client_connect restarts it):
 * key_mismatch, bad_signature, invalid_user_id (registration refused), replaced (another
 * connection registered the same id), and with volli_options_t.pq: pq_bad_signature (the
 * handshake is not signed by the trusted server key) and pq_unsupported (the server does not
 * offer the key exchange, or its hello has no usable serverKey). */
typedef struct volli_event {
    volli_event_type_t type;
    const char *server_url;
    const char *user_id;
    int online;
    const char *json; /* the whole message as received (JSON text), or NULL */
    size_t json_len;
    const char *payload; /* the payload member's JSON text (offer, answer, candidate, reason) */
    size_t payload_len;
    const char *error_code; /* a wire code such as "peer_offline", or NULL */
    const char *error_message;
    unsigned reconnect_in_ms;
} volli_event_t;

/* volli_options_t.pq: the post-quantum session's key exchange (docs/protocol.md). */
enum { VOLLI_PQ_OFF = 0, VOLLI_PQ_MLKEM768 = 1, VOLLI_PQ_X25519MLKEM768 = 2 };

typedef void (*volli_event_cb)(volli_client_t *c, const volli_event_t *ev, void *ud);

/* A request's outcome. status is 0 on success; VOLLI_EWIRE with error_code set when the server
 * answered an error (json is that error object); VOLLI_ETIMEDOUT, VOLLI_ENOTCONN (the
 * connection ended first) or VOLLI_ECANCELED (volli_client_close) otherwise. json is the reply
 * (discover, pong) or NULL (the successes of subscribe, unsubscribe and send, which the server
 * does not answer), borrowed for the call. */
typedef void (*volli_result_cb)(volli_client_t *c, int status, const char *error_code,
                                const char *json, size_t json_len, void *ud);

/* Log sink; without one the library logs nothing. level: 0 error, 1 warn, 2 info, 3 debug. */
typedef void (*volli_log_cb)(int level, const char *message, void *ud);

/* user_id and key both NULL make a connect-only client: it connects (CONNECTED) but never
 * registers; only volli_ping works, the other requests fail with VOLLI_EINVAL.
 * idle_timeout_ms: a server silent this long (it pings every 30 s) counts as dead: the client
 * drops the connection and moves on. After half of it the client sends its own ping. */
typedef struct volli_options {
    const char *const *servers; /* ws://host:port/path URLs, tried in order; copied */
    size_t nservers;
    const char *user_id;        /* copied; NULL: see above */
    const volli_keypair_t *key; /* copied */
    void *uv_loop;              /* a uv_loop_t * to run on, or NULL for the client's own loop */
    volli_event_cb on_event;
    void *ud; /* passed to on_event and log */
    volli_log_cb log;
    unsigned request_timeout_ms; /* 0: 10000 */
    unsigned backoff_initial_ms; /* 0: 200 */
    unsigned backoff_max_ms;     /* 0: 10000 */
    /* Added after the first draft; 0 (e.g. from `volli_options_t o = {0}`) picks the default. */
    unsigned idle_timeout_ms;    /* 0: 65000, see above */
    unsigned connect_timeout_ms; /* 0: 10000: resolve + TCP + upgrade, per attempt */
    /* Post-quantum session (added later; 0/NULL: off). With pq set, the client sends a
     * pq_handshake right after every hello (a fresh ML-KEM-768 key pair, and X25519 one for the
     * hybrid, per session), checks the server's Ed25519 signature over the transcript, and
     * from then on sends and receives only enc frames (register included); it rekeys when the
     * server asks. CONNECTED is reported once the session is set up.
     * server_key: the server's raw 32-byte Ed25519 identity key (copied), as published at
     * /.well-known/volli/server.json. Without it the client trusts the serverKey of the first
     * hello it receives and holds every later connection, to any of its servers, to that key
     * (trust on first use: an attacker in the path of that first connection goes unnoticed;
     * pin the key wherever it can be obtained out of band). A signature that does not verify
     * with the trusted key stops the client with the ERROR pq_bad_signature. */
    int pq;                    /* VOLLI_PQ_* */
    const uint8_t *server_key; /* 32 bytes, or NULL: TOFU */
} volli_options_t;

/* Creates a client; *out is freed with volli_client_free. Nothing happens until connect.
 * VOLLI_EINVAL for a missing server list, a user id without a key or a key without a user id,
 * an invalid user id, a public key that does not belong to the private key, a URL that is
 * not ws://host[:port][/path], or a pq value that is not a VOLLI_PQ_*;
 * VOLLI_EUNSUPPORTED for wss:// URLs (TLS is not implemented; logged). */
int volli_client_new(const volli_options_t *opt, volli_client_t **out);
/* Starts connecting (and keeps reconnecting until volli_client_close). Also restarts a client
 * that stopped after a permanent error (see VOLLI_EVENT_ERROR). 0 if already connecting;
 * VOLLI_EINVAL after volli_client_close. */
int volli_client_connect(volli_client_t *c);
/* For a client on its own loop: runs the loop until volli_client_close. Returns 0, or an error
 * (VOLLI_EUNREACHABLE if give_up_ms > 0 passed without ever registering, or for a connect-only
 * client without ever connecting). Connects first if volli_client_connect was not called. Also
 * returns, with VOLLI_EWIRE, when the client stopped after a permanent error (key_mismatch,
 * bad_signature, invalid_user_id, replaced), and VOLLI_EINVAL for a client on an application
 * loop. */
int volli_client_run(volli_client_t *c, unsigned give_up_ms);
/* Closes the session gracefully; pending requests complete with VOLLI_ECANCELED (from inside
 * this call). No event is delivered after it. */
void volli_client_close(volli_client_t *c);
/* Frees a closed client (closing it first if needed, on its own loop). May be called from the
 * client's callbacks (the free is then deferred until the callback returns). On an application
 * loop the memory is released once the client's handles have closed: keep running that loop
 * (uv_run) afterwards before uv_loop_close. */
void volli_client_free(volli_client_t *c);
/* Whether the client is registered right now. */
int volli_client_registered(const volli_client_t *c);
/* A static name for an event type: "connected", "presence", "ice-candidate", ... */
const char *volli_event_name(volli_event_type_t type);

/* Requests. Each returns 0 (cb, which may be NULL, will be called exactly once) or an error (cb
 * is never called): VOLLI_EINVAL for bad arguments, VOLLI_ENOTCONN unless registered right now
 * (a ping needs only the connection), VOLLI_ENOMEM. Nothing is queued while disconnected.
 * ids: 1 to 100 user ids. */
int volli_discover(volli_client_t *c, const char *const *ids, size_t n, volli_result_cb cb,
                   void *ud);
/* Subscriptions are remembered (when the request succeeds) and restored after every
 * reconnect; each (re)subscription first reports the current state as PRESENCE events. The ids
 * are folded and checked here: an invalid one is VOLLI_EINVAL. */
int volli_subscribe(volli_client_t *c, const char *const *ids, size_t n, volli_result_cb cb,
                    void *ud);
int volli_unsubscribe(volli_client_t *c, const char *const *ids, size_t n, volli_result_cb cb,
                      void *ud);
/* Sends a relay message: type is "offer", "answer", "ice-candidate" or "bye"; payload_json is
 * the JSON text of the payload member (for bye: the reason, or NULL), sent verbatim after a
 * validity check (VOLLI_EINVAL if it is not one JSON value). cb reports peer_offline and other
 * errors; success is reported when no error arrived within a ping round trip. The message
 * carries the request's "id", which the recipient sees too. */
int volli_send(volli_client_t *c, const char *to, const char *type, const char *payload_json,
               volli_result_cb cb, void *ud);
int volli_ping(volli_client_t *c, volli_result_cb cb, void *ud);

/* Keys. */
int volli_keygen(volli_keypair_t *kp);
/* Writes the private key file (mode 0600, created exclusively: VOLLI_EEXISTS if present). */
int volli_key_save(const volli_keypair_t *kp, const char *path);
/* Reads a key file (PEM PKCS#8 Ed25519, as volli_key_save or `openssl genpkey -algorithm
 * ed25519` write it); VOLLI_EPERM if group or others have any access to it or it is not a
 * regular file, VOLLI_EIO if it cannot be opened or read, VOLLI_EINVAL if it holds no Ed25519
 * key (encrypted keys are not supported). */
int volli_key_load(const char *path, volli_keypair_t *kp);
/* Standard base64 of the public key into out (at least 45 bytes). */
int volli_key_public_base64(const volli_keypair_t *kp, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
