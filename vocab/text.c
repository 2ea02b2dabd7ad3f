/* Text handling: NFC normalization with replacement of invalid UTF-8, and a
 * tokenizer and detokenizer modelled on Moses' tokenizer.perl and
 * detokenizer.perl for English and German, without their escaping.
 *
 * Characters are classified by Unicode general category (utf8proc), so the
 * rules work for any alphabetic script: letters and marks count as letters,
 * N* as numbers. Hyphens inside words are never split.
 *
 * The tokenizer moves whole extended grapheme clusters (Unicode Standard
 * Annex #29, Unicode 15.0 in utf8proc 2.8), never single code points, so no
 * split separates a base character from its combining marks or cuts an
 * emoji sequence. Numbers, URLs, e-mail addresses and emoji runs are found
 * before the Moses rules apply and are never split inside.
 *
 * Round trips: the detokenizer rebuilds spacing from token shapes alone, so
 * the tokens must carry whatever spacing it cannot guess. A no-break space
 * (U+00A0, U+202F, U+2007) between digit groups or before '%' stays inside
 * the number token ("10 000"), because a detokenizer that saw two tokens
 * would join them with a plain space. Punctuation carrying combining marks
 * joins like the bare punctuation.
 *
 * Limits: other dropped spacing cannot be restored. Runs of whitespace and
 * U+00A0 between words come back as one space, "a/b" and "a / b" both come
 * back as "a/b", "50 %" comes back as "50%", and an emoji written against a
 * word ("great👍") comes back after a space. tests/test_text.c checks that
 * at least 99% of the lines of Multi30k's test_2016_flickr survive the
 * round trip in English and German, and that a table of hard cases
 * survives exactly. Scripts written without spaces (Chinese, Japanese,
 * Thai) are not segmented, and sentence splitting is left to the caller.
 */
#include "text.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define REPLACEMENT_CHAR 0xFFFD
#define RIGHT_SINGLE_QUOTE 0x2019 /* also the typographic apostrophe */

/* ---- UTF-8 decoding ---- */

/* Returns the length of the maximal subpart of the ill-formed sequence at
 * s[0..n), n > 0: the lead byte plus the continuation bytes that still fit
 * the ranges of a well-formed sequence (Unicode Standard, table 3-7).
 * Replacing each maximal subpart by one U+FFFD follows section 3.9 of the
 * standard and the W3C Encoding Standard, and matches Python's "replace"
 * error handler. */
static size_t invalid_run_length(const uint8_t *s, size_t n)
{
    uint8_t lead = s[0];
    uint8_t lo = 0x80, hi = 0xBF;
    size_t need, k;

    if (lead >= 0xC2 && lead <= 0xDF)
        need = 1;
    else if (lead >= 0xE0 && lead <= 0xEF)
        need = 2;
    else if (lead >= 0xF0 && lead <= 0xF4)
        need = 3;
    else
        return 1;
    if (lead == 0xE0)
        lo = 0xA0; /* no overlong 3-byte forms */
    else if (lead == 0xED)
        hi = 0x9F; /* no surrogates */
    else if (lead == 0xF0)
        lo = 0x90; /* no overlong 4-byte forms */
    else if (lead == 0xF4)
        hi = 0x8F; /* nothing above U+10FFFF */

    for (k = 1; k <= need && k < n && s[k] >= lo && s[k] <= hi; k++) {
        lo = 0x80;
        hi = 0xBF;
    }
    return k;
}

/* Decodes the code point at s[0..n), n > 0, into *cp and returns the number
 * of bytes consumed. An ill-formed sequence yields U+FFFD and sets *invalid. */
static size_t decode_one(const uint8_t *s, size_t n, int32_t *cp, bool *invalid)
{
    utf8proc_ssize_t k = utf8proc_iterate(s, n < 4 ? (utf8proc_ssize_t)n : 4, cp);

    if (k > 0) {
        *invalid = false;
        return (size_t)k;
    }
    *cp = REPLACEMENT_CHAR;
    *invalid = true;
    return invalid_run_length(s, n);
}

