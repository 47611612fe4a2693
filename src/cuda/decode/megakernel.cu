/*
 * megakernel.cu — the decode megakernel (see decode.cuh for the design).
 *
 * Precision: bf16 weights and KV cache, fp32 activations, accumulation and
 * DeltaNet state. Every reduction adds in a fixed order, so runs are bitwise
 * repeatable. One template, two fill paths: HOPPER streams the ring with bulk
 * async copies (sm_90); the portable path uses cp.async (sm_80+). The math is
 * the same source for both.
 *
 * Shared memory: [ring: n_stages x stage_bytes][full mbarriers][empty
 * mbarriers][vec: vec_floats fp32, the current phase's input vector or the
 * attention scratch][red: 128 floats for reductions][pre: conv windows]
 * [res: per-warp partial dot products][xb: the input as bf16 high/low
 * halves][h_own: this CTA's residual rows][conv windows resident for the
 * launch, when p.conv_rows (md_conv_win)]; and, static, this CTA's pool
 * range of the DeltaNet in-projection, its two row ranges of the attention
 * in-projection and each streamed phase's plan (md_s_in_qk, md_s_qkv,
 * md_s_plan: schedule.cuh).
 *
 * Row dot products run on the tensor cores: a 16-row tile of weights times
 * the input split into two bf16 halves (x = hi + lo) as two columns of an
 * m16n8k16 mma, accumulating in fp32 — ~16 significant bits of x, bf16
 * weights exact. The FMA version was issue-bound at ~40 KB of weights per
 * microsecond per SM (half of it unpacking bf16).
 */
/* Two builds of this file: the one decode runs, and (megakernel_instrumented.cu,
 * MD_DEC_INSTRUMENTED 1) the one it runs under MEGADELTA_TRACE, _DELAY_SEED,
 * _PROBE, _STOP or _POLL_NS, which alone carries the trace recording, the
 * random delays, the timing probes, the early stop and the poll back-off:
 * their tests and clock reads were ~16 KB of code in every run's instruction
 * stream (tg128 +1.7% without them). */
#ifndef MD_DEC_INSTRUMENTED
#define MD_DEC_INSTRUMENTED 0
#endif
#if MD_DEC_INSTRUMENTED
#define MD_DEC_FN(name) name##_instrumented
#else
#define MD_DEC_FN(name) name
#endif

#include <float.h>
#include <limits.h>

#include "cuda/common.cuh"
#include "cuda/decode/decode.cuh"
#include "cuda/decode/schedule.cuh"
#include "cuda/decode/sync.cuh"

#define MD_TRACING(p) (MD_DEC_INSTRUMENTED && (p).trace != nullptr)

#define NCW MD_DEC_CONSUMER_WARPS
#define NCT (NCW * 32)
#define RED_FLOATS 128
#define MAX_DK_LANE 4 /* dk / 32: key head dims up to 128 */

#define REC_COLS_PER_WARP ((MD_DEC_REC_COLS + NCW - 1) / NCW) /* warp w owns columns w, w + NCW, ... of an item */
#define REC_MINE(w, cc) ((w) + NCW * (cc) < MD_DEC_REC_COLS)      /* warp w has a cc-th column */
#define MD_REC_SSQ 32 /* c.red[32, 32 + MD_DEC_REC_COLS): a recurrence item's o^2 per column */
#define MD_KV_APPENDED 127 /* c.red[127] (an int): this CTA appended KV rows in this step (md_attention, md_argmax_finish) */
#define MD_ARGMAX 64  /* c.red[64, 64 + 2 NCW]: md_argmax_finish's scratch (c.red[0, NCW) holds the final norm's
                         sums of squares until the LM head's last epilogue, which no barrier follows) */

/* The logistic function and SiLU with __fdividef instead of common.cuh's
 * IEEE division (its slow path is code at every call site, which the
 * instruction cache has to hold; the approximate division is within 2 ulp
 * like __expf). Limits: x -> -inf gives 0 (__fdividef by
 * an infinite or huge denominator returns 0), x -> +inf gives 1. */
__device__ __forceinline__ float md_fast_sigmoid(float x) {
    return __fdividef(1.0f, 1.0f + __expf(-x));
}

__device__ __forceinline__ float md_fast_silu(float x) {
    return x * md_fast_sigmoid(x);
}

/* Everything but the host entry points in a namespace of each build's own
 * (both builds' out-of-line device functions have host-side symbols) */
namespace MD_DEC_FN(md_megakernel) {

/* ================================================================ producer */

/* A cursor over this CTA's chunk sequence: every streamed phase of every
 * layer of every step, in schedule order (stopping early in each step under
 * MEGADELTA_STOP); within a phase, tile by tile and within a tile segment by
 * segment (schedule.cuh). The producer runs two: one filling the ring, one
 * ahead of it prefetching into L2. */
typedef struct md_cursor {
    int step, layer, phase, r, seg; /* r: first row of the current tile, -1 before the phase starts */
    md_stream s;
    md_range rows;
    int split; /* tiles restart at this row (md_stream_split) */
    md_geom g;
} md_cursor;

/* One ring chunk: nr rows of `bytes` each, `pitch` bytes apart in global
 * memory, to land `stride` bytes apart in the stage; folded (md_phase_geom),
 * each row's next `bytes` too, 8 stage rows further on. */
typedef struct md_chunk {
    const __nv_bfloat16 *src;
    uint32_t nr, bytes, pitch, stride;
    bool fold;
} md_chunk;

/* Advances to the next chunk; false at the end of the schedule. */
__device__ bool md_cursor_next(const md_decode_params &p, md_cursor &c, md_chunk *k) {
    for (;;) {
        if (c.step >= p.n_steps) return false;
        if (c.r >= 0 && c.r < c.rows.end) {
            const int lim = c.r < c.split ? c.split : c.rows.end;
            const int nr = lim - c.r < MD_DEC_TILE_ROWS ? lim - c.r : MD_DEC_TILE_ROWS;
            const int c0 = c.seg * c.g.sc * c.g.fold, w = c.s.cols - c0 < c.g.sc ? c.s.cols - c0 : c.g.sc;
            /* (an in-projection tile's rows are contiguous in the matrix: md_stream_split) */
            const int row = md_stream_row(p, c.s, c.r);
            k->src = c.s.w + (size_t)row * c.s.cols + c0;
            k->nr = (uint32_t)nr;
            k->bytes = (uint32_t)w * 2u;
            k->pitch = (uint32_t)c.s.cols * 2u;
            k->stride = (uint32_t)md_seg_stride(c.g.sc);
            k->fold = c.g.fold == 2;
            if (++c.seg == c.g.nseg) {
                c.seg = 0;
                c.r += nr;
            }
            return true;
        }
        /* the current phase is done (or not begun): move to the next streamed one */
        if (c.r >= 0) {
            const bool stop = md_is_stop(p, c.layer, c.phase);
            if (++c.phase >= md_phases_of(p, c.layer) || stop) {
                c.phase = 0;
                if (++c.layer > p.d.n_layers || stop) {
                    c.layer = 0;
                    c.step++;
                }
            }
        }
        c.r = -1;
        c.seg = 0;
        if (c.step >= p.n_steps) return false;
        if (md_phase_stream(p, c.layer, c.phase, &c.s)) {
            c.rows = md_stream_rows(p, c.s);
            c.split = md_stream_split(p, c.s);
            c.g = md_phase_geom(p, c.s);
            c.r = c.rows.begin;
            if (c.r >= c.rows.end) c.r = c.rows.end; /* empty slice: fall through to the next phase */
        } else {
            c.r = 0;
            c.rows.begin = c.rows.end = c.split = 0; /* no weights in this phase */
        }
    }
}

template <bool HOPPER, bool FOLD>
__device__ void md_producer(const md_decode_params &p, uint8_t *ring, uint64_t *full, uint64_t *empty, int lane) {
    if (HOPPER && lane != 0) return;
    const uint64_t pol = md_policy_evict_first();
    const unsigned S = p.n_stages, ahead = S + (unsigned)p.prefetch_chunks;
    md_cursor fill = {0, 0, 0, -1, 0}, pre = {0, 0, 0, -1, 0};
    unsigned k = 0, kp = 0, slot = 0, use = 0; /* chunk k goes to slot k % S, its use-th fill there */
    unsigned long long t_next = 0; /* MD_DEC_PACE_NS: the earliest time for the next chunk */
    md_chunk ch;
    bool pre_more = p.prefetch_chunks > 0; /* (the second cursor only walks when it prefetches) */
    while (md_cursor_next(p, fill, &ch)) {
        while (pre_more && kp < k + ahead) {
            md_chunk pc;
            if (!(pre_more = md_cursor_next(p, pre, &pc))) break;
            if (kp >= k + S) { /* chunks within the ring's reach are filled soon anyway */
                const uint32_t span = (pc.nr - 1) * pc.pitch + pc.bytes * (pc.fold ? 2 : 1);
                if (HOPPER) md_prefetch_l2_bulk(pc.src, span);
                else md_prefetch_l2_lanes(pc.src, span, lane);
            }
            kp++;
        }
        if (use > 0) md_mbar_wait(&empty[slot], (use - 1) & 1, p, 2, fill.layer, fill.phase);
        if (p.pace_fx && fill.layer < p.d.n_layers) { /* MD_DEC_PACE_NS, in proportion to the chunk's bytes */
            unsigned long long now = md_globaltimer();
            while (now < t_next) {
                __nanosleep(128);
                now = md_globaltimer();
            }
            t_next = now + (unsigned)(((unsigned long long)(ch.nr * ch.bytes * (FOLD && ch.fold ? 2u : 1u)) * p.pace_fx) >> 16);
        }
        uint8_t *dst = ring + (size_t)slot * p.stage_bytes;
        if (MD_DEC_INSTRUMENTED && (p.probe & 1)) { /* timing probe: no HBM traffic (each CTA re-reads its own 128 KB, which stays in L2) */
            const size_t eb = (size_t)p.d.vocab * p.d.H * 2; /* (the CTAs' blocks wrap around a small embedding) */
            const uint32_t piece = ch.bytes * (ch.fold ? 2 : 1);
            if ((ch.nr - 1) * ch.pitch + piece > 131072u) ch.pitch = 0;
            size_t off = ((size_t)blockIdx.x * 131072) % eb & ~(size_t)15;
            if (off + (ch.nr - 1) * ch.pitch + piece > eb) off = 0;
            ch.src = reinterpret_cast<const __nv_bfloat16 *>(reinterpret_cast<const char *>(p.embed) + off);
        }
        if (HOPPER) md_ring_fill_rows_bulk(dst, ch.src, ch.nr, ch.bytes, ch.pitch, ch.stride, FOLD && ch.fold, &full[slot], pol);
        else md_ring_fill_rows_lanes(dst, ch.src, ch.nr, ch.bytes, ch.pitch, ch.stride, FOLD && ch.fold, &full[slot], pol, lane);
        k++;
        if (++slot == S) {
            slot = 0;
            use++;
        }
    }
}

/* ================================================================ consumers */

typedef struct md_consumer {
    uint8_t *ring;
    uint64_t *full, *empty;
    float *vec, *red;
    float *h_own;          /* this CTA's rows of the residual stream (it alone writes them) */
    float *pre;            /* prefetched conv windows and taps of the in-projection rows */
    float *res;            /* [NCW][MD_DEC_RES_ROWS] per-warp partial dot products waiting for their epilogues */
    __nv_bfloat16 *xb;     /* the current phase's input split for the tensor cores: high halves, then (xb_stride on) low */
    int xb_stride;
    bool pre_ok;           /* the current IN slice fits in pre */
    bool normed;           /* the current phase's input was normed and split by md_norm_split: its rows
                              are scaled by the norm's 1 / rms in the epilogues (md_res_flush) */
    bool presplit;         /* the current phase's input is in c.xb already (md_norm_split, md_split_own) */
    long long t_chunks;    /* trace: clock64 when this thread finished its chunks of the current phase */
    long long t_synced, t_epi; /* trace: ... when every warp had, and when the epilogues were done */
    long long t_split;     /* trace: ... when the phase input was split for the tensor cores */
    int w, lane, tid;      /* consumer warp, lane, consumer thread index */
    unsigned slot, par;    /* the ring slot of this CTA's next chunk, and the parity of its fill (the producer
                              fills its q-th chunk since the launch into slot q % n_stages) */
    int rot;               /* that chunk's q % NCW: which warp takes its first block (md_chunk_dots) */
    int own_begin;         /* first residual row this CTA owns */
    int tok;               /* the next step's input token (md_argmax_finish) */
} md_consumer;

/* d += A B for one m16n8k16 tile: A = 16 weight rows x 16 columns (bf16
 * fragments from ldmatrix), B = 16 columns x 8 (the input's high and low
 * bf16 halves in columns 0 and 1, zeros elsewhere), fp32 accumulators. */
__device__ __forceinline__ void md_mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* The A fragments of a 16 x 16 tile: lane l names row l % 16, columns
 * 8 (l / 16) .. + 7 (volatile: it reads what the ring's fill wrote, after
 * the wait). */
__device__ __forceinline__ void md_ldmatrix4(uint32_t (&a)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3])
                 : "r"(addr));
}

/* Where column i of the split input lives in c.xb: within each 32-column
 * block, column pair j goes to word 4 (j % 4) + j / 4, so lane t of a B
 * fragment finds its four words (pairs t, t+4, t+8, t+12: two mma's of a
 * 32-column step) in one 16-byte load. */
__device__ __forceinline__ int md_xb_pos(int i) {
    const int j = (i & 31) >> 1;
    return (i & ~31) + (((j & 3) * 4 + (j >> 2)) << 1) + (i & 1);
}

/* Deferred epilogues. The row loop only computes dot products: each warp
 * stores its partial sum (over its blocks of every segment) of each of a
 * batch's rows into its row of c.res (md_tile_store: every warp, every row,
 * so nothing needs clearing), and once the batch is done every consumer
 * thread runs the epilogue of one row (of one unit), adding the warps'
 * partials in warp order, so the epilogues (conv, SiLU, residual adds, the
 * global stores that publish the phase) run side by side. */
typedef struct md_res_batch {
    int first, n; /* first row of the batch, rows in it */
} md_res_batch;

__device__ __forceinline__ float md_res_take(const md_consumer &c, int i) {
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < NCW; w++) v += c.res[w * MD_DEC_RES_ROWS + i]; /* (every warp stored row i: md_tile_store) */
    return v;
}

