/* Temporary sentence splitter behind vocab/sentence.h, used until the real
 * vocab/sentence.c is in the tree (CMakeLists.txt drops this file then).
 *
 * A sentence ends after a run of '.', '!' or '?', optionally followed by
 * closing quotes or brackets, when whitespace or the end of the line comes
 * next. NOTE: it has no list of abbreviations, so "Dr. Smith" is split in two.
 */
#include "sentence.h"

#include <stdlib.h>
#include <string.h>

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int is_closer(char c)
{
    return c == '"' || c == '\'' || c == ')' || c == ']';
}

/* Returns the end of the sentence that starts at start. */
static size_t sentence_end(const char *text, size_t len, size_t start)
{
    for (size_t i = start; i < len; i++) {
        size_t k = i;

        if (text[i] != '.' && text[i] != '!' && text[i] != '?')
            continue;
        while (k < len && (text[k] == '.' || text[k] == '!' || text[k] == '?'))
            k++;
        while (k < len && is_closer(text[k]))
            k++;
        if (k == len || is_space(text[k]))
            return k;
        i = k - 1;
    }
    return len;
}

size_t sentence_split(const char *text, size_t len, sentence_span **spans)
{
    sentence_span *out = malloc((len / 2 + 1) * sizeof(*out));
    size_t count = 0, i = 0;

    if (!out)
        return (size_t)-1;
    for (;;) {
        size_t end;

        while (i < len && is_space(text[i]))
            i++;
        if (i == len)
            break;
        end = sentence_end(text, len, i);
        out[count].start = i;
        while (end > i && is_space(text[end - 1]))
            end--;
        out[count].len = end - i;
        count++;
        i = end;
    }
    *spans = out;
    return count;
}
