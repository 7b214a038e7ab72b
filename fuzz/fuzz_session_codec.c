/* libFuzzer target for the values a shared session store reads back (server/session_codec.c):
 * the first byte picks the decoder (metadata, working state, raw media, a DAT chunk record), the
 * rest is the value as Redis would hand it over. A value must decode or be refused with
 * SG_ECORRUPT (never another status but out of memory); a decoded session is one the server can
 * use (it keeps a frame and audio, and is freed), and encoding it gives a value that decodes to
 * the same bytes again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "server/session_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_status(sg_status st)
{
    if (st != SG_OK && st != SG_ECORRUPT && st != SG_ENOMEM)
        abort();
}

static void session_case(sg_session_part part, const uint8_t *buf, size_t len)
{
    sg_privacy all = {true, true, true};
    sg_session s = {0};
    sg_session_state_init(&s, NULL, &all);
    sg_error err = {0};
    sg_status st = sg_session_decode(&s, part, buf, len, &err);
    check_status(st);
    if (st == SG_OK) {
        uint8_t *again;
        size_t again_len;
        if (sg_session_encode(&s, part, &again, &again_len, &err) == SG_OK) {
            sg_session t = {0};
            sg_session_state_init(&t, NULL, &all);
            if (sg_session_decode(&t, part, again, again_len, &err) != SG_OK)
                abort(); /* what we write we read */
            uint8_t *third;
            size_t third_len;
            if (sg_session_encode(&t, part, &third, &third_len, &err) == SG_OK) {
                if (third_len != again_len || memcmp(third, again, again_len) != 0)
                    abort();
                free(third);
            }
            sg_session_state_free(&t);
            free(again);
        }
        /* the server goes on using it: a frame and audio into the decoded buffers */
        sg_config cfg;
        sg_config_defaults(&cfg);
        cfg.frame_history = 2;
        uint8_t frame[3] = {1, 2, 3};
        float pcm[4] = {0};
        sg_session_keep_frame(&s, &cfg, frame, sizeof frame, &err);
        sg_session_keep_audio(&s, &cfg, pcm, 4, &err);
        sg_session_add_transcript(&s, "t");
        sg_session_add_turn(&s, "q", "r");
    }
    sg_session_state_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t *buf = fuzz_exact_copy(data + 1, size - 1);
    if (!buf)
        return 0;
    size_t len = size - 1;
    sg_error err = {0};
    switch (data[0] % 4) {
    case 0: {
        sg_session_meta m;
        check_status(sg_session_meta_decode(buf, len, &m, &err));
        break;
    }
    case 1: session_case(SG_SESSION_PART_STATE, buf, len); break;
    case 2: session_case(SG_SESSION_PART_RAW, buf, len); break;
    default: {
        sg_dat_chunk c;
        sg_status st = sg_dat_record_decode(buf, len, &c, &err);
        check_status(st);
        if (st == SG_OK && (c.len == 0 || c.len != len - SG_DAT_RECORD_HEADER || !c.data))
            abort();
        free(c.data);
        break;
    }
    }
    free(buf);
    return 0;
}
