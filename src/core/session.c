#include "core/session.h"

#include "cluster/cluster.h"
#include "common/alloc.h"
#include "common/base64.h"
#include "common/error.h"
#include "common/log.h"
#include "core/pq.h"
#include "core/server_impl.h"
#include "protocol/envelope.h"
#include "protocol/userid.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ID_CHARS 64

static double since(uint64_t t0)
{
    return (double)(uv_hrtime() - t0) / 1e9;
}

void vs_reply_finish(const vs_req_t *rq, vs_buf_t *b)
{
    if (rq->id) {
        vs_buf_puts(b, ",\"id\":\"");
        vs_buf_append(b, rq->id, rq->id_len);
        vs_buf_append(b, "\"", 1);
    }
    vs_buf_append(b, "}", 1);
    vs_conn_send_text(rq->c, b->p, b->len);
    if ((unsigned)rq->type < VS_MSG_COUNT)
        vs_metrics_observe(&rq->c->srv->metrics, rq->type, since(rq->t0));
}

void vs_reply_error(const vs_req_t *rq, vs_wire_error_t code, const char *message, const char *to)
{
    vs_server_t *s = rq->c->srv;
    vs_buf_t *b = &s->scratch;
    b->len = 0;
    vs_buf_puts(b, "{\"type\":\"error\",\"code\":\"");
    vs_buf_puts(b, vs_wire_error_name(code));
    vs_buf_puts(b, "\",\"message\":");
    vs_buf_json_str(b, message, strlen(message));
    if (to) {
        vs_buf_puts(b, ",\"to\":");
        vs_buf_json_str(b, to, strlen(to));
    }
    vs_metrics_error(&s->metrics, code);
    VS_LOG(VS_LOG_DEBUG, "request_error", "type", "%s", vs_msg_type_name(rq->type), "code", "%s",
           vs_wire_error_name(code), NULL);
    vs_reply_finish(rq, b);
}

void vs_session_reject_binary(vs_conn_t *c)
{
    vs_req_t rq = {c, VS_MSG_UNKNOWN, NULL, 0, uv_hrtime(), NULL, 0};
    vs_reply_error(&rq, VS_WERR_BAD_REQUEST, "binary frames are not supported; send JSON text",
                   NULL);
}

void vs_session_error_too_large(vs_conn_t *c)
{
    char msg[96];
    snprintf(msg, sizeof msg, "message exceeds the limit of %zu bytes", c->srv->cfg->max_frame);
    vs_req_t rq = {c, VS_MSG_UNKNOWN, NULL, 0, uv_hrtime(), NULL, 0};
    vs_reply_error(&rq, VS_WERR_TOO_LARGE, msg, NULL);
}

void vs_session_error_rate_limited(vs_conn_t *c, const char *what)
{
    const vs_config_t *cfg = c->srv->cfg;
    char msg[128];
    if (strcmp(what, "messages") == 0)
        snprintf(msg, sizeof msg, "too many messages: the limit is %d per second", cfg->rate_messages);
    else
        snprintf(msg, sizeof msg, "too many bytes: the limit is %zu per second", cfg->rate_bytes);
    vs_req_t rq = {c, VS_MSG_UNKNOWN, NULL, 0, uv_hrtime(), NULL, 0};
    vs_reply_error(&rq, VS_WERR_RATE_LIMITED, msg, NULL);
}

void vs_session_error_timeout(vs_conn_t *c)
{
    vs_req_t rq = {c, VS_MSG_UNKNOWN, NULL, 0, uv_hrtime(), NULL, 0};
    vs_reply_error(&rq, VS_WERR_NOT_REGISTERED, "no register in time; closing", NULL);
}

/* Charges n ids to the connection's lookup budget (discover and subscribe). */
static int within_lookup_rate(const vs_req_t *rq, size_t n)
{
    vs_server_t *s = rq->c->srv;
    double rate = s->cfg->lookup_rate;
    if (rq->c->flags & VS_CONN_SYNCED)
        return 1; /* handled again after a cluster sync: charged the first time */
    if (vs_bucket_take(&rq->c->rate_lookups, rate / 60.0, rate, (double)n, vs_server_now(s)))
        return 1;
    s->metrics.rate_limited[VS_LIMIT_LOOKUP]++;
    char msg[128];
    snprintf(msg, sizeof msg, "too many lookups: the limit is %d user ids per minute",
             s->cfg->lookup_rate);
    vs_reply_error(rq, VS_WERR_RATE_LIMITED, msg, NULL);
    return 0;
}

