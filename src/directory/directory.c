#include "directory/directory.h"

#include "common/alloc.h"
#include "common/map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vs_sub {
    vs_user_t *target;
    vs_watcher_t *watcher;
    vs_sub_t *t_prev, *t_next; /* in target->watchers */
    vs_sub_t *w_prev, *w_next; /* in watcher->subs */
};

struct vs_directory {
    vs_map_t *users;
    size_t online;
    vs_directory_send_fn send;
    void *ud;
};

vs_directory_t *vs_directory_new(vs_directory_send_fn send, void *ud)
{
    vs_directory_t *d = vs_calloc(1, sizeof *d);
    d->users = vs_map_new();
    d->send = send;
    d->ud = ud;
    return d;
}

static void free_user(void *val, void *ud)
{
    (void)ud;
    vs_user_t *u = val;
    vs_sub_t *s = u->watchers;
    while (s) {
        vs_sub_t *next = s->t_next;
        /* Detach from the watcher too, so an embedded watcher is left empty, not dangling. */
        if (s->w_prev)
            s->w_prev->w_next = s->w_next;
        else
            s->watcher->subs = s->w_next;
        if (s->w_next)
            s->w_next->w_prev = s->w_prev;
        s->watcher->nsubs--;
        free(s);
        s = next;
    }
    free(u);
}

void vs_directory_free(vs_directory_t *d)
{
    if (!d)
        return;
    vs_map_each(d->users, free_user, NULL);
    vs_map_free(d->users);
    free(d);
}

vs_user_t *vs_directory_find(const vs_directory_t *d, const char *id, size_t len)
{
    return vs_map_get(d->users, id, len);
}

static vs_user_t *find_or_add(vs_directory_t *d, const char *id, size_t len)
{
    vs_user_t *u = vs_map_get(d->users, id, len);
    if (u)
        return u;
    u = vs_calloc(1, sizeof *u + len + 1);
    memcpy(u->id, id, len);
    u->idlen = (uint8_t)len;
    vs_map_put(d->users, u->id, len, u);
    return u;
}

/* Drops an entry nobody needs any more: offline and unwatched. */
static void maybe_gc(vs_directory_t *d, vs_user_t *u)
{
    if (u->conn || u->rnode || u->watchers)
        return;
    vs_map_del(d->users, u->id, u->idlen);
    free(u);
}

size_t vs_presence_frame(char *out, const char *user_id, int online, const char *id_raw,
                         size_t id_len)
{
    int n;
    if (id_raw)
        n = snprintf(out, VS_PRESENCE_MAX,
                     "{\"type\":\"presence\",\"userId\":\"%s\",\"online\":%s,\"id\":\"%.*s\"}",
                     user_id, online ? "true" : "false", (int)id_len, id_raw);
    else
        n = snprintf(out, VS_PRESENCE_MAX, "{\"type\":\"presence\",\"userId\":\"%s\",\"online\":%s}",
                     user_id, online ? "true" : "false");
    return n < 0 ? 0 : ((size_t)n < VS_PRESENCE_MAX ? (size_t)n : VS_PRESENCE_MAX - 1);
}

static void notify(vs_directory_t *d, vs_user_t *u)
{
    if (!u->watchers)
        return;
    char frame[VS_PRESENCE_MAX];
    size_t n = vs_presence_frame(frame, u->id, vs_user_online(u), NULL, 0);
    for (vs_sub_t *s = u->watchers; s; s = s->t_next)
        d->send(s->watcher->conn, frame, n, d->ud);
}

vs_user_t *vs_directory_set_online(vs_directory_t *d, const char *id, size_t len,
                                   const uint8_t key[32], void *conn, void **replaced)
{
    vs_user_t *u = find_or_add(d, id, len);
    *replaced = NULL;
    /* A token-registered user proves its id without a key: the store's binding, if any, stays
     * what discover reports. */
    u->has_key = key != NULL;
    if (key)
        memcpy(u->key, key, 32);
    if (u->conn == conn)
        return u;
    if (u->conn) {
        *replaced = u->conn;
        u->conn = conn;
        return u;
    }
    u->conn = conn;
    d->online++;
    if (u->rnode) {
        u->rnode = 0; /* moved here from another node: no flicker */
        return u;
    }
    notify(d, u);
    return u;
}

