/*
 * decode.cu — host side of the decode megakernel: picks the path (Hopper or
 * portable), sizes the shared-memory ring from the device's limit, allocates
 * the scratch the kernel shares between CTAs, and runs n decode steps in one
 * launch, timed with CUDA events.
 *
 * Environment (for testing and debugging):
 *   MEGADELTA_GRID=N         use N CTAs instead of one per SM (N >= 1)
 *   MEGADELTA_WATCHDOG_MS=T  a spin that waits longer than T ms (counted from a few hundred
 *                            spins in) stops the kernel and reports where (default 10000;
 *                            0 = off, for compute-sanitizer)
 *   MEGADELTA_DELAY_SEED=S   random delays before publishing results (race hunting)
 *   MEGADELTA_STOP=L,P       end each step after phase P of layer L (single steps only)
 *   MEGADELTA_STAGE_KB=K     ring chunk size (default 32 KB where shared memory allows)
 *   MEGADELTA_STAGES=N       at most N ring stages (measurements; default: as many as fit)
 *   MEGADELTA_FOLD=0         no folded chunks for the phases with H rows (measurements; schedule.cuh)
 *   MEGADELTA_PREFETCH_KB=K  how far past the ring the producer prefetches weights into L2
 *   MEGADELTA_COMBINE_BATCH=N  chunks of split-KV partials the attention's combine lands in
 *                            shared memory at once (default 32; small values test its batches)
 *   MEGADELTA_ATTN_WHOLE=N   contexts up to N positions run md_attention_whole, each item over the
 *                            whole context (default MD_DEC_ATTN_WHOLE, capped by its value staging:
 *                            256 on the 0.8B, 128 on the tiny model; 0: always the split-KV
 *                            attention and its combine)
 *   MEGADELTA_POLL_NS=N      sleep N ns between polls of tagged words that are not ready yet
 *   MEGADELTA_PACE_NS=N      the producer issues a layer's ring chunks at most 32 KiB per N ns,
 *                            each chunk in proportion to its bytes (default MD_DEC_PACE_NS;
 *                            0 = as fast as slots free up)
 *   MEGADELTA_TRACE=1        after each run, print where the last step's time went:
 *                            per phase kind, waiting / prologue / rows (mean and max over
 *                            CTAs); per layer, the slowest CTA; the critical path on one
 *                            time line (each SM's clock fitted to %globaltimer: how much each
 *                            phase adds after the previous phase's last CTA, and [when its
 *                            last CTA had its inputs]); the attention items' sub-steps
 *   MEGADELTA_TRACE_DUMP=FILE with MEGADELTA_TRACE=1, also every CTA's raw events as CSV (trace.cu)
 *   MEGADELTA_PROBE=bits     timing probes, results wrong by design (decode.cuh: 1 no HBM, 2 no dots, 4 no waits,
 *                            8 DOWN reads H of its I inputs, 16 no attention combine (split-KV contexts only, past MEGADELTA_ATTN_WHOLE); any bit runs the
 *                            instrumented build: compare with an unused bit, e.g. 32, not with 0)
 * MEGADELTA_TRACE, _DELAY_SEED, _PROBE, _STOP and _POLL_NS run the
 * instrumented build of the kernel (megakernel_instrumented.cu): the same
 * source with the instruments compiled in, which the plain build leaves out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/common.cuh"
#include "cuda/decode/decode.cuh"
#include "cuda/decode/qkv_rows.h"
#include "cuda/decode/schedule.cuh"

#define MD_RED_FLOATS 128

/* md_udiv's multiplier for divisor x, ceil(2^32 / x) (x < 1 counts as 1):
 * false when a numerator up to max_n could come out wrong (md_udiv is exact
 * while numerator x divisor < 2^32). */
static bool md_magic(unsigned long long *m, int x, long long max_n) {
    if (x < 1) x = 1;
    *m = ((1ULL << 32) + (unsigned long long)x - 1) / (unsigned long long)x;
    return max_n * x < (1LL << 32);
}

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

