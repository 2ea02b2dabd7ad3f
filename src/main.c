/* seqmt's command line: parses flags and calls the library. This is the
 * only place that exits the process. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "beam.h"
#include "bleu.h"
#include "cli.h"
#include "corpus.h"
#include "model.h"
#include "serve_cmd.h"
#include "train.h"
#include "vocab_cmd.h"

static void usage(FILE *out)
{
    fputs("usage: seqmt <command> [options]\n"
          "\n"
          "commands:\n"
          "  vocab      learn, apply and export subword codes and vocabularies\n"
          "  train      train a model on a parallel corpus\n"
          "  translate  translate sentences, one per line\n"
          "  bleu       score a translation against a reference (sacreBLEU's default BLEU)\n"
          "  serve      serve translations over HTTP\n"
          "\n"
          "Run 'seqmt <command> --help' for the options of a command.\n",
          out);
}

static corpus_format parse_format(const char *s)
{
    int f = corpus_format_parse(s);

    if (f < 0) {
        fprintf(stderr, "seqmt: invalid value '%s' for --format: expected auto, plain, tsv or "
                        "sgml\n", s);
        exit(2);
    }
    return (corpus_format)f;
}

/* ---- train ---- */

static void log_stderr(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
}

static int cmd_train(int argc, char **argv)
{
    train_options o = train_default_options();
    long threads = 0;
    int src_size_set = 0, tgt_size_set = 0;
    char err[2048];
    enum {
        O_SRC = 256, O_TGT, O_VSRC, O_VTGT, O_SLANG, O_TLANG, O_LAYERS, O_EMBED, O_HIDDEN,
        O_SVOCAB, O_TVOCAB, O_MINC, O_BATCH, O_EPOCHS, O_MAXLEN, O_LR, O_CLIP, O_INIT, O_DROP, O_SMOOTH,
        O_TIME, O_SEED, O_THREADS, O_DECAY, O_HALF, O_FORMAT, O_RATIO, O_BPE, O_BPESEP,
        O_CODES, O_PH, O_CODES_TGT, O_SVOCABF, O_TVOCABF, O_MOSES, O_ATT, O_BPEDROP,
        O_BPETHR, O_RESUME
    };
    static const struct option opts[] = {
        {"train-src", required_argument, 0, O_SRC},
        {"train-tgt", required_argument, 0, O_TGT},
        {"valid-src", required_argument, 0, O_VSRC},
        {"valid-tgt", required_argument, 0, O_VTGT},
        {"src-lang", required_argument, 0, O_SLANG},
        {"tgt-lang", required_argument, 0, O_TLANG},
        {"output", required_argument, 0, 'o'},
        {"layers", required_argument, 0, O_LAYERS},
        {"embed-size", required_argument, 0, O_EMBED},
        {"hidden-size", required_argument, 0, O_HIDDEN},
        {"attention", no_argument, 0, O_ATT},
        {"src-vocab-size", required_argument, 0, O_SVOCAB},
        {"tgt-vocab-size", required_argument, 0, O_TVOCAB},
        {"min-count", required_argument, 0, O_MINC},
        {"batch-size", required_argument, 0, O_BATCH},
        {"epochs", required_argument, 0, O_EPOCHS},
        {"max-length", required_argument, 0, O_MAXLEN},
        {"learning-rate", required_argument, 0, O_LR},
        {"max-grad-norm", required_argument, 0, O_CLIP},
        {"init-scale", required_argument, 0, O_INIT},
        {"dropout", required_argument, 0, O_DROP},
        {"label-smoothing", required_argument, 0, O_SMOOTH},
        {"time-limit", required_argument, 0, O_TIME},
        {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, O_THREADS},
        {"decay-after", required_argument, 0, O_DECAY},
        {"format", required_argument, 0, O_FORMAT},
        {"max-ratio", required_argument, 0, O_RATIO},
        {"bpe-merges", required_argument, 0, O_BPE},
        {"bpe-separate", no_argument, 0, O_BPESEP},
        {"bpe-dropout", required_argument, 0, O_BPEDROP},
        {"bpe-threshold", required_argument, 0, O_BPETHR},
        {"bpe-codes", required_argument, 0, O_CODES},
        {"bpe-codes-tgt", required_argument, 0, O_CODES_TGT},
        {"src-vocab", required_argument, 0, O_SVOCABF},
        {"tgt-vocab", required_argument, 0, O_TVOCABF},
        {"placeholders", no_argument, 0, O_PH},
        {"moses-escaped", no_argument, 0, O_MOSES},
        {"half-precision-model", no_argument, 0, O_HALF},
        {"resume", no_argument, 0, O_RESUME},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case O_SRC: o.train_src = optarg; break;
        case O_TGT: o.train_tgt = optarg; break;
        case O_VSRC: o.valid_src = optarg; break;
        case O_VTGT: o.valid_tgt = optarg; break;
        case O_SLANG: o.src_lang = optarg; break;
        case O_TLANG: o.tgt_lang = optarg; break;
        case 'o': o.output = optarg; break;
        case O_LAYERS: o.layers = (int)cli_parse_long("--layers", optarg, 1, MODEL_MAX_LAYERS); break;
        case O_EMBED: o.embed = (int)cli_parse_long("--embed-size", optarg, 1, 8192); break;
        case O_HIDDEN: o.hidden = (int)cli_parse_long("--hidden-size", optarg, 1, 8192); break;
        case O_SVOCAB:
            o.src_vocab_size = (size_t)cli_parse_long("--src-vocab-size", optarg, 5, 10000000);
            src_size_set = 1;
            break;
        case O_TVOCAB:
            o.tgt_vocab_size = (size_t)cli_parse_long("--tgt-vocab-size", optarg, 5, 10000000);
            tgt_size_set = 1;
            break;
        case O_MINC: o.min_count = (uint64_t)cli_parse_long("--min-count", optarg, 1, 1L << 40); break;
        case O_BATCH: o.batch_size = (int)cli_parse_long("--batch-size", optarg, 1, 100000); break;
        case O_EPOCHS: o.epochs = (int)cli_parse_long("--epochs", optarg, 1, 100000); break;
        case O_MAXLEN: o.max_len = (int)cli_parse_long("--max-length", optarg, 1, 100000); break;
        case O_LR: o.learning_rate = (float)cli_parse_double("--learning-rate", optarg, 1e-9, 1e3); break;
        case O_CLIP: o.max_grad_norm = (float)cli_parse_double("--max-grad-norm", optarg, 1e-9, 1e9); break;
        case O_INIT: o.init_scale = (float)cli_parse_double("--init-scale", optarg, 0, 10); break;
        case O_DROP: o.dropout = (float)cli_parse_double("--dropout", optarg, 0, 0.95); break;
        case O_SMOOTH:
            o.label_smoothing = cli_parse_double("--label-smoothing", optarg, 0, 0.9);
            break;
        case O_TIME: o.time_limit_minutes = cli_parse_double("--time-limit", optarg, 0, 1e7); break;
        case O_SEED: o.seed = (uint64_t)cli_parse_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
        case O_THREADS: threads = cli_parse_long("--threads", optarg, 1, 1024); break;
        case O_DECAY: o.decay_after = (int)cli_parse_long("--decay-after", optarg, 0, 100000); break;
        case O_HALF: o.half_precision_model = 1; break;
        case O_RESUME: o.resume = 1; break;
        case O_ATT: o.attention = 1; break;
        case O_FORMAT: o.format = parse_format(optarg); break;
        case O_RATIO: o.max_ratio = (float)cli_parse_double("--max-ratio", optarg, 0, 1e6); break;
        case O_BPE: o.bpe_merges = (size_t)cli_parse_long("--bpe-merges", optarg, 0, 10000000); break;
        case O_BPESEP: o.bpe_separate = 1; break;
        case O_BPEDROP: o.bpe_dropout = cli_parse_double("--bpe-dropout", optarg, 0, 0.9); break;
        case O_BPETHR:
            o.bpe_threshold = (uint64_t)cli_parse_long("--bpe-threshold", optarg, 0, 1000000000);
            break;
        case O_CODES: o.bpe_codes = optarg; break;
        case O_PH: o.placeholders = 1; break;
        case O_CODES_TGT: o.bpe_codes_tgt = optarg; break;
        case O_SVOCABF: o.src_vocab_file = optarg; break;
        case O_TVOCABF: o.tgt_vocab_file = optarg; break;
        case O_MOSES: o.moses_escaped = 1; break;
        case 'h':
            printf("usage: seqmt train --train-src FILE --train-tgt FILE --valid-src FILE "
                   "--valid-tgt FILE -o MODEL [options]\n"
                   "\n"
                   "Corpora are plain text or gzip, one sentence per line, source and target\n"
                   "files line-aligned; or one TSV file (source TAB target) as --train-src\n"
                   "and --valid-src alone; or WMT SGML files (<seg> elements).\n"
                   "  -o, --output FILE         the best model; OUTPUT.checkpoint holds the last\n"
                   "                            completed epoch's model, and\n"
                   "                            OUTPUT.checkpoint.state what --resume needs\n"
                   "  --resume                  continue the run at OUTPUT from its checkpoint\n"
                   "                            with the next epoch; give the same options again\n"
                   "                            (only --epochs, --time-limit and --threads may\n"
                   "                            change, and the same --threads gives the same\n"
                   "                            model as a run without a break). An epoch that\n"
                   "                            --time-limit cut short starts again\n"
                   "  --format F                auto (by file name: .tsv, .sgm), plain, tsv, sgml\n"
                   "  --src-lang, --tgt-lang L  languages for tokenization (en, de)\n"
                   "  --layers N                LSTM layers in encoder and decoder (2)\n"
                   "  --embed-size N            embedding size (256)\n"
                   "  --hidden-size N           LSTM hidden size (512)\n"
                   "  --attention               let the decoder attend to every encoder state\n"
                   "                            (global attention) instead of only the last\n"
                   "  --bpe-merges N            split words into subwords with N byte-pair\n"
                   "                            merges learned on both sides jointly (0: words)\n"
                   "  --bpe-separate            learn source and target merges apart\n"
                   "  --bpe-codes FILE          use a subword-nmt codes file for both sides\n"
                   "                            (for the source alone with --bpe-codes-tgt)\n"
                   "  --bpe-codes-tgt FILE      subword-nmt codes file for the target side\n"
                   "  --bpe-dropout P           split the training pairs anew every epoch,\n"
                   "                            leaving each merge out with probability P\n"
                   "                            (BPE-dropout; 0 to 0.9, 0.1 is usual, 0: off)\n"
                   "  --bpe-threshold N         split subwords seen fewer than N times on their\n"
                   "                            side back into the subwords they were merged\n"
                   "                            from, like subword-nmt's --vocabulary-threshold\n"
                   "                            (50 is usual; 0: off)\n"
                   "  --src-vocab FILE          use this source vocabulary (one token per line,\n"
                   "                            as 'seqmt vocab learn' writes) in its order\n"
                   "  --tgt-vocab FILE          likewise for the target side\n"
                   "  --placeholders            train on placeholders for numbers, URLs, e-mail\n"
                   "                            addresses and emoji, which translation then\n"
                   "                            copies from the source unchanged\n"
                   "  --moses-escaped           the corpora hold Moses' escapes (&apos; &quot;\n"
                   "                            &amp; &lt; &gt; &#124; &#91; &#93;): decode them\n"
                   "  --src-vocab-size N        maximum source vocabulary entries (10000)\n"
                   "  --tgt-vocab-size N        maximum target vocabulary entries (10000)\n"
                   "  --min-count N             rarer tokens become <unk> (2)\n"
                   "  --batch-size N            sentence pairs per batch (64)\n"
                   "  --epochs N                passes over the training data (10)\n"
                   "  --max-length N            pairs with a longer side are skipped (50)\n"
                   "  --max-ratio X             pairs whose longer side has over X times the\n"
                   "                            tokens of the shorter are skipped, 0 keeps all (9)\n"
                   "  --learning-rate X         SGD learning rate (1.0)\n"
                   "  --max-grad-norm X         clip the gradient to this norm (5)\n"
                   "  --init-scale X            uniform initialization range (0.08)\n"
                   "  --dropout X               dropout between layers (0.2)\n"
                   "  --label-smoothing X       train towards targets that give X of their\n"
                   "                            weight to all tokens evenly (0 to 0.9, 0.1 is\n"
                   "                            usual, 0: off); validation perplexity stays\n"
                   "                            unsmoothed\n"
                   "  --decay-after N           halve the learning rate after every epoch from\n"
                   "                            epoch N on, besides when validation perplexity\n"
                   "                            stops improving (never)\n"
                   "  --half-precision-model    store the best model's weights as float16\n"
                   "  --time-limit MINUTES      stop training after this much time in this run,\n"
                   "                            validate and keep the best model (no limit)\n"
                   "  --seed N                  random seed (1)\n"
                   "  --threads N               OpenBLAS threads (all cores)\n");
            return 0;
        default:
            fprintf(stderr, "see 'seqmt train --help'\n");
            return 2;
        }
    }
    if (!o.train_src || !o.valid_src || !o.output) {
        fprintf(stderr, "seqmt train: --train-src, --valid-src and --output are required, and "
                        "--train-tgt and --valid-tgt unless the corpora are TSV files (see "
                        "seqmt train --help)\n");
        return 2;
    }
    if (o.train_tgt && corpus_format_of(o.train_src, o.format) == CORPUS_FORMAT_TSV) {
        fprintf(stderr, "seqmt train: %s is a TSV corpus holding both sides, so --train-tgt "
                        "and --valid-tgt must be left out (or give --format plain)\n",
                o.train_src);
        return 2;
    }
    if (!o.train_tgt && corpus_format_of(o.train_src, o.format) != CORPUS_FORMAT_TSV) {
        fprintf(stderr, "seqmt train: --train-tgt is missing; it is needed unless %s is a TSV "
                        "corpus (name it *.tsv or give --format tsv)\n",
                o.train_src);
        return 2;
    }
    if (!o.train_tgt != !o.valid_tgt) {
        fprintf(stderr, "seqmt train: give both --train-tgt and --valid-tgt, or neither for TSV "
                        "corpora\n");
        return 2;
    }
    if (o.bpe_codes_tgt && !o.bpe_codes) {
        fprintf(stderr, "seqmt train: --bpe-codes-tgt needs --bpe-codes for the source side\n");
        return 2;
    }
    if (o.bpe_codes && o.bpe_merges > 0) {
        fprintf(stderr, "seqmt train: give either --bpe-codes (codes learned before) or "
                        "--bpe-merges (learn them now), not both\n");
        return 2;
    }
    if (o.bpe_separate && (o.bpe_codes || o.bpe_merges == 0)) {
        fprintf(stderr, "seqmt train: --bpe-separate applies to merges learned here: use it with "
                        "--bpe-merges; for codes learned before, give --bpe-codes and "
                        "--bpe-codes-tgt\n");
        return 2;
    }
    if (o.bpe_dropout > 0 && !o.bpe_codes && o.bpe_merges == 0) {
        fprintf(stderr, "seqmt train: --bpe-dropout %g drops subword merges, and this model has "
                        "none: add --bpe-merges N or --bpe-codes FILE\n",
                o.bpe_dropout);
        return 2;
    }
    if (o.bpe_threshold > 0 && !o.bpe_codes && o.bpe_merges == 0) {
        fprintf(stderr, "seqmt train: --bpe-threshold %llu splits rare subwords, and this model "
                        "has none: add --bpe-merges N or --bpe-codes FILE\n",
                (unsigned long long)o.bpe_threshold);
        return 2;
    }
    if ((o.src_vocab_file && src_size_set) || (o.tgt_vocab_file && tgt_size_set)) {
        fprintf(stderr, "seqmt train: a vocabulary file fixes the vocabulary, so "
                        "--%s-vocab-size does not apply; leave one of them out\n",
                o.src_vocab_file && src_size_set ? "src" : "tgt");
        return 2;
    }
    const char *outs[] = {o.output}, *ins[] = {o.train_src, o.train_tgt, o.valid_src,
                                               o.valid_tgt, o.bpe_codes, o.bpe_codes_tgt,
                                               o.src_vocab_file, o.tgt_vocab_file};
    cli_check_paths_or_exit("train", outs, 1, ins, 8);
    cli_set_threads(threads);
    if (train_run(&o, log_stderr, NULL, err, sizeof(err))) {
        fprintf(stderr, "seqmt train: %s\n", err);
        return 1;
    }
    return 0;
}

