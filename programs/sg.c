/* sg: the smartglass-edge command-line tool. Every subcommand prints JSON, one object per line, so
 * scripts can use it. Model subcommands: clip, generate, quantize, vad, transcribe, bench. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <getopt.h>
#include <math.h>
#include <sys/stat.h>

#include "agent/describe.h"
#include "agent/speech.h"
#include "base/clock.h"
#include "media/audio.h"
#include "media/image.h"
#include "models/clip.h"
#include "models/silero_vad.h"
#include "models/snn.h"
#include "models/whisper.h"
#include "nn/cpu.h"
#include "nn/pool.h"
#include "sg_stream.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sg <command> [args]\n"
               "commands:\n"
               "  describe IMAGE...   low-level description of JPEG/PNG files (the vision fallback), JSON\n"
               "  clip embed --model DIR [--precision f32|int8] [--threads N] IMAGE...\n"
               "  clip text --model DIR [--precision f32|int8] [--threads N] TEXT...\n"
               "  clip classify --model DIR [--precision P] [--threads N] IMAGE --labels \"a,b,c\"\n"
               "  bench clip --model DIR [--precision P] [--threads N] [--runs R] IMAGE\n"
               "  generate --model DIR --prompt TEXT [--system TEXT] [--max-tokens N]\n"
               "           [--precision f32|int8] [--threads N] [--tokenizer PATH] [--stop-at-eos]\n"
               "           [--runs R] [--teacher-force IDS]   greedy text from the SNN student\n"
               "           (student.pt or model.safetensors + metadata.json; f32 by default);\n"
               "           tokenizer: the model directory's, else --tokenizer or SG_LLM_TOKENIZER;\n"
               "           --runs times R generations (median); --teacher-force reports how often\n"
               "           the model's next token after each prefix of IDS (comma-separated) is IDS's\n"
               "  quantize --model DIR --out DIR2   the SNN student as an int8 model.safetensors\n"
               "  vad --model PATH [--format wav|pcm_s16le|pcm_f32le] [--sample-rate HZ] [--probs]\n"
               "      AUDIO...   speech segments (Silero VAD ggml file), one JSON object per file;\n"
               "      --probs adds each 32 ms window's speech probability\n"
               "  transcribe --model PATH [--precision f32|int8] [--threads N] [--vad PATH]\n"
               "      [--language xx] [--translate] [--audio-ctx auto|N] [--max-tokens N]\n"
               "      [--format wav|pcm_s16le|pcm_f32le] [--sample-rate HZ] AUDIO\n"
               "      speech to text with Whisper (Hugging Face directory or whisper.cpp ggml .bin;\n"
               "      int8 by default): one JSON object {text, language, segments, timings_ms};\n"
               "      --vad drops silence and cuts audio over 30 s at pauses (Silero ggml file);\n"
               "      --audio-ctx encodes short windows at their own length (auto) or N positions;\n"
               "      AUDIO - reads stdin\n"
               "  bench whisper --model PATH [--precision P] [--threads N] [--vad PATH] [--runs R]\n"
               "      [--language xx] [--audio-ctx auto|N] AUDIO   median timings of the pipeline\n"
               "  stream --server URL --frames DIR|FILE.y4m [--audio FILE.wav] [--battery PCT]\n"
               "      [--duration S] [--speed X] [--json] [--question-every S]   the glasses\n"
               "      simulator (libsgclient policies; sg stream --help)\n"
               "  version             print the version\n"
               "  help                this text\n");
}

static char *read_stream(FILE *f, size_t *len)
{
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                return NULL;
            }
            buf = p;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Shared with sg_stream.c (declared in sg_stream.h). */
char *sg_tool_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = read_stream(f, len);
    fclose(f);
    return buf;
}

static int cmd_describe(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "sg describe: give one or more image files\n");
        return 2;
    }
    int rc = 0;
    for (int i = 0; i < argc; i++) {
        size_t len;
        char *data = sg_tool_read_file(argv[i], &len);
        json_t *o;
        if (!data) {
            o = json_pack("{s:s,s:s}", "image", argv[i], "error", "cannot read the file");
            rc = 1;
        } else {
            sg_error err = {0};
            sg_image img;
            double t0 = sg_now_ms();
            sg_status st = sg_image_decode((const uint8_t *)data, len, SG_DESCRIBE_MIN_SIDE, &img, &err);
            double t1 = sg_now_ms();
            if (st != SG_OK) {
                o = json_pack("{s:s,s:s}", "image", argv[i], "error", err.msg);
                rc = 1;
            } else {
                sg_scene scene;
                sg_describe_image(&img, NULL, &scene);
                double t2 = sg_now_ms();
                o = json_pack("{s:s,s:i,s:i,s:s,s:o,s:f,s:f}", "image", argv[i], "width",
                              img.src_width, "height", img.src_height, "visual_context",
                              scene.summary, "scene", sg_scene_to_json(&scene), "decode_ms",
                              t1 - t0, "describe_ms", t2 - t1);
                sg_image_free(&img);
            }
            free(data);
        }
        char *s = json_dumps(o, JSON_COMPACT);
        if (s)
            puts(s);
        free(s);
        json_decref(o);
    }
    return rc;
}


