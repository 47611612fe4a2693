/*
 * delta_out.cu — the outputs of the chunked gated delta rule, parallel over
 * chunks, fused with the gated RMSNorm. One CTA per (chunk, value head):
 *   o_t = exp(G_t) (q_t S_c) + sum_{s<=t} exp(G_t - G_s) (q_t . k_s) v_new_s
 *   out_t = fp16(o_t / sqrt(mean(o_t^2) + eps) * gnorm * silu(z_t))
 * with S_c the state at the chunk start (delta_scan.cu), q already L2-normed
 * and scaled by 1/sqrt(dk). Q K^T, Q S and P V_new on tensor cores; the
 * masked, decayed scores go from accumulators straight into A fragments.
 * Reads qkv, S, Vn, G, z (proj); writes out [m][Vd]. 256 threads: warp w
 * owns rows 16(w%4)..+15 and value columns [(w/4) dv/2, (w/4+1) dv/2) (each
 * row lives in the 4 lanes of a quad); both column halves compute the row's
 * scores, and the norm's sums of squares meet in shared memory.
 */
#include "cuda/common.cuh"
#include "cuda/prefill/mma.cuh"
#include "cuda/prefill/prefill.cuh"

#define C MD_PF_CHUNK

template <int DK, int DV>
struct out_smem {
    static constexpr int LK = DK + 8, LV = DV + 8;
    static constexpr size_t q_off = 0;
    static constexpr size_t k_off = q_off + (size_t)C * LK * 2;
    static constexpr size_t s_off = k_off + (size_t)C * LK * 2;
    static constexpr size_t v_off = s_off + (size_t)DK * LV * 2;
    static constexpr size_t g_off = v_off + (size_t)C * LV * 2;
    static constexpr size_t r_off = g_off + C * 4; /* [2][C] sums of squares per column half */
    static constexpr size_t bytes = r_off + 2 * C * 4;
};

template <int DK, int DV>
__global__ void __launch_bounds__(256) delta_out_kernel(md_delta_args a) {
    constexpr int NT = 256, DH = DV / 2; /* threads, value columns per warp */
    typedef out_smem<DK, DV> L;
    extern __shared__ __align__(16) uint8_t smem[];
    f16 *sQ = reinterpret_cast<f16 *>(smem + L::q_off);
    f16 *sK = reinterpret_cast<f16 *>(smem + L::k_off);
    f16 *sS = reinterpret_cast<f16 *>(smem + L::s_off);
    f16 *sV = reinterpret_cast<f16 *>(smem + L::v_off);
    float *sG = reinterpret_cast<float *>(smem + L::g_off);
    float *sR = reinterpret_cast<float *>(smem + L::r_off);
    const int c = blockIdx.x, h = blockIdx.y, tid = threadIdx.x, lane = tid & 31, g = lane >> 2, q = lane & 3;
    const int w = (tid >> 5) & 3, half = tid >> 7, c0 = half * DH;
    const int kh = h / (a.Hv / a.Hk);
    const int t0 = c * C, valid = min(C, a.m - t0);
    const size_t blk = (size_t)c * a.Hv + h;
    md_tile_load(sQ, L::LK, a.qkv + (size_t)t0 * a.cd + kh * DK, a.cd, C, DK, valid, tid, NT);
    md_tile_load(sK, L::LK, a.qkv + (size_t)t0 * a.cd + a.Kd + kh * DK, a.cd, C, DK, valid, tid, NT);
    md_tile_load(sS, L::LV, a.S + blk * DK * DV, DV, DK, DV, DK, tid, NT);
    md_tile_load(sV, L::LV, a.Vn + blk * C * DV, DV, C, DV, C, tid, NT);
    for (int i = tid; i < C / 4; i += NT) md_cp_async16(sG + 4 * i, a.G + (size_t)h * a.n_chunks * C + t0 + 4 * i, 16);
    md_cp_async_commit();
    md_cp_async_wait<0>();
    __syncthreads();

    const int r0 = 16 * w + g, r1 = r0 + 8;
    const float g0 = sG[r0], g1 = sG[r1];
    /* P = causal, decayed Q K^T as fp16 A fragments (k = key token) */
    uint32_t pa[4][4];
    {
        float p[8][4];
#pragma unroll
        for (int i = 0; i < 8; i++) p[i][0] = p[i][1] = p[i][2] = p[i][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < DK / 16; kk++) {
            uint32_t af[4];
            md_ldsm_a(af, sQ, L::LK, 16 * w, kk * 16, lane);
#pragma unroll
            for (int np = 0; np < 4; np++) {
                uint32_t bfr[4];
                md_ldsm_b_nk(bfr, sK, L::LK, np * 16, kk * 16, lane);
                md_mma_f16(p[2 * np], af, bfr[0], bfr[1]);
                md_mma_f16(p[2 * np + 1], af, bfr[2], bfr[3]);
            }
        }
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int s = nt * 8 + 2 * q + (e & 1), r = e < 2 ? r0 : r1;
                const float gr = e < 2 ? g0 : g1;
                p[nt][e] = s <= r ? p[nt][e] * expf(gr - sG[s]) : 0.0f;
            }
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            pa[kk][0] = md_pack_f16(p[2 * kk][0], p[2 * kk][1]);
            pa[kk][1] = md_pack_f16(p[2 * kk][2], p[2 * kk][3]);
            pa[kk][2] = md_pack_f16(p[2 * kk + 1][0], p[2 * kk + 1][1]);
            pa[kk][3] = md_pack_f16(p[2 * kk + 1][2], p[2 * kk + 1][3]);
        }
    }
    /* O = exp(G) (Q S) + P V_new, this warp's column half */
    float o[DH / 8][4];
