/* backoff.c: exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS
 * architecture blog): each delay is uniform between 1 ms and a ceiling that doubles per failed
 * attempt, so that many clients dropped by the same server restart do not come back in step. */
#include "internal.h"

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void vl_backoff_init(vl_backoff_t *b, unsigned initial_ms, unsigned max_ms, uint64_t seed)
{
    if (max_ms == 0)
        max_ms = 1;
    if (initial_ms == 0)
        initial_ms = 1;
    if (initial_ms > max_ms)
        initial_ms = max_ms;
    b->initial_ms = initial_ms;
    b->max_ms = max_ms;
    b->attempt = 0;
    b->rng = seed;
}

unsigned vl_backoff_ceiling(const vl_backoff_t *b)
{
    uint64_t c = b->initial_ms;
    for (unsigned i = 0; i < b->attempt && c < b->max_ms; i++)
        c *= 2;
    return c > b->max_ms ? b->max_ms : (unsigned)c;
}

unsigned vl_backoff_next(vl_backoff_t *b)
{
    unsigned ceiling = vl_backoff_ceiling(b);
    if (ceiling < b->max_ms)
        b->attempt++;
    /* Modulo bias is below 2^-32 for any 32-bit ceiling: irrelevant for jitter. */
    return 1 + (unsigned)(splitmix64(&b->rng) % ceiling);
}

void vl_backoff_reset(vl_backoff_t *b)
{
    b->attempt = 0;
}
