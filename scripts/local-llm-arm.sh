#!/bin/sh
# The on-device model's int8 tokens on ARM equal x86's: builds the model sources of libsgclient
# with scripts/local_llm_tokens.c for x86-64, aarch64 and armhf (scripts/local-llm-build.sh, shared
# with bench/arm_insn_count.sh), and compares the 64 tokens of every level each CPU has:
#   x86-64 (this machine): scalar, avx2, avx512;
#   aarch64 under qemu -cpu max: scalar, neon, dotprod; under -cpu cortex-a53 (no SDOT): neon;
#   armhf under qemu -cpu max: scalar, neon;
# on the tiny fixture's int8 file and on a full-size (13.2 M-parameter, random) int8 model. Needs
# crossbuild-essential-arm64/-armhf, libjansson-dev, libunistring-dev and zlib1g-dev for :arm64 and
# :armhf (multiarch), qemu-user (as scripts/test-arm.sh installs them), a build in build/ (sg) and
# ../shared/tokenizers/gpt2.tiktoken.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. scripts/local-llm-build.sh
build_all
build/sg quantize --model tests/fixtures/snn_tiny --out "$tmp/tiny_q8" >/dev/null
make_full_model
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
