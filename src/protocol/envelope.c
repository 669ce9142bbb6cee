/* envelope.c: see envelope.h. The contract is "same accept/reject as jansson 2.14's json_loadb
 * with VS_JSON_FLAGS, and no raw NUL byte", so branches below mirror src/load.c of jansson,
 * including where it differs from RFC 8259; comments name the jansson behaviour being
 * reproduced. */
#include "protocol/envelope.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/alloc.h"
#include "common/error.h"

/* ---- bytes ---- */

static inline bool is_digit(uint8_t c)
{
    return (unsigned)(c - '0') < 10;
}

static inline bool is_alpha(uint8_t c)
{
    return (unsigned)((c | 0x20) - 'a') < 26;
}

/* jansson's whitespace is exactly these four. */
static inline const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && *p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* Length of the valid UTF-8 sequence at p (p < end, *p >= 0x80), or 0. Same rules as jansson's
 * utf8_check_first/utf8_check_full: no overlongs, no surrogates, nothing above U+10FFFF. */
static inline size_t utf8_len(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0];
    size_t left = (size_t)(end - p);

    if (c < 0xC2)
        return 0; /* continuation byte, or C0/C1 (overlong ASCII) */
    if (c < 0xE0)
        return left >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))
            return 0; /* overlong, or a UTF-16 surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))
            return 0; /* overlong, or above U+10FFFF */
        return 4;
    }
    return 0;
}

/* jansson validates every character it reads, including its one character of lookahead. */
static inline bool bad_utf8_at(const uint8_t *p, const uint8_t *end)
{
    return p < end && *p >= 0x80 && utf8_len(p, end) == 0;
}

/* The code unit of the 4 hex digits at p, or -1. */
static int32_t hex4(const uint8_t *p)
{
    int32_t v = 0;

    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i], l = c | 0x20;
        int h = is_digit(c) ? c - '0' : (unsigned)(l - 'a') < 6 ? l - 'a' + 10 : -1;
        if (h < 0)
            return -1;
        v = (v << 4) | h;
    }
    return v;
}

/* ---- strings ---- */

enum { C_PLAIN, C_QUOTE, C_BSLASH, C_CTRL, C_HIGH };

static const uint8_t str_class[256] = {
    [0x00 ... 0x1F] = C_CTRL,
    ['"'] = C_QUOTE,
    ['\\'] = C_BSLASH,
    [0x80 ... 0xFF] = C_HIGH,
};

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Sets the high bit of each of the 8 bytes that is a quote, a backslash, a control character or
 * non-ASCII. Borrows can flag extra bytes above the first hit but never hide one, nor flag one
 * below it; the caller then goes byte by byte, so a false flag only costs time. */
static inline uint64_t special8(uint64_t v)
{
    uint64_t q = v ^ (ONES * '"');
    uint64_t b = v ^ (ONES * '\\');
    return (((q - ONES) & ~q) | ((b - ONES) & ~b) | (v - ONES * 0x20) | v) & HIGHS;
}

struct str {
    uint32_t shrink; /* raw length minus decoded length */
    bool escaped;
    bool nul; /* contains \u0000: fine in a value, not in a key */
};

