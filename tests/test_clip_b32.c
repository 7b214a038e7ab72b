/* A real-size CLIP ViT-B/32 with random weights, generated here (F16 safetensors in the Hugging
 * Face layout, ~300 MB in /tmp, removed afterwards): it must load at both precisions, embed images
 * and text to finite 512-d vectors, repeatably, with int8 close to f32. Shapes and names are the
 * real checkpoint's, so this is the test that B/32 itself loads and runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "models/clip.h"
#include "nn/safetensors.h"

#define MAXT 512

typedef struct gen {
    sg_st_out t[MAXT];
    char names[MAXT][96];
    int n;
    uint64_t rng;
} gen;

static float uniform(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)((*s >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static uint16_t to_f16(float f)
{
    /* values here are small and normal-range: a plain round-to-nearest conversion suffices */
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, e = (x >> 23) & 0xff, m = x & 0x7fffff;
    if (e < 103)
        return (uint16_t)sign;
    if (e < 113) { /* subnormal half */
        m |= 0x800000;
        return (uint16_t)(sign | ((m >> (126 - e)) + ((m >> (125 - e)) & 1)));
    }
    uint32_t h = sign | ((e - 112) << 10) | (m >> 13);
    return (uint16_t)(h + ((m >> 12) & 1));
}

/* Adds a tensor of the given shape: kind 0 = random * scale, 1 = ones, 2 = zeros-ish bias. */
static void add(gen *g, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                float scale, int kind)
{
    if (g->n >= MAXT) {
        fprintf(stderr, "test_clip_b32: more than %d tensors\n", MAXT);
        exit(1);
    }
    sg_st_out *o = &g->t[g->n];
    snprintf(g->names[g->n], sizeof g->names[0], "%s", name);
    o->name = g->names[g->n];
    o->dtype = SG_DT_F16;
    o->ndim = ndim;
    int64_t dims[4] = {d0, d1, d2, d3};
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        o->shape[i] = dims[i];
        n *= (size_t)dims[i];
    }
    uint16_t *d = malloc(n * 2);
    for (size_t i = 0; i < n; i++)
        d[i] = to_f16(kind == 1 ? 1.0f + 0.05f * uniform(&g->rng) : scale * uniform(&g->rng));
    o->data = d;
    g->n++;
}

