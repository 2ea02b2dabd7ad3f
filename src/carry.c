/* Placement of carried source tokens; see carry.h. */
#include "carry.h"

#include <math.h>
#include <stddef.h>

/* Alignment weight of output unit t (of n) with source unit p (of S). */
static float weight(const float *align, int n, int S, int t, int p)
{
    if (align)
        return align[(size_t)t * S + p];
    return -fabsf(((float)t + 0.5f) / (float)n - ((float)p + 0.5f) / (float)S);
}

/* Returns whether source unit p has the highest weight in step t's row. */
static int mutual_best(const float *align, int S, int t, int p)
{
    const float *row = align + (size_t)t * S;

    for (int q = 0; q < S; q++)
        if (row[q] > row[p])
            return 0;
    return 1;
}

void carry_plan(int n, int S, const int *out_kind, const unsigned char *joins,
                const float *align, const carry_item *items, int n_items, int *take,
                int *at)
{
    for (int k = 0; k < n_items; k++)
        at[k] = 0; /* 0: free; set to -1 once a carrier takes the item */

    /* Carriers in output order. When a kind has as many carriers as
     * items, they take the items in source order. Attention alone would
     * swap them more often, because the model reads every item of a kind
     * as the same placeholder or <unk>. Otherwise each carrier takes the
     * free item of its kind it is aligned with best. */
    for (int j = 0; j < n; j++) {
        int best = -1, carriers = 0, of_kind = 0;
        float best_w = -INFINITY;

        take[j] = -1;
        if (out_kind[j] < 0)
            continue;
        for (int i = 0; i < n; i++)
            carriers += out_kind[i] == out_kind[j];
        for (int k = 0; k < n_items; k++)
            of_kind += items[k].kind == out_kind[j];
        for (int k = 0; k < n_items; k++) {
            float w;

            if (at[k] < 0 || items[k].kind != out_kind[j])
                continue;
            if (carriers == of_kind) {
                best = k;
                break;
            }
            w = weight(align, n, S, j, items[k].pos);
            if (best < 0 || w > best_w) {
                best = k;
                best_w = w;
            }
        }
        if (best >= 0) {
            take[j] = best;
            at[best] = -1;
        }
    }

    /* Every item left to insert goes to the output unit aligned with it
     * best. If that unit is aligned with no other source unit more, the
     * model rendered the item there in a form of its own ("zwei" for "2"),
     * so the item replaces the unit's word. Otherwise it goes before that
     * word. */
    for (int k = 0; k < n_items; k++) {
        int best = 0, start, end;
        float best_w = -INFINITY;

        if (at[k] < 0)
            continue;
        if (!items[k].insert) {
            at[k] = -1;
            continue;
        }
        for (int t = 0; t < n; t++) {
            float w = weight(align, n, S, t, items[k].pos);

            if (w > best_w) {
                best = t;
                best_w = w;
            }
        }
        start = best;
        while (joins && start > 0 && joins[start - 1])
            start--;
        at[k] = start;
        if (!align || n == 0 || !mutual_best(align, S, best, items[k].pos))
            continue;
        for (end = start; end < n && joins && joins[end]; end++)
            ;
        if (end == n)
            continue; /* the sentence stopped inside the word */
        int free_word = 1;
        for (int j = start; j <= end; j++)
            free_word &= out_kind[j] < 0 && take[j] == -1;
        if (!free_word)
            continue;
        take[start] = k;
        for (int j = start + 1; j <= end; j++)
            take[j] = CARRY_DROP;
        at[k] = -1;
    }
}
