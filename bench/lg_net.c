/* lg_net.c: the generator's event loop and WebSocket client: non-blocking connects from
 * several 127.0.0.x source addresses, the HTTP upgrade, masked frames out, unmasked frames in,
 * pings answered, output batched into one write per connection per loop turn. */
#include "lg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LG_EPROTO (-EPROTO)
#define MAX_EVENTS 1024
#define MAX_HTTP_RESPONSE 8192
/* Servers here send small messages; anything bigger is a bug worth stopping on. */
#define MAX_FRAME (16u << 20)

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static int is_loopback(struct in_addr a)
{
    return (ntohl(a.s_addr) >> 24) == 127;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

void lg_loop_init(lg_loop_t *l, enum lg_proto proto, const char *addr, int port,
                  const char *src_first, int src_count, const lg_handlers_t *h, void *ud)
{
    memset(l, 0, sizeof *l);
    l->proto = proto;
    l->h = h;
    l->ud = ud;
    l->ctl_fd = -1;
    l->dst.sin_family = AF_INET;
    l->dst.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &l->dst.sin_addr) != 1 || !is_loopback(l->dst.sin_addr))
        lg_die("server address %s is not in 127.0.0.0/8: the bench only talks to loopback", addr);
    if (port <= 0 || port > 65535)
        lg_die("bad port %d", port);
    if (src_count > 0) {
        struct in_addr s;
        if (inet_pton(AF_INET, src_first, &s) != 1 || !is_loopback(s))
            lg_die("source address %s is not in 127.0.0.0/8", src_first);
        l->src_first = ntohl(s.s_addr);
        l->src_count = (uint32_t)src_count;
        if (((l->src_first + l->src_count - 1) >> 24) != 127 || (l->src_first & 0xff) == 0)
            lg_die("source addresses %s + %d leave 127.0.0.0/8", src_first, src_count);
    }
    snprintf(l->host_hdr, sizeof l->host_hdr, "%s:%d", addr, port);
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    if (l->ep < 0)
        lg_die("epoll_create1: %s", strerror(errno));
    l->rbuf_cap = 256 * 1024;
    struct timespec mono, real;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    l->mono_minus_real =
        ((int64_t)mono.tv_sec - real.tv_sec) * 1000000000 + (mono.tv_nsec - real.tv_nsec);
    l->rbuf = lg_xmalloc(l->rbuf_cap);
    if (getrandom(&l->rng, sizeof l->rng, 0) != sizeof l->rng || l->rng == 0)
        l->rng = 0x9e3779b97f4a7c15ull ^ lg_now_ns();
    /* One Sec-WebSocket-Key per process: servers only echo its hash, and one SHA-1 per process
     * instead of per connection keeps the connection-rate scenario about the server. */
    unsigned char nonce[16], digest[SHA_DIGEST_LENGTH];
    for (int i = 0; i < 16; i++)
        nonce[i] = (unsigned char)xorshift(&l->rng);
    EVP_EncodeBlock((unsigned char *)l->ws_key, nonce, sizeof nonce);
    char cat[64 + sizeof WS_GUID];
    int n = snprintf(cat, sizeof cat, "%s%s", l->ws_key, WS_GUID);
    SHA1((const unsigned char *)cat, (size_t)n, digest);
    EVP_EncodeBlock((unsigned char *)l->ws_accept, digest, sizeof digest);
}

void lg_loop_set_second(lg_loop_t *l, const char *addr, int port)
{
    l->dst2.sin_family = AF_INET;
    l->dst2.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &l->dst2.sin_addr) != 1 || !is_loopback(l->dst2.sin_addr))
        lg_die("server address %s is not in 127.0.0.0/8: the bench only talks to loopback", addr);
    if (port <= 0 || port > 65535)
        lg_die("bad port %d", port);
    snprintf(l->host_hdr2, sizeof l->host_hdr2, "%s:%d", addr, port);
    l->has_dst2 = 1;
}

static void free_conn(lg_conn_t *c)
{
    lg_pq_conn_free(c);
    free(c->in);
    free(c->msg);
    free(c->out);
    free(c);
}

