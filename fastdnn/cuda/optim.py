"""Optimizer updates on the GPU: each one grid-stride kernel over the flat buffer.

Work in place like the reference, with its argument order. Each element is updated by
fastdnn.formulas' sgd_step, momentum_step, rmsprop_step or adam_step, the CPU backend's
own arithmetic, with the same scalars: computed on the host in float64 (Adam's bias
corrections as step_size = lr / (1 - beta1^t) and inv_sqrt_bc2 = 1 / sqrt(1 - beta2^t),
AdamW's decoupled decay as decay = 1 - lr * weight_decay, Nesterov's look-ahead as
a, c = beta, 1 - beta) and passed in the arrays' dtype, so float32 updates run in
float32. Host arrays are updated too (copied to the device and back), for tests.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from .._validation import check_own_memory, check_update, finite_checks_on
from ..formulas import adam_step, momentum_step, rmsprop_step, sgd_step
from . import _device as dev
from ._device import HostOrDevice
from .engine import _nan_unless_finite


@cuda.jit
def _sgd(p, g, lr, wd):
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, p.shape[0], stride):
        p[i] = sgd_step(p[i], g[i], lr, wd)


@cuda.jit
def _momentum(p, g, v, lr, beta, one_minus_beta, wd, a, c):
    """p -= lr (a v + c g): (a, c) = (1, 0) for momentum, (beta, 1 - beta) for Nesterov."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, p.shape[0], stride):
        p[i], v[i] = momentum_step(p[i], g[i], v[i], lr, beta, one_minus_beta, wd, a, c)


@cuda.jit
def _rmsprop(p, g, s, lr, beta2, one_minus_beta2, eps, wd):
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, p.shape[0], stride):
        p[i], s[i] = rmsprop_step(p[i], g[i], s[i], lr, beta2, one_minus_beta2, eps, wd)


