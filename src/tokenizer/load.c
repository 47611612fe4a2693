/*
 * load.c — reads a Hugging Face tokenizer.json into md_tokenizer.
 *
 * Supported (the Qwen, GPT-2 and Llama-3 kind): model BPE over the ByteLevel
 * alphabet (merges as "a b" strings or [a, b] pairs, ignore_merges, no
 * dropout, no byte_fallback, no subword prefix/suffix); normalizer none or
 * NFC; pre_tokenizer Split (a Regex or a String, behaviour Isolated, not
 * inverted) and ByteLevel (add_prefix_space false; use_regex adds GPT-2's
 * split), alone or in a Sequence; decoder ByteLevel. Anything else fails with
 * MD_ERR_UNSUPPORTED naming the field, rather than tokenizing differently from
 * the reference. post_processor, truncation and padding are ignored: encode
 * never adds tokens of its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/json.h"
#include "common/mapped_file.h"
#include "common/status.h"
#include "tokenizer/json_scan.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

/* GPT-2's split, used by ByteLevel when use_regex is true (it is part of
 * that component's definition, not of the file). */
static const char k_gpt2_regex[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

uint32_t md_byte_level_cp(uint8_t b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    if (b <= 0x20) return 256u + b;                 /* 33 control/space bytes */
    if (b >= 0x7F && b <= 0xA0) return 289u + (b - 0x7Fu); /* 34 more */
    return 323;                                     /* 0xAD, soft hyphen */
}

int md_byte_level_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp >= 256 && cp <= 288) return (int)(cp - 256);
    if (cp >= 289 && cp <= 322) return (int)(cp - 289 + 0x7F);
    if (cp == 323) return 0xAD;
    return -1;
}

/* ---------------------------------------------------------------- arena */

static md_status arena_reserve(md_tokenizer_t *t, size_t extra) {
    if (t->arena_len + extra <= t->arena_cap) return MD_OK;
    if (t->arena_fixed) return md_fail(MD_ERR_FORMAT, "%s: internal error: string arena undersized", t->path);
    size_t cap = t->arena_cap ? t->arena_cap : 1 << 16;
    while (cap < t->arena_len + extra) cap *= 2;
    char *a = realloc(t->arena, cap);
    if (!a) return md_fail(MD_ERR_OUT_OF_MEMORY, "%s: out of memory", t->path);
    t->arena = a;
    t->arena_cap = cap;
    return MD_OK;
}

/* Copies n bytes into the arena (NUL-terminated) and returns their offset. */
static md_status arena_push(md_tokenizer_t *t, const void *p, size_t n, uint32_t *off) {
    md_status st = arena_reserve(t, n + 1);
    if (st != MD_OK) return st;
    if (t->arena_len + n + 1 > UINT32_MAX) return md_fail(MD_ERR_UNSUPPORTED, "%s: vocabulary too large", t->path);
    *off = (uint32_t)t->arena_len;
    if (n) memcpy(t->arena + t->arena_len, p, n);
    t->arena[t->arena_len + n] = 0;
    t->arena_len += n + 1;
    return MD_OK;
}

/* The bytes a token string stands for: each character mapped back through the
 * ByteLevel alphabet, or the string's own bytes when some character is not in
 * it (HF's ByteLevel decoder does the same per token). Writes to out (>= n
 * bytes); returns the length; *mapped tells which case it was. */
static size_t byte_level_decode(const char *s, size_t n, uint8_t *out, bool *mapped) {
    size_t i = 0, k = 0;
    while (i < n) {
        uint32_t cp;
        int len = md_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        int b = len ? md_byte_level_byte(cp) : -1;
        if (b < 0) {
            memcpy(out, s, n);
            *mapped = false;
            return n;
        }
        out[k++] = (uint8_t)b;
        i += (size_t)len;
    }
    *mapped = true;
    return k;
}

/* Records the string and the decoded bytes of id (the later call wins, so
 * added tokens, processed last, override the vocabulary as in HF). */
static md_status set_token(md_tokenizer_t *t, int32_t id, const char *s, size_t n, uint8_t flags, uint8_t *scratch) {
    md_status st;
    bool mapped;
    uint32_t off;
    if ((st = arena_push(t, s, n, &off)) != MD_OK) return st;
    t->str_off[id] = off;
    t->str_len[id] = (uint32_t)n;
    size_t k = byte_level_decode(t->arena + off, n, scratch, &mapped);
    if (mapped) {
        if ((st = arena_push(t, scratch, k, &off)) != MD_OK) return st;
    }
    t->dec_off[id] = off; /* unmapped: the string itself */
    t->dec_len[id] = (uint32_t)k;
    t->flags[id] = flags;
    return MD_OK;
}

