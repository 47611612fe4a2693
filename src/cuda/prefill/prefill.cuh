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
#include <cuda_fp16.h>

#include "cuda/backend.cuh"

#define MD_PF_CHUNK 64          /* DeltaNet chunk length */
#define MD_PF_SCAN_SLICE 16     /* value columns per delta_scan CTA */
#define MD_PF_PIECE 4096        /* default tokens per piece */
#define MD_PF_MAX_PLANS 48      /* cached GEMM plans */
#define MD_PF_N_OPS 18          /* profiled op kinds */

/* One cuBLASLt GEMM shape with its chosen algorithm. */
typedef struct md_gemm_plan {
    bool used;
    int M, N, K, ldx, ldy, in_bf16, accumulate, align;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
    unsigned long long last_use;
} md_gemm_plan;

/* fp16 copies of one layer's projection weights (layouts as in backend.cuh). */
typedef struct md_prefill_w16 {
    __half *w_in, *w_out, *w_qkv, *w_o, *w_gu, *w_down;
} md_prefill_w16;

/* Arguments shared by the three DeltaNet kernels (one layer, one piece). */
typedef struct md_delta_args {
    int m, n_chunks;                 /* tokens of the piece, ceil(m / 64) */
    int Hk, Hv, Kd, Vd, cd;          /* heads and widths (dk, dv are template arguments) */
    const __half *qkv;               /* [m][cd] after conv: q (normalised, scaled) | k (normalised) | v */
    const float *proj;               /* [m][ldp] in-projection: z at cd, b at cd+Vd, a at cd+Vd+Hv */
    int ldp;
    const float *A_log, *dt_bias;    /* [Hv] */
    const float *gnorm;              /* [dv] */
    float eps;
    float *G;                        /* [Hv][n_chunks*64] cumulative log decay within each chunk */
    __half *W;                       /* [n_chunks][Hv][64][dk]  T (beta e^G k) */
    float *U;                        /* [n_chunks][Hv][64][dv]  T (beta v) */
    __half *S;                       /* [n_chunks][Hv][dk][dv]  state at each chunk start */
    __half *Vn;                      /* [n_chunks][Hv][64][dv]  v_new = U - W S */
    float *state;                    /* [Hv][dv][dk] this layer's ssm_state (S transposed), in and out */
    __half *out;                     /* [m][Vd] gated-normed output */
} md_delta_args;

/* Arguments of the attention kernel (one layer, one piece). */
typedef struct md_attn_args {
    int m, pos;                      /* tokens of the piece, position of its first token */
    int Hq, Hkv, qd, kvd;
    const __nv_bfloat16 *q;          /* [m][qd] normed, rotated queries */
    const __nv_bfloat16 *k, *v;      /* [n_ctx][kvd] this layer's caches */
    const float *proj;               /* [m][ldp] projections: gate of head h at h*2D + D */
    int ldp;
    __half *out;                     /* [m][qd] gated attention output */
    float *part;                     /* split-KV partials [n_parts][64][D + 2] (o, m, l) */
    int tiles_per_split;             /* K/V tiles per CTA; a query tile with more is split */
} md_attn_args;

