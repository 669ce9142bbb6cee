/* store_sqlite.c: the SQLite back end of store.h.
 *
 * Two connections to one WAL database: a read-only one for the loop thread (get_key,
 * count_users) and a writer for the worker thread (bind_keys). Each connection is used by one
 * thread only, so the struct needs no mutex, and in WAL mode readers never wait for the writer.
 * The writer runs with synchronous=FULL: every committed batch is fsync'd before bind_keys
 * returns, which is why callers batch (group commit). */
#include "storage/store.h"

#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"
#include "storage/schema.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* 'Voll' in the database header, so we never migrate some other program's database. */
#define APPLICATION_ID 0x566f6c6c

/* The worker may wait for another process's lock; the loop thread must not stall long (in WAL
 * mode it only waits during crash recovery or for an exclusive lock held elsewhere). */
#define WRITER_BUSY_MS 5000
#define READER_BUSY_MS 1000

/* The WAL is reused after each checkpoint; this caps what it keeps on disk after a burst. */
#define WAL_SIZE_LIMIT (64 * 1024 * 1024)

/* The steps themselves live in schema.c, shared with store_pg.c. */
#define SCHEMA_VERSION vs_schema_version()

typedef struct sqlite_store {
    sqlite3 *rdb; /* loop thread */
    sqlite3 *wdb; /* worker thread */
    sqlite3_stmt *r_get, *r_count;
    sqlite3_stmt *w_begin, *w_commit, *w_rollback, *w_insert, *w_get;
    int lock_fd; /* flock on DIR/volli.lock: one server per data directory */
} sqlite_store_t;


int vs_store_sqlite_schema_version(void)
{
    return SCHEMA_VERSION;
}

/* Turns a failed SQLite call at open time into the message an operator needs. */
static int db_err(sqlite3 *db, int rc, const char *path, const char *doing, char *err,
                  size_t errlen)
{
    int sys = db ? sqlite3_system_errno(db) : 0;

    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        vs_store_errf(err, errlen, "database %s is locked by another process", path);
        break;
    case SQLITE_NOTADB:
        vs_store_errf(err, errlen, "file %s is not a SQLite database", path);
        break;
    case SQLITE_CORRUPT:
        vs_store_errf(err, errlen, "database %s is corrupt", path);
        break;
    case SQLITE_READONLY:
        vs_store_errf(err, errlen, "database %s is read-only", path);
        break;
    case SQLITE_FULL:
        vs_store_errf(err, errlen, "cannot %s database %s: disk full", doing, path);
        break;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_PERM:
        if (sys) {
            vs_store_errf(err, errlen, "cannot %s database %s: %s", doing, path, strerror(sys));
            break;
        }
        /* fall through */
    default:
        vs_store_errf(err, errlen, "cannot %s database %s: %s", doing, path,
                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        break;
    }
    return VS_ESTORE;
}

/* fsync of a directory makes the names created in it survive a power loss. Some file systems
 * cannot sync directories (EINVAL); there is nothing better to do on those. */
static int sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : errno;
    close(fd);
    return rc;
}

static int sync_parent(const char *path)
{
    char *parent = vs_strdup(path);
    char *slash = strrchr(parent, '/');
    int rc;
    if (!slash)
        rc = sync_dir(".");
    else if (slash == parent)
        rc = sync_dir("/");
    else {
        *slash = '\0';
        rc = sync_dir(parent);
    }
    free(parent);
    return rc;
}

/* mkdir -p with mode 0700, syncing each parent so a new data directory survives power loss. */
static int make_dirs(const char *dir, char *err, size_t errlen)
{
    char *path = vs_strdup(dir);
    size_t len = strlen(path);
    int rc = 0;

    for (size_t i = 1; i <= len && rc == 0; i++) {
        if ((path[i] != '/' && path[i] != '\0') || path[i - 1] == '/')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) == 0) {
            int e = sync_parent(path);
            if (e) {
                vs_store_errf(err, errlen, "cannot sync data directory %s: %s", dir, strerror(e));
                rc = VS_EIO;
            }
        } else if (errno != EEXIST) {
            vs_store_errf(err, errlen, "cannot create data directory %s: %s", dir, strerror(errno));
            rc = VS_EIO;
        }
        path[i] = c;
    }
    free(path);
    return rc;
}

