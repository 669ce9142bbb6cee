/* alloc.h: allocation helpers for the server. They abort on out-of-memory (the server's
 * policy, see STYLE.md); the client library must not use them. */
#ifndef VS_COMMON_ALLOC_H
#define VS_COMMON_ALLOC_H

#include <stddef.h>

/* Each returns memory the caller frees with free(). Never returns NULL. */
void *vs_malloc(size_t n);
void *vs_calloc(size_t count, size_t n);
void *vs_realloc(void *p, size_t n);
char *vs_strdup(const char *s);
char *vs_strndup(const char *s, size_t n);

#endif
