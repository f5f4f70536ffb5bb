"""Optimizer updates in place, each one parallel Numba loop over a flat buffer.

N = number of parameters. param, grad and the state arrays are contiguous arrays of one
dtype and shape (a model's single flat parameter buffer, or any one tensor), or matching
lists of such arrays (one kernel call per tensor; Adam and AdamW update every tensor of the
list in one call, parallel over blocks of all of them). Scalars, bias corrections included, are
computed on the host in the parameters' dtype, so float32 updates run in float32.
``weight_decay`` is coupled L2 (g + weight_decay * param) except in adamw_update, where
it is decoupled (param -= lr * weight_decay * param before the Adam step).
"""
import numpy as np
from numba import njit, prange

from .._validation import check_update
from ..config import CACHE
from ._common import launch


@njit(parallel=True, cache=CACHE, error_model="numpy")
def _sgd(p, g, lr, wd):
    for i in prange(p.shape[0]):
        gi = g[i] + wd * p[i]
        p[i] -= lr * gi


@njit(parallel=True, cache=CACHE, error_model="numpy")
def _momentum(p, g, v, lr, beta, one_minus_beta, wd, a, c):
    # param -= lr * (a v + c g): (1, 0) for momentum, (beta, 1 - beta) for Nesterov.
    # Branch-free: a branch in the loop kept it scalar (kernels/adam.py).
    for i in prange(p.shape[0]):
        gi = g[i] + wd * p[i]
        vi = beta * v[i] + one_minus_beta * gi
        v[i] = vi
        p[i] -= lr * (a * vi + c * gi)


@njit(parallel=True, cache=CACHE, error_model="numpy")
def _rmsprop(p, g, s, lr, beta2, one_minus_beta2, eps, wd):
    for i in prange(p.shape[0]):
        gi = g[i] + wd * p[i]
        si = beta2 * s[i] + one_minus_beta2 * gi * gi
        s[i] = si
        p[i] -= lr * gi / (np.sqrt(si) + eps)


@njit(inline="always", cache=CACHE)
def _adam_one(pi, gi, mi, vi, step_size, beta1, one_minus_beta1, beta2, one_minus_beta2,
              inv_sqrt_bc2, eps, wd, decay):
    # step_size = lr / (1 - beta1^t) and inv_sqrt_bc2 = 1 / sqrt(1 - beta2^t) from the
    # host (one division and one sqrt per element, as in PyTorch); wd: coupled L2 (0 for
    # AdamW); decay = 1 - lr * weight_decay for AdamW's decoupled decay, 1 for Adam.
    # Branch-free so the loop vectorises (kernels/adam.py v1 vs v4).
    gi = gi + wd * pi
    mi = beta1 * mi + one_minus_beta1 * gi
    vi = beta2 * vi + one_minus_beta2 * gi * gi
    return decay * pi - step_size * mi / (np.sqrt(vi) * inv_sqrt_bc2 + eps), mi, vi


@njit(parallel=True, cache=CACHE, error_model="numpy")
def _adam(p, g, m, v, step_size, beta1, one_minus_beta1, beta2, one_minus_beta2,
          inv_sqrt_bc2, eps, wd, decay):
    # parallel over elements of one flat buffer
    for i in prange(p.shape[0]):
        p[i], m[i], v[i] = _adam_one(p[i], g[i], m[i], v[i], step_size, beta1,
                                     one_minus_beta1, beta2, one_minus_beta2, inv_sqrt_bc2,
                                     eps, wd, decay)


# Elements per work item when a list of tensors is updated in one call: small enough that
# the threads' shares of a model's blocks come out even (kernels/optim_tensors.py, a
# 784-512-256-10 model's six tensors: 4096 at or ahead of 16384 in three runs of four,
# 65536 15-30% slower).
TENSOR_BLOCK = 4096


