/* url.h: parsing the service URLs of cluster mode (redis://, postgres://). Pure functions: no
 * I/O, no logging (the URLs may hold passwords). */
#ifndef VS_COMMON_URL_H
#define VS_COMMON_URL_H

#include <stddef.h>

enum vs_url_kind { VS_URL_REDIS, VS_URL_POSTGRES };

typedef struct vs_url {
    char host[256];     /* a name or an address, without IPv6 brackets */
    int port;           /* 6379 for Redis when absent, 5432 for PostgreSQL */
    char password[256]; /* empty when absent (Redis: the URL's; PostgreSQL: not filled) */
    int db;             /* Redis database number, 0 when absent */
} vs_url_t;

/* The value of a hexadecimal digit (either case), or -1. */
int vs_hex_value(char c);

/* Decodes p[0..n) (borrowed) with percent escapes into out (cap bytes with the NUL). Returns
 * the decoded length, or VS_EINVAL for a broken escape, a NUL, or more than fits. */
long vs_percent_decode(const char *p, size_t n, char *out, size_t cap);

/* Parses text (borrowed, NUL-terminated) as a URL of the given kind into out (borrowed; may be
 * NULL to only validate). Redis: redis://[[user]:password@]host[:port][/db]; percent escapes
 * are decoded in the password. PostgreSQL: postgres:// or postgresql:// followed by a
 * non-empty rest (libpq parses the rest; only host and port are filled when present).
 * Returns 0 or VS_EINVAL. */
int vs_url_parse(const char *text, enum vs_url_kind kind, vs_url_t *out);

#endif
