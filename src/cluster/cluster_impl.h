/* cluster_impl.h: the cluster module's internals, shared by cluster.c (Redis connections,
 * heartbeats, health), cluster_sync.c (the Lua scripts, events, snapshot, presence and rooms)
 * and cluster_bus.c (batches and bus records). */
#ifndef VS_CLUSTER_CLUSTER_IMPL_H
#define VS_CLUSTER_CLUSTER_IMPL_H

#include "cluster/cluster.h"
#include "common/buf.h"
#include "common/map.h"
#include "common/url.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#define VS_NODE_ID_MAX 64
#define VS_MAX_NODES 4096
#define VS_CL_LAT_BUCKETS 12
#define VS_CL_BACKOFF_MIN_MS 100
#define VS_CL_BACKOFF_MAX_MS 5000

typedef struct vs_node {
    char id[VS_NODE_ID_MAX + 1];
    uint64_t last_hb; /* loop ms when its heartbeat was last heard */
    uint8_t alive;
    uint8_t reaping; /* a REAP script is in flight */
    vs_buf_t out;    /* records for its bus channel, published at the end of the loop turn */
    char channel[VS_NODE_ID_MAX + 32]; /* its bus channel: vs:bus:<db>:<id> */
} vs_node_t;

enum vs_cl_state { CL_DOWN, CL_CONNECTING, CL_UP };

/* Scripts, loaded with SCRIPT LOAD at each connect and run with EVALSHA. */
enum vs_cl_script {
    SC_REG,
    SC_REPUB,
    SC_UNREG,
    SC_HB,
    SC_REAP,
    SC_JOIN,
    SC_LEAVE,
    SC_SNAP,
    SC_COUNT
};

typedef struct vs_cl_cmd vs_cl_cmd_t;
typedef void (*vs_cl_reply_fn)(vs_cluster_t *cl, redisReply *r, void *priv);

/* Connections deferred in one loop turn (vs_cluster_defer), waiting for one marker. */
typedef struct vs_cl_sync {
    struct vs_cl_sync *next;
    uint64_t token; /* the marker's number; 0 while not yet published */
    int done;       /* the marker came back, or Redis went down */
    size_t n, cap;
    vs_conn_t **conns; /* NULL where one went away */
} vs_cl_sync_t;

/* An event from the event channel held while a snapshot is loading. */
typedef struct vs_cl_held {
    struct vs_cl_held *next;
    size_t len;
    char data[];
} vs_cl_held_t;

struct vs_cluster {
    vs_server_t *srv;
    uv_loop_t *loop;
    vs_url_t url;
    char password[256];
    char node[VS_NODE_ID_MAX + 1];
    char ev_channel[32]; /* vs:ev:<db>, every node's; this node's bus channel: nodes[1] */
    redisAsyncContext *cmd, *sub;
    int state;
    int cmd_ready, sub_ready; /* connected, authenticated, scripts loaded / subscribed */
    int snap_pending;
    const char *reason; /* why down (static text) */
    char reason_buf[512];
    vs_cl_cmd_t *fifo_head, *fifo_tail; /* commands waiting for replies, oldest first */
    uv_timer_t hb_timer, watchdog, retry;
    uint64_t backoff_ms;
    uint64_t last_own_hb; /* loop ms when our own heartbeat came back on the channel */
    uint64_t up_since;
    char sha[SC_COUNT][41];
    vs_node_t *nodes[VS_MAX_NODES]; /* index 0 unused; entries live until free */
    uint16_t nnodes;                /* highest index in use */
    vs_map_t *node_index;           /* id -> (uintptr_t) index */
    vs_buf_t ev_out;                /* records for the event channel (room messages) */
    vs_node_t *dirty[VS_MAX_NODES]; /* nodes with records this turn */
    size_t ndirty;
    vs_cl_held_t *held_head, *held_tail;
    vs_cl_sync_t *sync_head, *sync_tail; /* oldest first; the tail may still be filling */
    uint64_t sync_token;                 /* the last marker published */
    uint64_t snap_seq;
    uint32_t serial; /* last registration serial handed out */
    int leaving;
    int ever_up;
    void *joins; /* cluster_sync.c's joins waiting for a reply */
    /* metrics */
    uint64_t bus_in, bus_out, reconnects, publishes;
    uint64_t key_mismatch;        /* live nodes with another server identity key */
    uint64_t lat_buckets[VS_CL_LAT_BUCKETS], lat_count;
    double lat_sum;
};

/* cluster.c */
/* Sends a command (argv/lens borrowed for the call) on the command connection; fn (may be
 * NULL) gets the reply, or NULL when the connection is lost. Returns 0 or VS_EIO when down. */
int vs_cl_command(vs_cluster_t *cl, vs_cl_reply_fn fn, void *priv, int argc, const char **argv,
                  const size_t *lens);
/* Runs script sc with the given string arguments (NULL-terminated list). */
int vs_cl_eval(vs_cluster_t *cl, vs_cl_reply_fn fn, void *priv, int sc, const char *const *args);
/* Marks Redis down (why: static or cl->reason_buf) and schedules the reconnect. */
void vs_cl_down(vs_cluster_t *cl, const char *why);
uint64_t vs_cl_now(const vs_cluster_t *cl);
/* One bus latency observation for the histogram. */
void vs_cl_observe_latency(vs_cluster_t *cl, double seconds);
/* The node entry for id (len bytes), created on first sight; NULL when the table is full or id
 * is malformed. */
vs_node_t *vs_cl_node(vs_cluster_t *cl, const char *id, size_t len, uint16_t *index);

/* cluster_bus.c: markers */
/* A marker came back on this node's bus channel (text after the 'S'). */
void vs_cl_on_sync(vs_cluster_t *cl, const char *data, size_t len);
/* Redis is down: every deferred connection is answered from what is known now. */
void vs_cl_sync_release(vs_cluster_t *cl);
/* c goes away: it no longer waits for a marker. */
void vs_cl_sync_forget(vs_cluster_t *cl, vs_conn_t *c);
/* Drops every marker batch (at free). */
void vs_cl_sync_free(vs_cluster_t *cl);

/* cluster_sync.c */
extern const char *const vs_cl_scripts[SC_COUNT];
/* A message from the event channel. */
void vs_cl_on_event(vs_cluster_t *cl, const char *data, size_t len);
/* Sends this node's heartbeat (and its server key, to compare with the other nodes'). */
void vs_cl_heartbeat(vs_cluster_t *cl);
/* Both connections are ready: load the snapshot, then republish. */
void vs_cl_start_sync(vs_cluster_t *cl);
/* Heartbeat tick: declare silent nodes dead (REAP). */
void vs_cl_check_nodes(vs_cluster_t *cl);
/* Connection lost: pending joins fail, held events are dropped. */
void vs_cl_sync_reset(vs_cluster_t *cl);
/* The registration value of c: "node|serial|key" into out (at least 128 bytes). */
size_t vs_cl_reg_value(const vs_cluster_t *cl, const vs_conn_t *c, char *out);

/* cluster_bus.c */
/* A message from this node's bus channel, or a binary batch from the event channel. */
void vs_cl_on_bus(vs_cluster_t *cl, const char *data, size_t len);
/* Drops every queued record (the bus went down). */
void vs_cl_bus_reset(vs_cluster_t *cl);

#endif
