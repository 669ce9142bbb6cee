/* test_lib.c (client_unit): libvolli's pure parts and its behaviour without a server: error
 * strings, URL parsing, backoff, the JSON member finder, keys and signatures (checked against
 * RFC 8032 and the worked example of docs/protocol.md), option validation, requests while
 * disconnected, and giving up on an unreachable server. Linked with the static library so the
 * hidden internals are reachable. */
#include "internal.h"

#include "common/base64.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(volli_strerror(0), "success");
    assert_string_equal(volli_strerror(VOLLI_ENOTCONN), "not connected to a server");
    assert_string_equal(volli_strerror(VOLLI_EPERM), "file permissions are unsafe");
    assert_string_equal(volli_strerror(-999), "unknown error");
    for (int e = VOLLI_ECANCELED; e <= VOLLI_ENOMEM; e++)
        assert_string_not_equal(volli_strerror(e), "unknown error");
    assert_string_equal(volli_event_name(VOLLI_EVENT_ICE_CANDIDATE), "ice-candidate");
    assert_string_equal(volli_event_name(VOLLI_EVENT_DISCONNECTED), "disconnected");
}

/* ---- URLs ---- */

static void expect_url(const char *text, const char *host, unsigned port, const char *hostport,
                       const char *path, int ipv6)
{
    vl_url_t u;
    assert_int_equal(vl_url_parse(text, &u), 0);
    assert_string_equal(u.text, text);
    assert_string_equal(u.host, host);
    assert_int_equal(u.port, port);
    assert_string_equal(u.hostport, hostport);
    assert_string_equal(u.path, path);
    assert_int_equal(u.ipv6, ipv6);
    vl_url_free(&u);
}

static void test_url(void **state)
{
    (void)state;
    expect_url("ws://127.0.0.1:7880/", "127.0.0.1", 7880, "127.0.0.1:7880", "/", 0);
    expect_url("WS://Example.com", "Example.com", 80, "Example.com", "/", 0);
    expect_url("ws://[::1]:9/rtc?x=1&y", "::1", 9, "[::1]:9", "/rtc?x=1&y", 1);
    expect_url("ws://[2001:db8::7]", "2001:db8::7", 80, "[2001:db8::7]", "/", 1);
    expect_url("ws://h_1.example-2.org:65535/a/b", "h_1.example-2.org", 65535,
               "h_1.example-2.org:65535", "/a/b", 0);
    expect_url("ws://h?q=1", "h", 80, "h", "/?q=1", 0);

    static const char *const bad[] = {
        "",
        "http://h/",
        "ws:/h",
        "ws://",
        "ws://:80",
        "ws://h:",
        "ws://h:0",
        "ws://h:65536",
        "ws://h:80x",
        "ws://h:123456",
        "ws://u@h/",
        "ws://h/pa th",
        "ws://h/\r\nX-Injected: 1",
        "ws://[::1",
        "ws://[zz]:1",
        "ws://[::1]x",
        "ws://h#frag",
        "ws://h/p#f",
        "ws://ho st/",
        "ws://h\x7f/",
        "ws://h/\xc3\xa9",
        "ws://[]:80",
        "ws://[127.0.0.1]/",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vl_url_t u;
        if (vl_url_parse(bad[i], &u) != VOLLI_EINVAL)
            fail_msg("accepted bad URL %s", bad[i]);
        vl_url_free(&u);
    }
    vl_url_t u;
    assert_int_equal(vl_url_parse(NULL, &u), VOLLI_EINVAL);
    assert_int_equal(vl_url_parse("wss://h/", &u), VOLLI_EUNSUPPORTED);
    assert_int_equal(vl_url_parse("WSS://h:443/", &u), VOLLI_EUNSUPPORTED);
    vl_url_free(&u);
}

/* ---- backoff ---- */