int vs_store_prepare_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;

    if (stat(dir, &st) != 0) {
        if (errno != ENOENT && errno != ENOTDIR) {
            vs_store_errf(err, errlen, "cannot access data directory %s: %s", dir, strerror(errno));
            return VS_EIO;
        }
        int rc = make_dirs(dir, err, errlen);
        if (rc)
            return rc;
        if (stat(dir, &st) != 0) {
            vs_store_errf(err, errlen, "cannot access data directory %s: %s", dir, strerror(errno));
            return VS_EIO;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        vs_store_errf(err, errlen, "data directory %s is not a directory", dir);
        return VS_EIO;
    }
    /* access() also reports EROFS, which holds even for root. */
    if (access(dir, W_OK | X_OK) != 0) {
        vs_store_errf(err, errlen, "data directory %s is not writable: %s", dir, strerror(errno));
        return VS_EIO;
    }
    return 0;
}

/* Runs a PRAGMA (or any statement) that returns at most one integer row. */
static int query_int(sqlite3 *db, const char *sql, long long *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int enable_wal(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_err(db, rc, path, "open", err, errlen);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = db_err(db, rc, path, "open", err, errlen);
        sqlite3_finalize(st);
        return rc;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    int wal = mode && strcmp(mode, "wal") == 0;
    if (!wal)
        vs_store_errf(err, errlen, "database %s cannot use write-ahead logging (journal mode is %s)",
                path, mode ? mode : "unknown");
    sqlite3_finalize(st);
    return wal ? 0 : VS_ESTORE;
}

/* Checks that the database is ours (or empty) and not newer than this binary, then applies
 * the missing migrations, all in one transaction so a crash leaves the old version intact. */
static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    long long app_id = 0, version = 0, objects = 0;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_err(db, rc, path, "open", err, errlen);

    if ((rc = query_int(db, "PRAGMA application_id", &app_id)) != SQLITE_OK ||
        (rc = query_int(db, "PRAGMA user_version", &version)) != SQLITE_OK ||
        (rc = query_int(db, "SELECT count(*) FROM sqlite_master", &objects)) != SQLITE_OK) {
        rc = db_err(db, rc, path, "read", err, errlen);
        goto rollback;
    }
    if (app_id != APPLICATION_ID && (app_id != 0 || version != 0 || objects != 0)) {
        vs_store_errf(err, errlen, "database %s is not a Volli database (application_id %lld)", path,
                app_id);
        rc = VS_ESTORE;
        goto rollback;
    }
    if (version > SCHEMA_VERSION) {
        vs_store_errf(err, errlen, "schema version %lld is newer than this binary supports (%d)", version,
                SCHEMA_VERSION);
        rc = VS_ESTORE;
        goto rollback;
    }
    if (version < 0) {
        vs_store_errf(err, errlen, "database %s has an invalid schema version %lld", path, version);
        rc = VS_ESTORE;
        goto rollback;
    }

    for (long long v = version; v < SCHEMA_VERSION; v++) {
        char *msg = NULL;
        rc = sqlite3_exec(db, vs_schema_migration((int)v + 1)->sqlite, NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            vs_store_errf(err, errlen, "cannot migrate database %s to schema version %lld: %s", path,
                    v + 1, msg ? msg : sqlite3_errstr(rc));
            sqlite3_free(msg);
            rc = VS_ESTORE;
            goto rollback;
        }
    }
    if (version < SCHEMA_VERSION) {
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d",
                 APPLICATION_ID, SCHEMA_VERSION);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            rc = db_err(db, rc, path, "migrate", err, errlen);
            goto rollback;
        }
    }
    rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = db_err(db, rc, path, "migrate", err, errlen);
        goto rollback;
    }
    return 0;

