/* sg: the smartglass-edge command-line tool. Every subcommand prints JSON, one object per line, so
 * scripts can use it. Later issues add the model subcommands (clip, generate, transcribe, vad). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/describe.h"
#include "base/clock.h"
#include "media/image.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sg <command> [args]\n"
               "commands:\n"
               "  describe IMAGE...   low-level description of JPEG/PNG files (the vision fallback), JSON\n"
               "  version             print the version\n"
               "  help                this text\n");
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    *len = n;
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
        char *data = read_file(argv[i], &len);
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

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "describe") == 0)
        return cmd_describe(argc - 2, argv + 2);
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
