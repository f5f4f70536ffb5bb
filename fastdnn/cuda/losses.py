"""Output losses fused with their output activation, on the GPU; and the L2 term.

m = batch size, k = outputs. Z: (m, k) output pre-activations.
Y: (m, k) targets (one-hot or probabilities), or (m,) integer class labels for softmax.
One kernel writes each row's loss (float64, as the CPU engine sums it) and the row's
gradient dZ = (y_hat - Y) / m; the batch loss is reduced on the device in a fixed order.
The ``*_on_device`` variants return it as a (1,) device array (of Z's dtype), so a
training loop need not wait for it. The per-element sigmoid, sigmoid cross-entropy and
squared error are fastdnn.formulas', the CPU engine's own.
"""
import math
import threading

import numpy as np
from numba import cuda

from .. import formulas, reference
from ..reference.losses import check_sample_weight, one_hot
from . import _device as dev

_SOFTMAX, _SIGMOID, _MSE, _POISSON = 0, 1, 2, 3   # formulas.OUTPUT_CODES
_UNIT = threading.local()   # per thread, as fastdnn.cuda._device's scratch buffers


def _unit_weight(dtype):
    """A device array [1] of ``dtype``: every row weighs 1 (made once per thread)."""
    cache = _UNIT.__dict__.setdefault("by_dtype", {})
    key = np.dtype(dtype).str
    if key not in cache:
        cache[key] = dev.full(1, dtype, 1)
    return cache[key]


@cuda.jit
def _row_loss(kind, Z, Y, labels, use_labels, weights, m, dZ, row_loss):
    """Loss of row i (float64, into row_loss[i, 0]) and its gradient dZ[i, :]; grid-stride
    over rows. The squared error's loss is already halved (formulas.squared_error).
    Row i weighs weights[i] (Z's dtype; a single 1 for all rows when unweighted): its
    loss times weights[i] and dZ = (y_hat - y) weights[i] / m, m the weights' sum."""
    rows, k = Z.shape
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, rows, stride):
        wi = weights[i % weights.shape[0]]
        loss = 0.0
        if kind == 0:  # softmax cross-entropy
            mx = Z[i, 0]
            for j in range(1, k):
                mx = max(mx, Z[i, j])
            s = Z[i, 0] * 0
            for j in range(k):
                s += math.exp(Z[i, j] - mx)
            lse = math.log(s)
            for j in range(k):
                if use_labels:
                    y = 1 if labels[i] == j else 0
                else:
                    y = Y[i, j]
                loss -= y * (Z[i, j] - mx - lse)
                dZ[i, j] = (math.exp(Z[i, j] - mx) / s - y) * wi / m
        elif kind == 1:  # sigmoid cross-entropy
            for j in range(k):
                z, y = Z[i, j], Y[i, j]
                loss += formulas.sigmoid_cross_entropy(z, y)
                dZ[i, j] = (formulas.sigmoid(z) - y) * wi / m
        elif kind == 3:  # half Poisson deviance of exp(z)
            for j in range(k):
                deviance, diff = formulas.poisson_deviance(Z[i, j], Y[i, j])
                loss += deviance
                dZ[i, j] = diff * wi / m
        else:  # half squared error
            for j in range(k):
                half_sq, diff = formulas.squared_error(Z[i, j], Y[i, j])
                loss += half_sq
                dZ[i, j] = diff * wi / m
        row_loss[i, 0] = loss * wi


