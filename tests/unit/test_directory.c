/* Unit tests for directory/directory.c with a recording send callback in place of sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "directory/directory.h"

#include <stdio.h>
#include <string.h>

typedef struct sent {
    void *conn;
    char frame[VS_PRESENCE_MAX];
} sent_t;

static sent_t log_[64];
static int nlog;

static void record(void *conn, const char *data, size_t len, void *ud)
{
    (void)ud;
    assert_true(nlog < 64);
    log_[nlog].conn = conn;
    memcpy(log_[nlog].frame, data, len);
    log_[nlog].frame[len] = '\0';
    nlog++;
}

static const uint8_t key[32] = {1, 2, 3};
static int conn_a, conn_b, conn_c; /* addresses serve as connection cookies */

static void test_online_offline_notifies_watchers(void **state)
{
    (void)state;
    nlog = 0;
    vs_directory_t *d = vs_directory_new(record, NULL);
    vs_watcher_t wa = {&conn_a, NULL, 0}, wb = {&conn_b, NULL, 0};
    vs_user_t *u = vs_directory_subscribe(d, &wa, "bob", 3);
    assert_null(u->conn);
    vs_directory_subscribe(d, &wb, "bob", 3);
    vs_directory_subscribe(d, &wa, "bob", 3); /* twice: still one edge */
    assert_int_equal(u->nwatchers, 2);
    assert_int_equal(wa.nsubs, 1);

    void *replaced = (void *)1;
    u = vs_directory_set_online(d, "bob", 3, key, &conn_c, &replaced);
    assert_null(replaced);
    assert_int_equal(vs_directory_online_count(d), 1);
    assert_int_equal(nlog, 2);
    for (int i = 0; i < 2; i++)
        assert_string_equal(log_[i].frame, "{\"type\":\"presence\",\"userId\":\"bob\",\"online\":true}");
    assert_true((log_[0].conn == &conn_a && log_[1].conn == &conn_b) ||
                (log_[0].conn == &conn_b && log_[1].conn == &conn_a));

    vs_directory_unsubscribe(d, &wb, "bob", 3);
    nlog = 0;
    vs_directory_set_offline(d, u, &conn_c);
    assert_int_equal(nlog, 1);
    assert_ptr_equal(log_[0].conn, &conn_a);
    assert_string_equal(log_[0].frame, "{\"type\":\"presence\",\"userId\":\"bob\",\"online\":false}");
    assert_int_equal(vs_directory_online_count(d), 0);
    /* Still watched by a: the entry stays; once unwatched it is collected. */
    assert_non_null(vs_directory_find(d, "bob", 3));
    vs_directory_unsubscribe_all(d, &wa);
    assert_int_equal(wa.nsubs, 0);
    assert_null(wa.subs);
    assert_null(vs_directory_find(d, "bob", 3));
    assert_int_equal(vs_directory_entry_count(d), 0);
    vs_directory_free(d);
}

static void test_replace_keeps_presence(void **state)
{
    (void)state;
    nlog = 0;
    vs_directory_t *d = vs_directory_new(record, NULL);
    vs_watcher_t wa = {&conn_a, NULL, 0};
    vs_directory_subscribe(d, &wa, "bob", 3);
    void *replaced;
    vs_user_t *u = vs_directory_set_online(d, "bob", 3, key, &conn_b, &replaced);
    assert_int_equal(nlog, 1);
    u = vs_directory_set_online(d, "bob", 3, key, &conn_c, &replaced);
    assert_ptr_equal(replaced, &conn_b);
    assert_ptr_equal(u->conn, &conn_c);
    assert_int_equal(nlog, 1); /* no flicker */
    vs_directory_set_offline(d, u, &conn_b); /* the old connection closing changes nothing */
    assert_int_equal(nlog, 1);
    assert_int_equal(vs_directory_online_count(d), 1);
    vs_directory_set_offline(d, u, &conn_c);
    assert_int_equal(nlog, 2);
    vs_directory_free(d);
}

static void test_unwatched_offline_is_collected(void **state)
{
    (void)state;
    vs_directory_t *d = vs_directory_new(record, NULL);
    void *replaced;
    vs_user_t *u = vs_directory_set_online(d, "carol", 5, key, &conn_a, &replaced);
    assert_memory_equal(u->key, key, 32);
    assert_int_equal(vs_directory_entry_count(d), 1);
    vs_directory_set_offline(d, u, &conn_a);
    assert_int_equal(vs_directory_entry_count(d), 0);
    vs_directory_free(d);
}

static void test_free_detaches_watchers(void **state)
{
    (void)state;
    vs_directory_t *d = vs_directory_new(record, NULL);
    vs_watcher_t wa = {&conn_a, NULL, 0};
    char id[16];
    for (int i = 0; i < 20; i++) {
        int n = snprintf(id, sizeof id, "user%d", i);
        vs_directory_subscribe(d, &wa, id, (size_t)n);
    }
    assert_int_equal(wa.nsubs, 20);
    vs_directory_unsubscribe(d, &wa, "user7", 5);
    vs_directory_unsubscribe(d, &wa, "nobody", 6);
    assert_int_equal(wa.nsubs, 19);
    vs_directory_free(d);
    assert_int_equal(wa.nsubs, 0);
    assert_null(wa.subs);
}

static void test_presence_frame_with_id(void **state)
{
    (void)state;
    char out[VS_PRESENCE_MAX];
    size_t n = vs_presence_frame(out, "a.b@c", 1, "x\\\"y", 4);
    assert_int_equal(n, strlen(out));
    assert_string_equal(out,
                        "{\"type\":\"presence\",\"userId\":\"a.b@c\",\"online\":true,\"id\":\"x\\\"y\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_online_offline_notifies_watchers),
        cmocka_unit_test(test_replace_keeps_presence),
        cmocka_unit_test(test_unwatched_offline_is_collected),
        cmocka_unit_test(test_free_detaches_watchers),
        cmocka_unit_test(test_presence_frame_with_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
