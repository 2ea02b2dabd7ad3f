/* Sentence splitting of one line of text; see sentence.h for the contract.
 *
 * The text is read as extended grapheme clusters (Unicode Standard Annex
 * #29, through utf8proc), and a cluster counts as the character it starts
 * with. So a period or a letter carrying combining marks acts as the bare
 * character, and no split ever falls inside a cluster. A whitespace
 * character followed by a combining mark is one cluster that counts as
 * text, never as whitespace.
 *
 * A sentence ends after a run of terminators (. ! ? … ‼ ⁇ ⁈ ⁉, the CJK
 * 。 ｡ ！ ？, the Arabic ؟ ۔ and the Devanagari । ॥). Closing quotes,
 * closing brackets and emoji directly after the run stay with the
 * sentence. Then whitespace must follow, and the next sentence must start
 * like one:
 *  - with an uppercase, titlecase or caseless (Lo) letter or a decimal
 *    digit, possibly behind opening quotes or brackets, or
 *  - with an opening quote or bracket followed by anything but a lowercase
 *    letter.
 * After a CJK terminator the sentence ends even without whitespace,
 * because Chinese and Japanese put no space between sentences, unless a
 * closing quote or bracket is followed by Hiragana (「はい。」と言った).
 * A run that starts the sentence ("... and then") ends nothing.
 *
 * A lone period after the following words ends no sentence:
 *  - abbreviations in never_final (titles such as "Dr.", "Prof.", "Hr.",
 *    and "e.g.", "vs.", "z.B.", "bzw.", "ca.", "u.a."), and the ones in
 *    numeric_only ("No.", "Nr.", "Fig.") when a digit follows;
 *  - single letters ("J. Smith", and "z. B." written with a space) and
 *    dotted single letters ("U.S.", "z.B.", "d.h.");
 *  - numbers of one to three digits before a German month name or a noun
 *    that follows ordinals ("1. Mai", "19. Jahrhundert").
 * "etc." and "usw." end a sentence under the general rule, so "etc. and"
 * continues and "etc. The" splits. URLs and e-mail addresses contain no
 * whitespace, so their inner periods never end a sentence, and their last
 * period before a new sentence does. Decimal points ("3.5") are not
 * followed by whitespace and never split.
 *
 * Limits, all cases where a sentence end is missed or invented:
 *  - Abbreviations are matched case-sensitively and for English and
 *    German at once, because the caller passes no language.
 *  - A sentence ending in an abbreviation from never_final, in a single
 *    letter or in dotted letters ("in the U.S. The") is joined with the
 *    next one.
 *  - A German ordinal before a capitalized noun missing from
 *    after_ordinal ("am 3. Tag") ends a sentence.
 *  - A sentence starting with a lowercase letter ("iPhones sell."), a
 *    symbol ("$5 is a lot.") or an emoji is joined with the one before
 *    it.
 *  - Thai, which marks sentence ends with spaces only, is not split.
 */
#include "sentence.h"

#include "text.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define REPLACEMENT_CHAR 0xFFFD

/* A word before a period longer than this is no listed abbreviation, no
 * single letter, no dotted acronym and no short number. */
#define MAX_WORD_BYTES 64

/* ---- Word lists: abbreviations without their final period ---- */

/* Abbreviations after which no sentence ends, whatever follows. */
static const char *const never_final[] = {
    /* English titles and Latin abbreviations */
    "Mr", "Mrs", "Ms", "Mx", "Messrs", "Dr", "Prof", "St", "Mt", "Rev", "Hon", "Gen", "Col",
    "Capt", "Lt", "Sgt", "Cpl", "Maj", "Adm", "Gov", "Sen", "Rep", "Pres", "vs", "e.g", "i.e",
    "cf", "approx", "viz", "al",
    /* German */
    "Hr", "Hrn", "Fr", "Frl", "bzw", "ca", "z.B", "u.a", "d.h", "u.U", "v.a", "s.o", "s.u",
    "vgl", "Vgl", "evtl", "ggf", "inkl", "zzgl", "bspw", "sog", "Mio", "Mrd", "Dipl", "geb",
    NULL,
};

/* Abbreviations after which no sentence ends when a digit follows
 * ("No. 5", "Nr. 7", "Jan. 3"), but one may end otherwise ("No. It is."). */
static const char *const numeric_only[] = {
    "No", "Nos", "Nr", "Art", "Fig", "Abb", "Vol", "Bd", "pp", "Abs", "Tel", "Str", "Kap", "Ziff",
    "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Okt", "Nov", "Dec",
    "Dez", NULL,
};

