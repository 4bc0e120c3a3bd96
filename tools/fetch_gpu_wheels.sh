#!/usr/bin/env bash
# Run here (pip works here): download into .whl/ the wheels the GPU machine lacks to run the notebook headless.
# That machine has torch, numpy, matplotlib, tqdm, pyyaml, requests ... but no Jupyter stack and no package registry;
# its python3 is 3.12 (see /work/.library/device/KINDS.md). Usage: tools/fetch_gpu_wheels.sh [python version]
set -euo pipefail
cd "$(dirname "$0")/.."
pyver=${1:-3.12}
rm -rf .whl && mkdir .whl  # git-ignored: never committed
python3 -m pip download -q --only-binary=:all: --python-version "$pyver" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl papermill ipykernel
# the machine has these already: keep its versions rather than shadow them
for name in attrs certifi charset_normalizer click idna packaging psutil pygments python_dateutil pyyaml requests \
            tqdm typing_extensions urllib3; do
  rm -f .whl/"$name"-[0-9]*.whl
done
echo "$(ls .whl | wc -l) wheels, $(du -sh .whl | cut -f1) in .whl/ (carry it: run(carry=['.whl', 'data/input.txt']))"
