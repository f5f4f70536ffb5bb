"""Backend resolution: "auto" | "numpy" | "cpu" | "cuda" to a module of kernels.

Every backend module exposes the functions of fastdnn.reference under the same names
and signatures (keyword-only ``*_out`` buffers included), so callers pick one here and
never branch on the backend again.
"""
import importlib

from ._validation import check_choice

BACKENDS = ("numpy", "cpu", "cuda")
_MODULES = {"numpy": "fastdnn.reference", "cpu": "fastdnn.cpu", "cuda": "fastdnn.cuda"}


def cuda_available():
    """True when numba-cuda can see a GPU (False, never an error, otherwise)."""
    try:
        from numba import cuda
        return bool(cuda.is_available())
    except Exception:
        return False


def resolve(backend="auto"):
    """The concrete backend name for ``backend`` ("auto": cuda with a GPU, else cpu)."""
    check_choice("backend", backend, ("auto",) + BACKENDS)
    if backend == "auto":
        return "cuda" if cuda_available() else "cpu"
    return backend


def kernels(backend="auto"):
    """The kernel module of ``backend``; raises one clear error if it cannot be used."""
    name = resolve(backend)
    if name == "cuda" and not cuda_available():
        raise RuntimeError(
            "backend='cuda' needs an NVIDIA GPU with its driver and the CUDA packages: "
            "pip install 'fastdnn[cuda]' (numba-cuda and cupy). "
            "Use backend='cpu' or backend='auto' on machines without a GPU."
        )
    return importlib.import_module(_MODULES[name])
