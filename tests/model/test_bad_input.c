/*
 * test_bad_input.c — bad input gets one clear line naming the file, tensor or
 * field and the problem, never a crash. One case per kind of problem: missing
 * files (directory, config.json, model.safetensors, a shard the index names),
 * corrupt safetensors (header size past the end, data offsets out of range,
 * overlapping tensors, unknown dtype, byte size not matching the shape, a
 * header that is not JSON), tensors that do not fit the config (wrong shape,
 * missing, unsupported dtype, untied without lm_head.weight), bad configs
 * (missing or mistyped field, inconsistent dimensions, unsupported
 * architecture / rope_type / layer type), and bad session input (token id
 * >= vocab, more tokens than the context).
 *
 * Every case builds its directory in MD_TEST_TMP from a synthetic `tiny`
 * checkpoint (unchanged files are symlinked), then checks the md_status, that
 * the model handle stays NULL, and that md_last_error() is one line holding
 * the names it must. A few cases go through `megadelta logits` too: exit
 * status 1 and exactly one line "megadelta: error: ...".
 * Run: ctest -R test_bad_input (label cpu).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/synth.h"
#include "test_util.h"

static char g_base[4096];   /* the synthetic tiny checkpoint */
static cJSON *g_config;     /* its config.json */
static cJSON *g_header;     /* its safetensors header */
static uint8_t *g_file;     /* its model.safetensors */
static const uint8_t *g_data; /* the data area in g_file */
static size_t g_data_size;
static int g_vocab;

/* ---------------------------------------------------------------- building cases */

static const char *case_dir(const char *name) {
    static char dir[4096];
    char cmd[8400];
    snprintf(dir, sizeof dir, "%s/%s", md_test_tmp(), name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (md_test_run(cmd, NULL, 0) != 0) fprintf(stderr, "cannot make %s\n", dir);
    return dir;
}

static void link_base(const char *dir, const char *file, const char *as) {
    char from[8192], to[8192];
    snprintf(from, sizeof from, "%s/%s", g_base, file);
    snprintf(to, sizeof to, "%s/%s", dir, as);
    CHECK_MSG(symlink(from, to) == 0, "symlink %s", to);
}

static void put_text(const char *dir, const char *file, const char *text) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    CHECK(md_test_write_file(path, text, strlen(text)));
}

static void put_json(const char *dir, const char *file, const cJSON *j) {
    char *text = cJSON_Print(j);
    put_text(dir, file, text);
    free(text);
}

/* A safetensors file: u64 header length, the header (space-padded to 8), data. */
static void put_weights(const char *dir, const char *file, const cJSON *header, const uint8_t *data, size_t n) {
    char *h = cJSON_PrintUnformatted(header);
    const size_t hlen = strlen(h), padded = (hlen + 7) / 8 * 8;
    uint8_t *buf = malloc(8 + padded + n);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, h, hlen);
    memset(buf + 8 + hlen, ' ', padded - hlen);
    memcpy(buf + 8 + padded, data, n);
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    CHECK(md_test_write_file(path, buf, 8 + padded + n));
    free(buf);
    free(h);
}

/* A case with an edited config.json and the base weights. */
static const char *config_case(const char *name, const cJSON *config) {
    const char *dir = case_dir(name);
    put_json(dir, "config.json", config);
    link_base(dir, "model.safetensors", "model.safetensors");
    return dir;
}

/* A case with the base config.json and an edited safetensors header. */
static const char *header_case(const char *name, const cJSON *header) {
    const char *dir = case_dir(name);
    link_base(dir, "config.json", "config.json");
    put_weights(dir, "model.safetensors", header, g_data, g_data_size);
    return dir;
}

static cJSON *text_config(cJSON *c) { return cJSON_GetObjectItemCaseSensitive(c, "text_config"); }

static void set(cJSON *obj, const char *key, cJSON *value) {
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddItemToObject(obj, key, value);
}

static cJSON *entry(cJSON *header, const char *name) {
    cJSON *e = cJSON_GetObjectItemCaseSensitive(header, name);
    CHECK_MSG(e != NULL, "the tiny checkpoint has no '%s'", name);
    return e;
}

