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
 * attention scratch][red: 128 floats for reductions].
 */
#include <float.h>
#include <limits.h>

#include "cuda/common.cuh"
#include "cuda/decode/decode.cuh"
#include "cuda/decode/schedule.cuh"
#include "cuda/decode/sync.cuh"

#define NCW MD_DEC_CONSUMER_WARPS
#define NCT (NCW * 32)
#define RED_FLOATS 128
#define MAX_GROUP 8   /* query heads per KV head held in registers by the score loop */
#define MAX_DK_LANE 8 /* dk / 32 */

#define REC_COLS_PER_WARP (MD_DEC_REC_COLS / NCW)
static_assert(MD_DEC_REC_COLS % NCW == 0, "recurrence columns split evenly over the consumer warps");

/* ================================================================ producer */

template <bool HOPPER>
__device__ void md_producer(const md_decode_params &p, uint8_t *ring, uint64_t *full, uint64_t *empty, int lane) {
    if (HOPPER && lane != 0) return;
    const uint64_t pol = md_policy_evict_first();
    const int G = gridDim.x, cta = blockIdx.x, S = p.n_stages;
    unsigned k = 0;
    for (int step = 0; step < p.n_steps; step++) {
        for (int layer = 0; layer <= p.d.n_layers; layer++) {
            bool stop = false;
            for (int phase = 0; phase < md_phases_of(p, layer) && !stop; phase++) {
                stop = md_is_stop(p, layer, phase);
                md_stream s;
                if (!md_phase_stream(p, layer, phase, &s)) continue;
                const md_range rows = md_stream_rows(s, G, cta);
                const int rpc = md_chunk_rows(s, p.stage_bytes);
                for (int r = rows.begin; r < rows.end; r += rpc, k++) {
                    const int nr = rows.end - r < rpc ? rows.end - r : rpc;
                    const uint32_t bytes = (uint32_t)nr * (uint32_t)s.cols * 2u;
                    const unsigned slot = k % S, use = k / S;
                    if (use > 0) md_mbar_wait(&empty[slot], (use - 1) & 1, p, 2, layer, phase);
                    uint8_t *dst = ring + (size_t)slot * p.stage_bytes;
                    const __nv_bfloat16 *src = s.w + (size_t)r * s.cols;
                    if (HOPPER) md_ring_fill_bulk(dst, src, bytes, &full[slot], pol);
                    else md_ring_fill_lanes(dst, src, bytes, &full[slot], pol, lane);
                }
            }
            if (stop) break;
        }
    }
}

/* ================================================================ consumers */

typedef struct md_consumer {
    uint8_t *ring;
    uint64_t *full, *empty;
    float *vec, *red;
    int w, lane, tid;      /* consumer warp, lane, consumer thread index */
    unsigned k;            /* chunks consumed so far (mirrors the producer's k) */
} md_consumer;

/* Dot product of a bf16 row in shared memory with the fp32 vector in shared
 * memory, reduced over the warp (every lane gets the sum). */
__device__ __forceinline__ float md_row_dot(const uint8_t *row, const float *x, int cols, int lane) {
    const uint4 *r4 = reinterpret_cast<const uint4 *>(row);
    const float4 *x4 = reinterpret_cast<const float4 *>(x);
    float acc = 0.0f;
    for (int v = lane; v < cols / 8; v += 32) {
        float wf[8];
        md_bf16x8_to_f32(r4[v], wf);
        const float4 a = x4[2 * v], b = x4[2 * v + 1];
        acc += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w + wf[4] * b.x + wf[5] * b.y + wf[6] * b.z + wf[7] * b.w;
    }
    return md_warp_sum(acc);
}

/* Consumes this CTA's chunks of a streamed phase; calls epi(row, value) on
 * lane 0 for plain phases, epi(unit, gate, up) on lane 0 for gate/up pairs. */
