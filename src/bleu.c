/* Corpus BLEU with the defaults of sacreBLEU 2.x: "13a" tokenization, cased,
 * n-grams up to order 4 clipped per segment and summed over the corpus,
 * "exp" smoothing, no effective order, one reference per segment.
 *
 * The tokenizer replays sacreBLEU's four regular-expression passes as byte
 * scans with the same left-to-right, non-overlapping match order, so edge
 * cases such as ".5" -> ". 5" or "a.." -> "a . ." come out as sacreBLEU's.
 * The scans work on UTF-8 bytes because every pattern character is ASCII and
 * no UTF-8 lead or continuation byte is an ASCII digit, period or comma.
 *
 * Limits: invalid UTF-8 passes through byte for byte (sacreBLEU would fail
 * to decode it), and an empty reference counts as zero tokens where
 * sacreBLEU raises an error.
 */
#include "bleu.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ORDER 4

/* ---- 13a tokenizer ---- */

/* Returns the byte length of the whitespace character at s[0..avail), or 0
 * when it is not whitespace. The set is Python's str.isspace(), which
 * sacreBLEU's str.split() and str.rstrip() use. */
static size_t space_length(const unsigned char *s, size_t avail)
{
    if ((s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x20))
        return 1;
    if (avail >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0))
        return 2; /* U+0085, U+00A0 */
    if (avail < 3)
        return 0;
    if (s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80)
        return 3; /* U+1680 */
    if (s[0] == 0xe2 && s[1] == 0x80 &&
        ((s[2] >= 0x80 && s[2] <= 0x8a) || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf))
        return 3; /* U+2000..U+200A, U+2028, U+2029, U+202F */
    if (s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f)
        return 3; /* U+205F */
    if (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80)
        return 3; /* U+3000 */
    return 0;
}

/* Returns the length of s[0..len) without trailing whitespace. */
static size_t rstrip_length(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t end = 0, i = 0;

    while (i < len) {
        size_t sp = space_length(u + i, len - i);

        if (sp) {
            i += sp;
        } else {
            i++;
            end = i;
        }
    }
    return end;
}

/* Replaces every occurrence of from with the shorter or equal string to, in
 * place, scanning left to right like Python's str.replace. */
