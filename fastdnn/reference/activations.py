"""Activations and their derivatives, written from the activation's output.

Z, A: (m, n) pre-activation and activation; m = batch size, n = layer width.
Every derivative is a function of A alone, so only A needs keeping for backward.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .._validation import check_float_array, check_shape, emit

LEAKY_RELU_SLOPE = 0.01


def _sigmoid(Z):
    # exp of a non-positive number only: no overflow for large |Z|
    e = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1 / (1 + e), e / (1 + e))


ACTIVATIONS = {
    "identity": lambda Z: Z.copy(),
    "relu": lambda Z: np.maximum(Z, 0),
    "leaky_relu": lambda Z: np.where(Z > 0, Z, LEAKY_RELU_SLOPE * Z),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
}

# dA/dZ as a function of A
DERIVATIVES = {
    "identity": lambda A: np.ones_like(A),
    "relu": lambda A: (A > 0).astype(A.dtype),
    "leaky_relu": lambda A: np.where(A > 0, 1, LEAKY_RELU_SLOPE).astype(A.dtype),
    "tanh": lambda A: 1 - A * A,
    "sigmoid": lambda A: A * (1 - A),
}


def check_activation(activation: str) -> str:
    """Check that ``activation`` names one of ACTIVATIONS.

    Parameters
    ----------
    activation : str
        The name to check.

    Returns
    -------
    str
        ``activation`` itself.

    Raises
    ------
    ValueError
        When it is not a key of ACTIVATIONS.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
        )
    return activation


def activation_forward(Z: NDArray[np.floating], activation: str, *,
                       out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """A = activation(Z), element-wise.

    Parameters
    ----------
    Z : float32 or float64 array
        Pre-activations, any shape.
    activation : str
        A key of ACTIVATIONS.
    out : array of Z's shape, optional
        Buffer the result is copied into.

    Returns
    -------
    A : array of Z's shape and dtype
        ``out`` when given.
    """
    check_activation(activation)
    check_float_array("Z", Z)
    return emit(ACTIVATIONS[activation](Z).astype(Z.dtype, copy=False), out)


def activation_backward(dA: NDArray[np.floating], A: NDArray[np.floating],
                        activation: str, *,
                        out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """dZ = dA * activation'(Z), with the derivative taken from A = activation(Z).

    Parameters
    ----------
    dA : float32 or float64 array of A's shape
        Gradient of the loss with respect to A.
    A : float32 or float64 array
        The forward output activation(Z).
    activation : str
        A key of ACTIVATIONS (and of DERIVATIVES).
    out : array of A's shape, optional
        Buffer the result is copied into.

    Returns
    -------
    dZ : array of A's shape
        ``out`` when given.
    """
    check_activation(activation)
    check_float_array("A", A)
    check_float_array("dA", dA)
    check_shape("dA", dA, A.shape)
    return emit(dA * DERIVATIVES[activation](A), out)
