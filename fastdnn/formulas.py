"""Every element-wise formula of training, written once.

The CPU loops (fastdnn.cpu and the training engine, fastdnn.engine) and the CUDA kernels
(fastdnn.cuda) all call these scalar functions, so every backend computes each element
the same way; fastdnn.reference is the independent NumPy oracle they are tested against.
They use math.* only, which both of Numba's targets compile.

Each formula computes in its arguments' dtype: the constants are float32, and float32 op
float32 stays float32 while float64 op float32 is float64 (a Python 1.0 would promote a
float32 value to float64 and halve the SIMD width). Callers pass scalars (learning
rates, keep probabilities) already cast to the parameters' dtype.

Codes: ACTIVATION_CODES, OPTIMIZER_CODES and OUTPUT_CODES number the choices the
compiled code branches on. Call a formula with a constant code inside a loop (see
fastdnn.cpu._rows) so that its branches fold away and the loop vectorises.
"""
import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from ._cache import harden_caches
from .config import CACHE
from .reference.activations import LEAKY_RELU_SLOPE
from .rng import AUGMENT, GOLDEN_GAMMA, MIX1, MIX2

ACTIVATION_CODES = {"identity": 0, "relu": 1, "leaky_relu": 2, "tanh": 3, "sigmoid": 4}
OPTIMIZER_CODES = {"sgd": 0, "momentum": 1, "nesterov": 2, "rmsprop": 3, "adam": 4,
                   "adamw": 5}
OUTPUT_CODES = {"softmax": 0, "sigmoid": 1, "identity": 2, "exp": 3}

_GAMMA = np.uint64(GOLDEN_GAMMA)
_MIX1 = np.uint64(MIX1)
_MIX2 = np.uint64(MIX2)
_MASK = np.uint64(2**64 - 1)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_S16 = np.uint64(16)
_S48 = np.uint64(48)
_S63 = np.uint64(63)
_LOW16 = np.uint64(0xFFFF)
_LOW31 = np.uint64(0x7FFFFFFF)
_LOW32 = np.uint64(0xFFFFFFFF)
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


def leaky_slope(z):
    """The leaky ReLU's slope in z's dtype (the reference's float32 arithmetic rounds
    it to float32, its float64 arithmetic keeps 0.01)."""
    return LEAKY_RELU_SLOPE


@overload(leaky_slope, target="generic")
def _leaky_slope(z):
    if z == types.float32:
        return lambda z: np.float32(LEAKY_RELU_SLOPE)
    return lambda z: LEAKY_RELU_SLOPE


# ----------------------------------------------------------------------------- dropout

@njit(inline="always", cache=CACHE, error_model="numpy")
def splitmix64(x):
    """SplitMix64's finaliser of a uint64 (wrapping arithmetic; see fastdnn.rng)."""
    z = x + _GAMMA
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(inline="always", cache=CACHE, error_model="numpy")
def dropout_key(seed, step, layer):
    """The key of one layer's mask at one training step: fastdnn.rng.dropout_key, with
    uint64 seed and int step and layer (layer counted from 1)."""
    return splitmix64(splitmix64(splitmix64(seed) ^ np.uint64(step)) ^ np.uint64(layer))


@njit(inline="always", cache=CACHE, error_model="numpy")
def is_kept(key, index, threshold):
    """Dropout keep bit of element ``index`` (uint64s; see fastdnn.rng)."""
    return (splitmix64(key + index) >> _S32) < threshold


@njit(inline="always", cache=CACHE, error_model="numpy")
def dropout(x, kept, keep_prob):
    """Inverted dropout of one element: x / keep_prob when kept, else 0 (x * 0, which
    keeps NaN and inf visible as the reference's x * mask does)."""
    return x / keep_prob if kept else x * _ZERO


# ----------------------------------------------------------------------------- augmentation
# Image rows (height, width, channels), row-major, channels last; see fastdnn.augment and
# the draws' keys in fastdnn.rng. fastdnn.reference.augment is the vectorised twin.

@njit(inline="always", cache=CACHE, error_model="numpy")
def augment_key(seed, step, purpose):
    """The key of one step's augmentation draws: fastdnn.rng.augment_key."""
    return dropout_key(seed, step, AUGMENT + purpose)


