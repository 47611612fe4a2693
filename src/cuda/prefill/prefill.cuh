/*
 * prefill.cuh — the prefill pipeline's state and the launchers of its ops
 * (one op per file in this folder; prefill.cu strings them together).
 *
 * A prompt is processed in pieces of at most `piece` tokens; every buffer
 * below holds one piece (cap tokens). Per layer:
 *   linear: rmsnorm -> GEMM w_in -> conv (+SiLU, L2 norms) -> delta_prep ->
 *           delta_scan -> delta_out (+gated RMSNorm) -> GEMM w_out (+= h)
 *   full:   rmsnorm -> GEMM w_qkv -> qk_norm_rope (K/V into the cache) ->
 *           attention (+output gate) -> GEMM w_o (+= h)
 *   both:   rmsnorm -> GEMM w_gu -> swiglu -> GEMM w_down (+= h)
 * then the final norm and the LM head for the rows asked for.
 */
#ifndef MD_CUDA_PREFILL_CUH
#define MD_CUDA_PREFILL_CUH

#include <cublasLt.h>

#include "cuda/backend.cuh"

#define MD_PF_CHUNK 64          /* DeltaNet chunk length */
#define MD_PF_SCAN_SLICE 16     /* value columns per delta_scan CTA */
#define MD_PF_PIECE 4096        /* default tokens per piece */
#define MD_PF_MAX_PLANS 48      /* cached GEMM plans */
#define MD_PF_N_OPS 17          /* profiled op kinds */

/* One cuBLASLt GEMM shape with its chosen algorithm. */
typedef struct md_gemm_plan {
    bool used;
    int M, N, K, ldx, ldy, out_bf16, accumulate, align;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
    unsigned long long last_use;
} md_gemm_plan;

/* Arguments shared by the three DeltaNet kernels (one layer, one piece). */
typedef struct md_delta_args {
    int m, n_chunks;                 /* tokens of the piece, ceil(m / 64) */
    int Hk, Hv, Kd, Vd, cd;          /* heads and widths (dk, dv are template arguments) */
    const __nv_bfloat16 *qkv;        /* [m][cd] after conv: q (normalised, scaled) | k (normalised) | v */
    const float *proj;               /* [m][ldp] in-projection: z at cd, b at cd+Vd, a at cd+Vd+Hv */
    int ldp;
    const float *A_log, *dt_bias;    /* [Hv] */
    const float *gnorm;              /* [dv] */
    float eps;
    float *G;                        /* [Hv][n_chunks*64] cumulative log decay within each chunk */
    __nv_bfloat16 *W;                /* [n_chunks][Hv][64][dk]  T (beta e^G k) */
    float *U;                        /* [n_chunks][Hv][64][dv]  T (beta v) */
    __nv_bfloat16 *S;                /* [n_chunks][Hv][dk][dv]  state at each chunk start */
    __nv_bfloat16 *Vn;               /* [n_chunks][Hv][64][dv]  v_new = U - W S */
    float *state;                    /* [Hv][dv][dk] this layer's ssm_state (S transposed), in and out */
    __nv_bfloat16 *out;              /* [m][Vd] gated-normed output */
} md_delta_args;

/* Arguments of the attention kernel (one layer, one piece). */
typedef struct md_attn_args {
    int m, pos;                      /* tokens of the piece, position of its first token */
    int Hq, Hkv, qd, kvd;
    const __nv_bfloat16 *q;          /* [m][qd] normed, rotated queries */
    const __nv_bfloat16 *k, *v;      /* [n_ctx][kvd] this layer's caches */
    const float *proj;               /* [m][ldp] projections: gate of head h at h*2D + D */
    int ldp;
    __nv_bfloat16 *out;              /* [m][qd] gated attention output */
} md_attn_args;

struct md_prefill {
    bool fast;                       /* the chunked pipeline supports this model (else: decode steps) */
    int piece, cap;                  /* tokens per piece; tokens the scratch holds */
    int ldp;                         /* row stride of proj */
    int attn_stages;                 /* 2: double-buffered K/V tiles (when shared memory allows) */
    void *scratch;
    float *h;                        /* [cap][H] residual stream */
    __nv_bfloat16 *xn;               /* [cap][H] normed GEMM input */
    float *proj;                     /* [cap][ldp] projections */
    __nv_bfloat16 *act;              /* [cap][I] MLP hidden */
    __nv_bfloat16 *core;             /* [cap][max(Vd, qd)] mixer output */
    __nv_bfloat16 *mix;              /* [cap][max(cd, qd)] conv output / rotated queries */
    float *G, *U;
    __nv_bfloat16 *W, *S, *Vn;
    float *conv_new;                 /* [n_linear][cd][K-1] conv state after the piece */
    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t op;
    void *workspace;
    size_t ws_bytes;
    md_gemm_plan plans[MD_PF_MAX_PLANS];
    unsigned long long plan_clock;
    /* profiling (MEGADELTA_PREFILL_PROFILE=1): per-op time of the last run */
    bool profile;
    cudaEvent_t ev[2 * 512];
    int n_ev;
    int ev_op[512];
    double op_ms[MD_PF_N_OPS];
    int op_calls[MD_PF_N_OPS];
};

