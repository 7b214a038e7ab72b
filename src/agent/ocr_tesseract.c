/* Tesseract as the OCR backend (see ocr_tesseract.h). */
#include "agent/ocr_tesseract.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tesseract/capi.h>

#include "base/clock.h"

#define MAX_ENGINES 16
/* Words the engine itself doubts this much are dropped (see read_region). */
#define MIN_WORD_CONFIDENCE 55.0f
#define MIN_SHORT_CONFIDENCE 90.0f

enum { SLOT_EMPTY = 0, SLOT_IDLE, SLOT_BUSY };

struct sg_ocr_tesseract {
    sg_ocr_backend backend;
    char name[96];
    char lang[128];
    char datapath[PATH_MAX];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int max;
    int state[MAX_ENGINES];
    TessBaseAPI *eng[MAX_ENGINES];
};

void sg_ocr_tesseract_thread_env(void)
{
    setenv("OMP_THREAD_LIMIT", "1", 0);
}

static bool lang_ok(const char *lang)
{
    size_t n = strlen(lang), tok = 0;
    if (n == 0 || n >= 128)
        return false;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || lang[i] == '+') {
            if (tok == 0)
                return false;
            tok = 0;
        } else if (isalnum((unsigned char)lang[i]) || lang[i] == '_' || lang[i] == '-') {
            tok++;
        } else {
            return false;
        }
    }
    return true;
}

/* The first language of lang missing from dir, or NULL when all are there. */
static const char *missing_lang(const char *dir, const char *lang, char *buf, size_t cap)
{
    const char *p = lang;
    while (*p) {
        size_t l = strcspn(p, "+");
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%.*s.traineddata", dir, (int)l, p) >= (int)sizeof path ||
            access(path, R_OK) != 0) {
            snprintf(buf, cap, "%.*s", (int)l, p);
            return buf;
        }
        p += l;
        if (*p == '+')
            p++;
    }
    return NULL;
}

static TessBaseAPI *engine_new(const sg_ocr_tesseract *t, sg_error *err)
{
    TessBaseAPI *api = TessBaseAPICreate();
    if (!api) {
        sg_error_set(err, SG_ENOMEM, "out of memory starting Tesseract");
        return NULL;
    }
    /* Tesseract's own messages (a page it finds empty, its resolution guess) go nowhere: library
     * code does not print, and what matters comes back in the result. */
    char *names[] = {"debug_file"}, *values[] = {"/dev/null"};
    if (TessBaseAPIInit4(api, t->datapath, t->lang, OEM_LSTM_ONLY, NULL, 0, names, values, 1,
                         0) != 0) {
        TessBaseAPIDelete(api);
        sg_error_set(err, SG_EUNSUPPORTED, "OCR unavailable: Tesseract cannot load language '%s' "
                     "from %s", t->lang, t->datapath);
        return NULL;
    }
    TessBaseAPISetPageSegMode(api, PSM_SINGLE_BLOCK);
    return api;
}

static int acquire(sg_ocr_tesseract *t, sg_error *err)
{
    pthread_mutex_lock(&t->mu);
    for (;;) {
        for (int i = 0; i < t->max; i++)
            if (t->state[i] == SLOT_IDLE) {
                t->state[i] = SLOT_BUSY;
                pthread_mutex_unlock(&t->mu);
                return i;
            }
        for (int i = 0; i < t->max; i++)
            if (t->state[i] == SLOT_EMPTY) {
                t->state[i] = SLOT_BUSY; /* reserved while it starts, outside the lock */
                pthread_mutex_unlock(&t->mu);
                TessBaseAPI *api = engine_new(t, err);
                pthread_mutex_lock(&t->mu);
                if (!api) {
                    t->state[i] = SLOT_EMPTY;
                    pthread_cond_signal(&t->cv);
                    pthread_mutex_unlock(&t->mu);
                    return -1;
                }
                t->eng[i] = api;
                pthread_mutex_unlock(&t->mu);
                return i;
            }
        pthread_cond_wait(&t->cv, &t->mu);
    }
}

