/* HTML text and markup; see html_text.h for the contract.
 *
 * html_split scans the bytes once, following the WHATWG HTML tokenizer
 * where it decides how far a piece of markup reaches: a tag is '<' or "</"
 * and an ASCII letter, and ends at the first '>' outside a quoted
 * attribute value; a comment ends at "-->" or "--!>" ("<!-->" is a whole
 * comment); other "<!" and "<?" constructs end at the first '>', except
 * CDATA sections, which end at "]]>". Inside script and style everything
 * up to the matching end tag ("</script" followed by whitespace, '/' or
 * '>', in any case) is markup. Anything else, a '<' that starts none of
 * these included, is text.
 *
 * Limits: script and style are the only raw-text elements, so the content
 * of textarea, title, xmp, iframe, noembed and noframes is read as text
 * and markup like any other. Markup that the standard would reopen (a start
 * tag inside a comment) is never a problem, because pieces are only
 * copied. Text pieces may hold only whitespace; the caller decides
 * whether to translate them.
 */
#include "html_text.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define REPLACEMENT_CHAR 0xFFFD
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Elements whose content is markup up to their end tag, in lowercase. */
static const char *const raw_text_elements[] = {"script", "style"};

/* ---- Scanner ---- */

static bool is_ascii_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_ascii_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* HTML's whitespace: tab, line feed, form feed, carriage return, space. */
static bool is_html_space(unsigned char c)
{
    return c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' ';
}

/* Returns the position just after the first occurrence of needle in
 * s[from..len), or len when there is none. */
static size_t end_of(const char *s, size_t len, size_t from, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = from; i + n <= len; i++) {
        if (memcmp(s + i, needle, n) == 0)
            return i + n;
    }
    return len;
}

/* Returns the end of the tag whose name starts at s[pos]: just after its
 * '>', or len when it is never closed. Quoted attribute values may
 * contain '>'. */
static size_t tag_end(const char *s, size_t len, size_t pos)
{
    /* The tag name. */
    while (pos < len && !is_html_space(s[pos]) && s[pos] != '/' && s[pos] != '>')
        pos++;

    for (;;) {
        /* Whitespace and '/' between attributes. */
        while (pos < len && (is_html_space(s[pos]) || s[pos] == '/'))
            pos++;
        if (pos >= len)
            return len;
        if (s[pos] == '>')
            return pos + 1;

        /* The attribute name; its first character may even be '='. */
        pos++;
        while (pos < len && !is_html_space(s[pos]) && s[pos] != '/' && s[pos] != '>' &&
               s[pos] != '=')
            pos++;
        while (pos < len && is_html_space(s[pos]))
            pos++;
        if (pos >= len || s[pos] != '=')
            continue;

        /* The value: quoted, or up to whitespace or '>'. */
        pos++;
        while (pos < len && is_html_space(s[pos]))
            pos++;
        if (pos < len && (s[pos] == '"' || s[pos] == '\'')) {
            const char *close = memchr(s + pos + 1, s[pos], len - pos - 1);

            if (!close)
                return len;
            pos = (size_t)(close - s) + 1;
        } else {
            while (pos < len && !is_html_space(s[pos]) && s[pos] != '>')
                pos++;
        }
    }
}

/* True when s[pos..len) starts with name in any ASCII case. */
static bool starts_with_ci(const char *s, size_t len, size_t pos, const char *name)
{
    size_t n = strlen(name);

    if (len - pos < n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (ascii_lower((unsigned char)s[pos + i]) != (unsigned char)name[i])
            return false;
    }
    return true;
}

/* Returns the end of the markup that starts with the '<' at s[pos], or pos
 * when that '<' is text. Sets *raw to "script" or "style" when the markup
 * is a start tag of that element, else to NULL. */
