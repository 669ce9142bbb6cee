/* fuzz_ws.c: the RFC 6455 frame parser (transport/ws.c).
 *
 * Input: one seed byte, then the client byte stream. The seed's low 4 bits pick the largest
 * chunk size (1 << bits) for a pseudo-random chunking, bits 4-6 the message size limit, and
 * bit 7 adds an empty chunk before each chunk of the chunked run. The
 * stream is parsed twice, whole and chunked, each chunk in its own exact-size heap copy so that
 * ASan sees any read past it; both runs must deliver the same events and end the same way, and
 * every delivery must satisfy the API's promises. vs_utf8_valid is also checked against an
 * independent decoder, on the raw input and on every text delivery. */
#include "fuzz.h"

#include "common/error.h"
#include "transport/ws.h"

#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

struct run {
    size_t max_message;
    uint64_t hash;
    size_t events;
    int closed;
};

/* Decode-then-check, deliberately unlike the validator's state machine. */
static int ref_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i], min;
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1, c &= 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, c &= 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, c &= 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i - 1 < k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            c = c << 6 | (s[i + j] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

static void mix(struct run *r, const void *data, size_t len)
{
    const uint8_t *d = data;
    for (size_t i = 0; i < len; i++)
        r->hash = (r->hash ^ d[i]) * 0x100000001b3ULL;
}

static int event(struct run *r, int kind, int op, const uint8_t *data, size_t len)
{
    CHECK(data != NULL);
    CHECK(!r->closed); /* nothing after a close */
    r->events++;
    mix(r, &kind, sizeof kind);
    mix(r, &op, sizeof op);
    mix(r, &len, sizeof len);
    mix(r, data, len);
    /* Lets the fuzzer reach the "callback stops the parser" paths. */
    return len >= 4 && memcmp(data, "STOP", 4) == 0 ? 7 : 0;
}

static int on_message(void *ud, int opcode, uint8_t *data, size_t len)
{
    struct run *r = ud;
    CHECK(opcode == VS_WS_OP_TEXT || opcode == VS_WS_OP_BINARY);
    CHECK(len <= r->max_message);
    CHECK(opcode != VS_WS_OP_TEXT || (vs_utf8_valid(data, len) && ref_utf8_valid(data, len)));
    if (len)
        data[len - 1] ^= 0x5A; /* data is ours to modify during the call */
    int rc = event(r, 1, opcode, data, len);
    if (len)
        data[len - 1] ^= 0x5A;
    return rc;
}

static int on_ping(void *ud, const uint8_t *data, size_t len)
{
    CHECK(len <= VS_WS_MAX_CONTROL);
    return event(ud, 2, 0, data, len);
}

static int on_pong(void *ud, const uint8_t *data, size_t len)
{
    CHECK(len <= VS_WS_MAX_CONTROL);
    return event(ud, 3, 0, data, len);
}

static int on_close(void *ud, uint16_t code, const uint8_t *reason, size_t len)
{
    struct run *r = ud;
    CHECK(len <= VS_WS_MAX_CLOSE_REASON);
    CHECK(code == 1005 ? len == 0
                       : (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                             (code >= 3000 && code <= 4999));
    CHECK(vs_utf8_valid(reason, len) && ref_utf8_valid(reason, len));
    int rc = event(r, 4, code, reason, len);
    r->closed = 1;
    return rc;
}

static const vs_ws_callbacks_t cbs = {on_message, on_ping, on_pong, on_close};

static int parse_copy(vs_ws_parser_t *p, const uint8_t *data, size_t len, struct run *r)
{
    uint8_t *chunk = malloc(len ? len : 1);
    CHECK(chunk != NULL);
    if (len)
        memcpy(chunk, data, len);
    int rc = vs_ws_parse(p, chunk, len, &cbs, r);
    free(chunk);
    return rc;
}

/* Parses the stream in pseudo-random chunks of at most max_chunk bytes (SIZE_MAX: one chunk),
 * each preceded by an empty one if empties is set; returns the first non-zero result. */
static int run_stream(const uint8_t *s, size_t n, size_t max_chunk, uint32_t seed, int empties,
                      struct run *r)
{
    vs_ws_parser_t p;
    vs_ws_parser_init(&p, r->max_message);
    int rc = 0;
    size_t off = 0;
    while (off < n) {
        size_t len = n - off;
        if (max_chunk < len) {
            seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
            len = 1 + seed % max_chunk;
        }
        if (len > n - off)
            len = n - off;
        if (empties && (rc = parse_copy(&p, s + off, 0, r)) != 0)
            break;
        rc = parse_copy(&p, s + off, len, r);
        off += len;
        if (rc)
            break;
        CHECK(vs_ws_parser_close_code(&p) == 0);
        CHECK(vs_ws_parser_buffered(&p) <= r->max_message + VS_WS_MAX_CONTROL);
    }
    uint16_t code = vs_ws_parser_close_code(&p);
    size_t events = r->events;
    if (rc == VS_EPROTO || rc == VS_EUTF8 || rc == VS_ETOOBIG) {
        CHECK(code == (rc == VS_EPROTO ? 1002 : rc == VS_EUTF8 ? 1007 : 1009));
        CHECK(vs_ws_parser_buffered(&p) == 0);
        CHECK(parse_copy(&p, s, n, r) == rc); /* a failed parser refuses input */
    } else if (rc != 0) {
        CHECK(rc == 7 && code == 0);
        CHECK(parse_copy(&p, s, n, r) == VS_ECLOSED);
    } else if (r->closed) {
        CHECK(vs_ws_parser_buffered(&p) == 0);
        CHECK(parse_copy(&p, s, n, r) == 0);
    }
    CHECK(r->events == events);
    vs_ws_parser_deinit(&p);
    CHECK(vs_ws_parser_buffered(&p) == 0);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t limits[8] = {0, 1, 16, 125, 126, 1000, 65536, 1 << 20};
    if (size == 0)
        return 0;
    CHECK(vs_utf8_valid(data, size) == ref_utf8_valid(data, size));
    uint8_t seed = data[0];
    size_t max_chunk = (size_t)1 << (seed & 0x0F);
    size_t max_message = limits[(seed >> 4) & 7];

    struct run whole = {.max_message = max_message, .hash = 0xcbf29ce484222325ULL};
    struct run split = whole;
    int rc_whole = run_stream(data + 1, size - 1, SIZE_MAX, 1, 0, &whole);
    int rc_split = run_stream(data + 1, size - 1, max_chunk, 0x9E3779B9u ^ seed, seed >> 7, &split);
    CHECK(rc_whole == rc_split);
    CHECK(whole.events == split.events);
    CHECK(whole.hash == split.hash);
    CHECK(whole.closed == split.closed);
    return 0;
}
