#!/bin/sh
# The on-device model's int8 tokens on ARM equal x86's: runs libsgclient's sg_local_llm
# (scripts/local_llm_tokens.c) as the ARM cross builds link it (build-arm/<target>/local_llm_tokens,
# made by scripts/test-arm.sh: the library with its NEON and SDOT kernels) under qemu-user, at every
# kernel level of the emulated CPU (SG_CPU: aarch64 -cpu max scalar, neon, dotprod; armhf scalar,
# neon), on the tiny fixture's int8 file and on a full-size (13.2 M-parameter, random) int8 model,
# and compares the 64 tokens with x86's (the same program and the model sources of libsgclient
# built here with gcc). Needs what scripts/test-arm.sh installs and builds, build/sg and
# ../shared/tokenizers/gpt2.tiktoken.
set -eu
cd "$(dirname "$0")/.."
for t in aarch64 armhf; do
  [ -x "build-arm/$t/local_llm_tokens" ] || { echo "build-arm/$t/local_llm_tokens: run scripts/test-arm.sh" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
SRC="client/local_llm.c client/status.c src/models/snn.c src/models/snn_load.c src/models/snn_quant.c
  src/models/gpt2_tokenizer.c src/models/bpe_common.c src/nn/arena.c src/nn/cpu.c src/nn/linear.c
  src/nn/ops.c src/nn/pickle.c src/nn/pool.c src/nn/ptfile.c src/nn/safetensors.c src/nn/shape.c
  src/nn/spike.c src/nn/vec.c src/nn/weights.c src/nn/zip.c src/base/json.c src/base/file.c
  src/base/utf8.c src/base/clock.c src/base/error.c src/base/base64.c scripts/local_llm_tokens.c"
FLAGS="-std=c11 -O2 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DSG_VERSION=\"x86\" -Isrc -Iclient"
# shellcheck disable=SC2086
gcc $FLAGS $SRC -o "$tmp/x86" -ljansson -lunistring -lz -lpthread -lm
build/sg quantize --model tests/fixtures/snn_tiny --out "$tmp/tiny_q8" >/dev/null
python3 py/gen_snn_synthetic.py "$tmp/full_f32" ../shared/tokenizers/gpt2.tiktoken >/dev/null
build/sg quantize --model "$tmp/full_f32" --out "$tmp/full_q8" >/dev/null
rc=0
check() { # <model> <name> <level> <emulator...>
  m=$1 name=$2 level=$3
  shift 3
  SG_CPU=$level "$@" >"$tmp/$m.$name.$level"
  if cmp -s "$tmp/$m.x86" "$tmp/$m.$name.$level"; then echo "$m: $name $level tokens = x86"
  else echo "$m: $name $level DIFFERS"; rc=1; fi
}
for m in tiny_q8 full_q8; do
  "$tmp/x86" "$tmp/$m" 64 >"$tmp/$m.x86"
  for level in scalar neon dotprod; do
    check "$m" aarch64 "$level" qemu-aarch64 -L / -cpu max build-arm/aarch64/local_llm_tokens "$tmp/$m" 64
  done
  for level in scalar neon; do
    check "$m" armhf "$level" qemu-arm -L / -cpu max build-arm/armhf/local_llm_tokens "$tmp/$m" 64
  done
done
exit $rc