/* ---------------------------------------------------------------- components */

static bool str_is(const cJSON *o, const char *key, const char *value) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(it) && strcmp(it->valuestring, value) == 0;
}

static const char *type_of(const cJSON *o) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(it) ? it->valuestring : "(none)";
}

static md_status add_split(md_tokenizer_t *t, const char *pattern, bool literal, const char *where) {
    pcre2_code **v = realloc(t->split, (size_t)(t->n_split + 1) * sizeof *v);
    if (!v) return md_fail(MD_ERR_OUT_OF_MEMORY, "%s: out of memory", t->path);
    t->split = v;
    md_status st = md_pretok_compile(pattern, literal, where, &t->split[t->n_split]);
    if (st == MD_OK) t->n_split++;
    return st;
}

static md_status load_normalizer(md_tokenizer_t *t, const cJSON *n) {
    if (!n || cJSON_IsNull(n)) return MD_OK;
    if (str_is(n, "type", "NFC")) {
        t->nfc = true;
        return MD_OK;
    }
    if (str_is(n, "type", "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers"), *it;
        if (!cJSON_IsArray(list)) return md_fail(MD_ERR_FORMAT, "%s: normalizer.normalizers must be a list", t->path);
        cJSON_ArrayForEach(it, list) {
            md_status st = load_normalizer(t, it);
            if (st != MD_OK) return st;
        }
        return MD_OK;
    }
    return md_fail(MD_ERR_UNSUPPORTED, "%s: normalizer type '%s' is not supported (supported: NFC or none)", t->path,
                   type_of(n));
}

static md_status load_pre_tokenizer(md_tokenizer_t *t, const cJSON *p, bool *byte_level) {
    md_status st;
    char where[64];
    if (!p || cJSON_IsNull(p)) return MD_OK;
    if (str_is(p, "type", "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"), *it;
        if (!cJSON_IsArray(list)) return md_fail(MD_ERR_FORMAT, "%s: pre_tokenizer.pretokenizers must be a list", t->path);
        cJSON_ArrayForEach(it, list) {
            if ((st = load_pre_tokenizer(t, it, byte_level)) != MD_OK) return st;
        }
        return MD_OK;
    }
    if (str_is(p, "type", "ByteLevel")) {
        const cJSON *aps = cJSON_GetObjectItemCaseSensitive(p, "add_prefix_space");
        const cJSON *ure = cJSON_GetObjectItemCaseSensitive(p, "use_regex");
        if (cJSON_IsTrue(aps))
            return md_fail(MD_ERR_UNSUPPORTED, "%s: pre_tokenizer ByteLevel with add_prefix_space true is not supported", t->path);
        *byte_level = true;
        if (!ure || cJSON_IsTrue(ure)) /* HF's default is true */
            return add_split(t, k_gpt2_regex, false, "ByteLevel (GPT-2 regex)");
        return MD_OK;
    }
    if (str_is(p, "type", "Split")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *lit = cJSON_GetObjectItemCaseSensitive(pat, "String");
        if (!str_is(p, "behavior", "Isolated"))
            return md_fail(MD_ERR_UNSUPPORTED, "%s: pre_tokenizer Split behavior '%s' is not supported (supported: Isolated)",
                           t->path, cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "behavior"))
                                        ? cJSON_GetObjectItemCaseSensitive(p, "behavior")->valuestring : "(none)");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "invert")))
            return md_fail(MD_ERR_UNSUPPORTED, "%s: pre_tokenizer Split with invert true is not supported", t->path);
        snprintf(where, sizeof where, "pre_tokenizer Split %d", t->n_split);
        if (cJSON_IsString(re)) return add_split(t, re->valuestring, false, where);
        if (cJSON_IsString(lit)) return add_split(t, lit->valuestring, true, where);
        return md_fail(MD_ERR_FORMAT, "%s: pre_tokenizer Split needs pattern.Regex or pattern.String", t->path);
    }
    return md_fail(MD_ERR_UNSUPPORTED,
                   "%s: pre_tokenizer type '%s' is not supported (supported: Split, ByteLevel, Sequence of them)", t->path,
                   type_of(p));
}

