/*
 * prefill.cu — GPU prefill: the prompt in pieces of at most `piece` tokens
 * (scratch stays bounded), each piece through every layer with tensor-core
 * GEMMs (cuBLASLt, fp16 operands: fp16 copies of the weights, activations
 * rounded to fp16, fp32 accumulation) and the kernels of this folder; see
 * prefill.cuh for the op sequence. State hand-off, exactly as n decode steps leave it: the conv
 * state holds the last 3 pre-conv inputs, ssm_state the fp32 DeltaNet state
 * (decode layout), the KV cache the normed, rotated keys and the values of
 * every position. Only the rows of logits asked for go through the LM head.
 *
 * All kernels are sm_80+ code (mma.sync, ldmatrix, cp.async), so the same
 * path serves Hopper and the portable (sm_80-sm_89) decode path; cuBLASLt
 * picks its own kernels per device. Models whose shapes the kernels do not
 * cover (conv width != 4, DeltaNet head dims outside {32, 64, 128},
 * attention head dims outside {64, 128, 256}) fall back to feeding the
 * prompt through the decode megakernel one token at a time: slow, exact.
 *
 * Environment: MEGADELTA_PREFILL_PIECE=N  tokens per piece (default 4096)
 *              MEGADELTA_PREFILL_GRAPH=1  CUDA-graph replay of repeated calls (same n,
 *                                         pos, rows): -0.38 ms per pp512 call, but the
 *                                         capturing call costs ~2x, and real prompts
 *                                         rarely repeat, so it is off by default
 *              MEGADELTA_PREFILL_W16_STREAM=1 convert weights per layer (as when
 *                                         the fp16 copies do not fit)
 *              MEGADELTA_PREFILL_PROFILE=1 per-op times of each call on stderr (no graphs)
 *              MEGADELTA_PREFILL_PROFILE=2 host enqueue / total time of each call
 *              MEGADELTA_PREFILL_STEPS=1  force the token-by-token fallback
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda/common.cuh"
#include "cuda/prefill/prefill.cuh"

enum {
    OP_EMBED, OP_NORM, OP_GEMM_IN, OP_CONV, OP_PREP, OP_SCAN, OP_OUT, OP_GEMM_OUT, OP_GEMM_QKV, OP_QK_ROPE, OP_ATTN, OP_GEMM_O,
    OP_GEMM_GU, OP_SWIGLU, OP_GEMM_DOWN, OP_LM_HEAD, OP_STATE, OP_W16,
};
static const char *const k_op_names[MD_PF_N_OPS] = {
    "embed", "rmsnorm", "gemm w_in", "conv+silu+l2", "delta prep", "delta scan", "delta out+gnorm", "gemm w_out (+res)",
    "gemm w_qkv", "qk norm+rope", "attention", "gemm w_o (+res)", "gemm w_gu", "swiglu", "gemm w_down (+res)", "lm head",
    "conv state copy", "fp16 weights",
};
static const bool k_op_gemm[MD_PF_N_OPS] = {false, false, true, false, false, false, false, true,
                                            true,  false, false, true, true,  false, true,  true, false, false};

static size_t align_up(size_t x) { return (x + 255) & ~(size_t)255; }

/* ---------------------------------------------------------------- fp16 weights */

/* Elements of a layer's GEMM weights, each matrix padded to 256 bytes. */
static size_t pad_elems(size_t n) { return (n + 127) & ~(size_t)127; }

static size_t layer_w16_elems(const md_cuda_dims *d, bool full) {
    size_t n = pad_elems((size_t)2 * d->I * d->H) + pad_elems((size_t)d->H * d->I);
    if (full) n += pad_elems((size_t)d->n_qkv * d->H) + pad_elems((size_t)d->H * d->qd);
    else n += pad_elems((size_t)d->n_in * d->H) + pad_elems((size_t)d->H * d->Vd);
    return n;
}

