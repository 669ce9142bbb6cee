/* server_impl.h: the server's internals, shared by core/ and transport/ only. */
#ifndef VS_CORE_SERVER_IMPL_H
#define VS_CORE_SERVER_IMPL_H

#include "common/buf.h"
#include "core/config.h"
#include "core/limits.h"
#include "core/metrics.h"
#include "core/server.h"
#include "crypto/pqkx.h"
#include "crypto/token.h"
#include "directory/directory.h"
#include "directory/rooms.h"
#include "storage/store.h"
#include "transport/conn.h"

#include <uv.h>

#define VS_READ_BUF (64 * 1024 + 64)

typedef struct vs_pending_reg vs_pending_reg_t;

/* Registrations waiting for a durable key binding (group commit on a worker thread). */
typedef struct vs_regq {
    vs_pending_reg_t *head, *tail; /* waiting for the next batch */
    size_t n;
    vs_pending_reg_t *batch;       /* in flight on the worker */
    size_t batch_n;
    vs_binding_t *items;           /* the batch's bindings, owned */
    int batch_rc;
    int busy;
    uv_work_t work;
} vs_regq_t;

typedef struct vs_lookup vs_lookup_t;

/* Discover lookups waiting for the store on a worker thread (lookup.c). */
typedef struct vs_lookq {
    vs_lookup_t *head, *tail; /* waiting for the next batch */
    vs_lookup_t *batch;       /* in flight */
    int busy;
    uv_work_t work;
} vs_lookq_t;

struct vs_server {
    uv_loop_t loop;
    const vs_config_t *cfg;
    uv_tcp_t listener;
    uv_tcp_t api_listener;  /* the HTTP API port; initialized only when api_listening */
    int api_listening;
    uv_signal_t sigterm, sigint;
    uv_timer_t ping_timer, sweep_timer;
    uv_check_t flush_check;
    char rbuf[VS_READ_BUF]; /* the one loop-wide read buffer */
    int rbuf_busy;
    vs_conn_list_t active;  /* open WebSocket connections */
    vs_conn_list_t pending; /* in the HTTP phase, or closing */
    size_t nconns;
    vs_conn_t *flush_head;  /* connections with output to flush or to destroy */
    vs_directory_t *dir;
    vs_rooms_t *rooms;
    vs_token_keys_t keys;   /* API keys for access tokens (from the environment, or --dev) */
    vs_ip_table_t *ips;
    char trusted[8][46];    /* trusted-proxies, canonical text form */
    size_t ntrusted;
    vs_store_t store;
    vs_metrics_t metrics;
    uint64_t registered_users;
    vs_regq_t regq;
    vs_lookq_t lookq;
    int store_blocks;       /* the store's reads may block (PostgreSQL): they go to a worker */
    vs_buf_t scratch;       /* per-message reply building; reset, never freed until exit */
    vs_buf_t pq_scratch;    /* enc frame sealing (scratch is busy with the plaintext then) */
    vs_pq_signer_t *signer; /* the Ed25519 identity (data-dir/server.key), owned */
    char server_key_b64[48]; /* its public key, standard base64 */
    uint64_t pq_active, pq_total, pq_expired; /* post-quantum sessions, see core/pq.h */
    struct vs_cluster *cluster; /* cluster mode (--redis), owned; NULL on a single node */
    int shutting_down;
    int draining;           /* SIGTERM: clients were told to move; closing at drain_deadline */
    uint64_t drain_deadline;
    uint64_t shutdown_deadline;
    double start_time;
};

/* Whether addr (canonical text) is one of the trusted proxies. */
int vs_server_trusts(const vs_server_t *s, const char *addr);
/* Canonical text of an IPv4/IPv6 address in in[0..len) into out (46 bytes); 0 or VS_EINVAL. */
int vs_addr_canonical(const char *in, size_t len, char out[46]);

/* Milliseconds on the loop clock. */
static inline uint64_t vs_server_now(const vs_server_t *s)
{
    return uv_now((uv_loop_t *)&s->loop);
}

#endif
