/*
 * session.h — the session object and the contract every backend fulfils.
 * The engine (engine.c) validates arguments, token ids and the context limit,
 * then calls the backend; backends only compute. pos advances in engine.c.
 */
#ifndef MD_SESSION_H
#define MD_SESSION_H

#include "model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct md_backend_ops {
    const char *name;
    md_status (*init)(md_session_t *s);
    void (*free)(md_session_t *s);
    md_status (*reset)(md_session_t *s);
    /* Consumes tokens[0..n) at positions pos..pos+n; writes the logits of the
     * last n_rows positions when logits is not NULL. */
    md_status (*prefill)(md_session_t *s, const int32_t *tokens, int n, float *logits, int n_rows);
    /* One token through the decode path; either output may be NULL. */
    md_status (*decode)(md_session_t *s, int32_t token, float *logits, int32_t *argmax);
    /* n greedy steps from `first` (see md_session_generate_argmax); NULL:
     * the engine loops over decode and times with the host clock. */
    md_status (*generate_argmax)(md_session_t *s, int32_t first, int n, int32_t *out, double *seconds);
    /* One token through the decode path, then one sampling step on the
     * backend's own copy of the logits (sample.c's semantics: penalty window
     * hist[0..n_hist), uniform draw u); NULL: the engine samples on the host. */
    md_status (*decode_sample)(md_session_t *s, int32_t token, const md_sampler_params *p, const int32_t *hist, int n_hist, float u,
                               int32_t *next);
} md_backend_ops;

struct md_session {
    md_model *model;
    md_session_params params;
    md_backend backend;        /* resolved: CPU or GPU */
    int n_ctx;
    int n_threads;             /* resolved CPU thread count */
    int pos;                   /* tokens consumed */
    const md_backend_ops *ops;
    void *impl;                /* the backend's state */
};

/* md_session_decode with the sampling step on the backend (engine.c); only
 * for backends with ops->decode_sample. */
md_status md_session_decode_sampled(md_session_t *s, int32_t token, const md_sampler_params *p, const int32_t *hist, int n_hist,
                                    float u, int32_t *next);

extern const md_backend_ops md_cpu_backend;
#ifdef MD_HAVE_CUDA
extern const md_backend_ops md_cuda_backend;
/* Whether a usable CUDA device (compute capability >= 8.0) is present. */
bool md_cuda_device_available(void);
/* The GPU sampling step on logits given by the host (tests compare it with
 * sample.c on chosen logits); s must be a GPU session. */
md_status md_cuda_sample_host_logits(md_session_t *s, const float *logits, const md_sampler_params *p, const int32_t *hist,
                                     int n_hist, float u, int32_t *out);
#endif

#ifdef __cplusplus
}
#endif

#endif
