/* mlkem.h: ML-KEM-768 key encapsulation (FIPS 203, final, August 2024). Owns no state: keys
 * and ciphertexts are caller-owned byte strings in the FIPS 203 encodings (ek 1184, dk 2400,
 * ciphertext 1088, shared secret 32 bytes).
 *
 * With OpenSSL >= 3.5 at build time the work is done by OpenSSL's native "ML-KEM-768"; with
 * older OpenSSL (Debian bookworm ships 3.0) by crypto/mlkem_poly.c and crypto/mlkem.c on top
 * of OpenSSL's SHA3-256, SHA3-512, SHAKE128 and SHAKE256. Both give identical bytes.
 *
 * It must never log, keep or leak keys, seeds, messages or shared secrets: secret-dependent
 * work runs without secret-dependent branches or memory indexing, and secret temporaries are
 * wiped with OPENSSL_cleanse before returning. Decapsulation never reports whether a ciphertext
 * was valid: a tampered ciphertext yields the implicit-rejection secret J(z || c).
 *
 * All pointer parameters are borrowed; outputs are caller-allocated. On failure the outputs'
 * contents are unspecified, except that ss and dk are zeroed rather than left holding partial
 * secrets. */
#ifndef VS_CRYPTO_MLKEM_H
#define VS_CRYPTO_MLKEM_H

#include <stddef.h>
#include <stdint.h>

#define VS_MLKEM768_EK_LEN 1184 /* encapsulation (public) key */
#define VS_MLKEM768_DK_LEN 2400 /* decapsulation (secret) key: dk_pke || ek || H(ek) || z */
#define VS_MLKEM768_CT_LEN 1088
#define VS_MLKEM768_SS_LEN 32
#define VS_MLKEM768_SEED_LEN 64 /* d || z for the deterministic key generation */
#define VS_MLKEM768_MSG_LEN 32  /* m for the deterministic encapsulation */

/* ML-KEM.KeyGen_internal (Algorithm 16) from the seed halves d and z. Deterministic: for tests
 * and for keys derived from stored seeds; d and z must be fresh secret randomness otherwise.
 * The caller wipes dk (and the seed) when done. Returns 0 or VS_ECRYPTO. */
int vs_mlkem768_keygen_derand(uint8_t ek[VS_MLKEM768_EK_LEN], uint8_t dk[VS_MLKEM768_DK_LEN],
                              const uint8_t d[32], const uint8_t z[32]);

/* ML-KEM.KeyGen (Algorithm 19) with d and z from vs_random_bytes. Returns 0 or VS_ECRYPTO. */
int vs_mlkem768_keygen(uint8_t ek[VS_MLKEM768_EK_LEN], uint8_t dk[VS_MLKEM768_DK_LEN]);

/* ML-KEM.Encaps_internal (Algorithm 17) with the message m, after the FIPS 203 section 7.2
 * modulus check of ek. Reusing an m for the same ek repeats the shared secret: only for tests.
 * Returns 0, VS_EINVAL if ek fails the modulus check (a coefficient >= 3329), or VS_ECRYPTO. */
int vs_mlkem768_encaps_derand(uint8_t ct[VS_MLKEM768_CT_LEN], uint8_t ss[VS_MLKEM768_SS_LEN],
                              const uint8_t ek[VS_MLKEM768_EK_LEN],
                              const uint8_t m[VS_MLKEM768_MSG_LEN]);

/* ML-KEM.Encaps (Algorithm 20) with m from vs_random_bytes. Returns as above. */
int vs_mlkem768_encaps(uint8_t ct[VS_MLKEM768_CT_LEN], uint8_t ss[VS_MLKEM768_SS_LEN],
                       const uint8_t ek[VS_MLKEM768_EK_LEN]);

/* ML-KEM.Decaps (Algorithm 21) after the section 7.3 hash check of dk (H(ek) stored in dk must
 * match its ek). A ciphertext that does not re-encrypt identically still returns 0, with the
 * implicit-rejection secret in ss. Returns 0, VS_EINVAL if dk fails the hash check, or
 * VS_ECRYPTO. */
int vs_mlkem768_decaps(uint8_t ss[VS_MLKEM768_SS_LEN], const uint8_t ct[VS_MLKEM768_CT_LEN],
                       const uint8_t dk[VS_MLKEM768_DK_LEN]);

/* The same with explicit lengths for input that arrives as byte strings (e.g. from the wire):
 * a NULL pointer or a length other than the FIPS 203 one gives VS_EINVAL before any work. */
int vs_mlkem768_encaps_checked(uint8_t ct[VS_MLKEM768_CT_LEN], uint8_t ss[VS_MLKEM768_SS_LEN],
                               const uint8_t *ek, size_t ek_len);
int vs_mlkem768_decaps_checked(uint8_t ss[VS_MLKEM768_SS_LEN], const uint8_t *ct, size_t ct_len,
                               const uint8_t *dk, size_t dk_len);

#endif
