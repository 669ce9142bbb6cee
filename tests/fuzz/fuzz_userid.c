/* fuzz_userid: folding matches a reference definition, yields only allowed bytes, and is
 * idempotent; the register message built from the folded id splits back into its parts. */
#include "fuzz.h"

#include "common/error.h"
#include "protocol/userid.h"

#include <stdlib.h>
#include <string.h>

static int allowed(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '+' ||
           c == '@' || c == '-';
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* The nonce is the input up to its first NUL, the whole input going to the fold. */
static void check_message(const uint8_t *data, size_t size, const char *uid)
{
    size_t nlen = strnlen((const char *)data, size);
    char *nonce = malloc(nlen + 1);
    memcpy(nonce, data, nlen);
    nonce[nlen] = '\0';

    size_t cap = sizeof "volli-register\n" + nlen + 1 + strlen(uid);
    char *msg = malloc(cap);
    int n = vs_register_message(nonce, uid, msg, cap);
    if (nlen == 0 || memchr(nonce, '\n', nlen)) {
        if (n != VS_EINVAL)
            abort();
    } else {
        size_t want = strlen("volli-register\n") + nlen + 1 + strlen(uid);
        if (n < 0 || (size_t)n != want || strlen(msg) != want)
            abort();
        if (memcmp(msg, "volli-register\n", 15) != 0 || memcmp(msg + 15, nonce, nlen) != 0)
            abort();
        /* uid has no '\n', so the last line is the id. */
        const char *last = strrchr(msg, '\n');
        if (last != msg + 15 + nlen || strcmp(last + 1, uid) != 0)
            abort();
        if (vs_register_message(nonce, uid, msg, (size_t)n) != VS_ETOOBIG)
            abort();
    }
    free(msg);
    free(nonce);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[VS_USERID_MAX + 1];
    int rc = vs_userid_fold((const char *)data, size, out);

    int expect_ok = size >= 1 && size <= VS_USERID_MAX;
    for (size_t i = 0; i < size && expect_ok; i++)
        expect_ok = allowed(lower(data[i]));
    if (rc != (expect_ok ? 0 : VS_EINVAL))
        abort();
    if (rc != 0)
        return 0;

    if (strlen(out) != size)
        abort();
    for (size_t i = 0; i < size; i++)
        if (!allowed((unsigned char)out[i]) || (unsigned char)out[i] != lower(data[i]))
            abort();
    char again[VS_USERID_MAX + 1];
    if (vs_userid_fold(out, size, again) != 0 || strcmp(again, out) != 0)
        abort();
    check_message(data, size, out);
    return 0;
}
