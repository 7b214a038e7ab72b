/* Prints the token ids sg_local_llm_generate makes for "What am I looking at?" (argv[2] tokens,
 * default 64; one thread) from the model directory argv[1]: scripts/local-llm-arm.sh compares them
 * between x86 and ARM under qemu. 0 tokens only opens and closes the model (bench/arm_insn_count.sh
 * counts the load's instructions that way). */
#include <stdio.h>
#include <stdlib.h>
#include "sgclient.h"
int main(int argc, char **argv)
{
    sg_local_llm *h = NULL;
    char err[SG_CLIENT_ERROR_SIZE] = "";
    sg_local_llm_options o;
    sg_local_llm_options_default(&o);
    o.threads = 1;
    if (sg_local_llm_open(argv[1], &o, &h, err) != SG_CLIENT_OK) { fprintf(stderr, "%s\n", err); return 1; }
    int n = argc > 2 ? atoi(argv[2]) : 64;
    if (n == 0) {
        sg_local_llm_close(h);
        return 0;
    }
    char *text = NULL;
    if (sg_local_llm_generate(h, NULL, "What am I looking at?", n, NULL, NULL, &text, err) != SG_CLIENT_OK) { fprintf(stderr, "%s\n", err); return 1; }
    int32_t ids[2048];
    int k = sg_local_llm_last_tokens(h, ids, 2048);
    for (int i = 0; i < k; i++) printf("%d ", ids[i]);
    printf("\n");
    free(text);
    sg_local_llm_close(h);
    return 0;
}
