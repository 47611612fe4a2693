/*
 * mma.cuh — warp-level tensor-core building blocks of the prefill kernels
 * (sm_80+: ldmatrix, mma.sync m16n8k16 bf16 -> fp32, cp.async).
 *
 * Fragment layouts of mma.m16n8k16 (g = lane / 4, q = lane % 4):
 *   A 16x16 bf16 (4 regs): a0 (row g,   cols 2q..2q+1)   a1 (row g+8, cols 2q..)
 *                          a2 (row g,   cols 2q+8..)     a3 (row g+8, cols 2q+8..)
 *   B 16x8  bf16 (2 regs): b0 (k 2q..2q+1, col g)        b1 (k 2q+8.., col g)
 *   C 16x8  fp32 (4):      c0,c1 (row g, cols 2q, 2q+1)  c2,c3 (row g+8, same cols)
 * The loaders below fill these from shared memory tiles stored row-major with
 * a row stride (in elements) that keeps rows 16-byte aligned:
 *   A from src[m][k]                      ldsm_a        (ldmatrix)
 *   A from src[k][m] (A = src^T)          ldsm_a_trans  (ldmatrix.trans)
 *   two B n-tiles from src[n][k] (B = src^T, e.g. keys for Q K^T)   ldsm_b_nk
 *   two B n-tiles from src[k][n] (B = src,   e.g. values for P V)    ldsm_b_kn
 *   one B n-tile from src[k][n]                                      ldsm_b_kn1
 */
#ifndef MD_CUDA_PREFILL_MMA_CUH
#define MD_CUDA_PREFILL_MMA_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;
typedef __half f16;

__device__ __forceinline__ uint32_t md_smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

template <typename T>
__device__ __forceinline__ void md_ldsm_x4(uint32_t r[4], const T *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(md_smem_addr(p)));
}

template <typename T>
__device__ __forceinline__ void md_ldsm_x4_t(uint32_t r[4], const T *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(md_smem_addr(p)));
}

template <typename T>
__device__ __forceinline__ void md_ldsm_x2_t(uint32_t r[2], const T *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(md_smem_addr(p)));
}

/* d += a * b (16x8x16, bf16 in, fp32 accumulate) */
__device__ __forceinline__ void md_mma(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* The same with fp16 operands (same fragment layouts). */
__device__ __forceinline__ void md_mma_f16(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* A 16x16 at (m0, k0) of src[m][k] (stride ld elements). */
template <typename T>
__device__ __forceinline__ void md_ldsm_a(uint32_t a[4], const T *src, int ld, int m0, int k0, int lane) {
    md_ldsm_x4(a, src + (size_t)(m0 + (lane & 15)) * ld + k0 + (lane >> 4) * 8);
}

/* A 16x16 at (m0, k0) where A[m][k] = src[k][m]. */
template <typename T>
__device__ __forceinline__ void md_ldsm_a_trans(uint32_t a[4], const T *src, int ld, int m0, int k0, int lane) {
    const int r = lane & 7, mi = lane >> 3;
    md_ldsm_x4_t(a, src + (size_t)(k0 + r + (mi >> 1) * 8) * ld + m0 + (mi & 1) * 8);
}

/* B for n-tiles n0 and n0+8, k0..k0+15, where B[k][n] = src[n][k]:
 * b[0], b[1] for the first n-tile, b[2], b[3] for the second. */
template <typename T>
__device__ __forceinline__ void md_ldsm_b_nk(uint32_t b[4], const T *src, int ld, int n0, int k0, int lane) {
    const int r = lane & 7, mi = lane >> 3;
    md_ldsm_x4(b, src + (size_t)(n0 + r + (mi >> 1) * 8) * ld + k0 + (mi & 1) * 8);
}

/* B for n-tiles n0 and n0+8, k0..k0+15, where B[k][n] = src[k][n]. */
template <typename T>
__device__ __forceinline__ void md_ldsm_b_kn(uint32_t b[4], const T *src, int ld, int n0, int k0, int lane) {
    const int r = lane & 7, mi = lane >> 3;
    md_ldsm_x4_t(b, src + (size_t)(k0 + r + (mi & 1) * 8) * ld + n0 + (mi >> 1) * 8);
}

/* B for the single n-tile n0, k0..k0+15, where B[k][n] = src[k][n]. */
template <typename T>
__device__ __forceinline__ void md_ldsm_b_kn1(uint32_t b[2], const T *src, int ld, int n0, int k0, int lane) {
    const int r = lane & 7, mi = (lane >> 3) & 1;
    md_ldsm_x2_t(b, src + (size_t)(k0 + r + mi * 8) * ld + n0);
}

__device__ __forceinline__ uint32_t md_pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

__device__ __forceinline__ uint32_t md_pack_f16(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

/* cp.async of 16 bytes; src_bytes = 0 zero-fills the destination. */
__device__ __forceinline__ void md_cp_async16(void *dst, const void *src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(md_smem_addr(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void md_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void md_cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/* Copies rows [0, rows) of a [rows][cols] 16-bit tile (cols a multiple of 8)
 * from global (row stride gld elements) into shared memory (row stride sld)
 * with cp.async, zero-filling rows r >= valid. All threads of the block take part. */
template <typename T>
__device__ __forceinline__ void md_tile_load(T *dst, int sld, const T *src, size_t gld, int rows, int cols, int valid,
                                                  int tid, int nthreads) {
    const int per_row = cols / 8;
    for (int i = tid; i < rows * per_row; i += nthreads) {
        const int r = i / per_row, c = (i % per_row) * 8;
        const bool ok = r < valid;
        md_cp_async16(dst + (size_t)r * sld + c, ok ? (const void *)(src + (size_t)r * gld + c) : (const void *)src, ok ? 16 : 0);
    }
}

#endif
