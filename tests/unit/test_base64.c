/* Tests for common/base64: RFC 4648 vectors, every strictness rule, round trips, and a
 * cross-check against OpenSSL's decoder. */
#include "common/base64.h"
#include "common/error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

static const char STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* RFC 4648 section 10. */
static const struct {
    const char *plain, *std, *url;
} RFC_VECTORS[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static long decode_str(const char *s, uint8_t *out, size_t cap)
{
    return vs_base64_decode(s, strlen(s), out, cap);
}

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof RFC_VECTORS / sizeof RFC_VECTORS[0]; i++) {
        const char *plain = RFC_VECTORS[i].plain;
        size_t n = strlen(plain);
        char enc[16];
        uint8_t dec[16];

        memset(enc, 'X', sizeof enc);
        assert_int_equal(vs_base64_encode((const uint8_t *)plain, n, enc),
                         strlen(RFC_VECTORS[i].std));
        assert_string_equal(enc, RFC_VECTORS[i].std);
        assert_int_equal(vs_base64_encoded_len(n), strlen(RFC_VECTORS[i].std));

        memset(enc, 'X', sizeof enc);
        assert_int_equal(vs_base64url_encode((const uint8_t *)plain, n, enc),
                         strlen(RFC_VECTORS[i].url));
        assert_string_equal(enc, RFC_VECTORS[i].url);
        assert_int_equal(vs_base64url_encoded_len(n), strlen(RFC_VECTORS[i].url));

        assert_int_equal(decode_str(RFC_VECTORS[i].std, dec, sizeof dec), (long)n);
        assert_memory_equal(dec, plain, n);
    }
}

static void test_url_alphabet(void **state)
{
    (void)state;
    /* 0xfb 0xff 0xbf encodes to the last two symbols of each alphabet. */
    const uint8_t in[] = {0xfb, 0xff, 0xbf, 0xfb};
    char std[16], url[16];
    vs_base64_encode(in, sizeof in, std);
    vs_base64url_encode(in, sizeof in, url);
    assert_string_equal(std, "+/+/+w==");
    assert_string_equal(url, "-_-_-w");
}

static void test_encoded_len_formulas(void **state)
{
    (void)state;
    for (size_t n = 0; n < 64; n++) {
        assert_int_equal(vs_base64_encoded_len(n), (n + 2) / 3 * 4);
        assert_int_equal(vs_base64url_encoded_len(n), (n * 8 + 5) / 6);
        assert_true(vs_base64_decoded_max(vs_base64_encoded_len(n)) >= n);
    }
    /* Must not overflow where a naive (n + 2) / 3 * 4 would wrap. */
    assert_int_equal(vs_base64_encoded_len(SIZE_MAX / 4 * 3), SIZE_MAX / 4 * 4);
}

static void expect_invalid(const char *s, size_t len)
{
    uint8_t out[64];
    long rc = vs_base64_decode(s, len, out, sizeof out);
    if (rc != VS_EINVAL)
        fail_msg("accepted \"%.*s\" (len %zu): %ld", (int)len, s, len, rc);
}

