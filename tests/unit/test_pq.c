/* Tests for crypto/pqkx, the primitives of the post-quantum session: the transcript hash and
 * HKDF key schedule against a fixed vector (pinned from Python's hashlib/hmac and recomputed
 * here with OpenSSL's one-shot SHA256/HMAC), AES-256-GCM frames against a vector from Python's
 * `cryptography` and the test's own EVP calls, enc frame parsing and sequence numbers, X25519
 * (RFC 7748), a whole handshake on both sides, and the server identity key file. */
#include "common/base64.h"
#include "common/error.h"
#include "crypto/mlkem.h"
#include "crypto/pqkx.h"
#include "crypto/sign.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

static void unhex(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* The fixed vector: hybrid-sized PK and CT with simple byte patterns. */
static const char NONCE[] = "AAECAwQFBgcICQoLDA0ODw";
static const char SID[] = "0123456789abcdefXYZ_-";
static const char TH_HEX[] = "d944837211c1c60e3f2a4902ca7fcb0dd8e712daec1c0383e42f2bc128cb7814";
static const char C2S_HEX[] = "37c1fc64027f29890c3e27053458c7f5f9350696ec8c08ffb9263dea6d5471c9";
static const char S2C_HEX[] = "53b4c5ce925f0dea6a994bf9fb35db65d0dcbe03bf5c33355816e92b80465e2f";

static void fill_vector(uint8_t pk[1216], uint8_t ct[1120], uint8_t ikm[64])
{
    for (size_t i = 0; i < 1216; i++)
        pk[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < 1120; i++)
        ct[i] = (uint8_t)(i * 13 + 5);
    for (size_t i = 0; i < 64; i++)
        ikm[i] = (uint8_t)i;
}

static void test_transcript_and_keys_vector(void **state)
{
    (void)state;
    uint8_t pk[1216], ct[1120], ikm[64], th[32], c2s[32], s2c[32], want[32];
    fill_vector(pk, ct, ikm);
    assert_int_equal(
        vs_pq_transcript(NONCE, strlen(NONCE), SID, strlen(SID), pk, sizeof pk, ct, sizeof ct, th),
        0);
    unhex(TH_HEX, want, 32);
    assert_memory_equal(th, want, 32);

    /* The same with one-shot SHA256 over the concatenation. */
    size_t total = strlen("volli-pq-v1") + strlen(NONCE) + strlen(SID) + sizeof pk + sizeof ct;
    uint8_t *cat = malloc(total), *p = cat;
    memcpy(p, "volli-pq-v1", 11), p += 11;
    memcpy(p, NONCE, strlen(NONCE)), p += strlen(NONCE);
    memcpy(p, SID, strlen(SID)), p += strlen(SID);
    memcpy(p, pk, sizeof pk), p += sizeof pk;
    memcpy(p, ct, sizeof ct);
    uint8_t th2[32];
    SHA256(cat, total, th2);
    free(cat);
    assert_memory_equal(th2, th, 32);

    assert_int_equal(vs_pq_derive(th, ikm, sizeof ikm, c2s, s2c), 0);
    unhex(C2S_HEX, want, 32);
    assert_memory_equal(c2s, want, 32);
    unhex(S2C_HEX, want, 32);
    assert_memory_equal(s2c, want, 32);

    /* HKDF by hand: PRK = HMAC(salt = TH, IKM); T(1) = HMAC(PRK, info || 0x01). */
    uint8_t prk[32], t1[32];
    unsigned int n = 0;
    HMAC(EVP_sha256(), th, 32, ikm, sizeof ikm, prk, &n);
    assert_int_equal(n, 32);
    const uint8_t info[] = "volli c2s\x01";
    HMAC(EVP_sha256(), prk, 32, info, sizeof info - 1, t1, &n);
    assert_memory_equal(t1, c2s, 32);

    /* Every input is bound: one changed byte anywhere changes TH. */
    pk[1215] ^= 1;
    assert_int_equal(
        vs_pq_transcript(NONCE, strlen(NONCE), SID, strlen(SID), pk, sizeof pk, ct, sizeof ct, th2),
        0);
    assert_memory_not_equal(th2, th, 32);
    pk[1215] ^= 1;
    ct[0] ^= 0x80;
    assert_int_equal(
        vs_pq_transcript(NONCE, strlen(NONCE), SID, strlen(SID), pk, sizeof pk, ct, sizeof ct, th2),
        0);
    assert_memory_not_equal(th2, th, 32);
    ct[0] ^= 0x80;
    assert_int_equal(vs_pq_transcript("x", 1, SID, strlen(SID), pk, sizeof pk, ct, sizeof ct, th2),
                     0);
    assert_memory_not_equal(th2, th, 32);
    /* The ML-KEM-only IKM (32 bytes) gives other keys than the hybrid one. */
    uint8_t c2s32[32], s2c32[32];
    assert_int_equal(vs_pq_derive(th, ikm, 32, c2s32, s2c32), 0);
    assert_memory_not_equal(c2s32, c2s, 32);
    assert_memory_not_equal(c2s, s2c, 32);
}

/* AES-256-GCM, key 00..1f, seq 5, AAD "volli-enc-v1", from Python's cryptography (AESGCM). */
static const char GCM_PT[] = "{\"type\":\"ping\",\"id\":\"p1\"}";
static const char GCM_CT_HEX[] = "e383b61bb3dbb7774a22209f22d579c0726005cc530b054f55701178b7"
                                 "01467438e81a0ab65d8b9480";

static void test_gcm_vector_and_tamper(void **state)
{
    (void)state;
    uint8_t key[32], out[64], want[64], back[64];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    size_t len = strlen(GCM_PT);
    assert_int_equal(vs_pq_seal(key, 5, (const uint8_t *)GCM_PT, len, out), 0);
    unhex(GCM_CT_HEX, want, len + 16);
    assert_memory_equal(out, want, len + 16);
    assert_int_equal(vs_pq_open(key, 5, out, len + 16, back), 0);
    assert_memory_equal(back, GCM_PT, len);

    /* The wrong N (IV), a flipped ciphertext or tag bit, a short input: refused. */
    assert_int_equal(vs_pq_open(key, 4, out, len + 16, back), VS_ECRYPTO);
    assert_int_equal(vs_pq_open(key, 5 + (1ull << 32), out, len + 16, back), VS_ECRYPTO);
    for (size_t i = 0; i < len + 16; i += 7) {
        out[i] ^= 0x01;
        assert_int_equal(vs_pq_open(key, 5, out, len + 16, back), VS_ECRYPTO);
        out[i] ^= 0x01;
    }
    assert_int_equal(vs_pq_open(key, 5, out, 15, back), VS_ECRYPTO);
    key[31] ^= 1;
    assert_int_equal(vs_pq_open(key, 5, out, len + 16, back), VS_ECRYPTO);
    key[31] ^= 1;

    /* An independent EVP decryption needs exactly this IV and AAD. */
    uint8_t iv[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5};
    for (int aad_ok = 0; aad_ok < 2; aad_ok++) {
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        int n = 0;
        const char *aad = aad_ok ? "volli-enc-v1" : "volli-enc-v2";
        assert_int_equal(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv), 1);
        assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, 12), 1);
        assert_int_equal(EVP_DecryptUpdate(ctx, back, &n, out, (int)len), 1);
        assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, out + len), 1);
        assert_int_equal(EVP_DecryptFinal_ex(ctx, back + n, &n), aad_ok ? 1 : 0);
        EVP_CIPHER_CTX_free(ctx);
    }
}

