/* HTTP translation daemon on libmicrohttpd.
 *
 * Routes: POST /translate (LibreTranslate's request and response shape),
 * POST /v1/translate (scored n-best lists and timings), GET /languages
 * (LibreTranslate's list of languages and their targets), GET /health,
 * GET /ready, GET /metrics (Prometheus, metrics.h), GET /openapi.json, and
 * the translation page at GET / with its files (assets.h). The daemon
 * splits texts into lines and sentences (segment.h) and batches the
 * sentences of waiting requests. It contains no model code. It calls a
 * translate callback supplied by the caller from translate_threads threads
 * at once, so the callback must be reentrant.
 */
#ifndef SEQMT_HTTP_H
#define SEQMT_HTTP_H

#include <stddef.h>

/* A language pair served, e.g. {"en", "de"}. */
typedef struct {
    const char *source, *target;
} http_language_pair;

/* One hypothesis for a sentence. */
typedef struct {
    char *text;  /* malloc'd, freed by the daemon */
    float score; /* log probability of the translation */
    float normalized_score; /* the score that ranks hypotheses, such as
                               score / length^length_penalty */
} http_hypothesis;

/* One sentence for the translate callback: inputs set by the daemon,
 * outputs by the callback. */
typedef struct {
    const char *text;       /* in: NUL-terminated, non-blank, without line breaks */
    int n_best;             /* in: hypotheses wanted, 1..beam_size */
    int max_length;         /* in: maximum output tokens, >= 1 */
    http_hypothesis *hyps;  /* out: malloc'd [count], best first (the highest
                               normalized_score, empty texts last); the daemon
                               frees the texts and the array, also after a
                               failure */
    size_t count;           /* out: 1..n_best on success unless stopped */
    int stopped;            /* out: nonzero when the stop callback ended it */
    size_t source_tokens;   /* out: source tokens the model read, counted in
                               seqmt_translated_tokens_total; 0 if not set */
} http_sentence;

/* Returns nonzero when the callback should stop translating sentence i of
 * the current call, because its request timed out. The callback checks it
 * between decoding steps. */
typedef int (*http_stop_fn)(void *stop_ctx, size_t i);

/* Translates sentences[0..n) of language pair pair (an index into
 * http_config.pairs) with beam width beam_size, filling in the outputs of
 * each sentence. A sentence whose stop callback fired gets stopped set and
 * no hypotheses. The daemon batches sentences of several requests into one
 * call. Returns 0 on success. On failure it writes a message to err (at
 * most err_size bytes) and returns
 *   -2 when the input is invalid: the client gets 400 with that message;
 *   -1 (or any other nonzero value) when translation failed: the client
 *      gets 500 with that message.
 * When a call that joined several requests fails, the daemon calls again
 * once per request, so that only the request at fault gets the error. */
typedef int (*http_translate_fn)(void *ctx, size_t pair, int beam_size, http_sentence *sentences,
                                 size_t n, http_stop_fn stop, void *stop_ctx, char *err,
                                 size_t err_size);

/* Returns the number of source tokens that the model of pair reads for
 * sentence, or (size_t)-1 when out of memory. Runs on the HTTP threads. */
typedef size_t (*http_count_tokens_fn)(void *ctx, size_t pair, const char *sentence);

/* Hook for API keys and rate limits: decides whether a translation request
 * may be served. It runs on the HTTP threads once the body is parsed.
 * api_key is the api_key field of the body, or else the token of an
 * "Authorization: Bearer TOKEN" header, or NULL when the request has
 * neither. endpoint is the path, e.g. "/translate". client_address is the
 * peer's address as inet_ntop writes it (e.g. "127.0.0.1" or "::1"), or
 * NULL when unknown. Returns 0 to serve the request, or an HTTP status
 * from 400 to 599 (such as 403 or 429) with a message in err that the
 * client gets as {"error": message}. *retry_after_seconds is 0 on entry;
 * a hook that sets it for a 429 sends it as the Retry-After header. */
