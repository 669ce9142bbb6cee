/* cluster_bus.c: the message bus between nodes. Records for a node are appended to its batch
 * during a loop turn and published as one message at the end of it (vs_cluster_flush), so a
 * burst of relays costs one PUBLISH per destination node, not one per message, and one
 * publisher's records reach a node in the order they were sent.
 *
 * A batch: 'B', the origin node's id, '\n', its send time (wall-clock microseconds, 64-bit
 * little-endian: the receiver observes the bus latency from it), then records: a type byte, a
 * 32-bit little-endian body length, the body. Bodies (strings prefixed by an 8-bit length; the
 * request id by a 16-bit one, as it is raw JSON string contents): 'R' relay:        to, from, id,
 * then the frame to deliver 'E' undeliverable: to, from, id (back to the origin: the sender gets
 * peer_offline) 'M' room message: room, from, then the frame (published on the event channel)
 *
 * A marker: 'S' and a decimal number, published by a node on its own channel (vs_cluster_defer).
 * Redis queues it behind every change published before it, so when it comes back every change
 * ordered before the question that deferred a request has arrived. */
#include "cluster/cluster_impl.h"

#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"
#include "core/server_impl.h"
#include "core/session.h"
#include "protocol/userid.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

static void put_str8(vs_buf_t *b, const char *s, size_t n)
{
    uint8_t l = (uint8_t)n;
    vs_buf_append(b, (const char *)&l, 1);
    vs_buf_append(b, s, n);
}

static void put_str16(vs_buf_t *b, const char *s, size_t n)
{
    uint8_t l[2] = {(uint8_t)(n & 0xff), (uint8_t)(n >> 8)};
    vs_buf_append(b, (const char *)l, 2);
    vs_buf_append(b, s, n);
}

/* Starts a record of type t in b (opening the batch if empty); returns where its length goes. */
static size_t begin(vs_cluster_t *cl, vs_buf_t *b, char t)
{
    if (b->len == 0) {
        vs_buf_append(b, "B", 1);
        vs_buf_puts(b, cl->node);
        vs_buf_append(b, "\n", 1);
        vs_buf_append(b, "\0\0\0\0\0\0\0\0", 8); /* the send time, filled by publish() */
    }
    vs_buf_append(b, &t, 1);
    size_t at = b->len;
    vs_buf_append(b, "\0\0\0\0", 4);
    return at;
}

static void end(vs_buf_t *b, size_t at)
{
    uint32_t n = (uint32_t)(b->len - at - 4);
    uint8_t le[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    memcpy(b->p + at, le, 4);
}

static vs_buf_t *node_batch(vs_cluster_t *cl, uint16_t idx)
{
    vs_node_t *n = cl->nodes[idx];
    if (n->out.len == 0)
        cl->dirty[cl->ndirty++] = n;
    return &n->out;
}

int vs_cluster_relay(vs_cluster_t *cl, uint16_t node, const char *to, const char *from,
                     const char *id_raw, size_t id_len, const char *frame, size_t len)
{
    if (cl->state != CL_UP)
        return VS_EIO;
    if (node < 2 || node > cl->nnodes || !cl->nodes[node]->alive)
        return VS_ENOTFOUND; /* its node died: its users are going offline */
    vs_buf_t *b = node_batch(cl, node);
    size_t at = begin(cl, b, 'R');
    put_str8(b, to, strlen(to));
    put_str8(b, from, strlen(from));
    put_str16(b, id_raw ? id_raw : "", id_raw ? id_len : 0);
    vs_buf_append(b, frame, len);
    end(b, at);
    cl->bus_out++;
    return 0;
}

int vs_cluster_room_message(vs_cluster_t *cl, const char *room, size_t room_len, const char *from,
                            const char *frame, size_t len)
{
    if (cl->state != CL_UP)
        return VS_EIO;
    vs_buf_t *b = &cl->ev_out;
    size_t at = begin(cl, b, 'M');
    put_str8(b, room, room_len);
    put_str8(b, from, strlen(from));
    vs_buf_append(b, frame, len);
    end(b, at);
    cl->bus_out++;
    return 0;
}

/* Wall-clock microseconds: comparable between the nodes' hosts as far as their clocks agree. */
static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void publish(vs_cluster_t *cl, const char *channel, vs_buf_t *b)
{
    const char *nl = memchr(b->p, '\n', b->len);
    uint64_t t = wall_us();
    for (int i = 0; i < 8 && nl; i++)
        ((uint8_t *)nl)[1 + i] = (uint8_t)(t >> (8 * i));
    const char *argv[] = {"PUBLISH", channel, b->p};
    size_t lens[] = {7, strlen(channel), b->len};
    if (vs_cl_command(cl, NULL, NULL, 3, argv, lens) == 0)
        cl->publishes++;
    b->len = 0;
}

/* ---- markers ---- */

int vs_cluster_defer(vs_cluster_t *cl, vs_conn_t *c)
{
    if (cl->state != CL_UP)
        return VS_EIO;
    vs_cl_sync_t *b = cl->sync_tail;
    if (!b || b->token || b->done) {
        b = vs_calloc(1, sizeof *b);
        if (cl->sync_tail)
            cl->sync_tail->next = b;
        else
            cl->sync_head = b;
        cl->sync_tail = b;
    }
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 8;
        b->conns = vs_realloc(b->conns, b->cap * sizeof *b->conns);
    }
    b->conns[b->n++] = c;
    return 0;
}