static void test_enc_frames_and_seq(void **state)
{
    (void)state;
    uint8_t key[32], tmp[256], pt[256];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(0xA0 + i);
    const char *msg = "{\"type\":\"discover\",\"userId\":\"bob\"}";
    size_t mlen = strlen(msg), n = 0;
    for (uint64_t seq = 0; seq < 3; seq++) {
        size_t flen = vs_pq_frame_len(seq, mlen);
        char *frame = malloc(flen + 1);
        memset(frame, '#', flen + 1);
        assert_int_equal(vs_pq_frame_seal(key, seq, (const uint8_t *)msg, mlen, tmp, frame), 0);
        assert_int_equal(frame[flen], '#'); /* exactly flen bytes written */
        /* The text is the documented object; its ct is base64 of ciphertext || tag. */
        json_t *root = json_loadb(frame, flen, JSON_REJECT_DUPLICATES, NULL);
        assert_non_null(root);
        assert_string_equal(json_string_value(json_object_get(root, "type")), "enc");
        assert_int_equal(json_integer_value(json_object_get(root, "seq")), (json_int_t)seq);
        assert_int_equal(json_object_size(root), 3);
        const char *ct64 = json_string_value(json_object_get(root, "ct"));
        uint8_t ct[256];
        long cl = vs_base64_decode(ct64, strlen(ct64), ct, sizeof ct);
        assert_int_equal(cl, (long)mlen + 16);
        assert_int_equal(vs_pq_open(key, seq, ct, (size_t)cl, pt), 0);
        assert_memory_equal(pt, msg, mlen);
        json_decref(root);

        assert_int_equal(vs_pq_frame_open(key, seq, frame, flen, pt, sizeof pt, &n), 0);
        assert_int_equal(n, mlen);
        assert_memory_equal(pt, msg, mlen);
        /* Replayed (old N) and reordered (future N) frames are refused. */
        assert_int_equal(vs_pq_frame_open(key, seq + 1, frame, flen, pt, sizeof pt, &n),
                         VS_EMISMATCH);
        if (seq)
            assert_int_equal(vs_pq_frame_open(key, seq - 1, frame, flen, pt, sizeof pt, &n),
                             VS_EMISMATCH);
        /* The plaintext does not fit a short buffer. */
        assert_int_equal(vs_pq_frame_open(key, seq, frame, flen, pt, mlen - 1, &n), VS_ETOOBIG);
        /* A changed base64 character of ct: tag failure (or not base64 at all). */
        char *c = strstr(frame, "\"ct\":\"") + 6;
        c[3] = c[3] == 'A' ? 'B' : 'A';
        int rc = vs_pq_frame_open(key, seq, frame, flen, pt, sizeof pt, &n);
        assert_true(rc == VS_ECRYPTO);
        free(frame);
    }
    static const char *const not_enc[] = {
        "{\"type\":\"ping\"}",
        "{\"type\":\"enc\",\"seq\":\"0\",\"ct\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}",
        "{\"type\":\"enc\",\"seq\":0.5,\"ct\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}",
        "{\"type\":\"enc\",\"seq\":0}",
        "{\"type\":\"enc\",\"seq\":0,\"ct\":\"not base64!\"}",
        "{\"type\":\"enc\",\"seq\":0,\"ct\":\"AAAA\"}", /* shorter than a tag */
        "{\"type\":\"enc\",\"seq\":0,\"seq\":0,\"ct\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}",
        "[1,2]",
        "not json",
    };
    for (size_t i = 0; i < sizeof not_enc / sizeof not_enc[0]; i++)
        assert_int_equal(
            vs_pq_frame_open(key, 0, not_enc[i], strlen(not_enc[i]), pt, sizeof pt, &n), VS_EPROTO);
    const char *neg = "{\"type\":\"enc\",\"seq\":-1,\"ct\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}";
    assert_int_equal(vs_pq_frame_open(key, 0, neg, strlen(neg), pt, sizeof pt, &n), VS_EMISMATCH);
    /* A well-formed frame under another key: tag failure. */
    const char *zero = "{\"type\":\"enc\",\"seq\":0,\"ct\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}";
    assert_int_equal(vs_pq_frame_open(key, 0, zero, strlen(zero), pt, sizeof pt, &n), VS_ECRYPTO);
}

