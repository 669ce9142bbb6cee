/* mlkem.c: ML-KEM-768, see mlkem.h. The input checks of FIPS 203 sections 7.2 and 7.3 are done
 * here for both back ends, so OpenSSL 3.5's native ML-KEM and the portable code refuse exactly
 * the same inputs. The portable K-PKE and KEM (Algorithms 13 to 18) follow the standard's
 * steps; the polynomial layer is in mlkem_poly.c. */
#include "crypto/mlkem.h"

#include "common/error.h"
#include "crypto/mlkem_poly.h"
#include "crypto/sign.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <string.h>

#define K 3
#define EK_PKE_LEN (K * VS_MLKEM_POLY_BYTES)       /* t-hat, before rho */
#define DK_PKE_LEN (K * VS_MLKEM_POLY_BYTES)       /* s-hat */
#define H_OFFSET (DK_PKE_LEN + VS_MLKEM768_EK_LEN) /* H(ek) inside dk */
#define Z_OFFSET (H_OFFSET + 32)
#define DU 10
#define DV 4
#define CT_U_LEN (K * 32 * DU)

_Static_assert(Z_OFFSET + 32 == VS_MLKEM768_DK_LEN, "dk layout");
_Static_assert(EK_PKE_LEN + 32 == VS_MLKEM768_EK_LEN, "ek layout");
_Static_assert(CT_U_LEN + 32 * DV == VS_MLKEM768_CT_LEN, "ciphertext layout");

/* out = md(a || b), or the first out_len bytes of the XOF md(a || b). b may be NULL. */
static int hash2(const EVP_MD *md, uint8_t *out, size_t out_len, const uint8_t *a, size_t a_len,
                 const uint8_t *b, size_t b_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, a, a_len) == 1 &&
             (b == NULL || EVP_DigestUpdate(ctx, b, b_len) == 1);
    if (ok) {
        if (EVP_MD_get_flags(md) & EVP_MD_FLAG_XOF) {
            ok = EVP_DigestFinalXOF(ctx, out, out_len) == 1;
        } else {
            unsigned int n = 0;
            ok = (size_t)EVP_MD_get_size(md) == out_len && EVP_DigestFinal_ex(ctx, out, &n) == 1 &&
                 n == out_len;
        }
    }
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : VS_ECRYPTO;
}

/* H = SHA3-256, used on the public ek. */
static int hash_h(uint8_t out[32], const uint8_t *in, size_t len)
{
    return hash2(EVP_sha3_256(), out, 32, in, len, NULL, 0);
}

/* The section 7.2 modulus check: every 12-bit coefficient of t-hat is below q. Decodes into t
 * (borrowed, K polynomials) when given, for the caller to reuse. */
static int check_ek(const uint8_t ek[VS_MLKEM768_EK_LEN], vs_mlkem_poly_t *t)
{
    vs_mlkem_poly_t scratch;
    uint16_t ok = 0xffff;
    for (size_t i = 0; i < K; i++)
        ok &= vs_mlkem_poly_frombytes(t ? &t[i] : &scratch, ek + i * VS_MLKEM_POLY_BYTES);
    return ok == 0xffff ? 0 : VS_EINVAL;
}

/* The section 7.3 hash check: the H(ek) stored in dk matches the ek stored in dk. Both are
 * derived from public data, but CRYPTO_memcmp costs nothing and keeps the habit. */
static int check_dk(const uint8_t dk[VS_MLKEM768_DK_LEN])
{
    uint8_t h[32];
    int err = hash_h(h, dk + DK_PKE_LEN, VS_MLKEM768_EK_LEN);
    if (err < 0)
        return err;
    return CRYPTO_memcmp(h, dk + H_OFFSET, 32) == 0 ? 0 : VS_EINVAL;
}

#if OPENSSL_VERSION_NUMBER >= 0x30500000L
/* ---- OpenSSL >= 3.5: the provider's ML-KEM-768 ------------------------------------------ */
#include <openssl/core_names.h>
#include <openssl/params.h>

static int export_key(EVP_PKEY *pkey, const char *name, uint8_t *out, size_t len)
{
    size_t n = 0;
    if (EVP_PKEY_get_octet_string_param(pkey, name, out, len, &n) != 1 || n != len)
        return VS_ECRYPTO;
    return 0;
}

