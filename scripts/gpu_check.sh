#!/usr/bin/env bash
# Real-GPU check of fastdnn.cuda in one command: the tests marked `gpu` (kernels, and the
# device-resident model on backend="cuda" against backend="cpu"), the PTX
# compilation tests, then the GPU benchmark (scripts/gpu_bench.py; extra arguments go
# to it). The benchmark runs even when a test fails; the exit status is the tests'.
#
# Needs on the GPU machine: numpy, numba, numba-cuda, CuPy for the machine's CUDA
# (cupy-cuda12x or cupy-cuda13x), pytest; optional: torch (fused-Adam comparison).
# Missing packages are installed with pip (set PIP_FIND_LINKS=/path/to/wheels on a
# machine without internet). PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
need=()
"$PY" -c "import numba_cuda" 2>/dev/null || need+=(numba-cuda)
"$PY" -c "import cupy" 2>/dev/null || need+=(cupy-cuda12x)
"$PY" -c "import pytest" 2>/dev/null || need+=(pytest)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    "$PY" -m pip install -q "${need[@]}"
fi
# numba-cuda <= 0.30 registers np.row_stack, which numpy 2.5 removed: with that pair
# the CUDA target fails to load. Give such an environment a one-line shim (outside the
# repo; seen on an H100 image with numba-cuda 0.30.4 and numpy 2.5.2).
if ! "$PY" -c "import numpy; numpy.row_stack" 2>/dev/null; then
    shim=$(mktemp -d)
    echo 'import numpy; numpy.row_stack = getattr(numpy, "row_stack", numpy.vstack)' > "$shim/sitecustomize.py"
    export PYTHONPATH="$shim${PYTHONPATH:+:$PYTHONPATH}"
    echo "numpy $("$PY" -c 'import numpy; print(numpy.__version__)') lacks row_stack: shim in $shim"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
status=0
"$PY" -m pytest -q -m gpu -p no:cacheprovider tests || status=$?
"$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_compile.py || status=$?
"$PY" scripts/gpu_bench.py "$@" || status=$?
exit "$status"
