"""One-threaded sgemm: NumPy's OpenBLAS against Intel MKL, on a training step's products.

fastdnn.cpu runs every product as single-threaded BLAS calls, one per column block, from
a prange loop (_blas). MKL would be a 220 MB optional dependency (the `mkl` wheel), so
this weighs it where fastdnn would use it: one thread, row-major cblas_sgemm, the eight
products of a 784-512-256-10 step at each batch size, both libraries called through
ctypes on the same arrays, interleaved, median of 7 rounds.

    pip download mkl --no-deps -d DIR && unzip DIR/mkl-*.whl -d DIR
    python kernels/blas_single_thread.py DIR/mkl-*.data/data/lib/libmkl_rt.so.3

Measured on the 2-core EPYC (MKL 2026.2, OpenBLAS 0.3.31), MKL / OpenBLAS time summed
over the step's products, two runs: 0.93 and 0.93 (batch 64), 0.98 and 1.02 (256), 0.95
and 1.04 (1024). No gain on one thread worth 220 MB, so fastdnn stays on NumPy's
OpenBLAS; the edge the issue measured was PyTorch's multi-threaded MKL calls.
"""
import ctypes
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402,F401  (sets sys.path to the repo root)

import numpy as np  # noqa: E402

from fastdnn.cpu import _blas  # noqa: E402

LAYERS = [784, 512, 256, 10]
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def mkl_sgemm(path):
    os.environ["MKL_THREADING_LAYER"] = "SEQUENTIAL"
    lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    f = lib.cblas_sgemm
    f.restype = None
    i, p = ctypes.c_int, ctypes.c_void_p
    f.argtypes = [i, i, i, i, i, i, ctypes.c_float, p, i, p, i, ctypes.c_float, p, i]
    return f


def openblas_sgemm():
    found = _blas._find_openblas()
    if found is None:
        sys.exit("NumPy's BLAS is not an OpenBLAS this lab can call")
    addresses, lib = found
    ctypes.CFUNCTYPE(None, ctypes.c_int64)(addresses[3])(1)   # one thread
    i, n, p = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
    return ctypes.CFUNCTYPE(None, i, i, i, n, n, n, ctypes.c_float, p, n, p, n,
                            ctypes.c_float, p, n)(addresses[0])


def products(m, rng):
    out = []
    for l, (n_in, n_out) in enumerate(zip(LAYERS, LAYERS[1:]), start=1):
        X = rng.standard_normal((m, n_in), dtype=np.float32)
        W = rng.standard_normal((n_out, n_in), dtype=np.float32)
        dZ = rng.standard_normal((m, n_out), dtype=np.float32)
        out.append((f"L{l} X W^T  {m}x{n_in}x{n_out}", X, W, False, True, (m, n_out)))
        out.append((f"L{l} dZ^T X {n_out}x{m}x{n_in}", dZ, X, True, False, (n_out, n_in)))
        if l > 1:
            out.append((f"L{l} dZ W   {m}x{n_out}x{n_in}", dZ, W, False, False, (m, n_in)))
    return out


def call(f, A, B, C, ta, tb):
    M, N = C.shape
    K = A.shape[0] if ta else A.shape[1]
    f(_ROW_MAJOR, _TRANS if ta else _NO_TRANS, _TRANS if tb else _NO_TRANS, M, N, K, 1.0,
      A.ctypes.data, A.shape[1], B.ctypes.data, B.shape[1], 0.0, C.ctypes.data, N)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    libs = {"mkl": mkl_sgemm(sys.argv[1]), "openblas": openblas_sgemm()}
    rng = np.random.default_rng(0)
    rows = []
    for m in (64, 256, 1024):
        totals = dict.fromkeys(libs, 0.0)
        for name, A, B, ta, tb, shape in products(m, rng):
            C = np.empty(shape, np.float32)
            samples = {lib: [] for lib in libs}
            for _ in range(7):
                for lib, f in libs.items():
                    call(f, A, B, C, ta, tb)
                    t0 = time.perf_counter()
                    for _ in range(10):
                        call(f, A, B, C, ta, tb)
                    samples[lib].append((time.perf_counter() - t0) / 10)
            t = {lib: float(np.median(s)) for lib, s in samples.items()}
            for lib in libs:
                totals[lib] += t[lib]
            rows.append([name, f"{t['mkl'] * 1e6:.0f}", f"{t['openblas'] * 1e6:.0f}",
                         f"{t['mkl'] / t['openblas']:.2f}"])
        rows.append([f"all, batch {m}", f"{totals['mkl'] * 1e6:.0f}",
                     f"{totals['openblas'] * 1e6:.0f}",
                     f"{totals['mkl'] / totals['openblas']:.2f}"])
    print("median of 7 interleaved rounds, us per product, one thread, float32")
    _lab.table(rows, ["product", "mkl", "openblas", "mkl / openblas"])


if __name__ == "__main__":
    main()