static md_status check_decoder(const md_tokenizer_t *t, const cJSON *d) {
    if (str_is(d, "type", "ByteLevel")) return MD_OK;
    if (str_is(d, "type", "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(d, "decoders"), *it;
        int n = 0;
        cJSON_ArrayForEach(it, list) {
            md_status st = check_decoder(t, it);
            if (st != MD_OK) return st;
            n++;
        }
        if (n) return MD_OK;
    }
    return md_fail(MD_ERR_UNSUPPORTED, "%s: decoder type '%s' is not supported (supported: ByteLevel)", t->path,
                   d ? type_of(d) : "(none)");
}

static md_status check_model_options(const md_tokenizer_t *t, const cJSON *m) {
    const cJSON *it;
    if ((it = cJSON_GetObjectItemCaseSensitive(m, "dropout")) && !cJSON_IsNull(it) &&
        !(cJSON_IsNumber(it) && it->valuedouble == 0.0))
        return md_fail(MD_ERR_UNSUPPORTED, "%s: model.dropout is not supported", t->path);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "byte_fallback")))
        return md_fail(MD_ERR_UNSUPPORTED, "%s: model.byte_fallback is not supported (not a byte-level BPE)", t->path);
    const char *keys[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        it = cJSON_GetObjectItemCaseSensitive(m, keys[i]);
        if (it && !cJSON_IsNull(it) && !(cJSON_IsString(it) && it->valuestring[0] == 0))
            return md_fail(MD_ERR_UNSUPPORTED, "%s: model.%s is not supported", t->path, keys[i]);
    }
    return MD_OK;
}

/* ---------------------------------------------------------------- ids */

static md_status get_id(const md_tokenizer_t *t, const cJSON *v, const char *what, int32_t *id) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= (double)(1 << 28) ||
        v->valuedouble != (double)(int32_t)v->valuedouble)
        return md_fail(MD_ERR_FORMAT, "%s: %s must have a non-negative integer id", t->path, what);
    *id = (int32_t)v->valuedouble;
    return MD_OK;
}

/* Sizes the per-id tables for ids 0..n-1, keeping what they hold. */
static md_status grow_ids(md_tokenizer_t *t, int32_t n) {
    if (n <= t->n_ids) return MD_OK;
    const size_t old = (size_t)t->n_ids, k = (size_t)n;
    uint32_t *a = realloc(t->dec_off, k * sizeof *a);
    if (a) t->dec_off = a;
    uint32_t *b = a ? realloc(t->dec_len, k * sizeof *b) : NULL;
    if (b) t->dec_len = b;
    uint32_t *c = b ? realloc(t->str_off, k * sizeof *c) : NULL;
    if (c) t->str_off = c;
    uint32_t *d = c ? realloc(t->str_len, k * sizeof *d) : NULL;
    if (d) t->str_len = d;
    uint8_t *f = d ? realloc(t->flags, k) : NULL;
    if (!f) return md_fail(MD_ERR_OUT_OF_MEMORY, "%s: out of memory", t->path);
    t->flags = f;
    memset(t->flags + old, 0, k - old); /* ids in between are holes */
    t->n_ids = n;
    return MD_OK;
}

/* One vocabulary entry while reading: its string sits in the arena. */
typedef struct vocab_entry {
    uint32_t off, len;
    int32_t id;
} vocab_entry;

static md_status scan_error(const md_tokenizer_t *t, const char *what, const char *at, const char *text) {
    return md_fail(MD_ERR_FORMAT, "%s: %s is malformed near byte %zu", t->path, what, (size_t)(at - text));
}

/* Reads model.vocab (the object at v: "token": id, ...) with the bulk reader,
 * strings straight into the arena, and fills the id tables and the string
 * map. *v_end receives the end of the object. */
