/* store_pg.c: the PostgreSQL back end of store.h.
 *
 * Two connections, one per thread of store.h: the reader serves get_key and count_users on the
 * loop thread, the writer serves bind_keys on the worker thread, so neither needs a mutex.
 * Every call waits for the server with poll() against a deadline (and libpq's connect timeout
 * and TCP timeouts bound the rest), so a dead server costs the loop thread at most a few
 * seconds. A connection found closed is replaced by a fresh one (at most one attempt per call
 * and per RECONNECT_BACKOFF_MS), which re-runs the session settings and re-prepares.
 *
 * bind_keys is one pipelined round trip: an INSERT ... ON CONFLICT DO NOTHING of the whole
 * batch from arrays, a SELECT of the keys now bound, and a Sync that commits the implicit
 * transaction; with synchronous_commit on, the Sync's answer means the batch is durable. The
 * SELECT runs as a separate statement so that, under READ COMMITTED, it sees rows committed by
 * another node whose concurrent insert made ours do nothing: the loser of a race then reads the
 * winner's key and reports VS_EMISMATCH. */
#include "storage/store_pg.h"

#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"
#include "common/url.h"
#include "storage/schema.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 'Voll': the advisory lock that serializes migrations of nodes starting together. */
#define MIGRATION_LOCK 0x566f6c6c

/* The table holding the schema version (SQLite keeps it in PRAGMA user_version). */
#define VERSION_TABLE "volli_schema"

/* Transition tables in statement triggers need 10, EXECUTE FUNCTION needs 11. */
#define MIN_SERVER_VERSION 110000

/* The loop thread must not stall long; the server gives up on a statement first, so a slow
 * query fails cleanly before the client drops the connection. */
#define READER_STATEMENT_MS 2000
#define READER_DEADLINE_MS 2500
#define WRITER_STATEMENT_MS 10000
#define WRITER_DEADLINE_MS 15000
/* Another node may hold the migration lock while it migrates. */
#define MIGRATION_DEADLINE_MS 120000

/* While the server is down, calls fail at once instead of each waiting for a connect. */
#define RECONNECT_BACKOFF_MS 1000

#define MAX_ID_CHARS 128 /* the users.user_id CHECK constraint */

#define OID_TEXT 25
#define OID_BYTEA 17
#define OID_TEXT_ARRAY 1009
#define OID_BYTEA_ARRAY 1001

typedef struct pg_conn {
    PGconn *conn;
    const char *role; /* static, "reader" or "writer", for logs */
    int statement_ms; /* the session's statement_timeout */
    int deadline_ms;  /* how long one call may wait for the server */
    int broken;       /* closed, or in an unknown state: replace before use */
    int timed_out;    /* the last wait hit its deadline (for the error message) */
    int down;         /* the last attempt failed: log recovery, not every failure */
    int64_t retry_at; /* monotonic ms before which no reconnect is attempted */
} pg_conn_t;

typedef struct pg_store {
    pg_conn_t r; /* loop thread */
    pg_conn_t w; /* worker thread */
    char *url;   /* owned; holds a password: wiped on free, never logged */
} pg_store_t;

typedef struct prepared {
    const char *name;
    const char *sql;
    int nparams;
    Oid types[2];
} prepared_t;

static const prepared_t READER_STMTS[] = {
    {"get_key", "SELECT public_key FROM users WHERE user_id = $1", 1, {OID_TEXT}},
    {"count_users", "SELECT value FROM counters WHERE name = 'users'", 0, {0}},
};

/* DISTINCT ON keeps each id's first item (items apply in order); sorting by id makes every
 * node take the unique-index locks in the same order, so racing batches cannot deadlock. */
static const prepared_t WRITER_STMTS[] = {
    {"bind_insert",
     "INSERT INTO users (user_id, public_key, created_at) "
     "SELECT DISTINCT ON (b.user_id) b.user_id, b.public_key, "
     "  (extract(epoch FROM statement_timestamp()) * 1000)::bigint "
     "FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS b(user_id, public_key, ord) "
     "ORDER BY b.user_id, b.ord "
     "ON CONFLICT (user_id) DO NOTHING RETURNING user_id",
     2,
     {OID_TEXT_ARRAY, OID_BYTEA_ARRAY}},
    {"bind_select",
     "SELECT user_id, public_key FROM users WHERE user_id = ANY($1::text[])",
     1,
     {OID_TEXT_ARRAY}},
};


