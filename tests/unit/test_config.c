/* test_config.c: the typed configuration table through all of its readers: defaults, every
 * value type with its bounds, both flag syntaxes, the environment, the JSON config file, the
 * precedence between them, and --help/--version. */
#include "core/config.h"

#include "common/error.h"
#include "common/log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define MIB ((size_t)1024 * 1024)

/* The fake environment: NAME, VALUE pairs, NULL-terminated; set by each test that needs one. */
static const char *const *fake_vars;

static char *fake_env(const char *name)
{
    for (const char *const *v = fake_vars; v && v[0]; v += 2)
        if (strcmp(v[0], name) == 0)
            return (char *)v[1];
    return NULL;
}

static int reset_env(void **state)
{
    (void)state;
    fake_vars = NULL;
    return 0;
}

/* Runs vs_config_load on defaults with argv = "volli-signal" followed by args (NULL-terminated),
 * the fake environment, and output discarded. */
static int load_args(vs_config_t *cfg, char *err, size_t errlen, const char *const *args)
{
    char *argv[32] = {"volli-signal"};
    int argc = 1;
    while (args && args[argc - 1]) {
        assert_true(argc < 31);
        argv[argc] = (char *)args[argc - 1];
        argc++;
    }
    vs_config_defaults(cfg);
    FILE *out = fopen("/dev/null", "w");
    assert_non_null(out);
    int rc = vs_config_load(cfg, argc, argv, fake_env, out, err, errlen);
    fclose(out);
    return rc;
}

#define LOAD(cfg, err, ...)                                                                        \
    load_args((cfg), (err), sizeof(err), (const char *const[]){__VA_ARGS__, NULL})

/* Loads one flag that must be accepted; the caller inspects cfg and deinits it. */
static void accept_flag(vs_config_t *cfg, const char *flag, const char *value)
{
    char err[256] = "";
    int rc = LOAD(cfg, err, flag, value);
    if (rc != 0)
        fail_msg("%s %s rejected: %s", flag, value, err);
}

/* One flag that must be rejected with exactly the message want. */
static void reject_flag(const char *flag, const char *value, const char *want)
{
    vs_config_t cfg;
    char err[256] = "";
    int rc = LOAD(&cfg, err, flag, value);
    vs_config_deinit(&cfg);
    if (rc != VS_EUSAGE)
        fail_msg("%s \"%s\" returned %d, expected VS_EUSAGE", flag, value, rc);
    assert_string_equal(err, want);
}

/* Same, checking only that the message contains want (for messages with a long tail). */
static void reject_flag_like(const char *flag, const char *value, const char *want)
{
    vs_config_t cfg;
    char err[256] = "";
    int rc = LOAD(&cfg, err, flag, value);
    vs_config_deinit(&cfg);
    if (rc != VS_EUSAGE)
        fail_msg("%s \"%s\" returned %d, expected VS_EUSAGE", flag, value, rc);
    if (!strstr(err, want))
        fail_msg("message \"%s\" lacks \"%s\"", err, want);
}