template <typename Epi>
__device__ __forceinline__ void md_consume_rows(const md_decode_params &p, md_consumer &c, const md_stream &s, int layer,
                                                int phase, Epi epi) {
    const md_range rows = md_stream_rows(s, gridDim.x, blockIdx.x);
    const int rpc = md_chunk_rows(s, p.stage_bytes);
    const size_t row_bytes = (size_t)s.cols * 2;
    for (int r = rows.begin; r < rows.end; r += rpc, c.k++) {
        const int nr = rows.end - r < rpc ? rows.end - r : rpc;
        const unsigned slot = c.k % p.n_stages;
        md_mbar_wait(&c.full[slot], (c.k / p.n_stages) & 1, p, 3, layer, phase);
        const uint8_t *buf = c.ring + (size_t)slot * p.stage_bytes;
        if (s.unit == 1) {
            for (int i = c.w; i < nr; i += NCW) {
                const float v = md_row_dot(buf + i * row_bytes, c.vec, s.cols, c.lane);
                if (c.lane == 0) epi(r + i, v, 0.0f);
            }
        } else {
            for (int i = c.w; i < nr / 2; i += NCW) {
                const float g = md_row_dot(buf + (2 * i) * row_bytes, c.vec, s.cols, c.lane);
                const float u = md_row_dot(buf + (2 * i + 1) * row_bytes, c.vec, s.cols, c.lane);
                if (c.lane == 0) epi((r >> 1) + i, g, u);
            }
        }
        __syncwarp();
        if (c.lane == 0) md_mbar_arrive(&c.empty[slot]);
    }
}

/* Sum over all consumer threads (uses red[0..NCW]); every thread gets it. */
__device__ __forceinline__ float md_consumer_sum(md_consumer &c, float v) {
    v = md_warp_sum(v);
    if (c.lane == 0) c.red[c.w] = v;
    md_consumer_sync();
    float s = 0.0f;
    for (int i = 0; i < NCW; i++) s += c.red[i];
    md_consumer_sync();
    return s;
}

/* vec = zero-centred RMSNorm of x (global fp32, or bf16 embedding row). */
__device__ void md_norm_to_vec(md_consumer &c, const float *x, const __nv_bfloat16 *xb, const float *w, int n, float eps) {
    float ss = 0.0f;
    for (int i = c.tid; i < n; i += NCT) {
        const float v = xb ? __bfloat162float(xb[i]) : __ldcg(x + i);
        c.vec[i] = v;
        ss += v * v;
    }
    const float inv = rsqrtf(md_consumer_sum(c, ss) / (float)n + eps);
    for (int i = c.tid; i < n; i += NCT) c.vec[i] = c.vec[i] * inv * (1.0f + w[i]);
    md_consumer_sync();
}

/* One thread waits for a counter, then the consumers proceed together. */
__device__ __forceinline__ void md_wait_phase(const md_decode_params &p, md_consumer &c, int idx, unsigned long long target,
                                              int layer, int phase) {
    if (c.tid == 0) md_counter_wait(&p.counters[idx], target, p, layer, phase);
    md_consumer_sync();
}

__device__ __forceinline__ void md_publish(const md_decode_params &p, md_consumer &c, int idx, unsigned step, int layer,
                                           int phase) {
    md_consumer_sync();
    if (c.tid == 0) {
        if (p.delay_seed) { /* race hunting: make this CTA's results late at random */
            unsigned x = p.delay_seed ^ (blockIdx.x * 0x9e3779b9u) ^ (step * 0x85ebca6bu) ^ ((unsigned)(layer * 8 + phase) * 0xc2b2ae35u);
            x ^= x >> 15;
            x *= 0x2c1b3c6du;
            x ^= x >> 12;
            if ((x & 7) == 0) __nanosleep(x % 20000u);
        }
        md_counter_add(&p.counters[idx], 1);
    }
}

/* ---------------------------------------------------------------- DeltaNet */

/* conv + SiLU on a qkv channel (shifting the conv window), or the raw z/b/a value. */
__device__ __forceinline__ void md_in_epilogue(const md_decode_params &p, const md_cuda_layer *L, int row, float u) {
    const md_cuda_dims &d = p.d;
    if (row < d.cd) {
        const int K = d.K;
        float *win = p.conv_state + ((size_t)L->slot * d.cd + row) * (K - 1);
        const float *wc = L->conv_w + (size_t)row * K;
        float acc = wc[K - 1] * u;
        for (int j = 0; j < K - 1; j++) acc += wc[j] * win[j];
        for (int j = 0; j + 1 < K - 1; j++) win[j] = win[j + 1];
        if (K > 1) win[K - 2] = u;
        p.mix[row] = acc / (1.0f + expf(-acc));
    } else {
        p.mix[row] = u;
    }
}

