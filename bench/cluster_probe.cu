/*
 * cluster_probe.cu — measures what the decode megakernel's cluster plan
 * (bench/NOTES.md) depends on, on the GPU it runs on:
 *   1. how many thread-block clusters of 1..16 CTAs (one CTA per SM, the
 *      megakernel's shared memory) fit at once;
 *   2. whether a cooperative launch with cluster dimensions is accepted;
 *   3. latencies, in ns (SM clock from the device): a cluster barrier, a
 *      DSMEM ping-pong between two CTAs of a cluster, a global-memory
 *      ping-pong between CTAs of different clusters, and an all-CTA exchange
 *      of tagged words (every CTA publishes one word, every CTA polls all);
 *   4. (session 7) the push form: st.async into a peer's shared memory,
 *      completing bytes on the peer's mbarrier, so the receiver waits on
 *      its own mbarrier instead of polling: a ping-pong and an in-cluster
 *      exchange; and a DSMEM ping-pong with relaxed stores and polls (the
 *      tagged-word discipline inside a cluster).
 * Build: nvcc -arch=sm_90a -O3 -o cluster_probe bench/cluster_probe.cu
 */
#include <cstdio>
#include <cstdint>
#include <cuda_runtime.h>

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorString(e_)); return 1; } } while (0)

static __device__ __forceinline__ unsigned rank_in_cluster() {
    unsigned r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
    return r;
}
static __device__ __forceinline__ void cluster_sync() {
    asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}
static __device__ __forceinline__ uint32_t map_rank(const void *p, unsigned rank) {
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p), r;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(rank));
    return r;
}
/* A store into a peer's shared memory (addr, mapped) and a load of this
 * CTA's, at cluster scope: release / acquire, or relaxed. */
template <bool RELAXED>
static __device__ __forceinline__ void st_remote(uint32_t addr, unsigned v) {
    if (RELAXED) asm volatile("st.relaxed.cluster.shared::cluster.u32 [%0], %1;" ::"r"(addr), "r"(v) : "memory");
    else asm volatile("st.release.cluster.shared::cluster.u32 [%0], %1;" ::"r"(addr), "r"(v) : "memory");
}
template <bool RELAXED>
static __device__ __forceinline__ unsigned ld_local(const unsigned *p) {
    unsigned v;
    const uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    if (RELAXED) asm volatile("ld.relaxed.cluster.shared::cta.u32 %0, [%1];" : "=r"(v) : "r"(a) : "memory");
    else asm volatile("ld.acquire.cluster.shared::cta.u32 %0, [%1];" : "=r"(v) : "r"(a) : "memory");
    return v;
}
/* the push form: 4 bytes into a peer's shared memory (addr, mapped), the
 * peer's mbarrier (bar, mapped) counting them as completed transaction bytes */
