#include "common/log.h"

#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int vs_log_threshold = VS_LOG_INFO;
static int log_format = VS_LOG_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void vs_log_setup(int level, int format)
{
    vs_log_threshold = level;
    log_format = format;
}

int vs_log_level_parse(const char *s)
{
    for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return VS_EINVAL;
}

const char *vs_log_level_name(int level)
{
    if (level < 0 || level > VS_LOG_DEBUG)
        return "?";
    return level_names[level];
}

/* Appends s to the line, JSON-escaped when json is set; bounded by end. */
static char *put(char *w, char *end, const char *s, int json)
{
    for (; *s && w < end - 7; s++) {
        unsigned char c = (unsigned char)*s;
        if (json && (c == '"' || c == '\\')) {
            *w++ = '\\';
            *w++ = (char)c;
        } else if (c < 0x20) {
            w += json ? sprintf(w, "\\u%04x", c) : sprintf(w, "\\x%02x", c);
        } else {
            *w++ = (char)c;
        }
    }
    return w;
}

/* snprintf that never moves w past end, even when the output is truncated. */
__attribute__((format(printf, 3, 4))) static char *append(char *w, char *end, const char *fmt,
                                                          ...)
{
    if (w >= end)
        return w;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w, (size_t)(end - w), fmt, ap);
    va_end(ap);
    if (n < 0)
        return w;
    return (size_t)n >= (size_t)(end - w) ? end - 1 : w + n;
}

static int numeric_format(const char *fmt)
{
    size_t n = strlen(fmt);
    if (n < 2 || fmt[0] != '%')
        return 0;
    char conv = fmt[n - 1];
    return strchr("diuf", conv) != NULL && strchr(fmt + 1, '%') == NULL;
}

void vs_log_write(int level, const char *msg, ...)
{
    char line[2048];
    char *w = line, *end = line + sizeof line - 2;
    int json = log_format == VS_LOG_JSON;
    struct timeval tv;
    struct tm tm;
    char ts[40];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t tn = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tn, sizeof ts - tn, ".%03dZ", (int)(tv.tv_usec / 1000));

    if (json)
        w = append(w, end, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                      vs_log_level_name(level));
    else
        w = append(w, end, "%s %-5s ", ts, vs_log_level_name(level));
    w = put(w, end, msg, json);
    if (json && w < end)
        *w++ = '"';

    va_list ap;
    va_start(ap, msg);
    const char *key;
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *fmt = va_arg(ap, const char *);
        char val[512];
        va_list cp;
        va_copy(cp, ap);
        /* Callers pass literal formats through VS_LOG's (key, fmt, value) triples. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        vsnprintf(val, sizeof val, fmt, cp);
#pragma GCC diagnostic pop
        va_end(cp);
        /* Advance ap past the one argument by its conversion's type. */
        size_t fl = strlen(fmt);
        char conv = fl ? fmt[fl - 1] : 's';
        if (conv == 'f')
            (void)va_arg(ap, double);
        else if (conv == 's' || conv == 'p')
            (void)va_arg(ap, const char *);
        else if (strchr(fmt, 'l') || strchr(fmt, 'z'))
            (void)va_arg(ap, long long);
        else
            (void)va_arg(ap, int);
        int num = numeric_format(fmt);
        if (json) {
            w = append(w, end, ",\"");
            w = put(w, end, key, 1);
            w = append(w, end, num ? "\":" : "\":\"");
            w = put(w, end, val, 1);
            if (!num && w < end)
                *w++ = '"';
        } else {
            w = append(w, end, " %s=", key);
            int quote = !num && (strchr(val, ' ') || !*val);
            if (quote && w < end)
                *w++ = '"';
            w = put(w, end, val, 0);
            if (quote && w < end)
                *w++ = '"';
        }
    }
    va_end(ap);
    if (json)
        *w++ = '}';
    *w++ = '\n';
    fwrite(line, 1, (size_t)(w - line), stderr);
}
