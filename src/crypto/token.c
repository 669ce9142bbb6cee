/* token.c: HS256 access tokens. libjwt parses, verifies and signs; before libjwt ever compares
 * a signature we check it ourselves with HMAC-SHA256 and CRYPTO_memcmp, so a forger learns
 * nothing from timing whatever libjwt's comparison does. The key is chosen by the unverified
 * "iss", which is safe: a wrong key only makes the signature fail. */
#include "crypto/token.h"

#include "common/alloc.h"
#include "common/base64.h"
#include "common/error.h"
#include "directory/rooms.h"
#include "protocol/userid.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reason_names[] = {
#define VS_TOKEN_REASON_STR(name, str) str,
    VS_TOKEN_REASONS(VS_TOKEN_REASON_STR)
#undef VS_TOKEN_REASON_STR
};

const char *vs_token_reason_name(vs_token_reason_t r)
{
    return (unsigned)r < VS_TOKEN_REASON_COUNT ? reason_names[r] : "malformed";
}

void vs_token_keys_add(vs_token_keys_t *keys, const char *key, const char *secret)
{
    keys->v = vs_realloc(keys->v, (keys->n + 1) * sizeof *keys->v);
    keys->v[keys->n].key = vs_strdup(key);
    keys->v[keys->n].secret = vs_strdup(secret);
    keys->n++;
}

void vs_token_keys_deinit(vs_token_keys_t *keys)
{
    if (!keys)
        return;
    for (size_t i = 0; i < keys->n; i++) {
        free(keys->v[i].key);
        /* Secrets do not linger in freed memory. */
        OPENSSL_cleanse(keys->v[i].secret, strlen(keys->v[i].secret));
        free(keys->v[i].secret);
    }
    free(keys->v);
    keys->v = NULL;
    keys->n = 0;
    keys->dev = 0;
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* "key1: secret1,key2: secret2", as LiveKit reads it. */
static int parse_keys(vs_token_keys_t *keys, const char *list, char *err, size_t errlen)
{
    const char *p = list;
    size_t index = 0;
    while (*p) {
        size_t step = strcspn(p, ","), n = step;
        const char *item = p;
        index++;
        trim(&item, &n);
        if (n) {
            const char *colon = memchr(item, ':', n);
            const char *k = item, *sec = colon ? colon + 1 : NULL;
            size_t kn = colon ? (size_t)(colon - item) : n;
            size_t sn = colon ? n - kn - 1 : 0;
            trim(&k, &kn);
            if (sec)
                trim(&sec, &sn);
            if (!colon || kn == 0 || sn == 0) {
                /* Position only: the entry itself may hold a secret. */
                snprintf(err, errlen, "LIVEKIT_KEYS: entry %zu is not \"key: secret\"", index);
                return VS_EUSAGE;
            }
            char *kk = vs_strndup(k, kn), *ss = vs_strndup(sec, sn);
            vs_token_keys_add(keys, kk, ss);
            OPENSSL_cleanse(ss, sn);
            free(kk);
            free(ss);
        }
        p += step + (p[step] == ',');
    }
    return 0;
}

int vs_token_keys_load(vs_token_keys_t *keys, char *(*env)(const char *), int dev, char *err,
                       size_t errlen)
{
    memset(keys, 0, sizeof *keys);
    const char *list = env ? env("LIVEKIT_KEYS") : NULL;
    const char *key = env ? env("LIVEKIT_API_KEY") : NULL;
    const char *secret = env ? env("LIVEKIT_API_SECRET") : NULL;
    if (list && *list) {
        int rc = parse_keys(keys, list, err, errlen);
        if (rc) {
            vs_token_keys_deinit(keys);
            return rc;
        }
    } else if ((key && *key) || (secret && *secret)) {
        if (!key || !*key || !secret || !*secret) {
            snprintf(err, errlen, "LIVEKIT_API_KEY and LIVEKIT_API_SECRET must be set together");
            return VS_EUSAGE;
        }
        vs_token_keys_add(keys, key, secret);
    }
    if (dev) {
        vs_token_keys_add(keys, VS_TOKEN_DEV_KEY, VS_TOKEN_DEV_SECRET);
        keys->dev = 1;
    }
    return 0;
}

void vs_token_claims_deinit(vs_token_claims_t *c)
{
    if (!c)
        return;
    free(c->pq_public_key);
    free(c->pq_algorithm);
    c->pq_public_key = c->pq_algorithm = NULL;
}

static const vs_token_key_t *find_key(const vs_token_keys_t *keys, const char *iss)
{
    for (size_t i = 0; i < keys->n; i++)
        if (strcmp(keys->v[i].key, iss) == 0)
            return &keys->v[i];
    return NULL;
}

/* Our own check of the HS256 signature over "header.payload", in constant time. */
static int signature_ok(const vs_token_key_t *k, const char *tok, size_t signed_len,
                        const char *sig, size_t sig_len)
{
    unsigned char mac[32];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), k->secret, (int)strlen(k->secret), (const unsigned char *)tok,
              signed_len, mac, &mac_len) ||
        mac_len != sizeof mac)
        return 0;
    char expect[64];
    size_t n = vs_base64url_encode(mac, sizeof mac, expect);
    OPENSSL_cleanse(mac, sizeof mac);
    return sig_len == n && CRYPTO_memcmp(expect, sig, n) == 0;
}

