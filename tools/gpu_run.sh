#!/usr/bin/env bash
# The reported run, on a GPU machine without a package registry: run from the repository root with .whl/
# (tools/fetch_gpu_wheels.sh) and data/input.txt carried along. What it makes lands in $OUT (default /tmp/gpu_out):
#   tools/gpu_run.sh notebook   the whole notebook, PROFILE=gpu: run.tar holds the finalized notebook,
#                               results/gpu.json and figures/*_gpu.*; notebook.log the papermill log
#   tools/gpu_run.sh bench      bench/bench.py on the GPU: bench/<machine>.json and bench.log
# PROFILE=smoke tools/gpu_run.sh notebook rehearses the notebook part on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
part=${1:?usage: tools/gpu_run.sh notebook|bench}
OUT=${OUT:-/tmp/gpu_out}
PROFILE=${PROFILE:-gpu}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 JUPYTER_RUNTIME_DIR=/tmp/jupyter-runtime IPYTHONDIR=/tmp/ipython MPLCONFIGDIR=/tmp/mpl
[ -f data/input.txt ] || { echo "data/input.txt is missing: carry it along" >&2; exit 2; }
if [ "$PROFILE" = gpu ]; then
  python3 -c "import torch; assert torch.cuda.is_available(), 'CUDA is not available: the gpu profile needs a GPU'"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1 || true

case "$part" in
  notebook)
    rm -rf checkpoints  # a run on record starts from scratch
    start=$(date +%s)
    python3 -m papermill assignment3.ipynb /tmp/executed.ipynb -p PROFILE "$PROFILE" --log-output \
      2>&1 | tee "$OUT/notebook.log"
    echo "papermill wall time: $(( $(date +%s) - start )) s" | tee -a "$OUT/notebook.log"
    python3 tools/finalize_notebook.py assignment3.ipynb /tmp/executed.ipynb /tmp/assignment3.ipynb
    cp /tmp/assignment3.ipynb assignment3.ipynb
    tar -cf "$OUT/run.tar" assignment3.ipynb "results/$PROFILE.json" figures/*_"$PROFILE".*
    ;;
  bench)
    python3 bench/bench.py --out "$OUT/bench" 2>&1 | tee "$OUT/bench.log"
    ;;
  *) echo "unknown part '$part': use notebook or bench" >&2; exit 2 ;;
esac
ls -l "$OUT"
