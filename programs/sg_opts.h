/* The option parser of the sg command-line tool. A command is one row (name, synopsis, what it
 * does, its options, its handler) and its options a table, one row each: name, what the value is,
 * its range and default, where it goes, one line of help. The parser (getopt_long underneath, so
 * --name=value, unique prefixes and options after operands work) checks every value against its
 * row, says what is wrong naming the option and the range, and answers --help from the same rows.
 * programs/sg.c uses it; sg_stream.c can adopt it. */
#ifndef SG_PROGRAMS_OPTS_H
#define SG_PROGRAMS_OPTS_H

#include <stddef.h>
#include <stdio.h>

typedef enum sg_opt_type {
    SG_OPT_FLAG,   /* no value: the bool becomes true */
    SG_OPT_TEXT,   /* const char *: the value as given */
    SG_OPT_INT,    /* int: an integer in [min, max], or the word `words` standing for word_value */
    SG_OPT_NUMBER, /* double: a finite number in [min, max] */
    SG_OPT_CHOICE, /* int: the index of the value among the words "a|b|c" */
} sg_opt_type;

typedef struct sg_opt {
    const char *name;  /* without "--"; NULL ends a table */
    char short_name;   /* -x as well, or 0 */
    sg_opt_type type;
    size_t offset;     /* of the value in the command's argument struct */
    const char *arg;   /* what the value is called in the usage: "N", "PATH" */
    double min, max;   /* SG_OPT_INT, SG_OPT_NUMBER */
    double def;        /* SG_OPT_INT, SG_OPT_NUMBER, SG_OPT_CHOICE (the index): the value until
                          the option is given; the usage shows it unless it is out of the range
                          (a value that stands for "not given") */
    const char *words; /* SG_OPT_CHOICE: "f32|int8"; SG_OPT_INT: a word besides numbers, or NULL */
    int word_value;    /* SG_OPT_INT: what that word stands for */
    const char *only;  /* NULL, or the one command (of those sharing the table) that takes it;
                          the others refuse it, naming that command, and leave it out of --help */
    const char *help;  /* one line for --help; the range or choices and the default follow it */
} sg_opt;

/* Most rows a table may have. */
#define SG_OPTS_MAX 32

typedef struct sg_opts_cmd sg_opts_cmd;
struct sg_opts_cmd {
    const char *name;     /* "vad", "bench whisper": the words after "sg" */
    const char *synopsis; /* what follows "sg NAME" on the usage line */
    const char *about;    /* what it does: lines ending in '\n', printed indented */
    const sg_opt *opts;   /* NULL: the command parses its own options (sg stream) */
    /* Returns the exit status. With opts, args holds the parsed options and argv[0..argc) the
     * operands; without, args is NULL and argv[0] is the last word of name, options following. */
    int (*run)(const sg_opts_cmd *cmd, const void *args, int argc, char **argv);
};

/* What sg_opts_parse returns when the command should go on. */
#define SG_OPTS_GO_ON (-1)

/* Parses the options in argv[1..argc) by cmd->opts into the struct at args, after setting every
 * field of the table to its default (TEXT: NULL, FLAG: false). Returns SG_OPTS_GO_ON
 * with *first the index of the first operand (getopt_long moves them after the options);
 * otherwise the exit status: 0 after --help or -h printed the usage on stdout, 2 after a message
 * on stderr (unknown option, missing value, value out of range or not a number, an option for
 * another command). */
int sg_opts_parse(const sg_opts_cmd *cmd, void *args, int argc, char **argv, int *first);

/* "usage: sg NAME SYNOPSIS", what the command does and its options with their ranges. */
void sg_opts_usage(const sg_opts_cmd *cmd, FILE *f);

/* The synopsis and what-it-does of every command in cmds[0..n) whose name starts with the word
 * prefix ("" or NULL: all), for the list of commands. */
void sg_opts_list(const sg_opts_cmd *cmds, size_t n, const char *prefix, FILE *f);

#endif
