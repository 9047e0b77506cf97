#!/usr/bin/env bash
# Issue 3's GPU check, in one short run on a machine with a CUDA GPU:
#   1. tests/ml/test_cuda.py: bf16 training, serving on the GPU, a GPU-trained artifact on the CPU,
#      the embedder on the GPU (skipped everywhere else);
#   2. bench.speed on the GPU: inference latency beside a bare GPU matmul + top-k, and ML-1M
#      training seconds per epoch with CUDA + bf16;
#   3. bench.quality on ML-1M with CUDA + bf16 under a short time budget.
# It needs python3 with torch, numpy, safetensors, sentence-transformers and pytest, not Django
# and not the bundled embedder (too large to carry there), so training uses item IDs alone.
#
#   bench/gpu_check.sh ML1M_DIR [OUT_DIR] [QUALITY_MINUTES]
#
# ML1M_DIR holds sequences.txt, item_to_movie_id.txt, movies.dat (and exact_users.json).
# QUALITY_MINUTES defaults to 2, so the whole run fits one 10-minute device call with room to spare.
# Tables go to stdout and to OUT_DIR (default /tmp/gpu-check). Exits non-zero if a step failed;
# every step runs regardless, so one run reports all three.
set -uo pipefail

data=$(realpath "${1:?usage: bench/gpu_check.sh ML1M_DIR [OUT_DIR] [QUALITY_MINUTES]}")
out=${2:-/tmp/gpu-check}
minutes=${3:-2}
python=${PYTHON:-python3}
device=${DEVICE:-cuda}  # DEVICE=cpu: a dry run of the script itself on a machine without a GPU
mkdir -p "$out"
out=$(realpath "$out")
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
if [[ ! -f "$data/sequences.txt" ]]; then
    echo "gpu_check: $data has no sequences.txt (pass the ML-1M folder)" >&2
    exit 2
fi
if [[ "$device" == cuda ]] && ! "$python" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    echo "gpu_check: this python's torch sees no CUDA device" >&2
    exit 2
fi

status=0
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available() and
    torch.cuda.get_device_name(0))' 2>&1 | tee "$out/device.txt" || status=1
# --noconftest and no addopts: the suite's conftest and settings need Django, these tests do not.
"$python" -m pytest -q -rs -p no:cacheprovider --noconftest -o addopts="" tests/ml/test_cuda.py 2>&1 |
    tee "$out/cuda-tests.txt" || status=1
"$python" -m bench.speed --device "$device" --only inference,train --no-content --epochs 3 \
    --sizes 100000,1000000 --data "$data" 2>&1 | tee "$out/speed.txt" || status=1
"$python" -m bench.quality --dataset ml-1m --data "$data" --device "$device" --no-content \
    --max-minutes "$minutes" 2>&1 | tee "$out/quality.txt" || status=1
exit "$status"
