/* The `seqmt serve` subcommand: parses its flags, loads the model and runs
 * the HTTP daemon until SIGINT or SIGTERM. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "beam.h"
#include "cli.h"
#include "http.h"
#include "model.h"
#include "serve_cmd.h"

#ifndef SEQMT_DEFAULT_MODEL
#define SEQMT_DEFAULT_MODEL "models/en-de.seqmt"
#endif

typedef struct {
    const model *m;
    beam_options bo;
} serve_ctx;

static int serve_translate(void *ctx, const char *const *texts, size_t n, char **out, char *err,
                           size_t err_size)
{
    serve_ctx *s = ctx;

    if (beam_translate_lines(s->m, &s->bo, texts, n, out)) {
        snprintf(err, err_size, "out of memory translating %zu texts", n);
        return -1;
    }
    return 0;
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

int serve_main(int argc, char **argv)
{
    const char *model_path = cli_default_model_path(), *address = "127.0.0.1";
    long port = 5000, threads = 2, translate_threads = 2, blas_threads = 1;
    long max_queue = 64, max_chars = 20000, max_texts = 128, grace_seconds = 30;
    serve_ctx sc;
    http_config hc = {0};
    char err[1024];
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"port", required_argument, 0, 'p'},
        {"host", required_argument, 0, 'H'},
        {"threads", required_argument, 0, 't'},
        {"translate-threads", required_argument, 0, 'W'},
        {"max-queue", required_argument, 0, 'Q'},
        {"max-chars", required_argument, 0, 'C'},
        {"max-texts", required_argument, 0, 'X'},
        {"grace-period", required_argument, 0, 'G'},
        {"blas-threads", required_argument, 0, 'T'},
        {"beam-size", required_argument, 0, 'b'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;

    sc.bo = beam_default_options();
    while ((c = getopt_long(argc, argv, "m:p:H:t:b:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'p': port = cli_parse_long("--port", optarg, 0, 65535); break;
        case 'H': address = optarg; break;
        case 't': threads = cli_parse_long("--threads", optarg, 1, 1024); break;
        case 'W': translate_threads = cli_parse_long("--translate-threads", optarg, 1, 1024); break;
        case 'Q': max_queue = cli_parse_long("--max-queue", optarg, 1, 1000000); break;
        case 'C': max_chars = cli_parse_long("--max-chars", optarg, 1, 100000000); break;
        case 'X': max_texts = cli_parse_long("--max-texts", optarg, 1, 1000000); break;
        case 'G': grace_seconds = cli_parse_long("--grace-period", optarg, 1, 86400); break;
        case 'T': blas_threads = cli_parse_long("--blas-threads", optarg, 1, 1024); break;
        case 'b': sc.bo.beam_size = (int)cli_parse_long("--beam-size", optarg, 1, 64); break;
        case 'h':
            printf("usage: seqmt serve [--model FILE] [--port N] [--host ADDRESS] [options]\n"
                   "\n"
                   "Serves POST /translate (LibreTranslate's JSON and form shapes), GET /languages,\n"
                   "GET /health and GET /ready.\n"
                   "  --model FILE            model file (%s, or $SEQMT_MODEL)\n"
                   "  --port N                TCP port (5000)\n"
                   "  --host ADDRESS          address to bind, 0.0.0.0 for all interfaces (127.0.0.1)\n"
                   "  --threads N             HTTP threads that read requests and send replies (2)\n"
                   "  --translate-threads N   threads that translate, one request each at a time (2)\n"
                   "  --max-queue N           requests waiting for a translate thread; more get 503 (64)\n"
                   "  --max-chars N           characters per request, all texts together; more get 400\n"
                   "                          (20000)\n"
                   "  --max-texts N           texts per request; more get 400 (128)\n"
                   "  --grace-period SECONDS  on SIGINT or SIGTERM, time to finish requests in progress\n"
                   "                          before closing connections (30)\n"
                   "  --blas-threads N        OpenBLAS threads per product (1)\n"
                   "  --beam-size N           beam width (5)\n",
                   SEQMT_DEFAULT_MODEL);
            return 0;
        default:
            fprintf(stderr, "see 'seqmt serve --help'\n");
            return 2;
        }
    }
    cli_set_threads(blas_threads);
    model *m = cli_load_model_or_exit(model_path);
    sc.m = m;
    hc.address = address;
    hc.port = (unsigned short)port;
    hc.threads = (unsigned)threads;
    hc.translate_threads = (unsigned)translate_threads;
    hc.max_queue = (size_t)max_queue;
    hc.max_chars = (size_t)max_chars;
    hc.max_texts = (size_t)max_texts;
    hc.grace_seconds = (unsigned)grace_seconds;
    hc.source_lang = m->cfg.src_lang;
    hc.target_lang = m->cfg.tgt_lang;
    hc.translate = serve_translate;
    hc.translate_ctx = &sc;

    http_server *srv = http_server_start(&hc, err, sizeof(err));
    if (!srv) {
        fprintf(stderr, "seqmt serve: %s\n", err);
        model_free(m);
        return 1;
    }
    fprintf(stderr, "seqmt serve: model %s (%s->%s), listening on http://%s%s%s:%u\n", model_path,
            m->cfg.src_lang, m->cfg.tgt_lang, strchr(address, ':') ? "[" : "", address,
            strchr(address, ':') ? "]" : "", http_server_port(srv));
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    while (!stop_requested)
        pause();
    fprintf(stderr, "seqmt serve: stopping\n");
    http_server_stop(srv);
    model_free(m);
    return 0;
}

