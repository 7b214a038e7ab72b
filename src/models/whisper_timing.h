/* Word timestamps as openai/whisper's timing.py computes them: the decoder is run once over
 * [sot sequence, <|notimestamps|>, text tokens, <|endoftext|>] on the window's encoder output,
 * the cross-attention weights of the alignment heads (the model's own list: a Hugging Face
 * directory's generation_config.json "alignment_heads"; when the file names none, every head of
 * the last half of the decoder layers) are taken at the text tokens, softmaxed over source
 * positions, normalised per head (mean / std over tokens), median-filtered (width 7), averaged
 * over heads; dynamic time warping on the negated matrix gives token boundaries; tokens become
 * words (split at spaces, or per character for languages without spaces), punctuation is merged
 * into neighbours, and add_word_timestamps's rules fix the segment boundaries.
 *
 * At f32 the words, times and probabilities equal openai's algorithm on the same weights
 * (tests/test_whisper_timing.c against py/whisper_timing_reference.py); at Q8 the scores come
 * from the int8 cross-attention keys, so times can move by a frame or two. Segment times are the
 * segments' floats (openai keeps float64), which matters only at exact ties of its comparisons.
 * A whisper.cpp file's vocabulary lost the bytes of tokens that are pieces of characters
 * (sg_whisper_detokenize): such tokens decode to U+FFFD, so words made of them (per-character
 * splitting of CJK text) differ from openai's; Hugging Face directories with their tokenizer do
 * not have that limit. Cost: one decoder pass over the window's tokens with their logits (a
 * batched pass: about +10% (f32) to +15..22% (int8) of greedy decoding on a base-size model),
 * the per-head statistics and the DTW. */
#ifndef SG_MODELS_WHISPER_TIMING_H
#define SG_MODELS_WHISPER_TIMING_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "models/whisper.h"
#include "models/whisper_transcribe.h"

#define SG_WHISPER_PREPEND_PUNCTUATIONS "\"'\xe2\x80\x9c\xc2\xbf([{-"
#define SG_WHISPER_APPEND_PUNCTUATIONS \
    "\"'.\xe3\x80\x82,\xef\xbc\x8c!\xef\xbc\x81?\xef\xbc\x9f:\xef\xbc\x9a\xe2\x80\x9d)]}\xe3\x80\x81"

typedef struct sg_whisper_head {
    int layer, head;
} sg_whisper_head;

/* The alignment heads in use (the file's, or the last half of the decoder's); *n entries, owned
 * by the model. */
const sg_whisper_head *sg_whisper_alignment_heads(const sg_whisper *m, int *n);

/* openai's add_word_timestamps for one window's segments (segs[0..nsegs), their tokens as
 * sg_whisper_transcribe made them, times already absolute): needs that window encoded last
 * (the model's cross-attention keys/values; sg_whisper_cross_qk runs the decoder over
 * [sot, <|notimestamps|>, text, <|endoftext|>]) and the model's vocabulary (word texts).
 * sot/n_sot (1..8 tokens): the window's <|startoftranscript|> [lang] [task] sequence; its
 * language token picks per-character splitting (zh ja th lo my yue) over splitting at spaces.
 * num_frames: the window's content frames (segment_size; the scores are sliced to
 * num_frames / 2 positions, at most the encoded ones). Fills each segment's words (any words
 * the segments held are freed first; none for a segment without text tokens) and may move its
 * start/end; probability is the mean of the word's token probabilities (softmax over the
 * logits below <|endoftext|>, as find_alignment takes them). *last_speech_timestamp is read
 * (openai's parameter, updated segment by segment inside the call) and, when any word was
 * made, set to the end of the last word, as transcribe() does after the call.
 * Memory: one decoder layer's alignment heads x (n_sot + text + 2) x num_frames / 2 floats of
 * scores (sg_whisper_cross_qk hands them over a layer at a time), the sum over heads, the DTW tables
 * ((text + 1) x (num_frames / 2 + 1) floats and bytes) and one row block of logits.
 * Errors: SG_EINVAL (bad arguments, tokens outside the vocabulary, more tokens than the
 * decoder's context, nothing encoded, no vocabulary), SG_ENOMEM; segments keep no words then. */
sg_status sg_whisper_add_word_timestamps(sg_whisper *m, sg_whisper_segment *segs, size_t nsegs,
                                         const int32_t *sot, int n_sot, int num_frames,
                                         float *last_speech_timestamp, sg_error *err);

/* openai's median_filter along the rows of x [rows][n] (in place): reflect padding by width / 2,
 * each value the middle of its sorted window (NaN sorts last, as torch's sort); rows shorter than
 * width / 2 + 1 are left as they are. width odd. SG_EINVAL, SG_ENOMEM. */
sg_status sg_whisper_median_filter(float *x, int rows, int n, int width, sg_error *err);

/* openai's dtw_cpu + backtrace on the cost matrix x [N][M]: float32 cumulative costs, ties broken
 * as dtw_cpu breaks them (diagonal only when strictly cheapest, then up, else left); the path from
 * (0, 0) to (N - 1, M - 1) as text_idx[k], time_idx[k], k < *len (capacity N + M each; indices
 * may be -1 at the start, as the backtrace gives them). SG_EINVAL, SG_ENOMEM. */
sg_status sg_whisper_dtw(const float *x, int N, int M, int *text_idx, int *time_idx, int *len,
                         sg_error *err);

#endif