static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies src into dst as one line (libpq's messages span lines and end with a newline). */
static void one_line(char *dst, size_t n, const char *src)
{
    size_t j = 0;
    int space = 0;
    for (const char *p = src ? src : ""; *p && j + 1 < n; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r') {
            space = 1;
            continue;
        }
        if (space && j > 0 && j + 2 < n)
            dst[j++] = ' ';
        space = 0;
        dst[j++] = *p;
    }
    dst[j] = '\0';
}

/* A libpq connection message as one line. libpq does not echo passwords, but the message is
 * shown to operators and logged, so any occurrence of the URL's password is masked anyway. */
static void conn_message(PGconn *conn, const char *url, char *dst, size_t n)
{
    one_line(dst, n, conn ? PQerrorMessage(conn) : "out of memory");
    PQconninfoOption *opts = url ? PQconninfoParse(url, NULL) : NULL;
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (strcmp(o->keyword, "password") != 0 || !o->val || !*o->val)
            continue;
        size_t len = strlen(o->val);
        for (char *hit = strstr(dst, o->val); hit; hit = strstr(hit + len, o->val))
            memset(hit, '*', len);
    }
    PQconninfoFree(opts);
}

/* The server's reason for a failed statement, safe to show and log: the SQLSTATE and the
 * primary message; data and constraint errors (classes 22, 23) may quote values, so those keep
 * only the SQLSTATE. Details, which quote rows, are never used. */
static void result_message(pg_conn_t *c, const PGresult *res, char *dst, size_t n)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0))
        msg = "data error";
    if (msg) {
        if (state)
            snprintf(dst, n, "%s (SQLSTATE %s)", msg, state);
        else
            snprintf(dst, n, "%s", msg);
        return;
    }
    /* No server error: a client-side one (lost connection, timeout), never holding data. */
    if (c->timed_out) {
        snprintf(dst, n, "no answer within %d ms", c->deadline_ms);
        return;
    }
    one_line(dst, n, c->conn ? PQerrorMessage(c->conn) : "no connection");
    if (!*dst)
        snprintf(dst, n, "unexpected reply (%s)", res ? PQresStatus(PQresultStatus(res)) : "none");
}

static void log_failure(pg_conn_t *c, const char *op, const PGresult *res)
{
    char msg[256];
    result_message(c, res, msg, sizeof msg);
    VS_LOG(VS_LOG_ERROR, "store_failed", "op", "%s", op, "conn", "%s", c->role, "error", "%s", msg,
           NULL);
}

/* Notices carry no values we send; a FATAL one while idle is the server announcing that it
 * closes the connection (shutdown, crash, terminated backend). */
static void on_notice(void *arg, const PGresult *res)
{
    pg_conn_t *c = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
        c->broken = 1;
    VS_LOG(VS_LOG_DEBUG, "store_notice", "conn", "%s", c->role, "severity", "%s", sev ? sev : "-",
           "code", "%s", state ? state : "-", NULL);
}

/* Waits until PQgetResult will not block. Returns 0, or -1 when the connection failed or the
 * deadline passed (the connection is then marked broken: a statement may still be running). */
static int await(pg_conn_t *c, int64_t deadline)
{
    while (PQisBusy(c->conn)) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            c->broken = 1;
            c->timed_out = 1;
            return -1;
        }
        struct pollfd p = {.fd = PQsocket(c->conn), .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno != EINTR) {
            c->broken = 1;
            return -1;
        }
        if (n > 0 && !PQconsumeInput(c->conn)) {
            c->broken = 1;
            return -1;
        }
    }
    return 0;
}

/* Collects the results of the statement(s) just sent, up to the final NULL. *out receives the
 * first failed result, or else the last one (caller-frees; may be NULL). Returns 0 when every
 * result succeeded, -1 otherwise. */
static int collect(pg_conn_t *c, int64_t deadline, PGresult **out)
{
    PGresult *keep = NULL;
    int failed = 0;
    for (;;) {
        if (await(c, deadline) != 0) {
            failed = 1;
            break;
        }
        PGresult *res = PQgetResult(c->conn);
        if (!res)
            break;
        ExecStatusType st = PQresultStatus(res);
        if (failed) {
            PQclear(res);
            continue;
        }
        PQclear(keep);
        keep = res;
        failed = st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK;
    }
    if (PQstatus(c->conn) != CONNECTION_OK) {
        c->broken = 1;
        failed = 1;
    }
    if (out)
        *out = keep;
    else
        PQclear(keep);
    return failed ? -1 : 0;
}

