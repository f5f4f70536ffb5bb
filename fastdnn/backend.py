"""Backends: "auto" | "numpy" | "cpu" | "cuda", resolved in one place.

Each backend is one ``Backend`` object: its kernel module (the functions of
fastdnn.reference under the same names and signatures, keyword-only ``*_out`` buffers
included), where a model's arrays live, and the engine that trains and predicts. Callers
pick one here and never probe modules for what they can do.

- numpy: fastdnn.reference, host arrays, the stepwise engine (the oracle);
- cpu: fastdnn.cpu's kernels, host arrays, the compiled engine (fastdnn.engine.cpu);
- cuda: fastdnn.cuda's kernels, device arrays, the stepwise engine on the GPU.
"""
from __future__ import annotations

import ctypes
import functools
import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Union

from . import config
from ._validation import check_choice

if TYPE_CHECKING:
    from .engine.cpu import CpuEngine
    from .engine.layout import Parameters
    from .engine.stepwise import StepwiseEngine

#: What ``Backend.engine`` returns: fastdnn.engine.cpu's compiled engine ("cpu"), or the
#: stepwise engine of kernel calls ("numpy", "cuda").
Engine = Union["CpuEngine", "StepwiseEngine"]

BACKENDS = ("numpy", "cpu", "cuda")
_MODULES = {"numpy": "fastdnn.reference", "cpu": "fastdnn.cpu", "cuda": "fastdnn.cuda"}


def cuda_available() -> bool:
    """True when numba-cuda can see a GPU (False, never an error, otherwise).

    Returns
    -------
    bool
    """
    if not _driver_library():
        return False   # without asking numba-cuda, whose import alone takes ~1 s
    try:
        from numba import cuda
        return bool(cuda.is_available())
    except Exception:
        return False


@functools.lru_cache(maxsize=None)
def _driver_library():
    """Whether the CUDA driver library can be loaded (or the simulator, or a driver path
    given to numba-cuda, is in use)."""
    if config.CUDA_SIMULATOR or config.CUDA_DRIVER_GIVEN:
        return True
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll", "libcuda.dylib"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def resolve(backend: str = "auto") -> str:
    """The concrete backend name for ``backend`` ("auto": cuda with a GPU, else cpu).

    Parameters
    ----------
    backend : "auto", "numpy", "cpu" or "cuda"

    Returns
    -------
    str
        "numpy", "cpu" or "cuda".

    Raises
    ------
    ValueError
        For another name.
    """
    check_choice("backend", backend, ("auto",) + BACKENDS)
    if backend == "auto":
        return "cuda" if cuda_available() else "cpu"
    return backend


def kernels(backend: str = "auto") -> ModuleType:
    """The kernel module of ``backend``; raises one clear error if it cannot be used.

    Parameters
    ----------
    backend : "auto", "numpy", "cpu" or "cuda"

    Returns
    -------
    module
        fastdnn.reference, fastdnn.cpu or fastdnn.cuda.
    """
    return get(backend).kernels


class Backend:
    """A backend's kernel module, array operations and engine.

    Parameters
    ----------
    name : "numpy", "cpu" or "cuda"
        A resolved name (see ``resolve``).

    Attributes
    ----------
    kernels : module
        The kernel module.
    arrays : HostArrays or DeviceArrays
        Where a model's arrays live, and the operations on them.

    Raises
    ------
    RuntimeError
        For "cuda" without a usable GPU.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "cuda" and not cuda_available():
            raise RuntimeError(
                "backend='cuda' needs an NVIDIA GPU with its driver and the CUDA packages: "
                "pip install 'fastdnn[cuda]' (numba-cuda and cupy). "
                "Use backend='cpu' or backend='auto' on machines without a GPU.")
        self.kernels = importlib.import_module(_MODULES[name])
        if name == "cuda":
            from .cuda.engine import ENGINE
            self.arrays = ENGINE
        else:
            from .engine.stepwise import HOST
            self.arrays = HOST

    def engine(self, params: Parameters, output: str, seed: int) -> Engine:
        """The engine that trains and predicts with ``params`` (fastdnn.engine.layout).

        Parameters
        ----------
        params : fastdnn.engine.layout.Parameters
            The model's parameters.
        output : "softmax", "sigmoid", "identity" or "exp"
            The output activation.
        seed : int
            The dropout seed.

        Returns
        -------
        CpuEngine or StepwiseEngine
        """
        if self.name == "cpu":
            from .engine.cpu import CpuEngine
            return CpuEngine(params, output, [seed])
        from .engine.stepwise import StepwiseEngine
        return StepwiseEngine(params, output, seed, self.kernels, self.arrays)

    def __repr__(self):
        return f"Backend({self.name!r})"


@functools.lru_cache(maxsize=None)
def _backend(name):
    return Backend(name)


def get(backend: str = "auto") -> Backend:
    """The Backend object of ``backend`` ("auto" resolved), made once per name.

    Parameters
    ----------
    backend : "auto", "numpy", "cpu" or "cuda"

    Returns
    -------
    Backend
    """
    return _backend(resolve(backend))