/* ---- clip ----------------------------------------------------------------------------------- */

typedef struct clip_args {
    const char *model, *labels;
    sg_precision prec;
    int threads, runs;
    int first; /* index of the first positional argument */
} clip_args;

static int parse_clip_args(int argc, char **argv, clip_args *a)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"precision", required_argument, 0, 'p'},
                                         {"threads", required_argument, 0, 't'},
                                         {"labels", required_argument, 0, 'l'},
                                         {"runs", required_argument, 0, 'r'},
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->prec = SG_PREC_Q8;
    a->runs = 20;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:p:t:l:r:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': a->model = optarg; break;
        case 'l': a->labels = optarg; break;
        case 'p':
            if (strcmp(optarg, "int8") == 0)
                a->prec = SG_PREC_Q8;
            else if (strcmp(optarg, "f32") == 0)
                a->prec = SG_PREC_F32;
            else {
                fprintf(stderr, "sg: --precision must be f32 or int8\n");
                return -1;
            }
            break;
        case 't': a->threads = atoi(optarg); break;
        case 'r': a->runs = atoi(optarg); break;
        default: return -1;
        }
    }
    if (!a->model) {
        fprintf(stderr, "sg: --model DIR is required\n");
        return -1;
    }
    if (a->runs < 1)
        a->runs = 1;
    a->first = optind;
    return 0;
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (s)
        puts(s);
    free(s);
    json_decref(o);
}

