/* Tests for storage/store_sqlite: bindings and batches, persistence and migrations, the errors an
 * operator must be able to read, reads concurrent with commits, and durability across kill -9. */
#include "common/error.h"
#include "storage/store.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

typedef struct fixture {
    char root[64];  /* mkdtemp directory, removed after the test */
    char dir[128];  /* the data directory, root/data (not created) */
    char path[160]; /* dir/volli.db */
} fixture_t;

/* Counts syncs of the WAL file. Defined here, these take precedence over libc's for SQLite too,
 * which lets a test check that a commit really reaches the disk before bind_keys returns. */
static atomic_int wal_syncs;

static void count_sync(int fd)
{
    char link[64], target[512];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return;
    target[n] = '\0';
    size_t len = (size_t)n, sfx = strlen("volli.db-wal");
    if (len >= sfx && strcmp(target + len - sfx, "volli.db-wal") == 0)
        atomic_fetch_add(&wal_syncs, 1);
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    count_sync(fd);
    return real(fd);
}

int fsync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    count_sync(fd);
    return real(fd);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int make_writable(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_D || flag == FTW_DNR)
        chmod(path, st->st_mode | S_IRWXU);
    return 0;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    strcpy(f->root, "/tmp/vs-store-test-XXXXXX");
    if (!mkdtemp(f->root)) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/data", f->root);
    snprintf(f->path, sizeof f->path, "%s/volli.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    nftw(f->root, make_writable, 16, FTW_PHYS);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
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
        key[i] = (uint8_t)(h >> 56);
    }
}

static void open_ok(fixture_t *f, vs_store_t *st)
{
    char err[256] = "";
    int rc = vs_store_sqlite_open(f->dir, st, err, sizeof err);
    if (rc != 0)
        fail_msg("open %s: %d %s", f->dir, rc, err);
    assert_non_null(st->ops);
    assert_string_equal(st->ops->name, "sqlite");
}

static int bind1(vs_store_t *st, const char *uid, int variant, int *created)
{
    vs_binding_t b = {.user_id = uid};
    key_for(uid, variant, b.key);
    assert_int_equal(vs_store_bind_keys(st, &b, 1), 0);
    *created = b.created;
    return b.result;
}

static void expect_key(vs_store_t *st, const char *uid, int variant)
{
    uint8_t got[32], want[32];
    key_for(uid, variant, want);
    assert_int_equal(vs_store_get_key(st, uid, got), 0);
    assert_memory_equal(got, want, 32);
}

static uint64_t count(vs_store_t *st)
{
    uint64_t n = UINT64_MAX;
    assert_int_equal(vs_store_count_users(st, &n), 0);
    return n;
}

static long long raw_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *stmt;
    long long v = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return v;
}

static int raw_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static void expect_open_error(const char *dir, int code, const char *msg)
{
    vs_store_t st = {(const vs_store_ops_t *)1, (void *)1};
    char err[256] = "";
    int rc = vs_store_sqlite_open(dir, &st, err, sizeof err);
    if (rc != code || strcmp(err, msg) != 0)
        fail_msg("open %s: got %d \"%s\", want %d \"%s\"", dir, rc, err, code, msg);
    assert_null(st.ops);
    assert_null(st.self);
}

