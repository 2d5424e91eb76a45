#!/usr/bin/env bash
# Build host-trainer with candle's CUDA backend on a machine that has no CUDA
# toolkit installed: the CUDA 13 compiler (nvcc) and libraries come from
# PyPI's nvidia-* wheels, unpacked into a prefix. No GPU is needed to build.
#
#   tools/cuda/build.sh            # → target/cuda/host-trainer (stripped, ~40 MB)
#
# CUDA_PREFIX (default ~/.cache/kantor-cuda) keeps the unpacked toolkit;
# CUDA_COMPUTE_CAP (default 90, H100/H200) selects the GPU generation.
# Building candle's kernels takes about 7 minutes on 2 cores.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
prefix="${CUDA_PREFIX:-$HOME/.cache/kantor-cuda}"
cu="$prefix/nvidia/cu13"

if [ ! -x "$cu/bin/nvcc" ]; then
  mkdir -p "$prefix/wheels"
  python3 -m pip download --quiet --no-deps -d "$prefix/wheels" \
    "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-crt==13.0.*" \
    "nvidia-nvvm==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-cuda-nvrtc==13.0.*" \
    "nvidia-cublas==13.0.*" nvidia-curand
  for wheel in "$prefix"/wheels/*.whl; do
    python3 -m zipfile -e "$wheel" "$prefix/unpacked" >/dev/null
  done
  mkdir -p "$prefix/nvidia"
  cp -a "$prefix/unpacked/nvidia/." "$prefix/nvidia/"
  rm -rf "$prefix/unpacked"
  chmod +x "$cu"/bin/* "$cu"/nvvm/bin/* 2>/dev/null || true
  ln -sfn lib "$cu/lib64"
  for name in cublas cublasLt cudart curand nvrtc; do
    versioned="$(ls "$cu"/lib/lib$name.so.* 2>/dev/null | head -n1 || true)"
    [ -n "$versioned" ] && ln -sfn "$(basename "$versioned")" "$cu/lib/lib$name.so"
  done
  # The wheels carry no driver: link against an empty stub with the driver's
  # soname; the real libcuda.so.1 is loaded at run time.
  mkdir -p "$cu/lib/stubs"
  echo "" | gcc -shared -x c -o "$cu/lib/stubs/libcuda.so.1" -Wl,-soname,libcuda.so.1 -
  ln -sfn libcuda.so.1 "$cu/lib/stubs/libcuda.so"
fi

cd "$repo"
PATH="$cu/bin:$PATH" CUDA_ROOT="$cu" CUDA_HOME="$cu" CUDA_PATH="$cu" \
CUDARC_CUDA_VERSION=13000 CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}" \
LIBRARY_PATH="$cu/lib:$cu/lib/stubs" \
RUSTFLAGS="-C link-arg=-Wl,--unresolved-symbols=ignore-in-object-files -C link-arg=-L$cu/lib/stubs -C link-arg=-Wl,--no-as-needed -C link-arg=-lcuda" \
CARGO_TARGET_DIR="$repo/target/cuda-build" \
  cargo build --release -p host-trainer --no-default-features --features cuda
mkdir -p target/cuda
strip -o target/cuda/host-trainer target/cuda-build/release/host-trainer
echo "built target/cuda/host-trainer; run it on the GPU machine with tools/cuda/run.sh"
