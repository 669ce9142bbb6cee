/* lookup.c: discover's store reads on a worker thread, for a store whose reads may block the
 * loop (PostgreSQL: a server that hangs would stall every connection of the node otherwise).
 * Lookups of one loop turn go to the worker as one batch; one batch at a time, so the store's
 * reading connection is only ever used by one thread (the loop thread then never reads). */
#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"
#include "core/server_impl.h"
#include "core/session.h"

#include <stdlib.h>
#include <string.h>

struct vs_lookup {
    vs_lookup_t *next;
    vs_conn_t *conn; /* NULL once the connection went away */
    vs_msg_type_t type;
    uint64_t t0;
    char *id;        /* raw request id, owned, or NULL */
    size_t id_len;
    int single;
    size_t n;
    int failed;      /* a read failed: answered `unavailable` */
    char (*ids)[VS_USERID_MAX + 1];
    uint8_t (*keys)[32];
    int *found;
};

static void free_lookup(vs_lookup_t *l)
{
    free(l->id);
    free(l->ids);
    free(l->keys);
    free(l->found);
    free(l);
}

void vs_lookup_submit(const vs_req_t *rq, int single, const char (*ids)[VS_USERID_MAX + 1],
                      size_t n, const uint8_t (*keys)[32], const int *found)
{
    vs_server_t *s = rq->c->srv;
    vs_lookup_t *l = vs_calloc(1, sizeof *l);
    l->conn = rq->c;
    l->type = rq->type;
    l->t0 = rq->t0;
    if (rq->id) {
        l->id = vs_strndup(rq->id, rq->id_len);
        l->id_len = rq->id_len;
    }
    l->single = single;
    l->n = n;
    l->ids = vs_calloc(n, sizeof *l->ids);
    memcpy(l->ids, ids, n * sizeof *l->ids);
    l->keys = vs_calloc(n, sizeof *l->keys);
    memcpy(l->keys, keys, n * sizeof *l->keys);
    l->found = vs_calloc(n, sizeof *l->found);
    memcpy(l->found, found, n * sizeof *l->found);
    vs_lookq_t *q = &s->lookq;
    if (q->tail)
        q->tail->next = l;
    else
        q->head = l;
    q->tail = l;
    rq->c->waiting++;
}

static void work_cb(uv_work_t *w)
{
    vs_server_t *s = w->data;
    for (vs_lookup_t *l = s->lookq.batch; l; l = l->next)
        for (size_t i = 0; i < l->n && !l->failed; i++) {
            if (l->found[i])
                continue; /* known in memory when asked */
            int rc = vs_store_get_key(&s->store, l->ids[i], l->keys[i]);
            l->found[i] = rc == 0;
            l->failed = rc != 0 && rc != VS_ENOTFOUND;
        }
}

static void after_cb(uv_work_t *w, int status)
{
    vs_server_t *s = w->data;
    vs_lookup_t *l = s->lookq.batch;
    s->lookq.batch = NULL;
    s->lookq.busy = 0;
    while (l) {
        vs_lookup_t *next = l->next;
        vs_conn_t *c = l->conn;
        if (c) {
            vs_req_t rq = {c, l->type, l->id, l->id_len, l->t0, NULL, 0};
            if (c->waiting)
                c->waiting--;
            if (status < 0 || l->failed) {
                VS_LOG(VS_LOG_ERROR, "store_read_failed", NULL);
                vs_reply_error(&rq, VS_WERR_UNAVAILABLE, "the directory is unavailable; try again",
                               NULL);
            } else {
                vs_discover_finish(&rq, l->single, (const char(*)[VS_USERID_MAX + 1])l->ids, l->n,
                                   (const uint8_t(*)[32])l->keys, l->found);
            }
            if (!c->waiting)
                vs_conn_resume(c);
        }
        free_lookup(l);
        l = next;
    }
    vs_lookup_flush(s);
}

void vs_lookup_flush(vs_server_t *s)
{
    vs_lookq_t *q = &s->lookq;
    if (q->busy || !q->head)
        return;
    q->batch = q->head;
    q->head = q->tail = NULL;
    q->busy = 1;
    q->work.data = s;
    if (uv_queue_work(&s->loop, &q->work, work_cb, after_cb) != 0)
        after_cb(&q->work, UV_ECANCELED);
}

void vs_lookup_cancel(vs_conn_t *c)
{
    vs_lookq_t *q = &c->srv->lookq;
    for (vs_lookup_t *l = q->head; l; l = l->next)
        if (l->conn == c)
            l->conn = NULL;
    for (vs_lookup_t *l = q->batch; l; l = l->next)
        if (l->conn == c)
            l->conn = NULL;
}

int vs_lookup_busy(const vs_server_t *s)
{
    return s->lookq.busy || s->lookq.head != NULL;
}
