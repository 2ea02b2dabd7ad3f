/* The `seqmt vocab` subcommand: learns subword codes and vocabularies from a
 * parallel corpus exactly as training would, applies codes to text, and
 * exports what a model file holds, all in subword-nmt's codes format and
 * one-token-per-line vocabulary files. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpe.h"
#include "cli.h"
#include "corpus.h"
#include "model.h"
#include "placeholder.h"
#include "train.h"
#include "vocab.h"
#include "vocab_cmd.h"

static void vocab_usage(FILE *out)
{
    fputs("usage: seqmt vocab <action> [options]\n"
          "\n"
          "actions:\n"
          "  learn   learn subword codes and vocabularies from a parallel corpus\n"
          "  apply   split text into subwords with a codes file (standard input to output)\n"
          "  export  write the codes and vocabularies stored in a model\n"
          "\n"
          "Run 'seqmt vocab <action> --help' for its options.\n",
          out);
}

static void log_line(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "%s\n", line);
}

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "seqmt vocab %s: %s\n", what, msg);
    return 1;
}

/* Checks that path can be written, by creating and removing PATH.tmp, so
 * that a bad path fails before any other output is written. */
static int check_writable(const char *path, char *err, size_t err_size)
{
    char tmp[4200];
    struct stat st;
    FILE *f;

    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return 0; /* a link, device or FIFO, written in place */
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (!(f = fopen(tmp, "w"))) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    fclose(f);
    remove(tmp);
    return 0;
}

