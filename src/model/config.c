/*
 * config.c — config.json -> md_config, following HF transformers'
 * Qwen3_5TextConfig: its defaults where it has them, an error naming the
 * field for anything missing, mistyped, inconsistent or not implemented.
 */
#include "model/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/mapped_file.h"
#include "common/status.h"

static const char *const k_supported_arch[] = {
    "Qwen3_5ForConditionalGeneration",
    "Qwen3_5ForCausalLM",
};
static const char *const k_supported_model_type[] = {"qwen3_5", "qwen3_5_text"};

static md_status get_dim(const cJSON *o, const char *key, int64_t def, bool required, int *out,
                         const char *where) {
    int64_t v;
    bool present;
    md_status st = md_json_int(o, key, def, &v, &present, where);
    if (st != MD_OK) return st;
    if (!present && required) return md_fail(MD_ERR_CONFIG, "%s: missing field '%s'", where, key);
    if (v <= 0 || v > (1 << 30)) return md_fail(MD_ERR_CONFIG, "%s: field '%s' must be a positive integer (got %lld)", where, key, (long long)v);
    *out = (int)v;
    return MD_OK;
}

static md_status add_eos_id(md_config *cfg, const cJSON *v, const char *where) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble))
        return md_fail(MD_ERR_CONFIG, "%s: field 'eos_token_id' holds something other than a token id", where);
    int32_t id = (int32_t)v->valuedouble;
    for (int i = 0; i < cfg->n_eos; i++)
        if (cfg->eos_ids[i] == id) return MD_OK;
    if (cfg->n_eos < MD_MAX_EOS) cfg->eos_ids[cfg->n_eos++] = id;
    return MD_OK;
}

/* eos_token_id may be an integer or a list of integers. */
static md_status add_eos(md_config *cfg, const cJSON *o, const char *where) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "eos_token_id");
    if (!it || cJSON_IsNull(it)) return MD_OK;
    if (!cJSON_IsArray(it)) return add_eos_id(cfg, it, where);
    const cJSON *one;
    cJSON_ArrayForEach(one, it) {
        md_status st = add_eos_id(cfg, one, where);
        if (st != MD_OK) return st;
    }
    return MD_OK;
}

static md_status read_architecture(md_config *cfg, const cJSON *root, const char *where) {
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const char *name = NULL;
    if (arch && cJSON_IsArray(arch) && cJSON_GetArraySize(arch) > 0) {
        const cJSON *a0 = cJSON_GetArrayItem(arch, 0);
        if (!cJSON_IsString(a0)) return md_fail(MD_ERR_CONFIG, "%s: field 'architectures' must list strings", where);
        name = a0->valuestring;
        for (size_t i = 0; i < sizeof k_supported_arch / sizeof *k_supported_arch; i++)
            if (strcmp(name, k_supported_arch[i]) == 0) goto ok;
        return md_fail(MD_ERR_UNSUPPORTED,
                       "%s: unsupported architecture '%s' (supported: Qwen3_5ForConditionalGeneration, Qwen3_5ForCausalLM)",
                       where, name);
    }
    md_status st = md_json_str(root, "model_type", &name, where);
    if (st != MD_OK) return st;
    if (!name) return md_fail(MD_ERR_CONFIG, "%s: missing field 'architectures' (and no 'model_type')", where);
    for (size_t i = 0; i < sizeof k_supported_model_type / sizeof *k_supported_model_type; i++)
        if (strcmp(name, k_supported_model_type[i]) == 0) goto ok;
    return md_fail(MD_ERR_UNSUPPORTED, "%s: unsupported model_type '%s' (supported: qwen3_5, qwen3_5_text)", where, name);
ok:
    snprintf(cfg->architecture, sizeof cfg->architecture, "%s", name);
    return MD_OK;
}