static json_t *float_array(const float *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

/* Decodes path with DCT scaling to the model's need. */
static sg_status load_image(const sg_clip *m, const char *path, sg_image *img, sg_error *err)
{
    size_t len;
    char *data = sg_tool_read_file(path, &len);
    if (!data)
        return sg_error_set(err, SG_EIO, "cannot read %s", path);
    sg_status st = sg_image_decode((const uint8_t *)data, len, sg_clip_min_short_side(m), img, err);
    free(data);
    return st;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmd_clip(const char *sub, int argc, char **argv)
{
    clip_args a;
    if (parse_clip_args(argc, argv, &a) != 0)
        return 2;
    bool bench = strcmp(sub, "bench") == 0;
    if (strcmp(sub, "embed") && strcmp(sub, "text") && strcmp(sub, "classify") && !bench) {
        fprintf(stderr, "sg clip: unknown subcommand '%s'\n", sub);
        return 2;
    }
    if (a.first >= argc) {
        fprintf(stderr, "sg clip %s: nothing to do (give %s)\n", sub, strcmp(sub, "text") ? "an image" : "text");
        return 2;
    }
    if (strcmp(sub, "classify") == 0 && !a.labels) {
        fprintf(stderr, "sg clip classify: --labels \"a,b,c\" is required\n");
        return 2;
    }
    sg_error err = {0};
    double t0 = sg_now_ms();
    sg_pool *pool = sg_pool_new(a.threads);
    sg_clip *m = pool ? sg_clip_load(a.model, a.prec, pool, &err) : NULL;
    if (!m) {
        fprintf(stderr, "sg: cannot load %s: %s\n", a.model, err.msg);
        sg_pool_free(pool);
        return 1;
    }
    double load_ms = sg_now_ms() - t0;
    const int E = sg_clip_get_info(m)->embed_dim;
    float *emb = malloc((size_t)E * sizeof(float));
    int rc = 0;
    if (strcmp(sub, "text") == 0) {
        for (int i = a.first; i < argc; i++) {
            if (sg_clip_encode_text(m, argv[i], emb, &err) != SG_OK) {
                print_json(json_pack("{s:s,s:s}", "text", argv[i], "error", err.msg));
                rc = 1;
                continue;
            }
            print_json(json_pack("{s:s,s:o}", "text", argv[i], "embedding", float_array(emb, E)));
        }
    } else if (strcmp(sub, "embed") == 0) {
        for (int i = a.first; i < argc; i++) {
            sg_image img;
            if (load_image(m, argv[i], &img, &err) != SG_OK ||
                (sg_clip_encode_image(m, &img, emb, &err) != SG_OK && (sg_image_free(&img), 1))) {
                print_json(json_pack("{s:s,s:s}", "image", argv[i], "error", err.msg));
                rc = 1;
                continue;
            }
            sg_image_free(&img);
            print_json(json_pack("{s:s,s:o}", "image", argv[i], "embedding", float_array(emb, E)));
        }
    } else if (strcmp(sub, "classify") == 0) {
        /* labels: comma-separated, used as given (no template) */
        char *copy = strdup(a.labels);
        int n = 0;
        char *labels[256];
        for (char *tok = strtok(copy, ","); tok && n < 256; tok = strtok(NULL, ","))
            labels[n++] = tok;
        float *le = malloc((size_t)(n ? n : 1) * E * sizeof(float)), *probs = malloc((size_t)(n ? n : 1) * sizeof(float));
        sg_image img;
        if (n == 0) {
            fprintf(stderr, "sg clip classify: no labels\n");
            rc = 2;
        } else {
            for (int i = 0; i < n && rc == 0; i++) {
                if (sg_clip_encode_text(m, labels[i], le + (size_t)i * E, &err) != SG_OK)
                    rc = 1;
                else
                    sg_clip_normalize(le + (size_t)i * E, E);
            }
            if (rc == 0 && load_image(m, argv[a.first], &img, &err) == SG_OK) {
                if (sg_clip_encode_image(m, &img, emb, &err) == SG_OK) {
                    sg_clip_normalize(emb, E);
                    sg_clip_zero_shot(m, emb, le, n, probs);
                    json_t *jl = json_array();
                    for (int i = 0; i < n; i++)
                        json_array_append_new(jl, json_string(labels[i]));
                    print_json(json_pack("{s:s,s:o,s:o}", "image", argv[a.first], "labels", jl, "probs",
                                         float_array(probs, n)));
                } else {
                    rc = 1;
                }
                sg_image_free(&img);
            } else if (rc == 0) {
                rc = 1;
            }
            if (rc == 1)
                print_json(json_pack("{s:s,s:s}", "image", argv[a.first], "error", err.msg));
        }
        free(le);
        free(probs);
        free(copy);
    } else { /* bench: decode + preprocess + forward of one image */
        size_t len;
        char *data = sg_tool_read_file(argv[a.first], &len);
        double *t = malloc((size_t)a.runs * sizeof(double));
        if (!data) {
            fprintf(stderr, "sg bench clip: cannot read %s\n", argv[a.first]);
            rc = 1;
        }
        for (int r = -2; rc == 0 && r < a.runs; r++) { /* two warm-up runs */
            double s = sg_now_ms();
            sg_image img;
            if (sg_image_decode((const uint8_t *)data, len, sg_clip_min_short_side(m), &img, &err) != SG_OK ||
                sg_clip_encode_image(m, &img, emb, &err) != SG_OK) {
                fprintf(stderr, "sg bench clip: %s\n", err.msg);
                rc = 1;
            }
            sg_image_free(&img);
            if (r >= 0)
                t[r] = sg_now_ms() - s;
        }
        if (rc == 0) {
            qsort(t, (size_t)a.runs, sizeof *t, cmp_double);
            const sg_clip_info *ci = sg_clip_get_info(m);
            fprintf(stderr, "clip %s, %d layers x %d wide, %s, %d threads, kernels %s, load %.0f ms\n",
                    a.model, ci->vision_layers, ci->vision_width, a.prec == SG_PREC_Q8 ? "int8" : "f32",
                    sg_pool_size(pool), sg_cpu_level_name(sg_cpu_level_get()), load_ms);
            printf("{\"median_ms\":%.3f,\"p90_ms\":%.3f,\"min_ms\":%.3f,\"runs\":%d}\n", t[a.runs / 2],
                   t[(int)(a.runs * 0.9) < a.runs ? (int)(a.runs * 0.9) : a.runs - 1], t[0], a.runs);
        }
        free(t);
        free(data);
    }
    free(emb);
    sg_clip_free(m);
    sg_pool_free(pool);
    return rc;
}


/* ---- generate, quantize (the SNN student) ------------------------------------------------- */

static json_t *id_array(const int32_t *ids, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer(ids[i]));
    return a;
}

static double round3(double x) { return floor(x * 1000.0 + 0.5) / 1000.0; }

/* --teacher-force IDS: after the prompt and each prefix of IDS (comma-separated), the model's
 * argmax; how often it is the next id of IDS (agreement with another model's greedy tokens). */
static sg_status teacher_force(sg_snn *m, const sg_snn_result *r, const char *list, json_t *o,
                               sg_error *err)
{
    const int V = sg_snn_get_info(m)->vocab;
    int n = 0, cap = r->n_prompt + 4096;
    int32_t *seq = malloc((size_t)cap * sizeof(int32_t)), *ref = malloc(4096 * sizeof(int32_t));
    float *logits = malloc((size_t)V * sizeof(float));
    sg_status st = seq && ref && logits ? SG_OK : sg_error_set(err, SG_ENOMEM, "out of memory");
    for (const char *p = list; st == SG_OK && *p && n < 4096;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            st = sg_error_set(err, SG_EINVAL, "expected comma-separated token ids");
        ref[n++] = (int32_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    json_t *pred = json_array();
    int agree = 0;
    if (st == SG_OK)
        memcpy(seq, r->prompt_tokens, (size_t)r->n_prompt * sizeof(int32_t));
    for (int k = 0; st == SG_OK && k < n; k++) {
        st = sg_snn_last_logits(m, seq, r->n_prompt + k, logits, err);
        int best = 0;
        for (int i = 1; st == SG_OK && i < V; i++)
            if (logits[i] > logits[best])
                best = i;
        json_array_append_new(pred, json_integer(best));
        agree += best == ref[k];
        seq[r->n_prompt + k] = ref[k];
    }
    if (st == SG_OK)
        json_object_set_new(o, "teacher_forced", json_pack("{s:o,s:f}", "tokens", pred, "agreement",
                                                           n ? (double)agree / n : 0.0));
    else
        json_decref(pred);
    free(seq);
    free(ref);
    free(logits);
    return st;
}

static int cmd_generate(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"prompt", required_argument, 0, 'P'},
                                         {"system", required_argument, 0, 's'},
                                         {"max-tokens", required_argument, 0, 'n'},
                                         {"precision", required_argument, 0, 'p'},
                                         {"threads", required_argument, 0, 't'},
                                         {"tokenizer", required_argument, 0, 'k'},
                                         {"stop-at-eos", no_argument, 0, 'e'},
                                         {"runs", required_argument, 0, 'r'},
                                         {"teacher-force", required_argument, 0, 'f'},
                                         {0, 0, 0, 0}};
    const char *model = NULL, *prompt = NULL, *system = NULL, *tokenizer = getenv("SG_LLM_TOKENIZER");
    const char *force = NULL;
    int max_tokens = 64, threads = 0, runs = 1;
    bool stop = false;
    sg_precision prec = SG_PREC_F32;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:P:s:n:p:t:k:er:f:", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'm': model = optarg; break;
        case 'P': prompt = optarg; break;
        case 's': system = optarg; break;
        case 'k': tokenizer = optarg; break;
        case 'e': stop = true; break;
        case 'n':
            max_tokens = (int)strtol(optarg, &end, 10);
            if (*end || end == optarg || max_tokens < 0 || max_tokens > SG_SNN_MAX_CONTEXT) {
                fprintf(stderr, "sg generate: --max-tokens must be 0..%d\n", SG_SNN_MAX_CONTEXT);
                return 2;
            }
            break;
        case 'p':
            if (strcmp(optarg, "int8") == 0)
                prec = SG_PREC_Q8;
            else if (strcmp(optarg, "f32") == 0)
                prec = SG_PREC_F32;
            else {
                fprintf(stderr, "sg generate: --precision must be f32 or int8\n");
                return 2;
            }
            break;
        case 't': threads = atoi(optarg); break;
        case 'r': runs = atoi(optarg) > 0 ? atoi(optarg) : 1; break;
        case 'f': force = optarg; break;
        default: return 2;
        }
    }
    if (!model || !prompt || optind < argc) {
        fprintf(stderr, "sg generate: --model DIR and --prompt TEXT are required\n");
        return 2;
    }
    if (tokenizer && !*tokenizer)
        tokenizer = NULL;
    sg_error err = {0};
    double t0 = sg_now_ms();
    sg_pool *pool = sg_pool_new(threads);
    sg_snn_options opt = {prec, tokenizer};
    sg_snn *m = pool ? sg_snn_load(model, &opt, pool, &err) : NULL;
    if (!m) {
        fprintf(stderr, "sg generate: cannot load %s: %s\n", model, err.msg[0] ? err.msg : "out of memory");
        sg_pool_free(pool);
        return 1;
    }
    double load_ms = sg_now_ms() - t0;
    sg_snn_result r;
    double *gen = malloc((size_t)runs * sizeof(double));
    int rc = 0;
    for (int i = 0; i < runs && rc == 0; i++) {
        if (i > 0)
            sg_snn_result_free(&r);
        if (sg_snn_generate(m, system, prompt, max_tokens, stop, &r, &err) != SG_OK) {
            fprintf(stderr, "sg generate: %s\n", err.msg);
            rc = 1;
        } else {
            gen[i] = r.tokenize_ms + r.generate_ms;
        }
    }
    if (rc == 0) {
        double first = gen[0];
        qsort(gen, (size_t)runs, sizeof *gen, cmp_double);
        json_t *t = json_pack("{s:f,s:f,s:f,s:f}", "load", round3(load_ms), "tokenize", round3(r.tokenize_ms),
                              "generate", round3(runs > 1 ? gen[runs / 2] : r.generate_ms),
                              "total", round3(sg_now_ms() - t0));
        if (runs > 1) {
            json_object_set_new(t, "generate_min", json_real(round3(gen[0])));
            json_object_set_new(t, "generate_first", json_real(round3(first)));
            json_object_set_new(t, "runs", json_integer(runs));
        }
        json_t *o = json_pack("{s:s,s:o,s:o,s:s,s:o,s:f}", "text", r.text, "tokens",
                              id_array(r.tokens, r.n_tokens), "prompt_tokens",
                              id_array(r.prompt_tokens, r.n_prompt), "precision",
                              prec == SG_PREC_Q8 ? "int8" : "f32", "timings_ms", t, "spike_rate",
                              floor(sg_snn_last_firing(m) * 1e4 + 0.5) / 1e4);
        if (force && teacher_force(m, &r, force, o, &err) != SG_OK) {
            fprintf(stderr, "sg generate: --teacher-force: %s\n", err.msg);
            rc = 1;
        }
        print_json(o);
        sg_snn_result_free(&r);
        const sg_snn_info *in = sg_snn_get_info(m);
        fprintf(stderr, "snn %s: vocab %d, dim %d, depth %d, %s%s, %d threads, kernels %s, %.1f MB of weights\n",
                model, in->vocab, in->dim, in->depth, prec == SG_PREC_Q8 ? "int8" : "f32",
                in->prequantized ? " (int8 file)" : "", sg_pool_size(pool),
                sg_cpu_level_name(sg_cpu_level_get()), (double)in->weight_bytes / 1e6);
    }
    free(gen);
    sg_snn_free(m);
    sg_pool_free(pool);
    return rc;
}

