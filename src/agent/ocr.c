/* The engine-independent OCR pipeline (see ocr.h): text regions from the describer's stroke map,
 * and one clean, upright, binarised image per region. Plain C over 8-bit pixels; no engine
 * state, so any thread may call it. */
#include "agent/ocr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

/* ---- region finding --------------------------------------------------------------------------- */

/* Tiles of TILE x TILE stroke-map cells are the unit of "text-like": at the describer's scale
 * (short side 128..255 cells) a tile is 1/25..1/40 of the frame's height, about one line of sign
 * text. */
#define TILE 6
/* A text tile: ink and paper - its grey levels fall in two tight groups (Otsu's between-class
 * variance is a large share of the total), far apart (the standard deviation), and crossed by
 * many thin strokes (the describer's stroke flags, either polarity: at this scale the gaps inside
 * and between letters are thin lines too). Natural texture (grass, fur, foliage) has strokes but a
 * spread of grey levels; an object's outline is two levels but few strokes. Strong tiles seed a
 * region; weak ones (the same tests, looser: a sign's last letters, a thin line) join the region
 * they touch - hysteresis, as an edge detector links its edges. Tuned on py/gen_signs.py --seed 7
 * (held out from the committed set) and the shared photos. */
typedef struct tile_rule {
    float bimodal;  /* Otsu's between-class variance / total variance, at least */
    float contrast; /* grey standard deviation, at least */
    int strokes;    /* stroke cells of either polarity, at least */
} tile_rule;
static const tile_rule STRONG = {0.85f, 45.0f, 12};
static const tile_rule WEAK = {0.80f, 35.0f, 8};
/* A region must hold at least this many tiles. */
#define MIN_REGION_TILES 2

enum { T_NONE = 0, T_WEAK = 1, T_STRONG = 2, T_SEEN = 4 };

typedef struct tile_stat {
    unsigned short dark, light;
} tile_stat;

typedef struct comp {
    int x0, y0, x1, y1; /* tiles, inclusive */
    int tiles, strong;
    int dark, light;    /* stroke cells in it, by polarity */
} comp;

static int cmp_comp_weight(const void *a, const void *b)
{
    const comp *x = a, *y = b;
    return (y->strong > x->strong) - (y->strong < x->strong);
}

static int cmp_region_y(const void *a, const void *b)
{
    const sg_ocr_region *x = a, *y = b;
    return (x->y > y->y) - (x->y < y->y);
}

/* Grows the region seeded at strong tile (sx, sy) over strong and weak tiles: 8-connected, and
 * across one empty tile along a row (the gap between two words). */
static void grow(uint8_t *kind, const tile_stat *ts, int tw, int th, int sx, int sy, int *stack,
                 comp *c)
{
    *c = (comp){sx, sy, sx, sy, 0, 0, 0, 0};
    int top = 0;
    stack[top++] = sy * tw + sx;
    kind[(size_t)sy * tw + sx] |= T_SEEN;
    while (top > 0) {
        int i = stack[--top], x = i % tw, y = i / tw;
        c->tiles++;
        c->strong += (kind[i] & T_STRONG) != 0;
        c->dark += ts[i].dark;
        c->light += ts[i].light;
        c->x0 = x < c->x0 ? x : c->x0;
        c->x1 = x > c->x1 ? x : c->x1;
        c->y0 = y < c->y0 ? y : c->y0;
        c->y1 = y > c->y1 ? y : c->y1;
        static const int nb[10][2] = {{-1, -1}, {0, -1}, {1, -1}, {-1, 0}, {1, 0},
                                      {-1, 1},  {0, 1},  {1, 1},  {-2, 0}, {2, 0}};
        for (int k = 0; k < 10; k++) {
            int nx = x + nb[k][0], ny = y + nb[k][1];
            if (nx < 0 || ny < 0 || nx >= tw || ny >= th)
                continue;
            size_t j = (size_t)ny * tw + nx;
            if (!(kind[j] & (T_WEAK | T_STRONG)) || (kind[j] & T_SEEN))
                continue;
            kind[j] |= T_SEEN;
            stack[top++] = (int)j; /* each tile is pushed once: the stack holds tw*th at most */
        }
    }
}

