/* Temporary HTML splitter behind html_text.h, used until the real
 * service/html_text.c is in the tree (CMakeLists.txt drops this file then).
 *
 * Markup is a tag from '<' to '>', a comment to "-->", and the content of
 * script and style elements. NOTE: it decodes only the five XML entities,
 * &nbsp; and numeric references; other named references stay as written.
 */
#include "html_text.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Returns the end of the markup that starts with '<' at i. */
static size_t markup_end(const char *html, size_t len, size_t i)
{
    const char *close;
    size_t end;

    if (len - i >= 4 && memcmp(html + i, "<!--", 4) == 0) {
        close = memmem(html + i + 4, len - i - 4, "-->", 3);
        return close ? (size_t)(close - html) + 3 : len;
    }
    close = memchr(html + i, '>', len - i);
    end = close ? (size_t)(close - html) + 1 : len;
    for (int k = 0; k < 2; k++) {
        const char *name = k == 0 ? "script" : "style";
        size_t n = strlen(name);
        char closing[16];

        if (len - i > n + 1 && strncasecmp(html + i + 1, name, n) == 0 &&
            (html[i + 1 + n] == '>' || html[i + 1 + n] == ' ')) {
            snprintf(closing, sizeof(closing), "</%s", name);
            for (size_t j = end; j + n + 2 <= len; j++)
                if (strncasecmp(html + j, closing, n + 2) == 0) {
                    close = memchr(html + j, '>', len - j);
                    return close ? (size_t)(close - html) + 1 : len;
                }
            return len;
        }
    }
    return end;
}

int html_split(const char *html, size_t len, html_piece **pieces, size_t *count)
{
    html_piece *out = malloc((2 * len + 1) * sizeof(*out));
    size_t n = 0, i = 0;

    if (!out)
        return -1;
    while (i < len) {
        size_t end;
        int is_text = html[i] != '<';

        if (is_text) {
            const char *lt = memchr(html + i, '<', len - i);

            end = lt ? (size_t)(lt - html) : len;
        } else {
            end = markup_end(html, len, i);
        }
        out[n++] = (html_piece){i, end - i, is_text};
        i = end;
    }
    *pieces = out;
    *count = n;
    return 0;
}

/* Writes code point cp as UTF-8 to out and returns the byte count. */
static size_t put_utf8(uint32_t cp, char *out)
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

char *html_text_decode(const char *s, size_t len)
{
    static const struct { const char *name; uint32_t cp; } named[] = {
        {"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''},
        {"nbsp;", 0xA0},
    };
    char *out = malloc(len + 1);
    size_t o = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t used = 0;

        if (s[i] == '&' && i + 1 < len && s[i + 1] == '#') {
            int hex = i + 2 < len && (s[i + 2] == 'x' || s[i + 2] == 'X');
            size_t j = i + 2 + (size_t)hex;
            uint32_t cp = 0;
            size_t digits = 0;

            for (; j < len && digits < 8; j++, digits++) {
                char c = s[j];
                int v = c >= '0' && c <= '9' ? c - '0'
                        : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

                if (v < 0)
                    break;
                cp = cp * (hex ? 16 : 10) + (uint32_t)v;
            }
            if (digits > 0 && j < len && s[j] == ';') {
                o += put_utf8(cp, out + o);
                used = j + 1 - i;
            }
        } else if (s[i] == '&') {
            for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++) {
                size_t n = strlen(named[k].name);

                if (len - i - 1 >= n && memcmp(s + i + 1, named[k].name, n) == 0) {
                    o += put_utf8(named[k].cp, out + o);
                    used = n + 1;
                    break;
                }
            }
        }
        if (used == 0)
            out[o++] = s[i++];
        else
            i += used;
    }
    out[o] = '\0';
    return out;
}

char *html_text_encode(const char *s)
{
    size_t len = 0;
    char *out, *p;

    for (const char *c = s; *c; c++)
        len += *c == '&' ? 5 : *c == '<' || *c == '>' ? 4 : *c == '"' || *c == '\'' ? 6 : 1;
    out = malloc(len + 1);
    if (!out)
        return NULL;
    p = out;
    for (const char *c = s; *c; c++) {
        const char *rep = *c == '&' ? "&amp;" : *c == '<' ? "&lt;" : *c == '>' ? "&gt;"
                          : *c == '"' ? "&quot;" : *c == '\'' ? "&#39;" : NULL;

        if (rep) {
            memcpy(p, rep, strlen(rep));
            p += strlen(rep);
        } else {
            *p++ = *c;
        }
    }
    *p = '\0';
    return out;
}