static void get_offsets(cJSON *e, double *b, double *en) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    *b = cJSON_GetArrayItem(o, 0)->valuedouble;
    *en = cJSON_GetArrayItem(o, 1)->valuedouble;
}

static void set_offsets(cJSON *e, double b, double en) {
    const double v[2] = {b, en};
    set(e, "data_offsets", cJSON_CreateDoubleArray(v, 2));
}

/* ---------------------------------------------------------------- checking */

static bool one_line(const char *s) { return s && *s && !strchr(s, '\n'); }

/* Loads dir and expects status want with a one-line message holding every needle. */
static void expect_load(const char *what, const char *dir, md_status want, const char *n1, const char *n2,
                        const char *n3) {
    static int sentinel;
    md_model_t *m = (md_model_t *)&sentinel;
    md_status st = md_model_load(dir, &m);
    const char *msg = md_last_error();
    fprintf(stderr, "%-34s -> %-13s %s\n", what, md_status_name(st), msg);
    CHECK_MSG(st == want, "%s: got '%s', expected '%s'", what, md_status_name(st), md_status_name(want));
    CHECK_MSG(m == NULL, "%s: the model handle must be NULL after a failure", what);
    if (st == MD_OK) md_model_free(m);
    CHECK_MSG(one_line(msg), "%s: the message must be one non-empty line", what);
    const char *needles[3] = {n1, n2, n3};
    for (int i = 0; i < 3; i++)
        CHECK_MSG(!needles[i] || strstr(msg, needles[i]), "%s: the message should name '%s'", what, needles[i]);
}

/* `megadelta logits` must exit 1 with exactly one line "megadelta: error: ...needle...". */
static void expect_cli(const char *what, const char *args, const char *needle) {
    char cmd[8192], log[8192];
    snprintf(cmd, sizeof cmd, "'%s' logits %s -o '%s/cli.f32'", md_test_bin(), args, md_test_tmp());
    int rc = md_test_run(cmd, log, sizeof log);
    size_t len = strlen(log);
    bool ok = rc == 1 && len > 0 && log[len - 1] == '\n' && strchr(log, '\n') == log + len - 1 &&
              strncmp(log, "megadelta: error: ", 18) == 0 && strstr(log, needle);
    CHECK_MSG(ok, "CLI %s: expected exit 1 and one error line naming '%s'; got %d:\n%s", what, needle, rc, log);
}

/* ---------------------------------------------------------------- the cases */

static void missing_files(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/no-such-dir", md_test_tmp());
    expect_load("missing directory", dir, MD_ERR_IO, "no-such-dir", "config.json", NULL);

    const char *d = case_dir("no-config");
    link_base(d, "model.safetensors", "model.safetensors");
    expect_load("missing config.json", d, MD_ERR_IO, "no-config/config.json", NULL, NULL);

    d = case_dir("no-weights");
    link_base(d, "config.json", "config.json");
    expect_load("missing model.safetensors", d, MD_ERR_IO, "model.safetensors", NULL, NULL);

    /* an index naming a shard that is not there */
    const char *shard1 = "model-00001-of-00002.safetensors", *shard2 = "model-00002-of-00002.safetensors";
    cJSON *index = cJSON_CreateObject(), *map = cJSON_AddObjectToObject(index, "weight_map");
    const cJSON *e;
    cJSON_ArrayForEach(e, g_header) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        cJSON_AddStringToObject(map, e->string, strcmp(e->string, "model.language_model.norm.weight") ? shard1 : shard2);
    }
    d = case_dir("missing-shard");
    link_base(d, "config.json", "config.json");
    link_base(d, "model.safetensors", shard1);
    put_json(d, "model.safetensors.index.json", index);
    expect_load("shard named in the index missing", d, MD_ERR_IO, shard2, NULL, NULL);

    /* every shard there, but the index lists a tensor its shard does not hold */
    set(map, "model.language_model.norm.weight", cJSON_CreateString(shard1));
    cJSON_AddStringToObject(map, "model.language_model.layers.0.extra.weight", shard1);
    d = case_dir("index-extra-tensor");
    link_base(d, "config.json", "config.json");
    link_base(d, "model.safetensors", shard1);
    put_json(d, "model.safetensors.index.json", index);
    expect_load("tensor in the index not in its shard", d, MD_ERR_FORMAT, "layers.0.extra.weight", shard1, NULL);
    cJSON_Delete(index);
}

