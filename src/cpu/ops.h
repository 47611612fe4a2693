/*
 * ops.h — the small fp32 operations of the CPU reference engine. Weights may
 * be BF16 or F32 (md_matrix); activations and accumulation are fp32.
 * Parallel loops use OpenMP with the given thread count.
 */
#ifndef MD_CPU_OPS_H
#define MD_CPU_OPS_H

#include "model/model.h"

/* y[t][r] = sum_c W[r][c] * x[t][c] for t < n, r < W->rows.
 * x rows are ldx floats apart, y rows ldy floats apart. */
void md_cpu_matmul(const md_matrix *W, const float *x, int ldx, float *y, int ldy, int n, int n_threads);

/* Row r of W widened to fp32 (the embedding lookup). */
void md_cpu_matrix_row(const md_matrix *W, int r, float *out);

/* Zero-centred RMSNorm: out = x / sqrt(mean(x^2) + eps) * (1 + w). out may alias x. */
void md_cpu_rmsnorm_zc(const float *x, const float *w, int n, float eps, float *out);

/* Gated RMSNorm of the DeltaNet output: out = o / sqrt(mean(o^2) + eps) * w * silu(z). */
void md_cpu_rmsnorm_gated(const float *o, const float *z, const float *w, int n, float eps, float *out);

/* x * rsqrt(sum(x^2) + eps), in place. */
void md_cpu_l2norm(float *x, int n, float eps);

float md_cpu_silu(float x);
float md_cpu_sigmoid(float x);
float md_cpu_softplus(float x); /* as torch: x above 20 passes through */
float md_cpu_dot(const float *a, const float *b, int n);

#endif
