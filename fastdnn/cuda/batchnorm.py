"""Batch normalisation on the GPU, fused with the activation and dropout.

m = batch size, n = features. Z: (m, n); gamma, beta, running_mean, running_var,
inv_std: (n,). Batch statistics come from order-fixed column reductions (chunks of
config.REDUCTION_CHUNK rows merged in order), so results are deterministic and
independent of the launch geometry. Running averages:
running = momentum * running + (1 - momentum) * batch statistic. The element-wise
arithmetic is fastdnn.formulas' (inverse_std, running_average, batchnorm_grad, activate,
dropout), the CPU engine's own. NumPy inputs give NumPy results; device inputs give
device arrays (fastdnn.cuda._device).
"""
from __future__ import annotations

import math

from numba import cuda

from .. import config
from .._validation import check_real
from ..formulas import (activate, activation_grad, batchnorm_grad, inverse_std,
                        running_average)
from . import _device as dev
from ._device import HostOrDevice, apply_dropout


@cuda.jit
def _forward_training(Z, mean, var, gamma, beta, eps, momentum, running_mean, running_var,
                      code, use_dropout, key, threshold, keep_prob, x_hat, inv_std, act,
                      out):
    """Normalise, scale, shift, activate and drop out; row 0's threads also write
    inv_std and update the running statistics. Grid-stride over the m * n elements."""
    m, n = Z.shape
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, m * n, stride):
        i = t // n
        j = t - i * n
        inv = inverse_std(var[j], eps)
        x = (Z[i, j] - mean[j]) * inv
        x_hat[i, j] = x
        a = activate(gamma[j] * x + beta[j], code)
        act[i, j] = a
        out[i, j] = apply_dropout(a, use_dropout, key, t, threshold, keep_prob)
        if i == 0:
            inv_std[j] = inv
            running_mean[j] = running_average(running_mean[j], mean[j], momentum)
            running_var[j] = running_average(running_var[j], var[j], momentum)


@cuda.jit
def _forward_inference(Z, running_mean, running_var, gamma, beta, eps, code, act, out):
    """One affine pass with the running statistics, then the activation."""
    m, n = Z.shape
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, m * n, stride):
        i = t // n
        j = t - i * n
        x = (Z[i, j] - running_mean[j]) / math.sqrt(running_var[j] + eps)
        a = activate(gamma[j] * x + beta[j], code)
        act[i, j] = a
        out[i, j] = a


@cuda.jit
def _backward_sums(d_out, act, x_hat, code, use_dropout, key, threshold, keep_prob, chunk,
                   d, partial_beta, partial_gamma):
    """d = dropout_backward(d_out) * activation'(act) stored in ``d``, with per-chunk
    column sums of d and d * x_hat; one thread per (row chunk, column), rows in order."""
    m, n = d_out.shape
    total = partial_beta.shape[0] * n
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, total, stride):
        c = t // n
        j = t - c * n
        i0 = c * chunk
        i1 = min(i0 + chunk, m)
        g = apply_dropout(d_out[i0, j], use_dropout, key, i0 * n + j, threshold, keep_prob)
        g = g * activation_grad(act[i0, j], code)
        d[i0, j] = g
        sb = g
        sg = g * x_hat[i0, j]
        for i in range(i0 + 1, i1):
            g = apply_dropout(d_out[i, j], use_dropout, key, i * n + j, threshold, keep_prob)
            g = g * activation_grad(act[i, j], code)
            d[i, j] = g
            sb += g
            sg += g * x_hat[i, j]
        partial_beta[c, j] = sb
        partial_gamma[c, j] = sg


@cuda.jit
def _backward_dz(d, x_hat, inv_std, gamma, dbeta, dgamma, m, dZ):
    """dZ = (gamma * inv_std / m) * (m * d - dbeta - x_hat * dgamma); grid-stride."""
    rows, n = d.shape
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, rows * n, stride):
        i = t // n
        j = t - i * n
        dZ[i, j] = batchnorm_grad(d[i, j], x_hat[i, j], gamma[j] * inv_std[j] / m, m,
                                  dbeta[j], dgamma[j])


