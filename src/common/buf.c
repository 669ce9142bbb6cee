#include "common/buf.h"

#include "common/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vs_buf_deinit(vs_buf_t *b)
{
    free(b->p);
    vs_buf_init(b);
}

char *vs_buf_reserve(vs_buf_t *b, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        b->p = vs_realloc(b->p, cap);
        b->cap = cap;
    }
    return b->p + b->len;
}

void vs_buf_append(vs_buf_t *b, const void *data, size_t n)
{
    memcpy(vs_buf_reserve(b, n), data, n);
    b->len += n;
}

void vs_buf_puts(vs_buf_t *b, const char *s)
{
    vs_buf_append(b, s, strlen(s));
}

void vs_buf_printf(vs_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    char *w = vs_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(w, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void vs_buf_json_str(vs_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *w = vs_buf_reserve(b, n * 6 + 2);
    char *start = w;
    *w++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *w++ = '\\';
            *w++ = (char)c;
        } else if (c < 0x20) {
            *w++ = '\\';
            *w++ = 'u';
            *w++ = '0';
            *w++ = '0';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        } else {
            *w++ = (char)c;
        }
    }
    *w++ = '"';
    b->len += (size_t)(w - start);
}
