"""Dense layer: linear map, activation and inverted dropout.

m = batch size, n_in, n_out = layer widths.
X: (m, n_in), W: (n_out, n_in), b: (n_out,) or None, outputs (m, n_out).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .._validation import (check_finite, check_float_array, check_real, check_same_dtype,
                          check_shape, emit, finite_checks_on)
from .activations import activation_backward, activation_forward
from .dropout import dropout_backward, dropout_forward


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
        The layer's input (finite).
    W : (n_out, n_in) array of X's dtype
        Weights.
    b : (n_out,) array of X's dtype, optional
        Bias; None for none.
    activation : str, default "identity"
        A key of ACTIVATIONS.
    keep_prob : float in (0, 1], default 1.0
        Dropout's keep probability (1: no dropout).
    key : int, default 0
        The dropout key (fastdnn.rng.dropout_key(seed, step, layer)).
    out, act_out : (m, n_out) arrays, optional
        Buffers the results are copied into.

    Returns
    -------
    out : (m, n_out) array
        dropout(activation(X @ W.T + b)), the layer's output.
    act : (m, n_out) array
        activation(X @ W.T + b) before dropout, which backward needs.
    """
    _check_layer(X, W, b)
    Z = X @ W.T
    if b is not None:
        Z = Z + b
    act = emit(activation_forward(Z, activation), act_out)
    return emit(dropout_forward(act, keep_prob, key), out), act


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
    d_out : (m, n_out) array
        Gradient of the loss with respect to the layer's output; may be overwritten.
    X, W : arrays
        The forward pass's input and weights.
    act : (m, n_out) array
        The forward pass's ``act``.
    activation, keep_prob, key
        As in the forward pass (the same key regenerates the dropout mask).
    lambd : float >= 0, default 0.0
        Adds the L2 term's gradient (lambd / m) * W to dW, m = X.shape[0].
    with_bias : bool, default True
        Compute db.
    need_dX : bool, default True
        Compute dX (False for the first layer).
    dX_out, dW_out, db_out : arrays, optional
        Buffers the results are copied into.
    dZ_out : (m, n_out) array, optional
        Workspace that receives dZ.

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
    check_shape("d_out", d_out, (X.shape[0], W.shape[0]))
    check_shape("act", act, (X.shape[0], W.shape[0]))
    check_real("lambd", lambd, 0.0)
    dZ = activation_backward(dropout_backward(d_out, keep_prob, key), act, activation)
    emit(dZ, dZ_out)
    dW = emit(dZ.T @ X + (lambd / X.shape[0]) * W, dW_out)
    db = emit(dZ.sum(axis=0), db_out) if with_bias else None
    dX = emit(dZ @ W, dX_out) if need_dX else None
    return dX, dW, db


def _check_layer(X, W, b):
    check_float_array("X", X, ndim=2)
    if finite_checks_on():
        check_finite("X", X)
    check_float_array("W", W, ndim=2)
    check_same_dtype("W", W, X.dtype)
    if W.shape[1] != X.shape[1]:
        raise ValueError(
            f"W must have shape (n_out, {X.shape[1]}) to match X of shape {X.shape}, "
            f"got {W.shape}"
        )
    if b is not None:
        check_shape("b", b, (W.shape[0],))
        check_same_dtype("b", b, X.dtype)
