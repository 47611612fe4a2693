/*
 * qk_norm_rope.cu — the attention inputs of the piece, from the fused
 * q|gate, k, v projection (proj [m][ldp] fp32: per q head D query then D gate
 * columns, then k [kvd], then v [kvd]):
 *   q_h = rope(rmsnorm_zc(q_h; q_norm), p)  -> q   [m][Hq*D] bf16 (unscaled)
 *   k_h = rope(rmsnorm_zc(k_h; k_norm), p)  -> k_cache[p] bf16
 *   v_h                                      -> v_cache[p] bf16
 * at position p = pos + t; RoPE rotates the pairs (i, i + R/2), i < R/2, by
 * p * inv_freq[i] (fp32, as decode does). One block per token, one warp per
 * head; the head goes through shared memory for the rotation.
 */
#include "cuda/common.cuh"
#include "cuda/prefill/prefill.cuh"

#define QKR_WARPS 8

__global__ void __launch_bounds__(QKR_WARPS * 32)
    qk_norm_rope_kernel(const float *proj, int ldp, const float *q_norm, const float *k_norm, const float *inv_freq, __nv_bfloat16 *q_out,
                        __nv_bfloat16 *k_cache, __nv_bfloat16 *v_cache, int pos0, int Hq, int Hkv, int D, int R, float eps) {
    extern __shared__ float s_head[]; /* [QKR_WARPS][D] */
    const int t = blockIdx.x, w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int pos = pos0 + t, qd = Hq * D, kvd = Hkv * D;
    const float *row = proj + (size_t)t * ldp;
    float *buf = s_head + w * D;
    for (int job = w; job < Hq + 2 * Hkv; job += QKR_WARPS) {
        if (job >= Hq + Hkv) {
            const int hv = job - Hq - Hkv;
            const float *src = row + 2 * qd + kvd + hv * D;
            __nv_bfloat16 *dst = v_cache + (size_t)pos * kvd + hv * D;
            for (int i = lane; i < D; i += 32) dst[i] = __float2bfloat16(src[i]);
            continue;
        }
        const bool is_q = job < Hq;
        const float *src = is_q ? row + (size_t)job * 2 * D : row + 2 * qd + (job - Hq) * D;
        const float *wt = is_q ? q_norm : k_norm;
        float ss = 0.0f;
        for (int i = lane; i < D; i += 32) {
            const float v = src[i];
            buf[i] = v;
            ss += v * v;
        }
        const float inv = rsqrtf(md_warp_sum(ss) / (float)D + eps);
        for (int i = lane; i < D; i += 32) buf[i] = buf[i] * inv * (1.0f + wt[i]);
        __syncwarp();
        for (int i = lane; i < R / 2; i += 32) {
            float sn, cs;
            sincosf((float)pos * inv_freq[i], &sn, &cs);
            const float x1 = buf[i], x2 = buf[i + R / 2];
            buf[i] = x1 * cs - x2 * sn;
            buf[i + R / 2] = x2 * cs + x1 * sn;
        }
        __syncwarp();
        __nv_bfloat16 *dst = is_q ? q_out + (size_t)t * qd + job * D : k_cache + (size_t)pos * kvd + (job - Hq) * D;
        for (int i = lane; i < D; i += 32) dst[i] = __float2bfloat16(buf[i]);
        __syncwarp();
    }
}

md_status md_cuda_qk_norm_rope(const float *proj, int ldp, const float *q_norm, const float *k_norm, const float *inv_freq,
                               __nv_bfloat16 *q, __nv_bfloat16 *k_cache, __nv_bfloat16 *v_cache, int m, int pos, int Hq, int Hkv,
                               int D, int R, float eps, cudaStream_t stream) {
    const size_t smem = (size_t)QKR_WARPS * D * sizeof(float);
    return md_cuda_launch("qk_norm_rope_kernel", qk_norm_rope_kernel, dim3(m), dim3(QKR_WARPS * 32), smem, stream, proj, ldp, q_norm,
                          k_norm, inv_freq, q, k_cache, v_cache, pos, Hq, Hkv, D, R, eps);
}