static void release(sg_ocr_tesseract *t, int i)
{
    pthread_mutex_lock(&t->mu);
    t->state[i] = SLOT_IDLE;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* An ASCII letter or digit, or the start of a non-ASCII character outside U+2000..U+2FFF (the
 * quotes, dashes, arrows and rules a texture is misread as). */
static bool is_alnum_start(unsigned char c)
{
    return isalnum(c) || (c >= 0xC0 && c != 0xE2);
}

/* True when s holds a letter or digit (a lone mark or rule is the plate's edge read as text). */
static bool has_alnum(const char *s)
{
    for (; *s; s++)
        if (is_alnum_start((unsigned char)*s))
            return true;
    return false;
}

/* A line being assembled from its kept words. */
typedef struct line_acc {
    char text[1024];
    size_t len;
    float conf_sum;
    int words, l, t, r, b;
} line_acc;

static sg_status flush_line(line_acc *a, const sg_ocr_prepared *p, sg_ocr_result *out,
                            sg_error *err)
{
    size_t alnum = 0;
    for (const char *c = a->text; *c; c++)
        alnum += is_alnum_start((unsigned char)*c);
    /* a line of one or two characters is a sign's only when the engine is sure of it: short
     * "words" are what texture and bolt heads are read as */
    bool keep = a->words > 0 && (alnum > 2 || a->conf_sum / (float)a->words >= MIN_SHORT_CONFIDENCE);
    if (!keep) {
        memset(a, 0, sizeof *a);
        return SG_OK;
    }
    int x = p->x0 + (int)((float)(a->l - p->margin) / p->scale);
    int y = p->y0 + (int)((float)(a->t - p->margin) / p->scale);
    int w = (int)((float)(a->r - a->l) / p->scale + 0.5f);
    int h = (int)((float)(a->b - a->t) / p->scale + 0.5f);
    sg_status st = sg_ocr_result_add_line(out, a->text, a->conf_sum / (float)a->words,
                                          x < 0 ? 0 : x, y < 0 ? 0 : y, w, h, err);
    memset(a, 0, sizeof *a);
    return st;
}

/* Reads one prepared region with engine api, appending its lines (boxes back in frame pixels).
 * Words, not lines, are kept or dropped: a region that holds a little of the background beside
 * the sign gets that texture read as low-confidence "words" at the line's ends. */
static sg_status read_region(TessBaseAPI *api, const sg_ocr_prepared *p, sg_ocr_result *out,
                             sg_error *err)
{
    TessBaseAPISetImage(api, p->pix, p->width, p->height, 1, p->width);
    TessBaseAPISetSourceResolution(api, 300);
    if (TessBaseAPIRecognize(api, NULL) != 0) {
        TessBaseAPIClear(api);
        return SG_OK; /* nothing recognisable in this region */
    }
    TessResultIterator *it = TessBaseAPIGetIterator(api);
    sg_status st = SG_OK;
    if (it) {
        TessPageIterator *pi = TessResultIteratorGetPageIterator(it);
        line_acc acc;
        memset(&acc, 0, sizeof acc);
        do {
            if (TessPageIteratorIsAtBeginningOf(pi, RIL_TEXTLINE))
                st = flush_line(&acc, p, out, err);
            char *word = TessResultIteratorGetUTF8Text(it, RIL_WORD);
            if (!word)
                continue;
            float conf = TessResultIteratorConfidence(it, RIL_WORD);
            int l = 0, t = 0, r = 0, b = 0;
            TessPageIteratorBoundingBox(pi, RIL_WORD, &l, &t, &r, &b);
            size_t wl = strlen(word);
            if (conf >= MIN_WORD_CONFIDENCE && has_alnum(word) &&
                acc.len + wl + 2 < sizeof acc.text) {
                if (acc.len)
                    acc.text[acc.len++] = ' ';
                memcpy(acc.text + acc.len, word, wl + 1);
                acc.len += wl;
                acc.conf_sum += conf;
                if (acc.words++ == 0) {
                    acc.l = l, acc.t = t, acc.r = r, acc.b = b;
                } else {
                    acc.l = l < acc.l ? l : acc.l;
                    acc.t = t < acc.t ? t : acc.t;
                    acc.r = r > acc.r ? r : acc.r;
                    acc.b = b > acc.b ? b : acc.b;
                }
            }
            TessDeleteText(word);
        } while (st == SG_OK && TessResultIteratorNext(it, RIL_WORD));
        if (st == SG_OK)
            st = flush_line(&acc, p, out, err);
        TessResultIteratorDelete(it);
    }
    TessBaseAPIClear(api);
    return st;
}

static sg_status tess_read(void *self, const sg_image *img, const sg_ocr_region *given,
                           int ngiven, sg_ocr_result *out, sg_error *err)
{
    sg_ocr_tesseract *t = self;
    memset(out, 0, sizeof *out);
    const double t0 = sg_now_ms();
    if (!img || !img->rgb || img->width <= 0 || img->height <= 0)
        return sg_error_set(err, SG_EINVAL, "no image to read");
    if ((double)img->width * img->height > SG_OCR_MAX_FRAME_PIXELS)
        return sg_error_set(err, SG_ETOOBIG, "image too large to read (%dx%d; OCR takes %u pixels "
                            "at most)", img->width, img->height, SG_OCR_MAX_FRAME_PIXELS);
    sg_ocr_region found[SG_OCR_MAX_REGIONS];
    const sg_ocr_region *regions = given;
    int n = ngiven < 0 ? 0 : ngiven > SG_OCR_MAX_REGIONS ? SG_OCR_MAX_REGIONS : ngiven;
    if (!given) {
        sg_scene scene;
        sg_stroke_map map;
        sg_describe_image_map(img, NULL, &scene, &map);
        if (!map.cells)
            return sg_error_set(err, SG_ENOMEM, "out of memory looking for text");
        n = sg_ocr_find_regions(&map, img, found, SG_OCR_MAX_REGIONS);
        sg_stroke_map_free(&map);
        regions = found;
    }
    out->regions = n;
    out->find_ms = sg_now_ms() - t0;
    sg_status st = SG_OK;
    /* an engine is taken only when a region holds letters: a frame of texture never waits for
     * one */
    int slot = -1;
    for (int i = 0; i < n && st == SG_OK; i++) {
        double t1 = sg_now_ms();
        sg_ocr_prepared p;
        st = sg_ocr_prepare(img, &regions[i], &p, err);
        double t2 = sg_now_ms();
        out->prepare_ms += t2 - t1;
        if (st == SG_EINVAL) { /* no row of letters there (or a sliver at the frame's edge) */
            st = SG_OK;
            continue;
        }
        if (st == SG_OK && slot < 0 && (slot = acquire(t, err)) < 0)
            st = err ? err->code : SG_EUNSUPPORTED;
        if (st == SG_OK) {
            out->engine_runs++;
            st = read_region(t->eng[slot], &p, out, err);
        }
        out->recognize_ms += sg_now_ms() - t2;
        sg_ocr_prepared_free(&p);
    }
    if (slot >= 0)
        release(t, slot);
    if (st == SG_OK)
        st = sg_ocr_result_join(out, err);
    out->total_ms = sg_now_ms() - t0;
    if (st != SG_OK)
        sg_ocr_result_free(out);
    return st;
}

sg_status sg_ocr_read_image(sg_ocr_backend *b, const sg_image *img, sg_ocr_result *out,
                            sg_error *err)
{
    return b->read(b->self, img, NULL, 0, out, err);
}

sg_ocr_tesseract *sg_ocr_tesseract_open(const sg_ocr_tesseract_options *o, sg_error *err)
{
    static const sg_ocr_tesseract_options none = {0};
    if (!o)
        o = &none;
    const char *lang = o->lang && *o->lang ? o->lang : "eng";
    if (!lang_ok(lang))
        return sg_error_set(err, SG_EINVAL, "OCR language list must be names joined by '+' "
                            "(e.g. eng or eng+deu)"), NULL;
    /* Debian 12's tesseract-ocr-<lang> puts the data here; TESSDATA_PREFIX is Tesseract's own
     * variable for somewhere else. */
    const char *dirs[3] = {o->tessdata, NULL, NULL};
    if (!o->tessdata || !*o->tessdata) {
        dirs[0] = "/usr/share/tesseract-ocr/5/tessdata";
        dirs[1] = getenv("TESSDATA_PREFIX");
    }
    const char *dir = NULL;
    char miss[64] = "";
    for (int i = 0; i < 2 && !dir; i++) {
        char m[64];
        if (dirs[i] && *dirs[i] && !missing_lang(dirs[i], lang, m, sizeof m))
            dir = dirs[i];
        else if (!miss[0] && dirs[i] && *dirs[i])
            missing_lang(dirs[i], lang, miss, sizeof miss);
    }
    if (!dir)
        return sg_error_set(err, SG_EUNSUPPORTED, "OCR unavailable: no Tesseract data for '%s' "
                            "in %s (install tesseract-ocr-%s, or set SG_OCR_TESSDATA)",
                            miss[0] ? miss : lang, dirs[0], miss[0] ? miss : lang), NULL;
    sg_ocr_tesseract *t = calloc(1, sizeof *t);
    if (!t)
        return sg_error_set(err, SG_ENOMEM, "out of memory"), NULL;
    snprintf(t->lang, sizeof t->lang, "%s", lang);
    snprintf(t->datapath, sizeof t->datapath, "%s", dir);
    snprintf(t->name, sizeof t->name, "tesseract %s %s", TessVersion(), lang);
    t->max = o->engines <= 0 ? 2 : o->engines > MAX_ENGINES ? MAX_ENGINES : o->engines;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    /* the first engine now: the data loads (or says why not) before the first frame */
    t->eng[0] = engine_new(t, err);
    if (!t->eng[0]) {
        sg_ocr_tesseract_free(t);
        return NULL;
    }
    t->state[0] = SLOT_IDLE;
    t->backend = (sg_ocr_backend){t->name, tess_read, t};
    return t;
}

sg_ocr_backend *sg_ocr_tesseract_backend(sg_ocr_tesseract *t)
{
    return t ? &t->backend : NULL;
}

void sg_ocr_tesseract_free(sg_ocr_tesseract *t)
{
    if (!t)
        return;
    for (int i = 0; i < MAX_ENGINES; i++)
        if (t->eng[i]) {
            TessBaseAPIEnd(t->eng[i]);
            TessBaseAPIDelete(t->eng[i]);
        }
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}
