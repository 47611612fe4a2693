/*
 * forward.c — the CPU reference backend: the Qwen3.5 forward pass in fp32,
 * exactly as ../shared/design/MODEL.md and HF transformers write it. This is
 * the oracle every GPU kernel is checked against, so it favours the plainest
 * form of each step: projections are batched over the tokens of a call (the
 * weights are read once per block of tokens), while the convolution, the
 * DeltaNet recurrence and attention walk the tokens one by one, so prefill and
 * decode share every line of the sequence logic.
 *
 * State (per session):
 *   conv   [n_linear][conv_dim][K-1]   last K-1 pre-conv inputs, oldest first
 *   ssm    [n_linear][Hv][dk][dv]      DeltaNet state S, fp32
 *   kcache [n_full][n_ctx][Hkv*D]      keys after k_norm and RoPE
 *   vcache [n_full][n_ctx][Hkv*D]
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "cpu/ops.h"
#include "session.h"

typedef struct cpu_state {
    int *slot;          /* [n_layers] index of a layer among those of its kind */
    float *conv;
    float *ssm;
    float *kcache, *vcache;
    float *inv_freq;    /* [R/2] RoPE frequencies, fp32 as HF computes them */
    float *logits_tmp;  /* [vocab] for decode_argmax */
    size_t conv_len, ssm_len;
} cpu_state;

static void cpu_free(md_session_t *s) {
    cpu_state *c = s->impl;
    if (!c) return;
    free(c->slot);
    free(c->conv);
    free(c->ssm);
    free(c->kcache);
    free(c->vcache);
    free(c->inv_freq);
    free(c->logits_tmp);
    free(c);
    s->impl = NULL;
}

static md_status cpu_reset(md_session_t *s) {
    cpu_state *c = s->impl;
    memset(c->conv, 0, c->conv_len * sizeof *c->conv);
    memset(c->ssm, 0, c->ssm_len * sizeof *c->ssm);
    return MD_OK; /* the KV cache is only read below pos: nothing to clear */
}

static md_status cpu_init(md_session_t *s) {
    const md_config *cfg = &s->model->cfg;
    cpu_state *c = calloc(1, sizeof *c);
    if (!c) return md_fail(MD_ERR_OUT_OF_MEMORY, "CPU session: out of memory");
    s->impl = c;
    const int n_full = md_cfg_n_full(cfg), n_lin = cfg->n_layers - n_full;
    c->conv_len = (size_t)n_lin * md_cfg_conv_dim(cfg) * (cfg->conv_kernel - 1);
    c->ssm_len = (size_t)n_lin * cfg->lin_n_v_heads * cfg->lin_k_dim * cfg->lin_v_dim;
    const size_t kv_len = (size_t)n_full * s->n_ctx * md_cfg_kv_dim(cfg);
    c->slot = malloc((size_t)cfg->n_layers * sizeof *c->slot);
    c->conv = calloc(c->conv_len + 1, sizeof *c->conv);
    c->ssm = calloc(c->ssm_len + 1, sizeof *c->ssm);
    c->kcache = calloc(kv_len + 1, sizeof *c->kcache); /* calloc: pages are only touched as the context fills */
    c->vcache = calloc(kv_len + 1, sizeof *c->vcache);
    c->inv_freq = malloc((size_t)cfg->rope_dim / 2 * sizeof *c->inv_freq);
    c->logits_tmp = malloc((size_t)cfg->vocab_size * sizeof *c->logits_tmp);
    if (!c->slot || !c->conv || !c->ssm || !c->kcache || !c->vcache || !c->inv_freq || !c->logits_tmp) {
        cpu_free(s);
        return md_fail(MD_ERR_OUT_OF_MEMORY, "CPU session: out of memory for a %d-token context (%.1f GB of KV cache); try a smaller --ctx",
                       s->n_ctx, 2.0 * (double)kv_len * 4 / 1e9);
    }
    for (int i = 0, nf = 0, nl = 0; i < cfg->n_layers; i++) c->slot[i] = cfg->layer_full[i] ? nf++ : nl++;
    const int R = cfg->rope_dim;
    for (int i = 0; i < R / 2; i++) c->inv_freq[i] = 1.0f / powf(cfg->rope_theta, (float)(2 * i) / (float)R);
    return MD_OK;
}

