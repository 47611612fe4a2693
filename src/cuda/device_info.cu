/*
 * device_info.cu — what `megadelta bench` reports about the GPU: name, SMs,
 * memory, clocks (NVML), and the memory bandwidth measured once per session
 * by device-to-device copies (bytes read + written / time, median of 5).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/backend.cuh"
#include "cuda/common.cuh"

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static md_status measure_bandwidth(md_cuda_ctx *g) {
    const size_t bytes = (size_t)512 << 20;
    void *a = NULL, *b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    md_status st = MD_OK;
    float ms[5];
    MD_CUDA_TRY(cudaMalloc(&a, bytes));
    MD_CUDA_TRY(cudaMalloc(&b, bytes));
    MD_CUDA_TRY(cudaMemsetAsync(a, 1, bytes, g->stream));
    MD_CUDA_TRY(cudaEventCreate(&e0));
    MD_CUDA_TRY(cudaEventCreate(&e1));
    MD_CUDA_TRY(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, g->stream)); /* warm-up */
    for (int i = 0; i < 5; i++) {
        MD_CUDA_TRY(cudaEventRecord(e0, g->stream));
        MD_CUDA_TRY(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, g->stream));
        MD_CUDA_TRY(cudaEventRecord(e1, g->stream));
        MD_CUDA_TRY(cudaEventSynchronize(e1));
        MD_CUDA_TRY(cudaEventElapsedTime(&ms[i], e0, e1));
    }
    qsort(ms, 5, sizeof *ms, cmp_float);
    g->bandwidth_gbs = 2.0 * bytes / (ms[2] / 1e3) / 1e9;
fail:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    cudaFree(a);
    cudaFree(b);
    return st;
}

md_status md_session_gpu_info(md_session_t *s, md_gpu_info *info) {
    memset(info, 0, sizeof *info);
    if (md_session_backend(s) != MD_BACKEND_GPU) return md_fail(MD_ERR_NO_DEVICE, "not a GPU session");
    md_cuda_ctx *g = md_cuda_of(s);
    if (g->bandwidth_gbs == 0) {
        md_status st = measure_bandwidth(g);
        if (st != MD_OK) return st;
    }
    snprintf(info->name, sizeof info->name, "%s", g->name);
    info->sm_count = g->sm_count;
    info->cc_major = g->cc_major;
    info->cc_minor = g->cc_minor;
    info->mem_bandwidth_gbs = g->bandwidth_gbs;
    MD_CUDA_CHECK(cudaMemGetInfo(&info->mem_free, &info->mem_total));
    md_energy_meter_t *m = NULL;
    if (md_energy_meter_open(g->device, &m) == MD_OK) {
        md_energy_meter_clocks(m, &info->sm_clock_mhz, &info->mem_clock_mhz);
        md_energy_meter_free(m);
    }
    return MD_OK;
}
