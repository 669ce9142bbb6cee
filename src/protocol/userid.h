/* userid.h: the canonical form of user ids and the exact bytes a client signs to register one.
 * Owns no state. A user id is compared, stored and signed only in its folded form; this module
 * must never accept a byte outside [a-z0-9._+@-] after folding (no Unicode case folding: two
 * different inputs must never fold to the same id unless they differ only in ASCII case). */
#ifndef VS_PROTOCOL_USERID_H
#define VS_PROTOCOL_USERID_H

#include <stddef.h>

#define VS_USERID_MAX 128

/* Folds ASCII A-Z to a-z and validates: 1..VS_USERID_MAX bytes of [a-z0-9._+@-] after folding.
 * Any other byte (non-ASCII, NUL, space, control) is invalid.
 * in: borrowed, len bytes, need not be NUL-terminated (may be NULL when len is 0).
 * out: borrowed, VS_USERID_MAX + 1 bytes; receives the NUL-terminated folded id on success
 * and is left unspecified on failure.
 * Returns 0 or VS_EINVAL. */
int vs_userid_fold(const char *in, size_t len, char out[VS_USERID_MAX + 1]);

/* Builds the message signed at registration: "volli-register\n" nonce "\n" uid.
 * nonce: borrowed, NUL-terminated, non-empty, must not contain '\n' (it would make the
 * message ambiguous). uid: borrowed, NUL-terminated, must already be folded (vs_userid_fold).
 * out: borrowed, cap bytes; receives the NUL-terminated message.
 * Returns the message length without the NUL, VS_EINVAL for a bad nonce or uid, or VS_ETOOBIG
 * if the message and its NUL do not fit in cap. */
int vs_register_message(const char *nonce, const char *uid, char *out, size_t cap);

#endif