/* Scratch for one call over n tokens. */
typedef struct scratch {
    float *x;    /* [n][H] residual stream */
    float *xn;   /* [n][H] normed input of a block */
    float *p;    /* [n][pw] projections */
    float *o;    /* [n][ow] mixer output before its out-projection / MLP hidden */
    float *y;    /* [n][H] block output */
    int pw, ow;
} scratch;

static void scratch_free(scratch *w) {
    free(w->x);
    free(w->xn);
    free(w->p);
    free(w->o);
    free(w->y);
}

static md_status scratch_alloc(const md_config *c, int n, scratch *w) {
    const int cd = md_cfg_conv_dim(c), vd = md_cfg_lin_value_dim(c), hv = c->lin_n_v_heads;
    const int qd = md_cfg_q_dim(c), kvd = md_cfg_kv_dim(c), I = c->intermediate_size;
    w->pw = cd + vd + 2 * hv;
    if (2 * qd + 2 * kvd > w->pw) w->pw = 2 * qd + 2 * kvd;
    if (2 * I > w->pw) w->pw = 2 * I;
    w->ow = vd > qd ? vd : qd;
    if (I > w->ow) w->ow = I;
    const size_t H = (size_t)c->hidden_size;
    w->x = malloc((size_t)n * H * sizeof(float));
    w->xn = malloc((size_t)n * H * sizeof(float));
    w->p = malloc((size_t)n * w->pw * sizeof(float));
    w->o = malloc((size_t)n * w->ow * sizeof(float));
    w->y = malloc((size_t)n * H * sizeof(float));
    if (!w->x || !w->xn || !w->p || !w->o || !w->y) {
        scratch_free(w);
        return md_fail(MD_ERR_OUT_OF_MEMORY, "CPU forward: out of memory for %d tokens", n);
    }
    return MD_OK;
}

/* Gated DeltaNet mixer over n tokens: w->xn -> w->y. */
static void deltanet(md_session_t *s, const md_layer *L, int slot, scratch *w, int n) {
    const md_config *c = &s->model->cfg;
    cpu_state *st = s->impl;
    const int nt = s->n_threads;
    const int Kd = md_cfg_lin_key_dim(c), Vd = md_cfg_lin_value_dim(c), cd = md_cfg_conv_dim(c);
    const int Hk = c->lin_n_k_heads, Hv = c->lin_n_v_heads, dk = c->lin_k_dim, dv = c->lin_v_dim;
    const int K = c->conv_kernel, H = c->hidden_size;
    float *P = w->p;              /* per token: qkv [cd] | z [Vd] | b [Hv] | a [Hv] */
    const int pw = w->pw;
    md_cpu_matmul(&L->in_qkv, w->xn, H, P, pw, n, nt);
    md_cpu_matmul(&L->in_z, w->xn, H, P + cd, pw, n, nt);
    md_cpu_matmul(&L->in_b, w->xn, H, P + cd + Vd, pw, n, nt);
    md_cpu_matmul(&L->in_a, w->xn, H, P + cd + Vd + Hv, pw, n, nt);

    float *conv = st->conv + (size_t)slot * cd * (K - 1);
    float *ssm = st->ssm + (size_t)slot * Hv * dk * dv;
    const float q_scale = 1.0f / sqrtf((float)dk);
    for (int t = 0; t < n; t++) {
        float *u = P + (size_t)t * pw; /* pre-conv qkv, replaced by the conv output */
        /* causal depthwise conv + SiLU, then shift the window */
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int ch = 0; ch < cd; ch++) {
            const float *wc = L->conv + (size_t)ch * K;
            float *win = conv + (size_t)ch * (K - 1);
            float acc = wc[K - 1] * u[ch];
            for (int j = 0; j < K - 1; j++) acc += wc[j] * win[j];
            for (int j = 0; j + 1 < K - 1; j++) win[j] = win[j + 1];
            if (K > 1) win[K - 2] = u[ch];
            u[ch] = md_cpu_silu(acc);
        }
        for (int h = 0; h < Hk; h++) {
            md_cpu_l2norm(u + h * dk, dk, 1e-6f);
            md_cpu_l2norm(u + Kd + h * dk, dk, 1e-6f);
            for (int i = 0; i < dk; i++) u[h * dk + i] *= q_scale;
        }
        const float *z = u + cd, *b = u + cd + Vd, *a = u + cd + Vd + Hv;
        float *out = w->o + (size_t)t * w->ow;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int h = 0; h < Hv; h++) {
            const int kh = h / (Hv / Hk);
            const float *q = u + kh * dk, *k = u + Kd + kh * dk, *v = u + 2 * Kd + h * dv;
            const float beta = md_cpu_sigmoid(b[h]);
            const float g = -expf(L->A_log[h]) * md_cpu_softplus(a[h] + L->dt_bias[h]);
            const float decay = expf(g);
            float *S = ssm + (size_t)h * dk * dv; /* [dk][dv] */
            float *o = out + h * dv;
            for (int i = 0; i < dk * dv; i++) S[i] *= decay;
            for (int j = 0; j < dv; j++) o[j] = 0.0f; /* o first holds m = S^T k */
            for (int i = 0; i < dk; i++)
                for (int j = 0; j < dv; j++) o[j] += S[i * dv + j] * k[i];
            for (int j = 0; j < dv; j++) o[j] = beta * (v[j] - o[j]); /* delta */
            for (int i = 0; i < dk; i++)
                for (int j = 0; j < dv; j++) S[i * dv + j] += k[i] * o[j];
            for (int j = 0; j < dv; j++) o[j] = 0.0f;
            for (int i = 0; i < dk; i++)
                for (int j = 0; j < dv; j++) o[j] += S[i * dv + j] * q[i];
            md_cpu_rmsnorm_gated(o, z + h * dv, L->gnorm, dv, c->rms_eps, o);
        }
    }
    md_cpu_matmul(&L->out, w->o, w->ow, w->y, H, n, nt);
}