static int keygen_impl(uint8_t ek[VS_MLKEM768_EK_LEN], uint8_t dk[VS_MLKEM768_DK_LEN],
                       const uint8_t d[32], const uint8_t z[32])
{
    uint8_t seed[VS_MLKEM768_SEED_LEN];
    memcpy(seed, d, 32);
    memcpy(seed + 32, z, 32);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_ML_KEM_SEED, seed, sizeof seed),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "ML-KEM-768", NULL);
    int err = ctx && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_CTX_set_params(ctx, params) == 1 &&
                      EVP_PKEY_generate(ctx, &pkey) == 1
                  ? 0
                  : VS_ECRYPTO;
    if (err == 0)
        err = export_key(pkey, OSSL_PKEY_PARAM_PUB_KEY, ek, VS_MLKEM768_EK_LEN);
    if (err == 0)
        err = export_key(pkey, OSSL_PKEY_PARAM_PRIV_KEY, dk, VS_MLKEM768_DK_LEN);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OPENSSL_cleanse(seed, sizeof seed);
    return err;
}

static EVP_PKEY *import_key(const char *name, const uint8_t *key, size_t len, int selection)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(name, (void *)key, len),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "ML-KEM-768", NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, selection, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

static int encaps_impl(uint8_t ct[VS_MLKEM768_CT_LEN], uint8_t ss[VS_MLKEM768_SS_LEN],
                       const uint8_t ek[VS_MLKEM768_EK_LEN], const vs_mlkem_poly_t *t_hat,
                       const uint8_t m[32])
{
    (void)t_hat;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KEM_PARAM_IKME, (void *)m, 32),
        OSSL_PARAM_construct_end(),
    };
    size_t ct_len = VS_MLKEM768_CT_LEN, ss_len = VS_MLKEM768_SS_LEN;
    EVP_PKEY *pkey =
        import_key(OSSL_PKEY_PARAM_PUB_KEY, ek, VS_MLKEM768_EK_LEN, EVP_PKEY_PUBLIC_KEY);
    EVP_PKEY_CTX *ctx = pkey ? EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL) : NULL;
    int err = ctx && EVP_PKEY_encapsulate_init(ctx, params) == 1 &&
                      EVP_PKEY_encapsulate(ctx, ct, &ct_len, ss, &ss_len) == 1 &&
                      ct_len == VS_MLKEM768_CT_LEN && ss_len == VS_MLKEM768_SS_LEN
                  ? 0
                  : VS_ECRYPTO;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return err;
}

static int decaps_impl(uint8_t ss[VS_MLKEM768_SS_LEN], const uint8_t ct[VS_MLKEM768_CT_LEN],
                       const uint8_t dk[VS_MLKEM768_DK_LEN])
{
    size_t ss_len = VS_MLKEM768_SS_LEN;
    EVP_PKEY *pkey = import_key(OSSL_PKEY_PARAM_PRIV_KEY, dk, VS_MLKEM768_DK_LEN, EVP_PKEY_KEYPAIR);
    EVP_PKEY_CTX *ctx = pkey ? EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL) : NULL;
    int err = ctx && EVP_PKEY_decapsulate_init(ctx, NULL) == 1 &&
                      EVP_PKEY_decapsulate(ctx, ss, &ss_len, ct, VS_MLKEM768_CT_LEN) == 1 &&
                      ss_len == VS_MLKEM768_SS_LEN
                  ? 0
                  : VS_ECRYPTO;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey); /* frees (and OpenSSL wipes) its copy of dk */
    return err;
}

#else
/* ---- OpenSSL < 3.5: portable FIPS 203 on OpenSSL's SHA-3 --------------------------------- */

/* PRF_eta(s, b) = SHAKE256(s || b, 64 * eta) with eta = 2 (eta1 = eta2 = 2 for ML-KEM-768),
 * then SamplePolyCBD_2. */
static int sample_cbd(vs_mlkem_poly_t *p, const uint8_t s[32], uint8_t b)
{
    uint8_t buf[128];
    int err = hash2(EVP_shake256(), buf, sizeof buf, s, 32, &b, 1);
    if (err == 0)
        vs_mlkem_poly_cbd2(p, buf);
    OPENSSL_cleanse(buf, sizeof buf);
    return err;
}

/* A-hat (Algorithm 13 steps 3-7), or its transpose for Algorithm 14: A-hat[i][j] is
 * SampleNTT(rho || j || i). */
static int gen_matrix(vs_mlkem_poly_t a[K][K], const uint8_t rho[32], int transposed)
{
    for (uint8_t i = 0; i < K; i++) {
        for (uint8_t j = 0; j < K; j++) {
            int err = transposed ? vs_mlkem_sample_ntt(&a[i][j], rho, i, j)
                                 : vs_mlkem_sample_ntt(&a[i][j], rho, j, i);
            if (err < 0)
                return err;
        }
    }
    return 0;
}

