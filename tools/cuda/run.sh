#!/usr/bin/env bash
# Run the CUDA build of host-trainer on a GPU machine whose CUDA 13
# libraries and driver are where the lent machines keep them:
#   tools/cuda/run.sh train --preset teacher --device cuda --out runs/teacher
# CUDA_LIB and CUDA_DRIVER override the locations.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lib="${CUDA_LIB:-/usr/local/cuda-13.0/targets/x86_64-linux/lib}"
driver="${CUDA_DRIVER:-/usr/local/nvidia/lib64/libcuda.so.1}"
export LD_LIBRARY_PATH="$lib:$(dirname "$driver")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$here/../../target/cuda/host-trainer" "$@"
