/* Placement of the source tokens that translation must carry into its
 * output unchanged: the originals of placeholders (numbers, URLs, e-mail
 * addresses, emoji) and the words holding units the source vocabulary
 * lacks.
 *
 * The model marks where such a token goes by emitting its placeholder or
 * <unk>. Such output units (carriers) take the source tokens of their
 * kind in order; with fewer carriers than tokens, the alignment picks the
 * tokens taken. A source token no carrier took can still go into the
 * output. It replaces the output word aligned
 * with it when the model rendered it there in a form of its own ("zwei"
 * for "2"), and otherwise goes before the output word aligned with it
 * best. The alignment is the decoder's attention, or for models without
 * attention the relative position in the two sentences.
 */
#ifndef SEQMT_CARRY_H
#define SEQMT_CARRY_H

#include <stdint.h>

#define CARRY_DROP (-2)

/* One source token to carry: its unit position in the source (0 = first
 * unit, in reading order), its kind (only a carrier of the same kind, >= 0,
 * can take it) and whether it goes into the output when no carrier takes
 * it (else it is left out). */
typedef struct {
    int32_t pos;
    int kind;
    int insert;
} carry_item;

/* Writes the indices 0..n_items-1 to order, sorted by source position
 * (items of equal position keep their index order). */
void carry_sort_by_position(const carry_item *items, int n_items, int *order);

/* Plans the output of one sentence.
 * n: output units; S: source units (S > 0); items: n_items tokens.
 * out_kind[j]: the kind of output unit j when it is a carrier, else -1.
 * joins[j]: nonzero when output unit j ends inside a word (a subword with
 *   the continuation marker); NULL when no unit does.
 * align: n rows of S weights, row j for output unit j; NULL aligns by
 *   relative position.
 * Writes take[j], the index of the item that replaces output unit j: the
 * carrier's item, or an item rendered by an ordinary word (see carry.c).
 * The other units of such a word get CARRY_DROP. An ordinary unit, and a
 * carrier left without an item (to be dropped), get -1.
 * Writes at[k], for an item to insert that replaces no unit, the output
 * unit it goes before (n: after the last); else -1. Items keep their
 * source order among themselves and with the carriers' items.
 * Returns 0, or -1 when out of memory. */
int carry_plan(int n, int S, const int *out_kind, const unsigned char *joins,
               const float *align, const carry_item *items, int n_items, int *take, int *at);

#endif
