/*
 * attention.cu — causal flash attention of the piece's queries over the KV
 * cache (earlier pieces and calls included), GQA, with the output gate:
 *   o_t = sum_{j <= p_t} softmax_j(q_t . k_j / sqrt(D)) v_j,   p_t = pos + t
 *   out_t = bf16(o_t * sigmoid(gate_t))
 * One CTA per (64-query tile, query head, split of the K/V range), heaviest
 * tiles first. 4 warps, warp w owns query rows 16w..16w+15; or, for short
 * prompts (split K/V ranges, few CTAs), 8 warps: warp w owns rows
 * 16(w%4)..+15 and output dims [(w/4) D/2, (w/4+1) D/2) (both halves compute
 * the row's scores: half the o registers, twice the warps hiding latency;
 * measured 48 vs 53 us at 512 tokens, but 759 vs 547 us at 4096). A query tile
 * whose K/V range spans more than tiles_per_split tiles is split over CTAs
 * (short prompts would otherwise leave most SMs idle behind the last tile):
 * each split writes its unnormalised o with its row max and sum, and
 * attn_combine_kernel merges them. K/V tiles of BN keys stream through
 * shared memory with cp.async (double-buffered when it fits); scores and the
 * running max/sum stay in registers (online softmax in base 2, fp32), P goes
 * from the score accumulators straight into A fragments for P V. Never an
 * S x S matrix. Layouts: q [m][qd] bf16, caches [n_ctx][kvd] bf16 (key/value
 * head kvh at kvh*D), gate in proj [m][ldp] fp32 at h*2D + D, out [m][qd]
 * fp16, partials [qtile][Hq][split][64][D + 2] fp32 (o, then m, l in base 2).
 */
#include <math.h>
#include <string.h>

#include "cuda/common.cuh"
#include "cuda/prefill/mma.cuh"
#include "cuda/prefill/prefill.cuh"

#define BM 64

template <int D, int BN>
struct attn_smem {
    static constexpr int LD = D + 8;
    static constexpr size_t q_bytes = (size_t)BM * LD * 2;
    static constexpr size_t kv_bytes = (size_t)BN * LD * 2; /* one K or V tile */
    static size_t bytes(int stages) { return q_bytes + 2 * (size_t)stages * kv_bytes; }
};

template <int D>
struct attn_cfg {
    static constexpr int BN = D > 128 ? 32 : 64;
};

