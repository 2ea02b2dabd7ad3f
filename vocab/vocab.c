/* Word vocabularies: a token counter and an immutable token <-> id map.
 *
 * Both are open-addressing hash tables with linear probing, keyed by the
 * 64-bit FNV-1a hash of the token bytes and kept at most half full. A
 * vocabulary is never modified after it is built, so concurrent lookups
 * need no locking. Tokens are compared as NUL-terminated byte strings: no
 * normalization or case folding happens here.
 */
#include "vocab.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *const special_tokens[VOCAB_N_SPECIAL] = {
    [VOCAB_PAD] = VOCAB_PAD_TOKEN,
    [VOCAB_UNK] = VOCAB_UNK_TOKEN,
    [VOCAB_BOS] = VOCAB_BOS_TOKEN,
    [VOCAB_EOS] = VOCAB_EOS_TOKEN,
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3u;
    }
    return h;
}

static bool is_special(const char *token)
{
    for (int i = 0; i < VOCAB_N_SPECIAL; i++) {
        if (strcmp(token, special_tokens[i]) == 0)
            return true;
    }
    return false;
}

/* ---- Counter ---- */

/* strdup is POSIX, not C11. Returns NULL when out of memory. */
static char *copy_string(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = malloc(len);

    return copy ? memcpy(copy, s, len) : NULL;
}

typedef struct {
    char *token; /* NULL for an empty slot */
    uint64_t hash;
    uint64_t count;
} counter_slot;

struct vocab_counter {
    counter_slot *slots;
    size_t capacity; /* power of two */
    size_t size;     /* occupied slots */
};

#define COUNTER_INITIAL_CAPACITY 1024

vocab_counter *vocab_counter_new(void)
{
    vocab_counter *c = malloc(sizeof *c);

    if (!c)
        return NULL;
    c->slots = calloc(COUNTER_INITIAL_CAPACITY, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return NULL;
    }
    c->capacity = COUNTER_INITIAL_CAPACITY;
    c->size = 0;
    return c;
}

/* Returns the slot of token, or the empty slot where it belongs. */
static counter_slot *counter_find(const vocab_counter *c, const char *token, uint64_t hash)
{
    size_t mask = c->capacity - 1;

    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        counter_slot *s = &c->slots[i];

        if (!s->token || (s->hash == hash && strcmp(s->token, token) == 0))
            return s;
    }
}

/* Doubles the table. Returns 0, or -1 when out of memory (table intact). */
static int counter_grow(vocab_counter *c)
{
    vocab_counter bigger = {NULL, c->capacity * 2, c->size};

    if (bigger.capacity < c->capacity)
        return -1;
    bigger.slots = calloc(bigger.capacity, sizeof *bigger.slots);
    if (!bigger.slots)
        return -1;
    for (size_t i = 0; i < c->capacity; i++) {
        if (c->slots[i].token)
            *counter_find(&bigger, c->slots[i].token, c->slots[i].hash) = c->slots[i];
    }
    free(c->slots);
    *c = bigger;
    return 0;
}

int vocab_counter_add(vocab_counter *counter, const char *token)
{
    uint64_t hash = fnv1a(token);
    counter_slot *s = counter_find(counter, token, hash);

    if (s->token) {
        s->count++;
        return 0;
    }
    if ((counter->size + 1) * 2 > counter->capacity) {
        if (counter_grow(counter) < 0)
            return -1;
        s = counter_find(counter, token, hash);
    }
    s->token = copy_string(token);
    if (!s->token)
        return -1;
    s->hash = hash;
    s->count = 1;
    counter->size++;
    return 0;
}

uint64_t vocab_counter_count(const vocab_counter *counter, const char *token)
{
    const counter_slot *s = counter_find(counter, token, fnv1a(token));

    return s->token ? s->count : 0;
}

size_t vocab_counter_size(const vocab_counter *counter)
{
    return counter->size;
}

void vocab_counter_free(vocab_counter *counter)
{
    if (!counter)
        return;
    for (size_t i = 0; i < counter->capacity; i++)
        free(counter->slots[i].token);
    free(counter->slots);
    free(counter);
}

/* ---- Vocabulary ---- */

struct vocab {
    char **tokens;   /* [size] pointers into strings */
    char *strings;   /* every token's bytes, NUL-terminated, one after another */
    size_t size;
    int32_t *index;  /* [capacity] id, or -1 for an empty slot */
    size_t capacity; /* power of two, at least 2 * size */
};

