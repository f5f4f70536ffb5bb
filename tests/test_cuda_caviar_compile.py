"""Compile every fastdnn.cuda.caviar kernel to PTX for float32 and float64 (no GPU
needed; skipped without numba-cuda and the CUDA compiler libraries, as
tests/test_cuda_compile.py). The simulator tests (tests/cuda/test_cuda_caviar.py) check
the arithmetic; this checks that the real CUDA target accepts the code."""
import importlib.util
import os
from types import SimpleNamespace

import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    pytest.skip("compile_ptx needs the real CUDA target, not the simulator",
                allow_module_level=True)
if importlib.util.find_spec("numba_cuda") is None:
    pytest.skip("the numba-cuda package is not installed", allow_module_level=True)

from numba import types  # noqa: E402


def _signatures(dtype):
    f = types.float32 if dtype == "float32" else types.float64
    A1, A2 = f[::1], f[:, ::1]
    I, L1, L2 = types.int64, types.int64[::1], types.int64[:, ::1]
    U1, U3, B1 = types.uint64[::1], types.uint64[:, :, ::1], types.uint8[::1]
    D1, D2, F = types.float64[::1], types.float64[:, ::1], types.float64
    return {
        "_gather": (A2, L1, L1, I, A2, L1),
        "_bias_activate": (A1, A1, I, I, I, I, A1, A1, B1, U3, I, I, U1, A1),
        "_softmax_loss": (A1, A1, I, I, I, L1, I, f, A1, D2, L2),
        "_sum_rows": (D2, L2, I, D1, L1),
        "_sq_chunks": (A1, L1, L1, L1, D2),
        "_add_l2_loss": (D2, D1, D1),
        "_bias_grad": (A1, I, A1, I),
        "_hidden_backward": (A1, A1, I, I, I, B1, U3, I, I, U1, A1),
        "_adam_scalars": (D1, D1, D1, D1, F, F, A1, A1, A1),
        "_adam": (A1, A1, A1, A1, L1, L1) + (A1,) * 8,
    }


@pytest.fixture(scope="module", autouse=True)
def device_for_overloads():
    """compile_ptx of a kernel that calls formulas.activate needs a device to compile
    formulas.leaky_slope's @overload for: see tests/test_cuda_compile.py."""
    import numba.cuda.dispatcher as dispatcher
    from numba.cuda.cudadrv.error import CudaSupportError
    with pytest.MonkeyPatch.context() as mp:
        try:
            dispatcher.get_current_device()
        except CudaSupportError:
            mp.setattr(dispatcher, "get_current_device",
                       lambda: SimpleNamespace(compute_capability=(8, 0)))
        yield


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(_signatures("float32")))
def test_caviar_kernel_compiles_to_ptx(name, dtype):
    try:
        from numba.cuda import compile_ptx
        import fastdnn.cuda.caviar as caviar
        compile_ptx(lambda a: None, (types.float32[::1],), cc=(8, 0))
    except Exception as exc:  # missing NVVM / NVRTC
        pytest.skip(f"numba.cuda.compile_ptx is unavailable here ({type(exc).__name__})")
    ptx, _ = compile_ptx(getattr(caviar, name).py_func, _signatures(dtype)[name], cc=(8, 0))
    assert ".entry" in ptx
    if dtype == "float32" and name in SINGLE_PRECISION:
        # the formulas keep these float32 kernels in single precision
        assert not [line for line in ptx.splitlines() if ".f64" in line]


# The element-wise kernels without float64 sums: no float64 at all in float32.
SINGLE_PRECISION = {"_gather", "_bias_activate", "_bias_grad", "_hidden_backward", "_adam"}


def test_every_caviar_kernel_is_listed():
    import fastdnn.cuda.caviar as caviar
    found = {n for n, v in vars(caviar).items() if type(v).__name__ == "CUDADispatcher"
             and not getattr(v, "targetoptions", {}).get("device", False)}
    assert found == set(_signatures("float32"))
