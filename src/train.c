/* The training driver. One step: zero the gradient block, run the loss
 * with its gradient on a batch, scale the gradient down to the maximum
 * norm, and take an SGD step. All of it is single-process; OpenBLAS uses
 * the cores for the matrix products. */
#include "train.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "corpus.h"
#include "model.h"
#include "placeholder.h"
#include "train_state.h"

train_options train_default_options(void)
{
    train_options o = {0};

    o.src_lang = "en";
    o.tgt_lang = "de";
    o.layers = 2;
    o.embed = 256;
    o.hidden = 512;
    o.src_vocab_size = 10000;
    o.tgt_vocab_size = 10000;
    o.min_count = 2;
    o.batch_size = 64;
    o.epochs = 10;
    o.max_len = 50;
    o.max_ratio = 9.0f;
    o.learning_rate = 1.0f;
    o.max_grad_norm = 5.0f;
    o.init_scale = 0.08f;
    o.dropout = 0.2f;
    o.seed = 1;
    return o;
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void logf_line(train_log_fn log, void *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void logf_line(train_log_fn log, void *ctx, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (!log)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log(ctx, line);
}

void train_log_corpus_stats(train_log_fn log, void *ctx, const char *what, const char *path,
                             const corpus_stats *st, const corpus_filter *filter)
{
    char lines[160] = "";
    size_t used = 0, shown = st->n_invalid_lines;

    char skipped[320] = "";
    size_t at = 0;

    if (st->skipped_empty)
        at += snprintf(skipped + at, sizeof(skipped) - at, "; skipped %zu with an empty side",
                       st->skipped_empty);
    if (st->skipped_long && at < sizeof(skipped))
        at += snprintf(skipped + at, sizeof(skipped) - at, "; skipped %zu longer than %d tokens",
                       st->skipped_long, filter->max_len);
    if (st->skipped_ratio && at < sizeof(skipped))
        at += snprintf(skipped + at, sizeof(skipped) - at,
                       "; skipped %zu with a length ratio over %g", st->skipped_ratio,
                       (double)filter->max_ratio);
    if (st->skipped_no_tab && at < sizeof(skipped))
        snprintf(skipped + at, sizeof(skipped) - at,
                 "; skipped %zu TSV lines without exactly one tab", st->skipped_no_tab);
    logf_line(log, ctx, "%s corpus %s: %zu pairs read, %zu kept%s", what, path, st->lines,
              st->kept, skipped);
    if (st->invalid_utf8 == 0)
        return;
    if (shown > CORPUS_REPORTED_LINES)
        shown = CORPUS_REPORTED_LINES;
    for (size_t i = 0; i < shown && used < sizeof(lines); i++)
        used += snprintf(lines + used, sizeof(lines) - used, "%s%zu", i ? ", " : "",
                         st->invalid_lines[i]);
    logf_line(log, ctx,
              "%s corpus %s: %zu invalid UTF-8 sequence%s replaced by U+FFFD on %zu line%s "
              "(%s%s)",
              what, path, st->invalid_utf8, st->invalid_utf8 == 1 ? "" : "s",
              st->n_invalid_lines, st->n_invalid_lines == 1 ? "" : "s", lines,
              st->n_invalid_lines > shown ? ", ..." : "");
}

int train_segment_all(const bpe *codes, tok_list *lists, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tok_list units = {0};

        if (corpus_segment(codes, &lists[i], &units)) {
            tok_list_clear(&units);
            return -1;
        }
        tok_list_clear(&lists[i]);
        lists[i] = units;
    }
    return 0;
}

tok_list *train_segment_copy(const bpe *codes, const tok_list *words, size_t n, double dropout,
                             uint64_t *state)
{
    tok_list *out = calloc(n ? n : 1, sizeof *out);

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (corpus_segment_dropout(codes, &words[i], dropout, state, &out[i])) {
            corpus_free_tokens(out, n);
            return NULL;
        }
    }
    return out;
}

uint64_t train_dropout_state(uint64_t seed)
{
    return seed ^ 0x6a09e667f3bcc909ULL;
}

vocab *train_build_vocab_pair(const tok_list *a, const tok_list *b, size_t n, size_t max_size,
                              uint64_t min_count)
{
    tok_list *both = malloc(2 * n * sizeof *both + 1);
    vocab *v;

    if (!both)
        return NULL;
    memcpy(both, a, n * sizeof *both);
    memcpy(both + n, b, n * sizeof *both);
    v = train_build_vocab(both, 2 * n, max_size, min_count);
    free(both);
    return v;
}

/* Counts the words of list for learning codes; placeholders stay whole,
 * so they are not counted. */
static int add_words(bpe_learner *learner, const tok_list *list, char *err, size_t err_size)
{
    for (size_t i = 0; i < list->count; i++)
        if (!placeholder_is(list->items[i]) &&
            bpe_learner_add(learner, list->items[i], err, err_size))
            return -1;
    return 0;
}

int train_mask_placeholders(tok_list *lists, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (placeholder_mask(&lists[i], NULL) < 0)
            return -1;
    return 0;
}

bpe *train_learn_codes(const tok_list *a, const tok_list *b, size_t n, size_t merges,
                        char *err, size_t err_size)
{
    bpe_learner *learner = bpe_learner_new();
    bpe *codes = NULL;

    if (!learner) {
        snprintf(err, err_size, "out of memory learning subword codes");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (add_words(learner, &a[i], err, err_size) ||
            (b && add_words(learner, &b[i], err, err_size)))
            goto done;
    codes = bpe_learner_learn(learner, merges, 2, err, err_size);
done:
    bpe_learner_free(learner);
    return codes;
}

vocab *train_build_vocab(const tok_list *lists, size_t n, size_t max_size, uint64_t min_count)
{
    vocab_counter *counter = vocab_counter_new();
    vocab *v = NULL;

    if (!counter)
        return NULL;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < lists[i].count; j++)
            if (vocab_counter_add(counter, lists[i].items[j]))
                goto done;
    v = vocab_build(counter, max_size, min_count);
done:
    vocab_counter_free(counter);
    return v;
}

