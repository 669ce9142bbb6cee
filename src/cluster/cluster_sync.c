/* cluster_sync.c: the shared directory in Redis. Every change to it is a Lua script, so that
 * the change, its sequence number (vs:seq) and its event on the event channel happen at once
 * and in one order that every node hears. Keys (in the configured database):
 *   vs:loc          hash  user id -> "node|serial|key" (key: base64, or "-" for a token)
 *   vs:seq          the last sequence number of a presence change
 *   vs:node:N       the heartbeat of node N, expiring after the node timeout
 *   vs:nodes        set of the nodes that ever beat (pruned when reaped)
 *   vs:nu:N         set of user ids N registered (for reaping N), expires unless N beats
 *   vs:room:R       hash  user id -> "node|serial|hidden"
 *   vs:nr:N         set of "room|user" memberships N made, expires unless N beats
 * Events: on|seq|uid|node|serial|key, off|seq|uid|node|serial|key, hb|node|t, dead|node,
 * rj|room|uid|node|serial|hidden, rl|room|uid|node|serial|hidden. */
#include "cluster/cluster_impl.h"

#include "common/alloc.h"
#include "common/base64.h"
#include "common/error.h"
#include "common/log.h"
#include "core/server_impl.h"
#include "core/session.h"
#include "protocol/userid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ARGV[1] is always the event channel. */
const char *const vs_cl_scripts[SC_COUNT] = {
    [SC_REG] = "redis.call('HSET','vs:loc',ARGV[2],ARGV[3])\n"
               "redis.call('SADD','vs:nu:'..ARGV[4],ARGV[2])\n"
               "local seq=redis.call('INCR','vs:seq')\n"
               "redis.call('PUBLISH',ARGV[1],'on|'..seq..'|'..ARGV[2]..'|'..ARGV[3])\n"
               "return seq\n",
    /* Republishing after an outage yields to a newer registration on a live node. */
    [SC_REPUB] =
        "local cur=redis.call('HGET','vs:loc',ARGV[2])\n"
        "if cur==ARGV[3] then return {tonumber(redis.call('GET','vs:seq') or '0'),''} end\n"
        "if cur then local n=string.match(cur,'^([^|]+)|')\n"
        " if n~=ARGV[4] and redis.call('EXISTS','vs:node:'..n)==1 then return {-1,cur} end\n"
        "end\n"
        "redis.call('HSET','vs:loc',ARGV[2],ARGV[3])\n"
        "redis.call('SADD','vs:nu:'..ARGV[4],ARGV[2])\n"
        "local seq=redis.call('INCR','vs:seq')\n"
        "redis.call('PUBLISH',ARGV[1],'on|'..seq..'|'..ARGV[2]..'|'..ARGV[3])\n"
        "return {seq,''}\n",
    [SC_UNREG] = "if redis.call('HGET','vs:loc',ARGV[2])~=ARGV[3] then return 0 end\n"
                 "redis.call('HDEL','vs:loc',ARGV[2])\n"
                 "redis.call('SREM','vs:nu:'..ARGV[4],ARGV[2])\n"
                 "local seq=redis.call('INCR','vs:seq')\n"
                 "redis.call('PUBLISH',ARGV[1],'off|'..seq..'|'..ARGV[2]..'|'..ARGV[3])\n"
                 "return 1\n",
    [SC_HB] = "redis.call('SET','vs:node:'..ARGV[2],ARGV[5],'PX',ARGV[3])\n"
              "redis.call('SADD','vs:nodes',ARGV[2])\n"
              "redis.call('EXPIRE','vs:nu:'..ARGV[2],ARGV[4])\n"
              "redis.call('EXPIRE','vs:nr:'..ARGV[2],ARGV[4])\n"
              "redis.call('PUBLISH',ARGV[1],'hb|'..ARGV[2]..'|'..ARGV[5])\n"
              /* The live nodes whose server identity key differs from this one's; entries of
               * nodes that no longer beat are dropped, so the hash holds live nodes only. */
              "redis.call('HSET','vs:serverkey',ARGV[2],ARGV[6])\n"
              "local d=0\n"
              "local all=redis.call('HGETALL','vs:serverkey')\n"
              "for i=1,#all,2 do\n"
              " if redis.call('EXISTS','vs:node:'..all[i])==0 then\n"
              "  redis.call('HDEL','vs:serverkey',all[i])\n"
              " elseif all[i+1]~=ARGV[6] then d=d+1 end\n"
              "end\n"
              "return d\n",
    /* ARGV[3] '1': a node leaving on purpose (its heartbeat key is still there). */
    [SC_REAP] =
        "if ARGV[3]~='1' and redis.call('EXISTS','vs:node:'..ARGV[2])==1 then return -1 end\n"
        "redis.call('DEL','vs:node:'..ARGV[2])\n"
        "local p=ARGV[2]..'|'\n"
        "local n=0\n"
        "for _,u in ipairs(redis.call('SMEMBERS','vs:nu:'..ARGV[2])) do\n"
        " local v=redis.call('HGET','vs:loc',u)\n"
        " if v and string.sub(v,1,#p)==p then\n"
        "  redis.call('HDEL','vs:loc',u)\n"
        "  local seq=redis.call('INCR','vs:seq')\n"
        "  redis.call('PUBLISH',ARGV[1],'off|'..seq..'|'..u..'|'..v)\n"
        "  n=n+1\n"
        " end\n"
        "end\n"
        "redis.call('DEL','vs:nu:'..ARGV[2])\n"
        "for _,m in ipairs(redis.call('SMEMBERS','vs:nr:'..ARGV[2])) do\n"
        " local i=string.find(m,'|',1,true)\n"
        " if i then\n"
        "  local room=string.sub(m,1,i-1) local u=string.sub(m,i+1)\n"
        "  local v=redis.call('HGET','vs:room:'..room,u)\n"
        "  if v and string.sub(v,1,#p)==p then\n"
        "   redis.call('HDEL','vs:room:'..room,u)\n"
        "   redis.call('PUBLISH',ARGV[1],'rl|'..room..'|'..u..'|'..v)\n"
        "  end\n"
        " end\n"
        "end\n"
        "redis.call('DEL','vs:nr:'..ARGV[2])\n"
        "redis.call('SREM','vs:nodes',ARGV[2])\n"
        "redis.call('HDEL','vs:serverkey',ARGV[2])\n"
        "redis.call('PUBLISH',ARGV[1],'dead|'..ARGV[2])\n"
        "return n\n",
    /* Members of nodes that no longer beat are dropped before counting; ARGV[7] '1' skips
     * the limit (a membership coming back after an outage). */
    [SC_JOIN] = "local k='vs:room:'..ARGV[2]\n"
                "local all=redis.call('HGETALL',k)\n"
                "local n=0\n"
                "for i=1,#all,2 do\n"
                " local nd=string.match(all[i+1],'^([^|]+)|')\n"
                " if nd~=ARGV[5] and redis.call('EXISTS','vs:node:'..nd)==0 then\n"
                "  redis.call('HDEL',k,all[i])\n"
                "  redis.call('PUBLISH',ARGV[1],'rl|'..ARGV[2]..'|'..all[i]..'|'..all[i+1])\n"
                "  all[i+1]=false\n"
                " elseif all[i]~=ARGV[3] then n=n+1 end\n"
                "end\n"
                "local cur=redis.call('HGET',k,ARGV[3])\n"
                "if ARGV[7]~='1' and n>=tonumber(ARGV[6]) then return {'full'} end\n"
                "redis.call('HSET',k,ARGV[3],ARGV[4])\n"
                "redis.call('SADD','vs:nr:'..ARGV[5],ARGV[2]..'|'..ARGV[3])\n"
                "if cur~=ARGV[4] then\n"
                " redis.call('PUBLISH',ARGV[1],'rj|'..ARGV[2]..'|'..ARGV[3]..'|'..ARGV[4])\n"
                "end\n"
                "local out={'ok'}\n"
                "for i=1,#all,2 do\n"
                " if all[i+1] and all[i]~=ARGV[3] and string.sub(all[i+1],-1)~='1' then\n"
                "  out[#out+1]=all[i]\n"
                " end\n"
                "end\n"
                "return out\n",
    [SC_LEAVE] = "local k='vs:room:'..ARGV[2]\n"
                 "if redis.call('HGET',k,ARGV[3])~=ARGV[4] then return 0 end\n"
                 "redis.call('HDEL',k,ARGV[3])\n"
                 "redis.call('SREM','vs:nr:'..ARGV[5],ARGV[2]..'|'..ARGV[3])\n"
                 "redis.call('PUBLISH',ARGV[1],'rl|'..ARGV[2]..'|'..ARGV[3]..'|'..ARGV[4])\n"
                 "return 1\n",
    /* Entries of nodes that no longer beat are removed (and announced) first. */
    [SC_SNAP] = "local live={}\n"
                "local lset={}\n"
                "lset[ARGV[2]]=true\n"
                "for _,n in ipairs(redis.call('SMEMBERS','vs:nodes')) do\n"
                " if redis.call('EXISTS','vs:node:'..n)==1 then live[#live+1]=n lset[n]=true end\n"
                "end\n"
                "local loc=redis.call('HGETALL','vs:loc')\n"
                "local keep={}\n"
                "for i=1,#loc,2 do\n"
                " local nd=string.match(loc[i+1],'^([^|]+)|')\n"
                " if lset[nd] then keep[#keep+1]=loc[i] keep[#keep+1]=loc[i+1]\n"
                " else\n"
                "  redis.call('HDEL','vs:loc',loc[i])\n"
                "  local seq=redis.call('INCR','vs:seq')\n"
                "  redis.call('PUBLISH',ARGV[1],'off|'..seq..'|'..loc[i]..'|'..loc[i+1])\n"
                " end\n"
                "end\n"
                "local mine={}\n"
                "for _,m in ipairs(redis.call('SMEMBERS','vs:nr:'..ARGV[2])) do\n"
                " local i=string.find(m,'|',1,true)\n"
                " if i then\n"
                "  local v=redis.call('HGET','vs:room:'..string.sub(m,1,i-1),string.sub(m,i+1))\n"
                "  if v then mine[#mine+1]=m mine[#mine+1]=v end\n"
                " end\n"
                "end\n"
                "return {tonumber(redis.call('GET','vs:seq') or '0'),live,keep,mine}\n",
};


