#!/usr/bin/env bash
# The GPU check of issue 15, as one prepared run (under 10 minutes on one GPU): serve in each precision on CUDA,
# recompute on the CPU and on CUDA, print the deviations against the verifier's bounds, the false-fraud count and
# tokens/s (bench/gpu.py). Results land in $OUT when set (the device machine's output folder), else bench/results.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT_DIR="${OUT:-bench/results}"
mkdir -p "$OUT_DIR"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT_DIR/gpu-device.txt" || true
PYTHONPATH="$PWD" python bench/gpu.py --device cuda --verifiers cpu,cuda --out "$OUT_DIR/gpu.json" "$@" \
  2>&1 | tee "$OUT_DIR/gpu.txt"