template <typename Epi>
__device__ __forceinline__ void md_res_flush(const md_decode_params &p, md_consumer &c, int unit, md_res_batch &b, bool last, Epi epi) {
    asm volatile("cp.async.wait_all;" ::: "memory"); /* md_in_prefetch's copies (this thread's), visible to all after the barrier */
    md_consumer_sync(); /* every warp's partials are in c.res, and every warp is done with c.xb */
    if (MD_TRACING(p)) c.t_synced = clock64();
    float sc = 1.0f; /* a normed input: the norm's scale, from its per-warp sums of squares (md_norm_split) */
    if (c.normed) {
        float ss = 0.0f;
        for (int i = 0; i < NCW; i++) ss += c.red[i];
        sc = rsqrtf(__fdividef(ss, (float)p.d.H) + p.d.eps);
    }
    if (unit == 1) {
        for (int i = c.tid; i < b.n; i += NCT) epi(b.first + i, md_res_take(c, i) * sc, 0.0f);
    } else { /* gate/up pairs, one a thread; the even thread of two neighbours hands both SwiGLU outputs
                * to epi(output pair, a0, a1) (a CTA's pairs come in twos: md_stream_rows) */
        for (int i0 = 0; i0 < b.n / 2; i0 += NCT) { /* (every lane runs every round: the shuffle takes them all) */
            const int i = i0 + c.tid;
            const bool on = i < b.n / 2;
            const float a = on ? md_fast_silu(md_res_take(c, 2 * i) * sc) * (md_res_take(c, 2 * i + 1) * sc) : 0.0f;
            const float a1 = __shfl_down_sync(0xffffffffu, a, 1);
            if (on && !(i & 1)) epi((b.first >> 2) + (i >> 1), a, a1);
        }
    }
    /* c.res is refilled next. After a phase's last batch the next phase's
     * first barrier (md_split_input, md_norm_split, ...) comes before any
     * write to c.res, so the phase ends without waiting here for its
     * stores. Residual rows and conv windows stay with the thread that owns
     * the row; the one epilogue that leaves shared state for other threads,
     * the DeltaNet in-projection's (an item's v and z in c.vec, from the
     * last batch too), is followed by the barrier md_recurrence passes
     * before reading them. */
    if (!last) md_consumer_sync();
    if (MD_TRACING(p)) c.t_epi = clock64();
}

/* vec[0, n) -> xb: x = hi + lo, both bf16 (together ~16 significant bits,
 * so the tensor-core products keep fp32-like accuracy), at md_xb_pos. */
__device__ __forceinline__ void md_split_input(const float *vec, __nv_bfloat16 *xb, int xb_stride, int tid, int n) {
    for (int i = tid; i < n; i += NCT) {
        const float x = vec[i];
        const __nv_bfloat16 hi = __float2bfloat16_rn(x);
        const float rest = x - __bfloat162float(hi);
        const int at = md_xb_pos(i);
        xb[at] = hi;
        xb[xb_stride + at] = __float2bfloat16_rn(isfinite(rest) ? rest : 0.0f);
    }
    md_consumer_sync();
}

/* (x0, x1) = hi + lo, both bf16 pairs (md_split_input's arithmetic). */
__device__ __forceinline__ void md_bf16_split2(float x0, float x1, __nv_bfloat162 &hi, __nv_bfloat162 &lo) {
    hi = __floats2bfloat162_rn(x0, x1);
    const float2 hf = __bfloat1622float2(hi);
    const float r0 = x0 - hf.x, r1 = x1 - hf.y;
    lo = __floats2bfloat162_rn(isfinite(r0) ? r0 : 0.0f, isfinite(r1) ? r1 : 0.0f);
}

/* Splits the pair (x0, x1) of columns (i, i + 1), i even, into c.xb. */
__device__ __forceinline__ void md_split_pair(md_consumer &c, int i, float x0, float x1) {
    __nv_bfloat162 hi, lo;
    md_bf16_split2(x0, x1, hi, lo);
    const int at = md_xb_pos(i); /* even: the pair is adjacent */
    *reinterpret_cast<__nv_bfloat162 *>(c.xb + at) = hi;
    *reinterpret_cast<__nv_bfloat162 *>(c.xb + c.xb_stride + at) = lo;
}

/* md_split_pair's high and low halves of (x0, x1), as the bits of two
 * bf16 pairs, for a writer that publishes its outputs split: the MLP's
 * activations (GU's epilogue), so DOWN, once its inputs arrive, only copies
 * them into c.xb (md_copy_own_split) instead of converting and splitting. */
__device__ __forceinline__ void md_ll_store_split2(unsigned long long *w, float x0, float x1, unsigned tag) {
    __nv_bfloat162 hi, lo;
    md_bf16_split2(x0, x1, hi, lo);
    md_ll_store2(w, __uint_as_float(*reinterpret_cast<const unsigned *>(&hi)), __uint_as_float(*reinterpret_cast<const unsigned *>(&lo)),
                 tag);
}

/* After md_ll_read(src, n, ..., c.vec, c.tid, NCT) of md_ll_store_split2's
 * words (n even, src 16-byte aligned: thread tid holds word pairs tid, tid +
 * NCT, ..., pair j being columns 2j, 2j + 1 split), into c.xb as they are. */
__device__ void md_copy_own_split(md_consumer &c, int n) {
    for (int j = c.tid; j < n / 2; j += NCT) {
        const int at = md_xb_pos(2 * j);
        *reinterpret_cast<unsigned *>(c.xb + at) = __float_as_uint(c.vec[2 * j]);
        *reinterpret_cast<unsigned *>(c.xb + c.xb_stride + at) = __float_as_uint(c.vec[2 * j + 1]);
    }
    md_consumer_sync();
    c.presplit = true;
}

/* The phase input just read by md_ll_read(src, n, ..., c.vec, c.tid, NCT)
 * into c.xb, each thread splitting the word pairs it read itself (when src
 * is 16-byte aligned md_ll_read hands out pairs tid, tid + NCT, ... and the
 * odd last word to thread 0), so one barrier follows the read instead of
 * two around a separate pass (md_split_input). */
__device__ void md_split_own(md_consumer &c, const unsigned long long *src, int n) {
    if ((uintptr_t)src & 15) { /* md_ll_read went word by word */
        md_consumer_sync();
        md_split_input(c.vec, c.xb, c.xb_stride, c.tid, n);
    } else {
        for (int j = c.tid; j < n / 2; j += NCT) md_split_pair(c, 2 * j, c.vec[2 * j], c.vec[2 * j + 1]);
        if ((n & 1) && c.tid == 0) md_split_pair(c, n - 1, c.vec[n - 1], 0.0f); /* (writes one column past n: zero) */
        md_consumer_sync();
    }
    c.presplit = true;
}

/* This warp's share of one chunk's dot products (16 rows by w columns at
 * stride bytes, the input's columns from c0), added to acc: the chunk's
 * 32-column blocks are dealt round-robin to the consumer warps, this one
 * taking blocks b0, b0 + NCW, ..., two at a time on four independent
 * accumulators (md_tile_store sums them once a tile's segments are done).
 * (A form for chunks of at most 8 rows taking 32 columns per mma, rows 8-15
 * of the A tile being the same rows' next 16 columns, measured 0.7% slower:
 * 7.5 KB more code.) */
__device__ __forceinline__ void md_chunk_dots(float (&acc)[4][4], const uint8_t *buf, int stride, int w, int c0, const __nv_bfloat16 *xb,
                                              int xb_stride, int lane, int b0, int hw) {
    const int g = lane >> 2, t = lane & 3;
    /* B columns 0 and 1: the input's high and low halves at c0; folded (hw:
     * the piece width, else 0), columns 2 and 3 the same at c0 + hw, for
     * the stage's rows 8-15 (md_tile_store) */
    const int gx = hw ? 4 : 2;
    const uint4 *xr = reinterpret_cast<const uint4 *>(xb + (g & 1) * xb_stride + c0 + (g >> 1) * hw) + t;
    const int nb = w >> 5;
    const uint4 z = make_uint4(0u, 0u, 0u, 0u);
    int b = b0;
    const uint32_t abase = md_smem_addr(buf) + (uint32_t)((lane & 15) * stride + (lane >> 4) * 16);
#pragma unroll 1
    for (; b + NCW < nb; b += 2 * NCW) {
        uint32_t a[4][4];
        md_ldmatrix4(a[0], abase + (uint32_t)(b * 64));
        md_ldmatrix4(a[1], abase + (uint32_t)(b * 64 + 32));
        md_ldmatrix4(a[2], abase + (uint32_t)((b + NCW) * 64));
        md_ldmatrix4(a[3], abase + (uint32_t)((b + NCW) * 64 + 32));
        const uint4 x0 = g < gx ? xr[b * 4] : z, x1 = g < gx ? xr[(b + NCW) * 4] : z;
        md_mma_bf16(acc[0], a[0], x0.x, x0.y);
        md_mma_bf16(acc[1], a[1], x0.z, x0.w);
        md_mma_bf16(acc[2], a[2], x1.x, x1.y);
        md_mma_bf16(acc[3], a[3], x1.z, x1.w);
    }
    if (b < nb) {
        uint32_t a[2][4];
        md_ldmatrix4(a[0], abase + (uint32_t)(b * 64));
        md_ldmatrix4(a[1], abase + (uint32_t)(b * 64 + 32));
        const uint4 x0 = g < gx ? xr[b * 4] : z;
        md_mma_bf16(acc[0], a[0], x0.x, x0.y);
        md_mma_bf16(acc[1], a[1], x0.z, x0.w);
    }
}

/* A tile's partial dot products (md_chunk_dots' accumulators, summed over
 * its segments) into dst: lanes with t == 0 store rows g and g + 8 (those
 * below nr); folded, row g (g < nr <= 8) adds stage rows g (columns 0, 1 of
 * the product, lane t == 0) and g + 8 (columns 2, 3, lane t == 1). The
 * accumulators restart at zero. */
__device__ __forceinline__ void md_tile_store(float (&acc)[4][4], int nr, float *dst, int lane, bool fold) {
    const int g = lane >> 2, t = lane & 3;
    /* lane t holds columns 2t, 2t + 1 of rows g (acc[.][0, 1]) and g + 8 (acc[.][2, 3]) */
    const float row_g = (acc[0][0] + acc[0][1]) + (acc[1][0] + acc[1][1]) + (acc[2][0] + acc[2][1]) + (acc[3][0] + acc[3][1]);
    const float row_g8 = (acc[0][2] + acc[0][3]) + (acc[1][2] + acc[1][3]) + (acc[2][2] + acc[2][3]) + (acc[3][2] + acc[3][3]);
    if (fold) {
        const float next = __shfl_down_sync(0xffffffffu, row_g8, 1); /* lane t + 1's rows g + 8 */
        if (t == 0 && g < nr) dst[g] = row_g + next;
    } else if (t == 0) { /* columns 0 and 1 of the product: the high and low halves */
        if (g < nr) dst[g] = row_g; /* (each warp stores each row of a batch once: md_res_take need not clear them) */
        if (g + 8 < nr) dst[g + 8] = row_g8;
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int k = 0; k < 4; k++) acc[i][k] = 0.0f;
}

/* Trace only: the largest cycles any consumer warp of the CTA waited for
 * ring chunks in the current phase (a 64-bit word at the end of the
 * consumers' reduction area red). */
__device__ __forceinline__ unsigned long long *md_trace_stall_word(float *red) {
    return reinterpret_cast<unsigned long long *>(red + RED_FLOATS - 4);
}

/* Trace only: the largest cycles any consumer warp spent multiplying chunks in the current phase. */
__device__ __forceinline__ unsigned long long *md_trace_mma_word(float *red) {
    return reinterpret_cast<unsigned long long *>(red + RED_FLOATS - 6);
}

/* The chunks of tiles [tb, te) of a phase whose rows are [r_begin, r_end)
 * and whose columns come in nseg segments of sc (md_seg_cols), as seen by
 * one consumer warp: waits for each, adds its share of the partial dot
 * products (md_chunk_dots) to this warp's row of c.res, frees it. Chunk q
 * (this CTA's q-th since the launch) is in ring slot q % n_stages, and
 * every warp consumes every chunk in order, so no warp can wait two laps
 * ahead of a slot's fills (which would alias its full barrier's parity):
 * the slot's next fill needs this warp's release of the current one.
 * Returns the cycles waited and adds the cycles multiplied to *mma
 * (MEGADELTA_TRACE). (Measured: a shared __noinline__ copy, to keep it in
 * the instruction cache, was slower: 904 vs 987 tok/s.) */
template <bool FOLDABLE>
__device__ __forceinline__ long long md_rows_batch(const md_decode_params &p, md_consumer &c, int r_begin, int r_end, int cols,
                                                const md_geom &gm, int tb, int te, int layer, int phase, long long *mma) {
    const bool fold = FOLDABLE && gm.fold == 2;
    const int sc = gm.sc, nseg = gm.nseg, cstep = fold ? 2 * sc : sc, hw = fold ? sc : 0;
    const int stride = md_seg_stride(sc);
    const unsigned S = (unsigned)p.n_stages;
    float *res = c.res + c.w * MD_DEC_RES_ROWS;
    long long stall = 0;
    /* the chunk's slot, its fill's parity, block rotation (and this warp's
     * first block, (rot + w) % NCW), tile and segment, stepped along (divisions by run-time values cost ~20
     * instructions each, and every warp walks every chunk) */
    unsigned slot = c.slot, par = c.par;
    int rot = c.rot, b0 = rot + c.w < NCW ? rot + c.w : rot + c.w - NCW;
    int seg = 0, r = r_begin + tb * MD_DEC_TILE_ROWS;
    float *dst = res;
    float acc[4][4] = {};
    for (int k = tb * nseg; k < te * nseg; k++) {
        const int nr = r_end - r < MD_DEC_TILE_ROWS ? r_end - r : MD_DEC_TILE_ROWS;
        const int c0 = seg * cstep, wd = cols - c0 < sc ? cols - c0 : sc;
        const long long t0 = MD_TRACING(p) ? clock64() : 0;
        md_mbar_wait(&c.full[slot], par, p, 3, layer, phase);
        if (MD_TRACING(p)) stall += clock64() - t0;
        const long long t1 = MD_TRACING(p) ? clock64() : 0;
        if (!MD_DEC_INSTRUMENTED || !(p.probe & 2))
            md_chunk_dots(acc, c.ring + (size_t)slot * p.stage_bytes, stride, wd, c0, c.xb, c.xb_stride, c.lane, b0, hw);
        if (MD_TRACING(p)) *mma += clock64() - t1;
        md_mbar_arrive(&c.empty[slot]); /* every lane of every consumer warp, once its own reads are done (count NCT) */
        if (seg + 1 == nseg) md_tile_store(acc, nr, dst, c.lane, fold); /* the tile's last segment (its segments add up in acc) */
        if (++slot == S) {
            slot = 0;
            par ^= 1u;
        }
        b0 = b0 + 1 == NCW ? 0 : b0 + 1;
        rot = rot + 1 == NCW ? 0 : rot + 1;
        if (++seg == nseg) {
            seg = 0;
            r += MD_DEC_TILE_ROWS;
            dst += MD_DEC_TILE_ROWS;
        }
    }
    c.slot = slot;
    c.par = par;
    c.rot = rot;
    return stall;
}

