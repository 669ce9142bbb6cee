#include "common/map.h"

#include "common/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

typedef struct entry {
    uint64_t hash; /* 0 marks an empty slot */
    const char *key;
    size_t len;
    void *val;
} entry_t;

struct vs_map {
    entry_t *slots;
    size_t cap; /* power of two */
    size_t count;
    uint8_t seed[16];
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v; /* little-endian hosts only, as the rest of the server */
}

uint64_t vs_siphash13(const uint8_t key[16], const void *data, size_t len)
{
    const uint8_t *in = data;
    uint64_t k0 = load64(key), k1 = load64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    uint64_t b = (uint64_t)len << 56;
    const uint8_t *end = in + (len & ~(size_t)7);
    for (; in != end; in += 8) {
        uint64_t m = load64(in);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

vs_map_t *vs_map_new(void)
{
    vs_map_t *m = vs_calloc(1, sizeof *m);
    m->cap = 16;
    m->slots = vs_calloc(m->cap, sizeof(entry_t));
    if (getrandom(m->seed, sizeof m->seed, 0) != (ssize_t)sizeof m->seed) {
        /* Only fails on pre-3.17 kernels; fall back to a per-map address-derived seed. */
        uintptr_t a = (uintptr_t)m;
        memcpy(m->seed, &a, sizeof a);
    }
    return m;
}

void vs_map_free(vs_map_t *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m);
}

static uint64_t hash_of(const vs_map_t *m, const char *key, size_t len)
{
    uint64_t h = vs_siphash13(m->seed, key, len);
    return h ? h : 1;
}

static entry_t *find(const vs_map_t *m, uint64_t h, const char *key, size_t len)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        entry_t *e = &m->slots[i];
        if (e->hash == 0)
            return e;
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    }
}

static void grow(vs_map_t *m)
{
    entry_t *old = m->slots;
    size_t oldcap = m->cap;
    m->cap *= 2;
    m->slots = vs_calloc(m->cap, sizeof(entry_t));
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].hash)
            *find(m, old[i].hash, old[i].key, old[i].len) = old[i];
    free(old);
}

void *vs_map_get(const vs_map_t *m, const char *key, size_t len)
{
    entry_t *e = find(m, hash_of(m, key, len), key, len);
    return e->hash ? e->val : NULL;
}

void *vs_map_put(vs_map_t *m, const char *key, size_t len, void *val)
{
    if ((m->count + 1) * 4 > m->cap * 3)
        grow(m);
    uint64_t h = hash_of(m, key, len);
    entry_t *e = find(m, h, key, len);
    void *prev = e->hash ? e->val : NULL;
    if (!e->hash)
        m->count++;
    *e = (entry_t){h, key, len, val};
    return prev;
}

void *vs_map_del(vs_map_t *m, const char *key, size_t len)
{
    entry_t *e = find(m, hash_of(m, key, len), key, len);
    if (!e->hash)
        return NULL;
    void *val = e->val;
    size_t mask = m->cap - 1, i = (size_t)(e - m->slots);
    /* Backward-shift deletion keeps probe chains intact without tombstones. */
    for (size_t j = (i + 1) & mask; m->slots[j].hash; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        int movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].hash = 0;
    m->count--;
    return val;
}

size_t vs_map_count(const vs_map_t *m)
{
    return m->count;
}

void vs_map_each(const vs_map_t *m, void (*fn)(void *val, void *ud), void *ud)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].hash)
            fn(m->slots[i].val, ud);
}
