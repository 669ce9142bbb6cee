/* Unit tests for protocol/wire.c (the vocabulary tables), core/metrics.c (exposition text) and
 * common/buf.c (JSON string escaping). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "core/metrics.h"
#include "protocol/wire.h"

#include <string.h>

static vs_slice_t sl(const char *s)
{
    return (vs_slice_t){s, strlen(s)};
}

static void test_types_round_trip(void **state)
{
    (void)state;
    for (int t = 0; t < VS_MSG_COUNT; t++)
        assert_int_equal(vs_msg_type_from(sl(vs_msg_type_name((vs_msg_type_t)t))), t);
    assert_int_equal(vs_msg_type_from(sl("Offer")), VS_MSG_UNKNOWN);
    assert_int_equal(vs_msg_type_from(sl("offe")), VS_MSG_UNKNOWN);
    assert_int_equal(vs_msg_type_from(sl("")), VS_MSG_UNKNOWN);
    assert_true(vs_msg_is_relay(VS_MSG_OFFER) && vs_msg_is_relay(VS_MSG_BYE));
    assert_false(vs_msg_is_relay(VS_MSG_REGISTER) || vs_msg_is_relay(VS_MSG_PING));
    assert_string_equal(vs_msg_relay_field(VS_MSG_ICE), "candidate");
    assert_null(vs_msg_relay_field(VS_MSG_BYE));
}

static void test_error_names(void **state)
{
    (void)state;
    const char *required[] = {"bad_json",        "bad_request",   "unknown_type",
                              "not_registered",  "invalid_user_id", "bad_signature",
                              "key_mismatch",    "already_registered", "peer_offline",
                              "too_large",       "replaced"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        int found = 0;
        for (int e = 0; e < VS_WERR_COUNT; e++)
            found |= strcmp(vs_wire_error_name((vs_wire_error_t)e), required[i]) == 0;
        assert_true(found);
    }
}

static void test_metrics_text(void **state)
{
    (void)state;
    vs_metrics_t m;
    memset(&m, 0, sizeof m);
    m.relayed[VS_MSG_OFFER] = 3;
    vs_metrics_error(&m, VS_WERR_PEER_OFFLINE);
    vs_metrics_observe(&m, VS_MSG_DISCOVER, 0.0003);
    vs_metrics_observe(&m, VS_MSG_DISCOVER, 2.0);
    vs_metrics_gauges_t g = {.connections = 7, .registered_users = 9};
    vs_buf_t b;
    vs_buf_init(&b);
    vs_metrics_render(&m, &g, 1.5, &b);
    vs_buf_append(&b, "", 1);
    assert_non_null(strstr(b.p, "\nvolli_connections 7\n"));
    assert_non_null(strstr(b.p, "\nvolli_registered_users 9\n"));
    assert_non_null(strstr(b.p, "volli_messages_relayed_total{type=\"offer\"} 3\n"));
    assert_non_null(strstr(b.p, "volli_messages_relayed_total{type=\"ice-candidate\"} 0\n"));
    assert_non_null(strstr(b.p, "volli_errors_total{code=\"peer_offline\"} 1\n"));
    /* Cumulative buckets: 0.0003 falls in le=0.0005 and above, 2.0 only in +Inf. */
    assert_non_null(strstr(b.p, "{type=\"discover\",le=\"0.00025\"} 0\n"));
    assert_non_null(strstr(b.p, "{type=\"discover\",le=\"0.0005\"} 1\n"));
    assert_non_null(strstr(b.p, "{type=\"discover\",le=\"1\"} 1\n"));
    assert_non_null(strstr(b.p, "{type=\"discover\",le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(b.p, "volli_request_duration_seconds_count{type=\"discover\"} 2\n"));
    assert_non_null(strstr(b.p, "# TYPE volli_request_duration_seconds histogram\n"));
    assert_non_null(strstr(b.p, "\nprocess_resident_memory_bytes "));
    assert_null(strstr(b.p, "process_resident_memory_bytes 0\n"));
    vs_buf_deinit(&b);
}

static void test_buf_json_escaping(void **state)
{
    (void)state;
    vs_buf_t b;
    vs_buf_init(&b);
    vs_buf_json_str(&b, "a\"b\\c\n\x01\xc3\xa9", 9);
    assert_int_equal(b.len, strlen("\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\""));
    assert_memory_equal(b.p, "\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\"", b.len);
    b.len = 0;
    vs_buf_printf(&b, "%d-%s", 42, "x");
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.p, "42-x", 4);
    vs_buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_round_trip),
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_metrics_text),
        cmocka_unit_test(test_buf_json_escaping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
