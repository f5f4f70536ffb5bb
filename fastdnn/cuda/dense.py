"""Dense layer on the GPU: cuBLAS product, then one fused epilogue kernel.

m = batch size, n_in, n_out = layer widths.
X: (m, n_in), W: (n_out, n_in), b: (n_out,) or None, outputs (m, n_out).
NumPy inputs give NumPy results; device inputs give device arrays (fastdnn.cuda._device).
"""
from __future__ import annotations

from numba import cuda

from .. import config
from .._validation import check_real
from ..formulas import activate, activation_grad
from . import _device as dev
from ._device import HostOrDevice, apply_dropout


@cuda.jit
def _forward_epilogue(Z, b, has_bias, code, use_dropout, key, threshold, keep_prob,
                      act, out):
    """act = activation(Z + b), out = dropout(act); grid-stride over the m * n elements."""
    m, n = Z.shape
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, m * n, stride):
        i = t // n
        j = t - i * n
        z = Z[i, j]
        if has_bias:
            z += b[j]
        a = activate(z, code)
        act[i, j] = a
        out[i, j] = apply_dropout(a, use_dropout, key, t, threshold, keep_prob)


@cuda.jit
def _backward_epilogue(d_out, act, code, use_dropout, key, threshold, keep_prob, chunk,
                       with_bias, dZ, partial):
    """dZ = dropout_backward(d_out) * activation'(act), and the per-chunk column sums of
    dZ for db; one thread per (row chunk, column), rows in order."""
    m, n = d_out.shape
    total = partial.shape[0] * n
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, total, stride):
        c = t // n
        j = t - c * n
        i0 = c * chunk
        i1 = min(i0 + chunk, m)
        d = apply_dropout(d_out[i0, j], use_dropout, key, i0 * n + j, threshold, keep_prob)
        s = d * activation_grad(act[i0, j], code)
        dZ[i0, j] = s
        for i in range(i0 + 1, i1):
            d = apply_dropout(d_out[i, j], use_dropout, key, i * n + j, threshold,
                              keep_prob)
            dz = d * activation_grad(act[i, j], code)
            dZ[i, j] = dz
            s += dz
        if with_bias:
            partial[c, j] = s


def dense_forward(X: HostOrDevice, W: HostOrDevice, b: HostOrDevice | None = None,
                  activation: str = "identity", keep_prob: float = 1.0, key: int = 0, *,
                  out: HostOrDevice | None = None,
                  act_out: HostOrDevice | None = None) -> tuple[HostOrDevice, HostOrDevice]:
    """Forward pass of one dense layer: dropout(activation(X @ W.T + b)).

    Parameters
    ----------
    X : (m, n_in) float32 or float64 array, NumPy or device
        The layer's input.
    W : (n_out, n_in) array of X's dtype
        Weights.
    b : (n_out,) array of X's dtype, optional
        Bias; None for none.
    activation : str, default "identity"
        A key of fastdnn.reference.ACTIVATIONS.
    keep_prob : float in (0, 1], default 1.0
        Inverted dropout's keep probability (1: no dropout).
    key : int, default 0
        The dropout key: the counter-based mask of fastdnn.rng.
    out, act_out : (m, n_out) arrays, optional
        Buffers for the results.

    Returns
    -------
    out : (m, n_out) array
        The layer's output.
    act : (m, n_out) array
        The activation before dropout (backward needs it).
    """
    call = dev.Call(X)
    _check_layer(X, W, b)
    code = dev.activation_code(activation)
    drop = dev.dropout_args(keep_prob, key, X.dtype)
    Xd, Wd = dev.to_device(X), dev.to_device(W)
    m, n = X.shape[0], W.shape[0]
    act = call.buffer(act_out, (m, n), X.dtype, "act_out")
    res = call.buffer(out, (m, n), X.dtype, "out")
    dev.gemm(Xd, Wd, act, transB=True)
    bd = dev.to_device(b) if b is not None else dev.flat(act)  # unused, but 1-D
    _forward_epilogue[dev.launch(m * n)](act, bd, b is not None, code, *drop, act, res)
    return call.result(res, out), call.result(act, act_out)


