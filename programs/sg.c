/* sg: the smartglass-edge command-line tool. Every subcommand prints JSON, one object per line, so
 * scripts can use it. The commands are one table at the end of this file (name, synopsis, what it
 * does, options, handler) and each command's options a table of rows with their ranges
 * (programs/sg_opts.h): the parser checks every value and `sg COMMAND --help` prints from them. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>
#include <sys/stat.h>

#include "agent/describe.h"
#include "agent/ocr_tesseract.h"
#include "agent/speech.h"
#include "agent/transcript_format.h"
#include "agent/tts.h"
#include "agent/tts_flite.h"
#include "base/clock.h"
#include "base/file.h"
#include "media/audio.h"
#include "media/image.h"
#include "models/clip.h"
#include "models/silero_vad.h"
#include "models/snn.h"
#include "models/whisper.h"
#include "models/whisper_transcribe.h"
#include "nn/cpu.h"
#include "nn/pool.h"
#include "sg_opts.h"
#include "sg_stream.h"

/* ---- options -------------------------------------------------------------------------------- */

/* Every option of every command lands here; a command sets its defaults before parsing. */
typedef struct cli_args {
    const char *model, *out, *labels, *prompt, *system, *tokenizer, *teacher_force;
    const char *vad, *language, *format, *voice;
    double speak_rate; /* say: 0 = not given (SG_TTS_RATE, else 1) */
    const char *ocr_lang, *tessdata;
    int precision; /* PRECISION_F32 or PRECISION_INT8 */
    int threads, runs, max_tokens, sample_rate, audio_ctx;
    bool probs, translate, stop_at_eos;
    const char *response_format; /* transcribe: openai's transcribe() in this OpenAI format */
    bool word_timestamps;
    double temperature;
} cli_args;

enum { PRECISION_F32, PRECISION_INT8 }; /* the order of the words "f32|int8" */

static sg_precision precision_of(const cli_args *a)
{
    return a->precision == PRECISION_INT8 ? SG_PREC_Q8 : SG_PREC_F32;
}

#define AT(field) offsetof(cli_args, field)
#define THREADS_MAX 256 /* sg_pool's ceiling (src/nn/pool.c): it would clamp more to it */
#define RUNS_MAX 1000000
#define RATE_MAX 1000000

/* Table rows. The letters are the short options each command has always had (-r is --runs for
 * some, --sample-rate for others). */
#define TEXT_OPT(long_name, letter, field, value, text)                                         \
    {.name = long_name, .short_name = letter, .type = SG_OPT_TEXT, .offset = AT(field),         \
     .arg = value, .help = text}
#define FLAG_OPT(long_name, letter, field, text)                                                \
    {.name = long_name, .short_name = letter, .type = SG_OPT_FLAG, .offset = AT(field),         \
     .help = text}
#define INT_OPT(long_name, letter, field, value, lo, hi, default_value, text)                    \
    {.name = long_name, .short_name = letter, .type = SG_OPT_INT, .offset = AT(field),          \
     .arg = value, .min = lo, .max = hi, .def = default_value, .help = text}
#define PRECISION_OPT(default_choice)                                                           \
    {.name = "precision", .short_name = 'p', .type = SG_OPT_CHOICE, .offset = AT(precision),    \
     .arg = "P", .words = "f32|int8", .def = default_choice,                                    \
     .help = "the weights' precision (int8: quantized on load)"}
#define THREADS_OPT                                                                             \
    INT_OPT("threads", 't', threads, "N", 0, THREADS_MAX, 0, "worker threads, 0: one per core")
#define RUNS_OPT(letter, default_runs, text)                                                    \
    INT_OPT("runs", letter, runs, "R", 1, RUNS_MAX, default_runs, text)
#define FORMAT_OPT                                                                              \
    TEXT_OPT("format", 'f', format, "F",                                                        \
             "wav, pcm_s16le, pcm_f32le, flac or ogg (default: from the bytes)")
#define SAMPLE_RATE_OPT                                                                         \
    INT_OPT("sample-rate", 'r', sample_rate, "HZ", 1, RATE_MAX, 0, "the rate of headerless PCM")

static const sg_opt no_opts[] = {{0}}; /* --help only */

static const sg_opt ocr_opts[] = {
    TEXT_OPT("lang", 'l', ocr_lang, "L", "Tesseract languages, e.g. eng+deu (default: SG_OCR_LANG, "
             "else eng)"),
    TEXT_OPT("tessdata", 'd', tessdata, "DIR", "Tesseract's data directory (default: "
             "SG_OCR_TESSDATA, else Debian's)"),
    {0}};

/* clip embed, clip text, clip classify and bench clip take the same options. */
static const sg_opt clip_opts[] = {
    TEXT_OPT("model", 'm', model, "DIR", "the Hugging Face CLIP directory (required)"),
    PRECISION_OPT(PRECISION_INT8),
    THREADS_OPT,
    TEXT_OPT("labels", 'l', labels, "\"a,b,c\"", "clip classify: the labels, used as given"),
    RUNS_OPT('r', 20, "bench clip: timed runs"),
    {0}};

