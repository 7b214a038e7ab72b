#!/usr/bin/env bash
# OpenAI's official Node SDK (npm "openai", pinned below) against a real sg-edge on loopback: the
# /v1 routes as every OpenAI client calls them. Installs the SDK from the npm registry into a
# temporary folder (test-only; nothing of it is kept or shipped), starts sg-edge with the tiny
# committed fixture models and an API key, runs tests/openai/sdk_test.mjs, stops what it started.
# Usage: tests/openai/run.sh [BUILD_DIR]   (default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
SDK_VERSION=4.104.0
SG_EDGE=$BUILD/sg-edge
# shellcheck source=../../loadtest/common.sh
. loadtest/common.sh

tmp=$(mktemp -d /tmp/sg-openai.XXXXXX)
trap 'sg_stop; rm -rf "$tmp"' EXIT
echo "-- npm install openai@$SDK_VERSION (into $tmp)"
(cd "$tmp" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent "openai@$SDK_VERSION" >/dev/null)

key=sk-test-$RANDOM$RANDOM
EDGE_RUNTIME_API_KEY=$key sg_start "$tmp/edge.log" \
  --vision-model tests/fixtures/clip_tiny --llm-model tests/fixtures/snn_tiny \
  --asr-model tests/fixtures/whisper_ml/ggml-model.bin --vad-model ../shared/models/silero-vad-v6.2.0-ggml.bin
echo "-- sg-edge on 127.0.0.1:$SG_PORT_USED"
rc=0
SG_SDK_DIR="$tmp" SG_BASE_URL="http://127.0.0.1:$SG_PORT_USED/v1" SG_API_KEY=$key \
  SG_CLI="$BUILD/sg" node tests/openai/sdk_test.mjs || rc=$?
if [ "$rc" -ne 0 ]; then echo "sg-edge log:"; tail -n 40 "$tmp/edge.log"; fi
exit "$rc"
