/*
 * decode.cuh — the decode megakernel's parameters and host-side state.
 *
 * One persistent kernel computes whole decode steps (embedding row, every
 * layer, final norm, LM head, argmax). One CTA per SM; warp 0 is the
 * producer that streams this CTA's share of every weight matrix, in schedule
 * order, into a shared-memory ring; the other warps are consumers that wait
 * only for the activations a phase reads and compute from the ring. Weights never depend on
 * activations, so the ring is refilled while the consumers wait.
 *
 * Activations that cross CTAs are tagged 64-bit words {value, tag} (sync.cuh):
 * a consumer polls the words it needs until each carries the tag of the
 * (step, layer, phase) that produces it, so every phase boundary costs one
 * round trip to L2 and no grid-wide barrier exists.
 *
 * Phases (5 per layer, then the LM head):
 *   linear layer: IN (w_in + conv + SiLU; the shared q/k/b/a rows published, each recurrence item's own
 *                 v/z rows kept on its CTA: schedule.cuh)  REC (DeltaNet recurrence, no weights)
 *                 OUT (gated RMSNorm + w_out, residual add)  GU (norm + gate/up)  DOWN (residual add)
 *   full layer:   QKV (w_qkv; each CTA's q/k/v rows first, its output-gate rows after them: schedule.cuh)
 *                 ATTN (norm + RoPE + KV append + attention over the whole context or split-KV, no weights)
 *                 O (w_o, residual add)  GU  DOWN
 *   LM:           final norm + LM head + argmax (every CTA reduces all the CTAs' candidates)
 * Tag of (step epoch e, layer, phase) = e * (n_layers * 5 + 1) + layer * 5 + phase + 1
 * (the LM head / argmax is layer n_layers, phase 0); epochs count steps since
 * the session began (32-bit tags wrap only after 2^32 / slots steps, and every
 * word is rewritten each step), so no buffer needs clearing between steps.
 */
#ifndef MD_CUDA_DECODE_CUH
#define MD_CUDA_DECODE_CUH

#include "cuda/backend.cuh"

#define MD_PHASES_PER_LAYER 5
/* 1 in the instrumented build of the kernel (megakernel_instrumented.cu) */
#ifndef MD_DEC_INSTRUMENTED
#define MD_DEC_INSTRUMENTED 0
#endif

enum {
    MD_PH_MIX_IN = 0, /* IN (linear) / QKV (full) */
    MD_PH_MIX = 1,    /* REC (linear) / ATTN (full) */
    MD_PH_MIX_OUT = 2,/* OUT (linear) / O (full) */
    MD_PH_GU = 3,
    MD_PH_DOWN = 4,
};

#define MD_DEC_CONSUMER_WARPS 7
#define MD_DEC_MAX_LAYERS 128 /* layers the decode kernel takes (their descriptors ride in its parameters: 15 KB) */
#define MD_DEC_THREADS ((MD_DEC_CONSUMER_WARPS + 1) * 32)
#define MD_DEC_REC_COLS 16   /* value columns per recurrence work item */
#define MD_DEC_ATTN_MAX_CHUNK 512
#define MD_DEC_ATTN_MIN_CHUNK 4 /* positions; A/B tg128 (session 9): 16 -> 1,377 / 1,379, 8 -> 1,382 / 1,383, 4 -> 1,384 / 1,386 tok/s */
#define MD_DEC_ATTN_COMBINE_BATCH 32 /* chunks whose partials md_attn_combine lands in shared memory at once (default) */
#define MD_DEC_ATTN_WHOLE 256 /* positions up to which each attention item takes the whole context (md_attention_whole;
                                 MEGADELTA_ATTN_WHOLE, 0: never) */

/* The head shapes md_attention_whole is built for (head dim D, query heads
 * per kv head): the scores' mma holds the group's heads in pairs among its 8
 * B columns, the cp.async staging copies whole 16-byte pieces of a key row
 * and of a 64 / group value slice, and a P V lane owns one of group x 32 /
 * group pairs of value dims. A shape added here needs its instantiation in
 * md_attention's dispatch (megakernel.cu). */
__host__ __device__ __forceinline__ bool md_attn_whole_shape(int D, int group) {
    return (D == 256 && group == 4) || (D == 64 && group == 2);
}

/* md_attention_whole's items: (kv head, slice of 64 / group value dims);
 * item i runs on CTA i % G. */
__host__ __device__ __forceinline__ int md_attn_whole_items(int Hkv, int D, int group) {
    return Hkv * (D / (64 / group));
}

/* Folded ring chunks of a phase with H rows (schedule.cuh, md_phase_geom):
 * piece width in columns and chunks, or sc == 0 when not folded. */
typedef struct md_fold {
    int sc, n;
} md_fold;
enum { MD_FOLD_OUT = 0, MD_FOLD_O = 1, MD_FOLD_DOWN = 2 };

