/* error.h: the server's internal error codes (not the wire codes, see protocol/wire.h).
 * Functions return 0 on success or one of these negative values. */
#ifndef VS_COMMON_ERROR_H
#define VS_COMMON_ERROR_H

#define VS_ERRNO_MAP(X)                                                                            \
    X(NOMEM, -1, "out of memory")                                                                  \
    X(INVAL, -2, "invalid argument")                                                               \
    X(PROTO, -3, "protocol violation")                                                             \
    X(TOOBIG, -4, "too large")                                                                     \
    X(IO, -5, "input/output error")                                                                \
    X(NOTFOUND, -6, "not found")                                                                   \
    X(EXISTS, -7, "already exists")                                                                \
    X(MISMATCH, -8, "mismatch")                                                                    \
    X(CRYPTO, -9, "cryptographic failure")                                                         \
    X(STORE, -10, "store failure")                                                                 \
    X(AGAIN, -11, "try again")                                                                     \
    X(CLOSED, -12, "closed")                                                                       \
    X(UTF8, -13, "invalid UTF-8")                                                                  \
    X(USAGE, -14, "usage error")                                                                   \
    X(DEPTH, -15, "nesting too deep")

enum vs_errno {
    VS_OK = 0,
#define VS_ERRNO_ENUM(name, val, text) VS_E##name = (val),
    VS_ERRNO_MAP(VS_ERRNO_ENUM)
#undef VS_ERRNO_ENUM
};

/* Returns a static string for a VS_E* code (or "unknown error"). */
const char *vs_strerror(int err);

#endif