static int exec_sql(pg_conn_t *c, const char *sql, int64_t deadline, PGresult **out)
{
    if (out)
        *out = NULL;
    c->timed_out = 0;
    if (!PQsendQuery(c->conn, sql)) {
        if (PQstatus(c->conn) != CONNECTION_OK)
            c->broken = 1;
        return -1;
    }
    return collect(c, deadline, out);
}

/* Session settings that the store's promises depend on, whatever the URL or the role's
 * defaults say: durable commits, READ COMMITTED (the race handling in bind_keys needs a fresh
 * snapshot per statement), UTF-8 ids, and a server-side bound on every statement. */
static int setup_session(pg_conn_t *c, int64_t deadline, PGresult **out)
{
    char sql[320];
    snprintf(sql, sizeof sql,
             "SET synchronous_commit = on; "
             "SET default_transaction_isolation = 'read committed'; "
             "SET default_transaction_read_only = off; "
             "SET client_encoding = 'UTF8'; "
             "SET statement_timeout = %d",
             c->statement_ms);
    return exec_sql(c, sql, deadline, out);
}

static int prepare_all(pg_conn_t *c, const prepared_t *stmts, size_t n, int64_t deadline,
                       PGresult **out)
{
    for (size_t i = 0; i < n; i++) {
        if (!PQsendPrepare(c->conn, stmts[i].name, stmts[i].sql, stmts[i].nparams,
                           stmts[i].types)) {
            if (PQstatus(c->conn) != CONNECTION_OK)
                c->broken = 1;
            return -1;
        }
        if (collect(c, deadline, out) != 0)
            return -1;
        if (out) {
            PQclear(*out);
            *out = NULL;
        }
    }
    return 0;
}

/* The URL comes first so libpq expands it; keywords after it override the URL's: the timeouts
 * are what keeps a dead server from stalling the loop thread. The application name is only a
 * fallback, so the URL may set its own. */
static PGconn *connect_url(const char *url)
{
    static const char *const keys[] = {
        "dbname",           "connect_timeout",           "keepalives",
        "keepalives_idle",  "keepalives_interval",       "keepalives_count",
        "tcp_user_timeout", "fallback_application_name", NULL};
    const char *vals[] = {url, "2", "1", "5", "1", "3", "2500", "volli-signal", NULL};
    return PQconnectdbParams(keys, vals, 1);
}

/* Opens c's connection and prepares its statements. On failure, fills msg (one line, no
 * secrets) and leaves c->conn for the caller to inspect or free. */
static int conn_open(pg_store_t *s, pg_conn_t *c, const prepared_t *stmts, size_t nstmts, char *msg,
                     size_t msglen)
{
    if (c->conn)
        PQfinish(c->conn);
    c->broken = 1;
    c->conn = connect_url(s->url);
    if (!c->conn || PQstatus(c->conn) != CONNECTION_OK) {
        conn_message(c->conn, s->url, msg, msglen);
        return VS_ESTORE;
    }
    PQsetNoticeReceiver(c->conn, on_notice, c);
    c->broken = 0;
    int64_t deadline = mono_ms() + c->deadline_ms;
    PGresult *res = NULL;
    int rc = setup_session(c, deadline, &res);
    if (rc == 0) {
        PQclear(res);
        res = NULL;
        rc = prepare_all(c, stmts, nstmts, deadline, &res);
    }
    if (rc != 0) {
        result_message(c, res, msg, msglen);
        c->broken = 1;
    }
    PQclear(res);
    return rc ? VS_ESTORE : 0;
}

static int reconnect(pg_store_t *s, pg_conn_t *c)
{
    int64_t now = mono_ms();
    if (now < c->retry_at)
        return VS_ESTORE;
    const prepared_t *stmts = c == &s->r ? READER_STMTS : WRITER_STMTS;
    size_t n = c == &s->r ? sizeof READER_STMTS / sizeof READER_STMTS[0]
                          : sizeof WRITER_STMTS / sizeof WRITER_STMTS[0];
    char msg[256];
    if (conn_open(s, c, stmts, n, msg, sizeof msg) != 0) {
        c->retry_at = mono_ms() + RECONNECT_BACKOFF_MS;
        VS_LOG(c->down ? VS_LOG_DEBUG : VS_LOG_ERROR, "store_reconnect_failed", "conn", "%s",
               c->role, "error", "%s", msg, NULL);
        c->down = 1;
        return VS_ESTORE;
    }
    VS_LOG(c->down ? VS_LOG_WARN : VS_LOG_INFO, "store_reconnected", "conn", "%s", c->role, NULL);
    c->down = 0;
    c->retry_at = 0;
    return 0;
}

