/*
 * fixture.h — reading one HF reference fixture (tests/fixtures/hf/<name>/, see
 * scripts/make_fixtures.py): meta.json gives T, V and the token ids; the two
 * references are [T x V] little-endian float32 logits from transformers:
 * logits_prefill.f32 (one forward over all tokens) and logits_step.f32 (its
 * cached decode, one token at a time). The directory is also the model dir.
 */
#ifndef MD_TEST_FIXTURE_H
#define MD_TEST_FIXTURE_H

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define FIXTURE_MAX 32

typedef struct fixture {
    char name[128];
    char dir[4096];
    int T, V;
    int32_t *tokens;   /* [T] */
    float *ref[2];     /* [T][V] prefill, step */
} fixture;

static const char *const k_ref_files[2] = {"logits_prefill.f32", "logits_step.f32"};

static inline int cmp_names(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* Sorted names of the fixture directories (those with a meta.json) under tests/fixtures/hf. */
static inline int fixture_list(char names[FIXTURE_MAX][128]) {
    char root[4096];
    snprintf(root, sizeof root, "%s/hf", md_test_fixtures());
    DIR *d = opendir(root);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < FIXTURE_MAX) {
        if (e->d_name[0] == '.') continue;
        char meta[8192];
        snprintf(meta, sizeof meta, "%s/%s/meta.json", root, e->d_name);
        FILE *f = fopen(meta, "rb");
        if (!f) continue;
        fclose(f);
        snprintf(names[n++], 128, "%s", e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, 128, cmp_names);
    return n;
}

static inline void fixture_free(fixture *fx) {
    free(fx->tokens);
    free(fx->ref[0]);
    free(fx->ref[1]);
    memset(fx, 0, sizeof *fx);
}

/* Loads meta.json and both references; false (with a message) on any problem. */
static inline bool fixture_load(const char *name, fixture *fx) {
    memset(fx, 0, sizeof *fx);
    snprintf(fx->name, sizeof fx->name, "%s", name);
    snprintf(fx->dir, sizeof fx->dir, "%s/hf/%s", md_test_fixtures(), name);
    char path[8192];
    snprintf(path, sizeof path, "%s/meta.json", fx->dir);
    void *text = NULL;
    if (md_test_read_file(path, &text) < 0) {
        fprintf(stderr, "%s: cannot read\n", path);
        return false;
    }
    cJSON *meta = cJSON_Parse(text);
    free(text);
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(meta, "T"), *jv = cJSON_GetObjectItemCaseSensitive(meta, "V");
    const cJSON *toks = cJSON_GetObjectItemCaseSensitive(meta, "tokens");
    bool ok = cJSON_IsNumber(jt) && cJSON_IsNumber(jv) && cJSON_IsArray(toks) && cJSON_GetArraySize(toks) == jt->valueint;
    if (ok) {
        fx->T = jt->valueint;
        fx->V = jv->valueint;
        fx->tokens = malloc((size_t)fx->T * sizeof *fx->tokens);
        int i = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, toks) fx->tokens[i++] = (int32_t)t->valueint;
    } else {
        fprintf(stderr, "%s: needs T, V and T tokens\n", path);
    }
    cJSON_Delete(meta);
    for (int r = 0; r < 2 && ok; r++) {
        snprintf(path, sizeof path, "%s/%s", fx->dir, k_ref_files[r]);
        void *data = NULL;
        long n = md_test_read_file(path, &data);
        if (n != (long)fx->T * fx->V * 4) {
            fprintf(stderr, "%s: %ld bytes, expected %d x %d x 4\n", path, n, fx->T, fx->V);
            free(data);
            ok = false;
        } else {
            fx->ref[r] = data;
        }
    }
    if (!ok) fixture_free(fx);
    return ok;
}

/* The token ids as the CLI's --tokens argument. */
static inline char *fixture_tokens_arg(const fixture *fx) {
    char *s = malloc((size_t)fx->T * 12 + 1), *p = s;
    for (int i = 0; i < fx->T; i++) p += sprintf(p, i ? " %d" : "%d", fx->tokens[i]);
    *p = 0;
    return s;
}

#endif
