/* Placeholder masking and unmasking; see placeholder.h. */
#include "placeholder.h"

#include <stdlib.h>
#include <string.h>

const char *placeholder_of(tok_kind kind)
{
    switch (kind) {
    case TOK_NUMBER: return "<num>";
    case TOK_URL: return "<url>";
    case TOK_EMAIL: return "<email>";
    case TOK_EMOJI: return "<emoji>";
    default: return NULL;
    }
}

tok_kind placeholder_kind(const char *token)
{
    static const tok_kind kinds[] = {TOK_NUMBER, TOK_URL, TOK_EMAIL, TOK_EMOJI};

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(token, placeholder_of(kinds[i])) == 0)
            return kinds[i];
    return TOK_PLAIN;
}

int placeholder_is(const char *token)
{
    return placeholder_kind(token) != TOK_PLAIN;
}

int placeholder_mask(tok_list *list, tok_list *saved)
{
    int replaced = 0;

    for (size_t i = 0; i < list->count; i++) {
        const char *ph = placeholder_of(tok_classify(list->items[i]));
        char *copy;

        if (!ph)
            continue;
        if (saved && tok_list_push(saved, list->items[i]))
            return -1;
        copy = strdup(ph);
        if (!copy)
            return -1;
        free(list->items[i]);
        list->items[i] = copy;
        replaced++;
    }
    return replaced;
}

int placeholder_unmask(tok_list *list, const tok_list *saved)
{
    size_t next[5] = {0}; /* per tok_kind: index into saved to search from */
    size_t w = 0;

    for (size_t i = 0; i < list->count; i++) {
        tok_kind kind = placeholder_kind(list->items[i]);
        size_t j;
        char *copy;

        if (kind == TOK_PLAIN) {
            list->items[w++] = list->items[i];
            continue;
        }
        for (j = next[kind]; j < saved->count; j++)
            if (tok_classify(saved->items[j]) == kind)
                break;
        if (j == saved->count) {
            free(list->items[i]);
            continue;
        }
        next[kind] = j + 1;
        copy = strdup(saved->items[j]);
        if (!copy) {
            /* Keep the list consistent: the remaining items move down. */
            list->items[w++] = list->items[i];
            for (size_t k = i + 1; k < list->count; k++)
                list->items[w++] = list->items[k];
            list->count = w;
            return -1;
        }
        free(list->items[i]);
        list->items[w++] = copy;
    }
    list->count = w;
    return 0;
}
