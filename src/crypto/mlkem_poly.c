/* mlkem_poly.c: see mlkem_poly.h. The arithmetic follows the structure of the CRYSTALS-Kyber
 * reference implementation (Montgomery multiplication, Barrett reduction, signed 16-bit
 * coefficients), re-derived here from FIPS 203. Right shifts of negative values and narrowing
 * conversions rely on GCC/Clang semantics (arithmetic shift, modular conversion), as that code
 * does. */
#include "crypto/mlkem_poly.h"

#include "common/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>

#define Q VS_MLKEM_Q
#define N VS_MLKEM_N
#define QINV (-3327) /* q^-1 mod 2^16, as a signed value */

/* SHAKE128 output squeezed at once for SampleNTT, see vs_mlkem_sample_ntt. Overridable only to
 * exercise the retry path in tests. */
#ifndef VS_MLKEM_XOF_FIRST
#define VS_MLKEM_XOF_FIRST 840
#endif
#define XOF_MAX (VS_MLKEM_XOF_FIRST << 8)

/* zeta^BitRev7(i) * 2^16 mod q for zeta = 17, centred in (-q/2, q/2]. Entry 0 is unused by the
 * NTT; entries 64..127 are the gammas of Algorithm 12 (the odd powers, with their negatives). */
static const int16_t ZETAS[128] = {
    -1044, -758,  -359,  -1517, 1493,  1422,  287,   202,   -171,  622,   1577,  182,   962,
    -1202, -1474, 1468,  573,   -1325, 264,   383,   -829,  1458,  -1602, -130,  -681,  1017,
    732,   608,   -1542, 411,   -205,  -1571, 1223,  652,   -552,  1015,  -1293, 1491,  -282,
    -1544, 516,   -8,    -320,  -666,  -1618, -1162, 126,   1469,  -853,  -90,   -271,  830,
    107,   -1421, -247,  -951,  -398,  961,   -1508, -725,  448,   -1065, 677,   -1275, -1103,
    430,   555,   843,   -1251, 871,   1550,  105,   422,   587,   177,   -235,  -291,  -460,
    1574,  1653,  -246,  778,   1159,  -147,  -777,  1483,  -602,  1119,  -1590, 644,   -872,
    349,   418,   329,   -156,  -75,   817,   1097,  603,   610,   1322,  -1285, -1465, 384,
    -1215, -136,  1218,  -1335, -874,  220,   -1187, -1659, -1185, -1530, -1278, 794,   -1510,
    -854,  -870,  478,   -108,  -308,  996,   991,   958,   -1460, 1522,  1628,
};

/* a * 2^-16 mod q for |a| < q * 2^15; result in (-q, q). */
static int16_t montgomery_reduce(int32_t a)
{
    int16_t t = (int16_t)((int16_t)a * QINV);
    return (int16_t)((a - (int32_t)t * Q) >> 16);
}

/* a mod q, centred: result in [-(q-1)/2, (q-1)/2] for any int16_t a. */
static int16_t barrett_reduce(int16_t a)
{
    const int32_t v = ((1 << 26) + Q / 2) / Q;
    int16_t t = (int16_t)((v * a + (1 << 25)) >> 26);
    return (int16_t)(a - t * Q);
}

static int16_t fqmul(int16_t a, int16_t b)
{
    return montgomery_reduce((int32_t)a * b);
}

/* Maps (-q, q) to [0, q) with a mask instead of a branch. */
static int16_t to_unsigned(int16_t a)
{
    return (int16_t)(a + ((a >> 15) & Q));
}

void vs_mlkem_poly_reduce(vs_mlkem_poly_t *p)
{
    for (size_t i = 0; i < N; i++)
        p->c[i] = to_unsigned(barrett_reduce(p->c[i]));
}

void vs_mlkem_poly_tomont(vs_mlkem_poly_t *p)
{
    const int16_t f = (int16_t)((1ULL << 32) % Q); /* 2^32 mod q: fqmul removes one 2^16 */
    for (size_t i = 0; i < N; i++)
        p->c[i] = montgomery_reduce((int32_t)p->c[i] * f);
}

void vs_mlkem_poly_add(vs_mlkem_poly_t *r, const vs_mlkem_poly_t *a, const vs_mlkem_poly_t *b)
{
    for (size_t i = 0; i < N; i++)
        r->c[i] = (int16_t)(a->c[i] + b->c[i]);
}

void vs_mlkem_poly_sub(vs_mlkem_poly_t *r, const vs_mlkem_poly_t *a, const vs_mlkem_poly_t *b)
{
    for (size_t i = 0; i < N; i++)
        r->c[i] = (int16_t)(a->c[i] - b->c[i]);
}