/* Decodes a raw JSON string slice (unescaping only when needed) into out. */
static int raw_string(vs_slice_t raw, int escaped, char *out, size_t cap, size_t *len)
{
    if (!escaped) {
        if (raw.len >= cap)
            return VS_ETOOBIG;
        memcpy(out, raw.p, raw.len);
        out[raw.len] = '\0';
        *len = raw.len;
        return 0;
    }
    int n = vs_json_unescape(raw, out, cap);
    if (n < 0)
        return n;
    *len = (size_t)n;
    return 0;
}

static size_t utf8_chars(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += ((unsigned char)s[i] & 0xC0) != 0x80;
    return count;
}

/* ---- relay: the hot path; the store is never touched here ---- */

/* The sender's object with "from" spliced in, into scratch (borrowed until the next use). */
static const char *spliced(vs_conn_t *c, const vs_envelope_t *env, const char *data, size_t len,
                           size_t *out_len)
{
    size_t need = vs_envelope_splice_size(env, len, c->user->idlen);
    vs_buf_t *b = &c->srv->scratch;
    b->len = 0;
    char *w = vs_buf_reserve(b, need);
    vs_envelope_splice_from(data, len, env, c->user->id, c->user->idlen, w, need);
    *out_len = need;
    return w;
}

/* Queues the sender's object with "from" spliced in to dst. Returns 0, or -1 when dst is closing
 * or over its queue. A post-quantum recipient gets it encrypted: spliced into scratch first. */
static int forward(vs_conn_t *c, vs_conn_t *dst, const vs_envelope_t *env, const char *data,
                   size_t len)
{
    size_t need = vs_envelope_splice_size(env, len, c->user->idlen);
    if (!dst->pq) {
        char *w = vs_conn_frame(dst, VS_WS_OP_TEXT, need);
        if (!w)
            return -1;
        vs_envelope_splice_from(data, len, env, c->user->id, c->user->idlen, w, need);
        return 0;
    }
    if (dst->state != VS_CONN_WS || (dst->flags & VS_CONN_DOOMED))
        return -1;
    const char *w = spliced(c, env, data, len, &need);
    vs_conn_send_text(dst, w, need);
    return dst->flags & VS_CONN_DOOMED ? -1 : 0;
}

/* In a cluster, before answering that a user is offline: returns 1 when rq was set aside to
 * be handled again once every change Redis ordered before it has arrived here (see
 * vs_cluster_defer; the caller returns without answering), 0 to answer now (one node, Redis
 * down, or this is already the second time). Call it before anything is changed or sent. */
static int sync_first(const vs_req_t *rq)
{
    vs_conn_t *c = rq->c;
    vs_cluster_t *cl = c->srv->cluster;
    if (!cl || !rq->raw || (c->flags & VS_CONN_SYNCED) || vs_cluster_defer(cl, c) != 0)
        return 0;
    vs_conn_defer(c, rq->raw, rq->raw_len, rq->t0);
    return 1;
}


/* To a user online on another node: one record in that node's batch. */
static int relay_remote(vs_req_t *rq, const vs_envelope_t *env, const char *data, size_t len,
                        const vs_user_t *u)
{
    vs_conn_t *c = rq->c;
    size_t n;
    const char *frame = spliced(c, env, data, len, &n);
    int rc = vs_cluster_relay(c->srv->cluster, u->rnode, u->id, c->user->id, rq->id, rq->id_len,
                              frame, n);
    if (rc == VS_ENOTFOUND) {
        vs_reply_error(rq, VS_WERR_PEER_OFFLINE, "the recipient is not online", u->id);
        return -1;
    }
    if (rc != 0) {
        vs_reply_error(rq, VS_WERR_UNAVAILABLE,
                       "the recipient is on another node and the cluster bus is unavailable",
                       u->id);
        return -1;
    }
    return 0;
}

