/* lg.h: the benchmark load generator (bench/loadgen).
 *
 * Owns: client connections to one server, or to two nodes of a cluster (--port2), on the
 * loopback network (epoll, non-blocking, many
 * per process, several source addresses 127.0.0.x), our own minimal RFC 6455 client framing
 * (masked frames out, unmasked in), the two client protocols it speaks (Volli Signal's, which
 * bench/peers/ws-relay.mjs also speaks, and PeerJS's), and the measurements (latency samples,
 * CPU and memory accounting from /proc).
 * Never: connects to an address outside 127.0.0.0/8, runs a loop without both a count and a
 * time bound, or writes a key or signature anywhere (the Ed25519 key is made at start-up, kept
 * in memory and reused for every user of the process).
 *
 * Ownership: a connection (lg_conn_t) belongs to its loop; the scenario may keep a pointer to it
 * until it calls lg_close() or until on_close() has returned. Message buffers passed to
 * callbacks are borrowed for the duration of the call. */
#ifndef LG_H
#define LG_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* ------------------------------------------------------------------------------------------ */
/* Time and small helpers (lg_stats.c)                                                          */

uint64_t lg_now_ns(void);
/* Writes v as exactly width decimal digits (zero-padded, truncated at the high end). */
void lg_put_digits(char *p, int width, uint64_t v);
/* Parses up to width decimal digits at p; stops at the first non-digit. */
uint64_t lg_get_digits(const char *p, int width);
/* Tells whoever watches stderr (bench/run.mjs, to start a profiler) that the measured phase of
 * the scenario begins now. */
void lg_mark_measuring(void);
/* Fatal error: prints to stderr and exits 1. */
void lg_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void *lg_xmalloc(size_t n);
void *lg_xcalloc(size_t n, size_t size);
void *lg_xrealloc(void *p, size_t n);

/* ------------------------------------------------------------------------------------------ */
/* Event loop and WebSocket client (lg_net.c)                                                  */

enum lg_proto {
    LG_PROTO_VOLLI = 0, /* Volli Signal v1 (also bench/peers/ws-relay.mjs) */
    LG_PROTO_PEERJS,    /* the `peer` npm package's WebSocket protocol */
};

enum lg_conn_state {
    LG_CONNECTING = 0, /* TCP connect in progress */
    LG_UPGRADING,      /* HTTP upgrade sent, waiting for 101 */
    LG_OPEN,           /* WebSocket open */
    LG_DEAD,           /* closed; freed at the end of the loop turn */
};

/* Session progress on top of an open WebSocket (lg_proto.c). */
enum lg_sess_state {
    LG_SESS_NONE = 0,    /* waiting for hello (volli) or OPEN (peerjs) */
    LG_SESS_PQ,          /* pq_handshake sent, waiting for the response (volli, --pq) */
    LG_SESS_REGISTERING, /* register sent (volli) */
    LG_SESS_READY,       /* registered (volli) or OPEN received (peerjs) */
};

#define LG_UID_MAX 40

typedef struct lg_loop lg_loop_t;
typedef struct lg_conn lg_conn_t;

struct lg_conn {
    lg_loop_t *loop;
    int fd;
    uint8_t state;         /* enum lg_conn_state */
    uint8_t sess;          /* enum lg_sess_state */
    uint8_t in_flush;      /* on the loop's flush list */
    uint8_t want_out;      /* EPOLLOUT armed */
    uint8_t msg_opcode;    /* opcode of a fragmented message in progress, 0 if none */
    uint8_t second;        /* connected to the loop's second server (lg_loop_set_second) */
    uint32_t idx;          /* the scenario's index for this connection */
    uint32_t role;         /* the scenario's role */
    uint64_t t_start;      /* lg_now_ns() when lg_connect() was called */
    uint64_t t_register;   /* lg_now_ns() when register was queued (volli) */
    uint64_t rx_ns;        /* with rx_timestamps: when the kernel got the last bytes read */
    struct lg_pq_conn *pq; /* post-quantum session state (lg_pq.c), NULL without one */
    char uid[LG_UID_MAX];
    /* Unparsed input (a partial HTTP response or frame). NULL while nothing is pending. */
    char *in;
    uint32_t in_len, in_cap;
    /* Payload of a fragmented message in progress. */
    char *msg;
    uint32_t msg_len, msg_cap;
    /* Output not yet taken by the kernel: out[out_off..out_len). */
    char *out;
    uint32_t out_off, out_len, out_cap;
    lg_conn_t *flush_next, *dead_next;
};