@cuda.jit
def _adam(p, g, m, v, step_size, beta1, one_minus_beta1, beta2, one_minus_beta2,
          inv_sqrt_bc2, eps, wd, decay):
    """Adam (wd: coupled L2, decay 1) or AdamW (wd 0, decay = 1 - lr weight_decay)."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, p.shape[0], stride):
        p[i], m[i], v[i] = adam_step(p[i], g[i], m[i], v[i], step_size, beta1,
                                     one_minus_beta1, beta2, one_minus_beta2,
                                     inv_sqrt_bc2, eps, wd, decay)


def _run(kernel, param, grad, states, *scalars):
    """Check shapes, move to the device, launch over the flat buffer, write back."""
    dev.check_array("param", param)
    # state arrays are updated in place: every shape must be param's
    for name, a in [("grad", grad)] + states:
        dev.check_array(name, a, dtype=param.dtype)
        if tuple(a.shape) != tuple(param.shape):
            raise ValueError(f"{name} must have the shape of param {tuple(param.shape)}, "
                             f"got {tuple(a.shape)}")
    arrays = [param, grad] + [a for _, a in states]
    check_own_memory(zip(["param", "grad"] + [name for name, _ in states], arrays))
    devs = [dev.to_device(a) for a in arrays]
    if finite_checks_on():   # before anything changes: one read of the gradient
        flag = dev.zeros(1, np.float64)
        _nan_unless_finite[dev.launch(grad.size)](dev.flat(devs[1]), flag)
        if not math.isfinite(dev.to_host(flag)[0]):
            raise ValueError("grad contains NaN or inf; set fastdnn.config.CHECK_FINITE = "
                             "False to skip this check")
    dt = param.dtype
    args = [dev.flat(d) for d in devs] + [dev.scalar(s, dt) for s in scalars]
    kernel[dev.launch(param.size)](*args)
    call = dev.Call(param)
    for a, d in zip(arrays, devs):
        if a is not grad:
            call.write_back(a, d)


def sgd_update(param: HostOrDevice, grad: HostOrDevice, lr: float,
               weight_decay: float = 0.0) -> None:
    """Gradient descent, in place: param -= lr * g, g = grad + weight_decay * param.

    Parameters
    ----------
    param : float32 or float64 array, NumPy or device
        The parameters, updated in place (a host array is copied to the device and
        back).
    grad : array of param's shape and dtype
        Their gradient (finite).
    lr : float >= 0
        The learning rate.
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    """
    lr, wd = check_update(lr, weight_decay)
    _run(_sgd, param, grad, [], lr, wd)


def momentum_update(param: HostOrDevice, grad: HostOrDevice, velocity: HostOrDevice,
                    lr: float, beta: float = 0.9, weight_decay: float = 0.0) -> None:
    """Momentum, in place: v = beta * v + (1 - beta) * g; param -= lr * v.

    Parameters
    ----------
    param : float32 or float64 array, NumPy or device
        The parameters, updated in place (a host array is copied to the device and
        back).
    grad : array of param's shape and dtype
        Their gradient (finite).
    velocity : array of param's shape and dtype
        v, updated in place.
    lr : float >= 0
        The learning rate.
    beta : float in [0, 1), default 0.9
        The weight of the previous velocity.
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    """
    _momentum_like(param, grad, velocity, lr, beta, weight_decay, False)


def nesterov_update(param: HostOrDevice, grad: HostOrDevice, velocity: HostOrDevice,
                    lr: float, beta: float = 0.9, weight_decay: float = 0.0) -> None:
    """Nesterov momentum, in place.

    v = beta * v + (1 - beta) * g; param -= lr * (beta * v + (1 - beta) * g).

    Parameters
    ----------
    param : float32 or float64 array, NumPy or device
        The parameters, updated in place (a host array is copied to the device and
        back).
    grad : array of param's shape and dtype
        Their gradient (finite).
    velocity : array of param's shape and dtype
        v, updated in place.
    lr : float >= 0
        The learning rate.
    beta : float in [0, 1), default 0.9
        The weight of the previous velocity.
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    """
    _momentum_like(param, grad, velocity, lr, beta, weight_decay, True)


def _momentum_like(param, grad, velocity, lr, beta, weight_decay, nesterov):
    lr, wd, beta = check_update(lr, weight_decay, beta=beta)
    a, c = (beta, 1 - beta) if nesterov else (1.0, 0.0)
    _run(_momentum, param, grad, [("velocity", velocity)], lr, beta, 1 - beta, wd, a, c)


def rmsprop_update(param: HostOrDevice, grad: HostOrDevice, sq_avg: HostOrDevice, lr: float,
                   beta2: float = 0.999, eps: float = 1e-8,
                   weight_decay: float = 0.0) -> None:
    """RMSprop, in place.

    s = beta2 * s + (1 - beta2) * g^2; param -= lr * g / (sqrt(s) + eps).

    Parameters
    ----------
    param : float32 or float64 array, NumPy or device
        The parameters, updated in place (a host array is copied to the device and
        back).
    grad : array of param's shape and dtype
        Their gradient (finite).
    sq_avg : array of param's shape and dtype
        s, updated in place.
    lr : float >= 0
        The learning rate.
    beta2 : float in [0, 1), default 0.999
        The weight of the previous average.
    eps : float > 0, default 1e-8
        Added to sqrt(s).
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    """
    lr, wd, beta2, eps = check_update(lr, weight_decay, beta2=beta2, eps=eps)
    _run(_rmsprop, param, grad, [("sq_avg", sq_avg)], lr, beta2, 1 - beta2, eps, wd)


def adam_update(param: HostOrDevice, grad: HostOrDevice, m: HostOrDevice, v: HostOrDevice,
                step: int, lr: float, beta1: float = 0.9, beta2: float = 0.999,
                eps: float = 1e-8, weight_decay: float = 0.0) -> None:
    """Adam with bias correction, in place.

    m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
    param -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps).

    Parameters
    ----------
    param : float32 or float64 array, NumPy or device
        The parameters, updated in place (a host array is copied to the device and
        back).
    grad : array of param's shape and dtype
        Their gradient (finite).
    m, v : arrays of param's shape and dtype
        The first and second moment averages, updated in place.
    step : int >= 1
        t, the number of updates including this one.
    lr : float >= 0
        The learning rate.
    beta1, beta2 : float in [0, 1), default 0.9 and 0.999
        The weights of the previous averages.
    eps : float > 0, default 1e-8
        Added to the corrected sqrt(v).
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    """
    _adam_like(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, False)


def adamw_update(param: HostOrDevice, grad: HostOrDevice, m: HostOrDevice, v: HostOrDevice,
                 step: int, lr: float, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
    """AdamW: param -= lr * weight_decay * param, then the Adam step on the raw gradient.

    Parameters
    ----------
    param : float32 or float64 array, NumPy or device
        The parameters, updated in place (a host array is copied to the device and
        back).
    grad : array of param's shape and dtype
        Their gradient (finite).
    m, v : arrays of param's shape and dtype
        The first and second moment averages, updated in place.
    step : int >= 1
        t, the number of updates including this one.
    lr : float >= 0
        The learning rate.
    beta1, beta2 : float in [0, 1), default 0.9 and 0.999
        The weights of the previous averages.
    eps : float > 0, default 1e-8
        Added to the corrected sqrt(v).
    weight_decay : float >= 0, default 0.01
        Decoupled decay, applied before the Adam step.
    """
    _adam_like(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, True)


def _adam_like(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    lr, wd, step, beta1, beta2, eps = check_update(lr, weight_decay, step=step, beta1=beta1,
                                                    beta2=beta2, eps=eps)
    coupled, decay = (0.0, 1.0 - lr * wd) if decoupled else (wd, 1.0)
    _run(_adam, param, grad, [("m", m), ("v", v)], lr / (1 - beta1**step), beta1,
         1 - beta1, beta2, 1 - beta2, 1 / math.sqrt(1 - beta2**step), eps, coupled, decay)
