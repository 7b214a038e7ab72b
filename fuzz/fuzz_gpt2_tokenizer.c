/* libFuzzer target for models/gpt2_tokenizer: encode arbitrary bytes with the real GPT-2
 * vocabulary (../shared/tokenizers/gpt2.tiktoken, loaded once, relative to the working directory:
 * run from the project root; without the file every input is skipped). Every input, valid UTF-8
 * or not, must encode to ids inside the vocabulary that decode back to exactly the input.
 * Differentially, the same ranks cut to the first 5000 must give the same ids whether loaded from
 * a .tiktoken file (written to /tmp at start-up) or from the Hugging Face fixture in
 * tests/fixtures/gpt2_tokenizer/small: tiktoken's byte-concatenation rule and GPT-2's merges.txt
 * rule, with and without the whole-piece shortcut. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/gpt2_tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SMALL_RANKS 5000

static sg_bpe *full, *small_tiktoken, *small_hf;

/* Writes the first SMALL_RANKS lines of the ranks file to a temporary file and loads it. */
static sg_bpe *load_head(const char *path)
{
    char tmp[] = "/tmp/fuzz_gpt2_tokenizer.XXXXXX";
    int fd = mkstemp(tmp);
    FILE *in = fopen(path, "rb"), *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
    char line[1024];
    for (int i = 0; in && out && i < SMALL_RANKS && fgets(line, sizeof line, in); i++)
        fputs(line, out);
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    sg_bpe *t = fd >= 0 ? sg_bpe_load_tiktoken(tmp, NULL) : NULL;
    if (fd >= 0)
        unlink(tmp);
    return t;
}

static void init(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    const char *ranks = "../shared/tokenizers/gpt2.tiktoken";
    full = sg_bpe_load_tiktoken(ranks, NULL);
    small_tiktoken = load_head(ranks);
    small_hf = sg_bpe_load_dir("tests/fixtures/gpt2_tokenizer/small", NULL);
}

/* Encodes, checks the ids and the round trip; returns the ids (caller frees). */
static int32_t *encode_checked(const sg_bpe *t, const uint8_t *data, size_t size, size_t *n)
{
    int32_t *ids = NULL;
    if (sg_bpe_encode(t, (const char *)data, size, &ids, n, NULL) != SG_OK)
        abort();
    if (*n > size || (size > 0 && *n == 0))
        abort();
    size_t total = 0;
    for (size_t i = 0; i < *n; i++) {
        size_t len = 0;
        if (ids[i] < 0 || ids[i] >= sg_bpe_eot(t) || !sg_bpe_token_bytes(t, ids[i], &len))
            abort();
        total += len;
    }
    char *back = NULL;
    size_t back_len = 0;
    if (sg_bpe_decode(t, ids, *n, &back, &back_len, NULL) != SG_OK || back_len != size ||
        total != size || memcmp(back, data, size) != 0 || back[size] != '\0')
        abort();
    free(back);
    return ids;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (full) {
        size_t n = 0;
        free(encode_checked(full, data, size, &n));
    }
    if (small_tiktoken && small_hf) {
        size_t na = 0, nb = 0;
        int32_t *a = encode_checked(small_tiktoken, data, size, &na);
        int32_t *b = encode_checked(small_hf, data, size, &nb);
        if (na != nb || (na > 0 && memcmp(a, b, na * sizeof *a) != 0))
            abort();
        free(a);
        free(b);
    }
    return 0;
}
