/* Tests for protocol/envelope: every verdict is checked at run time against the reference rule,
 * jansson itself (json_loadb with VS_JSON_FLAGS, the server's configuration) plus our "no raw NUL
 * byte" rule, on a hand-picked table, on generated depth edges and on 200k random mutations;
 * every accepted input is also spliced and the result parsed back. The allocator is stubbed here
 * to count scratch allocations. */
#include "common/alloc.h"
#include "common/error.h"
#include "protocol/envelope.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

/* ---- allocation stubs (replace common/alloc.c in this binary) ---- */

/* Scratch memory is released with free(), which LeakSanitizer watches in the sanitizer build. */
static long total_allocs;

void *vs_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    total_allocs++;
    return p;
}

void *vs_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        abort();
    total_allocs++;
    return p;
}

void *vs_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        abort();
    if (!p)
        total_allocs++;
    return q;
}

char *vs_strndup(const char *s, size_t n)
{
    char *d = vs_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *vs_strdup(const char *s)
{
    return vs_strndup(s, strlen(s));
}

/* ---- the oracle ---- */

static const char *code_name(int rc)
{
    return rc == 0           ? "ok"
           : rc == VS_EINVAL ? "EINVAL"
           : rc == VS_EPROTO ? "EPROTO"
           : rc == VS_EDEPTH ? "EDEPTH"
                             : "other";
}

/* What vs_envelope_scan must return according to the reference rule (see envelope.h): a raw NUL
 * byte anywhere is invalid, whatever jansson says; otherwise jansson decides. *root gets the
 * object on 0. */
static int jansson_verdict(const char *buf, size_t len, json_t **root)
{
    json_error_t err;
    json_t *j;

    *root = NULL;
    if (memchr(buf, '\0', len))
        return VS_EINVAL;
    j = json_loadb(buf, len, VS_JSON_FLAGS, &err);
    if (j) {
        if (json_is_object(j)) {
            *root = j;
            return 0;
        }
        json_decref(j);
        return VS_EPROTO;
    }
    if (json_error_code(&err) == json_error_stack_overflow)
        return VS_EDEPTH;
    j = json_loadb(buf, len, VS_JSON_FLAGS | JSON_DECODE_ANY, &err);
    if (j) {
        json_decref(j);
        return VS_EPROTO; /* a valid scalar at the top */
    }
    return VS_EINVAL;
}

static void fail_input(const char *what, const char *buf, size_t len)
{
    char hex[3 * 96 + 1];
    size_t n = len < 96 ? len : 96;
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 3 * i, 4, "%02x ", (unsigned char)buf[i]);
    hex[3 * n] = '\0';
    fail_msg("%s; input (%zu bytes): %s", what, len, hex);
}

static void check_field(json_t *root, const char *name, vs_slice_t raw, uint8_t kind,
                        uint8_t escaped, const char *buf, size_t len)
{
    json_t *v = json_object_get(root, name);

    if (!v) {
        if (kind != VS_JSON_ABSENT)
            fail_input(name, buf, len);
        return;
    }
    if (!json_is_string(v)) {
        /* the raw text of a non-string value must be that value */
        json_t *again = json_loadb(raw.p, raw.len, VS_JSON_FLAGS | JSON_DECODE_ANY, NULL);
        if (kind != VS_JSON_OTHER || !again || !json_equal(again, v))
            fail_input(name, buf, len);
        json_decref(again);
        return;
    }
    if (kind != VS_JSON_STRING || escaped != (memchr(raw.p, '\\', raw.len) != NULL))
        fail_input(name, buf, len);
    char *dec = malloc(raw.len + 1);
    int n = vs_json_unescape(raw, dec, raw.len + 1);
    if (n < 0 || (size_t)n != json_string_length(v) || memcmp(dec, json_string_value(v), n))
        fail_input(name, buf, len);
    free(dec);
}

static const char FROM[] = "alice.b+1@example.org";

/* Splices FROM into an accepted input and checks the result member by member against jansson's
 * view of the input, that removing the spans alone leaves valid JSON, and idempotence. */
static void check_splice(const char *buf, size_t len, const vs_envelope_t *env, json_t *root)
{
    size_t flen = strlen(FROM), need = vs_envelope_splice_size(env, len, flen);
    char *out = malloc(need + 1), *out2 = malloc(need + 1), *cut = malloc(len + 1);
    json_t *got, *without;
    vs_envelope_t env2;
    size_t c = 0, pos = env->open + 1;

    if (vs_envelope_splice_from(buf, len, env, FROM, flen, out, need - 1) != VS_ETOOBIG)
        fail_input("splice into a short buffer", buf, len);
    if (vs_envelope_splice_from(buf, len, env, FROM, flen, out, need) != (long)need)
        fail_input("splice length", buf, len);
    if (memcmp(out, buf, env->open + 1) || memcmp(out + env->open + 1, "\"from\":\"", 8) ||
        memcmp(out + env->open + 9, FROM, flen) || out[env->open + 9 + flen] != '"')
        fail_input("spliced prefix", buf, len);

    got = json_loadb(out, need, VS_JSON_FLAGS, NULL);
    if (!got || json_object_size(got) != json_object_size(root) + !json_object_get(root, "from"))
        fail_input("spliced output does not parse or lost members", buf, len);
    if (!json_is_string(json_object_get(got, "from")) ||
        strcmp(json_string_value(json_object_get(got, "from")), FROM))
        fail_input("spliced from", buf, len);
    for (void *it = json_object_iter(root); it; it = json_object_iter_next(root, it)) {
        const char *key = json_object_iter_key(it);
        json_t *val = json_object_iter_value(it);
        if (strcmp(key, "from") && !json_equal(json_object_get(got, key), val))
            fail_input("spliced member changed", buf, len);
    }

    /* the spans alone: valid JSON, the input minus "from" */
    if (env->from_count > VS_ENVELOPE_MAX_FROM)
        fail_input("from_count", buf, len);
    memcpy(cut, buf, pos);
    c = pos;
    for (unsigned i = 0; i < env->from_count; i++) {
        memcpy(cut + c, buf + pos, env->from[i].start - pos);
        c += env->from[i].start - pos;
        pos = env->from[i].end;
    }
    memcpy(cut + c, buf + pos, len - pos);
    c += len - pos;
    without = json_loadb(cut, c, VS_JSON_FLAGS, NULL);
    json_object_del(root, "from");
    if (!without || !json_equal(without, root) || (env->from_count != 0) != (c != len))
        fail_input("removing the from spans", buf, len);

    /* splicing the output again changes nothing */
    if (vs_envelope_scan(out, need, 0, &env2) != 0 || env2.from_count != 1 ||
        env2.from[0].start != env->open + 1 ||
        vs_envelope_splice_from(out, need, &env2, FROM, flen, out2, need) != (long)need ||
        memcmp(out, out2, need))
        fail_input("splice is not idempotent", buf, len);

    json_decref(got);
    json_decref(without);
    free(out);
    free(out2);
    free(cut);
}

static long accepted_count;

/* vs_envelope_has_member() finds every key jansson sees and nothing else. */
static void check_members(json_t *root, const vs_envelope_t *env, const char *buf, size_t len)
{
    static const char *const absent[] = {"offer", "candidate", "", "a\\u0061", "k1000", "typ"};

    for (void *it = json_object_iter(root); it; it = json_object_iter_next(root, it)) {
        const char *key = json_object_iter_key(it);
        if (!vs_envelope_has_member(env, key))
            fail_input("has_member misses a key", buf, len);
    }
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        if (vs_envelope_has_member(env, absent[i]) != (json_object_get(root, absent[i]) != NULL))
            fail_input("has_member", buf, len);
    }
}

/* Asserts the scanner agrees with jansson on buf; returns the verdict. */
static int check_input_at(const char *buf, size_t len);

