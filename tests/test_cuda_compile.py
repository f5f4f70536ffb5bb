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


@pytest.fixture(scope="module")
def compile_ptx():
    _, fn, why = _toolchain()
    if fn is None:
        pytest.skip(f"numba.cuda.compile_ptx is unavailable here ({why})")
    return fn


# Shorthand: A2/A1 arrays of the float dtype, S its scalar, I int64, B boolean,
# U uint64, L int64 1-D array, M boolean 1-D array, D float64 1-D array, F float64.
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
        "_forward_training": "A2 A1 A1 A1 A1 S S S A1 A1 I B U U S A2 A1 A2 A2",
        "_forward_inference": "A2 A1 A1 A1 A1 S I A2 A2",
        "_backward_sums": "A2 A2 A2 I B U U S I A2 A2 A2",
        "_backward_dz": "A2 A2 A1 A1 A1 A1 S A2",
    },
    "fastdnn.cuda.losses": {
        "_row_loss": "I A2 A2 L B S A2 A2",
        "_row_softmax": "A2 B A2",
    },
    "fastdnn.cuda.engine": {
        "_gather_rows": "A2 L I A2",
        "_sumsq_lanes": "A1 I D I",
        "_sum_lanes": "D D",
        "_batch_loss": "A1 D F D",
        "_accumulate": "D A1 F",
        "_count_correct": "I A2 A2 L",
    },
    "fastdnn.cuda.optim": {
        "_sgd": "A1 A1 S S",
        "_momentum": "A1 A1 A1 S S S S B",
        "_rmsprop": "A1 A1 A1 S S S S S",
        "_adam": "A1 A1 A1 A1 S S S S S S S S S B",
    },
}


def _signature(spec, dtype):
    t = types.float32 if dtype == "float32" else types.float64
    table = {"A2": t[:, ::1], "A1": t[::1], "S": t, "I": types.int64, "B": types.boolean,
             "U": types.uint64, "L": types.int64[::1], "M": types.boolean[::1],
             "D": types.float64[::1], "F": types.float64}
    return tuple(table[s] for s in spec.split())


CASES = [(mod, name) for mod, kernels in KERNELS.items() for name in kernels]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("module,name", CASES)
def test_kernel_compiles_to_ptx(compile_ptx, module, name, dtype):
    kernel = getattr(importlib.import_module(module), name)
    ptx, _ = compile_ptx(kernel.py_func, _signature(KERNELS[module][name], dtype), cc=CC)
    assert ".entry" in ptx or ".visible .entry" in ptx
    if dtype == "float32" and name in ("_adam", "_rmsprop", "_forward_training"):
        # the float32 hot loops stay in single precision (no f64 square roots)
        assert "sqrt.rn.f64" not in ptx


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