/* Converts layer l's weights into dst (laid out as layer_w16_elems says). */
static md_status convert_layer(const md_cuda_ctx *g, int l, __half *dst, md_prefill_w16 *w, cudaStream_t stream) {
    const md_cuda_dims *d = &g->dims;
    const md_cuda_layer *L = &g->layers[l];
    md_status st;
    struct {
        const __nv_bfloat16 *src;
        __half **dst;
        size_t n;
    } mats[4] = {
        {L->w_gu, &w->w_gu, (size_t)2 * d->I * d->H},
        {L->w_down, &w->w_down, (size_t)d->H * d->I},
        {L->full ? L->w_qkv : L->w_in, L->full ? &w->w_qkv : &w->w_in, (size_t)(L->full ? d->n_qkv : d->n_in) * d->H},
        {L->full ? L->w_o : L->w_out, L->full ? &w->w_o : &w->w_out, (size_t)d->H * (L->full ? d->qd : d->Vd)},
    };
    for (int i = 0; i < 4; i++) {
        *mats[i].dst = dst;
        if ((st = md_cuda_to_f16(mats[i].src, dst, mats[i].n, stream)) != MD_OK) return st;
        dst += pad_elems(mats[i].n);
    }
    return MD_OK;
}

/* fp16 copies of every layer when they fit with room to spare, else a
 * buffer for one layer, refilled as each layer comes. */
static md_status w16_init(md_cuda_ctx *g, struct md_prefill *p) {
    const md_cuda_dims *d = &g->dims;
    p->w16 = (md_prefill_w16 *)calloc((size_t)d->n_layers, sizeof *p->w16);
    if (!p->w16) return md_fail(MD_ERR_OUT_OF_MEMORY, "prefill: out of memory");
    size_t total = 0, largest = 0;
    for (int l = 0; l < d->n_layers; l++) {
        const size_t n = layer_w16_elems(d, g->layers[l].full);
        total += n;
        largest = n > largest ? n : largest;
    }
    size_t free_b = 0, total_b = 0;
    MD_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const size_t reserve = ((size_t)3 << 29) + total_b / 16; /* prefill scratch and other sessions */
    if (total * 2 + reserve <= free_b && !md_env_long("MEGADELTA_PREFILL_W16_STREAM", 0)) {
        MD_CUDA_CHECK(cudaMalloc(&p->w16_pool, total * 2));
        __half *at = (__half *)p->w16_pool;
        for (int l = 0; l < d->n_layers; l++) {
            md_status st = convert_layer(g, l, at, &p->w16[l], g->stream);
            if (st != MD_OK) return st;
            at += layer_w16_elems(d, g->layers[l].full);
        }
        MD_CUDA_CHECK(cudaStreamSynchronize(g->stream));
        p->w16_cached = true;
    } else {
        MD_CUDA_CHECK(cudaMalloc(&p->w16_tmp, largest * 2));
        p->w16_cached = false;
    }
    return MD_OK;
}

/* ---------------------------------------------------------------- profiling */

static md_status prof_begin(struct md_prefill *p, int op, cudaStream_t stream) {
    if (!p->profile || p->n_ev >= 512) return MD_OK;
    p->ev_op[p->n_ev] = op;
    MD_CUDA_CHECK(cudaEventRecord(p->ev[2 * p->n_ev], stream));
    return MD_OK;
}

static md_status prof_end(struct md_prefill *p, cudaStream_t stream) {
    if (!p->profile || p->n_ev >= 512) return MD_OK;
    MD_CUDA_CHECK(cudaEventRecord(p->ev[2 * p->n_ev + 1], stream));
    p->n_ev++;
    return MD_OK;
}

static md_status prof_collect(struct md_prefill *p) {
    if (!p->profile) return MD_OK;
    MD_CUDA_CHECK(cudaEventSynchronize(p->ev[2 * p->n_ev - 1 >= 0 ? 2 * p->n_ev - 1 : 0]));
    for (int i = 0; i < p->n_ev; i++) {
        float ms = 0;
        MD_CUDA_CHECK(cudaEventElapsedTime(&ms, p->ev[2 * i], p->ev[2 * i + 1]));
        p->op_ms[p->ev_op[i]] += ms;
        p->op_calls[p->ev_op[i]]++;
    }
    p->n_ev = 0;
    return MD_OK;
}