/* Consumes this CTA's chunks of a streamed phase (its schedule: the plan of
 * `kind`, MD_PLAN_*, schedule.cuh): the rows' dot products
 * with the phase input (c.vec, split into c.xb here) on the tensor cores,
 * then epi(row, value) for plain phases, epi(output pair, a0, a1) with the
 * SwiGLU outputs of two gate/up pairs for GU (md_res_flush). Chunk k of the phase is tile k / nseg, segment
 * k % nseg; every warp multiplies its share of each (its 32-column blocks,
 * md_chunk_dots), so a chunk is done in a seventh of the time one warp took
 * and the four SM sub-partitions share the work evenly. Ends with a
 * consumer barrier (the flush): the next phase overwrites c.vec and c.xb. Thread 0 adds the cycles it waited for
 * chunks to the trace (the maximum over warps, md_trace_stall_word). */
template <bool FOLDABLE, typename Epi>
__device__ __forceinline__ void md_consume_rows(const md_decode_params &p, md_consumer &c, int kind, int layer, int phase, Epi epi) {
    const md_plan pl = md_s_plan[kind]; /* (schedule.cuh: computed once a launch) */
    const md_range rows = {pl.r_begin, pl.r_end};
    md_geom gm; /* (FOLDABLE: the phases that may fold, OUT / O and DOWN; the others keep the plain row loop's code) */
    gm.sc = pl.sc;
    gm.nseg = pl.nseg;
    gm.fold = FOLDABLE ? pl.fold : 1;
    constexpr int TB = MD_DEC_RES_ROWS / MD_DEC_TILE_ROWS; /* tiles per batch */
    if (!c.presplit) md_split_input(c.vec, c.xb, c.xb_stride, c.tid, pl.cols);
    if (MD_TRACING(p)) c.t_split = clock64();
    /* one or two parts (md_stream_split: the DeltaNet in-projection's pool
     * rows, then its item rows), each tiled from its start and flushed in
     * batches of its own */
    const int split = pl.split;
    bool any = false;
    for (int part = split > rows.begin ? 0 : 1; part < 2; part++) {
        const int r0 = part == 0 ? rows.begin : (split > rows.begin ? split : rows.begin), r1 = part == 0 ? split : rows.end;
        const int n_tiles = (r1 - r0 + MD_DEC_TILE_ROWS - 1) / MD_DEC_TILE_ROWS;
        for (int tb = 0; tb < n_tiles; tb += TB) {
            const int te = tb + TB < n_tiles ? tb + TB : n_tiles;
            long long mma = 0;
            const long long stall = md_rows_batch<FOLDABLE>(p, c, r0, r1, pl.cols, gm, tb, te, layer, phase, &mma);
            if (MD_TRACING(p)) { /* the most any warp of the CTA waited for its chunks, and multiplied them, in this phase */
                if (c.lane == 0) atomicMax(md_trace_stall_word(c.red), (unsigned long long)stall);
                if (c.lane == 0) atomicMax(md_trace_mma_word(c.red), (unsigned long long)mma);
                c.t_chunks = clock64();
            }
            const int first = r0 + tb * MD_DEC_TILE_ROWS, last = r0 + te * MD_DEC_TILE_ROWS;
            md_res_batch batch = {first, (last < r1 ? last : r1) - first};
            md_res_flush(p, c, kind == MD_PLAN_GU ? 2 : 1, batch, te == n_tiles && (part == 1 || r1 == rows.end), epi);
            any = true;
        }
    }
    if (!any) md_consumer_sync(); /* no flush ran: every warp is still done with c.vec and c.xb */
    c.normed = c.presplit = false;
}

/* The tag of (this step, layer, phase); the argmax is layer n_layers, phase 0. */
__device__ __forceinline__ unsigned md_tag(const md_decode_params &p, unsigned step, int layer, int phase) {
    const unsigned long long slots = (unsigned long long)p.d.n_layers * MD_PHASES_PER_LAYER + 1;
    return (unsigned)((p.epoch0 + step + 1) * slots + (unsigned long long)(layer * MD_PHASES_PER_LAYER + phase) + 1);
}

/* The zero-centred RMSNorm of the tagged vector x (or of the bf16 embedding
 * row xe), as the next phase's split input: each thread takes the word pairs
 * md_ll_read gave it (pairs tid, tid + NCT, ...), multiplies them by 1 + w,
 * splits them into c.xb (md_split_input's layout) and adds their squares to
 * its warp's sum in c.red[w]; the 1 / rms scale is applied to the rows'
 * dot products in the epilogues (md_res_flush: the norm is linear in its
 * scale). One barrier after the inputs arrive, where a norm, a scale pass and
 * a split took five. Each thread copies the weights of its own pairs into
 * the top of c.vec (cp.async: nothing waits for them until the inputs are
 * there; as register loads, the first use stalled the polls behind them, and
 * a call boundary keeps the compiler from moving it) so no barrier guards
 * them. */
__device__ void md_norm_split(const md_decode_params &p, md_consumer &c, const unsigned long long *x, unsigned tag,
                              const __nv_bfloat16 *xe, const float *w, int layer, int phase) {
    const int np = p.d.H / 2; /* H is a multiple of 32 (md_decode_init) */
    float *ws = c.vec + p.vec_floats - p.d.H; /* (md_decode_init: vec_floats >= 2H + the local recurrence inputs) */
    for (int j = c.tid; j < np; j += NCT)
        asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" ::"r"(md_smem_addr(ws + 2 * j)), "l"(w + 2 * j) : "memory");
    asm volatile("cp.async.commit_group;" ::: "memory");
    if (xe) {
        for (int j = c.tid; j < np; j += NCT) {
            c.vec[2 * j] = __bfloat162float(xe[2 * j]);
            c.vec[2 * j + 1] = __bfloat162float(xe[2 * j + 1]);
        }
    } else {
        md_ll_read(x, 2 * np, tag, c.vec, c.tid, NCT, p, layer, phase);
        if ((uintptr_t)x & 15) md_consumer_sync(); /* md_ll_read went word by word: the pairs below are not all this thread's */
    }
    asm volatile("cp.async.wait_all;" ::: "memory"); /* this thread's weights (and any earlier copies: md_in_prefetch) */
    float ss = 0.0f;
    for (int j = c.tid; j < np; j += NCT) {
        const float x0 = c.vec[2 * j], x1 = c.vec[2 * j + 1];
        const float2 wk = *reinterpret_cast<const float2 *>(ws + 2 * j);
        ss += x0 * x0 + x1 * x1;
        md_split_pair(c, 2 * j, x0 * (1.0f + wk.x), x1 * (1.0f + wk.y));
    }
    ss = md_warp_sum(ss);
    if (c.lane == 0) c.red[c.w] = ss;
    md_consumer_sync(); /* c.xb and the sums of squares */
    c.normed = c.presplit = true;
}

/* Debug trace (MEGADELTA_TRACE): clock64 at the phase's start, once its
 * inputs are there, after its prologue and after its rows, for the last
 * step. Out of line, behind one test of p.trace at each call site (in the
 * instrumented build only): the record code stays out of the instruction
 * stream of traced runs too. */
__device__ __noinline__ void md_trace_record(const md_decode_params &p, float *red, int tid, unsigned step, int layer, int phase, int ev,
                                            long long t_chunks, long long t_synced, long long t_epi, long long t_split) {
    unsigned long long *stall = md_trace_stall_word(red), *mma = md_trace_mma_word(red);
    if (tid == 0 && step + 1 == (unsigned)p.n_steps) {
        const int slot = layer * MD_PHASES_PER_LAYER + phase;
        unsigned long long *e = p.trace + ((size_t)blockIdx.x * (p.d.n_layers * MD_PHASES_PER_LAYER + 1) + slot) * MD_DEC_TRACE_EVENTS;
        e[ev] = clock64();
        if (ev == 0) e[10] = md_globaltimer();
        if (ev == 3 && phase != MD_PH_MIX) { /* (the recurrence and the attention mark events 4-8 themselves: md_trace_mark) */
            e[4] = *stall;
            e[5] = (unsigned long long)t_chunks;
            e[6] = (unsigned long long)t_synced;
            e[7] = (unsigned long long)t_epi;
            e[8] = (unsigned long long)t_split;
            e[9] = *mma;
        }
    }
    if (ev == 3 && tid == 0) *stall = *mma = 0; /* the next phase's warps add after its first barrier */
}

__device__ __forceinline__ void md_trace(const md_decode_params &p, md_consumer &c, unsigned step, int layer, int phase, int ev) {
    if (MD_TRACING(p)) {
        md_trace_record(p, c.red, c.tid, step, layer, phase, ev, c.t_chunks, c.t_synced, c.t_epi, c.t_split);
        if (ev == 3) c.t_chunks = c.t_synced = c.t_epi = c.t_split = 0;
    }
}

/* Trace only: clock64 into event ev of (layer, phase), from inside a phase
 * (the recurrence's and the attention's sub-steps). Every step writes; the
 * last step's values are the ones left, as for md_trace. */
__device__ __forceinline__ void md_trace_mark_tid(const md_decode_params &p, int tid, int layer, int phase, int ev) {
    if (MD_TRACING(p) && tid == 0) {
        const int slot = layer * MD_PHASES_PER_LAYER + phase;
        p.trace[((size_t)blockIdx.x * (p.d.n_layers * MD_PHASES_PER_LAYER + 1) + slot) * MD_DEC_TRACE_EVENTS + ev] = clock64();
    }
}

__device__ __forceinline__ void md_trace_mark(const md_decode_params &p, const md_consumer &c, int layer, int phase, int ev) {
    md_trace_mark_tid(p, c.tid, layer, phase, ev);
}

/* Race hunting (MEGADELTA_DELAY_SEED): this CTA starts some phases' rows late. */
__device__ __forceinline__ void md_maybe_delay(const md_decode_params &p, md_consumer &c, unsigned step, int layer, int phase) {
    if (!MD_DEC_INSTRUMENTED || !p.delay_seed) return;
    if (c.tid == 0) {
        unsigned x = p.delay_seed ^ (blockIdx.x * 0x9e3779b9u) ^ (step * 0x85ebca6bu) ^ ((unsigned)(layer * 8 + phase) * 0xc2b2ae35u);
        x ^= x >> 15;
        x *= 0x2c1b3c6du;
        x ^= x >> 12;
        if ((x & 7) == 0) __nanosleep(x % 20000u);
    }
    md_consumer_sync();
}

/* ---------------------------------------------------------------- DeltaNet */

/* Loads the conv windows and taps of this CTA's in-projection rows into
 * shared memory before waiting for the input (they depend only on earlier
 * steps), with cp.async so the loads are not waited for on the way to the
 * input (a plain copy loop stalled ~2 round trips there). Layout per
 * virtual row: K-1 window values, then K taps; when the windows are
 * resident (p.conv_rows), the K taps alone. */
__device__ void md_in_prefetch(const md_decode_params &p, md_consumer &c, const md_cuda_layer *L) {
    const md_cuda_dims &d = p.d;
    const md_range qk = md_in_qk();
    const int n = md_s_plan[MD_PLAN_IN].r_end; /* (its rows are virtual rows 0 .. r_end: md_in_row) */
    if (p.conv_rows) { /* the windows live in shared memory (md_conv_win): the taps only, K floats a row */
        c.pre_ok = n * d.K <= MD_DEC_PRE_FLOATS;
        if (!c.pre_ok) return;
        const int v4 = (d.K & 3) == 0 ? 4 : 1, per = d.K / v4; /* 16-byte pieces when a row of taps is whole ones */
        for (int i = c.tid; i < n * per; i += NCT) {
            const int q = i / per, r = md_in_row(p, blockIdx.x, qk, q), e = (i - q * per) * v4;
            if (r >= d.cd) continue; /* z, b, a: no conv */
            const float *src = L->conv_w + (size_t)r * d.K + e;
            if (v4 == 4) asm volatile("cp.async.ca.shared.global [%0], [%1], 16;" ::"r"(md_smem_addr(c.pre + q * d.K + e)), "l"(src) : "memory");
            else asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(md_smem_addr(c.pre + q * d.K + e)), "l"(src) : "memory");
        }
        asm volatile("cp.async.commit_group;" ::: "memory");
        return;
    }
    const int per = 2 * d.K - 1;
    c.pre_ok = n * per <= MD_DEC_PRE_FLOATS;
    if (!c.pre_ok) return;
    for (int i = c.tid; i < n * per; i += NCT) {
        const int q = md_udiv(i, p.mg_conv), r = md_in_row(p, blockIdx.x, qk, q), e = i - q * per;
        if (r >= d.cd) continue; /* z, b, a: no conv */
        const float *src = e < d.K - 1 ? p.conv_state + ((size_t)L->slot * d.cd + r) * (d.K - 1) + e : L->conv_w + (size_t)r * d.K + e - (d.K - 1);
        /* asynchronous: nothing waits for these until the epilogues (md_res_flush) */
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(md_smem_addr(c.pre + i)), "l"(src) : "memory");
    }
    asm volatile("cp.async.commit_group;" ::: "memory");
}

