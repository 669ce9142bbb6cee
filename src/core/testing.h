/* testing.h: hooks for in-process harnesses (fuzz targets, tests) that drive message and HTTP
 * handling without sockets. It owns nothing of its own: it builds an inert server, connections
 * that have a libuv handle but no socket, and reads back what they were sent. The server itself
 * never calls it, and it must never write to a connection's socket: queued output is only
 * inspected and dropped, never flushed.
 *
 * Everything here runs on the thread that created the server. */
#ifndef VS_CORE_TESTING_H
#define VS_CORE_TESTING_H

#include "core/config.h"
#include "core/server.h"
#include "transport/conn.h"

#include <stddef.h>
#include <stdint.h>

/* vs_server_new (the store is opened and the listeners bound), then made inert: the listeners and
 * signal handlers are closed and the timers and the flush check stopped, so the loop only runs
 * when a hook below drives it and no connection is ever flushed, pinged or swept.
 * cfg: borrowed, must outlive the server. err: borrowed, errlen bytes.
 * Returns NULL with the reason in err on failure. Free with vs_testing_server_free. */
vs_server_t *vs_testing_server_new(const vs_config_t *cfg, char *err, size_t errlen);
/* Settles pending registers, destroys every remaining connection, closes the loop's handles and
 * frees the server (NULL is fine). */
void vs_testing_server_free(vs_server_t *s);

/* For fuzz targets: made at the first call, freed at exit (its data directory, a fresh one
 * under /tmp, removed with it): a server from the default settings on 127.0.0.1 and a
 * kernel-picked port, adjusted by tune (may be NULL) first. Later calls return the same one.
 * *cfg_out (may be NULL) receives its settings, borrowed. Aborts with the reason on failure. */
vs_server_t *vs_testing_fuzz_server(void (*tune)(vs_config_t *cfg), const vs_config_t **cfg_out);

/* A connection in the HTTP phase, as if just accepted, but without a socket. addr (borrowed,
 * canonical address text) is its source address, counted against max-connections-per-ip; NULL
 * makes it a trusted local peer (X-Forwarded-For is then honoured, see trusted-proxies).
 * Returns the connection (owned by the server; free with vs_testing_conn_free) or NULL when addr
 * is at its connection limit. */
vs_conn_t *vs_testing_conn_new(vs_server_t *s, const char *addr);
/* Upgrades an HTTP-phase connection to an open WebSocket through vs_conn_upgrade, drops the 101
 * and hello it queued, and sets its register nonce to nonce (borrowed, 1 to 22 chars of
 * base64url) so that a harness can sign registers for it. Returns 0 or VS_EINVAL. */
int vs_testing_conn_upgrade(vs_conn_t *c, const char *nonce);
/* Puts an open connection online as uid (borrowed, already folded) with key (borrowed, 32
 * bytes), as a completed register does but without a reply; the user must not be online yet.
 * Returns 0 or VS_EINVAL. */
int vs_testing_conn_set_user(vs_conn_t *c, const char *uid, const uint8_t key[32]);
/* Drops c's queued output unwritten and takes it off the flush list. */
void vs_testing_conn_clear_output(vs_conn_t *c);
/* Destroys c now, whatever its state (as the flush check does), and lets its handle close. */
void vs_testing_conn_free(vs_conn_t *c);

/* Runs the group commit until no register is waiting: submits the batch, waits for the worker
 * and delivers the answers, as the loop does between turns. Output stays queued. */
void vs_testing_settle(vs_server_t *s);
/* Forgets every per-address entry (connection counts, register buckets), so that one run does
 * not rate-limit the next. Returns VS_EINVAL (and forgets nothing) while a connection still
 * points at an entry. */
int vs_testing_reset_addresses(vs_server_t *s);
/* 1 when the server holds no connection, directory entry, waiting register or flush entry:
 * what must be true once a harness freed every connection it made. */
int vs_testing_idle(const vs_server_t *s);

/* Reads the server frame (unmasked, FIN set, RSV clear, shortest length encoding) at *off in
 * buf[0..len), both borrowed. On success stores its opcode and payload (borrowed from buf),
 * advances *off past it and returns 1; returns 0 at the end of buf, VS_EPROTO for anything a
 * server must not send (or a truncated frame). */
int vs_testing_next_frame(const uint8_t *buf, size_t len, size_t *off, int *opcode,
                          const uint8_t **payload, size_t *plen);

#endif
