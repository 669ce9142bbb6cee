/* fuzz_token.c: access-token verification on arbitrary bytes. The first byte picks what the
 * rest is: 0-127 a raw token; 128-255 a JSON payload that the harness signs correctly with
 * the development key (header {"alg":"HS256","typ":"JWT"}), so the claim parser behind a valid
 * signature is reached too. Invariants: 0 only with reason OK and a valid identity; a refusal
 * always has a reason; claims are freed; nothing crashes or leaks. */
#include "fuzz.h"

#include "common/base64.h"
#include "crypto/token.h"
#include "protocol/userid.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

static size_t b64url(const uint8_t *in, size_t len, char *out)
{
    return vs_base64url_encode(in, len, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 3000)
        return 0;
    vs_token_keys_t keys = {0};
    vs_token_keys_add(&keys, VS_TOKEN_DEV_KEY, VS_TOKEN_DEV_SECRET);
    char *token = malloc(8192);
    size_t tlen;
    if (data[0] < 128) {
        memcpy(token, data + 1, size - 1);
        tlen = size - 1;
    } else {
        static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
        size_t n = b64url((const uint8_t *)header, sizeof header - 1, token);
        token[n++] = '.';
        n += b64url(data + 1, size - 1, token + n);
        unsigned char mac[32];
        unsigned int maclen = 0;
        HMAC(EVP_sha256(), VS_TOKEN_DEV_SECRET, (int)strlen(VS_TOKEN_DEV_SECRET),
             (const unsigned char *)token, n, mac, &maclen);
        token[n++] = '.';
        n += b64url(mac, maclen, token + n);
        tlen = n;
    }
    vs_token_claims_t claims;
    memset(&claims, 0, sizeof claims);
    vs_token_reason_t why = VS_TOKEN_REASON_COUNT;
    int rc = vs_token_verify(&keys, token, tlen, 1700000000, &claims, &why);
    if (rc == 0) {
        char folded[VS_USERID_MAX + 1];
        if (why != VS_TOKEN_OK ||
            vs_userid_fold(claims.identity, strlen(claims.identity), folded) != 0 ||
            strcmp(folded, claims.identity) != 0)
            abort();
        vs_token_claims_deinit(&claims);
    } else if (why == VS_TOKEN_OK || why >= VS_TOKEN_REASON_COUNT) {
        abort();
    }
    free(token);
    vs_token_keys_deinit(&keys);
    return 0;
}
