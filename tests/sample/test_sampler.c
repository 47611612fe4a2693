/*
 * test_sampler.c — each sampler's distribution, checked statistically:
 * 40000 draws per configuration are compared with the distribution computed
 * here independently from HF's definitions (TemperatureLogitsWarper,
 * TopKLogitsWarper, TopPLogitsWarper in its ascending-cumsum form,
 * MinPLogitsWarper, RepetitionPenaltyLogitsProcessor; presence penalty as in
 * vLLM): tokens outside the expected support must never appear, and the
 * chi-square statistic over the support must stay under the 1e-4 critical
 * value. Also: greedy (ties to the lowest id), determinism per seed, reset,
 * the uniform draw's mapping, the penalty window, parameter validation, and
 * generation_config.json defaults.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sample.h"
#include "test_util.h"

#define V 10
#define DRAWS 40000

static const float k_logits[V] = {2.0f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, 3.0f, 1.0f, -2.0f, 0.25f};

/* ------------------------------------------------------------ the reference */

typedef struct ref_cfg {
    float temperature;
    int top_k;
    float top_p, min_p, rep, presence;
    const int32_t *hist;
    int n_hist;
} ref_cfg;

/* Expected probabilities, written from HF's definitions (independent of sample.c). */
static void reference(const ref_cfg *c, double p[V]) {
    double l[V];
    bool keep[V];
    for (int i = 0; i < V; i++) l[i] = k_logits[i], keep[i] = true;
    bool seen[V] = {false};
    for (int i = 0; i < c->n_hist; i++) {
        const int t = c->hist[i];
        if (seen[t]) continue;
        seen[t] = true;
        if (c->rep != 1.0f) l[t] = l[t] < 0 ? l[t] * c->rep : l[t] / c->rep;
        l[t] -= c->presence;
    }
    for (int i = 0; i < V; i++) l[i] /= c->temperature;
    if (c->top_k > 0 && c->top_k < V) { /* remove scores < the k-th largest */
        double sorted[V];
        memcpy(sorted, l, sizeof sorted);
        for (int i = 0; i < V; i++)
            for (int j = i + 1; j < V; j++)
                if (sorted[j] > sorted[i]) {
                    double x = sorted[i];
                    sorted[i] = sorted[j];
                    sorted[j] = x;
                }
        for (int i = 0; i < V; i++)
            if (l[i] < sorted[c->top_k - 1]) keep[i] = false;
    }
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < V; i++)
        if (keep[i] && l[i] > mx) mx = l[i];
    for (int i = 0; i < V; i++) sum += p[i] = keep[i] ? exp(l[i] - mx) : 0;
    for (int i = 0; i < V; i++) p[i] /= sum;
    if (c->top_p < 1.0f) { /* ascending order, remove where cumsum <= 1 - top_p (ties: higher id first) */
        int idx[V];
        for (int i = 0; i < V; i++) idx[i] = i;
        for (int i = 0; i < V; i++)
            for (int j = i + 1; j < V; j++)
                if (p[idx[j]] < p[idx[i]] || (p[idx[j]] == p[idx[i]] && idx[j] > idx[i])) {
                    int x = idx[i];
                    idx[i] = idx[j];
                    idx[j] = x;
                }
        double cum = 0;
        for (int k = 0; k < V - 1; k++) { /* the top token always stays */
            cum += p[idx[k]];
            if (cum <= 1.0 - c->top_p) keep[idx[k]] = false;
        }
        sum = 0;
        for (int i = 0; i < V; i++) sum += p[i] = keep[i] ? p[i] : 0;
        for (int i = 0; i < V; i++) p[i] /= sum;
    }
    if (c->min_p > 0) {
        double top = 0;
        for (int i = 0; i < V; i++) top = p[i] > top ? p[i] : top;
        sum = 0;
        for (int i = 0; i < V; i++) sum += p[i] = p[i] < c->min_p * top ? 0 : p[i];
        for (int i = 0; i < V; i++) p[i] /= sum;
    }
}

/* Upper 1e-4 quantile of chi-square with df degrees of freedom (Wilson-Hilferty). */
static double chi2_crit(int df) {
    const double z = 3.719, a = 2.0 / (9.0 * df);
    return df * pow(1 - a + z * sqrt(a), 3);
}

