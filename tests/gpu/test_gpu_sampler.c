/*
 * test_gpu_sampler.c — the GPU sampling kernel picks the token sample.c picks.
 *
 * 1. Chosen logits: random trials over every sampling step (penalties,
 *    temperature, top-k, top-p, min-p, the draw) with ties, -inf and NaN
 *    logits; each trial runs sample.c's step and the kernel on the same
 *    logits, history and uniform draw and must give the same id.
 * 2. End to end: two GPU sessions in lockstep, one sampling on the device
 *    (md_session_decode_sample), one copying the logits to the host and
 *    running md_sampler_sample; the same tokens at every step.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu_test_common.h"
#include "sample.h"
#include "session.h"

static double md_test_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_state = 0x1234567887654321ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double unif(void) { return (double)(rnd() >> 11) * 0x1.0p-53; }
static double gauss(void) {
    const double a = unif() + 1e-300, b = unif();
    return sqrt(-2.0 * log(a)) * cos(6.283185307179586 * b);
}

static md_sampler_params random_params(int trial) {
    md_sampler_params p = md_sampler_default_params();
    static const float temps[] = {0.0f, 0.3f, 0.7f, 1.0f, 1.5f};
    static const int ks[] = {0, 1, 2, 20, 50, 1000};
    static const float ps[] = {1.0f, 0.95f, 0.8f, 0.5f, 0.1f};
    static const float mps[] = {0.0f, 0.0f, 0.05f, 0.2f};
    p.temperature = temps[trial % 5];
    p.top_k = ks[rnd() % 6];
    p.top_p = ps[rnd() % 5];
    p.min_p = mps[rnd() % 4];
    if (rnd() % 3 == 0) {
        p.repeat_penalty = 1.3f;
        p.presence_penalty = (rnd() & 1) ? 0.5f : 0.0f;
        p.penalty_last_n = (rnd() & 1) ? 16 : -1;
    }
    return p;
}

/* Part 1: chosen logits. */
static void chosen_logits(md_session_t *s, int V, int trials) {
    float *l = malloc((size_t)V * sizeof *l), *lc = malloc((size_t)V * sizeof *lc);
    int32_t hist[64];
    int mismatches = 0;
    for (int t = 0; t < trials; t++) {
        const int kind = (int)(rnd() % 4);
        for (int i = 0; i < V; i++) {
            double x = gauss() * (kind == 3 ? 8.0 : 2.0);
            if (kind == 1) x = floor(x * 2.0) / 2.0; /* many ties */
            l[i] = (float)x;
        }
        if (kind == 2) { /* removed tokens, a NaN, a tie at the top */
            for (int i = 0; i < V / 3; i++) l[rnd() % V] = -INFINITY;
            l[rnd() % V] = NAN;
            const int a = (int)(rnd() % V), b = (int)(rnd() % V);
            l[a] = l[b] = 40.0f;
        }
        md_sampler_params p = random_params(t);
        md_sampler_t *smp = NULL;
        CHECK_OK(md_sampler_init(&p, V, &smp));
        const int nh = (int)(rnd() % 40);
        for (int i = 0; i < nh; i++) {
            hist[i] = (int32_t)(rnd() % V);
            md_sampler_accept(smp, hist[i]);
        }
        int n_hist;
        const int32_t *h = md_sampler_history(smp, &n_hist);
        const float u = (float)(rnd() >> 40) * 0x1.0p-24f;
        memcpy(lc, l, (size_t)V * sizeof *l);
        const int32_t want = md_sampler_sample_with(smp, lc, u);
        int32_t got = -1;
        CHECK_OK(md_cuda_sample_host_logits(s, l, &p, h, n_hist, u, &got));
        if (got != want && mismatches++ < 5)
            fprintf(stderr, "trial %d (kind %d, T %.2f k %d p %.2f min_p %.2f rp %.2f pp %.2f hist %d u %.6f): cpu %d gpu %d\n", t, kind,
                    (double)p.temperature, p.top_k, (double)p.top_p, (double)p.min_p, (double)p.repeat_penalty,
                    (double)p.presence_penalty, n_hist, (double)u, want, got);
        md_sampler_free(smp);
    }
    fprintf(stderr, "chosen logits: %d trials, vocab %d, %d mismatches\n", trials, V, mismatches);
    CHECK_MSG(mismatches == 0, "%d of %d trials picked a different token on the GPU", mismatches, trials);
    free(l);
    free(lc);
}

