/* requests.c: requests to the server, each with an id ("c1", "c2", ...) echoed in its reply, a
 * deadline on one shared libuv timer, and a callback called exactly once; plus the set of
 * presence subscriptions the session restores after every reconnect.
 *
 * Requests the server does not answer on success (subscribe's last presence, unsubscribe, a
 * relay) are followed by a ping carrying the same id: the server answers a connection's
 * messages in order, so its pong proves that no error for the request is coming. */
#include "client_impl.h"

#include "transport/ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 100

vl_request_t *vl_req_new(volli_client_t *c, int kind, volli_result_cb cb, void *ud)
{
    vl_request_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->kind = kind;
    r->cb = cb;
    r->ud = ud;
    if (kind != R_HELLO)
        snprintf(r->id, sizeof r->id, "c%llu", (unsigned long long)++c->next_id);
    return r;
}

void vl_req_free(vl_request_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nids; i++)
        free(r->ids[i]);
    free(r->ids);
    free(r);
}

static void rearm(volli_client_t *c)
{
    if (c->destroyed)
        return;
    if (!c->req_head) {
        uv_timer_stop(&c->req_timer);
        return;
    }
    uint64_t now = uv_now(c->loop), d = c->req_head->deadline;
    uv_timer_start(&c->req_timer, vl_req_timer_cb, d > now ? d - now : 0, 0);
}

void vl_req_add(volli_client_t *c, vl_request_t *r)
{
    r->deadline = uv_now(c->loop) + c->request_timeout_ms;
    r->next = NULL;
    r->prev = c->req_tail;
    if (c->req_tail)
        c->req_tail->next = r;
    else
        c->req_head = r;
    c->req_tail = r;
    if (c->req_head == r)
        rearm(c);
}

vl_request_t *vl_req_find(volli_client_t *c, const char *id)
{
    if (!id || !*id)
        return NULL;
    for (vl_request_t *r = c->req_head; r; r = r->next) {
        if (strcmp(r->id, id) == 0)
            return r;
    }
    return NULL;
}

static void unlink_req(volli_client_t *c, vl_request_t *r)
{
    int was_head = c->req_head == r;
    if (r->prev)
        r->prev->next = r->next;
    else
        c->req_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        c->req_tail = r->prev;
    r->next = r->prev = NULL;
    if (was_head)
        rearm(c);
}

static int subs_index(const volli_client_t *c, const char *id)
{
    for (size_t i = 0; i < c->nsubs; i++) {
        if (strcmp(c->subs[i], id) == 0)
            return (int)i;
    }
    return -1;
}

/* Moves r's ids into the set (skipping ones already there). Returns 0 or VOLLI_ENOMEM (the
 * ids that did not fit stay out: the server has them until the next reconnect). */
static int subs_add(volli_client_t *c, vl_request_t *r)
{
    for (size_t i = 0; i < r->nids; i++) {
        if (!r->ids[i] || subs_index(c, r->ids[i]) >= 0)
            continue;
        if (c->nsubs == c->subs_cap) {
            size_t cap = c->subs_cap ? c->subs_cap * 2 : 16;
            char **grown = realloc(c->subs, cap * sizeof *grown);
            if (!grown)
                return VOLLI_ENOMEM;
            c->subs = grown;
            c->subs_cap = cap;
        }
        c->subs[c->nsubs++] = r->ids[i];
        r->ids[i] = NULL;
    }
    return 0;
}

static void subs_remove(volli_client_t *c, const vl_request_t *r)
{
    for (size_t i = 0; i < r->nids; i++) {
        int k = subs_index(c, r->ids[i]);
        if (k < 0)
            continue;
        free(c->subs[k]);
        c->subs[k] = c->subs[--c->nsubs];
    }
}

void vl_subs_free(volli_client_t *c)
{
    for (size_t i = 0; i < c->nsubs; i++)
        free(c->subs[i]);
    free(c->subs);
    c->subs = NULL;
    c->nsubs = c->subs_cap = 0;
}

void vl_req_complete(volli_client_t *c, vl_request_t *r, int status, const char *code,
                     const char *json, size_t len, json_t *root)
{
    unlink_req(c, r);
    if (r->kind <= R_PQ) {
        vl_session_request_done(c, r, status, code, root);
        vl_req_free(r);
        return;
    }
    if (status == 0 && r->kind == R_SUBSCRIBE && subs_add(c, r) != 0)
        vl_log(&c->log, VL_LOG_ERROR, "out of memory: a subscription will not be restored");
    else if (status == 0 && r->kind == R_UNSUBSCRIBE)
        subs_remove(c, r);
    if (r->cb) {
        vl_enter(c);
        r->cb(c, status, code, json, json ? len : 0, r->ud);
        vl_leave(c);
    }
    vl_req_free(r);
}