def batchnorm_activation_forward(Z: HostOrDevice, gamma: HostOrDevice, beta: HostOrDevice,
                                 running_mean: HostOrDevice, running_var: HostOrDevice,
                                 momentum: float = 0.9, eps: float = 1e-5,
                                 training: bool = True, activation: str = "identity",
                                 keep_prob: float = 1.0, key: int = 0, *,
                                 out: HostOrDevice | None = None,
                                 act_out: HostOrDevice | None = None,
                                 x_hat_out: HostOrDevice | None = None,
                                 inv_std_out: HostOrDevice | None = None,
                                 ) -> tuple[HostOrDevice, HostOrDevice, HostOrDevice | None,
                                            HostOrDevice | None]:
    """Batch normalisation, then the activation, then dropout (training mode only).

    Training: mean and biased variance per feature by two order-fixed reductions, then
    one kernel normalises, applies gamma/beta, the activation and dropout and updates
    ``running_mean`` / ``running_var`` in place. Inference: one affine pass.

    Parameters
    ----------
    Z : (m, n) float32 or float64 array, NumPy or device
        The batch.
    gamma, beta : (n,) arrays
        Scale and shift.
    running_mean, running_var : (n,) arrays
        Running statistics, updated in place in training mode (host arrays too).
    momentum : float in [0, 1], default 0.9
        Weight of the old running statistic.
    eps : float > 0, default 1e-5
        Added to the variance.
    training : bool, default True
        Batch statistics (True) or the running ones (False, dropout off).
    activation : str, default "identity"
        A key of fastdnn.reference.ACTIVATIONS.
    keep_prob : float in (0, 1], default 1.0
        Dropout's keep probability (1: no dropout).
    key : int, default 0
        The dropout key (fastdnn.rng.dropout_key(seed, step, layer)).
    out, act_out, x_hat_out : (m, n) arrays, optional
        Buffers for the results.
    inv_std_out : (n,) array, optional
        Buffer for inv_std.

    Returns
    -------
    out : (m, n) array
        The layer's output.
    act : (m, n) array
        The activation before dropout.
    x_hat : (m, n) array or None
        Normalised Z; None in inference mode.
    inv_std : (n,) array or None
        1 / sqrt(var + eps); None in inference mode.
    """
    call = dev.Call(Z)
    _check(Z, gamma, beta, running_mean, running_var, momentum, eps)
    code = dev.activation_code(activation)
    drop = dev.dropout_args(keep_prob, key, Z.dtype)  # checked before anything changes
    m, n = Z.shape
    dt = Z.dtype
    Zd = dev.to_device(Z)
    g, b = dev.to_device(gamma), dev.to_device(beta)
    rm, rv = dev.to_device(running_mean), dev.to_device(running_var)
    act = call.buffer(act_out, (m, n), dt, "act_out")
    res = call.buffer(out, (m, n), dt, "out")
    if not training:
        _forward_inference[dev.launch(m * n)](Zd, rm, rv, g, b, dev.scalar(eps, dt), code,
                                              act, res)
        return call.result(res, out), call.result(act, act_out), None, None
    mean = dev.scratch("bn_mean", n, dt)
    var = dev.scratch("bn_var", n, dt)
    dev.column_sums(Zd, mean, mode=0, divisor=m)
    dev.column_sums(Zd, var, center=mean, mode=2, divisor=m)
    x_hat = call.buffer(x_hat_out, (m, n), dt, "x_hat_out")
    inv_std = call.buffer(inv_std_out, (n,), dt, "inv_std_out")
    _forward_training[dev.launch(m * n)](
        Zd, mean, var, g, b, dev.scalar(eps, dt), dev.scalar(momentum, dt), rm, rv, code,
        *drop, x_hat, inv_std, act, res)
    call.write_back(running_mean, rm)
    call.write_back(running_var, rv)
    return (call.result(res, out), call.result(act, act_out), call.result(x_hat, x_hat_out),
            call.result(inv_std, inv_std_out))


def batchnorm_forward(Z: HostOrDevice, gamma: HostOrDevice, beta: HostOrDevice,
                      running_mean: HostOrDevice, running_var: HostOrDevice,
                      momentum: float = 0.9, eps: float = 1e-5, training: bool = True, *,
                      out: HostOrDevice | None = None,
                      x_hat_out: HostOrDevice | None = None,
                      inv_std_out: HostOrDevice | None = None,
                      ) -> tuple[HostOrDevice, HostOrDevice | None, HostOrDevice | None]:
    """Normalise Z per feature, then scale by gamma and shift by beta.

    Parameters
    ----------
    Z, gamma, beta, running_mean, running_var, momentum, eps, training
        As in batchnorm_activation_forward.
    out, x_hat_out : (m, n) arrays, optional
        Buffers for the results.
    inv_std_out : (n,) array, optional
        Buffer for inv_std.

    Returns
    -------
    out : (m, n) array
        gamma * x_hat + beta.
    x_hat : (m, n) array or None
        Normalised Z; None in inference mode, where the running statistics are used
        and nothing is changed.
    inv_std : (n,) array or None
        1 / sqrt(var + eps); None in inference mode.
    """
    res, _, x_hat, inv_std = batchnorm_activation_forward(
        Z, gamma, beta, running_mean, running_var, momentum, eps, training,
        out=out, act_out=out if out is not None and dev.is_device_array(out) else None,
        x_hat_out=x_hat_out, inv_std_out=inv_std_out)
    return res, x_hat, inv_std


