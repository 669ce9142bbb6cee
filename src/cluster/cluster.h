/* cluster.h: cluster mode. Several nodes share one directory through Redis: which node each
 * online user is on (a hash, written only by Lua scripts so that every change is ordered by one
 * sequence number and published on the event channel in that order), room memberships, node
 * heartbeats (a key with a TTL per node; the per-node user and room sets expire unless
 * heartbeats refresh them), and the message bus (one pub/sub channel per node, plus the event
 * channel every node hears).
 *
 * Every node keeps a replica of where the other nodes' users are (directory entries with
 * rnode set), so a relay to a user on another node costs a lookup here and one record in that
 * node's batch, published once per loop turn. hiredis runs async on the server's own loop
 * through its libuv adapter; nothing here blocks or locks. Replies later than redis-timeout,
 * a lost connection or our own heartbeat not coming back mark Redis down: the bus refuses
 * (callers answer `unavailable`), /healthz says 503 with the reason, and the module reconnects
 * with backoff, loads a snapshot and republishes this node's users and rooms.
 *
 * It owns the hiredis contexts, the node table and the batches. It never logs user ids above
 * debug level, payloads, or the Redis URL (it may hold a password). */
#ifndef VS_CLUSTER_CLUSTER_H
#define VS_CLUSTER_CLUSTER_H

#include "common/buf.h"
#include "core/server.h"
#include "core/session.h"
#include "transport/conn.h"

#include <stddef.h>
#include <stdint.h>

typedef struct vs_cluster vs_cluster_t;

/* Starts cluster mode for s (borrowed; outlives the cluster) from its configuration: connects
 * to Redis in the background (a Redis that is down now is retried with backoff, not an error).
 * Returns 0 with *out (caller frees with vs_cluster_free), or VS_EINVAL with err filled for a
 * bad URL. */
int vs_cluster_new(vs_server_t *s, vs_cluster_t **out, char *err, size_t errlen);
/* Drops the Redis connections at once (no leave) and frees everything. NULL is a no-op. */
void vs_cluster_free(vs_cluster_t *cl);
/* Graceful leave (at shutdown): this node's users and rooms are removed for the other nodes
 * now instead of after the node timeout, and heartbeats stop. */
void vs_cluster_leave(vs_cluster_t *cl);

/* 1 while commands wait for Redis's replies (the leave at shutdown, say). */
int vs_cluster_busy(const vs_cluster_t *cl);
/* This node's name (borrowed). */
const char *vs_cluster_node_id(const vs_cluster_t *cl);
/* 1 while the bus works. When 0, *reason (borrowed, may be NULL) says why. */
int vs_cluster_up(const vs_cluster_t *cl, const char **reason);

/* rq's connection was registered here (c->user set; its key, if any, is there). Returns 1 when
 * the registration was sent to Redis: the cluster answers `registered` (vs_register_reply)
 * once it is ordered there, holding the connection's later frames until then; 0 when the
 * caller answers now (Redis is down: the registration is republished after the reconnect). */
int vs_cluster_user_online(vs_cluster_t *cl, vs_conn_t *c, const vs_req_t *rq, int via_token);
/* c goes away: its registration and room memberships end for the other nodes. Call before the
 * directory and rooms forget it. */
void vs_cluster_conn_gone(vs_cluster_t *cl, vs_conn_t *c);
/* c left the room name (borrowed) here (an explicit leave). */
void vs_cluster_room_left(vs_cluster_t *cl, vs_conn_t *c, const char *name, size_t len);

/* Queues frame (borrowed, the complete message with "from" already in it) for user `to`
 * (borrowed, folded) on the node `node` (the user's rnode), sent by from (folded) whose request
 * id is id_raw (raw JSON string contents, may be NULL). A node that no longer has the user
 * answers with peer_offline through the bus. Returns 0, VS_EIO when the bus is down, or
 * VS_ENOTFOUND when that node is dead (the user is about to be shown offline). */
int vs_cluster_relay(vs_cluster_t *cl, uint16_t node, const char *to, const char *from,
                     const char *id_raw, size_t id_len, const char *frame, size_t len);
/* Queues a room message (frame borrowed, "from" already in it) for the room's members on the
 * other nodes. Returns 0 or VS_EIO when the bus is down. */
int vs_cluster_room_message(vs_cluster_t *cl, const char *room, size_t room_len, const char *from,
                            const char *frame, size_t len);

/* Called when a cluster-wide join finished (returns 0, or nonzero when it refused a join that
 * succeeded in Redis: the membership is then taken back there): rc is 0 (joined: members holds the others as
 * `"id","id"` JSON list contents, hidden ones left out; borrowed for the call), VS_ETOOBIG (the
 * room is full) or VS_EIO (Redis is unavailable). c is NULL when the connection went away. */
typedef int (*vs_cluster_join_cb)(vs_conn_t *c, int rc, const char *members, size_t members_len,
                                  void *ud);
/* Joins c (registered) to the room name (borrowed) cluster-wide, checking the participant
 * limit across nodes; sets c->waiting until done (later frames are held) and calls cb then.
 * ud is passed to cb (the caller owns it). Returns 0, or VS_EIO (cb not called) when down. */
int vs_cluster_room_join(vs_cluster_t *cl, vs_conn_t *c, const char *name, size_t len, int hidden,
                         vs_cluster_join_cb cb, void *ud);

/* Before answering that a user is offline: c's request is to be answered once every change
 * Redis ordered before now has arrived here, so that a registration another node confirmed to
 * its client before this question was asked is seen (read-your-writes across nodes). A marker
 * published on this node's own bus channel at the end of the loop turn comes back behind those
 * changes: one round trip, shared by every request deferred in the same turn. Returns 0 when c
 * waits (the caller sets its message aside with vs_conn_defer), or VS_EIO when Redis is down
 * (answer from what is known now). */
int vs_cluster_defer(vs_cluster_t *cl, vs_conn_t *c);
/* Start of the loop turn's check: resumes the connections whose marker came back (or whose
 * wait ended because Redis went down), which handles their messages again. */
void vs_cluster_resume_synced(vs_cluster_t *cl);

/* End of a loop turn: publishes the batches filled during it (one PUBLISH per destination). */
void vs_cluster_flush(vs_cluster_t *cl);

/* Appends the cluster's Prometheus series to out. */
void vs_cluster_metrics(const vs_cluster_t *cl, vs_buf_t *out);

#endif