static inline int utf8_size(int32_t cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* Parses the escape at p (a backslash). Returns its raw length (2, 6, or 12 for a surrogate
 * pair) and its code point in *cp, or 0 where jansson rejects it: an unknown letter or bad hex
 * (its first pass over a string), a lone, reversed or unpaired surrogate (its second pass). */
static size_t parse_escape(const uint8_t *p, const uint8_t *end, int32_t *cp)
{
    static const uint8_t simple[128] = {['"'] = '"',  ['\\'] = '\\', ['/'] = '/',  ['b'] = '\b',
                                        ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r', ['t'] = '\t'};
    int32_t u, lo;

    if (end - p < 2 || p[1] >= 0x80)
        return 0;
    if (simple[p[1]]) {
        *cp = simple[p[1]];
        return 2;
    }
    if (p[1] != 'u' || end - p < 6 || (u = hex4(p + 2)) < 0 || (u >= 0xDC00 && u <= 0xDFFF))
        return 0;
    if (u < 0xD800 || u > 0xDBFF) {
        *cp = u;
        return 6;
    }
    if (end - p < 12 || p[6] != '\\' || p[7] != 'u')
        return 0;
    lo = hex4(p + 8);
    if (lo < 0xDC00 || lo > 0xDFFF)
        return 0;
    *cp = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    return 12;
}

static inline int scan_escape(const uint8_t **pp, const uint8_t *end, struct str *s)
{
    int32_t cp;
    size_t n = parse_escape(*pp, end, &cp);

    if (n == 0)
        return VS_EINVAL;
    s->escaped = true;
    s->shrink += (uint32_t)(n - (size_t)utf8_size(cp));
    s->nul |= cp == 0;
    *pp += n;
    return 0;
}

/* *pp just after the opening quote; on success just after the closing one. */
static inline int scan_string(const uint8_t **pp, const uint8_t *end, struct str *s)
{
    const uint8_t *p = *pp;

    s->shrink = 0;
    s->escaped = false;
    s->nul = false;
    for (;;) {
        while (end - p >= 8) {
            uint64_t v, m;
            memcpy(&v, p, 8);
            if ((m = special8(v)) != 0) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                p += __builtin_ctzll(m) >> 3; /* the lowest flag is never a false one */
#endif
                break;
            }
            p += 8;
        }
        if (p == end)
            return VS_EINVAL; /* "premature end of input" */
        switch (str_class[*p]) {
        case C_PLAIN:
            p++;
            break;
        case C_QUOTE:
            *pp = p + 1;
            return 0;
        case C_BSLASH:
            if (scan_escape(&p, end, s))
                return VS_EINVAL;
            break;
        case C_CTRL:
            return VS_EINVAL;
        default: {
            size_t n = utf8_len(p, end);
            if (n == 0)
                return VS_EINVAL;
            p += n;
        }
        }
    }
}

/* ---- decoding escaped strings (cold) ---- */

struct dec {
    const uint8_t *p, *end;
};

static int utf8_put(int32_t u, uint8_t out[4])
{
    static const uint8_t lead[5] = {0, 0, 0xC0, 0xE0, 0xF0};
    int n = utf8_size(u);

    if (n == 1) {
        out[0] = (uint8_t)u;
        return 1;
    }
    for (int i = n - 1; i > 0; i--, u >>= 6)
        out[i] = (uint8_t)(0x80 | (u & 0x3F));
    out[0] = (uint8_t)(lead[n] | u);
    return n;
}

/* Decodes the next unit of a raw string into out. Returns its length (1..4), 0 at the end,
 * -1 on a malformed escape. Raw non-ASCII bytes pass through one at a time. */
static int dec_next(struct dec *d, uint8_t out[4])
{
    int32_t cp;
    size_t n;

    if (d->p == d->end)
        return 0;
    if (*d->p != '\\') {
        out[0] = *d->p++;
        return 1;
    }
    n = parse_escape(d->p, d->end, &cp);
    if (n == 0)
        return -1;
    d->p += n;
    return utf8_put(cp, out);
}

/* Is the raw key (between the quotes) name once decoded? jansson compares decoded keys. */
static bool raw_key_is(const uint8_t *raw, size_t raw_len, bool escaped, const char *name,
                       size_t nlen)
{
    struct dec d = {raw, raw + raw_len};
    uint8_t u[4];
    size_t i = 0;
    int n;

    if (!escaped)
        return raw_len == nlen && memcmp(raw, name, nlen) == 0;
    while ((n = dec_next(&d, u)) > 0) {
        if (i + (size_t)n > nlen || memcmp(name + i, u, (size_t)n))
            return false;
        i += (size_t)n;
    }
    return n == 0 && i == nlen;
}

int vs_json_unescape(vs_slice_t raw, char *out, size_t cap)
{
    /* No arithmetic on a NULL pointer, even with a zero offset (UBSan's pointer-overflow). */
    struct dec d = {(const uint8_t *)raw.p, raw.p ? (const uint8_t *)raw.p + raw.len : NULL};
    size_t n = 0, room;

    if (cap == 0)
        return VS_ETOOBIG;
    if (!out || (!raw.p && raw.len))
        return VS_EINVAL;
    room = cap - 1 < (size_t)INT_MAX ? cap - 1 : (size_t)INT_MAX;
    while (d.p < d.end) {
        const uint8_t *bs = memchr(d.p, '\\', (size_t)(d.end - d.p));
        size_t run = (size_t)((bs ? bs : d.end) - d.p);
        uint8_t u[4];
        int k;

        if (run > room - n)
            goto toobig;
        memcpy(out + n, d.p, run);
        n += run;
        d.p += run;
        if (!bs)
            break;
        k = dec_next(&d, u);
        if (k < 0) {
            out[0] = '\0';
            return VS_EINVAL;
        }
        if ((size_t)k > room - n)
            goto toobig;
        memcpy(out + n, u, (size_t)k);
        n += (size_t)k;
    }
    out[n] = '\0';
    return (int)n;

toobig:
    out[0] = '\0';
    return VS_ETOOBIG;
}

/* ---- numbers ---- */

enum { NUM_OK, NUM_SYNTAX, NUM_OVERFLOW };

/* With JSON_DECODE_INT_AS_REAL every number, integers included, goes through jansson's
 * jsonp_strtod, which fails only when strtod returns +-HUGE_VAL with ERANGE ("real number
 * overflow"); underflow to 0 or a denormal is accepted. Rather than copy the digits out to
 * NUL-terminate them for strtod, overflow is decided exactly on the decimal text: glibc's strtod
 * rounds correctly (to nearest, the mode the server never changes), and jansson swaps '.' for
 * the locale's decimal point first, so the locale cannot change the result either. Numbers
 * below 10^308 are settled by counting digits; only 309-digit magnitudes compare digits.
 *
 * 2^1024 - 2^970: the smallest decimal that strtod rounds to infinity (the midpoint between
 * DBL_MAX and 2^1024 rounds to even, i.e. up). 309 digits. */
static const char overflow_min[] =
    "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017"
    "977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273"
    "854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704"
    "342711559699508093042880177904174497792";

#define EXP_CAP 1000000000000LL /* beyond any digit count of an input below 4 GiB */

/* True if strtod would overflow to +-HUGE_VAL; underflow is fine. The magnitude is
 * 0.d1d2... x 10^k with d1 the first nonzero digit of [ds,de) then [fs,fe) (fs NULL: none). */
static bool real_overflows(const uint8_t *ds, const uint8_t *de, const uint8_t *fs,
                           const uint8_t *fe, int64_t exp)
{
    const uint8_t *seg[2][2];
    int64_t k;
    size_t i = 0;

    if (*ds != '0') {
        k = (de - ds) + exp;
        seg[0][0] = ds, seg[0][1] = de;
        seg[1][0] = fs, seg[1][1] = fe;
    } else {
        const uint8_t *f = fs;
        while (f && f < fe && *f == '0')
            f++;
        if (!f || f == fe)
            return false; /* zero */
        k = exp - (f - fs);
        seg[0][0] = f, seg[0][1] = fe;
        seg[1][0] = seg[1][1] = NULL;
    }
    if (k != 309)
        return k > 309;
    for (int s = 0; s < 2; s++) {
        for (const uint8_t *p = seg[s][0]; p && p < seg[s][1] && i < 309; p++, i++) {
            if (*p != (uint8_t)overflow_min[i])
                return *p > (uint8_t)overflow_min[i];
        }
    }
    /* all 309 digits equal: >= the threshold. Fewer digits: the rest are zeros, and the
     * threshold's last digit is not. */
    return i == 309;
}

/* Lexes a number as jansson's lex_scan_number does with JSON_DECODE_INT_AS_REAL. *pp at '-' or
 * a digit; on return at the character where jansson stopped (its lookahead), also on
 * NUM_SYNTAX. The sign does not matter: overflow is symmetric. */
static int lex_number(const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp, *ds, *de, *fs = NULL, *fe = NULL;
    int64_t exp = 0;

    if (*p == '-')
        p++;
    ds = p;
    if (p < end && *p == '0') {
        p++;
        if (p < end && is_digit(*p))
            goto syntax; /* leading zero */
    } else if (p < end && is_digit(*p)) {
        do
            p++;
        while (p < end && is_digit(*p));
    } else {
        goto syntax;
    }
    de = p;
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p))
            goto syntax;
        fs = p;
        do
            p++;
        while (p < end && is_digit(*p));
        fe = p;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        bool eneg = false;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p == end || !is_digit(*p))
            goto syntax;
        do {
            if (exp < EXP_CAP)
                exp = exp * 10 + (*p - '0');
            p++;
        } while (p < end && is_digit(*p));
        if (eneg)
            exp = -exp;
    }
    *pp = p;
    return real_overflows(ds, de, fs, fe, exp) ? NUM_OVERFLOW : NUM_OK;