/* How text-like the pixels [x0,x1) x [y0,y1) are: T_STRONG, T_WEAK or T_NONE (see tile_rule). */
static int classify_tile(const sg_image *img, int x0, int y0, int x1, int y1, int strokes)
{
    unsigned hist[256] = {0};
    double sum = 0, sum2 = 0;
    for (int y = y0; y < y1; y++) {
        const uint8_t *p = img->rgb + ((size_t)y * img->width + x0) * 3;
        for (int x = x0; x < x1; x++, p += 3) {
            int g = (77 * p[0] + 150 * p[1] + 29 * p[2] + 128) >> 8;
            hist[g]++;
            sum += g;
            sum2 += (double)g * g;
        }
    }
    double n = (double)(x1 - x0) * (double)(y1 - y0);
    if (n < 4)
        return T_NONE;
    double mean = sum / n, var = sum2 / n - mean * mean;
    if (var < (double)WEAK.contrast * WEAK.contrast)
        return T_NONE;
    double wb = 0, sb = 0, best = 0;
    for (int t = 0; t < 256; t++) {
        wb += hist[t];
        if (wb == 0)
            continue;
        double wf = n - wb;
        if (wf == 0)
            break;
        sb += (double)t * hist[t];
        double mb = sb / wb, mf = (sum - sb) / wf;
        double between = wb * wf * (mb - mf) * (mb - mf) / (n * n);
        best = between > best ? between : best;
    }
    if (strokes >= STRONG.strokes && var >= (double)STRONG.contrast * STRONG.contrast &&
        best >= STRONG.bimodal * var)
        return T_STRONG;
    return best >= WEAK.bimodal * var ? T_WEAK : T_NONE;
}

