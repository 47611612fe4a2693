/*
 * megadelta.h — the public API of libmegadelta, an inference engine for the
 * Qwen3.5 hybrid language models (Gated DeltaNet + gated attention).
 *
 * Contract for every function returning md_status: on failure nothing is
 * leaked, output handles are left NULL, and md_last_error() returns one line
 * naming the file / tensor / field and the problem. The library never exits
 * or aborts on bad input. Messages are per thread.
 *
 * Handles are opaque. A model is immutable once loaded and may be shared by
 * several sessions; a session holds all mutable state of one sequence and
 * must be used from one thread at a time.
 */
#ifndef MEGADELTA_H
#define MEGADELTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status */

typedef enum md_status {
    MD_OK = 0,
    MD_ERR_INVALID_ARG,   /* the caller passed something out of range */
    MD_ERR_IO,            /* a file is missing or unreadable */
    MD_ERR_FORMAT,        /* a file's contents are malformed */
    MD_ERR_CONFIG,        /* config.json lacks a field or is inconsistent */
    MD_ERR_UNSUPPORTED,   /* well-formed, but not implemented (architecture, dtype, rope type) */
    MD_ERR_OUT_OF_MEMORY, /* host or device allocation failed */
    MD_ERR_CONTEXT_FULL,  /* the sequence would pass the session's context size */
    MD_ERR_NO_DEVICE,     /* no usable GPU, or the GPU backend is not built */
    MD_ERR_DEVICE,        /* a CUDA error */
    MD_ERR_INTERRUPTED,   /* stopped on request (Ctrl-C) */
} md_status;

/* The last error message of this thread ("" when none). */
const char *md_last_error(void);
/* A short fixed name for a status, e.g. "format error". */
const char *md_status_name(md_status st);

/* ---------------------------------------------------------------- model */

typedef struct md_model md_model_t;

typedef struct md_model_info {
    const char *architecture;   /* from config.json, e.g. "Qwen3_5ForConditionalGeneration" */
    int64_t n_params;           /* parameters of the text model (embedding counted once when tied) */
    int vocab_size;
    int hidden_size;
    int intermediate_size;
    int n_layers;
    int n_linear_layers;        /* Gated DeltaNet layers */
    int n_full_layers;          /* gated attention layers */
    int max_position_embeddings;
    bool tied_embeddings;
    int n_eos;                  /* end-of-sequence ids from config.json / generation_config.json */
    int32_t eos_ids[8];
} md_model_info;

/* Loads config.json and the safetensors file(s) of a model directory.
 * Weights are memory-mapped; BF16 and F32 matrices are used in place. */
md_status md_model_load(const char *dir, md_model_t **out);
void md_model_free(md_model_t *model);
const md_model_info *md_model_get_info(const md_model_t *model);
/* The directory the model was loaded from. */
const char *md_model_dir(const md_model_t *model);

/* ---------------------------------------------------------------- session */

typedef struct md_session md_session_t;

typedef enum md_backend {
    MD_BACKEND_AUTO = 0, /* GPU when built and a device exists, else CPU */
    MD_BACKEND_CPU,
    MD_BACKEND_GPU,
} md_backend;

typedef enum md_kernel {
    MD_KERNEL_AUTO = 0, /* the Hopper path on sm_90, else the portable one */
    MD_KERNEL_HOPPER,
    MD_KERNEL_PORTABLE,
} md_kernel;

typedef struct md_session_params {
    md_backend backend;
    int n_ctx;          /* context size in tokens; 0 = min(max_position_embeddings, 32768) */
    int n_threads;      /* CPU threads; 0 = all cores */
    md_kernel kernel;   /* GPU decode path */
} md_session_params;

md_session_params md_session_default_params(void);

md_status md_session_init(md_model_t *model, const md_session_params *params, md_session_t **out);
void md_session_free(md_session_t *s);
/* Forgets the sequence: position 0, empty caches and recurrent state. */
md_status md_session_reset(md_session_t *s);

int md_session_pos(const md_session_t *s);      /* tokens consumed so far */
int md_session_n_ctx(const md_session_t *s);
md_backend md_session_backend(const md_session_t *s); /* CPU or GPU, never AUTO */
const char *md_session_backend_name(const md_session_t *s);

/* Feeds n tokens at once. When logits is not NULL it receives the logits of
 * the last n_rows positions, row-major [n_rows][vocab] fp32 (1 <= n_rows <= n).
 * Fails with MD_ERR_CONTEXT_FULL (state unchanged) when pos + n > n_ctx, and
 * MD_ERR_INVALID_ARG when a token id is outside the vocabulary. */
md_status md_session_prefill(md_session_t *s, const int32_t *tokens, int n, float *logits, int n_rows);

/* Feeds one token through the decode path; logits ([vocab] fp32) may be NULL. */
md_status md_session_decode(md_session_t *s, int32_t token, float *logits);

/* Feeds one token and returns the id of the most likely next token (ties to
 * the lowest id) without copying the logits to the host. */
md_status md_session_decode_argmax(md_session_t *s, int32_t token, int32_t *next);

/* Greedy generation for benchmarks and tests: feeds `first`, then each
 * argmax back, n steps in all; out_tokens[i] (may be NULL) receives the i-th
 * predicted id. *seconds (may be NULL) is the time of the n steps (CUDA
 * events on the GPU, a monotonic clock on the CPU). Stops with
 * MD_ERR_CONTEXT_FULL, state unchanged, when n steps do not fit. */
md_status md_session_generate_argmax(md_session_t *s, int32_t first, int n, int32_t *out_tokens, double *seconds);

/* ------------------------------------------------- text: tokenizer, sampling, chat
 * (declarations of src/tokenizer/, src/sample.c and src/generate.c go here) */

/* ------------------------------------------------------------ measurement */

typedef struct md_gpu_info {
    char name[96];
    int sm_count;
    int cc_major, cc_minor;
    int sm_clock_mhz, mem_clock_mhz;   /* current clocks from NVML, 0 when unknown */
    double mem_bandwidth_gbs;          /* measured by a device-to-device copy (read + written bytes / time) */
    size_t mem_total, mem_free;
} md_gpu_info;

/* Fills info for a GPU session (MD_ERR_NO_DEVICE for a CPU one). */
md_status md_session_gpu_info(md_session_t *s, md_gpu_info *info);

/* Energy from NVML's counter (loaded at run time; MD_ERR_NO_DEVICE where NVML
 * or a GPU is absent). */
typedef struct md_energy_meter md_energy_meter_t;
md_status md_energy_meter_open(int gpu_index, md_energy_meter_t **out);
/* Total energy since the driver loaded, in joules, and the current power in watts. */
md_status md_energy_meter_read(md_energy_meter_t *m, double *joules, double *watts);
/* Current SM and memory clocks in MHz. */
md_status md_energy_meter_clocks(md_energy_meter_t *m, int *sm_mhz, int *mem_mhz);
void md_energy_meter_free(md_energy_meter_t *m);

/* Bytes one decode step must move through memory at position pos: weights
 * read (LM head included), DeltaNet state read and written, conv state, and
 * the KV cache read up to pos. The numerator of the roofline fraction. */
double md_model_decode_bytes(const md_model_t *model, int pos);

#ifdef __cplusplus
}
#endif
#endif /* MEGADELTA_H */
