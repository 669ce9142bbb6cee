/* Unit tests for crypto/token.c: JWTs crafted here byte by byte (base64url + HMAC from OpenSSL,
 * independent of libjwt), the key list, and a create/verify round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/base64.h"
#include "common/error.h"
#include "core/token_cli.h"
#include "crypto/token.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1700000000LL
#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static char tokbuf[8192];

static size_t b64url(const char *in, size_t n, char *out)
{
    return vs_base64url_encode((const uint8_t *)in, n, out);
}

/* header.payload.signature with HMAC-SHA(md) over the first two parts; secret NULL: no sig. */
static const char *craft_md(const char *header, const char *payload, const char *secret,
                            const EVP_MD *md)
{
    size_t n = b64url(header, strlen(header), tokbuf);
    tokbuf[n++] = '.';
    n += b64url(payload, strlen(payload), tokbuf + n);
    tokbuf[n] = '\0';
    if (secret) {
        unsigned char mac[64];
        unsigned int ml = 0;
        assert_non_null(HMAC(md, secret, (int)strlen(secret), (unsigned char *)tokbuf, n, mac, &ml));
        tokbuf[n++] = '.';
        n += vs_base64url_encode(mac, ml, tokbuf + n);
    } else {
        tokbuf[n++] = '.';
    }
    tokbuf[n] = '\0';
    return tokbuf;
}

static const char *craft(const char *payload, const char *secret)
{
    return craft_md(HS256, payload, secret, EVP_sha256());
}

static vs_token_keys_t keys;

static int setup(void **state)
{
    (void)state;
    memset(&keys, 0, sizeof keys);
    vs_token_keys_add(&keys, "k1", "secret-one");
    vs_token_keys_add(&keys, "k2", "secret-two");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vs_token_keys_deinit(&keys);
    return 0;
}

static vs_token_reason_t check_at(const char *tok, long long now, vs_token_claims_t *c)
{
    vs_token_reason_t why = VS_TOKEN_REASON_COUNT;
    int rc = vs_token_verify(&keys, tok, strlen(tok), now, c, &why);
    assert_int_equal(rc == 0, why == VS_TOKEN_OK);
    return why;
}

static vs_token_reason_t check(const char *tok)
{
    vs_token_claims_t c;
    vs_token_reason_t why = check_at(tok, NOW, &c);
    vs_token_claims_deinit(&c);
    return why;
}

static void test_valid_and_claims(void **state)
{
    (void)state;
    vs_token_claims_t c;
    const char *t = craft("{\"iss\":\"k2\",\"sub\":\"Alice\",\"exp\":1700000100,\"nbf\":1699999000,"
                          "\"video\":{\"roomJoin\":true,\"room\":\"Lobby-1\",\"hidden\":true},"
                          "\"pqPublicKey\":\"AAECAw==\",\"pqAlgorithm\":\"ML-KEM-768\","
                          "\"pqKeyExpiry\":1700000999000}",
                          "secret-two");
    assert_int_equal(check_at(t, NOW, &c), VS_TOKEN_OK);
    assert_string_equal(c.identity, "alice"); /* folded as user ids are */
    assert_int_equal(c.exp, 1700000100);
    assert_int_equal(c.nbf, 1699999000);
    assert_true(c.room_join);
    assert_true(c.hidden);
    assert_string_equal(c.room, "Lobby-1");
    assert_string_equal(c.pq_public_key, "AAECAw==");
    assert_string_equal(c.pq_algorithm, "ML-KEM-768");
    assert_int_equal(c.pq_key_expiry, 1700000999000LL);
    vs_token_claims_deinit(&c);

    /* No grants: nothing set. */
    t = craft("{\"iss\":\"k1\",\"sub\":\"bob\",\"exp\":1700000100}", "secret-one");
    assert_int_equal(check_at(t, NOW, &c), VS_TOKEN_OK);
    assert_false(c.room_join);
    assert_false(c.hidden);
    assert_string_equal(c.room, "");
    assert_null(c.pq_public_key);
    assert_null(c.pq_algorithm);
    vs_token_claims_deinit(&c);
}

