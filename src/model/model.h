/*
 * model.h — a loaded model: its config and a view of every weight the text
 * model uses. Matrices stay in the checkpoint's map when BF16 or F32 (F16 is
 * widened to F32 once at load); vectors (norms, A_log, dt_bias, conv) are
 * converted to fp32 arrays owned by the model. A Linear weight is [out][in],
 * row-major: y = W x.
 */
#ifndef MD_MODEL_MODEL_H
#define MD_MODEL_MODEL_H

#include "model/checkpoint.h"
#include "model/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct md_model md_model;

typedef struct md_matrix {
    const void *data;  /* [rows][cols], BF16 (uint16_t) or F32 */
    md_dtype dtype;    /* MD_DTYPE_BF16 or MD_DTYPE_F32 */
    int rows, cols;
} md_matrix;

typedef struct md_layer {
    bool full;                    /* gated attention (true) or Gated DeltaNet (false) */
    const float *attn_norm;       /* [H] input_layernorm, zero-centred */
    const float *mlp_norm;        /* [H] post_attention_layernorm, zero-centred */
    md_matrix gate, up;           /* [I][H] */
    md_matrix down;               /* [H][I] */
    /* Gated DeltaNet */
    md_matrix in_qkv;             /* [2Kd+Vd][H] rows: q (all key heads), k, v */
    md_matrix in_z;               /* [Vd][H] */
    md_matrix in_b, in_a;         /* [Hv][H] */
    const float *conv;            /* [2Kd+Vd][conv_kernel] */
    const float *A_log, *dt_bias; /* [Hv] */
    const float *gnorm;           /* [dv] gated RMSNorm weight (plain, not zero-centred) */
    md_matrix out;                /* [H][Vd] */
    /* gated attention */
    md_matrix q;                  /* [2*Hq*D][H], per head: D query rows then D gate rows */
    md_matrix k, v;               /* [Hkv*D][H] */
    const float *q_norm, *k_norm; /* [D] zero-centred */
    md_matrix o;                  /* [H][Hq*D] */
} md_layer;

struct md_model {
    char *dir;
    md_config cfg;
    md_model_info info;
    md_checkpoint ckpt;
    md_matrix embed;              /* [V][H] */
    md_matrix lm_head;            /* [V][H]; the embedding when tied */
    const float *final_norm;      /* [H] zero-centred */
    md_layer *layers;             /* [n_layers] */
    void **owned;                 /* converted buffers freed with the model */
    int n_owned, cap_owned;
};

/* Bytes of one matrix as stored for the engine (for bandwidth accounting). */
static inline size_t md_matrix_bytes(const md_matrix *m) {
    return (size_t)m->rows * (size_t)m->cols * (m->dtype == MD_DTYPE_F32 ? 4u : 2u);
}

#ifdef __cplusplus
}
#endif

#endif
