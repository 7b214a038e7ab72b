#!/usr/bin/python3
"""Writes the tiny SNN student fixtures from our PyTorch reference (py/snn_reference.py):

  tests/fixtures/snn_tiny/     student.pt (torch.save(model.state_dict()), exactly as the training
                               script writes it), metadata.json (the training script's format),
                               vocab.json + merges.txt (GPT-2's first 3583 ranks + <|endoftext|>),
                               expected.json (prompt ids and greedy tokens/text of the f32 reference)
  tests/fixtures/snn_tiny_st/  the same tensors as model.safetensors (embedding and head as F16,
                               which they are exactly: the weights are F16-representable), same
                               metadata and tokenizer
  tests/fixtures/snn_depth1/, snn_depth3/  one- and three-block students (vocabulary 300, width 16,
                               2 heads, no tokenizer) with expected.json: greedy tokens for random
                               prompt ids, so the decoder's first/middle/last-block paths are checked

Run from the project root with Debian's python3-torch:  /usr/bin/python3 py/gen_snn_fixture.py
Random weights are scaled so that spikes fire in a healthy fraction and greedy outputs vary; the
seed is the first one whose greedy tokens are the same in float32 and float64 and whose every
greedy step's top logit leads the runner-up by >= MARGIN, so that equality with the reference does
not hinge on float rounding (a spike input lies within ~1e-6 of the threshold somewhere in a
million comparisons whatever the seed; what matters is that no such flip changes a token).
"""
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import snn_reference as ref  # noqa: E402

OUT = "tests/fixtures/snn_tiny"
OUT_ST = "tests/fixtures/snn_tiny_st"
TIKTOKEN = "../shared/tokenizers/gpt2.tiktoken"
N_RANKS = 3583          # + <|endoftext|> = vocabulary of 3584
DIM, DEPTH, HEADS = 32, 2, 4
THRESHOLD = 0.8         # not the default 1.0: the loader must take it from metadata.json
MAX_TOKENS = 16
MARGIN = 2e-4
SYSTEM = ("You are a helpful assistant for smart glasses users. Use the provided visual context when "
          "available to deliver concise, actionable answers.")  # agent/turn.h SG_SYSTEM_PROMPT
CASES = [
    (None, "Hello from glasses"),
    (None, "Describe a sunrise over the mountains."),
    (SYSTEM, "Visual context: No visual input\nUser query: What am I looking at?"),
    (SYSTEM, "Visual context: No visual input\nUser query: Where is the nearest coffee shop?"),
    ("You are terse.", "List three safety tips for biking in the city."),
    (None, "x"),
    (None, "Remind me at 3:30pm to call Dr. O'Neil!!\n\nThanks   a lot"),
    (SYSTEM, "Visual context: Scene appears to be: street scene (confidence: 61.20%)\nAlternatively: "
             "transportation (car, bus, train) (12.05%)\nUser query: Can I cross now?"),
]
# the server test's turn: a text query in a new session, max_tokens 16
TURN_QUERY = "What am I looking at?"


def init(model, seed):
    ref.init_random(model, seed)
    with torch.no_grad():
        # F16-representable values, so the F16 safetensors copy holds exactly the same tensors
        for p in model.parameters():
            p.copy_(p.half().float())


def run_cases(model, tok, cases, max_tokens):
    """Greedy tokens per case plus statistics over every forward pass: firing fraction per spike
    site, the smallest |spike input - threshold| and the smallest top-1/top-2 logit gap."""
    spikes = model.spikes()
    fired = [0] * len(spikes)
    total = [0] * len(spikes)
    margin = float("inf")
    gap = float("inf")
    results = []
    for system, prompt in cases:
        full = prompt if system is None else system + "\n\n" + prompt
        ids = tok.encode(full)
        for s in spikes:
            s.record = []
        logits = []
        out = ref.greedy(model, ids, max_tokens, logits_out=logits)
        for i, s in enumerate(spikes):
            for x in s.record:
                fired[i] += int((x > model_threshold(s)).sum())
                total[i] += x.numel()
                margin = min(margin, float((x - model_threshold(s)).abs().min()))
            s.record = None
        for lg in logits:
            top = torch.topk(lg, 2).values
            gap = min(gap, float(top[0] - top[1]))
        results.append({"system": system, "prompt": prompt, "prompt_ids": ids, "tokens": out,
                        "text": tok.decode(out)})
    return results, [f / max(t, 1) for f, t in zip(fired, total)], margin, gap