/* gemm.cu: Y[M][N] (+)= X[M][K] W[N][K]^T; bf16 in, fp32 accumulate; Y fp32
 * or bf16 (row stride ldy); accumulate adds into Y (fp32 only). */
md_status md_cuda_gemm_init(struct md_prefill *p);
void md_cuda_gemm_free(struct md_prefill *p);
md_status md_cuda_gemm(struct md_prefill *p, const __nv_bfloat16 *X, int ldx, const __nv_bfloat16 *W, void *Y, int ldy, bool y_bf16,
                       bool accumulate, int M, int N, int K, cudaStream_t stream);

/* embed.cu: h[t] = embed[tok[t]] (fp32). */
md_status md_cuda_embed(const int32_t *tok, const __nv_bfloat16 *embed, float *h, int m, int H, cudaStream_t stream);
/* rmsnorm.cu: out[t] = bf16(x[t] / rms(x[t]) * (1 + w)), zero-centred weight. */
md_status md_cuda_rmsnorm(const float *x, const float *w, __nv_bfloat16 *out, int rows, int H, float eps, cudaStream_t stream);
/* swiglu.cu: act[t][i] = bf16(silu(gu[t][2i]) * gu[t][2i+1]). */
md_status md_cuda_swiglu(const float *gu, int ldgu, __nv_bfloat16 *act, int rows, int I, cudaStream_t stream);
/* conv.cu: causal conv (width 4) + SiLU over the piece, L2 norms of q and k. */
md_status md_cuda_conv(const float *proj, int ldp, const float *conv_w, const float *state_in, float *state_out, __nv_bfloat16 *qkv,
                       int m, int cd, int Kd, int dk, cudaStream_t stream);
/* delta_prep.cu, delta_scan.cu, delta_out.cu: the chunked gated delta rule. */
md_status md_cuda_delta_prep(const md_delta_args *a, int dk, int dv, cudaStream_t stream);
md_status md_cuda_delta_scan(const md_delta_args *a, int dk, int dv, cudaStream_t stream);
md_status md_cuda_delta_out(const md_delta_args *a, int dk, int dv, cudaStream_t stream);
bool md_cuda_delta_supported(int dk, int dv, size_t smem_optin);
/* qk_norm_rope.cu: q/k zero-centred RMSNorm + partial RoPE; K, V into the cache. */
md_status md_cuda_qk_norm_rope(const float *proj, int ldp, const float *q_norm, const float *k_norm, const float *inv_freq,
                               __nv_bfloat16 *q, __nv_bfloat16 *k_cache, __nv_bfloat16 *v_cache, int m, int pos, int Hq,
                               int Hkv, int D, int R, float eps, cudaStream_t stream);
/* attention.cu: causal flash attention over the cache, GQA, output gate. */
md_status md_cuda_attention(const md_attn_args *a, int D, int stages, cudaStream_t stream);
/* the largest K/V pipeline depth (1 or 2) whose shared memory fits; 0: head dim not supported */
int md_cuda_attention_stages(int D, size_t smem_optin);

/* Calls fn<dk, dv>(args...) for the DeltaNet head dims the kernels are built for. */
#define MD_DELTA_DISPATCH(fn, dk, dv, ...)                                        \
    switch (dk * 1000 + dv) {                                                     \
    case 32032: return fn<32, 32>(__VA_ARGS__);                                   \
    case 32064: return fn<32, 64>(__VA_ARGS__);                                   \
    case 32128: return fn<32, 128>(__VA_ARGS__);                                  \
    case 64032: return fn<64, 32>(__VA_ARGS__);                                   \
    case 64064: return fn<64, 64>(__VA_ARGS__);                                   \
    case 64128: return fn<64, 128>(__VA_ARGS__);                                  \
    case 128032: return fn<128, 32>(__VA_ARGS__);                                 \
    case 128064: return fn<128, 64>(__VA_ARGS__);                                 \
    case 128128: return fn<128, 128>(__VA_ARGS__);                                \
    default: return md_fail(MD_ERR_UNSUPPORTED, "prefill: DeltaNet dk=%d dv=%d", dk, dv); \
    }

#endif