/* Everything the kernel reads, by value. */
typedef struct md_decode_params {
    md_cuda_dims d;
    /* the layer descriptors in the kernel's parameters (the constant bank): a
     * phase's first reads of them (weights, norm weights, conv taps) were global
     * loads that stalled the polls issued after them (ncu, session 9) */
    md_cuda_layer layers[MD_DEC_MAX_LAYERS];
    const __nv_bfloat16 *embed, *lm_head;
    const float *final_norm, *inv_freq;
    float *conv_state, *ssm_state;
    __nv_bfloat16 *k_cache, *v_cache;
    /* tagged vectors {fp32 value, tag} shared between CTAs */
    unsigned long long *h;             /* [H] residual stream */
    unsigned long long *mix;           /* [max(n_in, n_qkv)] mixer projections (after conv for linear layers) */
    unsigned long long *core;          /* [max(Vd, qd)] recurrence output / gated attention output */
    unsigned long long *act;           /* [I] silu(gate) * up, split: per pair of columns its bf16 high halves, then its low (md_ll_store_split2) */
    unsigned long long *tok;           /* [1] {next input token, tag of the argmax that chose it} */
    unsigned long long *cand;          /* [G][2] each CTA's argmax candidate: its best logit, its id (md_argmax_finish) */
    /* scratch written and read inside the launch (never through the read-only path) */
    unsigned long long *attn_part;     /* [Hkv][max_chunks][group][D + 2] split-KV partials, tagged words: o, then m, l */
    const int *in_qk;                  /* [G][2] the shared (pool) rows of the DeltaNet in-projection CTA c multiplies:
                                          [in_qk[2c], in_qk[2c + 1]) (schedule.cuh, md_in_row) */
    const int *qkv_rows;               /* [G][4] the rows of w_qkv CTA c multiplies: [qkv_rows[4c], qkv_rows[4c + 1]) (q, k
                                          or v), then [qkv_rows[4c + 2], qkv_rows[4c + 3]) (gates) (schedule.cuh, md_qkv_row) */
    int32_t *out_tokens;               /* [n_steps] argmax of each step */
    float *logits;                     /* [V] the last step's logits, or NULL */
    int *diag;                         /* host-mapped [8]: watchdog report */
    int pos0, n_steps;
    unsigned long long epoch0;         /* steps since reset, before this launch */
    int attn_max_chunks;
    int attn_combine_batch;            /* chunks md_attn_combine lands at once (MEGADELTA_COMBINE_BATCH, tests) */
    int attn_whole;                    /* contexts up to this many positions: md_attention_whole (0: never); also the
                                          stride of its scores in shared memory */
    int stage_bytes, n_stages;         /* the ring */
    md_fold fold[3];                   /* [MD_FOLD_*]: folded chunks of OUT, O and DOWN (md_phase_geom) */
    int prefetch_chunks;               /* chunks prefetched into L2 beyond the ring */
    int vec_floats;                    /* floats of the consumers' shared vector area */
    int conv_rows;                     /* != 0: every DeltaNet layer's conv windows of this CTA's in-projection
                                          rows live in shared memory for the launch, conv_rows rows a layer
                                          (md_conv_win); 0: in conv_state, prefetched each layer */
    int xb_stride;                     /* bf16 elements from the high to the low half of the split input vector */
    long long watchdog_ns;             /* 0 = off */
    int poll_ns;                       /* sleep between polls of stale tagged words (0: none) */
    unsigned long long pace_fx;        /* the producer's least interval between a layer's ring chunks, per byte of the
                                          chunk (ns x 2^16; 0: none): MD_DEC_PACE_NS per 32 KiB */
    unsigned long long grid_magic;     /* ceil(2^32 / grid) (md_div_grid) */
    /* ceil(2^32 / x) for the run-time divisors of small counts (md_udiv): the
     * value head dim, its slices (dv / MD_DEC_REC_COLS), value heads per key
     * head, attention head pairs (D / 2) and 16-byte pieces (D / 8), conv
     * window + taps (2K - 1) */
    unsigned long long mg_dv, mg_slices, mg_kgroup, mg_pairs, mg_d8, mg_conv;
    int probe;                         /* timing probes, bits, results wrong: 1 = ring filled from one L2-resident
                                          block (no HBM), 2 = rows skip their dot products, 4 = tagged words
                                          are taken as they are (no waits between CTAs), 8 = DOWN reads only H of
                                          its I inputs, 16 = no attention combine (O reads the first item's partial; split-KV contexts only) */
    unsigned int delay_seed;           /* != 0: random delays at phase boundaries (race hunting) */
    int stop_layer, stop_phase;        /* debug: end every step after this phase (-1: run to the end) */
    unsigned long long *trace;         /* debug: [G][n_layers * 5 + 1][MD_DEC_TRACE_EVENTS] per phase of the last step, or NULL */
} md_decode_params;

/* Shared memory besides the ring (floats): the residual rows this CTA owns,
 * and the conv window + taps of its in-projection rows, or the taps alone
 * when the windows are resident (p.conv_rows) (prefetched while it waits;
 * larger slices, on tiny grids, read them from global memory). */