static void test_rejects_bad_length_and_padding(void **state)
{
    (void)state;
    const char *bad[] = {
        /* not a multiple of 4 */
        "Z",
        "Zg",
        "Zg=",
        "Zm9",
        "Zm9vY",
        "Zm9vYg=",
        /* extra or inner padding */
        "Zg===",
        "Zm9v=",
        "Zm9v====",
        "Zg==Zg==",
        "Zm8=Zm9v",
        /* misplaced padding */
        "====",
        "Z===",
        "=Zg=",
        "Zg=a",
        "Z=g=",
        "=AAA",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_invalid(bad[i], strlen(bad[i]));
}

static void test_rejects_nonzero_trailing_bits(void **state)
{
    (void)state;
    expect_invalid("Zh==", 4); /* 'h' leaves 0001 in the discarded bits */
    expect_invalid("Zm9=", 4); /* '9' leaves 01 */

    /* Exhaustively: with "==" only symbols whose low 4 bits are 0 may come second, with "="
     * only those whose low 2 bits are 0 may come third. */
    int accepted2 = 0, accepted1 = 0;
    for (int v = 0; v < 64; v++) {
        char two[5] = {'A', STD[v], '=', '=', 0}, one[5] = {'A', 'A', STD[v], '=', 0};
        uint8_t out[3];
        long r2 = decode_str(two, out, sizeof out), r1 = decode_str(one, out, sizeof out);
        assert_int_equal(r2, (v & 0x0f) == 0 ? 1 : VS_EINVAL);
        assert_int_equal(r1, (v & 0x03) == 0 ? 2 : VS_EINVAL);
        accepted2 += r2 == 1;
        accepted1 += r1 == 2;
    }
    assert_int_equal(accepted2, 4);
    assert_int_equal(accepted1, 16);
}

static void test_rejects_other_bytes(void **state)
{
    (void)state;
    expect_invalid("Zm9v\n", 5);
    expect_invalid("Zm9v\nYmFy", 9);
    expect_invalid("Zm 9", 4);
    expect_invalid(" Zm9vYmFy  ", 12);
    expect_invalid("Zm9\t", 4);
    expect_invalid("Zm9v\r\nYm", 8);
    expect_invalid("-_-_", 4); /* URL alphabet */
    expect_invalid("Zm\0v", 4);
    expect_invalid("Zm9\xff", 4);
    expect_invalid("Zm9v\xc3\xa9==", 8);

    /* Every byte value in every position of a full quad: exactly the 64 symbols pass. */
    for (int pos = 0; pos < 4; pos++) {
        int accepted = 0;
        for (int b = 0; b < 256; b++) {
            char q[4] = {'Q', 'U', 'J', 'D'}; /* "ABC" */
            q[pos] = (char)b;
            uint8_t out[3];
            long rc = vs_base64_decode(q, 4, out, sizeof out);
            int in_alphabet = b != 0 && strchr(STD, b) != NULL;
            assert_int_equal(rc, in_alphabet ? 3 : VS_EINVAL);
            accepted += rc == 3;
        }
        assert_int_equal(accepted, 64);
    }
}

static void test_empty_and_null(void **state)
{
    (void)state;
    uint8_t out[1];
    char enc[1];
    assert_int_equal(vs_base64_decode(NULL, 0, out, 0), 0);
    assert_int_equal(vs_base64_encode(NULL, 0, enc), 0);
    assert_string_equal(enc, "");
    assert_int_equal(vs_base64url_encode(NULL, 0, enc), 0);
    assert_string_equal(enc, "");
}

static void test_capacity(void **state)
{
    (void)state;
    uint8_t out[8];

    memset(out, 0xaa, sizeof out);
    assert_int_equal(decode_str("Zm9vYmFy", out, 5), VS_ETOOBIG);
    /* Nothing written past cap. */
    for (size_t i = 5; i < sizeof out; i++)
        assert_int_equal(out[i], 0xaa);
    assert_int_equal(decode_str("Zm9vYmE=", out, 4), VS_ETOOBIG);
    assert_int_equal(decode_str("Zm9vYmE=", out, 5), 5);
    assert_memory_equal(out, "fooba", 5);
    assert_int_equal(decode_str("Zm9vYmFy", out, 6), 6);
    assert_int_equal(decode_str("Zg==", NULL, 0), VS_ETOOBIG);
    /* Invalid input wins over a small buffer, so callers can tell the two apart. */
    assert_int_equal(decode_str("Zm9vYm F", out, 2), VS_EINVAL);
    assert_int_equal(decode_str("Zh==", out, 0), VS_EINVAL);
}

/* OpenSSL's decoder is lenient (whitespace, no trailing-bit check) but must agree with ours on
 * everything we accept. It returns whole triples, padding bytes included. */
static void check_against_openssl(const char *enc, size_t enclen, const uint8_t *expect, size_t n)
{
    uint8_t ours[512], theirs[512];
    assert_int_equal(vs_base64_decode(enc, enclen, ours, sizeof ours), (long)n);
    assert_memory_equal(ours, expect, n);
    int got = EVP_DecodeBlock(theirs, (const unsigned char *)enc, (int)enclen);
    assert_int_equal(got, (int)(enclen / 4 * 3));
    assert_memory_equal(theirs, expect, n);

    char their_enc[700];
    assert_int_equal(EVP_EncodeBlock((unsigned char *)their_enc, expect, (int)n), (int)enclen);
    assert_memory_equal(their_enc, enc, enclen);
}

static void test_random_round_trips(void **state)
{
    (void)state;
    for (int iter = 0; iter < 2000; iter++) {
        size_t n = (size_t)(rng() % 300);
        uint8_t data[300], back[300];
        char std[405], url[405], conv[405];
        for (size_t i = 0; i < n; i++)
            data[i] = (uint8_t)rng();

        size_t elen = vs_base64_encode(data, n, std);
        assert_int_equal(elen, vs_base64_encoded_len(n));
        assert_int_equal(strlen(std), elen);
        assert_int_equal(vs_base64_decode(std, elen, back, n), (long)n);
        assert_memory_equal(back, data, n);
        if (n > 0)
            check_against_openssl(std, elen, data, n);

        size_t ulen = vs_base64url_encode(data, n, url);
        assert_int_equal(ulen, vs_base64url_encoded_len(n));
        assert_int_equal(strlen(url), ulen);
        assert_null(strpbrk(url, "+/="));
        /* The URL form is the standard form with two symbols swapped and the padding cut. */
        memcpy(conv, url, ulen + 1);
        for (size_t i = 0; i < ulen; i++)
            conv[i] = conv[i] == '-' ? '+' : conv[i] == '_' ? '/' : conv[i];
        assert_memory_equal(conv, std, ulen);
        for (size_t i = ulen; i < elen; i++)
            assert_int_equal(std[i], '=');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_url_alphabet),
        cmocka_unit_test(test_encoded_len_formulas),
        cmocka_unit_test(test_rejects_bad_length_and_padding),
        cmocka_unit_test(test_rejects_nonzero_trailing_bits),
        cmocka_unit_test(test_rejects_other_bytes),
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_random_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
