/* slice.h: a borrowed view of bytes. Never owns what it points at. */
#ifndef VS_COMMON_SLICE_H
#define VS_COMMON_SLICE_H

#include <stddef.h>
#include <string.h>

typedef struct vs_slice {
    const char *p;
    size_t len;
} vs_slice_t;

static inline int vs_slice_eq(vs_slice_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

#endif
