/* CLIP against our PyTorch reference (py/clip_reference.py) on the tiny random model in
 * tests/fixtures/clip_tiny (Hugging Face layout, made by py/gen_clip_fixture.py): image and
 * text embeddings in f32 and int8, at every kernel level, tokenizer ids, zero-shot probabilities,
 * and load errors that name the problem. */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "models/clip.h"
#include "nn/cpu.h"
#include "nn/pool.h"

#define DIR "tests/fixtures/clip_tiny"

static void vec(json_t *arr, double *out, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = json_number_value(json_array_get(arr, (size_t)i));
}

static int decode_file(const char *path, int min_side, sg_image *img)
{
    size_t len;
    char *data = check_read_file(path, &len);
    sg_error err;
    int rc = data && sg_image_decode((const uint8_t *)data, len, min_side, img, &err) == SG_OK ? 0 : -1;
    free(data);
    return rc;
}

/* Every expected embedding, at one precision and kernel level; returns the worst photo cosine. */
static void check_model(sg_precision prec, sg_pool *pool, json_t *exp, float **image_out)
{
    sg_error err = {0};
    sg_clip *m = sg_clip_load(DIR, prec, pool, &err);
    CHECK_MSG(m != NULL, "load: %s", err.msg);
    if (!m)
        return;
    const int E = sg_clip_get_info(m)->embed_dim;
    CHECK_EQ_INT(E, 32);
    CHECK_EQ_INT(sg_clip_min_short_side(m), 224);
    float emb[64];
    double want[64];
    const bool f32 = prec == SG_PREC_F32;
    json_t *it;
    size_t i;
    json_array_foreach(json_object_get(exp, "images"), i, it)
    {
        const char *path = json_string_value(json_object_get(it, "image"));
        bool exact = json_is_true(json_object_get(it, "exact"));
        vec(json_object_get(it, "embedding"), want, E);
        /* full-size decode: the same pixels PIL sees, so only float rounding differs */
        sg_image img;
        CHECK_MSG(decode_file(path, 0, &img) == 0, "decode %s", path);
        CHECK(sg_clip_encode_image(m, &img, emb, &err) == SG_OK);
        sg_image_free(&img);
        double c = check_cosine_d(emb, want, E);
        if (f32)
            CHECK_MSG(c >= 0.99999, "%s f32 full decode: cosine %.7f", path, c);
        else
            CHECK_MSG(c >= 0.995, "%s int8: cosine %.7f", path, c);
        if (image_out)
            memcpy(image_out[i], emb, sizeof(float) * (size_t)E);
        if (!exact) {
            /* the production path: DCT-scaled decode to >= 224 px, then the same preprocessing */
            CHECK(decode_file(path, 224, &img) == 0);
            CHECK(sg_clip_encode_image(m, &img, emb, &err) == SG_OK);
            sg_image_free(&img);
            c = check_cosine_d(emb, want, E);
            if (getenv("SG_TEST_VERBOSE"))
                printf("%s %s DCT-scaled: cosine %.7f\n", path, f32 ? "f32" : "int8", c);
            CHECK_MSG(c >= (f32 ? 0.995 : 0.99), "%s %s DCT-scaled decode: cosine %.7f", path,
                      f32 ? "f32" : "int8", c);
        }
    }
    json_array_foreach(json_object_get(exp, "texts"), i, it)
    {
        const char *text = json_string_value(json_object_get(it, "text"));
        vec(json_object_get(it, "embedding"), want, E);
        CHECK(sg_clip_encode_text(m, text, emb, &err) == SG_OK);
        double c = check_cosine_d(emb, want, E);
        CHECK_MSG(c >= (f32 ? 0.99999 : 0.995), "text \"%.30s\" %s: cosine %.7f", text,
                  f32 ? "f32" : "int8", c);
    }
    if (f32) {
        json_array_foreach(json_object_get(exp, "classify"), i, it)
        {
            json_t *labels = json_object_get(it, "labels"), *probs = json_object_get(it, "probs");
            int n = (int)json_array_size(labels);
            float *le = malloc(sizeof(float) * (size_t)n * E), p[32];
            for (int k = 0; k < n; k++) {
                sg_clip_encode_text(m, json_string_value(json_array_get(labels, (size_t)k)), le + k * E, &err);
                sg_clip_normalize(le + k * E, E);
            }
            sg_image img;
            decode_file(json_string_value(json_object_get(it, "image")), 0, &img);
            sg_clip_encode_image(m, &img, emb, &err);
            sg_image_free(&img);
            sg_clip_normalize(emb, E);
            sg_clip_zero_shot(m, emb, le, n, p);
            double sum = 0;
            for (int k = 0; k < n; k++) {
                CHECK_NEAR(p[k], json_number_value(json_array_get(probs, (size_t)k)), 1e-4);
                sum += p[k];
            }
            CHECK_NEAR(sum, 1.0, 1e-5);
            free(le);
        }
    }
    sg_clip_free(m);
}

static void copy_file(const char *from, const char *to, size_t truncate_to)
{
    size_t len;
    char *b = check_read_file(from, &len);
    FILE *f = fopen(to, "wb");
    if (b && f)
        fwrite(b, 1, truncate_to && truncate_to < len ? truncate_to : len, f);
    if (f)
        fclose(f);
    free(b);
}

