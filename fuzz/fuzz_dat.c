/* libFuzzer target for the DAT stream state (server/dat_state.c): the input is a program of chunk
 * operations as a client could send them - claims, audio chunks of any format with arbitrary PCM
 * bytes and sequence numbers (in order, out of order, repeated, far ahead), frame / IMU counts and
 * turns. Each turn's chunks must come out strictly in sequence order with consistent totals within
 * the limits, and joining them into 16 kHz audio must succeed or fail cleanly. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/dat_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_turn(const sg_dat_turn *t, const sg_config *cfg)
{
    size_t bytes = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (i && t->chunks[i].seq <= t->chunks[i - 1].seq)
            abort(); /* out of order or buffered twice */
        bytes += t->chunks[i].len;
    }
    if (bytes != t->bytes || bytes > cfg->audio_max_bytes || t->n > SG_DAT_MAX_CHUNKS ||
        t->seconds > cfg->audio_max_seconds + 1e-6)
        abort();
    sg_audio a;
    sg_error err;
    if (sg_dat_turn_audio(t, &a, &err) == SG_OK) {
        if ((t->n && !a.samples) || (!t->n && a.n))
            abort();
        for (size_t i = 0; i < a.n; i++)
            if (!isfinite(a.samples[i]) || fabsf(a.samples[i]) > 1.0f)
                abort();
        sg_audio_free(&a);
    } else if (a.samples || a.n) {
        abort(); /* a failure leaves nothing to free */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int rates[8] = {16000, 8000, 22050, 44100, 48000, 11025, 192000, 12345};
    if (size < 1)
        return 0;
    sg_config cfg;
    sg_config_defaults(&cfg);
    cfg.audio_max_bytes = 2048;
    cfg.audio_max_seconds = 0.5;
    cfg.audio_policy = (data[0] & 1) ? SG_POLICY_REJECT : SG_POLICY_TRIM;
    sg_dat_state d;
    sg_dat_state_init(&d);
    const sg_dat_ops *ops = &sg_dat_state_ops;
    sg_error err;
    size_t i = 1;
    while (i + 3 <= size) {
        uint8_t op = data[i];
        long long seq = (long long)(data[i + 1] | data[i + 2] << 8);
        if (op & 0x80)
            seq *= 37; /* far jumps past the window */
        i += 3;
        sg_dat_type type = (sg_dat_type)((op >> 3) % SG_DAT_TYPES);
        switch (op & 7) {
        case 0:
        case 1:
            ops->claim(&d, type, seq);
            break;
        case 2:
            ops->unclaim(&d, type, seq);
            break;
        case 3:
        case 4: {
            if (i >= size)
                break;
            uint8_t f = data[i++];
            sg_dat_audio_fmt fmt = {(f & 1) ? SG_AUDIO_PCM_F32LE : SG_AUDIO_PCM_S16LE,
                                    rates[(f >> 1) & 7], 1 + ((f >> 4) & 1)};
            size_t frame = ((f & 1) ? 4u : 2u) * (size_t)fmt.channels;
            size_t len = (size_t)(f >> 5) * 64 + frame; /* 1 frame .. ~450 bytes */
            len -= len % frame;
            if (len > size - i)
                len = (size - i) - (size - i) % frame;
            if (len == 0)
                break;
            uint8_t *pcm = malloc(len);
            if (!pcm)
                abort();
            memcpy(pcm, data + i, len);
            i += len;
            sg_dat_seen seen;
            sg_dat_stats st;
            sg_status rc = ops->add_audio(&d, &cfg, seq, &fmt, pcm, len, &seen, &st, &err);
            if (rc != SG_OK && rc != SG_ETOOBIG)
                abort();
            if (st.bytes > cfg.audio_max_bytes || st.chunks > SG_DAT_MAX_CHUNKS)
                abort();
            break;
        }
        case 5:
            ops->count(&d, type, (long)seq);
            ops->frame_newest(&d, seq);
            break;
        default: {
            sg_dat_turn t;
            ops->take_turn(&d, &t, NULL);
            check_turn(&t, &cfg);
            sg_dat_turn_free(&t);
            break;
        }
        }
    }
    sg_dat_turn t;
    ops->take_turn(&d, &t, NULL);
    check_turn(&t, &cfg);
    sg_dat_turn_free(&t);
    sg_dat_state_free(&d);
    return 0;
}
