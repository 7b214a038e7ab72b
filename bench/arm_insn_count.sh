#!/bin/sh
# Executed guest instructions of the on-device model (libsgclient's sg_local_llm_*, the full-size
# 13.2 M-parameter random student, int8 file from `sg quantize`) per generated token, per kernel
# level, on aarch64 and armhf under qemu-user, and x86-64 under qemu-x86_64 the same way: qemu's
# wall time says nothing about a phone, its instruction counts do (within what an instruction
# count says). A measurement tool, not a test: CI does not run it. docs/PERFORMANCE.md has the
# figures ("The on-device model on ARM: instructions per token").
#
# usage: bench/arm_insn_count.sh        (int8; F32=1 also the f32 model; N1, N2, TOP below;
#        RUNS="arm64 neon,arm64 dotprod" measures only those arch-level pairs)
#
# Builds the binaries scripts/local-llm-arm.sh builds (scripts/local-llm-build.sh) and the model the
# same way, then for each architecture and level runs scripts/local_llm_tokens.c's program three
# times: 0 tokens (open and close: the load), N1 tokens and N2 tokens (default 1 and 17), under
#   qemu-ARCH -cpu max -strace -d in_asm,exec,nochain -D FIFO
# and bench/qemu_insn_count.c sums, over every executed block, the block's instruction count (in_asm
# lists each translated block once; exec logs each execution; nochain makes every execution go
# through the log). per token = (count(N2) - count(N1)) / (N2 - N1): tokens N1+1..N2 after the
# 6-token prompt, the load and the prompt cancelled out. bench/qemu_log_buffer.c, preloaded into
# qemu (not the guest), stops qemu flushing the log after each line (10x faster, same log). The
# profiles (per-token instructions by function, and the load's: qemu's symbol of the block; in a
# shared library the nearest exported symbol) are bench/qemu_insn_profile.py's. qemu 7.2 has no AVX-512: x86 avx512
# runs its best level below (avx2) and is not listed. Needs what scripts/local-llm-arm.sh needs; takes
# ~15 minutes (x86 and the scalar levels' 16 tokens are the slow runs).
set -eu
cd "$(dirname "$0")/.."
N1=${N1:-1} N2=${N2:-17} TOP=${TOP:-8} F32=${F32:-0}
RUNS=${RUNS:-arm64 scalar,arm64 neon,arm64 dotprod,armhf scalar,armhf neon,x86 scalar,x86 avx2}
wanted() { case ",$RUNS," in *",$1 $2,"*) return 0 ;; esac; return 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. scripts/local-llm-build.sh
build_all
make_full_model
gcc -O2 -o "$tmp/count" bench/qemu_insn_count.c
gcc -O2 -shared -fPIC -o "$tmp/logbuf.so" bench/qemu_log_buffer.c -ldl
mkfifo "$tmp/log"

# count <arch> <level> <model> <tokens>: prints the run's instructions; profile in $tmp/prof.<...>
count() {
  case $1 in
    arm64) q="qemu-aarch64 -L /" ;;
    armhf) q="qemu-arm -L /" ;;
    x86) q="qemu-x86_64" ;;
  esac
  p="$tmp/prof.$1.$2.$3.$4"
  "$tmp/count" "$p" <"$tmp/log" >"$p.count" &
  cpid=$!
  # shellcheck disable=SC2086
  if ! SG_CPU=$2 LD_PRELOAD="$tmp/logbuf.so" $q -U LD_PRELOAD -cpu max -strace \
    -d in_asm,exec,nochain -D "$tmp/log" "$tmp/$1" "$tmp/$3" "$4" >"$p.out"; then
    wait $cpid || true
    echo "$1 $2 $3 $4: the program failed" >&2
    exit 1
  fi
  if ! wait $cpid; then
    echo "$1 $2 $3 $4: blocks executed before their listing: $(cat "$p.count")" >&2
    exit 1
  fi
  if [ "$4" -gt 0 ] && [ "$(wc -w <"$p.out")" -ne "$4" ]; then
    echo "$1 $2 $3 $4: $(wc -w <"$p.out") tokens" >&2
    exit 1
  fi
  awk '{print $2}' "$p.count"
}

models=full_q8
[ "$F32" = 1 ] && models="full_q8 full_f32"
date -u +"%Y-%m-%d %H:%M UTC, $(qemu-aarch64 --version | head -1), prompt 6 tokens, tokens $N1 and $N2"
printf '%-9s %-8s %-8s %15s %18s %15s\n' model arch level "load" "prompt+token 1" "per token"
for m in $models; do
  for run in "arm64 scalar" "arm64 neon" "arm64 dotprod" "armhf scalar" "armhf neon" "x86 scalar" \
    "x86 avx2"; do
    # shellcheck disable=SC2086
    set -- $run
    wanted "$1" "$2" || continue
    c0=$(count "$1" "$2" "$m" 0)
    c1=$(count "$1" "$2" "$m" "$N1")
    c2=$(count "$1" "$2" "$m" "$N2")
    # int8 tokens are equal on every level (scripts/local-llm-arm.sh); a level whose tokens
    # differ would do different work
    if wanted arm64 scalar && ! cmp -s "$tmp/prof.$1.$2.$m.$N2.out" "$tmp/prof.arm64.scalar.$m.$N2.out"; then
      echo "note: $1 $2 $m: tokens differ from arm64 scalar's" >&2
    fi
    printf '%-9s %-8s %-8s %15d %18d %15d\n' "$m" "$1" "$2" "$c0" $((c1 - c0)) $(((c2 - c1) / (N2 - N1)))
  done
done
echo
echo "per token by function (top $TOP; % of the per-token instructions)"
for m in $models; do
  for run in "arm64 scalar aarch64-linux-gnu-nm /lib/aarch64-linux-gnu" \
    "arm64 neon aarch64-linux-gnu-nm /lib/aarch64-linux-gnu" \
    "arm64 dotprod aarch64-linux-gnu-nm /lib/aarch64-linux-gnu" \
    "armhf scalar arm-linux-gnueabihf-nm /lib/arm-linux-gnueabihf" \
    "armhf neon arm-linux-gnueabihf-nm /lib/arm-linux-gnueabihf" \
    "x86 scalar nm /lib/x86_64-linux-gnu" "x86 avx2 nm /lib/x86_64-linux-gnu"; do
    # shellcheck disable=SC2086
    set -- $run
    wanted "$1" "$2" || continue
    echo "$m $1 $2:"
    python3 bench/qemu_insn_profile.py "$3" "$4" "$tmp/prof.$1.$2.$m.$N1" "$tmp/prof.$1.$2.$m.$N2" \
      "$N1" "$N2" "$TOP"
  done
done
echo
echo "load by function (top $TOP; the 0-token run; instructions, % of the load)"
for m in $models; do
  wanted arm64 neon || continue
  echo "$m arm64 neon:"
  python3 bench/qemu_insn_profile.py aarch64-linux-gnu-nm /lib/aarch64-linux-gnu /dev/null \
    "$tmp/prof.arm64.neon.$m.0" 0 1 "$TOP"
done
