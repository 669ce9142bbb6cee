/* http.h: the HTTP/1.1 phase of a connection (Debian's http_parser): the WebSocket upgrade
 * on / and /rtc, /healthz, /metrics, and 404 for anything else. It owns the request state
 * only until the response or the upgrade; it never keeps a connection alive after a plain
 * HTTP response. */
#ifndef VS_TRANSPORT_HTTP_H
#define VS_TRANSPORT_HTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct vs_conn vs_conn_t;
typedef struct vs_http_req vs_http_req_t;

/* Caller frees with vs_http_req_free (NULL is fine). */
vs_http_req_t *vs_http_req_new(void);
void vs_http_req_free(vs_http_req_t *r);
/* Feeds bytes read in the HTTP phase; answers or upgrades when the request is complete. */
void vs_http_feed(vs_conn_t *c, uint8_t *data, size_t len);

#endif