int sg_ocr_find_regions(const sg_stroke_map *map, const sg_image *img, sg_ocr_region *out,
                        int max)
{
    if (!map || !map->cells || map->gw < TILE || map->gh < TILE || max <= 0 || !img ||
        !img->rgb || img->width != map->img_w || img->height != map->img_h)
        return 0;
    const int gw = map->gw, gh = map->gh;
    const int tw = (gw + TILE - 1) / TILE, th = (gh + TILE - 1) / TILE;
    const size_t nt = (size_t)tw * th;
    tile_stat *ts = calloc(nt, sizeof *ts);
    uint8_t *kind = calloc(nt, 1);
    int *stack = malloc(nt * sizeof *stack);
    comp *comps = malloc(nt * sizeof *comps);
    int found = 0;
    if (!ts || !kind || !stack || !comps)
        goto done;

    for (int y = 0; y < gh; y++) {
        const uint8_t *row = map->cells + (size_t)y * gw;
        tile_stat *trow = ts + (size_t)(y / TILE) * tw;
        for (int x = 0; x < gw; x++) {
            trow[x / TILE].dark += (row[x] & SG_CELL_DARK) != 0;
            trow[x / TILE].light += (row[x] & SG_CELL_LIGHT) != 0;
        }
    }
    const double fx = (double)img->width / gw, fy = (double)img->height / gh;
    bool any_strong = false;
    for (int ty = 0; ty < th; ty++)
        for (int tx = 0; tx < tw; tx++) {
            size_t i = (size_t)ty * tw + tx;
            int strokes = ts[i].dark + ts[i].light;
            if (strokes < WEAK.strokes) /* the cheap test first: most tiles stop here */
                continue;
            int px0 = (int)(tx * TILE * fx), px1 = (int)((tx + 1) * TILE * fx);
            int py0 = (int)(ty * TILE * fy), py1 = (int)((ty + 1) * TILE * fy);
            px1 = px1 > img->width ? img->width : px1;
            py1 = py1 > img->height ? img->height : py1;
            kind[i] = (uint8_t)classify_tile(img, px0, py0, px1, py1, strokes);
            any_strong |= kind[i] == T_STRONG;
        }

    int nc = 0;
    for (int y = 0; y < th && any_strong; y++)
        for (int x = 0; x < tw; x++)
            if (kind[(size_t)y * tw + x] == T_STRONG) {
                grow(kind, ts, tw, th, x, y, stack, &comps[nc]);
                if (comps[nc].tiles >= MIN_REGION_TILES)
                    nc++;
            }
    qsort(comps, (size_t)nc, sizeof *comps, cmp_comp_weight);

    /* Tiles to fractions of the frame, with a tile of margin around (a glyph's edge lies outside
     * the tiles its strokes fill, and the engine wants some paper around the ink). */
    for (int i = 0; i < nc && found < max; i++) {
        const comp *c = &comps[i];
        float x0 = ((float)c->x0 - 1.0f) * TILE / gw, x1 = ((float)c->x1 + 2.0f) * TILE / gw;
        float y0 = ((float)c->y0 - 1.0f) * TILE / gh, y1 = ((float)c->y1 + 2.0f) * TILE / gh;
        x0 = x0 < 0 ? 0 : x0;
        y0 = y0 < 0 ? 0 : y0;
        x1 = x1 > 1 ? 1 : x1;
        y1 = y1 > 1 ? 1 : y1;
        sg_ocr_region r = {x0, y0, x1 - x0, y1 - y0, c->light > c->dark, c->strong};
        /* regions whose margins overlap much are one sign seen in parts: read it once, in the
         * box around both (a word read twice is worse than a wider crop) */
        bool merged = false;
        for (int k = 0; k < found && !merged; k++) {
            sg_ocr_region *o = &out[k];
            float ix = fminf(o->x + o->w, r.x + r.w) - fmaxf(o->x, r.x);
            float iy = fminf(o->y + o->h, r.y + r.h) - fmaxf(o->y, r.y);
            float smaller = fminf(o->w * o->h, r.w * r.h);
            if (ix > 0 && iy > 0 && ix * iy >= 0.3f * smaller) {
                float nx1 = fmaxf(o->x + o->w, r.x + r.w), ny1 = fmaxf(o->y + o->h, r.y + r.h);
                o->x = fminf(o->x, r.x);
                o->y = fminf(o->y, r.y);
                o->w = nx1 - o->x;
                o->h = ny1 - o->y;
                o->cells += r.cells;
                merged = true;
            }
        }
        if (!merged)
            out[found++] = r;
    }
    qsort(out, (size_t)found, sizeof *out, cmp_region_y); /* reading order, top to bottom */
done:
    free(ts);
    free(kind);
    free(stack);
    free(comps);
    return found;
}

/* ---- preparing a region ----------------------------------------------------------------------- */

/* Letters this tall (pixels; the median height of the glyph shapes, about a capital's) read best
 * with Tesseract's LSTM models; regions are scaled towards it. */
#define TARGET_GLYPH_PX 32.0f
#define MAX_SCALE 4.0f
#define MARGIN 12
/* A region needs this many letter-like shapes of one size to be read (one lone shape is a mark,
 * a window, a bolt head far more often than a one-letter sign). */
#define MIN_GLYPHS 3
/* Letters smaller than this (median shape height, frame pixels) are too small to read. */
#define MIN_GLYPH_PX 8
/* Deskew search: whole degrees within +-MAX_SKEW (signs are hand-held or passed at an angle). */
#define MAX_SKEW 10

