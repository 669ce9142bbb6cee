/* fuzz_envelope.c: differential fuzzing of protocol/envelope against its reference rule, jansson's
 * json_loadb(VS_JSON_FLAGS) plus "no raw NUL byte" (see envelope.h). Aborts when the scanner's
 * verdict differs from the reference's (accept, invalid, too deep, not an object), when an
 * extracted member differs from jansson's, when has_member() disagrees, or when splicing "from"
 * into an accepted input gives anything but the same object with "from" replaced. */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/error.h"
#include "protocol/envelope.h"

static void disagree(const char *what)
{
    fprintf(stderr, "envelope/jansson disagreement: %s\n", what);
    abort();
}

/* A raw NUL byte anywhere is invalid, whatever jansson says; otherwise jansson decides. */
static int jansson_verdict(const char *buf, size_t len, json_t **root)
{
    json_error_t err;
    json_t *j;

    *root = NULL;
    if (len && memchr(buf, '\0', len))
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
    json_decref(j);
    return j ? VS_EPROTO : VS_EINVAL;
}

static void check_field(json_t *root, const char *name, vs_slice_t raw, uint8_t kind)
{
    json_t *v = json_object_get(root, name);
    char *dec;
    int n;

    if (!v) {
        if (kind != VS_JSON_ABSENT)
            disagree(name);
        return;
    }
    if (!json_is_string(v)) {
        json_t *again = json_loadb(raw.p, raw.len, VS_JSON_FLAGS | JSON_DECODE_ANY, NULL);
        if (kind != VS_JSON_OTHER || !again || !json_equal(again, v))
            disagree(name);
        json_decref(again);
        return;
    }
    if (kind != VS_JSON_STRING)
        disagree(name);
    dec = malloc(raw.len + 1);
    n = vs_json_unescape(raw, dec, raw.len + 1);
    if (n < 0 || (size_t)n != json_string_length(v) || memcmp(dec, json_string_value(v), (size_t)n))
        disagree(name);
    free(dec);
}

static void check_splice(const char *buf, size_t len, const vs_envelope_t *env, json_t *root)
{
    static const char from[] = "mallory@example.org";
    size_t flen = sizeof from - 1, need = vs_envelope_splice_size(env, len, flen);
    char *out = malloc(need);
    json_t *got;
    vs_envelope_t env2;

    if (vs_envelope_splice_from(buf, len, env, from, flen, out, need - 1) != VS_ETOOBIG ||
        vs_envelope_splice_from(buf, len, env, from, flen, out, need) != (long)need)
        disagree("splice size");
    got = json_loadb(out, need, VS_JSON_FLAGS, NULL);
    if (!got || !json_is_string(json_object_get(got, "from")) ||
        strcmp(json_string_value(json_object_get(got, "from")), from))
        disagree("spliced output");
    json_object_del(root, "from");
    json_object_del(got, "from");
    if (json_object_size(got) != json_object_size(root))
        disagree("spliced member count");
    for (void *it = json_object_iter(root); it; it = json_object_iter_next(root, it)) {
        const char *key = json_object_iter_key(it);
        json_t *val = json_object_iter_value(it);
        if (!json_equal(json_object_get(got, key), val))
            disagree("spliced member");
    }
    /* the new member comes first */
    if (vs_envelope_scan(out, need, 0, &env2) != 0 || env2.from_count != 1 ||
        env2.from[0].start != env->open + 1)
        disagree("spliced from position");
    json_decref(got);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    json_t *root;
    int want = jansson_verdict(buf, size, &root);
    vs_envelope_t env;
    int rc = vs_envelope_scan(buf, size, 0, &env);

    if (rc != want) {
        fprintf(stderr, "scanner %d, jansson %d\n", rc, want);
        disagree("verdict");
    }
    if (size > 0) {
        /* a caller's lower limit can only turn a success into VS_EDEPTH */
        int r2 = vs_envelope_scan(buf, size, 1 + data[0] % 6, &env);
        if ((rc == 0 || rc == VS_EPROTO) && r2 != rc && r2 != VS_EDEPTH)
            disagree("custom depth");
        vs_envelope_scan(buf, size, 0, &env);
    }
    if (rc == 0) {
        check_field(root, "type", env.type, env.type_kind);
        check_field(root, "to", env.to, env.to_kind);
        check_field(root, "id", env.id, env.id_kind);
        if (env.members != json_object_size(root) ||
            env.from_count != (json_object_get(root, "from") != NULL))
            disagree("members");
        for (void *it = json_object_iter(root); it; it = json_object_iter_next(root, it)) {
            const char *key = json_object_iter_key(it);
            if (!vs_envelope_has_member(&env, key))
                disagree("has_member");
        }
        if (vs_envelope_has_member(&env, "offer") != (json_object_get(root, "offer") != NULL))
            disagree("has_member absent");
        check_splice(buf, size, &env, root);
    }
    json_decref(root);
    return 0;
}
