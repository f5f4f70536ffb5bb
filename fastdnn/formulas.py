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
# float32 constants: float32 op float32 stays float32, float64 op float32 is float64, so
# each formula computes in its argument's dtype (a Python 1 would promote float32 to
# float64 and halve the SIMD width).
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


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
    """activation(z) for ACTIVATION_CODES ``code``, in z's dtype.

    sigmoid takes exp of -|z| only (no overflow), one exp so that a loop over it
    vectorises.
    Call with a constant ``code`` inside a loop (see fastdnn.cpu._rows) so the branches
    fold away.
    """
    if code == 1:
        return z if z > 0 else z * _ZERO
    if code == 2:
        return z if z > 0 else z * LEAKY_RELU_SLOPE
    if code == 3:
        # not (1 - e^-2|z|) / (1 + e^-2|z|): it cancels for small |z| (relative error
        # 3e-4 at z = 1e-4 in float32), which costs more than np.tanh's speed
        return np.tanh(z)
    if code == 4:
        e = np.exp(-abs(z))
        r = _ONE / (_ONE + e)
        return r if z >= 0 else e * r
    return z


@njit(inline="always", cache=CACHE)
def activation_grad(a, code):
    """d activation / dz written from the output a (float32 constants; see above)."""
    if code == 1:
        return _ONE if a > 0 else _ZERO
    if code == 2:
        return 1.0 if a > 0 else LEAKY_RELU_SLOPE  # float64: the slope is not a float32
    if code == 3:
        return _ONE - a * a
    if code == 4:
        return a * (_ONE - a)
    return _ONE
