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
#   bash scripts/dev.sh setup            only install the Debian packages hydra's build needs
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages the build needs, and the dataset the main job trains on. The
# CUDA toolkit is not among them: it is optional (HYDRA_ENABLE_CUDA=AUTO) and
# comes with the machine image.
packages=(cmake ninja-build g++ doctest-dev libbenchmark-dev zlib1g-dev dataset-fashion-mnist)

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
  gpu)
    # One call for a session lent a GPU: every GPU test and GPU benchmark.
    cmake --preset release >/dev/null
    cmake --build --preset release --target gpu_tests cuda_bench cuda_train_bench model_selection
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "(no nvidia-smi)"
    git log -1 --format='commit %H (%cd)' 2>/dev/null || true
    status=0
    ./build/release/tests/gpu_tests --duration=true || status=$?
    ./build/release/bench/cuda_bench || status=$?
    ./build/release/bench/cuda_train_bench || status=$?
    # The main job on the GPU: the default sweep. The data: Debian's
    # dataset-fashion-mnist, or a copy named by HYDRA_FASHION_MNIST_DIR (a GPU
    # machine that cannot reach the archive gets one carried along).
    data="${HYDRA_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
    if [ -f "$data/train-images-idx3-ubyte.gz" ]; then
      ./build/release/examples/model_selection --backend cuda --data-dir "$data" || status=$?
    else
      echo "SKIPPED: the main job on the GPU (no Fashion-MNIST files in $data)"
    fi
    exit $status
    ;;
  bench)
    setup
    cmake --preset release >/dev/null
    cmake --build --preset release --target pool_bench copy_bench spill_bench scheduler_bench sweep_bench sim_bench
    for program in pool_bench copy_bench spill_bench scheduler_bench sweep_bench sim_bench; do
      ./build/release/bench/$program
    done
    ;;
  *)
    sed -n '2,11p' "${BASH_SOURCE[0]}"
    exit 2
    ;;
esac
