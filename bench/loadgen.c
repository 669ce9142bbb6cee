/* loadgen.c: the benchmark load generator's entry point, the populations of connections every
 * scenario is built from, and the connection-rate and idle-connection scenarios.
 *
 *   loadgen SCENARIO --port P [options]      one JSON object on stdout, diagnostics on stderr
 *
 * Scenarios: connrate, idle, relay, latency, fanout, discover, pq-handshake (see usage()). Every
 * scenario is bounded by --timeout and by its counts; every address is on the loopback network. */
#include "lg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* Populations                                                                                  */

static lg_pop_t *pop_of(lg_scen_t *s, const lg_conn_t *c)
{
    return c->role < (uint32_t)s->npop ? &s->pop[c->role] : NULL;
}

static void h_on_text(lg_conn_t *c, char *msg, size_t len)
{
    lg_scen_t *s = c->loop->ud;
    if (c->sess == LG_SESS_READY) {
        if (s->on_msg)
            s->on_msg(s, c, msg, len);
        return;
    }
    lg_pop_t *p = pop_of(s, c);
    switch (lg_sess_feed(c, msg, len)) {
    case LG_SESS_NOW_READY:
        p->pending--;
        p->ready++;
        p->t_last_ready = lg_now_ns();
        if (p->setup_ns)
            p->setup_ns[c->idx] = p->t_last_ready - c->t_start;
        if (s->on_ready)
            s->on_ready(s, c);
        break;
    case LG_SESS_FAILED:
        p->pending--;
        p->failed++;
        p->conns[c->idx] = NULL;
        lg_close(c, 1);
        break;
    default:
        break;
    }
}

static void h_on_close(lg_conn_t *c, int err)
{
    lg_scen_t *s = c->loop->ud;
    lg_pop_t *p = pop_of(s, c);
    p->conns[c->idx] = NULL;
    if (c->sess != LG_SESS_READY) {
        p->pending--;
        p->failed++;
        return;
    }
    p->ready--;
    p->lost++;
    if (s->on_lost)
        s->on_lost(s, c, err);
}

static void h_on_ctl(lg_loop_t *l)
{
    lg_scen_t *s = l->ud;
    if (s->on_ctl)
        s->on_ctl(s);
}

static const lg_handlers_t handlers = {
    .on_text = h_on_text,
    .on_close = h_on_close,
    .on_ctl = h_on_ctl,
};

void lg_scen_init(lg_scen_t *s, const lg_opts_t *o, const char *src_first)
{
    memset(s, 0, sizeof *s);
    s->o = o;
    lg_loop_init(&s->loop, o->proto, o->host, o->port, src_first, o->nsrc, &handlers, s);
    if (o->port2)
        lg_loop_set_second(&s->loop, o->host, o->port2);
    s->t_begin = lg_now_ns();
    s->deadline = s->t_begin + (uint64_t)(o->timeout * 1e9);
}

void lg_scen_deinit(lg_scen_t *s)
{
    for (int i = 0; i < s->npop; i++) {
        lg_pop_close_all(&s->pop[i], 1);
        free(s->pop[i].conns);
        free(s->pop[i].setup_ns);
    }
    lg_loop_deinit(&s->loop);
}

lg_pop_t *lg_pop_add(lg_scen_t *s, char role, uint32_t n, int track_setup)
{
    if (s->npop >= 4)
        lg_die("too many populations");
    lg_pop_t *p = &s->pop[s->npop++];
    memset(p, 0, sizeof *p);
    p->role = role;
    p->n = p->cap = n;
    p->conns = lg_xcalloc(n, sizeof *p->conns);
    if (track_setup)
        p->setup_ns = lg_xcalloc(n, sizeof *p->setup_ns);
    return p;
}

void lg_scen_fill(lg_scen_t *s, uint32_t conc)
{
    uint32_t pending = 0;
    for (int i = 0; i < s->npop; i++)
        pending += s->pop[i].pending;
    for (int i = 0; i < s->npop && pending < conc; i++) {
        lg_pop_t *p = &s->pop[i];
        while (pending < conc && p->next < p->n) {
            char uid[LG_UID_MAX];
            lg_uid(uid, s->o->tag, p->role, p->next);
            int second = p->node == LG_NODE_SECOND ||
                         (p->node == LG_NODE_BY_INDEX && (p->next & 1));
            lg_conn_t *c = lg_connect_to(&s->loop, uid, p->next, (uint32_t)i, second);
            if (c) {
                p->conns[p->next] = c;
                p->pending++;
                pending++;
            } else {
                p->failed++;
            }
            p->next++;
        }
    }
}

