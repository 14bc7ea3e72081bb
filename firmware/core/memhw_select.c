/*
 * memhw_select.c -- device selections of a row block (PROTOCOL.md §10.4, §10.5): a packed
 * mask, or the LEB128 varints of the gaps between the selected offsets (the C port of
 * firmware_protocol/selection.py unpack_offsets and memhw/mock/measure.py selection).
 */
#include <string.h>

#include "memhw_handlers.h"

/* Check the varint structure as unpack_offsets does, then the last offset against `cells`; counts them. */
static int check_index(memhw_op_t *op, const memhw_value_t *index, uint32_t cells, uint32_t *count)
{
    uint64_t offset = 0, gap = 0;
    uint32_t i, run = 0, n = 0, longest = 0;
    if (index->p[index->n - 1u] & 0x80u) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "index: a varint runs past the end of the selection");
    }
    for (i = 0; i < index->n; i++) {
        run++;
        if (!(index->p[i] & 0x80u)) {
            longest = run > longest ? run : longest;
            run = 0;
        }
    }
    if (longest > 5u) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "index: a varint longer than 5 bytes in the selection");
    }
    for (i = 0; i < index->n; i++) {
        gap |= (uint64_t)(index->p[i] & 0x7Fu) << (7u * run++);
        if (!(index->p[i] & 0x80u)) {
            offset = n ? offset + gap + 1u : gap;
            gap = 0;
            run = 0;
            n++;
        }
    }
    if (offset >= cells) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "index: a selected offset %U is at or beyond %u", offset,
                            cells);
    }
    *count = n;
    return MEMHW_DONE;
}

int memhw_check_selection(memhw_op_t *op, const memhw_value_t *mask, const memhw_value_t *index, uint32_t cells,
                          memhw_selection_t *sel)
{
    uint32_t k;
    sel->bits = mask->p;
    sel->n = 0;
    if (mask->n && index->n) {
        return memhw_refuse(op, MEMHW_STATUS_BAD_PAYLOAD, "give the selection as mask or as index, not both");
    }
    if (index->n) {
        return check_index(op, index, cells, &sel->n);
    }
    if (memhw_check_mask(op, mask, cells) != MEMHW_DONE) {
        return MEMHW_REFUSED;
    }
    for (k = 0; k < cells; k++) {
        sel->n += (uint32_t)memhw_bit(mask->p, k);
    }
    return MEMHW_DONE;
}

void memhw_selection_bits(const memhw_value_t *index, uint32_t cells, memhw_selection_t *sel, uint8_t *scratch)
{
    uint32_t i, shift = 0, n = 0, gap = 0, offset = 0;
    if (!index->n) {
        return; /* the request's mask */
    }
    memset(scratch, 0, (cells + 7u) / 8u);
    for (i = 0; i < index->n; i++) { /* checked: every offset is below cells */
        gap |= (uint32_t)(index->p[i] & 0x7Fu) << shift;
        shift += 7u;
        if (!(index->p[i] & 0x80u)) {
            offset = n ? offset + gap + 1u : gap;
            scratch[offset >> 3] |= (uint8_t)(1u << (offset & 7u));
            gap = shift = 0;
            n++;
        }
    }
    sel->bits = scratch;
}
