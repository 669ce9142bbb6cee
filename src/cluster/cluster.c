/* cluster.c: the two Redis connections (commands, and pub/sub), their health, heartbeats and
 * reconnects. See cluster.h. */
#include "cluster/cluster_impl.h"
#include "cluster/redis_uv.h"

#include "common/alloc.h"
#include "common/error.h"
#include "common/log.h"
#include "core/server_impl.h"

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vs_cl_cmd {
    vs_cl_cmd_t *next;
    vs_cl_reply_fn fn;
    void *priv;
    uint64_t t;
};


uint64_t vs_cl_now(const vs_cluster_t *cl)
{
    return uv_now(cl->loop);
}

static uint64_t ms(double seconds)
{
    return (uint64_t)(seconds * 1000.0 + 0.5);
}

vs_node_t *vs_cl_node(vs_cluster_t *cl, const char *id, size_t len, uint16_t *index)
{
    if (len == 0 || len > VS_NODE_ID_MAX)
        return NULL;
    void *v = vs_map_get(cl->node_index, id, len);
    if (v) {
        *index = (uint16_t)(uintptr_t)v;
        return cl->nodes[*index];
    }
    if (cl->nnodes + 1 >= VS_MAX_NODES)
        return NULL;
    uint16_t i = ++cl->nnodes;
    vs_node_t *n = vs_calloc(1, sizeof *n);
    memcpy(n->id, id, len);
    n->id[len] = '\0';
    snprintf(n->channel, sizeof n->channel, "vs:bus:%d:%s", cl->url.db, n->id);
    n->last_hb = vs_cl_now(cl);
    cl->nodes[i] = n;
    vs_map_put(cl->node_index, n->id, len, (void *)(uintptr_t)i);
    *index = i;
    return n;
}

/* ---- commands ---- */

static void on_cmd_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    vs_cluster_t *cl = ac->data;
    vs_cl_cmd_t *cmd = privdata;
    if (cl->fifo_head == cmd) {
        cl->fifo_head = cmd->next;
        if (!cl->fifo_head)
            cl->fifo_tail = NULL;
    }
    if (cmd->fn)
        cmd->fn(cl, reply, cmd->priv);
    free(cmd);
    redisReply *r = reply;
    /* SCRIPT FLUSH, or a failover to a replica that never saw SCRIPT LOAD: start over. */
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 &&
        cl->state == CL_UP)
        vs_cl_down(cl, "redis lost this node's scripts (NOSCRIPT); reconnecting");
}

int vs_cl_command(vs_cluster_t *cl, vs_cl_reply_fn fn, void *priv, int argc, const char **argv,
                  const size_t *lens)
{
    if (!cl->cmd || cl->state == CL_DOWN)
        return VS_EIO;
    vs_cl_cmd_t *cmd = vs_calloc(1, sizeof *cmd);
    cmd->fn = fn;
    cmd->priv = priv;
    cmd->t = vs_cl_now(cl);
    if (redisAsyncCommandArgv(cl->cmd, on_cmd_reply, cmd, argc, argv, lens) != REDIS_OK) {
        free(cmd);
        return VS_EIO;
    }
    if (cl->fifo_tail)
        cl->fifo_tail->next = cmd;
    else
        cl->fifo_head = cmd;
    cl->fifo_tail = cmd;
    return 0;
}

int vs_cl_eval(vs_cluster_t *cl, vs_cl_reply_fn fn, void *priv, int sc, const char *const *args)
{
    const char *argv[16];
    size_t lens[16];
    int n = 0;
    argv[n++] = "EVALSHA";
    argv[n++] = cl->sha[sc];
    argv[n++] = "0";
    for (; *args && n < 16; args++)
        argv[n++] = *args;
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    return vs_cl_command(cl, fn, priv, n, argv, lens);
}

/* ---- connection state ---- */

static void connect_now(vs_cluster_t *cl);

static void retry_cb(uv_timer_t *t)
{
    connect_now(t->data);
}

