"""Row helpers of the CPU kernels: one loop per activation code, so each loop sees a
constant code, the formula's branches fold away and the loop vectorises.

n = row length. Each helper works on one row of a prange loop. Formulas come from
fastdnn.formulas. A helper with a ``dst`` writes there and is for a dst apart from its
sources; to work in place use the ``*_inplace`` twin. Given the same array twice, LLVM's
run-time overlap check sends the loop down its scalar path: ReLU and dropout in place ran
about 4x slower than through the twins (kernels/rows_in_place.py).

They are plain @njit functions, which LLVM inlines: Numba-level inlining
(inline="always") cost a quarter more compile time for the first training step (11.5 vs
15 s of CPU) and no measured speed. error_model="numpy" (IEEE division, as inside prange
loops) keeps divisions such as sigmoid's vectorisable.
"""
import numpy as np
from numba import njit

from ..config import CACHE
from ..formulas import _ZERO, activate, activation_grad, is_kept


@njit(cache=CACHE, error_model="numpy")
def activate_row(src, code, dst):
    # A run-time code inside the element loop kept it scalar: 10x slower for ReLU
    # (kernels/dense_forward.py).
    n = src.shape[0]
    if code == 1:
        for j in range(n):
            dst[j] = activate(src[j], 1)
    elif code == 2:
        for j in range(n):
            dst[j] = activate(src[j], 2)
    elif code == 3:
        for j in range(n):
            dst[j] = activate(src[j], 3)
    elif code == 4:
        for j in range(n):
            dst[j] = activate(src[j], 4)
    else:
        for j in range(n):
            dst[j] = src[j]


@njit(cache=CACHE, error_model="numpy")
def activate_inplace(row, code):
    n = row.shape[0]
    if code == 1:
        for j in range(n):
            row[j] = activate(row[j], 1)
    elif code == 2:
        for j in range(n):
            row[j] = activate(row[j], 2)
    elif code == 3:
        for j in range(n):
            row[j] = activate(row[j], 3)
    elif code == 4:
        for j in range(n):
            row[j] = activate(row[j], 4)


@njit(cache=CACHE, error_model="numpy")
def bias_activate_inplace(row, b, code):
    """row = activation(row + b)."""
    n = row.shape[0]
    if code == 1:
        for j in range(n):
            row[j] = activate(row[j] + b[j], 1)
    elif code == 2:
        for j in range(n):
            row[j] = activate(row[j] + b[j], 2)
    elif code == 3:
        for j in range(n):
            row[j] = activate(row[j] + b[j], 3)
    elif code == 4:
        for j in range(n):
            row[j] = activate(row[j] + b[j], 4)
    else:
        for j in range(n):
            row[j] = row[j] + b[j]


@njit(cache=CACHE, error_model="numpy")
def grad_row(d, a, code, dst):
    """dst = d * activation'(from a)."""
    n = d.shape[0]
    if code == 1:
        for j in range(n):
            dst[j] = d[j] * activation_grad(a[j], 1)
    elif code == 2:
        for j in range(n):
            dst[j] = d[j] * activation_grad(a[j], 2)
    elif code == 3:
        for j in range(n):
            dst[j] = d[j] * activation_grad(a[j], 3)
    elif code == 4:
        for j in range(n):
            dst[j] = d[j] * activation_grad(a[j], 4)
    else:
        for j in range(n):
            dst[j] = d[j]


@njit(cache=CACHE, error_model="numpy")
def grad_inplace(d, a, code):
    """d = d * activation'(from a)."""
    n = d.shape[0]
    if code == 1:
        for j in range(n):
            d[j] = d[j] * activation_grad(a[j], 1)
    elif code == 2:
        for j in range(n):
            d[j] = d[j] * activation_grad(a[j], 2)
    elif code == 3:
        for j in range(n):
            d[j] = d[j] * activation_grad(a[j], 3)
    elif code == 4:
        for j in range(n):
            d[j] = d[j] * activation_grad(a[j], 4)


@njit(cache=CACHE, error_model="numpy")
def dropout_row(src, base, key, threshold, scale, dst):
    """dst = src * scale where kept, else src * 0; base = row-major index of src[0]."""
    for j in range(src.shape[0]):
        keep = is_kept(key, base + np.uint64(j), threshold)
        dst[j] = src[j] * scale if keep else src[j] * _ZERO


@njit(cache=CACHE, error_model="numpy")
def dropout_inplace(row, base, key, threshold, scale):
    for j in range(row.shape[0]):
        keep = is_kept(key, base + np.uint64(j), threshold)
        row[j] = row[j] * scale if keep else row[j] * _ZERO


@njit(cache=CACHE, error_model="numpy")
def backward_row(d, a, code, dropout, base, key, threshold, scale, in_place, dst):
    """dst = d * activation'(from a), then the dropout mask and scale (base: row-major
    index of the row's first element); in_place: dst is d."""
    if in_place:
        grad_inplace(dst, a, code)
    else:
        grad_row(d, a, code, dst)
    if dropout:
        dropout_inplace(dst, base, key, threshold, scale)


@njit(cache=CACHE, error_model="numpy")
def copy_row(src, dst):
    # a loop, not dst[:] = src: slice assignment compiles Numba's general broadcasting
    # copy into every kernel that uses it
    for j in range(src.shape[0]):
        dst[j] = src[j]


@njit(cache=CACHE, error_model="numpy")
def accumulate_row(src, acc):
    for j in range(src.shape[0]):
        acc[j] += src[j]
