/* Ogg Opus with libopus and libogg (opus_ogg.h). */
#include "media/opus_ogg.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <ogg/ogg.h>
#include <opus/opus.h>

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
    bool failed;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2 + 4096;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void put_page(buf *b, const ogg_page *pg)
{
    put(b, pg->header, (size_t)pg->header_len);
    put(b, pg->body, (size_t)pg->body_len);
}

static void le16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

sg_status sg_opus_ogg_encode(const int16_t *pcm, size_t n, int sample_rate, int bitrate,
                             int complexity, uint8_t **out, size_t *out_len, sg_error *err)
{
    *out = NULL;
    *out_len = 0;
    if ((!pcm && n) || (sample_rate != 8000 && sample_rate != 12000 && sample_rate != 16000 &&
                        sample_rate != 24000 && sample_rate != 48000) ||
        bitrate < 6000 || bitrate > 256000 || complexity < 0 || complexity > 10)
        return sg_error_set(err, SG_EINVAL, "opus: bad arguments (rate %d, bitrate %d)",
                            sample_rate, bitrate);
    int oe = 0;
    OpusEncoder *enc = opus_encoder_create(sample_rate, 1, OPUS_APPLICATION_VOIP, &oe);
    if (!enc)
        return sg_error_set(err, oe == OPUS_ALLOC_FAIL ? SG_ENOMEM : SG_EINTERNAL, "opus: %s",
                            opus_strerror(oe));
    opus_encoder_ctl(enc, OPUS_SET_BITRATE(bitrate));
    opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(complexity));
    opus_encoder_ctl(enc, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
    opus_int32 lookahead = 0;
    opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD(&lookahead));
    const int scale = 48000 / sample_rate; /* granule positions count 48 kHz samples */
    const unsigned pre_skip = (unsigned)lookahead * (unsigned)scale;

    ogg_stream_state os;
    if (ogg_stream_init(&os, 0x53474f50 /* "SGOP" */) != 0) {
        opus_encoder_destroy(enc);
        return sg_error_set(err, SG_ENOMEM, "opus: out of memory");
    }
    buf b = {0};
    ogg_page pg;
    /* the identification header (its own page) and the comment header */
    uint8_t head[19];
    memcpy(head, "OpusHead", 8);
    head[8] = 1;  /* version */
    head[9] = 1;  /* channels */
    le16(head + 10, pre_skip);
    le32(head + 12, (uint32_t)sample_rate);
    le16(head + 16, 0); /* output gain */
    head[18] = 0;       /* mapping family: mono/stereo */
    ogg_packet op = {head, sizeof head, 1, 0, 0, 0};
    ogg_stream_packetin(&os, &op);
    while (ogg_stream_flush(&os, &pg))
        put_page(&b, &pg);
    static const char vendor[] = "smartglass-edge";
    uint8_t tags[8 + 4 + sizeof vendor - 1 + 4];
    memcpy(tags, "OpusTags", 8);
    le32(tags + 8, sizeof vendor - 1);
    memcpy(tags + 12, vendor, sizeof vendor - 1);
    le32(tags + 12 + sizeof vendor - 1, 0); /* no user comments */
    op = (ogg_packet){tags, sizeof tags, 0, 0, 0, 1};
    ogg_stream_packetin(&os, &op);
    while (ogg_stream_flush(&os, &pg))
        put_page(&b, &pg);

    /* 20 ms packets; the last one padded with silence, its granule position trimming it */
    const size_t frame = (size_t)sample_rate / 50;
    int16_t *last = calloc(frame, sizeof *last);
    uint8_t packet[1500];
    sg_status st = last ? SG_OK : sg_error_set(err, SG_ENOMEM, "opus: out of memory");
    ogg_int64_t packetno = 2;
    const size_t frames = n ? (n + frame - 1) / frame : 1;
    for (size_t f = 0; f < frames && st == SG_OK && !b.failed; f++) {
        const size_t at = f * frame, have = n > at ? (n - at < frame ? n - at : frame) : 0;
        const int16_t *in = pcm + at;
        if (have < frame) {
            memset(last, 0, frame * sizeof *last);
            if (have)
                memcpy(last, pcm + at, have * sizeof *last);
            in = last;
        }
        opus_int32 len = opus_encode(enc, in, (int)frame, packet, sizeof packet);
        if (len < 0) {
            st = sg_error_set(err, SG_EINTERNAL, "opus: %s", opus_strerror(len));
            break;
        }
        const bool eos = f + 1 == frames;
        const ogg_int64_t end = (ogg_int64_t)(eos ? n : at + frame);
        op = (ogg_packet){packet, len, 0, eos, pre_skip + end * scale, packetno++};
        ogg_stream_packetin(&os, &op);
        while (ogg_stream_pageout(&os, &pg))
            put_page(&b, &pg);
    }
    while (st == SG_OK && ogg_stream_flush(&os, &pg))
        put_page(&b, &pg);
    free(last);
    ogg_stream_clear(&os);
    opus_encoder_destroy(enc);
    if (st == SG_OK && b.failed)
        st = sg_error_set(err, SG_ENOMEM, "opus: out of memory");
    if (st != SG_OK) {
        free(b.p);
        return st;
    }
    *out = b.p;
    *out_len = b.len;
    return SG_OK;
}
