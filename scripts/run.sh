#!/usr/bin/env bash
# run.sh [bench options] — the main job: all set-up, then `megadelta bench`
# (on the synthetic Qwen3.5-0.8B checkpoint unless -m DIR is given).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
exec build/megadelta bench "$@"