/* The recurrence, split by value columns: item (head h, slice) owns columns
 * [slice*16, slice*16+16) of head h; consumer warp w owns columns w and w+8,
 * each lane dk/32 of their key rows. S is stored transposed ([h][j][i]) so a
 * column is contiguous. One step: S *= decay; m = S^T k; S += k (beta (v - m))^T;
 * o = S^T q (q, k L2-normalised, q scaled by 1/sqrt(dk)). */
__device__ void md_recurrence(const md_decode_params &p, md_consumer &c, const md_cuda_layer *L) {
    const md_cuda_dims &d = p.d;
    const int n_slices = d.dv / MD_DEC_REC_COLS;
    const int items = d.Hv * n_slices;
    const int per_lane = d.dk / 32;
    for (int item = blockIdx.x; item < items; item += gridDim.x) {
        const int h = item / n_slices, slice = item % n_slices;
        const int kh = h / (d.Hv / d.Hk);
        const float *q = p.mix + kh * d.dk, *k = p.mix + d.Kd + kh * d.dk;
        float *S0 = p.ssm_state + ((size_t)L->slot * d.Hv + h) * d.dv * d.dk;
        float qr[MAX_DK_LANE], kr[MAX_DK_LANE], sr[REC_COLS_PER_WARP][MAX_DK_LANE];
        float sq = 0.0f, sk = 0.0f;
        /* issue every load of the item before the first reduction */
#pragma unroll
        for (int m = 0; m < MAX_DK_LANE; m++)
            if (m < per_lane) {
                qr[m] = __ldcg(q + c.lane + 32 * m);
                kr[m] = __ldcg(k + c.lane + 32 * m);
#pragma unroll
                for (int cc = 0; cc < REC_COLS_PER_WARP; cc++) {
                    const int j = slice * MD_DEC_REC_COLS + c.w + NCW * cc;
                    sr[cc][m] = S0[(size_t)j * d.dk + c.lane + 32 * m];
                }
            }
        float v[REC_COLS_PER_WARP];
#pragma unroll
        for (int cc = 0; cc < REC_COLS_PER_WARP; cc++)
            v[cc] = __ldcg(p.mix + 2 * d.Kd + h * d.dv + slice * MD_DEC_REC_COLS + c.w + NCW * cc);
        const float b = __ldcg(p.mix + d.cd + d.Vd + h), a = __ldcg(p.mix + d.cd + d.Vd + d.Hv + h);
#pragma unroll
        for (int m = 0; m < MAX_DK_LANE; m++)
            if (m < per_lane) {
                sq += qr[m] * qr[m];
                sk += kr[m] * kr[m];
            }
        const float qs = rsqrtf(md_warp_sum(sq) + 1e-6f) * rsqrtf((float)d.dk);
        const float ks = rsqrtf(md_warp_sum(sk) + 1e-6f);
        const float beta = 1.0f / (1.0f + expf(-b));
        const float x = a + L->dt_bias[h];
        const float decay = expf(-expf(L->A_log[h]) * (x > 20.0f ? x : log1pf(expf(x))));
#pragma unroll
        for (int m = 0; m < MAX_DK_LANE; m++)
            if (m < per_lane) {
                kr[m] *= ks;
                qr[m] *= qs;
            }
#pragma unroll
        for (int cc = 0; cc < REC_COLS_PER_WARP; cc++) {
            const int j = slice * MD_DEC_REC_COLS + c.w + NCW * cc;
            float mm = 0.0f;
#pragma unroll
            for (int m = 0; m < MAX_DK_LANE; m++)
                if (m < per_lane) {
                    sr[cc][m] *= decay;
                    mm += sr[cc][m] * kr[m];
                }
            const float delta = (v[cc] - md_warp_sum(mm)) * beta;
            float o = 0.0f;
#pragma unroll
            for (int m = 0; m < MAX_DK_LANE; m++)
                if (m < per_lane) {
                    sr[cc][m] += kr[m] * delta;
                    S0[(size_t)j * d.dk + c.lane + 32 * m] = sr[cc][m];
                    o += sr[cc][m] * qr[m];
                }
            o = md_warp_sum(o);
            if (c.lane == 0) p.core[h * d.dv + j] = o;
        }
    }
}