size_t vs_cl_reg_value(const vs_cluster_t *cl, const vs_conn_t *c, char *out)
{
    char key[48] = "-";
    if (c->user && c->user->has_key && c->user->conn == c)
        vs_base64_encode(c->user->key, 32, key);
    int n = snprintf(out, 128, "%s|%u|%s", cl->node, c->cl_serial, key);
    return n < 0 ? 0 : (size_t)n;
}

/* A room membership's value: "node|serial|hidden". */
static void room_value(const vs_cluster_t *cl, uint32_t serial, int hidden, char out[96])
{
    snprintf(out, 96, "%s|%u|%d", cl->node, serial, hidden ? 1 : 0);
}

/* Splits text[0..len) at '|' into at most max fields (NUL-terminated copies in buf). */
static int split(const char *text, size_t len, char *buf, size_t cap, char **f, int max)
{
    if (len >= cap)
        return 0;
    memcpy(buf, text, len);
    buf[len] = '\0';
    int n = 0;
    char *p = buf;
    while (n < max) {
        f[n++] = p;
        char *bar = strchr(p, '|');
        if (!bar)
            break;
        *bar = '\0';
        p = bar + 1;
    }
    return n;
}

/* ---- presence ---- */

/* uid is online on node idx (key_text: its key as an event or the snapshot gives it, may be
 * NULL). Returns the local connection that held uid (it is replaced), or NULL. */
