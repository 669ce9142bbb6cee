/* schema.h: the versioned schema migrations shared by every store back end (store_sqlite.c,
 * store_pg.c), as data: one entry per version with the SQL of each dialect, so that both back
 * ends always agree on version numbers, tables and columns.
 * It owns only these constant strings; it must never run SQL itself, and a released step must
 * never be edited (append a new one). */
#ifndef VS_STORAGE_SCHEMA_H
#define VS_STORAGE_SCHEMA_H

typedef struct vs_schema_migration {
    int version;          /* the schema version this step produces (1, 2, ...) */
    const char *sqlite;   /* static; statements for SQLite, run in the migration transaction */
    const char *postgres; /* static; the same step for PostgreSQL, same tables and columns */
} vs_schema_migration_t;

/* The newest schema version this binary knows (what a fresh database is migrated to). */
int vs_schema_version(void);

/* The step that takes the schema from version - 1 to version, for 1 <= version <=
 * vs_schema_version(); NULL otherwise. Returns a static entry, never freed. */
const vs_schema_migration_t *vs_schema_migration(int version);

#endif
