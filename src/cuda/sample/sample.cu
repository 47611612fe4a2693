/*
 * sample.cu — one sampling step on the device, with the semantics of
 * sample.c (penalties, temperature, top-k, top-p, min-p, one uniform draw),
 * so a non-greedy decode step never copies the logits to the host: one
 * kernel of one CTA reads the decode kernel's logits where they are and
 * writes the chosen id. With a top-k of at most PRE_MAX_K (the usual case)
 * a first kernel of one CTA per 2048 logits does the penalties, the
 * temperature and a per-slice top-k first, so the one CTA only sorts out
 * the survivors.
 *
 * Every thread owns a contiguous range of ids, so sums in id order are a
 * per-thread loop plus a fixed tree over threads: runs are bitwise
 * repeatable. Top-k is a radix select of the k-th largest logit (4 passes of
 * 8 bits over order-preserving keys). Top-p finds, by the same narrowing, the
 * logit level where the kept prefix of the (logit desc, id asc) order ends,
 * with probabilities in 2^-62 fixed point so that bin masses add exactly in
 * any order; among equal logits at that level the lowest ids stay. The CPU
 * sums in double in a different order, so the two can differ only when the
 * draw or the top-p boundary falls within ~1e-15 of a partial sum.
 */
#include <float.h>
#include <limits.h>
#include <math.h>

#include "cuda/backend.cuh"
#include "cuda/common.cuh"

#define SB 512 /* threads of the sampling CTA */
#define SW (SB / 32)
#define FP_ONE 4611686018427387904.0 /* 2^62: probability 1 in fixed point */

typedef struct md_sample_args {
    float temperature, top_p, min_p, repeat_penalty, presence_penalty, u;
    int top_k, vocab, n_hist;
    unsigned stamp;
    int pre_slices; /* > 0: md_sample_prefilter ran over this many slices (penalties, temperature and per-slice top-k done) */
} md_sample_args;

/* Top-k prefilter (temperature > 0, 0 < top_k <= PRE_MAX_K): one CTA per
 * slice of PRE_SLICE logits applies the penalties and the temperature to
 * its slice and keeps the values >= its own k-th largest (ties included).
 * Every value >= the global k-th largest survives in its slice (a slice
 * holding one below its own threshold has k larger ones, so the global
 * threshold is above it), so the sampling CTA finds the exact top-k among
 * the survivors instead of passing the whole vocabulary four times. */
#define PRE_SLICE 2048
#define PRE_MAX_K 1024
#define PRE_UNION_MAX (32 * PRE_SLICE) /* survivors beyond this: the sampling CTA goes back to the whole vocabulary */

struct md_gpu_sampler {
    int32_t *d_hist, *d_out;
    double *d_e; /* [V] exp(l - max) of the candidates */
    float *d_pv; /* prefilter: [slices][PRE_SLICE] each slice's survivors (values, in id order) */
    int *d_pi;   /* ... their ids */
    int *d_pc;   /* ... [slices][2]: survivors, candidates (> -inf) */
    float *d_uv; /* [V] the survivors of all slices, contiguous */
    int *d_ui;
    int hist_cap;
    unsigned *d_stamp; /* [V] marks tokens already penalised (the call's stamp) */
    unsigned stamp;
};

/* Order-preserving key of a float: a larger float has a larger key. */
__device__ __forceinline__ unsigned md_fkey(float f) {
    const unsigned b = __float_as_uint(f);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float md_key_float(unsigned k) {
    return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

typedef struct md_sample_smem {
    unsigned cnt[256];
    unsigned long long mass[256];
    double wd[SW];
    float wf[SW];
    int wi[SW];
    unsigned wu[SW];
    unsigned key;  /* radix prefix so far */
    unsigned need; /* rank still to find (top-k) */
    unsigned long long above; /* mass above the prefix (top-p) */
    int result;
} md_sample_smem;

__device__ double md_block_sum_d(double v, md_sample_smem &sm) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) sm.wd[threadIdx.x / 32] = v;
    __syncthreads();
    double s = 0;
    for (int w = 0; w < SW; w++) s += sm.wd[w];
    __syncthreads();
    return s;
}

__device__ unsigned md_block_sum_u(unsigned v, md_sample_smem &sm) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) sm.wu[threadIdx.x / 32] = v;
    __syncthreads();
    unsigned s = 0;
    for (int w = 0; w < SW; w++) s += sm.wu[w];
    __syncthreads();
    return s;
}