/* The parser-free path for the canonical frame text must give exactly what jansson gives:
 * every one-byte change of a real frame is compared with the same text made non-canonical by
 * a space after the opening brace (which only jansson reads). */
static void test_frame_open_fast_path_agrees(void **state)
{
    (void)state;
    uint8_t key[32], pt[512], tmp[300];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    static const uint64_t seqs[] = {0, 7, 10, 123456789012345678u};
    static const char subst[] = {'0', '1', '9', 'A', '+', '/', '=', '"', '\\', ' ', '-', '}',
                                 ',', 'e', '.', '\x01', '\x7f', '\xc3'};
    size_t checked = 0, opened = 0;
    for (size_t si = 0; si < sizeof seqs / sizeof seqs[0]; si++) {
        const char *msg = "{\"type\":\"offer\",\"to\":\"bob\",\"offer\":{\"sdp\":\"v=0\"}}";
        size_t mlen = strlen(msg), flen = vs_pq_frame_len(seqs[si], mlen);
        char *frame = malloc(flen + 2), *slow = malloc(flen + 3);
        assert_int_equal(
            vs_pq_frame_seal(key, seqs[si], (const uint8_t *)msg, mlen, tmp, frame), 0);
        assert_true(vs_pq_frame_is_canonical(frame, flen)); /* the fast path is taken */
        for (size_t pos = 0; pos <= flen; pos++) {
            for (size_t k = 0; k <= sizeof subst; k++) {
                if (pos == flen && k > 0)
                    break; /* only the unchanged frame at the end */
                char *f = malloc(flen + 1);
                memcpy(f, frame, flen);
                size_t n = flen;
                if (pos < flen && k < sizeof subst)
                    f[pos] = subst[k];
                slow[0] = '{';
                slow[1] = ' ';
                memcpy(slow + 2, f + 1, n - 1);
                size_t o1 = 0, o2 = 0;
                assert_false(vs_pq_frame_is_canonical(slow, n + 1));
                int r1 = vs_pq_frame_open(key, seqs[si], f, n, pt, sizeof pt, &o1);
                int r2 = f[0] == '{' ? vs_pq_frame_open(key, seqs[si], slow, n + 1, pt + 256,
                                                        sizeof pt - 256, &o2)
                                     : r1;
                if (r1 != r2 || o1 != o2)
                    fail_msg("seq %llu, byte %zu -> 0x%02x: fast %d (%zu), jansson %d (%zu)",
                             (unsigned long long)seqs[si], pos, (unsigned)(uint8_t)f[pos], r1, o1,
                             r2, o2);
                if (r1 == 0) {
                    assert_memory_equal(pt, pt + 256, o1);
                    opened++;
                }
                checked++;
                free(f);
            }
        }
        free(frame);
        free(slow);
    }
    assert_true(checked > 1000);
    assert_true(opened >= 4); /* the unchanged frames (and changes that keep the text) */
}