static int otsu(const uint8_t *p, size_t n)
{
    unsigned long hist[256] = {0};
    for (size_t i = 0; i < n; i++)
        hist[p[i]]++;
    double sum = 0;
    for (int i = 0; i < 256; i++)
        sum += (double)i * hist[i];
    double sumb = 0, wb = 0, best = -1;
    int thr = 128;
    for (int t = 0; t < 256; t++) {
        wb += hist[t];
        if (wb == 0)
            continue;
        double wf = (double)n - wb;
        if (wf == 0)
            break;
        sumb += (double)t * hist[t];
        double mb = sumb / wb, mf = (sum - sumb) / wf;
        double between = wb * wf * (mb - mf) * (mb - mf);
        if (between > best) {
            best = between;
            thr = t;
        }
    }
    return thr;
}

/* The ink that looks like letters. Connected ink shapes (8-connected) are kept when they do not
 * touch the region's edge (the background around a sign, cut by the crop, does), and are not
 * far larger than the typical shape (a plate's border, a wheel); what is kept is the glyph mask.
 * Returns the median height of the kept shapes (0 when none) and their bounding box. */
typedef struct glyph_box {
    int x0, y0, x1, y1; /* inclusive */
} glyph_box;

static int keep_glyphs(uint8_t *mask, int w, int h, int *stack, glyph_box *box, int *alike)
{
    *alike = 0;
    /* mask: 1 ink, 0 paper; becomes 2 for kept ink, 0 for the rest */
    enum { MAXC = 512 };
    glyph_box cb[MAXC];
    int heights[MAXC], area[MAXC], nc = 0;
    /* pass 1: label into mask values 3.. (so 1 = unvisited ink); remember boxes */
    for (int sy = 0; sy < h; sy++)
        for (int sx = 0; sx < w; sx++) {
            if (mask[(size_t)sy * w + sx] != 1)
                continue;
            const uint8_t label = 3; /* visited; pass 2 tells the shapes apart by their order */
            glyph_box b = {sx, sy, sx, sy};
            int top = 0, n = 0;
            stack[top++] = sy * w + sx;
            mask[(size_t)sy * w + sx] = (uint8_t)label;
            while (top > 0) {
                int i = stack[--top], x = i % w, y = i / w;
                n++;
                b.x0 = x < b.x0 ? x : b.x0;
                b.x1 = x > b.x1 ? x : b.x1;
                b.y0 = y < b.y0 ? y : b.y0;
                b.y1 = y > b.y1 ? y : b.y1;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int nx = x + dx, ny = y + dy;
                        if (nx < 0 || ny < 0 || nx >= w || ny >= h)
                            continue;
                        size_t j = (size_t)ny * w + nx;
                                if (mask[j] == 1) {
                            mask[j] = label;
                            stack[top++] = (int)j;
                        }
                    }
            }
            if (nc < MAXC) {
                cb[nc] = b;
                area[nc] = n;
                heights[nc] = b.y1 - b.y0 + 1;
            }
            nc++;
        }
    int ncomp = nc < MAXC ? nc : MAXC;
    /* Letters are shapes in a row: one is a letter candidate when another beside it is about
     * level, of about its height, and less than two heights away. Blobs of texture are seldom in
     * a row, so the count of candidates is how much the region reads as text (it picks the
     * polarity, and is the last gate before the engine), and their median height is the letter
     * size - found among the letters, not among all the clutter around them. */
    bool cand[MAXC], letter[MAXC];
    for (int i = 0; i < ncomp; i++) {
        const glyph_box *b = &cb[i];
        bool edge = b->x0 == 0 || b->y0 == 0 || b->x1 == w - 1 || b->y1 == h - 1;
        cand[i] = !edge && area[i] >= 12 && heights[i] >= MIN_GLYPH_PX &&
                  b->x1 - b->x0 + 1 <= 4 * heights[i];
        letter[i] = false;
    }
    int hs[MAXC], nh = 0;
    for (int i = 0; i < ncomp; i++) {
        if (!cand[i])
            continue;
        const glyph_box *a = &cb[i];
        for (int k = 0; k < ncomp && !letter[i]; k++) {
            if (k == i || !cand[k] || heights[i] * 10 < heights[k] * 7 ||
                heights[k] * 10 < heights[i] * 7)
                continue;
            const glyph_box *b = &cb[k];
            int hmax = heights[i] > heights[k] ? heights[i] : heights[k];
            int dy = (a->y0 + a->y1) - (b->y0 + b->y1); /* twice the centres' distance */
            int gap = b->x0 > a->x1 ? b->x0 - a->x1 : a->x0 > b->x1 ? a->x0 - b->x1 : 0;
            letter[i] = abs(dy) * 3 <= hmax * 2 && gap <= 2 * hmax;
        }
        if (letter[i])
            hs[nh++] = heights[i];
    }
    *alike = nh;
    if (nh == 0) {
        memset(mask, 0, (size_t)w * h);
        return 0;
    }
    for (int i = 1; i < nh; i++)
        for (int k = i; k > 0 && hs[k] < hs[k - 1]; k--) {
            int tmp = hs[k];
            hs[k] = hs[k - 1];
            hs[k - 1] = tmp;
        }
    const int med = hs[nh / 2];
    bool keep[MAXC];
    *box = (glyph_box){w, h, -1, -1};
    for (int i = 0; i < ncomp; i++) {
        const glyph_box *b = &cb[i];
        bool edge = b->x0 == 0 || b->y0 == 0 || b->x1 == w - 1 || b->y1 == h - 1;
        /* letters, digits, and the dots and dashes between them; not a border or a blob */
        keep[i] = !edge && heights[i] <= 2 * med && b->x1 - b->x0 + 1 <= 6 * med && area[i] >= 3;
        if (letter[i]) {
            box->x0 = b->x0 < box->x0 ? b->x0 : box->x0;
            box->y0 = b->y0 < box->y0 ? b->y0 : box->y0;
            box->x1 = b->x1 > box->x1 ? b->x1 : box->x1;
            box->y1 = b->y1 > box->y1 ? b->y1 : box->y1;
        }
    }
    /* pass 2: kept shapes' pixels become 2, the others 0. The scan meets the shapes at the same
     * first pixels in the same order as pass 1 did, so the n-th shape met is shape n. */
    int which = 0;
    for (int sy = 0; sy < h; sy++)
        for (int sx = 0; sx < w; sx++) {
            uint8_t v = mask[(size_t)sy * w + sx];
            if (v < 3)
                continue;
            uint8_t to = which < ncomp && keep[which] ? 2 : 0;
            which++;
            int top = 0;
            stack[top++] = sy * w + sx;
            mask[(size_t)sy * w + sx] = to;
            while (top > 0) {
                int i = stack[--top], x = i % w, y = i / w;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int nx = x + dx, ny = y + dy;
                        if (nx < 0 || ny < 0 || nx >= w || ny >= h)
                            continue;
                        size_t j = (size_t)ny * w + nx;
                        if (mask[j] >= 3) {
                            mask[j] = to;
                            stack[top++] = (int)j;
                        }
                    }
            }
        }
    return box->x1 >= 0 ? med : 0;
}

