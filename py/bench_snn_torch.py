#!/usr/bin/python3
"""PyTorch side of bench/snn_bench.sh: the SNN student's greedy generation as upstream runs it
(SmartGlass-AI-Agent's SNNLLMBackend.generate: the whole sequence re-run every step, argmax of the
last position, exactly MAX_TOKENS tokens) with our reference of SpikingStudentLM
(py/snn_reference.py, upstream's straight-through spike expression) on the same student.pt,
fp32 eager and torch.quantization.quantize_dynamic int8 (nn.Linear: ff.0, ff.3 and the head;
MultiheadAttention's projections are not dynamically quantisable), at THREADS threads. Prints one
JSON line per precision with the median time and the tokens.
Usage: bench_snn_torch.py MODEL_DIR THREADS RUNS MAX_TOKENS PROMPT [OUT.json]"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snn_reference as ref  # noqa: E402


def main():
    d, threads, runs, max_tokens, prompt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    torch.set_num_threads(threads)
    tok_path = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "tokenizers", "gpt2.tiktoken")
    if os.path.exists(os.path.join(d, "vocab.json")):
        tok = ref.GPT2Tokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"))
    else:
        tok = ref.GPT2Tokenizer.from_tiktoken(tok_path)
    ids = tok.encode(prompt)
    t0 = time.perf_counter()
    model = ref.load_model(d, exact=False)  # upstream's forward, STE spikes included
    load_ms = (time.perf_counter() - t0) * 1000
    q8 = torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    out = {"prompt_tokens": ids}
    for name, m in (("torch_f32", model), ("torch_int8_dynamic", q8)):
        times, tokens = [], None
        for r in range(runs + 1):
            t0 = time.perf_counter()
            tokens = ref.greedy(m, ids, max_tokens)
            if r >= 1:  # one warm-up run
                times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        out[name] = tokens
        print(json.dumps({"impl": name, "threads": threads, "prompt_tokens": len(ids), "new_tokens": len(tokens),
                          "median_ms": round(times[len(times) // 2], 1), "min_ms": round(times[0], 1), "runs": runs,
                          "load_ms": round(load_ms, 1), "torch": torch.__version__}))
    exact = ref.load_model(d, exact=True)
    out["torch_f32_hard_spikes"] = ref.greedy(exact, ids, max_tokens)
    if len(sys.argv) > 6:
        json.dump(out, open(sys.argv[6], "w"))


if __name__ == "__main__":
    main()