struct md_prefill {
    bool fast;                       /* the chunked pipeline supports this model (else: decode steps) */
    int piece, cap;                  /* tokens per piece; tokens the scratch holds */
    int ldp;                         /* row stride of proj */
    int attn_stages;                 /* 2: double-buffered K/V tiles (when shared memory allows) */
    void *scratch;
    float *h;                        /* [cap][H] residual stream */
    __half *xn;                      /* [cap][H] normed GEMM input (bf16 for the LM head rows) */
    float *proj;                     /* [cap][ldp] projections */
    __half *act;                     /* [cap][I] MLP hidden */
    __half *core;                    /* [cap][max(Vd, qd)] mixer output */
    void *mix;                       /* [cap][max(cd, qd)] conv output (fp16) / rotated queries (bf16) */
    float *G, *U;
    __half *W, *S, *Vn;
    float *attn_part;                /* split-KV partials (attention.cu) */
    int attn_max_parts;
    float *conv_new;                 /* [n_linear][cd][K-1] conv state after the piece */
    /* fp16 copies of the layer weights (GEMM operands): cached for every
     * layer when device memory allows, else converted per layer into w16_tmp */
    md_prefill_w16 *w16;             /* host array [n_layers] */
    void *w16_pool;
    __half *w16_tmp;
    bool w16_cached;
    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t op;
    void *workspace;
    size_t ws_bytes;
    md_gemm_plan plans[MD_PF_MAX_PLANS];
    unsigned long long plan_clock;
    /* graph cache: a call with the same (n, pos, rows, logits buffer) as the
     * previous one is captured into a CUDA graph; the next such call replays
     * it (one launch instead of ~10 per layer). Opt-in: MEGADELTA_PREFILL_GRAPH=1. */
    bool graphs;
    cudaGraphExec_t graph_exec;
    long long graph_key[4], last_key[4];
    bool graph_valid, last_valid;
    /* profiling (MEGADELTA_PREFILL_PROFILE=1: per-op CUDA-event times, no
     * graphs; =2: host enqueue and total time per call) */
    bool profile;
    int timing;
    cudaEvent_t ev[2 * 512];
    int n_ev;
    int ev_op[512];
    double op_ms[MD_PF_N_OPS];
    int op_calls[MD_PF_N_OPS];
};

/* gemm.cu: Y[M][N] (+)= X[M][K] W[N][K]^T; X, W fp16 (or both bf16: in_bf16),
 * fp32 accumulate; Y fp32 (row stride ldy); accumulate adds into Y. */
md_status md_cuda_gemm_init(struct md_prefill *p);
void md_cuda_gemm_free(struct md_prefill *p);
md_status md_cuda_gemm(struct md_prefill *p, const void *X, int ldx, const void *W, bool in_bf16, float *Y, int ldy, bool accumulate,
                       int M, int N, int K, cudaStream_t stream);
/* weights16.cu: dst[i] = fp16(src[i]) */
md_status md_cuda_to_f16(const __nv_bfloat16 *src, __half *dst, size_t n, cudaStream_t stream);

/* embed.cu: h[t] = embed[tok[t]] (fp32). */
md_status md_cuda_embed(const int32_t *tok, const __nv_bfloat16 *embed, float *h, int m, int H, cudaStream_t stream);
/* rmsnorm.cu: out[t] = fp16(x[t] / rms(x[t]) * (1 + w)), zero-centred weight
 * (_bf16: bf16 out, for the LM head). */
md_status md_cuda_rmsnorm(const float *x, const float *w, __half *out, int rows, int H, float eps, cudaStream_t stream);
md_status md_cuda_rmsnorm_bf16(const float *x, const float *w, __nv_bfloat16 *out, int rows, int H, float eps, cudaStream_t stream);
/* swiglu.cu: act[t][i] = fp16(silu(gu[t][2i]) * gu[t][2i+1]). */
md_status md_cuda_swiglu(const float *gu, int ldgu, __half *act, int rows, int I, cudaStream_t stream);
/* conv.cu: causal conv (width 4) + SiLU over the piece, L2 norms of q and k. */
md_status md_cuda_conv(const float *proj, int ldp, const float *conv_w, const float *state_in, float *state_out, __half *qkv,
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
/* attention.cu: causal flash attention over the cache, GQA, output gate;
 * query tiles with more than tiles_per_split K/V tiles are split over CTAs
 * and their partials merged by a second kernel. */
md_status md_cuda_attention(const md_attn_args *a, int D, int stages, cudaStream_t stream);
/* K/V tiles per split so that about `target` CTAs run; 1 << 30 when no split is needed */
int md_cuda_attention_split(int D, int m, int pos, int Hq, int target);
/* partial slots (of 64 x (D+2) floats) md_cuda_attention needs for that split */
int md_cuda_attention_parts(int D, int m, int pos, int Hq, int tiles_per_split);
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
