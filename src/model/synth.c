/*
 * synth.c — writes synthetic Qwen3.5 checkpoints in the release layout.
 *
 * Every tensor kind gets non-trivial random values (zero-centred norm weights
 * around 0, gated-norm weights around 1, A_log, dt_bias and the conv taps
 * spread out), so a bug in any path changes the logits. Matrices are uniform
 * with standard deviation 1/sqrt(fan_in); the embedding (also the LM head:
 * presets are tied) has standard deviation 2/sqrt(H), which puts the standard
 * deviation of every logits row near 2. Values come from splitmix64, so a seed
 * gives the same files on every machine.
 */
#define _POSIX_C_SOURCE 200809L
#include "model/synth.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/half.h"
#include "common/mapped_file.h"
#include "common/status.h"

typedef struct preset {
    const char *name;
    int vocab, hidden, inter, layers;
    int heads, kv_heads, head_dim;
    double rotary_factor, rope_theta;
    int lin_k_heads, lin_v_heads, lin_k_dim, lin_v_dim, conv;
    int max_pos;
    int id_endoftext; /* first of the special tokens; the rest follow in order */
} preset;

static const preset k_presets[] = {
    /* small enough for sanitizer runs; exercises GQA, Hv = 2 Hk, dk != dv, partial rotary */
    {"tiny", 1024, 128, 384, 4, 4, 2, 64, 0.25, 1e7, 2, 4, 32, 64, 4, 4096, 990},
    /* the exact shapes of Qwen3.5-0.8B */
    {"qwen3.5-0.8b", 248320, 1024, 3584, 24, 8, 2, 256, 0.25, 1e7, 16, 16, 128, 128, 4, 262144, 248044},
};

const char *const md_synth_presets[] = {"tiny", "qwen3.5-0.8b", NULL};

/* Special tokens of the Qwen3.5 vocabulary, in id order from <|endoftext|>. */
static const char *const k_specials[] = {
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
};
#define N_SPECIALS ((int)(sizeof k_specials / sizeof *k_specials))

/* A few English merges so the BPE path is exercised (byte-level symbols: Ġ is space). */
static const char *const k_merges[][2] = {
    {"Ġ", "t"}, {"h", "e"}, {"Ġ", "a"}, {"i", "n"}, {"Ġt", "he"}, {"e", "r"}, {"o", "n"}, {"r", "e"},
    {"Ġ", "s"}, {"e", "n"}, {"a", "t"}, {"o", "r"}, {"Ġ", "w"}, {"e", "s"}, {"Ġ", "o"}, {"i", "s"},
};
#define N_MERGES ((int)(sizeof k_merges / sizeof *k_merges))

/* ---------------------------------------------------------------- random */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t splitmix64(rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [-1, 1) */
static float uniform_pm1(rng *r) { return (float)((splitmix64(r) >> 40) * (1.0 / 8388608.0)) - 1.0f; }

/* ---------------------------------------------------------------- tensor list */

typedef enum fill_kind {
    FILL_UNIFORM,   /* value = center + scale * U(-1, 1) */
    FILL_LOG_UNIF,  /* value = log(U(lo, hi)), lo = center, hi = scale (A_log) */
} fill_kind;

typedef struct tensor_spec {
    char name[160];
    int ndim;
    int64_t shape[3];
    fill_kind kind;
    float center, scale;
} tensor_spec;

typedef struct spec_list {
    tensor_spec *v;
    int n, cap;
} spec_list;

static md_status add(spec_list *l, const char *name, int ndim, int64_t a, int64_t b, int64_t c, fill_kind kind,
                     float center, float scale) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 256;
        tensor_spec *nv = realloc(l->v, (size_t)cap * sizeof *nv);
        if (!nv) return md_fail(MD_ERR_OUT_OF_MEMORY, "synth: out of memory");
        l->v = nv;
        l->cap = cap;
    }
    tensor_spec *t = &l->v[l->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = a;
    t->shape[1] = b;
    t->shape[2] = c;
    t->kind = kind;
    t->center = center;
    t->scale = scale;
    return MD_OK;
}

/* uniform with standard deviation std: U(-1,1) has std 1/sqrt(3) */
#define STD(std) ((float)((std) * 1.7320508075688772))

static md_status add_matrix(spec_list *l, const char *name, int64_t rows, int64_t cols, double gain) {
    return add(l, name, 2, rows, cols, 0, FILL_UNIFORM, 0.0f, STD(gain / sqrt((double)cols)));
}

