/* Beam search over a batch of sentences.
 *
 * Each sentence keeps up to K live hypotheses; a hypothesis that emits
 * </s> moves to the sentence's finished list, scored by its summed log
 * probability divided by length^alpha. A sentence stops when it has K
 * finished hypotheses or reaches its maximum length, at which point its
 * live hypotheses are finished as they stand. The output is the finished
 * hypothesis with the highest normalized score, except that an empty one
 * comes after every non-empty one. <unk>, <pad> and <s> are never emitted.
 */
#include "beam.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "carry.h"
#include "corpus.h"
#include "placeholder.h"
#include "sentence.h"
#include "text.h"

beam_options beam_default_options(void)
{
    beam_options o = {5, 1.0f, 2.0f, 32};
    return o;
}

typedef struct {
    int32_t *tokens; /* [len] */
    int len;
    float score;     /* summed log probability */
} hyp;

typedef struct {
    int max_len;
    int n_live;
    hyp live[64];
    int n_done;
    hyp done[64];
    float done_norm[64];
    int finished;
    int allow_unk; /* set when the source contains <unk>: the output may too, as a copy */
} sentence_state;

typedef struct {
    float score;
    int row, token;
} candidate;

static int cmp_candidate(const void *a, const void *b)
{
    const candidate *x = a, *y = b;

    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->row != y->row)
        return x->row < y->row ? -1 : 1;
    return x->token < y->token ? -1 : x->token > y->token;
}

/* Keeps the k best (score, token) pairs of one row of log probabilities in
 * best[0..k-1], sorted best first. Special tokens are skipped except </s>,
 * and <unk> when allow_unk is set. */
static int top_k_row(const float *logp, int V, int k, int row, float base, int allow_unk,
                     candidate *best)
{
    int n = 0;

    for (int v = VOCAB_UNK; v < V; v++) {
        float s = base + logp[v];
        int pos;

        if (v != VOCAB_EOS && v < VOCAB_N_SPECIAL && !(v == VOCAB_UNK && allow_unk))
            continue;
        if (n == k && s <= best[k - 1].score)
            continue;
        pos = n < k ? n++ : k - 1;
        while (pos > 0 && best[pos - 1].score < s) {
            best[pos] = best[pos - 1];
            pos--;
        }
        best[pos] = (candidate){s, row, v};
    }
    return n;
}

static void log_softmax_rows(float *z, int rows, int V)
{
    for (int r = 0; r < rows; r++) {
        float *x = z + (size_t)r * V, mx = -FLT_MAX, sum = 0.0f;

        for (int v = 0; v < V; v++)
            if (x[v] > mx)
                mx = x[v];
        for (int v = 0; v < V; v++)
            sum += expf(x[v] - mx);
        float lse = mx + logf(sum);
        for (int v = 0; v < V; v++)
            x[v] -= lse;
    }
}

static int finish(sentence_state *st, const hyp *h, float alpha, int add_eos)
{
    hyp *d;

    if (st->n_done >= 64)
        return 0;
    d = &st->done[st->n_done];
    d->len = h->len;
    d->score = h->score;
    d->tokens = malloc(sizeof(int32_t) * (h->len + 1));
    if (!d->tokens)
        return -1;
    memcpy(d->tokens, h->tokens, sizeof(int32_t) * h->len);
    /* Length counts </s> when the hypothesis really ended with it. */
    st->done_norm[st->n_done] = h->score / powf((float)(h->len + add_eos), alpha);
    st->n_done++;
    return 0;
}

/* Returns nonzero when finished hypothesis a of st ranks before b: a
 * non-empty hypothesis before an empty one, which is never a useful
 * translation of a non-empty source, and otherwise the higher normalized
 * score first. */
static int ranks_before(const sentence_state *st, int a, int b)
{
    if ((st->done[a].len > 0) != (st->done[b].len > 0))
        return st->done[a].len > 0;
    return st->done_norm[a] > st->done_norm[b];
}

static void free_state(sentence_state *st)
{
    for (int i = 0; i < st->n_live; i++)
        free(st->live[i].tokens);
    for (int i = 0; i < st->n_done; i++)
        free(st->done[i].tokens);
    st->n_live = st->n_done = 0;
}

