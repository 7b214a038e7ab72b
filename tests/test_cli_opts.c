/* The sg CLI's option parser through the real binary, no models needed. Every numeric option that
 * a command's --help lists is tried out of its range at both ends, not a number, without its
 * value and at its ends (exit 2, nothing on stdout, a message naming the option and the range;
 * or accepted); then --help of every command (usage on stdout, exit 0), choices, unknown options,
 * the old short options and --name=value, the command groups and `sg help COMMAND`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "sgtest_cli.h"

static char errpath[64];

/* Runs `sg ARGS` (stderr to errpath); returns the exit status, *out its stdout and *err its stderr
 * (both malloc'ed). */
static int sg(const char *args, char **out, char **err)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " %s 2>%s", args, errpath);
    int rc = sgt_run(cmd, out);
    size_t len;
    *err = check_read_file(errpath, &len);
    if (!*err)
        *err = calloc(1, 1);
    return rc;
}

/* `sg ARGS` must exit with status rc, and print want on stdout (rc 0) or stderr (rc 2), and
 * nothing on the other. */
static void expect(const char *args, int rc, const char *want)
{
    char *out, *err;
    int got = sg(args, &out, &err);
    const char *shown = rc == 0 ? out : err, *quiet = rc == 0 ? err : out;
    CHECK_MSG(got == rc, "sg %s: exit %d, not %d (stderr '%s')", args, got, rc, err);
    CHECK_MSG(strstr(shown, want) != NULL, "sg %s: '%s' lacks '%s'", args, shown, want);
    CHECK_MSG(*quiet == 0, "sg %s: also printed '%s'", args, quiet);
    free(out);
    free(err);
}

/* One numeric option of cmd, whose usage says "[auto or ]LO..HI": out of range at both ends, not
 * a number, no value; both ends (and the word) accepted. */
static void try_range(const char *cmd, const char *name, const char *word, long long lo,
                      long long hi)
{
    char args[256], want[256], value[32];
    const long long bad[] = {lo - 1, hi + 1};
    for (int k = 0; k < 3; k++) {
        if (k < 2)
            snprintf(value, sizeof value, "%lld", bad[k]);
        else
            snprintf(value, sizeof value, "%lldx", hi);
        snprintf(args, sizeof args, "%s --%s %s", cmd, name, value);
        /* "an integer in" for integers, "a number in" for numbers (--temperature) */
        snprintf(want, sizeof want, "sg %s: --%s must be %s%s", cmd, name, word ? word : "",
                 word ? " or an integer in" : "");
        expect(args, 2, want);
        snprintf(want, sizeof want, " in %lld..%lld (got '%s')", lo, hi, value);
        expect(args, 2, want);
    }
    snprintf(args, sizeof args, "%s --%s", cmd, name);
    snprintf(want, sizeof want, "sg %s: --%s needs a value", cmd, name);
    expect(args, 2, want);
    snprintf(value, sizeof value, "%lld", lo);
    snprintf(args, sizeof args, "%s --%s %lld --%s=%lld --%s %s --help", cmd, name, hi, name, lo,
             name, word ? word : value);
    snprintf(want, sizeof want, "usage: sg %s", cmd);
    expect(args, 0, want);
}

/* Finds the numeric options in cmd's usage and tries each; returns how many there were. */
static int try_ranges(const char *cmd)
{
    char args[128], *out, *err;
    snprintf(args, sizeof args, "%s --help", cmd);
    CHECK_EQ_INT(sg(args, &out, &err), 0);
    int found = 0;
    for (char *line = out; (line = strstr(line, "\n  --")) != NULL;) {
        line += 3;
        char name[32], *next = strstr(line, "\n  --"), *dots = strstr(line, "..");
        if (!dots || (next && dots > next) || sscanf(line + 2, "%31[a-z-]", name) != 1)
            continue;
        char *start = dots;
        while (start > line && (start[-1] == '-' || (start[-1] >= '0' && start[-1] <= '9')))
            start--;
        int is_auto = start - line > 8 && strncmp(start - 8, "auto or ", 8) == 0;
        try_range(cmd, name, is_auto ? "auto" : NULL, strtoll(start, NULL, 10),
                  strtoll(dots + 2, NULL, 10));
        found++;
    }
    free(out);
    free(err);
    return found;
}