/* Whether c can take a statement now. A server that closed the connection while it sat idle
 * (restart, failover, crash) has already sent its FIN or a FATAL notice: reading what is
 * pending finds out without a failed statement. */
static int conn_usable(pg_conn_t *c)
{
    if (c->broken || !c->conn || PQstatus(c->conn) != CONNECTION_OK)
        return 0;
    struct pollfd p = {.fd = PQsocket(c->conn), .events = POLLIN};
    if (poll(&p, 1, 0) > 0) {
        if (!PQconsumeInput(c->conn))
            return 0;
        PGnotify *note;
        while ((note = PQnotifies(c->conn)) != NULL)
            PQfreemem(note);
    }
    return !c->broken && PQstatus(c->conn) == CONNECTION_OK &&
           PQtransactionStatus(c->conn) == PQTRANS_IDLE;
}

/* Reconnects c if it is not usable; *reconnected (may be NULL) says whether it did. */
static int conn_ready(pg_store_t *s, pg_conn_t *c, int *reconnected)
{
    if (reconnected)
        *reconnected = 0;
    c->timed_out = 0;
    if (conn_usable(c))
        return 0;
    c->broken = 1;
    if (reconnect(s, c) != 0)
        return VS_ESTORE;
    if (reconnected)
        *reconnected = 1;
    return 0;
}

/* Runs a read-only prepared statement on the reader (binary results). A connection lost since
 * the last call is replaced and the statement retried once, which is safe for reads. *out:
 * caller-frees on success. */
static int read_query(pg_store_t *s, const char *stmt, const char *param, const char *op,
                      PGresult **out)
{
    pg_conn_t *c = &s->r;
    int reconnected;
    if (conn_ready(s, c, &reconnected) != 0)
        return VS_ESTORE;
    int64_t start = mono_ms();
    for (;;) {
        PGresult *res = NULL;
        int sent =
            PQsendQueryPrepared(c->conn, stmt, param ? 1 : 0, param ? &param : NULL, NULL, NULL, 1);
        if (sent && collect(c, start + c->deadline_ms, &res) == 0 && res &&
            PQresultStatus(res) == PGRES_TUPLES_OK) {
            *out = res;
            return 0;
        }
        if (!sent && PQstatus(c->conn) != CONNECTION_OK)
            c->broken = 1;
        int lost = c->broken && PQstatus(c->conn) != CONNECTION_OK;
        log_failure(c, op, res);
        PQclear(res);
        if (!lost || reconnected || reconnect(s, c) != 0)
            return VS_ESTORE;
        reconnected = 1;
    }
}

/* Counts the code points of a UTF-8 string; -1 if it is not valid UTF-8 (which PostgreSQL
 * would reject for the whole batch). */
