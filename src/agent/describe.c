/* The pixel-statistics describer (see describe.h): what a camera frame looks like in numbers a
 * phone user can act on - light level, contrast, named colours, focus, edges, likely text - and
 * nothing it cannot know. One pass builds a luma plane (box-averaged to a canonical scale) and a
 * colour histogram; the rest - moments, Laplacian, edges, thin strokes - is read off that plane.
 * Thresholds were tuned on the sample photos in ../shared/data/images (see the comments). */
#include "agent/describe.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Analysis scale: images are box-averaged by an integer factor so the short side lands in
 * [128, 256) (SG_DESCRIBE_MIN_SIDE), which keeps sharpness and edge figures comparable between
 * a DCT-scaled frame and the same photo at full size, and caps the long side at 1024. */
#define ANALYSIS_MAX_LONG 1024
/* Colour classification samples every second cell beyond this many cells. */
#define COLOR_FULL_CELLS 40000
/* A luma step per pixel above this counts as an edge. */
#define EDGE_STEP 24.0f
/* How much darker (lighter) than both sides a thin line must be to count as a stroke. */
#define STROKE_DEPTH 35.0f

enum color_id {
    C_RED, C_ORANGE, C_YELLOW, C_GREEN, C_CYAN, C_BLUE, C_PURPLE, C_PINK, C_BROWN,
    C_WHITE, C_GRAY, C_BLACK, C_COUNT
};
static const char *const color_names[C_COUNT] = {
    "red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "brown",
    "white", "gray", "black",
};

/* HSV naming. Achromatic first (dark, or too little chroma to name a hue), then hue sectors,
 * with brown as dark orange/yellow and pink as light or washed-out red/magenta. */
static enum color_id classify_rgb(int r, int g, int b)
{
    int mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
    int mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
    int chroma = mx - mn;
    if (mx < 40)
        return C_BLACK;
    /* Saturation below ~0.2 (or a tiny absolute chroma in dark pixels) reads as neutral. */
    if (chroma * 5 < mx || chroma < 16) {
        if (mx >= 200)
            return C_WHITE;
        if (mx < 64)
            return C_BLACK;
        return C_GRAY;
    }
    float h;
    if (mx == r)
        h = 60.0f * (float)(g - b) / (float)chroma;
    else if (mx == g)
        h = 60.0f * (2.0f + (float)(b - r) / (float)chroma);
    else
        h = 60.0f * (4.0f + (float)(r - g) / (float)chroma);
    if (h < 0.0f)
        h += 360.0f;
    float s = (float)chroma / (float)mx, v = (float)mx / 255.0f;

    bool light_or_washed = s < 0.5f && v > 0.6f;
    if (h < 15.0f || h >= 330.0f)
        return light_or_washed ? C_PINK : C_RED;
    if (h < 45.0f)
        return v < 0.65f ? C_BROWN : (light_or_washed && h < 20.0f ? C_PINK : C_ORANGE);
    if (h < 70.0f)
        return v < 0.45f ? C_BROWN : C_YELLOW;
    if (h < 165.0f)
        return C_GREEN;
    if (h < 200.0f)
        return C_CYAN;
    if (h < 260.0f)
        return C_BLUE;
    if (h < 290.0f)
        return C_PURPLE;
    return (v > 0.6f && (s < 0.5f || h >= 300.0f)) ? C_PINK : C_PURPLE;
}

/* Everything measured, before it is turned into labels. */
typedef struct features {
    int gw, gh;
    double mean, std;
    double lap_var;
    double edge_density;  /* share of cells with a step above EDGE_STEP */
    double dark_strokes;  /* share of cells at the centre of a thin dark line */
    double light_strokes; /* share of cells at the centre of a thin light line */
    long color_count[C_COUNT];
    long color_total;
    uint8_t *cells;       /* optional: per cell SG_CELL_* flags (the OCR region finder's input) */
} features;

static int pick_factor(int w, int h)
{
    int shorter = w < h ? w : h, longer = w < h ? h : w;
    int f = shorter / SG_DESCRIBE_MIN_SIDE;
    int f_long = (longer + ANALYSIS_MAX_LONG - 1) / ANALYSIS_MAX_LONG;
    if (f < f_long)
        f = f_long;
    if (f > shorter)
        f = shorter;
    return f < 1 ? 1 : f;
}

