"""Batch normalisation fused with the activation and dropout after it, on the CPU.

m = batch size, n = features. Z: (m, n); gamma, beta, running_mean, running_var: (n,).
Training forward: batch statistics (order-fixed chunked sums), normalisation, gamma and
beta, activation and dropout, and the running-average update, all in one call. Inference
folds the running statistics, gamma and beta into one affine pass (+ activation).
Backward: dZ, dgamma and dbeta in one call (two passes over the batch).
Running averages: running = momentum * running + (1 - momentum) * batch statistic.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from .._cache import harden_caches
from .._validation import check_float_array, check_real, check_same_dtype, check_shape
from ..config import CACHE, REDUCTION_CHUNK
from ._common import (activation_code, buffer, check_finite, contiguous, dropout_args,
                      launch, reusable, specialised)
from ..formulas import activate
from ._rows import backward_row, copy_row, dropout_row


@njit(cache=CACHE)
def _merge(partial, j):
    s = partial[0, j]
    for c in range(1, partial.shape[0]):
        s += partial[c, j]
    return s


@specialised
def _train_forward(code, dropout):
    @njit(parallel=True, cache=CACHE, error_model="numpy")
    def kernel(Z, gamma, beta, running_mean, running_var, momentum, eps, key,
               threshold, keep, out, act, x_hat, inv_std):
        # Two parallel regions only (each region costs a thread hand-off, and under load
        # a time slice; kernels/batchnorm.py). 1: per chunk of REDUCTION_CHUNK rows its mean
        # and centred sum of squares (two passes over the chunk, which sits in cache),
        # parallel over chunks; merged on one thread in chunk order (Chan et al.'s pairwise
        # update), so the statistics do not depend on the thread count. 2: normalise, gamma,
        # beta, activation and dropout, parallel over rows. out may be act itself.
        m, n = Z.shape
        dtype = Z.dtype.type
        nchunks = (m + REDUCTION_CHUNK - 1) // REDUCTION_CHUNK
        # np.empty, zeroed and merged in loops: np.zeros and .copy() would each become a
        # parallel region of their own, and each region costs compile time (a gufunc)
        c_mean = np.empty((nchunks, n), dtype=Z.dtype)
        c_m2 = np.empty((nchunks, n), dtype=Z.dtype)
        for c in prange(nchunks):
            i0 = c * REDUCTION_CHUNK
            i1 = min(m, i0 + REDUCTION_CHUNK)
            mu, m2 = c_mean[c], c_m2[c]
            for j in range(n):
                mu[j] = 0
                m2[j] = 0
            for i in range(i0, i1):
                for j in range(n):
                    mu[j] += Z[i, j]
            for j in range(n):
                mu[j] /= dtype(i1 - i0)
            for i in range(i0, i1):
                for j in range(n):
                    d = Z[i, j] - mu[j]
                    m2[j] += d * d
        mean = c_mean[0]   # chunk 0's row accumulates the merge in place
        m2 = c_m2[0]
        count = min(m, REDUCTION_CHUNK)
        for c in range(1, nchunks):
            k = min(m, (c + 1) * REDUCTION_CHUNK) - c * REDUCTION_CHUNK
            total = count + k
            for j in range(n):
                delta = c_mean[c, j] - mean[j]
                mean[j] += delta * dtype(k / total)
                m2[j] += c_m2[c, j] + delta * delta * dtype(count * k / total)
            count = total
        for j in range(n):
            var = m2[j] / dtype(m)
            inv_std[j] = 1 / np.sqrt(var + eps)
            running_mean[j] = momentum * running_mean[j] + (1 - momentum) * mean[j]
            running_var[j] = momentum * running_var[j] + (1 - momentum) * var
        for i in prange(m):
            xh_row, act_row = x_hat[i], act[i]
            for j in range(n):
                xh = (Z[i, j] - mean[j]) * inv_std[j]
                xh_row[j] = xh
                act_row[j] = activate(gamma[j] * xh + beta[j], code)
            if dropout:
                dropout_row(act_row, np.uint64(i * n), key, threshold, keep, out[i])
            elif out.ctypes.data != act.ctypes.data:
                copy_row(act_row, out[i])
    return kernel


@specialised
def _inference_forward(code):
    @njit(parallel=True, cache=CACHE, error_model="numpy")
    def kernel(Z, gamma, beta, running_mean, running_var, eps, out, act):
        # y = Z * s + t with s = gamma / sqrt(var + eps), t = beta - mean * s; parallel
        # over rows
        m, n = Z.shape
        s = np.empty(n, dtype=Z.dtype)
        t = np.empty(n, dtype=Z.dtype)
        for j in range(n):
            s[j] = gamma[j] / np.sqrt(running_var[j] + eps)
            t[j] = beta[j] - running_mean[j] * s[j]
        for i in prange(m):
            act_row = act[i]
            for j in range(n):
                act_row[j] = activate(Z[i, j] * s[j] + t[j], code)
            if out.ctypes.data != act.ctypes.data:
                copy_row(act_row, out[i])
    return kernel


@specialised
def _backward(code, dropout, in_place):
    @njit(parallel=True, cache=CACHE, error_model="numpy")
    def kernel(d_out, act, x_hat, inv_std, gamma, key, threshold, keep, dZ, dgamma,
               dbeta):
        # Pass 1 (parallel over row chunks): g = d_out * mask / keep_prob * act'(act) into dZ
        # and chunk sums of g and g * x_hat, merged in chunk order on one thread.
        # Pass 2 (parallel over rows): dZ = gamma inv_std / m (m g - dbeta - x_hat dgamma).
        # in_place: dZ is d_out.
        m, n = x_hat.shape
        dtype = x_hat.dtype.type
        nchunks = (m + REDUCTION_CHUNK - 1) // REDUCTION_CHUNK
        p_beta = np.empty((nchunks, n), dtype=x_hat.dtype)
        p_gamma = np.empty((nchunks, n), dtype=x_hat.dtype)
        for c in prange(nchunks):
            for j in range(n):
                p_beta[c, j] = 0
                p_gamma[c, j] = 0
            for i in range(c * REDUCTION_CHUNK, min(m, (c + 1) * REDUCTION_CHUNK)):
                row = dZ[i]
                backward_row(d_out[i], act[i], code, dropout, np.uint64(i * n), key,
                             threshold, keep, in_place, row)
                for j in range(n):
                    p_beta[c, j] += row[j]
                    p_gamma[c, j] += row[j] * x_hat[i, j]
        k = np.empty(n, dtype=x_hat.dtype)
        for j in range(n):  # on one thread: a few adds per column, not worth a hand-off
            dbeta[j] = _merge(p_beta, j)
            dgamma[j] = _merge(p_gamma, j)
            k[j] = gamma[j] * inv_std[j] / dtype(m)
        for i in prange(m):
            for j in range(n):
                dZ[i, j] = k[j] * (dtype(m) * dZ[i, j] - dbeta[j] - x_hat[i, j] * dgamma[j])
    return kernel


def batchnorm_activation_forward(Z: NDArray[np.floating], gamma: NDArray[np.floating],
                                 beta: NDArray[np.floating],
                                 running_mean: NDArray[np.floating],
                                 running_var: NDArray[np.floating], momentum: float = 0.9,
                                 eps: float = 1e-5, training: bool = True,
                                 activation: str = "identity", keep_prob: float = 1.0,
                                 key: int = 0, *, out: NDArray[np.floating] | None = None,
                                 act_out: NDArray[np.floating] | None = None,
                                 x_hat_out: NDArray[np.floating] | None = None,
                                 inv_std_out: NDArray[np.floating] | None = None,
                                 ) -> tuple[NDArray[np.floating], NDArray[np.floating],
                                            NDArray[np.floating] | None,
                                            NDArray[np.floating] | None]:
    """Batch normalisation, then the activation, then dropout (training mode only).

    Parameters
    ----------
    Z : (m, n) float32 or float64 array
        The batch (finite).
    gamma, beta : (n,) arrays of Z's dtype
        Scale and shift.
    running_mean, running_var : (n,) writable C-contiguous arrays of Z's dtype
        Running statistics, updated in place in training mode.
    momentum : float in [0, 1], default 0.9
        Weight of the old running statistic.
    eps : float > 0, default 1e-5
        Added to the variance.
    training : bool, default True
        Batch statistics (True) or the running ones (False, dropout off).
    activation : str, default "identity"
        One of fastdnn.formulas.ACTIVATION_CODES.
    keep_prob : float in (0, 1], default 1.0
        Dropout's keep probability (1: no dropout).
    key : int, default 0
        The dropout key (fastdnn.rng.dropout_key(seed, step, layer)).
    out, act_out, x_hat_out : (m, n) C-contiguous arrays of Z's dtype, optional
        Buffers for the results.
    inv_std_out : (n,) array of Z's dtype, optional
        Buffer for inv_std.

    Returns
    -------
    out : (m, n) array
        The layer's output; ``act`` itself when no dropout applies and no ``out``
        buffer is given.
    act : (m, n) array
        The activation before dropout.
    x_hat : (m, n) array or None
        Normalised Z; None in inference mode.
    inv_std : (n,) array or None
        1 / sqrt(var + eps); None in inference mode.
    """
    _check(Z, gamma, beta, running_mean, running_var, momentum, eps)
    check_finite("Z", Z)
    code = activation_code(activation)
    dropout, key, threshold, keep = dropout_args(keep_prob, key, Z.dtype)
    dtype = Z.dtype
    Z = contiguous(Z)
    gamma, beta = contiguous(gamma), contiguous(beta)
    act = buffer("act_out", act_out, Z.shape, dtype)
    if out is None and not (training and dropout):
        out = act
    else:
        out = buffer("out", out, Z.shape, dtype)
    if not training:
        launch(_inference_forward(code), Z, gamma, beta, running_mean, running_var,
               dtype.type(eps), out, act)
        return out, act, None, None
    x_hat = buffer("x_hat_out", x_hat_out, Z.shape, dtype)
    inv_std = buffer("inv_std_out", inv_std_out, (Z.shape[1],), dtype)
    launch(_train_forward(code, dropout), Z, gamma, beta, running_mean, running_var,
           dtype.type(momentum), dtype.type(eps), key, threshold, keep, out, act, x_hat,
           inv_std)
    return out, act, x_hat, inv_std


def batchnorm_forward(Z: NDArray[np.floating], gamma: NDArray[np.floating],
                      beta: NDArray[np.floating], running_mean: NDArray[np.floating],
                      running_var: NDArray[np.floating], momentum: float = 0.9,
                      eps: float = 1e-5, training: bool = True, *,
                      out: NDArray[np.floating] | None = None,
                      x_hat_out: NDArray[np.floating] | None = None,
                      inv_std_out: NDArray[np.floating] | None = None,
                      ) -> tuple[NDArray[np.floating], NDArray[np.floating] | None,
                                 NDArray[np.floating] | None]:
    """Normalise Z per feature, then scale by gamma and shift by beta.

    Training mode uses the batch mean and biased variance and updates
    ``running_mean`` / ``running_var`` in place; inference mode uses the running
    statistics and changes nothing.

    Parameters
    ----------
    Z, gamma, beta, running_mean, running_var, momentum, eps, training
        As in batchnorm_activation_forward.
    out, x_hat_out : (m, n) C-contiguous arrays of Z's dtype, optional
        Buffers for the results.
    inv_std_out : (n,) array of Z's dtype, optional
        Buffer for inv_std.

    Returns
    -------
    out : (m, n) array
        gamma * x_hat + beta.
    x_hat : (m, n) array or None
        Normalised Z; None in inference mode.
    inv_std : (n,) array or None
        1 / sqrt(var + eps); None in inference mode.
    """
    out, _, x_hat, inv_std = batchnorm_activation_forward(
        Z, gamma, beta, running_mean, running_var, momentum, eps, training,
        out=out, act_out=out, x_hat_out=x_hat_out, inv_std_out=inv_std_out)
    return out, x_hat, inv_std


def batchnorm_activation_backward(d_out: NDArray[np.floating], act: NDArray[np.floating],
                                  x_hat: NDArray[np.floating],
                                  inv_std: NDArray[np.floating],
                                  gamma: NDArray[np.floating], activation: str = "identity",
                                  keep_prob: float = 1.0, key: int = 0, *,
                                  dZ_out: NDArray[np.floating] | None = None,
                                  dgamma_out: NDArray[np.floating] | None = None,
                                  dbeta_out: NDArray[np.floating] | None = None,
                                  ) -> tuple[NDArray[np.floating], NDArray[np.floating],
                                             NDArray[np.floating]]:
    """Backward of batchnorm_activation_forward in training mode.

    Parameters
    ----------
    d_out : (m, n) array of x_hat's dtype
        Gradient with respect to the layer's output; overwritten with dZ when no
        ``dZ_out`` is given (and it is C-contiguous).
    act, x_hat : (m, n) float32 or float64 arrays
        The forward pass's act and x_hat.
    inv_std, gamma : (n,) arrays
        The forward pass's inv_std, and the scale.
    activation, keep_prob, key
        As in the forward pass (the same key regenerates the dropout mask).
    dZ_out : (m, n) C-contiguous array, optional
        Buffer for dZ.
    dgamma_out, dbeta_out : (n,) arrays, optional
        Buffers for dgamma and dbeta.

    Returns
    -------
    dZ : (m, n) array
        Gradient with respect to Z (``d_out`` itself when overwritten).
    dgamma, dbeta : (n,) arrays
        Gradients with respect to gamma and beta.
    """
    check_float_array("x_hat", x_hat, ndim=2)
    dtype = x_hat.dtype
    m, n = x_hat.shape
    for name, v, shape in [("d_out", d_out, (m, n)), ("act", act, (m, n)),
                           ("inv_std", inv_std, (n,)), ("gamma", gamma, (n,))]:
        check_float_array(name, v)
        check_shape(name, v, shape)
        check_same_dtype(name, v, dtype)
    code = activation_code(activation)
    dropout, key, threshold, keep = dropout_args(keep_prob, key, dtype)
    if dZ_out is None and reusable(d_out, dtype):
        dZ = d_out
    else:
        dZ = buffer("dZ_out", dZ_out, (m, n), dtype)
    dgamma = buffer("dgamma_out", dgamma_out, (n,), dtype)
    dbeta = buffer("dbeta_out", dbeta_out, (n,), dtype)
    d_out = contiguous(d_out)
    launch(_backward(code, dropout, dZ.ctypes.data == d_out.ctypes.data), d_out,
           contiguous(act), contiguous(x_hat), contiguous(inv_std), contiguous(gamma), key,
           threshold, keep, dZ, dgamma, dbeta)
    return dZ, dgamma, dbeta


def batchnorm_backward(d_out: NDArray[np.floating], x_hat: NDArray[np.floating],
                       inv_std: NDArray[np.floating], gamma: NDArray[np.floating], *,
                       dZ_out: NDArray[np.floating] | None = None,
                       dgamma_out: NDArray[np.floating] | None = None,
                       dbeta_out: NDArray[np.floating] | None = None,
                       ) -> tuple[NDArray[np.floating], NDArray[np.floating],
                                  NDArray[np.floating]]:
    """Gradients of a training-mode batchnorm_forward.

    Parameters
    ----------
    d_out : (m, n) array
        Gradient with respect to the output; overwritten with dZ when no ``dZ_out``
        is given.
    x_hat, inv_std, gamma, dZ_out, dgamma_out, dbeta_out
        As in batchnorm_activation_backward.

    Returns
    -------
    dZ : (m, n) array
        Gradient with respect to Z.
    dgamma, dbeta : (n,) arrays
        Gradients with respect to gamma and beta.
    """
    # identity activation: act is never read for a derivative, pass x_hat as a stand-in
    return batchnorm_activation_backward(d_out, x_hat, x_hat, inv_std, gamma,
                                         dZ_out=dZ_out, dgamma_out=dgamma_out,
                                         dbeta_out=dbeta_out)


def _check(Z, gamma, beta, running_mean, running_var, momentum, eps):
    check_float_array("Z", Z, ndim=2)
    n = Z.shape[1]
    for name, v in [("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                    ("running_var", running_var)]:
        check_float_array(name, v)
        check_shape(name, v, (n,))
        check_same_dtype(name, v, Z.dtype)
    for name, v in [("running_mean", running_mean), ("running_var", running_var)]:
        if not reusable(v, Z.dtype):
            raise ValueError(f"{name} must be a writable C-contiguous array (updated in place)")
    check_real("momentum", momentum, 0.0, 1.0)
    check_real("eps", eps, 0.0, low_open=True)


harden_caches(__name__)
