/* volli/client.h: a Volli Signal client. One client keeps one WebSocket session to one of its
 * servers: it connects, registers with its Ed25519 key, and on loss of the connection
 * reconnects with exponential backoff and jitter, moving on to the next server URL, registers
 * again and restores every presence subscription, without the application doing anything.
 *
 * Threading: a client lives on one libuv loop (its own, or the application's) and must only be
 * used from that loop's thread. Callbacks run on it. No function blocks.
 *
 * Ownership: strings and arrays passed in are copied (borrowed for the call); every pointer a
 * callback receives is borrowed and valid only during the callback. */
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
    VOLLI_EVENT_CONNECTED,     /* WebSocket open (hello received); server_url set */
    VOLLI_EVENT_DISCONNECTED,  /* lost; server_url and reconnect_in_ms set */
    VOLLI_EVENT_REGISTERED,    /* user_id set (after every reconnect too) */
    VOLLI_EVENT_PRESENCE,      /* user_id and online set */
    VOLLI_EVENT_OFFER,         /* relay events: user_id = from, json and payload set */
    VOLLI_EVENT_ANSWER,
    VOLLI_EVENT_ICE_CANDIDATE,
    VOLLI_EVENT_BYE,           /* payload = the reason, or NULL */
    VOLLI_EVENT_ERROR          /* an error not tied to a request: error_code, error_message */
} volli_event_type_t;

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

typedef void (*volli_event_cb)(volli_client_t *c, const volli_event_t *ev, void *ud);

/* A request's outcome. status is 0 on success; VOLLI_EWIRE with error_code set when the server
 * answered an error (json is that error object); VOLLI_ETIMEDOUT, VOLLI_ENOTCONN or
 * VOLLI_ECANCELED otherwise. json is the reply (or NULL), borrowed for the call. */
typedef void (*volli_result_cb)(volli_client_t *c, int status, const char *error_code,
                                const char *json, size_t json_len, void *ud);

/* Log sink; without one the library logs nothing. level: 0 error, 1 warn, 2 info, 3 debug. */
typedef void (*volli_log_cb)(int level, const char *message, void *ud);

typedef struct volli_options {
    const char *const *servers; /* ws://host:port/path URLs, tried in order; copied */
    size_t nservers;
    const char *user_id;        /* copied */
    const volli_keypair_t *key; /* copied */
    void *uv_loop;              /* a uv_loop_t * to run on, or NULL for the client's own loop */
    volli_event_cb on_event;
    void *ud;                   /* passed to on_event and log */
    volli_log_cb log;
    unsigned request_timeout_ms; /* 0: 10000 */
    unsigned backoff_initial_ms; /* 0: 200 */
    unsigned backoff_max_ms;     /* 0: 10000 */
} volli_options_t;

/* Creates a client; *out is freed with volli_client_free. Nothing happens until connect. */
int volli_client_new(const volli_options_t *opt, volli_client_t **out);
/* Starts connecting (and keeps reconnecting until volli_client_close). */
int volli_client_connect(volli_client_t *c);
/* For a client on its own loop: runs the loop until volli_client_close. Returns 0, or an error
 * (VOLLI_EUNREACHABLE if give_up_ms > 0 passed without ever registering). */
int volli_client_run(volli_client_t *c, unsigned give_up_ms);
/* Closes the session gracefully; pending requests complete with VOLLI_ECANCELED. */
void volli_client_close(volli_client_t *c);
/* Frees a closed client (closing it first if needed, on its own loop). */
void volli_client_free(volli_client_t *c);
/* Whether the client is registered right now. */
int volli_client_registered(const volli_client_t *c);

/* Requests. Each returns 0 (cb will be called exactly once) or an error (cb is never called). */
int volli_discover(volli_client_t *c, const char *const *ids, size_t n, volli_result_cb cb,
                   void *ud);
/* Subscriptions are remembered and restored after every reconnect. */
int volli_subscribe(volli_client_t *c, const char *const *ids, size_t n, volli_result_cb cb,
                    void *ud);
int volli_unsubscribe(volli_client_t *c, const char *const *ids, size_t n, volli_result_cb cb,
                      void *ud);
/* Sends a relay message: type is "offer", "answer", "ice-candidate" or "bye"; payload_json is
 * the JSON text of the payload member (for bye: the reason, or NULL). cb reports peer_offline
 * and other errors; success is reported when no error arrived within a ping round trip. */
int volli_send(volli_client_t *c, const char *to, const char *type, const char *payload_json,
               volli_result_cb cb, void *ud);
int volli_ping(volli_client_t *c, volli_result_cb cb, void *ud);

/* Keys. */
int volli_keygen(volli_keypair_t *kp);
/* Writes the private key file (mode 0600, created exclusively: VOLLI_EEXISTS if present). */
int volli_key_save(const volli_keypair_t *kp, const char *path);
/* Reads a key file; VOLLI_EPERM if group or others may read it. */
int volli_key_load(const char *path, volli_keypair_t *kp);
/* Standard base64 of the public key into out (at least 45 bytes). */
int volli_key_public_base64(const volli_keypair_t *kp, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
