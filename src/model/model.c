/*
 * model.c — md_model_load: config + checkpoint -> weight views. Every tensor
 * the config implies is checked for presence, shape and dtype, with an error
 * naming the tensor; release (model.language_model.*) and flat (model.*)
 * names are both accepted, whatever else the files hold (vision tower, mtp.*)
 * is ignored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "common/status.h"
#include "model/model.h"

typedef struct loader {
    md_model *m;
    const char *prefix; /* "model.language_model." or "model." */
} loader;

static md_status own(md_model *m, void *p) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? m->cap_owned * 2 : 64;
        void **n = realloc(m->owned, (size_t)cap * sizeof *n);
        if (!n) {
            free(p);
            return md_fail(MD_ERR_OUT_OF_MEMORY, "model: out of memory");
        }
        m->owned = n;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return MD_OK;
}

static const char *shape_str(const md_tensor *t, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < t->ndim && k < n; i++) k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

/* Finds <prefix><name> and checks its shape (trailing 1-sized dims given explicitly). */
static md_status find(loader *L, const char *name, int ndim, const int64_t *shape, const md_tensor **out) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", L->prefix, name);
    const md_tensor *t = md_checkpoint_find(&L->m->ckpt, full);
    if (!t) return md_fail(MD_ERR_FORMAT, "%s: missing tensor '%s'", L->m->dir, full);
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char got[128], want[128];
        md_tensor tmp = {.ndim = ndim};
        memcpy(tmp.shape, shape, (size_t)ndim * sizeof *shape);
        return md_fail(MD_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s from config.json", t->file, full,
                       shape_str(t, got, sizeof got), shape_str(&tmp, want, sizeof want));
    }
    if (t->dtype == MD_DTYPE_OTHER)
        return md_fail(MD_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s (supported: BF16, F16, F32)", t->file, full, t->dtype_name);
    *out = t;
    return MD_OK;
}

static md_status to_f32(md_model *m, const md_tensor *t, const float **out) {
    float *v = malloc((size_t)t->numel * sizeof *v);
    if (!v) return md_fail(MD_ERR_OUT_OF_MEMORY, "%s: out of memory converting '%s'", t->file, t->name);
    for (int64_t i = 0; i < t->numel; i++) {
        uint16_t h;
        switch (t->dtype) {
        case MD_DTYPE_F32: memcpy(&v[i], t->data + 4 * i, 4); break;
        case MD_DTYPE_BF16: memcpy(&h, t->data + 2 * i, 2); v[i] = md_bf16_to_f32(h); break;
        default: memcpy(&h, t->data + 2 * i, 2); v[i] = md_f16_to_f32(h); break;
        }
    }
    *out = v;
    return own(m, v);
}

static md_status vec(loader *L, const char *name, int64_t n, const float **out) {
    const md_tensor *t;
    md_status st = find(L, name, 1, &n, &t);
    return st != MD_OK ? st : to_f32(L->m, t, out);
}

static md_status mat(loader *L, const char *name, int64_t rows, int64_t cols, md_matrix *out) {
    const md_tensor *t;
    int64_t shape[2] = {rows, cols};
    md_status st = find(L, name, 2, shape, &t);
    if (st != MD_OK) return st;
    out->rows = (int)rows;
    out->cols = (int)cols;
    if (t->dtype == MD_DTYPE_F16) { /* widen once; F16 is not computed with directly */
        const float *f;
        if ((st = to_f32(L->m, t, &f)) != MD_OK) return st;
        out->data = f;
        out->dtype = MD_DTYPE_F32;
    } else {
        if ((uintptr_t)t->data % md_dtype_size(t->dtype))
            return md_fail(MD_ERR_FORMAT, "%s: tensor '%s' is not aligned to its element size", t->file, t->name);
        out->data = t->data;
        out->dtype = t->dtype;
    }
    return MD_OK;
}

static md_status load_layer(loader *L, int i) {
    const md_config *c = &L->m->cfg;
    md_layer *l = &L->m->layers[i];
    const int64_t H = c->hidden_size, I = c->intermediate_size;
    char n[160];
    md_status st;
#define NAME(suffix) (snprintf(n, sizeof n, "layers.%d.%s", i, suffix), n)
    l->full = c->layer_full[i];
    if ((st = vec(L, NAME("input_layernorm.weight"), H, &l->attn_norm)) != MD_OK) return st;
    if ((st = vec(L, NAME("post_attention_layernorm.weight"), H, &l->mlp_norm)) != MD_OK) return st;
    if ((st = mat(L, NAME("mlp.gate_proj.weight"), I, H, &l->gate)) != MD_OK) return st;
    if ((st = mat(L, NAME("mlp.up_proj.weight"), I, H, &l->up)) != MD_OK) return st;
    if ((st = mat(L, NAME("mlp.down_proj.weight"), H, I, &l->down)) != MD_OK) return st;
    if (l->full) {
        const int64_t D = c->head_dim, qd = md_cfg_q_dim(c), kvd = md_cfg_kv_dim(c);
        if ((st = mat(L, NAME("self_attn.q_proj.weight"), 2 * qd, H, &l->q)) != MD_OK) return st;
        if ((st = mat(L, NAME("self_attn.k_proj.weight"), kvd, H, &l->k)) != MD_OK) return st;
        if ((st = mat(L, NAME("self_attn.v_proj.weight"), kvd, H, &l->v)) != MD_OK) return st;
        if ((st = mat(L, NAME("self_attn.o_proj.weight"), H, qd, &l->o)) != MD_OK) return st;
        if ((st = vec(L, NAME("self_attn.q_norm.weight"), D, &l->q_norm)) != MD_OK) return st;
        if ((st = vec(L, NAME("self_attn.k_norm.weight"), D, &l->k_norm)) != MD_OK) return st;
    } else {
        const int64_t cd = md_cfg_conv_dim(c), vd = md_cfg_lin_value_dim(c), hv = c->lin_n_v_heads;
        if ((st = mat(L, NAME("linear_attn.in_proj_qkv.weight"), cd, H, &l->in_qkv)) != MD_OK) return st;
        if ((st = mat(L, NAME("linear_attn.in_proj_z.weight"), vd, H, &l->in_z)) != MD_OK) return st;
        if ((st = mat(L, NAME("linear_attn.in_proj_b.weight"), hv, H, &l->in_b)) != MD_OK) return st;
        if ((st = mat(L, NAME("linear_attn.in_proj_a.weight"), hv, H, &l->in_a)) != MD_OK) return st;
        if ((st = mat(L, NAME("linear_attn.out_proj.weight"), H, vd, &l->out)) != MD_OK) return st;
        const md_tensor *t;
        int64_t conv_shape[3] = {cd, 1, c->conv_kernel};
        if ((st = find(L, NAME("linear_attn.conv1d.weight"), 3, conv_shape, &t)) != MD_OK) return st;
        if ((st = to_f32(L->m, t, &l->conv)) != MD_OK) return st;
        if ((st = vec(L, NAME("linear_attn.A_log"), hv, &l->A_log)) != MD_OK) return st;
        if ((st = vec(L, NAME("linear_attn.dt_bias"), hv, &l->dt_bias)) != MD_OK) return st;
        if ((st = vec(L, NAME("linear_attn.norm.weight"), c->lin_v_dim, &l->gnorm)) != MD_OK) return st;
    }
#undef NAME
    return MD_OK;
}

