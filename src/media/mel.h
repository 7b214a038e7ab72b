/* Whisper's audio front end: Slaney mel filters computed exactly as librosa.filters.mel makes them
 * (htk=False, norm="slaney"), and the log-mel spectrogram of openai/whisper's
 * log_mel_spectrogram (n_fft 400, hop 160, periodic Hann, centred STFT with reflect padding, last
 * frame dropped, power, mel projection, log10, clamp to max - 8, (x + 4) / 4). */
#ifndef SG_MEDIA_MEL_H
#define SG_MEDIA_MEL_H

#include <stddef.h>

#include "base/error.h"

#define SG_MEL_N_FFT 400
#define SG_MEL_HOP 160
#define SG_MEL_BINS (SG_MEL_N_FFT / 2 + 1) /* 201 frequency bins per frame */
#define SG_MEL_FRAMES_30S 3000             /* 30 s at 16 kHz: the standard encoder input */
#define SG_MEL_MAX_MELS 1024

/* Fills out (n_mels rows of n_fft/2 + 1 floats) with librosa.filters.mel(sr=sample_rate,
 * n_fft=n_fft, n_mels=n_mels) (fmin 0, fmax sr/2), bit for bit for whisper's 80 and 128 mels.
 * Errors: SG_EINVAL for n_mels outside 1..SG_MEL_MAX_MELS, n_fft < 2, sample_rate <= 0, out NULL. */
sg_status sg_mel_filters(int n_mels, int n_fft, int sample_rate, float *out, sg_error *err);

/* The log-mel spectrogram of 16 kHz mono audio, *out = n_mels rows of *frames floats (row-major
 * by mel, like whisper's [n_mels, frames] tensor), malloc'ed, the caller frees it.
 * filters: n_mels x SG_MEL_BINS (e.g. from a ggml file), or NULL to compute sg_mel_filters().
 * pad_to_frames > 0: whisper.pad_or_trim(audio) then log_mel_spectrogram(audio), generalised:
 *   the audio is zero-padded (or trimmed) to pad_to_frames * 160 samples before the STFT, which
 *   then gives exactly pad_to_frames frames (3000 for the standard encoder); the max - 8 clamp is
 *   taken over those frames. This is the path of whisper's README example and of decode() on a
 *   30 s window.
 * pad_to_frames == 0: the natural length, n / 160 frames (whisper's own frame count; the last
 *   STFT frame is dropped as whisper drops it). Input shorter than one hop still gives one frame
 *   (whisper would give none, and torch's reflect padding refuses n <= 200; here reflection keeps
 *   folding as numpy.pad does, and a single sample is repeated).
 * For transcribe()'s variant (zeros appended, not padded to a length) see sg_log_mel_padded.
 * Errors: SG_EINVAL (n == 0, pcm or out NULL, a non-finite sample, n_mels out of range,
 * pad_to_frames < 0), SG_ETOOBIG (the output would not fit in memory or an int), SG_ENOMEM. */
sg_status sg_log_mel(const float *pcm16k, size_t n, int n_mels, const float *filters,
                     int pad_to_frames, float **out, int *frames, sg_error *err);

/* Exactly whisper.audio.log_mel_spectrogram(audio, n_mels, padding=pad_samples): pad_samples
 * zeros are appended, the STFT runs over n + pad_samples samples, giving (n + pad_samples) / 160
 * frames, and the max - 8 clamp is taken over all of them. transcribe() calls it with
 * pad_samples = 480000 and then feeds the encoder the windows mel[:, seek:seek + 3000]. For
 * audio up to 30 s less 200 samples, window 0 equals sg_log_mel(..., 3000) (the frames after it
 * hold only appended silence, which cannot raise the max); nearer to 30 s the last frame differs
 * (reflected audio there, appended zeros here), and longer audio differs throughout (trimmed and
 * normalised over 30 s there, normalised over the whole clip here). Errors as sg_log_mel. */
sg_status sg_log_mel_padded(const float *pcm16k, size_t n, int n_mels, const float *filters,
                            size_t pad_samples, float **out, int *frames, sg_error *err);

#endif
