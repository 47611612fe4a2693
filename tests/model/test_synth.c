/*
 * test_synth.c — synthetic checkpoints (md_synth_write, `megadelta synth`):
 * the `tiny` preset loads; the files are in the release layout
 * (config.json with text_config, model.language_model.* names, the mtp.*
 * block at its real shapes, all BF16, a tokenizer.json); every tensor kind
 * holds non-trivial values; a seed gives byte-identical files and different
 * seeds differ; the standard deviation of every logits row is >= 1.
 * Run: ctest -R test_synth (label cpu).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "model/checkpoint.h"
#include "model/synth.h"
#include "test_util.h"

static void synth(const char *name, uint64_t seed, char *dir, size_t n) {
    snprintf(dir, n, "%s/%s", md_test_tmp(), name);
    CHECK_OK(md_synth_write("tiny", dir, seed, NULL, NULL));
}

static cJSON *read_json(const char *dir, const char *file) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    void *text = NULL;
    if (md_test_read_file(path, &text) < 0) return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

static bool same_file(const char *a, const char *b) {
    void *x = NULL, *y = NULL;
    long nx = md_test_read_file(a, &x), ny = md_test_read_file(b, &y);
    bool same = nx > 0 && nx == ny && memcmp(x, y, (size_t)nx) == 0;
    free(x);
    free(y);
    return same;
}

static void check_config(const char *dir) {
    cJSON *c = read_json(dir, "config.json");
    CHECK_MSG(c != NULL, "%s/config.json is not JSON", dir);
    const cJSON *arch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "architectures"), 0);
    CHECK(cJSON_IsString(arch) && strcmp(arch->valuestring, "Qwen3_5ForConditionalGeneration") == 0);
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(c, "text_config");
    CHECK(cJSON_IsObject(tc));
    CHECK(cJSON_GetObjectItemCaseSensitive(tc, "hidden_size") != NULL);
    CHECK(cJSON_GetObjectItemCaseSensitive(c, "hidden_size") == NULL); /* fields under text_config only */
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "tie_word_embeddings")));
    cJSON_Delete(c);

    cJSON *t = read_json(dir, "tokenizer.json");
    CHECK_MSG(t != NULL, "%s/tokenizer.json is not JSON", dir);
    bool im_start = false;
    const cJSON *tok;
    cJSON_ArrayForEach(tok, cJSON_GetObjectItemCaseSensitive(t, "added_tokens")) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(tok, "content");
        im_start |= cJSON_IsString(content) && strcmp(content->valuestring, "<|im_start|>") == 0;
    }
    CHECK_MSG(im_start, "tokenizer.json has no <|im_start|>");
    cJSON_Delete(t);
}

/* mean and standard deviation of a BF16 tensor */
static void stats(const md_tensor *t, double *mean, double *sd) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        uint16_t h;
        memcpy(&h, t->data + 2 * i, 2);
        const double v = md_bf16_to_f32(h);
        s += v;
        s2 += v * v;
    }
    *mean = s / (double)t->numel;
    *sd = sqrt(fmax(s2 / (double)t->numel - *mean * *mean, 0.0));
}

static const md_tensor *expect(const md_checkpoint *ck, const char *name, int ndim, int64_t d0, int64_t d1) {
    const md_tensor *t = md_checkpoint_find(ck, name);
    CHECK_MSG(t != NULL, "tiny: no tensor '%s'", name);
    if (!t) return NULL;
    CHECK_MSG(t->ndim == ndim && t->shape[0] == d0 && (ndim < 2 || t->shape[1] == d1), "tiny: '%s' has the wrong shape",
              name);
    return t;
}

