/*
 * backend.cu — the CUDA backend: device checks, weight upload into the fused
 * layouts of backend.cuh, state allocation, and the md_backend_ops that route
 * prefill to the prefill pipeline and decode to the megakernel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "cuda/backend.cuh"
#include "cuda/common.cuh"

bool md_cuda_device_available(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        cudaGetLastError();
        return false;
    }
    int major = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
    return major >= 8;
}

/* ---------------------------------------------------------------- upload */

/* Weights are placed in one pool; a first pass only measures. */
typedef struct pool_writer {
    uint8_t *base;   /* device pool (NULL in the measuring pass) */
    size_t used;
    uint16_t *stage; /* host staging buffer for one matrix */
    size_t stage_len;
    md_status st;
} pool_writer;

static void *pool_place(pool_writer *w, size_t bytes) {
    size_t off = (w->used + 255) & ~(size_t)255;
    w->used = off + bytes;
    return w->base ? w->base + off : NULL;
}

static uint16_t *stage_buf(pool_writer *w, size_t n) {
    if (n > w->stage_len) {
        uint16_t *nb = (uint16_t *)realloc(w->stage, n * sizeof *nb);
        if (!nb) {
            w->st = md_fail(MD_ERR_OUT_OF_MEMORY, "GPU upload: out of host memory");
            return NULL;
        }
        w->stage = nb;
        w->stage_len = n;
    }
    return w->stage;
}

/* Row r of a host matrix into bf16. */
static void row_to_bf16(const md_matrix *m, int r, uint16_t *dst) {
    const size_t cols = (size_t)m->cols;
    if (m->dtype == MD_DTYPE_BF16) {
        memcpy(dst, (const uint16_t *)m->data + (size_t)r * cols, cols * 2);
    } else {
        const float *src = (const float *)m->data + (size_t)r * cols;
        for (size_t c = 0; c < cols; c++) dst[c] = md_f32_to_bf16(src[c]);
    }
}

/* A fused matrix: the rows of `parts` stacked in order (interleave > 0: rows
 * taken alternately, one from each part, as for gate/up). */
static const __nv_bfloat16 *upload_rows(pool_writer *w, const md_matrix *const *parts, int n_parts, bool interleave) {
    int rows = 0;
    const int cols = parts[0]->cols;
    for (int i = 0; i < n_parts; i++) rows += parts[i]->rows;
    void *dst = pool_place(w, (size_t)rows * cols * 2);
    if (!w->base || w->st != MD_OK) return (const __nv_bfloat16 *)dst;
    uint16_t *buf = stage_buf(w, (size_t)rows * cols);
    if (!buf) return NULL;
    int out = 0;
    if (interleave) {
        for (int r = 0; r < parts[0]->rows; r++)
            for (int i = 0; i < n_parts; i++) row_to_bf16(parts[i], r, buf + (size_t)(out++) * cols);
    } else {
        for (int i = 0; i < n_parts; i++)
            for (int r = 0; r < parts[i]->rows; r++) row_to_bf16(parts[i], r, buf + (size_t)(out++) * cols);
    }
    cudaError_t e = cudaMemcpy(dst, buf, (size_t)rows * cols * 2, cudaMemcpyHostToDevice);
    if (e != cudaSuccess) w->st = md_cuda_fail(e, "cudaMemcpy (weights)", __FILE__, __LINE__);
    return (const __nv_bfloat16 *)dst;
}

static const __nv_bfloat16 *upload_matrix(pool_writer *w, const md_matrix *m) {
    const md_matrix *p[1] = {m};
    return upload_rows(w, p, 1, false);
}

static const float *upload_f32(pool_writer *w, const float *src, size_t n) {
    void *dst = pool_place(w, n * sizeof(float));
    if (w->base && w->st == MD_OK) {
        cudaError_t e = cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyHostToDevice);
        if (e != cudaSuccess) w->st = md_cuda_fail(e, "cudaMemcpy (weights)", __FILE__, __LINE__);
    }
    return (const float *)dst;
}