typedef struct lg_handlers {
    /* The upgrade completed (101 received and checked). */
    void (*on_open)(lg_conn_t *c);
    /* One complete text message (borrowed, writable, not NUL-terminated). */
    void (*on_text)(lg_conn_t *c, char *msg, size_t len);
    /* The connection failed or was closed by the server; err is a negative errno or -1 for a
     * protocol problem. Called once; the connection is freed after it returns. Not called after
     * lg_close(). */
    void (*on_close)(lg_conn_t *c, int err);
    /* The control descriptor registered with lg_loop_watch_ctl() is readable. */
    void (*on_ctl)(lg_loop_t *l);
} lg_handlers_t;

struct lg_loop {
    int ep;
    enum lg_proto proto;
    struct sockaddr_in dst;
    uint32_t src_first; /* host byte order: first source address */
    uint32_t src_count; /* addresses used round-robin */
    uint32_t src_next;
    const lg_handlers_t *h;
    void *ud; /* the scenario's state */
    lg_conn_t *flush_head, *dead_head;
    char *rbuf;
    size_t rbuf_cap;
    uint64_t rng;
    uint32_t nconns; /* live connections */
    uint64_t n_connect_fail, n_closed_by_peer, n_proto_err;
    int ctl_fd;
    /* Set before connecting: record kernel receive times (lg_conn_t.rx_ns). Arrival in the
     * socket is what the server controls; when the generator gets to read it is not. */
    int rx_timestamps;
    int64_t mono_minus_real;
    char ws_key[32], ws_accept[32];
    char host_hdr[64];
    /* A second server (another node of the same cluster), for lg_connect_to(.., 1). */
    int has_dst2;
    struct sockaddr_in dst2;
    char host_hdr2[64];
};

/* Connects to 127.0.0.1:port (addr must be in 127.0.0.0/8), using src_count source addresses
 * starting at src_first (e.g. "127.0.0.2"). Exits on error. */
void lg_loop_init(lg_loop_t *l, enum lg_proto proto, const char *addr, int port,
                  const char *src_first, int src_count, const lg_handlers_t *h, void *ud);
void lg_loop_deinit(lg_loop_t *l);
/* Sets the loop's second server (addr in 127.0.0.0/8): connections made with
 * lg_connect_to(.., second = 1) go there. Exits on error. */
void lg_loop_set_second(lg_loop_t *l, const char *addr, int port);
/* Adds fd (borrowed) to the loop: on_ctl is called when it is readable. */
void lg_loop_watch_ctl(lg_loop_t *l, int fd);
/* Waits up to timeout_ns (0: poll) for events, dispatches them, writes queued output and frees
 * closed connections. */
void lg_loop_run_once(lg_loop_t *l, int64_t timeout_ns);
/* Starts a connection for user uid (copied); its path is / (volli) or /peerjs?... (peerjs).
 * Returns NULL (and counts n_connect_fail) when the socket cannot even be started. */
lg_conn_t *lg_connect(lg_loop_t *l, const char *uid, uint32_t idx, uint32_t role);
/* lg_connect to the second server when second is 1 (lg_loop_set_second must have been called). */
lg_conn_t *lg_connect_to(lg_loop_t *l, const char *uid, uint32_t idx, uint32_t role, int second);
/* Queues one masked text frame (data borrowed, copied). */
void lg_send_text(lg_conn_t *c, const char *data, size_t len);
/* Closes at once. rst: with a TCP reset (SO_LINGER 0), so neither side keeps TIME_WAIT.
 * The connection must not be used afterwards; on_close is not called. */
void lg_close(lg_conn_t *c, int rst);
/* Whether the connection still has output the kernel has not taken. */
int lg_has_output(const lg_conn_t *c);

/* ------------------------------------------------------------------------------------------ */
/* Protocols (lg_proto.c)                                                                      */

/* Creates the process's Ed25519 key (once; every user id of the process is bound to it). */
void lg_proto_init(void);
void lg_proto_deinit(void);
/* The request target of the upgrade for uid: "/" or "/peerjs?key=peerjs&id=..&token=..". */
void lg_proto_path(enum lg_proto proto, const char *uid, char *out, size_t n);

