"""Dense layer: linear map, activation and inverted dropout.

m = batch size, n_in, n_out = layer widths.
X: (m, n_in), W: (n_out, n_in), b: (n_out,) or None, outputs (m, n_out).
"""
from .._validation import (check_finite, check_float_array, check_real, check_same_dtype,
                          check_shape, emit, finite_checks_on)
from .activations import activation_backward, activation_forward
from .dropout import dropout_backward, dropout_forward


def dense_forward(X, W, b=None, activation="identity", keep_prob=1.0, key=0, *,
                  out=None, act_out=None):
    """Forward pass of one dense layer.

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


def dense_backward(d_out, X, W, act, activation="identity", keep_prob=1.0, key=0,
                   lambd=0.0, with_bias=True, need_dX=True, *, dX_out=None, dW_out=None,
                   db_out=None, dZ_out=None):
    """Backward pass of one dense layer.

    ``lambd`` adds the L2 term's gradient (lambd / m) * W to dW, m = X.shape[0].
    ``dZ_out`` is an optional (m, n_out) workspace; ``d_out`` may be overwritten.

    Returns
    -------
    dX : (m, n_in), or None when ``need_dX`` is False (the first layer)
    dW : (n_out, n_in)
    db : (n_out,), or None when ``with_bias`` is False
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
