#!/usr/bin/env bash
# One entry point for newcomers and CI (README's quick start uses it):
#   bash scripts/dev.sh example [ARGS]   install what is missing, build, run the main job: the model-selection
#                                        sweep on Fashion-MNIST (ARGS as in `model_selection --help`)
#   bash scripts/dev.sh test [PRESET]    install what is missing, configure, build, run every test
#                                        (PRESET: release (default), debug, asan, tsan)
#   bash scripts/dev.sh bench            build and run the benchmarks (figures for bench/RESULTS.md)
#   bash scripts/dev.sh simulate [ARGS]  build and run hydra-sim (every policy on the paper-shaped preset;
#                                        ARGS as in `hydra-sim --help`)
#   bash scripts/dev.sh mpi [N] [ARGS]   build and run examples/mpi_sweep under mpirun on N ranks (default 2;
#                                        ARGS as in `mpi_sweep --help`)
#   bash scripts/dev.sh example-mpi [N] [ARGS]  the main job under mpirun on N ranks of this machine (default 2),
#                                        each with its own devices (ARGS as in `model_selection --help`)
#   bash scripts/dev.sh install PREFIX  install hydra (headers, CMake package, hydra-sim) under PREFIX, building
#                                        no tests; the build goes to $HYDRA_BUILD_DIR (default build/install)
#   bash scripts/dev.sh gpu [STEP]       on a GPU machine, one step of the GPU run, each built and run within
#                                        5 minutes, its log and figures under $OUT (default build/gpu-out):
#                                          tests     (default; always first) the device probe, the smoke test, then
#                                                    every GPU test case in its own process, NVIDIA_TF32_OVERRIDE=0
#                                          sanitize  compute-sanitizer memcheck on the loss, dense, conv and a short
#                                                    spilled training; racecheck on the loss (shared memory)
#                                          bench     copy, spill and pool benchmarks, spilled vs resident MLP, one size
#                                          job       the main job with --backend cuda on a subset, against the host
#                                        exit 0 passed, 1 failed, 77 skipped (only where there is no CUDA device)
#   bash scripts/dev.sh gpu-bundle       here, before lending a GPU machine that cannot reach the archive:
#                                        download into .gpu-bundle/ the packages `gpu` needs (carry it along)
#   bash scripts/dev.sh setup            only install the Debian packages hydra's build needs
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages the build needs, and the dataset the main job trains on. The
# CUDA toolkit is not among them: it is optional (HYDRA_ENABLE_CUDA=AUTO) and
# comes with the machine image. OpenBLAS runs the host layers' GEMMs
# (HYDRA_HOST_BLAS=AUTO; without it they fall back to plain loops). Open MPI
# runs the sweep over MPI ranks and its tests (HYDRA_ENABLE_MPI=AUTO).
packages=(cmake ninja-build g++ doctest-dev libbenchmark-dev zlib1g-dev libopenblas-dev libcli11-dev nlohmann-json3-dev
  libopenmpi-dev openmpi-bin dataset-fashion-mnist)

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

# What `install` needs: no test or benchmark framework, no dataset.
install_packages=(cmake ninja-build g++ zlib1g-dev libopenblas-dev libcli11-dev nlohmann-json3-dev)

