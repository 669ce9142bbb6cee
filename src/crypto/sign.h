/* sign.h: Ed25519 signatures (RFC 8032) and the server's source of secure randomness, on top of
 * OpenSSL 3. Owns no state. It must never log, copy or keep keys, signatures or messages, and
 * must never accept a signature from a weak public key: small-order and non-canonical public
 * keys and R points are refused (as libsodium does), because a small-order key lets anyone forge
 * signatures that verify for every message. */
#ifndef VS_CRYPTO_SIGN_H
#define VS_CRYPTO_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define VS_ED25519_PUBLIC_LEN 32
#define VS_ED25519_PRIVATE_LEN 32 /* the RFC 8032 seed */
#define VS_ED25519_SIGNATURE_LEN 64

/* Verifies sig over msg with pub. Constant time is OpenSSL's job (the extra checks here only
 * look at public data).
 * pub, sig: borrowed. msg: borrowed, len bytes (may be NULL when len is 0).
 * Returns 0 if valid, VS_ECRYPTO if invalid or malformed. */
int vs_ed25519_verify(const uint8_t pub[32], const uint8_t *msg, size_t len, const uint8_t sig[64]);

/* Fills buf (borrowed, len bytes) with cryptographically secure random bytes.
 * Returns 0 or VS_ECRYPTO. */
int vs_random_bytes(uint8_t *buf, size_t len);

/* Generates a key pair. pub, priv: borrowed outputs; the caller must wipe priv when done.
 * Returns 0 or VS_ECRYPTO (outputs unspecified). */
int vs_ed25519_keygen(uint8_t pub[32], uint8_t priv[32]);

/* Signs msg with priv (the 32-byte seed). priv: borrowed. msg: borrowed, len bytes (may be
 * NULL when len is 0). sig: borrowed output. Returns 0 or VS_ECRYPTO. */
int vs_ed25519_sign(const uint8_t priv[32], const uint8_t *msg, size_t len, uint8_t sig[64]);

#endif
