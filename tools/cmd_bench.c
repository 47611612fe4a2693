/*
 * cmd_bench.c — `megadelta bench`: llama-bench-style speed table.
 * pp<N>: one prefill of N random tokens from an empty context, timed.
 * tg<N>: N greedy decode steps from an empty context, each argmax fed back.
 * Every test runs once as warm-up, then -r times; the table shows mean ± sd
 * of tokens per second over the repetitions. On a GPU it also shows energy
 * (NVML's counter over a window of at least 2 s, the test repeated as needed:
 * average power and tokens per joule) and, for tg, the fraction of the memory
 * roofline: bytes a decode step must move (weights, recurrent state read and
 * written, KV cache read; md_model_decode_bytes) x tokens/s over the device
 * bandwidth measured by a device-to-device copy at start-up.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: megadelta bench [-m DIR | --preset NAME] [-p 512] [-n 128] [-r 5] [options]\n"
    "Measures prompt processing (pp) and text generation (tg) speed.\n"
    "  -p, --n-prompt LIST    prompt lengths, comma-separated (0 = skip pp)\n"
    "  -n, --n-gen N          generated tokens (0 = skip tg)\n"
    "  -r, --repetitions N    timed repetitions after one warm-up (default 5)\n"
    "      --seed N           seed of the random prompt tokens\n"
    "      --json             one JSON object per test on stdout instead of the table\n"
    "Without -m, the synthetic qwen3.5-0.8b preset is used (written once to the cache).\n"
    "On the CPU the defaults are smaller (-p 64 -n 16 -r 3) and the table says so.\n";

#define MAX_PP 16

typedef struct stats {
    double mean, sd;
} stats;

static stats summarize(const double *v, int n) {
    stats s = {0, 0};
    for (int i = 0; i < n; i++) s.mean += v[i];
    s.mean /= n;
    for (int i = 0; i < n; i++) s.sd += (v[i] - s.mean) * (v[i] - s.mean);
    s.sd = n > 1 ? sqrt(s.sd / (n - 1)) : 0.0;
    return s;
}

static uint64_t next_rand(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* One pp run: reset, prefill n random tokens, returns tokens/s (or < 0 on error). */
static double run_pp(md_session_t *s, int32_t *toks, int n, int vocab, uint64_t *rng) {
    for (int i = 0; i < n; i++) toks[i] = (int32_t)(next_rand(rng) % (uint64_t)vocab);
    if (md_session_reset(s) != MD_OK) return -1;
    const double t0 = cli_now();
    md_status st = md_session_prefill(s, toks, n, NULL, 0);
    const double dt = cli_now() - t0;
    return st == MD_OK ? n / dt : -1;
}

static double run_tg(md_session_t *s, int32_t *toks, int n, int vocab, uint64_t *rng) {
    (void)toks;
    if (md_session_reset(s) != MD_OK) return -1;
    double secs = 0;
    md_status st = md_session_generate_argmax(s, (int32_t)(next_rand(rng) % (uint64_t)vocab), n, NULL, &secs);
    return st == MD_OK ? n / secs : -1;
}

/* Energy of repeated runs over >= 2 s; watts/tok_per_j stay < 0 when NVML is absent. */
typedef struct energy {
    double watts, tok_per_j;
} energy;

typedef double (*run_fn)(md_session_t *s, int32_t *toks, int n, int vocab, uint64_t *rng);

static energy measure_energy(md_energy_meter_t *meter, run_fn run, md_session_t *s, int32_t *toks, int n, int vocab,
                             uint64_t *rng) {
    energy e = {-1, -1};
    double j0, j1;
    if (!meter || md_energy_meter_read(meter, &j0, NULL) != MD_OK) return e;
    const double t0 = cli_now();
    long tokens = 0;
    do {
        if (run(s, toks, n, vocab, rng) < 0) return e;
        tokens += n;
    } while (cli_now() - t0 < 2.0);
    const double dt = cli_now() - t0;
    if (md_energy_meter_read(meter, &j1, NULL) != MD_OK || j1 <= j0) return e;
    e.watts = (j1 - j0) / dt;
    e.tok_per_j = tokens / (j1 - j0);
    return e;
}