char *text_normalize(const char *s, size_t len, size_t *n_invalid)
{
    const uint8_t *in = (const uint8_t *)s;
    utf8proc_uint8_t *clean, *nfc = NULL;
    utf8proc_ssize_t nfc_len;
    size_t pos = 0, bad = 0;

    /* An invalid byte grows to at most 3 bytes (U+FFFD), and valid
     * sequences keep their length. */
    if (len > (size_t)(PTRDIFF_MAX / 4))
        return NULL;
    clean = malloc(len * 3 + 1);
    if (!clean)
        return NULL;

    /* Decode and validate, replacing ill-formed sequences and NUL bytes,
     * which would cut the NUL-terminated result short. */
    for (size_t i = 0; i < len;) {
        int32_t cp;
        bool invalid;

        i += decode_one(in + i, len - i, &cp, &invalid);
        if (cp == 0) {
            cp = REPLACEMENT_CHAR;
            invalid = true;
        }
        bad += invalid;
        pos += (size_t)utf8proc_encode_char(cp, clean + pos);
    }
    clean[pos] = '\0';

    /* Canonical composition only: compatibility forms (ligatures, full-width
     * letters, superscripts) are kept as they are. */
    nfc_len = utf8proc_map(clean, (utf8proc_ssize_t)pos, &nfc, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    free(clean);
    if (nfc_len < 0)
        return NULL;
    if (n_invalid)
        *n_invalid += bad;
    return (char *)nfc;
}

/* ---- Token lists ---- */

/* strdup is POSIX, not C11. Returns NULL when out of memory. */
static char *copy_string(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = malloc(len);

    return copy ? memcpy(copy, s, len) : NULL;
}

/* Appends s, which the list takes over. Returns 0, or -1 (s untouched) when
 * out of memory. */
static int list_push_owned(tok_list *list, char *s)
{
    if (list->count == list->capacity) {
        size_t cap = list->capacity ? list->capacity * 2 : 16;
        char **items = realloc(list->items, cap * sizeof *items);

        if (!items)
            return -1;
        list->items = items;
        list->capacity = cap;
    }
    list->items[list->count++] = s;
    return 0;
}

int tok_list_push(tok_list *list, const char *token)
{
    char *copy = copy_string(token);

    if (!copy)
        return -1;
    if (list_push_owned(list, copy) < 0) {
        free(copy);
        return -1;
    }
    return 0;
}

void tok_list_clear(tok_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
    list->capacity = 0;
}

/* Frees the tokens from index keep on, undoing a failed append. */
static void list_truncate(tok_list *list, size_t keep)
{
    while (list->count > keep)
        free(list->items[--list->count]);
}

/* ---- Character classes ---- */

enum char_class {
    CH_SPACE,   /* separates tokens and is dropped */
    CH_LETTER,  /* L* and M*: Perl's \p{IsAlpha} for the tokenizer's purposes */
    CH_NUMBER,  /* N* */
    CH_WORD,    /* other characters kept inside words: Pc, Cf, Co, unassigned */
    CH_PERIOD,  /* '.' */
    CH_COMMA,   /* ',' */
    CH_APOS,    /* ASCII apostrophe and U+2019 */
    CH_HYPHEN,  /* ASCII '-', never split off */
    CH_SPECIAL, /* other punctuation and symbols, always split off */
    CH_EMOJI,   /* an emoji cluster; adjacent ones form one token */
    CH_GLUE,    /* a no-break space kept inside a number ("10 000") */
};

static enum char_class classify(int32_t cp)
{
    switch (cp) {
    case '.':
        return CH_PERIOD;
    case ',':
        return CH_COMMA;
    case '\'':
    case RIGHT_SINGLE_QUOTE:
        return CH_APOS;
    case '-':
        return CH_HYPHEN;
    case 0x200B: /* zero width space */
    case 0xFEFF: /* byte order mark */
        return CH_SPACE;
    default:
        break;
    }

    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
        return CH_LETTER;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return CH_NUMBER;
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_CC:
        return CH_SPACE;
    case UTF8PROC_CATEGORY_PC: /* '_' as in "Flugbegleiter_in"; Moses splits it */
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
        return CH_WORD;
    default:
        return CH_SPECIAL;
    }
}

/* True when lang names the language code (e.g. "en" matches "en" and
 * "en-GB"). */
static bool lang_is(const char *lang, const char *code)
{
    size_t n = strlen(code);

    return lang && strncmp(lang, code, n) == 0 &&
           (lang[n] == '\0' || lang[n] == '-' || lang[n] == '_');
}

/* ---- Grapheme clusters ---- */

/* Decodes NUL-terminated text into a malloc'd code point array; ill-formed
 * UTF-8 becomes U+FFFD. Returns NULL when out of memory. */
static int32_t *decode_text(const char *text, size_t *n_out)
{
    size_t len = strlen(text), n = 0;
    int32_t *cps = malloc((len + 1) * sizeof *cps);

    if (!cps)
        return NULL;
    for (size_t i = 0; i < len;) {
        bool invalid;

        i += decode_one((const uint8_t *)text + i, len - i, &cps[n++], &invalid);
    }
    *n_out = n;
    return cps;
}

/* Text cut into units, the pieces the tokenizer never splits: extended
 * grapheme clusters, except that each whitespace code point is a unit of
 * its own. Unicode puts combining marks after a space into the space's
 * cluster, but tokens never contain whitespace, so such marks form a unit
 * that the space does not belong to. */
typedef struct {
    int32_t *cps;  /* code points, first[n] of them */
    size_t *first; /* n + 1 entries: unit k is cps[first[k]..first[k + 1]) */
    int32_t *base; /* n entries: the first code point of each unit */
    uint8_t *cls;  /* n entries: the enum char_class of each unit */
    size_t n;      /* number of units */
} unit_text;

#define COMBINING_KEYCAP 0x20E3
#define SKIN_TONE_FIRST 0x1F3FB /* emoji modifiers, Fitzpatrick types 1-2 to 6 */
#define SKIN_TONE_LAST 0x1F3FF

/* True when the cluster cps[0..len) is an emoji. Such a cluster starts
 * with an Extended_Pictographic character (which covers ZWJ sequences and
 * skin tones, and also © ® ™), a regional indicator (flags) or a lone skin
 * tone modifier, or it is a keycap such as "1️⃣". */
static bool is_emoji_cluster(const int32_t *cps, size_t len)
{
    int32_t first = cps[0];
    int bound = utf8proc_get_property(first)->boundclass;

    if (bound == UTF8PROC_BOUNDCLASS_EXTENDED_PICTOGRAPHIC ||
        bound == UTF8PROC_BOUNDCLASS_REGIONAL_INDICATOR ||
        (first >= SKIN_TONE_FIRST && first <= SKIN_TONE_LAST))
        return true;
    if ((first >= '0' && first <= '9') || first == '#' || first == '*') {
        for (size_t i = 1; i < len; i++) {
            if (cps[i] == COMBINING_KEYCAP)
                return true;
        }
    }
    return false;
}

/* Returns the code point of unit k when the unit is that one code point,
 * else -1 (also when k is past the end). */
static int32_t unit_char(const unit_text *u, size_t k)
{
    return k < u->n && u->first[k + 1] - u->first[k] == 1 ? u->base[k] : -1;
}