/* Abbreviations that often end a sentence. The general rule decides after
 * them, although the dotted ones ("u.s.w.") look like an acronym. */
static const char *const may_be_final[] = {
    "etc", "usw", "u.s.w", "usf", "o.ä", "u.ä", NULL,
};

/* Words after which a number with a period is a German ordinal ("am 1.
 * Mai", "im 19. Jahrhundert", "zum 2. Mal"), not the end of a sentence. */
static const char *const after_ordinal[] = {
    "Januar", "Jänner", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
    "September", "Oktober", "November", "Dezember", "Jan", "Feb", "Mär", "Apr", "Jun",
    "Jul", "Aug", "Sep", "Sept", "Okt", "Nov", "Dez", "Jahrhundert", "Jahrhunderts",
    "Jahrtausend", "Jh", "Platz", "Klasse", "Stock", "Etage", "Runde", "Mal", "Geburtstag",
    "Jahrestag", "Todestag", "Auflage", "Liga", "Bundesliga", "Spieltag", "Weltkrieg",
    "Weltkriegs", "Kapitel", NULL,
};

static bool in_list(const char *const *list, const uint8_t *word, size_t len)
{
    for (; *list; list++) {
        if (strlen(*list) == len && memcmp(*list, word, len) == 0)
            return true;
    }
    return false;
}

/* ---- Characters and grapheme clusters ---- */

/* Decodes the code point at s[0..n), n > 0, into *cp and returns its length
 * in bytes. An ill-formed byte decodes as U+FFFD of length 1, so every
 * byte is visited and nothing is read past s + n. */
static size_t decode(const uint8_t *s, size_t n, int32_t *cp)
{
    utf8proc_ssize_t k = utf8proc_iterate(s, n < 4 ? (utf8proc_ssize_t)n : 4, cp);

    if (k > 0)
        return (size_t)k;
    *cp = REPLACEMENT_CHAR;
    return 1;
}

static utf8proc_category_t category(int32_t cp)
{
    return utf8proc_category(cp);
}

/* True for the characters that text_is_blank ignores. */
static bool is_blank_char(int32_t cp)
{
    switch (category(cp)) {
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_CC:
        return true;
    default:
        return cp == 0x200B || cp == 0xFEFF;
    }
}

static bool is_letter(int32_t cp)
{
    switch (category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return true;
    default:
        return false;
    }
}

/* Terminators that need no whitespace after them. */
static bool is_cjk_terminator(int32_t cp)
{
    return cp == 0x3002 || cp == 0xFF61 || cp == 0xFF01 || cp == 0xFF1F;
}

static bool is_terminator(int32_t cp)
{
    switch (cp) {
    case '.':
    case '!':
    case '?':
    case 0x2026: /* … horizontal ellipsis */
    case 0x203C: /* ‼ */
    case 0x2047: /* ⁇ */
    case 0x2048: /* ⁈ */
    case 0x2049: /* ⁉ */
    case 0x061F: /* Arabic question mark */
    case 0x06D4: /* Arabic full stop */
    case 0x0964: /* Devanagari danda */
    case 0x0965: /* Devanagari double danda */
        return true;
    default:
        return is_cjk_terminator(cp);
    }
}

/* Quotes of every direction, because the same character opens in one
 * language and closes in another (“ opens in English and closes „…“ in
 * German). */
static bool is_quote(int32_t cp)
{
    utf8proc_category_t cat = category(cp);

    return cp == '"' || cp == '\'' || cat == UTF8PROC_CATEGORY_PI || cat == UTF8PROC_CATEGORY_PF;
}

/* Characters that may precede the first letter of a sentence. */
static bool is_opener(int32_t cp)
{
    return is_quote(cp) || category(cp) == UTF8PROC_CATEGORY_PS || cp == 0x00BF /* ¿ */ ||
           cp == 0x00A1 /* ¡ */;
}

typedef struct {
    size_t start, end; /* bytes [start, end) of the text */
    int32_t first;     /* first code point, U+FFFD for an ill-formed byte */
    bool blank;        /* one blank character without combining marks */
    bool emoji;        /* starts with an emoji, a flag letter or a skin tone */
} cluster;

