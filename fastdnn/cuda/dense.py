"""Dense layer on the GPU: cuBLAS product, then one fused epilogue kernel.

m = batch size, n_in, n_out = layer widths.
X: (m, n_in), W: (n_out, n_in), b: (n_out,) or None, outputs (m, n_out).
"""
from numba import cuda

from .. import config
from .._validation import check_real
from ..formulas import activate, activation_grad
from . import _device as dev
from ._device import apply_dropout


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


def dense_forward(X, W, b=None, activation="identity", keep_prob=1.0, key=0, *,
                  out=None, act_out=None):
    """Forward pass of one dense layer: dropout(activation(X @ W.T + b)).

    Parameters
    ----------
    X : (m, n_in) float32/float64 array, NumPy or CUDA device
    W : (n_out, n_in) array of X's dtype
    b : (n_out,) array or None
    activation : str
        A key of fastdnn.reference.ACTIVATIONS.
    keep_prob, key : float, int
        Inverted dropout with the counter-based mask of ``key`` (fastdnn.rng).
    out, act_out : (m, n_out) arrays, optional
        Buffers for the results.

    Returns
    -------
    out : (m, n_out) array, the layer's output
    act : (m, n_out) array, the activation before dropout (backward needs it)
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


def dense_backward(d_out, X, W, act, activation="identity", keep_prob=1.0, key=0,
                   lambd=0.0, with_bias=True, need_dX=True, *, dX_out=None, dW_out=None,
                   db_out=None, dZ_out=None):
    """Backward pass of one dense layer.

    dZ = dropout_backward(d_out) * activation'(act) in one kernel that also sums db in
    fixed row chunks; dW = dZ.T @ X + (lambd / m) W and dX = dZ @ W by cuBLAS. Without
    ``dZ_out`` a device ``d_out`` is overwritten with dZ.

    Returns
    -------
    dX : (m, n_in), or None when ``need_dX`` is False
    dW : (n_out, n_in)
    db : (n_out,), or None when ``with_bias`` is False
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