static void test_expiry_and_nbf_leeway(void **state)
{
    (void)state;
    vs_token_claims_t c;
    const char *t = craft("{\"iss\":\"k1\",\"sub\":\"bob\",\"exp\":1700000000}", "secret-one");
    char copy[2048];
    strcpy(copy, t);
    assert_int_equal(check_at(copy, NOW, &c), VS_TOKEN_OK);
    vs_token_claims_deinit(&c);
    assert_int_equal(check_at(copy, NOW + 60, &c), VS_TOKEN_OK); /* within the leeway */
    vs_token_claims_deinit(&c);
    assert_int_equal(check_at(copy, NOW + 61, &c), VS_TOKEN_EXPIRED);
    assert_int_equal(check_at(copy, NOW + 86400, &c), VS_TOKEN_EXPIRED);
    assert_null(c.pq_public_key);

    t = craft("{\"iss\":\"k1\",\"sub\":\"bob\",\"exp\":1700009999,\"nbf\":1700000100}",
              "secret-one");
    strcpy(copy, t);
    assert_int_equal(check_at(copy, NOW, &c), VS_TOKEN_NOT_YET_VALID);
    assert_int_equal(check_at(copy, NOW + 39, &c), VS_TOKEN_NOT_YET_VALID);
    assert_int_equal(check_at(copy, NOW + 40, &c), VS_TOKEN_OK); /* 60 s early is fine */
    vs_token_claims_deinit(&c);
}

static void test_algorithms(void **state)
{
    (void)state;
    const char *body = "{\"iss\":\"k1\",\"sub\":\"bob\",\"exp\":1700000100}";
    /* alg none, unsigned: refused, and libjwt itself refuses none when given a key. */
    assert_int_equal(check(craft_md("{\"alg\":\"none\",\"typ\":\"JWT\"}", body, NULL, NULL)),
                     VS_TOKEN_BAD_SIGNATURE);
    /* alg none but carrying a valid HS256 signature: still refused. */
    assert_int_equal(check(craft_md("{\"alg\":\"none\"}", body, "secret-one", EVP_sha256())),
                     VS_TOKEN_BAD_SIGNATURE);
    /* HS512 correctly signed with the right secret: algorithm confusion, refused. */
    assert_int_equal(check(craft_md("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", body, "secret-one",
                                    EVP_sha512())),
                     VS_TOKEN_BAD_SIGNATURE);
    assert_int_equal(check(craft_md("{\"alg\":\"HS384\"}", body, "secret-one", EVP_sha384())),
                     VS_TOKEN_BAD_SIGNATURE);
    assert_int_equal(check(craft_md("{\"alg\":\"hs256\"}", body, "secret-one", EVP_sha256())),
                     VS_TOKEN_BAD_SIGNATURE);
    /* The same header and body with HS256 pass: the refusals above are about alg only. */
    assert_int_equal(check(craft_md("{\"alg\":\"HS256\"}", body, "secret-one", EVP_sha256())),
                     VS_TOKEN_OK);
}

static void test_signature_and_keys(void **state)
{
    (void)state;
    const char *body = "{\"iss\":\"k1\",\"sub\":\"bob\",\"exp\":1700000100}";
    assert_int_equal(check(craft(body, "secret-two")), VS_TOKEN_BAD_SIGNATURE); /* k2's secret */
    assert_int_equal(check(craft(body, "wrong")), VS_TOKEN_BAD_SIGNATURE);
    /* A flipped signature character. */
    char t[2048];
    strcpy(t, craft(body, "secret-one"));
    size_t n = strlen(t);
    t[n - 5] = t[n - 5] == 'A' ? 'B' : 'A';
    assert_int_equal(check(t), VS_TOKEN_BAD_SIGNATURE);
    /* Truncated or missing signature. */
    strcpy(t, craft(body, "secret-one"));
    t[strlen(t) - 1] = '\0';
    assert_int_equal(check(t), VS_TOKEN_BAD_SIGNATURE);
    assert_int_equal(check(craft(body, NULL)), VS_TOKEN_BAD_SIGNATURE);
    /* A payload changed after signing. */
    strcpy(t, craft(body, "secret-one"));
    char *sig = strrchr(t, '.');
    char other[2048];
    strcpy(other, craft("{\"iss\":\"k1\",\"sub\":\"eve\",\"exp\":1700000100}", "wrong"));
    strcpy(strrchr(other, '.'), sig);
    assert_int_equal(check(other), VS_TOKEN_BAD_SIGNATURE);

    assert_int_equal(check(craft("{\"iss\":\"k9\",\"sub\":\"bob\",\"exp\":1700000100}",
                                 "secret-one")),
                     VS_TOKEN_UNKNOWN_KEY);
    assert_int_equal(check(craft("{\"iss\":7,\"sub\":\"bob\",\"exp\":1700000100}", "secret-one")),
                     VS_TOKEN_UNKNOWN_KEY);
    assert_int_equal(check(craft("{\"sub\":\"bob\",\"exp\":1700000100}", "secret-one")),
                     VS_TOKEN_MISSING_CLAIM);

    /* No keys at all. */
    vs_token_keys_t none = {0};
    vs_token_claims_t c;
    vs_token_reason_t why;
    const char *tok = craft(body, "secret-one");
    assert_int_equal(vs_token_verify(&none, tok, strlen(tok), NOW, &c, &why), VS_EINVAL);
    assert_int_equal(why, VS_TOKEN_NO_KEYS);
    assert_string_equal(vs_token_reason_name(why), "no_keys_configured");
}