static size_t markup_end(const char *s, size_t len, size_t pos, const char **raw)
{
    size_t next = pos + 1;

    *raw = NULL;
    if (next >= len)
        return pos; /* a '<' at the end */

    if (starts_with_ci(s, len, next, "!--")) {
        size_t body = pos + 4;

        if (body < len && s[body] == '>')
            return body + 1; /* "<!-->" */
        if (len - body >= 2 && s[body] == '-' && s[body + 1] == '>')
            return body + 2; /* "<!--->" */
        for (size_t i = body; i + 3 <= len; i++) {
            if (memcmp(s + i, "-->", 3) == 0)
                return i + 3;
            if (i + 4 <= len && memcmp(s + i, "--!>", 4) == 0)
                return i + 4;
        }
        return len;
    }
    if (len - next >= 8 && memcmp(s + next, "![CDATA[", 8) == 0)
        return end_of(s, len, next + 8, "]]>");
    if (s[next] == '!' || s[next] == '?')
        return end_of(s, len, next + 1, ">"); /* doctype, bogus comment, processing instruction */

    if (s[next] == '/') {
        next++;
        if (next >= len)
            return pos; /* "</" at the end is text */
        if (s[next] == '>')
            return next + 1; /* "</>" */
        if (is_ascii_alpha(s[next]))
            return tag_end(s, len, next);
        return end_of(s, len, next, ">"); /* "</ x>" is a bogus comment */
    }

    if (!is_ascii_alpha(s[next]))
        return pos; /* "a < b", "<3" */
    for (size_t i = 0; i < COUNT(raw_text_elements); i++) {
        const char *name = raw_text_elements[i];
        size_t after = next + strlen(name);

        if (starts_with_ci(s, len, next, name) && after < len &&
            (is_html_space(s[after]) || s[after] == '/' || s[after] == '>'))
            *raw = name;
    }
    return tag_end(s, len, next);
}

/* Returns the start of the end tag that closes the raw-text element name
 * ("</script" followed by whitespace, '/', '>' or the end), searching from
 * pos; or len when there is none. */
static size_t raw_text_end(const char *s, size_t len, size_t pos, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = pos; i + 2 + n <= len; i++) {
        size_t after = i + 2 + n;

        if (s[i] != '<' || s[i + 1] != '/' || !starts_with_ci(s, len, i + 2, name))
            continue;
        if (after == len || is_html_space(s[after]) || s[after] == '/' || s[after] == '>')
            return i;
    }
    return len;
}

typedef struct {
    html_piece *items;
    size_t count, capacity;
} piece_list;

/* Appends [start, end) unless it is empty, merging adjacent text. */
static int push_piece(piece_list *list, size_t start, size_t end, int is_text)
{
    html_piece *last = list->count ? &list->items[list->count - 1] : NULL;

    if (end == start)
        return 0;
    if (is_text && last && last->is_text && last->start + last->len == start) {
        last->len += end - start;
        return 0;
    }
    if (list->count == list->capacity) {
        size_t cap = list->capacity ? list->capacity * 2 : 16;
        html_piece *grown = realloc(list->items, cap * sizeof *grown);

        if (!grown)
            return -1;
        list->items = grown;
        list->capacity = cap;
    }
    list->items[list->count].start = start;
    list->items[list->count].len = end - start;
    list->items[list->count].is_text = is_text;
    list->count++;
    return 0;
}

int html_split(const char *html, size_t len, html_piece **pieces, size_t *count)
{
    piece_list list = {0};
    size_t pos = 0;

    *pieces = NULL;
    *count = 0;
    if (!html)
        len = 0;

    while (pos < len) {
        const char *lt = memchr(html + pos, '<', len - pos);
        size_t text_end = lt ? (size_t)(lt - html) : len;
        size_t end;
        const char *raw;

        /* Text up to the next '<', then markup or a '<' that is text. */
        if (push_piece(&list, pos, text_end, 1) != 0)
            goto oom;
        pos = text_end;
        if (pos >= len)
            break;
        end = markup_end(html, len, pos, &raw);
        if (end == pos) {
            if (push_piece(&list, pos, pos + 1, 1) != 0)
                goto oom;
            pos++;
            continue;
        }
        if (push_piece(&list, pos, end, 0) != 0)
            goto oom;
        pos = end;

        /* The content of script and style, up to its end tag. */
        if (raw) {
            end = raw_text_end(html, len, pos, raw);
            if (push_piece(&list, pos, end, 0) != 0)
                goto oom;
            pos = end;
        }
    }
    *pieces = list.items;
    *count = list.count;
    return 0;

oom:
    free(list.items);
    return -1;
}