/* Writes text to a new temporary file; returns its path (caller unlinks and frees). */
static char *temp_file(const char *text)
{
    char *path = strdup("/tmp/volli-test-config-XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static void remove_temp(char *path)
{
    unlink(path);
    free(path);
}

/* Loads a config file given by --config and returns the status; err receives the message. */
static int load_file_text(vs_config_t *cfg, const char *text, char *err, size_t errlen,
                          char **path_out)
{
    char *path = temp_file(text);
    int rc = load_args(cfg, err, errlen, (const char *const[]){"--config", path, NULL});
    *path_out = path;
    return rc;
}

static void reject_file(const char *text, const char *want_after_path)
{
    vs_config_t cfg;
    char err[512] = "", *path, want[512];
    int rc = load_file_text(&cfg, text, err, sizeof err, &path);
    snprintf(want, sizeof want, "config file %s: %s", path, want_after_path);
    vs_config_deinit(&cfg);
    remove_temp(path);
    if (rc != VS_EUSAGE)
        fail_msg("file %s returned %d, expected VS_EUSAGE", text, rc);
    assert_string_equal(err, want);
}

static void test_defaults(void **state)
{
    (void)state;
    vs_config_t cfg;
    vs_config_defaults(&cfg);
    assert_string_equal(cfg.host, "0.0.0.0");
    assert_int_equal(cfg.port, 7880);
    assert_string_equal(cfg.data_dir, "./data");
    assert_null(cfg.config_file);
    assert_int_equal(cfg.log_level, VS_LOG_INFO);
    assert_int_equal(cfg.log_format, VS_LOG_TEXT);
    assert_true(cfg.ping_interval == 30.0);
    assert_int_equal(cfg.max_frame, 65536);
    assert_int_equal(cfg.max_queue, MIB);
    assert_int_equal(cfg.max_connections, 20000);
    assert_int_equal(cfg.max_batch, 100);
    assert_true(cfg.shutdown_timeout == 5.0);
    vs_config_deinit(&cfg);
    assert_null(cfg.host);
    assert_null(cfg.data_dir);
    vs_config_deinit(&cfg); /* twice is harmless */

    /* No arguments, no environment: load keeps the defaults. */
    char err[128] = "x";
    assert_int_equal(load_args(&cfg, err, sizeof err, NULL), 0);
    assert_string_equal(err, "");
    assert_int_equal(cfg.port, 7880);
    assert_string_equal(cfg.host, "0.0.0.0");
    vs_config_deinit(&cfg);
}

static void test_int(void **state)
{
    (void)state;
    vs_config_t cfg;
    accept_flag(&cfg, "--port", "0");
    assert_int_equal(cfg.port, 0);
    vs_config_deinit(&cfg);
    accept_flag(&cfg, "--port", "65535");
    assert_int_equal(cfg.port, 65535);
    vs_config_deinit(&cfg);
    accept_flag(&cfg, "--port", "007");
    assert_int_equal(cfg.port, 7);
    vs_config_deinit(&cfg);
    accept_flag(&cfg, "--max-connections", "1");
    assert_int_equal(cfg.max_connections, 1);
    vs_config_deinit(&cfg);
    accept_flag(&cfg, "--max-connections", "10000000");
    assert_int_equal(cfg.max_connections, 10000000);
    vs_config_deinit(&cfg);
    accept_flag(&cfg, "--max-batch", "1");
    assert_int_equal(cfg.max_batch, 1);
    vs_config_deinit(&cfg);

    reject_flag("--port", "65536", "--port: 65536 is out of range (0..65535)");
    reject_flag("--port", "70000", "--port: 70000 is out of range (0..65535)");
    reject_flag("--port", "-1", "--port: -1 is out of range (0..65535)");
    reject_flag("--port", "99999999999999999999",
                "--port: 99999999999999999999 is out of range (0..65535)");
    reject_flag("--port", "-99999999999999999999",
                "--port: -99999999999999999999 is out of range (0..65535)");
    reject_flag("--port", "abc", "--port: \"abc\" is not an integer");
    reject_flag("--port", "12abc", "--port: \"12abc\" is not an integer");
    reject_flag("--port", " 12", "--port: \" 12\" is not an integer");
    reject_flag("--port", "12 ", "--port: \"12 \" is not an integer");
    reject_flag("--port", "+12", "--port: \"+12\" is not an integer");
    reject_flag("--port", "0x10", "--port: \"0x10\" is not an integer");
    reject_flag("--port", "1.0", "--port: \"1.0\" is not an integer");
    reject_flag("--port", "-", "--port: \"-\" is not an integer");
    reject_flag("--port=", NULL, "--port: \"\" is not an integer");
    reject_flag("--max-connections", "0", "--max-connections: 0 is out of range (1..10000000)");
    reject_flag("--max-connections", "10000001",
                "--max-connections: 10000001 is out of range (1..10000000)");
    reject_flag("--max-batch", "0", "--max-batch: 0 is out of range (1..100)");
    reject_flag("--max-batch", "101", "--max-batch: 101 is out of range (1..100)");
}

static void test_size(void **state)
{
    (void)state;
    static const struct {
        const char *flag, *text;
        size_t want;
    } ok[] = {
        {"--max-frame", "256", 256},           {"--max-frame", "64k", 65536},
        {"--max-frame", "64K", 65536},         {"--max-frame", "1m", MIB},
        {"--max-frame", "16M", 16 * MIB},      {"--max-frame", "16384k", 16 * MIB},
        {"--max-frame", "16777216", 16 * MIB}, {"--max-queue", "4k", 4096},
        {"--max-queue", "4096", 4096},         {"--max-queue", "1024m", 1024 * MIB},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        vs_config_t cfg;
        accept_flag(&cfg, ok[i].flag, ok[i].text);
        size_t got = strcmp(ok[i].flag, "--max-frame") == 0 ? cfg.max_frame : cfg.max_queue;
        if (got != ok[i].want)
            fail_msg("%s %s gave %zu, expected %zu", ok[i].flag, ok[i].text, got, ok[i].want);
        vs_config_deinit(&cfg);
    }

    reject_flag("--max-frame", "255", "--max-frame: 255 is out of range (256..16M)");
    reject_flag("--max-frame", "16777217", "--max-frame: 16777217 is out of range (256..16M)");
    reject_flag("--max-frame", "16385k", "--max-frame: 16385k is out of range (256..16M)");
    reject_flag("--max-frame", "17m", "--max-frame: 17m is out of range (256..16M)");
    reject_flag("--max-frame", "0", "--max-frame: 0 is out of range (256..16M)");
    reject_flag("--max-frame", "18446744073709551616",
                "--max-frame: 18446744073709551616 is out of range (256..16M)");
    reject_flag("--max-frame", "18014398509481984k",
                "--max-frame: 18014398509481984k is out of range (256..16M)");
    reject_flag("--max-queue", "4095", "--max-queue: 4095 is out of range (4K..1024M)");
    reject_flag("--max-queue", "1025m", "--max-queue: 1025m is out of range (4K..1024M)");
    static const char *const bad[] = {"12x", "k",  "64kb", "64 k",  "-1", "+1",
                                      " 1",  "1g", "1.5m", "0x100", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "--max-frame: \"%s\" is not a size", bad[i]);
        reject_flag_like("--max-frame", bad[i], want);
    }
}

static void test_seconds(void **state)
{
    (void)state;
    static const struct {
        const char *flag, *text;
        double want;
    } ok[] = {
        {"--ping-interval", "0.2", 0.2},    {"--ping-interval", "0.05", 0.05},
        {"--ping-interval", "3600", 3600},  {"--ping-interval", "3600.000", 3600},
        {"--shutdown-timeout", "0", 0},     {"--shutdown-timeout", "600", 600},
        {"--shutdown-timeout", "1.5", 1.5},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        vs_config_t cfg;
        accept_flag(&cfg, ok[i].flag, ok[i].text);
        double got = ok[i].flag[2] == 'p' ? cfg.ping_interval : cfg.shutdown_timeout;
        if (got != ok[i].want)
            fail_msg("%s %s gave %g", ok[i].flag, ok[i].text, got);
        vs_config_deinit(&cfg);
    }

    reject_flag("--ping-interval", "0.049", "--ping-interval: 0.049 is out of range (0.05..3600)");
    reject_flag("--ping-interval", "0", "--ping-interval: 0 is out of range (0.05..3600)");
    reject_flag("--ping-interval", "3600.001",
                "--ping-interval: 3600.001 is out of range (0.05..3600)");
    reject_flag("--shutdown-timeout", "600.5",
                "--shutdown-timeout: 600.5 is out of range (0..600)");
    /* 400 digits: strtod overflows to inf, which must still be refused. */
    char huge[401];
    memset(huge, '9', 400);
    huge[400] = '\0';
    reject_flag_like("--shutdown-timeout", huge, "is out of range (0..600)");
    static const char *const bad[] = {"nan",  "inf", "-inf",  "infinity", "-1",
                                      "-0.5", "1e3", "0x1p3", "1.2.3",    ".5",
                                      "5.",   "30s", " 1",    "1 ",       ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "--ping-interval: \"%s\" is not a number of seconds", bad[i]);
        reject_flag_like("--ping-interval", bad[i], want);
    }
}