void vocab_free(vocab *v)
{
    if (!v)
        return;
    free(v->tokens);
    free(v->strings);
    free(v->index);
    free(v);
}

/* Returns the index slot holding token's id, or the empty slot where it
 * belongs. */
static int32_t *index_find(const vocab *v, const char *token)
{
    size_t mask = v->capacity - 1;

    for (size_t i = fnv1a(token) & mask;; i = (i + 1) & mask) {
        int32_t id = v->index[i];

        if (id < 0 || strcmp(v->tokens[id], token) == 0)
            return &v->index[i];
    }
}

/* Builds a vocabulary whose id i is tokens[i], copying the strings.
 * Returns NULL when a token repeats, n exceeds INT32_MAX or memory runs
 * out. */
static vocab *vocab_new(const char *const *tokens, size_t n)
{
    vocab *v;
    size_t bytes = 0, pos = 0, capacity = 16;

    if (n > INT32_MAX)
        return NULL;
    while (capacity < 2 * n)
        capacity *= 2;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(tokens[i]) + 1;

    v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->tokens = malloc(n * sizeof *v->tokens);
    v->strings = malloc(bytes ? bytes : 1);
    v->index = malloc(capacity * sizeof *v->index);
    v->capacity = capacity;
    if (!v->tokens || !v->strings || !v->index) {
        vocab_free(v);
        return NULL;
    }
    memset(v->index, 0xff, capacity * sizeof *v->index); /* every slot -1 */

    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(tokens[i]) + 1;
        int32_t *slot;

        v->tokens[i] = memcpy(v->strings + pos, tokens[i], len);
        pos += len;
        slot = index_find(v, tokens[i]);
        if (*slot >= 0) {
            vocab_free(v);
            return NULL;
        }
        *slot = (int32_t)i;
    }
    v->size = n;
    return v;
}

/* Orders counted tokens by count, highest first, then by bytes. */
static int compare_slots(const void *a, const void *b)
{
    const counter_slot *x = *(const counter_slot *const *)a;
    const counter_slot *y = *(const counter_slot *const *)b;

    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->token, y->token);
}

vocab *vocab_build(const vocab_counter *counter, size_t max_size, uint64_t min_count)
{
    const counter_slot **candidates = malloc((counter->size + 1) * sizeof *candidates);
    const char **tokens = malloc((counter->size + VOCAB_N_SPECIAL) * sizeof *tokens);
    size_t n_candidates = 0, n = 0, limit;
    vocab *v = NULL;

    if (!candidates || !tokens)
        goto cleanup;

    /* Candidates: frequent enough, and not spelled like a special token,
     * whose id is fixed. */
    for (size_t i = 0; i < counter->capacity; i++) {
        const counter_slot *s = &counter->slots[i];

        if (s->token && s->count >= min_count && !is_special(s->token))
            candidates[n_candidates++] = s;
    }
    qsort(candidates, n_candidates, sizeof *candidates, compare_slots);

    limit = n_candidates;
    if (max_size > 0) {
        size_t room = max_size > VOCAB_N_SPECIAL ? max_size - VOCAB_N_SPECIAL : 0;

        if (limit > room)
            limit = room;
    }
    for (int i = 0; i < VOCAB_N_SPECIAL; i++)
        tokens[n++] = special_tokens[i];
    for (size_t i = 0; i < limit; i++)
        tokens[n++] = candidates[i]->token;
    v = vocab_new(tokens, n);

cleanup:
    free(candidates);
    free(tokens);
    return v;
}

vocab *vocab_from_tokens(const char *const *tokens, size_t n)
{
    if (n < VOCAB_N_SPECIAL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!tokens[i] || !*tokens[i])
            return NULL;
        if (i < VOCAB_N_SPECIAL && strcmp(tokens[i], special_tokens[i]) != 0)
            return NULL;
    }
    return vocab_new(tokens, n);
}

int32_t vocab_id(const vocab *v, const char *token)
{
    int32_t id;

    if (!token)
        return VOCAB_UNK;
    id = *index_find(v, token);
    return id >= 0 ? id : VOCAB_UNK;
}

const char *vocab_token(const vocab *v, int32_t id)
{
    if (id < 0 || (size_t)id >= v->size)
        return NULL;
    return v->tokens[id];
}

size_t vocab_size(const vocab *v)
{
    return v->size;
}