vs_user_t *vs_directory_set_remote(vs_directory_t *d, const char *id, size_t len, uint16_t node,
                                   const uint8_t key[32], void **replaced)
{
    vs_user_t *u = find_or_add(d, id, len);
    *replaced = NULL;
    int was = u->conn != NULL || u->rnode != 0;
    u->has_key = key != NULL;
    if (key)
        memcpy(u->key, key, 32);
    if (u->conn) {
        *replaced = u->conn;
        u->conn = NULL;
        d->online--;
    }
    u->rnode = node;
    if (!was)
        notify(d, u);
    return u;
}

void vs_directory_clear_remote(vs_directory_t *d, vs_user_t *u, uint16_t node)
{
    if (u->rnode != node || node == 0)
        return;
    u->rnode = 0;
    if (!u->conn)
        notify(d, u);
    maybe_gc(d, u);
}

struct each_ctx {
    void (*fn)(vs_user_t *, void *);
    void *ud;
};

static void each_cb(void *val, void *ud)
{
    struct each_ctx *e = ud;
    e->fn(val, e->ud);
}

void vs_directory_each(vs_directory_t *d, void (*fn)(vs_user_t *user, void *ud), void *ud)
{
    struct each_ctx e = {fn, ud};
    vs_map_each(d->users, each_cb, &e);
}

void vs_directory_set_offline(vs_directory_t *d, vs_user_t *u, void *conn)
{
    if (u->conn != conn)
        return;
    u->conn = NULL;
    d->online--;
    if (!u->rnode)
        notify(d, u);
    maybe_gc(d, u);
}

int vs_directory_is_subscribed(const vs_watcher_t *w, const vs_user_t *u)
{
    if (w->nsubs <= u->nwatchers) {
        for (vs_sub_t *s = w->subs; s; s = s->w_next)
            if (s->target == u)
                return 1;
    } else {
        for (vs_sub_t *s = u->watchers; s; s = s->t_next)
            if (s->watcher == w)
                return 1;
    }
    return 0;
}

vs_user_t *vs_directory_subscribe(vs_directory_t *d, vs_watcher_t *w, const char *id, size_t len)
{
    vs_user_t *u = find_or_add(d, id, len);
    if (vs_directory_is_subscribed(w, u))
        return u;
    vs_sub_t *s = vs_calloc(1, sizeof *s);
    s->target = u;
    s->watcher = w;
    s->t_next = u->watchers;
    if (u->watchers)
        u->watchers->t_prev = s;
    u->watchers = s;
    u->nwatchers++;
    s->w_next = w->subs;
    if (w->subs)
        w->subs->w_prev = s;
    w->subs = s;
    w->nsubs++;
    return u;
}

static void unlink_sub(vs_directory_t *d, vs_sub_t *s)
{
    vs_user_t *u = s->target;
    vs_watcher_t *w = s->watcher;
    if (s->t_prev)
        s->t_prev->t_next = s->t_next;
    else
        u->watchers = s->t_next;
    if (s->t_next)
        s->t_next->t_prev = s->t_prev;
    u->nwatchers--;
    if (s->w_prev)
        s->w_prev->w_next = s->w_next;
    else
        w->subs = s->w_next;
    if (s->w_next)
        s->w_next->w_prev = s->w_prev;
    w->nsubs--;
    free(s);
    maybe_gc(d, u);
}

void vs_directory_unsubscribe(vs_directory_t *d, vs_watcher_t *w, const char *id, size_t len)
{
    vs_user_t *u = vs_map_get(d->users, id, len);
    if (!u)
        return;
    if (w->nsubs <= u->nwatchers) {
        for (vs_sub_t *s = w->subs; s; s = s->w_next)
            if (s->target == u) {
                unlink_sub(d, s);
                return;
            }
    } else {
        for (vs_sub_t *s = u->watchers; s; s = s->t_next)
            if (s->watcher == w) {
                unlink_sub(d, s);
                return;
            }
    }
}

void vs_directory_unsubscribe_all(vs_directory_t *d, vs_watcher_t *w)
{
    while (w->subs)
        unlink_sub(d, w->subs);
}

size_t vs_directory_online_count(const vs_directory_t *d)
{
    return d->online;
}

size_t vs_directory_entry_count(const vs_directory_t *d)
{
    return vs_map_count(d->users);
}