static void upload_all(md_cuda_ctx *g, const md_model *m, pool_writer *w) {
    const md_config *c = &m->cfg;
    const md_cuda_dims *d = &g->dims;
    g->embed = upload_matrix(w, &m->embed);
    g->lm_head = c->tied ? g->embed : upload_matrix(w, &m->lm_head);
    g->final_norm = upload_f32(w, m->final_norm, d->H);
    for (int l = 0; l < c->n_layers; l++) {
        const md_layer *L = &m->layers[l];
        md_cuda_layer *G = &g->layers[l];
        G->attn_norm = upload_f32(w, L->attn_norm, d->H);
        G->mlp_norm = upload_f32(w, L->mlp_norm, d->H);
        const md_matrix *gu[2] = {&L->gate, &L->up};
        G->w_gu = upload_rows(w, gu, 2, true);
        G->w_down = upload_matrix(w, &L->down);
        if (L->full) {
            /* q_proj rows are already [q_h | gate_h] per head */
            const md_matrix *qkv[3] = {&L->q, &L->k, &L->v};
            G->w_qkv = upload_rows(w, qkv, 3, false);
            G->w_o = upload_matrix(w, &L->o);
            G->q_norm = upload_f32(w, L->q_norm, d->D);
            G->k_norm = upload_f32(w, L->k_norm, d->D);
        } else {
            const md_matrix *in[4] = {&L->in_qkv, &L->in_z, &L->in_b, &L->in_a};
            G->w_in = upload_rows(w, in, 4, false);
            G->w_out = upload_matrix(w, &L->out);
            G->conv_w = upload_f32(w, L->conv, (size_t)d->cd * d->K);
            G->A_log = upload_f32(w, L->A_log, d->Hv);
            G->dt_bias = upload_f32(w, L->dt_bias, d->Hv);
            G->gnorm = upload_f32(w, L->gnorm, d->dv);
        }
    }
}

static md_cuda_dims dims_of(const md_config *c, int n_ctx) {
    md_cuda_dims d;
    memset(&d, 0, sizeof d);
    d.vocab = c->vocab_size;
    d.H = c->hidden_size;
    d.I = c->intermediate_size;
    d.n_layers = c->n_layers;
    d.n_full = md_cfg_n_full(c);
    d.n_linear = c->n_layers - d.n_full;
    d.Hq = c->n_heads;
    d.Hkv = c->n_kv_heads;
    d.D = c->head_dim;
    d.R = c->rope_dim;
    d.Hk = c->lin_n_k_heads;
    d.Hv = c->lin_n_v_heads;
    d.dk = c->lin_k_dim;
    d.dv = c->lin_v_dim;
    d.K = c->conv_kernel;
    d.Kd = md_cfg_lin_key_dim(c);
    d.Vd = md_cfg_lin_value_dim(c);
    d.cd = md_cfg_conv_dim(c);
    d.qd = md_cfg_q_dim(c);
    d.kvd = md_cfg_kv_dim(c);
    d.n_in = d.cd + d.Vd + 2 * d.Hv;
    d.n_qkv = 2 * d.qd + 2 * d.kvd;
    d.eps = c->rms_eps;
    d.rope_theta = c->rope_theta;
    d.n_ctx = n_ctx;
    return d;
}

/* The kernels move rows with 16-byte copies and split heads across warps:
 * refuse shapes they were not written for, by name. */
