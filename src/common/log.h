/* log.h: one line per event to stderr, as text or JSON. The level is checked before any
 * formatting. Callers must never pass payloads, signatures, tokens or keys; user ids only at
 * debug level. */
#ifndef VS_COMMON_LOG_H
#define VS_COMMON_LOG_H

enum vs_log_level { VS_LOG_ERROR = 0, VS_LOG_WARN, VS_LOG_INFO, VS_LOG_DEBUG };
enum vs_log_format { VS_LOG_TEXT = 0, VS_LOG_JSON };

extern int vs_log_threshold;

void vs_log_setup(int level, int format);
/* Parses "error", "warn", "info", "debug"; returns the level or VS_EINVAL. */
int vs_log_level_parse(const char *s);
const char *vs_log_level_name(int level);

/* Logs msg (a short fixed event name, no spaces) with key/value fields given as a
 * NULL-terminated list of (const char *key, const char *fmt, value) triples, e.g.
 *   VS_LOG(VS_LOG_INFO, "listening", "host", "%s", host, "port", "%d", port, NULL);
 * Numbers formatted with %d/%u/%zu/%.3f are written unquoted in JSON; everything else quoted. */
void vs_log_write(int level, const char *msg, ...);

#define VS_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) <= vs_log_threshold)                                                           \
            vs_log_write((level), __VA_ARGS__);                                                    \
    } while (0)

#endif