setup() {
  local missing=()
  [ $# -gt 0 ] || set -- "${packages[@]}"
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ---- the GPU run (bash scripts/dev.sh gpu STEP) --------------------------------
# A lent GPU machine gives 15 minutes in all, at most 10 per command: each step
# builds only its targets and stops its programs at 5 minutes from its start.
# With .gpu-bundle/ carried along (see gpu-bundle), the packages the machine
# lacks come from there. Each step writes $OUT/gpu-STEP.log (everything) and
# $OUT/gpu-STEP.md (its figures, ready to paste into bench/RESULTS.md).

gpu_prepare() {
  configure=(-DHYDRA_ENABLE_CUDA=ON -DHYDRA_WARNINGS_AS_ERRORS=OFF)
  local data=/usr/share/datasets/fashion-mnist
  if [ -d .gpu-bundle ]; then
    local root=/tmp/hydra-gpu-root
    rm -rf "$root" && mkdir -p "$root"
    for deb in .gpu-bundle/*.deb; do dpkg-deb -x "$deb" "$root"; done
    export CMAKE_PREFIX_PATH="$root/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    if [ ! -f /usr/include/zlib.h ]; then # the machine's own libz, the bundle's headers
      local libz
      libz=$(ls /usr/lib/x86_64-linux-gnu/libz.so.1 /lib/x86_64-linux-gnu/libz.so.1 2>/dev/null | head -1)
      configure+=(-DZLIB_INCLUDE_DIR="$root/usr/include" -DZLIB_LIBRARY="$libz")
    fi
    [ -d "$root/usr/share/datasets/fashion-mnist" ] && data="$root/usr/share/datasets/fashion-mnist"
  fi
  # cuDNN beside the toolkit, else from Python's nvidia cuDNN wheel (wherever
  # in the nvidia package its include/cudnn.h is: layouts differ by CUDA version).
  if ! compgen -G "/usr/local/cuda/lib64/libcudnn.so*" >/dev/null &&
    ! compgen -G "/usr/lib/x86_64-linux-gnu/libcudnn.so*" >/dev/null; then
    local nvidia header="" wheel library
    nvidia=$(python3 -c "import importlib.util as u; print(list(u.find_spec('nvidia').submodule_search_locations)[0])" \
      2>/dev/null || true)
    [ -n "$nvidia" ] && header=$(find "$nvidia" -name cudnn.h -path '*/include/*' 2>/dev/null | head -1)
    if [ -n "$header" ]; then
      wheel=$(dirname "$(dirname "$header")")
      library=$(find "$wheel" -name 'libcudnn.so*' | sort | head -1)
      echo "cuDNN from the wheel: $header, $library"
      configure+=(-DHYDRA_CUDNN_LIBRARY="$library" -DHYDRA_CUDNN_INCLUDE_DIR="$wheel/include")
      LD_LIBRARY_PATH="$(dirname "$library")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      export LD_LIBRARY_PATH
    else
      echo "cuDNN: none beside the toolkit, and no include/cudnn.h in Python's nvidia package ('${nvidia:-not found}')"
    fi
  fi
  export HYDRA_FASHION_MNIST_DIR="${HYDRA_FASHION_MNIST_DIR:-$data}"
  # A machine whose nvidia-smi lists a GPU must have one: "no device" fails there.
  if nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then export HYDRA_REQUIRE_GPU=1; fi
  echo "configure: ${configure[*]}"
  # Its own build folder: these settings must not change a developer's release build.
  cmake --preset release -B build/gpu "${configure[@]}" >/dev/null
}

# Seconds left of the step's 5 minutes (at least 1: `timeout 0` never stops).
gpu_left() {
  local left=$((gpu_deadline - SECONDS))
  [ "$left" -gt 0 ] && echo "$left" || echo 1
}

# The device probe; its exit code is the step's when it is not 0.
gpu_probe_or_stop() {
  local rc=0
  ./build/gpu/tests/gpu_probe | tee -a "$gpu_figures" || rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 77 ]; then
    echo "SKIPPED: step $gpu_step_name: no CUDA device" | tee -a "$gpu_figures"
  elif [ "$rc" -ne 0 ]; then
    echo "FAILED: step $gpu_step_name: CUDA cannot be used here (see above)" | tee -a "$gpu_figures"
  fi
  return "$rc"
}

# ctest over the test programs matching $1; passed/failed lines and every
# MESSAGE (the figures the tests print) go to the figures file.
gpu_ctest() {
  local rc=0
  timeout "$(gpu_left)" ctest --test-dir build/gpu -R "$1" -V --timeout 150 >"$gpu_scratch" 2>&1 || rc=$?
  cat "$gpu_scratch"
  {
    echo
    echo '```'
    grep -E 'Test +#[0-9]+: .*(Passed|\*\*\*|Not Run|Skipped).* sec' "$gpu_scratch" | sed 's/^ *[0-9]*\/[0-9]* *//'
    grep -E '^[0-9]+: .*( MESSAGE: | ERROR: |FAILED: still running)' "$gpu_scratch" | sed 's/^[0-9]*: //; s|^/[^ ]*/||'
    grep -E 'tests passed|tests failed' "$gpu_scratch" | tail -1
    if [ "$rc" -eq 124 ]; then echo "STOPPED: the step's 5 minutes ran out"; fi
    echo '```'
  } >>"$gpu_figures"
  return "$rc"
}

# Runs "$@" under compute-sanitizer, one row of the figures table: returns 0
# when clean, 1 on errors or failure, 2 where it cannot instrument the device
# (seen on gVisor runtimes: "Device not supported").
gpu_sanitize() {
  local tool=$1 rc=0 verdict=clean result=0
  shift
  timeout "$(gpu_left)" "$gpu_sanitizer" --tool "$tool" --error-exitcode 10 "$@" >"$gpu_scratch" 2>&1 || rc=$?
  cat "$gpu_scratch"
  if grep -q "Device not supported" "$gpu_scratch"; then
    verdict="NOT RUN: compute-sanitizer does not support this machine's device" result=2
  elif [ "$rc" -eq 10 ]; then
    verdict="ERRORS: $(grep -m1 -E '^========= (Invalid|Race|Error|.*hazard)' "$gpu_scratch" || echo 'see the log')" result=1
  elif [ "$rc" -eq 124 ]; then
    verdict="STOPPED: the step's 5 minutes ran out" result=1
  elif [ "$rc" -ne 0 ]; then
    verdict="FAILED: exit code $rc" result=1
  fi
  printf '| %s | %s | %s |\n' "$tool" "${*: -1}" "$verdict" >>"$gpu_figures"
  return "$result"
}

gpu_step_body() {
  {
    echo "## GPU step $gpu_step_name: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "$(git log -1 --format='commit %h (%cd)' --date=short 2>/dev/null || echo 'commit unknown');" \
      "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1 ||
        echo 'no nvidia-smi')"
  } >"$gpu_figures"
  gpu_prepare
  local started=$SECONDS
  cmake --build build/gpu --target "${gpu_targets[@]}"
  echo "build of ${gpu_targets[*]}: $((SECONDS - started)) s" | tee -a "$gpu_figures"
  local status=0 rc=0
  gpu_probe_or_stop || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "step $gpu_step_name: $((SECONDS - gpu_deadline + 300)) s in all, exit $rc" | tee -a "$gpu_figures"
    exit "$rc"
  fi
  case "$gpu_step_name" in
    tests)
      export NVIDIA_TF32_OVERRIDE=0 # a control: fp32 paths must not depend on TF32 being off
      echo "NVIDIA_TF32_OVERRIDE=0" >>"$gpu_figures"
      gpu_ctest '^gpu_smoke_tests:' || status=1
      gpu_ctest '^gpu_(tests|fault_tests):' || status=1
      ;;
    sanitize)
      gpu_sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
      if [ -z "$gpu_sanitizer" ]; then
        echo "FAILED: compute-sanitizer not found (PATH, /usr/local/cuda/bin)" | tee -a "$gpu_figures"
        exit 1
      fi
      printf '\n| tool | test case | result |\n|---|---|---|\n' >>"$gpu_figures"
      local program=./build/gpu/tests/gpu_tests unsupported=0
      for run in "memcheck|the CUDA softmax cross-entropy matches the host layer*" \
        "memcheck|cublas_dense matches the host dense layer*" \
        "memcheck|cudnn_conv2d matches the plain-loop reference*" \
        "memcheck|a short spilled run*" \
        "racecheck|the CUDA softmax cross-entropy matches the host layer*"; do
        rc=0
        gpu_sanitize "${run%%|*}" "$program" "--test-case=${run#*|}" || rc=$?
        if [ "$rc" -eq 1 ]; then status=1; fi
        if [ "$rc" -eq 2 ]; then unsupported=1; fi
      done
      if [ "$status" -eq 0 ] && [ "$unsupported" -eq 1 ]; then status=77; fi
      ;;
    bench)
      echo '```' >>"$gpu_figures"
      for run in "cuda_bench --benchmark_filter=copy/.*_64MiB|spill/.*/64MiB|pool/.*/1MiB" \
        "cuda_train_bench --benchmark_filter=mlp/.*/2048x2048"; do
        rc=0
        # shellcheck disable=SC2086 # the filter has no spaces
        timeout "$(gpu_left)" ./build/gpu/bench/$run >"$gpu_scratch" 2>&1 || rc=$?
        cat "$gpu_scratch"
        {
          echo "\$ $run"
          grep -vE '^\*\*\*WARNING|^$' "$gpu_scratch"
        } >>"$gpu_figures"
        [ "$rc" -eq 0 ] || {
          echo "exit code $rc" >>"$gpu_figures"
          status=1
        }
      done
      echo '```' >>"$gpu_figures"
      ;;
    job)
      local data="$HYDRA_FASHION_MNIST_DIR"
      if [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
        echo "FAILED: no Fashion-MNIST files in $data (carry .gpu-bundle, or set HYDRA_FASHION_MNIST_DIR)" |
          tee -a "$gpu_figures"
        exit 1
      fi
      echo '```' >>"$gpu_figures"
      # The subset RESULTS.md compares policies on (12,000 images, one epoch).
      for run in "--backend cuda --policy sharp" "--backend cuda --policy model_parallel" \
        "--backend host --policy sharp"; do
        rc=0
        # shellcheck disable=SC2086 # word splitting wanted
        timeout "$(gpu_left)" ./build/gpu/examples/model_selection $run --train-subset 12000 --epochs 1 \
          --data-dir "$data" >"$gpu_scratch" 2>&1 || rc=$?
        cat "$gpu_scratch"
        {
          echo "\$ model_selection $run --train-subset 12000 --epochs 1"
          tail -n 16 "$gpu_scratch"
        } >>"$gpu_figures"
        [ "$rc" -eq 0 ] || {
          echo "exit code $rc" >>"$gpu_figures"
          status=1
        }
      done
      echo '```' >>"$gpu_figures"
      ;;
  esac
  echo "step $gpu_step_name: $((SECONDS - gpu_deadline + 300)) s in all, exit $status" | tee -a "$gpu_figures"
  exit "$status"
}