/* Rotate-half RoPE on the first R dims of one head. */
static void rope(float *x, const float *inv_freq, int R, int pos) {
    for (int i = 0; i < R / 2; i++) {
        const float ang = (float)pos * inv_freq[i];
        const float cs = cosf(ang), sn = sinf(ang);
        const float x1 = x[i], x2 = x[i + R / 2];
        x[i] = x1 * cs - x2 * sn;
        x[i + R / 2] = x2 * cs + x1 * sn;
    }
}

/* Gated attention mixer over n tokens at positions pos..pos+n: w->xn -> w->y. */
static md_status attention(md_session_t *s, const md_layer *L, int slot, scratch *w, int n) {
    const md_config *c = &s->model->cfg;
    cpu_state *st = s->impl;
    const int nt = s->n_threads;
    const int Hq = c->n_heads, Hkv = c->n_kv_heads, D = c->head_dim, R = c->rope_dim, H = c->hidden_size;
    const int qd = md_cfg_q_dim(c), kvd = md_cfg_kv_dim(c), pw = w->pw;
    float *P = w->p; /* per token: q|gate interleaved per head [2qd] | k [kvd] | v [kvd] */
    md_cpu_matmul(&L->q, w->xn, H, P, pw, n, nt);
    md_cpu_matmul(&L->k, w->xn, H, P + 2 * qd, pw, n, nt);
    md_cpu_matmul(&L->v, w->xn, H, P + 2 * qd + kvd, pw, n, nt);
    float *kc = st->kcache + (size_t)slot * s->n_ctx * kvd;
    float *vc = st->vcache + (size_t)slot * s->n_ctx * kvd;
    const float scale = 1.0f / sqrtf((float)D);
    float *probs = malloc((size_t)nt * (s->pos + n) * sizeof *probs);
    if (!probs) return md_fail(MD_ERR_OUT_OF_MEMORY, "CPU attention: out of memory");
    for (int t = 0; t < n; t++) {
        const int p = s->pos + t;
        float *u = P + (size_t)t * pw;
        for (int h = 0; h < Hq; h++) {
            float *q = u + h * 2 * D;
            md_cpu_rmsnorm_zc(q, L->q_norm, D, c->rms_eps, q);
            rope(q, st->inv_freq, R, p);
        }
        for (int h = 0; h < Hkv; h++) {
            float *k = u + 2 * qd + h * D;
            md_cpu_rmsnorm_zc(k, L->k_norm, D, c->rms_eps, k);
            rope(k, st->inv_freq, R, p);
        }
        memcpy(kc + (size_t)p * kvd, u + 2 * qd, (size_t)kvd * sizeof(float));
        memcpy(vc + (size_t)p * kvd, u + 2 * qd + kvd, (size_t)kvd * sizeof(float));
        float *out = w->o + (size_t)t * w->ow;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int h = 0; h < Hq; h++) {
            float *pr = probs + (size_t)omp_get_thread_num() * (s->pos + n);
            const int kh = h / (Hq / Hkv);
            const float *q = u + h * 2 * D, *gate = q + D;
            float mx = -INFINITY;
            for (int j = 0; j <= p; j++) {
                pr[j] = md_cpu_dot(q, kc + (size_t)j * kvd + kh * D, D) * scale;
                if (pr[j] > mx) mx = pr[j];
            }
            float sum = 0.0f;
            for (int j = 0; j <= p; j++) sum += pr[j] = expf(pr[j] - mx);
            float *o = out + h * D;
            for (int d = 0; d < D; d++) o[d] = 0.0f;
            for (int j = 0; j <= p; j++) {
                const float pj = pr[j] / sum;
                const float *vj = vc + (size_t)j * kvd + kh * D;
                for (int d = 0; d < D; d++) o[d] += pj * vj[d];
            }
            for (int d = 0; d < D; d++) o[d] *= md_cpu_sigmoid(gate[d]);
        }
    }
    free(probs);
    md_cpu_matmul(&L->o, w->o, w->ow, w->y, H, n, nt);
    return MD_OK;
}