int main(void)
{
    snprintf(errpath, sizeof errpath, "/tmp/test_cli_opts.%d.err", (int)getpid());

    static const struct {
        const char *cmd;
        int numeric; /* how many numeric options its usage lists */
    } commands[] = {
        {"describe", 0},   {"clip embed", 2}, {"clip text", 2},  {"clip classify", 2},
        {"bench clip", 2}, {"generate", 3},   {"quantize", 0},   {"vad", 1},
        {"transcribe", 5}, {"bench whisper", 5}, {"version", 0},
    };
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        CHECK_MSG(try_ranges(commands[i].cmd) == commands[i].numeric, "sg %s --help",
                  commands[i].cmd);

    static const struct {
        const char *args;
        int status;
        const char *want;
    } cases[] = {
        /* --help: the command's usage line, options, ranges and defaults */
        {"describe --help", 0, "usage: sg describe IMAGE..."},
        {"clip embed --help", 0, "usage: sg clip embed --model DIR"},
        {"clip text --help", 0, "usage: sg clip text --model DIR"},
        {"clip classify --help", 0, "--labels"},
        {"bench clip --help", 0, "--runs R               bench clip: timed runs; 1..1000000, default 20"},
        {"generate --help", 0, "--max-tokens N         tokens to generate; 0..2048, default 64"},
        {"quantize --help", 0, "--out DIR2"},
        {"vad -h", 0, "usage: sg vad --model PATH"},
        {"transcribe --help", 0, "auto or 0..100000, default 0"},
        {"bench whisper --help", 0, "--runs R               timed runs; 1..1000000, default 5"},
        {"clip embed --help", 0, "--threads N            worker threads, 0: one per core; 0..256, default 0"},
        {"clip embed --help", 0, "f32 or int8, default int8"},
        {"generate --help", 0, "f32 or int8, default f32"},
        {"stream --help", 0, "usage: sg stream"},
        {"version --help", 0, "usage: sg version"},
        {"help --help", 0, "commands:"},
        {"help vad", 0, "usage: sg vad --model PATH"},
        {"help bench whisper", 0, "usage: sg bench whisper"},
        {"help stream", 0, "usage: sg stream"},
        {"help clip", 0, "clip classify --model DIR"},
        {"help", 0, "transcribe --model PATH"},
        {"--help", 0, "bench whisper --model PATH"},
        {"-h", 0, "describe IMAGE..."},
        {"clip --help", 0, "clip text --model DIR"},
        {"bench --help", 0, "bench clip --model DIR"},
        /* the old short options, --name=value and choices */
        {"transcribe -t 0 -c auto -n 1000000 -r 1 -p f32 --help", 0, "usage: sg transcribe"},
        {"bench whisper -R 1000000 --precision=int8 --help", 0, "usage: sg bench whisper"},
        {"clip embed -t 300 x.jpg", 2, "sg clip embed: --threads must be an integer in 0..256 (got '300')"},
        {"vad -r 0 -m m a.wav", 2, "sg vad: --sample-rate must be an integer in 1..1000000 (got '0')"},
        {"generate --max-tokens=4096 --model m --prompt p", 2, "--max-tokens must be an integer in 0..2048"},
        {"transcribe --audio-ctx '' a.wav", 2, "--audio-ctx must be auto or an integer in 0..100000"},
        {"bench whisper --runs 99999999999999999999 a.wav", 2, "--runs must be an integer in 1..1000000"},
        {"clip embed --precision f16 x.jpg", 2, "sg clip embed: --precision must be f32 or int8 (got 'f16')"},
        {"generate --precision", 2, "sg generate: --precision needs a value (P)"},
        {"vad a.wav --model", 2, "sg vad: --model needs a value (PATH)"},
        /* unknown, ambiguous, misplaced */
        {"vad --bogus --model m a.wav", 2, "sg vad: unknown or ambiguous option '--bogus'"},
        {"transcribe --t 2 --model m a.wav", 2, "unknown or ambiguous option '--t'"},
        {"describe -z x.jpg", 2, "sg describe: unknown option '-z'"},
        {"vad --probs=yes --model m a.wav", 2, "sg vad: --probs takes no value"},
        {"transcribe --runs 3 --model m a.wav", 2, "sg transcribe: --runs is for `sg bench whisper`"},
        {"transcribe -R 3 --model m a.wav", 2, "--runs is for `sg bench whisper`"},
        /* operands where there are none */
        {"generate --model m --prompt p stray", 2, "sg generate: unexpected argument 'stray'"},
        {"quantize stray --model m --out o", 2, "sg quantize: unexpected argument 'stray'"},
        /* groups and commands */
        {"clip", 2, "sg clip: give a subcommand"},
        {"clip bogus --model m x", 2, "sg clip: unknown subcommand 'bogus'"},
        {"bench bogus", 2, "bench whisper --model PATH"},
        {"help bogus", 2, "sg: unknown command 'bogus'"},
        {"frobnicate --help", 2, "sg: unknown command 'frobnicate'"},
        {"", 2, "usage: sg <command>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        expect(cases[i].args, cases[i].status, cases[i].want);

    /* transcribe's usage leaves out bench whisper's --runs */
    char *out, *err;
    CHECK_EQ_INT(sg("transcribe --help", &out, &err), 0);
    CHECK_MSG(strstr(out, "--runs") == NULL, "%s", out);
    free(out);
    free(err);

    unlink(errpath);
    return check_report("test_cli_opts");
}
