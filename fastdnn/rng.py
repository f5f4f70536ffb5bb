"""Counter-based random bits for dropout masks and data augmentation.

A mask element is kept when hash(key + index) falls below a threshold, where
key = dropout_key(seed, step, layer) and index is the element's row-major position in
the (m, n) activation. Every backend computes the same bits for the same
(seed, step, layer, index), whatever its thread count, and backward regenerates the
mask instead of storing it. The hash is SplitMix64's finaliser (Steele, Lea, Flood 2014);
the top 32 bits of it are compared with keep_threshold(keep_prob).

Augmentation (fastdnn.augment) draws from the same hash with keys
augment_key(seed, step, purpose): its "layer" is AUGMENT + purpose, beyond any network's
layers, so its bits never meet a dropout mask's. GEOMETRY: one hash per batch row i
(index i) gives the flip and the shift; NOISE: one hash per element (index i n + j) gives
four 16-bit uniforms whose centred sum (Irwin-Hall, integer arithmetic only, so NumPy
and Numba agree bit for bit) times noise_scale(std) is the noise.
"""
from __future__ import annotations

import math

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


def splitmix64(x: int) -> int:
    """SplitMix64 of a Python int, as an int in [0, 2**64).

    Parameters
    ----------
    x : int
        The counter; any int (only its sum with GOLDEN_GAMMA modulo 2**64 counts).

    Returns
    -------
    int
        The hash, in [0, 2**64).
    """
    z = (x + GOLDEN_GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def dropout_key(seed: int, step: int, layer: int) -> int:
    """The 64-bit key of one layer's mask at one training step (host-side, Python ints).

    Parameters
    ----------
    seed : int
        The model's seed (taken modulo 2**64).
    step : int >= 0
        Updates done before this one.
    layer : int
        The layer (1..L), or beyond them for augmentation (``augment_key``).

    Returns
    -------
    int
        The key, in [0, 2**64); element i of the mask hashes key + i.
    """
    return splitmix64(splitmix64(splitmix64(int(seed) & MASK64) ^ int(step)) ^ int(layer))


def keep_threshold(keep_prob: float) -> int:
    """Keep an element when the top 32 bits of its hash are below this (2**32 keeps all).

    Parameters
    ----------
    keep_prob : float in (0, 1]
        The probability of keeping an element.

    Returns
    -------
    int
        floor(keep_prob * 2**32), in [0, 2**32].
    """
    return int(keep_prob * 2.0**32)


AUGMENT = 1 << 32
GEOMETRY, NOISE = 0, 1


def augment_key(seed: int, step: int, purpose: int) -> int:
    """The 64-bit key of one step's augmentation draws for ``purpose``.

    Parameters
    ----------
    seed : int
        The model's seed.
    step : int >= 0
        Updates done before this one.
    purpose : int
        GEOMETRY (flips and shifts) or NOISE.

    Returns
    -------
    int
        ``dropout_key(seed, step, AUGMENT + purpose)``, in [0, 2**64).
    """
    return dropout_key(seed, step, AUGMENT + purpose)


def noise_scale(std: float) -> float:
    """The factor that turns the centred sum of four 16-bit fields into noise of ``std``.

    The sum is T = sum_k (2 u_k + 1) - 2**18 of four 16-bit fields u_k
    (formulas.irwin_hall4), whose variance is var T = 4 (2**32 - 1) / 3.

    Parameters
    ----------
    std : float >= 0
        The noise's standard deviation.

    Returns
    -------
    float
        std / sqrt(var T).
    """
    return float(std) / (2.0 * math.sqrt((2.0**32 - 1.0) / 3.0))
