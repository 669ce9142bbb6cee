/* json.c: the JSON the library handles as text. Finding the raw text of a top-level member in
 * JSON that jansson already accepted: the server relays payloads byte for byte, and handing the
 * application a re-encoding by jansson would change numbers (1.0, 1e300) and escapes, so events
 * point at the original text; the input is known to be valid, which keeps this a skipper rather
 * than a parser. And writing outgoing messages into a growable buffer. */
#include "internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vl_buf_raw(vl_buf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n + 1 > b->cap - b->len || !b->p) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void vl_buf_str(vl_buf_t *b, const char *s)
{
    vl_buf_raw(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        vl_buf_raw(b, run, (size_t)(s - run));
        char esc[8];
        if (ch == '"' || ch == '\\')
            snprintf(esc, sizeof esc, "\\%c", ch);
        else
            snprintf(esc, sizeof esc, "\\u%04x", ch);
        vl_buf_raw(b, esc, strlen(esc));
        run = s + 1;
    }
    vl_buf_raw(b, run, (size_t)(s - run));
    vl_buf_raw(b, "\"", 1);
}

void vl_buf_free(vl_buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* s[i] is an opening quote; returns the index just past the closing one. */
static size_t skip_string(const char *s, size_t i, size_t n, int *escaped)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\') {
            *escaped = 1;
            i++;
        } else if (s[i] == '"') {
            return i + 1;
        }
    }
    return n;
}

/* s[i] starts a value; returns the index just past it. */
static size_t skip_value(const char *s, size_t i, size_t n)
{
    int esc = 0;
    if (s[i] == '"')
        return skip_string(s, i, n, &esc);
    if (s[i] == '{' || s[i] == '[') {
        size_t depth = 0;
        while (i < n) {
            char ch = s[i];
            if (ch == '"') {
                i = skip_string(s, i, n, &esc);
                continue;
            }
            if (ch == '{' || ch == '[')
                depth++;
            else if ((ch == '}' || ch == ']') && --depth == 0)
                return i + 1;
            i++;
        }
        return n;
    }
    /* number, true, false, null */
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
           s[i] != '\n' && s[i] != '\r')
        i++;
    return i;
}

/* Compares the JSON string token tok[0..len) (quotes included) with name, decoding escapes
 * through jansson. Returns 1, 0 or VOLLI_ENOMEM. */
static int escaped_key_equals(const char *tok, size_t len, const char *name)
{
    json_error_t err;
    json_t *v = json_loadb(tok, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!v)
        return json_error_code(&err) == json_error_out_of_memory ? VOLLI_ENOMEM : 0;
    int eq = json_is_string(v) && json_string_length(v) == strlen(name) &&
             memcmp(json_string_value(v), name, strlen(name)) == 0;
    json_decref(v);
    return eq;
}

int vl_json_member_span(const char *json, size_t len, const char *name, size_t *start, size_t *end)
{
    size_t nlen = strlen(name);
    size_t i = skip_ws(json, 0, len);
    if (i >= len || json[i] != '{')
        return VOLLI_EINVAL;
    i++;
    for (;;) {
        i = skip_ws(json, i, len);
        if (i >= len || json[i] != '"')
            return 0; /* '}' (or the end of a truncated input) */
        int escaped = 0;
        size_t kstart = i;
        i = skip_string(json, i, len, &escaped);
        size_t kend = i;
        int match;
        if (!escaped)
            match = kend - kstart == nlen + 2 && memcmp(json + kstart + 1, name, nlen) == 0;
        else if ((match = escaped_key_equals(json + kstart, kend - kstart, name)) < 0)
            return match;
        i = skip_ws(json, i, len);
        if (i >= len || json[i] != ':')
            return VOLLI_EINVAL;
        i = skip_ws(json, i + 1, len);
        if (i >= len)
            return VOLLI_EINVAL;
        size_t vstart = i;
        i = skip_value(json, i, len);
        if (match) {
            *start = vstart;
            *end = i;
            return 1;
        }
        i = skip_ws(json, i, len);
        if (i >= len || json[i] != ',')
            return 0;
        i++;
    }
}