static int64_t count_params(const md_config *c) {
    const int64_t H = c->hidden_size, I = c->intermediate_size, V = c->vocab_size;
    int64_t n = V * H * (c->tied ? 1 : 2) + H;
    for (int i = 0; i < c->n_layers; i++) {
        n += 2 * H + 3 * H * I;
        if (c->layer_full[i]) {
            int64_t qd = md_cfg_q_dim(c), kvd = md_cfg_kv_dim(c);
            n += 2 * qd * H + 2 * kvd * H + H * qd + 2 * c->head_dim;
        } else {
            int64_t cd = md_cfg_conv_dim(c), vd = md_cfg_lin_value_dim(c), hv = c->lin_n_v_heads;
            n += cd * H + vd * H + 2 * hv * H + H * vd + cd * c->conv_kernel + 2 * hv + c->lin_v_dim;
        }
    }
    return n;
}

md_status md_model_load(const char *dir, md_model_t **out) {
    md_status st;
    *out = NULL;
    if (!dir) return md_fail(MD_ERR_INVALID_ARG, "md_model_load: no directory given");
    md_model *m = calloc(1, sizeof *m);
    if (!m) return md_fail(MD_ERR_OUT_OF_MEMORY, "model: out of memory");
    m->dir = strdup(dir);
    if (!m->dir) {
        free(m);
        return md_fail(MD_ERR_OUT_OF_MEMORY, "model: out of memory");
    }
    MD_TRY(md_config_load(dir, &m->cfg));
    MD_TRY(md_checkpoint_open(dir, &m->ckpt));
    const md_config *c = &m->cfg;

    /* Tensor names follow the files, not the config: a release checkpoint
     * nests them under model.language_model., a CausalLM one under model. */
    loader L = {.m = m, .prefix = "model.language_model."};
    if (!md_checkpoint_find(&m->ckpt, "model.language_model.embed_tokens.weight") &&
        md_checkpoint_find(&m->ckpt, "model.embed_tokens.weight"))
        L.prefix = "model.";
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) {
        st = md_fail(MD_ERR_OUT_OF_MEMORY, "model: out of memory");
        goto fail;
    }
    MD_TRY(mat(&L, "embed_tokens.weight", c->vocab_size, c->hidden_size, &m->embed));
    MD_TRY(vec(&L, "norm.weight", c->hidden_size, &m->final_norm));
    for (int i = 0; i < c->n_layers; i++) MD_TRY(load_layer(&L, i));
    if (c->tied) {
        m->lm_head = m->embed;
    } else {
        loader top = {.m = m, .prefix = ""};
        if (!md_checkpoint_find(&m->ckpt, "lm_head.weight")) {
            st = md_fail(MD_ERR_FORMAT, "%s: tie_word_embeddings is false but there is no 'lm_head.weight'", dir);
            goto fail;
        }
        MD_TRY(mat(&top, "lm_head.weight", c->vocab_size, c->hidden_size, &m->lm_head));
    }

    md_model_info *info = &m->info;
    info->architecture = c->architecture;
    info->n_params = count_params(c);
    info->vocab_size = c->vocab_size;
    info->hidden_size = c->hidden_size;
    info->intermediate_size = c->intermediate_size;
    info->n_layers = c->n_layers;
    info->n_full_layers = md_cfg_n_full(c);
    info->n_linear_layers = c->n_layers - info->n_full_layers;
    info->max_position_embeddings = c->max_pos;
    info->tied_embeddings = c->tied;
    info->n_eos = c->n_eos;
    memcpy(info->eos_ids, c->eos_ids, sizeof info->eos_ids);
    *out = m;
    return MD_OK;
fail:
    md_model_free(m);
    return st;
}

void md_model_free(md_model_t *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    md_checkpoint_close(&m->ckpt);
    md_config_free(&m->cfg);
    free(m->dir);
    free(m);
}

const md_model_info *md_model_get_info(const md_model_t *m) { return &m->info; }
const char *md_model_dir(const md_model_t *m) { return m->dir; }
