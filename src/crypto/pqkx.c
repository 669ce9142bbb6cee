/* pqkx.c: see pqkx.h. */
#include "crypto/pqkx.h"

#include "common/base64.h"
#include "common/error.h"
#include "crypto/sign.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE "server.key"
/* A PEM Ed25519 private key is about 119 bytes; anything much larger is not ours. */
#define KEY_FILE_MAX 4096

int vs_pq_transcript(const char *nonce, size_t nonce_len, const char *sid, size_t sid_len,
                     const uint8_t *pk, size_t pk_len, const uint8_t *ct, size_t ct_len,
                     uint8_t th[VS_PQ_TH_LEN])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, VS_PQ_TH_LABEL, strlen(VS_PQ_TH_LABEL)) == 1 &&
             EVP_DigestUpdate(md, nonce, nonce_len) == 1 &&
             EVP_DigestUpdate(md, sid, sid_len) == 1 && EVP_DigestUpdate(md, pk, pk_len) == 1 &&
             EVP_DigestUpdate(md, ct, ct_len) == 1 && EVP_DigestFinal_ex(md, th, &n) == 1 &&
             n == VS_PQ_TH_LEN;
    EVP_MD_CTX_free(md);
    return ok ? 0 : VS_ECRYPTO;
}

static int hkdf(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                const char *info, uint8_t out[VS_PQ_KEY_LEN])
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
        OSSL_PARAM_construct_end(),
    };
    int ok = ctx && EVP_KDF_derive(ctx, out, VS_PQ_KEY_LEN, params) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    if (!ok)
        OPENSSL_cleanse(out, VS_PQ_KEY_LEN);
    return ok ? 0 : VS_ECRYPTO;
}

int vs_pq_derive(const uint8_t th[VS_PQ_TH_LEN], const uint8_t *ikm, size_t ikm_len,
                 uint8_t k_c2s[VS_PQ_KEY_LEN], uint8_t k_s2c[VS_PQ_KEY_LEN])
{
    /* HKDF in extract-and-expand mode computes the same PRK for both labels. */
    if (hkdf(th, VS_PQ_TH_LEN, ikm, ikm_len, "volli c2s", k_c2s) != 0 ||
        hkdf(th, VS_PQ_TH_LEN, ikm, ikm_len, "volli s2c", k_s2c) != 0) {
        OPENSSL_cleanse(k_c2s, VS_PQ_KEY_LEN);
        OPENSSL_cleanse(k_s2c, VS_PQ_KEY_LEN);
        return VS_ECRYPTO;
    }
    return 0;
}

int vs_x25519_keygen(uint8_t pub[VS_X25519_LEN], uint8_t priv[VS_X25519_LEN])
{
    if (vs_random_bytes(priv, VS_X25519_LEN) != 0)
        return VS_ECRYPTO;
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, VS_X25519_LEN);
    size_t n = VS_X25519_LEN;
    int ok = pk && EVP_PKEY_get_raw_public_key(pk, pub, &n) == 1 && n == VS_X25519_LEN;
    EVP_PKEY_free(pk);
    if (!ok)
        OPENSSL_cleanse(priv, VS_X25519_LEN);
    return ok ? 0 : VS_ECRYPTO;
}

int vs_x25519_derive(const uint8_t priv[VS_X25519_LEN], const uint8_t peer[VS_X25519_LEN],
                     uint8_t ss[VS_X25519_LEN])
{
    EVP_PKEY *me = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, VS_X25519_LEN);
    EVP_PKEY *them = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, VS_X25519_LEN);
    EVP_PKEY_CTX *ctx = me ? EVP_PKEY_CTX_new(me, NULL) : NULL;
    size_t n = VS_X25519_LEN;
    /* OpenSSL fails the derivation when the result is all zero (a small-order peer key). */
    int ok = them && ctx && EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_derive_set_peer(ctx, them) == 1 && EVP_PKEY_derive(ctx, ss, &n) == 1 &&
             n == VS_X25519_LEN;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(them);
    EVP_PKEY_free(me);
    if (!ok)
        OPENSSL_cleanse(ss, VS_X25519_LEN);
    return ok ? 0 : VS_ECRYPTO;
}

