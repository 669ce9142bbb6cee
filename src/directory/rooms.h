/* rooms.h: the in-memory rooms: who is in which room, indexed both ways (each room lists its
 * members, each connection its memberships), so a join, a leave or a disconnect costs the
 * room's fan-out and nothing else. It owns the rooms and membership records; a room is freed
 * with its last member. It never touches sockets or the store: announcements go out through
 * the send callback, and connections are opaque cookies to it. Hidden members are counted and
 * receive room traffic but are never announced nor listed. */
#ifndef VS_DIRECTORY_ROOMS_H
#define VS_DIRECTORY_ROOMS_H

#include <stddef.h>
#include <stdint.h>

#define VS_ROOM_NAME_MAX 128

typedef struct vs_rooms vs_rooms_t;
typedef struct vs_room vs_room_t;

/* One connection's membership of one room: an entry in both the room's and the connection's
 * list. Read-only outside rooms.c. */
typedef struct vs_member {
    vs_room_t *room;
    void *conn;                  /* cookie handed to send() */
    struct vs_room_set *set;     /* the connection's list this record is on */
    struct vs_member *r_prev, *r_next; /* in room->members */
    struct vs_member *c_prev, *c_next; /* in the connection's vs_room_set_t */
    uint8_t hidden;
    uint8_t idlen;
    char id[129];                /* the member's folded user id */
} vs_member_t;

struct vs_room {
    vs_member_t *members;
    uint32_t n;       /* members, hidden ones included */
    uint8_t namelen;
    char name[];      /* NUL-terminated */
};

/* Per-connection membership list; the connection embeds it (zeroed) and passes it in. */
typedef struct vs_room_set {
    vs_member_t *head;
    uint32_t n;
} vs_room_set_t;

/* Sends one text frame to conn; data is borrowed for the call. */
typedef void (*vs_rooms_send_fn)(void *conn, const char *data, size_t len, void *ud);

/* Caller frees with vs_rooms_free. send and ud are kept (borrowed). */
vs_rooms_t *vs_rooms_new(vs_rooms_send_fn send, void *ud);
/* Frees every room and membership; the room sets of live connections become empty. */
void vs_rooms_free(vs_rooms_t *r);

/* 1 when name[0..len) is 1 to 128 characters of [A-Za-z0-9._-] (case-sensitive), else 0. */
int vs_room_name_valid(const char *name, size_t len);

/* The room called name (borrowed), or NULL. */
vs_room_t *vs_rooms_find(const vs_rooms_t *r, const char *name, size_t len);
/* set's membership of room, or NULL. Borrowed. */
vs_member_t *vs_rooms_membership(const vs_room_set_t *set, const vs_room_t *room);

/* Adds conn (whose membership list is set, borrowed) as user uid (borrowed, folded, at most
 * 128 chars) to the room name (borrowed, valid), creating it, and announces
 * {"type":"participant_joined",...} to every other member unless hidden. Returns 0 with the
 * room in *room (borrowed); VS_EEXISTS (and *room) if set is already in it; VS_ETOOBIG when
 * the room holds max_participants members (nothing changes). The per-connection cap is the
 * caller's to check (set->n). */
int vs_rooms_join(vs_rooms_t *r, vs_room_set_t *set, void *conn, const char *uid,
                  const char *name, size_t len, int hidden, uint32_t max_participants,
                  vs_room_t **room);
/* Removes set's membership of the room name, announcing participant_left to the others unless
 * the member was hidden; frees the room when it empties. 0, or VS_ENOTFOUND when not a member. */
int vs_rooms_leave(vs_rooms_t *r, vs_room_set_t *set, const char *name, size_t len);
/* Every membership of set ends (on disconnect), each announced as vs_rooms_leave does. */
void vs_rooms_leave_all(vs_rooms_t *r, vs_room_set_t *set);

size_t vs_rooms_count(const vs_rooms_t *r);
/* Memberships across all rooms, hidden ones included. */
size_t vs_rooms_participants(const vs_rooms_t *r);

#endif