/* vec = gated RMSNorm of the recurrence output per value head: o / rms(o) * w * silu(z). */
__device__ void md_gated_norm_to_vec(const md_decode_params &p, md_consumer &c, const md_cuda_layer *L) {
    const md_cuda_dims &d = p.d;
    for (int h = c.w; h < d.Hv; h += NCW) {
        float ss = 0.0f;
        for (int j = c.lane; j < d.dv; j += 32) {
            const float o = __ldcg(p.core + h * d.dv + j);
            c.vec[h * d.dv + j] = o;
            ss += o * o;
        }
        const float inv = rsqrtf(md_warp_sum(ss) / (float)d.dv + p.d.eps);
        for (int j = c.lane; j < d.dv; j += 32) {
            const float z = __ldcg(p.mix + d.cd + h * d.dv + j);
            c.vec[h * d.dv + j] = c.vec[h * d.dv + j] * inv * L->gnorm[j] * (z / (1.0f + expf(-z)));
        }
    }
    md_consumer_sync();
}

/* ---------------------------------------------------------------- attention */

/* Zero-centred RMSNorm + rotate-half RoPE of one head, from global raw
 * values into shared memory, by one warp; scaled by `scale`. */
__device__ void md_head_norm_rope(const md_decode_params &p, const float *raw, const float *w, float *out, int pos, float scale,
                                  int lane) {
    const int D = p.d.D, R = p.d.R;
    float ss = 0.0f;
    for (int i = lane; i < D; i += 32) {
        const float v = __ldcg(raw + i);
        out[i] = v;
        ss += v * v;
    }
    const float inv = rsqrtf(md_warp_sum(ss) / (float)D + p.d.eps);
    for (int i = lane; i < D; i += 32) out[i] = out[i] * inv * (1.0f + w[i]);
    __syncwarp();
    for (int i = lane; i < R / 2; i += 32) {
        float sn, cs;
        sincosf((float)pos * p.inv_freq[i], &sn, &cs);
        const float x1 = out[i], x2 = out[i + R / 2];
        out[i] = x1 * cs - x2 * sn;
        out[i + R / 2] = x2 * cs + x1 * sn;
    }
    __syncwarp();
    if (scale != 1.0f)
        for (int i = lane; i < D; i += 32) out[i] *= scale;
    __syncwarp();
}

/* Split-KV attention for one token. Item (kv head, chunk of positions) runs
 * every query head of the GQA group over its chunk and writes a partial
 * (unnormalised o, running max m, sum l); the last item of a kv head to
 * finish (atomic ticket) combines the partials in chunk order, applies the
 * output gate and writes core[head * D + d]. The item holding the current
 * position normalises, rotates and appends this token's key and value. */