rollback:
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, const char *path, char *err,
                   size_t errlen)
{
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    return rc == SQLITE_OK ? 0 : db_err(db, rc, path, "prepare statements for", err, errlen);
}

static int open_conn(const char *path, int flags, int busy_ms, sqlite3 **out, char *err,
                     size_t errlen)
{
    int rc = sqlite3_open_v2(path, out, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return db_err(*out, rc, path, "open", err, errlen);
    sqlite3_extended_result_codes(*out, 1);
    sqlite3_busy_timeout(*out, busy_ms);
    return 0;
}

static int open_writer(sqlite_store_t *s, const char *path, char *err, size_t errlen)
{
    int rc = open_conn(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, WRITER_BUSY_MS, &s->wdb,
                       err, errlen);
    if (rc)
        return rc;
    /* SQLite silently falls back to read-only when it cannot open the file for writing. */
    if (sqlite3_db_readonly(s->wdb, "main") == 1) {
        vs_store_errf(err, errlen, "database %s is not writable", path);
        return VS_ESTORE;
    }
    if ((rc = enable_wal(s->wdb, path, err, errlen)) != 0)
        return rc;

    char sql[160];
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
             "PRAGMA journal_size_limit = %d",
             WAL_SIZE_LIMIT);
    rc = sqlite3_exec(s->wdb, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_err(s->wdb, rc, path, "configure", err, errlen);
    if ((rc = migrate(s->wdb, path, err, errlen)) != 0)
        return rc;

    if ((rc = prepare(s->wdb, "BEGIN IMMEDIATE", &s->w_begin, path, err, errlen)) ||
        (rc = prepare(s->wdb, "COMMIT", &s->w_commit, path, err, errlen)) ||
        (rc = prepare(s->wdb, "ROLLBACK", &s->w_rollback, path, err, errlen)) ||
        (rc = prepare(s->wdb,
                      "INSERT INTO users (user_id, public_key, created_at) VALUES (?1, ?2, ?3) "
                      "ON CONFLICT (user_id) DO NOTHING",
                      &s->w_insert, path, err, errlen)) ||
        (rc = prepare(s->wdb, "SELECT public_key FROM users WHERE user_id = ?1", &s->w_get, path,
                      err, errlen)))
        return rc;
    return 0;
}

static int open_reader(sqlite_store_t *s, const char *path, char *err, size_t errlen)
{
    int rc = open_conn(path, SQLITE_OPEN_READONLY, READER_BUSY_MS, &s->rdb, err, errlen);
    if (rc)
        return rc;
    rc = sqlite3_exec(s->rdb, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_err(s->rdb, rc, path, "configure", err, errlen);
    if ((rc = prepare(s->rdb, "SELECT public_key FROM users WHERE user_id = ?1", &s->r_get, path,
                      err, errlen)) ||
        (rc = prepare(s->rdb, "SELECT value FROM counters WHERE name = 'users'", &s->r_count, path,
                      err, errlen)))
        return rc;
    return 0;
}

static void store_free(void *self)
{
    sqlite_store_t *s = self;
    if (!s)
        return;
    sqlite3_stmt *stmts[] = {s->r_get,      s->r_count,  s->w_begin, s->w_commit,
                             s->w_rollback, s->w_insert, s->w_get};
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++)
        sqlite3_finalize(stmts[i]);
    /* Reader first: the writer, closing last, checkpoints and removes the WAL. */
    sqlite3_close_v2(s->rdb);
    sqlite3_close_v2(s->wdb);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s);
}

/* Runtime failures surface to callers only as VS_ESTORE; the reason goes to the log. SQLite's
 * messages name tables and constraints, never the values (user ids, keys). */
static void log_failure(sqlite3 *db, const char *op, int rc)
{
    VS_LOG(VS_LOG_ERROR, "store_failed", "op", "%s", op, "error", "%s", sqlite3_errmsg(db), "code",
           "%d", rc, NULL);
}

