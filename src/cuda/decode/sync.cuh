/*
 * sync.cuh — the synchronisation primitives of the decode megakernel:
 * shared-memory mbarriers for the weight ring, the two ways of filling it
 * (Hopper: one bulk async copy per chunk; portable sm_80+: 16-byte cp.async
 * from every producer lane), tagged 64-bit words between CTAs,
 * the consumers' named barrier, and the spin watchdog.
 *
 * Memory-model rules followed here (see ../shared/design/DECODE.md): values
 * that other CTAs wait for travel in tagged 64-bit words (relaxed gpu-scope
 * stores and loads, below); anything else written in this launch and read by
 * another CTA (the KV rows) is published by a fence before a tagged word
 * that announces it (the argmax candidates), acquired by a fence after
 * reading that word, and read with plain or .cg loads or cp.async, never
 * through the read-only (.nc) path. (The attention partials and the argmax
 * candidates are tagged words themselves.)
 */
#ifndef MD_CUDA_DECODE_SYNC_CUH
#define MD_CUDA_DECODE_SYNC_CUH

#include <stdint.h>

#include "cuda/decode/decode.cuh"

__device__ __forceinline__ uint32_t md_smem_addr(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ unsigned long long md_globaltimer(void) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

/* Reports where a spin gave up (host-mapped memory) and stops the kernel. */
static __device__ __noinline__ void md_watchdog_fire(const md_decode_params &p, int what, int layer, int phase) {
    if (p.diag) {
        volatile int *d = p.diag;
        d[1] = (int)blockIdx.x;
        d[2] = what;
        d[3] = layer;
        d[4] = phase;
        d[5] = (int)(threadIdx.x / 32);
        __threadfence_system();
        d[0] = 1;
        __threadfence_system();
    }
    __trap();
}

/* The watchdog's clock, out of line (its code stays out of the wait loops,
 * which call it every few hundred spins): the first call of a wait starts the
 * clock (returns the time), a later one fires when more than p.watchdog_ns
 * have passed since. Returns the start. */
static __device__ __noinline__ unsigned long long md_watchdog_tick(const md_decode_params &p, unsigned long long t0, int what,
                                                                   int layer, int phase) {
    if (!p.watchdog_ns) return 0;
    const unsigned long long now = md_globaltimer();
    if (t0 == 0) return now;
    if (now - t0 > (unsigned long long)p.watchdog_ns) md_watchdog_fire(p, what, layer, phase);
    return t0;
}

/* ---------------------------------------------------------------- mbarriers */

__device__ __forceinline__ void md_mbar_init(uint64_t *bar, unsigned count) {
    asm volatile("mbarrier.init.shared.b64 [%0], %1;" ::"r"(md_smem_addr(bar)), "r"(count) : "memory");
}

__device__ __forceinline__ void md_mbar_arrive(uint64_t *bar) {
    [[maybe_unused]] uint64_t state;
    asm volatile("mbarrier.arrive.shared.b64 %0, [%1];" : "=l"(state) : "r"(md_smem_addr(bar)) : "memory");
}

/* True once the phase with this parity has completed. On sm_90 try_wait
 * suspends the thread for a while (hardware-chosen) before answering no, so a
 * waiting warp does not take issue slots from the consumer warps beside it. */
__device__ __forceinline__ bool md_mbar_test(uint64_t *bar, unsigned parity) {
    uint32_t ok;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(ok)
        : "r"(md_smem_addr(bar)), "r"(parity)
        : "memory");
#else
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.test_wait.parity.shared.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(ok)
        : "r"(md_smem_addr(bar)), "r"(parity)
        : "memory");
#endif
    return ok != 0;
}

/* Waits for the phase with the given parity to complete. */
__device__ __forceinline__ void md_mbar_wait(uint64_t *bar, unsigned parity, const md_decode_params &p, int what,
                                             int layer, int phase) {
    if (md_mbar_test(bar, parity)) return;
    unsigned long long t0 = 0;
    for (unsigned spins = 0;; spins++) {
        if (md_mbar_test(bar, parity)) return;
        if ((spins & 1023) == 1023) t0 = md_watchdog_tick(p, t0, what, layer, phase);
    }
}

/* ---------------------------------------------------------------- ring fills */

__device__ __forceinline__ uint64_t md_policy_evict_first(void) {
    uint64_t pol;
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
    return pol;
}

