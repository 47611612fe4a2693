/*
 * rmsnorm.cu — zero-centred RMSNorm of the residual stream into the 16-bit
 * input of the next GEMM:
 *   out[t][i] = fp16(x[t][i] / sqrt(mean_i(x[t]^2) + eps) * (1 + w[i]))
 * x [rows][H] fp32, out [rows][H] fp16 (bf16 for the LM head, whose weights
 * are the bf16 embedding), H a multiple of 8. One warp per row;
 * the row stays in registers between the two passes when H <= 2048.
 */
#include "cuda/common.cuh"
#include "cuda/prefill/prefill.cuh"

#define RMS_MAX_V4 16 /* float4 per lane held in registers: H <= 2048; larger rows re-read */

__device__ __forceinline__ uint32_t rms_pack(float lo, float hi, __half *) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}
__device__ __forceinline__ uint32_t rms_pack(float lo, float hi, __nv_bfloat16 *) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

template <typename T>
__device__ __forceinline__ uint2 rms_scale4(float4 a, float4 g, float inv) {
    uint2 r;
    r.x = rms_pack(a.x * inv * (1.0f + g.x), a.y * inv * (1.0f + g.y), (T *)0);
    r.y = rms_pack(a.z * inv * (1.0f + g.z), a.w * inv * (1.0f + g.w), (T *)0);
    return r;
}

template <typename T>
__global__ void rmsnorm_kernel(const float *x, const float *w, T *out, int rows, int H, float eps) {
    const int t = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x & 31;
    if (t >= rows) return;
    const float4 *xr = reinterpret_cast<const float4 *>(x + (size_t)t * H);
    const int n4 = H / 4;
    float4 v[RMS_MAX_V4];
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < RMS_MAX_V4; k++) {
        const int i = lane + 32 * k;
        if (i < n4) {
            v[k] = xr[i];
            ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
        }
    }
    for (int i = lane + 32 * RMS_MAX_V4; i < n4; i += 32) {
        const float4 a = xr[i];
        ss += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w;
    }
    const float inv = rsqrtf(md_warp_sum(ss) / (float)H + eps);
    const float4 *w4 = reinterpret_cast<const float4 *>(w);
    uint2 *o = reinterpret_cast<uint2 *>(out + (size_t)t * H);
#pragma unroll
    for (int k = 0; k < RMS_MAX_V4; k++) {
        const int i = lane + 32 * k;
        if (i < n4) o[i] = rms_scale4<T>(v[k], w4[i], inv);
    }
    for (int i = lane + 32 * RMS_MAX_V4; i < n4; i += 32) o[i] = rms_scale4<T>(xr[i], w4[i], inv);
}

md_status md_cuda_rmsnorm(const float *x, const float *w, __half *out, int rows, int H, float eps, cudaStream_t stream) {
    if (rows <= 0) return MD_OK;
    return md_cuda_launch("rmsnorm_kernel", rmsnorm_kernel<__half>, dim3(md_div_up((unsigned)rows, 8)), dim3(256), 0, stream, x, w, out,
                          rows, H, eps);
}

md_status md_cuda_rmsnorm_bf16(const float *x, const float *w, __nv_bfloat16 *out, int rows, int H, float eps, cudaStream_t stream) {
    if (rows <= 0) return MD_OK;
    return md_cuda_launch("rmsnorm_kernel", rmsnorm_kernel<__nv_bfloat16>, dim3(md_div_up((unsigned)rows, 8)), dim3(256), 0, stream, x,
                          w, out, rows, H, eps);
}
