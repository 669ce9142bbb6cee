/* url.c: ws:// server URLs. Strict on purpose: the host and path end up in the HTTP request
 * line and Host header, so anything that could split or smuggle a header is refused here. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void vl_url_free(vl_url_t *u)
{
    if (!u)
        return;
    free(u->text);
    free(u->host);
    free(u->hostport);
    free(u->path);
    memset(u, 0, sizeof *u);
}

static int host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '-' || ch == '_';
}

/* Printable ASCII without space: what may follow the authority in a request target. */
static int path_char(char ch)
{
    return ch > 0x20 && ch < 0x7F && ch != '#';
}

static int parse_port(const char *s, size_t n, uint16_t *port)
{
    if (n == 0 || n > 5)
        return VOLLI_EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return VOLLI_EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return VOLLI_EINVAL;
    *port = (uint16_t)v;
    return 0;
}

int vl_url_parse(const char *text, vl_url_t *out)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return VOLLI_EINVAL;
    if (strncasecmp(text, "wss://", 6) == 0)
        return VOLLI_EUNSUPPORTED;
    if (strncasecmp(text, "ws://", 5) != 0)
        return VOLLI_EINVAL;
    const char *auth = text + 5;
    size_t alen = strcspn(auth, "/?#");
    const char *rest = auth + alen;
    const char *host, *port_s = NULL;
    size_t hlen, plen = 0;

    if (alen == 0 || memchr(auth, '@', alen))
        return VOLLI_EINVAL; /* no host, or userinfo (never meaningful for us) */
    if (auth[0] == '[') {
        const char *close = memchr(auth, ']', alen);
        if (!close)
            return VOLLI_EINVAL;
        host = auth + 1;
        hlen = (size_t)(close - host);
        const char *after = close + 1;
        if (after < rest) {
            if (*after != ':')
                return VOLLI_EINVAL;
            port_s = after + 1;
            plen = (size_t)(rest - port_s);
        }
        char v6[64];
        unsigned char bin[16];
        if (hlen == 0 || hlen >= sizeof v6)
            return VOLLI_EINVAL;
        memcpy(v6, host, hlen);
        v6[hlen] = '\0';
        if (uv_inet_pton(AF_INET6, v6, bin) != 0)
            return VOLLI_EINVAL;
        out->ipv6 = 1;
    } else {
        const char *colon = memchr(auth, ':', alen);
        host = auth;
        hlen = colon ? (size_t)(colon - auth) : alen;
        if (colon) {
            port_s = colon + 1;
            plen = (size_t)(rest - port_s);
        }
        if (hlen == 0 || hlen > 253)
            return VOLLI_EINVAL;
        for (size_t i = 0; i < hlen; i++) {
            if (!host_char(host[i]))
                return VOLLI_EINVAL;
        }
    }
    out->port = 80;
    if (port_s && parse_port(port_s, plen, &out->port) != 0)
        return VOLLI_EINVAL;
    if (*rest == '#')
        return VOLLI_EINVAL; /* RFC 6455 3: fragments are not allowed in WebSocket URIs */
    for (const char *p = rest; *p; p++) {
        if (!path_char(*p))
            return VOLLI_EINVAL;
    }

    out->text = vl_strdup(text);
    out->host = vl_strndup(host, hlen);
    if (*rest == '/') {
        out->path = vl_strdup(rest);
    } else {
        /* "ws://h?x" means path "/" with a query */
        size_t n = strlen(rest);
        out->path = malloc(n + 2);
        if (out->path) {
            out->path[0] = '/';
            memcpy(out->path + 1, rest, n + 1);
        }
    }
    size_t cap = hlen + 2 + 7;
    out->hostport = malloc(cap + 1);
    if (!out->text || !out->host || !out->path || !out->hostport) {
        vl_url_free(out);
        return VOLLI_ENOMEM;
    }
    const char *l = out->ipv6 ? "[" : "", *r = out->ipv6 ? "]" : "";
    if (out->port == 80)
        snprintf(out->hostport, cap + 1, "%s%s%s", l, out->host, r);
    else
        snprintf(out->hostport, cap + 1, "%s%s%s:%u", l, out->host, r, (unsigned)out->port);
    return 0;
}
