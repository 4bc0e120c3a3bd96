#!/usr/bin/env bash
# Run on the GPU machine (issue 6), from the repository root, with .whl/ (tools/fetch_gpu_wheels.sh) and
# data/input.txt carried along. Everything it makes lands in $OUT (default /tmp/gpu_out):
#   tools/gpu_run.sh notebook   the whole notebook, PROFILE=gpu (target: at most 6 minutes), results and figures
#   tools/gpu_run.sh bench      bench/bench.py on the GPU (a second call: one call may run at most 10 minutes)
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
    rm -rf "checkpoints"  # a run on record starts from scratch
    start=$(date +%s)
    python3 -m papermill assignment3.ipynb "$OUT/executed.ipynb" -p PROFILE "$PROFILE" --log-output \
      2>&1 | tee "$OUT/notebook.log"
    echo "papermill wall time: $(( $(date +%s) - start )) s" | tee -a "$OUT/notebook.log"
    python3 tools/finalize_notebook.py assignment3.ipynb "$OUT/executed.ipynb" "$OUT/assignment3.ipynb"
    mkdir -p "$OUT/results" "$OUT/figures"
    cp "results/$PROFILE.json" "$OUT/results/"
    cp figures/*_"$PROFILE".* "$OUT/figures/"
    ;;
  bench)
    python3 bench/bench.py --no-markdown --out "$OUT/bench" 2>&1 | tee "$OUT/bench.log"
    ;;
  *) echo "unknown part '$part': use notebook or bench" >&2; exit 2 ;;
esac
ls -l "$OUT"