static void relay(vs_req_t *rq, const vs_envelope_t *env, const char *data, size_t len)
{
    vs_conn_t *c = rq->c;
    vs_server_t *s = c->srv;
    if (!c->user) {
        vs_reply_error(rq, VS_WERR_NOT_REGISTERED, "register before relaying", NULL);
        return;
    }
    if (env->to_kind != VS_JSON_STRING) {
        vs_reply_error(rq, VS_WERR_BAD_REQUEST,
                       env->to_kind == VS_JSON_ABSENT ? "\"to\" is required"
                                                      : "\"to\" must be a string",
                       NULL);
        return;
    }
    const char *field = vs_msg_relay_field(rq->type);
    if (field && !vs_envelope_has_member(env, field)) {
        char msg[64];
        snprintf(msg, sizeof msg, "\"%s\" is required", field);
        vs_reply_error(rq, VS_WERR_BAD_REQUEST, msg, NULL);
        return;
    }
    char raw[4 * VS_USERID_MAX + 1], to[VS_USERID_MAX + 1];
    size_t rawlen;
    if (raw_string(env->to, env->to_escaped, raw, sizeof raw, &rawlen) != 0 ||
        vs_userid_fold(raw, rawlen, to) != 0) {
        vs_reply_error(rq, VS_WERR_INVALID_USER_ID,
                       "\"to\" must be 1 to 128 characters of [a-z0-9._+@-]", NULL);
        return;
    }
    vs_user_t *u = vs_directory_find(s->dir, to, strlen(to));
    if (!vs_user_online(u) && sync_first(rq))
        return;
    vs_conn_t *dst = u ? u->conn : NULL;
    if (!dst && u && u->rnode && s->cluster) {
        if (relay_remote(rq, env, data, len, u) != 0)
            return;
    } else if (!dst || forward(c, dst, env, data, len) != 0) {
        vs_reply_error(rq, VS_WERR_PEER_OFFLINE, "the recipient is not online", to);
        return;
    }
    s->metrics.relayed[rq->type]++;
    vs_metrics_observe(&s->metrics, rq->type, since(rq->t0));
}

/* ---- discover, subscribe, unsubscribe ---- */

/* The key of a user known in memory (online here or elsewhere, by a register), or NULL. */
static const uint8_t *memory_key(const vs_user_t *u)
{
    return vs_user_online(u) && u->has_key ? u->key : NULL;
}

/* One user of a discover answer; key (NULL: none bound) is borrowed. */
static void append_user(vs_server_t *s, vs_buf_t *b, const char *id, const uint8_t *key)
{
    vs_user_t *u = vs_directory_find(s->dir, id, strlen(id));
    vs_buf_printf(b, "\"userId\":\"%s\",\"online\":%s,\"publicKey\":", id,
                  vs_user_online(u) ? "true" : "false");
    if (key) {
        char k64[48];
        vs_base64_encode(key, 32, k64);
        vs_buf_printf(b, "\"%s\"", k64);
    } else {
        vs_buf_puts(b, "null");
    }
}

void vs_discover_finish(const vs_req_t *rq, int single, const char (*ids)[VS_USERID_MAX + 1],
                        size_t n, const uint8_t (*keys)[32], const int *found)
{
    vs_server_t *s = rq->c->srv;
    vs_buf_t *b = &s->scratch;
    b->len = 0;
    vs_buf_puts(b, single ? "{\"type\":\"discover\"," : "{\"type\":\"discover\",\"users\":[");
    for (size_t i = 0; i < n; i++) {
        if (!single)
            vs_buf_puts(b, i ? ",{" : "{");
        /* What the directory knows now wins over what the store said a moment ago. */
        const uint8_t *key = memory_key(vs_directory_find(s->dir, ids[i], strlen(ids[i])));
        append_user(s, b, ids[i], key ? key : found[i] ? keys[i] : NULL);
        if (!single)
            vs_buf_append(b, "}", 1);
    }
    if (!single)
        vs_buf_append(b, "]", 1);
    vs_reply_finish(rq, b);
}

/* Answers discover for ids: keys known in memory at once; the others from the store, right
 * here for SQLite, or on a worker for a store that may block the loop (PostgreSQL). */
