#!/usr/bin/env bash
# Installs the Debian 12 packages smartglass-edge needs to build, test, fuzz and benchmark.
# Does nothing when they are all present; otherwise runs apt-get update, then apt-get install.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config            # toolchain
  clang libclang-rt-dev                       # libFuzzer and sanitizer runtimes (fuzz targets)
  libmicrohttpd-dev libjansson-dev            # HTTP server, JSON
  libturbojpeg0-dev libpng-dev zlib1g-dev     # JPEG (DCT-scaled decode), PNG, gzip
  libsamplerate0-dev                          # band-limited audio resampling
  libsndfile1-dev                             # FLAC/Ogg (Opus, Vorbis) audio: server decode, client encode
  libunistring-dev                            # Unicode categories, case mapping, NFC (tokenizers)
  flite1-dev                                  # speech synthesis: flite 2.2, US English voices
  flite                                       # its CLI: bench/bench_tts.c compares against it
  libcurl4-openssl-dev libnghttp2-14          # HTTP client (tests, libsgclient), HTTP/2 in it
  libtesseract-dev tesseract-ocr-eng         # OCR: Tesseract 5's library and its English data
  libhiredis-dev redis-server redis-tools     # the Redis session store: client library; the
                                              # server and redis-cli its tests and benches start
  nginx openssl                               # the cluster (scripts/cluster.sh): TLS, HTTP/2
                                              # (Debian's nginx has http_v2), the test certificate
  wrk                                         # HTTP benchmark (bench/)
  python3-locust python3-pil python3-matplotlib curl  # load tests and their chart (loadtest/)
  iproute2                                    # network namespaces, tc (tests/netem/run.sh)
  prometheus                                  # promtool: deploy/prometheus/check.sh (also installs the Prometheus service)
  linux-perf                                  # perf: scripts/flamegraph.sh (profiling a running sg-edge)
  nodejs                                      # runs OpenAI's official Node SDK against /v1 (tests/openai)
  openjdk-17-jdk-headless                     # JNI headers, javac and java: the Android binding's
                                              # Java test (client/android)
  ca-certificates
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm installs the pinned SDK the OpenAI tests run; a nodejs that bundles npm needs no package
command -v npm >/dev/null || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