static void test_claims_required(void **state)
{
    (void)state;
    assert_int_equal(check(craft("{\"iss\":\"k1\",\"exp\":1700000100}", "secret-one")),
                     VS_TOKEN_MISSING_CLAIM);
    assert_int_equal(check(craft("{\"iss\":\"k1\",\"sub\":\"bob\"}", "secret-one")),
                     VS_TOKEN_MISSING_CLAIM);
    assert_int_equal(check(craft("{\"iss\":\"k1\",\"sub\":\"bad id\",\"exp\":1700000100}",
                                 "secret-one")),
                     VS_TOKEN_INVALID_IDENTITY);
    assert_int_equal(check(craft("{\"iss\":\"k1\",\"sub\":\"\",\"exp\":1700000100}",
                                 "secret-one")),
                     VS_TOKEN_INVALID_IDENTITY);
    assert_int_equal(check(craft("{\"iss\":\"k1\",\"sub\":42,\"exp\":1700000100}", "secret-one")),
                     VS_TOKEN_INVALID_IDENTITY);
    assert_int_equal(check(craft("{\"iss\":\"k1\",\"sub\":\"bob\",\"exp\":\"soon\"}",
                                 "secret-one")),
                     VS_TOKEN_MALFORMED);
    /* Grants of the wrong shape. */
    const char *bad[] = {
        "{\"iss\":\"k1\",\"sub\":\"b\",\"exp\":1700000100,\"video\":true}",
        "{\"iss\":\"k1\",\"sub\":\"b\",\"exp\":1700000100,\"video\":{\"roomJoin\":\"yes\"}}",
        "{\"iss\":\"k1\",\"sub\":\"b\",\"exp\":1700000100,\"video\":{\"room\":\"a b\"}}",
        "{\"iss\":\"k1\",\"sub\":\"b\",\"exp\":1700000100,\"video\":{\"hidden\":1}}",
        "{\"iss\":\"k1\",\"sub\":\"b\",\"exp\":1700000100,\"pqPublicKey\":\"not base64!\"}",
        "{\"iss\":\"k1\",\"sub\":\"b\",\"exp\":1700000100,\"pqPublicKey\":\"AAECAw\"}",
        "{\"iss\":\"k1\",\"sub\":\"b\",\"exp\":1700000100,\"pqPublicKey\":\"AAEC-_==\"}",
        "{\"iss\":\"k1\",\"sub\":\"b\",\"exp\":1700000100,\"pqAlgorithm\":3}",
        "{\"iss\":\"k1\",\"sub\":\"b\",\"exp\":1700000100,\"pqKeyExpiry\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(check(craft(bad[i], "secret-one")), VS_TOKEN_MALFORMED);
}

static void test_malformed(void **state)
{
    (void)state;
    const char *bad[] = {"", "abc", "a.b", "a.b.c.d", "!!!.???.***", "e30.e30", ".."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(check(bad[i]), VS_TOKEN_MALFORMED);
    /* Header or payload that is not a JSON object. */
    assert_int_equal(check(craft_md("[1]", "{\"iss\":\"k1\"}", "secret-one", EVP_sha256())),
                     VS_TOKEN_MALFORMED);
    vs_token_claims_t c;
    vs_token_reason_t why;
    assert_int_equal(vs_token_verify(&keys, "a.b\0c", 5, NOW, &c, &why), VS_EINVAL);
    assert_int_equal(why, VS_TOKEN_MALFORMED);
    static char huge[VS_TOKEN_MAX + 2];
    memset(huge, 'a', sizeof huge - 1);
    huge[10] = huge[20] = '.';
    assert_int_equal(check(huge), VS_TOKEN_MALFORMED);
}

static char *fake_env_vals[3];
static char *fake_env(const char *name)
{
    if (strcmp(name, "LIVEKIT_KEYS") == 0)
        return fake_env_vals[0];
    if (strcmp(name, "LIVEKIT_API_KEY") == 0)
        return fake_env_vals[1];
    if (strcmp(name, "LIVEKIT_API_SECRET") == 0)
        return fake_env_vals[2];
    return NULL;
}

static void test_key_loading(void **state)
{
    (void)state;
    vs_token_keys_t k;
    char err[256];
    fake_env_vals[0] = "a: sa, b :sb ,c:sc";
    fake_env_vals[1] = fake_env_vals[2] = NULL;
    assert_int_equal(vs_token_keys_load(&k, fake_env, 0, err, sizeof err), 0);
    assert_int_equal(k.n, 3);
    assert_string_equal(k.v[0].key, "a");
    assert_string_equal(k.v[0].secret, "sa");
    assert_string_equal(k.v[1].key, "b");
    assert_string_equal(k.v[1].secret, "sb");
    assert_string_equal(k.v[2].key, "c");
    assert_string_equal(k.v[2].secret, "sc");
    assert_false(k.dev);
    vs_token_keys_deinit(&k);

    fake_env_vals[0] = "a: topsecret,broken";
    assert_int_equal(vs_token_keys_load(&k, fake_env, 0, err, sizeof err), VS_EUSAGE);
    assert_null(strstr(err, "topsecret"));
    assert_non_null(strstr(err, "LIVEKIT_KEYS"));

    fake_env_vals[0] = NULL;
    fake_env_vals[1] = "key";
    fake_env_vals[2] = "sec";
    assert_int_equal(vs_token_keys_load(&k, fake_env, 1, err, sizeof err), 0);
    assert_int_equal(k.n, 2);
    assert_string_equal(k.v[0].key, "key");
    assert_string_equal(k.v[1].key, VS_TOKEN_DEV_KEY);
    assert_string_equal(k.v[1].secret, VS_TOKEN_DEV_SECRET);
    assert_true(k.dev);
    vs_token_keys_deinit(&k);

    fake_env_vals[2] = NULL;
    assert_int_equal(vs_token_keys_load(&k, fake_env, 0, err, sizeof err), VS_EUSAGE);
    fake_env_vals[1] = NULL;
    assert_int_equal(vs_token_keys_load(&k, fake_env, 0, err, sizeof err), 0);
    assert_int_equal(k.n, 0);
    vs_token_keys_deinit(&k);
}

static void test_create_round_trip(void **state)
{
    (void)state;
    vs_token_grant_t g = {.identity = "Carol",
                          .room = "room.7",
                          .pq_public_key = "AAECAw==",
                          .pq_algorithm = "ML-KEM-768",
                          .pq_key_expiry = 1700000500000LL};
    char *tok = NULL;
    assert_int_equal(vs_token_create(&keys.v[1], &g, NOW, 3600, &tok), 0);
    assert_non_null(tok);
    vs_token_claims_t c;
    assert_int_equal(check_at(tok, NOW + 10, &c), VS_TOKEN_OK);
    assert_string_equal(c.identity, "carol");
    assert_string_equal(c.room, "room.7");
    assert_true(c.room_join);
    assert_false(c.hidden);
    assert_int_equal(c.exp, NOW + 3600);
    assert_string_equal(c.pq_public_key, "AAECAw==");
    assert_int_equal(c.pq_key_expiry, 1700000500000LL);
    vs_token_claims_deinit(&c);
    assert_int_equal(check_at(tok, NOW + 3661, &c), VS_TOKEN_EXPIRED);
    free(tok);

    vs_token_grant_t bad = {.identity = "no spaces"};
    assert_int_equal(vs_token_create(&keys.v[0], &bad, NOW, 60, &tok), VS_EINVAL);
    assert_null(tok);
    vs_token_grant_t badroom = {.identity = "ok", .room = "a/b"};
    assert_int_equal(vs_token_create(&keys.v[0], &badroom, NOW, 60, &tok), VS_EINVAL);
}

static void test_durations(void **state)
{
    (void)state;
    long long s;
    assert_int_equal(vs_token_parse_duration("90", &s), 0);
    assert_int_equal(s, 90);
    assert_int_equal(vs_token_parse_duration("30s", &s), 0);
    assert_int_equal(s, 30);
    assert_int_equal(vs_token_parse_duration("15m", &s), 0);
    assert_int_equal(s, 900);
    assert_int_equal(vs_token_parse_duration("24h", &s), 0);
    assert_int_equal(s, 86400);
    assert_int_equal(vs_token_parse_duration("7d", &s), 0);
    assert_int_equal(s, 7 * 86400);
    const char *bad[] = {"", "0", "-5m", "5x", "5mm", "h", " 5", "99999999999d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(vs_token_parse_duration(bad[i], &s), VS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_and_claims),    cmocka_unit_test(test_expiry_and_nbf_leeway),
        cmocka_unit_test(test_algorithms),          cmocka_unit_test(test_signature_and_keys),
        cmocka_unit_test(test_claims_required),     cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_key_loading),         cmocka_unit_test(test_create_round_trip),
        cmocka_unit_test(test_durations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
