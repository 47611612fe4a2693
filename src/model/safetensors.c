/*
 * safetensors.c — parse and validate a .safetensors file in place.
 * Layout: u64 little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
 * then the data area; offsets are relative to its start.
 */
#include "model/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

typedef struct dtype_desc {
    const char *name;
    md_dtype dt;
    size_t size;
} dtype_desc;

static const dtype_desc k_dtypes[] = {
    {"F32", MD_DTYPE_F32, 4},      {"F16", MD_DTYPE_F16, 2},        {"BF16", MD_DTYPE_BF16, 2},
    {"F64", MD_DTYPE_OTHER, 8},    {"I64", MD_DTYPE_OTHER, 8},      {"I32", MD_DTYPE_OTHER, 4},
    {"I16", MD_DTYPE_OTHER, 2},    {"I8", MD_DTYPE_OTHER, 1},       {"U64", MD_DTYPE_OTHER, 8},
    {"U32", MD_DTYPE_OTHER, 4},    {"U16", MD_DTYPE_OTHER, 2},      {"U8", MD_DTYPE_OTHER, 1},
    {"BOOL", MD_DTYPE_OTHER, 1},   {"F8_E4M3", MD_DTYPE_OTHER, 1},  {"F8_E5M2", MD_DTYPE_OTHER, 1},
};

const char *md_dtype_name(md_dtype dt) {
    switch (dt) {
    case MD_DTYPE_F32: return "F32";
    case MD_DTYPE_F16: return "F16";
    case MD_DTYPE_BF16: return "BF16";
    default: return "other";
    }
}

size_t md_dtype_size(md_dtype dt) { return dt == MD_DTYPE_F32 ? 4 : 2; }

typedef struct span {
    uint64_t begin, end;
    int idx;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

static md_status parse_entry(md_safetensors *f, const cJSON *e, md_tensor *t, uint64_t data_size, span *sp,
                             char **name_cursor) {
    const char *path = f->path;
    size_t nlen = strlen(e->string);
    memcpy(*name_cursor, e->string, nlen + 1);
    t->name = *name_cursor;
    *name_cursor += nlen + 1;
    t->file = f->path;
    if (!cJSON_IsObject(e)) return md_fail(MD_ERR_FORMAT, "%s: tensor '%s': header entry is not an object", path, t->name);

    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt)) return md_fail(MD_ERR_FORMAT, "%s: tensor '%s': missing dtype", path, t->name);
    const dtype_desc *d = NULL;
    for (size_t i = 0; i < sizeof k_dtypes / sizeof *k_dtypes; i++)
        if (strcmp(dt->valuestring, k_dtypes[i].name) == 0) d = &k_dtypes[i];
    if (!d) return md_fail(MD_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%.16s'", path, t->name, dt->valuestring);
    t->dtype = d->dt;
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", d->name);

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(shape)) return md_fail(MD_ERR_FORMAT, "%s: tensor '%s': missing shape", path, t->name);
    t->ndim = cJSON_GetArraySize(shape);
    if (t->ndim > MD_MAX_DIMS) return md_fail(MD_ERR_FORMAT, "%s: tensor '%s': %d dimensions (at most %d)", path, t->name, t->ndim, MD_MAX_DIMS);
    uint64_t numel = 1;
    int i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, shape) {
        if (!cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble != floor(s->valuedouble) || s->valuedouble > 4.0e12)
            return md_fail(MD_ERR_FORMAT, "%s: tensor '%s': bad shape entry", path, t->name);
        t->shape[i++] = (int64_t)s->valuedouble;
        numel *= (uint64_t)s->valuedouble;
        if (numel > (1ull << 42)) return md_fail(MD_ERR_FORMAT, "%s: tensor '%s': shape too large", path, t->name);
    }
    t->numel = (int64_t)numel;

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return md_fail(MD_ERR_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end]", path, t->name);
    double b = cJSON_GetArrayItem(off, 0)->valuedouble, en = cJSON_GetArrayItem(off, 1)->valuedouble;
    if (!cJSON_IsNumber(cJSON_GetArrayItem(off, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(off, 1)) || b < 0 || en < b ||
        b != floor(b) || en != floor(en))
        return md_fail(MD_ERR_FORMAT, "%s: tensor '%s': bad data_offsets", path, t->name);
    if (en > (double)data_size)
        return md_fail(MD_ERR_FORMAT, "%s: tensor '%s': data_offsets [%.0f, %.0f] run past the end of the data (%llu bytes); truncated file?",
                       path, t->name, b, en, (unsigned long long)data_size);
    uint64_t nbytes = (uint64_t)en - (uint64_t)b;
    if (nbytes != numel * d->size)
        return md_fail(MD_ERR_FORMAT, "%s: tensor '%s': %llu bytes for %llu elements of %s (expected %llu)", path, t->name,
                       (unsigned long long)nbytes, (unsigned long long)numel, d->name, (unsigned long long)(numel * d->size));
    t->nbytes = (size_t)nbytes;
    sp->begin = (uint64_t)b;
    sp->end = (uint64_t)en;
    return MD_OK;
}

