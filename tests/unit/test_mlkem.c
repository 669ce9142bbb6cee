/* Tests for crypto/mlkem (ML-KEM-768, FIPS 203): fixed vectors from @noble/post-quantum 0.7.1
 * (an independent implementation; tests/kat/ runs the same comparison for hundreds of random
 * seeds), random round trips, the section 7.2 modulus check, the 7.3 hash check, implicit
 * rejection against J(z || c') computed here with OpenSSL, and argument/length refusals. */
#include "common/error.h"
#include "crypto/mlkem.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#define EK_LEN VS_MLKEM768_EK_LEN
#define DK_LEN VS_MLKEM768_DK_LEN
#define CT_LEN VS_MLKEM768_CT_LEN
#define Q 3329

/* Generated once with ml_kem768.keygen(seed) / encapsulate(ek, msg) / decapsulate(ct', dk) of
 * @noble/post-quantum 0.7.1 (ct' = ct with bit 0 of byte `flip` inverted). ek, dk and ct are
 * given as SHA3-256 digests (and their first 16 bytes) to keep the file short; ss and ss_bad in
 * full. Vector 2 uses seed[i] = i and msg[i] = 0x40 + i. */
static const struct {
    const char *seed, *msg, *ek_sha3, *dk_sha3, *ct_sha3, *ss, *ss_bad, *ek_head, *ct_head;
    size_t flip;
} VECTORS[] = {
    {"00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "000000000000000000000000000000000000000",
     "0000000000000000000000000000000000000000000000000000000000000000",
     "07f81a8b0e266a3ee92d3a63cdae5cff921905544c9dd797a849e1d054180eca",
     "b476cca5af51be72dd16e096491931b4c7c2236772d3a091d6cff0287e83c70b",
     "458a9896b26a4cba613b45288e09d89f688d69f181d4f11e3c486057fb3066ac",
     "b4d29cd55bab43e16554b74b9098cdfce583996c968bcd2cfd1ad9455e351fbf",
     "48bd302115c9ec6fbf24885b7e3d1bbbd2c8f57072d1f0e2479828451742fd55",
     "254a797885c63b1440aa389c65340ef3", "1708d1877e99d8910d48df9625973d79", 0},
    {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2"
     "c2d2e2f303132333435363738393a3b3c3d3e3f",
     "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f",
     "a24e16d8f8f9383a95b77050f4d9fd2f5733eec1d63ef3c23ebf9918173669a7",
     "1149f17c3c4ac6ab1e3e2d9d8bd0171355ac0fa31bb8855c48ceade874c0864b",
     "b4cfbd24cef67afd3764276c6980e0f88f8e9ca57f59b7f12fe1a9c1e72f4710",
     "9cddd089ffe70e3996e76f7c8d06746df34d07e8657bc0fcf2bb0e1c3084aea1",
     "1f39ae51991196b33dbc7c6031f9f35fd3347d577ebb4dea93028bcd9ab5dabe",
     "298aa10d423c8dda069d02bc59e6cdf0", "695a60d9c79f08343ed9ff5802582063", 1087},
    {"0b30557a9fc4e90e33587da2c7ec11365b80a5caef14395e83a8cdf2173c6186abd0f51a3f6489aed3f81d426"
     "78cb1d6fb20456a8fb4d9fe23486d92b7dc0126",
     "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1e0",
     "de4b2307557d9a657bd65dfd7bcf40652617ce3ff4a90cd6c519059afdabce59",
     "90d8c5cb39d7ec39a9723d737aa10cee20218ceb40e869a5140634debfd934b6",
     "c69fd7b75191164697ef2440badd01ea3ec52f7b3726f922d50ee0dd3ad3d4e5",
     "c146a633d52bab3aae9f5bba934e2d6fa4fd2d369648fe2b5e40fa3cd0a778dc",
     "1f1a9c2ab672edd254180e7f0d9c18e7b250c1c4394b5611e1748e1032971742",
     "a6d510ace07bbc1a0c3435c0b11221ab", "b8cd4fbccb41a9aaa5e8ab380d5e0b23", 500},
};

static void unhex(const char *hex, uint8_t *out, size_t len)
{
    assert_int_equal(strlen(hex), 2 * len);
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void assert_hex_equal(const uint8_t *got, const char *hex, size_t len)
{
    uint8_t want[64];
    assert_true(len <= sizeof want);
    unhex(hex, want, len);
    assert_memory_equal(got, want, len);
}

static void digest(const EVP_MD *md, uint8_t *out, size_t out_len, const uint8_t *a, size_t a_len,
                   const uint8_t *b, size_t b_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestInit_ex(ctx, md, NULL), 1);
    assert_int_equal(EVP_DigestUpdate(ctx, a, a_len), 1);
    if (b)
        assert_int_equal(EVP_DigestUpdate(ctx, b, b_len), 1);
    if (EVP_MD_get_flags(md) & EVP_MD_FLAG_XOF) {
        assert_int_equal(EVP_DigestFinalXOF(ctx, out, out_len), 1);
    } else {
        unsigned n = 0;
        assert_int_equal(EVP_DigestFinal_ex(ctx, out, &n), 1);
        assert_int_equal(n, out_len);
    }
    EVP_MD_CTX_free(ctx);
}