static void check_layout(const char *dir, const md_model_info *info) {
    md_checkpoint ck;
    CHECK_OK(md_checkpoint_open(dir, &ck));
    const int64_t H = info->hidden_size, I = info->intermediate_size, V = info->vocab_size;
    const char *P = "model.language_model.";
    char n[256];
    snprintf(n, sizeof n, "%sembed_tokens.weight", P);
    expect(&ck, n, 2, V, H);
    snprintf(n, sizeof n, "%snorm.weight", P);
    expect(&ck, n, 1, H, 0);
    CHECK(md_checkpoint_find(&ck, "model.embed_tokens.weight") == NULL);
    CHECK(md_checkpoint_find(&ck, "lm_head.weight") == NULL); /* tied */

    /* the multi-token-prediction block, present at its real shapes */
    expect(&ck, "mtp.fc.weight", 2, H, 2 * H);
    expect(&ck, "mtp.pre_fc_norm_embedding.weight", 1, H, 0);
    expect(&ck, "mtp.pre_fc_norm_hidden.weight", 1, H, 0);
    expect(&ck, "mtp.norm.weight", 1, H, 0);
    expect(&ck, "mtp.layers.0.input_layernorm.weight", 1, H, 0);
    expect(&ck, "mtp.layers.0.mlp.down_proj.weight", 2, H, I);
    CHECK(md_checkpoint_find(&ck, "mtp.layers.0.self_attn.q_proj.weight") != NULL);
    CHECK(md_checkpoint_find(&ck, "mtp.layers.0.self_attn.k_norm.weight") != NULL);

    int n_mtp = 0, n_other = 0;
    for (int i = 0; i < ck.n_tensors; i++) {
        const md_tensor *t = ck.index[i];
        CHECK_MSG(t->dtype == MD_DTYPE_BF16, "'%s' is %s, not BF16", t->name, t->dtype_name);
        if (!strncmp(t->name, "mtp.", 4)) n_mtp++;
        else if (strncmp(t->name, P, strlen(P))) n_other++;
    }
    CHECK_MSG(n_mtp >= 15, "only %d mtp.* tensors", n_mtp);
    CHECK_MSG(n_other == 0, "%d tensors outside model.language_model.* and mtp.*", n_other);

    /* every tensor kind non-trivial: a bug in any path must change the logits */
    static const struct {
        const char *suffix;
        double min_sd;
        bool not_one; /* mean must be away from 1 or the spread wide: not a plain ones() */
    } kinds[] = {
        {"input_layernorm.weight", 0.05, false},  {"post_attention_layernorm.weight", 0.05, false},
        {"self_attn.q_norm.weight", 0.05, false}, {"self_attn.k_norm.weight", 0.05, false},
        {"linear_attn.norm.weight", 0.05, true},  {"linear_attn.A_log", 0.1, false},
        {"linear_attn.dt_bias", 0.1, false},      {"linear_attn.conv1d.weight", 0.05, false},
        {"mlp.gate_proj.weight", 0.01, false},    {"linear_attn.in_proj_a.weight", 0.01, false},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        int found = 0;
        for (int i = 0; i < ck.n_tensors; i++) {
            const md_tensor *t = ck.index[i];
            const size_t ln = strlen(t->name), ls = strlen(kinds[k].suffix);
            if (ln < ls || strcmp(t->name + ln - ls, kinds[k].suffix) || strncmp(t->name, P, strlen(P))) continue;
            double mean, sd;
            stats(t, &mean, &sd);
            CHECK_MSG(sd >= kinds[k].min_sd, "'%s': values hardly vary (sd %.3g)", t->name, sd);
            found++;
        }
        CHECK_MSG(found > 0, "no tensor '*%s'", kinds[k].suffix);
    }
    md_checkpoint_close(&ck);
}

/* The logits of a few positions; every row's standard deviation >= 1. */
static float *logits(const char *dir, const int32_t *tok, int n) {
    md_model_t *m = NULL;
    md_session_t *s = NULL;
    CHECK_OK(md_model_load(dir, &m));
    if (!m) return NULL;
    md_session_params p = md_session_default_params();
    p.backend = MD_BACKEND_CPU;
    CHECK_OK(md_session_init(m, &p, &s));
    const int V = md_model_get_info(m)->vocab_size;
    float *out = calloc((size_t)n * V, sizeof *out);
    if (s) CHECK_OK(md_session_prefill(s, tok, n, out, n));
    for (int r = 0; r < n; r++) {
        double mean = 0, var = 0;
        for (int i = 0; i < V; i++) mean += out[(size_t)r * V + i];
        mean /= V;
        for (int i = 0; i < V; i++) var += (out[(size_t)r * V + i] - mean) * (out[(size_t)r * V + i] - mean);
        const double sd = sqrt(var / V);
        CHECK_MSG(sd >= 1.0, "%s: logits row %d has standard deviation %.3f (< 1)", dir, r, sd);
    }
    md_session_free(s);
    md_model_free(m);
    return out;
}

