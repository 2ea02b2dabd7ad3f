/* Byte-pair encoding compatible with subword-nmt: codes objects with their
 * text format and segmentation cache, segmentation and joining, and a
 * learner.
 *
 * Codes keep their canonical text (what bpe_to_text returns) and split a
 * copy of it into NUL-terminated symbols. Merge ranks are looked up in an
 * open-addressing hash table keyed by the FNV-1a hash of "first second".
 * Segmenting a word of n code points takes O(n^2) lookups, which is cheap
 * for words but not meant for unsplit text. A vocabulary filter adds a set
 * of allowed subwords and a table from each merged string to the lowest
 * rank making it, and splits with an explicit stack instead of recursion.
 *
 * Learning keeps, like learn_bpe.py, a count for every adjacent symbol
 * pair and an index from each pair to the words containing it. A merge
 * visits only the indexed words: it subtracts the pairs of each changed
 * word, rewrites the word and adds its new pairs. The most frequent pair
 * comes from a max-heap whose stale entries (counts that changed since
 * they were pushed) are dropped when they reach the top. Memory grows
 * with the total length of the distinct words and is freed when learning
 * returns.
 */
#include "bpe.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#define MARKER_LEN (sizeof BPE_MARKER - 1)
#define EOW_LEN (sizeof BPE_END_OF_WORD - 1)
#define VERSION_PREFIX "#version:"
#define VERSION_LINE "#version: 0.2\n"
#define VERSION_LINE_LEN (sizeof VERSION_LINE - 1)
#define NO_RANK UINT32_MAX
#define MIN_TABLE_CAPACITY 16
#define MAX_QUOTED_BYTES 60

#define FNV_OFFSET 0xcbf29ce484222325u
#define FNV_PRIME 0x100000001b3u

/* ---- Helpers ---- */

__attribute__((format(printf, 3, 4))) static void set_error(char *err, size_t err_size,
                                                             const char *fmt, ...)
{
    va_list ap;

    if (!err || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

static uint64_t fnv1a_update(uint64_t hash, const char *bytes, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        hash ^= (unsigned char)bytes[i];
        hash *= FNV_PRIME;
    }
    return hash;
}

/* Returns the length of the code point's UTF-8 sequence at s[0..n), n > 0,
 * or 1 with *valid false when the bytes there are not valid UTF-8. */
static size_t char_length(const char *s, size_t n, bool *valid)
{
    utf8proc_int32_t cp;
    utf8proc_ssize_t k =
        utf8proc_iterate((const utf8proc_uint8_t *)s, n < 4 ? (utf8proc_ssize_t)n : 4, &cp);

    *valid = k > 0;
    return k > 0 ? (size_t)k : 1;
}

static bool is_valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        bool valid;

        i += char_length(s + i, n - i, &valid);
        if (!valid)
            return false;
    }
    return true;
}

static size_t table_capacity_for(size_t n)
{
    size_t capacity = MIN_TABLE_CAPACITY;

    while (capacity < 2 * n)
        capacity *= 2;
    return capacity;
}

/* Frees the tokens appended to list after its first count ones. */
static void truncate_list(tok_list *list, size_t count)
{
    while (list->count > count)
        free(list->items[--list->count]);
}

/* ---- Codes ---- */

typedef struct {
    const char *first, *second; /* into the codes' symbols */
    size_t first_len, second_len;
} merge_rule;

typedef struct {
    char *word; /* NULL for an empty slot */
    uint64_t hash;
    char *pieces; /* the subwords, each NUL-terminated, one after another */
    size_t n_pieces;
} cache_entry;

struct bpe {
    int version;     /* 1 for codes version 0.1, 2 for 0.2 */
    char *text;      /* canonical codes text, NUL-terminated */
    size_t text_len;
    uint64_t hash;   /* FNV-1a of text */
    char *symbols;   /* the merge lines of text, with ' ' and '\n' as NULs */
    merge_rule *merges;
    size_t n_merges;
    uint32_t *ranks; /* [ranks_capacity] rank, or NO_RANK for an empty slot */
    size_t ranks_capacity;
    cache_entry *cache; /* [cache_capacity], NULL until bpe_cache_words */
    size_t cache_capacity, cache_size;
    /* Vocabulary filter (bpe_set_vocabulary): the allowed subwords, and for
     * each string a merge makes, the lowest rank making it. Empty tables
     * when there is no filter. */
    char **allowed;        /* [allowed_capacity] copies, NULL for an empty slot */
    size_t allowed_capacity;
    uint32_t *made_by;     /* [ranks_capacity] lowest rank per merged string */
};

static uint64_t pair_hash(const char *first, size_t first_len, const char *second,
                          size_t second_len)
{
    uint64_t hash = fnv1a_update(FNV_OFFSET, first, first_len);

    hash = fnv1a_update(hash, " ", 1);
    return fnv1a_update(hash, second, second_len);
}

/* Returns the rank table slot of the pair, or the empty slot where it
 * belongs. */
static uint32_t *rank_slot(const bpe *codes, const char *first, size_t first_len,
                           const char *second, size_t second_len)
{
    size_t mask = codes->ranks_capacity - 1;
    size_t i = pair_hash(first, first_len, second, second_len) & mask;

    for (;; i = (i + 1) & mask) {
        uint32_t rank = codes->ranks[i];
        const merge_rule *m;

        if (rank == NO_RANK)
            return &codes->ranks[i];
        m = &codes->merges[rank];
        if (m->first_len == first_len && m->second_len == second_len &&
            memcmp(m->first, first, first_len) == 0 && memcmp(m->second, second, second_len) == 0)
            return &codes->ranks[i];
    }
}

static void drop_cache(bpe *codes)
{
    for (size_t i = 0; i < codes->cache_capacity; i++) {
        free(codes->cache[i].word);
        free(codes->cache[i].pieces);
    }
    free(codes->cache);
    codes->cache = NULL;
    codes->cache_capacity = codes->cache_size = 0;
}

static void drop_vocabulary(bpe *codes)
{
    for (size_t i = 0; i < codes->allowed_capacity; i++)
        free(codes->allowed[i]);
    free(codes->allowed);
    free(codes->made_by);
    codes->allowed = NULL;
    codes->made_by = NULL;
    codes->allowed_capacity = 0;
}

void bpe_free(bpe *codes)
{
    if (!codes)
        return;
    drop_cache(codes);
    drop_vocabulary(codes);
    free(codes->text);
    free(codes->symbols);
    free(codes->merges);
    free(codes->ranks);
    free(codes);
}

/* Builds codes from canonical text: VERSION_LINE when version is 2, then
 * n_merges lines "first second\n", already validated. Takes ownership of
 * text, which is freed on failure. Returns NULL when out of memory. */