/* K-PKE.KeyGen (Algorithm 13): writes ek_pke to ek[0..1184) and dk_pke to dk_pke[0..1152). */
static int pke_keygen(uint8_t ek[VS_MLKEM768_EK_LEN], uint8_t dk_pke[DK_PKE_LEN],
                      const uint8_t d[32])
{
    const uint8_t k = K;
    uint8_t rho_sigma[64]; /* rho || sigma = G(d || k) */
    vs_mlkem_poly_t a[K][K], s[K], e[K], t[K];
    int err = hash2(EVP_sha3_512(), rho_sigma, 64, d, 32, &k, 1);
    if (err == 0)
        err = gen_matrix(a, rho_sigma, 0);
    for (uint8_t i = 0; i < K && err == 0; i++)
        err = sample_cbd(&s[i], rho_sigma + 32, i);
    for (uint8_t i = 0; i < K && err == 0; i++)
        err = sample_cbd(&e[i], rho_sigma + 32, (uint8_t)(K + i));
    if (err == 0) {
        for (size_t i = 0; i < K; i++) {
            vs_mlkem_poly_ntt(&s[i]);
            vs_mlkem_poly_ntt(&e[i]);
        }
        for (size_t i = 0; i < K; i++) {
            vs_mlkem_poly_basemul_acc(&t[i], a[i], s, K);
            vs_mlkem_poly_tomont(&t[i]);
            vs_mlkem_poly_add(&t[i], &t[i], &e[i]);
            vs_mlkem_poly_tobytes(ek + i * VS_MLKEM_POLY_BYTES, &t[i]);
            vs_mlkem_poly_tobytes(dk_pke + i * VS_MLKEM_POLY_BYTES, &s[i]);
        }
        memcpy(ek + EK_PKE_LEN, rho_sigma, 32);
    }
    OPENSSL_cleanse(rho_sigma, sizeof rho_sigma);
    OPENSSL_cleanse(s, sizeof s);
    OPENSSL_cleanse(e, sizeof e);
    return err;
}

/* K-PKE.Encrypt (Algorithm 14) of m with randomness r under (t_hat, rho). t_hat: the K decoded
 * polynomials of ek (any 12-bit values; arithmetic is mod q). */
static int pke_encrypt(uint8_t ct[VS_MLKEM768_CT_LEN], const vs_mlkem_poly_t t_hat[K],
                       const uint8_t rho[32], const uint8_t m[32], const uint8_t r[32])
{
    vs_mlkem_poly_t at[K][K], y[K], u, v, e, mu;
    int err = gen_matrix(at, rho, 1);
    for (uint8_t i = 0; i < K && err == 0; i++)
        err = sample_cbd(&y[i], r, i);
    if (err == 0) {
        for (size_t i = 0; i < K; i++)
            vs_mlkem_poly_ntt(&y[i]);
        /* u = NTT^-1(A-hat^T y-hat) + e1, with e1[i] = CBD(PRF(r, K + i)) */
        for (uint8_t i = 0; i < K && err == 0; i++) {
            vs_mlkem_poly_basemul_acc(&u, at[i], y, K);
            vs_mlkem_poly_invntt_tomont(&u);
            err = sample_cbd(&e, r, (uint8_t)(K + i));
            if (err == 0) {
                vs_mlkem_poly_add(&u, &u, &e);
                vs_mlkem_poly_compress(ct + i * 32 * DU, &u, DU);
            }
        }
    }
    if (err == 0) {
        /* v = NTT^-1(t-hat^T y-hat) + e2 + Decompress_1(m), with e2 = CBD(PRF(r, 2K)) */
        vs_mlkem_poly_basemul_acc(&v, t_hat, y, K);
        vs_mlkem_poly_invntt_tomont(&v);
        err = sample_cbd(&e, r, 2 * K);
    }
    if (err == 0) {
        vs_mlkem_poly_decompress(&mu, m, 1);
        vs_mlkem_poly_add(&v, &v, &e);
        vs_mlkem_poly_add(&v, &v, &mu);
        vs_mlkem_poly_compress(ct + CT_U_LEN, &v, DV);
    }
    OPENSSL_cleanse(y, sizeof y);
    OPENSSL_cleanse(&u, sizeof u);
    OPENSSL_cleanse(&v, sizeof v);
    OPENSSL_cleanse(&e, sizeof e);
    OPENSSL_cleanse(&mu, sizeof mu);
    return err;
}

