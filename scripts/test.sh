#!/usr/bin/env bash
# Set up a virtual environment with the test extras and run the whole suite:
# the CPU/NumPy tests, then the CUDA kernels under Numba's simulator in their own process
# (NUMBA_ENABLE_CUDASIM must be set before Numba is first imported).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"
export NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-2}
"$VENV/bin/python" -m pytest -q "$@"
status=0
NUMBA_ENABLE_CUDASIM=1 "$VENV/bin/python" -m pytest -q tests/cuda "$@" || status=$?
# 5 = no tests collected: the simulator suite may be empty on a branch without CUDA code
[ "$status" -eq 0 ] || [ "$status" -eq 5 ] || exit "$status"