/* Reads the grapheme cluster that starts at s[pos], pos < len. */
static cluster cluster_at(const uint8_t *s, size_t len, size_t pos)
{
    cluster c = {.start = pos};
    int32_t prev, next, state = 0;
    size_t first_len = decode(s + pos, len - pos, &c.first);
    size_t p = pos + first_len;
    int bound = utf8proc_get_property(c.first)->boundclass;

    /* Every pair goes through the break test, in order, so that utf8proc's
     * state (regional indicator parity, emoji ZWJ sequences) stays right.
     * utf8proc.h allows resetting the state after a break, as here. */
    prev = c.first;
    while (p < len) {
        size_t k = decode(s + p, len - p, &next);

        if (utf8proc_grapheme_break_stateful(prev, next, &state))
            break;
        prev = next;
        p += k;
    }
    c.end = p;
    c.blank = is_blank_char(c.first) && p == pos + first_len;
    c.emoji = bound == UTF8PROC_BOUNDCLASS_EXTENDED_PICTOGRAPHIC ||
              bound == UTF8PROC_BOUNDCLASS_REGIONAL_INDICATOR ||
              (c.first >= 0x1F3FB && c.first <= 0x1F3FF);
    return c;
}

/* Returns the position of the first cluster at or after pos that is not
 * blank, or len. */
static size_t skip_blank(const uint8_t *s, size_t len, size_t pos)
{
    while (pos < len) {
        cluster c = cluster_at(s, len, pos);

        if (!c.blank)
            break;
        pos = c.end;
    }
    return pos;
}

/* ---- Sentence ends ---- */

/* A candidate sentence end: a run of terminators and what follows it. */
typedef struct {
    size_t run_start;   /* first terminator */
    size_t end;         /* after the terminators and closing characters */
    size_t next;        /* first cluster after the whitespace, or len */
    bool cjk;           /* the run contains a CJK terminator */
    bool lone_period;   /* the run is one period */
    bool closed;        /* closing characters follow the run */
    bool space_follows; /* at least one blank cluster after end */
} boundary;

static bool is_closer(const cluster *c)
{
    return !c->blank &&
           (is_quote(c->first) || category(c->first) == UTF8PROC_CATEGORY_PE || c->emoji);
}

/* Reads the terminators that start at s[run_start], the closing quotes,
 * brackets and emoji after them ("Wow!😀 Next"), and the whitespace after
 * those. */
static boundary scan_boundary(const uint8_t *s, size_t len, size_t run_start)
{
    boundary b = {.run_start = run_start};
    size_t pos = run_start, n_terminators = 0;
    int32_t last = 0;

    while (pos < len) {
        cluster c = cluster_at(s, len, pos);

        if (c.blank || !is_terminator(c.first))
            break;
        b.cjk |= is_cjk_terminator(c.first);
        last = c.first;
        n_terminators++;
        pos = c.end;
    }
    b.lone_period = n_terminators == 1 && last == '.';
    b.end = pos;

    while (pos < len) {
        cluster c = cluster_at(s, len, pos);

        if (!is_closer(&c))
            break;
        pos = c.end;
    }
    b.closed = pos > b.end;
    b.end = pos;

    b.next = skip_blank(s, len, pos);
    b.space_follows = b.next > b.end;
    return b;
}

/* True when the text at pos can start a sentence. Stores the first
 * character after any opening quotes and brackets in *first. */
static bool starts_sentence(const uint8_t *s, size_t len, size_t pos, int32_t *first)
{
    size_t n_openers = 0;
    cluster c;

    *first = 0;
    for (;;) {
        if (pos >= len)
            return false;
        c = cluster_at(s, len, pos);
        if (c.blank)
            return false;
        if (!is_opener(c.first))
            break;
        n_openers++;
        pos = c.end;
    }
    *first = c.first;
    switch (category(c.first)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
        return true;
    case UTF8PROC_CATEGORY_LL:
        return false;
    default:
        return n_openers > 0;
    }
}

/* True when the character at s[pos], pos < len, is Hiragana. After a
 * quotation closed by 」 or ”, Hiragana is almost always a particle that
 * continues the sentence (「はい。」と言った), not the start of a new one. */
static bool is_hiragana(const uint8_t *s, size_t len, size_t pos)
{
    int32_t cp;

    decode(s + pos, len - pos, &cp);
    return cp >= 0x3041 && cp <= 0x309F;
}

/* Returns the number of letter clusters in s[start..end), stopping at the
 * first cluster that is not a letter, and stores where it stopped. */
static size_t count_letters(const uint8_t *s, size_t start, size_t end, size_t *stop)
{
    size_t n = 0, pos = start;

    while (pos < end) {
        cluster c = cluster_at(s, end, pos);

        if (!is_letter(c.first))
            break;
        n++;
        pos = c.end;
    }
    *stop = pos;
    return n;
}

/* True when word[0..len) is single letters joined by periods ("U.S",
 * "z.B", "e.g"). */