static int cmd_quantize(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"out", required_argument, 0, 'o'},
                                         {0, 0, 0, 0}};
    const char *model = NULL, *out = NULL;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:o:", opts, NULL)) != -1) {
        if (c == 'm')
            model = optarg;
        else if (c == 'o')
            out = optarg;
        else
            return 2;
    }
    if (!model || !out || optind < argc) {
        fprintf(stderr, "sg quantize: --model DIR and --out DIR2 are required\n");
        return 2;
    }
    sg_error err = {0};
    double t0 = sg_now_ms();
    if (sg_snn_quantize(model, out, &err) != SG_OK) {
        fprintf(stderr, "sg quantize: %s\n", err.msg);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    struct stat sb;
    long long bytes = stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
    print_json(json_pack("{s:s,s:s,s:I,s:f}", "model", model, "out", path, "bytes", bytes, "ms",
                         round3(sg_now_ms() - t0)));
    return 0;
}

/* ---- vad ------------------------------------------------------------------------------------ */

/* One file: decode, probabilities, segments, one JSON line. */
static int vad_file(const sg_silero *m, const char *path, sg_audio_format fmt, int rate,
                    int with_probs, double load_ms)
{
    sg_error err = {0};
    size_t len;
    char *data = sg_tool_read_file(path, &len);
    if (!data) {
        print_json(json_pack("{s:s,s:s}", "audio", path, "error", "cannot read the file"));
        return 1;
    }
    sg_audio a;
    double t0 = sg_now_ms();
    sg_status st = sg_audio_decode((const uint8_t *)data, len, fmt, rate, 0, &a, &err);
    free(data);
    if (st != SG_OK) {
        print_json(json_pack("{s:s,s:s}", "audio", path, "error", err.msg));
        return 1;
    }
    double t1 = sg_now_ms();
    float *probs = NULL;
    size_t np = 0, ns = 0;
    sg_vad_segment *segs = NULL;
    st = sg_silero_probs(m, a.samples, a.n, &probs, &np, &err);
    if (st == SG_OK)
        st = sg_vad_segments(probs, np, a.n, NULL, &segs, &ns, &err);
    double t2 = sg_now_ms();
    if (st != SG_OK) {
        print_json(json_pack("{s:s,s:s}", "audio", path, "error", err.msg));
        free(probs);
        sg_audio_free(&a);
        return 1;
    }
    json_t *sj = json_array();
    for (size_t i = 0; i < ns; i++)
        json_array_append_new(sj, json_pack("{s:f,s:f}", "start", segs[i].start_s, "end",
                                            segs[i].end_s));
    double sum = 0;
    for (size_t i = 0; i < np; i++)
        sum += probs[i];
    json_t *o = json_pack("{s:s,s:o,s:f,s:I,s:f,s:{s:f,s:f,s:f}}", "audio", path, "segments", sj,
                          "probs_mean", np ? sum / (double)np : 0.0, "windows", (json_int_t)np,
                          "duration", (double)a.n / SG_AUDIO_RATE, "timings_ms", "load",
                          round3(load_ms), "decode", round3(t1 - t0), "vad", round3(t2 - t1));
    if (with_probs)
        json_object_set_new(o, "probs", float_array(probs, (int)np));
    print_json(o);
    free(segs);
    free(probs);
    sg_audio_free(&a);
    return 0;
}