gpu_step() {
  gpu_step_name=$1
  case "$gpu_step_name" in
    tests) gpu_targets=(gpu_probe gpu_smoke_tests gpu_tests gpu_fault_tests) ;;
    sanitize) gpu_targets=(gpu_probe gpu_tests) ;;
    bench) gpu_targets=(gpu_probe cuda_bench cuda_train_bench) ;;
    job) gpu_targets=(gpu_probe model_selection) ;;
    *)
      echo "gpu: unknown step '$gpu_step_name' (tests, sanitize, bench or job)"
      return 2
      ;;
  esac
  local out="${OUT:-build/gpu-out}" rc=0
  mkdir -p "$out"
  gpu_figures="$out/gpu-$gpu_step_name.md"
  gpu_scratch=$(mktemp)
  gpu_deadline=$((SECONDS + 300))
  gpu_step_body 2>&1 | tee "$out/gpu-$gpu_step_name.log" || rc=${PIPESTATUS[0]}
  rm -f "$gpu_scratch"
  return "$rc"
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
    ./build/release/tools/hydra-sim "$@"
    ;;
  mpi | example-mpi)
    # On N ranks of this machine (default 2), each with its own host devices:
    # examples/mpi_sweep, or the main job as one sweep over the ranks. More
    # ranks than cores are allowed (--oversubscribe).
    target=mpi_sweep
    [ "$1" = example-mpi ] && target=model_selection
    setup
    cmake --preset release >/dev/null
    cmake --build --preset release --target "$target" >/dev/null
    shift
    ranks=2
    if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then ranks=$1; shift; fi
    # Open MPI starts as root only when told (containers often run as root).
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader \
      mpirun --oversubscribe -np "$ranks" "./build/release/examples/$target" "$@"
    ;;
  install)
    prefix="${2:?usage: bash scripts/dev.sh install PREFIX}"
    setup "${install_packages[@]}"
    build="${HYDRA_BUILD_DIR:-build/install}"
    cmake --preset install -B "$build"
    cmake --build "$build"
    cmake --install "$build" --prefix "$prefix"
    ;;
  gpu-bundle)
    # The lent GPU machines have the CUDA toolkit, CMake, ninja, g++ and
    # Python's cuDNN wheel, but no doctest, Google Benchmark, zlib headers,
    # CLI11, nlohmann-json or dataset, and cannot fetch them. Their Debian packages, carried as files:
    # `gpu` unpacks them under /tmp (never into /).
    rm -rf .gpu-bundle && mkdir -p .gpu-bundle
    (cd .gpu-bundle && apt-get download doctest-dev libbenchmark-dev libbenchmark1debian zlib1g-dev \
      libcli11-dev nlohmann-json3-dev dataset-fashion-mnist)
    du -sh .gpu-bundle
    ;;
  gpu)
    status=0
    gpu_step "${2:-tests}" || status=$?
    exit "$status"
    ;;
  bench)
    setup
    cmake --preset release >/dev/null
    programs=(pool_bench copy_bench spill_bench scheduler_bench sweep_bench runtime_overhead_bench sim_bench selection_bench profile_prediction_bench)
    # host_layers_bench exists when the host layers run on OpenBLAS (HYDRA_HOST_BLAS).
    grep -q "HYDRA_HOST_BLAS_ENABLED:INTERNAL=ON" build/release/CMakeCache.txt 2>/dev/null && programs+=(host_layers_bench)
    cmake --build --preset release --target "${programs[@]}"
    echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset, OpenBLAS chooses}"
    for program in "${programs[@]}"; do
      ./build/release/bench/$program
    done
    ;;
  *)
    sed -n '2,27p' "${BASH_SOURCE[0]}"
    exit 2
    ;;
esac
