/*
 * schedule.cuh — the decode megakernel's static schedule: which weight rows
 * each CTA streams in each phase, and how they are cut into ring chunks. It
 * is a pure function of (CTA, layer, phase), evaluated identically by the
 * producer warp (to issue copies) and the consumer warps (to consume them),
 * so both walk the same chunk sequence without talking to each other.
 *
 * Rows of a phase are split evenly by bytes: every row of a matrix has the
 * same size, so CTA c gets a contiguous range of units (rows, or two gate/up
 * row pairs) whose count differs from its neighbours' by at most one. All phases
 * that write the residual stream (OUT, O, DOWN) have H rows, so each CTA owns
 * the same rows of h throughout, which lets it initialise them from the
 * embedding without waiting for anyone.
 */
#ifndef MD_CUDA_DECODE_SCHEDULE_CUH
#define MD_CUDA_DECODE_SCHEDULE_CUH

#include "cuda/decode/decode.cuh"

typedef struct md_range {
    int begin, end;
} md_range;

/* The c-th of G near-equal contiguous parts of [0, units), given base =
 * units / G (md_split divides; md_split_grid multiplies). */
__host__ __device__ __forceinline__ md_range md_split_base(int units, int G, int c, int base) {
    const int rem = units - base * G;
    md_range r;
    r.begin = c * base + (c < rem ? c : rem);
    r.end = r.begin + base + (c < rem ? 1 : 0);
    return r;
}

__host__ __device__ __forceinline__ md_range md_split(int units, int G, int c) {
    return md_split_base(units, G, c, units / G);
}

/* n / d as floor(n * ceil(2^32 / d) / 2^32), exact while n * d < 2^32
 * (magic = ceil(2^32 / d), precomputed on the host: md_decode_params). And
 * units / gridDim.x without a division instruction (~20 instructions each,
 * and the schedule divides at every phase of every CTA and warp):
 * floor(units * ceil(2^32 / G) / 2^32) is exact while units * G < 2^32.
 * md_decode_init checks every divisor against the largest count it divides. */
__device__ __forceinline__ int md_udiv(int n, unsigned long long magic) {
    return (int)(((unsigned long long)(unsigned)n * magic) >> 32);
}

__device__ __forceinline__ int md_div_grid(const md_decode_params &p, int units) {
    return md_udiv(units, p.grid_magic);
}

/* md_split(units, gridDim.x, c) (device side, by md_div_grid). */
__device__ __forceinline__ md_range md_split_grid(const md_decode_params &p, int units, int c) {
    return md_split_base(units, (int)gridDim.x, c, md_div_grid(p, units));
}

/* Which rows of a phase a CTA streams, in which order (md_stream_rows, md_stream_row). */
enum {
    MD_ROWS_PLAIN = 0, /* rows [begin, end) of md_split_grid */
    MD_ROWS_IN,        /* a DeltaNet in-projection: virtual rows in the CTA's own order (md_in_row) */
    MD_ROWS_QKV        /* an attention in-projection: virtual rows, two ranges of w_qkv (md_qkv_row) */
};

/* A streamed phase: its matrix, and the unit rows are grouped in (2 for the
 * interleaved gate/up pairs). */
typedef struct md_stream {
    const __nv_bfloat16 *w;
    int rows, cols, unit;
    int order;    /* MD_ROWS_* */
    md_fold fold; /* folded chunks (md_phase_geom), or fold.sc == 0 */
} md_stream;

/* The DeltaNet in-projection keeps the recurrence's column inputs on its
 * CTA. Recurrence item i (value head h, 16-column slice; items i, i + G, ...
 * run on CTA i % G) needs q and k of its key head and b and a of its head,
 * which the head's items share, and its own v and z columns. So CTA c
 * multiplies, in this order: a share of the shared rows (the q and k rows,
 * then every head's b and a rows: a "pool" the host table p.in_qk deals
 * out in whole tiles, row_tables.cu), published as tagged words in a batch
 * of their own; then for each of its items the 16 v rows and the 16 z rows, whose
 * outputs stay in the CTA's shared memory (c.vec after the input h) for its
 * recurrence. The pool's exchange then overlaps the item rows instead of
 * following the whole phase. (0.8B on 132 SMs: 16-48 pool rows a CTA, +32
 * item rows on the 128 with an item: at most 4 tiles; row_tables.cu,
 * md_dec_in_qk_table.) Rows are numbered per CTA ("virtual" rows 0 ..
 * md_stream_rows().end); md_in_row maps them to rows of w_in. */
