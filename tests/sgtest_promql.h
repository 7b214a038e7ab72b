/* Helpers for the operations tests: the PromQL expressions of deploy/prometheus/alerts.yml and
 * deploy/grafana/smartglass.json, the metric selectors in them (names and label matchers), and a
 * Prometheus text exposition read back into samples. Header-only like the other sgtest_*.h. */
#ifndef SG_TESTS_PROMQL_H
#define SG_TESTS_PROMQL_H

#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- growable lists --------------------------------------------------------------------- */

typedef struct sgt_strs {
    char **v;
    size_t n, cap;
} sgt_strs;

__attribute__((unused)) static void sgt_strs_add(sgt_strs *s, const char *p, size_t len)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n] = malloc(len + 1);
    memcpy(s->v[s->n], p, len);
    s->v[s->n][len] = 0;
    s->n++;
}

__attribute__((unused)) static void sgt_strs_free(sgt_strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

#define SGT_MAX_MATCHERS 8

typedef struct sgt_matcher {
    char label[64];
    char op[3]; /* =, !=, =~, !~ */
    char value[128];
} sgt_matcher;

/* One metric selector of an expression: name{matchers}. */
typedef struct sgt_selector {
    char name[128];
    int nmatch;
    sgt_matcher match[SGT_MAX_MATCHERS];
    const char *origin; /* which file queried it (static string) */
} sgt_selector;

typedef struct sgt_selectors {
    sgt_selector *v;
    size_t n, cap;
} sgt_selectors;

__attribute__((unused)) static void sgt_selectors_free(sgt_selectors *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* ---- PromQL: metric selectors ------------------------------------------------------------ */

static bool sgt_ident_start(int c) { return isalpha(c) || c == '_' || c == ':'; }
static bool sgt_ident_char(int c) { return isalnum(c) || c == '_' || c == ':'; }

static const char *sgt_skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* p at a quote; returns past the closing one; the unescaped text into out (may be NULL). */
static const char *sgt_skip_string(const char *p, char *out, size_t cap)
{
    const char q = *p++;
    size_t n = 0;
    while (*p && *p != q) {
        if (*p == '\\' && q != '`' && p[1])
            p++;
        if (out && n + 1 < cap)
            out[n++] = *p;
        p++;
    }
    if (out)
        out[n] = 0;
    return *p ? p + 1 : p;
}

/* p at open; returns past the matching close (strings inside skipped). */
static const char *sgt_skip_balanced(const char *p, char open, char close)
{
    int depth = 0;
    while (*p) {
        if (*p == '"' || *p == '\'' || *p == '`') {
            p = sgt_skip_string(p, NULL, 0);
            continue;
        }
        if (*p == open)
            depth++;
        else if (*p == close && --depth == 0)
            return p + 1;
        p++;
    }
    return p;
}

/* p at '{': the matchers into sel; returns past the '}'. */
static const char *sgt_parse_matchers(const char *p, sgt_selector *sel)
{
    p++;
    for (;;) {
        p = sgt_skip_ws(p);
        if (*p == '}' || !*p)
            return *p ? p + 1 : p;
        if (*p == ',') {
            p++;
            continue;
        }
        if (!sgt_ident_start((unsigned char)*p))
            return sgt_skip_balanced(p - 1, '{', '}'); /* not ours to judge: promtool does */
        sgt_matcher m = {0};
        size_t n = 0;
        while (sgt_ident_char((unsigned char)*p)) {
            if (n + 1 < sizeof m.label)
                m.label[n++] = *p;
            p++;
        }
        p = sgt_skip_ws(p);
        n = 0;
        while (*p == '=' || *p == '!' || *p == '~') {
            if (n + 1 < sizeof m.op)
                m.op[n++] = *p;
            p++;
        }
        p = sgt_skip_ws(p);
        if (*p == '"' || *p == '\'' || *p == '`')
            p = sgt_skip_string(p, m.value, sizeof m.value);
        if (sel->nmatch < SGT_MAX_MATCHERS)
            sel->match[sel->nmatch++] = m;
    }
}

static bool sgt_word_in(const char *w, size_t n, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strlen(list[i]) == n && strncmp(list[i], w, n) == 0)
            return true;
    return false;
}

/* Adds every metric selector of a PromQL expression to out: an identifier that is not a
 * function (followed by '('), a keyword, a label in a by/without/on/ignoring/group_x list, or
 * inside {} or [] (labels, ranges), strings, numbers, durations, comments or Grafana variables
 * ($job, ${x}, $__rate_interval). A Grafana label_values(selector, label) query reads the
 * selector only. */
__attribute__((unused)) static void sgt_promql_selectors(const char *expr, const char *origin,
                                                         sgt_selectors *out)
{
    static const char *const label_lists[] = {"by", "without", "on", "ignoring", "group_left",
                                              "group_right", NULL};
    /* aggregations may put their by/without before the parenthesis: never a metric */
    static const char *const keywords[] = {
        "bool",  "and",    "or",     "unless", "offset", "atan2",  "inf",         "nan",
        "Inf",   "NaN",    "sum",    "min",    "max",    "avg",    "group",       "stddev",
        "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", NULL};
    char *owned = NULL;
    const char *p = sgt_skip_ws(expr), *end = NULL;
    if (strncmp(p, "label_values(", 13) == 0) {
        const char *comma = strrchr(p, ',');
        if (!comma)
            return; /* label_values(label): no metric */
        owned = strndup(p + 13, (size_t)(comma - (p + 13)));
        p = owned;
    }
    end = p + strlen(p);
    while (p < end && *p) {
        const unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\'' || c == '`') {
            p = sgt_skip_string(p, NULL, 0);
        } else if (c == '#') {
            while (*p && *p != '\n')
                p++;
        } else if (c == '[') {
            p = sgt_skip_balanced(p, '[', ']');
        } else if (c == '{') {
            p = sgt_skip_balanced(p, '{', '}');
        } else if (c == '$') {
            p++;
            if (*p == '{')
                p = sgt_skip_balanced(p, '{', '}');
            else
                while (sgt_ident_char((unsigned char)*p))
                    p++;
        } else if (isdigit(c) || (c == '.' && isdigit((unsigned char)p[1]))) {
            while (isalnum((unsigned char)*p) || *p == '.')
                p++;
        } else if (sgt_ident_start(c)) {
            const char *w = p;
            while (sgt_ident_char((unsigned char)*p))
                p++;
            const size_t wn = (size_t)(p - w);
            const char *q = sgt_skip_ws(p);
            if (sgt_word_in(w, wn, label_lists)) {
                if (*q == '(')
                    p = sgt_skip_balanced(q, '(', ')');
            } else if (sgt_word_in(w, wn, keywords) || *q == '(') {
                /* a keyword, or a function / aggregation */
            } else {
                sgt_selector sel = {0};
                snprintf(sel.name, sizeof sel.name, "%.*s", (int)wn, w);
                sel.origin = origin;
                if (*q == '{')
                    p = sgt_parse_matchers(q, &sel);
                if (out->n == out->cap) {
                    out->cap = out->cap ? out->cap * 2 : 32;
                    out->v = realloc(out->v, out->cap * sizeof *out->v);
                }
                out->v[out->n++] = sel;
            }
        } else {
            p++;
        }
    }
    free(owned);
}