static int learn(int argc, char **argv)
{
    train_options o = train_default_options();
    const char *codes_out = NULL, *codes_tgt_out = NULL, *src_vocab_out = NULL,
               *tgt_vocab_out = NULL;
    tok_list *src = NULL, *tgt = NULL;
    size_t n = 0;
    corpus_stats stats;
    bpe *sc = NULL, *tc = NULL;
    vocab *sv = NULL, *tv = NULL;
    char err[2048];
    int rc = 1;
    enum {
        O_SRC = 256, O_TGT, O_SLANG, O_TLANG, O_MERGES, O_SEP, O_CODES, O_CODES_TGT, O_SVOC,
        O_TVOC, O_SVSIZE, O_TVSIZE, O_MINC, O_MAXLEN, O_RATIO, O_FORMAT, O_PH, O_MOSES,
        O_DROP, O_SEED, O_THR
    };
    static const struct option opts[] = {
        {"train-src", required_argument, 0, O_SRC},
        {"train-tgt", required_argument, 0, O_TGT},
        {"src-lang", required_argument, 0, O_SLANG},
        {"tgt-lang", required_argument, 0, O_TLANG},
        {"merges", required_argument, 0, O_MERGES},
        {"separate", no_argument, 0, O_SEP},
        {"codes", required_argument, 0, O_CODES},
        {"codes-tgt", required_argument, 0, O_CODES_TGT},
        {"src-vocab", required_argument, 0, O_SVOC},
        {"tgt-vocab", required_argument, 0, O_TVOC},
        {"src-vocab-size", required_argument, 0, O_SVSIZE},
        {"tgt-vocab-size", required_argument, 0, O_TVSIZE},
        {"min-count", required_argument, 0, O_MINC},
        {"max-length", required_argument, 0, O_MAXLEN},
        {"max-ratio", required_argument, 0, O_RATIO},
        {"format", required_argument, 0, O_FORMAT},
        {"placeholders", no_argument, 0, O_PH},
        {"moses-escaped", no_argument, 0, O_MOSES},
        {"bpe-dropout", required_argument, 0, O_DROP},
        {"bpe-threshold", required_argument, 0, O_THR},
        {"seed", required_argument, 0, O_SEED},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    tok_list *drop_src = NULL, *drop_tgt = NULL;
    vocab *src_kept = NULL, *tgt_kept = NULL;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_SRC: o.train_src = optarg; break;
        case O_TGT: o.train_tgt = optarg; break;
        case O_SLANG: o.src_lang = optarg; break;
        case O_TLANG: o.tgt_lang = optarg; break;
        case O_MERGES: o.bpe_merges = (size_t)cli_parse_long("--merges", optarg, 1, 10000000); break;
        case O_SEP: o.bpe_separate = 1; break;
        case O_CODES: codes_out = optarg; break;
        case O_CODES_TGT: codes_tgt_out = optarg; break;
        case O_SVOC: src_vocab_out = optarg; break;
        case O_TVOC: tgt_vocab_out = optarg; break;
        case O_SVSIZE:
            o.src_vocab_size = (size_t)cli_parse_long("--src-vocab-size", optarg, 5, 10000000);
            break;
        case O_TVSIZE:
            o.tgt_vocab_size = (size_t)cli_parse_long("--tgt-vocab-size", optarg, 5, 10000000);
            break;
        case O_MINC: o.min_count = (uint64_t)cli_parse_long("--min-count", optarg, 1, 1L << 40); break;
        case O_MAXLEN: o.max_len = (int)cli_parse_long("--max-length", optarg, 1, 100000); break;
        case O_RATIO: o.max_ratio = (float)cli_parse_double("--max-ratio", optarg, 0, 1e6); break;
        case O_FORMAT: {
            int f = corpus_format_parse(optarg);
            if (f < 0) {
                fprintf(stderr, "seqmt vocab learn: invalid value '%s' for --format: expected "
                                "auto, plain, tsv or sgml\n", optarg);
                return 2;
            }
            o.format = (corpus_format)f;
            break;
        }
        case O_PH: o.placeholders = 1; break;
        case O_MOSES: o.moses_escaped = 1; break;
        case O_DROP: o.bpe_dropout = cli_parse_double("--bpe-dropout", optarg, 0, 0.9); break;
        case O_THR:
            o.bpe_threshold = (uint64_t)cli_parse_long("--bpe-threshold", optarg, 0, 1000000000);
            break;
        case O_SEED: o.seed = (uint64_t)cli_parse_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
        case 'h':
            printf("usage: seqmt vocab learn --train-src FILE --train-tgt FILE [--merges N "
                   "--codes FILE] [--src-vocab FILE --tgt-vocab FILE] [options]\n"
                   "\n"
                   "Reads and filters the corpus as 'seqmt train' does, then writes what\n"
                   "training would build, so 'seqmt train --bpe-codes FILE --src-vocab FILE\n"
                   "--tgt-vocab FILE' with the same corpus and options trains on the same units.\n"
                   "  --merges N            learn N byte-pair merges (joint over both sides)\n"
                   "  --separate            learn the merges of each side apart\n"
                   "  --codes FILE          write the (source) codes in subword-nmt's format\n"
                   "  --codes-tgt FILE      with --separate, write the target codes\n"
                   "  --src-vocab FILE      write the source vocabulary, one token per line\n"
                   "  --tgt-vocab FILE      write the target vocabulary\n"
                   "  --src-vocab-size N, --tgt-vocab-size N, --min-count N\n"
                   "                        vocabulary limits, as for training (10000, 10000, 2)\n"
                   "  --placeholders        count numbers, URLs, e-mail addresses and emoji as\n"
                   "                        placeholders, as 'seqmt train --placeholders' does\n"
                   "  --src-lang, --tgt-lang, --max-length, --max-ratio, --format,\n"
                   "  --moses-escaped, --bpe-dropout P, --bpe-threshold N, --seed N\n"
                   "                        as for 'seqmt train' (with --bpe-dropout, the\n"
                   "                        vocabularies also count one split with merges\n"
                   "                        left out, drawn from the seed; with\n"
                   "                        --bpe-threshold, train with the same N and the\n"
                   "                        written vocabularies)\n");
            return 0;
        default:
            fprintf(stderr, "see 'seqmt vocab learn --help'\n");
            return 2;
        }
    }
    if (!o.train_src || (!o.train_tgt && corpus_format_of(o.train_src, o.format) !=
                                             CORPUS_FORMAT_TSV)) {
        fprintf(stderr, "seqmt vocab learn: --train-src and --train-tgt are required (or one "
                        "TSV file as --train-src)\n");
        return 2;
    }
    if (!codes_out && !src_vocab_out && !tgt_vocab_out) {
        fprintf(stderr, "seqmt vocab learn: nothing to write: give --codes (with --merges), "
                        "--src-vocab or --tgt-vocab\n");
        return 2;
    }
    if (!codes_out != !o.bpe_merges) {
        fprintf(stderr, "seqmt vocab learn: give --merges and --codes together: --merges is "
                        "the number of merges to learn, --codes the file to write them to\n");
        return 2;
    }
    if (o.bpe_dropout > 0 && !o.bpe_merges) {
        fprintf(stderr, "seqmt vocab learn: --bpe-dropout %g leaves merges out of the split, "
                        "and there are none: add --merges N and --codes FILE\n",
                o.bpe_dropout);
        return 2;
    }
    if (o.bpe_threshold > 0 && !o.bpe_merges) {
        fprintf(stderr, "seqmt vocab learn: --bpe-threshold %llu splits rare subwords, and "
                        "there are none: add --merges N and --codes FILE\n",
                (unsigned long long)o.bpe_threshold);
        return 2;
    }
    if (o.bpe_threshold > 0 && o.bpe_threshold < o.min_count) {
        char seen[64];

        train_count_range(o.bpe_threshold, o.min_count - 1, seen, sizeof(seen));
        fprintf(stderr, "seqmt vocab learn: --bpe-threshold %llu is below --min-count %llu, so "
                        "subwords seen %s would stay whole but become <unk>; raise "
                        "--bpe-threshold to %llu or lower --min-count to %llu\n",
                (unsigned long long)o.bpe_threshold, (unsigned long long)o.min_count, seen,
                (unsigned long long)o.min_count, (unsigned long long)o.bpe_threshold);
        return 2;
    }
    if (!codes_tgt_out != !o.bpe_separate) {
        fprintf(stderr, "seqmt vocab learn: --separate needs --codes-tgt for the target "
                        "side's codes, and --codes-tgt needs --separate\n");
        return 2;
    }

    const char *outs[] = {codes_out, codes_tgt_out, src_vocab_out, tgt_vocab_out},
               *ins[] = {o.train_src, o.train_tgt};
    cli_check_paths_or_exit("vocab learn", outs, 4, ins, 2);
    for (int i = 0; i < 4; i++)
        if (outs[i] && check_writable(outs[i], err, sizeof(err)))
            return fail("learn", err);

    corpus_filter filter = {o.max_len, o.max_ratio, o.moses_escaped};
    if (corpus_load_text(o.train_src, o.train_tgt, o.format, o.src_lang, o.tgt_lang, &filter,
                         &src, &tgt, &n, &stats, err, sizeof(err)))
        return fail("learn", err);
    train_log_corpus_stats(log_line, NULL, "training", o.train_src, &stats, &filter);
    if (n == 0) {
        fail("learn", "no usable sentence pairs: every pair was empty or filtered out");
        goto done;
    }
    if (o.placeholders &&
        (train_mask_placeholders(src, n) || train_mask_placeholders(tgt, n))) {
        fail("learn", "out of memory replacing protected tokens by placeholders");
        goto done;
    }
    if (o.bpe_merges) {
        if (!(sc = train_learn_codes(src, o.bpe_separate ? NULL : tgt, n, o.bpe_merges, err,
                                     sizeof(err))) ||
            (o.bpe_separate &&
             !(tc = train_learn_codes(tgt, NULL, n, o.bpe_merges, err, sizeof(err))))) {
            fail("learn", err);
            goto done;
        }
        if (o.bpe_threshold > 0) {
            bpe *t = tc ? tc : sc;

            if (train_filter_rare_subwords(&sc, &t, src, tgt, n, o.bpe_threshold, NULL, NULL,
                                           &src_kept, &tgt_kept)) {
                if (t != sc)
                    tc = t;
                fail("learn", "out of memory filtering rare subwords");
                goto done;
            }
            tc = t;
        }
        if (o.bpe_dropout > 0) {
            /* The splits training adds to its vocabulary counts. */
            uint64_t state = train_dropout_state(o.seed);

            drop_src = train_segment_copy(sc, src, n, o.bpe_dropout, &state);
            drop_tgt = drop_src ? train_segment_copy(tc ? tc : sc, tgt, n, o.bpe_dropout, &state)
                                : NULL;
        }
        if ((o.bpe_dropout > 0 && !drop_tgt) || train_segment_all(sc, src, n) ||
            train_segment_all(tc ? tc : sc, tgt, n)) {
            fail("learn", "out of memory splitting the corpus into subwords");
            goto done;
        }
    }
    /* Everything is built and checked before the first file is written. */
    if (src_vocab_out) {
        sv = drop_src ? train_build_vocab_pair(src, drop_src, n, o.src_vocab_size, o.min_count)
                      : train_build_vocab(src, n, o.src_vocab_size, o.min_count);
        if (!sv) {
            fail("learn", "out of memory building the source vocabulary");
            goto done;
        }
        if (train_check_kept(src_kept, sv, "source", o.bpe_threshold, err, sizeof(err))) {
            fail("learn", err);
            goto done;
        }
    }
    if (tgt_vocab_out) {
        tv = drop_tgt ? train_build_vocab_pair(tgt, drop_tgt, n, o.tgt_vocab_size, o.min_count)
                      : train_build_vocab(tgt, n, o.tgt_vocab_size, o.min_count);
        if (!tv) {
            fail("learn", "out of memory building the target vocabulary");
            goto done;
        }
        if (train_check_kept(tgt_kept, tv, "target", o.bpe_threshold, err, sizeof(err))) {
            fail("learn", err);
            goto done;
        }
    }
    if (sc) {
        bool own_tgt = tc && !o.bpe_separate; /* a copy made for the target's filter */

        if (bpe_write(sc, codes_out, err, sizeof(err)) ||
            (tc && !own_tgt && bpe_write(tc, codes_tgt_out, err, sizeof(err)))) {
            fail("learn", err);
            goto done;
        }
        fprintf(stderr, "codes: %zu merges written to %s%s%s\n", bpe_n_merges(sc), codes_out,
                o.bpe_separate ? ", target codes to " : "", o.bpe_separate ? codes_tgt_out : "");
    }
    if (sv && vocab_write(sv, src_vocab_out, err, sizeof(err))) {
        fail("learn", err);
        goto done;
    }
    if (sv)
        fprintf(stderr, "source vocabulary: %zu entries written to %s\n", vocab_size(sv),
                src_vocab_out);
    if (tv && vocab_write(tv, tgt_vocab_out, err, sizeof(err))) {
        fail("learn", err);
        goto done;
    }
    if (tv)
        fprintf(stderr, "target vocabulary: %zu entries written to %s\n", vocab_size(tv),
                tgt_vocab_out);
    rc = 0;