static long utf8_chars(const char *str)
{
    const unsigned char *p = (const unsigned char *)str;
    long n = 0;
    while (*p) {
        unsigned c = *p;
        int len;
        uint32_t cp;
        if (c < 0x80) {
            p++;
            n++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return -1;
        }
        for (int i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        p += len;
        n++;
    }
    return n;
}

static int store_get_key(void *self, const char *user_id, uint8_t key[32])
{
    pg_store_t *s = self;
    if (!user_id)
        return VS_EINVAL;
    if (utf8_chars(user_id) < 0)
        return VS_ENOTFOUND; /* could never have been bound */

    PGresult *res;
    if (read_query(s, "get_key", user_id, "get_key", &res) != 0)
        return VS_ESTORE;
    int ret;
    if (PQntuples(res) == 0) {
        ret = VS_ENOTFOUND;
    } else if (PQntuples(res) == 1 && PQnfields(res) == 1 && !PQgetisnull(res, 0, 0) &&
               PQgetlength(res, 0, 0) == 32) {
        memcpy(key, PQgetvalue(res, 0, 0), 32);
        ret = 0;
    } else {
        VS_LOG(VS_LOG_ERROR, "store_failed", "op", "%s", "get_key", "error", "%s", "malformed row",
               NULL);
        ret = VS_ESTORE;
    }
    PQclear(res);
    return ret;
}

static int store_count_users(void *self, uint64_t *out)
{
    pg_store_t *s = self;
    PGresult *res;
    if (read_query(s, "count_users", NULL, "count_users", &res) != 0)
        return VS_ESTORE;
    int ret = VS_ESTORE;
    if (PQntuples(res) == 1 && PQnfields(res) == 1 && PQgetlength(res, 0, 0) == 8) {
        uint8_t b[8];
        memcpy(b, PQgetvalue(res, 0, 0), 8);
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = (v << 8) | b[i];
        if ((int64_t)v >= 0) {
            *out = v;
            ret = 0;
        }
    }
    if (ret != 0)
        VS_LOG(VS_LOG_ERROR, "store_failed", "op", "%s", "count_users", "error", "%s",
               "malformed row", NULL);
    PQclear(res);
    return ret;
}

/* A one-dimensional array in PostgreSQL's binary format (array_recv): ndim, has-nulls, element
 * type, length and lower bound, then each element as a length and its bytes. */
typedef struct array_buf {
    char *data; /* owned */
    size_t len;
} array_buf_t;

static void put32(char *p, uint32_t v)
{
    v = htonl(v);
    memcpy(p, &v, 4);
}

static void array_init(array_buf_t *a, Oid type, uint32_t count, size_t payload)
{
    a->data = vs_malloc(20 + 4 * (size_t)count + payload);
    put32(a->data, 1);
    put32(a->data + 4, 0);
    put32(a->data + 8, type);
    put32(a->data + 12, count);
    put32(a->data + 16, 1);
    a->len = 20;
}

static void array_add(array_buf_t *a, const void *bytes, size_t n)
{
    put32(a->data + a->len, (uint32_t)n);
    memcpy(a->data + a->len + 4, bytes, n);
    a->len += 4 + n;
}

/* A bound or inserted id from a result row, for lookups by id. */
typedef struct row_ref {
    const char *id; /* borrowed from the PGresult */
    int len;
    const char *key; /* borrowed; NULL for inserted ids */
    int keylen;
    int claimed; /* inserted ids: the item that created it has been found */
} row_ref_t;

static int row_cmp(const void *a, const void *b)
{
    const row_ref_t *x = a, *y = b;
    int n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->id, y->id, (size_t)n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static row_ref_t *rows_index(const PGresult *res, int with_key, size_t *count)
{
    int n = PQntuples(res);
    row_ref_t *rows = vs_calloc(n > 0 ? (size_t)n : 1, sizeof *rows);
    for (int i = 0; i < n; i++) {
        rows[i].id = PQgetvalue(res, i, 0);
        rows[i].len = PQgetlength(res, i, 0);
        if (with_key) {
            rows[i].key = PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1);
            rows[i].keylen = PQgetlength(res, i, 1);
        }
    }
    qsort(rows, (size_t)n, sizeof *rows, row_cmp);
    *count = (size_t)n;
    return rows;
}

static row_ref_t *rows_find(row_ref_t *rows, size_t n, const char *id)
{
    row_ref_t probe = {.id = id, .len = (int)strlen(id)};
    return bsearch(&probe, rows, n, sizeof *rows, row_cmp);
}

/* Fills the results of the valid items from the INSERT's RETURNING (ids created now) and the
 * SELECT (the key bound to each id). Returns 0, or -1 if an id is missing from the SELECT. */
static int apply_results(vs_binding_t *items, size_t n, const PGresult *ins, const PGresult *sel)
{
    size_t nins, nsel;
    row_ref_t *created = rows_index(ins, 0, &nins);
    row_ref_t *bound = rows_index(sel, 1, &nsel);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        vs_binding_t *it = &items[i];
        if (it->result != VS_ESTORE)
            continue; /* invalid, never sent */
        row_ref_t *b = rows_find(bound, nsel, it->user_id);
        if (!b || !b->key || b->keylen != 32) {
            rc = -1;
            break;
        }
        it->result = memcmp(b->key, it->key, 32) == 0 ? 0 : VS_EMISMATCH;
        row_ref_t *c = rows_find(created, nins, it->user_id);
        if (c && !c->claimed) {
            /* The first item of an id is the one DISTINCT ON inserted. */
            c->claimed = 1;
            it->created = 1;
        }
    }
    free(created);
    free(bound);
    return rc;
}

/* Sends the batch as one pipeline and reads it back. Returns 0 once the Sync confirmed the
 * commit; on -1, *failure holds the result to report (caller-frees, may be NULL). */