static void discover_ids(const vs_req_t *rq, int single, char (*ids)[VS_USERID_MAX + 1],
                         size_t n)
{
    vs_server_t *s = rq->c->srv;
    static uint8_t keys[100][32];
    static int found[100];
    int missing = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *k = memory_key(vs_directory_find(s->dir, ids[i], strlen(ids[i])));
        found[i] = k != NULL;
        if (k)
            memcpy(keys[i], k, 32);
        missing |= !k;
    }
    if (missing && s->store_blocks) {
        vs_lookup_submit(rq, single, (const char(*)[VS_USERID_MAX + 1])ids, n,
                         (const uint8_t(*)[32])keys, found);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (found[i])
            continue;
        int rc = vs_store_get_key(&s->store, ids[i], keys[i]);
        if (rc != 0 && rc != VS_ENOTFOUND) {
            vs_reply_error(rq, VS_WERR_UNAVAILABLE, "the directory is unavailable; try again",
                           NULL);
            return;
        }
        found[i] = rc == 0;
    }
    vs_discover_finish(rq, single, (const char(*)[VS_USERID_MAX + 1])ids, n,
                       (const uint8_t(*)[32])keys, found);
}

/* Validates and folds a userIds array into ids (max_batch entries of VS_USERID_MAX+1). */
static int fold_ids(const vs_req_t *rq, json_t *arr, char (*ids)[VS_USERID_MAX + 1], size_t *n)
{
    size_t max = (size_t)rq->c->srv->cfg->max_batch;
    char msg[96];
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > max) {
        snprintf(msg, sizeof msg, "\"userIds\" must be an array of 1 to %zu user ids", max);
        vs_reply_error(rq, VS_WERR_BAD_REQUEST, msg, NULL);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_string(v)) {
            snprintf(msg, sizeof msg, "\"userIds\"[%zu] must be a string", i);
            vs_reply_error(rq, VS_WERR_BAD_REQUEST, msg, NULL);
            return -1;
        }
        if (vs_userid_fold(json_string_value(v), json_string_length(v), ids[i]) != 0) {
            snprintf(msg, sizeof msg,
                     "\"userIds\"[%zu] must be 1 to 128 characters of [a-z0-9._+@-]", i);
            vs_reply_error(rq, VS_WERR_INVALID_USER_ID, msg, NULL);
            return -1;
        }
    }
    *n = json_array_size(arr);
    return 0;
}

static void discover(const vs_req_t *rq, json_t *root)
{
    vs_server_t *s = rq->c->srv;
    json_t *one = json_object_get(root, "userId"), *many = json_object_get(root, "userIds");
    if ((one != NULL) == (many != NULL)) {
        vs_reply_error(rq, VS_WERR_BAD_REQUEST, "give exactly one of \"userId\" or \"userIds\"",
                       NULL);
        return;
    }
    if (one) {
        char id[VS_USERID_MAX + 1];
        if (!json_is_string(one)) {
            vs_reply_error(rq, VS_WERR_BAD_REQUEST, "\"userId\" must be a string", NULL);
            return;
        }
        if (vs_userid_fold(json_string_value(one), json_string_length(one), id) != 0) {
            vs_reply_error(rq, VS_WERR_INVALID_USER_ID,
                           "\"userId\" must be 1 to 128 characters of [a-z0-9._+@-]", NULL);
            return;
        }
        if (!within_lookup_rate(rq, 1))
            return;
        if (!vs_user_online(vs_directory_find(s->dir, id, strlen(id))) && sync_first(rq))
            return;
        discover_ids(rq, 1, &id, 1);
        return;
    }
    static char ids[100][VS_USERID_MAX + 1];
    size_t n;
    if (fold_ids(rq, many, ids, &n) != 0 || !within_lookup_rate(rq, n))
        return;
    for (size_t i = 0; i < n; i++)
        if (!vs_user_online(vs_directory_find(s->dir, ids[i], strlen(ids[i])))) {
            if (sync_first(rq))
                return;
            break;
        }
    discover_ids(rq, 0, ids, n);
}