int beam_search(const model *m, const beam_options *opt, const int32_t *const *src,
                const int32_t *src_len, size_t n, int32_t **out, int32_t *out_len)
{
    beam_nbest_options nopt = {1, NULL, NULL, NULL};
    beam_nbest *best = calloc(n + 1, sizeof(*best));
    int rc = -1;

    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
        out_len[i] = 0;
    }
    if (!best)
        return -1;
    if (beam_search_nbest(m, opt, &nopt, src, src_len, n, best) == 0) {
        rc = 0;
        for (size_t i = 0; i < n; i++) {
            if (best[i].count > 0) {
                out[i] = best[i].hyps[0].ids;
                out_len[i] = best[i].hyps[0].len;
                best[i].hyps[0].ids = NULL;
            } else if (!(out[i] = malloc(sizeof(int32_t)))) {
                rc = -1;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        beam_nbest_free(&best[i]);
    free(best);
    return rc;
}

/* Source tokens of one line in the form the model was trained on:
 * tokenized, protected tokens replaced by placeholders (the originals go to
 * src->saved) when the model uses them, then split into subwords when the
 * model has codes, and mapped to ids. The words holding a unit the source
 * vocabulary lacks go to src->unknown in order, and protected words that
 * are one known unit to src->known. The unit position of each saved,
 * unknown and known token is recorded for render_output. */
static int prepare_source(const model *m, const char *line, tok_list *words, tok_list *units,
                          beam_source *src)
{
    if (corpus_tokenize(line, m->cfg.src_lang, words, NULL))
        return -1;
    if (m->placeholders && placeholder_mask(words, &src->saved) < 0)
        return -1;
    tok_list_clear(units);
    src->saved_at = malloc(sizeof(int32_t) * (words->count + 1));
    src->unknown_at = malloc(sizeof(int32_t) * (words->count + 1));
    src->known_at = malloc(sizeof(int32_t) * (words->count + 1));
    if (!src->saved_at || !src->unknown_at || !src->known_at)
        return -1;
    for (size_t i = 0, n_saved = 0; i < words->count; i++) {
        size_t first = units->count;
        tok_list one = {&words->items[i], 1, 1};

        if (m->src_bpe ? corpus_segment(m->src_bpe, &one, units)
                       : tok_list_push(units, words->items[i]))
            return -1;
        /* Segmentation keeps a placeholder whole; its original is carried
         * as a saved token, also when the vocabulary lacks the placeholder. */
        if (m->placeholders && placeholder_is(words->items[i]) && n_saved < src->saved.count) {
            src->saved_at[n_saved++] = (int32_t)first;
            continue;
        }
        int unknown = 0;
        for (size_t j = first; j < units->count && !unknown; j++) {
            if (vocab_id(m->src_vocab, units->items[j]) == VOCAB_UNK) {
                if (tok_list_push(&src->unknown, words->items[i]))
                    return -1;
                src->unknown_at[src->unknown.count - 1] = (int32_t)j;
                unknown = 1;
            }
        }
        if (!unknown && units->count == first + 1 && tok_is_protected(words->items[i])) {
            if (tok_list_push(&src->known, words->items[i]))
                return -1;
            src->known_at[src->known.count - 1] = (int32_t)first;
        }
    }
    src->ids = corpus_ids(m->src_vocab, units);
    if (!src->ids)
        return -1;
    src->len = (int32_t)units->count;
    return 0;
}

/* Alignments of count outputs ids[b] (lens[b] units each) with the source
 * units of src, as carry_plan reads them: for output b, lens[b] rows of
 * src->len weights in source reading order, from *stride floats times b
 * on. One forward pass over the batch of all outputs computes them.
 * Without input feeding, a decoder step attends to the source of the unit
 * the step before emitted. In "with 3 dogs", the step that emits "Hunden"
 * attends to "with", and the next one to "dogs". So row j is the attention
 * of step j + 1. Returns a malloc'd array, or NULL for a model without
 * attention or when out of memory (*oom then set). */
static float *source_alignments(const model *m, const beam_source *src,
                                const int32_t *const *ids, const int32_t *lens, int count,
                                size_t *stride, int *oom)
{
    int32_t **srcs, *src_lens;
    size_t *index, S = (size_t)src->len, T = 1;
    model_batch batch = {0};
    model_workspace *ws;
    float *a, *align;
    int rc = -1;

    *oom = 0;
    if (!m->cfg.attention)
        return NULL;
    srcs = malloc(sizeof(int32_t *) * ((size_t)count + 1));
    src_lens = malloc(sizeof(int32_t) * ((size_t)count + 1));
    index = malloc(sizeof(size_t) * ((size_t)count + 1));
    corpus all = {(size_t)count, srcs, (int32_t **)ids, src_lens, (int32_t *)lens};
    for (int b = 0; b < count; b++)
        if ((size_t)lens[b] + 1 > T)
            T = (size_t)lens[b] + 1;
    *stride = (T - 1) * S;
    ws = model_workspace_new();
    a = malloc(sizeof(float) * (size_t)count * T * S);
    align = malloc(sizeof(float) * (size_t)count * *stride + 1);
    if (srcs && src_lens && index && ws && a && align) {
        for (int b = 0; b < count; b++) {
            srcs[b] = src->ids;
            src_lens[b] = src->len;
            index[b] = (size_t)b;
        }
        if (corpus_fill_batch(&all, index, count, &batch) == 0)
            rc = model_attention(m, &batch, ws, a);
    }
    if (rc == 0) /* the batch contains the source reversed, unpadded */
        for (int b = 0; b < count; b++)
            for (size_t j = 0; j < (size_t)lens[b]; j++)
                for (size_t p = 0; p < S; p++)
                    align[b * *stride + j * S + p] = a[(b * T + j + 1) * S + (S - 1 - p)];
    corpus_batch_free(&batch);
    model_workspace_free(ws);
    free(a);
    free(srcs);
    free(src_lens);
    free(index);
    if (rc != 0) {
        free(align);
        *oom = 1;
        return NULL;
    }
    return align;
}

/* Kind of a protected word in the vocabulary, in carry_plan's terms:
 * KIND_KNOWN plus the index of the first known word of the same text. */
#define KIND_KNOWN 16

/* Appends the words of units[0..n) to words: subwords joined when the
 * model has codes, and each unit with own[i] set a word of its own, which
 * ends an open subword before it. */
static int join_units(const model *m, const char **units, const unsigned char *own, int n,
                      tok_list *words)
{
    int start = 0;

    for (int i = 0; i <= n; i++) {
        if (i < n && !own[i])
            continue;
        for (int j = start; j < i && !m->tgt_bpe; j++)
            if (tok_list_push(words, units[j]))
                return -1;
        if (m->tgt_bpe && bpe_join(units + start, (size_t)(i - start), words))
            return -1;
        if (i < n && tok_list_push(words, units[i]))
            return -1;
        start = i + 1;
    }
    return 0;
}

/* Returns whether carry_plan needs the alignment for these carriers and
 * items: when some kind has carriers and items in different numbers,
 * except when its items are only to be left out. Equal numbers pair up in
 * order without it. */
static int needs_alignment(const int *out_kind, int n, const carry_item *items, int n_items)
{
    for (int k = 0; k < n_items; k++) {
        int carriers = 0, of_kind = 0, to_insert = 0;

        for (int j = 0; j < n; j++)
            carriers += out_kind[j] == items[k].kind;
        for (int i = 0; i < n_items; i++) {
            of_kind += items[i].kind == items[k].kind;
            to_insert += items[i].kind == items[k].kind && items[i].insert;
        }
        if (carriers != of_kind && (carriers > 0 || to_insert > 0))
            return 1;
    }
    return 0;
}

/* Returns the output unit of item k: its text, or for the original of a
 * placeholder (no text) the placeholder, which placeholder_unmask fills. */
static const char *item_unit(const carry_item *items, const char *const *item_text, int k)
{
    return item_text[k] ? item_text[k] : placeholder_of((tok_kind)items[k].kind);
}

/* Output text of target ids for src: each placeholder and <unk> the model
 * emitted filled with a source token of its kind, every protected source
 * token the output lacks placed by carry_plan, subwords joined when the
 * model has codes, then detokenized. given_align, when aligned is set, is
 * the output's alignment from source_alignments (NULL without attention);
 * otherwise render_output computes it when needed. */
static char *render_output(const model *m, const int32_t *ids, int n, const beam_source *src,
                           const float *given_align, int aligned)
{
    int n_saved = (int)src->saved.count, n_unknown = (int)src->unknown.count;
    int n_items = n_saved + n_unknown + (int)src->known.count;
    const char **units = malloc(sizeof(char *) * ((size_t)n + n_items + 1));
    unsigned char *own = malloc((size_t)n + n_items + 1);
    const char **item_text = malloc(sizeof(char *) * ((size_t)n_items + 1));
    int *out_kind = malloc(sizeof(int) * ((size_t)n + 1));
    unsigned char *joins = malloc((size_t)n + 1);
    carry_item *items = malloc(sizeof(carry_item) * ((size_t)n_items + 1));
    int *take = malloc(sizeof(int) * ((size_t)n + 1));
    int *at = malloc(sizeof(int) * ((size_t)n_items + 1));
    int *order = malloc(sizeof(int) * ((size_t)n_items + 1));
    tok_list words = {0}, fill = {0};
    float *align = NULL;
    char *text = NULL;
    int n_units = 0, n_order = 0, oom = 0;

    if (!units || !own || !item_text || !out_kind || !joins || !items || !take || !at || !order)
        goto done;

    /* Items: the originals of placeholders (rendered as their placeholder,
     * filled from fill), unknown words, then protected known words. */
    for (int k = 0; k < n_saved; k++) {
        items[k] = (carry_item){src->saved_at[k], (int)tok_classify(src->saved.items[k]), 1};
        item_text[k] = NULL;
    }
    /* A word-level model learned from its training targets where <unk>
     * goes, and often translates around a rare word, so its unknown words
     * are inserted only when protected (a number, an emoji). A subword
     * model never saw <unk> in a target, so all of its unknown words (they
     * contain characters it never saw) are. */
    for (int i = 0; i < n_unknown; i++) {
        const char *word = src->unknown.items[i];

        items[n_saved + i] = (carry_item){src->unknown_at[i], TOK_PLAIN,
                                          m->tgt_bpe != NULL || tok_is_protected(word)};
        item_text[n_saved + i] = word;
    }
    /* A known protected word is its own carrier: the output unit of the
     * same text. */
    for (int i = 0, k = n_saved + n_unknown; k < n_items; i++, k++) {
        int first = 0;

        while (strcmp(src->known.items[first], src->known.items[i]) != 0)
            first++;
        items[k] = (carry_item){src->known_at[i], KIND_KNOWN + first, 1};
        item_text[k] = src->known.items[i];
    }
    for (int j = 0; j < n; j++) {
        const char *token = vocab_token(m->tgt_vocab, ids[j]);
        size_t len = strlen(token);
        tok_kind kind = placeholder_kind(token);

        out_kind[j] = -1;
        if (ids[j] == VOCAB_UNK)
            out_kind[j] = TOK_PLAIN;
        else if (kind != TOK_PLAIN)
            out_kind[j] = (int)kind;
        for (int k = n_saved + n_unknown; k < n_items && out_kind[j] < 0; k++)
            if (strcmp(token, item_text[k]) == 0)
                out_kind[j] = items[k].kind;
        joins[j] = m->tgt_bpe && len >= 2 && strcmp(token + len - 2, BPE_MARKER) == 0;
    }
    if (n_items > 0) {
        const float *use = given_align;
        size_t stride;

        if (!aligned && needs_alignment(out_kind, n, items, n_items)) {
            align = source_alignments(m, src, &ids, &n, 1, &stride, &oom);
            if (oom)
                goto done;
            use = align;
        }
        if (carry_plan(n, src->len, out_kind, joins, use, items, n_items, take, at))
            goto done;
    } else {
        for (int j = 0; j < n; j++)
            take[j] = -1;
    }
    /* Inserted items in source order, which carry_plan keeps in the order
     * of their insertion points. */
    carry_sort_by_position(items, n_items, order);
    for (int i = 0; i < n_items; i++)
        if (at[order[i]] >= 0)
            order[n_order++] = order[i];

    /* Units in output order. fill lists the saved tokens in the order of
     * their placeholders, the order in which placeholder_unmask fills. */
    for (int j = 0, o = 0; j <= n; j++) {
        int k;

        while (o < n_order && at[order[o]] == j) {
            k = order[o++];
            own[n_units] = 1;
            units[n_units++] = item_unit(items, item_text, k);
            if (!item_text[k] && tok_list_push(&fill, src->saved.items[k]))
                goto done;
        }
        if (j == n)
            break;
        k = take[j];
        if (k >= 0) {
            own[n_units] = 1;
            units[n_units++] = item_unit(items, item_text, k);
            if (!item_text[k] && tok_list_push(&fill, src->saved.items[k]))
                goto done;
        } else if (k == -1 && (out_kind[j] < 0 || out_kind[j] >= KIND_KNOWN)) {
            /* An ordinary unit, or a known word repeated beyond the source's count. */
            own[n_units] = 0;
            units[n_units++] = vocab_token(m->tgt_vocab, ids[j]);
        }
    }
    if (join_units(m, units, own, n_units, &words))
        goto done;
    if (m->placeholders && placeholder_unmask(&words, &fill))
        goto done;
    text = tok_detokenize((const char *const *)words.items, words.count, m->cfg.tgt_lang);

done:
    tok_list_clear(&words);
    tok_list_clear(&fill);
    free(align);
    free(units);
    free(own);
    free(item_text);
    free(out_kind);
    free(joins);
    free(items);
    free(take);
    free(at);
    free(order);
    return text;
}

/* Translates n lines, each short enough to be one source. */
static int translate_pieces(const model *m, const beam_options *opt, const char *const *lines,
                            size_t n, char **out)
{
    beam_source *src = calloc(n + 1, sizeof(beam_source));
    int32_t **ids = calloc(n + 1, sizeof(int32_t *)), *len = calloc(n + 1, sizeof(int32_t));
    int32_t **hyp = calloc(n + 1, sizeof(int32_t *)), *hyp_len = calloc(n + 1, sizeof(int32_t));
    int rc = -1;

    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    if (!src || !ids || !len || !hyp || !hyp_len)
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (beam_source_prepare(m, lines[i], &src[i]))
            goto done;
        ids[i] = src[i].ids;
        len[i] = src[i].len;
    }
    if (beam_search(m, opt, (const int32_t *const *)ids, len, n, hyp, hyp_len))
        goto done;
    for (size_t i = 0; i < n; i++) {
        out[i] = render_output(m, hyp[i], hyp_len[i], &src[i], NULL, 0);
        if (!out[i])
            goto done;
    }
    rc = 0;

done:
    if (rc != 0)
        for (size_t i = 0; i < n; i++) {
            free(out[i]);
            out[i] = NULL;
        }
    for (size_t i = 0; src && i < n; i++)
        beam_source_free(&src[i]);
    for (size_t i = 0; hyp && i < n; i++)
        free(hyp[i]);
    free(src);
    free(ids);
    free(len);
    free(hyp);
    free(hyp_len);
    return rc;
}

/* Number of words of text[0..len): runs of bytes other than ASCII spaces and tabs. */
static size_t count_words(const char *text, size_t len)
{
    size_t words = 0;

    for (size_t i = 0; i < len; i++)
        if (text[i] != ' ' && text[i] != '\t' && (i == 0 || text[i - 1] == ' ' ||
                                                   text[i - 1] == '\t'))
            words++;
    return words;
}

/* Appends the pieces of text[0..len) to *pieces (each malloc'd), cut at
 * spaces every BEAM_MAX_PIECE_WORDS words. */
static int cut_at_spaces(const char *text, size_t len, tok_list *pieces)
{
    size_t start = 0, words = 0;

    for (size_t i = 0; i <= len; i++) {
        int space = i == len || text[i] == ' ' || text[i] == '\t';

        if (i < len && !space && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t')) {
            if (words == BEAM_MAX_PIECE_WORDS) {
                char *piece = strndup(text + start, i - start);

                if (!piece || tok_list_push(pieces, piece)) {
                    free(piece);
                    return -1;
                }
                free(piece);
                start = i;
                words = 0;
            }
            words++;
        }
    }
    if (start < len) {
        char *piece = strndup(text + start, len - start);
        int rc = piece ? tok_list_push(pieces, piece) : -1;

        free(piece);
        return rc;
    }
    return 0;
}

/* Appends the pieces of a long line to *pieces: its sentences, and the
 * parts of sentences still over BEAM_MAX_PIECE_WORDS words. */
static int split_long_line(const char *line, tok_list *pieces)
{
    sentence_span *spans = NULL;
    size_t n = sentence_split(line, strlen(line), &spans);
    int rc = 0;

    if (n == (size_t)-1)
        return -1;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = cut_at_spaces(line + spans[i].start, spans[i].len, pieces);
    free(spans);
    return rc;
}

int beam_translate_lines(const model *m, const beam_options *opt, const char *const *lines,
                         size_t n, char **out)
{
    tok_list pieces = {0};
    size_t *first = malloc((n + 1) * sizeof(size_t));
    char **piece_out = NULL;
    int rc = -1;

    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    if (!first)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(lines[i]);

        first[i] = pieces.count;
        if (count_words(lines[i], len) <= BEAM_MAX_PIECE_WORDS ? tok_list_push(&pieces, lines[i])
                                                               : split_long_line(lines[i], &pieces))
            goto done;
    }
    first[n] = pieces.count;
    if (!(piece_out = calloc(pieces.count + 1, sizeof(char *))) ||
        translate_pieces(m, opt, (const char *const *)pieces.items, pieces.count, piece_out))
        goto done;
    for (size_t i = 0; i < n; i++) {
        size_t len = 1;

        for (size_t p = first[i]; p < first[i + 1]; p++)
            len += strlen(piece_out[p]) + 1;
        if (!(out[i] = malloc(len)))
            goto done;
        out[i][0] = '\0';
        for (size_t p = first[i], at = 0; p < first[i + 1]; p++) {
            size_t k = strlen(piece_out[p]);

            if (k == 0)
                continue;
            if (at)
                out[i][at++] = ' ';
            memcpy(out[i] + at, piece_out[p], k + 1);
            at += k;
        }
    }
    rc = 0;
done:
    if (rc != 0)
        for (size_t i = 0; i < n; i++) {
            free(out[i]);
            out[i] = NULL;
        }
    for (size_t p = 0; piece_out && p < pieces.count; p++)
        free(piece_out[p]);
    free(piece_out);
    free(first);
    tok_list_clear(&pieces);
    return rc;
}