static int cmd_vad(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"format", required_argument, 0, 'f'},
                                         {"sample-rate", required_argument, 0, 'r'},
                                         {"probs", no_argument, 0, 'p'},
                                         {0, 0, 0, 0}};
    const char *model = NULL, *format = NULL;
    int rate = 0, with_probs = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:f:r:p", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'f': format = optarg; break;
        case 'r': rate = atoi(optarg); break;
        case 'p': with_probs = 1; break;
        default: return 2;
        }
    }
    if (!model || optind >= argc) {
        fprintf(stderr, "sg vad: --model PATH and at least one AUDIO file are required\n");
        return 2;
    }
    sg_error err = {0};
    sg_audio_format fmt;
    if (sg_audio_format_parse(format, &fmt, &err) != SG_OK) {
        fprintf(stderr, "sg vad: %s\n", err.msg);
        return 2;
    }
    if ((fmt == SG_AUDIO_PCM_S16LE || fmt == SG_AUDIO_PCM_F32LE) && rate <= 0) {
        fprintf(stderr, "sg vad: headerless PCM needs --sample-rate\n");
        return 2;
    }
    double t0 = sg_now_ms();
    sg_silero *m = sg_silero_load(model, &err);
    if (!m) {
        fprintf(stderr, "sg: cannot load %s: %s\n", model, err.msg);
        return 1;
    }
    double load_ms = sg_now_ms() - t0;
    int rc = 0;
    for (int i = optind; i < argc; i++)
        rc |= vad_file(m, argv[i], fmt, rate, with_probs, load_ms);
    sg_silero_free(m);
    return rc;
}