/* Scans an exact-size heap copy, so the sanitizer build catches any read past the end. */
static int check_input(const char *in, size_t len)
{
    char *copy = malloc(len ? len : 1);
    int v;

    memcpy(copy, in, len);
    v = check_input_at(copy, len);
    free(copy);
    return v;
}

static int check_input_at(const char *buf, size_t len)
{
    json_t *root;
    int want = jansson_verdict(buf, len, &root);
    vs_envelope_t env;
    int rc = vs_envelope_scan(buf, len, 0, &env);

    if (rc != want) {
        char msg[96];
        snprintf(msg, sizeof msg, "scanner says %s, jansson says %s", code_name(rc),
                 code_name(want));
        fail_input(msg, buf, len);
    }
    if (rc == 0) {
        accepted_count++;
        check_field(root, "type", env.type, env.type_kind, env.type_escaped, buf, len);
        check_field(root, "to", env.to, env.to_kind, env.to_escaped, buf, len);
        check_field(root, "id", env.id, env.id_kind, env.id_escaped, buf, len);
        if (env.members != json_object_size(root) ||
            env.from_count != (json_object_get(root, "from") != NULL))
            fail_input("member count", buf, len);
        check_members(root, &env, buf, len);
        check_splice(buf, len, &env, root);
    } else if (env.type_kind || env.from_count || env.members) {
        fail_input("env not cleared on error", buf, len);
    }
    json_decref(root);
    return want;
}

/* ---- the hand-picked table ---- */

#define OK 0
#define INV VS_EINVAL
#define PRO VS_EPROTO

struct tcase {
    const char *s;
    size_t len;
    int want;
};

/* One row per input would triple the table's length. */
/* clang-format off */
#define T(lit, want) {lit, sizeof(lit) - 1, want}

/* OVF is 2^1024 - 2^970, the smallest decimal strtod rounds to infinity; OVF_HEAD its first 308
 * digits */
#define OVF_HEAD                                                                                   \
    "1797693134862315807937289714053034150799341327100378269361737789804449682927647509466490"  \
    "1797758720709633028641669288791094655554785194040263065748867150582068190890200070838367"  \
    "6273854845817711531764475730270069855571366959622842914819860834936475292719074168444365"  \
    "51070434271155969950809304288017790417449779"
#define OVF OVF_HEAD "2"
#define OVF_MINUS_1 OVF_HEAD "1"
/* 10^308 - 1 (308 nines: below DBL_MAX) and 10^400 - 1 (400 nines, far above it) */
#define NINES50 "99999999999999999999999999999999999999999999999999"
#define E308 NINES50 NINES50 NINES50 NINES50 NINES50 NINES50 "99999999"
#define E400 E308 NINES50 "999999999999999999999999999999999999999999"

