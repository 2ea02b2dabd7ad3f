/* Reading and writing the training state of `seqmt train --resume` (see
 * train_state.h). 64-bit counters, seeds and generator states may not fit
 * a JSON number exactly, so they are stored as decimal strings. Doubles
 * round-trip because cJSON 1.7 prints up to 17 significant digits. */
#include "train_state.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "corpus.h"

#define STATE_FORMAT "seqmt-train-state"
#define STATE_VERSION 1

int train_state_file_crc(const char *path, uint32_t *crc, uint64_t *size, char *err,
                         size_t err_size)
{
    unsigned char buf[1 << 16];
    uLong c = crc32(0L, Z_NULL, 0);
    uint64_t total = 0;
    size_t got;
    FILE *f = fopen(path, "rb");

    if (!f) {
        snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
        c = crc32(c, buf, (uInt)got);
        total += got;
    }
    if (ferror(f)) {
        snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
        fclose(f);
        return -1;
    }
    fclose(f);
    *crc = (uint32_t)c;
    *size = total;
    return 0;
}

int train_state_model_crc(const char *path, uint32_t *crc, uint64_t *size, char *err,
                          size_t err_size)
{
    unsigned char tail[4];
    FILE *f = fopen(path, "rb");
    long end;

    if (!f) {
        snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (end = ftell(f)) < 4 || fseek(f, -4, SEEK_END) != 0 ||
        fread(tail, 1, 4, f) != 4) {
        snprintf(err, err_size, "cannot read the checksum of model %s: the file is truncated",
                 path);
        fclose(f);
        return -1;
    }
    fclose(f);
    *crc = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 |
           (uint32_t)tail[3] << 24;
    *size = (uint64_t)end;
    return 0;
}

/* Adds v to o as a number with 17 significant digits, which read back as
 * the same double, because cJSON's own output may round to 15. Non-finite
 * values, which JSON cannot hold, become null. */
static void add_exact(cJSON *o, const char *name, double v)
{
    char text[40];

    if (!isfinite(v)) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    snprintf(text, sizeof(text), "%.17g", v);
    cJSON_AddRawToObject(o, name, text);
}

static cJSON *u64_json(uint64_t v)
{
    char text[32];

    snprintf(text, sizeof(text), "%" PRIu64, v);
    return cJSON_CreateString(text);
}

static const char *format_name(corpus_format f)
{
    switch (f) {
    case CORPUS_FORMAT_PLAIN: return "plain";
    case CORPUS_FORMAT_TSV: return "tsv";
    case CORPUS_FORMAT_SGML: return "sgml";
    default: return "auto";
    }
}

static void add_path(cJSON *o, const char *key, const char *path)
{
    cJSON_AddItemToObject(o, key, path ? cJSON_CreateString(path) : cJSON_CreateNull());
}

/* Returns the options that must stay equal when a run is resumed,
 * keyed by their command-line flag without the dashes. */
static cJSON *options_json(const train_options *opt)
{
    cJSON *o = cJSON_CreateObject();

    if (!o)
        return NULL;
    add_path(o, "train-src", opt->train_src);
    add_path(o, "train-tgt", opt->train_tgt);
    add_path(o, "valid-src", opt->valid_src);
    add_path(o, "valid-tgt", opt->valid_tgt);
    cJSON_AddStringToObject(o, "format",
                            format_name(corpus_format_of(opt->train_src, opt->format)));
    cJSON_AddStringToObject(o, "src-lang", opt->src_lang);
    cJSON_AddStringToObject(o, "tgt-lang", opt->tgt_lang);
    cJSON_AddNumberToObject(o, "layers", opt->layers);
    cJSON_AddNumberToObject(o, "embed-size", opt->embed);
    cJSON_AddNumberToObject(o, "hidden-size", opt->hidden);
    cJSON_AddBoolToObject(o, "attention", opt->attention);
    cJSON_AddNumberToObject(o, "src-vocab-size", (double)opt->src_vocab_size);
    cJSON_AddNumberToObject(o, "tgt-vocab-size", (double)opt->tgt_vocab_size);
    cJSON_AddItemToObject(o, "min-count", u64_json(opt->min_count));
    cJSON_AddNumberToObject(o, "batch-size", opt->batch_size);
    cJSON_AddNumberToObject(o, "max-length", opt->max_len);
    add_exact(o, "max-ratio", opt->max_ratio);
    add_exact(o, "learning-rate", opt->learning_rate);
    add_exact(o, "max-grad-norm", opt->max_grad_norm);
    add_exact(o, "init-scale", opt->init_scale);
    add_exact(o, "dropout", opt->dropout);
    /* Left out when off, so that states written before the option existed
     * still match a run without it. */
    if (opt->label_smoothing > 0)
        add_exact(o, "label-smoothing", opt->label_smoothing);
    cJSON_AddNumberToObject(o, "bpe-merges", (double)opt->bpe_merges);
    cJSON_AddBoolToObject(o, "bpe-separate", opt->bpe_separate);
    add_path(o, "bpe-codes", opt->bpe_codes);
    add_path(o, "bpe-codes-tgt", opt->bpe_codes_tgt);
    add_exact(o, "bpe-dropout", opt->bpe_dropout);
    cJSON_AddItemToObject(o, "bpe-threshold", u64_json(opt->bpe_threshold));
    add_path(o, "src-vocab", opt->src_vocab_file);
    add_path(o, "tgt-vocab", opt->tgt_vocab_file);
    cJSON_AddBoolToObject(o, "placeholders", opt->placeholders);
    cJSON_AddBoolToObject(o, "moses-escaped", opt->moses_escaped);
    cJSON_AddNumberToObject(o, "decay-after", opt->decay_after);
    cJSON_AddBoolToObject(o, "half-precision-model", opt->half_precision_model);
    cJSON_AddItemToObject(o, "seed", u64_json(opt->seed));
    return o;
}

