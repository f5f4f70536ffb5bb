"""The engine's BLAS: its private one-threaded OpenBLAS, and the plain compiled loop it
falls back to, against NumPy; NumPy's own BLAS is left as it was."""
import os
import subprocess
import sys

import numpy as np
import pytest
from numba import njit

from fastdnn.engine import blas


@njit
def _product(A, B, C, ta, tb, offsets, beta):
    """C block = op(A block) @ op(B block): the blocks start at ``offsets`` and keep the
    whole arrays' row strides."""
    a0, b0, c0, M, N, K = offsets
    blas.gemm((ta, tb, M, N, K), (A, a0, A.shape[1]), (B, b0, B.shape[1]),
              (C, c0, C.shape[1]), beta)


CASES = [(False, False), (False, True), (True, False), (True, True)]


@pytest.mark.parametrize("ta, tb", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_of_strided_storage_match_numpy(ta, tb, dtype):
    rng = np.random.default_rng(0)
    M, N, K = 7, 5, 3
    A = rng.standard_normal((12, 11)).astype(dtype)
    B = rng.standard_normal((10, 9)).astype(dtype)
    C = rng.standard_normal((12, 12)).astype(dtype)
    a = A[1:1 + K, 2:2 + M] if ta else A[1:1 + M, 2:2 + K]
    b = B[3:3 + N, 1:1 + K] if tb else B[3:3 + K, 1:1 + N]
    for beta in (0.0, 1.0):
        want = (a.T if ta else a) @ (b.T if tb else b) + beta * C[2:2 + M, 4:4 + N]
        got = C.copy()
        _product(A, B, got, ta, tb, (1 * 11 + 2, 3 * 9 + 1, 2 * 12 + 4, M, N, K), beta)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got[2:2 + M, 4:4 + N], want, rtol=tol, atol=tol)
        outside = np.ones(C.shape, bool)
        outside[2:2 + M, 4:4 + N] = False
        assert np.array_equal(got[outside], C[outside])   # nothing else written


def test_numpy_blas_threads_are_left_alone():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [p["num_threads"] for p in threadpoolctl.threadpool_info()]
    A = np.ones((300, 300), np.float32)
    C = np.empty_like(A)
    _product(A, A, C, False, False, (0, 0, 0, 300, 300, 300), 0.0)
    assert [p["num_threads"] for p in threadpoolctl.threadpool_info()] == before
    assert np.all(C == 300)


def test_the_fallback_loop_without_the_private_blas(tmp_path):
    code = ("import numpy as np; from fastdnn.engine import blas; assert not blas.PRIVATE;"
            "import test_engine_blas as t; t.test_blocks_of_strided_storage_match_numpy("
            "False, True, np.float64); t.test_blocks_of_strided_storage_match_numpy("
            "True, False, np.float32); print('ok')")
    env = dict(os.environ, FASTDNN_PRIVATE_BLAS="0", NUMBA_CACHE_DIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join([os.path.dirname(__file__)] + sys.path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
