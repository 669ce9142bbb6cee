/* rooms.c: rooms as a map of name -> room, each with a doubly linked member list; each member
 * record is also on its connection's list, so leaving everything on disconnect needs no lookup. */
#include "directory/rooms.h"

#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/map.h"

#include <stdlib.h>
#include <string.h>

struct vs_rooms {
    vs_map_t *rooms;
    size_t participants;
    vs_rooms_send_fn send;
    void *ud;
    vs_buf_t frame; /* announcement being built */
};

vs_rooms_t *vs_rooms_new(vs_rooms_send_fn send, void *ud)
{
    vs_rooms_t *r = vs_calloc(1, sizeof *r);
    r->rooms = vs_map_new();
    r->send = send;
    r->ud = ud;
    vs_buf_init(&r->frame);
    return r;
}

static void free_room(void *val, void *ud)
{
    (void)ud;
    vs_room_t *room = val;
    vs_member_t *m = room->members;
    while (m) {
        vs_member_t *next = m->r_next;
        /* Leave the connection's list consistent: it may outlive the rooms. */
        if (m->c_prev)
            m->c_prev->c_next = m->c_next;
        else
            m->set->head = m->c_next;
        if (m->c_next)
            m->c_next->c_prev = m->c_prev;
        m->set->n--;
        free(m);
        m = next;
    }
    free(room);
}

void vs_rooms_free(vs_rooms_t *r)
{
    if (!r)
        return;
    vs_map_each(r->rooms, free_room, NULL);
    vs_map_free(r->rooms);
    vs_buf_deinit(&r->frame);
    free(r);
}

int vs_room_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > VS_ROOM_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

vs_room_t *vs_rooms_find(const vs_rooms_t *r, const char *name, size_t len)
{
    return vs_map_get(r->rooms, name, len);
}

vs_member_t *vs_rooms_membership(const vs_room_set_t *set, const vs_room_t *room)
{
    /* A connection is in a handful of rooms (max-rooms-per-connection), so a walk is cheapest. */
    for (vs_member_t *m = set->head; m; m = m->c_next)
        if (m->room == room)
            return m;
    return NULL;
}

/* Tells every member but self that who joined or left. Room names and ids need no escaping. */
static void announce(vs_rooms_t *r, vs_room_t *room, const vs_member_t *who, const char *type)
{
    if (who->hidden)
        return;
    vs_buf_t *b = &r->frame;
    b->len = 0;
    vs_buf_printf(b, "{\"type\":\"%s\",\"room\":\"%s\",\"userId\":\"%s\"}", type, room->name,
                  who->id);
    for (vs_member_t *m = room->members; m; m = m->r_next)
        if (m != who)
            r->send(m->conn, b->p, b->len, r->ud);
}

int vs_rooms_join(vs_rooms_t *r, vs_room_set_t *set, void *conn, const char *uid,
                  const char *name, size_t len, int hidden, uint32_t max_participants,
                  vs_room_t **out)
{
    size_t idlen = strlen(uid);
    if (idlen > 128 || !vs_room_name_valid(name, len))
        return VS_EINVAL;
    vs_room_t *room = vs_map_get(r->rooms, name, len);
    if (room && vs_rooms_membership(set, room)) {
        *out = room;
        return VS_EEXISTS;
    }
    if (room && room->n >= max_participants)
        return VS_ETOOBIG;
    if (!room) {
        if (max_participants == 0)
            return VS_ETOOBIG;
        room = vs_calloc(1, sizeof *room + len + 1);
        memcpy(room->name, name, len);
        room->namelen = (uint8_t)len;
        vs_map_put(r->rooms, room->name, len, room);
    }
    vs_member_t *m = vs_calloc(1, sizeof *m);
    m->room = room;
    m->conn = conn;
    m->set = set;
    m->hidden = hidden != 0;
    m->idlen = (uint8_t)idlen;
    memcpy(m->id, uid, idlen + 1);
    /* Appended, so that participants are listed in the order they joined. */
    if (room->members) {
        vs_member_t *last = room->members;
        while (last->r_next)
            last = last->r_next;
        last->r_next = m;
        m->r_prev = last;
    } else {
        room->members = m;
    }
    room->n++;
    m->c_next = set->head;
    if (set->head)
        set->head->c_prev = m;
    set->head = m;
    set->n++;
    r->participants++;
    announce(r, room, m, "participant_joined");
    *out = room;
    return 0;
}

static void remove_member(vs_rooms_t *r, vs_member_t *m)
{
    vs_room_t *room = m->room;
    if (m->r_prev)
        m->r_prev->r_next = m->r_next;
    else
        room->members = m->r_next;
    if (m->r_next)
        m->r_next->r_prev = m->r_prev;
    room->n--;
    vs_room_set_t *set = m->set;
    if (m->c_prev)
        m->c_prev->c_next = m->c_next;
    else
        set->head = m->c_next;
    if (m->c_next)
        m->c_next->c_prev = m->c_prev;
    set->n--;
    r->participants--;
    announce(r, room, m, "participant_left");
    free(m);
    if (room->n == 0) {
        vs_map_del(r->rooms, room->name, room->namelen);
        free(room);
    }
}

int vs_rooms_leave(vs_rooms_t *r, vs_room_set_t *set, const char *name, size_t len)
{
    vs_room_t *room = vs_map_get(r->rooms, name, len);
    vs_member_t *m = room ? vs_rooms_membership(set, room) : NULL;
    if (!m)
        return VS_ENOTFOUND;
    remove_member(r, m);
    return 0;
}

void vs_rooms_leave_all(vs_rooms_t *r, vs_room_set_t *set)
{
    while (set->head)
        remove_member(r, set->head);
}

size_t vs_rooms_count(const vs_rooms_t *r)
{
    return vs_map_count(r->rooms);
}

size_t vs_rooms_participants(const vs_rooms_t *r)
{
    return r->participants;
}
