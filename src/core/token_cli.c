/* token_cli.c: `volli-signal token create`. The ML-KEM key file may hold the key's standard
 * base64 (surrounding whitespace ignored) or its raw 1184 bytes; base64 is tried first and must
 * decode to 1184 bytes, so the two readings can never be confused. */
#include "core/token_cli.h"

#include "common/alloc.h"
#include "common/base64.h"
#include "common/error.h"
#include "crypto/token.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ML-KEM-768's encapsulation key. */
#define PQ_KEY_BYTES 1184
#define PQ_FILE_MAX (64 * 1024)

int vs_token_parse_duration(const char *text, long long *seconds)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || errno || v <= 0 || text[0] == '-' || text[0] == '+' || text[0] == ' ')
        return VS_EINVAL;
    long long mul = 1;
    if (*end) {
        switch (*end) {
        case 's':
            mul = 1;
            break;
        case 'm':
            mul = 60;
            break;
        case 'h':
            mul = 3600;
            break;
        case 'd':
            mul = 86400;
            break;
        default:
            return VS_EINVAL;
        }
        if (end[1])
            return VS_EINVAL;
    }
    /* Ten years is plenty and keeps exp far from any overflow. */
    if (v > 10LL * 366 * 86400 / mul)
        return VS_EINVAL;
    *seconds = v * mul;
    return 0;
}

/* Reads the key file into a base64 string (caller frees). */
static int read_pq_key(const char *path, char **out, FILE *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(err, "volli-signal token: %s: %s\n", path, strerror(errno));
        return VS_EIO;
    }
    uint8_t *buf = vs_malloc(PQ_FILE_MAX + 1);
    size_t n = fread(buf, 1, PQ_FILE_MAX + 1, f);
    fclose(f);
    const char *t = (const char *)buf;
    size_t tn = n;
    while (tn && (*t == ' ' || *t == '\n' || *t == '\r' || *t == '\t'))
        t++, tn--;
    while (tn && (t[tn - 1] == ' ' || t[tn - 1] == '\n' || t[tn - 1] == '\r' || t[tn - 1] == '\t'))
        tn--;
    uint8_t key[PQ_KEY_BYTES];
    int rc = 0;
    if (n <= PQ_FILE_MAX && vs_base64_decode(t, tn, key, sizeof key) == PQ_KEY_BYTES) {
        *out = vs_strndup(t, tn);
    } else if (n == PQ_KEY_BYTES) {
        *out = vs_malloc(vs_base64_encoded_len(n) + 1);
        vs_base64_encode(buf, n, *out);
    } else {
        fprintf(err,
                "volli-signal token: %s: expected the ML-KEM-768 public key as base64 or as its "
                "raw %d bytes\n",
                path, PQ_KEY_BYTES);
        rc = VS_EINVAL;
    }
    free(buf);
    return rc;
}

static void usage(FILE *f)
{
    fputs("Usage: volli-signal token create --identity ID [--room ROOM] [--valid-for 24h]\n"
          "                                 [--pq-public-key FILE] [--dev]\n"
          "Prints an HS256 access token signed with the first key of LIVEKIT_KEYS (or\n"
          "LIVEKIT_API_KEY and LIVEKIT_API_SECRET), or with the development key pair (--dev).\n"
          "  --identity ID          the user id the token registers (\"sub\")\n"
          "  --room ROOM            grant joining ROOM only, and join it on connect\n"
          "  --valid-for DURATION   lifetime: seconds, or with s, m, h or d (default 24h)\n"
          "  --pq-public-key FILE   ML-KEM-768 public key, base64 or raw 1184 bytes\n"
          "  --dev                  sign with the development key pair\n",
          f);
}

int vs_token_cli(int argc, char **argv, char *(*env)(const char *), FILE *out, FILE *err)
{
    if (argc < 2 || strcmp(argv[1], "create") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
            usage(out);
            return 0;
        }
        usage(err);
        return 2;
    }
    const char *identity = NULL, *room = NULL, *valid = "24h", *pqfile = NULL;
    int dev = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "--dev") == 0) {
            dev = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0) {
            usage(out);
            return 0;
        }
        if (strcmp(a, "--identity") == 0)
            slot = &identity;
        else if (strcmp(a, "--room") == 0)
            slot = &room;
        else if (strcmp(a, "--valid-for") == 0)
            slot = &valid;
        else if (strcmp(a, "--pq-public-key") == 0)
            slot = &pqfile;
        if (!slot) {
            fprintf(err, "volli-signal token: unknown option %.64s\n", a);
            usage(err);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(err, "volli-signal token: %s: missing value\n", a);
            return 2;
        }
        *slot = argv[++i];
    }
    if (!identity) {
        fprintf(err, "volli-signal token: --identity is required\n");
        return 2;
    }
    long long seconds;
    if (vs_token_parse_duration(valid, &seconds) != 0) {
        fprintf(err, "volli-signal token: --valid-for: \"%.64s\" is not a duration like 3600, "
                     "30m, 24h or 7d\n", valid);
        return 2;
    }
    vs_token_keys_t keys;
    char msg[256];
    if (vs_token_keys_load(&keys, env, dev, msg, sizeof msg) != 0) {
        fprintf(err, "volli-signal token: %s\n", msg);
        return 2;
    }
    if (keys.n == 0) {
        fprintf(err, "volli-signal token: no API key configured: set LIVEKIT_KEYS=\"key: secret\" "
                     "(or LIVEKIT_API_KEY and LIVEKIT_API_SECRET), or use --dev\n");
        return 2;
    }
    char *pq = NULL;
    if (pqfile && read_pq_key(pqfile, &pq, err) != 0) {
        vs_token_keys_deinit(&keys);
        return 2;
    }
    /* --dev asks for the development pair even when other keys are configured. */
    const vs_token_key_t *k = dev ? &keys.v[keys.n - 1] : &keys.v[0];
    vs_token_grant_t g = {.identity = identity,
                          .room = room,
                          .pq_public_key = pq,
                          .pq_algorithm = pq ? "ML-KEM-768" : NULL};
    char *tok = NULL;
    int rc = vs_token_create(k, &g, (int64_t)time(NULL), seconds, &tok);
    int code = 0;
    if (rc == VS_EINVAL) {
        fprintf(err, "volli-signal token: invalid --identity (1 to 128 characters of "
                     "[a-z0-9._+@-]) or --room (1 to 128 characters of [A-Za-z0-9._-])\n");
        code = 2;
    } else if (rc != 0) {
        fprintf(err, "volli-signal token: could not sign the token\n");
        code = 1;
    } else {
        fprintf(out, "%s\n", tok);
    }
    free(tok);
    free(pq);
    vs_token_keys_deinit(&keys);
    return code;
}