static const struct tcase table[] = {
    /* empty input, whitespace, the top level */
    T("", INV), T(" ", INV), T(" \t\r\n", INV), T("{}", OK), T(" {} ", OK),
    T("\t\r\n{}\n\r\t ", OK), T("\f{}", INV), T("\v{}", INV), T("{}\f", INV),
    T("\xc2\xa0{}", INV), T("\xef\xbb\xbf{}", INV), T("[]", PRO), T(" [1,2] ", PRO),
    T("\"str\"", PRO), T("1", PRO), T("-1.5e3", PRO), T("true", PRO), T("null", PRO),
    T("false", PRO), T("nul", INV), T("1 2", INV), T("{}{}", INV), T("{} []", INV),
    T("[]x", INV), T("{}\0", INV), T("\0{}", INV), T("1\0", INV), T("\"a\"\0", INV),
    T("{", INV), T("}", INV), T("{,}", INV), T("{\"a\"}", INV), T("{\"a\":}", INV),
    T("{\"a\" 1}", INV), T("{\"a\":1,}", INV), T("{,\"a\":1}", INV), T("{\"a\":1 \"b\":2}", INV),
    T("{\"a\"::1}", INV), T("{a:1}", INV), T("{'a':1}", INV), T("{\"a\":1]", INV), T("[}", INV),
    T("{1:1}", INV), T("{null:1}", INV), T("{\"a\":1}}", INV), T("{{}}", INV),
    T("{ \"a\" : 1 , \"b\" : [ 1 , 2 ] }", OK), T("{\n\t\"a\"\r\n:\t1\n}", OK),
    /* strings and escapes */
    T("{\"a\":\"plain\"}", OK), T("{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", OK),
    T("{\"a\":\"\\x\"}", INV), T("{\"a\":\"\\a\"}", INV), T("{\"a\":\"\\'\"}", INV),
    T("{\"a\":\"\\0\"}", INV), T("{\"a\":\"\\U0041\"}", INV), T("{\"a\":\"\\u41\"}", INV),
    T("{\"a\":\"\\u004\"}", INV), T("{\"a\":\"\\u00G1\"}", INV), T("{\"a\":\"\\u0041\"}", OK),
    T("{\"a\":\"\\uaBcD\"}", OK),
    T("{\"a\":\"\\u0001\\u001f\"}", OK),
    T("{\"a\":\"\x01\"}", INV), T("{\"a\":\"\x1f\"}", INV), T("{\"a\":\"\t\"}", INV),
    T("{\"a\":\"\n\"}", INV), T("{\"a\":\"\x7f\"}", OK), T("{\"a\":\"\0\"}", INV),
    T("{\"a\":\"\\uD83D\\uDE00\"}", OK), T("{\"a\":\"\\ud83d\\ude00\"}", OK),
    T("{\"a\":\"\\uD83D\"}", INV), T("{\"a\":\"\\uD83Dx\"}", INV),
    T("{\"a\":\"\\uD83D\\uD83D\"}", INV), T("{\"a\":\"\\uDE00\"}", INV),
    T("{\"a\":\"\\uDE00\\uD83D\"}", INV), T("{\"a\":\"\\uD83D\\n\"}", INV),
    T("{\"a\":\"\\uD83D\\u0041\"}", INV), T("{\"a\":\"\\uDBFF\\uDFFF\"}", OK),
    T("{\"a\":\"\\uD800\\uDC00\"}", OK), T("{\"a\":\"\\uFFFF\\uFFFE\"}", OK),
    T("{\"a\":\"\\uD800\\uDC0\"}", INV), T("{\"a\":\"\\uD800\\", INV), T("{\"a\":\"abc", INV),
    T("{\"a\":\"abc\\\"}", INV), T("{\"a\":\"abc\\", INV), T("{\"a\":\"\\u12", INV),
    T("{\"a\":\"0123456789abcdef\\\"0123\"}", OK), T("{\"a\":\"01234567\\u00e9\"}", OK),
    T("{\"a\":\"0123456\\/x\"}", OK), T("{\"a\":\"012345678901234\x01\"}", INV),
    /* UTF-8 */
    T("{\"a\":\"\xc3\xa9\"}", OK), T("{\"a\":\"\xe2\x82\xac\"}", OK),
    T("{\"a\":\"\xf0\x9f\x98\x80\"}", OK), T("{\"a\":\"\xf4\x8f\xbf\xbf\"}", OK),
    T("{\"a\":\"\xf4\x90\x80\x80\"}", INV), T("{\"a\":\"\xc0\x80\"}", INV),
    T("{\"a\":\"\xc1\xbf\"}", INV), T("{\"a\":\"\xe0\x80\x80\"}", INV),
    T("{\"a\":\"\xe0\x9f\xbf\"}", INV), T("{\"a\":\"\xe0\xa0\x80\"}", OK),
    T("{\"a\":\"\xed\xa0\x80\"}", INV), T("{\"a\":\"\xed\xbf\xbf\"}", INV),
    T("{\"a\":\"\xed\x9f\xbf\"}", OK), T("{\"a\":\"\xee\x80\x80\"}", OK),
    T("{\"a\":\"\xf0\x80\x80\x80\"}", INV), T("{\"a\":\"\xf0\x8f\xbf\xbf\"}", INV),
    T("{\"a\":\"\xf0\x90\x80\x80\"}", OK), T("{\"a\":\"\xf5\x80\x80\x80\"}", INV),
    T("{\"a\":\"\xff\"}", INV), T("{\"a\":\"\xfe\"}", INV), T("{\"a\":\"\x80\"}", INV),
    T("{\"a\":\"\xbf\"}", INV), T("{\"a\":\"\xc3\"}", INV), T("{\"a\":\"\xe2\x82\"}", INV),
    T("{\"a\":\"\xc3\xc3\xa9\"}", INV), T("{\"a\":\"\xef\xbf\xbf\xef\xbf\xbe\"}", OK),
    T("{\"a\":\"\xc3", INV), T("{\"a\":\"\xf0\x9f\x98", INV), T("{\"a\":1}\xc3\xa9", INV),
    T("{\xc3\xa9}", INV), T("{\"\xc3\xa9\":1}", OK), T("{\"a\":\xc3\xa9}", INV),
    /* numbers */
    T("{\"a\":0}", OK), T("{\"a\":-0}", OK), T("{\"a\":0.0}", OK), T("{\"a\":-0.0}", OK),
    T("{\"a\":1e5}", OK), T("{\"a\":1E5}", OK), T("{\"a\":1e+5}", OK), T("{\"a\":1e-5}", OK),
    T("{\"a\":1.5e-5}", OK), T("{\"a\":0e0}", OK), T("{\"a\":0E-0}", OK), T("{\"a\":-0e0}", OK),
    T("{\"a\":01}", INV), T("{\"a\":-01}", INV), T("{\"a\":00}", INV), T("{\"a\":1.}", INV),
    T("{\"a\":.5}", INV), T("{\"a\":-.5}", INV), T("{\"a\":1.e5}", INV), T("{\"a\":1e}", INV),
    T("{\"a\":1e+}", INV), T("{\"a\":1e-}", INV), T("{\"a\":-}", INV), T("{\"a\":-a}", INV),
    T("{\"a\":+1}", INV), T("{\"a\":1x}", INV), T("{\"a\":0x1F}", INV), T("{\"a\":1_0}", INV),
    T("{\"a\":1.5.2}", INV), T("{\"a\":1e5.5}", INV), T("{\"a\":1ee5}", INV),
    T("{\"a\":--1}", INV), T("{\"a\":- 1}", INV), T("{\"a\":NaN}", INV),
    T("{\"a\":Infinity}", INV), T("{\"a\":-Infinity}", INV), T("{\"a\":1", INV),
    T("{\"a\":1000000000000000000}", OK),
    T("{\"a\":9223372036854775808.0}", OK), T("{\"a\":9223372036854775808e0}", OK),
    T("{\"a\":1e400}", INV), T("{\"a\":-1e400}", INV), T("{\"a\":1e308}", OK),
    T("{\"a\":1.7976931348623157e308}", OK), T("{\"a\":1.7976931348623158e308}", OK),
    T("{\"a\":1.7976931348623159e308}", INV), T("{\"a\":-1.7976931348623159e308}", INV),
    T("{\"a\":" OVF "}", INV), T("{\"a\":" OVF ".0}", INV), T("{\"a\":" OVF_MINUS_1 ".0}", OK),
    T("{\"a\":" OVF_MINUS_1 ".99999999999}", OK), T("{\"a\":" OVF_MINUS_1 "e0}", OK),
    T("{\"a\":" OVF "e-0}", INV), T("{\"a\":" OVF "0e-1}", INV),
    T("{\"a\":" OVF_MINUS_1 "9e-1}", OK), T("{\"a\":" OVF_HEAD "e1}", OK),
    T("{\"a\":" OVF_HEAD "0}", OK), T("{\"a\":" OVF_HEAD "3}", INV), T("{\"a\":0." OVF_HEAD "e309}", OK),
    T("{\"a\":0.0" OVF "e310}", INV), T("{\"a\":0.00" OVF "e310}", OK),
    T("{\"a\":1e-400}", OK), T("{\"a\":1e-99999999999999999999}", OK),
    T("{\"a\":1e99999999999999999999}", INV), T("{\"a\":0e99999999999999999999}", OK),
    T("{\"a\":0.000e400}", OK), T("{\"a\":0.0001e312}", OK), T("{\"a\":0.00018e312}", INV),
    T("{\"a\":1000e306}", INV), T("{\"a\":100e306}", OK), T("{\"a\":-0.0e99999}", OK),
    T("{\"a\":4.9e-324}", OK), T("{\"a\":2e-324}", OK), T("{\"a\":-1e-400}", OK),
    T("{\"a\":2.2250738585072011e-308}", OK), T("{\"a\":17976931348623157e292}", OK),
    T("{\"a\":17976931348623158e292}", OK), T("{\"a\":17976931348623159e292}", INV),
    T("{\"a\":-17976931348623157e292}", OK), T("{\"a\":-17976931348623159e292}", INV),
    /* JSON_DECODE_INT_AS_REAL: integers of any length, rejected only beyond DBL_MAX */
    T("{\"a\":9223372036854775807}", OK), T("{\"a\":9223372036854775808}", OK),
    T("{\"a\":-9223372036854775808}", OK), T("{\"a\":-9223372036854775809}", OK),
    T("{\"a\":18446744073709551616}", OK), T("{\"a\":99999999999999999999}", OK),
    T("{\"a\":10000000000000000000}", OK), T("{\"a\":123456789012345678901234567890}", OK),
    T("{\"a\":-123456789012345678901234567890}", OK), T("{\"a\":" OVF_MINUS_1 "}", OK),
    T("{\"a\":-" OVF_MINUS_1 "}", OK), T("{\"a\":-" OVF "}", INV),
    T("{\"a\":" OVF "0}", INV), T("{\"a\":" E308 "}", OK), T("{\"a\":" E308 "0}", INV),
    T("{\"a\":" E400 "}", INV), T("{\"a\":-" E400 "}", INV), T("{\"a\":[" E400 "]}", INV),
    T("{\"a\":" E400 ".5}", INV), T("{\"a\":0." E400 "}", OK), T("{\"a\":" E400 "e-100}", OK),
    T("{\"a\":" E400 "e-92}", OK), T("{\"a\":" E400 "e-91}", INV), T("{\"a\":-0" E400 "}", INV),
    /* literals */
    T("{\"a\":true,\"b\":false,\"c\":null}", OK), T("{\"a\":True}", INV), T("{\"a\":TRUE}", INV),
    T("{\"a\":tru}", INV), T("{\"a\":nulll}", INV), T("{\"a\":truefalse}", INV),
    T("{\"a\":[true false]}", INV), T("{\"a\":nul}", INV), T("{\"a\":fals}", INV),
    T("{\"a\":true1}", INV),
    /* a raw NUL byte anywhere is rejected: also right after a number or keyword, where jansson
     * drops one (ungetting its lookahead loses it); test_nul_rule shows jansson accepting these */
    T("{\"a\":1\0}", INV), T("{\"a\":true\0}", INV), T("{\"a\":null\0 }", INV),
    T("{\"a\":false\0,\"b\":1}", INV), T("{\"a\":1\0\0}", INV), T("{\"a\":\"s\"\0}", INV),
    T("{\"a\":{}\0}", INV), T("{\"a\":1.5e3\0,\"b\":2}", INV), T("{\"a\":[1\0]}", INV),
    T("{\"a\":1 \0}", INV), T("{\0\"a\":1}", INV), T("{\"a\":-\0}", INV), T("{\"a\":1\0x}", INV),
    T("{\"from\":1\0}", INV), T("{\"a\":\"b\",\"from\":-2\0}", INV),
    T("{\"from\":true\0,\"a\":1}", INV), T("{\"a\":123456789012345678901\0}", INV),
    T("{\"a\":\"x\0y\"}", INV), T("{\"a\0\":1}", INV), T("{\"a\":1}\0", INV),
    T("{\"a\":1}\n\0", INV), T("{\"a\":[]\0}", INV), T("{\"a\" \0:1}", INV),
    /* "\u0000" is fine in values (JSON_ALLOW_NUL) but never in keys, even escaped or decoded */
    T("{\"a\":\"\\u0000\"}", OK), T("{\"a\":\"x\\u0000y\"}", OK),
    T("{\"a\":[\"\\u0000\",{\"b\":\"\\u0000\\u0000\"}]}", OK),
    T("{\"type\":\"offer\\u0000\",\"to\":\"b\\u0000\",\"id\":\"\\u0000\"}", OK),
    T("{\"a\":\"\\u0000\\ud83d\\ude00\\u0000\"}", OK), T("{\"a\":\"\\u0000\\ud83d\"}", INV),
    T("{\"\\u0000\":1}", INV), T("{\"a\\u0000\":1}", INV), T("{\"a\":{\"\\u0000b\":1}}", INV),
    T("[{\"\\u0000\":1}]", INV), T("{\"a\":1,\"\\u0000\":1}", INV),
    T("{\"\\u0000\":1,\"\\u0000\":1}", INV), T("{\"a\":\"\\u0000\",\"a\":\"\\u0000\"}", INV),
    T("[\"\\u0000\"]", PRO), T("\"\\u0000\"", PRO),
    /* duplicate keys, compared after decoding, at every level */
    T("{\"a\":1,\"a\":2}", INV), T("{\"a\":1,\"\\u0061\":2}", INV),
    T("{\"\\u0061\":1,\"a\":2}", INV),
    T("{\"a\":1,\"b\":{\"a\":2}}", OK), T("{\"a\":{\"b\":1,\"b\":2}}", INV),
    T("[{\"a\":1,\"a\":1}]", INV), T("{\"a\":1,\"A\":2}", OK), T("{\"\":1,\"\":2}", INV),
    T("{\"\":1}", OK), T("{\"\xc3\xa9\":1,\"\\u00e9\":2}", INV),
    T("{\"\xf0\x9f\x98\x80\":1,\"\\ud83d\\ude00\":2}", INV), T("{\"\\/\":1,\"/\":2}", INV),
    T("{\"a\\nb\":1,\"a\\u000ab\":2}", INV), T("{\"ab\":1,\"a\":2,\"b\":3}", OK),
    T("{\"type\":\"a\",\"type\":\"b\"}", INV), T("{\"from\":\"a\",\"from\":\"b\"}", INV),
    T("{\"from\":\"a\",\"fr\\u006fm\":\"b\"}", INV), T("{\"a\":[{\"x\":1},{\"x\":1}]}", OK),
    T("{\"a\":1,\"b\":2,\"a\":3}", INV), T("{\"a\":{\"a\":{\"a\":1}}}", OK),
    T("{\"a\":{\"b\":1},\"b\":{\"b\":1,\"a\":{\"b\":2,\"b\":3}}}", INV),
    T("{\"\\\"\":1,\"\\u0022\":2}", INV), T("{\"\\\\\":1,\"\\\"\":2}", OK),
    /* arrays */
    T("{\"a\":[]}", OK), T("{\"a\":[ ]}", OK), T("{\"a\":[1,]}", INV), T("{\"a\":[,1]}", INV),
    T("{\"a\":[1 2]}", INV), T("{\"a\":[[[]]]}", OK), T("{\"a\":[1,[2,[3]]]}", OK),
    T("{\"a\":[}", INV), T("{\"a\":]}", INV), T("{\"a\":[1}", INV), T("{\"a\":[1,{}]}", OK),
    /* the envelope itself */
    T("{\"type\":\"offer\",\"to\":\"bob\",\"id\":\"1\"}", OK), T("{\"type\":1}", OK),
    T("{\"type\":null,\"to\":true,\"id\":-1.5}", OK), T("{\"to\":{\"x\":1}}", OK),
    T("{\"id\":[1,\"a\"]}", OK), T("{\"t\\u0079pe\":\"x\"}", OK), T("{\"type\":\"a\\\"b\"}", OK),
    T("{\"to\":\"\\u0062ob\"}", OK), T("{\"a\":{\"type\":\"x\"}}", OK),
    T("{\"\\u0074\\u006f\":\"\\ud83d\\ude00\"}", OK), T("{\"typ\":1,\"typee\":2,\"t\":3}", OK),
    T("{\"from\":\"evil\",\"to\":\"b\"}", OK), T("{\"to\":\"b\",\"from\":\"evil\"}", OK),
    T("{\"from\":\"evil\"}", OK), T("{ \"from\" : \"evil\" }", OK),
    T("{ \"a\":1 , \"from\" : {\"x\":[1]} , \"b\":2 }", OK), T("{\"f\\u0072om\":\"e\"}", OK),
    T("  {\"from\":1 ,\n\"to\":2}\r\n", OK), T("{\"a\":{\"from\":1}}", OK),
    T("{\"from\":\"\\\"}\"}", OK),
    /* more members than the envelope remembers keys: has_member walks strings and containers */
    T("{\"a\":\"x\\\",}]\",\"b\":{\"k\":[1,{\"z\":\"}\"}]},\"c\":[\"]\",{}],\"d\":1,\"e\":true,"
      "\"f\":null,\"g\":-1e5,\"h\":[],\"offer\":{\"sdp\":\"v=0\"},\"t\\u0079pe\":\"o\"}", OK),
    T("{\"1\":1,\"2\":2,\"3\":3,\"4\":4,\"5\":5,\"6\":6,\"7\":7,\"8\":{\"offer\":1},"
      "\"9\":[\"offer\"],\"to\":\"b\",\"from\":2}", OK),
    T("{\"1\":1,\"2\":2,\"3\":3,\"4\":4,\"5\":5,\"6\":6,\"7\":7,\"8\":{\"offer\":1},"
      "\"9\":[\"offer\"],\"to\":\"b\",\"from\":2\0}", INV),
    T("{\"to\":\"b\",\"from\":123456789012345678901234567890,\"c\":\"\\u0000\"}", OK),
};
/* clang-format on */

