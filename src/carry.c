/* Placement of carried source tokens; see carry.h. */
#include "carry.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

/* Added to the score of every carrier-item pair, so that a matching with
 * more pairs always wins over one with fewer (weights are within [-1, 1]). */
#define PAIR_BONUS 1000.0

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

/* Pairs the nc carriers (output units, ascending) with the ni kind_items
 * (ascending source position) of one kind, in order on both sides:
 * as many pairs as the shorter side has, with the highest total weight.
 * score is scratch of (nc + 1) * (ni + 1) doubles. Writes take[]. */
static void match_in_order(int n, int S, const float *align, const carry_item *items,
                           const int *carriers, int nc, const int *kind_items, int ni,
                           double *score, int *take)
{
    int w = ni + 1;

    for (int r = 0; r <= nc; r++)
        for (int s = 0; s <= ni; s++) {
            double best = 0.0;

            if (r > 0 && s > 0) {
                best = score[(r - 1) * w + s - 1] + PAIR_BONUS +
                       weight(align, n, S, carriers[r - 1], items[kind_items[s - 1]].pos);
            }
            if (r > 0 && score[(r - 1) * w + s] > best)
                best = score[(r - 1) * w + s];
            if (s > 0 && score[r * w + s - 1] > best)
                best = score[r * w + s - 1];
            score[r * w + s] = best;
        }
    for (int r = nc, s = ni; r > 0 && s > 0;) {
        if (score[r * w + s] == score[(r - 1) * w + s]) {
            r--;
        } else if (score[r * w + s] == score[r * w + s - 1]) {
            s--;
        } else {
            take[carriers[r - 1]] = kind_items[s - 1];
            r--;
            s--;
        }
    }
}

void carry_sort_by_position(const carry_item *items, int n_items, int *order)
{
    /* Insertion sort: a sentence has few items. */
    for (int k = 0; k < n_items; k++) {
        int i = k;

        for (; i > 0 && items[order[i - 1]].pos > items[k].pos; i--)
            order[i] = order[i - 1];
        order[i] = k;
    }
}

int carry_plan(int n, int S, const int *out_kind, const unsigned char *joins,
               const float *align, const carry_item *items, int n_items, int *take, int *at)
{
    int *carriers = malloc(sizeof(int) * ((size_t)n + 1));
    int *by_pos = malloc(sizeof(int) * ((size_t)n_items + 1));
    int *kind_items = malloc(sizeof(int) * ((size_t)n_items + 1));
    int *where = malloc(sizeof(int) * ((size_t)n_items + 1));
    double *score = malloc(sizeof(double) * ((size_t)n + 1) * ((size_t)n_items + 1));
    int rc = -1;

    if (!carriers || !by_pos || !kind_items || !where || !score)
        goto done;
    for (int j = 0; j < n; j++)
        take[j] = -1;

    carry_sort_by_position(items, n_items, by_pos);

    /* Carriers take items of their kind in order on both sides. When the
     * counts differ, attention picks the pairs but not their order, because
     * the model reads every item of a kind as the same placeholder or <unk>. */
    for (int j = 0; j < n; j++) {
        int nc = 0, ni = 0, seen = 0;

        if (out_kind[j] < 0)
            continue;
        for (int i = 0; i < j; i++)
            seen |= out_kind[i] == out_kind[j];
        if (seen)
            continue;
        for (int i = j; i < n; i++)
            if (out_kind[i] == out_kind[j])
                carriers[nc++] = i;
        for (int i = 0; i < n_items; i++)
            if (items[by_pos[i]].kind == out_kind[j])
                kind_items[ni++] = by_pos[i];
        match_in_order(n, S, align, items, carriers, nc, kind_items, ni, score, take);
    }
    for (int k = 0; k < n_items; k++)
        where[k] = -1;
    for (int j = 0; j < n; j++)
        if (take[j] >= 0)
            where[take[j]] = j;

    /* The items left, in source order, each after the output units of the
     * items before it and before the carrier of the next taken item. An
     * item goes to the output unit in that range aligned with it best. If
     * that unit is aligned with no other source unit more, the model
     * rendered the item there in a form of its own ("zwei" for "2"), so
     * the item replaces the unit's word. Otherwise it goes before that
     * word.
     * NOTE: attention can also single out a content word that only stands
     * near the item ("Ziellinie" for "8 second clock"), and that word is
     * then lost. On Multi30k test this was 1 of 13 replacements. */
    for (int i = 0, last = 0; i < n_items; i++) {
        int k = by_pos[i], hi = n, best, start, end;
        float best_w = -INFINITY;

        at[k] = -1;
        if (where[k] >= 0) {
            if (where[k] + 1 > last)
                last = where[k] + 1;
            continue;
        }
        if (!items[k].insert)
            continue;
        for (int next = i + 1; next < n_items; next++)
            if (where[by_pos[next]] >= 0) {
                hi = where[by_pos[next]];
                break;
            }
        if (hi < last)
            hi = last;
        best = last;
        for (int t = last; t <= hi && t < n; t++) {
            float w = weight(align, n, S, t, items[k].pos);

            if (w > best_w) {
                best = t;
                best_w = w;
            }
        }
        start = best;
        while (joins && start > last && joins[start - 1])
            start--;
        at[k] = start;
        last = start;
        if (!align || best >= n || !mutual_best(align, S, best, items[k].pos))
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
        last = end + 1;
    }
    rc = 0;

done:
    free(carriers);
    free(by_pos);
    free(kind_items);
    free(where);
    free(score);
    return rc;
}
