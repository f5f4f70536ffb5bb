"""Inverted dropout with counter-based masks (fastdnn.rng), as parallel Numba loops.

A: (m, n) activations; element (i, j) is kept when the hash of key + i * n + j falls
below the threshold, so the mask equals fastdnn.reference.dropout_mask bit for bit.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from .._cache import harden_caches
from .._validation import check_dims, check_float_array
from ..config import CACHE
from ..formulas import is_kept
from ._common import buffer, contiguous, dropout_args, launch
from ._rows import dropout_row


@njit(parallel=True, cache=CACHE, error_model="numpy")
def _dropout_mask(m, n, key, threshold, out):
    # parallel over rows
    for i in prange(m):
        base = np.uint64(i * n)
        for j in range(n):
            out[i, j] = is_kept(key, base + np.uint64(j), threshold)


@njit(parallel=True, cache=CACHE, error_model="numpy")
def _dropout(A, key, threshold, keep, out):
    # parallel over rows
    m, n = A.shape
    for i in prange(m):
        dropout_row(A[i], np.uint64(i * n), key, threshold, keep, out[i])


def _rows(shape):
    shape = tuple(int(s) for s in np.atleast_1d(shape)) if not isinstance(shape, int) \
        else (int(shape),)
    return (shape[0] if shape else 1), (int(np.prod(shape[1:])) if len(shape) > 1 else 1)


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
        fastdnn.reference.dropout_mask's, bit for bit.
    """
    shape = check_dims("shape", shape)
    _, key, threshold, _ = dropout_args(keep_prob, key, np.dtype(np.float64))
    m, n = _rows(shape)
    mask = np.empty((m, n), dtype=np.bool_)
    launch(_dropout_mask, m, n, key, threshold, mask)
    return mask.reshape(shape)


def dropout_forward(A: NDArray[np.floating], keep_prob: float, key: int, *,
                    out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """Zero the dropped units and scale the kept ones by 1 / keep_prob.

    Parameters
    ----------
    A : float32 or float64 array
        Activations, any shape (computed as (m, -1)).
    keep_prob : float in (0, 1]
        The probability of keeping a unit (1: a copy of A).
    key : int
        The dropout key.
    out : array of A's shape and dtype, optional
        A writable C-contiguous buffer for the result.

    Returns
    -------
    array of A's shape and dtype
        The kept units of A divided by keep_prob, zeros elsewhere; ``out`` when given.
    """
    check_float_array("A", A)
    apply, key, threshold, keep = dropout_args(keep_prob, key, A.dtype)
    A = contiguous(A)
    out = buffer("out", out, A.shape, A.dtype)
    if not apply:
        np.copyto(out, A)
        return out
    m = A.shape[0]
    launch(_dropout, A.reshape(m, -1), key, threshold, keep, out.reshape(m, -1))
    return out


def dropout_backward(dA: NDArray[np.floating], keep_prob: float, key: int, *,
                     out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """Gradient through dropout: the same mask and scale as forward.

    Parameters
    ----------
    dA : float32 or float64 array
        Gradient with respect to dropout's output.
    keep_prob, key
        As in the forward pass.
    out : array of dA's shape and dtype, optional
        A writable C-contiguous buffer for the result.

    Returns
    -------
    array of dA's shape and dtype
        ``out`` when given.
    """
    return dropout_forward(dA, keep_prob, key, out=out)


harden_caches(__name__)