static void subscribe(const vs_req_t *rq, json_t *root, int on)
{
    vs_conn_t *c = rq->c;
    vs_server_t *s = c->srv;
    static char ids[100][VS_USERID_MAX + 1];
    size_t n;
    json_t *arr = json_object_get(root, "userIds");
    if (!arr) {
        vs_reply_error(rq, VS_WERR_BAD_REQUEST, "\"userIds\" is required", NULL);
        return;
    }
    if (fold_ids(rq, arr, ids, &n) != 0)
        return;
    if (on) {
        if (!within_lookup_rate(rq, n))
            return;
        /* Refuse the whole batch if it could take the connection over its cap. */
        size_t max = (size_t)s->cfg->max_subscriptions;
        if (c->watch.nsubs + n > max) {
            size_t fresh = 0;
            for (size_t i = 0; i < n; i++) {
                vs_user_t *u = vs_directory_find(s->dir, ids[i], strlen(ids[i]));
                fresh += !u || !vs_directory_is_subscribed(&c->watch, u);
            }
            if (c->watch.nsubs + fresh > max) {
                char msg[96];
                snprintf(msg, sizeof msg, "at most %zu presence subscriptions per connection",
                         max);
                vs_reply_error(rq, VS_WERR_LIMIT_EXCEEDED, msg, NULL);
                return;
            }
        }
    }
    for (size_t i = 0; on && i < n; i++)
        if (!vs_user_online(vs_directory_find(s->dir, ids[i], strlen(ids[i])))) {
            if (sync_first(rq))
                return;
            break;
        }
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(ids[i]);
        if (!on) {
            vs_directory_unsubscribe(s->dir, &c->watch, ids[i], l);
            continue;
        }
        vs_user_t *u = vs_directory_subscribe(s->dir, &c->watch, ids[i], l);
        char frame[VS_PRESENCE_MAX];
        size_t fl = vs_presence_frame(frame, u->id, vs_user_online(u), rq->id, rq->id_len);
        vs_conn_send_text(c, frame, fl);
    }
    vs_metrics_observe(&s->metrics, rq->type, since(rq->t0));
}

/* ---- rooms ---- */

/* The room name of a join/leave/room_message, validated; NULL after answering bad_request. */
static const char *room_arg(const vs_req_t *rq, json_t *root, size_t *len)
{
    json_t *room = json_object_get(root, "room");
    if (!json_is_string(room) ||
        !vs_room_name_valid(json_string_value(room), json_string_length(room))) {
        vs_reply_error(rq, VS_WERR_BAD_REQUEST,
                       "\"room\" must be 1 to 128 characters of [A-Za-z0-9._-]", NULL);
        return NULL;
    }
    *len = json_string_length(room);
    return json_string_value(room);
}

/* Answers {"type":"joined","room":..,"participants":[the others, hidden ones left out]}. */
static void reply_joined(const vs_req_t *rq, const vs_room_t *room)
{
    vs_buf_t *b = &rq->c->srv->scratch;
    b->len = 0;
    vs_buf_printf(b, "{\"type\":\"joined\",\"room\":\"%s\",\"participants\":[", room->name);
    int first = 1;
    for (const vs_member_t *m = room->members; m; m = m->r_next) {
        if (m->conn == rq->c || m->hidden)
            continue;
        vs_buf_printf(b, "%s\"%s\"", first ? "" : ",", m->id);
        first = 0;
    }
    vs_buf_append(b, "]", 1);
    vs_reply_finish(rq, b);
}

/* A join waiting for the cluster: the request, kept until the answer. */
typedef struct join_wait {
    vs_msg_type_t type;
    uint64_t t0;
    size_t id_len;
    char id[]; /* raw request id, or empty */
} join_wait_t;