/* Flags and paths of the input files, in the order of train_inputs. */
static void input_files(const train_options *opt, const char *keys[TRAIN_STATE_INPUTS],
                        const char *paths[TRAIN_STATE_INPUTS])
{
    static const char *const flags[TRAIN_STATE_INPUTS] = {
        "train-src", "train-tgt", "valid-src", "valid-tgt",
        "bpe-codes", "bpe-codes-tgt", "src-vocab", "tgt-vocab"};
    const char *names[TRAIN_STATE_INPUTS] = {
        opt->train_src, opt->train_tgt, opt->valid_src, opt->valid_tgt,
        opt->bpe_codes, opt->bpe_codes_tgt, opt->src_vocab_file, opt->tgt_vocab_file};

    for (int i = 0; i < TRAIN_STATE_INPUTS; i++) {
        keys[i] = flags[i];
        paths[i] = names[i];
    }
}

int train_inputs_read(const train_options *opt, train_inputs *in, char *err,
                      size_t err_size)
{
    const char *keys[TRAIN_STATE_INPUTS], *paths[TRAIN_STATE_INPUTS];

    memset(in, 0, sizeof(*in));
    input_files(opt, keys, paths);
    for (int i = 0; i < TRAIN_STATE_INPUTS; i++)
        if (paths[i] && train_state_file_crc(paths[i], &in->crc[i], &in->size[i], err, err_size))
            return -1;
    return 0;
}

/* Returns the size and CRC-32 of every input file that opt names, keyed
 * by its flag, or NULL when out of memory. */
static cJSON *files_json(const train_options *opt, const train_inputs *in)
{
    const char *keys[TRAIN_STATE_INPUTS], *paths[TRAIN_STATE_INPUTS];
    cJSON *o = cJSON_CreateObject();

    if (!o)
        return NULL;
    input_files(opt, keys, paths);
    for (int i = 0; i < TRAIN_STATE_INPUTS; i++) {
        cJSON *file;

        if (!paths[i])
            continue;
        file = cJSON_AddObjectToObject(o, keys[i]);
        cJSON_AddItemToObject(file, "size", u64_json(in->size[i]));
        cJSON_AddNumberToObject(file, "crc32", in->crc[i]);
    }
    return o;
}

