/*
 * backend.cuh — the CUDA backend's session state: the weights on the device
 * in the layouts the kernels read, the recurrent state and the KV cache in the
 * layouts decode and prefill share, and the handles of the decode megakernel
 * and the prefill pipeline.
 *
 * Device layouts (the contract between prefill and decode):
 *   conv_state [n_linear][conv_dim][K-1] fp32   last K-1 pre-conv inputs per channel, oldest first
 *   ssm_state  [n_linear][Hv][dv][dk]    fp32   DeltaNet state S transposed: element S[i][j]
 *                                               (key index i, value index j) at [h][j][i]
 *   k_cache    [n_full][n_ctx][Hkv*D]    bf16   keys after k_norm and RoPE
 *   v_cache    [n_full][n_ctx][Hkv*D]    bf16
 * Fused weight matrices (bf16, row-major [rows][cols], y = W x):
 *   w_in   linear [conv_dim + Vd + 2Hv][H]  rows: qkv (conv channels) | z | b | a
 *   w_qkv  full   [2Hq*D + 2Hkv*D][H]       rows: per q head D query rows then D gate rows, then k, then v
 *   w_gu   every  [2I][H]                   rows interleaved: gate_0, up_0, gate_1, up_1, ...
 *   w_out [H][Vd], w_o [H][Hq*D], w_down [H][I], embed/lm_head [V][H]
 */
#ifndef MD_CUDA_BACKEND_CUH
#define MD_CUDA_BACKEND_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "session.h"

typedef struct md_cuda_layer {
    bool full;
    int slot;                        /* index among the layers of its kind */
    const float *attn_norm;          /* [H] zero-centred */
    const float *mlp_norm;           /* [H] zero-centred */
    const __nv_bfloat16 *w_gu;       /* [2I][H] interleaved gate/up rows */
    const __nv_bfloat16 *w_down;     /* [H][I] */
    /* Gated DeltaNet */
    const __nv_bfloat16 *w_in;       /* [cd + Vd + 2Hv][H] */
    const __nv_bfloat16 *w_out;      /* [H][Vd] */
    const float *conv_w;             /* [cd][K] */
    const float *A_log, *dt_bias;    /* [Hv] */
    const float *gnorm;              /* [dv] */
    /* gated attention */
    const __nv_bfloat16 *w_qkv;      /* [2qd + 2kvd][H] */
    const __nv_bfloat16 *w_o;        /* [H][qd] */
    const float *q_norm, *k_norm;    /* [D] zero-centred */
} md_cuda_layer;

/* Dimensions copied from md_config into a POD the kernels take by value. */
typedef struct md_cuda_dims {
    int vocab, H, I, n_layers, n_linear, n_full;
    int Hq, Hkv, D, R;               /* attention heads, head dim, rotary dims */
    int Hk, Hv, dk, dv, K;           /* DeltaNet heads, head dims, conv width */
    int cd, Kd, Vd, qd, kvd;         /* derived widths */
    int n_in;                        /* rows of w_in  = cd + Vd + 2Hv */
    int n_qkv;                       /* rows of w_qkv = 2qd + 2kvd */
    float eps, rope_theta;
    int n_ctx;
} md_cuda_dims;

struct md_decode;   /* decode/decode.cuh */
struct md_prefill;  /* prefill/prefill.cuh */

typedef struct md_cuda_ctx {
    int device;
    int sm_count, cc_major, cc_minor;
    size_t smem_optin;               /* max dynamic shared memory per block */
    char name[96];
    md_cuda_dims dims;
    md_cuda_layer *layers;           /* host array [n_layers] of device pointers */
    const __nv_bfloat16 *embed;      /* [V][H] */
    const __nv_bfloat16 *lm_head;    /* [V][H] (== embed when tied) */
    const float *final_norm;         /* [H] */
    void *weight_pool;               /* one allocation holding every weight */
    size_t weight_bytes;
    float *conv_state;
    float *ssm_state;
    __nv_bfloat16 *k_cache, *v_cache;
    size_t conv_len, ssm_len, kv_len; /* elements */
    float *d_logits;                 /* [logits_rows][V] logits out */
    int logits_rows;
    float *d_inv_freq;               /* [R/2] RoPE frequencies (fp32, as the CPU engine) */
    int32_t *d_tokens;               /* [n_ctx] token ids in */
    cudaStream_t stream;
    struct md_decode *dec;
    struct md_prefill *pre;
    double bandwidth_gbs;            /* measured once at init (device-to-device copy) */
    struct md_gpu_sampler *sampler;  /* created by the first non-greedy sampling step */
} md_cuda_ctx;

static inline md_cuda_ctx *md_cuda_of(md_session_t *s) { return (md_cuda_ctx *)s->impl; }

/* decode/decode.cu */
md_status md_decode_init(md_session_t *s);
void md_decode_free(md_session_t *s);
md_status md_decode_reset(md_session_t *s);
/* n steps at positions pos..pos+n: the first input token is `first` (or,
 * when first < 0, the token the previous step left on the device). Each step's
 * argmax becomes the next input. out (host, may be NULL) gets the n argmaxes;
 * d_logits (device, may be NULL) gets the last step's logits [V]; *seconds
 * (may be NULL) the kernel time from CUDA events. */
md_status md_decode_run(md_session_t *s, int pos, int32_t first, int n, int32_t *out, float *d_logits, double *seconds);

/* sample/sample.cu: one sampling step (sample.c's semantics) on the logits in
 * d_logits ([V], modified in place), with the penalty window hist[0..n_hist)
 * and the uniform draw u; *out gets the chosen id. */
md_status md_cuda_sample(md_cuda_ctx *g, float *d_logits, const md_sampler_params *sp, const int32_t *hist, int n_hist, float u,
                         int32_t *out);
void md_cuda_sampler_free(md_cuda_ctx *g);

/* prefill/prefill.cu: consumes n tokens at positions s->pos.. and leaves the
 * state as n decode steps would; writes the last n_rows logits to the device
 * buffer d_logits ([n_rows][V]) when n_rows > 0. */
md_status md_prefill_init(md_session_t *s);
void md_prefill_free(md_session_t *s);
md_status md_prefill_run(md_session_t *s, const int32_t *tokens, int n, float *d_logits, int n_rows);

#endif
