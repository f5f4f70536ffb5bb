"""Row loops of the CPU code: the element-wise formulas of fastdnn.formulas applied along
one contiguous row, shared by the kernels of fastdnn.cpu and the training engine.

n = row length. Each loop sees a constant activation or optimizer code, so the
formula's branches fold away and the loop vectorises (a run-time code inside the element
loop kept ReLU scalar, 10x slower: kernels/dense_forward.py). A helper with a ``dst``
writes there and is for a dst apart from its sources; to work in place use the
``*_inplace`` twin: given the same array twice, LLVM's run-time overlap check sends the
loop down its scalar path (ReLU and dropout in place ran about 4x slower,
kernels/rows_in_place.py).

They are plain @njit functions, which LLVM inlines: Numba-level inlining
(inline="always") cost a quarter more compile time and no measured speed.
error_model="numpy" (IEEE division, as inside prange loops) keeps divisions such as the
sigmoid's and Adam's vectorisable (with Python's error model Adam ran 11x slower).
"""
import numpy as np
from numba import njit

from .._cache import harden_caches
from ..config import CACHE, INTERNAL
from ..formulas import (activate, activation_grad, adam_step, dropout, is_kept,
                        momentum_step, rmsprop_step, sgd_step)

_JIT = INTERNAL


# ----------------------------------------------------------------------------- activations

@njit(**_JIT)
def activate_row(src, code, dst):
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


@njit(**_JIT)
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


@njit(**_JIT)
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


@njit(**_JIT)
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


@njit(**_JIT)
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


# ----------------------------------------------------------------------------- dropout

@njit(**_JIT)
def dropout_row(src, base, key, threshold, keep_prob, dst):
    """dst = src / keep_prob where kept, else src * 0; base = row-major index of src[0]."""
    for j in range(src.shape[0]):
        dst[j] = dropout(src[j], is_kept(key, base + np.uint64(j), threshold), keep_prob)


@njit(**_JIT)
def dropout_inplace(row, base, key, threshold, keep_prob):
    for j in range(row.shape[0]):
        row[j] = dropout(row[j], is_kept(key, base + np.uint64(j), threshold), keep_prob)


@njit(**_JIT)
def backward_row(d, a, code, apply_dropout, base, key, threshold, keep_prob, in_place,
                 dst):
    """dst = d through the dropout mask (base: row-major index of the row's first
    element), then times activation'(from a); in_place: dst is d."""
    if in_place:
        if apply_dropout:
            dropout_inplace(dst, base, key, threshold, keep_prob)
        grad_inplace(dst, a, code)
    else:
        if apply_dropout:
            dropout_row(d, base, key, threshold, keep_prob, dst)
            grad_inplace(dst, a, code)
        else:
            grad_row(d, a, code, dst)


# ----------------------------------------------------------------------------- sums

@njit(**_JIT)
def copy_row(src, dst):
    # a loop, not dst[:] = src: slice assignment compiles Numba's general broadcasting
    # copy into every kernel that uses it
    for j in range(src.shape[0]):
        dst[j] = src[j]


@njit(**_JIT)
def accumulate_row(src, acc):
    for j in range(src.shape[0]):
        acc[j] += src[j]


@njit(**_JIT)
def sum_squares(p):
    """sum(p**2) in float64, in 8 fixed partial sums (vectorises; one running sum is a
    dependency chain 3x slower): the L2 term's sum."""
    n = p.shape[0]
    n8 = n - n % 8
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    for j in range(0, n8, 8):
        w0, w1 = np.float64(p[j]), np.float64(p[j + 1])
        w2, w3 = np.float64(p[j + 2]), np.float64(p[j + 3])
        w4, w5 = np.float64(p[j + 4]), np.float64(p[j + 5])
        w6, w7 = np.float64(p[j + 6]), np.float64(p[j + 7])
        s0 += w0 * w0
        s1 += w1 * w1
        s2 += w2 * w2
        s3 += w3 * w3
        s4 += w4 * w4
        s5 += w5 * w5
        s6 += w6 * w6
        s7 += w7 * w7
    for j in range(n8, n):
        w = np.float64(p[j])
        s0 += w * w
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(**_JIT)
def add_scaled(dst, c, src):
    """dst += c * src (the L2 gradient (lambda / m) W added to dW)."""
    for j in range(dst.shape[0]):
        dst[j] += c * src[j]


