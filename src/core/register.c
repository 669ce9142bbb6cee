/* register.c: the register request. A new key binding is made durable by a group commit: the
 * registers that arrive in one loop turn are written in one transaction on a worker thread,
 * and `registered` is sent only after it committed. Re-registering a known key needs no write. */
#include "cluster/cluster.h"
#include "common/alloc.h"
#include "common/base64.h"
#include "common/error.h"
#include "common/log.h"
#include "core/server_impl.h"
#include "core/session.h"
#include "crypto/sign.h"
#include "protocol/userid.h"

#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 1024

struct vs_pending_reg {
    vs_pending_reg_t *next;
    vs_conn_t *conn; /* NULL once the connection went away */
    vs_msg_type_t type;
    uint64_t t0;
    char *id;        /* raw request id, owned, or NULL */
    size_t id_len;
    uint8_t key[32];
    char uid[VS_USERID_MAX + 1];
};

void vs_register_online(const vs_req_t *rq, const char *uid, const uint8_t *key, int via_token)
{
    vs_conn_t *c = rq->c;
    vs_server_t *s = c->srv;
    void *replaced = NULL;
    c->user = vs_directory_set_online(s->dir, uid, strlen(uid), key, c, &replaced);
    if (replaced) {
        vs_conn_t *old = replaced;
        vs_req_t orq = {old, VS_MSG_UNKNOWN, NULL, 0, rq->t0, NULL, 0};
        old->user = NULL; /* it no longer speaks for uid: its close must not show it offline */
        vs_reply_error(&orq, VS_WERR_REPLACED, "this user id registered on a newer connection",
                       NULL);
        vs_conn_close(old, 4000, "replaced");
    }
    VS_LOG(VS_LOG_DEBUG, "registered", "user", "%s", uid, NULL);
    /* In a cluster the answer waits until the registration is ordered in Redis, so that a
     * peer told "registered" finds the user online from every node. */
    if (s->cluster && c->user && vs_cluster_user_online(s->cluster, c, rq, via_token) == 1)
        return;
    vs_register_reply(rq, uid, via_token);
}

void vs_register_reply(const vs_req_t *rq, const char *uid, int via_token)
{
    vs_buf_t *b = &rq->c->srv->scratch;
    b->len = 0;
    vs_buf_printf(b, "{\"type\":\"registered\",\"userId\":\"%s\"", uid);
    if (via_token)
        vs_buf_puts(b, ",\"via\":\"token\"");
    vs_reply_finish(rq, b);
}

/* Charges one registration to the connection's source address. */
static void charge(vs_conn_t *c)
{
    double rate = c->srv->cfg->register_rate;
    if (c->ip)
        vs_bucket_take(&c->ip->registers, rate / 60.0, rate, 1, vs_server_now(c->srv));
}

/* A failed attempt: charged (guessing keys or ids is what the limit is for), then answered. */
static void refuse(const vs_req_t *rq, vs_wire_error_t code, const char *message)
{
    charge(rq->c);
    vs_reply_error(rq, code, message, NULL);
}

