"""fastdnn: train multilayer perceptrons on fused Numba kernels.

The public API is re-exported here; importing fastdnn compiles nothing.
"""
from . import reference
from .backend import kernels, resolve as resolve_backend

__version__ = "0.1.0"

__all__ = ["reference", "kernels", "resolve_backend", "__version__"]