/* ---- n-best search ----
 *
 * beam_search is this search with one hypothesis per sentence, no length
 * caps and no stop callback. */

int beam_source_prepare(const model *m, const char *line, beam_source *src)
{
    tok_list words = {0}, units = {0};
    int rc = prepare_source(m, line, &words, &units, src);

    tok_list_clear(&words);
    tok_list_clear(&units);
    return rc;
}

void beam_source_free(beam_source *src)
{
    free(src->ids);
    free(src->saved_at);
    free(src->unknown_at);
    free(src->known_at);
    tok_list_clear(&src->known);
    tok_list_clear(&src->saved);
    tok_list_clear(&src->unknown);
    memset(src, 0, sizeof(*src));
}

void beam_nbest_free(beam_nbest *r)
{
    for (int k = 0; r->hyps && k < r->count; k++)
        free(r->hyps[k].ids);
    free(r->hyps);
    memset(r, 0, sizeof(*r));
}

char *beam_render(const model *m, const int32_t *ids, int32_t len, const beam_source *src)
{
    return render_output(m, ids, len, src, NULL, 0);
}

int beam_render_nbest(const model *m, const beam_nbest *r, int count, const beam_source *src,
                      char **texts)
{
    int32_t **ids = malloc(sizeof(int32_t *) * ((size_t)count + 1));
    int32_t *lens = malloc(sizeof(int32_t) * ((size_t)count + 1));
    float *align = NULL;
    size_t stride = 0;
    int rc = -1, oom = 0;

    for (int k = 0; k < count; k++)
        texts[k] = NULL;
    if (!ids || !lens)
        goto done;
    for (int k = 0; k < count; k++) {
        ids[k] = r->hyps[k].ids;
        lens[k] = r->hyps[k].len;
    }
    if (count > 0 && src->len > 0 &&
        src->saved.count + src->unknown.count + src->known.count > 0) {
        align = source_alignments(m, src, (const int32_t *const *)ids, lens, count, &stride,
                                  &oom);
        if (oom)
            goto done;
    }
    for (int k = 0; k < count; k++) {
        texts[k] = render_output(m, ids[k], lens[k], src, align ? align + k * stride : NULL, 1);
        if (!texts[k])
            goto done;
    }
    rc = 0;

done:
    if (rc != 0)
        for (int k = 0; k < count; k++) {
            free(texts[k]);
            texts[k] = NULL;
        }
    free(align);
    free(ids);
    free(lens);
    return rc;
}