/* Exclusive prefix (over threads, in thread order) of a per-thread count. */
__device__ unsigned md_block_excl_u(unsigned v, md_sample_smem &sm, unsigned *total) {
    const int lane = threadIdx.x & 31, w = threadIdx.x / 32;
    unsigned x = v;
    for (int o = 1; o < 32; o <<= 1) {
        const unsigned y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
    }
    if (lane == 31) sm.wu[w] = x;
    __syncthreads();
    unsigned before = 0, all = 0;
    for (int i = 0; i < SW; i++) {
        if (i < w) before += sm.wu[i];
        all += sm.wu[i];
    }
    __syncthreads();
    *total = all;
    return before + x - v;
}

/* Exclusive prefix of a per-thread double, in thread order (fixed tree). */
__device__ double md_block_excl_d(double v, md_sample_smem &sm) {
    const int lane = threadIdx.x & 31, w = threadIdx.x / 32;
    double x = v;
    for (int o = 1; o < 32; o <<= 1) {
        const double y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
    }
    if (lane == 31) sm.wd[w] = x;
    __syncthreads();
    double before = 0;
    for (int i = 0; i < w; i++) before += sm.wd[i];
    __syncthreads();
    return before + x - v;
}

/* The best (value, lowest id) over the block; ties and NaN as sample.c's argmax. */
__device__ int md_block_argmax(const float *l, int b, int e, md_sample_smem &sm) {
    float bv = -INFINITY;
    int bi = INT_MAX; /* INT_MAX: no non-NaN value yet */
    for (int i = b; i < e; i++) {
        const float x = l[i];
        if (x == x && (bi == INT_MAX || x > bv)) {
            bv = x;
            bi = i;
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (ov > bv || (ov == bv && oi < bi)) {
            bv = ov;
            bi = oi;
        }
    }
    if ((threadIdx.x & 31) == 0) {
        sm.wf[threadIdx.x / 32] = bv;
        sm.wi[threadIdx.x / 32] = bi;
    }
    __syncthreads();
    float v = -INFINITY;
    int idx = INT_MAX;
    for (int w = 0; w < SW; w++)
        if (sm.wf[w] > v || (sm.wf[w] == v && sm.wi[w] < idx)) {
            v = sm.wf[w];
            idx = sm.wi[w];
        }
    __syncthreads();
    /* sample.c: best starts at 0 and moves only on '>': a NaN at 0 wins, and so
     * does 0 when nothing is larger than it */
    if (l[0] != l[0] || idx == INT_MAX) return 0;
    return idx;
}

/* Radix step over keys of the candidates (l > -inf) among l[0..n) that share
 * the prefix's top `bits` bits: counts (and, with E, fixed-point
 * probabilities E[i] / sum) per next byte. Threads stride through l (the
 * loads coalesce) and the lanes of a warp that fall in the same bin add once
 * (logits crowd into a few bins: one shared atomic per element serialised). */
#define RADIX_UNROLL 4 /* float4 loads a thread keeps in flight in a radix pass (one CTA must hide L2 latency alone) */

__device__ __forceinline__ void md_radix_add(const double *E, int i, float x, unsigned prefix, int bits, double inv_sum,
                                             md_sample_smem &sm) {
    const int shift = 24 - bits, lane = threadIdx.x & 31;
    unsigned bin = 256; /* none */
    if (x > -INFINITY) {
        const unsigned k = md_fkey(x);
        if (bits == 0 || (k >> (32 - bits)) == (prefix >> (32 - bits))) bin = (k >> shift) & 255u;
    }
    const unsigned group = __match_any_sync(0xffffffffu, bin);
    const bool leader = lane == __ffs(group) - 1;
    if (E) {
        const unsigned long long m = bin < 256 ? (unsigned long long)(E[i] * inv_sum * FP_ONE) : 0ull;
        unsigned long long tot = 0;
        for (int j = 0; j < 32; j++) {
            const unsigned long long v = __shfl_sync(0xffffffffu, m, j);
            if (group >> j & 1) tot += v;
        }
        if (leader && bin < 256) atomicAdd(&sm.mass[bin], tot);
    }
    if (leader && bin < 256) atomicAdd(&sm.cnt[bin], (unsigned)__popc(group));
}

__device__ void md_radix_hist(const float *l, const double *E, int n, unsigned prefix, int bits, double inv_sum, md_sample_smem &sm) {
    for (int i = threadIdx.x; i < 256; i += SB) {
        sm.cnt[i] = 0;
        sm.mass[i] = 0;
    }
    __syncthreads();
    /* l is 16-byte aligned (the logits, or the shared candidates) */
    const float4 *l4 = reinterpret_cast<const float4 *>(l);
    const int n4 = n / 4;
    for (int q0 = 0; q0 < n4; q0 += SB * RADIX_UNROLL) { /* the same trip count in every thread */
        float4 v[RADIX_UNROLL];
#pragma unroll
        for (int u = 0; u < RADIX_UNROLL; u++) {
            const int q = q0 + u * SB + threadIdx.x;
            v[u] = q < n4 ? l4[q] : make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
        }
#pragma unroll
        for (int u = 0; u < RADIX_UNROLL; u++) {
            const int i = 4 * (q0 + u * SB + threadIdx.x);
            md_radix_add(E, i, v[u].x, prefix, bits, inv_sum, sm);
            md_radix_add(E, i + 1, v[u].y, prefix, bits, inv_sum, sm);
            md_radix_add(E, i + 2, v[u].z, prefix, bits, inv_sum, sm);
            md_radix_add(E, i + 3, v[u].w, prefix, bits, inv_sum, sm);
        }
    }
    const int i = 4 * n4 + threadIdx.x; /* the tail (< 4 items), every thread taking part in the warp votes */
    if (threadIdx.x < 32) md_radix_add(E, i, i < n ? l[i] : -INFINITY, prefix, bits, inv_sum, sm);
    __syncthreads();
}

/* This thread's contiguous part [*b, *e) of n items. */
__device__ __forceinline__ void md_my_range(int n, int *b, int *e) {
    const int per = (n + SB - 1) / SB;
    *b = threadIdx.x * per < n ? threadIdx.x * per : n;
    *e = *b + per < n ? *b + per : n;
}

#define MD_SAMPLE_COMPACT 2048 /* candidates left by top-k that move to shared memory */
#define PRE_MAX_SLICES 256     /* vocabularies up to 512K take the prefilter */

/* Bins in descending order, 8 per lane of warp 0: lane L holds bins
 * 255 - 8L .. 248 - 8L. The radix steps' scans over the 256 bins ran on
 * thread 0 alone while the CTA waited at the barrier; warp 0 scans them
 * with shuffles instead. */

/* Top-k step: the first bin (descending) where the running count reaches
 * sm.need; sm.need becomes the rank left inside it (sample.c's order). */
__device__ void md_pick_count_bin(unsigned prefix, int bits, md_sample_smem &sm) {
    const int lane = threadIdx.x & 31;
    unsigned c[8], mine = 0;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        c[j] = sm.cnt[255 - 8 * lane - j];
        mine += c[j];
    }
    unsigned incl = mine;
    for (int o = 1; o < 32; o <<= 1) {
        const unsigned y = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += y;
    }
    const unsigned need = sm.need;
    unsigned cum = incl - mine;
    int found = -1;
    unsigned left = 0;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        if (found < 0 && cum + c[j] >= need) {
            found = 255 - 8 * lane - j;
            left = need - cum;
        }
        cum += c[j];
    }
    const unsigned any = __ballot_sync(0xffffffffu, found >= 0);
    const unsigned total = __shfl_sync(0xffffffffu, incl, 31);
    __syncwarp(); /* every lane has read sm.need */
    if (any) {
        if (lane == __ffs(any) - 1) { /* the highest bins are in the lowest lanes */
            sm.need = left;
            sm.key = prefix | ((unsigned)found << (24 - bits));
        }
    } else if (lane == 0) { /* not reached when k < the count: bin 0 with what is left, as the serial scan */
        sm.need = need - (total - sm.cnt[0]);
        sm.key = prefix;
    }
}

