/* HTTP translation daemon on libmicrohttpd.
 *
 * Routes: POST /translate (LibreTranslate's request and response shape),
 * GET /health. The daemon knows nothing of models: it calls a translate
 * callback supplied by the caller, from several threads at once, so the
 * callback must be reentrant.
 */
#ifndef SEQMT_HTTP_H
#define SEQMT_HTTP_H

#include <stddef.h>

/* Translates n texts (n >= 1) into out[0..n-1], each malloc'd. The daemon
 * passes out with every entry NULL and afterwards frees every non-NULL
 * entry, also after a failure. Returns 0, or -1 with a message in err (at
 * most err_size bytes) when the whole request fails. The client then gets
 * 500 with that message. */
typedef int (*http_translate_fn)(void *ctx, const char *const *texts, size_t n, char **out,
                                 char *err, size_t err_size);

typedef struct {
    const char *address;       /* IPv4 or IPv6 literal to bind, e.g. "127.0.0.1" or "0.0.0.0" */
    unsigned short port;       /* 0 picks a free port, see http_server_port */
    unsigned threads;          /* worker threads; 0 means 2 */
    size_t max_body_bytes;     /* larger bodies get 413; 0 means 1 MiB */
    size_t max_texts;          /* larger q arrays get 400; 0 means 128 */
    const char *source_lang;   /* language pair served, e.g. "en", or NULL to accept any */
    const char *target_lang;   /* e.g. "de", or NULL to accept any */
    http_translate_fn translate;
    void *translate_ctx;
} http_config;

typedef struct http_server http_server;

/* Starts the daemon, which copies config. Returns NULL with a message in
 * err on failure (port in use, bad address, NULL translate). */
http_server *http_server_start(const http_config *config, char *err, size_t err_size);
/* Port the daemon listens on. */
unsigned short http_server_port(const http_server *server);
/* Stops accepting, waits up to 5 s for open connections to finish (idle
 * keep-alive ones included), then closes the rest and frees the server. http_server_stop(NULL) does
 * nothing. */
void http_server_stop(http_server *server);

#endif
