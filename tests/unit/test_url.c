/* test_url.c: the redis:// and postgres:// URL parser of cluster mode. */
#include "common/error.h"
#include "common/url.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

static void test_redis_ok(void **state)
{
    (void)state;
    vs_url_t u;
    assert_int_equal(vs_url_parse("redis://127.0.0.1", VS_URL_REDIS, &u), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");
    assert_int_equal(vs_url_parse("redis://:p%40ss%3Aw@cache.local:6380/3", VS_URL_REDIS, &u), 0);
    assert_string_equal(u.host, "cache.local");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    assert_string_equal(u.password, "p@ss:w");
    assert_int_equal(vs_url_parse("redis://user:pw@[::1]:7000/", VS_URL_REDIS, &u), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_string_equal(u.password, "pw");
    assert_int_equal(vs_url_parse("redis://h:1", VS_URL_REDIS, NULL), 0);
}

static void test_redis_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "redis://", "redis:///0", "http://h", "redis://h:", "redis://h:0", "redis://h:65536",
        "redis://h:12a", "redis://h/x", "redis://h/1/2", "redis://pw@h", "redis://:%4@h",
        "redis://:%zz@h", "redis://:%00@h", "redis://[::1", "redis://h o", "redis://h:1:2",
        "redis://[]:1", NULL};
    for (size_t i = 0; bad[i]; i++)
        if (vs_url_parse(bad[i], VS_URL_REDIS, NULL) != VS_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(vs_url_parse(NULL, VS_URL_REDIS, NULL), VS_EINVAL);
}

static void test_postgres(void **state)
{
    (void)state;
    vs_url_t u;
    assert_int_equal(vs_url_parse("postgres://u:pw@db:5433/volli", VS_URL_POSTGRES, &u), 0);
    assert_string_equal(u.host, "db");
    assert_int_equal(u.port, 5433);
    assert_int_equal(vs_url_parse("postgresql://u@[::1]/volli?sslmode=disable", VS_URL_POSTGRES,
                                  &u),
                     0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 5432);
    /* A host list is left to libpq. */
    assert_int_equal(vs_url_parse("postgres://a:1,b:2/d", VS_URL_POSTGRES, NULL), 0);
    static const char *const bad[] = {"postgres://", "postgres:/x", "pg://h/d", "postgres://h d/x",
                                      "postgres://h:0/d", "postgres://h:x/d", "mysql://h/d", NULL};
    for (size_t i = 0; bad[i]; i++)
        if (vs_url_parse(bad[i], VS_URL_POSTGRES, NULL) != VS_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
}

/* The one percent decoder (Redis passwords, the access_token query parameter). */
static void test_percent_decode(void **state)
{
    (void)state;
    char out[8];
    assert_int_equal(vs_percent_decode("a%2Fb%3a", 8, out, sizeof out), 4);
    assert_string_equal(out, "a/b:");
    assert_int_equal(vs_percent_decode("", 0, out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(vs_percent_decode("1234567", 7, out, sizeof out), 7); /* exactly fits */
    assert_int_equal(vs_percent_decode("12345678", 8, out, sizeof out), VS_EINVAL);
    assert_int_equal(vs_percent_decode("ab%4", 4, out, sizeof out), VS_EINVAL);  /* cut short */
    assert_int_equal(vs_percent_decode("ab%zz", 5, out, sizeof out), VS_EINVAL); /* not hex */
    assert_int_equal(vs_percent_decode("a%00b", 5, out, sizeof out), VS_EINVAL); /* a NUL */
    /* n bounds the input: an escape after it is not read. */
    assert_int_equal(vs_percent_decode("ab%41", 2, out, sizeof out), 2);
    assert_string_equal(out, "ab");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_ok),
        cmocka_unit_test(test_redis_bad),
        cmocka_unit_test(test_postgres),
        cmocka_unit_test(test_percent_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
