"""Activations and their derivatives as parallel Numba loops.

Z, A, dA: (m, n); m = batch size, n = layer width. Derivatives are taken from A.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from .._cache import harden_caches
from .._validation import check_float_array, check_same_dtype, check_shape
from ..config import CACHE
from ..reference.activations import ACTIVATIONS, DERIVATIVES  # noqa: F401 (registries)
from ._common import activation_code, buffer, contiguous, launch
from ._rows import activate_row, grad_row


@njit(parallel=True, cache=CACHE, error_model="numpy")
def _activation_forward(Z, code, out):
    # parallel over rows
    for i in prange(Z.shape[0]):
        activate_row(Z[i], code, out[i])


@njit(parallel=True, cache=CACHE, error_model="numpy")
def _activation_backward(dA, A, code, out):
    # parallel over rows
    for i in prange(A.shape[0]):
        grad_row(dA[i], A[i], code, out[i])


def _as_2d(x):
    return x.reshape(x.shape[0], -1) if x.ndim != 2 else x


def activation_forward(Z: NDArray[np.floating], activation: str, *,
                       out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """A = activation(Z), element-wise, parallel over rows.

    Parameters
    ----------
    Z : float32 or float64 array
        Pre-activations, any shape (computed as (m, -1)).
    activation : str
        One of fastdnn.formulas.ACTIVATION_CODES.
    out : array of Z's shape and dtype, optional
        A writable C-contiguous buffer for the result.

    Returns
    -------
    A : array of Z's shape and dtype
        ``out`` when given.
    """
    check_float_array("Z", Z)
    code = activation_code(activation)
    Z = contiguous(Z)
    out = buffer("out", out, Z.shape, Z.dtype)
    launch(_activation_forward, _as_2d(Z), code, _as_2d(out))
    return out


def activation_backward(dA: NDArray[np.floating], A: NDArray[np.floating], activation: str,
                        *, out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """dZ = dA * activation'(Z), with the derivative taken from A = activation(Z).

    Parameters
    ----------
    dA : float32 or float64 array of A's shape and dtype
        Gradient of the loss with respect to A.
    A : float32 or float64 array
        The forward output activation(Z).
    activation : str
        One of fastdnn.formulas.ACTIVATION_CODES.
    out : array of A's shape and dtype, optional
        A writable C-contiguous buffer for the result.

    Returns
    -------
    dZ : array of A's shape and dtype
        ``out`` when given.
    """
    check_float_array("A", A)
    check_float_array("dA", dA)
    check_shape("dA", dA, A.shape)
    check_same_dtype("dA", dA, A.dtype)
    code = activation_code(activation)
    dA, A = contiguous(dA), contiguous(A)
    out = buffer("out", out, A.shape, A.dtype)
    launch(_activation_backward, _as_2d(dA), _as_2d(A), code, _as_2d(out))
    return out


harden_caches(__name__)
