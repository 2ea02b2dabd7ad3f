/* The `seqmt serve` subcommand: parses its flags, loads the models and runs
 * the HTTP daemon until SIGINT or SIGTERM. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "beam.h"
#include "cli.h"
#include "http.h"
#include "model.h"
#include "serve_cmd.h"
#include "translator.h"

#ifndef SEQMT_DEFAULT_MODEL
#define SEQMT_DEFAULT_MODEL "models/en-de.seqmt"
#endif

#define MAX_MODELS 16
#define DEFAULT_BATCH_WAIT_MS 5
#define DEFAULT_MAX_BODY_BYTES (1024L * 1024L)
#define MAX_BODY_BYTES_LIMIT (1024L * 1024L * 1024L) /* largest --max-body-bytes */
#define STOP_POLL_MS 100 /* how often the main thread checks for SIGINT or SIGTERM */

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t loading = 1; /* models still loading */

/* Sets the flag the main thread polls. A second signal while the models
 * load ends the process at once, so a slow load can still be interrupted. */
static void on_signal(int sig)
{
    if (stop_requested && loading) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_requested = 1;
}

static void print_usage(void)
{
    printf("usage: seqmt serve [--model FILE]... [--port N] [--host ADDRESS] [options]\n"
           "\n"
           "Serves POST /translate (LibreTranslate's JSON and form shapes), POST /v1/translate\n"
           "(scored n-best lists), GET /languages, GET /health, GET /ready, GET /metrics\n"
           "(Prometheus), GET /openapi.json and a translation page at GET /.\n"
           "  --model FILE            model file; repeat for more language pairs, one model\n"
           "                          per pair (%s, or $SEQMT_MODEL)\n"
           "  --port N                TCP port (5000)\n"
           "  --host ADDRESS          address to bind, 0.0.0.0 for all interfaces (127.0.0.1)\n"
           "  --threads N             HTTP threads that read requests and send replies (2)\n"
           "  --translate-threads N   threads that translate, one batch each at a time (2)\n"
           "  --max-batch-sentences N sentences of waiting requests translated together (64);\n"
           "                          1 translates one sentence at a time\n"
           "  --batch-wait-ms MS      time a translate thread waits for more sentences when\n"
           "                          fewer than --max-batch-sentences are waiting (%d)\n"
           "  --max-queue N           requests waiting for a translate thread; more get 503 (64)\n"
           "  --max-body-bytes N      maximum request body in bytes; larger bodies get 413 (%ld)\n"
           "  --max-chars N           characters per request, all texts together; more get 400\n"
           "                          (20000)\n"
           "  --max-texts N           texts per request; more get 400 (128)\n"
           "  --max-tokens N          source tokens per sentence; more get 400 (256)\n"
           "  --max-length N          output tokens per sentence, and the largest max_length a\n"
           "                          request may set (256)\n"
           "  --max-beam-size N       largest beam_size a request may set (16)\n"
           "  --max-connections N     open connections, all HTTP threads together; at the\n"
           "                          limit, new connections wait unanswered in the\n"
           "                          kernel's listen backlog until one closes (%d)\n"
           "  --timeout SECONDS       time from request to reply; later ones get 504 (30)\n"
           "  --grace-period SECONDS  on SIGINT or SIGTERM, time to finish requests in progress\n"
           "                          before closing connections (30)\n"
           "  --api-keys FILE         require an API key on POST /translate and /v1/translate:\n"
           "                          one key per line, optionally followed by its own rate\n"
           "                          in requests per minute or \"unlimited\" (no keys)\n"
           "  --rate-limit N          translation requests per minute per API key, or per\n"
           "                          client address without --api-keys; more get 429 (0,\n"
           "                          no limit)\n"
           "  --cors                  allow browser pages of any origin to call the API\n"
           "  --debug                 log the texts of requests (never logged otherwise)\n"
           "  --blas-threads N        OpenBLAS threads per product (1)\n"
           "  --beam-size N           beam width of requests that set none (5)\n",
           SEQMT_DEFAULT_MODEL, DEFAULT_BATCH_WAIT_MS, DEFAULT_MAX_BODY_BYTES,
           HTTP_DEFAULT_MAX_CONNECTIONS);
}