syntax:
    *pp = p;
    return NUM_SYNTAX;
}

/* ---- duplicate keys ---- */

#define INLINE_KEYS 256
#define K_ESCAPED 1u

/* A key of an open object, or (one per open object) a marker whose off is the enclosing
 * object's base. Offsets fit in 32 bits because inputs are below 4 GiB. */
struct key {
    uint32_t off; /* first byte after the opening quote */
    uint32_t raw_len, dec_len, flags;
};

struct slot {
    uint32_t idx1; /* key index + 1; 0 = empty */
    uint32_t hash;
};

/* Hash set of the keys of one object with more than VS_ENVELOPE_SMALL_OBJECT members. Keys are
 * attacker-chosen, so the hash is SipHash-1-3 with a random key per set. */
struct keyset {
    struct keyset *prev; /* the set of an enclosing large object */
    uint32_t base;       /* index of the object's first key */
    uint32_t mask, used;
    uint64_t k0, k1;
    struct slot *slot;
};

struct scan {
    const uint8_t *in, *end;
    struct key *keys; /* keys of the objects along the current path */
    uint32_t nkeys, cap;
    uint32_t base; /* index of the innermost open object's first key */
    struct keyset *sets;
    struct key inline_keys[INLINE_KEYS];
};

struct sip {
    uint64_t v0, v1, v2, v3, m;
    size_t len;
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static inline void sip_round(struct sip *s)
{
    s->v0 += s->v1, s->v1 = ROTL(s->v1, 13) ^ s->v0, s->v0 = ROTL(s->v0, 32);
    s->v2 += s->v3, s->v3 = ROTL(s->v3, 16) ^ s->v2;
    s->v0 += s->v3, s->v3 = ROTL(s->v3, 21) ^ s->v0;
    s->v2 += s->v1, s->v1 = ROTL(s->v1, 17) ^ s->v2, s->v2 = ROTL(s->v2, 32);
}

static void sip_init(struct sip *s, uint64_t k0, uint64_t k1)
{
    s->v0 = k0 ^ 0x736f6d6570736575ULL;
    s->v1 = k1 ^ 0x646f72616e646f6dULL;
    s->v2 = k0 ^ 0x6c7967656e657261ULL;
    s->v3 = k1 ^ 0x7465646279746573ULL;
    s->m = 0;
    s->len = 0;
}

static void sip_update(struct sip *s, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s->m |= (uint64_t)p[i] << (8 * (s->len & 7));
        if ((++s->len & 7) == 0) {
            s->v3 ^= s->m;
            sip_round(s);
            s->v0 ^= s->m;
            s->m = 0;
        }
    }
}