/* Pass 1: the luma plane (box average over f x f pixels) and the colour histogram. */
static void build_plane(const sg_image *img, int f, float *luma, features *ft)
{
    const int gw = ft->gw, gh = ft->gh;
    const int cstep = (long)gw * gh > COLOR_FULL_CELLS ? 2 : 1;
    const size_t stride = (size_t)img->width * 3;
    const uint32_t area = (uint32_t)f * (uint32_t)f;
    for (int gy = 0; gy < gh; gy++) {
        for (int gx = 0; gx < gw; gx++) {
            const uint8_t *p = img->rgb + (size_t)gy * f * stride + (size_t)gx * f * 3;
            int r, g, b;
            if (f == 1) {
                r = p[0];
                g = p[1];
                b = p[2];
            } else {
                uint32_t sr = 0, sg = 0, sb = 0;
                for (int y = 0; y < f; y++) {
                    const uint8_t *q = p + (size_t)y * stride;
                    for (int x = 0; x < f; x++, q += 3) {
                        sr += q[0];
                        sg += q[1];
                        sb += q[2];
                    }
                }
                r = (int)((sr + area / 2) / area);
                g = (int)((sg + area / 2) / area);
                b = (int)((sb + area / 2) / area);
            }
            luma[(size_t)gy * gw + gx] = 0.299f * (float)r + 0.587f * (float)g + 0.114f * (float)b;
            if (gy % cstep == 0 && gx % cstep == 0) {
                ft->color_count[classify_rgb(r, g, b)]++;
                ft->color_total++;
            }
        }
    }
}

/* Thin lines: a cell is on a dark (light) stroke when, along some direction (horizontal,
 * vertical, either diagonal), both cells one or two steps away are at least STROKE_DEPTH brighter
 * (darker). That catches lines up to about three cells wide, what pen and print give at the
 * analysis scale, and not the broad steps of object outlines. Written as max/min over the eight
 * neighbour pairs so the compiler keeps it branch-free: this is the describer's hottest loop. */
static void measure_strokes(const float *L, features *ft)
{
    const int gw = ft->gw, gh = ft->gh;
    if (gw < 5 || gh < 5)
        return;
    const ptrdiff_t offs[8] = {1, 2, gw, 2 * gw, gw + 1, 2 * (gw + 1), gw - 1, 2 * (gw - 1)};
    long dark = 0, light = 0;
    for (int y = 2; y < gh - 2; y++) {
        const float *row = L + (size_t)y * gw;
        for (int x = 2; x < gw - 2; x++) {
            const float *p = row + x;
            float valley = -1e9f, ridge = 1e9f; /* best "both sides brighter / darker" */
            for (int k = 0; k < 8; k++) {
                float a = p[-offs[k]], b = p[offs[k]];
                float lo = a < b ? a : b, hi = a > b ? a : b;
                valley = lo > valley ? lo : valley;
                ridge = hi < ridge ? hi : ridge;
            }
            int d = valley - p[0] >= STROKE_DEPTH, l = p[0] - ridge >= STROKE_DEPTH;
            dark += d;
            light += l;
            if (ft->cells)
                ft->cells[(size_t)y * gw + x] |= (uint8_t)(d * SG_CELL_DARK | l * SG_CELL_LIGHT);
        }
    }
    const double n = (double)(gw - 4) * (double)(gh - 4);
    ft->dark_strokes = (double)dark / n;
    ft->light_strokes = (double)light / n;
}

/* Pass 2: moments, Laplacian variance, the edge share (forward differences, so one-pixel detail
 * registers) and the stroke shares over the plane. */
static void measure_plane(const float *L, features *ft)
{
    const int gw = ft->gw, gh = ft->gh;
    const size_t n = (size_t)gw * gh;
    double sum = 0.0, sum2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        sum += L[i];
        sum2 += (double)L[i] * L[i];
    }
    ft->mean = sum / (double)n;
    double var = sum2 / (double)n - ft->mean * ft->mean;
    ft->std = var > 0.0 ? sqrt(var) : 0.0;

    if (gw >= 3 && gh >= 3) {
        double ls = 0.0, ls2 = 0.0;
        for (int y = 1; y < gh - 1; y++) {
            const float *row = L + (size_t)y * gw;
            for (int x = 1; x < gw - 1; x++) {
                double lap = (double)row[x - 1] + row[x + 1] + row[x - gw] + row[x + gw] - 4.0 * row[x];
                ls += lap;
                ls2 += lap * lap;
            }
        }
        double m = (double)(gw - 2) * (gh - 2);
        double lv = ls2 / m - (ls / m) * (ls / m);
        ft->lap_var = lv > 0.0 ? lv : 0.0;
    }

    long edges = 0;
    for (int y = 0; y < gh; y++) {
        const float *row = L + (size_t)y * gw;
        for (int x = 0; x < gw; x++) {
            float dx = x + 1 < gw ? row[x + 1] - row[x] : 0.0f;
            float dy = y + 1 < gh ? row[x + gw] - row[x] : 0.0f;
            int e = dx * dx + dy * dy > EDGE_STEP * EDGE_STEP;
            edges += e;
            if (ft->cells && e)
                ft->cells[(size_t)y * gw + x] |= SG_CELL_EDGE;
        }
    }
    ft->edge_density = (double)edges / (double)n;
    measure_strokes(L, ft);
}

