/*
 * test_prefill_ops.cu — the prefill's kernels one by one against plain CPU
 * references in double precision, on random inputs (exactly representable
 * in the 16-bit type the kernel reads), so that a failure names the op:
 *   conv          causal conv + SiLU + L2 norms, and the conv state after the piece
 *   delta rule    delta_prep + delta_scan + delta_out (+ gated RMSNorm) vs the
 *                 token-by-token recurrence: outputs and the final state
 *   qk_norm_rope  q/k norms, RoPE, the K/V cache writes
 *   attention     causal GQA attention with the output gate, over a cache
 *                 whose unwritten tail is NaN (must never be read); one and
 *                 two pipeline stages; unsplit and split K/V ranges
 * Tolerances: rel L2 <= 2e-2 on 16-bit outputs, 1e-2 on the fp32 state.
 * Every config covers pieces shorter than, equal to and longer than a chunk.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/common.cuh"
#include "cuda/prefill/prefill.cuh"
extern "C" {
#include "test_util.h"
}

static uint64_t g_rng = 0x243f6a8885a308d3ull;
static double urand(void) { /* [0, 1) */
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}
static float nrand(void) { return (float)(sqrt(-2.0 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand())); }
static float bf(float x) { return __bfloat162float(__float2bfloat16(x)); }

