#!/usr/bin/env bash
# The GPU check of docs/gpu.md, under 5 minutes on one GPU: throughput of the default and tutorial
# presets (batch 32/256/1024, --amp bf16 off and on) against the GPU's matmul yardstick, and a
# 2-minute quality run scored by `ganforge evaluate --json`; the results replace the block between
# the markers of docs/gpu.md. Extra arguments go to benchmarks/gpu_check.py (e.g. --data DIR).
#
#     bash benchmarks/gpu_check.sh [--data DIR]        (PYTHON=... to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "error: no CUDA device visible to $PYTHON's torch; run benchmarks/gpu_check.sh on a machine with a GPU" >&2
    exit 2
fi
exec "$PYTHON" benchmarks/gpu_check.py --device cuda "$@"
