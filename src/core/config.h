/* config.h: the server's settings and the one typed table (in config.c) that the command line,
 * the environment, the JSON config file and --help are all generated from. Precedence: flags >
 * environment > config file > defaults. This module only parses and validates; it must never
 * act on a setting (open sockets, create directories, change the log threshold) nor log. */
#ifndef VS_CORE_CONFIG_H
#define VS_CORE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

/* Adding a knob is one field here plus one line in the table in config.c. String fields are
 * heap-allocated and owned by the struct (freed by vs_config_deinit). */
typedef struct vs_config {
    char *host;              /* "host", VOLLI_HOST, default "0.0.0.0" */
    int port;                /* "port", VOLLI_PORT, default 7880, 0..65535 (0 = kernel picks) */
    char *data_dir;          /* "data-dir", VOLLI_DATA_DIR, default "./data" */
    char *config_file;       /* "config", VOLLI_CONFIG, default NULL; not settable from the file */
    int log_level;           /* "log-level", LOG_LEVEL, VS_LOG_ERROR..VS_LOG_DEBUG, default info */
    int log_format;          /* "log-format", VOLLI_LOG_FORMAT, VS_LOG_TEXT/JSON, default text */
    double ping_interval;    /* "ping-interval", VOLLI_PING_INTERVAL, seconds, 30, 0.05..3600 */
    size_t max_frame;        /* "max-frame", VOLLI_MAX_FRAME, bytes, 64 KiB, 256..16 MiB: largest
                                WebSocket message accepted */
    size_t max_queue;        /* "max-queue", VOLLI_MAX_QUEUE, bytes, 1 MiB, 4 KiB..1 GiB: outbound
                                bytes queued per connection before it is dropped as too slow */
    int max_connections;     /* "max-connections", VOLLI_MAX_CONNECTIONS, 20000, 1..10000000 */
    int max_batch;           /* "max-batch", VOLLI_MAX_BATCH, 100, 1..100: ids per discover or
                                subscribe request */
    double shutdown_timeout; /* "shutdown-timeout", VOLLI_SHUTDOWN_TIMEOUT, seconds, 5, 0..600:
                                how long SIGTERM waits for close handshakes */
    int max_conns_per_ip;    /* "max-connections-per-ip", VOLLI_MAX_CONNECTIONS_PER_IP, 1000 */
    char *trusted_proxies;   /* "trusted-proxies", "127.0.0.1,::1": X-Forwarded-For believed */
    double handshake_timeout; /* "handshake-timeout", seconds, 10: an unfinished upgrade is dropped */
    double register_timeout; /* "register-timeout", seconds, 30: an unregistered socket is dropped */
    int rate_messages;       /* "rate-messages", per second per connection (burst 10 s), 1000 */
    size_t rate_bytes;       /* "rate-bytes", bytes per second per connection (burst 10 s), 1 MiB */
    int rate_strikes;        /* "rate-strikes", limited messages in a row before disconnect, 100 */
    int register_rate;       /* "register-rate", failed or new-binding registers per minute per
                                address, 60 */
    int lookup_rate;         /* "lookup-rate", ids per minute per connection in discover and
                                subscribe (burst the same), 3000 */
    int max_subscriptions;   /* "max-subscriptions", per connection, 1000 */
    int max_json_depth;      /* "max-json-depth", nesting levels in a message, 32 */
    int max_json_members;    /* "max-json-members", top-level members in a message, 256 */
    int demo;                /* "demo", VOLLI_DEMO, bool, default true: the demo app at / */
    char *web_dir;           /* "web-dir", VOLLI_WEB_DIR, default NULL: serve web files from disk */
    int dev;                 /* "dev", VOLLI_DEV, bool, default false: accept tokens signed with
                                the development key pair (never in production) */
    int max_room_participants; /* "max-room-participants", members per room, 50 */
    int max_rooms_per_conn;  /* "max-rooms-per-connection", rooms one connection may be in, 16 */
    int pq_enabled;          /* "pq-enabled", VOLLY_PQ_ENABLED, bool, true: offer pq_handshake */
    int pq_required;         /* "pq-required", VOLLY_PQ_REQUIRED, bool, false: only ping and
                                pq_handshake before the post-quantum handshake */
    int pq_algorithm;        /* "pq-algorithm", VOLLY_PQ_ALGORITHM, vs_pq_alg, ML-KEM-768: the
                                algorithm advertised first */
    double pq_session_timeout; /* "pq-session-timeout", VOLLY_PQ_SESSION_TIMEOUT, seconds, 86400 */
    double pq_rekey_grace;   /* "pq-rekey-grace" (hidden, for tests), seconds, 30: time from
                                rekey_required to the 4401 close */
    char *api_host;          /* "api-host", VOLLI_API_HOST, default "127.0.0.1" */
    int api_port;            /* "api-port", VOLLI_API_PORT, 7881, -1..65535 (-1: no listener) */
    char *redis;             /* "redis", VOLLI_REDIS, default NULL: redis://[:pw@]host:port[/db]
                                turns on cluster mode */
    char *redis_password;    /* "redis-password", REDIS_PASSWORD, default NULL (overrides the
                                URL's) */
    char *database;          /* "database", VOLLI_DATABASE, default NULL (SQLite in data-dir):
                                postgres://... or postgresql://... */
    char *node_id;           /* "node-id", VOLLI_NODE_ID, default NULL (random at start):
                                1..64 of [A-Za-z0-9_.-] */
    double cluster_heartbeat; /* "cluster-heartbeat", seconds, 1, 0.05..60 */
    double cluster_node_timeout; /* "cluster-node-timeout", seconds, 3, 0.2..600: a node silent
                                this long is dead and its users offline */
    double redis_timeout;    /* "redis-timeout", seconds, 2, 0.05..60: a Redis reply later than
                                this marks Redis unreachable */
    double drain_timeout;    /* "drain-timeout", seconds, 2, 0..600: after SIGTERM's reconnect
                                notice, how long clients get to move before the 1001 close */
} vs_config_t;