int train_filter_rare_subwords(bpe **src_codes, bpe **tgt_codes, const tok_list *src,
                               const tok_list *tgt, size_t n, uint64_t threshold,
                               const vocab *src_vocab, const vocab *tgt_vocab, vocab **src_kept,
                               vocab **tgt_kept)
{
    tok_list *s = NULL, *t = NULL;
    int rc = -1;

    *src_kept = *tgt_kept = NULL;
    if (*tgt_codes == *src_codes && !(*tgt_codes = bpe_copy(*src_codes))) {
        *tgt_codes = *src_codes;
        return -1;
    }
    if (!src_vocab && !(s = train_segment_copy(*src_codes, src, n, 0, NULL)))
        goto done;
    if (!tgt_vocab && !(t = train_segment_copy(*tgt_codes, tgt, n, 0, NULL)))
        goto done;
    if ((s && !(*src_kept = train_build_vocab(s, n, SIZE_MAX, threshold))) ||
        (t && !(*tgt_kept = train_build_vocab(t, n, SIZE_MAX, threshold))))
        goto done;
    if (model_codes_use_vocab(*src_codes, src_vocab ? src_vocab : *src_kept) ||
        model_codes_use_vocab(*tgt_codes, tgt_vocab ? tgt_vocab : *tgt_kept))
        goto done;
    rc = 0;
done:
    corpus_free_tokens(s, n);
    corpus_free_tokens(t, n);
    if (rc) {
        vocab_free(*src_kept);
        vocab_free(*tgt_kept);
        *src_kept = *tgt_kept = NULL;
    }
    return rc;
}

/* Writes how many subwords one side keeps whole under the vocabulary
 * threshold to buf: those in counted (the subwords seen often enough), or
 * without it, those of the side's vocabulary file, special tokens left out. */
static void train_kept_note(const vocab *counted, const vocab *file, char *buf, size_t size)
{
    if (counted)
        snprintf(buf, size, "%zu subwords", vocab_size(counted) - VOCAB_N_SPECIAL);
    else
        snprintf(buf, size, "the %zu subwords of its vocabulary file",
                 vocab_size(file) - VOCAB_N_SPECIAL);
}

void train_count_range(uint64_t low, uint64_t high, char *buf, size_t size)
{
    if (low == high)
        snprintf(buf, size, "%llu time%s", (unsigned long long)low, low == 1 ? "" : "s");
    else
        snprintf(buf, size, "%llu to %llu times", (unsigned long long)low,
                 (unsigned long long)high);
}

int train_check_kept(const vocab *kept, const vocab *v, const char *side, uint64_t threshold,
                     char *err, size_t err_size)
{
    size_t n = kept ? vocab_size(kept) : 0, missing = 0;
    const char *first = NULL;

    for (size_t i = VOCAB_N_SPECIAL; i < n; i++) {
        const char *tok = vocab_token(kept, (int32_t)i);

        if (vocab_id(v, tok) == VOCAB_UNK) {
            if (!first)
                first = tok;
            missing++;
        }
    }
    if (!missing)
        return 0;
    snprintf(err, err_size,
             "the %s vocabulary of %zu entries lacks %zu of the %zu subwords seen at least %llu "
             "times (first: '%s'); raise --%s-vocab-size or --bpe-threshold",
             side, vocab_size(v), missing, n - VOCAB_N_SPECIAL, (unsigned long long)threshold,
             first, strcmp(side, "source") == 0 ? "src" : "tgt");
    return -1;
}

/* Mean per-token loss of a corpus without dropout; -1 when out of memory. */
static double evaluate(const model *m, const corpus *c, int batch_size, model_workspace *ws)
{
    corpus_batches batches;
    model_batch bt = {0};
    rng_state rng;
    double total = 0;
    size_t tokens = 0;

    rng_seed(&rng, 0);
    if (corpus_make_batches(c, batch_size, &rng, &batches))
        return -1;
    for (size_t b = 0; b < batches.n_batches; b++) {
        double loss;
        int count = (int)(batches.start[b + 1] - batches.start[b]);

        if (corpus_fill_batch(c, batches.order + batches.start[b], count, &bt) ||
            model_loss(m, &bt, NULL, 0.0f, 0.0f, NULL, ws, &loss)) {
            total = -1;
            tokens = 1;
            break;
        }
        total += loss;
        tokens += bt.n_tokens;
    }
    corpus_batch_free(&bt);
    corpus_batches_free(&batches);
    return tokens ? total / tokens : 0.0;
}

/* Language codes are stored in 8 bytes: 1 to 7 ASCII letters, '-' or '_'. */
static int check_lang(const char *flag, const char *lang, char *err, size_t err_size)
{
    size_t n = strlen(lang);
    int ok = n >= 1 && n <= 7;

    for (size_t i = 0; ok && i < n; i++)
        ok = (lang[i] >= 'a' && lang[i] <= 'z') || (lang[i] >= 'A' && lang[i] <= 'Z') ||
             lang[i] == '-' || lang[i] == '_';
    if (!ok)
        snprintf(err, err_size, "invalid %s '%s': expected a language code of 1 to 7 letters, "
                                "such as en or de", flag, lang);
    return ok ? 0 : -1;
}

