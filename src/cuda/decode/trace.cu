/*
 * trace.cu — MEGADELTA_TRACE=1: where the last decode step's time went,
 * printed after each run from the events the kernel recorded (md_trace,
 * md_trace_mark in megakernel.cu; layout: decode.cuh, MD_DEC_TRACE_EVENTS).
 *
 * Reports, one function each:
 *   - per phase kind, the mean (over layers and CTAs) and worst CTA of the
 *     wait for inputs, the prologue, the rows, and parts of the rows (thread
 *     0's view): the input split, waiting for ring chunks, multiplying them,
 *     waiting for the other warps, the epilogues, what follows them;
 *   - per layer, the slowest CTA's wait and rows;
 *   - the critical path on one time line (every SM's clock fitted to
 *     %globaltimer);
 *   - the attention items' sub-steps;
 *   - stragglers: which CTAs arrive last.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cuda/common.cuh"
#include "cuda/decode/decode.cuh"

#define KINDS 11
static const char *const kind_names[KINDS] = {"IN",  "REC", "OUT",      "GU(lin)",    "DOWN(lin)", "QKV",
                                              "ATTN", "O",  "GU(full)", "DOWN(full)", "LM"};

/* The events of the last step, [G][slots][MD_DEC_TRACE_EVENTS]; a slot is
 * (layer, phase), the LM head the last. */
typedef struct trace {
    const md_cuda_ctx *g;
    const unsigned long long *t;
    int G, slots;
    double us; /* microseconds per clock cycle */
} trace;

static const unsigned long long *events(const trace *tr, int b, int sl) {
    return tr->t + ((size_t)b * tr->slots + sl) * MD_DEC_TRACE_EVENTS;
}

/* IN, REC, OUT, GU, DOWN of a DeltaNet layer; QKV, ATTN, O, GU, DOWN of an attention layer; LM. */
static int kind_of(const trace *tr, int sl) {
    const int layer = sl / MD_PHASES_PER_LAYER;
    return layer == tr->g->dims.n_layers ? KINDS - 1 : (tr->g->layers[layer].full ? 5 : 0) + sl % MD_PHASES_PER_LAYER;
}

/* The recurrence or attention phase of a layer (they mark their own sub-steps in events 4-8). */
static bool is_mix(const trace *tr, int sl) {
    return sl / MD_PHASES_PER_LAYER < tr->g->dims.n_layers && sl % MD_PHASES_PER_LAYER == MD_PH_MIX;
}

/* When a CTA had all inputs of slot sl: event 1, except in the recurrence
 * (marked after its gather) and the attention (after the queries). */
static unsigned long long inputs_event(const trace *tr, int sl, const unsigned long long *e) {
    if (!is_mix(tr, sl)) return e[1];
    const unsigned long long m = tr->g->layers[sl / MD_PHASES_PER_LAYER].full ? e[4] : e[8];
    return m ? m : e[1];
}