static void *set_remote(vs_cluster_t *cl, const char *uid, uint16_t idx, const char *key_text)
{
    uint8_t key[32];
    int has = key_text && vs_base64_decode(key_text, strlen(key_text), key, 32) == 32;
    void *replaced = NULL;
    vs_directory_set_remote(cl->srv->dir, uid, strlen(uid), idx, has ? key : NULL, &replaced);
    return replaced;
}

/* c loses its registration to a newer one on node idx (key: the event's key text). */
static void replaced_by_remote(vs_cluster_t *cl, vs_conn_t *c, const char *uid, uint16_t idx,
                               const char *key_text)
{
    if (set_remote(cl, uid, idx, key_text) == c) {
        c->user = NULL;
        vs_req_t rq = {c, VS_MSG_UNKNOWN, NULL, 0, uv_hrtime(), NULL, 0};
        vs_reply_error(&rq, VS_WERR_REPLACED, "this user id registered on a newer connection",
                       NULL);
        vs_conn_close(c, 4000, "replaced");
    }
}

static void on_presence(vs_cluster_t *cl, int online, char **f, int n)
{
    if (n < 6)
        return;
    uint64_t seq = strtoull(f[1], NULL, 10);
    if (seq <= cl->snap_seq)
        return;
    const char *uid = f[2];
    uint16_t idx;
    vs_node_t *node = vs_cl_node(cl, f[3], strlen(f[3]), &idx);
    if (!node || idx == 1)
        return; /* our own change */
    vs_server_t *s = cl->srv;
    vs_user_t *u = vs_directory_find(s->dir, uid, strlen(uid));
    if (!online) {
        if (u)
            vs_directory_clear_remote(s->dir, u, idx);
        return;
    }
    node->alive = 1;
    if (u && u->conn) {
        vs_conn_t *c = u->conn;
        if (c->cl_seq == 0) {
            /* Ours is not ordered yet: decide when its sequence number comes back. */
            if (seq > c->cl_defer) {
                c->cl_defer = seq;
                c->cl_defer_node = idx;
            }
        } else if (seq > c->cl_seq) {
            replaced_by_remote(cl, c, uid, idx, f[5]);
        }
        return;
    }
    set_remote(cl, uid, idx, f[5]);
}

