"""Activations and inverted dropout on the GPU, element-wise kernels.

Z, A: (m, n) pre-activation and activation; m = batch size, n = layer width.
The element-wise arithmetic is fastdnn.formulas' (activate, activation_grad, dropout),
the CPU backend's own. Dropout masks come from the counter-based hash of fastdnn.rng, bit
for bit the reference's: element (i, j) is kept when is_kept(key, i * n + j, threshold).
"""
from __future__ import annotations

import numpy as np
from numba import cuda
from numpy.typing import NDArray

from .._validation import check_dims
from ..formulas import activate, activation_grad
from . import _device as dev
from ._device import DeviceArray, HostOrDevice, apply_dropout, kept


@cuda.jit
def _activation_forward(Z, code, A):
    """A = activation(Z); grid-stride over the flat elements."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, Z.shape[0], stride):
        A[t] = activate(Z[t], code)


@cuda.jit
def _activation_backward(dA, A, code, dZ):
    """dZ = dA * activation'(A); grid-stride over the flat elements."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, dA.shape[0], stride):
        dZ[t] = dA[t] * activation_grad(A[t], code)


@cuda.jit
def _dropout(A, use_dropout, key, threshold, keep_prob, out):
    """out = A * mask / keep_prob; grid-stride over the flat (row-major) elements."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, A.shape[0], stride):
        out[t] = apply_dropout(A[t], use_dropout, key, t, threshold, keep_prob)


@cuda.jit
def _mask(key, threshold, mask):
    """mask[t] = keep bit of element t; grid-stride over the flat elements."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, mask.shape[0], stride):
        mask[t] = kept(True, key, t, threshold)


def activation_forward(Z: HostOrDevice, activation: str, *,
                       out: HostOrDevice | None = None) -> HostOrDevice:
    """A = activation(Z), element-wise, for an array of any shape.

    Parameters
    ----------
    Z : float32 or float64 array, NumPy or device
        Pre-activations.
    activation : str
        A key of fastdnn.reference.ACTIVATIONS.
    out : array of Z's shape and dtype, optional
        Buffer for the result.

    Returns
    -------
    A : array of Z's shape and dtype
        A NumPy array for a NumPy Z, else a device array; ``out`` when given.
    """
    call = dev.Call(Z)
    dev.check_array("Z", Z)
    code = dev.activation_code(activation)
    Zd = dev.to_device(Z)
    A = call.buffer(out, Z.shape, Z.dtype)
    _activation_forward[dev.launch(Z.size)](dev.flat(Zd), code, dev.flat(A))
    return call.result(A, out)


def activation_backward(dA: HostOrDevice, A: HostOrDevice, activation: str, *,
                        out: HostOrDevice | None = None) -> HostOrDevice:
    """dZ = dA * activation'(Z), with the derivative taken from A = activation(Z).

    Parameters
    ----------
    dA : float32 or float64 array, NumPy or device
        Gradient with respect to A.
    A : array of dA's shape
        The forward output activation(Z).
    activation : str
        A key of fastdnn.reference.ACTIVATIONS.
    out : array of dA's shape and dtype, optional
        Buffer for the result.

    Returns
    -------
    dZ : array of dA's shape and dtype
        A NumPy array for a NumPy dA, else a device array; ``out`` when given.
    """
    call = dev.Call(dA)
    dev.check_array("dA", dA)
    dev.check_array("A", A, shape=dA.shape)
    code = dev.activation_code(activation)
    dZ = call.buffer(out, dA.shape, dA.dtype)
    _activation_backward[dev.launch(dA.size)](dev.flat(dev.to_device(dA)),
                                              dev.flat(dev.to_device(A)), code, dev.flat(dZ))
    return call.result(dZ, out)


def dropout_mask(shape: int | tuple[int, ...], keep_prob: float,
                 key: int) -> NDArray[np.bool_]:
    """Boolean keep-mask of ``shape`` (True = kept), computed on the device.

    Parameters
    ----------
    shape : int or tuple of int
        The activations' shape.
    keep_prob : float in (0, 1]
        The probability of keeping a unit.
    key : int
        The dropout key (fastdnn.rng.dropout_key(seed, step, layer)).

    Returns
    -------
    mask : bool array of ``shape``
        A NumPy array, like the reference's (``dropout_mask_device`` leaves it on the
        device).
    """
    return dropout_mask_device(shape, keep_prob, key).copy_to_host()


def dropout_mask_device(shape: int | tuple[int, ...], keep_prob: float,
                        key: int) -> DeviceArray:
    """dropout_mask as a boolean device array.

    Parameters
    ----------
    shape, keep_prob, key
        As in dropout_mask.

    Returns
    -------
    mask : bool device array of ``shape``
    """
    _, k, threshold, _ = dev.dropout_args(keep_prob, key, np.float64)
    shape = check_dims("shape", shape)
    size = int(np.prod(shape))
    mask = cuda.device_array(size, dtype=np.bool_)
    _mask[dev.launch(size)](k, threshold, mask)
    return mask.reshape(shape)


def dropout_forward(A: HostOrDevice, keep_prob: float, key: int, *,
                    out: HostOrDevice | None = None) -> HostOrDevice:
    """Zero the dropped units and scale the kept ones by 1 / keep_prob.

    Parameters
    ----------
    A : float32 or float64 array, NumPy or device
        Activations, any shape.
    keep_prob : float in (0, 1]
        The probability of keeping a unit.
    key : int
        The dropout key.
    out : array of A's shape and dtype, optional
        Buffer for the result.

    Returns
    -------
    array of A's shape and dtype
        A NumPy array for a NumPy A, else a device array; ``out`` when given.
    """
    call = dev.Call(A)
    dev.check_array("A", A)
    drop = dev.dropout_args(keep_prob, key, A.dtype)
    res = call.buffer(out, A.shape, A.dtype)
    _dropout[dev.launch(A.size)](dev.flat(dev.to_device(A)), *drop, dev.flat(res))
    return call.result(res, out)


def dropout_backward(dA: HostOrDevice, keep_prob: float, key: int, *,
                     out: HostOrDevice | None = None) -> HostOrDevice:
    """Gradient through dropout: the same mask and scale as forward.

    Parameters
    ----------
    dA : float32 or float64 array, NumPy or device
        Gradient with respect to dropout's output.
    keep_prob, key
        As in the forward pass.
    out : array of dA's shape and dtype, optional
        Buffer for the result.

    Returns
    -------
    array of dA's shape and dtype
        A NumPy array for a NumPy dA, else a device array; ``out`` when given.
    """
    return dropout_forward(dA, keep_prob, key, out=out)
