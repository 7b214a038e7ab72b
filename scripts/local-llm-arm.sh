#!/bin/sh
# The on-device model's int8 tokens on ARM equal x86's: builds the model sources of libsgclient
# (client/local_llm.c and the sgcore files it compiles in, with each architecture's SIMD kernels
# and run-time dispatch, as CMake compiles them) with scripts/local_llm_tokens.c for x86-64,
# aarch64 and armhf, and compares the 64 tokens of every level each CPU has:
#   x86-64 (this machine): scalar, avx2, avx512;
#   aarch64 under qemu -cpu max: scalar, neon, dotprod; under -cpu cortex-a53 (no SDOT): neon;
#   armhf under qemu -cpu max: scalar, neon;
# on the tiny fixture's int8 file and on a full-size (13.2 M-parameter, random) int8 model. Needs
# crossbuild-essential-arm64/-armhf, libjansson-dev, libunistring-dev and zlib1g-dev for :arm64 and
# :armhf (multiarch), qemu-user (as scripts/test-arm.sh installs them), a build in build/ (sg) and
# ../shared/tokenizers/gpt2.tiktoken. armhf needs _FILE_OFFSET_BITS=64 (stat() of files with 64-bit
# inode numbers).
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
# build <out> <cc> <defines> then pairs of <SIMD file glob> <its flags>
build() {
  out=$1 cc=$2 defs=$3
  shift 3
  mkdir -p "$tmp/$out.o"
  while [ $# -gt 0 ]; do
    for f in $1; do
      # shellcheck disable=SC2086
      $cc $FLAGS $defs $2 -c "$f" -o "$tmp/$out.o/$(basename "$f").o"
    done
    shift 2
  done
  # shellcheck disable=SC2086
  $cc $FLAGS $defs $SRC "$tmp/$out.o"/*.o -o "$tmp/$out" $LIBS
}
build x86 gcc "-DSG_X86=1" "src/nn/*_avx2.c" "-mavx2 -mfma -mf16c" \
  "src/nn/*_avx512.c" "-mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma -mf16c"
build arm64 aarch64-linux-gnu-gcc "-DSG_ARM=1 -DSG_AARCH64=1" "src/nn/*_neon.c" "" \
  "src/nn/*_dotprod.c" "-march=armv8.2-a+dotprod"
build armhf arm-linux-gnueabihf-gcc "-DSG_ARM=1" "src/nn/*_neon.c" "-mfpu=neon"
build/sg quantize --model tests/fixtures/snn_tiny --out "$tmp/tiny_q8" >/dev/null
python3 py/gen_snn_synthetic.py "$tmp/full_f32" ../shared/tokenizers/gpt2.tiktoken >/dev/null
build/sg quantize --model "$tmp/full_f32" --out "$tmp/full_q8" >/dev/null
rc=0
for m in tiny_q8 full_q8; do
  SG_CPU=scalar "$tmp/x86" "$tmp/$m" 64 >"$tmp/$m.ref"
  # SG_CPU asks for a level: a machine without it runs its best one below it
  for run in "x86 avx2" "x86 avx512" "arm64 scalar max" "arm64 neon max" "arm64 dotprod max" \
    "arm64 neon cortex-a53" "armhf scalar max" "armhf neon max"; do
    # shellcheck disable=SC2086
    set -- $run
    case $1 in
      x86) SG_CPU=$2 "$tmp/x86" "$tmp/$m" 64 >"$tmp/out" ;;
      arm64) SG_CPU=$2 qemu-aarch64 -L / -cpu "$3" "$tmp/arm64" "$tmp/$m" 64 >"$tmp/out" ;;
      armhf) SG_CPU=$2 qemu-arm -L / -cpu "$3" "$tmp/armhf" "$tmp/$m" 64 >"$tmp/out" ;;
    esac
    if [ "$(wc -w <"$tmp/out")" -ge 64 ] && cmp -s "$tmp/$m.ref" "$tmp/out"; then
      echo "$m: $run: 64 tokens = x86 scalar"
    else
      echo "$m: $run: DIFFERS from x86 scalar"
      rc=1
    fi
  done
done
exit $rc
