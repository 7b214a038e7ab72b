"""Our own PyTorch reference of Silero VAD v6.2 (16 kHz), reading whisper.cpp's ggml file, for the
expected-probabilities fixture of tests/test_silero_vad.c; development time only (Debian
python3-torch), CI runs against the committed output.

The graph is silero's (snakers4/silero-vad, tinygrad_model.py and utils_vad.py): each 512-sample
window gets the previous window's last 64 samples in front (zeros for the first), is
reflection-padded by 64 on the right (640 samples), goes through the STFT-as-conv1d (258 filters of
256 taps, stride 128 -> 4 frames; magnitude of the 129 real/imaginary pairs), four conv1d + ReLU
(k3 p1, strides 1, 2, 2, 1 -> one frame of 128), an LSTM cell (128, state carried across windows),
ReLU, a 1x1 conv and a sigmoid. The last partial window is zero-padded to 512. Segments follow
utils_vad.get_speech_timestamps (max_speech_duration_s = inf).

    /usr/bin/python3 py/silero_reference.py MODEL.bin AUDIO.wav [--windows N] [--fixture OUT]
    /usr/bin/python3 py/silero_reference.py --segment-cases OUT
"""
import argparse
import struct
import sys
import wave

import numpy as np
import torch
import torch.nn.functional as F

GGML_MAGIC = 0x67676D6C


def read_ggml(path):
    """Returns (hparams dict, {name: float32 torch tensor in PyTorch's shape})."""
    b = open(path, "rb").read()
    o = 0

    def i32():
        nonlocal o
        v = struct.unpack_from("<i", b, o)[0]
        o += 4
        return v

    if i32() != GGML_MAGIC:
        raise ValueError("bad magic")
    n = i32()
    hp = {"type": b[o:o + n].decode()}
    o += n
    hp["version"] = (i32(), i32(), i32())
    hp["window"], hp["context"], hp["n_layers"] = i32(), i32(), i32()
    hp["layers"] = [(i32(), i32(), i32()) for _ in range(hp["n_layers"])]
    hp["lstm_in"], hp["lstm_hidden"], hp["final_in"], hp["final_out"] = i32(), i32(), i32(), i32()
    tensors = {}
    while o < len(b):
        nd, nl, ft = i32(), i32(), i32()
        dims = [i32() for _ in range(nd)]
        name = b[o:o + nl].decode()
        o += nl
        count = int(np.prod(dims)) if dims else 1
        dt = np.float16 if ft == 1 else np.float32
        a = np.frombuffer(b, dtype=dt, count=count, offset=o).astype(np.float32)
        o += count * np.dtype(dt).itemsize
        # ggml lists dimensions fastest first: reverse for row-major
        tensors[name] = torch.from_numpy(a.reshape(list(reversed(dims)) if dims else []).copy())
    return hp, tensors


class SileroVAD:
    def __init__(self, path):
        self.hp, t = read_ggml(path)
        self.basis = t["_model.stft.forward_basis_buffer"]  # [258, 1, 256]
        self.enc = [(t[f"_model.encoder.{i}.reparam_conv.weight"], t[f"_model.encoder.{i}.reparam_conv.bias"])
                    for i in range(4)]
        self.strides = [1, 2, 2, 1]
        self.w_ih = t["_model.decoder.rnn.weight_ih"]  # [512, 128], gates i, f, g, o
        self.w_hh = t["_model.decoder.rnn.weight_hh"]
        self.b_ih = t["_model.decoder.rnn.bias_ih"]
        self.b_hh = t["_model.decoder.rnn.bias_hh"]
        self.w_out = t["_model.decoder.decoder.2.weight"].reshape(1, 128, 1)
        self.b_out = t["_model.decoder.decoder.2.bias"].reshape(1)

    def step(self, x576, h, c):
        x = F.pad(x576.reshape(1, 1, -1), (0, 64), mode="reflect")  # [1, 1, 640]
        ft = F.conv1d(x, self.basis, stride=128)  # [1, 258, 4]
        mag = torch.sqrt(ft[:, :129] ** 2 + ft[:, 129:] ** 2)
        y = mag
        for (w, b), s in zip(self.enc, self.strides):
            y = F.relu(F.conv1d(y, w, b, stride=s, padding=1))
        y = y.squeeze(-1)  # [1, 128]
        gates = y @ self.w_ih.T + self.b_ih + h @ self.w_hh.T + self.b_hh
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        p = torch.sigmoid(F.conv1d(F.relu(h).unsqueeze(-1), self.w_out, self.b_out))
        return float(p.reshape(())), h, c

    @torch.no_grad()
    def probs(self, audio):
        audio = torch.as_tensor(audio, dtype=torch.float32)
        n = audio.shape[0]
        nwin = (n + 511) // 512
        padded = torch.zeros(64 + nwin * 512)
        padded[64:64 + n] = audio
        h = torch.zeros(1, 128)
        c = torch.zeros(1, 128)
        out = []
        for w in range(nwin):
            p, h, c = self.step(padded[w * 512:w * 512 + 576], h, c)
            out.append(p)
        return out


