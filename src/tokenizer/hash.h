/*
 * hash.h — the two lookup tables of the tokenizer: byte string -> token id
 * (vocabulary strings, added-token contents) and token-id pair -> merge
 * (BPE merge ranks). Open addressing with linear probing, power-of-two sizes,
 * filled at load (the tables are read-only afterwards, so lookups need no
 * lock). Keys of the string map are offsets into one block the caller keeps
 * alive and in place.
 */
#ifndef MD_TOKENIZER_HASH_H
#define MD_TOKENIZER_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "megadelta.h"

uint64_t md_hash_bytes(const void *p, size_t n);

typedef struct md_str_entry {
    uint32_t off;   /* key: base + off */
    uint32_t len;
    int32_t value;  /* -1: empty slot */
    uint32_t tag;   /* high hash bits: most mismatches are rejected without touching the key */
} md_str_entry;

typedef struct md_str_map {
    const char *base; /* all keys live in this block (the tokenizer's arena), which must not move */
    md_str_entry *slots;
    size_t mask;
    size_t count;
} md_str_map;

md_status md_str_map_init(md_str_map *m, const char *base, size_t expected);
void md_str_map_free(md_str_map *m);
/* Inserts or replaces the key base[off..off+len). Fails only when the table
 * is full (sized too small). value must be >= 0. */
md_status md_str_map_put(md_str_map *m, uint32_t off, size_t len, int32_t value);
/* The value, or -1 when absent. */
int32_t md_str_map_get(const md_str_map *m, const char *key, size_t len);
/* Lookups given the key's hash (md_hash_bytes), and a prefetch of the slot a
 * key will probe first: loading issues many lookups whose cache misses can
 * overlap when they are announced ahead. */
int32_t md_str_map_get_h(const md_str_map *m, const char *key, size_t len, uint64_t h);
md_status md_str_map_put_h(md_str_map *m, uint32_t off, size_t len, int32_t value, uint64_t h);
void md_str_map_prefetch(const md_str_map *m, uint64_t h);

typedef struct md_merge {
    uint64_t pair;  /* left id << 32 | right id; UINT64_MAX: empty slot */
    int32_t rank;   /* position in the merges list: lower merges first */
    int32_t result; /* id of the merged token */
} md_merge;

typedef struct md_merge_map {
    md_merge *slots;
    size_t mask, count; /* grows past a load factor of 2/3 */
} md_merge_map;

md_status md_merge_map_init(md_merge_map *m, size_t expected);
void md_merge_map_free(md_merge_map *m);
/* Inserts or replaces: when a pair repeats in the merges list the later
 * entry wins, as HF's map built from the list does. */
md_status md_merge_map_put(md_merge_map *m, int32_t left, int32_t right, int32_t rank, int32_t result);
const md_merge *md_merge_map_get(const md_merge_map *m, int32_t left, int32_t right);
void md_merge_map_prefetch(const md_merge_map *m, int32_t left, int32_t right);

#endif