enum lg_sess_result {
    LG_SESS_PASS = 0,  /* not a session message: the scenario's */
    LG_SESS_CONSUMED,  /* handled (hello answered, heartbeat...) */
    LG_SESS_NOW_READY, /* this message made the connection ready */
    LG_SESS_FAILED,    /* the server refused: the caller should count it and close */
};
/* Feeds one message to the session layer (register on hello, OPEN, errors before ready). */
enum lg_sess_result lg_sess_feed(lg_conn_t *c, const char *msg, size_t len);
/* Sends a keep-alive where the protocol needs one (PeerJS HEARTBEAT); no-op for volli. */
void lg_sess_heartbeat(lg_conn_t *c);
/* Builds a relay message to `to` with a payload of about size bytes in total. seq and ts are
 * fixed-width digit strings ("seq":"0000000000","ts":"0000000000000000") whose offsets in buf
 * are returned, so a sender patches them in place. Returns the length. */
size_t lg_relay_template(enum lg_proto proto, const char *to, size_t size, char *buf, size_t cap,
                         size_t *seq_off, size_t *ts_off);
#define LG_SEQ_DIGITS 10
#define LG_TS_DIGITS 16
/* Finds "seq":"..." and "ts":"..." in a received relay message; returns 0 if both are there. */
int lg_relay_parse(const char *msg, size_t len, uint64_t *seq, uint64_t *ts);
/* A user id for (tag, role letter, index); fits LG_UID_MAX. */
void lg_uid(char *out, const char *tag, char role, uint32_t idx);
/* Finds the string value of "key":"..." in msg; returns its length or -1; *val points into msg. */
int lg_json_str(const char *msg, size_t len, const char *key, const char **val);

/* ------------------------------------------------------------------------------------------ */
/* Post-quantum sessions (lg_pq.c; docs/protocol.md, "Post-quantum session")                    */

/* With lg_pq_setup(alg != LG_PQ_NONE), every Volli connection answers hello with pq_handshake
 * and, once the response is in, seals every text frame it sends and opens every one it gets
 * (lg_send_text and the frame reader do this, so scenarios see plaintext both ways). The server
 * side's cost is what the benchmark measures, so the generator keeps its own small:
 *   - client key pairs (ML-KEM-768, plus X25519 for the hybrid) are made once, at set-up, into
 *     a pool that handshakes take in turn (the server encapsulates afresh every time, so reuse
 *     changes nothing on its side); their base64 is encoded once too;
 *   - the response is always checked for its session_id, algorithm and lengths; the Ed25519
 *     signature over TH is verified and the keys derived (decapsulation, HKDF) for every
 *     verify_every-th handshake, and always when the connection goes on to use the keys.
 * The crypto is the server's own (src/crypto: mlkem.c, pqkx.c, sign.c), built into the
 * generator by bench/build.sh; the Node integration test 87 checks it against a second,
 * independent client implementation. */
enum lg_pq_alg {
    LG_PQ_NONE = 0,
    LG_PQ_MLKEM768,      /* "ML-KEM-768" */
    LG_PQ_X25519MLKEM768 /* "X25519MLKEM768" */
};

typedef struct lg_pq_stats {
    uint64_t started;       /* pq_handshake messages sent */
    uint64_t completed;     /* responses that passed the checks */
    uint64_t verified;      /* of which: signature verified and keys derived */
    uint64_t bad_response;  /* wrong session_id / algorithm / lengths / signature */
    uint64_t refused;       /* an error message instead of a response */
    uint64_t open_failed;   /* an incoming frame that is not a valid enc frame for our keys */
    uint64_t frames_sealed; /* frames sent inside a session */
    uint64_t frames_opened; /* frames received inside a session */
} lg_pq_stats_t;

/* Parses "ML-KEM-768" / "X25519MLKEM768"; returns LG_PQ_NONE for anything else. */
enum lg_pq_alg lg_pq_alg_parse(const char *name);
const char *lg_pq_alg_name(enum lg_pq_alg alg);
#define LG_PQ_REGISTER 1  /* register (sealed) after the handshake: relay scenarios */
#define LG_PQ_KEEP_KEYS 2 /* derive the keys of every handshake (the connection goes on) */
/* Turns sessions on for the process: alg, pool_size pregenerated client key pairs (1..4096),
 * verify_every >= 1, flags LG_PQ_*. Without LG_PQ_REGISTER the session layer reports a
 * connection ready as soon as its first handshake is answered (pq-handshake). */
void lg_pq_setup(enum lg_pq_alg alg, uint32_t pool_size, uint32_t verify_every, int flags);
void lg_pq_teardown(void);
enum lg_pq_alg lg_pq_alg(void);
int lg_pq_flags(void);
const lg_pq_stats_t *lg_pq_stats(void);
/* Takes the hello's nonce and serverKey (the server key must be the same for every
 * connection). Returns 0, or -1 if they are missing or malformed. */