static const char *brightness_label(double b)
{
    if (b < 35.0) return "very dark";
    if (b < 70.0) return "dark";
    if (b < 100.0) return "dim";
    if (b < 160.0) return "moderately lit";
    if (b < 210.0) return "bright";
    return "very bright";
}

static const char *sharpness_label(double lap_var)
{
    /* On the sample photos at analysis scale: 430..3200 as shot, 40..320 after a 3x3 box blur,
     * 10..90 after 5x5. */
    if (lap_var < 60.0) return "blurry";
    if (lap_var < 400.0) return "soft";
    return "sharp";
}

/* Text, printed or written: thin strokes are common, they are mostly of one polarity (ink on
 * paper, or light glyphs on a dark screen), and they account for a large part of all edges. Busy
 * photos have as many thin dark lines as light ones and most of their edges are broad outlines.
 * On the sample photos the text page scores polarity ratio ~7 and stroke/edge ~0.45, the other
 * photos <= 1.9 and <= 0.31. A grating of equal black and white stripes is not text here. */
static bool looks_like_text(const features *ft)
{
    double major = ft->dark_strokes > ft->light_strokes ? ft->dark_strokes : ft->light_strokes;
    double minor = ft->dark_strokes > ft->light_strokes ? ft->light_strokes : ft->dark_strokes;
    return major >= 0.02 && major >= 3.0 * minor && major >= 0.38 * ft->edge_density;
}

static void pick_colors(const features *ft, sg_scene *out)
{
    bool used[C_COUNT] = {false};
    out->ncolors = 0;
    for (int k = 0; k < 3 && ft->color_total > 0; k++) {
        int best = -1;
        for (int c = 0; c < C_COUNT; c++)
            if (!used[c] && (best < 0 || ft->color_count[c] > ft->color_count[best]))
                best = c;
        float frac = (float)ft->color_count[best] / (float)ft->color_total;
        if (frac < 0.10f)
            break;
        used[best] = true;
        snprintf(out->colors[k].name, sizeof out->colors[k].name, "%s", color_names[best]);
        out->colors[k].fraction = frac;
        out->ncolors++;
    }
}

static void write_summary(sg_scene *s)
{
    char colors[96] = "";
    if (s->ncolors == 1)
        snprintf(colors, sizeof colors, "mostly %s", s->colors[0].name);
    else if (s->ncolors == 2)
        snprintf(colors, sizeof colors, "mostly %s and %s", s->colors[0].name, s->colors[1].name);
    else if (s->ncolors == 3)
        snprintf(colors, sizeof colors, "mostly %s, %s and %s", s->colors[0].name,
                 s->colors[1].name, s->colors[2].name);
    else
        snprintf(colors, sizeof colors, "in mixed colours");

    const char *detail;
    if (s->text_like)
        detail = "with dense fine detail that may be text";
    else if (s->edge_density < 0.03f)
        detail = "with few edges";
    else if (s->edge_density < 0.15f)
        detail = "with some edges";
    else
        detail = "with many edges";

    const char *change = "";
    if (s->change >= 0.0f)
        change = s->change < 3.0f    ? "; little change since the previous keyframe"
                 : s->change < 12.0f ? "; some change since the previous keyframe"
                                     : "; large change since the previous keyframe";

    snprintf(s->summary, sizeof s->summary,
             "Low-level image analysis (no vision model loaded): a %s, %s image%s, %s, %s%s.",
             s->brightness_label, s->sharpness_label, s->contrast < 20.0f ? " of low contrast" : "",
             colors, detail, change);
}

static void describe_nothing(sg_scene *out, const char *why)
{
    out->brightness_label = brightness_label(0.0);
    out->sharpness_label = sharpness_label(0.0);
    snprintf(out->summary, sizeof out->summary,
             "Low-level image analysis (no vision model loaded): %s.", why);
}