static void corrupt_safetensors(void) {
    char path[8192];
    /* the file cut inside its header: the header size runs past the end */
    const char *d = case_dir("header-past-end");
    link_base(d, "config.json", "config.json");
    snprintf(path, sizeof path, "%s/model.safetensors", d);
    CHECK(md_test_write_file(path, g_file, 100));
    expect_load("header size past the end", d, MD_ERR_FORMAT, "model.safetensors", "header size", NULL);

    d = case_dir("too-short");
    link_base(d, "config.json", "config.json");
    snprintf(path, sizeof path, "%s/model.safetensors", d);
    CHECK(md_test_write_file(path, g_file, 5));
    expect_load("file shorter than a header", d, MD_ERR_FORMAT, "model.safetensors", "too short", NULL);

    /* the file cut inside its data: tensors run past the end */
    d = case_dir("data-truncated");
    link_base(d, "config.json", "config.json");
    put_weights(d, "model.safetensors", g_header, g_data, g_data_size - 1000);
    expect_load("data area truncated", d, MD_ERR_FORMAT, "model.safetensors", "truncated", "tensor '");

    cJSON *h = cJSON_Duplicate(g_header, 1);
    const char *name = "model.language_model.layers.1.linear_attn.A_log";
    double b, en;
    get_offsets(entry(h, name), &b, &en);
    set_offsets(entry(h, name), (double)g_data_size - (en - b) + 2, (double)g_data_size + 2);
    expect_load("data offsets out of range", header_case("offsets-out-of-range", h), MD_ERR_FORMAT, name,
                "data_offsets", NULL);
    set_offsets(entry(h, name), en, b);
    expect_load("data offsets reversed", header_case("offsets-reversed", h), MD_ERR_FORMAT, name, "data_offsets", NULL);
    cJSON_Delete(h);

    /* two tensors sharing bytes */
    h = cJSON_Duplicate(g_header, 1);
    const char *a = "model.language_model.layers.0.input_layernorm.weight";
    const char *c = "model.language_model.layers.1.input_layernorm.weight";
    get_offsets(entry(h, a), &b, &en);
    set_offsets(entry(h, c), b, en);
    expect_load("overlapping tensors", header_case("overlap", h), MD_ERR_FORMAT, "overlap", a, c);
    cJSON_Delete(h);

    /* the same, with an empty tensor placed between their starts */
    h = cJSON_Duplicate(g_header, 1);
    const char *big = "model.language_model.embed_tokens.weight", *small = "model.language_model.norm.weight";
    double sb, se;
    get_offsets(entry(h, big), &b, &en);
    get_offsets(entry(h, small), &sb, &se);
    set_offsets(entry(h, small), b + 1000, b + 1000 + (se - sb));
    cJSON *empty = cJSON_AddObjectToObject(h, "model.visual.empty");
    cJSON_AddStringToObject(empty, "dtype", "BF16");
    const int zero = 0;
    cJSON_AddItemToObject(empty, "shape", cJSON_CreateIntArray(&zero, 1));
    set_offsets(empty, b + 500, b + 500);
    expect_load("overlap behind an empty tensor", header_case("overlap-empty", h), MD_ERR_FORMAT, "overlap", big, small);
    cJSON_Delete(h);

    h = cJSON_Duplicate(g_header, 1);
    name = "model.language_model.layers.0.mlp.up_proj.weight";
    set(entry(h, name), "dtype", cJSON_CreateString("Q4_K"));
    expect_load("unknown dtype", header_case("unknown-dtype", h), MD_ERR_FORMAT, name, "unknown dtype", "Q4_K");
    cJSON_Delete(h);

    /* the byte size disagrees with the shape */
    h = cJSON_Duplicate(g_header, 1);
    name = "model.language_model.norm.weight";
    cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry(h, name), "shape");
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 0), cJSON_GetArrayItem(shape, 0)->valuedouble + 1);
    expect_load("byte size not matching the shape", header_case("size-mismatch", h), MD_ERR_FORMAT, name, "bytes", NULL);
    cJSON_Delete(h);

    /* a header that is not JSON */
    d = case_dir("header-not-json");
    link_base(d, "config.json", "config.json");
    snprintf(path, sizeof path, "%s/model.safetensors", d);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | g_file[i];
    uint8_t *junk = malloc(8 + hlen);
    memcpy(junk, g_file, 8);
    memset(junk + 8, 'x', hlen);
    CHECK(md_test_write_file(path, junk, 8 + hlen));
    free(junk);
    expect_load("header not JSON", d, MD_ERR_FORMAT, "model.safetensors", "JSON", NULL);
}