/* Moves the n_best finished hypotheses of st that rank first
 * (ranks_before) into r, best first. Ties keep the order of finishing.
 * Returns 0, or -1 when out of memory. */
static int take_nbest(sentence_state *st, int n_best, beam_nbest *r)
{
    int count = st->n_done < n_best ? st->n_done : n_best;

    r->hyps = calloc(count > 0 ? count : 1, sizeof(*r->hyps));
    if (!r->hyps)
        return -1;
    for (int k = 0; k < count; k++) {
        int best = -1;

        for (int d = 0; d < st->n_done; d++)
            if (st->done[d].tokens && (best < 0 || ranks_before(st, d, best)))
                best = d;
        r->hyps[k].ids = st->done[best].tokens;
        r->hyps[k].len = st->done[best].len;
        r->hyps[k].score = st->done[best].score;
        r->hyps[k].normalized_score = st->done_norm[best];
        st->done[best].tokens = NULL;
        r->count = k + 1;
    }
    return 0;
}

/* Decodes sentences [0, n) of one group, all with non-empty sources, into
 * out. index[i] is sentence i's position in the caller's arrays, which is
 * what nopt->max_len and nopt->stop refer to. */
static int search_group_nbest(const model *m, const beam_options *opt,
                              const beam_nbest_options *nopt, const size_t *index,
                              const int32_t *const *src, const int32_t *src_len, int n,
                              beam_nbest *out)
{
    const model_config *cfg = &m->cfg;
    const model_views *w = &m->w;
    int L = cfg->layers, E = cfg->embed, H = cfg->hidden, V = cfg->tgt_vocab;
    int K = opt->beam_size;
    int S = 0, rmax, rc = -1;
    corpus c = {0};
    size_t *idx = NULL;
    model_batch bt = {0};
    sentence_state *st = calloc(n, sizeof(sentence_state));
    float *enc_buf = NULL, *h = NULL, *cc = NULL, *h2 = NULL, *c2 = NULL, *x = NULL;
    float *gates = NULL, *logits = NULL, *keys = NULL, *att = NULL, *ctx = NULL;
    float *att_out = NULL;
    const float *enc_top = NULL;
    candidate *cand = NULL, *rowbest = NULL;
    unsigned char *stopped = calloc(n, 1);

    /* The state arrays hold at most 64 hypotheses per sentence. */
    if (K < 1)
        K = 1;
    if (K > 64)
        K = 64;
    rmax = n * K;
    for (int i = 0; i < n; i++)
        if (src_len[i] > S)
            S = src_len[i];

    /* Encoder: one padded batch of the group, layer by layer. */
    c.n = n;
    c.src = (int32_t **)src;
    c.src_len = (int32_t *)src_len;
    c.tgt = (int32_t **)src;
    c.tgt_len = calloc(n, sizeof(int32_t));
    idx = malloc(sizeof(size_t) * n);
    size_t cache_floats = lstm_cache_floats(S, n, H);
    enc_buf = malloc(sizeof(float) * (cache_floats * 2 + (size_t)S * n * E));
    size_t state = (size_t)L * rmax * H;
    h = malloc(sizeof(float) * state);
    cc = malloc(sizeof(float) * state);
    h2 = malloc(sizeof(float) * state);
    c2 = malloc(sizeof(float) * state);
    x = malloc(sizeof(float) * (size_t)rmax * (E > H ? E : H));
    gates = malloc(sizeof(float) * (size_t)rmax * 4 * H);
    logits = malloc(sizeof(float) * (size_t)rmax * V);
    cand = malloc(sizeof(candidate) * (size_t)K * 2 * K);
    rowbest = malloc(sizeof(candidate) * 2 * K);
    if (cfg->attention) {
        keys = malloc(sizeof(float) * (size_t)S * n * H);
        att = malloc(sizeof(float) * (size_t)K * (S > 0 ? S : 1));
        ctx = malloc(sizeof(float) * (size_t)rmax * H);
        att_out = malloc(sizeof(float) * (size_t)rmax * H);
        if (!keys || !att || !ctx || !att_out)
            goto done;
    }
    if (!st || !c.tgt_len || !idx || !enc_buf || !h || !cc || !h2 || !c2 || !x || !gates ||
        !logits || !cand || !rowbest || !stopped)
        goto done;
    for (int i = 0; i < n; i++)
        idx[i] = i;
    if (corpus_fill_batch(&c, idx, n, &bt))
        goto done;

    {
        lstm_cache caches[2];
        float *emb = enc_buf + 2 * cache_floats;

        lstm_cache_bind(&caches[0], S, n, H, enc_buf);
        lstm_cache_bind(&caches[1], S, n, H, enc_buf + cache_floats);
        for (size_t r = 0; r < (size_t)S * n; r++)
            memcpy(emb + r * E, w->src_embed + (size_t)bt.src[r] * E, sizeof(float) * E);
        for (int l = 0; l < L; l++) {
            lstm_cache *cur = &caches[l & 1];
            const float *in = l == 0 ? emb : caches[(l - 1) & 1].h + (size_t)n * H;

            lstm_forward(&w->enc[l], S, n, in, NULL, NULL, bt.src_mask, cur);
            /* Row i of the decoder state starts as sentence i's final state. */
            memcpy(h + (size_t)l * rmax * H, cur->h + (size_t)S * n * H, sizeof(float) * n * H);
            memcpy(cc + (size_t)l * rmax * H, cur->c + (size_t)S * n * H, sizeof(float) * n * H);
        }
        /* The top layer's cache stays alive until the search ends. */
        enc_top = caches[(L - 1) & 1].h + (size_t)n * H;
        if (cfg->attention)
            attention_keys(&w->att, H, (size_t)S * n, enc_top, keys);
    }

    int R = n; /* live rows, grouped by sentence in order */
    for (int i = 0; i < n; i++) {
        int32_t cap = nopt->max_len ? nopt->max_len[index[i]] : 0;

        st[i].max_len = (int)(opt->max_length_ratio * src_len[i]) + 10;
        if (cap > 0 && cap < st[i].max_len)
            st[i].max_len = cap;
        for (int t = 0; t < src_len[i]; t++)
            st[i].allow_unk |= src[i][t] == VOCAB_UNK;
        st[i].n_live = 1;
        st[i].live[0].tokens = malloc(sizeof(int32_t) * (st[i].max_len + 1));
        if (!st[i].live[0].tokens)
            goto done;
    }

    for (int step = 0; R > 0; step++) {
        /* Embed each row's last token and run one decoder step. */
        int r = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < st[i].n_live; k++, r++) {
                const hyp *hp = &st[i].live[k];
                int32_t tok = hp->len ? hp->tokens[hp->len - 1] : VOCAB_BOS;

                memcpy(x + (size_t)r * E, w->tgt_embed + (size_t)tok * E, sizeof(float) * E);
            }
        for (int l = 0; l < L; l++) {
            size_t off = (size_t)l * rmax * H;

            lstm_step(&w->dec[l], R, l == 0 ? x : h2 + off - (size_t)rmax * H, h + off, cc + off,
                      h2 + off, c2 + off, gates);
        }
        const float *top = h2 + (size_t)(L - 1) * rmax * H;
        if (cfg->attention) {
            /* Each sentence's rows attend over that sentence's source. */
            for (int i = 0, row = 0; i < n; row += st[i].n_live, i++)
                attention_attend(H, st[i].n_live, S, top + (size_t)row * H, H,
                                 keys + (size_t)i * H, enc_top + (size_t)i * H, n * H,
                                 bt.src_mask + i, n, att, ctx + (size_t)row * H, H);
            attention_output(&w->att, H, (size_t)R, ctx, top, att_out);
            top = att_out;
        }
        for (int q = 0; q < R; q++)
            memcpy(logits + (size_t)q * V, w->out_b, sizeof(float) * V);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, V, H, 1.0f, top, H, w->out_w, H,
                    1.0f, logits, V);
        log_softmax_rows(logits, R, V);

        /* Per sentence: the 2K best extensions of its rows, </s> ones to
         * the finished list, the first K others become the new live set.
         * A sentence whose stop callback fires loses its rows here. */
        int new_R = 0, base = 0;
        for (int i = 0; i < n; i++) {
            sentence_state *s = &st[i];
            int nl = s->n_live, nc = 0, kept = 0;
            hyp next[64];

            if (nl > 0 && nopt->stop && nopt->stop(nopt->stop_ctx, index[i])) {
                for (int k = 0; k < nl; k++)
                    free(s->live[k].tokens);
                s->n_live = 0;
                stopped[i] = 1;
                base += nl;
                continue;
            }
            for (int k = 0; k < nl; k++) {
                int got = top_k_row(logits + (size_t)(base + k) * V, V, 2 * K, base + k,
                                    s->live[k].score, s->allow_unk, rowbest);

                memcpy(cand + nc, rowbest, sizeof(candidate) * got);
                nc += got;
            }
            qsort(cand, nc, sizeof(candidate), cmp_candidate);
            for (int j = 0; j < nc && kept < K && s->n_done < K; j++) {
                const hyp *parent = &s->live[cand[j].row - base];

                if (cand[j].token == VOCAB_EOS) {
                    hyp tmp = *parent;

                    tmp.score = cand[j].score;
                    if (finish(s, &tmp, opt->length_penalty, 1))
                        goto done;
                    continue;
                }
                next[kept].tokens = malloc(sizeof(int32_t) * (s->max_len + 1));
                if (!next[kept].tokens)
                    goto done;
                memcpy(next[kept].tokens, parent->tokens, sizeof(int32_t) * parent->len);
                next[kept].tokens[parent->len] = cand[j].token;
                next[kept].len = parent->len + 1;
                next[kept].score = cand[j].score;
                /* Copy the parent's new state into output row new_R + kept. */
                for (int l = 0; l < L; l++) {
                    size_t off = (size_t)l * rmax * H;

                    memcpy(h + off + (size_t)(new_R + kept) * H,
                           h2 + off + (size_t)cand[j].row * H, sizeof(float) * H);
                    memcpy(cc + off + (size_t)(new_R + kept) * H,
                           c2 + off + (size_t)cand[j].row * H, sizeof(float) * H);
                }
                kept++;
            }
            base += nl;
            for (int k = 0; k < nl; k++)
                free(s->live[k].tokens);
            s->n_live = 0;
            if (s->n_done >= K || step + 1 >= s->max_len) {
                for (int k = 0; k < kept; k++) {
                    if (s->n_done < K && finish(s, &next[k], opt->length_penalty, 0))
                        goto done;
                    free(next[k].tokens);
                }
                kept = 0;
            }
            memcpy(s->live, next, sizeof(hyp) * kept);
            s->n_live = kept;
            new_R += kept;
        }
        R = new_R;
    }

    /* The n best finished hypotheses of each sentence that was not stopped. */
    for (int i = 0; i < n; i++) {
        out[i].stopped = stopped[i];
        if (!out[i].stopped && take_nbest(&st[i], nopt->n_best, &out[i]))
            goto done;
    }
    rc = 0;