/* Skew of the kept glyphs: the angle whose row profile (rows taken along that angle) is
 * sharpest - text lines and the gaps between them line up only when the angle is right. */
static float estimate_skew(const uint8_t *mask, int w, int h)
{
    int pad = (int)ceilf((float)w * tanf(MAX_SKEW * (float)M_PI / 180.0f)) + 1;
    int nbins = h + 2 * pad;
    long *prof = malloc((size_t)nbins * sizeof *prof);
    if (!prof)
        return 0;
    float best_angle = 0;
    double best_score = -1;
    for (int a = -MAX_SKEW; a <= MAX_SKEW; a++) {
        memset(prof, 0, (size_t)nbins * sizeof *prof);
        float t = tanf((float)a * (float)M_PI / 180.0f);
        for (int y = 0; y < h; y++) {
            const uint8_t *row = mask + (size_t)y * w;
            for (int x = 0; x < w; x++)
                if (row[x] == 2)
                    prof[y - (int)lrintf((float)(x - w / 2) * t) + pad]++;
        }
        double score = 0;
        for (int i = 1; i < nbins; i++) {
            double d = (double)(prof[i] - prof[i - 1]);
            score += d * d;
        }
        /* ties go to the smaller angle: a level line scores the same over a few degrees */
        if (score > best_score * 1.0001) {
            best_score = score;
            best_angle = (float)a;
        }
    }
    free(prof);
    return best_angle;
}