__device__ void md_attention(const md_decode_params &p, md_consumer &c, const md_cuda_layer *L, int pos) {
    const md_cuda_dims &d = p.d;
    const int D = d.D, group = d.Hq / d.Hkv, G = gridDim.x;
    const int npos = pos + 1;
    int chunk = (npos * d.Hkv + G - 1) / G;
    chunk = chunk < MD_DEC_ATTN_MIN_CHUNK ? MD_DEC_ATTN_MIN_CHUNK : chunk > MD_DEC_ATTN_MAX_CHUNK ? MD_DEC_ATTN_MAX_CHUNK : chunk;
    const int n_chunks = (npos + chunk - 1) / chunk;
    const int items = d.Hkv * n_chunks;
    float *sq = c.vec;                    /* [group][D] rotated, scaled queries */
    float *sc = c.vec + group * D;        /* [group][chunk] scores, then probabilities */
    float *sml = sc + group * chunk;      /* [group] max, then [group] sum */
    int *s_last = reinterpret_cast<int *>(c.red + RED_FLOATS - 1);
    const size_t cache_off = (size_t)L->slot * d.n_ctx * d.kvd;
    const __nv_bfloat16 *kc = p.k_cache + cache_off;
    const __nv_bfloat16 *vc = p.v_cache + cache_off;
    const float scale = rsqrtf((float)D);
    for (int item = blockIdx.x; item < items; item += G) {
        const int kvh = item / n_chunks, ch = item % n_chunks;
        const int j0 = ch * chunk, j1 = j0 + chunk < npos ? j0 + chunk : npos;
        for (int hh = c.w; hh < group; hh += NCW)
            md_head_norm_rope(p, p.mix + (size_t)(kvh * group + hh) * 2 * D, L->q_norm, sq + hh * D, pos, scale, c.lane);
        if (pos >= j0 && pos < j1 && c.w == NCW - 1) { /* append this token's k, v */
            float *kt = sml + 2 * group;   /* [D] scratch after the stats */
            md_head_norm_rope(p, p.mix + 2 * d.qd + kvh * D, L->k_norm, kt, pos, 1.0f, c.lane);
            __nv_bfloat16 *kd = p.k_cache + cache_off + (size_t)pos * d.kvd + kvh * D;
            __nv_bfloat16 *vd = p.v_cache + cache_off + (size_t)pos * d.kvd + kvh * D;
            for (int i = c.lane; i < D; i += 32) {
                kd[i] = __float2bfloat16(kt[i]);
                vd[i] = __float2bfloat16(__ldcg(p.mix + 2 * d.qd + d.kvd + kvh * D + i));
            }
        }
        md_consumer_sync();
        /* scores: one warp per position, lanes across the head dim */
        for (int j = j0 + c.w; j < j1; j += NCW) {
            const __nv_bfloat16 *kr = kc + (size_t)j * d.kvd + kvh * D;
            float acc[MAX_GROUP];
#pragma unroll
            for (int hh = 0; hh < MAX_GROUP; hh++) acc[hh] = 0.0f;
            for (int v8 = c.lane; v8 < D / 8; v8 += 32) {
                float kf[8];
                md_bf16x8_to_f32(__ldcg(reinterpret_cast<const uint4 *>(kr) + v8), kf);
#pragma unroll
                for (int hh = 0; hh < MAX_GROUP; hh++)
                    if (hh < group) {
                        const float *qv = sq + hh * D + v8 * 8;
#pragma unroll
                        for (int e = 0; e < 8; e++) acc[hh] += kf[e] * qv[e];
                    }
            }
#pragma unroll
            for (int hh = 0; hh < MAX_GROUP; hh++)
                if (hh < group) {
                    const float s = md_warp_sum(acc[hh]);
                    if (c.lane == 0) sc[hh * chunk + (j - j0)] = s;
                }
        }
        md_consumer_sync();
        for (int hh = c.w; hh < group; hh += NCW) {
            float mx = -FLT_MAX;
            for (int j = c.lane; j < j1 - j0; j += 32) mx = fmaxf(mx, sc[hh * chunk + j]);
            mx = md_warp_max(mx);
            float l = 0.0f;
            for (int j = c.lane; j < j1 - j0; j += 32) {
                const float e = expf(sc[hh * chunk + j] - mx);
                sc[hh * chunk + j] = e;
                l += e;
            }
            l = md_warp_sum(l);
            if (c.lane == 0) {
                sml[hh] = mx;
                sml[group + hh] = l;
            }
        }
        md_consumer_sync();
        /* P V: thread (head, pair of dims) accumulates over the chunk */
        const int pairs = D / 2;
        for (int t = c.tid; t < group * pairs; t += NCT) {
            const int hh = t / pairs, dp = t % pairs;
            float o0 = 0.0f, o1 = 0.0f;
            const __nv_bfloat16 *vcol = vc + kvh * D + 2 * dp;
            for (int j = j0; j < j1; j++) {
                const unsigned raw = __ldcg(reinterpret_cast<const unsigned *>(vcol + (size_t)j * d.kvd));
                const float2 v2 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&raw));
                const float pj = sc[hh * chunk + (j - j0)];
                o0 += pj * v2.x;
                o1 += pj * v2.y;
            }
            float *part = p.attn_part + (((size_t)kvh * p.attn_max_chunks + ch) * group + hh) * (D + 2);
            part[2 * dp] = o0;
            part[2 * dp + 1] = o1;
            if (dp == 0) {
                part[D] = sml[hh];
                part[D + 1] = sml[group + hh];
            }
        }
        md_consumer_sync();
        if (c.tid == 0) {
            __threadfence();
            const unsigned t = atomicAdd(&p.tickets[kvh], 1u);
            *s_last = t == (unsigned)(n_chunks - 1);
            if (*s_last) __threadfence();
        }
        md_consumer_sync();
        if (*s_last) { /* combine in chunk order, gate, write the head outputs */
            for (int t = c.tid; t < group * pairs; t += NCT) {
                const int hh = t / pairs, dp = t % pairs;
                const float *part0 = p.attn_part + ((size_t)kvh * p.attn_max_chunks * group + hh) * (D + 2);
                const size_t stride = (size_t)group * (D + 2);
                float M = -FLT_MAX;
                for (int q = 0; q < n_chunks; q++) M = fmaxf(M, __ldcg(part0 + q * stride + D));
                float Lsum = 0.0f, o0 = 0.0f, o1 = 0.0f;
                for (int q = 0; q < n_chunks; q++) {
                    const float *pq = part0 + q * stride;
                    const float f = expf(__ldcg(pq + D) - M);
                    Lsum += __ldcg(pq + D + 1) * f;
                    o0 += __ldcg(pq + 2 * dp) * f;
                    o1 += __ldcg(pq + 2 * dp + 1) * f;
                }
                const int head = kvh * group + hh;
                const float *gate = p.mix + (size_t)head * 2 * D + D + 2 * dp;
                const float g0 = __ldcg(gate), g1 = __ldcg(gate + 1);
                p.core[head * D + 2 * dp] = o0 / Lsum / (1.0f + expf(-g0));
                p.core[head * D + 2 * dp + 1] = o1 / Lsum / (1.0f + expf(-g1));
            }
            if (c.tid == 0) atomicExch(&p.tickets[kvh], 0u);
        }
        md_consumer_sync();
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

