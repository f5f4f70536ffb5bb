"""Batch normalisation over features, with running statistics for inference.

m = batch size, n = features. Z: (m, n); gamma, beta, running_mean, running_var: (n,).
Running averages follow the course convention:
running = momentum * running + (1 - momentum) * batch statistic.
"""
import numpy as np

from .._validation import (check_float_array, check_keep_prob, check_real, check_shape,
                          emit)
from .activations import activation_backward, activation_forward, check_activation
from .dropout import dropout_backward, dropout_forward


def batchnorm_forward(Z, gamma, beta, running_mean, running_var, momentum=0.9,
                      eps=1e-5, training=True, *, out=None, x_hat_out=None,
                      inv_std_out=None):
    """Normalise Z per feature, then scale by gamma and shift by beta.

    In training mode the batch mean and biased variance are used and
    ``running_mean`` / ``running_var`` are updated in place; in inference mode the
    running statistics are used and nothing is changed.

    Returns
    -------
    out : (m, n)
    x_hat : (m, n) normalised Z, or None in inference mode
    inv_std : (n,) 1 / sqrt(var + eps), or None in inference mode
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


def batchnorm_backward(d_out, x_hat, inv_std, gamma, *, dZ_out=None, dgamma_out=None,
                       dbeta_out=None):
    """Gradients of a training-mode batchnorm_forward.

    Returns
    -------
    dZ : (m, n), dgamma : (n,), dbeta : (n,)
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


def batchnorm_activation_forward(Z, gamma, beta, running_mean, running_var,
                                 momentum=0.9, eps=1e-5, training=True,
                                 activation="identity", keep_prob=1.0, key=0, *,
                                 out=None, act_out=None, x_hat_out=None, inv_std_out=None):
    """batchnorm_forward, then the activation, then dropout (training mode only).

    Returns (out, act, x_hat, inv_std): ``act`` is the activation before dropout
    (x_hat and inv_std are None in inference mode, where dropout is off).
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


def batchnorm_activation_backward(d_out, act, x_hat, inv_std, gamma,
                                  activation="identity", keep_prob=1.0, key=0, *,
                                  dZ_out=None, dgamma_out=None, dbeta_out=None):
    """Backward of batchnorm_activation_forward: returns (dZ, dgamma, dbeta).

    ``d_out`` may be overwritten.
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
