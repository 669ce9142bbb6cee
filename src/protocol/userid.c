#include "protocol/userid.h"

#include "common/error.h"

#include <limits.h>
#include <string.h>

#define REGISTER_PREFIX "volli-register\n"

/* Returns the folded byte, or 0 if c may not appear in a user id. Deliberately not <ctype.h>:
 * its answers depend on the locale, and the set must be the same everywhere. */
static char fold_char(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (char)(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return (char)c;
    switch (c) {
    case '.':
    case '_':
    case '+':
    case '@':
    case '-':
        return (char)c;
    }
    return 0;
}

int vs_userid_fold(const char *in, size_t len, char out[VS_USERID_MAX + 1])
{
    if (len == 0 || len > VS_USERID_MAX)
        return VS_EINVAL;
    for (size_t i = 0; i < len; i++) {
        char f = fold_char((unsigned char)in[i]);
        if (f == 0)
            return VS_EINVAL;
        out[i] = f;
    }
    out[len] = '\0';
    return 0;
}

/* True if uid is exactly what vs_userid_fold produces for some input. */
static int is_folded(const char *uid)
{
    size_t len = strnlen(uid, VS_USERID_MAX + 1);
    if (len == 0 || len > VS_USERID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (fold_char((unsigned char)uid[i]) != uid[i])
            return 0;
    return 1;
}

int vs_register_message(const char *nonce, const char *uid, char *out, size_t cap)
{
    if (!nonce || !uid || !out || !*nonce || strchr(nonce, '\n') || !is_folded(uid))
        return VS_EINVAL;

    size_t plen = sizeof REGISTER_PREFIX - 1, nlen = strlen(nonce), ulen = strlen(uid);
    /* The nonce is the only unbounded part; refuse lengths an int cannot report. */
    if (nlen > (size_t)INT_MAX - plen - ulen - 2)
        return VS_ETOOBIG;
    size_t total = plen + nlen + 1 + ulen;
    if (total + 1 > cap)
        return VS_ETOOBIG;

    char *p = out;
    memcpy(p, REGISTER_PREFIX, plen);
    p += plen;
    memcpy(p, nonce, nlen);
    p += nlen;
    *p++ = '\n';
    memcpy(p, uid, ulen + 1);
    return (int)total;
}
