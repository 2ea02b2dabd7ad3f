/* Files that the daemon serves as they are (service/web), embedded in the
 * binary: the translation page with its script, style and icon, and the
 * OpenAPI document at /openapi.json.
 *
 * CMakeLists.txt turns every file of service/web into a C array when it
 * configures the build and again whenever a file there changes, so the
 * daemon serves them without reading the source tree. Only files at the
 * top of service/web are embedded, not subfolders.
 *
 * The daemon serves an asset with its content_type as Content-Type, its
 * etag as ETag (a 304 reply when If-None-Match is equal), "Cache-Control:
 * no-cache", "X-Content-Type-Options: nosniff" and
 * "Content-Security-Policy: default-src 'self'". The page loads nothing
 * from other origins and has no inline script or style, so that policy
 * holds.
 */
#ifndef SEQMT_ASSETS_H
#define SEQMT_ASSETS_H

#include <stddef.h>

/* One embedded file. Every field points at static, read-only storage. */
typedef struct {
    const char *path;                /* URL path, such as "/index.html" */
    const unsigned char *data;       /* the file's bytes, followed by one NUL byte */
    size_t size;                     /* bytes in data, without the NUL */
    const char *content_type;        /* Content-Type value, such as "text/html; charset=utf-8" */
    const char *etag;                /* quoted strong ETag from the file's SHA-256 */
} seqmt_asset;

/* Returns the embedded file served at url_path, or NULL when there is
 * none. "/" returns the entry of "/index.html". The match is exact and
 * case-sensitive: pass the path without its query string, as
 * libmicrohttpd hands it to the access handler. NULL returns NULL. */
const seqmt_asset *assets_find(const char *url_path);

/* Returns the number of embedded files. */
size_t assets_count(void);

/* Returns embedded file i, for 0 <= i < assets_count(), or NULL past the
 * end. The order is by file name. */
const seqmt_asset *assets_at(size_t i);

#endif
