#!/bin/sh
# The on-device model's int8 tokens on ARM equal x86's: builds the model sources of libsgclient
# (client/local_llm.c and the sgcore files it compiles in) with scripts/local_llm_tokens.c for
# x86-64, aarch64 and armhf, runs the ARM builds under qemu-user on the tiny fixture's int8 file and
# on a full-size (13.2 M-parameter, random) int8 model, and compares the 64 tokens. Needs
# crossbuild-essential-arm64/-armhf, libjansson-dev, libunistring-dev and zlib1g-dev for :arm64 and
# :armhf (multiarch), qemu-user (as scripts/test-arm.sh installs them), a build in build/ (sg) and
# ../shared/tokenizers/gpt2.tiktoken. Scalar C on ARM (no NEON files here); armhf needs
# _FILE_OFFSET_BITS=64 (stat() of files with 64-bit inode numbers).
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
SRC="client/local_llm.c client/status.c src/models/snn.c src/models/snn_load.c src/models/snn_quant.c
  src/models/gpt2_tokenizer.c src/models/bpe_common.c src/nn/arena.c src/nn/cpu.c src/nn/linear.c
  src/nn/ops.c src/nn/pickle.c src/nn/pool.c src/nn/ptfile.c src/nn/safetensors.c src/nn/shape.c
  src/nn/spike.c src/nn/vec.c src/nn/weights.c src/nn/zip.c src/base/json.c src/base/file.c
  src/base/utf8.c src/base/clock.c src/base/error.c src/base/base64.c scripts/local_llm_tokens.c"
FLAGS="-std=c11 -O2 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DSG_VERSION=\"arm\" -Isrc -Iclient"
LIBS="-ljansson -lunistring -lz -lpthread -lm"
# shellcheck disable=SC2086
gcc $FLAGS $SRC -o "$tmp/x86" $LIBS
# shellcheck disable=SC2086
aarch64-linux-gnu-gcc $FLAGS $SRC -o "$tmp/arm64" $LIBS
# shellcheck disable=SC2086
arm-linux-gnueabihf-gcc $FLAGS $SRC -o "$tmp/armhf" $LIBS
build/sg quantize --model tests/fixtures/snn_tiny --out "$tmp/tiny_q8" >/dev/null
python3 py/gen_snn_synthetic.py "$tmp/full_f32" ../shared/tokenizers/gpt2.tiktoken >/dev/null
build/sg quantize --model "$tmp/full_f32" --out "$tmp/full_q8" >/dev/null
rc=0
for m in tiny_q8 full_q8; do
  "$tmp/x86" "$tmp/$m" 64 >"$tmp/$m.x86"
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$tmp/arm64" "$tmp/$m" 64 >"$tmp/$m.arm64"
  qemu-arm -L /usr/arm-linux-gnueabihf "$tmp/armhf" "$tmp/$m" 64 >"$tmp/$m.armhf"
  for a in arm64 armhf; do
    if cmp -s "$tmp/$m.x86" "$tmp/$m.$a"; then echo "$m: $a tokens = x86"; else echo "$m: $a DIFFERS"; rc=1; fi
  done
done
exit $rc
