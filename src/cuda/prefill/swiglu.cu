/*
 * swiglu.cu — the MLP activation between the gate/up and down GEMMs:
 *   act[t][i] = fp16(silu(gu[t][2i]) * gu[t][2i+1])
 * gu [rows][ldgu] fp32 holds interleaved gate/up columns (w_gu's row order),
 * act [rows][I] fp16. Each thread handles two i (one float4 in, 4 bytes out).
 */
#include "cuda/common.cuh"
#include "cuda/prefill/prefill.cuh"

__global__ void swiglu_kernel(const float *gu, int ldgu, __half *act, int rows, int I) {
    const int half = I / 2;
    const size_t n = (size_t)rows * half;
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
        const size_t t = k / half, i = k % half;
        const float4 v = *reinterpret_cast<const float4 *>(gu + t * ldgu + 4 * i);
        __half2 r = __floats2half2_rn(md_silu(v.x) * v.y, md_silu(v.z) * v.w);
        *reinterpret_cast<__half2 *>(act + t * I + 2 * i) = r;
    }
}

md_status md_cuda_swiglu(const float *gu, int ldgu, __half *act, int rows, int I, cudaStream_t stream) {
    const size_t n = (size_t)rows * (I / 2);
    unsigned blocks = (unsigned)((n + 255) / 256);
    if (blocks > 8192) blocks = 8192;
    return md_cuda_launch("swiglu_kernel", swiglu_kernel, dim3(blocks), dim3(256), 0, stream, gu, ldgu, act, rows, I);
}
