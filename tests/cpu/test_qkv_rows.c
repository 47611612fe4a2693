/*
 * test_qkv_rows.c — how the decode megakernel deals the attention
 * in-projection's rows to its CTAs (src/cuda/decode/qkv_rows.c), checked on
 * the host: every row of w_qkv dealt exactly once; in the gates-last form
 * each CTA's first range inside one query head's query rows or the k/v
 * rows, its second inside one head's gate rows, and no gates on the CTAs
 * that run attention items when they fit elsewhere; otherwise the plain
 * even split. The shapes the GPU tests run (Qwen3.5-0.8B and the tiny
 * model on 132 SMs, the tiny model on grids of 2, 3 and 7) and more.
 * Run: ctest -R test_qkv_rows (label cpu).
 */
#include <stdlib.h>

#include "cuda/decode/qkv_rows.h"
#include "test_util.h"

typedef struct shape {
    int hq, hkv, D;
} shape;

/* Which segment row r of w_qkv lies in: query head h's query rows 2h, its
 * gate rows 2h + 1, the k and v rows 2 hq. */
static int segment(const shape *s, int r) {
    const int qd = s->hq * s->D;
    return r < 2 * qd ? r / s->D : 2 * s->hq;
}

static bool is_gate(const shape *s, int r) {
    return segment(s, r) < 2 * s->hq && segment(s, r) % 2 == 1;
}

/* Checks the table for (s, G, att_ctas); returns whether it took the
 * gates-last form and the most rows on a CTA with an item and on any CTA. */
static bool check(const shape *s, int G, int att, int *max_item, int *max_all) {
    const int qd = s->hq * s->D, kvd = s->hkv * s->D, n = 2 * qd + 2 * kvd;
    int *t = NULL;
    CHECK_OK(md_dec_qkv_table(s->hq, s->D, qd, kvd, G, att, &t));
    if (!t) return false;
    int *seen = calloc((size_t)n, sizeof(int));
    bool gates_last = false;
    *max_item = *max_all = 0;
    for (int c = 0; c < G; c++) {
        int rows = 0;
        for (int k = 0; k < 2; k++) {
            const int b = t[4 * c + 2 * k], e = t[4 * c + 2 * k + 1];
            CHECK_MSG(0 <= b && b <= e && e <= n, "G=%d CTA %d range %d: [%d, %d)", G, c, k, b, e);
            if (!(0 <= b && b <= e && e <= n)) continue;
            rows += e - b;
            if (k == 1 && e > b) gates_last = true;
            for (int r = b; r < e; r++) seen[r]++;
        }
        *max_all = rows > *max_all ? rows : *max_all;
        if (c < att) *max_item = rows > *max_item ? rows : *max_item;
    }
    for (int r = 0; r < n; r++) CHECK_MSG(seen[r] == 1, "G=%d att=%d: row %d dealt %d times", G, att, r, seen[r]);
    for (int c = 0; c < G; c++) {
        const int b0 = t[4 * c], e0 = t[4 * c + 1], b1 = t[4 * c + 2], e1 = t[4 * c + 3];
        if (gates_last) { /* the first range: q, k or v rows of one segment; the second: one head's gates */
            if (e0 > b0) {
                CHECK_MSG(!is_gate(s, b0) && segment(s, b0) == segment(s, e0 - 1), "G=%d CTA %d: q/k/v range [%d, %d)", G, c, b0, e0);
            }
            if (e1 > b1) {
                CHECK_MSG(is_gate(s, b1) && segment(s, b1) == segment(s, e1 - 1), "G=%d CTA %d: gate range [%d, %d)", G, c, b1, e1);
            }
        } else { /* the even split */
            const int base = n / G, rem = n % G, eb = c * base + (c < rem ? c : rem);
            CHECK_MSG(b0 == eb && e0 == eb + base + (c < rem ? 1 : 0) && b1 == e1, "G=%d CTA %d: not the even split", G, c);
        }
    }
    free(seen);
    free(t);
    return gates_last;
}

int main(void) {
    const shape q08 = {8, 2, 256}, tiny = {4, 2, 64};
    int mi, ma;
    /* Qwen3.5-0.8B on the H100's 132 SMs, 32 attention items: the items' CTAs take 16 or 24
     * q/k/v rows and no gates; the others at most 24 + 24 */
    CHECK(check(&q08, 132, 32, &mi, &ma));
    CHECK_MSG(mi == 24 && ma == 48, "0.8B / 132: %d rows on an item CTA, %d on any", mi, ma);
    /* no items (MEGADELTA_ATTN_WHOLE=0): gates everywhere, at most 24 + 16 */
    CHECK(check(&q08, 132, 0, &mi, &ma));
    CHECK_MSG(ma == 40, "0.8B / 132, no items: %d rows on a CTA", ma);
    /* the tiny test model on 132 SMs: gates last; on the tests' small grids: the even split */
    CHECK(check(&tiny, 132, 4, &mi, &ma));
    CHECK(!check(&tiny, 2, 4, &mi, &ma));
    CHECK(!check(&tiny, 3, 4, &mi, &ma));
    CHECK(!check(&tiny, 7, 4, &mi, &ma));
    /* a 114-SM part: the gates-last form would give a CTA 64 rows against 45: the even split */
    CHECK(!check(&q08, 114, 32, &mi, &ma));
    /* every row once, whatever the form, over other shapes and grids */
    const shape more[] = {{16, 4, 256}, {24, 4, 256}, {32, 2, 256}, {8, 1, 128}, {12, 4, 64}, {1, 1, 64}};
    const int grids[] = {1, 5, 16, 33, 78, 100, 144, 264};
    for (size_t i = 0; i < sizeof more / sizeof *more; i++)
        for (size_t g = 0; g < sizeof grids / sizeof *grids; g++) {
            check(&more[i], grids[g], 0, &mi, &ma);
            check(&more[i], grids[g], 32, &mi, &ma);
            check(&more[i], grids[g], grids[g], &mi, &ma);
        }
    return md_test_finish("test_qkv_rows");
}