void vs_register_handle(const vs_req_t *rq, json_t *root)
{
    vs_conn_t *c = rq->c;
    vs_server_t *s = c->srv;
    const char *uid_in, *pk, *sig;
    size_t uid_len, pk_len, sig_len;
    json_error_t jerr;
    if (json_unpack_ex(root, &jerr, 0, "{s:s%, s:s%, s:s%}", "userId", &uid_in, &uid_len,
                       "publicKey", &pk, &pk_len, "signature", &sig, &sig_len) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "register needs string userId, publicKey, signature: %s",
                 jerr.text);
        vs_reply_error(rq, VS_WERR_BAD_REQUEST, msg, NULL);
        return;
    }
    /* The token proved the id: a register names it again (answered, nothing bound: binding a
     * key takes a key-registered connection) or asks for another one (refused). */
    if (c->token) {
        char tid[VS_USERID_MAX + 1];
        const char *me = c->user ? c->user->id : c->token->identity;
        if (vs_userid_fold(uid_in, uid_len, tid) != 0)
            vs_reply_error(rq, VS_WERR_INVALID_USER_ID,
                           "\"userId\" must be 1 to 128 characters of [a-z0-9._+@-]", NULL);
        else if (strcmp(tid, me) != 0)
            vs_reply_error(rq, VS_WERR_ALREADY_REGISTERED,
                           "this connection is registered as another user id (by its token)",
                           NULL);
        else
            vs_register_online(rq, me, NULL, 1);
        return;
    }
    /* Failed attempts and new ids are rationed per address; a known key coming back (after a
     * server restart, say) is not. */
    double rate = s->cfg->register_rate;
    if (c->ip && !vs_bucket_ready(&c->ip->registers, rate / 60.0, rate, vs_server_now(s))) {
        s->metrics.rate_limited[VS_LIMIT_REGISTER]++;
        char msg[96];
        snprintf(msg, sizeof msg, "too many registrations: the limit is %d per minute per address",
                 s->cfg->register_rate);
        vs_reply_error(rq, VS_WERR_RATE_LIMITED, msg, NULL);
        return;
    }
    char uid[VS_USERID_MAX + 1];
    if (vs_userid_fold(uid_in, uid_len, uid) != 0) {
        refuse(rq, VS_WERR_INVALID_USER_ID,
               "\"userId\" must be 1 to 128 characters of [a-z0-9._+@-]");
        return;
    }
    if (c->user && strcmp(c->user->id, uid) != 0) {
        vs_reply_error(rq, VS_WERR_ALREADY_REGISTERED,
                       "this connection is registered as another user id", NULL);
        return;
    }
    uint8_t key[32], signature[64];
    if (vs_base64_decode(pk, pk_len, key, sizeof key) != 32) {
        refuse(rq, VS_WERR_BAD_SIGNATURE,
               "\"publicKey\" must be standard base64 of a 32-byte Ed25519 key");
        return;
    }
    if (vs_base64_decode(sig, sig_len, signature, sizeof signature) != 64) {
        refuse(rq, VS_WERR_BAD_SIGNATURE,
               "\"signature\" must be standard base64 of a 64-byte Ed25519 signature");
        return;
    }
    char msg[256];
    int mlen = vs_register_message(c->nonce, uid, msg, sizeof msg);
    if (mlen < 0 || vs_ed25519_verify(key, (const uint8_t *)msg, (size_t)mlen, signature) != 0) {
        refuse(rq, VS_WERR_BAD_SIGNATURE, "the signature does not verify");
        return;
    }

    /* The bound key, when already known, decides without a write. */
    uint8_t bound[32];
    int known = 0;
    vs_user_t *u = vs_directory_find(s->dir, uid, strlen(uid));
    if (vs_user_online(u) && u->has_key) {
        memcpy(bound, u->key, 32);
        known = 1;
    } else if (!s->store_blocks) {
        /* (A store that may block is not read here: the commit on the worker decides, as
         * binding an id already bound to the same key writes nothing.) */
        int rc = vs_store_get_key(&s->store, uid, bound);
        if (rc == 0) {
            known = 1;
        } else if (rc != VS_ENOTFOUND) {
            VS_LOG(VS_LOG_ERROR, "store_read_failed", "error", "%s", vs_strerror(rc), NULL);
            vs_reply_error(rq, VS_WERR_UNAVAILABLE, "the directory is unavailable; try again",
                           NULL);
            return;
        }
    }
    if (known) {
        if (memcmp(bound, key, 32) != 0)
            refuse(rq, VS_WERR_KEY_MISMATCH, "this user id is bound to another key");
        else
            vs_register_online(rq, uid, key, 0);
        return;
    }

    if (!s->store_blocks)
        charge(c); /* a new binding */
    vs_pending_reg_t *p = vs_calloc(1, sizeof *p);
    p->conn = c;
    p->type = rq->type;
    p->t0 = rq->t0;
    if (rq->id) {
        p->id = vs_strndup(rq->id, rq->id_len);
        p->id_len = rq->id_len;
    }
    memcpy(p->key, key, 32);
    memcpy(p->uid, uid, strlen(uid) + 1);
    c->reg = p;
    vs_regq_t *q = &s->regq;
    if (q->tail)
        q->tail->next = p;
    else
        q->head = p;
    q->tail = p;
    q->n++;
}

