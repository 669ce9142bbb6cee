/* wire.h: the v1 wire vocabulary: message types and error codes, with their strings in one
 * table each. It owns no state and never allocates. */
#ifndef VS_PROTOCOL_WIRE_H
#define VS_PROTOCOL_WIRE_H

#include "common/slice.h"

#define VS_WIRE_ERRORS(X)                                                                          \
    X(BAD_JSON, "bad_json")                                                                        \
    X(BAD_REQUEST, "bad_request")                                                                  \
    X(UNKNOWN_TYPE, "unknown_type")                                                                \
    X(NOT_REGISTERED, "not_registered")                                                            \
    X(INVALID_USER_ID, "invalid_user_id")                                                          \
    X(BAD_SIGNATURE, "bad_signature")                                                              \
    X(KEY_MISMATCH, "key_mismatch")                                                                \
    X(ALREADY_REGISTERED, "already_registered")                                                    \
    X(PEER_OFFLINE, "peer_offline")                                                                \
    X(TOO_LARGE, "too_large")                                                                      \
    X(REPLACED, "replaced")                                                                        \
    X(UNAVAILABLE, "unavailable")                                                                  \
    X(RATE_LIMITED, "rate_limited")                                                                \
    X(LIMIT_EXCEEDED, "limit_exceeded")                                                            \
    X(FORBIDDEN, "forbidden")                                                                      \
    X(ROOM_FULL, "room_full")                                                                      \
    X(NOT_IN_ROOM, "not_in_room")                                                                  \
    X(PQ_REQUIRED, "pq_required")                                                                  \
    X(PQ_KEY_MISMATCH, "pq_key_mismatch")                                                          \
    X(INTERNAL, "internal_error")

typedef enum vs_wire_error {
#define VS_WIRE_ERR_ENUM(name, str) VS_WERR_##name,
    VS_WIRE_ERRORS(VS_WIRE_ERR_ENUM)
#undef VS_WIRE_ERR_ENUM
        VS_WERR_COUNT
} vs_wire_error_t;

/* Message types a client may send. The relay types come first (see vs_msg_is_relay). */
#define VS_MSG_TYPES(X)                                                                            \
    X(OFFER, "offer")                                                                              \
    X(ANSWER, "answer")                                                                            \
    X(ICE, "ice-candidate")                                                                        \
    X(BYE, "bye")                                                                                  \
    X(REGISTER, "register")                                                                        \
    X(DISCOVER, "discover")                                                                        \
    X(SUBSCRIBE, "subscribe")                                                                      \
    X(UNSUBSCRIBE, "unsubscribe")                                                                  \
    X(PING, "ping")                                                                                \
    X(JOIN, "join")                                                                                \
    X(LEAVE, "leave")                                                                              \
    X(ROOM_MESSAGE, "room_message")                                                                \
    X(PQ_HANDSHAKE, "pq_handshake")

typedef enum vs_msg_type {
#define VS_MSG_ENUM(name, str) VS_MSG_##name,
    VS_MSG_TYPES(VS_MSG_ENUM)
#undef VS_MSG_ENUM
        VS_MSG_COUNT,
    VS_MSG_UNKNOWN = -1
} vs_msg_type_t;

const char *vs_wire_error_name(vs_wire_error_t e);
const char *vs_msg_type_name(vs_msg_type_t t);
/* Maps the raw (unescaped) bytes of a type string to its enum, or VS_MSG_UNKNOWN. */
vs_msg_type_t vs_msg_type_from(vs_slice_t s);

static inline int vs_msg_is_relay(vs_msg_type_t t)
{
    return t >= VS_MSG_OFFER && t <= VS_MSG_BYE;
}

/* The payload member each relay type must carry, or NULL when none is required. */
const char *vs_msg_relay_field(vs_msg_type_t t);

#endif