/* ---- Character references ---- */

typedef struct {
    const char *name;
    int32_t cp;
} entity;

/* Names of U+00A0 to U+00FF in code point order. HTML allows all of them
 * without the semicolon. */
static const char *const latin1_names[96] = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",
    "uml",    "copy",   "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",
    "deg",    "plusmn", "sup2",   "sup3",   "acute",  "micro",  "para",   "middot",
    "cedil",  "sup1",   "ordm",   "raquo",  "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc",  "Atilde", "Auml",   "Aring",  "AElig",  "Ccedil",
    "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave", "Iacute", "Icirc",  "Iuml",
    "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde", "Ouml",   "times",
    "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",  "szlig",
    "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil",
    "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",
    "eth",    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide",
    "oslash", "ugrave", "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml",
};

/* Names that HTML also allows without the semicolon, besides Latin-1. */
static const entity legacy_entities[] = {
    {"amp", '&'}, {"lt", '<'},  {"gt", '>'},  {"quot", '"'}, {"AMP", '&'},
    {"LT", '<'},  {"GT", '>'},  {"QUOT", '"'}, {"COPY", 0xA9}, {"REG", 0xAE},
};

/* The other entities of HTML 4, and "apos". Code points are those of the
 * current HTML standard, which moved "lang" and "rang" to U+27E8/U+27E9. */