/* Part 2: end to end, two sessions in lockstep. */
static void lockstep(md_model_t *m, int V, int steps, int top_k) {
    md_session_params pg = md_session_default_params();
    pg.backend = MD_BACKEND_GPU;
    pg.n_ctx = 3 * steps + 2;
    md_session_t *dev = NULL, *host = NULL;
    CHECK_OK(md_session_init(m, &pg, &dev));
    CHECK_OK(md_session_init(m, &pg, &host));
    if (!dev || !host) return;
    md_sampler_params p = md_sampler_default_params();
    p.temperature = 0.9f;
    p.top_k = top_k;
    p.top_p = 0.9f;
    p.min_p = 0.02f;
    p.repeat_penalty = 1.1f;
    p.seed = 7;
    md_sampler_t *sd = NULL, *sh = NULL;
    CHECK_OK(md_sampler_init(&p, V, &sd));
    CHECK_OK(md_sampler_init(&p, V, &sh));
    float *logits = malloc((size_t)V * sizeof *logits);
    int32_t td = 1 % V, th = 1 % V;
    int differ = 0;
    for (int t = 0; t < steps && sd && sh; t++) {
        int32_t nd = -1, nh = -1;
        CHECK_OK(md_session_decode_sample(dev, td, sd, &nd));
        CHECK_OK(md_session_decode(host, th, logits));
        nh = md_sampler_sample(sh, logits);
        if (nd != nh && differ++ == 0) fprintf(stderr, "step %d: device sampled %d, host %d\n", t, nd, nh);
        md_sampler_accept(sd, nd);
        md_sampler_accept(sh, nh);
        td = nd;
        th = nd; /* both continue from the device's choice */
    }
    fprintf(stderr, "lockstep: %d steps, %d differing\n", steps, differ);
    /* the cost of sampling on the device: decode + sample vs decode + argmax */
    double t_sample = 0, t_argmax = 0;
    for (int t = 0; t < steps && sd; t++) {
        int32_t nx;
        double t0 = md_test_now();
        CHECK_OK(md_session_decode_sample(dev, td, sd, &nx));
        t_sample += md_test_now() - t0;
        t0 = md_test_now();
        CHECK_OK(md_session_decode_argmax(dev, nx, &td));
        t_argmax += md_test_now() - t0;
    }
    fprintf(stderr, "per step (host clock, top_k %d): decode + GPU sampling %.1f us, decode + argmax %.1f us\n", p.top_k,
            1e6 * t_sample / steps, 1e6 * t_argmax / steps);
    CHECK_MSG(differ == 0, "device and host sampling differ in %d of %d steps", differ, steps);
    free(logits);
    md_sampler_free(sd);
    md_sampler_free(sh);
    md_session_free(dev);
    md_session_free(host);
}

int main(int argc, char **argv) {
    const char *preset = "tiny";
    int trials = 400, steps = 48, top_k = 40;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--preset")) preset = argv[i + 1];
        else if (!strcmp(argv[i], "--trials")) trials = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--top-k")) top_k = atoi(argv[i + 1]);
    }
    char buf[4096];
    const char *dir = gpu_test_preset_dir(preset, buf, sizeof buf);
    if (!dir) return 1;
    md_model_t *m = NULL;
    CHECK_OK(md_model_load(dir, &m));
    if (!m) return md_test_finish("test_gpu_sampler");
    const int V = md_model_get_info(m)->vocab_size;
    md_session_params pg = md_session_default_params();
    pg.backend = MD_BACKEND_GPU;
    pg.n_ctx = 8;
    md_session_t *s = NULL;
    CHECK_OK(md_session_init(m, &pg, &s));
    if (s) {
        chosen_logits(s, V, trials);
        md_session_free(s);
    }
    lockstep(m, V, steps, top_k);
    md_model_free(m);
    return md_test_finish("test_gpu_sampler");
}