#define MD_DEC_IN_ITEM_ROWS (2 * MD_DEC_REC_COLS)

/* Recurrence items of CTA c. */
__device__ __forceinline__ int md_in_items(const md_decode_params &p, int c) {
    const int items = p.d.Hv * (p.d.dv / MD_DEC_REC_COLS);
    return c < items ? md_div_grid(p, items - 1 - c) + 1 : 0;
}

/* This CTA's pool rows, [in_qk[2c], in_qk[2c + 1]) for c = blockIdx.x, kept in
 * shared memory from the kernel's start (md_in_qk_load): a global load per
 * use put an L2 round trip at the start of every in-projection and into
 * the producer's fills. */
static __shared__ int md_s_in_qk[2];

/* (static, like the variable: each build of the kernel has its own) */
static __device__ __forceinline__ void md_in_qk_load(const md_decode_params &p) {
    md_s_in_qk[0] = p.in_qk[2 * blockIdx.x];
    md_s_in_qk[1] = p.in_qk[2 * blockIdx.x + 1];
}

static __device__ __forceinline__ md_range md_in_qk(void) {
    md_range r = {md_s_in_qk[0], md_s_in_qk[1]};
    return r;
}

/* Row of w_in behind CTA c's virtual row k (c = blockIdx.x, qk = md_in_qk()). */
__device__ __forceinline__ int md_in_row(const md_decode_params &p, int c, const md_range &qk, int k) {
    const md_cuda_dims &d = p.d;
    const int nq = qk.end - qk.begin;
    if (k < nq) { /* the pool: q, k rows, then b, a rows */
        const int i = qk.begin + k;
        return i < 2 * d.Kd ? i : d.cd + d.Vd + i - 2 * d.Kd;
    }
    const int j = k - nq, it = (int)((unsigned)j / MD_DEC_IN_ITEM_ROWS), e = j - it * MD_DEC_IN_ITEM_ROWS;
    const int item = c + it * (int)gridDim.x;
    return (e < MD_DEC_REC_COLS ? 2 * d.Kd : d.cd - MD_DEC_REC_COLS) + item * MD_DEC_REC_COLS + e; /* v, z */
}

/* The attention in-projection's rows of this CTA (p.qkv_rows, dealt by the
 * host: qkv_rows.c, md_dec_qkv_table): a range of q, k or v rows of w_qkv, then a
 * range of gate rows, each tiled and published on its own (md_stream_split),
 * so the items' inputs are out before the gates. Kept in shared memory from
 * the kernel's start, as md_s_in_qk. */
static __shared__ int md_s_qkv[4];

static __device__ __forceinline__ void md_qkv_load(const md_decode_params &p) {
#pragma unroll
    for (int k = 0; k < 4; k++) md_s_qkv[k] = p.qkv_rows[4 * blockIdx.x + k];
}

/* Virtual rows before the gates. */
__device__ __forceinline__ int md_qkv_first(void) {
    return md_s_qkv[1] - md_s_qkv[0];
}

/* Row of w_qkv behind this CTA's virtual row k. */
__device__ __forceinline__ int md_qkv_row(int k) {
    const int n0 = md_qkv_first();
    return k < n0 ? md_s_qkv[0] + k : md_s_qkv[2] + (k - n0);
}

/* Row of s.w behind this CTA's row k of the phase. */
__device__ __forceinline__ int md_stream_row(const md_decode_params &p, const md_stream &s, int k) {
    return s.order == MD_ROWS_IN ? md_in_row(p, blockIdx.x, md_in_qk(), k) : s.order == MD_ROWS_QKV ? md_qkv_row(k) : k;
}

/* Fills s and returns true when (layer, phase) streams weights; layer ==
 * n_layers is the LM head (phase 0). */