/* One bulk async copy of `bytes` from global src to shared dst, completing
 * that many bytes of the transaction count of the mbarrier at f. */
__device__ __forceinline__ void md_bulk_copy(uint32_t dst, const char *src, uint32_t bytes, uint32_t f, uint64_t pol) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;" ::"r"(dst),
                 "l"(src), "r"(bytes), "r"(f), "l"(pol)
                 : "memory");
}

/* Hopper: one thread issues a bulk async copy per row of the chunk (rows go
 * to a padded stride, so one copy cannot do); together they complete the
 * transaction count of `full`. A folded chunk (fold: nr <= 8) copies each
 * row's next `bytes` too, to stage row i + 8. */
__device__ __forceinline__ void md_ring_fill_rows_bulk(uint8_t *dst, const void *src, uint32_t nr, uint32_t bytes, uint32_t pitch,
                                                       uint32_t stride, bool fold, uint64_t *full, uint64_t pol) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(md_smem_addr(full)), "r"((fold ? 2 * nr : nr) * bytes)
                 : "memory");
    const uint32_t d = md_smem_addr(dst), f = md_smem_addr(full);
    const char *s = (const char *)src;
    /* (two loops, not one over both pieces, and not unrolled: the measured fastest shapes, session 11) */
#pragma unroll 1
    for (uint32_t i = 0; i < nr; i++) md_bulk_copy(d + i * stride, s + (size_t)i * pitch, bytes, f, pol);
    if (fold) /* each row's next piece, 8 stage rows further on */
#pragma unroll 1
        for (uint32_t i = 0; i < nr; i++) md_bulk_copy(d + (i + 8) * stride, s + (size_t)i * pitch + bytes, bytes, f, pol);
#else
    __trap(); /* the host never selects the Hopper path below sm_90 */
#endif
}

/* Portable: every producer lane copies its 16-byte pieces of every row with
 * cp.async and arrives on `full` when they land (full expects 32 arrivals);
 * folded as md_ring_fill_rows_bulk. */
__device__ __forceinline__ void md_ring_fill_rows_lanes(uint8_t *dst, const void *src, uint32_t nr, uint32_t bytes, uint32_t pitch,
                                                        uint32_t stride, bool fold, uint64_t *full, uint64_t pol, int lane) {
    const uint32_t d = md_smem_addr(dst), pieces = fold ? 2 * nr : nr;
    const char *s = (const char *)src;
    for (uint32_t k = 0; k < pieces; k++) {
        const uint32_t i = k < nr ? k : k - nr, h = k < nr ? 0 : 1; /* row, piece */
        for (uint32_t off = (uint32_t)lane * 16; off < bytes; off += 32 * 16)
            asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;" ::"r"(d + (i + 8 * h) * stride + off),
                         "l"(s + (size_t)i * pitch + h * bytes + off), "l"(pol)
                         : "memory");
    }
    asm volatile("cp.async.mbarrier.arrive.noinc.shared.b64 [%0];" ::"r"(md_smem_addr(full)) : "memory");
}

/* Requests a chunk into L2 ahead of its ring fill (Hopper: one bulk prefetch). */
__device__ __forceinline__ void md_prefetch_l2_bulk(const void *src, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(src), "r"(bytes) : "memory");
#endif
}

/* Portable: every producer lane requests its 128-byte lines. */
__device__ __forceinline__ void md_prefetch_l2_lanes(const void *src, uint32_t bytes, int lane) {
    const char *s = (const char *)src;
    for (uint32_t off = (uint32_t)lane * 128; off < bytes; off += 32 * 128) asm volatile("prefetch.global.L2 [%0];" ::"l"(s + off));
}

/* ---------------------------------------------------------------- tagged vectors
 * Activations that cross CTAs travel as 64-bit words {fp32 value, 32-bit tag}
 * written with one single-copy-atomic relaxed store; a reader polls the
 * words themselves until every tag is the one it expects, so the data and
 * its readiness arrive in one round trip (no separate flag, no fence). A tag
 * names (step, layer, phase), so stale words from an earlier phase never
 * match. */

/* Between two polls of stale words: every consumer thread of every CTA
 * polls, and re-polling at once keeps L2 busy with requests that slow the
 * very stores they wait for (MEGADELTA_POLL_NS). */
__device__ __forceinline__ void md_poll_backoff(const md_decode_params &p) {
    if (MD_DEC_INSTRUMENTED && p.poll_ns) __nanosleep((unsigned)p.poll_ns);
}