static void prof_report(struct md_prefill *p, int n, double wall_ms) {
    double total = 0, gemm = 0;
    for (int i = 0; i < MD_PF_N_OPS; i++) {
        total += p->op_ms[i];
        if (k_op_gemm[i]) gemm += p->op_ms[i];
    }
    fprintf(stderr, "prefill profile: %d tokens, %.3f ms wall (%.0f tok/s), %.3f ms in ops\n", n, wall_ms, n / wall_ms * 1e3, total);
    fprintf(stderr, "  %-20s %6s %10s %7s\n", "op", "calls", "ms", "share");
    for (int i = 0; i < MD_PF_N_OPS; i++)
        if (p->op_calls[i])
            fprintf(stderr, "  %-20s %6d %10.4f %6.1f%%\n", k_op_names[i], p->op_calls[i], p->op_ms[i], 100.0 * p->op_ms[i] / total);
    fprintf(stderr, "  GEMMs %.3f ms of %.3f ms: wall / GEMM-only = %.2f\n", gemm, total, wall_ms / gemm);
    memset(p->op_ms, 0, sizeof p->op_ms);
    memset(p->op_calls, 0, sizeof p->op_calls);
}

/* ---------------------------------------------------------------- init */

static bool fast_path_supported(const md_cuda_ctx *g, struct md_prefill *p) {
    const md_cuda_dims *d = &g->dims;
    if (md_env_long("MEGADELTA_PREFILL_STEPS", 0)) return false;
    if (d->H % 8 || d->I % 8) return false;
    if (d->n_linear > 0) {
        if (d->K != 4 || d->Hv % d->Hk) return false;
        if (!md_cuda_delta_supported(d->dk, d->dv, g->smem_optin)) return false;
    }
    if (d->n_full > 0) {
        if (d->Hq % d->Hkv || d->R % 2 || d->R > d->D) return false;
        p->attn_stages = md_cuda_attention_stages(d->D, g->smem_optin);
        if (!p->attn_stages) return false;
    }
    return true;
}

md_status md_prefill_init(md_session_t *s) {
    md_cuda_ctx *g = md_cuda_of(s);
    struct md_prefill *p = (struct md_prefill *)calloc(1, sizeof *p);
    if (!p) return md_fail(MD_ERR_OUT_OF_MEMORY, "prefill: out of memory");
    g->pre = p;
    p->fast = fast_path_supported(g, p);
    long piece = md_env_long("MEGADELTA_PREFILL_PIECE", MD_PF_PIECE);
    p->piece = piece < 1 ? MD_PF_PIECE : (int)piece;
    const md_cuda_dims *d = &g->dims;
    int w = d->n_in > d->n_qkv ? d->n_in : d->n_qkv;
    w = 2 * d->I > w ? 2 * d->I : w;
    p->ldp = (w + 7) / 8 * 8;
    p->timing = (int)md_env_long("MEGADELTA_PREFILL_PROFILE", 0);
    p->profile = p->timing == 1;
    p->graphs = md_env_long("MEGADELTA_PREFILL_GRAPH", 0) != 0 && !p->profile;
    if (!p->fast) return MD_OK;
    if (p->profile)
        for (int i = 0; i < 2 * 512; i++) MD_CUDA_CHECK(cudaEventCreate(&p->ev[i]));
    md_status st = w16_init(g, p);
    if (st != MD_OK) return st;
    return md_cuda_gemm_init(p);
}