/* True when unit k is one decimal digit of any script. */
static bool is_digit_unit(const unit_text *u, size_t k)
{
    int32_t c = unit_char(u, k);

    return c >= 0 && utf8proc_category(c) == UTF8PROC_CATEGORY_ND;
}

static bool is_no_break_space(int32_t c)
{
    return c == 0x00A0 || c == 0x202F || c == 0x2007; /* plain, narrow, figure */
}

/* Reclassifies as CH_GLUE each no-break space that follows a digit and
 * precedes either a group of exactly three digits ("10 000", "1 000 000")
 * or '%' ("50 %"). A no-break space anywhere else separates tokens like
 * any whitespace, as in German Multi30k's "Nummer 28". */
static void mark_glue(unit_text *u)
{
    for (size_t k = 1; k + 1 < u->n; k++) {
        bool group;

        if (!is_no_break_space(unit_char(u, k)) || !is_digit_unit(u, k - 1))
            continue;
        group = is_digit_unit(u, k + 1) && is_digit_unit(u, k + 2) &&
                is_digit_unit(u, k + 3) && !is_digit_unit(u, k + 4);
        if (group || unit_char(u, k + 1) == '%')
            u->cls[k] = CH_GLUE;
    }
}

static void units_free(unit_text *u)
{
    free(u->cps);
    free(u->first);
    free(u->base);
    free(u->cls);
    memset(u, 0, sizeof *u);
}

/* Decodes NUL-terminated text into *u. Returns 0, or -1 when out of memory
 * (with *u left empty). units_free releases it. */
static int units_init(unit_text *u, const char *text)
{
    size_t n_cps = 0;
    int32_t state = 0;
    bool prev_space = false;

    memset(u, 0, sizeof *u);
    u->cps = decode_text(text, &n_cps);
    u->first = malloc((n_cps + 1) * sizeof *u->first);
    u->base = malloc((n_cps + 1) * sizeof *u->base);
    u->cls = malloc(n_cps + 1);
    if (!u->cps || !u->first || !u->base || !u->cls) {
        units_free(u);
        return -1;
    }

    /* The break test runs on every pair, even where whitespace forces a
     * break, so that utf8proc's state (regional indicator parity, emoji
     * ZWJ sequences) stays right. */
    for (size_t i = 0; i < n_cps; i++) {
        bool space = classify(u->cps[i]) == CH_SPACE;
        bool brk = i == 0 || utf8proc_grapheme_break_stateful(u->cps[i - 1], u->cps[i], &state);

        if (brk || space || prev_space) {
            u->first[u->n] = i;
            u->base[u->n] = u->cps[i];
            u->n++;
        }
        prev_space = space;
    }
    u->first[u->n] = n_cps;

    for (size_t k = 0; k < u->n; k++) {
        const int32_t *cluster = u->cps + u->first[k];
        size_t len = u->first[k + 1] - u->first[k];

        u->cls[k] = (uint8_t)(is_emoji_cluster(cluster, len) ? CH_EMOJI : classify(cluster[0]));
    }
    mark_glue(u);
    return 0;
}

/* ---- Protected spans: numbers, URLs, e-mail addresses ---- */

/* Returns the first unit at or after k, and before end, that is no digit. */
static size_t skip_digits(const unit_text *u, size_t k, size_t end)
{
    while (k < end && is_digit_unit(u, k))
        k++;
    return k;
}

/* Returns the length in units of the number starting at unit i, or 0 when
 * unit i is no digit. A number is digit groups joined by '.', ',', ':',
 * '-' or a no-break space (CH_GLUE), then an optional exponent ("e3",
 * "E-7") and an optional '%', which may follow a no-break space. A
 * separator counts only when a digit follows it, so "3.5." ends before its
 * last period. */
static size_t match_number(const unit_text *u, size_t i, size_t end)
{
    size_t k = skip_digits(u, i, end);

    if (k == i)
        return 0;
    while (k + 1 < end && is_digit_unit(u, k + 1)) {
        int32_t c = unit_char(u, k);

        if (c != '.' && c != ',' && c != ':' && c != '-' && u->cls[k] != CH_GLUE)
            break;
        k = skip_digits(u, k + 1, end);
    }

    if (unit_char(u, k) == 'e' || unit_char(u, k) == 'E') {
        size_t m = k + 1;

        if (unit_char(u, m) == '+' || unit_char(u, m) == '-')
            m++;
        if (m < end && is_digit_unit(u, m))
            k = skip_digits(u, m, end);
    }

    if (k + 1 < end && u->cls[k] == CH_GLUE && unit_char(u, k + 1) == '%')
        k += 2;
    else if (k < end && unit_char(u, k) == '%')
        k++;
    return k - i;
}