/* The conv windows resident in shared memory (p.conv_rows != 0): after the
 * CTA's residual rows, [n_linear][conv_rows][K - 1] floats, the window of
 * DeltaNet layer slot `slot`'s virtual in-projection row k (md_in_row) at
 * (slot conv_rows + k)(K - 1). Loaded from conv_state when the launch
 * starts and written back when it ends (md_conv_windows), so no step reads
 * or writes them through L2: ~190 loads and as many stores of 4 bytes a CTA
 * and layer, which landed on the exchanges around the in-projection. */
__device__ __forceinline__ float *md_conv_win(const md_decode_params &p, const md_consumer &c, int slot, int k) {
    /* ceil(H / G) floats of h_own, then 16-byte aligned (md_div_grid is exact: (H + G - 1) G < 2^32) */
    const int own = md_div_grid(p, p.d.H + (int)gridDim.x - 1);
    return c.h_own + ((own + 3) & ~3) + ((size_t)slot * p.conv_rows + k) * (p.d.K - 1);
}

/* Loads (back = false) or writes back (back = true) every resident window
 * of this CTA, by all consumer threads. */
__device__ void md_conv_windows(const md_decode_params &p, const md_consumer &c, bool back) {
    const md_cuda_dims &d = p.d;
    const md_range qk = md_in_qk();
    const int n = qk.end - qk.begin + MD_DEC_IN_ITEM_ROWS * md_in_items(p, blockIdx.x), km = d.K - 1;
    for (int i = c.tid; i < d.n_linear * n * km; i += NCT) {
        const int e = i % km, k = (i / km) % n, slot = i / (km * n);
        const int r = md_in_row(p, blockIdx.x, qk, k);
        if (r >= d.cd) continue;
        float *g = p.conv_state + ((size_t)slot * d.cd + r) * km + e, *sm = md_conv_win(p, c, slot, k) + e;
        if (back) *g = *sm;
        else *sm = *g;
    }
}

/* Prefetches `bytes` at x into L1 (threads tid < bytes / 128, a line each). */
__device__ __forceinline__ void md_prefetch_l1(const void *x, int bytes, int tid) {
    if (tid * 128 < bytes) asm volatile("prefetch.global.L1 [%0];" ::"l"((const char *)x + tid * 128));
}

/* During the DOWN phase's wait (idle time): what the next layer's
 * in-projection would otherwise load on the critical path, where the last
 * CTA out of DOWN has nothing to hide it behind: the layer's norm weights
 * into L1, its conv taps (and windows, when not resident) into c.pre. */
__device__ void md_next_layer_prefetch(const md_decode_params &p, md_consumer &c, int layer) {
    const md_cuda_layer *N = &p.layers[layer]; /* (in the kernel's parameters) */
    md_prefetch_l1(N->attn_norm, p.d.H * 4, c.tid);
    if (!N->full) md_in_prefetch(p, c, N);
}

/* The DeltaNet in-projection's epilogue of CTA-virtual row k (md_in_row)
 * with dot product u: conv + SiLU on a q/k/v channel, the raw value for
 * z/b/a. Pool rows (q, k, b, a) are published (tagged, for every item of
 * the head); v and z stay in this CTA's shared memory at c.vec[H + k - nq]
 * (item it's 32 values at H + 32 it: v[16], z[16]) for its own recurrence
 * items. The window is resident in shared memory (p.conv_rows:
 * md_conv_win, shifted there in place), or comes from c.pre when it was
 * prefetched (pre_ok), else from conv_state, and then the shifted window
 * goes straight back to conv_state from the thread that owns the row. */
__device__ __forceinline__ void md_in_epilogue(const md_decode_params &p, const md_consumer &c, const md_cuda_layer *L, int k, float u,
                                               unsigned tag) {
    const md_cuda_dims &d = p.d;
    const md_range qk = md_in_qk();
    const int row = md_in_row(p, blockIdx.x, qk, k), nq = qk.end - qk.begin;
    float x = u;
    if (row < d.cd) {
        const int K = d.K;
        float *dst = p.conv_rows ? md_conv_win(p, c, L->slot, k) : p.conv_state + ((size_t)L->slot * d.cd + row) * (K - 1);
        const float *win = c.pre_ok && !p.conv_rows ? c.pre + k * (2 * K - 1) : dst;
        const float *wc = !c.pre_ok ? L->conv_w + (size_t)row * K : p.conv_rows ? c.pre + k * K : win + K - 1;
        float acc = wc[K - 1] * u;
        for (int j = 0; j < K - 1; j++) acc += wc[j] * win[j];
        for (int j = 0; j + 1 < K - 1; j++) dst[j] = win[j + 1]; /* ascending: in place is safe */
        if (K > 1) dst[K - 2] = u;
        x = md_fast_silu(acc);
    }
    if (k < nq) md_ll_store(p.mix + row, x, tag);
    else c.vec[d.H + k - nq] = x;
}

/* The recurrence, split by value columns: item (head h, slice) owns columns
 * [slice*16, slice*16+16) of head h; consumer warp w owns columns w and w+8,
 * each lane dk/32 of their key rows. S is stored transposed ([h][j][i]) so a
 * column is contiguous. One step: S *= decay; m = S^T k; S += k (beta (v - m))^T;
 * o = S^T q (q, k L2-normalised, q scaled by 1/sqrt(dk)). The item's state is
 * loaded before its inputs are waited for (it depends only on earlier steps). */
__device__ void md_recurrence(const md_decode_params &p, md_consumer &c, const md_cuda_layer *L, unsigned tag_in,
                              unsigned tag_out, int layer) {
    const md_cuda_dims &d = p.d;
    const int n_slices = d.dv / MD_DEC_REC_COLS;
    const int items = d.Hv * n_slices;
    const int per_lane = d.dk / 32;
    for (int item = blockIdx.x, it = 0; item < items; item += gridDim.x, it++) {
        const int h = md_udiv(item, p.mg_slices), slice = item - h * n_slices;
        const int kh = md_udiv(h, p.mg_kgroup);
        float *S0 = p.ssm_state + ((size_t)L->slot * d.Hv + h) * d.dv * d.dk;
        float qr[MAX_DK_LANE], kr[MAX_DK_LANE], sr[REC_COLS_PER_WARP][MAX_DK_LANE];
#pragma unroll
        for (int m = 0; m < MAX_DK_LANE; m++)
            if (m < per_lane)
#pragma unroll
                for (int cc = 0; cc < REC_COLS_PER_WARP; cc++) {
                    const int j = slice * MD_DEC_REC_COLS + c.w + NCW * cc;
                    sr[cc][m] = REC_MINE(c.w, cc) ? S0[(size_t)j * d.dk + c.lane + 32 * m] : 0.0f;
                }
        const float a_log = L->A_log[h], dtb = L->dt_bias[h]; /* (used after the wait: a use here stalled the polls) */
        float gw[REC_COLS_PER_WARP]; /* the gated norm's weights of this warp's columns, before the wait */
#pragma unroll
        for (int cc = 0; cc < REC_COLS_PER_WARP; cc++)
            gw[cc] = REC_MINE(c.w, cc) ? L->gnorm[slice * MD_DEC_REC_COLS + c.w + NCW * cc] : 0.0f;
        /* inputs: q, k of key head kh (slots 0..3, 4..7; slots a small head
         * does not use re-read b), b and a of head h (last two), polled
         * together; this warp's v and z columns from this CTA's own
         * in-projection rows (md_in_epilogue), after the barrier */
        const unsigned long long *q = p.mix + kh * d.dk, *k = p.mix + d.Kd + kh * d.dk;
        const unsigned long long *bp = p.mix + d.cd + d.Vd + h, *ap = p.mix + d.cd + d.Vd + d.Hv + h;
        constexpr int NIN = 2 * MAX_DK_LANE + 2;
        const unsigned long long *win[NIN];
        unsigned tin[NIN];
        float xin[NIN];
#pragma unroll
        for (int m = 0; m < MAX_DK_LANE; m++) {
            win[m] = m < per_lane ? q + c.lane + 32 * m : bp;
            win[MAX_DK_LANE + m] = m < per_lane ? k + c.lane + 32 * m : bp;
        }
        win[NIN - 2] = bp;
        win[NIN - 1] = ap;
#pragma unroll
        for (int i = 0; i < NIN; i++) tin[i] = tag_in;
        md_ll_gather<NIN>(win, tin, NIN, xin, p, layer, MD_PH_MIX);
        md_trace_mark(p, c, layer, MD_PH_MIX, 8); /* trace: the inputs are here */
        if (it == 0) md_consumer_sync(); /* the in-projection's last epilogues wrote the local inputs (no barrier followed) */
        const float *loc = c.vec + d.H + it * MD_DEC_IN_ITEM_ROWS;
        const float b = xin[NIN - 2], a = xin[NIN - 1];
        float sq = 0.0f, sk = 0.0f, v[REC_COLS_PER_WARP], zc[REC_COLS_PER_WARP];
#pragma unroll
        for (int m = 0; m < MAX_DK_LANE; m++)
            if (m < per_lane) {
                qr[m] = xin[m];
                kr[m] = xin[MAX_DK_LANE + m];
                sq += qr[m] * qr[m];
                sk += kr[m] * kr[m];
            }
#pragma unroll
        for (int cc = 0; cc < REC_COLS_PER_WARP; cc++) {
            const int e = REC_MINE(c.w, cc) ? c.w + NCW * cc : 0;
            v[cc] = loc[e];
            zc[cc] = loc[MD_DEC_REC_COLS + e];
        }
        const float A = expf(a_log);
        const float qs = rsqrtf(md_warp_sum(sq) + 1e-6f) * rsqrtf((float)d.dk);
        const float ks = rsqrtf(md_warp_sum(sk) + 1e-6f);
        const float beta = md_fast_sigmoid(b);
        const float x = a + dtb;
        /* softplus by log1pf (accurate where exp(x) is small: the state decays by
         * it every step, so its relative error compounds over a context) */
        const float decay = __expf(-A * (x > 20.0f ? x : log1pf(__expf(x))));
#pragma unroll
        for (int m = 0; m < MAX_DK_LANE; m++)
            if (m < per_lane) {
                kr[m] *= ks;
                qr[m] *= qs;
            }
        /* this warp's columns side by side (their warp sums interleave; one
         * after another they were two dependent shuffle trees each); a column
         * the warp does not have (REC_MINE) runs on zeros and is not stored */
        float mm[REC_COLS_PER_WARP], o[REC_COLS_PER_WARP];
#pragma unroll
        for (int cc = 0; cc < REC_COLS_PER_WARP; cc++) {
            mm[cc] = 0.0f;
#pragma unroll
            for (int m = 0; m < MAX_DK_LANE; m++)
                if (m < per_lane) {
                    sr[cc][m] *= decay;
                    mm[cc] += sr[cc][m] * kr[m];
                }
        }
#pragma unroll
        for (int cc = 0; cc < REC_COLS_PER_WARP; cc++) mm[cc] = md_warp_sum(mm[cc]);
#pragma unroll
        for (int cc = 0; cc < REC_COLS_PER_WARP; cc++) {
            const int j = slice * MD_DEC_REC_COLS + c.w + NCW * cc;
            const float delta = (v[cc] - mm[cc]) * beta;
            o[cc] = 0.0f;
#pragma unroll
            for (int m = 0; m < MAX_DK_LANE; m++)
                if (m < per_lane) {
                    sr[cc][m] += kr[m] * delta;
                    if (REC_MINE(c.w, cc)) S0[(size_t)j * d.dk + c.lane + 32 * m] = sr[cc][m];
                    o[cc] += sr[cc][m] * qr[m];
                }
        }
#pragma unroll
        for (int cc = 0; cc < REC_COLS_PER_WARP; cc++) o[cc] = md_warp_sum(o[cc]);
#pragma unroll
        for (int cc = 0; cc < REC_COLS_PER_WARP; cc++)
            if (c.lane == 0 && REC_MINE(c.w, cc)) { /* the gated norm but for its per-head scale: o w silu(z), and o^2 */
                const int j = slice * MD_DEC_REC_COLS + c.w + NCW * cc;
                md_ll_store(p.core + h * d.dv + j, o[cc] * gw[cc] * md_fast_silu(zc[cc]), tag_out);
                c.red[MD_REC_SSQ + c.w + NCW * cc] = o[cc] * o[cc];
            }
        md_consumer_sync(); /* every column's o^2 is in c.red */
        if (c.tid == 0) {
            float ss = 0.0f;
            for (int k = 0; k < MD_DEC_REC_COLS; k++) ss += c.red[MD_REC_SSQ + k];
            md_ll_store(p.core + d.Vd + item, ss, tag_out); /* after the head outputs: md_gated_norm_to_vec reads both in one go */
        }
        if (item + (int)gridDim.x < items) md_consumer_sync(); /* thread 0 is done with the squares before the next item writes them */
    }
}

/* The gated RMSNorm of the recurrence output, o / rms(o) * w * silu(z) per
 * value head, as the out-projection's split input: the recurrence items
 * published o w silu(z) per column and the sum of o^2 over their columns
 * (core[Vd + item]); both are read in one round, and after one barrier (the
 * sums) every warp computes each head's scale once (lane per head, into its
 * own slice of c.vec), then each thread scales and splits the pairs it read
 * itself (as md_split_own), so two barriers in all. */
__device__ void md_gated_norm_split(const md_decode_params &p, md_consumer &c, unsigned tag_rec, int layer) {
    const md_cuda_dims &d = p.d;
    const int n_slices = d.dv / MD_DEC_REC_COLS, items = d.Hv * n_slices;
    const float *g = c.vec, *ssq = c.vec + d.Vd;
    float *inv = c.vec + d.Vd + items + c.w * d.Hv; /* this warp's per-head scales (md_decode_init: vec_floats >= 2 Vd + Hv) */
    md_ll_read(p.core, d.Vd + items, tag_rec, c.vec, c.tid, NCT, p, layer, MD_PH_MIX_OUT);
    md_consumer_sync(); /* the sums of squares (and, word by word, any value) */
    for (int h = c.lane; h < d.Hv; h += 32) { /* every warp the scales of every head, once (not per pair) */
        float ss = 0.0f;
#pragma unroll 8
        for (int k = 0; k < n_slices; k++) ss += ssq[h * n_slices + k];
        inv[h] = rsqrtf(__fdividef(ss, (float)d.dv) + d.eps);
    }
    __syncwarp();
    for (int j = c.tid; j < d.Vd / 2; j += NCT) { /* dv is even: a pair never straddles two heads */
        const float s = inv[md_udiv(2 * j, p.mg_dv)];
        md_split_pair(c, 2 * j, g[2 * j] * s, g[2 * j + 1] * s);
    }
    md_consumer_sync();
    c.presplit = true;
}