static void check_distribution(const char *name, const ref_cfg *c, md_sampler_params sp) {
    double p[V];
    reference(c, p);
    sp.temperature = c->temperature;
    sp.top_k = c->top_k;
    sp.top_p = c->top_p;
    sp.min_p = c->min_p;
    sp.repeat_penalty = c->rep;
    sp.presence_penalty = c->presence;
    md_sampler_t *s = NULL;
    CHECK_OK(md_sampler_init(&sp, V, &s));
    if (!s) return;
    for (int i = 0; i < c->n_hist; i++) md_sampler_accept(s, c->hist[i]);
    int count[V] = {0};
    for (int d = 0; d < DRAWS; d++) {
        float l[V];
        memcpy(l, k_logits, sizeof l);
        int32_t t = md_sampler_sample(s, l);
        if (t >= 0 && t < V) count[t]++;
    }
    double chi2 = 0;
    int df = -1;
    for (int i = 0; i < V; i++) {
        if (p[i] == 0) {
            CHECK_MSG(count[i] == 0, "%s: token %d is outside the expected support but was drawn %d times", name, i,
                      count[i]);
            continue;
        }
        const double e = p[i] * DRAWS;
        chi2 += (count[i] - e) * (count[i] - e) / e;
        df++;
    }
    if (df > 0) CHECK_MSG(chi2 < chi2_crit(df), "%s: chi-square %.1f over %d df (critical %.1f)", name, chi2, df, chi2_crit(df));
    else CHECK_MSG(df == 0, "%s: empty support", name);
    md_sampler_free(s);
}

