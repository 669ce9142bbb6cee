/* metrics.h: counters and histograms for /metrics, in Prometheus text format. Plain integers
 * bumped on the loop thread (one loop per process, so no atomics). Never holds user data. */
#ifndef VS_CORE_METRICS_H
#define VS_CORE_METRICS_H

#include "common/buf.h"
#include "crypto/token.h"
#include "protocol/wire.h"

#include <stdint.h>

#define VS_METRICS_BUCKETS 14

/* Why a post-quantum handshake or frame was refused (volli_pq_failures_total{reason}). */
enum vs_pq_failure {
    VS_PQ_FAIL_BAD_REQUEST,   /* a malformed pq_handshake, or one while disabled */
    VS_PQ_FAIL_KEY_MISMATCH,  /* the key differs from the token's pqPublicKey */
    VS_PQ_FAIL_BAD_KEY,       /* the ML-KEM key fails the modulus check, or a bad X25519 key */
    VS_PQ_FAIL_PLAINTEXT,     /* a frame that is not `enc` after the handshake */
    VS_PQ_FAIL_BAD_SEQ,       /* an `enc` frame with the wrong N */
    VS_PQ_FAIL_BAD_TAG,       /* an `enc` frame that does not decrypt */
    VS_PQ_FAIL_REKEY_TIMEOUT, /* no rekey within the grace period (4401) */
    VS_PQ_FAIL_COUNT
};

typedef struct vs_metrics {
    uint64_t relayed[VS_MSG_COUNT];
    uint64_t errors[VS_WERR_COUNT];
    uint64_t req_count[VS_MSG_COUNT];
    uint64_t req_bucket[VS_MSG_COUNT][VS_METRICS_BUCKETS];
    double req_sum[VS_MSG_COUNT];
    uint64_t connections_total;   /* WebSocket upgrades accepted */
    uint64_t connections_refused; /* over max-connections */
    uint64_t http_requests_total;
    uint64_t ws_protocol_errors;
    uint64_t slow_consumers;      /* dropped for exceeding max-queue */
    uint64_t keepalive_drops;
    uint64_t store_batches, store_bindings, store_failures;
    uint64_t rate_limited[4];    /* by vs_limit_kind */
    uint64_t rate_disconnects;   /* closed after rate-strikes limited messages in a row */
    uint64_t per_ip_refused;     /* over max-connections-per-ip */
    uint64_t handshake_timeouts, register_timeouts;
    uint64_t tokens[VS_TOKEN_REASON_COUNT]; /* access tokens presented, by outcome */
    uint64_t room_messages;      /* room_message requests fanned out */
    uint64_t pq_handshakes[2];   /* completed post-quantum handshakes (rekeys too), by vs_pq_alg */
    uint64_t pq_failures[VS_PQ_FAIL_COUNT];
} vs_metrics_t;

enum vs_limit_kind { VS_LIMIT_MESSAGES, VS_LIMIT_BYTES, VS_LIMIT_REGISTER, VS_LIMIT_LOOKUP };

/* Gauges sampled at render time. */
typedef struct vs_metrics_gauges {
    uint64_t connections, online_users, registered_users, directory_entries, pending_registers;
    uint64_t rooms, room_participants;
} vs_metrics_gauges_t;

static inline void vs_metrics_error(vs_metrics_t *m, vs_wire_error_t e)
{
    m->errors[e]++;
}

/* Records one request of type t that took seconds. */
void vs_metrics_observe(vs_metrics_t *m, vs_msg_type_t t, double seconds);
/* Appends the exposition text to out. */
void vs_metrics_render(const vs_metrics_t *m, const vs_metrics_gauges_t *g, double start_time,
                       vs_buf_t *out);

#endif