/* ---- translate ---- */

static int cmd_translate(int argc, char **argv)
{
    const char *model_path = cli_default_model_path(), *input = NULL, *output = NULL;
    corpus_format in_format = CORPUS_FORMAT_AUTO;
    beam_options bo = beam_default_options();
    long threads = 0;
    char err[1024];
    char **lines = NULL, **out = NULL;
    size_t n = 0;
    FILE *fo = stdout;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"beam-size", required_argument, 0, 'b'},
        {"input", required_argument, 0, 'i'},
        {"output", required_argument, 0, 'o'},
        {"length-penalty", required_argument, 0, 'p'},
        {"max-length-ratio", required_argument, 0, 'r'},
        {"batch-size", required_argument, 0, 'B'},
        {"threads", required_argument, 0, 't'},
        {"format", required_argument, 0, 'f'},
        {"bpe-codes", required_argument, 0, 'C'},
        {"src-vocab", required_argument, 0, 'S'},
        {"tgt-vocab", required_argument, 0, 'T'},
        {"moses-escaped", no_argument, 0, 'M'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *codes_path = NULL, *src_vocab_path = NULL, *tgt_vocab_path = NULL;
    int moses_escaped = 0;
    char tmp[4200];
    int c;

    while ((c = getopt_long(argc, argv, "m:b:i:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'b': bo.beam_size = (int)cli_parse_long("--beam-size", optarg, 1, 64); break;
        case 'i': input = optarg; break;
        case 'o': output = optarg; break;
        case 'p': bo.length_penalty = (float)cli_parse_double("--length-penalty", optarg, 0, 10); break;
        case 'r': bo.max_length_ratio = (float)cli_parse_double("--max-length-ratio", optarg, 0.1, 100); break;
        case 'B': bo.batch_size = (int)cli_parse_long("--batch-size", optarg, 1, 4096); break;
        case 't': threads = cli_parse_long("--threads", optarg, 1, 1024); break;
        case 'f': in_format = parse_format(optarg); break;
        case 'C': codes_path = optarg; break;
        case 'S': src_vocab_path = optarg; break;
        case 'T': tgt_vocab_path = optarg; break;
        case 'M': moses_escaped = 1; break;
        case 'h':
            printf("usage: seqmt translate [--model FILE] [--input FILE] [--output FILE] [options]\n"
                   "\n"
                   "Reads one sentence per line (standard input by default) and writes one\n"
                   "translation per line; an empty line gives an empty line.\n"
                   "  --model FILE            model file (%s, or $SEQMT_MODEL)\n"
                   "  --beam-size N           beam width, 1 for greedy search (5)\n"
                   "  --length-penalty X      divide scores by length^X (1.0)\n"
                   "  --max-length-ratio X    stop outputs at X * source length + 10 (2.0)\n"
                   "  --batch-size N          sentences decoded together (32)\n"
                   "  --format F              input format: auto (by name), plain or sgml\n"
                   "  --bpe-codes FILE        check that the model uses these subword codes\n"
                   "  --src-vocab FILE        check that the model uses this source vocabulary\n"
                   "  --tgt-vocab FILE        check that the model uses this target vocabulary\n"
                   "  --moses-escaped         decode Moses' escapes (&apos; ...) in the input\n"
                   "  --threads N             OpenBLAS threads (all cores)\n",
                   SEQMT_DEFAULT_MODEL);
            return 0;
        default:
            fprintf(stderr, "see 'seqmt translate --help'\n");
            return 2;
        }
    }
    const char *outs[] = {output}, *ins[] = {input, model_path, codes_path, src_vocab_path,
                                               tgt_vocab_path};
    cli_check_paths_or_exit("translate", outs, 1, ins, 5);
    cli_set_threads(threads);
    model *m = cli_load_model_or_exit(model_path);
    if (codes_path)
        cli_check_codes_or_exit(m, model_path, codes_path);
    if (src_vocab_path)
        cli_check_vocab_or_exit(m, model_path, 0, src_vocab_path);
    if (tgt_vocab_path)
        cli_check_vocab_or_exit(m, model_path, 1, tgt_vocab_path);
    if (corpus_read_segments(input ? input : "/dev/stdin", in_format, &lines, &n, err,
                             sizeof(err))) {
        fprintf(stderr, "seqmt translate: %s\n", err);
        model_free(m);
        return 1;
    }
    if (output && !(fo = cli_open_output(output, tmp, sizeof(tmp)))) {
        model_free(m);
        return 1;
    }
    for (size_t i = 0; moses_escaped && i < n; i++)
        corpus_unescape_moses(lines[i]);
    out = calloc(n + 1, sizeof(char *));
    if (!out || beam_translate_lines(m, &bo, (const char *const *)lines, n, out)) {
        fprintf(stderr, "seqmt translate: out of memory translating %zu lines\n", n);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        fprintf(fo, "%s\n", out[i]);
    if (fo != stdout ? cli_close_output(fo, tmp, output) != 0
                     : fflush(fo) != 0 || ferror(fo)) {
        if (fo == stdout)
            fprintf(stderr, "seqmt translate: cannot write output: %s\n", strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        free(out[i]);
    free(out);
    corpus_free_lines(lines, n);
    model_free(m);
    return 0;
}

/* ---- bleu ---- */

static int cmd_bleu(int argc, char **argv)
{
    char **hyp = NULL, **ref = NULL, err[1024], summary[512];
    size_t nh = 0, nr = 0;
    bleu_result r;

    int help = argc == 2 && strcmp(argv[1], "--help") == 0;

    if (argc != 3) {
        fprintf(help ? stdout : stderr,
                "usage: seqmt bleu HYPOTHESIS REFERENCE\n"
                "Prints corpus BLEU as sacreBLEU computes it by default (13a tokenization,\n"
                "cased): the score, the four n-gram precisions, the brevity penalty and both\n"
                "lengths. Files are plain text or gzip, one segment per line.\n");
        return help ? 0 : 2;
    }
    if (corpus_read_lines(argv[1], &hyp, &nh, err, sizeof(err)) ||
        corpus_read_lines(argv[2], &ref, &nr, err, sizeof(err))) {
        fprintf(stderr, "seqmt bleu: %s\n", err);
        return 1;
    }
    if (nh != nr) {
        fprintf(stderr, "seqmt bleu: hypothesis %s has %zu lines but reference %s has %zu; "
                        "they must be line-aligned\n",
                argv[1], nh, argv[2], nr);
        return 1;
    }
    if (bleu_corpus((const char *const *)hyp, (const char *const *)ref, nh, &r)) {
        fprintf(stderr, "seqmt bleu: out of memory\n");
        return 1;
    }
    bleu_format(&r, summary, sizeof(summary));
    printf("%s\n", summary);
    corpus_free_lines(hyp, nh);
    corpus_free_lines(ref, nr);
    return 0;
}

int main(int argc, char **argv)
{
    static const cli_command commands[] = {
        {"vocab", vocab_main}, {"train", cmd_train}, {"translate", cmd_translate},
        {"bleu", cmd_bleu},    {"serve", serve_main},
    };
    int status;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    status = cli_run_command(commands, sizeof commands / sizeof *commands, "seqmt", argc, argv);
    if (status >= 0)
        return status;
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "seqmt: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
