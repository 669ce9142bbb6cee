/* config.c: the typed configuration table and the readers generated from it. Every value,
 * including the defaults, goes through the same parser and bounds check, so the table is the
 * only place a knob's rules are written down. */
#include "core/config.h"

#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"
#include "common/url.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum opt_type { OPT_STRING, OPT_INT, OPT_SIZE, OPT_SECONDS, OPT_ENUM, OPT_BOOL };

/* The C type each option type stores into; TYPED() refuses to compile when a table line names a
 * field of another type, so the parsers can write through the offset without further checks. */
#define CTYPE_OPT_STRING char *
#define CTYPE_OPT_INT int
#define CTYPE_OPT_SIZE size_t
#define CTYPE_OPT_SECONDS double
#define CTYPE_OPT_ENUM int
#define CTYPE_OPT_BOOL int
#define TYPED(t, field)                                                                            \
    .type = t, .off = _Generic(((vs_config_t *)0)->field, CTYPE_##t : offsetof(vs_config_t, field))

#define KIB 1024.0
#define MIB (1024.0 * 1024.0)
/* A config file is a dozen lines; the cap keeps a wrong path (a log, a device) from being read
 * whole. */
#define MAX_FILE_BYTES (1024 * 1024)
/* Longest piece of user input quoted back in a message. */
#define SHOWN_MAX 64

struct knob {
    const char *name;            /* the long flag without dashes */
    enum opt_type type;          /* set with the field by TYPED() */
    size_t off;                  /* of the field in vs_config_t */
    const char *env;             /* environment variable, or NULL */
    const char *def;             /* default in command-line syntax, or NULL (strings only) */
    double min, max;             /* numbers: inclusive bounds */
    const char *const *choices;  /* enums: NULL-terminated names; the value is the index... */
    int (*lookup)(const char *); /* ...unless this maps a name to its value (negative: unknown) */
    bool not_in_file;            /* refused as a key of the config file */
    const char *arg;             /* metavariable in --help; NULL: derived from the type */
    const char *help;            /* one line for --help */
    bool hidden;                 /* a test knob: left out of --help */
    bool secret;                 /* never quoted back in a message */
    /* strings: NULL if text is acceptable, else what is wrong with it */
    const char *(*check)(const char *text);
};

static const char *check_redis_url(const char *t)
{
    return vs_url_parse(t, VS_URL_REDIS, NULL) == 0 ? NULL
           : strncmp(t, "redis://", 8) != 0
               ? "must be redis://[:password@]host:port[/db]"
               : "is not a valid redis://[:password@]host[:port][/db] URL";
}

static const char *check_database_url(const char *t)
{
    return vs_url_parse(t, VS_URL_POSTGRES, NULL) == 0
               ? NULL
               : "must be a postgres:// or postgresql:// URL (postgres://user:pw@host:port/db)";
}

static const char *check_node_id(const char *t)
{
    size_t n = strlen(t);
    if (n > 64 || strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != n)
        return "must be 1 to 64 characters of [A-Za-z0-9_.-]";
    return NULL;
}

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const pq_algorithms[] = {"ML-KEM-768", "X25519MLKEM768", NULL};
_Static_assert(VS_PQ_ALG_MLKEM768 == 0 && VS_PQ_ALG_X25519MLKEM768 == 1,
               "pq_algorithms[] is indexed by vs_pq_alg");
_Static_assert(VS_LOG_TEXT == 0 && VS_LOG_JSON == 1, "log_formats[] is indexed by vs_log_format");

/* Kept as a table: clang-format would spread each entry over a dozen lines. */
// clang-format off
static const struct knob knobs[] = {
    {.name = "host", TYPED(OPT_STRING, host), .env = "VOLLI_HOST", .def = "0.0.0.0",
     .arg = "ADDR", .help = "address to listen on"},
    {.name = "port", TYPED(OPT_INT, port), .env = "VOLLI_PORT", .def = "7880", .min = 0,
     .max = 65535, .arg = "PORT", .help = "TCP port to listen on (0: the kernel picks one)"},
    {.name = "data-dir", TYPED(OPT_STRING, data_dir), .env = "VOLLI_DATA_DIR", .def = "./data",
     .arg = "DIR", .help = "directory holding the database"},
    {.name = "config", TYPED(OPT_STRING, config_file), .env = "VOLLI_CONFIG", .not_in_file = true,
     .arg = "FILE", .help = "JSON config file, read before the environment and flags"},
    {.name = "log-level", TYPED(OPT_ENUM, log_level), .env = "LOG_LEVEL", .def = "info",
     .choices = log_levels, .lookup = vs_log_level_parse, .help = "least severe event logged"},
    {.name = "log-format", TYPED(OPT_ENUM, log_format), .env = "VOLLI_LOG_FORMAT", .def = "text",
     .choices = log_formats, .help = "log line format on stderr"},
    {.name = "ping-interval", TYPED(OPT_SECONDS, ping_interval), .env = "VOLLI_PING_INTERVAL",
     .def = "30", .min = 0.05, .max = 3600, .help = "time between WebSocket pings on a connection"},
    {.name = "max-frame", TYPED(OPT_SIZE, max_frame), .env = "VOLLI_MAX_FRAME", .def = "64K",
     .min = 256, .max = 16 * MIB, .help = "largest WebSocket message accepted"},
    {.name = "max-queue", TYPED(OPT_SIZE, max_queue), .env = "VOLLI_MAX_QUEUE", .def = "1M",
     .min = 4 * KIB, .max = 1024 * MIB,
     .help = "bytes queued to a slow connection before it is dropped"},
    {.name = "max-connections", TYPED(OPT_INT, max_connections), .env = "VOLLI_MAX_CONNECTIONS",
     .def = "20000", .min = 1, .max = 10000000, .help = "connections served at once"},
    {.name = "max-batch", TYPED(OPT_INT, max_batch), .env = "VOLLI_MAX_BATCH", .def = "100",
     .min = 1, .max = 100, .help = "ids per discover or subscribe request"},
    {.name = "shutdown-timeout", TYPED(OPT_SECONDS, shutdown_timeout),
     .env = "VOLLI_SHUTDOWN_TIMEOUT", .def = "5", .min = 0, .max = 600,
     .help = "how long SIGTERM waits for close handshakes"},
    {.name = "max-connections-per-ip", TYPED(OPT_INT, max_conns_per_ip),
     .env = "VOLLI_MAX_CONNECTIONS_PER_IP", .def = "1000", .min = 1, .max = 10000000,
     .help = "connections served at once from one source address"},
    {.name = "trusted-proxies", TYPED(OPT_STRING, trusted_proxies),
     .env = "VOLLI_TRUSTED_PROXIES", .def = "127.0.0.1,::1", .arg = "ADDRS",
     .help = "comma-separated proxy addresses whose X-Forwarded-For is believed; a client "
             "connecting from one without that header is exempt from per-address limits "
             "(\"none\": trust nobody)"},
    {.name = "handshake-timeout", TYPED(OPT_SECONDS, handshake_timeout),
     .env = "VOLLI_HANDSHAKE_TIMEOUT", .def = "10", .min = 0.1, .max = 3600,
     .help = "time allowed to finish the HTTP request or WebSocket upgrade"},
    {.name = "register-timeout", TYPED(OPT_SECONDS, register_timeout),
     .env = "VOLLI_REGISTER_TIMEOUT", .def = "30", .min = 0.1, .max = 86400,
     .help = "time a WebSocket may stay open without registering"},
    {.name = "rate-messages", TYPED(OPT_INT, rate_messages), .env = "VOLLI_RATE_MESSAGES",
     .def = "1000", .min = 1, .max = 10000000,
     .help = "messages per second per connection (bursts of ten seconds' worth)"},
    {.name = "rate-bytes", TYPED(OPT_SIZE, rate_bytes), .env = "VOLLI_RATE_BYTES", .def = "1M",
     .min = 1 * KIB, .max = 1024 * MIB,
     .help = "message bytes per second per connection (bursts of ten seconds' worth)"},
    {.name = "rate-strikes", TYPED(OPT_INT, rate_strikes), .env = "VOLLI_RATE_STRIKES",
     .def = "100", .min = 1, .max = 10000000,
     .help = "rate-limited messages in a row before the connection is closed (1008)"},
    {.name = "register-rate", TYPED(OPT_INT, register_rate), .env = "VOLLI_REGISTER_RATE",
     .def = "60", .min = 1, .max = 10000000,
     .help = "registrations per minute per source address that fail or bind a new id"},
    {.name = "lookup-rate", TYPED(OPT_INT, lookup_rate), .env = "VOLLI_LOOKUP_RATE",
     .def = "3000", .min = 1, .max = 100000000,
     .help = "user ids per minute per connection in discover and subscribe"},
    {.name = "max-subscriptions", TYPED(OPT_INT, max_subscriptions),
     .env = "VOLLI_MAX_SUBSCRIPTIONS", .def = "1000", .min = 1, .max = 10000000,
     .help = "presence subscriptions per connection"},
    {.name = "max-json-depth", TYPED(OPT_INT, max_json_depth), .env = "VOLLI_MAX_JSON_DEPTH",
     .def = "32", .min = 2, .max = 2048, .help = "nesting levels allowed in a message"},
    {.name = "max-json-members", TYPED(OPT_INT, max_json_members),
     .env = "VOLLI_MAX_JSON_MEMBERS", .def = "256", .min = 1, .max = 1000000,
     .help = "top-level members allowed in a message"},
    {.name = "demo", TYPED(OPT_BOOL, demo), .env = "VOLLI_DEMO", .def = "true",
     .help = "serve the demo app at / (the SDK at /sdk/ is always served)"},
    {.name = "web-dir", TYPED(OPT_STRING, web_dir), .env = "VOLLI_WEB_DIR", .arg = "DIR",
     .help = "serve sdk/ and demo/ from DIR instead of the copy built in (development)"},
    {.name = "dev", TYPED(OPT_BOOL, dev), .env = "VOLLI_DEV", .def = "false",
     .help = "development mode: accept access tokens signed with the public development key "
             "pair (never in production); API keys themselves come from the environment only "
             "(LIVEKIT_KEYS, or LIVEKIT_API_KEY and LIVEKIT_API_SECRET)"},
    {.name = "max-room-participants", TYPED(OPT_INT, max_room_participants),
     .env = "VOLLI_MAX_ROOM_PARTICIPANTS", .def = "50", .min = 1, .max = 100000,
     .help = "participants per room, hidden ones included"},
    {.name = "max-rooms-per-connection", TYPED(OPT_INT, max_rooms_per_conn),
     .env = "VOLLI_MAX_ROOMS_PER_CONNECTION", .def = "16", .min = 1, .max = 10000,
     .help = "rooms one connection may be in at once"},
    {.name = "pq-enabled", TYPED(OPT_BOOL, pq_enabled), .env = "VOLLY_PQ_ENABLED", .def = "true",
     .help = "offer the post-quantum session (pq_handshake) to clients"},
    {.name = "pq-required", TYPED(OPT_BOOL, pq_required), .env = "VOLLY_PQ_REQUIRED",
     .def = "false",
     .help = "refuse everything but ping and pq_handshake before the post-quantum handshake"},
    {.name = "pq-algorithm", TYPED(OPT_ENUM, pq_algorithm), .env = "VOLLY_PQ_ALGORITHM",
     .def = "ML-KEM-768", .choices = pq_algorithms,
     .help = "the key exchange advertised first in hello (both are accepted)"},
    {.name = "pq-session-timeout", TYPED(OPT_SECONDS, pq_session_timeout),
     .env = "VOLLY_PQ_SESSION_TIMEOUT", .def = "86400", .min = 1, .max = 31536000,
     .help = "lifetime of a post-quantum session's keys before the server asks for a rekey"},
    {.name = "pq-rekey-grace", TYPED(OPT_SECONDS, pq_rekey_grace), .env = "VOLLY_PQ_REKEY_GRACE",
     .def = "30", .min = 0.1, .max = 3600, .hidden = true,
     .help = "time allowed for a rekey after rekey_required before closing with 4401"},
    {.name = "api-host", TYPED(OPT_STRING, api_host), .env = "VOLLI_API_HOST",
     .def = "127.0.0.1", .arg = "ADDR", .help = "address of the HTTP API listener"},
    {.name = "api-port", TYPED(OPT_INT, api_port), .env = "VOLLI_API_PORT", .def = "7881",
     .min = -1, .max = 65535, .arg = "PORT",
     .help = "TCP port of the HTTP API (/volly/sessions/stats, /metrics); 0: the kernel picks "
             "one; -1: no API listener"},
    {.name = "redis", TYPED(OPT_STRING, redis), .env = "VOLLI_REDIS", .arg = "URL",
     .check = check_redis_url, .secret = true,
     .help = "cluster mode: redis://[:password@]host:port[/db] for presence and the message bus "
             "between nodes (needs --database)"},
    {.name = "redis-password", TYPED(OPT_STRING, redis_password), .env = "REDIS_PASSWORD",
     .arg = "TEXT", .secret = true, .help = "Redis password (instead of the one in the URL)"},
    {.name = "database", TYPED(OPT_STRING, database), .env = "VOLLI_DATABASE", .arg = "URL",
     .check = check_database_url, .secret = true,
     .help = "postgres://user:password@host:port/db for the durable directory (default: SQLite "
             "in data-dir)"},
    {.name = "node-id", TYPED(OPT_STRING, node_id), .env = "VOLLI_NODE_ID", .arg = "NAME",
     .check = check_node_id, .help = "this node's name in a cluster (default: random at start)"},
    {.name = "cluster-heartbeat", TYPED(OPT_SECONDS, cluster_heartbeat),
     .env = "VOLLI_CLUSTER_HEARTBEAT", .def = "1", .min = 0.05, .max = 60,
     .help = "how often a node tells the cluster it is alive"},
    {.name = "cluster-node-timeout", TYPED(OPT_SECONDS, cluster_node_timeout),
     .env = "VOLLI_CLUSTER_NODE_TIMEOUT", .def = "3", .min = 0.2, .max = 600,
     .help = "a node silent this long is dead: its users are shown offline"},
    {.name = "redis-timeout", TYPED(OPT_SECONDS, redis_timeout), .env = "VOLLI_REDIS_TIMEOUT",
     .def = "2", .min = 0.05, .max = 60,
     .help = "a Redis reply later than this marks Redis unreachable (/healthz 503)"},
    {.name = "drain-timeout", TYPED(OPT_SECONDS, drain_timeout), .env = "VOLLI_DRAIN_TIMEOUT",
     .def = "2", .min = 0, .max = 600,
     .help = "after SIGTERM's reconnect notice, how long clients get to move before the close"},
};
// clang-format on

#define NKNOBS (sizeof knobs / sizeof knobs[0])

/* Control bytes in the message become '?': it quotes input (values, paths, jansson's "near
 * '...'"), which must not be able to forge a second line in the log. */
static __attribute__((format(printf, 3, 4))) int usage_error(char *err, size_t errlen,
                                                             const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        for (char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
    }
    return VS_EUSAGE;
}

/* Copies at most n bytes of user input into buf for a message, cut with "..." when long. */
static const char *shown(char buf[static SHOWN_MAX + 4], const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n && i < SHOWN_MAX && s[i]; i++)
        buf[i] = s[i];
    if (i < n && s[i])
        memcpy(buf + i, "...", 3), i += 3;
    buf[i] = '\0';
    return buf;
}