/* ---- transcribe, bench whisper -------------------------------------------------------------- */

typedef struct whisper_args {
    const char *model, *vad, *language, *format, *audio;
    sg_precision prec;
    int threads, runs, rate, max_tokens, audio_ctx;
    bool translate;
} whisper_args;

/* Parses the options of `sg transcribe` (bench: also --runs); messages name cmd. */
static int parse_whisper_args(const char *cmd, bool bench, int argc, char **argv, whisper_args *a)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"precision", required_argument, 0, 'p'},
                                         {"threads", required_argument, 0, 't'},
                                         {"vad", required_argument, 0, 'v'},
                                         {"language", required_argument, 0, 'l'},
                                         {"translate", no_argument, 0, 'T'},
                                         {"audio-ctx", required_argument, 0, 'c'},
                                         {"max-tokens", required_argument, 0, 'n'},
                                         {"format", required_argument, 0, 'f'},
                                         {"sample-rate", required_argument, 0, 'r'},
                                         {"runs", required_argument, 0, 'R'},
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->prec = SG_PREC_Q8;
    a->runs = 5;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:p:t:v:l:Tc:n:f:r:R:", opts, NULL)) != -1) {
        char *end = NULL;
        long v;
        switch (c) {
        case 'm': a->model = optarg; break;
        case 'v': a->vad = optarg; break;
        case 'l': a->language = optarg; break;
        case 'T': a->translate = true; break;
        case 'f': a->format = optarg; break;
        case 'p':
            if (strcmp(optarg, "int8") == 0)
                a->prec = SG_PREC_Q8;
            else if (strcmp(optarg, "f32") == 0)
                a->prec = SG_PREC_F32;
            else {
                fprintf(stderr, "sg %s: --precision must be f32 or int8\n", cmd);
                return -1;
            }
            break;
        case 'c':
            if (strcmp(optarg, "auto") == 0) {
                a->audio_ctx = SG_SPEECH_AUDIO_CTX_AUTO;
                break;
            }
            v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 0 || v > 100000) {
                fprintf(stderr, "sg %s: --audio-ctx must be auto or a number of encoder positions "
                        "(1500 = 30 s; 0 = standard)\n", cmd);
                return -1;
            }
            a->audio_ctx = (int)v;
            break;
        case 't':
        case 'n':
        case 'r':
        case 'R':
            v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < (c == 'n' ? 0 : 1) || v > 1000000) {
                fprintf(stderr, "sg %s: --%s must be a %s number\n", cmd,
                        c == 't' ? "threads" : c == 'n' ? "max-tokens" : c == 'r' ? "sample-rate" : "runs",
                        c == 'n' ? "non-negative" : "positive");
                return -1;
            }
            if (c == 't')
                a->threads = (int)v;
            else if (c == 'n')
                a->max_tokens = (int)v;
            else if (c == 'r')
                a->rate = (int)v;
            else
                a->runs = (int)v;
            break;
        default: return -1;
        }
        if (c == 'R' && !bench) {
            fprintf(stderr, "sg %s: --runs is for `sg bench whisper`\n", cmd);
            return -1;
        }
    }
    if (!a->model || optind != argc - 1) {
        fprintf(stderr, "sg %s: --model PATH and exactly one AUDIO file (or -) are required\n", cmd);
        return -1;
    }
    a->audio = argv[optind];
    return 0;
}

