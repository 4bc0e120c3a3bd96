#!/usr/bin/env bash
# The run on record, on a GPU machine without a package registry: run from the repository root with .whl/
# (tools/fetch_gpu_wheels.sh) and data/input.txt carried along. What it makes lands in $OUT (default /tmp/gpu_out):
#   tools/gpu_run.sh notebook   python3 tools/record_run.py --profile $PROFILE (gpu by default) into $OUT/record;
#                               run.tar holds what it wrote: handin/assignment3.ipynb, assignment3.ipynb,
#                               results/<profile>.json and figures/*_<profile>.*; notebook.log its progress
#   tools/gpu_run.sh bench      bench/bench.py on the GPU: bench/<machine>.json and bench.log
# PROFILE=smoke tools/gpu_run.sh notebook rehearses the notebook part on a CPU.
# The report is built back home (Typst and pandoc need not be on the GPU machine): unpack run.tar into the
# repository, then python report/build.py && python tools/build_handin.py.
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
    rm -rf "$OUT/record" "$OUT/workdir"  # a run on record starts from scratch
    python3 tools/record_run.py --profile "$PROFILE" --dest "$OUT/record" --workdir "$OUT/workdir" --no-report \
      2>&1 | tee "$OUT/notebook.log"
    (cd "$OUT/record" && tar -cf "$OUT/run.tar" handin/assignment3.ipynb assignment3.ipynb \
      "results/$PROFILE.json" figures/*_"$PROFILE".*)
    ;;
  bench)
    python3 bench/bench.py --out "$OUT/bench" 2>&1 | tee "$OUT/bench.log"
    ;;
  *) echo "unknown part '$part': use notebook or bench" >&2; exit 2 ;;
esac
ls -l "$OUT"
