/*
 * sample.c — picking the next token from logits, with the semantics of HF
 * `generate` (generation_config.json is HF's, so its numbers mean what they
 * mean there). One sampling step, in this order:
 *
 *   1. penalties, over the distinct tokens of the history window (the last
 *      penalty_last_n accepted tokens; -1 = all, which is HF's behaviour):
 *      a. repetition (HF's RepetitionPenaltyLogitsProcessor): a logit < 0 is
 *         multiplied by repeat_penalty, any other divided by it;
 *      b. presence (OpenAI / vLLM style, not in HF): presence_penalty is
 *         subtracted once from the logit of each token in the window;
 *   2. temperature 0: the argmax of the penalised logits, ties to the lowest
 *      id, and no random draw is consumed. Otherwise, continuing:
 *   3. temperature: logits / temperature;
 *   4. top-k (k > 0): tokens below the k-th largest logit are removed (ties
 *      with it stay, as in HF's TopKLogitsWarper);
 *   5. top-p (< 1): with p = softmax of the remaining logits, tokens sorted by
 *      p descending (ties: lower id first); a token stays while the mass of
 *      the tokens before it is < top_p, so at least one stays (HF's
 *      TopPLogitsWarper);
 *   6. min-p (> 0): tokens with p < min_p * max p are removed (HF's
 *      MinPLogitsWarper; renormalisation after steps 4-5 does not change it);
 *   7. one draw u in [0, 1) (md_sampler_next_uniform): walking the remaining
 *      tokens in increasing id order, the first whose running sum of
 *      exp(logit - max) exceeds u times the total is the token.
 * Softmax sums are in double. The random stream is xoshiro256** seeded from
 * the seed by splitmix64, so a seed gives the same tokens on every machine.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/mapped_file.h"
#include "common/status.h"
#include "sample.h"
#include "session.h"

typedef struct cand {
    float l;     /* logit after temperature */
    int32_t id;
    double p;    /* probability among the candidates */
} cand;

struct md_sampler {
    md_sampler_params p;
    int vocab;
    uint64_t rng[4];
    int32_t *hist;      /* accepted tokens, the window at its end */
    size_t n_hist, cap_hist;
    uint32_t *stamp;    /* [vocab] marks tokens already penalised this step */
    uint32_t cur_stamp;
    cand *c;            /* [vocab] candidates */
    float *logits;      /* [vocab] host logits for md_session_decode_sample */
};

md_sampler_params md_sampler_default_params(void) {
    md_sampler_params p = {.temperature = 0.0f, .top_k = 50, .top_p = 1.0f, .min_p = 0.0f, .repeat_penalty = 1.0f,
                           .presence_penalty = 0.0f, .penalty_last_n = -1, .seed = 0};
    return p;
}

md_status md_sampler_params_from_model(const char *model_dir, md_sampler_params *p) {
    *p = md_sampler_default_params();
    if (!model_dir) return md_fail(MD_ERR_INVALID_ARG, "md_sampler_params_from_model: no directory");
    char path[4096];
    snprintf(path, sizeof path, "%s/generation_config.json", model_dir);
    if (!md_file_exists(path)) return MD_OK;
    cJSON *root = NULL;
    md_status st = md_json_parse_file(path, &root);
    if (st != MD_OK) return st;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return md_fail(MD_ERR_CONFIG, "%s: top level must be an object", path);
    }
    bool do_sample = false;
    double temp, top_p, min_p, rep, pres;
    int64_t top_k;
    if ((st = md_json_bool(root, "do_sample", false, &do_sample, NULL, path)) != MD_OK ||
        (st = md_json_num(root, "temperature", 1.0, &temp, NULL, path)) != MD_OK ||
        (st = md_json_int(root, "top_k", 50, &top_k, NULL, path)) != MD_OK ||
        (st = md_json_num(root, "top_p", 1.0, &top_p, NULL, path)) != MD_OK ||
        (st = md_json_num(root, "min_p", 0.0, &min_p, NULL, path)) != MD_OK ||
        (st = md_json_num(root, "repetition_penalty", 1.0, &rep, NULL, path)) != MD_OK ||
        (st = md_json_num(root, "presence_penalty", 0.0, &pres, NULL, path)) != MD_OK) {
        cJSON_Delete(root);
        return st;
    }
    cJSON_Delete(root);
    if (top_k < 0 || top_k > INT32_MAX) return md_fail(MD_ERR_CONFIG, "%s: field 'top_k' must be >= 0", path);
    p->temperature = do_sample ? (float)temp : 0.0f;
    p->top_k = (int)top_k;
    p->top_p = (float)top_p;
    p->min_p = (float)min_p;
    p->repeat_penalty = (float)rep;
    p->presence_penalty = (float)pres;
    return MD_OK;
}

