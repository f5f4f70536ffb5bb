"""Matrix products for compiled code, on fastdnn's own single-threaded BLAS.

M, N, K: C (M, N) = op(A) (M, K) @ op(B) (K, N), row-major; lda, ldb, ldc: row strides.

The engine splits every product into blocks and runs each block on one of its threads,
so each call must be single-threaded. NumPy's OpenBLAS has one process-wide thread
count, and setting it would change what every other thread's NumPy products do (or,
from two callers at once, leave it set). So fastdnn loads its own instance of NumPy's
OpenBLAS: a copy of the library file under ``config.CACHE_DIR`` (made once, atomically),
opened privately and set to one thread. It has its own thread count and buffers; the
NumPy the user runs is never touched, and nothing new is installed.

Where that library cannot be found or copied (another BLAS, a read-only cache), the
products run on a plain compiled loop: correct everywhere, and slower (``PRIVATE`` tells).
The BLAS is reached through a symbol name registered at every import, so ``cache=True``
code stays valid in the next process.
"""
import ctypes
import glob
import hashlib
import os
import shutil

import llvmlite.binding as llvm
import numpy as np
from numba import carray, njit, types
from numba.extending import overload

from .. import config
from .._cache import harden_caches, hardened_cfunc
from .._files import atomic_replace

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

# (library glob inside numpy.libs, symbol prefix, symbol suffix) of NumPy's Linux wheels,
# whose OpenBLAS takes 64-bit integers (as declared below)
_CANDIDATES = [("libscipy_openblas64_*", "scipy_", "64_"), ("libopenblas64_*", "", "64_")]


def _numpy_openblas():
    """(path, prefix, suffix) of the OpenBLAS inside NumPy's wheel, or None."""
    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for pattern, prefix, suffix in _CANDIDATES:
        for path in sorted(glob.glob(os.path.join(libs, pattern + ".so"))):
            return os.path.realpath(path), prefix, suffix
    return None


def _private_copy(path):
    """A copy of the library at ``path`` in the cache, made atomically (a crash or a
    concurrent writer leaves either no file or a whole one under the final name)."""
    stat = os.stat(path)
    tag = hashlib.sha256(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    folder = os.path.join(config.CACHE_DIR, "blas")
    target = os.path.join(folder, f"{tag[:16]}-{os.path.basename(path)}")
    if os.path.exists(target) and os.path.getsize(target) == stat.st_size:
        return target
    os.makedirs(folder, exist_ok=True)
    with atomic_replace(target, mode=0o755) as tmp, open(tmp, "wb") as out, \
            open(path, "rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)
    return target


def _load_private():
    """(sgemm, dgemm) addresses of a private one-threaded OpenBLAS, or None."""
    if not config.PRIVATE_BLAS:
        return None
    found = _numpy_openblas()
    if found is None:
        return None
    path, prefix, suffix = found
    try:
        lib = ctypes.CDLL(_private_copy(path), mode=os.RTLD_LOCAL | os.RTLD_NOW)
        getattr(lib, f"{prefix}openblas_set_num_threads{suffix}")(1)
        return tuple(ctypes.cast(getattr(lib, f"{prefix}{name}{suffix}"),
                                 ctypes.c_void_p).value
                     for name in ("cblas_sgemm", "cblas_dgemm")), lib
    except (OSError, AttributeError):
        return None


def _loop_gemm(real):
    """A plain row-major gemm with cblas_?gemm's C signature (the fallback)."""
    ptr = types.CPointer(real)
    sig = types.void(types.int32, types.int32, types.int32, types.int64, types.int64,
                     types.int64, real, ptr, types.int64, ptr, types.int64, real, ptr,
                     types.int64)

    @hardened_cfunc(sig, cache=config.CACHE, error_model="numpy")
    def gemm(order, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc):
        rows_a, cols_a = (K, M) if ta == _TRANS else (M, K)   # A as stored
        rows_b, cols_b = (N, K) if tb == _TRANS else (K, N)
        A = carray(a, (lda * (rows_a - 1) + cols_a,))
        B = carray(b, (ldb * (rows_b - 1) + cols_b,))
        C = carray(c, (ldc * (M - 1) + N,))
        for i in range(M):
            row = i * ldc
            for j in range(N):
                C[row + j] = C[row + j] * beta if beta != 0 else real(0)
            for p in range(K):
                aip = alpha * (A[p * lda + i] if ta == _TRANS else A[i * lda + p])
                if tb == _TRANS:
                    for j in range(N):
                        C[row + j] += aip * B[j * ldb + p]
                else:
                    for j in range(N):
                        C[row + j] += aip * B[p * ldb + j]
    return gemm


def _bind():
    loaded = _load_private()
    if loaded is not None:
        (sgemm, dgemm), lib = loaded
        llvm.add_symbol("fastdnn_sgemm", sgemm)
        llvm.add_symbol("fastdnn_dgemm", dgemm)
        return lib
    llvm.add_symbol("fastdnn_sgemm", _loop_gemm(types.float32).address)
    llvm.add_symbol("fastdnn_dgemm", _loop_gemm(types.float64).address)
    return None


_LIBRARY = _bind()
PRIVATE = _LIBRARY is not None   # False: products run on the plain compiled loop


def _declare(name, real):
    i32, i64, ptr = types.int32, types.int64, types.intp
    return types.ExternalFunction(name, types.void(i32, i32, i32, i64, i64, i64, real, ptr,
                                                   i64, ptr, i64, real, ptr, i64))


_SGEMM = _declare("fastdnn_sgemm", types.float32)
_DGEMM = _declare("fastdnn_dgemm", types.float64)


def _gemm_of(*args):
    """cblas_sgemm or cblas_dgemm by the type of alpha (compiled code only)."""
    raise NotImplementedError


@overload(_gemm_of)
def _gemm_of_typed(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc):
    call = _SGEMM if alpha == types.float32 else _DGEMM

    def impl(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc):
        call(_ROW_MAJOR, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
    return impl


@njit(**config.INTERNAL)
def gemm(shape, a, b, c, beta):
    """C = op(A) @ op(B) (+ beta C) on one thread, on blocks of flat storage.

    shape = (transpose_a, transpose_b, M, N, K): C is M x N, op(A) M x K, op(B) K x N, op
    transposing when asked. a, b, c = (array, offset, row stride): the block starts at
    element ``offset`` of the array's flat storage and its rows (as stored) are ``row
    stride`` elements apart; the three arrays are contiguous and of one dtype. ``beta``
    is 0 (overwrite) or 1 (accumulate).
    """
    transpose_a, transpose_b, M, N, K = shape
    A, a0, lda = a
    B, b0, ldb = b
    C, c0, ldc = c
    if M == 0 or N == 0:
        return
    item = C.itemsize
    real = C.dtype.type
    _gemm_of(_TRANS if transpose_a else _NO_TRANS, _TRANS if transpose_b else _NO_TRANS,
             M, N, K, real(1.0), A.ctypes.data + a0 * item, lda,
             B.ctypes.data + b0 * item, ldb, real(beta), C.ctypes.data + c0 * item, ldc)


harden_caches(__name__)