static const entity other_entities[] = {
    /* markup-significant and Latin Extended */
    {"apos", '\''}, {"OElig", 0x152}, {"oelig", 0x153}, {"Scaron", 0x160}, {"scaron", 0x161},
    {"Yuml", 0x178}, {"fnof", 0x192}, {"circ", 0x2C6}, {"tilde", 0x2DC},
    /* Greek */
    {"Alpha", 0x391}, {"Beta", 0x392}, {"Gamma", 0x393}, {"Delta", 0x394}, {"Epsilon", 0x395},
    {"Zeta", 0x396}, {"Eta", 0x397}, {"Theta", 0x398}, {"Iota", 0x399}, {"Kappa", 0x39A},
    {"Lambda", 0x39B}, {"Mu", 0x39C}, {"Nu", 0x39D}, {"Xi", 0x39E}, {"Omicron", 0x39F},
    {"Pi", 0x3A0}, {"Rho", 0x3A1}, {"Sigma", 0x3A3}, {"Tau", 0x3A4}, {"Upsilon", 0x3A5},
    {"Phi", 0x3A6}, {"Chi", 0x3A7}, {"Psi", 0x3A8}, {"Omega", 0x3A9}, {"alpha", 0x3B1},
    {"beta", 0x3B2}, {"gamma", 0x3B3}, {"delta", 0x3B4}, {"epsilon", 0x3B5}, {"zeta", 0x3B6},
    {"eta", 0x3B7}, {"theta", 0x3B8}, {"iota", 0x3B9}, {"kappa", 0x3BA}, {"lambda", 0x3BB},
    {"mu", 0x3BC}, {"nu", 0x3BD}, {"xi", 0x3BE}, {"omicron", 0x3BF}, {"pi", 0x3C0},
    {"rho", 0x3C1}, {"sigmaf", 0x3C2}, {"sigma", 0x3C3}, {"tau", 0x3C4}, {"upsilon", 0x3C5},
    {"phi", 0x3C6}, {"chi", 0x3C7}, {"psi", 0x3C8}, {"omega", 0x3C9}, {"thetasym", 0x3D1},
    {"upsih", 0x3D2}, {"piv", 0x3D6},
    /* spaces, joiners, dashes, quotes */
    {"ensp", 0x2002}, {"emsp", 0x2003}, {"thinsp", 0x2009}, {"zwnj", 0x200C}, {"zwj", 0x200D},
    {"lrm", 0x200E}, {"rlm", 0x200F}, {"ndash", 0x2013}, {"mdash", 0x2014}, {"lsquo", 0x2018},
    {"rsquo", 0x2019}, {"sbquo", 0x201A}, {"ldquo", 0x201C}, {"rdquo", 0x201D},
    {"bdquo", 0x201E}, {"dagger", 0x2020}, {"Dagger", 0x2021}, {"bull", 0x2022},
    {"hellip", 0x2026}, {"permil", 0x2030}, {"prime", 0x2032}, {"Prime", 0x2033},
    {"lsaquo", 0x2039}, {"rsaquo", 0x203A}, {"oline", 0x203E}, {"frasl", 0x2044},
    {"euro", 0x20AC},
    /* letterlike symbols and arrows */
    {"image", 0x2111}, {"weierp", 0x2118}, {"real", 0x211C}, {"trade", 0x2122},
    {"alefsym", 0x2135}, {"larr", 0x2190}, {"uarr", 0x2191}, {"rarr", 0x2192},
    {"darr", 0x2193}, {"harr", 0x2194}, {"crarr", 0x21B5}, {"lArr", 0x21D0}, {"uArr", 0x21D1},
    {"rArr", 0x21D2}, {"dArr", 0x21D3}, {"hArr", 0x21D4},
    /* mathematical operators */
    {"forall", 0x2200}, {"part", 0x2202}, {"exist", 0x2203}, {"empty", 0x2205},
    {"nabla", 0x2207}, {"isin", 0x2208}, {"notin", 0x2209}, {"ni", 0x220B}, {"prod", 0x220F},
    {"sum", 0x2211}, {"minus", 0x2212}, {"lowast", 0x2217}, {"radic", 0x221A},
    {"prop", 0x221D}, {"infin", 0x221E}, {"ang", 0x2220}, {"and", 0x2227}, {"or", 0x2228},
    {"cap", 0x2229}, {"cup", 0x222A}, {"int", 0x222B}, {"there4", 0x2234}, {"sim", 0x223C},
    {"cong", 0x2245}, {"asymp", 0x2248}, {"ne", 0x2260}, {"equiv", 0x2261}, {"le", 0x2264},
    {"ge", 0x2265}, {"sub", 0x2282}, {"sup", 0x2283}, {"nsub", 0x2284}, {"sube", 0x2286},
    {"supe", 0x2287}, {"oplus", 0x2295}, {"otimes", 0x2297}, {"perp", 0x22A5},
    {"sdot", 0x22C5},
    /* technical, shapes, card suits */
    {"lceil", 0x2308}, {"rceil", 0x2309}, {"lfloor", 0x230A}, {"rfloor", 0x230B},
    {"lang", 0x27E8}, {"rang", 0x27E9}, {"loz", 0x25CA}, {"spades", 0x2660},
    {"clubs", 0x2663}, {"hearts", 0x2665}, {"diams", 0x2666},
};

static bool name_is(const char *name, const char *s, size_t len)
{
    return strlen(name) == len && memcmp(name, s, len) == 0;
}

/* Returns the code point of the entity s[0..len), or -1 when it is
 * unknown. With legacy_only, only names that HTML allows without the
 * semicolon count. */
static int32_t find_entity(const char *s, size_t len, bool legacy_only)
{
    for (size_t i = 0; i < COUNT(latin1_names); i++) {
        if (name_is(latin1_names[i], s, len))
            return (int32_t)(0xA0 + i);
    }
    for (size_t i = 0; i < COUNT(legacy_entities); i++) {
        if (name_is(legacy_entities[i].name, s, len))
            return legacy_entities[i].cp;
    }
    if (legacy_only)
        return -1;
    for (size_t i = 0; i < COUNT(other_entities); i++) {
        if (name_is(other_entities[i].name, s, len))
            return other_entities[i].cp;
    }
    return -1;
}

/* Windows-1252 characters for the numeric references 0x80 to 0x9F, which
 * the HTML standard maps so. A 0 entry, where Windows-1252 leaves the byte
 * undefined, keeps the code point. */