static int32_t ascii_lower(int32_t c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* True when units i.. spell prefix (lowercase ASCII) in either case. */
static bool has_prefix(const unit_text *u, size_t i, size_t end, const char *prefix)
{
    for (; *prefix; prefix++, i++) {
        if (i >= end || ascii_lower(unit_char(u, i)) != *prefix)
            return false;
    }
    return true;
}

/* True for characters that end a URL: those RFC 3986 never allows
 * unescaped, typographic quotes, and bidirectional formatting marks. */
static bool ends_url(int32_t c)
{
    switch (c) {
    case '"':
    case '<':
    case '>':
    case '`':
    case '{':
    case '}':
    case '|':
    case '\\':
    case '^':
    case 0x00AB: /* « */
    case 0x00BB: /* » */
    case 0x2018: /* ‘ */
    case RIGHT_SINGLE_QUOTE:
    case 0x201A: /* ‚ */
    case 0x201C: /* “ */
    case 0x201D: /* ” */
    case 0x201E: /* „ */
    case 0x2039: /* ‹ */
    case 0x203A: /* › */
    case 0x200E: /* left-to-right mark */
    case 0x200F: /* right-to-left mark */
        return true;
    default:
        return (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) ||
               utf8proc_category(c) == UTF8PROC_CATEGORY_ZS;
    }
}

/* Punctuation that more likely ends the sentence than the URL. */
static bool is_url_trailer(int32_t c)
{
    return c > 0 && c < 0x80 && strchr(".,;:!?'", (int)c) != NULL;
}

static const char *const url_prefixes[] = {
    "https://", "http://", "ftp://", "mailto:", "www.", NULL,
};

/* Returns the length in units of the URL starting at unit i, or 0. The URL
 * runs to the end of the chunk or to a character that ends_url rejects,
 * and stops before a ')' or ']' it did not open, so "(see
 * https://example.org/a_(b))" keeps one parenthesis. Trailing periods,
 * commas, colons, semicolons, '!', '?' and apostrophes are left out. */
static size_t match_url(const unit_text *u, size_t i, size_t end)
{
    size_t body = 0, k;
    int parens = 0, brackets = 0;

    for (const char *const *p = url_prefixes; *p && !body; p++) {
        if (has_prefix(u, i, end, *p))
            body = i + strlen(*p);
    }
    if (!body)
        return 0;

    for (k = body; k < end && !ends_url(u->base[k]); k++) {
        int32_t c = u->base[k];

        if (c == '(')
            parens++;
        else if (c == '[')
            brackets++;
        else if (c == ')' && parens-- == 0)
            break;
        else if (c == ']' && brackets-- == 0)
            break;
    }
    while (k > body && is_url_trailer(unit_char(u, k - 1)))
        k--;

    /* "http://" alone or followed by punctuation is no URL. */
    if (k == body || (u->cls[body] != CH_LETTER && u->cls[body] != CH_NUMBER))
        return 0;
    return k - i;
}

/* True for units allowed in the local part of an e-mail address: letters,
 * digits and the ASCII characters . _ % + - = */
static bool is_local_part_unit(const unit_text *u, size_t k)
{
    int32_t c = unit_char(u, k);

    if (u->cls[k] == CH_LETTER || u->cls[k] == CH_NUMBER)
        return true;
    return c > 0 && c < 0x80 && strchr("._%+-=", (int)c) != NULL;
}

static bool is_domain_unit(const unit_text *u, size_t k)
{
    return u->cls[k] == CH_LETTER || u->cls[k] == CH_NUMBER || unit_char(u, k) == '-';
}

/* Returns the length in units of the e-mail address starting at unit i,
 * or 0. The local part neither starts nor ends with a period. The domain
 * has at least two labels of letters, digits and hyphens joined by single
 * periods, and a period after the last label is left out. */
static size_t match_email(const unit_text *u, size_t i, size_t end)
{
    size_t at = i, k, labels = 0, domain_end = 0;

    while (at < end && is_local_part_unit(u, at))
        at++;
    if (at == i || at >= end || unit_char(u, at) != '@' || unit_char(u, i) == '.' ||
        unit_char(u, at - 1) == '.')
        return 0;

    for (k = at + 1;;) {
        size_t label = k;

        while (k < end && is_domain_unit(u, k))
            k++;
        if (k == label)
            break;
        labels++;
        domain_end = k;
        if (k + 1 >= end || unit_char(u, k) != '.' || !is_domain_unit(u, k + 1))
            break;
        k++;
    }
    return labels >= 2 ? domain_end - i : 0;
}

/* Finds the protected spans of the chunk of units [start, end) and edits
 * its split marks (split[0] is unit start): no split inside a span, and a
 * split on both sides of a URL or an e-mail address. Number spans add no
 * splits, so "3-jährige" and "1990's" split as before. */
static void protect_spans(const unit_text *u, size_t start, size_t end, bool *split)
{
    for (size_t i = start; i < end;) {
        enum char_class before = i > start ? u->cls[i - 1] : CH_SPACE;
        bool after_punct = before == CH_SPACE || before == CH_SPECIAL || before == CH_APOS;
        bool after_word = before == CH_LETTER || before == CH_NUMBER || before == CH_WORD ||
                          before == CH_GLUE;
        bool edges = true;
        size_t len = 0;

        if (after_punct)
            len = match_url(u, i, end);
        if (!len && (i == start || !is_local_part_unit(u, i - 1)))
            len = match_email(u, i, end);
        if (!len && !after_word) {
            len = match_number(u, i, end);
            edges = false;
        }
        if (!len) {
            i++;
            continue;
        }

        for (size_t k = i + 1; k < i + len; k++)
            split[k - start] = false;
        if (edges) {
            split[i - start] = true;
            split[i + len - start] = true;
        }
        i += len;
    }
}

/* ---- Tokenizer: splitting inside whitespace-separated chunks ---- */

/* Decides where an apostrophe at position i of a chunk splits. English
 * follows Moses: "it's" -> "it 's", "1990's" -> "1990 's", and a quote
 * next to a non-letter becomes its own token. Other languages keep an
 * apostrophe between a letter or digit and a letter inside the word
 * ("geht's", "McDonald's"), where Moses would split it off on both
 * sides. */
static void split_apostrophe(const int32_t *cps, const uint8_t *cls, size_t n, size_t i,
                             bool english, bool *split)
{
    enum char_class prev = i > 0 ? cls[i - 1] : CH_SPACE;
    enum char_class next = i + 1 < n ? cls[i + 1] : CH_SPACE;

    if (english) {
        if (prev == CH_LETTER && next == CH_LETTER) {
            split[i] = true;
            return;
        }
        if (prev == CH_NUMBER && next == CH_LETTER) {
            if (cps[i + 1] == 's')
                split[i] = true;
            return;
        }
    } else if ((prev == CH_LETTER || prev == CH_NUMBER) && next == CH_LETTER) {
        return;
    }
    split[i] = true;
    split[i + 1] = true;
}

/* Marks token starts inside one chunk of n units that has no whitespace.
 * cps contains the first code point of each unit and cls its class. split[i]
 * is set when a token starts at unit i. split has n + 1 entries, and
 * split[0] and split[n] are always set. */
static void mark_splits(const int32_t *cps, const uint8_t *cls, size_t n, bool english,
                        bool *split)
{
    memset(split, 0, (n + 1) * sizeof *split);
    split[0] = true;
    split[n] = true;

    for (size_t i = 0; i < n; i++) {
        enum char_class prev = i > 0 ? cls[i - 1] : CH_SPACE;
        enum char_class next = i + 1 < n ? cls[i + 1] : CH_SPACE;
        size_t end;

        switch (cls[i]) {
        case CH_SPECIAL:
            split[i] = true;
            split[i + 1] = true;
            break;
        case CH_COMMA:
            /* A comma stays only inside a number such as 1,000 or 3,5. */
            if (prev != CH_NUMBER || next != CH_NUMBER) {
                split[i] = true;
                split[i + 1] = true;
            }
            break;
        case CH_PERIOD:
            /* Two or more periods form one token ("...", ".."). A single
             * period is left to emit_token. */
            for (end = i + 1; end < n && cls[end] == CH_PERIOD; end++)
                ;
            if (end - i >= 2) {
                split[i] = true;
                split[end] = true;
            }
            i = end - 1;
            break;
        case CH_APOS:
            split_apostrophe(cps, cls, n, i, english, split);
            break;
        case CH_EMOJI:
            if (prev != CH_EMOJI)
                split[i] = true;
            if (next != CH_EMOJI)
                split[i + 1] = true;
            break;
        default:
            break;
        }
    }
}

/* ---- Tokenizer: word-final periods ---- */

/* Words whose following period marks an abbreviation, not a sentence end.
 * Words with an inner period ("z.B.", "e.g.", "U.S.") and single capital
 * letters are recognized by rule and need no entry. */
static const char *const en_prefixes[] = {
    "Mr", "Mrs", "Ms", "Dr", "Prof", "Rev", "Hon", "St", "Sr", "Jr", "Mt", "Gen", "Col",
    "Capt", "Lt", "Sgt", "Gov", "Sen", "Rep", "Messrs", "Inc", "Ltd", "Corp", "Co", "vs",
    "etc", "approx", "cf", "al", NULL,
};
static const char *const de_prefixes[] = {
    "Dr", "Prof", "Hr", "Hrn", "Fr", "St", "Str", "Nr", "Tel", "Abs", "Bd", "Jh", "Mio",
    "Mrd", "Hbf", "bzw", "ca", "usw", "vgl", "evtl", "ggf", "bspw", "inkl", "zzgl", "sog",
    "etc", "II", "III", "IV", "VI", "VII", "VIII", "IX", "XI", "XII", NULL,
};
/* Abbreviations that keep their period only before a number ("No. 5"). */
static const char *const en_numeric_prefixes[] = {
    "No", "Nos", "Nr", "Art", "pp", "Vol", "Fig", "Jan", "Feb", "Mar", "Apr", "Jun", "Jul",
    "Aug", "Sep", "Sept", "Oct", "Nov", "Dec", NULL,
};
static const char *const de_numeric_prefixes[] = {
    "Art", "Bd", "Jan", "Feb", "Aug", "Sept", "Okt", "Nov", "Dez", NULL,
};

static bool in_list(const char *const *list, const char *word, size_t len)
{
    for (; *list; list++) {
        if (strlen(*list) == len && memcmp(*list, word, len) == 0)
            return true;
    }
    return false;
}

typedef struct {
    size_t start, end; /* unit range [start, end) */
} span;

/* True when the token span t, which ends in a period, keeps it. cps
 * contains the first code point of each unit and cls its class. next is the
 * following token or NULL at the end of the text. word is the token
 * as UTF-8 without its final period, word_len bytes long. The rules follow
 * current Moses: the last token always loses its period, since a
 * sentence-final abbreviation is rarer than a sentence end. */
static bool keeps_period(const int32_t *cps, const uint8_t *cls, span t, const span *next,
                         const char *word, size_t word_len, const char *lang)
{
    size_t n = t.end - 1 - t.start; /* units before the period */
    bool has_period = false, has_letter = false, all_digits = true;
    bool de = lang_is(lang, "de"), en = lang_is(lang, "en");
    int32_t next_first;

    if (!next)
        return false;
    next_first = cps[next->start];
    for (size_t i = t.start; i < t.end - 1; i++) {
        has_period |= cls[i] == CH_PERIOD;
        has_letter |= cls[i] == CH_LETTER;
        all_digits &= cps[i] >= '0' && cps[i] <= '9';
    }

    /* Abbreviations with inner periods ("z.B.", "U.S."), and any word
     * followed by a lowercase word. */
    if (has_period && has_letter)
        return true;
    if (utf8proc_category(next_first) == UTF8PROC_CATEGORY_LL)
        return true;

    /* Initials: single capital letters, and in German single lowercase
     * letters too. */
    if (n == 1 && (en || de)) {
        utf8proc_category_t cat = utf8proc_category(cps[t.start]);

        if (cat == UTF8PROC_CATEGORY_LU || (de && cat == UTF8PROC_CATEGORY_LL))
            return true;
    }

    if ((en && in_list(en_prefixes, word, word_len)) ||
        (de && in_list(de_prefixes, word, word_len)))
        return true;
    if (next_first >= '0' && next_first <= '9' &&
        ((en && in_list(en_numeric_prefixes, word, word_len)) ||
         (de && in_list(de_numeric_prefixes, word, word_len))))
        return true;

    /* German ordinals: "am 3. Oktober", "im 19. Jahrhundert". */
    return de && all_digits;
}

/* ---- Tokenizer: driver ---- */

/* Returns cps[0..n) as a malloc'd UTF-8 string, or NULL when out of
 * memory. */
static char *encode_span(const int32_t *cps, size_t n)
{
    char *s = malloc(n * 4 + 1);
    size_t len = 0;

    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        len += (size_t)utf8proc_encode_char(cps[i], (utf8proc_uint8_t *)s + len);
    s[len] = '\0';
    return s;
}

/* True when the token of units t ends in a period of its own after
 * something other than a period, the case keeps_period decides. */
static bool ends_in_lone_period(const unit_text *u, span t)
{
    return t.end - t.start >= 2 && unit_char(u, t.end - 1) == '.' &&
           u->cls[t.end - 2] != CH_PERIOD;
}

/* Appends the token of units t, splitting off its final period unless
 * keeps_period returns true. Tokens made of periods only ("...") stay
 * whole. Returns 0, or -1 when out of memory. */
static int emit_token(const unit_text *u, span t, const span *next, const char *lang,
                      tok_list *out)
{
    size_t first = u->first[t.start];
    char *word = encode_span(u->cps + first, u->first[t.end] - first);
    size_t len;

    if (!word)
        return -1;
    len = strlen(word);

    if (ends_in_lone_period(u, t) &&
        !keeps_period(u->base, u->cls, t, next, word, len - 1, lang)) {
        word[len - 1] = '\0';
        if (list_push_owned(out, word) < 0) {
            free(word);
            return -1;
        }
        return tok_list_push(out, ".");
    }

    if (list_push_owned(out, word) < 0) {
        free(word);
        return -1;
    }
    return 0;
}

int tok_tokenize(const char *text, const char *lang, tok_list *out)
{
    bool english = lang_is(lang, "en");
    size_t n_spans = 0, keep = out->count;
    unit_text u;
    bool *split = NULL;
    span *spans = NULL;
    int rc = -1;

    if (units_init(&u, text) < 0)
        return -1;
    split = malloc((u.n + 1) * sizeof *split);
    spans = malloc((u.n + 1) * sizeof *spans);
    if (!split || !spans)
        goto cleanup;

    /* Split every whitespace-separated chunk into token spans: the Moses
     * rules first, then the protected spans override them. */
    for (size_t i = 0; i < u.n;) {
        size_t start, len;

        if (u.cls[i] == CH_SPACE) {
            i++;
            continue;
        }
        for (start = i; i < u.n && u.cls[i] != CH_SPACE; i++)
            ;
        len = i - start;
        mark_splits(u.base + start, u.cls + start, len, english, split);
        protect_spans(&u, start, i, split);
        for (size_t j = 0; j < len; j++) {
            if (split[j])
                spans[n_spans++].start = start + j;
            if (split[j + 1])
                spans[n_spans - 1].end = start + j + 1;
        }
    }

    /* Word-final periods depend on the next token, so they are decided
     * when each token is written out. */
    for (size_t k = 0; k < n_spans; k++) {
        const span *next = k + 1 < n_spans ? &spans[k + 1] : NULL;

        if (emit_token(&u, spans[k], next, lang, out) < 0)
            goto cleanup;
    }
    rc = 0;

cleanup:
    if (rc < 0)
        list_truncate(out, keep);
    units_free(&u);
    free(split);
    free(spans);
    return rc;
}

/* ---- Token kinds and blank text ---- */

tok_kind tok_classify(const char *token)
{
    unit_text u;
    size_t n, digits = 0;
    tok_kind kind = TOK_PLAIN;

    if (!token || !*token || units_init(&u, token) < 0)
        return TOK_PLAIN;
    n = u.n;

    if (unit_char(&u, 0) == '-')
        digits = 1; /* a sign: "-3.5" */
    if (match_url(&u, 0, n) == n) {
        kind = TOK_URL;
    } else if (match_email(&u, 0, n) == n) {
        kind = TOK_EMAIL;
    } else if (digits < n && match_number(&u, digits, n) == n - digits) {
        kind = TOK_NUMBER;
    } else {
        size_t k = 0;

        while (k < n && u.cls[k] == CH_EMOJI)
            k++;
        if (k == n)
            kind = TOK_EMOJI;
    }
    units_free(&u);
    return kind;
}

int tok_is_protected(const char *token)
{
    return tok_classify(token) != TOK_PLAIN;
}

int text_is_blank(const char *s)
{
    size_t len;

    if (!s)
        return 1;
    len = strlen(s);
    for (size_t i = 0; i < len;) {
        int32_t cp;
        bool invalid;

        i += decode_one((const uint8_t *)s + i, len - i, &cp, &invalid);
        if (classify(cp) != CH_SPACE)
            return 0;
    }
    return 1;
}

/* ---- Detokenizer ---- */

/* Decodes the first code point of s (NUL-terminated, non-empty). */
static int32_t first_cp(const char *s)
{
    int32_t cp;
    bool invalid;

    decode_one((const uint8_t *)s, strlen(s), &cp, &invalid);
    return cp;
}

/* True when s is exactly one code point; stores it in *cp. */
static bool single_cp(const char *s, int32_t *cp)
{
    size_t len = strlen(s);
    bool invalid;

    return len > 0 && decode_one((const uint8_t *)s, len, cp, &invalid) == len;
}

/* Decodes the last code point of s (NUL-terminated, non-empty). */
static int32_t last_cp(const char *s)
{
    size_t len = strlen(s), i = len - 1;

    while (i > 0 && len - i < 4 && ((uint8_t)s[i] & 0xC0) == 0x80)
        i--;
    return first_cp(s + i);
}

/* True when every code point of s is in set (a NUL-terminated UTF-8
 * string). */
static bool all_in(const char *s, const char *set)
{
    size_t len = strlen(s);

    for (size_t i = 0; i < len;) {
        int32_t cp;
        bool invalid, found = false;

        i += decode_one((const uint8_t *)s + i, len - i, &cp, &invalid);
        for (size_t j = 0, m = strlen(set); j < m && !found;) {
            int32_t c;

            j += decode_one((const uint8_t *)set + j, m - j, &c, &invalid);
            found = c == cp;
        }
        if (!found)
            return false;
    }
    return true;
}

static bool is_ascii_letter(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* True when s begins (at_end false) or ends (at_end true) with a run of
 * one or two ASCII letters, the parts of "Q&A", "AT&T" and "Texas-A&M-Team". */
static bool has_short_letter_run(const char *s, bool at_end)
{
    size_t len = strlen(s), run = 0;

    if (at_end) {
        while (run < len && is_ascii_letter(s[len - 1 - run]))
            run++;
    } else {
        while (run < len && is_ascii_letter(s[run]))
            run++;
    }
    return run >= 1 && run <= 2;
}

/* True when t is an English clitic that attaches to prev: an apostrophe
 * and letters after a word or number ("'s", "’re"), or "n't" after a
 * word. */
static bool is_clitic(const char *t, const char *prev)
{
    enum char_class before = classify(last_cp(prev));
    int32_t cp = first_cp(t);

    if (strcmp(t, "n't") == 0 || strcmp(t, "n\xE2\x80\x99t") == 0)
        return before == CH_LETTER;
    if (cp == '\'' || cp == RIGHT_SINGLE_QUOTE) {
        const char *rest = t + (cp == '\'' ? 1 : 3);

        return *rest && classify(first_cp(rest)) == CH_LETTER &&
               (before == CH_LETTER || before == CH_NUMBER);
    }
    return false;
}

#define CLOSING_PUNCT ",.!?:;%)]}\xE2\x80\xA6" /* U+2026 ellipsis */
#define OPENING_PUNCT "([{\xC2\xBF\xC2\xA1"     /* inverted ? and ! */

/* Joins of one token to its neighbours. */
typedef struct {
    bool left;    /* no space before the token */
    bool right;   /* no space after the token */
    bool closing; /* the token closes a quote or bracket */
} join;

/* Detokenizer state carried from token to token. */
typedef struct {
    bool english;
    unsigned double_quotes;  /* ASCII '"' seen so far */
    unsigned single_quotes;  /* ASCII '\'' counted as quotes so far */
    size_t apostrophes_left; /* standalone ASCII '\'' tokens not yet seen */
    unsigned low_double_open; /* U+201E „ not yet closed */
    unsigned low_single_open; /* U+201A ‚ not yet closed */
} detok_state;

/* Decides the joins of a standalone quote token, which is either of the
 * ASCII quotes or a single typographic quote character. Returns false when
 * t is no quote. */
static bool join_quote(const char *t, const char *next, detok_state *st, join *j)
{
    int32_t cp;

    if (strcmp(t, "\"") == 0) {
        /* ASCII double quotes alternate. An opening one at the very end
         * cannot open anything, so it closes. */
        if (st->double_quotes++ % 2 == 0 && next)
            j->right = true;
        else
            j->left = j->closing = true;
        return true;
    }
    if (strcmp(t, "'") == 0) {
        /* An ASCII apostrophe opens a quote only when an odd number of them
         * follow, one of which can close it. Otherwise it ends a word, as in
         * "the dogs' toys" or "cafe'.", where Moses would check only for a
         * preceding "s". */
        st->apostrophes_left--;
        if (st->single_quotes % 2 == 1) {
            j->left = j->closing = true;
            st->single_quotes++;
        } else if (st->apostrophes_left % 2 == 1 && next) {
            j->right = true;
            st->single_quotes++;
        } else {
            j->left = true;
        }
        return true;
    }
    if (!single_cp(t, &cp))
        return false;

    /* U+201C and U+2018 close the German „…“ and ‚…‘ but open the English
     * “…” and ‘…’, so they close only while a low-9 quote is open. */
    switch (cp) {
    case 0x201E: /* „ */
        st->low_double_open++;
        j->right = true;
        return true;
    case 0x201A: /* ‚ */
        st->low_single_open++;
        j->right = true;
        return true;
    case 0x00AB: /* « */
    case 0x2039: /* ‹ */
    case '`':
        j->right = true;
        return true;
    case 0x201C: /* “ */
        if (st->low_double_open > 0) {
            st->low_double_open--;
            j->left = j->closing = true;
        } else {
            j->right = true;
        }
        return true;
    case 0x2018: /* ‘ */
        if (st->low_single_open > 0) {
            st->low_single_open--;
            j->left = j->closing = true;
        } else {
            j->right = true;
        }
        return true;
    case 0x201D: /* ” */
    case RIGHT_SINGLE_QUOTE:
    case 0x00BB: /* » */
    case 0x203A: /* › */
        j->left = j->closing = true;
        return true;
    default:
        return false;
    }
}

/* Returns whether the last byte of s is an ASCII digit. */
static bool ends_with_digit(const char *s)
{
    size_t len = strlen(s);

    return len > 0 && isdigit((unsigned char)s[len - 1]);
}

/* Decides the joins of token t given its neighbours (prev is NULL for the
 * first token, next for the last). */
static join join_token(const char *t, const char *prev, const char *next, bool prev_closing,
                       detok_state *st)
{
    join j = {false, false, false};
    int32_t only;

    if (join_quote(t, next, st, &j))
        return j;

    if (all_in(t, CLOSING_PUNCT)) {
        j.left = true;
        j.closing = all_in(t, ")]}");
        return j;
    }
    if (all_in(t, OPENING_PUNCT)) {
        j.right = true;
        return j;
    }
    /* A currency sign joins the amount after it ("$5"), unless it follows
     * an amount of its own ("20 € 25 €", "20 € für"). */
    if (single_cp(t, &only) && utf8proc_category(only) == UTF8PROC_CATEGORY_SC && next &&
        isdigit((unsigned char)next[0]) && !(prev && ends_with_digit(prev))) {
        j.right = true;
        return j;
    }

    /* Slashes between words ("and/or", "24/7") and "&" in short
     * abbreviations ("Q&A", "AT&T"). */
    if (strcmp(t, "/") == 0 && prev && next) {
        j.left = j.right = true;
        return j;
    }
    if (strcmp(t, "&") == 0 && prev && next && has_short_letter_run(prev, true) &&
        has_short_letter_run(next, false)) {
        j.left = j.right = true;
        return j;
    }

    /* Numbers and hashtags in English: "#8", "#Berlin". German Multi30k
     * writes "# 8" as often as not, so German keeps the space. */
    if (st->english && strcmp(t, "#") == 0 && next) {
        enum char_class after = classify(first_cp(next));

        j.right = after == CH_LETTER || after == CH_NUMBER;
        return j;
    }

    /* English clitics split off by the tokenizer: 's 're 'll 've 'm 'd 't,
     * and n't from Penn Treebank style tokenizers. */
    if (st->english && prev && is_clitic(t, prev)) {
        j.left = true;
        return j;
    }

    /* A compound continuing after a closing quote: „Open“-Schild. */
    if (t[0] == '-' && t[1] != '\0' && prev_closing)
        j.left = true;
    return j;
}

/* Returns the form of token t that decides how it joins: t itself, or a
 * malloc'd copy without combining marks when t starts with punctuation or
 * a symbol that carries them ("?⃝"), so that it joins like the bare
 * punctuation. Emoji keep their marks (variation selectors, keycaps).
 * Returns NULL when out of memory. */
static const char *join_form(const char *t)
{
    size_t len = strlen(t), first_len, out_len;
    bool has_marks = false, invalid;
    utf8proc_category_t cat;
    int32_t cp;
    char *bare;

    if (len == 0)
        return t;

    /* P* and S* are the consecutive categories Pc to So in utf8proc, and
     * M* the categories Mn to Me. */
    first_len = decode_one((const uint8_t *)t, len, &cp, &invalid);
    cat = utf8proc_category(cp);
    if (cat < UTF8PROC_CATEGORY_PC || cat > UTF8PROC_CATEGORY_SO)
        return t;
    for (size_t i = first_len; i < len && !has_marks;) {
        i += decode_one((const uint8_t *)t + i, len - i, &cp, &invalid);
        cat = utf8proc_category(cp);
        has_marks = cat >= UTF8PROC_CATEGORY_MN && cat <= UTF8PROC_CATEGORY_ME;
    }
    if (!has_marks || tok_classify(t) == TOK_EMOJI)
        return t;

    bare = malloc(len + 1);
    if (!bare)
        return NULL;
    memcpy(bare, t, first_len);
    out_len = first_len;
    for (size_t i = first_len; i < len;) {
        size_t k = decode_one((const uint8_t *)t + i, len - i, &cp, &invalid);

        cat = utf8proc_category(cp);
        if (cat < UTF8PROC_CATEGORY_MN || cat > UTF8PROC_CATEGORY_ME) {
            memcpy(bare + out_len, t + i, k);
            out_len += k;
        }
        i += k;
    }
    bare[out_len] = '\0';
    return bare;
}

char *tok_detokenize(const char *const *tokens, size_t n, const char *lang)
{
    detok_state st = {lang_is(lang, "en"), 0, 0, 0, 0, 0};
    const char *prev = NULL;
    const char **forms = calloc(n + 1, sizeof *forms);
    join prev_join = {false, true, false};
    size_t cap = 1, len = 0;
    char *out = NULL;

    if (!forms)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!tokens[i])
            continue;
        cap += strlen(tokens[i]) + 1;
        forms[i] = join_form(tokens[i]);
        if (!forms[i])
            goto cleanup;
        if (strcmp(forms[i], "'") == 0)
            st.apostrophes_left++;
    }
    out = malloc(cap);
    if (!out)
        goto cleanup;

    /* Joins are decided on the join forms, and the tokens themselves are
     * written. */
    for (size_t i = 0; i < n; i++) {
        const char *t = forms[i], *next = NULL;
        size_t t_len;
        join j;

        if (!t || !*t)
            continue;
        for (size_t k = i + 1; k < n && !next; k++) {
            if (forms[k] && *forms[k])
                next = forms[k];
        }

        j = join_token(t, prev, next, prev_join.closing, &st);
        if (prev && !j.left && !prev_join.right)
            out[len++] = ' ';
        t_len = strlen(tokens[i]);
        memcpy(out + len, tokens[i], t_len);
        len += t_len;
        prev = t;
        prev_join = j;
    }
    out[len] = '\0';

cleanup:
    for (size_t i = 0; i < n; i++) {
        if (forms[i] != tokens[i])
            free((char *)forms[i]);
    }
    free(forms);
    return out;
}