__device__ __forceinline__ bool md_phase_stream(const md_decode_params &p, int layer, int phase, md_stream *s) {
    const md_cuda_dims &d = p.d;
    s->unit = 1;
    s->order = MD_ROWS_PLAIN;
    s->fold.sc = s->fold.n = 0;
    if (layer == d.n_layers) {
        s->w = p.lm_head;
        s->rows = d.vocab;
        s->cols = d.H;
        return phase == 0;
    }
    const md_cuda_layer *L = &p.layers[layer];
    switch (phase) {
    case MD_PH_MIX_IN:
        s->w = L->full ? L->w_qkv : L->w_in;
        s->rows = L->full ? d.n_qkv : d.n_in;
        s->cols = d.H;
        s->order = L->full ? MD_ROWS_QKV : MD_ROWS_IN;
        return true;
    case MD_PH_MIX_OUT:
        s->w = L->full ? L->w_o : L->w_out;
        s->rows = d.H;
        s->cols = L->full ? d.qd : d.Vd;
        s->fold = p.fold[L->full ? MD_FOLD_O : MD_FOLD_OUT];
        return true;
    case MD_PH_GU:
        s->w = L->w_gu;
        s->rows = 2 * d.I;
        s->cols = d.H;
        s->unit = 2;
        return true;
    case MD_PH_DOWN:
        s->w = L->w_down;
        s->rows = d.H;
        s->cols = d.I;
        s->fold = p.fold[MD_FOLD_DOWN];
        return true;
    default:
        return false; /* REC / ATTN read state, not weights */
    }
}

/* Where a phase's tiles restart: the DeltaNet in-projection's item rows
 * begin a tile of their own after the pool rows, the attention
 * in-projection's gate rows after its q, k or v rows (so every tile's rows
 * are contiguous in the matrix, and the first part is published in batches
 * of its own). */
__device__ __forceinline__ int md_stream_split(const md_decode_params &p, const md_stream &s) {
    if (s.order == MD_ROWS_QKV) return md_qkv_first();
    if (s.order != MD_ROWS_IN) return 0;
    const md_range qk = md_in_qk();
    return qk.end - qk.begin;
}

/* The rows [begin, end) of a streamed phase that this CTA streams. */
__device__ __forceinline__ md_range md_stream_rows(const md_decode_params &p, const md_stream &s) {
    const int cta = blockIdx.x;
    if (s.order == MD_ROWS_IN) { /* virtual rows (md_in_row) */
        const md_range qk = md_in_qk();
        const md_range r = {0, qk.end - qk.begin + MD_DEC_IN_ITEM_ROWS * md_in_items(p, cta)};
        return r;
    }
    if (s.order == MD_ROWS_QKV) { /* virtual rows (md_qkv_row) */
        const md_range r = {0, md_qkv_first() + md_s_qkv[3] - md_s_qkv[2]};
        return r;
    }
    /* gate/up: whole pairs of units (4 rows), so a CTA's outputs come in the
     * pairs GU publishes split (md_ll_store_split2; the intermediate size is
     * a multiple of 32) */
    const int sh = s.unit == 2 ? 2 : 0; /* (unit is 1 or 2) */
    const md_range u = md_split_grid(p, s.rows >> sh, cta);
    const md_range r = {u.begin << sh, u.end << sh};
    return r;
}

/* Ring chunks. The consumers multiply with tensor cores (mma m16n8k16), so
 * a chunk is one tile of MD_DEC_TILE_ROWS rows (fewer at the end of a CTA's
 * slice) by one column segment: the widest multiple of 64 columns whose tile
 * fits in a stage (whole rows when they fit, as for every 1024-wide matrix
 * of the 0.8B). Rows land in shared memory md_seg_stride() bytes apart, an
 * odd multiple of 16, so the eight 16-byte row pieces one ldmatrix phase
 * reads sit in different banks. Column counts are multiples of 32
 * (md_decode_init checks). */
__host__ __device__ __forceinline__ int md_seg_stride(int seg_cols) {
    return ((seg_cols * 2 + 127) & ~127) + 16;
}

/* Columns per segment: all of them when a padded tile of whole rows fits in
 * a stage, else the widest multiple of 64 that does (at least 64). */
__host__ __device__ __forceinline__ int md_seg_cols(int cols, int stage_bytes) {
    int sc = ((stage_bytes / MD_DEC_TILE_ROWS - 16) & ~127) / 2;
    if (sc < 64) sc = 64;
    return sc >= cols ? cols : sc;
}

/* Segments of sc columns in cols (a few: no division). */
__host__ __device__ __forceinline__ int md_seg_count(int cols, int sc) {
    int n = 1;
#pragma unroll 1
    for (int c = sc; c < cols; c += sc) n++;
    return n;
}