static vs_cl_sync_t *batch_of(vs_cluster_t *cl, uint64_t token)
{
    vs_cl_sync_t *b = cl->sync_head;
    while (b && b->token != token)
        b = b->next;
    return b;
}

/* Redis refused the marker (an ACL without PUBLISH, say): it will not come back, so its batch
 * is answered from what is known. A lost connection is vs_cl_down's (every batch). */
static void on_marker_reply(vs_cluster_t *cl, redisReply *r, void *priv)
{
    if (!r || r->type != REDIS_REPLY_ERROR)
        return;
    vs_cl_sync_t *b = batch_of(cl, (uint64_t)(uintptr_t)priv);
    if (b)
        b->done = 1;
    VS_LOG(VS_LOG_WARN, "redis_marker_refused", "error", "%.100s", r->str, NULL);
}

/* The batch filled this turn gets its marker. */
static void publish_marker(vs_cluster_t *cl)
{
    vs_cl_sync_t *b = cl->sync_tail;
    if (!b || b->token || b->done)
        return;
    char msg[24];
    int n = snprintf(msg, sizeof msg, "S%llu", (unsigned long long)++cl->sync_token);
    const char *argv[] = {"PUBLISH", cl->nodes[1]->channel, msg};
    size_t lens[] = {7, strlen(argv[1]), (size_t)n};
    b->token = cl->sync_token;
    if (vs_cl_command(cl, on_marker_reply, (void *)(uintptr_t)b->token, 3, argv, lens) != 0)
        b->done = 1; /* down: answered from what is known */
}

void vs_cl_on_sync(vs_cluster_t *cl, const char *data, size_t len)
{
    char num[24];
    if (len == 0 || len >= sizeof num)
        return;
    memcpy(num, data, len);
    num[len] = '\0';
    uint64_t t = strtoull(num, NULL, 10);
    for (vs_cl_sync_t *b = cl->sync_head; b && b->token && b->token <= t; b = b->next)
        b->done = 1;
}

void vs_cl_sync_release(vs_cluster_t *cl)
{
    for (vs_cl_sync_t *b = cl->sync_head; b; b = b->next)
        b->done = 1;
}

void vs_cl_sync_forget(vs_cluster_t *cl, vs_conn_t *c)
{
    for (vs_cl_sync_t *b = cl->sync_head; b; b = b->next)
        for (size_t i = 0; i < b->n; i++)
            if (b->conns[i] == c)
                b->conns[i] = NULL;
}

static void free_batch(vs_cl_sync_t *b)
{
    free(b->conns);
    free(b);
}

void vs_cl_sync_free(vs_cluster_t *cl)
{
    for (vs_cl_sync_t *b = cl->sync_head, *next; b; b = next) {
        next = b->next;
        free_batch(b);
    }
    cl->sync_head = cl->sync_tail = NULL;
}

void vs_cluster_resume_synced(vs_cluster_t *cl)
{
    /* A batch stays on the list while its connections are handled, so that one closed by
     * another's message meanwhile is forgotten in it too (vs_cl_sync_forget). Handling a
     * message again may defer another one: done batches take no more, it joins a new one. */
    while (cl->sync_head && cl->sync_head->done) {
        vs_cl_sync_t *b = cl->sync_head;
        for (size_t i = 0; i < b->n; i++) {
            vs_conn_t *c = b->conns[i];
            if (!c)
                continue;
            b->conns[i] = NULL;
            if (c->waiting)
                c->waiting--;
            if (!c->waiting)
                vs_conn_resume(c);
        }
        cl->sync_head = b->next;
        if (!cl->sync_head)
            cl->sync_tail = NULL;
        free_batch(b);
    }
}

void vs_cluster_flush(vs_cluster_t *cl)
{
    if (cl->state != CL_UP) {
        vs_cl_bus_reset(cl);
        return;
    }
    publish_marker(cl);
    for (size_t i = 0; i < cl->ndirty; i++)
        publish(cl, cl->dirty[i]->channel, &cl->dirty[i]->out);
    cl->ndirty = 0;
    if (cl->ev_out.len)
        publish(cl, cl->ev_channel, &cl->ev_out);
}

void vs_cl_bus_reset(vs_cluster_t *cl)
{
    for (size_t i = 0; i < cl->ndirty; i++) {
        cl->dirty[i]->out.len = 0;
    }
    cl->ndirty = 0;
    cl->ev_out.len = 0;
}

/* ---- receiving ---- */

typedef struct reader {
    const uint8_t *p, *end;
} reader_t;