static bpe *codes_new(int version, char *text, size_t text_len, size_t n_merges)
{
    size_t header_len = version == 2 ? VERSION_LINE_LEN : 0;
    size_t body_len = text_len - header_len;
    bpe *codes = calloc(1, sizeof *codes);
    char *p;

    if (!codes) {
        free(text);
        return NULL;
    }
    codes->version = version;
    codes->text = text;
    codes->text_len = text_len;
    codes->hash = fnv1a_update(FNV_OFFSET, text, text_len);
    codes->n_merges = n_merges;
    codes->symbols = malloc(body_len + 1);
    codes->merges = malloc((n_merges ? n_merges : 1) * sizeof *codes->merges);
    codes->ranks_capacity = table_capacity_for(n_merges);
    codes->ranks = malloc(codes->ranks_capacity * sizeof *codes->ranks);
    if (!codes->symbols || !codes->merges || !codes->ranks) {
        bpe_free(codes);
        return NULL;
    }
    memset(codes->ranks, 0xff, codes->ranks_capacity * sizeof *codes->ranks); /* NO_RANK */

    /* Split each line at its space and newline into two symbols. */
    memcpy(codes->symbols, text + header_len, body_len);
    codes->symbols[body_len] = '\0';
    for (size_t i = 0; i < body_len; i++) {
        if (codes->symbols[i] == ' ' || codes->symbols[i] == '\n')
            codes->symbols[i] = '\0';
    }
    p = codes->symbols;
    for (size_t rank = 0; rank < n_merges; rank++) {
        merge_rule *m = &codes->merges[rank];
        uint32_t *slot;

        m->first = p;
        m->first_len = strlen(p);
        p += m->first_len + 1;
        m->second = p;
        m->second_len = strlen(p);
        p += m->second_len + 1;

        /* A repeated merge keeps the rank of its first occurrence. */
        slot = rank_slot(codes, m->first, m->first_len, m->second, m->second_len);
        if (*slot == NO_RANK)
            *slot = (uint32_t)rank;
    }
    return codes;
}

size_t bpe_n_merges(const bpe *codes)
{
    return codes->n_merges;
}

int bpe_merge(const bpe *codes, size_t rank, const char **first, const char **second)
{
    if (rank >= codes->n_merges)
        return -1;
    *first = codes->merges[rank].first;
    *second = codes->merges[rank].second;
    return 0;
}

uint64_t bpe_hash(const bpe *codes)
{
    return codes->hash;
}

/* ---- Codes text ---- */

static bool is_trimmed(char c)
{
    return c == ' ' || c == '\r';
}

/* Shrinks [*start, *end) of text past spaces and carriage returns. */
static void trim(const char *text, size_t *start, size_t *end)
{
    while (*start < *end && is_trimmed(text[*start]))
        (*start)++;
    while (*end > *start && is_trimmed(text[*end - 1]))
        (*end)--;
}

/* Returns the end of the line starting at pos: the index of its '\n', or
 * len. */
static size_t line_end(const char *text, size_t len, size_t pos)
{
    const char *newline = memchr(text + pos, '\n', len - pos);

    return newline ? (size_t)(newline - text) : len;
}

/* Returns how many bytes of line to quote in a message: at most
 * MAX_QUOTED_BYTES, cut at a UTF-8 sequence boundary. */
static int quoted_length(const char *line, size_t len)
{
    size_t cut = len;

    if (cut > MAX_QUOTED_BYTES) {
        cut = MAX_QUOTED_BYTES;
        while (cut > 0 && ((unsigned char)line[cut] & 0xC0) == 0x80)
            cut--;
    }
    return (int)cut;
}

/* Parses the version line text[0..end) into *version (1 or 2). Returns 0,
 * or -1 with a message when the version is not 0.1 or 0.2. */
static int parse_version(const char *text, size_t end, const char *name, int *version, char *err,
                         size_t err_size)
{
    size_t start = sizeof VERSION_PREFIX - 1;

    trim(text, &start, &end);
    if (end - start == 3 && memcmp(text + start, "0.2", 3) == 0) {
        *version = 2;
        return 0;
    }
    if (end - start == 3 && memcmp(text + start, "0.1", 3) == 0) {
        *version = 1;
        return 0;
    }
    set_error(err, err_size, "%s:1: unsupported codes version \"%.*s\" (expected 0.1 or 0.2)",
              name, quoted_length(text + start, end - start), text + start);
    return -1;
}

/* Returns whether text[pos..len) contains only spaces, carriage returns
 * and newlines. */
static bool only_blank_lines(const char *text, size_t len, size_t pos)
{
    for (; pos < len; pos++) {
        if (!is_trimmed(text[pos]) && text[pos] != '\n')
            return false;
    }
    return true;
}

/* Checks one trimmed, non-empty merge line. Returns 0, or -1 with a
 * message naming name and line_no. */
static int check_merge_line(const char *line, size_t len, const char *name, size_t line_no,
                            char *err, size_t err_size)
{
    const char *space = memchr(line, ' ', len);

    if (memchr(line, '\0', len)) {
        set_error(err, err_size, "%s:%zu: invalid merge: NUL byte", name, line_no);
        return -1;
    }
    if (!is_valid_utf8(line, len)) {
        set_error(err, err_size, "%s:%zu: invalid merge: not valid UTF-8", name, line_no);
        return -1;
    }
    /* The line is trimmed, so a space is never first or last. */
    if (!space || memchr(space + 1, ' ', len - (size_t)(space - line) - 1)) {
        set_error(err, err_size,
                  "%s:%zu: invalid merge \"%.*s\": expected two symbols separated by one space",
                  name, line_no, quoted_length(line, len), line);
        return -1;
    }
    return 0;
}

bpe *bpe_from_text(const char *text, size_t len, const char *name, char *err, size_t err_size)
{
    int version = 1;
    size_t pos = 0, line_no = 0, n_merges = 0, canon_len = 0;
    char *canon;
    bpe *codes;

    if (!name)
        name = "(codes)";
    /* The canonical text adds at most a version line and a final newline. */
    canon = malloc(len + VERSION_LINE_LEN + 2);
    if (!canon) {
        set_error(err, err_size, "%s: out of memory", name);
        return NULL;
    }

    /* Only the first line may be a version line. */
    if (len >= sizeof VERSION_PREFIX - 1 &&
        memcmp(text, VERSION_PREFIX, sizeof VERSION_PREFIX - 1) == 0) {
        size_t end = line_end(text, len, 0);

        if (parse_version(text, end, name, &version, err, err_size) < 0)
            goto fail;
        line_no = 1;
        pos = end + 1;
    }
    if (version == 2) {
        memcpy(canon, VERSION_LINE, VERSION_LINE_LEN);
        canon_len = VERSION_LINE_LEN;
    }

    for (; pos < len; pos = line_end(text, len, pos) + 1) {
        size_t start = pos, end = line_end(text, len, pos);

        line_no++;
        trim(text, &start, &end);
        if (start == end) {
            if (only_blank_lines(text, len, pos))
                break;
            set_error(err, err_size, "%s:%zu: empty line (expected a merge: two symbols "
                                     "separated by one space)",
                      name, line_no);
            goto fail;
        }
        if (check_merge_line(text + start, end - start, name, line_no, err, err_size) < 0)
            goto fail;
        if (n_merges == NO_RANK) {
            set_error(err, err_size, "%s:%zu: too many merges (at most %u)", name, line_no,
                      (unsigned)NO_RANK);
            goto fail;
        }
        memcpy(canon + canon_len, text + start, end - start);
        canon_len += end - start;
        canon[canon_len++] = '\n';
        n_merges++;
    }
    canon[canon_len] = '\0';

    codes = codes_new(version, canon, canon_len, n_merges);
    if (!codes)
        set_error(err, err_size, "%s: out of memory", name);
    return codes;

fail:
    free(canon);
    return NULL;
}

