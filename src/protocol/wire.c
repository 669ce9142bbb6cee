#include "protocol/wire.h"

static const char *const error_names[] = {
#define VS_WIRE_ERR_STR(name, str) str,
    VS_WIRE_ERRORS(VS_WIRE_ERR_STR)
#undef VS_WIRE_ERR_STR
};

static const char *const type_names[] = {
#define VS_MSG_STR(name, str) str,
    VS_MSG_TYPES(VS_MSG_STR)
#undef VS_MSG_STR
};

const char *vs_wire_error_name(vs_wire_error_t e)
{
    return (unsigned)e < VS_WERR_COUNT ? error_names[e] : "internal_error";
}

const char *vs_msg_type_name(vs_msg_type_t t)
{
    return (unsigned)t < VS_MSG_COUNT ? type_names[t] : "unknown";
}

vs_msg_type_t vs_msg_type_from(vs_slice_t s)
{
    for (int i = 0; i < VS_MSG_COUNT; i++)
        if (vs_slice_eq(s, type_names[i]))
            return (vs_msg_type_t)i;
    return VS_MSG_UNKNOWN;
}

const char *vs_msg_relay_field(vs_msg_type_t t)
{
    switch (t) {
    case VS_MSG_OFFER:
        return "offer";
    case VS_MSG_ANSWER:
        return "answer";
    case VS_MSG_ICE:
        return "candidate";
    default:
        return NULL;
    }
}
