/* tools/cli_args.c: the `volli` command line. Owns the option tables, the help texts and every
 * usage check, so that a usage error (exit 2) is always found before anything touches the
 * network or a key file. Global options may come before or after the command; after `send`,
 * `--json` is the payload, so machine output for send is asked for before the command. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volli/volli.h"

#include "cli.h"

enum opt_id {
    OPT_SERVER,
    OPT_USER,
    OPT_KEY,
    OPT_JSON,
    OPT_TIMEOUT,
    OPT_PQ,
    OPT_SERVER_KEY,
    OPT_VERBOSE,
    OPT_HELP,
    OPT_VERSION,
    OPT_OUT,
    OPT_TYPE,
    OPT_PAYLOAD,
};

struct opt {
    const char *name; /* without the leading "--" */
    char short_name;
    int has_arg; /* 1: a value; 2: an optional one (--opt=VALUE, or a next argument it accepts) */
    enum opt_id id;
};

static const struct opt global_opts[] = {
    {"server", 0, 1, OPT_SERVER},
    {"user", 0, 1, OPT_USER},
    {"key", 0, 1, OPT_KEY},
    {"json", 0, 0, OPT_JSON},
    {"timeout", 0, 1, OPT_TIMEOUT},
    {"verbose", 'v', 0, OPT_VERBOSE},
    {"help", 'h', 0, OPT_HELP},
    {"version", 0, 0, OPT_VERSION},
    {"pq", 0, 2, OPT_PQ},
    {"server-key", 0, 1, OPT_SERVER_KEY},
    {NULL, 0, 0, 0},
};
static const struct opt keygen_opts[] = {{"out", 0, 1, OPT_OUT}, {NULL, 0, 0, 0}};
static const struct opt send_opts[] = {
    {"type", 0, 1, OPT_TYPE}, {"json", 0, 1, OPT_PAYLOAD}, {NULL, 0, 0, 0}};

struct command {
    const char *name;
    enum cli_cmd cmd;
    const struct opt *opts; /* command options, looked up before the global ones */
    size_t min_ids, max_ids;
    int needs_user;
    const char *synopsis;
    const char *help;
};

static const struct command commands[] = {
    {"keygen", CLI_CMD_KEYGEN, keygen_opts, 0, 0, 0, "keygen [--out FILE]",
     "Creates an Ed25519 key pair and writes the private key to FILE (default: --key,\n"
     "$VOLLI_KEY, else ./volli.key) with mode 0600. Never overwrites an existing file.\n"
     "Prints the public key in base64.\n"
     "\n"
     "  --out FILE     where to write the key\n"},
    {"register", CLI_CMD_REGISTER, NULL, 0, 0, 1, "register",
     "Registers --user with the key (binding the key to the id on first use), prints\n"
     "`registered ID on URL` and exits.\n"},
    {"discover", CLI_CMD_DISCOVER, NULL, 1, SIZE_MAX, 1, "discover ID...",
     "Prints one line per id, in order: `ID online|offline KEY`, where KEY is the public\n"
     "key bound to the id, or `-` for an id never registered.\n"},
    {"watch", CLI_CMD_WATCH, NULL, 1, SIZE_MAX, 1, "watch ID...",
     "Prints `ID online` or `ID offline` for each id, then one such line whenever one\n"
     "changes, across reconnects, until SIGINT or SIGTERM (then exits 0).\n"},
    {"send", CLI_CMD_SEND, send_opts, 1, 1, 1, "send ID --type TYPE [--json PAYLOAD]",
     "Relays a signaling message to ID, who must be online (else error peer_offline).\n"
     "\n"
     "  --type TYPE    offer, answer, ice-candidate or bye\n"
     "  --json PAYLOAD the payload as JSON text: the offer, answer or candidate; for bye\n"
     "                 the optional reason. (For JSON output: volli --json send ...)\n"},
    {"listen", CLI_CMD_LISTEN, NULL, 0, 0, 1, "listen",
     "Prints every relayed message as it arrives, `TYPE from ID: PAYLOAD`, until SIGINT\n"
     "or SIGTERM (then exits 0).\n"},
    {"ping", CLI_CMD_PING, NULL, 0, 0, 0, "ping",
     "Connects (and registers, when --user is given), sends a ping and prints\n"
     "`pong from URL in MS ms`.\n"},
    {"help", CLI_CMD_HELP, NULL, 0, 1, 0, "help [COMMAND]", "Prints help on a command.\n"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char global_help[] =
    "Options (before or after the command):\n"
    "  --server URL   a server, ws://HOST:PORT/; repeat it for failover, tried in order\n"
    "                 (default: $VOLLI_SERVER, a comma-separated list, else " CLI_DEFAULT_SERVER
    ")\n"
    "  --user ID      the user id to register as (default: $VOLLI_USER)\n"
    "  --key FILE     the private key file (default: $VOLLI_KEY, else ./volli.key)\n"
    "  --json         one JSON object per line on stdout\n"
    "  --timeout MS   give up connecting, and waiting for an answer, after MS\n"
    "                 milliseconds (default 10000)\n"
    "  --pq [ALG]     protect the session with a post-quantum key exchange, ALG\n"
    "                 ML-KEM-768 (the default) or X25519MLKEM768; everything after\n"
    "                 the server's hello is then encrypted (docs/cli.md)\n"
    "  --server-key BASE64\n"
    "                 with --pq: the server's Ed25519 key (from\n"
    "                 /.well-known/volli/server.json) the handshake must be signed\n"
    "                 with; without it the key of the first hello is trusted\n"
    "  -v, --verbose  log the client library's connection events on stderr\n"
    "  -h, --help     this help\n"
    "  --version      print the version\n"
    "\n"
    "Exit status: 0 success, 1 an error from the server or a local one (key file,\n"
    "timeout), 2 a usage error, 3 no server could be reached.\n";

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

static const struct command *command_of(enum cli_cmd cmd)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (commands[i].cmd == cmd)
            return &commands[i];
    }
    return NULL;
}