typedef struct reg_ctx {
    uint32_t serial;
    int answer; /* `registered` waits for this reply */
    int via_token;
    vs_msg_type_t type;
    uint64_t t0;
    size_t id_len; /* the raw request id follows the user id in text */
    char text[];   /* uid, NUL, raw request id */
} reg_ctx_t;

static vs_conn_t *local_conn(vs_cluster_t *cl, const char *uid, uint32_t serial)
{
    vs_user_t *u = vs_directory_find(cl->srv->dir, uid, strlen(uid));
    vs_conn_t *c = u ? u->conn : NULL;
    return c && c->cl_serial == serial ? c : NULL;
}

/* The registration's answer, deferred until Redis ordered it (or failed to). The frames held
 * meanwhile are replayed by the caller (vs_conn_resume), once a replacement is settled. */
static void answer(reg_ctx_t *x, vs_conn_t *c)
{
    if (!x->answer || !c)
        return;
    x->answer = 0;
    if (c->waiting)
        c->waiting--;
    const char *id = x->text + strlen(x->text) + 1;
    vs_req_t rq = {c, x->type, x->id_len ? id : NULL, x->id_len, x->t0, NULL, 0};
    if (c->user && c->state == VS_CONN_WS)
        vs_register_reply(&rq, x->text, x->via_token);
}

static void settle(vs_cluster_t *cl, vs_conn_t *c, uint64_t seq)
{
    c->cl_seq = seq ? seq : 1;
    if (c->cl_defer > c->cl_seq && c->user) {
        char uid[VS_USERID_MAX + 1];
        snprintf(uid, sizeof uid, "%s", c->user->id);
        replaced_by_remote(cl, c, uid, c->cl_defer_node, NULL);
    }
}

static void on_reg_reply(vs_cluster_t *cl, redisReply *r, void *priv)
{
    reg_ctx_t *x = priv;
    vs_conn_t *c = local_conn(cl, x->text, x->serial);
    /* Answered first: the registration happened, as on one node, even when a newer one on
     * another node was ordered after it (then `replaced` and 4000 follow at once, and the
     * request is not left unanswered). Lost with Redis: answered all the same (it is online
     * here; the republish follows). Then the frames held meanwhile are replayed. */
    answer(x, c);
    if (c && r && r->type == REDIS_REPLY_INTEGER)
        settle(cl, c, (uint64_t)r->integer);
    if (c && !c->waiting)
        vs_conn_resume(c);
    free(x);
}

static void on_repub_reply(vs_cluster_t *cl, redisReply *r, void *priv)
{
    reg_ctx_t *x = priv;
    vs_conn_t *c = local_conn(cl, x->text, x->serial);
    if (c && r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
        if (r->element[0]->integer >= 0) {
            settle(cl, c, (uint64_t)r->element[0]->integer);
        } else if (r->element[1]->type == REDIS_REPLY_STRING) {
            char buf[256], *f[3];
            if (split(r->element[1]->str, r->element[1]->len, buf, sizeof buf, f, 3) == 3) {
                uint16_t idx;
                if (vs_cl_node(cl, f[0], strlen(f[0]), &idx) && idx != 1)
                    replaced_by_remote(cl, c, x->text, idx, f[2]);
            }
        }
    }
    free(x);
}

/* Sends c's registration (SC_REG or SC_REPUB); rq (may be NULL) is answered on the reply. */
static int publish_reg(vs_cluster_t *cl, vs_conn_t *c, int sc, const vs_req_t *rq, int via_token)
{
    char val[128];
    vs_cl_reg_value(cl, c, val);
    size_t n = strlen(c->user->id), idn = rq && rq->id ? rq->id_len : 0;
    reg_ctx_t *x = vs_calloc(1, sizeof *x + n + 1 + idn + 1);
    x->serial = c->cl_serial;
    memcpy(x->text, c->user->id, n + 1);
    if (idn)
        memcpy(x->text + n + 1, rq->id, idn);
    x->id_len = idn;
    if (rq) {
        x->answer = 1;
        x->via_token = via_token;
        x->type = rq->type;
        x->t0 = rq->t0;
    }
    const char *args[] = {cl->ev_channel, c->user->id, val, cl->node, NULL};
    if (vs_cl_eval(cl, sc == SC_REG ? on_reg_reply : on_repub_reply, x, sc, args) != 0) {
        free(x);
        return 0;
    }
    if (rq)
        c->waiting++;
    return 1;
}