/* Top-p step: the lowest non-empty bin whose mass before it (sm.above plus
 * the bins above) is still < T; sm.above becomes that mass, sm.need its count. */
__device__ void md_pick_mass_bin(unsigned prefix, int bits, unsigned long long T, md_sample_smem &sm) {
    const int lane = threadIdx.x & 31;
    unsigned long long m[8], mine = 0;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        m[j] = sm.mass[255 - 8 * lane - j];
        mine += m[j];
    }
    unsigned long long incl = mine;
    for (int o = 1; o < 32; o <<= 1) {
        const unsigned long long y = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += y;
    }
    unsigned long long before = sm.above + incl - mine;
    int pick = -1;
    unsigned long long at = 0;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        const int bin = 255 - 8 * lane - j;
        if (sm.cnt[bin] && before < T) {
            pick = bin;
            at = before;
        }
        before += m[j];
    }
    const unsigned has = __ballot_sync(0xffffffffu, pick >= 0);
    __syncwarp(); /* every lane has read sm.above */
    if (!has) {
        if (lane == 0) {
            sm.key = prefix;
            sm.need = 0;
        }
        return;
    }
    const int last = 31 - __clz(has); /* the lowest bins are in the highest lanes */
    if (lane == last) {
        sm.above = at;
        sm.key = prefix | ((unsigned)pick << (24 - bits));
        sm.need = sm.cnt[pick];
    }
}

