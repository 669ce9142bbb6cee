/* Unit tests for common/map.c: insert, replace, delete with backward shift, growth, and a
 * randomized comparison against a trivially correct reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_basic(void **state)
{
    (void)state;
    vs_map_t *m = vs_map_new();
    int a = 1, b = 2;
    assert_null(vs_map_get(m, "alice", 5));
    assert_null(vs_map_put(m, "alice", 5, &a));
    assert_ptr_equal(vs_map_get(m, "alice", 5), &a);
    assert_null(vs_map_get(m, "alic", 4));
    assert_ptr_equal(vs_map_put(m, "alice", 5, &b), &a);
    assert_int_equal(vs_map_count(m), 1);
    assert_ptr_equal(vs_map_del(m, "alice", 5), &b);
    assert_null(vs_map_del(m, "alice", 5));
    assert_int_equal(vs_map_count(m), 0);
    vs_map_free(m);
}

static void count_cb(void *val, void *ud)
{
    (void)val;
    (*(size_t *)ud)++;
}

#define N 5000
static void test_random_against_reference(void **state)
{
    (void)state;
    static char keys[N][16];
    static int present[N];
    static int vals[N];
    vs_map_t *m = vs_map_new();
    srand(7);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "u%d", i);
        vals[i] = i;
    }
    for (int step = 0; step < 200000; step++) {
        int i = rand() % N;
        size_t len = strlen(keys[i]);
        switch (rand() % 3) {
        case 0:
            vs_map_put(m, keys[i], len, &vals[i]);
            present[i] = 1;
            break;
        case 1:
            assert_ptr_equal(vs_map_del(m, keys[i], len), present[i] ? &vals[i] : NULL);
            present[i] = 0;
            break;
        default:
            assert_ptr_equal(vs_map_get(m, keys[i], len), present[i] ? &vals[i] : NULL);
        }
    }
    size_t expect = 0, seen = 0;
    for (int i = 0; i < N; i++) {
        expect += (size_t)present[i];
        assert_ptr_equal(vs_map_get(m, keys[i], strlen(keys[i])), present[i] ? &vals[i] : NULL);
    }
    assert_int_equal(vs_map_count(m), expect);
    vs_map_each(m, count_cb, &seen);
    assert_int_equal(seen, expect);
    vs_map_free(m);
}

static void test_siphash_vector(void **state)
{
    (void)state;
    /* Keyed hashes differ per key and per input, and are stable for the same pair. */
    uint8_t k1[16] = {0}, k2[16] = {1};
    assert_true(vs_siphash13(k1, "abc", 3) == vs_siphash13(k1, "abc", 3));
    assert_true(vs_siphash13(k1, "abc", 3) != vs_siphash13(k2, "abc", 3));
    assert_true(vs_siphash13(k1, "abc", 3) != vs_siphash13(k1, "abd", 3));
    assert_true(vs_siphash13(k1, "", 0) != vs_siphash13(k1, "\0", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_random_against_reference),
        cmocka_unit_test(test_siphash_vector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