static md_status load_vocab(md_tokenizer_t *t, const char *v, const char *end, const char *text, const char **v_end) {
    md_status st = MD_OK;
    vocab_entry *e = NULL;
    size_t n = 0, cap = 0, longest = 0;
    int32_t max_id = -1;
    const char *p = md_jscan_ws(v + 1, end); /* after '{' */
    while (p < end && *p != '}') {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            vocab_entry *ne = realloc(e, cap * sizeof *ne);
            if (!ne) {
                st = md_fail(MD_ERR_OUT_OF_MEMORY, "%s: out of memory", t->path);
                break;
            }
            e = ne;
        }
        size_t len;
        const char *q = md_jscan_string(p, end, t->arena + t->arena_len, t->arena_cap - t->arena_len, &len);
        if (q) q = md_jscan_ws(q, end);
        int64_t x = -1;
        q = q && q < end && *q == ':' ? md_jscan_uint(q + 1, end, &x) : NULL;
        if (!q || x >= (1 << 28)) {
            st = scan_error(t, "model.vocab (an entry must be \"token\": id)", p, text);
            break;
        }
        e[n++] = (vocab_entry){.off = (uint32_t)t->arena_len, .len = (uint32_t)len, .id = (int32_t)x};
        t->arena_len += len + 1;
        if (len > longest) longest = len;
        if (x > max_id) max_id = (int32_t)x;
        p = md_jscan_ws(q, end);
        if (p < end && *p == ',') p = md_jscan_ws(p + 1, end);
        else if (p >= end || *p != '}') {
            st = scan_error(t, "model.vocab", p, text);
            break;
        }
    }
    if (st == MD_OK && p >= end) st = scan_error(t, "model.vocab", p, text);
    if (st == MD_OK && max_id < 0) st = md_fail(MD_ERR_FORMAT, "%s: model.vocab is empty", t->path);
    if (st == MD_OK) st = grow_ids(t, max_id + 1);
    if (st == MD_OK) st = md_str_map_init(&t->tokens, t->arena, n + 1024);
    uint8_t *scratch = st == MD_OK ? malloc(longest + 1) : NULL;
    if (st == MD_OK && !scratch) st = md_fail(MD_ERR_OUT_OF_MEMORY, "%s: out of memory", t->path);
    enum { AHEAD = 16 }; /* table slots are fetched this many entries ahead */
    for (size_t i = 0; i < n && i < AHEAD; i++)
        md_str_map_prefetch(&t->tokens, md_hash_bytes(t->arena + e[i].off, e[i].len));
    for (size_t i = 0; i < n && st == MD_OK; i++) {
        if (i + AHEAD < n) md_str_map_prefetch(&t->tokens, md_hash_bytes(t->arena + e[i + AHEAD].off, e[i + AHEAD].len));
        const char *str = t->arena + e[i].off;
        bool mapped;
        const int32_t tid = e[i].id;
        t->str_off[tid] = e[i].off;
        t->str_len[tid] = e[i].len;
        t->flags[tid] = MD_TOK_PRESENT;
        size_t k = byte_level_decode(str, e[i].len, scratch, &mapped);
        uint32_t off = e[i].off;
        if (mapped && (st = arena_push(t, scratch, k, &off)) != MD_OK) break;
        t->dec_off[tid] = off;
        t->dec_len[tid] = (uint32_t)k;
        if ((st = md_str_map_put(&t->tokens, e[i].off, e[i].len, tid)) != MD_OK) break;
        uint32_t cp;
        int len = md_utf8_decode((const uint8_t *)str, e[i].len, &cp);
        if (len > 0 && (uint32_t)len == e[i].len && md_byte_level_byte(cp) >= 0) t->byte_id[md_byte_level_byte(cp)] = tid;
    }
    free(scratch);
    free(e);
    *v_end = p < end ? p + 1 : end;
    return st;
}

/* Reads one merge at p: "a b" (split at its single space) or ["a", "b"].
 * buf (cap bytes) receives both; *a and *b point into it. */
static const char *merge_parts(const char *p, const char *end, char *buf, size_t cap, const char **a, size_t *na,
                               const char **b, size_t *nb) {
    size_t len;
    if (*p == '"') {
        const char *q = md_jscan_string(p, end, buf, cap, &len);
        if (!q) return NULL;
        char *sp = memchr(buf, ' ', len);
        if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - buf))) return NULL;
        *sp = 0;
        *a = buf, *na = (size_t)(sp - buf);
        *b = sp + 1, *nb = len - *na - 1;
        return q;
    }
    if (*p != '[') return NULL;
    const char *q = md_jscan_string(md_jscan_ws(p + 1, end), end, buf, cap, na);
    if (!q || *(q = md_jscan_ws(q, end)) != ',') return NULL;
    *a = buf;
    char *second = buf + *na + 1;
    q = md_jscan_string(md_jscan_ws(q + 1, end), end, second, cap - *na - 1, nb);
    if (!q || *(q = md_jscan_ws(q, end)) != ']') return NULL;
    *b = second;
    return q + 1;
}

/* A batch of merges read but not yet resolved: their lookups are announced
 * (prefetched) together, so the cache misses of 150k-250k merges overlap. */
enum { MERGE_BATCH = 32 };
typedef struct merge_batch {
    int n;
    uint32_t a_off[MERGE_BATCH], b_off[MERGE_BATCH]; /* into buf */
    uint32_t na[MERGE_BATCH], nb[MERGE_BATCH];
    uint64_t ha[MERGE_BATCH], hb[MERGE_BATCH];
    int32_t ia[MERGE_BATCH], ib[MERGE_BATCH];
    size_t used;
    char buf[MERGE_BATCH * 64 + 8192];
} merge_batch;