static md_status check_dims(const md_cuda_dims *d) {
    const struct {
        const char *name;
        int v, mult;
    } req[] = {
        {"hidden_size", d->H, 8},          {"intermediate_size", d->I, 8}, {"linear value dim (heads x dv)", d->Vd, 8},
        {"attention width (heads x head_dim)", d->qd, 8}, {"head_dim", d->D, 8},      {"linear_key_head_dim", d->dk, 4},
        {"linear_value_head_dim", d->dv, 4},
    };
    for (size_t i = 0; i < sizeof req / sizeof *req; i++)
        if (req[i].v % req[i].mult)
            return md_fail(MD_ERR_UNSUPPORTED, "GPU backend: %s = %d is not a multiple of %d", req[i].name, req[i].v, req[i].mult);
    if (d->D > 512) return md_fail(MD_ERR_UNSUPPORTED, "GPU backend: head_dim %d > 512 is not supported", d->D);
    if (d->dk > 256 || d->dv > 256) return md_fail(MD_ERR_UNSUPPORTED, "GPU backend: DeltaNet head dims above 256 are not supported");
    if (d->K < 1 || d->K > 8) return md_fail(MD_ERR_UNSUPPORTED, "GPU backend: conv kernel %d not in 1..8", d->K);
    return MD_OK;
}

static void cuda_free(md_session_t *s) {
    md_cuda_ctx *g = md_cuda_of(s);
    if (!g) return;
    cudaSetDevice(g->device);
    if (g->dec) md_decode_free(s);
    if (g->pre) md_prefill_free(s);
    md_cuda_sampler_free(g);
    cudaFree(g->weight_pool);
    cudaFree(g->conv_state);
    cudaFree(g->ssm_state);
    cudaFree(g->k_cache);
    cudaFree(g->v_cache);
    cudaFree(g->d_logits);
    cudaFree(g->d_inv_freq);
    cudaFree(g->d_tokens);
    if (g->stream) cudaStreamDestroy(g->stream);
    free(g->layers);
    free(g);
    s->impl = NULL;
}

static md_status cuda_reset(md_session_t *s) {
    md_cuda_ctx *g = md_cuda_of(s);
    MD_CUDA_CHECK(cudaMemsetAsync(g->conv_state, 0, g->conv_len * sizeof(float), g->stream));
    MD_CUDA_CHECK(cudaMemsetAsync(g->ssm_state, 0, g->ssm_len * sizeof(float), g->stream));
    md_status st = md_decode_reset(s);
    if (st != MD_OK) return st;
    MD_CUDA_CHECK(cudaStreamSynchronize(g->stream));
    return MD_OK;
}

