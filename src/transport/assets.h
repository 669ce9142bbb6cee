/* assets.h: the browser SDK and demo files built into the binary (generated from web/ by
 * cmake/embed.cmake), and serving them or their on-disk counterparts over HTTP. It never
 * serves anything outside web/sdk and web/demo, and never lists directories. */
#ifndef VS_TRANSPORT_ASSETS_H
#define VS_TRANSPORT_ASSETS_H

#include <stddef.h>

typedef struct vs_asset {
    const char *path; /* relative to web/, e.g. "sdk/volli.js" */
    const unsigned char *data;
    size_t len;
} vs_asset_t;

extern const vs_asset_t vs_assets[];
extern const size_t vs_assets_count;

typedef struct vs_conn vs_conn_t;

/* The MIME type for a file name, by extension ("application/octet-stream" if unknown). */
const char *vs_asset_mime(const char *name);
/* Maps a URL path to a file under web/ ("/sdk/x.js" -> "sdk/x.js", "/" -> "demo/index.html",
 * "/app.js" -> "demo/app.js" when demo is on). Returns 0 and writes out, or VS_ENOTFOUND for
 * paths that are not static files (or are unsafe: "..", "//", control bytes). */
int vs_asset_map(const char *url_path, int demo, char *out, size_t cap);
/* Answers GET/HEAD for a mapped file from the built-in copy or from web_dir (NULL: built in):
 * 200 with an ETag, 304 when if_none_match matches, 404 when missing. */
void vs_asset_serve(vs_conn_t *c, const char *rel, const char *web_dir, int head,
                    const char *if_none_match);

#endif