/* K-PKE.Decrypt (Algorithm 15): m = Compress_1(v - NTT^-1(s-hat^T NTT(u))). No hashing, so it
 * cannot fail. */
static void pke_decrypt(uint8_t m[32], const uint8_t dk_pke[DK_PKE_LEN],
                        const uint8_t ct[VS_MLKEM768_CT_LEN])
{
    vs_mlkem_poly_t u[K], s[K], v, w;
    for (size_t i = 0; i < K; i++) {
        vs_mlkem_poly_decompress(&u[i], ct + i * 32 * DU, DU);
        vs_mlkem_poly_ntt(&u[i]);
        (void)vs_mlkem_poly_frombytes(&s[i], dk_pke + i * VS_MLKEM_POLY_BYTES);
    }
    vs_mlkem_poly_decompress(&v, ct + CT_U_LEN, DV);
    vs_mlkem_poly_basemul_acc(&w, s, u, K);
    vs_mlkem_poly_invntt_tomont(&w);
    vs_mlkem_poly_sub(&w, &v, &w);
    vs_mlkem_poly_compress(m, &w, 1);
    OPENSSL_cleanse(s, sizeof s);
    OPENSSL_cleanse(&w, sizeof w);
}

static int keygen_impl(uint8_t ek[VS_MLKEM768_EK_LEN], uint8_t dk[VS_MLKEM768_DK_LEN],
                       const uint8_t d[32], const uint8_t z[32])
{
    /* Algorithm 16: dk = dk_pke || ek || H(ek) || z */
    int err = pke_keygen(ek, dk, d);
    if (err == 0)
        err = hash_h(dk + H_OFFSET, ek, VS_MLKEM768_EK_LEN);
    if (err == 0) {
        memcpy(dk + DK_PKE_LEN, ek, VS_MLKEM768_EK_LEN);
        memcpy(dk + Z_OFFSET, z, 32);
    }
    return err;
}

static int encaps_impl(uint8_t ct[VS_MLKEM768_CT_LEN], uint8_t ss[VS_MLKEM768_SS_LEN],
                       const uint8_t ek[VS_MLKEM768_EK_LEN], const vs_mlkem_poly_t t_hat[K],
                       const uint8_t m[32])
{
    /* Algorithm 17: (K, r) = G(m || H(ek)), c = K-PKE.Encrypt(ek, m, r) */
    uint8_t h[32], kr[64];
    int err = hash_h(h, ek, VS_MLKEM768_EK_LEN);
    if (err == 0)
        err = hash2(EVP_sha3_512(), kr, 64, m, 32, h, 32);
    if (err == 0)
        err = pke_encrypt(ct, t_hat, ek + EK_PKE_LEN, m, kr + 32);
    if (err == 0)
        memcpy(ss, kr, 32);
    OPENSSL_cleanse(kr, sizeof kr);
    return err;
}

/* Selects without a branch: r = x if flag is 1, unchanged if 0. The empty asm stops the
 * compiler from proving flag is 0/1 and turning the mask back into a branch. */
static void cmov(uint8_t *r, const uint8_t *x, size_t len, uint8_t flag)
{
    __asm__("" : "+r"(flag));
    uint8_t mask = (uint8_t)-flag;
    for (size_t i = 0; i < len; i++)
        r[i] ^= (uint8_t)(mask & (r[i] ^ x[i]));
}

/* 1 if a and b differ, 0 if equal, reading every byte. */
static uint8_t ct_differ(const uint8_t *a, const uint8_t *b, size_t len)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < len; i++)
        acc |= (uint8_t)(a[i] ^ b[i]);
    return (uint8_t)((0u - (uint32_t)acc) >> 31);
}

static int decaps_impl(uint8_t ss[VS_MLKEM768_SS_LEN], const uint8_t ct[VS_MLKEM768_CT_LEN],
                       const uint8_t dk[VS_MLKEM768_DK_LEN])
{
    /* Algorithm 18 */
    const uint8_t *ek = dk + DK_PKE_LEN;
    uint8_t m[32], kr[64], k_bar[32], ct2[VS_MLKEM768_CT_LEN];
    vs_mlkem_poly_t t_hat[K];
    pke_decrypt(m, dk, ct);
    /* FIPS 203 does not apply the modulus check to the ek inside dk; its values are used mod q
     * like every implementation does, so the mask is ignored. */
    (void)check_ek(ek, t_hat);
    int err = hash2(EVP_sha3_512(), kr, 64, m, 32, dk + H_OFFSET, 32);
    if (err == 0)
        err = hash2(EVP_shake256(), k_bar, 32, dk + Z_OFFSET, 32, ct, VS_MLKEM768_CT_LEN);
    if (err == 0)
        err = pke_encrypt(ct2, t_hat, ek + EK_PKE_LEN, m, kr + 32);
    if (err == 0) {
        cmov(kr, k_bar, 32, ct_differ(ct, ct2, VS_MLKEM768_CT_LEN));
        memcpy(ss, kr, 32);
    }
    OPENSSL_cleanse(m, sizeof m);
    OPENSSL_cleanse(kr, sizeof kr);
    OPENSSL_cleanse(k_bar, sizeof k_bar);
    OPENSSL_cleanse(ct2, sizeof ct2);
    return err;
}
#endif