static void test_enum_and_string(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int level;
    } levels[] = {{"error", VS_LOG_ERROR},
                  {"warn", VS_LOG_WARN},
                  {"info", VS_LOG_INFO},
                  {"debug", VS_LOG_DEBUG}};
    vs_config_t cfg;
    for (size_t i = 0; i < 4; i++) {
        accept_flag(&cfg, "--log-level", levels[i].name);
        assert_int_equal(cfg.log_level, levels[i].level);
        vs_config_deinit(&cfg);
    }
    accept_flag(&cfg, "--log-format", "json");
    assert_int_equal(cfg.log_format, VS_LOG_JSON);
    vs_config_deinit(&cfg);
    accept_flag(&cfg, "--log-format", "text");
    assert_int_equal(cfg.log_format, VS_LOG_TEXT);
    vs_config_deinit(&cfg);
    reject_flag("--log-level", "loud",
                "--log-level: \"loud\" is not one of error, warn, info, debug");
    reject_flag("--log-level", "", "--log-level: \"\" is not one of error, warn, info, debug");
    reject_flag("--log-format", "xml", "--log-format: \"xml\" is not one of text, json");
    reject_flag("--log-format", "JSON ", "--log-format: \"JSON \" is not one of text, json");

    accept_flag(&cfg, "--host", "::1");
    assert_string_equal(cfg.host, "::1");
    vs_config_deinit(&cfg);
    accept_flag(&cfg, "--data-dir", "/var/lib/volli signal");
    assert_string_equal(cfg.data_dir, "/var/lib/volli signal");
    vs_config_deinit(&cfg);
    reject_flag("--host", "", "--host: must not be empty");
    reject_flag("--data-dir=", NULL, "--data-dir: must not be empty");
    /* Control bytes in a quoted value cannot forge a second line of output. */
    reject_flag("--port", "1\n2\x1b", "--port: \"1?2?\" is not an integer");
}

static void test_bool(void **state)
{
    (void)state;
    vs_config_t cfg;
    vs_config_defaults(&cfg);
    assert_int_equal(cfg.demo, 1);
    assert_null(cfg.web_dir);
    vs_config_deinit(&cfg);
    const char *no[] = {"false", "no", "off", "0"}, *yes[] = {"true", "yes", "on", "1"};
    for (size_t i = 0; i < 4; i++) {
        accept_flag(&cfg, "--demo", no[i]);
        assert_int_equal(cfg.demo, 0);
        vs_config_deinit(&cfg);
        accept_flag(&cfg, "--demo", yes[i]);
        assert_int_equal(cfg.demo, 1);
        vs_config_deinit(&cfg);
    }
    reject_flag("--demo", "maybe", "--demo: \"maybe\" is not true or false");
    reject_flag("--demo", "TRUE", "--demo: \"TRUE\" is not true or false");
    char err[512] = "", *path;
    assert_int_equal(load_file_text(&cfg, "{\"demo\": false, \"web_dir\": \"/srv/w\"}", err,
                                    sizeof err, &path), 0);
    assert_int_equal(cfg.demo, 0);
    assert_string_equal(cfg.web_dir, "/srv/w");
    vs_config_deinit(&cfg);
    remove_temp(path);
    reject_file("{\"demo\": \"false\"}", "\"demo\" must be true or false");
    reject_file("{\"demo\": 0}", "\"demo\" must be true or false");
}