static md_status flush_merges(md_tokenizer_t *t, merge_batch *mb, int32_t *rank, int32_t *prev) {
    md_status st;
    char joined[8192];
    for (int i = 0; i < mb->n; i++) {
        mb->ia[i] = md_str_map_get_h(&t->tokens, mb->buf + mb->a_off[i], mb->na[i], mb->ha[i]);
        mb->ib[i] = md_str_map_get_h(&t->tokens, mb->buf + mb->b_off[i], mb->nb[i], mb->hb[i]);
        md_merge_map_prefetch(&t->merges, mb->ia[i], mb->ib[i]);
    }
    for (int i = 0; i < mb->n; i++, (*rank)++) {
        const char *a = mb->buf + mb->a_off[i], *b = mb->buf + mb->b_off[i];
        const size_t na = mb->na[i], nb = mb->nb[i];
        /* trained files number merged tokens in merge order: try the id after the
         * previous result before hashing the joined string */
        int32_t ij = *prev + 1;
        if (!(ij >= 0 && ij < t->n_ids && (t->flags[ij] & MD_TOK_PRESENT) && t->str_len[ij] == na + nb &&
              memcmp(t->arena + t->str_off[ij], a, na) == 0 && memcmp(t->arena + t->str_off[ij] + na, b, nb) == 0)) {
            memcpy(joined, a, na);
            memcpy(joined + na, b, nb);
            ij = md_str_map_get(&t->tokens, joined, na + nb);
        }
        *prev = ij;
        if (mb->ia[i] < 0 || mb->ib[i] < 0 || ij < 0)
            return md_fail(MD_ERR_FORMAT, "%s: model.merges[%d] ('%s' '%s'): a token of it is not in the vocabulary",
                           t->path, *rank, a, b);
        if ((st = md_merge_map_put(&t->merges, mb->ia[i], mb->ib[i], *rank, ij)) != MD_OK) return st;
    }
    mb->n = 0;
    mb->used = 0;
    return MD_OK;
}

/* Reads model.merges (the list at g) into the merge table; needs the
 * vocabulary. *g_end receives the end of the list. */
static md_status load_merges(md_tokenizer_t *t, const char *g, const char *end, const char *text, const char **g_end) {
    /* a guess from the vocabulary (trained files have about one merge per token); the table grows if short */
    md_status st = md_merge_map_init(&t->merges, (size_t)t->n_ids + 16);
    merge_batch *mb = st == MD_OK ? malloc(sizeof *mb) : NULL;
    if (st == MD_OK && !mb) st = md_fail(MD_ERR_OUT_OF_MEMORY, "%s: out of memory", t->path);
    if (st != MD_OK) return st;
    mb->n = 0;
    mb->used = 0;
    int32_t rank = 0, prev = -2, seen = 0;
    const char *p = md_jscan_ws(g + 1, end); /* after '[' */
    while (st == MD_OK && p < end && *p != ']') {
        if (mb->n == MERGE_BATCH || sizeof mb->buf - mb->used < 4096) {
            if ((st = flush_merges(t, mb, &rank, &prev)) != MD_OK) break;
        }
        const char *a, *b;
        size_t na, nb;
        const char *q = merge_parts(p, end, mb->buf + mb->used, sizeof mb->buf - mb->used, &a, &na, &b, &nb);
        if (!q) {
            st = md_fail(MD_ERR_FORMAT, "%s: model.merges[%d] is not a pair of tokens (or too long)", t->path, seen);
            break;
        }
        const int k = mb->n++;
        mb->a_off[k] = (uint32_t)(a - mb->buf), mb->na[k] = (uint32_t)na;
        mb->b_off[k] = (uint32_t)(b - mb->buf), mb->nb[k] = (uint32_t)nb;
        mb->used = (size_t)(b + nb + 1 - mb->buf);
        mb->ha[k] = md_hash_bytes(a, na);
        mb->hb[k] = md_hash_bytes(b, nb);
        md_str_map_prefetch(&t->tokens, mb->ha[k]);
        md_str_map_prefetch(&t->tokens, mb->hb[k]);
        seen++;
        p = md_jscan_ws(q, end);
        if (p < end && *p == ',') p = md_jscan_ws(p + 1, end);
        else if (p >= end || *p != ']') st = scan_error(t, "model.merges", p, text);
    }
    if (st == MD_OK) st = flush_merges(t, mb, &rank, &prev);
    free(mb);
    if (st == MD_OK && p >= end) st = scan_error(t, "model.merges", p, text);
    if (st == MD_OK) *g_end = p + 1;
    return st;
}

