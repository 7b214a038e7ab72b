/* The sg tool's option parser: option tables to getopt_long, every value checked against its row,
 * and the usage printed from the same rows (see sg_opts.h). Messages go to stderr as
 * "sg COMMAND: ..."; the exit status for a usage error is 2. */
#include "sg_opts.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* getopt_long's value for the row at index i (short options keep their letter). */
#define LONG_ONLY 256
#define HELP_VAL (LONG_ONLY + SG_OPTS_MAX)

static size_t table_size(const sg_opt *opts)
{
    size_t n = 0;
    while (opts && opts[n].name)
        n++;
    return n;
}

static bool takes_value(const sg_opt *o) { return o->type != SG_OPT_FLAG; }

static bool for_cmd(const sg_opt *o, const sg_opts_cmd *cmd)
{
    return !o->only || strcmp(o->only, cmd->name) == 0;
}

/* The row getopt_long's value c stands for, or NULL. */
static const sg_opt *row_of(const sg_opt *opts, size_t n, int c)
{
    if (c >= LONG_ONLY && c < LONG_ONLY + (int)n)
        return &opts[c - LONG_ONLY];
    for (size_t i = 0; i < n && c > 0; i++)
        if (opts[i].short_name == c)
            return &opts[i];
    return NULL;
}

/* Writes "a, b or c" for the words "a|b|c" to f. */
static void print_words(FILE *f, const char *words)
{
    size_t n = strlen(words);
    for (size_t i = 0; i < n;) {
        size_t len = strcspn(words + i, "|");
        bool last = i + len >= n;
        fprintf(f, "%s%.*s", i == 0 ? "" : last ? " or " : ", ", (int)len, words + i);
        i += len + 1;
    }
}

/* What the option takes: "an integer in 0..256", "auto or an integer in 0..100000", "f32 or int8";
 * brief: "0..256", "auto or 0..100000". */
static void print_range(FILE *f, const sg_opt *o, bool brief)
{
    if (o->type == SG_OPT_CHOICE) {
        print_words(f, o->words);
        return;
    }
    if (o->words)
        fprintf(f, "%s or ", o->words);
    if (!brief)
        fprintf(f, "%s in ", o->type == SG_OPT_INT ? "an integer" : "a number");
    fprintf(f, "%.15g..%.15g", o->min, o->max);
}

static int bad_value(const sg_opts_cmd *cmd, const sg_opt *o, const char *value)
{
    fprintf(stderr, "sg %s: --%s must be ", cmd->name, o->name);
    print_range(stderr, o, false);
    fprintf(stderr, " (got '%s')\n", value);
    return 2;
}

/* The index of value among the words "a|b|c", or -1. */
static int word_index(const char *words, const char *value)
{
    size_t n = strlen(value);
    for (int k = 0;; k++) {
        size_t len = strcspn(words, "|");
        if (len == n && strncmp(words, value, n) == 0)
            return k;
        if (!words[len])
            return -1;
        words += len + 1;
    }
}

/* Every field of the table to its default. */
static void set_defaults(const sg_opt *opts, size_t n, char *args)
{
    for (size_t i = 0; i < n; i++) {
        void *field = args + opts[i].offset;
        switch (opts[i].type) {
        case SG_OPT_FLAG: *(bool *)field = false; break;
        case SG_OPT_TEXT: *(const char **)field = NULL; break;
        case SG_OPT_NUMBER: *(double *)field = opts[i].def; break;
        case SG_OPT_INT:
        case SG_OPT_CHOICE: *(int *)field = (int)opts[i].def; break;
        }
    }
}

/* Stores value in the field of row o; 0, or 2 after saying what is wrong. */
static int set_value(const sg_opts_cmd *cmd, const sg_opt *o, const char *value, char *args)
{
    void *field = args + o->offset;
    char *end = NULL;
    switch (o->type) {
    case SG_OPT_FLAG: *(bool *)field = true; return 0;
    case SG_OPT_TEXT: *(const char **)field = value; return 0;
    case SG_OPT_CHOICE: {
        int k = word_index(o->words, value);
        if (k < 0)
            return bad_value(cmd, o, value);
        *(int *)field = k;
        return 0;
    }
    case SG_OPT_INT: {
        if (o->words && strcmp(value, o->words) == 0) {
            *(int *)field = o->word_value;
            return 0;
        }
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (end == value || *end || errno == ERANGE || (double)v < o->min || (double)v > o->max)
            return bad_value(cmd, o, value);
        *(int *)field = (int)v;
        return 0;
    }
    case SG_OPT_NUMBER: {
        double v = strtod(value, &end);
        if (end == value || *end || !isfinite(v) || v < o->min || v > o->max)
            return bad_value(cmd, o, value);
        *(double *)field = v;
        return 0;
    }
    }
    return 2;
}