template <int D, int BN, int NW>
__global__ void __launch_bounds__(NW * 32) attention_kernel(md_attn_args a, int stages) {
    constexpr int NT = NW * 32, DH = D * 4 / NW;
    typedef attn_smem<D, BN> L;
    constexpr int LD = L::LD;
    extern __shared__ __align__(16) uint8_t smem[];
    bf16 *sQ = reinterpret_cast<bf16 *>(smem);
    bf16 *sK = reinterpret_cast<bf16 *>(smem + L::q_bytes);
    bf16 *sV = reinterpret_cast<bf16 *>(smem + L::q_bytes + (size_t)stages * L::kv_bytes);
    const int tid = threadIdx.x, w = (tid >> 5) & 3, half = tid >> 7, c0 = half * DH, lane = tid & 31, g = lane >> 2, q = lane & 3;
    const int split = blockIdx.x, qt = gridDim.y - 1 - blockIdx.y, h = blockIdx.z;
    const int kvh = h / (a.Hq / a.Hkv);
    const int t0 = qt * BM, validq = min(BM, a.m - t0);
    const int n_kv = min(a.pos + t0 + BM, a.pos + a.m);
    const int n_all = (n_kv + BN - 1) / BN;
    const int n_split = (n_all + a.tiles_per_split - 1) / a.tiles_per_split;
    if (split >= n_split) return;
    const int j_begin = split * a.tiles_per_split, j_end = min(n_all, j_begin + a.tiles_per_split);
    const bf16 *kbase = a.k + kvh * D, *vbase = a.v + kvh * D;

    md_tile_load(sQ, LD, a.q + (size_t)t0 * a.qd + h * D, a.qd, BM, D, validq, tid, NT);
    auto load_kv = [&](int j, int st) {
        const int valid = min(BN, n_kv - j * BN);
        md_tile_load(sK + (size_t)st * BN * LD, LD, kbase + (size_t)j * BN * a.kvd, a.kvd, BN, D, valid, tid, NT);
        md_tile_load(sV + (size_t)st * BN * LD, LD, vbase + (size_t)j * BN * a.kvd, a.kvd, BN, D, valid, tid, NT);
    };
    load_kv(j_begin, 0);
    md_cp_async_commit();

    const float sc = rsqrtf((float)D) * 1.4426950408889634f; /* scale and log2(e) */
    const int qp0 = a.pos + t0 + 16 * w + g, qp1 = qp0 + 8;
    const int warp_last = a.pos + t0 + 16 * w + 15;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
    float o[DH / 8][4];
#pragma unroll
    for (int i = 0; i < DH / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;

    for (int j = j_begin; j < j_end; j++) {
        const bool dbl = stages == 2;
        const int st = dbl ? ((j - j_begin) & 1) : 0;
        if (dbl && j + 1 < j_end) {
            load_kv(j + 1, (j + 1 - j_begin) & 1);
            md_cp_async_commit();
            md_cp_async_wait<1>();
        } else {
            md_cp_async_wait<0>();
        }
        __syncthreads();
        if (j * BN <= warp_last) { /* else every key of the tile is in this warp's future */
            const bf16 *cK = sK + (size_t)st * BN * LD, *cV = sV + (size_t)st * BN * LD;
            float s[BN / 8][4];
#pragma unroll
            for (int i = 0; i < BN / 8; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                uint32_t af[4];
                md_ldsm_a(af, sQ, LD, 16 * w, kk * 16, lane);
#pragma unroll
                for (int np = 0; np < BN / 16; np++) {
                    uint32_t bfr[4];
                    md_ldsm_b_nk(bfr, cK, LD, np * 16, kk * 16, lane);
                    md_mma(s[2 * np], af, bfr[0], bfr[1]);
                    md_mma(s[2 * np + 1], af, bfr[2], bfr[3]);
                }
            }
            float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
            for (int nt = 0; nt < BN / 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int kp = j * BN + nt * 8 + 2 * q + (e & 1);
                    const int qp = e < 2 ? qp0 : qp1;
                    const float v = kp <= qp ? s[nt][e] * sc : -INFINITY;
                    s[nt][e] = v;
                    if (e < 2) mx0 = fmaxf(mx0, v);
                    else mx1 = fmaxf(mx1, v);
                }
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
            /* a row whose keys so far are all in its future keeps m = -inf: use 0 as
             * the reference there (its p are 0 either way), never inf - inf */
            const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
            const float r0 = mn0 == -INFINITY ? 0.0f : mn0, r1 = mn1 == -INFINITY ? 0.0f : mn1;
            const float al0 = exp2f(m0 - r0), al1 = exp2f(m1 - r1);
            m0 = mn0, m1 = mn1;
            float ls0 = 0.0f, ls1 = 0.0f;
#pragma unroll
            for (int nt = 0; nt < BN / 8; nt++) {
                s[nt][0] = exp2f(s[nt][0] - r0);
                s[nt][1] = exp2f(s[nt][1] - r0);
                s[nt][2] = exp2f(s[nt][2] - r1);
                s[nt][3] = exp2f(s[nt][3] - r1);
                ls0 += s[nt][0] + s[nt][1];
                ls1 += s[nt][2] + s[nt][3];
            }
            l0 = l0 * al0 + ls0;
            l1 = l1 * al1 + ls1;
#pragma unroll
            for (int nt = 0; nt < DH / 8; nt++) {
                o[nt][0] *= al0, o[nt][1] *= al0;
                o[nt][2] *= al1, o[nt][3] *= al1;
            }
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++) {
                uint32_t pa[4];
                pa[0] = md_pack_bf16(s[2 * kk][0], s[2 * kk][1]);
                pa[1] = md_pack_bf16(s[2 * kk][2], s[2 * kk][3]);
                pa[2] = md_pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
                pa[3] = md_pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
                for (int np = 0; np < DH / 16; np++) {
                    uint32_t bfr[4];
                    md_ldsm_b_kn(bfr, cV, LD, c0 + np * 16, kk * 16, lane);
                    md_mma(o[2 * np], pa, bfr[0], bfr[1]);
                    md_mma(o[2 * np + 1], pa, bfr[2], bfr[3]);
                }
            }
        }
        __syncthreads();
        if (!dbl && j + 1 < j_end) {
            load_kv(j + 1, 0);
            md_cp_async_commit();
        }
    }

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    if (n_split > 1) { /* partial: unnormalised o, then m and l */
        const size_t slot = ((size_t)qt * a.Hq + h) * gridDim.x + split;
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            const int r = 16 * w + g + 8 * hf;
            if (r >= validq) continue;
            float *dst = a.part + (slot * BM + r) * (D + 2);
#pragma unroll
            for (int nt = 0; nt < DH / 8; nt++)
                *reinterpret_cast<float2 *>(dst + c0 + nt * 8 + 2 * q) = make_float2(o[nt][2 * hf], o[nt][2 * hf + 1]);
            if (q == 0 && half == 0) {
                dst[D] = hf ? m1 : m0;
                dst[D + 1] = hf ? l1 : l0;
            }
        }
        return;
    }
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        const int r = 16 * w + g + 8 * hf;
        if (r >= validq) continue;
        const float inv = 1.0f / (hf ? l1 : l0);
        const float *gate = a.proj + (size_t)(t0 + r) * a.ldp + (size_t)h * 2 * D + D;
        f16 *dst = a.out + (size_t)(t0 + r) * a.qd + h * D;
