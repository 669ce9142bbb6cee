/* redis_uv.c: see redis_uv.h. */
#include "cluster/redis_uv.h"

#include "common/alloc.h"

#include <stdlib.h>

typedef struct watch {
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
    uv_poll_t poll;
    int events;            /* what hiredis wants: UV_READABLE | UV_WRITABLE */
} watch_t;

static void on_poll(uv_poll_t *h, int status, int events)
{
    watch_t *w = h->data;
    if (status < 0) {
        /* libuv stopped the handle; let hiredis find out what happened to the socket. */
        events = w->events;
    }
    if (w->ac && (events & UV_READABLE))
        redisAsyncHandleRead(w->ac);
    if (w->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(w->ac);
    if (status < 0 && w->ac && w->events)
        uv_poll_start(&w->poll, w->events, on_poll); /* a spurious error: keep watching */
}

static void update(watch_t *w)
{
    if (w->events)
        uv_poll_start(&w->poll, w->events, on_poll);
    else
        uv_poll_stop(&w->poll);
}

static void add_read(void *data)
{
    watch_t *w = data;
    w->events |= UV_READABLE;
    update(w);
}

static void del_read(void *data)
{
    watch_t *w = data;
    w->events &= ~UV_READABLE;
    update(w);
}

static void add_write(void *data)
{
    watch_t *w = data;
    w->events |= UV_WRITABLE;
    update(w);
}

static void del_write(void *data)
{
    watch_t *w = data;
    w->events &= ~UV_WRITABLE;
    update(w);
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void cleanup(void *data)
{
    watch_t *w = data;
    w->ac = NULL;
    uv_close((uv_handle_t *)&w->poll, on_closed);
}

int vs_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data != NULL)
        return REDIS_ERR;
    watch_t *w = vs_calloc(1, sizeof *w);
    if (uv_poll_init(loop, &w->poll, ac->c.fd) != 0) {
        free(w);
        return REDIS_ERR;
    }
    w->poll.data = w;
    w->ac = ac;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = w;
    return REDIS_OK;
}
