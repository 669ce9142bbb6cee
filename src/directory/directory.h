/* directory.h: the in-memory truth of who is online where, and who watches whom.
 * Presence is indexed both ways: each user entry lists its watchers and each watcher lists
 * its subscriptions, so a change costs time in proportion to the subscribers it reaches.
 * It owns the user entries and subscription edges; it never touches sockets or the store:
 * frames go out through the send callback, and connections are opaque cookies to it. */
#ifndef VS_DIRECTORY_DIRECTORY_H
#define VS_DIRECTORY_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

typedef struct vs_directory vs_directory_t;
typedef struct vs_sub vs_sub_t;

/* A user the directory knows: online, or watched by someone. */
typedef struct vs_user {
    void *conn;      /* the connection it is online on, or NULL */
    vs_sub_t *watchers;
    uint16_t rnode;  /* cluster mode: the other node it is online on (an index of the cluster
                        module's node table), or 0; never set together with conn */
    uint32_t nwatchers;
    uint8_t key[32]; /* the bound key, valid while online and has_key */
    uint8_t has_key; /* online (here or on rnode) through a register, not an access token */
    uint8_t idlen;
    char id[];       /* folded user id, NUL-terminated */
} vs_user_t;

/* Per-connection subscription state; the connection embeds it and passes it in. */
typedef struct vs_watcher {
    void *conn; /* cookie handed to send() */
    vs_sub_t *subs;
    uint32_t nsubs;
} vs_watcher_t;

/* Sends one text frame (a presence notification) to conn; data is borrowed. */
typedef void (*vs_directory_send_fn)(void *conn, const char *data, size_t len, void *ud);

vs_directory_t *vs_directory_new(vs_directory_send_fn send, void *ud);
/* Frees every entry and edge; watchers must not be used afterwards. */
void vs_directory_free(vs_directory_t *d);

/* Returns the entry for a folded id, or NULL. Borrowed. */
vs_user_t *vs_directory_find(const vs_directory_t *d, const char *id, size_t len);

/* Marks id online on conn with key (borrowed; NULL for a connection registered by an access
 * token, which proves the id without a key). If it was online on another connection, that one is
 * returned in *replaced (the caller closes it) and watchers see no change; otherwise watchers
 * are told it came online. Returns the entry (borrowed). */
vs_user_t *vs_directory_set_online(vs_directory_t *d, const char *id, size_t len,
                                   const uint8_t key[32], void *conn, void **replaced);
/* Marks user offline if it is online on conn (a replaced connection changes nothing);
 * watchers are told. The entry may be freed: do not use user afterwards. */
void vs_directory_set_offline(vs_directory_t *d, vs_user_t *user, void *conn);

/* Whether the user is online anywhere: on a connection here or on another node. */
static inline int vs_user_online(const vs_user_t *u)
{
    return u && (u->conn || u->rnode);
}

/* Cluster mode: id is online on the other node `node` (> 0), with key (borrowed; NULL: by an
 * access token). If it was online on a connection here, that connection is returned in
 * *replaced (the caller closes it as replaced) and, as when it was online on another node
 * already, watchers see no change; otherwise they are told it came online. Returns the entry. */
vs_user_t *vs_directory_set_remote(vs_directory_t *d, const char *id, size_t len, uint16_t node,
                                   const uint8_t key[32], void **replaced);
/* Cluster mode: user is no longer online on node (if that is where it was); watchers are told
 * unless it is online here. The entry may be freed: do not use user afterwards. */
void vs_directory_clear_remote(vs_directory_t *d, vs_user_t *user, uint16_t node);
/* Calls fn for every entry; fn must not add or remove entries (collect, then act). */
void vs_directory_each(vs_directory_t *d, void (*fn)(vs_user_t *user, void *ud), void *ud);

/* Subscribes w to id; returns the entry (borrowed) so the caller can report its presence.
 * Subscribing twice is a no-op. */
vs_user_t *vs_directory_subscribe(vs_directory_t *d, vs_watcher_t *w, const char *id, size_t len);
/* Whether w is subscribed to user (walks the shorter of the two lists). */
int vs_directory_is_subscribed(const vs_watcher_t *w, const vs_user_t *user);
/* Removes w's subscription to id, if any. */
void vs_directory_unsubscribe(vs_directory_t *d, vs_watcher_t *w, const char *id, size_t len);
/* Removes all of w's subscriptions (on disconnect). */
void vs_directory_unsubscribe_all(vs_directory_t *d, vs_watcher_t *w);

size_t vs_directory_online_count(const vs_directory_t *d);
size_t vs_directory_entry_count(const vs_directory_t *d);

/* Writes {"type":"presence","userId":..,"online":..[,"id":..]} into out (at least
 * VS_PRESENCE_MAX bytes); id_raw is the raw JSON string contents of a request id or NULL.
 * Returns the length. */
/* The fixed text (54 bytes), a user id (128) and a raw request id: at most 64 characters,
 * each at worst a 12-byte surrogate-pair escape (768), and the NUL. */
#define VS_PRESENCE_MAX 1024
size_t vs_presence_frame(char *out, const char *user_id, int online, const char *id_raw,
                         size_t id_len);

#endif
