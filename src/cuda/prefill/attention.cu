/*
 * attention.cu — causal flash attention of the piece's queries over the KV
 * cache (earlier pieces and calls included), GQA, with the output gate:
 *   o_t = sum_{j <= p_t} softmax_j(q_t . k_j / sqrt(D)) v_j,   p_t = pos + t
 *   out_t = bf16(o_t * sigmoid(gate_t))
 * One CTA per (64-query tile, query head), heaviest tiles first; 4 warps,
 * warp w owns query rows 16w..16w+15. K/V tiles of BN keys stream through
 * shared memory with cp.async (double-buffered when it fits); scores and the
 * running max/sum stay in registers (online softmax in base 2, fp32), P goes
 * from the score accumulators straight into A fragments for P V. Never an
 * S x S matrix. Layouts: q [m][qd] bf16, caches [n_ctx][kvd] bf16 (key/value
 * head kvh at kvh*D), gate in proj [m][ldp] fp32 at h*2D + D, out [m][qd].
 */
#include <math.h>

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

template <int D, int BN>
__global__ void __launch_bounds__(128) attention_kernel(md_attn_args a, int stages) {
    typedef attn_smem<D, BN> L;
    constexpr int LD = L::LD;
    extern __shared__ __align__(16) uint8_t smem[];
    bf16 *sQ = reinterpret_cast<bf16 *>(smem);
    bf16 *sK = reinterpret_cast<bf16 *>(smem + L::q_bytes);
    bf16 *sV = reinterpret_cast<bf16 *>(smem + L::q_bytes + (size_t)stages * L::kv_bytes);
    const int tid = threadIdx.x, w = tid >> 5, lane = tid & 31, g = lane >> 2, q = lane & 3;
    const int qt = gridDim.x - 1 - blockIdx.x, h = blockIdx.y;
    const int kvh = h / (a.Hq / a.Hkv);
    const int t0 = qt * BM, validq = min(BM, a.m - t0);
    const int n_kv = min(a.pos + t0 + BM, a.pos + a.m);
    const int n_tiles = (n_kv + BN - 1) / BN;
    const bf16 *kbase = a.k + kvh * D, *vbase = a.v + kvh * D;

    md_tile_load_bf16(sQ, LD, a.q + (size_t)t0 * a.qd + h * D, a.qd, BM, D, validq, tid, 128);
    auto load_kv = [&](int j, int st) {
        const int valid = min(BN, n_kv - j * BN);
        md_tile_load_bf16(sK + (size_t)st * BN * LD, LD, kbase + (size_t)j * BN * a.kvd, a.kvd, BN, D, valid, tid, 128);
        md_tile_load_bf16(sV + (size_t)st * BN * LD, LD, vbase + (size_t)j * BN * a.kvd, a.kvd, BN, D, valid, tid, 128);
    };
    load_kv(0, 0);
    md_cp_async_commit();

    const float sc = rsqrtf((float)D) * 1.4426950408889634f; /* scale and log2(e) */
    const int qp0 = a.pos + t0 + 16 * w + g, qp1 = qp0 + 8;
    const int warp_last = a.pos + t0 + 16 * w + 15;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
    float o[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;

    for (int j = 0; j < n_tiles; j++) {
        const bool dbl = stages == 2;
        const int st = dbl ? (j & 1) : 0;
        if (dbl && j + 1 < n_tiles) {
            load_kv(j + 1, (j + 1) & 1);
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
            const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
            /* key 0 is in tile 0 and never masked, so mn is finite from the first tile on */
            const float al0 = exp2f(m0 - mn0), al1 = exp2f(m1 - mn1);
            m0 = mn0, m1 = mn1;
            float ls0 = 0.0f, ls1 = 0.0f;
#pragma unroll
            for (int nt = 0; nt < BN / 8; nt++) {
                s[nt][0] = exp2f(s[nt][0] - mn0);
                s[nt][1] = exp2f(s[nt][1] - mn0);
                s[nt][2] = exp2f(s[nt][2] - mn1);
                s[nt][3] = exp2f(s[nt][3] - mn1);
                ls0 += s[nt][0] + s[nt][1];
                ls1 += s[nt][2] + s[nt][3];
            }
            l0 = l0 * al0 + ls0;
            l1 = l1 * al1 + ls1;
#pragma unroll
            for (int nt = 0; nt < D / 8; nt++) {
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
                for (int np = 0; np < D / 16; np++) {
                    uint32_t bfr[4];
                    md_ldsm_b_kn(bfr, cV, LD, np * 16, kk * 16, lane);
                    md_mma(o[2 * np], pa, bfr[0], bfr[1]);
                    md_mma(o[2 * np + 1], pa, bfr[2], bfr[3]);
                }
            }
        }
        __syncthreads();
        if (!dbl && j + 1 < n_tiles) {
            load_kv(j + 1, 0);
            md_cp_async_commit();
        }
    }

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        const int r = 16 * w + g + 8 * hf;
        if (r >= validq) continue;
        const float inv = 1.0f / (hf ? l1 : l0);
        const float *gate = a.proj + (size_t)(t0 + r) * a.ldp + (size_t)h * 2 * D + D;
        bf16 *dst = a.out + (size_t)(t0 + r) * a.qd + h * D;
#pragma unroll
        for (int nt = 0; nt < D / 8; nt++) {
            const int col = nt * 8 + 2 * q;
            const float2 gt = *reinterpret_cast<const float2 *>(gate + col);
            const float y0 = o[nt][2 * hf] * inv / (1.0f + expf(-gt.x));
            const float y1 = o[nt][2 * hf + 1] * inv / (1.0f + expf(-gt.y));
            *reinterpret_cast<uint32_t *>(dst + col) = md_pack_bf16(y0, y1);
        }
    }
}

template <int D>
static md_status attn_launch(const md_attn_args *a, int stages, cudaStream_t stream) {
    constexpr int BN = attn_cfg<D>::BN;
    const size_t smem = attn_smem<D, BN>::bytes(stages);
    MD_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel<D, BN>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    const dim3 grid(md_div_up((unsigned)a->m, BM), a->Hq);
    return md_cuda_launch("attention_kernel", attention_kernel<D, BN>, grid, dim3(128), smem, stream, *a, stages);
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