static void reap(lg_loop_t *l)
{
    while (l->dead_head) {
        lg_conn_t *c = l->dead_head;
        l->dead_head = c->dead_next;
        free_conn(c);
    }
}

void lg_loop_deinit(lg_loop_t *l)
{
    reap(l);
    close(l->ep);
    free(l->rbuf);
    l->rbuf = NULL;
}

void lg_loop_watch_ctl(lg_loop_t *l, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        lg_die("epoll_ctl(ctl): %s", strerror(errno));
    l->ctl_fd = fd;
}

static void set_events(lg_conn_t *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(c->loop->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void kill_conn(lg_conn_t *c, int rst)
{
    lg_loop_t *l = c->loop;
    if (rst) {
        struct linger lin = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
    }
    close(c->fd);
    c->fd = -1;
    c->state = LG_DEAD;
    c->dead_next = l->dead_head;
    l->dead_head = c;
    l->nconns--;
}

/* The server ended the connection or broke the protocol: tell the scenario, then free. */
static void fail(lg_conn_t *c, int err)
{
    if (c->state == LG_DEAD)
        return;
    lg_loop_t *l = c->loop;
    if (c->state == LG_CONNECTING)
        l->n_connect_fail++;
    else if (err == LG_EPROTO)
        l->n_proto_err++;
    else
        l->n_closed_by_peer++;
    kill_conn(c, 1);
    if (l->h->on_close)
        l->h->on_close(c, err);
}

void lg_close(lg_conn_t *c, int rst)
{
    if (c->state != LG_DEAD)
        kill_conn(c, rst);
}

int lg_has_output(const lg_conn_t *c)
{
    return c->out_len > c->out_off;
}

static void out_reserve(lg_conn_t *c, size_t n)
{
    if (c->out_off > 0 && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if ((size_t)c->out_cap - c->out_len >= n)
        return;
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if ((size_t)c->out_cap - c->out_len >= n)
            return;
    }
    size_t cap = c->out_cap ? c->out_cap : 1024;
    while (cap - c->out_len < n)
        cap *= 2;
    if (cap > UINT32_MAX)
        lg_die("output queue of one connection over 4 GiB");
    c->out = lg_xrealloc(c->out, cap);
    c->out_cap = (uint32_t)cap;
}

static void mark_flush(lg_conn_t *c)
{
    if (c->in_flush)
        return;
    c->in_flush = 1;
    c->flush_next = c->loop->flush_head;
    c->loop->flush_head = c;
}

static void queue_raw(lg_conn_t *c, const char *data, size_t len)
{
    out_reserve(c, len);
    memcpy(c->out + c->out_len, data, len);
    c->out_len += (uint32_t)len;
    mark_flush(c);
}

static void queue_frame(lg_conn_t *c, int opcode, const char *data, size_t len)
{
    if (c->state != LG_OPEN)
        return;
    out_reserve(c, len + 14);
    unsigned char *p = (unsigned char *)c->out + c->out_len;
    *p++ = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        *p++ = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        *p++ = 0x80 | 126;
        *p++ = (unsigned char)(len >> 8);
        *p++ = (unsigned char)len;
    } else {
        *p++ = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            *p++ = (unsigned char)((uint64_t)len >> (8 * i));
    }
    uint32_t mask32 = (uint32_t)xorshift(&c->loop->rng);
    unsigned char mask[4];
    memcpy(mask, &mask32, 4);
    memcpy(p, mask, 4);
    p += 4;
    /* Eight bytes at a time: the mask repeats every four, so a doubled copy covers a word. */
    uint64_t m64;
    memcpy(&m64, mask, 4);
    memcpy((char *)&m64 + 4, mask, 4);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, data + i, 8);
        w ^= m64;
        memcpy(p + i, &w, 8);
    }
    for (; i < len; i++)
        p[i] = (unsigned char)data[i] ^ mask[i & 3];
    p += len;
    c->out_len = (uint32_t)((char *)p - c->out);
    mark_flush(c);
}

