"""Output losses fused with their output activation, on the GPU; and the L2 term.

m = batch size, k = outputs. Z: (m, k) output pre-activations.
Y: (m, k) targets (one-hot or probabilities), or (m,) integer class labels for softmax.
One kernel writes each row's loss (float64, as the CPU engine sums it) and the row's
gradient dZ = (y_hat - Y) / m; the batch loss is reduced on the device in a fixed order.
The ``*_on_device`` variants return it as a (1,) device array (of Z's dtype), so a
training loop need not wait for it. The per-element sigmoid, sigmoid cross-entropy and
squared error are fastdnn.formulas', the CPU engine's own. NumPy inputs give NumPy
results; device inputs give device arrays (fastdnn.cuda._device).
"""
from __future__ import annotations

import math
import threading
from collections.abc import Iterable

import numpy as np
from numba import cuda
from numpy.typing import ArrayLike

from .. import formulas, reference
from ..reference.losses import check_sample_weight, one_hot
from . import _device as dev
from ._device import DeviceArray, HostOrDevice

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


def weighted_loss(kind: int, Z: DeviceArray, Y: DeviceArray, dZ: DeviceArray,
                  loss: DeviceArray, weights: DeviceArray, total: float) -> None:
    """The loss of a training batch whose rows are weighed, into device arrays.

    The engine's step: nothing moves to or from the host.

    Parameters
    ----------
    kind : int
        The loss: 0 softmax cross-entropy, 1 sigmoid cross-entropy, 2 half squared
        error, 3 half Poisson deviance (formulas.OUTPUT_CODES).
    Z, Y : (m, k) device arrays
        Output pre-activations and targets.
    dZ : (m, k) device array
        Receives the gradient (y_hat - Y) w_i / total.
    loss : (1,) device array
        Receives the weighted mean loss.
    weights : (m,) device array of Z's dtype
        The row weights, already checked.
    total : float
        Their sum.
    """
    m = Z.shape[0]
    row_loss = dev.scratch("row_loss", (m, 1), np.float64)
    _row_loss[dev.launch(m)](kind, Z, Y, _unit_labels(), False, weights,
                             dev.scalar(total, Z.dtype), dZ, row_loss)
    dev.column_sums(row_loss, loss, divisor=total)


def _unit_labels():
    return dev.scratch("labels", 1, np.int64)   # unused: the targets are (m, k)


def softmax_cross_entropy_on_device(Z: HostOrDevice, Y: ArrayLike | DeviceArray, *,
                                    sample_weight: ArrayLike | DeviceArray | None = None,
                                    dZ_out: HostOrDevice | None = None,
                                    loss_out: DeviceArray | None = None,
                                    ) -> tuple[DeviceArray, HostOrDevice]:
    """softmax_cross_entropy with the loss left on the device as a (1,) array.

    Parameters
    ----------
    Z, Y, sample_weight, dZ_out
        As in softmax_cross_entropy.
    loss_out : (1,) device array of Z's dtype, optional
        Buffer for the loss.

    Returns
    -------
    loss : (1,) device array of Z's dtype
        The batch mean (summed in float64, rounded once); ``loss_out`` when given.
    dZ : (m, k) array
        As in softmax_cross_entropy.
    """
    return _loss(_SOFTMAX, Z, Y, dZ_out, allow_labels=True, loss_out=loss_out,
                 sample_weight=sample_weight)


def sigmoid_cross_entropy_on_device(Z: HostOrDevice, Y: ArrayLike | DeviceArray, *,
                                    sample_weight: ArrayLike | DeviceArray | None = None,
                                    dZ_out: HostOrDevice | None = None,
                                    loss_out: DeviceArray | None = None,
                                    ) -> tuple[DeviceArray, HostOrDevice]:
    """sigmoid_cross_entropy with the loss left on the device as a (1,) array.

    Parameters
    ----------
    Z, Y, sample_weight, dZ_out
        As in sigmoid_cross_entropy.
    loss_out : (1,) device array of Z's dtype, optional
        Buffer for the loss.

    Returns
    -------
    loss : (1,) device array of Z's dtype
        The batch mean; ``loss_out`` when given.
    dZ : (m, k) array
        As in sigmoid_cross_entropy.
    """
    return _loss(_SIGMOID, Z, Y, dZ_out, loss_out=loss_out, sample_weight=sample_weight)


def mean_squared_error_on_device(A: HostOrDevice, Y: ArrayLike | DeviceArray, *,
                                 sample_weight: ArrayLike | DeviceArray | None = None,
                                 dA_out: HostOrDevice | None = None,
                                 loss_out: DeviceArray | None = None,
                                 ) -> tuple[DeviceArray, HostOrDevice]:
    """mean_squared_error with the loss left on the device as a (1,) array.

    Parameters
    ----------
    A, Y, sample_weight, dA_out
        As in mean_squared_error.
    loss_out : (1,) device array of A's dtype, optional
        Buffer for the loss.

    Returns
    -------
    loss : (1,) device array of A's dtype
        The batch mean; ``loss_out`` when given.
    dA : (m, k) array
        As in mean_squared_error.
    """
    return _loss(_MSE, A, Y, dA_out, loss_out=loss_out, sample_weight=sample_weight)


