/*
 * engine.c — sessions: backend choice, argument and context checks, and the
 * dispatch to the CPU or CUDA backend.
 */
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <time.h>

#include "common/status.h"
#include "session.h"

md_session_params md_session_default_params(void) {
    md_session_params p = {.backend = MD_BACKEND_AUTO, .n_ctx = 0, .n_threads = 0, .kernel = MD_KERNEL_AUTO};
    return p;
}

static md_status choose_backend(md_backend want, const md_backend_ops **ops, md_backend *kind) {
    switch (want) {
    case MD_BACKEND_CPU:
        *ops = &md_cpu_backend;
        *kind = MD_BACKEND_CPU;
        return MD_OK;
    case MD_BACKEND_GPU:
#ifdef MD_HAVE_CUDA
        *ops = &md_cuda_backend;
        *kind = MD_BACKEND_GPU;
        return MD_OK;
#else
        return md_fail(MD_ERR_NO_DEVICE, "GPU backend not available: this build of megadelta has no CUDA support");
#endif
    case MD_BACKEND_AUTO:
#ifdef MD_HAVE_CUDA
        if (md_cuda_device_available()) return choose_backend(MD_BACKEND_GPU, ops, kind);
#endif
        return choose_backend(MD_BACKEND_CPU, ops, kind);
    }
    return md_fail(MD_ERR_INVALID_ARG, "unknown backend %d", (int)want);
}

md_status md_session_init(md_model_t *model, const md_session_params *params, md_session_t **out) {
    *out = NULL;
    if (!model) return md_fail(MD_ERR_INVALID_ARG, "md_session_init: no model");
    md_session_params p = params ? *params : md_session_default_params();
    const md_config *c = &model->cfg;
    int def_ctx = c->max_pos < 32768 ? c->max_pos : 32768;
    if (p.n_ctx < 0) return md_fail(MD_ERR_INVALID_ARG, "context size must be positive (got %d)", p.n_ctx);
    if (p.n_ctx > c->max_pos)
        return md_fail(MD_ERR_INVALID_ARG, "context size %d exceeds the model's max_position_embeddings (%d)", p.n_ctx, c->max_pos);
    if (p.n_threads < 0) return md_fail(MD_ERR_INVALID_ARG, "thread count must be positive (got %d)", p.n_threads);

    md_session_t *s = calloc(1, sizeof *s);
    if (!s) return md_fail(MD_ERR_OUT_OF_MEMORY, "session: out of memory");
    s->model = model;
    s->params = p;
    s->n_ctx = p.n_ctx ? p.n_ctx : def_ctx;
    s->n_threads = p.n_threads ? p.n_threads : omp_get_num_procs();
    md_status st = choose_backend(p.backend, &s->ops, &s->backend);
    if (st == MD_OK) st = s->ops->init(s);
    if (st != MD_OK) {
        free(s);
        return st;
    }
    *out = s;
    return MD_OK;
}

void md_session_free(md_session_t *s) {
    if (!s) return;
    s->ops->free(s);
    free(s);
}

md_status md_session_reset(md_session_t *s) {
    md_status st = s->ops->reset(s);
    if (st == MD_OK) s->pos = 0;
    return st;
}

int md_session_pos(const md_session_t *s) { return s->pos; }
int md_session_n_ctx(const md_session_t *s) { return s->n_ctx; }
md_backend md_session_backend(const md_session_t *s) { return s->backend; }
const char *md_session_backend_name(const md_session_t *s) { return s->ops->name; }

static md_status check_tokens(const md_session_t *s, const int32_t *tokens, int n) {
    const int vocab = s->model->cfg.vocab_size;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return md_fail(MD_ERR_INVALID_ARG, "token id %d at index %d is outside the vocabulary (0..%d)", tokens[i], i, vocab - 1);
    if (n > s->n_ctx - s->pos)
        return md_fail(MD_ERR_CONTEXT_FULL, "context full: %d tokens at position %d would pass the context size %d (raise --ctx, at most %d)",
                       n, s->pos, s->n_ctx, s->model->cfg.max_pos);
    return MD_OK;
}

md_status md_session_prefill(md_session_t *s, const int32_t *tokens, int n, float *logits, int n_rows) {
    if (!s || (!tokens && n > 0) || n < 0) return md_fail(MD_ERR_INVALID_ARG, "md_session_prefill: bad arguments");
    if (n == 0) return MD_OK;
    if (logits && (n_rows < 1 || n_rows > n))
        return md_fail(MD_ERR_INVALID_ARG, "md_session_prefill: n_rows %d must be in 1..%d", n_rows, n);
    md_status st = check_tokens(s, tokens, n);
    if (st != MD_OK) return st;
    st = s->ops->prefill(s, tokens, n, logits, logits ? n_rows : 0);
    if (st == MD_OK) s->pos += n;
    return st;
}

