#!/usr/bin/env bash
# Installs what is missing, builds (Release) and starts sg-edge on port 5000 (SG_PORT overrides).
# Extra arguments go to sg-edge, e.g. scripts/serve.sh --workers 4.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target sg-edge sg
exec build/sg-edge --port "${SG_PORT:-5000}" "$@"
