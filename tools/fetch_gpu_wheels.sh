#!/usr/bin/env bash
# Download into .whl/ the wheels a GPU machine without a package registry needs to run the notebook headless
# (tools/record_run.py: nbclient, nbformat and the kernel).
# Such a machine typically has Python 3.12 with torch, numpy, matplotlib, tqdm, pyyaml and requests, but no Jupyter.
# Usage: tools/fetch_gpu_wheels.sh [python version]; then carry .whl/ and data/input.txt to that machine and run
# tools/gpu_run.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
pyver=${1:-3.12}
rm -rf .whl && mkdir .whl  # git-ignored: never committed
python3 -m pip download -q --only-binary=:all: --python-version "$pyver" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl nbclient nbformat ipykernel  # what tools/record_run.py executes the notebook with
# the GPU machine has these already: keep its versions rather than shadow them
for name in attrs certifi charset_normalizer click idna packaging psutil pygments python_dateutil pyyaml requests \
            tqdm typing_extensions urllib3; do
  rm -f .whl/"$name"-[0-9]*.whl
done
echo "$(ls .whl | wc -l) wheels, $(du -sh .whl | cut -f1) in .whl/"