static void mlp(md_session_t *s, const md_layer *L, scratch *w, int n) {
    const md_config *c = &s->model->cfg;
    const int H = c->hidden_size, I = c->intermediate_size, nt = s->n_threads;
    md_cpu_matmul(&L->gate, w->xn, H, w->p, w->pw, n, nt);
    md_cpu_matmul(&L->up, w->xn, H, w->p + I, w->pw, n, nt);
    for (int t = 0; t < n; t++) {
        const float *g = w->p + (size_t)t * w->pw, *u = g + I;
        float *h = w->o + (size_t)t * w->ow;
        for (int i = 0; i < I; i++) h[i] = md_cpu_silu(g[i]) * u[i];
    }
    md_cpu_matmul(&L->down, w->o, w->ow, w->y, H, n, nt);
}

static void add_rows(float *x, const float *y, size_t len) {
    for (size_t i = 0; i < len; i++) x[i] += y[i];
}

static md_status cpu_prefill(md_session_t *s, const int32_t *tokens, int n, float *logits, int n_rows) {
    const md_model *m = s->model;
    const md_config *c = &m->cfg;
    cpu_state *st = s->impl;
    const int H = c->hidden_size;
    scratch w;
    md_status status = scratch_alloc(c, n, &w);
    if (status != MD_OK) return status;
    for (int t = 0; t < n; t++) md_cpu_matrix_row(&m->embed, tokens[t], w.x + (size_t)t * H);
    for (int l = 0; l < c->n_layers; l++) {
        const md_layer *L = &m->layers[l];
        for (int t = 0; t < n; t++) md_cpu_rmsnorm_zc(w.x + (size_t)t * H, L->attn_norm, H, c->rms_eps, w.xn + (size_t)t * H);
        if (L->full) {
            if ((status = attention(s, L, st->slot[l], &w, n)) != MD_OK) goto done;
        } else {
            deltanet(s, L, st->slot[l], &w, n);
        }
        add_rows(w.x, w.y, (size_t)n * H);
        for (int t = 0; t < n; t++) md_cpu_rmsnorm_zc(w.x + (size_t)t * H, L->mlp_norm, H, c->rms_eps, w.xn + (size_t)t * H);
        mlp(s, L, &w, n);
        add_rows(w.x, w.y, (size_t)n * H);
    }
    if (logits && n_rows > 0) {
        const int t0 = n - n_rows;
        for (int t = t0; t < n; t++) md_cpu_rmsnorm_zc(w.x + (size_t)t * H, m->final_norm, H, c->rms_eps, w.xn + (size_t)t * H);
        md_cpu_matmul(&m->lm_head, w.xn + (size_t)t0 * H, H, logits, c->vocab_size, n_rows, s->n_threads);
    }
done:
    scratch_free(&w);
    return status;
}

static md_status cpu_decode(md_session_t *s, int32_t token, float *logits, int32_t *argmax) {
    cpu_state *st = s->impl;
    float *out = logits ? logits : st->logits_tmp;
    md_status status = cpu_prefill(s, &token, 1, out, 1);
    if (status != MD_OK || !argmax) return status;
    int best = 0;
    for (int i = 1; i < s->model->cfg.vocab_size; i++)
        if (out[i] > out[best]) best = i;
    *argmax = best;
    return MD_OK;
}

const md_backend_ops md_cpu_backend = {
    .name = "cpu",
    .init = cpu_init,
    .free = cpu_free,
    .reset = cpu_reset,
    .prefill = cpu_prefill,
    .decode = cpu_decode,
};