sg_status sg_ocr_prepare(const sg_image *img, const sg_ocr_region *r, sg_ocr_prepared *out,
                         sg_error *err)
{
    memset(out, 0, sizeof *out);
    if (!img || !img->rgb || img->width <= 0 || img->height <= 0 || !r)
        return sg_error_set(err, SG_EINVAL, "no image to read");
    const int W = img->width, H = img->height;
    int x0 = (int)floorf(r->x * (float)W), y0 = (int)floorf(r->y * (float)H);
    int x1 = (int)ceilf((r->x + r->w) * (float)W), y1 = (int)ceilf((r->y + r->h) * (float)H);
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > W ? W : x1;
    y1 = y1 > H ? H : y1;
    const int cw = x1 - x0, ch = y1 - y0;
    if (cw < 8 || ch < 8)
        return sg_error_set(err, SG_EINVAL, "text region too small to read");
    if ((size_t)cw * ch > SG_OCR_MAX_FRAME_PIXELS)
        return sg_error_set(err, SG_ETOOBIG, "text region too large to read");

    const size_t cn = (size_t)cw * ch;
    uint8_t *g = malloc(cn), *mask = malloc(cn), *mask2 = malloc(cn);
    int *stack = malloc(cn * sizeof *stack);
    uint8_t *o = NULL;
    sg_status st = SG_OK;
    if (!g || !mask || !mask2 || !stack) {
        st = sg_error_set(err, SG_ENOMEM, "out of memory preparing a text region");
        goto done;
    }
    for (int y = 0; y < ch; y++) {
        const uint8_t *p = img->rgb + ((size_t)(y0 + y) * W + x0) * 3;
        uint8_t *q = g + (size_t)y * cw;
        for (int x = 0; x < cw; x++, p += 3)
            q[x] = (uint8_t)((77 * p[0] + 150 * p[1] + 29 * p[2] + 128) >> 8);
    }
    const int thr = otsu(g, cn);
    /* Which side of the threshold is ink: the one whose shapes look more like a line of letters
     * of one size (dark on light, or light on dark, as the sign is). */
    for (size_t i = 0; i < cn; i++)
        mask[i] = g[i] <= thr;
    glyph_box gb, gb2;
    int alike, alike2;
    int med = keep_glyphs(mask, cw, ch, stack, &gb, &alike);
    for (size_t i = 0; i < cn; i++)
        mask2[i] = g[i] > thr;
    int med2 = keep_glyphs(mask2, cw, ch, stack, &gb2, &alike2);
    const bool light = alike2 > alike;
    if (light) {
        uint8_t *t = mask;
        mask = mask2;
        mask2 = t;
        med = med2;
        gb = gb2;
        alike = alike2;
    }
    if (med == 0 || alike < MIN_GLYPHS) {
        st = sg_error_set(err, SG_EINVAL, "no letter shapes in the text region");
        goto done;
    }
    const float angle = estimate_skew(mask, cw, ch);

    /* the letters' box, with half a letter of room, in crop pixels */
    const int pad = med / 2 + 2;
    int bx0 = gb.x0 - pad, by0 = gb.y0 - pad, bx1 = gb.x1 + pad, by1 = gb.y1 + pad;
    /* the upright text is as wide and as tall as the box (the angle is small) */
    const float rad = angle * (float)M_PI / 180.0f, ca = cosf(rad), sa = sinf(rad);
    const float rw = (float)(bx1 - bx0 + 1), rh = (float)(by1 - by0 + 1);
    float s = TARGET_GLYPH_PX / (float)med;
    s = s < 1.0f ? 1.0f : s > MAX_SCALE ? MAX_SCALE : s;
    if ((double)rw * rh * s * s > SG_OCR_MAX_REGION_PIXELS)
        s = sqrtf((float)SG_OCR_MAX_REGION_PIXELS / (rw * rh));
    const int ow = (int)(rw * s), oh = (int)(rh * s);
    if (ow < 1 || oh < 1) {
        st = sg_error_set(err, SG_EINVAL, "text region too small to read");
        goto done;
    }
    const int pw = ow + 2 * MARGIN, ph = oh + 2 * MARGIN;
    o = malloc((size_t)pw * ph);
    if (!o) {
        st = sg_error_set(err, SG_ENOMEM, "out of memory preparing a text region");
        goto done;
    }
    memset(o, 255, (size_t)pw * ph);
    /* Rotate by -angle about the box's centre and scale by s in one bilinear resampling of the
     * grey crop, thresholded at the region's Otsu level; ink only where a kept glyph is (within
     * a pixel), so the background and the plate's border stay out. */
    const float cx = (float)(bx0 + bx1 + 1) / 2.0f, cy = (float)(by0 + by1 + 1) / 2.0f;
    for (int y = 0; y < oh; y++) {
        uint8_t *dst = o + (size_t)(y + MARGIN) * pw + MARGIN;
        for (int x = 0; x < ow; x++) {
            float u = ((float)x + 0.5f) / s - rw / 2.0f, v = ((float)y + 0.5f) / s - rh / 2.0f;
            /* the text's rows run at +angle in the crop: sample along them */
            float sx = u * ca - v * sa + cx - 0.5f, sy = u * sa + v * ca + cy - 0.5f;
            if (sx < 0 || sy < 0 || sx > (float)(cw - 1) || sy > (float)(ch - 1))
                continue;
            int ix = (int)sx, iy = (int)sy;
            int jx = ix + 1 < cw ? ix + 1 : ix, jy = iy + 1 < ch ? iy + 1 : iy;
            if (!(mask[(size_t)iy * cw + ix] | mask[(size_t)iy * cw + jx] |
                  mask[(size_t)jy * cw + ix] | mask[(size_t)jy * cw + jx]))
                continue;
            float fx = sx - (float)ix, fy = sy - (float)iy;
            const uint8_t *r0 = g + (size_t)iy * cw, *r1 = g + (size_t)jy * cw;
            float a = r0[ix] + (r0[jx] - r0[ix]) * fx, b = r1[ix] + (r1[jx] - r1[ix]) * fx;
            float val = a + (b - a) * fy;
            bool ink = light ? val > (float)thr : val <= (float)thr;
            dst[x] = ink ? 0 : 255;
        }
    }
    *out = (sg_ocr_prepared){o, pw, ph, s, x0 + bx0, y0 + by0, MARGIN, angle};
    o = NULL;
done:
    free(g);
    free(mask);
    free(mask2);
    free(stack);
    free(o);
    return st;
}