static void print_row(bool json, const char *model, const md_model_info *in, const char *backend, const char *test,
                      stats st, int reps, energy en, double roofline) {
    char w[32] = "n/a", tj[32] = "n/a", rf[32] = "n/a";
    if (en.watts >= 0) snprintf(w, sizeof w, "%.0f", en.watts), snprintf(tj, sizeof tj, "%.2f", en.tok_per_j);
    if (roofline >= 0) snprintf(rf, sizeof rf, json ? "%.4f" : "%.1f%%", json ? roofline : 100 * roofline);
    if (json) {
        printf("{\"model\": \"%s\", \"params\": %lld, \"backend\": \"%s\", \"test\": \"%s\", \"tokens_per_second\": %.3f, "
               "\"stddev\": %.3f, \"repetitions\": %d, \"watts\": %s, \"tokens_per_joule\": %s, \"roofline_fraction\": %s}\n",
               model, (long long)in->n_params, backend, test, st.mean, st.sd, reps, en.watts >= 0 ? w : "null",
               en.watts >= 0 ? tj : "null", roofline >= 0 ? rf : "null");
    } else {
        printf("| %-24s | %9.1f M | %-7s | %-8s | %12.1f ± %8.1f | %6s | %6s | %8s |\n", model, in->n_params / 1e6, backend, test,
               st.mean, st.sd, w, tj, rf);
    }
    fflush(stdout);
}