char *bpe_to_text(const bpe *codes, size_t *len)
{
    char *copy = malloc(codes->text_len + 1);

    if (!copy)
        return NULL;
    memcpy(copy, codes->text, codes->text_len + 1);
    if (len)
        *len = codes->text_len;
    return copy;
}

bpe *bpe_read(const char *path, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t len = 0, capacity = 0;
    bpe *codes = NULL;

    if (!f) {
        set_error(err, err_size, "failed to open %s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        size_t n;

        if (len == capacity) {
            size_t bigger = capacity ? capacity * 2 : 65536;
            char *grown = realloc(data, bigger);

            if (!grown) {
                set_error(err, err_size, "failed to read %s: out of memory", path);
                goto cleanup;
            }
            data = grown;
            capacity = bigger;
        }
        n = fread(data + len, 1, capacity - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        set_error(err, err_size, "failed to read %s: %s", path, strerror(errno));
        goto cleanup;
    }
    /* A byte-order mark before the version line is not part of the codes. */
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        codes = bpe_from_text(data + 3, len - 3, path, err, err_size);
    else
        codes = bpe_from_text(data, len, path, err, err_size);
    if (codes && codes->n_merges == 0) {
        set_error(err, err_size, "%s holds no merges; a codes file lists one merge per line "
                                 "after its version line",
                  path);
        bpe_free(codes);
        codes = NULL;
    }

cleanup:
    free(data);
    fclose(f);
    return codes;
}

int bpe_write(const bpe *codes, const char *path, char *err, size_t err_size)
{
    size_t tmp_len = strlen(path) + 5;
    char *tmp = malloc(tmp_len);
    FILE *f;
    bool ok;

    if (!tmp) {
        set_error(err, err_size, "failed to write %s: out of memory", path);
        return -1;
    }
    struct stat st;
    /* A link, device or pipe (/dev/stdout, a FIFO) is written in place. */
    bool in_place = lstat(path, &st) == 0 && !S_ISREG(st.st_mode);

    snprintf(tmp, tmp_len, in_place ? "%s" : "%s.tmp", path);
    if (!(f = fopen(tmp, "wb"))) {
        set_error(err, err_size, "failed to open %s for writing: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    ok = fwrite(codes->text, 1, codes->text_len, f) == codes->text_len;
    ok = (fclose(f) == 0) && ok;
    ok = ok && (in_place || rename(tmp, path) == 0);
    if (!ok) {
        set_error(err, err_size, "failed to write %s: %s", path, strerror(errno));
        if (!in_place)
            remove(tmp);
    }
    free(tmp);
    return ok ? 0 : -1;
}

/* ---- Segmentation ---- */

typedef struct {
    size_t start, end; /* byte range of the symbol in the word buffer */
} span;

static bool span_equals(const char *buf, span s, const char *symbol, size_t len)
{
    return s.end - s.start == len && memcmp(buf + s.start, symbol, len) == 0;
}

/* Next uniform draw in [0, 1) from *state, advanced by splitmix64. */
static double next_uniform(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

/* Applies the codes to the n symbols syms of buf until no adjacent pair has
 * a merge, as apply_bpe.py does. Returns the number of symbols left.
 *
 * With dropout > 0 (BPE-dropout), every step first drops each adjacent
 * pair with probability dropout, drawing from *state; the merge of lowest
 * rank among the pairs kept applies to its kept occurrences only, and
 * segmentation ends at the first step that keeps no pair with a merge.
 * keep has room for n flags, and may be NULL when dropout is 0. */
static size_t apply_merges(const bpe *codes, const char *buf, span *syms, size_t n,
                           double dropout, uint64_t *state, bool *keep)
{
    while (n > 1) {
        uint32_t best = NO_RANK;
        const merge_rule *m;
        size_t new_n = 0;

        for (size_t i = 0; i + 1 < n; i++) {
            if (dropout > 0) {
                keep[i] = next_uniform(state) >= dropout;
                if (!keep[i])
                    continue;
            }
            uint32_t rank = *rank_slot(codes, buf + syms[i].start, syms[i].end - syms[i].start,
                                       buf + syms[i + 1].start, syms[i + 1].end - syms[i + 1].start);

            if (rank < best)
                best = rank;
        }
        if (best == NO_RANK)
            break;

        /* Merge every kept occurrence left to right. In "x x x" the pair
         * "x x" merges once, giving "xx x". */
        m = &codes->merges[best];
        for (size_t i = 0; i < n;) {
            bool allowed = dropout <= 0 || (i + 1 < n && keep[i]);

            if (i + 1 < n && allowed && span_equals(buf, syms[i], m->first, m->first_len) &&
                span_equals(buf, syms[i + 1], m->second, m->second_len)) {
                syms[new_n].start = syms[i].start;
                syms[new_n].end = syms[i + 1].end;
                new_n++;
                i += 2;
            } else {
                syms[new_n++] = syms[i++];
            }
        }
        n = new_n;
    }
    return n;
}

/* Appends the len bytes at s to out, followed by BPE_MARKER when marker is
 * true, using scratch (len + MARKER_LEN + 1 bytes). Returns 0 or -1. */
static int push_piece(tok_list *out, char *scratch, const char *s, size_t len, bool marker)
{
    memcpy(scratch, s, len);
    if (marker) {
        memcpy(scratch + len, BPE_MARKER, MARKER_LEN);
        len += MARKER_LEN;
    }
    scratch[len] = '\0';
    return tok_list_push(out, scratch);
}

/* ---- Vocabulary filter ---- */

/* Returns the slot of the allowed subword s of len bytes, or the empty
 * slot where it belongs. The filter must be set. */
static char **allowed_slot(const bpe *codes, const char *s, size_t len)
{
    size_t mask = codes->allowed_capacity - 1;

    for (size_t i = fnv1a_update(FNV_OFFSET, s, len) & mask;; i = (i + 1) & mask) {
        char *a = codes->allowed[i];

        if (!a || (strncmp(a, s, len) == 0 && a[len] == '\0'))
            return &codes->allowed[i];
    }
}

/* Returns the slot of the lowest-ranked merge whose two symbols joined
 * give the len bytes at s, or the empty slot where it belongs. */
static uint32_t *made_by_slot(const bpe *codes, const char *s, size_t len)
{
    size_t mask = codes->ranks_capacity - 1;

    for (size_t i = fnv1a_update(FNV_OFFSET, s, len) & mask;; i = (i + 1) & mask) {
        uint32_t rank = codes->made_by[i];
        const merge_rule *m;

        if (rank == NO_RANK)
            return &codes->made_by[i];
        m = &codes->merges[rank];
        if (m->first_len + m->second_len == len && memcmp(m->first, s, m->first_len) == 0 &&
            memcmp(m->second, s + m->first_len, m->second_len) == 0)
            return &codes->made_by[i];
    }
}

int bpe_set_vocabulary(bpe *codes, const char *const *tokens, size_t n)
{
    size_t longest = 0;
    char *joined;

    drop_cache(codes);
    drop_vocabulary(codes);
    if (!tokens)
        return 0;
    codes->allowed_capacity = table_capacity_for(n);
    codes->allowed = calloc(codes->allowed_capacity, sizeof *codes->allowed);
    codes->made_by = malloc(codes->ranks_capacity * sizeof *codes->made_by);
    if (!codes->allowed || !codes->made_by)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        char **slot;

        if (!tokens[i])
            continue;
        slot = allowed_slot(codes, tokens[i], strlen(tokens[i]));
        if (!*slot && !(*slot = strdup(tokens[i])))
            goto oom;
    }

    /* Where merges make the same string, the lowest rank splits it, as in
     * apply_bpe.py. */
    memset(codes->made_by, 0xff, codes->ranks_capacity * sizeof *codes->made_by); /* NO_RANK */
    for (size_t r = 0; r < codes->n_merges; r++) {
        size_t len = codes->merges[r].first_len + codes->merges[r].second_len;

        if (len > longest)
            longest = len;
    }
    joined = malloc(longest + 1);
    if (!joined)
        goto oom;
    for (size_t r = 0; r < codes->n_merges; r++) {
        const merge_rule *m = &codes->merges[r];
        uint32_t *slot;

        memcpy(joined, m->first, m->first_len);
        memcpy(joined + m->first_len, m->second, m->second_len);
        slot = made_by_slot(codes, joined, m->first_len + m->second_len);
        if (*slot == NO_RANK)
            *slot = (uint32_t)r;
    }
    free(joined);
    return 0;

oom:
    drop_vocabulary(codes);
    return -1;
}

bool bpe_same_merges(const bpe *a, const bpe *b)
{
    return a->text_len == b->text_len && memcmp(a->text, b->text, a->text_len) == 0;
}

bool bpe_has_vocabulary(const bpe *codes)
{
    return codes->allowed != NULL;
}

bpe *bpe_copy(const bpe *codes)
{
    return bpe_from_text(codes->text, codes->text_len, "codes", NULL, 0);
}

/* Returns whether the filter allows symbol s of buf, a word of len bytes
 * followed by the end-of-word mark. The symbol is looked up as the subword
 * it becomes: "@@" appended when it ends before the word does, the mark
 * removed when it carries it. The bare mark of codes version 0.1 is always
 * allowed. scratch has room for len + MARKER_LEN bytes. */
static bool is_allowed(const bpe *codes, const char *buf, size_t len, span s, char *scratch)
{
    size_t end = s.end < len ? s.end : len, n = end - s.start;

    if (s.start >= len)
        return true;
    memcpy(scratch, buf + s.start, n);
    if (s.end < len) {
        memcpy(scratch + n, BPE_MARKER, MARKER_LEN);
        n += MARKER_LEN;
    }
    return *allowed_slot(codes, scratch, n) != NULL;
}

/* Splits every symbol of syms[0..n) that the filter does not allow into
 * the two symbols of the merge that made it, again and again, until each
 * part is allowed or no merge makes it (apply_bpe.py's recursive split).
 * Writes the parts to out and returns their number; out and stack have
 * room for one span per code point of the word plus one. A split never
 * cuts into the end-of-word mark. */
static size_t filter_symbols(const bpe *codes, const char *buf, size_t len, const span *syms,
                             size_t n, span *out, span *stack, char *scratch)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        size_t top = 0;

        stack[top++] = syms[i];
        while (top > 0) {
            span s = stack[--top];
            uint32_t rank = NO_RANK;
            size_t mid;

            if (!is_allowed(codes, buf, len, s, scratch))
                rank = *made_by_slot(codes, buf + s.start, s.end - s.start);
            mid = rank == NO_RANK ? 0 : s.start + codes->merges[rank].first_len;
            if (rank == NO_RANK || mid > len) {
                out[k++] = s;
                continue;
            }
            stack[top++] = (span){mid, s.end};
            stack[top++] = (span){s.start, mid};
        }
    }
    return k;
}

/* Segments word (len > 0 bytes) without the cache and appends the subwords
 * to out, dropping merges as apply_merges does when dropout > 0. Returns 0,
 * or -1 when out of memory (some subwords may have been appended). */
static int segment_uncached(const bpe *codes, const char *word, size_t len, double dropout,
                            uint64_t *state, tok_list *out)
{
    size_t buf_len = len + EOW_LEN, n = 0, room = len + 2;
    char *buf = malloc(buf_len + 1 + len + MARKER_LEN + 1);
    span *syms = malloc((codes->allowed ? 3 : 1) * room * sizeof *syms);
    bool *keep = dropout > 0 ? malloc((len + 1) * sizeof *keep) : NULL;
    char *scratch;
    int rc = -1;

    if (!buf || !syms || (dropout > 0 && !keep))
        goto cleanup;
    scratch = buf + buf_len + 1;
    memcpy(buf, word, len);
    memcpy(buf + len, BPE_END_OF_WORD, EOW_LEN + 1);

    /* One symbol per code point, or per byte of invalid UTF-8. */
    for (size_t i = 0; i < len;) {
        bool valid;
        size_t k = char_length(word + i, len - i, &valid);

        syms[n].start = i;
        syms[n].end = i + k;
        n++;
        i += k;
    }
    if (n == 1) {
        rc = tok_list_push(out, word);
        goto cleanup;
    }

    /* Version 0.2 appends the end-of-word mark to the last symbol, and
     * version 0.1 makes it a symbol of its own. */
    if (codes->version == 2) {
        syms[n - 1].end = buf_len;
    } else {
        syms[n].start = len;
        syms[n].end = buf_len;
        n++;
    }
    n = apply_merges(codes, buf, syms, n, dropout, state, keep);
    if (codes->allowed) {
        span *parts = syms + room;

        n = filter_symbols(codes, buf, len, syms, n, parts, parts + room, scratch);
        memcpy(syms, parts, n * sizeof *syms);
    }

    /* Drop the end-of-word mark, and the last symbol if nothing else. */
    syms[n - 1].end -= EOW_LEN;
    if (syms[n - 1].start == syms[n - 1].end)
        n--;

    /* A last subword ending in the marker would read as a continuation, so
     * its final byte ('@') becomes a subword of its own. n <= len + 1 here,
     * so syms has room for one more. */
    if (syms[n - 1].end - syms[n - 1].start >= MARKER_LEN &&
        memcmp(buf + syms[n - 1].end - MARKER_LEN, BPE_MARKER, MARKER_LEN) == 0) {
        syms[n].end = syms[n - 1].end;
        syms[n].start = --syms[n - 1].end;
        n++;
    }

    for (size_t i = 0; i < n; i++) {
        if (push_piece(out, scratch, buf + syms[i].start, syms[i].end - syms[i].start,
                       i + 1 < n) < 0)
            goto cleanup;
    }
    rc = 0;

cleanup:
    free(buf);
    free(syms);
    free(keep);
    return rc;
}

/* Returns the cache slot of word, or the empty slot where it belongs. The
 * cache must have slots. */
static cache_entry *cache_find(const bpe *codes, const char *word, uint64_t hash)
{
    size_t mask = codes->cache_capacity - 1;

    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        cache_entry *e = &codes->cache[i];

        if (!e->word || (e->hash == hash && strcmp(e->word, word) == 0))
            return e;
    }
}

/* Doubles the cache, or creates it. Returns 0, or -1 when out of memory
 * (cache intact). */
static int cache_grow(bpe *codes)
{
    size_t capacity = codes->cache_capacity ? codes->cache_capacity * 2 : 1024;
    cache_entry *slots = calloc(capacity, sizeof *slots);
    bpe bigger = *codes;

    if (!slots)
        return -1;
    bigger.cache = slots;
    bigger.cache_capacity = capacity;
    for (size_t i = 0; i < codes->cache_capacity; i++) {
        cache_entry *e = &codes->cache[i];

        if (e->word)
            *cache_find(&bigger, e->word, e->hash) = *e;
    }
    free(codes->cache);
    codes->cache = slots;
    codes->cache_capacity = capacity;
    return 0;
}

/* Segments word and stores the result in the cache slot e. Returns 0 or
 * -1 (slot left empty). */
static int cache_store(const bpe *codes, cache_entry *e, const char *word, uint64_t hash)
{
    tok_list pieces = {0};
    size_t bytes = 0, pos = 0;
    int rc = -1;

    if (segment_uncached(codes, word, strlen(word), 0, NULL, &pieces) < 0)
        goto cleanup;
    for (size_t i = 0; i < pieces.count; i++)
        bytes += strlen(pieces.items[i]) + 1;
    e->pieces = malloc(bytes);
    e->word = malloc(strlen(word) + 1);
    if (!e->pieces || !e->word) {
        free(e->pieces);
        free(e->word);
        e->pieces = e->word = NULL;
        goto cleanup;
    }
    strcpy(e->word, word);
    for (size_t i = 0; i < pieces.count; i++) {
        size_t piece_len = strlen(pieces.items[i]) + 1;

        memcpy(e->pieces + pos, pieces.items[i], piece_len);
        pos += piece_len;
    }
    e->n_pieces = pieces.count;
    e->hash = hash;
    rc = 0;

cleanup:
    tok_list_clear(&pieces);
    return rc;
}

int bpe_cache_words(bpe *codes, const char *const *words, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t hash;
        cache_entry *e;

        if (!words[i] || !*words[i])
            continue;
        if ((codes->cache_size + 1) * 2 > codes->cache_capacity && cache_grow(codes) < 0)
            return -1;
        hash = fnv1a_update(FNV_OFFSET, words[i], strlen(words[i]));
        e = cache_find(codes, words[i], hash);
        if (e->word)
            continue;
        if (cache_store(codes, e, words[i], hash) < 0)
            return -1;
        codes->cache_size++;
    }
    return 0;
}