static void add_layers(gen *g, const char *tower, int layers, int d, int inter)
{
    char b[128];
    for (int i = 0; i < layers; i++) {
        const char *proj[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
        for (int p = 0; p < 4; p++) {
            snprintf(b, sizeof b, "%s.encoder.layers.%d.self_attn.%s.weight", tower, i, proj[p]);
            add(g, b, 2, d, d, 0, 0, 0.035f, 0);
            snprintf(b, sizeof b, "%s.encoder.layers.%d.self_attn.%s.bias", tower, i, proj[p]);
            add(g, b, 1, d, 0, 0, 0, 0.02f, 0);
        }
        for (int n = 1; n <= 2; n++) {
            snprintf(b, sizeof b, "%s.encoder.layers.%d.layer_norm%d.weight", tower, i, n);
            add(g, b, 1, d, 0, 0, 0, 0, 1);
            snprintf(b, sizeof b, "%s.encoder.layers.%d.layer_norm%d.bias", tower, i, n);
            add(g, b, 1, d, 0, 0, 0, 0.02f, 0);
        }
        snprintf(b, sizeof b, "%s.encoder.layers.%d.mlp.fc1.weight", tower, i);
        add(g, b, 2, inter, d, 0, 0, 0.035f, 0);
        snprintf(b, sizeof b, "%s.encoder.layers.%d.mlp.fc1.bias", tower, i);
        add(g, b, 1, inter, 0, 0, 0, 0.02f, 0);
        snprintf(b, sizeof b, "%s.encoder.layers.%d.mlp.fc2.weight", tower, i);
        add(g, b, 2, d, inter, 0, 0, 0.018f, 0);
        snprintf(b, sizeof b, "%s.encoder.layers.%d.mlp.fc2.bias", tower, i);
        add(g, b, 1, d, 0, 0, 0, 0.02f, 0);
    }
}

static int copy(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[65536];
    size_t n;
    while (a && b && (n = fread(buf, 1, sizeof buf, a)) > 0)
        fwrite(buf, 1, n, b);
    int ok = a && b;
    if (a)
        fclose(a);
    if (b)
        fclose(b);
    return ok ? 0 : -1;
}

int main(void)
{
    char dir[] = "/tmp/sg_clip_b32_XXXXXX", path[256];
    if (!mkdtemp(dir)) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return 1;
    }
    gen *g = calloc(1, sizeof *g);
    g->rng = 0x9E3779B97F4A7C15ull;
    add(g, "vision_model.embeddings.class_embedding", 1, 768, 0, 0, 0, 0.05f, 0);
    add(g, "vision_model.embeddings.patch_embedding.weight", 4, 768, 3, 32, 32, 0.02f, 0);
    add(g, "vision_model.embeddings.position_embedding.weight", 2, 50, 768, 0, 0, 0.02f, 0);
    add(g, "vision_model.pre_layrnorm.weight", 1, 768, 0, 0, 0, 0, 1);
    add(g, "vision_model.pre_layrnorm.bias", 1, 768, 0, 0, 0, 0.02f, 0);
    add_layers(g, "vision_model", 12, 768, 3072);
    add(g, "vision_model.post_layernorm.weight", 1, 768, 0, 0, 0, 0, 1);
    add(g, "vision_model.post_layernorm.bias", 1, 768, 0, 0, 0, 0.02f, 0);
    add(g, "visual_projection.weight", 2, 512, 768, 0, 0, 0.035f, 0);
    add(g, "text_model.embeddings.token_embedding.weight", 2, 49408, 512, 0, 0, 0.02f, 0);
    add(g, "text_model.embeddings.position_embedding.weight", 2, 77, 512, 0, 0, 0.01f, 0);
    add_layers(g, "text_model", 12, 512, 2048);
    add(g, "text_model.final_layer_norm.weight", 1, 512, 0, 0, 0, 0, 1);
    add(g, "text_model.final_layer_norm.bias", 1, 512, 0, 0, 0, 0.02f, 0);
    add(g, "text_projection.weight", 2, 512, 512, 0, 0, 0.04f, 0);
    sg_error err = {0};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(sg_st_write(path, g->t, (size_t)g->n, NULL, &err) == SG_OK);
    for (int i = 0; i < g->n; i++)
        free((void *)g->t[i].data);
    free(g);
    /* a real B/32 config.json lists almost nothing: the defaults are the B/32 architecture */
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"architectures\":[\"CLIPModel\"],\"model_type\":\"clip\",\"projection_dim\":512,"
          "\"text_config\":{},\"vision_config\":{}}", f);
    fclose(f);
    const char *tok[] = {"vocab.json", "merges.txt"};
    for (int i = 0; i < 2; i++) {
        char from[128];
        snprintf(from, sizeof from, "tests/fixtures/clip_tokenizer/%s", tok[i]);
        snprintf(path, sizeof path, "%s/%s", dir, tok[i]);
        CHECK(copy(from, path) == 0);
    }

    sg_pool *pool = sg_pool_new(2);
    float img_f32[512], img_q8[512], again[512], txt_f32[512], txt_q8[512];
    for (int p = 0; p < 2; p++) {
        sg_clip *m = sg_clip_load(dir, p ? SG_PREC_Q8 : SG_PREC_F32, pool, &err);
        CHECK_MSG(m != NULL, "load: %s", err.msg);
        if (!m)
            break;
        const sg_clip_info *ci = sg_clip_get_info(m);
        CHECK_EQ_INT(ci->vision_layers, 12);
        CHECK_EQ_INT(ci->vision_width, 768);
        CHECK_EQ_INT(ci->text_width, 512);
        CHECK_EQ_INT(ci->embed_dim, 512);
        sg_image img;
        size_t jl = 0;
        uint8_t *jpeg = check_read_file("../shared/data/images/rocket.jpg", &jl);
        CHECK(jpeg && sg_image_decode(jpeg, jl, sg_clip_min_short_side(m), &img, &err) == SG_OK);
        free(jpeg);
        float *ie = p ? img_q8 : img_f32, *te = p ? txt_q8 : txt_f32;
        CHECK(sg_clip_encode_image(m, &img, ie, &err) == SG_OK);
        CHECK(sg_clip_encode_image(m, &img, again, &err) == SG_OK);
        CHECK(memcmp(ie, again, sizeof again) == 0); /* deterministic */
        sg_image_free(&img);
        CHECK(sg_clip_encode_text(m, "a photo of a rocket", te, &err) == SG_OK);
        int finite = 1;
        for (int i = 0; i < 512; i++)
            finite &= isfinite(ie[i]) && isfinite(te[i]);
        CHECK(finite);
        sg_clip_free(m);
    }
    double ci = check_cosine(img_f32, img_q8, 512), ct = check_cosine(txt_f32, txt_q8, 512);
    CHECK_MSG(ci >= 0.99, "B/32 image int8 vs f32 cosine %.5f", ci);
    CHECK_MSG(ct >= 0.99, "B/32 text int8 vs f32 cosine %.5f", ct);
    printf("B/32 random: int8 vs f32 cosine image %.5f text %.5f\n", ci, ct);
    sg_pool_free(pool);
    const char *files[] = {"model.safetensors", "config.json", "vocab.json", "merges.txt"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    return check_report("test_clip_b32");
}