int train_state_write(const char *path, const train_options *opt, const train_inputs *in,
                      const train_state *st, char *err, size_t err_size)
{
    char tmp[4200];
    cJSON *root = cJSON_CreateObject(), *files = files_json(opt, in);
    char *text = NULL;
    FILE *f = NULL;
    int rc = -1;

    if (!files) {
        snprintf(err, err_size, "out of memory writing the training state");
        goto done;
    }
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        snprintf(err, err_size, "training state path too long: %s", path);
        goto done;
    }
    if (!root) {
        snprintf(err, err_size, "out of memory writing the training state");
        goto done;
    }
    cJSON_AddStringToObject(root, "format", STATE_FORMAT);
    cJSON_AddNumberToObject(root, "version", STATE_VERSION);
    cJSON_AddNumberToObject(root, "epoch", st->epoch);
    /* Exact, so that a resumed run continues with the same bits. */
    add_exact(root, "learning_rate", st->learning_rate);
    add_exact(root, "best_validation_ppl", st->best_ppl);
    cJSON *rng = cJSON_AddArrayToObject(root, "rng_state");
    for (int i = 0; i < 4; i++)
        cJSON_AddItemToArray(rng, cJSON_CreateNumber(st->rng.s[i]));
    cJSON_AddItemToObject(root, "bpe_dropout_state", u64_json(st->seg_state));
    cJSON_AddItemToObject(root, "tokens_done", u64_json(st->done_tokens));
    cJSON_AddNumberToObject(root, "elapsed_seconds", st->elapsed_seconds);
    cJSON *ckpt = cJSON_AddObjectToObject(root, "checkpoint");
    cJSON_AddItemToObject(ckpt, "size", u64_json(st->checkpoint_size));
    cJSON_AddNumberToObject(ckpt, "crc32", st->checkpoint_crc);
    cJSON_AddItemToObject(root, "options", options_json(opt));
    cJSON_AddItemToObject(root, "files", files);
    files = NULL;
    text = cJSON_Print(root);
    if (!text) {
        snprintf(err, err_size, "out of memory writing the training state");
        goto done;
    }

    /* Write the temporary file completely, then rename it over path. */
    f = fopen(tmp, "w");
    int failed = !f || fputs(text, f) == EOF || fputc('\n', f) == EOF || fflush(f) != 0;
    if (f && fclose(f) != 0)
        failed = 1;
    if (failed) {
        snprintf(err, err_size, "cannot write the training state %s: %s", tmp, strerror(errno));
        remove(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, err_size, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        remove(tmp);
        goto done;
    }
    rc = 0;
done:
    free(text);
    cJSON_Delete(files);
    cJSON_Delete(root);
    return rc;
}

/* Writes an option's value as a user would type it. */
/* Sets *out to the number in v, parsed or written by add_exact, and
 * returns whether v contains one. */
static bool number_of(const cJSON *v, double *out)
{
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return true;
    }
    if (cJSON_IsRaw(v) && v->valuestring) {
        char *end;

        *out = strtod(v->valuestring, &end);
        return end != v->valuestring && *end == '\0';
    }
    return false;
}

static void value_text(const cJSON *v, char *buf, size_t size)
{
    double x;

    if (!v || cJSON_IsNull(v))
        snprintf(buf, size, "not given");
    else if (cJSON_IsBool(v))
        snprintf(buf, size, cJSON_IsTrue(v) ? "given" : "not given");
    else if (cJSON_IsString(v))
        snprintf(buf, size, "%s", v->valuestring);
    else if (number_of(v, &x))
        snprintf(buf, size, "%.7g", x);
    else
        snprintf(buf, size, "invalid");
}

static int same_value(const cJSON *a, const cJSON *b)
{
    double x, y;

    if (number_of(a, &x) && number_of(b, &y)) {
        /* Equal to 15 significant digits: states written before numbers
         * were stored exactly kept only 15 (0.3 as float was
         * 0.300000011920929), and options typed differently differ
         * earlier than that. */
        char tx[32], ty[32];

        snprintf(tx, sizeof(tx), "%.15g", x);
        snprintf(ty, sizeof(ty), "%.15g", y);
        return strcmp(tx, ty) == 0;
    }
    if (!a || !b || (a->type & 0xff) != (b->type & 0xff))
        return 0;
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring) == 0;
    return 1;
}

/* Compares the stored option values with those of the current run, in
 * both directions so that a flag missing on either side is found. */
static int check_options(const cJSON *stored, const cJSON *now, char *err, size_t err_size)
{
    const cJSON *sides[2] = {stored, now};

    for (int side = 0; side < 2; side++) {
        const cJSON *item;

        cJSON_ArrayForEach(item, sides[side])
        {
            const cJSON *was = cJSON_GetObjectItemCaseSensitive(stored, item->string);
            const cJSON *is = cJSON_GetObjectItemCaseSensitive(now, item->string);
            char was_text[512], is_text[512];

            if (same_value(was, is))
                continue;
            value_text(was, was_text, sizeof(was_text));
            value_text(is, is_text, sizeof(is_text));
            snprintf(err, err_size,
                     "cannot resume: --%s is %s now but was %s in the interrupted run; give "
                     "the run's options again, or start a new run without --resume",
                     item->string, is_text, was_text);
            return -1;
        }
    }
    return 0;
}

