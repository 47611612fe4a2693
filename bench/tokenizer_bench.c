/*
 * tokenizer_bench.c — tokenizer speed: load time of a tokenizer.json and
 * encode/decode throughput on English text, on one core. A benchmark, not a
 * test (the numbers depend on the machine); built with the tests as
 * build/tests/tokenizer/tokenizer_bench.
 *
 *   tokenizer_bench [--tokenizer FILE] [--text FILE]... [--grow-to N] [-r R]
 *
 * Defaults: the Qwen3 tokenizer.json from scripts/fetch-test-data.sh (151,669
 * ids), and as English text CMake's own documentation (the *.rst files under
 * CMAKE_ROOT/Help, 2.4 MB, present wherever this project builds). --grow-to N
 * first writes a copy of the tokenizer grown to N ids with extra merged
 * tokens (as large as Qwen3.5's 248,320-id vocabulary, say) and times the
 * load of that. Encode speed is given cold (a new tokenizer, empty word cache:
 * the first pass over the text) and warm (the second pass).
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "megadelta.h"

#ifndef MD_BENCH_CORPUS_DIR
#define MD_BENCH_CORPUS_DIR ""
#endif
#ifndef MD_BENCH_TOKENIZER
#define MD_BENCH_TOKENIZER ""
#endif

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *g_text;
static size_t g_len, g_cap;
static int g_files;

static void append_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return;
    char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        if (g_len + got + 1 > g_cap) {
            g_cap = (g_len + got + 1) * 2;
            g_text = realloc(g_text, g_cap);
            if (!g_text) exit(1);
        }
        memcpy(g_text + g_len, buf, got);
        g_len += got;
    }
    fclose(f);
    g_files++;
}

static int on_file(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)ftw;
    const size_t n = strlen(path);
    if (type == FTW_F && n > 4 && !strcmp(path + n - 4, ".rst")) append_file(path);
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A set of strings (the tokens made so far), open addressing. */
typedef struct strset {
    char **slot;
    size_t mask;
} strset;

static uint64_t fnv(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 0x100000001b3ull;
    return h;
}

/* Adds s; false when it was there already. */
static bool strset_add(strset *t, const char *s) {
    size_t i = fnv(s) & t->mask;
    while (t->slot[i]) {
        if (!strcmp(t->slot[i], s)) return false;
        i = (i + 1) & t->mask;
    }
    t->slot[i] = strdup(s);
    return true;
}

/* Writes a copy of the tokenizer with merged tokens added up to n ids. */
static bool grow(const char *in, const char *out, int n) {
    FILE *f = fopen(in, "rb");
    if (!f) return false;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)len + 1);
    if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) return false;
    fclose(f);
    text[len] = 0;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) return false;
    cJSON *model = cJSON_GetObjectItem(root, "model");
    cJSON *vocab = cJSON_GetObjectItem(model, "vocab"), *merges = cJSON_GetObjectItem(model, "merges");
    cJSON *added = cJSON_GetObjectItem(root, "added_tokens");
    int next = 0, base = cJSON_GetArraySize(vocab);
    cJSON *it;
    const char **names = malloc((size_t)base * sizeof *names);
    cJSON_ArrayForEach(it, vocab) {
        if ((int)it->valuedouble < base) names[(int)it->valuedouble] = it->string;
        if ((int)it->valuedouble >= next) next = (int)it->valuedouble + 1;
    }
    /* added tokens move up: the new merged tokens take the ids after the vocabulary */
    const int extra = n - next - cJSON_GetArraySize(added);
    cJSON_ArrayForEach(it, added) {
        cJSON *id = cJSON_GetObjectItem(it, "id");
        cJSON_SetNumberValue(id, id->valuedouble + (extra > 0 ? extra : 0));
    }
    strset seen = {calloc((size_t)1 << 20, sizeof(char *)), ((size_t)1 << 20) - 1};
    for (int i = 0; i < base; i++) strset_add(&seen, names[i]);
    char joined[512];
    uint64_t r = 1;
    for (int k = 0; k < extra;) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        const char *a = names[(r >> 33) % (uint64_t)base], *b = names[(r >> 13) % (uint64_t)base];
        if (strlen(a) + strlen(b) >= sizeof joined) continue;
        snprintf(joined, sizeof joined, "%s%s", a, b);
        if (strchr(a, ' ') || strchr(b, ' ') || !strset_add(&seen, joined)) continue;
        cJSON_AddNumberToObject(vocab, joined, next++);
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(a));
        cJSON_AddItemToArray(pair, cJSON_CreateString(b));
        cJSON_AddItemToArray(merges, pair);
        k++;
    }
    for (size_t i = 0; i <= seen.mask; i++) free(seen.slot[i]);
    free(seen.slot);
    char *s = cJSON_Print(root);
    free(names);
    cJSON_Delete(root);
    f = fopen(out, "wb");
    bool ok = f && s && fwrite(s, 1, strlen(s), f) == strlen(s);
    if (f) fclose(f);
    free(s);
    return ok;
}