int vs_x25519_ephemeral(const uint8_t peer[VS_X25519_LEN], uint8_t pub[VS_X25519_LEN],
                        uint8_t ss[VS_X25519_LEN])
{
    EVP_PKEY *me = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    EVP_PKEY *them = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, VS_X25519_LEN);
    EVP_PKEY_CTX *ctx = me ? EVP_PKEY_CTX_new(me, NULL) : NULL;
    size_t n = VS_X25519_LEN, p = VS_X25519_LEN;
    int ok = them && ctx && EVP_PKEY_get_raw_public_key(me, pub, &p) == 1 && p == VS_X25519_LEN &&
             EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, them) == 1 &&
             EVP_PKEY_derive(ctx, ss, &n) == 1 && n == VS_X25519_LEN;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(them);
    EVP_PKEY_free(me);
    if (!ok)
        OPENSSL_cleanse(ss, VS_X25519_LEN);
    return ok ? 0 : VS_ECRYPTO;
}

struct vs_pq_signer {
    EVP_PKEY *pk;
};

vs_pq_signer_t *vs_pq_signer_new(const uint8_t priv[32])
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, 32);
    if (!pk)
        return NULL;
    vs_pq_signer_t *s = malloc(sizeof *s);
    if (!s) {
        EVP_PKEY_free(pk);
        return NULL;
    }
    s->pk = pk;
    return s;
}

int vs_pq_signer_sign(const vs_pq_signer_t *s, const uint8_t *msg, size_t len, uint8_t sig[64])
{
    static const uint8_t empty[1];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t siglen = 64;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->pk) == 1 &&
             EVP_DigestSign(ctx, sig, &siglen, msg ? msg : empty, len) == 1 && siglen == 64;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : VS_ECRYPTO;
}

void vs_pq_signer_free(vs_pq_signer_t *s)
{
    if (!s)
        return;
    EVP_PKEY_free(s->pk);
    free(s);
}

static void make_iv(uint64_t seq, uint8_t iv[12])
{
    memset(iv, 0, 4);
    for (int i = 0; i < 8; i++)
        iv[4 + i] = (uint8_t)(seq >> (56 - 8 * i));
}

static int gcm(int enc, const uint8_t key[VS_PQ_KEY_LEN], uint64_t seq, const uint8_t *in,
               size_t len, uint8_t *out, uint8_t tag[VS_PQ_TAG_LEN])
{
    if (len > INT32_MAX)
        return VS_ECRYPTO;
    uint8_t iv[12];
    make_iv(seq, iv);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    int ok =
        ctx && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv, enc) == 1 &&
        EVP_CipherUpdate(ctx, NULL, &n, (const uint8_t *)VS_PQ_AAD, (int)strlen(VS_PQ_AAD)) == 1 &&
        EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1 &&
        (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, VS_PQ_TAG_LEN, tag) == 1) &&
        EVP_CipherFinal_ex(ctx, out + n, &fin) == 1 &&
        (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, VS_PQ_TAG_LEN, tag) == 1);
    EVP_CIPHER_CTX_free(ctx);
    if (!ok && len)
        OPENSSL_cleanse(out, len);
    return ok ? 0 : VS_ECRYPTO;
}

int vs_pq_seal(const uint8_t key[VS_PQ_KEY_LEN], uint64_t seq, const uint8_t *in, size_t len,
               uint8_t *out)
{
    return gcm(1, key, seq, in, len, out, out + len);
}