void vs_session_cancel_register(vs_conn_t *c)
{
    if (c->reg)
        c->reg->conn = NULL;
}

static void work_cb(uv_work_t *w)
{
    vs_server_t *s = w->data;
    s->regq.batch_rc = vs_store_bind_keys(&s->store, s->regq.items, s->regq.batch_n);
}

static void after_cb(uv_work_t *w, int status)
{
    vs_server_t *s = w->data;
    vs_regq_t *q = &s->regq;
    int rc = status < 0 ? VS_ESTORE : q->batch_rc;
    s->metrics.store_batches++;
    if (rc != 0) {
        s->metrics.store_failures++;
        VS_LOG(VS_LOG_ERROR, "store_commit_failed", "error", "%s", vs_strerror(rc), "batch", "%zu",
               q->batch_n, NULL);
    }
    size_t i = 0;
    for (vs_pending_reg_t *p = q->batch, *next; p; p = next, i++) {
        next = p->next;
        vs_binding_t *b = &q->items[i];
        if (rc == 0 && b->created) {
            s->registered_users++;
            s->metrics.store_bindings++;
        }
        vs_conn_t *c = p->conn;
        /* Without a read first (store_blocks), only a new binding or a refused key costs. */
        if (c && s->store_blocks && rc == 0 && (b->created || b->result == VS_EMISMATCH))
            charge(c);
        if (c) {
            c->reg = NULL;
            vs_req_t rq = {c, p->type, p->id, p->id_len, p->t0, NULL, 0};
            if (rc != 0)
                vs_reply_error(&rq, VS_WERR_UNAVAILABLE,
                               "the directory could not store the key; try again", NULL);
            else if (b->result == VS_EMISMATCH)
                vs_reply_error(&rq, VS_WERR_KEY_MISMATCH, "this user id is bound to another key",
                               NULL);
            else if (b->result != 0)
                vs_reply_error(&rq, VS_WERR_INTERNAL, "the key binding was refused", NULL);
            else if (c->user && strcmp(c->user->id, p->uid) != 0)
                vs_reply_error(&rq, VS_WERR_ALREADY_REGISTERED,
                               "this connection is registered as another user id", NULL);
            else
                vs_register_online(&rq, p->uid, p->key, 0);
            vs_conn_resume(c);
        }
        free(p->id);
        free(p);
    }
    free(q->items);
    q->items = NULL;
    q->batch = NULL;
    q->batch_n = 0;
    q->busy = 0;
    vs_register_submit(s);
}

void vs_register_submit(vs_server_t *s)
{
    vs_regq_t *q = &s->regq;
    if (q->busy || !q->head)
        return;
    size_t n = 0;
    vs_pending_reg_t *last = NULL;
    for (vs_pending_reg_t *p = q->head; p && n < MAX_BATCH; p = p->next, n++)
        last = p;
    q->batch = q->head;
    q->head = last->next;
    if (!q->head)
        q->tail = NULL;
    last->next = NULL;
    q->n -= n;
    q->batch_n = n;
    q->items = vs_calloc(n, sizeof *q->items);
    size_t i = 0;
    for (vs_pending_reg_t *p = q->batch; p; p = p->next, i++) {
        q->items[i].user_id = p->uid;
        memcpy(q->items[i].key, p->key, 32);
    }
    q->busy = 1;
    q->work.data = s;
    if (uv_queue_work(&s->loop, &q->work, work_cb, after_cb) != 0) {
        q->busy = 0;
        after_cb(&q->work, VS_ESTORE);
    }
}