/* rope: rope_parameters (current), else rope_scaling, else legacy top-level fields. */
static md_status read_rope(md_config *cfg, const cJSON *tc, const char *where) {
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(tc, "rope_parameters");
    if (!rp || cJSON_IsNull(rp)) rp = cJSON_GetObjectItemCaseSensitive(tc, "rope_scaling");
    if (rp && cJSON_IsNull(rp)) rp = NULL;
    if (rp && !cJSON_IsObject(rp)) return md_fail(MD_ERR_CONFIG, "%s: field 'rope_parameters' must be an object", where);
    double theta, prf;
    md_status st;
    bool present;
    /* legacy top-level values first, then rope_parameters overrides */
    if ((st = md_json_num(tc, "rope_theta", 10000.0, &theta, NULL, where)) != MD_OK) return st;
    if ((st = md_json_num(tc, "partial_rotary_factor", 0.25, &prf, NULL, where)) != MD_OK) return st;
    if (rp) {
        const char *type = NULL;
        if ((st = md_json_str(rp, "rope_type", &type, where)) != MD_OK) return st;
        if (!type && (st = md_json_str(rp, "type", &type, where)) != MD_OK) return st;
        if (type && strcmp(type, "default") != 0)
            return md_fail(MD_ERR_UNSUPPORTED, "%s: rope_parameters.rope_type '%s' is not implemented (only \"default\")", where, type);
        if ((st = md_json_num(rp, "rope_theta", theta, &theta, &present, where)) != MD_OK) return st;
        if ((st = md_json_num(rp, "partial_rotary_factor", prf, &prf, &present, where)) != MD_OK) return st;
    }
    if (!(theta > 1.0) || !isfinite(theta)) return md_fail(MD_ERR_CONFIG, "%s: rope_theta must be > 1 (got %g)", where, theta);
    if (!(prf > 0.0 && prf <= 1.0)) return md_fail(MD_ERR_CONFIG, "%s: partial_rotary_factor must be in (0, 1] (got %g)", where, prf);
    cfg->rope_theta = (float)theta;
    cfg->rope_dim = (int)(cfg->head_dim * prf); /* HF: int(head_dim * factor) */
    if (cfg->rope_dim < 2 || cfg->rope_dim % 2)
        return md_fail(MD_ERR_CONFIG, "%s: head_dim %d x partial_rotary_factor %g gives %d rotary dims (must be even and >= 2)",
                       where, cfg->head_dim, prf, cfg->rope_dim);
    return MD_OK;
}

static md_status read_layer_types(md_config *cfg, const cJSON *tc, const char *where) {
    cfg->layer_full = calloc((size_t)cfg->n_layers, sizeof *cfg->layer_full);
    if (!cfg->layer_full) return md_fail(MD_ERR_OUT_OF_MEMORY, "%s: out of memory", where);
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(tc, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        if (!cJSON_IsArray(lt)) return md_fail(MD_ERR_CONFIG, "%s: field 'layer_types' must be a list", where);
        if (cJSON_GetArraySize(lt) != cfg->n_layers)
            return md_fail(MD_ERR_CONFIG, "%s: 'layer_types' has %d entries but num_hidden_layers is %d", where,
                           cJSON_GetArraySize(lt), cfg->n_layers);
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, lt) {
            if (!cJSON_IsString(e)) return md_fail(MD_ERR_CONFIG, "%s: layer_types[%d] must be a string", where, i);
            if (strcmp(e->valuestring, "full_attention") == 0) cfg->layer_full[i] = true;
            else if (strcmp(e->valuestring, "linear_attention") == 0) cfg->layer_full[i] = false;
            else return md_fail(MD_ERR_UNSUPPORTED, "%s: layer_types[%d] is '%s' (expected \"linear_attention\" or \"full_attention\")",
                                where, i, e->valuestring);
            i++;
        }
        return MD_OK;
    }
    int interval = 4;
    md_status st = get_dim(tc, "full_attention_interval", 4, false, &interval, where);
    if (st != MD_OK) return st;
    for (int i = 0; i < cfg->n_layers; i++) cfg->layer_full[i] = (i + 1) % interval == 0;
    return MD_OK;
}