static const int32_t windows_1252[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
    0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

/* Maps the value of a numeric reference to the code point it stands for. */
static int32_t numeric_code_point(uint32_t value)
{
    if (value == 0 || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF))
        return REPLACEMENT_CHAR;
    if (value >= 0x80 && value <= 0x9F && windows_1252[value - 0x80])
        return windows_1252[value - 0x80];
    return (int32_t)value;
}

static int hex_value(unsigned char c)
{
    if (is_ascii_digit(c))
        return c - '0';
    c = ascii_lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reads the numeric reference that starts with "&#" at s[0], and returns
 * its length with the semicolon, if any, or 0 when no digit follows. */
static size_t read_numeric(const char *s, size_t len, int32_t *cp)
{
    size_t pos = 2;
    int base = 10;
    uint32_t value = 0;
    size_t n_digits = 0;

    if (pos < len && (s[pos] == 'x' || s[pos] == 'X')) {
        base = 16;
        pos++;
    }
    for (; pos < len; pos++, n_digits++) {
        int digit = base == 16 ? hex_value(s[pos]) : is_ascii_digit(s[pos]) ? s[pos] - '0' : -1;

        if (digit < 0)
            break;
        /* Saturate above the Unicode range, so long digit runs cannot wrap. */
        value = value > 0x10FFFF ? value : value * (uint32_t)base + (uint32_t)digit;
    }
    if (n_digits == 0)
        return 0;
    if (pos < len && s[pos] == ';')
        pos++;
    *cp = numeric_code_point(value);
    return pos;
}

/* Reads the named reference that starts with '&' at s[0], and returns its
 * length, or 0 when it is unknown or no reference. */
static size_t read_named(const char *s, size_t len, int32_t *cp)
{
    size_t end = 1;

    while (end < len && (is_ascii_alpha(s[end]) || is_ascii_digit(s[end])))
        end++;
    if (end == 1)
        return 0;
    if (end < len && s[end] == ';') {
        *cp = find_entity(s + 1, end - 1, false);
        return *cp < 0 ? 0 : end + 1;
    }
    *cp = find_entity(s + 1, end - 1, true);
    return *cp < 0 ? 0 : end;
}

char *html_text_decode(const char *s, size_t len)
{
    char *out;
    size_t n = 0;

    if (!s)
        len = 0;
    /* Each byte grows to at most 3 (a NUL byte becomes U+FFFD), and each
     * reference is at least as long as its UTF-8 ("&#9" is 1 byte,
     * "&#0" 3 bytes). */
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    out = malloc(len * 3 + 1);
    if (!out)
        return NULL;

    for (size_t i = 0; i < len;) {
        int32_t cp = -1;
        size_t ref_len = 0;

        if (s[i] == '&' && i + 1 < len)
            ref_len = s[i + 1] == '#' ? read_numeric(s + i, len - i, &cp)
                                      : read_named(s + i, len - i, &cp);
        if (ref_len > 0) {
            n += (size_t)utf8proc_encode_char(cp, (utf8proc_uint8_t *)out + n);
            i += ref_len;
        } else if (s[i] == '\0') {
            n += (size_t)utf8proc_encode_char(REPLACEMENT_CHAR, (utf8proc_uint8_t *)out + n);
            i++;
        } else {
            out[n++] = s[i++];
        }
    }
    out[n] = '\0';
    return out;
}

char *html_text_encode(const char *s)
{
    size_t n = 0;
    char *out, *p;

    if (!s)
        s = "";
    for (const char *c = s; *c; c++) {
        switch (*c) {
        case '&': n += 5; break;
        case '<':
        case '>': n += 4; break;
        case '"': n += 6; break;
        case '\'': n += 5; break;
        default: n++; break;
        }
    }
    out = malloc(n + 1);
    if (!out)
        return NULL;

    p = out;
    for (const char *c = s; *c; c++) {
        const char *rep = NULL;

        switch (*c) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: *p++ = *c; continue;
        }
        memcpy(p, rep, strlen(rep));
        p += strlen(rep);
    }
    *p = '\0';
    return out;
}