int vs_pq_open(const uint8_t key[VS_PQ_KEY_LEN], uint64_t seq, const uint8_t *in, size_t len,
               uint8_t *out)
{
    if (len < VS_PQ_TAG_LEN)
        return VS_ECRYPTO;
    uint8_t tag[VS_PQ_TAG_LEN];
    memcpy(tag, in + len - VS_PQ_TAG_LEN, VS_PQ_TAG_LEN);
    return gcm(0, key, seq, in, len - VS_PQ_TAG_LEN, out, tag);
}

#define FRAME_HEAD "{\"type\":\"enc\",\"seq\":"

size_t vs_pq_frame_len(uint64_t seq, size_t len)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)seq);
    return strlen(FRAME_HEAD) + (size_t)n + strlen(",\"ct\":\"") +
           vs_base64_encoded_len(len + VS_PQ_TAG_LEN) + strlen("\"}");
}

int vs_pq_frame_seal(const uint8_t key[VS_PQ_KEY_LEN], uint64_t seq, const uint8_t *pt, size_t len,
                     uint8_t *tmp, char *out)
{
    if (vs_pq_seal(key, seq, pt, len, tmp) != 0)
        return VS_ECRYPTO;
    int n = sprintf(out, FRAME_HEAD "%llu,\"ct\":\"", (unsigned long long)seq);
    /* The encoder NUL-terminates; that byte is then overwritten by the closing quote. */
    size_t b = vs_base64_encode(tmp, len + VS_PQ_TAG_LEN, out + n);
    memcpy(out + n + b, "\"}", 2);
    return 0;
}

/* The form every Volli client writes, {"type":"enc","seq":N,"ct":"BASE64"}, read without a
 * JSON parser (jansson took 40% of an encrypted relay). Only texts that jansson would read the
 * same way match: no whitespace, no escapes in ct, N of at most 18 digits without a leading
 * zero. Anything else goes through jansson, so what is accepted does not change. */
static int canonical(const char *t, size_t len, uint64_t *seq, const char **ct, size_t *ctlen)
{
    static const char pre[] = "{\"type\":\"enc\",\"seq\":", mid[] = ",\"ct\":\"";
    size_t i = sizeof pre - 1, d = 0;
    uint64_t v = 0;
    if (len < i || memcmp(t, pre, i) != 0)
        return 0;
    for (; i < len && t[i] >= '0' && t[i] <= '9'; i++, d++) {
        if (d == 18)
            return 0;
        v = v * 10 + (uint64_t)(t[i] - '0');
    }
    if (d == 0 || (d > 1 && t[i - d] == '0'))
        return 0;
    if (len - i < sizeof mid - 1 || memcmp(t + i, mid, sizeof mid - 1) != 0)
        return 0;
    i += sizeof mid - 1;
    size_t start = i;
    while (i < len && t[i] != '"' && t[i] != '\\' && t[i] >= 0x20 && t[i] < 0x7f)
        i++;
    if (i + 2 != len || t[i] != '"' || t[i + 1] != '}')
        return 0;
    *seq = v;
    *ct = t + start;
    *ctlen = i - start;
    return 1;
}

int vs_pq_frame_is_canonical(const char *text, size_t len)
{
    uint64_t seq;
    const char *ct;
    size_t n;
    return canonical(text, len, &seq, &ct, &n);
}