static int all_up(const lg_scen_t *s)
{
    for (int i = 0; i < s->npop; i++)
        if (s->pop[i].pending || s->pop[i].next < s->pop[i].n)
            return 0;
    return 1;
}

int lg_scen_expired(const lg_scen_t *s)
{
    return lg_now_ns() >= s->deadline;
}

int lg_scen_bring_up(lg_scen_t *s)
{
    while (!all_up(s) && !lg_scen_expired(s)) {
        lg_scen_fill(s, s->o->conc);
        lg_loop_run_once(&s->loop, 10 * 1000000);
    }
    for (int i = 0; i < s->npop; i++)
        if (s->pop[i].ready < s->pop[i].n)
            return -1;
    return 0;
}

void lg_scen_sleep(lg_scen_t *s, double seconds)
{
    uint64_t until = lg_now_ns() + (uint64_t)(seconds * 1e9);
    if (until > s->deadline)
        until = s->deadline;
    for (uint64_t now = lg_now_ns(); now < until; now = lg_now_ns())
        lg_loop_run_once(&s->loop, (int64_t)(until - now));
}

void lg_pop_close_all(lg_pop_t *p, int rst)
{
    for (uint32_t i = 0; i < p->cap; i++) {
        if (p->conns[i]) {
            if (p->conns[i]->sess == LG_SESS_READY)
                p->ready--;
            else
                p->pending--;
            lg_close(p->conns[i], rst);
            p->conns[i] = NULL;
        }
    }
}

void lg_print_counters(FILE *f, const lg_scen_t *s)
{
    fprintf(
        f,
        "\"counters\":{\"connect_failed\":%llu,\"closed_by_server\":%llu,\"protocol_errors\":%llu",
        (unsigned long long)s->loop.n_connect_fail, (unsigned long long)s->loop.n_closed_by_peer,
        (unsigned long long)s->loop.n_proto_err);
    for (int i = 0; i < s->npop; i++)
        fprintf(f, ",\"%c_ready\":%u,\"%c_failed\":%u,\"%c_lost\":%u", s->pop[i].role,
                s->pop[i].ready, s->pop[i].role, s->pop[i].failed, s->pop[i].role, s->pop[i].lost);
    fputc('}', f);
}

static const char *proto_name(enum lg_proto p)
{
    return p == LG_PROTO_PEERJS ? "peerjs" : "volli";
}

/* ------------------------------------------------------------------------------------------ */
/* connrate: connect + upgrade + hello + register (or PeerJS OPEN), per second                  */

static int run_connrate(const lg_opts_t *o)
{
    lg_scen_t s;
    lg_scen_init(&s, o, o->src);
    lg_pop_t *p = lg_pop_add(&s, 'c', o->conns, 1);
    pid_t pids[2] = {o->server_pid, getpid()};
    printf("{\"scenario\":\"connrate\",\"proto\":\"%s\",\"conns\":%u,\"concurrency\":%u,"
           "\"rounds\":[",
           proto_name(o->proto), o->conns, o->conc);
    double worst_others = 0;
    for (uint32_t r = 0; r < o->rounds && !lg_scen_expired(&s); r++) {
        if (r > 0) {
            /* The same ids again: for Volli the keys are now bound, as for a returning user.
             * The previous round's connections are reset first and the server given time to
             * see it. */
            lg_pop_close_all(p, 1);
            lg_scen_sleep(&s, 1.0);
            p->next = p->pending = p->ready = p->failed = p->lost = 0;
            memset(p->setup_ns, 0, p->cap * sizeof *p->setup_ns);
        }
        lg_cpu_snap_t a, b;
        lg_cpu_snap(&a, pids, 2);
        lg_mark_measuring();
        uint64_t t0 = lg_now_ns();
        lg_scen_bring_up(&s);
        uint64_t t1 = p->ready ? p->t_last_ready : lg_now_ns();
        lg_cpu_snap(&b, pids, 2);
        double secs = (double)(t1 - t0) / 1e9;
        uint32_t n = 0;
        for (uint32_t i = 0; i < p->cap; i++)
            if (p->setup_ns[i])
                p->setup_ns[n++] = p->setup_ns[i];
        printf("%s{\"round\":%u,\"ready\":%u,\"failed\":%u,\"seconds\":%.4f,\"per_sec\":%.1f,",
               r ? "," : "", r + 1, p->ready, p->failed, secs, secs > 0 ? p->ready / secs : 0.0);
        lg_print_percentiles(stdout, "setup", p->setup_ns, n);
        putchar(',');
        double others = lg_cpu_print(stdout, &a, &b, 1);
        if (others > worst_others)
            worst_others = others;
        putchar('}');
    }
    printf("],\"others_max\":%.3f,", worst_others);
    lg_print_counters(stdout, &s);
    printf("}\n");
    int ok = p->failed == 0;
    lg_scen_deinit(&s);
    return ok ? 0 : 3;
}