void md_prefill_free(md_session_t *s) {
    md_cuda_ctx *g = md_cuda_of(s);
    struct md_prefill *p = g->pre;
    if (!p) return;
    md_cuda_gemm_free(p);
    if (p->graph_exec) cudaGraphExecDestroy(p->graph_exec);
    cudaFree(p->scratch);
    cudaFree(p->attn_part);
    cudaFree(p->w16_pool);
    cudaFree(p->w16_tmp);
    free(p->w16);
    if (p->profile)
        for (int i = 0; i < 2 * 512; i++)
            if (p->ev[i]) cudaEventDestroy(p->ev[i]);
    free(p);
    g->pre = NULL;
}

/* Scratch for pieces of up to cap tokens (grown on demand). */
static md_status ensure_scratch(md_cuda_ctx *g, struct md_prefill *p, int cap) {
    if (cap <= p->cap) return MD_OK;
    const md_cuda_dims *d = &g->dims;
    const size_t T = (size_t)cap, nch = (T + MD_PF_CHUNK - 1) / MD_PF_CHUNK, C = MD_PF_CHUNK;
    const size_t core_w = (size_t)(d->Vd > d->qd ? d->Vd : d->qd), mix_w = (size_t)(d->cd > d->qd ? d->cd : d->qd);
    size_t off = 0;
    const size_t o_h = off; off = align_up(off + T * d->H * 4);
    const size_t o_xn = off; off = align_up(off + T * d->H * 2);
    const size_t o_proj = off; off = align_up(off + T * p->ldp * 4);
    const size_t o_act = off; off = align_up(off + T * d->I * 2);
    const size_t o_core = off; off = align_up(off + T * core_w * 2);
    const size_t o_mix = off; off = align_up(off + T * mix_w * 2);
    const size_t o_G = off; off = align_up(off + (size_t)d->Hv * nch * C * 4);
    const size_t o_W = off; off = align_up(off + nch * d->Hv * C * d->dk * 2);
    const size_t o_U = off; off = align_up(off + nch * d->Hv * C * d->dv * 4);
    const size_t o_S = off; off = align_up(off + nch * d->Hv * (size_t)d->dk * d->dv * 2);
    const size_t o_Vn = off; off = align_up(off + nch * d->Hv * C * d->dv * 2);
    const size_t o_conv = off; off = align_up(off + g->conv_len * 4 + 4);
    cudaFree(p->scratch);
    p->scratch = NULL;
    p->cap = 0;
    p->graph_valid = false; /* a captured graph points into the old scratch */
    MD_CUDA_CHECK(cudaMalloc(&p->scratch, off));
    uint8_t *b = (uint8_t *)p->scratch;
    p->h = (float *)(b + o_h);
    p->xn = (__half *)(b + o_xn);
    p->proj = (float *)(b + o_proj);
    p->act = (__half *)(b + o_act);
    p->core = (__half *)(b + o_core);
    p->mix = (void *)(b + o_mix);
    p->G = (float *)(b + o_G);
    p->W = (__half *)(b + o_W);
    p->U = (float *)(b + o_U);
    p->S = (__half *)(b + o_S);
    p->Vn = (__half *)(b + o_Vn);
    p->conv_new = (float *)(b + o_conv);
    p->cap = cap;
    return MD_OK;
}

/* ---------------------------------------------------------------- one piece */

#define STEP(op, call)                                         \
    do {                                                       \
        if ((st = prof_begin(p, op, stream)) != MD_OK) return st; \
        if ((st = (call)) != MD_OK) return st;                 \
        if ((st = prof_end(p, stream)) != MD_OK) return st;    \
    } while (0)

/* Tokens d_tok[0..m) at positions pos..pos+m; logits of piece rows
 * [row0, m) into d_logits (row0 < 0: none). */
