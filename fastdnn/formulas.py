"""Element-wise formulas written once, as scalar Numba functions.

Called from the CPU prange loops and from the CUDA kernels alike, so every backend
computes each element the same way. Activation codes index ACTIVATION_CODES.
"""
import numpy as np
from numba import njit

from .config import CACHE
from .reference.activations import LEAKY_RELU_SLOPE
from .rng import GOLDEN_GAMMA, MIX1, MIX2

ACTIVATION_CODES = {"identity": 0, "relu": 1, "leaky_relu": 2, "tanh": 3, "sigmoid": 4}

_GAMMA = np.uint64(GOLDEN_GAMMA)
_MIX1 = np.uint64(MIX1)
_MIX2 = np.uint64(MIX2)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_S32 = np.uint64(32)


@njit(inline="always", cache=CACHE)
def splitmix64(x):
    z = x + _GAMMA
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(inline="always", cache=CACHE)
def is_kept(key, index, threshold):
    """Dropout keep bit of element ``index`` (uint64s; see fastdnn.rng)."""
    return (splitmix64(key + index) >> _S32) < threshold


@njit(inline="always", cache=CACHE)
def activate(z, code):
    if code == 1:
        return z if z > 0 else z * 0
    if code == 2:
        return z if z > 0 else z * LEAKY_RELU_SLOPE
    if code == 3:
        return np.tanh(z)
    if code == 4:
        if z >= 0:
            return 1 / (1 + np.exp(-z))
        e = np.exp(z)
        return e / (1 + e)
    return z


@njit(inline="always", cache=CACHE)
def activation_grad(a, code):
    """d activation / dz written from the output a."""
    if code == 1:
        return 1.0 if a > 0 else 0.0
    if code == 2:
        return 1.0 if a > 0 else LEAKY_RELU_SLOPE
    if code == 3:
        return 1 - a * a
    if code == 4:
        return a * (1 - a)
    return 1.0