static md_status add_norm(spec_list *l, const char *name, int64_t n) {
    return add(l, name, 1, n, 0, 0, FILL_UNIFORM, 0.0f, 0.3f); /* zero-centred: effective scale 1 + w */
}

static md_status add_attention(spec_list *l, const char *p, const preset *c) {
    char n[160];
    const int64_t H = c->hidden, qd = (int64_t)c->heads * c->head_dim, kvd = (int64_t)c->kv_heads * c->head_dim;
    md_status st;
#define T(suffix) (snprintf(n, sizeof n, "%s%s", p, suffix), n)
    if ((st = add_matrix(l, T("self_attn.q_proj.weight"), 2 * qd, H, 1.0)) != MD_OK) return st;
    if ((st = add_matrix(l, T("self_attn.k_proj.weight"), kvd, H, 1.0)) != MD_OK) return st;
    if ((st = add_matrix(l, T("self_attn.v_proj.weight"), kvd, H, 1.0)) != MD_OK) return st;
    if ((st = add_matrix(l, T("self_attn.o_proj.weight"), H, qd, 0.5)) != MD_OK) return st;
    if ((st = add_norm(l, T("self_attn.q_norm.weight"), c->head_dim)) != MD_OK) return st;
    if ((st = add_norm(l, T("self_attn.k_norm.weight"), c->head_dim)) != MD_OK) return st;
#undef T
    return MD_OK;
}

static md_status add_common(spec_list *l, const char *p, const preset *c) {
    char n[160];
    const int64_t H = c->hidden, I = c->inter;
    md_status st;
#define T(suffix) (snprintf(n, sizeof n, "%s%s", p, suffix), n)
    if ((st = add_norm(l, T("input_layernorm.weight"), H)) != MD_OK) return st;
    if ((st = add_norm(l, T("post_attention_layernorm.weight"), H)) != MD_OK) return st;
    if ((st = add_matrix(l, T("mlp.gate_proj.weight"), I, H, 1.0)) != MD_OK) return st;
    if ((st = add_matrix(l, T("mlp.up_proj.weight"), I, H, 1.0)) != MD_OK) return st;
    if ((st = add_matrix(l, T("mlp.down_proj.weight"), H, I, 0.5)) != MD_OK) return st;
#undef T
    return MD_OK;
}

static md_status add_deltanet(spec_list *l, const char *p, const preset *c) {
    char n[160];
    const int64_t H = c->hidden, Kd = (int64_t)c->lin_k_heads * c->lin_k_dim, Vd = (int64_t)c->lin_v_heads * c->lin_v_dim;
    const int64_t cd = 2 * Kd + Vd, hv = c->lin_v_heads;
    md_status st;
#define T(suffix) (snprintf(n, sizeof n, "%s%s", p, suffix), n)
    if ((st = add_matrix(l, T("linear_attn.in_proj_qkv.weight"), cd, H, 1.0)) != MD_OK) return st;
    if ((st = add_matrix(l, T("linear_attn.in_proj_z.weight"), Vd, H, 1.0)) != MD_OK) return st;
    if ((st = add_matrix(l, T("linear_attn.in_proj_b.weight"), hv, H, 1.0)) != MD_OK) return st;
    if ((st = add_matrix(l, T("linear_attn.in_proj_a.weight"), hv, H, 1.0)) != MD_OK) return st;
    if ((st = add_matrix(l, T("linear_attn.out_proj.weight"), H, Vd, 0.5)) != MD_OK) return st;
    if ((st = add(l, T("linear_attn.conv1d.weight"), 3, cd, 1, c->conv, FILL_UNIFORM, 0.0f, 0.6f)) != MD_OK) return st;
    /* A = exp(A_log) in [0.05, 3]: decays from ~0.95 to ~0.1 per step */
    if ((st = add(l, T("linear_attn.A_log"), 1, hv, 0, 0, FILL_LOG_UNIF, 0.05f, 3.0f)) != MD_OK) return st;
    if ((st = add(l, T("linear_attn.dt_bias"), 1, hv, 0, 0, FILL_UNIFORM, -1.0f, 1.0f)) != MD_OK) return st;
    if ((st = add(l, T("linear_attn.norm.weight"), 1, c->lin_v_dim, 0, 0, FILL_UNIFORM, 1.0f, 0.3f)) != MD_OK) return st;
#undef T
    return MD_OK;
}

static bool is_full(const preset *c, int i) { return (i + 1) % 4 == 0; }