# ----------------------------------------------------------------------------- optimizers
# One flat range of parameters, gradients and state; scalars in the parameters' dtype.

@njit(**_JIT)
def sgd_range(p, g, lr, wd):
    for j in range(p.shape[0]):
        p[j] = sgd_step(p[j], g[j], lr, wd)


@njit(**_JIT)
def momentum_range(p, g, v, lr, beta, one_minus_beta, wd, a, c):
    for j in range(p.shape[0]):
        p[j], v[j] = momentum_step(p[j], g[j], v[j], lr, beta, one_minus_beta, wd, a, c)


@njit(**_JIT)
def rmsprop_range(p, g, s, lr, beta2, one_minus_beta2, eps, wd):
    for j in range(p.shape[0]):
        p[j], s[j] = rmsprop_step(p[j], g[j], s[j], lr, beta2, one_minus_beta2, eps, wd)


@njit(**_JIT)
def adam_range(p, g, m, v, step_size, beta1, one_minus_beta1, beta2, one_minus_beta2,
               inv_sqrt_bc2, eps, wd, decay):
    for j in range(p.shape[0]):
        p[j], m[j], v[j] = adam_step(p[j], g[j], m[j], v[j], step_size, beta1,
                                     one_minus_beta1, beta2, one_minus_beta2,
                                     inv_sqrt_bc2, eps, wd, decay)



@njit(**_JIT)
def update_range(kind, p, g, s1, s2, h):
    """One update of parameters p (gradients g, state s1, s2) with the optimizer
    ``kind`` (formulas.OPTIMIZER_CODES) and its scalars h (``update_scalars``)."""
    dt = p.dtype.type
    if kind == 0:
        sgd_range(p, g, dt(h[0]), dt(h[6]))
    elif kind == 1 or kind == 2:
        momentum_range(p, g, s1, dt(h[0]), dt(h[1]), dt(h[2]), dt(h[6]), dt(h[7]), dt(h[8]))
    elif kind == 3:
        rmsprop_range(p, g, s1, dt(h[0]), dt(h[3]), dt(h[4]), dt(h[5]), dt(h[6]))
    else:
        adam_range(p, g, s1, s2, dt(h[0]), dt(h[1]), dt(h[2]), dt(h[3]), dt(h[4]),
                   dt(h[7]), dt(h[5]), dt(h[6]), dt(h[8]))


@njit(cache=CACHE, error_model="numpy", nogil=True)
def update_scalars(kind, lr, t, beta1, beta2, eps, weight_decay, eps_scaled):
    """The per-step scalars of an update, computed once (in float64) for all elements:
    (rate, beta1, 1 - beta1, beta2, 1 - beta2, eps, coupled decay, a, c) where, for Adam,
    rate = lr / (1 - beta1^t), a = 1 / sqrt(1 - beta2^t) and c = the decoupled decay
    factor (AdamW: 1 - lr weight_decay, coupled decay then 0); for Nesterov a, c =
    beta, 1 - beta and for momentum 1, 0 (p -= lr (a v + c g)). t counts this update.
    eps_scaled puts Adam's eps after the bias correction, as scikit-learn does."""
    rate, a, c, wd = lr, 1.0, 0.0, weight_decay
    if kind == 2:
        a, c = beta1, 1.0 - beta1
    elif kind >= 4:
        rate = lr / (1.0 - beta1 ** t)
        a = 1.0 / np.sqrt(1.0 - beta2 ** t)
        if eps_scaled:
            eps = eps * a
        c = 1.0
        if kind == 5:
            c, wd = 1.0 - lr * weight_decay, 0.0
    return (rate, beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps, wd, a, c)


harden_caches(__name__)
