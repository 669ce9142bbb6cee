/* envelope.h: the relay path's only JSON reader. One validating pass over a text frame that
 * accepts exactly the inputs the reference rule accepts, and reports where the top-level "type",
 * "to", "id" and "from" members are, so a relayed message can be forwarded byte for byte with
 * only "from" rewritten. The reference rule ("forward whatever JSON it is") is:
 *
 *     json_loadb(buf, len, VS_JSON_FLAGS, &err) succeeds (jansson 2.14, quirks included)
 *     AND buf[0..len) holds no raw NUL byte (0x00),
 *
 * plus, for vs_envelope_scan() returning 0, a top-level object. So "\u0000" is accepted in
 * string values but not in keys (jansson: "NUL byte in object key not supported", whatever the
 * flags); numbers of any length are accepted unless strtod overflows to +-inf ("real number
 * overflow"), underflow to 0 or a denormal is fine; duplicate keys (compared after decoding
 * escapes) are rejected at every level. The NUL rule is ours: jansson skips one raw NUL right
 * after a number or true/false/null (ungetting its lookahead loses it), which a browser's
 * JSON.parse would refuse, so such frames are not forwarded.
 *
 * It owns nothing beyond a call: every slice and span points into the caller's buffer. It must
 * never build a DOM, never decode more than the caller asks for, and never keep the input. */
#ifndef VS_PROTOCOL_ENVELOPE_H
#define VS_PROTOCOL_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"

/* The jansson flags of the reference rule above; every json_loadb() of a client message uses
 * them, so that what the relay forwards and what the rest of the server parses agree (expand
 * only where <jansson.h> is included: the relay path itself does not use jansson). */
#define VS_JSON_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL)

/* Kinds of a top-level member of interest. */
#define VS_JSON_ABSENT 0
#define VS_JSON_STRING 1
#define VS_JSON_OTHER 2 /* present, but a number, literal, object or array */

/* jansson 2.14's JSON_PARSER_MAX_DEPTH: what max_depth 0 means, and the most it can mean. */
#define VS_JSON_MAX_DEPTH 2048

/* Duplicate keys are rejected, so a valid object has at most one top-level "from". */
#define VS_ENVELOPE_MAX_FROM 1

/* How many top-level keys an envelope remembers for vs_envelope_has_member(). */
#define VS_ENVELOPE_KEYS 8

/* Objects with more members than this get a hash set (heap scratch) for duplicate detection;
 * smaller ones are checked against a stack table. */
#define VS_ENVELOPE_SMALL_OBJECT 32

/* A byte range [start, end) of the scanned input. */
typedef struct vs_envelope_span {
    size_t start, end;
} vs_envelope_span_t;

typedef struct vs_envelope {
    /* For a string: the raw bytes between the quotes, escapes NOT decoded. For VS_JSON_OTHER:
     * the raw text of the value. Borrowed from the input. */
    vs_slice_t type, to, id;
    uint8_t type_kind, to_kind, id_kind;          /* VS_JSON_ABSENT / _STRING / _OTHER */
    uint8_t type_escaped, to_escaped, id_escaped; /* 1 if the raw string contains a backslash */
    uint8_t from_count;                           /* 0 or 1 entries used in from[] */
    /* Every top-level "from" member (key matched after decoding escapes), including one
     * separating comma, so that removing the spans leaves valid JSON. */
    vs_envelope_span_t from[VS_ENVELOPE_MAX_FROM];
    size_t open;    /* offset of the top-level '{' */
    size_t members; /* number of top-level members, "from" included */
    /* For vs_envelope_has_member(): the raw bytes (between the quotes) of the first
     * VS_ENVELOPE_KEYS top-level keys, bit i of key_escaped set if key[i] holds a backslash, and
     * the scanned input itself (borrowed) to walk when there are more members. */
    vs_envelope_span_t key[VS_ENVELOPE_KEYS];
    uint8_t key_escaped;
    const char *json;
    size_t len;
} vs_envelope_t;

/* Scans json[0..len). Returns 0 if it is a JSON object under the reference rule (fills env),
 * VS_EINVAL for anything the rule rejects (invalid JSON or UTF-8, a raw NUL byte anywhere,
 * "\u0000" in a key, duplicate keys, numbers that overflow a double), VS_EPROTO if the rule
 * accepts it but the top level is not an object (an array, or a scalar jansson would accept with
 * JSON_DECODE_ANY), VS_EDEPTH if nesting exceeds max_depth (reported exactly where jansson
 * reports "maximum parsing depth reached", unless the input holds a raw NUL byte: VS_EINVAL),
 * VS_ETOOBIG if len does not fit in 32 bits.
 * Depth counts as jansson does: the top-level value is at depth 1 and every member or element,
 * scalars included, one deeper than its container. max_depth 0 or anything above
 * VS_JSON_MAX_DEPTH means VS_JSON_MAX_DEPTH, so the scanner never accepts what jansson rejects.
 * Allocation: none while the open objects along the current nesting path hold at most 256
 * keys in total (plus one per open object), e.g. any envelope whose objects have at most 32
 * members and nest at most 7 deep; objects with more than VS_ENVELOPE_SMALL_OBJECT members and
 * deeper paths use scratch memory that is freed before returning.
 * json: borrowed (need not be NUL-terminated). env: borrowed, overwritten; its slices and spans
 * borrow json and are meaningful only when 0 is returned. */
int vs_envelope_scan(const char *json, size_t len, size_t max_depth, vs_envelope_t *env);

/* 1 if the scanned object has a top-level member whose key, escapes decoded, is name; else 0.
 * Costs nothing beyond a few compares for objects of up to VS_ENVELOPE_KEYS members; larger
 * ones are walked again (without validation, which the scan did). env: borrowed, from a
 * successful scan whose input is still alive. name: borrowed, NUL-terminated. */
int vs_envelope_has_member(const vs_envelope_t *env, const char *name);

/* Decodes a JSON string's raw contents (as in env->to) into out, NUL-terminated, for the rare
 * escaped case. Returns the decoded length, VS_ETOOBIG if it does not fit in cap-1 bytes (or in
 * an int), VS_EINVAL if raw holds a malformed escape. raw must come from a successful scan,
 * which guarantees valid UTF-8. A value may hold "\u0000", decoded to a 0 byte inside out: use
 * the returned length, not strlen() (keys never do). On error out holds "" (if cap > 0).
 * raw: borrowed. out: borrowed, cap bytes. */
int vs_json_unescape(vs_slice_t raw, char *out, size_t cap);

/* The exact number of bytes vs_envelope_splice_from() writes for this envelope, input length
 * and from length (SIZE_MAX if that overflows). env: borrowed, from a successful scan. */
size_t vs_envelope_splice_size(const vs_envelope_t *env, size_t len, size_t from_len);

/* Writes into out the object with a member "from":"<from>" inserted as the FIRST top-level
 * member and every top-level "from" member of the input removed; every other byte, including
 * whitespace and anything before the '{', is copied unchanged. from is written verbatim between
 * quotes: the caller guarantees it needs no escaping (user ids are [a-z0-9._+@-]). The output is
 * not NUL-terminated. Returns the number of bytes written, VS_ETOOBIG if cap is smaller than
 * vs_envelope_splice_size(), VS_EINVAL if env does not describe json.
 * json, env, from: borrowed; env must come from a successful vs_envelope_scan(json, len).
 * out: borrowed, cap bytes, must not overlap json. */
long vs_envelope_splice_from(const char *json, size_t len, const vs_envelope_t *env,
                             const char *from, size_t from_len, char *out, size_t cap);

#endif
