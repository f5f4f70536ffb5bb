"""Dense layer on the CPU: one BLAS product plus one fused Numba pass each way.

m = batch size, n_in, n_out = layer widths.
X: (m, n_in), W: (n_out, n_in), b: (n_out,) or None, outputs and activations (m, n_out).

Forward:  act = activation(X @ W.T + b) and out = dropout(act), the product written
          straight into ``act`` by BLAS, then bias, activation and dropout in one pass.
Backward: dZ = d_out * mask / keep_prob * activation'(act) and db in one pass; then
          dW = dZ.T @ X (+ (lambd / m) W) and dX = dZ @ W by BLAS.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from .._cache import harden_caches
from .._validation import check_float_array, check_real, check_same_dtype, check_shape
from ..config import CACHE, REDUCTION_CHUNK
from ._blas import matmul
from ._common import (activation_code, buffer, check_finite, contiguous, dropout_args,
                      launch, reusable, specialised)
from ._rows import (accumulate_row, activate_inplace, backward_row, bias_activate_inplace,
                    copy_row, dropout_row)


@specialised
def _forward_epilogue(code, dropout, with_bias):
    @njit(parallel=True, cache=CACHE, error_model="numpy")
    def kernel(act, b, key, threshold, keep, out):
        # act holds X @ W.T on entry; parallel over rows. out may be act itself (then
        # without dropout nothing is copied).
        m, n = act.shape
        for i in prange(m):
            row = act[i]
            if with_bias:
                bias_activate_inplace(row, b, code)
            else:
                activate_inplace(row, code)
            if dropout:
                dropout_row(row, np.uint64(i * n), key, threshold, keep, out[i])
            elif out.ctypes.data != act.ctypes.data:
                copy_row(row, out[i])
    return kernel


@specialised
def _backward_epilogue(code, dropout, in_place):
    @njit(parallel=True, cache=CACHE, error_model="numpy")
    def kernel(d_out, act, key, threshold, keep, with_bias, dZ, db):
        # dZ = d_out * mask / keep_prob * act'(act), parallel over chunks of REDUCTION_CHUNK
        # rows; db = per-chunk column sums merged in chunk order on one thread. The sums
        # depend on the chunk size only, never on the thread count. in_place: dZ is d_out.
        m, n = act.shape
        nchunks = (m + REDUCTION_CHUNK - 1) // REDUCTION_CHUNK
        # np.empty, zeroed in the loop: np.zeros would be a parallel region (and a compiled
        # gufunc) of its own
        partial = np.empty((nchunks if with_bias else 0, n), dtype=dZ.dtype)
        for c in prange(nchunks):
            if with_bias:
                for j in range(n):
                    partial[c, j] = 0
            for i in range(c * REDUCTION_CHUNK, min(m, (c + 1) * REDUCTION_CHUNK)):
                row = dZ[i]
                backward_row(d_out[i], act[i], code, dropout, np.uint64(i * n), key,
                             threshold, keep, in_place, row)
                if with_bias:
                    accumulate_row(row, partial[c])
        if with_bias:
            for j in range(n):  # on one thread: a few adds per column, not worth a hand-off
                s = partial[0, j]
                for c in range(1, nchunks):
                    s += partial[c, j]
                db[j] = s
    return kernel


@njit(parallel=True, cache=CACHE, error_model="numpy")
def _add_scaled(dW, c, W):
    # dW += c * W, parallel over rows
    for i in prange(dW.shape[0]):
        for j in range(dW.shape[1]):
            dW[i, j] += c * W[i, j]


_EMPTY = {np.dtype(np.float32): np.zeros(1, np.float32),
          np.dtype(np.float64): np.zeros(1, np.float64)}


def dense_forward(X: NDArray[np.floating], W: NDArray[np.floating],
                  b: NDArray[np.floating] | None = None, activation: str = "identity",
                  keep_prob: float = 1.0, key: int = 0, *,
                  out: NDArray[np.floating] | None = None,
                  act_out: NDArray[np.floating] | None = None,
                  ) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """Forward pass of one dense layer.

    Parameters
    ----------
    X : (m, n_in) float32 or float64 array
        The layer's input (any strides; finite).
    W : (n_out, n_in) array of X's dtype
        Weights.
    b : (n_out,) array of X's dtype, optional
        Bias; None for none.
    activation : str, default "identity"
        One of fastdnn.formulas.ACTIVATION_CODES.
    keep_prob : float in (0, 1], default 1.0
        Dropout's keep probability; 1 turns dropout off.
    key : int, default 0
        The dropout key (fastdnn.rng.dropout_key(seed, step, layer)).
    out, act_out : (m, n_out) C-contiguous arrays of X's dtype, optional
        Buffers for the results.

    Returns
    -------
    out : (m, n_out) array
        dropout(activation(X @ W.T + b)). With keep_prob == 1 and no ``out`` buffer given
        this is ``act`` itself (no copy).
    act : (m, n_out) array
        activation(X @ W.T + b) before dropout, which backward needs.
    """
    _check_layer(X, W, b)
    check_finite("X", X)
    code = activation_code(activation)
    dropout, key, threshold, keep = dropout_args(keep_prob, key, X.dtype)
    shape = (X.shape[0], W.shape[0])
    act = buffer("act_out", act_out, shape, X.dtype)
    if out is None and not dropout:
        out = act
    else:
        out = buffer("out", out, shape, X.dtype)
    matmul(X, W, act, transpose_b=True)
    with_bias = b is not None
    if out is act and not (with_bias or dropout or code):
        return out, act  # a bare linear map (before BatchNorm): nothing to fuse
    launch(_forward_epilogue(code, dropout, with_bias), act,
           contiguous(b) if with_bias else _EMPTY[X.dtype], key, threshold, keep, out)
    return out, act


def dense_backward(d_out: NDArray[np.floating], X: NDArray[np.floating],
                   W: NDArray[np.floating], act: NDArray[np.floating],
                   activation: str = "identity", keep_prob: float = 1.0, key: int = 0,
                   lambd: float = 0.0, with_bias: bool = True, need_dX: bool = True, *,
                   dX_out: NDArray[np.floating] | None = None,
                   dW_out: NDArray[np.floating] | None = None,
                   db_out: NDArray[np.floating] | None = None,
                   dZ_out: NDArray[np.floating] | None = None,
                   ) -> tuple[NDArray[np.floating] | None, NDArray[np.floating],
                              NDArray[np.floating] | None]:
    """Backward pass of one dense layer.

    Parameters
    ----------
    d_out : (m, n_out) array of X's dtype
        Gradient of the loss with respect to the layer's output; overwritten with dZ
        when no ``dZ_out`` is given (and it is C-contiguous).
    X, W : arrays
        The forward pass's input and weights.
    act : (m, n_out) array of X's dtype
        The forward pass's ``act``.
    activation, keep_prob, key
        As in the forward pass (the same key regenerates the dropout mask).
    lambd : float >= 0, default 0.0
        Adds the L2 gradient (lambd / m) * W to dW.
    with_bias : bool, default True
        Compute db.
    need_dX : bool, default True
        Compute dX (False for the first layer).
    dX_out, dW_out, db_out, dZ_out : C-contiguous arrays of X's dtype, optional
        Buffers for dX, dW, db and dZ.

    Returns
    -------
    dX : (m, n_in) array or None
        None when ``need_dX`` is False.
    dW : (n_out, n_in) array
        dZ.T @ X + (lambd / m) * W.
    db : (n_out,) array or None
        None when ``with_bias`` is False.
    """
    _check_layer(X, W, None)
    check_float_array("d_out", d_out, ndim=2)
    check_shape("d_out", d_out, (X.shape[0], W.shape[0]))
    check_same_dtype("d_out", d_out, X.dtype)
    check_shape("act", act, (X.shape[0], W.shape[0]))
    check_same_dtype("act", act, X.dtype)
    lambd = check_real("lambd", lambd, 0.0)
    code = activation_code(activation)
    dropout, key, threshold, keep = dropout_args(keep_prob, key, X.dtype)
    m, n_in = X.shape
    n_out = W.shape[0]
    dtype = X.dtype
    db = buffer("db_out", db_out, (n_out,), dtype) if with_bias else None
    if not (with_bias or dropout or code) and d_out.flags.c_contiguous:
        dZ = d_out  # a bare linear map: dZ is d_out, no pass needed
    else:
        if dZ_out is None and reusable(d_out, dtype):
            dZ = d_out
        else:
            dZ = buffer("dZ_out", dZ_out, (m, n_out), dtype)
        d_out = contiguous(d_out)
        in_place = dZ.ctypes.data == d_out.ctypes.data
        launch(_backward_epilogue(code, dropout, in_place), d_out, contiguous(act), key,
               threshold, keep, with_bias, dZ, db if with_bias else _EMPTY[dtype])
    dW = buffer("dW_out", dW_out, (n_out, n_in), dtype)
    matmul(dZ, X, dW, transpose_a=True)
    if lambd:
        launch(_add_scaled, dW, dtype.type(lambd / m), contiguous(W))
    dX = None
    if need_dX:
        dX = buffer("dX_out", dX_out, (m, n_in), dtype)
        matmul(dZ, W, dX)
    return dX, dW, db


def _check_layer(X, W, b):
    check_float_array("X", X, ndim=2)
    check_float_array("W", W, ndim=2)
    check_same_dtype("W", W, X.dtype)
    if W.shape[1] != X.shape[1]:
        raise ValueError(
            f"W must have shape (n_out, {X.shape[1]}) to match X of shape {X.shape}, "
            f"got {W.shape}")
    if b is not None:
        check_float_array("b", b, ndim=1)
        check_shape("b", b, (W.shape[0],))
        check_same_dtype("b", b, X.dtype)


harden_caches(__name__)