int bpe_segment_word(const bpe *codes, const char *word, tok_list *out)
{
    size_t len = strlen(word), saved = out->count;

    if (len == 0)
        return 0;
    if (codes->cache_size > 0) {
        const cache_entry *e = cache_find(codes, word, fnv1a_update(FNV_OFFSET, word, len));

        if (e->word) {
            const char *piece = e->pieces;

            for (size_t i = 0; i < e->n_pieces; i++, piece += strlen(piece) + 1) {
                if (tok_list_push(out, piece) < 0) {
                    truncate_list(out, saved);
                    return -1;
                }
            }
            return 0;
        }
    }
    if (segment_uncached(codes, word, len, 0, NULL, out) < 0) {
        truncate_list(out, saved);
        return -1;
    }
    return 0;
}

int bpe_segment_word_dropout(const bpe *codes, const char *word, double dropout,
                             uint64_t *state, tok_list *out)
{
    size_t len = strlen(word), saved = out->count;

    if (dropout <= 0)
        return bpe_segment_word(codes, word, out);
    if (len == 0)
        return 0;
    if (segment_uncached(codes, word, len, dropout, state, out) < 0) {
        truncate_list(out, saved);
        return -1;
    }
    return 0;
}

int bpe_segment(const bpe *codes, const tok_list *tokens, tok_list *out)
{
    size_t saved = out->count;

    for (size_t i = 0; i < tokens->count; i++) {
        if (bpe_segment_word(codes, tokens->items[i], out) < 0) {
            truncate_list(out, saved);
            return -1;
        }
    }
    return 0;
}