static void test_x25519_rfc7748(void **state)
{
    (void)state;
    uint8_t a[32], apub[32], b[32], bpub[32], ss[32], want[32], got[32];
    unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a, 32);
    unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", apub, 32);
    unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b, 32);
    unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", bpub, 32);
    unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", want, 32);
    assert_int_equal(vs_x25519_derive(a, bpub, ss), 0);
    assert_memory_equal(ss, want, 32);
    assert_int_equal(vs_x25519_derive(b, apub, ss), 0);
    assert_memory_equal(ss, want, 32);
    /* A small-order peer key (0, then 1) yields zero: refused, output zeroed. */
    uint8_t small[32] = {0};
    memset(ss, 0x55, 32);
    assert_int_equal(vs_x25519_derive(a, small, ss), VS_ECRYPTO);
    assert_memory_equal(ss, (uint8_t[32]){0}, 32);
    small[0] = 1;
    assert_int_equal(vs_x25519_derive(a, small, ss), VS_ECRYPTO);
    /* The one-step ephemeral agrees with the peer's own derivation, and refuses small order. */
    uint8_t epub[32];
    assert_int_equal(vs_x25519_ephemeral(bpub, epub, ss), 0);
    assert_int_equal(vs_x25519_derive(b, epub, got), 0);
    assert_memory_equal(ss, got, 32);
    assert_int_equal(vs_x25519_ephemeral(small, epub, ss), VS_ECRYPTO);
    assert_memory_equal(ss, (uint8_t[32]){0}, 32);
    /* Fresh pairs agree with each other. */
    uint8_t p1[32], s1[32], p2[32], s2[32];
    assert_int_equal(vs_x25519_keygen(p1, s1), 0);
    assert_int_equal(vs_x25519_keygen(p2, s2), 0);
    assert_memory_not_equal(p1, p2, 32);
    assert_int_equal(vs_x25519_derive(s1, p2, ss), 0);
    assert_int_equal(vs_x25519_derive(s2, p1, got), 0);
    assert_memory_equal(ss, got, 32);
}

/* Both sides of an X25519MLKEM768 handshake, the client's with the test's own decapsulation and
 * key agreement, reach the same directional keys; a tampered ciphertext does not. */