typedef unsigned (*http_authorize_fn)(void *ctx, const char *api_key, const char *endpoint,
                                      const char *client_address,
                                      unsigned *retry_after_seconds, char *err,
                                      size_t err_size);

/* Open connections allowed when http_config.max_connections is 0: libmicrohttpd
 * 0.9.75's own default, FD_SETSIZE - 4 (measured). */
#define HTTP_DEFAULT_MAX_CONNECTIONS 1020

typedef struct {
    const char *address;       /* IPv4 or IPv6 literal to bind, e.g. "127.0.0.1" or "0.0.0.0" */
    unsigned short port;       /* 0 picks a free port, see http_server_port */
    unsigned threads;          /* HTTP threads (libmicrohttpd's pool); 0 means 2 */
    unsigned translate_threads; /* threads that run the translate callback; 0 means 2 */
    unsigned max_connections;  /* open connections, all HTTP threads together; 0 means
                                  HTTP_DEFAULT_MAX_CONNECTIONS. At the limit
                                  the daemon stops accepting, so a new connection
                                  waits in the kernel's listen backlog, unanswered,
                                  until an open one closes */
    size_t max_queue;          /* requests waiting for a translate thread; more get 503; 0 means 64 */
    size_t max_body_bytes;     /* larger bodies get 413; 0 means 1 MiB */
    size_t max_texts;          /* larger q arrays get 400; 0 means 128 */
    size_t max_chars;          /* characters (UTF-8 code points) per request across all texts;
                                  more get 400; 0 means 20000 */
    size_t max_tokens;         /* source tokens per sentence; more get 400; 0 means 256 */
    size_t max_batch_sentences; /* sentences a translate thread takes from the queue for one
                                   callback call; 0 means 64 */
    unsigned batch_wait_ms;    /* how long a translate thread with fewer sentences than
                                  max_batch_sentences waits for more; 0 does not wait */
    int default_beam_size;     /* beam width when a request sets none; 0 means 5 */
    int max_beam_size;         /* larger beam_size (and alternatives + 1) get 400; 0 means 16 */
    int max_length;            /* output tokens per sentence; a larger max_length gets 400,
                                  and it caps every sentence; 0 means 256 */
    unsigned timeout_ms;       /* time from request to reply; later ones get 504; 0 means 30000 */
    unsigned grace_seconds;    /* how long http_server_stop waits for requests; 0 means 30 */
    int cors;                  /* nonzero sends Access-Control-Allow-Origin: * and
                                  Access-Control-Expose-Headers: Retry-After,
                                  X-Request-Id, and answers OPTIONS preflight requests */
    int debug;                 /* nonzero logs request texts; otherwise no text is logged */
    const http_language_pair *pairs; /* [pair_count] served pairs, at least one */
    size_t pair_count;
    http_translate_fn translate;
    http_count_tokens_fn count_tokens; /* NULL skips the max_tokens check */
    void *translate_ctx;               /* passed to translate and count_tokens */
    http_authorize_fn authorize;       /* NULL serves every request */
    void *authorize_ctx;               /* passed to authorize */
} http_config;

typedef struct http_server http_server;

/* Starts the daemon, which copies config and the pairs. Returns NULL with a
 * message in err on failure (port in use, bad address, NULL translate, no
 * pairs, no threads). */
http_server *http_server_start(const http_config *config, char *err, size_t err_size);

/* Port the daemon listens on. */
unsigned short http_server_port(const http_server *server);

/* Number of translation requests waiting for a translate thread now. */
size_t http_server_queue_length(http_server *server);

/* Stops the daemon and frees it. It stops listening first, so that new
 * connections are refused (on Linux, connect() fails with ECONNREFUSED),
 * then waits up to grace_seconds for every request in progress, queued
 * translations included, to get its reply. Meanwhile, new translation and
 * /ready requests on open keep-alive connections get 503. After the grace
 * period, translations still queued get 503, running ones get 503 when
 * the translate callback next calls the stop callback, and the remaining
 * connections are closed. A callback that never calls it is waited for.
 * http_server_stop(NULL) does nothing. */
void http_server_stop(http_server *server);

#endif
