/* ws.c: RFC 6455 framing, both sides. See ws.h for what this owns and must never do.
 * Allocation is plain malloc with VS_ENOMEM on failure (never vs_malloc): the client library
 * compiles this file and must not abort. */
#include "transport/ws.h"

#include "common/base64.h"
#include "common/error.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* A cache line: every connection embeds one, and the relay keeps tens of thousands. */
_Static_assert(sizeof(vs_ws_parser_t) <= 64, "vs_ws_parser_t must stay within 64 bytes");

enum {
    ST_HDR = 0, /* at a frame boundary, or inside a header kept in hdr[] */
    ST_PAYLOAD, /* inside the payload of a frame being copied to msg or ctl */
    ST_CLOSED,  /* a close frame was delivered: ignore the rest of the stream */
    ST_STOPPED, /* a callback stopped us (or deinit): refuse input */
    ST_FAILED,  /* protocol violation: close_code tells why */
};

/* Incremental UTF-8 validator: the state says which bytes may come next. The special lead
 * bytes narrow the range of the first continuation byte, which is what rules out overlongs
 * (E0, F0), surrogates (ED) and code points above U+10FFFF (F4). */
enum { U_OK = 0, U_TAIL1, U_TAIL2, U_TAIL3, U_E0, U_ED, U_F0, U_F4, U_BAD };

static const uint8_t utf8_next[U_BAD] = {
    [U_TAIL1] = U_OK, [U_TAIL2] = U_TAIL1, [U_TAIL3] = U_TAIL2, [U_E0] = U_TAIL1,
    [U_ED] = U_TAIL1, [U_F0] = U_TAIL2,    [U_F4] = U_TAIL2,
};

static uint8_t utf8_feed(uint8_t st, const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        if (st == U_OK) {
            if (b < 0x80) {
                /* Signaling traffic is mostly JSON, i.e. ASCII: skip it a word at a time. */
                for (; i + 8 <= n; i += 8) {
                    uint64_t w;
                    memcpy(&w, s + i, 8);
                    if (w & 0x8080808080808080ull)
                        break;
                }
                while (i < n && s[i] < 0x80)
                    i++;
                continue;
            }
            if (b >= 0xC2 && b <= 0xDF)
                st = U_TAIL1;
            else if (b == 0xE0)
                st = U_E0;
            else if (b == 0xED)
                st = U_ED;
            else if (b >= 0xE1 && b <= 0xEF)
                st = U_TAIL2;
            else if (b == 0xF0)
                st = U_F0;
            else if (b >= 0xF1 && b <= 0xF3)
                st = U_TAIL3;
            else if (b == 0xF4)
                st = U_F4;
            else
                return U_BAD; /* 80-C1 (stray continuation, overlong 2-byte), F5-FF */
        } else {
            uint8_t lo = 0x80, hi = 0xBF;
            if (st == U_E0)
                lo = 0xA0;
            else if (st == U_ED)
                hi = 0x9F;
            else if (st == U_F0)
                lo = 0x90;
            else if (st == U_F4)
                hi = 0x8F;
            if (b < lo || b > hi)
                return U_BAD;
            st = utf8_next[st];
        }
        i++;
    }
    return st;
}

int vs_utf8_valid(const uint8_t *s, size_t len)
{
    return len == 0 || utf8_feed(U_OK, s, len) == U_OK;
}

/* XORs the masking key over d[0..n); mask[0] applies to d[0]. */
static void unmask(uint8_t *d, size_t n, const uint8_t mask[4])
{
    uint32_t m32;
    memcpy(&m32, mask, 4);
    if (m32 == 0)
        return; /* client mode (frames from a server are not masked), or a zero key */
    /* Both halves are the same 4 key bytes, so this is right in either byte order. */
    uint64_t m64 = ((uint64_t)m32 << 32) | m32;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, d + i, 8);
        v ^= m64;
        memcpy(d + i, &v, 8);
    }
    for (; i < n; i++)
        d[i] ^= mask[i & 3];
}

void vs_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4])
{
    unmask(data, len, mask);
}

static int error_for(uint16_t code)
{
    switch (code) {
    case VS_WS_CLOSE_INVALID_DATA:
        return VS_EUTF8;
    case VS_WS_CLOSE_TOO_BIG:
        return VS_ETOOBIG;
    case VS_WS_CLOSE_INTERNAL:
        return VS_ENOMEM;
    default:
        return VS_EPROTO;
    }
}