void vs_cl_down(vs_cluster_t *cl, const char *why)
{
    if (cl->state == CL_DOWN)
        return;
    int was_up = cl->state == CL_UP;
    cl->state = CL_DOWN;
    cl->cmd_ready = cl->sub_ready = 0;
    if (why != cl->reason_buf) {
        snprintf(cl->reason_buf, sizeof cl->reason_buf, "%s", why);
    }
    cl->reason = cl->reason_buf;
    if (!cl->leaving)
        VS_LOG(was_up ? VS_LOG_ERROR : VS_LOG_WARN, "redis_down", "reason", "%s", cl->reason, NULL);
    /* Freeing calls every pending reply callback with NULL: they see state DOWN. */
    redisAsyncContext *cmd = cl->cmd, *sub = cl->sub;
    cl->cmd = cl->sub = NULL;
    if (cmd)
        redisAsyncFree(cmd);
    if (sub)
        redisAsyncFree(sub);
    vs_cl_sync_reset(cl);
    vs_cl_bus_reset(cl);
    vs_cl_sync_release(cl);
    if (cl->leaving)
        return;
    uint64_t jitter = 0;
    RAND_bytes((unsigned char *)&jitter, sizeof jitter);
    uint64_t delay = cl->backoff_ms / 2 + jitter % (cl->backoff_ms / 2 + 1);
    cl->backoff_ms = cl->backoff_ms * 2 > VS_CL_BACKOFF_MAX_MS ? VS_CL_BACKOFF_MAX_MS : cl->backoff_ms * 2;
    uv_timer_start(&cl->retry, retry_cb, delay, 0);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    vs_cluster_t *cl = ac->data;
    (void)status;
    if (!cl)
        return;
    if (ac == cl->cmd)
        cl->cmd = NULL;
    else if (ac == cl->sub)
        cl->sub = NULL;
    else
        return;
    snprintf(cl->reason_buf, sizeof cl->reason_buf, "redis connection lost: %s",
             ac->errstr[0] ? ac->errstr : "closed by the server");
    vs_cl_down(cl, cl->reason_buf);
}

static void maybe_ready(vs_cluster_t *cl)
{
    if (cl->state == CL_CONNECTING && cl->cmd_ready && cl->sub_ready)
        vs_cl_start_sync(cl);
}

static int reply_ok(vs_cluster_t *cl, redisReply *r, const char *what)
{
    if (cl->state == CL_DOWN)
        return 0;
    if (!r) {
        return 0; /* the connection is being freed; on_disconnect says why */
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(cl->reason_buf, sizeof cl->reason_buf, "redis refused %s: %.100s", what, r->str);
        vs_cl_down(cl, cl->reason_buf);
        return 0;
    }
    return 1;
}

static void on_script_loaded(vs_cluster_t *cl, redisReply *r, void *priv)
{
    uintptr_t sc = (uintptr_t)priv;
    if (!reply_ok(cl, r, "SCRIPT LOAD"))
        return;
    if (r->type != REDIS_REPLY_STRING || strcmp(r->str, cl->sha[sc]) != 0) {
        vs_cl_down(cl, "redis returned an unexpected script digest");
        return;
    }
    if (sc == SC_COUNT - 1) {
        cl->cmd_ready = 1;
        maybe_ready(cl);
    }
}

static void on_select(vs_cluster_t *cl, redisReply *r, void *priv)
{
    (void)priv;
    if (!reply_ok(cl, r, "SELECT"))
        return;
    for (uintptr_t i = 0; i < SC_COUNT; i++) {
        const char *argv[] = {"SCRIPT", "LOAD", vs_cl_scripts[i]};
        size_t lens[] = {6, 4, strlen(vs_cl_scripts[i])};
        vs_cl_command(cl, on_script_loaded, (void *)i, 3, argv, lens);
    }
}

static void on_auth(vs_cluster_t *cl, redisReply *r, void *priv)
{
    (void)priv;
    reply_ok(cl, r, "AUTH (check the password)");
}

static void auth(vs_cluster_t *cl, redisAsyncContext *ac)
{
    if (!cl->password[0])
        return;
    if (ac == cl->cmd) {
        const char *argv[] = {"AUTH", cl->password};
        size_t lens[] = {4, strlen(cl->password)};
        vs_cl_command(cl, on_auth, NULL, 2, argv, lens);
    } else {
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s", cl->password);
    }
}

