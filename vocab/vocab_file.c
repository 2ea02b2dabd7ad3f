/* Vocabulary files: one token per line in id order.
 *
 * A written file starts with the four special tokens, so reading it back
 * gives the same ids. Files made by other tools often add a count after a
 * tab and omit the special tokens. Reading keeps the part before the first
 * tab, and puts the special tokens first when the file has none of them.
 */
#include "vocab.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

static const char *const specials[VOCAB_N_SPECIAL] = {VOCAB_PAD_TOKEN, VOCAB_UNK_TOKEN,
                                                      VOCAB_BOS_TOKEN, VOCAB_EOS_TOKEN};

int vocab_write(const vocab *v, const char *path, char *err, size_t err_size)
{
    char tmp[4096];
    FILE *f;
    int failed = 0;

    struct stat st;
    /* A link, device or pipe (/dev/stdout, a FIFO) is written in place. */
    int in_place = lstat(path, &st) == 0 && !S_ISREG(st.st_mode);

    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp) ||
        (!in_place && snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))) {
        snprintf(err, err_size, "vocabulary path too long: %s", path);
        return -1;
    }
    if (!(f = fopen(tmp, "w"))) {
        snprintf(err, err_size, "cannot write vocabulary %s: %s", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < vocab_size(v) && !failed; i++)
        failed = fprintf(f, "%s\n", vocab_token(v, (int32_t)i)) < 0;
    if (fclose(f) != 0)
        failed = 1;
    if (failed || (!in_place && rename(tmp, path) != 0)) {
        snprintf(err, err_size, "cannot write vocabulary %s: %s", path, strerror(errno));
        if (!in_place)
            unlink(tmp);
        return -1;
    }
    return 0;
}

static int push(char ***tokens, size_t *n, size_t *cap, const char *s, size_t len)
{
    if (*n == *cap) {
        size_t grown = *cap ? *cap * 2 : 1024;
        char **t = realloc(*tokens, grown * sizeof(**tokens));

        if (!t)
            return -1;
        *tokens = t;
        *cap = grown;
    }
    if (!((*tokens)[*n] = malloc(len + 1)))
        return -1;
    memcpy((*tokens)[*n], s, len);
    (*tokens)[*n][len] = '\0';
    (*n)++;
    return 0;
}

static int valid_utf8(const char *s, size_t len)
{
    utf8proc_int32_t cp;

    for (size_t i = 0; i < len;) {
        utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                              (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0)
            return 0;
        i += (size_t)n;
    }
    return 1;
}

/* Removes the final newline of line (len bytes, the lineno-th of its file)
 * and, on the first line, a UTF-8 byte-order mark. Returns the new length. */
static size_t drop_newline_and_bom(char *line, size_t len, size_t lineno)
{
    if (len && line[len - 1] == '\n')
        len--;
    if (lineno == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        memmove(line, line + 3, len - 3);
        len -= 3;
    }
    return len;
}

vocab *vocab_read(const char *path, char *err, size_t err_size)
{
    FILE *f = fopen(path, "r");
    char **tokens = NULL, *line = NULL;
    size_t n = 0, cap = 0, line_cap = 0, lineno = 0;
    ssize_t got;
    int n_specials = 0, failed = 0;
    vocab *v = NULL;

    if (!f) {
        snprintf(err, err_size, "cannot read vocabulary %s: %s", path, strerror(errno));
        return NULL;
    }
    for (int i = 0; i < VOCAB_N_SPECIAL && !failed; i++)
        failed = push(&tokens, &n, &cap, specials[i], strlen(specials[i])) ? 1 : 0;
    while (!failed && (got = getline(&line, &line_cap, f)) != -1) {
        size_t len = (size_t)got;

        len = drop_newline_and_bom(line, len, ++lineno);
        if (len && line[len - 1] == '\r')
            len--;
        char *tab = memchr(line, '\t', len);
        if (tab)
            len = (size_t)(tab - line);
        if (!valid_utf8(line, len)) {
            snprintf(err, err_size, "vocabulary %s, line %zu: the token is not valid UTF-8; "
                                    "save the file as UTF-8",
                     path, lineno);
            failed = 2;
            break;
        }
        if (len == 0 || memchr(line, '\0', len) || memchr(line, ' ', len)) {
            snprintf(err, err_size, "vocabulary %s, line %zu: %s; each line must hold one token "
                                    "(optionally followed by a tab and a count)",
                     path, lineno, len == 0 ? "empty token" : "token holds a space or NUL byte");
            failed = 2;
            break;
        }
        int special = -1;
        for (int i = 0; i < VOCAB_N_SPECIAL; i++) {
            if (strlen(specials[i]) == len && memcmp(line, specials[i], len) == 0)
                special = i;
        }
        if (special >= 0) {
            if ((size_t)special != lineno - 1 || n_specials != special) {
                snprintf(err, err_size, "vocabulary %s, line %zu: special token %s must be on "
                                        "line %d, after %s",
                         path, lineno, specials[special], special + 1,
                         special ? specials[special - 1] : "nothing");
                failed = 2;
                break;
            }
            n_specials++;
            continue;
        }
        if (n_specials != 0 && n_specials != VOCAB_N_SPECIAL) {
            snprintf(err, err_size, "vocabulary %s, line %zu: the special tokens %s %s %s %s "
                                    "must all come first, or none of them appear",
                     path, lineno, specials[0], specials[1], specials[2], specials[3]);
            failed = 2;
            break;
        }
        failed = push(&tokens, &n, &cap, line, len) ? 1 : 0;
    }
    if (!failed && ferror(f)) {
        snprintf(err, err_size, "cannot read vocabulary %s: %s", path, strerror(errno));
        failed = 2;
    }
    fclose(f);
    free(line);
    if (!failed && n == VOCAB_N_SPECIAL) {
        snprintf(err, err_size, "vocabulary %s holds no token besides the special ones", path);
        failed = 2;
    }
    if (!failed && !(v = vocab_from_tokens((const char *const *)tokens, n))) {
        /* vocab_from_tokens fails on duplicates or memory, so look for a duplicate to name. */
        snprintf(err, err_size, "vocabulary %s lists a token twice or is too large", path);
        for (size_t i = VOCAB_N_SPECIAL; i < n && n < 200000; i++) {
            for (size_t j = VOCAB_N_SPECIAL; j < i; j++) {
                if (strcmp(tokens[i], tokens[j]) == 0) {
                    snprintf(err, err_size, "vocabulary %s lists token '%s' twice (entries %zu "
                                            "and %zu); each token may appear once",
                             path, tokens[i], j, i);
                    i = n;
                    break;
                }
            }
        }
        failed = 2;
    }
    if (failed == 1)
        snprintf(err, err_size, "out of memory reading vocabulary %s", path);
    for (size_t i = 0; i < n; i++)
        free(tokens[i]);
    free(tokens);
    return failed ? NULL : v;
}

