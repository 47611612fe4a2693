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

#include <signal.h> /* sig_atomic_t, for the interrupt flag of md_generate */

/* Tokenizer: Hugging Face tokenizer.json of the byte-level BPE kind (Qwen,
 * GPT-2, Llama 3), giving the same ids as HF `tokenizers`. Immutable once
 * loaded; encode and decode may run on several threads at once. */
typedef struct md_tokenizer md_tokenizer_t;

/* Loads a tokenizer.json. Fails with MD_ERR_IO when the file is missing,
 * MD_ERR_FORMAT when it is malformed, MD_ERR_UNSUPPORTED for a kind that is
 * not byte-level BPE (the message names the field, e.g. model type WordPiece). */
md_status md_tokenizer_load(const char *path, md_tokenizer_t **out);
/* Loads DIR/tokenizer.json; MD_ERR_IO naming DIR when there is none. */
md_status md_tokenizer_load_dir(const char *model_dir, md_tokenizer_t **out);
void md_tokenizer_free(md_tokenizer_t *tok);

/* One past the largest id of the tokenizer (vocabulary and added tokens). */
int md_tokenizer_n_vocab(const md_tokenizer_t *tok);
/* The id of a token written as in tokenizer.json ("<|im_end|>", "Ġthe"), or -1. */
int32_t md_tokenizer_token_id(const md_tokenizer_t *tok, const char *token);
/* The token string of an id as written in tokenizer.json, or NULL. */
const char *md_tokenizer_token_str(const md_tokenizer_t *tok, int32_t id);
/* Whether id is an added token marked "special" (<|im_end|>; not <think>). */
bool md_tokenizer_is_special(const md_tokenizer_t *tok, int32_t id);

/* Text (len bytes, NULs allowed) to ids; *ids is malloc'd (free it), *n_ids
 * may be 0. parse_special true: special tokens written in the text become
 * their ids (HF's default); false: their text is tokenized as ordinary text
 * (HF's encode_special_tokens). Added tokens that are not special are always
 * matched. No BOS/EOS is added. Invalid UTF-8 is an error, MD_ERR_INVALID_ARG
 * naming the offset of the first bad byte: nothing is replaced silently. */
md_status md_tokenizer_encode(const md_tokenizer_t *tok, const char *text, size_t len, bool parse_special,
                              int32_t **ids, int *n_ids);

/* Ids to text; *text is malloc'd and NUL-terminated, *len (may be NULL) its
 * length. Byte sequences that are not valid UTF-8 (a character cut between
 * tokens) become U+FFFD, as in HF. skip_special leaves special tokens out. Ids
 * the tokenizer lacks (a model's vocabulary may be larger) decode to
 * "<unk:ID>"; a negative id is MD_ERR_INVALID_ARG. */
md_status md_tokenizer_decode(const md_tokenizer_t *tok, const int32_t *ids, int n, bool skip_special, char **text,
                              size_t *len);

/* Streaming decode: push ids one at a time, get the text that became complete.
 * A UTF-8 character split over several tokens is held back until complete, so
 * no piece ends inside a character; the concatenation of all pieces plus the
 * flush equals md_tokenizer_decode of all ids. The text pointer stays valid
 * until the next call on the stream. */
typedef struct md_tokenizer_stream md_tokenizer_stream_t;
md_status md_tokenizer_stream_init(const md_tokenizer_t *tok, bool skip_special, md_tokenizer_stream_t **out);
md_status md_tokenizer_stream_push(md_tokenizer_stream_t *s, int32_t id, const char **text, size_t *len);
/* Hands out what is still held back (an incomplete character becomes U+FFFD). */
md_status md_tokenizer_stream_flush(md_tokenizer_stream_t *s, const char **text, size_t *len);
void md_tokenizer_stream_reset(md_tokenizer_stream_t *s);
void md_tokenizer_stream_free(md_tokenizer_stream_t *s);

/* Chat template: Qwen3.5's (the jinja template in its tokenizer_config.json),
 * in C, byte-exact. System message first; assistant turns after the last user
 * query keep their reasoning in a <think> block, earlier ones lose it; the
 * generation prompt opens "<think>\n", or the empty think block when thinking
 * is off. Tools, tool calls and images are not supported. */
typedef struct md_chat_message {
    const char *role;      /* "system" (first only), "user", "assistant" or "tool" */
    const char *content;   /* NULL is empty */
    const char *reasoning; /* assistant: its reasoning_content; NULL: taken from a
                              "...</think>" in content, as the template does */
} md_chat_message;

typedef struct md_chat_params {
    bool add_generation_prompt; /* end with "<|im_start|>assistant\n" and the think opening */
    bool enable_thinking;       /* false: "<think>\n\n</think>\n\n" after the header */
} md_chat_params;

md_chat_params md_chat_default_params(void); /* both true */
/* Renders the conversation; *out is malloc'd and NUL-terminated. Fails with
 * MD_ERR_INVALID_ARG where the template raises an exception (no messages, a
 * system message not first, an unknown role, no user query). */
md_status md_chat_render(const md_chat_message *msgs, int n, const md_chat_params *p, char **out, size_t *len);

/* Sampling: HF generate's logits processors in HF's order (see sample.c).
 * Defaults follow HF's GenerationConfig: greedy unless told otherwise. */