/* A connection attempt that failed: hiredis frees such a context itself. */
static int connect_failed(vs_cluster_t *cl, const redisAsyncContext *ac, int status)
{
    if (status == REDIS_OK)
        return 0;
    if (ac == cl->cmd)
        cl->cmd = NULL;
    else
        cl->sub = NULL;
    snprintf(cl->reason_buf, sizeof cl->reason_buf, "redis unreachable at %s:%d: %s", cl->url.host,
             cl->url.port, ac->errstr);
    vs_cl_down(cl, cl->reason_buf);
    return 1;
}

static void on_cmd_connect(const redisAsyncContext *ac, int status)
{
    vs_cluster_t *cl = ac->data;
    if (!cl || ac != cl->cmd)
        return;
    if (connect_failed(cl, ac, status))
        return;
    auth(cl, cl->cmd);
    char db[16];
    snprintf(db, sizeof db, "%d", cl->url.db);
    const char *argv[] = {"SELECT", db};
    size_t lens[] = {6, strlen(db)};
    vs_cl_command(cl, on_select, NULL, 2, argv, lens);
}

static void on_sub_message(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    vs_cluster_t *cl = ac->data;
    redisReply *r = reply;
    if (!r || !cl || ac != cl->sub || cl->state == CL_DOWN)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(cl->reason_buf, sizeof cl->reason_buf, "redis refused SUBSCRIBE: %.100s", r->str);
        vs_cl_down(cl, cl->reason_buf);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = r->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) {
        if (r->element[2]->type == REDIS_REPLY_INTEGER && r->element[2]->integer == 2) {
            cl->sub_ready = 1;
            maybe_ready(cl);
        }
        return;
    }
    if (strcmp(kind, "message") != 0 || r->element[2]->type != REDIS_REPLY_STRING)
        return;
    const char *ch = r->element[1]->str;
    const char *data = r->element[2]->str;
    size_t len = r->element[2]->len;
    /* Our channel: markers and batches; the event channel: changes, and room batches. */
    if (strcmp(ch, cl->nodes[1]->channel) != 0)
        vs_cl_on_event(cl, data, len);
    else if (len > 0 && data[0] == 'S')
        vs_cl_on_sync(cl, data + 1, len - 1);
    else
        vs_cl_on_bus(cl, data, len);
}

static void on_sub_connect(const redisAsyncContext *ac, int status)
{
    vs_cluster_t *cl = ac->data;
    if (!cl || ac != cl->sub)
        return;
    if (connect_failed(cl, ac, status))
        return;
    auth(cl, cl->sub);
    redisAsyncCommand(cl->sub, on_sub_message, NULL, "SUBSCRIBE %s %s", cl->ev_channel,
                      cl->nodes[1]->channel);
}

