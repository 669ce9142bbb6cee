/* util.c: error strings, event names, logging through the application's sink, and string
 * copies that report out-of-memory instead of aborting. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

VOLLI_PUBLIC const char *volli_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define VOLLI_ERRNO_CASE(name, val, text)                                                          \
    case val:                                                                                      \
        return text;
        VOLLI_ERRNO_MAP(VOLLI_ERRNO_CASE)
#undef VOLLI_ERRNO_CASE
    default:
        return "unknown error";
    }
}

VOLLI_PUBLIC const char *volli_event_name(volli_event_type_t type)
{
    switch (type) {
    case VOLLI_EVENT_CONNECTED:
        return "connected";
    case VOLLI_EVENT_DISCONNECTED:
        return "disconnected";
    case VOLLI_EVENT_REGISTERED:
        return "registered";
    case VOLLI_EVENT_PRESENCE:
        return "presence";
    case VOLLI_EVENT_OFFER:
        return "offer";
    case VOLLI_EVENT_ANSWER:
        return "answer";
    case VOLLI_EVENT_ICE_CANDIDATE:
        return "ice-candidate";
    case VOLLI_EVENT_BYE:
        return "bye";
    case VOLLI_EVENT_ERROR:
        return "error";
    }
    return "unknown";
}

void vl_log(const vl_logger_t *lg, int level, const char *fmt, ...)
{
    if (!lg || !lg->cb)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    lg->cb(level, line, lg->ud);
}

char *vl_strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *vl_strdup(const char *s)
{
    return s ? vl_strndup(s, strlen(s)) : NULL;
}