static void *field(vs_config_t *cfg, const struct knob *k) { return (char *)cfg + k->off; }

/* Finds the knob whose name matches s[0..len), with sep standing for the name's '-'. */
static const struct knob *find_knob(const char *s, size_t len, char sep)
{
    for (size_t i = 0; i < NKNOBS; i++) {
        const char *name = knobs[i].name;
        if (strlen(name) != len)
            continue;
        size_t j = 0;
        while (j < len && s[j] == (name[j] == '-' ? sep : name[j]))
            j++;
        if (j == len)
            return &knobs[i];
    }
    return NULL;
}

static void format_size(char *buf, size_t n, double v)
{
    unsigned long long b = (unsigned long long)v;
    if (b >= MIB && b % (unsigned long long)MIB == 0)
        snprintf(buf, n, "%lluM", b / (unsigned long long)MIB);
    else if (b >= KIB && b % (unsigned long long)KIB == 0)
        snprintf(buf, n, "%lluK", b / (unsigned long long)KIB);
    else
        snprintf(buf, n, "%llu", b);
}

static void format_bound(char *buf, size_t n, const struct knob *k, double v)
{
    if (k->type == OPT_SIZE)
        format_size(buf, n, v);
    else if (k->type == OPT_SECONDS)
        snprintf(buf, n, "%g", v);
    else
        snprintf(buf, n, "%.0f", v);
}

