/*
 * bpe.c — byte-level BPE of one pre-token, and the cache of its results.
 *
 * The word starts as one symbol per byte (the vocabulary's one-character
 * tokens of the ByteLevel alphabet). Then, as in HF `tokenizers`, the adjacent
 * pair with the lowest merge rank is merged, the leftmost first among equal
 * ranks, until no adjacent pair has a merge. A binary heap of candidate pairs
 * ordered by (rank, position) makes that O(n log n), so long runs (a thousand
 * spaces, a base64 blob) stay fast; entries made stale by an earlier merge are
 * recognised on pop (the symbols there are no longer that pair) and dropped.
 */
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "tokenizer/tokenizer.h"

typedef struct pair_entry {
    int32_t rank;
    int32_t pos;     /* left symbol */
    int32_t left, right, result;
} pair_entry;

struct md_bpe_scratch {
    int32_t *id, *prev, *next; /* [cap] symbols as a linked list; id -1 = merged away */
    size_t cap;
    pair_entry *heap;
    size_t heap_n, heap_cap;
};

md_status md_ids_push(md_ids *a, int32_t id) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v) return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = id;
    return MD_OK;
}

void md_bpe_scratch_free(md_bpe_scratch *s) {
    if (!s) return;
    free(s->id);
    free(s->prev);
    free(s->next);
    free(s->heap);
    free(s);
}

static md_status scratch_reserve(md_bpe_scratch **sp, size_t n) {
    md_bpe_scratch *s = *sp;
    if (!s && !(s = *sp = calloc(1, sizeof *s))) return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    if (n <= s->cap) return MD_OK;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < n) cap *= 2;
    int32_t *a = realloc(s->id, cap * sizeof *a);
    if (a) s->id = a;
    int32_t *b = a ? realloc(s->prev, cap * sizeof *b) : NULL;
    if (b) s->prev = b;
    int32_t *c = b ? realloc(s->next, cap * sizeof *c) : NULL;
    if (c) s->next = c;
    pair_entry *h = c ? realloc(s->heap, cap * 2 * sizeof *h) : NULL;
    if (!h) return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    s->heap = h;
    s->cap = cap;
    s->heap_cap = cap * 2;
    return MD_OK;
}

static bool entry_less(const pair_entry *a, const pair_entry *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static md_status heap_push(md_bpe_scratch *s, pair_entry e) {
    if (s->heap_n == s->heap_cap) {
        pair_entry *h = realloc(s->heap, s->heap_cap * 2 * sizeof *h);
        if (!h) return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        s->heap = h;
        s->heap_cap *= 2;
    }
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!entry_less(&e, &s->heap[p])) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = e;
    return MD_OK;
}