static md_status cuda_init(md_session_t *s) {
    const md_model *m = s->model;
    const md_config *c = &m->cfg;
    md_status st = MD_OK;
    int n_dev = 0;
    cudaError_t e = cudaGetDeviceCount(&n_dev);
    if (e != cudaSuccess || n_dev == 0) {
        cudaGetLastError();
        return md_fail(MD_ERR_NO_DEVICE, "no CUDA device found%s%s (use --backend cpu)", e != cudaSuccess ? ": " : "",
                       e != cudaSuccess ? cudaGetErrorString(e) : "");
    }
    md_cuda_ctx *g = (md_cuda_ctx *)calloc(1, sizeof *g);
    if (!g) return md_fail(MD_ERR_OUT_OF_MEMORY, "GPU session: out of memory");
    s->impl = g;
    pool_writer w;
    memset(&w, 0, sizeof w);
    cudaDeviceProp prop;
    MD_CUDA_TRY(cudaGetDeviceProperties(&prop, 0));
    g->device = 0;
    MD_CUDA_TRY(cudaSetDevice(0));
    snprintf(g->name, sizeof g->name, "%s", prop.name);
    g->sm_count = prop.multiProcessorCount;
    g->cc_major = prop.major;
    g->cc_minor = prop.minor;
    g->smem_optin = prop.sharedMemPerBlockOptin;
    if (prop.major < 8) {
        st = md_fail(MD_ERR_NO_DEVICE, "%s has compute capability %d.%d; the GPU backend needs 8.0 or newer (use --backend cpu)",
                     prop.name, prop.major, prop.minor);
        goto fail;
    }
    g->dims = dims_of(c, s->n_ctx);
    if ((st = check_dims(&g->dims)) != MD_OK) goto fail;
    g->layers = (md_cuda_layer *)calloc((size_t)c->n_layers, sizeof *g->layers);
    if (!g->layers) {
        st = md_fail(MD_ERR_OUT_OF_MEMORY, "GPU session: out of memory");
        goto fail;
    }
    for (int l = 0, nf = 0, nl = 0; l < c->n_layers; l++) {
        g->layers[l].full = c->layer_full[l];
        g->layers[l].slot = c->layer_full[l] ? nf++ : nl++;
    }
    {
        const md_cuda_dims *d = &g->dims;
        g->conv_len = (size_t)d->n_linear * d->cd * (d->K - 1);
        g->ssm_len = (size_t)d->n_linear * d->Hv * d->dv * d->dk;
        g->kv_len = (size_t)d->n_full * s->n_ctx * d->kvd;
        /* measure, then check the device can hold everything before allocating */
        upload_all(g, m, &w);
        g->weight_bytes = w.used;
        size_t need = w.used + (g->conv_len + g->ssm_len) * 4 + 2 * g->kv_len * 2 + (size_t)d->vocab * 4 * 2 +
                      (size_t)s->n_ctx * 8 + (64u << 20);
        size_t free_b = 0, total_b = 0;
        MD_CUDA_TRY(cudaMemGetInfo(&free_b, &total_b));
        if (need > free_b) {
            st = md_fail(MD_ERR_OUT_OF_MEMORY,
                         "GPU out of memory: this model with a %d-token context needs %.2f GB (KV cache %.2f GB) but %s has %.2f GB free; try a smaller --ctx",
                         s->n_ctx, need / 1e9, 4.0 * g->kv_len / 1e9, g->name, free_b / 1e9);
            goto fail;
        }
        MD_CUDA_TRY(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking));
        MD_CUDA_TRY(cudaMalloc(&g->weight_pool, w.used));
        w.base = (uint8_t *)g->weight_pool;
        w.used = 0;
        upload_all(g, m, &w);
        if ((st = w.st) != MD_OK) goto fail;
        MD_CUDA_TRY(cudaMalloc(&g->conv_state, (g->conv_len + 1) * sizeof(float)));
        MD_CUDA_TRY(cudaMalloc(&g->ssm_state, (g->ssm_len + 1) * sizeof(float)));
        MD_CUDA_TRY(cudaMalloc(&g->k_cache, (g->kv_len + 1) * 2));
        MD_CUDA_TRY(cudaMalloc(&g->v_cache, (g->kv_len + 1) * 2));
        MD_CUDA_TRY(cudaMalloc(&g->d_logits, (size_t)d->vocab * sizeof(float)));
        g->logits_rows = 1;
        MD_CUDA_TRY(cudaMalloc(&g->d_tokens, (size_t)s->n_ctx * sizeof(int32_t)));
        float *inv = (float *)malloc((size_t)d->R / 2 * sizeof(float));
        if (!inv) {
            st = md_fail(MD_ERR_OUT_OF_MEMORY, "GPU session: out of memory");
            goto fail;
        }
        for (int i = 0; i < d->R / 2; i++) inv[i] = 1.0f / powf(d->rope_theta, (float)(2 * i) / (float)d->R);
        e = cudaMalloc(&g->d_inv_freq, (size_t)d->R / 2 * sizeof(float));
        if (e == cudaSuccess) e = cudaMemcpy(g->d_inv_freq, inv, (size_t)d->R / 2 * sizeof(float), cudaMemcpyHostToDevice);
        free(inv);
        MD_CUDA_TRY(e);
    }
    free(w.stage);
    w.stage = NULL;
    if ((st = md_decode_init(s)) != MD_OK) goto fail;
    if ((st = md_prefill_init(s)) != MD_OK) goto fail;
    if ((st = cuda_reset(s)) != MD_OK) goto fail;
    return MD_OK;
fail:
    free(w.stage);
    cuda_free(s);
    return st;
}

