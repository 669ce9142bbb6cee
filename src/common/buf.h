/* buf.h: a growable byte buffer for building outgoing text. The buffer owns its memory;
 * vs_buf_deinit frees it. Aborts on out-of-memory (server policy). */
#ifndef VS_COMMON_BUF_H
#define VS_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct vs_buf {
    char *p;
    size_t len, cap;
} vs_buf_t;

static inline void vs_buf_init(vs_buf_t *b)
{
    b->p = NULL;
    b->len = b->cap = 0;
}
void vs_buf_deinit(vs_buf_t *b);
/* Makes room for n more bytes and returns where they go (len is not advanced). */
char *vs_buf_reserve(vs_buf_t *b, size_t n);
void vs_buf_append(vs_buf_t *b, const void *data, size_t n);
void vs_buf_puts(vs_buf_t *b, const char *s);
void vs_buf_printf(vs_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included, escaping as RFC 8259 requires. */
void vs_buf_json_str(vs_buf_t *b, const char *s, size_t n);

#endif
