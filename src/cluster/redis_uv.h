/* redis_uv.h: runs a hiredis async context on a libuv loop. Our own glue instead of Debian's
 * hiredis 0.14 adapters/libuv.h, which ignores poll errors: on a connection reset libuv stops
 * watching the socket and that adapter never lets hiredis read it, so a reset Redis was only
 * noticed when --redis-timeout ran out. Here an error is handed to hiredis as the events it
 * waits for, so it reads, sees the reset and disconnects at once (as hiredis 1.x does).
 * It owns one small record per context, freed when hiredis cleans the context up. */
#ifndef VS_CLUSTER_REDIS_UV_H
#define VS_CLUSTER_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/* Attaches ac (borrowed; hiredis frees it) to loop (borrowed, outlives ac). Returns REDIS_OK,
 * or REDIS_ERR when ac is attached already or the socket cannot be polled. */
int vs_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