done:
    vocab_free(src_kept);
    vocab_free(tgt_kept);
    corpus_free_tokens(drop_src, n);
    corpus_free_tokens(drop_tgt, n);
    corpus_free_tokens(src, n);
    corpus_free_tokens(tgt, n);
    bpe_free(sc);
    bpe_free(tc);
    vocab_free(sv);
    vocab_free(tv);
    return rc;
}

/* Restricts codes to the subwords listed in the vocabulary file at path
 * (those counted at least threshold times when threshold > 0). */
static int use_subwords(bpe *codes, const char *path, uint64_t threshold, char *err,
                        size_t err_size)
{
    char **tokens;
    size_t n;
    int rc = 0;

    if (vocab_read_subwords(path, threshold, &tokens, &n, err, err_size))
        return -1;
    if (n == 0) {
        snprintf(err, err_size, "vocabulary %s keeps no token%s; %s", path,
                 threshold ? " at this threshold" : "",
                 threshold ? "lower --vocab-threshold" : "give a file with one token per line");
        rc = -1;
    } else if (bpe_set_vocabulary(codes, (const char *const *)tokens, n)) {
        snprintf(err, err_size, "out of memory reading vocabulary %s", path);
        rc = -1;
    }
    for (size_t i = 0; i < n; i++)
        free(tokens[i]);
    free(tokens);
    return rc;
}