int vocab_read_subwords(const char *path, uint64_t threshold, char ***tokens, size_t *n,
                        char *err, size_t err_size)
{
    FILE *f = fopen(path, "r");
    char **out = NULL, *line = NULL;
    size_t count = 0, cap = 0, line_cap = 0, lineno = 0;
    ssize_t got;
    int failed = 0;

    *tokens = NULL;
    *n = 0;
    if (!f) {
        snprintf(err, err_size, "cannot read vocabulary %s: %s", path, strerror(errno));
        return -1;
    }
    while (!failed && (got = getline(&line, &line_cap, f)) != -1) {
        size_t len = (size_t)got, tok_len;
        const char *field;
        char *end;
        unsigned long long seen;

        len = drop_newline_and_bom(line, len, ++lineno);
        /* Trailing blanks and a CR are dropped, as subword-nmt's
         * apply_bpe.py strips them, so "tok 5 " reads as "tok 5". */
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
            len--;
        line[len] = '\0';
        tok_len = strcspn(line, " \t");
        if (tok_len == 0 || memchr(line, '\0', len) || !valid_utf8(line, tok_len)) {
            snprintf(err, err_size, "vocabulary %s, line %zu: %s; each line must hold one "
                                    "UTF-8 token, optionally followed by a space or tab and "
                                    "a count",
                     path, lineno,
                     tok_len == 0 ? "empty token" : memchr(line, '\0', len) ? "NUL byte"
                                                                            : "invalid UTF-8");
            failed = 2;
            break;
        }
        field = line + tok_len;
        field += strspn(field, " \t");
        if (*field == '\0' && threshold == 0) {
            failed = push(&out, &count, &cap, line, tok_len) ? 1 : 0;
            continue;
        }
        errno = 0;
        seen = strtoull(field, &end, 10);
        if (*field == '\0') {
            snprintf(err, err_size,
                     "vocabulary %s, line %zu: no count after the token '%.40s'; a vocabulary "
                     "threshold needs 'token count' lines, as subword-nmt's get_vocab.py writes",
                     path, lineno, line);
            failed = 2;
            break;
        }
        if (*field == '-' || end == field || *end != '\0' || errno) {
            snprintf(err, err_size,
                     "vocabulary %s, line %zu: the count '%.40s' is %s; write the token, a "
                     "space and its count as a whole number",
                     path, lineno, field,
                     errno == ERANGE ? "too large" : "not a whole number");
            failed = 2;
            break;
        }
        if (seen >= threshold)
            failed = push(&out, &count, &cap, line, tok_len) ? 1 : 0;
    }
    if (!failed && ferror(f)) {
        snprintf(err, err_size, "cannot read vocabulary %s: %s", path, strerror(errno));
        failed = 2;
    }
    fclose(f);
    free(line);
    if (failed == 1)
        snprintf(err, err_size, "out of memory reading vocabulary %s", path);
    if (failed) {
        for (size_t i = 0; i < count; i++)
            free(out[i]);
        free(out);
        return -1;
    }
    *tokens = out;
    *n = count;
    return 0;
}

int vocab_compare(const vocab *a, const vocab *b, char *msg, size_t msg_size)
{
    size_t na = vocab_size(a), nb = vocab_size(b);

    for (size_t i = 0; i < na && i < nb; i++) {
        const char *ta = vocab_token(a, (int32_t)i), *tb = vocab_token(b, (int32_t)i);

        if (strcmp(ta, tb) != 0) {
            snprintf(msg, msg_size, "%zu entries against %zu, and entry %zu (line %zu of a "
                                    "vocabulary file) is '%s' against '%s'",
                     na, nb, i, i + 1, ta, tb);
            return 1;
        }
    }
    if (na != nb) {
        snprintf(msg, msg_size, "%zu entries against %zu (the first %zu agree)", na, nb,
                 na < nb ? na : nb);
        return 1;
    }
    return 0;
}