static void release(vs_ws_parser_t *p)
{
    free(p->msg);
    free(p->ctl);
    p->msg = NULL;
    p->ctl = NULL;
    p->msg_len = 0;
    p->msg_cap = 0;
    p->ctl_len = 0;
    p->msg_op = 0;
    p->hdr_len = 0;
    p->remaining = 0;
}

static int fail(vs_ws_parser_t *p, uint16_t code)
{
    release(p);
    p->state = ST_FAILED;
    p->close_code = code;
    return error_for(code);
}

void vs_ws_parser_init(vs_ws_parser_t *p, size_t max_message)
{
    memset(p, 0, sizeof *p);
    p->max_message = max_message > UINT32_MAX ? UINT32_MAX : (uint32_t)max_message;
    p->state = ST_HDR;
}

void vs_ws_parser_init_client(vs_ws_parser_t *p, size_t max_message)
{
    vs_ws_parser_init(p, max_message);
    p->client = 1;
}

void vs_ws_parser_deinit(vs_ws_parser_t *p)
{
    release(p);
    p->state = ST_STOPPED;
}

uint16_t vs_ws_parser_close_code(const vs_ws_parser_t *p)
{
    return p->state == ST_FAILED ? p->close_code : 0;
}

size_t vs_ws_parser_buffered(const vs_ws_parser_t *p)
{
    return p->msg_cap + (p->ctl ? VS_WS_MAX_CONTROL : 0);
}

struct frame {
    uint64_t len;
    uint8_t op;
    uint8_t fin;
    uint8_t hlen;
    uint8_t mask[4];
};

/* The header length announced by its second byte (mask bit and 7-bit length). */
static size_t header_size(uint8_t b1)
{
    uint8_t len7 = b1 & 0x7F;
    return (len7 == 126 ? 4u : len7 == 127 ? 10u : 2u) + (b1 & 0x80 ? 4u : 0u);
}

/* Decodes as much of the header in b[0..n) (n >= 1) as is there, checking each field as soon
 * as it arrives so that a bad stream fails without waiting for more bytes. Returns 0 (with
 * *complete telling whether f is filled) or the close code of the violation. */
static uint16_t check_header(const vs_ws_parser_t *p, const uint8_t *b, size_t n, struct frame *f,
                             int *complete)
{
    *complete = 0;
    f->fin = b[0] >> 7;
    f->op = b[0] & 0x0F;
    if (b[0] & 0x70)
        return VS_WS_CLOSE_PROTOCOL; /* RSV1-3 without a negotiated extension */
    if (f->op >= VS_WS_OP_CLOSE) {
        if (f->op > VS_WS_OP_PONG || !f->fin)
            return VS_WS_CLOSE_PROTOCOL;
    } else if (f->op > VS_WS_OP_BINARY) {
        return VS_WS_CLOSE_PROTOCOL;
    } else if ((f->op == VS_WS_OP_CONT) != (p->msg_op != 0)) {
        /* A continuation needs an open message; a new message needs none open. */
        return VS_WS_CLOSE_PROTOCOL;
    }
    if (n < 2)
        return 0;
    if (!(b[1] & 0x80) != !!p->client)
        return VS_WS_CLOSE_PROTOCOL; /* clients must mask, servers must not */
    uint8_t len7 = b[1] & 0x7F;
    if (f->op >= VS_WS_OP_CLOSE && len7 > VS_WS_MAX_CONTROL)
        return VS_WS_CLOSE_PROTOCOL;
    f->hlen = (uint8_t)header_size(b[1]);
    f->len = len7;
    if (len7 == 126) {
        if (n < 4)
            return 0;
        f->len = (uint64_t)b[2] << 8 | b[3];
        if (f->len < 126)
            return VS_WS_CLOSE_PROTOCOL; /* not the minimal encoding */
    } else if (len7 == 127) {
        if (n < 10)
            return 0;
        f->len = 0;
        for (int i = 2; i < 10; i++)
            f->len = f->len << 8 | b[i];
        if (f->len >> 63 || f->len <= 0xFFFF)
            return VS_WS_CLOSE_PROTOCOL;
    }
    /* Refuse an oversized message from its header alone, before a byte of it is buffered. */
    if (f->op < VS_WS_OP_CLOSE && f->len > (uint64_t)(p->max_message - p->msg_len))
        return VS_WS_CLOSE_TOO_BIG;
    if (n < f->hlen)
        return 0;
    if (p->client)
        memset(f->mask, 0, 4);
    else
        memcpy(f->mask, b + f->hlen - 4, 4);
    *complete = 1;
    return 0;
}

