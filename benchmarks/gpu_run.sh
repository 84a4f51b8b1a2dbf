#!/usr/bin/env bash
# One device-machine session: GPU kernel tests, kernel microbenchmarks, engine benchmark.
# Run from the repository root on a CUDA machine; logs go to $OUT (default ./gpu-out).
#   STAGES="tests kernels engine" IMPLS=ours,parity bash benchmarks/gpu_run.sh
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
STAGES=${STAGES:-"tests kernels engine"}
IMPLS=${IMPLS:-ours,parity,transformers,reference}
export PYTHONUNBUFFERED=1 TRITON_DEFAULT_FP_FUSION=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="$PWD:/tmp/site"
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv
  python3 -c "import torch, triton, transformers; print(torch.__version__, triton.__version__, transformers.__version__)"
} 2>&1 | tee "$OUT/env.txt"
for stage in $STAGES; do
  case $stage in
    tests) timeout 240 python3 -m pytest -q -rs tests/kernels 2>&1 | tee "$OUT/tests.log" ;;
    kernels) timeout 150 python3 benchmarks/kernels.py 2>&1 | tee "$OUT/kernels.jsonl" ;;
    engine) timeout 540 python3 benchmarks/engine.py --checkpoint /tmp/ckpt --impl "$IMPLS" \
              --timeout 300 2>&1 | tee -a "$OUT/engine.jsonl" ;;
  esac
done
date -u | tee -a "$OUT/env.txt"
