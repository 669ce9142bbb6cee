/* Tests for crypto/sign: RFC 8032 vectors, bit flips, malformed and weak keys (including
 * forgeries that plain OpenSSL verification accepts), and random round trips. */
#include "common/error.h"
#include "crypto/sign.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

/* RFC 8032 section 7.1, tests 1-3. */
static const struct {
    const char *priv, *pub, *msg, *sig;
} VECTORS[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

/* The group order L. */
static const char ORDER_HEX[] = "1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed";

/* Encodings of the small-order points (sign bit clear), independently of src/crypto/sign.c. */
static const char *const SMALL_ORDER_HEX[] = {
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
};

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

/* Plain OpenSSL verification, to show which inputs our extra checks are there for. */
static int openssl_accepts(const uint8_t pub[32], const uint8_t *msg, size_t len,
                           const uint8_t sig[64])
{
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    if (!pkey)
        return 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, 64, msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok;
}

static void test_rfc8032_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof VECTORS / sizeof VECTORS[0]; i++) {
        uint8_t priv[32], pub[32], msg[8], sig[64], mine[64];
        unhex(VECTORS[i].priv, priv);
        unhex(VECTORS[i].pub, pub);
        size_t len = unhex(VECTORS[i].msg, msg);
        unhex(VECTORS[i].sig, sig);

        assert_int_equal(vs_ed25519_verify(pub, msg, len, sig), 0);
        assert_int_equal(vs_ed25519_sign(priv, msg, len, mine), 0);
        assert_memory_equal(mine, sig, 64);
    }
    /* Test 1 has an empty message, which may be passed as NULL. */
    uint8_t pub[32], sig[64], priv[32], mine[64];
    unhex(VECTORS[0].pub, pub);
    unhex(VECTORS[0].sig, sig);
    unhex(VECTORS[0].priv, priv);
    assert_int_equal(vs_ed25519_verify(pub, NULL, 0, sig), 0);
    assert_int_equal(vs_ed25519_sign(priv, NULL, 0, mine), 0);
    assert_memory_equal(mine, sig, 64);
}