/* The LM head's end: this CTA's best row goes to the candidates; the last CTA
 * (ticket) reduces them in CTA order and publishes the next token. */
__device__ void md_argmax_finish(const md_decode_params &p, md_consumer &c, float bv, int bi, unsigned step) {
    float *rv = c.red;
    int *ri = reinterpret_cast<int *>(c.red + NCW);
    if (c.lane == 0) {
        rv[c.w] = bv;
        ri[c.w] = bi;
    }
    md_consumer_sync();
    if (c.tid == 0) {
        float v = -FLT_MAX;
        int idx = INT_MAX;
        for (int i = 0; i < NCW; i++) md_better(v, idx, rv[i], ri[i]);
        p.cand_val[blockIdx.x] = v;
        p.cand_idx[blockIdx.x] = idx;
        __threadfence();
        unsigned *ticket = &p.tickets[p.d.Hkv];
        if (atomicAdd(ticket, 1u) == gridDim.x - 1) {
            __threadfence();
            float gv = -FLT_MAX;
            int gi = INT_MAX;
            for (int b = 0; b < (int)gridDim.x; b++) md_better(gv, gi, __ldcg(p.cand_val + b), __ldcg(p.cand_idx + b));
            if (gi < 0 || gi >= p.d.vocab) gi = 0; /* all-NaN logits: keep the next embedding lookup in range */
            p.out_tokens[step] = gi;
            *p.tok = gi;
            atomicExch(ticket, 0u);
            md_counter_add(&p.counters[p.d.n_layers * MD_PHASES_PER_LAYER], 1);
        }
    }
    md_consumer_sync();
}

