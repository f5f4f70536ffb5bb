"""Optimizer updates on the GPU: each one grid-stride kernel over the flat buffer.

Work in place like the reference, with its argument order. Bias corrections and the
other scalars are computed on the host in float64 and passed in the arrays' dtype.
Host arrays are updated too (copied to the device and back), for tests.
"""
import math

from numba import cuda

from .._validation import check_update
from . import _device as dev


@cuda.jit
def _sgd(p, g, lr, wd):
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, p.shape[0], stride):
        p[i] -= lr * (g[i] + wd * p[i])


@cuda.jit
def _momentum(p, g, v, lr, beta, one_minus_beta, wd, nesterov):
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, p.shape[0], stride):
        gi = g[i] + wd * p[i]
        vi = beta * v[i] + one_minus_beta * gi
        v[i] = vi
        if nesterov:
            p[i] -= lr * (beta * vi + one_minus_beta * gi)
        else:
            p[i] -= lr * vi


@cuda.jit
def _rmsprop(p, g, s, lr, beta2, one_minus_beta2, eps, wd):
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, p.shape[0], stride):
        gi = g[i] + wd * p[i]
        si = beta2 * s[i] + one_minus_beta2 * gi * gi
        s[i] = si
        p[i] -= lr * gi / (math.sqrt(si) + eps)


@cuda.jit
def _adam(p, g, m, v, lr, beta1, one_minus_beta1, beta2, one_minus_beta2, bc1, bc2, eps,
          wd, decoupled):
    """Adam (decoupled=False: coupled L2 wd) or AdamW (decoupled: p -= wd p first, with
    wd = lr * weight_decay)."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, p.shape[0], stride):
        pi = p[i]
        gi = g[i]
        if decoupled:
            pi -= wd * pi
        else:
            gi = gi + wd * pi
        mi = beta1 * m[i] + one_minus_beta1 * gi
        vi = beta2 * v[i] + one_minus_beta2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = pi - lr * (mi / bc1) / (math.sqrt(vi / bc2) + eps)


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
    devs = [dev.to_device(a) for a in arrays]
    dt = param.dtype
    args = [dev.flat(d) for d in devs] + [s if isinstance(s, bool) else dev.scalar(s, dt)
                                          for s in scalars]
    kernel[dev.launch(param.size)](*args)
    call = dev.Call(param)
    for a, d in zip(arrays, devs):
        if a is not grad:
            call.write_back(a, d)


def sgd_update(param, grad, lr, weight_decay=0.0):
    """param -= lr * g, g = grad + weight_decay * param."""
    lr, wd = check_update(lr, weight_decay)
    _run(_sgd, param, grad, [], lr, wd)


def momentum_update(param, grad, velocity, lr, beta=0.9, weight_decay=0.0):
    """v = beta * v + (1 - beta) * g; param -= lr * v."""
    _momentum_like(param, grad, velocity, lr, beta, weight_decay, False)


def nesterov_update(param, grad, velocity, lr, beta=0.9, weight_decay=0.0):
    """v = beta * v + (1 - beta) * g; param -= lr * (beta * v + (1 - beta) * g)."""
    _momentum_like(param, grad, velocity, lr, beta, weight_decay, True)


def _momentum_like(param, grad, velocity, lr, beta, weight_decay, nesterov):
    lr, wd, beta = check_update(lr, weight_decay, beta=beta)
    _run(_momentum, param, grad, [("velocity", velocity)], lr, beta, 1 - beta, wd,
         nesterov)


def rmsprop_update(param, grad, sq_avg, lr, beta2=0.999, eps=1e-8, weight_decay=0.0):
    """s = beta2 * s + (1 - beta2) * g^2; param -= lr * g / (sqrt(s) + eps)."""
    lr, wd, beta2, eps = check_update(lr, weight_decay, beta2=beta2, eps=eps)
    _run(_rmsprop, param, grad, [("sq_avg", sq_avg)], lr, beta2, 1 - beta2, eps, wd)


def adam_update(param, grad, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                weight_decay=0.0):
    """Adam with bias correction; ``step`` is t >= 1, the count including this update.

    m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
    param -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps).
    """
    _adam_like(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, False)


def adamw_update(param, grad, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                 weight_decay=0.01):
    """AdamW: param -= lr * weight_decay * param, then the Adam step on the raw gradient."""
    _adam_like(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, True)


def _adam_like(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    lr, wd, step, beta1, beta2, eps = check_update(lr, weight_decay, step=step, beta1=beta1,
                                                    beta2=beta2, eps=eps)
    _run(_adam, param, grad, [("m", m), ("v", v)], lr, beta1, 1 - beta1, beta2, 1 - beta2,
         1 - beta1**step, 1 - beta2**step, eps, lr * wd if decoupled else wd, decoupled)
