"""fastdnn: train multilayer perceptrons on fused Numba kernels.

The public API is re-exported here; importing fastdnn compiles nothing.
"""
import os as _os
import sys as _sys

# OpenBLAS's idle workers busy-wait ~0.1 s after every GEMM, which stalls the parallel
# Numba kernels that follow (kernels/handoff.py). OpenBLAS reads this variable once, when
# NumPy loads it, so it is only set here when NumPy is not loaded yet; otherwise
# fastdnn.cpu runs its kernels on the calling thread (fastdnn/cpu/_common.py SPIN_GUARD).
if "numpy" not in _sys.modules:
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from . import reference  # noqa: E402
from .backend import kernels, resolve as resolve_backend

__version__ = "0.1.0"

__all__ = ["reference", "kernels", "resolve_backend", "__version__"]
