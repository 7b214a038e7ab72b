#!/bin/sh
# The on-device model's int8 tokens on ARM equal x86's: runs libsgclient's sg_local_llm
# (scripts/local_llm_tokens.c) as the ARM cross builds link it (build-arm/<target>/local_llm_tokens,
# made by scripts/test-arm.sh: the library with its NEON and SDOT kernels) under qemu-user, at every
# kernel level of the emulated CPU (SG_CPU: aarch64 -cpu max scalar, neon, dotprod, and -cpu
# cortex-a53, which has no SDOT, neon; armhf scalar, neon), on the tiny fixture's int8 file and on a
# full-size (13.2 M-parameter, random) int8 model, and compares the 64 tokens with x86's at every
# x86 level (the same program and the model sources of libsgclient built here with gcc, with the
# AVX2 and AVX-512 kernels: scripts/local-llm-build.sh, shared with bench/arm_insn_count.sh). The
# reference is x86 scalar. Needs what scripts/test-arm.sh installs and builds, build/sg and
# ../shared/tokenizers/gpt2.tiktoken.
set -eu
cd "$(dirname "$0")/.."
for t in aarch64 armhf; do
  [ -x "build-arm/$t/local_llm_tokens" ] || { echo "build-arm/$t/local_llm_tokens: run scripts/test-arm.sh" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. scripts/local-llm-build.sh
build_x86
build/sg quantize --model tests/fixtures/snn_tiny --out "$tmp/tiny_q8" >/dev/null
make_full_model
rc=0
check() { # <model> <name> <level> <command...>: 64 tokens equal to x86 scalar's
  m=$1 name=$2 level=$3
  shift 3
  SG_CPU=$level "$@" >"$tmp/out"
  if [ "$(wc -w <"$tmp/out")" -eq 64 ] && cmp -s "$tmp/$m.ref" "$tmp/out"; then
    echo "$m: $name $level: 64 tokens = x86 scalar"
  else
    echo "$m: $name $level: DIFFERS from x86 scalar"
    rc=1
  fi
}
for m in tiny_q8 full_q8; do
  SG_CPU=scalar "$tmp/x86" "$tmp/$m" 64 >"$tmp/$m.ref"
  # SG_CPU asks for a level: a machine without it runs its best one below it
  for level in avx2 avx512; do
    check "$m" x86 "$level" "$tmp/x86" "$tmp/$m" 64
  done
  for level in scalar neon dotprod; do
    check "$m" "aarch64 -cpu max" "$level" qemu-aarch64 -L / -cpu max \
      build-arm/aarch64/local_llm_tokens "$tmp/$m" 64
  done
  check "$m" "aarch64 -cpu cortex-a53" neon qemu-aarch64 -L / -cpu cortex-a53 \
    build-arm/aarch64/local_llm_tokens "$tmp/$m" 64
  for level in scalar neon; do
    check "$m" "armhf -cpu max" "$level" qemu-arm -L / -cpu max build-arm/armhf/local_llm_tokens \
      "$tmp/$m" 64
  done
done
exit $rc
