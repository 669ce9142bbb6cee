/* limits.h: token buckets and the per-source-address table behind the server's abuse limits.
 * Pure bookkeeping on the loop thread: it never touches sockets or sends anything. */
#ifndef VS_CORE_LIMITS_H
#define VS_CORE_LIMITS_H

#include <stddef.h>
#include <stdint.h>

/* A token bucket: rate tokens per second, up to burst. 16 bytes, no allocation. */
typedef struct vs_bucket {
    double tokens;
    uint64_t last_ms; /* 0: never used (starts full) */
} vs_bucket_t;

/* Takes cost tokens if there are that many; returns 1 if taken, 0 if the caller is limited. */
int vs_bucket_take(vs_bucket_t *b, double rate, double burst, double cost, uint64_t now_ms);
/* Whether at least one token is there now (nothing is taken). */
int vs_bucket_ready(vs_bucket_t *b, double rate, double burst, uint64_t now_ms);
/* Whether the bucket has refilled to burst (so its owner may be forgotten). */
int vs_bucket_full(const vs_bucket_t *b, double rate, double burst, uint64_t now_ms);

/* What the server keeps per source address. */
typedef struct vs_ip_entry {
    uint32_t conns;        /* open connections from this address */
    vs_bucket_t registers; /* register attempts */
    char addr[46];         /* text form, the map key */
} vs_ip_entry_t;

typedef struct vs_ip_table vs_ip_table_t;

vs_ip_table_t *vs_ip_table_new(void);
void vs_ip_table_free(vs_ip_table_t *t);
/* Returns the entry for addr, creating it; borrowed, valid until vs_ip_table_gc drops it. */
vs_ip_entry_t *vs_ip_table_get(vs_ip_table_t *t, const char *addr);
/* Forgets entries with no connections whose register bucket has refilled. */
void vs_ip_table_gc(vs_ip_table_t *t, double reg_rate, double reg_burst, uint64_t now_ms);
size_t vs_ip_table_count(const vs_ip_table_t *t);

#endif
