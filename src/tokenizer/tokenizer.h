/*
 * tokenizer.h — the tokenizer object shared by the files of src/tokenizer/:
 * load.c fills it from tokenizer.json (json_scan.c reads the bulk vocabulary
 * and merges, cJSON the rest), encode.c runs the pipeline
 * (added tokens -> NFC -> regex split -> byte-level BPE), decode.c maps ids
 * back to text. Internal; the public API is in megadelta.h.
 *
 * Encoding works on raw bytes throughout: the ByteLevel alphabet (bytes shown
 * as printable characters, "Ġ" for a space) exists only in the vocabulary
 * strings of the file, and load.c converts those strings to the bytes they
 * stand for. BPE then starts from one symbol per byte, which is what HF does
 * after its ByteLevel pre-tokenizer maps each byte to its character.
 */
#ifndef MD_TOKENIZER_TOKENIZER_H
#define MD_TOKENIZER_TOKENIZER_H

#ifndef PCRE2_CODE_UNIT_WIDTH /* the library sets it; tests including this header may not */
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "megadelta.h"
#include "tokenizer/hash.h"

/* per-id flags */
enum {
    MD_TOK_PRESENT = 1, /* the id has a token (vocabulary or added) */
    MD_TOK_ADDED = 2,   /* listed in added_tokens */
    MD_TOK_SPECIAL = 4, /* an added token with "special": true (skipped by skip_special) */
};

typedef struct md_added_token {
    const char *content; /* raw bytes (arena) */
    uint32_t len;
    const char *pattern; /* what is matched: content, or its NFC form when normalized */
    uint32_t pattern_len;
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
} md_added_token;

/* The added tokens matched in one pass: the raw text (normalized == false) or
 * the normalized pieces (normalized == true). */
typedef struct md_added_set {
    int *index;         /* into md_tokenizer.added */
    int n;
    uint8_t first[256]; /* first[b]: some pattern starts with byte b */
} md_added_set;

/* A cache of BPE results per pre-token (most words repeat). */
typedef struct md_bpe_cache_entry {
    uint64_t hash;
    uint32_t key_off, key_len; /* bytes in the cache's arena */
    uint32_t ids_off, n_ids;   /* ids in the cache's id pool */
} md_bpe_cache_entry;

typedef struct md_bpe_cache {
    pthread_mutex_t lock; /* encode may run on several threads: a busy cache is skipped */
    md_bpe_cache_entry *slots;
    size_t mask, count;
    uint8_t *keys;
    size_t keys_len, keys_cap;
    int32_t *ids;
    size_t ids_len, ids_cap;
} md_bpe_cache;

struct md_tokenizer {
    char *path;               /* the tokenizer.json, for messages */
    char *arena;              /* every string below points into it; sized once */
    size_t arena_len, arena_cap;
    bool arena_fixed;

    int32_t n_ids;            /* one past the largest id */
    uint32_t *dec_off;        /* [n_ids] decoded bytes of each id: arena + dec_off[id] */
    uint32_t *dec_len;        /* [n_ids] */
    uint8_t *flags;           /* [n_ids] MD_TOK_* */
    uint32_t *str_off;        /* [n_ids] the token's string as written in the file */
    uint32_t *str_len;        /* [n_ids] */

    md_str_map tokens;        /* token string as in the file (vocab and added) -> id */
    md_str_map word_ids;      /* raw bytes -> id, only with ignore_merges */
    int32_t byte_id[256];     /* the one-byte symbols BPE starts from (-1: missing) */
    int32_t unk_id;           /* for a missing byte symbol; -1 drops it as HF does */
    bool ignore_merges;       /* a word already in the vocabulary is one token */
    md_merge_map merges;

    md_added_token *added;
    int n_added;
    md_added_set raw_set, norm_set;

    bool nfc;                 /* normalizer: NFC or none */
    pcre2_code **split;       /* the pre-tokenizer's regexes, applied in order */
    int n_split;

    md_bpe_cache cache;
};

/* Added-token matching (added_tokens.c). A match [start, end) may be wider
 * than the token when lstrip/rstrip absorbed whitespace. */
typedef struct md_added_match {
    size_t start, end;
    int32_t id;
} md_added_match;

/* Finds the next added token of set at or after *pos in text[0..n), with HF's
 * rules (leftmost-longest, single_word, lstrip/rstrip, specials skipped when
 * !parse_special). *pos advances past the match; prev_end is where the
 * previous match (or the text) ended, lstrip never reaches before it.
 * Returns false when there is none. */
bool md_added_next(const struct md_tokenizer *tok, const md_added_set *set, const uint8_t *text, size_t n,
                   size_t *pos, size_t prev_end, bool parse_special, md_added_match *m);
md_status md_added_sets_build(struct md_tokenizer *tok);

/* NFC normalization (normalize.c). *out is malloc'd, or NULL when the text is
 * NFC as it stands by a quick check (then use s itself; *out_len = n). */
md_status md_normalize_nfc(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len);

/* Pre-tokenizer regexes (pretokenize.c). */
md_status md_pretok_compile(const char *pattern, bool literal, const char *where, pcre2_code **out);
typedef md_status (*md_piece_fn)(const uint8_t *s, size_t n, void *ctx);
/* Splits s[0..n) with the regexes from index `level` on, calling fn for each
 * piece in order (matches and the text between them: HF's "Isolated"). */
md_status md_pretok_split(const struct md_tokenizer *tok, int level, pcre2_match_data *md, const uint8_t *s,
                          size_t n, md_piece_fn fn, void *ctx);

/* Byte-level BPE of one pre-token (bpe.c); appends to out. */
typedef struct md_ids {
    int32_t *v;
    size_t n, cap;
} md_ids;
md_status md_ids_push(md_ids *a, int32_t id);
typedef struct md_bpe_scratch md_bpe_scratch;
md_status md_bpe_word(struct md_tokenizer *tok, md_bpe_scratch **scratch, const uint8_t *w, size_t n, md_ids *out);
void md_bpe_scratch_free(md_bpe_scratch *s);
md_status md_bpe_cache_init(md_bpe_cache *c);
void md_bpe_cache_free(md_bpe_cache *c);

/* The ByteLevel alphabet (load.c): byte b is written as the code point
 * md_byte_level_cp(b) (printable bytes as themselves, the 68 others as
 * U+0100.. in byte order); md_byte_level_byte maps back (-1: not in it). */
uint32_t md_byte_level_cp(uint8_t b);
int md_byte_level_byte(uint32_t cp);

#endif
