/* lg_proto.c: what the generator says on an open WebSocket before the scenario takes over:
 * Volli Signal's hello -> register (Ed25519 over "volli-register\n" nonce "\n" userId) ->
 * registered, or PeerJS's OPEN; and the relay messages of both protocols. */
#include "lg.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static EVP_PKEY *key;
static EVP_MD_CTX *sign_ctx;
static char pub_b64[64];
static unsigned long reported_errors;

void lg_proto_init(void)
{
    if (key)
        return;
    key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    sign_ctx = EVP_MD_CTX_new();
    unsigned char raw[32];
    size_t n = sizeof raw;
    if (!key || !sign_ctx || EVP_PKEY_get_raw_public_key(key, raw, &n) != 1 || n != 32)
        lg_die("cannot create an Ed25519 key with OpenSSL");
    EVP_EncodeBlock((unsigned char *)pub_b64, raw, 32);
}

void lg_proto_deinit(void)
{
    EVP_MD_CTX_free(sign_ctx);
    EVP_PKEY_free(key);
    sign_ctx = NULL;
    key = NULL;
}

void lg_proto_path(enum lg_proto proto, const char *uid, char *out, size_t n)
{
    if (proto == LG_PROTO_PEERJS)
        snprintf(out, n, "/peerjs?key=peerjs&id=%s&token=t%s", uid, uid);
    else
        snprintf(out, n, "/");
}

void lg_uid(char *out, const char *tag, char role, uint32_t idx)
{
    snprintf(out, LG_UID_MAX, "%s%c%u", tag, role, idx);
}

int lg_json_str(const char *msg, size_t len, const char *k, const char **val)
{
    char pat[48];
    int pl = snprintf(pat, sizeof pat, "\"%s\":\"", k);
    if (pl <= 0 || (size_t)pl >= sizeof pat)
        return -1;
    const char *p = memmem(msg, len, pat, (size_t)pl);
    if (!p)
        return -1;
    p += pl;
    const char *q = memchr(p, '"', len - (size_t)(p - msg));
    if (!q)
        return -1;
    *val = p;
    return (int)(q - p);
}

static int type_is(const char *msg, size_t len, const char *want)
{
    const char *v;
    int n = lg_json_str(msg, len, "type", &v);
    return n >= 0 && (size_t)n == strlen(want) && memcmp(v, want, (size_t)n) == 0;
}

/* The first few refusals go to stderr (codes only: never keys or signatures). */
static void report_refusal(const lg_conn_t *c, const char *msg, size_t len)
{
    if (++reported_errors > 5)
        return;
    const char *code;
    int n = lg_json_str(msg, len, "code", &code);
    if (n < 0)
        n = lg_json_str(msg, len, "msg", &code);
    fprintf(stderr, "loadgen: %s refused: %.*s\n", c->uid, n < 0 ? 7 : n, n < 0 ? "unknown" : code);
}

static int send_register(lg_conn_t *c, const char *nonce, int nlen);

/* The post-quantum path: hello -> pq_handshake -> pq_handshake_response, then (relay
 * scenarios) register inside the session, or ready at once (pq-handshake). */
static enum lg_sess_result pq_feed(lg_conn_t *c, const char *msg, size_t len)
{
    if (c->sess == LG_SESS_NONE && type_is(msg, len, "hello")) {
        if (lg_pq_hello(c, msg, len) != 0) {
            if (++reported_errors <= 5)
                fprintf(stderr, "loadgen: %s: hello without nonce, serverKey or %s\n", c->uid,
                        lg_pq_alg_name(lg_pq_alg()));
            return LG_SESS_FAILED;
        }
        lg_pq_start(c, lg_pq_flags() & LG_PQ_REGISTER);
        c->sess = LG_SESS_PQ;
        return LG_SESS_CONSUMED;
    }
    if (c->sess == LG_SESS_PQ &&
        (type_is(msg, len, "pq_handshake_response") || type_is(msg, len, "error"))) {
        if (lg_pq_finish(c, msg, len) < 0) {
            if (type_is(msg, len, "error"))
                report_refusal(c, msg, len);
            return LG_SESS_FAILED;
        }
        if (!(lg_pq_flags() & LG_PQ_REGISTER)) {
            c->sess = LG_SESS_READY;
            return LG_SESS_NOW_READY;
        }
        int nl = 0;
        const char *nonce = lg_pq_nonce(c, &nl);
        if (!nonce || send_register(c, nonce, nl) != 0)
            return LG_SESS_FAILED;
        c->sess = LG_SESS_REGISTERING;
        return LG_SESS_CONSUMED;
    }
    return LG_SESS_PASS;
}

static int send_register(lg_conn_t *c, const char *nonce, int nlen)
{
    char text[256];
    int tl = snprintf(text, sizeof text, "volli-register\n%.*s\n%s", nlen, nonce, c->uid);
    if (tl <= 0 || (size_t)tl >= sizeof text)
        return -1;
    unsigned char sig[64];
    size_t slen = sizeof sig;
    if (EVP_DigestSignInit(sign_ctx, NULL, NULL, NULL, key) != 1 ||
        EVP_DigestSign(sign_ctx, sig, &slen, (const unsigned char *)text, (size_t)tl) != 1 ||
        slen != 64)
        lg_die("Ed25519 signing failed");
    char sig_b64[96], msg[512];
    EVP_EncodeBlock((unsigned char *)sig_b64, sig, 64);
    int ml = snprintf(msg, sizeof msg,
                      "{\"type\":\"register\",\"id\":\"r\",\"userId\":\"%s\",\"publicKey\":\"%s\","
                      "\"signature\":\"%s\"}",
                      c->uid, pub_b64, sig_b64);
    c->t_register = lg_now_ns();
    lg_send_text(c, msg, (size_t)ml);
    return 0;
}

