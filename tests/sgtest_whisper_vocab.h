/* Shared by the speech tests: the tiny random Whisper fixture with a vocabulary, so its output has
 * text. Header-only so each test file stays standalone. */
#ifndef SG_TESTS_WHISPER_VOCAB_H
#define SG_TESTS_WHISPER_VOCAB_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The fixture with a vocabulary: tests/fixtures/whisper_tiny's ids 0..999 are GPT-2's first 1000
 * ranks and 1000 is <|endoftext|>, which is exactly what the first 1000 lines of
 * ../shared/tokenizers/gpt2.tiktoken make (the tokenizer gives <|endoftext|> id n). A directory
 * dir/whisper_tiny with links to the fixture's files and that vocab.tiktoken; 0 on success. */
__attribute__((unused)) static int make_vocab_model(const char *dir, char *model, size_t cap)
{
    char cwd[4096], src[8192], dst[8192];
    if (!getcwd(cwd, sizeof cwd))
        return -1;
    snprintf(model, cap, "%s/whisper_tiny", dir);
    if ((mkdir(dir, 0700) != 0 && errno != EEXIST) || (mkdir(model, 0700) != 0 && errno != EEXIST))
        return -1;
    const char *files[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof src, "%s/tests/fixtures/whisper_tiny/%s", cwd, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", model, files[i]);
        unlink(dst);
        if (symlink(src, dst) != 0)
            return -1;
    }
    FILE *in = fopen("../shared/tokenizers/gpt2.tiktoken", "r");
    snprintf(dst, sizeof dst, "%s/vocab.tiktoken", model);
    FILE *out = fopen(dst, "w");
    char line[512];
    int n = 0;
    while (in && out && n < 1000 && fgets(line, sizeof line, in)) {
        fputs(line, out);
        n++;
    }
    if (in)
        fclose(in);
    return out && fclose(out) == 0 && n == 1000 ? 0 : -1;
}

__attribute__((unused)) static void remove_vocab_model(const char *dir, const char *model)
{
    const char *files[] = {"config.json", "model.safetensors", "vocab.tiktoken"};
    char p[8192];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", model, files[i]);
        unlink(p);
    }
    rmdir(model);
    rmdir(dir);
}

#endif