static void test_open_creates_private_dirs(void **state)
{
    fixture_t *f = *state;
    snprintf(f->dir, sizeof f->dir, "%s/a//b/data/", f->root);
    vs_store_t st;
    open_ok(f, &st);

    const char *created[] = {"a", "a/b", "a/b/data"};
    for (size_t i = 0; i < 3; i++) {
        char p[256];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", f->root, created[i]);
        assert_int_equal(stat(p, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
        assert_int_equal(sb.st_mode & 0077, 0);
    }
    char db[256];
    snprintf(db, sizeof db, "%s/a/b/data/volli.db", f->root);
    assert_int_equal(access(db, F_OK), 0);
    assert_int_equal(count(&st), 0);
    vs_store_close(&st);
    assert_null(st.ops);
    vs_store_close(&st); /* twice is harmless */
}

static void test_bind_get_count(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    uint8_t key[32];
    int created = -1;
    open_ok(f, &st);

    assert_int_equal(vs_store_get_key(&st, "alice", key), VS_ENOTFOUND);
    assert_int_equal(bind1(&st, "alice", 1, &created), 0);
    assert_int_equal(created, 1);
    expect_key(&st, "alice", 1);
    assert_int_equal(count(&st), 1);

    /* Same key again: fine, nothing created. */
    assert_int_equal(bind1(&st, "alice", 1, &created), 0);
    assert_int_equal(created, 0);
    /* Another key: refused, and the first key stays. */
    assert_int_equal(bind1(&st, "alice", 2, &created), VS_EMISMATCH);
    assert_int_equal(created, 0);
    expect_key(&st, "alice", 1);
    assert_int_equal(count(&st), 1);

    assert_int_equal(bind1(&st, "bob", 1, &created), 0);
    assert_int_equal(created, 1);
    expect_key(&st, "bob", 1);
    assert_int_equal(count(&st), 2);
    assert_int_equal(vs_store_get_key(&st, "carol", key), VS_ENOTFOUND);
    assert_int_equal(vs_store_get_key(&st, "ALICE", key), VS_ENOTFOUND); /* ids arrive folded */
    assert_int_equal(vs_store_get_key(&st, NULL, key), VS_EINVAL);
    vs_store_close(&st);
}

static void test_batch_applied_in_order(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_ok(f, &st);
    int created;
    assert_int_equal(bind1(&st, "zed", 1, &created), 0);

    static const struct {
        const char *uid;
        int variant, result, created;
    } want[] = {
        {"carol", 1, 0, 1},
        {"dave", 1, 0, 1},
        {"carol", 1, 0, 0},
        {"carol", 3, VS_EMISMATCH, 0},
        {"dave", 1, 0, 0},
        {"erin", 4, 0, 1},
        {"erin", 5, VS_EMISMATCH, 0},
        {"zed", 1, 0, 0},
        {"zed", 2, VS_EMISMATCH, 0},
    };
    enum { N = sizeof want / sizeof want[0] };
    vs_binding_t items[N];
    for (size_t i = 0; i < N; i++) {
        items[i] = (vs_binding_t){.user_id = want[i].uid, .result = 12345, .created = 7};
        key_for(want[i].uid, want[i].variant, items[i].key);
    }
    assert_int_equal(vs_store_bind_keys(&st, items, N), 0);
    for (size_t i = 0; i < N; i++) {
        if (items[i].result != want[i].result || items[i].created != want[i].created)
            fail_msg("item %zu (%s): result %d created %d", i, want[i].uid, items[i].result,
                     items[i].created);
    }
    expect_key(&st, "carol", 1);
    expect_key(&st, "dave", 1);
    expect_key(&st, "erin", 4);
    expect_key(&st, "zed", 1);
    assert_int_equal(count(&st), 4);
    assert_int_equal(vs_store_bind_keys(&st, NULL, 0), 0);
    vs_store_close(&st);
}

static void test_batch_invalid_items(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_ok(f, &st);

    char longest[129], toolong[130];
    memset(longest, 'a', 128);
    longest[128] = '\0';
    memset(toolong, 'b', 129);
    toolong[129] = '\0';
    vs_binding_t items[] = {
        {.user_id = NULL},    {.user_id = ""},      {.user_id = toolong},
        {.user_id = longest}, {.user_id = "frank"},
    };
    for (size_t i = 0; i < 5; i++)
        key_for(items[i].user_id ? items[i].user_id : "", 1, items[i].key);

    /* A bad item must not sink the rest of the group commit. */
    assert_int_equal(vs_store_bind_keys(&st, items, 5), 0);
    assert_int_equal(items[0].result, VS_EINVAL);
    assert_int_equal(items[1].result, VS_EINVAL);
    assert_int_equal(items[2].result, VS_EINVAL);
    assert_int_equal(items[2].created, 0);
    assert_int_equal(items[3].result, 0);
    assert_int_equal(items[3].created, 1);
    assert_int_equal(items[4].result, 0);
    assert_int_equal(items[4].created, 1);
    expect_key(&st, longest, 1);
    expect_key(&st, "frank", 1);
    uint8_t key[32];
    assert_int_equal(vs_store_get_key(&st, toolong, key), VS_ENOTFOUND);
    assert_int_equal(count(&st), 2);
    vs_store_close(&st);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_persistence_and_migrations(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_ok(f, &st);
    long long objects = raw_int(f->path, "SELECT count(*) FROM sqlite_master");
    assert_true(objects > 0);

    int64_t t0 = wall_ms();
    vs_binding_t items[50];
    char names[50][16];
    for (int i = 0; i < 50; i++) {
        snprintf(names[i], sizeof names[i], "user%d", i);
        items[i] = (vs_binding_t){.user_id = names[i]};
        key_for(names[i], 1, items[i].key);
    }
    assert_int_equal(vs_store_bind_keys(&st, items, 50), 0);
    int64_t t1 = wall_ms();
    vs_store_close(&st);

    for (int round = 0; round < 3; round++) {
        open_ok(f, &st);
        for (int i = 0; i < 50; i++)
            expect_key(&st, names[i], 1);
        assert_int_equal(count(&st), 50);
        int created;
        assert_int_equal(bind1(&st, "user7", 2, &created), VS_EMISMATCH);
        vs_store_close(&st);

        /* Reopening applies nothing twice. */
        assert_int_equal(raw_int(f->path, "PRAGMA user_version"), vs_store_sqlite_schema_version());
        assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master"), objects);
        assert_int_equal(raw_int(f->path, "SELECT count(*) FROM counters"), 1);
    }
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM users"), 50);
    long long created_at = raw_int(f->path, "SELECT created_at FROM users WHERE user_id = 'user3'");
    assert_in_range(created_at, t0, t1);
    /* WAL mode is recorded in the file. */
    assert_int_equal(raw_int(f->path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
}

static void test_schema_constraints(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_ok(f, &st);
    vs_store_close(&st);
    /* The schema itself refuses keys that are not 32 bytes. */
    assert_int_equal(raw_exec(f->path, "INSERT INTO users VALUES ('x', zeroblob(31), 0)") & 0xff,
                     SQLITE_CONSTRAINT);
    assert_int_equal(raw_exec(f->path, "INSERT INTO users VALUES ('x', zeroblob(33), 0)") & 0xff,
                     SQLITE_CONSTRAINT);
    assert_int_equal(raw_exec(f->path, "INSERT INTO users VALUES ('x', NULL, 0)") & 0xff,
                     SQLITE_CONSTRAINT);
    assert_int_equal(raw_exec(f->path, "INSERT INTO users VALUES ('x', "
                                       "'0123456789abcdef0123456789abcdef', 0)") &
                         0xff,
                     SQLITE_CONSTRAINT);
    assert_int_equal(raw_exec(f->path, "INSERT INTO users VALUES ('x', zeroblob(32), 0)"),
                     SQLITE_OK);
    /* Rows added or removed behind the store's back keep the count right (triggers). */
    open_ok(f, &st);
    assert_int_equal(count(&st), 1);
    vs_store_close(&st);
    assert_int_equal(raw_exec(f->path, "DELETE FROM users"), SQLITE_OK);
    open_ok(f, &st);
    assert_int_equal(count(&st), 0);
    vs_store_close(&st);
}

static void test_newer_schema_refused(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_ok(f, &st);
    vs_store_close(&st);
    assert_int_equal(raw_exec(f->path, "PRAGMA user_version = 7"), SQLITE_OK);

    char msg[128];
    snprintf(msg, sizeof msg, "schema version 7 is newer than this binary supports (%d)",
             vs_store_sqlite_schema_version());
    expect_open_error(f->dir, VS_ESTORE, msg);
    /* Refusing changed nothing. */
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 7);
}

static void test_not_a_database(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(mkdir(f->dir, 0700), 0);
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs("this is a text file, not a database\n", fp);
    fclose(fp);

    char msg[256];
    snprintf(msg, sizeof msg, "file %s is not a SQLite database", f->path);
    expect_open_error(f->dir, VS_ESTORE, msg);
}

static void test_foreign_database_refused(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(mkdir(f->dir, 0700), 0);
    assert_int_equal(raw_exec(f->path, "CREATE TABLE users (name TEXT); INSERT INTO users "
                                       "VALUES ('someone else''s data')"),
                     SQLITE_OK);
    char msg[256];
    snprintf(msg, sizeof msg, "database %s is not a Volli database (application_id 0)", f->path);
    expect_open_error(f->dir, VS_ESTORE, msg);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM users"), 1);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 0);
}

/* Holds an exclusive lock on path in a child process until told to let go. */
static pid_t hold_exclusive_lock(const char *path, int *release_fd)
{
    int ready[2], release[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(release), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sqlite3 *db;
        char c = 1;
        close(ready[0]);
        close(release[1]);
        if (sqlite3_open(path, &db) != SQLITE_OK ||
            sqlite3_exec(db, "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE", NULL, NULL,
                         NULL) != SQLITE_OK)
            _exit(1);
        if (write(ready[1], &c, 1) != 1)
            _exit(2);
        (void)read(release[0], &c, 1); /* returns at EOF */
        _exit(0);
    }
    close(ready[1]);
    close(release[0]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    *release_fd = release[1];
    return pid;
}

static void test_locked_database(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_ok(f, &st);
    int created;
    assert_int_equal(bind1(&st, "alice", 1, &created), 0);
    vs_store_close(&st);

    int release;
    pid_t pid = hold_exclusive_lock(f->path, &release);
    char msg[256];
    snprintf(msg, sizeof msg, "database %s is locked by another process", f->path);
    expect_open_error(f->dir, VS_ESTORE, msg);

    close(release);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    open_ok(f, &st);
    expect_key(&st, "alice", 1);
    vs_store_close(&st);
}

/* Another writer holds the write lock past the busy timeout: the batch fails as a whole and
 * nothing of it is written; the same batch succeeds once the lock is gone. */
static void test_failed_batch_writes_nothing(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_ok(f, &st);

    sqlite3 *other;
    assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    vs_binding_t items[3] = {{.user_id = "gina"}, {.user_id = "hank"}, {.user_id = "gina"}};
    for (int i = 0; i < 3; i++)
        key_for(items[i].user_id, i, items[i].key);
    assert_int_equal(vs_store_bind_keys(&st, items, 3), VS_ESTORE);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(items[i].result, VS_ESTORE);
        assert_int_equal(items[i].created, 0);
    }
    /* Reads go on while the write lock is held elsewhere (WAL). */
    uint8_t key[32];
    assert_int_equal(vs_store_get_key(&st, "gina", key), VS_ENOTFOUND);
    assert_int_equal(count(&st), 0);

    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(vs_store_bind_keys(&st, items, 3), 0);
    assert_int_equal(items[0].created, 1);
    assert_int_equal(items[1].created, 1);
    assert_int_equal(items[2].result, VS_EMISMATCH);
    expect_key(&st, "gina", 0);
    expect_key(&st, "hank", 1);
    assert_int_equal(count(&st), 2);
    vs_store_close(&st);
}

/* Runs vs_store_sqlite_open as an unprivileged user in a child; root would write anyway. */
static int open_as_nobody(const char *dir, char *err, size_t errlen)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(77);
        vs_store_t st;
        char msg[256] = "";
        int rc = vs_store_sqlite_open(dir, &st, msg, sizeof msg);
        if (rc == 0)
            vs_store_close(&st);
        if (write(fds[1], &rc, sizeof rc) != sizeof rc ||
            write(fds[1], msg, sizeof msg) != sizeof msg)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    int rc = 1;
    if (read(fds[0], &rc, sizeof rc) == sizeof rc && read(fds[0], err, errlen) > 0)
        err[errlen - 1] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        return 77;
    assert_int_equal(WEXITSTATUS(status), 0);
    return rc;
}

static void test_unusable_data_dir(void **state)
{
    fixture_t *f = *state;

    /* Cannot be created, even by root: a path under a character device. */
    expect_open_error("/dev/null/x", VS_EIO,
                      "cannot create data directory /dev/null/x: Not a directory");
    expect_open_error("/dev/null/x/y", VS_EIO,
                      "cannot create data directory /dev/null/x/y: Not a directory");

    /* A regular file where the directory should be. */
    char msg[256];
    FILE *fp = fopen(f->dir, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(msg, sizeof msg, "data directory %s is not a directory", f->dir);
    expect_open_error(f->dir, VS_EIO, msg);
    assert_int_equal(unlink(f->dir), 0);

    /* A directory where the database file should be. */
    assert_int_equal(mkdir(f->dir, 0700), 0);
    assert_int_equal(mkdir(f->path, 0700), 0);
    snprintf(msg, sizeof msg, "database %s is not a regular file", f->path);
    expect_open_error(f->dir, VS_ESTORE, msg);
    assert_int_equal(rmdir(f->path), 0);

    /* Exists but is not writable. */
    snprintf(msg, sizeof msg, "data directory %s is not writable: Permission denied", f->dir);
    assert_int_equal(chmod(f->dir, 0555), 0);
    if (geteuid() != 0) {
        expect_open_error(f->dir, VS_EIO, msg);
    } else {
        assert_int_equal(chmod(f->root, 0755), 0);
        char err[256] = "";
        int rc = open_as_nobody(f->dir, err, sizeof err);
        if (rc == 77) {
            print_message("cannot drop root privileges here; skipped the unwritable case\n");
        } else {
            assert_int_equal(rc, VS_EIO);
            assert_string_equal(err, msg);
        }
    }
    assert_int_equal(access(f->path, F_OK), -1); /* nothing was created */
    assert_int_equal(chmod(f->dir, 0700), 0);

    expect_open_error("", VS_EINVAL, "no data directory given");
    expect_open_error(NULL, VS_EINVAL, "no data directory given");
}

/* SQLite quietly opens a file it cannot write read-only; the store must refuse instead. */
static void test_readonly_database_file(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_ok(f, &st);
    vs_store_close(&st);
    assert_int_equal(chmod(f->path, 0444), 0);
    assert_int_equal(chmod(f->dir, 0777), 0);

    char msg[256];
    snprintf(msg, sizeof msg, "database %s is not writable", f->path);
    if (geteuid() != 0) {
        expect_open_error(f->dir, VS_ESTORE, msg);
    } else {
        assert_int_equal(chmod(f->root, 0755), 0);
        char err[256] = "";
        int rc = open_as_nobody(f->dir, err, sizeof err);
        if (rc == 77) {
            print_message("cannot drop root privileges here; skipped\n");
        } else {
            assert_int_equal(rc, VS_ESTORE);
            assert_string_equal(err, msg);
        }
    }
    assert_int_equal(chmod(f->path, 0600), 0);
    assert_int_equal(chmod(f->dir, 0700), 0);
}

/* Two servers on one data directory would each think their in-memory directory is the only one. */
static void test_second_instance_refused(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_ok(f, &st);
    char msg[512];
    snprintf(msg, sizeof msg, "data directory %s is in use by another volli-signal process",
             f->dir);
    expect_open_error(f->dir, VS_ESTORE, msg);
    vs_store_close(&st);
    open_ok(f, &st); /* the lock goes with the store */
    vs_store_close(&st);
}

static void test_commit_reaches_disk(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_ok(f, &st);
    int created;

    int before = atomic_load(&wal_syncs);
    assert_int_equal(bind1(&st, "ivan", 1, &created), 0);
    int after = atomic_load(&wal_syncs);
    /* synchronous=FULL: the WAL is synced by every commit, before bind_keys returns. */
    assert_true(after > before);

    before = after;
    uint8_t key[32];
    assert_int_equal(vs_store_get_key(&st, "ivan", key), 0);
    assert_int_equal(count(&st), 1);
    assert_int_equal(atomic_load(&wal_syncs), before);
    vs_store_close(&st);
}

/* The reader (loop thread) runs while the writer (worker thread) commits batches: it sees
 * every acknowledged binding, never a wrong key, and never an error. */
enum { CONC_BATCHES = 150, CONC_BATCH = 10 };

typedef struct conc {
    vs_store_t *st;
    atomic_int acked; /* batches whose bind_keys returned 0 */
    atomic_int done;
    int writer_errors;
} conc_t;

static void conc_name(char *buf, size_t len, int batch, int i)
{
    snprintf(buf, len, "b%d.u%d", batch, i);
}

static void *conc_writer(void *arg)
{
    conc_t *c = arg;
    char names[CONC_BATCH][24];
    vs_binding_t items[CONC_BATCH];
    for (int b = 0; b < CONC_BATCHES; b++) {
        for (int i = 0; i < CONC_BATCH; i++) {
            conc_name(names[i], sizeof names[i], b, i);
            items[i] = (vs_binding_t){.user_id = names[i]};
            key_for(names[i], 1, items[i].key);
        }
        if (vs_store_bind_keys(c->st, items, CONC_BATCH) != 0) {
            c->writer_errors++;
            continue;
        }
        for (int i = 0; i < CONC_BATCH; i++)
            c->writer_errors += items[i].result != 0 || items[i].created != 1;
        atomic_store(&c->acked, b + 1);
    }
    atomic_store(&c->done, 1);
    return NULL;
}

static void test_concurrent_reader(void **state)
{
    fixture_t *f = *state;
    vs_store_t st;
    open_ok(f, &st);
    conc_t c = {.st = &st};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, conc_writer, &c), 0);

    uint64_t rng = 88172645463325252ULL, last_count = 0;
    long reads = 0, found = 0, errors = 0, wrong = 0, missing = 0;
    while (!atomic_load(&c.done)) {
        int acked = atomic_load(&c.acked);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        int b = (int)(rng % CONC_BATCHES), i = (int)((rng >> 20) % CONC_BATCH);
        char name[24];
        uint8_t got[32], want[32];
        conc_name(name, sizeof name, b, i);
        key_for(name, 1, want);
        int rc = vs_store_get_key(&st, name, got);
        reads++;
        if (rc == 0) {
            found++;
            wrong += memcmp(got, want, 32) != 0;
        } else if (rc == VS_ENOTFOUND) {
            missing += b < acked; /* acknowledged, so it must be visible */
        } else {
            errors++;
        }
        uint64_t n;
        if (vs_store_count_users(&st, &n) != 0) {
            errors++;
        } else {
            /* Old or new, but never going back and never behind an acknowledgement. */
            wrong += n < last_count || n < (uint64_t)acked * CONC_BATCH ||
                     n > (uint64_t)CONC_BATCHES * CONC_BATCH || n % CONC_BATCH != 0;
            last_count = n;
        }
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    print_message("%ld reads during %d commits, %ld found\n", reads, CONC_BATCHES, found);
    assert_int_equal(c.writer_errors, 0);
    assert_int_equal(errors, 0);
    assert_int_equal(wrong, 0);
    assert_int_equal(missing, 0);
    assert_true(reads > 0);
    assert_int_equal(count(&st), CONC_BATCHES * CONC_BATCH);
    vs_store_close(&st);
}

/* In a child: open a fresh store (connections must not cross fork), bind, and die right after
 * bind_keys returns without closing anything. */
static void child_bind_and_die(const char *dir, int how)
{
    vs_store_t st;
    char err[256];
    if (vs_store_sqlite_open(dir, &st, err, sizeof err) != 0)
        _exit(10);
    vs_binding_t items[3] = {{.user_id = "kim"}, {.user_id = "lee"}, {.user_id = "max"}};
    for (int i = 0; i < 3; i++)
        key_for(items[i].user_id, 1, items[i].key);
    if (vs_store_bind_keys(&st, items, 3) != 0)
        _exit(11);
    if (how == SIGKILL)
        kill(getpid(), SIGKILL);
    _exit(0);
}

static void test_durable_across_abrupt_exit(void **state)
{
    fixture_t *f = *state;
    const int hows[] = {SIGKILL, 0};
    for (size_t k = 0; k < 2; k++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            child_bind_and_die(f->dir, hows[k]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (hows[k] == SIGKILL)
            assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        else
            assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        vs_store_t st;
        open_ok(f, &st);
        expect_key(&st, "kim", 1);
        expect_key(&st, "lee", 1);
        expect_key(&st, "max", 1);
        assert_int_equal(count(&st), 3);
        vs_store_close(&st);
    }
}

enum { STREAM_BATCH = 10, STREAM_KILL_AFTER = 25 };

/* kill -9 at an arbitrary point of a stream of commits: every acknowledged batch survives, and
 * the batch in flight is all there or not at all. */
static void test_durable_and_atomic_under_kill(void **state)
{
    fixture_t *f = *state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        vs_store_t st;
        char err[256];
        if (vs_store_sqlite_open(f->dir, &st, err, sizeof err) != 0)
            _exit(10);
        for (int b = 0;; b++) {
            char names[STREAM_BATCH][24];
            vs_binding_t items[STREAM_BATCH];
            for (int i = 0; i < STREAM_BATCH; i++) {
                conc_name(names[i], sizeof names[i], b, i);
                items[i] = (vs_binding_t){.user_id = names[i]};
                key_for(names[i], 1, items[i].key);
            }
            if (vs_store_bind_keys(&st, items, STREAM_BATCH) != 0)
                _exit(11);
            if (write(fds[1], &b, sizeof b) != sizeof b)
                _exit(12);
        }
    }
    close(fds[1]);
    int b, acked = 0;
    while (acked < STREAM_KILL_AFTER && read(fds[0], &b, sizeof b) == sizeof b)
        acked = b + 1;
    assert_int_equal(acked, STREAM_KILL_AFTER);
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* Acknowledgements written before the kill count too. */
    while (read(fds[0], &b, sizeof b) == sizeof b)
        acked = b + 1;
    close(fds[0]);

    vs_store_t st;
    open_ok(f, &st);
    for (int bb = 0; bb < acked; bb++) {
        for (int i = 0; i < STREAM_BATCH; i++) {
            char name[24];
            conc_name(name, sizeof name, bb, i);
            expect_key(&st, name, 1);
        }
    }
    int present = 0;
    for (int i = 0; i < STREAM_BATCH; i++) {
        char name[24];
        uint8_t key[32];
        conc_name(name, sizeof name, acked, i);
        present += vs_store_get_key(&st, name, key) == 0;
    }
    assert_true(present == 0 || present == STREAM_BATCH);
    uint64_t n = count(&st);
    assert_int_equal(n, (uint64_t)(acked + (present ? 1 : 0)) * STREAM_BATCH);
    print_message("killed after %d acknowledged batches; in-flight batch %s\n", acked,
                  present ? "committed" : "absent");
    vs_store_close(&st);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_creates_private_dirs),
        T(test_bind_get_count),
        T(test_batch_applied_in_order),
        T(test_batch_invalid_items),
        T(test_persistence_and_migrations),
        T(test_schema_constraints),
        T(test_newer_schema_refused),
        T(test_not_a_database),
        T(test_foreign_database_refused),
        T(test_locked_database),
        T(test_failed_batch_writes_nothing),
        T(test_unusable_data_dir),
        T(test_readonly_database_file),
        T(test_second_instance_refused),
        T(test_commit_reaches_disk),
        T(test_concurrent_reader),
        T(test_durable_across_abrupt_exit),
        T(test_durable_and_atomic_under_kill),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
