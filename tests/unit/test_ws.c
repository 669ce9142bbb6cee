/* test_ws.c: RFC 6455 framing (transport/ws.c), with hand-built client frames; client mode
 * (unmasked server frames) and the masked writer at the end. */
#include "common/error.h"
#include "transport/ws.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- building client frames ---- */

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static void buf_put(struct buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static uint32_t rng_state = 0x9E3779B9u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

enum { LEN_MIN = 0, LEN_16 = 16, LEN_64 = 64, UNMASKED = 1 << 8 };

/* Appends a client frame: b0 is FIN|RSV|opcode; declared is the length written in the header
 * (normally len, the payload bytes actually appended); flags pick the length encoding
 * (LEN_16/LEN_64 force a non-minimal one) and UNMASKED. The key is random and non-zero. */
static void frame_raw(struct buf *b, uint8_t b0, const void *payload, size_t len, uint64_t declared,
                      int flags)
{
    uint8_t h[14], key[4] = {0, 0, 0, 0};
    size_t n = 0;
    int form = flags & 0xFF;
    uint8_t mbit = (flags & UNMASKED) ? 0 : 0x80;
    h[n++] = b0;
    if (form == LEN_MIN && declared < 126) {
        h[n++] = mbit | (uint8_t)declared;
    } else if (form == LEN_16 || (form == LEN_MIN && declared <= 0xFFFF)) {
        h[n++] = mbit | 126;
        h[n++] = (uint8_t)(declared >> 8);
        h[n++] = (uint8_t)declared;
    } else {
        h[n++] = mbit | 127;
        for (int i = 0; i < 8; i++)
            h[n++] = (uint8_t)(declared >> (56 - 8 * i));
    }
    if (mbit) {
        uint32_t k = rng() | 0x01010101u;
        memcpy(key, &k, 4);
        memcpy(h + n, key, 4);
        n += 4;
    }
    buf_put(b, h, n);
    size_t at = b->len;
    buf_put(b, payload, len);
    for (size_t i = 0; i < len; i++)
        b->p[at + i] ^= key[i & 3];
}

static void frame(struct buf *b, uint8_t b0, const void *payload, size_t len)
{
    frame_raw(b, b0, payload, len, len, LEN_MIN);
}

static void frame_str(struct buf *b, uint8_t b0, const char *s)
{
    frame(b, b0, s, strlen(s));
}

static void vadd(struct buf *b, va_list ap)
{
    for (int b0; (b0 = va_arg(ap, int)) >= 0;)
        frame_str(b, (uint8_t)b0, va_arg(ap, const char *));
}

/* Appends frames given as (int b0, const char *payload) pairs, ended by -1. */
static void add(struct buf *b, ...)
{
    va_list ap;
    va_start(ap, b);
    vadd(b, ap);
    va_end(ap);
}

/* A string of n 'q's, n <= 5000. */
static const char *qs(size_t n)
{
    static char q[5001];
    if (!q[0])
        memset(q, 'q', sizeof q - 1);
    return q + sizeof q - 1 - n;
}

static void close_frame(struct buf *b, uint16_t code, const char *reason)
{
    uint8_t pl[125] = {(uint8_t)(code >> 8), (uint8_t)code};
    size_t n = strlen(reason);
    memcpy(pl + 2, reason, n);
    frame(b, 0x88, pl, 2 + n);
}

/* ---- recording callbacks ---- */

enum { EV_MSG = 1, EV_PING, EV_PONG, EV_CLOSE };

struct event {
    int kind;
    int op;        /* opcode for messages, close code for close */
    uint8_t *data; /* a copy */
    size_t len;
    const uint8_t *ptr; /* where the parser delivered it from */
};

struct rec {
    struct event ev[2048];
    size_t n;
    size_t stop_at; /* the callback of event number stop_at returns stop_rc; 0 = never */
    int stop_rc;
};

static int record(struct rec *r, int kind, int op, const uint8_t *data, size_t len)
{
    assert_true(r->n < sizeof r->ev / sizeof r->ev[0]);
    assert_non_null(data);
    struct event *e = &r->ev[r->n++];
    e->kind = kind;
    e->op = op;
    e->len = len;
    e->ptr = data;
    e->data = malloc(len + 1);
    memcpy(e->data, data, len);
    return r->stop_at && r->n == r->stop_at ? r->stop_rc : 0;
}

static int on_message(void *ud, int opcode, uint8_t *data, size_t len)
{
    return record(ud, EV_MSG, opcode, data, len);
}

static int on_ping(void *ud, const uint8_t *data, size_t len)
{
    return record(ud, EV_PING, 0, data, len);
}

static int on_pong(void *ud, const uint8_t *data, size_t len)
{
    return record(ud, EV_PONG, 0, data, len);
}

static int on_close(void *ud, uint16_t code, const uint8_t *reason, size_t len)
{
    return record(ud, EV_CLOSE, code, reason, len);
}

static const vs_ws_callbacks_t cbs = {on_message, on_ping, on_pong, on_close};

static void rec_reset(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->ev[i].data);
    r->n = 0;
    r->stop_at = 0;
}

static void assert_event(const struct rec *r, size_t i, int kind, int op, const void *data,
                         size_t len)
{
    assert_true(i < r->n);
    assert_int_equal(r->ev[i].kind, kind);
    assert_int_equal(r->ev[i].op, op);
    assert_int_equal(r->ev[i].len, len);
    if (len)
        assert_memory_equal(r->ev[i].data, data, len);
}

static void assert_same_events(const struct rec *a, const struct rec *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        assert_event(b, i, a->ev[i].kind, a->ev[i].op, a->ev[i].data, a->ev[i].len);
}

/* Feeds data[0..len) as one chunk, copied to an exact-size heap buffer so ASan catches any
 * read past the chunk. */
static int feed(vs_ws_parser_t *p, const uint8_t *data, size_t len, struct rec *r)
{
    uint8_t *chunk = malloc(len ? len : 1);
    if (len)
        memcpy(chunk, data, len);
    int rc = vs_ws_parse(p, chunk, len, &cbs, r);
    free(chunk);
    return rc;
}

/* Feeds b in chunks of the given sizes (cycled), stopping at the first non-zero return. */
static int feed_chunked(vs_ws_parser_t *p, const struct buf *b, const size_t *sizes, size_t nsizes,
                        struct rec *r)
{
    size_t off = 0, k = 0;
    while (off < b->len) {
        size_t n = sizes[k++ % nsizes];
        if (n > b->len - off)
            n = b->len - off;
        int rc = feed(p, b->p + off, n, r);
        if (rc)
            return rc;
        off += n;
    }
    return 0;
}

static const size_t whole[] = {SIZE_MAX}, bytewise[] = {1};

/* Parses b whole and byte by byte; both must fail with err (and its close code) after
 * `before` events, hold no heap afterwards, and refuse further input with the same error. */
