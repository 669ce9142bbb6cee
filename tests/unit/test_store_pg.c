/* Tests for storage/store_pg against a real PostgreSQL (scripts/pg-service, the ctest fixture
 * "pg"): migrations and concurrent opens, bindings and batches, two nodes racing for one id,
 * atomic failed batches, the session settings that durability depends on, errors that never
 * show the password, and a server that hangs, is killed and comes back.
 *
 * Needs VOLLI_TEST_PG_URL (or VOLLI_TEST_PG_URL_FILE, a file holding it), VOLLI_TEST_PG_DIR
 * (the service directory) and VOLLI_TEST_PG_SERVICE (scripts/pg-service); fails without them.
 * Each test works in a schema of its own (search_path in the URL), dropped afterwards. */
#include "common/error.h"
#include "storage/schema.h"
#include "storage/store_pg.h"

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

static char g_url[1024];
static const char *g_dir, *g_service;
static int g_schemas;

typedef struct fixture {
    char schema[64];
    char url[2048]; /* g_url with search_path = schema */
    PGconn *admin;  /* the test's own connection, search_path = schema */
} fixture_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* g_url plus libpq options (each "-cname=value", space-separated, escaped here). */
static void url_with_options(char *dst, size_t n, const char *options)
{
    size_t len = (size_t)snprintf(dst, n, "%s%soptions=", g_url, strchr(g_url, '?') ? "&" : "?");
    for (const char *p = options; *p && len + 4 < n; p++) {
        if (*p == ' ' || *p == '=' || *p == '%' || *p == '&')
            len += (size_t)snprintf(dst + len, n - len, "%%%02X", (unsigned char)*p);
        else
            dst[len++] = *p;
    }
    dst[len] = '\0';
}

static PGconn *admin_connect(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to the test database: %s", PQerrorMessage(c));
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

static void admin_exec(fixture_t *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void admin_exec(fixture_t *f, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGresult *res = PQexec(f->admin, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(f->admin));
    PQclear(res);
}

/* The first column of the first row as an integer; -1 when there is no row. */
static long long admin_int(fixture_t *f, const char *sql)
{
    PGresult *res = PQexec(f->admin, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(f->admin));
    long long v = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    return v;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->schema, sizeof f->schema, "vs_test_%d_%d", (int)getpid(), ++g_schemas);
    char opts[128];
    snprintf(opts, sizeof opts, "-csearch_path=%s", f->schema);
    url_with_options(f->url, sizeof f->url, opts);
    f->admin = admin_connect(g_url);
    admin_exec(f, "CREATE SCHEMA %s", f->schema);
    admin_exec(f, "SET search_path TO %s", f->schema);
    *state = f;
    return 0;
}

/* Runs scripts/pg-service VERB DIR; returns its exit status. */
static int service(const char *verb)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDOUT_FILENO);
        execl(g_service, g_service, verb, g_dir, (char *)NULL);
        _exit(127);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (PQstatus(f->admin) != CONNECTION_OK) {
        PQfinish(f->admin);
        f->admin = admin_connect(g_url);
    }
    admin_exec(f, "DROP SCHEMA %s CASCADE", f->schema);
    PQfinish(f->admin);
    free(f);
    return 0;
}

/* For the tests that stop the server: bring it back whatever happened. */
static int teardown_restart(void **state)
{
    fixture_t *f = *state;
    if (service("restart") != 0)
        fprintf(stderr, "pg-service restart failed\n");
    PQfinish(f->admin);
    f->admin = admin_connect(g_url);
    return teardown(state);
}

/* A deterministic, distinct key per (name, variant). */
static void key_for(const char *name, int variant, uint8_t key[32])
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)variant;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    for (int i = 0; i < 32; i++) {
        h ^= h >> 29;
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 32;
        key[i] = (uint8_t)h;
    }
}

static void open_store(const char *url, vs_store_t *st)
{
    char err[256] = "";
    int rc = vs_store_pg_open(url, st, err, sizeof err);
    if (rc != 0)
        fail_msg("vs_store_pg_open: %d %s", rc, err);
    assert_string_equal(err, "");
    assert_string_equal(st->ops->name, "postgres");
}

static void bind_one(vs_store_t *st, const char *id, int variant, int result, int created)
{
    vs_binding_t b = {.user_id = id};
    key_for(id, variant, b.key);
    assert_int_equal(vs_store_bind_keys(st, &b, 1), 0);
    assert_int_equal(b.result, result);
    assert_int_equal(b.created, created);
}