static md_status check_params(const md_sampler_params *p) {
    if (!(p->temperature >= 0.0f) || !isfinite(p->temperature))
        return md_fail(MD_ERR_INVALID_ARG, "temperature must be >= 0 (got %g)", (double)p->temperature);
    if (p->top_k < 0) return md_fail(MD_ERR_INVALID_ARG, "top_k must be >= 0 (got %d)", p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return md_fail(MD_ERR_INVALID_ARG, "top_p must be in (0, 1] (got %g)", (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return md_fail(MD_ERR_INVALID_ARG, "min_p must be in [0, 1] (got %g)", (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty))
        return md_fail(MD_ERR_INVALID_ARG, "repeat_penalty must be > 0 (got %g)", (double)p->repeat_penalty);
    if (!isfinite(p->presence_penalty))
        return md_fail(MD_ERR_INVALID_ARG, "presence_penalty must be finite (got %g)", (double)p->presence_penalty);
    if (p->penalty_last_n < -1)
        return md_fail(MD_ERR_INVALID_ARG, "penalty_last_n must be >= -1 (got %d)", p->penalty_last_n);
    return MD_OK;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** */
static uint64_t next_u64(uint64_t s[4]) {
    const uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

void md_sampler_reset(md_sampler_t *s) {
    if (!s) return;
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    s->n_hist = 0;
}

void md_sampler_clear_history(md_sampler_t *s) {
    if (s) s->n_hist = 0;
}

md_status md_sampler_init(const md_sampler_params *p, int vocab, md_sampler_t **out) {
    *out = NULL;
    md_sampler_params q = p ? *p : md_sampler_default_params();
    md_status st = check_params(&q);
    if (st != MD_OK) return st;
    if (vocab <= 0) return md_fail(MD_ERR_INVALID_ARG, "sampler: vocabulary size must be positive (got %d)", vocab);
    md_sampler_t *s = calloc(1, sizeof *s);
    if (!s) return md_fail(MD_ERR_OUT_OF_MEMORY, "sampler: out of memory");
    s->p = q;
    s->vocab = vocab;
    s->stamp = calloc((size_t)vocab, sizeof *s->stamp);
    s->c = malloc((size_t)vocab * sizeof *s->c);
    if (!s->stamp || !s->c) {
        md_sampler_free(s);
        return md_fail(MD_ERR_OUT_OF_MEMORY, "sampler: out of memory");
    }
    md_sampler_reset(s);
    *out = s;
    return MD_OK;
}

void md_sampler_free(md_sampler_t *s) {
    if (!s) return;
    free(s->hist);
    free(s->stamp);
    free(s->c);
    free(s->logits);
    free(s);
}

void md_sampler_accept(md_sampler_t *s, int32_t token) {
    if (!s || s->p.penalty_last_n == 0) return;
    const size_t window = s->p.penalty_last_n > 0 ? (size_t)s->p.penalty_last_n : 0;
    if (window && s->n_hist >= 2 * window) { /* keep the array bounded: slide the window to the front */
        memmove(s->hist, s->hist + s->n_hist - window, window * sizeof *s->hist);
        s->n_hist = window;
    }
    if (s->n_hist == s->cap_hist) {
        size_t cap = s->cap_hist ? s->cap_hist * 2 : 256;
        int32_t *h = realloc(s->hist, cap * sizeof *h);
        if (!h) return; /* the penalties then see a shorter history; nothing else breaks */
        s->hist = h;
        s->cap_hist = cap;
    }
    s->hist[s->n_hist++] = token;
}

const md_sampler_params *md_sampler_get_params(const md_sampler_t *s) { return &s->p; }
int md_sampler_vocab(const md_sampler_t *s) { return s->vocab; }

const int32_t *md_sampler_history(const md_sampler_t *s, int *n) {
    size_t k = s->n_hist;
    if (s->p.penalty_last_n == 0) k = 0;
    else if (s->p.penalty_last_n > 0 && k > (size_t)s->p.penalty_last_n) k = (size_t)s->p.penalty_last_n;
    *n = (int)k;
    return s->hist ? s->hist + (s->n_hist - k) : NULL;
}

bool md_sampler_needs_logits(const md_sampler_t *s) {
    const bool penalties = s->p.penalty_last_n != 0 && (s->p.repeat_penalty != 1.0f || s->p.presence_penalty != 0.0f);
    return s->p.temperature > 0.0f || penalties;
}

float md_sampler_next_uniform(md_sampler_t *s) { return (float)(next_u64(s->rng) >> 40) * 0x1.0p-24f; }

static void apply_penalties(md_sampler_t *s, float *logits) {
    const float rp = s->p.repeat_penalty, pp = s->p.presence_penalty;
    if (rp == 1.0f && pp == 0.0f) return;
    int n;
    const int32_t *h = md_sampler_history(s, &n);
    if (++s->cur_stamp == 0) { /* wrapped: old marks could collide */
        memset(s->stamp, 0, (size_t)s->vocab * sizeof *s->stamp);
        s->cur_stamp = 1;
    }
    for (int i = 0; i < n; i++) {
        const int32_t t = h[i];
        if (t < 0 || t >= s->vocab || s->stamp[t] == s->cur_stamp) continue;
        s->stamp[t] = s->cur_stamp;
        float l = logits[t];
        if (rp != 1.0f) l = l < 0.0f ? l * rp : l / rp;
        logits[t] = l - pp;
    }
}

static int32_t argmax(const float *l, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return best;
}

/* Order: higher logit first, then lower id. */
static bool better(const cand *a, const cand *b) { return a->l > b->l || (a->l == b->l && a->id < b->id); }

static void sift_down_worst(cand *h, int n, int i) { /* min-heap by `better`: the worst on top */
    for (;;) {
        int w = i, a = 2 * i + 1, b = a + 1;
        if (a < n && better(&h[w], &h[a])) w = a;
        if (b < n && better(&h[w], &h[b])) w = b;
        if (w == i) return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* The k-th best logit of c[0..n) (1 <= k < n), by a heap of the best k. */
static float kth_logit(const cand *c, int n, int k, cand *heap) {
    memcpy(heap, c, (size_t)k * sizeof *heap);
    for (int i = k / 2 - 1; i >= 0; i--) sift_down_worst(heap, k, i);
    for (int i = k; i < n; i++)
        if (better(&c[i], &heap[0])) {
            heap[0] = c[i];
            sift_down_worst(heap, k, 0);
        }
    return heap[0].l;
}

static int by_prob_desc(const void *x, const void *y) {
    const cand *a = x, *b = y;
    if (a->p != b->p) return a->p > b->p ? -1 : 1;
    return a->id < b->id ? -1 : (a->id > b->id);
}

static int by_id(const void *x, const void *y) {
    const cand *a = x, *b = y;
    return a->id < b->id ? -1 : (a->id > b->id);
}

static void softmax(cand *c, int n) {
    float mx = c[0].l;
    for (int i = 1; i < n; i++) mx = c[i].l > mx ? c[i].l : mx;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (c[i].p = exp((double)c[i].l - mx));
    for (int i = 0; i < n; i++) c[i].p /= sum;
}

int32_t md_sampler_sample_with(md_sampler_t *s, float *logits, float u) {
    apply_penalties(s, logits);
    const md_sampler_params *p = &s->p;
    if (p->temperature <= 0.0f) return argmax(logits, s->vocab);

    cand *c = s->c;
    int n = 0;
    for (int i = 0; i < s->vocab; i++)
        if (logits[i] > -INFINITY) c[n++] = (cand){.l = logits[i] / p->temperature, .id = i};
    if (n == 0) return argmax(logits, s->vocab);

    if (p->top_k > 0 && p->top_k < n) {
        cand *heap = malloc((size_t)p->top_k * sizeof *heap);
        if (heap) { /* without memory for the heap top-k is skipped rather than failing the step */
            const float th = kth_logit(c, n, p->top_k, heap);
            free(heap);
            int k = 0;
            for (int i = 0; i < n; i++)
                if (c[i].l >= th) c[k++] = c[i];
            n = k;
        }
    }
    softmax(c, n);
    if (p->top_p < 1.0f) {
        qsort(c, (size_t)n, sizeof *c, by_prob_desc);
        double before = 0;
        int k = 0;
        while (k < n && (k == 0 || before < (double)p->top_p)) before += c[k++].p;
        n = k;
        qsort(c, (size_t)n, sizeof *c, by_id);
    }
    if (p->min_p > 0.0f) {
        double pmax = 0;
        for (int i = 0; i < n; i++) pmax = c[i].p > pmax ? c[i].p : pmax;
        const double th = (double)p->min_p * pmax;
        int k = 0;
        for (int i = 0; i < n; i++)
            if (c[i].p >= th) c[k++] = c[i];
        n = k;
    }
    /* candidates are in increasing id order here (collected so, filtered in place) */
    float mx = c[0].l;
    for (int i = 1; i < n; i++) mx = c[i].l > mx ? c[i].l : mx;
    double total = 0;
    for (int i = 0; i < n; i++) total += (c[i].p = exp((double)c[i].l - mx));
    const double target = (double)u * total;
    double run = 0;
    for (int i = 0; i < n; i++) {
        run += c[i].p;
        if (run > target) return c[i].id;
    }
    return c[n - 1].id;
}

int32_t md_sampler_sample(md_sampler_t *s, float *logits) {
    const float u = s->p.temperature > 0.0f ? md_sampler_next_uniform(s) : 0.0f;
    return md_sampler_sample_with(s, logits, u);
}

md_status md_session_decode_sample(md_session_t *s, int32_t token, md_sampler_t *smp, int32_t *next) {
    if (!s || !smp || !next) return md_fail(MD_ERR_INVALID_ARG, "md_session_decode_sample: bad arguments");
    if (!md_sampler_needs_logits(smp)) return md_session_decode_argmax(s, token, next);
    const int vocab = s->model->cfg.vocab_size;
    if (vocab != smp->vocab)
        return md_fail(MD_ERR_INVALID_ARG, "sampler vocabulary %d differs from the model's %d", smp->vocab, vocab);
    if (s->ops->decode_sample) { /* a backend that samples where its logits are (the GPU) */
        int n_hist;
        const int32_t *hist = md_sampler_history(smp, &n_hist);
        const float u = smp->p.temperature > 0.0f ? md_sampler_next_uniform(smp) : 0.0f;
        return md_session_decode_sampled(s, token, &smp->p, hist, n_hist, u, next);
    }
    if (!smp->logits && !(smp->logits = malloc((size_t)vocab * sizeof *smp->logits)))
        return md_fail(MD_ERR_OUT_OF_MEMORY, "sampler: out of memory");
    md_status st = md_session_decode(s, token, smp->logits);
    if (st != MD_OK) return st;
    *next = md_sampler_sample(smp, smp->logits);
    return MD_OK;
}