static void expect_violation(const struct buf *b, size_t max, int err, size_t before)
{
    uint16_t code = err == VS_EUTF8 ? 1007 : err == VS_ETOOBIG ? 1009 : 1002;
    static struct rec r;
    struct buf ok = {0};
    frame_str(&ok, 0x81, "ok");
    for (int k = 0; k < 2; k++) {
        vs_ws_parser_t p;
        vs_ws_parser_init(&p, max);
        assert_int_equal(vs_ws_parser_close_code(&p), 0);
        assert_int_equal(feed_chunked(&p, b, k ? bytewise : whole, 1, &r), err);
        assert_int_equal(vs_ws_parser_close_code(&p), code);
        assert_int_equal(r.n, before);
        assert_int_equal(vs_ws_parser_buffered(&p), 0);
        assert_int_equal(feed(&p, ok.p, ok.len, &r), err);
        assert_int_equal(r.n, before);
        rec_reset(&r);
        vs_ws_parser_deinit(&p);
    }
    free(ok.p);
}

static void expect_proto(const struct buf *b, size_t before)
{
    expect_violation(b, 1 << 20, VS_EPROTO, before);
}

/* expect_violation() on the frames given as for add(). */
static void expect_fail(size_t max, int err, size_t before, ...)
{
    struct buf b = {0};
    va_list ap;
    va_start(ap, before);
    vadd(&b, ap);
    va_end(ap);
    expect_violation(&b, max, err, before);
    free(b.p);
}

/* Each parser test gets a parser (limit 100), a recorder and a frame buffer. */
struct fx {
    vs_ws_parser_t p;
    struct rec r;
    struct buf b;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    vs_ws_parser_init(&f->p, 100);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    vs_ws_parser_deinit(&f->p);
    rec_reset(&f->r);
    free(f->b.p);
    free(f);
    return 0;
}

/* Starts another case in the same test: a fresh parser, no events, no frames. */
static void restart(struct fx *f, size_t max)
{
    vs_ws_parser_deinit(&f->p);
    vs_ws_parser_init(&f->p, max);
    rec_reset(&f->r);
    f->b.len = 0;
}

static int feed_all(struct fx *f)
{
    return feed(&f->p, f->b.p, f->b.len, &f->r);
}

/* ---- handshake, encoders, UTF-8 ---- */

static void test_parser_size(void **state)
{
    (void)state;
    printf("sizeof(vs_ws_parser_t) = %zu\n", sizeof(vs_ws_parser_t));
    assert_true(sizeof(vs_ws_parser_t) <= 64);
}

