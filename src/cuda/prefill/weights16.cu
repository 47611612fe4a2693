/*
 * weights16.cu — fp16 copies of bf16 weights for the prefill GEMMs:
 *   dst[i] = fp16(src[i])   (round to nearest; |w| < 2^-24 flushes to zero)
 * fp16 operands carry 3 more mantissa bits than bf16, so the activations fed
 * to the tensor cores (rounded to the operand type) lose 8x less: with bf16
 * activations the synthetic 0.8B ends ~4e-2 (rel L2) from the fp32 oracle,
 * over the 1e-2 bound. Grid-stride, 8 elements (16 bytes) per step.
 */
#include "cuda/common.cuh"
#include "cuda/prefill/prefill.cuh"

__global__ void to_f16_kernel(const __nv_bfloat16 *src, __half *dst, size_t n) {
    const size_t n8 = n / 8;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n8; i += stride) {
        float f[8];
        md_bf16x8_to_f32(reinterpret_cast<const uint4 *>(src)[i], f);
        uint4 o;
        __half2 *h = reinterpret_cast<__half2 *>(&o);
#pragma unroll
        for (int k = 0; k < 4; k++) h[k] = __floats2half2_rn(f[2 * k], f[2 * k + 1]);
        reinterpret_cast<uint4 *>(dst)[i] = o;
    }
    for (size_t i = n8 * 8 + blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride)
        dst[i] = __float2half_rn(__bfloat162float(src[i]));
}

md_status md_cuda_to_f16(const __nv_bfloat16 *src, __half *dst, size_t n, cudaStream_t stream) {
    if (n == 0) return MD_OK;
    size_t blocks = (n / 8 + 255) / 256;
    blocks = blocks < 1 ? 1 : blocks > 4096 ? 4096 : blocks;
    return md_cuda_launch("to_f16_kernel", to_f16_kernel, dim3((unsigned)blocks), dim3(256), 0, stream, src, dst, n);
}