def batchnorm_activation_backward(d_out: HostOrDevice, act: HostOrDevice,
                                  x_hat: HostOrDevice, inv_std: HostOrDevice,
                                  gamma: HostOrDevice, activation: str = "identity",
                                  keep_prob: float = 1.0, key: int = 0, *,
                                  dZ_out: HostOrDevice | None = None,
                                  dgamma_out: HostOrDevice | None = None,
                                  dbeta_out: HostOrDevice | None = None,
                                  ) -> tuple[HostOrDevice, HostOrDevice, HostOrDevice]:
    """Backward of a training-mode batchnorm_activation_forward.

    One kernel applies dropout and the activation derivative and sums dbeta and dgamma
    per row chunk; a second forms dZ.

    Parameters
    ----------
    d_out : (m, n) array, NumPy or device
        Gradient with respect to the layer's output; a device ``d_out`` is overwritten
        with dZ when no ``dZ_out`` is given.
    act, x_hat : (m, n) arrays
        The forward pass's act and x_hat.
    inv_std, gamma : (n,) arrays
        The forward pass's inv_std, and the scale.
    activation, keep_prob, key
        As in the forward pass (the same key regenerates the dropout mask).
    dZ_out : (m, n) array, optional
        Buffer for dZ.
    dgamma_out, dbeta_out : (n,) arrays, optional
        Buffers for dgamma and dbeta.

    Returns
    -------
    dZ : (m, n) array
        Gradient with respect to Z.
    dgamma, dbeta : (n,) arrays
        Gradients with respect to gamma and beta.
    """
    call = dev.Call(d_out)
    dev.check_array("d_out", d_out, ndim=2)
    m, n = d_out.shape
    dt = d_out.dtype
    dev.check_array("act", act, shape=(m, n))
    dev.check_array("x_hat", x_hat, shape=(m, n))
    dev.check_array("inv_std", inv_std, shape=(n,))
    dev.check_array("gamma", gamma, shape=(n,))
    code = dev.activation_code(activation)
    drop = dev.dropout_args(keep_prob, key, dt)
    dd = dev.to_device(d_out)
    xh = dev.to_device(x_hat)
    if dZ_out is None and dev.is_device_array(d_out):
        dZ = dd  # allowed to overwrite d_out
    else:
        dZ = call.buffer(dZ_out, (m, n), dt, "dZ_out")
    c = dev.n_chunks(m)
    pb = dev.scratch("bn_dbeta", (c, n), dt)
    pg = dev.scratch("bn_dgamma", (c, n), dt)
    _backward_sums[dev.launch(c * n)](dd, dev.to_device(act), xh, code, *drop,
                                      config.REDUCTION_CHUNK, dZ, pb, pg)
    dbeta = call.buffer(dbeta_out, (n,), dt, "dbeta_out")
    dgamma = call.buffer(dgamma_out, (n,), dt, "dgamma_out")
    one = dev.scalar(1, dt)
    dev._merge_chunks[dev.launch(n)](pb, one, dbeta)
    dev._merge_chunks[dev.launch(n)](pg, one, dgamma)
    _backward_dz[dev.launch(m * n)](dZ, xh, dev.to_device(inv_std), dev.to_device(gamma),
                                    dbeta, dgamma, dev.scalar(m, dt), dZ)
    return (call.result(dZ, dZ_out), call.result(dgamma, dgamma_out),
            call.result(dbeta, dbeta_out))


def batchnorm_backward(d_out: HostOrDevice, x_hat: HostOrDevice, inv_std: HostOrDevice,
                       gamma: HostOrDevice, *, dZ_out: HostOrDevice | None = None,
                       dgamma_out: HostOrDevice | None = None,
                       dbeta_out: HostOrDevice | None = None,
                       ) -> tuple[HostOrDevice, HostOrDevice, HostOrDevice]:
    """Gradients of a training-mode batchnorm_forward.

    Parameters
    ----------
    d_out, x_hat, inv_std, gamma, dZ_out, dgamma_out, dbeta_out
        As in batchnorm_activation_backward.

    Returns
    -------
    dZ : (m, n) array
        Gradient with respect to Z.
    dgamma, dbeta : (n,) arrays
        Gradients with respect to gamma and beta.
    """
    return batchnorm_activation_backward(d_out, x_hat, x_hat, inv_std, gamma,
                                         dZ_out=dZ_out, dgamma_out=dgamma_out,
                                         dbeta_out=dbeta_out)


def _check(Z, gamma, beta, running_mean, running_var, momentum, eps):
    dev.check_array("Z", Z, ndim=2)
    n = Z.shape[1]
    for name, v in [("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                    ("running_var", running_var)]:
        dev.check_array(name, v, shape=(n,))
    check_real("momentum", momentum, 0.0, 1.0)
    check_real("eps", eps, 0.0, low_open=True)
