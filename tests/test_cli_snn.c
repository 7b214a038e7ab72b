/* `sg generate` and `sg quantize` through the real binary on the tiny SNN student
 * (tests/fixtures/snn_tiny, made by py/gen_snn_fixture.py): one JSON object with the
 * reference's text and tokens, the tokenizer options, the int8 model file, and errors. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "sgtest_cli.h"

/* A shell-quoted copy of s (single quotes). */
static char *quote(const char *s)
{
    char *q = malloc(strlen(s) * 4 + 3), *o = q;
    *o++ = '\'';
    for (; *s; s++) {
        if (*s == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *s;
        }
    }
    *o++ = '\'';
    *o = 0;
    return q;
}

static bool ids_equal(json_t *a, json_t *b)
{
    return json_is_array(a) && json_is_array(b) && json_equal(a, b);
}

/* Runs cmd, which must exit 0 and print the tokens of case c. */
static void check_tokens(const char *cmd, json_t *c)
{
    char *out;
    CHECK_EQ_INT(sgt_run(cmd, &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    CHECK_MSG(ids_equal(json_object_get(j, "tokens"), json_object_get(c, "tokens")), "%s", cmd);
    json_decref(j);
    free(out);
}

int main(void)
{
    json_t *exp = json_load_file("tests/fixtures/snn_tiny/expected.json", 0, NULL);
    CHECK(exp != NULL);
    if (!exp)
        return check_report("test_cli_snn");
    json_t *cases = json_object_get(exp, "cases");
    char cmd[8192], *out;

    /* f32: every case's text and tokens are the reference's */
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        const char *system = json_string_value(json_object_get(c, "system"));
        char *qp = quote(json_string_value(json_object_get(c, "prompt")));
        char *qs = system ? quote(system) : NULL;
        snprintf(cmd, sizeof cmd, SG_CLI_BIN " generate --model tests/fixtures/snn_tiny --prompt %s %s%s "
                 "--max-tokens 16 --precision f32 --threads 2 2>/dev/null", qp, qs ? "--system " : "",
                 qs ? qs : "");
        free(qp);
        free(qs);
        CHECK_EQ_INT(sgt_run(cmd, &out), 0);
        json_t *j = json_loads(out, 0, NULL);
        CHECK_MSG(j != NULL, "not JSON: %s", out);
        CHECK(strchr(out, '\n') == out + strlen(out) - 1); /* one line */
        const char *text = json_string_value(json_object_get(j, "text"));
        CHECK_MSG(text && strcmp(text, json_string_value(json_object_get(c, "text"))) == 0, "case %zu: %s", i,
                  text ? text : "(null)");
        CHECK(ids_equal(json_object_get(j, "tokens"), json_object_get(c, "tokens")));
        CHECK(ids_equal(json_object_get(j, "prompt_tokens"), json_object_get(c, "prompt_ids")));
        json_t *t = json_object_get(j, "timings_ms");
        CHECK(json_number_value(json_object_get(t, "load")) > 0 && json_is_number(json_object_get(t, "tokenize")) &&
              json_number_value(json_object_get(t, "generate")) > 0 &&
              json_number_value(json_object_get(t, "total")) >= json_number_value(json_object_get(t, "load")));
        json_decref(j);
        free(out);
    }

    /* the same from model.safetensors, in int8, and teacher-forced agreement with f32 */
    json_t *c0 = json_array_get(cases, 0);
    char *qp = quote(json_string_value(json_object_get(c0, "prompt")));
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " generate --model tests/fixtures/snn_tiny_st --prompt %s --max-tokens 16 "
             "--precision f32 2>/dev/null", qp);
    check_tokens(cmd, c0);
    json_t *j;
    char forced[1024] = "";
    for (size_t i = 0; i < json_array_size(json_object_get(c0, "tokens")); i++)
        snprintf(forced + strlen(forced), sizeof forced - strlen(forced), "%s%lld", i ? "," : "",
                 json_integer_value(json_array_get(json_object_get(c0, "tokens"), i)));
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " generate --model tests/fixtures/snn_tiny --prompt %s --max-tokens 16 "
             "--precision int8 --teacher-force %s 2>/dev/null", qp, forced);
    CHECK_EQ_INT(sgt_run(cmd, &out), 0);
    j = json_loads(out, 0, NULL);
    json_t *int8_tokens = json_incref(json_object_get(j, "tokens"));
    CHECK_EQ_INT(json_array_size(int8_tokens), 16);
    CHECK(strcmp(json_string_value(json_object_get(j, "precision")), "int8") == 0);
    json_t *tf = json_object_get(j, "teacher_forced");
    CHECK_EQ_INT(json_array_size(json_object_get(tf, "tokens")), 16);
    CHECK(json_number_value(json_object_get(tf, "agreement")) >= 0.0);
    double rate = json_number_value(json_object_get(j, "spike_rate"));
    CHECK(rate > 0.05 && rate < 0.6);
    json_decref(j);
    free(out);
    /* f32 teacher-forced on its own tokens agrees everywhere */
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " generate --model tests/fixtures/snn_tiny --prompt %s --max-tokens 16 "
             "--precision f32 --teacher-force %s 2>/dev/null", qp, forced);
    CHECK_EQ_INT(sgt_run(cmd, &out), 0);
    j = json_loads(out, 0, NULL);
    CHECK(json_number_value(json_object_get(json_object_get(j, "teacher_forced"), "agreement")) == 1.0);
    json_decref(j);
    free(out);

    /* sg quantize: the int8 file, metadata and tokenizer copied; the same tokens as int8 on the fly */
    char tmp[] = "/tmp/sg-cli-snn-XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " quantize --model tests/fixtures/snn_tiny --out %s/q8", tmp);
    CHECK_EQ_INT(sgt_run(cmd, &out), 0);
    j = json_loads(out, 0, NULL);
    CHECK(json_integer_value(json_object_get(j, "bytes")) > 100000 &&
          json_integer_value(json_object_get(j, "bytes")) < 400000);
    json_decref(j);
    free(out);
    const char *copied[] = {"model.safetensors", "metadata.json", "vocab.json", "merges.txt"};
    for (int i = 0; i < 4; i++) {
        char p[256];
        struct stat sb;
        snprintf(p, sizeof p, "%s/q8/%s", tmp, copied[i]);
        CHECK_MSG(stat(p, &sb) == 0 && sb.st_size > 0, "%s", p);
    }
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " generate --model %s/q8 --prompt %s --max-tokens 16 --precision int8 "
             "2>/dev/null", tmp, qp);
    CHECK_EQ_INT(sgt_run(cmd, &out), 0);
    j = json_loads(out, 0, NULL);
    CHECK(ids_equal(json_object_get(j, "tokens"), int8_tokens));
    json_decref(j);
    free(out);
    json_decref(int8_tokens);

    /* --max-tokens 0, --stop-at-eos, the tokenizer from --tokenizer or SG_LLM_TOKENIZER */
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " generate --model tests/fixtures/snn_tiny --prompt hi --max-tokens 0 2>/dev/null");
    CHECK_EQ_INT(sgt_run(cmd, &out), 0);
    CHECK(strstr(out, "\"text\":\"\"") && strstr(out, "\"tokens\":[]"));
    free(out);
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " generate --model tests/fixtures/snn_tiny --prompt %s --max-tokens 16 "
             "--stop-at-eos --precision f32 2>/dev/null", qp);
    check_tokens(cmd, c0); /* no end-of-text in it */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/bare && cp tests/fixtures/snn_tiny/student.pt "
             "tests/fixtures/snn_tiny/metadata.json %s/bare/", tmp, tmp);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " generate --model %s/bare --prompt hi 2>&1", tmp);
    CHECK_EQ_INT(sgt_run(cmd, &out), 1);
    CHECK_MSG(strstr(out, "tokenizer") != NULL, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " generate --model %s/bare --prompt %s --max-tokens 16 --precision f32 "
             "--tokenizer tests/fixtures/snn_tiny/vocab.json 2>/dev/null", tmp, qp);
    check_tokens(cmd, c0);
    snprintf(cmd, sizeof cmd, "SG_LLM_TOKENIZER=tests/fixtures/snn_tiny " SG_CLI_BIN " generate --model %s/bare "
             "--prompt %s --max-tokens 16 --precision f32 2>/dev/null", tmp, qp);
    check_tokens(cmd, c0);
    /* the shared GPT-2 tokenizer does not fit the 3584-token fixture: a clear error */
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " generate --model %s/bare --prompt hi "
             "--tokenizer ../shared/tokenizers/gpt2.tiktoken 2>&1", tmp);
    CHECK_EQ_INT(sgt_run(cmd, &out), 1);
    CHECK_MSG(strstr(out, "50257 tokens but the model's vocabulary is 3584") != NULL, "%s", out);
    free(out);
    free(qp);

    /* usage errors exit 2, load errors 1 */
    CHECK_EQ_INT(sgt_status(SG_CLI_BIN " generate --prompt hi 2>/dev/null"), 2);
    CHECK_EQ_INT(sgt_status(SG_CLI_BIN " generate --model tests/fixtures/snn_tiny 2>/dev/null"), 2);
    CHECK_EQ_INT(sgt_status(SG_CLI_BIN " generate --model tests/fixtures/snn_tiny --prompt hi --precision fp16 2>/dev/null"), 2);
    CHECK_EQ_INT(sgt_status(SG_CLI_BIN " generate --model tests/fixtures/snn_tiny --prompt hi --max-tokens -1 2>/dev/null"), 2);
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " generate --model /nonexistent --prompt hi 2>&1", &out), 1);
    CHECK(strstr(out, "/nonexistent") != NULL);
    free(out);
    CHECK_EQ_INT(sgt_status(SG_CLI_BIN " quantize --model tests/fixtures/snn_tiny 2>/dev/null"), 2);
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " quantize --model /nonexistent --out %s/x 2>&1", tmp);
    CHECK_EQ_INT(sgt_status(cmd), 1);
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " --help", &out), 0);
    CHECK(strstr(out, "generate --model DIR") && strstr(out, "quantize --model DIR"));
    free(out);

    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0);
    json_decref(exp);
    return check_report("test_cli_snn");
}
