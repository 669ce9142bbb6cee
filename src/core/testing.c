#include "core/testing.h"

#include "common/alloc.h"
#include "common/error.h"
#include "core/server_impl.h"
#include "core/session.h"
#include "protocol/userid.h"
#include "transport/http.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void flush_unlink(vs_conn_t *c)
{
    if (!(c->flags & VS_CONN_IN_FLUSH))
        return;
    for (vs_conn_t **pp = &c->srv->flush_head; *pp; pp = &(*pp)->flush_next) {
        if (*pp == c) {
            *pp = c->flush_next;
            break;
        }
    }
    c->flush_next = NULL;
    c->flags &= (uint8_t)~VS_CONN_IN_FLUSH;
}

vs_server_t *vs_testing_server_new(const vs_config_t *cfg, char *err, size_t errlen)
{
    int exit_code;
    vs_server_t *s = vs_server_new(cfg, err, errlen, &exit_code);
    if (!s)
        return NULL;
    /* Nobody may connect, and no timer or check may flush, ping or sweep the socketless
     * connections: the harness decides when anything runs. */
    uv_close((uv_handle_t *)&s->listener, NULL);
    if (s->api_listening)
        uv_close((uv_handle_t *)&s->api_listener, NULL);
    s->api_listening = 0;
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_timer_stop(&s->ping_timer);
    uv_timer_stop(&s->sweep_timer);
    uv_check_stop(&s->flush_check);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    return s;
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void vs_testing_server_free(vs_server_t *s)
{
    if (!s)
        return;
    vs_testing_settle(s);
    while (s->active.head)
        vs_testing_conn_free(s->active.head);
    while (s->pending.head)
        vs_testing_conn_free(s->pending.head);
    uv_walk(&s->loop, close_handle, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    vs_server_free(s);
}

vs_conn_t *vs_testing_conn_new(vs_server_t *s, const char *addr)
{
    vs_conn_t *c = vs_calloc(1, sizeof *c);
    c->srv = s;
    if (!addr) {
        c->flags |= VS_CONN_TRUSTED;
    } else if (vs_conn_attach_ip(c, addr) != 0) {
        free(c);
        return NULL;
    }
    /* An initialised handle without a socket: reads and writes never start, and
     * vs_conn_destroy can close it like any other. */
    uv_tcp_init(&s->loop, &c->tcp);
    c->tcp.data = c;
    s->nconns++;
    c->state = VS_CONN_HTTP;
    c->since = vs_server_now(s);
    c->http = vs_http_req_new();
    vs_conn_list_add(&s->pending, c);
    return c;
}

int vs_testing_conn_upgrade(vs_conn_t *c, const char *nonce)
{
    size_t n = nonce ? strlen(nonce) : 0;
    if (n == 0 || n >= sizeof c->nonce ||
        strspn(nonce, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "abcdefghijklmnopqrstuvwxyz"
                      "0123456789-_") != n)
        return VS_EINVAL;
    if (c->state != VS_CONN_HTTP || (c->flags & VS_CONN_DOOMED))
        return VS_EINVAL;
    /* The accept key only goes into the 101 response, which is dropped below. */
    vs_conn_upgrade(c, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", NULL, 0);
    vs_testing_conn_clear_output(c);
    if (c->state != VS_CONN_WS || (c->flags & VS_CONN_DOOMED))
        return VS_EINVAL;
    memset(c->nonce, 0, sizeof c->nonce);
    memcpy(c->nonce, nonce, n);
    return 0;
}

int vs_testing_conn_set_user(vs_conn_t *c, const char *uid, const uint8_t key[32])
{
    vs_server_t *s = c->srv;
    char folded[VS_USERID_MAX + 1];
    size_t n = strlen(uid);
    if (c->state != VS_CONN_WS || c->user || vs_userid_fold(uid, n, folded) != 0 ||
        strcmp(folded, uid) != 0)
        return VS_EINVAL;
    vs_user_t *u = vs_directory_find(s->dir, uid, n);
    if (u && u->conn)
        return VS_EINVAL;
    void *replaced = NULL;
    c->user = vs_directory_set_online(s->dir, uid, n, key, c, &replaced);
    return 0;
}

void vs_testing_conn_clear_output(vs_conn_t *c)
{
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    flush_unlink(c);
}

void vs_testing_conn_free(vs_conn_t *c)
{
    vs_server_t *s = c->srv;
    /* Doomed first, as the flush check's connections are, so that nothing (a presence change
     * of its own user, say) queues on it while it is destroyed; then off the flush list, since
     * the close below frees it. */
    vs_conn_doom(c);
    flush_unlink(c);
    vs_conn_destroy(c);
    uv_run(&s->loop, UV_RUN_NOWAIT);
}

void vs_testing_settle(vs_server_t *s)
{
    while (s->regq.busy || s->regq.head) {
        vs_register_submit(s);
        uv_run(&s->loop, UV_RUN_ONCE);
    }
}

static int list_uses_addresses(const vs_conn_list_t *l)
{
    for (const vs_conn_t *c = l->head; c; c = c->next)
        if (c->ip)
            return 1;
    return 0;
}

int vs_testing_reset_addresses(vs_server_t *s)
{
    if (list_uses_addresses(&s->active) || list_uses_addresses(&s->pending))
        return VS_EINVAL;
    vs_ip_table_free(s->ips);
    s->ips = vs_ip_table_new();
    return 0;
}

int vs_testing_idle(const vs_server_t *s)
{
    return s->active.n == 0 && !s->active.head && s->pending.n == 0 && !s->pending.head &&
           s->nconns == 0 && vs_directory_entry_count(s->dir) == 0 &&
           vs_directory_online_count(s->dir) == 0 && !s->regq.head && !s->regq.busy &&
           s->regq.n == 0 && !s->flush_head && vs_rooms_count(s->rooms) == 0 &&
           vs_rooms_participants(s->rooms) == 0;
}

int vs_testing_next_frame(const uint8_t *buf, size_t len, size_t *off, int *opcode,
                          const uint8_t **payload, size_t *plen)
{
    size_t o = *off;
    if (o >= len)
        return 0;
    if (len - o < 2)
        return VS_EPROTO;
    uint8_t b0 = buf[o], b1 = buf[o + 1];
    /* A server sends every frame whole (FIN), without extensions (RSV) or a mask. */
    if ((b0 & 0xF0) != 0x80 || (b1 & 0x80))
        return VS_EPROTO;
    uint64_t n = b1 & 0x7F;
    size_t h = 2;
    if (n == 126) {
        if (len - o < 4)
            return VS_EPROTO;
        n = (uint64_t)buf[o + 2] << 8 | buf[o + 3];
        h = 4;
        if (n < 126)
            return VS_EPROTO;
    } else if (n == 127) {
        if (len - o < 10)
            return VS_EPROTO;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | buf[o + 2 + i];
        h = 10;
        if (n <= 0xFFFF || (n >> 63))
            return VS_EPROTO;
    }
    if (n > len - o - h)
        return VS_EPROTO;
    int op = b0 & 0x0F;
    if (op >= 0x8 && n > VS_WS_MAX_CONTROL)
        return VS_EPROTO;
    *opcode = op;
    *payload = buf + o + h;
    *plen = (size_t)n;
    *off = o + h + (size_t)n;
    return 1;
}

static struct {
    vs_config_t cfg;
    vs_server_t *srv;
    char dir[32];
} fuzz;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void fuzz_cleanup(void)
{
    vs_testing_server_free(fuzz.srv);
    fuzz.srv = NULL;
    vs_config_deinit(&fuzz.cfg);
    nftw(fuzz.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

vs_server_t *vs_testing_fuzz_server(void (*tune)(vs_config_t *cfg), const vs_config_t **cfg_out)
{
    if (!fuzz.srv) {
        snprintf(fuzz.dir, sizeof fuzz.dir, "/tmp/vs-fuzz-XXXXXX");
        if (!mkdtemp(fuzz.dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        vs_config_defaults(&fuzz.cfg);
        free(fuzz.cfg.host);
        fuzz.cfg.host = vs_strdup("127.0.0.1");
        fuzz.cfg.port = 0;
        free(fuzz.cfg.data_dir);
        fuzz.cfg.data_dir = vs_strdup(fuzz.dir);
        if (tune)
            tune(&fuzz.cfg);
        char err[256];
        fuzz.srv = vs_testing_server_new(&fuzz.cfg, err, sizeof err);
        if (!fuzz.srv) {
            fprintf(stderr, "fuzz: %s\n", err);
            abort();
        }
        atexit(fuzz_cleanup);
    }
    if (cfg_out)
        *cfg_out = &fuzz.cfg;
    return fuzz.srv;
}