@njit(parallel=True, cache=CACHE, error_model="numpy")
def _adam_tensors(P, G, M, V, step_size, beta1, one_minus_beta1, beta2, one_minus_beta2,
                  inv_sqrt_bc2, eps, wd, decay):
    # P, G, M, V: tuples of flat tensors; parallel over blocks of TENSOR_BLOCK elements of
    # all of them, so one call (one thread hand-off) updates a whole model's tensors
    n = len(P)
    first = np.zeros(n + 1, np.int64)   # first[t]: index of tensor t's first block
    for t in range(n):
        first[t + 1] = first[t] + (P[t].shape[0] + TENSOR_BLOCK - 1) // TENSOR_BLOCK
    for block in prange(first[n]):
        t = 0
        while first[t + 1] <= block:
            t += 1
        lo = (block - first[t]) * TENSOR_BLOCK
        hi = min(P[t].shape[0], lo + TENSOR_BLOCK)
        _adam_range(P[t][lo:hi], G[t][lo:hi], M[t][lo:hi], V[t][lo:hi], step_size, beta1,
                    one_minus_beta1, beta2, one_minus_beta2, inv_sqrt_bc2, eps, wd, decay)


@njit(cache=CACHE, error_model="numpy")
def _adam_range(p, g, m, v, step_size, beta1, one_minus_beta1, beta2, one_minus_beta2,
                inv_sqrt_bc2, eps, wd, decay):
    # one block of one tensor. error_model="numpy" (IEEE division, no ZeroDivisionError
    # check, as in prange loops) lets the loop vectorise: with Python's error model it
    # ran 11x slower.
    for i in range(p.shape[0]):
        p[i], m[i], v[i] = _adam_one(p[i], g[i], m[i], v[i], step_size, beta1,
                                     one_minus_beta1, beta2, one_minus_beta2, inv_sqrt_bc2,
                                     eps, wd, decay)


class TensorLists:
    """Matching lists of tensors (params, grads, then the optimizer's state) checked and
    flattened once, for an optimizer that updates the same arrays step after step.

    The update functions take one as ``param`` (with None for grad and the state). It
    holds the arrays it was made from; ``holds`` tells whether given lists are those very
    arrays, so a caller can reuse it without checking them again (the per-call checks
    cost about as much as a third of the update of a small model's tensors).
    """

    def __init__(self, param, grad, *state):
        names = {f"state{i}": s for i, s in enumerate(state)}
        self.groups = _groups(param, grad=grad, **names)
        self.arrays = [a for arrays in (param, grad, *state) for a in arrays]

    def holds(self, *lists):
        """True when ``lists`` (param, grad, state...) are the arrays this was made from."""
        arrays = self.arrays
        k = 0
        for lst in lists:
            for a in lst:
                if k == len(arrays) or a is not arrays[k]:
                    return False
                k += 1
        return k == len(arrays)


def _groups(param, **others):
    """[[flat param, flat others...], ...]: one group for a single array, one per tensor
    for matching lists. Checks shapes, dtypes and contiguity, naming the argument."""
    if isinstance(param, TensorLists):
        return param.groups
    if isinstance(param, np.ndarray):
        groups = [(param,) + tuple(others.values())]
    else:
        param = list(param)
        for name, o in others.items():
            if isinstance(o, np.ndarray) or len(o) != len(param):
                raise ValueError(f"{name} must be a list of {len(param)} arrays matching "
                                 f"the list param, got {type(o).__name__}")
        groups = list(zip(param, *others.values()))
    flat = []
    for group in groups:
        p = group[0]
        # the common case in one pass of cheap tests; the first failure is named below
        # (flags.carray: C-contiguous, aligned and writable)
        if not (type(p) is np.ndarray and p.dtype.type in _FLOATS and all(
                type(a) is np.ndarray and a.shape == p.shape and a.dtype == p.dtype
                and a.flags.carray for a in group)):
            _check_group(group, ("param",) + tuple(others))
        flat.append([a if a.ndim == 1 else a.reshape(-1) for a in group])
    return flat


_FLOATS = (np.float32, np.float64)


