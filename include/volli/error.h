/* volli/error.h: error codes of the Volli client library. Every function returns 0 or one
 * of these negative values; volli_strerror() names them. */
#ifndef VOLLI_ERROR_H
#define VOLLI_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#define VOLLI_ERRNO_MAP(X)                                                                         \
    X(NOMEM, -1, "out of memory")                                                                  \
    X(INVAL, -2, "invalid argument")                                                               \
    X(NOTCONN, -3, "not connected to a server")                                                    \
    X(TIMEDOUT, -4, "the request timed out")                                                       \
    X(WIRE, -5, "the server answered with an error")                                               \
    X(UNREACHABLE, -6, "no server could be reached")                                               \
    X(PERM, -7, "file permissions are unsafe")                                                     \
    X(IO, -8, "input/output error")                                                                \
    X(PROTO, -9, "protocol violation")                                                             \
    X(CRYPTO, -10, "cryptographic failure")                                                        \
    X(EXISTS, -11, "already exists")                                                               \
    X(UNSUPPORTED, -12, "not supported")                                                           \
    X(CANCELED, -13, "canceled")

enum volli_errno {
    VOLLI_OK = 0,
#define VOLLI_ERRNO_ENUM(name, val, text) VOLLI_E##name = (val),
    VOLLI_ERRNO_MAP(VOLLI_ERRNO_ENUM)
#undef VOLLI_ERRNO_ENUM
};

/* A static string for a VOLLI_E* code. */
const char *volli_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
