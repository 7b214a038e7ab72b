/* libFuzzer target for models/clip_tokenizer: tokenize arbitrary bytes (up to the first NUL)
 * with the real CLIP vocabulary, loaded once from tests/fixtures/clip_tokenizer relative to the
 * working directory (run from the project root; without the files every input is skipped).
 * Valid UTF-8 must tokenize to sot ... eot with ids inside the vocabulary, invalid UTF-8 must be
 * refused with SG_EINVAL, and shorter contexts must give the same ids truncated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unistr.h>

#include "models/clip_tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sg_clip_tokenizer *tokenizer;

static const sg_clip_tokenizer *get_tokenizer(void)
{
    static int tried;
    if (!tried) {
        tried = 1;
        tokenizer = sg_clip_tokenizer_load_dir("tests/fixtures/clip_tokenizer", NULL);
    }
    return tokenizer;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sg_clip_tokenizer *t = get_tokenizer();
    if (!t)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text);
    int valid = u8_check((const uint8_t *)text, len) == NULL;

    int32_t ids[SG_CLIP_CONTEXT], short_ids[3];
    sg_error err = {0};
    int n = sg_clip_tokenize(t, text, ids, SG_CLIP_CONTEXT, &err);
    if (!valid) {
        if (n != -1 || err.code != SG_EINVAL)
            abort();
        free(text);
        return 0;
    }
    if (n < 2 || n > SG_CLIP_CONTEXT || ids[0] != sg_clip_tokenizer_sot(t) ||
        ids[n - 1] != sg_clip_tokenizer_eot(t))
        abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= sg_clip_tokenizer_vocab_size(t))
            abort();

    /* Context 3 keeps the first token; context 2 keeps none. */
    int n3 = sg_clip_tokenize(t, text, short_ids, 3, &err);
    if (n3 != (n > 2 ? 3 : 2) || short_ids[0] != ids[0] || short_ids[n3 - 1] != ids[n - 1] ||
        (n3 == 3 && short_ids[1] != ids[1]))
        abort();
    if (sg_clip_tokenize(t, text, short_ids, 2, &err) != 2 || short_ids[0] != ids[0] ||
        short_ids[1] != ids[n - 1])
        abort();
    free(text);
    return 0;
}
