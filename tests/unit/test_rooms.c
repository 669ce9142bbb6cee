/* Unit tests for directory/rooms.c with a recording send callback in place of sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "directory/rooms.h"

#include <stdio.h>
#include <string.h>

typedef struct sent {
    void *conn;
    char frame[512];
} sent_t;

static sent_t log_[64];
static int nlog;

static void record(void *conn, const char *data, size_t len, void *ud)
{
    (void)ud;
    assert_true(nlog < 64);
    assert_true(len < sizeof log_[0].frame);
    log_[nlog].conn = conn;
    memcpy(log_[nlog].frame, data, len);
    log_[nlog].frame[len] = '\0';
    nlog++;
}

static int conn_a, conn_b, conn_c; /* addresses serve as connection cookies */

static void test_names(void **state)
{
    (void)state;
    assert_true(vs_room_name_valid("a", 1));
    assert_true(vs_room_name_valid("Room_1.x-Y", 10));
    char longest[129];
    memset(longest, 'r', 128);
    assert_true(vs_room_name_valid(longest, 128));
    assert_false(vs_room_name_valid(longest, 129));
    assert_false(vs_room_name_valid("", 0));
    assert_false(vs_room_name_valid("a b", 3));
    assert_false(vs_room_name_valid("a/b", 3));
    assert_false(vs_room_name_valid("caf\xc3\xa9", 5));
    assert_false(vs_room_name_valid("a\0b", 3));
}

static void test_join_announces_and_leave(void **state)
{
    (void)state;
    nlog = 0;
    vs_rooms_t *r = vs_rooms_new(record, NULL);
    vs_room_set_t sa = {0}, sb = {0}, sc = {0};
    vs_room_t *room = NULL;
    assert_int_equal(vs_rooms_join(r, &sa, &conn_a, "alice", "lobby", 5, 0, 50, &room), 0);
    assert_non_null(room);
    assert_string_equal(room->name, "lobby");
    assert_int_equal(nlog, 0); /* nobody else to tell */
    assert_int_equal(vs_rooms_join(r, &sb, &conn_b, "bob", "lobby", 5, 0, 50, &room), 0);
    assert_int_equal(nlog, 1);
    assert_ptr_equal(log_[0].conn, &conn_a);
    assert_string_equal(log_[0].frame,
                        "{\"type\":\"participant_joined\",\"room\":\"lobby\",\"userId\":\"bob\"}");
    assert_int_equal(room->n, 2);
    assert_string_equal(room->members->id, "alice"); /* in join order */
    assert_string_equal(room->members->r_next->id, "bob");
    assert_int_equal(vs_rooms_count(r), 1);
    assert_int_equal(vs_rooms_participants(r), 2);

    /* Joining again changes nothing and tells nobody. */
    nlog = 0;
    vs_room_t *again = NULL;
    assert_int_equal(vs_rooms_join(r, &sb, &conn_b, "bob", "lobby", 5, 0, 50, &again),
                     VS_EEXISTS);
    assert_ptr_equal(again, room);
    assert_int_equal(nlog, 0);
    assert_int_equal(room->n, 2);

    nlog = 0;
    assert_int_equal(vs_rooms_join(r, &sc, &conn_c, "carol", "lobby", 5, 0, 50, &room), 0);
    assert_int_equal(nlog, 2);
    assert_int_equal(vs_rooms_leave(r, &sb, "lobby", 5), 0);
    assert_int_equal(nlog, 4);
    for (int i = 2; i < 4; i++) {
        assert_true(log_[i].conn == &conn_a || log_[i].conn == &conn_c);
        assert_string_equal(log_[i].frame,
                            "{\"type\":\"participant_left\",\"room\":\"lobby\",\"userId\":\"bob\"}");
    }
    assert_int_equal(sb.n, 0);
    assert_null(sb.head);
    assert_int_equal(vs_rooms_leave(r, &sb, "lobby", 5), VS_ENOTFOUND);
    assert_int_equal(vs_rooms_leave(r, &sb, "nowhere", 7), VS_ENOTFOUND);

    /* The room goes away with its last member. */
    assert_int_equal(vs_rooms_leave(r, &sa, "lobby", 5), 0);
    assert_int_equal(vs_rooms_leave(r, &sc, "lobby", 5), 0);
    assert_null(vs_rooms_find(r, "lobby", 5));
    assert_int_equal(vs_rooms_count(r), 0);
    assert_int_equal(vs_rooms_participants(r), 0);
    vs_rooms_free(r);
}