static md_status load_added(md_tokenizer_t *t, const cJSON *added) {
    md_status st = MD_OK;
    const int n = cJSON_GetArraySize(added);
    if (n == 0) return md_added_sets_build(t);
    const cJSON *it;
    int32_t max_id = -1, id = 0;
    cJSON_ArrayForEach(it, added) {
        if ((st = get_id(t, cJSON_GetObjectItemCaseSensitive(it, "id"), "added_tokens entry", &id)) != MD_OK) return st;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsString(c) || !c->valuestring[0])
            return md_fail(MD_ERR_FORMAT, "%s: added_tokens entry %d has no content", t->path, id);
        if (id > max_id) max_id = id;
    }
    if ((st = grow_ids(t, max_id + 1)) != MD_OK) return st;
    t->added = calloc((size_t)n, sizeof *t->added);
    uint32_t *content_off = calloc((size_t)n, sizeof *content_off), *pattern_off = calloc((size_t)n, sizeof *pattern_off);
    uint8_t *scratch = NULL;
    if (!t->added || !content_off || !pattern_off) {
        st = md_fail(MD_ERR_OUT_OF_MEMORY, "%s: out of memory", t->path);
        goto done;
    }
    cJSON_ArrayForEach(it, added) {
        md_added_token *a = &t->added[t->n_added];
        const char *content = cJSON_GetObjectItemCaseSensitive(it, "content")->valuestring;
        const size_t len = strlen(content);
        a->id = (int32_t)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
        a->len = (uint32_t)len;
        a->special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special"));
        a->lstrip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "lstrip"));
        a->rstrip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "rstrip"));
        a->single_word = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "single_word"));
        const cJSON *norm = cJSON_GetObjectItemCaseSensitive(it, "normalized");
        a->normalized = norm ? cJSON_IsTrue(norm) : !a->special; /* HF's default */
        free(scratch);
        if (!(scratch = malloc(len + 1))) {
            st = md_fail(MD_ERR_OUT_OF_MEMORY, "%s: out of memory", t->path);
            goto done;
        }
        const uint8_t flags = MD_TOK_PRESENT | MD_TOK_ADDED | (a->special ? MD_TOK_SPECIAL : 0);
        if ((st = set_token(t, a->id, content, len, flags, scratch)) != MD_OK) goto done;
        content_off[t->n_added] = t->str_off[a->id];
        pattern_off[t->n_added] = content_off[t->n_added];
        a->pattern_len = a->len;
        if (a->normalized && t->nfc) {
            uint8_t *nf = NULL;
            size_t nn = 0;
            if ((st = md_normalize_nfc((const uint8_t *)content, len, &nf, &nn)) != MD_OK) goto done;
            st = arena_push(t, nf ? nf : (const uint8_t *)content, nn, &pattern_off[t->n_added]);
            free(nf);
            if (st != MD_OK) goto done;
            a->pattern_len = (uint32_t)nn;
        }
        t->n_added++;
    }
    for (int i = 0; i < t->n_added; i++) {
        t->added[i].content = t->arena + content_off[i];
        t->added[i].pattern = t->arena + pattern_off[i];
        if ((st = md_str_map_put(&t->tokens, content_off[i], t->added[i].len, t->added[i].id)) != MD_OK) goto done;
    }
    st = md_added_sets_build(t);
done:
    free(scratch);
    free(content_off);
    free(pattern_off);
    return st;
}

/* With ignore_merges a whole pre-token found in the vocabulary is one token:
 * that lookup is by raw bytes. */
static md_status build_word_ids(md_tokenizer_t *t) {
    md_status st = md_str_map_init(&t->word_ids, t->arena, (size_t)t->n_ids);
    for (int32_t id = 0; id < t->n_ids && st == MD_OK; id++)
        if ((t->flags[id] & (MD_TOK_PRESENT | MD_TOK_ADDED)) == MD_TOK_PRESENT)
            st = md_str_map_put(&t->word_ids, t->dec_off[id], t->dec_len[id], id);
    return st;
}

/* Where the bulk members are in the file text (found or not). */
typedef struct bulk {
    const char *vocab, *vocab_end;   /* model.vocab: an object */
    const char *merges, *merges_end; /* model.merges: a list */
} bulk;

/* One pass over the members of "model": model.vocab and model.merges are read
 * in place (merges after the vocabulary, skipped and revisited if they come
 * first); other members are skipped. Only reading errors of those two fail. */
