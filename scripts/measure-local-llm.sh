#!/bin/sh
# File size and peak RSS of the on-device model (libsgclient's sg_local_llm_*) at the reference's
# full size (13.2 M parameters, random weights, GPT-2 tokenizer): f32 and the int8 file
# `sg quantize` writes, each loaded and run for 64 tokens in a fresh process
# (tests/test_client_local_llm --measure). Needs a build in build/ and ../shared/tokenizers.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 py/gen_snn_synthetic.py "$tmp/f32" ../shared/tokenizers/gpt2.tiktoken
build/sg quantize --model "$tmp/f32" --out "$tmp/q8" >/dev/null
for d in "$tmp/q8" "$tmp/f32"; do
  build/tests/test_client_local_llm --measure "$d"
done