static const sg_opt generate_opts[] = {
    TEXT_OPT("model", 'm', model, "DIR", "the SNN student's directory (required)"),
    TEXT_OPT("prompt", 'P', prompt, "TEXT", "the user's prompt (required)"),
    TEXT_OPT("system", 's', system, "TEXT", "a system prompt"),
    INT_OPT("max-tokens", 'n', max_tokens, "N", 0, SG_SNN_MAX_CONTEXT, 64, "tokens to generate"),
    PRECISION_OPT(PRECISION_F32),
    THREADS_OPT,
    TEXT_OPT("tokenizer", 'k', tokenizer, "PATH", "a .tiktoken file, or a vocab.json directory"),
    FLAG_OPT("stop-at-eos", 'e', stop_at_eos, "stop at <|endoftext|>"),
    RUNS_OPT('r', 1, "generations to time"),
    TEXT_OPT("teacher-force", 'f', teacher_force, "IDS", "comma-separated token ids to follow"),
    {0}};

static const sg_opt quantize_opts[] = {
    TEXT_OPT("model", 'm', model, "DIR", "the SNN student's directory (required)"),
    TEXT_OPT("out", 'o', out, "DIR2", "where the int8 model goes (required)"),
    {0}};

static const sg_opt vad_opts[] = {
    TEXT_OPT("model", 'm', model, "PATH", "the Silero VAD ggml file (required)"),
    FORMAT_OPT,
    SAMPLE_RATE_OPT,
    FLAG_OPT("probs", 'p', probs, "add each 32 ms window's speech probability"),
    {0}};

static const sg_opt say_opts[] = {
    TEXT_OPT("out", 'o', out, "FILE", "where the audio goes: FILE.ogg (Ogg Opus) or FILE.wav (required)"),
    TEXT_OPT("format", 'f', format, "F", "ogg or wav (default: from FILE's extension, else ogg)"),
    TEXT_OPT("voice", 'v', voice, "V",
             "a flite voice: " SG_TTS_FLITE_VOICES " (default: SG_TTS_VOICE, else slt)"),
    {.name = "rate", .short_name = 'r', .type = SG_OPT_NUMBER, .offset = AT(speak_rate),
     .arg = "R", .min = SG_TTS_RATE_MIN, .max = SG_TTS_RATE_MAX, .def = 0,
     .help = "speaking rate, 2 = twice as fast (default: SG_TTS_RATE, else 1)"},
    {0}};

/* transcribe and bench whisper. */
static const sg_opt whisper_opts[] = {
    TEXT_OPT("model", 'm', model, "PATH", "a Whisper directory or ggml .bin (required)"),
    PRECISION_OPT(PRECISION_INT8),
    THREADS_OPT,
    TEXT_OPT("vad", 'v', vad, "PATH", "a Silero VAD ggml file: drop silence, cut at pauses"),
    TEXT_OPT("language", 'l', language, "xx", "the spoken language (default: detected)"),
    FLAG_OPT("translate", 'T', translate, "translate to English"),
    {.name = "audio-ctx", .short_name = 'c', .type = SG_OPT_INT, .offset = AT(audio_ctx),
     .arg = "N", .min = 0, .max = 100000, .words = "auto", .word_value = SG_SPEECH_AUDIO_CTX_AUTO,
     .help = "encoder positions: auto = each window's own, 1500 = 30 s, 0 = standard"},
    INT_OPT("max-tokens", 'n', max_tokens, "N", 0, 1000000, 0,
            "tokens per window, 0: n_text_ctx / 2"),
    FORMAT_OPT,
    SAMPLE_RATE_OPT,
    {.name = "runs", .short_name = 'R', .type = SG_OPT_INT, .offset = AT(runs), .arg = "R",
     .min = 1, .max = RUNS_MAX, .def = 5, .only = "bench whisper", .help = "timed runs"},
    {.name = "response-format", .short_name = 'F', .type = SG_OPT_TEXT, .offset = AT(response_format),
     .arg = "FMT", .only = "transcribe",
     .help = "json|text|srt|vtt|verbose_json: openai/whisper's transcribe() (timestamps, seeking, "
             "temperature fallback; no VAD), printed as POST /v1/audio/transcriptions answers"},
    {.name = "word-timestamps", .short_name = 'w', .type = SG_OPT_FLAG, .offset = AT(word_timestamps),
     .only = "transcribe", .help = "with --response-format verbose_json: word times too"},
    {.name = "temperature", .type = SG_OPT_NUMBER, .offset = AT(temperature), .arg = "T", .min = 0,
     .max = 1, .def = 0, .only = "transcribe",
     .help = "with --response-format: the first temperature (fallback steps of 0.2 up to 1)"},
    {.name = "prompt", .type = SG_OPT_TEXT, .offset = AT(prompt), .arg = "TEXT", .only = "transcribe",
     .help = "with --response-format: openai's initial_prompt"},
    {0}};

/* The CLI reads inputs up to this size (a whole audio file or photo; models are mapped). */
#define SG_TOOL_MAX_INPUT ((size_t)1 << 30)

