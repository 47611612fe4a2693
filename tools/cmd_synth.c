/*
 * cmd_synth.c — `megadelta synth`: write a synthetic checkpoint directory.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "model/synth.h"

static const char usage[] =
    "usage: megadelta synth --preset tiny|qwen3.5-0.8b --out DIR [--seed N]\n"
    "Writes a checkpoint in the release layout (config.json with text_config, BF16\n"
    "model.safetensors with model.language_model.* and mtp.* tensors, a byte-level\n"
    "tokenizer.json with the ChatML special tokens) with seeded random weights.\n";

static void progress(double f, void *ctx) {
    int *last = ctx;
    int pct = (int)(f * 100);
    if (pct >= *last + 5) {
        *last = pct;
        fprintf(stderr, "\rwriting... %3d%%", pct);
        fflush(stderr);
    }
}

int cmd_synth(int argc, char **argv) {
    const char *preset = NULL, *out = NULL;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--preset")) {
            if (!(v = cli_value(argc, argv, &i))) return 1;
            preset = v;
        } else if (!strcmp(a, "--out") || !strcmp(a, "-o")) {
            if (!(v = cli_value(argc, argv, &i))) return 1;
            out = v;
        } else if (!strcmp(a, "--seed")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_u64(a, v, &seed)) return 1;
        } else {
            return cli_error("synth: unknown option '%s'\n%s", a, usage);
        }
    }
    if (!preset || !out) return cli_error("synth needs --preset and --out\n%s", usage);
    int last = -5;
    md_status st = md_synth_write(preset, out, seed, progress, &last);
    if (last >= 0) fputc('\n', stderr); /* end the progress line, if one was printed */
    if (st != MD_OK) return cli_fail("synth", st);
    fprintf(stderr, "wrote %s (preset %s, seed %llu)\n", out, preset, (unsigned long long)seed);
    return 0;
}
