/* internal.h: what the files of libvolli share and the application never sees.
 *
 * Owns: the private interfaces between the library's modules: logging through the
 * application's callback, URL parsing, reconnection backoff, locating a member's raw text in a
 * JSON object, Ed25519 signing, and the WebSocket client transport (wsclient.c).
 *
 * Must never: be installed, be included by anything outside lib/ and tests/client/, allocate
 * through src/common/alloc.h (it aborts on out-of-memory; the library returns VOLLI_ENOMEM),
 * or log payloads, signatures, tokens or keys. Everything here has hidden visibility: only the
 * definitions marked VOLLI_PUBLIC are exported from libvolli.so. */
#ifndef VOLLI_LIB_INTERNAL_H
#define VOLLI_LIB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "volli/volli.h"

/* Marks the definition of a public function: the library is built with -fvisibility=hidden. */
#define VOLLI_PUBLIC __attribute__((visibility("default")))

/* The jansson flags every message from the server is parsed with: the server's own reference
 * rule (VS_JSON_FLAGS in src/protocol/envelope.h), so that whatever a peer may relay through it
 * (numbers of any size, "\u0000" in strings) parses here too. */
#define VL_JSON_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL)

/* Largest message accepted from a server: far above any server's --max-frame in practice, and
 * only ever buffered for fragmented messages. */
#define VL_MAX_MESSAGE (16u << 20)

enum { VL_LOG_ERROR = 0, VL_LOG_WARN = 1, VL_LOG_INFO = 2, VL_LOG_DEBUG = 3 };

/* ---- logging (log.c) ---- */

typedef struct vl_logger {
    volli_log_cb cb; /* NULL: log nothing */
    void *ud;
} vl_logger_t;

/* Formats into a stack buffer (truncating at 512 bytes) and calls the sink; never allocates.
 * Does nothing, not even formatting, without a sink. lg borrowed. */