static md_status load_bulk(md_tokenizer_t *t, const char *text, const char *end, bulk *b) {
    md_status st;
    const char *model = md_jscan_member(text, end, "model");
    if (!model || *model != '{') return MD_OK; /* cJSON will say what is wrong */
    const char *p = md_jscan_ws(model + 1, end);
    while (p < end && *p == '"') {
        const char *key = p, *v;
        if (!(p = md_jscan_skip(p, end)) || *(p = md_jscan_ws(p, end)) != ':') return MD_OK;
        v = md_jscan_ws(p + 1, end);
        const bool is_vocab = !strncmp(key, "\"vocab\"", 7), is_merges = !strncmp(key, "\"merges\"", 8);
        if (is_vocab && v < end && *v == '{') {
            b->vocab = v;
            if ((st = load_vocab(t, v, end, text, &p)) != MD_OK) return st;
            b->vocab_end = p;
            if (b->merges && (st = load_merges(t, b->merges, end, text, &b->merges_end)) != MD_OK) return st;
        } else if (is_merges && v < end && *v == '[') {
            b->merges = v;
            if (b->vocab) {
                if ((st = load_merges(t, v, end, text, &p)) != MD_OK) return st;
            } else if (!(p = md_jscan_skip(v, end))) {
                return scan_error(t, "model.merges", v, text);
            }
            b->merges_end = p;
        } else if (!(p = md_jscan_skip(v, end))) {
            return MD_OK;
        }
        p = md_jscan_ws(p, end);
        if (p < end && *p == ',') p = md_jscan_ws(p + 1, end);
        else break;
    }
    return MD_OK;
}

/* Parses the file with cJSON, model.vocab and model.merges (when read) replaced by {} and []. */
static md_status parse_rest(const md_tokenizer_t *t, const char *text, size_t len, const bulk *b, cJSON **root) {
    char *copy = malloc(len + 8);
    if (!copy) return md_fail(MD_ERR_OUT_OF_MEMORY, "%s: out of memory", t->path);
    typedef struct cut {
        const char *p, *end, *with;
    } cut;
    cut cuts[2];
    int n = 0;
    if (b->vocab && b->vocab_end) cuts[n++] = (cut){b->vocab, b->vocab_end, "{}"};
    if (b->merges && b->merges_end) cuts[n++] = (cut){b->merges, b->merges_end, "[]"};
    if (n == 2 && cuts[1].p < cuts[0].p) {
        cut x = cuts[0];
        cuts[0] = cuts[1];
        cuts[1] = x;
    }
    size_t k = 0;
    const char *p = text;
    for (int i = 0; i < n; i++) {
        memcpy(copy + k, p, (size_t)(cuts[i].p - p)), k += (size_t)(cuts[i].p - p);
        memcpy(copy + k, cuts[i].with, 2), k += 2;
        p = cuts[i].end;
    }
    memcpy(copy + k, p, (size_t)(text + len - p)), k += (size_t)(text + len - p);
    const char *err = NULL;
    *root = cJSON_ParseWithLengthOpts(copy, k, &err, 0);
    md_status st = MD_OK;
    if (!*root) st = md_fail(MD_ERR_FORMAT, "%s: invalid JSON near byte %zu", t->path, err ? (size_t)(err - copy) : 0);
    else if (!cJSON_IsObject(*root)) st = md_fail(MD_ERR_FORMAT, "%s: top level must be an object", t->path);
    free(copy);
    return st;
}

/* root: the file parsed by cJSON with the bulk members emptied. */
static md_status load_root(md_tokenizer_t *t, const cJSON *root, const bulk *b) {
    md_status st;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return md_fail(MD_ERR_FORMAT, "%s: no 'model' object (not a tokenizer.json?)", t->path);
    const cJSON *mtype = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (mtype && !str_is(model, "type", "BPE"))
        return md_fail(MD_ERR_UNSUPPORTED, "%s: model type '%s' is not supported (supported: BPE)", t->path, type_of(model));
    if (!b->vocab || !b->merges)
        return md_fail(MD_ERR_FORMAT, "%s: model.vocab must be an object and model.merges a list", t->path);
    if ((st = check_model_options(t, model)) != MD_OK) return st;
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        return md_fail(MD_ERR_FORMAT, "%s: added_tokens must be a list", t->path);
    if (cJSON_IsNull(added)) added = NULL;

    if ((st = load_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"))) != MD_OK) return st;
    bool byte_level = false;
    if ((st = load_pre_tokenizer(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), &byte_level)) != MD_OK)
        return st;
    if (!byte_level)
        return md_fail(MD_ERR_UNSUPPORTED, "%s: the pre_tokenizer has no ByteLevel step (only byte-level BPE is supported)",
                       t->path);
    if ((st = check_decoder(t, cJSON_GetObjectItemCaseSensitive(root, "decoder"))) != MD_OK) return st;

    if ((st = load_added(t, added)) != MD_OK) return st;

    t->unk_id = -1;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (cJSON_IsString(unk)) t->unk_id = md_str_map_get(&t->tokens, unk->valuestring, strlen(unk->valuestring));
    t->ignore_merges = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "ignore_merges"));
    if (t->ignore_merges && (st = build_word_ids(t)) != MD_OK) return st;
    return md_bpe_cache_init(&t->cache);
}

