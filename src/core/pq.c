/* pq.c: see pq.h. */
#include "core/pq.h"

#include "common/alloc.h"
#include "common/base64.h"
#include "common/error.h"
#include "common/log.h"
#include "core/server_impl.h"
#include "crypto/mlkem.h"
#include "crypto/sign.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define CLOSE_PQ_VIOLATION 4400
#define CLOSE_PQ_REKEY_TIMEOUT 4401
#define SID_MIN 16
#define SID_MAX 64
#define PK_MAX (VS_MLKEM768_EK_LEN + VS_X25519_LEN)
#define CT_MAX (VS_MLKEM768_CT_LEN + VS_X25519_LEN)

static const char *const alg_names[VS_PQ_ALG_COUNT] = {"ML-KEM-768", "X25519MLKEM768"};

const char *vs_pq_alg_name(int alg)
{
    return alg >= 0 && alg < VS_PQ_ALG_COUNT ? alg_names[alg] : "unknown";
}

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static int sid_valid(const char *s, size_t n)
{
    if (n < SID_MIN || n > SID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

static void refuse(const vs_req_t *rq, enum vs_pq_failure why, vs_wire_error_t code,
                   const char *msg)
{
    rq->c->srv->metrics.pq_failures[why]++;
    vs_reply_error(rq, code, msg, NULL);
}

/* Whether the handshake's key matches the token's pqPublicKey: the token names the ML-KEM
 * encapsulation key, which is all of PK for ML-KEM-768 and its first 1184 bytes for the
 * hybrid; a token that holds the whole hybrid key must match all of it. */
static int token_key_matches(const vs_token_claims_t *t, const uint8_t *pk, size_t pk_len)
{
    if (!t || !t->pq_public_key)
        return 1;
    size_t tl = strlen(t->pq_public_key);
    uint8_t *want = vs_malloc(vs_base64_decoded_max(tl) + 1);
    long n = vs_base64_decode(t->pq_public_key, tl, want, vs_base64_decoded_max(tl) + 1);
    int ok = n > 0 && ((size_t)n == pk_len || (size_t)n == VS_MLKEM768_EK_LEN) &&
             (size_t)n <= pk_len && CRYPTO_memcmp(want, pk, (size_t)n) == 0;
    free(want);
    return ok;
}

/* The server's half of the key exchange: ct and the input keying material. */
static int encapsulate(int alg, const uint8_t *pk, uint8_t *ct, uint8_t *ikm, size_t *ikm_len)
{
    int rc = vs_mlkem768_encaps(ct, ikm, pk);
    if (rc != 0)
        return rc;
    *ikm_len = VS_MLKEM768_SS_LEN;
    if (alg != VS_PQ_ALG_X25519MLKEM768)
        return 0;
    rc = vs_x25519_ephemeral(pk + VS_MLKEM768_EK_LEN, ct + VS_MLKEM768_CT_LEN,
                             ikm + VS_MLKEM768_SS_LEN);
    if (rc != 0) {
        OPENSSL_cleanse(ikm, VS_MLKEM768_SS_LEN);
        return VS_EINVAL; /* the client's X25519 key is of small order */
    }
    *ikm_len += VS_X25519_LEN;
    return 0;
}

void vs_pq_handshake(const vs_req_t *rq, json_t *root)
{
    vs_conn_t *c = rq->c;
    vs_server_t *s = c->srv;
    if (!s->cfg->pq_enabled) {
        refuse(rq, VS_PQ_FAIL_BAD_REQUEST, VS_WERR_UNKNOWN_TYPE,
               "post-quantum sessions are disabled on this server");
        return;
    }
    const char *alg_s, *pk_s, *sid;
    size_t pk_len, sid_len;
    if (json_unpack(root, "{s:s, s:s%, s:s%}", "algorithm", &alg_s, "client_public_key", &pk_s,
                    &pk_len, "session_id", &sid, &sid_len) != 0) {
        refuse(rq, VS_PQ_FAIL_BAD_REQUEST, VS_WERR_BAD_REQUEST,
               "\"algorithm\", \"client_public_key\" and \"session_id\" must be strings");
        return;
    }
    int alg = -1;
    for (int a = 0; a < VS_PQ_ALG_COUNT; a++)
        if (strcmp(alg_s, alg_names[a]) == 0)
            alg = a;
    if (alg < 0) {
        refuse(rq, VS_PQ_FAIL_BAD_REQUEST, VS_WERR_BAD_REQUEST,
               "\"algorithm\" must be \"ML-KEM-768\" or \"X25519MLKEM768\"");
        return;
    }
    if (!sid_valid(sid, sid_len)) {
        refuse(rq, VS_PQ_FAIL_BAD_REQUEST, VS_WERR_BAD_REQUEST,
               "\"session_id\" must be 16 to 64 characters of [A-Za-z0-9_-]");
        return;
    }
    size_t want = VS_MLKEM768_EK_LEN + (alg == VS_PQ_ALG_X25519MLKEM768 ? VS_X25519_LEN : 0);
    uint8_t pk[PK_MAX + 3];
    if (vs_base64_decode(pk_s, pk_len, pk, sizeof pk) != (long)want) {
        refuse(rq, VS_PQ_FAIL_BAD_REQUEST, VS_WERR_BAD_REQUEST,
               alg == VS_PQ_ALG_MLKEM768
                   ? "\"client_public_key\" must be the base64 of a 1184-byte ML-KEM-768 key"
                   : "\"client_public_key\" must be the base64 of a 1184-byte ML-KEM-768 key "
                     "followed by a 32-byte X25519 key");
        return;
    }
    if (!token_key_matches(c->token, pk, want)) {
        refuse(rq, VS_PQ_FAIL_KEY_MISMATCH, VS_WERR_PQ_KEY_MISMATCH,
               "the key differs from the access token's pqPublicKey");
        return;
    }
    uint8_t ct[CT_MAX], ikm[VS_MLKEM768_SS_LEN + VS_X25519_LEN], th[VS_PQ_TH_LEN];
    size_t ct_len = VS_MLKEM768_CT_LEN + (want - VS_MLKEM768_EK_LEN), ikm_len = 0;
    int rc = encapsulate(alg, pk, ct, ikm, &ikm_len);
    if (rc == VS_EINVAL) {
        refuse(rq, VS_PQ_FAIL_BAD_KEY, VS_WERR_BAD_REQUEST,
               "\"client_public_key\" is not a valid key (FIPS 203 modulus check, or a "
               "small-order X25519 key)");
        return;
    }
    vs_pq_t next = {.alg = alg};
    uint8_t sig[VS_ED25519_SIGNATURE_LEN];
    if (rc != 0 ||
        vs_pq_transcript(c->nonce, strlen(c->nonce), sid, sid_len, pk, want, ct, ct_len, th) ||
        vs_pq_derive(th, ikm, ikm_len, next.k_in, next.k_out) != 0 ||
        vs_pq_signer_sign(s->signer, th, sizeof th, sig) != 0) {
        OPENSSL_cleanse(ikm, sizeof ikm);
        OPENSSL_cleanse(&next, sizeof next);
        VS_LOG(VS_LOG_ERROR, "pq_handshake_failed", NULL);
        vs_reply_error(rq, VS_WERR_INTERNAL, "the handshake failed on the server", NULL);
        return;
    }
    OPENSSL_cleanse(ikm, sizeof ikm);
    uint64_t expires_at = wall_ms() + (uint64_t)(s->cfg->pq_session_timeout * 1000.0);
    next.expires = vs_server_now(s) + (uint64_t)(s->cfg->pq_session_timeout * 1000.0);

    vs_buf_t *b = &s->scratch;
    b->len = 0;
    vs_buf_puts(b, "{\"type\":\"pq_handshake_response\",\"session_id\":\"");
    vs_buf_append(b, sid, sid_len);
    vs_buf_printf(b, "\",\"algorithm\":\"%s\",\"kem_ciphertext\":\"", alg_names[alg]);
    char *w = vs_buf_reserve(b, vs_base64_encoded_len(ct_len) + 1);
    b->len += vs_base64_encode(ct, ct_len, w);
    vs_buf_printf(b, "\",\"expires_at\":%llu,\"signature\":\"", (unsigned long long)expires_at);
    w = vs_buf_reserve(b, vs_base64_encoded_len(sizeof sig) + 1);
    b->len += vs_base64_encode(sig, sizeof sig, w);
    vs_buf_append(b, "\"", 1);
    /* A rekey's response still travels under the old keys: the switch comes after it. */
    vs_reply_finish(rq, b);

    int rekey = c->pq != NULL;
    if (!c->pq) {
        c->pq = vs_malloc(sizeof *c->pq);
        s->pq_active++;
        s->pq_total++;
    }
    *c->pq = next;
    OPENSSL_cleanse(&next, sizeof next);
    s->metrics.pq_handshakes[alg]++;
    VS_LOG(VS_LOG_DEBUG, rekey ? "pq_rekeyed" : "pq_session", "algorithm", "%s", alg_names[alg],
           NULL);
}

static void violation(vs_conn_t *c, enum vs_pq_failure why, const char *reason)
{
    c->srv->metrics.pq_failures[why]++;
    VS_LOG(VS_LOG_DEBUG, "pq_violation", "reason", "%s", reason, NULL);
    vs_conn_close(c, CLOSE_PQ_VIOLATION, reason);
}

void vs_pq_on_frame(vs_conn_t *c, int opcode, uint8_t *data, size_t len)
{
    vs_pq_t *pq = c->pq;
    if (opcode != VS_WS_OP_TEXT) {
        violation(c, VS_PQ_FAIL_PLAINTEXT, "plaintext frame in a post-quantum session");
        return;
    }
    uint8_t *pt = vs_malloc(len + 1);
    size_t n = 0;
    int rc = vs_pq_frame_open(pq->k_in, pq->seq_in, (const char *)data, len, pt, len, &n);
    if (rc == 0) {
        pq->seq_in++;
        vs_session_on_text(c, pt, n);
    } else if (rc == VS_EMISMATCH) {
        violation(c, VS_PQ_FAIL_BAD_SEQ, "unexpected sequence number");
    } else if (rc == VS_ECRYPTO) {
        violation(c, VS_PQ_FAIL_BAD_TAG, "frame failed to decrypt");
    } else {
        violation(c, VS_PQ_FAIL_PLAINTEXT, "plaintext frame in a post-quantum session");
    }
    OPENSSL_cleanse(pt, len + 1);
    free(pt);
}

void vs_pq_send(vs_conn_t *c, const char *data, size_t len)
{
    vs_pq_t *pq = c->pq;
    vs_server_t *s = c->srv;
    size_t flen = vs_pq_frame_len(pq->seq_out, len);
    char *w = vs_conn_frame(c, VS_WS_OP_TEXT, flen);
    if (!w)
        return;
    vs_buf_t *tmp = &s->pq_scratch;
    uint8_t *ct = (uint8_t *)vs_buf_reserve(tmp, len + VS_PQ_TAG_LEN);
    if (vs_pq_frame_seal(pq->k_out, pq->seq_out, (const uint8_t *)data, len, ct, w) != 0) {
        /* The frame is already queued: it cannot be taken back, so the connection goes. */
        VS_LOG(VS_LOG_ERROR, "pq_seal_failed", NULL);
        vs_conn_doom(c);
        return;
    }
    pq->seq_out++;
}

void vs_pq_sweep(vs_server_t *s)
{
    uint64_t now = vs_server_now(s);
    for (vs_conn_t *c = s->active.head, *next; c; c = next) {
        next = c->next; /* closing moves c to the pending list */
        vs_pq_t *pq = c->pq;
        if (!pq || (c->flags & VS_CONN_DOOMED) || c->state != VS_CONN_WS)
            continue;
        if (!pq->rekey_deadline && now >= pq->expires) {
            static const char msg[] = "{\"type\":\"rekey_required\"}";
            pq->rekey_deadline = now + (uint64_t)(s->cfg->pq_rekey_grace * 1000.0);
            s->pq_expired++;
            vs_conn_send_text(c, msg, sizeof msg - 1);
        } else if (pq->rekey_deadline && now >= pq->rekey_deadline) {
            s->metrics.pq_failures[VS_PQ_FAIL_REKEY_TIMEOUT]++;
            VS_LOG(VS_LOG_DEBUG, "pq_rekey_timeout", NULL);
            vs_conn_close(c, CLOSE_PQ_REKEY_TIMEOUT, "no rekey in time");
        }
    }
}

void vs_pq_free(vs_conn_t *c)
{
    if (!c->pq)
        return;
    OPENSSL_cleanse(c->pq, sizeof *c->pq);
    free(c->pq);
    c->pq = NULL;
    c->srv->pq_active--;
}

void vs_pq_stats_json(const vs_server_t *s, vs_buf_t *out)
{
    vs_buf_printf(out,
                  "{\"active_sessions\":%llu,\"expired_sessions\":%llu,\"total_sessions\":%llu,"
                  "\"algorithm\":\"%s\"}",
                  (unsigned long long)s->pq_active, (unsigned long long)s->pq_expired,
                  (unsigned long long)s->pq_total, vs_pq_alg_name(s->cfg->pq_algorithm));
}

void vs_pq_hello_members(const vs_server_t *s, vs_buf_t *out)
{
    vs_buf_printf(out, ",\"serverKey\":\"%s\"", s->server_key_b64);
    if (!s->cfg->pq_enabled)
        return;
    int first = s->cfg->pq_algorithm;
    vs_buf_printf(out, ",\"pq\":[\"%s\",\"%s\"]", alg_names[first], alg_names[1 - first]);
}
