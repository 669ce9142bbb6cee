/* tools/cli_out.c: how the `volli` CLI prints. One line per result, flushed at once, so that
 * scripts and tests can follow a long-running `watch` or `listen` live; in JSON mode every line
 * on stdout is one JSON object. Never prints key material. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volli/volli.h"

#include "cli.h"

static int json_mode;
static int broken; /* stdout failed once (EPIPE): stop writing to it */

void cli_out_init(int json)
{
    json_mode = json;
    /* Line buffering even on a pipe, so nothing waits in the buffer between events. */
    setvbuf(stdout, NULL, _IOLBF, 0);
}

int cli_out_json_mode(void)
{
    return json_mode;
}

static int finish_line(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        broken = 1;
        return -1;
    }
    return 0;
}

/* Terminal escape sequences in text from the network must not reach the user's terminal. */
static void sanitize(char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            *s = '?';
    }
}

static char *vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static char *vformat(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        return NULL;
    return s;
}

int cli_out_line(const char *fmt, ...)
{
    if (broken)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    if (!s) {
        fputs("volli: out of memory\n", stderr);
        return -1;
    }
    sanitize(s);
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    return finish_line();
}

int cli_out_json(json_t *obj)
{
    if (!obj)
        return -1;
    if (broken) {
        json_decref(obj);
        return -1;
    }
    /* JSON_COMPACT keeps it on one line: json_dumps escapes control characters in strings. */
    char *s = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(obj);
    if (!s) {
        fputs("volli: out of memory\n", stderr);
        return -1;
    }
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    return finish_line();
}

int cli_out_raw_json(const char *text, size_t len)
{
    if (broken)
        return -1;
    char *s = cli_json_compact(text, len);
    if (!s) {
        fputs("volli: out of memory\n", stderr);
        return -1;
    }
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    return finish_line();
}

char *cli_json_compact(const char *text, size_t len)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            out[n++] = c;
            if (c == '\\' && i + 1 < len) {
                out[n++] = text[++i];
            } else if (c == '"') {
                in_string = 0;
            }
            continue;
        }
        /* RFC 8259 whitespace; inside strings these can only appear escaped, so what is
         * dropped here never changes a value. */
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            continue;
        if (c == '"')
            in_string = 1;
        out[n++] = c;
    }
    out[n] = '\0';
    return out;
}

void cli_error(const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    if (!msg) {
        fputs("volli: out of memory\n", stderr);
        return;
    }
    if (json_mode) {
        cli_out_json(json_pack("{s:s, s:s}", "error", code, "message", msg));
    } else {
        sanitize(msg);
        fprintf(stderr, "error: %s: %s\n", code, msg);
        fflush(stderr);
    }
    free(msg);
}

void cli_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    if (!msg)
        return;
    sanitize(msg);
    fprintf(stderr, "volli: %s\n", msg);
    fflush(stderr);
    free(msg);
}

/* The codes follow the library's table, so a new VOLLI_E* value gets a name without a change
 * here: VOLLI_ETIMEDOUT becomes "timedout". */
const char *cli_errno_code(int err)
{
    static char buf[32];
    const char *name = NULL;
    switch (err) {
#define CLI_ERRNO_CASE(n, val, text)                                                               \
    case VOLLI_E##n:                                                                               \
        name = #n;                                                                                 \
        break;
        VOLLI_ERRNO_MAP(CLI_ERRNO_CASE)
#undef CLI_ERRNO_CASE
    default:
        return "unknown";
    }
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof(buf); i++)
        buf[i] = (char)tolower((unsigned char)name[i]);
    buf[i] = '\0';
    return buf;
}