/* J(z || c) = SHAKE256(z || c, 32), z being the last 32 bytes of dk. */
static void j_reject(uint8_t out[32], const uint8_t dk[DK_LEN], const uint8_t ct[CT_LEN])
{
    digest(EVP_shake256(), out, 32, dk + DK_LEN - 32, 32, ct, CT_LEN);
}

static void random_bytes(uint8_t *buf, size_t len)
{
    static uint64_t state = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < len; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        buf[i] = (uint8_t)state;
    }
}

/* Writes the 12-bit value v into coefficient `index` (0..767) of ek's t-hat. */
static void set_coefficient(uint8_t *ek, size_t index, unsigned v)
{
    uint8_t *p = ek + 3 * (index / 2);
    if (index % 2 == 0) {
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)((p[1] & 0xf0) | (v >> 8));
    } else {
        p[1] = (uint8_t)((p[1] & 0x0f) | ((v & 0x0f) << 4));
        p[2] = (uint8_t)(v >> 4);
    }
}

static void test_noble_vectors(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof VECTORS / sizeof VECTORS[0]; v++) {
        uint8_t seed[64], msg[32], ek[EK_LEN], dk[DK_LEN], ct[CT_LEN], ss[32], ss2[32], h[32];
        unhex(VECTORS[v].seed, seed, sizeof seed);
        unhex(VECTORS[v].msg, msg, sizeof msg);
        assert_int_equal(vs_mlkem768_keygen_derand(ek, dk, seed, seed + 32), 0);
        assert_hex_equal(ek, VECTORS[v].ek_head, 16);
        digest(EVP_sha3_256(), h, 32, ek, EK_LEN, NULL, 0);
        assert_hex_equal(h, VECTORS[v].ek_sha3, 32);
        digest(EVP_sha3_256(), h, 32, dk, DK_LEN, NULL, 0);
        assert_hex_equal(h, VECTORS[v].dk_sha3, 32);

        assert_int_equal(vs_mlkem768_encaps_derand(ct, ss, ek, msg), 0);
        assert_hex_equal(ct, VECTORS[v].ct_head, 16);
        digest(EVP_sha3_256(), h, 32, ct, CT_LEN, NULL, 0);
        assert_hex_equal(h, VECTORS[v].ct_sha3, 32);
        assert_hex_equal(ss, VECTORS[v].ss, 32);

        assert_int_equal(vs_mlkem768_decaps(ss2, ct, dk), 0);
        assert_memory_equal(ss2, ss, 32);
        ct[VECTORS[v].flip] ^= 1;
        assert_int_equal(vs_mlkem768_decaps(ss2, ct, dk), 0);
        assert_hex_equal(ss2, VECTORS[v].ss_bad, 32);
    }
}

/* FIPS 203 Algorithm 16: dk = dk_pke || ek || H(ek) || z, and only d decides ek. */
static void test_key_layout(void **state)
{
    (void)state;
    uint8_t seed[64], ek[EK_LEN], dk[DK_LEN], ek2[EK_LEN], dk2[DK_LEN], h[32];
    random_bytes(seed, sizeof seed);
    assert_int_equal(vs_mlkem768_keygen_derand(ek, dk, seed, seed + 32), 0);
    assert_memory_equal(dk + 1152, ek, EK_LEN);
    digest(EVP_sha3_256(), h, 32, ek, EK_LEN, NULL, 0);
    assert_memory_equal(dk + 1152 + EK_LEN, h, 32);
    assert_memory_equal(dk + DK_LEN - 32, seed + 32, 32);

    seed[40] ^= 0x80; /* a different z: same ek and dk_pke, different dk tail */
    assert_int_equal(vs_mlkem768_keygen_derand(ek2, dk2, seed, seed + 32), 0);
    assert_memory_equal(ek2, ek, EK_LEN);
    assert_memory_equal(dk2, dk, DK_LEN - 32);
    assert_memory_not_equal(dk2 + DK_LEN - 32, dk + DK_LEN - 32, 32);

    seed[3] ^= 1; /* a different d: a different key */
    assert_int_equal(vs_mlkem768_keygen_derand(ek2, dk2, seed, seed + 32), 0);
    assert_memory_not_equal(ek2, ek, EK_LEN);
}