static void phase_table(const trace *tr, const struct md_decode *dec) {
    double sum[KINDS][9] = {{0}}, mx[KINDS][9] = {{0}}, total = 0;
    int cnt[KINDS] = {0};
    for (int b = 0; b < tr->G; b++) {
        total += (double)(events(tr, b, tr->slots - 1)[3] - events(tr, b, 0)[0]) * tr->us;
        for (int sl = 0; sl < tr->slots; sl++) {
            const unsigned long long *e = events(tr, b, sl);
            const unsigned long long chunks_done = e[5] ? e[5] : e[3], synced = e[6] ? e[6] : chunks_done,
                                     epi_done = e[7] ? e[7] : synced, split = e[8] ? e[8] : e[2];
            double v[9] = {(double)(e[1] - e[0]),         (double)(e[2] - e[1]),    (double)(e[3] - e[2]),
                           (double)(split - e[2]),         (double)e[4],             (double)e[9],
                           (double)(synced - chunks_done), (double)(epi_done - synced), (double)(e[3] - epi_done)};
            if (is_mix(tr, sl)) /* events 4-8 hold the sub-steps' clocks there (attention_items) */
                for (int k = 3; k < 9; k++) v[k] = 0.0;
            const int kind = kind_of(tr, sl);
            for (int k = 0; k < 9; k++) {
                sum[kind][k] += v[k] * tr->us;
                if (v[k] * tr->us > mx[kind][k]) mx[kind][k] = v[k] * tr->us;
            }
            cnt[kind]++;
        }
    }
    fprintf(stderr, "decode trace (last step, %d CTAs, mean per CTA %.1f us; clusters of 8 that fit at once: %d): per phase, us mean / max over CTAs\n",
            tr->G, total / tr->G, md_decode_max_clusters_instrumented(dec->hopper, dec->smem, 8));
    fprintf(stderr, "  ring %d x %d B; OUT / O / DOWN %s\n", dec->p.n_stages, dec->p.stage_bytes,
            dec->p.fold[MD_FOLD_DOWN].sc ? "folded (two pieces of <= 8 rows a chunk)" : "not folded");
    fprintf(stderr, "  %-11s %6s  %15s %15s %15s %15s %15s %15s %15s %15s %15s\n", "phase", "count", "wait", "prologue", "rows", "(split)",
            "(ring, max warp)", "(mma, max warp)", "(other warps)", "(epilogues)", "(after)");
    for (int k = 0; k < KINDS; k++) {
        if (!cnt[k]) continue;
        fprintf(stderr, "  %-11s %6d ", kind_names[k], cnt[k] / tr->G);
        for (int j = 0; j < 9; j++) fprintf(stderr, " %7.2f / %6.2f", sum[k][j] / cnt[k], mx[k][j]);
        fprintf(stderr, "   sum %.1f us\n", (sum[k][0] + sum[k][1] + sum[k][2]) / tr->G);
    }
}

/* Per layer, the slowest CTA's wait and rows (what the next phase waits
 * for), averaged over the layers of a kind. */
static void slowest_per_layer(const trace *tr) {
    double lm[KINDS][2] = {{0}};
    int ln[KINDS] = {0};
    for (int sl = 0; sl < tr->slots; sl++) {
        double w = 0, r = 0;
        for (int b = 0; b < tr->G; b++) {
            const unsigned long long *e = events(tr, b, sl);
            const double we = (double)(e[1] - e[0]) * tr->us, re = (double)(e[3] - e[1]) * tr->us;
            w = we > w ? we : w;
            r = re > r ? re : r;
        }
        const int kind = kind_of(tr, sl);
        lm[kind][0] += w;
        lm[kind][1] += r;
        ln[kind]++;
    }
    fprintf(stderr, "  per layer, slowest CTA (mean over layers): wait / prologue+rows, us:");
    for (int k = 0; k < KINDS; k++)
        if (ln[k]) fprintf(stderr, " %s %.2f / %.2f;", kind_names[k], lm[k][0] / ln[k], lm[k][1] / ln[k]);
    fprintf(stderr, "\n");
}

/* The critical path on one time line: each CTA's clock mapped to
 * %globaltimer (ns) by a least-squares line through its (clock, timer) pairs
 * at the phase starts; then per slot the time the LAST CTA finished it and
 * the time the last CTA had its inputs, and per kind the mean of what a
 * phase adds after the previous phase's last CTA. */
