/*
 * gpu_test_common.h — helpers of the GPU tests: a synthetic checkpoint per
 * preset (written once into the test's scratch directory) and session setup.
 */
#ifndef MD_GPU_TEST_COMMON_H
#define MD_GPU_TEST_COMMON_H

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "model/synth.h"
#include "test_util.h"

/* Writes preset into $MD_TEST_TMP/../synth-<preset> once; returns the dir. */
static inline const char *gpu_test_preset_dir(const char *preset, char *buf, size_t n) {
    snprintf(buf, n, "%s/../synth-%s", md_test_tmp(), preset);
    char done[4200];
    snprintf(done, sizeof done, "%s/.complete", buf);
    struct stat stt;
    if (stat(done, &stt) == 0) return buf;
    if (md_synth_write(preset, buf, 0, NULL, NULL) != MD_OK) {
        fprintf(stderr, "synth %s: %s\n", preset, md_last_error());
        return NULL;
    }
    FILE *f = fopen(done, "w");
    if (f) fclose(f);
    return buf;
}

static inline md_kernel gpu_test_kernel(const char *name) {
    if (!strcmp(name, "hopper")) return MD_KERNEL_HOPPER;
    if (!strcmp(name, "portable")) return MD_KERNEL_PORTABLE;
    return MD_KERNEL_AUTO;
}

#endif