static void test_round_trips(void **state)
{
    (void)state;
    static uint8_t ek[EK_LEN], dk[DK_LEN], ct[CT_LEN], ct2[CT_LEN], prev_ek[EK_LEN];
    uint8_t ss[32], ss2[32], ss3[32];
    for (int i = 0; i < 100; i++) {
        assert_int_equal(vs_mlkem768_keygen(ek, dk), 0);
        if (i > 0)
            assert_memory_not_equal(ek, prev_ek, EK_LEN);
        memcpy(prev_ek, ek, EK_LEN);

        assert_int_equal(vs_mlkem768_encaps(ct, ss, ek), 0);
        assert_int_equal(vs_mlkem768_decaps(ss2, ct, dk), 0);
        assert_memory_equal(ss, ss2, 32);

        /* A second encapsulation to the same key is fresh. */
        assert_int_equal(vs_mlkem768_encaps_checked(ct2, ss3, ek, EK_LEN), 0);
        assert_memory_not_equal(ct2, ct, CT_LEN);
        assert_memory_not_equal(ss3, ss, 32);
        assert_int_equal(vs_mlkem768_decaps_checked(ss2, ct2, CT_LEN, dk, DK_LEN), 0);
        assert_memory_equal(ss3, ss2, 32);
    }
}

static void test_modulus_check(void **state)
{
    (void)state;
    uint8_t seed[64], msg[32], ek[EK_LEN], bad[EK_LEN], dk[DK_LEN], ct[CT_LEN], ss[32];
    random_bytes(seed, sizeof seed);
    random_bytes(msg, sizeof msg);
    assert_int_equal(vs_mlkem768_keygen_derand(ek, dk, seed, seed + 32), 0);
    static const size_t positions[] = {0, 1, 255, 256, 511, 512, 766, 767};
    static const unsigned values[] = {Q, Q + 1, 4095};
    for (size_t p = 0; p < sizeof positions / sizeof positions[0]; p++) {
        /* q - 1 is the largest legal coefficient: accepted. */
        memcpy(bad, ek, EK_LEN);
        set_coefficient(bad, positions[p], Q - 1);
        assert_int_equal(vs_mlkem768_encaps_derand(ct, ss, bad, msg), 0);
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
            memcpy(bad, ek, EK_LEN);
            set_coefficient(bad, positions[p], values[v]);
            memset(ss, 0xaa, sizeof ss);
            assert_int_equal(vs_mlkem768_encaps_derand(ct, ss, bad, msg), VS_EINVAL);
            assert_int_equal(vs_mlkem768_encaps(ct, ss, bad), VS_EINVAL);
            assert_int_equal(vs_mlkem768_encaps_checked(ct, ss, bad, EK_LEN), VS_EINVAL);
            static const uint8_t zero[32];
            assert_memory_equal(ss, zero, 32); /* no partial secret left behind */
        }
    }
    /* rho (the last 32 bytes) is not range-checked: any value is legal. */
    memcpy(bad, ek, EK_LEN);
    memset(bad + EK_LEN - 32, 0xff, 32);
    assert_int_equal(vs_mlkem768_encaps_derand(ct, ss, bad, msg), 0);
}

static void test_hash_check(void **state)
{
    (void)state;
    uint8_t ek[EK_LEN], dk[DK_LEN], bad[DK_LEN], ct[CT_LEN], ss[32], ss2[32];
    assert_int_equal(vs_mlkem768_keygen(ek, dk), 0);
    assert_int_equal(vs_mlkem768_encaps(ct, ss, ek), 0);
    /* Bytes 1152 .. 2367 are ek || H(ek): any change there fails the check. */
    static const size_t inside[] = {1152, 1500, 1152 + EK_LEN - 1, 1152 + EK_LEN, 2367};
    for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++) {
        memcpy(bad, dk, DK_LEN);
        bad[inside[i]] ^= 0x10;
        assert_int_equal(vs_mlkem768_decaps(ss2, ct, bad), VS_EINVAL);
        assert_int_equal(vs_mlkem768_decaps_checked(ss2, ct, CT_LEN, bad, DK_LEN), VS_EINVAL);
    }
    /* The check covers exactly that range: a changed z only changes the rejection secret. */
    memcpy(bad, dk, DK_LEN);
    bad[DK_LEN - 1] ^= 0x10;
    assert_int_equal(vs_mlkem768_decaps(ss2, ct, bad), 0);
    assert_memory_equal(ss2, ss, 32);
}