/* snprintf at *used, which never passes n - 1 however long the pieces get. */
static __attribute__((format(printf, 4, 5))) void append(char *buf, size_t n, size_t *used,
                                                         const char *fmt, ...)
{
    if (*used + 1 >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *used, n - *used, fmt, ap);
    va_end(ap);
    if (w > 0)
        *used = *used + (size_t)w < n ? *used + (size_t)w : n - 1;
}

static void format_choices(char *buf, size_t n, const struct knob *k)
{
    size_t used = 0;
    buf[0] = '\0';
    for (const char *const *c = k->choices; *c; c++)
        append(buf, n, &used, "%s%s", c == k->choices ? "" : ", ", *c);
}

/* v is compared as a double: exact for every bound in the table, and an overflowed input
 * saturates (strtoll, strtoull) or becomes inf (strtod), which still lands out of range. */
static int check_range(const struct knob *k, double v, const char *where, const char *text,
                       char *err, size_t errlen)
{
    if (v >= k->min && v <= k->max)
        return 0;
    char lo[32], hi[32], buf[SHOWN_MAX + 4];
    format_bound(lo, sizeof lo, k, k->min);
    format_bound(hi, sizeof hi, k, k->max);
    return usage_error(err, errlen, "%s: %s is out of range (%s..%s)", where,
                       shown(buf, text, SIZE_MAX), lo, hi);
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

/* Strict syntaxes: strto* alone would accept leading space, '+', hex, "inf" and trailing junk. */
static bool parse_int(const char *s, double *v)
{
    const char *digits = s + (*s == '-');
    if (!all_digits(digits, strlen(digits)))
        return false;
    *v = (double)strtoll(s, NULL, 10);
    return true;
}

static bool parse_size(const char *s, double *v)
{
    size_t n = strspn(s, "0123456789");
    double mult = 1;
    if (n == 0)
        return false;
    if (s[n] == 'k' || s[n] == 'K')
        mult = KIB;
    else if (s[n] == 'm' || s[n] == 'M')
        mult = MIB;
    else if (s[n] != '\0')
        return false;
    if (mult != 1 && s[n + 1] != '\0')
        return false;
    *v = (double)strtoull(s, NULL, 10) * mult;
    return true;
}

static bool parse_seconds(const char *s, double *v)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0)
        return false;
    if (s[n] == '.') {
        size_t frac = strspn(s + n + 1, "0123456789");
        if (frac == 0)
            return false;
        n += 1 + frac;
    }
    if (s[n] != '\0')
        return false;
    *v = strtod(s, NULL);
    return true;
}