static void test_backoff(void **state)
{
    (void)state;
    vl_backoff_t b;
    vl_backoff_init(&b, 100, 800, 42);
    static const unsigned ceilings[] = {100, 200, 400, 800, 800, 800};
    for (size_t i = 0; i < sizeof ceilings / sizeof ceilings[0]; i++) {
        assert_int_equal(vl_backoff_ceiling(&b), ceilings[i]);
        unsigned d = vl_backoff_next(&b);
        assert_in_range(d, 1, ceilings[i]);
    }
    vl_backoff_reset(&b);
    assert_int_equal(vl_backoff_ceiling(&b), 100);

    /* Full jitter: delays spread over the whole range instead of clustering at the ceiling. */
    unsigned low = 0, high = 0, min = ~0u, max = 0;
    for (int i = 0; i < 2000; i++) {
        vl_backoff_reset(&b);
        unsigned d = vl_backoff_next(&b);
        low += d <= 50;
        high += d > 50;
        min = d < min ? d : min;
        max = d > max ? d : max;
    }
    assert_in_range(low, 800, 1200);
    assert_in_range(high, 800, 1200);
    assert_true(min <= 5 && max >= 95);

    /* Seeds give different sequences; the same seed the same one. */
    vl_backoff_t a, a2, c;
    vl_backoff_init(&a, 1000, 100000, 1);
    vl_backoff_init(&a2, 1000, 100000, 1);
    vl_backoff_init(&c, 1000, 100000, 2);
    int differ = 0;
    for (int i = 0; i < 5; i++) {
        unsigned x = vl_backoff_next(&a), y = vl_backoff_next(&c);
        assert_int_equal(x, vl_backoff_next(&a2));
        differ += x != y;
    }
    assert_true(differ >= 3);

    /* initial above max is capped; zero values are raised to 1 ms. */
    vl_backoff_init(&b, 5000, 300, 7);
    assert_int_equal(vl_backoff_ceiling(&b), 300);
    vl_backoff_init(&b, 0, 0, 7);
    assert_int_equal(vl_backoff_next(&b), 1);
    /* No overflow however many attempts fail. */
    vl_backoff_init(&b, 1, 4000000000u, 9);
    for (int i = 0; i < 100; i++)
        assert_in_range(vl_backoff_next(&b), 1, 4000000000u);
    assert_int_equal(vl_backoff_ceiling(&b), 4000000000u);
}

/* ---- JSON member spans ---- */

static void expect_span(const char *json, const char *name, const char *want)
{
    size_t s = 0, e = 0;
    int rc = vl_json_member_span(json, strlen(json), name, &s, &e);
    if (!want) {
        assert_int_equal(rc, 0);
        return;
    }
    assert_int_equal(rc, 1);
    assert_int_equal(e - s, strlen(want));
    assert_memory_equal(json + s, want, e - s);
}

static void test_json_span(void **state)
{
    (void)state;
    const char *m = "{\"type\":\"offer\",\"offer\":{\"sdp\":\"a\\\"}b\",\"n\":[1,{\"x\":\"}\"}]},"
                    "\"to\":\"bob\"}";
    expect_span(m, "offer", "{\"sdp\":\"a\\\"}b\",\"n\":[1,{\"x\":\"}\"}]}");
    expect_span(m, "to", "\"bob\"");
    expect_span(m, "type", "\"offer\"");
    expect_span(m, "sdp", NULL); /* nested members are not top-level */
    expect_span(m, "from", NULL);
    expect_span(" { \"a\" : 1.0e300 , \"b\"\t:\ttrue\n}\n", "a", "1.0e300");
    expect_span(" { \"a\" : 1.0e300 , \"b\"\t:\ttrue\n}\n", "b", "true");
    expect_span("{\"\\u006fffer\":123456789012345678901234567890,\"z\":null}", "offer",
                "123456789012345678901234567890");
    expect_span("{\"z\":null,\"candidate\":\"a\\\\\"}", "candidate", "\"a\\\\\"");
    expect_span("{\"reason\":[]}", "reason", "[]");
    expect_span("{}", "reason", NULL);
    expect_span("{\"offerx\":1,\"offe\":2}", "offer", NULL);
    size_t s, e;
    assert_int_equal(vl_json_member_span("[1]", 3, "a", &s, &e), VOLLI_EINVAL);
}

/* ---- keys ---- */

static const uint8_t rfc_seed[32] = {
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};

