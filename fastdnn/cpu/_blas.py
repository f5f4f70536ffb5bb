"""Matrix products issued from compiled code, split over Numba's threads.

NumPy's OpenBLAS keeps a thread pool of its own whose workers busy-wait ~0.1 s after
every call, and a parallel Numba kernel started in that window fights them for the
cores (see _common.SPIN_GUARD). Inside ``owned_threads()`` fastdnn runs one pool only:
NumPy's OpenBLAS is set to one thread, and each product is cut into column blocks, each
block one single-threaded cblas call from a ``prange`` loop. The BLAS is NumPy's own
(its bundled OpenBLAS, found by symbol name), so nothing is added to install; where it is
not found (another BLAS, another build) products go to ``np.dot`` as before.

C = op(A) op(B) with C (M, N) C-contiguous; the sum runs over K. Blocks are cut by shape
alone (never by thread count), so results do not depend on the number of threads.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import os
from collections.abc import Iterator

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .. import config
from .._cache import harden_caches
from ..config import CACHE

# Fewest columns per block (narrower ones repack A too often for what they gain) and
# fewest multiply-adds per block (about 5 us of one core: less does not pay for waking
# a thread; a product with one block is one single-threaded np.dot call).
MIN_BLOCK_COLUMNS = 64
MIN_BLOCK_WORK = 2**18
MAX_BLOCKS = 4   # kernels/gemm_split.py: 4 beat 8 at batch 256 and 1024 (3.52 vs 3.72 ms a step)

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

# (library glob inside numpy.libs, cblas prefix, symbol suffix) of NumPy's Linux wheels,
# whose OpenBLAS takes 64-bit integers (as _cblas below declares them)
_CANDIDATES = [("libscipy_openblas64_*", "scipy_", "64_"), ("libopenblas64_*", "", "64_")]


def _find_openblas():
    """(sgemm, dgemm, get_threads, set_threads) addresses of NumPy's OpenBLAS, or None."""
    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for pattern, prefix, suffix in _CANDIDATES:
        for path in sorted(glob.glob(os.path.join(libs, pattern + ".so"))):
            try:
                lib = ctypes.CDLL(path)
                addresses = [ctypes.cast(getattr(lib, f"{prefix}{name}{suffix}"),
                                         ctypes.c_void_p).value
                             for name in ("cblas_sgemm", "cblas_dgemm",
                                          "openblas_get_num_threads",
                                          "openblas_set_num_threads")]
            except (OSError, AttributeError):
                continue
            return addresses, lib
    return None


def _bind():
    found = _find_openblas() if config.COMPILED_BLAS else None
    if found is None:
        return None
    (sgemm, dgemm, get_threads, set_threads), lib = found
    import llvmlite.binding as llvm
    # Named symbols rather than ctypes pointers, so that cache=True kernels stay valid
    # in the next process (the address is registered again at every import).
    llvm.add_symbol("fastdnn_cblas_sgemm", sgemm)
    llvm.add_symbol("fastdnn_cblas_dgemm", dgemm)
    get = ctypes.CFUNCTYPE(ctypes.c_int)(get_threads)
    put = ctypes.CFUNCTYPE(None, ctypes.c_int)(set_threads)
    return lib, get, put


_BOUND = _bind()
AVAILABLE = _BOUND is not None


def _cblas(name, real):
    i32, i64, ptr = types.int32, types.int64, types.intp
    return types.ExternalFunction(name, types.void(i32, i32, i32, i64, i64, i64, real, ptr,
                                                   i64, ptr, i64, real, ptr, i64))


_SGEMM = _cblas("fastdnn_cblas_sgemm", types.float32)
_DGEMM = _cblas("fastdnn_cblas_dgemm", types.float64)


def _cblas_gemm(*args):
    """cblas_sgemm or cblas_dgemm, by the type of alpha (compiled code only)."""
    raise NotImplementedError


@overload(_cblas_gemm)
def _cblas_gemm_typed(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc):
    gemm = _SGEMM if alpha == types.float32 else _DGEMM

    def call(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc):
        gemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
    return call


@njit(parallel=True, cache=CACHE, error_model="numpy")
def _gemm(transpose_a, transpose_b, A, B, C, alpha, beta, blocks):
    # parallel over column blocks of C; block j is op(A) @ op(B)[:, block j]
    M, N = C.shape
    K = A.shape[0] if transpose_a else A.shape[1]
    width = (N + blocks - 1) // blocks
    item = C.itemsize
    ta = _TRANS if transpose_a else _NO_TRANS
    tb = _TRANS if transpose_b else _NO_TRANS
    for block in prange(blocks):
        c0 = block * width
        n = min(N, c0 + width) - c0
        if n > 0:
            # op(B)'s column c0 is B's row c0 (transposed) or its column c0; pointers go
            # as integers (the x86-64 and AArch64 ABIs pass both alike)
            b_offset = c0 * B.shape[1] if transpose_b else c0
            _cblas_gemm(_ROW_MAJOR, ta, tb, M, n, K, alpha, A.ctypes.data, A.shape[1],
                        B.ctypes.data + b_offset * item, B.shape[1], beta,
                        C.ctypes.data + c0 * item, N)


_OWNED = [0]   # 1 inside owned_threads() (nested uses leave it alone)


def owns_threads():
    """True inside ``owned_threads()`` with the compiled BLAS available."""
    return _OWNED[0] > 0


@contextlib.contextmanager
def owned_threads() -> Iterator[None]:
    """Run fastdnn's products and kernels on Numba's threads alone for a while.

    NumPy's OpenBLAS is set to one thread on entry and given its count back on exit, so
    NumPy products run by other code meanwhile are single-threaded. Nested uses are free.
    Without the compiled BLAS this does nothing.

    Yields
    ------
    None
        Inside the ``with`` block.
    """
    if not AVAILABLE or _OWNED[0]:
        yield
        return
    _, get, put = _BOUND
    threads = get()
    put(1)
    _OWNED[0] = 1
    try:
        yield
    finally:
        _OWNED[0] = 0
        put(threads)


def matmul(A, B, out, transpose_a=False, transpose_b=False, beta=0.0):
    """out = op(A) @ op(B) (+ beta * out), op transposing when asked.

    Split over Numba's threads inside ``owned_threads()`` (when A, B and out are
    C-contiguous float32 / float64 of one dtype and the product is big enough for two
    blocks); otherwise ``np.dot`` (on one BLAS thread inside ``owned_threads()``).
    """
    if (_OWNED[0] and out.flags.c_contiguous and A.flags.c_contiguous
            and B.flags.c_contiguous and A.dtype == B.dtype == out.dtype
            and out.dtype.type in (np.float32, np.float64)):
        M, N = out.shape
        work = M * N * (A.shape[0] if transpose_a else A.shape[1])
        blocks = min(MAX_BLOCKS, N // MIN_BLOCK_COLUMNS, work // MIN_BLOCK_WORK)
        if blocks > 1:
            real = out.dtype.type
            _gemm(transpose_a, transpose_b, A, B, out, real(1.0), real(beta), blocks)
            return out
    a = A.T if transpose_a else A
    b = B.T if transpose_b else B
    if beta:
        out *= beta
        out += a @ b
        return out
    return np.dot(a, b, out=out)


harden_caches(__name__)