static void test_hybrid_handshake_both_sides(void **state)
{
    (void)state;
    uint8_t ek[VS_MLKEM768_EK_LEN], dk[VS_MLKEM768_DK_LEN], d[32], z[32];
    for (int i = 0; i < 32; i++)
        d[i] = (uint8_t)i, z[i] = (uint8_t)(255 - i);
    assert_int_equal(vs_mlkem768_keygen_derand(ek, dk, d, z), 0);
    uint8_t cx_pub[32], cx_priv[32];
    assert_int_equal(vs_x25519_keygen(cx_pub, cx_priv), 0);
    uint8_t pk[1216];
    memcpy(pk, ek, sizeof ek);
    memcpy(pk + sizeof ek, cx_pub, 32);

    /* Server, as core/pq.c does it. */
    uint8_t ct[1120], ikm_s[64], th_s[32], sc2s[32], ss2c[32];
    assert_int_equal(vs_mlkem768_encaps(ct, ikm_s, ek), 0);
    assert_int_equal(vs_x25519_ephemeral(cx_pub, ct + 1088, ikm_s + 32), 0);
    assert_int_equal(vs_pq_transcript(NONCE, strlen(NONCE), SID, strlen(SID), pk, sizeof pk, ct,
                                      sizeof ct, th_s),
                     0);
    assert_int_equal(vs_pq_derive(th_s, ikm_s, 64, sc2s, ss2c), 0);

    /* Client. */
    uint8_t ikm_c[64], th_c[32], cc2s[32], cs2c[32];
    assert_int_equal(vs_mlkem768_decaps(ikm_c, ct, dk), 0);
    assert_int_equal(vs_x25519_derive(cx_priv, ct + 1088, ikm_c + 32), 0);
    assert_int_equal(vs_pq_transcript(NONCE, strlen(NONCE), SID, strlen(SID), pk, sizeof pk, ct,
                                      sizeof ct, th_c),
                     0);
    assert_int_equal(vs_pq_derive(th_c, ikm_c, 64, cc2s, cs2c), 0);
    assert_memory_equal(cc2s, sc2s, 32);
    assert_memory_equal(cs2c, ss2c, 32);

    /* A frame sealed by the client opens on the server, only under k_c2s. */
    uint8_t sealed[64], opened[64];
    assert_int_equal(vs_pq_seal(cc2s, 0, (const uint8_t *)"{\"type\":\"ping\"}", 15, sealed), 0);
    assert_int_equal(vs_pq_open(sc2s, 0, sealed, 31, opened), 0);
    assert_int_equal(vs_pq_open(ss2c, 0, sealed, 31, opened), VS_ECRYPTO);

    /* A flipped ciphertext bit: implicit rejection gives the client other keys. */
    ct[100] ^= 4;
    assert_int_equal(vs_mlkem768_decaps(ikm_c, ct, dk), 0);
    assert_int_equal(vs_pq_derive(th_c, ikm_c, 64, cc2s, cs2c), 0);
    assert_memory_not_equal(cc2s, sc2s, 32);
}

static void test_server_key_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/vs-pq-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/server.key", dir);
    uint8_t priv[32], pub[32], priv2[32], pub2[32], sig[64];
    assert_int_equal(vs_server_key_load(dir, priv, pub, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* The file is PEM PKCS#8 and holds the key that is then loaded. */
    FILE *f = fopen(path, "r");
    char line[64] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "-----BEGIN PRIVATE KEY-----\n");
    assert_int_equal(vs_server_key_load(dir, priv2, pub2, err, sizeof err), 0);
    assert_memory_equal(priv, priv2, 32);
    assert_memory_equal(pub, pub2, 32);
    assert_int_equal(vs_ed25519_sign(priv, (const uint8_t *)"th", 2, sig), 0);
    assert_int_equal(vs_ed25519_verify(pub, (const uint8_t *)"th", 2, sig), 0);
    /* The held signer makes the same (deterministic) signature. */
    vs_pq_signer_t *signer = vs_pq_signer_new(priv);
    assert_non_null(signer);
    uint8_t sig2[64];
    assert_int_equal(vs_pq_signer_sign(signer, (const uint8_t *)"th", 2, sig2), 0);
    assert_memory_equal(sig, sig2, 64);
    assert_int_equal(vs_pq_signer_sign(signer, (const uint8_t *)"tx", 2, sig2), 0);
    assert_int_equal(vs_ed25519_verify(pub, (const uint8_t *)"th", 2, sig2), VS_ECRYPTO);
    vs_pq_signer_free(signer);

    /* A file that is not a key is refused, and not replaced. */
    f = fopen(path, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    assert_int_equal(vs_server_key_load(dir, priv2, pub2, err, sizeof err), VS_ECRYPTO);
    assert_non_null(strstr(err, "server.key"));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    /* No such directory. */
    assert_int_equal(vs_server_key_load(dir, priv2, pub2, err, sizeof err), VS_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transcript_and_keys_vector),
        cmocka_unit_test(test_gcm_vector_and_tamper),
        cmocka_unit_test(test_enc_frames_and_seq),
        cmocka_unit_test(test_frame_open_fast_path_agrees),
        cmocka_unit_test(test_x25519_rfc7748),
        cmocka_unit_test(test_hybrid_handshake_both_sides),
        cmocka_unit_test(test_server_key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
