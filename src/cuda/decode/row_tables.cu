/*
 * row_tables.cu — the host side of the decode schedule (schedule.cuh): which
 * rows of the DeltaNet in-projection each CTA multiplies (the attention
 * in-projection's: qkv_rows.c). md_decode_init builds the tables and copies
 * them to the device, where each CTA keeps its entries in shared memory.
 */
#include <stdlib.h>

#include "cuda/common.cuh"
#include "cuda/decode/decode.cuh"
#include "cuda/decode/schedule.cuh"

/* Recurrence items CTA c of G runs: c, c + G, ... below items (device: md_in_items). */
int md_dec_items_of(int c, int items, int G) {
    return c < items ? (items - 1 - c) / G + 1 : 0;
}

/* The DeltaNet in-projection's shared ("pool") rows per CTA (schedule.cuh,
 * md_in_row): CTA c multiplies pool rows [t[2c], t[2c + 1]) of the 2 Kd +
 * 2 Hv q, k, b and a rows, in whole tiles (16 rows; only the pool's last
 * tile can be short), so a tile never straddles the jump from the k rows to
 * the b rows in w_in, and no tile mixes pool and item rows. Each pool tile
 * goes to the CTA with the fewest tiles so far, counting the two tiles (v,
 * z) of each recurrence item it runs; ties to the lower index. The ranges
 * are laid out from the last CTA down, so CTA 0 takes the pool's end: the
 * b and a rows every item needs, in the first batch of a CTA that has items
 * rows after it (the last CTA, without an item on 132 SMs, publishes only
 * when its phase ends). (0.8B on 132 SMs: 258 pool tiles; 2 on CTAs 0-117,
 * 1 on 118-127, 3 on the four without an item: at most 4 tiles a CTA.)
 * Returns malloc'ed [2G], or NULL. */
int *md_dec_in_qk_table(const md_cuda_dims *d, int G) {
    int *t = (int *)malloc((size_t)(2 * G) * sizeof(int)), *n = (int *)calloc((size_t)G, sizeof(int));
    if (!t || !n) {
        free(t);
        free(n);
        return NULL;
    }
    const int items = d->Hv * (d->dv / MD_DEC_REC_COLS), pool = 2 * d->Kd + 2 * d->Hv;
    const int tiles = (pool + MD_DEC_TILE_ROWS - 1) / MD_DEC_TILE_ROWS, per_item = MD_DEC_IN_ITEM_ROWS / MD_DEC_TILE_ROWS;
    for (int c = 0; c < G; c++) n[c] = per_item * md_dec_items_of(c, items, G);
    for (int k = 0; k < tiles; k++) {
        int best = 0;
        for (int c = 1; c < G; c++)
            if (n[c] < n[best]) best = c;
        n[best]++;
    }
    int at = 0;
    for (int c = G - 1; c >= 0; c--) {
        const int pool_tiles = n[c] - per_item * md_dec_items_of(c, items, G);
        const int end = at + pool_tiles * MD_DEC_TILE_ROWS;
        t[2 * c] = at;
        t[2 * c + 1] = at = end < pool ? end : pool;
    }
    free(n);
    return t;
}