static int on_cluster_joined(vs_conn_t *c, int rc, const char *members, size_t members_len,
                              void *ud)
{
    join_wait_t *w = ud;
    vs_req_t rq = {c, w->type, w->id_len ? w->id : NULL, w->id_len, w->t0, NULL, 0};
    vs_server_t *s = c ? c->srv : NULL;
    vs_room_t *room = NULL;
    int refused = 0;
    if (!c) {
        /* gone meanwhile */
    } else if (rc == VS_ETOOBIG) {
        char msg[96];
        snprintf(msg, sizeof msg, "the room has the maximum of %d participants",
                 s->cfg->max_room_participants);
        vs_reply_error(&rq, VS_WERR_ROOM_FULL, msg, NULL);
    } else if (rc != 0 || !c->user) {
        refused = rc == 0;
        vs_reply_error(&rq, VS_WERR_UNAVAILABLE, "the cluster is unavailable; try again", NULL);
    } else {
        const char *name = w->id + w->id_len + 1;
        int jr = vs_rooms_join(s->rooms, &c->rooms, c, c->user->id, name, strlen(name),
                               c->token && c->token->hidden, UINT32_MAX, &room);
        if (jr != 0 && jr != VS_EEXISTS) {
            refused = 1;
            vs_reply_error(&rq, VS_WERR_INTERNAL, "the room could not be joined", NULL);
        } else {
            vs_buf_t *b = &s->scratch;
            b->len = 0;
            vs_buf_printf(b, "{\"type\":\"joined\",\"room\":\"%s\",\"participants\":[%.*s]",
                          room->name, (int)members_len, members);
            vs_reply_finish(&rq, b);
        }
    }
    free(w);
    return refused;
}

static void join_room(const vs_req_t *rq, const char *name, size_t len)
{
    vs_conn_t *c = rq->c;
    vs_server_t *s = c->srv;
    const vs_token_claims_t *t = c->token;
    if (t && t->room[0] && (strlen(t->room) != len || memcmp(t->room, name, len) != 0)) {
        vs_reply_error(rq, VS_WERR_FORBIDDEN, "the access token grants another room", NULL);
        return;
    }
    vs_room_t *room = vs_rooms_find(s->rooms, name, len);
    int member = room && vs_rooms_membership(&c->rooms, room);
    if (member && !s->cluster) {
        reply_joined(rq, room); /* joining twice is harmless */
        return;
    }
    /* (In a cluster a second join asks again: the list spans every node.) */
    if (!member && c->rooms.n >= (uint32_t)s->cfg->max_rooms_per_conn) {
        char msg[96];
        snprintf(msg, sizeof msg, "at most %d rooms per connection", s->cfg->max_rooms_per_conn);
        vs_reply_error(rq, VS_WERR_LIMIT_EXCEEDED, msg, NULL);
        return;
    }
    if (s->cluster) {
        join_wait_t *w = vs_malloc(sizeof *w + rq->id_len + 1 + len + 1);
        w->type = rq->type;
        w->t0 = rq->t0;
        w->id_len = rq->id_len;
        if (rq->id_len)
            memcpy(w->id, rq->id, rq->id_len);
        w->id[rq->id_len] = '\0';
        memcpy(w->id + rq->id_len + 1, name, len);
        w->id[rq->id_len + 1 + len] = '\0';
        if (vs_cluster_room_join(s->cluster, c, name, len, t && t->hidden, on_cluster_joined,
                                 w) != 0) {
            free(w);
            vs_reply_error(rq, VS_WERR_UNAVAILABLE, "the cluster is unavailable; try again", NULL);
        }
        return;
    }
    int rc = vs_rooms_join(s->rooms, &c->rooms, c, c->user->id, name, len, t && t->hidden,
                           (uint32_t)s->cfg->max_room_participants, &room);
    if (rc == VS_ETOOBIG) {
        char msg[96];
        snprintf(msg, sizeof msg, "the room has the maximum of %d participants",
                 s->cfg->max_room_participants);
        vs_reply_error(rq, VS_WERR_ROOM_FULL, msg, NULL);
        return;
    }
    if (rc != 0 && rc != VS_EEXISTS) {
        vs_reply_error(rq, VS_WERR_INTERNAL, "the room could not be joined", NULL);
        return;
    }
    reply_joined(rq, room);
}