/* ---------------------------------------------------------------- attention */

/* Rotate-half RoPE of a head in shared memory (x[0, 2 R2)), in place, by
 * one warp, the frequencies f[R2] in shared memory too; the warp's earlier
 * writes to x are done (__syncwarp), and so are its rotations on return. */
__device__ __forceinline__ void md_rope_rotate(float *x, const float *f, int R2, int pos, int lane) {
#pragma unroll 1
    for (int i = lane; i < R2; i += 32) {
        float sn, cs;
        sincosf((float)pos * f[i], &sn, &cs);
        const float x1 = x[i], x2 = x[i + R2];
        x[i] = x1 * cs - x2 * sn;
        x[i + R2] = x2 * cs + x1 * sn;
    }
    __syncwarp();
}

/* Zero-centred RMSNorm + rotate-half RoPE of one head already in shared
 * memory (x[D]), in place, by one warp, scaled by `scale`; the norm weights
 * w[D] and the rotary frequencies f[R/2] are in shared memory too. Loops
 * not unrolled: 8 iterations a lane at D = 256, and their unrolled copies
 * were ~4 KB of code run six times a token. */
__device__ void md_head_norm_rope(float *x, const float *w, const float *f, const md_cuda_dims &d, int pos, float scale, int lane) {
    const int D = d.D, R = d.R;
    float ss = 0.0f;
#pragma unroll 1
    for (int i = lane; i < D; i += 32) ss += x[i] * x[i];
    const float inv = rsqrtf(__fdividef(md_warp_sum(ss), (float)D) + d.eps);
#pragma unroll 1
    for (int i = lane; i < D; i += 32) x[i] = x[i] * inv * (1.0f + w[i]);
    __syncwarp();
    md_rope_rotate(x, f, R / 2, pos, lane);
    if (scale != 1.0f)
#pragma unroll 1
        for (int i = lane; i < D; i += 32) x[i] *= scale;
    __syncwarp();
}

/* The attention's q and k norm weights and rotary frequencies into shared
 * memory (wsm: [D] q norm, [D] k norm, [R/2] frequencies) by cp.async, each
 * consumer thread its share; the caller waits (cp.async.wait_all, a barrier). */
__device__ __forceinline__ void md_attn_stage_norms(const md_decode_params &p, const md_cuda_layer *L, float *wsm, int D, int R2, int tid) {
    for (int i = tid; i < 2 * D + R2; i += NCT) {
        const float *src = i < D ? L->q_norm + i : i < 2 * D ? L->k_norm + (i - D) : p.inv_freq + (i - 2 * D);
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(md_smem_addr(wsm + i)), "l"(src) : "memory");
    }
}

/* The split-KV combine, spread over the items of kv head kvh: item ch, once
 * every item of this CTA wrote its partial, waits for the partials of all
 * chunks in its slice of the head dims, [ch D / n, (ch + 1) D / n) (tagged
 * words: no fence, no ticket, and a slice is 1 / n of the data, so the words
 * of a batch are in flight at once, md_ll_gather), merges them in chunk
 * order, rescaling online by each chunk's max, applies the output gate and
 * publishes its slice of the heads' outputs. The words land in shared memory
 * (land: [chunk][head][slice dims, m, l], then the gates [head][slice], then
 * the merge state [head][slice][M, L, o]), p.attn_combine_batch chunks at a
 * time.
 * Divisions by the slice sizes through float reciprocals: exact for the
 * indices here (< 2^16, divisors <= 258). */
static __device__ __noinline__ void md_attn_combine(const md_decode_params &p, float *land, int tid, int kvh, int ch, int n_chunks,
                                                    unsigned tag_in, unsigned tag_out, int layer) {
    const md_cuda_dims &d = p.d;
    const int D = d.D, group = d.Hq / d.Hkv;
    const int d0 = ch * D / n_chunks, sw = (ch + 1) * D / n_chunks - d0, seg = sw + 2;
    if (sw == 0) return; /* more chunks than dims: (the whole CTA returns) */
    const size_t stride = (size_t)group * (D + 2);
    const unsigned long long *part0 = p.attn_part + (size_t)kvh * p.attn_max_chunks * stride + d0;
    const float inv_seg = 1.0f / (float)seg, inv_group = 1.0f / (float)group, inv_sw = 1.0f / (float)sw;
    const int B = p.attn_combine_batch, units = group * sw, nb0 = n_chunks < B ? n_chunks : B;
    float *gates = land + nb0 * group * seg, *state = gates + units; /* (the first batch's gate words land at gates) */
    md_consumer_sync(); /* land overlaps the scores, which every warp's P V read */
    for (int q0 = 0; q0 < n_chunks; q0 += B) {
        const int nb = n_chunks - q0 < B ? n_chunks - q0 : B;
        const int nw = nb * group * seg, n_all = nw + (q0 == 0 ? units : 0); /* the gates with the first batch */
        for (int i0 = tid; i0 < n_all; i0 += 8 * NCT) {
            const unsigned long long *w[8];
            unsigned tg[8];
            float v[8];
            int n = 0;
#pragma unroll
            for (int k = 0; k < 8; k++) {
                const int i = i0 + k * NCT;
                w[k] = p.mix; /* (unused) */
                tg[k] = tag_out;
                if (i < nw) {
                    const int qh = __float2int_rz(((float)i + 0.5f) * inv_seg), e = i - qh * seg;
                    const int q = __float2int_rz(((float)qh + 0.5f) * inv_group), hh = qh - q * group;
                    w[k] = part0 + (size_t)(q0 + q) * stride + hh * (D + 2) + (e < sw ? e : D - d0 + e - sw);
                    n = k + 1;
                } else if (i < n_all) {
                    const int j = i - nw, hh = __float2int_rz(((float)j + 0.5f) * inv_sw), e = j - hh * sw;
                    w[k] = p.mix + (size_t)(kvh * group + hh) * 2 * D + D + d0 + e;
                    tg[k] = tag_in;
                    n = k + 1;
                }
            }
            md_ll_gather<8>(w, tg, n, v, p, layer, MD_PH_MIX);
#pragma unroll
            for (int k = 0; k < 8; k++)
                if (k < n) land[i0 + k * NCT] = v[k];
        }
        md_consumer_sync();
        for (int u = tid; u < units; u += NCT) {
            const int hh = __float2int_rz(((float)u + 0.5f) * inv_sw), e = u - hh * sw;
            float *st = state + 3 * u;
            float M = q0 == 0 ? -FLT_MAX : st[0], L = q0 == 0 ? 0.0f : st[1], o = q0 == 0 ? 0.0f : st[2];
            for (int q = 0; q < nb; q++) {
                const float *r = land + (q * group + hh) * seg;
                const float m = r[sw], Mn = fmaxf(M, m), fo = __expf(M - Mn), fn = __expf(m - Mn);
                L = L * fo + r[sw + 1] * fn;
                o = o * fo + r[e] * fn;
                M = Mn;
            }
            if (q0 + nb < n_chunks) {
                st[0] = M;
                st[1] = L;
                st[2] = o;
            } else { /* (L >= 1: the chunk holding the max adds exp(0)) */
                md_ll_store(p.core + (size_t)(kvh * group + hh) * D + d0 + e, __fdividef(o, L) * md_fast_sigmoid(gates[u]), tag_out);
            }
        }
        md_consumer_sync();
    }
}

/* Key rows md_attention_whole stages in c.xb ([2][xb_stride] bf16); this
 * token's key row comes after them. */
__device__ __forceinline__ int md_whole_ns_max(int xb_stride, int D) { return 2 * xb_stride / D - 1; }

/* md_attention_whole's vector area: [group][D] rotated, scaled queries
 * (then split in place by md_split_head); [group][attn_whole] scores, then
 * exp (score - the warp's max); [NCW][2][group] each warp's max and sum; [D]
 * this token's key, [D] its value; [2 D + R/2] norm weights and frequencies;
 * [group][64 / group] the slice's output gates; [NCW][32][2] each warp's
 * P V sums (the host's whole_vec, decode.cu, counts the same floats). */
struct md_whole_area {
    float *sq, *sc, *sml, *kt, *vt, *wsm, *gts, *opart;
    __device__ __forceinline__ md_whole_area(float *vec, int group, int D, int scs, int R2) {
        sq = vec;
        sc = sq + group * D;
        sml = sc + group * scs;
        kt = sml + 2 * NCW * group;
        vt = kt + D;
        wsm = vt + D;
        gts = wsm + 2 * D + R2;
        opart = gts + 64;
    }
};

/* One query head (D floats in shared memory), in place, by one warp: as
 * bf16 high halves [D] then low halves [D] (md_bf16_split2), the B operand
 * of md_attention_whole_pv's scores. */
template <int D>
__device__ __forceinline__ void md_split_head(float *x, int lane) {
    float2 v[D / 64];
#pragma unroll
    for (int k = 0; k < D / 64; k++) v[k] = *reinterpret_cast<const float2 *>(x + 2 * (lane + 32 * k));
    __syncwarp(); /* every lane's pairs read before any is overwritten */
    __nv_bfloat16 *hi = reinterpret_cast<__nv_bfloat16 *>(x), *lo = hi + D;
#pragma unroll
    for (int k = 0; k < D / 64; k++) {
        __nv_bfloat162 h2, l2;
        md_bf16_split2(v[k].x, v[k].y, h2, l2);
        *reinterpret_cast<__nv_bfloat162 *>(hi + 2 * (lane + 32 * k)) = h2;
        *reinterpret_cast<__nv_bfloat162 *>(lo + 2 * (lane + 32 * k)) = l2;
    }
}

/* md_head_norm_rope for md_attention_whole's heads (32 DL dims): the norm
 * in registers, every lane's DL values loaded at once and the scale folded
 * in (the rotation is linear), where md_head_norm_rope's loops run one
 * value at a time; the rotation as there; a query head (SPLIT) then split in
 * place (md_split_head). */
template <int DL, bool SPLIT>
__device__ __forceinline__ void md_head_norm_rope_reg(float *x, const float *w, const float *f, const md_cuda_dims &d, int pos, float scale,
                                                      int lane) {
    float v[DL], ss = 0.0f;
#pragma unroll
    for (int k = 0; k < DL; k++) {
        v[k] = x[lane + 32 * k];
        ss += v[k] * v[k];
    }
    const float inv = rsqrtf(__fdividef(md_warp_sum(ss), (float)(32 * DL)) + d.eps) * scale;
#pragma unroll
    for (int k = 0; k < DL; k++) x[lane + 32 * k] = v[k] * inv * (1.0f + w[lane + 32 * k]);
    __syncwarp();
    md_rope_rotate(x, f, d.R / 2, pos, lane);
    if constexpr (SPLIT) md_split_head<32 * DL>(x, lane);
}

/* md_attention_whole's scores, softmax and P V, once the queries are rotated
 * and this token's key (kcur) and value slice are in shared memory.
 * Scores on the tensor cores: a warp takes tiles of 16 positions (tile T,
 * warp T % NCW), A = the tile's key rows (bf16 as the cache holds them), B =
 * the GROUP query heads (columns n = lane / 4, head n % GROUP; columns past
 * GROUP repeat heads and are dropped), split into bf16 high and low halves
 * (two mma's a k-step, as the matvecs). The dot product sums over the dims in
 * any order, so the k-steps take the dims in the order that lets every lane
 * load its A and B fragments as whole 16-byte pieces: lane (g = lane / 4, t
 * = lane % 4) loads dims 32u + 8t .. + 7 of rows g and g + 8 (k-steps 2u and
 * 2u + 1), the same dims of the queries (split in place by md_split_head).
 * The softmax stays within the warp (its own max and sum a head, over its own
 * positions), and so does P V (a lane one (head, pair of dims) of the
 * slice); after the one barrier, warp 0 merges the warps' sums, each
 * rescaled by exp(its max - the max), applies the output gates (polled
 * before the barrier by the last warp, which has the fewest tiles: the
 * in-projection publishes them after the queries: qkv_rows.c) and
 * publishes. */
template <int DL, int GROUP>
static __device__ __noinline__ void md_attention_whole_pv(const md_decode_params &p, float *vec, const __nv_bfloat16 *kst,
                                                          const __nv_bfloat16 *vst, const __nv_bfloat16 *kc, int ns, int pos,
                                                          int kvh, int d0, unsigned tag_in, unsigned tag_out, int layer, int tid) {
    constexpr int D = 32 * DL, SW = 64 / GROUP, NU = D / 32, UH = NU < 4 ? NU : 4;
    static_assert(NU % UH == 0, "whole passes of UH key pieces");
    static_assert(GROUP % 2 == 0 && GROUP <= 8, "md_attn_whole_shape: B's 8 columns hold the group's heads in pairs");
    const int w = tid / 32, lane = tid % 32, npos = pos + 1, SCS = p.attn_whole, kvd = p.d.kvd;
    const md_whole_area a(vec, GROUP, D, SCS, p.d.R / 2);
    const __nv_bfloat16 *kcur = kst + (size_t)md_whole_ns_max(p.xb_stride, D) * D;
    const int g = lane / 4, t = lane % 4, nt = (npos + 15) / 16;
    float mx0 = -FLT_MAX, mx1 = -FLT_MAX; /* this lane's max for heads 2t, 2t + 1 */
#pragma unroll 1
    for (int T = w; T < nt; T += NCW) {
        const __nv_bfloat16 *row[2];
#pragma unroll
        for (int r = 0; r < 2; r++) { /* rows past the context read this token's key; their scores are dropped */
            const int j = T * 16 + g + 8 * r;
            row[r] = (j < ns ? kst + j * D : j < pos ? kc + (size_t)j * kvd : kcur) + 8 * t;
        }
        float acc[2][4] = {}; /* the products with the queries' high, low halves (two accumulators: more spilled the kernel) */
#pragma unroll 1 /* (UH key pieces a row in flight: unrolled, or with more, the kernel spilled) */
        for (int u0 = 0; u0 < NU; u0 += UH) {
            uint4 k0[UH], k1[UH];
#pragma unroll
            for (int i = 0; i < UH; i++) {
                k0[i] = *reinterpret_cast<const uint4 *>(row[0] + 32 * (u0 + i));
                k1[i] = *reinterpret_cast<const uint4 *>(row[1] + 32 * (u0 + i));
            }
#pragma unroll
            for (int i = 0; i < UH; i++) {
                const __nv_bfloat16 *qx = reinterpret_cast<const __nv_bfloat16 *>(a.sq + (g % GROUP) * D) + 32 * (u0 + i) + 8 * t;
                const uint4 bh = *reinterpret_cast<const uint4 *>(qx), bl = *reinterpret_cast<const uint4 *>(qx + D);
                const uint32_t ae[4] = {k0[i].x, k1[i].x, k0[i].y, k1[i].y}, ao[4] = {k0[i].z, k1[i].z, k0[i].w, k1[i].w};
                md_mma_bf16(acc[0], ae, bh.x, bh.y);
                md_mma_bf16(acc[1], ae, bl.x, bl.y);
                md_mma_bf16(acc[0], ao, bh.z, bh.w);
                md_mma_bf16(acc[1], ao, bl.z, bl.w);
            }
        }
        if (2 * t < GROUP) { /* c0, c1: position T 16 + g, heads 2t, 2t + 1; c2, c3: position + 8 */
#pragma unroll
            for (int r = 0; r < 2; r++) {
                const int j = T * 16 + g + 8 * r;
                const float s0 = acc[0][2 * r] + acc[1][2 * r], s1 = acc[0][2 * r + 1] + acc[1][2 * r + 1];
                if (j < npos) {
                    a.sc[2 * t * SCS + j] = s0;
                    a.sc[(2 * t + 1) * SCS + j] = s1;
                    mx0 = fmaxf(mx0, s0);
                    mx1 = fmaxf(mx1, s1);
                }
            }
        }
    }
    /* the warp's max for each head (lanes t of every g: reduce over g), then
     * lane l takes head hl = l % GROUP's from lane hl / 2 */
#pragma unroll
    for (int m = 4; m < 32; m *= 2) {
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, m));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, m));
    }
    const int hl = lane % GROUP;
    const float mhe = __shfl_sync(0xffffffffu, mx0, hl / 2), mho = __shfl_sync(0xffffffffu, mx1, hl / 2);
    const float mx = hl & 1 ? mho : mhe;
    __syncwarp(); /* the warp's scores */
    float l = 0.0f;
