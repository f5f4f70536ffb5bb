"""Compile every fastdnn.cuda kernel to PTX for float32 and float64 (no GPU needed).

The CUDA simulator runs Python, so it accepts code that the CUDA target would reject;
numba.cuda.compile_ptx runs the real compiler (NVVM). Skipped where the numba-cuda
package or the CUDA toolkit libraries (NVVM; NVRTC: pip install nvidia-cuda-nvrtc)
are missing.
"""
import importlib
import importlib.util
import os
import sys
from types import SimpleNamespace

import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    pytest.skip("compile_ptx needs the real CUDA target, not the simulator",
                allow_module_level=True)

numba = pytest.importorskip("numba")
from numba import types  # noqa: E402

CC = (8, 0)


def _toolchain():
    if importlib.util.find_spec("numba_cuda") is None:
        # numba's own deprecated numba.cuda needs a driver even to compile these kernels
        return None, None, "the numba-cuda package is not installed"
    try:
        from numba import cuda
        from numba.cuda import compile_ptx

        def probe(a):
            a[0] = 1.0

        compile_ptx(probe, (types.float32[::1],), cc=CC)
        return cuda, compile_ptx, None
    except Exception as exc:  # missing numba-cuda, NVVM or NVRTC
        return None, None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def stand_in_device(monkeypatch, cc=CC):
    """Let compile_ptx compile kernels that call an @overload without a CUDA driver.

    numba-cuda types an @overload called in a kernel (fastdnn.formulas.leaky_slope, which
    formulas.activate calls) by compiling its implementation as a device function for
    the current device: CUDADispatcher.compile_device reads
    get_current_device().compute_capability, which raises CudaSupportError ("CUDA driver
    library cannot be found") where there is no driver, even under compile_ptx. There,
    stand in a device of compute capability ``cc``, the one compile_ptx targets. With a
    GPU this changes nothing."""
    import numba.cuda.dispatcher as dispatcher
    from numba.cuda.cudadrv.error import CudaSupportError
    try:
        dispatcher.get_current_device()
    except CudaSupportError:
        monkeypatch.setattr(dispatcher, "get_current_device",
                            lambda: SimpleNamespace(compute_capability=cc))


@pytest.fixture(scope="module")
def compile_ptx():
    _, fn, why = _toolchain()
    if fn is None:
        pytest.skip(f"numba.cuda.compile_ptx is unavailable here ({why})")
    with pytest.MonkeyPatch.context() as mp:
        stand_in_device(mp)
        yield fn


# Shorthand: A2/A1 arrays of the float dtype, S its scalar, I int64, B boolean,
# U uint64, L int64 1-D array, M boolean 1-D array, D/D2 float64 1-D/2-D arrays,
# F float64.
KERNELS = {
    "fastdnn.cuda._device": {
        "_chunk_sums": "A2 A2 A1 I I A2",
        "_merge_chunks": "A2 S A1",
        "_fill": "A1 S",
        "_axpy": "A1 S A1",
        "_scale": "A1 S A1",
    },
    "fastdnn.cuda.activations": {
        "_activation_forward": "A1 I A1",
        "_activation_backward": "A1 A1 I A1",
        "_dropout": "A1 B U U S A1",
        "_mask": "U U M",
    },
    "fastdnn.cuda.dense": {
        "_forward_epilogue": "A2 A1 B I B U U S A2 A2",
        "_backward_epilogue": "A2 A2 I B U U S I B A2 A2",
    },
    "fastdnn.cuda.batchnorm": {
        "_forward_training": "A2 A1 A1 A1 A1 S S A1 A1 I B U U S A2 A1 A2 A2",
        "_forward_inference": "A2 A1 A1 A1 A1 S I A2 A2",
        "_backward_sums": "A2 A2 A2 I B U U S I A2 A2 A2",
        "_backward_dz": "A2 A2 A1 A1 A1 A1 S A2",
    },
    "fastdnn.cuda.losses": {
        "_row_loss": "I A2 A2 L B A1 S A2 D2",
        "_row_softmax": "A2 B A2",
    },
    "fastdnn.cuda.engine": {
        "_gather_rows": "A2 L I A2",
        "_augment_rows": "A2 U U I I I I I S A2",
        "_sumsq_lanes": "A1 I D I",
        "_sum_lanes": "D D",
        "_batch_loss": "A1 D F D",
        "_accumulate": "D A1 F",
        "_count_correct": "I A2 A2 L",
        "_nan_unless_finite": "A1 D",
    },
    "fastdnn.cuda.optim": {
        "_sgd": "A1 A1 S S",
        "_momentum": "A1 A1 A1 S S S S S S",
        "_rmsprop": "A1 A1 A1 S S S S S",
        "_adam": "A1 A1 A1 A1 S S S S S S S S S",
    },
}


def _signature(spec, dtype):
    t = types.float32 if dtype == "float32" else types.float64
    table = {"A2": t[:, ::1], "A1": t[::1], "S": t, "I": types.int64, "B": types.boolean,
             "U": types.uint64, "L": types.int64[::1], "M": types.boolean[::1],
             "D": types.float64[::1], "D2": types.float64[:, ::1], "F": types.float64}
    return tuple(table[s] for s in spec.split())


CASES = [(mod, name) for mod, kernels in KERNELS.items() for name in kernels]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("module,name", CASES)
def test_kernel_compiles_to_ptx(compile_ptx, module, name, dtype):
    kernel = getattr(importlib.import_module(module), name)
    ptx, _ = compile_ptx(kernel.py_func, _signature(KERNELS[module][name], dtype), cc=CC)
    assert ".entry" in ptx or ".visible .entry" in ptx
    if dtype == "float32" and name not in FLOAT64_INSIDE:
        # the formulas keep float32 kernels in single precision (a float64 constant
        # such as a leaky slope of 0.01 would promote them)
        assert not float64_lines(ptx), float64_lines(ptx)[:5]


# Kernels whose float32 version computes in float64 by design: float64 sums and losses
# (formulas.sigmoid_cross_entropy), the softmax's mixed-type labels.
FLOAT64_INSIDE = {"_row_loss", "_row_softmax", "_sumsq_lanes", "_sum_lanes", "_batch_loss",
                  "_accumulate", "_nan_unless_finite"}


def float64_lines(ptx):
    """The PTX lines that name a float64 register, constant or instruction."""
    return [line for line in ptx.splitlines()
            if ".f64" in line and not line.lstrip().startswith("//")]


def test_every_kernel_is_listed():
    from numba.cuda.dispatcher import CUDADispatcher  # noqa: F401  (skips without numba-cuda)
    for module in KERNELS:
        mod = importlib.import_module(module)
        found = {n for n, v in vars(mod).items() if type(v).__name__ == "CUDADispatcher"
                 and getattr(v, "py_func", None) is not None
                 and v.py_func.__module__ == module
                 and not getattr(v, "targetoptions", {}).get("device", False)}
        assert found == set(KERNELS[module]), module


def test_import_without_numba_cuda_names_the_extra(monkeypatch):
    for name in [n for n in sys.modules if n == "fastdnn.cuda" or n.startswith("fastdnn.cuda.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "numba.cuda", None)
    monkeypatch.delattr(numba, "cuda", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'fastdnn\[cuda\]'"):
        importlib.import_module("fastdnn.cuda")