static void test_table(void **state)
{
    (void)state;
    size_t n = sizeof table / sizeof table[0], counts[4] = {0};

    assert_true(n >= 150);
    for (size_t i = 0; i < n; i++) {
        int got = check_input(table[i].s, table[i].len);
        if (got != table[i].want) {
            char msg[96];
            snprintf(msg, sizeof msg, "table entry %zu expects %s, jansson says %s", i,
                     code_name(table[i].want), code_name(got));
            fail_input(msg, table[i].s, table[i].len);
        }
        counts[got == 0 ? 0 : got == VS_EINVAL ? 1 : 2]++;
    }
    print_message("table: %zu inputs, %zu objects, %zu invalid, %zu non-objects\n", n, counts[0],
                  counts[1], counts[2]);
}

/* ---- what the reference rule changed ---- */

static int jansson_ok(const char *s, size_t len, size_t flags)
{
    json_t *j = json_loadb(s, len, flags, NULL);
    json_decref(j);
    return j != NULL;
}

#define LIT(lit) lit, sizeof(lit) - 1

/* Each rule that differs from plain JSON_REJECT_DUPLICATES, shown on both sides: what jansson does
 * with the old and the new flags, and what the scanner does (the NUL rule included). */
static void test_reference_rule(void **state)
{
    (void)state;
    /* clang-format off */
    static const struct { const char *s; size_t len; int old_ok, new_ok, scan; } rows[] = {
        /* "\u0000" in values: rejected by the old flags, accepted now */
        {LIT("{\"a\":\"x\\u0000\"}"), 0, 1, 0},
        /* ...but jansson refuses it in a key whatever the flags, and so do we */
        {LIT("{\"x\\u0000\":1}"), 0, 0, VS_EINVAL},
        /* integers beyond long long: "too big integer" before, a double now */
        {LIT("{\"a\":18446744073709551616}"), 0, 1, 0},
        {LIT("{\"a\":-18446744073709551616}"), 0, 1, 0},
        /* the overflow edge is strtod's, exactly (checked against strtod below) */
        {LIT("{\"a\":17976931348623157e292}"), 1, 1, 0},
        {LIT("{\"a\":17976931348623159e292}"), 0, 0, VS_EINVAL},
        {LIT("{\"a\":" E400 "}"), 0, 0, VS_EINVAL},
        /* a raw NUL after a number or keyword: jansson drops it and accepts, our rule rejects */
        {LIT("{\"a\":1\0}"), 1, 1, VS_EINVAL},
        {LIT("{\"a\":null\0,\"b\":2}"), 1, 1, VS_EINVAL},
        {LIT("{\"a\":123456789012345678901\0}"), 0, 1, VS_EINVAL},
        {LIT("[1\0]"), 1, 1, VS_EINVAL}, /* not VS_EPROTO */
    };
    /* clang-format on */
    vs_envelope_t env;
    char out[32];

    assert_int_equal(VS_JSON_FLAGS,
                     JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (jansson_ok(rows[i].s, rows[i].len, JSON_REJECT_DUPLICATES) != rows[i].old_ok ||
            jansson_ok(rows[i].s, rows[i].len, VS_JSON_FLAGS) != rows[i].new_ok ||
            vs_envelope_scan(rows[i].s, rows[i].len, 0, &env) != rows[i].scan)
            fail_input("reference rule row", rows[i].s, rows[i].len);
    }
    assert_true(strtod("17976931348623157e292", NULL) < HUGE_VAL);
    assert_true(strtod("17976931348623159e292", NULL) == HUGE_VAL);

    /* the envelope's own members: a decoded NUL stays inside the value, a huge id is "other" */
    static const char m[] = "{\"type\":\"offer\\u0000x\",\"id\":18446744073709551616}";
    assert_int_equal(vs_envelope_scan(m, sizeof m - 1, 0, &env), 0);
    assert_int_equal(env.type_kind, VS_JSON_STRING);
    assert_int_equal(env.type_escaped, 1);
    assert_int_equal(vs_json_unescape(env.type, out, sizeof out), 7);
    assert_memory_equal(out, "offer\0x", 7);
    assert_int_equal(env.id_kind, VS_JSON_OTHER);
    assert_int_equal(env.id.len, 20);
    assert_memory_equal(env.id.p, "18446744073709551616", 20);
    assert_int_equal(check_input(m, sizeof m - 1), OK);
}