static void test_flag_syntax(void **state)
{
    (void)state;
    vs_config_t cfg;
    char err[256] = "";
    assert_int_equal(LOAD(&cfg, err, "--port", "8080", "--host=127.0.0.1", "--max-frame=1m",
                          "--data-dir", "/tmp/d"),
                     0);
    assert_int_equal(cfg.port, 8080);
    assert_string_equal(cfg.host, "127.0.0.1");
    assert_int_equal(cfg.max_frame, MIB);
    assert_string_equal(cfg.data_dir, "/tmp/d");
    vs_config_deinit(&cfg);

    /* '=' splits at the first one only; the last flag of a name wins. */
    assert_int_equal(LOAD(&cfg, err, "--data-dir=a=b", "--port", "1", "--port=2"), 0);
    assert_string_equal(cfg.data_dir, "a=b");
    assert_int_equal(cfg.port, 2);
    vs_config_deinit(&cfg);

    /* A single dash value is a value (and here out of range), not an option. */
    reject_flag("--port", "-5", "--port: -5 is out of range (0..65535)");
}

static void test_missing_value(void **state)
{
    (void)state;
    vs_config_t cfg;
    char err[256] = "";
    reject_flag("--port", NULL, "--port: missing value");
    assert_int_equal(LOAD(&cfg, err, "--port", "--host", "x"), VS_EUSAGE);
    assert_string_equal(err, "--port: missing value");
    vs_config_deinit(&cfg);
    assert_int_equal(LOAD(&cfg, err, "--host", "h", "--data-dir"), VS_EUSAGE);
    assert_string_equal(err, "--data-dir: missing value");
    vs_config_deinit(&cfg);
}

static void test_unknown_flag(void **state)
{
    (void)state;
    reject_flag("--prot", "80", "unknown option --prot");
    reject_flag("--prot=80", NULL, "unknown option --prot");
    reject_flag("--port-", "80", "unknown option --port-");
    reject_flag("--data_dir", "x", "unknown option --data_dir");
    reject_flag("-p", "80", "unknown option -p");
    reject_flag("--", NULL, "unknown option --");
    reject_flag("serve", NULL, "unexpected argument \"serve\"");
    reject_flag("--help=1", NULL, "--help: takes no value");
    reject_flag("--version=x", NULL, "--version: takes no value");
}