/* The k-th largest key among the candidates of l[0..n) (k < their count),
 * by radix select: 4 passes of 8 bits, from the top byte. */
__device__ float md_radix_kth(const float *l, int n, int k, md_sample_smem &sm) {
    if (threadIdx.x == 0) {
        sm.key = 0;
        sm.need = (unsigned)k;
    }
    __syncthreads();
    for (int bits = 0; bits < 32; bits += 8) {
        const unsigned prefix = sm.key;
        md_radix_hist(l, NULL, n, prefix, bits, 0.0, sm);
        if (threadIdx.x < 32) md_pick_count_bin(prefix, bits, sm);
        __syncthreads();
    }
    return md_key_float(sm.key);
}

/* Penalties, once per distinct token of the window, for the tokens in
 * [t0, t1) (the whole vocabulary, or a prefilter slice). */
__device__ void md_apply_penalties(float *l, const int32_t *hist, unsigned *stamp, const md_sample_args &a, int t0, int t1) {
    if (a.repeat_penalty == 1.0f && a.presence_penalty == 0.0f) return;
    for (int i = threadIdx.x; i < a.n_hist; i += SB) {
        const int t = hist[i];
        if (t < t0 || t >= t1 || atomicExch(&stamp[t], a.stamp) == a.stamp) continue;
        float x = l[t];
        if (a.repeat_penalty != 1.0f) x = x < 0.0f ? x * a.repeat_penalty : x / a.repeat_penalty;
        l[t] = x - a.presence_penalty;
    }
    __threadfence_block();
    __syncthreads();
}

/* One CTA per slice (see PRE_SLICE): penalties and temperature on the
 * slice (written back: the sampling CTA may still need the whole array),
 * then the values >= the slice's own k-th largest, in id order, to
 * pv/pi[slice], and (survivors, candidates) to pc[slice]. */
__global__ void __launch_bounds__(SB) md_sample_prefilter(float *logits, const int32_t *hist, unsigned *stamp, md_sample_args a, float *pv,
                                                          int *pi, int *pc) {
    __shared__ md_sample_smem sm;
    __shared__ __align__(16) float v[PRE_SLICE];
    const int s0 = blockIdx.x * PRE_SLICE, ns = a.vocab - s0 < PRE_SLICE ? a.vocab - s0 : PRE_SLICE;
    md_apply_penalties(logits, hist, stamp, a, s0, s0 + ns);
    unsigned n_mine = 0;
    for (int i = threadIdx.x; i < PRE_SLICE; i += SB) {
        float x = -INFINITY;
        if (i < ns) {
            x = logits[s0 + i];
            if (x > -INFINITY) {
                x = x / a.temperature;
                n_mine++;
            } else {
                x = -INFINITY; /* NaN too */
            }
            logits[s0 + i] = x;
        }
        v[i] = x;
    }
    const unsigned n_c = md_block_sum_u(n_mine, sm); /* its barriers also publish v */
    const float th = (unsigned)a.top_k < n_c ? md_radix_kth(v, PRE_SLICE, a.top_k, sm) : -INFINITY;
    int b, e;
    md_my_range(PRE_SLICE, &b, &e);
    unsigned kept_mine = 0;
    for (int i = b; i < e; i++) kept_mine += v[i] > -INFINITY && v[i] >= th;
    unsigned total;
    unsigned at = md_block_excl_u(kept_mine, sm, &total);
    for (int i = b; i < e; i++)
        if (v[i] > -INFINITY && v[i] >= th) {
            pv[(size_t)blockIdx.x * PRE_SLICE + at] = v[i];
            pi[(size_t)blockIdx.x * PRE_SLICE + at] = s0 + i;
            at++;
        }
    if (threadIdx.x == 0) {
        pc[2 * blockIdx.x] = (int)total;
        pc[2 * blockIdx.x + 1] = (int)n_c;
    }
}