/* Calls a callback with the parser parked in ST_STOPPED, so that a non-zero return leaves it
 * refusing input without us touching p afterwards (the caller may have torn it down). */
#define CALLBACK(p, call)                                                                          \
    do {                                                                                           \
        (p)->state = ST_STOPPED;                                                                   \
        int rc_ = (call);                                                                          \
        if (rc_ != 0)                                                                              \
            return rc_;                                                                            \
        (p)->state = ST_HDR;                                                                       \
    } while (0)

static int deliver_message(vs_ws_parser_t *p, int op, uint8_t *data, size_t len,
                           const vs_ws_callbacks_t *cb, void *ud)
{
    if (cb->on_message)
        CALLBACK(p, cb->on_message(ud, op, data, len));
    return 0;
}

/* RFC 6455 7.4 plus the IANA registry's 1012-1014 (restart, try again later, bad gateway). */
static int close_code_valid(uint16_t code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* A complete control frame; data is unmasked and borrowed. */
static int control(vs_ws_parser_t *p, int op, const uint8_t *data, size_t len,
                   const vs_ws_callbacks_t *cb, void *ud)
{
    if (op == VS_WS_OP_PING) {
        if (cb->on_ping)
            CALLBACK(p, cb->on_ping(ud, data, len));
        return 0;
    }
    if (op == VS_WS_OP_PONG) {
        if (cb->on_pong)
            CALLBACK(p, cb->on_pong(ud, data, len));
        return 0;
    }
    uint16_t code = VS_WS_CLOSE_NO_STATUS;
    size_t reason_len = 0;
    if (len == 1)
        return fail(p, VS_WS_CLOSE_PROTOCOL);
    if (len >= 2) {
        code = (uint16_t)(data[0] << 8 | data[1]);
        if (!close_code_valid(code))
            return fail(p, VS_WS_CLOSE_PROTOCOL);
        reason_len = len - 2;
        if (!vs_utf8_valid(data + 2, reason_len))
            return fail(p, VS_WS_CLOSE_INVALID_DATA);
    }
    release(p); /* a message still being reassembled will never complete */
    if (cb->on_close)
        CALLBACK(p, cb->on_close(ud, code, data + (len >= 2 ? 2 : 0), reason_len));
    p->state = ST_CLOSED;
    return 0;
}

/* Makes room in msg for len more payload bytes. The final frame gets an exact fit; earlier
 * fragments grow geometrically so that a peer sending tiny fragments cannot make us copy the
 * message over and over. msg_len + len <= max_message was checked with the header.
 * Returns 0, or VS_ENOMEM with the parser failed (1011). */
static int reserve(vs_ws_parser_t *p, size_t len, int fin)
{
    size_t need = (size_t)p->msg_len + len;
    if (need <= p->msg_cap)
        return 0;
    size_t cap = need;
    if (!fin) {
        size_t grown = p->msg_cap > p->max_message / 2 ? p->max_message : (size_t)p->msg_cap * 2;
        if (grown < 256)
            grown = 256;
        if (grown > p->max_message)
            grown = p->max_message;
        if (grown > cap)
            cap = grown;
    }
    uint8_t *grown = realloc(p->msg, cap);
    if (!grown)
        return fail(p, VS_WS_CLOSE_INTERNAL); /* releases the old p->msg */
    p->msg = grown;
    p->msg_cap = (uint32_t)cap;
    return 0;
}

/* Copies n payload bytes into msg, unmasking them and validating text as it goes so that an
 * invalid fragment fails before the rest of the message is buffered. */
static int append(vs_ws_parser_t *p, const uint8_t *src, size_t n, const uint8_t mask[4])
{
    if (n == 0)
        return 0;
    uint8_t *dst = p->msg + p->msg_len;
    memcpy(dst, src, n);
    unmask(dst, n, mask);
    p->msg_len += (uint32_t)n;
    if (p->msg_op == VS_WS_OP_TEXT) {
        p->utf8 = utf8_feed(p->utf8, dst, n);
        if (p->utf8 == U_BAD)
            return fail(p, VS_WS_CLOSE_INVALID_DATA);
    }
    return 0;
}

/* Enters ST_PAYLOAD for frame f of which done payload bytes were consumed. */
static void expect_payload(vs_ws_parser_t *p, const struct frame *f, size_t done)
{
    for (int i = 0; i < 4; i++)
        p->mask[i] = f->mask[(i + done) & 3];
    p->remaining = (uint32_t)(f->len - done);
    p->frame_op = f->op;
    p->frame_fin = f->fin;
    p->state = ST_PAYLOAD;
}

/* The last payload byte of a data frame was appended to msg. */
static int end_data_frame(vs_ws_parser_t *p, int fin, const vs_ws_callbacks_t *cb, void *ud)
{
    static uint8_t empty[1];

    if (!fin)
        return 0;
    if (p->msg_op == VS_WS_OP_TEXT && p->utf8 != U_OK)
        return fail(p, VS_WS_CLOSE_INVALID_DATA); /* ends inside a sequence */
    uint8_t *msg = p->msg;
    size_t len = p->msg_len;
    int op = p->msg_op;
    p->msg = NULL;
    p->msg_len = 0;
    p->msg_cap = 0;
    p->msg_op = 0;
    int rc = deliver_message(p, op, msg ? msg : empty, len, cb, ud);
    free(msg);
    return rc;
}

/* At a frame boundary (or inside a header kept in hdr[]): reads the header and whatever of
 * the payload this chunk holds. */
static int start_frame(vs_ws_parser_t *p, uint8_t **curp, uint8_t *end, const vs_ws_callbacks_t *cb,
                       void *ud)
{
    uint8_t *cur = *curp;
    struct frame f;
    int complete;
    uint16_t code;

    if (p->hdr_len == 0) {
        size_t avail = (size_t)(end - cur);
        code = check_header(p, cur, avail, &f, &complete);
        if (code)
            return fail(p, code);
        /* A header that ends the chunk is kept whole, so that a payload arriving entirely in
         * the next chunk can still be delivered from it without a copy. */
        if (!complete || (f.len > 0 && avail == f.hlen)) {
            memcpy(p->hdr, cur, avail);
            p->hdr_len = (uint8_t)avail;
            *curp = end;
            return 0;
        }
        cur += f.hlen;
    } else {
        size_t have = p->hdr_len;
        if (have == 1)
            p->hdr[have++] = *cur++; /* the length byte, which tells how much more to take */
        size_t take = header_size(p->hdr[1]) - have;
        if (take > (size_t)(end - cur))
            take = (size_t)(end - cur);
        memcpy(p->hdr + have, cur, take);
        have += take;
        cur += take;
        code = check_header(p, p->hdr, have, &f, &complete);
        if (code)
            return fail(p, code);
        if (!complete || (f.len > 0 && cur == end)) {
            p->hdr_len = (uint8_t)have;
            *curp = cur;
            return 0;
        }
        p->hdr_len = 0;
    }

    size_t avail = (size_t)(end - cur);
    if (f.op >= VS_WS_OP_CLOSE) {
        if (f.len <= avail) {
            unmask(cur, (size_t)f.len, f.mask);
            *curp = cur + f.len;
            return control(p, f.op, cur, (size_t)f.len, cb, ud);
        }
        p->ctl = malloc(VS_WS_MAX_CONTROL);
        if (!p->ctl)
            return fail(p, VS_WS_CLOSE_INTERNAL);
        memcpy(p->ctl, cur, avail);
        unmask(p->ctl, avail, f.mask);
        p->ctl_len = (uint8_t)avail;
        expect_payload(p, &f, avail);
        *curp = end;
        return 0;
    }
    if (f.op != VS_WS_OP_CONT && f.fin && f.len <= avail) {
        /* The common case: a whole message in one chunk, delivered in place. */
        unmask(cur, (size_t)f.len, f.mask);
        *curp = cur + f.len;
        if (f.op == VS_WS_OP_TEXT && !vs_utf8_valid(cur, (size_t)f.len))
            return fail(p, VS_WS_CLOSE_INVALID_DATA);
        return deliver_message(p, f.op, cur, (size_t)f.len, cb, ud);
    }
    if (f.op != VS_WS_OP_CONT) {
        p->msg_op = f.op;
        p->utf8 = U_OK;
    }
    int rc = reserve(p, (size_t)f.len, f.fin);
    if (rc)
        return rc;
    size_t take = f.len < avail ? (size_t)f.len : avail;
    rc = append(p, cur, take, f.mask);
    if (rc)
        return rc;
    *curp = cur + take;
    if (take < f.len) {
        expect_payload(p, &f, take);
        return 0;
    }
    return end_data_frame(p, f.fin, cb, ud);
}

/* Inside the payload of a frame being buffered. */
static int continue_payload(vs_ws_parser_t *p, uint8_t **curp, uint8_t *end,
                            const vs_ws_callbacks_t *cb, void *ud)
{
    uint8_t *cur = *curp;
    size_t take = (size_t)(end - cur);
    if (take > p->remaining)
        take = p->remaining;
    if (p->frame_op >= VS_WS_OP_CLOSE) {
        memcpy(p->ctl + p->ctl_len, cur, take);
        unmask(p->ctl + p->ctl_len, take, p->mask);
        p->ctl_len += (uint8_t)take;
    } else {
        int rc = append(p, cur, take, p->mask);
        if (rc)
            return rc;
    }
    *curp = cur + take;
    p->remaining -= (uint32_t)take;
    if (p->remaining) {
        uint8_t m[4];
        memcpy(m, p->mask, 4);
        for (int i = 0; i < 4; i++)
            p->mask[i] = m[(i + take) & 3];
        return 0;
    }
    p->state = ST_HDR;
    if (p->frame_op >= VS_WS_OP_CLOSE) {
        uint8_t *ctl = p->ctl;
        size_t len = p->ctl_len;
        p->ctl = NULL;
        p->ctl_len = 0;
        int rc = control(p, p->frame_op, ctl, len, cb, ud);
        free(ctl);
        return rc;
    }
    return end_data_frame(p, p->frame_fin, cb, ud);
}

int vs_ws_parse(vs_ws_parser_t *p, uint8_t *data, size_t len, const vs_ws_callbacks_t *cb, void *ud)
{
    switch (p->state) {
    case ST_FAILED:
        return error_for(p->close_code);
    case ST_STOPPED:
        return VS_ECLOSED;
    case ST_CLOSED:
        return 0;
    }
    if (len == 0)
        return 0;
    uint8_t *cur = data, *end = data + len;
    while (cur < end) {
        int rc = p->state == ST_PAYLOAD ? continue_payload(p, &cur, end, cb, ud)
                                        : start_frame(p, &cur, end, cb, ud);
        if (rc)
            return rc;
        if (p->state == ST_CLOSED)
            return 0;
    }
    return 0;
}

size_t vs_ws_frame_header(uint8_t *out, int opcode, size_t len)
{
    out[0] = (uint8_t)(0x80 | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    uint64_t v = len;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(v >> (56 - 8 * i));
    return 10;
}

size_t vs_ws_frame_header_masked(uint8_t *out, int opcode, size_t len, const uint8_t mask[4])
{
    size_t n = vs_ws_frame_header(out, opcode, len);
    out[1] |= 0x80;
    memcpy(out + n, mask, 4);
    return n + 4;
}

size_t vs_ws_close_payload(uint8_t *out, uint16_t code, const char *reason)
{
    if (code == 0)
        return 0;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    if (!reason)
        return 2;
    size_t n = strnlen(reason, VS_WS_MAX_CLOSE_REASON + 1);
    if (n > VS_WS_MAX_CLOSE_REASON) {
        /* reason[n] is the first byte left out: if it continues a sequence, drop that
           sequence's earlier bytes too. */
        n = VS_WS_MAX_CLOSE_REASON;
        while (n > 0 && ((uint8_t)reason[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out + 2, reason, n);
    return 2 + n;
}

int vs_ws_accept_key(const char *key, size_t key_len, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    out[0] = '\0';
    /* The key must be the canonical base64 of 16 bytes (the strict decoder refuses leftover
     * bits, missing or extra padding). */
    uint8_t raw[16];
    if (!key || key_len != 24 || vs_base64_decode(key, key_len, raw, sizeof raw) != 16)
        return VS_EINVAL;

    uint8_t buf[24 + sizeof guid - 1];
    memcpy(buf, key, 24);
    memcpy(buf + 24, guid, sizeof guid - 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(buf, sizeof buf, md, &md_len, EVP_sha1(), NULL) || md_len != 20)
        return VS_ECRYPTO;
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 digits and a NUL */
    return 0;
}