done:
    if (st)
        for (int i = 0; i < n; i++)
            free_state(&st[i]);
    free(st);
    free(c.tgt_len);
    free(idx);
    corpus_batch_free(&bt);
    free(enc_buf);
    free(h);
    free(cc);
    free(h2);
    free(c2);
    free(x);
    free(gates);
    free(logits);
    free(cand);
    free(rowbest);
    free(keys);
    free(att);
    free(ctx);
    free(att_out);
    free(stopped);
    return rc;
}

int beam_search_nbest(const model *m, const beam_options *opt, const beam_nbest_options *nopt,
                      const int32_t *const *src, const int32_t *src_len, size_t n,
                      beam_nbest *out)
{
    size_t *order = malloc(sizeof(size_t) * (n + 1));
    const int32_t **group_src = malloc(sizeof(int32_t *) * (n + 1));
    int32_t *group_len = malloc(sizeof(int32_t) * (n + 1));
    int bs = opt->batch_size < 1 ? 1 : opt->batch_size, rc = -1;
    size_t nonempty = 0;

    for (size_t i = 0; i < n; i++)
        memset(&out[i], 0, sizeof(out[i]));
    if (!order || !group_src || !group_len)
        goto done;

    /* Empty sources get one empty hypothesis. The rest are sorted by
     * length (insertion order kept for ties) exactly as in beam_search, so
     * the same input forms the same groups there and here. */
    for (size_t i = 0; i < n; i++) {
        if (src_len[i] > 0) {
            order[nonempty++] = i;
            continue;
        }
        out[i].hyps = calloc(1, sizeof(*out[i].hyps));
        if (!out[i].hyps || !(out[i].hyps[0].ids = malloc(sizeof(int32_t))))
            goto done;
        out[i].count = 1;
    }
    for (size_t i = 1; i < nonempty; i++) {
        size_t v = order[i], j = i;

        while (j > 0 && src_len[order[j - 1]] > src_len[v]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    for (size_t first = 0; first < nonempty; first += bs) {
        int g = (int)(nonempty - first < (size_t)bs ? nonempty - first : (size_t)bs);
        beam_nbest *group_out = calloc(g, sizeof(*group_out));

        if (!group_out)
            goto done;
        for (int k = 0; k < g; k++) {
            group_src[k] = src[order[first + k]];
            group_len[k] = src_len[order[first + k]];
        }
        if (search_group_nbest(m, opt, nopt, order + first, group_src, group_len, g,
                               group_out)) {
            for (int k = 0; k < g; k++)
                beam_nbest_free(&group_out[k]);
            free(group_out);
            goto done;
        }
        for (int k = 0; k < g; k++)
            out[order[first + k]] = group_out[k];
        free(group_out);
    }
    rc = 0;

done:
    free(order);
    free(group_src);
    free(group_len);
    return rc;
}