static void time_loads(const char *path, int reps) {
    double *w = malloc((size_t)reps * sizeof *w), first_cpu = 0;
    int n_ids = 0;
    for (int i = 0; i < reps; i++) {
        md_tokenizer_t *t = NULL;
        const double t0 = wall(), c0 = cpu();
        md_status st = md_tokenizer_load(path, &t);
        w[i] = wall() - t0;
        if (i == 0) first_cpu = cpu() - c0;
        if (st != MD_OK) {
            fprintf(stderr, "tokenizer_bench: %s\n", md_last_error());
            exit(1);
        }
        n_ids = md_tokenizer_n_vocab(t);
        md_tokenizer_free(t);
    }
    const double first = w[0];
    qsort(w, (size_t)reps, sizeof *w, cmp_double);
    printf("load   %-52s %7d ids: first %6.1f ms (cpu %.1f), median %6.1f ms, min %6.1f ms over %d\n", path, n_ids,
           first * 1e3, first_cpu * 1e3, w[reps / 2] * 1e3, w[0] * 1e3, reps);
    free(w);
}

int main(int argc, char **argv) {
    const char *tok_path = MD_BENCH_TOKENIZER;
    int reps = 5, grow_to = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok_path = argv[++i];
        else if (!strcmp(argv[i], "--text") && i + 1 < argc) append_file(argv[++i]);
        else if (!strcmp(argv[i], "--grow-to") && i + 1 < argc) grow_to = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
        else {
            fprintf(stderr, "usage: tokenizer_bench [--tokenizer FILE] [--text FILE]... [--grow-to N] [-r R]\n");
            return 2;
        }
    }
    /* one core: the tokenizer is single-threaded; pinning keeps the scheduler out of the numbers */
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    sched_setaffinity(0, sizeof set, &set);
    if (!*tok_path) {
        fprintf(stderr, "tokenizer_bench: no tokenizer: run scripts/fetch-test-data.sh or give --tokenizer FILE\n");
        return 1;
    }
    if (g_len == 0 && *MD_BENCH_CORPUS_DIR) nftw(MD_BENCH_CORPUS_DIR, on_file, 16, FTW_PHYS);
    if (g_len == 0) {
        fprintf(stderr, "tokenizer_bench: no English text: give --text FILE\n");
        return 1;
    }

    time_loads(tok_path, reps);
    if (grow_to > 0) {
        char grown[4096];
        snprintf(grown, sizeof grown, "/tmp/tokenizer_bench_%d.json", grow_to);
        if (!grow(tok_path, grown, grow_to)) {
            fprintf(stderr, "tokenizer_bench: could not write %s\n", grown);
            return 1;
        }
        time_loads(grown, reps);
        remove(grown);
    }

    md_tokenizer_t *t = NULL;
    if (md_tokenizer_load(tok_path, &t) != MD_OK) return 1;
    double mb = (double)g_len / 1e6;
    for (int pass = 0; pass < 2; pass++) {
        int32_t *ids = NULL;
        int n = 0;
        const double t0 = wall(), c0 = cpu();
        if (md_tokenizer_encode(t, g_text, g_len, true, &ids, &n) != MD_OK) {
            fprintf(stderr, "tokenizer_bench: %s\n", md_last_error());
            return 1;
        }
        const double dw = wall() - t0, dc = cpu() - c0;
        printf("encode %s: %.2f MB (%d files), %d tokens (%.2f bytes/token): %.1f MB/s wall, %.1f MB/s cpu\n",
               pass ? "warm cache" : "cold cache", mb, g_files, n, (double)g_len / n, mb / dw, mb / dc);
        if (pass == 1) {
            char *text = NULL;
            size_t len = 0;
            const double t1 = wall();
            md_tokenizer_decode(t, ids, n, false, &text, &len);
            const double dd = wall() - t1;
            printf("decode: %.1f MB/s, round trip %s\n", (double)len / 1e6 / dd,
                   len == g_len && !memcmp(text, g_text, len) ? "exact" : "DIFFERS");
            free(text);
        }
        free(ids);
    }
    md_tokenizer_free(t);
    free(g_text);
    return 0;
}