static void tensors_vs_config(void) {
    /* a valid file whose shapes do not fit the config */
    cJSON *h = cJSON_Duplicate(g_header, 1);
    const char *name = "model.language_model.layers.0.mlp.gate_proj.weight";
    cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry(h, name), "shape");
    const double r = cJSON_GetArrayItem(shape, 0)->valuedouble, c = cJSON_GetArrayItem(shape, 1)->valuedouble;
    const double swapped[2] = {c, r};
    set(entry(h, name), "shape", cJSON_CreateDoubleArray(swapped, 2));
    expect_load("tensor shape vs config", header_case("wrong-shape", h), MD_ERR_FORMAT, name, "expected", NULL);
    cJSON_Delete(h);

    h = cJSON_Duplicate(g_header, 1);
    name = "model.language_model.layers.2.linear_attn.dt_bias";
    cJSON_DeleteItemFromObjectCaseSensitive(h, name);
    expect_load("missing tensor", header_case("missing-tensor", h), MD_ERR_FORMAT, "missing tensor", name, NULL);
    cJSON_Delete(h);

    /* a valid safetensors dtype the engine does not compute with */
    h = cJSON_Duplicate(g_header, 1);
    name = "model.language_model.layers.0.input_layernorm.weight";
    set(entry(h, name), "dtype", cJSON_CreateString("I16"));
    expect_load("unsupported dtype", header_case("int-dtype", h), MD_ERR_UNSUPPORTED, name, "I16", NULL);
    cJSON_Delete(h);

    cJSON *cfg = cJSON_Duplicate(g_config, 1);
    set(cfg, "tie_word_embeddings", cJSON_CreateFalse());
    set(text_config(cfg), "tie_word_embeddings", cJSON_CreateFalse());
    expect_load("untied without lm_head.weight", config_case("untied-no-head", cfg), MD_ERR_FORMAT, "lm_head.weight",
                "tie_word_embeddings", NULL);
    cJSON_Delete(cfg);
}