enum lg_sess_result lg_sess_feed(lg_conn_t *c, const char *msg, size_t len)
{
    if (c->sess == LG_SESS_READY)
        return LG_SESS_PASS;
    if (c->loop->proto == LG_PROTO_PEERJS) {
        if (type_is(msg, len, "OPEN")) {
            c->sess = LG_SESS_READY;
            return LG_SESS_NOW_READY;
        }
        if (type_is(msg, len, "ERROR") || type_is(msg, len, "ID-TAKEN")) {
            report_refusal(c, msg, len);
            return LG_SESS_FAILED;
        }
        return LG_SESS_CONSUMED;
    }
    if (lg_pq_alg() != LG_PQ_NONE) {
        enum lg_sess_result r = pq_feed(c, msg, len);
        if (r != LG_SESS_PASS)
            return r;
    }
    if (c->sess == LG_SESS_NONE && type_is(msg, len, "hello")) {
        const char *nonce;
        int nl = lg_json_str(msg, len, "nonce", &nonce);
        if (nl <= 0 || nl > 128 || send_register(c, nonce, nl) != 0)
            return LG_SESS_FAILED;
        c->sess = LG_SESS_REGISTERING;
        return LG_SESS_CONSUMED;
    }
    if (c->sess == LG_SESS_REGISTERING && type_is(msg, len, "registered")) {
        c->sess = LG_SESS_READY;
        return LG_SESS_NOW_READY;
    }
    if (type_is(msg, len, "error")) {
        report_refusal(c, msg, len);
        return LG_SESS_FAILED;
    }
    return LG_SESS_CONSUMED;
}

void lg_sess_heartbeat(lg_conn_t *c)
{
    static const char hb[] = "{\"type\":\"HEARTBEAT\"}";
    if (c->loop->proto == LG_PROTO_PEERJS && c->sess == LG_SESS_READY)
        lg_send_text(c, hb, sizeof hb - 1);
}

/* A plausible SDP body, JSON-escaped; repeated to pad a message to the size asked for. */
static const char SDP[] =
    "v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\n"
    "a=group:BUNDLE 0\\r\\na=msid-semantic: WMS\\r\\nm=application 9 UDP/DTLS/SCTP "
    "webrtc-datachannel\\r\\nc=IN IP4 0.0.0.0\\r\\na=ice-ufrag:8hhY\\r\\na=ice-pwd:"
    "asd88fgpdd777uzjYhagZg\\r\\na=fingerprint:sha-256 D1:2C:BE:AD:C4:F6:64:5C:25:16:11:9C:"
    "AF:E7:0F:73:79:36:4E:9C:1E:15:54:39:0C:06:8B:ED:96:86:00:39\\r\\na=setup:actpass\\r\\n"
    "a=mid:0\\r\\na=sctp-port:5000\\r\\n";

size_t lg_relay_template(enum lg_proto proto, const char *to, size_t size, char *buf, size_t cap,
                         size_t *seq_off, size_t *ts_off)
{
    int n = proto == LG_PROTO_PEERJS
                ? snprintf(buf, cap, "{\"type\":\"OFFER\",\"dst\":\"%s\",\"payload\":", to)
                : snprintf(buf, cap, "{\"type\":\"offer\",\"to\":\"%s\",\"offer\":", to);
    int s = snprintf(buf + n, cap - (size_t)n, "{\"type\":\"offer\",\"seq\":\"");
    *seq_off = (size_t)(n + s);
    n += s;
    memset(buf + n, '0', LG_SEQ_DIGITS);
    n += LG_SEQ_DIGITS;
    s = snprintf(buf + n, cap - (size_t)n, "\",\"ts\":\"");
    *ts_off = (size_t)(n + s);
    n += s;
    memset(buf + n, '0', LG_TS_DIGITS);
    n += LG_TS_DIGITS;
    n += snprintf(buf + n, cap - (size_t)n, "\",\"sdp\":\"");
    static const char tail[] = "\"}}";
    size_t room = size > (size_t)n + sizeof tail - 1 ? size - (size_t)n - (sizeof tail - 1) : 0;
    if ((size_t)n + room + sizeof tail > cap)
        lg_die("relay message of %zu bytes does not fit %zu", size, cap);
    for (size_t i = 0; i < room; i++)
        buf[n + i] = SDP[i % (sizeof SDP - 1)];
    /* Never end on half an escape. */
    if (room > 0 && buf[n + room - 1] == '\\')
        buf[n + room - 1] = 'x';
    n += (int)room;
    memcpy(buf + n, tail, sizeof tail);
    return (size_t)n + sizeof tail - 1;
}

int lg_relay_parse(const char *msg, size_t len, uint64_t *seq, uint64_t *ts)
{
    static const char sk[] = "\"seq\":\"", tk[] = "\"ts\":\"";
    const char *p = memmem(msg, len, sk, sizeof sk - 1);
    if (!p || (size_t)(msg + len - p) < sizeof sk - 1 + LG_SEQ_DIGITS + sizeof tk + LG_TS_DIGITS)
        return -1;
    p += sizeof sk - 1;
    *seq = lg_get_digits(p, LG_SEQ_DIGITS);
    p += LG_SEQ_DIGITS;
    const char *q = memmem(p, (size_t)(msg + len - p), tk, sizeof tk - 1);
    if (!q || (size_t)(msg + len - q) < sizeof tk - 1 + LG_TS_DIGITS)
        return -1;
    *ts = lg_get_digits(q + sizeof tk - 1, LG_TS_DIGITS);
    return 0;
}
