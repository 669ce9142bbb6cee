/* url.c: see url.h. */
#include "common/url.h"

#include "common/error.h"

#include <stdlib.h>
#include <string.h>

int vs_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long vs_percent_decode(const char *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%') {
            if (i + 2 >= n)
                return VS_EINVAL;
            int h = vs_hex_value(p[i + 1]), l = vs_hex_value(p[i + 2]);
            if (h < 0 || l < 0)
                return VS_EINVAL;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (c == '\0' || o + 1 >= cap)
            return VS_EINVAL;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

/* Parses "host[:port]" (host may be [v6]) from p[0..n). */
static int host_port(const char *p, size_t n, vs_url_t *u)
{
    const char *hend, *rest;
    if (n > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', n);
        if (!close)
            return VS_EINVAL;
        if (close - p - 1 <= 0 || (size_t)(close - p - 1) >= sizeof u->host)
            return VS_EINVAL;
        memcpy(u->host, p + 1, (size_t)(close - p - 1));
        u->host[close - p - 1] = '\0';
        hend = close + 1;
    } else {
        const char *colon = memchr(p, ':', n);
        hend = colon ? colon : p + n;
        size_t hl = (size_t)(hend - p);
        if (hl == 0 || hl >= sizeof u->host)
            return VS_EINVAL;
        memcpy(u->host, p, hl);
        u->host[hl] = '\0';
        for (size_t i = 0; i < hl; i++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_",
                        u->host[i]))
                return VS_EINVAL;
    }
    rest = hend;
    if (rest == p + n)
        return 0;
    if (*rest != ':' || rest + 1 == p + n)
        return VS_EINVAL;
    long port = 0;
    for (const char *q = rest + 1; q < p + n; q++) {
        if (*q < '0' || *q > '9' || (port = port * 10 + (*q - '0')) > 65535)
            return VS_EINVAL;
    }
    if (port == 0)
        return VS_EINVAL;
    u->port = (int)port;
    return 0;
}

int vs_url_parse(const char *text, enum vs_url_kind kind, vs_url_t *out)
{
    vs_url_t tmp;
    vs_url_t *u = out ? out : &tmp;
    memset(u, 0, sizeof *u);
    if (!text)
        return VS_EINVAL;
    const char *p;
    if (kind == VS_URL_POSTGRES) {
        if (strncmp(text, "postgres://", 11) == 0)
            p = text + 11;
        else if (strncmp(text, "postgresql://", 13) == 0)
            p = text + 13;
        else
            return VS_EINVAL;
        u->port = 5432;
        if (*p == '\0' || strpbrk(text, " \t\r\n"))
            return VS_EINVAL;
        const char *at = strchr(p, '@');
        const char *hp = at ? at + 1 : p;
        size_t n = strcspn(hp, "/?");
        if (n > 0 && !memchr(hp, ',', n)) /* a host list is libpq's to parse */
            return host_port(hp, n, u);
        return 0;
    }
    if (strncmp(text, "redis://", 8) != 0)
        return VS_EINVAL;
    p = text + 8;
    u->port = 6379;
    size_t n = strcspn(p, "/");
    const char *at = memchr(p, '@', n);
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon ||
            vs_percent_decode(colon + 1, (size_t)(at - colon - 1), u->password,
                              sizeof u->password) < 0)
            return VS_EINVAL;
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    if (host_port(p, n, u) != 0)
        return VS_EINVAL;
    p += n;
    if (*p == '/') {
        p++;
        if (*p == '\0')
            return 0;
        long db = 0;
        for (; *p; p++)
            if (*p < '0' || *p > '9' || (db = db * 10 + (*p - '0')) > 1000000)
                return VS_EINVAL;
        u->db = (int)db;
    }
    return 0;
}