static int json_time(json_t *v, int64_t *out)
{
    if (!json_is_number(v))
        return 0;
    double d = json_number_value(v);
    if (!isfinite(d) || d < 0 || d > 9.2e18)
        return 0;
    *out = (int64_t)d;
    return 1;
}

/* Claims after the signature checked out. */
static vs_token_reason_t read_claims(json_t *root, int64_t now, vs_token_claims_t *c)
{
    json_t *sub = json_object_get(root, "sub"), *exp = json_object_get(root, "exp");
    if (!sub || !exp)
        return VS_TOKEN_MISSING_CLAIM;
    if (!json_is_string(sub) ||
        vs_userid_fold(json_string_value(sub), json_string_length(sub), c->identity) != 0)
        return VS_TOKEN_INVALID_IDENTITY;
    if (!json_time(exp, &c->exp))
        return VS_TOKEN_MALFORMED;
    json_t *nbf = json_object_get(root, "nbf");
    if (nbf && !json_time(nbf, &c->nbf))
        return VS_TOKEN_MALFORMED;
    if (now > c->exp + VS_TOKEN_LEEWAY)
        return VS_TOKEN_EXPIRED;
    if (nbf && now + VS_TOKEN_LEEWAY < c->nbf)
        return VS_TOKEN_NOT_YET_VALID;

    json_t *video = json_object_get(root, "video");
    if (video) {
        json_t *join = json_object_get(video, "roomJoin"), *room = json_object_get(video, "room"),
               *hidden = json_object_get(video, "hidden");
        if (!json_is_object(video) || (join && !json_is_boolean(join)) ||
            (hidden && !json_is_boolean(hidden)) || (room && !json_is_string(room)))
            return VS_TOKEN_MALFORMED;
        c->room_join = json_is_true(join);
        c->hidden = json_is_true(hidden);
        /* LiveKit tokens often carry "room":"" beside other grants: no room grant. */
        if (room && json_string_length(room) > 0) {
            if (!vs_room_name_valid(json_string_value(room), json_string_length(room)))
                return VS_TOKEN_MALFORMED;
            memcpy(c->room, json_string_value(room), json_string_length(room) + 1);
        }
    }
    json_t *pk = json_object_get(root, "pqPublicKey"), *alg = json_object_get(root, "pqAlgorithm"),
           *pexp = json_object_get(root, "pqKeyExpiry");
    if (pk) {
        if (!json_is_string(pk) || json_string_length(pk) == 0)
            return VS_TOKEN_MALFORMED;
        size_t n = json_string_length(pk);
        uint8_t *scratch = vs_malloc(vs_base64_decoded_max(n) + 1);
        long dl = vs_base64_decode(json_string_value(pk), n, scratch, vs_base64_decoded_max(n) + 1);
        free(scratch);
        if (dl <= 0)
            return VS_TOKEN_MALFORMED;
    }
    if ((alg && (!json_is_string(alg) || json_string_length(alg) == 0)) ||
        (pexp && !json_time(pexp, &c->pq_key_expiry)))
        return VS_TOKEN_MALFORMED;
    if (pk)
        c->pq_public_key = vs_strdup(json_string_value(pk));
    if (alg)
        c->pq_algorithm = vs_strdup(json_string_value(alg));
    return VS_TOKEN_OK;
}