static int run_batch(pg_conn_t *c, const array_buf_t *ids, const array_buf_t *keys, PGresult **ins,
                     PGresult **sel, PGresult **failure)
{
    const char *vals[2] = {ids->data, keys->data};
    int lens[2] = {(int)ids->len, (int)keys->len};
    int fmts[2] = {1, 1};
    PGresult *got[2] = {NULL, NULL};
    int idx = 0, synced = 0, failed = 0;
    *failure = NULL;

    if (!PQenterPipelineMode(c->conn)) {
        c->broken = 1;
        return -1;
    }
    if (!PQsendQueryPrepared(c->conn, "bind_insert", 2, vals, lens, fmts, 1) ||
        !PQsendQueryPrepared(c->conn, "bind_select", 1, vals, lens, fmts, 1) ||
        !PQpipelineSync(c->conn)) {
        c->broken = 1;
        return -1;
    }

    int64_t deadline = mono_ms() + c->deadline_ms;
    while (!synced) {
        if (await(c, deadline) != 0)
            break;
        PGresult *res = PQgetResult(c->conn);
        if (!res) {
            /* Each statement's results end with a NULL; two NULLs precede the Sync. */
            if (PQstatus(c->conn) != CONNECTION_OK || ++idx > 2)
                break;
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            synced = 1;
            PQclear(res);
        } else if (st == PGRES_TUPLES_OK && idx < 2 && !got[idx]) {
            got[idx] = res;
        } else {
            /* An error of a statement or of the commit itself at the Sync. */
            if (!failed && st != PGRES_PIPELINE_ABORTED) {
                *failure = res;
                res = NULL;
            }
            failed = 1;
            PQclear(res);
        }
    }
    if (!synced || !PQexitPipelineMode(c->conn))
        c->broken = 1; /* lost, timed out, or out of step: never reuse */
    if (synced && !failed && got[0] && got[1]) {
        *ins = got[0];
        *sel = got[1];
        return 0;
    }
    PQclear(got[0]);
    PQclear(got[1]);
    return -1;
}

static int store_bind_keys(void *self, vs_binding_t *items, size_t n)
{
    pg_store_t *s = self;
    pg_conn_t *c = &s->w;
    if (n == 0)
        return 0;
    if (!items)
        return VS_EINVAL;

    /* Invalid items never reach the server: there a CHECK failure would abort the batch. */
    size_t valid = 0, payload = 0;
    for (size_t i = 0; i < n; i++) {
        items[i].created = 0;
        long chars = items[i].user_id ? utf8_chars(items[i].user_id) : -1;
        if (chars < 1 || chars > MAX_ID_CHARS) {
            items[i].result = VS_EINVAL;
            continue;
        }
        items[i].result = VS_ESTORE;
        payload += strlen(items[i].user_id);
        valid++;
    }
    if (valid == 0)
        return 0;

    int rc = -1;
    PGresult *ins = NULL, *sel = NULL, *failure = NULL;
    array_buf_t ids, keys;
    array_init(&ids, OID_TEXT, (uint32_t)valid, payload);
    array_init(&keys, OID_BYTEA, (uint32_t)valid, 32 * valid);
    for (size_t i = 0; i < n; i++) {
        if (items[i].result != VS_ESTORE)
            continue;
        array_add(&ids, items[i].user_id, strlen(items[i].user_id));
        array_add(&keys, items[i].key, 32);
    }

    /* No retry once sent: a connection lost after the Sync leaves the outcome unknown. */
    if (conn_ready(s, c, NULL) == 0) {
        rc = run_batch(c, &ids, &keys, &ins, &sel, &failure);
        if (rc != 0)
            log_failure(c, "bind_keys", failure);
        else if ((rc = apply_results(items, n, ins, sel)) != 0)
            VS_LOG(VS_LOG_ERROR, "store_failed", "op", "%s", "bind_keys", "error", "%s",
                   "a bound id is missing after the commit", NULL);
    }
    PQclear(ins);
    PQclear(sel);
    PQclear(failure);
    free(ids.data);
    free(keys.data);
    if (rc == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        items[i].result = VS_ESTORE;
        items[i].created = 0;
    }
    return VS_ESTORE;
}

static void store_free(void *self)
{
    pg_store_t *s = self;
    if (!s)
        return;
    if (s->r.conn)
        PQfinish(s->r.conn);
    if (s->w.conn)
        PQfinish(s->w.conn);
    if (s->url) {
        explicit_bzero(s->url, strlen(s->url));
        free(s->url);
    }
    free(s);
}

static const vs_store_ops_t PG_OPS = {
    .name = "postgres",
    .get_key = store_get_key,
    .bind_keys = store_bind_keys,
    .count_users = store_count_users,
    .free = store_free,
};

/* Reads one integer (or boolean as 0/1) from the first row of a text-format result. */
static long long field_ll(const PGresult *res, int col)
{
    if (PQntuples(res) < 1 || PQgetisnull(res, 0, col))
        return -1;
    const char *v = PQgetvalue(res, 0, col);
    if (strcmp(v, "t") == 0)
        return 1;
    if (strcmp(v, "f") == 0)
        return 0;
    return strtoll(v, NULL, 10);
}

