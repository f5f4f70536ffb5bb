"""Matrix products of a training step, split over Numba's threads (fastdnn.cpu._blas).

The eight products of a 784-512-256-10 step (forward X W^T, backward dZ^T X and dZ W),
float32, at each batch size. C = op(A) op(B), C (M, N), cut into column blocks; every
block one single-threaded cblas call of NumPy's OpenBLAS from a prange loop (inside
owned_threads(), which sets NumPy's OpenBLAS to one thread). Blocks are cut by shape
only (never by thread count), so results do not depend on the number of threads.

  numpy    np.dot with NumPy's OpenBLAS on its own 2 threads (the baseline)
  blocks=k a fixed count of k column blocks (at least one column each)
  fastdnn  the promoted rule: N // MIN_BLOCK_COLUMNS blocks, between 1 and MAX_BLOCKS

python kernels/gemm_split.py [--batches 64,256,1024]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402  (sets sys.path to the repo root)

import numpy as np  # noqa: E402

from fastdnn.cpu import _blas  # noqa: E402

LAYERS = [784, 512, 256, 10]


def products(m, rng):
    """(name, A, B, transpose_a, transpose_b) for the step's products at batch m."""
    out = []
    for l, (n_in, n_out) in enumerate(zip(LAYERS, LAYERS[1:]), start=1):
        X = rng.standard_normal((m, n_in), dtype=np.float32)
        W = rng.standard_normal((n_out, n_in), dtype=np.float32)
        dZ = rng.standard_normal((m, n_out), dtype=np.float32)
        out.append((f"L{l} X W^T  {m}x{n_in}x{n_out}", X, W, False, True))
        out.append((f"L{l} dZ^T X {n_out}x{m}x{n_in}", dZ, X, True, False))
        if l > 1:
            out.append((f"L{l} dZ W   {m}x{n_out}x{n_in}", dZ, W, False, False))
    return out


def main():
    batches = [64, 256, 1024]
    if "--batches" in sys.argv:
        batches = [int(b) for b in sys.argv[sys.argv.index("--batches") + 1].split(",")]
    if not _blas.AVAILABLE:
        sys.exit("NumPy's BLAS is not an OpenBLAS fastdnn can call from compiled code")
    rng = np.random.default_rng(0)
    counts = [1, 2, 4, 8]
    rows, totals = [], {}
    for m in batches:
        for name, A, B, ta, tb in products(m, rng):
            a, b = (A.T if ta else A), (B.T if tb else B)
            C = np.empty((a.shape[0], b.shape[1]), np.float32)
            ref = a.astype(np.float64) @ b.astype(np.float64)

            def split(k):
                def run():
                    with _blas.owned_threads():
                        _blas._gemm(ta, tb, A, B, C, np.float32(1), np.float32(0), k)
                return run

            def promoted():
                with _blas.owned_threads():
                    _blas.matmul(A, B, C, ta, tb)

            variants = {"numpy": lambda: np.dot(a, b, out=C)}
            variants.update({f"blocks={k}": split(k) for k in counts})
            variants["fastdnn"] = promoted
            t = _lab.interleaved(variants, rounds=5, min_time=0.02, settle=0.02)
            promoted()
            err = _lab.max_rel_err(C, ref)
            rows.append([name] + [f"{t[v] * 1e6:.0f}" for v in variants]
                        + [f"{t['numpy'] / t['fastdnn']:.2f}", f"{err:.1e}"])
            for v in variants:
                totals.setdefault(m, {}).setdefault(v, 0.0)
                totals[m][v] += t[v]
        rows.append([f"all, batch {m}"] + [f"{totals[m][v] * 1e6:.0f}" for v in variants]
                    + [f"{totals[m]['numpy'] / totals[m]['fastdnn']:.2f}", ""])
    print(f"{_lab.STAT} of 5 interleaved rounds, us per product, float32")
    _lab.table(rows, ["product"] + list(variants) + ["numpy / fastdnn", "rel err"])


if __name__ == "__main__":
    main()
