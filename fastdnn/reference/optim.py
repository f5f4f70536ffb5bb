"""Optimizer updates, in place, written as in the course.

Each function updates ``param`` and its state arrays in place and returns None.
``weight_decay`` is coupled L2 (g + weight_decay * param) except in adamw_update,
where it is decoupled (param -= lr * weight_decay * param before the Adam step).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .._validation import (check_finite, check_int, check_own_memory, check_real,
                           finite_checks_on)


def sgd_update(param: NDArray[np.floating], grad: NDArray[np.floating], lr: float,
               weight_decay: float = 0.0) -> None:
    """Gradient descent, in place: param -= lr * g.

    Parameters
    ----------
    param : float array
        The parameters, updated in place.
    grad : array of param's shape
        Their gradient (finite).
    lr : float >= 0
        The learning rate.
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    """
    g = _grad(param, grad, lr, weight_decay)
    param -= lr * g


def momentum_update(param: NDArray[np.floating], grad: NDArray[np.floating],
                    velocity: NDArray[np.floating], lr: float, beta: float = 0.9,
                    weight_decay: float = 0.0) -> None:
    """Momentum, in place: v = beta * v + (1 - beta) * g; param -= lr * v.

    Parameters
    ----------
    param : float array
        The parameters, updated in place.
    grad : array of param's shape
        Their gradient (finite).
    velocity : array of param's shape
        v, updated in place.
    lr : float >= 0
        The learning rate.
    beta : float in [0, 1), default 0.9
        The weight of the previous velocity.
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    """
    g = _grad(param, grad, lr, weight_decay, velocity=velocity)
    check_real("beta", beta, 0.0, 1.0, high_open=True)
    velocity *= beta
    velocity += (1 - beta) * g
    param -= lr * velocity


def nesterov_update(param: NDArray[np.floating], grad: NDArray[np.floating],
                    velocity: NDArray[np.floating], lr: float, beta: float = 0.9,
                    weight_decay: float = 0.0) -> None:
    """Nesterov momentum, in place.

    v = beta * v + (1 - beta) * g; param -= lr * (beta * v + (1 - beta) * g): the
    look-ahead form of Nesterov momentum (as in PyTorch's nesterov=True), with the
    velocity kept as an exponentially weighted average like the course's momentum.

    Parameters
    ----------
    param : float array
        The parameters, updated in place.
    grad : array of param's shape
        Their gradient (finite).
    velocity : array of param's shape
        v, updated in place.
    lr : float >= 0
        The learning rate.
    beta : float in [0, 1), default 0.9
        The weight of the previous velocity.
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    """
    g = _grad(param, grad, lr, weight_decay, velocity=velocity)
    check_real("beta", beta, 0.0, 1.0, high_open=True)
    velocity *= beta
    velocity += (1 - beta) * g
    param -= lr * (beta * velocity + (1 - beta) * g)


def rmsprop_update(param: NDArray[np.floating], grad: NDArray[np.floating],
                   sq_avg: NDArray[np.floating], lr: float, beta2: float = 0.999,
                   eps: float = 1e-8, weight_decay: float = 0.0) -> None:
    """RMSprop, in place.

    s = beta2 * s + (1 - beta2) * g^2; param -= lr * g / (sqrt(s) + eps).

    Parameters
    ----------
    param : float array
        The parameters, updated in place.
    grad : array of param's shape
        Their gradient (finite).
    sq_avg : array of param's shape
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
    g = _grad(param, grad, lr, weight_decay, sq_avg=sq_avg)
    check_real("beta2", beta2, 0.0, 1.0, high_open=True)
    check_real("eps", eps, 0.0, low_open=True)
    sq_avg *= beta2
    sq_avg += (1 - beta2) * g * g
    param -= lr * g / (np.sqrt(sq_avg) + eps)


def adam_update(param: NDArray[np.floating], grad: NDArray[np.floating],
                m: NDArray[np.floating], v: NDArray[np.floating], step: int, lr: float,
                beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                weight_decay: float = 0.0) -> None:
    """Adam with bias correction, in place.

    m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
    param -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps).

    Parameters
    ----------
    param : float array
        The parameters, updated in place.
    grad : array of param's shape
        Their gradient (finite).
    m, v : arrays of param's shape
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
    g = _grad(param, grad, lr, weight_decay, m=m, v=v)
    _check_adam(step, beta1, beta2, eps)
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    m_hat = m / (1 - beta1**step)
    v_hat = v / (1 - beta2**step)
    param -= lr * m_hat / (np.sqrt(v_hat) + eps)


def adamw_update(param: NDArray[np.floating], grad: NDArray[np.floating],
                 m: NDArray[np.floating], v: NDArray[np.floating], step: int, lr: float,
                 beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.01) -> None:
    """AdamW: param -= lr * weight_decay * param, then the Adam step on the raw gradient.

    Parameters
    ----------
    param : float array
        The parameters, updated in place.
    grad : array of param's shape
        Their gradient (finite).
    m, v : arrays of param's shape
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
    check_real("weight_decay", weight_decay, 0.0)
    _grad(param, grad, lr, 0.0, m=m, v=v)
    _check_adam(step, beta1, beta2, eps)  # before param changes
    param -= lr * weight_decay * param
    adam_update(param, grad, m, v, step, lr, beta1, beta2, eps)


def _grad(param, grad, lr, weight_decay, **state):
    check_real("lr", lr, 0.0)
    check_real("weight_decay", weight_decay, 0.0)
    # state arrays are updated in place: a wrong shape could broadcast silently
    arrays = {"param": param, "grad": grad, **state}
    for name, x in arrays.items():
        if x.shape != param.shape:
            raise ValueError(f"{name} must have the shape of param {param.shape}, "
                             f"got {x.shape}")
    check_own_memory(arrays.items())
    if finite_checks_on():
        check_finite("grad", grad)
    return grad + weight_decay * param if weight_decay else grad


def _check_adam(step, beta1, beta2, eps):
    check_int("step", step, 1)
    check_real("beta1", beta1, 0.0, 1.0, high_open=True)
    check_real("beta2", beta2, 0.0, 1.0, high_open=True)
    check_real("eps", eps, 0.0, low_open=True)