int lg_pq_hello(lg_conn_t *c, const char *msg, size_t len);
/* The hello nonce taken by lg_pq_hello (borrowed), NULL before. */
const char *lg_pq_nonce(const lg_conn_t *c, int *len);
/* Sends pq_handshake (sealed if the connection already has a session: a rekey). need_keys:
 * the connection will use the keys, so they are derived whatever verify_every says. */
void lg_pq_start(lg_conn_t *c, int need_keys);
/* Whether msg is the pq_handshake_response (or error) the connection waits for. */
int lg_pq_waiting(const lg_conn_t *c);
/* Checks a pq_handshake_response, verifies and derives as decided at lg_pq_start, and installs
 * the new keys (sequence numbers back at 0). Returns 1 if the keys were derived, 0 if only the
 * cheap checks ran, -1 if the response is bad (counted). */
int lg_pq_finish(lg_conn_t *c, const char *msg, size_t len);
/* Time from the last lg_pq_start to its response (valid after lg_pq_finish). */
uint64_t lg_pq_last_rtt_ns(const lg_conn_t *c);
/* Whether frames of the connection are sealed now. */
int lg_pq_active(const lg_conn_t *c);
/* For lg_net.c: seals data into an enc frame in a buffer owned by lg_pq.c (valid until the next
 * call); opens an enc frame into such a buffer. Return 0, or -1 (counted) on a bad frame. */
int lg_pq_seal(lg_conn_t *c, const char *data, size_t len, const char **frame, size_t *flen);
int lg_pq_open(lg_conn_t *c, const char *frame, size_t len, char **pt, size_t *ptlen);
void lg_pq_conn_free(lg_conn_t *c);
/* "pq":{...} with the algorithm, the pool, and the counters. */
void lg_pq_print(FILE *f);

/* ------------------------------------------------------------------------------------------ */
/* Measurements (lg_stats.c)                                                                   */

#define LG_MAX_PIDS 16

typedef struct lg_cpu_snap {
    uint64_t t_ns;
    uint64_t busy, softirq_irq, steal; /* /proc/stat, all CPUs, clock ticks */
    int npids;
    pid_t pids[LG_MAX_PIDS];
    uint64_t ticks[LG_MAX_PIDS]; /* utime + stime of each pid */
    int nksoft;
    pid_t ksoft[8]; /* ksoftirqd/N: our loopback traffic's deferred softirqs */
    uint64_t ksoft_ticks[8];
} lg_cpu_snap_t;

/* pids[0..nserver) are the server (with a cluster: both nodes and Redis), the rest the
 * generator (0 entries are skipped). */
void lg_cpu_snap(lg_cpu_snap_t *s, const pid_t *pids, int npids);
/* Prints "cpu":{...} (cores used on average: server, gen, net, steal, others). Returns the
 * cores used by other processes, the quantity that marks a run as disturbed. */
double lg_cpu_print(FILE *f, const lg_cpu_snap_t *a, const lg_cpu_snap_t *b, int nserver);
/* Cores used on average by the i-th pid of the snapshots (0 for a 0 entry). */
double lg_cpu_pid_cores(const lg_cpu_snap_t *a, const lg_cpu_snap_t *b, int i);
/* Resident memory of pid in bytes (VmRSS), 0 if unknown. */
uint64_t lg_rss_bytes(pid_t pid);
/* The soft open-file limit of pid (from /proc/PID/limits), 0 if unknown. */
long lg_fd_limit(pid_t pid);
/* Bytes held by the kernel's per-socket slab caches (TCP, sockets, files, epoll items). */
uint64_t lg_socket_slab_bytes(void);

/* Sorts v and prints "name":{"n":..,"p50":..,...,"max":..} in microseconds. */
void lg_print_percentiles(FILE *f, const char *name, uint64_t *v, size_t n);
/* Writes a sorted latency sample as "quantile latency_us" lines for plotting (HDR style: dense
 * in the tail). */
int lg_write_cdf(const char *path, const uint64_t *sorted, size_t n);

/* ------------------------------------------------------------------------------------------ */
/* Scenarios (loadgen.c: options, populations of connections; lg_relay.c, lg_presence.c)       */