void vs_mlkem_poly_ntt(vs_mlkem_poly_t *p)
{
    size_t k = 1;
    for (size_t len = 128; len >= 2; len >>= 1) {
        for (size_t start = 0; start < N; start += 2 * len) {
            int16_t zeta = ZETAS[k++];
            for (size_t j = start; j < start + len; j++) {
                int16_t t = fqmul(zeta, p->c[j + len]);
                p->c[j + len] = (int16_t)(p->c[j] - t);
                p->c[j] = (int16_t)(p->c[j] + t);
            }
        }
    }
    /* Seven layers grow |coefficients| to below 8q; bring them back under q. */
    for (size_t i = 0; i < N; i++)
        p->c[i] = barrett_reduce(p->c[i]);
}

void vs_mlkem_poly_invntt_tomont(vs_mlkem_poly_t *p)
{
    const int16_t f = 1441; /* 2^32 / 128 mod q: the 1/128 of Algorithm 10 plus one 2^16 */
    size_t k = 127;
    for (size_t len = 2; len <= 128; len <<= 1) {
        for (size_t start = 0; start < N; start += 2 * len) {
            int16_t zeta = ZETAS[k--];
            for (size_t j = start; j < start + len; j++) {
                int16_t t = p->c[j];
                p->c[j] = barrett_reduce((int16_t)(t + p->c[j + len]));
                p->c[j + len] = (int16_t)(p->c[j + len] - t);
                p->c[j + len] = fqmul(zeta, p->c[j + len]);
            }
        }
    }
    for (size_t i = 0; i < N; i++)
        p->c[i] = fqmul(p->c[i], f);
}

/* BaseCaseMultiply (Algorithm 12) of (a0 + a1 X)(b0 + b1 X) mod X^2 - zeta, Montgomery. */
static void basemul(int16_t r[2], const int16_t a[2], const int16_t b[2], int16_t zeta)
{
    r[0] = fqmul(fqmul(a[1], b[1]), zeta);
    r[0] = (int16_t)(r[0] + fqmul(a[0], b[0]));
    r[1] = (int16_t)(fqmul(a[0], b[1]) + fqmul(a[1], b[0]));
}

void vs_mlkem_poly_basemul_acc(vs_mlkem_poly_t *r, const vs_mlkem_poly_t *a,
                               const vs_mlkem_poly_t *b, size_t k)
{
    int16_t t[2];
    for (size_t i = 0; i < N; i++)
        r->c[i] = 0;
    /* Each product term is below 2q in absolute value; k <= 4 keeps the sum within int16_t
     * (8q < 2^15) before the final reduction. */
    for (size_t v = 0; v < k; v++) {
        for (size_t i = 0; i < N / 4; i++) {
            basemul(t, &a[v].c[4 * i], &b[v].c[4 * i], ZETAS[64 + i]);
            r->c[4 * i] = (int16_t)(r->c[4 * i] + t[0]);
            r->c[4 * i + 1] = (int16_t)(r->c[4 * i + 1] + t[1]);
            basemul(t, &a[v].c[4 * i + 2], &b[v].c[4 * i + 2], (int16_t)-ZETAS[64 + i]);
            r->c[4 * i + 2] = (int16_t)(r->c[4 * i + 2] + t[0]);
            r->c[4 * i + 3] = (int16_t)(r->c[4 * i + 3] + t[1]);
        }
    }
    for (size_t i = 0; i < N; i++)
        r->c[i] = barrett_reduce(r->c[i]);
}

/* Little-endian bit packing of 256 d-bit values (the bit order of ByteEncode_d). The loop
 * structure depends only on d, never on the values. */
static void pack(uint8_t *out, const uint16_t v[N], unsigned d)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < N; i++) {
        acc |= (uint32_t)v[i] << bits;
        bits += d;
        while (bits >= 8) {
            out[o++] = (uint8_t)acc;
            acc >>= 8;
            bits -= 8;
        }
    }
}

static void unpack(uint16_t v[N], const uint8_t *in, unsigned d)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    const uint32_t mask = (1u << d) - 1;
    for (size_t i = 0; i < N; i++) {
        while (bits < d) {
            acc |= (uint32_t)in[o++] << bits;
            bits += 8;
        }
        v[i] = (uint16_t)(acc & mask);
        acc >>= d;
        bits -= d;
    }
}

void vs_mlkem_poly_tobytes(uint8_t out[VS_MLKEM_POLY_BYTES], const vs_mlkem_poly_t *p)
{
    uint16_t v[N];
    for (size_t i = 0; i < N; i++)
        v[i] = (uint16_t)to_unsigned(barrett_reduce(p->c[i]));
    pack(out, v, 12);
    OPENSSL_cleanse(v, sizeof v);
}

uint16_t vs_mlkem_poly_frombytes(vs_mlkem_poly_t *p, const uint8_t in[VS_MLKEM_POLY_BYTES])
{
    uint16_t v[N];
    uint32_t bad = 0;
    unpack(v, in, 12);
    for (size_t i = 0; i < N; i++) {
        /* (q - 1 - x) goes negative, setting bit 31, exactly when x >= q. */
        bad |= ((uint32_t)(Q - 1) - v[i]) >> 31;
        p->c[i] = (int16_t)v[i];
    }
    OPENSSL_cleanse(v, sizeof v);
    return (uint16_t)(bad - 1);
}