static int lookup_choice(const struct knob *k, const char *s)
{
    if (k->lookup)
        return k->lookup(s);
    for (int i = 0; k->choices[i]; i++)
        if (strcmp(s, k->choices[i]) == 0)
            return i;
    return VS_ENOTFOUND;
}

/* Only called with v already checked against the knob's bounds. */
static void store_number(vs_config_t *cfg, const struct knob *k, double v)
{
    if (k->type == OPT_SIZE)
        *(size_t *)field(cfg, k) = (size_t)v;
    else if (k->type == OPT_SECONDS)
        *(double *)field(cfg, k) = v;
    else
        *(int *)field(cfg, k) = (int)v;
}

/* Parses text (a flag value, an environment variable, a default or a JSON string) for knob k
 * and stores it. where names the source at the start of any message ("--port", "VOLLI_PORT"). */
static int set_text(vs_config_t *cfg, const struct knob *k, const char *where, const char *text,
                    char *err, size_t errlen)
{
    char buf[SHOWN_MAX + 4];
    double v = 0;
    bool ok = false;
    const char *what = NULL;

    switch (k->type) {
    case OPT_STRING: {
        if (*text == '\0')
            return usage_error(err, errlen, "%s: must not be empty", where);
        const char *bad = k->check ? k->check(text) : NULL;
        if (bad && k->secret)
            return usage_error(err, errlen, "%s: %s", where, bad);
        if (bad)
            return usage_error(err, errlen, "%s: \"%s\" %s", where, shown(buf, text, SIZE_MAX),
                               bad);
        char **p = field(cfg, k);
        free(*p);
        *p = vs_strdup(text);
        return 0;
    }
    case OPT_ENUM: {
        int value = lookup_choice(k, text);
        if (value < 0) {
            char list[128];
            format_choices(list, sizeof list, k);
            return usage_error(err, errlen, "%s: \"%s\" is not one of %s", where,
                               shown(buf, text, SIZE_MAX), list);
        }
        *(int *)field(cfg, k) = value;
        return 0;
    }
    case OPT_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                   "off", "0"};
        for (size_t i = 0; i < 4; i++) {
            if (strcmp(text, yes[i]) == 0 || strcmp(text, no[i]) == 0) {
                *(int *)field(cfg, k) = strcmp(text, yes[i]) == 0;
                return 0;
            }
        }
        return usage_error(err, errlen, "%s: \"%s\" is not true or false", where,
                           shown(buf, text, SIZE_MAX));
    }
    case OPT_INT:
        ok = parse_int(text, &v);
        what = "an integer";
        break;
    case OPT_SIZE:
        ok = parse_size(text, &v);
        what = "a size (bytes, or with a k or m suffix: 65536, 64k, 16m)";
        break;
    case OPT_SECONDS:
        ok = parse_seconds(text, &v);
        what = "a number of seconds (30, 0.2)";
        break;
    }
    if (!ok)
        return usage_error(err, errlen, "%s: \"%s\" is not %s", where, shown(buf, text, SIZE_MAX),
                           what);
    int rc = check_range(k, v, where, text, err, errlen);
    if (rc == 0)
        store_number(cfg, k, v);
    return rc;
}