/* Copies a 32-byte key column; anything else means the file was tampered with. */
static int column_key(sqlite3_stmt *st, uint8_t key[32])
{
    if (sqlite3_column_type(st, 0) != SQLITE_BLOB || sqlite3_column_bytes(st, 0) != 32)
        return VS_ESTORE;
    memcpy(key, sqlite3_column_blob(st, 0), 32);
    return 0;
}

static int store_get_key(void *self, const char *user_id, uint8_t key[32])
{
    sqlite_store_t *s = self;
    if (!user_id)
        return VS_EINVAL;

    int ret;
    if (sqlite3_bind_text(s->r_get, 1, user_id, -1, SQLITE_STATIC) != SQLITE_OK) {
        ret = VS_ESTORE;
    } else {
        int rc = sqlite3_step(s->r_get);
        if (rc == SQLITE_ROW)
            ret = column_key(s->r_get, key);
        else
            ret = rc == SQLITE_DONE ? VS_ENOTFOUND : VS_ESTORE;
        if (ret == VS_ESTORE)
            log_failure(s->rdb, "get_key", rc);
    }
    /* Resetting ends the read transaction, so the reader never pins an old WAL snapshot. */
    sqlite3_reset(s->r_get);
    sqlite3_clear_bindings(s->r_get);
    return ret;
}

static int store_count_users(void *self, uint64_t *out)
{
    sqlite_store_t *s = self;
    int ret = VS_ESTORE;
    int rc = sqlite3_step(s->r_count);
    if (rc == SQLITE_ROW) {
        sqlite3_int64 v = sqlite3_column_int64(s->r_count, 0);
        if (v >= 0) {
            *out = (uint64_t)v;
            ret = 0;
        }
    }
    if (ret != 0)
        log_failure(s->rdb, "count_users", rc);
    sqlite3_reset(s->r_count);
    return ret;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns SQLITE_DONE, or the step error. */
static int step_once(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc;
}

/* Applies one item inside the open transaction. Returns SQLITE_DONE, or the SQLite error that
 * must fail the batch. */
static int bind_one(sqlite_store_t *s, vs_binding_t *it, int64_t now)
{
    if (!it->user_id) {
        it->result = VS_EINVAL;
        return SQLITE_DONE;
    }
    sqlite3_bind_text(s->w_insert, 1, it->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s->w_insert, 2, it->key, 32, SQLITE_STATIC);
    sqlite3_bind_int64(s->w_insert, 3, now);
    int rc = sqlite3_step(s->w_insert);
    sqlite3_reset(s->w_insert);
    sqlite3_clear_bindings(s->w_insert);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        /* A CHECK failure (empty or over-long id) aborts only this statement, not the
         * transaction: one bad item must not fail the whole group commit. */
        it->result = VS_EINVAL;
        return SQLITE_DONE;
    }
    if (rc != SQLITE_DONE)
        return rc;
    if (sqlite3_changes(s->wdb) == 1) {
        it->created = 1;
        it->result = 0;
        return SQLITE_DONE;
    }

    /* Already bound, possibly by an earlier item of this very batch. */
    uint8_t bound[32];
    sqlite3_bind_text(s->w_get, 1, it->user_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s->w_get);
    if (rc == SQLITE_ROW) {
        if (column_key(s->w_get, bound) == 0) {
            it->result = memcmp(bound, it->key, 32) == 0 ? 0 : VS_EMISMATCH;
            rc = SQLITE_DONE;
        } else {
            rc = SQLITE_CORRUPT;
        }
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_INTERNAL; /* the insert saw a row this select cannot */
    }
    sqlite3_reset(s->w_get);
    sqlite3_clear_bindings(s->w_get);
    return rc;
}

