"""Does a row's product depend on the other rows of the call? (for issue #14)

scikit-learn's check_methods_subset_invariance wants a row's prediction not to depend
on which other rows are predicted with it. The engine's products go to fastdnn's private
one-threaded OpenBLAS (fastdnn.engine.blas.gemm). This lab puts the same row x at every
position p of a (M, K) block of random rows, computes the block times W.T (W: (N, K)),
and counts the positions whose result for x differs in any bit from position 0; and the
same for blocks of other heights M.

python kernels/row_invariance.py

2-core AMD EPYC (Zen, AVX2), 2026-12-01 (NumPy's OpenBLAS, one thread), positions of M
whose bits differ from position 0, and distinct results over block heights M = 1..200:
  float32 N=100 K=20:   M=128 68, M=64 34, M=16 10; 3 distinct (M = 1-3, 4-11, 12-)
  float32 N=512 K=784:  the same positions; 4 distinct (M = 1-3, 4-7, 8-11, 12-)
  float32 N=10 K=256:   8, 4, 4; 2 distinct
  float64, every shape: 0, 0, 0; 2 distinct (M = 1 alone, then every M >= 2)
and, in float64 over every M and start, the rows that differ are exactly the last row of
an odd M (the edge kernel takes it alone). So in float32 a row's bits depend on its lane
in OpenBLAS's register tile and on the block height; in float64 only on whether it is
the last of an odd count. The differences are rounding (float32: a few ulp; float64:
~1e-16).

2-core AMD EPYC with AVX-512 (Zen 4, OpenBLAS 0.3.31 picks other kernels), 2026-12-01:
  every dtype and shape: 0/128, 0/64, 0/16 positions differ; but 1 to 3 distinct
  results over block heights M = 1..200 (both dtypes: small calls take other kernels)
So which property holds depends on the CPU: on one a row's bits depend on its lane, on
the other on the height of the call. What holds on both: a float64 product, in calls
of one fixed, even height. Batch-invariant predictions (fastdnn.MLP(batch_invariant=
True), the default) are made so: every inference block gets the full height (the last
one filled with copies of the last row) and float32 models predict through float64,
the result rounded to float32; float32 would otherwise need a product whose order per
element does not depend on the row's position (kernels/infer_invariant.py: about 3x
OpenBLAS). Cost (time_predict below: 784-512-256-10 BatchNorm model, float32, this
machine, medians of 9, two runs, ms, batch_invariant False -> True):
  1 row 0.06 -> 1.82 / 1.83 (one full block); 10 rows 0.40 -> 1.78 / 1.79;
  200 rows 1.65 -> 3.82 / 4.09; 10000 rows 65 -> 145 / 139
with invariant blocks of 64 rows (engine.cpu.INVARIANT_ROWS); with 128 a single row
took 3.2 ms, large batches the same.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402  (puts the repo on sys.path)

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from fastdnn.engine import blas  # noqa: E402


@njit
def product(A, W, C, M, N, K):
    """C (M, N) = A (M, K) @ W.T on the engine's one-threaded BLAS."""
    blas.gemm((False, True, M, N, K), (A, 0, K), (W, 0, K), (C, 0, N), A.dtype.type(0))


def differing_positions(N, K, M, dtype, rng):
    x = rng.standard_normal(K).astype(dtype)
    W = rng.standard_normal((N, K)).astype(dtype)
    rows = []
    for p in range(M):
        A = rng.standard_normal((M, K)).astype(dtype)
        A[p] = x
        C = np.zeros((M, N), dtype)
        product(A.ravel(), W.ravel(), C.ravel(), M, N, K)
        rows.append(C[p])
    rows = np.array(rows)
    return int((rows != rows[0]).any(axis=1).sum())


def distinct_over_heights(N, K, dtype, rng, heights=range(1, 201)):
    """How many different results row x gets as the first row of blocks of M rows."""
    x = rng.standard_normal(K).astype(dtype)
    W = rng.standard_normal((N, K)).astype(dtype)
    seen = set()
    for M in heights:
        A = np.vstack([x[None], rng.standard_normal((M - 1, K)).astype(dtype)])
        C = np.zeros((M, N), dtype)
        product(A.ravel(), W.ravel(), C.ravel(), M, N, K)
        seen.add(C[0].tobytes())
    return len(seen)


def main():
    rng = np.random.default_rng(0)
    rows = []
    for dtype in (np.float32, np.float64):
        for N, K in ((100, 20), (512, 784), (10, 256)):
            cells = [f"{differing_positions(N, K, M, dtype, rng)}/{M}" for M in (128, 64, 16)]
            distinct = distinct_over_heights(N, K, dtype, rng)
            rows.append([np.dtype(dtype).name, N, K] + cells + [distinct])
    print("positions (of M) whose bits for the same row differ from position 0; and the "
          "distinct results of the row as the first of blocks of 1..200 rows")
    _lab.table(rows, ["dtype", "N", "K", "M=128", "M=64", "M=16", "distinct, M=1..200"])
    time_predict()


def time_predict(rounds=9):
    """What batch invariance costs a float32 predict (medians of ``rounds``)."""
    import time

    import fastdnn
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10000, 784)).astype(np.float32)
    y = rng.integers(0, 10, 10000)
    model = fastdnn.MLP([784, 512, 256, 10], batchnorm=True, seed=0, backend="cpu")
    model.fit(X[:512], y[:512], epochs=1, batch_size=128, verbose=0)
    rows = []
    for n in (1, 10, 200, 10000):
        cells = []
        for invariant in (False, True):
            model.batch_invariant = invariant
            model.predict(X[:n])
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                model.predict(X[:n])
                times.append(time.perf_counter() - t)
            cells.append(f"{1e3 * np.median(times):.2f}")
        rows.append([n] + cells)
    print("predict of a 784-512-256-10 BatchNorm float32 model, ms")
    _lab.table(rows, ["rows", "batch_invariant=False", "True"])


if __name__ == "__main__":
    main()