static void test_sign_worked_example(void **state)
{
    (void)state;
    volli_keypair_t kp;
    memcpy(kp.private_key, rfc_seed, 32);
    assert_int_equal(vl_public_from_seed(kp.private_key, kp.public_key), 0);
    char b64[45];
    assert_int_equal(volli_key_public_base64(&kp, b64, sizeof b64), 0);
    assert_string_equal(b64, "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    assert_int_equal(volli_key_public_base64(&kp, b64, 44), VOLLI_EINVAL);
    /* docs/protocol.md, "Worked example": the register signature for alice. */
    const char *text = "volli-register\nAAECAwQFBgcICQoLDA0ODw\nalice";
    uint8_t sig[64];
    assert_int_equal(vl_sign(&kp, text, strlen(text), sig), 0);
    char sig64[100];
    vs_base64_encode(sig, 64, sig64);
    assert_string_equal(sig64, "qX3NfRkMCEvafuj+68g/Iq0kdY8x6wlijKC9/gq3l+bscxM7ziCraAWcvEnnu9eJ"
                               "wT4jA0BaIqFJcJrlb/xnCw==");
}

static char tmpdir[64];

/* A path in tmpdir; four buffers in rotation so that two can be passed to one call. */
static const char *tmp_path(const char *name)
{
    static char p[4][128];
    static unsigned k;
    char *out = p[k++ % 4];
    snprintf(out, sizeof p[0], "%s/%s", tmpdir, name);
    return out;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(path, mode);
}

static void test_key_files(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/volli-unit-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    mode_t old = umask(0); /* the file must still be 0600 */
    volli_keypair_t kp, back;
    assert_int_equal(volli_keygen(&kp), 0);
    uint8_t pub[32];
    assert_int_equal(vl_public_from_seed(kp.private_key, pub), 0);
    assert_memory_equal(pub, kp.public_key, 32);
    char k[128];
    snprintf(k, sizeof k, "%s", tmp_path("id.pem"));
    assert_int_equal(volli_key_save(&kp, k), 0);
    struct stat st;
    assert_int_equal(stat(k, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    umask(old);

    /* Exclusive: the existing file is neither replaced nor touched. */
    volli_keypair_t other;
    assert_int_equal(volli_keygen(&other), 0);
    assert_int_equal(volli_key_save(&other, k), VOLLI_EEXISTS);
    assert_int_equal(volli_key_load(k, &back), 0);
    assert_memory_equal(&back, &kp, sizeof kp);
    /* Nor a dangling symlink's target. */
    assert_int_equal(symlink(tmp_path("target.pem"), tmp_path("link.pem")), 0);
    assert_int_equal(volli_key_save(&kp, tmp_path("link.pem")), VOLLI_EEXISTS);
    assert_int_equal(access(tmp_path("target.pem"), F_OK), -1);

    /* Any access for group or others is refused, so is anything but a regular file. */
    static const mode_t unsafe[] = {0644, 0640, 0604, 0620, 0602, 0610, 0601};
    for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++) {
        assert_int_equal(chmod(k, unsafe[i]), 0);
        assert_int_equal(volli_key_load(k, &back), VOLLI_EPERM);
    }
    assert_int_equal(chmod(k, 0400), 0);
    assert_int_equal(volli_key_load(k, &back), 0);
    assert_int_equal(volli_key_load(tmpdir, &back), VOLLI_EPERM);
    assert_int_equal(mkfifo(tmp_path("fifo"), 0600), 0);
    assert_int_equal(volli_key_load(tmp_path("fifo"), &back), VOLLI_EPERM); /* and no hang */
    assert_int_equal(volli_key_load(tmp_path("missing.pem"), &back), VOLLI_EIO);

    /* Not a key, an empty file, a key of another type. */
    write_file(tmp_path("junk.pem"),
               "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0600);
    assert_int_equal(volli_key_load(tmp_path("junk.pem"), &back), VOLLI_EINVAL);
    write_file(tmp_path("empty.pem"), "", 0600);
    assert_int_equal(volli_key_load(tmp_path("empty.pem"), &back), VOLLI_EINVAL);
    write_file(tmp_path("x25519.pem"),
               "-----BEGIN PRIVATE KEY-----\n"
               "MC4CAQAwBQYDK2VuBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n"
               "-----END PRIVATE KEY-----\n",
               0600);
    assert_int_equal(volli_key_load(tmp_path("x25519.pem"), &back), VOLLI_EINVAL);
    /* The RFC 8032 key as PKCS#8 PEM (docs/protocol.md gives its DER prefix). */
    write_file(tmp_path("rfc.pem"),
               "-----BEGIN PRIVATE KEY-----\n"
               "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
               "-----END PRIVATE KEY-----\n",
               0600);
    assert_int_equal(volli_key_load(tmp_path("rfc.pem"), &back), 0);
    assert_memory_equal(back.private_key, rfc_seed, 32);
    char b64[45];
    volli_key_public_base64(&back, b64, sizeof b64);
    assert_string_equal(b64, "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");

    assert_int_equal(volli_key_save(NULL, k), VOLLI_EINVAL);
    assert_int_equal(volli_key_load(NULL, &back), VOLLI_EINVAL);
    static const char *const names[] = {"id.pem",    "link.pem",   "fifo",   "junk.pem",
                                        "empty.pem", "x25519.pem", "rfc.pem"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(tmp_path(names[i]));
    assert_int_equal(rmdir(tmpdir), 0);
}

/* ---- the client without a server ---- */

struct seen {
    int disconnected, other;
    unsigned max_delay;
    char last_url[64];
    char log[2048];
};

static void on_event(volli_client_t *c, const volli_event_t *ev, void *ud)
{
    (void)c;
    struct seen *s = ud;
    if (ev->type == VOLLI_EVENT_DISCONNECTED) {
        s->disconnected++;
        assert_non_null(ev->server_url);
        assert_non_null(ev->error_message);
        assert_true(ev->reconnect_in_ms >= 1);
        snprintf(s->last_url, sizeof s->last_url, "%s", ev->server_url);
        if (ev->reconnect_in_ms > s->max_delay)
            s->max_delay = ev->reconnect_in_ms;
    } else {
        s->other++;
    }
}

static void on_log(int level, const char *message, void *ud)
{
    struct seen *s = ud;
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof s->log - n, "%d %s\n", level, message);
}

static void never_called(volli_client_t *c, int status, const char *code, const char *json,
                         size_t len, void *ud)
{
    (void)c, (void)status, (void)code, (void)json, (void)len, (void)ud;
    fail_msg("a request that returned an error called its callback");
}

static void test_client_options(void **state)
{
    (void)state;
    struct seen seen = {0};
    volli_keypair_t kp, wrong;
    assert_int_equal(volli_keygen(&kp), 0);
    wrong = kp;
    wrong.public_key[0] ^= 1;
    const char *ok_urls[] = {"ws://127.0.0.1:1/", "ws://[::1]:1/rtc"};
    const char *wss[] = {"wss://example.com/"}, *bad[] = {"ws://h/a b"};
    volli_options_t o = {.servers = ok_urls,
                         .nservers = 2,
                         .user_id = "Alice",
                         .key = &kp,
                         .log = on_log,
                         .ud = &seen};
    volli_client_t *c = NULL;

    assert_int_equal(volli_client_new(NULL, &c), VOLLI_EINVAL);
    volli_options_t t = o;
    t.nservers = 0;
    assert_int_equal(volli_client_new(&t, &c), VOLLI_EINVAL);
    t = o;
    t.user_id = "not valid!";
    assert_int_equal(volli_client_new(&t, &c), VOLLI_EINVAL);
    t = o;
    t.user_id = NULL; /* a key without a user id, or the reverse */
    assert_int_equal(volli_client_new(&t, &c), VOLLI_EINVAL);
    t = o;
    t.key = NULL;
    assert_int_equal(volli_client_new(&t, &c), VOLLI_EINVAL);
    t = o;
    t.key = &wrong;
    assert_int_equal(volli_client_new(&t, &c), VOLLI_EINVAL);
    t = o;
    t.servers = bad;
    t.nservers = 1;
    assert_int_equal(volli_client_new(&t, &c), VOLLI_EINVAL);
    t.servers = wss;
    assert_int_equal(volli_client_new(&t, &c), VOLLI_EUNSUPPORTED);
    assert_non_null(strstr(seen.log, "wss://"));
    assert_null(c);

    uv_loop_t loop;
    uv_loop_init(&loop);
    t = o;
    t.uv_loop = &loop;
    assert_int_equal(volli_client_new(&t, &c), 0);
    assert_int_equal(volli_client_run(c, 0), VOLLI_EINVAL); /* not its own loop */
    assert_int_equal(volli_client_registered(c), 0);
    /* Not connected: requests fail at once and never call back. */
    const char *ids[101];
    for (int i = 0; i < 101; i++)
        ids[i] = "bob";
    assert_int_equal(volli_ping(c, never_called, NULL), VOLLI_ENOTCONN);
    assert_int_equal(volli_discover(c, ids, 1, never_called, NULL), VOLLI_ENOTCONN);
    assert_int_equal(volli_subscribe(c, ids, 2, never_called, NULL), VOLLI_ENOTCONN);
    assert_int_equal(volli_send(c, "bob", "offer", "{\"sdp\":\"x\"}", never_called, NULL),
                     VOLLI_ENOTCONN);
    /* Bad arguments are refused first. */
    assert_int_equal(volli_discover(c, ids, 0, never_called, NULL), VOLLI_EINVAL);
    assert_int_equal(volli_discover(c, ids, 101, never_called, NULL), VOLLI_EINVAL);
    const char *bad_ids[] = {"bob", "no spaces"};
    assert_int_equal(volli_subscribe(c, bad_ids, 2, never_called, NULL), VOLLI_EINVAL);
    assert_int_equal(volli_unsubscribe(c, NULL, 1, never_called, NULL), VOLLI_EINVAL);
    assert_int_equal(volli_send(c, "bob", "hello", "{}", never_called, NULL), VOLLI_EINVAL);
    assert_int_equal(volli_send(c, "bob", "offer", "{\"a\":1,\"a\":2}", never_called, NULL),
                     VOLLI_EINVAL);
    assert_int_equal(volli_send(c, "bob", "offer", "{", never_called, NULL), VOLLI_EINVAL);
    assert_int_equal(volli_send(c, "bob", "offer", NULL, never_called, NULL), VOLLI_EINVAL);
    assert_int_equal(volli_send(c, NULL, "bye", NULL, never_called, NULL), VOLLI_EINVAL);
    assert_int_equal(volli_send(c, "b\xff", "bye", NULL, never_called, NULL), VOLLI_EINVAL);
    volli_client_close(c);
    assert_int_equal(volli_client_connect(c), VOLLI_EINVAL); /* closed for good */
    volli_client_free(c);

    /* Connect-only (no user id, no key): only ping is possible. */
    t = o;
    t.uv_loop = &loop;
    t.user_id = NULL;
    t.key = NULL;
    assert_int_equal(volli_client_new(&t, &c), 0);
    assert_int_equal(volli_discover(c, ids, 1, never_called, NULL), VOLLI_EINVAL);
    assert_int_equal(volli_subscribe(c, ids, 1, never_called, NULL), VOLLI_EINVAL);
    assert_int_equal(volli_send(c, "bob", "bye", NULL, never_called, NULL), VOLLI_EINVAL);
    assert_int_equal(volli_ping(c, never_called, NULL), VOLLI_ENOTCONN);
    volli_client_free(c);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Nothing listens on port 1: attempts fail, alternate between the URLs with growing delays,
 * and run() gives up. */
static void test_give_up(void **state)
{
    (void)state;
    struct seen seen = {0};
    volli_keypair_t kp;
    assert_int_equal(volli_keygen(&kp), 0);
    const char *urls[] = {"ws://127.0.0.1:1/", "ws://localhost:1/"};
    volli_options_t o = {.servers = urls,
                         .nservers = 2,
                         .user_id = "carol",
                         .key = &kp,
                         .on_event = on_event,
                         .ud = &seen,
                         .backoff_initial_ms = 20,
                         .backoff_max_ms = 80};
    volli_client_t *c;
    assert_int_equal(volli_client_new(&o, &c), 0);
    uint64_t t0 = uv_hrtime();
    assert_int_equal(volli_client_run(c, 600), VOLLI_EUNREACHABLE);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_in_range(ms, 550, 3000);
    assert_true(seen.disconnected >= 4);
    assert_true(seen.max_delay <= 80);
    assert_int_equal(seen.other, 0);
    assert_int_equal(volli_client_run(c, 600), VOLLI_EUNREACHABLE); /* closed: returns at once */
    volli_client_free(c);

    /* Freed without ever running: nothing leaks (LeakSanitizer) and nothing hangs. */
    assert_int_equal(volli_client_new(&o, &c), 0);
    assert_int_equal(volli_client_connect(c), 0);
    volli_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_json_span),
        cmocka_unit_test(test_sign_worked_example),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_client_options),
        cmocka_unit_test(test_give_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