void lg_send_text(lg_conn_t *c, const char *data, size_t len)
{
    if (lg_pq_active(c) && c->state == LG_OPEN) {
        const char *frame;
        size_t flen;
        lg_pq_seal(c, data, len, &frame, &flen);
        queue_frame(c, 1, frame, flen);
        return;
    }
    queue_frame(c, 1, data, len);
}

lg_conn_t *lg_connect(lg_loop_t *l, const char *uid, uint32_t idx, uint32_t role)
{
    return lg_connect_to(l, uid, idx, role, 0);
}

lg_conn_t *lg_connect_to(lg_loop_t *l, const char *uid, uint32_t idx, uint32_t role, int second)
{
    if (second && !l->has_dst2)
        lg_die("lg_connect_to: no second server set");
    const struct sockaddr_in *dst = second ? &l->dst2 : &l->dst;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        l->n_connect_fail++;
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (l->rx_timestamps)
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    if (l->src_count > 0) {
        /* The port is picked at connect() for the full 4-tuple: each source address gets its own
         * ephemeral range, which is what lets one generator go past ~28k connections. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(l->src_first + l->src_next++ % l->src_count);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            close(fd);
            l->n_connect_fail++;
            return NULL;
        }
    }
    if (connect(fd, (const struct sockaddr *)dst, sizeof *dst) != 0 && errno != EINPROGRESS) {
        close(fd);
        l->n_connect_fail++;
        return NULL;
    }
    lg_conn_t *c = lg_xcalloc(1, sizeof *c);
    c->loop = l;
    c->fd = fd;
    c->idx = idx;
    c->role = role;
    c->second = (uint8_t)(second != 0);
    c->state = LG_CONNECTING;
    c->t_start = lg_now_ns();
    snprintf(c->uid, sizeof c->uid, "%s", uid);
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        free(c);
        l->n_connect_fail++;
        return NULL;
    }
    c->want_out = 1;
    l->nconns++;
    return c;
}

static void on_connected(lg_conn_t *c)
{
    int err = 0;
    socklen_t elen = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
        err = errno;
    if (err != 0) {
        fail(c, -err);
        return;
    }
    lg_loop_t *l = c->loop;
    char path[256], req[512];
    lg_proto_path(l->proto, c->uid, path, sizeof path);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, c->second ? l->host_hdr2 : l->host_hdr, l->ws_key);
    c->state = LG_UPGRADING;
    c->want_out = 0;
    set_events(c, EPOLLIN);
    queue_raw(c, req, (size_t)n);
}

/* Checks the 101 answer in buf[0..len) (len includes the blank line). */
static int check_upgrade(lg_conn_t *c, const char *buf, size_t len)
{
    if (len < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0)
        return -1;
    const char *p = memchr(buf, '\n', len), *end = buf + len;
    int accepted = 0;
    while (p && p + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        static const char name[] = "sec-websocket-accept:";
        size_t nl = sizeof name - 1;
        if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = (size_t)(eol - v);
            while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            accepted = vl == strlen(c->loop->ws_accept) && memcmp(v, c->loop->ws_accept, vl) == 0;
        }
        p = eol;
    }
    return accepted ? 0 : -1;
}

static void deliver(lg_conn_t *c, char *data, size_t len)
{
    if (lg_pq_active(c)) {
        /* A session's frames must all open, in order: a bad one ends the connection, as the
         * server does. */
        if (lg_pq_open(c, data, len, &data, &len) != 0) {
            fail(c, LG_EPROTO);
            return;
        }
    }
    if (c->loop->h->on_text)
        c->loop->h->on_text(c, data, len);
}

static void msg_append(lg_conn_t *c, const char *data, size_t len)
{
    if ((size_t)c->msg_cap - c->msg_len < len) {
        size_t cap = c->msg_cap ? c->msg_cap : 1024;
        while (cap - c->msg_len < len)
            cap *= 2;
        c->msg = lg_xrealloc(c->msg, cap);
        c->msg_cap = (uint32_t)cap;
    }
    memcpy(c->msg + c->msg_len, data, len);
    c->msg_len += (uint32_t)len;
}

/* Handles one complete frame. Returns 0, or a negative error to drop the connection. */
static int on_frame(lg_conn_t *c, int fin, int opcode, char *payload, size_t len)
{
    switch (opcode) {
    case 0: /* continuation */
        if (!c->msg_opcode)
            return LG_EPROTO;
        msg_append(c, payload, len);
        if (fin) {
            int op = c->msg_opcode;
            c->msg_opcode = 0;
            uint32_t n = c->msg_len;
            c->msg_len = 0;
            if (op == 1)
                deliver(c, c->msg, n);
        }
        return 0;
    case 1:
    case 2:
        if (c->msg_opcode)
            return LG_EPROTO;
        if (!fin) {
            c->msg_opcode = (uint8_t)opcode;
            c->msg_len = 0;
            msg_append(c, payload, len);
        } else if (opcode == 1) {
            deliver(c, payload, len);
        }
        return 0;
    case 8: { /* close: echo the code, then end the connection as the server asked */
        int code = len >= 2 ? ((unsigned char)payload[0] << 8 | (unsigned char)payload[1]) : 1005;
        queue_frame(c, 8, payload, len >= 2 ? 2 : 0);
        if (c->out_len > c->out_off)
            (void)!send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                        MSG_NOSIGNAL | MSG_DONTWAIT);
        c->out_off = c->out_len = 0;
        return code > 0 ? -10000 - code : LG_EPROTO;
    }
    case 9:
        if (!fin || len > 125)
            return LG_EPROTO;
        queue_frame(c, 10, payload, len);
        return 0;
    case 10:
        return 0;
    default:
        return LG_EPROTO;
    }
}

