/* fuzz_base64: the strict decoder accepts exactly the strings the encoder produces.
 * - whatever decodes re-encodes to the same bytes (one spelling per value), agrees with
 *   OpenSSL's decoder, and reports VS_ETOOBIG (not a partial result) one byte short;
 * - whatever is refused is refused as VS_EINVAL;
 * - the input, taken as bytes, round-trips through both encoders. */
#include "fuzz.h"

#include "common/base64.h"
#include "common/error.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static void check_decode(const char *in, size_t len)
{
    size_t cap = vs_base64_decoded_max(len);
    uint8_t *out = malloc(cap + 1);
    long n = vs_base64_decode(in, len, out, cap);
    if (n < 0) {
        if (n != VS_EINVAL)
            abort();
        free(out);
        return;
    }
    if ((size_t)n > cap || len % 4 != 0)
        abort();

    char *enc = malloc(len + 1);
    if (vs_base64_encode(out, (size_t)n, enc) != len || memcmp(enc, in, len) != 0)
        abort();
    if (n > 0 && vs_base64_decode(in, len, out, (size_t)n - 1) != VS_ETOOBIG)
        abort();
    if (n > 0 && len <= (size_t)0x7fffffff) {
        uint8_t *theirs = malloc(cap + 1);
        if (EVP_DecodeBlock(theirs, (const unsigned char *)in, (int)len) != (int)(len / 4 * 3) ||
            memcmp(theirs, out, (size_t)n) != 0)
            abort();
        free(theirs);
    }
    free(enc);
    free(out);
}

static void check_encode(const uint8_t *data, size_t len)
{
    size_t elen = vs_base64_encoded_len(len), ulen = vs_base64url_encoded_len(len);
    char *std = malloc(elen + 1), *url = malloc(ulen + 1);
    uint8_t *back = malloc(len + 1);

    if (vs_base64_encode(data, len, std) != elen || strlen(std) != elen)
        abort();
    if (vs_base64_decode(std, elen, back, len) != (long)len || memcmp(back, data, len) != 0)
        abort();
    if (vs_base64url_encode(data, len, url) != ulen || strlen(url) != ulen)
        abort();
    for (size_t i = 0; i < elen; i++) {
        char want = i < ulen ? (std[i] == '+' ? '-' : std[i] == '/' ? '_' : std[i]) : '=';
        char got = i < ulen ? url[i] : std[i];
        if (got != want)
            abort();
    }
    free(back);
    free(url);
    free(std);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_decode((const char *)data, size);
    check_encode(data, size);
    return 0;
}