static size_t replace_all(char *s, size_t len, const char *from, const char *to)
{
    size_t from_len = strlen(from), to_len = strlen(to);
    size_t in = 0, out = 0;

    while (in < len) {
        if (in + from_len <= len && memcmp(s + in, from, from_len) == 0) {
            memmove(s + out, to, to_len);
            out += to_len;
            in += from_len;
        } else {
            s[out++] = s[in++];
        }
    }
    return out;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_period_or_comma(unsigned char c)
{
    return c == '.' || c == ',';
}

/* The class [\{-\~\[-\` -\&\(-\+\:-\@\/] of the first 13a pattern. */
static int is_split_symbol(unsigned char c)
{
    return (c >= 0x20 && c <= 0x26) || (c >= 0x28 && c <= 0x2b) || c == 0x2f ||
           (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
}

/* Applies pattern number pass (0-3) of the 13a list to src[0..len), writing
 * to dst, which needs room for 3 * len bytes in pass 0 and 2 * len after.
 * Returns the output length. */
static size_t run_pass(int pass, const unsigned char *src, size_t len, unsigned char *dst)
{
    size_t i = 0, o = 0;

    while (i < len) {
        unsigned char c = src[i];
        int pair = i + 1 < len;
        unsigned char next = pair ? src[i + 1] : 0;

        if (pass == 0 && is_split_symbol(c)) {
            /* ([\{-\~...]) -> " \1 " */
            dst[o++] = ' ';
            dst[o++] = c;
            dst[o++] = ' ';
            i++;
        } else if (pass == 1 && pair && !is_digit(c) && is_period_or_comma(next)) {
            /* ([^0-9])([\.,]) -> "\1 \2 " */
            dst[o++] = c;
            dst[o++] = ' ';
            dst[o++] = next;
            dst[o++] = ' ';
            i += 2;
        } else if (pass == 2 && pair && is_period_or_comma(c) && !is_digit(next)) {
            /* ([\.,])([^0-9]) -> " \1 \2" */
            dst[o++] = ' ';
            dst[o++] = c;
            dst[o++] = ' ';
            dst[o++] = next;
            i += 2;
        } else if (pass == 3 && pair && is_digit(c) && next == '-') {
            /* ([0-9])(-) -> "\1 \2 " */
            dst[o++] = c;
            dst[o++] = ' ';
            dst[o++] = '-';
            dst[o++] = ' ';
            i += 2;
        } else {
            dst[o++] = c;
            i++;
        }
    }
    return o;
}

/* Copies the whitespace-separated tokens of src[0..len) into dst joined by
 * single spaces, like " ".join(s.split()). Returns the output length. */
static size_t collapse_spaces(const unsigned char *src, size_t len, char *dst)
{
    size_t i = 0, o = 0;

    while (i < len) {
        size_t sp = space_length(src + i, len - i);
        size_t start = i;

        if (sp) {
            i += sp;
            continue;
        }
        while (i < len && space_length(src + i, len - i) == 0)
            i++;
        if (o > 0)
            dst[o++] = ' ';
        memcpy(dst + o, src + start, i - start);
        o += i - start;
    }
    dst[o] = '\0';
    return o;
}

/* Tokenizes segment[0..len) as sacreBLEU's Tokenizer13a. */
static char *tokenize_13a(const char *segment, size_t len)
{
    unsigned char *a, *b;
    size_t n;
    int pass;

    /* The first pass at most triples the padded text and the other three at
     * most double it. */
    if (len > SIZE_MAX / 24 - 3)
        return NULL;
    a = malloc(24 * (len + 2) + 1);
    b = malloc(24 * (len + 2) + 1);
    if (!a || !b) {
        free(a);
        free(b);
        return NULL;
    }

    /* Language-independent part: markup removal and entity unescaping. */
    a[0] = ' ';
    memcpy(a + 1, segment, len);
    n = len;
    n = replace_all((char *)a + 1, n, "<skipped>", "");
    n = replace_all((char *)a + 1, n, "-\n", "");
    n = replace_all((char *)a + 1, n, "\n", " ");
    n = replace_all((char *)a + 1, n, "&quot;", "\"");
    n = replace_all((char *)a + 1, n, "&amp;", "&");
    n = replace_all((char *)a + 1, n, "&lt;", "<");
    n = replace_all((char *)a + 1, n, "&gt;", ">");
    a[n + 1] = ' ';
    n += 2;

    /* The four regular-expression passes, ping-ponging between buffers. */
    for (pass = 0; pass < 4; pass++) {
        unsigned char *t;

        n = run_pass(pass, a, n, b);
        t = a;
        a = b;
        b = t;
    }

    collapse_spaces(a, n, (char *)b);
    free(a);
    return (char *)b;
}

char *bleu_tokenize_13a(const char *segment)
{
    return tokenize_13a(segment ? segment : "", segment ? strlen(segment) : 0);
}

/* ---- n-gram counting ---- */

typedef struct {
    const char *text;
    size_t len;
    uint64_t hash;
} token;

/* One n-gram of the current segment: its tokens point into the reference's
 * or the hypothesis's token array, whichever inserted it first. */
typedef struct {
    uint64_t stamp; /* owning segment number + 1, or 0 when never used */
    uint64_t hash;
    const token *tokens;
    unsigned order;
    unsigned ref_count, hyp_count;
} ngram_slot;

typedef struct {
    token *ref, *hyp;
    size_t ref_cap, hyp_cap;
    ngram_slot *slots;
    size_t slot_cap; /* power of two */
    size_t *used;    /* indices of slots owned by the current segment */
    size_t used_count, used_cap;
    uint64_t stamp;
} ngram_counter;

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* Splits a tokenized string (single spaces) into *tokens. Returns the
 * count, or (size_t)-1 when out of memory. */
static size_t split_tokens(const char *text, token **tokens, size_t *cap)
{
    size_t count = 0;
    const char *p = text;

    while (*p) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);

        if (count == *cap) {
            size_t new_cap = *cap ? 2 * *cap : 64;
            token *grown = realloc(*tokens, new_cap * sizeof(*grown));

            if (!grown)
                return (size_t)-1;
            *tokens = grown;
            *cap = new_cap;
        }
        (*tokens)[count].text = p;
        (*tokens)[count].len = len;
        (*tokens)[count].hash = hash_bytes(p, len);
        count++;
        p = end ? end + 1 : p + len;
    }
    return count;
}