/* Parses frames from buf[0..len); returns bytes consumed, or a negative error. */
static long parse_frames(lg_conn_t *c, char *buf, size_t len)
{
    size_t off = 0;
    while (c->state == LG_OPEN && len - off >= 2) {
        unsigned char b0 = (unsigned char)buf[off], b1 = (unsigned char)buf[off + 1];
        if (b1 & 0x80 || (b0 & 0x70))
            return LG_EPROTO; /* servers never mask; no extensions were negotiated */
        uint64_t plen = b1 & 0x7f;
        size_t hlen = 2;
        if (plen == 126) {
            if (len - off < 4)
                break;
            plen = (uint64_t)(unsigned char)buf[off + 2] << 8 | (unsigned char)buf[off + 3];
            hlen = 4;
        } else if (plen == 127) {
            if (len - off < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | (unsigned char)buf[off + 2 + i];
            hlen = 10;
        }
        if (plen > MAX_FRAME)
            return LG_EPROTO;
        if (len - off - hlen < plen)
            break;
        int rc = on_frame(c, b0 & 0x80, b0 & 0x0f, buf + off + hlen, (size_t)plen);
        if (rc < 0)
            return rc;
        off += hlen + (size_t)plen;
    }
    return (long)off;
}

static void keep_input(lg_conn_t *c, const char *rest, size_t n)
{
    if (n == 0) {
        c->in_len = 0;
        if (c->in_cap > 4096) {
            free(c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
        return;
    }
    if (c->in_cap < n) {
        free(c->in);
        c->in = lg_xmalloc(n);
        c->in_cap = (uint32_t)n;
    }
    memmove(c->in, rest, n);
    c->in_len = (uint32_t)n;
}

/* recv(), or with rx_timestamps recvmsg() that also records when the kernel received the last
 * segment read (SO_TIMESTAMPNS: CLOCK_REALTIME, converted to lg_now_ns()'s clock). */
static ssize_t read_some(lg_conn_t *c, char *buf, size_t len)
{
    if (!c->loop->rx_timestamps)
        return recv(c->fd, buf, len, 0);
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    ssize_t n = recvmsg(c->fd, &mh, 0);
    if (n <= 0)
        return n;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(cm), sizeof ts);
            int64_t real = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
            c->rx_ns = (uint64_t)(real + c->loop->mono_minus_real);
        }
    }
    return n;
}