#pragma unroll 1
    for (int T = w; T < nt; T += NCW) { /* exp (score - max) of the warp's positions, lane l the (l / GROUP)-th of each GROUP */
        for (int j = T * 16 + lane / GROUP; j < T * 16 + 16 && j < npos; j += 32 / GROUP) {
            const float e = __expf(a.sc[hl * SCS + j] - mx);
            a.sc[hl * SCS + j] = e;
            l += e;
        }
    }
#pragma unroll
    for (int m = GROUP; m < 32; m *= 2) l += __shfl_xor_sync(0xffffffffu, l, m);
    float *wml = a.sml + w * 2 * GROUP; /* [GROUP] this warp's max, [GROUP] its sum */
    if (lane < GROUP) {
        wml[lane] = mx;
        wml[GROUP + lane] = l;
    }
    __syncwarp();
    md_trace_mark_tid(p, tid, layer, MD_PH_MIX, 5); /* trace: scores and warp 0's softmax done */
    /* P V over this warp's positions */
    const int h = lane / (SW / 2), dp = lane % (SW / 2);
    const float *ph = a.sc + h * SCS;
    float o0 = 0.0f, o1 = 0.0f;
#pragma unroll 1
    for (int T = w; T < nt; T += NCW) {
        const int j1 = (T + 1) * 16 < npos ? (T + 1) * 16 : npos;
#pragma unroll 4
        for (int j = T * 16; j < j1; j++) {
            const float pj = ph[j];
            const float2 v2 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(vst + j * SW + 2 * dp));
            o0 += pj * v2.x;
            o1 += pj * v2.y;
        }
    }
    *reinterpret_cast<float2 *>(a.opart + (w * 32 + lane) * 2) = make_float2(o0, o1);
    if (w == NCW - 1) { /* the slice's gates: GROUP x SW = 64 words, two a lane, in flight together */
        const unsigned long long *gw[2];
        const unsigned gt[2] = {tag_in, tag_in};
        float gv[2];
#pragma unroll
        for (int k = 0; k < 2; k++) {
            const int i = lane + 32 * k, hg = i / SW;
            gw[k] = p.mix + (size_t)(kvh * GROUP + hg) * 2 * D + D + d0 + (i - hg * SW);
        }
        md_ll_gather<2>(gw, gt, 2, gv, p, layer, MD_PH_MIX);
        a.gts[lane] = gv[0];
        a.gts[lane + 32] = gv[1];
    }
    md_consumer_sync();
    if (w == 0) { /* (a warp without positions: max -FLT_MAX, weight 0; warp 0 has position 0) */
        float M = a.sml[h];
        for (int u = 1; u < NCW; u++) M = fmaxf(M, a.sml[u * 2 * GROUP + h]);
        float a0 = 0.0f, a1 = 0.0f, lh = 0.0f;
        for (int u = 0; u < NCW; u++) {
            const float2 o = *reinterpret_cast<const float2 *>(a.opart + (u * 32 + lane) * 2);
            const float f = __expf(a.sml[u * 2 * GROUP + h] - M);
            a0 += o.x * f;
            a1 += o.y * f;
            lh += a.sml[u * 2 * GROUP + GROUP + h] * f;
        }
        /* (lh >= 1: the warp holding the max adds its sum, >= exp(0)) */
        md_ll_store2(p.core + (size_t)(kvh * GROUP + h) * D + d0 + 2 * dp, __fdividef(a0, lh) * md_fast_sigmoid(a.gts[h * SW + 2 * dp]),
                     __fdividef(a1, lh) * md_fast_sigmoid(a.gts[h * SW + 2 * dp + 1]), tag_out);
    }
    md_trace_mark_tid(p, tid, layer, MD_PH_MIX, 6); /* trace: P V done and published */
}

/* Attention over the whole context by each item, for short contexts (npos <=
 * p.attn_whole): no split-KV partials, so no combine and no exchange between
 * the items. Item (kv head, slice of 64 / group value dims) computes every
 * score of the GQA group's query heads (the items of a kv head compute the
 * same scores), the softmax, and P V for its slice, then applies the output
 * gate and publishes its slice of core[head * D + d] as md_attn_combine does.
 * Before it waits for the queries it copies into shared memory the value
 * slices of the earlier positions (c.pre) and as many of their key rows as
 * c.xb holds; later key rows are read from the cache in the scores loop. The
 * first item of each kv head appends this token's key and value (released
 * and acquired as in md_attention).
 * The staging, the polls, the rotations and the append are inline (as
 * md_attention's); the scores, softmax and P V are md_attention_whole_pv. */
template <int DL, int GROUP>
__device__ __forceinline__ void md_attention_whole(const md_decode_params &p, md_consumer &c, const md_cuda_layer *L, int pos,
                                                   unsigned tag_in, unsigned tag_out, int layer) {
    const md_cuda_dims &d = p.d;
    constexpr int D = 32 * DL, group = GROUP, SW = 64 / group, S = D / SW;
    const int items = md_attn_whole_items(d.Hkv, D, group), R2 = d.R / 2;
    const md_whole_area a(c.vec, group, D, p.attn_whole, R2);
    const size_t cache_off = (size_t)L->slot * d.n_ctx * d.kvd;
    const __nv_bfloat16 *kc = p.k_cache + cache_off, *vc = p.v_cache + cache_off;
    __nv_bfloat16 *kst = c.xb, *vst = reinterpret_cast<__nv_bfloat16 *>(c.pre);
    const int ns_max = md_whole_ns_max(c.xb_stride, D), ns = pos < ns_max ? pos : ns_max;
    __nv_bfloat16 *kcur = kst + ns_max * D; /* this token's key row, rounded as the cache holds it */
    constexpr int kpr_log = D == 256 ? 5 : 3, vpr_log = SW == 16 ? 1 : 2; /* log2 of the 16-byte pieces of a key row, of a value slice */
    static_assert(8 << kpr_log == D && 8 << vpr_log == SW, "md_attn_whole_shape");
    for (int item = blockIdx.x; item < items; item += gridDim.x) {
        const int kvh = item / S, s = item - kvh * S, d0 = s * SW;
        /* norm weights, frequencies, staged keys and value slices, while the queries are polled for */
        md_attn_stage_norms(p, L, a.wsm, D, R2, c.tid);
        {
            const int nk = ns << kpr_log, n = nk + (pos << vpr_log);
            for (int i = c.tid; i < n; i += NCT) {
                const bool v = i >= nk;
                const int iv = v ? i - nk : i, lg = v ? vpr_log : kpr_log, r = iv >> lg, e = iv - (r << lg);
                const __nv_bfloat16 *src = (v ? vc + d0 : kc) + (size_t)r * d.kvd + kvh * D + e * 8;
                __nv_bfloat16 *dst = v ? vst + r * SW + e * 8 : kst + r * D + e * 8;
                asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(md_smem_addr(dst)), "l"(src) : "memory");
            }
        }
        asm volatile("cp.async.commit_group;" ::: "memory");
        /* the polls: the query heads (a warp each), this token's value (all
         * of it where this item appends), its key; the gates come later
         * (md_attention_whole_pv) */
        const bool app = s == 0;
        for (int hh = c.w; hh < group; hh += NCW)
            md_ll_read(p.mix + (size_t)(kvh * group + hh) * 2 * D, D, tag_in, a.sq + hh * D, c.lane, 32, p, layer, MD_PH_MIX);
        if (c.w >= NCW - 2) {
            const bool key = c.w == NCW - 1;
            const int v0 = key || app ? 0 : d0;
            md_ll_read(p.mix + 2 * d.qd + (key ? 0 : d.kvd) + kvh * D + v0, key || app ? D : SW, tag_in, (key ? a.kt : a.vt) + v0, c.lane,
                       32, p, layer, MD_PH_MIX);
        }
        md_trace_mark(p, c, layer, MD_PH_MIX, 9); /* trace: warp 0's query head polled */
        asm volatile("cp.async.wait_all;" ::: "memory");
        md_consumer_sync(); /* the weights and staged rows (every thread's copies) and the raw heads */
        for (int hh = c.w; hh < group; hh += NCW) md_head_norm_rope_reg<DL, true>(a.sq + hh * D, a.wsm, a.wsm + 2 * D, d, pos, rsqrtf((float)D), c.lane);
        md_trace_mark(p, c, layer, MD_PH_MIX, 4); /* trace: queries waited for and rotated */
        if (c.w >= NCW - 2) { /* this token's key (rotated) and value slice into shared memory; the first item appends both */
            const bool key = c.w == NCW - 1;
            if (key) md_head_norm_rope_reg<DL, false>(a.kt, a.wsm + D, a.wsm + 2 * D, d, pos, 1.0f, c.lane);
            const float *x = key ? a.kt : a.vt;
            __nv_bfloat16 *cache = (key ? p.k_cache : p.v_cache) + cache_off + (size_t)pos * d.kvd + kvh * D;
            for (int i = c.lane; i < D; i += 32) {
                const __nv_bfloat16 y = __float2bfloat16(x[i]);
                if (key) kcur[i] = y;
                else if (i >= d0 && i < d0 + SW) vst[pos * SW + i - d0] = y;
                if (app) cache[i] = y;
            }
            if (app && key && c.lane == 0) /* the fence that publishes the rows to later steps: at the step's end (md_argmax_finish) */
                *reinterpret_cast<int *>(c.red + MD_KV_APPENDED) = 1;
        }
        md_consumer_sync();
        md_trace_mark(p, c, layer, MD_PH_MIX, 8); /* trace: the append done */
        md_attention_whole_pv<DL, GROUP>(p, c.vec, kst, vst, kc + kvh * D, ns, pos, kvh, d0, tag_in, tag_out, layer, c.tid);
        md_trace_mark(p, c, layer, MD_PH_MIX, 7); /* trace: the item done */
        md_consumer_sync(); /* the next item reuses the staged rows and c.vec */
    }
}

/* Split-KV attention for one token. Item (kv head, chunk of positions) runs
 * every query head of the GQA group over its chunk and publishes a partial
 * (unnormalised o, running max m, sum l) as tagged words; then every item
 * combines the partials of its slice of the head dims (md_attn_combine),
 * applies the output gate and writes that slice of core[head * D + d]. (A
 * ticket, the last item combining everything, cost a fence, an atomic and
 * three rounds of loads on the critical path.) The item holding the current
 * position normalises, rotates and appends this token's key and value; its
 * CTA's fence before its argmax candidate, and the acquire after every
 * CTA's reading of all the candidates (md_argmax_finish), order them before
 * any later step's reads.
 *
 * When a chunk's key and value rows fit (c.xb holds the keys, c.pre the
 * values: both idle in this phase; chunks of 16 positions of 256-dim heads,
 * i.e. contexts up to ~1,000 tokens on the H100), the item copies them into
 * shared memory (cp.async) before it waits for the queries, so the scores
 * and P V read shared memory instead of two dependent rounds of cache loads
 * each; longer chunks read the cache directly. */