/* ---- Public API: argument checks, then the back end --------------------------------------- */

int vs_mlkem768_keygen_derand(uint8_t ek[VS_MLKEM768_EK_LEN], uint8_t dk[VS_MLKEM768_DK_LEN],
                              const uint8_t d[32], const uint8_t z[32])
{
    if (!ek || !dk || !d || !z)
        return VS_EINVAL;
    int err = keygen_impl(ek, dk, d, z);
    if (err < 0)
        OPENSSL_cleanse(dk, VS_MLKEM768_DK_LEN);
    return err;
}

int vs_mlkem768_keygen(uint8_t ek[VS_MLKEM768_EK_LEN], uint8_t dk[VS_MLKEM768_DK_LEN])
{
    uint8_t seed[VS_MLKEM768_SEED_LEN];
    if (!ek || !dk)
        return VS_EINVAL;
    int err = vs_random_bytes(seed, sizeof seed);
    if (err == 0)
        err = vs_mlkem768_keygen_derand(ek, dk, seed, seed + 32);
    OPENSSL_cleanse(seed, sizeof seed);
    return err;
}

int vs_mlkem768_encaps_derand(uint8_t ct[VS_MLKEM768_CT_LEN], uint8_t ss[VS_MLKEM768_SS_LEN],
                              const uint8_t ek[VS_MLKEM768_EK_LEN],
                              const uint8_t m[VS_MLKEM768_MSG_LEN])
{
    vs_mlkem_poly_t t_hat[K];
    if (!ct || !ss || !ek || !m)
        return VS_EINVAL;
    int err = check_ek(ek, t_hat);
    if (err == 0)
        err = encaps_impl(ct, ss, ek, t_hat, m);
    if (err < 0)
        OPENSSL_cleanse(ss, VS_MLKEM768_SS_LEN);
    return err;
}

int vs_mlkem768_encaps(uint8_t ct[VS_MLKEM768_CT_LEN], uint8_t ss[VS_MLKEM768_SS_LEN],
                       const uint8_t ek[VS_MLKEM768_EK_LEN])
{
    uint8_t m[VS_MLKEM768_MSG_LEN];
    if (!ct || !ss || !ek)
        return VS_EINVAL;
    int err = vs_random_bytes(m, sizeof m);
    if (err == 0)
        err = vs_mlkem768_encaps_derand(ct, ss, ek, m);
    OPENSSL_cleanse(m, sizeof m);
    return err;
}

int vs_mlkem768_decaps(uint8_t ss[VS_MLKEM768_SS_LEN], const uint8_t ct[VS_MLKEM768_CT_LEN],
                       const uint8_t dk[VS_MLKEM768_DK_LEN])
{
    if (!ss || !ct || !dk)
        return VS_EINVAL;
    int err = check_dk(dk);
    if (err == 0)
        err = decaps_impl(ss, ct, dk);
    if (err < 0)
        OPENSSL_cleanse(ss, VS_MLKEM768_SS_LEN);
    return err;
}

int vs_mlkem768_encaps_checked(uint8_t ct[VS_MLKEM768_CT_LEN], uint8_t ss[VS_MLKEM768_SS_LEN],
                               const uint8_t *ek, size_t ek_len)
{
    if (!ek || ek_len != VS_MLKEM768_EK_LEN)
        return VS_EINVAL;
    return vs_mlkem768_encaps(ct, ss, ek);
}

int vs_mlkem768_decaps_checked(uint8_t ss[VS_MLKEM768_SS_LEN], const uint8_t *ct, size_t ct_len,
                               const uint8_t *dk, size_t dk_len)
{
    if (!ct || ct_len != VS_MLKEM768_CT_LEN || !dk || dk_len != VS_MLKEM768_DK_LEN)
        return VS_EINVAL;
    return vs_mlkem768_decaps(ss, ct, dk);
}
