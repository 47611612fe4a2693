/*
 * delta_scan.cu — the sequential part of the chunked gated delta rule: the
 * state carried across chunks. One CTA per (value head, slice of 16 value
 * columns) holds its slice of the state S [dk][16] in fp32 registers (the
 * accumulators of the update mma) and walks the chunks:
 *   S_c -> S[c] (fp16, for delta_out.cu)
 *   v_new = U_c - W_c S_c                      [64][16]   (-> Vn, fp16)
 *   S_{c+1} = exp(G_last) S_c + K_c^T (exp(G_last - G_t) v_new_t)_t
 * with G the cumulative log decay within the chunk (G_last its last entry).
 * The next chunk's W, K, U and G are fetched with cp.async while this one is
 * computed. The state enters from and returns to ssm_state in the decode
 * layout [Hv][dv][dk] (S transposed).
 * 128 threads: in v_new warp w owns rows 16w..16w+15; in the update the
 * (dk/16) x 2 accumulator tiles are shared out evenly over the 4 warps.
 */
#include "cuda/common.cuh"
#include "cuda/prefill/mma.cuh"
#include "cuda/prefill/prefill.cuh"

#define C MD_PF_CHUNK
#define SL MD_PF_SCAN_SLICE

template <int DK>
struct scan_smem {
    static constexpr int LK = DK + 8, LS = SL + 8;
    static constexpr size_t w_off = 0;                                   /* [2][C][LK] fp16 */
    static constexpr size_t k_off = w_off + 2 * (size_t)C * LK * 2;      /* [2][C][LK] fp16 */
    static constexpr size_t u_off = k_off + 2 * (size_t)C * LK * 2;      /* [2][C][SL] fp32 */
    static constexpr size_t g_off = u_off + 2 * (size_t)C * SL * 4;      /* [2][C] fp32 */
    static constexpr size_t s_off = g_off + 2 * (size_t)C * 4;           /* [DK][LS] fp16 */
    static constexpr size_t vs_off = s_off + (size_t)DK * LS * 2;        /* [C][LS] fp16 */
    static constexpr size_t bytes = vs_off + (size_t)C * LS * 2;
};

