/*
 * gemm.cu — the prefill's projections through cuBLASLt:
 *   Y[M][N] (+)= X[M][K] · W[N][K]^T
 * X and W fp16 (or both bf16) row-major, fp32 accumulation, Y fp32 row-major
 * with row stride ldy. With accumulate, Y is also C (beta = 1, in place): the
 * residual add happens in the GEMM's epilogue.
 *
 * cuBLASLt is column-major: row-major W[N][K] is the K x N matrix A (used
 * transposed), row-major X[M][K] the K x M matrix B, row-major Y the N x M
 * matrix D. Plans (layouts + the heuristic's first algorithm) are cached per
 * shape, stride, input type and pointer alignment.
 */
#include <string.h>

#include "cuda/common.cuh"
#include "cuda/prefill/prefill.cuh"

#define MD_GEMM_WORKSPACE (32u << 20)

static md_status lt_fail(cublasStatus_t e, const char *what) {
    return md_fail(MD_ERR_DEVICE, "cuBLASLt %s failed (status %d)", what, (int)e);
}

#define LT_CHECK(call, what)                                   \
    do {                                                       \
        cublasStatus_t e_ = (call);                            \
        if (e_ != CUBLAS_STATUS_SUCCESS) return lt_fail(e_, what); \
    } while (0)

md_status md_cuda_gemm_init(struct md_prefill *p) {
    LT_CHECK(cublasLtCreate(&p->lt), "create");
    LT_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "descriptor");
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "descriptor");
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "descriptor");
    p->ws_bytes = MD_GEMM_WORKSPACE;
    MD_CUDA_CHECK(cudaMalloc(&p->workspace, p->ws_bytes));
    return MD_OK;
}

static void plan_release(md_gemm_plan *pl) {
    if (!pl->used) return;
    cublasLtMatrixLayoutDestroy(pl->a);
    cublasLtMatrixLayoutDestroy(pl->b);
    cublasLtMatrixLayoutDestroy(pl->c);
    memset(pl, 0, sizeof *pl);
}

void md_cuda_gemm_free(struct md_prefill *p) {
    for (int i = 0; i < MD_PF_MAX_PLANS; i++) plan_release(&p->plans[i]);
    if (p->op) cublasLtMatmulDescDestroy(p->op);
    if (p->lt) cublasLtDestroy(p->lt);
    cudaFree(p->workspace);
    p->op = NULL;
    p->lt = NULL;
    p->workspace = NULL;
}

/* Largest power of two (<= 256) dividing every pointer. */
static int common_alignment(const void *a, const void *b, const void *c) {
    const uintptr_t x = (uintptr_t)a | (uintptr_t)b | (uintptr_t)c;
    int al = 256;
    while (al > 1 && (x & (uintptr_t)(al - 1))) al >>= 1;
    return al;
}

static md_status plan_create(struct md_prefill *p, md_gemm_plan *pl) {
    const cudaDataType_t it = pl->in_bf16 ? CUDA_R_16BF : CUDA_R_16F;
    LT_CHECK(cublasLtMatrixLayoutCreate(&pl->a, it, pl->K, pl->N, pl->K), "layout");
    LT_CHECK(cublasLtMatrixLayoutCreate(&pl->b, it, pl->K, pl->M, pl->ldx), "layout");
    LT_CHECK(cublasLtMatrixLayoutCreate(&pl->c, CUDA_R_32F, pl->N, pl->M, pl->ldy), "layout");
    pl->used = true;
    cublasLtMatmulPreference_t pref;
    LT_CHECK(cublasLtMatmulPreferenceCreate(&pref), "preference");
    const uint32_t al = (uint32_t)pl->align;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &p->ws_bytes, sizeof p->ws_bytes);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al);
    cublasLtMatmulHeuristicResult_t res;
    int n = 0;
    cublasStatus_t e = cublasLtMatmulAlgoGetHeuristic(p->lt, p->op, pl->a, pl->b, pl->c, pl->c, pref, 1, &res, &n);
    cublasLtMatmulPreferenceDestroy(pref);
    if (e != CUBLAS_STATUS_SUCCESS || n < 1)
        return md_fail(MD_ERR_UNSUPPORTED, "cuBLASLt has no algorithm for the prefill GEMM %d x %d x %d (status %d)", pl->M, pl->N,
                       pl->K, (int)e);
    pl->algo = res.algo;
    return MD_OK;
}

md_status md_cuda_gemm(struct md_prefill *p, const void *X, int ldx, const void *W, bool in_bf16, float *Y, int ldy, bool accumulate,
                       int M, int N, int K, cudaStream_t stream) {
    if (M <= 0) return MD_OK;
    const int align = common_alignment(X, W, Y);
    md_gemm_plan *pl = NULL, *victim = &p->plans[0];
    for (int i = 0; i < MD_PF_MAX_PLANS; i++) {
        md_gemm_plan *c = &p->plans[i];
        if (c->used && c->M == M && c->N == N && c->K == K && c->ldx == ldx && c->ldy == ldy && c->in_bf16 == (int)in_bf16 &&
            c->accumulate == (int)accumulate && c->align == align) {
            pl = c;
            break;
        }
        if (!c->used || (victim->used && c->last_use < victim->last_use)) victim = c;
    }
    if (!pl) {
        plan_release(victim);
        pl = victim;
        pl->M = M, pl->N = N, pl->K = K, pl->ldx = ldx, pl->ldy = ldy;
        pl->in_bf16 = in_bf16, pl->accumulate = accumulate, pl->align = align;
        md_status st = plan_create(p, pl);
        if (st != MD_OK) {
            plan_release(pl);
            return st;
        }
    }
    pl->last_use = ++p->plan_clock;
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    LT_CHECK(cublasLtMatmul(p->lt, p->op, &alpha, W, pl->a, X, pl->b, &beta, Y, pl->c, Y, pl->c, &pl->algo, p->workspace, p->ws_bytes,
                            stream),
             "matmul");
    return MD_OK;
}
