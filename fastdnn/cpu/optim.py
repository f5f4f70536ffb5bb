"""Optimizer updates in place, on the engine's threads.

N = number of parameters. param, grad and the state arrays are contiguous arrays of one
dtype and shape (a model's single flat parameter buffer, or any one tensor), or matching
lists of such arrays. Each element is updated by the formulas of fastdnn.formulas through
fastdnn.cpu._rows.update_range, the very call the training engine makes, with the
per-step scalars (bias corrections included) of _rows.update_scalars computed once, so
float32 updates run in float32. ``weight_decay`` is coupled L2 (g + weight_decay * param)
except in adamw_update, where it is decoupled (param -= lr * weight_decay * param first).

A call hands its elements out in blocks (of one array, or across all tensors of matching
lists) as tickets to the pool's threads (fastdnn.engine.pool), the caller's
thread among them, so no thread waits for another that is descheduled or stalled by a
BLAS library's spinning workers; an update of fewer than SMALL elements runs on the
calling thread alone.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np
from numba import njit
from numba.typed import List
from numpy.typing import NDArray

from .._cache import harden_caches
from .._validation import check_own_memory, check_update, finite_checks_on
from ..config import CACHE
from ..engine.pool import claim, close, default_pool, finish
from ..engine.threads import current_threads
from ..formulas import OPTIMIZER_CODES
from ._common import check_finite, holds_nonfinite
from ._rows import update_range, update_scalars

# Elements per ticket. One array: large blocks keep each thread streaming through memory
# (1e6 float32 Adam on 2 threads, medians of 7 interleaved rounds: blocks of 4096 took
# 676 us, 16384 518 us, 65536 408 us; 1.6e7: 16.4, 14.5, 15.0 ms). Lists of tensors:
# small enough that the threads' shares of a model's tensors come out even
# (kernels/optim_tensors.py, a 784-512-256-10 model's six tensors: 4096 at or ahead of
# 16384 in three runs of four, 65536 15-30% slower).
BLOCK = 65536
LIST_BLOCK = 4096
# Fewer elements than this run on the calling thread alone: waking a worker costs about
# 20 us, the update of 2^17 float32 parameters about 90 us of one core.
SMALL = 2**17

#: What the update functions take as param, grad and state: one array, or matching
#: lists of arrays.
Tensors = Union[NDArray[np.floating], Sequence[NDArray[np.floating]]]


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _update_array(ctl, gen, kind, p, g, s1, s2, hyper, block, tid):
    # tickets: blocks of ``block`` elements of one flat array; hyper: update_scalars' inputs
    h = update_scalars(kind, *hyper)
    n = p.shape[0]
    while True:
        t = claim(ctl, gen)
        if t < 0:
            break
        lo = t * block
        hi = min(n, lo + block)
        update_range(kind, p[lo:hi], g[lo:hi], s1[lo:hi], s2[lo:hi], h)
        finish(ctl)
    if tid == 0:
        close(ctl, gen)


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _update_lists(ctl, gen, kind, P, G, S1, S2, blocks, hyper, tid):
    # tickets: rows of blocks (tensor, first, end) of LIST_BLOCK elements across all
    # tensors of the lists
    h = update_scalars(kind, *hyper)
    while True:
        t = claim(ctl, gen)
        if t < 0:
            break
        i, lo, hi = blocks[t, 0], blocks[t, 1], blocks[t, 2]
        update_range(kind, P[i][lo:hi], G[i][lo:hi], S1[i][lo:hi], S2[i][lo:hi], h)
        finish(ctl)
    if tid == 0:
        close(ctl, gen)


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _nonfinite_blocks(ctl, gen, G, blocks, bad, tid):
    # tickets: the blocks of the lists; bad[0] is set when a block holds NaN or inf
    while True:
        t = claim(ctl, gen)
        if t < 0:
            break
        if holds_nonfinite(G[blocks[t, 0]][blocks[t, 1]:blocks[t, 2]]):
            bad[0] = 1
        finish(ctl)
    if tid == 0:
        close(ctl, gen)


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _nonfinite_array(ctl, gen, g, block, bad, tid):
    # tickets: blocks of ``block`` elements of one flat array; bad[0] as above
    n = g.shape[0]
    while True:
        t = claim(ctl, gen)
        if t < 0:
            break
        if holds_nonfinite(g[t * block:min(n, (t + 1) * block)]):
            bad[0] = 1
        finish(ctl)
    if tid == 0:
        close(ctl, gen)


def _check_grads_finite(groups, lists):
    """Raise before anything is updated when a gradient holds NaN or inf: one read of
    the gradients, skipped where finite checks are off (fastdnn.config.CHECK_FINITE)."""
    if not finite_checks_on():
        return
    # on the pool's threads, as the update runs (a parallel Numba kernel would run on
    # one thread beside NumPy's spinning BLAS: fastdnn.cpu._common.launch)
    bad = np.zeros(1, np.int64)
    if lists is not None:
        threads = current_threads() if lists.size >= SMALL else 1
        default_pool().run(_nonfinite_blocks, (lists.typed[1], lists.blocks, bad),
                           len(lists.blocks), threads)
    else:
        for group in groups:
            g = group[1]
            threads = current_threads() if g.shape[0] >= SMALL else 1
            default_pool().run(_nonfinite_array, (g, BLOCK, bad), -(-g.shape[0] // BLOCK),
                               threads)
    if not bad[0]:
        return
    for i, group in enumerate(groups):   # name the first bad value
        check_finite("grad" if len(groups) == 1 else f"grad[{i}]", group[1])


def _run(name, groups, scalars, lists=None):
    """Update every group [param, grad, state...] of ``groups`` (flat arrays)."""
    kind = OPTIMIZER_CODES[name]
    h = scalars   # floats, then a bool: update_scalars' inputs after kind
    if lists is None and len(groups) > 1 and len({grp[0].dtype for grp in groups}) == 1:
        lists = _Lists(groups)
    _check_grads_finite(groups, lists)
    if lists is not None:
        threads = current_threads() if lists.size >= SMALL else 1
        default_pool().run(_update_lists, (kind, *lists.typed, lists.blocks, h),
                           len(lists.blocks), threads)
        return
    for group in groups:
        p, g = group[0], group[1]
        s1 = group[2] if len(group) > 2 else p[:0]
        s2 = group[3] if len(group) > 3 else p[:0]
        threads = current_threads() if p.shape[0] >= SMALL else 1
        default_pool().run(_update_array, (kind, p, g, s1, s2, h, BLOCK),
                           -(-p.shape[0] // BLOCK), threads)


class _Lists:
    """Groups of flat tensors as Numba lists (param, grad, state 1, state 2) and the table
    of their blocks: made once per set of arrays (making the lists costs ~50 us)."""

    def __init__(self, groups):
        columns = list(zip(*groups))
        while len(columns) < 4:
            columns.append(columns[0])   # no such state: never touched by the update
        self.typed = tuple(List(c) for c in columns)
        self.blocks = np.array([(i, lo, min(lo + LIST_BLOCK, grp[0].shape[0]))
                                for i, grp in enumerate(groups)
                                for lo in range(0, grp[0].shape[0], LIST_BLOCK)],
                               np.int64).reshape(-1, 3)
        self.size = sum(grp[0].shape[0] for grp in groups)


class TensorLists:
    """Matching lists of tensors checked and flattened once, for repeated updates.

    For an optimizer that updates the same arrays step after step. The update functions
    take one as ``param`` (with None for grad and the state). It holds the arrays it was
    made from; ``holds`` tells whether given lists are those very arrays, so a caller can
    reuse it without checking them again (the per-call checks cost about as much as a
    third of the update of a small model's tensors).

    Parameters
    ----------
    param : list of arrays
        The parameters: contiguous, writable float32 or float64 arrays.
    grad : list of arrays
        Their gradients, matching shapes and dtypes.
    *state : lists of arrays
        The optimizer's state arrays (velocity, moments), matching too.
    """

    def __init__(self, param: Sequence[NDArray[np.floating]],
                 grad: Sequence[NDArray[np.floating]],
                 *state: Sequence[NDArray[np.floating]]) -> None:
        names = {f"state{i}": s for i, s in enumerate(state)}
        self.groups = _groups(param, grad=grad, **names)
        self.arrays = [a for arrays in (param, grad, *state) for a in arrays]
        same = len({grp[0].dtype for grp in self.groups}) == 1
        self.lists = _Lists(self.groups) if same and len(self.groups) > 1 else None

    def holds(self, *lists: Sequence[NDArray[np.floating]]) -> bool:
        """Whether ``lists`` hold the very arrays this was made from, in order.

        Parameters
        ----------
        *lists : lists of arrays
            param, grad, then the state, as given to the constructor.

        Returns
        -------
        bool
            True when every array is the same object (not merely equal).
        """
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
                and a.flags.carray for a in group)) or _overlapping(group):
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
    check_own_memory(zip(names, group))


def _overlapping(group):
    """Whether two arrays of ``group`` may share memory (bounds only: cheap)."""
    return any(np.may_share_memory(a, b) for i, a in enumerate(group)
               for b in group[i + 1:])


def sgd_update(param: Tensors | TensorLists, grad: Tensors | None, lr: float,
               weight_decay: float = 0.0) -> None:
    """Gradient descent, in place: param -= lr * (grad + weight_decay * param).

    Parameters
    ----------
    param : array, list of arrays, or TensorLists
        The parameters, updated in place: one contiguous float32 or float64 array,
        matching lists of them, or a TensorLists made of them (then the other array
        arguments are None).
    grad : array, list of arrays, or None
        Their gradient, matching ``param`` (finite).
    lr : float >= 0
        The learning rate.
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    """
    lr, wd = check_update(lr, weight_decay)
    _run("sgd", _groups(param, grad=grad), (lr, 1.0, 0.0, 0.0, 1.0, wd, False),
         _lists_of(param))


def momentum_update(param: Tensors | TensorLists, grad: Tensors | None,
                    velocity: Tensors | None, lr: float, beta: float = 0.9,
                    weight_decay: float = 0.0) -> None:
    """Momentum, in place: v = beta * v + (1 - beta) * g; param -= lr * v.

    Parameters
    ----------
    param : array, list of arrays, or TensorLists
        The parameters, updated in place: one contiguous float32 or float64 array,
        matching lists of them, or a TensorLists made of them (then the other array
        arguments are None).
    grad : array, list of arrays, or None
        Their gradient, matching ``param`` (finite).
    velocity : array, list of arrays, or None
        v, updated in place.
    lr : float >= 0
        The learning rate.
    beta : float in [0, 1), default 0.9
        The weight of the previous velocity.
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    """
    _momentum_like(param, grad, velocity, lr, beta, weight_decay, "momentum")


def nesterov_update(param: Tensors | TensorLists, grad: Tensors | None,
                    velocity: Tensors | None, lr: float, beta: float = 0.9,
                    weight_decay: float = 0.0) -> None:
    """Nesterov momentum, in place.

    v = beta * v + (1 - beta) * g; param -= lr * (beta * v + (1 - beta) * g).

    Parameters
    ----------
    param : array, list of arrays, or TensorLists
        The parameters, updated in place: one contiguous float32 or float64 array,
        matching lists of them, or a TensorLists made of them (then the other array
        arguments are None).
    grad : array, list of arrays, or None
        Their gradient, matching ``param`` (finite).
    velocity : array, list of arrays, or None
        v, updated in place.
    lr : float >= 0
        The learning rate.
    beta : float in [0, 1), default 0.9
        The weight of the previous velocity.
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    """
    _momentum_like(param, grad, velocity, lr, beta, weight_decay, "nesterov")


def _momentum_like(param, grad, velocity, lr, beta, weight_decay, name):
    lr, wd, beta = check_update(lr, weight_decay, beta=beta)
    _run(name, _groups(param, grad=grad, velocity=velocity),
         (lr, 1.0, beta, 0.0, 1.0, wd, False), _lists_of(param))


def rmsprop_update(param: Tensors | TensorLists, grad: Tensors | None,
                   sq_avg: Tensors | None, lr: float, beta2: float = 0.999,
                   eps: float = 1e-8, weight_decay: float = 0.0) -> None:
    """RMSprop, in place.

    s = beta2 * s + (1 - beta2) * g^2; param -= lr * g / (sqrt(s) + eps).

    Parameters
    ----------
    param : array, list of arrays, or TensorLists
        The parameters, updated in place: one contiguous float32 or float64 array,
        matching lists of them, or a TensorLists made of them (then the other array
        arguments are None).
    grad : array, list of arrays, or None
        Their gradient, matching ``param`` (finite).
    sq_avg : array, list of arrays, or None
        s, updated in place.
    lr : float >= 0
        The learning rate.
    beta2 : float in [0, 1), default 0.999
        The weight of the previous average.
    eps : float > 0, default 1e-8
        Added to sqrt(s).
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    """
    lr, wd, beta2, eps = check_update(lr, weight_decay, beta2=beta2, eps=eps)
    _run("rmsprop", _groups(param, grad=grad, sq_avg=sq_avg),
         (lr, 1.0, 0.0, beta2, eps, wd, False), _lists_of(param))


def adam_update(param: Tensors | TensorLists, grad: Tensors | None, m: Tensors | None,
                v: Tensors | None, step: int, lr: float, beta1: float = 0.9,
                beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0) -> None:
    """Adam with bias correction, in place.

    m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
    param -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps).

    Parameters
    ----------
    param : array, list of arrays, or TensorLists
        The parameters, updated in place: one contiguous float32 or float64 array,
        matching lists of them, or a TensorLists made of them (then the other array
        arguments are None).
    grad : array, list of arrays, or None
        Their gradient, matching ``param`` (finite).
    m, v : arrays, lists of arrays, or None
        The first and second moment averages, updated in place.
    step : int >= 1
        t, the number of updates including this one.
    lr : float >= 0
        The learning rate.
    beta1, beta2 : float in [0, 1), default 0.9 and 0.999
        The weights of the previous averages.
    eps : float > 0, default 1e-8
        Added to the corrected sqrt(v).
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    """
    _adam_like(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, "adam")


def adamw_update(param: Tensors | TensorLists, grad: Tensors | None, m: Tensors | None,
                 v: Tensors | None, step: int, lr: float, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.01) -> None:
    """AdamW: param -= lr * weight_decay * param, then the Adam step on the raw gradient.

    Parameters
    ----------
    param : array, list of arrays, or TensorLists
        The parameters, updated in place: one contiguous float32 or float64 array,
        matching lists of them, or a TensorLists made of them (then the other array
        arguments are None).
    grad : array, list of arrays, or None
        Their gradient, matching ``param`` (finite).
    m, v : arrays, lists of arrays, or None
        The first and second moment averages, updated in place.
    step : int >= 1
        t, the number of updates including this one.
    lr : float >= 0
        The learning rate.
    beta1, beta2 : float in [0, 1), default 0.9 and 0.999
        The weights of the previous averages.
    eps : float > 0, default 1e-8
        Added to the corrected sqrt(v).
    weight_decay : float >= 0, default 0.01
        Decoupled decay, applied before the Adam step.
    """
    _adam_like(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, "adamw")


def _adam_like(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, name):
    lr, wd, step, beta1, beta2, eps = check_update(lr, weight_decay, step=step, beta1=beta1,
                                                    beta2=beta2, eps=eps)
    _run(name, _groups(param, grad=grad, m=m, v=v),
         (lr, float(step), beta1, beta2, eps, wd, False), _lists_of(param))


def _lists_of(param):
    return param.lists if isinstance(param, TensorLists) else None


harden_caches(__name__)