int bpe_join(const char *const *tokens, size_t n, tok_list *out)
{
    size_t saved = out->count, total = 0, len = 0;
    char *word;

    for (size_t i = 0; i < n; i++)
        total += tokens[i] ? strlen(tokens[i]) : 0;
    word = malloc(total + 1);
    if (!word)
        return -1;

    for (size_t i = 0; i < n; i++) {
        size_t token_len = tokens[i] ? strlen(tokens[i]) : 0;
        bool continues;

        if (token_len == 0)
            continue;
        continues = token_len >= MARKER_LEN &&
                    memcmp(tokens[i] + token_len - MARKER_LEN, BPE_MARKER, MARKER_LEN) == 0;
        if (continues)
            token_len -= MARKER_LEN;
        memcpy(word + len, tokens[i], token_len);
        len += token_len;
        if (continues)
            continue;
        word[len] = '\0';
        len = 0;
        if (tok_list_push(out, word) < 0)
            goto fail;
    }

    /* The last token ended in the marker: keep what was joined so far. */
    if (len > 0) {
        word[len] = '\0';
        if (tok_list_push(out, word) < 0)
            goto fail;
    }
    free(word);
    return 0;

fail:
    free(word);
    truncate_list(out, saved);
    return -1;
}

/* ---- Word counting ---- */

typedef struct {
    char *word; /* NULL for an empty slot */
    uint64_t hash;
    uint64_t count;
} word_slot;

struct bpe_learner {
    word_slot *slots;
    size_t capacity; /* power of two */
    size_t size;     /* occupied slots */
    uint64_t weight; /* sum of count times byte length, at most INT64_MAX */
};

bpe_learner *bpe_learner_new(void)
{
    bpe_learner *learner = calloc(1, sizeof *learner);

    if (!learner)
        return NULL;
    learner->capacity = 1024;
    learner->slots = calloc(learner->capacity, sizeof *learner->slots);
    if (!learner->slots) {
        free(learner);
        return NULL;
    }
    return learner;
}

void bpe_learner_free(bpe_learner *learner)
{
    if (!learner)
        return;
    for (size_t i = 0; i < learner->capacity; i++)
        free(learner->slots[i].word);
    free(learner->slots);
    free(learner);
}

size_t bpe_learner_size(const bpe_learner *learner)
{
    return learner->size;
}

/* Returns the slot of word, or the empty slot where it belongs. */
static word_slot *word_find(const bpe_learner *learner, const char *word, uint64_t hash)
{
    size_t mask = learner->capacity - 1;

    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        word_slot *s = &learner->slots[i];

        if (!s->word || (s->hash == hash && strcmp(s->word, word) == 0))
            return s;
    }
}

/* Doubles the table. Returns 0, or -1 when out of memory (table intact). */
static int word_table_grow(bpe_learner *learner)
{
    bpe_learner bigger = *learner;

    bigger.capacity = learner->capacity * 2;
    bigger.slots = calloc(bigger.capacity, sizeof *bigger.slots);
    if (!bigger.slots)
        return -1;
    for (size_t i = 0; i < learner->capacity; i++) {
        if (learner->slots[i].word)
            *word_find(&bigger, learner->slots[i].word, learner->slots[i].hash) =
                learner->slots[i];
    }
    free(learner->slots);
    *learner = bigger;
    return 0;
}