static void critical_path(const trace *tr) {
    /* fit[b]: ns at CTA b's first event, ns per cycle; then per slot: the last
     * CTA's end, the last CTA's inputs, when that CTA started the phase */
    double *fit = (double *)calloc((size_t)tr->G * 2 + (size_t)tr->slots * 3, sizeof(double));
    int *bin = (int *)calloc((size_t)tr->slots * 2, sizeof(int)); /* per slot: that CTA, and the CTA that ended it last */
    if (fit && bin) {
        double *tend = fit + 2 * tr->G, *tin = tend + tr->slots, *tst = tin + tr->slots;
        int *bend = bin + tr->slots;
        for (int b = 0; b < tr->G; b++) {
            const unsigned long long c0 = events(tr, b, 0)[0];
            double sx = 0, sy = 0, sxx = 0, sxy = 0;
            for (int sl = 0; sl < tr->slots; sl++) {
                const unsigned long long *e = events(tr, b, sl);
                const double x = (double)(e[0] - c0), y = (double)e[10];
                sx += x, sy += y, sxx += x * x, sxy += x * y;
            }
            const double m = tr->slots, den = m * sxx - sx * sx;
            fit[2 * b + 1] = den > 0 ? (m * sxy - sx * sy) / den : tr->us * 1e3;
            fit[2 * b] = (sy - fit[2 * b + 1] * sx) / m;
        }
        for (int sl = 0; sl < tr->slots; sl++) {
            tend[sl] = tin[sl] = -1e300;
            for (int b = 0; b < tr->G; b++) {
                const unsigned long long *e = events(tr, b, sl), c0 = events(tr, b, 0)[0];
#define NS_AT(cycles) (fit[2 * b] + fit[2 * b + 1] * (double)((cycles) - c0)) /* CTA b's clock on the global time line */
                const double te = NS_AT(e[3]), ti = NS_AT(inputs_event(tr, sl, e));
                if (te > tend[sl]) tend[sl] = te, bend[sl] = b;
                if (ti > tin[sl]) tin[sl] = ti, bin[sl] = b, tst[sl] = NS_AT(e[0]);
#undef NS_AT
            }
        }
        double add[KINDS] = {0}, inl[KINDS] = {0}, late[KINDS] = {0};
        int na[KINDS] = {0}, same[KINDS] = {0};
        for (int sl = 1; sl < tr->slots; sl++) {
            const int kind = kind_of(tr, sl);
            add[kind] += (tend[sl] - tend[sl - 1]) * 1e-3;
            inl[kind] += (tin[sl] - tend[sl - 1]) * 1e-3;
            late[kind] += (tst[sl] - tend[sl - 1]) * 1e-3;
            same[kind] += bin[sl] == bend[sl - 1];
            na[kind]++;
        }
        fprintf(stderr, "  critical path (one time line): per phase, us from the previous phase's last CTA to this one's last CTA "
                        "[to the last CTA's inputs]: step %.1f us:",
                (tend[tr->slots - 1] - tend[0]) * 1e-3);
        for (int k = 0; k < KINDS; k++)
            if (na[k]) fprintf(stderr, " %s %.2f [%.2f];", kind_names[k], add[k] / na[k], inl[k] / na[k]);
        fprintf(stderr, "\n  the CTA whose inputs came last: its phase start after the previous phase's last CTA, us (how often it was that CTA):");
        for (int k = 0; k < KINDS; k++)
            if (na[k]) fprintf(stderr, " %s %.2f (%d/%d);", kind_names[k], late[k] / na[k], same[k], na[k]);
        fprintf(stderr, "\n");
    }
    free(fit);
    free(bin);
}

/* Attention items (CTAs that ran one): the queries waited for and rotated
 * (and when warp 0 had polled its query head, event 9),
 * the append, scores + softmax, P V + partials, the
 * combine (every item: its slice of the dims). */
static void attention_items(const trace *tr) {
    double as[5] = {0}, am[5] = {0}, ps = 0, pm = 0; /* ps, pm: warp 0's query poll (event 9) */
    int an = 0;
    for (int sl = 0; sl < tr->slots; sl++) {
        if (!is_mix(tr, sl) || !tr->g->layers[sl / MD_PHASES_PER_LAYER].full) continue;
        for (int b = 0; b < tr->G; b++) {
            const unsigned long long *e = events(tr, b, sl);
            if (!e[8] || !e[5] || !e[6] || !e[7] || e[4] < e[1]) continue;
            const double v[5] = {(double)(e[4] - e[1]) * tr->us, (double)(e[8] - e[4]) * tr->us, (double)(e[5] - e[8]) * tr->us,
                                 (double)(e[6] - e[5]) * tr->us, (double)(e[7] - e[6]) * tr->us};
            for (int k = 0; k < 5; k++) {
                as[k] += v[k];
                am[k] = v[k] > am[k] ? v[k] : am[k];
            }
            const double pv = e[9] > e[1] ? (double)(e[9] - e[1]) * tr->us : 0.0;
            ps += pv;
            pm = pv > pm ? pv : pm;
            an++;
        }
    }
    if (an)
        fprintf(stderr, "  attention items (%d): queries %.2f / %.2f (warp 0's poll done after %.2f / %.2f), append %.2f / %.2f, "
                        "scores+softmax %.2f / %.2f, P V+partials %.2f / %.2f, combine %.2f / %.2f us (mean / max)\n",
                an, as[0] / an, am[0], ps / an, pm, as[1] / an, am[1], as[2] / an, am[2], as[3] / an, am[3], as[4] / an, am[4]);
}