def poisson_deviance_on_device(Z: HostOrDevice, Y: ArrayLike | DeviceArray, *,
                               sample_weight: ArrayLike | DeviceArray | None = None,
                               dZ_out: HostOrDevice | None = None,
                               loss_out: DeviceArray | None = None,
                               ) -> tuple[DeviceArray, HostOrDevice]:
    """poisson_deviance with the loss left on the device as a (1,) array.

    Parameters
    ----------
    Z, Y, sample_weight, dZ_out
        As in poisson_deviance.
    loss_out : (1,) device array of Z's dtype, optional
        Buffer for the loss.

    Returns
    -------
    loss : (1,) device array of Z's dtype
        The batch mean; ``loss_out`` when given.
    dZ : (m, k) array
        As in poisson_deviance.

    Raises
    ------
    ValueError
        When a host Y holds a negative value (device targets are not checked).
    """
    if not dev.is_device_array(Y) and np.any(np.asarray(Y) < 0):
        raise ValueError("Y must be >= 0 for a Poisson loss (counts), got a negative value")
    return _loss(_POISSON, Z, Y, dZ_out, loss_out=loss_out, sample_weight=sample_weight)


def softmax_cross_entropy(Z: HostOrDevice, Y: ArrayLike | DeviceArray, *,
                          sample_weight: ArrayLike | DeviceArray | None = None,
                          dZ_out: HostOrDevice | None = None) -> tuple[float, HostOrDevice]:
    """Categorical cross-entropy of softmax(Z), averaged over the batch, as the reference.

    Parameters
    ----------
    Z : (m, k) float32 or float64 array, NumPy or device
        Output pre-activations.
    Y : array_like or device array, (m, k) or (m,)
        One-hot or probability targets, or integer labels in [0, k).
    sample_weight : array_like or device array, (m,), optional
        Row weights >= 0, not all 0 (checked on the host): the loss is then the
        weighted mean sum_i w_i loss_i / sum_i w_i, and row i's gradient is scaled by
        w_i / sum(w) instead of 1 / m.
    dZ_out : (m, k) array, optional
        Buffer for dZ.

    Returns
    -------
    loss : float
        The batch mean (this waits for the GPU; see softmax_cross_entropy_on_device).
    dZ : (m, k) array
        (softmax(Z) - Y) / m.
    """
    loss, dZ = softmax_cross_entropy_on_device(Z, Y, sample_weight=sample_weight,
                                               dZ_out=dZ_out)
    return float(loss.copy_to_host()[0]), dZ


def sigmoid_cross_entropy(Z: HostOrDevice, Y: ArrayLike | DeviceArray, *,
                          sample_weight: ArrayLike | DeviceArray | None = None,
                          dZ_out: HostOrDevice | None = None) -> tuple[float, HostOrDevice]:
    """Binary cross-entropy of sigmoid(Z), summed over outputs, averaged over the batch.

    Parameters
    ----------
    Z : (m, k) float32 or float64 array, NumPy or device
        Output pre-activations.
    Y : array_like or device array, (m, k)
        Targets in [0, 1].
    sample_weight : array_like or device array, (m,), optional
        Row weights >= 0, not all 0 (checked on the host): the loss is then the
        weighted mean sum_i w_i loss_i / sum_i w_i, and row i's gradient is scaled by
        w_i / sum(w) instead of 1 / m.
    dZ_out : (m, k) array, optional
        Buffer for dZ.

    Returns
    -------
    loss : float
        The batch mean (this waits for the GPU).
    dZ : (m, k) array
        (sigmoid(Z) - Y) / m.
    """
    loss, dZ = sigmoid_cross_entropy_on_device(Z, Y, sample_weight=sample_weight,
                                               dZ_out=dZ_out)
    return float(loss.copy_to_host()[0]), dZ


def mean_squared_error(A: HostOrDevice, Y: ArrayLike | DeviceArray, *,
                       sample_weight: ArrayLike | DeviceArray | None = None,
                       dA_out: HostOrDevice | None = None) -> tuple[float, HostOrDevice]:
    """Half the squared error, summed over outputs and averaged over the batch.

    Parameters
    ----------
    A : (m, k) float32 or float64 array, NumPy or device
        Outputs (identity activation).
    Y : array_like or device array, (m, k)
        Targets.
    sample_weight : array_like or device array, (m,), optional
        Row weights >= 0, not all 0 (checked on the host): the loss is then the
        weighted mean sum_i w_i loss_i / sum_i w_i, and row i's gradient is scaled by
        w_i / sum(w) instead of 1 / m.
    dA_out : (m, k) array, optional
        Buffer for dA.

    Returns
    -------
    loss : float
        sum((A - Y)**2) / (2m) (this waits for the GPU).
    dA : (m, k) array
        (A - Y) / m.
    """
    loss, dA = mean_squared_error_on_device(A, Y, sample_weight=sample_weight, dA_out=dA_out)
    return float(loss.copy_to_host()[0]), dA


