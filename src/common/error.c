#include "common/error.h"

const char *vs_strerror(int err)
{
    switch (err) {
    case VS_OK:
        return "success";
#define VS_ERRNO_CASE(name, val, text)                                                             \
    case VS_E##name:                                                                               \
        return text;
        VS_ERRNO_MAP(VS_ERRNO_CASE)
#undef VS_ERRNO_CASE
    }
    return "unknown error";
}
