"""Inverted dropout with masks from the counter-based hash of fastdnn.rng.

A: (m, n) activations. The mask of element (i, j) depends only on
(key, i * n + j), so backward regenerates the forward mask exactly.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .._validation import check_dims, check_float_array, check_keep_prob, check_key, emit
from ..rng import GOLDEN_GAMMA, MIX1, MIX2, keep_threshold

_U = np.uint64


def splitmix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Vectorised SplitMix64 of a uint64 array (wrapping arithmetic).

    Parameters
    ----------
    x : uint64 array
        The counters.

    Returns
    -------
    uint64 array of x's shape
        Their hashes.
    """
    with np.errstate(over="ignore"):
        z = x + _U(GOLDEN_GAMMA)
        z = (z ^ (z >> _U(30))) * _U(MIX1)
        z = (z ^ (z >> _U(27))) * _U(MIX2)
        return z ^ (z >> _U(31))


def dropout_mask(shape: int | tuple[int, ...], keep_prob: float,
                 key: int) -> NDArray[np.bool_]:
    """Boolean keep-mask of ``shape`` for one layer and step (True = kept).

    Parameters
    ----------
    shape : int or tuple of int
        The activations' shape.
    keep_prob : float in (0, 1]
        The probability of keeping a unit.
    key : int
        The dropout key (fastdnn.rng.dropout_key(seed, step, layer)).

    Returns
    -------
    mask : bool array of ``shape``
        Element i (row-major) is kept when the hash of key + i is below the threshold.
    """
    shape = check_dims("shape", shape)
    keep_prob = check_keep_prob("keep_prob", keep_prob)
    index = np.arange(int(np.prod(shape)), dtype=np.uint64).reshape(shape)
    bits = splitmix64(index + _U(check_key("key", key))) >> _U(32)
    return bits < _U(keep_threshold(keep_prob))


def dropout_forward(A: NDArray[np.floating], keep_prob: float, key: int, *,
                    out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """Zero the dropped units and scale the kept ones by 1 / keep_prob.

    Parameters
    ----------
    A : float32 or float64 array
        Activations, any shape.
    keep_prob : float in (0, 1]
        The probability of keeping a unit (1: a copy of A).
    key : int
        The dropout key.
    out : array of A's shape, optional
        Buffer the result is copied into.

    Returns
    -------
    array of A's shape and dtype
        A * mask / keep_prob; ``out`` when given.
    """
    return _apply("A", A, keep_prob, key, out)


def dropout_backward(dA: NDArray[np.floating], keep_prob: float, key: int, *,
                     out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """Gradient through dropout: the same mask and scale as forward.

    Parameters
    ----------
    dA : float32 or float64 array
        Gradient with respect to dropout's output.
    keep_prob, key
        As in the forward pass.
    out : array of dA's shape, optional
        Buffer the result is copied into.

    Returns
    -------
    array of dA's shape and dtype
        dA * mask / keep_prob; ``out`` when given.
    """
    return _apply("dA", dA, keep_prob, key, out)


def _apply(name, A, keep_prob, key, out):
    check_float_array(name, A)
    check_key("key", key)
    if check_keep_prob("keep_prob", keep_prob) == 1.0:
        return emit(A.copy(), out)
    mask = dropout_mask(A.shape, keep_prob, key)
    return emit(A * mask / A.dtype.type(keep_prob), out)