md_status md_session_decode(md_session_t *s, int32_t token, float *logits) {
    if (!s) return md_fail(MD_ERR_INVALID_ARG, "md_session_decode: no session");
    md_status st = check_tokens(s, &token, 1);
    if (st != MD_OK) return st;
    st = s->ops->decode(s, token, logits, NULL);
    if (st == MD_OK) s->pos++;
    return st;
}

md_status md_session_decode_argmax(md_session_t *s, int32_t token, int32_t *next) {
    if (!s || !next) return md_fail(MD_ERR_INVALID_ARG, "md_session_decode_argmax: bad arguments");
    md_status st = check_tokens(s, &token, 1);
    if (st != MD_OK) return st;
    st = s->ops->decode(s, token, NULL, next);
    if (st == MD_OK) s->pos++;
    return st;
}

md_status md_session_decode_sampled(md_session_t *s, int32_t token, const md_sampler_params *p, const int32_t *hist, int n_hist,
                                    float u, int32_t *next) {
    if (!s || !p || !next || !s->ops->decode_sample)
        return md_fail(MD_ERR_INVALID_ARG, "md_session_decode_sampled: bad arguments or a backend without a sampling step");
    md_status st = check_tokens(s, &token, 1);
    if (st != MD_OK) return st;
    st = s->ops->decode_sample(s, token, p, hist, n_hist, u, next);
    if (st == MD_OK) s->pos++;
    return st;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

md_status md_session_generate_argmax(md_session_t *s, int32_t first, int n, int32_t *out_tokens, double *seconds) {
    if (!s || n < 0) return md_fail(MD_ERR_INVALID_ARG, "md_session_generate_argmax: bad arguments");
    if (n == 0) return MD_OK;
    md_status st = check_tokens(s, &first, 1);
    if (st != MD_OK) return st;
    if (n > s->n_ctx - s->pos)
        return md_fail(MD_ERR_CONTEXT_FULL, "context full: %d steps at position %d would pass the context size %d", n, s->pos, s->n_ctx);
    if (s->ops->generate_argmax) {
        st = s->ops->generate_argmax(s, first, n, out_tokens, seconds);
        if (st == MD_OK) s->pos += n;
        return st;
    }
    const double t0 = now_seconds();
    int32_t tok = first;
    for (int i = 0; i < n; i++) {
        int32_t next;
        if ((st = s->ops->decode(s, tok, NULL, &next)) != MD_OK) return st;
        s->pos++;
        if (out_tokens) out_tokens[i] = next;
        tok = next;
    }
    if (seconds) *seconds = now_seconds() - t0;
    return MD_OK;
}

/* Elements of a matrix as the GPU streams it: bf16, 2 bytes each. */
static double bf16_bytes(const md_matrix *m) { return 2.0 * m->rows * m->cols; }

double md_model_decode_bytes(const md_model_t *model, int pos) {
    const md_config *c = &model->cfg;
    double bytes = bf16_bytes(&model->lm_head);
    for (int l = 0; l < c->n_layers; l++) {
        const md_layer *L = &model->layers[l];
        bytes += bf16_bytes(&L->gate) + bf16_bytes(&L->up) + bf16_bytes(&L->down);
        if (L->full) {
            bytes += bf16_bytes(&L->q) + bf16_bytes(&L->k) + bf16_bytes(&L->v) + bf16_bytes(&L->o);
            bytes += 2.0 * 2.0 * pos * md_cfg_kv_dim(c); /* K and V rows read, bf16 */
        } else {
            bytes += bf16_bytes(&L->in_qkv) + bf16_bytes(&L->in_z) + bf16_bytes(&L->in_b) + bf16_bytes(&L->in_a) + bf16_bytes(&L->out);
            bytes += 2.0 * 4.0 * c->lin_n_v_heads * c->lin_k_dim * c->lin_v_dim;  /* fp32 state, read + written */
            bytes += 2.0 * 4.0 * md_cfg_conv_dim(c) * (c->conv_kernel - 1);       /* conv window */
        }
    }
    return bytes;
}

#ifndef MD_HAVE_CUDA
md_status md_session_gpu_info(md_session_t *s, md_gpu_info *info) {
    (void)s;
    (void)info;
    return md_fail(MD_ERR_NO_DEVICE, "this build of megadelta has no CUDA support");
}
#endif