int vs_cluster_user_online(vs_cluster_t *cl, vs_conn_t *c, const vs_req_t *rq, int via_token)
{
    /* One serial per connection: its room memberships in Redis carry it too. */
    if (!c->cl_serial)
        c->cl_serial = ++cl->serial;
    c->cl_seq = 0;
    c->cl_defer = 0;
    if (cl->state != CL_UP || !c->user)
        return 0;
    return publish_reg(cl, c, SC_REG, rq, via_token);
}

/* ---- rooms ---- */

typedef struct join_ctx {
    struct join_ctx *next;
    vs_conn_t *c; /* NULL once the connection went away */
    vs_cluster_join_cb cb;
    void *ud;
    int hidden;
    uint32_t serial;
    char uid[VS_USERID_MAX + 1];
    char room[VS_ROOM_NAME_MAX + 1];
} join_ctx_t;

static void leave_args(vs_cluster_t *cl, const char *room, const char *uid, const char *val)
{
    const char *args[] = {cl->ev_channel, room, uid, val, cl->node, NULL};
    vs_cl_eval(cl, NULL, NULL, SC_LEAVE, args);
}

/* A join that succeeded in Redis is taken back there (its connection went, or refused it). */
static void unjoin(vs_cluster_t *cl, const join_ctx_t *j)
{
    char val[96];
    room_value(cl, j->serial, j->hidden, val);
    leave_args(cl, j->room, j->uid, val);
}

