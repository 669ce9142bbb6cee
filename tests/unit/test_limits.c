/* Unit tests for core/limits.c: token bucket arithmetic and the per-address table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/limits.h"

static void test_bucket_burst_and_refill(void **state)
{
    (void)state;
    vs_bucket_t b = {0, 0};
    /* Starts full: burst 5 taken at once, the sixth refused. */
    for (int i = 0; i < 5; i++)
        assert_true(vs_bucket_take(&b, 1.0, 5.0, 1, 1000));
    assert_false(vs_bucket_take(&b, 1.0, 5.0, 1, 1000));
    assert_false(vs_bucket_ready(&b, 1.0, 5.0, 1500));
    /* 1 token per second: one more after a second, never above the burst. */
    assert_true(vs_bucket_take(&b, 1.0, 5.0, 1, 2000));
    assert_false(vs_bucket_take(&b, 1.0, 5.0, 1, 2000));
    assert_false(vs_bucket_full(&b, 1.0, 5.0, 6000));
    assert_true(vs_bucket_full(&b, 1.0, 5.0, 7000));
    assert_true(vs_bucket_take(&b, 1.0, 5.0, 5, 100000));
    assert_false(vs_bucket_take(&b, 1.0, 5.0, 1, 100000));
    /* A cost larger than the burst can never be paid. */
    vs_bucket_t c = {0, 0};
    assert_false(vs_bucket_take(&c, 10.0, 3.0, 4, 1));
    assert_true(vs_bucket_take(&c, 10.0, 3.0, 3, 1));
    /* A clock that goes backwards adds nothing. */
    assert_false(vs_bucket_take(&c, 10.0, 3.0, 1, 0));
}

static void test_ip_table(void **state)
{
    (void)state;
    vs_ip_table_t *t = vs_ip_table_new();
    vs_ip_entry_t *a = vs_ip_table_get(t, "192.0.2.1");
    assert_ptr_equal(vs_ip_table_get(t, "192.0.2.1"), a);
    vs_ip_entry_t *b = vs_ip_table_get(t, "2001:db8::1");
    assert_ptr_not_equal(a, b);
    assert_int_equal(vs_ip_table_count(t), 2);
    a->conns = 1;
    assert_true(vs_bucket_take(&b->registers, 1.0, 2.0, 2, 1000));
    /* a has a connection, b's bucket is not refilled: both stay. */
    vs_ip_table_gc(t, 1.0, 2.0, 1500);
    assert_int_equal(vs_ip_table_count(t), 2);
    /* b refilled after 2 s; a still connected. */
    vs_ip_table_gc(t, 1.0, 2.0, 3000);
    assert_int_equal(vs_ip_table_count(t), 1);
    a->conns = 0;
    vs_ip_table_gc(t, 1.0, 2.0, 3000);
    assert_int_equal(vs_ip_table_count(t), 0);
    vs_ip_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_burst_and_refill),
        cmocka_unit_test(test_ip_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
