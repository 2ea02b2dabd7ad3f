/* HTTP translation daemon on libmicrohttpd.
 *
 * Routes: POST /translate (LibreTranslate's request and response shape),
 * GET /languages (LibreTranslate's list of languages and their targets),
 * GET /health and GET /ready. The daemon contains no model code. It calls
 * a translate callback supplied by the caller from translate_threads
 * threads at once, so the callback must be reentrant.
 */
#ifndef SEQMT_HTTP_H
#define SEQMT_HTTP_H

#include <stddef.h>

/* Translates n texts (n >= 1) into out[0..n-1], each malloc'd. The daemon
 * passes out with every entry NULL and afterwards frees every non-NULL
 * entry, also after a failure. Returns 0 on success. On failure it writes
 * a message to err (at most err_size bytes) and returns
 *   -2 when the input is invalid: the client gets 400 with that message;
 *   -1 (or any other nonzero value) when translation failed: the client
 *      gets 500 with that message. */
typedef int (*http_translate_fn)(void *ctx, const char *const *texts, size_t n, char **out,
                                 char *err, size_t err_size);

typedef struct {
    const char *address;       /* IPv4 or IPv6 literal to bind, e.g. "127.0.0.1" or "0.0.0.0" */
    unsigned short port;       /* 0 picks a free port, see http_server_port */
    unsigned threads;          /* HTTP threads (libmicrohttpd's pool); 0 means 2 */
    unsigned translate_threads; /* threads that run the translate callback; 0 means 2 */
    size_t max_queue;          /* requests waiting for a translate thread; more get 503; 0 means 64 */
    size_t max_body_bytes;     /* larger bodies get 413; 0 means 1 MiB */
    size_t max_texts;          /* larger q arrays get 400; 0 means 128 */
    size_t max_chars;          /* characters (UTF-8 code points) per request across all texts;
                                  more get 400; 0 means 20000 */
    unsigned grace_seconds;    /* how long http_server_stop waits for requests; 0 means 30 */
    const char *source_lang;   /* language pair served, e.g. "en", or NULL to accept any */
    const char *target_lang;   /* e.g. "de", or NULL to accept any */
    http_translate_fn translate;
    void *translate_ctx;
} http_config;

typedef struct http_server http_server;

/* Starts the daemon, which copies config. Returns NULL with a message in
 * err on failure (port in use, bad address, NULL translate, no threads). */
http_server *http_server_start(const http_config *config, char *err, size_t err_size);

/* Port the daemon listens on. */
unsigned short http_server_port(const http_server *server);

/* Number of /translate requests waiting for a translate thread now. */
size_t http_server_queue_length(http_server *server);

/* Stops the daemon and frees it. It stops accepting connections first,
 * then waits up to grace_seconds for every request in progress, queued
 * translations included, to get its reply. Meanwhile, new /translate and
 * /ready requests on open keep-alive connections get 503. After the grace
 * period, translations still queued get 503, running ones are waited for
 * because the callback cannot be interrupted, and the remaining
 * connections are closed. http_server_stop(NULL) does nothing. */
void http_server_stop(http_server *server);

#endif
