/* server.h: the server as a whole: one libuv loop, the listener, every connection, the
 * directory and the store. main.c only creates, runs and frees it. */
#ifndef VS_CORE_SERVER_H
#define VS_CORE_SERVER_H

#include "core/config.h"

typedef struct vs_server vs_server_t;

/* Opens the store and binds the listener. cfg is borrowed and must outlive the server.
 * On failure returns NULL and writes the reason into err; *exit_code says how to exit
 * (1 for runtime failures such as a port in use or an unwritable data dir). */
vs_server_t *vs_server_new(const vs_config_t *cfg, char *err, size_t errlen, int *exit_code);
/* Runs until SIGTERM/SIGINT and a graceful shutdown. Returns the process exit code. */
int vs_server_run(vs_server_t *s);
void vs_server_free(vs_server_t *s);

#endif