static vs_token_reason_t verify(const vs_token_keys_t *keys, const char *tok, size_t len,
                                int64_t now, vs_token_claims_t *c)
{
    if (keys->n == 0)
        return VS_TOKEN_NO_KEYS;
    if (len == 0 || len > VS_TOKEN_MAX || memchr(tok, '\0', len))
        return VS_TOKEN_MALFORMED;
    const char *dot1 = memchr(tok, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - tok)))
        return VS_TOKEN_MALFORMED;

    char *text = vs_strndup(tok, len);
    vs_token_reason_t why = VS_TOKEN_MALFORMED;
    jwt_t *jwt = NULL;
    json_t *root = NULL, *hroot = NULL;
    char *claims = NULL, *header = NULL;
    /* First pass without a key: libjwt parses but checks no signature; we need "alg" and
     * "iss" to know which secret to try. Nothing from it is trusted yet. */
    if (jwt_decode(&jwt, text, NULL, 0) != 0 || !jwt)
        goto out;
    /* Without a key libjwt reports every algorithm as "none", so read the header itself. */
    header = jwt_get_headers_json(jwt, NULL);
    hroot = header ? json_loads(header, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!json_is_object(hroot))
        goto out;
    json_t *alg = json_object_get(hroot, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0) {
        why = VS_TOKEN_BAD_SIGNATURE;
        goto out;
    }
    claims = jwt_get_grants_json(jwt, NULL);
    root = claims ? json_loads(claims, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!json_is_object(root))
        goto out;
    json_t *iss = json_object_get(root, "iss");
    if (!iss) {
        why = VS_TOKEN_MISSING_CLAIM;
        goto out;
    }
    const vs_token_key_t *k = json_is_string(iss) ? find_key(keys, json_string_value(iss)) : NULL;
    if (!k) {
        why = VS_TOKEN_UNKNOWN_KEY;
        goto out;
    }
    size_t signed_len = (size_t)(dot2 - tok);
    if (!signature_ok(k, tok, signed_len, dot2 + 1, len - signed_len - 1)) {
        why = VS_TOKEN_BAD_SIGNATURE;
        goto out;
    }
    /* Second pass with the key: libjwt's own verification must agree. */
    jwt_free(jwt);
    jwt = NULL;
    if (jwt_decode(&jwt, text, (const unsigned char *)k->secret, (int)strlen(k->secret)) != 0 ||
        !jwt || jwt_get_alg(jwt) != JWT_ALG_HS256) {
        why = VS_TOKEN_BAD_SIGNATURE;
        goto out;
    }
    why = read_claims(root, now, c);
out:
    if (why != VS_TOKEN_OK) {
        vs_token_claims_deinit(c);
        memset(c, 0, sizeof *c);
    }
    json_decref(root);
    json_decref(hroot);
    free(claims);
    free(header);
    jwt_free(jwt);
    OPENSSL_cleanse(text, len);
    free(text);
    return why;
}

int vs_token_verify(const vs_token_keys_t *keys, const char *token, size_t len, int64_t now,
                    vs_token_claims_t *claims, vs_token_reason_t *why)
{
    memset(claims, 0, sizeof *claims);
    *why = verify(keys, token, len, now, claims);
    return *why == VS_TOKEN_OK ? 0 : VS_EINVAL;
}

int vs_token_create(const vs_token_key_t *key, const vs_token_grant_t *g, int64_t now,
                    int64_t valid_for, char **out)
{
    *out = NULL;
    char uid[VS_USERID_MAX + 1];
    if (!g->identity || vs_userid_fold(g->identity, strlen(g->identity), uid) != 0 ||
        (g->room && !vs_room_name_valid(g->room, strlen(g->room))) || valid_for <= 0)
        return VS_EINVAL;
    if (g->pq_public_key) {
        size_t n = strlen(g->pq_public_key);
        uint8_t *scratch = vs_malloc(vs_base64_decoded_max(n) + 1);
        long dl = vs_base64_decode(g->pq_public_key, n, scratch, vs_base64_decoded_max(n) + 1);
        free(scratch);
        if (dl <= 0)
            return VS_EINVAL;
    }
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0)
        return VS_ECRYPTO;
    /* jansson builds the object so that every string is escaped correctly. */
    json_t *body = json_pack("{s:s, s:s, s:I, s:I, s:I}", "iss", key->key, "sub", uid, "nbf",
                             (json_int_t)now, "iat", (json_int_t)now, "exp",
                             (json_int_t)(now + valid_for));
    if (g->room)
        json_object_set_new(body, "video", json_pack("{s:b, s:s}", "roomJoin", 1, "room", g->room));
    if (g->pq_public_key)
        json_object_set_new(body, "pqPublicKey", json_string(g->pq_public_key));
    if (g->pq_algorithm)
        json_object_set_new(body, "pqAlgorithm", json_string(g->pq_algorithm));
    if (g->pq_key_expiry)
        json_object_set_new(body, "pqKeyExpiry", json_integer((json_int_t)g->pq_key_expiry));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    int rc = VS_ECRYPTO;
    if (text && jwt_add_grants_json(jwt, text) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)key->secret,
                    (int)strlen(key->secret)) == 0) {
        char *tok = jwt_encode_str(jwt);
        if (tok) {
            *out = vs_strdup(tok);
            free(tok);
            rc = 0;
        }
    }
    free(text);
    jwt_free(jwt);
    return rc;
}