/* ---- depth ---- */

static char *nest(const char *open, int n, const char *mid, const char *close, int m, size_t *len)
{
    size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close);
    char *b = malloc(lo * n + lm + lc * m + 1), *p = b;
    for (int i = 0; i < n; i++, p += lo)
        memcpy(p, open, lo);
    memcpy(p, mid, lm);
    p += lm;
    for (int i = 0; i < m; i++, p += lc)
        memcpy(p, close, lc);
    *len = (size_t)(p - b);
    return b;
}

static void depth_case(const char *open, int n, const char *mid, size_t midlen, const char *close,
                       int m, int want)
{
    size_t len;
    char *b;

    b = nest(open, n, "", close, 0, &len);
    b = realloc(b, len + midlen + strlen(close) * m + 1);
    memcpy(b + len, mid, midlen);
    len += midlen;
    for (int i = 0; i < m; i++, len += strlen(close))
        memcpy(b + len, close, strlen(close));
    if (check_input(b, len) != want)
        fail_msg("depth case %s x%d + %.*s: the reference disagrees with the expectation", open, n,
                 (int)(midlen < 40 ? midlen : 40), mid);
    free(b);
}

#define D(open, n, mid, close, m, want) depth_case(open, n, mid, sizeof(mid) - 1, close, m, want)

static void test_depth(void **state)
{
    (void)state;
    const int J = VS_JSON_MAX_DEPTH;
    vs_envelope_t env;
    size_t len;
    char *b;

    D("[", J, "", "]", J, PRO);
    D("[", J + 1, "", "]", J + 1, VS_EDEPTH);
    D("[", J - 1, "1", "]", J - 1, PRO);
    D("[", J, "1", "]", J, VS_EDEPTH);
    D("{\"a\":", J - 1, "1", "}", J - 1, OK);
    D("{\"a\":", J - 1, "{}", "}", J - 1, OK);
    D("{\"a\":", J - 1, "[]", "}", J - 1, OK);
    D("{\"a\":", J, "1", "}", J, VS_EDEPTH);
    D("{\"a\":", J, "", "}", 0, VS_EDEPTH); /* EOF where a member value belongs */
    D("{\"a\":", J - 1, "", "}", 0, INV);   /* same, one level up: just invalid */
    D("[", J, "", "]", 0, INV);             /* EOF where an element belongs */
    D("[", J, "tru", "]", J, VS_EDEPTH);
    D("[", J, "\"\\x\"", "]", J, INV);
    D("[", J, "\"ok\"", "]", J, VS_EDEPTH);
    D("[", J, "1\xff", "]", J, INV);
    D("[", J, "\xff", "]", J, INV);
    D("[", J, "\xc3\xa9", "]", J, VS_EDEPTH);
    D("[", J, "\xc3", "]", J, INV);
    D("[", J, "1e400", "]", J, INV);
    D("[", J, "99999999999999999999", "]", J, VS_EDEPTH); /* any integer is a real now */
    D("[", J, OVF, "]", J, INV);                          /* but "real number overflow" wins */
    D("[", J, "-" OVF "0", "]", J, INV);
    D("[", J, OVF_MINUS_1, "]", J, VS_EDEPTH);
    /* a raw NUL makes the input invalid, wherever it is relative to the depth error */
    D("[", J, "1\0", "]", J, INV);
    D("[", J, "\0", "]", J, INV);
    D("[", J + 1, "", "]", J + 1, VS_EDEPTH);
    D("[", J + 1, "]\0", "]", J, INV);
    D("[", J, "\"\\u0000\"", "]", J, VS_EDEPTH);
    D("[", J - 1, "\"\\u0000\"", "]", J - 1, PRO);
    D("{\"a\":", J, "\"x\"", "}", J, VS_EDEPTH);
    D("{\"a\":", J, "\"x\"}\0", "}", J - 1, INV);
    D("{\"a\":", J - 1, "{\"\\u0000\":1}", "}", J - 1, INV);
    D("[", J, "-", "]", J, VS_EDEPTH);
    D("[", J, "-\xff", "]", J, INV);
    D("[", J, "1.\xff", "]", J, INV);
    D("[", J, "1e+\xff", "]", J, INV);
    D("[", J, "true\xff", "]", J, INV);
    D("[", J, "01", "]", J, VS_EDEPTH);
    D("[", J, ",", "]", J, VS_EDEPTH);
    D("[", J, "1,", "]", J, VS_EDEPTH);
    D("[", J - 1, "1,]", "]", J - 1, INV);
    D("[", J - 1, "[1,]", "]", J - 1, VS_EDEPTH);
    D("{\"a\":", J, "}", "}", J, VS_EDEPTH);
    D("{\"a\":[", J / 2 - 1, "[1]", "]}", J / 2 - 1, OK);
    D("{\"a\":[", J / 2 - 1, "[[1]]", "]}", J / 2 - 1, VS_EDEPTH);
    D("{\"a\":[", J / 2, "{}", "]}", J / 2, VS_EDEPTH);
    D("{\"a\":", J, "\"\\ud800\"", "}", J, INV);
    D("{\"a\":{\"a\":1,\"a\":", J - 1, "1", "}", J - 1, INV); /* a duplicate comes first */

    /* a caller's own limit, counted the same way */
    assert_int_equal(vs_envelope_scan("{}", 2, 1, &env), 0);
    assert_int_equal(vs_envelope_scan("{\"a\":1}", 7, 1, &env), VS_EDEPTH);
    assert_int_equal(vs_envelope_scan("{\"a\":1}", 7, 2, &env), 0);
    assert_int_equal(vs_envelope_scan("{\"a\":{}}", 8, 2, &env), 0);
    assert_int_equal(vs_envelope_scan("{\"a\":[1]}", 9, 2, &env), VS_EDEPTH);
    assert_int_equal(vs_envelope_scan("{\"a\":[1]}", 9, 3, &env), 0);
    /* limits above jansson's are clamped to it */
    b = nest("[", J + 1, "", "]", J + 1, &len);
    assert_int_equal(vs_envelope_scan(b, len, 100000, &env), VS_EDEPTH);
    free(b);
    b = nest("{\"a\":", J - 1, "1", "}", J - 1, &len);
    assert_int_equal(vs_envelope_scan(b, len, 100000, &env), 0);
    assert_int_equal(vs_envelope_scan(b, len, 50, &env), VS_EDEPTH);
    free(b);
}