/* Runs sql on the writer during open; on failure fills err as "cannot DOING AT: reason". */
static int open_step(pg_conn_t *c, const char *sql, int64_t deadline, PGresult **out,
                     const char *doing, const char *where, char *err, size_t errlen)
{
    PGresult *res = NULL;
    if (exec_sql(c, sql, deadline, &res) == 0) {
        if (out)
            *out = res;
        else
            PQclear(res);
        return 0;
    }
    char msg[256];
    result_message(c, res, msg, sizeof msg);
    PQclear(res);
    vs_store_errf(err, errlen, "cannot %s %s: %s", doing, where, msg);
    return VS_ESTORE;
}

/* Checks that the tables of the session's current schema are ours (or absent) and not newer
 * than this binary, then applies the missing migrations, all in one transaction under an
 * advisory lock: nodes starting together wait for each other and migrate once, and a failure
 * leaves the old version intact. */
static int migrate_locked(pg_conn_t *c, const char *where, int64_t deadline, char *err,
                          size_t errlen)
{
    char sql[160];
    PGresult *res = NULL;
    int max = vs_schema_version();

    snprintf(sql, sizeof sql,
             "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL statement_timeout = 0; "
             "SELECT pg_advisory_xact_lock(%d)",
             MIGRATION_LOCK);
    if (open_step(c, sql, deadline, NULL, "lock the schema of", where, err, errlen))
        return VS_ESTORE;
    /* A statement of its own, after the lock: its snapshot sees what another node committed. */
    if (open_step(c,
                  "SELECT current_schema(),"
                  " count(*) FILTER (WHERE tablename = '" VERSION_TABLE "'),"
                  " count(*) FILTER (WHERE tablename IN ('users', 'counters'))"
                  " FROM pg_tables WHERE schemaname = current_schema()",
                  deadline, &res, "read the schema of", where, err, errlen))
        return VS_ESTORE;
    char schema[128];
    int no_schema = PQntuples(res) != 1 || PQgetisnull(res, 0, 0);
    snprintf(schema, sizeof schema, "%s", no_schema ? "" : PQgetvalue(res, 0, 0));
    long long has_version = field_ll(res, 1), ours = field_ll(res, 2);
    PQclear(res);
    if (no_schema) {
        vs_store_errf(err, errlen,
                "the database at %s has no schema to create tables in (search_path names no "
                "existing schema)",
                where);
        return VS_ESTORE;
    }
    if (has_version <= 0) {
        if (ours > 0) {
            vs_store_errf(err, errlen,
                    "schema \"%s\" of the database at %s has a users or counters table but no "
                    "%s table: not a Volli database",
                    schema, where, VERSION_TABLE);
            return VS_ESTORE;
        }
        if (open_step(c,
                      "CREATE TABLE " VERSION_TABLE " ("
                      "  id boolean PRIMARY KEY DEFAULT true CHECK (id),"
                      "  version integer NOT NULL CHECK (version >= 0),"
                      "  updated_at timestamptz NOT NULL DEFAULT now()"
                      ");"
                      "INSERT INTO " VERSION_TABLE " (version) VALUES (0)",
                      deadline, NULL, "create the schema version table in", where, err, errlen))
            return VS_ESTORE;
    }

    if (open_step(c, "SELECT version FROM " VERSION_TABLE, deadline, &res,
                  "read the schema version of", where, err, errlen))
        return VS_ESTORE;
    long long version = PQntuples(res) == 1 ? field_ll(res, 0) : -1;
    PQclear(res);
    if (version < 0) {
        vs_store_errf(err, errlen, "schema \"%s\" of the database at %s has an invalid %s table", schema,
                where, VERSION_TABLE);
        return VS_ESTORE;
    }
    if (version > max) {
        vs_store_errf(err, errlen, "schema version %lld is newer than this binary supports (%d)", version,
                max);
        return VS_ESTORE;
    }

    for (int v = (int)version + 1; v <= max; v++) {
        char doing[64];
        snprintf(doing, sizeof doing, "migrate to schema version %d the database at", v);
        if (open_step(c, vs_schema_migration(v)->postgres, deadline, NULL, doing, where, err,
                      errlen))
            return VS_ESTORE;
    }
    if (version < max) {
        snprintf(sql, sizeof sql, "UPDATE " VERSION_TABLE " SET version = %d, updated_at = now()",
                 max);
        if (open_step(c, sql, deadline, NULL, "record the schema version of", where, err, errlen))
            return VS_ESTORE;
    }
    if (open_step(c, "COMMIT", deadline, NULL, "commit the migration of", where, err, errlen))
        return VS_ESTORE;
    return 0;
}