static void test_implicit_rejection(void **state)
{
    (void)state;
    uint8_t ek[EK_LEN], dk[DK_LEN], ct[CT_LEN], bad[CT_LEN], ss[32], ss2[32], ss3[32], j[32];
    uint8_t prev[32] = {0};
    assert_int_equal(vs_mlkem768_keygen(ek, dk), 0);
    assert_int_equal(vs_mlkem768_encaps(ct, ss, ek), 0);
    /* Flips in the u part, the v part, the first and last byte. */
    static const size_t at[] = {0, 1, 959, 960, 1000, CT_LEN - 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        memcpy(bad, ct, CT_LEN);
        bad[at[i]] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(vs_mlkem768_decaps(ss2, bad, dk), 0);
        assert_memory_not_equal(ss2, ss, 32);
        j_reject(j, dk, bad);
        assert_memory_equal(ss2, j, 32);
        assert_memory_not_equal(ss2, prev, 32);
        memcpy(prev, ss2, 32);
        /* Deterministic: the same bad ciphertext gives the same secret. */
        assert_int_equal(vs_mlkem768_decaps(ss3, bad, dk), 0);
        assert_memory_equal(ss3, ss2, 32);
    }
    /* A ciphertext for another key is rejected the same way. */
    uint8_t ek2[EK_LEN], dk2[DK_LEN];
    assert_int_equal(vs_mlkem768_keygen(ek2, dk2), 0);
    assert_int_equal(vs_mlkem768_decaps(ss2, ct, dk2), 0);
    j_reject(j, dk2, ct);
    assert_memory_equal(ss2, j, 32);
    assert_memory_not_equal(ss2, ss, 32);
}

static void test_lengths_and_nulls(void **state)
{
    (void)state;
    uint8_t ek[EK_LEN + 1], dk[DK_LEN + 1], ct[CT_LEN + 1], ss[32], ss2[32];
    uint8_t seed[64] = {1};
    assert_int_equal(vs_mlkem768_keygen(ek, dk), 0);
    static const size_t ek_bad[] = {0, 1, EK_LEN - 1, EK_LEN + 1, CT_LEN, DK_LEN, SIZE_MAX};
    for (size_t i = 0; i < sizeof ek_bad / sizeof ek_bad[0]; i++)
        assert_int_equal(vs_mlkem768_encaps_checked(ct, ss, ek, ek_bad[i]), VS_EINVAL);
    assert_int_equal(vs_mlkem768_encaps_checked(ct, ss, NULL, EK_LEN), VS_EINVAL);
    assert_int_equal(vs_mlkem768_encaps_checked(ct, ss, ek, EK_LEN), 0);

    static const size_t ct_bad[] = {0, CT_LEN - 1, CT_LEN + 1, EK_LEN, SIZE_MAX};
    static const size_t dk_bad[] = {0, DK_LEN - 1, DK_LEN + 1, DK_LEN - 32, SIZE_MAX};
    for (size_t i = 0; i < sizeof ct_bad / sizeof ct_bad[0]; i++) {
        assert_int_equal(vs_mlkem768_decaps_checked(ss2, ct, ct_bad[i], dk, DK_LEN), VS_EINVAL);
        assert_int_equal(vs_mlkem768_decaps_checked(ss2, ct, CT_LEN, dk, dk_bad[i]), VS_EINVAL);
    }
    assert_int_equal(vs_mlkem768_decaps_checked(ss2, NULL, CT_LEN, dk, DK_LEN), VS_EINVAL);
    assert_int_equal(vs_mlkem768_decaps_checked(ss2, ct, CT_LEN, NULL, DK_LEN), VS_EINVAL);
    assert_int_equal(vs_mlkem768_decaps_checked(ss2, ct, CT_LEN, dk, DK_LEN), 0);
    assert_memory_equal(ss2, ss, 32);

    assert_int_equal(vs_mlkem768_keygen_derand(NULL, dk, seed, seed + 32), VS_EINVAL);
    assert_int_equal(vs_mlkem768_keygen_derand(ek, dk, NULL, seed + 32), VS_EINVAL);
    assert_int_equal(vs_mlkem768_keygen(ek, NULL), VS_EINVAL);
    assert_int_equal(vs_mlkem768_encaps_derand(ct, ss, ek, NULL), VS_EINVAL);
    assert_int_equal(vs_mlkem768_encaps(NULL, ss, ek), VS_EINVAL);
    assert_int_equal(vs_mlkem768_decaps(NULL, ct, dk), VS_EINVAL);
    assert_int_equal(vs_mlkem768_decaps(ss2, ct, NULL), VS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noble_vectors),     cmocka_unit_test(test_key_layout),
        cmocka_unit_test(test_round_trips),       cmocka_unit_test(test_modulus_check),
        cmocka_unit_test(test_hash_check),        cmocka_unit_test(test_implicit_rejection),
        cmocka_unit_test(test_lengths_and_nulls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
