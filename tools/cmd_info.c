/*
 * cmd_info.c — `megadelta info`: what a model directory holds, as loaded.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_info(int argc, char **argv) {
    cli_model_opts mo;
    cli_model_opts_init(&mo);
    for (int i = 1; i < argc; i++) {
        int r = cli_model_flag(&mo, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: megadelta info -m DIR | --preset NAME\n");
            return 0;
        }
        return cli_error("info: unknown option '%s'", argv[i]);
    }
    char dir[4096];
    if (cli_model_dir(&mo, NULL, dir, sizeof dir) != MD_OK) return 1;
    md_model_t *m = NULL;
    md_status st = md_model_load(dir, &m);
    if (st != MD_OK) return cli_fail("loading the model", st);
    const md_model_info *in = md_model_get_info(m);
    printf("model         %s\n", dir);
    printf("architecture  %s\n", in->architecture);
    printf("parameters    %.1f M%s\n", in->n_params / 1e6, in->tied_embeddings ? " (tied LM head)" : "");
    printf("layers        %d (%d Gated DeltaNet, %d gated attention)\n", in->n_layers, in->n_linear_layers, in->n_full_layers);
    printf("hidden        %d, intermediate %d, vocab %d\n", in->hidden_size, in->intermediate_size, in->vocab_size);
    printf("max positions %d\n", in->max_position_embeddings);
    printf("eos ids      ");
    for (int i = 0; i < in->n_eos; i++) printf(" %d", in->eos_ids[i]);
    printf("\n");
    md_model_free(m);
    return 0;
}