__device__ void md_attention(const md_decode_params &p, md_consumer &c, const md_cuda_layer *L, int pos, unsigned tag_in,
                             unsigned tag_out, int layer) {
    const md_cuda_dims &d = p.d;
    const int D = d.D, group = d.Hq / d.Hkv, G = gridDim.x;
    const int npos = pos + 1;
    if (npos <= p.attn_whole) { /* (the host sets attn_whole only for md_attn_whole_shape) */
        if (D == 256 && group == 4) md_attention_whole<8, 4>(p, c, L, pos, tag_in, tag_out, layer);
        else md_attention_whole<2, 2>(p, c, L, pos, tag_in, tag_out, layer);
        return;
    }
    int chunk = md_div_grid(p, npos * d.Hkv + G - 1);
    chunk = chunk < MD_DEC_ATTN_MIN_CHUNK ? MD_DEC_ATTN_MIN_CHUNK : chunk > MD_DEC_ATTN_MAX_CHUNK ? MD_DEC_ATTN_MAX_CHUNK : chunk;
    const int n_chunks = (npos + chunk - 1) / chunk;
    const int items = d.Hkv * n_chunks;
    float *sq = c.vec;                    /* [group][D] rotated, scaled queries */
    float *sc = c.vec + group * D;        /* [group][chunk] scores, then probabilities */
    float *sml = sc + group * chunk;      /* [group] max, then [group] sum */
    const size_t cache_off = (size_t)L->slot * d.n_ctx * d.kvd;
    const __nv_bfloat16 *kc = p.k_cache + cache_off;
    const __nv_bfloat16 *vc = p.v_cache + cache_off;
    const float scale = rsqrtf((float)D);
    const int pairs = D / 2;
    /* the chunk's rows staged in shared memory: keys in c.xb (rows KS apart,
     * 16 bytes more than a row, so the lanes of a score warp, one key row
     * each, hit different banks), values in c.pre */
    __nv_bfloat16 *kst = c.xb, *vst = reinterpret_cast<__nv_bfloat16 *>(c.pre);
    const int KS = D + 8;
    const bool staged = D % 8 == 0 && chunk * KS <= 2 * c.xb_stride && chunk * D * 2 <= MD_DEC_PRE_FLOATS * 4;
    for (int item = blockIdx.x; item < items; item += G) {
        const int kvh = item / n_chunks, ch = item % n_chunks;
        const int j0 = ch * chunk, j1 = j0 + chunk < npos ? j0 + chunk : npos;
        /* (the cache rows other CTAs appended in earlier steps, read below or
         * staged now, were acquired by the previous step's argmax, md_argmax_finish,
         * or by the kernel boundary for earlier launches) */
        /* the norm weights and rotary frequencies into shared memory while
         * the queries are polled for (read after them, they were two more
         * round trips on the critical path) */
        float *wsm = sml + 2 * group + 2 * D; /* [D] q norm, [D] k norm, [R/2] frequencies */
        md_attn_stage_norms(p, L, wsm, D, d.R / 2, c.tid);
        if (staged) { /* the rows earlier steps appended; this token's come from the append below */
            const int have = (j1 < pos ? j1 : pos) - j0, per = D / 8, n = have * per;
            for (int i = c.tid; i < 2 * n; i += NCT) {
                const bool v = i >= n;
                const int iv = v ? i - n : i, r = md_udiv(iv, p.mg_d8), e = iv - r * per;
                const __nv_bfloat16 *src = (v ? vc : kc) + (size_t)(j0 + r) * d.kvd + kvh * D + e * 8;
                asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(md_smem_addr((v ? vst + r * D : kst + r * KS) + e * 8)), "l"(src)
                             : "memory");
            }
        }
        asm volatile("cp.async.commit_group;" ::: "memory");
        const bool append = pos >= j0 && pos < j1 && c.w >= NCW - 2; /* this token's k (last warp) and v (the one before) */
        float *kt = sml + 2 * group + (c.w == NCW - 1 ? 0 : D); /* [D] scratch after the stats */
        for (int hh = c.w; hh < group; hh += NCW)
            md_ll_read(p.mix + (size_t)(kvh * group + hh) * 2 * D, D, tag_in, sq + hh * D, c.lane, 32, p, layer, MD_PH_MIX);
        if (append) md_ll_read(p.mix + 2 * d.qd + (c.w == NCW - 1 ? 0 : d.kvd) + kvh * D, D, tag_in, kt, c.lane, 32, p, layer, MD_PH_MIX);
        md_trace_mark(p, c, layer, MD_PH_MIX, 9); /* trace: warp 0's query head polled */
        asm volatile("cp.async.wait_all;" ::: "memory");
        md_consumer_sync(); /* the weights and staged rows (every thread's copies) and the raw heads */
        for (int hh = c.w; hh < group; hh += NCW) md_head_norm_rope(sq + hh * D, wsm, wsm + 2 * D, d, pos, scale, c.lane);
        md_trace_mark(p, c, layer, MD_PH_MIX, 4); /* trace: queries waited for and rotated */
        if (append) {
            if (c.w == NCW - 1) md_head_norm_rope(kt, wsm + D, wsm + 2 * D, d, pos, 1.0f, c.lane);
            const size_t at = cache_off + (size_t)pos * d.kvd + kvh * D;
            __nv_bfloat16 *dst = (c.w == NCW - 1 ? p.k_cache : p.v_cache) + at;
            __nv_bfloat16 *sdst = c.w == NCW - 1 ? kst + (pos - j0) * KS : vst + (pos - j0) * D;
            for (int i = c.lane; i < D; i += 32) {
                const __nv_bfloat16 x = __float2bfloat16(kt[i]);
                dst[i] = x;
                if (staged) sdst[i] = x;
            }
            if (c.w == NCW - 1 && c.lane == 0) /* the fence that publishes the rows to later steps: at the step's end, off this path (md_argmax_finish) */
                *reinterpret_cast<int *>(c.red + MD_KV_APPENDED) = 1;
        }
        md_consumer_sync();
        md_trace_mark(p, c, layer, MD_PH_MIX, 8); /* trace: the append done */
        /* row j of the chunk's keys / values: staged, or in the cache */
        const __nv_bfloat16 *kb = staged ? kst : kc + (size_t)j0 * d.kvd + kvh * D;
        const __nv_bfloat16 *vb = staged ? vst : vc + (size_t)j0 * d.kvd + kvh * D;
        const size_t krs = staged ? (size_t)KS : (size_t)d.kvd, rs = staged ? (size_t)D : (size_t)d.kvd;
        /* scores and softmax: a warp per query head, a lane per position (32
         * at a time) over the whole head dim, so a warp's positions are in
         * flight together and the softmax needs no exchange between warps */
        for (int hh = c.w; hh < group; hh += NCW) {
            const float *qh = sq + hh * D;
            float *sh = sc + hh * chunk;
            float mx = -FLT_MAX;
            for (int j = c.lane; j < j1 - j0; j += 32) {
                const uint4 *kr = reinterpret_cast<const uint4 *>(kb + (size_t)j * krs);
                float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll 2
                for (int v8 = 0; v8 < D / 8; v8++) {
                    float k8[8];
                    md_bf16x8_to_f32(kr[v8], k8);
                    const float4 qa = *reinterpret_cast<const float4 *>(qh + v8 * 8), qb = *reinterpret_cast<const float4 *>(qh + v8 * 8 + 4);
                    acc[0] += k8[0] * qa.x + k8[4] * qb.x;
                    acc[1] += k8[1] * qa.y + k8[5] * qb.y;
                    acc[2] += k8[2] * qa.z + k8[6] * qb.z;
                    acc[3] += k8[3] * qa.w + k8[7] * qb.w;
                }
                const float sj = (acc[0] + acc[1]) + (acc[2] + acc[3]);
                sh[j] = sj;
                mx = fmaxf(mx, sj);
            }
            mx = md_warp_max(mx);
            float l = 0.0f;
            for (int j = c.lane; j < j1 - j0; j += 32) { /* the lane's own scores: no barrier */
                const float e = __expf(sh[j] - mx);
                sh[j] = e;
                l += e;
            }
            l = md_warp_sum(l);
            if (c.lane == 0) {
                sml[hh] = mx;
                sml[group + hh] = l;
            }
        }
        md_consumer_sync();
        md_trace_mark(p, c, layer, MD_PH_MIX, 5); /* trace: scores and softmax done */
        /* P V: thread (head, pair of dims) accumulates over the chunk */
        for (int t = c.tid; t < group * pairs; t += NCT) {
            const int hh = md_udiv(t, p.mg_pairs), dp = t - hh * pairs;
            float o0 = 0.0f, o1 = 0.0f;
            const __nv_bfloat16 *vcol = vb + 2 * dp;
#pragma unroll 8
            for (int j = 0; j < j1 - j0; j++) {
                const unsigned raw = *reinterpret_cast<const unsigned *>(vcol + (size_t)j * rs);
                const float2 v2 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&raw));
                const float pj = sc[hh * chunk + j];
                o0 += pj * v2.x;
                o1 += pj * v2.y;
            }
            unsigned long long *part = p.attn_part + (((size_t)kvh * p.attn_max_chunks + ch) * group + hh) * (D + 2);
            md_ll_store2(part + 2 * dp, o0, o1, tag_out);
            if (dp == 0) md_ll_store2(part + D, sml[hh], sml[group + hh], tag_out);
        }
        md_trace_mark(p, c, layer, MD_PH_MIX, 6); /* trace: P V and partials done */
        md_consumer_sync(); /* the next item reuses the staged rows and c.vec */
    }
    if (MD_DEC_INSTRUMENTED && (p.probe & 16)) return; /* timing probe: no combine (O reads a partial instead) */
    /* the combine, once every item of this CTA wrote its partial (an item's
     * combine waits for every item of its kv head) */
    for (int item = blockIdx.x; item < items; item += G) {
        const int kvh = item / n_chunks, ch = item % n_chunks;
        md_attn_combine(p, c.vec, c.tid, kvh, ch, n_chunks, tag_in, tag_out, layer);
        md_trace_mark(p, c, layer, MD_PH_MIX, 7); /* trace: the combine done */
    }
}

/* ---------------------------------------------------------------- LM head */

/* Picks the larger logit, ties to the lower id. */
__device__ __forceinline__ void md_better(float &bv, int &bi, float v, int i) {
    if (v > bv || (v == bv && i < bi)) {
        bv = v;
        bi = i;
    }
}

/* The LM head's end: this CTA's best row goes to the candidates, a tagged
 * pair of words (logit, id) a CTA, and every CTA reduces all of them in the
 * same fixed order into the next step's token (c.tok): no ticket, no last
 * CTA publishing the token, one exchange instead of three round trips
 * (fence and atomic, the last CTA's loads, the token). The candidates carry
 * the KV rows this step appended to the later steps' attention (they read
 * the cache, untagged): a CTA that appended (MD_KV_APPENDED) fences before
 * its candidate (release), and each thread that polled candidates fences
 * after them (acquire), before the barrier that hands the token to the
 * others. Ties go to the lower id at every level. */
__device__ void md_argmax_finish(const md_decode_params &p, md_consumer &c, float bv, int bi, unsigned step) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) { /* every thread ran epilogues */
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        md_better(bv, bi, ov, oi);
    }
    float *rv = c.red + MD_ARGMAX;
    int *ri = reinterpret_cast<int *>(c.red + MD_ARGMAX + NCW);
    if (c.lane == 0) {
        rv[c.w] = bv;
        ri[c.w] = bi;
    }
    md_consumer_sync();
    const unsigned tag = md_tag(p, step, p.d.n_layers, 0);
    if (c.tid == 0) {
        float v = -FLT_MAX;
        int idx = INT_MAX;
        for (int i = 0; i < NCW; i++) md_better(v, idx, rv[i], ri[i]);
        int *appended = reinterpret_cast<int *>(c.red + MD_KV_APPENDED);
        if (*appended) { /* (the appenders' stores are ordered before this by the barriers since) */
            asm volatile("fence.acq_rel.gpu;" ::: "memory");
            *appended = 0;
        }
        md_ll_store2(p.cand + 2 * blockIdx.x, v, __int_as_float(idx), tag);
    }
    float gv = -FLT_MAX;
    int gi = INT_MAX;
    if (c.tid < (int)gridDim.x) {
        for (int b = c.tid; b < (int)gridDim.x; b += NCT) {
            ulonglong2 x = md_ll_load2(p.cand + 2 * b);
            unsigned long long t0 = 0;
            for (unsigned spins = 0; !(md_ll_ok(p, x.x, tag) & md_ll_ok(p, x.y, tag)); spins++) {
                md_poll_backoff(p);
                x = md_ll_load2(p.cand + 2 * b);
                md_ll_spin_check(p, spins, t0, p.d.n_layers, 0);
            }
            md_better(gv, gi, __uint_as_float((unsigned)x.x), (int)(unsigned)x.y);
        }
        asm volatile("fence.acq_rel.gpu;" ::: "memory"); /* acquire: the KV rows behind the candidates */
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, gv, o);
        const int oi = __shfl_xor_sync(0xffffffffu, gi, o);
        md_better(gv, gi, ov, oi);
    }
    md_consumer_sync(); /* rv / ri are reused */
    if (c.lane == 0) {
        rv[c.w] = gv;
        ri[c.w] = gi;
    }
    md_consumer_sync();
    gv = -FLT_MAX;
    gi = INT_MAX;
    for (int i = 0; i < NCW; i++) md_better(gv, gi, rv[i], ri[i]);
    if (gi < 0 || gi >= p.d.vocab) gi = 0; /* all-NaN logits: keep the next embedding lookup in range */
    c.tok = gi;
    if (blockIdx.x == 0 && c.tid == 0) {
        p.out_tokens[step] = gi;
        md_ll_store(p.tok, __int_as_float(gi), tag); /* the next launch's first token, unless the host gives one */
    }
    /* (rv / ri are next written by the next step's argmax, many barriers on) */
}

/* ---------------------------------------------------------------- one step */

/* Residual-stream rows this CTA owns: h_own[r - own.begin], published tagged. */
__device__ __forceinline__ void md_residual_add(const md_decode_params &p, md_consumer &c, int r, float v, unsigned tag) {
    const float x = c.h_own[r - c.own_begin] + v;
    c.h_own[r - c.own_begin] = x;
    md_ll_store(p.h + r, x, tag);
}

