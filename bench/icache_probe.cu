/*
 * icache_probe.cu — how much a megakernel pays for running more code than
 * the SM's instruction caches hold. One warp per SM walks K distinct
 * straight-line code blocks (8 KB of SASS each: 512 dependent FADDs with
 * distinct immediates, so nothing folds) in a loop; per block we time the
 * walk once warm (the same block twice in a row) and in the cycle over K
 * blocks. If the cycle's footprint (K x 8 KB) exceeds an instruction cache,
 * every block misses on every lap and its time jumps; the jump per 8 KB is
 * the miss cost. Optionally every other SM streams HBM meanwhile (like the
 * megakernel's weight stream), so misses that go to L2 pay a loaded L2.
 * Build: nvcc -arch=sm_90a -O3 -o icache_probe bench/icache_probe.cu
 */
#include <cstdio>
#include <cuda_runtime.h>

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorString(e_)); return 1; } } while (0)

#define ADD1(i) asm volatile("add.f32 %0, %0, 0f3F8" #i "00;" : "+f"(x));
#define ADD16(i) ADD1(i##0) ADD1(i##1) ADD1(i##2) ADD1(i##3) ADD1(i##4) ADD1(i##5) ADD1(i##6) ADD1(i##7) \
                 ADD1(i##8) ADD1(i##9) ADD1(i##A) ADD1(i##B) ADD1(i##C) ADD1(i##D) ADD1(i##E) ADD1(i##F)
#define ADD256(i) ADD16(i##0) ADD16(i##1) ADD16(i##2) ADD16(i##3) ADD16(i##4) ADD16(i##5) ADD16(i##6) ADD16(i##7) \
                  ADD16(i##8) ADD16(i##9) ADD16(i##A) ADD16(i##B) ADD16(i##C) ADD16(i##D) ADD16(i##E) ADD16(i##F)

/* 512 dependent adds; ID makes each instantiation's immediates differ (the
 * low mantissa byte), so the blocks are distinct code. */
template <int ID>
__device__ __noinline__ float block(float x) {
    asm volatile("add.f32 %0, %0, %1;" : "+f"(x) : "f"((float)ID));
    ADD256(0) ADD256(1)
    return x;
}

template <int... I>
struct table {
    static __device__ float run(int k, float x) {
        float r = x;
        int n = 0;
        ((n++ == k ? (r = block<I>(x), 0) : 0), ...);
        return r;
    }
};
typedef table<0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
              32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47> blocks;
#define NBLK 48

/* CTA 0, warp 0: laps over K blocks; out[0] = cycles per block in the
 * cycle (mean over the last laps), out[1] = cycles per block warm (each
 * block run twice, the second timed). Other CTAs: stream `src` if given. */
__global__ void probe(int K, int laps, float *out, const float4 *src, size_t n4, float *sink) {
    if (blockIdx.x == 0) {
        if (threadIdx.x >= 32) return;
        float x = threadIdx.x;
        long long cyc = 0;
        for (int l = 0; l < laps; l++) {
            const long long t0 = clock64();
            for (int k = 0; k < K; k++) x = blocks::run(k, x);
            const long long t1 = clock64();
            if (l >= 2) cyc += t1 - t0;
        }
        long long warm = 0;
        for (int k = 0; k < K; k++) {
            x = blocks::run(k, x);
            const long long t0 = clock64();
            x = blocks::run(k, x);
            warm += clock64() - t0;
        }
        if (threadIdx.x == 0) {
            out[0] = (float)cyc / (float)((laps - 2) * K);
            out[1] = (float)warm / (float)K;
        }
        if (x == 12345.0f) sink[0] = x;
        asm volatile("st.global.release.gpu.u32 [%0], 1;" ::"l"(sink + 1));
    } else if (src) {
        float4 acc = make_float4(0, 0, 0, 0);
        volatile unsigned *done = reinterpret_cast<volatile unsigned *>(sink + 1);
        size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
        for (unsigned it = 1;; it++, i += (size_t)gridDim.x * blockDim.x) {
            if (i >= n4) i %= n4;
            const float4 v = __ldcs(src + i);
            acc.x += v.x;
            if ((it & 255) == 0 && *done) break;
        }
        if (acc.x == 12345.0f) sink[2] = acc.x;
    }
}

int main() {
    setvbuf(stdout, NULL, _IONBF, 0);
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    int khz = 0;
    CK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0));
    printf("%s, %d SMs, %d MHz; code blocks of 8 KB SASS, 513 dependent FADDs each\n", prop.name, prop.multiProcessorCount, khz / 1000);
    float *out, *sink;
    float4 *src;
    const size_t bytes = (size_t)1 << 30;
    CK(cudaMalloc(&out, 64));
    CK(cudaMalloc(&sink, 64));
    CK(cudaMalloc(&src, bytes));
    CK(cudaMemset(src, 0, bytes));
    const int Ks[] = {1, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 32, 40, 48};
    const int smem = 150 * 1024; /* one CTA per SM: no streaming CTA shares the probe's SM */
    CK(cudaFuncSetAttribute(probe, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    for (int load = 0; load < 2; load++) {
        printf("%s\n", load ? "with the other SMs streaming HBM:" : "alone:");
        for (int K : Ks) {
            CK(cudaMemset(sink, 0, 64));
            probe<<<load ? prop.multiProcessorCount : 1, 256, smem>>>(K, 12, out, load ? src : nullptr, bytes / 16, sink);
            CK(cudaDeviceSynchronize());
            float h[2];
            CK(cudaMemcpy(h, out, 8, cudaMemcpyDeviceToHost));
            printf("  footprint %4d KB: %7.0f cycles per block in the cycle, %6.0f warm (%+.2f us per 8 KB block)\n", K * 8, h[0], h[1],
                   (h[0] - h[1]) / (khz / 1000.0));
        }
    }
    return 0;
}
