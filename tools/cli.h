/* tools/cli.h: the `volli` command-line client, shared between its files.
 *
 * Owns the parsed command line (cli_args.c), the output channel (cli_out.c: human lines, JSON
 * lines, error reporting) and the session that runs one command against the servers (volli.c).
 * It talks to servers only through the public client library (include/volli); it must never
 * include src/ internals, and it never prints payloads on stderr, nor keys or signatures
 * anywhere (the public key is printed by keygen on purpose: it is public). */
#ifndef VOLLI_TOOLS_CLI_H
#define VOLLI_TOOLS_CLI_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Exit codes: the contract of the CLI, documented in docs/cli.md. */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,        /* a wire error, or a local one (key file, I/O, timeout) */
    CLI_EXIT_USAGE = 2,       /* unknown command or option, missing or bad argument */
    CLI_EXIT_UNREACHABLE = 3, /* no server answered (and registered us) within --timeout */
};

enum cli_cmd {
    CLI_CMD_NONE,
    CLI_CMD_HELP,
    CLI_CMD_KEYGEN,
    CLI_CMD_REGISTER,
    CLI_CMD_DISCOVER,
    CLI_CMD_WATCH,
    CLI_CMD_SEND,
    CLI_CMD_LISTEN,
    CLI_CMD_PING,
};

#define CLI_DEFAULT_SERVER "ws://127.0.0.1:7880/"
#define CLI_DEFAULT_KEY "./volli.key"
#define CLI_DEFAULT_TIMEOUT_MS 10000u
#define CLI_MAX_TIMEOUT_MS 86400000u
/* The server's default per-request id limit; larger lists are sent in several requests. */
#define CLI_BATCH 100

/* The parsed command line. Every string points into argv or into env_copy (borrowed from the
 * process for its lifetime); the arrays are owned and released by cli_args_free. */
struct cli_args {
    enum cli_cmd cmd;
    enum cli_cmd help_for; /* CLI_CMD_HELP: the command to describe, CLI_CMD_NONE for all */
    int version;
    int json;
    int verbose;
    const char **servers; /* owned array of borrowed strings */
    size_t nservers;
    const char *user;     /* NULL when neither --user nor VOLLI_USER is set */
    const char *key_path; /* --out (keygen), --key, VOLLI_KEY, or CLI_DEFAULT_KEY */
    unsigned timeout_ms;
    const char **ids; /* owned array of borrowed strings: the positional user ids */
    size_t nids;
    const char *send_type;    /* send: offer, answer, ice-candidate or bye */
    const char *send_payload; /* send: the payload JSON text, validated; NULL for a bare bye */
    char *env_copy;           /* owned: VOLLI_SERVER split in place */
    int pq;                   /* --pq [ALG]: a VOLLI_PQ_*; VOLLI_PQ_OFF without --pq */
    int has_server_key;       /* --server-key given */
    uint8_t server_key[32];   /* --server-key, decoded */
};

/* Parses argv (borrowed; must outlive *a) and the VOLLI_* environment into *a. Returns
 * CLI_EXIT_OK, or CLI_EXIT_USAGE after printing the reason to stderr. *a must be released with
 * cli_args_free in both cases. */
int cli_args_parse(int argc, char **argv, struct cli_args *a);
void cli_args_free(struct cli_args *a);
/* Prints the help text of one command (CLI_CMD_NONE: the overview) on stdout. */
void cli_help(enum cli_cmd cmd);
/* The command's name as typed ("watch"), for messages. Returns a static string. */
const char *cli_cmd_name(enum cli_cmd cmd);
/* Whether text (len bytes, borrowed) is one JSON value the server would accept in a relay. */
int cli_json_valid(const char *text, size_t len);

/* Output. In human mode results go to stdout as short stable lines and errors to stderr; in
 * JSON mode every result, status and error is one JSON object per line on stdout. Every line is
 * flushed at once (consumers read it live). The functions return 0, or -1 once stdout cannot be
 * written (a closed pipe), after which the caller should stop. */
void cli_out_init(int json);
int cli_out_json_mode(void);
/* A human line (printf format, a newline is appended); control characters become '?'. */
int cli_out_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A JSON line from obj (taken: the reference is released). */
int cli_out_json(json_t *obj);
/* A JSON line from JSON text received from the wire (borrowed), with the insignificant
 * whitespace removed so that it fits one line; the tokens themselves are kept byte for byte. */
int cli_out_raw_json(const char *text, size_t len);
/* Reports a failure: `error: CODE: MESSAGE` on stderr, or {"error":CODE,"message":MESSAGE} on
 * stdout in JSON mode. code is a wire code ("peer_offline") or a local one ("perm"). */
void cli_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A diagnostic for people (`volli: ...` on stderr), in both modes. */
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A copy of text (len bytes, borrowed) without JSON whitespace outside strings, NUL-terminated;
 * caller-frees. NULL on out of memory. */
char *cli_json_compact(const char *text, size_t len);
/* The local error code for a VOLLI_E* value ("timedout" for VOLLI_ETIMEDOUT). Static string. */
const char *cli_errno_code(int err);

#endif
