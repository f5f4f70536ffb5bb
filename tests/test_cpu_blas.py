"""fastdnn.cpu._blas: matrix products split over Numba's threads inside owned_threads()."""
import numba
import numpy as np
import pytest

import fastdnn
from fastdnn.cpu import _blas, _common
from helpers import assert_close

pytestmark = pytest.mark.skipif(not _blas.AVAILABLE,
                                reason="NumPy's BLAS is not an OpenBLAS fastdnn can call")

SHAPES = [(1, 1, 1), (3, 1, 5), (1, 7, 3), (37, 130, 13), (64, 257, 100)]  # (M, N, K)


def _operands(rng, M, N, K, transpose_a, transpose_b, dtype):
    A = rng.standard_normal((K, M) if transpose_a else (M, K)).astype(dtype)
    B = rng.standard_normal((N, K) if transpose_b else (K, N)).astype(dtype)
    C = rng.standard_normal((M, N)).astype(dtype)
    return A, B, C


def _spy(monkeypatch):
    calls = []
    gemm = _blas._gemm
    monkeypatch.setattr(_blas, "_gemm", lambda *a: calls.append(a[-1]) or gemm(*a))
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
@pytest.mark.parametrize("M,N,K", SHAPES)
def test_split_product_matches_float64(monkeypatch, dtype, transpose_a, transpose_b, M, N, K):
    monkeypatch.setattr(_blas, "MIN_BLOCK_COLUMNS", 16)  # several blocks, a short last one
    monkeypatch.setattr(_blas, "MIN_BLOCK_WORK", 1)
    calls = _spy(monkeypatch)
    rng = np.random.default_rng(M * N + K)
    A, B, C = _operands(rng, M, N, K, transpose_a, transpose_b, dtype)
    a = (A.T if transpose_a else A).astype(np.float64)
    b = (B.T if transpose_b else B).astype(np.float64)
    for beta in (0.0, 0.5):
        expected = a @ b + beta * C.astype(np.float64)
        # a sum of K products cancels: bound the error by the sum of their magnitudes
        scale = np.abs(a) @ np.abs(b) + beta * np.abs(C.astype(np.float64))
        with fastdnn.cpu.owned_threads():
            _blas.matmul(A, B, C, transpose_a, transpose_b, beta=beta)
        rtol = 1e-6 if dtype == np.float32 else 1e-14
        assert_close(C / scale, expected / scale, rtol=0, atol=rtol, name=f"beta={beta}")
    blocks = min(_blas.MAX_BLOCKS, N // 16, M * N * K)
    assert calls == ([blocks] * 2 if blocks > 1 else [])   # one block: np.dot


def test_blocks_do_not_depend_on_the_thread_count(monkeypatch):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs NUMBA_NUM_THREADS >= 2")
    monkeypatch.setattr(_blas, "MIN_BLOCK_COLUMNS", 8)
    monkeypatch.setattr(_blas, "MIN_BLOCK_WORK", 1)
    rng = np.random.default_rng(1)
    A, B, _ = _operands(rng, 50, 61, 300, True, False, np.float32)
    out = []
    for threads in (1, 2):
        C = np.empty((50, 61), np.float32)
        numba.set_num_threads(threads)
        try:
            with fastdnn.cpu.owned_threads():
                _blas.matmul(A, B, C, transpose_a=True)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        out.append(C)
    np.testing.assert_array_equal(out[0], out[1])


def test_outside_the_context_and_for_strided_operands_numpy_does_the_product(monkeypatch):
    calls = _spy(monkeypatch)
    rng = np.random.default_rng(2)
    A = rng.standard_normal((20, 30))
    B = rng.standard_normal((40, 30))
    C = np.empty((20, 40))
    _blas.matmul(A, B, C, transpose_b=True)
    assert_close(C, A @ B.T, dtype=np.dtype(np.float64))
    with fastdnn.cpu.owned_threads():
        _blas.matmul(A[:, ::2], B[:, ::2], C, transpose_b=True)
    assert_close(C, A[:, ::2] @ B[:, ::2].T, dtype=np.dtype(np.float64))
    assert calls == []


def test_owned_threads_sets_one_blas_thread_and_gives_it_back():
    _, get, put = _blas._BOUND
    before = get()
    put(2)   # a count the context must give back (this machine may start with 1)
    before, saved = 2, before
    with fastdnn.cpu.owned_threads():
        assert get() == 1 and _blas.owns_threads()
        with fastdnn.cpu.owned_threads():   # nested: still owned, count untouched
            assert get() == 1
        assert _blas.owns_threads()
    assert get() == before and not _blas.owns_threads()
    with pytest.raises(RuntimeError):
        with fastdnn.cpu.owned_threads():
            raise RuntimeError
    assert get() == before and not _blas.owns_threads()
    put(saved)


def test_owned_threads_lifts_the_spin_guard(monkeypatch):
    monkeypatch.setattr(_common, "SPIN_GUARD", True)
    threads = numba.get_num_threads()
    assert _common.launch(numba.get_num_threads) == 1
    with fastdnn.cpu.owned_threads():
        assert _common.launch(numba.get_num_threads) == threads