static int attn_max_chunks(const md_cuda_dims *d, int G) {
    int worst = 1;
    /* the chunk count peaks either where the minimum chunk applies or at the context end */
    const int probes[3] = {MD_DEC_ATTN_MIN_CHUNK * G / d->Hkv, d->n_ctx, MD_DEC_ATTN_MAX_CHUNK * G / d->Hkv};
    for (int i = 0; i < 3; i++) {
        for (int npos = probes[i] - 2 * G; npos <= probes[i] + 2 * G; npos++) {
            if (npos < 1 || npos > d->n_ctx) continue;
            int chunk = (npos * d->Hkv + G - 1) / G;
            chunk = chunk < MD_DEC_ATTN_MIN_CHUNK ? MD_DEC_ATTN_MIN_CHUNK : chunk > MD_DEC_ATTN_MAX_CHUNK ? MD_DEC_ATTN_MAX_CHUNK : chunk;
            const int n = (npos + chunk - 1) / chunk;
            worst = n > worst ? n : worst;
        }
    }
    return worst;
}

md_status md_decode_init(md_session_t *s) {
    md_cuda_ctx *g = md_cuda_of(s);
    const md_cuda_dims *d = &g->dims;
    md_status st = MD_OK;
    struct md_decode *dec = (struct md_decode *)calloc(1, sizeof *dec);
    if (!dec) return md_fail(MD_ERR_OUT_OF_MEMORY, "decode: out of memory");
    g->dec = dec;
    md_decode_params *p = &dec->p;

    const int group = d->Hq / d->Hkv;
    if (d->n_layers > MD_DEC_MAX_LAYERS)
        return md_fail(MD_ERR_UNSUPPORTED, "GPU decode: %d layers (the decode kernel takes at most %d)", d->n_layers, MD_DEC_MAX_LAYERS);
    if (group > 8) return md_fail(MD_ERR_UNSUPPORTED, "GPU decode: %d query heads per KV head (at most 8)", group);
    if (d->dv % MD_DEC_REC_COLS || d->dk % 32 || d->dk > 128)
        return md_fail(MD_ERR_UNSUPPORTED, "GPU decode: DeltaNet head dims dk=%d, dv=%d (need dk a multiple of 32 up to 128, dv a multiple of 16)",
                       d->dk, d->dv);

    if (d->D % 8)
        return md_fail(MD_ERR_UNSUPPORTED, "GPU decode: attention head dim %d (must be a multiple of 8)", d->D);
    if (d->H % 32 || d->I % 32 || d->Vd % 32 || d->qd % 32)
        return md_fail(MD_ERR_UNSUPPORTED,
                       "GPU decode: matrix widths hidden=%d, intermediate=%d, value dim=%d, query dim=%d (each must be a multiple of 32)",
                       d->H, d->I, d->Vd, d->qd);

    /* path */
    md_kernel want = s->params.kernel;
    if (want == MD_KERNEL_HOPPER && g->cc_major < 9)
        return md_fail(MD_ERR_UNSUPPORTED, "--kernel hopper needs compute capability 9.0 (this GPU is %d.%d)", g->cc_major, g->cc_minor);
    dec->hopper = want == MD_KERNEL_HOPPER || (want == MD_KERNEL_AUTO && g->cc_major >= 9);

    /* grid */
    dec->grid = g->sm_count;
    long grid_env = md_env_long("MEGADELTA_GRID", 0);
    if (grid_env > 0) dec->grid = grid_env < g->sm_count ? (int)grid_env : g->sm_count;
    const int G = dec->grid;
    { /* the kernel's run-time divisors, each with the largest count it divides (md_udiv) */
        long long rows = d->vocab; /* md_split_grid's units, and the attention's chunk count */
        const long long more[5] = {d->n_in, d->n_qkv, d->I, d->H, (long long)d->n_ctx * d->Hkv + G};
        for (int i = 0; i < 5; i++) rows = more[i] > rows ? more[i] : rows;
        const struct {
            unsigned long long *m;
            int x;
            long long max_n;
        } div[7] = {
            {&p->grid_magic, G, rows},
            {&p->mg_dv, d->dv, d->Vd},
            {&p->mg_slices, d->dv / MD_DEC_REC_COLS, (long long)d->Hv * (d->dv / MD_DEC_REC_COLS)},
            {&p->mg_kgroup, d->Hk ? d->Hv / d->Hk : 1, d->Hv},
            {&p->mg_pairs, d->D / 2, (long long)group * (d->D / 2)},
            {&p->mg_d8, d->D / 8, (long long)MD_DEC_ATTN_MAX_CHUNK * (d->D / 8)},
            {&p->mg_conv, 2 * d->K - 1, MD_DEC_PRE_FLOATS},
        };
        for (int i = 0; i < 7; i++)
            if (!md_magic(div[i].m, div[i].x, div[i].max_n))
                return md_fail(MD_ERR_UNSUPPORTED, "GPU decode: dividing up to %lld by %d (%d CTAs) is beyond the schedule's fast division "
                               "(needs the product below 2^32)", div[i].max_n, div[i].x, G);
    }

    /* shared memory: vector area (also the attention scratch: queries, scores,
     * stats, the appended key, the staged norm weights and frequencies; then
     * the combine's landing area; or md_attention_whole's, below), then the
     * ring */
    const int max_chunks = attn_max_chunks(d, G);
    int vec = d->H;
    int combine = 0; /* md_attn_combine: a batch of partials of the widest slice, its gates and merge state */
    long cb = md_env_long("MEGADELTA_COMBINE_BATCH", MD_DEC_ATTN_COMBINE_BATCH);
    cb = cb < 1 ? 1 : cb > 1024 ? 1024 : cb;
    for (int n = 1; n <= max_chunks; n++) {
        const int sw = (d->D + n - 1) / n, nb = n < cb ? n : (int)cb;
        const int need = nb * group * (sw + 2) + group * sw * (n > nb ? 4 : 1); /* (a merge state only across batches) */
        combine = need > combine ? need : combine;
    }
    /* md_attention_whole: contexts up to attn_whole positions, capped by its
     * staged value slices (c.pre, [npos][64 / group] bf16: 256 positions on
     * the 0.8B, 128 on the tiny test model) and the context; its vector area
     * (md_whole_area): queries, scores (attn_whole apart), stats, key and
     * value scratch, norm weights and frequencies, gates, every warp's P V
     * sums. Within the split path's width (widths[4]) while attn_whole stays
     * below ~370 positions (group 4). c.xb holds at least the current key row
     * (xb_stride >= qd + 32 > D). The warps' P V sums are read as float2:
     * R / 2 even keeps them 8-byte aligned. */
    int attn_whole = 0, whole_vec = 0;
    if (d->n_full > 0 && md_attn_whole_shape(d->D, group) && d->R / 2 % 2 == 0) {
        const long want = md_env_long("MEGADELTA_ATTN_WHOLE", MD_DEC_ATTN_WHOLE);
        const long cap_v = (long)MD_DEC_PRE_FLOATS * 4 / (2 * (64 / group));
        long w = want < cap_v ? want : cap_v;
        w = w < d->n_ctx ? w : d->n_ctx;
        attn_whole = w > 0 ? (int)w : 0;
        whole_vec = group * d->D + group * attn_whole + 2 * MD_DEC_CONSUMER_WARPS * group + 2 * d->D + 2 * d->D + d->R / 2 + 64 +
                    MD_DEC_CONSUMER_WARPS * 64;
    }
    const int rec_items = d->Hv * (d->dv / MD_DEC_REC_COLS);
    const int widths[7] = {d->I, 2 * d->Vd + d->Hv /* md_gated_norm_split: o w silu(z), the items' sums of squares, each warp's head scales (Vd + items + NCW Hv <= 2 Vd + Hv for dv >= 16) */, d->qd,
                           2 * d->H + MD_DEC_IN_ITEM_ROWS * ((rec_items + G - 1) / G) /* h, the local recurrence inputs, the norm weights at the top (md_norm_split) */,
                           group * d->D + group * MD_DEC_ATTN_MAX_CHUNK + 2 * group + 2 * d->D + 2 * d->D + d->R / 2, combine, whole_vec};
    for (int i = 0; i < 7; i++) vec = widths[i] > vec ? widths[i] : vec;
    vec = (int)align_up((size_t)vec, 32);
    /* the ring: a stage holds one tile (16 rows) of up to 1024 columns (512
     * where shared memory is small), rows padded (schedule.cuh) */
    int max_cols = d->H;
    const int cols[3] = {d->I, d->Vd, d->qd};
    for (int i = 0; i < 3; i++) max_cols = cols[i] > max_cols ? cols[i] : max_cols;
    const int seg_pref = g->smem_optin >= 160 * 1024 ? 1024 : 512;
    size_t stage = (size_t)MD_DEC_TILE_ROWS * md_seg_stride(max_cols < seg_pref ? max_cols : seg_pref);
    const long stage_env = md_env_long("MEGADELTA_STAGE_KB", 0);
    if (stage_env >= 4 && stage_env <= 96) stage = (size_t)stage_env * 1024;
    /* the phase input split into bf16 high and low halves (the mma operand) */
    const int xb_stride = (int)align_up((size_t)max_cols, 64) + 32;
    const size_t xb_bytes = (size_t)2 * xb_stride * 2;
    const size_t h_own = (size_t)(d->H + G - 1) / G;
    size_t fixed = (size_t)vec * 4 + MD_RED_FLOATS * 4 + MD_DEC_PRE_FLOATS * 4 + MD_DEC_RES_FLOATS * 4 + align_up(h_own * 4, 16) + xb_bytes;
    if (g->smem_optin < fixed + 1024 + 2 * stage)
        return md_fail(MD_ERR_UNSUPPORTED, "GPU decode: %zu bytes of shared memory per block are too few for this model (need %zu)",
                       g->smem_optin, fixed + 1024 + 2 * stage);
    int n_stages = (int)((g->smem_optin - fixed - 1024) / (stage + 16));
    n_stages = n_stages > 16 ? 16 : n_stages;
    const long stages_env = md_env_long("MEGADELTA_STAGES", 0); /* at most this many ring stages (measurements) */
    if (stages_env >= 2 && stages_env < n_stages) n_stages = (int)stages_env;
    /* the conv windows resident in shared memory (md_conv_win) when that
     * costs no ring stage: every DeltaNet layer's K-1 values for each
     * in-projection row of the CTA (at most conv_rows) */
    int conv_rows = 0;
    {
        int *qk_table = md_dec_in_qk_table(d, G); /* (built again for the device below: nothing to free on the error paths between) */
        if (!qk_table) return md_fail(MD_ERR_OUT_OF_MEMORY, "GPU decode: out of host memory");
        for (int c = 0; c < G; c++) {
            const int n = qk_table[2 * c + 1] - qk_table[2 * c] + MD_DEC_IN_ITEM_ROWS * md_dec_items_of(c, rec_items, G);
            conv_rows = n > conv_rows ? n : conv_rows;
        }
        free(qk_table);
        const size_t conv_bytes = (size_t)d->n_linear * conv_rows * (d->K - 1) * 4;
        const bool fits = d->n_linear > 0 && d->K >= 2 && g->smem_optin >= fixed + conv_bytes + 1024 + 2 * stage;
        if (fits && (int)((g->smem_optin - fixed - conv_bytes - 1024) / (stage + 16)) >= n_stages) /* no ring stage lost */
            fixed += conv_bytes;
        else
            conv_rows = 0;
    }
    dec->smem = (size_t)n_stages * stage + (size_t)n_stages * 16 + align_up(fixed, 16);
    const char *stop_env = getenv("MEGADELTA_STOP");
    dec->instrumented = md_env_long("MEGADELTA_TRACE", 0) || md_env_long("MEGADELTA_DELAY_SEED", 0) || md_env_long("MEGADELTA_PROBE", 0) ||
                        md_env_long("MEGADELTA_POLL_NS", MD_DEC_POLL_NS) || (stop_env && *stop_env);
    st = dec->instrumented ? md_decode_prepare_instrumented(dec->hopper, dec->smem) : md_decode_prepare(dec->hopper, dec->smem);
    if (st != MD_OK) return st;

    /* scratch */
    const size_t n_mix = (size_t)(d->n_in > d->n_qkv ? d->n_in : d->n_qkv);
    /* the attention output, or the gated recurrence output and each item's sum of squares */
    const size_t n_rec_out = (size_t)d->Vd + (size_t)d->Hv * (d->dv / MD_DEC_REC_COLS);
    const size_t n_core = n_rec_out > (size_t)d->qd ? n_rec_out : (size_t)d->qd;
    const size_t n_part = (size_t)d->Hkv * max_chunks * group * (d->D + 2);
    size_t off = 0;
    const size_t o_h = off; off = align_up(off + (size_t)d->H * 8, 256);
    const size_t o_mix = off; off = align_up(off + n_mix * 8, 256);
    const size_t o_core = off; off = align_up(off + n_core * 8, 256);
    const size_t o_act = off; off = align_up(off + (size_t)d->I * 8, 256);
    const size_t o_tok = off; off = align_up(off + 8, 256);
    const size_t o_part = off; off = align_up(off + n_part * 8, 256);
    const size_t o_cand = off; off = align_up(off + (size_t)G * 16, 256);
    const size_t tagged_end = off;
    const size_t o_qk = off; off = align_up(off + (size_t)(2 * G) * 4, 256);
    const size_t o_qkv = off; off = align_up(off + (size_t)(4 * G) * 4, 256);
    MD_CUDA_CHECK(cudaMalloc(&dec->scratch, off));
    uint8_t *b = (uint8_t *)dec->scratch;
    /* tagged words start with tag 0, which no phase uses; the rest is poisoned
     * (NaN) so a read of anything not written this step shows */
    /* on the session's stream: it does not synchronise with the legacy default stream */
    MD_CUDA_CHECK(cudaMemsetAsync(dec->scratch, 0, tagged_end, g->stream));
    MD_CUDA_CHECK(cudaMemsetAsync(b + tagged_end, 0xff, off - tagged_end, g->stream));
    {
        int *qkv_rows = NULL;
        const int att_ctas = attn_whole ? md_attn_whole_items(d->Hkv, d->D, group) : 0;
        if ((st = md_dec_qkv_table(d->Hq, d->D, d->qd, d->kvd, G, att_ctas, &qkv_rows)) != MD_OK) return st;
        int *qk_table = md_dec_in_qk_table(d, G);
        if (!qk_table) {
            free(qkv_rows);
            return md_fail(MD_ERR_OUT_OF_MEMORY, "GPU decode: out of host memory");
        }
        cudaError_t e = cudaMemcpyAsync(b + o_qk, qk_table, (size_t)(2 * G) * sizeof(int), cudaMemcpyHostToDevice, g->stream);
        if (e == cudaSuccess) e = cudaMemcpyAsync(b + o_qkv, qkv_rows, (size_t)(4 * G) * sizeof(int), cudaMemcpyHostToDevice, g->stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(g->stream);
        free(qk_table);
        free(qkv_rows);
        if (e != cudaSuccess) return md_cuda_fail(e, "cudaMemcpyAsync (decode schedule)", __FILE__, __LINE__);
    }
    MD_CUDA_CHECK(cudaMemsetAsync(g->k_cache, 0xff, (g->kv_len + 1) * 2, g->stream));
    MD_CUDA_CHECK(cudaMemsetAsync(g->v_cache, 0xff, (g->kv_len + 1) * 2, g->stream));
    MD_CUDA_CHECK(cudaHostAlloc((void **)&dec->h_diag, 8 * sizeof(int), cudaHostAllocMapped));
    memset(dec->h_diag, 0, 8 * sizeof(int));
    int *d_diag = NULL;
    MD_CUDA_CHECK(cudaHostGetDevicePointer((void **)&d_diag, dec->h_diag, 0));
    MD_CUDA_CHECK(cudaEventCreate(&dec->ev0));
    MD_CUDA_CHECK(cudaEventCreate(&dec->ev1));

    p->d = *d;
    memcpy(p->layers, g->layers, (size_t)d->n_layers * sizeof(md_cuda_layer));
    p->embed = g->embed;
    p->lm_head = g->lm_head;
    p->final_norm = g->final_norm;
    p->inv_freq = g->d_inv_freq;
    p->conv_state = g->conv_state;
    p->ssm_state = g->ssm_state;
    p->k_cache = g->k_cache;
    p->v_cache = g->v_cache;
    p->h = (unsigned long long *)(b + o_h);
    p->mix = (unsigned long long *)(b + o_mix);
    p->core = (unsigned long long *)(b + o_core);
    p->act = (unsigned long long *)(b + o_act);
    p->tok = (unsigned long long *)(b + o_tok);
    p->attn_part = (unsigned long long *)(b + o_part);
    p->cand = (unsigned long long *)(b + o_cand);
    p->in_qk = (const int *)(b + o_qk);
    p->qkv_rows = (const int *)(b + o_qkv);
    p->diag = d_diag;
    p->attn_max_chunks = max_chunks;
    p->attn_combine_batch = (int)cb;
    p->attn_whole = attn_whole;
    p->stage_bytes = (int)stage;
    p->n_stages = n_stages;
    {   /* folded chunks (schedule.cuh, md_phase_geom) for the phases with H rows
         * when no CTA has more than half a tile of them: pieces of equal width */
        const int cols[3] = {d->Vd, d->qd, d->I}; /* [MD_FOLD_OUT], [MD_FOLD_O], [MD_FOLD_DOWN] */
        const bool fold_on = md_env_long("MEGADELTA_FOLD", 1) != 0 && (d->H + G - 1) / G <= MD_DEC_TILE_ROWS / 2;
        /* the kernel folds all three or none (megakernel.cu): a phase the model
         * does not have (OUT without DeltaNet layers, O without attention) need not fold */
        const bool has[3] = {d->n_linear > 0, d->n_linear < d->n_layers, true};
        bool all = fold_on;
        for (int i = 0; i < 3; i++) {
            p->fold[i].sc = p->fold[i].n = 0;
            const int sc = md_seg_cols(cols[i], (int)stage), nseg = md_seg_count(cols[i], sc), n = (nseg + 1) / 2;
            if (nseg > 1 && (cols[i] / 32) % (2 * n) == 0) {
                p->fold[i].sc = cols[i] / (2 * n);
                p->fold[i].n = n;
            } else if (has[i]) {
                all = false;
            }
        }
        if (!all)
            for (int i = 0; i < 3; i++) p->fold[i].sc = p->fold[i].n = 0;
    }
    p->vec_floats = vec;
    p->conv_rows = conv_rows;
    p->xb_stride = xb_stride;
    p->watchdog_ns = md_env_long("MEGADELTA_WATCHDOG_MS", 10000) * 1000000LL;
    p->prefetch_chunks = (int)(md_env_long("MEGADELTA_PREFETCH_KB", MD_DEC_PREFETCH_KB) * 1024 / (long)stage);
    p->delay_seed = (unsigned)md_env_long("MEGADELTA_DELAY_SEED", 0);
    p->poll_ns = (int)md_env_long("MEGADELTA_POLL_NS", MD_DEC_POLL_NS);
    {   /* the pace per byte: MEGADELTA_PACE_NS per 32 KiB (a full 0.8B chunk, 16 rows of 1024 columns) */
        const long pace = md_env_long("MEGADELTA_PACE_NS", MD_DEC_PACE_NS);
        p->pace_fx = pace > 0 ? ((unsigned long long)pace << 16) / 32768u : 0;
    }
    p->probe = (int)md_env_long("MEGADELTA_PROBE", 0);
    p->stop_layer = p->stop_phase = -1;
    if (md_env_long("MEGADELTA_TRACE", 0)) {
        const size_t n = (size_t)G * (d->n_layers * MD_PHASES_PER_LAYER + 1) * MD_DEC_TRACE_EVENTS;
        MD_CUDA_CHECK(cudaMalloc(&dec->d_trace, n * 8));
        MD_CUDA_CHECK(cudaMemset(dec->d_trace, 0, n * 8)); /* some events are written only by some CTAs */
        p->trace = dec->d_trace;
        MD_CUDA_CHECK(cudaDeviceGetAttribute(&dec->clock_khz, cudaDevAttrClockRate, g->device));
    }
    const char *stop = getenv("MEGADELTA_STOP");
    if (stop && *stop && sscanf(stop, "%d,%d", &p->stop_layer, &p->stop_phase) != 2) p->stop_layer = p->stop_phase = -1;
    return MD_OK;
}

void md_decode_free(md_session_t *s) {
    md_cuda_ctx *g = md_cuda_of(s);
    struct md_decode *dec = g->dec;
    if (!dec) return;
    cudaFree(dec->scratch);
    cudaFree(dec->d_out);
    cudaFree(dec->d_trace);
    if (dec->h_diag) cudaFreeHost(dec->h_diag);
    if (dec->ev0) cudaEventDestroy(dec->ev0);
    if (dec->ev1) cudaEventDestroy(dec->ev1);
    free(dec);
    g->dec = NULL;
}

/* Nothing to reset: the tag epoch (dec->steps) goes on counting, so no
 * tagged word of the old sequence can be mistaken for one of the new. */
md_status md_decode_reset(md_session_t *s) {
    (void)s;
    return MD_OK;
}

/* After a failed launch or sync: name the watchdog's report when it fired. */
static md_status decode_error(struct md_decode *dec, cudaError_t e) {
    static const char *const what[] = {"", "its inputs", "a free ring slot", "a ring chunk"};
    static const char *const phase_names[] = {"mixer in-projection", "recurrence/attention", "mixer out-projection", "MLP gate/up",
                                              "MLP down"};
    if (dec->h_diag[0]) {
        int w = dec->h_diag[2], ph = dec->h_diag[4];
        if (dec->h_diag[3] >= dec->p.d.n_layers) /* (layer n_layers: the final norm, the LM head and the argmax's candidates) */
            return md_fail(MD_ERR_DEVICE, "decode kernel watchdog: CTA %d (warp %d) waited too long for %s at the LM head / argmax (%s)",
                           dec->h_diag[1], dec->h_diag[5], w >= 1 && w <= 3 ? what[w] : "?", cudaGetErrorString(e));
        return md_fail(MD_ERR_DEVICE, "decode kernel watchdog: CTA %d (warp %d) waited too long for %s at layer %d, %s (%s)",
                       dec->h_diag[1], dec->h_diag[5], w >= 1 && w <= 3 ? what[w] : "?", dec->h_diag[3],
                       ph >= 0 && ph < 5 ? phase_names[ph] : "?", cudaGetErrorString(e));
    }
    return md_fail(MD_ERR_DEVICE, "decode kernel failed: %s", cudaGetErrorString(e));
}

md_status md_decode_run(md_session_t *s, int pos, int32_t first, int n, int32_t *out, float *d_logits, double *seconds) {
    md_cuda_ctx *g = md_cuda_of(s);
    struct md_decode *dec = g->dec;
    if (n <= 0) return MD_OK;
    if (n > dec->out_cap) {
        cudaFree(dec->d_out);
        dec->d_out = NULL;
        dec->out_cap = 0;
        MD_CUDA_CHECK(cudaMalloc(&dec->d_out, (size_t)n * sizeof(int32_t)));
        dec->out_cap = n;
    }
    md_decode_params p = dec->p;
    if (p.stop_layer >= 0 && n > 1) return md_fail(MD_ERR_INVALID_ARG, "MEGADELTA_STOP works on single decode steps only");
    p.pos0 = pos;
    p.n_steps = n;
    p.epoch0 = dec->steps;
    p.out_tokens = dec->d_out;
    p.logits = d_logits;
    if (first >= 0) { /* tagged as if the previous step's argmax had chosen it */
        const unsigned long long slots = (unsigned long long)g->dims.n_layers * MD_PHASES_PER_LAYER + 1;
        const unsigned tag = (unsigned)(dec->steps * slots + slots);
        dec->tok_word = ((unsigned long long)tag << 32) | (uint32_t)first;
        MD_CUDA_CHECK(cudaMemcpyAsync(p.tok, &dec->tok_word, 8, cudaMemcpyHostToDevice, g->stream));
    }
    if (seconds) MD_CUDA_CHECK(cudaEventRecord(dec->ev0, g->stream));
    md_status st = dec->instrumented ? md_decode_launch_instrumented(g, &p, dec->grid, dec->smem, dec->hopper)
                                     : md_decode_launch(g, &p, dec->grid, dec->smem, dec->hopper);
    if (st != MD_OK) return st;
    if (seconds) MD_CUDA_CHECK(cudaEventRecord(dec->ev1, g->stream));
    cudaError_t e = cudaStreamSynchronize(g->stream);
    if (e != cudaSuccess) return decode_error(dec, e);
    dec->steps += (unsigned long long)n;
    if (dec->d_trace) md_decode_print_trace(g, dec);
    if (out) MD_CUDA_CHECK(cudaMemcpy(out, dec->d_out, (size_t)n * sizeof(int32_t), cudaMemcpyDeviceToHost));
    if (seconds) {
        float ms = 0;
        MD_CUDA_CHECK(cudaEventElapsedTime(&ms, dec->ev0, dec->ev1));
        *seconds = ms / 1e3;
    }
    return MD_OK;
}