void vl_req_fail_all(volli_client_t *c, int status)
{
    vl_request_t *r;
    while ((r = c->req_head) != NULL)
        vl_req_complete(c, r, status, NULL, NULL, 0, NULL);
}

void vl_req_timer_cb(uv_timer_t *t)
{
    volli_client_t *c = t->data;
    vl_enter(c);
    uint64_t now = uv_now(c->loop);
    vl_request_t *r;
    while ((r = c->req_head) != NULL && r->deadline <= now && !c->destroyed)
        vl_req_complete(c, r, VOLLI_ETIMEDOUT, NULL, NULL, 0, NULL);
    vl_leave(c);
}

/* ---- sending ---- */

static int ready(const volli_client_t *c, int need_registered)
{
    if (need_registered && c->anonymous)
        return VOLLI_EINVAL; /* no identity: only ping is possible */
    if (c->state == C_REGISTERED ||
        (!need_registered && (c->state == C_REGISTERING || c->state == C_OPEN)))
        return 0;
    return VOLLI_ENOTCONN;
}

/* Sends text (and the barrier ping with r's id when ping is set) in one write and makes r
 * pending. On error r is left to the caller. */
static int send_with(volli_client_t *c, vl_request_t *r, const char *text, size_t len, int ping)
{
    char pingbuf[64];
    int pn = snprintf(pingbuf, sizeof pingbuf, "{\"type\":\"ping\",\"id\":\"%s\"}", r->id);
    const char *texts[2] = {text, pingbuf};
    size_t lens[2] = {len, (size_t)pn};
    int rc = vl_send(c, texts, lens, ping ? 2 : 1);
    if (rc != 0)
        return rc;
    vl_req_add(c, r);
    return 0;
}

/* Starts a message: {"type":TYPE,"id":ID */
static void msg_start(vl_buf_t *b, const char *type, const vl_request_t *r)
{
    vl_buf_raw(b, "{\"type\":", 8);
    vl_buf_str(b, type);
    vl_buf_raw(b, ",\"id\":", 6);
    vl_buf_str(b, r->id);
}

/* Appends ,"NAME":"value" */
static void msg_member(vl_buf_t *b, const char *name, const char *value)
{
    vl_buf_raw(b, ",", 1);
    vl_buf_str(b, name);
    vl_buf_raw(b, ":", 1);
    vl_buf_str(b, value);
}

/* Appends ,"userIds":[...] */
static void msg_ids(vl_buf_t *b, const char *const *ids, size_t n)
{
    vl_buf_raw(b, ",\"userIds\":[", 12);
    for (size_t i = 0; i < n; i++) {
        if (i)
            vl_buf_raw(b, ",", 1);
        vl_buf_str(b, ids[i]);
    }
    vl_buf_raw(b, "]", 1);
}

/* Closes the message in b, sends it and frees b. */
static int send_buf(volli_client_t *c, vl_request_t *r, vl_buf_t *b, int ping)
{
    vl_buf_raw(b, "}", 1);
    int rc = b->oom ? VOLLI_ENOMEM : send_with(c, r, b->p, b->len, ping);
    vl_buf_free(b);
    return rc;
}

static int valid_string(const char *s)
{
    return s && vs_utf8_valid((const uint8_t *)s, strlen(s));
}

/* Ensures c->ws is open before anything is built (saves work, gives ENOTCONN first). */
VOLLI_PUBLIC int volli_ping(volli_client_t *c, volli_result_cb cb, void *ud)
{
    if (!c)
        return VOLLI_EINVAL;
    int rc = ready(c, 0);
    if (rc != 0)
        return rc;
    vl_request_t *r = vl_req_new(c, R_PING, cb, ud);
    if (!r)
        return VOLLI_ENOMEM;
    char text[64];
    int n = snprintf(text, sizeof text, "{\"type\":\"ping\",\"id\":\"%s\"}", r->id);
    rc = send_with(c, r, text, (size_t)n, 0);
    if (rc != 0)
        vl_req_free(r);
    return rc;
}

VOLLI_PUBLIC int volli_discover(volli_client_t *c, const char *const *ids, size_t n,
                                volli_result_cb cb, void *ud)
{
    if (!c || !ids || n == 0 || n > MAX_BATCH)
        return VOLLI_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!valid_string(ids[i]))
            return VOLLI_EINVAL;
    }
    int rc = ready(c, 1);
    if (rc != 0)
        return rc;
    vl_request_t *r = vl_req_new(c, R_DISCOVER, cb, ud);
    if (!r)
        return VOLLI_ENOMEM;
    vl_buf_t b = {0};
    msg_start(&b, "discover", r);
    if (n == 1)
        msg_member(&b, "userId", ids[0]);
    else
        msg_ids(&b, ids, n);
    rc = send_buf(c, r, &b, 0);
    if (rc != 0)
        vl_req_free(r);
    return rc;
}

