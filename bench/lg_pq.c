/* lg_pq.c: the client side of Volli Signal's post-quantum session for the load generator (see
 * lg.h, "Post-quantum sessions", for what it does and what it leaves out to stay cheap): the
 * pool of client key pairs, pq_handshake / pq_handshake_response, the key schedule, and the
 * sealing and opening of `enc` frames. The primitives are the server's own (src/crypto).
 * Never prints keys, shared secrets, signatures or plaintexts; refusals are counted only. */
#include "lg.h"

#include "common/base64.h"
#include "crypto/mlkem.h"
#include "crypto/pqkx.h"
#include "crypto/sign.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define SID_LEN 22 /* 132 bits in base64url: inside the 16..64 the protocol allows */
#define PK_MAX (VS_MLKEM768_EK_LEN + VS_X25519_LEN)
#define CT_MAX (VS_MLKEM768_CT_LEN + VS_X25519_LEN)
#define NONCE_MAX 128

typedef struct pool_key {
    uint8_t pk[PK_MAX]; /* ek, then the X25519 public key for the hybrid */
    uint8_t dk[VS_MLKEM768_DK_LEN];
    uint8_t x_priv[VS_X25519_LEN];
    char *msg; /* the whole pq_handshake text; the session id is patched in at sid_off */
    size_t msg_len, sid_off;
} pool_key_t;

struct lg_pq_conn {
    uint8_t k_tx[VS_PQ_KEY_LEN], k_rx[VS_PQ_KEY_LEN];
    uint64_t seq_tx, seq_rx;
    uint8_t active;    /* frames are sealed */
    uint8_t pending;   /* a pq_handshake is waiting for its response */
    uint8_t need_keys; /* ... and its keys will be derived */
    uint8_t nonce_len;
    uint32_t key; /* pool index of the pending handshake */
    uint64_t t_sent, rtt;
    char sid[SID_LEN + 1];
    char nonce[NONCE_MAX + 1];
};

static struct {
    enum lg_pq_alg alg;
    pool_key_t *pool;
    uint32_t npool, next_key, verify_every, tick;
    int flags;
    size_t pk_len;
    uint8_t server_key[32];
    char server_key_b64[64];
    int have_server_key;
    uint64_t rng;
    lg_pq_stats_t st;
    char *seal_buf, *open_buf;
    uint8_t *tmp;
    size_t seal_cap, open_cap, tmp_cap;
} G;

static const char *const ALG_NAMES[] = {"", "ML-KEM-768", "X25519MLKEM768"};

enum lg_pq_alg lg_pq_alg_parse(const char *name)
{
    for (int a = LG_PQ_MLKEM768; a <= LG_PQ_X25519MLKEM768; a++)
        if (strcmp(name, ALG_NAMES[a]) == 0)
            return (enum lg_pq_alg)a;
    return LG_PQ_NONE;
}

const char *lg_pq_alg_name(enum lg_pq_alg alg)
{
    return alg >= LG_PQ_MLKEM768 && alg <= LG_PQ_X25519MLKEM768 ? ALG_NAMES[alg] : "none";
}

static void grow(void **p, size_t *cap, size_t need)
{
    if (*cap >= need)
        return;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    *p = lg_xrealloc(*p, n);
    *cap = n;
}

void lg_pq_setup(enum lg_pq_alg alg, uint32_t pool_size, uint32_t verify_every, int flags)
{
    if (alg == LG_PQ_NONE)
        return;
    if (pool_size < 1 || pool_size > 4096 || verify_every < 1)
        lg_die("--pq-pool 1..4096 and --verify-every >= 1");
    G.alg = alg;
    G.flags = flags;
    G.verify_every = verify_every;
    G.npool = pool_size;
    G.pk_len = VS_MLKEM768_EK_LEN + (alg == LG_PQ_X25519MLKEM768 ? VS_X25519_LEN : 0);
    if (vs_random_bytes((uint8_t *)&G.rng, sizeof G.rng) != 0 || G.rng == 0)
        G.rng = 0x9e3779b97f4a7c15ull ^ lg_now_ns();
    G.pool = lg_xcalloc(pool_size, sizeof *G.pool);
    char *b64 = lg_xmalloc(vs_base64_encoded_len(PK_MAX) + 1);
    for (uint32_t i = 0; i < pool_size; i++) {
        pool_key_t *k = &G.pool[i];
        if (vs_mlkem768_keygen(k->pk, k->dk) != 0)
            lg_die("ML-KEM-768 key generation failed");
        if (alg == LG_PQ_X25519MLKEM768 &&
            vs_x25519_keygen(k->pk + VS_MLKEM768_EK_LEN, k->x_priv) != 0)
            lg_die("X25519 key generation failed");
        vs_base64_encode(k->pk, G.pk_len, b64);
        size_t cap = strlen(b64) + 256;
        k->msg = lg_xmalloc(cap);
        int n = snprintf(k->msg, cap,
                         "{\"type\":\"pq_handshake\",\"id\":\"h\",\"algorithm\":\"%s\","
                         "\"client_public_key\":\"%s\",\"session_id\":\"",
                         ALG_NAMES[alg], b64);
        k->sid_off = (size_t)n;
        memset(k->msg + n, 'A', SID_LEN);
        memcpy(k->msg + n + SID_LEN, "\"}", 3);
        k->msg_len = (size_t)n + SID_LEN + 2;
    }
    free(b64);
}