/* Grows d_logits to hold n_rows rows. */
static md_status ensure_logits(md_cuda_ctx *g, int n_rows) {
    if (n_rows <= g->logits_rows) return MD_OK;
    cudaFree(g->d_logits);
    g->d_logits = NULL;
    g->logits_rows = 0;
    MD_CUDA_CHECK(cudaMalloc(&g->d_logits, (size_t)n_rows * g->dims.vocab * sizeof(float)));
    g->logits_rows = n_rows;
    return MD_OK;
}

static md_status cuda_prefill(md_session_t *s, const int32_t *tokens, int n, float *logits, int n_rows) {
    md_cuda_ctx *g = md_cuda_of(s);
    md_status st = ensure_logits(g, n_rows > 1 ? n_rows : 1);
    if (st != MD_OK) return st;
    if ((st = md_prefill_run(s, tokens, n, logits ? g->d_logits : NULL, logits ? n_rows : 0)) != MD_OK) return st;
    if (logits)
        MD_CUDA_CHECK(cudaMemcpyAsync(logits, g->d_logits, (size_t)n_rows * g->dims.vocab * sizeof(float),
                                      cudaMemcpyDeviceToHost, g->stream));
    MD_CUDA_CHECK(cudaStreamSynchronize(g->stream)); /* the state is complete when prefill returns */
    return MD_OK;
}

static md_status cuda_decode(md_session_t *s, int32_t token, float *logits, int32_t *argmax) {
    md_cuda_ctx *g = md_cuda_of(s);
    int32_t next;
    md_status st = md_decode_run(s, s->pos, token, 1, &next, logits ? g->d_logits : NULL, NULL);
    if (st != MD_OK) return st;
    if (logits) {
        MD_CUDA_CHECK(cudaMemcpyAsync(logits, g->d_logits, (size_t)g->dims.vocab * sizeof(float), cudaMemcpyDeviceToHost, g->stream));
        MD_CUDA_CHECK(cudaStreamSynchronize(g->stream));
    }
    if (argmax) *argmax = next;
    return MD_OK;
}

/* A non-greedy step: the decode kernel leaves the logits on the device and
 * the sampling kernel picks from them there (4 bytes come back). */
static md_status cuda_decode_sample(md_session_t *s, int32_t token, const md_sampler_params *p, const int32_t *hist, int n_hist,
                                    float u, int32_t *next) {
    md_cuda_ctx *g = md_cuda_of(s);
    int32_t argmax;
    md_status st = md_decode_run(s, s->pos, token, 1, &argmax, g->d_logits, NULL);
    if (st != MD_OK) return st;
    return md_cuda_sample(g, g->d_logits, p, hist, n_hist, u, next);
}

md_status md_cuda_sample_host_logits(md_session_t *s, const float *logits, const md_sampler_params *p, const int32_t *hist,
                                     int n_hist, float u, int32_t *out) {
    if (!s || s->ops != &md_cuda_backend) return md_fail(MD_ERR_INVALID_ARG, "md_cuda_sample_host_logits: not a GPU session");
    md_cuda_ctx *g = md_cuda_of(s);
    MD_CUDA_CHECK(cudaMemcpyAsync(g->d_logits, logits, (size_t)g->dims.vocab * sizeof(float), cudaMemcpyHostToDevice, g->stream));
    return md_cuda_sample(g, g->d_logits, p, hist, n_hist, u, out);
}

static md_status cuda_generate_argmax(md_session_t *s, int32_t first, int n, int32_t *out, double *seconds) {
    return md_decode_run(s, s->pos, first, n, out, NULL, seconds);
}

const md_backend_ops md_cuda_backend = {
    /* .name = */ "cuda",
    /* .init = */ cuda_init,
    /* .free = */ cuda_free,
    /* .reset = */ cuda_reset,
    /* .prefill = */ cuda_prefill,
    /* .decode = */ cuda_decode,
    /* .generate_argmax = */ cuda_generate_argmax,
    /* .decode_sample = */ cuda_decode_sample,
};
