/*
 * delta_prep.cu — the chunk-parallel part of the chunked gated delta rule,
 * one CTA per (chunk of 64 tokens, value head):
 *   g_t = -exp(A_log) softplus(a_t + dt_bias),  beta_t = sigmoid(b_t)
 *   G_t = sum_{s<=t} g_s  (fp32, within the chunk; padded tokens: g = beta = 0)
 *   A[t][s] = beta_t exp(G_t - G_s) (k_t . k_s)  for s < t, else 0
 *   T = (I + A)^-1   (unit lower triangular: 16x16 diagonal blocks by forward
 *                     substitution, one column per thread, then the blocks
 *                     below the diagonal level by level: T_ij = -T_ii sum_k A_ik T_kj)
 *   W = T diag(beta e^G) K   [64][dk] fp16,   U = T diag(beta) V   [64][dv] fp32
 * so that, with S the state at the chunk start, the chunk's deltas are
 * v_new = U - W S (delta_scan.cu). Only differences G_t - G_s with t >= s are
 * exponentiated. K K^T, W and U run on tensor cores (fp16 in, fp32 accumulate);
 * A and T stay fp32.
 * Memory: reads qkv [m][cd] fp16 and proj (b, a); writes G [Hv][n_chunks*64],
 * W, U (layouts in prefill.cuh). 256 threads: in K K^T warp w owns rows
 * 16(w%4)..+15, keys [32(w/4), 32(w/4)+32); warps 0-3 then compute W and
 * warps 4-7 U, 16 rows each.
 */
#include "cuda/common.cuh"
#include "cuda/prefill/mma.cuh"
#include "cuda/prefill/prefill.cuh"

#define C MD_PF_CHUNK

template <int DK, int DV>
struct prep_smem {
    static constexpr int LK = DK + 8, LV = DV + 8, LT = C + 8, LA = C + 4;
    static constexpr size_t k_off = 0;
    static constexpr size_t v_off = k_off + (size_t)C * LK * 2;
    static constexpr size_t t16_off = v_off + (size_t)C * LV * 2;
    static constexpr size_t a_off = t16_off + (size_t)C * LT * 2;
    static constexpr size_t t_off = a_off + (size_t)C * LA * 4;
    static constexpr size_t x_off = t_off + (size_t)C * LA * 4;
    static constexpr size_t g_off = x_off + 768 * 4;
    static constexpr size_t b_off = g_off + C * 4;
    static constexpr size_t be_off = b_off + C * 4;
    static constexpr size_t bytes = be_off + C * 4;
};