#define CK(call)                                                                        \
    do {                                                                                \
        cudaError_t e_ = (call);                                                        \
        if (e_ != cudaSuccess) {                                                        \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

template <typename T>
static T *dev_copy(const T *h, size_t n) {
    T *d = NULL;
    CK(cudaMalloc(&d, n * sizeof(T) + 16));
    if (h) CK(cudaMemcpy(d, h, n * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}
template <typename T>
static void host_copy(T *h, const T *d, size_t n) {
    CK(cudaMemcpy(h, d, n * sizeof(T), cudaMemcpyDeviceToHost));
}
static __half *dev_f16(const float *h, size_t n) {
    __half *t = (__half *)malloc(n * 2);
    for (size_t i = 0; i < n; i++) t[i] = __float2half_rn(h[i]);
    __half *d = dev_copy(t, n);
    free(t);
    return d;
}
static void bf16_to_f32(const __nv_bfloat16 *d, float *h, size_t n) {
    __nv_bfloat16 *t = (__nv_bfloat16 *)malloc(n * 2);
    host_copy(t, d, n);
    for (size_t i = 0; i < n; i++) h[i] = __bfloat162float(t[i]);
    free(t);
}
static void f16_to_f32(const __half *d, float *h, size_t n) {
    __half *t = (__half *)malloc(n * 2);
    host_copy(t, d, n);
    for (size_t i = 0; i < n; i++) h[i] = __half2float(t[i]);
    free(t);
}
static float hf(float x) { return __half2float(__float2half_rn(x)); }

static double rel_l2(const float *out, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(out[i])) return INFINITY;
        num += (out[i] - ref[i]) * (out[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static void report(const char *what, double err, double tol) {
    fprintf(stderr, "  %-58s rel L2 %.3e %s\n", what, err, err <= tol ? "ok" : "FAIL");
    CHECK_MSG(err <= tol, "%s: rel L2 %.3e > %.1e", what, err, tol);
}

static double silu(double x) { return x / (1.0 + exp(-x)); }

/* ---------------------------------------------------------------- conv */

static void test_conv(int m, int Hk, int Hv, int dk, int dv) {
    const int Kd = Hk * dk, Vd = Hv * dv, cd = 2 * Kd + Vd, ldp = cd + 8;
    float *proj = (float *)malloc((size_t)m * ldp * 4), *cw = (float *)malloc((size_t)cd * 4 * 4), *st = (float *)malloc((size_t)cd * 3 * 4);
    for (size_t i = 0; i < (size_t)m * ldp; i++) proj[i] = nrand();
    for (int i = 0; i < cd * 4; i++) cw[i] = 0.5f * nrand();
    for (int i = 0; i < cd * 3; i++) st[i] = nrand();
    float *dp = dev_copy(proj, (size_t)m * ldp), *dw = dev_copy(cw, (size_t)cd * 4), *ds = dev_copy(st, (size_t)cd * 3);
    float *dso = dev_copy<float>(NULL, (size_t)cd * 3);
    __half *dq = dev_copy<__half>(NULL, (size_t)m * cd);
    if (md_cuda_conv(dp, ldp, dw, ds, dso, dq, m, cd, Kd, dk, 0) != MD_OK) fprintf(stderr, "conv: %s\n", md_last_error());
    CK(cudaDeviceSynchronize());
    float *out = (float *)malloc((size_t)m * cd * 4), *so = (float *)malloc((size_t)cd * 3 * 4);
    f16_to_f32(dq, out, (size_t)m * cd);
    host_copy(so, dso, (size_t)cd * 3);
    double *ref = (double *)malloc((size_t)m * cd * 8), sref[1];
    for (int t = 0; t < m; t++) {
        for (int ch = 0; ch < cd; ch++) {
            double acc = 0;
            for (int j = 0; j < 4; j++) {
                const int tt = t - 3 + j;
                const double u = tt >= 0 ? proj[(size_t)tt * ldp + ch] : st[ch * 3 + 3 + tt];
                acc += cw[ch * 4 + j] * u;
            }
            ref[(size_t)t * cd + ch] = silu(acc);
        }
        for (int hh = 0; hh < 2 * Hk; hh++) {
            double ss = 0;
            double *x = ref + (size_t)t * cd + hh * dk;
            for (int i = 0; i < dk; i++) ss += x[i] * x[i];
            const double sc = 1.0 / sqrt(ss + 1e-6) / (hh < Hk ? sqrt((double)dk) : 1.0);
            for (int i = 0; i < dk; i++) x[i] *= sc;
        }
    }
    double worst = 0;
    for (int ch = 0; ch < cd; ch++)
        for (int j = 0; j < 3; j++) {
            const int tt = m - 3 + j;
            const double e = tt >= 0 ? proj[(size_t)tt * ldp + ch] : st[ch * 3 + 3 + tt];
            worst = fmax(worst, fabs(so[ch * 3 + j] - e));
        }
    (void)sref;
    char name[128];
    snprintf(name, sizeof name, "conv m=%d Hk=%d Hv=%d dk=%d dv=%d", m, Hk, Hv, dk, dv);
    report(name, rel_l2(out, ref, (size_t)m * cd), 1e-2);
    CHECK_MSG(worst == 0.0, "conv state after the piece differs by %g", worst);
    free(proj), free(cw), free(st), free(out), free(so), free(ref);
    cudaFree(dp), cudaFree(dw), cudaFree(ds), cudaFree(dso), cudaFree(dq);
}

/* ---------------------------------------------------------------- delta rule */

static void test_delta(int m, int Hk, int Hv, int dk, int dv) {
    const int Kd = Hk * dk, Vd = Hv * dv, cd = 2 * Kd + Vd, ldp = cd + Vd + 2 * Hv + 6;
    const int nch = (m + 63) / 64;
    const float eps = 1e-6f;
    /* post-conv q (normed, scaled), k (normed), v; fp16-exact */
    float *qkv = (float *)malloc((size_t)m * cd * 4);
    for (int t = 0; t < m; t++) {
        float *r = qkv + (size_t)t * cd;
        for (int i = 0; i < cd; i++) r[i] = nrand();
        for (int hh = 0; hh < 2 * Hk; hh++) {
            double ss = 0;
            for (int i = 0; i < dk; i++) ss += (double)r[hh * dk + i] * r[hh * dk + i];
            const double sc = 1.0 / sqrt(ss) / (hh < Hk ? sqrt((double)dk) : 1.0);
            for (int i = 0; i < dk; i++) r[hh * dk + i] = (float)(r[hh * dk + i] * sc);
        }
        for (int i = 0; i < cd; i++) r[i] = hf(r[i]);
    }
    float *proj = (float *)malloc((size_t)m * ldp * 4);
    for (size_t i = 0; i < (size_t)m * ldp; i++) proj[i] = nrand();
    float A_log[64], dt_bias[64], gn[128];
    for (int h = 0; h < Hv; h++) A_log[h] = (float)(log(0.5 + 4 * urand())), dt_bias[h] = -3.0f + nrand() * 0.5f; /* decays near 0.9 */
    for (int j = 0; j < dv; j++) gn[j] = 0.5f + (float)urand();
    float *S0 = (float *)malloc((size_t)Hv * dv * dk * 4); /* decode layout [h][j][i] */
    for (size_t i = 0; i < (size_t)Hv * dv * dk; i++) S0[i] = 0.3f * nrand();

    md_delta_args a;
    memset(&a, 0, sizeof a);
    a.m = m, a.n_chunks = nch, a.Hk = Hk, a.Hv = Hv, a.Kd = Kd, a.Vd = Vd, a.cd = cd;
    a.qkv = dev_f16(qkv, (size_t)m * cd);
    a.proj = dev_copy(proj, (size_t)m * ldp);
    a.ldp = ldp;
    a.A_log = dev_copy(A_log, Hv), a.dt_bias = dev_copy(dt_bias, Hv), a.gnorm = dev_copy(gn, dv);
    a.eps = eps;
    a.G = dev_copy<float>(NULL, (size_t)Hv * nch * 64);
    a.W = dev_copy<__half>(NULL, (size_t)nch * Hv * 64 * dk);
    a.U = dev_copy<float>(NULL, (size_t)nch * Hv * 64 * dv);
    a.S = dev_copy<__half>(NULL, (size_t)nch * Hv * dk * dv);
    a.Vn = dev_copy<__half>(NULL, (size_t)nch * Hv * 64 * dv);
    a.state = dev_copy(S0, (size_t)Hv * dv * dk);
    a.out = dev_copy<__half>(NULL, (size_t)m * Vd);
    CK(cudaMemset(a.out, 0xff, (size_t)m * Vd * 2));
    md_status st = md_cuda_delta_prep(&a, dk, dv, 0);
    if (st == MD_OK) st = md_cuda_delta_scan(&a, dk, dv, 0);
    if (st == MD_OK) st = md_cuda_delta_out(&a, dk, dv, 0);
    if (st != MD_OK) fprintf(stderr, "delta: %s\n", md_last_error());
    CK(cudaDeviceSynchronize());
    float *out = (float *)malloc((size_t)m * Vd * 4), *S1 = (float *)malloc((size_t)Hv * dv * dk * 4);
    f16_to_f32(a.out, out, (size_t)m * Vd);
    host_copy(S1, a.state, (size_t)Hv * dv * dk);

    /* reference: the recurrence, token by token */
    double *ref = (double *)malloc((size_t)m * Vd * 8), *Sr = (double *)malloc((size_t)Hv * dv * dk * 8);
    for (size_t i = 0; i < (size_t)Hv * dv * dk; i++) Sr[i] = S0[i];
    double o[128];
    for (int t = 0; t < m; t++) {
        const float *r = qkv + (size_t)t * cd, *pr = proj + (size_t)t * ldp;
        for (int h = 0; h < Hv; h++) {
            const int kh = h / (Hv / Hk);
            const float *q = r + kh * dk, *k = r + Kd + kh * dk, *v = r + 2 * Kd + h * dv;
            const double beta = 1.0 / (1.0 + exp(-(double)pr[cd + Vd + h]));
            const double x = (double)pr[cd + Vd + Hv + h] + dt_bias[h];
            const double gg = -exp((double)A_log[h]) * (x > 20 ? x : log1p(exp(x)));
            double *S = Sr + (size_t)h * dv * dk; /* [j][i] */
            for (int j = 0; j < dv; j++) {
                double mm = 0;
                for (int i = 0; i < dk; i++) mm += (S[j * dk + i] *= exp(gg)) * k[i];
                const double dl = beta * (v[j] - mm);
                double oo = 0;
                for (int i = 0; i < dk; i++) oo += (S[j * dk + i] += k[i] * dl) * q[i];
                o[j] = oo;
            }
            double ss = 0;
            for (int j = 0; j < dv; j++) ss += o[j] * o[j];
            const double inv = 1.0 / sqrt(ss / dv + eps);
            for (int j = 0; j < dv; j++) ref[(size_t)t * Vd + h * dv + j] = o[j] * inv * gn[j] * silu(pr[cd + h * dv + j]);
        }
    }
    char name[128];
    snprintf(name, sizeof name, "delta rule out   m=%d Hk=%d Hv=%d dk=%d dv=%d", m, Hk, Hv, dk, dv);
    report(name, rel_l2(out, ref, (size_t)m * Vd), 2e-2);
    snprintf(name, sizeof name, "delta rule state m=%d Hk=%d Hv=%d dk=%d dv=%d", m, Hk, Hv, dk, dv);
    report(name, rel_l2(S1, Sr, (size_t)Hv * dv * dk), 1e-2);
    free(qkv), free(proj), free(S0), free(out), free(S1), free(ref), free(Sr);
    cudaFree((void *)a.qkv), cudaFree((void *)a.proj), cudaFree((void *)a.A_log), cudaFree((void *)a.dt_bias), cudaFree((void *)a.gnorm);
    cudaFree(a.G), cudaFree(a.W), cudaFree(a.U), cudaFree(a.S), cudaFree(a.Vn), cudaFree(a.state), cudaFree(a.out);
}

/* ---------------------------------------------------------------- attention */

static void test_attention(int m, int pos, int Hq, int Hkv, int D, int R) {
    const int qd = Hq * D, kvd = Hkv * D, ldp = 2 * qd + 2 * kvd, n_ctx = pos + m + 40;
    const float eps = 1e-6f;
    float *proj = (float *)malloc((size_t)m * ldp * 4), *qn = (float *)malloc(D * 4), *kn = (float *)malloc(D * 4);
    float *inv_freq = (float *)malloc(R / 2 * 4);
    for (size_t i = 0; i < (size_t)m * ldp; i++) proj[i] = nrand();
    for (int i = 0; i < D; i++) qn[i] = 0.3f * nrand(), kn[i] = 0.3f * nrand();
    for (int i = 0; i < R / 2; i++) inv_freq[i] = 1.0f / powf(1e7f, (float)(2 * i) / (float)R);
    /* cache: earlier positions random, the rest NaN until the kernel writes them */
    __nv_bfloat16 *kc = (__nv_bfloat16 *)malloc((size_t)n_ctx * kvd * 2), *vc = (__nv_bfloat16 *)malloc((size_t)n_ctx * kvd * 2);
    memset(kc, 0xff, (size_t)n_ctx * kvd * 2);
    memset(vc, 0xff, (size_t)n_ctx * kvd * 2);
    for (size_t i = 0; i < (size_t)pos * kvd; i++) kc[i] = __float2bfloat16(nrand()), vc[i] = __float2bfloat16(nrand());
    float *dproj = dev_copy(proj, (size_t)m * ldp), *dqn = dev_copy(qn, D), *dkn = dev_copy(kn, D), *dif = dev_copy(inv_freq, R / 2);
    __nv_bfloat16 *dkc = dev_copy(kc, (size_t)n_ctx * kvd), *dvc = dev_copy(vc, (size_t)n_ctx * kvd);
    __nv_bfloat16 *dq = dev_copy<__nv_bfloat16>(NULL, (size_t)m * qd);
    __half *dout = dev_copy<__half>(NULL, (size_t)m * qd);
    md_status st = md_cuda_qk_norm_rope(dproj, ldp, dqn, dkn, dif, dq, dkc, dvc, m, pos, Hq, Hkv, D, R, eps, 0);
    md_attn_args a;
    memset(&a, 0, sizeof a);
    a.m = m, a.pos = pos, a.Hq = Hq, a.Hkv = Hkv, a.qd = qd, a.kvd = kvd;
    a.q = dq, a.k = dkc, a.v = dvc, a.proj = dproj, a.ldp = ldp, a.out = dout;
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    const int stages = md_cuda_attention_stages(D, prop.sharedMemPerBlockOptin);
    /* both pipeline depths; unsplit, split as prefill.cu would, split into 2-tile pieces */
    const int tps_list[3] = {1 << 30, md_cuda_attention_split(D, m, pos, Hq, 2 * prop.multiProcessorCount), 2};
    for (int run = 0; run < 2 * 3 && st == MD_OK; run++) {
        const int sg = stages - run / 3, tps = tps_list[run % 3];
        if (sg < 1) break;
        a.tiles_per_split = tps;
        const int parts = md_cuda_attention_parts(D, m, pos, Hq, tps);
        a.part = parts > 0 ? dev_copy<float>(NULL, (size_t)parts * 64 * (D + 2)) : NULL;
        CK(cudaMemset(dout, 0xff, (size_t)m * qd * 2));
        st = md_cuda_attention(&a, D, sg, 0);
        CK(cudaDeviceSynchronize());
        float *q = (float *)malloc((size_t)m * qd * 4), *out = (float *)malloc((size_t)m * qd * 4);
        float *kk = (float *)malloc((size_t)(pos + m) * kvd * 4), *vv = (float *)malloc((size_t)(pos + m) * kvd * 4);
        cudaFree(a.part);
        bf16_to_f32(dq, q, (size_t)m * qd);
        f16_to_f32(dout, out, (size_t)m * qd);
        bf16_to_f32(dkc, kk, (size_t)(pos + m) * kvd);
        bf16_to_f32(dvc, vv, (size_t)(pos + m) * kvd);
        /* reference norm + rope for q and the new k, v */
        double *qr = (double *)malloc((size_t)m * qd * 8), *kr = (double *)malloc((size_t)m * kvd * 8);
        for (int t = 0; t < m; t++) {
            const int p = pos + t;
            for (int hh = 0; hh < Hq + Hkv; hh++) {
                const float *src = hh < Hq ? proj + (size_t)t * ldp + hh * 2 * D : proj + (size_t)t * ldp + 2 * qd + (hh - Hq) * D;
                const float *wt = hh < Hq ? qn : kn;
                double *dst = hh < Hq ? qr + (size_t)t * qd + hh * D : kr + (size_t)t * kvd + (hh - Hq) * D;
                double ss = 0;
                for (int i = 0; i < D; i++) ss += (double)src[i] * src[i];
                const double inv = 1.0 / sqrt(ss / D + eps);
                for (int i = 0; i < D; i++) dst[i] = src[i] * inv * (1.0 + wt[i]);
                for (int i = 0; i < R / 2; i++) {
                    const double ang = (double)((float)p * inv_freq[i]);
                    const double x1 = dst[i], x2 = dst[i + R / 2];
                    dst[i] = x1 * cos(ang) - x2 * sin(ang);
                    dst[i + R / 2] = x2 * cos(ang) + x1 * sin(ang);
                }
            }
        }
        char name[128];
        if (run == 0) {
            snprintf(name, sizeof name, "qk_norm_rope q  m=%d pos=%d Hq=%d Hkv=%d D=%d R=%d", m, pos, Hq, Hkv, D, R);
            report(name, rel_l2(q, qr, (size_t)m * qd), 1e-2);
            snprintf(name, sizeof name, "qk_norm_rope k  m=%d pos=%d Hq=%d Hkv=%d D=%d R=%d", m, pos, Hq, Hkv, D, R);
            report(name, rel_l2(kk + (size_t)pos * kvd, kr, (size_t)m * kvd), 1e-2);
            double vmax = 0;
            for (int t = 0; t < m; t++)
                for (int i = 0; i < kvd; i++) vmax = fmax(vmax, fabs(vv[(size_t)(pos + t) * kvd + i] - bf(proj[(size_t)t * ldp + 2 * qd + kvd + i])));
            CHECK_MSG(vmax == 0.0, "v cache differs by %g", vmax);
        }
        /* reference attention on the kernel's own bf16 q and cache */
        double *ref = (double *)malloc((size_t)m * qd * 8), *sc = (double *)malloc((size_t)(pos + m) * 8);
        for (int t = 0; t < m; t++)
            for (int h = 0; h < Hq; h++) {
                const int kvh = h / (Hq / Hkv), np = pos + t + 1;
                double mx = -1e300, sum = 0;
                for (int j = 0; j < np; j++) {
                    double s = 0;
                    for (int i = 0; i < D; i++) s += (double)q[(size_t)t * qd + h * D + i] * kk[(size_t)j * kvd + kvh * D + i];
                    sc[j] = s / sqrt((double)D);
                    mx = fmax(mx, sc[j]);
                }
                for (int j = 0; j < np; j++) sum += sc[j] = exp(sc[j] - mx);
                for (int i = 0; i < D; i++) {
                    double o = 0;
                    for (int j = 0; j < np; j++) o += sc[j] * vv[(size_t)j * kvd + kvh * D + i];
                    const double gt = proj[(size_t)t * ldp + h * 2 * D + D + i];
                    ref[(size_t)t * qd + h * D + i] = o / sum / (1.0 + exp(-gt));
                }
            }
        snprintf(name, sizeof name, "attention (%d stage%s, %d parts) m=%d pos=%d Hq=%d Hkv=%d D=%d", sg, sg > 1 ? "s" : "", parts, m, pos, Hq,
                 Hkv, D);
        report(name, rel_l2(out, ref, (size_t)m * qd), 2e-2);
        free(q), free(out), free(kk), free(vv), free(qr), free(kr), free(ref), free(sc);
    }
    if (st != MD_OK) {
        fprintf(stderr, "attention: %s\n", md_last_error());
        md_test_failures++;
    }
    free(proj), free(qn), free(kn), free(inv_freq), free(kc), free(vc);
    cudaFree(dproj), cudaFree(dqn), cudaFree(dkn), cudaFree(dif), cudaFree(dkc), cudaFree(dvc), cudaFree(dq), cudaFree(dout);
}

/* ---------------------------------------------------------------- timings */

/* Median of `reps` timed launches (CUDA events, after 3 warm-ups), in us. */
template <typename F>
static double time_us(F fn, int reps) {
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (int i = 0; i < 3; i++) fn();
    double v[64];
    for (int i = 0; i < reps && i < 64; i++) {
        CK(cudaEventRecord(e0, 0));
        fn();
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        v[i] = ms * 1e3;
    }
    for (int i = 1; i < reps; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            const double t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return v[reps / 2];
}

static float *dev_random(size_t n, float scale) {
    float *h = (float *)malloc(n * 4);
    for (size_t i = 0; i < n; i++) h[i] = scale * nrand();
    float *d = dev_copy(h, n);
    free(h);
    return d;
}

/* The kernels at the Qwen3.5-0.8B shapes, one layer each (timing only). */
static void bench_08b(int m) {
    const int Hk = 16, Hv = 16, dk = 128, dv = 128, Kd = Hk * dk, Vd = Hv * dv, cd = 2 * Kd + Vd, ldp = 8224;
    const int nch = (m + 63) / 64;
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    float *proj = dev_random((size_t)m * ldp, 1.0f), *cw = dev_random((size_t)cd * 4, 0.5f), *cs = dev_random((size_t)cd * 3, 1.0f);
    float *cs2 = dev_copy<float>(NULL, (size_t)cd * 3);
    __half *qkv = dev_copy<__half>(NULL, (size_t)m * cd);
    md_cuda_conv(proj, ldp, cw, cs, cs2, qkv, m, cd, Kd, dk, 0);
    md_delta_args a;
    memset(&a, 0, sizeof a);
    a.m = m, a.n_chunks = nch, a.Hk = Hk, a.Hv = Hv, a.Kd = Kd, a.Vd = Vd, a.cd = cd, a.qkv = qkv, a.proj = proj, a.ldp = ldp;
    a.A_log = dev_random(Hv, 0.5f), a.dt_bias = dev_random(Hv, 0.5f), a.gnorm = dev_random(dv, 1.0f), a.eps = 1e-6f;
    a.G = dev_copy<float>(NULL, (size_t)Hv * nch * 64);
    a.W = dev_copy<__half>(NULL, (size_t)nch * Hv * 64 * dk);
    a.U = dev_copy<float>(NULL, (size_t)nch * Hv * 64 * dv);
    a.S = dev_copy<__half>(NULL, (size_t)nch * Hv * dk * dv);
    a.Vn = dev_copy<__half>(NULL, (size_t)nch * Hv * 64 * dv);
    a.state = dev_random((size_t)Hv * dv * dk, 0.1f);
    a.out = dev_copy<__half>(NULL, (size_t)m * Vd);
    fprintf(stderr, "  timing m=%d (0.8B shapes, one layer, median of 21, us):\n", m);
    fprintf(stderr, "    conv %.1f  delta prep %.1f  delta scan %.1f  delta out %.1f\n",
            time_us([&] { md_cuda_conv(proj, ldp, cw, cs, cs2, qkv, m, cd, Kd, dk, 0); }, 21),
            time_us([&] { md_cuda_delta_prep(&a, dk, dv, 0); }, 21), time_us([&] { md_cuda_delta_scan(&a, dk, dv, 0); }, 21),
            time_us([&] { md_cuda_delta_out(&a, dk, dv, 0); }, 21));
    /* attention: Hq 8, Hkv 2, D 256 */
    const int Hq = 8, Hkv = 2, D = 256, qd = Hq * D, kvd = Hkv * D;
    __nv_bfloat16 *q = dev_copy<__nv_bfloat16>(NULL, (size_t)m * qd), *kc = dev_copy<__nv_bfloat16>(NULL, (size_t)m * kvd);
    __nv_bfloat16 *vc = dev_copy<__nv_bfloat16>(NULL, (size_t)m * kvd);
    float *qn = dev_random(D, 0.3f), *inv = dev_random(32, 0.01f);
    md_cuda_qk_norm_rope(proj, ldp, qn, qn, inv, q, kc, vc, m, 0, Hq, Hkv, D, 64, 1e-6f, 0);
    md_attn_args at;
    memset(&at, 0, sizeof at);
    at.m = m, at.pos = 0, at.Hq = Hq, at.Hkv = Hkv, at.qd = qd, at.kvd = kvd, at.q = q, at.k = kc, at.v = vc, at.proj = proj, at.ldp = ldp;
    at.out = (__half *)qkv;
    const int stages = md_cuda_attention_stages(D, prop.sharedMemPerBlockOptin);
    const int tps = md_cuda_attention_split(D, m, 0, Hq, 2 * prop.multiProcessorCount);
    const int parts = md_cuda_attention_parts(D, m, 0, Hq, tps);
    at.part = parts > 0 ? dev_copy<float>(NULL, (size_t)parts * 64 * (D + 2)) : NULL;
    at.tiles_per_split = tps;
    const double t_split = time_us([&] { md_cuda_attention(&at, D, stages, 0); }, 21);
    at.tiles_per_split = 1 << 30;
    const double t_whole = time_us([&] { md_cuda_attention(&at, D, stages, 0); }, 21);
    fprintf(stderr, "    qk norm+rope %.1f  attention %.1f (split, %d tiles per CTA) / %.1f (unsplit)  [%.1f causal TFLOP/s]\n",
            time_us([&] { md_cuda_qk_norm_rope(proj, ldp, qn, qn, inv, q, kc, vc, m, 0, Hq, Hkv, D, 64, 1e-6f, 0); }, 21), t_split,
            tps < (1 << 29) ? tps : 0, t_whole, 4.0 * Hq * D * ((double)m * (m + 1) / 2) / (fmin(t_split, t_whole) * 1e-6) / 1e12);
    CK(cudaDeviceSynchronize());
    cudaFree(proj), cudaFree(cw), cudaFree(cs), cudaFree(cs2), cudaFree(qkv), cudaFree((void *)a.A_log), cudaFree((void *)a.dt_bias);
    cudaFree((void *)a.gnorm), cudaFree(a.G), cudaFree(a.W), cudaFree(a.U), cudaFree(a.S), cudaFree(a.Vn), cudaFree(a.state), cudaFree(a.out);
    cudaFree(q), cudaFree(kc), cudaFree(vc), cudaFree(qn), cudaFree(inv), cudaFree(at.part);
}

int main(void) {
    const int lens[] = {1, 63, 64, 65, 200};
    const int heads[][4] = {{2, 2, 128, 128}, {2, 4, 32, 64}, {4, 4, 32, 32}, {1, 2, 64, 128}, {2, 4, 128, 128}};
    for (size_t c = 0; c < sizeof heads / sizeof *heads; c++)
        for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
            test_conv(lens[i], heads[c][0], heads[c][1], heads[c][2], heads[c][3]);
            test_delta(lens[i], heads[c][0], heads[c][1], heads[c][2], heads[c][3]);
        }
    /* long piece: many chunks through the scan */
    test_delta(1000, 2, 2, 128, 128);
    const int attn[][4] = {{8, 2, 256, 64}, {4, 1, 64, 32}, {8, 1, 64, 32}, {4, 2, 128, 32}};
    const int apos[] = {0, 37};
    for (size_t c = 0; c < sizeof attn / sizeof *attn; c++)
        for (size_t p = 0; p < 2; p++)
            for (size_t i = 0; i < sizeof lens / sizeof *lens; i++)
                test_attention(lens[i], apos[p], attn[c][0], attn[c][1], attn[c][2], attn[c][3]);
    test_attention(700, 100, 8, 2, 256, 64);
    bench_08b(512);
    bench_08b(4096);
    return md_test_finish("test_prefill_ops");
}
