/*
 * config.h — the dimensions and options of a Qwen3.5 text model, read from
 * config.json (flat CausalLM layout or the release wrapper's text_config).
 * This struct is the one place every dimension lives; nothing else repeats them.
 */
#ifndef MD_MODEL_CONFIG_H
#define MD_MODEL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "megadelta.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MD_MAX_EOS 8

typedef struct md_config {
    char architecture[96];   /* architectures[0] (or model_type when absent) */
    bool wrapper;            /* release layout: fields under text_config */
    int vocab_size;
    int hidden_size;         /* H */
    int intermediate_size;   /* I, SwiGLU width */
    int n_layers;
    /* gated attention (full layers) */
    int n_heads;             /* Hq */
    int n_kv_heads;          /* Hkv */
    int head_dim;            /* D */
    int rope_dim;            /* R = D * partial_rotary_factor, rotated dims per head */
    float rope_theta;
    /* Gated DeltaNet (linear layers) */
    int lin_n_k_heads;       /* Hk */
    int lin_n_v_heads;       /* Hv, a multiple of Hk */
    int lin_k_dim;           /* dk */
    int lin_v_dim;           /* dv */
    int conv_kernel;         /* causal depthwise conv width */
    float rms_eps;
    int max_pos;             /* max_position_embeddings */
    bool tied;               /* LM head = embedding */
    int mtp_layers;          /* mtp_num_hidden_layers (ignored by the engine for now) */
    bool *layer_full;        /* [n_layers] true = full attention, false = DeltaNet */
    int n_eos;
    int32_t eos_ids[MD_MAX_EOS];
} md_config;

/* Parses <dir>/config.json (and the eos ids of <dir>/generation_config.json). */
md_status md_config_load(const char *dir, md_config *cfg);
void md_config_free(md_config *cfg);

/* Derived sizes. */
static inline int md_cfg_lin_key_dim(const md_config *c) { return c->lin_n_k_heads * c->lin_k_dim; }   /* Kd */
static inline int md_cfg_lin_value_dim(const md_config *c) { return c->lin_n_v_heads * c->lin_v_dim; } /* Vd */
static inline int md_cfg_conv_dim(const md_config *c) { return 2 * md_cfg_lin_key_dim(c) + md_cfg_lin_value_dim(c); }
static inline int md_cfg_q_dim(const md_config *c) { return c->n_heads * c->head_dim; }     /* Hq*D */
static inline int md_cfg_kv_dim(const md_config *c) { return c->n_kv_heads * c->head_dim; } /* Hkv*D */
int md_cfg_n_full(const md_config *c);
int md_cfg_n_linear(const md_config *c);

#ifdef __cplusplus
}
#endif

#endif