/* Typed JSON values: numbers must be JSON numbers, so "port": "80" is a mistake worth
 * reporting rather than guessing; only sizes also take a string, for the k/m suffixes. */
static int set_json(vs_config_t *cfg, const struct knob *k, const char *origin, const char *key,
                    json_t *value, char *err, size_t errlen)
{
    char where[512], text[64];
    snprintf(where, sizeof where, "config file %s: \"%s\"", origin, key);

    switch (k->type) {
    case OPT_STRING:
    case OPT_ENUM:
        if (!json_is_string(value))
            return usage_error(err, errlen, "%s must be a string", where);
        return set_text(cfg, k, where, json_string_value(value), err, errlen);
    case OPT_BOOL:
        if (json_is_boolean(value)) {
            *(int *)field(cfg, k) = json_is_true(value);
            return 0;
        }
        return usage_error(err, errlen, "%s must be true or false", where);
    case OPT_SIZE:
        if (json_is_string(value))
            return set_text(cfg, k, where, json_string_value(value), err, errlen);
        if (!json_is_integer(value))
            return usage_error(err, errlen, "%s must be an integer or a string like \"64k\"",
                               where);
        break;
    case OPT_INT:
        if (!json_is_integer(value))
            return usage_error(err, errlen, "%s must be an integer", where);
        break;
    case OPT_SECONDS:
        if (!json_is_number(value))
            return usage_error(err, errlen, "%s must be a number", where);
        break;
    }
    double v;
    if (json_is_integer(value)) {
        snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        v = (double)json_integer_value(value);
    } else {
        v = json_real_value(value);
        snprintf(text, sizeof text, "%g", v);
    }
    int rc = check_range(k, v, where, text, err, errlen);
    if (rc == 0)
        store_number(cfg, k, v);
    return rc;
}