/* http_authorize_fn with ctx an access_control: 403 for a missing or
 * unknown key, 429 with Retry-After when the bucket of the key (or of the
 * client address without keys) is empty. */
static unsigned authorize_request(void *ctx, const char *api_key, const char *endpoint,
                                  const char *client_address, unsigned *retry_after_seconds,
                                  char *err, size_t err_size)
{
    access_control *access = ctx;
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    switch (access_check(access, api_key, client_address, (double)now.tv_sec + 1e-9 * now.tv_nsec,
                         retry_after_seconds)) {
    case ACCESS_OK:
        return 0;
    case ACCESS_FORBIDDEN:
        if (api_key && api_key[0])
            snprintf(err, err_size, "invalid api_key for %s; ask the server's operator for a key",
                     endpoint);
        else
            snprintf(err, err_size,
                     "missing api_key: %s requires an API key, sent as the api_key field or "
                     "an \"Authorization: Bearer KEY\" header",
                     endpoint);
        return 403;
    case ACCESS_LIMITED:
        snprintf(err, err_size, "rate limit exceeded for this %s; retry after %u s",
                 access_keys_required(access) ? "API key" : "client address",
                 *retry_after_seconds);
        return 429;
    }
    snprintf(err, err_size, "access check failed");
    return 500;
}

/* Logs whether keys are required and the rate limit, never a key. */
static void log_access(const char *keys_path, const access_control *access, double rate)
{
    char limit[96] = "no rate limit";

    if (rate > 0)
        snprintf(limit, sizeof(limit), "rate limit %g requests per minute per %s", rate,
                 keys_path ? "API key" : "client address");
    if (keys_path)
        fprintf(stderr, "seqmt serve: API keys required (%zu key%s from %s), %s unless a "
                        "key's line sets its own\n",
                access_key_count(access), access_key_count(access) == 1 ? "" : "s", keys_path,
                limit);
    else
        fprintf(stderr, "seqmt serve: no API keys required, %s\n", limit);
}

/* Logs the models, the limits and the address the daemon serves. */
static void log_startup(const http_config *hc, const char *const *paths, model *const *models,
                        size_t count, unsigned short port)
{
    int ipv6 = strchr(hc->address, ':') != NULL;
    char connections[24];

    if (hc->max_connections)
        snprintf(connections, sizeof(connections), "%u", hc->max_connections);
    else
        snprintf(connections, sizeof(connections), "%d (default)", HTTP_DEFAULT_MAX_CONNECTIONS);
    for (size_t i = 0; i < count; i++)
        fprintf(stderr, "seqmt serve: model %s (%s->%s)\n", paths[i], models[i]->cfg.src_lang,
                models[i]->cfg.tgt_lang);
    fprintf(stderr,
            "seqmt serve: limits: max-body-bytes %zu, max-chars %zu, max-texts %zu, "
            "max-tokens %zu, max-length %d, max-beam-size %d, beam-size %d, timeout %.3f s, "
            "max-queue %zu, max-batch-sentences %zu, batch-wait-ms %u, max-connections %s, "
            "translate-threads %u, threads %u%s%s\n",
            hc->max_body_bytes, hc->max_chars, hc->max_texts, hc->max_tokens, hc->max_length,
            hc->max_beam_size, hc->default_beam_size, hc->timeout_ms / 1000.0, hc->max_queue,
            hc->max_batch_sentences, hc->batch_wait_ms, connections, hc->translate_threads,
            hc->threads, hc->cors ? ", cors" : "",
            hc->debug ? ", debug (request texts are logged)" : "");
    fprintf(stderr, "seqmt serve: listening on http://%s%s%s:%u\n", ipv6 ? "[" : "",
            hc->address, ipv6 ? "]" : "", port);
}