void sg_ocr_prepared_free(sg_ocr_prepared *p)
{
    if (p) {
        free(p->pix);
        memset(p, 0, sizeof *p);
    }
}

/* ---- results ---------------------------------------------------------------------------------- */

void sg_ocr_result_free(sg_ocr_result *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->nlines; i++)
        free(r->lines[i].text);
    free(r->lines);
    free(r->text);
    memset(r, 0, sizeof *r);
}

sg_status sg_ocr_result_add_line(sg_ocr_result *r, const char *text, float confidence, int x,
                                 int y, int w, int h, sg_error *err)
{
    sg_ocr_line *nl = realloc(r->lines, (size_t)(r->nlines + 1) * sizeof *nl);
    if (!nl)
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    r->lines = nl;
    char *t = strdup(text);
    if (!t)
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    r->lines[r->nlines++] = (sg_ocr_line){t, confidence, x, y, w, h};
    return SG_OK;
}

sg_status sg_ocr_result_join(sg_ocr_result *r, sg_error *err)
{
    size_t n = 1;
    for (int i = 0; i < r->nlines; i++)
        n += strlen(r->lines[i].text) + 1;
    char *t = malloc(n), *p = t;
    if (!t)
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    for (int i = 0; i < r->nlines; i++) {
        size_t l = strlen(r->lines[i].text);
        if (p != t)
            *p++ = '\n';
        memcpy(p, r->lines[i].text, l);
        p += l;
    }
    *p = '\0';
    free(r->text);
    r->text = t;
    return SG_OK;
}