/* ---- large objects, hashing and allocation ---- */

static char *big_object(int n, const char *extra_key, int nested, size_t *len)
{
    size_t cap = (size_t)n * 40 + 256;
    char *b = malloc(cap);
    size_t o = 0;
    o += (size_t)snprintf(b + o, cap - o, "{");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(b + o, cap - o, "%s\"k%d\":%d", i ? "," : "", i, i);
    if (nested)
        o += (size_t)snprintf(b + o, cap - o, ",\"inner\":{\"k1\":1,\"k\\u0031\":2}");
    if (extra_key)
        o += (size_t)snprintf(b + o, cap - o, ",%s:true", extra_key);
    o += (size_t)snprintf(b + o, cap - o, "}");
    *len = o;
    return b;
}

static void big_case(int n, const char *extra, int nested, int want, int may_alloc)
{
    size_t len;
    char *b = big_object(n, extra, nested, &len);
    vs_envelope_t env;
    long before = total_allocs;

    if (vs_envelope_scan(b, len, 0, &env) != want)
        fail_msg("big object n=%d extra=%s: unexpected verdict", n, extra ? extra : "-");
    if (may_alloc != (total_allocs != before))
        fail_msg("object with %d members: %ld allocations", n, total_allocs - before);
    if (check_input(b, len) != want)
        fail_msg("big object n=%d extra=%s: jansson disagrees", n, extra ? extra : "-");
    free(b);
}

static void test_large_objects(void **state)
{
    (void)state;
    big_case(32, NULL, 0, OK, 0);
    big_case(31, "\"k3\"", 0, INV, 0);
    big_case(31, "\"k\\u0033\"", 0, INV, 0);
    big_case(31, "\"x\"", 0, OK, 0);
    big_case(33, NULL, 0, OK, 1);
    big_case(40, "\"k39\"", 0, INV, 1);
    big_case(40, "\"k\\u00339\"", 0, INV, 1);
    big_case(40, "\"k\\u0030\"", 0, INV, 1);
    big_case(100, NULL, 1, INV, 1);
    big_case(5000, NULL, 0, OK, 1);
    big_case(5000, "\"k4999\"", 0, INV, 1);
    big_case(5000, "\"k\\u0034999\"", 0, INV, 1);
    big_case(5000, "\"\\u006b0\"", 0, INV, 1);
    big_case(5000, "\"k5000\"", 0, OK, 1);

    /* a large object inside a large object inside an array, both closed in order */
    {
        size_t l1, l2, len;
        char *inner = big_object(200, NULL, 0, &l1), *outer = big_object(300, NULL, 0, &l2);
        char *b = malloc(2 * l1 + l2 + 64);
        len = (size_t)sprintf(b, "[%.*s,\"z\":%.*s},%.*s]", (int)(l2 - 1), outer, (int)l1, inner,
                              (int)l1, inner);
        assert_int_equal(check_input(b, len), PRO);
        b[len - 1] = ',';
        memcpy(b + len, "{\"a\":1,\"a\":2}]", 14);
        assert_int_equal(check_input(b, len + 14), INV);
        free(b);
        free(inner);
        free(outer);
    }

    /* a typical relay message: no allocation at all */
    {
        static const char msg[] =
            "{\"type\":\"candidate\",\"to\":\"bob\",\"id\":\"42\",\"payload\":"
            "{\"candidate\":\"candidate:1 1 udp 2122260223 10.0.0.2 54321 "
            "typ host\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}}";
        vs_envelope_t env;
        long before = total_allocs;
        assert_int_equal(vs_envelope_scan(msg, sizeof msg - 1, 0, &env), 0);
        assert_int_equal(total_allocs, before);
        assert_int_equal(check_input(msg, sizeof msg - 1), OK);
    }

    /* deep paths of small objects outgrow the inline key stack, and free it */
    {
        size_t len;
        char *b = nest("{\"a\":1,\"b\":2,\"c\":", 300, "0", "}", 300, &len);
        vs_envelope_t env;
        long before = total_allocs;
        assert_int_equal(vs_envelope_scan(b, len, 0, &env), 0);
        assert_true(total_allocs > before);
        assert_int_equal(check_input(b, len), OK);
        free(b);
    }
}

/* ---- randomized differential ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* clang-format off */
#define S(lit) {lit, sizeof(lit) - 1, 0}

static const struct tcase seeds[] = {
    S("{\"type\":\"offer\",\"to\":\"bob@example.org\",\"id\":\"a1\",\"payload\":"
      "{\"sdp\":\"v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\n"
      "t=0 0\\r\\n\",\"type\":\"offer\"}}"),
    S("{\"type\":\"candidate\",\"to\":\"b\",\"payload\":{\"candidate\":\"candidate:1 1 udp 212 "
      "10.0.0.2 5 typ host\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}}"),
    S("{\"from\":\"evil\",\"type\":\"chat\",\"to\":\"b\",\"text\":\"h\xc3\xa9llo \xe2\x82\xac "
      "\xf0\x9f\x98\x80 \\ud83d\\ude00 \\u00e9\"}"),
    S(" { \"to\" : \"b\" , \"from\" : [1, 2.5e3, -0, true, false, null] , \"n\" : -12.5E-3 } "),
    S("{\"t\\u0079pe\":\"x\\\"y\",\"a\":{\"b\":{\"c\":[[],{},[{}]]}},\"\\u0061\\u0062\":1}"),
    S("{\"type\":\"presence\",\"id\":7,\"users\":[\"a\",\"b\",\"c\"],\"big\":9223372036854775807,"
      "\"neg\":-9223372036854775808,\"r\":1.7976931348623157e308}"),
    S("[{\"type\":\"x\"},1,\"s\",[true]]"),
    S("{\"a\":1,\"from\":null,\"b\":\"\\/\\b\\f\\n\\r\\t\"}"),
    S("{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,"
      "\"k10\":0,\"k11\":1,\"k12\":2,\"k13\":3,\"k14\":4,\"k15\":5,\"k16\":6,\"k17\":7,\"k18\":8,"
      "\"k19\":9,\"k20\":0,\"k21\":1,\"k22\":2,\"k23\":3,\"k24\":4,\"k25\":5,\"k26\":6,\"k27\":7,"
      "\"k28\":8,\"k29\":9,\"k30\":0,\"k31\":1,\"k32\":2,\"k33\":3,\"k\\u00334\":4}"),
    S("{\"id\":\"\\uD834\\uDD1E\",\"to\":{\"from\":\"x\"},\"from\":\"y\"}"),
    S("{\"type\":\"answer\",\"to\":\"b\",\"answer\":{\"long\":123456789012345678901234567890,"
      "\"u64\":18446744073709551616,\"max\":17976931348623157e292,\"tiny\":4.9e-324}}"),
    S("{\"type\":\"ice-candidate\",\"to\":\"b\",\"candidate\":\"a\\u0000b\",\"x\":[\"\\u0000\"],"
      "\"\\u0061\":{\"k\":\"\\u0000\\u0000\"}}"),
};
/* clang-format on */

