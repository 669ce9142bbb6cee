/* fuzz_config.c: the input is the text of a JSON config file. If it holds a NUL byte, the bytes
 * after it are NUL-separated command-line tokens ("--port=1") and environment entries
 * ("VOLLI_PORT=1"), applied by vs_config_load on top of the file.
 * Invariants: only 0, 1 (help/version) or VS_EUSAGE come back, an error always has a message,
 * and every field stays within the bounds the spec gives (checked here independently of the
 * table in config.c), whatever was accepted or rejected. Leaks are caught by the sanitizers. */
#include "fuzz.h"

#include "common/error.h"
#include "common/log.h"
#include "core/config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS 16
#define MAX_VARS 16

static const char *var_names[MAX_VARS];
static const char *var_values[MAX_VARS];
static int nvars;

static char *fuzz_env(const char *name)
{
    /* Never let the input name a file to read: /dev/stdin would block the run. */
    if (strcmp(name, "VOLLI_CONFIG") == 0)
        return NULL;
    for (int i = nvars - 1; i >= 0; i--)
        if (strcmp(var_names[i], name) == 0)
            return (char *)var_values[i];
    return NULL;
}

static void check_string(const char *s, bool may_be_null)
{
    if (!s ? !may_be_null : s[0] == '\0')
        abort();
}

static void check_bounds(const vs_config_t *c)
{
    check_string(c->host, false);
    check_string(c->data_dir, false);
    check_string(c->config_file, true);
    if (c->port < 0 || c->port > 65535)
        abort();
    if (c->log_level < VS_LOG_ERROR || c->log_level > VS_LOG_DEBUG)
        abort();
    if (c->log_format != VS_LOG_TEXT && c->log_format != VS_LOG_JSON)
        abort();
    if (!(c->ping_interval >= 0.05 && c->ping_interval <= 3600))
        abort();
    if (c->max_frame < 256 || c->max_frame > 16 * 1024 * 1024)
        abort();
    if (c->max_queue < 4096 || c->max_queue > (size_t)1024 * 1024 * 1024)
        abort();
    if (c->max_connections < 1 || c->max_connections > 10000000)
        abort();
    if (c->max_batch < 1 || c->max_batch > 100)
        abort();
    if (!(c->shutdown_timeout >= 0 && c->shutdown_timeout <= 600))
        abort();
}

static void check_result(int rc, const char *err)
{
    if (rc != 0 && rc != 1 && rc != VS_EUSAGE)
        abort();
    if (rc == VS_EUSAGE && (err[0] == '\0' || strchr(err, '\n')))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink && !(sink = fopen("/dev/null", "w")))
        abort();

    const uint8_t *nul = memchr(data, 0, size);
    size_t json_len = nul ? (size_t)(nul - data) : size;
    vs_config_t cfg;
    char err[256];
    vs_config_defaults(&cfg);
    err[0] = '\0';
    int rc =
        vs_config_load_json_text(&cfg, (const char *)data, json_len, "fuzz.json", err, sizeof err);
    if (rc == 1)
        abort();
    check_result(rc, err);
    check_bounds(&cfg);

    if (nul) {
        /* Copy so every token is NUL-terminated even at the end of the input. */
        size_t rest = size - json_len - 1;
        char *copy = malloc(rest + 1);
        if (!copy)
            abort();
        memcpy(copy, nul + 1, rest);
        copy[rest] = '\0';
        char *argv[MAX_TOKENS + 1] = {"volli-signal"};
        int argc = 1;
        nvars = 0;
        for (char *tok = copy; tok < copy + rest + 1; tok += strlen(tok) + 1) {
            char *eq = strchr(tok, '=');
            if (tok[0] >= 'A' && tok[0] <= 'Z' && eq && nvars < MAX_VARS) {
                *eq = '\0';
                var_names[nvars] = tok;
                var_values[nvars++] = eq + 1;
                tok = eq + 1; /* the loop then steps over the value */
            } else if (strncmp(tok, "--config", 8) != 0 && argc < MAX_TOKENS) {
                argv[argc++] = tok;
            }
        }
        /* On failure vs_config_load must leave cfg as it was, so compare a snapshot. */
        vs_config_t before;
        memcpy(&before, &cfg, sizeof cfg);
        err[0] = '\0';
        rc = vs_config_load(&cfg, argc, argv, fuzz_env, sink, err, sizeof err);
        check_result(rc, err);
        check_bounds(&cfg);
        if (rc != 0 && memcmp(&before, &cfg, sizeof cfg) != 0)
            abort();
        nvars = 0;
        free(copy);
    }
    vs_config_deinit(&cfg);
    return 0;
}
