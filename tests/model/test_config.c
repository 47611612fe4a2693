/*
 * test_config.c — config.json is read as transformers 5.x reads it
 * (Qwen3_5TextConfig / Qwen3_5Config): fields flat or under text_config,
 * HF's defaults for absent fields (head_dim 256, partial_rotary_factor 0.25,
 * rope_theta 10000, layer_types from full_attention_interval), rope fields in
 * rope_parameters winning over legacy top-level ones, the wrapper's top-level
 * tie_word_embeddings governing, eos ids from config.json and
 * generation_config.json. End to end: the sharded HF fixture with head_dim
 * removed from its config.json still matches transformers (which then uses
 * its default, 256).
 * Run: ctest -R test_config (label cpu).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/config.h"
#include "test_util.h"

/* Writes <tmp>/<name>/config.json and parses it. */
static md_status load(const char *name, const char *json, md_config *cfg) {
    char dir[4096], path[8192];
    snprintf(dir, sizeof dir, "%s/%s", md_test_tmp(), name);
    snprintf(path, sizeof path, "mkdir -p '%s'", dir);
    md_test_run(path, NULL, 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(md_test_write_file(path, json, strlen(json)));
    md_status st = md_config_load(dir, cfg);
    if (st != MD_OK) fprintf(stderr, "%s: %s\n", name, md_last_error());
    return st;
}

#define FLAT_DIMS                                                                                                    \
    "\"vocab_size\": 100, \"hidden_size\": 64, \"intermediate_size\": 96, \"num_hidden_layers\": 4, "               \
    "\"num_attention_heads\": 4, \"num_key_value_heads\": 2"

static void defaults(void) {
    md_config c;
    /* everything optional left out: transformers' Qwen3_5TextConfig defaults */
    if (load("defaults", "{\"architectures\": [\"Qwen3_5ForCausalLM\"], " FLAT_DIMS "}", &c) != MD_OK) {
        CHECK(false);
        return;
    }
    CHECK_MSG(c.head_dim == 256, "absent head_dim: %d (transformers' default is 256)", c.head_dim);
    CHECK(c.rope_dim == 64);                /* int(256 x 0.25) */
    CHECK(c.rope_theta == 10000.0f);
    CHECK(c.lin_n_k_heads == 16 && c.lin_n_v_heads == 32 && c.lin_k_dim == 128 && c.lin_v_dim == 128);
    CHECK(c.conv_kernel == 4 && c.max_pos == 32768 && c.rms_eps == 1e-6f);
    CHECK(!c.tied && !c.wrapper);
    CHECK(!c.layer_full[0] && !c.layer_full[1] && !c.layer_full[2] && c.layer_full[3]); /* every 4th */
    md_config_free(&c);

    if (load("interval", "{\"architectures\": [\"Qwen3_5ForCausalLM\"], " FLAT_DIMS ", \"full_attention_interval\": 2, "
                         "\"head_dim\": 16}",
             &c) == MD_OK) {
        CHECK(!c.layer_full[0] && c.layer_full[1] && !c.layer_full[2] && c.layer_full[3]);
        CHECK(c.head_dim == 16 && c.rope_dim == 4);
        md_config_free(&c);
    } else {
        CHECK(false);
    }
    /* model_type stands in for a missing architectures list */
    if (load("model-type", "{\"model_type\": \"qwen3_5_text\", " FLAT_DIMS ", \"head_dim\": 16}", &c) == MD_OK) {
        CHECK(strcmp(c.architecture, "qwen3_5_text") == 0);
        md_config_free(&c);
    } else {
        CHECK(false);
    }
}

static void rope_fields(void) {
    md_config c;
    /* older files: top-level rope_theta / partial_rotary_factor */
    if (load("rope-legacy", "{\"architectures\": [\"Qwen3_5ForCausalLM\"], " FLAT_DIMS ", \"head_dim\": 32, "
                            "\"rope_theta\": 1000000, \"partial_rotary_factor\": 0.5}",
             &c) == MD_OK) {
        CHECK(c.rope_theta == 1e6f && c.rope_dim == 16);
        md_config_free(&c);
    } else {
        CHECK(false);
    }
    /* both: rope_parameters wins (transformers' setdefault keeps its values) */
    if (load("rope-both", "{\"architectures\": [\"Qwen3_5ForCausalLM\"], " FLAT_DIMS ", \"head_dim\": 32, "
                          "\"rope_theta\": 1000000, \"partial_rotary_factor\": 0.5, "
                          "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 5000, "
                          "\"partial_rotary_factor\": 0.25}}",
             &c) == MD_OK) {
        CHECK(c.rope_theta == 5000.0f && c.rope_dim == 8);
        md_config_free(&c);
    } else {
        CHECK(false);
    }
}

static void wrapper(void) {
    md_config c;
    /* release layout: fields under text_config, the top-level tie flag governs, eos ids merged */
    const char *json = "{\"architectures\": [\"Qwen3_5ForConditionalGeneration\"], \"tie_word_embeddings\": true, "
                       "\"eos_token_id\": 7, \"hidden_size\": 999, "
                       "\"text_config\": {" FLAT_DIMS ", \"head_dim\": 16, \"tie_word_embeddings\": true, "
                       "\"eos_token_id\": [5, 6]}}";
    if (load("wrapper", json, &c) == MD_OK) {
        CHECK(c.wrapper && c.tied && c.hidden_size == 64); /* the top-level hidden_size is not the text model's */
        CHECK(c.n_eos == 3 && c.eos_ids[0] == 5 && c.eos_ids[1] == 6 && c.eos_ids[2] == 7);
        md_config_free(&c);
    } else {
        CHECK(false);
    }
    /* the wrapper's top-level flag is false by default, as in transformers' Qwen3_5Config */
    json = "{\"architectures\": [\"Qwen3_5ForConditionalGeneration\"], "
           "\"text_config\": {" FLAT_DIMS ", \"head_dim\": 16}}";
    if (load("wrapper-untied", json, &c) == MD_OK) {
        CHECK(!c.tied);
        md_config_free(&c);
    } else {
        CHECK(false);
    }
    /* generation_config.json adds its eos ids */
    char path[8192];
    snprintf(path, sizeof path, "mkdir -p '%s/wrapper-gen'", md_test_tmp());
    md_test_run(path, NULL, 0);
    snprintf(path, sizeof path, "%s/wrapper-gen/generation_config.json", md_test_tmp());
    CHECK(md_test_write_file(path, "{\"eos_token_id\": [6, 9]}", 24));
    json = "{\"architectures\": [\"Qwen3_5ForConditionalGeneration\"], "
           "\"text_config\": {" FLAT_DIMS ", \"head_dim\": 16, \"eos_token_id\": 5}}";
    if (load("wrapper-gen", json, &c) == MD_OK) {
        CHECK(c.n_eos == 3 && c.eos_ids[0] == 5 && c.eos_ids[1] == 6 && c.eos_ids[2] == 9);
        md_config_free(&c);
    } else {
        CHECK(false);
    }
}

/* The sharded HF fixture (head_dim 256, hidden 128, 8 heads) without head_dim
 * in config.json: transformers uses 256, hidden / heads would be 16. */
static void head_dim_default_end_to_end(void) {
    char src[4096], dir[4096], path[8192], from[8192];
    snprintf(src, sizeof src, "%s/hf/sharded-0.8b-heads", md_test_fixtures());
    snprintf(dir, sizeof dir, "%s/no-head-dim", md_test_tmp());
    snprintf(path, sizeof path, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    md_test_run(path, NULL, 0);
    void *text = NULL;
    snprintf(path, sizeof path, "%s/config.json", src);
    if (md_test_read_file(path, &text) < 0) {
        CHECK_MSG(false, "no fixture at %s", src);
        return;
    }
    cJSON *cfg = cJSON_Parse(text);
    free(text);
    cJSON *tc = cJSON_GetObjectItemCaseSensitive(cfg, "text_config");
    CHECK(cJSON_GetObjectItemCaseSensitive(tc, "head_dim")->valueint == 256);
    cJSON_DeleteItemFromObjectCaseSensitive(tc, "head_dim");
    char *out = cJSON_Print(cfg);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(md_test_write_file(path, out, strlen(out)));
    free(out);
    cJSON_Delete(cfg);
    static const char *const files[] = {"model.safetensors.index.json", "model-00001-of-00003.safetensors",
                                        "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"};
    for (int i = 0; i < 4; i++) {
        snprintf(from, sizeof from, "%s/%s", src, files[i]);
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        CHECK(symlink(from, path) == 0);
    }

    /* the last rows of the fixture's token sequence vs transformers' logits */
    snprintf(path, sizeof path, "%s/meta.json", src);
    md_test_read_file(path, &text);
    cJSON *meta = cJSON_Parse(text);
    free(text);
    const int T = cJSON_GetObjectItemCaseSensitive(meta, "T")->valueint;
    const int V = cJSON_GetObjectItemCaseSensitive(meta, "V")->valueint;
    int32_t *tok = malloc((size_t)T * sizeof *tok);
    for (int i = 0; i < T; i++) tok[i] = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(meta, "tokens"), i)->valueint;
    cJSON_Delete(meta);
    void *ref = NULL;
    snprintf(path, sizeof path, "%s/logits_prefill.f32", src);
    CHECK(md_test_read_file(path, &ref) == (long)T * V * 4);

    md_model_t *m = NULL;
    md_session_t *s = NULL;
    CHECK_OK(md_model_load(dir, &m));
    md_session_params p = md_session_default_params();
    p.backend = MD_BACKEND_CPU;
    if (m) CHECK_OK(md_session_init(m, &p, &s));
    float *lg = calloc((size_t)4 * V, sizeof *lg);
    if (s && ref) {
        CHECK_OK(md_session_prefill(s, tok, T, lg, 4));
        md_logits_cmp c = md_compare_logits(lg, (const float *)ref + (size_t)(T - 4) * V, 4, V, 0.001);
        CHECK_MSG(c.rel_l2 <= 1e-4 && c.argmax_mismatch == 0, "no head_dim: rel L2 %.3g vs transformers", c.rel_l2);
    }
    free(lg);
    free(ref);
    free(tok);
    md_session_free(s);
    md_model_free(m);
}

int main(void) {
    defaults();
    rope_fields();
    wrapper();
    head_dim_default_end_to_end();
    return md_test_finish("test_config");
}
