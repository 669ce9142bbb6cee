/* token_cli.h: the `volli-signal token create` subcommand: signs an access token with the same
 * keys the server accepts (LIVEKIT_KEYS, LIVEKIT_API_KEY + LIVEKIT_API_SECRET, or --dev) and
 * prints it. It owns nothing past the call and never prints a secret. */
#ifndef VS_CORE_TOKEN_CLI_H
#define VS_CORE_TOKEN_CLI_H

#include <stdio.h>

/* argv[0] is "token" (borrowed, argc entries). env (borrowed) looks variables up as getenv does.
 * The token goes to out, messages to err (both borrowed). Returns the exit code: 0, or 2 for a
 * usage error, an unreadable key file or no keys configured. */
int vs_token_cli(int argc, char **argv, char *(*env)(const char *), FILE *out, FILE *err);

/* Parses a duration such as "90", "30s", "15m", "24h", "7d" into seconds (> 0); 0 or VS_EINVAL. */
int vs_token_parse_duration(const char *text, long long *seconds);

#endif