static bool is_dotted_letters(const uint8_t *word, size_t len)
{
    size_t pos = 0, n_segments = 0;

    while (pos <= len) {
        size_t stop;

        if (count_letters(word, pos, len, &stop) != 1)
            return false;
        n_segments++;
        if (stop == len)
            break;
        if (word[stop] != '.')
            return false;
        pos = stop + 1;
    }
    return n_segments >= 2;
}

static bool is_short_number(const uint8_t *word, size_t len)
{
    size_t n = 0;

    for (size_t pos = 0; pos < len;) {
        cluster c = cluster_at(word, len, pos);

        if (category(c.first) != UTF8PROC_CATEGORY_ND)
            return false;
        n++;
        pos = c.end;
    }
    return n >= 1 && n <= 3;
}

/* True when the period at s[period] ends the abbreviation, initial or
 * ordinal number that starts at s[word_start], so no sentence ends there.
 * next is the first cluster after the whitespace that follows, and
 * next_first the first character of the sentence it would start. */
static bool period_ends_word(const uint8_t *s, size_t len, size_t word_start, size_t period,
                             size_t next, int32_t next_first)
{
    char word[MAX_WORD_BYTES + 1];
    const uint8_t *w;
    size_t n, next_word_end;
    tok_kind kind;
    cluster head;

    /* The word without opening quotes and brackets: '("Dr.' is "Dr". */
    while (word_start < period) {
        cluster c = cluster_at(s, period, word_start);

        if (!is_opener(c.first))
            break;
        word_start = c.end;
    }
    n = period - word_start;
    if (n == 0 || n > MAX_WORD_BYTES)
        return false;
    memcpy(word, s + word_start, n);
    word[n] = '\0';
    w = (const uint8_t *)word;

    kind = tok_classify(word);
    if (kind == TOK_URL || kind == TOK_EMAIL)
        return false;
    if (in_list(never_final, w, n))
        return true;
    if (in_list(numeric_only, w, n))
        return category(next_first) == UTF8PROC_CATEGORY_ND;
    if (in_list(may_be_final, w, n))
        return false;
    head = cluster_at(w, n, 0);
    if (is_letter(head.first) && head.end == n)
        return true; /* single letter */
    if (is_dotted_letters(w, n))
        return true;
    if (is_short_number(w, n)) {
        count_letters(s, next, len, &next_word_end);
        return in_list(after_ordinal, s + next, next_word_end - next);
    }
    return false;
}

/* ---- Driver ---- */

typedef struct {
    sentence_span *items;
    size_t count, capacity;
} span_list;

static int push_span(span_list *list, size_t start, size_t end)
{
    if (list->count == list->capacity) {
        size_t cap = list->capacity ? list->capacity * 2 : 8;
        sentence_span *grown = realloc(list->items, cap * sizeof *grown);

        if (!grown)
            return -1;
        list->items = grown;
        list->capacity = cap;
    }
    list->items[list->count].start = start;
    list->items[list->count].len = end - start;
    list->count++;
    return 0;
}

size_t sentence_split(const char *text, size_t len, sentence_span **spans)
{
    const uint8_t *s = (const uint8_t *)text;
    span_list out = {0};
    size_t pos, span_start, word_start, content_end;

    assert(spans);
    *spans = NULL;
    if (!text)
        len = 0;

    /* span_start is where the current sentence starts, word_start where
     * its current whitespace-separated word starts, and content_end the
     * end of its last cluster that is not blank. */
    pos = skip_blank(s, len, 0);
    span_start = word_start = content_end = pos;
    while (pos < len) {
        cluster c = cluster_at(s, len, pos);
        boundary b;
        int32_t next_first = 0;
        bool split;

        if (c.blank) {
            word_start = pos = c.end;
            continue;
        }
        if (!is_terminator(c.first)) {
            content_end = pos = c.end;
            continue;
        }

        /* A run of terminators: decide whether the sentence ends after it. */
        b = scan_boundary(s, len, pos);
        content_end = b.end;
        if (b.next >= len)
            break;
        if (b.run_start == span_start)
            split = false; /* "... and then" */
        else if (b.cjk)
            split = !(b.closed && is_hiragana(s, len, b.next));
        else
            split = b.space_follows && starts_sentence(s, len, b.next, &next_first) &&
                    !(b.lone_period &&
                      period_ends_word(s, len, word_start, b.run_start, b.next, next_first));
        if (split) {
            if (push_span(&out, span_start, b.end) != 0)
                goto oom;
            span_start = b.next;
        }
        if (split || b.space_follows)
            word_start = b.next;
        pos = b.next;
    }
    if (content_end > span_start && push_span(&out, span_start, content_end) != 0)
        goto oom;
    *spans = out.items;
    return out.count;

oom:
    free(out.items);
    return (size_t)-1;
}