def _loss(kind, Z, Y, dZ_out, allow_labels=False, loss_out=None, sample_weight=None):
    call = dev.Call(Z)
    dev.check_array("Z", Z, ndim=2)
    m, k = Z.shape
    dt = Z.dtype
    if not dev.is_device_array(Y):
        Y = np.asarray(Y)
    labels = None
    if allow_labels and Y.ndim == 1 and np.issubdtype(np.dtype(Y.dtype), np.integer):
        if tuple(Y.shape) != (m,):
            raise ValueError(f"Y must have shape ({m},) or ({m}, {k}), got {tuple(Y.shape)}")
        if not dev.is_device_array(Y):
            one_hot(Y, k)  # the range check, with the reference's message
            Y = Y.astype(np.int64, copy=False)
        labels, Yd = dev.to_device(Y), None
    else:
        if tuple(Y.shape) != (m, k):
            raise ValueError(f"Y must have shape ({m}, {k}), got {tuple(Y.shape)}")
        Yd = dev.to_device(Y if dev.is_device_array(Y) else Y.astype(dt, copy=False))
    Zd = dev.to_device(Z)
    use_labels = labels is not None
    if Yd is None:
        Yd = Zd  # unused placeholder of the right type
    if labels is None:
        labels = dev.scratch("labels", 1, np.int64)
    dZ = call.buffer(dZ_out, (m, k), dt, "dZ_out")
    row_loss = dev.scratch("row_loss", (m, 1), np.float64)
    total, weights = m, _unit_weight(dt)
    if sample_weight is not None:   # checked on the host, as the reference does
        w = check_sample_weight(dev.to_host(sample_weight) if dev.is_device_array(
            sample_weight) else sample_weight, m)
        total, weights = float(w.sum()), dev.to_device(w.astype(dt))
    _row_loss[dev.launch(m)](kind, Zd, Yd, labels, use_labels, weights,
                             dev.scalar(total, dt), dZ, row_loss)
    loss = call.buffer(loss_out, (1,), dt, "loss_out")
    dev.column_sums(row_loss, loss, divisor=total)   # summed in float64, rounded once
    return loss, call.result(dZ, dZ_out)


def weighted_loss(kind, Z, Y, dZ, loss, weights, total):
    """The loss ``kind`` of a training batch whose rows weigh ``weights`` (a device
    array of Z's dtype, already checked) summing to ``total``, into the device arrays
    dZ and loss (the engine's step: nothing moves to or from the host)."""
    m = Z.shape[0]
    row_loss = dev.scratch("row_loss", (m, 1), np.float64)
    _row_loss[dev.launch(m)](kind, Z, Y, _unit_labels(), False, weights,
                             dev.scalar(total, Z.dtype), dZ, row_loss)
    dev.column_sums(row_loss, loss, divisor=total)


def _unit_labels():
    return dev.scratch("labels", 1, np.int64)   # unused: the targets are (m, k)


def softmax_cross_entropy_on_device(Z, Y, *, sample_weight=None, dZ_out=None,
                                    loss_out=None):
    """softmax_cross_entropy with the loss left on the device as a (1,) array
    (``loss_out``, a (1,) device array of Z's dtype, when given)."""
    return _loss(_SOFTMAX, Z, Y, dZ_out, allow_labels=True, loss_out=loss_out,
                 sample_weight=sample_weight)


def sigmoid_cross_entropy_on_device(Z, Y, *, sample_weight=None, dZ_out=None,
                                    loss_out=None):
    """sigmoid_cross_entropy with the loss left on the device as a (1,) array."""
    return _loss(_SIGMOID, Z, Y, dZ_out, loss_out=loss_out, sample_weight=sample_weight)


def mean_squared_error_on_device(A, Y, *, sample_weight=None, dA_out=None, loss_out=None):
    """mean_squared_error with the loss left on the device as a (1,) array."""
    return _loss(_MSE, A, Y, dA_out, loss_out=loss_out, sample_weight=sample_weight)


def poisson_deviance_on_device(Z, Y, *, sample_weight=None, dZ_out=None, loss_out=None):
    """poisson_deviance with the loss left on the device as a (1,) array."""
    if not dev.is_device_array(Y) and np.any(np.asarray(Y) < 0):
        raise ValueError("Y must be >= 0 for a Poisson loss (counts), got a negative value")
    return _loss(_POISSON, Z, Y, dZ_out, loss_out=loss_out, sample_weight=sample_weight)