static void expect_key(vs_store_t *st, const char *id, int variant)
{
    uint8_t want[32], got[32];
    key_for(id, variant, want);
    assert_int_equal(vs_store_get_key(st, id, got), 0);
    assert_memory_equal(got, want, 32);
}

static uint64_t count(vs_store_t *st)
{
    uint64_t n = 0;
    assert_int_equal(vs_store_count_users(st, &n), 0);
    return n;
}

static void test_open_migrates_once(void **state)
{
    fixture_t *f = *state;
    vs_store_t a, b;
    open_store(f->url, &a);
    assert_int_equal(admin_int(f, "SELECT version FROM volli_schema"), vs_schema_version());
    assert_int_equal(admin_int(f, "SELECT count(*) FROM pg_tables WHERE schemaname = "
                                  "current_schema() AND tablename IN ('users', 'counters')"),
                     2);
    assert_int_equal(count(&a), 0);

    /* A second node while the first is open, and a reopen: no-ops. */
    open_store(f->url, &b);
    vs_store_close(&b);
    vs_store_close(&a);
    vs_store_close(&a); /* safe twice */
    open_store(f->url, &a);
    assert_int_equal(admin_int(f, "SELECT count(*) FROM volli_schema"), 1);
    assert_int_equal(admin_int(f, "SELECT version FROM volli_schema"), vs_schema_version());
    assert_int_equal(admin_int(f, "SELECT count(*) FROM counters"), 1);
    vs_store_close(&a);
}

typedef struct opener {
    const char *url;
    pthread_barrier_t *go;
    int rc;
    char err[256];
} opener_t;

static void *open_thread(void *arg)
{
    opener_t *o = arg;
    vs_store_t st;
    pthread_barrier_wait(o->go);
    o->rc = vs_store_pg_open(o->url, &st, o->err, sizeof o->err);
    if (o->rc == 0)
        vs_store_close(&st);
    return NULL;
}