def _check_group(group, names):
    """Raise naming the first array of ``group`` the kernels cannot take."""
    p = group[0]
    if not isinstance(p, np.ndarray) or p.dtype.type not in _FLOATS:
        raise TypeError("param must be float32 or float64 arrays, got "
                        f"{getattr(p, 'dtype', type(p).__name__)}")
    for name, a in zip(names, group):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
        if a.shape != p.shape:
            raise ValueError(f"{name} must have the shape of param {p.shape}, "
                             f"got {a.shape}")
        if a.dtype != p.dtype:
            raise TypeError(f"{name} has dtype {a.dtype} but param is {p.dtype}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous (updated through a flat view)")
        if name != "grad" and not a.flags.writeable:
            raise ValueError(f"{name} must be writable (updated in place)")


def sgd_update(param, grad, lr, weight_decay=0.0):
    """param -= lr * (grad + weight_decay * param), in place.

    ``param``, ``grad``: one contiguous array, or matching lists of them.
    """
    lr, wd = check_update(lr, weight_decay)
    for p, g in _groups(param, grad=grad):
        t = p.dtype.type
        launch(_sgd, p, g, t(lr), t(wd))


def momentum_update(param, grad, velocity, lr, beta=0.9, weight_decay=0.0):
    """v = beta * v + (1 - beta) * g; param -= lr * v (in place)."""
    _momentum_like(param, grad, velocity, lr, beta, weight_decay, False)


def nesterov_update(param, grad, velocity, lr, beta=0.9, weight_decay=0.0):
    """v = beta * v + (1 - beta) * g; param -= lr * (beta * v + (1 - beta) * g)."""
    _momentum_like(param, grad, velocity, lr, beta, weight_decay, True)


def _momentum_like(param, grad, velocity, lr, beta, weight_decay, nesterov):
    lr, wd, beta = check_update(lr, weight_decay, beta=beta)
    for p, g, v in _groups(param, grad=grad, velocity=velocity):
        t = p.dtype.type
        a, c = (beta, 1 - beta) if nesterov else (1.0, 0.0)
        launch(_momentum, p, g, v, t(lr), t(beta), t(1 - beta), t(wd), t(a), t(c))


def rmsprop_update(param, grad, sq_avg, lr, beta2=0.999, eps=1e-8, weight_decay=0.0):
    """s = beta2 * s + (1 - beta2) * g^2; param -= lr * g / (sqrt(s) + eps)."""
    lr, wd, beta2, eps = check_update(lr, weight_decay, beta2=beta2, eps=eps)
    for p, g, s in _groups(param, grad=grad, sq_avg=sq_avg):
        t = p.dtype.type
        launch(_rmsprop, p, g, s, t(lr), t(beta2), t(1 - beta2), t(eps), t(wd))


def adam_update(param, grad, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                weight_decay=0.0):
    """Adam with bias correction, in place; ``step`` is t >= 1 counting this update.

    m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
    param -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps).
    """
    _adam_like(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, False)


def adamw_update(param, grad, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                 weight_decay=0.01):
    """AdamW: param -= lr * weight_decay * param, then the Adam step on the raw gradient."""
    _adam_like(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, True)


def _adam_like(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    lr, wd, step, beta1, beta2, eps = check_update(lr, weight_decay, step=step, beta1=beta1,
                                                    beta2=beta2, eps=eps)
    coupled, decay = (0.0, 1.0 - lr * wd) if decoupled else (wd, 1.0)
    step_size = lr / (1 - beta1**step)
    inv_sqrt_bc2 = 1 / np.sqrt(1 - beta2**step)
    groups = _groups(param, grad=grad, m=m, v=v)

    def scalars(t):   # in the parameters' dtype
        return (t(step_size), t(beta1), t(1 - beta1), t(beta2), t(1 - beta2),
                t(inv_sqrt_bc2), t(eps), t(coupled), t(decay))

    if len(groups) > 1 and len({p.dtype for p, *_ in groups}) == 1:
        launch(_adam_tensors, *(tuple(arrays) for arrays in zip(*groups)),
               *scalars(groups[0][0].dtype.type))
        return
    for p, g, m_, v_ in groups:
        launch(_adam, p, g, m_, v_, *scalars(p.dtype.type))
