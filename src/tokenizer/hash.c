/*
 * hash.c — open-addressing tables for the tokenizer (see hash.h).
 */
#include "tokenizer/hash.h"

#include <stdlib.h>
#include <string.h>

#include "common/status.h"

/* FNV-1a over 8-byte words then bytes, finished with a murmur-style mix:
 * fast for the short keys here, and the mix spreads the low bits the mask uses. */
uint64_t md_hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    while (n--) h = (h ^ *s++) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* Room for expected keys at a load factor of at most 2/3 (linear probing
 * stays short there, and smaller tables mean fewer cache misses at load). */
static size_t table_size(size_t expected) {
    size_t n = 16;
    while (n < expected + expected / 2) n <<= 1;
    return n;
}

md_status md_str_map_init(md_str_map *m, const char *base, size_t expected) {
    const size_t n = table_size(expected);
    m->base = base;
    m->slots = malloc(n * sizeof *m->slots);
    m->mask = n - 1;
    m->count = 0;
    if (!m->slots) return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    for (size_t i = 0; i < n; i++) m->slots[i].value = -1;
    return MD_OK;
}

void md_str_map_free(md_str_map *m) {
    free(m->slots);
    m->slots = NULL;
}

md_status md_str_map_put_h(md_str_map *m, uint32_t off, size_t len, int32_t value, uint64_t h) {
    const char *key = m->base + off;
    const uint32_t tag = (uint32_t)(h >> 32);
    size_t i = h & m->mask;
    for (size_t probes = 0; probes <= m->mask; probes++, i = (i + 1) & m->mask) {
        md_str_entry *e = &m->slots[i];
        if (e->value < 0) {
            if (m->count * 4 >= m->mask * 3) break; /* keep the load factor below 3/4 */
            *e = (md_str_entry){.off = off, .len = (uint32_t)len, .value = value, .tag = tag};
            m->count++;
            return MD_OK;
        }
        if (e->tag == tag && e->len == len && memcmp(m->base + e->off, key, len) == 0) {
            e->value = value;
            return MD_OK;
        }
    }
    return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: string table full");
}

md_status md_str_map_put(md_str_map *m, uint32_t off, size_t len, int32_t value) {
    return md_str_map_put_h(m, off, len, value, md_hash_bytes(m->base + off, len));
}

int32_t md_str_map_get_h(const md_str_map *m, const char *key, size_t len, uint64_t h) {
    const uint32_t tag = (uint32_t)(h >> 32);
    size_t i = h & m->mask;
    for (;;) {
        const md_str_entry *e = &m->slots[i];
        if (e->value < 0) return -1;
        if (e->tag == tag && e->len == len && memcmp(m->base + e->off, key, len) == 0) return e->value;
        i = (i + 1) & m->mask;
    }
}

int32_t md_str_map_get(const md_str_map *m, const char *key, size_t len) {
    return md_str_map_get_h(m, key, len, md_hash_bytes(key, len));
}

void md_str_map_prefetch(const md_str_map *m, uint64_t h) { __builtin_prefetch(&m->slots[h & m->mask]); }

static size_t pair_slot(uint64_t pair, size_t mask) {
    uint64_t h = pair * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 20) & mask;
}

md_status md_merge_map_init(md_merge_map *m, size_t expected) {
    const size_t n = table_size(expected);
    m->slots = malloc(n * sizeof *m->slots);
    if (!m->slots) return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    for (size_t i = 0; i < n; i++) m->slots[i].pair = UINT64_MAX;
    m->mask = n - 1;
    m->count = 0;
    return MD_OK;
}

void md_merge_map_free(md_merge_map *m) {
    free(m->slots);
    m->slots = NULL;
}

static void merge_insert(md_merge *slots, size_t mask, md_merge e, size_t *count) {
    size_t i = pair_slot(e.pair, mask);
    while (slots[i].pair != UINT64_MAX && slots[i].pair != e.pair) i = (i + 1) & mask;
    if (slots[i].pair == UINT64_MAX) (*count)++;
    slots[i] = e;
}

md_status md_merge_map_put(md_merge_map *m, int32_t left, int32_t right, int32_t rank, int32_t result) {
    if ((m->count + 1) * 3 > (m->mask + 1) * 2) { /* past 2/3 full: rehash into twice the slots */
        const size_t n = (m->mask + 1) * 2;
        md_merge *slots = malloc(n * sizeof *slots);
        if (!slots) return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        for (size_t i = 0; i < n; i++) slots[i].pair = UINT64_MAX;
        size_t count = 0;
        for (size_t i = 0; i <= m->mask; i++)
            if (m->slots[i].pair != UINT64_MAX) merge_insert(slots, n - 1, m->slots[i], &count);
        free(m->slots);
        m->slots = slots;
        m->mask = n - 1;
        m->count = count;
    }
    const uint64_t pair = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    merge_insert(m->slots, m->mask, (md_merge){.pair = pair, .rank = rank, .result = result}, &m->count);
    return MD_OK;
}

const md_merge *md_merge_map_get(const md_merge_map *m, int32_t left, int32_t right) {
    const uint64_t pair = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t i = pair_slot(pair, m->mask);
    for (;;) {
        const md_merge *e = &m->slots[i];
        if (e->pair == pair) return e;
        if (e->pair == UINT64_MAX) return NULL;
        i = (i + 1) & m->mask;
    }
}

void md_merge_map_prefetch(const md_merge_map *m, int32_t left, int32_t right) {
    const uint64_t pair = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    __builtin_prefetch(&m->slots[pair_slot(pair, m->mask)], 1);
}
