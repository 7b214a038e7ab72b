#!/usr/bin/env bash
# ARM cross builds tested under qemu-user (issue 16). Installs what is missing (Debian 12: the
# crossbuild-essential-arm64/-armhf compilers, qemu-user and the :arm64/:armhf -dev libraries of the
# SG_MINIMAL subset: jansson, zlib, libunistring), then for aarch64-linux-gnu and
# arm-linux-gnueabihf configures the SG_MINIMAL build (src/nn, src/models and the tests that need
# nothing else), builds it with warnings as errors and runs its tests under qemu with ctest:
#   aarch64 -cpu max         (has the dot-product extension: levels scalar, neon, dotprod)
#   aarch64 -cpu cortex-a53  (ARMv8.0, no SDOT: levels scalar, neon)
#   armhf   -cpu max         (ARMv7 + NEON: levels scalar, neon)
# test_nn asserts the detected level (SG_TEST_CPU_EXPECT) and compares every level with the
# scalar twin. Build trees: build-arm/<target>. scripts/test.sh (so .ci/run) runs it.
# SG_ARM_TARGETS="aarch64 armhf" picks targets.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
targets=${SG_ARM_TARGETS:-aarch64 armhf}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
want() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' || need+=("$1"); }
for t in $targets; do
  case $t in
    aarch64) arch=arm64; want crossbuild-essential-arm64 ;;
    armhf) arch=armhf; want crossbuild-essential-armhf ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
  dpkg --print-foreign-architectures | grep -qx "$arch" || as_root dpkg --add-architecture "$arch"
  # libc6:<arch> comes with these; qemu runs the tests with its loader (qemu -L /)
  for p in libc6 libjansson-dev zlib1g-dev libunistring-dev; do want "$p:$arch"; done
done
want qemu-user; want cmake; want pkg-config
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing: ${need[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi

run() { # <target> <qemu cpu> <expected level>
  local t=$1 cpu=$2 expect=$3 dir=build-arm/$1 # one tree per target: a new -cpu only reconfigures
  echo "== $t, qemu -cpu $cpu (expect level $expect)"
  local start=$SECONDS
  cmake -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-$t.cmake -DSG_MINIMAL=ON \
    -DSG_WERROR=ON -DCMAKE_BUILD_TYPE=Release -DSG_QEMU_CPU="$cpu" >/dev/null
  cmake --build "$dir" -j"$jobs"
  SG_TEST_CPU_EXPECT=$expect ctest --test-dir "$dir" --output-on-failure -j"$jobs"
  echo "== $t -cpu $cpu: $((SECONDS - start)) s"
}
for t in $targets; do
  case $t in
    aarch64) run aarch64 max dotprod; run aarch64 cortex-a53 neon ;;
    armhf) run armhf max neon ;;
  esac
done
# the phone's model through libsgclient's sg_local_llm: 64 int8 tokens on aarch64 and armhf equal
# x86's, on the tiny fixture and on a full-size (13.2 M-parameter) model (needs build/sg)
if [ -x build/sg ]; then
  echo "== libsgclient's local model: 64 int8 tokens, x86 vs aarch64 vs armhf"
  sh scripts/local-llm-arm.sh
fi
echo "== ARM tests passed in $SECONDS s"
