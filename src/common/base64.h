/* base64.h: RFC 4648 base64 encoding and strict decoding of byte strings.
 * Owns nothing and allocates nothing: callers provide the output buffers.
 * Decoding must never accept more than one spelling of the same bytes (no whitespace, no
 * missing or extra padding, no non-zero trailing bits), so that a key or signature has exactly
 * one valid text form and re-encoding what was decoded gives back the input. */
#ifndef VS_COMMON_BASE64_H
#define VS_COMMON_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Length of the padded standard encoding of len bytes, without the NUL. */
size_t vs_base64_encoded_len(size_t len);

/* Length of the unpadded URL-alphabet encoding of len bytes, without the NUL. */
size_t vs_base64url_encoded_len(size_t len);

/* Upper bound of the decoded length of len characters (exact when the input is valid and
 * unpadded to a multiple of 3 bytes). */
size_t vs_base64_decoded_max(size_t len);

/* Decodes the standard alphabet with padding, strictly: len must be a multiple of 4, '=' only
 * as the last one or two characters, the unused bits of the last symbol must be zero, and any
 * other byte (whitespace, URL alphabet, NUL) is rejected.
 * in: borrowed, len bytes, need not be NUL-terminated (may be NULL when len is 0).
 * out: borrowed, cap bytes; its contents are unspecified when an error is returned.
 * Returns the decoded length, VS_EINVAL for invalid input (checked first), or VS_ETOOBIG when
 * the input is valid but cap is too small. */
long vs_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* Encodes with the standard alphabet and padding.
 * in: borrowed (may be NULL when len is 0). out: borrowed, at least
 * vs_base64_encoded_len(len) + 1 bytes; receives a NUL-terminated string.
 * Returns the length written, without the NUL. */
size_t vs_base64_encode(const uint8_t *in, size_t len, char *out);

/* Encodes with the URL alphabet ('-' and '_') and no padding.
 * in: borrowed (may be NULL when len is 0). out: borrowed, at least
 * vs_base64url_encoded_len(len) + 1 bytes; receives a NUL-terminated string.
 * Returns the length written, without the NUL. */
size_t vs_base64url_encode(const uint8_t *in, size_t len, char *out);

#endif