/* Fails early, before any training, when the model could not be written:
 * creates and removes PATH.tmp, the name model_save writes first. */
static int check_writable(const char *path, char *err, size_t err_size)
{
    char tmp[4200];
    struct stat st;
    FILE *f;

    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "output %s is %s; give a file name for the model", path,
                 S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, err_size, "cannot write the model to %s: %s", path, strerror(errno));
        return -1;
    }
    fclose(f);
    remove(tmp);
    return 0;
}

/* Perplexity for a log line: fixed point while it is readable. */
static const char *format_ppl(double ppl, char *buf, size_t size)
{
    snprintf(buf, size, ppl < 1e5 ? "%.2f" : "%.3g", ppl);
    return buf;
}

static void format_duration(double s, char *buf, size_t size)
{
    long t = (long)(s + 0.5);

    if (t >= 3600)
        snprintf(buf, size, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else
        snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
}

/* Share of training tokens above which a given vocabulary looks like one
 * made for other units (words against subwords, placeholders or not). */
#define UNKNOWN_WARN_SHARE 0.05

/* Logs the share of the training corpus's source (side 0) or target
 * tokens that are <unk>, with a warning when a vocabulary file leaves
 * many tokens unknown. */
static void log_unknown_share(train_log_fn log, void *ctx, const char *side, const corpus *c,
                              int target, const char *vocab_file)
{
    size_t unknown = 0, total = 0;

    for (size_t i = 0; i < c->n; i++) {
        const int32_t *ids = target ? c->tgt[i] : c->src[i];
        int32_t len = target ? c->tgt_len[i] : c->src_len[i];

        for (int32_t t = 0; t < len; t++)
            unknown += ids[t] == VOCAB_UNK;
        total += (size_t)len;
    }
    if (total == 0)
        return;
    double share = (double)unknown / (double)total;
    logf_line(log, ctx, "%s tokens unknown to the vocabulary: %.2f%%", side, 100.0 * share);
    if (vocab_file && share > UNKNOWN_WARN_SHARE)
        logf_line(log, ctx,
                  "warning: vocabulary %s leaves %.1f%% of the %s tokens unknown; was it made "
                  "with the same codes and --placeholders setting ('seqmt vocab learn')?",
                  vocab_file, 100.0 * share, side);
}

/* Logs a hint when lines of the corpus look escaped by Moses' tokenizer
 * but --moses-escaped was not given. */
static void hint_moses_escapes(train_log_fn log, void *ctx, const char *path,
                               const tok_list *lists, size_t n)
{
    size_t hits = 0;

    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j + 2 < lists[i].count; j++) {
            const char *name = lists[i].items[j + 1];

            if (strcmp(lists[i].items[j], "&") == 0 && strcmp(lists[i].items[j + 2], ";") == 0 &&
                (strcmp(name, "apos") == 0 || strcmp(name, "quot") == 0 ||
                 strcmp(name, "amp") == 0 || strcmp(name, "#124") == 0)) {
                hits++;
                break;
            }
        }
    }
    if (hits)
        logf_line(log, ctx,
                  "hint: %zu line%s of %s hold%s escapes such as &apos; or &quot;; if the corpus "
                  "went through Moses' tokenizer, train with --moses-escaped to decode them",
                  hits, hits == 1 ? "" : "s", path, hits == 1 ? "s" : "");
}

/* Returns the target tokens of c that one epoch predicts, end-of-sentence
 * tokens included. */
static size_t target_tokens(const corpus *c)
{
    size_t total = 0;

    for (size_t i = 0; i < c->n; i++)
        total += (size_t)c->tgt_len[i] + 1;
    return total;
}

/* Returns whether the model file at path has the size and CRC-32 that st
 * records for its checkpoint; -1 when the file cannot be read. */
static int state_names_file(const train_state *st, const char *path, char *err,
                            size_t err_size)
{
    uint32_t crc;
    uint64_t size;

    if (train_state_model_crc(path, &crc, &size, err, err_size))
        return -1;
    return crc == st->checkpoint_crc && size == st->checkpoint_size;
}

/* Checks, before any corpus is read, that a run can resume: the state
 * exists, was written for the options and input files of opt, and records
 * the size and CRC-32 of the checkpoint. An epoch's checkpoint is written
 * as next, then its state, then next is renamed to ckpt. A run stopped
 * before that rename left the checkpoint the state names at next, so it is
 * moved into place here (*finished set). */
static int open_resume_state(const train_options *opt, const train_inputs *in, const char *ckpt,
                             const char *next, const char *state_path, train_state *st,
                             bool *finished, char *err, size_t err_size)
{
    int named = 0;

    *finished = false;
    if (access(ckpt, F_OK) != 0 && access(next, F_OK) != 0) {
        snprintf(err, err_size,
                 "cannot resume: checkpoint %s not found, so there is no epoch to continue "
                 "from; drop --resume to start a new run",
                 ckpt);
        return -1;
    }
    if (train_state_read(state_path, opt, in, st, err, err_size))
        return -1;
    if (access(ckpt, F_OK) == 0 && (named = state_names_file(st, ckpt, err, err_size)) < 0)
        return -1;
    if (!named && access(next, F_OK) == 0) {
        if ((named = state_names_file(st, next, err, err_size)) < 0)
            return -1;
        if (named && rename(next, ckpt) != 0) {
            snprintf(err, err_size, "cannot rename checkpoint %s to %s: %s", next, ckpt,
                     strerror(errno));
            return -1;
        }
        *finished = named;
    }
    if (!named && access(ckpt, F_OK) != 0) {
        snprintf(err, err_size,
                 "cannot resume: checkpoint %s not found, and %s is not the one training "
                 "state %s was written for (its size or CRC-32 differs); drop --resume to "
                 "start a new run",
                 ckpt, next, state_path);
        return -1;
    }
    if (!named) {
        snprintf(err, err_size,
                 "cannot resume: checkpoint %s is not the one training state %s was written "
                 "for (its size or CRC-32 differs); drop --resume to start a new run",
                 ckpt, state_path);
        return -1;
    }
    return 0;
}

