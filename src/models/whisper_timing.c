/* TEMP stub: models/whisper_timing.h is implemented on another branch (dropped at merge). */
#include "models/whisper_timing.h"

const sg_whisper_head *sg_whisper_alignment_heads(const sg_whisper *m, int *n)
{
    (void)m;
    if (n)
        *n = 0;
    return NULL;
}

sg_status sg_whisper_add_word_timestamps(sg_whisper *m, sg_whisper_segment *segs, size_t nsegs,
                                         const int32_t *sot, int n_sot, int num_frames,
                                         float *last_speech_timestamp, sg_error *err)
{
    (void)m, (void)segs, (void)nsegs, (void)sot, (void)n_sot, (void)num_frames;
    (void)last_speech_timestamp;
    return sg_error_set(err, SG_EUNSUPPORTED, "word timestamps: not in this build (stub)");
}
