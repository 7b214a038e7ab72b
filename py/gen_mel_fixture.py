#!/usr/bin/python3
"""Writes tests/fixtures/mel/jfk_logmel.txt: whisper's log-mel spectrogram of
../shared/data/audio/jfk.wav computed the way openai/whisper computes it (torch.stft with the
periodic Hann window, center=True, reflect padding, last frame dropped, |.|^2, the mel filters from
../shared/tokenizers/whisper_mel_filters.npz, log10(clamp(1e-10)), max(x, max - 8), (x + 4) / 4),
all in float32 as whisper runs it on the CPU. Too big to commit whole, so each variant keeps its
per-mel and per-frame means and a few hundred sampled values.

Variants (what tests/test_mel.c calls):
  trim:   whisper.pad_or_trim(audio, pad * 160) first when pad > 0  -> sg_log_mel(pad_to_frames=pad)
  padded: log_mel_spectrogram(audio, padding=pad)  (transcribe())   -> sg_log_mel_padded(pad)
  tile:   the audio repeated that many times first (to test trimming of audio longer than 30 s)

Run from the project root with Debian's python3 (numpy, torch):  /usr/bin/python3 py/gen_mel_fixture.py
"""
import os
import sys
import wave

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")
N_FFT, HOP = 400, 160
VALUES_PER_VARIANT = 400

VARIANTS = [  # name, n_mels, kind, arg, tile
    ("natural80", 80, "trim", 0, 1),
    ("trim80", 80, "trim", 3000, 1),
    ("trim128", 128, "trim", 3000, 1),
    ("padded80", 80, "padded", 480000, 1),
    ("long80", 80, "trim", 3000, 4),
]


def load_jfk():
    with wave.open(os.path.join(SHARED, "data", "audio", "jfk.wav"), "rb") as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0  # as whisper.load_audio scales s16


def log_mel_spectrogram(audio, filters, padding=0, dtype=torch.float32):
    """openai/whisper's audio.log_mel_spectrogram, step for step."""
    audio = torch.from_numpy(audio).to(dtype)
    if padding > 0:
        audio = F.pad(audio, (0, padding))
    window = torch.hann_window(N_FFT, dtype=dtype)
    stft = torch.stft(audio, N_FFT, HOP, window=window, return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2
    mel_spec = torch.from_numpy(filters).to(dtype) @ magnitudes
    log_spec = torch.clamp(mel_spec, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).numpy()


def pad_or_trim(audio, length):
    if len(audio) > length:
        return audio[:length]
    return np.pad(audio, (0, length - len(audio)))


def variant(audio, filters, kind, arg, dtype):
    if kind == "trim":
        if arg > 0:
            audio = pad_or_trim(audio, arg * HOP)
        return log_mel_spectrogram(audio, filters, 0, dtype)
    return log_mel_spectrogram(audio, filters, arg, dtype)


def main():
    out_path = os.path.join(ROOT, "tests", "fixtures", "mel", "jfk_logmel.txt")
    jfk = load_jfk()
    with np.load(os.path.join(SHARED, "tokenizers", "whisper_mel_filters.npz")) as f:
        filters = {n: f["mel_%d" % n] for n in (80, 128)}
    rng = np.random.RandomState(20240605)
    lines = ["# whisper log-mel of ../shared/data/audio/jfk.wav; written by py/gen_mel_fixture.py"]
    for name, n_mels, kind, arg, tile in VARIANTS:
        audio = np.tile(jfk, tile)
        mel = variant(audio, filters[n_mels], kind, arg, torch.float32)
        mel64 = variant(audio.astype(np.float64), filters[n_mels].astype(np.float64), kind, arg,
                        torch.float64)
        frames = mel.shape[1]
        print("%-10s %4d x %5d  float32 vs float64: max |diff| %.3g" %
              (name, n_mels, frames, np.abs(mel - mel64).max()), file=sys.stderr)
        lines.append("variant %s n_mels %d kind %s arg %d tile %d frames %d" %
                     (name, n_mels, kind, arg, tile, frames))
        lines.append("mel_mean " + " ".join("%.6f" % v for v in mel.astype(np.float64).mean(1)))
        lines.append("frame_mean " + " ".join("%.6f" % v for v in mel.astype(np.float64).mean(0)))
        picks = [(0, 0), (n_mels - 1, frames - 1), (0, frames - 1), (n_mels - 1, 0)]
        picks += list(zip(rng.randint(0, n_mels, VALUES_PER_VARIANT - 4),
                          rng.randint(0, frames, VALUES_PER_VARIANT - 4)))
        lines.append("values %d" % len(picks))
        lines += ["%d %d %.7f" % (m, t, mel[m, t]) for m, t in picks]
    lines.append("end")
    with open(out_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s (%d bytes)" % (out_path, os.path.getsize(out_path)), file=sys.stderr)


if __name__ == "__main__":
    main()