static float change_to(const sg_image *img, const float *prev_key_thumb)
{
    if (!prev_key_thumb)
        return -1.0f;
    float thumb[64];
    sg_image_thumb8(img, thumb);
    float sum = 0.0f;
    for (int i = 0; i < 64; i++)
        sum += fabsf(thumb[i] - prev_key_thumb[i]);
    float c = sum / 64.0f;
    return isfinite(c) ? c : -1.0f;
}

void sg_describe_image(const sg_image *img, const float *prev_key_thumb, sg_scene *out)
{
    sg_describe_image_map(img, prev_key_thumb, out, NULL);
}

void sg_stroke_map_free(sg_stroke_map *map)
{
    if (map) {
        free(map->cells);
        memset(map, 0, sizeof *map);
    }
}

void sg_describe_image_map(const sg_image *img, const float *prev_key_thumb, sg_scene *out,
                           sg_stroke_map *map)
{
    if (map)
        memset(map, 0, sizeof *map);
    memset(out, 0, sizeof *out);
    out->change = -1.0f;
    if (!img || !img->rgb || img->width <= 0 || img->height <= 0) {
        describe_nothing(out, "there is no image to analyse");
        return;
    }
    out->width = img->src_width > 0 ? img->src_width : img->width;
    out->height = img->src_height > 0 ? img->src_height : img->height;

    features ft;
    memset(&ft, 0, sizeof ft);
    int f = pick_factor(img->width, img->height);
    ft.gw = img->width / f;
    ft.gh = img->height / f;
    float *luma = malloc((size_t)ft.gw * (size_t)ft.gh * sizeof *luma);
    if (!luma) {
        describe_nothing(out, "the image could not be analysed (out of memory)");
        return;
    }
    if (map) /* no map (out of memory) only costs the OCR its regions, not the description */
        ft.cells = calloc((size_t)ft.gw * (size_t)ft.gh, 1);
    build_plane(img, f, luma, &ft);
    measure_plane(luma, &ft);
    free(luma);
    if (ft.cells) {
        map->gw = ft.gw;
        map->gh = ft.gh;
        map->img_w = img->width;
        map->img_h = img->height;
        map->cells = ft.cells;
    }

    out->brightness = (float)ft.mean;
    out->brightness_label = brightness_label(ft.mean);
    out->contrast = (float)ft.std;
    out->sharpness = (float)ft.lap_var;
    out->sharpness_label = sharpness_label(ft.lap_var);
    out->edge_density = (float)ft.edge_density;
    out->text_like = looks_like_text(&ft);
    pick_colors(&ft, out);
    out->change = change_to(img, prev_key_thumb);
    write_summary(out);
}

/* Three decimals are plenty for statistics of 8-bit pixels and keep the JSON readable. */
static json_t *real3(double v)
{
    if (!isfinite(v))
        v = 0.0;
    return json_real(round(v * 1000.0) / 1000.0);
}

static int put(json_t *obj, const char *key, json_t *val)
{
    return json_object_set_new(obj, key, val); /* steals val, even on failure */
}

json_t *sg_scene_to_json(const sg_scene *s)
{
    if (!s)
        return NULL;
    json_t *obj = json_object();
    json_t *colors = json_array();
    if (!obj || !colors) {
        json_decref(obj);
        json_decref(colors);
        return NULL;
    }
    int bad = 0;
    for (int i = 0; i < s->ncolors && i < 3; i++) {
        json_t *c = json_object();
        if (!c) {
            bad = 1;
            break;
        }
        bad |= put(c, "name", json_string(s->colors[i].name));
        bad |= put(c, "fraction", real3(s->colors[i].fraction));
        bad |= json_array_append_new(colors, c);
    }
    bad |= put(obj, "width", json_integer(s->width));
    bad |= put(obj, "height", json_integer(s->height));
    bad |= put(obj, "brightness", real3(s->brightness));
    bad |= put(obj, "brightness_label", json_string(s->brightness_label ? s->brightness_label : ""));
    bad |= put(obj, "contrast", real3(s->contrast));
    bad |= put(obj, "colors", colors);
    bad |= put(obj, "sharpness", real3(s->sharpness));
    bad |= put(obj, "sharpness_label", json_string(s->sharpness_label ? s->sharpness_label : ""));
    bad |= put(obj, "edge_density", real3(s->edge_density));
    bad |= put(obj, "text_like", json_boolean(s->text_like));
    bad |= put(obj, "change", real3(s->change));
    bad |= put(obj, "summary", json_string(s->summary));
    bad |= put(obj, "source", json_string("pixel-stats"));
    if (bad) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}