/* The column geometry of a phase's chunks: a tile's chunks (nseg), the
 * columns of each piece (sc), and pieces a chunk (fold). Plain: a chunk is
 * one tile by one segment of sc columns (the last may be narrower). Folded
 * (the phases with H rows when no CTA has more than 8 of them: OUT, O and
 * DOWN of the 0.8B on 132 SMs, 7-8 rows a CTA): a chunk holds two pieces
 * of sc columns of the same <= 8 rows, the first in stage rows 0-7, the
 * next in rows 8-15, so a 1024-row phase fills its stages instead of
 * leaving half of each empty, and its chunks hold half as many stages of
 * the ring (DOWN of the 0.8B: 2 instead of 4, leaving 3 of the 5 for the
 * next in-projection while DOWN waits). The host picks sc so the pieces
 * are all equally wide (md_decode_init: p.fold). */
typedef struct md_geom {
    int sc, nseg, fold;
} md_geom;

__device__ __forceinline__ md_geom md_phase_geom(const md_decode_params &p, const md_stream &s) {
    md_geom g;
    if (s.fold.sc) {
        g.sc = s.fold.sc;
        g.nseg = s.fold.n;
        g.fold = 2;
    } else {
        g.sc = md_seg_cols(s.cols, p.stage_bytes);
        g.nseg = md_seg_count(s.cols, g.sc);
        g.fold = 1;
    }
    return g;
}

/* What the consumer warps need of a streamed phase's schedule (md_consume_rows):
 * its rows (md_stream_rows), where its tiles restart (md_stream_split), its
 * columns and chunk geometry (md_phase_geom; the unit, 2 for GU and 1
 * elsewhere, stays a constant of each call site). All of it is the same for
 * every layer of a kind, so each CTA computes it once a launch into shared
 * memory (md_plans_init) and a phase reads it once its inputs are there:
 * computed there, it was 80-140 instructions (constant-bank loads, the grid
 * division, the segment count) between the inputs and the first chunk. The
 * producer walks the same functions (md_cursor_next). */
typedef struct __align__(16) md_plan {
    int r_begin, r_end, split, cols;
    int sc, nseg, fold;
} md_plan;
enum { MD_PLAN_IN = 0, MD_PLAN_QKV, MD_PLAN_OUT, MD_PLAN_O, MD_PLAN_GU, MD_PLAN_DOWN, MD_PLAN_LM, MD_PLANS };

static __shared__ md_plan md_s_plan[MD_PLANS];

/* Fills md_s_plan (consumer threads tid < MD_PLANS, a kind each; after
 * md_in_qk_load and md_qkv_load, before a barrier). A kind no layer has
 * (a model without attention layers) stays unset: nothing reads it. */
static __device__ void md_plans_init(const md_decode_params &p, int tid) {
    if (tid >= MD_PLANS) return;
    const int kind = tid;
    int layer = 0, phase = 0;
    if (kind == MD_PLAN_LM) {
        layer = p.d.n_layers;
    } else {
        phase = kind == MD_PLAN_IN || kind == MD_PLAN_QKV ? MD_PH_MIX_IN : kind == MD_PLAN_OUT || kind == MD_PLAN_O ? MD_PH_MIX_OUT
              : kind == MD_PLAN_GU ? MD_PH_GU : MD_PH_DOWN;
        if (kind != MD_PLAN_GU && kind != MD_PLAN_DOWN) { /* (GU and DOWN are alike in both kinds of layer: layer 0's) */
            const bool full = kind == MD_PLAN_QKV || kind == MD_PLAN_O;
            while (layer < p.d.n_layers && p.layers[layer].full != full) layer++;
            if (layer == p.d.n_layers) return;
        }
    }
    md_stream s;
    md_phase_stream(p, layer, phase, &s);
    const md_range r = md_stream_rows(p, s);
    const md_geom g = md_phase_geom(p, s);
    md_plan pl;
    pl.r_begin = r.begin;
    pl.r_end = r.end;
    pl.split = md_stream_split(p, s);
    pl.cols = s.cols;
    pl.sc = g.sc;
    pl.nseg = g.nseg;
    pl.fold = g.fold;
    md_s_plan[kind] = pl;
}

/* Phases per layer in schedule order; the LM head is one more "layer". */
__device__ __forceinline__ int md_phases_of(const md_decode_params &p, int layer) {
    return layer == p.d.n_layers ? 1 : MD_PHASES_PER_LAYER;
}

__device__ __forceinline__ bool md_is_stop(const md_decode_params &p, int layer, int phase) {
    return MD_DEC_INSTRUMENTED && layer == p.stop_layer && phase == p.stop_phase;
}

#endif