md_status md_tokenizer_load(const char *path, md_tokenizer_t **out) {
    *out = NULL;
    if (!path) return md_fail(MD_ERR_INVALID_ARG, "md_tokenizer_load: no path");
    if (!md_file_exists(path)) return md_fail(MD_ERR_IO, "%s: tokenizer file not found", path);
    md_tokenizer_t *t = calloc(1, sizeof *t);
    if (!t || !(t->path = strdup(path))) {
        free(t);
        return md_fail(MD_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    md_mapped_file f = {0};
    cJSON *root = NULL;
    md_status st = md_mapped_file_open(path, &f);
    if (st == MD_OK && f.size == 0) st = md_fail(MD_ERR_FORMAT, "%s: empty file", path);
    if (st == MD_OK) {
        const char *text = (const char *)f.data, *end = text + f.size;
        madvise((void *)f.data, f.size, MADV_SEQUENTIAL | MADV_WILLNEED);
        /* every string is stored with its decoded bytes (2x its size in the
         * file at most), added tokens also with their NFC form (3x more): 5x
         * the file bounds it. Reserved once, as the string tables point into
         * the arena; pages never written are never touched. */
        st = arena_reserve(t, 5 * f.size + 64);
        t->arena_fixed = true;
        bulk b = {0};
        if (st == MD_OK) st = load_bulk(t, text, end, &b);
        if (st == MD_OK) st = parse_rest(t, text, f.size, &b, &root);
        if (st == MD_OK) st = load_root(t, root, &b);
    }
    cJSON_Delete(root);
    md_mapped_file_close(&f);
    if (st != MD_OK) {
        md_tokenizer_free(t);
        return st;
    }
    *out = t;
    return MD_OK;
}

md_status md_tokenizer_load_dir(const char *model_dir, md_tokenizer_t **out) {
    *out = NULL;
    if (!model_dir) return md_fail(MD_ERR_INVALID_ARG, "md_tokenizer_load_dir: no directory");
    char path[4096];
    if (snprintf(path, sizeof path, "%s/tokenizer.json", model_dir) >= (int)sizeof path)
        return md_fail(MD_ERR_INVALID_ARG, "%s: path too long", model_dir);
    if (!md_file_exists(path))
        return md_fail(MD_ERR_IO, "%s: no tokenizer.json in the model directory (give one with --tokenizer FILE)", model_dir);
    return md_tokenizer_load(path, out);
}

void md_tokenizer_free(md_tokenizer_t *t) {
    if (!t) return;
    for (int i = 0; i < t->n_split; i++) pcre2_code_free(t->split[i]);
    free(t->split);
    free(t->raw_set.index);
    free(t->norm_set.index);
    free(t->added);
    md_merge_map_free(&t->merges);
    md_str_map_free(&t->tokens);
    md_str_map_free(&t->word_ids);
    md_bpe_cache_free(&t->cache);
    free(t->dec_off);
    free(t->dec_len);
    free(t->str_off);
    free(t->str_len);
    free(t->flags);
    free(t->arena);
    free(t->path);
    free(t);
}

/* ---------------------------------------------------------------- lookups */

int md_tokenizer_n_vocab(const md_tokenizer_t *tok) { return tok ? tok->n_ids : 0; }

int32_t md_tokenizer_token_id(const md_tokenizer_t *tok, const char *token) {
    if (!tok || !token) return -1;
    return md_str_map_get(&tok->tokens, token, strlen(token));
}

const char *md_tokenizer_token_str(const md_tokenizer_t *tok, int32_t id) {
    if (!tok || id < 0 || id >= tok->n_ids || !(tok->flags[id] & MD_TOK_PRESENT)) return NULL;
    return tok->arena + tok->str_off[id];
}

bool md_tokenizer_is_special(const md_tokenizer_t *tok, int32_t id) {
    return tok && id >= 0 && id < tok->n_ids && (tok->flags[id] & MD_TOK_SPECIAL);
}