typedef struct md_sampler_params {
    float temperature;      /* 0 = greedy */
    int top_k;              /* 0 = off */
    float top_p;            /* 1 = off */
    float min_p;            /* 0 = off */
    float repeat_penalty;   /* 1 = off */
    float presence_penalty; /* 0 = off */
    int penalty_last_n;     /* how many recent tokens the penalties look at; -1 = all (HF), 0 = none */
    uint64_t seed;
} md_sampler_params;

/* temperature 0 (HF's do_sample false), top_k 50, top_p 1, min_p 0,
 * penalties off, penalty_last_n -1, seed 0. */
md_sampler_params md_sampler_default_params(void);
/* The defaults overridden by DIR/generation_config.json when present
 * (do_sample, temperature, top_k, top_p, min_p, repetition_penalty,
 * presence_penalty): HF semantics, so sampling only with do_sample true. A
 * field of the wrong type is MD_ERR_CONFIG naming it. */
md_status md_sampler_params_from_model(const char *model_dir, md_sampler_params *p);

typedef struct md_sampler md_sampler_t;
/* MD_ERR_INVALID_ARG for out-of-range parameters (negative temperature,
 * top_p outside (0, 1], ...), naming the parameter. */
md_status md_sampler_init(const md_sampler_params *p, int vocab, md_sampler_t **out);
void md_sampler_free(md_sampler_t *s);
/* Forgets the history and restarts the random sequence from the seed. */
void md_sampler_reset(md_sampler_t *s);
/* Forgets the history only (a new prompt), the random sequence goes on. */
void md_sampler_clear_history(md_sampler_t *s);
/* Appends a token (prompt or generated) to the history the penalties read. */
void md_sampler_accept(md_sampler_t *s, int32_t token);
/* Picks the next token from logits [vocab] on the host; may modify logits.
 * Does not accept the token. */
int32_t md_sampler_sample(md_sampler_t *s, float *logits);
/* Feeds one token and picks the next: greedy without penalties ->
 * md_session_decode_argmax; otherwise, on a GPU session, a sampling kernel
 * picks from the logits on the device (only the id comes back), and on the
 * CPU md_sampler_sample runs on the logits. Both give the same token for the
 * same logits, history and random stream. */
md_status md_session_decode_sample(md_session_t *s, int32_t token, md_sampler_t *smp, int32_t *next);

/* Generation loop shared by `megadelta generate` and `megadelta chat`. */
typedef enum md_stop_reason {
    MD_STOP_NONE = 0,
    MD_STOP_LENGTH,      /* n_predict tokens generated */
    MD_STOP_EOS,         /* an end-of-sequence / stop token */
    MD_STOP_STRING,      /* a stop string appeared in the text */
    MD_STOP_CONTEXT,     /* the context is full */
    MD_STOP_INTERRUPTED, /* *interrupt became nonzero (Ctrl-C) */
    MD_STOP_CALLBACK,    /* on_text returned false */
} md_stop_reason;
const char *md_stop_reason_name(md_stop_reason r); /* "length", "eos", ... */

/* Receives generated text as it becomes final: never half a UTF-8
 * character, never text that may still turn out to begin a stop string.
 * Return false to stop. */
typedef bool (*md_generate_text_fn)(const char *text, size_t len, void *user);

typedef struct md_generate_params {
    int n_predict;                      /* most tokens to generate; < 0: until a stop or the context is full */
    bool stop_at_model_eos;             /* stop at the model's eos ids (md_model_info) */
    const int32_t *stop_ids;            /* more stop tokens (e.g. <|im_end|>) */
    int n_stop_ids;
    const char *const *stop_strings;    /* the text ends before the first occurrence */
    int n_stop_strings;
    bool skip_special;                  /* leave special tokens out of the text */
    int prefill_chunk;                  /* prompt tokens per prefill call (interrupt granularity); 0 = 512 */
    const volatile sig_atomic_t *interrupt; /* may be NULL */
    md_generate_text_fn on_text;        /* may be NULL */
    void *user;
    int32_t *out_tokens;                /* may be NULL: receives the generated ids (stop token excluded) */
    int out_cap;
} md_generate_params;

md_generate_params md_generate_default_params(void); /* n_predict -1, stop_at_model_eos, skip_special */

typedef struct md_generate_result {
    int n_prompt;           /* prompt tokens fed */
    int n_generated;        /* tokens generated, the stop token not counted */
    int n_decode;           /* decode steps (the first token comes from the prefill) */
    double prefill_seconds; /* wall time of the prefill */
    double decode_seconds;  /* wall time of the decode steps */
    md_stop_reason stop;
    int32_t stop_token;     /* the token for MD_STOP_EOS, else -1 */
} md_generate_result;

/* Feeds prompt[0..n_prompt) (n_prompt >= 1) at the session's position, then
 * samples, streams and feeds tokens until a stop. The prompt tokens are
 * accepted into the sampler's history first. MD_ERR_CONTEXT_FULL (nothing
 * fed) when the prompt does not fit the context; a full context during
 * generation is a normal stop. Interrupted during the prefill, it returns MD_OK
 * with stop MD_STOP_INTERRUPTED and the session holding part of the prompt.
 * A sampled token is fed only when generation goes on after it, so the
 * session ends holding the prompt and the generated tokens but the last one
 * (all of them after an eos stop): md_session_pos() tells. */
md_status md_generate(md_session_t *s, const md_tokenizer_t *tok, md_sampler_t *smp, const int32_t *prompt,
                      int n_prompt, const md_generate_params *p, md_generate_result *res);

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