/* ---- where the expressions are ------------------------------------------------------------ */

/* Every `expr:` of a Prometheus rules file: plain, quoted, or a block scalar (| or >). */
__attribute__((unused)) static void sgt_rules_exprs(const char *text, sgt_strs *out)
{
    const char *line = text;
    while (*line) {
        const char *eol = strchr(line, '\n');
        const char *next = eol ? eol + 1 : line + strlen(line);
        size_t indent = 0;
        while (line[indent] == ' ')
            indent++;
        const char *t = line + indent;
        if (t[0] == '-' && t[1] == ' ') {
            t += 2;
            indent += 2;
        }
        if (strncmp(t, "expr:", 5) != 0) {
            line = next;
            continue;
        }
        const char *v = t + 5;
        while (*v == ' ')
            v++;
        const char *vend = eol ? eol : v + strlen(v);
        if (*v == '|' || *v == '>') { /* block scalar: the lines indented deeper */
            char *buf = NULL;
            size_t len = 0;
            const char *l = next;
            while (*l) {
                const char *le = strchr(l, '\n');
                const char *ln = le ? le + 1 : l + strlen(l);
                size_t ind = 0;
                while (l[ind] == ' ')
                    ind++;
                const bool blank = l[ind] == '\n' || l[ind] == 0;
                if (!blank && ind <= indent)
                    break;
                const size_t add = (size_t)((le ? le : l + strlen(l)) - l);
                buf = realloc(buf, len + add + 2);
                memcpy(buf + len, l, add);
                len += add;
                buf[len++] = '\n';
                buf[len] = 0;
                l = ln;
            }
            sgt_strs_add(out, buf ? buf : "", len);
            free(buf);
            next = l;
        } else if (*v == '"' || *v == '\'') {
            char val[4096];
            sgt_skip_string(v, val, sizeof val);
            sgt_strs_add(out, val, strlen(val));
        } else {
            sgt_strs_add(out, v, (size_t)(vend - v));
        }
        line = next;
    }
}