static int sub_request(volli_client_t *c, int kind, const char *const *ids, size_t n,
                       volli_result_cb cb, void *ud)
{
    if (!c || !ids || n == 0 || n > MAX_BATCH)
        return VOLLI_EINVAL;
    char folded[VS_USERID_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        if (!ids[i] || vs_userid_fold(ids[i], strlen(ids[i]), folded) != 0)
            return VOLLI_EINVAL;
    }
    int rc = ready(c, 1);
    if (rc != 0)
        return rc;
    vl_request_t *r = vl_req_new(c, kind, cb, ud);
    if (!r || !(r->ids = calloc(n, sizeof *r->ids))) {
        vl_req_free(r);
        return VOLLI_ENOMEM;
    }
    r->nids = n;
    for (size_t i = 0; i < n; i++) {
        vs_userid_fold(ids[i], strlen(ids[i]), folded);
        if (!(r->ids[i] = vl_strdup(folded))) {
            vl_req_free(r);
            return VOLLI_ENOMEM;
        }
    }
    vl_buf_t b = {0};
    msg_start(&b, kind == R_SUBSCRIBE ? "subscribe" : "unsubscribe", r);
    msg_ids(&b, (const char *const *)r->ids, n);
    rc = send_buf(c, r, &b, 1);
    if (rc != 0)
        vl_req_free(r);
    return rc;
}

VOLLI_PUBLIC int volli_subscribe(volli_client_t *c, const char *const *ids, size_t n,
                                 volli_result_cb cb, void *ud)
{
    return sub_request(c, R_SUBSCRIBE, ids, n, cb, ud);
}

VOLLI_PUBLIC int volli_unsubscribe(volli_client_t *c, const char *const *ids, size_t n,
                                   volli_result_cb cb, void *ud)
{
    return sub_request(c, R_UNSUBSCRIBE, ids, n, cb, ud);
}

int vl_restore_subscriptions(volli_client_t *c)
{
    for (size_t off = 0; off < c->nsubs; off += MAX_BATCH) {
        size_t n = c->nsubs - off < MAX_BATCH ? c->nsubs - off : MAX_BATCH;
        vl_request_t *r = vl_req_new(c, R_RESTORE, NULL, NULL);
        if (!r)
            return VOLLI_ENOMEM;
        vl_buf_t b = {0};
        msg_start(&b, "subscribe", r);
        msg_ids(&b, (const char *const *)c->subs + off, n);
        int rc = send_buf(c, r, &b, 1);
        if (rc != 0) {
            vl_req_free(r);
            return rc;
        }
    }
    return 0;
}

/* The payload member of each relay type; NULL: unknown type. */
static const char *payload_member(const char *type)
{
    static const char *const map[][2] = {{"offer", "offer"},
                                         {"answer", "answer"},
                                         {"ice-candidate", "candidate"},
                                         {"bye", "reason"}};
    for (size_t i = 0; type && i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(type, map[i][0]) == 0)
            return map[i][1];
    }
    return NULL;
}

VOLLI_PUBLIC int volli_send(volli_client_t *c, const char *to, const char *type,
                            const char *payload_json, volli_result_cb cb, void *ud)
{
    const char *member = payload_member(type);
    if (!c || !member || !valid_string(to) || (!payload_json && strcmp(type, "bye") != 0))
        return VOLLI_EINVAL;
    size_t plen = payload_json ? strlen(payload_json) : 0;
    if (payload_json) {
        /* The text is spliced in verbatim (the peer gets it byte for byte), so it must be one
           JSON value by the same rules the server applies. */
        json_error_t err;
        json_t *v = json_loadb(payload_json, plen, JSON_DECODE_ANY | VL_JSON_FLAGS, &err);
        if (!v)
            return json_error_code(&err) == json_error_out_of_memory ? VOLLI_ENOMEM : VOLLI_EINVAL;
        json_decref(v);
    }
    int rc = ready(c, 1);
    if (rc != 0)
        return rc;
    vl_request_t *r = vl_req_new(c, R_SEND, cb, ud);
    if (!r)
        return VOLLI_ENOMEM;
    vl_buf_t b = {0};
    msg_start(&b, type, r);
    msg_member(&b, "to", to);
    if (payload_json) {
        vl_buf_raw(&b, ",", 1);
        vl_buf_str(&b, member);
        vl_buf_raw(&b, ":", 1);
        vl_buf_raw(&b, payload_json, plen); /* verbatim: the peer gets these bytes */
    }
    rc = send_buf(c, r, &b, 1);
    if (rc != 0)
        vl_req_free(r);
    return rc;
}