int vs_config_load_json_text(vs_config_t *cfg, const char *text, size_t len, const char *origin,
                             char *err, size_t errlen)
{
    json_error_t jerr;
    /* Duplicate keys are rejected: with "last one wins" a stale line silently overrides. */
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line > 0)
            return usage_error(err, errlen, "config file %s: line %d: %s", origin, jerr.line,
                               jerr.text);
        return usage_error(err, errlen, "config file %s: %s", origin, jerr.text);
    }
    int rc = 0;
    if (!json_is_object(root)) {
        rc =
            usage_error(err, errlen, "config file %s: the top level must be a JSON object", origin);
        goto out;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        char buf[SHOWN_MAX + 4];
        const struct knob *k = find_knob(key, strlen(key), '_');
        if (!k) {
            const struct knob *dashed = find_knob(key, strlen(key), '-');
            rc = usage_error(err, errlen, "config file %s: unknown key \"%s\"%s", origin,
                             shown(buf, key, SIZE_MAX),
                             dashed ? " (keys are written with '_' instead of '-')" : "");
            goto out;
        }
        if (k->not_in_file) {
            rc = usage_error(err, errlen, "config file %s: \"%s\" cannot be set in a config file",
                             origin, key);
            goto out;
        }
        rc = set_json(cfg, k, origin, key, value, err, errlen);
        if (rc)
            goto out;
    }