/* Every query of a Grafana dashboard: the panels' targets (rows' nested panels too) and the
 * templating variables' queries. */
__attribute__((unused)) static void sgt_dashboard_exprs(json_t *dash, sgt_strs *out)
{
    json_t *stack[256];
    size_t top = 0;
    stack[top++] = json_object_get(dash, "panels");
    while (top > 0) {
        json_t *panels = stack[--top];
        size_t i;
        json_t *p;
        json_array_foreach(panels, i, p)
        {
            json_t *targets = json_object_get(p, "targets"), *t;
            size_t k;
            json_array_foreach(targets, k, t)
            {
                const char *e = json_string_value(json_object_get(t, "expr"));
                if (e)
                    sgt_strs_add(out, e, strlen(e));
            }
            if (json_is_array(json_object_get(p, "panels")) && top < 256)
                stack[top++] = json_object_get(p, "panels");
        }
    }
    json_t *vars = json_object_get(json_object_get(dash, "templating"), "list"), *v;
    size_t i;
    json_array_foreach(vars, i, v)
    {
        json_t *q = json_object_get(v, "query");
        const char *s = json_is_object(q) ? json_string_value(json_object_get(q, "query"))
                                          : json_string_value(q);
        const char *type = json_string_value(json_object_get(v, "type"));
        if (s && type && strcmp(type, "query") == 0)
            sgt_strs_add(out, s, strlen(s));
    }
}

/* ---- the text exposition ------------------------------------------------------------------ */

typedef struct sgt_sample {
    char name[128];
    char labels[512]; /* the raw {...} without braces, "" without labels */
} sgt_sample;

typedef struct sgt_exposition {
    sgt_sample *samples;
    size_t n, cap;
    sgt_strs families; /* "name type" of each # TYPE line */
} sgt_exposition;