static uint64_t sip_final(struct sip *s)
{
    uint64_t b = ((uint64_t)s->len << 56) | s->m;

    s->v3 ^= b;
    sip_round(s);
    s->v0 ^= b;
    s->v2 ^= 0xff;
    sip_round(s);
    sip_round(s);
    sip_round(s);
    return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

static uint32_t key_hash(const struct scan *s, const struct keyset *ks, const struct key *k)
{
    const uint8_t *raw = s->in + k->off;
    struct sip h;

    sip_init(&h, ks->k0, ks->k1);
    if (!(k->flags & K_ESCAPED)) {
        sip_update(&h, raw, k->raw_len);
    } else {
        struct dec d = {raw, raw + k->raw_len};
        uint8_t u[4];
        int n;
        while ((n = dec_next(&d, u)) > 0)
            sip_update(&h, u, (size_t)n);
    }
    return (uint32_t)sip_final(&h);
}

/* Keys are equal when their decoded bytes are (jansson compares after decoding escapes). */
static bool key_eq(const struct scan *s, const struct key *a, const struct key *b)
{
    struct dec da, db;
    uint8_t ua[4], ub[4];
    int na = 0, nb = 0, ia = 0, ib = 0;

    if (a->dec_len != b->dec_len)
        return false;
    if (!((a->flags | b->flags) & K_ESCAPED))
        return memcmp(s->in + a->off, s->in + b->off, a->dec_len) == 0;
    da = (struct dec){s->in + a->off, s->in + a->off + a->raw_len};
    db = (struct dec){s->in + b->off, s->in + b->off + b->raw_len};
    for (;;) {
        if (ia == na) {
            na = dec_next(&da, ua);
            ia = 0;
        }
        if (ib == nb) {
            nb = dec_next(&db, ub);
            ib = 0;
        }
        if (na <= 0 || nb <= 0)
            return na == nb;
        if (ua[ia++] != ub[ib++])
            return false;
    }
}

static void push_key(struct scan *s, const struct key *k)
{
    if (s->nkeys == s->cap) {
        size_t cap = (size_t)s->cap * 2;
        if (s->keys == s->inline_keys) {
            s->keys = vs_malloc(cap * sizeof *s->keys);
            memcpy(s->keys, s->inline_keys, sizeof s->inline_keys);
        } else {
            s->keys = vs_realloc(s->keys, cap * sizeof *s->keys);
        }
        s->cap = (uint32_t)cap;
    }
    s->keys[s->nkeys++] = *k;
}

static void set_place(struct keyset *ks, uint32_t idx1, uint32_t hash)
{
    uint32_t j = hash & ks->mask;
    while (ks->slot[j].idx1)
        j = (j + 1) & ks->mask;
    ks->slot[j] = (struct slot){idx1, hash};
    ks->used++;
}

static void set_grow(struct keyset *ks)
{
    struct slot *old = ks->slot;
    uint32_t oldn = ks->mask + 1;

    ks->mask = oldn * 2 - 1;
    ks->used = 0;
    ks->slot = vs_calloc((size_t)oldn * 2, sizeof *ks->slot);
    for (uint32_t i = 0; i < oldn; i++)
        if (old[i].idx1)
            set_place(ks, old[i].idx1, old[i].hash);
    free(old);
}

/* Turns the innermost object's key list into a hash set once it gets large. */
static void set_build(struct scan *s)
{
    struct keyset *ks = vs_malloc(sizeof *ks);
    uint64_t seed[2];

    if (getrandom(seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        /* no entropy yet (early boot): still better than a fixed key */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed[0] = (uint64_t)(uintptr_t)ks ^ ((uint64_t)ts.tv_nsec << 32);
        seed[1] = (uint64_t)ts.tv_sec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)s;
    }
    ks->k0 = seed[0];
    ks->k1 = seed[1];
    ks->prev = s->sets;
    ks->base = s->base;
    ks->mask = 127;
    ks->used = 0;
    ks->slot = vs_calloc(ks->mask + 1, sizeof *ks->slot);
    for (uint32_t i = s->base; i < s->nkeys; i++)
        set_place(ks, i + 1, key_hash(s, ks, &s->keys[i]));
    s->sets = ks;
}

static void set_free(struct scan *s)
{
    struct keyset *ks = s->sets;
    s->sets = ks->prev;
    free(ks->slot);
    free(ks);
}

/* Adds a key to the innermost open object; VS_EINVAL if it is already there. */
static int add_key(struct scan *s, const struct key *k)
{
    struct keyset *ks = s->sets;

    if (ks && ks->base == s->base) {
        uint32_t h = key_hash(s, ks, k);
        for (uint32_t j = h & ks->mask; ks->slot[j].idx1; j = (j + 1) & ks->mask) {
            if (ks->slot[j].hash == h && key_eq(s, &s->keys[ks->slot[j].idx1 - 1], k))
                return VS_EINVAL;
        }
        push_key(s, k);
        set_place(ks, s->nkeys, h);
        if (ks->used * 2 > ks->mask)
            set_grow(ks);
        return 0;
    }
    for (uint32_t i = s->base; i < s->nkeys; i++) {
        if (s->keys[i].dec_len == k->dec_len && key_eq(s, &s->keys[i], k))
            return VS_EINVAL;
    }
    push_key(s, k);
    if (s->nkeys - s->base > VS_ENVELOPE_SMALL_OBJECT)
        set_build(s);
    return 0;
}

static void open_object(struct scan *s)
{
    struct key marker = {s->base, 0, 0, 0};
    push_key(s, &marker);
    s->base = s->nkeys;
}

static void close_object(struct scan *s)
{
    if (s->sets && s->sets->base == s->base)
        set_free(s);
    s->nkeys = s->base - 1;
    s->base = s->keys[s->nkeys].off;
}

/* ---- the envelope ---- */

enum { F_NONE, F_TYPE, F_TO, F_ID, F_FROM };

/* "t\u0079pe" is "type" to jansson, so it must be to us. */
static int field_of(const struct scan *s, const struct key *k)
{
    static const char *const names[] = {
        [F_TYPE] = "type", [F_TO] = "to", [F_ID] = "id", [F_FROM] = "from"};

    for (int f = F_TYPE; f <= F_FROM; f++) {
        if (strlen(names[f]) == k->dec_len &&
            raw_key_is(s->in + k->off, k->raw_len, k->flags & K_ESCAPED, names[f], k->dec_len))
            return f;
    }
    return F_NONE;
}

static void set_field(vs_envelope_t *env, int field, const uint8_t *vs, const uint8_t *ve,
                      bool escaped)
{
    vs_slice_t *sl;
    uint8_t *kind, *esc;

    switch (field) {
    case F_TYPE:
        sl = &env->type, kind = &env->type_kind, esc = &env->type_escaped;
        break;
    case F_TO:
        sl = &env->to, kind = &env->to_kind, esc = &env->to_escaped;
        break;
    case F_ID:
        sl = &env->id, kind = &env->id_kind, esc = &env->id_escaped;
        break;
    default:
        return;
    }
    if (*vs == '"') {
        sl->p = (const char *)vs + 1;
        sl->len = (size_t)(ve - vs) - 2;
        *kind = VS_JSON_STRING;
        *esc = escaped;
    } else {
        sl->p = (const char *)vs;
        sl->len = (size_t)(ve - vs);
        *kind = VS_JSON_OTHER;
        *esc = 0;
    }
}

/* The error jansson reports when the value at p would be one level too deep: it lexes the
 * token first, so lexer errors that carry a message (bad strings, number overflow, invalid
 * UTF-8 in the token or its lookahead) win; otherwise "maximum parsing depth reached", except
 * at the end of input inside an array, where parse_array never calls parse_value. */
static int depth_error(const uint8_t *p, const uint8_t *end, bool in_object)
{
    struct str str;

    if (p == end)
        return in_object ? VS_EDEPTH : VS_EINVAL;
    if (*p == '"') {
        p++;
        return scan_string(&p, end, &str) ? VS_EINVAL : VS_EDEPTH;
    }
    if (*p == '-' || is_digit(*p)) {
        int r = lex_number(&p, end);
        return r == NUM_OVERFLOW || bad_utf8_at(p, end) ? VS_EINVAL : VS_EDEPTH;
    }
    if (is_alpha(*p)) {
        do
            p++;
        while (p < end && is_alpha(*p));
    }
    return bad_utf8_at(p, end) ? VS_EINVAL : VS_EDEPTH;
}

static inline void set_kind(uint8_t *arr, size_t depth, bool is_array)
{
    if (is_array)
        arr[depth >> 3] |= (uint8_t)(1u << (depth & 7));
    else
        arr[depth >> 3] &= (uint8_t) ~(1u << (depth & 7));
}

/* Is the innermost open container (depth >= 1 of them) an array? */
static inline bool top_is_array(const uint8_t *arr, size_t depth)
{
    return arr[(depth - 1) >> 3] & (1u << ((depth - 1) & 7));
}

static int run(struct scan *s, size_t max_depth, vs_envelope_t *env)
{
    const uint8_t *p = s->in, *end = s->end;
    const uint8_t *vstart = NULL, *vend, *kquote = NULL, *comma = NULL;
    uint8_t arr[VS_JSON_MAX_DEPTH / 8];
    size_t depth = 0;        /* open containers */
    size_t member_depth;     /* depth whose values are top-level members; SIZE_MAX if none */
    int field = F_NONE;      /* which top-level member is being read */
    bool from_first = false; /* the "from" member is the object's first */
    struct str str = {0, false, false};
    struct key k;

    p = skip_ws(p, end);
    if (p == end)
        return VS_EINVAL;
    member_depth = *p == '{' ? 1 : SIZE_MAX;
    env->open = (size_t)(p - s->in);

value:
    /* p at the start of a value, whitespace skipped */
    if (depth >= max_depth)
        return depth_error(p, end, !top_is_array(arr, depth));
    if (depth == member_depth)
        vstart = p;
    if (p == end)
        return VS_EINVAL;
    switch (*p) {
    case '{':
        p = skip_ws(p + 1, end);
        if (p < end && *p == '}') {
            p++;
            goto after_value;
        }
        set_kind(arr, depth++, false);
        open_object(s);
        goto key;
    case '[':
        p = skip_ws(p + 1, end);
        if (p < end && *p == ']') {
            p++;
            goto after_value;
        }
        set_kind(arr, depth++, true);
        goto value;
    case '"':
        p++;
        if (scan_string(&p, end, &str))
            return VS_EINVAL; /* a "\u0000" is fine here: JSON_ALLOW_NUL */
        goto after_value;
    case '-':
    case '0' ... '9':
        if (lex_number(&p, end) != NUM_OK)
            return VS_EINVAL;
        goto after_value;
    case 't':
    case 'f':
    case 'n': {
        const char *lit = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
        size_t n = strlen(lit);
        if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0)
            return VS_EINVAL;
        p += n;
        goto after_value;
    }
    default:
        return VS_EINVAL;
    }

after_value:
    /* jansson would skip a single raw NUL right after a number or keyword (ungetting its
     * lookahead loses it); our own rule rejects every raw NUL, so nothing is skipped here and
     * the NUL fails below like any other stray byte. */
    vend = p;
    if (depth == member_depth && field != F_NONE)
        set_field(env, field, vstart, vend, str.escaped);
    if (depth == 0) {
        if (skip_ws(p, end) != end)
            return VS_EINVAL; /* "end of file expected" */
        return member_depth == 1 ? 0 : VS_EPROTO;
    }
    p = skip_ws(p, end);
    if (p == end)
        return VS_EINVAL;
    if (top_is_array(arr, depth)) {
        if (*p == ',') {
            p = skip_ws(p + 1, end);
            goto value;
        }
        if (*p != ']')
            return VS_EINVAL;
        p++;
        depth--;
        goto after_value;
    }
    if (depth == member_depth) {
        if (field == F_FROM) {
            /* a first member takes the comma after it (if any), any other the comma before */
            env->from[0].start = (size_t)((from_first ? kquote : comma) - s->in);
            env->from[0].end = (size_t)((from_first && *p == ',' ? p + 1 : vend) - s->in);
            env->from_count = 1;
        }
        comma = p;
    }
    if (*p == ',') {
        p = skip_ws(p + 1, end);
        goto key;
    }
    if (*p != '}')
        return VS_EINVAL;
    close_object(s);
    p++;
    depth--;
    goto after_value;

key:
    /* p at the start of a member, whitespace skipped */
    if (p == end || *p != '"')
        return VS_EINVAL; /* "string or '}' expected" */
    k.off = (uint32_t)(p + 1 - s->in);
    if (depth == member_depth)
        kquote = p;
    p++;
    if (scan_string(&p, end, &str) || str.nul)
        return VS_EINVAL; /* "NUL byte in object key not supported", even with JSON_ALLOW_NUL */
    k.raw_len = (uint32_t)(p - 1 - s->in) - k.off;
    k.dec_len = k.raw_len - str.shrink;
    k.flags = str.escaped ? K_ESCAPED : 0;
    if (add_key(s, &k))
        return VS_EINVAL; /* "duplicate object key" */
    if (depth == member_depth) {
        field = field_of(s, &k);
        if (field == F_FROM)
            from_first = env->members == 0;
        if (env->members < VS_ENVELOPE_KEYS) {
            env->key[env->members] = (vs_envelope_span_t){k.off, k.off + k.raw_len};
            env->key_escaped |= (uint8_t)(str.escaped << env->members);
        }
        env->members++;
    }
    p = skip_ws(p, end);
    if (p == end || *p != ':')
        return VS_EINVAL;
    p = skip_ws(p + 1, end);
    goto value;
}