void lg_pq_teardown(void)
{
    for (uint32_t i = 0; i < G.npool; i++) {
        OPENSSL_cleanse(G.pool[i].dk, sizeof G.pool[i].dk);
        OPENSSL_cleanse(G.pool[i].x_priv, sizeof G.pool[i].x_priv);
        free(G.pool[i].msg);
    }
    free(G.pool);
    free(G.seal_buf);
    free(G.open_buf);
    free(G.tmp);
    memset(&G, 0, sizeof G);
}

enum lg_pq_alg lg_pq_alg(void)
{
    return G.alg;
}

int lg_pq_flags(void)
{
    return G.flags;
}

const lg_pq_stats_t *lg_pq_stats(void)
{
    return &G.st;
}

static struct lg_pq_conn *conn_state(lg_conn_t *c)
{
    if (!c->pq)
        c->pq = lg_xcalloc(1, sizeof *c->pq);
    return c->pq;
}

int lg_pq_hello(lg_conn_t *c, const char *msg, size_t len)
{
    const char *nonce, *key;
    int nl = lg_json_str(msg, len, "nonce", &nonce);
    int kl = lg_json_str(msg, len, "serverKey", &key);
    if (nl <= 0 || nl > NONCE_MAX || kl <= 0 || kl >= (int)sizeof G.server_key_b64)
        return -1;
    /* The server must offer the algorithm: without it (--pq-enabled false) nothing here works. */
    char want[40];
    int wl = snprintf(want, sizeof want, "\"%s\"", ALG_NAMES[G.alg]);
    if (!memmem(msg, len, want, (size_t)wl))
        return -1;
    if (!G.have_server_key) {
        if (vs_base64_decode(key, (size_t)kl, G.server_key, sizeof G.server_key) != 32)
            return -1;
        memcpy(G.server_key_b64, key, (size_t)kl);
        G.server_key_b64[kl] = 0;
        G.have_server_key = 1;
    } else if ((size_t)kl != strlen(G.server_key_b64) ||
               memcmp(key, G.server_key_b64, (size_t)kl)) {
        return -1; /* one server, one identity key */
    }
    struct lg_pq_conn *p = conn_state(c);
    memcpy(p->nonce, nonce, (size_t)nl);
    p->nonce[nl] = 0;
    p->nonce_len = (uint8_t)nl;
    return 0;
}

const char *lg_pq_nonce(const lg_conn_t *c, int *len)
{
    if (!c->pq || !c->pq->nonce_len)
        return NULL;
    *len = c->pq->nonce_len;
    return c->pq->nonce;
}

static uint64_t xorshift(void)
{
    G.rng ^= G.rng << 13;
    G.rng ^= G.rng >> 7;
    G.rng ^= G.rng << 17;
    return G.rng;
}

void lg_pq_start(lg_conn_t *c, int need_keys)
{
    static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    struct lg_pq_conn *p = conn_state(c);
    p->key = G.next_key;
    G.next_key = G.next_key + 1 == G.npool ? 0 : G.next_key + 1;
    pool_key_t *k = &G.pool[p->key];
    /* Session ids only need to be well-formed and distinct; they are not secrets. */
    for (int i = 0; i < SID_LEN; i++)
        p->sid[i] = B64URL[xorshift() & 63];
    p->sid[SID_LEN] = 0;
    memcpy(k->msg + k->sid_off, p->sid, SID_LEN);
    if (++G.tick >= G.verify_every)
        G.tick = 0;
    p->need_keys = need_keys || (G.flags & LG_PQ_KEEP_KEYS) || G.tick == 0;
    p->pending = 1;
    p->t_sent = lg_now_ns();
    G.st.started++;
    lg_send_text(c, k->msg, k->msg_len);
}