md_status md_safetensors_open(const char *path, md_safetensors *f) {
    memset(f, 0, sizeof *f);
    md_status st;
    cJSON *root = NULL;
    span *spans = NULL;
    f->path = strdup(path);
    if (!f->path) return md_fail(MD_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    MD_TRY(md_mapped_file_open(path, &f->map));
    if (f->map.size < 8) {
        st = md_fail(MD_ERR_FORMAT, "%s: too short for a safetensors file (%zu bytes)", path, f->map.size);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->map.data[i];
    if (hlen > f->map.size - 8) {
        st = md_fail(MD_ERR_FORMAT, "%s: header size %llu runs past the end of the file (%zu bytes); truncated or not safetensors",
                     path, (unsigned long long)hlen, f->map.size);
        goto fail;
    }
    const uint8_t *data = f->map.data + 8 + hlen;
    uint64_t data_size = f->map.size - 8 - hlen;
    root = cJSON_ParseWithLength((const char *)f->map.data + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        st = md_fail(MD_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto fail;
    }
    int n = 0;
    size_t name_bytes = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        n++;
        name_bytes += strlen(e->string) + 1;
    }
    f->tensors = calloc((size_t)n + 1, sizeof *f->tensors);
    f->names = malloc(name_bytes + 1);
    spans = calloc((size_t)n + 1, sizeof *spans);
    if (!f->tensors || !f->names || !spans) {
        st = md_fail(MD_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        goto fail;
    }
    char *cursor = f->names;
    int i = 0;
    cJSON_ArrayForEach(e, root) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        MD_TRY(parse_entry(f, e, &f->tensors[i], data_size, &spans[i], &cursor));
        f->tensors[i].data = data + spans[i].begin;
        spans[i].idx = i;
        i++;
    }
    f->n_tensors = n;
    /* Sorted by start, every tensor must begin at or after the furthest end
     * so far (not just the previous one's: an empty tensor in between would
     * hide an overlap). Empty tensors hold no bytes and cannot overlap. */
    qsort(spans, (size_t)n, sizeof *spans, cmp_span);
    int furthest = -1;
    for (i = 0; i < n; i++) {
        if (spans[i].end == spans[i].begin) continue;
        if (furthest >= 0 && spans[i].begin < spans[furthest].end) {
            st = md_fail(MD_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data area", path,
                         f->tensors[spans[furthest].idx].name, f->tensors[spans[i].idx].name);
            goto fail;
        }
        if (furthest < 0 || spans[i].end > spans[furthest].end) furthest = i;
    }
    free(spans);
    cJSON_Delete(root);
    return MD_OK;
fail:
    free(spans);
    cJSON_Delete(root);
    md_safetensors_close(f);
    return st;
}

void md_safetensors_close(md_safetensors *f) {
    md_mapped_file_close(&f->map);
    free(f->tensors);
    free(f->names);
    free(f->path);
    memset(f, 0, sizeof *f);
}
