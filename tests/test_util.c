/*
 * test_util.c — the test harness (see test_util.h).
 */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int md_test_failures = 0;

int md_test_finish(const char *name) {
    if (md_test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, md_test_failures);
        return 1;
    }
    fprintf(stderr, "%s: all checks passed\n", name);
    return 0;
}

static const char *env_or(const char *name, const char *def) {
    const char *v = getenv(name);
    return v && *v ? v : def;
}

const char *md_test_fixtures(void) { return env_or("MD_TEST_FIXTURES", "tests/fixtures"); }
const char *md_test_tmp(void) { return env_or("MD_TEST_TMP", "/tmp"); }
const char *md_test_bin(void) { return env_or("MD_TEST_BIN", "build/megadelta"); }

md_logits_cmp md_compare_logits(const float *out, const float *ref, int rows, int vocab, double gap_factor) {
    md_logits_cmp c = {.first_mismatch = -1, .finite = true};
    double num = 0, den = 0;
    for (int r = 0; r < rows; r++) {
        const float *o = out + (size_t)r * vocab, *f = ref + (size_t)r * vocab;
        double mean = 0, var = 0;
        int best = 0, second = -1, obest = 0;
        for (int i = 0; i < vocab; i++) {
            if (!isfinite(o[i])) c.finite = false;
            double d = (double)o[i] - f[i];
            num += d * d;
            den += (double)f[i] * f[i];
            mean += f[i];
            if (o[i] > o[obest]) obest = i;
            if (f[i] > f[best]) {
                second = best;
                best = i;
            } else if (i != best && (second < 0 || f[i] > f[second])) {
                second = i;
            }
        }
        mean /= vocab;
        for (int i = 0; i < vocab; i++) var += ((double)f[i] - mean) * ((double)f[i] - mean);
        const double sd = sqrt(var / vocab);
        const double gap = second >= 0 ? (double)f[best] - f[second] : INFINITY;
        if (gap > gap_factor * sd) {
            c.rows_checked++;
            if (obest != best) {
                c.argmax_mismatch++;
                if (c.first_mismatch < 0) c.first_mismatch = r;
            }
        }
    }
    c.rel_l2 = den > 0 ? sqrt(num / den) : sqrt(num);
    if (!c.finite) c.rel_l2 = INFINITY;
    return c;
}

long md_test_read_file(const char *path, void **data) {
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return -1;
    }
    ((char *)buf)[n] = 0;
    fclose(f);
    *data = buf;
    return n;
}

bool md_test_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, n, f) == n;
    ok &= fclose(f) == 0;
    return ok;
}

int md_test_run(const char *cmd, char *out, size_t out_size) {
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t k = 0;
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, p)) > 0) {
        if (out && k + 1 < out_size) {
            size_t take = got < out_size - 1 - k ? got : out_size - 1 - k;
            memcpy(out + k, buf, take);
            k += take;
        }
    }
    if (out && out_size) out[k] = 0;
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