static redisAsyncContext *open_ctx(vs_cluster_t *cl, redisConnectCallback *on_connect)
{
    redisAsyncContext *ac = redisAsyncConnect(cl->url.host, cl->url.port);
    if (!ac)
        return NULL;
    if (ac->err) {
        snprintf(cl->reason_buf, sizeof cl->reason_buf, "redis unreachable at %s:%d: %s",
                 cl->url.host, cl->url.port, ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = cl;
    if (vs_redis_uv_attach(ac, cl->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

static void connect_now(vs_cluster_t *cl)
{
    if (cl->state != CL_DOWN || cl->leaving)
        return;
    cl->state = CL_CONNECTING;
    cl->up_since = vs_cl_now(cl);
    /* The reason stays the last failure's while reconnecting: that is what an operator needs. */
    cl->cmd = open_ctx(cl, on_cmd_connect);
    cl->sub = cl->cmd ? open_ctx(cl, on_sub_connect) : NULL;
    if (!cl->cmd || !cl->sub)
        vs_cl_down(cl, cl->reason_buf);
}

/* ---- timers ---- */

static void hb_cb(uv_timer_t *t)
{
    vs_cluster_t *cl = t->data;
    if (cl->state != CL_UP || cl->leaving)
        return;
    vs_cl_heartbeat(cl);
    vs_cl_check_nodes(cl);
}

static void watchdog_cb(uv_timer_t *t)
{
    vs_cluster_t *cl = t->data;
    if (cl->state == CL_DOWN)
        return;
    const vs_config_t *cfg = cl->srv->cfg;
    uint64_t now = vs_cl_now(cl), limit = ms(cfg->redis_timeout);
    if (cl->state == CL_CONNECTING && now - cl->up_since > limit) {
        snprintf(cl->reason_buf, sizeof cl->reason_buf,
                 "redis at %s:%d did not answer within %.3g s", cl->url.host, cl->url.port,
                 cfg->redis_timeout);
        vs_cl_down(cl, cl->reason_buf);
    } else if (cl->fifo_head && now - cl->fifo_head->t > limit) {
        snprintf(cl->reason_buf, sizeof cl->reason_buf,
                 "redis did not answer within %.3g s (redis-timeout)", cfg->redis_timeout);
        vs_cl_down(cl, cl->reason_buf);
    } else if (cl->state == CL_UP &&
               now - cl->last_own_hb > limit + 2 * ms(cfg->cluster_heartbeat)) {
        vs_cl_down(cl, "redis stopped delivering this node's heartbeats (pub/sub stalled)");
    }
}

/* ---- life cycle ---- */

static void sha1_hex(const char *text, char out[41])
{
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)text, strlen(text), d);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int vs_cluster_new(vs_server_t *s, vs_cluster_t **out, char *err, size_t errlen)
{
    const vs_config_t *cfg = s->cfg;
    *out = NULL;
    vs_cluster_t *cl = vs_calloc(1, sizeof *cl);
    if (vs_url_parse(cfg->redis, VS_URL_REDIS, &cl->url) != 0) {
        snprintf(err, errlen, "--redis is not a valid redis:// URL");
        free(cl);
        return VS_EINVAL;
    }
    snprintf(cl->password, sizeof cl->password, "%s",
             cfg->redis_password ? cfg->redis_password : cl->url.password);
    if (cfg->node_id) {
        snprintf(cl->node, sizeof cl->node, "%s", cfg->node_id);
    } else {
        unsigned char r[6];
        RAND_bytes(r, sizeof r);
        snprintf(cl->node, sizeof cl->node, "n-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
                 r[4], r[5]);
    }
    snprintf(cl->ev_channel, sizeof cl->ev_channel, "vs:ev:%d", cl->url.db);
    for (int i = 0; i < SC_COUNT; i++)
        sha1_hex(vs_cl_scripts[i], cl->sha[i]);
    cl->srv = s;
    cl->loop = &s->loop;
    cl->node_index = vs_map_new();
    uint16_t self;
    vs_cl_node(cl, cl->node, strlen(cl->node), &self); /* index 1 is this node */
    cl->nodes[self]->alive = 1;
    cl->state = CL_DOWN;
    snprintf(cl->reason_buf, sizeof cl->reason_buf, "connecting to redis at %s:%d", cl->url.host,
             cl->url.port);
    cl->reason = cl->reason_buf;
    cl->backoff_ms = VS_CL_BACKOFF_MIN_MS;
    uv_timer_init(cl->loop, &cl->hb_timer);
    uv_timer_init(cl->loop, &cl->watchdog);
    uv_timer_init(cl->loop, &cl->retry);
    cl->hb_timer.data = cl->watchdog.data = cl->retry.data = cl;
    uint64_t hb = ms(cfg->cluster_heartbeat);
    uv_timer_start(&cl->hb_timer, hb_cb, hb, hb);
    uint64_t wd = ms(cfg->redis_timeout) / 4;
    uv_timer_start(&cl->watchdog, watchdog_cb, wd ? wd : 1, wd ? wd : 1);
    VS_LOG(VS_LOG_INFO, "cluster_mode", "node", "%s", cl->node, "redis_host", "%s", cl->url.host,
           "redis_port", "%d", cl->url.port, NULL);
    connect_now(cl);
    *out = cl;
    return 0;
}

int vs_cluster_busy(const vs_cluster_t *cl)
{
    return cl->state != CL_DOWN && cl->fifo_head != NULL;
}

const char *vs_cluster_node_id(const vs_cluster_t *cl)
{
    return cl->node;
}

int vs_cluster_up(const vs_cluster_t *cl, const char **reason)
{
    if (cl->state == CL_UP)
        return 1;
    if (reason)
        *reason = cl->reason;
    return 0;
}

static void close_timer(uv_timer_t *t)
{
    if (!uv_is_closing((uv_handle_t *)t))
        uv_close((uv_handle_t *)t, NULL);
}

void vs_cluster_free(vs_cluster_t *cl)
{
    if (!cl)
        return;
    cl->leaving = 1;
    vs_cl_down(cl, "shutting down");
    close_timer(&cl->hb_timer);
    close_timer(&cl->watchdog);
    close_timer(&cl->retry);
    /* The adapter closes its poll handles asynchronously: run the loop until they are gone. */
    uv_run(cl->loop, UV_RUN_NOWAIT);
    for (uint16_t i = 1; i <= cl->nnodes; i++) {
        vs_buf_deinit(&cl->nodes[i]->out);
        free(cl->nodes[i]);
    }
    vs_buf_deinit(&cl->ev_out);
    vs_cl_sync_free(cl);
    vs_map_free(cl->node_index);
    free(cl);
}

static const double lat_bounds[VS_CL_LAT_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01,   0.025,   0.05,   0.1,   0.25,   1};

void vs_cl_observe_latency(vs_cluster_t *cl, double seconds)
{
    for (size_t i = 0; i < VS_CL_LAT_BUCKETS; i++)
        if (seconds <= lat_bounds[i]) {
            cl->lat_buckets[i]++;
            break;
        }
    cl->lat_count++;
    cl->lat_sum += seconds;
}

void vs_cluster_metrics(const vs_cluster_t *cl, vs_buf_t *o)
{
    const double *bounds = lat_bounds;
    size_t alive = 0;
    for (uint16_t i = 1; i <= cl->nnodes; i++)
        alive += cl->nodes[i]->alive;
    vs_buf_printf(o,
                  "# HELP volli_bus_messages_in_total Records received from other nodes.\n"
                  "# TYPE volli_bus_messages_in_total counter\nvolli_bus_messages_in_total %llu\n"
                  "# HELP volli_bus_messages_out_total Records sent to other nodes.\n"
                  "# TYPE volli_bus_messages_out_total counter\n"
                  "volli_bus_messages_out_total %llu\n"
                  "# HELP volli_bus_publishes_total PUBLISH commands (batches) sent.\n"
                  "# TYPE volli_bus_publishes_total counter\nvolli_bus_publishes_total %llu\n"
                  "# HELP volli_redis_reconnects_total Connections to Redis made again after a "
                  "loss.\n# TYPE volli_redis_reconnects_total counter\n"
                  "volli_redis_reconnects_total %llu\n"
                  "# HELP volli_redis_up Whether the bus works (1) or Redis is unavailable (0).\n"
                  "# TYPE volli_redis_up gauge\nvolli_redis_up %d\n"
                  "# HELP volli_cluster_nodes Live nodes, this one included.\n"
                  "# TYPE volli_cluster_nodes gauge\nvolli_cluster_nodes %zu\n"
                  "# HELP volli_cluster_server_key_mismatch Live nodes whose server identity key "
                  "differs from this one's (clients pinning the key cannot fail over to them).\n"
                  "# TYPE volli_cluster_server_key_mismatch gauge\n"
                  "volli_cluster_server_key_mismatch %llu\n",
                  (unsigned long long)cl->bus_in, (unsigned long long)cl->bus_out,
                  (unsigned long long)cl->publishes, (unsigned long long)cl->reconnects,
                  cl->state == CL_UP, alive, (unsigned long long)cl->key_mismatch);
    vs_buf_puts(o, "# HELP volli_bus_latency_seconds From publish to delivery through Redis: "
                   "batches from other nodes (by the senders' wall clocks) and this node's own "
                   "heartbeats.\n# TYPE volli_bus_latency_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < VS_CL_LAT_BUCKETS; i++) {
        cum += cl->lat_buckets[i];
        vs_buf_printf(o, "volli_bus_latency_seconds_bucket{le=\"%g\"} %llu\n", bounds[i],
                      (unsigned long long)cum);
    }
    vs_buf_printf(o,
                  "volli_bus_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
                  "volli_bus_latency_seconds_sum %.9f\nvolli_bus_latency_seconds_count %llu\n",
                  (unsigned long long)cl->lat_count, cl->lat_sum,
                  (unsigned long long)cl->lat_count);
}
