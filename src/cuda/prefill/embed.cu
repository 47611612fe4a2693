/*
 * embed.cu — the prefill's first op: the residual stream of the piece,
 *   h[t][:] = fp32(embed[tok[t]][:])      embed [V][H] bf16, h [m][H] fp32.
 * One warp per token, 16-byte loads.
 */
#include "cuda/common.cuh"
#include "cuda/prefill/prefill.cuh"

__global__ void embed_kernel(const int32_t *tok, const __nv_bfloat16 *embed, float *h, int m, int H) {
    const int t = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x & 31;
    if (t >= m) return;
    const uint4 *src = reinterpret_cast<const uint4 *>(embed + (size_t)tok[t] * H);
    float4 *dst = reinterpret_cast<float4 *>(h + (size_t)t * H);
    for (int i = lane; i < H / 8; i += 32) {
        float f[8];
        md_bf16x8_to_f32(src[i], f);
        dst[2 * i] = make_float4(f[0], f[1], f[2], f[3]);
        dst[2 * i + 1] = make_float4(f[4], f[5], f[6], f[7]);
    }
}

md_status md_cuda_embed(const int32_t *tok, const __nv_bfloat16 *embed, float *h, int m, int H, cudaStream_t stream) {
    return md_cuda_launch("embed_kernel", embed_kernel, dim3(md_div_up((unsigned)m, 8)), dim3(256), 0, stream, tok, embed, h, m, H);
}