int bpe_learner_add_count(bpe_learner *learner, const char *word, uint64_t count, char *err,
                          size_t err_size)
{
    size_t len = strlen(word);
    uint64_t hash, weight;
    word_slot *s;

    if (len == 0) {
        set_error(err, err_size, "invalid word: empty");
        return -1;
    }
    if (strpbrk(word, " \r\n")) {
        set_error(err, err_size, "invalid word \"%.*s\": contains a space or line break",
                  quoted_length(word, len), word);
        return -1;
    }
    if (!is_valid_utf8(word, len)) {
        set_error(err, err_size, "invalid word: not valid UTF-8");
        return -1;
    }
    if (count == 0)
        return 0;
    if (count > (uint64_t)INT64_MAX / len ||
        count * len > (uint64_t)INT64_MAX - learner->weight) {
        set_error(err, err_size, "count %llu of word \"%.*s\" too large: the counts times the "
                                 "word lengths would exceed INT64_MAX",
                  (unsigned long long)count, quoted_length(word, len), word);
        return -1;
    }
    weight = count * len;

    hash = fnv1a_update(FNV_OFFSET, word, len);
    s = word_find(learner, word, hash);
    if (!s->word) {
        if ((learner->size + 1) * 2 > learner->capacity) {
            if (word_table_grow(learner) < 0)
                goto out_of_memory;
            s = word_find(learner, word, hash);
        }
        s->word = malloc(len + 1);
        if (!s->word)
            goto out_of_memory;
        memcpy(s->word, word, len + 1);
        s->hash = hash;
        s->count = 0;
        learner->size++;
    }
    s->count += count;
    learner->weight += weight;
    return 0;

out_of_memory:
    set_error(err, err_size, "out of memory counting word \"%.*s\"", quoted_length(word, len),
              word);
    return -1;
}

int bpe_learner_add(bpe_learner *learner, const char *word, char *err, size_t err_size)
{
    return bpe_learner_add_count(learner, word, 1, err, err_size);
}

int bpe_learner_add_tokens(bpe_learner *learner, const tok_list *tokens, char *err,
                           size_t err_size)
{
    for (size_t i = 0; i < tokens->count; i++) {
        if (bpe_learner_add(learner, tokens->items[i], err, err_size) < 0)
            return -1;
    }
    return 0;
}

/* ---- Learning state ---- */

/* Interned symbols: id <-> string. */
typedef struct {
    char *name; /* NUL-terminated */
    size_t length;
} symbol;

typedef struct {
    symbol *items; /* [count], indexed by symbol id */
    size_t count, capacity;
    int32_t *index; /* [index_capacity] symbol id, or -1 for an empty slot */
    size_t index_capacity;
} symbol_table;

/* A word being merged: its current symbols. */
typedef struct {
    int32_t *symbols; /* [length] symbol ids */
    size_t length;
    int64_t count;    /* occurrences in the corpus */
    size_t visited;   /* last merge step that visited it, 1-based */
} learn_word;

/* An adjacent symbol pair with its count and the words containing it. */
typedef struct {
    int32_t first, second;
    int64_t count;   /* occurrences in all words, times the word counts */
    int64_t delta;   /* change of count pending in the current merge step */
    bool touched;    /* listed in the state's touched pairs */
    int32_t *words;  /* word ids; may repeat ids or list words that lost the pair */
    size_t n_words, words_capacity;
    int32_t last_word; /* last id appended to words, or -1 */
} pair_stat;

typedef struct {
    int64_t count; /* the pair's count when the entry was pushed */
    int32_t pair;
} heap_entry;

typedef struct {
    symbol_table symbols;

    learn_word *words;
    size_t n_words;

    pair_stat *pairs;
    size_t n_pairs, pairs_capacity;
    int32_t *pair_index; /* [pair_index_capacity] pair id, or -1 */
    size_t pair_index_capacity;

    heap_entry *heap; /* max-heap by count, then by pair strings */
    size_t heap_size, heap_capacity;

    int32_t *touched; /* pairs with a pending delta */
    size_t n_touched, touched_capacity;

    char *scratch; /* for building symbol strings */
    size_t scratch_capacity;
} learn_state;

/* Returns array, of *capacity elements of size bytes, grown by doubling to
 * hold at least needed > 0 elements, and updates *capacity. Returns NULL
 * when out of memory, in which case array is intact. */
static void *grow_array(void *array, size_t *capacity, size_t needed, size_t size)
{
    size_t bigger = *capacity ? *capacity : 16;
    void *grown;

    if (needed <= *capacity)
        return array;
    while (bigger < needed)
        bigger *= 2;
    grown = realloc(array, bigger * size);
    if (grown)
        *capacity = bigger;
    return grown;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53u;
    x ^= x >> 33;
    return x;
}

/* Returns the slot of the symbol, or the empty slot where it belongs. */
static int32_t *symbol_slot(const symbol_table *t, const char *s, size_t len)
{
    size_t mask = t->index_capacity - 1;

    for (size_t i = fnv1a_update(FNV_OFFSET, s, len) & mask;; i = (i + 1) & mask) {
        int32_t id = t->index[i];

        if (id < 0 || (t->items[id].length == len && memcmp(t->items[id].name, s, len) == 0))
            return &t->index[i];
    }
}

static int symbol_index_grow(symbol_table *t)
{
    size_t capacity = t->index_capacity ? t->index_capacity * 2 : 1024;
    int32_t *index = malloc(capacity * sizeof *index);
    symbol_table bigger = *t;

    if (!index)
        return -1;
    memset(index, 0xff, capacity * sizeof *index); /* every slot -1 */
    bigger.index = index;
    bigger.index_capacity = capacity;
    for (size_t id = 0; id < t->count; id++)
        *symbol_slot(&bigger, t->items[id].name, t->items[id].length) = (int32_t)id;
    free(t->index);
    t->index = index;
    t->index_capacity = capacity;
    return 0;
}

/* Returns the id of the symbol s[0..len), adding a copy when new, or -1
 * when out of memory. */
static int32_t symbol_intern(symbol_table *t, const char *s, size_t len)
{
    int32_t *slot;
    symbol *items;
    char *copy;

    if ((t->count + 1) * 2 > t->index_capacity && symbol_index_grow(t) < 0)
        return -1;
    slot = symbol_slot(t, s, len);
    if (*slot >= 0)
        return *slot;
    if (t->count >= INT32_MAX)
        return -1;
    items = grow_array(t->items, &t->capacity, t->count + 1, sizeof *items);
    if (!items)
        return -1;
    t->items = items;
    copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, s, len);
    copy[len] = '\0';
    t->items[t->count].name = copy;
    t->items[t->count].length = len;
    *slot = (int32_t)t->count;
    return (int32_t)t->count++;
}

/* Returns the id of the concatenation of symbols a and b, or -1. */
static int32_t symbol_concat(learn_state *st, int32_t a, int32_t b, const char *suffix)
{
    const symbol_table *t = &st->symbols;
    size_t a_len = t->items[a].length, b_len = b >= 0 ? t->items[b].length : strlen(suffix);
    const char *b_name = b >= 0 ? t->items[b].name : suffix;
    char *scratch = grow_array(st->scratch, &st->scratch_capacity, a_len + b_len + 1, 1);

    if (!scratch)
        return -1;
    st->scratch = scratch;
    memcpy(st->scratch, t->items[a].name, a_len);
    memcpy(st->scratch + a_len, b_name, b_len);
    return symbol_intern(&st->symbols, st->scratch, a_len + b_len);
}