@njit(inline="always", cache=CACHE, error_model="numpy")
def augment_draws(key, row, flip, shift):
    """(flipped, dy, dx) of batch row ``row`` from its geometry hash (of key + row): the
    top bit flips it (when ``flip``), bits 32..62 and 0..31 pick dy and dx uniformly in
    [-shift, shift] by multiply-shift (exact in uint64)."""
    bits = splitmix64(key + np.uint64(row))
    span = np.uint64(2 * shift + 1)
    flipped = flip != 0 and (bits >> _S63) != np.uint64(0)
    dy = np.int64((((bits >> _S32) & _LOW31) * span) >> _S31) - shift
    dx = np.int64(((bits & _LOW32) * span) >> _S32) - shift
    return flipped, dy, dx


@njit(inline="always", cache=CACHE, error_model="numpy")
def augment_source(y, x, height, width, draws):
    """The source pixel (y' width + x') that pixel (y, x) of the augmented image shows,
    or -1 where it was shifted in from outside (zero): the image is flipped left-right
    (when drawn), then moved by (dy, dx)."""
    flipped, dy, dx = draws
    ys, xs = y - dy, x - dx
    if ys < 0 or ys >= height or xs < 0 or xs >= width:
        return -1
    if flipped:
        xs = width - 1 - xs
    return ys * width + xs


@njit(inline="always", cache=CACHE, error_model="numpy")
def irwin_hall4(bits):
    """The centred sum of the four 16-bit fields u_k of ``bits``: sum_k (2 u_k + 1) - 2**18,
    an even integer in [-262140, 262140], mean 0, variance 4 (2**32 - 1) / 3: Irwin-Hall
    noise from integer arithmetic only (exact in float32)."""
    total = (bits & _LOW16) + ((bits >> _S16) & _LOW16) + ((bits >> _S32) & _LOW16) + \
        (bits >> _S48)
    return np.int64(total) * 2 - 262140


@njit(inline="always", cache=CACHE, error_model="numpy")
def augment_noise(key, index, scale):
    """The noise of element ``index`` (uint64, row-major in the batch): irwin_hall4 of
    its hash times ``scale`` (fastdnn.rng.noise_scale, in the data's dtype)."""
    return np.float32(irwin_hall4(splitmix64(key + index))) * scale


# ----------------------------------------------------------------------------- activations

@njit(inline="always", cache=CACHE, error_model="numpy")
def activate(z, code):
    """activation(z) for ACTIVATION_CODES ``code``, in z's dtype.

    The sigmoid takes the exp of -|z| only (no overflow), one exp so that a loop over it
    vectorises. tanh is math.tanh, not (1 - e^-2|z|) / (1 + e^-2|z|), which cancels for
    small |z| (relative error 3e-4 at z = 1e-4 in float32).
    """
    # (Leaky) ReLU as a product: z * 1 is z, so the values are those of the select
    # z if z > 0 else z * slope, but a loop in place always stores; for the select,
    # LLVM stores only where z <= 0, with masked vector stores, which cost 3-7x more on
    # AMD Zen (kernels/rows_in_place.py).
    if code == 1:
        return z * (_ONE if z > 0 else _ZERO)
    if code == 2:
        return z * (_ONE if z > 0 else leaky_slope(z))
    if code == 3:
        return math.tanh(z)
    if code == 4:
        return sigmoid(z)
    return z


@njit(inline="always", cache=CACHE, error_model="numpy")
def activation_grad(a, code):
    """d activation / dz written from the output a, in a's dtype."""
    if code == 1:
        return _ONE if a > 0 else _ZERO
    if code == 2:
        return _ONE if a > 0 else leaky_slope(a)
    if code == 3:
        return _ONE - a * a
    if code == 4:
        return a * (_ONE - a)
    return _ONE


@njit(inline="always", cache=CACHE, error_model="numpy")
def sigmoid(z):
    e = math.exp(-abs(z))
    r = _ONE / (_ONE + e)
    return r if z >= 0 else e * r


# ----------------------------------------------------------------------------- losses

@njit(inline="always", cache=CACHE, error_model="numpy")
def sigmoid_cross_entropy(z, y):
    """Binary cross-entropy of sigmoid(z) against y, in float64: log(1 + e^z) - z y
    written as max(z, 0) - z y + log1p(e^-|z|) (no overflow, no log of 0)."""
    z64 = np.float64(z)
    return max(z64, 0.0) - z64 * np.float64(y) + math.log1p(math.exp(-abs(z64)))