int serve_main(int argc, char **argv)
{
    const char *paths[MAX_MODELS], *address = "127.0.0.1";
    model *models[MAX_MODELS];
    http_language_pair pairs[MAX_MODELS];
    size_t model_count = 0;
    long port = 5000, threads = 2, translate_threads = 2, blas_threads = 1;
    long max_queue = 64, max_chars = 20000, max_texts = 128, grace_seconds = 30;
    long max_batch = 64, batch_wait = DEFAULT_BATCH_WAIT_MS, max_beam = 16, max_length = 256;
    long max_tokens = 256, max_connections = 0, beam_size = 5;
    long max_body = DEFAULT_MAX_BODY_BYTES;
    double timeout = 30.0, rate_limit = 0;
    const char *keys_path = NULL;
    access_control *access = NULL;
    int cors = 0, debug = 0, status = 0;
    translator tr;
    http_config hc = {0};
    char err[1024];
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"port", required_argument, 0, 'p'},
        {"host", required_argument, 0, 'H'},
        {"threads", required_argument, 0, 't'},
        {"translate-threads", required_argument, 0, 'W'},
        {"max-queue", required_argument, 0, 'Q'},
        {"max-body-bytes", required_argument, 0, 'S'},
        {"max-chars", required_argument, 0, 'C'},
        {"max-texts", required_argument, 0, 'X'},
        {"grace-period", required_argument, 0, 'G'},
        {"blas-threads", required_argument, 0, 'T'},
        {"beam-size", required_argument, 0, 'b'},
        {"max-batch-sentences", required_argument, 0, 'B'},
        {"batch-wait-ms", required_argument, 0, 'w'},
        {"max-beam-size", required_argument, 0, 'K'},
        {"max-length", required_argument, 0, 'L'},
        {"max-tokens", required_argument, 0, 'N'},
        {"max-connections", required_argument, 0, 'c'},
        {"timeout", required_argument, 0, 'o'},
        {"api-keys", required_argument, 0, 'k'},
        {"rate-limit", required_argument, 0, 'R'},
        {"cors", no_argument, 0, 'r'},
        {"debug", no_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "m:p:H:t:b:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (model_count == MAX_MODELS) {
                fprintf(stderr, "seqmt serve: at most %d --model flags are supported\n",
                        MAX_MODELS);
                return 2;
            }
            paths[model_count++] = optarg;
            break;
        case 'p': port = cli_parse_long("--port", optarg, 0, 65535); break;
        case 'H': address = optarg; break;
        case 't': threads = cli_parse_long("--threads", optarg, 1, 1024); break;
        case 'W': translate_threads = cli_parse_long("--translate-threads", optarg, 1, 1024); break;
        case 'Q': max_queue = cli_parse_long("--max-queue", optarg, 1, 1000000); break;
        case 'S':
            max_body = cli_parse_long("--max-body-bytes", optarg, 1, MAX_BODY_BYTES_LIMIT);
            break;
        case 'C': max_chars = cli_parse_long("--max-chars", optarg, 1, 100000000); break;
        case 'X': max_texts = cli_parse_long("--max-texts", optarg, 1, 1000000); break;
        case 'G': grace_seconds = cli_parse_long("--grace-period", optarg, 1, 86400); break;
        case 'T': blas_threads = cli_parse_long("--blas-threads", optarg, 1, 1024); break;
        case 'b': beam_size = cli_parse_long("--beam-size", optarg, 1, 64); break;
        case 'B': max_batch = cli_parse_long("--max-batch-sentences", optarg, 1, 4096); break;
        case 'w': batch_wait = cli_parse_long("--batch-wait-ms", optarg, 0, 10000); break;
        case 'K': max_beam = cli_parse_long("--max-beam-size", optarg, 1, 64); break;
        case 'L': max_length = cli_parse_long("--max-length", optarg, 1, 100000); break;
        case 'N': max_tokens = cli_parse_long("--max-tokens", optarg, 1, 100000); break;
        case 'c': max_connections = cli_parse_long("--max-connections", optarg, 1, 1000000); break;
        case 'o': timeout = cli_parse_double("--timeout", optarg, 0.001, 86400.0); break;
        case 'k': keys_path = optarg; break;
        case 'R': rate_limit = cli_parse_double("--rate-limit", optarg, 0, ACCESS_RATE_MAX); break;
        case 'r': cors = 1; break;
        case 'd': debug = 1; break;
        case 'h': print_usage(); return 0;
        default:
            fprintf(stderr, "see 'seqmt serve --help'\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "seqmt serve: unexpected argument \"%s\"; see 'seqmt serve --help'\n",
                argv[optind]);
        return 2;
    }
    if (beam_size > max_beam) {
        fprintf(stderr, "seqmt serve: --beam-size %ld is over --max-beam-size %ld; raise "
                        "--max-beam-size or lower --beam-size\n",
                beam_size, max_beam);
        return 2;
    }
    if (keys_path || rate_limit > 0) {
        access = access_load(keys_path, rate_limit, err, sizeof(err));
        if (!access) {
            fprintf(stderr, "seqmt serve: %s\n", err);
            return 2;
        }
    }
    if (model_count == 0)
        paths[model_count++] = cli_default_model_path();
    cli_set_threads(blas_threads);

    /* OpenBLAS may start threads before main, so a signal can land on any
     * thread. The handler sets a flag, which is checked once the models are
     * loaded and then polled by the loop below. */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    /* Load every model; two models for one pair would make requests
     * ambiguous. */
    for (size_t i = 0; i < model_count; i++) {
        models[i] = cli_load_model_or_exit(paths[i]);
        pairs[i].source = models[i]->cfg.src_lang;
        pairs[i].target = models[i]->cfg.tgt_lang;
        for (size_t k = 0; k < i; k++)
            if (strcmp(pairs[k].source, pairs[i].source) == 0 &&
                strcmp(pairs[k].target, pairs[i].target) == 0) {
                fprintf(stderr, "seqmt serve: %s and %s both translate %s->%s; load one model "
                                "per language pair\n",
                        paths[k], paths[i], pairs[i].source, pairs[i].target);
                for (size_t j = 0; j <= i; j++)
                    model_free(models[j]);
                access_free(access);
                return 2;
            }
    }

    tr.models = (const model *const *)models;
    tr.count = model_count;
    tr.options = beam_default_options();
    tr.options.batch_size = (int)max_batch;
    hc.address = address;
    hc.port = (unsigned short)port;
    hc.threads = (unsigned)threads;
    hc.translate_threads = (unsigned)translate_threads;
    hc.max_connections = (unsigned)max_connections;
    hc.max_queue = (size_t)max_queue;
    hc.max_body_bytes = (size_t)max_body;
    hc.max_chars = (size_t)max_chars;
    hc.max_texts = (size_t)max_texts;
    hc.max_tokens = (size_t)max_tokens;
    hc.max_batch_sentences = (size_t)max_batch;
    hc.batch_wait_ms = (unsigned)batch_wait;
    hc.default_beam_size = (int)beam_size;
    hc.max_beam_size = (int)max_beam;
    hc.max_length = (int)max_length;
    hc.timeout_ms = (unsigned)(timeout * 1000.0 + 0.5);
    hc.grace_seconds = (unsigned)grace_seconds;
    hc.cors = cors;
    hc.debug = debug;
    hc.pairs = pairs;
    hc.pair_count = model_count;
    hc.translate = translator_translate;
    hc.count_tokens = translator_count_tokens;
    hc.translate_ctx = &tr;
    hc.authorize = access ? authorize_request : NULL;
    hc.authorize_ctx = access;

    loading = 0;
    if (stop_requested) {
        fprintf(stderr, "seqmt serve: stopped while loading the models\n");
        goto done;
    }
    http_server *srv = http_server_start(&hc, err, sizeof(err));
    if (!srv) {
        fprintf(stderr, "seqmt serve: %s\n", err);
        status = 1;
        goto done;
    }
    log_access(keys_path, access, rate_limit);
    log_startup(&hc, paths, models, model_count, http_server_port(srv));
    while (!stop_requested) {
        struct timespec pause = {0, STOP_POLL_MS * 1000000L};

        nanosleep(&pause, NULL); /* a signal on this thread ends it early */
    }
    fprintf(stderr, "seqmt serve: stopping\n");
    http_server_stop(srv);
    fprintf(stderr, "seqmt serve: stopped\n");

done:
    for (size_t i = 0; i < model_count; i++)
        model_free(models[i]);
    access_free(access);
    return status;
}
