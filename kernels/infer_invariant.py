"""A float32 product whose rows do not depend on the other rows (for issue #14).

OpenBLAS gives a row other bits at another position of the call
(kernels/row_invariance.py). A product is row-invariant when every output element is
summed in an order fixed by k alone: here each element is a dot product split over 8
lanes (lane l sums k = l, l + 8, ...; tails after), then the lanes added in a fixed tree.
The variants time C (M, N) = A (M, K) @ W.T for the 784-512-256 layers at M = 128 rows,
one thread, against the engine's OpenBLAS block (blas.gemm).

  0 blas         fastdnn.engine.blas.gemm (OpenBLAS sgemm): not row-invariant
  1 dot8         per element, 8 lanes in a local array
  2 dot8x4       4 outputs per pass over a row, sharing the row's loads
  3 outer        each row: C[i] += A[i, k] W.T[k] for k in order (vectorised over outputs)
  4 outer4       3 on four rows at a time and blocks of 64 outputs

python kernels/infer_invariant.py

Min of 5 interleaved rounds, us, 2-core AMD EPYC (Zen, AVX2), 2026-12-01 (time / blas):
  784->512: blas 1283; dot8 17729 (13.8); dot8x4 30259 (23.6); outer 3609 (2.81);
            outer4 4697 (3.66)
  512->256: blas 422; dot8 5846 (13.9); dot8x4 10227 (24.3); outer 1353 (3.21);
            outer4 1722 (4.08)
  256->10:  blas 17; dot8 153 (9.0); dot8x4 259 (15.2); outer 165 (9.7); outer4 233 (13.7)
Every variant but blas is row-invariant; the best, outer (which includes transposing W),
costs about 3x OpenBLAS on the large layers: not promoted. Promoted instead: float32
models predict through float64 BLAS in calls of one fixed height, about 2x the float32
predict and invariant on both CPUs seen (kernels/row_invariance.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402  (puts the repo on sys.path)

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from fastdnn.engine import blas  # noqa: E402


@njit(nogil=True, error_model="numpy")
def product_blas(A, W, C):
    M, K = A.shape
    N = W.shape[0]
    blas.gemm((False, True, M, N, K), (A.ravel(), 0, K), (W.ravel(), 0, K),
              (C.ravel(), 0, N), A.dtype.type(0))


@njit(inline="always")
def _tree(p0, p1, p2, p3, p4, p5, p6, p7):
    return ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7))


@njit(nogil=True, error_model="numpy")
def product_dot8(A, W, C):
    M, K = A.shape
    N = W.shape[0]
    K8 = K - K % 8
    zero = A.dtype.type(0)
    for i in range(M):
        a = A[i]
        for j in range(N):
            w = W[j]
            p0 = p1 = p2 = p3 = p4 = p5 = p6 = p7 = zero
            for k in range(0, K8, 8):
                p0 += a[k] * w[k]
                p1 += a[k + 1] * w[k + 1]
                p2 += a[k + 2] * w[k + 2]
                p3 += a[k + 3] * w[k + 3]
                p4 += a[k + 4] * w[k + 4]
                p5 += a[k + 5] * w[k + 5]
                p6 += a[k + 6] * w[k + 6]
                p7 += a[k + 7] * w[k + 7]
            s = _tree(p0, p1, p2, p3, p4, p5, p6, p7)
            for k in range(K8, K):
                s += a[k] * w[k]
            C[i, j] = s


@njit(nogil=True, error_model="numpy")
def product_dot8x4(A, W, C):
    M, K = A.shape
    N = W.shape[0]
    K8 = K - K % 8
    zero = A.dtype.type(0)
    acc = np.zeros((4, 8), A.dtype)
    for i in range(M):
        a = A[i]
        for j0 in range(0, N, 4):
            nj = min(4, N - j0)
            acc[:] = zero
            for k in range(0, K8, 8):
                for jj in range(nj):
                    w = W[j0 + jj]
                    for lane in range(8):
                        acc[jj, lane] += a[k + lane] * w[k + lane]
            for jj in range(nj):
                w = W[j0 + jj]
                s = _tree(acc[jj, 0], acc[jj, 1], acc[jj, 2], acc[jj, 3], acc[jj, 4],
                          acc[jj, 5], acc[jj, 6], acc[jj, 7])
                for k in range(K8, K):
                    s += a[k] * w[k]
                C[i, j0 + jj] = s


@njit(nogil=True, error_model="numpy")
def product_outer(A, W, C):
    """Each row's outputs summed over k in order, vectorised across the outputs."""
    Wt = np.ascontiguousarray(W.T)   # (K, N); the engine would keep it
    M, K = A.shape
    N = W.shape[0]
    for i in range(M):
        c = C[i]
        c[:] = 0
        for k in range(K):
            aik = A[i, k]
            w = Wt[k]
            for j in range(N):
                c[j] += aik * w[j]