/* Stragglers: in each phase that waits for the one before, the CTA that
 * waited least finished that one last (clocks are per SM, so compare
 * waits); in the recurrence and attention, the CTA that took longest. */
static void stragglers(const trace *tr) {
    int *late = (int *)calloc((size_t)tr->G * 2, sizeof(int)), *rec_slow = late + tr->G;
    if (!late) return;
    for (int sl = 0; sl < tr->slots; sl++) {
        int arg = 0;
        double best = 1e300;
        for (int b = 0; b < tr->G; b++) {
            const unsigned long long *e = events(tr, b, sl);
            const double v = is_mix(tr, sl) ? -(double)(e[3] - e[0]) : (double)(e[1] - e[0]);
            if (v < best) {
                best = v;
                arg = b;
            }
        }
        (is_mix(tr, sl) ? rec_slow : late)[arg]++;
    }
    for (int pass = 0; pass < 2; pass++) {
        int *h = pass ? rec_slow : late;
        fprintf(stderr, "  %s:", pass ? "slowest CTA of a recurrence/attention phase (count)" : "last CTA into a phase (count)");
        for (int k = 0; k < 8; k++) {
            int arg = -1;
            for (int b = 0; b < tr->G; b++)
                if (h[b] > 0 && (arg < 0 || h[b] > h[arg])) arg = b;
            if (arg < 0) break;
            fprintf(stderr, " %d(%d)", arg, h[arg]);
            h[arg] = -h[arg];
        }
        fprintf(stderr, "\n");
    }
    free(late);
}

/* MEGADELTA_TRACE_DUMP=FILE: every CTA's raw events of every slot as CSV
 * (cta, layer, phase, kind, then events 0-9 in cycles after event 0 and
 * event 10, %globaltimer ns at event 0), for analyses the tables above do
 * not make. Events 4-8 are sub-step clocks in the recurrence and attention
 * (md_trace_mark), counts elsewhere (md_trace_record). */
static void dump_events(const trace *tr, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "MEGADELTA_TRACE_DUMP: cannot write %s\n", path);
        return;
    }
    fprintf(f, "cta,layer,phase,kind,e1,e2,e3,e4,e5,e6,e7,e8,e9,t0_ns,cycles_per_us\n");
    for (int b = 0; b < tr->G; b++)
        for (int sl = 0; sl < tr->slots; sl++) {
            const unsigned long long *e = events(tr, b, sl);
            fprintf(f, "%d,%d,%d,%s", b, sl / MD_PHASES_PER_LAYER, sl % MD_PHASES_PER_LAYER, kind_names[kind_of(tr, sl)]);
            for (int k = 1; k < 10; k++) fprintf(f, ",%lld", (long long)(e[k] - e[0]));
            fprintf(f, ",%llu,%.3f\n", e[10], 1.0 / tr->us);
        }
    fclose(f);
}

void md_decode_print_trace(const md_cuda_ctx *g, const struct md_decode *dec) {
    const int slots = g->dims.n_layers * MD_PHASES_PER_LAYER + 1;
    const size_t n = (size_t)dec->grid * slots * MD_DEC_TRACE_EVENTS;
    unsigned long long *t = (unsigned long long *)malloc(n * 8);
    if (!t || cudaMemcpy(t, dec->d_trace, n * 8, cudaMemcpyDeviceToHost) != cudaSuccess) {
        free(t);
        return;
    }
    const trace tr = {g, t, dec->grid, slots, 1e3 / dec->clock_khz};
    phase_table(&tr, dec);
    slowest_per_layer(&tr);
    critical_path(&tr);
    attention_items(&tr);
    stragglers(&tr);
    const char *dump = getenv("MEGADELTA_TRACE_DUMP");
    if (dump && *dump) dump_events(&tr, dump);
    free(t);
}