int vs_envelope_scan(const char *json, size_t len, size_t max_depth, vs_envelope_t *env)
{
    struct scan s;
    int rc;

    if (!env)
        return VS_EINVAL;
    memset(env, 0, sizeof *env);
    if (!json)
        return VS_EINVAL;
    if (len > UINT32_MAX)
        return VS_ETOOBIG;
    if (max_depth == 0 || max_depth > VS_JSON_MAX_DEPTH)
        max_depth = VS_JSON_MAX_DEPTH;
    s.in = (const uint8_t *)json;
    s.end = s.in + len;
    s.keys = s.inline_keys;
    s.nkeys = 0;
    s.cap = INLINE_KEYS;
    s.base = 0;
    s.sets = NULL;

    rc = run(&s, max_depth, env);
    /* The scan stops where jansson reports the depth error, but the NUL rule looks at the whole
     * input; everything before that point held no NUL, or the scan would have failed there. */
    if (rc == VS_EDEPTH && memchr(json, '\0', len))
        rc = VS_EINVAL;
    env->json = json;
    env->len = len;

    while (s.sets)
        set_free(&s);
    if (s.keys != s.inline_keys)
        free(s.keys);
    if (rc)
        memset(env, 0, sizeof *env);
    return rc;
}

/* ---- members, again ---- */

