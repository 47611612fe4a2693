/*
 * checkpoint.c — open the safetensors file(s) of a model directory.
 * Sharded checkpoints: the index's weight_map names every tensor's shard; each
 * shard is opened once and every tensor the index names must be in its shard.
 */
#include "model/checkpoint.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/mapped_file.h"
#include "common/status.h"

static int cmp_tensor_name(const void *a, const void *b) {
    const md_tensor *x = *(const md_tensor *const *)a, *y = *(const md_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static md_status add_file(md_checkpoint *ck, const char *path) {
    md_safetensors *nf = realloc(ck->files, (size_t)(ck->n_files + 1) * sizeof *nf);
    if (!nf) return md_fail(MD_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    ck->files = nf;
    md_status st = md_safetensors_open(path, &ck->files[ck->n_files]);
    if (st == MD_OK) ck->n_files++;
    return st;
}

static md_status build_index(md_checkpoint *ck) {
    int n = 0;
    for (int i = 0; i < ck->n_files; i++) n += ck->files[i].n_tensors;
    ck->index = malloc((size_t)(n + 1) * sizeof *ck->index);
    if (!ck->index) return md_fail(MD_ERR_OUT_OF_MEMORY, "checkpoint index: out of memory");
    int k = 0;
    for (int i = 0; i < ck->n_files; i++)
        for (int j = 0; j < ck->files[i].n_tensors; j++) ck->index[k++] = &ck->files[i].tensors[j];
    ck->n_tensors = n;
    qsort(ck->index, (size_t)n, sizeof *ck->index, cmp_tensor_name);
    for (int i = 1; i < n; i++)
        if (strcmp(ck->index[i]->name, ck->index[i - 1]->name) == 0)
            return md_fail(MD_ERR_FORMAT, "tensor '%s' appears twice (%s and %s)", ck->index[i]->name,
                           ck->index[i - 1]->file, ck->index[i]->file);
    return MD_OK;
}

/* Opens every shard named in the index and checks that each listed tensor is
 * in the shard the index says. */
static md_status open_sharded(md_checkpoint *ck, const char *dir, const char *index_path) {
    cJSON *root = NULL;
    md_status st = md_json_parse_file(index_path, &root);
    if (st != MD_OK) return st;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return md_fail(MD_ERR_FORMAT, "%s: missing object 'weight_map'", index_path);
    }
    char path[4096];
    const cJSON *e;
    cJSON_ArrayForEach(e, map) {
        if (!cJSON_IsString(e)) {
            st = md_fail(MD_ERR_FORMAT, "%s: weight_map entry '%s' is not a file name", index_path, e->string);
            goto done;
        }
        if (strchr(e->valuestring, '/') || strcmp(e->valuestring, "..") == 0) {
            st = md_fail(MD_ERR_FORMAT, "%s: weight_map entry '%s' names a file outside the directory", index_path, e->string);
            goto done;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->valuestring);
        bool seen = false;
        for (int i = 0; i < ck->n_files && !seen; i++) seen = strcmp(ck->files[i].path, path) == 0;
        if (!seen && (st = add_file(ck, path)) != MD_OK) goto done;
    }
    if (ck->n_files == 0) {
        st = md_fail(MD_ERR_FORMAT, "%s: weight_map is empty", index_path);
        goto done;
    }
    if ((st = build_index(ck)) != MD_OK) goto done;
    cJSON_ArrayForEach(e, map) {
        snprintf(path, sizeof path, "%s/%s", dir, e->valuestring);
        const md_tensor *t = md_checkpoint_find(ck, e->string);
        if (!t) {
            st = md_fail(MD_ERR_FORMAT, "%s: tensor '%s' is listed in the index but missing from %s", index_path, e->string, path);
            goto done;
        }
        if (strcmp(t->file, path) != 0) {
            st = md_fail(MD_ERR_FORMAT, "%s: tensor '%s' is listed for %s but found in %s", index_path, e->string, path, t->file);
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    return st;
}

md_status md_checkpoint_open(const char *dir, md_checkpoint *ck) {
    memset(ck, 0, sizeof *ck);
    char path[4096];
    md_status st;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (md_file_exists(path)) {
        st = open_sharded(ck, dir, path);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (!md_file_exists(path)) {
            st = md_fail(MD_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json", dir);
        } else {
            st = add_file(ck, path);
            if (st == MD_OK) st = build_index(ck);
        }
    }
    if (st != MD_OK) md_checkpoint_close(ck);
    return st;
}

void md_checkpoint_close(md_checkpoint *ck) {
    for (int i = 0; i < ck->n_files; i++) md_safetensors_close(&ck->files[i]);
    free(ck->files);
    free(ck->index);
    memset(ck, 0, sizeof *ck);
}

const md_tensor *md_checkpoint_find(const md_checkpoint *ck, const char *name) {
    int lo = 0, hi = ck->n_tensors - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(ck->index[mid]->name, name);
        if (c == 0) return ck->index[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}