out:
    json_decref(root);
    return rc;
}

static int load_file(vs_config_t *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return usage_error(err, errlen, "config file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return usage_error(err, errlen, "config file %s: is a directory", path);
    }
    size_t cap = 4096, len = 0;
    char *buf = vs_malloc(cap);
    for (;;) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap || cap > MAX_FILE_BYTES)
            break;
        cap *= 2;
        buf = vs_realloc(buf, cap);
    }
    int failed = ferror(f), saved = errno;
    fclose(f);
    int rc;
    if (failed)
        rc = usage_error(err, errlen, "config file %s: %s", path, strerror(saved));
    else if (len > MAX_FILE_BYTES)
        rc = usage_error(err, errlen, "config file %s: larger than %d bytes", path, MAX_FILE_BYTES);
    else
        rc = vs_config_load_json_text(cfg, buf, len, path, err, errlen);
    free(buf);
    return rc;
}

static int apply_env(vs_config_t *cfg, const struct knob *k, char *(*env)(const char *), char *err,
                     size_t errlen)
{
    const char *v = env && k->env ? env(k->env) : NULL;
    if (!v || *v == '\0')
        return 0;
    return set_text(cfg, k, k->env, v, err, errlen);
}

struct flag {
    const struct knob *knob;
    const char *value; /* borrowed from argv */
};

static int apply_flag(vs_config_t *cfg, const struct flag *f, char *err, size_t errlen)
{
    char where[64];
    snprintf(where, sizeof where, "--%s", f->knob->name);
    return set_text(cfg, f->knob, where, f->value, err, errlen);
}

static bool is_action(const char *name, size_t len, const char *action)
{
    return strlen(action) == len && memcmp(name, action, len) == 0;
}

/* Checks the shape of argv and pairs each flag with its value, without parsing values: a bad
 * value must be reported after the file and environment are known to be fine, in order. --help
 * and --version act as soon as they are reached, as in a getopt loop. */
static int scan_argv(int argc, char **argv, struct flag *flags, int *nflags, FILE *out, char *err,
                     size_t errlen)
{
    char buf[SHOWN_MAX + 4];
    *nflags = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-')
            return usage_error(err, errlen, "unexpected argument \"%s\"", shown(buf, a, SIZE_MAX));
        if (a[1] != '-' || a[2] == '\0')
            return usage_error(err, errlen, "unknown option %s", shown(buf, a, SIZE_MAX));
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (is_action(name, len, "help") || is_action(name, len, "version")) {
            if (eq)
                return usage_error(err, errlen, "--%.*s: takes no value", (int)len, name);
            if (name[0] == 'h')
                vs_config_usage(out);
            else
                fprintf(out, "volli-signal %s\n", VS_VERSION);
            return 1;
        }
        const struct knob *k = find_knob(name, len, '-');
        if (!k)
            return usage_error(err, errlen, "unknown option --%s", shown(buf, name, len));
        const char *value;
        if (eq)
            value = eq + 1;
        else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
            value = argv[++i];
        else if (k->type == OPT_BOOL)
            value = "true"; /* a switch: `--dev` alone */
        else
            return usage_error(err, errlen, "--%s: missing value", k->name);
        flags[(*nflags)++] = (struct flag){k, value};
    }
    return 0;
}

static void copy_config(vs_config_t *dst, const vs_config_t *src)
{
    *dst = *src;
    for (size_t i = 0; i < NKNOBS; i++) {
        char **p = field(dst, &knobs[i]);
        if (knobs[i].type == OPT_STRING && *p)
            *p = vs_strdup(*p);
    }
}