static md_status build_specs(const preset *c, spec_list *l) {
    md_status st;
    char p[96];
    const int64_t H = c->hidden;
    if ((st = add(l, "model.language_model.embed_tokens.weight", 2, c->vocab, H, 0, FILL_UNIFORM, 0.0f,
                  STD(2.0 / sqrt((double)H)))) != MD_OK)
        return st;
    for (int i = 0; i < c->layers; i++) {
        snprintf(p, sizeof p, "model.language_model.layers.%d.", i);
        if ((st = add_common(l, p, c)) != MD_OK) return st;
        st = is_full(c, i) ? add_attention(l, p, c) : add_deltanet(l, p, c);
        if (st != MD_OK) return st;
    }
    if ((st = add_norm(l, "model.language_model.norm.weight", H)) != MD_OK) return st;
    /* the multi-token-prediction block, at its real shapes (not used by the engine yet) */
    if ((st = add_matrix(l, "mtp.fc.weight", H, 2 * H, 1.0)) != MD_OK) return st;
    if ((st = add_norm(l, "mtp.pre_fc_norm_embedding.weight", H)) != MD_OK) return st;
    if ((st = add_norm(l, "mtp.pre_fc_norm_hidden.weight", H)) != MD_OK) return st;
    if ((st = add_common(l, "mtp.layers.0.", c)) != MD_OK) return st;
    if ((st = add_attention(l, "mtp.layers.0.", c)) != MD_OK) return st;
    if ((st = add_norm(l, "mtp.norm.weight", H)) != MD_OK) return st;
    return MD_OK;
}