const char *cli_cmd_name(enum cli_cmd cmd)
{
    const struct command *c = command_of(cmd);
    return c ? c->name : "volli";
}

void cli_help(enum cli_cmd cmd)
{
    const struct command *c = command_of(cmd);
    if (c && cmd != CLI_CMD_HELP) {
        printf("usage: volli [OPTIONS] %s\n\n%s\n%s", c->synopsis, c->help, global_help);
        fflush(stdout);
        return;
    }
    printf("usage: volli [OPTIONS] COMMAND [ARGS]\n\n"
           "A command-line client for Volli Signal servers.\n\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        printf("  %s\n", commands[i].synopsis);
    printf("\n%s\n`volli help COMMAND` or `volli COMMAND --help` describes a command.\n",
           global_help);
    fflush(stdout);
}

static int usage_error(const struct cli_args *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const struct cli_args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("volli: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (a->cmd != CLI_CMD_NONE && a->cmd != CLI_CMD_HELP)
        fprintf(stderr, "\nTry `volli help %s`.\n", cli_cmd_name(a->cmd));
    else
        fputs("\nTry `volli help`.\n", stderr);
    return CLI_EXIT_USAGE;
}

static const struct opt *lookup(const struct opt *table, const char *name, size_t len, char sh)
{
    for (; table && table->name; table++) {
        if (sh ? table->short_name == sh
               : strlen(table->name) == len && strncmp(table->name, name, len) == 0)
            return table;
    }
    return NULL;
}

static int parse_timeout(const char *s, unsigned *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v == 0 || v > CLI_MAX_TIMEOUT_MS)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* VOLLI_SERVER holds one or more URLs separated by commas or blanks. */
static int servers_from_env(struct cli_args *a)
{
    const char *v = env_value("VOLLI_SERVER");
    if (!v)
        return 0;
    a->env_copy = strdup(v);
    if (!a->env_copy)
        return -1;
    char *save = NULL;
    for (char *t = strtok_r(a->env_copy, ", \t\n", &save); t; t = strtok_r(NULL, ", \t\n", &save))
        a->servers[a->nservers++] = t;
    return 0;
}

/* The algorithm names of --pq, in VOLLI_PQ_* order from 1. */
static int pq_alg(const char *s)
{
    if (strcmp(s, "ML-KEM-768") == 0)
        return VOLLI_PQ_MLKEM768;
    if (strcmp(s, "X25519MLKEM768") == 0)
        return VOLLI_PQ_X25519MLKEM768;
    return -1;
}

/* Standard padded base64 of exactly 32 bytes (44 characters). */
static int decode_key(const char *s, uint8_t out[32])
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (strlen(s) != 44 || s[43] != '=')
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < 43; i++) {
        const char *p = strchr(abc, s[i]);
        if (!p || !s[i])
            return -1;
        acc = (acc << 6) | (uint32_t)(p - abc);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    /* 43 characters carry 258 bits: the last 2 must be zero (canonical encoding). */
    return n == 32 && (acc & 3u) == 0 ? 0 : -1;
}

static int apply_opt(struct cli_args *a, const struct opt *o, const char *value,
                     const char **out_path)
{
    switch (o->id) {
    case OPT_SERVER:
        a->servers[a->nservers++] = value;
        break;
    case OPT_USER:
        a->user = value;
        break;
    case OPT_KEY:
        a->key_path = value;
        break;
    case OPT_OUT:
        *out_path = value; /* wins over --key wherever it stands: applied after the loop */
        break;
    case OPT_JSON:
        a->json = 1;
        break;
    case OPT_TIMEOUT:
        if (parse_timeout(value, &a->timeout_ms) < 0)
            return usage_error(a,
                               "--timeout needs a number of milliseconds from 1 to %u, "
                               "not '%s'",
                               CLI_MAX_TIMEOUT_MS, value);
        break;
    case OPT_VERBOSE:
        a->verbose = 1;
        break;
    case OPT_PQ:
        a->pq = value ? pq_alg(value) : VOLLI_PQ_MLKEM768;
        if (a->pq < 0)
            return usage_error(a, "--pq takes ML-KEM-768 or X25519MLKEM768, not '%s'", value);
        break;
    case OPT_SERVER_KEY:
        if (decode_key(value, a->server_key) < 0)
            return usage_error(a,
                               "--server-key needs the base64 of a 32-byte Ed25519 key (44 "
                               "characters), not '%s'",
                               value);
        a->has_server_key = 1;
        break;
    case OPT_HELP:
        a->help_for = a->cmd == CLI_CMD_NONE ? CLI_CMD_HELP : a->cmd;
        break;
    case OPT_VERSION:
        a->version = 1;
        break;
    case OPT_TYPE:
        a->send_type = value;
        break;
    case OPT_PAYLOAD:
        a->send_payload = value;
        break;
    }
    return CLI_EXIT_OK;
}

int cli_json_valid(const char *text, size_t len)
{
    /* The server's rules: any value, no duplicate names, integers of any size (as doubles),
     * \u0000 allowed in strings, at most 2048 levels (jansson's own limit). */
    json_error_t err;
    json_t *v = json_loadb(
        text, len,
        JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &err);
    if (!v)
        return 0;
    json_decref(v);
    return 1;
}

static int check_send(struct cli_args *a)
{
    static const char *const types[] = {"offer", "answer", "ice-candidate", "bye"};
    if (!a->send_type)
        return usage_error(a, "send needs --type (offer, answer, ice-candidate or bye)");
    int known = 0;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        known |= strcmp(a->send_type, types[i]) == 0;
    if (!known)
        return usage_error(a, "bad --type '%s': use offer, answer, ice-candidate or bye",
                           a->send_type);
    if (!a->send_payload && strcmp(a->send_type, "bye") != 0)
        return usage_error(a, "send --type %s needs --json PAYLOAD", a->send_type);
    if (a->send_payload && !cli_json_valid(a->send_payload, strlen(a->send_payload)))
        return usage_error(a, "--json is not valid JSON: %s", a->send_payload);
    return CLI_EXIT_OK;
}

/* Checks once the whole line is read: counts, required options, values. */
static int check(struct cli_args *a, const struct command *c, const char *out_path)
{
    if (out_path)
        a->key_path = out_path;
    if (c && c->cmd == CLI_CMD_HELP) {
        a->help_for = CLI_CMD_HELP;
        if (a->nids == 1) {
            const struct command *h = find_command(a->ids[0]);
            if (!h)
                return usage_error(a, "no such command: '%s'", a->ids[0]);
            a->help_for = h->cmd;
        } else if (a->nids > 1) {
            return usage_error(a, "help takes one command name");
        }
        return CLI_EXIT_OK;
    }
    if (a->help_for == CLI_CMD_HELP && c)
        a->help_for = c->cmd; /* `volli --help send` */
    if (a->version || a->help_for != CLI_CMD_NONE)
        return CLI_EXIT_OK;
    if (!c)
        return usage_error(a, "missing command");
    if (a->nids < c->min_ids)
        return usage_error(a, "%s needs %s", c->name,
                           c->max_ids == 1 ? "a user id" : "at least one user id");
    if (a->nids > c->max_ids)
        return usage_error(a, "unexpected argument '%s'", a->ids[c->max_ids]);
    for (size_t i = 0; i < a->nids; i++) {
        if (!*a->ids[i])
            return usage_error(a, "empty user id");
    }
    if (c->needs_user && !a->user)
        return usage_error(a, "%s needs --user ID (or VOLLI_USER)", c->name);
    if (a->nservers == 0 && servers_from_env(a) < 0)
        return usage_error(a, "out of memory");
    if (a->nservers == 0)
        a->servers[a->nservers++] = CLI_DEFAULT_SERVER;
    for (size_t i = 0; i < a->nservers; i++) {
        if (!*a->servers[i])
            return usage_error(a, "empty --server URL");
    }
    if (a->has_server_key && !a->pq)
        return usage_error(a, "--server-key needs --pq");
    if (c->cmd == CLI_CMD_SEND)
        return check_send(a);
    return CLI_EXIT_OK;
}

int cli_args_parse(int argc, char **argv, struct cli_args *a)
{
    memset(a, 0, sizeof(*a));
    a->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
    a->user = env_value("VOLLI_USER");
    a->key_path = env_value("VOLLI_KEY");
    if (!a->key_path)
        a->key_path = CLI_DEFAULT_KEY;
    /* Every argument is at most one server or one id; VOLLI_SERVER adds at most as many
     * entries as it has characters. */
    const char *env_servers = env_value("VOLLI_SERVER");
    size_t cap = (size_t)argc + (env_servers ? strlen(env_servers) : 0) + 2;
    a->servers = calloc(cap, sizeof(*a->servers));
    a->ids = calloc((size_t)argc + 1, sizeof(*a->ids));
    if (!a->servers || !a->ids) {
        fputs("volli: out of memory\n", stderr);
        return CLI_EXIT_FAIL;
    }

    const struct command *cmd = NULL;
    const char *out_path = NULL;
    int only_args = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (only_args || arg[0] != '-' || arg[1] == '\0') {
            if (cmd) {
                a->ids[a->nids++] = arg;
                continue;
            }
            cmd = find_command(arg);
            if (!cmd)
                return usage_error(a, "unknown command '%s'", arg);
            a->cmd = cmd->cmd;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_args = 1;
            continue;
        }
        const struct opt *o;
        const char *value = NULL;
        if (arg[1] == '-') {
            const char *name = arg + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            o = lookup(cmd ? cmd->opts : NULL, name, len, 0);
            if (!o)
                o = lookup(global_opts, name, len, 0);
            if (!o)
                return usage_error(a, "unknown option '%.*s'", (int)(len + 2), arg);
            if (eq && !o->has_arg)
                return usage_error(a, "option --%s takes no value", o->name);
            value = eq ? eq + 1 : NULL;
        } else {
            o = arg[2] == '\0' ? lookup(global_opts, NULL, 0, arg[1]) : NULL;
            if (!o)
                return usage_error(a, "unknown option '%s'", arg);
        }
        if (o->has_arg == 2 && !value && i + 1 < argc && pq_alg(argv[i + 1]) > 0)
            value = argv[++i]; /* `--pq X25519MLKEM768`: only an algorithm name is taken */
        if (o->has_arg == 1 && !value) {
            if (i + 1 >= argc)
                return usage_error(a, "option --%s needs a value", o->name);
            value = argv[++i];
        }
        int rc = apply_opt(a, o, value, &out_path);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    return check(a, cmd, out_path);
}

void cli_args_free(struct cli_args *a)
{
    free(a->servers);
    free(a->ids);
    free(a->env_copy);
    memset(a, 0, sizeof(*a));
}
