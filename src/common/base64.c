#include "common/base64.h"

#include "common/error.h"

#include <limits.h>

static const char STD_ALPHABET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char URL_ALPHABET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Ranges instead of a 256-entry table: no table to get wrong, and the inputs (keys,
 * signatures, nonces) are short. */
static int sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

size_t vs_base64_encoded_len(size_t len)
{
    return len / 3 * 4 + (len % 3 ? 4 : 0);
}

size_t vs_base64url_encoded_len(size_t len)
{
    static const size_t tail[3] = {0, 2, 3};
    return len / 3 * 4 + tail[len % 3];
}

size_t vs_base64_decoded_max(size_t len)
{
    return len / 4 * 3 + (len % 4 ? 3 : 0);
}

/* Decodes in (len a non-zero multiple of 4, pad the count of trailing '=') into out, or only
 * validates when out is NULL. Returns 0 if the input is canonical, -1 otherwise. */
static int decode_quads(const unsigned char *in, size_t len, size_t pad, uint8_t *out)
{
    size_t last = len - 4;

    for (size_t i = 0; i < last; i += 4) {
        int a = sextet(in[i]), b = sextet(in[i + 1]);
        int c = sextet(in[i + 2]), d = sextet(in[i + 3]);
        if ((a | b | c | d) < 0)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        if (out) {
            *out++ = (uint8_t)(v >> 16);
            *out++ = (uint8_t)(v >> 8);
            *out++ = (uint8_t)v;
        }
    }

    int a = sextet(in[last]), b = sextet(in[last + 1]);
    int c = pad < 2 ? sextet(in[last + 2]) : 0;
    int d = pad < 1 ? sextet(in[last + 3]) : 0;
    if ((a | b | c | d) < 0)
        return -1;
    /* Bits that fall past the last output byte must be zero, or two spellings would decode to
     * the same bytes. */
    if ((pad == 2 && (b & 0x0f) != 0) || (pad == 1 && (c & 0x03) != 0))
        return -1;
    uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
    if (out) {
        *out++ = (uint8_t)(v >> 16);
        if (pad < 2)
            *out++ = (uint8_t)(v >> 8);
        if (pad < 1)
            *out = (uint8_t)v;
    }
    return 0;
}

long vs_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)in;

    if (len % 4 != 0)
        return VS_EINVAL;
    if (len == 0)
        return 0;

    size_t pad = 0;
    if (s[len - 1] == '=')
        pad = s[len - 2] == '=' ? 2 : 1;
    size_t n = len / 4 * 3 - pad;

    if (n > cap || n > (size_t)LONG_MAX)
        return decode_quads(s, len, pad, NULL) != 0 ? VS_EINVAL : VS_ETOOBIG;
    if (decode_quads(s, len, pad, out) != 0)
        return VS_EINVAL;
    return (long)n;
}

static size_t encode(const uint8_t *in, size_t len, char *out, const char *alphabet, int padded)
{
    char *p = out;
    size_t i = 0;

    for (; len - i >= 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *p++ = alphabet[v >> 18];
        *p++ = alphabet[(v >> 12) & 0x3f];
        *p++ = alphabet[(v >> 6) & 0x3f];
        *p++ = alphabet[v & 0x3f];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *p++ = alphabet[v >> 18];
        *p++ = alphabet[(v >> 12) & 0x3f];
        if (padded) {
            *p++ = '=';
            *p++ = '=';
        }
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *p++ = alphabet[v >> 18];
        *p++ = alphabet[(v >> 12) & 0x3f];
        *p++ = alphabet[(v >> 6) & 0x3f];
        if (padded)
            *p++ = '=';
    }
    *p = '\0';
    return (size_t)(p - out);
}

size_t vs_base64_encode(const uint8_t *in, size_t len, char *out)
{
    return encode(in, len, out, STD_ALPHABET, 1);
}

size_t vs_base64url_encode(const uint8_t *in, size_t len, char *out)
{
    return encode(in, len, out, URL_ALPHABET, 0);
}
