#include "crypto/sign.h"

#include "common/error.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* Encodings of the eight points of order 1, 2, 4 or 8, sign bit cleared, including the
 * non-canonical spellings p, p+1 of 0 and 1 (the list libsodium uses). Checked against the curve
 * equation and [8]P = O when written down; see tests/unit/test_sign.c for forgeries they stop. */
static const uint8_t SMALL_ORDER[][32] = {
    /* 0 (order 4) */
    {0},
    /* 1 (order 1, the identity) */
    {0x01},
    /* order 8 */
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
     0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
     0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    /* order 8 */
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
     0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
     0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
    /* p - 1 (order 2) */
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    /* p, a non-canonical 0 (order 4) */
    {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    /* p + 1, a non-canonical 1 (order 1) */
    {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
};

static int has_small_order(const uint8_t s[32])
{
    for (size_t j = 0; j < sizeof SMALL_ORDER / sizeof SMALL_ORDER[0]; j++) {
        uint8_t diff = (uint8_t)((s[31] & 0x7f) ^ SMALL_ORDER[j][31]);
        for (size_t i = 0; i < 31; i++)
            diff |= (uint8_t)(s[i] ^ SMALL_ORDER[j][i]);
        if (diff == 0)
            return 1;
    }
    return 0;
}

/* A point encoding is canonical when its y (the low 255 bits) is below p = 2^255 - 19. The
 * x = 0 points with the sign bit set are the other non-canonical spellings; they have small
 * order and are caught by has_small_order(). */
static int is_canonical_point(const uint8_t s[32])
{
    if ((s[31] & 0x7f) != 0x7f)
        return 1;
    for (size_t i = 1; i < 31; i++)
        if (s[i] != 0xff)
            return 1;
    return s[0] < 0xed;
}

/* OpenSSL wants a non-NULL pointer even for an empty message. */
static const uint8_t *msg_ptr(const uint8_t *msg)
{
    static const uint8_t empty[1];
    return msg ? msg : empty;
}

int vs_ed25519_verify(const uint8_t pub[32], const uint8_t *msg, size_t len, const uint8_t sig[64])
{
    if (!pub || !sig || (!msg && len))
        return VS_ECRYPTO;
    /* OpenSSL already refuses S >= L and points off the curve; the rest is on us. */
    if (!is_canonical_point(pub) || has_small_order(pub) || has_small_order(sig))
        return VS_ECRYPTO;

    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    if (!pkey)
        return VS_ECRYPTO;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, 64, msg_ptr(msg), len) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok ? 0 : VS_ECRYPTO;
}

int vs_random_bytes(uint8_t *buf, size_t len)
{
    /* RAND_bytes takes an int; large requests are served in pieces. */
    while (len > 0) {
        int chunk = len > INT_MAX ? INT_MAX : (int)len;
        if (RAND_bytes(buf, chunk) != 1)
            return VS_ECRYPTO;
        buf += chunk;
        len -= (size_t)chunk;
    }
    return 0;
}

int vs_ed25519_keygen(uint8_t pub[32], uint8_t priv[32])
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!pkey)
        return VS_ECRYPTO;
    size_t publen = 32, privlen = 32;
    int ok = EVP_PKEY_get_raw_public_key(pkey, pub, &publen) == 1 && publen == 32 &&
             EVP_PKEY_get_raw_private_key(pkey, priv, &privlen) == 1 && privlen == 32;
    EVP_PKEY_free(pkey);
    if (!ok) {
        OPENSSL_cleanse(priv, 32);
        return VS_ECRYPTO;
    }
    return 0;
}

int vs_ed25519_sign(const uint8_t priv[32], const uint8_t *msg, size_t len, uint8_t sig[64])
{
    if (!priv || !sig || (!msg && len))
        return VS_ECRYPTO;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, 32);
    if (!pkey)
        return VS_ECRYPTO;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t siglen = 64;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
             EVP_DigestSign(ctx, sig, &siglen, msg_ptr(msg), len) == 1 && siglen == 64;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey); /* OpenSSL wipes the key material it holds when freeing */
    return ok ? 0 : VS_ECRYPTO;
}
