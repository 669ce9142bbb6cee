/* schema.c: the migration steps of schema.h. Each step runs inside the back end's migration
 * transaction, so a failed step leaves the previous version intact. */
#include "storage/schema.h"

#include "storage/store.h"

#include <stdarg.h>
#include <stdio.h>

#include <stddef.h>

static const vs_schema_migration_t MIGRATIONS[] = {
    {
        /* 1: users, and a trigger-maintained count so count_users (loop thread) is O(1). */
        .version = 1,
        .sqlite = "CREATE TABLE users ("
                  "  user_id TEXT PRIMARY KEY NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),"
                  "  public_key BLOB NOT NULL CHECK (typeof(public_key) = 'blob' AND "
                  "length(public_key) = 32),"
                  "  created_at INTEGER NOT NULL"
                  ") WITHOUT ROWID;"
                  "CREATE TABLE counters ("
                  "  name TEXT PRIMARY KEY NOT NULL,"
                  "  value INTEGER NOT NULL"
                  ") WITHOUT ROWID;"
                  "INSERT INTO counters (name, value) VALUES ('users', 0);"
                  "CREATE TRIGGER users_count_insert AFTER INSERT ON users BEGIN"
                  "  UPDATE counters SET value = value + 1 WHERE name = 'users';"
                  "END;"
                  "CREATE TRIGGER users_count_delete AFTER DELETE ON users BEGIN"
                  "  UPDATE counters SET value = value - 1 WHERE name = 'users';"
                  "END;",
        /* Statement-level triggers over transition tables: one counter update per batch, not
         * per row, and none when nothing was inserted, so nodes that only re-bind existing ids
         * never queue on the counter row. The functions pin search_path to the schema they
         * were created in, whatever the session's search_path is later. */
        .postgres =
            "CREATE TABLE users ("
            "  user_id text PRIMARY KEY NOT NULL CHECK (char_length(user_id) BETWEEN 1 AND 128),"
            "  public_key bytea NOT NULL CHECK (octet_length(public_key) = 32),"
            "  created_at bigint NOT NULL"
            ");"
            "CREATE TABLE counters ("
            "  name text PRIMARY KEY NOT NULL,"
            "  value bigint NOT NULL"
            ");"
            "INSERT INTO counters (name, value) VALUES ('users', 0);"
            "CREATE FUNCTION users_count_insert() RETURNS trigger LANGUAGE plpgsql"
            "  SET search_path FROM CURRENT AS $$"
            "BEGIN"
            "  IF EXISTS (SELECT 1 FROM inserted) THEN"
            "    UPDATE counters SET value = value + (SELECT count(*) FROM inserted)"
            "      WHERE name = 'users';"
            "  END IF;"
            "  RETURN NULL;"
            "END $$;"
            "CREATE FUNCTION users_count_delete() RETURNS trigger LANGUAGE plpgsql"
            "  SET search_path FROM CURRENT AS $$"
            "BEGIN"
            "  IF EXISTS (SELECT 1 FROM deleted) THEN"
            "    UPDATE counters SET value = value - (SELECT count(*) FROM deleted)"
            "      WHERE name = 'users';"
            "  END IF;"
            "  RETURN NULL;"
            "END $$;"
            "CREATE TRIGGER users_count_insert AFTER INSERT ON users"
            "  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT"
            "  EXECUTE FUNCTION users_count_insert();"
            "CREATE TRIGGER users_count_delete AFTER DELETE ON users"
            "  REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT"
            "  EXECUTE FUNCTION users_count_delete();",
    },
};

#define COUNT ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

int vs_schema_version(void)
{
    return COUNT;
}

const vs_schema_migration_t *vs_schema_migration(int version)
{
    if (version < 1 || version > COUNT)
        return NULL;
    return &MIGRATIONS[version - 1];
}

void vs_store_open_reset(vs_store_t *out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (out) {
        out->ops = NULL;
        out->self = NULL;
    }
}

void vs_store_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