/* Stats path, or standard input when path is NULL, into *st. Returns
 * whether it is a pipe or socket, which only its first reader can read. */
static bool is_pipe(const char *path, struct stat *st)
{
    if (path ? stat(path, st) != 0 : fstat(STDIN_FILENO, st) != 0)
        return false;
    return S_ISFIFO(st->st_mode) || S_ISSOCK(st->st_mode);
}

/* Checks that no two of apply's inputs read the same pipe, because the
 * first to read it would leave the other nothing and the text could come
 * out empty. flags[i] names paths[i]. The last path is the text, NULL for
 * standard input, and the others are skipped when NULL. Returns 0, or 2
 * after printing the error. */
static int check_pipe_readers(const char *const *flags, const char *const *paths, size_t n)
{
    struct stat a, b;

    for (size_t i = 0; i + 1 < n; i++) {
        if (!paths[i] || !is_pipe(paths[i], &a))
            continue;
        for (size_t j = i + 1; j < n; j++) {
            bool text_on_stdin = j + 1 == n && !paths[j];

            if ((!paths[j] && !text_on_stdin) || !is_pipe(paths[j], &b) ||
                a.st_dev != b.st_dev || a.st_ino != b.st_ino)
                continue;
            if (text_on_stdin)
                fprintf(stderr,
                        "seqmt vocab apply: %s %s and the text to split both read standard "
                        "input, but only one can; give the text with --input FILE or save "
                        "%s to a file\n",
                        flags[i], paths[i], paths[i]);
            else
                fprintf(stderr,
                        "seqmt vocab apply: %s %s and %s %s read the same pipe, but only one "
                        "can; save one of them to a file\n",
                        flags[i], paths[i], flags[j], paths[j]);
            return 2;
        }
    }
    return 0;
}