/* A scratch model directory: the fixture with one file replaced. */
static void scratch_dir(char *dir, const char *config_json, size_t truncate_weights)
{
    strcpy(dir, "/tmp/sg_clip_XXXXXX");
    if (!mkdtemp(dir))
        return;
    const char *files[] = {"vocab.json", "merges.txt", "preprocessor_config.json"};
    char a[512], b[512];
    for (int i = 0; i < 3; i++) {
        snprintf(a, sizeof a, DIR "/%s", files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        copy_file(a, b, 0);
    }
    snprintf(b, sizeof b, "%s/model.safetensors", dir);
    copy_file(DIR "/model.safetensors", b, truncate_weights);
    snprintf(b, sizeof b, "%s/config.json", dir);
    if (config_json) {
        FILE *f = fopen(b, "w");
        fputs(config_json, f);
        fclose(f);
    } else {
        copy_file(DIR "/config.json", b, 0);
    }
}

static void remove_dir(const char *dir)
{
    const char *files[] = {"vocab.json", "merges.txt", "preprocessor_config.json", "model.safetensors",
                           "config.json"};
    char p[512];
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void expect_load_error(const char *dir, sg_status code, const char *fragment)
{
    sg_error err = {0};
    sg_clip *m = sg_clip_load(dir, SG_PREC_F32, NULL, &err);
    CHECK_MSG(m == NULL, "%s: loaded but should fail", fragment);
    sg_clip_free(m);
    CHECK_MSG(err.code == code, "%s: code %d, want %d (%s)", fragment, err.code, code, err.msg);
    CHECK_MSG(strstr(err.msg, fragment) != NULL, "message \"%s\" lacks \"%s\"", err.msg, fragment);
}

static void test_load_errors(void)
{
    expect_load_error("/nonexistent/model", SG_EIO, "config.json");
    char dir[64];
    size_t len;
    char *cfg = check_read_file(DIR "/config.json", &len);
    /* one more vision layer than the weights hold: a missing tensor, named */
    json_t *j = json_loads(cfg, 0, NULL);
    json_object_set_new(json_object_get(j, "vision_config"), "num_hidden_layers", json_integer(3));
    char *s = json_dumps(j, 0);
    scratch_dir(dir, s, 0);
    expect_load_error(dir, SG_EINVAL, "vision_model.encoder.layers.2.");
    remove_dir(dir);
    free(s);
    /* a wider text tower: a wrong shape, named */
    json_object_set_new(json_object_get(j, "vision_config"), "num_hidden_layers", json_integer(2));
    json_object_set_new(json_object_get(j, "text_config"), "intermediate_size", json_integer(96));
    s = json_dumps(j, 0);
    scratch_dir(dir, s, 0);
    expect_load_error(dir, SG_EINVAL, "text_model.encoder.layers.0.mlp.fc1.weight");
    remove_dir(dir);
    free(s);
    /* unsupported activation */
    json_object_set_new(json_object_get(j, "text_config"), "intermediate_size", json_integer(64));
    json_object_set_new(json_object_get(j, "text_config"), "hidden_act", json_string("swish"));
    s = json_dumps(j, 0);
    scratch_dir(dir, s, 0);
    expect_load_error(dir, SG_EUNSUPPORTED, "swish");
    remove_dir(dir);
    free(s);
    json_decref(j);
    /* truncated weights */
    scratch_dir(dir, NULL, 100000);
    expect_load_error(dir, SG_EINVAL, "model.safetensors");
    remove_dir(dir);
    /* not JSON */
    scratch_dir(dir, "{\"vision_config\": ", 0);
    expect_load_error(dir, SG_EIO, "config.json");
    remove_dir(dir);
    free(cfg);
}

int main(void)
{
    size_t len;
    char *text = check_read_file(DIR "/expected.json", &len);
    json_t *exp = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    CHECK_MSG(exp != NULL, "cannot read " DIR "/expected.json");
    if (!exp)
        return check_report("test_clip");
    size_t nimg = json_array_size(json_object_get(exp, "images"));
    float **f32 = malloc(nimg * sizeof *f32), **q8 = malloc(nimg * sizeof *q8);
    for (size_t i = 0; i < nimg; i++) {
        f32[i] = malloc(64 * sizeof(float));
        q8[i] = malloc(64 * sizeof(float));
    }
    sg_pool *pool = sg_pool_new(2);
    sg_cpu_level top = sg_cpu_supported();
    for (int lvl = SG_CPU_SCALAR; lvl <= (int)top; lvl++) {
        sg_cpu_level_set((sg_cpu_level)lvl);
        check_model(SG_PREC_F32, lvl == SG_CPU_SCALAR ? NULL : pool, exp, f32);
        check_model(SG_PREC_Q8, pool, exp, q8);
        for (size_t i = 0; i < nimg; i++) {
            double c = check_cosine(f32[i], q8[i], 32);
            CHECK_MSG(c >= 0.995, "int8 vs f32 image %zu at %s: cosine %.6f", i,
                      sg_cpu_level_name((sg_cpu_level)lvl), c);
        }
    }
    sg_cpu_level_set(top);
    test_load_errors();
    for (size_t i = 0; i < nimg; i++) {
        free(f32[i]);
        free(q8[i]);
    }
    free(f32);
    free(q8);
    sg_pool_free(pool);
    json_decref(exp);
    return check_report("test_clip");
}