void vl_log(const vl_logger_t *lg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* malloc'ed copies; NULL on out-of-memory (or s NULL). */
char *vl_strdup(const char *s);
char *vl_strndup(const char *s, size_t n);

/* ---- URLs (url.c) ---- */

typedef struct vl_url {
    char *text;     /* the URL as given */
    char *host;     /* host name or address literal, IPv6 without brackets */
    char *hostport; /* the Host header value: host, [v6], plus ":port" unless 80 */
    char *path;     /* "/" when absent; query included */
    uint16_t port;
    uint8_t ipv6; /* host is an IPv6 literal */
} vl_url_t;

/* Parses ws://host[:port][/path[?query]] (scheme case-insensitive; IPv6 literals in brackets;
 * hostnames of [A-Za-z0-9.-_]; port 1-65535, default 80; path and query of printable ASCII, no
 * fragment, no userinfo). text borrowed; *out is filled with malloc'ed strings, freed with
 * vl_url_free() (also after a failure). Returns 0, VOLLI_EUNSUPPORTED for wss://, VOLLI_EINVAL
 * for anything else invalid, or VOLLI_ENOMEM. */
int vl_url_parse(const char *text, vl_url_t *out);
void vl_url_free(vl_url_t *u);

/* ---- backoff (backoff.c) ---- */

/* Exponential backoff with full jitter: the n-th delay after a reset is uniform in
 * [1, min(max_ms, initial_ms * 2^n)] milliseconds. */
typedef struct vl_backoff {
    unsigned initial_ms, max_ms;
    unsigned attempt;
    uint64_t rng; /* splitmix64 state */
} vl_backoff_t;

/* initial_ms is raised to 1 and capped at max_ms; seed picks the jitter sequence. */
void vl_backoff_init(vl_backoff_t *b, unsigned initial_ms, unsigned max_ms, uint64_t seed);
/* The ceiling of the next delay. */
unsigned vl_backoff_ceiling(const vl_backoff_t *b);
/* The next delay (>= 1), then doubles the ceiling up to max_ms. */
unsigned vl_backoff_next(vl_backoff_t *b);
/* Back to initial_ms (after a session that reached registration). */
void vl_backoff_reset(vl_backoff_t *b);

/* ---- JSON (json.c) ---- */

/* Finds the top-level member name of the JSON object json[0..len), which must already have
 * been accepted by json_loadb() with VL_JSON_FLAGS (so it is valid and has no duplicate keys).
 * Keys are compared after decoding escapes. On success [*start, *end) is the member value's raw
 * text, exactly as sent. Returns 1 found, 0 absent, VOLLI_EINVAL if json is not an object,
 * VOLLI_ENOMEM. json and name borrowed. */
int vl_json_member_span(const char *json, size_t len, const char *name, size_t *start, size_t *end);

/* Outgoing messages are written by hand, not by json_dumps(): jansson 2.14 can emit invalid
 * JSON without reporting an error when one of its allocations fails. */
typedef struct vl_buf {
    char *p; /* malloc'ed, NUL-terminated while not oom */
    size_t len, cap;
    int oom; /* an append failed: the contents are unusable */
} vl_buf_t;

/* Appends n raw bytes of s. */
void vl_buf_raw(vl_buf_t *b, const char *s, size_t n);
/* Appends s (NUL-terminated, valid UTF-8) as a JSON string literal. */
void vl_buf_str(vl_buf_t *b, const char *s);
void vl_buf_free(vl_buf_t *b);

/* ---- keys (keys.c) ---- */

/* Ed25519 (RFC 8032) signature of msg[0..len) with kp's seed. Returns 0, VOLLI_ECRYPTO or
 * VOLLI_ENOMEM. kp, msg borrowed; sig borrowed output. */
int vl_sign(const volli_keypair_t *kp, const void *msg, size_t len, uint8_t sig[64]);
/* Derives the public key of a seed. Returns 0 or VOLLI_ECRYPTO. */
int vl_public_from_seed(const uint8_t seed[32], uint8_t pub[32]);

/* ---- the WebSocket client transport (wsclient.c) ---- */

typedef struct vl_ws vl_ws_t;

/* Callbacks from a connection. ud is what vl_ws_connect() was given. Every pointer is
 * borrowed for the call. From inside on_open and on_text the owner may call any vl_ws_*
 * function on the connection (including close, abort and detach). */
typedef struct vl_ws_events {
    /* The upgrade succeeded: vl_ws_send_text() works from now on. */
    void (*on_open)(void *ud);
    /* A text message (valid UTF-8), writable in place, not NUL-terminated. */
    void (*on_text)(void *ud, char *data, size_t len);
    /* Called exactly once (unless detached), after every handle of the connection is closed;
     * the connection is freed right after it returns. err is 0 after a completed close
     * handshake, else VOLLI_EUNREACHABLE (resolve or TCP connect failed), VOLLI_ETIMEDOUT
     * (connect deadline, or the server went silent), VOLLI_EPROTO (bad upgrade answer or a
     * WebSocket protocol violation), VOLLI_EIO (the connection was lost), VOLLI_ENOMEM,
     * VOLLI_ECRYPTO, or the error given to vl_ws_abort(). close_code is the code of the
     * server's close frame, 0 if none came. why is a short human-readable cause. */
    void (*on_closed)(void *ud, int err, unsigned close_code, const char *why);
} vl_ws_events_t;

typedef struct vl_ws_config {
    unsigned connect_timeout_ms; /* resolve + connect + upgrade */
    unsigned idle_timeout_ms;    /* silence after which the server counts as dead; a ping is
                                    sent after half of it */
    size_t max_message;
} vl_ws_config_t;

/* Starts connecting to url on loop. url, cfg, ev, lg are borrowed and must outlive the
 * connection (the client keeps them). Returns 0 with *out set (on_closed will be called), or
 * VOLLI_ENOMEM / VOLLI_EINVAL (nothing started, no callback). */
int vl_ws_connect(uv_loop_t *loop, const vl_url_t *url, const vl_ws_config_t *cfg,
                  const vl_ws_events_t *ev, void *ud, const vl_logger_t *lg, vl_ws_t **out);
/* Sends n text messages (texts[i] of lens[i] bytes, borrowed, valid UTF-8) in one write, so
 * either all or none are queued. Returns 0, VOLLI_ENOTCONN if the connection is not open,
 * VOLLI_ENOMEM or VOLLI_ECRYPTO (masking keys); VOLLI_EIO if the socket refused the write (the
 * connection is then being aborted). */
int vl_ws_send_text(vl_ws_t *ws, const char *const *texts, const size_t *lens, size_t n);
/* Starts the close handshake with code (1000 normal); the connection ends when the server
 * answers, or after a short grace period. No-op if already closing. */
void vl_ws_close(vl_ws_t *ws, uint16_t code);
/* Drops the connection at once; on_closed will report err and why (static string). */
void vl_ws_abort(vl_ws_t *ws, int err, const char *why);
/* Aborts without any further callback; the connection frees itself once its handles close. */
void vl_ws_detach(vl_ws_t *ws);
/* 1 while the upgrade is done and no close has started. */
int vl_ws_is_open(const vl_ws_t *ws);

#endif