/* Decodes AUDIO ("-": stdin) to 16 kHz mono. */
static sg_status whisper_audio(const whisper_args *a, sg_audio *au, sg_error *err)
{
    sg_audio_format fmt;
    sg_status st = sg_audio_format_parse(a->format, &fmt, err);
    if (st != SG_OK)
        return st;
    if ((fmt == SG_AUDIO_PCM_S16LE || fmt == SG_AUDIO_PCM_F32LE) && a->rate <= 0)
        return sg_error_set(err, SG_EINVAL, "headerless PCM needs --sample-rate");
    size_t len = 0;
    bool in = strcmp(a->audio, "-") == 0;
    char *data = in ? read_stream(stdin, &len) : sg_tool_read_file(a->audio, &len);
    if (!data)
        return sg_error_set(err, SG_EIO, "cannot read %s", in ? "standard input" : a->audio);
    st = sg_audio_decode((const uint8_t *)data, len, fmt, a->rate, 0, au, err);
    free(data);
    return st;
}

/* Loads the models of a whisper command; prints the reason and returns -1 on failure. */
static int whisper_load(const char *cmd, const whisper_args *a, sg_pool **pool, sg_whisper **m,
                        sg_silero **vad, double *load_ms)
{
    sg_error err = {0};
    double t0 = sg_now_ms();
    *pool = sg_pool_new(a->threads);
    *m = *pool ? sg_whisper_load(a->model, a->prec, *pool, &err) : NULL;
    if (!*m) {
        fprintf(stderr, "sg %s: cannot load the Whisper model %s: %s\n", cmd, a->model,
                err.msg[0] ? err.msg : "out of memory");
        sg_pool_free(*pool);
        return -1;
    }
    *load_ms = sg_now_ms() - t0;
    *vad = NULL;
    if (a->vad && !(*vad = sg_silero_load(a->vad, &err))) {
        fprintf(stderr, "sg %s: cannot load the VAD model %s: %s\n", cmd, a->vad, err.msg);
        sg_whisper_free(*m);
        sg_pool_free(*pool);
        return -1;
    }
    return 0;
}

/* What transcribe and bench whisper both start with: arguments, the audio, the models. 0, or 2
 * after saying why on stderr (nothing left to free then). */
static int whisper_open(const char *cmd, bool bench, int argc, char **argv, whisper_args *a,
                        sg_audio *au, sg_pool **pool, sg_whisper **m, sg_silero **vad,
                        double *load_ms)
{
    if (parse_whisper_args(cmd, bench, argc, argv, a) != 0)
        return 2;
    sg_error err = {0};
    if (whisper_audio(a, au, &err) != SG_OK) {
        fprintf(stderr, "sg %s: %s: %s\n", cmd, a->audio, err.msg);
        return 2;
    }
    if (whisper_load(cmd, a, pool, m, vad, load_ms) != 0) {
        sg_audio_free(au);
        return 2;
    }
    return 0;
}