int lg_pq_waiting(const lg_conn_t *c)
{
    return c->pq && c->pq->pending;
}

/* Decodes the string member key of msg (standard base64) into out; returns its length or -1. */
static long member_b64(const char *msg, size_t len, const char *key, uint8_t *out, size_t cap)
{
    const char *v;
    int n = lg_json_str(msg, len, key, &v);
    return n < 0 ? -1 : vs_base64_decode(v, (size_t)n, out, cap);
}

static int member_is(const char *msg, size_t len, const char *key, const char *want)
{
    const char *v;
    int n = lg_json_str(msg, len, key, &v);
    return n >= 0 && (size_t)n == strlen(want) && memcmp(v, want, (size_t)n) == 0;
}

/* The client's half of the key schedule for the pending handshake: k_c2s and k_s2c. */
static int derive(struct lg_pq_conn *p, const uint8_t *ct, size_t ct_len, const uint8_t sig[64],
                  uint8_t k_c2s[VS_PQ_KEY_LEN], uint8_t k_s2c[VS_PQ_KEY_LEN])
{
    pool_key_t *k = &G.pool[p->key];
    uint8_t th[VS_PQ_TH_LEN], ikm[VS_MLKEM768_SS_LEN + VS_X25519_LEN];
    size_t ikm_len = VS_MLKEM768_SS_LEN;
    int rc = -1;
    if (vs_pq_transcript(p->nonce, p->nonce_len, p->sid, SID_LEN, k->pk, G.pk_len, ct, ct_len,
                         th) != 0 ||
        vs_ed25519_verify(G.server_key, th, sizeof th, sig) != 0 ||
        vs_mlkem768_decaps(ikm, ct, k->dk) != 0)
        goto out;
    if (G.alg == LG_PQ_X25519MLKEM768) {
        if (vs_x25519_derive(k->x_priv, ct + VS_MLKEM768_CT_LEN, ikm + VS_MLKEM768_SS_LEN) != 0)
            goto out;
        ikm_len += VS_X25519_LEN;
    }
    rc = vs_pq_derive(th, ikm, ikm_len, k_c2s, k_s2c) == 0 ? 0 : -1;
out:
    OPENSSL_cleanse(ikm, sizeof ikm);
    return rc;
}

int lg_pq_finish(lg_conn_t *c, const char *msg, size_t len)
{
    struct lg_pq_conn *p = c->pq;
    if (!p || !p->pending)
        return -1;
    p->pending = 0;
    p->rtt = lg_now_ns() - p->t_sent;
    const char *type;
    int tl = lg_json_str(msg, len, "type", &type);
    if (tl == 5 && memcmp(type, "error", 5) == 0) {
        G.st.refused++;
        return -1;
    }
    uint8_t ct[CT_MAX + 3], sig[64 + 3];
    size_t ct_want = VS_MLKEM768_CT_LEN + (G.pk_len - VS_MLKEM768_EK_LEN);
    if (!member_is(msg, len, "type", "pq_handshake_response") ||
        !member_is(msg, len, "session_id", p->sid) ||
        !member_is(msg, len, "algorithm", ALG_NAMES[G.alg]) ||
        member_b64(msg, len, "kem_ciphertext", ct, sizeof ct) != (long)ct_want ||
        member_b64(msg, len, "signature", sig, sizeof sig) != 64) {
        G.st.bad_response++;
        return -1;
    }
    G.st.completed++;
    if (!p->need_keys)
        return 0;
    uint8_t k_c2s[VS_PQ_KEY_LEN], k_s2c[VS_PQ_KEY_LEN];
    if (derive(p, ct, ct_want, sig, k_c2s, k_s2c) != 0) {
        G.st.completed--;
        G.st.bad_response++;
        return -1;
    }
    /* A rekey's response came under the old keys (already opened): switch now. */
    memcpy(p->k_tx, k_c2s, sizeof k_c2s);
    memcpy(p->k_rx, k_s2c, sizeof k_s2c);
    OPENSSL_cleanse(k_c2s, sizeof k_c2s);
    OPENSSL_cleanse(k_s2c, sizeof k_s2c);
    p->seq_tx = p->seq_rx = 0;
    p->active = 1;
    G.st.verified++;
    return 1;
}

uint64_t lg_pq_last_rtt_ns(const lg_conn_t *c)
{
    return c->pq ? c->pq->rtt : 0;
}