static md_status run_piece(md_cuda_ctx *g, struct md_prefill *p, const int32_t *d_tok, int m, int pos, int row0, float *d_logits) {
    const md_cuda_dims *d = &g->dims;
    const cudaStream_t stream = g->stream;
    const int H = d->H, ldp = p->ldp;
    md_status st;
    STEP(OP_EMBED, md_cuda_embed(d_tok, g->embed, p->h, m, H, stream));
    __half *qkv = (__half *)p->mix;
    __nv_bfloat16 *q_rot = (__nv_bfloat16 *)p->mix;
    for (int l = 0; l < d->n_layers; l++) {
        const md_cuda_layer *L = &g->layers[l];
        const md_prefill_w16 *W = &p->w16[l];
        if (!p->w16_cached) {
            STEP(OP_W16, convert_layer(g, l, p->w16_tmp, &p->w16[l], stream));
        }
        STEP(OP_NORM, md_cuda_rmsnorm(p->h, L->attn_norm, p->xn, m, H, d->eps, stream));
        if (!L->full) {
            STEP(OP_GEMM_IN, md_cuda_gemm(p, p->xn, H, W->w_in, false, p->proj, ldp, false, m, d->n_in, H, stream));
            const size_t conv_off = (size_t)L->slot * d->cd * (d->K - 1);
            STEP(OP_CONV, md_cuda_conv(p->proj, ldp, L->conv_w, g->conv_state + conv_off, p->conv_new + conv_off, qkv, m, d->cd,
                                       d->Kd, d->dk, stream));
            md_delta_args a;
            memset(&a, 0, sizeof a);
            a.m = m;
            a.n_chunks = (m + MD_PF_CHUNK - 1) / MD_PF_CHUNK;
            a.Hk = d->Hk, a.Hv = d->Hv, a.Kd = d->Kd, a.Vd = d->Vd, a.cd = d->cd;
            a.qkv = qkv;
            a.proj = p->proj;
            a.ldp = ldp;
            a.A_log = L->A_log, a.dt_bias = L->dt_bias, a.gnorm = L->gnorm;
            a.eps = d->eps;
            a.G = p->G, a.W = p->W, a.U = p->U, a.S = p->S, a.Vn = p->Vn;
            a.state = g->ssm_state + (size_t)L->slot * d->Hv * d->dv * d->dk;
            a.out = p->core;
            STEP(OP_PREP, md_cuda_delta_prep(&a, d->dk, d->dv, stream));
            STEP(OP_SCAN, md_cuda_delta_scan(&a, d->dk, d->dv, stream));
            STEP(OP_OUT, md_cuda_delta_out(&a, d->dk, d->dv, stream));
            STEP(OP_GEMM_OUT, md_cuda_gemm(p, p->core, d->Vd, W->w_out, false, p->h, H, true, m, H, d->Vd, stream));
        } else {
            STEP(OP_GEMM_QKV, md_cuda_gemm(p, p->xn, H, W->w_qkv, false, p->proj, ldp, false, m, d->n_qkv, H, stream));
            const size_t cache_off = (size_t)L->slot * d->n_ctx * d->kvd;
            STEP(OP_QK_ROPE, md_cuda_qk_norm_rope(p->proj, ldp, L->q_norm, L->k_norm, g->d_inv_freq, q_rot, g->k_cache + cache_off,
                                                  g->v_cache + cache_off, m, pos, d->Hq, d->Hkv, d->D, d->R, d->eps, stream));
            md_attn_args a;
            memset(&a, 0, sizeof a);
            a.m = m, a.pos = pos;
            a.Hq = d->Hq, a.Hkv = d->Hkv, a.qd = d->qd, a.kvd = d->kvd;
            a.q = q_rot;
            a.k = g->k_cache + cache_off;
            a.v = g->v_cache + cache_off;
            a.proj = p->proj;
            a.ldp = ldp;
            a.out = p->core;
            a.tiles_per_split = md_cuda_attention_split(d->D, m, pos, d->Hq, 2 * g->sm_count);
            a.part = p->attn_part; /* sized by ensure_attn_parts */
            STEP(OP_ATTN, md_cuda_attention(&a, d->D, p->attn_stages, stream));
            STEP(OP_GEMM_O, md_cuda_gemm(p, p->core, d->qd, W->w_o, false, p->h, H, true, m, H, d->qd, stream));
        }
        STEP(OP_NORM, md_cuda_rmsnorm(p->h, L->mlp_norm, p->xn, m, H, d->eps, stream));
        STEP(OP_GEMM_GU, md_cuda_gemm(p, p->xn, H, W->w_gu, false, p->proj, ldp, false, m, 2 * d->I, H, stream));
        STEP(OP_SWIGLU, md_cuda_swiglu(p->proj, ldp, p->act, m, d->I, stream));
        STEP(OP_GEMM_DOWN, md_cuda_gemm(p, p->act, d->I, W->w_down, false, p->h, H, true, m, H, d->I, stream));
    }
    if (d->n_linear > 0) {
        if ((st = prof_begin(p, OP_STATE, stream)) != MD_OK) return st;
        MD_CUDA_CHECK(cudaMemcpyAsync(g->conv_state, p->conv_new, g->conv_len * sizeof(float), cudaMemcpyDeviceToDevice, stream));
        if ((st = prof_end(p, stream)) != MD_OK) return st;
    }
    if (row0 >= 0 && row0 < m) {
        const int rows = m - row0;
        if ((st = prof_begin(p, OP_LM_HEAD, stream)) != MD_OK) return st;
        __nv_bfloat16 *xb = (__nv_bfloat16 *)p->xn; /* the LM head is the bf16 embedding */
        if ((st = md_cuda_rmsnorm_bf16(p->h + (size_t)row0 * H, g->final_norm, xb, rows, H, d->eps, stream)) != MD_OK) return st;
        if ((st = md_cuda_gemm(p, xb, H, g->lm_head, true, d_logits, d->vocab, false, rows, d->vocab, H, stream)) != MD_OK) return st;
        if ((st = prof_end(p, stream)) != MD_OK) return st;
    }
    return MD_OK;
}