def speech_timestamps(probs, n_samples, threshold=0.5, min_speech_ms=250, min_silence_ms=100,
                      speech_pad_ms=30, neg_threshold=None, sr=16000, window=512):
    """utils_vad.get_speech_timestamps after the model loop, max_speech_duration_s = inf (its
    prev_end / next_start / possible_ends only serve the maximum-duration split). Returns
    [{"start", "end"}] in samples."""
    min_speech = sr * min_speech_ms / 1000
    pad = sr * speech_pad_ms / 1000
    min_silence = sr * min_silence_ms / 1000
    neg = max(threshold - 0.15, 0.01) if neg_threshold is None else neg_threshold
    triggered, speeches, cur, temp_end = False, [], {}, 0
    for i, p in enumerate(probs):
        if p >= threshold and temp_end:
            temp_end = 0
        if p >= threshold and not triggered:
            triggered = True
            cur["start"] = window * i
            continue
        if p < neg and triggered:
            if not temp_end:
                temp_end = window * i
            if window * i - temp_end < min_silence:
                continue
            cur["end"] = temp_end
            if cur["end"] - cur["start"] > min_speech:
                speeches.append(cur)
            cur, temp_end, triggered = {}, 0, False
    if cur and n_samples - cur["start"] > min_speech:
        cur["end"] = n_samples
        speeches.append(cur)
    for i, s in enumerate(speeches):
        if i == 0:
            s["start"] = int(max(0, s["start"] - pad))
        if i != len(speeches) - 1:
            gap = speeches[i + 1]["start"] - s["end"]
            if gap < 2 * pad:
                s["end"] += int(gap // 2)
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - gap // 2))
            else:
                s["end"] = int(min(n_samples, s["end"] + pad))
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - pad))
        else:
            s["end"] = int(min(n_samples, s["end"] + pad))
    return speeches


def read_wav16k(path):
    with wave.open(path, "rb") as w:
        if w.getframerate() != 16000 or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError("this reference reads 16 kHz mono s16 WAV only")
        a = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return a.astype(np.float64) / 32768.0


def f32(x):
    return float(np.float32(x))


def short(x):
    """The shortest decimal that reads back (strtof) as the same float32."""
    return np.format_float_positional(np.float32(x), unique=True, trim="-")


def segment_cases(path, count=48, seed=5):
    """Random probability sequences (runs of speech, silence and in-between values, exact
    threshold values included) and parameters, with the segments silero's rules give, for
    tests/test_silero_vad.c. Values are float32, as the C side holds them."""
    rng = np.random.RandomState(seed)
    lines = ["# case n_samples threshold neg_threshold(0 = auto) min_speech_ms min_silence_ms "
             "speech_pad_ms nprobs / the probabilities / expect count start end ... (samples)",
             "# generated by py/silero_reference.py --segment-cases"]
    for k in range(count):
        thr = f32([0.5, 0.5, 0.5, 0.6, 0.3][k % 5])
        neg = 0.0 if k % 3 else f32(thr - [0.1, 0.2][k % 2])
        ms = [(250, 100, 30), (0, 0, 0), (100, 300, 100), (250, 100, 200), (500, 50, 30),
              (64, 32, 16)][k % 6]
        eff_neg = max(thr - 0.15, 0.01) if neg == 0.0 else neg
        probs = []
        nwin = rng.randint(1, 200)
        while len(probs) < nwin:
            kind = rng.randint(5)
            run = rng.randint(1, 25)
            for _ in range(run):
                if kind == 0:
                    v = rng.uniform(thr, 1.0)
                elif kind == 1:
                    v = rng.uniform(0.0, eff_neg)
                elif kind == 2:
                    v = rng.uniform(eff_neg, thr)
                elif kind == 3:
                    v = [thr, eff_neg, np.nextafter(np.float32(thr), np.float32(0)), 0.35, 0.5][rng.randint(5)]
                else:
                    v = rng.uniform(0, 1)
                if kind != 3:
                    v = round(v, 3)  # short in the file
                probs.append(f32(v))
        probs = probs[:nwin]
        n_samples = nwin * 512 - rng.randint(0, 512)
        segs = speech_timestamps(probs, n_samples, threshold=thr, min_speech_ms=ms[0],
                                 min_silence_ms=ms[1], speech_pad_ms=ms[2],
                                 neg_threshold=None if neg == 0.0 else neg)
        lines.append("case %d %s %s %d %d %d %d" % (n_samples, short(thr), short(neg), ms[0], ms[1],
                                                  ms[2], nwin))
        lines.append(" ".join(short(v) for v in probs))
        lines.append("expect %d" % len(segs) + "".join(" %d %d" % (x["start"], x["end"]) for x in segs))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--segment-cases":
        segment_cases(sys.argv[2])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("audio")
    ap.add_argument("--windows", type=int, default=0, help="windows in the fixture (0 = all)")
    ap.add_argument("--fixture", help="write the segments and probabilities here")
    a = ap.parse_args()
    m = SileroVAD(a.model)
    audio = read_wav16k(a.audio).astype(np.float32)
    probs = m.probs(audio)
    segs = speech_timestamps(probs, len(audio))
    print("windows", len(probs), "mean", sum(probs) / len(probs), file=sys.stderr)
    for s in segs:
        print("segment %.4f %.4f" % (s["start"] / 16000, s["end"] / 16000), file=sys.stderr)
    if a.fixture:
        k = len(probs) if a.windows <= 0 else min(a.windows, len(probs))
        with open(a.fixture, "w") as f:
            f.write("# %s on %s (%d samples): silero's segments with the default parameters\n"
                    "# (samples), then the speech probability of the first %d 512-sample windows\n"
                    "# (py/silero_reference.py, torch %s, float32)\n"
                    % (a.model.split("/")[-1], a.audio.split("/")[-1], len(audio), k, torch.__version__))
            for s in segs:
                f.write("segment %d %d\n" % (s["start"], s["end"]))
            for p in probs[:k]:
                f.write("%.9g\n" % p)

if __name__ == "__main__":
    main()