/* In input the scan accepted: just past the string whose opening quote is at p. */
static const uint8_t *skip_string(const uint8_t *p, const uint8_t *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return end;
}

/* In input the scan accepted: the ',' or '}' that ends the member value starting at p. */
static const uint8_t *skip_value(const uint8_t *p, const uint8_t *end)
{
    size_t depth = 0;

    while (p < end) {
        switch (*p) {
        case '"':
            p = skip_string(p, end);
            continue;
        case '{':
        case '[':
            depth++;
            break;
        case '}':
        case ']':
            if (depth-- == 0)
                return p;
            break;
        case ',':
            if (depth == 0)
                return p;
            break;
        }
        p++;
    }
    return end;
}

int vs_envelope_has_member(const vs_envelope_t *env, const char *name)
{
    const uint8_t *in = (const uint8_t *)env->json, *end, *p, *k;
    size_t nlen = strlen(name);

    if (!in)
        return 0;
    end = in + env->len;
    if (env->members <= VS_ENVELOPE_KEYS) {
        for (size_t i = 0; i < env->members; i++) {
            if (raw_key_is(in + env->key[i].start, env->key[i].end - env->key[i].start,
                           (env->key_escaped >> i) & 1, name, nlen))
                return 1;
        }
        return 0;
    }
    for (p = in + env->open + 1;;) {
        p = skip_ws(p, end);
        if (p == end || *p != '"')
            return 0;
        k = p + 1;
        p = skip_string(p, end);
        if (p - k >= 1 &&
            raw_key_is(k, (size_t)(p - 1 - k), memchr(k, '\\', (size_t)(p - 1 - k)), name, nlen))
            return 1;
        p = skip_value(skip_ws(skip_ws(p, end) + 1, end), end);
        if (p == end || *p != ',')
            return 0;
        p++;
    }
}