static int cmd_transcribe(int argc, char **argv)
{
    whisper_args a;
    sg_audio au;
    sg_pool *pool;
    sg_whisper *m;
    sg_silero *vad;
    double load_ms;
    if (whisper_open("transcribe", false, argc, argv, &a, &au, &pool, &m, &vad, &load_ms) != 0)
        return 2;
    sg_error err = {0};
    sg_speech_opts o = {a.language, a.translate, a.audio_ctx, a.max_tokens};
    sg_speech_result r;
    int rc = 0;
    if (sg_speech_transcribe(m, vad, au.samples, au.n, &o, &r, &err) != SG_OK) {
        fprintf(stderr, "sg transcribe: %s\n", err.msg);
        rc = 2;
    } else {
        if (!sg_whisper_has_vocab(m))
            fprintf(stderr, "sg transcribe: note: %s has no vocabulary; text is empty, tokens "
                    "are given\n", a.model);
        json_t *o2 = sg_speech_result_json(&r, load_ms);
        if (!o2) {
            fprintf(stderr, "sg transcribe: out of memory\n");
            rc = 2;
        } else {
            print_json(o2);
        }
        sg_speech_result_free(&r);
    }
    sg_silero_free(vad);
    sg_whisper_free(m);
    sg_pool_free(pool);
    sg_audio_free(&au);
    return rc;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int cmd_bench_whisper(int argc, char **argv)
{
    whisper_args a;
    sg_audio au;
    sg_pool *pool;
    sg_whisper *m;
    sg_silero *vad;
    double load_ms;
    if (whisper_open("bench whisper", true, argc, argv, &a, &au, &pool, &m, &vad, &load_ms) != 0)
        return 2;
    sg_error err = {0};
    sg_speech_opts o = {a.language, a.translate, a.audio_ctx, a.max_tokens};
    enum { MEL, VAD, ENC, DEC, TOK, TOT, NT };
    double *t[NT];
    for (int k = 0; k < NT; k++)
        t[k] = calloc((size_t)a.runs, sizeof(double));
    int rc = 0;
    size_t windows = 0, steps = 0, tokens = 0;
    for (int i = -1; i < a.runs && rc == 0; i++) { /* one warm-up run */
        sg_speech_result r;
        if (sg_speech_transcribe(m, vad, au.samples, au.n, &o, &r, &err) != SG_OK) {
            fprintf(stderr, "sg bench whisper: %s\n", err.msg);
            rc = 2;
            break;
        }
        if (i >= 0) {
            t[MEL][i] = r.t.mel;
            t[VAD][i] = r.t.vad;
            t[ENC][i] = r.t.encode;
            t[DEC][i] = r.t.decode;
            t[TOK][i] = r.n_steps ? r.t.decode / (double)r.n_steps : 0;
            t[TOT][i] = r.t.total;
        }
        windows = r.n_windows;
        steps = r.n_steps;
        tokens = 0;
        for (size_t s = 0; s < r.n_segs; s++)
            tokens += r.segs[s].n_tokens;
        sg_speech_result_free(&r);
    }
    if (rc == 0) {
        const sg_whisper_info *I = sg_whisper_get_info(m);
        char name[128];
        sg_speech_model_name(m, a.model, name, sizeof name);
        double tot_min = t[TOT][0];
        for (int i = 1; i < a.runs; i++)
            tot_min = t[TOT][i] < tot_min ? t[TOT][i] : tot_min;
        json_t *med = json_pack("{s:f,s:f,s:f,s:f,s:f,s:f}", "mel", round3(median(t[MEL], a.runs)),
                                "vad", round3(median(t[VAD], a.runs)), "encode",
                                round3(median(t[ENC], a.runs)), "decode",
                                round3(median(t[DEC], a.runs)), "decode_per_token",
                                round3(median(t[TOK], a.runs)), "total",
                                round3(median(t[TOT], a.runs)));
        print_json(json_pack("{s:s,s:s,s:s,s:i,s:s,s:i,s:f,s:I,s:I,s:I,s:o,s:f,s:f}", "model", name,
                             "precision", a.prec == SG_PREC_Q8 ? "int8" : "f32", "kernels",
                             sg_cpu_level_name(sg_cpu_level_get()), "threads", sg_pool_size(pool),
                             "audio_ctx", a.audio_ctx == SG_SPEECH_AUDIO_CTX_AUTO ? "auto" :
                             a.audio_ctx ? "fixed" : "standard", "runs", a.runs, "audio_s",
                             round3((double)au.n / SG_AUDIO_RATE), "windows", (json_int_t)windows,
                             "tokens", (json_int_t)tokens, "decoder_steps", (json_int_t)steps,
                             "median_ms", med, "total_min_ms", round3(tot_min), "load_ms",
                             round3(load_ms)));
        fprintf(stderr, "whisper %s: d_model %d, %d+%d layers, %.1f MB of weights\n", a.model,
                I->d_model, I->enc_layers, I->dec_layers, (double)I->weight_bytes / 1e6);
    }
    for (int k = 0; k < NT; k++)
        free(t[k]);
    sg_silero_free(vad);
    sg_whisper_free(m);
    sg_pool_free(pool);
    sg_audio_free(&au);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "describe") == 0)
        return cmd_describe(argc - 2, argv + 2);
    if (strcmp(cmd, "clip") == 0 && argc >= 3)
        return cmd_clip(argv[2], argc - 2, argv + 2);
    if (strcmp(cmd, "bench") == 0 && argc >= 3 && strcmp(argv[2], "clip") == 0)
        return cmd_clip("bench", argc - 2, argv + 2);
    if (strcmp(cmd, "generate") == 0)
        return cmd_generate(argc - 1, argv + 1);
    if (strcmp(cmd, "quantize") == 0)
        return cmd_quantize(argc - 1, argv + 1);
    if (strcmp(cmd, "vad") == 0)
        return cmd_vad(argc - 1, argv + 1);
    if (strcmp(cmd, "transcribe") == 0)
        return cmd_transcribe(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0 && argc >= 3 && strcmp(argv[2], "whisper") == 0)
        return cmd_bench_whisper(argc - 2, argv + 2);
    if (strcmp(cmd, "stream") == 0)
        return sg_cmd_stream(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("{\"version\":\"%s\"}\n", SG_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "sg: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
