/* store_pg.h: the PostgreSQL back end of store.h (libpq), for cluster mode where several nodes
 * share one database.
 * The store owns two connections (one per thread of store.h), their reconnects and prepared
 * statements, and the schema migrations of schema.h. It must never log or report the URL (it
 * holds a password), user ids or keys, never acknowledge a binding before its COMMIT is
 * durable, and never block the loop thread for more than a few seconds on a dead server. */
#ifndef VS_STORAGE_STORE_PG_H
#define VS_STORAGE_STORE_PG_H

#include "storage/store.h"

#include <stddef.h>

/* Connects to the PostgreSQL database at url (borrowed, postgres:// or postgresql://, passed to
 * libpq as is plus connection and keepalive timeouts) and applies pending schema migrations
 * under an advisory lock, so nodes starting together migrate once. Tables live in the first
 * schema of the session's search_path (the URL may set it with options=-csearch_path=...).
 * out: borrowed, filled on success (close with vs_store_close) and zeroed on failure. err:
 * borrowed, errlen bytes, receives a NUL-terminated human-readable reason on failure that
 * names at most the host and port (e.g. "cannot connect to PostgreSQL at 10.0.0.5:5432:
 * Connection refused", "schema version 7 is newer than this binary supports (1)"); may be NULL
 * when errlen is 0.
 * Returns 0, VS_EINVAL (bad arguments, not a PostgreSQL URL) or VS_ESTORE (cannot connect or
 * authenticate, server too old, not a Volli database, schema too new, migration failed).
 * Blocks for up to a few seconds per connection attempt, longer while another node migrates. */
int vs_store_pg_open(const char *url, vs_store_t *out, char *err, size_t errlen);

#endif