static void test_hidden_not_announced(void **state)
{
    (void)state;
    nlog = 0;
    vs_rooms_t *r = vs_rooms_new(record, NULL);
    vs_room_set_t sa = {0}, sh = {0};
    vs_room_t *room;
    assert_int_equal(vs_rooms_join(r, &sa, &conn_a, "alice", "x", 1, 0, 50, &room), 0);
    assert_int_equal(vs_rooms_join(r, &sh, &conn_b, "ghost", "x", 1, 1, 50, &room), 0);
    assert_int_equal(nlog, 0);
    assert_int_equal(room->n, 2); /* counted all the same */
    vs_member_t *m = vs_rooms_membership(&sh, room);
    assert_non_null(m);
    assert_true(m->hidden);
    /* A visible joiner is announced to the hidden member too: it receives room traffic. */
    vs_room_set_t sc = {0};
    assert_int_equal(vs_rooms_join(r, &sc, &conn_c, "carol", "x", 1, 0, 50, &room), 0);
    assert_int_equal(nlog, 2);
    assert_int_equal(vs_rooms_leave(r, &sh, "x", 1), 0);
    assert_int_equal(nlog, 2);
    vs_rooms_leave_all(r, &sa);
    vs_rooms_leave_all(r, &sc);
    assert_int_equal(vs_rooms_count(r), 0);
    vs_rooms_free(r);
}

static void test_limits_and_leave_all(void **state)
{
    (void)state;
    nlog = 0;
    vs_rooms_t *r = vs_rooms_new(record, NULL);
    vs_room_set_t sa = {0}, sb = {0}, sc = {0};
    vs_room_t *room = NULL;
    assert_int_equal(vs_rooms_join(r, &sa, &conn_a, "alice", "small", 5, 0, 2, &room), 0);
    assert_int_equal(vs_rooms_join(r, &sb, &conn_b, "bob", "small", 5, 0, 2, &room), 0);
    nlog = 0;
    assert_int_equal(vs_rooms_join(r, &sc, &conn_c, "carol", "small", 5, 0, 2, &room),
                     VS_ETOOBIG);
    assert_int_equal(nlog, 0);
    assert_int_equal(sc.n, 0);
    assert_int_equal(vs_rooms_find(r, "small", 5)->n, 2);
    assert_int_equal(vs_rooms_join(r, &sc, &conn_c, "carol", "bad name", 8, 0, 2, &room),
                     VS_EINVAL);

    /* One connection in several rooms; a disconnect leaves all of them. */
    char name[16];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "r%d", i);
        assert_int_equal(vs_rooms_join(r, &sa, &conn_a, "alice", name, strlen(name), 0, 50, &room),
                         0);
    }
    assert_int_equal(sa.n, 6);
    assert_int_equal(vs_rooms_count(r), 6);
    nlog = 0;
    vs_rooms_leave_all(r, &sa);
    assert_int_equal(sa.n, 0);
    assert_null(sa.head);
    assert_int_equal(nlog, 1); /* only bob, in "small", was there to see it */
    assert_ptr_equal(log_[0].conn, &conn_b);
    assert_int_equal(vs_rooms_count(r), 1);
    assert_int_equal(vs_rooms_participants(r), 1);
    /* Freeing with members left empties their sets rather than leaving them dangling. */
    vs_rooms_free(r);
    assert_int_equal(sb.n, 0);
    assert_null(sb.head);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_join_announces_and_leave),
        cmocka_unit_test(test_hidden_not_announced),
        cmocka_unit_test(test_limits_and_leave_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