/* Whether a polled word's tag is the expected one (timing probe 4, in the
 * instrumented build: any tag, so no CTA waits for another). */
__device__ __forceinline__ bool md_ll_ok(const md_decode_params &p, unsigned long long x, unsigned tag) {
    return (unsigned)(x >> 32) == tag || (MD_DEC_INSTRUMENTED && (p.probe & 4));
}

__device__ __forceinline__ void md_ll_store(unsigned long long *w, float v, unsigned tag) {
    const unsigned long long x = ((unsigned long long)tag << 32) | __float_as_uint(v);
    asm volatile("st.relaxed.gpu.global.u64 [%0], %1;" ::"l"(w), "l"(x) : "memory");
}

/* Two adjacent tagged words (16-byte aligned) in one store. */
__device__ __forceinline__ void md_ll_store2(unsigned long long *w, float v0, float v1, unsigned tag) {
    const unsigned long long x0 = ((unsigned long long)tag << 32) | __float_as_uint(v0), x1 = ((unsigned long long)tag << 32) | __float_as_uint(v1);
    asm volatile("st.relaxed.gpu.global.v2.u64 [%0], {%1, %2};" ::"l"(w), "l"(x0), "l"(x1) : "memory");
}

__device__ __forceinline__ unsigned long long md_ll_load(const unsigned long long *w) {
    unsigned long long x;
    asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(x) : "l"(w) : "memory");
    return x;
}

/* Waits for one word to carry `tag`; returns its value. */
__device__ __forceinline__ float md_ll_wait(const unsigned long long *w, unsigned tag, unsigned long long x,
                                            const md_decode_params &p, int layer, int phase) {
    if (!md_ll_ok(p, x, tag)) {
        unsigned long long t0 = 0;
        for (unsigned spins = 0;; spins++) {
            md_poll_backoff(p);
            x = md_ll_load(w);
            if (md_ll_ok(p, x, tag)) break;
            if ((spins & 255) == 255) t0 = md_watchdog_tick(p, t0, 1, layer, phase);
        }
    }
    return __uint_as_float((unsigned)x);
}

/* Two adjacent tagged words (16-byte aligned) in one load; each word is
 * single-copy atomic on its own, which is all a tagged word needs. */
__device__ __forceinline__ ulonglong2 md_ll_load2(const unsigned long long *w) {
    ulonglong2 x;
    asm volatile("ld.relaxed.gpu.global.v2.u64 {%0, %1}, [%2];" : "=l"(x.x), "=l"(x.y) : "l"(w) : "memory");
    return x;
}

__device__ __forceinline__ void md_ll_spin_check(const md_decode_params &p, unsigned spins, unsigned long long &t0, int layer,
                                                 int phase) {
    if ((spins & 63) == 63) t0 = md_watchdog_tick(p, t0, 1, layer, phase);
}

#define MD_LL_BATCH 8 /* loads a thread keeps in flight while polling */

/* Polls the tagged words w[k] (k < n) until each carries tags[k]: every
 * load of a round is in flight at once, and a round re-reads only the words
 * still stale, so inputs that are ready cost one round trip however many
 * words there are. Values go to out[k]. */
template <int N>
__device__ __forceinline__ void md_ll_gather(const unsigned long long *const (&w)[N], const unsigned (&tags)[N], int n,
                                             float (&out)[N], const md_decode_params &p, int layer, int phase) {
    unsigned long long x[N];
#pragma unroll
    for (int k = 0; k < N; k++)
        if (k < n) x[k] = md_ll_load(w[k]);
    unsigned long long t0 = 0;
#pragma unroll 1
    for (unsigned spins = 0;; spins++) {
        unsigned stale = 0;
#pragma unroll
        for (int k = 0; k < N; k++)
            if (k < n) { /* (no branch on the tag: a stale value is overwritten by a later round) */
                out[k] = __uint_as_float((unsigned)x[k]);
                stale |= md_ll_ok(p, x[k], tags[k]) ? 0u : 1u << k;
            }
        if (!stale) return;
        md_poll_backoff(p);
#pragma unroll
        for (int k = 0; k < N; k++)
            if (stale >> k & 1) x[k] = md_ll_load(w[k]);
        md_ll_spin_check(p, spins, t0, layer, phase);
    }
}