def poisson_deviance(Z: HostOrDevice, Y: ArrayLike | DeviceArray, *,
                     sample_weight: ArrayLike | DeviceArray | None = None,
                     dZ_out: HostOrDevice | None = None) -> tuple[float, HostOrDevice]:
    """Half the Poisson deviance of exp(Z) against counts Y, averaged over the batch.

    Summed over outputs, as scikit-learn's Poisson loss.

    Parameters
    ----------
    Z : (m, k) float32 or float64 array, NumPy or device
        Output pre-activations, the log of the predicted means.
    Y : array_like or device array, (m, k)
        Counts >= 0.
    sample_weight : array_like or device array, (m,), optional
        Row weights >= 0, not all 0 (checked on the host): the loss is then the
        weighted mean sum_i w_i loss_i / sum_i w_i, and row i's gradient is scaled by
        w_i / sum(w) instead of 1 / m.
    dZ_out : (m, k) array, optional
        Buffer for dZ.

    Returns
    -------
    loss : float
        The batch mean (this waits for the GPU).
    dZ : (m, k) array
        (exp(Z) - Y) / m.

    Raises
    ------
    ValueError
        When a host Y holds a negative value.
    """
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


def softmax(Z: HostOrDevice, *, out: HostOrDevice | None = None) -> HostOrDevice:
    """Row-wise softmax of (m, k) Z, with the row maximum subtracted.

    Parameters
    ----------
    Z : (m, k) float32 or float64 array, NumPy or device
        Pre-activations.
    out : (m, k) array, optional
        Buffer for the result.

    Returns
    -------
    (m, k) array
        A NumPy array for a NumPy Z, else a device array; ``out`` when given.
    """
    return _softmax(Z, False, out)


def log_softmax(Z: HostOrDevice) -> HostOrDevice:
    """Row-wise log-softmax of (m, k) Z.

    Parameters
    ----------
    Z : (m, k) float32 or float64 array, NumPy or device
        Pre-activations.

    Returns
    -------
    (m, k) array
        Z - max - log(sum(exp(Z - max))) per row; NumPy for a NumPy Z.
    """
    return _softmax(Z, True, None)


def _softmax(Z, log, out):
    call = dev.Call(Z)
    dev.check_array("Z", Z, ndim=2)
    res = call.buffer(out, Z.shape, Z.dtype)
    _row_softmax[dev.launch(Z.shape[0])](dev.to_device(Z), log, res)
    return call.result(res, out)


def sigmoid(Z: HostOrDevice, *, out: HostOrDevice | None = None) -> HostOrDevice:
    """Element-wise logistic function (formulas.sigmoid).

    Parameters
    ----------
    Z : float32 or float64 array, NumPy or device
        Pre-activations, any shape.
    out : array of Z's shape and dtype, optional
        Buffer for the result.

    Returns
    -------
    array of Z's shape
        A NumPy array for a NumPy Z, else a device array; ``out`` when given.
    """
    from .activations import activation_forward
    return activation_forward(Z, "sigmoid", out=out)


def l2_cost(weights: Iterable[HostOrDevice], lambd: float, m: int) -> float:
    """The L2 cost term: (lambd / 2m) * sum of ||W||^2 over the given weight matrices.

    Parameters
    ----------
    weights : iterable of arrays, NumPy or device
        The weight matrices (copied to the host, summed in float64).
    lambd : float
        The L2 strength.
    m : int
        The batch size.

    Returns
    -------
    float
    """
    return reference.l2_cost([dev.to_host(W) for W in weights], lambd, m)


def l2_grad(W: HostOrDevice, lambd: float, m: int) -> HostOrDevice:
    """Gradient of l2_cost with respect to one weight matrix: (lambd / m) * W.

    Parameters
    ----------
    W : float32 or float64 array, NumPy or device
        The weight matrix.
    lambd : float
        The L2 strength.
    m : int
        The batch size.

    Returns
    -------
    array of W's shape and dtype
        A NumPy array for a NumPy W, else a device array.
    """
    call = dev.Call(W)
    dev.check_array("W", W)
    res = cuda.device_array(W.shape, dtype=W.dtype)
    dev._scale[dev.launch(W.size)](dev.flat(res), dev.scalar(lambd / m, W.dtype),
                                   dev.flat(dev.to_device(W)))
    return call.result(res)