static void do_read(lg_conn_t *c)
{
    lg_loop_t *l = c->loop;
    for (int rounds = 0; rounds < 4 && c->state != LG_DEAD; rounds++) {
        size_t have = c->in_len;
        while (have + 65536 > l->rbuf_cap) {
            l->rbuf_cap *= 2;
            l->rbuf = lg_xrealloc(l->rbuf, l->rbuf_cap);
        }
        if (have)
            memcpy(l->rbuf, c->in, have);
        ssize_t n = read_some(c, l->rbuf + have, l->rbuf_cap - have);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            fail(c, -errno);
            return;
        }
        if (n == 0) {
            fail(c, -ECONNRESET);
            return;
        }
        size_t total = have + (size_t)n, off = 0;
        char *buf = l->rbuf;
        if (c->state == LG_UPGRADING) {
            char *eoh = memmem(buf, total, "\r\n\r\n", 4);
            if (!eoh) {
                if (total > MAX_HTTP_RESPONSE)
                    fail(c, LG_EPROTO);
                else
                    keep_input(c, buf, total);
                continue;
            }
            off = (size_t)(eoh + 4 - buf);
            if (check_upgrade(c, buf, off) != 0) {
                fail(c, LG_EPROTO);
                return;
            }
            c->state = LG_OPEN;
            if (l->h->on_open)
                l->h->on_open(c);
            if (c->state != LG_OPEN)
                return;
        }
        long used = parse_frames(c, buf + off, total - off);
        if (c->state == LG_DEAD)
            return;
        if (used < 0) {
            fail(c, (int)(used <= -10000 ? -(used + 10000) : used));
            return;
        }
        keep_input(c, buf + off + used, total - off - (size_t)used);
        if ((size_t)n < l->rbuf_cap - have)
            return; /* the socket is drained */
    }
}

static void do_write(lg_conn_t *c)
{
    while (c->state != LG_DEAD && c->out_len > c->out_off) {
        ssize_t n =
            send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (!c->want_out) {
                    c->want_out = 1;
                    set_events(c, EPOLLIN | EPOLLOUT);
                }
                return;
            }
            fail(c, -errno);
            return;
        }
        c->out_off += (uint32_t)n;
    }
    if (c->state == LG_DEAD)
        return;
    c->out_off = c->out_len = 0;
    if (c->out_cap > 65536) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    if (c->want_out && c->state != LG_CONNECTING) {
        c->want_out = 0;
        set_events(c, EPOLLIN);
    }
}

static void flush_all(lg_loop_t *l)
{
    while (l->flush_head) {
        lg_conn_t *c = l->flush_head;
        l->flush_head = c->flush_next;
        c->in_flush = 0;
        if (c->state != LG_DEAD && c->state != LG_CONNECTING)
            do_write(c);
    }
}

void lg_loop_run_once(lg_loop_t *l, int64_t timeout_ns)
{
    struct epoll_event evs[MAX_EVENTS];
    /* Output queued since the last turn leaves before the wait, not after it. */
    flush_all(l);
    if (timeout_ns < 0)
        timeout_ns = 0;
    struct timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    int n = epoll_pwait2(l->ep, evs, MAX_EVENTS, &ts, NULL);
    if (n < 0 && errno != EINTR)
        lg_die("epoll_pwait2: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        lg_conn_t *c = evs[i].data.ptr;
        uint32_t e = evs[i].events;
        if (!c) {
            if (l->h->on_ctl)
                l->h->on_ctl(l);
            continue;
        }
        if (c->state == LG_DEAD)
            continue;
        if (c->state == LG_CONNECTING) {
            on_connected(c);
            continue;
        }
        if (e & (EPOLLIN | EPOLLHUP | EPOLLERR))
            do_read(c);
        if (c->state != LG_DEAD && (e & EPOLLOUT))
            do_write(c);
    }
    flush_all(l);
    reap(l);
}