static void bad_configs(void) {
    cJSON *cfg = cJSON_Duplicate(g_config, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(text_config(cfg), "hidden_size");
    expect_load("config missing a field", config_case("no-hidden-size", cfg), MD_ERR_CONFIG, "config.json",
                "hidden_size", "missing");
    cJSON_Delete(cfg);

    cfg = cJSON_Duplicate(g_config, 1);
    set(text_config(cfg), "num_hidden_layers", cJSON_CreateString("4"));
    expect_load("config field of the wrong type", config_case("string-layers", cfg), MD_ERR_CONFIG, "config.json",
                "num_hidden_layers", NULL);
    cJSON_Delete(cfg);

    cfg = cJSON_Duplicate(g_config, 1);
    set(text_config(cfg), "intermediate_size", cJSON_CreateNumber(0));
    expect_load("config dimension zero", config_case("zero-inter", cfg), MD_ERR_CONFIG, "intermediate_size", NULL, NULL);
    cJSON_Delete(cfg);

    cfg = cJSON_Duplicate(g_config, 1);
    set(text_config(cfg), "num_key_value_heads", cJSON_CreateNumber(3));
    expect_load("heads not divisible", config_case("heads-3", cfg), MD_ERR_CONFIG, "num_attention_heads",
                "num_key_value_heads", "config.json");
    cJSON_Delete(cfg);

    cfg = cJSON_Duplicate(g_config, 1);
    set(text_config(cfg), "linear_num_value_heads", cJSON_CreateNumber(5));
    expect_load("linear heads not divisible", config_case("lin-heads-5", cfg), MD_ERR_CONFIG, "linear_num_value_heads",
                "linear_num_key_heads", NULL);
    cJSON_Delete(cfg);

    cfg = cJSON_Duplicate(g_config, 1);
    set(text_config(cfg), "partial_rotary_factor", cJSON_CreateNumber(0.3)); /* 64 x 0.3: 19 rotary dims */
    set(cJSON_GetObjectItemCaseSensitive(text_config(cfg), "rope_parameters"), "partial_rotary_factor",
        cJSON_CreateNumber(0.3));
    expect_load("odd rotary dims", config_case("rotary-odd", cfg), MD_ERR_CONFIG, "partial_rotary_factor", NULL, NULL);
    cJSON_Delete(cfg);

    cfg = cJSON_Duplicate(g_config, 1);
    const char *llama[1] = {"LlamaForCausalLM"};
    set(cfg, "architectures", cJSON_CreateStringArray(llama, 1));
    expect_load("unsupported architecture", config_case("llama", cfg), MD_ERR_UNSUPPORTED, "LlamaForCausalLM",
                "config.json", NULL);
    cJSON_Delete(cfg);

    cfg = cJSON_Duplicate(g_config, 1);
    set(cJSON_GetObjectItemCaseSensitive(text_config(cfg), "rope_parameters"), "rope_type", cJSON_CreateString("yarn"));
    expect_load("unsupported rope_type", config_case("yarn", cfg), MD_ERR_UNSUPPORTED, "rope_type", "yarn", NULL);
    cJSON_Delete(cfg);

    cfg = cJSON_Duplicate(g_config, 1);
    set(text_config(cfg), "hidden_act", cJSON_CreateString("gelu"));
    expect_load("unsupported hidden_act", config_case("gelu", cfg), MD_ERR_UNSUPPORTED, "hidden_act", "gelu", NULL);
    cJSON_Delete(cfg);

    cfg = cJSON_Duplicate(g_config, 1);
    cJSON *lt = cJSON_GetObjectItemCaseSensitive(text_config(cfg), "layer_types");
    cJSON_ReplaceItemInArray(lt, 2, cJSON_CreateString("sliding_attention"));
    expect_load("bad layer_types entry", config_case("sliding", cfg), MD_ERR_UNSUPPORTED, "layer_types[2]",
                "sliding_attention", NULL);
    cJSON_DeleteItemFromArray(lt, 2);
    expect_load("layer_types of the wrong length", config_case("layer-types-3", cfg), MD_ERR_CONFIG, "layer_types",
                "num_hidden_layers", NULL);
    cJSON_Delete(cfg);

    const char *d = case_dir("config-not-json");
    put_text(d, "config.json", "{\"architectures\": [\"Qwen3_5ForConditionalGeneration\"], \"text_config\": {");
    link_base(d, "model.safetensors", "model.safetensors");
    expect_load("config.json not JSON", d, MD_ERR_FORMAT, "config.json", "invalid JSON", NULL);
}

static void bad_session_input(void) {
    md_model_t *m = NULL;
    md_session_t *s = NULL;
    CHECK_OK(md_model_load(g_base, &m));
    if (!m) return;
    md_session_params p = md_session_default_params();
    p.backend = MD_BACKEND_CPU;
    p.n_ctx = 8;
    CHECK_OK(md_session_init(m, &p, &s));
    if (s) {
        char id[32];
        snprintf(id, sizeof id, "%d", g_vocab);
        const int32_t bad[2] = {1, g_vocab};
        md_status st = md_session_prefill(s, bad, 2, NULL, 0);
        fprintf(stderr, "%-34s -> %-13s %s\n", "token id >= vocab", md_status_name(st), md_last_error());
        CHECK(st == MD_ERR_INVALID_ARG && one_line(md_last_error()) && strstr(md_last_error(), id) &&
              strstr(md_last_error(), "vocabulary"));
        CHECK(md_session_decode(s, g_vocab, NULL) == MD_ERR_INVALID_ARG && strstr(md_last_error(), id));
        CHECK(md_session_pos(s) == 0);

        const int32_t nine[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        st = md_session_prefill(s, nine, 9, NULL, 0);
        fprintf(stderr, "%-34s -> %-13s %s\n", "more tokens than the context", md_status_name(st), md_last_error());
        CHECK(st == MD_ERR_CONTEXT_FULL && one_line(md_last_error()) && strstr(md_last_error(), "context"));
        CHECK(md_session_pos(s) == 0);
        CHECK_OK(md_session_prefill(s, nine, 8, NULL, 0)); /* what fits still works */
    }
    md_session_free(s);
    md_model_free(m);
}

static void cli_errors(void) {
    char args[8192];
    snprintf(args, sizeof args, "-m '%s/no-such-dir' --tokens '1 2 3'", md_test_tmp());
    expect_cli("missing directory", args, "config.json");
    snprintf(args, sizeof args, "-m '%s/unknown-dtype' --tokens '1 2 3'", md_test_tmp());
    expect_cli("unknown dtype", args, "Q4_K");
    snprintf(args, sizeof args, "-m '%s/missing-shard' --tokens '1 2 3'", md_test_tmp());
    expect_cli("missing shard", args, "model-00002-of-00002.safetensors");
    snprintf(args, sizeof args, "-m '%s/llama' --tokens '1 2 3'", md_test_tmp());
    expect_cli("unsupported architecture", args, "LlamaForCausalLM");
    snprintf(args, sizeof args, "-m '%s' --tokens '1 %d 3'", g_base, g_vocab);
    expect_cli("token id >= vocab", args, "vocabulary");
    snprintf(args, sizeof args, "-m '%s' --mode step --tokens '1 2 %d'", g_base, g_vocab);
    expect_cli("token id >= vocab (step)", args, "vocabulary");
    snprintf(args, sizeof args, "-m '%s' -c 4 --tokens '1 2 3 4 5'", g_base);
    expect_cli("more tokens than the context", args, "context");
    snprintf(args, sizeof args, "-m '%s' --tokens '1 two 3'", g_base);
    expect_cli("token ids not numbers", args, "token id");
}

/* ---------------------------------------------------------------- main */

static bool load_base(void) {
    snprintf(g_base, sizeof g_base, "%s/base", md_test_tmp());
    if (md_synth_write("tiny", g_base, 7, NULL, NULL) != MD_OK) return false;
    char path[8192];
    void *text = NULL;
    snprintf(path, sizeof path, "%s/config.json", g_base);
    if (md_test_read_file(path, &text) < 0) return false;
    g_config = cJSON_Parse(text);
    free(text);
    snprintf(path, sizeof path, "%s/model.safetensors", g_base);
    void *file = NULL;
    long n = md_test_read_file(path, &file);
    if (n < 8 || !g_config) return false;
    g_file = file;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | g_file[i];
    g_header = cJSON_ParseWithLength((const char *)g_file + 8, (size_t)hlen);
    g_data = g_file + 8 + hlen;
    g_data_size = (size_t)n - 8 - hlen;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(text_config(g_config), "vocab_size");
    g_vocab = cJSON_IsNumber(v) ? v->valueint : 0;
    return g_header && g_vocab > 0;
}

int main(void) {
    if (!load_base()) {
        CHECK_MSG(false, "cannot write or read the synthetic tiny checkpoint: %s", md_last_error());
        return md_test_finish("test_bad_input");
    }
    missing_files();
    corrupt_safetensors();
    tensors_vs_config();
    bad_configs();
    bad_session_input();
    cli_errors();
    cJSON_Delete(g_header);
    cJSON_Delete(g_config);
    free(g_file);
    return md_test_finish("test_bad_input");
}
