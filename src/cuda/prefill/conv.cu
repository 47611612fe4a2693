/*
 * conv.cu — the DeltaNet's causal depthwise convolution over the piece,
 * then SiLU, then the per-head L2 norms (q also scaled by 1/sqrt(dk)):
 *   c_t[ch] = silu(sum_j w[ch][j] u_{t-3+j}[ch])    (width 4; u = pre-conv qkv)
 *   q = c_q / sqrt(|c_q|^2 + 1e-6) / sqrt(dk),  k = c_k / sqrt(|c_k|^2 + 1e-6),  v = c_v
 * Inputs before the piece come from the conv state (the last 3 pre-conv
 * inputs, oldest first); the state after the piece goes to state_out (a
 * separate buffer, so no block reads what another writes).
 *   proj      [m][ldp] fp32, qkv channels in columns [0, cd)
 *   conv_w    [cd][4] fp32
 *   state_in / state_out [cd][3] fp32
 *   qkv       [m][cd] fp16
 * Block: 4 warps over 32 tokens x 128 channels; a lane owns 4 channels and
 * walks 8 tokens keeping the window in registers. A head's dk channels lie
 * in dk/4 consecutive lanes, so its L2 norm is a shuffle reduction.
 */
#include "cuda/common.cuh"
#include "cuda/prefill/prefill.cuh"

#define CONV_TOKENS 32
#define CONV_PER_WARP (CONV_TOKENS / 4)

__device__ __forceinline__ float4 conv_ld4(const float *p) { return *reinterpret_cast<const float4 *>(p); }

template <int DK>
__global__ void __launch_bounds__(128) conv_kernel(const float *proj, int ldp, const float *conv_w, const float *state_in,
                                                   float *state_out, __half *qkv, int m, int cd, int Kd) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int ch = blockIdx.x * 128 + lane * 4;
    const bool active = ch < cd;
    const int t_begin = blockIdx.y * CONV_TOKENS + w * CONV_PER_WARP;
    float wc[4][4]; /* [channel][tap] */
    float win[3][4]; /* inputs at t-3, t-2, t-1: [time][channel] */
#pragma unroll
    for (int c = 0; c < 4; c++)
#pragma unroll
        for (int j = 0; j < 4; j++) wc[c][j] = active ? conv_w[(size_t)(ch + c) * 4 + j] : 0.0f;
#pragma unroll
    for (int j = 0; j < 3; j++) {
        const int t = t_begin - 3 + j;
#pragma unroll
        for (int c = 0; c < 4; c++) win[j][c] = 0.0f;
        if (!active) continue;
        if (t >= 0) {
            if (t < m) {
                const float4 u = conv_ld4(proj + (size_t)t * ldp + ch);
                win[j][0] = u.x, win[j][1] = u.y, win[j][2] = u.z, win[j][3] = u.w;
            }
        } else {
#pragma unroll
            for (int c = 0; c < 4; c++) win[j][c] = state_in[(size_t)(ch + c) * 3 + 3 + t];
        }
    }
    /* the state after the piece: inputs at m-3, m-2, m-1 */
    if (blockIdx.y == 0 && w == 0 && active) {
#pragma unroll
        for (int j = 0; j < 3; j++) {
            const int t = m - 3 + j;
#pragma unroll
            for (int c = 0; c < 4; c++)
                state_out[(size_t)(ch + c) * 3 + j] = t >= 0 ? proj[(size_t)t * ldp + ch + c] : state_in[(size_t)(ch + c) * 3 + 3 + t];
        }
    }
    const bool is_q = ch < Kd, is_k = ch >= Kd && ch < 2 * Kd;
    const float q_scale = rsqrtf((float)DK);
    /* every input of this warp's tokens in flight before the first use */
    float4 xs[CONV_PER_WARP];
#pragma unroll
    for (int i = 0; i < CONV_PER_WARP; i++) {
        const int t = t_begin + i;
        xs[i] = active && t < m ? conv_ld4(proj + (size_t)t * ldp + ch) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
#pragma unroll
    for (int i = 0; i < CONV_PER_WARP; i++) {
        const int t = t_begin + i;
        if (t >= m) break; /* warp-uniform */
        const float u[4] = {xs[i].x, xs[i].y, xs[i].z, xs[i].w};
        float y[4];
        float ss = 0.0f;
#pragma unroll
        for (int c = 0; c < 4; c++) {
            float acc = wc[c][3] * u[c];
#pragma unroll
            for (int j = 0; j < 3; j++) acc += wc[c][j] * win[j][c];
            y[c] = acc / (1.0f + expf(-acc));
            ss += y[c] * y[c];
            win[0][c] = win[1][c];
            win[1][c] = win[2][c];
            win[2][c] = u[c];
        }
#pragma unroll
        for (int o = DK / 8; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        float scale = 1.0f;
        if (is_q) scale = rsqrtf(ss + 1e-6f) * q_scale;
        else if (is_k) scale = rsqrtf(ss + 1e-6f);
        if (active) {
            __half2 lo = __floats2half2_rn(y[0] * scale, y[1] * scale);
            __half2 hi = __floats2half2_rn(y[2] * scale, y[3] * scale);
            uint2 r;
            r.x = *reinterpret_cast<uint32_t *>(&lo);
            r.y = *reinterpret_cast<uint32_t *>(&hi);
            *reinterpret_cast<uint2 *>(qkv + (size_t)t * cd + ch) = r;
        }
    }
}

md_status md_cuda_conv(const float *proj, int ldp, const float *conv_w, const float *state_in, float *state_out, __half *qkv,
                       int m, int cd, int Kd, int dk, cudaStream_t stream) {
    const dim3 grid(md_div_up((unsigned)cd, 128), md_div_up((unsigned)m, CONV_TOKENS));
    switch (dk) {
    case 32: return md_cuda_launch("conv_kernel<32>", conv_kernel<32>, grid, dim3(128), 0, stream, proj, ldp, conv_w, state_in, state_out, qkv, m, cd, Kd);
    case 64: return md_cuda_launch("conv_kernel<64>", conv_kernel<64>, grid, dim3(128), 0, stream, proj, ldp, conv_w, state_in, state_out, qkv, m, cd, Kd);
    case 128: return md_cuda_launch("conv_kernel<128>", conv_kernel<128>, grid, dim3(128), 0, stream, proj, ldp, conv_w, state_in, state_out, qkv, m, cd, Kd);
    default: return md_fail(MD_ERR_UNSUPPORTED, "prefill conv: dk = %d", dk);
    }
}
