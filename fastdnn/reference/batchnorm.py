"""Batch normalisation over features, with running statistics for inference.

m = batch size, n = features. Z: (m, n); gamma, beta, running_mean, running_var: (n,).
Running averages follow the course convention:
running = momentum * running + (1 - momentum) * batch statistic.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .._validation import (check_float_array, check_keep_prob, check_real, check_shape,
                          emit)
from .activations import activation_backward, activation_forward, check_activation
from .dropout import dropout_backward, dropout_forward


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

    In training mode the batch mean and biased variance are used and
    ``running_mean`` / ``running_var`` are updated in place; in inference mode the
    running statistics are used and nothing is changed.

    Parameters
    ----------
    Z : (m, n) float32 or float64 array
        The batch.
    gamma, beta : (n,) arrays
        Scale and shift.
    running_mean, running_var : (n,) arrays
        Running statistics, updated in place in training mode.
    momentum : float in [0, 1], default 0.9
        Weight of the old running statistic.
    eps : float > 0, default 1e-5
        Added to the variance.
    training : bool, default True
        Batch statistics (True) or the running ones (False).
    out, x_hat_out : (m, n) arrays, optional
        Buffers the results are copied into.
    inv_std_out : (n,) array, optional
        Buffer for inv_std.

    Returns
    -------
    out : (m, n) array of Z's dtype
        gamma * x_hat + beta.
    x_hat : (m, n) array or None
        Normalised Z; None in inference mode.
    inv_std : (n,) array or None
        1 / sqrt(var + eps); None in inference mode.
    """
    _check(Z, gamma, beta, running_mean, running_var, momentum, eps)
    if not training:
        x_hat = (Z - running_mean) / np.sqrt(running_var + eps)
        return emit((gamma * x_hat + beta).astype(Z.dtype, copy=False), out), None, None
    mean = Z.mean(axis=0)
    var = Z.var(axis=0)
    inv_std = 1 / np.sqrt(var + Z.dtype.type(eps))
    x_hat = (Z - mean) * inv_std
    running_mean *= momentum
    running_mean += (1 - momentum) * mean
    running_var *= momentum
    running_var += (1 - momentum) * var
    # cast as in inference mode: float64 gamma/beta must not promote a float32 batch
    out = emit((gamma * x_hat + beta).astype(Z.dtype, copy=False), out)
    return (out, emit(x_hat, x_hat_out),
            emit(inv_std, inv_std_out))


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
    d_out : (m, n) float array
        Gradient of the loss with respect to the output.
    x_hat : (m, n) array
        batchnorm_forward's x_hat.
    inv_std, gamma : (n,) arrays
        batchnorm_forward's inv_std, and the scale.
    dZ_out : (m, n) array, optional
        Buffer for dZ.
    dgamma_out, dbeta_out : (n,) arrays, optional
        Buffers for dgamma and dbeta.

    Returns
    -------
    dZ : (m, n) array of d_out's dtype
        (gamma * inv_std / m) * (m * d_out - dbeta - x_hat * dgamma).
    dgamma : (n,) array
        Sum over the batch of d_out * x_hat.
    dbeta : (n,) array
        Sum over the batch of d_out.
    """
    check_shape("d_out", d_out, x_hat.shape)
    check_shape("inv_std", inv_std, (x_hat.shape[1],))
    check_shape("gamma", gamma, (x_hat.shape[1],))
    dbeta = d_out.sum(axis=0)
    dgamma = (d_out * x_hat).sum(axis=0)
    m = d_out.shape[0]
    dZ = (gamma * inv_std / m) * (m * d_out - dbeta - x_hat * dgamma)
    dZ = emit(dZ.astype(d_out.dtype, copy=False), dZ_out)
    return dZ, emit(dgamma, dgamma_out), emit(dbeta, dbeta_out)


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
    """batchnorm_forward, then the activation, then dropout (training mode only).

    Parameters
    ----------
    Z, gamma, beta, running_mean, running_var, momentum, eps, training
        As in batchnorm_forward.
    activation : str, default "identity"
        A key of ACTIVATIONS.
    keep_prob : float in (0, 1], default 1.0
        Dropout's keep probability (1: no dropout).
    key : int, default 0
        The dropout key (fastdnn.rng.dropout_key(seed, step, layer)).
    out, act_out, x_hat_out : (m, n) arrays, optional
        Buffers the results are copied into.
    inv_std_out : (n,) array, optional
        Buffer for inv_std.

    Returns
    -------
    out : (m, n) array
        The layer's output.
    act : (m, n) array
        The activation before dropout.
    x_hat : (m, n) array or None
        Normalised Z; None in inference mode (where dropout is off).
    inv_std : (n,) array or None
        1 / sqrt(var + eps); None in inference mode.
    """
    # checked first, so a bad argument cannot leave the running statistics updated
    check_activation(activation)
    check_keep_prob("keep_prob", keep_prob)
    y, x_hat, inv_std = batchnorm_forward(Z, gamma, beta, running_mean, running_var,
                                          momentum, eps, training, x_hat_out=x_hat_out,
                                          inv_std_out=inv_std_out)
    act = emit(activation_forward(y, activation), act_out)
    out = emit(dropout_forward(act, keep_prob, key) if training else act.copy(), out)
    return out, act, x_hat, inv_std


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
    """Backward of a training-mode batchnorm_activation_forward.

    Parameters
    ----------
    d_out : (m, n) float array
        Gradient of the loss with respect to the layer's output; may be overwritten.
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
    d_act = dropout_backward(d_out, keep_prob, key)
    return batchnorm_backward(activation_backward(d_act, act, activation), x_hat,
                              inv_std, gamma, dZ_out=dZ_out, dgamma_out=dgamma_out,
                              dbeta_out=dbeta_out)


def _check(Z, gamma, beta, running_mean, running_var, momentum, eps):
    check_float_array("Z", Z, ndim=2)
    n = Z.shape[1]
    for name, v in [("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                    ("running_var", running_var)]:
        check_shape(name, v, (n,))
    check_real("momentum", momentum, 0.0, 1.0)
    check_real("eps", eps, 0.0, low_open=True)
