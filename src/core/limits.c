#include "core/limits.h"

#include "common/alloc.h"
#include "common/map.h"

#include <stdlib.h>
#include <string.h>

static void refill(vs_bucket_t *b, double rate, double burst, uint64_t now_ms)
{
    if (b->last_ms == 0) {
        b->tokens = burst;
    } else if (now_ms > b->last_ms) {
        b->tokens += rate * (double)(now_ms - b->last_ms) / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
    }
    if (now_ms > b->last_ms || b->last_ms == 0)
        b->last_ms = now_ms ? now_ms : 1;
}

int vs_bucket_take(vs_bucket_t *b, double rate, double burst, double cost, uint64_t now_ms)
{
    refill(b, rate, burst, now_ms);
    if (b->tokens < cost)
        return 0;
    b->tokens -= cost;
    return 1;
}

int vs_bucket_ready(vs_bucket_t *b, double rate, double burst, uint64_t now_ms)
{
    refill(b, rate, burst, now_ms);
    return b->tokens >= 1.0;
}

int vs_bucket_full(const vs_bucket_t *b, double rate, double burst, uint64_t now_ms)
{
    if (b->last_ms == 0)
        return 1;
    double t = b->tokens;
    if (now_ms > b->last_ms)
        t += rate * (double)(now_ms - b->last_ms) / 1000.0;
    return t >= burst;
}

struct vs_ip_table {
    vs_map_t *map;
};

vs_ip_table_t *vs_ip_table_new(void)
{
    vs_ip_table_t *t = vs_calloc(1, sizeof *t);
    t->map = vs_map_new();
    return t;
}

static void free_entry(void *val, void *ud)
{
    (void)ud;
    free(val);
}

void vs_ip_table_free(vs_ip_table_t *t)
{
    if (!t)
        return;
    vs_map_each(t->map, free_entry, NULL);
    vs_map_free(t->map);
    free(t);
}

vs_ip_entry_t *vs_ip_table_get(vs_ip_table_t *t, const char *addr)
{
    size_t n = strnlen(addr, sizeof ((vs_ip_entry_t *)0)->addr - 1);
    vs_ip_entry_t *e = vs_map_get(t->map, addr, n);
    if (e)
        return e;
    e = vs_calloc(1, sizeof *e);
    memcpy(e->addr, addr, n);
    vs_map_put(t->map, e->addr, n, e);
    return e;
}

typedef struct gc_ctx {
    double rate, burst;
    uint64_t now;
    vs_ip_entry_t **victims;
    size_t n, cap;
} gc_ctx_t;

static void collect(void *val, void *ud)
{
    gc_ctx_t *g = ud;
    vs_ip_entry_t *e = val;
    if (e->conns || !vs_bucket_full(&e->registers, g->rate, g->burst, g->now))
        return;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->victims = vs_realloc(g->victims, g->cap * sizeof *g->victims);
    }
    g->victims[g->n++] = e;
}

void vs_ip_table_gc(vs_ip_table_t *t, double reg_rate, double reg_burst, uint64_t now_ms)
{
    gc_ctx_t g = {reg_rate, reg_burst, now_ms, NULL, 0, 0};
    vs_map_each(t->map, collect, &g);
    for (size_t i = 0; i < g.n; i++) {
        vs_map_del(t->map, g.victims[i]->addr, strlen(g.victims[i]->addr));
        free(g.victims[i]);
    }
    free(g.victims);
}

size_t vs_ip_table_count(const vs_ip_table_t *t)
{
    return vs_map_count(t->map);
}