static uint64_t ngram_hash(const token *tokens, unsigned order)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL * order;

    for (unsigned k = 0; k < order; k++) {
        h ^= tokens[k].hash + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    }
    return h ^ (h >> 31);
}

static int same_ngram(const ngram_slot *slot, uint64_t hash, const token *tokens, unsigned order)
{
    if (slot->hash != hash || slot->order != order)
        return 0;
    for (unsigned k = 0; k < order; k++) {
        const token *a = &slot->tokens[k], *b = &tokens[k];

        if (a->len != b->len || memcmp(a->text, b->text, a->len) != 0)
            return 0;
    }
    return 1;
}

/* Makes room for max_ngrams distinct n-grams at load factor <= 1/2 and
 * starts a new segment. Returns 0, or -1 when out of memory. */
static int counter_begin_segment(ngram_counter *c, size_t max_ngrams)
{
    size_t want = 16;

    while (want < 2 * max_ngrams)
        want *= 2;
    if (want > c->slot_cap) {
        ngram_slot *slots = calloc(want, sizeof(*slots));

        if (!slots)
            return -1;
        free(c->slots);
        c->slots = slots;
        c->slot_cap = want;
    }
    if (max_ngrams > c->used_cap) {
        size_t *used = realloc(c->used, max_ngrams * sizeof(*used));

        if (!used)
            return -1;
        c->used = used;
        c->used_cap = max_ngrams;
    }
    c->used_count = 0;
    c->stamp++;
    return 0;
}

/* Adds every n-gram of tokens[0..count), orders 1..MAX_ORDER, to the
 * reference (is_hyp = 0) or hypothesis counts. */
static void counter_add(ngram_counter *c, const token *tokens, size_t count, int is_hyp)
{
    size_t mask = c->slot_cap - 1;

    for (unsigned order = 1; order <= MAX_ORDER; order++) {
        for (size_t i = 0; i + order <= count; i++) {
            uint64_t h = ngram_hash(tokens + i, order);
            size_t s = (size_t)h & mask;
            ngram_slot *slot;

            /* Linear probing. Slots of older segments count as empty. */
            while (c->slots[s].stamp == c->stamp &&
                   !same_ngram(&c->slots[s], h, tokens + i, order))
                s = (s + 1) & mask;
            slot = &c->slots[s];
            if (slot->stamp != c->stamp) {
                slot->stamp = c->stamp;
                slot->hash = h;
                slot->tokens = tokens + i;
                slot->order = order;
                slot->ref_count = 0;
                slot->hyp_count = 0;
                c->used[c->used_count++] = s;
            }
            if (is_hyp)
                slot->hyp_count++;
            else
                slot->ref_count++;
        }
    }
}

static size_t ngram_count(size_t tokens)
{
    size_t total = 0;

    for (size_t order = 1; order <= MAX_ORDER; order++)
        total += tokens >= order ? tokens - order + 1 : 0;
    return total;
}