/* round(2^d * x / q) mod 2^d for x in [0, q): floor((x * 2^d + (q-1)/2) / q) by multiplying with
 * ceil(2^36 / q) = 20642680. Exact for every numerator below 2^24 (the error term is below
 * n * 0.7 / 2^36 < 1/q), so for all x < q and d <= 11 (checked exhaustively when written). */
static uint16_t compress(int16_t a, unsigned d)
{
    uint64_t x = (uint16_t)to_unsigned(barrett_reduce(a));
    uint64_t n = (x << d) + (Q - 1) / 2;
    return (uint16_t)(((n * 20642680u) >> 36) & ((1u << d) - 1));
}

void vs_mlkem_poly_compress(uint8_t *out, const vs_mlkem_poly_t *p, unsigned d)
{
    uint16_t v[N];
    for (size_t i = 0; i < N; i++)
        v[i] = compress(p->c[i], d);
    pack(out, v, d);
    OPENSSL_cleanse(v, sizeof v);
}

void vs_mlkem_poly_decompress(vs_mlkem_poly_t *p, const uint8_t *in, unsigned d)
{
    uint16_t v[N];
    unpack(v, in, d);
    /* round(q * y / 2^d) = (q * y + 2^(d-1)) >> d: a shift, no division. */
    for (size_t i = 0; i < N; i++)
        p->c[i] = (int16_t)(((uint32_t)v[i] * Q + (1u << (d - 1))) >> d);
    OPENSSL_cleanse(v, sizeof v);
}

void vs_mlkem_poly_cbd2(vs_mlkem_poly_t *p, const uint8_t buf[128])
{
    for (size_t i = 0; i < N / 8; i++) {
        uint32_t t = (uint32_t)buf[4 * i] | (uint32_t)buf[4 * i + 1] << 8 |
                     (uint32_t)buf[4 * i + 2] << 16 | (uint32_t)buf[4 * i + 3] << 24;
        /* Each 2-bit field of d is the sum of two adjacent input bits. */
        uint32_t d = (t & 0x55555555u) + ((t >> 1) & 0x55555555u);
        for (size_t j = 0; j < 8; j++) {
            int16_t a = (int16_t)((d >> (4 * j)) & 3);
            int16_t b = (int16_t)((d >> (4 * j + 2)) & 3);
            p->c[8 * i + j] = (int16_t)(a - b);
        }
    }
}

/* Runs Algorithm 7's loop over len bytes of stream; returns how many coefficients it filled. */
static size_t rejection_sample(vs_mlkem_poly_t *p, const uint8_t *buf, size_t len)
{
    size_t n = 0;
    for (size_t o = 0; o + 3 <= len && n < N; o += 3) {
        uint16_t d1 = (uint16_t)(buf[o] | ((buf[o + 1] & 0x0f) << 8));
        uint16_t d2 = (uint16_t)((buf[o + 1] >> 4) | (buf[o + 2] << 4));
        if (d1 < Q)
            p->c[n++] = (int16_t)d1;
        if (d2 < Q && n < N)
            p->c[n++] = (int16_t)d2;
    }
    return n;
}

static int shake128(uint8_t *out, size_t len, const uint8_t rho[32], uint8_t j, uint8_t i)
{
    const uint8_t ji[2] = {j, i};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_shake128(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, rho, 32) == 1 && EVP_DigestUpdate(ctx, ji, 2) == 1 &&
             EVP_DigestFinalXOF(ctx, out, len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : VS_ECRYPTO;
}

/* OpenSSL 3.0 can squeeze a SHAKE context only once (EVP_DigestSqueeze arrived in 3.3), so the
 * stream is produced in one EVP_DigestFinalXOF call of VS_MLKEM_XOF_FIRST = 840 bytes (5 SHAKE128
 * blocks, 560 candidates; 256 of them are needed and each is accepted with probability
 * 3329/4096, so running short has probability below 2^-100). If it does run short, the stream is
 * recomputed with twice the length: SHAKE's output is a prefix-consistent stream, so the result
 * is exactly what incremental squeezing would have produced. */
int vs_mlkem_sample_ntt(vs_mlkem_poly_t *p, const uint8_t rho[32], uint8_t j, uint8_t i)
{
    uint8_t first[VS_MLKEM_XOF_FIRST];
    int err = shake128(first, sizeof first, rho, j, i);
    if (err < 0)
        return err;
    if (rejection_sample(p, first, sizeof first) == N)
        return 0;
    for (size_t len = 2 * sizeof first; len <= XOF_MAX; len *= 2) {
        uint8_t *buf = malloc(len); /* plain malloc: the client library links this file too */
        if (!buf)
            return VS_ENOMEM;
        err = shake128(buf, len, rho, j, i);
        size_t n = err < 0 ? 0 : rejection_sample(p, buf, len);
        free(buf);
        if (err < 0)
            return err;
        if (n == N)
            return 0;
    }
    return VS_ECRYPTO;
}