int lg_pq_active(const lg_conn_t *c)
{
    return c->pq && c->pq->active;
}

int lg_pq_seal(lg_conn_t *c, const char *data, size_t len, const char **frame, size_t *flen)
{
    struct lg_pq_conn *p = c->pq;
    size_t n = vs_pq_frame_len(p->seq_tx, len);
    grow((void **)&G.seal_buf, &G.seal_cap, n + 1);
    grow((void **)&G.tmp, &G.tmp_cap, len + VS_PQ_TAG_LEN);
    if (vs_pq_frame_seal(p->k_tx, p->seq_tx, (const uint8_t *)data, len, G.tmp, G.seal_buf) != 0)
        lg_die("AES-256-GCM sealing failed");
    p->seq_tx++;
    G.st.frames_sealed++;
    *frame = G.seal_buf;
    *flen = n;
    return 0;
}

/* The server writes exactly {"type":"enc","seq":N,"ct":"..."}: that layout is read directly
 * (the generator should not spend a JSON parse per frame); anything else goes through the
 * server's full parser, which is strict about the rest. Returns 0 if handled either way. */
static int open_fast(struct lg_pq_conn *p, const char *f, size_t len, size_t *out_len, int *rc)
{
    static const char head[] = "{\"type\":\"enc\",\"seq\":";
    static const char mid[] = ",\"ct\":\"";
    const size_t hl = sizeof head - 1, ml = sizeof mid - 1;
    if (len < hl + 1 + ml + 2 || memcmp(f, head, hl) != 0 || f[len - 2] != '"' || f[len - 1] != '}')
        return -1;
    size_t i = hl;
    uint64_t seq = 0;
    for (; i < len && f[i] >= '0' && f[i] <= '9' && i - hl < 19; i++)
        seq = seq * 10 + (uint64_t)(f[i] - '0');
    if (i == hl || len - i < ml + 2 || memcmp(f + i, mid, ml) != 0)
        return -1;
    i += ml;
    size_t b64_len = len - 2 - i;
    if (memchr(f + i, '"', b64_len))
        return -1;
    if (seq != p->seq_rx) {
        *rc = -1;
        return 0;
    }
    grow((void **)&G.tmp, &G.tmp_cap, vs_base64_decoded_max(b64_len) + 1);
    long n = vs_base64_decode(f + i, b64_len, G.tmp, G.tmp_cap);
    if (n < VS_PQ_TAG_LEN) {
        *rc = -1;
        return 0;
    }
    *rc = vs_pq_open(p->k_rx, seq, G.tmp, (size_t)n, (uint8_t *)G.open_buf) == 0 ? 0 : -1;
    *out_len = (size_t)n - VS_PQ_TAG_LEN;
    return 0;
}

int lg_pq_open(lg_conn_t *c, const char *frame, size_t len, char **pt, size_t *ptlen)
{
    struct lg_pq_conn *p = c->pq;
    grow((void **)&G.open_buf, &G.open_cap, len + 1);
    int rc = 0;
    size_t n = 0;
    if (open_fast(p, frame, len, &n, &rc) != 0)
        rc = vs_pq_frame_open(p->k_rx, p->seq_rx, frame, len, (uint8_t *)G.open_buf, len, &n) == 0
                 ? 0
                 : -1;
    if (rc != 0) {
        G.st.open_failed++;
        return -1;
    }
    p->seq_rx++;
    G.st.frames_opened++;
    *pt = G.open_buf;
    *ptlen = n;
    return 0;
}

void lg_pq_conn_free(lg_conn_t *c)
{
    if (!c->pq)
        return;
    OPENSSL_cleanse(c->pq, sizeof *c->pq);
    free(c->pq);
    c->pq = NULL;
}

void lg_pq_print(FILE *f)
{
    fprintf(f,
            "\"pq\":{\"algorithm\":\"%s\",\"pool\":%u,\"verify_every\":%u,\"started\":%llu,"
            "\"completed\":%llu,\"verified\":%llu,\"bad_response\":%llu,\"refused\":%llu,"
            "\"open_failed\":%llu,\"frames_sealed\":%llu,\"frames_opened\":%llu}",
            lg_pq_alg_name(G.alg), G.npool, G.verify_every, (unsigned long long)G.st.started,
            (unsigned long long)G.st.completed, (unsigned long long)G.st.verified,
            (unsigned long long)G.st.bad_response, (unsigned long long)G.st.refused,
            (unsigned long long)G.st.open_failed, (unsigned long long)G.st.frames_sealed,
            (unsigned long long)G.st.frames_opened);
}