static int apply(int argc, char **argv)
{
    const char *codes_path = NULL, *lang = "en", *input = NULL, *output = NULL,
               *vocab_path = NULL;
    long threshold = 0;
    int placeholders = 0, moses_escaped = 0, rc = 1;
    char tmp[4200];
    static const struct option opts[] = {
        {"codes", required_argument, 0, 'c'},
        {"lang", required_argument, 0, 'l'},
        {"placeholders", no_argument, 0, 'P'},
        {"moses-escaped", no_argument, 0, 'M'},
        {"vocab", required_argument, 0, 'v'},
        {"vocab-threshold", required_argument, 0, 'T'},
        {"input", required_argument, 0, 'i'},
        {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    char err[1024];
    char **lines = NULL;
    size_t n = 0;
    FILE *fo = stdout;
    bpe *codes;
    int c;

    while ((c = getopt_long(argc, argv, "c:l:i:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': codes_path = optarg; break;
        case 'l': lang = optarg; break;
        case 'P': placeholders = 1; break;
        case 'M': moses_escaped = 1; break;
        case 'v': vocab_path = optarg; break;
        case 'T': threshold = cli_parse_long("--vocab-threshold", optarg, 1, 1000000000); break;
        case 'i': input = optarg; break;
        case 'o': output = optarg; break;
        case 'h':
            printf("usage: seqmt vocab apply --codes FILE [--vocab FILE] [--lang L] "
                   "[--input FILE] [--output FILE]\n"
                   "\n"
                   "Normalizes and tokenizes each line as training does, splits the words\n"
                   "into subwords (every subword but a word's last ends in '@@') and writes the\n"
                   "tokens separated by spaces, one line per input line.\n"
                   "  --codes FILE      subword-nmt codes file (version 0.1 or 0.2)\n"
                   "  --vocab FILE      split every subword outside this vocabulary back into\n"
                   "                    the subwords it was merged from, like subword-nmt's\n"
                   "                    --vocabulary (one token per line, optionally with a\n"
                   "                    count after a space or tab); 'seqmt vocab learn\n"
                   "                    --bpe-threshold' and 'vocab export' write such files,\n"
                   "                    and with them this splits as the model does\n"
                   "  --vocab-threshold N  keep only the tokens of --vocab counted at least N\n"
                   "                    times (subword-nmt's --vocabulary-threshold)\n"
                   "  --lang L          language for tokenization (en)\n"
                   "  --placeholders    replace numbers, URLs, e-mail addresses and emoji by\n"
                   "                    placeholders first\n"
                   "  --moses-escaped   decode Moses' escapes (&apos; ...) first\n");
            return 0;
        default:
            fprintf(stderr, "see 'seqmt vocab apply --help'\n");
            return 2;
        }
    }
    if (!codes_path) {
        fprintf(stderr, "seqmt vocab apply: --codes FILE is required\n");
        return 2;
    }
    if (threshold && !vocab_path) {
        fprintf(stderr, "seqmt vocab apply: --vocab-threshold %ld counts the tokens of a "
                        "vocabulary; give it with --vocab FILE\n",
                threshold);
        return 2;
    }
    const char *outs[] = {output}, *ins[] = {input, codes_path, vocab_path};
    cli_check_paths_or_exit("vocab apply", outs, 1, ins, 3);
    const char *flags[] = {"--codes", "--vocab", "--input"},
               *readers[] = {codes_path, vocab_path, input};
    if (check_pipe_readers(flags, readers, 3))
        return 2;
    if (!(codes = bpe_read(codes_path, err, sizeof(err))))
        return fail("apply", err);
    if (vocab_path && use_subwords(codes, vocab_path, (uint64_t)threshold, err, sizeof(err))) {
        bpe_free(codes);
        return fail("apply", err);
    }
    if (corpus_read_lines(input ? input : "/dev/stdin", &lines, &n, err, sizeof(err))) {
        bpe_free(codes);
        return fail("apply", err);
    }
    if (output && !(fo = cli_open_output(output, tmp, sizeof(tmp))))
        goto done;
    for (size_t i = 0; i < n; i++) {
        tok_list words = {0}, units = {0};
        int bad;

        if (moses_escaped)
            corpus_unescape_moses(lines[i]);
        bad = corpus_tokenize(lines[i], lang, &words, NULL) ||
                  (placeholders && placeholder_mask(&words, NULL) < 0) ||
                  corpus_segment(codes, &words, &units);

        for (size_t j = 0; !bad && j < units.count; j++)
            fprintf(fo, "%s%s", j ? " " : "", units.items[j]);
        fputc('\n', fo);
        tok_list_clear(&words);
        tok_list_clear(&units);
        if (bad) {
            fail("apply", "out of memory");
            goto done;
        }
    }
    if (fo == stdout && (fflush(fo) != 0 || ferror(fo))) {
        snprintf(err, sizeof(err), "cannot write standard output: %s", strerror(errno));
        fail("apply", err);
        goto done;
    }
    rc = 0;
done:
    if (fo != stdout && fo) {
        if (rc == 0)
            rc = cli_close_output(fo, tmp, output) ? 1 : 0;
        else {
            fclose(fo);
            remove(tmp);
        }
    }
    corpus_free_lines(lines, n);
    bpe_free(codes);
    return rc;
}

static int export_model(int argc, char **argv)
{
    const char *model_path = cli_default_model_path(), *codes_out = NULL, *codes_tgt_out = NULL,
               *src_vocab_out = NULL, *tgt_vocab_out = NULL;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"codes", required_argument, 0, 'c'},
        {"codes-tgt", required_argument, 0, 'C'},
        {"src-vocab", required_argument, 0, 's'},
        {"tgt-vocab", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    char err[1024];
    int c, rc = 0;

    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'c': codes_out = optarg; break;
        case 'C': codes_tgt_out = optarg; break;
        case 's': src_vocab_out = optarg; break;
        case 't': tgt_vocab_out = optarg; break;
        case 'h':
            printf("usage: seqmt vocab export [--model FILE] [--codes FILE] [--codes-tgt FILE] "
                   "[--src-vocab FILE] [--tgt-vocab FILE]\n"
                   "\n"
                   "Writes the subword codes and vocabularies stored in a model.\n"
                   "  --codes FILE       the source side's codes (shared codes: both sides')\n"
                   "  --codes-tgt FILE   the target side's codes\n"
                   "  --src-vocab FILE   the source vocabulary, one token per line\n"
                   "  --tgt-vocab FILE   the target vocabulary\n");
            return 0;
        default:
            fprintf(stderr, "see 'seqmt vocab export --help'\n");
            return 2;
        }
    }
    if (!codes_out && !codes_tgt_out && !src_vocab_out && !tgt_vocab_out) {
        fprintf(stderr, "seqmt vocab export: nothing to write: give --codes, --codes-tgt, "
                        "--src-vocab or --tgt-vocab\n");
        return 2;
    }
    const char *outs[] = {codes_out, codes_tgt_out, src_vocab_out, tgt_vocab_out},
               *ins[] = {model_path};
    cli_check_paths_or_exit("vocab export", outs, 4, ins, 1);
    model *m = cli_load_model_or_exit(model_path);
    if ((codes_out || codes_tgt_out) && !m->src_bpe) {
        snprintf(err, sizeof(err), "model %s is word-level and holds no subword codes; leave "
                                   "out --codes and --codes-tgt to export its vocabularies",
                 model_path);
        rc = fail("export", err);
    } else if ((codes_out && bpe_write(m->src_bpe, codes_out, err, sizeof(err))) ||
               (codes_tgt_out && bpe_write(m->tgt_bpe ? m->tgt_bpe : m->src_bpe, codes_tgt_out,
                                           err, sizeof(err))) ||
               (src_vocab_out && vocab_write(m->src_vocab, src_vocab_out, err, sizeof(err))) ||
               (tgt_vocab_out && vocab_write(m->tgt_vocab, tgt_vocab_out, err, sizeof(err)))) {
        rc = fail("export", err);
    }
    model_free(m);
    return rc;
}

int vocab_main(int argc, char **argv)
{
    if (argc < 2) {
        vocab_usage(stderr);
        return 2;
    }
    static const cli_command actions[] = {
        {"learn", learn}, {"apply", apply}, {"export", export_model}};
    int status;

    optind = 1;
    status = cli_run_command(actions, sizeof actions / sizeof *actions, "seqmt vocab", argc, argv);
    if (status >= 0)
        return status;
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        vocab_usage(stdout);
        return 0;
    }
    fprintf(stderr, "seqmt vocab: unknown action '%s'\n", argv[1]);
    vocab_usage(stderr);
    return 2;
}