typedef struct lg_opts {
    const char *scenario;
    const char *host;
    int port;
    enum lg_proto proto;
    const char *src;                  /* first source address */
    int nsrc;                         /* source addresses per process */
    pid_t server_pid;                 /* for CPU and memory accounting; 0: not measured */
    const char *tag;                  /* user id prefix, unique per run */
    double timeout;                   /* bound on the whole run, seconds */
    uint32_t conc;                    /* connections being set up at once */
    uint32_t conns, rounds;           /* connrate */
    uint32_t pairs, window, size;     /* relay, latency */
    double duration, warmup, rate;    /* relay, latency, discover */
    uint32_t subs, cycles;            /* fanout */
    uint32_t users, clients, offline; /* discover */
    const char *steps;                /* idle: "5000,10000,max" */
    uint32_t procs;                   /* idle: generator processes */
    double settle;                    /* idle: seconds before memory is read */
    int busy_poll;                    /* latency: never sleep in epoll (the generator's core) */
    const char *cdf;                  /* latency quantiles output file */
    enum lg_pq_alg pq;                /* relay, latency, pq-handshake: post-quantum sessions */
    uint32_t pq_pool;                 /* pregenerated client key pairs */
    uint32_t verify_every;            /* pq-handshake: verify/derive every Nth handshake */
    uint32_t per_conn;                /* pq-handshake: handshakes per connection (rekeys) */
    int port2;                        /* relay, latency: a second node of the cluster, 0: none */
    int place;                        /* with port2: enum lg_place of the pairs */
    pid_t server_pid2, redis_pid;     /* with port2: the second node and Redis, for CPU */
} lg_opts_t;

/* Where the two ends of a relay pair connect when there are two nodes (--place). */
enum lg_place {
    LG_PLACE_CROSS = 0, /* senders on the first node, receivers on the second: every message
                         * crosses the cluster bus */
    LG_PLACE_SPREAD,    /* pair i wholly on node i % 2: the load is spread, nothing crosses */
};

/* Which node a population's connections go to (lg_pop_t.node). */
enum lg_pop_node {
    LG_NODE_FIRST = 0,
    LG_NODE_SECOND,
    LG_NODE_BY_INDEX, /* even indexes on the first node, odd ones on the second */
};

/* A set of connections of one role, brought up at most `conc` at a time. */
typedef struct lg_pop {
    lg_conn_t **conns; /* by index; NULL when not connected */
    uint32_t cap;      /* size of conns */
    uint32_t n;        /* how many to bring up (may grow up to cap) */
    uint32_t next, pending, ready, failed, lost;
    char role;
    uint8_t node;       /* enum lg_pop_node; LG_NODE_FIRST unless the loop has a second */
    uint64_t *setup_ns; /* optional: per index, connect to ready */
    uint64_t t_last_ready;
} lg_pop_t;

typedef struct lg_scen lg_scen_t;
struct lg_scen {
    lg_loop_t loop;
    const lg_opts_t *o;
    lg_pop_t pop[4];
    int npop;
    uint64_t t_begin, deadline;
    void *ud;
    /* Optional scenario hooks, called for ready connections. */
    void (*on_ready)(lg_scen_t *s, lg_conn_t *c);
    void (*on_msg)(lg_scen_t *s, lg_conn_t *c, char *msg, size_t len);
    void (*on_lost)(lg_scen_t *s, lg_conn_t *c, int err);
    void (*on_ctl)(lg_scen_t *s);
};

void lg_scen_init(lg_scen_t *s, const lg_opts_t *o, const char *src_first);
void lg_scen_deinit(lg_scen_t *s);
/* Adds a population (role: the letter in its user ids). */
lg_pop_t *lg_pop_add(lg_scen_t *s, char role, uint32_t n, int track_setup);
/* Starts connections of every population while fewer than conc are being set up. */
void lg_scen_fill(lg_scen_t *s, uint32_t conc);
/* Runs until every population is up (ready or failed) or the deadline; 0 if all are ready. */
int lg_scen_bring_up(lg_scen_t *s);
/* Runs the loop for about `seconds` (bounded by the deadline). */
void lg_scen_sleep(lg_scen_t *s, double seconds);
int lg_scen_expired(const lg_scen_t *s);
void lg_pop_close_all(lg_pop_t *p, int rst);
/* "counters":{...} of the loop (connect failures, closes by the server, protocol errors). */
void lg_print_counters(FILE *f, const lg_scen_t *s);

int lg_run_relay(const lg_opts_t *o); /* "relay" (throughput) and "latency" */
int lg_run_fanout(const lg_opts_t *o);
int lg_run_discover(const lg_opts_t *o);
int lg_run_pq_handshake(const lg_opts_t *o);

#endif