#pragma unroll
        for (int nt = 0; nt < DH / 8; nt++) {
            const int col = c0 + nt * 8 + 2 * q;
            const float2 gt = *reinterpret_cast<const float2 *>(gate + col);
            const float y0 = o[nt][2 * hf] * inv / (1.0f + expf(-gt.x));
            const float y1 = o[nt][2 * hf + 1] * inv / (1.0f + expf(-gt.y));
            *reinterpret_cast<uint32_t *>(dst + col) = md_pack_f16(y0, y1);
        }
    }
}

/* Merges the split partials of one (token, head) per warp:
 *   M = max_s m_s,  o = sum_s 2^(m_s - M) o_s / sum_s 2^(m_s - M) l_s,
 * then the output gate. Tokens of unsplit query tiles were finished above. */
template <int D, int BN>
__global__ void __launch_bounds__(128) attn_combine_kernel(md_attn_args a, int max_split) {
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int job = blockIdx.x * 4 + w;
    if (job >= a.m * a.Hq) return;
    const int t = job / a.Hq, h = job % a.Hq, qt = t / BM, r = t % BM;
    const int n_kv = min(a.pos + qt * BM + BM, a.pos + a.m);
    const int n_split = ((n_kv + BN - 1) / BN + a.tiles_per_split - 1) / a.tiles_per_split;
    if (n_split <= 1) return;
    const float *base = a.part + (((size_t)qt * a.Hq + h) * max_split * BM + r) * (D + 2);
    const size_t stride = (size_t)BM * (D + 2);
    float M = -INFINITY;
    for (int s = 0; s < n_split; s++) M = fmaxf(M, base[s * stride + D]);
    float acc[D / 32], L = 0.0f;
#pragma unroll
    for (int k = 0; k < D / 32; k++) acc[k] = 0.0f;
    for (int s = 0; s < n_split; s++) {
        const float *ps = base + s * stride;
        const float ms = ps[D];
        const float e = ms == -INFINITY ? 0.0f : exp2f(ms - M);
        L += e * ps[D + 1];
#pragma unroll
        for (int k = 0; k < D / 32; k++) acc[k] += e * ps[lane + 32 * k];
    }
    const float inv = 1.0f / L;
    const float *gate = a.proj + (size_t)t * a.ldp + (size_t)h * 2 * D + D;
    f16 *dst = a.out + (size_t)t * a.qd + h * D;
#pragma unroll
    for (int k = 0; k < D / 32; k++) {
        const int col = lane + 32 * k;
        dst[col] = __float2half_rn(acc[k] * inv / (1.0f + expf(-gate[col])));
    }
}