/* Replaces the parameters of m, built from the corpus and options, by
 * those of the checkpoint, after checking that it is the same model. */
static int load_checkpoint_params(model *m, const char *ckpt, char *err, size_t err_size)
{
    model *saved = model_load(ckpt, err, err_size);
    int rc;

    if (!saved)
        return -1;
    rc = train_state_check_model(saved, m, ckpt, err, err_size);
    if (rc == 0)
        memcpy(m->params, saved->params, m->n_params * sizeof(float));
    model_free(saved);
    return rc;
}

/* Writes st for the checkpoint at ckpt, recording that file's size and
 * CRC-32. */
static int write_state(const train_options *opt, const train_inputs *in, const char *ckpt,
                       const char *state_path, train_state *st, char *err, size_t err_size)
{
    if (train_state_model_crc(ckpt, &st->checkpoint_crc, &st->checkpoint_size, err, err_size))
        return -1;
    return train_state_write(state_path, opt, in, st, err, err_size);
}

int train_run(const train_options *opt, train_log_fn log, void *log_ctx, char *err,
              size_t err_size)
{
    tok_list *tr_src = NULL, *tr_tgt = NULL, *va_src = NULL, *va_tgt = NULL;
    size_t n_train = 0, n_valid = 0;
    corpus_stats stats;
    corpus train = {0}, valid = {0};
    vocab *sv = NULL, *tv = NULL;
    bpe *src_codes = NULL, *tgt_codes = NULL;
    tok_list *words_src = NULL, *words_tgt = NULL; /* kept for BPE-dropout */
    tok_list *drop_src = NULL, *drop_tgt = NULL;   /* one dropout split, for the vocabularies */
    vocab *src_kept = NULL, *tgt_kept = NULL;      /* subwords kept by --bpe-threshold */
    uint64_t seg_state = train_dropout_state(opt->seed);
    model *m = NULL;
    float *grads = NULL;
    model_views gv;
    model_workspace *ws = NULL;
    corpus_batches batches = {0};
    model_batch bt = {0};
    rng_state rng;
    int rc = -1;
    char ckpt[4096], ckpt_next[4200], state_path[4200];
    train_state st = {0}; /* st.epoch 0: no state written yet */
    train_inputs inputs;  /* input fingerprint, taken once before reading */
    const char *why;

    if (opt->batch_size < 1 || opt->epochs < 1 || opt->max_len < 1 || opt->learning_rate <= 0 ||
        opt->max_grad_norm <= 0 || opt->dropout < 0 || opt->dropout >= 1) {
        snprintf(err, err_size, "invalid training options: batch size, epochs, maximum length, "
                                "learning rate and maximum gradient norm must be positive and "
                                "dropout in [0, 1)");
        return -1;
    }
    if (!(opt->label_smoothing >= 0 && opt->label_smoothing < 1)) {
        snprintf(err, err_size, "invalid label smoothing %g: expected a weight from 0 to below 1",
                 opt->label_smoothing);
        return -1;
    }
    if (opt->max_ratio != 0 && opt->max_ratio < 1) {
        snprintf(err, err_size, "invalid --max-ratio %g: use 0 to keep every pair or a ratio of "
                                "at least 1", (double)opt->max_ratio);
        return -1;
    }
    if (!(opt->bpe_dropout >= 0 && opt->bpe_dropout < 1)) {
        snprintf(err, err_size,
                 "invalid BPE-dropout %g: expected a probability from 0 to below 1",
                 opt->bpe_dropout);
        return -1;
    }
    if (opt->bpe_dropout > 0 && !opt->bpe_codes && opt->bpe_merges == 0) {
        snprintf(err, err_size,
                 "BPE-dropout %g needs subwords: give merges to learn or a codes file",
                 opt->bpe_dropout);
        return -1;
    }
    if (opt->bpe_threshold > 0 && !opt->bpe_codes && opt->bpe_merges == 0) {
        snprintf(err, err_size,
                 "--bpe-threshold %llu splits rare subwords: give merges to learn or a codes "
                 "file",
                 (unsigned long long)opt->bpe_threshold);
        return -1;
    }
    if (opt->bpe_threshold > 0 && opt->bpe_threshold < opt->min_count &&
        (!opt->src_vocab_file || !opt->tgt_vocab_file)) {
        char seen[64];

        train_count_range(opt->bpe_threshold, opt->min_count - 1, seen, sizeof(seen));
        snprintf(err, err_size,
                 "--bpe-threshold %llu is below --min-count %llu, so subwords seen %s would "
                 "stay whole but become <unk>; raise --bpe-threshold to %llu or lower "
                 "--min-count to %llu",
                 (unsigned long long)opt->bpe_threshold, (unsigned long long)opt->min_count, seen,
                 (unsigned long long)opt->min_count, (unsigned long long)opt->bpe_threshold);
        return -1;
    }
    if (check_lang("--src-lang", opt->src_lang, err, err_size) ||
        check_lang("--tgt-lang", opt->tgt_lang, err, err_size))
        return -1;
    if (snprintf(ckpt, sizeof(ckpt), "%s.checkpoint", opt->output) >= (int)sizeof(ckpt)) {
        snprintf(err, err_size, "output path too long: %s", opt->output);
        return -1;
    }
    if (check_writable(opt->output, err, err_size))
        return -1;
    snprintf(state_path, sizeof(state_path), "%s.state", ckpt);
    snprintf(ckpt_next, sizeof(ckpt_next), "%s.next", ckpt);
    if (train_inputs_read(opt, &inputs, err, err_size))
        return -1;
    if (opt->resume) {
        bool finished;

        if (open_resume_state(opt, &inputs, ckpt, ckpt_next, state_path, &st, &finished, err,
                              err_size))
            return -1;
        if (finished)
            logf_line(log, log_ctx,
                      "checkpoint %s of epoch %d was written but not yet renamed when the run "
                      "stopped; renamed it to %s",
                      ckpt_next, st.epoch, ckpt);
        if (st.epoch >= opt->epochs) {
            logf_line(log, log_ctx,
                      "training already finished: checkpoint %s is from epoch %d and --epochs "
                      "is %d; raise --epochs to train longer",
                      ckpt, st.epoch, opt->epochs);
            return 0;
        }
        logf_line(log, log_ctx, "resuming from checkpoint %s after epoch %d of %d", ckpt,
                  st.epoch, opt->epochs);
    } else if ((remove(state_path) != 0 && errno != ENOENT) ||
               (remove(ckpt_next) != 0 && errno != ENOENT)) {
        /* A state or unfinished checkpoint left by an earlier run must not
         * pair with this run's checkpoints. */
        snprintf(err, err_size, "cannot remove the old training state %s or %s: %s", state_path,
                 ckpt_next, strerror(errno));
        return -1;
    }
    rng_seed(&rng, opt->seed);

    /* Corpora and vocabularies. */
    corpus_filter train_filter = {opt->max_len, opt->max_ratio, opt->moses_escaped};
    corpus_filter valid_filter = {1000000, 0.0f, opt->moses_escaped};
    if (corpus_load_text(opt->train_src, opt->train_tgt, opt->format, opt->src_lang,
                         opt->tgt_lang, &train_filter, &tr_src, &tr_tgt, &n_train, &stats, err,
                         err_size))
        goto done;
    train_log_corpus_stats(log, log_ctx, "training", opt->train_src, &stats, &train_filter);
    if (!opt->moses_escaped)
        hint_moses_escapes(log, log_ctx, opt->train_src, tr_src, n_train);
    if (n_train == 0) {
        snprintf(err, err_size,
                 "no usable sentence pairs in training corpus %s%s%s: every pair was empty, "
                 "longer than --max-length %d or over --max-ratio",
                 opt->train_src, opt->train_tgt ? " and " : "",
                 opt->train_tgt ? opt->train_tgt : "", opt->max_len);
        goto done;
    }
    if (corpus_load_text(opt->valid_src, opt->valid_tgt, opt->format, opt->src_lang,
                         opt->tgt_lang, &valid_filter, &va_src, &va_tgt, &n_valid, &stats, err,
                         err_size))
        goto done;
    train_log_corpus_stats(log, log_ctx, "validation", opt->valid_src, &stats, &valid_filter);
    if (n_valid == 0) {
        snprintf(err, err_size,
                 "no usable sentence pairs in validation corpus %s%s%s: it is empty or every "
                 "pair has an empty side",
                 opt->valid_src, opt->valid_tgt ? " and " : "",
                 opt->valid_tgt ? opt->valid_tgt : "");
        goto done;
    }
    if (opt->placeholders && (train_mask_placeholders(tr_src, n_train) || train_mask_placeholders(tr_tgt, n_train) ||
                              train_mask_placeholders(va_src, n_valid) || train_mask_placeholders(va_tgt, n_valid))) {
        snprintf(err, err_size, "out of memory replacing protected tokens by placeholders");
        goto done;
    }

    /* Subword codes: read, learned jointly, or learned per side. */
    if (opt->bpe_codes) {
        if (!(src_codes = bpe_read(opt->bpe_codes, err, err_size)))
            goto done;
        tgt_codes = src_codes;
        if (opt->bpe_codes_tgt && !(tgt_codes = bpe_read(opt->bpe_codes_tgt, err, err_size)))
            goto done;
    } else if (opt->bpe_merges > 0 && !opt->bpe_separate) {
        if (!(src_codes = train_learn_codes(tr_src, tr_tgt, n_train, opt->bpe_merges, err, err_size)))
            goto done;
        tgt_codes = src_codes;
    } else if (opt->bpe_merges > 0) {
        if (!(src_codes = train_learn_codes(tr_src, NULL, n_train, opt->bpe_merges, err, err_size)) ||
            !(tgt_codes = train_learn_codes(tr_tgt, NULL, n_train, opt->bpe_merges, err, err_size)))
            goto done;
    }
    if (src_codes) {
        logf_line(log, log_ctx, "subword codes: %zu merges%s, %s", bpe_n_merges(src_codes),
                  tgt_codes == src_codes ? " shared by both sides" : " for the source",
                  opt->bpe_codes ? opt->bpe_codes : "learned from the training corpus");
        if (tgt_codes != src_codes)
            logf_line(log, log_ctx, "subword codes: %zu merges for the target, %s",
                      bpe_n_merges(tgt_codes),
                      opt->bpe_codes_tgt ? opt->bpe_codes_tgt : "learned from the training corpus");
        int failed;

        if (opt->src_vocab_file && !(sv = vocab_read(opt->src_vocab_file, err, err_size)))
            goto done;
        if (opt->tgt_vocab_file && !(tv = vocab_read(opt->tgt_vocab_file, err, err_size)))
            goto done;
        if (opt->bpe_threshold > 0) {
            if (train_filter_rare_subwords(&src_codes, &tgt_codes, tr_src, tr_tgt, n_train,
                                           opt->bpe_threshold, sv, tv, &src_kept, &tgt_kept)) {
                snprintf(err, err_size, "out of memory filtering rare subwords");
                goto done;
            }
            char src_note[96], tgt_note[96];

            train_kept_note(src_kept, sv, src_note, sizeof src_note);
            train_kept_note(tgt_kept, tv, tgt_note, sizeof tgt_note);
            logf_line(log, log_ctx,
                      "subwords seen fewer than %llu times are split back: the source keeps %s, "
                      "the target keeps %s",
                      (unsigned long long)opt->bpe_threshold, src_note, tgt_note);
        }
        if (opt->bpe_dropout > 0) {
            /* Keep the words: every epoch splits them anew. The dropout
             * splits for the vocabularies are drawn even when vocabulary
             * files are given, so that the epochs draw what they would
             * after `vocab learn --bpe-dropout` with the same seed. */
            words_src = tr_src;
            words_tgt = tr_tgt;
            tr_src = train_segment_copy(src_codes, words_src, n_train, 0, NULL);
            tr_tgt = train_segment_copy(tgt_codes, words_tgt, n_train, 0, NULL);
            drop_src = train_segment_copy(src_codes, words_src, n_train, opt->bpe_dropout,
                                          &seg_state);
            drop_tgt = train_segment_copy(tgt_codes, words_tgt, n_train, opt->bpe_dropout,
                                          &seg_state);
            failed = !tr_src || !tr_tgt || !drop_src || !drop_tgt;
            logf_line(log, log_ctx,
                      "BPE-dropout %g: training pairs are split anew every epoch, validation "
                      "pairs as translation splits them",
                      opt->bpe_dropout);
        } else {
            failed = train_segment_all(src_codes, tr_src, n_train) ||
                     train_segment_all(tgt_codes, tr_tgt, n_train);
        }
        if (failed || train_segment_all(src_codes, va_src, n_valid) ||
            train_segment_all(tgt_codes, va_tgt, n_valid)) {
            snprintf(err, err_size, "out of memory splitting the corpora into subwords");
            goto done;
        }
    }
    if (opt->src_vocab_file && !sv && !(sv = vocab_read(opt->src_vocab_file, err, err_size)))
        goto done;
    if (opt->tgt_vocab_file && !tv && !(tv = vocab_read(opt->tgt_vocab_file, err, err_size)))
        goto done;
    if (!sv)
        sv = drop_src ? train_build_vocab_pair(tr_src, drop_src, n_train, opt->src_vocab_size,
                                               opt->min_count)
                      : train_build_vocab(tr_src, n_train, opt->src_vocab_size, opt->min_count);
    if (!tv)
        tv = drop_tgt ? train_build_vocab_pair(tr_tgt, drop_tgt, n_train, opt->tgt_vocab_size,
                                               opt->min_count)
                      : train_build_vocab(tr_tgt, n_train, opt->tgt_vocab_size, opt->min_count);
    if (opt->src_vocab_file || opt->tgt_vocab_file)
        logf_line(log, log_ctx, "vocabularies: source %s, target %s",
                  opt->src_vocab_file ? opt->src_vocab_file : "built from the training corpus",
                  opt->tgt_vocab_file ? opt->tgt_vocab_file : "built from the training corpus");
    if (!sv || !tv || corpus_from_tokens(tr_src, tr_tgt, n_train, sv, tv, &train) ||
        corpus_from_tokens(va_src, va_tgt, n_valid, sv, tv, &valid)) {
        snprintf(err, err_size, "out of memory building vocabularies");
        goto done;
    }
    if (opt->bpe_threshold > 0 && src_codes) {
        /* From here on the vocabularies are the filters, as they are for
         * translation. They split as the kept subwords did. */
        if (train_check_kept(src_kept, sv, "source", opt->bpe_threshold, err, err_size) ||
            train_check_kept(tgt_kept, tv, "target", opt->bpe_threshold, err, err_size))
            goto done;
        if (model_codes_use_vocab(src_codes, sv) || model_codes_use_vocab(tgt_codes, tv)) {
            snprintf(err, err_size, "out of memory filtering rare subwords");
            goto done;
        }
    }
    log_unknown_share(log, log_ctx, "source", &train, 0, opt->src_vocab_file);
    log_unknown_share(log, log_ctx, "target", &train, 1, opt->tgt_vocab_file);
    corpus_free_tokens(tr_src, n_train);
    corpus_free_tokens(tr_tgt, n_train);
    corpus_free_tokens(va_src, n_valid);
    corpus_free_tokens(va_tgt, n_valid);
    corpus_free_tokens(drop_src, n_train);
    corpus_free_tokens(drop_tgt, n_train);
    tr_src = tr_tgt = va_src = va_tgt = drop_src = drop_tgt = NULL;

    /* Model. */
    model_config cfg = {opt->layers, opt->embed, opt->hidden, (int32_t)vocab_size(sv),
                        (int32_t)vocab_size(tv), "", "", opt->attention};
    snprintf(cfg.src_lang, sizeof(cfg.src_lang), "%s", opt->src_lang);
    snprintf(cfg.tgt_lang, sizeof(cfg.tgt_lang), "%s", opt->tgt_lang);
    if (cfg.src_vocab <= VOCAB_N_SPECIAL || cfg.tgt_vocab <= VOCAB_N_SPECIAL) {
        snprintf(err, err_size,
                 "the %s vocabulary holds no token besides the special ones: lower --min-count "
                 "(now %llu) or raise --%s-vocab-size",
                 cfg.src_vocab <= VOCAB_N_SPECIAL ? "source" : "target",
                 (unsigned long long)opt->min_count,
                 cfg.src_vocab <= VOCAB_N_SPECIAL ? "src" : "tgt");
        goto done;
    }
    if ((why = model_config_check(&cfg)) != NULL) {
        snprintf(err, err_size, "invalid model configuration: %s", why);
        goto done;
    }
    m = model_new(&cfg, sv, tv);
    sv = tv = NULL;
    if (m) {
        model_set_bpe(m, src_codes, tgt_codes);
        src_codes = tgt_codes = NULL;
        m->placeholders = opt->placeholders;
        m->subword_filter = opt->bpe_threshold > 0 && m->src_bpe;
    }
    grads = m ? calloc(m->n_params, sizeof(float)) : NULL;
    ws = model_workspace_new();
    if (!m || !grads || !ws) {
        snprintf(err, err_size, "out of memory allocating the model");
        goto done;
    }
    model_bind(&cfg, grads, &gv);
    model_init_uniform(m, opt->init_scale, &rng);
    if (opt->resume) {
        /* The vocabularies and codes were rebuilt as the interrupted run
         * built them, drawing the same numbers. The stored states take over. */
        if (load_checkpoint_params(m, ckpt, err, err_size))
            goto done;
        rng = st.rng;
        seg_state = st.seg_state;
    }
    logf_line(log, log_ctx,
              "model: %d layers, embedding %d, hidden %d, %s, vocabularies %d (%s) and %d (%s), "
              "%zu parameters",
              cfg.layers, cfg.embed, cfg.hidden, cfg.attention ? "attention" : "no attention",
              cfg.src_vocab, cfg.src_lang, cfg.tgt_vocab, cfg.tgt_lang, m->n_params);
    if (opt->label_smoothing > 0)
        logf_line(log, log_ctx,
                  "label smoothing %g: the loss and ppl of training batches are against the "
                  "smoothed targets, validation perplexity against the real ones",
                  opt->label_smoothing);

    /* Epochs. */
    size_t train_tokens = target_tokens(&train);
    double lr = opt->learning_rate, best_ppl = INFINITY, process_start = now_seconds();
    double start = process_start - st.elapsed_seconds; /* of every process of the run */
    double limit = opt->time_limit_minutes * 60.0;
    size_t done_tokens = (size_t)st.done_tokens, total_tokens = train_tokens * opt->epochs;
    int stop = 0, partial = 0; /* partial: the time limit ended an epoch before its last batch */

    if (opt->resume) {
        lr = st.learning_rate;
        best_ppl = st.best_ppl;
    }
    for (int epoch = st.epoch + 1; epoch <= opt->epochs && !stop; epoch++) {
        double window_loss = 0, window_start = now_seconds();
        size_t window_tokens = 0;

        if (words_src) {
            /* BPE-dropout: split the words anew for this epoch. */
            double p = opt->bpe_dropout;
            tok_list *s = train_segment_copy(m->src_bpe, words_src, n_train, p, &seg_state);
            tok_list *t = s ? train_segment_copy(m->tgt_bpe, words_tgt, n_train, p, &seg_state)
                            : NULL;
            int failed;

            corpus_free(&train);
            failed = !t || corpus_from_tokens(s, t, n_train, m->src_vocab, m->tgt_vocab, &train);
            corpus_free_tokens(s, n_train);
            corpus_free_tokens(t, n_train);
            if (failed)
                goto oom;

            /* The split changes the token count, so the estimate of the
             * time left takes this epoch's count for the epochs to come. */
            train_tokens = target_tokens(&train);
            total_tokens = done_tokens + train_tokens * (size_t)(opt->epochs - epoch + 1);
            if (epoch == 1) {
                log_unknown_share(log, log_ctx, "source (epoch 1's BPE-dropout split)", &train,
                                  0, NULL);
                log_unknown_share(log, log_ctx, "target (epoch 1's BPE-dropout split)", &train,
                                  1, NULL);
            }
        }
        if (corpus_make_batches(&train, opt->batch_size, &rng, &batches))
            goto oom;
        for (size_t b = 0; b < batches.n_batches; b++) {
            int count = (int)(batches.start[b + 1] - batches.start[b]);
            double loss, norm2 = 0;

            if (corpus_fill_batch(&train, batches.order + batches.start[b], count, &bt))
                goto oom;
            memset(grads, 0, sizeof(float) * m->n_params);
            if (model_loss(m, &bt, &gv, opt->dropout, (float)opt->label_smoothing, &rng, ws, &loss))
                goto oom;

            /* Clip the whole gradient to the maximum norm, then step. */
            for (size_t i = 0; i < m->n_params; i++)
                norm2 += (double)grads[i] * grads[i];
            double norm = sqrt(norm2);
            float step = (float)(norm > opt->max_grad_norm ? lr * opt->max_grad_norm / norm : lr);
            if (!isfinite(norm)) {
                snprintf(err, err_size,
                         "training diverged at epoch %d step %zu (gradient norm %g); lower "
                         "--learning-rate or --max-grad-norm",
                         epoch, b + 1, norm);
                goto done;
            }
            for (size_t i = 0; i < m->n_params; i++)
                m->params[i] -= step * grads[i];

            window_loss += loss;
            window_tokens += bt.n_tokens;
            done_tokens += bt.n_tokens;
            double t = now_seconds();
            if (t - window_start >= 10.0 || b + 1 == batches.n_batches) {
                double elapsed = t - start, rate = done_tokens / elapsed;
                double left = total_tokens > done_tokens ? (total_tokens - done_tokens) / rate : 0;
                char eta[32];

                double this_run = t - process_start;

                if (limit > 0 && limit - this_run < left)
                    left = limit - this_run > 0 ? limit - this_run : 0;
                format_duration(left, eta, sizeof(eta));
                char ppl_text[32];

                logf_line(log, log_ctx,
                          "epoch %d step %zu/%zu loss %.3f ppl %s lr %.4g %.0f tok/s left %s",
                          epoch, b + 1, batches.n_batches, window_loss / window_tokens,
                          format_ppl(exp(window_loss / window_tokens), ppl_text,
                                     sizeof(ppl_text)),
                          lr, window_tokens / (t - window_start), eta);
                window_loss = 0;
                window_tokens = 0;
                window_start = t;
            }
            if (limit > 0 && now_seconds() - process_start >= limit) {
                logf_line(log, log_ctx, "time limit of %.1f minutes reached in epoch %d",
                          opt->time_limit_minutes, epoch);
                stop = 1;
                partial = b + 1 < batches.n_batches;
                break;
            }
        }
        corpus_batches_free(&batches);

        /* Validate, checkpoint, keep the best, adjust the learning rate. */
        double vloss = evaluate(m, &valid, opt->batch_size, ws);
        if (vloss < 0)
            goto oom;
        double ppl = exp(vloss);
        char ppl_text[32];
        if (!isfinite(ppl)) {
            snprintf(err, err_size,
                     "training diverged: validation perplexity is %g after epoch %d; lower "
                     "--learning-rate or --max-grad-norm",
                     ppl, epoch);
            goto done;
        }
        /* An unfinished epoch leaves the checkpoint of the last completed
         * one, which a resumed run continues from. A completed one is
         * written as ckpt_next and renamed to ckpt once its state is
         * written, so that no stop leaves a state without its checkpoint. */
        if (!partial && model_save(m, ckpt_next, MODEL_F32, err, err_size))
            goto done;
        int improved = ppl < best_ppl;
        if (improved) {
            best_ppl = ppl;
            if (model_save(m, opt->output, opt->half_precision_model ? MODEL_F16 : MODEL_F32, err,
                           err_size))
                goto done;
        }
        if (partial) {
            char kept[4200];

            if (st.epoch > 0)
                snprintf(kept, sizeof(kept), "checkpoint %s stays at epoch %d", ckpt, st.epoch);
            else
                snprintf(kept, sizeof(kept), "no epoch completed, so no checkpoint to resume");
            logf_line(log, log_ctx, "epoch %d stopped early: validation ppl %s%s%s%s; %s", epoch,
                      format_ppl(ppl, ppl_text, sizeof(ppl_text)), improved ? " (best)" : "",
                      improved ? ", best model " : "", improved ? opt->output : "", kept);

            /* A resumed run keeps this best model unless it beats it. */
            st.best_ppl = best_ppl;
            if (improved && st.epoch > 0 &&
                train_state_write(state_path, opt, &inputs, &st, err, err_size))
                goto done;
            break;
        }
        logf_line(log, log_ctx, "epoch %d validation ppl %s%s, checkpoint %s%s%s", epoch,
                  format_ppl(ppl, ppl_text, sizeof(ppl_text)), improved ? " (best)" : "", ckpt,
                  improved ? ", best model " : "",
                  improved ? opt->output : "");
        if (!improved || (opt->decay_after > 0 && epoch >= opt->decay_after)) {
            lr *= 0.5;
            logf_line(log, log_ctx, "learning rate halved to %.4g (%s)", lr,
                      improved ? "scheduled decay" : "validation perplexity did not improve");
        }

        /* What the next epoch starts from, for a resumed run. */
        st.epoch = epoch;
        st.learning_rate = lr;
        st.best_ppl = best_ppl;
        st.rng = rng;
        st.seg_state = seg_state;
        st.done_tokens = done_tokens;
        st.elapsed_seconds = now_seconds() - start;
        if (write_state(opt, &inputs, ckpt_next, state_path, &st, err, err_size))
            goto done;
        if (rename(ckpt_next, ckpt) != 0) {
            snprintf(err, err_size, "cannot rename checkpoint %s to %s: %s", ckpt_next, ckpt,
                     strerror(errno));
            goto done;
        }
    }
    {
        char took[32];

        format_duration(now_seconds() - start, took, sizeof(took));
        logf_line(log, log_ctx, "training finished in %s, best validation ppl %.2f", took,
                  best_ppl);
    }
    rc = 0;
    goto done;

oom:
    snprintf(err, err_size, "out of memory during training");
done:
    vocab_free(src_kept);
    vocab_free(tgt_kept);
    corpus_free_tokens(drop_src, n_train);
    corpus_free_tokens(drop_tgt, n_train);
    corpus_free_tokens(words_src, n_train);
    corpus_free_tokens(words_tgt, n_train);
    corpus_free_tokens(tr_src, n_train);
    corpus_free_tokens(tr_tgt, n_train);
    corpus_free_tokens(va_src, n_valid);
    corpus_free_tokens(va_tgt, n_valid);
    corpus_free(&train);
    corpus_free(&valid);
    vocab_free(sv);
    vocab_free(tv);
    if (tgt_codes != src_codes)
        bpe_free(tgt_codes);
    bpe_free(src_codes);
    corpus_batches_free(&batches);
    corpus_batch_free(&bt);
    model_workspace_free(ws);
    free(grads);
    model_free(m);
    return rc;
}
