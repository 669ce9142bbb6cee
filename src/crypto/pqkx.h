/* pqkx.h: the primitives of the post-quantum signaling session (docs/protocol.md, "Post-quantum
 * session"): the transcript hash, the HKDF-SHA-256 key schedule, X25519 for the hybrid, the
 * AES-256-GCM protection of `enc` frames, and the server's Ed25519 identity key file. All on
 * OpenSSL 3; ML-KEM-768 itself is crypto/mlkem.h. Owns no state.
 *
 * It must never log, keep or leak keys, shared secrets or plaintexts: secret temporaries are
 * wiped before returning, and errors say only that something failed. All pointer parameters are
 * borrowed; outputs are caller-allocated. */
#ifndef VS_CRYPTO_PQKX_H
#define VS_CRYPTO_PQKX_H

#include <stddef.h>
#include <stdint.h>

#define VS_PQ_KEY_LEN 32 /* each direction's AES-256-GCM key */
#define VS_PQ_TH_LEN 32  /* SHA-256 transcript hash */
#define VS_PQ_TAG_LEN 16 /* AES-GCM tag, appended to the ciphertext */
#define VS_X25519_LEN 32 /* public keys, private keys and shared secrets */
#define VS_PQ_TH_LABEL "volli-pq-v1"
#define VS_PQ_AAD "volli-enc-v1"

/* TH = SHA-256("volli-pq-v1" || nonce || sid || pk || ct). Returns 0 or VS_ECRYPTO. */
int vs_pq_transcript(const char *nonce, size_t nonce_len, const char *sid, size_t sid_len,
                     const uint8_t *pk, size_t pk_len, const uint8_t *ct, size_t ct_len,
                     uint8_t th[VS_PQ_TH_LEN]);

/* PRK = HKDF-Extract(salt = th, ikm); k_c2s = HKDF-Expand(PRK, "volli c2s", 32) and k_s2c
 * likewise with "volli s2c" (SHA-256). The caller wipes both keys when done. Returns 0 or
 * VS_ECRYPTO (keys zeroed). */
int vs_pq_derive(const uint8_t th[VS_PQ_TH_LEN], const uint8_t *ikm, size_t ikm_len,
                 uint8_t k_c2s[VS_PQ_KEY_LEN], uint8_t k_s2c[VS_PQ_KEY_LEN]);

/* A fresh X25519 key pair; the caller wipes priv. Returns 0 or VS_ECRYPTO. */
int vs_x25519_keygen(uint8_t pub[VS_X25519_LEN], uint8_t priv[VS_X25519_LEN]);
/* ss = X25519(priv, peer). Returns 0, or VS_ECRYPTO when OpenSSL refuses (including a peer key
 * of small order, whose all-zero result must not be used); ss is zeroed then. */
int vs_x25519_derive(const uint8_t priv[VS_X25519_LEN], const uint8_t peer[VS_X25519_LEN],
                     uint8_t ss[VS_X25519_LEN]);

/* The server's side of the hybrid in one step: a fresh ephemeral key pair (pub out) and
 * ss = X25519(ephemeral, peer); the private half never leaves OpenSSL. Returns 0, or VS_ECRYPTO
 * (including a small-order peer key); ss is zeroed then. */
int vs_x25519_ephemeral(const uint8_t peer[VS_X25519_LEN], uint8_t pub[VS_X25519_LEN],
                        uint8_t ss[VS_X25519_LEN]);

/* An Ed25519 signing key held ready (OpenSSL derives the public key once, not per signature:
 * that halves the cost of a handshake's signature). Opaque; owned by whoever made it. */
typedef struct vs_pq_signer vs_pq_signer_t;
/* From the 32-byte seed (borrowed; the caller wipes its copy). Returns NULL on failure. */
vs_pq_signer_t *vs_pq_signer_new(const uint8_t priv[32]);
/* sig = Ed25519(key, msg[0..len)). Returns 0 or VS_ECRYPTO. */
int vs_pq_signer_sign(const vs_pq_signer_t *s, const uint8_t *msg, size_t len, uint8_t sig[64]);
/* Frees s (NULL is fine); OpenSSL wipes the key material. */
void vs_pq_signer_free(vs_pq_signer_t *s);

/* AES-256-GCM with IV = 4 zero bytes || seq (64-bit big-endian) and AAD "volli-enc-v1".
 * seal writes len + 16 bytes (ciphertext then tag) to out; open reads len >= 16 bytes and writes
 * len - 16 plaintext bytes to out, or returns VS_ECRYPTO when the tag does not verify (out is
 * then zeroed). in and out may not overlap. Return 0 or VS_ECRYPTO. */
int vs_pq_seal(const uint8_t key[VS_PQ_KEY_LEN], uint64_t seq, const uint8_t *in, size_t len,
               uint8_t *out);
int vs_pq_open(const uint8_t key[VS_PQ_KEY_LEN], uint64_t seq, const uint8_t *in, size_t len,
               uint8_t *out);

/* Length of the `enc` frame text vs_pq_frame_seal writes for a plaintext of len bytes. */
size_t vs_pq_frame_len(uint64_t seq, size_t len);
/* Writes {"type":"enc","seq":seq,"ct":base64(seal(pt))} to out (vs_pq_frame_len(seq, len)
 * bytes, not NUL-terminated); tmp is scratch of len + 16 bytes. Returns 0 or VS_ECRYPTO. */
int vs_pq_frame_seal(const uint8_t key[VS_PQ_KEY_LEN], uint64_t seq, const uint8_t *pt, size_t len,
                     uint8_t *tmp, char *out);
/* 1 when text (len bytes) is in the exact form vs_pq_frame_seal writes, which
 * vs_pq_frame_open reads without a JSON parser; 0 otherwise (it then uses jansson). */
int vs_pq_frame_is_canonical(const char *text, size_t len);
/* Opens an `enc` frame (text, len bytes): it must be a JSON object with "type":"enc", an
 * integer "seq" equal to seq and a string "ct" of standard base64. out receives the plaintext
 * (at most len bytes are ever needed; cap is out's size), *out_len its length.
 * Returns 0; VS_EPROTO when the frame is not an `enc` frame; VS_EMISMATCH when its seq is not
 * the expected one; VS_ECRYPTO when the tag does not verify; VS_ETOOBIG when cap is short. */
int vs_pq_frame_open(const uint8_t key[VS_PQ_KEY_LEN], uint64_t seq, const char *text, size_t len,
                     uint8_t *out, size_t cap, size_t *out_len);

/* The server's identity: dir/server.key, an Ed25519 private key as PEM PKCS#8 (the format of
 * libvolli's key files), created with mode 0600 on first use. priv receives the 32-byte seed
 * (the caller wipes it), pub the public key. err (errlen bytes) gets a one-line message naming
 * the file on failure. Returns 0, VS_EIO (cannot read/create), or VS_ECRYPTO (not an Ed25519
 * key). */
int vs_server_key_load(const char *dir, uint8_t priv[32], uint8_t pub[32], char *err,
                       size_t errlen);

#endif
