/* pq.c: the client's side of the post-quantum session (docs/protocol.md, "Post-quantum
 * session"): the handshake after hello (and again, inside the channel, for a rekey), the
 * verification of the server's signature over the transcript hash, and the enc frames.
 *
 * The primitives are the server's pure modules (crypto/pqkx.c, crypto/mlkem.c): the same code
 * on both ends of the wire. Nothing here logs keys, secrets, signatures or plaintexts. */
#include "client_impl.h"

#include "common/base64.h"
#include "common/error.h"
#include "crypto/mlkem.h"
#include "crypto/pqkx.h"
#include "crypto/sign.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define SID_BYTES 18 /* 24 characters of base64url: well inside the server's 16..64 */
#define PK_MAX (VS_MLKEM768_EK_LEN + VS_X25519_LEN)
#define CT_MAX (VS_MLKEM768_CT_LEN + VS_X25519_LEN)

static const char *alg_name(int alg)
{
    return alg == VOLLI_PQ_X25519MLKEM768 ? "X25519MLKEM768" : "ML-KEM-768";
}

/* ---- sending ---- */

static int hold(vl_pq_t *pq, const char *text, size_t len)
{
    if (pq->nheld == pq->held_cap) {
        size_t cap = pq->held_cap ? pq->held_cap * 2 : 8;
        char **h = realloc(pq->held, cap * sizeof *h);
        if (!h)
            return VOLLI_ENOMEM;
        pq->held = h;
        size_t *l = realloc(pq->held_len, cap * sizeof *l);
        if (!l)
            return VOLLI_ENOMEM;
        pq->held_len = l;
        pq->held_cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return VOLLI_ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    pq->held[pq->nheld] = copy;
    pq->held_len[pq->nheld++] = len;
    return 0;
}

/* Seals and sends n texts under the current keys in one write. */
static int seal_send(volli_client_t *c, const char *const *texts, const size_t *lens, size_t n)
{
    vl_pq_t *pq = &c->pq;
    char *frames[4] = {NULL};
    size_t flens[4] = {0};
    size_t done = 0;
    int rc = 0;
    if (n > 4)
        return VOLLI_EINVAL;
    for (; done < n; done++) {
        uint64_t seq = pq->seq_out + done;
        flens[done] = vs_pq_frame_len(seq, lens[done]);
        frames[done] = malloc(flens[done]);
        uint8_t *tmp = malloc(lens[done] + VS_PQ_TAG_LEN);
        if (!frames[done] || !tmp) {
            free(frames[done]);
            free(tmp);
            rc = VOLLI_ENOMEM;
            break;
        }
        int err = vs_pq_frame_seal(pq->k_out, seq, (const uint8_t *)texts[done], lens[done], tmp,
                                   frames[done]);
        OPENSSL_cleanse(tmp, lens[done] + VS_PQ_TAG_LEN);
        free(tmp);
        if (err != 0) {
            free(frames[done]);
            rc = VOLLI_ECRYPTO;
            break;
        }
    }
    if (rc == 0) {
        rc = vl_ws_send_text(c->ws, (const char *const *)frames, flens, n);
        if (rc == 0)
            pq->seq_out += n; /* all or none were queued */
    }
    for (size_t i = 0; i < done; i++)
        free(frames[i]);
    return rc;
}

int vl_send(volli_client_t *c, const char *const *texts, const size_t *lens, size_t n)
{
    vl_pq_t *pq = &c->pq;
    if (!c->ws)
        return VOLLI_ENOTCONN;
    if (!pq->active)
        return vl_ws_send_text(c->ws, texts, lens, n);
    if (pq->pending) {
        /* The server switches keys as soon as it has answered the rekey, so anything sealed
           under the old keys after the handshake would be a violation there: hold it. */
        size_t before = pq->nheld;
        for (size_t i = 0; i < n; i++) {
            int rc = hold(pq, texts[i], lens[i]);
            if (rc != 0) {
                while (pq->nheld > before)
                    free(pq->held[--pq->nheld]);
                return rc;
            }
        }
        return 0;
    }
    return seal_send(c, texts, lens, n);
}

static int flush_held(volli_client_t *c)
{
    vl_pq_t *pq = &c->pq;
    int rc = 0;
    for (size_t i = 0; i < pq->nheld; i++) {
        const char *t = pq->held[i];
        if (rc == 0)
            rc = seal_send(c, &t, &pq->held_len[i], 1);
        free(pq->held[i]);
    }
    pq->nheld = 0;
    return rc;
}

/* ---- the handshake ---- */

static int random_sid(char out[40])
{
    uint8_t raw[SID_BYTES];
    if (vs_random_bytes(raw, sizeof raw) != 0)
        return VOLLI_ECRYPTO;
    size_t n = vs_base64_encode(raw, sizeof raw, out); /* 24 characters, no padding */
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    out[n] = '\0';
    return 0;
}

int vl_pq_handshake(volli_client_t *c)
{
    vl_pq_t *pq = &c->pq;
    int alg = pq->alg;
    if (vs_mlkem768_keygen(pq->pk, pq->dk) != 0)
        return VOLLI_ECRYPTO;
    pq->pk_len = VS_MLKEM768_EK_LEN;
    if (alg == VOLLI_PQ_X25519MLKEM768) {
        if (vs_x25519_keygen(pq->pk + VS_MLKEM768_EK_LEN, pq->xpriv) != 0)
            return VOLLI_ECRYPTO;
        pq->pk_len += VS_X25519_LEN;
    }
    if (random_sid(pq->sid) != 0)
        return VOLLI_ECRYPTO;
    pq->pk_alg = alg;
    vl_request_t *r = vl_req_new(c, R_PQ, NULL, NULL);
    if (!r)
        return VOLLI_ENOMEM;
    size_t cap = 160 + vs_base64_encoded_len(pq->pk_len);
    char *msg = malloc(cap);
    if (!msg) {
        vl_req_free(r);
        return VOLLI_ENOMEM;
    }
    int n = snprintf(msg, cap,
                     "{\"type\":\"pq_handshake\",\"id\":\"%s\",\"algorithm\":\"%s\","
                     "\"session_id\":\"%s\",\"client_public_key\":\"",
                     r->id, alg_name(alg), pq->sid);
    size_t len = (size_t)n + vs_base64_encode(pq->pk, pq->pk_len, msg + n);
    memcpy(msg + len, "\"}", 3);
    len += 2;
    const char *texts[1] = {msg};
    int rc = vl_send(c, texts, &len, 1);
    free(msg);
    if (rc != 0) {
        vl_req_free(r);
        return rc;
    }
    pq->pending = 1;
    vl_req_add(c, r);
    return 0;
}

int vl_pq_on_hello(volli_client_t *c, json_t *hello, const char **why)
{
    vl_pq_t *pq = &c->pq;
    const char *key = json_string_value(json_object_get(hello, "serverKey"));
    json_t *offered = json_object_get(hello, "pq");
    int offers = 0;
    for (size_t i = 0; i < json_array_size(offered); i++) {
        const char *a = json_string_value(json_array_get(offered, i));
        offers |= a && strcmp(a, alg_name(pq->alg)) == 0;
    }
    if (!offers) {
        *why = "the server does not offer this post-quantum key exchange";
        return VOLLI_EPROTO;
    }
    if (pq->trusted)
        return 0; /* the signature check decides; the hello's key is not needed */
    uint8_t raw[32 + 3];
    if (!key || vs_base64_decode(key, strlen(key), raw, sizeof raw) != 32) {
        *why = "the hello has no usable serverKey";
        return VOLLI_EPROTO;
    }
    memcpy(pq->trust, raw, 32);
    pq->trusted = 1;
    vl_log(&c->log, VL_LOG_WARN,
           "no pinned server key: trusting the key %s sent on first use (TOFU)", key);
    return 0;
}

int vl_pq_on_response(volli_client_t *c, json_t *root)
{
    vl_pq_t *pq = &c->pq;
    const char *sid, *alg, *ct64, *sig64;
    size_t ct64_len, sig64_len;
    if (json_unpack(root, "{s:s, s:s, s:s%, s:s%}", "session_id", &sid, "algorithm", &alg,
                    "kem_ciphertext", &ct64, &ct64_len, "signature", &sig64, &sig64_len) != 0 ||
        strcmp(sid, pq->sid) != 0 || strcmp(alg, alg_name(pq->pk_alg)) != 0)
        return VOLLI_EPROTO;
    size_t ct_len = VS_MLKEM768_CT_LEN + (pq->pk_alg == VOLLI_PQ_X25519MLKEM768 ? 32 : 0);
    uint8_t ct[CT_MAX + 3], sig[64 + 3], th[VS_PQ_TH_LEN];
    if (vs_base64_decode(ct64, ct64_len, ct, sizeof ct) != (long)ct_len ||
        vs_base64_decode(sig64, sig64_len, sig, sizeof sig) != 64)
        return VOLLI_EPROTO;
    if (vs_pq_transcript(c->nonce, strlen(c->nonce), pq->sid, strlen(pq->sid), pq->pk, pq->pk_len,
                         ct, ct_len, th) != 0)
        return VOLLI_ECRYPTO;
    if (vs_ed25519_verify(pq->trust, th, sizeof th, sig) != 0)
        return VOLLI_ECRYPTO;
    uint8_t ikm[VS_MLKEM768_SS_LEN + VS_X25519_LEN];
    size_t ikm_len = VS_MLKEM768_SS_LEN;
    int rc = vs_mlkem768_decaps(ikm, ct, pq->dk) != 0 ? VOLLI_EPROTO : 0;
    if (rc == 0 && pq->pk_alg == VOLLI_PQ_X25519MLKEM768) {
        if (vs_x25519_derive(pq->xpriv, ct + VS_MLKEM768_CT_LEN, ikm + VS_MLKEM768_SS_LEN) != 0)
            rc = VOLLI_EPROTO;
        ikm_len += VS_X25519_LEN;
    }
    uint8_t k_c2s[VS_PQ_KEY_LEN], k_s2c[VS_PQ_KEY_LEN];
    if (rc == 0 && vs_pq_derive(th, ikm, ikm_len, k_c2s, k_s2c) != 0)
        rc = VOLLI_ECRYPTO;
    OPENSSL_cleanse(ikm, sizeof ikm);
    OPENSSL_cleanse(pq->dk, sizeof pq->dk);
    OPENSSL_cleanse(pq->xpriv, sizeof pq->xpriv);
    if (rc != 0)
        return rc;
    memcpy(pq->k_out, k_c2s, sizeof k_c2s);
    memcpy(pq->k_in, k_s2c, sizeof k_s2c);
    OPENSSL_cleanse(k_c2s, sizeof k_c2s);
    OPENSSL_cleanse(k_s2c, sizeof k_s2c);
    int rekey = pq->active;
    pq->seq_out = pq->seq_in = 0;
    pq->active = 1;
    pq->pending = 0;
    vl_log(&c->log, VL_LOG_DEBUG, "post-quantum session %s (%s)", rekey ? "rekeyed" : "set up",
           alg_name(pq->pk_alg));
    return flush_held(c);
}

/* ---- receiving ---- */

int vl_pq_open(volli_client_t *c, const char *text, size_t len, char **pt, size_t *pt_len)
{
    vl_pq_t *pq = &c->pq;
    if (pq->pt_cap < len + 1) {
        uint8_t *p = malloc(len + 1);
        if (!p)
            return VOLLI_ENOMEM;
        if (pq->pt) {
            OPENSSL_cleanse(pq->pt, pq->pt_cap);
            free(pq->pt);
        }
        pq->pt = p;
        pq->pt_cap = len + 1;
    }
    size_t n = 0;
    int rc = vs_pq_frame_open(pq->k_in, pq->seq_in, text, len, pq->pt, len, &n);
    if (rc == VS_ENOMEM)
        return VOLLI_ENOMEM;
    if (rc != 0)
        return VOLLI_EPROTO;
    pq->seq_in++;
    pq->pt[n] = '\0';
    *pt = (char *)pq->pt;
    *pt_len = n;
    return 0;
}

/* ---- life cycle ---- */

void vl_pq_reset(volli_client_t *c)
{
    vl_pq_t *pq = &c->pq;
    for (size_t i = 0; i < pq->nheld; i++)
        free(pq->held[i]);
    pq->nheld = 0;
    pq->active = pq->pending = 0;
    pq->seq_out = pq->seq_in = 0;
    OPENSSL_cleanse(pq->k_out, sizeof pq->k_out);
    OPENSSL_cleanse(pq->k_in, sizeof pq->k_in);
    OPENSSL_cleanse(pq->dk, sizeof pq->dk);
    OPENSSL_cleanse(pq->xpriv, sizeof pq->xpriv);
    if (pq->pt)
        OPENSSL_cleanse(pq->pt, pq->pt_cap);
}

void vl_pq_free(volli_client_t *c)
{
    vl_pq_t *pq = &c->pq;
    vl_pq_reset(c);
    free(pq->held);
    free(pq->held_len);
    free(pq->pt);
    OPENSSL_cleanse(pq, sizeof *pq);
}
