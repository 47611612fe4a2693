/*
 * common.cuh — what every CUDA file of the backend shares: the one check
 * macro for CUDA calls (records a message and returns md_status), the one
 * launch helper, bf16 helpers and warp reductions.
 */
#ifndef MD_CUDA_COMMON_CUH
#define MD_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/status.h"

/* Evaluates a CUDA runtime call; on failure records "<what>: <cuda error>"
 * and returns MD_ERR_DEVICE (or MD_ERR_OUT_OF_MEMORY) from the caller. */
#define MD_CUDA_CHECK(call)                                                                     \
    do {                                                                                        \
        cudaError_t e_ = (call);                                                                \
        if (e_ != cudaSuccess) return md_cuda_fail(e_, #call, __FILE__, __LINE__);              \
    } while (0)

/* The same inside a function with a `fail` label and an `st` variable. */
#define MD_CUDA_TRY(call)                                                                       \
    do {                                                                                        \
        cudaError_t e_ = (call);                                                                \
        if (e_ != cudaSuccess) {                                                                \
            st = md_cuda_fail(e_, #call, __FILE__, __LINE__);                                   \
            goto fail;                                                                          \
        }                                                                                       \
    } while (0)

static inline md_status md_cuda_fail(cudaError_t e, const char *what, const char *file, int line) {
    return md_fail(e == cudaErrorMemoryAllocation ? MD_ERR_OUT_OF_MEMORY : MD_ERR_DEVICE, "CUDA error in %s (%s:%d): %s",
                   what, file, line, cudaGetErrorString(e));
}

/* Every kernel launch goes through here: launches, then checks the launch. */
template <typename... KArgs, typename... Args>
static inline md_status md_cuda_launch(const char *name, void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
                                       cudaStream_t stream, Args... args) {
    kernel<<<grid, block, smem, stream>>>(args...);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return md_fail(MD_ERR_DEVICE, "launch of %s failed: %s", name, cudaGetErrorString(e));
    return MD_OK;
}

static inline unsigned md_div_up(unsigned a, unsigned b) { return (a + b - 1) / b; }

/* An integer from the environment (debug and tuning knobs), or def when unset or not a number. */
static inline long md_env_long(const char *name, long def) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    long x = strtol(v, &end, 10);
    return *end ? def : x;
}

__device__ __forceinline__ float md_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float md_warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float md_silu(float x) { return x / (1.0f + __expf(-x)); }
__device__ __forceinline__ float md_sigmoid(float x) { return 1.0f / (1.0f + __expf(-x)); }
__device__ __forceinline__ float md_softplus(float x) { return x > 20.0f ? x : log1pf(__expf(x)); }

/* 8 bf16 (one 16-byte load) widened to fp32. */
__device__ __forceinline__ void md_bf16x8_to_f32(uint4 v, float out[8]) {
    const __nv_bfloat162 *p = reinterpret_cast<const __nv_bfloat162 *>(&v);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 f = __bfloat1622float2(p[i]);
        out[2 * i] = f.x;
        out[2 * i + 1] = f.y;
    }
}

#endif
