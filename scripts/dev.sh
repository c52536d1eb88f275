#!/usr/bin/env bash
# One entry point for newcomers and CI (README's quick start uses it):
#   bash scripts/dev.sh example [ARGS]   install what is missing, build, run the main job: the model-selection
#                                        sweep on Fashion-MNIST (ARGS as in `model_selection --help`)
#   bash scripts/dev.sh test [PRESET]    install what is missing, configure, build, run every test
#                                        (PRESET: release (default), debug, asan, tsan)
#   bash scripts/dev.sh bench            build and run the benchmarks (figures for bench/RESULTS.md)
#   bash scripts/dev.sh simulate [ARGS]  build and run hydra-sim (every policy on the paper-shaped preset;
#                                        ARGS as in `hydra-sim --help`)
#   bash scripts/dev.sh gpu              on a GPU machine: build and run every GPU test and GPU benchmark
#   bash scripts/dev.sh gpu-bundle       here, before lending a GPU machine that cannot reach the archive:
#                                        download into .gpu-bundle/ the packages `gpu` needs (carry it along)
#   bash scripts/dev.sh setup            only install the Debian packages hydra's build needs
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages the build needs, and the dataset the main job trains on. The
# CUDA toolkit is not among them: it is optional (HYDRA_ENABLE_CUDA=AUTO) and
# comes with the machine image. OpenBLAS runs the host layers' GEMMs
# (HYDRA_HOST_BLAS=AUTO; without it they fall back to plain loops).
packages=(cmake ninja-build g++ doctest-dev libbenchmark-dev zlib1g-dev libopenblas-dev dataset-fashion-mnist)

# OpenBLAS picks its kernels by CPU model at start-up. Debian 12's 0.3.21 does
# not know recent Intel models (the project's machines report family 6 model
# 207) and falls back to its SSE3 "Prescott" kernels, about a fifth of the
# speed of the AVX-512 ones on the same core. Unless the caller chose, name the
# kernel family the CPU's flags allow (OpenBLAS reads OPENBLAS_CORETYPE once, at
# load). Results stay bitwise reproducible for a given kernel family.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -r /proc/cpuinfo ]; then
  if grep -qw avx512f /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=Haswell
  fi
fi

setup() {
  local missing=()
  for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

command="${1:-}"
case "$command" in
  setup)
    setup
    ;;
  example)
    setup
    cmake --preset release >/dev/null
    cmake --build --preset release --target model_selection
    shift
    ./build/release/examples/model_selection "$@"
    ;;
  test)
    setup
    preset="${2:-release}"
    cmake --workflow --preset "$preset"
    ;;
  simulate)
    setup
    cmake --preset release >/dev/null
    cmake --build --preset release --target hydra_sim >/dev/null
    shift
    ./build/release/examples/hydra-sim "$@"
    ;;
  gpu-bundle)
    # The lent GPU machines have the CUDA toolkit, CMake, ninja, g++ and
    # Python's cuDNN wheel, but no doctest, Google Benchmark, zlib headers or
    # dataset, and cannot fetch them. Their Debian packages, carried as files:
    # `gpu` unpacks them under /tmp (never into /).
    rm -rf .gpu-bundle && mkdir -p .gpu-bundle
    (cd .gpu-bundle && apt-get download doctest-dev libbenchmark-dev libbenchmark1debian zlib1g-dev \
      dataset-fashion-mnist)
    du -sh .gpu-bundle
    ;;
  gpu)
    # One call for a session lent a GPU: every GPU test and GPU benchmark, and
    # the main job on the GPU. With .gpu-bundle/ carried along (see gpu-bundle),
    # the packages the machine lacks come from there.
    configure=(-DHYDRA_ENABLE_CUDA=ON -DHYDRA_WARNINGS_AS_ERRORS=OFF)
    data=/usr/share/datasets/fashion-mnist
    if [ -d .gpu-bundle ]; then
      root=/tmp/hydra-gpu-root
      rm -rf "$root" && mkdir -p "$root"
      for deb in .gpu-bundle/*.deb; do dpkg-deb -x "$deb" "$root"; done
      export CMAKE_PREFIX_PATH="$root/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
      if [ ! -f /usr/include/zlib.h ]; then # the machine's own libz, the bundle's headers
        libz=$(ls /usr/lib/x86_64-linux-gnu/libz.so.1 /lib/x86_64-linux-gnu/libz.so.1 2>/dev/null | head -1)
        configure+=(-DZLIB_INCLUDE_DIR="$root/usr/include" -DZLIB_LIBRARY="$libz")
      fi
      [ -d "$root/usr/share/datasets/fashion-mnist" ] && data="$root/usr/share/datasets/fashion-mnist"
    fi
    # cuDNN beside the toolkit, else from Python's nvidia-cudnn wheel.
    if ! ls /usr/local/cuda/lib64/libcudnn.so* /usr/lib/x86_64-linux-gnu/libcudnn.so* >/dev/null 2>&1; then
      wheel=$(python3 -c "import importlib.util as u; print(u.find_spec('nvidia.cudnn').submodule_search_locations[0])" \
        2>/dev/null || true)
      if [ -n "$wheel" ] && [ -f "$wheel/include/cudnn.h" ]; then
        configure+=(-DHYDRA_CUDNN_LIBRARY="$(ls "$wheel"/lib/libcudnn.so* | head -1)" -DHYDRA_CUDNN_INCLUDE_DIR="$wheel/include")
        export LD_LIBRARY_PATH="$wheel/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      fi
    fi
    export HYDRA_FASHION_MNIST_DIR="${HYDRA_FASHION_MNIST_DIR:-$data}"
    echo "configure: ${configure[*]}"
    cmake --preset release "${configure[@]}" >/dev/null
    cmake --build --preset release --target gpu_tests cuda_bench cuda_train_bench model_selection
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "(no nvidia-smi)"
    git log -1 --format='commit %H (%cd)' 2>/dev/null || true
    status=0
    ./build/release/tests/gpu_tests --duration=true || status=$?
    ./build/release/bench/cuda_bench || status=$?
    ./build/release/bench/cuda_train_bench || status=$?
    # The main job on the GPU: the default sweep.
    if [ -f "$HYDRA_FASHION_MNIST_DIR/train-images-idx3-ubyte.gz" ]; then
      ./build/release/examples/model_selection --backend cuda --data-dir "$HYDRA_FASHION_MNIST_DIR" || status=$?
    else
      echo "SKIPPED: the main job on the GPU (no Fashion-MNIST files in $HYDRA_FASHION_MNIST_DIR)"
    fi
    exit $status
    ;;
  bench)
    setup
    cmake --preset release >/dev/null
    programs=(pool_bench copy_bench spill_bench scheduler_bench sweep_bench sim_bench)
    # host_layers_bench exists when the host layers run on OpenBLAS (HYDRA_HOST_BLAS).
    grep -q "HYDRA_HOST_BLAS_ENABLED:INTERNAL=ON" build/release/CMakeCache.txt 2>/dev/null && programs+=(host_layers_bench)
    cmake --build --preset release --target "${programs[@]}"
    echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(OpenBLAS's own choice)}"
    for program in "${programs[@]}"; do
      ./build/release/bench/$program
    done
    ;;
  *)
    sed -n '2,13p' "${BASH_SOURCE[0]}"
    exit 2
    ;;
esac
