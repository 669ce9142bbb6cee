/* Tests for protocol/userid: folding, the allowed set, length edges, and the register message. */
#include "common/error.h"
#include "protocol/userid.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static const char ALLOWED[] = "abcdefghijklmnopqrstuvwxyz0123456789._+@-";

static int fold_str(const char *s, char out[VS_USERID_MAX + 1])
{
    return vs_userid_fold(s, strlen(s), out);
}

static void expect_invalid(const char *s, size_t len)
{
    char out[VS_USERID_MAX + 1];
    if (vs_userid_fold(s, len, out) != VS_EINVAL)
        fail_msg("accepted \"%.*s\" (len %zu)", s ? (int)len : 0, s ? s : "", len);
}

static void test_empty(void **state)
{
    (void)state;
    expect_invalid("", 0);
    expect_invalid(NULL, 0);
}

static void test_length_limits(void **state)
{
    (void)state;
    char in[VS_USERID_MAX + 2], out[VS_USERID_MAX + 1];

    memset(in, 'A', sizeof in);
    assert_int_equal(vs_userid_fold(in, 1, out), 0);
    assert_string_equal(out, "a");

    memset(out, 'X', sizeof out);
    assert_int_equal(vs_userid_fold(in, VS_USERID_MAX, out), 0);
    assert_int_equal(strlen(out), VS_USERID_MAX);
    for (size_t i = 0; i < VS_USERID_MAX; i++)
        assert_int_equal(out[i], 'a');

    expect_invalid(in, VS_USERID_MAX + 1);
    expect_invalid(in, (size_t)-1);
}

static void test_every_allowed_char(void **state)
{
    (void)state;
    char out[VS_USERID_MAX + 1];
    assert_int_equal(fold_str(ALLOWED, out), 0);
    assert_string_equal(out, ALLOWED);
    assert_int_equal(fold_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ", out), 0);
    assert_string_equal(out, "abcdefghijklmnopqrstuvwxyz");
}

static void test_every_byte_value(void **state)
{
    (void)state;
    int accepted = 0;
    for (int b = 0; b < 256; b++) {
        char in[3] = {'x', (char)b, 'y'}, out[VS_USERID_MAX + 1];
        int rc = vs_userid_fold(in, sizeof in, out);
        int upper = b >= 'A' && b <= 'Z';
        int allowed = b != 0 && strchr(ALLOWED, b) != NULL;
        if (upper || allowed) {
            assert_int_equal(rc, 0);
            assert_int_equal(out[1], upper ? b - 'A' + 'a' : b);
            accepted++;
        } else {
            assert_int_equal(rc, VS_EINVAL);
        }
    }
    assert_int_equal(accepted, 26 + (int)strlen(ALLOWED));
}

static void test_mixed_case(void **state)
{
    (void)state;
    char out[VS_USERID_MAX + 1];
    assert_int_equal(fold_str("Alice.Smith+Work@Example-Host_1.COM", out), 0);
    assert_string_equal(out, "alice.smith+work@example-host_1.com");
    /* Folding twice changes nothing. */
    char again[VS_USERID_MAX + 1];
    assert_int_equal(fold_str(out, again), 0);
    assert_string_equal(again, out);
}

static void test_non_ascii(void **state)
{
    (void)state;
    expect_invalid("caf\xc3\xa9", 5);       /* é */
    expect_invalid("\xc3\x89mile", 6);      /* É */
    expect_invalid("\xc4\xb1stanbul", 9);   /* Turkish dotless ı */
    expect_invalid("\xc4\xb0stanbul", 9);   /* Turkish dotted İ */
    expect_invalid("\342\204\252elvin", 8); /* Kelvin sign, which Unicode folds to 'k' */
    expect_invalid("\xef\xbc\xa1", 3);      /* fullwidth A */
    expect_invalid("\x80", 1);
    expect_invalid("\xff", 1);
}

static void test_nul_space_and_separators(void **state)
{
    (void)state;
    expect_invalid("ab\0cd", 5);
    expect_invalid("\0", 1);
    expect_invalid("abc\0", 4);
    expect_invalid(" alice", 6);
    expect_invalid("alice ", 6);
    expect_invalid("al ice", 6);
    expect_invalid("al\tice", 6);
    expect_invalid("al\nice", 6);
    expect_invalid("a/b", 3);
    expect_invalid("../etc", 6);
    expect_invalid("a:b", 3);
    expect_invalid("a\\b", 3);
    expect_invalid("a,b", 3);
    expect_invalid("\"a\"", 3);
}

static void test_length_not_nul(void **state)
{
    (void)state;
    /* Only len bytes are read; the rest need not be valid or terminated. */
    char out[VS_USERID_MAX + 1];
    assert_int_equal(vs_userid_fold("BoB!!!", 3, out), 0);
    assert_string_equal(out, "bob");
}

static void test_register_message(void **state)
{
    (void)state;
    char buf[64];
    const char expect[] = "volli-register\nn0nce-_x\nalice@example.com";
    int n = vs_register_message("n0nce-_x", "alice@example.com", buf, sizeof buf);
    assert_int_equal(n, (int)strlen(expect));
    assert_string_equal(buf, expect);

    /* Exactly enough room for the message and its NUL, then one byte short. */
    assert_int_equal(vs_register_message("n0nce-_x", "alice@example.com", buf, sizeof expect), n);
    assert_int_equal(vs_register_message("n0nce-_x", "alice@example.com", buf, sizeof expect - 1),
                     VS_ETOOBIG);
    assert_int_equal(vs_register_message("n", "a", buf, 0), VS_ETOOBIG);

    /* The message must be unambiguous: no newline in the nonce, only folded ids. */
    assert_int_equal(vs_register_message("a\nb", "alice", buf, sizeof buf), VS_EINVAL);
    assert_int_equal(vs_register_message("", "alice", buf, sizeof buf), VS_EINVAL);
    assert_int_equal(vs_register_message("nonce", "Alice", buf, sizeof buf), VS_EINVAL);
    assert_int_equal(vs_register_message("nonce", "", buf, sizeof buf), VS_EINVAL);
    assert_int_equal(vs_register_message("nonce", "al\nice", buf, sizeof buf), VS_EINVAL);
    assert_int_equal(vs_register_message("nonce", "al ice", buf, sizeof buf), VS_EINVAL);
    assert_int_equal(vs_register_message(NULL, "alice", buf, sizeof buf), VS_EINVAL);
    assert_int_equal(vs_register_message("nonce", NULL, buf, sizeof buf), VS_EINVAL);

    char longid[VS_USERID_MAX + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[VS_USERID_MAX + 1] = '\0';
    char big[512];
    assert_int_equal(vs_register_message("nonce", longid, big, sizeof big), VS_EINVAL);
    longid[VS_USERID_MAX] = '\0';
    assert_int_equal(vs_register_message("nonce", longid, big, sizeof big),
                     (int)(strlen("volli-register\nnonce\n") + VS_USERID_MAX));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_every_allowed_char),
        cmocka_unit_test(test_every_byte_value),
        cmocka_unit_test(test_mixed_case),
        cmocka_unit_test(test_non_ascii),
        cmocka_unit_test(test_nul_space_and_separators),
        cmocka_unit_test(test_length_not_nul),
        cmocka_unit_test(test_register_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
