"""Activations and their derivatives, written from the activation's output.

Z, A: (m, n) pre-activation and activation; m = batch size, n = layer width.
Every derivative is a function of A alone, so only A needs keeping for backward.
"""
import numpy as np

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


def check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
        )
    return activation


def activation_forward(Z, activation, *, out=None):
    """A = activation(Z)."""
    check_activation(activation)
    check_float_array("Z", Z)
    return emit(ACTIVATIONS[activation](Z).astype(Z.dtype, copy=False), out)


def activation_backward(dA, A, activation, *, out=None):
    """dZ = dA * activation'(Z), with the derivative taken from A."""
    check_activation(activation)
    check_float_array("A", A)
    check_float_array("dA", dA)
    check_shape("dA", dA, A.shape)
    return emit(dA * DERIVATIVES[activation](A), out)