template <bool FOLD>
__device__ __forceinline__ void md_consumer_step(const md_decode_params &p, md_consumer &c, unsigned step) {
    const md_cuda_dims &d = p.d;
    const int pos = p.pos0 + (int)step;
    /* the input token: the previous step's argmax, which every CTA reduced
     * itself (md_argmax_finish, acquiring the KV rows appended then); at the
     * launch's first step the host's, or the last launch's argmax, tagged as
     * one. (The fence after it, once a launch, is insurance: the kernel
     * boundary already orders the cache rows of earlier launches.) */
    int tok = c.tok;
    if (step == 0) {
        const unsigned tok_tag = md_tag(p, step, d.n_layers, 0) - (unsigned)(d.n_layers * MD_PHASES_PER_LAYER + 1);
        tok = __float_as_int(md_ll_wait(p.tok, tok_tag, md_ll_load(p.tok), p, 0, MD_PH_MIX_IN));
        asm volatile("fence.acq_rel.gpu;" ::: "memory");
    }
    if (MD_DEC_INSTRUMENTED && (p.probe & 4) && (tok < 0 || tok >= d.vocab)) tok = 0; /* probe 4 reads whatever is there */
    const __nv_bfloat16 *erow = p.embed + (size_t)tok * d.H;
    {   /* this CTA's rows of the residual stream start as the embedding */
        const md_range own = md_split_grid(p, d.H, blockIdx.x);
        for (int i = own.begin + c.tid; i < own.end; i += NCT) c.h_own[i - own.begin] = __bfloat162float(erow[i]);
    }
    for (int layer = 0; layer < d.n_layers; layer++) {
        const md_cuda_layer *L = &p.layers[layer];
        const unsigned t_in = md_tag(p, step, layer, MD_PH_MIX_IN), t_mix = md_tag(p, step, layer, MD_PH_MIX);
        const unsigned t_out = md_tag(p, step, layer, MD_PH_MIX_OUT), t_gu = md_tag(p, step, layer, MD_PH_GU);
        const unsigned t_down = md_tag(p, step, layer, MD_PH_DOWN);
        /* mixer in-projection */
        md_trace(p, c, step, layer, MD_PH_MIX_IN, 0);
        if (!L->full && layer == 0) md_in_prefetch(p, c, L); /* later layers': md_next_layer_prefetch */
        md_norm_split(p, c, p.h, md_tag(p, step, layer - 1, MD_PH_DOWN), layer == 0 ? erow : NULL, L->attn_norm, layer,
                       MD_PH_MIX_IN);
        md_trace(p, c, step, layer, MD_PH_MIX_IN, 1);
        md_trace(p, c, step, layer, MD_PH_MIX_IN, 2);
        md_maybe_delay(p, c, step, layer, MD_PH_MIX_IN);
        /* one instantiation for both kinds of layer, so the attention layers'
         * in-projection runs code the DeltaNet layers keep warm (its own copy
         * took ~2 us longer in its epilogues: cold instruction fetches). A
         * DeltaNet layer's pool rows (q, k, b, a) come first, in batches of
         * their own, so they are published while the CTA multiplies its
         * items' v and z rows (schedule.cuh, md_in_row); likewise an
         * attention layer's q, k or v rows before its gate rows (md_qkv_row) */
        md_consume_rows<false>(p, c, L->full ? MD_PLAN_QKV : MD_PLAN_IN, layer, MD_PH_MIX_IN, [&](int r, float v, float) {
            if (L->full) md_ll_store(p.mix + md_qkv_row(r), v, t_in);
            else md_in_epilogue(p, c, L, r, v, t_in);
        });
        md_trace(p, c, step, layer, MD_PH_MIX_IN, 3);
        if (md_is_stop(p, layer, MD_PH_MIX_IN)) return;
        /* recurrence / attention (the waits are inside) */
        md_trace(p, c, step, layer, MD_PH_MIX, 0);
        md_trace(p, c, step, layer, MD_PH_MIX, 1);
        if (L->full) md_attention(p, c, L, pos, t_in, t_mix, layer);
        else md_recurrence(p, c, L, t_in, t_mix, layer);
        md_trace(p, c, step, layer, MD_PH_MIX, 2);
        md_trace(p, c, step, layer, MD_PH_MIX, 3);
        if (md_is_stop(p, layer, MD_PH_MIX)) return;
        /* mixer out-projection, residual add */
        md_trace(p, c, step, layer, MD_PH_MIX_OUT, 0);
        md_prefetch_l1(L->mlp_norm, d.H * 4, c.tid); /* GU's norm weights, while this phase waits */
        if (L->full) {
            const unsigned long long *src = p.core;
            int n = d.qd;
            if (MD_DEC_INSTRUMENTED && (p.probe & 16) && pos >= p.attn_whole) { /* timing probe: the first item's partial, not the combine's output */
                src = p.attn_part;
                n = d.qd < (d.Hq / d.Hkv) * (d.D + 2) ? d.qd : (d.Hq / d.Hkv) * (d.D + 2);
            }
            md_ll_read(src, n, t_mix, c.vec, c.tid, NCT, p, layer, MD_PH_MIX_OUT);
            md_split_own(c, src, n);
        } else {
            md_gated_norm_split(p, c, t_mix, layer);
        }
        md_trace(p, c, step, layer, MD_PH_MIX_OUT, 1);
        md_trace(p, c, step, layer, MD_PH_MIX_OUT, 2);
        md_maybe_delay(p, c, step, layer, MD_PH_MIX_OUT);
        md_consume_rows<FOLD>(p, c, L->full ? MD_PLAN_O : MD_PLAN_OUT, layer, MD_PH_MIX_OUT,
                              [&](int r, float v, float) { md_residual_add(p, c, r, v, t_out); });
        md_trace(p, c, step, layer, MD_PH_MIX_OUT, 3);
        if (md_is_stop(p, layer, MD_PH_MIX_OUT)) return;
        /* MLP gate/up */
        md_trace(p, c, step, layer, MD_PH_GU, 0);
        md_norm_split(p, c, p.h, t_out, NULL, L->mlp_norm, layer, MD_PH_GU);
        md_trace(p, c, step, layer, MD_PH_GU, 1);
        md_trace(p, c, step, layer, MD_PH_GU, 2);
        md_maybe_delay(p, c, step, layer, MD_PH_GU);
        md_consume_rows<false>(p, c, MD_PLAN_GU, layer, MD_PH_GU,
                        [&](int j, float a0, float a1) { md_ll_store_split2(p.act + 2 * j, a0, a1, t_gu); });
        md_trace(p, c, step, layer, MD_PH_GU, 3);
        if (md_is_stop(p, layer, MD_PH_GU)) return;
        /* MLP down, residual add */
        md_trace(p, c, step, layer, MD_PH_DOWN, 0);
        if (layer + 1 < d.n_layers) md_next_layer_prefetch(p, c, layer + 1);
        else md_prefetch_l1(p.final_norm, d.H * 4, c.tid);
        {
            const int n_act = MD_DEC_INSTRUMENTED && (p.probe & 8) ? (d.H < d.I ? d.H : d.I) : d.I; /* timing probe: fewer inputs */
            md_ll_read(p.act, n_act, t_gu, c.vec, c.tid, NCT, p, layer, MD_PH_DOWN);
            md_copy_own_split(c, n_act);
        }
        md_trace(p, c, step, layer, MD_PH_DOWN, 1);
        md_trace(p, c, step, layer, MD_PH_DOWN, 2);
        md_maybe_delay(p, c, step, layer, MD_PH_DOWN);
        md_consume_rows<FOLD>(p, c, MD_PLAN_DOWN, layer, MD_PH_DOWN,
                              [&](int r, float v, float) { md_residual_add(p, c, r, v, t_down); });
        md_trace(p, c, step, layer, MD_PH_DOWN, 3);
        if (md_is_stop(p, layer, MD_PH_DOWN)) return;
    }
    /* final norm, LM head, argmax */
    md_trace(p, c, step, d.n_layers, 0, 0);
    md_norm_split(p, c, p.h, md_tag(p, step, d.n_layers - 1, MD_PH_DOWN), NULL, p.final_norm, d.n_layers, 0);
    md_trace(p, c, step, d.n_layers, 0, 1);
    md_trace(p, c, step, d.n_layers, 0, 2);
    float bv = -FLT_MAX;
    int bi = INT_MAX;
    float *logits = p.logits;
    md_consume_rows<false>(p, c, MD_PLAN_LM, d.n_layers, 0, [&](int r, float v, float) {
        if (logits) logits[r] = v;
        md_better(bv, bi, v, r);
    });
    md_trace(p, c, step, d.n_layers, 0, 3);
    md_argmax_finish(p, c, bv, bi, step);
}

/* ================================================================ kernel */

/* HOPPER: the ring's fill path (sync.cuh). FOLD: OUT / O and DOWN run folded
 * chunks (md_phase_geom; the host sets p.fold for all three or none), with
 * their own row loops: a row loop that chose at run time cost 1.8% where it
 * did not fold (A/B, session 11). */
template <bool HOPPER, bool FOLD>
__global__ void __launch_bounds__(MD_DEC_THREADS, 1) MD_DEC_FN(md_decode_kernel)(const __grid_constant__ md_decode_params p) {
    extern __shared__ __align__(128) uint8_t smem[];
    uint8_t *ring = smem;
    uint64_t *full = reinterpret_cast<uint64_t *>(smem + (size_t)p.n_stages * p.stage_bytes);
    uint64_t *empty = full + p.n_stages;
    float *vec = reinterpret_cast<float *>(empty + p.n_stages);
    float *red = vec + p.vec_floats;
    float *pre = red + RED_FLOATS;
    float *res = pre + MD_DEC_PRE_FLOATS;
    __nv_bfloat16 *xb = reinterpret_cast<__nv_bfloat16 *>(res + MD_DEC_RES_FLOATS); /* [2][xb_stride] */
    float *h_own = reinterpret_cast<float *>(xb + 2 * p.xb_stride);                   /* [ceil(H / G)] */
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    /* (not needed since v34: every warp stores every partial it leaves in res,
     * md_tile_store; without this loop the kernel measured 0.3% slower,
     * 1,386 -> 1,382 tok/s, its registers allocated differently) */
    for (int i = threadIdx.x; i < MD_DEC_RES_FLOATS; i += blockDim.x) res[i] = 0.0f;
    if (threadIdx.x == 0) *md_trace_stall_word(red) = *md_trace_mma_word(red) = 0;
    if (threadIdx.x == 0) md_in_qk_load(p);
    if (threadIdx.x == 32) md_qkv_load(p); /* (another warp than md_in_qk_load's: the loads in flight together) */
    if (threadIdx.x == 0) {
        for (int s = 0; s < p.n_stages; s++) {
            md_mbar_init(&full[s], HOPPER ? 1 : 32);
            md_mbar_init(&empty[s], NCT); /* every consumer lane: each warp multiplies its share of every chunk */
        }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
    }
    __syncthreads();
    if (warp == 0) {
        md_producer<HOPPER, FOLD>(p, ring, full, empty, lane);
        return;
    }
    md_consumer c;
    c.ring = ring;
    c.full = full;
    c.empty = empty;
    c.vec = vec;
    c.red = red;
    c.pre = pre;
    c.res = res;
    c.xb = xb;
    c.xb_stride = p.xb_stride;
    c.h_own = h_own;
    c.pre_ok = false;
    c.normed = c.presplit = false;
    c.t_chunks = c.t_synced = c.t_epi = c.t_split = 0;
    c.w = warp - 1;
    c.lane = lane;
    c.tid = threadIdx.x - 32;
    c.slot = c.par = 0;
    c.rot = 0;
    c.own_begin = md_split_grid(p, p.d.H, blockIdx.x).begin;
    c.tok = 0;
    if (c.tid == 0) *reinterpret_cast<int *>(c.red + MD_KV_APPENDED) = 0; /* (before the barriers of the first phase) */
    md_plans_init(p, c.tid); /* (after md_in_qk_load and md_qkv_load: the __syncthreads above) */
    if (p.conv_rows) md_conv_windows(p, c, false);
    md_consumer_sync(); /* the plans and the resident conv windows */
    for (int step = 0; step < p.n_steps; step++) md_consumer_step<FOLD>(p, c, (unsigned)step);
    if (p.conv_rows) { /* every in-projection epilogue of the launch is done */
        md_consumer_sync();
        md_conv_windows(p, c, true);
    }
}

} /* namespace */

/* ================================================================ host */

using namespace MD_DEC_FN(md_megakernel);

static_assert(sizeof(md_decode_params) <= 32764, "the decode kernel's parameters exceed CUDA's 32,764-byte limit");

typedef void (*md_decode_kernel_fn)(const md_decode_params);

/* The kernel for a fill path, folded (p.fold set) or not. */
static md_decode_kernel_fn md_decode_kernel_for(bool hopper, bool fold) {
    return hopper ? (fold ? MD_DEC_FN(md_decode_kernel)<true, true> : MD_DEC_FN(md_decode_kernel)<true, false>)
                  : (fold ? MD_DEC_FN(md_decode_kernel)<false, true> : MD_DEC_FN(md_decode_kernel)<false, false>);
}

md_status MD_DEC_FN(md_decode_prepare)(bool hopper, size_t smem) {
    for (int fold = 0; fold < 2; fold++) {
        const md_decode_kernel_fn k = md_decode_kernel_for(hopper, fold != 0);
        cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return md_cuda_fail(e, "cudaFuncSetAttribute(decode kernel shared memory)", __FILE__, __LINE__);
        int blocks = 0;
        e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, k, MD_DEC_THREADS, smem);
        if (e != cudaSuccess) return md_cuda_fail(e, "occupancy query (decode kernel)", __FILE__, __LINE__);
        if (blocks < 1)
            return md_fail(MD_ERR_DEVICE, "decode kernel does not fit on an SM (%zu bytes of shared memory, %d threads)", smem,
                           MD_DEC_THREADS);
    }
    return MD_OK;
}

/* Trace only: how many thread-block clusters of `cluster` CTAs with this
 * kernel's block size and shared memory the GPU can run at once (the
 * cluster-based schedule in bench/NOTES.md needs 16 of 8); -1 when the
 * query fails or the GPU has no clusters. */
int MD_DEC_FN(md_decode_max_clusters)(bool hopper, size_t smem, int cluster) {
    if (!hopper) return -1;
    cudaLaunchConfig_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = (unsigned)cluster;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.gridDim = dim3((unsigned)cluster);
    cfg.blockDim = dim3(MD_DEC_THREADS);
    cfg.dynamicSmemBytes = smem;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    int n = 0;
    if (cudaOccupancyMaxActiveClusters(&n, md_decode_kernel_for(true, false), &cfg) != cudaSuccess) {
        (void)cudaGetLastError();
        return -1;
    }
    return n;
}

md_status MD_DEC_FN(md_decode_launch)(md_cuda_ctx *g, const md_decode_params *p, int grid, size_t smem, bool hopper) {
    cudaLaunchConfig_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeCooperative; /* co-residency of all CTAs, or a launch error instead of a hang */
    attr[0].val.cooperative = 1;
    cfg.gridDim = dim3((unsigned)grid);
    cfg.blockDim = dim3(MD_DEC_THREADS);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = g->stream;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    const cudaError_t e = cudaLaunchKernelEx(&cfg, md_decode_kernel_for(hopper, p->fold[MD_FOLD_DOWN].sc != 0), *p);
    if (e != cudaSuccess) return md_fail(MD_ERR_DEVICE, "launch of the decode kernel (%d CTAs, %zu B shared) failed: %s", grid, smem,
                                         cudaGetErrorString(e));
    return MD_OK;
}