/* Split-KV partials for every piece of a call (allocated before any capture). */
static md_status ensure_attn_parts(md_cuda_ctx *g, struct md_prefill *p, int n, int pos, int piece) {
    const md_cuda_dims *d = &g->dims;
    if (d->n_full == 0) return MD_OK;
    int need = 0;
    for (int t0 = 0; t0 < n; t0 += piece) {
        const int m = n - t0 < piece ? n - t0 : piece;
        const int tps = md_cuda_attention_split(d->D, m, pos + t0, d->Hq, 2 * g->sm_count);
        const int parts = md_cuda_attention_parts(d->D, m, pos + t0, d->Hq, tps);
        need = parts > need ? parts : need;
    }
    if (need <= p->attn_max_parts) return MD_OK;
    cudaFree(p->attn_part);
    p->attn_part = NULL;
    p->attn_max_parts = 0;
    p->graph_valid = false;
    MD_CUDA_CHECK(cudaMalloc(&p->attn_part, (size_t)need * MD_PF_CHUNK * (d->D + 2) * sizeof(float)));
    p->attn_max_parts = need;
    return MD_OK;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The fallback: one decode step per token. */
static md_status run_steps(md_session_t *s, const int32_t *tokens, int n, float *d_logits, int n_rows) {
    md_cuda_ctx *g = md_cuda_of(s);
    const size_t V = (size_t)g->dims.vocab;
    for (int t = 0; t < n; t++) {
        const int row = t - (n - n_rows);
        md_status st = md_decode_run(s, s->pos + t, tokens[t], 1, NULL, row >= 0 && d_logits ? d_logits + (size_t)row * V : NULL, NULL);
        if (st != MD_OK) return st;
    }
    return MD_OK;
}

/* Every piece of the call, launched on the stream (or captured). */
static md_status run_pieces(md_session_t *s, struct md_prefill *p, int n, float *d_logits, int n_rows, int piece) {
    md_cuda_ctx *g = md_cuda_of(s);
    const int first_row = n - n_rows; /* token index of logits row 0 */
    for (int t0 = 0; t0 < n; t0 += piece) {
        const int m = n - t0 < piece ? n - t0 : piece;
        int row0 = -1;
        float *dl = NULL;
        if (n_rows > 0 && t0 + m > first_row) {
            row0 = first_row > t0 ? first_row - t0 : 0;
            dl = d_logits + (size_t)(t0 + row0 - first_row) * g->dims.vocab;
        }
        md_status st = run_piece(g, p, g->d_tokens + t0, m, s->pos + t0, row0, dl);
        if (st != MD_OK) return st;
        if ((st = prof_collect(p)) != MD_OK) return st;
    }
    return MD_OK;
}

md_status md_prefill_run(md_session_t *s, const int32_t *tokens, int n, float *d_logits, int n_rows) {
    md_cuda_ctx *g = md_cuda_of(s);
    struct md_prefill *p = g->pre;
    if (n <= 0) return MD_OK;
    if (!d_logits) n_rows = 0;
    if (!p->fast) return run_steps(s, tokens, n, d_logits, n_rows);
    const double h0 = now_ms();
    const int piece = n < p->piece ? n : p->piece;
    md_status st = ensure_scratch(g, p, piece);
    if (st == MD_OK) st = ensure_attn_parts(g, p, n, s->pos, piece);
    if (st != MD_OK) return st;
    cudaEvent_t e0 = NULL, e1 = NULL;
    if (p->profile) {
        MD_CUDA_CHECK(cudaEventCreate(&e0));
        MD_CUDA_CHECK(cudaEventCreate(&e1));
        MD_CUDA_CHECK(cudaEventRecord(e0, g->stream));
    }
    MD_CUDA_CHECK(cudaMemcpyAsync(g->d_tokens, tokens, (size_t)n * sizeof(int32_t), cudaMemcpyHostToDevice, g->stream));
    const long long key[4] = {n, s->pos, n_rows, (long long)(uintptr_t)d_logits};
    const bool same_as_graph = p->graph_valid && !memcmp(key, p->graph_key, sizeof key);
    const bool same_as_last = p->last_valid && !memcmp(key, p->last_key, sizeof key);
    memcpy(p->last_key, key, sizeof key);
    p->last_valid = true;
    const char *path = "eager";
    if (p->graphs && same_as_graph) {
        path = "graph replay";
        MD_CUDA_CHECK(cudaGraphLaunch(p->graph_exec, g->stream));
    } else if (p->graphs && same_as_last) {
        path = "graph capture";
        cudaGraph_t graph = NULL;
        MD_CUDA_CHECK(cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeRelaxed));
        st = run_pieces(s, p, n, d_logits, n_rows, piece);
        cudaError_t e = cudaStreamEndCapture(g->stream, &graph);
        if (st != MD_OK) {
            if (graph) cudaGraphDestroy(graph);
            return st;
        }
        MD_CUDA_CHECK(e);
        if (p->graph_exec) cudaGraphExecDestroy(p->graph_exec);
        p->graph_exec = NULL;
        p->graph_valid = false;
        e = cudaGraphInstantiate(&p->graph_exec, graph, 0);
        cudaGraphDestroy(graph);
        MD_CUDA_CHECK(e);
        memcpy(p->graph_key, key, sizeof key);
        p->graph_valid = true;
        MD_CUDA_CHECK(cudaGraphLaunch(p->graph_exec, g->stream));
    } else if ((st = run_pieces(s, p, n, d_logits, n_rows, piece)) != MD_OK) {
        return st;
    }
    const double h1 = now_ms();
    if (p->profile) {
        MD_CUDA_CHECK(cudaEventRecord(e1, g->stream));
        MD_CUDA_CHECK(cudaEventSynchronize(e1));
        float ms = 0;
        MD_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        prof_report(p, n, ms);
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
    }
    MD_CUDA_CHECK(cudaStreamSynchronize(g->stream));
    if (p->timing == 2)
        fprintf(stderr, "prefill timing: %d tokens at pos %d, %s: host enqueue %.3f ms, total %.3f ms\n", n, s->pos, path, h1 - h0,
                now_ms() - h0);
    return MD_OK;
}
