"""Inverted dropout with masks from the counter-based hash of fastdnn.rng.

A: (m, n) activations. The mask of element (i, j) depends only on
(key, i * n + j), so backward regenerates the forward mask exactly.
"""
import numpy as np

from .._validation import check_dims, check_float_array, check_keep_prob, check_key, emit
from ..rng import GOLDEN_GAMMA, MIX1, MIX2, keep_threshold

_U = np.uint64


def splitmix64(x):
    """Vectorised SplitMix64 of a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + _U(GOLDEN_GAMMA)
        z = (z ^ (z >> _U(30))) * _U(MIX1)
        z = (z ^ (z >> _U(27))) * _U(MIX2)
        return z ^ (z >> _U(31))


def dropout_mask(shape, keep_prob, key):
    """Boolean keep-mask of ``shape`` for one layer and step (True = kept)."""
    shape = check_dims("shape", shape)
    keep_prob = check_keep_prob("keep_prob", keep_prob)
    index = np.arange(int(np.prod(shape)), dtype=np.uint64).reshape(shape)
    bits = splitmix64(index + _U(check_key("key", key))) >> _U(32)
    return bits < _U(keep_threshold(keep_prob))


def dropout_forward(A, keep_prob, key, *, out=None):
    """Zero the dropped units and scale the kept ones by 1 / keep_prob."""
    return _apply("A", A, keep_prob, key, out)


def dropout_backward(dA, keep_prob, key, *, out=None):
    """Gradient through dropout: the same mask and scale as forward."""
    return _apply("dA", dA, keep_prob, key, out)


def _apply(name, A, keep_prob, key, out):
    check_float_array(name, A)
    check_key("key", key)
    if check_keep_prob("keep_prob", keep_prob) == 1.0:
        return emit(A.copy(), out)
    mask = dropout_mask(A.shape, keep_prob, key)
    return emit(A * mask / A.dtype.type(keep_prob), out)
