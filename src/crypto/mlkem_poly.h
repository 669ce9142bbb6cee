/* mlkem_poly.h: the polynomial layer of ML-KEM (FIPS 203 sections 4.2.1, 4.3 and 4.2.2):
 * arithmetic in R_q = Z_3329[X]/(X^256 + 1), the NTT, byte encodings, compression and the two
 * samplers. Internal to crypto/mlkem.c; nothing else should include it.
 *
 * It must never branch on or index memory by a secret coefficient: every function here except
 * vs_mlkem_sample_ntt (whose input, rho, is public) runs in time independent of the values it
 * processes. It never allocates and keeps no state.
 *
 * Representation: a coefficient is an int16_t congruent mod q to the value it stands for, not
 * necessarily reduced; functions state the ranges they accept and produce. Functions marked
 * "Montgomery" leave a factor 2^-16 mod q in their result. */
#ifndef VS_CRYPTO_MLKEM_POLY_H
#define VS_CRYPTO_MLKEM_POLY_H

#include <stddef.h>
#include <stdint.h>

#define VS_MLKEM_N 256
#define VS_MLKEM_Q 3329
#define VS_MLKEM_POLY_BYTES 384 /* ByteEncode_12 of one polynomial */

typedef struct {
    int16_t c[VS_MLKEM_N];
} vs_mlkem_poly_t;

/* Reduces every coefficient to [0, q) (from any int16_t). */
void vs_mlkem_poly_reduce(vs_mlkem_poly_t *p);

/* Multiplies by 2^16 mod q (undoes a Montgomery factor); output in (-q, q). */
void vs_mlkem_poly_tomont(vs_mlkem_poly_t *p);

/* r = a + b and r = a - b, coefficient-wise, without reduction. Inputs are borrowed; r may alias
 * either. The caller keeps |a| + |b| below 2^15. */
void vs_mlkem_poly_add(vs_mlkem_poly_t *r, const vs_mlkem_poly_t *a, const vs_mlkem_poly_t *b);
void vs_mlkem_poly_sub(vs_mlkem_poly_t *r, const vs_mlkem_poly_t *a, const vs_mlkem_poly_t *b);

/* Forward NTT (FIPS 203 Algorithm 9) in place, bit-reversed output order as the standard
 * defines it. Input |coefficients| < q; output reduced with Barrett to (-q, q). */
void vs_mlkem_poly_ntt(vs_mlkem_poly_t *p);

/* Inverse NTT (Algorithm 10) in place, Montgomery: also multiplies by 2^16, cancelling the 2^-16
 * left by vs_mlkem_poly_basemul_acc. Output |coefficients| < q. */
void vs_mlkem_poly_invntt_tomont(vs_mlkem_poly_t *p);

/* r = sum over i < k of a[i] * b[i] in the NTT domain (Algorithms 11 and 12), Montgomery, then
 * Barrett-reduced to (-q, q). a, b: borrowed arrays of k polynomials with |coefficients| < 4096
 * (decoded but unreduced 12-bit values are fine). r must not alias a or b. */
void vs_mlkem_poly_basemul_acc(vs_mlkem_poly_t *r, const vs_mlkem_poly_t *a,
                               const vs_mlkem_poly_t *b, size_t k);

/* ByteEncode_12 (Algorithm 5) of p into out[384] (borrowed). p: any coefficients; they are
 * reduced to [0, q) on a copy first. */
void vs_mlkem_poly_tobytes(uint8_t out[VS_MLKEM_POLY_BYTES], const vs_mlkem_poly_t *p);

/* ByteDecode_12 (Algorithm 6) without the mod q: coefficients in [0, 4096). Returns a mask that
 * is all ones if every coefficient is below q (the FIPS 203 section 7.2 modulus check), 0
 * otherwise; computed without branches so it is safe on secret keys too. */
uint16_t vs_mlkem_poly_frombytes(vs_mlkem_poly_t *p, const uint8_t in[VS_MLKEM_POLY_BYTES]);

/* ByteEncode_d(Compress_d(p)) for d in {1, 4, 5, 10, 11}: writes 32 * d bytes to out.
 * Compress_d(x) = round(2^d * x / q) mod 2^d, computed by a multiply and a shift, never a
 * division (the values are secret in encryption and decryption). p: any coefficients. */
void vs_mlkem_poly_compress(uint8_t *out, const vs_mlkem_poly_t *p, unsigned d);

/* Decompress_d(ByteDecode_d(in)) for d in {1, 4, 5, 10, 11}: reads 32 * d bytes. Output in
 * [0, q). For d = 1 this is the message encoding of Algorithm 14 step 20 (constant time). */
void vs_mlkem_poly_decompress(vs_mlkem_poly_t *p, const uint8_t *in, unsigned d);

/* SamplePolyCBD_eta (Algorithm 8) for eta = 2 from buf[128]: coefficients in [-2, 2]. */
void vs_mlkem_poly_cbd2(vs_mlkem_poly_t *p, const uint8_t buf[128]);

/* SampleNTT (Algorithm 7): rejection-samples p from SHAKE128(rho || j || i). rho is public, so
 * the loop may branch on the stream. Returns 0 or VS_ECRYPTO if OpenSSL fails. */
int vs_mlkem_sample_ntt(vs_mlkem_poly_t *p, const uint8_t rho[32], uint8_t j, uint8_t i);

#endif