@njit(nogil=True, error_model="numpy")
def product_outer4(A, W, C):
    """As outer, four rows at a time over blocks of 64 outputs (the W rows loaded once
    for four rows; the 4 x 64 sums stay in registers)."""
    Wt = np.ascontiguousarray(W.T)
    M, K = A.shape
    N = W.shape[0]
    B = 64
    acc = np.zeros((4, B), A.dtype)
    for i0 in range(0, M, 4):
        r = min(4, M - i0)
        for j0 in range(0, N, B):
            nb = min(B, N - j0)
            acc[:] = 0
            for k in range(K):
                w = Wt[k, j0:j0 + nb]
                for ii in range(r):
                    aik = A[i0 + ii, k]
                    row = acc[ii]
                    for j in range(nb):
                        row[j] += aik * w[j]
            for ii in range(r):
                C[i0 + ii, j0:j0 + nb] = acc[ii, :nb]


VARIANTS = {"0 blas": product_blas, "1 dot8": product_dot8, "2 dot8x4": product_dot8x4,
            "3 outer": product_outer, "4 outer4": product_outer4}


def invariant(fn, A, W):
    """True when every row of A gets the same bits alone, in place and reversed."""
    C = np.zeros((A.shape[0], W.shape[0]), A.dtype)
    fn(A, W, C)
    back = np.zeros_like(C)
    fn(np.ascontiguousarray(A[::-1]), W, back)
    one = np.zeros((1, W.shape[0]), A.dtype)
    fn(np.ascontiguousarray(A[5:6]), W, one)
    return bool((back[::-1] == C).all() and (one[0] == C[5]).all())


def main():
    rng = np.random.default_rng(0)
    rows = []
    for n_in, n_out in ((784, 512), (512, 256), (256, 10)):
        A = rng.standard_normal((128, n_in)).astype(np.float32)
        W = rng.standard_normal((n_out, n_in)).astype(np.float32)
        exact = A.astype(np.float64) @ W.T.astype(np.float64)
        outs = {name: np.zeros((128, n_out), np.float32) for name in VARIANTS}
        for name, fn in VARIANTS.items():
            fn(A, W, outs[name])
        t = _lab.interleaved({name: (lambda fn=fn, o=outs[name]: fn(A, W, o))
                              for name, fn in VARIANTS.items()}, rounds=5, min_time=0.05)
        for name, fn in VARIANTS.items():
            err = _lab.max_rel_err(outs[name], exact)
            rows.append([f"{n_in}->{n_out}", name, f"{t[name] * 1e6:.0f}",
                         f"{t[name] / t['0 blas']:.2f}", f"{err:.1e}",
                         invariant(fn, A, W)])
    print(f"{_lab.STAT} of 5 interleaved rounds, 128 rows, float32, one thread")
    _lab.table(rows, ["layer", "variant", "us", "vs blas", "max rel err", "row-invariant"])


if __name__ == "__main__":
    main()