static void test_accept_key(void **state)
{
    (void)state;
    char out[29];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_int_equal(vs_ws_accept_key(key, strlen(key), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    key = "x3JJHMbDL1EzLkh9GBhXDw==";
    assert_int_equal(vs_ws_accept_key(key, strlen(key), out), 0);
    assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    /* key_len bounds the key: no NUL needed after it. */
    assert_int_equal(vs_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==trailing", 24, out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    /* empty, 23 and 25 chars, 18 bytes without padding, 15.5 bytes, non-canonical trailing
       bits, a base64url digit, other non-base64 characters */
    static const char *bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",
        "dGhlIHNhbXBsZSBub25jZQ===",
        "dGhlIHNhbXBsZSBub25jZQAA",
        "dGhlIHNhbXBsZSBub25jZ===",
        "dGhlIHNhbXBsZSBub25jZR==",
        "dGhlIHNhbXBsZSBub25jZ-==",
        "dGhlIHNhbXBsZSB*b25jZQ==",
        "dGhlIHNhbXBsZSB b25jZQ==",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(out, 'x', sizeof out);
        assert_int_equal(vs_ws_accept_key(bad[i], strlen(bad[i]), out), VS_EINVAL);
        assert_int_equal(out[0], '\0');
    }
    assert_int_equal(vs_ws_accept_key("dGhlIHNhbXBs\0SBub25jZQ==", 24, out), VS_EINVAL);
    assert_int_equal(vs_ws_accept_key(NULL, 24, out), VS_EINVAL);
}

static void test_frame_header(void **state)
{
    (void)state;
    uint8_t h[VS_WS_MAX_HEADER];
    assert_int_equal(vs_ws_frame_header(h, VS_WS_OP_TEXT, 0), 2);
    assert_memory_equal(h, "\x81\x00", 2);
    assert_int_equal(vs_ws_frame_header(h, VS_WS_OP_BINARY, 125), 2);
    assert_memory_equal(h, "\x82\x7d", 2);
    assert_int_equal(vs_ws_frame_header(h, VS_WS_OP_TEXT, 126), 4);
    assert_memory_equal(h, "\x81\x7e\x00\x7e", 4);
    assert_int_equal(vs_ws_frame_header(h, VS_WS_OP_PONG, 65535), 4);
    assert_memory_equal(h, "\x8a\x7e\xff\xff", 4);
    assert_int_equal(vs_ws_frame_header(h, VS_WS_OP_BINARY, 65536), 10);
    assert_memory_equal(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    assert_int_equal(vs_ws_frame_header(h, VS_WS_OP_CLOSE, 0x123456789aULL), 10);
    assert_memory_equal(h, "\x88\x7f\x00\x00\x00\x12\x34\x56\x78\x9a", 10);
}

static void test_close_payload(void **state)
{
    (void)state;
    uint8_t out[VS_WS_MAX_CONTROL];
    assert_int_equal(vs_ws_close_payload(out, 1000, NULL), 2);
    assert_memory_equal(out, "\x03\xe8", 2);
    assert_int_equal(vs_ws_close_payload(out, 1009, "too big"), 9);
    assert_memory_equal(out, "\x03\xf1too big", 9);
    assert_int_equal(vs_ws_close_payload(out, 4999, ""), 2);
    assert_memory_equal(out, "\x13\x87", 2);
    assert_int_equal(vs_ws_close_payload(out, 0, "ignored"), 0);

    char reason[300];
    memset(reason, 'a', 123);
    reason[123] = '\0';
    assert_int_equal(vs_ws_close_payload(out, 1001, reason), 125);
    memset(reason, 'b', 200);
    reason[200] = '\0';
    assert_int_equal(vs_ws_close_payload(out, 1001, reason), 125);
    assert_memory_equal(out + 2, reason, 123);

    /* A 2-, 3- or 4-byte sequence straddling byte 123 is dropped whole. */
    static const char *seqs[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t s = 0; s < 3; s++) {
        size_t sl = strlen(seqs[s]);
        for (size_t start = 123 - sl; start <= 123; start++) {
            memset(reason, 'x', start);
            memcpy(reason + start, seqs[s], sl);
            strcpy(reason + start + sl, "tail");
            size_t n = vs_ws_close_payload(out, 1000, reason);
            size_t expect = start + sl <= 123 ? start + sl : start;
            assert_int_equal(n, 2 + expect);
            assert_memory_equal(out + 2, reason, expect);
            assert_true(vs_utf8_valid(out + 2, n - 2));
        }
    }
}

/* An independent decode-then-check oracle for vs_utf8_valid. */
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

struct str {
    const uint8_t *s;
    size_t len;
};
/* One Kuhn section per line reads better than one case per line. */
/* clang-format off */
#define U(lit) {(const uint8_t *)(lit), sizeof(lit) - 1}
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Markus Kuhn's UTF-8 decoder stress test, by section. */
static const struct str utf8_good[] = {
    U(""), U("\x00\x7f"), U("plain ASCII, long enough to take the word-at-a-time path"),
    U("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),            /* 1: kosme */
    U("\xc2\x80"), U("\xe0\xa0\x80"), U("\xf0\x90\x80\x80"),       /* 2.1 first of a length */
    U("\xdf\xbf"), U("\xef\xbf\xbf"), U("\xf4\x8f\xbf\xbf"),       /* 2.2 last (to U+10FFFF) */
    U("\xed\x9f\xbf"), U("\xee\x80\x80"), U("\xef\xbf\xbd"),       /* 2.3 U+D7FF E000 FFFD */
    U("\xef\xbf\xbe"),                                             /* 5.3 nonchars are valid */
    U("ASCII then \xe2\x82\xac and \xf0\x9f\x98\x80 and more ASCII text here"),
};

static const struct str utf8_bad[] = {
    U("\x80"), U("\xbf"), U("\x80\xbf\x80"), U("abc\x80"),            /* 3.1 continuations */
    U("\xc0 "), U("\xe0 "), U("\xf0 "), U("\xf8 "), U("\xfc "),       /* 3.2 lonely starts */
    U("\xc2"), U("\xe0\xa0"), U("\xf0\x90\x80"), U("\xdf"),           /* 3.3 last byte missing */
    U("\xef\xbf"), U("\xf4\x8f\xbf"), U("\xe2\x82 more text"),
    U("\xc2\xe0\xa0\xf0\x90\x80"),                                    /* 3.4 concatenated */
    U("\xfe"), U("\xff"), U("\xfe\xfe\xff\xff"),                      /* 3.5 impossible bytes */
    U("\xc0\xaf"), U("\xe0\x80\xaf"), U("\xf0\x80\x80\xaf"),          /* 4.1 overlong '/' */
    U("\xf8\x80\x80\x80\xaf"), U("\xfc\x80\x80\x80\x80\xaf"),
    U("\xc1\xbf"), U("\xe0\x9f\xbf"), U("\xf0\x8f\xbf\xbf"),          /* 4.2 max overlongs */
    U("\xc0\x80"), U("\xe0\x80\x80"), U("\xf0\x80\x80\x80"),          /* 4.3 overlong NUL */
    U("\xed\xa0\x80"), U("\xed\xad\xbf"), U("\xed\xae\x80"),          /* 5.1 surrogates */
    U("\xed\xaf\xbf"), U("\xed\xb0\x80"), U("\xed\xbe\x80"), U("\xed\xbf\xbf"),
    U("\xed\xa0\x80\xed\xb0\x80"), U("\xed\xaf\xbf\xed\xbf\xbf"),     /* 5.2 paired */
    U("\xf4\x90\x80\x80"), U("\xf5\x80\x80\x80"), U("\xf7\xbf\xbf\xbf"), /* > U+10FFFF */
    U("\xf8\x88\x80\x80\x80"), U("\xfc\x84\x80\x80\x80\x80"),
    U("\xe2\x28\xa1"),                                 /* continuation replaced by ASCII */
};
/* clang-format on */

static void test_utf8_kuhn(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(utf8_good); i++) {
        assert_int_equal(vs_utf8_valid(utf8_good[i].s, utf8_good[i].len), 1);
        assert_int_equal(ref_utf8_valid(utf8_good[i].s, utf8_good[i].len), 1);
    }
    for (size_t i = 0; i < COUNT(utf8_bad); i++) {
        assert_int_equal(vs_utf8_valid(utf8_bad[i].s, utf8_bad[i].len), 0);
        assert_int_equal(ref_utf8_valid(utf8_bad[i].s, utf8_bad[i].len), 0);
    }
    /* Every byte that can never appear: C0, C1, F5-FF, alone and followed by continuations. */
    for (int b = 0; b < 256; b++) {
        uint8_t s[4] = {(uint8_t)b, 0x80, 0x80, 0x80};
        if (b == 0xC0 || b == 0xC1 || b >= 0xF5) {
            for (size_t n = 1; n <= 4; n++)
                assert_int_equal(vs_utf8_valid(s, n), 0);
        }
        uint8_t t[16];
        memset(t, 'a', 15);
        t[15] = (uint8_t)b;
        assert_int_equal(vs_utf8_valid(t, 16), b < 0x80);
    }
    /* A bad byte, or a good sequence, at every offset of an ASCII run: the word-at-a-time
       loop must stop on any lane. */
    for (size_t pos = 0; pos < 40; pos++) {
        uint8_t t[48];
        memset(t, 'a', sizeof t);
        t[pos] = 0x80;
        assert_int_equal(vs_utf8_valid(t, sizeof t), 0);
        t[pos] = 0xFF;
        assert_int_equal(vs_utf8_valid(t, sizeof t), 0);
        memcpy(t + pos, "\xf0\x9f\x98\x80", 4);
        assert_int_equal(vs_utf8_valid(t, sizeof t), 1);
        t[pos + 3] = 'a';
        assert_int_equal(vs_utf8_valid(t, sizeof t), 0);
    }
}

/* Against the oracle: every 2- and 3-byte string, and 4-byte strings with every lead from E0
 * and every second and third byte. */
static void test_utf8_exhaustive(void **state)
{
    (void)state;
    uint8_t s[4];
    for (uint32_t v = 0; v < (1u << 24); v++) {
        s[0] = (uint8_t)(v >> 16), s[1] = (uint8_t)(v >> 8), s[2] = (uint8_t)v;
        if (vs_utf8_valid(s, 3) != ref_utf8_valid(s, 3))
            fail_msg("3-byte %02x %02x %02x", s[0], s[1], s[2]);
        if (v < 65536 && vs_utf8_valid(s + 1, 2) != ref_utf8_valid(s + 1, 2))
            fail_msg("2-byte %02x %02x", s[1], s[2]);
    }
    static const uint8_t last[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0xbf, 0xc0, 0xff};
    for (uint32_t lead = 0xE0; lead <= 0xFF; lead++) {
        for (uint32_t v = 0; v < 65536; v++) {
            for (size_t k = 0; k < sizeof last; k++) {
                s[0] = (uint8_t)lead, s[1] = (uint8_t)(v >> 8), s[2] = (uint8_t)v, s[3] = last[k];
                if (vs_utf8_valid(s, 4) != ref_utf8_valid(s, 4))
                    fail_msg("4-byte %02x %02x %02x %02x", s[0], s[1], s[2], s[3]);
            }
        }
    }
}

/* ---- the parser: deliveries ---- */

static void test_single_frames(void **state)
{
    struct fx *f = *state;
    static uint8_t big[70000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    restart(f, 70000);
    frame_str(&f->b, 0x81, "hello");
    frame(&f->b, 0x82, big, 200);      /* 16-bit length */
    frame(&f->b, 0x82, big, 65535);    /* largest 16-bit length */
    frame(&f->b, 0x82, big, 70000);    /* 64-bit length */
    frame(&f->b, 0x82, "\xff\xfe", 2); /* binary is not UTF-8 checked */
    frame_str(&f->b, 0x89, "ping!");
    frame_str(&f->b, 0x8A, "pong!");
    frame(&f->b, 0x89, big, 125);
    close_frame(&f->b, 1000, "bye");
    assert_int_equal(feed_all(f), 0);
    assert_int_equal(f->r.n, 9);
    assert_event(&f->r, 0, EV_MSG, VS_WS_OP_TEXT, "hello", 5);
    assert_event(&f->r, 1, EV_MSG, VS_WS_OP_BINARY, big, 200);
    assert_event(&f->r, 2, EV_MSG, VS_WS_OP_BINARY, big, 65535);
    assert_event(&f->r, 3, EV_MSG, VS_WS_OP_BINARY, big, 70000);
    assert_event(&f->r, 4, EV_MSG, VS_WS_OP_BINARY, "\xff\xfe", 2);
    assert_event(&f->r, 5, EV_PING, 0, "ping!", 5);
    assert_event(&f->r, 6, EV_PONG, 0, "pong!", 5);
    assert_event(&f->r, 7, EV_PING, 0, big, 125);
    assert_event(&f->r, 8, EV_CLOSE, 1000, "bye", 3);
    assert_int_equal(vs_ws_parser_close_code(&f->p), 0);
}

static void test_zero_length_frames(void **state)
{
    struct fx *f = *state;
    struct buf *b = &f->b;
    restart(f, 0); /* only empty messages fit... */
    /* then a fragmented text with empty first, middle and last fragments */
    add(b, 0x81, "", 0x82, "", 0x89, "", 0x8A, "", 0x01, "", 0x00, "", 0x80, "", -1);
    assert_int_equal(feed_all(f), 0);
    assert_int_equal(vs_ws_parser_buffered(&f->p), 0);
    vs_ws_parser_deinit(&f->p);
    vs_ws_parser_init(&f->p, 3); /* ...then room for a fragmented binary with an empty middle */
    b->len = 0;
    add(b, 0x02, "", 0x00, "ab", 0x00, "", 0x80, "c", 0x88, "", -1); /* close: no status */
    assert_int_equal(feed_all(f), 0);
    assert_int_equal(f->r.n, 7);
    assert_event(&f->r, 0, EV_MSG, VS_WS_OP_TEXT, "", 0);
    assert_event(&f->r, 1, EV_MSG, VS_WS_OP_BINARY, "", 0);
    assert_event(&f->r, 2, EV_PING, 0, "", 0);
    assert_event(&f->r, 3, EV_PONG, 0, "", 0);
    assert_event(&f->r, 4, EV_MSG, VS_WS_OP_TEXT, "", 0);
    assert_event(&f->r, 5, EV_MSG, VS_WS_OP_BINARY, "abc", 3);
    assert_event(&f->r, 6, EV_CLOSE, 1005, "", 0);
    assert_int_equal(vs_ws_parser_buffered(&f->p), 0);
}

static void test_fragmented_with_interleaved_control(void **state)
{
    struct fx *f = *state;
    struct buf *b = &f->b;
    /* é split across fragments; a new message may start once the last ended */
    add(b, 0x01, "Hel", 0x89, "p1", 0x00, "lo, w\xc3", 0x8A, "p2", 0x89, "", 0x80, "\xa9rld", 0x02,
        "bin", 0x80, "ary", -1);
    assert_int_equal(feed_all(f), 0);
    assert_int_equal(f->r.n, 5);
    assert_event(&f->r, 0, EV_PING, 0, "p1", 2);
    assert_event(&f->r, 1, EV_PONG, 0, "p2", 2);
    assert_event(&f->r, 2, EV_PING, 0, "", 0);
    assert_event(&f->r, 3, EV_MSG, VS_WS_OP_TEXT, "Hello, w\xc3\xa9rld", 13);
    assert_event(&f->r, 4, EV_MSG, VS_WS_OP_BINARY, "binary", 6);
    assert_int_equal(vs_ws_parser_buffered(&f->p), 0);
}

static void test_many_frames_one_chunk(void **state)
{
    struct fx *f = *state;
    char s[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(s, sizeof s, "message %d", i);
        frame_str(&f->b, i % 3 == 2 ? 0x89 : (i % 3 ? 0x82 : 0x81), s);
    }
    assert_int_equal(feed_all(f), 0);
    assert_int_equal(f->r.n, 2000);
    for (int i = 0; i < 2000; i++) {
        snprintf(s, sizeof s, "message %d", i);
        if (i % 3 == 2)
            assert_event(&f->r, (size_t)i, EV_PING, 0, s, strlen(s));
        else
            assert_event(&f->r, (size_t)i, EV_MSG, i % 3 ? 2 : 1, s, strlen(s));
    }
}

/* Whole frames are delivered from the caller's buffer, unmasked in place, and no heap is held
 * unless a payload is actually split. */
static void test_zero_copy_and_heap(void **state)
{
    struct fx *f = *state;
    vs_ws_parser_t *p = &f->p;
    struct rec *r = &f->r;
    struct buf *b = &f->b;
    add(b, 0x81, "first", 0x89, "ping", 0x82, "second", -1);
    uint8_t *chunk = memcpy(malloc(b->len), b->p, b->len);
    assert_int_equal(vs_ws_parse(p, chunk, b->len, &cbs, r), 0);
    assert_int_equal(r->n, 3);
    assert_ptr_equal(r->ev[0].ptr, chunk + 6);
    assert_memory_equal(chunk + 6, "first", 5);
    assert_ptr_equal(r->ev[1].ptr, chunk + 11 + 6);
    assert_ptr_equal(r->ev[2].ptr, chunk + 21 + 6);
    assert_int_equal(vs_ws_parser_buffered(p), 0);
    free(chunk);

    /* Header split, or ending its chunk: the payload is still delivered in place. */
    restart(f, 100);
    frame_str(b, 0x81, "payload");
    for (size_t cut = 1; cut <= 6; cut++) {
        uint8_t *c1 = memcpy(malloc(cut), b->p, cut);
        uint8_t *c2 = memcpy(malloc(b->len - cut), b->p + cut, b->len - cut);
        assert_int_equal(vs_ws_parse(p, c1, cut, &cbs, r), 0);
        assert_int_equal(vs_ws_parser_buffered(p), 0);
        assert_int_equal(r->n, 0);
        assert_int_equal(vs_ws_parse(p, c2, b->len - cut, &cbs, r), 0);
        assert_int_equal(r->n, 1);
        assert_ptr_equal(r->ev[0].ptr, c2 + (6 - cut));
        assert_event(r, 0, EV_MSG, VS_WS_OP_TEXT, "payload", 7);
        free(c1);
        free(c2);
        rec_reset(r);
    }

    /* A split payload is buffered, then released on delivery. */
    assert_int_equal(feed(p, b->p, 8, r), 0);
    assert_int_equal(vs_ws_parser_buffered(p), 7);
    assert_int_equal(feed(p, b->p + 8, b->len - 8, r), 0);
    assert_event(r, 0, EV_MSG, VS_WS_OP_TEXT, "payload", 7);
    assert_int_equal(vs_ws_parser_buffered(p), 0);

    /* A split control frame too. */
    restart(f, 100);
    frame_str(b, 0x89, "ping payload");
    assert_int_equal(feed(p, b->p, 9, r), 0);
    assert_true(vs_ws_parser_buffered(p) > 0);
    assert_int_equal(feed(p, b->p + 9, b->len - 9, r), 0);
    assert_event(r, 0, EV_PING, 0, "ping payload", 12);
    assert_int_equal(vs_ws_parser_buffered(p), 0);

    /* A fragmented message holds heap until its last fragment, even when each fragment
       arrives whole; it grows, but never past the limit. */
    restart(f, 100);
    frame_str(b, 0x01, "frag");
    assert_int_equal(feed_all(f), 0);
    assert_in_range(vs_ws_parser_buffered(p), 4, 100);
    b->len = 0;
    frame_str(b, 0x80, "ment");
    assert_int_equal(feed_all(f), 0);
    assert_event(r, 0, EV_MSG, VS_WS_OP_TEXT, "fragment", 8);
    assert_int_equal(vs_ws_parser_buffered(p), 0);

    /* deinit frees what a split frame holds (ASan would report a leak) and refuses input. */
    restart(f, 100);
    frame_str(b, 0x82, "unfinished");
    assert_int_equal(feed(p, b->p, 9, r), 0);
    assert_true(vs_ws_parser_buffered(p) > 0);
    vs_ws_parser_deinit(p);
    assert_int_equal(vs_ws_parser_buffered(p), 0);
    assert_int_equal(feed_all(f), VS_ECLOSED);
}

/* A stream mixing every kind of frame. */
static void build_mixed_stream(struct buf *b, int with_big)
{
    static uint8_t big[70000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i ^ (i >> 8));
    frame_str(b, 0x81, "hello");
    frame(b, 0x82, big, 300);
    add(b, 0x89, "p1", 0x01, "h\xc3", 0x8A, "pong", 0x00, "\xa9llo \xe2", 0x00, "", 0x89, "", 0x00,
        "\x82", 0x80, "\xac \xf0\x9f\x98\x80!", -1);
    if (with_big)
        frame(b, 0x82, big, sizeof big);
    add(b, 0x81, "", 0x82, "", 0x8A, "", 0x02, "", -1);
    frame(b, 0x00, big, 130);
    frame(b, 0x80, big + 130, 20);
    frame_str(b, 0x81, "unicode \xf4\x8f\xbf\xbf end");
    close_frame(b, 4000, "going \xe2\x82\xac");
    frame_str(b, 0x81, "never delivered");
}

/* However the stream is cut into chunks, the same events come out. */
static void test_chunking_invariance(void **state)
{
    struct fx *f = *state;
    static struct rec ref;
    vs_ws_parser_t *p = &f->p;
    restart(f, 70000);
    build_mixed_stream(&f->b, 1);
    assert_int_equal(feed(p, f->b.p, f->b.len, &ref), 0);
    assert_int_equal(ref.n, 13);
    assert_event(&ref, 5, EV_MSG, VS_WS_OP_TEXT, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80!", 16);
    assert_event(&ref, 12, EV_CLOSE, 4000, "going \xe2\x82\xac", 9);

    static const size_t odd[] = {3, 1, 7, 2, 13, 5}, large[] = {65536, 17, 4096};
    const size_t *plans[] = {bytewise, odd, large};
    const size_t nplans[] = {1, 6, 3};
    for (int k = 0; k < 203; k++) {
        size_t sizes[16];
        for (int i = 0; i < 16; i++)
            sizes[i] = 1 + rng() % (k % 2 ? 40 : 9000);
        restart(f, 70000);
        build_mixed_stream(&f->b, 1);
        assert_int_equal(
            feed_chunked(p, &f->b, k < 3 ? plans[k] : sizes, k < 3 ? nplans[k] : 16, &f->r), 0);
        assert_same_events(&ref, &f->r);
        assert_int_equal(vs_ws_parser_buffered(p), 0);
    }
    rec_reset(&ref);

    /* Every split point into two chunks (and into three around each). */
    restart(f, 70000);
    build_mixed_stream(&f->b, 0);
    assert_int_equal(feed(p, f->b.p, f->b.len, &ref), 0);
    const uint8_t *s = f->b.p;
    size_t n = f->b.len;
    for (size_t cut = 0; cut <= n; cut++) {
        for (size_t second = 0; second < 3 && cut + second <= n; second++) {
            vs_ws_parser_deinit(p);
            vs_ws_parser_init(p, 70000);
            rec_reset(&f->r);
            assert_int_equal(feed(p, s, cut, &f->r), 0);
            assert_int_equal(feed(p, s + cut, second, &f->r), 0);
            assert_int_equal(feed(p, s + cut + second, n - cut - second, &f->r), 0);
            assert_same_events(&ref, &f->r);
        }
    }
    rec_reset(&ref);
}

/* ---- the parser: violations ---- */

static void test_header_violations(void **state)
{
    struct fx *f = *state;
    static const uint8_t unmasked[] = {0x81, 0x82, 0x89, 0x8A, 0x88};
    for (size_t i = 0; i < sizeof unmasked; i++) {
        f->b.len = 0;
        frame_raw(&f->b, unmasked[i], "abc", 3, 3, UNMASKED);
        expect_proto(&f->b, 0);
    }
    /* RSV1-3, on data, control and continuation frames */
    static const uint8_t rsv[] = {0xC1, 0xA1, 0x91, 0xF1, 0xC2, 0xC9, 0xA8, 0x41};
    for (size_t i = 0; i < sizeof rsv; i++)
        expect_fail(100, VS_EPROTO, 1, 0x81, "ok", rsv[i], "x", -1);
    expect_fail(100, VS_EPROTO, 0, 0x01, "a", 0xC0, "b", -1);
    static const uint8_t ops[] = {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF};
    for (size_t i = 0; i < sizeof ops; i++) {
        expect_fail(100, VS_EPROTO, 0, 0x80 | ops[i], "", -1);
        expect_fail(100, VS_EPROTO, 0, ops[i], "", -1);
    }
    /* Detected from the second byte, without waiting for the rest. */
    assert_int_equal(feed(&f->p, (const uint8_t *)"\x81\x05", 2, &f->r), VS_EPROTO);
    assert_int_equal(vs_ws_parser_close_code(&f->p), 1002);
}

static void test_control_rules(void **state)
{
    struct fx *f = *state;
    static const uint8_t ops[] = {0x8, 0x9, 0xA};
    uint8_t pl[126] = {0x03, 0xe8};
    memset(pl + 2, 'r', sizeof pl - 2);
    for (size_t i = 0; i < sizeof ops; i++) {
        expect_fail(100, VS_EPROTO, 0, ops[i], "", -1); /* FIN clear */
        restart(f, 100);
        frame(&f->b, 0x80 | ops[i], pl, 126); /* 126 bytes */
        expect_proto(&f->b, 0);
        f->b.len = 0;
        frame_raw(&f->b, 0x80 | ops[i], pl, 5, 5, LEN_16); /* short, but a 16-bit length */
        expect_proto(&f->b, 0);
        /* 125 bytes is fine, also inside a fragmented message */
        f->b.len = 0;
        frame_str(&f->b, 0x01, "frag");
        frame(&f->b, 0x80 | ops[i], pl, 125);
        assert_int_equal(feed_all(f), 0);
        assert_int_equal(f->r.n, 1);
        assert_int_equal(f->r.ev[0].len, ops[i] == 0x8 ? 123 : 125);
    }
}

static void test_fragmentation_rules(void **state)
{
    (void)state;
    expect_fail(100, VS_EPROTO, 0, 0x80, "orphan", -1); /* continuation, nothing open */
    expect_fail(100, VS_EPROTO, 0, 0x00, "orphan", -1);
    expect_fail(100, VS_EPROTO, 1, 0x01, "a", 0x80, "b", 0x80, "c", -1); /* after the end */
    static const uint8_t first[] = {0x01, 0x02}, second[] = {0x81, 0x82, 0x01, 0x02};
    for (size_t i = 0; i < 2; i++) {
        for (size_t j = 0; j < 4; j++)
            expect_fail(100, VS_EPROTO, 1, first[i], "open", 0x89, "ping", second[j], "new", -1);
    }
}

static void test_length_encodings(void **state)
{
    struct fx *f = *state;
    struct buf *b = &f->b;
    static uint8_t pl[65536];
    memset(pl, 'z', sizeof pl);
    static const uint64_t short16[] = {0, 1, 125}, short64[] = {0, 125, 126, 65535};
    for (size_t i = 0; i < COUNT(short16); i++) {
        b->len = 0;
        frame_raw(b, 0x82, pl, short16[i], short16[i], LEN_16);
        expect_proto(b, 0);
    }
    for (size_t i = 0; i < COUNT(short64); i++) {
        b->len = 0;
        frame_raw(b, 0x82, pl, short64[i], short64[i], LEN_64);
        expect_proto(b, 0);
    }
    /* Top bit set: a protocol error even when the limit is as large as it gets. */
    static const uint64_t huge[] = {1ULL << 63, UINT64_MAX, (1ULL << 63) + 65536};
    for (size_t i = 0; i < COUNT(huge); i++) {
        b->len = 0;
        frame_raw(b, 0x82, "", 0, huge[i], LEN_64);
        expect_violation(b, SIZE_MAX, VS_EPROTO, 0);
    }
    /* The smallest minimal encodings are accepted. */
    restart(f, 65536);
    frame_raw(b, 0x82, pl, 126, 126, LEN_16);
    frame_raw(b, 0x82, pl, 65536, 65536, LEN_64);
    assert_int_equal(feed_all(f), 0);
    assert_event(&f->r, 0, EV_MSG, VS_WS_OP_BINARY, pl, 126);
    assert_event(&f->r, 1, EV_MSG, VS_WS_OP_BINARY, pl, 65536);
}

static void test_message_too_big(void **state)
{
    struct fx *f = *state;
    vs_ws_parser_t *p = &f->p;
    struct buf *b = &f->b;

    /* Exactly the limit passes, single or fragmented (control frames do not count); one more
       byte does not. */
    add(b, 0x81, qs(100), 0x02, qs(40), 0x89, qs(125), 0x80, qs(60), -1);
    assert_int_equal(feed_all(f), 0);
    assert_int_equal(f->r.n, 3);
    expect_fail(100, VS_ETOOBIG, 0, 0x81, qs(101), -1);
    expect_fail(299, VS_ETOOBIG, 0, 0x82, qs(300), -1);
    expect_fail(100, VS_ETOOBIG, 0, 0x01, qs(50), 0x00, qs(50), 0x80, qs(1), -1);

    /* The header alone decides: a 1 GB frame fails on its last length byte, before the
       masking key or any payload, and nothing is allocated. */
    static const uint8_t gig[] = {0x82, 0xFF, 0, 0, 0, 0, 0x40, 0, 0, 0};
    restart(f, 1 << 20);
    for (size_t i = 0; i < sizeof gig - 1; i++)
        assert_int_equal(feed(p, gig + i, 1, &f->r), 0);
    assert_int_equal(vs_ws_parser_buffered(p), 0);
    assert_int_equal(feed(p, gig + 9, 1, &f->r), VS_ETOOBIG);
    assert_int_equal(vs_ws_parser_close_code(p), 1009);
    assert_int_equal(vs_ws_parser_buffered(p), 0);

    /* 16-bit length over the limit: fails after 4 bytes. */
    restart(f, 1000);
    assert_int_equal(feed(p, (const uint8_t *)"\x81\xfe\x03\xe9", 4, &f->r), VS_ETOOBIG);

    /* A fragment that would overflow the open message fails on its header, without its
       payload, and the buffered fragments are released. */
    restart(f, 100);
    frame_str(b, 0x01, qs(60));
    assert_int_equal(feed_all(f), 0);
    assert_true(vs_ws_parser_buffered(p) >= 60);
    assert_int_equal(feed(p, (const uint8_t *)"\x80\xa9", 2, &f->r), VS_ETOOBIG);
    assert_int_equal(vs_ws_parser_buffered(p), 0);
    assert_int_equal(f->r.n, 0);

    /* Thousands of 1-byte fragments reassemble to exactly the limit. */
    restart(f, 5000);
    for (int i = 0; i < 5000; i++)
        frame_str(b, i == 0 ? 0x02 : i == 4999 ? 0x80 : 0x00, "q");
    assert_int_equal(feed_all(f), 0);
    assert_int_equal(f->r.n, 1);
    assert_event(&f->r, 0, EV_MSG, VS_WS_OP_BINARY, qs(5000), 5000);
}

static void test_text_utf8(void **state)
{
    struct fx *f = *state;
    vs_ws_parser_t *p = &f->p;
    struct buf *b = &f->b;
    /* Every invalid sequence of the Kuhn list, as a whole text frame... */
    for (size_t i = 0; i < COUNT(utf8_bad); i++) {
        b->len = 0;
        frame_str(b, 0x81, "ok");
        frame(b, 0x81, utf8_bad[i].s, utf8_bad[i].len);
        expect_violation(b, 100, VS_EUTF8, 1);
    }
    /* ...and split anywhere into two fragments. */
    for (size_t i = 0; i < COUNT(utf8_bad); i++) {
        for (size_t c = 0; c <= utf8_bad[i].len; c++) {
            b->len = 0;
            frame(b, 0x01, utf8_bad[i].s, c);
            frame(b, 0x80, utf8_bad[i].s + c, utf8_bad[i].len - c);
            expect_violation(b, 100, VS_EUTF8, 0);
        }
    }
    /* A valid message split anywhere into three fragments is accepted. */
    for (size_t i = 0; i < COUNT(utf8_good); i++) {
        const uint8_t *s = utf8_good[i].s;
        size_t n = utf8_good[i].len;
        for (size_t c1 = 0; c1 <= n; c1++) {
            for (size_t c2 = c1; c2 <= n; c2 += 3) {
                restart(f, 100);
                frame(b, 0x01, s, c1);
                frame(b, 0x00, s + c1, c2 - c1);
                frame(b, 0x80, s + c2, n - c2);
                assert_int_equal(feed_all(f), 0);
                assert_event(&f->r, 0, EV_MSG, VS_WS_OP_TEXT, s, n);
            }
        }
    }

    /* Fails early: on the bad non-final fragment, and inside a frame whose rest is yet to
       come. */
    restart(f, 100);
    frame_str(b, 0x01, "abc\xff");
    assert_int_equal(feed_all(f), VS_EUTF8);
    assert_int_equal(vs_ws_parser_close_code(p), 1007);
    restart(f, 100);
    frame_str(b, 0x81, "a\xc0\xaf and a lot more text after it");
    assert_int_equal(feed(p, b->p, 6 + 3, &f->r), VS_EUTF8);

    /* A message ending inside a sequence, after valid fragments. */
    expect_fail(100, VS_EUTF8, 0, 0x01, "a\xe2", 0x00, "\x82", 0x80, "", -1);
    expect_fail(100, VS_EUTF8, 0, 0x81, "\xf0\x9f\x98", -1);
}

static void test_close_frames(void **state)
{
    struct fx *f = *state;
    vs_ws_parser_t *p = &f->p;
    struct buf *b = &f->b;
    static const uint16_t good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                    1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    static const uint16_t bad[] = {0,    1,    999,  1004, 1005, 1006, 1015,
                                   1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < COUNT(good); i++) {
        restart(f, 100);
        close_frame(b, good[i], "reason");
        assert_int_equal(feed_all(f), 0);
        assert_event(&f->r, 0, EV_CLOSE, good[i], "reason", 6);
    }
    for (size_t i = 0; i < COUNT(bad); i++) {
        b->len = 0;
        close_frame(b, bad[i], "");
        expect_proto(b, 0);
    }
    b->len = 0;
    frame(b, 0x88, "\x03", 1); /* 1-byte payload */
    expect_proto(b, 0);
    b->len = 0;
    close_frame(b, 1000, "bad \xed\xa0\x80 reason");
    expect_violation(b, 100, VS_EUTF8, 0);
    b->len = 0;
    close_frame(b, 1000, "cut \xe2\x82");
    expect_violation(b, 100, VS_EUTF8, 0);

    /* The longest reason, split across chunks; nothing is delivered after the close, in
       the same chunk or later ones; a message left open is dropped and its heap freed. */
    char reason[124];
    memset(reason, 'R', 123);
    reason[123] = '\0';
    restart(f, 100);
    frame_str(b, 0x01, "open");
    close_frame(b, 1001, reason);
    add(b, 0x80, "end", 0x89, "late ping", -1);
    assert_int_equal(feed(p, b->p, 20, &f->r), 0);
    assert_true(vs_ws_parser_buffered(p) > 0);
    assert_int_equal(feed(p, b->p + 20, b->len - 20, &f->r), 0);
    assert_int_equal(f->r.n, 1);
    assert_event(&f->r, 0, EV_CLOSE, 1001, reason, 123);
    assert_int_equal(vs_ws_parser_buffered(p), 0);
    assert_int_equal(vs_ws_parser_close_code(p), 0);
    assert_int_equal(feed_all(f), 0);
    assert_int_equal(f->r.n, 1);
}

/* ---- callbacks stopping the parser ---- */

static void test_callback_stops(void **state)
{
    struct fx *f = *state;
    struct buf *b = &f->b;
    /* "four" is reassembled from the heap */
    add(b, 0x81, "one", 0x89, "two", 0x8A, "three", 0x01, "fo", 0x80, "ur", -1);
    close_frame(b, 1000, "five");
    frame_str(b, 0x81, "six");
    for (size_t stop = 1; stop <= 5; stop++) {
        for (int split = 0; split < 2; split++) {
            vs_ws_parser_deinit(&f->p);
            vs_ws_parser_init(&f->p, 100);
            rec_reset(&f->r);
            f->r.stop_at = stop;
            f->r.stop_rc = 40 + (int)stop;
            assert_int_equal(feed_chunked(&f->p, b, split ? bytewise : whole, 1, &f->r),
                             40 + (int)stop);
            assert_int_equal(f->r.n, stop);
            assert_int_equal(vs_ws_parser_close_code(&f->p), 0);
            assert_int_equal(vs_ws_parser_buffered(&f->p), 0);
            assert_int_equal(feed_all(f), VS_ECLOSED);
            assert_int_equal(f->r.n, stop);
        }
    }
}

/* With no callbacks set, frames are dropped but still validated and the close still ends
 * the stream. */
static void test_null_callbacks(void **state)
{
    struct fx *f = *state;
    static const vs_ws_callbacks_t none = {0};
    add(&f->b, 0x81, "one", 0x89, "two", 0x8A, "three", -1);
    close_frame(&f->b, 1000, "");
    frame_str(&f->b, 0x81, "\xff after close, ignored");
    assert_int_equal(vs_ws_parse(&f->p, f->b.p, f->b.len, &none, NULL), 0);
    restart(f, 100);
    frame_str(&f->b, 0x81, "\xff");
    assert_int_equal(vs_ws_parse(&f->p, f->b.p, f->b.len, &none, NULL), VS_EUTF8);
}

/* ---- client mode and the masked writer ---- */

/* Appends an unmasked (server) frame. */
static void sframe(struct buf *b, uint8_t b0, const void *payload, size_t len)
{
    frame_raw(b, b0, payload, len, len, UNMASKED);
}

static void client_restart(struct fx *f, size_t max)
{
    vs_ws_parser_deinit(&f->p);
    vs_ws_parser_init_client(&f->p, max);
    rec_reset(&f->r);
    f->b.len = 0;
}

/* A client parser takes unmasked frames, delivers them in place, and applies every other rule
 * the server side does. */
static void test_client_mode(void **state)
{
    struct fx *f = *state;
    struct buf *b = &f->b;
    static struct rec ref;
    client_restart(f, 100);
    sframe(b, 0x81, "hello", 5);
    sframe(b, 0x82, "\x00\xff", 2);
    sframe(b, 0x89, "p", 1);
    sframe(b, 0x01, "frag", 4);
    sframe(b, 0x8A, "", 0);
    sframe(b, 0x80, "ment", 4);
    uint8_t cl[5] = {0x03, 0xe9, 'b', 'y', 'e'};
    sframe(b, 0x88, cl, sizeof cl);
    sframe(b, 0x81, "after close", 11);
    uint8_t *chunk = memcpy(malloc(b->len), b->p, b->len);
    assert_int_equal(vs_ws_parse(&f->p, chunk, b->len, &cbs, &ref), 0);
    assert_int_equal(ref.n, 6);
    assert_event(&ref, 0, EV_MSG, VS_WS_OP_TEXT, "hello", 5);
    assert_ptr_equal(ref.ev[0].ptr, chunk + 2); /* in place, after a 2-byte header */
    assert_event(&ref, 1, EV_MSG, VS_WS_OP_BINARY, "\x00\xff", 2);
    assert_event(&ref, 2, EV_PING, 0, "p", 1);
    assert_event(&ref, 3, EV_PONG, 0, "", 0);
    assert_event(&ref, 4, EV_MSG, VS_WS_OP_TEXT, "fragment", 8);
    assert_event(&ref, 5, EV_CLOSE, 1001, "bye", 3);
    assert_int_equal(vs_ws_parser_buffered(&f->p), 0);
    free(chunk);

    /* The same events however the stream is cut. */
    static const size_t odd[] = {3, 1, 7, 2};
    for (int k = 0; k < 2; k++) {
        vs_ws_parser_deinit(&f->p);
        vs_ws_parser_init_client(&f->p, 100);
        rec_reset(&f->r);
        assert_int_equal(feed_chunked(&f->p, b, k ? odd : bytewise, k ? 4 : 1, &f->r), 0);
        assert_same_events(&ref, &f->r);
        assert_int_equal(vs_ws_parser_buffered(&f->p), 0);
    }
    rec_reset(&ref);

    /* 16- and 64-bit lengths, without a masking key after them. */
    static uint8_t pl[65536];
    memset(pl, 's', sizeof pl);
    client_restart(f, 65536);
    frame_raw(b, 0x82, pl, 126, 126, UNMASKED);
    frame_raw(b, 0x82, pl, 65536, 65536, UNMASKED);
    assert_int_equal(feed_chunked(&f->p, b, bytewise, 1, &f->r), 0);
    assert_event(&f->r, 0, EV_MSG, VS_WS_OP_BINARY, pl, 126);
    assert_event(&f->r, 1, EV_MSG, VS_WS_OP_BINARY, pl, 65536);

    /* A masked frame from a server is a protocol error, seen on its second byte. */
    static const uint8_t ops[] = {0x81, 0x82, 0x89, 0x8A, 0x88, 0x01};
    for (size_t i = 0; i < sizeof ops; i++) {
        client_restart(f, 100);
        frame_raw(b, ops[i], "abc", 3, 3, 0);
        assert_int_equal(feed(&f->p, b->p, 2, &f->r), VS_EPROTO);
        assert_int_equal(vs_ws_parser_close_code(&f->p), 1002);
        assert_int_equal(f->r.n, 0);
        assert_int_equal(feed_all(f), VS_EPROTO);
    }

    /* Reserved bits, an oversized message and invalid UTF-8 fail as on the server side. */
    client_restart(f, 100);
    sframe(b, 0xC1, "x", 1);
    assert_int_equal(feed_all(f), VS_EPROTO);
    assert_int_equal(vs_ws_parser_close_code(&f->p), 1002);
    client_restart(f, 100);
    sframe(b, 0x81, qs(101), 101);
    assert_int_equal(feed_all(f), VS_ETOOBIG);
    assert_int_equal(vs_ws_parser_close_code(&f->p), 1009);
    client_restart(f, 100);
    sframe(b, 0x81, "\xc0\xaf", 2);
    assert_int_equal(feed_all(f), VS_EUTF8);
    assert_int_equal(vs_ws_parser_close_code(&f->p), 1007);
    assert_int_equal(f->r.n, 0);
}

/* The masked writer's frames are exactly what a server parser accepts and unmasks back. */
static void test_masked_writer(void **state)
{
    struct fx *f = *state;
    static uint8_t pl[70000], wire[70000 + VS_WS_MAX_HEADER_MASKED];
    for (size_t i = 0; i < sizeof pl; i++)
        pl[i] = (uint8_t)(i * 7 + (i >> 9));
    static const size_t sizes[] = {0, 1, 5, 125, 126, 127, 65535, 65536, 70000};
    static const size_t hlens[] = {6, 6, 6, 6, 8, 8, 8, 14, 14};
    for (size_t i = 0; i < COUNT(sizes); i++) {
        size_t n = sizes[i];
        uint32_t k = rng();
        uint8_t mask[4];
        memcpy(mask, &k, 4);
        if (i == 0)
            memset(mask, 0, 4); /* a zero key is legal and leaves the payload as is */
        size_t h = vs_ws_frame_header_masked(wire, VS_WS_OP_BINARY, n, mask);
        assert_int_equal(h, hlens[i]);
        assert_int_equal(wire[0], 0x82);
        assert_int_equal(wire[1] & 0x80, 0x80);
        assert_memory_equal(wire + h - 4, mask, 4);
        memcpy(wire + h, pl, n);
        vs_ws_mask(wire + h, n, mask);
        for (size_t j = 0; j < n; j++)
            assert_int_equal(wire[h + j], pl[j] ^ mask[j & 3]);
        restart(f, sizeof pl);
        buf_put(&f->b, wire, h + n);
        assert_int_equal(feed_chunked(&f->p, &f->b, i % 2 ? whole : bytewise, 1, &f->r), 0);
        assert_int_equal(f->r.n, 1);
        assert_event(&f->r, 0, EV_MSG, VS_WS_OP_BINARY, pl, n);
        /* Masking twice with the same key restores the payload. */
        vs_ws_mask(wire + h, n, mask);
        if (n)
            assert_memory_equal(wire + h, pl, n);
    }

    /* A masked close frame built from vs_ws_close_payload(). */
    uint8_t payload[VS_WS_MAX_CONTROL];
    static const uint8_t mask[4] = {0xA5, 0x01, 0xFF, 0x5A};
    size_t n = vs_ws_close_payload(payload, 1000, "done");
    size_t h = vs_ws_frame_header_masked(wire, VS_WS_OP_CLOSE, n, mask);
    assert_int_equal(h, 6);
    memcpy(wire + h, payload, n);
    vs_ws_mask(wire + h, n, mask);
    restart(f, 100);
    buf_put(&f->b, wire, h + n);
    assert_int_equal(feed_all(f), 0);
    assert_event(&f->r, 0, EV_CLOSE, 1000, "done", 4);
}

#define FX_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_size),
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_frame_header),
        cmocka_unit_test(test_close_payload),
        cmocka_unit_test(test_utf8_kuhn),
        cmocka_unit_test(test_utf8_exhaustive),
        FX_TEST(test_single_frames),
        FX_TEST(test_zero_length_frames),
        FX_TEST(test_fragmented_with_interleaved_control),
        FX_TEST(test_many_frames_one_chunk),
        FX_TEST(test_zero_copy_and_heap),
        FX_TEST(test_chunking_invariance),
        FX_TEST(test_header_violations),
        FX_TEST(test_control_rules),
        FX_TEST(test_fragmentation_rules),
        FX_TEST(test_length_encodings),
        FX_TEST(test_message_too_big),
        FX_TEST(test_text_utf8),
        FX_TEST(test_close_frames),
        FX_TEST(test_callback_stops),
        FX_TEST(test_null_callbacks),
        FX_TEST(test_client_mode),
        FX_TEST(test_masked_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