/* Adds one segment's clipped matches and hypothesis n-gram totals to out. */
static int score_segment(ngram_counter *c, const char *hyp, const char *ref, bleu_result *out)
{
    size_t hyp_count = split_tokens(hyp, &c->hyp, &c->hyp_cap);
    size_t ref_count = split_tokens(ref, &c->ref, &c->ref_cap);

    if (hyp_count == (size_t)-1 || ref_count == (size_t)-1)
        return -1;
    if (counter_begin_segment(c, ngram_count(hyp_count) + ngram_count(ref_count)) != 0)
        return -1;
    counter_add(c, c->ref, ref_count, 0);
    counter_add(c, c->hyp, hyp_count, 1);

    for (size_t u = 0; u < c->used_count; u++) {
        const ngram_slot *slot = &c->slots[c->used[u]];
        unsigned clipped = slot->hyp_count < slot->ref_count ? slot->hyp_count : slot->ref_count;

        out->total[slot->order - 1] += slot->hyp_count;
        out->correct[slot->order - 1] += clipped;
    }
    out->hyp_len += hyp_count;
    out->ref_len += ref_count;
    return 0;
}

/* ---- score ---- */

/* Fills score, precisions, brevity penalty and ratio from the counts, as
 * sacreBLEU's BLEU.compute_bleu with smooth_method="exp" and
 * effective_order=False. */
static void compute_score(bleu_result *r)
{
    double smooth = 1.0, log_sum = 0.0;
    int any_correct = 0, zero_precision = 0;

    r->ratio = r->ref_len ? (double)r->hyp_len / (double)r->ref_len : 0.0;
    if (r->hyp_len < r->ref_len)
        r->brevity_penalty =
            r->hyp_len ? exp(1.0 - (double)r->ref_len / (double)r->hyp_len) : 0.0;
    else
        r->brevity_penalty = 1.0;

    for (int n = 0; n < MAX_ORDER; n++) {
        r->precision[n] = 0.0;
        any_correct |= r->correct[n] != 0;
    }
    r->score = 0.0;
    if (!any_correct)
        return;

    /* An order with no hypothesis n-grams ends the loop and keeps precision
     * 0 for it and every higher order, which makes the score 0. A zero match
     * count gets precision 100 / (2^k * total) for the k-th such order. */
    for (int n = 0; n < MAX_ORDER; n++) {
        if (r->total[n] == 0)
            break;
        if (r->correct[n] == 0) {
            smooth *= 2.0;
            r->precision[n] = 100.0 / (smooth * (double)r->total[n]);
        } else {
            r->precision[n] = 100.0 * (double)r->correct[n] / (double)r->total[n];
        }
    }
    for (int n = 0; n < MAX_ORDER; n++) {
        if (r->precision[n] == 0.0)
            zero_precision = 1;
        else
            log_sum += log(r->precision[n]);
    }
    /* sacreBLEU floors log(0) at -9999999999, so exp() underflows to 0. */
    r->score = zero_precision ? 0.0 : r->brevity_penalty * exp(log_sum / MAX_ORDER);
}

int bleu_corpus(const char *const *hyps, const char *const *refs, size_t n, bleu_result *out)
{
    ngram_counter counter = {0};
    int rc = 0;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *hyp = hyps[i] ? hyps[i] : "";
        const char *ref = refs[i] ? refs[i] : "";
        char *hyp_tok = tokenize_13a(hyp, rstrip_length(hyp, strlen(hyp)));
        char *ref_tok = tokenize_13a(ref, rstrip_length(ref, strlen(ref)));

        if (!hyp_tok || !ref_tok)
            rc = -1;
        else
            rc = score_segment(&counter, hyp_tok, ref_tok, out);
        free(hyp_tok);
        free(ref_tok);
    }
    free(counter.ref);
    free(counter.hyp);
    free(counter.slots);
    free(counter.used);
    if (rc != 0)
        return -1;
    compute_score(out);
    return 0;
}

int bleu_format(const bleu_result *r, char *buf, size_t size)
{
    return snprintf(buf, size,
                    "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f "
                    "hyp_len = %zu ref_len = %zu)",
                    r->score, r->precision[0], r->precision[1], r->precision[2],
                    r->precision[3], r->brevity_penalty, r->ratio, r->hyp_len, r->ref_len);
}
