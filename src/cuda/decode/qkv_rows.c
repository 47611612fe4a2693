/*
 * qkv_rows.c — which rows of the attention in-projection (w_qkv) each CTA
 * of the decode megakernel multiplies (schedule.cuh, md_qkv_row). Plain C,
 * so the CPU tests check the dealing (tests/cpu/test_qkv_rows.c).
 */
#include <stdbool.h>
#include <stdlib.h>

#include "common/status.h"
#include "cuda/decode/qkv_rows.h"

/* Where the c-th of G near-equal contiguous parts of [0, units) begins
 * (schedule.cuh's md_split: the first units % G parts one longer). */
static int split_begin(int units, int G, int c) {
    const int base = units / G, rem = units - base * G;
    return c * base + (c < rem ? c : rem);
}

/* Deals segments of rows (segment i: rows [b[i], b[i] + n[i]) of a matrix,
 * n[i] a multiple of 8) to consecutive CTAs, CTA k of the sequence (from CTA
 * 0 up, or from G - 1 down) taking the range t[stride * c], t[stride * c +
 * 1]: each segment split evenly, in units of 8 rows, over as few CTAs as hold
 * at most `cap` units each, cap the least for which they need at most
 * `limit` CTAs. False where none does (more segments than `limit`). */
static bool deal_segments(const int *b, const int *n, int nseg, int limit, int G, bool down, int *t, int stride) {
    int total = 0, widest = 0;
    for (int i = 0; i < nseg; i++) {
        total += n[i] / 8;
        widest = n[i] / 8 > widest ? n[i] / 8 : widest;
    }
    if (nseg > limit) return false;
    int cap = (total + limit - 1) / limit;
    for (cap = cap < 1 ? 1 : cap; cap < widest; cap++) { /* (at cap = widest every segment takes one CTA) */
        int need = 0;
        for (int i = 0; i < nseg; i++) need += (n[i] / 8 + cap - 1) / cap;
        if (need <= limit) break;
    }
    int k = 0;
    for (int i = 0; i < nseg; i++) {
        const int units = n[i] / 8, parts = (units + cap - 1) / cap;
        for (int j = 0; j < parts; j++, k++) {
            const int c = down ? G - 1 - k : k;
            t[stride * c] = b[i] + 8 * split_begin(units, parts, j);
            t[stride * c + 1] = b[i] + 8 * split_begin(units, parts, j + 1);
        }
    }
    return true;
}

/* The attention layers' in-projection rows per CTA (schedule.cuh,
 * md_qkv_row): CTA c multiplies rows [t[4c], t[4c + 1]) of w_qkv, then [t[4c
 * + 2], t[4c + 3]), each range published in batches of its own. The first
 * holds query, key or value rows, the second output-gate rows, which the
 * attention items need only at their end (md_attention_whole_pv). Each range
 * lies in one segment contiguous in w_qkv (a query head's D query rows, the
 * key and value rows, a head's D gate rows: deal_segments), the q/k/v ranges
 * dealt from CTA 0 up, the gate ranges from the last CTA down, and where
 * they fit, only to CTAs without a whole-context attention item (the items
 * run on CTAs 0 .. att_ctas - 1): those start their item after their q/k/v
 * rows, as early as the last q/k/v rows are out, while the others multiply
 * the gates. Where that gives a CTA with an item more than 8 rows beyond an
 * even split of all rows, or another more than 16 (small grids), CTA c takes
 * its even split's contiguous rows as its first range and no second. (0.8B on 132 SMs, 32
 * items: 16 or 24 q/k/v rows on CTAs 0-130, 16 or 24 gate rows on CTAs 44-131:
 * at most 24 rows on a CTA with an item, 48 on the others, against 39 split
 * evenly.) Every row is checked to be dealt once. Sets *out to a malloc'ed
 * [4G]. */
md_status md_dec_qkv_table(int hq, int D, int qd, int kvd, int G, int att_ctas, int **out) {
    const int n_qkv = 2 * qd + 2 * kvd;
    int *t = (int *)calloc((size_t)(4 * G), sizeof(int)), *seen = (int *)calloc((size_t)n_qkv, sizeof(int));
    int *b = (int *)malloc((size_t)(4 * hq + 2) * sizeof(int)), *n = b ? b + 2 * hq + 1 : NULL; /* segments: begin, rows */
    *out = NULL;
    if (!t || !seen || !b) {
        free(t);
        free(seen);
        free(b);
        return md_fail(MD_ERR_OUT_OF_MEMORY, "GPU decode: out of host memory");
    }
    for (int h = 0; h < hq; h++) { /* q/k/v segments: the query heads, then k and v; gate segments after them */
        b[h] = 2 * D * h;
        b[hq + 1 + h] = 2 * D * h + D;
        n[h] = n[hq + 1 + h] = D;
    }
    b[hq] = 2 * qd;
    n[hq] = 2 * kvd;
    att_ctas = att_ctas < G ? att_ctas : G;
    bool dealt = deal_segments(b, n, hq + 1, G, G, false, t, 4) &&
                 (deal_segments(b + hq + 1, n + hq + 1, hq, G - att_ctas, G, true, t + 2, 4) ||
                  deal_segments(b + hq + 1, n + hq + 1, hq, G, G, true, t + 2, 4));
    const int even = (n_qkv + G - 1) / G;
    for (int c = 0; c < G && dealt; c++) dealt = t[4 * c + 1] - t[4 * c] + t[4 * c + 3] - t[4 * c + 2] <= even + (c < att_ctas ? 8 : 16);
    for (int c = 0; c < G && !dealt; c++) {
        t[4 * c] = split_begin(n_qkv, G, c);
        t[4 * c + 1] = split_begin(n_qkv, G, c + 1);
        t[4 * c + 2] = t[4 * c + 3] = 0;
    }
    for (int c = 0; c < G; c++)
        for (int k = 0; k < 2; k++)
            for (int r = t[4 * c + 2 * k]; r < t[4 * c + 2 * k + 1]; r++) seen[r]++;
    bool once = true;
    for (int r = 0; r < n_qkv; r++) once = once && seen[r] == 1;
    free(seen);
    free(b);
    if (!once) {
        free(t);
        return md_fail(MD_ERR_UNSUPPORTED, "GPU decode: internal error: the attention in-projection's rows are not dealt once each over %d CTAs", G);
    }
    *out = t;
    return MD_OK;
}