/* Checks the size and CRC-32 of the input files against the stored ones.
 * The current paths are in options, keyed like the files. */
static int check_files(const cJSON *stored, const cJSON *now, const cJSON *options, char *err,
                       size_t err_size)
{
    const cJSON *item;

    cJSON_ArrayForEach(item, now)
    {
        const cJSON *was = cJSON_GetObjectItemCaseSensitive(stored, item->string);
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(options, item->string);

        if (was &&
            same_value(cJSON_GetObjectItemCaseSensitive(was, "size"),
                       cJSON_GetObjectItemCaseSensitive(item, "size")) &&
            same_value(cJSON_GetObjectItemCaseSensitive(was, "crc32"),
                       cJSON_GetObjectItemCaseSensitive(item, "crc32")))
            continue;
        snprintf(err, err_size,
                 "cannot resume: %s (--%s) has changed since the checkpoint was written (its "
                 "size or CRC-32 differs); restore the file, or start a new run without "
                 "--resume",
                 cJSON_IsString(path) ? path->valuestring : "?", item->string);
        return -1;
    }
    return 0;
}

static int get_number(const cJSON *o, const char *key, double *v)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!cJSON_IsNumber(item))
        return -1;
    *v = item->valuedouble;
    return 0;
}

static int get_u64(const cJSON *o, const char *key, uint64_t *v)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(o, key);
    char *end;

    if (!cJSON_IsString(item) || !item->valuestring[0])
        return -1;
    errno = 0;
    *v = strtoull(item->valuestring, &end, 10);
    return *end || errno ? -1 : 0;
}

/* Fills st from the parsed state; -1 when a field is missing or invalid. */
static int parse_state(const cJSON *root, train_state *st)
{
    const cJSON *rng = cJSON_GetObjectItemCaseSensitive(root, "rng_state");
    const cJSON *ckpt = cJSON_GetObjectItemCaseSensitive(root, "checkpoint");
    double epoch, crc;

    if (get_number(root, "epoch", &epoch) || epoch < 1 || epoch > 1e9 ||
        get_number(root, "learning_rate", &st->learning_rate) ||
        get_number(root, "best_validation_ppl", &st->best_ppl) ||
        get_u64(root, "bpe_dropout_state", &st->seg_state) ||
        get_u64(root, "tokens_done", &st->done_tokens) ||
        get_number(root, "elapsed_seconds", &st->elapsed_seconds) ||
        get_u64(ckpt, "size", &st->checkpoint_size) || get_number(ckpt, "crc32", &crc) ||
        crc < 0 || crc > UINT32_MAX || cJSON_GetArraySize(rng) != 4)
        return -1;
    st->epoch = (int)epoch;
    st->checkpoint_crc = (uint32_t)crc;
    for (int i = 0; i < 4; i++) {
        const cJSON *word = cJSON_GetArrayItem(rng, i);

        if (!cJSON_IsNumber(word) || word->valuedouble < 0 || word->valuedouble > UINT32_MAX)
            return -1;
        st->rng.s[i] = (uint32_t)word->valuedouble;
    }
    return 0;
}

/* Returns the whole file at path as a string, or NULL with errno set. */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long size;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (text = malloc((size_t)size + 1)) != NULL) {
        if (fread(text, 1, (size_t)size, f) == (size_t)size) {
            text[size] = '\0';
        } else {
            free(text);
            text = NULL;
            errno = EIO;
        }
    }
    fclose(f);
    return text;
}

