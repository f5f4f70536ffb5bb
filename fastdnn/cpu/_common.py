"""Helpers shared by the CPU kernels: argument-to-kernel conversions, output buffers,
the cheap finite check.

m = batch size, n = layer width.
"""
import numpy as np
from numba import njit, prange

from .. import config
from .._validation import check_keep_prob
from ..config import CACHE
from ..formulas import ACTIVATION_CODES
from ..rng import MASK64, keep_threshold


def activation_code(activation):
    """The integer code of an activation name (see fastdnn.formulas.ACTIVATION_CODES)."""
    try:
        return ACTIVATION_CODES[activation]
    except (KeyError, TypeError):
        raise ValueError(f"activation must be one of {sorted(ACTIVATION_CODES)}, "
                         f"got {activation!r}") from None


def dropout_args(keep_prob, key, dtype):
    """(apply, key, threshold, scale) as the kernels take them: uint64s and a dtype scalar."""
    keep_prob = check_keep_prob("keep_prob", keep_prob)
    apply = keep_prob < 1.0
    return (apply, np.uint64(int(key) & MASK64), np.uint64(keep_threshold(keep_prob)),
            dtype.type(1.0 / keep_prob))


def buffer(name, buf, shape, dtype):
    """``buf`` checked to be a writable C-contiguous array of ``shape`` and ``dtype``, or a
    new empty one when ``buf`` is None."""
    if buf is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(buf, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(buf).__name__}")
    if buf.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {buf.shape}")
    if buf.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {buf.dtype}")
    if not buf.flags.c_contiguous or not buf.flags.writeable:
        raise ValueError(f"{name} must be a writable C-contiguous array")
    return buf


def contiguous(x):
    """``x`` itself when C-contiguous, else a C-contiguous copy (kernels take C layout only,
    which keeps one compiled specialisation per dtype)."""
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


def reusable(x, dtype):
    """True when ``x`` can serve as an output buffer of ``dtype`` (C-contiguous, writable)."""
    return x.dtype == dtype and x.flags.c_contiguous and x.flags.writeable


@njit(parallel=True, cache=CACHE)
def _nonfinite_sum(x):
    # x * 0 is 0 for finite x and NaN for NaN or inf, so the sum is 0 exactly when all
    # are finite; one read pass, no temporary array. Parallel over rows.
    x2 = x.reshape(x.shape[0], -1)
    total = 0.0
    for i in prange(x2.shape[0]):
        s = 0.0
        for j in range(x2.shape[1]):
            s += x2[i, j] * 0
        total += s
    return total


def check_finite(name, x):
    """Raise ValueError naming ``x`` if it holds NaN or inf; skipped when
    fastdnn.config.CHECK_FINITE is False."""
    if not config.CHECK_FINITE:
        return x
    if _nonfinite_sum(contiguous(x)) != 0:
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(
            f"{name} contains NaN or inf (first at index {tuple(int(i) for i in bad)}); "
            "set fastdnn.config.CHECK_FINITE = False to skip this check")
    return x