/* The candidates (> -inf) >= th among v[b, e) of every thread, in thread
 * order, to cl / ci (ids from id, or the index when id is NULL) when they
 * fit in MD_SAMPLE_COMPACT; returns their count either way (every thread). */
__device__ unsigned md_compact(const float *v, const int *id, int b, int e, float th, float *cl, int *ci, md_sample_smem &sm) {
    unsigned kept_mine = 0;
    for (int i = b; i < e; i++) kept_mine += v[i] > -INFINITY && v[i] >= th;
    unsigned n_kept;
    unsigned at = md_block_excl_u(kept_mine, sm, &n_kept);
    if (n_kept <= MD_SAMPLE_COMPACT) {
        for (int i = b; i < e; i++)
            if (v[i] > -INFINITY && v[i] >= th) {
                cl[at] = v[i];
                ci[at] = id ? id[i] : i;
                at++;
            }
        __syncthreads();
    }
    return n_kept;
}

__global__ void __launch_bounds__(SB) md_sample_kernel(float *logits, double *E, const int32_t *hist, unsigned *stamp, md_sample_args a,
                                                       const float *pv, const int *pi, const int *pc, float *uv, int *ui, int32_t *out) {
    __shared__ md_sample_smem sm;
    __shared__ __align__(16) float cl[MD_SAMPLE_COMPACT];
    __shared__ int ci[MD_SAMPLE_COMPACT];
    __shared__ double s_e[MD_SAMPLE_COMPACT]; /* E of compacted candidates */
    __shared__ int s_off[PRE_MAX_SLICES + 1];
    __shared__ unsigned s_n;
    const int V = a.vocab;
    int b, e;
    md_my_range(V, &b, &e);
    float *l = logits;
    const int *ids = NULL;
    int n_items = V;
    bool compacted = false;
    float th = -INFINITY;
    unsigned n;
    if (a.pre_slices > 0) {
        /* 1-3 ran in md_sample_prefilter: gather the slices' survivors, in id order */
        for (int c = threadIdx.x; c < a.pre_slices; c += SB) { /* all loads in flight at once */
            s_off[c + 1] = pc[2 * c];
            ci[c] = pc[2 * c + 1]; /* ci is free until the compaction */
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int tot = 0;
            unsigned cand = 0;
            for (int c = 0; c < a.pre_slices; c++) {
                const int m = s_off[c + 1];
                s_off[c] = tot;
                tot += m;
                cand += (unsigned)ci[c];
            }
            s_off[a.pre_slices] = tot;
            s_n = cand;
        }
        __syncthreads();
        n = s_n;
        if (n == 0) { /* sample.c: the argmax of the penalised logits (all -inf here: id 0) */
            if (threadIdx.x == 0) *out = 0;
            return;
        }
        const int total = s_off[a.pre_slices];
        if (total <= PRE_UNION_MAX) {
            /* survivor t of the union: slice c = the last with s_off[c] <= t (binary search); four loads in flight per thread */
            for (int t0 = threadIdx.x; t0 < total; t0 += 4 * SB) {
                float vv[4];
                int vi[4];
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    const int t = t0 + u * SB;
                    if (t >= total) break;
                    int lo = 0, hi = a.pre_slices; /* s_off[lo] <= t < s_off[hi] */
                    while (hi - lo > 1) {
                        const int mid = (lo + hi) >> 1;
                        if (s_off[mid] <= t) lo = mid;
                        else hi = mid;
                    }
                    vv[u] = pv[(size_t)lo * PRE_SLICE + t - s_off[lo]];
                    vi[u] = pi[(size_t)lo * PRE_SLICE + t - s_off[lo]];
                }
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    const int t = t0 + u * SB;
                    if (t >= total) break;
                    uv[t] = vv[u];
                    ui[t] = vi[u];
                }
            }
            __threadfence_block();
            __syncthreads();
            if ((unsigned)a.top_k < n) th = md_radix_kth(uv, total, a.top_k, sm);
            int ub, ue;
            md_my_range(total, &ub, &ue);
            const unsigned n_kept = md_compact(uv, ui, ub, ue, th, cl, ci, sm);
            if (n_kept <= MD_SAMPLE_COMPACT) { /* the usual case: the top-k (and its ties) straight from the survivors */
                l = cl;
                ids = ci;
                E = s_e;
                n_items = (int)n_kept;
                md_my_range(n_items, &b, &e);
                compacted = true;
            }
        } else if ((unsigned)a.top_k < n) {
            th = md_radix_kth(l, V, a.top_k, sm);
        }
    } else {
        /* 1. penalties, once per distinct token of the window */
        md_apply_penalties(l, hist, stamp, a, 0, V);
        /* 2. greedy */
        if (a.temperature <= 0.0f) {
            const int r = md_block_argmax(l, b, e, sm);
            if (threadIdx.x == 0) *out = r;
            return;
        }
        /* 3. temperature; non-candidates (-inf, NaN) become -inf */
        unsigned n_mine = 0;
        {
            float4 *l4 = reinterpret_cast<float4 *>(l);
            for (int q0 = 0; q0 < V / 4; q0 += SB * RADIX_UNROLL) {
                float4 v[RADIX_UNROLL];
#pragma unroll
                for (int u = 0; u < RADIX_UNROLL; u++)
                    if (q0 + u * SB + (int)threadIdx.x < V / 4) v[u] = l4[q0 + u * SB + threadIdx.x];
#pragma unroll
                for (int u = 0; u < RADIX_UNROLL; u++) {
                    const int q = q0 + u * SB + threadIdx.x;
                    if (q >= V / 4) continue;
                    float *x = &v[u].x;
#pragma unroll
                    for (int c4 = 0; c4 < 4; c4++) {
                        if (x[c4] > -INFINITY) {
                            x[c4] = x[c4] / a.temperature;
                            n_mine++;
                        } else {
                            x[c4] = -INFINITY;
                        }
                    }
                    l4[q] = v[u];
                }
            }
            for (int i = 4 * (V / 4) + threadIdx.x; i < V; i += SB) {
                if (l[i] > -INFINITY) {
                    l[i] = l[i] / a.temperature;
                    n_mine++;
                } else {
                    l[i] = -INFINITY;
                }
            }
        }
        n = md_block_sum_u(n_mine, sm);
        if (n == 0) { /* sample.c: the argmax of the penalised logits (all -inf here: id 0) */
            if (threadIdx.x == 0) *out = 0;
            return;
        }
        /* 4. top-k: the k-th largest logit by radix select; below it is removed */
        if (a.top_k > 0 && (unsigned)a.top_k < n) th = md_radix_kth(l, V, a.top_k, sm);
    }
    /* the candidates left (l >= th), in id order: to shared memory when few
     * (top-k's usual case), else in place (below th set to -inf) */
    if (!compacted) {
        const unsigned n_kept = md_compact(l, NULL, b, e, th, cl, ci, sm);
        if (n_kept <= MD_SAMPLE_COMPACT) {
            l = cl;
            ids = ci;
            E = s_e;
            n_items = (int)n_kept;
            md_my_range(n_items, &b, &e);
        } else if (th > -INFINITY) {
            for (int i = b; i < e; i++)
                if (l[i] < th) l[i] = -INFINITY;
            __syncthreads();
        }
    }
    /* 5. softmax over the candidates: max, E = exp(l - max) in double (kept
     * for the steps below: one exp per candidate), and their sum */
    float mx = -INFINITY;
    for (int i = b; i < e; i++) mx = fmaxf(mx, l[i]);
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if ((threadIdx.x & 31) == 0) sm.wf[threadIdx.x / 32] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int w = 0; w < SW; w++) mx = fmaxf(mx, sm.wf[w]);
    __syncthreads();
    double s_mine = 0;
    for (int i = b; i < e; i++) {
        const double x = l[i] > -INFINITY ? exp((double)l[i] - mx) : 0.0;
        E[i] = x;
        s_mine += x;
    }
    const double sum = md_block_sum_d(s_mine, sm);
    const double inv_sum = 1.0 / sum;
    /* 6. top-p: the lowest logit level v whose mass strictly above is < top_p
     * (every higher level stays whole); of its ties the lowest ids stay while
     * the mass before each is < top_p */
    if (a.top_p < 1.0f) {
        const unsigned long long T = (unsigned long long)((double)a.top_p * FP_ONE);
        if (threadIdx.x == 0) {
            sm.key = 0;
            sm.above = 0;
        }
        __syncthreads();
        unsigned level_count = 0;
        for (int bits = 0; bits < 32; bits += 8) {
            const unsigned prefix = sm.key;
            md_radix_hist(l, E, n_items, prefix, bits, inv_sum, sm);
            if (threadIdx.x < 32) md_pick_mass_bin(prefix, bits, T, sm);
            __syncthreads();
            level_count = sm.need;
        }
        const unsigned vkey = sm.key;
        const float v = md_key_float(vkey);
        const unsigned long long H = sm.above;
        const unsigned long long pv = (unsigned long long)(exp((double)v - mx) * inv_sum * FP_ONE);
        unsigned keep = level_count;
        if (pv > 0) {
            const unsigned long long k = (T - H + pv - 1) / pv; /* ties j < k have H + j pv < T */
            if (k < keep) keep = (unsigned)k;
        }
        unsigned ties_mine = 0;
        for (int i = b; i < e; i++) ties_mine += md_fkey(l[i]) == vkey && l[i] > -INFINITY;
        unsigned total;
        unsigned rank = md_block_excl_u(ties_mine, sm, &total);
        for (int i = b; i < e; i++) {
            if (!(l[i] > -INFINITY)) continue;
            const unsigned k = md_fkey(l[i]);
            if (k < vkey || (k == vkey && rank++ >= keep)) {
                l[i] = -INFINITY;
                E[i] = 0.0;
            }
        }
        __syncthreads();
    }
    /* 7. min-p, against the probabilities of step 5 (as sample.c) */
    if (a.min_p > 0.0f) {
        const double thp = (double)a.min_p * (exp(0.0) * inv_sum);
        for (int i = b; i < e; i++)
            if (l[i] > -INFINITY && E[i] * inv_sum < thp) {
                l[i] = -INFINITY;
                E[i] = 0.0;
            }
        __syncthreads();
    }
    /* 8. the draw: in id order, the first token whose running sum of
     * exp(l - max) exceeds u times the total (the maximum always survives, so
     * max is unchanged) */
    double w_mine = 0;
    int last_mine = -1;
    for (int i = b; i < e; i++)
        if (l[i] > -INFINITY) {
            w_mine += E[i];
            last_mine = i;
        }
    const double before = md_block_excl_d(w_mine, sm);
    const double total_w = md_block_sum_d(w_mine, sm);
    const double target = (double)a.u * total_w;
    if (threadIdx.x == 0) sm.result = INT_MAX;
    __syncthreads();
    if (before + w_mine > target && before <= target) { /* the crossing is in this thread's range */
        double run = before;
        int pick = last_mine;
        for (int i = b; i < e; i++)
            if (l[i] > -INFINITY) {
                run += E[i];
                if (run > target) {
                    pick = i;
                    break;
                }
            }
        atomicMin(&sm.result, pick);
    }
    /* no crossing found (rounding): the last candidate, as sample.c */
    int last = last_mine;
    for (int o = 16; o > 0; o >>= 1) last = max(last, __shfl_xor_sync(0xffffffffu, last, o));
    if ((threadIdx.x & 31) == 0) sm.wi[threadIdx.x / 32] = last;
    __syncthreads();
    if (threadIdx.x == 0) {
        int lastc = -1;
        for (int w = 0; w < SW; w++) lastc = max(lastc, sm.wi[w]);
        const int r = sm.result != INT_MAX ? sm.result : lastc;
        *out = ids ? ids[r] : r;
    }
}