static int64_t numel(const tensor_spec *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* ---------------------------------------------------------------- files */

static md_status write_config(const preset *c, const char *dir) {
    cJSON *root = cJSON_CreateObject(), *tc = cJSON_CreateObject(), *rp = cJSON_CreateObject();
    cJSON *arch = cJSON_CreateArray(), *lt = cJSON_CreateArray(), *eos = cJSON_CreateArray(), *mrope = cJSON_CreateArray();
    if (!root || !tc || !rp || !arch || !lt || !eos || !mrope) {
        cJSON_Delete(root), cJSON_Delete(tc), cJSON_Delete(rp), cJSON_Delete(arch), cJSON_Delete(lt), cJSON_Delete(eos),
            cJSON_Delete(mrope);
        return md_fail(MD_ERR_OUT_OF_MEMORY, "synth: out of memory");
    }
    cJSON_AddItemToArray(arch, cJSON_CreateString("Qwen3_5ForConditionalGeneration"));
    cJSON_AddItemToObject(root, "architectures", arch);
    cJSON_AddStringToObject(root, "model_type", "qwen3_5");
    cJSON_AddBoolToObject(root, "tie_word_embeddings", 1);
    cJSON_AddItemToObject(root, "text_config", tc);
    cJSON_AddStringToObject(tc, "model_type", "qwen3_5_text");
    cJSON_AddNumberToObject(tc, "vocab_size", c->vocab);
    cJSON_AddNumberToObject(tc, "hidden_size", c->hidden);
    cJSON_AddNumberToObject(tc, "intermediate_size", c->inter);
    cJSON_AddNumberToObject(tc, "num_hidden_layers", c->layers);
    cJSON_AddNumberToObject(tc, "num_attention_heads", c->heads);
    cJSON_AddNumberToObject(tc, "num_key_value_heads", c->kv_heads);
    cJSON_AddNumberToObject(tc, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(tc, "linear_num_key_heads", c->lin_k_heads);
    cJSON_AddNumberToObject(tc, "linear_num_value_heads", c->lin_v_heads);
    cJSON_AddNumberToObject(tc, "linear_key_head_dim", c->lin_k_dim);
    cJSON_AddNumberToObject(tc, "linear_value_head_dim", c->lin_v_dim);
    cJSON_AddNumberToObject(tc, "linear_conv_kernel_dim", c->conv);
    cJSON_AddNumberToObject(tc, "max_position_embeddings", c->max_pos);
    cJSON_AddNumberToObject(tc, "rms_norm_eps", 1e-6);
    cJSON_AddStringToObject(tc, "hidden_act", "silu");
    cJSON_AddBoolToObject(tc, "attention_bias", 0);
    cJSON_AddBoolToObject(tc, "attn_output_gate", 1);
    cJSON_AddBoolToObject(tc, "tie_word_embeddings", 1);
    cJSON_AddNumberToObject(tc, "full_attention_interval", 4);
    cJSON_AddNumberToObject(tc, "mtp_num_hidden_layers", 1);
    cJSON_AddStringToObject(tc, "dtype", "bfloat16");
    for (int i = 0; i < c->layers; i++)
        cJSON_AddItemToArray(lt, cJSON_CreateString(is_full(c, i) ? "full_attention" : "linear_attention"));
    cJSON_AddItemToObject(tc, "layer_types", lt);
    cJSON_AddStringToObject(rp, "rope_type", "default");
    cJSON_AddNumberToObject(rp, "rope_theta", c->rope_theta);
    cJSON_AddNumberToObject(rp, "partial_rotary_factor", c->rotary_factor);
    cJSON_AddBoolToObject(rp, "mrope_interleaved", 1);
    cJSON_AddItemToArray(mrope, cJSON_CreateNumber(11));
    cJSON_AddItemToArray(mrope, cJSON_CreateNumber(11));
    cJSON_AddItemToArray(mrope, cJSON_CreateNumber(10));
    cJSON_AddItemToObject(rp, "mrope_section", mrope);
    cJSON_AddItemToObject(tc, "rope_parameters", rp);
    cJSON_AddItemToArray(eos, cJSON_CreateNumber(c->id_endoftext + 2)); /* <|im_end|> */
    cJSON_AddItemToArray(eos, cJSON_CreateNumber(c->id_endoftext));     /* <|endoftext|> */
    cJSON_AddItemToObject(tc, "eos_token_id", eos);

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return md_fail(MD_ERR_OUT_OF_MEMORY, "synth: out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(text);
        return md_fail(MD_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    int bad = fputs(text, f) < 0 || fputc('\n', f) == EOF;
    bad |= fclose(f) != 0;
    free(text);
    return bad ? md_fail(MD_ERR_IO, "%s: write failed", path) : MD_OK;
}

/* GPT-2's byte -> printable-unicode map used by ByteLevel tokenizers. */
static void byte_symbol(int b, char out[5]) {
    int cp;
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
        cp = b;
    } else { /* the others map in order to 256, 257, ... */
        int k = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) k++;
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

static md_status write_tokenizer(const preset *c, const char *dir) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return md_fail(MD_ERR_OUT_OF_MEMORY, "synth: out of memory");
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int i = 0; i < N_SPECIALS; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", c->id_endoftext + i);
        cJSON_AddStringToObject(t, "content", k_specials[i]);
        cJSON_AddBoolToObject(t, "single_word", 0);
        cJSON_AddBoolToObject(t, "lstrip", 0);
        cJSON_AddBoolToObject(t, "rstrip", 0);
        cJSON_AddBoolToObject(t, "normalized", 0);
        /* as in Qwen's files, the think/tool tags are not "special" (they are printed) */
        cJSON_AddBoolToObject(t, "special", i < 14);
        cJSON_AddItemToArray(added, t);
    }
    cJSON *norm = cJSON_AddObjectToObject(root, "normalizer");
    cJSON_AddStringToObject(norm, "type", "NFC");
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "Sequence");
    cJSON *pres = cJSON_AddArrayToObject(pre, "pretokenizers");
    cJSON *split = cJSON_CreateObject();
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON *pat = cJSON_AddObjectToObject(split, "pattern");
    cJSON_AddStringToObject(pat, "Regex",
                            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", 0);
    cJSON_AddItemToArray(pres, split);
    cJSON *bl = cJSON_CreateObject();
    cJSON_AddStringToObject(bl, "type", "ByteLevel");
    cJSON_AddBoolToObject(bl, "add_prefix_space", 0);
    cJSON_AddBoolToObject(bl, "trim_offsets", 0);
    cJSON_AddBoolToObject(bl, "use_regex", 0);
    cJSON_AddItemToArray(pres, bl);
    cJSON_AddNullToObject(root, "post_processor");
    cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON_AddBoolToObject(dec, "add_prefix_space", 0);
    cJSON_AddBoolToObject(dec, "trim_offsets", 0);
    cJSON_AddBoolToObject(dec, "use_regex", 0);
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    char sym[5];
    for (int b = 0; b < 256; b++) {
        byte_symbol(b, sym);
        cJSON_AddNumberToObject(vocab, sym, b);
    }
    for (int i = 0; i < N_MERGES; i++) {
        char joined[16];
        snprintf(joined, sizeof joined, "%s%s", k_merges[i][0], k_merges[i][1]);
        cJSON_AddNumberToObject(vocab, joined, 256 + i);
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(k_merges[i][0]));
        cJSON_AddItemToArray(pair, cJSON_CreateString(k_merges[i][1]));
        cJSON_AddItemToArray(merges, pair);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return md_fail(MD_ERR_OUT_OF_MEMORY, "synth: out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(text);
        return md_fail(MD_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    free(text);
    return bad ? md_fail(MD_ERR_IO, "%s: write failed", path) : MD_OK;
}

static md_status write_weights(const preset *c, const char *dir, uint64_t seed, void (*progress)(double, void *),
                               void *ctx) {
    spec_list l = {0};
    md_status st = build_specs(c, &l);
    cJSON *hdr = NULL;
    char *htext = NULL;
    FILE *f = NULL;
    uint16_t *buf = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (st != MD_OK) goto done;

    hdr = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(hdr, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    uint64_t off = 0;
    for (int i = 0; i < l.n; i++) {
        const tensor_spec *t = &l.v[i];
        cJSON *e = cJSON_AddObjectToObject(hdr, t->name);
        cJSON_AddStringToObject(e, "dtype", "BF16");
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        uint64_t bytes = (uint64_t)numel(t) * 2;
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + bytes)));
        off += bytes;
    }
    htext = cJSON_PrintUnformatted(hdr);
    if (!htext) {
        st = md_fail(MD_ERR_OUT_OF_MEMORY, "synth: out of memory");
        goto done;
    }
    size_t hlen = strlen(htext);
    size_t padded = (hlen + 7) / 8 * 8; /* keep the data area 8-byte aligned */
    f = fopen(path, "wb");
    if (!f) {
        st = md_fail(MD_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        goto done;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int bad = fwrite(len8, 1, 8, f) != 8 || fwrite(htext, 1, hlen, f) != hlen;
    for (size_t i = hlen; i < padded && !bad; i++) bad = fputc(' ', f) == EOF;

    const size_t chunk = 1 << 20;
    buf = malloc(chunk * sizeof *buf);
    if (!buf) {
        st = md_fail(MD_ERR_OUT_OF_MEMORY, "synth: out of memory");
        goto done;
    }
    uint64_t written = 0;
    for (int i = 0; i < l.n && !bad; i++) {
        const tensor_spec *t = &l.v[i];
        /* each tensor has its own stream, so adding a tensor never changes the others */
        rng r = {seed * 0x2545f4914f6cdd1dull + (uint64_t)i * 0x9e3779b97f4a7c15ull};
        for (int64_t left = numel(t); left > 0 && !bad;) {
            size_t n = left < (int64_t)chunk ? (size_t)left : chunk;
            for (size_t k = 0; k < n; k++) {
                float u = uniform_pm1(&r), v;
                if (t->kind == FILL_LOG_UNIF) v = logf(t->center + (t->scale - t->center) * 0.5f * (u + 1.0f));
                else v = t->center + t->scale * u;
                buf[k] = md_f32_to_bf16(v);
            }
            bad = fwrite(buf, sizeof *buf, n, f) != n;
            left -= (int64_t)n;
            written += n * 2;
            if (progress) progress((double)written / (double)off, ctx);
        }
    }
    bad |= fclose(f) != 0;
    f = NULL;
    if (bad) st = md_fail(MD_ERR_IO, "%s: write failed (disk full?)", path);
done:
    if (f) fclose(f);
    free(buf);
    free(htext);
    cJSON_Delete(hdr);
    free(l.v);
    return st;
}

md_status md_synth_write(const char *preset_name, const char *out_dir, uint64_t seed,
                         void (*progress)(double fraction, void *ctx), void *ctx) {
    const preset *c = NULL;
    for (size_t i = 0; i < sizeof k_presets / sizeof *k_presets; i++)
        if (preset_name && strcmp(k_presets[i].name, preset_name) == 0) c = &k_presets[i];
    if (!c) return md_fail(MD_ERR_INVALID_ARG, "unknown preset '%s' (known: tiny, qwen3.5-0.8b)", preset_name ? preset_name : "");
    md_status st = md_make_dirs(out_dir);
    if (st != MD_OK) return st;
    st = write_config(c, out_dir);
    if (st == MD_OK) st = write_tokenizer(c, out_dir);
    if (st == MD_OK) st = write_weights(c, out_dir, seed, progress, ctx);
    return st;
}
