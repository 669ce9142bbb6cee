/* pq.h: the post-quantum signaling session of one connection (docs/protocol.md, "Post-quantum
 * session"): the pq_handshake (ML-KEM-768 or X25519MLKEM768, signed by the server's identity
 * key), the `enc` frames both ways once it is done, rekeying at expiry, and the session counts
 * for /volly/sessions/stats. It owns each connection's session keys (c->pq) and wipes them when
 * they are replaced or the connection goes. It never touches the socket itself (conn.c queues
 * what it builds) and never logs keys, shared secrets, ciphertexts or plaintexts. */
#ifndef VS_CORE_PQ_H
#define VS_CORE_PQ_H

#include "common/buf.h"
#include "core/session.h"
#include "crypto/pqkx.h"

#include <jansson.h>
#include <stdint.h>

/* A connection's session, allocated at its first successful handshake. */
typedef struct vs_pq {
    uint8_t k_in[VS_PQ_KEY_LEN];  /* k_c2s */
    uint8_t k_out[VS_PQ_KEY_LEN]; /* k_s2c */
    uint64_t seq_in, seq_out;     /* the next N expected / to send */
    uint64_t expires;             /* loop ms at which rekey_required is sent */
    uint64_t rekey_deadline;      /* loop ms of the 4401 close once asked; 0 before */
    int alg;                      /* enum vs_pq_alg */
} vs_pq_t;

/* The wire names of the algorithms, indexed by enum vs_pq_alg. */
const char *vs_pq_alg_name(int alg);

/* The request {"type":"pq_handshake",...} (root borrowed). Before the session it sets one up
 * (the response goes out in plaintext); inside it, it rekeys (the response goes out under the
 * old keys, then both directions switch with N back at 0). Refusals are error replies. */
void vs_pq_handshake(const vs_req_t *rq, json_t *root);

/* A frame from a connection with a session (c->pq set); data borrowed for the call. Only an
 * `enc` frame with the next N and a valid tag is accepted, its plaintext handed to
 * vs_session_on_text; anything else closes the connection with 4400. */
void vs_pq_on_frame(vs_conn_t *c, int opcode, uint8_t *data, size_t len);

/* Queues the text message data (borrowed, len bytes) to c, which has a session, as an `enc`
 * frame. */
void vs_pq_send(vs_conn_t *c, const char *data, size_t len);

/* Called from the sweep timer: sends rekey_required to sessions at their expiry and closes with
 * 4401 those that did not rekey within pq-rekey-grace. */
void vs_pq_sweep(vs_server_t *s);

/* Wipes and frees c's session, if any (the connection is going away). */
void vs_pq_free(vs_conn_t *c);

/* Appends {"active_sessions":n,"expired_sessions":n,"total_sessions":n,"algorithm":A} to out. */
void vs_pq_stats_json(const vs_server_t *s, vs_buf_t *out);

/* Appends the hello members for the session (",\"serverKey\":..,\"pq\":[..]") to out. */
void vs_pq_hello_members(const vs_server_t *s, vs_buf_t *out);

#endif