static char *read_stream(FILE *f, size_t *len)
{
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            char *p = cap <= SG_TOOL_MAX_INPUT ? realloc(buf, cap) : NULL;
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

/* Shared with sg_stream.c (declared in sg_stream.h): base/file's bounded reader. */
char *sg_tool_read_file(const char *path, size_t *len)
{
    char *data;
    return sg_file_read(path, SG_TOOL_MAX_INPUT, &data, len, NULL) == SG_OK ? data : NULL;
}

static int cmd_describe(const sg_opts_cmd *cmd, const void *args, int argc, char **argv)
{
    (void)cmd;
    (void)args;
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

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (s)
        puts(s);
    free(s);
    json_decref(o);
}

/* ---- ocr ------------------------------------------------------------------------------------ */

static int cmd_ocr(const sg_opts_cmd *cmd, const void *args, int argc, char **argv)
{
    (void)cmd;
    const cli_args *a = args;
    if (argc < 1) {
        fprintf(stderr, "sg ocr: give one or more image files\n");
        return 2;
    }
    sg_ocr_tesseract_thread_env(); /* before Tesseract starts its OpenMP threads */
    sg_ocr_tesseract_options o = {a->ocr_lang ? a->ocr_lang : getenv("SG_OCR_LANG"),
                                  a->tessdata ? a->tessdata : getenv("SG_OCR_TESSDATA"), 1};
    sg_error err = {0};
    sg_ocr_tesseract *t = sg_ocr_tesseract_open(&o, &err);
    if (!t) {
        fprintf(stderr, "sg ocr: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < argc; i++) {
        size_t len;
        char *data = sg_tool_read_file(argv[i], &len);
        json_t *out;
        if (!data) {
            out = json_pack("{s:s,s:s}", "image", argv[i], "error", "cannot read the file");
            rc = 1;
        } else {
            sg_image img;
            sg_ocr_result r = {0};
            double t0 = sg_now_ms();
            sg_status st = sg_image_decode((const uint8_t *)data, len, 0, &img, &err);
            double decode_ms = sg_now_ms() - t0;
            free(data);
            if (st == SG_OK) {
                st = sg_ocr_read_image(sg_ocr_tesseract_backend(t), &img, &r, &err);
                sg_image_free(&img);
            }
            out = st == SG_OK ? sg_ocr_result_to_json(&r) : NULL;
            if (out) {
                json_object_set_new(out, "image", json_string(argv[i]));
                json_object_set_new(json_object_get(out, "timings_ms"), "decode",
                                    json_real(round(decode_ms * 1000.0) / 1000.0));
            } else {
                out = json_pack("{s:s,s:s}", "image", argv[i], "error",
                                st == SG_OK ? "out of memory" : err.msg);
                rc = 1;
            }
            sg_ocr_result_free(&r);
        }
        print_json(out);
    }
    sg_ocr_tesseract_free(t);
    return rc;
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

/* clip embed, clip text, clip classify, bench clip. */
static int cmd_clip(const sg_opts_cmd *cmd, const void *args, int argc, char **argv)
{
    const cli_args a = *(const cli_args *)args;
    const char *sub = strcmp(cmd->name, "bench clip") == 0 ? "bench" : cmd->name + strlen("clip ");
    const sg_precision prec = precision_of(&a);
    if (!a.model) {
        fprintf(stderr, "sg %s: --model DIR is required\n", cmd->name);
        return 2;
    }
    if (argc < 1) {
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
    sg_clip *m = pool ? sg_clip_load(a.model, prec, pool, &err) : NULL;
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
        for (int i = 0; i < argc; i++) {
            if (sg_clip_encode_text(m, argv[i], emb, &err) != SG_OK) {
                print_json(json_pack("{s:s,s:s}", "text", argv[i], "error", err.msg));
                rc = 1;
                continue;
            }
            print_json(json_pack("{s:s,s:o}", "text", argv[i], "embedding", float_array(emb, E)));
        }
    } else if (strcmp(sub, "embed") == 0) {
        for (int i = 0; i < argc; i++) {
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
            if (rc == 0 && load_image(m, argv[0], &img, &err) == SG_OK) {
                if (sg_clip_encode_image(m, &img, emb, &err) == SG_OK) {
                    sg_clip_normalize(emb, E);
                    sg_clip_zero_shot(m, emb, le, n, probs);
                    json_t *jl = json_array();
                    for (int i = 0; i < n; i++)
                        json_array_append_new(jl, json_string(labels[i]));
                    print_json(json_pack("{s:s,s:o,s:o}", "image", argv[0], "labels", jl, "probs",
                                         float_array(probs, n)));
                } else {
                    rc = 1;
                }
                sg_image_free(&img);
            } else if (rc == 0) {
                rc = 1;
            }
            if (rc == 1)
                print_json(json_pack("{s:s,s:s}", "image", argv[0], "error", err.msg));
        }
        free(le);
        free(probs);
        free(copy);
    } else { /* bench: decode + preprocess + forward of one image */
        size_t len;
        char *data = sg_tool_read_file(argv[0], &len);
        double *t = malloc((size_t)a.runs * sizeof(double));
        if (!data) {
            fprintf(stderr, "sg bench clip: cannot read %s\n", argv[0]);
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
                    a.model, ci->vision_layers, ci->vision_width, prec == SG_PREC_Q8 ? "int8" : "f32",
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

/* For the commands that take no operands: 0, or 2 after saying which one is too many. */
static int no_operands(const sg_opts_cmd *cmd, int argc, char **argv)
{
    if (argc == 0)
        return 0;
    fprintf(stderr, "sg %s: unexpected argument '%s'\n", cmd->name, argv[0]);
    return 2;
}

static int cmd_generate(const sg_opts_cmd *cmd, const void *args, int argc, char **argv)
{
    const cli_args a = *(const cli_args *)args;
    if (no_operands(cmd, argc, argv))
        return 2;
    if (!a.model || !a.prompt) {
        fprintf(stderr, "sg generate: --model DIR and --prompt TEXT are required\n");
        return 2;
    }
    const char *model = a.model, *tokenizer = a.tokenizer ? a.tokenizer : getenv("SG_LLM_TOKENIZER");
    const int runs = a.runs;
    const sg_precision prec = precision_of(&a);
    if (tokenizer && !*tokenizer)
        tokenizer = NULL;
    sg_error err = {0};
    double t0 = sg_now_ms();
    sg_pool *pool = sg_pool_new(a.threads);
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
        if (sg_snn_generate(m, a.system, a.prompt, a.max_tokens, a.stop_at_eos, &r, &err) != SG_OK) {
            fprintf(stderr, "sg generate: %s\n", err.msg);
            rc = 1;
        } else {
            gen[i] = r.tokenize_ms + r.generate_ms;
        }
    }
    if (rc == 0) {
        double first_ms = gen[0];
        qsort(gen, (size_t)runs, sizeof *gen, cmp_double);
        json_t *t = json_pack("{s:f,s:f,s:f,s:f}", "load", round3(load_ms), "tokenize", round3(r.tokenize_ms),
                              "generate", round3(runs > 1 ? gen[runs / 2] : r.generate_ms),
                              "total", round3(sg_now_ms() - t0));
        if (runs > 1) {
            json_object_set_new(t, "generate_min", json_real(round3(gen[0])));
            json_object_set_new(t, "generate_first", json_real(round3(first_ms)));
            json_object_set_new(t, "runs", json_integer(runs));
        }
        json_t *o = json_pack("{s:s,s:o,s:o,s:s,s:o,s:f}", "text", r.text, "tokens",
                              id_array(r.tokens, r.n_tokens), "prompt_tokens",
                              id_array(r.prompt_tokens, r.n_prompt), "precision",
                              prec == SG_PREC_Q8 ? "int8" : "f32", "timings_ms", t, "spike_rate",
                              floor(sg_snn_last_firing(m) * 1e4 + 0.5) / 1e4);
        if (a.teacher_force && teacher_force(m, &r, a.teacher_force, o, &err) != SG_OK) {
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

static int cmd_quantize(const sg_opts_cmd *cmd, const void *args, int argc, char **argv)
{
    const cli_args *a = args;
    if (no_operands(cmd, argc, argv))
        return 2;
    if (!a->model || !a->out) {
        fprintf(stderr, "sg quantize: --model DIR and --out DIR2 are required\n");
        return 2;
    }
    const char *model = a->model, *out = a->out;
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

static int cmd_vad(const sg_opts_cmd *cmd, const void *args, int argc, char **argv)
{
    (void)cmd;
    const cli_args a = *(const cli_args *)args;
    if (!a.model || argc < 1) {
        fprintf(stderr, "sg vad: --model PATH and at least one AUDIO file are required\n");
        return 2;
    }
    sg_error err = {0};
    sg_audio_format fmt;
    if (sg_audio_format_parse(a.format, &fmt, &err) != SG_OK) {
        fprintf(stderr, "sg vad: %s\n", err.msg);
        return 2;
    }
    if ((fmt == SG_AUDIO_PCM_S16LE || fmt == SG_AUDIO_PCM_F32LE) && a.sample_rate <= 0) {
        fprintf(stderr, "sg vad: headerless PCM needs --sample-rate\n");
        return 2;
    }
    double t0 = sg_now_ms();
    sg_silero *m = sg_silero_load(a.model, &err);
    if (!m) {
        fprintf(stderr, "sg: cannot load %s: %s\n", a.model, err.msg);
        return 1;
    }
    double load_ms = sg_now_ms() - t0;
    int rc = 0;
    for (int i = 0; i < argc; i++)
        rc |= vad_file(m, argv[i], fmt, a.sample_rate, a.probs, load_ms);
    sg_silero_free(m);
    return rc;
}

/* ---- say ------------------------------------------------------------------------------------ */

static bool write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static int cmd_say(const sg_opts_cmd *cmd, const void *args, int argc, char **argv)
{
    (void)cmd;
    const cli_args a = *(const cli_args *)args;
    if (!a.out || argc < 1) {
        fprintf(stderr, "sg say: TEXT and --out FILE.ogg|FILE.wav are required\n");
        return 2;
    }
    sg_error err = {0};
    sg_tts_format fmt = SG_TTS_OGG;
    const char *dot = strrchr(a.out, '.');
    const char *fmt_name = a.format ? a.format : dot && strcmp(dot, ".wav") == 0 ? "wav" : "ogg";
    if (sg_tts_format_parse(fmt_name, &fmt, &err) != SG_OK) {
        fprintf(stderr, "sg say: --format: %s\n", err.msg);
        return 2;
    }
    double rate = a.speak_rate;
    const char *env_rate = getenv("SG_TTS_RATE");
    if (rate == 0 && env_rate && *env_rate && sg_tts_rate_parse(env_rate, &rate, &err) != SG_OK) {
        fprintf(stderr, "sg say: SG_TTS_RATE: %s\n", err.msg);
        return 2;
    }
    const char *voice = a.voice ? a.voice : getenv("SG_TTS_VOICE");
    /* the operands are the text, joined by spaces; "-" alone reads it from stdin */
    char *text = NULL;
    size_t len = 0;
    if (argc == 1 && strcmp(argv[0], "-") == 0) {
        text = read_stream(stdin, &len);
        char *z = text ? realloc(text, len + 1) : NULL;
        if (!z) {
            free(text);
            fprintf(stderr, "sg say: cannot read the text from stdin\n");
            return 1;
        }
        text = z;
        text[len] = 0;
    } else {
        for (int i = 0; i < argc; i++)
            len += strlen(argv[i]) + 1;
        text = calloc(1, len + 1);
        for (int i = 0; text && i < argc; i++) {
            if (i)
                strcat(text, " ");
            strcat(text, argv[i]);
        }
        if (!text)
            return 1;
    }
    double t0 = sg_now_ms();
    sg_tts_flite *f = sg_tts_flite_open(voice, rate, &err);
    if (!f) {
        fprintf(stderr, "sg say: %s\n", err.msg);
        free(text);
        return 2;
    }
    double t1 = sg_now_ms();
    const sg_tts_backend *tts = sg_tts_flite_backend(f);
    sg_tts_audio au;
    sg_status st = sg_tts_speak(tts, text, 0, 0, fmt, &au, &err);
    double t2 = sg_now_ms();
    free(text);
    int rc = 0;
    if (st != SG_OK) {
        fprintf(stderr, "sg say: %s\n", err.msg);
        rc = 1;
    } else if (!write_file(a.out, au.data, au.len)) {
        fprintf(stderr, "sg say: cannot write %s\n", a.out);
        rc = 1;
    } else {
        if (au.truncated)
            fprintf(stderr, "sg say: the text is longer than %d characters (or %.0f s of speech): "
                    "only its first %zu characters were spoken\n", SG_TTS_MAX_CHARS,
                    SG_TTS_MAX_SECONDS, au.chars);
        json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:f,s:I,s:b,s:{s:f,s:f},s:f}", "out", a.out, "voice",
                              tts->name, "format", sg_tts_format_name(au.format), "sample_rate",
                              au.sample_rate, "duration_s", round3(au.duration_s), "chars",
                              (json_int_t)au.chars, "truncated", au.truncated, "timings_ms",
                              "voice", round3(t1 - t0), "synthesis", round3(t2 - t1),
                              "real_time_factor", round3((t2 - t1) / 1000.0 / au.duration_s));
        print_json(o);
    }
    sg_tts_audio_free(&au);
    sg_tts_flite_free(f);
    return rc;
}

/* ---- transcribe, bench whisper -------------------------------------------------------------- */

/* What transcribe and bench whisper work on: their arguments, the audio, the models. */
typedef struct whisper_job {
    cli_args a;
    const char *audio; /* the operand; "-": standard input */
    sg_audio au;
    sg_pool *pool;
    sg_whisper *model;
    sg_silero *vad;
    sg_speech_opts opts;
    double load_ms;
} whisper_job;

/* Decodes the job's audio to 16 kHz mono. */
static sg_status whisper_audio(whisper_job *j, sg_error *err)
{
    sg_audio_format fmt;
    sg_status st = sg_audio_format_parse(j->a.format, &fmt, err);
    if (st != SG_OK)
        return st;
    if ((fmt == SG_AUDIO_PCM_S16LE || fmt == SG_AUDIO_PCM_F32LE) && j->a.sample_rate <= 0)
        return sg_error_set(err, SG_EINVAL, "headerless PCM needs --sample-rate");
    size_t len = 0;
    bool in = strcmp(j->audio, "-") == 0;
    char *data = in ? read_stream(stdin, &len) : sg_tool_read_file(j->audio, &len);
    if (!data)
        return sg_error_set(err, SG_EIO, "cannot read %s", in ? "standard input" : j->audio);
    st = sg_audio_decode((const uint8_t *)data, len, fmt, j->a.sample_rate, 0, &j->au, err);
    free(data);
    return st;
}

/* Loads the job's models; prints the reason and returns -1 on failure. */
static int whisper_load(const char *cmd, whisper_job *j)
{
    sg_error err = {0};
    double t0 = sg_now_ms();
    j->pool = sg_pool_new(j->a.threads);
    j->model = j->pool ? sg_whisper_load(j->a.model, precision_of(&j->a), j->pool, &err) : NULL;
    if (!j->model) {
        fprintf(stderr, "sg %s: cannot load the Whisper model %s: %s\n", cmd, j->a.model,
                err.msg[0] ? err.msg : "out of memory");
        sg_pool_free(j->pool);
        return -1;
    }
    j->load_ms = sg_now_ms() - t0;
    j->vad = NULL;
    if (j->a.vad && !(j->vad = sg_silero_load(j->a.vad, &err))) {
        fprintf(stderr, "sg %s: cannot load the VAD model %s: %s\n", cmd, j->a.vad, err.msg);
        sg_whisper_free(j->model);
        sg_pool_free(j->pool);
        return -1;
    }
    return 0;
}

/* What transcribe and bench whisper both start with: the audio, the models. 0, or 2 after saying
 * why on stderr (nothing left to free then). */
static int whisper_open(const sg_opts_cmd *cmd, const void *args, int argc, char **argv,
                        whisper_job *j)
{
    *j = (whisper_job){.a = *(const cli_args *)args};
    if (!j->a.model || argc != 1) {
        fprintf(stderr, "sg %s: --model PATH and exactly one AUDIO file (or -) are required\n",
                cmd->name);
        return 2;
    }
    j->audio = argv[0];
    j->opts = (sg_speech_opts){j->a.language, j->a.translate, j->a.audio_ctx, j->a.max_tokens};
    sg_error err = {0};
    if (whisper_audio(j, &err) != SG_OK) {
        fprintf(stderr, "sg %s: %s: %s\n", cmd->name, j->audio, err.msg);
        return 2;
    }
    if (whisper_load(cmd->name, j) != 0) {
        sg_audio_free(&j->au);
        return 2;
    }
    return 0;
}

static void whisper_close(whisper_job *j)
{
    sg_silero_free(j->vad);
    sg_whisper_free(j->model);
    sg_pool_free(j->pool);
    sg_audio_free(&j->au);
}

/* sg transcribe --response-format: what POST /v1/audio/transcriptions (or /translations) answers
 * for the same audio, model and options, byte for byte. */
static int transcribe_openai(whisper_job *j)
{
    const cli_args *a = &j->a;
    sg_error err = {0};
    sg_transcript_format fmt;
    sg_transcript_format_opts fo = {.translate = a->translate};
    sg_whisper_transcribe_opts o;
    sg_whisper_transcribe_opts_default(&o);
    o.translate = a->translate;
    o.initial_prompt = a->prompt;
    o.word_timestamps = a->word_timestamps;
    o.n_temperatures = 0;
    for (int i = 0; i < SG_WHISPER_MAX_TEMPERATURES && a->temperature + 0.2 * i <= 1.0 + 1e-6; i++)
        o.temperatures[o.n_temperatures++] = (float)(a->temperature + 0.2 * i);
    if (a->word_timestamps)
        fo.granularities = SG_TRANSCRIPT_GRAN_SEGMENT | SG_TRANSCRIPT_GRAN_WORD;
    if (sg_transcript_format_parse(a->response_format, &fmt, &err) != SG_OK) {
        fprintf(stderr, "sg transcribe: %s\n", err.msg);
        return 2;
    }
    if (a->language && a->language[0] && sg_whisper_get_info(j->model)->multilingual) {
        const char *code = sg_whisper_language_lookup(a->language);
        if ((o.language = code ? sg_whisper_language_token(j->model, code) : -1) < 0) {
            fprintf(stderr, "sg transcribe: unknown language '%s'\n", a->language);
            return 2;
        }
    }
    sg_whisper_transcript t;
    char *out = NULL;
    sg_status st = sg_speech_transcribe_openai(j->model, j->au.samples, j->au.n, &o, &t, &err);
    if (st == SG_OK) {
        fo.language = t.language >= 0 ? sg_whisper_language_code(j->model, t.language) : NULL;
        st = sg_transcript_format_write(&t, fmt, &fo, &out, NULL, &err);
    }
    sg_whisper_transcript_free(&t);
    if (st != SG_OK) {
        fprintf(stderr, "sg transcribe: %s\n", err.msg);
        return 2;
    }
    fputs(out, stdout);
    free(out);
    return 0;
}

static int cmd_transcribe(const sg_opts_cmd *cmd, const void *args, int argc, char **argv)
{
    whisper_job j;
    if (whisper_open(cmd, args, argc, argv, &j) != 0)
        return 2;
    if (j.a.response_format) {
        int rc2 = transcribe_openai(&j);
        whisper_close(&j);
        return rc2;
    }
    int rc = 0;
    sg_error err = {0};
    sg_speech_result r;
    if (sg_speech_transcribe(j.model, j.vad, j.au.samples, j.au.n, &j.opts, &r, &err) != SG_OK) {
        fprintf(stderr, "sg transcribe: %s\n", err.msg);
        rc = 2;
    } else {
        if (!sg_whisper_has_vocab(j.model))
            fprintf(stderr, "sg transcribe: note: %s has no vocabulary; text is empty, tokens "
                    "are given\n", j.a.model);
        json_t *o2 = sg_speech_result_json(&r, j.load_ms);
        if (!o2) {
            fprintf(stderr, "sg transcribe: out of memory\n");
            rc = 2;
        } else {
            print_json(o2);
        }
        sg_speech_result_free(&r);
    }
    whisper_close(&j);
    return rc;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int cmd_bench_whisper(const sg_opts_cmd *cmd, const void *args, int argc, char **argv)
{
    whisper_job j;
    if (whisper_open(cmd, args, argc, argv, &j) != 0)
        return 2;
    int rc = 0;
    const cli_args a = j.a;
    sg_error err = {0};
    enum { MEL, VAD, ENC, DEC, TOK, TOT, NT };
    double *t[NT];
    for (int k = 0; k < NT; k++)
        t[k] = calloc((size_t)a.runs, sizeof(double));
    size_t windows = 0, steps = 0, tokens = 0;
    for (int i = -1; i < a.runs && rc == 0; i++) { /* one warm-up run */
        sg_speech_result r;
        if (sg_speech_transcribe(j.model, j.vad, j.au.samples, j.au.n, &j.opts, &r, &err) != SG_OK) {
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
        const sg_whisper_info *I = sg_whisper_get_info(j.model);
        char name[128];
        sg_speech_model_name(j.model, a.model, name, sizeof name);
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
                             "precision", a.precision == PRECISION_INT8 ? "int8" : "f32", "kernels",
                             sg_cpu_level_name(sg_cpu_level_get()), "threads", sg_pool_size(j.pool),
                             "audio_ctx", a.audio_ctx == SG_SPEECH_AUDIO_CTX_AUTO ? "auto" :
                             a.audio_ctx ? "fixed" : "standard", "runs", a.runs, "audio_s",
                             round3((double)j.au.n / SG_AUDIO_RATE), "windows", (json_int_t)windows,
                             "tokens", (json_int_t)tokens, "decoder_steps", (json_int_t)steps,
                             "median_ms", med, "total_min_ms", round3(tot_min), "load_ms",
                             round3(j.load_ms)));
        fprintf(stderr, "whisper %s: d_model %d, %d+%d layers, %.1f MB of weights\n", a.model,
                I->d_model, I->enc_layers, I->dec_layers, (double)I->weight_bytes / 1e6);
    }
    for (int k = 0; k < NT; k++)
        free(t[k]);
    whisper_close(&j);
    return rc;
}


/* ---- the commands -------------------------------------------------------------------------- */

/* sg stream parses its own options (programs/sg_stream.c). */
static int cmd_stream(const sg_opts_cmd *cmd, const void *args, int argc, char **argv)
{
    (void)cmd;
    (void)args;
    return sg_cmd_stream(argc, argv);
}

static int cmd_version(const sg_opts_cmd *cmd, const void *args, int argc, char **argv)
{
    (void)cmd;
    (void)args;
    (void)argc;
    (void)argv;
    printf("{\"version\":\"%s\"}\n", SG_VERSION);
    return 0;
}

static int cmd_help(const sg_opts_cmd *cmd, const void *args, int argc, char **argv);

/* One row a command, in the order `sg help` lists them. */
static const sg_opts_cmd commands[] = {
    {"describe", "IMAGE...", "low-level description of JPEG/PNG files (the vision fallback), JSON\n",
     no_opts, cmd_describe},
    {"ocr", "[--lang L] [--tessdata DIR] IMAGE...",
     "the text in JPEG/PNG files (text regions read by Tesseract), one JSON object per image:\n"
     "{text, lines: [{text, confidence, box: [x, y, w, h]}], regions, timings_ms}\n",
     ocr_opts, cmd_ocr},
    {"clip embed", "--model DIR [--precision f32|int8] [--threads N] IMAGE...",
     "CLIP image embeddings (get_image_features), one JSON object per image\n", clip_opts,
     cmd_clip},
    {"clip text", "--model DIR [--precision f32|int8] [--threads N] TEXT...",
     "CLIP text embeddings (get_text_features), one JSON object per text\n", clip_opts, cmd_clip},
    {"clip classify", "--model DIR [--precision P] [--threads N] IMAGE --labels \"a,b,c\"",
     "zero-shot probabilities of the labels for the image\n", clip_opts, cmd_clip},
    {"bench clip", "--model DIR [--precision P] [--threads N] [--runs R] IMAGE",
     "median, p90 and min ms of decode + preprocess + forward of one image\n", clip_opts,
     cmd_clip},
    {"generate",
     "--model DIR --prompt TEXT [--system TEXT] [--max-tokens N]\n"
     "      [--precision f32|int8] [--threads N] [--tokenizer PATH] [--stop-at-eos]\n"
     "      [--runs R] [--teacher-force IDS]",
     "greedy text from the SNN student (student.pt or model.safetensors + metadata.json; f32 by\n"
     "default); tokenizer: the model directory's, else --tokenizer or SG_LLM_TOKENIZER;\n"
     "--runs times R generations (median); --teacher-force reports how often the model's next\n"
     "token after each prefix of IDS (comma-separated) is IDS's\n",
     generate_opts, cmd_generate},
    {"quantize", "--model DIR --out DIR2", "the SNN student as an int8 model.safetensors\n",
     quantize_opts, cmd_quantize},
    {"vad", "--model PATH [--format wav|pcm_s16le|pcm_f32le] [--sample-rate HZ] [--probs] AUDIO...",
     "speech segments (Silero VAD ggml file), one JSON object per file; --probs adds each 32 ms\n"
     "window's speech probability\n",
     vad_opts, cmd_vad},
    {"say", "--out FILE.ogg|FILE.wav [--format ogg|wav] [--voice V] [--rate R] TEXT...",
     "speech from text with flite (Ogg Opus or WAV); TEXT - reads stdin; longer than 2,000\n"
     "characters: the start is spoken and the JSON says truncated\n",
     say_opts, cmd_say},
    {"transcribe",
     "--model PATH [--precision f32|int8] [--threads N] [--vad PATH]\n"
     "      [--language xx] [--translate] [--audio-ctx auto|N] [--max-tokens N]\n"
     "      [--response-format json|text|srt|vtt|verbose_json [--word-timestamps]\n"
     "       [--temperature T] [--prompt TEXT]]\n"
     "      [--format wav|pcm_s16le|pcm_f32le] [--sample-rate HZ] AUDIO",
     "speech to text with Whisper (Hugging Face directory or whisper.cpp ggml .bin; int8 by\n"
     "default): one JSON object {text, language, segments, timings_ms}; --vad drops silence and\n"
     "cuts audio over 30 s at pauses (Silero ggml file); --audio-ctx encodes short windows at\n"
     "their own length (auto) or N positions; AUDIO - reads stdin\n",
     whisper_opts, cmd_transcribe},
    {"bench whisper",
     "--model PATH [--precision P] [--threads N] [--vad PATH] [--runs R]\n"
     "      [--language xx] [--audio-ctx auto|N] AUDIO",
     "median timings of the transcribe pipeline\n", whisper_opts, cmd_bench_whisper},
    {"stream",
     "--server URL --frames DIR|FILE.y4m [--audio FILE.wav] [--battery PCT]\n"
     "      [--duration S] [--speed X] [--json] [--question-every S] ...",
     "the glasses simulator (libsgclient policies); sg stream --help for all its options\n", NULL,
     cmd_stream},
    {"version", "", "print the version\n", no_opts, cmd_version},
    {"help", "[COMMAND]", "this list, or COMMAND's usage and options\n", NULL, cmd_help},
};
#define N_COMMANDS (sizeof commands / sizeof *commands)

static void list_commands(FILE *f)
{
    fprintf(f, "usage: sg <command> [args]   (sg <command> --help: its usage and options)\n"
               "commands:\n");
    sg_opts_list(commands, N_COMMANDS, NULL, f);
}

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* The command argv[0] (and argv[1], for two-word names) names; *words gets how many words. */
static const sg_opts_cmd *find_command(int argc, char **argv, int *words)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const char *name = commands[i].name, *space = strchr(name, ' ');
        size_t first_len = space ? (size_t)(space - name) : strlen(name);
        if (strncmp(argv[0], name, first_len) != 0 || argv[0][first_len] != '\0')
            continue;
        if (!space) {
            *words = 1;
            return &commands[i];
        }
        if (argc >= 2 && strcmp(argv[1], space + 1) == 0) {
            *words = 2;
            return &commands[i];
        }
    }
    return NULL;
}

/* Whether word starts two-word commands ("clip", "bench"). */
static bool is_group(const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strncmp(commands[i].name, word, n) == 0 && commands[i].name[n] == ' ')
            return true;
    return false;
}

/* Runs the command line argv[0..argc) after "sg": a command, a group's list, or an error. */
static int run_command(int argc, char **argv)
{
    int words;
    const sg_opts_cmd *cmd = find_command(argc, argv, &words);
    if (cmd) {
        argc -= words - 1; /* the command's last word is argv[0], its options follow */
        argv += words - 1;
        if (!cmd->opts)
            return cmd->run(cmd, NULL, argc, argv);
        cli_args a = {0};
        int first, parsed = sg_opts_parse(cmd, &a, argc, argv, &first);
        if (parsed != SG_OPTS_GO_ON)
            return parsed;
        return cmd->run(cmd, &a, argc - first, argv + first);
    }
    if (is_group(argv[0])) {
        bool help = argc >= 2 && is_help(argv[1]);
        FILE *f = help ? stdout : stderr;
        if (!help && argc >= 2)
            fprintf(stderr, "sg %s: unknown subcommand '%s'\n", argv[0], argv[1]);
        else if (!help)
            fprintf(stderr, "sg %s: give a subcommand\n", argv[0]);
        fprintf(f, "usage:\n");
        sg_opts_list(commands, N_COMMANDS, argv[0], f);
        return help ? 0 : 2;
    }
    fprintf(stderr, "sg: unknown command '%s'\n", argv[0]);
    list_commands(stderr);
    return 2;
}

/* sg help: the list of commands; sg help COMMAND...: sg COMMAND... --help. */
static int cmd_help(const sg_opts_cmd *cmd, const void *args, int argc, char **argv)
{
    (void)cmd;
    (void)args;
    if (argc < 2 || is_help(argv[1])) {
        list_commands(stdout);
        return 0;
    }
    char help_flag[] = "--help";
    char *line[] = {argv[1], argc >= 3 ? argv[2] : help_flag, help_flag};
    return run_command(argc >= 3 ? 3 : 2, line);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        list_commands(stderr);
        return 2;
    }
    if (is_help(argv[1])) {
        list_commands(stdout);
        return 0;
    }
    static char version[] = "version";
    if (strcmp(argv[1], "--version") == 0)
        argv[1] = version;
    return run_command(argc - 1, argv + 1);
}