static size_t pair_slot_hash(int32_t first, int32_t second)
{
    return (size_t)mix64(((uint64_t)(uint32_t)first << 32) | (uint32_t)second);
}

/* Returns the index slot of the pair, or the empty slot where it belongs. */
static int32_t *pair_slot(const learn_state *st, int32_t first, int32_t second)
{
    size_t mask = st->pair_index_capacity - 1;

    for (size_t i = pair_slot_hash(first, second) & mask;; i = (i + 1) & mask) {
        int32_t id = st->pair_index[i];

        if (id < 0 || (st->pairs[id].first == first && st->pairs[id].second == second))
            return &st->pair_index[i];
    }
}

static int pair_index_grow(learn_state *st)
{
    size_t capacity = st->pair_index_capacity ? st->pair_index_capacity * 2 : 4096;
    int32_t *index = malloc(capacity * sizeof *index);
    learn_state bigger = *st;

    if (!index)
        return -1;
    memset(index, 0xff, capacity * sizeof *index);
    bigger.pair_index = index;
    bigger.pair_index_capacity = capacity;
    for (size_t id = 0; id < st->n_pairs; id++)
        *pair_slot(&bigger, st->pairs[id].first, st->pairs[id].second) = (int32_t)id;
    free(st->pair_index);
    st->pair_index = index;
    st->pair_index_capacity = capacity;
    return 0;
}

/* Returns the id of the pair, adding it with count 0 when new, or -1 when
 * out of memory. Adding may move st->pairs. */
static int32_t pair_get(learn_state *st, int32_t first, int32_t second)
{
    int32_t *slot;
    pair_stat *pairs, *p;

    if ((st->n_pairs + 1) * 2 > st->pair_index_capacity && pair_index_grow(st) < 0)
        return -1;
    slot = pair_slot(st, first, second);
    if (*slot >= 0)
        return *slot;
    if (st->n_pairs >= INT32_MAX)
        return -1;
    pairs = grow_array(st->pairs, &st->pairs_capacity, st->n_pairs + 1, sizeof *pairs);
    if (!pairs)
        return -1;
    st->pairs = pairs;
    p = &st->pairs[st->n_pairs];
    memset(p, 0, sizeof *p);
    p->first = first;
    p->second = second;
    p->last_word = -1;
    *slot = (int32_t)st->n_pairs;
    return (int32_t)st->n_pairs++;
}

/* Records that word is in pair's word list. Returns 0 or -1. */
static int pair_add_word(pair_stat *p, int32_t word)
{
    int32_t *words;

    if (p->last_word == word)
        return 0;
    words = grow_array(p->words, &p->words_capacity, p->n_words + 1, sizeof *words);
    if (!words)
        return -1;
    p->words = words;
    p->words[p->n_words++] = word;
    p->last_word = word;
    return 0;
}

/* Adds delta to the pending change of pair's count. Returns 0 or -1. */
static int pair_add_delta(learn_state *st, int32_t pair, int64_t delta)
{
    pair_stat *p = &st->pairs[pair];

    if (!p->touched) {
        int32_t *touched = grow_array(st->touched, &st->touched_capacity, st->n_touched + 1,
                                      sizeof *touched);

        if (!touched)
            return -1;
        st->touched = touched;
        st->touched[st->n_touched++] = pair;
        p->touched = true;
    }
    p->delta += delta;
    return 0;
}

/* Returns whether heap entry a ranks above b: a higher count, or an equal
 * count and a greater pair (first symbol, then second, by strcmp, which is
 * code point order for UTF-8). */
static bool entry_above(const learn_state *st, heap_entry a, heap_entry b)
{
    const pair_stat *pa = &st->pairs[a.pair], *pb = &st->pairs[b.pair];
    int order;

    if (a.count != b.count)
        return a.count > b.count;
    if (a.pair == b.pair)
        return false;
    order = strcmp(st->symbols.items[pa->first].name, st->symbols.items[pb->first].name);
    if (order == 0)
        order = strcmp(st->symbols.items[pa->second].name, st->symbols.items[pb->second].name);
    return order > 0;
}

