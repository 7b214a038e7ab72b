#!/usr/bin/env bash
# Installs what is missing, checks the Prometheus configs and alert rules (promtool), then builds
# and runs the whole test suite twice: a Release build and an AddressSanitizer + UBSan build
# (warnings are errors in both), and finally runs every libFuzzer target for a short while
# (SG_FUZZ_SECONDS each, default 10; 0 skips).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)

echo "== Prometheus: scrape configs, alert rules and their unit tests (promtool)"
deploy/prometheus/check.sh

echo "== Release build + tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSG_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
echo "== model tests again with the scalar reference kernels only (SG_CPU=scalar)"
SG_CPU=scalar ctest --test-dir build --output-on-failure -R 'test_(nn|clip|clip_b32|server_vision|snn|silero_vad|mel|whisper|whisper_ggml|whisper_timing|whisper_transcribe|speech|cli_transcribe|client_local_llm)$'

echo "== AddressSanitizer + UBSan build + tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSG_WERROR=ON -DSG_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"

echo "== OpenAI's official Node SDK (npm openai, pinned) against /v1 on the Release build"
tests/openai/run.sh build

echo "== load smoke: locust, 20 users for 30 s with no think time, on the Release build"
loadtest/smoke.sh build/sg-edge
echo "== cluster smoke: redis + 3 sg-edge + nginx (TLS, HTTP/2): malformed requests, locust 100 users 30 s, sg stream 20 s"
loadtest/cluster_smoke.sh build/sg-edge
echo "== cluster failover: locust 100 users 30 s, one instance SIGKILLed at 10 s and restarted at 15 s"
loadtest/cluster_failover.sh build/sg-edge
echo "== network conditions: sg stream over emulated Wi-Fi / 4G / poor 3G links (Release build)"
netem_rc=0
tests/netem/run.sh build || netem_rc=$?
[ "$netem_rc" -eq 0 ] || [ "$netem_rc" -eq 77 ] || exit "$netem_rc"

echo "== ARM: aarch64 (with and without the dot-product extension) and armhf cross builds under qemu-user"
scripts/test-arm.sh

secs=${SG_FUZZ_SECONDS:-10}
if [ "$secs" -gt 0 ]; then
  echo "== libFuzzer targets, ${secs}s each"
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DSG_WERROR=ON -DSG_FUZZ=ON -DSG_TESTS=OFF >/dev/null
  cmake --build build-fuzz -j"$jobs"
  for f in build-fuzz/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus=build-fuzz/corpus-$name
    mkdir -p "$corpus"
    [ -d "fuzz/seeds/$name" ] && cp -n fuzz/seeds/"$name"/* "$corpus"/ 2>/dev/null || true
    echo "-- $name"
    "$f" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=0 "$corpus" 2>&1 | tail -n 2
  done
fi
echo "all tests passed"
