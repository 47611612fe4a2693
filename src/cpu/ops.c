/*
 * ops.c — fp32 building blocks of the CPU reference engine.
 * The dot product keeps 8 independent partial sums so the compiler can
 * vectorise it without reassociating (no -ffast-math needed).
 */
#include "cpu/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"

float md_cpu_dot(const float *a, const float *b, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

void md_cpu_matrix_row(const md_matrix *W, int r, float *out) {
    const size_t cols = (size_t)W->cols;
    if (W->dtype == MD_DTYPE_F32) {
        memcpy(out, (const float *)W->data + (size_t)r * cols, cols * sizeof *out);
    } else {
        const uint16_t *row = (const uint16_t *)W->data + (size_t)r * cols;
        for (size_t c = 0; c < cols; c++) out[c] = md_bf16_to_f32(row[c]);
    }
}

/* Tokens are processed in blocks so the block's activations stay in cache
 * while every weight row is streamed past them once per block. */
#define MATMUL_TOKEN_BLOCK 16

void md_cpu_matmul(const md_matrix *W, const float *x, int ldx, float *y, int ldy, int n, int n_threads) {
    const int rows = W->rows, cols = W->cols;
    for (int t0 = 0; t0 < n; t0 += MATMUL_TOKEN_BLOCK) {
        const int tn = n - t0 < MATMUL_TOKEN_BLOCK ? n - t0 : MATMUL_TOKEN_BLOCK;
#pragma omp parallel num_threads(n_threads)
        {
            float *wrow = W->dtype == MD_DTYPE_F32 ? NULL : malloc((size_t)cols * sizeof *wrow);
#pragma omp for schedule(static)
            for (int r = 0; r < rows; r++) {
                const float *w;
                if (wrow) {
                    md_cpu_matrix_row(W, r, wrow);
                    w = wrow;
                } else {
                    w = (const float *)W->data + (size_t)r * cols;
                }
                for (int t = 0; t < tn; t++)
                    y[(size_t)(t0 + t) * ldy + r] = md_cpu_dot(w, x + (size_t)(t0 + t) * ldx, cols);
            }
            free(wrow);
        }
    }
}

static float mean_square(const float *x, int n) {
    double s = 0.0; /* the reference sums in fp32; a double sum is at least as close */
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    return (float)(s / n);
}

void md_cpu_rmsnorm_zc(const float *x, const float *w, int n, float eps, float *out) {
    const float inv = 1.0f / sqrtf(mean_square(x, n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * inv * (1.0f + w[i]);
}

void md_cpu_rmsnorm_gated(const float *o, const float *z, const float *w, int n, float eps, float *out) {
    const float inv = 1.0f / sqrtf(mean_square(o, n) + eps);
    for (int i = 0; i < n; i++) out[i] = o[i] * inv * w[i] * md_cpu_silu(z[i]);
}

void md_cpu_l2norm(float *x, int n, float eps) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    const float inv = 1.0f / sqrtf((float)s + eps);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

float md_cpu_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
float md_cpu_silu(float x) { return x / (1.0f + expf(-x)); }
float md_cpu_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
