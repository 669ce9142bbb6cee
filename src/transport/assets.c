#include "transport/assets.h"

#include "common/error.h"
#include "common/log.h"
#include "transport/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DISK_FILE (16 * 1024 * 1024)

const char *vs_asset_mime(const char *name)
{
    static const struct {
        const char *ext, *mime;
    } types[] = {
        {".js", "text/javascript; charset=utf-8"},  {".mjs", "text/javascript; charset=utf-8"},
        {".html", "text/html; charset=utf-8"},      {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},              {".svg", "image/svg+xml"},
        {".png", "image/png"},                      {".ico", "image/x-icon"},
        {".webmanifest", "application/manifest+json"}, {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcmp(dot, types[i].ext) == 0)
                return types[i].mime;
    return "application/octet-stream";
}

/* Only plain names: no "..", no empty or hidden segments, no bytes a file name should not have. */
static int safe_path(const char *p)
{
    const char *seg = p;
    for (const char *q = p;; q++) {
        if (*q == '/' || *q == '\0') {
            size_t n = (size_t)(q - seg);
            if (n == 0 || seg[0] == '.')
                return 0;
            if (*q == '\0')
                return 1;
            seg = q + 1;
            continue;
        }
        unsigned char ch = (unsigned char)*q;
        if (ch <= 0x20 || ch >= 0x7f || ch == '\\' || ch == '%')
            return 0;
    }
}

int vs_asset_map(const char *url_path, int demo, char *out, size_t cap)
{
    const char *rel;
    const char *dir;
    if (strncmp(url_path, "/sdk/", 5) == 0) {
        dir = "sdk/";
        rel = url_path + 5;
    } else if (demo && url_path[0] == '/') {
        dir = "demo/";
        rel = url_path[1] ? url_path + 1 : "index.html";
    } else {
        return VS_ENOTFOUND;
    }
    if (!safe_path(rel) || strlen(dir) + strlen(rel) + 1 > cap)
        return VS_ENOTFOUND;
    snprintf(out, cap, "%s%s", dir, rel);
    return 0;
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* Reads web_dir/rel if it is a regular file inside web_dir; caller frees *data. */
static int read_disk(const char *web_dir, const char *rel, unsigned char **data, size_t *len)
{
    char path[PATH_MAX], real[PATH_MAX], top[PATH_MAX], root[PATH_MAX];
    /* The file must resolve inside the sdk/ or demo/ folder its URL named. */
    size_t toplen = strcspn(rel, "/");
    if ((size_t)snprintf(path, sizeof path, "%s/%s", web_dir, rel) >= sizeof path ||
        (size_t)snprintf(top, sizeof top, "%s/%.*s", web_dir, (int)toplen, rel) >= sizeof top)
        return VS_ENOTFOUND;
    if (!realpath(top, root) || !realpath(path, real))
        return VS_ENOTFOUND;
    size_t rl = strlen(root);
    if (strncmp(real, root, rl) != 0 || real[rl] != '/')
        return VS_ENOTFOUND; /* a link leading out of the web directory */
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return VS_ENOTFOUND;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_DISK_FILE) {
        close(fd);
        return VS_ENOTFOUND;
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    ssize_t got = buf ? read(fd, buf, (size_t)st.st_size) : -1;
    close(fd);
    if (got != st.st_size) {
        free(buf);
        return VS_EIO;
    }
    *data = buf;
    *len = (size_t)got;
    return 0;
}

void vs_asset_serve(vs_conn_t *c, const char *rel, const char *web_dir, int head,
                    const char *if_none_match)
{
    const unsigned char *data = NULL;
    unsigned char *owned = NULL;
    size_t len = 0;
    if (web_dir) {
        if (read_disk(web_dir, rel, &owned, &len) == 0)
            data = owned;
    } else {
        for (size_t i = 0; i < vs_assets_count; i++)
            if (strcmp(vs_assets[i].path, rel) == 0) {
                data = vs_assets[i].data;
                len = vs_assets[i].len;
                break;
            }
    }
    if (!data) {
        static const char body[] = "{\"error\":\"not found\"}";
        vs_conn_http_send(c, 404, "application/json", NULL, body, sizeof body - 1, !head);
        return;
    }
    char etag[24], extra[160];
    snprintf(etag, sizeof etag, "\"%016llx\"", (unsigned long long)fnv1a(data, len));
    snprintf(extra, sizeof extra,
             "ETag: %s\r\nCache-Control: no-cache\r\nReferrer-Policy: no-referrer\r\n", etag);
    if (if_none_match && strstr(if_none_match, etag))
        vs_conn_http_send(c, 304, vs_asset_mime(rel), extra, "", 0, 0);
    else
        vs_conn_http_send(c, 200, vs_asset_mime(rel), extra, (const char *)data, len, !head);
    free(owned);
}