/* ---------------------------------------------------------------- one step */

__device__ void md_consumer_step(const md_decode_params &p, md_consumer &c, unsigned step) {
    const md_cuda_dims &d = p.d;
    const unsigned long long epoch = p.epoch0 + step + 1, target = epoch * gridDim.x;
    const int pos = p.pos0 + (int)step;
    if (step > 0) md_wait_phase(p, c, d.n_layers * MD_PHASES_PER_LAYER, epoch - 1, d.n_layers, 0);
    const int tok = __ldcg(p.tok);
    const __nv_bfloat16 *erow = p.embed + (size_t)tok * d.H;
    {   /* this CTA's rows of the residual stream start as the embedding */
        const md_range own = md_split(d.H, gridDim.x, blockIdx.x);
        for (int i = own.begin + c.tid; i < own.end; i += NCT) p.h[i] = __bfloat162float(erow[i]);
    }
    for (int layer = 0; layer < d.n_layers; layer++) {
        const md_cuda_layer *L = &p.layers[layer];
        const int base = layer * MD_PHASES_PER_LAYER;
        md_stream s;
        /* mixer in-projection */
        if (layer > 0) md_wait_phase(p, c, base - MD_PHASES_PER_LAYER + MD_PH_DOWN, target, layer, MD_PH_MIX_IN);
        md_norm_to_vec(c, p.h, layer == 0 ? erow : NULL, L->attn_norm, d.H, d.eps);
        md_phase_stream(p, layer, MD_PH_MIX_IN, &s);
        if (L->full) md_consume_rows(p, c, s, layer, MD_PH_MIX_IN, [&](int r, float v, float) { p.mix[r] = v; });
        else md_consume_rows(p, c, s, layer, MD_PH_MIX_IN, [&](int r, float v, float) { md_in_epilogue(p, L, r, v); });
        md_publish(p, c, base + MD_PH_MIX_IN, step, layer, MD_PH_MIX_IN);
        if (md_is_stop(p, layer, MD_PH_MIX_IN)) return;
        /* recurrence / attention */
        md_wait_phase(p, c, base + MD_PH_MIX_IN, target, layer, MD_PH_MIX);
        if (L->full) md_attention(p, c, L, pos);
        else md_recurrence(p, c, L);
        md_publish(p, c, base + MD_PH_MIX, step, layer, MD_PH_MIX);
        if (md_is_stop(p, layer, MD_PH_MIX)) return;
        /* mixer out-projection, residual add */
        md_wait_phase(p, c, base + MD_PH_MIX, target, layer, MD_PH_MIX_OUT);
        if (L->full) {
            for (int i = c.tid; i < d.qd; i += NCT) c.vec[i] = __ldcg(p.core + i);
            md_consumer_sync();
        } else {
            md_gated_norm_to_vec(p, c, L);
        }
        md_phase_stream(p, layer, MD_PH_MIX_OUT, &s);
        md_consume_rows(p, c, s, layer, MD_PH_MIX_OUT, [&](int r, float v, float) { p.h[r] = __ldcg(p.h + r) + v; });
        md_publish(p, c, base + MD_PH_MIX_OUT, step, layer, MD_PH_MIX_OUT);
        if (md_is_stop(p, layer, MD_PH_MIX_OUT)) return;
        /* MLP gate/up */
        md_wait_phase(p, c, base + MD_PH_MIX_OUT, target, layer, MD_PH_GU);
        md_norm_to_vec(c, p.h, NULL, L->mlp_norm, d.H, d.eps);
        md_phase_stream(p, layer, MD_PH_GU, &s);
        md_consume_rows(p, c, s, layer, MD_PH_GU, [&](int i, float g, float u) { p.act[i] = g / (1.0f + expf(-g)) * u; });
        md_publish(p, c, base + MD_PH_GU, step, layer, MD_PH_GU);
        if (md_is_stop(p, layer, MD_PH_GU)) return;
        /* MLP down, residual add */
        md_wait_phase(p, c, base + MD_PH_GU, target, layer, MD_PH_DOWN);
        for (int i = c.tid; i < d.I; i += NCT) c.vec[i] = __ldcg(p.act + i);
        md_consumer_sync();
        md_phase_stream(p, layer, MD_PH_DOWN, &s);
        md_consume_rows(p, c, s, layer, MD_PH_DOWN, [&](int r, float v, float) { p.h[r] = __ldcg(p.h + r) + v; });
        md_publish(p, c, base + MD_PH_DOWN, step, layer, MD_PH_DOWN);
        if (md_is_stop(p, layer, MD_PH_DOWN)) return;
    }
    /* final norm, LM head, argmax */
    md_wait_phase(p, c, (d.n_layers - 1) * MD_PHASES_PER_LAYER + MD_PH_DOWN, target, d.n_layers, 0);
    md_norm_to_vec(c, p.h, NULL, p.final_norm, d.H, d.eps);
    md_stream s;
    md_phase_stream(p, d.n_layers, 0, &s);
    float bv = -FLT_MAX;
    int bi = INT_MAX;
    float *logits = p.logits;
    md_consume_rows(p, c, s, d.n_layers, 0, [&](int r, float v, float) {
        if (logits) logits[r] = v;
        md_better(bv, bi, v, r);
    });
    md_argmax_finish(p, c, bv, bi, step);
}