int train_state_read(const char *path, const train_options *opt, const train_inputs *in,
                     train_state *st, char *err, size_t err_size)
{
    char *text = read_text(path);
    cJSON *root = NULL, *options = NULL, *files = NULL;
    const cJSON *format, *version;
    int rc = -1;

    if (!text) {
        if (errno == ENOENT)
            snprintf(err, err_size,
                     "cannot resume: training state %s not found, so there is no epoch to "
                     "continue from; drop --resume to start a new run",
                     path);
        else
            snprintf(err, err_size, "cannot read training state %s: %s", path,
                     strerror(errno));
        return -1;
    }
    root = cJSON_Parse(text);
    format = cJSON_GetObjectItemCaseSensitive(root, "format");
    version = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (!cJSON_IsString(format) || strcmp(format->valuestring, STATE_FORMAT) != 0 ||
        !cJSON_IsNumber(version)) {
        snprintf(err, err_size,
                 "training state %s is not valid JSON written by seqmt train; drop --resume "
                 "to start a new run",
                 path);
        goto done;
    }
    if (version->valuedouble != STATE_VERSION) {
        snprintf(err, err_size,
                 "training state %s has version %g, but this seqmt reads version %d; resume "
                 "with the seqmt that wrote it, or drop --resume to start a new run",
                 path, version->valuedouble, STATE_VERSION);
        goto done;
    }
    if (parse_state(root, st)) {
        snprintf(err, err_size,
                 "training state %s is invalid: a field is missing or out of range; drop "
                 "--resume to start a new run",
                 path);
        goto done;
    }

    /* The options first, so that a changed path is named as an option. */
    if (!(options = options_json(opt))) {
        snprintf(err, err_size, "out of memory reading the training state");
        goto done;
    }
    if (check_options(cJSON_GetObjectItemCaseSensitive(root, "options"), options, err,
                      err_size))
        goto done;
    if (!(files = files_json(opt, in))) {
        snprintf(err, err_size, "out of memory reading the training state");
        goto done;
    }
    if (check_files(cJSON_GetObjectItemCaseSensitive(root, "files"), files, options, err,
                    err_size))
        goto done;
    rc = 0;
done:
    cJSON_Delete(files);
    cJSON_Delete(options);
    cJSON_Delete(root);
    free(text);
    return rc;
}

static int check_vocab(const vocab *was, const vocab *is, const char *side, const char *path,
                       char *err, size_t err_size)
{
    size_t n = vocab_size(was);

    if (n != vocab_size(is)) {
        snprintf(err, err_size,
                 "cannot resume: checkpoint %s has a %s vocabulary of %zu entries, but the "
                 "corpus and options now give %zu; start a new run without --resume",
                 path, side, n, vocab_size(is));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *a = vocab_token(was, (int32_t)i), *b = vocab_token(is, (int32_t)i);

        if (strcmp(a, b) != 0) {
            snprintf(err, err_size,
                     "cannot resume: %s vocabulary entry %zu is '%s' in checkpoint %s but "
                     "'%s' now; start a new run without --resume",
                     side, i, a, path, b);
            return -1;
        }
    }
    return 0;
}

static int check_codes(const bpe *was, const bpe *is, const char *side, const char *path,
                       char *err, size_t err_size)
{
    if (!was && !is)
        return 0;
    if (!was || !is || !bpe_same_merges(was, is)) {
        snprintf(err, err_size,
                 "cannot resume: the %s subword codes of checkpoint %s differ from those the "
                 "corpus and options give now; start a new run without --resume",
                 side, path);
        return -1;
    }
    return 0;
}

int train_state_check_model(const model *ckpt, const model *built, const char *path, char *err,
                            size_t err_size)
{
    const model_config *a = &ckpt->cfg, *b = &built->cfg;

    if (a->layers != b->layers || a->embed != b->embed || a->hidden != b->hidden ||
        a->attention != b->attention || strcmp(a->src_lang, b->src_lang) != 0 ||
        strcmp(a->tgt_lang, b->tgt_lang) != 0) {
        snprintf(err, err_size,
                 "cannot resume: checkpoint %s has %d layers, embedding %d, hidden %d, %s, "
                 "languages %s-%s, but the options give %d, %d, %d, %s, %s-%s; start a new run "
                 "without --resume",
                 path, a->layers, a->embed, a->hidden, a->attention ? "attention" : "no attention",
                 a->src_lang, a->tgt_lang, b->layers, b->embed, b->hidden,
                 b->attention ? "attention" : "no attention", b->src_lang, b->tgt_lang);
        return -1;
    }
    if (check_vocab(ckpt->src_vocab, built->src_vocab, "source", path, err, err_size) ||
        check_vocab(ckpt->tgt_vocab, built->tgt_vocab, "target", path, err, err_size) ||
        check_codes(ckpt->src_bpe, built->src_bpe, "source", path, err, err_size) ||
        check_codes(ckpt->tgt_bpe, built->tgt_bpe, "target", path, err, err_size))
        return -1;
    if (!ckpt->placeholders != !built->placeholders ||
        !ckpt->subword_filter != !built->subword_filter || ckpt->n_params != built->n_params) {
        snprintf(err, err_size,
                 "cannot resume: checkpoint %s was trained with placeholders %s and the subword "
                 "filter %s, but the options now give %s and %s; start a new run without "
                 "--resume",
                 path, ckpt->placeholders ? "on" : "off", ckpt->subword_filter ? "on" : "off",
                 built->placeholders ? "on" : "off", built->subword_filter ? "on" : "off");
        return -1;
    }
    return 0;
}