static pair_entry heap_pop(md_bpe_scratch *s) {
    pair_entry top = s->heap[0], last = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && entry_less(&s->heap[c + 1], &s->heap[c])) c++;
        if (!entry_less(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

/* Queues the pair starting at symbol pos when it has a merge. */
static md_status queue_pair(const md_tokenizer_t *t, md_bpe_scratch *s, int32_t pos) {
    if (pos < 0 || s->next[pos] < 0) return MD_OK;
    const int32_t l = s->id[pos], r = s->id[s->next[pos]];
    const md_merge *m = md_merge_map_get(&t->merges, l, r);
    if (!m) return MD_OK;
    return heap_push(s, (pair_entry){.rank = m->rank, .pos = pos, .left = l, .right = r, .result = m->result});
}

static md_status bpe_merge(const md_tokenizer_t *t, md_bpe_scratch **sp, const uint8_t *w, size_t n, md_ids *out) {
    md_status st = scratch_reserve(sp, n);
    if (st != MD_OK) return st;
    md_bpe_scratch *s = *sp;
    int32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[w[i]];
        if (id < 0) id = t->unk_id;
        if (id < 0) continue; /* no symbol and no unk token: dropped, as HF does */
        s->id[k] = id;
        s->prev[k] = k - 1;
        s->next[k] = k + 1;
        k++;
    }
    if (k == 0) return MD_OK;
    s->next[k - 1] = -1;
    s->heap_n = 0;
    for (int32_t i = 0; i + 1 < k; i++)
        if ((st = queue_pair(t, s, i)) != MD_OK) return st;
    while (s->heap_n) {
        const pair_entry e = heap_pop(s);
        const int32_t r = s->next[e.pos];
        if (s->id[e.pos] != e.left || r < 0 || s->id[r] != e.right) continue; /* stale */
        s->id[e.pos] = e.result;
        s->id[r] = -1;
        s->next[e.pos] = s->next[r];
        if (s->next[r] >= 0) s->prev[s->next[r]] = e.pos;
        if ((st = queue_pair(t, s, s->prev[e.pos])) != MD_OK) return st;
        if ((st = queue_pair(t, s, e.pos)) != MD_OK) return st;
    }
    for (int32_t i = 0; i >= 0; i = s->next[i])
        if ((st = md_ids_push(out, s->id[i])) != MD_OK) return st;
    return MD_OK;
}

/* ---------------------------------------------------------------- cache */

#define CACHE_SLOTS (1u << 17)
#define CACHE_MAX_ENTRIES (CACHE_SLOTS / 2)
#define CACHE_MAX_KEY 256

md_status md_bpe_cache_init(md_bpe_cache *c) {
    memset(c, 0, sizeof *c);
    if (pthread_mutex_init(&c->lock, NULL) != 0) return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: cannot create a lock");
    c->slots = calloc(CACHE_SLOTS, sizeof *c->slots);
    if (!c->slots) {
        pthread_mutex_destroy(&c->lock);
        return md_fail(MD_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    }
    c->mask = CACHE_SLOTS - 1;
    return MD_OK;
}

void md_bpe_cache_free(md_bpe_cache *c) {
    if (!c->slots) return;
    pthread_mutex_destroy(&c->lock);
    free(c->slots);
    free(c->keys);
    free(c->ids);
    memset(c, 0, sizeof *c);
}

static void cache_clear(md_bpe_cache *c) {
    memset(c->slots, 0, CACHE_SLOTS * sizeof *c->slots);
    c->count = c->keys_len = c->ids_len = 0;
}

/* Slot of key, or of the empty slot where it belongs. n_ids == 0 marks empty
 * (a cached word always has at least one id). */
static md_bpe_cache_entry *cache_slot(md_bpe_cache *c, const uint8_t *w, size_t n, uint64_t h) {
    size_t i = h & c->mask;
    for (;;) {
        md_bpe_cache_entry *e = &c->slots[i];
        if (e->n_ids == 0) return e;
        if (e->hash == h && e->key_len == n && memcmp(c->keys + e->key_off, w, n) == 0) return e;
        i = (i + 1) & c->mask;
    }
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap : 1 << 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}

static void cache_put(md_bpe_cache *c, const uint8_t *w, size_t n, uint64_t h, const int32_t *ids, size_t n_ids) {
    if (c->count >= CACHE_MAX_ENTRIES) cache_clear(c); /* simple and bounded */
    if (!grow((void **)&c->keys, &c->keys_cap, c->keys_len + n, 1) ||
        !grow((void **)&c->ids, &c->ids_cap, c->ids_len + n_ids, sizeof *c->ids))
        return; /* a cache that cannot grow just stops caching */
    md_bpe_cache_entry *e = cache_slot(c, w, n, h);
    if (e->n_ids) return;
    memcpy(c->keys + c->keys_len, w, n);
    memcpy(c->ids + c->ids_len, ids, n_ids * sizeof *ids);
    *e = (md_bpe_cache_entry){.hash = h, .key_off = (uint32_t)c->keys_len, .key_len = (uint32_t)n,
                              .ids_off = (uint32_t)c->ids_len, .n_ids = (uint32_t)n_ids};
    c->keys_len += n;
    c->ids_len += n_ids;
    c->count++;
}

md_status md_bpe_word(md_tokenizer_t *t, md_bpe_scratch **scratch, const uint8_t *w, size_t n, md_ids *out) {
    if (t->ignore_merges) {
        const int32_t id = md_str_map_get(&t->word_ids, (const char *)w, n);
        if (id >= 0) return md_ids_push(out, id);
    }
    const bool cacheable = n <= CACHE_MAX_KEY;
    uint64_t h = 0;
    md_bpe_cache *c = &t->cache;
    if (cacheable && pthread_mutex_trylock(&c->lock) == 0) {
        h = md_hash_bytes(w, n);
        const md_bpe_cache_entry *e = cache_slot(c, w, n, h);
        const bool hit = e->n_ids != 0;
        md_status st = MD_OK;
        for (uint32_t i = 0; hit && i < e->n_ids && st == MD_OK; i++) st = md_ids_push(out, c->ids[e->ids_off + i]);
        pthread_mutex_unlock(&c->lock);
        if (hit) return st;
    }
    const size_t first = out->n;
    md_status st = bpe_merge(t, scratch, w, n, out);
    if (st == MD_OK && cacheable && out->n > first && pthread_mutex_trylock(&c->lock) == 0) {
        if (!h) h = md_hash_bytes(w, n);
        cache_put(c, w, n, h, out->v + first, out->n - first);
        pthread_mutex_unlock(&c->lock);
    }
    return st;
}