/* ------------------------------------------------------------------------------------------ */
/* idle: registered idle connections held by several generator processes; server RSS per step  */

typedef struct idle_child {
    int quit, step_active;
    int to_parent;
    char line[64];
    size_t line_len;
} idle_child_t;

static void idle_ctl(lg_scen_t *s)
{
    idle_child_t *ic = s->ud;
    char buf[64];
    ssize_t n = read(s->loop.ctl_fd, buf, sizeof buf);
    if (n <= 0) {
        ic->quit = 1; /* the parent is gone */
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] != '\n') {
            if (ic->line_len < sizeof ic->line - 1)
                ic->line[ic->line_len++] = buf[i];
            continue;
        }
        ic->line[ic->line_len] = 0;
        ic->line_len = 0;
        if (ic->line[0] == 'Q') {
            ic->quit = 1;
        } else if (ic->line[0] == 'T') {
            unsigned long t = strtoul(ic->line + 1, NULL, 10);
            s->pop[0].n = t > s->pop[0].cap ? s->pop[0].cap : (uint32_t)t;
            if (s->pop[0].next > s->pop[0].n)
                s->pop[0].n = s->pop[0].next;
            ic->step_active = 1;
        }
    }
}

static void idle_child_main(const lg_opts_t *o, int idx, uint32_t cap, int from_parent,
                            int to_parent)
{
    char src[32];
    struct in_addr base;
    inet_pton(AF_INET, o->src, &base);
    base.s_addr = htonl(ntohl(base.s_addr) + (uint32_t)(idx * o->nsrc));
    inet_ntop(AF_INET, &base, src, sizeof src);
    char tag[32];
    snprintf(tag, sizeof tag, "%sp%d", o->tag, idx);
    lg_opts_t co = *o;
    co.tag = tag;
    lg_scen_t s;
    idle_child_t ic = {.to_parent = to_parent};
    lg_scen_init(&s, &co, src);
    s.ud = &ic;
    s.on_ctl = idle_ctl;
    lg_pop_t *p = lg_pop_add(&s, 'i', cap, 0);
    p->n = 0;
    lg_loop_watch_ctl(&s.loop, from_parent);
    uint64_t next_hb = lg_now_ns() + 20000000000ull;
    while (!ic.quit && !lg_scen_expired(&s)) {
        lg_scen_fill(&s, o->conc);
        lg_loop_run_once(&s.loop, 20 * 1000000);
        if (ic.step_active && p->pending == 0 && p->next >= p->n) {
            char msg[64];
            int n = snprintf(msg, sizeof msg, "R %u %u\n", p->ready, p->failed);
            if (write(to_parent, msg, (size_t)n) != n)
                break;
            ic.step_active = 0;
        }
        if (lg_now_ns() >= next_hb) {
            for (uint32_t i = 0; i < p->cap; i++)
                if (p->conns[i])
                    lg_sess_heartbeat(p->conns[i]);
            next_hb = lg_now_ns() + 20000000000ull;
        }
    }
    lg_scen_deinit(&s);
    _exit(0);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Median of three RSS readings a quarter second apart (Node's heap moves a little). */
static uint64_t settled_rss(pid_t pid)
{
    uint64_t v[3];
    for (int i = 0; i < 3; i++) {
        if (i)
            usleep(250000);
        v[i] = lg_rss_bytes(pid);
    }
    qsort(v, 3, sizeof *v, cmp_u64);
    return v[1];
}

/* Reads "R ready failed" from one child, waiting until the deadline. */
static int read_reply(int fd, uint64_t deadline, uint32_t *ready, uint32_t *failed)
{
    char buf[64];
    size_t len = 0;
    while (len < sizeof buf - 1) {
        uint64_t now = lg_now_ns();
        if (now >= deadline)
            return -1;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r = poll(&pf, 1, (int)((deadline - now) / 1000000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t n = read(fd, buf + len, 1);
        if (n <= 0)
            return -1;
        if (buf[len++] == '\n')
            break;
    }
    buf[len] = 0;
    return sscanf(buf, "R %u %u", ready, failed) == 2 ? 0 : -1;
}

static int run_idle(const lg_opts_t *o)
{
    if (o->server_pid <= 0)
        lg_die("idle needs --server-pid (it reads the server's memory)");
    if (o->procs < 1 || o->procs > 12)
        lg_die("--procs must be 1..12");
    long limit = lg_fd_limit(o->server_pid);
    uint32_t steps[16];
    int nsteps = 0;
    char *list = strdup(o->steps), *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t && nsteps < 16; t = strtok_r(NULL, ",", &save)) {
        /* "max": the server's open-file limit less what it holds besides connections. */
        long v = strcmp(t, "max") == 0 ? limit - 16 : atol(t);
        if (v > 0)
            steps[nsteps++] = (uint32_t)v;
    }
    free(list);
    if (nsteps == 0)
        lg_die("no steps");
    uint32_t maxstep = steps[nsteps - 1];
    uint32_t per = (maxstep + o->procs - 1) / o->procs;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (per + 64 > rl.rlim_cur)
        lg_die("%u connections per process exceed this process's open-file limit %llu: "
               "use more --procs",
               per, (unsigned long long)rl.rlim_cur);
    pid_t kids[12];
    int to_kid[12], from_kid[12];
    fflush(stdout);
    for (uint32_t i = 0; i < o->procs; i++) {
        int a[2], b[2];
        if (pipe2(a, O_CLOEXEC) || pipe2(b, O_CLOEXEC))
            lg_die("pipe: %s", strerror(errno));
        pid_t pid = fork();
        if (pid < 0)
            lg_die("fork: %s", strerror(errno));
        if (pid == 0) {
            close(a[1]);
            close(b[0]);
            idle_child_main(o, (int)i, per, a[0], b[1]);
        }
        close(a[0]);
        close(b[1]);
        kids[i] = pid;
        to_kid[i] = a[1];
        from_kid[i] = b[0];
    }
    pid_t pids[1 + 1 + 12];
    pids[0] = o->server_pid;
    pids[1] = getpid();
    for (uint32_t i = 0; i < o->procs; i++)
        pids[2 + i] = kids[i];
    lg_cpu_snap_t ca, cb;
    lg_cpu_snap(&ca, pids, 2 + (int)o->procs);
    uint64_t deadline = lg_now_ns() + (uint64_t)(o->timeout * 1e9);
    printf("{\"scenario\":\"idle\",\"proto\":\"%s\",\"fd_limit\":%ld,\"procs\":%u,\"steps\":[",
           proto_name(o->proto), limit, o->procs);
    usleep((useconds_t)(o->settle * 1e6));
    printf("{\"target\":0,\"held\":0,\"rss\":%llu,\"slab\":%llu}",
           (unsigned long long)settled_rss(o->server_pid),
           (unsigned long long)lg_socket_slab_bytes());
    int rc = 0;
    for (int k = 0; k < nsteps; k++) {
        uint32_t held = 0, failed = 0;
        uint64_t t0 = lg_now_ns();
        for (uint32_t i = 0; i < o->procs; i++) {
            uint32_t share = steps[k] / o->procs + (i < steps[k] % o->procs);
            char msg[32];
            int n = snprintf(msg, sizeof msg, "T %u\n", share);
            if (write(to_kid[i], msg, (size_t)n) != n)
                lg_die("write to generator child: %s", strerror(errno));
        }
        for (uint32_t i = 0; i < o->procs; i++) {
            uint32_t r = 0, f = 0;
            if (read_reply(from_kid[i], deadline, &r, &f) != 0) {
                fprintf(stderr, "loadgen: generator child %u did not answer in time\n", i);
                rc = 3;
            }
            held += r;
            failed += f;
        }
        double secs = (double)(lg_now_ns() - t0) / 1e9;
        usleep((useconds_t)(o->settle * 1e6));
        printf(",{\"target\":%u,\"held\":%u,\"failed\":%u,\"seconds\":%.2f,\"rss\":%llu,"
               "\"slab\":%llu}",
               steps[k], held, failed, secs, (unsigned long long)settled_rss(o->server_pid),
               (unsigned long long)lg_socket_slab_bytes());
        fflush(stdout);
        if (rc)
            break;
    }
    lg_cpu_snap(&cb, pids, 2 + (int)o->procs);
    printf("],");
    lg_cpu_print(stdout, &ca, &cb, 1);
    printf("}\n");
    for (uint32_t i = 0; i < o->procs; i++) {
        (void)!write(to_kid[i], "Q\n", 2);
        close(to_kid[i]);
    }
    for (uint32_t i = 0; i < o->procs; i++) {
        waitpid(kids[i], NULL, 0);
        close(from_kid[i]);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* stallprobe: how much of the time a spinning process does not run                            */

/* Spins for --duration seconds reading the clock; every gap over 100 us between two readings is
 * time the process did not run (another task, an interrupt, or the hypervisor). This is the floor
 * under any latency measured on the machine, so bench/run.mjs runs one on each core before each
 * latency run. */
static int run_stallprobe(const lg_opts_t *o)
{
    if (o->duration <= 0 || o->duration > 60)
        lg_die("stallprobe: --duration 0..60 seconds");
    uint64_t start = lg_now_ns(), end = start + (uint64_t)(o->duration * 1e9), prev = start;
    uint64_t stalled = 0, over1 = 0, over5 = 0, max = 0;
    for (uint64_t now = start; now < end; now = lg_now_ns()) {
        uint64_t gap = now - prev;
        prev = now;
        if (gap < 100000)
            continue;
        stalled += gap;
        over1 += gap > 1000000;
        over5 += gap > 5000000;
        if (gap > max)
            max = gap;
    }
    double secs = (double)(prev - start) / 1e9;
    printf(
        "{\"scenario\":\"stallprobe\",\"seconds\":%.3f,\"stalled_pct\":%.3f,\"gaps_over_1ms\":%llu,"
        "\"gaps_over_5ms\":%llu,\"max_gap_us\":%.1f}\n",
        secs, secs > 0 ? (double)stalled / 1e9 / secs * 100 : 0.0, (unsigned long long)over1,
        (unsigned long long)over5, (double)max / 1e3);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fputs("usage: loadgen SCENARIO --port PORT [options]\n"
          "scenarios:\n"
          "  connrate  --conns N --rounds R       connect+hello+register per second\n"
          "  idle      --steps 5000,10000,max --procs P --settle S   server RSS per connection\n"
          "  relay     --pairs N --window W --duration S --size B   delivered messages/s\n"
          "  latency   --pairs N --rate R --duration S --cdf FILE   one-way relay latency\n"
          "  fanout    --subs N --cycles K       presence to N subscribers (volli only)\n"
          "  discover  --users N --clients C --window W --offline N  requests/s (volli only)\n"
          "  pq-handshake --pq ALG --concurrency N --duration S [--per-conn K] [--verify-every V]\n"
          "                                      post-quantum handshakes/s (volli only): connect,\n"
          "                                      hello, pq_handshake, response; K-1 rekeys inside\n"
          "  stallprobe --duration S             time this core does not run (no server)\n"
          "post-quantum: --pq ML-KEM-768|X25519MLKEM768 (relay and latency: every connection\n"
          "        runs a PQ session, all frames sealed), --pq-pool N pregenerated client keys\n"
          "cluster (relay, latency): --port2 P a second node: --place cross (senders on --port,\n"
          "        receivers on --port2) or spread (pair i wholly on node i % 2);\n"
          "        --server-pid2 PID --redis-pid PID for the CPU accounting\n"
          "common: --host 127.0.0.1 --proto volli|peerjs --src 127.0.0.2 --nsrc N\n"
          "        --server-pid PID --tag TAG --timeout S --concurrency N --warmup S\n"
          "        --busy-poll (latency: the generator never sleeps, to add no wake-up delay)\n",
          f);
}

int main(int argc, char **argv)
{
    lg_opts_t o = {
        .host = "127.0.0.1",
        .proto = LG_PROTO_VOLLI,
        .src = "127.0.0.2",
        .nsrc = 4,
        .tag = "bench",
        .timeout = 120,
        .conc = 200,
        .conns = 5000,
        .rounds = 1,
        .pairs = 1000,
        .window = 16,
        .size = 300,
        .duration = 10,
        .warmup = 1,
        .rate = 20000,
        .subs = 10000,
        .cycles = 5,
        .users = 1000,
        .clients = 32,
        .steps = "5000,10000,max",
        .procs = 4,
        .settle = 2,
        .pq = LG_PQ_NONE,
        .pq_pool = 64,
        .verify_every = 16,
        .per_conn = 1,
    };
    static const struct option longopts[] = {
        {"host", 1, 0, 'H'},         {"port", 1, 0, 'p'},     {"proto", 1, 0, 'P'},
        {"src", 1, 0, 's'},          {"nsrc", 1, 0, 'S'},     {"server-pid", 1, 0, 'k'},
        {"tag", 1, 0, 't'},          {"timeout", 1, 0, 'T'},  {"concurrency", 1, 0, 'c'},
        {"conns", 1, 0, 'n'},        {"rounds", 1, 0, 'r'},   {"pairs", 1, 0, 'a'},
        {"window", 1, 0, 'w'},       {"size", 1, 0, 'z'},     {"duration", 1, 0, 'd'},
        {"warmup", 1, 0, 'W'},       {"rate", 1, 0, 'R'},     {"subs", 1, 0, 'u'},
        {"cycles", 1, 0, 'y'},       {"users", 1, 0, 'U'},    {"clients", 1, 0, 'C'},
        {"offline", 1, 0, 'o'},      {"steps", 1, 0, 'x'},    {"procs", 1, 0, 'X'},
        {"settle", 1, 0, 'e'},       {"cdf", 1, 0, 'f'},      {"help", 0, 0, 'h'},
        {"busy-poll", 0, 0, 'B'},    {"pq", 1, 0, 'q'},       {"pq-pool", 1, 0, 'Q'},
        {"verify-every", 1, 0, 'v'}, {"per-conn", 1, 0, 'K'}, {"port2", 1, 0, '2'},
        {"place", 1, 0, 'L'},        {"server-pid2", 1, 0, 'j'}, {"redis-pid", 1, 0, 'm'},
        {0, 0, 0, 0},
    };
    if (argc < 2 || argv[1][0] == '-') {
        usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    o.scenario = argv[1];
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'H':
            o.host = optarg;
            break;
        case 'p':
            o.port = atoi(optarg);
            break;
        case 'P':
            if (strcmp(optarg, "volli") == 0)
                o.proto = LG_PROTO_VOLLI;
            else if (strcmp(optarg, "peerjs") == 0)
                o.proto = LG_PROTO_PEERJS;
            else
                lg_die("--proto: volli or peerjs");
            break;
        case 's':
            o.src = optarg;
            break;
        case 'S':
            o.nsrc = atoi(optarg);
            break;
        case 'k':
            o.server_pid = (pid_t)atoi(optarg);
            break;
        case 't':
            o.tag = optarg;
            break;
        case 'T':
            o.timeout = atof(optarg);
            break;
        case 'c':
            o.conc = (uint32_t)atol(optarg);
            break;
        case 'n':
            o.conns = (uint32_t)atol(optarg);
            break;
        case 'r':
            o.rounds = (uint32_t)atol(optarg);
            break;
        case 'a':
            o.pairs = (uint32_t)atol(optarg);
            break;
        case 'w':
            o.window = (uint32_t)atol(optarg);
            break;
        case 'z':
            o.size = (uint32_t)atol(optarg);
            break;
        case 'd':
            o.duration = atof(optarg);
            break;
        case 'W':
            o.warmup = atof(optarg);
            break;
        case 'R':
            o.rate = atof(optarg);
            break;
        case 'u':
            o.subs = (uint32_t)atol(optarg);
            break;
        case 'y':
            o.cycles = (uint32_t)atol(optarg);
            break;
        case 'U':
            o.users = (uint32_t)atol(optarg);
            break;
        case 'C':
            o.clients = (uint32_t)atol(optarg);
            break;
        case 'o':
            o.offline = (uint32_t)atol(optarg);
            break;
        case 'x':
            o.steps = optarg;
            break;
        case 'X':
            o.procs = (uint32_t)atol(optarg);
            break;
        case 'e':
            o.settle = atof(optarg);
            break;
        case 'B':
            o.busy_poll = 1;
            break;
        case 'f':
            o.cdf = optarg;
            break;
        case 'q':
            o.pq = lg_pq_alg_parse(optarg);
            if (o.pq == LG_PQ_NONE)
                lg_die("--pq: ML-KEM-768 or X25519MLKEM768");
            break;
        case 'Q':
            o.pq_pool = (uint32_t)atol(optarg);
            break;
        case 'v':
            o.verify_every = (uint32_t)atol(optarg);
            break;
        case 'K':
            o.per_conn = (uint32_t)atol(optarg);
            break;
        case '2':
            o.port2 = atoi(optarg);
            break;
        case 'L':
            if (strcmp(optarg, "cross") == 0)
                o.place = LG_PLACE_CROSS;
            else if (strcmp(optarg, "spread") == 0)
                o.place = LG_PLACE_SPREAD;
            else
                lg_die("--place: cross or spread");
            break;
        case 'j':
            o.server_pid2 = (pid_t)atoi(optarg);
            break;
        case 'm':
            o.redis_pid = (pid_t)atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (strcmp(o.scenario, "stallprobe") == 0)
        return run_stallprobe(&o);
    if (o.port <= 0 || o.port > 65535)
        lg_die("--port is required (1..65535)");
    if (o.port2 < 0 || o.port2 > 65535 || (o.port2 && o.port2 == o.port))
        lg_die("--port2: another port (1..65535)");
    if (o.port2 && strcmp(o.scenario, "relay") != 0 && strcmp(o.scenario, "latency") != 0)
        lg_die("--port2: for relay and latency");
    if (o.timeout <= 0 || o.timeout > 3600)
        lg_die("--timeout must be in (0, 3600] seconds");
    for (const char *t = o.tag; *t; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9')) || t - o.tag > 16)
            lg_die("--tag: up to 16 characters from [a-z0-9]");
    if (o.conc == 0 || o.nsrc < 1 || o.nsrc > 64)
        lg_die("--concurrency must be > 0 and --nsrc 1..64");
    if (o.pq != LG_PQ_NONE && o.proto != LG_PROTO_VOLLI)
        lg_die("--pq: post-quantum sessions are Volli Signal's (--proto volli)");
    if (o.pq != LG_PQ_NONE && strcmp(o.scenario, "relay") != 0 &&
        strcmp(o.scenario, "latency") != 0 && strcmp(o.scenario, "pq-handshake") != 0)
        lg_die("--pq: for relay, latency and pq-handshake");
    /* One descriptor per connection: take all the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    lg_proto_init();
    int rc;
    if (strcmp(o.scenario, "connrate") == 0)
        rc = run_connrate(&o);
    else if (strcmp(o.scenario, "idle") == 0)
        rc = run_idle(&o);
    else if (strcmp(o.scenario, "relay") == 0 || strcmp(o.scenario, "latency") == 0)
        rc = lg_run_relay(&o);
    else if (strcmp(o.scenario, "fanout") == 0)
        rc = lg_run_fanout(&o);
    else if (strcmp(o.scenario, "discover") == 0)
        rc = lg_run_discover(&o);
    else if (strcmp(o.scenario, "pq-handshake") == 0)
        rc = lg_run_pq_handshake(&o);
    else {
        usage(stderr);
        rc = 2;
    }
    fflush(stdout);
    lg_proto_deinit();
    return rc;
}