static json_t *ms(double v)
{
    return json_real(round((v > 0 ? v : 0) * 1000.0) / 1000.0);
}

json_t *sg_ocr_result_to_json(const sg_ocr_result *r)
{
    json_t *lines = json_array();
    if (!lines)
        return NULL;
    for (int i = 0; i < r->nlines; i++) {
        const sg_ocr_line *l = &r->lines[i];
        json_t *o = json_pack("{s:s,s:f,s:[i,i,i,i]}", "text", l->text, "confidence",
                              round((double)l->confidence * 10.0) / 10.0, "box", l->x, l->y, l->w,
                              l->h);
        if (!o || json_array_append_new(lines, o)) {
            json_decref(lines);
            return NULL;
        }
    }
    return json_pack("{s:s,s:o,s:i,s:i,s:{s:o,s:o,s:o,s:o}}", "text", r->text ? r->text : "",
                     "lines", lines, "regions", r->regions, "engine_runs", r->engine_runs,
                     "timings_ms", "find", ms(r->find_ms),
                     "prepare", ms(r->prepare_ms), "recognize", ms(r->recognize_ms), "total",
                     ms(r->total_ms));
}

/* ---- character error rate --------------------------------------------------------------------- */

/* Code points of s, normalised: ASCII letters lower-cased, whitespace runs one space, trimmed.
 * Invalid UTF-8 bytes count as one character each. */
static size_t normalise(const char *s, unsigned *out, size_t cap)
{
    size_t n = 0, len = strlen(s);
    bool space = false;
    for (size_t i = 0; i < len && n < cap;) {
        const unsigned char *p = (const unsigned char *)s + i;
        size_t l = sg_utf8_seq_len(p, len - i);
        unsigned cp;
        if (l == 0) {
            cp = 0xFFFD;
            l = 1;
        } else if (l == 1) {
            cp = p[0];
        } else {
            cp = p[0] & (0xFFu >> (l + 1));
            for (size_t k = 1; k < l; k++)
                cp = (cp << 6) | (p[k] & 0x3Fu);
        }
        i += l;
        if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v') {
            space = n > 0;
            continue;
        }
        if (space && n < cap)
            out[n++] = ' ';
        space = false;
        if (n < cap)
            out[n++] = cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    }
    return n;
}

double sg_ocr_cer(const char *ref, const char *hyp)
{
    enum { CAP = 4096 };
    unsigned *a = malloc(CAP * sizeof *a), *b = malloc(CAP * sizeof *b);
    size_t *row = malloc((CAP + 1) * sizeof *row);
    double cer = 1.0;
    if (!a || !b || !row)
        goto done;
    size_t na = normalise(ref ? ref : "", a, CAP), nb = normalise(hyp ? hyp : "", b, CAP);
    if (na == 0) {
        cer = nb == 0 ? 0.0 : 1.0;
        goto done;
    }
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best;
            diag = up;
        }
    }
    cer = (double)row[nb] / (double)na;
done:
    free(a);
    free(b);
    free(row);
    return cer;
}