static int store_bind_keys(void *self, vs_binding_t *items, size_t n)
{
    sqlite_store_t *s = self;
    if (n == 0)
        return 0;
    if (!items)
        return VS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        items[i].result = VS_ESTORE;
        items[i].created = 0;
    }

    int rc = step_once(s->w_begin);
    if (rc != SQLITE_DONE)
        goto fail;
    int64_t now = now_ms();
    for (size_t i = 0; i < n; i++)
        if ((rc = bind_one(s, &items[i], now)) != SQLITE_DONE)
            goto fail;
    /* With synchronous=FULL this returns only after the WAL is fsync'd. */
    if ((rc = step_once(s->w_commit)) != SQLITE_DONE)
        goto fail;
    return 0;

fail:
    log_failure(s->wdb, "bind_keys", rc);
    if (!sqlite3_get_autocommit(s->wdb))
        step_once(s->w_rollback);
    for (size_t i = 0; i < n; i++) {
        items[i].result = VS_ESTORE;
        items[i].created = 0;
    }
    return VS_ESTORE;
}

static const vs_store_ops_t SQLITE_OPS = {
    .name = "sqlite",
    .get_key = store_get_key,
    .bind_keys = store_bind_keys,
    .count_users = store_count_users,
    .free = store_free,
};

/* WAL lets two processes share the database, but two servers would each believe they hold
 * the only directory in memory: refuse the second one. The lock dies with the process. */
static int lock_dir(sqlite_store_t *s, const char *dir, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/volli.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644); /* empty; holds no data */
    if (fd < 0 && errno == EACCES)
        fd = open(path, O_RDONLY | O_CLOEXEC); /* flock needs no write access */
    if (fd < 0) {
        vs_store_errf(err, errlen, "cannot create lock file %s: %s", path, strerror(errno));
        return VS_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            vs_store_errf(err, errlen, "data directory %s is in use by another volli-signal process",
                    dir);
        else
            vs_store_errf(err, errlen, "cannot lock %s: %s", path, strerror(e));
        return VS_ESTORE;
    }
    s->lock_fd = fd;
    return 0;
}

int vs_store_sqlite_open(const char *dir, vs_store_t *out, char *err, size_t errlen)
{
    vs_store_open_reset(out, err, errlen);
    if (!dir || !*dir || !out) {
        vs_store_errf(err, errlen, "no data directory given");
        return VS_EINVAL;
    }
    /* Two connections on two threads need SQLite's own locking of its global state. */
    if (!sqlite3_threadsafe()) {
        vs_store_errf(err, errlen, "SQLite %s was built without thread support", sqlite3_libversion());
        return VS_ESTORE;
    }

    int rc = vs_store_prepare_dir(dir, err, errlen);
    if (rc)
        return rc;

    size_t dlen = strlen(dir);
    const char *sep = dir[dlen - 1] == '/' ? "" : "/";
    size_t plen = dlen + strlen(sep) + sizeof VS_STORE_SQLITE_FILE;
    char *path = vs_malloc(plen);
    snprintf(path, plen, "%s%s%s", dir, sep, VS_STORE_SQLITE_FILE);

    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        vs_store_errf(err, errlen, "database %s is not a regular file", path);
        free(path);
        return VS_ESTORE;
    }

    sqlite_store_t *s = vs_calloc(1, sizeof *s);
    s->lock_fd = -1;
    if ((rc = lock_dir(s, dir, err, errlen)) != 0)
        goto fail;
    if ((rc = open_writer(s, path, err, errlen)) != 0)
        goto fail;
    /* The database file may be new: make its name durable before anything is acknowledged. */
    int e = sync_dir(dir);
    if (e) {
        vs_store_errf(err, errlen, "cannot sync data directory %s: %s", dir, strerror(e));
        rc = VS_EIO;
        goto fail;
    }
    if ((rc = open_reader(s, path, err, errlen)) != 0)
        goto fail;

    free(path);
    out->ops = &SQLITE_OPS;
    out->self = s;
    return 0;

fail:
    store_free(s);
    free(path);
    return rc;
}