int cmd_bench(int argc, char **argv) {
    cli_model_opts mo;
    cli_model_opts_init(&mo);
    int pp[MAX_PP], n_pp = -1, n_gen = -1, reps = -1;
    uint64_t seed = 1234;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = cli_model_flag(&mo, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s%s", usage, cli_model_help);
            return 0;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            if (!(v = cli_value(argc, argv, &i))) return 1;
            n_pp = 0;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
                if (n_pp == MAX_PP) return cli_error("-p takes at most %d lengths", MAX_PP);
                if (!cli_int(a, tok, 0, 1 << 24, &pp[n_pp])) return 1;
                if (pp[n_pp] > 0) n_pp++;
            }
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 0, 1 << 24, &n_gen)) return 1;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 1, 10000, &reps)) return 1;
        } else if (!strcmp(a, "--seed")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_u64(a, v, &seed)) return 1;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else {
            return cli_error("bench: unknown option '%s'\n%s", a, usage);
        }
    }
    char dir[4096];
    if (cli_model_dir(&mo, "qwen3.5-0.8b", dir, sizeof dir) != MD_OK) return 1;
    md_model_t *model = NULL;
    md_session_t *s = NULL;
    int32_t *toks = NULL;
    md_energy_meter_t *meter = NULL;
    int rc = 1;
    md_status st = md_model_load(dir, &model);
    if (st != MD_OK) return cli_fail("loading the model", st);
    const md_model_info *in = md_model_get_info(model);

    /* the context must hold the longest test */
    md_session_params params = mo.params;
    md_session_t *probe = NULL;
    bool cpu;
    {
        md_session_params p1 = params;
        p1.n_ctx = 1;
        if ((st = md_session_init(model, &p1, &probe)) != MD_OK) {
            cli_fail("creating the session", st);
            goto done;
        }
        cpu = md_session_backend(probe) == MD_BACKEND_CPU;
        md_session_free(probe);
    }
    if (cpu) {
        bool changed = false;
        if (n_pp < 0) n_pp = 1, pp[0] = 64, changed = true;
        if (n_gen < 0) n_gen = 16, changed = true;
        if (reps < 0) reps = 3, changed = true;
        if (changed && !json)
            fprintf(stderr, "megadelta: CPU backend: using smaller defaults where not given (-p 64 -n 16 -r 3)\n");
    } else {
        if (n_pp < 0) n_pp = 1, pp[0] = 512;
        if (n_gen < 0) n_gen = 128;
        if (reps < 0) reps = 5;
    }
    int need = n_gen;
    for (int i = 0; i < n_pp; i++) need = pp[i] > need ? pp[i] : need;
    if (need > in->max_position_embeddings) {
        cli_error("the longest test (%d tokens) exceeds the model's max_position_embeddings (%d)", need, in->max_position_embeddings);
        goto done;
    }
    if (params.n_ctx == 0) params.n_ctx = need > 0 ? need : 1;
    if ((st = md_session_init(model, &params, &s)) != MD_OK) {
        cli_fail("creating the session", st);
        goto done;
    }
    const char *backend = md_session_backend_name(s);
    const char *model_name = mo.model_dir ? mo.model_dir : (mo.preset ? mo.preset : "qwen3.5-0.8b");
    const char *slash = strrchr(model_name, '/');
    if (slash && slash[1]) model_name = slash + 1;
    toks = malloc((size_t)(need > 0 ? need : 1) * sizeof *toks);
    double *tps = malloc((size_t)reps * sizeof *tps);
    if (!toks || !tps) {
        free(tps);
        cli_error("out of memory");
        goto done;
    }
    md_gpu_info gi;
    const bool gpu = md_session_gpu_info(s, &gi) == MD_OK;
    if (gpu) {
        if (md_energy_meter_open(0, &meter) != MD_OK) meter = NULL;
        if (json)
            printf("{\"device\": \"%s\", \"sm_count\": %d, \"compute_capability\": \"%d.%d\", \"sm_clock_mhz\": %d, "
                   "\"mem_clock_mhz\": %d, \"bandwidth_gbs\": %.1f}\n",
                   gi.name, gi.sm_count, gi.cc_major, gi.cc_minor, gi.sm_clock_mhz, gi.mem_clock_mhz, gi.mem_bandwidth_gbs);
        else
            printf("device: %s, %d SMs, compute %d.%d, clocks SM %d MHz / memory %d MHz, measured bandwidth %.0f GB/s%s\n\n",
                   gi.name, gi.sm_count, gi.cc_major, gi.cc_minor, gi.sm_clock_mhz, gi.mem_clock_mhz, gi.mem_bandwidth_gbs,
                   meter ? "" : " (NVML n/a: no energy)");
    }
    if (!json) {
        printf("| %-24s | %11s | %-7s | %-8s | %23s | %6s | %6s | %8s |\n", "model", "params", "backend", "test", "t/s", "W", "tok/J",
               "roofline");
        printf("| %.24s | %.11s | %.7s | %.8s | %.23s | %.6s | %.6s | %.8s |\n", "------------------------", "-----------", "-------",
               "--------", "-----------------------", "------", "------", "--------");
    }
    uint64_t rng = seed ? seed : 1;
    char test[32];
    for (int k = 0; k < n_pp; k++) {
        if (run_pp(s, toks, pp[k], in->vocab_size, &rng) < 0) goto bench_fail; /* warm-up */
        for (int r = 0; r < reps; r++)
            if ((tps[r] = run_pp(s, toks, pp[k], in->vocab_size, &rng)) < 0) goto bench_fail;
        snprintf(test, sizeof test, "pp%d", pp[k]);
        const energy en = measure_energy(meter, run_pp, s, toks, pp[k], in->vocab_size, &rng);
        print_row(json, model_name, in, backend, test, summarize(tps, reps), reps, en, -1);
    }
    if (n_gen > 0) {
        if (run_tg(s, toks, n_gen, in->vocab_size, &rng) < 0) goto bench_fail;
        for (int r = 0; r < reps; r++)
            if ((tps[r] = run_tg(s, toks, n_gen, in->vocab_size, &rng)) < 0) goto bench_fail;
        snprintf(test, sizeof test, "tg%d", n_gen);
        const stats tg = summarize(tps, reps);
        double roofline = -1;
        if (gpu && gi.mem_bandwidth_gbs > 0) {
            double bytes = 0; /* the mean over the positions the test decodes at */
            for (int i = 0; i < n_gen; i++) bytes += md_model_decode_bytes(model, i);
            roofline = bytes / n_gen * tg.mean / (gi.mem_bandwidth_gbs * 1e9);
        }
        const energy en = measure_energy(meter, run_tg, s, toks, n_gen, in->vocab_size, &rng);
        print_row(json, model_name, in, backend, test, tg, reps, en, roofline);
    }
    free(tps);
    rc = 0;
    goto done;
bench_fail:
    free(tps);
    cli_fail("benchmark run", MD_ERR_DEVICE);
done:
    md_energy_meter_free(meter);
    free(toks);
    md_session_free(s);
    md_model_free(model);
    return rc;
}