template <int DK, int DV>
__global__ void __launch_bounds__(256) delta_prep_kernel(md_delta_args a) {
    constexpr int NT = 256;
    typedef prep_smem<DK, DV> L;
    extern __shared__ __align__(16) uint8_t smem[];
    f16 *sK = reinterpret_cast<f16 *>(smem + L::k_off);
    f16 *sV = reinterpret_cast<f16 *>(smem + L::v_off);
    f16 *sT16 = reinterpret_cast<f16 *>(smem + L::t16_off);
    float *sA = reinterpret_cast<float *>(smem + L::a_off);
    float *sT = reinterpret_cast<float *>(smem + L::t_off);
    float *sX = reinterpret_cast<float *>(smem + L::x_off);
    float *sG = reinterpret_cast<float *>(smem + L::g_off);
    float *sB = reinterpret_cast<float *>(smem + L::b_off);
    float *sBE = reinterpret_cast<float *>(smem + L::be_off);
    const int c = blockIdx.x, h = blockIdx.y, tid = threadIdx.x, w = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, q = lane & 3;
    const int kh = h / (a.Hv / a.Hk);
    const int t0 = c * C, valid = min(C, a.m - t0);

    md_tile_load(sK, L::LK, a.qkv + (size_t)t0 * a.cd + a.Kd + kh * DK, a.cd, C, DK, valid, tid, NT);
    md_tile_load(sV, L::LV, a.qkv + (size_t)t0 * a.cd + 2 * a.Kd + h * DV, a.cd, C, DV, valid, tid, NT);
    md_cp_async_commit();

    if (w == 0) { /* decays and betas, prefix sum of the log decay */
        const float Ae = expf(a.A_log[h]), dtb = a.dt_bias[h];
        float gv[2], bv[2];
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const int t = lane + 32 * e;
            gv[e] = 0.0f;
            bv[e] = 0.0f;
            if (t < valid) {
                const float *pr = a.proj + (size_t)(t0 + t) * a.ldp + a.cd + a.Vd;
                const float x = pr[a.Hv + h] + dtb;
                gv[e] = -Ae * (x > 20.0f ? x : log1pf(expf(x)));
                bv[e] = 1.0f / (1.0f + expf(-pr[h]));
            }
        }
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const float y = __shfl_up_sync(0xffffffffu, gv[e], o);
                if (lane >= o) gv[e] += y;
            }
        }
        gv[1] += __shfl_sync(0xffffffffu, gv[0], 31);
        float *Gg = a.G + (size_t)h * a.n_chunks * C + t0;
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const int t = lane + 32 * e;
            sG[t] = gv[e];
            sB[t] = bv[e];
            sBE[t] = bv[e] * expf(gv[e]);
            Gg[t] = gv[e];
        }
    }
    for (int i = tid; i < C * L::LA; i += NT) sT[i] = 0.0f;
    md_cp_async_wait<0>();
    __syncthreads();

    /* A = strictly lower, decayed, beta-scaled K K^T */
    {
        const int rw = w & 3, k0 = (w >> 2) * 32;
        float acc[4][4];
#pragma unroll
        for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < DK / 16; kk++) {
            uint32_t af[4];
            md_ldsm_a(af, sK, L::LK, 16 * rw, kk * 16, lane);
#pragma unroll
            for (int np = 0; np < 2; np++) {
                uint32_t bfr[4];
                md_ldsm_b_nk(bfr, sK, L::LK, k0 + np * 16, kk * 16, lane);
                md_mma_f16(acc[2 * np], af, bfr[0], bfr[1]);
                md_mma_f16(acc[2 * np + 1], af, bfr[2], bfr[3]);
            }
        }
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int t = 16 * rw + g + (e >> 1) * 8, s = k0 + nt * 8 + 2 * q + (e & 1);
                sA[t * L::LA + s] = s < t ? sB[t] * expf(sG[t] - sG[s]) * acc[nt][e] : 0.0f;
            }
    }
    __syncthreads();

    /* diagonal 16x16 blocks of T: column j of block b by forward substitution */
    if (tid < 64) {
        const int b = tid >> 4, j = tid & 15;
        const float *Ab = sA + (size_t)(16 * b) * L::LA + 16 * b;
        float x[16];
#pragma unroll
        for (int i = 0; i < 16; i++) {
            float s = i == j ? 1.0f : 0.0f;
#pragma unroll
            for (int k = 0; k < i; k++) s -= Ab[i * L::LA + k] * x[k];
            x[i] = s;
        }
#pragma unroll
        for (int i = 0; i < 16; i++) sT[(16 * b + i) * L::LA + 16 * b + j] = x[i];
    }
    __syncthreads();
    /* blocks below the diagonal, level by level */
    for (int lv = 1; lv < 4; lv++) {
        const int nb = 4 - lv;
        for (int e = tid; e < nb * 256; e += NT) {
            const int j = e >> 8, r = (e >> 4) & 15, cc = e & 15, i = j + lv;
            float s = 0.0f;
            for (int kb = j; kb < i; kb++)
#pragma unroll
                for (int k = 0; k < 16; k++) s += sA[(16 * i + r) * L::LA + 16 * kb + k] * sT[(16 * kb + k) * L::LA + 16 * j + cc];
            sX[e] = s;
        }
        __syncthreads();
        for (int e = tid; e < nb * 256; e += NT) {
            const int j = e >> 8, r = (e >> 4) & 15, cc = e & 15, i = j + lv;
            float s = 0.0f;
            for (int k = 0; k <= r; k++) s += sT[(16 * i + r) * L::LA + 16 * i + k] * sX[(j * 16 + k) * 16 + cc];
            sT[(16 * i + r) * L::LA + 16 * j + cc] = -s;
        }
        __syncthreads();
    }

    /* fp16 operands: T, beta e^G k (in place of k), beta v (in place of v) */
    for (int e = tid; e < C * C / 2; e += NT) {
        const int r = e / (C / 2), cc = 2 * (e % (C / 2));
        *reinterpret_cast<__half2 *>(sT16 + r * L::LT + cc) = __floats2half2_rn(sT[r * L::LA + cc], sT[r * L::LA + cc + 1]);
    }
    for (int e = tid; e < C * DK / 2; e += NT) {
        const int r = e / (DK / 2), cc = 2 * (e % (DK / 2));
        __half2 *p = reinterpret_cast<__half2 *>(sK + r * L::LK + cc);
        const float2 f = __half22float2(*p);
        *p = __floats2half2_rn(f.x * sBE[r], f.y * sBE[r]);
    }
    for (int e = tid; e < C * DV / 2; e += NT) {
        const int r = e / (DV / 2), cc = 2 * (e % (DV / 2));
        __half2 *p = reinterpret_cast<__half2 *>(sV + r * L::LV + cc);
        const float2 f = __half22float2(*p);
        *p = __floats2half2_rn(f.x * sB[r], f.y * sB[r]);
    }
    __syncthreads();

    const size_t blk = (size_t)c * a.Hv + h;
    const int rw = w & 3;
    uint32_t tf[4][4]; /* this warp's 16 rows of T as A fragments, k = 0..63 */