static void leave_room(const vs_req_t *rq, json_t *root)
{
    size_t len;
    const char *name = room_arg(rq, root, &len);
    if (!name)
        return;
    if (vs_rooms_leave(rq->c->srv->rooms, &rq->c->rooms, name, len) != 0) {
        vs_reply_error(rq, VS_WERR_NOT_IN_ROOM, "this connection is not in the room", NULL);
        return;
    }
    if (rq->c->srv->cluster)
        vs_cluster_room_left(rq->c->srv->cluster, rq->c, name, len);
    vs_buf_t *b = &rq->c->srv->scratch;
    b->len = 0;
    vs_buf_printf(b, "{\"type\":\"left\",\"room\":\"%.*s\"", (int)len, name);
    vs_reply_finish(rq, b);
}

/* Fans the sender's object out to every other member with "from" spliced in, as a relay does:
 * "data" and everything else arrive byte for byte. */
static void room_message(vs_req_t *rq, const vs_envelope_t *env, const char *data, size_t len)
{
    vs_conn_t *c = rq->c;
    vs_server_t *s = c->srv;
    if (!c->user) {
        vs_reply_error(rq, VS_WERR_NOT_REGISTERED, "register first", NULL);
        return;
    }
    json_t *root = json_loadb(data, len, VS_JSON_FLAGS, NULL);
    size_t nlen;
    const char *name = root ? room_arg(rq, root, &nlen) : NULL;
    if (!root) {
        vs_reply_error(rq, VS_WERR_BAD_JSON, "invalid JSON", NULL);
        return;
    }
    if (!name)
        goto out;
    if (!vs_envelope_has_member(env, "data")) {
        vs_reply_error(rq, VS_WERR_BAD_REQUEST, "\"data\" is required", NULL);
        goto out;
    }
    vs_room_t *room = vs_rooms_find(s->rooms, name, nlen);
    if (!room || !vs_rooms_membership(&c->rooms, room)) {
        vs_reply_error(rq, VS_WERR_NOT_IN_ROOM, "join the room before sending to it", NULL);
        goto out;
    }
    if (s->cluster) {
        size_t n;
        const char *frame = spliced(c, env, data, len, &n);
        if (vs_cluster_room_message(s->cluster, name, nlen, c->user->id, frame, n) != 0) {
            vs_reply_error(rq, VS_WERR_UNAVAILABLE,
                           "the cluster bus is unavailable: the room's other nodes were not "
                           "reached",
                           NULL);
        }
    }
    for (vs_member_t *m = room->members; m; m = m->r_next)
        if (m->conn != c)
            forward(c, m->conn, env, data, len);
    s->metrics.room_messages++;
    vs_metrics_observe(&s->metrics, rq->type, since(rq->t0));
out:
    json_decref(root);
}

void vs_session_token_start(vs_conn_t *c)
{
    vs_req_t rq = {c, VS_MSG_UNKNOWN, NULL, 0, uv_hrtime(), NULL, 0};
    const vs_token_claims_t *t = c->token;
    vs_register_online(&rq, t->identity, NULL, 1);
    VS_LOG(VS_LOG_DEBUG, "token_registered", "user", "%s", t->identity, NULL);
    if (t->room_join && t->room[0] && c->user)
        join_room(&rq, t->room, strlen(t->room));
}

static void handle_json(vs_req_t *rq, const char *data, size_t len)
{
    json_error_t err;
    json_t *root = json_loadb(data, len, VS_JSON_FLAGS, &err);
    if (!root) {
        /* The scanner accepted what jansson refuses: they must agree, so this is a bug. */
        VS_LOG(VS_LOG_ERROR, "scanner_disagrees", "error", "%s", err.text, NULL);
        vs_reply_error(rq, VS_WERR_BAD_JSON, "invalid JSON", NULL);
        return;
    }
    switch (rq->type) {
    case VS_MSG_REGISTER:
        vs_register_handle(rq, root);
        break;
    case VS_MSG_PQ_HANDSHAKE:
        vs_pq_handshake(rq, root);
        break;
    case VS_MSG_DISCOVER:
    case VS_MSG_SUBSCRIBE:
    case VS_MSG_UNSUBSCRIBE:
    case VS_MSG_JOIN:
    case VS_MSG_LEAVE:
        if (!rq->c->user) {
            vs_reply_error(rq, VS_WERR_NOT_REGISTERED, "register first", NULL);
        } else if (rq->type == VS_MSG_DISCOVER) {
            discover(rq, root);
        } else if (rq->type == VS_MSG_JOIN) {
            size_t rlen;
            const char *name = room_arg(rq, root, &rlen);
            if (name)
                join_room(rq, name, rlen);
        } else if (rq->type == VS_MSG_LEAVE) {
            leave_room(rq, root);
        } else {
            subscribe(rq, root, rq->type == VS_MSG_SUBSCRIBE);
        }
        break;
    default:
        break;
    }
    json_decref(root);
}