#define MD_DEC_PRE_FLOATS 2048
#define MD_DEC_TILE_ROWS 16  /* rows per tensor-core tile (mma m16n8k16) and per ring chunk */
#define MD_DEC_RES_ROWS 256  /* rows whose per-warp partial dot products wait for their epilogues */
#define MD_DEC_RES_FLOATS (MD_DEC_CONSUMER_WARPS * MD_DEC_RES_ROWS)
#define MD_DEC_TRACE_EVENTS 11 /* start, inputs ready, prologue done, rows done, cycles the slowest warp waited for the ring,
                                  chunks done, every warp's chunks done, epilogues done, input split, cycles the slowest
                                  warp multiplied, %globaltimer at the start (to put every SM's clock on one time line) */
#define MD_DEC_POLL_NS 0     /* see md_poll_backoff; 64-1000 ns measured 5-7% slower on the H100. Keep 0: a
                                nonzero default would send every run to the instrumented build */
/* The producer refills the ring at most 32 KiB (a full 0.8B chunk, 16 rows
 * of 1024 columns) per MD_DEC_PACE_NS while streaming the layers, each
 * chunk in proportion to its bytes (since session 11: a chunk of 8 rows,
 * as DOWN's and OUT's before they folded, took a whole interval; in
 * proportion, with folded chunks, tg128 1,414 -> 1,445 at 1,400 ns), not
 * the LM head, which is bandwidth-bound. Session 11 sweep (folded, by
 * bytes; two rounds): 1200 ns 1,417 / 1,431, 1300 1,447 / 1,454, 1400
 * 1,439 / 1,440, 1500 1,439 / 1,432, 1600 1,427 / 1,427. Before: without
 * it, the 4 chunks a phase frees are refilled at once by every SM (17 MB at
 * full HBM rate), right when the next phase's inputs cross L2: the timing
 * probe without weight traffic showed those exchanges ~2 us faster
 * (bench/NOTES.md, session 5). Measured on the H100 (tg128, -r 5, two
 * rounds): 0 ns 1,124 / 1,125 tok/s, 1200 ns 1,134 / 1,136, 1400 ns 1,135 /
 * 1,136, 1600 ns 1,119 / 1,118 (the ring starts to run dry: a layer needs a
 * chunk every ~1.9 us on average). Retune when the step gets faster: at v27
 * (session 7, same binary, two rounds) 800 ns 1,295 / 1,296, 1000 ns 1,302 /
 * 1,300, 1200 ns 1,281 / 1,274, 1500 ns 1,270 / 1,274. */
#define MD_DEC_PACE_NS 1300
/* Weights the producer keeps requested into L2 beyond the ring, per SM (the
 * ring alone, ~165 KB, covers ~7 us of streaming). Measured on the H100:
 * slower the further ahead (session 1: 785 -> 776..645 tok/s for 96-256 KB;
 * session 3: 985 -> 854..702 for 66-264 KB), so off. */
#define MD_DEC_PREFETCH_KB 0

struct md_decode {
    md_decode_params p;                /* template: buffers and sizes fixed at init */
    void *scratch;                     /* one allocation for all scratch buffers */
    int *h_diag;                       /* pinned host memory behind p.diag */
    int32_t *d_out;                    /* [out_cap] */
    int out_cap;
    unsigned long long steps;          /* decode steps since the session began (the tag epoch) */
    int grid;
    size_t smem;
    bool hopper;
    bool instrumented;                 /* MEGADELTA_TRACE, _DELAY_SEED, _PROBE, _STOP or _POLL_NS: the instrumented build runs */
    cudaEvent_t ev0, ev1;
    unsigned long long *d_trace;       /* MEGADELTA_TRACE=1 */
    unsigned long long tok_word;       /* the first token's tagged word, while its copy is in flight */
    int clock_khz;
};

/* kernel launchers (megakernel.cu; the _instrumented ones from megakernel_instrumented.cu) */
md_status md_decode_launch(md_cuda_ctx *g, const md_decode_params *p, int grid, size_t smem, bool hopper);
md_status md_decode_prepare(bool hopper, size_t smem);
int md_decode_max_clusters(bool hopper, size_t smem, int cluster);
md_status md_decode_launch_instrumented(md_cuda_ctx *g, const md_decode_params *p, int grid, size_t smem, bool hopper);
md_status md_decode_prepare_instrumented(bool hopper, size_t smem);
int md_decode_max_clusters_instrumented(bool hopper, size_t smem, int cluster);

/* the DeltaNet in-projection's rows per CTA (row_tables.cu; the attention's: qkv_rows.h) */
int md_dec_items_of(int c, int items, int G);
int *md_dec_in_qk_table(const md_cuda_dims *d, int G);

/* MEGADELTA_TRACE=1: where the last step's time went, to stderr (trace.cu) */
void md_decode_print_trace(const md_cuda_ctx *g, const struct md_decode *dec);

#endif