def dense_backward(d_out: HostOrDevice, X: HostOrDevice, W: HostOrDevice, act: HostOrDevice,
                   activation: str = "identity", keep_prob: float = 1.0, key: int = 0,
                   lambd: float = 0.0, with_bias: bool = True, need_dX: bool = True, *,
                   dX_out: HostOrDevice | None = None,
                   dW_out: HostOrDevice | None = None,
                   db_out: HostOrDevice | None = None,
                   dZ_out: HostOrDevice | None = None,
                   ) -> tuple[HostOrDevice | None, HostOrDevice, HostOrDevice | None]:
    """Backward pass of one dense layer.

    dZ = dropout_backward(d_out) * activation'(act) in one kernel that also sums db in
    fixed row chunks; dW = dZ.T @ X + (lambd / m) W and dX = dZ @ W by cuBLAS.

    Parameters
    ----------
    d_out : (m, n_out) array
        Gradient of the loss with respect to the layer's output; a device ``d_out``
        is overwritten with dZ when no ``dZ_out`` is given.
    X, W : arrays
        The forward pass's input and weights.
    act : (m, n_out) array
        The forward pass's ``act``.
    activation, keep_prob, key
        As in the forward pass (the same key regenerates the dropout mask).
    lambd : float >= 0, default 0.0
        Adds the L2 gradient (lambd / m) * W to dW.
    with_bias : bool, default True
        Compute db.
    need_dX : bool, default True
        Compute dX (False for the first layer).
    dX_out, dW_out, db_out, dZ_out : arrays, optional
        Buffers for dX, dW, db and dZ.

    Returns
    -------
    dX : (m, n_in) array or None
        None when ``need_dX`` is False.
    dW : (n_out, n_in) array
    db : (n_out,) array or None
        None when ``with_bias`` is False.
    """
    call = dev.Call(X)
    _check_layer(X, W, None)
    m, n = X.shape[0], W.shape[0]
    dev.check_array("d_out", d_out, shape=(m, n))
    dev.check_array("act", act, shape=(m, n))
    lambd = check_real("lambd", lambd, 0.0)
    code = dev.activation_code(activation)
    drop = dev.dropout_args(keep_prob, key, X.dtype)
    Xd, Wd, actd = dev.to_device(X), dev.to_device(W), dev.to_device(act)
    if dZ_out is None and dev.is_device_array(d_out):
        dZ = dev.to_device(d_out)  # allowed to overwrite d_out
    else:
        dZ = call.buffer(dZ_out, (m, n), X.dtype, "dZ_out")
    dd = dev.to_device(d_out)
    c = dev.n_chunks(m)
    partial = dev.scratch("dense_db", (c, n), X.dtype)
    _backward_epilogue[dev.launch(c * n)](dd, actd, code, *drop, config.REDUCTION_CHUNK,
                                          bool(with_bias), dZ, partial)
    db = None
    if with_bias:
        db = call.buffer(db_out, (n,), X.dtype, "db_out")
        dev._merge_chunks[dev.launch(n)](partial, dev.scalar(1, X.dtype), db)
        db = call.result(db, db_out)
    dW = call.buffer(dW_out, W.shape, X.dtype, "dW_out")
    dev.gemm(dZ, Xd, dW, transA=True)
    if lambd:
        dev.axpy(dW, lambd / m, Wd)
    dX = None
    if need_dX:
        dX = call.buffer(dX_out, X.shape, X.dtype, "dX_out")
        dev.gemm(dZ, Wd, dX)
        dX = call.result(dX, dX_out)
    if dZ_out is not None:
        call.result(dZ, dZ_out)
    return dX, call.result(dW, dW_out), db


def _check_layer(X, W, b):
    dev.check_array("X", X, ndim=2)
    dev.check_array("W", W, ndim=2, dtype=X.dtype)
    if W.shape[1] != X.shape[1]:
        raise ValueError(
            f"W must have shape (n_out, {X.shape[1]}) to match X of shape {tuple(X.shape)}, "
            f"got {tuple(W.shape)}"
        )
    if b is not None:
        dev.check_array("b", b, shape=(W.shape[0],), dtype=X.dtype)


__all__ = ["dense_forward", "dense_backward"]
