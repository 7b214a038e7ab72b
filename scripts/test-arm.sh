#!/usr/bin/env bash
# ARM cross builds tested under qemu-user (issue 16). Installs what is missing (Debian 12: the
# crossbuild-essential-arm64/-armhf compilers, qemu-user and, for :arm64/:armhf (multiarch), the
# -dev libraries of the SG_MINIMAL components nn, media and client: jansson, zlib, libunistring;
# libturbojpeg, libpng, libsamplerate, libsndfile, libvorbis, libogg, libopus; libcurl), makes sure
# the host's build/sg-edge and build/sg are built (scripts/deps.sh and a Release build when build/
# has none), then for aarch64-linux-gnu and arm-linux-gnueabihf configures the SG_MINIMAL build
# (the kernels, models, media codecs and libsgclient, its .so too, without the server; see
# cmake/minimal.cmake), builds it with warnings as errors and runs its tests under qemu with ctest:
#   aarch64 -cpu max         every test                  (dot-product extension: levels scalar,
#                                                          neon, dotprod)
#   aarch64 -cpu cortex-a53  the tests labelled "levels" (ARMv8.0, no SDOT: levels scalar, neon)
#   armhf   -cpu max         every test                  (ARMv7 + NEON: levels scalar, neon)
# The tests: the kernels and models (test_nn, test_snn, test_clip, test_clip_b32, test_whisper*,
# test_silero_vad, the tokenizers and file formats, test_json, test_file, test_base64), the media
# code they read (test_mel, test_audio, test_sfmem, test_image, test_preprocess) and libsgclient
# (test_client_policy, test_client_local_llm, test_keyframe, and test_client_http, _stream,
# _telemetry, _h2 against the host's sg-edge, _h2 through the host's nginx over HTTP/2 and TLS: the
# phone's client and the server as in use). Model tests at every level up to the CPU's compare
# with the same x86/PyTorch references as natively. "levels" (tests/CMakeLists.txt) are the tests whose
# checks differ between two CPUs of one architecture: the detection (test_nn asserts it,
# SG_TEST_CPU_EXPECT), the kernels against the scalar ones, int8 results compared exactly (SDOT
# changes only the int8 GEMM panel); the f32 and media paths are the same code without SDOT.
# SG_TEST_REDUCED=1 is set: the heavy model tests run a reduced set of cases (tests/check.h; each
# test's header says which), still against the same references. Build trees: build-arm/<target>.
# scripts/test.sh (so .ci/run) runs it. SG_ARM_TARGETS="aarch64 armhf" picks targets.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
targets=${SG_ARM_TARGETS:-aarch64 armhf}
apt=(apt-get -o DPkg::Lock::Timeout=600) # others may be running apt: wait for the lock

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
want() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' || need+=("$1"); }
# per target: nn (jansson, zlib, libunistring), media (the codecs), client (libcurl); libc6:<arch>
# comes with them, and qemu runs the tests with its loader (qemu -L /)
target_dev=(libc6 libjansson-dev zlib1g-dev libunistring-dev
  libturbojpeg0-dev libpng-dev libsamplerate0-dev libsndfile1-dev libvorbis-dev libogg-dev libopus-dev
  libcurl4-openssl-dev)
for t in $targets; do
  case $t in
    aarch64) arch=arm64; want crossbuild-essential-arm64 ;;
    armhf) arch=armhf; want crossbuild-essential-armhf ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
  dpkg --print-foreign-architectures | grep -qx "$arch" || as_root dpkg --add-architecture "$arch"
  for p in "${target_dev[@]}"; do want "$p:$arch"; done
done
want qemu-user; want cmake; want pkg-config
# test_client_h2 starts the cluster (scripts/cluster.sh): nginx with TLS and HTTP/2, redis-server
want nginx; want redis-server; want openssl
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing: ${need[*]}"
  as_root "${apt[@]}" update -q
  as_root env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q --no-install-recommends "${need[@]}"
fi

# the host's server, which the client tests under qemu talk to, and sg for scripts/local-llm-arm.sh
if [ ! -f build/CMakeCache.txt ]; then
  scripts/deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSG_WERROR=ON >/dev/null
fi
cmake --build build -j"$jobs" --target sg-edge sg >/dev/null

export SG_TEST_REDUCED=1
run() { # <target> <qemu cpu> <expected level> [ctest arguments]
  local t=$1 cpu=$2 expect=$3 dir=build-arm/$1 # one tree per target: a new -cpu only reconfigures
  shift 3
  echo "== $t, qemu -cpu $cpu (expect level $expect) $*"
  local start=$SECONDS
  cmake -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-$t.cmake -DSG_MINIMAL=ON \
    -DSG_COMPONENTS="nn;media;client" -DSG_CLIENT_SHARED=ON -DSG_HOST_EDGE_BIN="$PWD/build/sg-edge" \
    -DSG_WERROR=ON -DCMAKE_BUILD_TYPE=Release -DSG_QEMU_CPU="$cpu" >/dev/null
  cmake --build "$dir" -j"$jobs"
  SG_TEST_CPU_EXPECT=$expect ctest --test-dir "$dir" --output-on-failure -j"$jobs" "$@"
  echo "== $t -cpu $cpu: $((SECONDS - start)) s"
}
for t in $targets; do
  case $t in
    aarch64) run aarch64 max dotprod; run aarch64 cortex-a53 neon -L levels ;;
    armhf) run armhf max neon ;;
  esac
done
# the phone's model through libsgclient's sg_local_llm: 64 int8 tokens on aarch64 and armhf equal
# x86's, on the tiny fixture and on a full-size (13.2 M-parameter) model (needs both targets)
if [ "$targets" = "aarch64 armhf" ]; then
  echo "== libsgclient's local model: 64 int8 tokens, x86 vs aarch64 vs armhf"
  start=$SECONDS
  sh scripts/local-llm-arm.sh
  echo "== local model tokens: $((SECONDS - start)) s"
fi
echo "== ARM tests passed in $SECONDS s"
