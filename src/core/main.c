/* main.c: reads the configuration, runs the server, maps failures to exit codes
 * (2: usage or a bad value, 1: a runtime failure such as a port in use); `token ...` runs
 * the token subcommand instead. */
#include "common/error.h"
#include "common/log.h"
#include "core/config.h"
#include "core/server.h"
#include "core/token_cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "token") == 0)
        return vs_token_cli(argc - 1, argv + 1, getenv, stdout, stderr);
    vs_config_t cfg;
    char err[512] = "";
    vs_config_defaults(&cfg);
    int rc = vs_config_load(&cfg, argc, argv, getenv, stdout, err, sizeof err);
    if (rc == 1) {
        vs_config_deinit(&cfg);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "volli-signal: %s\nTry 'volli-signal --help'.\n", err);
        vs_config_deinit(&cfg);
        return 2;
    }
    vs_log_setup(cfg.log_level, cfg.log_format);
    signal(SIGPIPE, SIG_IGN);
    /* A file-size limit must fail the write (the store reports it), not kill the process. */
    signal(SIGXFSZ, SIG_IGN);
    int code;
    vs_server_t *s = vs_server_new(&cfg, err, sizeof err, &code);
    if (!s) {
        fprintf(stderr, "volli-signal: %s\n", err);
        vs_config_deinit(&cfg);
        return code;
    }
    code = vs_server_run(s);
    vs_server_free(s);
    vs_config_deinit(&cfg);
    return code;
}