def model_threshold(s):
    return s.threshold


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(OUT_ST, exist_ok=True)
    ref.write_reduced_gpt2(TIKTOKEN, N_RANKS, OUT)
    tok = ref.GPT2Tokenizer(OUT + "/vocab.json", OUT + "/merges.txt")
    vocab = N_RANKS + 1
    turn_case = (SYSTEM, "Visual context: No visual input\nUser query: " + TURN_QUERY)
    for seed in range(1, 200):
        torch.manual_seed(seed)
        model = ref.SpikingStudentLM(vocab, DIM, DEPTH, HEADS, THRESHOLD)
        init(model, seed)
        model.eval()
        results, fire, margin, gap = run_cases(model, tok, CASES, MAX_TOKENS)
        distinct = min(len(set(r["tokens"])) for r in results)
        print("seed %d: firing %s, spike margin %.2g, logit gap %.2g, min distinct tokens %d" %
              (seed, " ".join("%.2f" % f for f in fire), margin, gap, distinct))
        if gap < MARGIN or distinct < 5 or min(fire) < 0.08:
            continue
        results64, _, _, _ = run_cases(model.double(), tok, CASES, MAX_TOKENS)
        model.float()
        same64 = [a["tokens"] for a in results64] == [a["tokens"] for a in results]
        print("  float64 gives the same tokens: %s" % same64)
        if same64:
            break
    else:
        sys.exit("no seed satisfied the margins")

    # upstream's straight-through spike (1s may carry one rounding) must give the same tokens
    ste = ref.SpikingStudentLM(vocab, DIM, DEPTH, HEADS, THRESHOLD, exact=False)
    ste.load_state_dict(model.state_dict())
    ste.eval()
    ste_results, _, _, _ = run_cases(ste, tok, CASES, MAX_TOKENS)
    ste_equal = all(a["tokens"] == b["tokens"] for a, b in zip(results, ste_results))

    torch.save(model.state_dict(), OUT + "/student.pt")
    md = ref.metadata_for(model, threshold=THRESHOLD)
    with open(OUT + "/metadata.json", "w") as f:
        json.dump(md, f, indent=2)
    st = {k: (v.half() if k in ("embed.weight", "head.weight") else v.float())
          for k, v in model.state_dict().items()}
    ref.save_safetensors(OUT_ST + "/model.safetensors", st, {"format": "pt"})
    for n in ("metadata.json", "vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(OUT, n), os.path.join(OUT_ST, n))

    # what the C code loads is what the reference ran: reload both files and re-check
    for d in (OUT, OUT_ST):
        again, _, _, _ = run_cases(ref.load_model(d), tok, CASES, MAX_TOKENS)
        assert [r["tokens"] for r in again] == [r["tokens"] for r in results], d

    turn, _, _, _ = run_cases(model, tok, [turn_case], MAX_TOKENS)
    exp = {
        "max_tokens": MAX_TOKENS,
        "vocab_size": vocab,
        "dim": DIM, "depth": DEPTH, "num_heads": HEADS, "spike_threshold": THRESHOLD,
        "seed": seed,
        "firing_fraction": {"per_site": fire, "mean": sum(fire) / len(fire)},
        "min_spike_margin": margin,
        "min_logit_gap": gap,
        "upstream_ste_same_tokens": ste_equal,
        "cases": results,
        "turn": dict(turn[0], query=TURN_QUERY, max_tokens=MAX_TOKENS),
    }
    with open(OUT + "/expected.json", "w") as f:
        json.dump(exp, f, indent=1, ensure_ascii=False)
    print("seed %d, firing fraction per site %s (mean %.3f), upstream STE same tokens: %s" %
          (seed, ["%.3f" % f for f in fire], exp["firing_fraction"]["mean"], ste_equal))
    for r in results:
        print(repr(r["text"]))
    write_depth_fixture(1, 1)
    write_depth_fixture(3, 1)
    dirs = (OUT, OUT_ST, "tests/fixtures/snn_depth1", "tests/fixtures/snn_depth3")
    size = sum(os.path.getsize(os.path.join(d, n)) for d in dirs for n in os.listdir(d))
    print("fixture bytes: %d" % size)


def write_depth_fixture(depth, seed0):
    """A small student of the given depth; expected greedy tokens for random prompt ids."""
    out = "tests/fixtures/snn_depth%d" % depth
    os.makedirs(out, exist_ok=True)
    vocab, dim, heads = 300, 16, 2
    g = torch.Generator().manual_seed(1000 + depth)
    prompts = [torch.randint(0, vocab, (n,), generator=g).tolist() for n in (1, 5, 17, 33)]
    for seed in range(seed0, seed0 + 200):
        torch.manual_seed(seed)
        model = ref.SpikingStudentLM(vocab, dim, depth, heads, THRESHOLD)
        init(model, seed)
        model.eval()
        cases = [{"prompt_ids": p, "tokens": ref.greedy(model, p, MAX_TOKENS)} for p in prompts]
        if min(len(set(c["tokens"])) for c in cases) < 4:
            continue
        same64 = [ref.greedy(model.double(), c["prompt_ids"], MAX_TOKENS) for c in cases] == [c["tokens"] for c in cases]
        model.float()
        if same64:
            break
    else:
        sys.exit("no seed for depth %d" % depth)
    torch.save(model.state_dict(), out + "/student.pt")
    with open(out + "/metadata.json", "w") as f:
        json.dump(ref.metadata_for(model, threshold=THRESHOLD), f, indent=2)
    with open(out + "/expected.json", "w") as f:
        json.dump({"max_tokens": MAX_TOKENS, "seed": seed, "cases": cases}, f, indent=1)
    print("depth %d: seed %d, %d bytes" % (depth, seed, os.path.getsize(out + "/student.pt")))


if __name__ == "__main__":
    main()