static void test_concurrent_opens(void **state)
{
    fixture_t *f = *state;
    enum { N = 4 };
    pthread_t t[N];
    opener_t o[N];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    for (int i = 0; i < N; i++) {
        o[i] = (opener_t){.url = f->url, .go = &go};
        assert_int_equal(pthread_create(&t[i], NULL, open_thread, &o[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        if (o[i].rc != 0)
            fail_msg("open %d: %d %s", i, o[i].rc, o[i].err);
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(admin_int(f, "SELECT version FROM volli_schema"), vs_schema_version());
    assert_int_equal(admin_int(f, "SELECT count(*) FROM volli_schema"), 1);
    assert_int_equal(admin_int(f, "SELECT count(*) FROM counters"), 1);
}

static void test_bind_get_count(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    uint8_t key[32];
    open_store(f->url, &st);

    assert_int_equal(vs_store_get_key(&st, "alice", key), VS_ENOTFOUND);
    assert_int_equal(vs_store_get_key(&st, NULL, key), VS_EINVAL);
    assert_int_equal(vs_store_get_key(&st, "\xff\xfe", key), VS_ENOTFOUND);
    bind_one(&st, "alice", 1, 0, 1);
    bind_one(&st, "bob", 1, 0, 1);
    expect_key(&st, "alice", 1);
    expect_key(&st, "bob", 1);
    assert_int_equal(count(&st), 2);

    bind_one(&st, "alice", 1, 0, 0);            /* same key again */
    bind_one(&st, "alice", 2, VS_EMISMATCH, 0); /* never replaced */
    expect_key(&st, "alice", 1);
    assert_int_equal(count(&st), 2);
    assert_int_equal(vs_store_get_key(&st, "carol", key), VS_ENOTFOUND);
    /* Case and bytes matter: ids arrive folded, the store compares exactly. */
    assert_int_equal(vs_store_get_key(&st, "Alice", key), VS_ENOTFOUND);
    assert_int_equal(admin_int(f, "SELECT count(*) FROM users"), 2);
    assert_int_equal(admin_int(f, "SELECT count(*) FROM users WHERE created_at > "
                                  "(extract(epoch FROM now()) - 600) * 1000"),
                     2);
    vs_store_close(&st);
}

static void test_batch_applied_in_order(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_store(f->url, &st);
    bind_one(&st, "old", 1, 0, 1);

    struct {
        const char *id;
        int variant, result, created;
    } want[] = {
        {"zed", 1, 0, 1},
        {"zed", 1, 0, 0},
        {"zed", 2, VS_EMISMATCH, 0},
        {"amy", 3, 0, 1},
        {"old", 2, VS_EMISMATCH, 0},
        {"zed", 2, VS_EMISMATCH, 0},
        {"old", 1, 0, 0},
        {"amy", 3, 0, 0},
        {"mia", 4, 0, 1},
    };
    enum { N = sizeof want / sizeof want[0] };
    vs_binding_t b[N];
    for (int i = 0; i < N; i++) {
        b[i] = (vs_binding_t){.user_id = want[i].id, .result = 12345, .created = 7};
        key_for(want[i].id, want[i].variant, b[i].key);
    }
    assert_int_equal(vs_store_bind_keys(&st, b, N), 0);
    for (int i = 0; i < N; i++) {
        if (b[i].result != want[i].result || b[i].created != want[i].created)
            fail_msg("item %d (%s): result %d created %d, want %d %d", i, want[i].id, b[i].result,
                     b[i].created, want[i].result, want[i].created);
    }
    expect_key(&st, "zed", 1);
    expect_key(&st, "amy", 3);
    expect_key(&st, "old", 1);
    expect_key(&st, "mia", 4);
    assert_int_equal(count(&st), 4);
    assert_int_equal(admin_int(f, "SELECT value FROM counters WHERE name = 'users'"), 4);
    vs_store_close(&st);
}

static void test_batch_invalid_items(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_store(f->url, &st);

    char long_id[130], max_id[2 * 128 + 1];
    memset(long_id, 'x', 129);
    long_id[129] = '\0';
    for (int i = 0; i < 128; i++)
        memcpy(max_id + 2 * i, "\xc3\xa9", 2); /* 128 characters, 256 bytes */
    max_id[256] = '\0';
    const char *ids[] = {"first", NULL,  "", long_id, "bad\xc0\xafutf8", "cesu\xed\xa0\x80",
                         max_id,  "last"};
    int expected[] = {0, VS_EINVAL, VS_EINVAL, VS_EINVAL, VS_EINVAL, VS_EINVAL, 0, 0};
    enum { N = sizeof ids / sizeof ids[0] };
    vs_binding_t b[N];
    for (int i = 0; i < N; i++) {
        b[i] = (vs_binding_t){.user_id = ids[i]};
        key_for(ids[i] ? ids[i] : "null", i, b[i].key);
    }
    assert_int_equal(vs_store_bind_keys(&st, b, N), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(b[i].result, expected[i]);
        assert_int_equal(b[i].created, expected[i] == 0);
    }
    expect_key(&st, "first", 0);
    expect_key(&st, max_id, 6);
    assert_int_equal(count(&st), 3);

    /* Only invalid items, an empty batch, no items. */
    vs_binding_t none[2] = {{.user_id = NULL}, {.user_id = ""}};
    assert_int_equal(vs_store_bind_keys(&st, none, 2), 0);
    assert_int_equal(none[0].result, VS_EINVAL);
    assert_int_equal(none[1].result, VS_EINVAL);
    assert_int_equal(vs_store_bind_keys(&st, b, 0), 0);
    assert_int_equal(vs_store_bind_keys(&st, NULL, 3), VS_EINVAL);
    assert_int_equal(count(&st), 3);
    vs_store_close(&st);
}

/* A server-side failure in the middle of a batch (here a trigger) rolls back all of it. */
static void test_failed_batch_writes_nothing(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_store(f->url, &st);
    bind_one(&st, "kept", 1, 0, 1);
    admin_exec(f, "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                  "IF NEW.user_id = 'boom' THEN RAISE EXCEPTION 'injected'; END IF; "
                  "RETURN NEW; END $$");
    admin_exec(f,
               "CREATE TRIGGER boom BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION boom()");

    const char *ids[] = {"x1", "kept", "x2", NULL, "boom", "x3"};
    enum { N = sizeof ids / sizeof ids[0] };
    vs_binding_t b[N];
    for (int i = 0; i < N; i++) {
        b[i] = (vs_binding_t){.user_id = ids[i], .created = 1};
        key_for(ids[i] ? ids[i] : "", 1, b[i].key);
    }
    assert_int_equal(vs_store_bind_keys(&st, b, N), VS_ESTORE);
    for (int i = 0; i < N; i++) {
        assert_int_equal(b[i].result, VS_ESTORE);
        assert_int_equal(b[i].created, 0);
    }
    uint8_t key[32];
    assert_int_equal(vs_store_get_key(&st, "x1", key), VS_ENOTFOUND);
    assert_int_equal(vs_store_get_key(&st, "x3", key), VS_ENOTFOUND);
    assert_int_equal(count(&st), 1);
    assert_int_equal(admin_int(f, "SELECT count(*) FROM users"), 1);

    /* The connection is still good for the next batch. */
    admin_exec(f, "DROP TRIGGER boom ON users");
    bind_one(&st, "x1", 1, 0, 1);
    assert_int_equal(count(&st), 2);
    vs_store_close(&st);
}

/* The store sets what its promises rely on, whatever the URL asks for: durable commits, and
 * READ COMMITTED (the race handling needs a fresh snapshot per statement). */
static void test_session_settings_enforced(void **state)
{
    fixture_t *f = *state;
    char opts[256], url[2048];
    snprintf(opts, sizeof opts,
             "-csearch_path=%s -csynchronous_commit=off "
             "-cdefault_transaction_isolation=serializable",
             f->schema);
    url_with_options(url, sizeof url, opts);
    vs_store_t st;
    open_store(url, &st);
    admin_exec(f, "CREATE TABLE seen (sync text, iso text)");
    admin_exec(f, "CREATE FUNCTION spy() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                  "INSERT INTO seen VALUES (current_setting('synchronous_commit'), "
                  "current_setting('transaction_isolation')); RETURN NEW; END $$");
    admin_exec(f, "CREATE TRIGGER spy BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION spy()");
    bind_one(&st, "spied", 1, 0, 1);
    assert_int_equal(admin_int(f, "SELECT count(*) FROM seen WHERE sync = 'on' AND "
                                  "iso = 'read committed'"),
                     1);
    assert_int_equal(admin_int(f, "SELECT count(*) FROM seen"), 1);
    vs_store_close(&st);
}

enum { RACE_ROUNDS = 8, RACE_IDS = 64 };

typedef struct racer {
    vs_store_t st;
    pthread_barrier_t *go;
    int variant;
    int reverse;
    int rc[RACE_ROUNDS];
    vs_binding_t b[RACE_ROUNDS][RACE_IDS];
    char ids[RACE_ROUNDS][RACE_IDS][24];
} racer_t;

static void *race_thread(void *arg)
{
    racer_t *r = arg;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        for (int i = 0; i < RACE_IDS; i++) {
            /* One node binds in one order, the other in the reverse order. */
            int k = r->reverse ? RACE_IDS - 1 - i : i;
            snprintf(r->ids[round][i], sizeof r->ids[round][i], "race-%d-%d", round, k);
            r->b[round][i] = (vs_binding_t){.user_id = r->ids[round][i]};
            key_for(r->ids[round][i], r->variant, r->b[round][i].key);
        }
        pthread_barrier_wait(r->go);
        r->rc[round] = vs_store_bind_keys(&r->st, r->b[round], RACE_IDS);
    }
    return NULL;
}

static void test_two_nodes_race(void **state)
{
    fixture_t *f = *state;
    static racer_t r[2];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        memset(&r[i], 0, sizeof r[i]);
        open_store(f->url, &r[i].st);
        r[i].go = &go;
        r[i].variant = i + 1;
        r[i].reverse = i;
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, race_thread, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);

    int wins[2] = {0, 0};
    for (int round = 0; round < RACE_ROUNDS; round++) {
        assert_int_equal(r[0].rc[round], 0);
        assert_int_equal(r[1].rc[round], 0);
        for (int i = 0; i < RACE_IDS; i++) {
            vs_binding_t *a = &r[0].b[round][i], *b = &r[1].b[round][RACE_IDS - 1 - i];
            assert_string_equal(a->user_id, b->user_id);
            int a_won = a->result == 0 && a->created == 1;
            int b_won = b->result == 0 && b->created == 1;
            if (a_won == b_won)
                fail_msg("%s: node A %d/%d, node B %d/%d", a->user_id, a->result, a->created,
                         b->result, b->created);
            vs_binding_t *loser = a_won ? b : a;
            assert_int_equal(loser->result, VS_EMISMATCH);
            assert_int_equal(loser->created, 0);
            wins[a_won ? 0 : 1]++;
            expect_key(&r[0].st, a->user_id, a_won ? 1 : 2);
            expect_key(&r[1].st, a->user_id, a_won ? 1 : 2);
        }
    }
    assert_int_equal(wins[0] + wins[1], RACE_ROUNDS * RACE_IDS);
    assert_int_equal(count(&r[0].st), RACE_ROUNDS * RACE_IDS);
    assert_int_equal(admin_int(f, "SELECT count(*) FROM users"), RACE_ROUNDS * RACE_IDS);
    for (int i = 0; i < 2; i++)
        vs_store_close(&r[i].st);
}

static void test_persistence(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_store(f->url, &st);
    bind_one(&st, "dora", 5, 0, 1);
    bind_one(&st, "eve", 6, 0, 1);
    vs_store_close(&st);

    open_store(f->url, &st);
    expect_key(&st, "dora", 5);
    expect_key(&st, "eve", 6);
    assert_int_equal(count(&st), 2);
    bind_one(&st, "dora", 7, VS_EMISMATCH, 0);
    vs_store_close(&st);
}

static void test_newer_schema_refused(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_store(f->url, &st);
    vs_store_close(&st);
    admin_exec(f, "UPDATE volli_schema SET version = %d", vs_schema_version() + 6);

    static const vs_store_ops_t dummy;
    char err[256] = "", want[128];
    st.ops = &dummy; /* must be zeroed on failure */
    st.self = (void *)&dummy;
    assert_int_equal(vs_store_pg_open(f->url, &st, err, sizeof err), VS_ESTORE);
    assert_null(st.ops);
    assert_null(st.self);
    snprintf(want, sizeof want, "schema version %d is newer than this binary supports (%d)",
             vs_schema_version() + 6, vs_schema_version());
    assert_string_equal(err, want);
    /* Refused without touching anything. */
    assert_int_equal(admin_int(f, "SELECT version FROM volli_schema"), vs_schema_version() + 6);
}

static void test_foreign_tables_refused(void **state)
{
    fixture_t *f = *state;
    admin_exec(f, "CREATE TABLE users (name text)");
    vs_store_t st;
    char err[256] = "";
    assert_int_equal(vs_store_pg_open(f->url, &st, err, sizeof err), VS_ESTORE);
    assert_non_null(strstr(err, "not a Volli database"));
    assert_non_null(strstr(err, f->schema));
    assert_int_equal(admin_int(f, "SELECT count(*) FROM pg_tables WHERE schemaname = "
                                  "current_schema() AND tablename = 'volli_schema'"),
                     0);
}

static void test_bad_urls(void **state)
{
    (void)state;
    vs_store_t st;
    char err[256];
    const char *pw = "s3cr3tPassw0rd";

    assert_int_equal(vs_store_pg_open(NULL, &st, err, sizeof err), VS_EINVAL);
    assert_int_equal(vs_store_pg_open("", &st, err, sizeof err), VS_EINVAL);
    assert_int_equal(vs_store_pg_open(g_url, NULL, err, sizeof err), VS_EINVAL);
    assert_int_equal(vs_store_pg_open("mysql://u:s3cr3tPassw0rd@h/db", &st, err, sizeof err),
                     VS_EINVAL);
    assert_null(strstr(err, pw));
    assert_int_equal(vs_store_pg_open("postgres://u:s3cr3tPassw0rd@127.0.0.1/db?nonsense=1", &st,
                                      err, sizeof err),
                     VS_EINVAL);
    assert_true(strlen(err) > 0);
    assert_null(strstr(err, pw));
    assert_null(strstr(err, "nonsense"));
    assert_int_equal(vs_store_pg_open("postgres://u:s3cr3tPassw0rd@127.0.0.1:1/db", NULL, NULL, 0),
                     VS_EINVAL);

    /* Nothing listens on port 1: refused at once, named by host and port only. */
    double t0 = now_s();
    assert_int_equal(
        vs_store_pg_open("postgresql://u:s3cr3tPassw0rd@127.0.0.1:1/db", &st, err, sizeof err),
        VS_ESTORE);
    assert_true(now_s() - t0 < 3.0);
    assert_non_null(strstr(err, "127.0.0.1:1"));
    assert_null(strstr(err, pw));
    assert_null(st.ops);

    /* The right server, a wrong password: the server's reason, not the password. */
    char url[2048];
    const char *at = strrchr(g_url, '@');
    assert_non_null(at);
    snprintf(url, sizeof url, "postgres://volli:%s%s", pw, at);
    assert_int_equal(vs_store_pg_open(url, &st, err, sizeof err), VS_ESTORE);
    assert_non_null(strstr(err, "password authentication failed"));
    assert_null(strstr(err, pw));
}

/* The store's backends stop answering (SIGSTOP): a call on the loop thread gives up within its
 * deadline instead of hanging, and the next call replaces the connection. */
static void test_hung_server_bounded(void **state)
{
    fixture_t *f = *state;
    char opts[192], url[2048], app[64];
    snprintf(app, sizeof app, "vs-hang-%d", (int)getpid());
    snprintf(opts, sizeof opts, "-csearch_path=%s", f->schema);
    url_with_options(url, sizeof url, opts);
    /* The URL's application_name wins over the store's fallback one. */
    snprintf(url + strlen(url), sizeof url - strlen(url), "&application_name=%s", app);
    vs_store_t st;
    open_store(url, &st);
    bind_one(&st, "hang", 1, 0, 1);

    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE application_name = "
             "'%s'",
             app);
    PGresult *res = PQexec(f->admin, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    int pids[8], npids = 0;
    for (char *p = PQgetvalue(res, 0, 0); *p && npids < 8;) {
        pids[npids++] = (int)strtol(p, &p, 10);
        while (*p == ' ')
            p++;
    }
    PQclear(res);
    assert_int_equal(npids, 2); /* reader and writer */
    for (int i = 0; i < npids; i++)
        assert_int_equal(kill(pids[i], SIGSTOP), 0);

    uint8_t key[32];
    uint64_t n = 0;
    double t0 = now_s();
    int rc1 = vs_store_get_key(&st, "hang", key);
    double t1 = now_s();
    /* The timed-out connection is dropped: the next call gets a fresh backend at once. */
    int rc2 = vs_store_count_users(&st, &n);
    double t2 = now_s();
    for (int i = 0; i < npids; i++)
        kill(pids[i], SIGCONT);
    assert_int_equal(rc1, VS_ESTORE);
    assert_true(t1 - t0 >= 2.0); /* it did wait for the server, up to its deadline */
    assert_true(t1 - t0 < 3.0);
    assert_int_equal(rc2, 0);
    assert_int_equal(n, 1);
    assert_true(t2 - t1 < 1.0);
    assert_int_equal(vs_store_get_key(&st, "hang", key), 0);
    expect_key(&st, "hang", 1);
    bind_one(&st, "after-hang", 1, 0, 1);
    assert_int_equal(count(&st), 2);
    vs_store_close(&st);
}

enum { KILL_BATCH = 100, KILL_MAX_BATCHES = 100000 };

typedef struct writer {
    vs_store_t *st;
    volatile int stop;
    int batches;      /* attempted */
    int last_rc;      /* of the last attempt (the one the kill interrupted) */
    double fail_secs; /* how long the failing call took */
} writer_t;

static void *kill_writer(void *arg)
{
    writer_t *w = arg;
    static char ids[KILL_BATCH][32];
    vs_binding_t b[KILL_BATCH];
    while (!w->stop && w->batches < KILL_MAX_BATCHES) {
        for (int i = 0; i < KILL_BATCH; i++) {
            snprintf(ids[i], sizeof ids[i], "kb-%d-%d", w->batches, i);
            b[i] = (vs_binding_t){.user_id = ids[i]};
            key_for(ids[i], 1, b[i].key);
        }
        double t0 = now_s();
        w->last_rc = vs_store_bind_keys(w->st, b, KILL_BATCH);
        w->batches++;
        if (w->last_rc != 0) {
            w->fail_secs = now_s() - t0;
            break;
        }
    }
    return NULL;
}

static void test_server_killed_and_restarted(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_store(f->url, &st);
    bind_one(&st, "before", 1, 0, 1);

    /* Kill the server while batches are being committed. */
    writer_t w = {.st = &st};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, kill_writer, &w), 0);
    usleep(300 * 1000);
    assert_int_equal(service("kill"), 0);
    double killed = now_s();
    pthread_join(t, NULL);
    assert_true(w.batches >= 1);
    assert_int_equal(w.last_rc, VS_ESTORE);
    assert_true(w.fail_secs < 3.0);
    assert_true(now_s() - killed < 3.0);

    /* Every call fails fast while the server is down, and a failed batch reports every item. */
    uint8_t key[32];
    uint64_t n;
    vs_binding_t b[2] = {{.user_id = "during"}, {.user_id = "during2"}};
    key_for("during", 1, b[0].key);
    key_for("during2", 1, b[1].key);
    for (int round = 0; round < 2; round++) {
        double t0 = now_s();
        assert_int_equal(vs_store_get_key(&st, "before", key), VS_ESTORE);
        assert_int_equal(vs_store_count_users(&st, &n), VS_ESTORE);
        assert_int_equal(vs_store_bind_keys(&st, b, 2), VS_ESTORE);
        assert_int_equal(b[0].result, VS_ESTORE);
        assert_int_equal(b[1].result, VS_ESTORE);
        assert_true(now_s() - t0 < 3.0);
    }

    assert_int_equal(service("restart"), 0);
    PQfinish(f->admin);
    f->admin = admin_connect(f->url);

    /* The same store object reconnects (after its backoff). */
    int rc = VS_ESTORE;
    for (int i = 0; i < 100 && rc != 0; i++) {
        rc = vs_store_get_key(&st, "before", key);
        if (rc != 0)
            usleep(100 * 1000);
    }
    assert_int_equal(rc, 0);
    expect_key(&st, "before", 1);
    assert_int_equal(vs_store_get_key(&st, "during", key), VS_ENOTFOUND);
    rc = VS_ESTORE;
    for (int i = 0; i < 100 && rc != 0; i++) {
        rc = vs_store_bind_keys(&st, b, 2);
        if (rc != 0)
            usleep(100 * 1000);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(b[0].created, 1);
    expect_key(&st, "during2", 1);

    /* Atomic and durable across the crash: every acknowledged batch is complete; the one that
     * was cut off is either complete (committed before the reply was lost) or absent. */
    for (int i = 0; i < w.batches; i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM users WHERE user_id LIKE 'kb-%d-%%'", i);
        long long have = admin_int(f, sql);
        if (i < w.batches - 1 && have != KILL_BATCH)
            fail_msg("acknowledged batch %d has %lld of %d rows", i, have, KILL_BATCH);
        if (have != 0 && have != KILL_BATCH)
            fail_msg("batch %d is half-written: %lld of %d rows", i, have, KILL_BATCH);
    }
    long long rows = admin_int(f, "SELECT count(*) FROM users");
    assert_int_equal(count(&st), (uint64_t)rows);
    vs_store_close(&st);
}

static int read_env(void)
{
    const char *url = getenv("VOLLI_TEST_PG_URL");
    const char *file = getenv("VOLLI_TEST_PG_URL_FILE");
    if (url && *url) {
        snprintf(g_url, sizeof g_url, "%s", url);
    } else if (file && *file) {
        FILE *fp = fopen(file, "r");
        if (!fp || !fgets(g_url, sizeof g_url, fp)) {
            fprintf(stderr, "test_store_pg: cannot read the URL from %s\n", file);
            if (fp)
                fclose(fp);
            return -1;
        }
        fclose(fp);
        g_url[strcspn(g_url, "\r\n")] = '\0';
    }
    g_dir = getenv("VOLLI_TEST_PG_DIR");
    g_service = getenv("VOLLI_TEST_PG_SERVICE");
    if (!g_url[0] || !g_dir || !*g_dir || !g_service || !*g_service) {
        fprintf(stderr, "test_store_pg: needs VOLLI_TEST_PG_URL (or VOLLI_TEST_PG_URL_FILE), "
                        "VOLLI_TEST_PG_DIR and VOLLI_TEST_PG_SERVICE (see cmake/pg_tests.cmake; "
                        "scripts/pg-service start DIR prints the URL)\n");
        return -1;
    }
    if (access(g_service, X_OK) != 0) {
        fprintf(stderr, "test_store_pg: %s is not executable\n", g_service);
        return -1;
    }
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    if (read_env() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        T(test_open_migrates_once),
        T(test_concurrent_opens),
        T(test_bind_get_count),
        T(test_batch_applied_in_order),
        T(test_batch_invalid_items),
        T(test_failed_batch_writes_nothing),
        T(test_session_settings_enforced),
        T(test_two_nodes_race),
        T(test_persistence),
        T(test_newer_schema_refused),
        T(test_foreign_tables_refused),
        T(test_bad_urls),
        cmocka_unit_test_setup_teardown(test_hung_server_bounded, setup, teardown_restart),
        cmocka_unit_test_setup_teardown(test_server_killed_and_restarted, setup, teardown_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