void vs_session_on_text(vs_conn_t *c, uint8_t *data, size_t len)
{
    vs_session_on_text_at(c, data, len, uv_hrtime());
}

void vs_session_on_text_at(vs_conn_t *c, uint8_t *data, size_t len, uint64_t t0)
{
    vs_req_t rq = {c, VS_MSG_UNKNOWN, NULL, 0, t0, (const char *)data, len};
    vs_envelope_t env;
    const vs_config_t *cfg = c->srv->cfg;
    int rc = vs_envelope_scan((const char *)data, len, (size_t)cfg->max_json_depth, &env);
    if (rc == VS_EINVAL) {
        vs_reply_error(&rq, VS_WERR_BAD_JSON, "the message is not valid JSON", NULL);
        return;
    }
    if (rc != 0) {
        char msg[96];
        if (rc == VS_EDEPTH)
            snprintf(msg, sizeof msg, "the message is nested more than %d levels deep",
                     cfg->max_json_depth);
        else
            snprintf(msg, sizeof msg, "the message must be a JSON object");
        vs_reply_error(&rq, VS_WERR_BAD_REQUEST, msg, NULL);
        return;
    }
    if (env.id_kind == VS_JSON_OTHER) {
        vs_reply_error(&rq, VS_WERR_BAD_REQUEST, "\"id\" must be a string", NULL);
        return;
    }
    if (env.id_kind == VS_JSON_STRING) {
        char idbuf[4 * MAX_ID_CHARS + 1];
        size_t idlen;
        if (raw_string(env.id, env.id_escaped, idbuf, sizeof idbuf, &idlen) != 0 ||
            utf8_chars(idbuf, idlen) > MAX_ID_CHARS) {
            vs_reply_error(&rq, VS_WERR_BAD_REQUEST, "\"id\" must be at most 64 characters", NULL);
            return;
        }
        rq.id = env.id.p;
        rq.id_len = env.id.len;
    }
    if (env.members > (size_t)cfg->max_json_members) {
        char msg[96];
        snprintf(msg, sizeof msg, "the message has more than %d members", cfg->max_json_members);
        vs_reply_error(&rq, VS_WERR_BAD_REQUEST, msg, NULL);
        return;
    }
    if (env.type_kind != VS_JSON_STRING) {
        vs_reply_error(&rq, VS_WERR_BAD_REQUEST, "\"type\" must be a string", NULL);
        return;
    }
    char tbuf[32];
    size_t tlen;
    if (raw_string(env.type, env.type_escaped, tbuf, sizeof tbuf, &tlen) == 0)
        rq.type = vs_msg_type_from((vs_slice_t){tbuf, tlen});
    if (cfg->pq_required && !c->pq && rq.type != VS_MSG_PING && rq.type != VS_MSG_PQ_HANDSHAKE) {
        vs_reply_error(&rq, VS_WERR_PQ_REQUIRED,
                       "this server requires a post-quantum session: send pq_handshake first",
                       NULL);
        return;
    }
    switch (rq.type) {
    case VS_MSG_UNKNOWN:
        vs_reply_error(&rq, VS_WERR_UNKNOWN_TYPE, "unknown message type", NULL);
        return;
    case VS_MSG_PING: {
        vs_buf_t *b = &c->srv->scratch;
        b->len = 0;
        vs_buf_puts(b, "{\"type\":\"pong\"");
        vs_reply_finish(&rq, b);
        return;
    }
    case VS_MSG_ROOM_MESSAGE:
        room_message(&rq, &env, (const char *)data, len);
        return;
    default:
        if (vs_msg_is_relay(rq.type))
            relay(&rq, &env, (const char *)data, len);
        else
            handle_json(&rq, (const char *)data, len);
    }
}