static int heap_push(learn_state *st, heap_entry e)
{
    heap_entry *heap = grow_array(st->heap, &st->heap_capacity, st->heap_size + 1, sizeof *heap);
    size_t i;

    if (!heap)
        return -1;
    st->heap = heap;
    i = st->heap_size++;
    while (i > 0 && entry_above(st, e, st->heap[(i - 1) / 2])) {
        st->heap[i] = st->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    st->heap[i] = e;
    return 0;
}

static void heap_pop(learn_state *st)
{
    heap_entry last = st->heap[--st->heap_size];
    size_t i = 0;

    for (;;) {
        size_t child = 2 * i + 1;

        if (child >= st->heap_size)
            break;
        if (child + 1 < st->heap_size && entry_above(st, st->heap[child + 1], st->heap[child]))
            child++;
        if (!entry_above(st, st->heap[child], last))
            break;
        st->heap[i] = st->heap[child];
        i = child;
    }
    if (st->heap_size > 0)
        st->heap[i] = last;
}

/* Applies the pending deltas and pushes a heap entry for every pair whose
 * count changed and is positive. Returns 0 or -1. */
static int flush_deltas(learn_state *st)
{
    for (size_t i = 0; i < st->n_touched; i++) {
        pair_stat *p = &st->pairs[st->touched[i]];
        int64_t delta = p->delta;

        p->count += delta;
        p->delta = 0;
        p->touched = false;
        assert(p->count >= 0);
        if (delta != 0 && p->count > 0) {
            heap_entry e = {p->count, st->touched[i]};

            if (heap_push(st, e) < 0)
                return -1;
        }
    }
    st->n_touched = 0;
    return 0;
}

static void learn_state_free(learn_state *st)
{
    for (size_t i = 0; i < st->symbols.count; i++)
        free(st->symbols.items[i].name);
    free(st->symbols.items);
    free(st->symbols.index);
    for (size_t i = 0; i < st->n_words; i++)
        free(st->words[i].symbols);
    free(st->words);
    for (size_t i = 0; i < st->n_pairs; i++)
        free(st->pairs[i].words);
    free(st->pairs);
    free(st->pair_index);
    free(st->heap);
    free(st->touched);
    free(st->scratch);
}

/* ---- Learning ---- */

/* Splits word into code point symbols, the last with BPE_END_OF_WORD
 * appended, into w. Returns 0 or -1. */
static int split_word(learn_state *st, const char *word, int64_t count, learn_word *w)
{
    size_t len = strlen(word);

    w->symbols = malloc(len * sizeof *w->symbols);
    if (!w->symbols)
        return -1;
    w->length = 0;
    w->count = count;
    w->visited = 0;
    for (size_t i = 0; i < len;) {
        bool valid;
        size_t k = char_length(word + i, len - i, &valid);
        int32_t id = symbol_intern(&st->symbols, word + i, k);

        if (id < 0)
            return -1;
        w->symbols[w->length++] = id;
        i += k;
    }
    w->symbols[w->length - 1] = symbol_concat(st, w->symbols[w->length - 1], -1, BPE_END_OF_WORD);
    return w->symbols[w->length - 1] < 0 ? -1 : 0;
}

/* Builds the words of learner (those of two or more code points, since
 * others have no pairs), counts their pairs and fills the heap. Returns 0
 * or -1. */
static int learn_state_init(learn_state *st, const bpe_learner *learner)
{
    st->words = malloc((learner->size ? learner->size : 1) * sizeof *st->words);
    if (!st->words)
        return -1;
    for (size_t i = 0; i < learner->capacity; i++) {
        const word_slot *s = &learner->slots[i];
        learn_word *w = &st->words[st->n_words];

        if (!s->word)
            continue;
        if (split_word(st, s->word, (int64_t)s->count, w) < 0) {
            free(w->symbols);
            return -1;
        }
        if (w->length < 2) {
            free(w->symbols);
            continue;
        }
        st->n_words++;
    }

    for (size_t wi = 0; wi < st->n_words; wi++) {
        learn_word *w = &st->words[wi];

        for (size_t i = 0; i + 1 < w->length; i++) {
            int32_t pair = pair_get(st, w->symbols[i], w->symbols[i + 1]);

            if (pair < 0 || pair_add_word(&st->pairs[pair], (int32_t)wi) < 0)
                return -1;
            st->pairs[pair].count += w->count;
        }
    }
    for (size_t id = 0; id < st->n_pairs; id++) {
        heap_entry e = {st->pairs[id].count, (int32_t)id};

        if (heap_push(st, e) < 0)
            return -1;
    }
    return 0;
}

static bool word_has_pair(const learn_word *w, int32_t first, int32_t second)
{
    for (size_t i = 0; i + 1 < w->length; i++) {
        if (w->symbols[i] == first && w->symbols[i + 1] == second)
            return true;
    }
    return false;
}

/* Adds sign * count to the pending change of every pair of w, and when
 * indexing, records w in the word lists of the pairs containing symbol
 * indexed. Returns 0 or -1. */
static int count_word_pairs(learn_state *st, int32_t word, int64_t sign, int32_t indexed)
{
    const learn_word *w = &st->words[word];

    for (size_t i = 0; i + 1 < w->length; i++) {
        int32_t a = w->symbols[i], b = w->symbols[i + 1];
        int32_t pair = pair_get(st, a, b);

        if (pair < 0 || pair_add_delta(st, pair, sign * w->count) < 0)
            return -1;
        if ((a == indexed || b == indexed) && pair_add_word(&st->pairs[pair], word) < 0)
            return -1;
    }
    return 0;
}

/* Replaces every occurrence of pair in the words containing it by the
 * merged symbol, left to right, and updates the pair counts. step is the
 * 1-based merge number. Returns 0 or -1. */
static int merge_pair(learn_state *st, int32_t pair, size_t step)
{
    int32_t first = st->pairs[pair].first, second = st->pairs[pair].second;
    int32_t merged = symbol_concat(st, first, second, NULL);
    /* No pair of the merged symbol equals this pair, so its word list does
     * not grow while it is walked (st->pairs itself may move). */
    const int32_t *list = st->pairs[pair].words;
    size_t n_list = st->pairs[pair].n_words;

    if (merged < 0)
        return -1;
    for (size_t k = 0; k < n_list; k++) {
        learn_word *w = &st->words[list[k]];
        size_t new_length = 0;

        if (w->visited == step || !word_has_pair(w, first, second))
            continue;
        w->visited = step;

        /* The pairs of the word before and after the merge. Every new pair
         * without the merged symbol was already a pair of the word, so only
         * pairs with it need the word indexed. */
        if (count_word_pairs(st, list[k], -1, -1) < 0)
            return -1;
        for (size_t i = 0; i < w->length;) {
            if (i + 1 < w->length && w->symbols[i] == first && w->symbols[i + 1] == second) {
                w->symbols[new_length++] = merged;
                i += 2;
            } else {
                w->symbols[new_length++] = w->symbols[i++];
            }
        }
        w->length = new_length;
        if (count_word_pairs(st, list[k], +1, merged) < 0)
            return -1;
    }

    /* Every occurrence is gone. The pair may come back only through a new
     * symbol spelled like first or second, which indexes its words anew. */
    st->pairs[pair].n_words = 0;
    st->pairs[pair].last_word = -1;
    if (flush_deltas(st) < 0)
        return -1;
    assert(st->pairs[pair].count == 0);
    return 0;
}

/* Pops stale heap entries. Returns the id of the most frequent pair with a
 * positive count, or -1 when there is none. */
static int32_t best_pair(learn_state *st)
{
    while (st->heap_size > 0) {
        heap_entry top = st->heap[0];

        if (top.count > 0 && top.count == st->pairs[top.pair].count)
            return top.pair;
        heap_pop(st);
    }
    return -1;
}

/* Returns canonical codes text for the merges (pairs of symbol ids), or
 * NULL when out of memory. */
static char *merges_text(const learn_state *st, const int32_t *merges, size_t n, size_t *len)
{
    const symbol_table *t = &st->symbols;
    size_t total = VERSION_LINE_LEN, pos = VERSION_LINE_LEN;
    char *text;

    for (size_t i = 0; i < n; i++)
        total += t->items[merges[2 * i]].length + t->items[merges[2 * i + 1]].length + 2;
    text = malloc(total + 1);
    if (!text)
        return NULL;
    memcpy(text, VERSION_LINE, VERSION_LINE_LEN);
    for (size_t i = 0; i < n; i++) {
        int32_t a = merges[2 * i], b = merges[2 * i + 1];

        memcpy(text + pos, t->items[a].name, t->items[a].length);
        pos += t->items[a].length;
        text[pos++] = ' ';
        memcpy(text + pos, t->items[b].name, t->items[b].length);
        pos += t->items[b].length;
        text[pos++] = '\n';
    }
    text[pos] = '\0';
    *len = pos;
    return text;
}

bpe *bpe_learner_learn(const bpe_learner *learner, size_t n_merges, uint64_t min_frequency,
                       char *err, size_t err_size)
{
    learn_state st = {0};
    int32_t *merges = NULL; /* [2 * n_learned] first and second symbol ids */
    size_t n_learned = 0, merges_capacity = 0, text_len;
    char *text;
    bpe *codes = NULL;

    if (learn_state_init(&st, learner) < 0)
        goto out_of_memory;

    while (n_learned < n_merges) {
        int32_t pair = best_pair(&st);
        int32_t *grown;

        if (pair < 0 || (uint64_t)st.pairs[pair].count < min_frequency)
            break;
        heap_pop(&st);
        grown = grow_array(merges, &merges_capacity, 2 * n_learned + 2, sizeof *merges);
        if (!grown)
            goto out_of_memory;
        merges = grown;
        merges[2 * n_learned] = st.pairs[pair].first;
        merges[2 * n_learned + 1] = st.pairs[pair].second;
        n_learned++;
        if (merge_pair(&st, pair, n_learned) < 0)
            goto out_of_memory;
    }

    text = merges_text(&st, merges, n_learned, &text_len);
    if (!text)
        goto out_of_memory;
    codes = codes_new(2, text, text_len, n_learned);
    if (!codes)
        goto out_of_memory;
    goto cleanup;

out_of_memory:
    set_error(err, err_size, "out of memory learning BPE merges (%zu learned)", n_learned);
cleanup:
    free(merges);
    learn_state_free(&st);
    return codes;
}