static void on_join_reply(vs_cluster_t *cl, redisReply *r, void *priv)
{
    join_ctx_t *j = priv;
    for (join_ctx_t **pp = (join_ctx_t **)&cl->joins; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
             r->element[0]->type == REDIS_REPLY_STRING;
    int rc = !ok ? VS_EIO : strcmp(r->element[0]->str, "ok") == 0 ? 0 : VS_ETOOBIG;
    if (!j->c) {
        if (rc == 0 && cl->state == CL_UP)
            unjoin(cl, j);
        free(j);
        return;
    }
    vs_buf_t list = {0};
    for (size_t i = 1; rc == 0 && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            vs_buf_printf(&list, "%s\"%s\"", list.len ? "," : "", r->element[i]->str);
    vs_conn_t *c = j->c;
    if (c->waiting)
        c->waiting--;
    if (j->cb(c, rc, list.p ? list.p : "", list.len, j->ud) != 0 && rc == 0 &&
        cl->state == CL_UP)
        unjoin(cl, j); /* joined in Redis but refused here */
    vs_buf_deinit(&list);
    free(j);
    if (!c->waiting)
        vs_conn_resume(c);
}

int vs_cluster_room_join(vs_cluster_t *cl, vs_conn_t *c, const char *name, size_t len, int hidden,
                         vs_cluster_join_cb cb, void *ud)
{
    if (cl->state != CL_UP || !c->user || len > VS_ROOM_NAME_MAX)
        return VS_EIO;
    join_ctx_t *j = vs_calloc(1, sizeof *j);
    j->c = c;
    j->cb = cb;
    j->ud = ud;
    j->hidden = hidden != 0;
    j->serial = c->cl_serial;
    snprintf(j->uid, sizeof j->uid, "%s", c->user->id);
    memcpy(j->room, name, len);
    char val[96], max[16];
    room_value(cl, c->cl_serial, hidden, val);
    snprintf(max, sizeof max, "%d", cl->srv->cfg->max_room_participants);
    const char *args[] = {cl->ev_channel, j->room, j->uid, val, cl->node, max, "0", NULL};
    if (vs_cl_eval(cl, on_join_reply, j, SC_JOIN, args) != 0) {
        free(j);
        return VS_EIO;
    }
    j->next = cl->joins;
    cl->joins = j;
    c->waiting++;
    return 0;
}

static void leave_one(vs_cluster_t *cl, vs_conn_t *c, const vs_member_t *m)
{
    char val[96];
    room_value(cl, c->cl_serial, m->hidden, val);
    leave_args(cl, m->room->name, m->id, val);
}

void vs_cluster_room_left(vs_cluster_t *cl, vs_conn_t *c, const char *name, size_t len)
{
    if (cl->state != CL_UP || !c->user)
        return;
    char room[VS_ROOM_NAME_MAX + 1], val[96];
    snprintf(room, sizeof room, "%.*s", (int)len, name);
    room_value(cl, c->cl_serial, c->token && c->token->hidden, val);
    leave_args(cl, room, c->user->id, val);
}

void vs_cluster_conn_gone(vs_cluster_t *cl, vs_conn_t *c)
{
    if (c->waiting) { /* every join and marker entry of c counts in c->waiting */
        for (join_ctx_t *j = cl->joins; j; j = j->next)
            if (j->c == c)
                j->c = NULL;
        vs_cl_sync_forget(cl, c);
        c->waiting = 0;
    }
    if (cl->state != CL_UP)
        return; /* the snapshot after the reconnect finds what is stale */
    for (vs_member_t *m = c->rooms.head; m; m = m->c_next)
        leave_one(cl, c, m);
    if (c->user && c->user->conn == c) {
        char val[128];
        vs_cl_reg_value(cl, c, val);
        const char *args[] = {cl->ev_channel, c->user->id, val, cl->node, NULL};
        vs_cl_eval(cl, NULL, NULL, SC_UNREG, args);
    }
}

static void announce_remote(vs_cluster_t *cl, const char *type, char **f, int n)
{
    if (n < 6 || strcmp(f[5], "1") == 0)
        return; /* hidden */
    uint16_t idx;
    if (!vs_cl_node(cl, f[3], strlen(f[3]), &idx) || idx == 1)
        return; /* ours were announced here already */
    vs_server_t *s = cl->srv;
    vs_room_t *room = vs_rooms_find(s->rooms, f[1], strlen(f[1]));
    if (!room)
        return;
    char frame[512];
    int len = snprintf(frame, sizeof frame, "{\"type\":\"%s\",\"room\":\"%s\",\"userId\":\"%s\"}",
                       type, f[1], f[2]);
    if (len <= 0 || (size_t)len >= sizeof frame)
        return;
    for (vs_member_t *m = room->members; m; m = m->r_next)
        vs_conn_send_text(m->conn, frame, (size_t)len);
}

/* ---- events ---- */

static void on_hb(vs_cluster_t *cl, char **f, int n)
{
    if (n < 3)
        return;
    uint16_t idx;
    vs_node_t *node = vs_cl_node(cl, f[1], strlen(f[1]), &idx);
    if (!node)
        return;
    node->last_hb = vs_cl_now(cl);
    node->alive = 1;
    if (idx != 1)
        return;
    cl->last_own_hb = node->last_hb;
    uint64_t sent = strtoull(f[2], NULL, 10), now = uv_hrtime();
    if (sent && now >= sent)
        vs_cl_observe_latency(cl, (double)(now - sent) / 1e9);
}

static void hold_event(vs_cluster_t *cl, const char *data, size_t len)
{
    vs_cl_held_t *h = vs_malloc(sizeof *h + len);
    h->next = NULL;
    h->len = len;
    memcpy(h->data, data, len);
    if (cl->held_tail)
        cl->held_tail->next = h;
    else
        cl->held_head = h;
    cl->held_tail = h;
}

void vs_cl_on_event(vs_cluster_t *cl, const char *data, size_t len)
{
    if (len > 0 && data[0] == 'B') {
        vs_cl_on_bus(cl, data, len);
        return;
    }
    int presence = len > 3 && (memcmp(data, "on|", 3) == 0 || memcmp(data, "off|", 4) == 0);
    if (presence && cl->snap_pending) {
        hold_event(cl, data, len);
        return;
    }
    char buf[1024], *f[6];
    int n = split(data, len, buf, sizeof buf, f, 6);
    if (n == 0)
        return;
    if (strcmp(f[0], "on") == 0 || strcmp(f[0], "off") == 0)
        on_presence(cl, f[0][1] == 'n', f, n);
    else if (strcmp(f[0], "hb") == 0)
        on_hb(cl, f, n);
    else if (strcmp(f[0], "rj") == 0)
        announce_remote(cl, "participant_joined", f, n);
    else if (strcmp(f[0], "rl") == 0)
        announce_remote(cl, "participant_left", f, n);
    else if (strcmp(f[0], "dead") == 0 && n >= 2) {
        uint16_t idx;
        vs_node_t *node = vs_cl_node(cl, f[1], strlen(f[1]), &idx);
        if (node && idx != 1) {
            node->alive = 0;
            VS_LOG(VS_LOG_WARN, "node_dead", "node", "%s", node->id, NULL);
        }
    }
}

/* ---- node liveness ---- */

static void on_reap_reply(vs_cluster_t *cl, redisReply *r, void *priv)
{
    uint16_t idx = (uint16_t)(uintptr_t)priv;
    vs_node_t *node = cl->nodes[idx];
    node->reaping = 0;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer >= 0 && node->alive) {
        node->alive = 0;
        VS_LOG(VS_LOG_WARN, "node_dead", "node", "%s", node->id, "users", "%lld", r->integer, NULL);
    }
}

void vs_cl_check_nodes(vs_cluster_t *cl)
{
    uint64_t now = vs_cl_now(cl);
    uint64_t limit = (uint64_t)(cl->srv->cfg->cluster_node_timeout * 1000.0);
    for (uint16_t i = 2; i <= cl->nnodes; i++) {
        vs_node_t *node = cl->nodes[i];
        if (!node->alive || node->reaping || now - node->last_hb <= limit)
            continue;
        const char *args[] = {cl->ev_channel, node->id, "0", NULL};
        if (vs_cl_eval(cl, on_reap_reply, (void *)(uintptr_t)i, SC_REAP, args) == 0)
            node->reaping = 1;
    }
}

/* ---- snapshot and republish ---- */

static void collect_remote(vs_user_t *u, void *ud)
{
    if (u->rnode)
        vs_map_put(ud, u->id, u->idlen, u);
}

static void clear_missing(void *val, void *ud)
{
    vs_cluster_t *cl = ud;
    vs_user_t *u = val;
    vs_directory_clear_remote(cl->srv->dir, u, u->rnode);
}

static void apply_users(vs_cluster_t *cl, redisReply *loc)
{
    vs_server_t *s = cl->srv;
    vs_map_t *before = vs_map_new();
    vs_directory_each(s->dir, collect_remote, before);
    for (size_t i = 0; i + 1 < loc->elements; i += 2) {
        const char *uid = loc->element[i]->str;
        redisReply *v = loc->element[i + 1];
        char buf[256], *f[3];
        if (!uid || v->type != REDIS_REPLY_STRING ||
            split(v->str, v->len, buf, sizeof buf, f, 3) != 3)
            continue;
        uint16_t idx;
        if (!vs_cl_node(cl, f[0], strlen(f[0]), &idx))
            continue;
        vs_user_t *u = vs_directory_find(s->dir, uid, strlen(uid));
        if (idx == 1) {
            /* Ours: stale unless that very registration is still here. */
            if (!u || !u->conn || ((vs_conn_t *)u->conn)->cl_serial != strtoul(f[1], NULL, 10)) {
                const char *args[] = {cl->ev_channel, uid, v->str, cl->node, NULL};
                vs_cl_eval(cl, NULL, NULL, SC_UNREG, args);
            }
            continue;
        }
        if (u && u->conn)
            continue; /* the republish decides */
        vs_map_del(before, uid, strlen(uid));
        set_remote(cl, uid, idx, f[2]);
    }
    vs_map_each(before, clear_missing, cl);
    vs_map_free(before);
}

static void apply_my_rooms(vs_cluster_t *cl, redisReply *mine)
{
    vs_server_t *s = cl->srv;
    for (size_t i = 0; i + 1 < mine->elements; i += 2) {
        redisReply *m = mine->element[i], *v = mine->element[i + 1];
        if (m->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        char mb[300], *mf[2], vb[128], *vf[3];
        if (split(m->str, m->len, mb, sizeof mb, mf, 2) != 2 ||
            split(v->str, v->len, vb, sizeof vb, vf, 3) != 3 || strcmp(vf[0], cl->node) != 0)
            continue;
        /* Still a member here on that very connection? */
        vs_user_t *u = vs_directory_find(s->dir, mf[1], strlen(mf[1]));
        vs_conn_t *c = u ? u->conn : NULL;
        vs_room_t *room = vs_rooms_find(s->rooms, mf[0], strlen(mf[0]));
        if (c && room && vs_rooms_membership(&c->rooms, room) &&
            c->cl_serial == strtoul(vf[1], NULL, 10))
            continue;
        leave_args(cl, mf[0], mf[1], v->str);
    }
}

static void republish(vs_cluster_t *cl)
{
    vs_server_t *s = cl->srv;
    char max[16];
    snprintf(max, sizeof max, "%d", s->cfg->max_room_participants);
    for (vs_conn_t *c = s->active.head; c; c = c->next) {
        if (!c->user || c->user->conn != c)
            continue;
        publish_reg(cl, c, SC_REPUB, NULL, 0);
        for (vs_member_t *m = c->rooms.head; m; m = m->c_next) {
            char val[96];
            room_value(cl, c->cl_serial, m->hidden, val);
            const char *args[] = {cl->ev_channel, m->room->name, m->id, val, cl->node, max, "1", NULL};
            vs_cl_eval(cl, NULL, NULL, SC_JOIN, args);
        }
    }
}

static void drop_held(vs_cluster_t *cl, int replay)
{
    vs_cl_held_t *h = cl->held_head;
    cl->held_head = cl->held_tail = NULL;
    while (h) {
        vs_cl_held_t *next = h->next;
        if (replay)
            vs_cl_on_event(cl, h->data, h->len);
        free(h);
        h = next;
    }
}

static void on_snapshot(vs_cluster_t *cl, redisReply *r, void *priv)
{
    (void)priv;
    if (cl->state != CL_CONNECTING || !r)
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_ARRAY ||
        r->element[2]->type != REDIS_REPLY_ARRAY || r->element[3]->type != REDIS_REPLY_ARRAY) {
        vs_cl_down(cl, "redis returned a malformed snapshot");
        return;
    }
    uint64_t now = vs_cl_now(cl);
    for (uint16_t i = 2; i <= cl->nnodes; i++)
        cl->nodes[i]->alive = 0;
    redisReply *live = r->element[1];
    for (size_t i = 0; i < live->elements; i++) {
        uint16_t idx;
        vs_node_t *n = live->element[i]->type == REDIS_REPLY_STRING
                           ? vs_cl_node(cl, live->element[i]->str, live->element[i]->len, &idx)
                           : NULL;
        if (n && idx != 1) {
            n->alive = 1;
            n->last_hb = now;
        }
    }
    cl->snap_seq = (uint64_t)r->element[0]->integer;
    apply_users(cl, r->element[2]);
    apply_my_rooms(cl, r->element[3]);
    republish(cl);
    cl->snap_pending = 0;
    drop_held(cl, 1);
    cl->state = CL_UP;
    cl->reason = NULL;
    cl->backoff_ms = VS_CL_BACKOFF_MIN_MS;
    cl->last_own_hb = now;
    if (cl->ever_up)
        cl->reconnects++;
    cl->ever_up = 1;
    VS_LOG(VS_LOG_INFO, "redis_up", "node", "%s", cl->node, "nodes", "%zu", live->elements, "users",
           "%zu", r->element[2]->elements / 2, NULL);
}

/* Clients that pin the server key (or trust the first one they see) refuse a node with
 * another one: failing over there would end their sessions. Said loudly, and counted. */
static void on_heartbeat_reply(vs_cluster_t *cl, redisReply *r, void *priv)
{
    (void)priv;
    if (!r || r->type != REDIS_REPLY_INTEGER)
        return;
    if (r->integer > 0 && cl->key_mismatch == 0)
        VS_LOG(VS_LOG_WARN, "server_key_differs", "nodes", "%lld", r->integer, "advice", "%s",
               "other live nodes have another server.key: clients that pin or remember the "
               "server key cannot fail over between them; give every node the same server.key",
               NULL);
    cl->key_mismatch = (uint64_t)r->integer;
}

void vs_cl_heartbeat(vs_cluster_t *cl)
{
    char ttl[24], keep[24], now[24];
    const vs_config_t *cfg = cl->srv->cfg;
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)(cfg->cluster_node_timeout * 1000.0));
    snprintf(keep, sizeof keep, "%llu",
             (unsigned long long)(cfg->cluster_node_timeout * 20.0) + 60);
    snprintf(now, sizeof now, "%llu", (unsigned long long)uv_hrtime());
    const char *args[] = {cl->ev_channel, cl->node, ttl, keep, now, cl->srv->server_key_b64, NULL};
    vs_cl_eval(cl, on_heartbeat_reply, NULL, SC_HB, args);
}

void vs_cl_start_sync(vs_cluster_t *cl)
{
    /* Beat first, so this node counts as live for the snapshot and for joins. */
    vs_cl_heartbeat(cl);
    cl->snap_pending = 1;
    const char *args[] = {cl->ev_channel, cl->node, NULL};
    vs_cl_eval(cl, on_snapshot, NULL, SC_SNAP, args);
}

void vs_cl_sync_reset(vs_cluster_t *cl)
{
    cl->snap_pending = 0;
    drop_held(cl, 0);
}

void vs_cluster_leave(vs_cluster_t *cl)
{
    if (cl->state != CL_UP)
        return;
    const char *args[] = {cl->ev_channel, cl->node, "1", NULL};
    vs_cl_eval(cl, NULL, NULL, SC_REAP, args);
    cl->leaving = 1;
}
