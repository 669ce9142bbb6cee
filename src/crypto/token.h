/* token.h: LiveKit-style access tokens: JWTs signed with HS256 by an API key's secret, the key
 * named by "iss". It owns the configured key/secret pairs and the claims it extracts; it
 * verifies (libjwt, plus our own constant-time HMAC check) and creates tokens. It never logs,
 * and never puts a token, a secret or a signature into an error message: callers get a reason
 * code only. Only HS256 is accepted ("none", HS512, RS256... are refused: algorithm confusion). */
#ifndef VS_CRYPTO_TOKEN_H
#define VS_CRYPTO_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/* Clock skew allowed on exp and nbf, seconds. */
#define VS_TOKEN_LEEWAY 60
/* Longest token accepted, bytes (a 1184-byte ML-KEM key in base64 is 1580 of them). */
#define VS_TOKEN_MAX 4096
/* The development pair that --dev configures; never for production. */
#define VS_TOKEN_DEV_KEY "volly-dev-key"
#define VS_TOKEN_DEV_SECRET "volly-dev-secret-key-2024"

/* Why a token was refused; the names (vs_token_reason_name) are the wire "reason" strings. */
#define VS_TOKEN_REASONS(X)                                                                        \
    X(OK, "ok")                                                                                    \
    X(MALFORMED, "malformed")                                                                      \
    X(BAD_SIGNATURE, "bad_signature")                                                              \
    X(UNKNOWN_KEY, "unknown_key")                                                                  \
    X(EXPIRED, "expired")                                                                          \
    X(NOT_YET_VALID, "not_yet_valid")                                                              \
    X(MISSING_CLAIM, "missing_claim")                                                              \
    X(INVALID_IDENTITY, "invalid_identity")                                                        \
    X(NO_KEYS, "no_keys_configured")

typedef enum vs_token_reason {
#define VS_TOKEN_REASON_ENUM(name, str) VS_TOKEN_##name,
    VS_TOKEN_REASONS(VS_TOKEN_REASON_ENUM)
#undef VS_TOKEN_REASON_ENUM
        VS_TOKEN_REASON_COUNT
} vs_token_reason_t;

typedef struct vs_token_key {
    char *key;    /* owned */
    char *secret; /* owned */
} vs_token_key_t;

typedef struct vs_token_keys {
    vs_token_key_t *v; /* owned array of n */
    size_t n;
    int dev;           /* the development pair is among them */
} vs_token_keys_t;

/* What a valid token says. Strings are owned (vs_token_claims_deinit frees them). */
typedef struct vs_token_claims {
    char identity[129];   /* "sub", folded as user ids are */
    int64_t exp, nbf;     /* seconds since the epoch; nbf 0 when absent */
    int room_join;        /* video.roomJoin */
    int hidden;           /* video.hidden */
    char room[129];       /* video.room, "" when absent */
    char *pq_public_key;  /* "pqPublicKey": standard base64 as sent (checked), or NULL */
    char *pq_algorithm;   /* "pqAlgorithm", or NULL */
    int64_t pq_key_expiry; /* "pqKeyExpiry", ms since the epoch; 0 when absent */
} vs_token_claims_t;

/* Reads the keys: LIVEKIT_KEYS ("key1: secret1,key2: secret2", blanks around either allowed),
 * else LIVEKIT_API_KEY with LIVEKIT_API_SECRET; with dev, the development pair is added after
 * them. env (borrowed) looks variables up as getenv does. keys (borrowed) is overwritten; free
 * with vs_token_keys_deinit. Returns 0 (possibly with no key at all), or VS_EUSAGE with a
 * message in err (borrowed, errlen bytes) that names the variable but never a secret. */
int vs_token_keys_load(vs_token_keys_t *keys, char *(*env)(const char *), int dev, char *err,
                       size_t errlen);
/* Adds one pair (both borrowed, copied). */
void vs_token_keys_add(vs_token_keys_t *keys, const char *key, const char *secret);
void vs_token_keys_deinit(vs_token_keys_t *keys);

/* Verifies token[0..len) (borrowed, need not be NUL-terminated) at time now (seconds since the
 * epoch). On success returns 0 and fills claims (borrowed; deinit it afterwards). Otherwise
 * returns VS_EINVAL with the reason in *why and claims left empty (nothing to free). */
int vs_token_verify(const vs_token_keys_t *keys, const char *token, size_t len, int64_t now,
                    vs_token_claims_t *claims, vs_token_reason_t *why);
void vs_token_claims_deinit(vs_token_claims_t *claims);

/* What a new token grants. Strings borrowed; room and pq_public_key may be NULL. */
typedef struct vs_token_grant {
    const char *identity;
    const char *room;          /* video.room (with roomJoin true), or NULL for no room grant */
    const char *pq_public_key; /* standard base64, or NULL */
    const char *pq_algorithm;  /* or NULL */
    int64_t pq_key_expiry;     /* ms since the epoch, or 0 for none */
} vs_token_grant_t;

/* Signs a token with key (borrowed) valid from now for valid_for seconds. On success *out is a
 * NUL-terminated token the caller frees with free(). Returns 0, VS_EINVAL for an identity that
 * is not a valid user id or a room name that is not valid, VS_ECRYPTO when libjwt fails. */
int vs_token_create(const vs_token_key_t *key, const vs_token_grant_t *grant, int64_t now,
                    int64_t valid_for, char **out);

const char *vs_token_reason_name(vs_token_reason_t r);

#endif