/* Reads n tagged words of NS sources (src[s][0..n), each with its tag) into
 * dst[s] (any memory); each calling thread handles the pairs first, first +
 * stride, ... of every source (16-byte loads when all sources are 16-byte
 * aligned, else words), MD_LL_BATCH / NS loads per source in flight at once,
 * all polled together. */
template <int NS>
__device__ __forceinline__ void md_ll_read_n(const unsigned long long *const (&src)[NS], const unsigned (&tag)[NS],
                                             float *const (&dst)[NS], int n, int first, int stride, const md_decode_params &p,
                                             int layer, int phase) {
    constexpr int B = MD_LL_BATCH / NS;
    bool aligned = true;
#pragma unroll
    for (int s = 0; s < NS; s++) aligned = aligned && ((uintptr_t)src[s] & 15) == 0;
    const int units = aligned ? n / 2 : n;
#pragma unroll 1
    for (int j0 = first; j0 < units; j0 += B * stride) {
        if (aligned) {
            ulonglong2 x[NS][B];
#pragma unroll
            for (int k = 0; k < B; k++)
                if (j0 + k * stride < units)
#pragma unroll
                    for (int s = 0; s < NS; s++) x[s][k] = md_ll_load2(src[s] + 2 * (j0 + k * stride));
            unsigned long long t0 = 0;
#pragma unroll 1
            for (unsigned spins = 0;; spins++) {
                unsigned stale = 0;
#pragma unroll
                for (int k = 0; k < B; k++) {
                    const int j = j0 + k * stride;
                    if (j < units)
#pragma unroll
                        for (int s = 0; s < NS; s++) { /* (no branch on the tags: a stale pair is stored again by a later round) */
                            const bool ok = md_ll_ok(p, x[s][k].x, tag[s]) & md_ll_ok(p, x[s][k].y, tag[s]);
                            dst[s][2 * j] = __uint_as_float((unsigned)x[s][k].x);
                            dst[s][2 * j + 1] = __uint_as_float((unsigned)x[s][k].y);
                            stale |= ok ? 0u : 1u << (k * NS + s);
                        }
                }
                if (!stale) break;
                md_poll_backoff(p);
#pragma unroll
                for (int k = 0; k < B; k++)
#pragma unroll
                    for (int s = 0; s < NS; s++)
                        if (stale >> (k * NS + s) & 1) x[s][k] = md_ll_load2(src[s] + 2 * (j0 + k * stride));
                md_ll_spin_check(p, spins, t0, layer, phase);
            }
        } else {
            const unsigned long long *w[NS * B];
            unsigned tags[NS * B];
            float v[NS * B];
            int m = 0;
#pragma unroll
            for (int k = 0; k < B; k++) {
                const int j = j0 + k * stride;
#pragma unroll
                for (int s = 0; s < NS; s++) {
                    w[k * NS + s] = src[s] + (j < units ? j : 0);
                    tags[k * NS + s] = tag[s];
                }
                if (j < units) m = (k + 1) * NS;
            }
            md_ll_gather<NS * B>(w, tags, m, v, p, layer, phase);
#pragma unroll
            for (int k = 0; k < B; k++)
#pragma unroll
                for (int s = 0; s < NS; s++)
                    if (k * NS + s < m) dst[s][j0 + k * stride] = v[k * NS + s];
        }
    }
    if (aligned && (n & 1) && first == 0) /* the odd last word */
#pragma unroll
        for (int s = 0; s < NS; s++) dst[s][n - 1] = md_ll_wait(src[s] + n - 1, tag[s], md_ll_load(src[s] + n - 1), p, layer, phase);
}

/* Reads n tagged words src[0..n) into dst (see md_ll_read_n). */
static __device__ __noinline__ void md_ll_read(const unsigned long long *src, int n, unsigned tag, float *dst, int first, int stride,
                                           const md_decode_params &p, int layer, int phase) {
    const unsigned long long *const s[1] = {src};
    const unsigned t[1] = {tag};
    float *const d[1] = {dst};
    md_ll_read_n<1>(s, t, d, n, first, stride, p, layer, phase);
}

/* The consumer warps' barrier (the producer warp never joins it). */
__device__ __forceinline__ void md_consumer_sync(void) {
    asm volatile("bar.sync 1, %0;" ::"n"(MD_DEC_CONSUMER_WARPS * 32) : "memory");
}

#endif