static void test_env(void **state)
{
    (void)state;
    static const char *const vars[] = {"VOLLI_HOST",
                                       "10.0.0.1",
                                       "VOLLI_PORT",
                                       "9000",
                                       "VOLLI_DATA_DIR",
                                       "/srv/v",
                                       "LOG_LEVEL",
                                       "debug",
                                       "VOLLI_LOG_FORMAT",
                                       "json",
                                       "VOLLI_PING_INTERVAL",
                                       "2.5",
                                       "VOLLI_MAX_FRAME",
                                       "128k",
                                       "VOLLI_MAX_QUEUE",
                                       "2m",
                                       "VOLLI_MAX_CONNECTIONS",
                                       "50",
                                       "VOLLI_MAX_BATCH",
                                       "10",
                                       "VOLLI_SHUTDOWN_TIMEOUT",
                                       "0.5",
                                       NULL};
    fake_vars = vars;
    vs_config_t cfg;
    char err[256] = "";
    assert_int_equal(load_args(&cfg, err, sizeof err, NULL), 0);
    assert_string_equal(cfg.host, "10.0.0.1");
    assert_int_equal(cfg.port, 9000);
    assert_string_equal(cfg.data_dir, "/srv/v");
    assert_int_equal(cfg.log_level, VS_LOG_DEBUG);
    assert_int_equal(cfg.log_format, VS_LOG_JSON);
    assert_true(cfg.ping_interval == 2.5);
    assert_int_equal(cfg.max_frame, 128 * 1024);
    assert_int_equal(cfg.max_queue, 2 * MIB);
    assert_int_equal(cfg.max_connections, 50);
    assert_int_equal(cfg.max_batch, 10);
    assert_true(cfg.shutdown_timeout == 0.5);
    vs_config_deinit(&cfg);

    static const char *const bad[] = {"VOLLI_PORT", "x", NULL};
    fake_vars = bad;
    assert_int_equal(load_args(&cfg, err, sizeof err, NULL), VS_EUSAGE);
    assert_string_equal(err, "VOLLI_PORT: \"x\" is not an integer");
    vs_config_deinit(&cfg);

    static const char *const range[] = {"VOLLI_MAX_BATCH", "500", NULL};
    fake_vars = range;
    assert_int_equal(load_args(&cfg, err, sizeof err, NULL), VS_EUSAGE);
    assert_string_equal(err, "VOLLI_MAX_BATCH: 500 is out of range (1..100)");
    vs_config_deinit(&cfg);

    /* An empty variable is unset, as `VOLLI_PORT= volli-signal` means in a shell script. */
    static const char *const empty[] = {"VOLLI_PORT", "", "VOLLI_HOST", "", NULL};
    fake_vars = empty;
    assert_int_equal(load_args(&cfg, err, sizeof err, NULL), 0);
    assert_int_equal(cfg.port, 7880);
    assert_string_equal(cfg.host, "0.0.0.0");
    vs_config_deinit(&cfg);

    /* A NULL lookup means no environment at all. */
    char *argv[] = {"volli-signal", NULL};
    vs_config_defaults(&cfg);
    assert_int_equal(vs_config_load(&cfg, 1, argv, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(cfg.port, 7880);
    vs_config_deinit(&cfg);
}

static void test_precedence(void **state)
{
    (void)state;
    char *path = temp_file("{\"port\": 1111, \"host\": \"file-host\", \"max_batch\": 7,\n"
                           " \"data_dir\": \"/file\"}\n");
    const char *vars[] = {"VOLLI_CONFIG", path,       "VOLLI_PORT", "2222",
                          "VOLLI_HOST",   "env-host", NULL};
    fake_vars = vars;
    vs_config_t cfg;
    char err[256] = "";

    /* Environment over file; file over defaults; flag over environment. */
    assert_int_equal(LOAD(&cfg, err, "--host", "flag-host"), 0);
    assert_string_equal(cfg.config_file, path);
    assert_int_equal(cfg.port, 2222);
    assert_string_equal(cfg.host, "flag-host");
    assert_int_equal(cfg.max_batch, 7);
    assert_string_equal(cfg.data_dir, "/file");
    assert_int_equal(cfg.max_connections, 20000);
    vs_config_deinit(&cfg);

    /* A flag's bad value is reported even though env and file were fine. */
    assert_int_equal(LOAD(&cfg, err, "--port", "x"), VS_EUSAGE);
    assert_string_equal(err, "--port: \"x\" is not an integer");
    vs_config_deinit(&cfg);

    /* Every source is validated, so a bad variable is reported even when a flag overrides it. */
    const char *badenv[] = {"VOLLI_PORT", "nope", NULL};
    fake_vars = badenv;
    assert_int_equal(LOAD(&cfg, err, "--port", "1"), VS_EUSAGE);
    assert_string_equal(err, "VOLLI_PORT: \"nope\" is not an integer");
    vs_config_deinit(&cfg);

    /* --config on the command line beats VOLLI_CONFIG. */
    char *other = temp_file("{\"port\": 3333}");
    const char *both[] = {"VOLLI_CONFIG", path, NULL};
    fake_vars = both;
    assert_int_equal(LOAD(&cfg, err, "--config", other), 0);
    assert_int_equal(cfg.port, 3333);
    assert_string_equal(cfg.host, "0.0.0.0");
    assert_string_equal(cfg.config_file, other);
    vs_config_deinit(&cfg);

    remove_temp(other);
    remove_temp(path);
}

static void test_file_values(void **state)
{
    (void)state;
    vs_config_t cfg;
    char err[512] = "", *path;
    assert_int_equal(load_file_text(&cfg,
                                    "{\"host\": \"::\", \"port\": 0, \"data_dir\": \"/d\",\n"
                                    " \"log_level\": \"warn\", \"log_format\": \"json\",\n"
                                    " \"ping_interval\": 0.25, \"max_frame\": \"32k\",\n"
                                    " \"max_queue\": 8192, \"max_connections\": 10,\n"
                                    " \"max_batch\": 5, \"shutdown_timeout\": 1}",
                                    err, sizeof err, &path),
                     0);
    assert_string_equal(cfg.host, "::");
    assert_int_equal(cfg.port, 0);
    assert_string_equal(cfg.data_dir, "/d");
    assert_int_equal(cfg.log_level, VS_LOG_WARN);
    assert_int_equal(cfg.log_format, VS_LOG_JSON);
    assert_true(cfg.ping_interval == 0.25);
    assert_int_equal(cfg.max_frame, 32768);
    assert_int_equal(cfg.max_queue, 8192);
    assert_int_equal(cfg.max_connections, 10);
    assert_int_equal(cfg.max_batch, 5);
    assert_true(cfg.shutdown_timeout == 1.0);
    assert_string_equal(cfg.config_file, path);
    vs_config_deinit(&cfg);
    remove_temp(path);

    /* An empty object changes nothing. */
    assert_int_equal(load_file_text(&cfg, "{}", err, sizeof err, &path), 0);
    assert_int_equal(cfg.port, 7880);
    vs_config_deinit(&cfg);
    remove_temp(path);
}

static void test_file_errors(void **state)
{
    (void)state;
    reject_file("{\"prot\": 1}", "unknown key \"prot\"");
    reject_file("{\"log-level\": \"info\"}",
                "unknown key \"log-level\" (keys are written with '_' instead of '-')");
    reject_file("{\"config\": \"/x.json\"}", "\"config\" cannot be set in a config file");
    reject_file("{\"port\": \"80\"}", "\"port\" must be an integer");
    reject_file("{\"port\": 80.0}", "\"port\" must be an integer");
    reject_file("{\"port\": null}", "\"port\" must be an integer");
    reject_file("{\"port\": 70000}", "\"port\": 70000 is out of range (0..65535)");
    reject_file("{\"port\": -1}", "\"port\": -1 is out of range (0..65535)");
    reject_file("{\"port\": 9223372036854775807}",
                "\"port\": 9223372036854775807 is out of range (0..65535)");
    reject_file("{\"host\": 5}", "\"host\" must be a string");
    reject_file("{\"host\": \"\"}", "\"host\": must not be empty");
    reject_file("{\"log_level\": \"loud\"}",
                "\"log_level\": \"loud\" is not one of error, warn, info, debug");
    reject_file("{\"log_format\": 1}", "\"log_format\" must be a string");
    reject_file("{\"max_frame\": true}",
                "\"max_frame\" must be an integer or a string like \"64k\"");
    reject_file("{\"max_frame\": 100}", "\"max_frame\": 100 is out of range (256..16M)");
    reject_file("{\"max_frame\": -300}", "\"max_frame\": -300 is out of range (256..16M)");
    reject_file("{\"max_queue\": \"2g\"}",
                "\"max_queue\": \"2g\" is not a size (bytes, or with a k or m suffix: 65536, "
                "64k, 16m)");
    reject_file("{\"ping_interval\": \"1\"}", "\"ping_interval\" must be a number");
    reject_file("{\"ping_interval\": -1}", "\"ping_interval\": -1 is out of range (0.05..3600)");
    reject_file("{\"shutdown_timeout\": 600.5}",
                "\"shutdown_timeout\": 600.5 is out of range (0..600)");
    reject_file("{\"max_batch\": [1]}", "\"max_batch\" must be an integer");
    reject_file("[1, 2]", "the top level must be a JSON object");
    reject_file("{\"port\": 1, \"port\": 2}", "line 1: duplicate object key near '\"port\"'");

    /* Invalid JSON: the message has the path, the line and jansson's text. */
    vs_config_t cfg;
    char err[512] = "", *path, want[512];
    int rc =
        load_file_text(&cfg, "{\n  \"port\": 1,\n  \"host\" \"x\"\n}\n", err, sizeof err, &path);
    assert_int_equal(rc, VS_EUSAGE);
    snprintf(want, sizeof want, "config file %s: line 3: ", path);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("\"%s\" does not start with \"%s\"", err, want);
    assert_non_null(strstr(err, "':' expected"));
    vs_config_deinit(&cfg);
    remove_temp(path);

    rc = load_file_text(&cfg, "", err, sizeof err, &path);
    assert_int_equal(rc, VS_EUSAGE);
    snprintf(want, sizeof want, "config file %s: ", path);
    assert_int_equal(strncmp(err, want, strlen(want)), 0);
    vs_config_deinit(&cfg);
    remove_temp(path);
}

static void test_file_unreadable(void **state)
{
    (void)state;
    vs_config_t cfg;
    char err[512] = "";
    assert_int_equal(LOAD(&cfg, err, "--config", "/nonexistent/volli/c.json"), VS_EUSAGE);
    assert_string_equal(err, "config file /nonexistent/volli/c.json: No such file or directory");
    vs_config_deinit(&cfg);

    assert_int_equal(LOAD(&cfg, err, "--config", "/tmp"), VS_EUSAGE);
    assert_string_equal(err, "config file /tmp: is a directory");
    vs_config_deinit(&cfg);

    /* A file past the 1 MiB cap is refused before parsing (it would be valid JSON). */
    char *path = temp_file("");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputc('{', f);
    for (int i = 0; i < 1100000; i++)
        fputc(' ', f);
    fputc('}', f);
    fclose(f);
    assert_int_equal(LOAD(&cfg, err, "--config", path), VS_EUSAGE);
    assert_non_null(strstr(err, "larger than 1048576 bytes"));
    vs_config_deinit(&cfg);
    remove_temp(path);

    assert_int_equal(LOAD(&cfg, err, "--config", ""), VS_EUSAGE);
    assert_string_equal(err, "--config: must not be empty");
    vs_config_deinit(&cfg);

    /* Via the environment, the message still names the file. */
    const char *vars[] = {"VOLLI_CONFIG", "/nonexistent/env.json", NULL};
    fake_vars = vars;
    assert_int_equal(load_args(&cfg, err, sizeof err, NULL), VS_EUSAGE);
    assert_string_equal(err, "config file /nonexistent/env.json: No such file or directory");
    vs_config_deinit(&cfg);
}

static void test_failure_keeps_cfg(void **state)
{
    (void)state;
    vs_config_t cfg;
    char err[256];
    vs_config_defaults(&cfg);
    char *argv[] = {"volli-signal", "--host", "changed", "--port", "1", "--max-batch", "0", NULL};
    assert_int_equal(vs_config_load(&cfg, 7, argv, fake_env, NULL, err, sizeof err), VS_EUSAGE);
    assert_string_equal(err, "--max-batch: 0 is out of range (1..100)");
    assert_string_equal(cfg.host, "0.0.0.0");
    assert_int_equal(cfg.port, 7880);

    /* Loading twice on the same struct replaces (and frees) the earlier strings. */
    char *argv2[] = {"volli-signal", "--host", "first", NULL};
    assert_int_equal(vs_config_load(&cfg, 3, argv2, fake_env, NULL, err, sizeof err), 0);
    char *argv3[] = {"volli-signal", "--host", "second", NULL};
    assert_int_equal(vs_config_load(&cfg, 3, argv3, fake_env, NULL, err, sizeof err), 0);
    assert_string_equal(cfg.host, "second");
    vs_config_deinit(&cfg);
}

static char *capture(int argc, char **argv, int *rc)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    vs_config_t cfg;
    char err[256] = "";
    vs_config_defaults(&cfg);
    *rc = vs_config_load(&cfg, argc, argv, fake_env, out, err, sizeof err);
    vs_config_deinit(&cfg);
    fclose(out);
    return text;
}

static void test_help_version(void **state)
{
    (void)state;
    int rc;
    char *argv[] = {"volli-signal", "--help", NULL};
    char *text = capture(2, argv, &rc);
    assert_int_equal(rc, 1);
    static const char *const names[][2] = {
        {"--host", "VOLLI_HOST"},
        {"--port", "VOLLI_PORT"},
        {"--data-dir", "VOLLI_DATA_DIR"},
        {"--config", "VOLLI_CONFIG"},
        {"--log-level", "LOG_LEVEL"},
        {"--log-format", "VOLLI_LOG_FORMAT"},
        {"--ping-interval", "VOLLI_PING_INTERVAL"},
        {"--max-frame", "VOLLI_MAX_FRAME"},
        {"--max-queue", "VOLLI_MAX_QUEUE"},
        {"--max-connections", "VOLLI_MAX_CONNECTIONS"},
        {"--max-batch", "VOLLI_MAX_BATCH"},
        {"--shutdown-timeout", "VOLLI_SHUTDOWN_TIMEOUT"},
        {"--help", "--version"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char flag[64], env[64];
        snprintf(flag, sizeof flag, "%s ", names[i][0]);
        snprintf(env, sizeof env, "env %s;", names[i][1]);
        if (!strstr(text, flag))
            fail_msg("help lacks %s", names[i][0]);
        if (i < 12 && !strstr(text, env))
            fail_msg("help lacks %s", env);
    }
    static const char *const defaults[] = {
        "default 0.0.0.0", "default 7880",   "default ./data", "default info",     "default text",
        "default 30",      "default 64K",    "default 1M",     "default 20000",    "default 100",
        "default 5",       "range 0..65535", "range 256..16M", "one of text, json"};
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (!strstr(text, defaults[i]))
            fail_msg("help lacks \"%s\"", defaults[i]);
    free(text);

    /* --help acts when reached, even with bad values and a missing config file around. */
    static const char *const vars[] = {"VOLLI_CONFIG", "/nonexistent.json", NULL};
    fake_vars = vars;
    char *argv2[] = {"volli-signal", "--port", "x", "--help", NULL};
    text = capture(4, argv2, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(text, "Usage: volli-signal"));
    free(text);
    fake_vars = NULL;

    char *argv3[] = {"volli-signal", "--version", NULL};
    text = capture(2, argv3, &rc);
    assert_int_equal(rc, 1);
    assert_string_equal(text, "volli-signal " VS_VERSION "\n");
    free(text);

    /* vs_config_usage is the same text. */
    char *direct = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&direct, &len);
    vs_config_usage(out);
    fclose(out);
    text = capture(2, argv, &rc);
    assert_string_equal(direct, text);
    free(direct);
    free(text);
}

static void test_json_text(void **state)
{
    (void)state;
    vs_config_t cfg;
    char err[256] = "";
    vs_config_defaults(&cfg);
    /* Not NUL-terminated: only len bytes count. */
    const char text[] = "{\"port\": 4242}garbage";
    assert_int_equal(vs_config_load_json_text(&cfg, text, 14, "mem", err, sizeof err), 0);
    assert_int_equal(cfg.port, 4242);
    assert_int_equal(vs_config_load_json_text(&cfg, text, sizeof text - 1, "mem", err, sizeof err),
                     VS_EUSAGE);
    assert_true(strncmp(err, "config file mem: line 1: ", 25) == 0);
    /* jansson quotes the input near the error, and the origin is a user path: neither may put
     * a control byte (a second log line) into the message. */
    const char broken[] = "{\"log_format\": \"json&\\\n";
    assert_int_equal(
        vs_config_load_json_text(&cfg, broken, sizeof broken - 1, "a\nb", err, sizeof err),
        VS_EUSAGE);
    assert_true(strncmp(err, "config file a?b: line 2: ", 25) == 0);
    for (const char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20)
            fail_msg("control byte 0x%02x in \"%s\"", *p, err);
    /* A tiny errlen truncates but still terminates. */
    char small[8];
    assert_int_equal(vs_config_load_json_text(&cfg, "{\"prot\":1}", 10, "mem", small, sizeof small),
                     VS_EUSAGE);
    assert_string_equal(small, "config ");
    vs_config_deinit(&cfg);
}

/* The cluster knobs: URLs are checked, and a password is never quoted back. */
static void test_cluster_knobs(void **state)
{
    (void)state;
    vs_config_t cfg;
    accept_flag(&cfg, "--redis", "redis://:s3cret@127.0.0.1:6380/2");
    assert_string_equal(cfg.redis, "redis://:s3cret@127.0.0.1:6380/2");
    vs_config_deinit(&cfg);
    accept_flag(&cfg, "--database", "postgresql://u:pw@db.example:5433/volli");
    assert_string_equal(cfg.database, "postgresql://u:pw@db.example:5433/volli");
    vs_config_deinit(&cfg);
    accept_flag(&cfg, "--node-id", "node-1.eu_west");
    assert_string_equal(cfg.node_id, "node-1.eu_west");
    vs_config_deinit(&cfg);
    reject_flag("--redis", "http://:s3cret@host", "--redis: must be redis://[:password@]host:port[/db]");
    reject_flag_like("--redis", "redis://:s3cret@host:99999", "not a valid redis://");
    reject_flag_like("--database", "mysql://root:s3cret@x/y", "must be a postgres://");
    reject_flag_like("--node-id", "a b", "must be 1 to 64 characters");
    reject_flag_like("--drain-timeout", "-1", "--drain-timeout");
    reject_flag_like("--drain-timeout", "601", "--drain-timeout");
    reject_flag_like("--cluster-heartbeat", "0", "--cluster-heartbeat");
    reject_flag_like("--cluster-heartbeat", "61", "--cluster-heartbeat");
    reject_flag_like("--cluster-node-timeout", "0.1", "--cluster-node-timeout");
    reject_flag_like("--cluster-node-timeout", "601", "--cluster-node-timeout");
    reject_flag_like("--redis-timeout", "0.01", "--redis-timeout");
    reject_flag_like("--redis-timeout", "61", "--redis-timeout");
    /* A node id: at most 64 characters. */
    char id64[65], id65[66];
    memset(id64, 'n', 64);
    id64[64] = '\0';
    memset(id65, 'n', 65);
    id65[65] = '\0';
    accept_flag(&cfg, "--node-id", id64);
    assert_string_equal(cfg.node_id, id64);
    vs_config_deinit(&cfg);
    reject_flag_like("--node-id", id65, "must be 1 to 64 characters");
    accept_flag(&cfg, "--redis-timeout", "0.25");
    assert_true(cfg.redis_timeout == 0.25);
    vs_config_deinit(&cfg);
    /* The secret never appears in the message. */
    char err[256] = "";
    assert_int_equal(LOAD(&cfg, err, "--redis", "redis://:s3cret@host:0"), VS_EUSAGE);
    vs_config_deinit(&cfg);
    assert_null(strstr(err, "s3cret"));
    assert_int_equal(LOAD(&cfg, err, "--database", "pg://x:s3cret@h/d"), VS_EUSAGE);
    vs_config_deinit(&cfg);
    assert_null(strstr(err, "s3cret"));
    /* Defaults. */
    assert_int_equal(LOAD(&cfg, err, "--port", "1"), 0);
    assert_null(cfg.redis);
    assert_null(cfg.database);
    assert_true(cfg.cluster_heartbeat == 1.0 && cfg.cluster_node_timeout == 3.0);
    assert_true(cfg.redis_timeout == 2.0 && cfg.drain_timeout == 2.0);
    vs_config_deinit(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, reset_env),
        cmocka_unit_test_setup(test_int, reset_env),
        cmocka_unit_test_setup(test_size, reset_env),
        cmocka_unit_test_setup(test_seconds, reset_env),
        cmocka_unit_test_setup(test_enum_and_string, reset_env),
        cmocka_unit_test_setup(test_bool, reset_env),
        cmocka_unit_test_setup(test_flag_syntax, reset_env),
        cmocka_unit_test_setup(test_missing_value, reset_env),
        cmocka_unit_test_setup(test_unknown_flag, reset_env),
        cmocka_unit_test_setup(test_env, reset_env),
        cmocka_unit_test_setup(test_precedence, reset_env),
        cmocka_unit_test_setup(test_file_values, reset_env),
        cmocka_unit_test_setup(test_file_errors, reset_env),
        cmocka_unit_test_setup(test_file_unreadable, reset_env),
        cmocka_unit_test_setup(test_failure_keeps_cfg, reset_env),
        cmocka_unit_test_setup(test_help_version, reset_env),
        cmocka_unit_test_setup(test_json_text, reset_env),
        cmocka_unit_test_setup(test_cluster_knobs, reset_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