/* ================================================================ kernel */

template <bool HOPPER>
__global__ void __launch_bounds__(MD_DEC_THREADS, 1) md_decode_kernel(const __grid_constant__ md_decode_params p) {
    extern __shared__ __align__(128) uint8_t smem[];
    uint8_t *ring = smem;
    uint64_t *full = reinterpret_cast<uint64_t *>(smem + (size_t)p.n_stages * p.stage_bytes);
    uint64_t *empty = full + p.n_stages;
    float *vec = reinterpret_cast<float *>(empty + p.n_stages);
    float *red = vec + p.vec_floats;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (threadIdx.x == 0) {
        for (int s = 0; s < p.n_stages; s++) {
            md_mbar_init(&full[s], HOPPER ? 1 : 32);
            md_mbar_init(&empty[s], NCW);
        }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
    }
    __syncthreads();
    if (warp == 0) {
        md_producer<HOPPER>(p, ring, full, empty, lane);
        return;
    }
    md_consumer c;
    c.ring = ring;
    c.full = full;
    c.empty = empty;
    c.vec = vec;
    c.red = red;
    c.w = warp - 1;
    c.lane = lane;
    c.tid = threadIdx.x - 32;
    c.k = 0;
    for (int step = 0; step < p.n_steps; step++) md_consumer_step(p, c, (unsigned)step);
}

/* ================================================================ host */

md_status md_decode_prepare(bool hopper, size_t smem) {
    cudaError_t e = hopper ? cudaFuncSetAttribute(md_decode_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem)
                           : cudaFuncSetAttribute(md_decode_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return md_cuda_fail(e, "cudaFuncSetAttribute(decode kernel shared memory)", __FILE__, __LINE__);
    int blocks = 0;
    e = hopper ? cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, md_decode_kernel<true>, MD_DEC_THREADS, smem)
               : cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, md_decode_kernel<false>, MD_DEC_THREADS, smem);
    if (e != cudaSuccess) return md_cuda_fail(e, "occupancy query (decode kernel)", __FILE__, __LINE__);
    if (blocks < 1)
        return md_fail(MD_ERR_DEVICE, "decode kernel does not fit on an SM (%zu bytes of shared memory, %d threads)", smem,
                       MD_DEC_THREADS);
    return MD_OK;
}

md_status md_decode_launch(md_cuda_ctx *g, const md_decode_params *p, int grid, size_t smem, bool hopper) {
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
    cudaError_t e = hopper ? cudaLaunchKernelEx(&cfg, md_decode_kernel<true>, *p) : cudaLaunchKernelEx(&cfg, md_decode_kernel<false>, *p);
    if (e != cudaSuccess) return md_fail(MD_ERR_DEVICE, "launch of the decode kernel (%d CTAs, %zu B shared) failed: %s", grid, smem,
                                         cudaGetErrorString(e));
    return MD_OK;
}