void md_cuda_sampler_free(md_cuda_ctx *g) {
    struct md_gpu_sampler *s = g->sampler;
    if (!s) return;
    cudaFree(s->d_hist);
    cudaFree(s->d_out);
    cudaFree(s->d_stamp);
    cudaFree(s->d_e);
    cudaFree(s->d_pv);
    cudaFree(s->d_pi);
    cudaFree(s->d_pc);
    cudaFree(s->d_uv);
    cudaFree(s->d_ui);
    free(s);
    g->sampler = NULL;
}

md_status md_cuda_sample(md_cuda_ctx *g, float *d_logits, const md_sampler_params *sp, const int32_t *hist, int n_hist, float u,
                         int32_t *out) {
    const int V = g->dims.vocab;
    if (!g->sampler) {
        struct md_gpu_sampler *s = (struct md_gpu_sampler *)calloc(1, sizeof *s);
        if (!s) return md_fail(MD_ERR_OUT_OF_MEMORY, "GPU sampler: out of memory");
        g->sampler = s;
        MD_CUDA_CHECK(cudaMalloc(&s->d_out, sizeof(int32_t)));
        MD_CUDA_CHECK(cudaMalloc(&s->d_e, (size_t)V * sizeof(double)));
        const size_t slices = (size_t)(V + PRE_SLICE - 1) / PRE_SLICE;
        MD_CUDA_CHECK(cudaMalloc(&s->d_pv, slices * PRE_SLICE * sizeof(float)));
        MD_CUDA_CHECK(cudaMalloc(&s->d_pi, slices * PRE_SLICE * sizeof(int)));
        MD_CUDA_CHECK(cudaMalloc(&s->d_pc, slices * 2 * sizeof(int)));
        MD_CUDA_CHECK(cudaMalloc(&s->d_uv, (size_t)PRE_UNION_MAX * sizeof(float)));
        MD_CUDA_CHECK(cudaMalloc(&s->d_ui, (size_t)PRE_UNION_MAX * sizeof(int)));
        MD_CUDA_CHECK(cudaMalloc(&s->d_stamp, (size_t)V * sizeof(unsigned)));
        MD_CUDA_CHECK(cudaMemsetAsync(s->d_stamp, 0, (size_t)V * sizeof(unsigned), g->stream));
    }
    struct md_gpu_sampler *s = g->sampler;
    const bool penalties = n_hist > 0 && (sp->repeat_penalty != 1.0f || sp->presence_penalty != 0.0f);
    if (penalties) {
        if (n_hist > s->hist_cap) {
            cudaFree(s->d_hist);
            s->d_hist = NULL;
            int cap = s->hist_cap ? s->hist_cap : 256;
            while (cap < n_hist) cap *= 2;
            MD_CUDA_CHECK(cudaMalloc(&s->d_hist, (size_t)cap * sizeof(int32_t)));
            s->hist_cap = cap;
        }
        MD_CUDA_CHECK(cudaMemcpyAsync(s->d_hist, hist, (size_t)n_hist * sizeof(int32_t), cudaMemcpyHostToDevice, g->stream));
        if (++s->stamp == 0) { /* wrapped: old marks could collide */
            MD_CUDA_CHECK(cudaMemsetAsync(s->d_stamp, 0, (size_t)V * sizeof(unsigned), g->stream));
            s->stamp = 1;
        }
    }
    md_sample_args a;
    a.temperature = sp->temperature;
    a.top_p = sp->top_p;
    a.min_p = sp->min_p;
    a.repeat_penalty = penalties ? sp->repeat_penalty : 1.0f;
    a.presence_penalty = penalties ? sp->presence_penalty : 0.0f;
    a.u = u;
    a.top_k = sp->top_k;
    a.vocab = V;
    a.n_hist = penalties ? n_hist : 0;
    a.stamp = s->stamp;
    const int slices = (V + PRE_SLICE - 1) / PRE_SLICE;
    a.pre_slices = 0;
    if (a.temperature > 0.0f && a.top_k > 0 && a.top_k <= PRE_MAX_K && slices <= PRE_MAX_SLICES) {
        a.pre_slices = slices;
        md_sample_prefilter<<<slices, SB, 0, g->stream>>>(d_logits, s->d_hist, s->d_stamp, a, s->d_pv, s->d_pi, s->d_pc);
        MD_CUDA_CHECK(cudaGetLastError());
    }
    md_sample_kernel<<<1, SB, 0, g->stream>>>(d_logits, s->d_e, s->d_hist, s->d_stamp, a, s->d_pv, s->d_pi, s->d_pc, s->d_uv, s->d_ui,
                                              s->d_out);
    MD_CUDA_CHECK(cudaGetLastError());
    int32_t r;
    MD_CUDA_CHECK(cudaMemcpyAsync(&r, s->d_out, sizeof r, cudaMemcpyDeviceToHost, g->stream));
    MD_CUDA_CHECK(cudaStreamSynchronize(g->stream));
    *out = r;
    return MD_OK;
}