static int get_str8(reader_t *r, char *out, size_t cap)
{
    if (r->p >= r->end)
        return -1;
    size_t n = *r->p++;
    if ((size_t)(r->end - r->p) < n || n >= cap)
        return -1;
    memcpy(out, r->p, n);
    out[n] = '\0';
    r->p += n;
    return (int)n;
}

static int get_str16(reader_t *r, const char **s, size_t *n)
{
    if (r->end - r->p < 2)
        return -1;
    *n = (size_t)r->p[0] | ((size_t)r->p[1] << 8);
    r->p += 2;
    if ((size_t)(r->end - r->p) < *n)
        return -1;
    *s = (const char *)r->p;
    r->p += *n;
    return 0;
}

/* The to, from and request id that open 'R' and 'E' bodies. */
static int get_addressing(reader_t *r, char to[VS_USERID_MAX + 1], char from[VS_USERID_MAX + 1],
                          const char **id, size_t *id_len)
{
    if (get_str8(r, to, VS_USERID_MAX + 1) < 0 || get_str8(r, from, VS_USERID_MAX + 1) < 0)
        return -1;
    return get_str16(r, id, id_len);
}

static vs_conn_t *local_user(vs_cluster_t *cl, const char *uid)
{
    vs_user_t *u = vs_directory_find(cl->srv->dir, uid, strlen(uid));
    return u ? u->conn : NULL;
}

static void deliver_relay(vs_cluster_t *cl, uint16_t origin, reader_t *r)
{
    char to[VS_USERID_MAX + 1], from[VS_USERID_MAX + 1];
    const char *id;
    size_t id_len;
    if (get_addressing(r, to, from, &id, &id_len) < 0)
        return;
    vs_conn_t *c = local_user(cl, to);
    if (c && c->state == VS_CONN_WS && !(c->flags & VS_CONN_DOOMED)) {
        vs_conn_send_text(c, (const char *)r->p, (size_t)(r->end - r->p));
        return;
    }
    /* Gone from here meanwhile: the sender hears it, as on a single node. */
    if (origin < 2 || cl->state != CL_UP)
        return;
    vs_buf_t *b = node_batch(cl, origin);
    size_t at = begin(cl, b, 'E');
    put_str8(b, to, strlen(to));
    put_str8(b, from, strlen(from));
    put_str16(b, id, id_len);
    end(b, at);
    cl->bus_out++;
}

static void deliver_error(vs_cluster_t *cl, reader_t *r)
{
    char to[VS_USERID_MAX + 1], from[VS_USERID_MAX + 1];
    const char *id;
    size_t id_len;
    if (get_addressing(r, to, from, &id, &id_len) < 0)
        return;
    vs_conn_t *c = local_user(cl, from);
    if (!c)
        return;
    vs_req_t rq = {c, VS_MSG_UNKNOWN, id_len ? id : NULL, id_len, uv_hrtime(), NULL, 0};
    vs_reply_error(&rq, VS_WERR_PEER_OFFLINE, "the recipient is not online", to);
}

static void deliver_room(vs_cluster_t *cl, reader_t *r)
{
    char room[VS_ROOM_NAME_MAX + 1], from[VS_USERID_MAX + 1];
    int rl = get_str8(r, room, sizeof room);
    if (rl < 0 || get_str8(r, from, sizeof from) < 0)
        return;
    vs_room_t *rm = vs_rooms_find(cl->srv->rooms, room, (size_t)rl);
    if (!rm)
        return;
    for (vs_member_t *m = rm->members; m; m = m->r_next)
        if (strcmp(m->id, from) != 0)
            vs_conn_send_text(m->conn, (const char *)r->p, (size_t)(r->end - r->p));
}

void vs_cl_on_bus(vs_cluster_t *cl, const char *data, size_t len)
{
    const char *nl = len > 1 && data[0] == 'B' ? memchr(data, '\n', len) : NULL;
    if (!nl)
        return;
    uint16_t origin = 0;
    if (!vs_cl_node(cl, data + 1, (size_t)(nl - data - 1), &origin) || origin == 1)
        return; /* our own batch on the event channel */
    const uint8_t *p = (const uint8_t *)nl + 1, *end = (const uint8_t *)data + len;
    if (end - p < 8)
        return;
    uint64_t sent = 0;
    for (int i = 0; i < 8; i++)
        sent |= (uint64_t)p[i] << (8 * i);
    p += 8;
    uint64_t now = wall_us();
    vs_cl_observe_latency(cl, now > sent ? (double)(now - sent) / 1e6 : 0.0);
    while (end - p >= 5) {
        char t = (char)p[0];
        uint32_t n = (uint32_t)p[1] | ((uint32_t)p[2] << 8) | ((uint32_t)p[3] << 16) |
                     ((uint32_t)p[4] << 24);
        p += 5;
        if ((size_t)(end - p) < n)
            break;
        reader_t r = {p, p + n};
        cl->bus_in++;
        if (t == 'R')
            deliver_relay(cl, origin, &r);
        else if (t == 'E')
            deliver_error(cl, &r);
        else if (t == 'M')
            deliver_room(cl, &r);
        p += n;
    }
}
