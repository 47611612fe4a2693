/*
 * megadelta.c — the CLI entry point: dispatches to the subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} command;

static const command k_commands[] = {
    {"bench", cmd_bench, "prompt-processing and generation speed (llama-bench style)"},
    {"logits", cmd_logits, "write the logits of a token sequence (float32)"},
    {"synth", cmd_synth, "write a synthetic checkpoint of a preset's shapes"},
    {"info", cmd_info, "describe a model directory"},
    {"tokenize", cmd_tokenize, "text to token ids, or ids to text (--decode)"},
    {"generate", cmd_generate, "generate text from a prompt (streamed), with sampling"},
    {"chat", cmd_chat, "interactive multi-turn chat with the model's chat template"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: megadelta <command> [options]   (megadelta <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof k_commands / sizeof *k_commands; i++)
        fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    for (size_t i = 0; i < sizeof k_commands / sizeof *k_commands; i++)
        if (!strcmp(argv[1], k_commands[i].name)) return k_commands[i].run(argc - 1, argv + 1);
    cli_error("unknown command '%s'", argv[1]);
    usage(stderr);
    return 1;
}