@njit(inline="always", cache=CACHE, error_model="numpy")
def softmax_cross_entropy_row(z, y, d, scale, weight):
    """Cross-entropy of softmax(z) against the targets y for one row (1-D arrays of k
    outputs): writes d = (softmax(z) - y) weight / scale (d may be z; weight 1 gives the
    unweighted gradient bit for bit) and returns the loss (in float64, unweighted) and
    whether the prediction is right (the first maximum of z is that of y, as NumPy's
    argmax takes it). One exp per output."""
    k = z.shape[0]
    zmax, best, ymax, label = z[0], 0, y[0], 0
    for j in range(1, k):
        if z[j] > zmax:
            zmax, best = z[j], j
        if y[j] > ymax:
            ymax, label = y[j], j
    loss = 0.0
    for j in range(k):
        if y[j] != 0:
            loss -= np.float64(y[j]) * np.float64(z[j] - zmax)
    total = z[0] * _ZERO
    for j in range(k):
        e = math.exp(z[j] - zmax)
        d[j] = e
        total += e
    log_total = np.float64(math.log(total))
    ysum = 0.0
    for j in range(k):
        ysum += np.float64(y[j])
        d[j] = (d[j] / total - y[j]) * weight / scale
    return loss + ysum * log_total, best == label


@njit(inline="always", cache=CACHE, error_model="numpy")
def poisson_deviance(z, y):
    """Half the Poisson deviance of mu = exp(z) (the log link) against a count y >= 0,
    in float64: y log(y / mu) - y + mu, with 0 log 0 = 0 (scikit-learn's Poisson loss);
    and its derivative with respect to z, mu - y."""
    mu = math.exp(z)
    loss = np.float64(mu) - np.float64(y)
    if y > 0:
        loss += np.float64(y) * math.log(np.float64(y) / np.float64(mu))
    return loss, mu - y


@njit(inline="always", cache=CACHE, error_model="numpy")
def squared_error(a, y):
    """Half the squared error of one output (float64) and its derivative a - y."""
    diff = a - y
    return 0.5 * np.float64(diff) * np.float64(diff), diff


# ----------------------------------------------------------------------------- BatchNorm

@njit(inline="always", cache=CACHE, error_model="numpy")
def inverse_std(var, eps):
    """1 / sqrt(var + eps)."""
    return _ONE / math.sqrt(var + eps)


@njit(inline="always", cache=CACHE, error_model="numpy")
def running_average(running, value, momentum):
    """The running statistic's update: momentum * running + (1 - momentum) * value."""
    return momentum * running + (_ONE - momentum) * value


@njit(inline="always", cache=CACHE, error_model="numpy")
def batchnorm_grad(g, x_hat, scale, m, dbeta, dgamma):
    """dZ of one element: scale * (m g - dbeta - x_hat dgamma), scale = gamma inv_std / m."""
    return scale * (m * g - dbeta - x_hat * dgamma)


# ----------------------------------------------------------------------------- optimizers
# Each returns the new parameter and state. g includes the model's L2 gradient; wd is
# the optimizer's coupled weight decay (g + wd p). Bias corrections and the like come
# from the host (or the caller's scalar code) once per step, as in PyTorch.

@njit(inline="always", cache=CACHE, error_model="numpy")
def sgd_step(p, g, lr, wd):
    return p - lr * (g + wd * p)


@njit(inline="always", cache=CACHE, error_model="numpy")
def momentum_step(p, g, v, lr, beta, one_minus_beta, wd, a, c):
    """v = beta v + (1 - beta) g; p -= lr (a v + c g): (a, c) = (1, 0) for momentum,
    (beta, 1 - beta) for Nesterov's look-ahead. Branch-free, so loops vectorise."""
    g = g + wd * p
    v = beta * v + one_minus_beta * g
    return p - lr * (a * v + c * g), v


@njit(inline="always", cache=CACHE, error_model="numpy")
def rmsprop_step(p, g, s, lr, beta2, one_minus_beta2, eps, wd):
    g = g + wd * p
    s = beta2 * s + one_minus_beta2 * g * g
    return p - lr * g / (math.sqrt(s) + eps), s


@njit(inline="always", cache=CACHE, error_model="numpy")
def adam_step(p, g, m, v, step_size, beta1, one_minus_beta1, beta2, one_minus_beta2,
              inv_sqrt_bc2, eps, wd, decay):
    """Adam with bias correction arranged as PyTorch does, one division and one square
    root per element: step_size = lr / (1 - beta1^t), inv_sqrt_bc2 = 1 / sqrt(1 - beta2^t);
    wd: coupled L2 (0 for AdamW); decay = 1 - lr weight_decay for AdamW's decoupled decay,
    1 for Adam."""
    g = g + wd * p
    m = beta1 * m + one_minus_beta1 * g
    v = beta2 * v + one_minus_beta2 * g * g
    return decay * p - step_size * m / (math.sqrt(v) * inv_sqrt_bc2 + eps), m, v


harden_caches(__name__)