static __device__ __forceinline__ void st_async_push(uint32_t addr, unsigned v, uint32_t bar) {
    asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.u32 [%0], %1, [%2];" ::"r"(addr), "r"(v), "r"(bar) : "memory");
}
static __device__ __forceinline__ void mbar_init(uint64_t *bar, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"((uint32_t)__cvta_generic_to_shared(bar)), "r"(count) : "memory");
}
/* this CTA's arrival on its own mbarrier, expecting `bytes` more transaction bytes this phase */
static __device__ __forceinline__ void mbar_arm(uint64_t *bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"((uint32_t)__cvta_generic_to_shared(bar)), "r"(bytes) : "memory");
}
static __device__ __forceinline__ void mbar_wait_cluster(uint64_t *bar, unsigned parity) {
    uint32_t ok = 0;
    while (!ok)
        asm volatile("{\n .reg .pred p;\n mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(ok)
                     : "r"((uint32_t)__cvta_generic_to_shared(bar)), "r"(parity)
                     : "memory");
}
static __device__ __forceinline__ void st_gpu(unsigned *p, unsigned v) {
    asm volatile("st.relaxed.gpu.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
static __device__ __forceinline__ unsigned ld_gpu(const unsigned *p) {
    unsigned v;
    asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

/* Cycles per DSMEM round trip between ranks 0 and 1 of a cluster (thread 0
 * of each; flag is this CTA's word the peer writes): release stores and
 * acquire polls, or relaxed ones (the tagged-word discipline in a cluster). */
template <bool RELAXED>
static __device__ long long dsmem_ping_pong(unsigned *flag, unsigned rk, int iters) {
    const uint32_t peer = map_rank(flag, rk ^ 1u);
    const long long t0 = clock64();
    for (int i = 1; i <= iters; i++) {
        if (rk != 0)
            while (ld_local<RELAXED>(flag) != (unsigned)i) {}
        st_remote<RELAXED>(peer, (unsigned)i);
        if (rk == 0)
            while (ld_local<RELAXED>(flag) != (unsigned)i) {}
    }
    return (clock64() - t0) / iters;
}

/* out[0]: cycles per cluster barrier; out[1]: DSMEM round trip; out[2]:
 * global round trip (CTA 0 <-> CTA G/2); out[3]: all-CTA tagged exchange
 * round; out[4]: cluster-only tagged exchange round (DSMEM stores); out[5]:
 * push ping-pong round trip (st.async + mbarrier); out[6]: in-cluster push
 * exchange round; out[7]: relaxed DSMEM ping-pong round trip. */
__global__ void probe(unsigned *glob, long long *out, int iters) {
    __shared__ unsigned flag[32];
    __shared__ unsigned tags[16];
    __shared__ unsigned pushed[16];
    __shared__ uint64_t bar_pp, bar_ex;
    const unsigned rk = rank_in_cluster();
    const int G = gridDim.x;
    if (threadIdx.x < 32) flag[threadIdx.x] = 0;
    if (threadIdx.x < 16) tags[threadIdx.x] = 0;
    cluster_sync();
    /* 1. cluster barrier */
    long long t0 = clock64();
    for (int i = 0; i < iters; i++) cluster_sync();
    long long t1 = clock64();
    if (blockIdx.x == 0 && threadIdx.x == 0) out[0] = (t1 - t0) / iters;
    /* 2. DSMEM ping-pong, ranks 0 and 1 of cluster 0 */
    if (blockIdx.x < 2 && threadIdx.x == 0) {
        const long long c = dsmem_ping_pong<false>(&flag[0], rk, iters);
        if (rk == 0) out[1] = c;
    }
    cluster_sync();
    /* 3. global ping-pong, CTA 0 <-> CTA G/2 */
    const int other = G / 2;
    if ((blockIdx.x == 0 || blockIdx.x == other) && threadIdx.x == 0) {
        unsigned *mine = glob + (blockIdx.x == 0 ? 0 : 32), *theirs = glob + (blockIdx.x == 0 ? 32 : 0);
        t0 = clock64();
        for (int i = 1; i <= iters; i++) {
            if (blockIdx.x == 0) {
                st_gpu(theirs, (unsigned)i);
                while (ld_gpu(mine) != (unsigned)i) {}
            } else {
                while (ld_gpu(mine) != (unsigned)i) {}
                st_gpu(theirs, (unsigned)i);
            }
        }
        t1 = clock64();
        if (blockIdx.x == 0) out[2] = (t1 - t0) / iters;
    }
    cluster_sync();
    /* 4. all-CTA exchange: CTA c publishes round i in word 64 + 32 c (own
     * line); warp 0 polls every CTA's word, lane l the CTAs l, l + 32, ... */
    unsigned *words = glob + 64;
    t0 = clock64();
    for (int i = 1; i <= iters / 10; i++) {
        if (threadIdx.x == 0) st_gpu(words + 32 * blockIdx.x, (unsigned)i);
        if (threadIdx.x < 32) {
            for (int c = threadIdx.x; c < G; c += 32)
                while ((int)(ld_gpu(words + 32 * c) - (unsigned)i) < 0) {}
            __syncwarp();
        }
        __syncthreads();
    }
    t1 = clock64();
    if (blockIdx.x == 0 && threadIdx.x == 0) out[3] = (t1 - t0) / (iters / 10);
    cluster_sync();
    /* 5. cluster-only exchange through DSMEM: rank r writes round i into
     * tags[r] of every CTA of its cluster; each polls its own tags */
    unsigned n = 0;
    asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(n));
    t0 = clock64();
    for (int i = 1; i <= iters; i++) {
        if (threadIdx.x < n) st_remote<false>(map_rank(&tags[rk], threadIdx.x), (unsigned)i);
        if (threadIdx.x < n)
            while ((int)(ld_local<false>(&tags[threadIdx.x]) - (unsigned)i) < 0) {}
        __syncthreads();
    }
    t1 = clock64();
    if (blockIdx.x == 0 && threadIdx.x == 0) out[4] = (t1 - t0) / iters;
    cluster_sync();
    /* 6. push ping-pong, ranks 0 and 1 of cluster 0: each arms its own
     * mbarrier for 4 bytes a round and waits on it; the peer's st.async
     * completes them */
    if (threadIdx.x == 0) {
        mbar_init(&bar_pp, 1);
        mbar_init(&bar_ex, 1);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    cluster_sync();
    if (blockIdx.x < 2 && threadIdx.x == 0) {
        const uint32_t pv = map_rank(&flag[1], rk ^ 1u), pb = map_rank(&bar_pp, rk ^ 1u);
        t0 = clock64();
        for (int i = 0; i < iters; i++) {
            mbar_arm(&bar_pp, 4);
            if (rk == 0) {
                st_async_push(pv, (unsigned)i + 1, pb);
                mbar_wait_cluster(&bar_pp, (unsigned)i & 1);
            } else {
                mbar_wait_cluster(&bar_pp, (unsigned)i & 1);
                st_async_push(pv, (unsigned)i + 1, pb);
            }
        }
        t1 = clock64();
        if (rk == 0) out[5] = (t1 - t0) / iters;
    }
    cluster_sync();
    /* 7. in-cluster push exchange: every rank pushes one word into every
     * other rank's pushed[rank] and waits for the n - 1 words pushed to it */
    t0 = clock64();
    for (int i = 0; i < iters; i++) {
        if (threadIdx.x == 0) mbar_arm(&bar_ex, 4 * (n - 1));
        if (threadIdx.x < n && threadIdx.x != rk)
            st_async_push(map_rank(&pushed[rk], threadIdx.x), (unsigned)i + 1, map_rank(&bar_ex, threadIdx.x));
        if (threadIdx.x == 0) mbar_wait_cluster(&bar_ex, (unsigned)i & 1);
        __syncthreads();
    }
    t1 = clock64();
    if (blockIdx.x == 0 && threadIdx.x == 0) out[6] = (t1 - t0) / iters;
    cluster_sync();
    /* 8. relaxed DSMEM ping-pong (the tagged-word discipline in a cluster) */
    if (blockIdx.x < 2 && threadIdx.x == 0) {
        const long long c = dsmem_ping_pong<true>(&flag[2], rk, iters);
        if (rk == 0) out[7] = c;
    }
    cluster_sync();
}

/* A launch of `probe` over `grid` CTAs (256 threads, smem bytes each) in
 * clusters of cs, cooperative or not; a[] holds its attributes. */
static cudaLaunchConfig_t cluster_config(cudaLaunchAttribute (&a)[2], int cs, int grid, size_t smem, bool cooperative) {
    cudaLaunchConfig_t cfg = {};
    a[0].id = cudaLaunchAttributeClusterDimension;
    a[0].val.clusterDim.x = cs;
    a[0].val.clusterDim.y = a[0].val.clusterDim.z = 1;
    a[1].id = cudaLaunchAttributeCooperative;
    a[1].val.cooperative = 1;
    cfg.gridDim = dim3(grid);
    cfg.blockDim = dim3(256);
    cfg.dynamicSmemBytes = smem;
    cfg.attrs = a;
    cfg.numAttrs = cooperative ? 2 : 1;
    return cfg;
}

/* How many clusters of cs CTAs of `probe` fit on the GPU at once; -1 when
 * the runtime cannot say. */
static int clusters_that_fit(int cs, size_t smem) {
    cudaLaunchAttribute a[2];
    const cudaLaunchConfig_t cfg = cluster_config(a, cs, cs, smem, false);
    int n = -1;
    if (cudaOccupancyMaxActiveClusters(&n, probe, &cfg) != cudaSuccess) {
        (void)cudaGetLastError();
        return -1;
    }
    return n;
}

int main() {
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    int clk_khz = 0;
    CK(cudaDeviceGetAttribute(&clk_khz, cudaDevAttrClockRate, 0));
    printf("%s: %d SMs, smem opt-in %zu B, clock %d MHz\n", prop.name, prop.multiProcessorCount, prop.sharedMemPerBlockOptin, clk_khz / 1000);
    const size_t smem = prop.sharedMemPerBlockOptin - 2048;
    CK(cudaFuncSetAttribute(probe, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    CK(cudaFuncSetAttribute(probe, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
    for (int cs = 1; cs <= 16; cs *= 2) {
        const int n = clusters_that_fit(cs, smem);
        printf("cluster size %2d: %3d clusters fit at once (%d CTAs)\n", cs, n, n * cs);
    }
    unsigned *glob;
    long long *out;
    CK(cudaMalloc(&glob, 1 << 20));
    CK(cudaMalloc(&out, 64));
    for (int cs = 2; cs <= 8; cs *= 2) {
        const int n = clusters_that_fit(cs, smem);
        if (n <= 0) continue;
        const int G = n * cs;
        cudaLaunchAttribute a[2];
        const cudaLaunchConfig_t cfg = cluster_config(a, cs, G, smem, true);
        CK(cudaMemset(glob, 0, 1 << 20));
        CK(cudaMemset(out, 0, 64));
        cudaError_t e = cudaLaunchKernelEx(&cfg, probe, glob, out, 2000);
        if (e == cudaSuccess) e = cudaDeviceSynchronize();
        if (e != cudaSuccess) {
            printf("cooperative launch, %d clusters of %d: %s\n", n, cs, cudaGetErrorString(e));
            (void)cudaGetLastError();
            continue;
        }
        long long h[8];
        CK(cudaMemcpy(h, out, sizeof h, cudaMemcpyDeviceToHost));
        const double ns = 1e6 / clk_khz;
        printf("cooperative launch, %d clusters of %d (%d CTAs): cluster barrier %.0f ns, DSMEM round trip %.0f ns, "
               "global round trip %.0f ns, all-CTA tagged exchange %.0f ns, in-cluster DSMEM exchange %.0f ns\n",
               n, cs, G, h[0] * ns, h[1] * ns, h[2] * ns, h[3] * ns, h[4] * ns);
        printf("  push form: st.async ping-pong %.0f ns, in-cluster push exchange %.0f ns; relaxed DSMEM ping-pong %.0f ns\n",
               h[5] * ns, h[6] * ns, h[7] * ns);
    }
    return 0;
}