#pragma unroll
    for (int i = 0; i < DH / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < DK / 16; kk++) {
        uint32_t af[4];
        md_ldsm_a(af, sQ, L::LK, 16 * w, kk * 16, lane);
#pragma unroll
        for (int np = 0; np < DH / 16; np++) {
            uint32_t bfr[4];
            md_ldsm_b_kn(bfr, sS, L::LV, c0 + np * 16, kk * 16, lane);
            md_mma_f16(o[2 * np], af, bfr[0], bfr[1]);
            md_mma_f16(o[2 * np + 1], af, bfr[2], bfr[3]);
        }
    }
    const float e0 = expf(g0), e1 = expf(g1);
#pragma unroll
    for (int nt = 0; nt < DH / 8; nt++) {
        o[nt][0] *= e0, o[nt][1] *= e0;
        o[nt][2] *= e1, o[nt][3] *= e1;
    }
#pragma unroll
    for (int kk = 0; kk < 4; kk++)
#pragma unroll
        for (int np = 0; np < DH / 16; np++) {
            uint32_t bfr[4];
            md_ldsm_b_kn(bfr, sV, L::LV, c0 + np * 16, kk * 16, lane);
            md_mma_f16(o[2 * np], pa[kk], bfr[0], bfr[1]);
            md_mma_f16(o[2 * np + 1], pa[kk], bfr[2], bfr[3]);
        }

    /* gated RMSNorm per row over dv */
    float ss0 = 0.0f, ss1 = 0.0f;
#pragma unroll
    for (int nt = 0; nt < DH / 8; nt++) {
        ss0 += o[nt][0] * o[nt][0] + o[nt][1] * o[nt][1];
        ss1 += o[nt][2] * o[nt][2] + o[nt][3] * o[nt][3];
    }
    ss0 += __shfl_xor_sync(0xffffffffu, ss0, 1);
    ss0 += __shfl_xor_sync(0xffffffffu, ss0, 2);
    ss1 += __shfl_xor_sync(0xffffffffu, ss1, 1);
    ss1 += __shfl_xor_sync(0xffffffffu, ss1, 2);
    if (q == 0) {
        sR[half * C + r0] = ss0;
        sR[half * C + r1] = ss1;
    }
    __syncthreads();
    ss0 = sR[r0] + sR[C + r0];
    ss1 = sR[r1] + sR[C + r1];
    const float inv0 = rsqrtf(ss0 / (float)DV + a.eps), inv1 = rsqrtf(ss1 / (float)DV + a.eps);
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
        const int r = hf ? r1 : r0;
        if (r >= valid) continue;
        const float inv = hf ? inv1 : inv0;
        const float *z = a.proj + (size_t)(t0 + r) * a.ldp + a.cd + h * DV;
        f16 *dst = a.out + (size_t)(t0 + r) * a.Vd + h * DV;
#pragma unroll
        for (int nt = 0; nt < DH / 8; nt++) {
            const int j = c0 + nt * 8 + 2 * q;
            const float2 zz = *reinterpret_cast<const float2 *>(z + j);
            const float y0 = o[nt][2 * hf] * inv * a.gnorm[j] * (zz.x / (1.0f + expf(-zz.x)));
            const float y1 = o[nt][2 * hf + 1] * inv * a.gnorm[j + 1] * (zz.y / (1.0f + expf(-zz.y)));
            *reinterpret_cast<uint32_t *>(dst + j) = md_pack_f16(y0, y1);
        }
    }
}

template <int DK, int DV>
static md_status out_launch(const md_delta_args *a, cudaStream_t stream) {
    const size_t smem = out_smem<DK, DV>::bytes;
    static size_t smem_set = 0; /* per instantiation: the attribute is set once, not per launch */
    if (smem > smem_set) {
        MD_CUDA_CHECK(cudaFuncSetAttribute(delta_out_kernel<DK, DV>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        smem_set = smem;
    }
    return md_cuda_launch("delta_out_kernel", delta_out_kernel<DK, DV>, dim3(a->n_chunks, a->Hv), dim3(256), smem, stream, *a);
}

md_status md_cuda_delta_out(const md_delta_args *a, int dk, int dv, cudaStream_t stream) {
    MD_DELTA_DISPATCH(out_launch, dk, dv, a, stream)
}

/* The largest of the three kernels' shared memory is out_smem<128, 128>
 * (~87 KB): every sm_80+ part allows it. */
bool md_cuda_delta_supported(int dk, int dv, size_t smem_optin) {
    const bool dk_ok = dk == 32 || dk == 64 || dk == 128, dv_ok = dv == 32 || dv == 64 || dv == 128;
    return dk_ok && dv_ok && smem_optin >= out_smem<128, 128>::bytes && smem_optin >= 90 * 1024;
}