int vs_config_load(vs_config_t *cfg, int argc, char **argv, char *(*env)(const char *), FILE *out,
                   char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    struct flag *flags = vs_calloc(argc > 1 ? (size_t)argc : 1, sizeof *flags);
    int nflags;
    int rc = scan_argv(argc, argv, flags, &nflags, out ? out : stdout, err, errlen);
    if (rc) {
        free(flags);
        return rc;
    }

    /* Work on a copy so that a failure leaves the caller's settings untouched. */
    vs_config_t next;
    copy_config(&next, cfg);
    const struct knob *ck = find_knob("config", strlen("config"), '-');
    rc = apply_env(&next, ck, env, err, errlen);
    for (int i = 0; rc == 0 && i < nflags; i++)
        if (flags[i].knob == ck)
            rc = apply_flag(&next, &flags[i], err, errlen);
    /* config_file itself cannot change while the file is applied (not_in_file). */
    if (rc == 0 && next.config_file)
        rc = load_file(&next, next.config_file, err, errlen);
    for (size_t i = 0; rc == 0 && i < NKNOBS; i++)
        rc = apply_env(&next, &knobs[i], env, err, errlen);
    for (int i = 0; rc == 0 && i < nflags; i++)
        rc = apply_flag(&next, &flags[i], err, errlen);
    free(flags);

    if (rc) {
        vs_config_deinit(&next);
        return rc;
    }
    vs_config_deinit(cfg);
    *cfg = next;
    return 0;
}

void vs_config_defaults(vs_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NKNOBS; i++) {
        char err[256];
        if (knobs[i].def && set_text(cfg, &knobs[i], "default", knobs[i].def, err, sizeof err)) {
            /* A bad default is a bug in the table above, not a user error. */
            fprintf(stderr, "volli-signal: bad default for --%s: %s\n", knobs[i].name, err);
            abort();
        }
    }
}

void vs_config_deinit(vs_config_t *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < NKNOBS; i++) {
        if (knobs[i].type == OPT_STRING) {
            char **p = field(cfg, &knobs[i]);
            free(*p);
            *p = NULL;
        }
    }
}

static const char *metavar(const struct knob *k)
{
    static const char *const by_type[] = {
        [OPT_STRING] = "TEXT",     [OPT_INT] = "N",     [OPT_SIZE] = "BYTES",
        [OPT_SECONDS] = "SECONDS", [OPT_ENUM] = "NAME",    [OPT_BOOL] = "BOOL",
    };
    return k->arg ? k->arg : by_type[k->type];
}

#define HELP_COLUMN 30

void vs_config_usage(FILE *out)
{
    fputs("Usage: volli-signal [OPTION]...\n"
          "Volli Signal: WebSocket signaling and presence server.\n"
          "\n"
          "Each option can also be set by its environment variable, or in the JSON config file\n"
          "(an object whose keys are the option names with '-' written as '_'). Flags override\n"
          "the environment, which overrides the config file. Sizes are bytes, or KiB and MiB\n"
          "with a k or m suffix (64k, 16m); seconds may have decimals (0.2).\n"
          "\n"
          "Options:\n",
          out);
    for (size_t i = 0; i < NKNOBS; i++) {
        const struct knob *k = &knobs[i];
        char flag[64], detail[256], lo[32], hi[32];
        if (k->hidden)
            continue;
        snprintf(flag, sizeof flag, "--%s %s", k->name, metavar(k));
        fprintf(out, "  %-*s %s\n", HELP_COLUMN - 3, flag, k->help);

        size_t n = 0;
        append(detail, sizeof detail, &n, "env %s; ", k->env ? k->env : "none");
        if (k->def)
            append(detail, sizeof detail, &n, "default %s", k->def);
        else
            append(detail, sizeof detail, &n, "no default");
        if (k->type == OPT_INT || k->type == OPT_SIZE || k->type == OPT_SECONDS) {
            format_bound(lo, sizeof lo, k, k->min);
            format_bound(hi, sizeof hi, k, k->max);
            append(detail, sizeof detail, &n, "; range %s..%s", lo, hi);
        } else if (k->type == OPT_ENUM) {
            char list[128];
            format_choices(list, sizeof list, k);
            append(detail, sizeof detail, &n, "; one of %s", list);
        } else if (k->type == OPT_BOOL) {
            append(detail, sizeof detail, &n, "; true or false");
        }
        if (k->not_in_file)
            append(detail, sizeof detail, &n, "; not read from the config file");
        fprintf(out, "  %-*s %s\n", HELP_COLUMN - 3, "", detail);
    }
    fprintf(out, "  %-*s %s\n", HELP_COLUMN - 3, "--help", "print this help and exit");
    fprintf(out, "  %-*s %s\n", HELP_COLUMN - 3, "--version", "print the version and exit");
    fputs("\nExample config file:\n  {\"port\": 7880, \"data_dir\": \"/var/lib/volli\", "
          "\"max_frame\": \"64k\", \"ping_interval\": 30}\n",
          out);
}