/* clang-format off */
static const char *const tokens[] = {
    "\"", "\\", "{", "}", "[", "]", ",", ":", " ", "\t", "\n", "\r", "\0", "\f", "0", "1", "9", "-",
    "+", ".", "e", "E", "true", "false", "null", "\\u", "\\u0000", "\\ud800", "\\udc00", "\\n",
    "\xc3", "\xa9", "\xc3\xa9", "\xed\xa0\x80", "\xf4\x90", "\xff", "\x80", "\x01", "\x7f",
    "\"from\":1,", ",\"from\":2", "\"a\":", "\"\\u0061\":", "\"\\u0000\":", "e400", "e292", "e-92",
    "9223372036854775808", "17976931348623158", "17976931348623159", OVF, E308,
};
/* clang-format on */

static void mutate(char *b, size_t *len, size_t cap)
{
    int rounds = 1 + (int)(rnd() % 3);
    for (int r = 0; r < rounds; r++) {
        size_t n = *len, at = n ? rnd() % (n + 1) : 0;
        switch (rnd() % 6) {
        case 0: /* flip or replace a byte */
            if (n && at < n)
                b[at] = rnd() % 2 ? (char)(b[at] ^ (1u << (rnd() % 8))) : (char)rnd();
            break;
        case 1: { /* insert a token */
            const char *t = tokens[rnd() % (sizeof tokens / sizeof tokens[0])];
            size_t tl = t[0] ? strlen(t) : 1;
            if (n + tl <= cap) {
                memmove(b + at + tl, b + at, n - at);
                memcpy(b + at, t, tl);
                *len = n + tl;
            }
            break;
        }
        case 2: /* delete a few bytes */
            if (at < n) {
                size_t d = 1 + rnd() % 4;
                if (d > n - at)
                    d = n - at;
                memmove(b + at, b + at + d, n - at - d);
                *len = n - d;
            }
            break;
        case 3: /* truncate */
            *len = at;
            break;
        case 4: /* duplicate a chunk */
            if (at < n) {
                size_t d = 1 + rnd() % 16;
                if (d > n - at)
                    d = n - at;
                if (n + d <= cap) {
                    memmove(b + at + d, b + at, n - at);
                    *len = n + d;
                }
            }
            break;
        default: /* replace a byte by a structural one */
            if (at < n)
                b[at] = "\"\\{}[],: 0-e.\0u"[rnd() % 15];
            break;
        }
    }
}

static void test_random_differential(void **state)
{
    (void)state;
    enum { ITER = 200000, CAP = 1024 };
    size_t nseeds = sizeof seeds / sizeof seeds[0];
    char buf[CAP];
    long verdicts[3] = {0};

    for (size_t i = 0; i < nseeds; i++)
        assert_int_equal(check_input(seeds[i].s, seeds[i].len), i == 6 ? PRO : OK);
    for (int it = 0; it < ITER; it++) {
        size_t si = rnd() % nseeds, len = seeds[si].len;
        memcpy(buf, seeds[si].s, len);
        mutate(buf, &len, CAP);
        int v = check_input(buf, len);
        verdicts[v == 0 ? 0 : v == VS_EINVAL ? 1 : 2]++;
    }
    print_message("random: %d inputs, %ld objects, %ld invalid, %ld other\n", ITER, verdicts[0],
                  verdicts[1], verdicts[2]);
    /* a mutator that only produced garbage would prove nothing */
    assert_true(verdicts[0] > ITER / 20);
    assert_true(verdicts[1] > ITER / 4);
}

/* ---- splice and unescape ---- */

static void expect_splice(const char *in, const char *from, const char *want)
{
    vs_envelope_t env;
    char out[512];
    size_t len = strlen(in);
    long n;

    assert_int_equal(vs_envelope_scan(in, len, 0, &env), 0);
    assert_int_equal(vs_envelope_splice_size(&env, len, strlen(from)), strlen(want));
    n = vs_envelope_splice_from(in, len, &env, from, strlen(from), out, sizeof out);
    assert_int_equal(n, (long)strlen(want));
    out[n] = '\0';
    assert_string_equal(out, want);
    check_input(in, len);
}

static void test_splice(void **state)
{
    (void)state;
    vs_envelope_t env;
    char out[64];

    expect_splice("{}", "x", "{\"from\":\"x\"}");
    expect_splice("{\"from\":\"evil\",\"to\":\"b\"}", "x", "{\"from\":\"x\",\"to\":\"b\"}");
    expect_splice("{\"to\":\"b\",\"from\":\"evil\"}", "x", "{\"from\":\"x\",\"to\":\"b\"}");
    expect_splice("{\"from\":\"evil\"}", "x", "{\"from\":\"x\"}");
    expect_splice(" { } ", "x", " {\"from\":\"x\" } ");
    expect_splice("{ \"from\" : \"e\" }", "x", "{\"from\":\"x\"  }");
    expect_splice("{ \"from\" : \"e\" , \"a\" : 1 }", "x", "{\"from\":\"x\",  \"a\" : 1 }");
    expect_splice("{ \"a\" : 1 , \"from\" : \"e\" }", "x", "{\"from\":\"x\", \"a\" : 1  }");
    expect_splice("{\"a\":1,\"from\":{\"b\":[1]},\"c\":2}", "x",
                  "{\"from\":\"x\",\"a\":1,\"c\":2}");
    expect_splice("{\"a\":{\"from\":1},\"b\":2}", "x",
                  "{\"from\":\"x\",\"a\":{\"from\":1},\"b\":2}");
    expect_splice("{\"fr\\u006fm\":\"e\",\"a\":1}", "x", "{\"from\":\"x\",\"a\":1}");
    expect_splice("\n{\"a\":\"s\",\"from\":1}\n", "u@d", "\n{\"from\":\"u@d\",\"a\":\"s\"}\n");
    expect_splice("{\"type\":\"offer\",\"payload\":{\"sdp\":\"v=0\\r\\n\"}}", "bob",
                  "{\"from\":\"bob\",\"type\":\"offer\",\"payload\":{\"sdp\":\"v=0\\r\\n\"}}");
    /* escaped NULs and huge integers are forwarded as sent */
    expect_splice(
        "{\"to\":\"b\",\"c\":\"a\\u0000b\",\"n\":123456789012345678901234567890}", "x",
        "{\"from\":\"x\",\"to\":\"b\",\"c\":\"a\\u0000b\",\"n\":123456789012345678901234567890}");
    expect_splice("{\"from\":-18446744073709551616,\"v\":\"\\u0000\"}", "x",
                  "{\"from\":\"x\",\"v\":\"\\u0000\"}");
    /* exact capacity works, one byte less does not */
    assert_int_equal(vs_envelope_scan("{}", 2, 0, &env), 0);
    assert_int_equal(vs_envelope_splice_from("{}", 2, &env, "x", 1, out, 12), 12);
    assert_int_equal(vs_envelope_splice_from("{}", 2, &env, "x", 1, out, 11), VS_ETOOBIG);
    assert_int_equal(vs_envelope_splice_from("{}", 2, &env, "", 0, out, 11), 11);
    /* a from too long to add to any length */
    assert_int_equal(vs_envelope_splice_size(&env, 2, SIZE_MAX), SIZE_MAX);
    assert_int_equal(vs_envelope_splice_from("{}", 2, &env, "x", SIZE_MAX, out, sizeof out),
                     VS_ETOOBIG);
    /* an envelope that does not describe the input */
    assert_int_equal(vs_envelope_scan("{\"a\":1,\"from\":2}", 16, 0, &env), 0);
    env.from[0].end = 17;
    assert_int_equal(
        vs_envelope_splice_from("{\"a\":1,\"from\":2}", 16, &env, "x", 1, out, sizeof out),
        VS_EINVAL);
    assert_int_equal(vs_envelope_scan("{}", 2, 0, &env), 0);
    assert_int_equal(vs_envelope_splice_from("[]", 2, &env, "x", 1, out, sizeof out), VS_EINVAL);
    assert_int_equal(vs_envelope_splice_from("{", 0, &env, "x", 1, out, sizeof out), VS_EINVAL);
}