template <int D>
static int split_count(const md_attn_args *a) {
    constexpr int BN = attn_cfg<D>::BN;
    const int n_kv = a->pos + a->m; /* the last query tile sees every key */
    return ((n_kv + BN - 1) / BN + a->tiles_per_split - 1) / a->tiles_per_split;
}

template <int D>
static md_status attn_launch(const md_attn_args *a, int stages, cudaStream_t stream) {
    constexpr int BN = attn_cfg<D>::BN;
    const size_t smem = attn_smem<D, BN>::bytes(stages);
    static size_t smem_set = 0; /* per instantiation: the attribute is set once, not per launch */
    if (smem > smem_set) {
        MD_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel<D, BN, 4>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        MD_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel<D, BN, 8>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        smem_set = smem;
    }
    const int max_split = split_count<D>(a);
    const dim3 grid(max_split, md_div_up((unsigned)a->m, BM), a->Hq);
    md_status st = max_split > 1
                       ? md_cuda_launch("attention_kernel", attention_kernel<D, BN, 8>, grid, dim3(256), smem, stream, *a, stages)
                       : md_cuda_launch("attention_kernel", attention_kernel<D, BN, 4>, grid, dim3(128), smem, stream, *a, stages);
    if (st != MD_OK || max_split <= 1) return st;
    return md_cuda_launch("attn_combine_kernel", attn_combine_kernel<D, BN>, dim3(md_div_up((unsigned)(a->m * a->Hq), 4)), dim3(128), 0,
                          stream, *a, max_split);
}

md_status md_cuda_attention(const md_attn_args *a, int D, int stages, cudaStream_t stream) {
    switch (D) {
    case 64: return attn_launch<64>(a, stages, stream);
    case 128: return attn_launch<128>(a, stages, stream);
    case 256: return attn_launch<256>(a, stages, stream);
    default: return md_fail(MD_ERR_UNSUPPORTED, "prefill attention: head dim %d", D);
    }
}

template <int D>
static int tiles_per_split(int m, int pos, int Hq, int target) {
    constexpr int BN = attn_cfg<D>::BN;
    const int n_qt = (m + BM - 1) / BM;
    if (n_qt * Hq >= target) return 1 << 30;
    long total = 0;
    for (int qt = 0; qt < n_qt; qt++) {
        const int n_kv = pos + (qt + 1) * BM < pos + m ? pos + (qt + 1) * BM : pos + m;
        total += (n_kv + BN - 1) / BN;
    }
    const long tps = (total * Hq + target - 1) / target;
    return tps < 2 ? 2 : (int)tps;
}

int md_cuda_attention_split(int D, int m, int pos, int Hq, int target) {
    switch (D) {
    case 64: return tiles_per_split<64>(m, pos, Hq, target);
    case 128: return tiles_per_split<128>(m, pos, Hq, target);
    case 256: return tiles_per_split<256>(m, pos, Hq, target);
    default: return 1 << 30;
    }
}

int md_cuda_attention_parts(int D, int m, int pos, int Hq, int tps) {
    md_attn_args a;
    memset(&a, 0, sizeof a);
    a.m = m, a.pos = pos, a.tiles_per_split = tps;
    int splits = 1;
    switch (D) {
    case 64: splits = split_count<64>(&a); break;
    case 128: splits = split_count<128>(&a); break;
    case 256: splits = split_count<256>(&a); break;
    }
    return splits > 1 ? md_div_up((unsigned)m, BM) * Hq * splits : 0;
}

template <int D>
static int stages_for(size_t smem_optin) {
    constexpr int BN = attn_cfg<D>::BN;
    if (attn_smem<D, BN>::bytes(2) <= smem_optin) return 2;
    if (attn_smem<D, BN>::bytes(1) <= smem_optin) return 1;
    return 0;
}

int md_cuda_attention_stages(int D, size_t smem_optin) {
    switch (D) {
    case 64: return stages_for<64>(smem_optin);
    case 128: return stages_for<128>(smem_optin);
    case 256: return stages_for<256>(smem_optin);
    default: return 0;
    }
}