template <int DK, int DV>
__global__ void __launch_bounds__(128, 1) delta_scan_kernel(md_delta_args a) {
    typedef scan_smem<DK> L;
    constexpr int NF = DK / 32; /* state tiles per warp: (DK/16) * (SL/8) / 4 */
    extern __shared__ __align__(16) uint8_t smem[];
    f16 *sW = reinterpret_cast<f16 *>(smem + L::w_off);
    f16 *sK = reinterpret_cast<f16 *>(smem + L::k_off);
    float *sU = reinterpret_cast<float *>(smem + L::u_off);
    float *sG = reinterpret_cast<float *>(smem + L::g_off);
    f16 *sS = reinterpret_cast<f16 *>(smem + L::s_off);
    f16 *sVs = reinterpret_cast<f16 *>(smem + L::vs_off);
    const int tid = threadIdx.x, w = tid >> 5, lane = tid & 31, g = lane >> 2, q = lane & 3;
    const int h = blockIdx.x / (DV / SL), sl = blockIdx.x % (DV / SL);
    const int kh = h / (a.Hv / a.Hk);

    auto load = [&](int c, int b) {
        const int t0 = c * C, valid = min(C, a.m - t0);
        const size_t blk = (size_t)c * a.Hv + h;
        md_tile_load(sW + (size_t)b * C * L::LK, L::LK, a.W + blk * C * DK, DK, C, DK, C, tid, 128);
        md_tile_load(sK + (size_t)b * C * L::LK, L::LK, a.qkv + (size_t)t0 * a.cd + a.Kd + kh * DK, a.cd, C, DK, valid, tid, 128);
        for (int i = tid; i < C * (SL / 4); i += 128) {
            const int r = i / (SL / 4), c4 = (i % (SL / 4)) * 4;
            md_cp_async16(sU + (size_t)b * C * SL + r * SL + c4, a.U + (blk * C + r) * DV + sl * SL + c4, 16);
        }
        for (int i = tid; i < C / 4; i += 128) md_cp_async16(sG + b * C + 4 * i, a.G + (size_t)h * a.n_chunks * C + t0 + 4 * i, 16);
        md_cp_async_commit();
    };

    /* the state slice: tile f of this warp is (mt, nt) = ((w*NF+f) / 2, (w*NF+f) % 2) */
    float *state = a.state + ((size_t)h * DV + sl * SL) * DK; /* element (i, j) at [j * DK + i] */
    float st[NF][4];
#pragma unroll
    for (int f = 0; f < NF; f++) {
        const int mt = (w * NF + f) >> 1, nt = (w * NF + f) & 1;
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int i = mt * 16 + g + (e >> 1) * 8, j = nt * 8 + 2 * q + (e & 1);
            st[f][e] = state[(size_t)j * DK + i];
        }
    }

    load(0, 0);
    for (int c = 0; c < a.n_chunks; c++) {
        const int b = c & 1;
        const bool more = c + 1 < a.n_chunks;
        if (more) load(c + 1, b ^ 1);
        /* the state at the chunk start, fp16: to shared memory and to S[c] */
        f16 *Sg = a.S + ((size_t)c * a.Hv + h) * DK * DV + sl * SL;
#pragma unroll
        for (int f = 0; f < NF; f++) {
            const int mt = (w * NF + f) >> 1, nt = (w * NF + f) & 1;
            const int i = mt * 16 + g, j = nt * 8 + 2 * q;
            const uint32_t lo = md_pack_f16(st[f][0], st[f][1]), hi = md_pack_f16(st[f][2], st[f][3]);
            *reinterpret_cast<uint32_t *>(sS + i * L::LS + j) = lo;
            *reinterpret_cast<uint32_t *>(sS + (i + 8) * L::LS + j) = hi;
            *reinterpret_cast<uint32_t *>(Sg + (size_t)i * DV + j) = lo;
            *reinterpret_cast<uint32_t *>(Sg + (size_t)(i + 8) * DV + j) = hi;
        }
        if (more) md_cp_async_wait<1>();
        else md_cp_async_wait<0>();
        __syncthreads();
        const f16 *cW = sW + (size_t)b * C * L::LK, *cK = sK + (size_t)b * C * L::LK;
        const float *cU = sU + (size_t)b * C * SL, *cG = sG + b * C;
        const float glast = cG[C - 1];

        /* v_new = U - W S, rows 16w..16w+15 */
        float vn[2][4];
#pragma unroll
        for (int i = 0; i < 2; i++) vn[i][0] = vn[i][1] = vn[i][2] = vn[i][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < DK / 16; kk++) {
            uint32_t af[4], bfr[4];
            md_ldsm_a(af, cW, L::LK, 16 * w, kk * 16, lane);
            md_ldsm_b_kn(bfr, sS, L::LS, 0, kk * 16, lane);
            md_mma_f16(vn[0], af, bfr[0], bfr[1]);
            md_mma_f16(vn[1], af, bfr[2], bfr[3]);
        }
        f16 *Vg = a.Vn + ((size_t)c * a.Hv + h) * C * DV + sl * SL;
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const int r = 16 * w + g + 8 * hf, j = nt * 8 + 2 * q;
                const float v0 = cU[r * SL + j] - vn[nt][2 * hf], v1 = cU[r * SL + j + 1] - vn[nt][2 * hf + 1];
                *reinterpret_cast<uint32_t *>(Vg + (size_t)r * DV + j) = md_pack_f16(v0, v1);
                const float dcy = expf(glast - cG[r]);
                *reinterpret_cast<uint32_t *>(sVs + r * L::LS + j) = md_pack_f16(v0 * dcy, v1 * dcy);
            }
        __syncthreads();

        /* S = exp(G_last) S + K^T (decayed v_new) */
        const float dl = expf(glast);
#pragma unroll
        for (int f = 0; f < NF; f++) {
            const int mt = (w * NF + f) >> 1, nt = (w * NF + f) & 1;
#pragma unroll
            for (int e = 0; e < 4; e++) st[f][e] *= dl;
#pragma unroll
            for (int kk = 0; kk < C / 16; kk++) {
                uint32_t af[4], bfr[2];
                md_ldsm_a_trans(af, cK, L::LK, mt * 16, kk * 16, lane);
                md_ldsm_b_kn1(bfr, sVs, L::LS, nt * 8, kk * 16, lane);
                md_mma_f16(st[f], af, bfr[0], bfr[1]);
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int f = 0; f < NF; f++) {
        const int mt = (w * NF + f) >> 1, nt = (w * NF + f) & 1;
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int i = mt * 16 + g + (e >> 1) * 8, j = nt * 8 + 2 * q + (e & 1);
            state[(size_t)j * DK + i] = st[f][e];
        }
    }
}

template <int DK, int DV>
static md_status scan_launch(const md_delta_args *a, cudaStream_t stream) {
    const size_t smem = scan_smem<DK>::bytes;
    static size_t smem_set = 0; /* per instantiation: the attribute is set once, not per launch */
    if (smem > smem_set) {
        MD_CUDA_CHECK(cudaFuncSetAttribute(delta_scan_kernel<DK, DV>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        smem_set = smem;
    }
    return md_cuda_launch("delta_scan_kernel", delta_scan_kernel<DK, DV>, dim3(a->Hv * (DV / SL)), dim3(128), smem, stream, *a);
}

md_status md_cuda_delta_scan(const md_delta_args *a, int dk, int dv, cudaStream_t stream) {
    MD_DELTA_DISPATCH(scan_launch, dk, dv, a, stream)
}