/* Adds the samples and families of a text exposition. */
__attribute__((unused)) static void sgt_exposition_add(sgt_exposition *x, const char *text)
{
    const char *line = text;
    while (line && *line) {
        const char *eol = strchr(line, '\n');
        const size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (strncmp(line, "# TYPE ", 7) == 0) {
            sgt_strs_add(&x->families, line + 7, len - 7);
        } else if (len > 0 && line[0] != '#') {
            sgt_sample s = {0};
            size_t n = 0;
            while (n < len && line[n] != '{' && line[n] != ' ')
                n++;
            snprintf(s.name, sizeof s.name, "%.*s", (int)n, line);
            if (n < len && line[n] == '{') {
                const char *close = sgt_skip_balanced(line + n, '{', '}');
                snprintf(s.labels, sizeof s.labels, "%.*s", (int)(close - (line + n) - 2),
                         line + n + 1);
            }
            if (x->n == x->cap) {
                x->cap = x->cap ? x->cap * 2 : 256;
                x->samples = realloc(x->samples, x->cap * sizeof *x->samples);
            }
            x->samples[x->n++] = s;
        }
        line = eol ? eol + 1 : NULL;
    }
}

__attribute__((unused)) static void sgt_exposition_free(sgt_exposition *x)
{
    free(x->samples);
    sgt_strs_free(&x->families);
    memset(x, 0, sizeof *x);
}

/* The family's type ("histogram", "counter", ...) or NULL when no # TYPE names it. */
__attribute__((unused)) static const char *sgt_family_type(const sgt_exposition *x, const char *name)
{
    const size_t n = strlen(name);
    for (size_t i = 0; i < x->families.n; i++)
        if (strncmp(x->families.v[i], name, n) == 0 && x->families.v[i][n] == ' ')
            return x->families.v[i] + n + 1;
    return NULL;
}

/* The family a queried series name belongs to: name_bucket / _sum / _count of a histogram (or
 * _sum / _count of a summary) is the histogram's; anything else is itself. Into base. */
__attribute__((unused)) static void sgt_base_name(const sgt_exposition *x, const char *name,
                                                  char *base, size_t cap)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    snprintf(base, cap, "%s", name);
    const size_t n = strlen(name);
    for (int i = 0; i < 3; i++) {
        const size_t sn = strlen(suffixes[i]);
        if (n > sn && strcmp(name + n - sn, suffixes[i]) == 0) {
            char b[128];
            snprintf(b, sizeof b, "%.*s", (int)(n - sn), name);
            const char *type = x ? sgt_family_type(x, b) : NULL;
            if (!x || (type && (strcmp(type, "histogram") == 0 || strcmp(type, "summary") == 0)))
                snprintf(base, cap, "%s", b);
            return;
        }
    }
}

/* True when a sample of that series name exists, or its family is declared (a labelled counter
 * has no sample before its first event). */
__attribute__((unused)) static bool sgt_exported(const sgt_exposition *x, const char *name)
{
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->samples[i].name, name) == 0)
            return true;
    char base[128];
    sgt_base_name(x, name, base, sizeof base);
    return sgt_family_type(x, base) != NULL;
}

/* The value of a label in a sample's raw label text, into out; false when absent. */
static bool sgt_label_value(const char *labels, const char *label, char *out, size_t cap)
{
    const char *p = labels;
    const size_t ln = strlen(label);
    while (*p) {
        p = sgt_skip_ws(p);
        const char *name = p;
        while (sgt_ident_char((unsigned char)*p))
            p++;
        const size_t nn = (size_t)(p - name);
        if (*p != '=' || p[1] != '"')
            return false;
        char v[256];
        p = sgt_skip_string(p + 1, v, sizeof v);
        if (nn == ln && strncmp(name, label, ln) == 0) {
            snprintf(out, cap, "%s", v);
            return true;
        }
        if (*p == ',')
            p++;
    }
    return false;
}

/* True when some sample of the series name carries the label (and, for an = matcher, that
 * value). */
__attribute__((unused)) static bool sgt_matcher_seen(const sgt_exposition *x, const char *name,
                                                     const sgt_matcher *m)
{
    for (size_t i = 0; i < x->n; i++) {
        char v[256];
        if (strcmp(x->samples[i].name, name) != 0 ||
            !sgt_label_value(x->samples[i].labels, m->label, v, sizeof v))
            continue;
        if (strcmp(m->op, "=") != 0 || strcmp(v, m->value) == 0)
            return true;
    }
    return false;
}

#endif