static int migrate(pg_conn_t *c, const char *where, char *err, size_t errlen)
{
    int rc = migrate_locked(c, where, mono_ms() + MIGRATION_DEADLINE_MS, err, errlen);
    if (rc != 0 && !c->broken && PQstatus(c->conn) == CONNECTION_OK &&
        PQtransactionStatus(c->conn) != PQTRANS_IDLE)
        exec_sql(c, "ROLLBACK", mono_ms() + c->deadline_ms, NULL);
    if (rc == 0 && PQtransactionStatus(c->conn) != PQTRANS_IDLE) {
        vs_store_errf(err, errlen, "the migration of the database at %s did not commit", where);
        rc = VS_ESTORE;
    }
    return rc;
}

/* Names the server for messages: host and port at most, never the rest of the URL. */
static void describe(const vs_url_t *u, char *dst, size_t n)
{
    if (!u->host[0])
        snprintf(dst, n, "PostgreSQL (local socket)");
    else if (strchr(u->host, ':'))
        snprintf(dst, n, "PostgreSQL at [%s]:%d", u->host, u->port);
    else
        snprintf(dst, n, "PostgreSQL at %s:%d", u->host, u->port);
}

int vs_store_pg_open(const char *url, vs_store_t *out, char *err, size_t errlen)
{
    vs_store_open_reset(out, err, errlen);
    if (!url || !*url || !out) {
        vs_store_errf(err, errlen, "no database URL given");
        return VS_EINVAL;
    }
    vs_url_t u;
    if (vs_url_parse(url, VS_URL_POSTGRES, &u) != 0) {
        vs_store_errf(err, errlen, "the database URL must be a postgres:// or postgresql:// URL");
        return VS_EINVAL;
    }
    /* libpq's own parse errors quote the URL, which may hold the password: check it here and
     * report without the details. */
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (!opts) {
        PQfreemem(perr);
        vs_store_errf(err, errlen,
                "the database URL cannot be parsed (check its syntax, parameter "
                "names and percent escapes)");
        return VS_EINVAL;
    }
    PQconninfoFree(opts);
    /* Two connections on two threads need libpq's thread-safe build. */
    if (!PQisthreadsafe()) {
        vs_store_errf(err, errlen, "libpq was built without thread support");
        return VS_ESTORE;
    }

    char where[300], msg[256];
    describe(&u, where, sizeof where);
    pg_store_t *s = vs_calloc(1, sizeof *s);
    s->url = vs_strdup(url);
    s->r.role = "reader";
    s->r.statement_ms = READER_STATEMENT_MS;
    s->r.deadline_ms = READER_DEADLINE_MS;
    s->w.role = "writer";
    s->w.statement_ms = WRITER_STATEMENT_MS;
    s->w.deadline_ms = WRITER_DEADLINE_MS;

    int rc = VS_ESTORE;
    /* The writer's statements need the tables: prepare them after migrating. */
    if (conn_open(s, &s->w, NULL, 0, msg, sizeof msg) != 0) {
        vs_store_errf(err, errlen, "cannot connect to %s: %s", where, msg);
        goto fail;
    }
    int ver = PQserverVersion(s->w.conn);
    if (ver < MIN_SERVER_VERSION) {
        vs_store_errf(err, errlen, "%s runs version %d.%d; Volli needs PostgreSQL 11 or newer", where,
                ver / 10000, ver % 10000);
        goto fail;
    }
    if ((rc = migrate(&s->w, where, err, errlen)) != 0)
        goto fail;
    PGresult *res = NULL;
    if (prepare_all(&s->w, WRITER_STMTS, sizeof WRITER_STMTS / sizeof WRITER_STMTS[0],
                    mono_ms() + s->w.deadline_ms, &res) != 0) {
        result_message(&s->w, res, msg, sizeof msg);
        PQclear(res);
        vs_store_errf(err, errlen, "cannot prepare statements on %s: %s", where, msg);
        rc = VS_ESTORE;
        goto fail;
    }
    if (conn_open(s, &s->r, READER_STMTS, sizeof READER_STMTS / sizeof READER_STMTS[0], msg,
                  sizeof msg) != 0) {
        vs_store_errf(err, errlen, "cannot connect to %s: %s", where, msg);
        rc = VS_ESTORE;
        goto fail;
    }
    out->ops = &PG_OPS;
    out->self = s;
    return 0;

fail:
    store_free(s);
    return rc;
}