static void test_unescape(void **state)
{
    (void)state;
    char out[16];
    vs_slice_t s;

#define RAW(lit) ((vs_slice_t){lit, sizeof(lit) - 1})
    assert_int_equal(vs_json_unescape(RAW("plain"), out, sizeof out), 5);
    assert_string_equal(out, "plain");
    assert_int_equal(vs_json_unescape(RAW("\\\"\\\\\\/\\b\\f\\n\\r\\t"), out, sizeof out), 8);
    assert_string_equal(out, "\"\\/\b\f\n\r\t");
    assert_int_equal(vs_json_unescape(RAW("\\u0041\\u00e9\\u20AC"), out, sizeof out), 6);
    assert_string_equal(out, "A\xc3\xa9\xe2\x82\xac");
    assert_int_equal(vs_json_unescape(RAW("\\ud83d\\ude00!"), out, sizeof out), 5);
    assert_string_equal(out, "\xf0\x9f\x98\x80!");
    assert_int_equal(vs_json_unescape(RAW("\\uDBFF\\uDFFF"), out, sizeof out), 4);
    assert_string_equal(out, "\xf4\x8f\xbf\xbf");
    /* an escaped NUL decodes to a 0 byte inside the output; the length tells */
    assert_int_equal(vs_json_unescape(RAW("a\\u0000b\\u0000"), out, sizeof out), 4);
    assert_memory_equal(out, "a\0b\0", 5);
    assert_int_equal(vs_json_unescape(RAW("\\u0000"), out, 2), 1);
    assert_int_equal(vs_json_unescape(RAW("\\u0000"), out, 1), VS_ETOOBIG);
    assert_int_equal(vs_json_unescape(RAW(""), out, 1), 0);
    assert_string_equal(out, "");
    /* the fit is exact: n bytes need cap n + 1 */
    assert_int_equal(vs_json_unescape(RAW("abc\\n"), out, 5), 4);
    assert_int_equal(vs_json_unescape(RAW("abc\\n"), out, 4), VS_ETOOBIG);
    assert_int_equal(vs_json_unescape(RAW("ab\\u20ac"), out, 6), 5);
    assert_int_equal(vs_json_unescape(RAW("ab\\u20ac"), out, 5), VS_ETOOBIG);
    assert_int_equal(vs_json_unescape(RAW("abcdef"), out, 6), VS_ETOOBIG);
    assert_int_equal(vs_json_unescape(RAW("a"), out, 0), VS_ETOOBIG);
    /* malformed escapes are caught even though a scan never produces them */
    assert_int_equal(vs_json_unescape(RAW("\\x"), out, sizeof out), VS_EINVAL);
    assert_int_equal(vs_json_unescape(RAW("\\u12"), out, sizeof out), VS_EINVAL);
    assert_int_equal(vs_json_unescape(RAW("\\ud800"), out, sizeof out), VS_EINVAL);
    assert_int_equal(vs_json_unescape(RAW("\\udc00"), out, sizeof out), VS_EINVAL);
    assert_int_equal(vs_json_unescape(RAW("\\"), out, sizeof out), VS_EINVAL);
    s.p = NULL, s.len = 0;
    assert_int_equal(vs_json_unescape(s, out, sizeof out), 0);
    assert_int_equal(vs_json_unescape(RAW("a"), NULL, 4), VS_EINVAL);
#undef RAW
}

static void test_arguments(void **state)
{
    (void)state;
    vs_envelope_t env;

    assert_int_equal(vs_envelope_scan(NULL, 0, 0, &env), VS_EINVAL);
    assert_int_equal(vs_envelope_scan("{}", 2, 0, NULL), VS_EINVAL);
    /* the length is checked before anything is read */
    assert_int_equal(vs_envelope_scan("{}", (size_t)UINT32_MAX + 1, 0, &env), VS_ETOOBIG);
    /* slices borrow the input */
    static const char m[] = "{\"type\":\"offer\",\"to\":\"b\\u00e9b\",\"id\":12}";
    assert_int_equal(vs_envelope_scan(m, sizeof m - 1, 0, &env), 0);
    assert_ptr_equal(env.type.p, m + 9);
    assert_int_equal(env.type.len, 5);
    assert_int_equal(env.to_kind, VS_JSON_STRING);
    assert_int_equal(env.to_escaped, 1);
    assert_int_equal(env.to.len, 8);
    assert_int_equal(env.id_kind, VS_JSON_OTHER);
    assert_int_equal(env.id.len, 2);
    assert_int_equal(env.members, 3);
    assert_int_equal(env.open, 0);
    assert_int_equal(vs_envelope_has_member(&env, "to"), 1);
    /* a failed scan leaves nothing to find */
    assert_int_equal(vs_envelope_scan("{\"to\":1", 7, 0, &env), VS_EINVAL);
    assert_int_equal(vs_envelope_has_member(&env, "to"), 0);
}

/* ---- throughput (printed, not asserted) ---- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_throughput(void **state)
{
    (void)state;
    static const char offer[] =
        "{\"type\":\"offer\",\"to\":\"bob@example.org\",\"id\":\"7f3a9c21\",\"payload\":{\"sdp\":"
        "\"v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\na=group:"
        "BUNDLE 0\\r\\na=msid-semantic: WMS\\r\\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel"
        "\\r\\nc=IN IP4 0.0.0.0\\r\\na=ice-ufrag:Yx7n\\r\\na=ice-pwd:2c8mQ0t3e9XkT1\\r\\n\","
        "\"type\":\"offer\"}}";
    const size_t len = sizeof offer - 1;
    const int iters = 200000;
    char out[512];
    vs_envelope_t env;
    double t0, t1, t2, t3;
    long sink = 0;

    assert_int_equal(vs_envelope_scan(offer, len, 0, &env), 0);
    t0 = now();
    for (int i = 0; i < iters; i++)
        sink += vs_envelope_scan(offer, len, 0, &env) + (long)env.members;
    t1 = now();
    for (int i = 0; i < iters; i++) {
        vs_envelope_scan(offer, len, 0, &env);
        sink += vs_envelope_splice_from(offer, len, &env, "alice", 5, out, sizeof out);
    }
    t2 = now();
    for (int i = 0; i < iters / 10; i++) {
        json_t *j = json_loadb(offer, len, VS_JSON_FLAGS, NULL);
        sink += j != NULL;
        json_decref(j);
    }
    t3 = now();
    assert_true(sink > 0);
    print_message("throughput on a %zu-byte offer: scan %.0f MB/s, scan+splice %.0f MB/s, "
                  "jansson json_loadb %.0f MB/s\n",
                  len, (double)len * iters / (t1 - t0) / 1e6, (double)len * iters / (t2 - t1) / 1e6,
                  (double)len * (iters / 10) / (t3 - t2) / 1e6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_reference_rule),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_large_objects),
        cmocka_unit_test(test_random_differential),
        cmocka_unit_test(test_splice),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