/* The post-quantum key exchanges, in the order of the pq-algorithm choices. */
enum vs_pq_alg { VS_PQ_ALG_MLKEM768 = 0, VS_PQ_ALG_X25519MLKEM768 = 1, VS_PQ_ALG_COUNT };

/* Fills cfg (borrowed, caller-allocated; its previous contents are ignored, not freed) with the
 * defaults. Every string field it sets is heap-allocated; release them with vs_config_deinit. */
void vs_config_defaults(vs_config_t *cfg);

/* Applies the config file, then the environment, then argv on top of cfg (borrowed; it must
 * hold valid settings, e.g. from vs_config_defaults). The file is named by --config, else
 * VOLLI_CONFIG, else cfg->config_file. argv (borrowed) has argc entries and argv[0] is the
 * program name; flags are `--name value` or `--name=value`, the last one of a name wins; a
 * boolean flag alone (`--dev`, not followed by a value) means true.
 * env (may be NULL: no environment) looks up a variable the way getenv does; tests pass a fake.
 * Empty environment variables count as unset.
 * Returns 0 to run; 1 when --help or --version was printed to out (borrowed; NULL means stdout)
 * and the program should exit 0; VS_EUSAGE with a one-line message in err (borrowed, errlen
 * bytes, always NUL-terminated when errlen > 0) naming the source and what is wrong. On any
 * non-zero return cfg is left exactly as it was. */
int vs_config_load(vs_config_t *cfg, int argc, char **argv, char *(*env)(const char *), FILE *out,
                   char *err, size_t errlen);

/* Applies the text of a JSON config file (text borrowed, len bytes, need not be NUL-terminated)
 * to cfg (borrowed, valid settings). Keys are the long option names with '-' written as '_'.
 * origin (borrowed) names the file in messages. Used by vs_config_load and the fuzz target.
 * Returns 0 or VS_EUSAGE with a message in err; on error cfg may be partly updated, but every
 * field still holds a valid, in-bounds value and it must still be deinitialised. */
int vs_config_load_json_text(vs_config_t *cfg, const char *text, size_t len, const char *origin,
                             char *err, size_t errlen);

/* Frees the string fields and sets them to NULL; safe to call twice. */
void vs_config_deinit(vs_config_t *cfg);

/* Writes the --help text to out (borrowed): every flag with its environment variable, default,
 * bounds or choices, and help. */
void vs_config_usage(FILE *out);

#endif