int main(void) {
    char a[4096], b[4096], c[4096], pa[8192], pb[8192];
    synth("seed1", 1, a, sizeof a);
    synth("seed1-again", 1, b, sizeof b);
    synth("seed2", 2, c, sizeof c);

    md_model_t *m = NULL;
    CHECK_OK(md_model_load(a, &m));
    if (m) {
        const md_model_info *info = md_model_get_info(m);
        CHECK(strcmp(info->architecture, "Qwen3_5ForConditionalGeneration") == 0);
        CHECK(info->tied_embeddings);
        CHECK(info->n_layers == info->n_linear_layers + info->n_full_layers && info->n_full_layers > 0 &&
              info->n_linear_layers > 0);
        check_config(a);
        check_layout(a, info);
    }

    /* deterministic for a seed, different across seeds */
    snprintf(pa, sizeof pa, "%s/model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/model.safetensors", b);
    CHECK_MSG(same_file(pa, pb), "seed 1 twice gave different weights");
    snprintf(pb, sizeof pb, "%s/config.json", b);
    snprintf(pa, sizeof pa, "%s/config.json", a);
    CHECK(same_file(pa, pb));
    snprintf(pa, sizeof pa, "%s/model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/model.safetensors", c);
    CHECK_MSG(!same_file(pa, pb), "seeds 1 and 2 gave the same weights");

    const int32_t tok[6] = {0, 17, 256, 600, 990, 1023};
    float *la = logits(a, tok, 6), *lc = logits(c, tok, 6);
    if (la && lc && m) {
        const int V = md_model_get_info(m)->vocab_size;
        md_logits_cmp d = md_compare_logits(lc, la, 6, V, 0.001);
        CHECK_MSG(d.rel_l2 > 0.3, "seeds 1 and 2 give nearly the same logits (rel diff %.3g)", d.rel_l2);
    }
    free(la);
    free(lc);
    md_model_free(m);

    /* the CLI writes the same files; a bad preset is one error line */
    char cmd[8192], log[4096], d[4096];
    snprintf(d, sizeof d, "%s/cli/nested/dirs", md_test_tmp()); /* missing parents are created */
    snprintf(cmd, sizeof cmd, "'%s' synth --preset tiny --out '%s' --seed 1", md_test_bin(), d);
    CHECK_MSG(md_test_run(cmd, log, sizeof log) == 0, "%s:\n%s", cmd, log);
    snprintf(pa, sizeof pa, "%s/model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/model.safetensors", d);
    CHECK_MSG(same_file(pa, pb), "`megadelta synth --seed 1` differs from md_synth_write(seed 1)");
    snprintf(cmd, sizeof cmd, "'%s' synth --preset no-such-preset --out '%s/x'", md_test_bin(), md_test_tmp());
    int rc = md_test_run(cmd, log, sizeof log), lines = 0;
    for (const char *q = log; *q; q++) lines += *q != '\n' && (q[1] == '\n' || q[1] == 0);
    CHECK_MSG(rc == 1 && strstr(log, "no-such-preset") && lines == 1,
              "a bad preset should be one error line naming it, got %d:\n%s", rc, log);
    /* a file where a directory should be is named */
    snprintf(pa, sizeof pa, "%s/model.safetensors/x", a);
    CHECK(md_synth_write("tiny", pa, 0, NULL, NULL) == MD_ERR_IO && strstr(md_last_error(), "model.safetensors"));
    return md_test_finish("test_synth");
}