static void test_distributions(void) {
    md_sampler_params base = md_sampler_default_params();
    base.seed = 7;
    base.top_k = 0;
    const int32_t h1[] = {6, 4}, h2[] = {0, 0, 6}, h3[] = {9, 9, 2, 8};
    struct {
        const char *name;
        ref_cfg c;
    } cases[] = {
        {"temperature 1", {1.0f, 0, 1.0f, 0, 1.0f, 0, NULL, 0}},
        {"temperature 0.5", {0.5f, 0, 1.0f, 0, 1.0f, 0, NULL, 0}},
        {"temperature 2", {2.0f, 0, 1.0f, 0, 1.0f, 0, NULL, 0}},
        {"top-k 3 (a tie at the 3rd value keeps 4)", {1.0f, 3, 1.0f, 0, 1.0f, 0, NULL, 0}},
        {"top-k 1", {1.0f, 1, 1.0f, 0, 1.0f, 0, NULL, 0}},
        {"top-p 0.8", {1.0f, 0, 0.8f, 0, 1.0f, 0, NULL, 0}},
        {"top-p 0.5", {1.0f, 0, 0.5f, 0, 1.0f, 0, NULL, 0}},
        {"min-p 0.2", {1.0f, 0, 1.0f, 0.2f, 1.0f, 0, NULL, 0}},
        {"min-p 0.05 at temperature 2", {2.0f, 0, 1.0f, 0.05f, 1.0f, 0, NULL, 0}},
        {"all: temp 0.7, top-k 5, top-p 0.9, min-p 0.05", {0.7f, 5, 0.9f, 0.05f, 1.0f, 0, NULL, 0}},
        {"repetition penalty 1.5", {1.0f, 0, 1.0f, 0, 1.5f, 0, h1, 2}},
        {"presence penalty 1", {1.0f, 0, 1.0f, 0, 1.0f, 1.0f, h2, 3}},
        {"both penalties with top-p", {0.8f, 0, 0.95f, 0, 1.3f, 0.5f, h3, 4}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_distribution(cases[i].name, &cases[i].c, base);
}

static md_sampler_t *make(float temp, uint64_t seed) {
    md_sampler_params p = md_sampler_default_params();
    p.temperature = temp;
    p.seed = seed;
    md_sampler_t *s = NULL;
    CHECK_OK(md_sampler_init(&p, V, &s));
    return s;
}

static void test_greedy(void) {
    md_sampler_t *s = make(0.0f, 1);
    if (!s) return;
    float l[V];
    memcpy(l, k_logits, sizeof l);
    CHECK(md_sampler_sample(s, l) == 6);
    CHECK(!md_sampler_needs_logits(s));
    float tie[V] = {0, 5, 1, 5, 5, 0, 0, 0, 0, 0};
    CHECK(md_sampler_sample(s, tie) == 1); /* ties to the lowest id */
    md_sampler_free(s);
    /* greedy with a repetition penalty reads the logits: 3.0 / 3 = 1.0 < 2.0 */
    md_sampler_params p = md_sampler_default_params();
    p.repeat_penalty = 3.0f;
    CHECK_OK(md_sampler_init(&p, V, &s));
    if (!s) return;
    CHECK(md_sampler_needs_logits(s));
    md_sampler_accept(s, 6);
    memcpy(l, k_logits, sizeof l);
    CHECK(md_sampler_sample(s, l) == 0);
    md_sampler_free(s);
}

static void test_determinism(void) {
    int32_t a[200], b[200], c[200], d[200];
    md_sampler_t *s1 = make(1.0f, 42), *s2 = make(1.0f, 42), *s3 = make(1.0f, 43);
    if (!s1 || !s2 || !s3) return;
    for (int i = 0; i < 200; i++) {
        float l1[V], l2[V], l3[V];
        memcpy(l1, k_logits, sizeof l1), memcpy(l2, k_logits, sizeof l2), memcpy(l3, k_logits, sizeof l3);
        a[i] = md_sampler_sample(s1, l1);
        b[i] = md_sampler_sample(s2, l2);
        c[i] = md_sampler_sample(s3, l3);
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    md_sampler_reset(s1);
    for (int i = 0; i < 200; i++) {
        float l[V];
        memcpy(l, k_logits, sizeof l);
        d[i] = md_sampler_sample(s1, l);
    }
    CHECK_MSG(memcmp(a, d, sizeof a) == 0, "reset does not restart the random sequence");
    md_sampler_free(s1), md_sampler_free(s2), md_sampler_free(s3);
}

static void test_uniform_and_mapping(void) {
    md_sampler_t *s = make(1.0f, 9);
    if (!s) return;
    double mean = 0;
    bool in_range = true;
    for (int i = 0; i < 100000; i++) {
        float u = md_sampler_next_uniform(s);
        in_range &= u >= 0.0f && u < 1.0f;
        mean += u;
    }
    mean /= 100000;
    CHECK(in_range);
    CHECK_MSG(fabs(mean - 0.5) < 0.005, "uniform mean %f", mean);
    /* the draw walks the kept tokens in id order: u = 0 gives the lowest id, u -> 1 the highest */
    float l[V];
    memcpy(l, k_logits, sizeof l);
    CHECK(md_sampler_sample_with(s, l, 0.0f) == 0);
    memcpy(l, k_logits, sizeof l);
    CHECK(md_sampler_sample_with(s, l, 0.99999f) == 9);
    /* p(0) = softmax(l)[0]: u just below it picks 0, just above picks 1 */
    double z = 0;
    for (int i = 0; i < V; i++) z += exp(k_logits[i]);
    const double p0 = exp(k_logits[0]) / z;
    memcpy(l, k_logits, sizeof l);
    CHECK(md_sampler_sample_with(s, l, (float)(p0 - 1e-4)) == 0);
    memcpy(l, k_logits, sizeof l);
    CHECK(md_sampler_sample_with(s, l, (float)(p0 + 1e-4)) == 1);
    md_sampler_free(s);
}

static void test_window(void) {
    md_sampler_params p = md_sampler_default_params();
    p.penalty_last_n = 3;
    md_sampler_t *s = NULL;
    CHECK_OK(md_sampler_init(&p, V, &s));
    if (!s) return;
    for (int t = 0; t < 10; t++) md_sampler_accept(s, t);
    int n = 0;
    const int32_t *h = md_sampler_history(s, &n);
    CHECK(n == 3 && h && h[0] == 7 && h[1] == 8 && h[2] == 9);
    md_sampler_reset(s);
    md_sampler_history(s, &n);
    CHECK(n == 0);
    md_sampler_free(s);
    /* the penalty only reaches the window: history 6 then 0, window 1 -> only 0 is penalised */
    p = md_sampler_default_params();
    p.penalty_last_n = 1;
    p.repeat_penalty = 100.0f;
    CHECK_OK(md_sampler_init(&p, V, &s));
    if (!s) return;
    md_sampler_accept(s, 6);
    md_sampler_accept(s, 0);
    float l[V];
    memcpy(l, k_logits, sizeof l);
    CHECK(md_sampler_sample(s, l) == 6 && fabsf(l[0] - 0.02f) < 1e-6f && l[6] == 3.0f);
    md_sampler_free(s);
    /* penalty_last_n 0 turns the penalties off */
    p.penalty_last_n = 0;
    CHECK_OK(md_sampler_init(&p, V, &s));
    if (!s) return;
    CHECK(!md_sampler_needs_logits(s));
    md_sampler_accept(s, 6);
    memcpy(l, k_logits, sizeof l);
    CHECK(md_sampler_sample(s, l) == 6 && l[6] == 3.0f);
    md_sampler_free(s);
}

static void test_validation(void) {
    struct {
        const char *name;
        md_sampler_params p;
    } bad[6];
    for (int i = 0; i < 6; i++) bad[i].p = md_sampler_default_params();
    bad[0].name = "temperature", bad[0].p.temperature = -1.0f;
    bad[1].name = "top_p", bad[1].p.top_p = 0.0f;
    bad[2].name = "top_p", bad[2].p.top_p = 1.5f;
    bad[3].name = "min_p", bad[3].p.min_p = -0.1f;
    bad[4].name = "repeat_penalty", bad[4].p.repeat_penalty = 0.0f;
    bad[5].name = "penalty_last_n", bad[5].p.penalty_last_n = -2;
    for (int i = 0; i < 6; i++) {
        md_sampler_t *s = (md_sampler_t *)1;
        CHECK_MSG(md_sampler_init(&bad[i].p, V, &s) == MD_ERR_INVALID_ARG && s == NULL &&
                      strstr(md_last_error(), bad[i].name),
                  "bad %s accepted (message '%s')", bad[i].name, md_last_error());
    }
    md_sampler_t *s = (md_sampler_t *)1;
    CHECK(md_sampler_init(NULL, 0, &s) == MD_ERR_INVALID_ARG && s == NULL);
}

static void write_config(const char *dir, const char *json) {
    char path[4096];
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    md_test_write_file(path, json, strlen(json));
}

static void test_generation_config(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/genconf", md_test_tmp());
    mkdir(dir, 0755);
    char path[4200];
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    remove(path); /* left by an earlier run */
    md_sampler_params p;
    /* no file: HF's defaults, greedy */
    CHECK_OK(md_sampler_params_from_model(dir, &p));
    CHECK(p.temperature == 0.0f && p.top_k == 50 && p.top_p == 1.0f && p.repeat_penalty == 1.0f);
    write_config(dir, "{\"do_sample\": true, \"temperature\": 0.6, \"top_k\": 20, \"top_p\": 0.95, \"min_p\": 0.01, "
               "\"repetition_penalty\": 1.1, \"presence_penalty\": 1.5, \"eos_token_id\": [1, 2]}");
    CHECK_OK(md_sampler_params_from_model(dir, &p));
    CHECK(fabsf(p.temperature - 0.6f) < 1e-6f && p.top_k == 20 && fabsf(p.top_p - 0.95f) < 1e-6f &&
          fabsf(p.min_p - 0.01f) < 1e-6f && fabsf(p.repeat_penalty - 1.1f) < 1e-6f &&
          fabsf(p.presence_penalty - 1.5f) < 1e-6f);
    /* without do_sample HF decodes greedily whatever the temperature says */
    write_config(dir, "{\"temperature\": 0.7, \"top_k\": 5}");
    CHECK_OK(md_sampler_params_from_model(dir, &p));
    CHECK(p.temperature == 0.0f && p.top_k == 5);
    write_config(dir, "{\"do_sample\": true, \"top_p\": \"high\"}");
    CHECK(md_sampler_params_from_model(dir, &p) == MD_ERR_CONFIG && strstr(md_last_error(), "top_p") &&
          strstr(md_last_error(), "generation_config.json"));
    write_config(dir, "{not json");
    CHECK(md_sampler_params_from_model(dir, &p) != MD_OK);
}

int main(void) {
    test_distributions();
    test_greedy();
    test_determinism();
    test_uniform_and_mapping();
    test_window();
    test_validation();
    test_generation_config();
    return md_test_finish("test_sampler");
}