#pragma unroll
    for (int kk = 0; kk < 4; kk++) md_ldsm_a(tf[kk], sT16, L::LT, 16 * rw, kk * 16, lane);
    if (w < 4) {
        float acc[DK / 8][4];
#pragma unroll
        for (int i = 0; i < DK / 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < 4; kk++)
#pragma unroll
            for (int np = 0; np < DK / 16; np++) {
                uint32_t bfr[4];
                md_ldsm_b_kn(bfr, sK, L::LK, np * 16, kk * 16, lane);
                md_mma_f16(acc[2 * np], tf[kk], bfr[0], bfr[1]);
                md_mma_f16(acc[2 * np + 1], tf[kk], bfr[2], bfr[3]);
            }
        f16 *Wd = a.W + blk * C * DK;
#pragma unroll
        for (int nt = 0; nt < DK / 8; nt++) {
            const int r = 16 * rw + g, col = nt * 8 + 2 * q;
            *reinterpret_cast<uint32_t *>(Wd + (size_t)r * DK + col) = md_pack_f16(acc[nt][0], acc[nt][1]);
            *reinterpret_cast<uint32_t *>(Wd + (size_t)(r + 8) * DK + col) = md_pack_f16(acc[nt][2], acc[nt][3]);
        }
    } else {
        float acc[DV / 8][4];
#pragma unroll
        for (int i = 0; i < DV / 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < 4; kk++)
#pragma unroll
            for (int np = 0; np < DV / 16; np++) {
                uint32_t bfr[4];
                md_ldsm_b_kn(bfr, sV, L::LV, np * 16, kk * 16, lane);
                md_mma_f16(acc[2 * np], tf[kk], bfr[0], bfr[1]);
                md_mma_f16(acc[2 * np + 1], tf[kk], bfr[2], bfr[3]);
            }
        float *Ud = a.U + blk * C * DV;
#pragma unroll
        for (int nt = 0; nt < DV / 8; nt++) {
            const int r = 16 * rw + g, col = nt * 8 + 2 * q;
            *reinterpret_cast<float2 *>(Ud + (size_t)r * DV + col) = make_float2(acc[nt][0], acc[nt][1]);
            *reinterpret_cast<float2 *>(Ud + (size_t)(r + 8) * DV + col) = make_float2(acc[nt][2], acc[nt][3]);
        }
    }
}

template <int DK, int DV>
static md_status prep_launch(const md_delta_args *a, cudaStream_t stream) {
    const size_t smem = prep_smem<DK, DV>::bytes;
    static size_t smem_set = 0; /* per instantiation: the attribute is set once, not per launch */
    if (smem > smem_set) {
        MD_CUDA_CHECK(cudaFuncSetAttribute(delta_prep_kernel<DK, DV>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        smem_set = smem;
    }
    return md_cuda_launch("delta_prep_kernel", delta_prep_kernel<DK, DV>, dim3(a->n_chunks, a->Hv), dim3(256), smem, stream, *a);
}

md_status md_cuda_delta_prep(const md_delta_args *a, int dk, int dv, cudaStream_t stream) {
    MD_DELTA_DISPATCH(prep_launch, dk, dv, a, stream)
}