def softmax_cross_entropy(Z, Y, *, sample_weight=None, dZ_out=None):
    """Categorical cross-entropy of softmax(Z); returns (loss, dZ = (softmax(Z) - Y) / m),
    or with ``sample_weight`` (m,) the weighted mean, as the reference.

    Y is (m, k) one-hot/probabilities or (m,) integer labels. ``loss`` is a float (this
    waits for the GPU); see softmax_cross_entropy_on_device.
    """
    loss, dZ = softmax_cross_entropy_on_device(Z, Y, sample_weight=sample_weight,
                                               dZ_out=dZ_out)
    return float(loss.copy_to_host()[0]), dZ


def sigmoid_cross_entropy(Z, Y, *, sample_weight=None, dZ_out=None):
    """Binary cross-entropy of sigmoid(Z), summed over outputs, averaged over the batch
    (or weighted); returns (loss, dZ = (sigmoid(Z) - Y) / m)."""
    loss, dZ = sigmoid_cross_entropy_on_device(Z, Y, sample_weight=sample_weight,
                                               dZ_out=dZ_out)
    return float(loss.copy_to_host()[0]), dZ


def mean_squared_error(A, Y, *, sample_weight=None, dA_out=None):
    """sum((A - Y)**2) / (2m) (or weighted); returns (loss, dA = (A - Y) / m)."""
    loss, dA = mean_squared_error_on_device(A, Y, sample_weight=sample_weight, dA_out=dA_out)
    return float(loss.copy_to_host()[0]), dA


def poisson_deviance(Z, Y, *, sample_weight=None, dZ_out=None):
    """Half the Poisson deviance of exp(Z) against counts Y >= 0, summed over outputs,
    averaged over the batch (or weighted); returns (loss, dZ = (exp(Z) - Y) / m)."""
    loss, dZ = poisson_deviance_on_device(Z, Y, sample_weight=sample_weight, dZ_out=dZ_out)
    return float(loss.copy_to_host()[0]), dZ


@cuda.jit
def _row_softmax(Z, log, out):
    """Row-wise softmax (or log-softmax) with the row maximum subtracted; grid-stride
    over rows."""
    rows, k = Z.shape
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, rows, stride):
        mx = Z[i, 0]
        for j in range(1, k):
            mx = max(mx, Z[i, j])
        s = Z[i, 0] * 0
        for j in range(k):
            s += math.exp(Z[i, j] - mx)
        lse = math.log(s)
        for j in range(k):
            if log:
                out[i, j] = Z[i, j] - mx - lse
            else:
                out[i, j] = math.exp(Z[i, j] - mx) / s


def softmax(Z, *, out=None):
    """Row-wise softmax of (m, k) Z."""
    return _softmax(Z, False, out)


def log_softmax(Z):
    """Row-wise log-softmax of (m, k) Z."""
    return _softmax(Z, True, None)


def _softmax(Z, log, out):
    call = dev.Call(Z)
    dev.check_array("Z", Z, ndim=2)
    res = call.buffer(out, Z.shape, Z.dtype)
    _row_softmax[dev.launch(Z.shape[0])](dev.to_device(Z), log, res)
    return call.result(res, out)


def sigmoid(Z, *, out=None):
    """Element-wise logistic function (formulas.sigmoid)."""
    from .activations import activation_forward
    return activation_forward(Z, "sigmoid", out=out)


def l2_cost(weights, lambd, m):
    """(lambd / 2m) * sum of ||W||^2 over the given weight matrices (float64 on the host)."""
    return reference.l2_cost([dev.to_host(W) for W in weights], lambd, m)


def l2_grad(W, lambd, m):
    """(lambd / m) * W."""
    call = dev.Call(W)
    dev.check_array("W", W)
    res = cuda.device_array(W.shape, dtype=W.dtype)
    dev._scale[dev.launch(W.size)](dev.flat(res), dev.scalar(lambd / m, W.dtype),
                                   dev.flat(dev.to_device(W)))
    return call.result(res)