/* ---- splicing "from" ---- */

#define FROM_KEY "\"from\":\""

size_t vs_envelope_splice_size(const vs_envelope_t *env, size_t len, size_t from_len)
{
    size_t n = len, extra = sizeof FROM_KEY - 1 + 1 + 1; /* key, closing quote, comma */

    for (unsigned i = 0; i < env->from_count && i < VS_ENVELOPE_MAX_FROM; i++)
        n -= env->from[i].end - env->from[i].start;
    if (env->members <= env->from_count)
        extra--; /* nothing left to separate from */
    if (from_len > SIZE_MAX - extra - n)
        return SIZE_MAX;
    return n + extra + from_len;
}

long vs_envelope_splice_from(const char *json, size_t len, const vs_envelope_t *env,
                             const char *from, size_t from_len, char *out, size_t cap)
{
    size_t need, pos, o;

    if (!json || !env || (!from && from_len) || env->open >= len || json[env->open] != '{' ||
        env->from_count > VS_ENVELOPE_MAX_FROM)
        return VS_EINVAL;
    pos = env->open + 1;
    for (unsigned i = 0; i < env->from_count; i++) {
        if (env->from[i].start < pos || env->from[i].end < env->from[i].start ||
            env->from[i].end > len)
            return VS_EINVAL;
        pos = env->from[i].end;
    }
    need = vs_envelope_splice_size(env, len, from_len);
    if (need > cap || need > (size_t)LONG_MAX)
        return VS_ETOOBIG;

    o = env->open + 1;
    memcpy(out, json, o);
    memcpy(out + o, FROM_KEY, sizeof FROM_KEY - 1);
    o += sizeof FROM_KEY - 1;
    memcpy(out + o, from, from_len);
    o += from_len;
    out[o++] = '"';
    if (env->members > env->from_count)
        out[o++] = ',';
    pos = env->open + 1;
    for (unsigned i = 0; i < env->from_count; i++) {
        memcpy(out + o, json + pos, env->from[i].start - pos);
        o += env->from[i].start - pos;
        pos = env->from[i].end;
    }
    memcpy(out + o, json + pos, len - pos);
    o += len - pos;
    return (long)o;
}
