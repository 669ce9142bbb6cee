/* store.h: the durable store of user id -> Ed25519 public key bindings, behind a table of
 * functions so that other back ends (PostgreSQL) can sit behind the same interface.
 * The store owns its connections and prepared statements. It must never acknowledge a binding
 * (bind_keys returning 0) before it is durable against a crash and a power loss, never change
 * a key once bound, and never log user ids or keys.
 *
 * Threads: get_key and count_users are called by one thread at a time: the event-loop thread
 * for SQLite; for PostgreSQL, whose reads may block, count_users at start and get_key on one
 * worker thread at a time (core/lookup.c). bind_keys runs on one worker thread at a time,
 * possibly while the other reads. open and free are called when no other call is running. */
#ifndef VS_STORAGE_STORE_H
#define VS_STORAGE_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct vs_binding {
    const char *user_id; /* borrowed, already folded and validated (protocol/userid.h) */
    uint8_t key[32];     /* raw Ed25519 public key */
    int result;          /* out: 0 = bound now or already bound to this same key,
                            VS_EMISMATCH = bound to another key */
    int created;         /* out: 1 if this call created the binding */
} vs_binding_t;

typedef struct vs_store_ops {
    const char *name; /* "sqlite" */
    /* Looks up the key bound to user_id (borrowed, NUL-terminated) and copies it into key.
     * Returns 0, VS_ENOTFOUND, VS_EINVAL (NULL user_id) or VS_ESTORE. Loop thread only. */
    int (*get_key)(void *self, const char *user_id, uint8_t key[32]);
    /* Binds a batch in ONE durable transaction (group commit). items: borrowed, n entries;
     * their user_id/key are read, result/created written. Items are applied in order, so a
     * second item for the same user with another key gets VS_EMISMATCH (created 0), with the
     * same key result 0, created 0. An item with a NULL user_id gets VS_EINVAL without
     * failing the others. Returns 0 once committed, or VS_ESTORE with nothing written (every
     * item's result then is VS_ESTORE). One worker thread at a time, concurrent with reads. */
    int (*bind_keys)(void *self, vs_binding_t *items, size_t n);
    /* Stores the number of bound user ids in *out. Returns 0 or VS_ESTORE. Loop thread only. */
    int (*count_users)(void *self, uint64_t *out);
    /* Closes the store and frees self. */
    void (*free)(void *self);
} vs_store_ops_t;

typedef struct vs_store {
    const vs_store_ops_t *ops; /* static, never freed */
    void *self;                /* owned by the store, freed by vs_store_close */
} vs_store_t;

/* Opens DIR/volli.db, creating DIR (and missing parents, mode 0700) and the database if needed,
 * and applies pending schema migrations.
 * dir: borrowed. out: borrowed, filled on success (close with vs_store_close) and zeroed on
 * failure. err: borrowed, errlen bytes, receives a NUL-terminated human-readable reason on
 * failure (e.g. "data directory ./x is not writable: Permission denied", "database
 * ./x/volli.db is locked by another process", "schema version 7 is newer than this binary
 * supports (1)"); may be NULL when errlen is 0.
 * Returns 0, VS_EINVAL (bad arguments), VS_EIO (the data directory cannot be created or
 * written) or VS_ESTORE (the database cannot be opened, is locked, is not a Volli database or
 * is too new). May block for a few seconds while another process holds a lock. */
int vs_store_sqlite_open(const char *dir, vs_store_t *out, char *err, size_t errlen);

/* The start of every open: err emptied, out zeroed (both may be NULL). */
void vs_store_open_reset(vs_store_t *out, char *err, size_t errlen);

/* Formats a failure's reason into err (errlen bytes; nothing when err is NULL or errlen 0). */
void vs_store_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Creates the data directory DIR (and missing parents, mode 0700, synced) if needed and checks
 * that it is a writable directory; vs_store_sqlite_open does this itself. dir, err: borrowed.
 * Returns 0 or VS_EIO with err filled. */
int vs_store_prepare_dir(const char *dir, char *err, size_t errlen);

/* The file name of the SQLite database inside the data directory. */
#define VS_STORE_SQLITE_FILE "volli.db"

/* The newest schema version this binary knows (what a fresh database is migrated to). */
int vs_store_sqlite_schema_version(void);

static inline int vs_store_get_key(vs_store_t *st, const char *user_id, uint8_t key[32])
{
    return st->ops->get_key(st->self, user_id, key);
}

static inline int vs_store_bind_keys(vs_store_t *st, vs_binding_t *items, size_t n)
{
    return st->ops->bind_keys(st->self, items, n);
}

static inline int vs_store_count_users(vs_store_t *st, uint64_t *out)
{
    return st->ops->count_users(st->self, out);
}

/* Closes st if it is open and zeroes it; safe to call twice. st: borrowed. */
static inline void vs_store_close(vs_store_t *st)
{
    if (st && st->ops)
        st->ops->free(st->self);
    if (st) {
        st->ops = NULL;
        st->self = NULL;
    }
}

#endif