static void test_bit_flips_fail(void **state)
{
    (void)state;
    uint8_t pub[32], msg[8], sig[64];
    unhex(VECTORS[2].pub, pub);
    size_t len = unhex(VECTORS[2].msg, msg);
    unhex(VECTORS[2].sig, sig);

    for (size_t bit = 0; bit < len * 8; bit++) {
        msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(vs_ed25519_verify(pub, msg, len, sig), VS_ECRYPTO);
        msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (size_t bit = 0; bit < 64 * 8; bit++) {
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(vs_ed25519_verify(pub, msg, len, sig), VS_ECRYPTO);
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (size_t bit = 0; bit < 32 * 8; bit++) {
        pub[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(vs_ed25519_verify(pub, msg, len, sig), VS_ECRYPTO);
        pub[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* A shorter or longer message fails too. */
    assert_int_equal(vs_ed25519_verify(pub, msg, len - 1, sig), VS_ECRYPTO);
    msg[len] = 0;
    assert_int_equal(vs_ed25519_verify(pub, msg, len + 1, sig), VS_ECRYPTO);
    /* And the untouched inputs still verify: the loops restored every bit. */
    assert_int_equal(vs_ed25519_verify(pub, msg, len, sig), 0);
}

static void test_malformed_keys_fail(void **state)
{
    (void)state;
    uint8_t sig[64], msg[8], key[32];
    unhex(VECTORS[2].sig, sig);
    size_t len = unhex(VECTORS[2].msg, msg);

    /* y = 2 is not the y of any curve point. */
    memset(key, 0, sizeof key);
    key[0] = 2;
    assert_int_equal(vs_ed25519_verify(key, msg, len, sig), VS_ECRYPTO);
    /* y = p + 3, a non-canonical spelling of y = 3 (which is on the curve). */
    unhex("f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", key);
    assert_int_equal(vs_ed25519_verify(key, msg, len, sig), VS_ECRYPTO);
    key[31] |= 0x80;
    assert_int_equal(vs_ed25519_verify(key, msg, len, sig), VS_ECRYPTO);
    /* All ones. */
    memset(key, 0xff, sizeof key);
    assert_int_equal(vs_ed25519_verify(key, msg, len, sig), VS_ECRYPTO);
    /* NULL arguments are malformed, not a crash. */
    uint8_t pub[32];
    unhex(VECTORS[2].pub, pub);
    assert_int_equal(vs_ed25519_verify(NULL, msg, len, sig), VS_ECRYPTO);
    assert_int_equal(vs_ed25519_verify(pub, msg, len, NULL), VS_ECRYPTO);
    assert_int_equal(vs_ed25519_verify(pub, NULL, len, sig), VS_ECRYPTO);
}

/* With a small-order key A, R = identity and S = 0 satisfy [S]B = R + [k]A whenever k is a
 * multiple of A's order: a signature anyone can make, for about one message in eight. */
static void test_small_order_keys_refused(void **state)
{
    (void)state;
    uint8_t sig[64] = {0};
    sig[0] = 0x01; /* R = identity, S = 0 */
    int forgeries = 0;

    for (size_t i = 0; i < sizeof SMALL_ORDER_HEX / sizeof SMALL_ORDER_HEX[0]; i++) {
        for (int signbit = 0; signbit < 2; signbit++) {
            uint8_t key[32];
            unhex(SMALL_ORDER_HEX[i], key);
            key[31] |= (uint8_t)(signbit << 7);
            for (int m = 0; m < 64; m++) {
                char msg[32];
                int len = snprintf(msg, sizeof msg, "forged %d", m);
                forgeries += openssl_accepts(key, (const uint8_t *)msg, (size_t)len, sig);
                assert_int_equal(vs_ed25519_verify(key, (const uint8_t *)msg, (size_t)len, sig),
                                 VS_ECRYPTO);
            }
        }
    }
    print_message("plain OpenSSL accepted %d of the forgeries\n", forgeries);
}

/* A key owner can sign with R = identity (nonce r = 0): S = k * a mod L. Plain verification
 * accepts it; a small-order R is refused like libsodium does. */
static void test_small_order_r_refused(void **state)
{
    (void)state;
    uint8_t priv[32], pub[32], h[64], sig[64] = {0};
    const uint8_t msg[] = "volli-register\nnonce\nalice";
    unhex(VECTORS[0].priv, priv);
    unhex(VECTORS[0].pub, pub);

    SHA512(priv, 32, h);
    h[0] &= 248;
    h[31] &= 127;
    h[31] |= 64;
    sig[0] = 0x01;

    uint8_t kin[32 + 32 + sizeof msg], k[64];
    memcpy(kin, sig, 32);
    memcpy(kin + 32, pub, 32);
    memcpy(kin + 64, msg, sizeof msg);
    SHA512(kin, sizeof kin, k);

    BN_CTX *bctx = BN_CTX_new();
    BIGNUM *order = NULL, *a = BN_lebin2bn(h, 32, NULL), *kb = BN_lebin2bn(k, 64, NULL);
    BIGNUM *s = BN_new();
    assert_true(BN_hex2bn(&order, ORDER_HEX) > 0);
    assert_int_equal(BN_mod_mul(s, kb, a, order, bctx), 1);
    assert_int_equal(BN_bn2lebinpad(s, sig + 32, 32), 32);
    BN_free(s);
    BN_free(kb);
    BN_free(a);
    BN_free(order);
    BN_CTX_free(bctx);

    print_message("plain OpenSSL %s the r = 0 signature\n",
                  openssl_accepts(pub, msg, sizeof msg, sig) ? "accepts" : "refuses");
    assert_int_equal(vs_ed25519_verify(pub, msg, sizeof msg, sig), VS_ECRYPTO);
}

/* S + L verifies under the group law; RFC 8032 requires S < L (signature malleability). */
static void test_non_canonical_s_refused(void **state)
{
    (void)state;
    uint8_t pub[32], sig[64];
    unhex(VECTORS[0].pub, pub);
    unhex(VECTORS[0].sig, sig);

    BIGNUM *order = NULL, *s = BN_lebin2bn(sig + 32, 32, NULL);
    assert_true(BN_hex2bn(&order, ORDER_HEX) > 0);
    assert_int_equal(BN_add(s, s, order), 1);
    assert_int_equal(BN_bn2lebinpad(s, sig + 32, 32), 32);
    BN_free(s);
    BN_free(order);
    assert_int_equal(vs_ed25519_verify(pub, NULL, 0, sig), VS_ECRYPTO);
}

static void test_random_round_trips(void **state)
{
    (void)state;
    static uint8_t msg[1024];
    uint8_t pub[32], priv[32], pub2[32], priv2[32], sig[64], sig2[64];

    for (int iter = 0; iter < 100; iter++) {
        assert_int_equal(vs_ed25519_keygen(pub, priv), 0);
        assert_int_equal(vs_ed25519_keygen(pub2, priv2), 0);
        assert_memory_not_equal(pub, pub2, 32);
        uint8_t lenb[2];
        assert_int_equal(vs_random_bytes(lenb, sizeof lenb), 0);
        size_t len = (size_t)(lenb[0] | lenb[1] << 8) % sizeof msg;
        assert_int_equal(vs_random_bytes(msg, len), 0);

        assert_int_equal(vs_ed25519_sign(priv, msg, len, sig), 0);
        assert_int_equal(vs_ed25519_verify(pub, msg, len, sig), 0);
        /* Deterministic (RFC 8032): signing again gives the same bytes. */
        assert_int_equal(vs_ed25519_sign(priv, msg, len, sig2), 0);
        assert_memory_equal(sig, sig2, 64);
        /* Someone else's key, or a changed message, does not verify. */
        assert_int_equal(vs_ed25519_verify(pub2, msg, len, sig), VS_ECRYPTO);
        msg[len] ^= 1;
        assert_int_equal(vs_ed25519_verify(pub, msg, len + 1, sig), VS_ECRYPTO);
        if (len > 0) {
            msg[len / 2] ^= 0x10;
            assert_int_equal(vs_ed25519_verify(pub, msg, len, sig), VS_ECRYPTO);
        }
    }
}

static void test_random_bytes(void **state)
{
    (void)state;
    uint8_t a[64], b[64], zero[64] = {0};
    assert_int_equal(vs_random_bytes(a, 0), 0);
    assert_int_equal(vs_random_bytes(a, sizeof a), 0);
    assert_int_equal(vs_random_bytes(b, sizeof b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    assert_memory_not_equal(a, zero, sizeof a);

    size_t big = 1 << 20;
    uint8_t *buf = calloc(1, big);
    assert_non_null(buf);
    assert_int_equal(vs_random_bytes(buf, big), 0);
    /* Every 64-byte block was filled (a zero block has probability 2^-512). */
    for (size_t off = 0; off < big; off += 64)
        assert_memory_not_equal(buf + off, zero, 64);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8032_vectors),
        cmocka_unit_test(test_bit_flips_fail),
        cmocka_unit_test(test_malformed_keys_fail),
        cmocka_unit_test(test_small_order_keys_refused),
        cmocka_unit_test(test_small_order_r_refused),
        cmocka_unit_test(test_non_canonical_s_refused),
        cmocka_unit_test(test_random_round_trips),
        cmocka_unit_test(test_random_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