static md_status parse(md_config *cfg, const cJSON *root, const char *where) {
    md_status st;
    if ((st = read_architecture(cfg, root, where)) != MD_OK) return st;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    cfg->wrapper = tc != NULL && !cJSON_IsNull(tc);
    if (cfg->wrapper && !cJSON_IsObject(tc)) return md_fail(MD_ERR_CONFIG, "%s: field 'text_config' must be an object", where);
    if (!cfg->wrapper) tc = root;

    if ((st = get_dim(tc, "vocab_size", 0, true, &cfg->vocab_size, where)) != MD_OK) return st;
    if ((st = get_dim(tc, "hidden_size", 0, true, &cfg->hidden_size, where)) != MD_OK) return st;
    if ((st = get_dim(tc, "intermediate_size", 0, true, &cfg->intermediate_size, where)) != MD_OK) return st;
    if ((st = get_dim(tc, "num_hidden_layers", 0, true, &cfg->n_layers, where)) != MD_OK) return st;
    if ((st = get_dim(tc, "num_attention_heads", 0, true, &cfg->n_heads, where)) != MD_OK) return st;
    if ((st = get_dim(tc, "num_key_value_heads", 0, true, &cfg->n_kv_heads, where)) != MD_OK) return st;
    /* absent: transformers' Qwen3_5TextConfig default, 256 (not hidden_size / heads) */
    if ((st = get_dim(tc, "head_dim", 256, false, &cfg->head_dim, where)) != MD_OK) return st;
    if ((st = get_dim(tc, "linear_num_key_heads", 16, false, &cfg->lin_n_k_heads, where)) != MD_OK) return st;
    if ((st = get_dim(tc, "linear_num_value_heads", 32, false, &cfg->lin_n_v_heads, where)) != MD_OK) return st;
    if ((st = get_dim(tc, "linear_key_head_dim", 128, false, &cfg->lin_k_dim, where)) != MD_OK) return st;
    if ((st = get_dim(tc, "linear_value_head_dim", 128, false, &cfg->lin_v_dim, where)) != MD_OK) return st;
    if ((st = get_dim(tc, "linear_conv_kernel_dim", 4, false, &cfg->conv_kernel, where)) != MD_OK) return st;
    if ((st = get_dim(tc, "max_position_embeddings", 32768, false, &cfg->max_pos, where)) != MD_OK) return st;
    int64_t mtp;
    if ((st = md_json_int(tc, "mtp_num_hidden_layers", 0, &mtp, NULL, where)) != MD_OK) return st;
    cfg->mtp_layers = mtp > 0 ? (int)mtp : 0;

    double eps;
    if ((st = md_json_num(tc, "rms_norm_eps", 1e-6, &eps, NULL, where)) != MD_OK) return st;
    if (!(eps > 0.0 && eps < 1.0)) return md_fail(MD_ERR_CONFIG, "%s: rms_norm_eps must be in (0, 1) (got %g)", where, eps);
    cfg->rms_eps = (float)eps;

    const char *act = NULL;
    if ((st = md_json_str(tc, "hidden_act", &act, where)) != MD_OK) return st;
    if (act && strcmp(act, "silu") != 0 && strcmp(act, "swish") != 0)
        return md_fail(MD_ERR_UNSUPPORTED, "%s: hidden_act '%s' is not implemented (only \"silu\")", where, act);
    bool bias;
    if ((st = md_json_bool(tc, "attention_bias", false, &bias, NULL, where)) != MD_OK) return st;
    if (bias) return md_fail(MD_ERR_UNSUPPORTED, "%s: attention_bias true is not implemented", where);

    /* Tied LM head: the wrapper's top-level flag governs (as in HF); the
     * text_config copy should agree. Both default to false, as in HF. */
    bool tied_top, tied_text, top_present, text_present;
    if ((st = md_json_bool(root, "tie_word_embeddings", false, &tied_top, &top_present, where)) != MD_OK) return st;
    if (cfg->wrapper) {
        if ((st = md_json_bool(tc, "tie_word_embeddings", tied_top, &tied_text, &text_present, where)) != MD_OK) return st;
        if (text_present && top_present && tied_text != tied_top)
            fprintf(stderr, "megadelta: warning: %s: text_config.tie_word_embeddings (%s) disagrees with the top-level value (%s); using the top-level one\n",
                    where, tied_text ? "true" : "false", tied_top ? "true" : "false");
    }
    cfg->tied = tied_top;

    /* consistency */
    if (cfg->n_heads % cfg->n_kv_heads)
        return md_fail(MD_ERR_CONFIG, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", where,
                       cfg->n_heads, cfg->n_kv_heads);
    if (cfg->lin_n_v_heads % cfg->lin_n_k_heads)
        return md_fail(MD_ERR_CONFIG, "%s: linear_num_value_heads %d is not a multiple of linear_num_key_heads %d", where,
                       cfg->lin_n_v_heads, cfg->lin_n_k_heads);
    if ((st = read_rope(cfg, tc, where)) != MD_OK) return st;
    if ((st = read_layer_types(cfg, tc, where)) != MD_OK) return st;

    if ((st = add_eos(cfg, tc, where)) != MD_OK) return st;
    if (cfg->wrapper && (st = add_eos(cfg, root, where)) != MD_OK) return st;
    return MD_OK;
}

md_status md_config_load(const char *dir, md_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *root = NULL;
    md_status st = md_json_parse_file(path, &root);
    if (st != MD_OK) return st;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return md_fail(MD_ERR_CONFIG, "%s: top level must be an object", path);
    }
    st = parse(cfg, root, path);
    cJSON_Delete(root);
    if (st != MD_OK) goto fail;

    /* generation_config.json is optional; its eos ids join the config's */
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    if (md_file_exists(path)) {
        cJSON *gen = NULL;
        if ((st = md_json_parse_file(path, &gen)) != MD_OK) goto fail;
        st = cJSON_IsObject(gen) ? add_eos(cfg, gen, path) : md_fail(MD_ERR_CONFIG, "%s: top level must be an object", path);
        cJSON_Delete(gen);
        if (st != MD_OK) goto fail;
    }
    return MD_OK;
fail:
    md_config_free(cfg);
    return st;
}

void md_config_free(md_config *cfg) {
    free(cfg->layer_full);
    cfg->layer_full = NULL;
}

int md_cfg_n_full(const md_config *c) {
    int n = 0;
    for (int i = 0; i < c->n_layers; i++) n += c->layer_full[i];
    return n;
}

int md_cfg_n_linear(const md_config *c) { return c->n_layers - md_cfg_n_full(c); }