int sg_opts_parse(const sg_opts_cmd *cmd, void *args, int argc, char **argv, int *first)
{
    const sg_opt *opts = cmd->opts;
    size_t n = table_size(opts);
    if (n > SG_OPTS_MAX) {
        fprintf(stderr, "sg %s: too many options in the table (at most %d)\n", cmd->name,
                SG_OPTS_MAX);
        return 2;
    }
    struct option longopts[SG_OPTS_MAX + 2];
    char shortopts[3 * SG_OPTS_MAX + 4] = ":h"; /* ':': a missing value is reported as such */
    size_t ns = strlen(shortopts);
    for (size_t i = 0; i < n; i++) {
        longopts[i] = (struct option){opts[i].name, takes_value(&opts[i]) ? required_argument
                                                                           : no_argument,
                                      NULL, (int)(LONG_ONLY + i)};
        if (opts[i].short_name) {
            shortopts[ns++] = opts[i].short_name;
            if (takes_value(&opts[i]))
                shortopts[ns++] = ':';
        }
    }
    shortopts[ns] = '\0';
    longopts[n] = (struct option){"help", no_argument, NULL, HELP_VAL};
    longopts[n + 1] = (struct option){NULL, 0, NULL, 0};

    set_defaults(opts, n, args);
    opterr = 0; /* the messages below say more */
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (c == 'h' || c == HELP_VAL) {
            sg_opts_usage(cmd, stdout);
            return 0;
        }
        const sg_opt *o = c == ':' || c == '?' ? row_of(opts, n, optopt) : row_of(opts, n, c);
        if (c == ':' && o) {
            fprintf(stderr, "sg %s: --%s needs a value (%s)\n", cmd->name, o->name, o->arg);
            return 2;
        }
        if (c == '?' && o) { /* --flag=value */
            fprintf(stderr, "sg %s: --%s takes no value\n", cmd->name, o->name);
            return 2;
        }
        if (c == ':' || c == '?' || !o) {
            if (optopt > 0 && optopt < LONG_ONLY)
                fprintf(stderr, "sg %s: unknown option '-%c'", cmd->name, optopt);
            else
                fprintf(stderr, "sg %s: unknown or ambiguous option '%s'", cmd->name,
                        argv[optind - 1]);
            fprintf(stderr, " (sg %s --help lists them)\n", cmd->name);
            return 2;
        }
        if (!for_cmd(o, cmd)) {
            fprintf(stderr, "sg %s: --%s is for `sg %s`\n", cmd->name, o->name, o->only);
            return 2;
        }
        if (set_value(cmd, o, optarg, args) != 0)
            return 2;
    }
    *first = optind;
    return SG_OPTS_GO_ON;
}

/* ", default 20", ", default auto", ", default int8"; nothing for a default outside the range,
 * which stands for "not given". */
static void print_default(FILE *f, const sg_opt *o)
{
    bool in_range = o->def >= o->min && o->def <= o->max;
    if (o->type == SG_OPT_CHOICE) {
        const char *w = o->words;
        for (int k = 0; k < (int)o->def && strchr(w, '|'); k++)
            w = strchr(w, '|') + 1;
        fprintf(f, ", default %.*s", (int)strcspn(w, "|"), w);
    } else if (o->words && o->def == o->word_value) {
        fprintf(f, ", default %s", o->words);
    } else if (in_range) {
        fprintf(f, ", default %.15g", o->def);
    }
}

/* Prints text's lines, each after `indent` spaces. */
static void print_indented(FILE *f, const char *text, int indent)
{
    while (text && *text) {
        size_t len = strcspn(text, "\n");
        fprintf(f, "%*s%.*s\n", indent, "", (int)len, text);
        text += len + (text[len] == '\n');
    }
}

void sg_opts_usage(const sg_opts_cmd *cmd, FILE *f)
{
    fprintf(f, "usage: sg %s%s%s\n", cmd->name, *cmd->synopsis ? " " : "", cmd->synopsis);
    print_indented(f, cmd->about, 2);
    fprintf(f, "options:\n");
    for (const sg_opt *o = cmd->opts; o && o->name; o++) {
        if (!for_cmd(o, cmd))
            continue;
        char head[64];
        snprintf(head, sizeof head, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(f, "  %-22s %s", head, o->help);
        if (o->type == SG_OPT_INT || o->type == SG_OPT_NUMBER || o->type == SG_OPT_CHOICE) {
            /* the range on a line of its own when the help line is long already */
            fprintf(f, strlen(o->help) > 50 ? "\n%25s" : "; ", "");
            print_range(f, o, true);
            print_default(f, o);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "  %-22s %s\n", "--help", "this text");
}

void sg_opts_list(const sg_opts_cmd *cmds, size_t n, const char *prefix, FILE *f)
{
    size_t plen = prefix ? strlen(prefix) : 0;
    for (size_t i = 0; i < n; i++) {
        if (plen && (strncmp(cmds[i].name, prefix, plen) != 0 || cmds[i].name[plen] != ' '))
            continue;
        fprintf(f, "  %s%s%s\n", cmds[i].name, *cmds[i].synopsis ? " " : "", cmds[i].synopsis);
        print_indented(f, cmds[i].about, 6);
    }
}