int vs_pq_frame_open(const uint8_t key[VS_PQ_KEY_LEN], uint64_t seq, const char *text, size_t len,
                     uint8_t *out, size_t cap, size_t *out_len)
{
    json_t *root = NULL;
    const char *ct64;
    size_t clen;
    uint64_t got;
    int rc = VS_EPROTO;
    uint8_t *ct = NULL;
    if (!canonical(text, len, &got, &ct64, &clen)) {
        root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
        json_t *type = json_object_get(root, "type"), *jseq = json_object_get(root, "seq");
        json_t *jct = json_object_get(root, "ct");
        if (!json_is_string(type) || strcmp(json_string_value(type), "enc") != 0 ||
            !json_is_integer(jseq) || !json_is_string(jct))
            goto out;
        if (json_integer_value(jseq) < 0) {
            rc = VS_EMISMATCH;
            goto out;
        }
        got = (uint64_t)json_integer_value(jseq);
        ct64 = json_string_value(jct);
        clen = json_string_length(jct);
    }
    if (got != seq) {
        rc = VS_EMISMATCH;
        goto out;
    }
    ct = malloc(vs_base64_decoded_max(clen) + 1);
    if (!ct) {
        rc = VS_ENOMEM;
        goto out;
    }
    long n = vs_base64_decode(ct64, clen, ct, vs_base64_decoded_max(clen) + 1);
    if (n < VS_PQ_TAG_LEN)
        goto out;
    if ((size_t)n - VS_PQ_TAG_LEN > cap) {
        rc = VS_ETOOBIG;
        goto out;
    }
    rc = vs_pq_open(key, seq, ct, (size_t)n, out);
    if (rc == 0)
        *out_len = (size_t)n - VS_PQ_TAG_LEN;
out:
    free(ct);
    json_decref(root);
    return rc;
}

static int read_key(const char *path, uint8_t priv[32], uint8_t pub[32], char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read the server key %s: %s", path, strerror(errno));
        return VS_EIO;
    }
    EVP_PKEY *pk = PEM_read_PrivateKey(f, NULL, NULL, (void *)"");
    fclose(f);
    size_t n = 32, m = 32;
    int ok = pk && EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519 &&
             EVP_PKEY_get_raw_private_key(pk, priv, &n) == 1 && n == 32 &&
             EVP_PKEY_get_raw_public_key(pk, pub, &m) == 1 && m == 32;
    EVP_PKEY_free(pk);
    if (!ok) {
        OPENSSL_cleanse(priv, 32);
        snprintf(err, errlen, "the server key %s is not a PEM Ed25519 private key", path);
        return VS_ECRYPTO;
    }
    return 0;
}

static int create_key(const char *path, char *err, size_t errlen)
{
    uint8_t seed[32], pub[32];
    if (vs_ed25519_keygen(pub, seed) != 0) {
        snprintf(err, errlen, "cannot generate the server key");
        return VS_ECRYPTO;
    }
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
    OPENSSL_cleanse(seed, sizeof seed);
    BIO *mem = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long len = 0;
    if (!pk || !mem || PEM_write_bio_PrivateKey(mem, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
        (len = BIO_get_mem_data(mem, &pem)) <= 0) {
        EVP_PKEY_free(pk);
        BIO_free(mem);
        snprintf(err, errlen, "cannot encode the server key");
        return VS_ECRYPTO;
    }
    EVP_PKEY_free(pk);
    /* Written under a temporary name and renamed, so a crash never leaves half a key. */
    char tmp[4096 + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, pem, (size_t)len) != (ssize_t)len || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write the server key %s: %s", tmp, strerror(errno));
        rc = VS_EIO;
    }
    OPENSSL_cleanse(pem, (size_t)len);
    BIO_free(mem);
    if (fd >= 0)
        close(fd);
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot create the server key %s: %s", path, strerror(errno));
        rc = VS_EIO;
    }
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int vs_server_key_load(const char *dir, uint8_t priv[32], uint8_t pub[32], char *err, size_t errlen)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, KEY_FILE) >= sizeof path) {
        snprintf(err, errlen, "the data directory path is too long");
        return VS_EIO;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "cannot read the server key %s: %s", path, strerror(errno));
            return VS_EIO;
        }
        int rc = create_key(path, err, errlen);
        if (rc != 0)
            return rc;
    } else if (!S_ISREG(st.st_mode) || st.st_size > KEY_FILE_MAX) {
        snprintf(err, errlen, "the server key %s is not a PEM Ed25519 private key", path);
        return VS_ECRYPTO;
    }
    return read_key(path, priv, pub, err, errlen);
}
