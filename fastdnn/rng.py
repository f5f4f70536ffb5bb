"""Counter-based random bits for dropout masks.

A mask element is kept when hash(key + index) falls below a threshold, where
key = dropout_key(seed, step, layer) and index is the element's row-major position in
the (m, n) activation. Every backend computes the same bits for the same
(seed, step, layer, index), whatever its thread count, and backward regenerates the
mask instead of storing it. The hash is SplitMix64's finaliser (Steele, Lea, Flood 2014);
the top 32 bits of it are compared with keep_threshold(keep_prob).
"""

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


def splitmix64(x):
    """SplitMix64 of a Python int, as an int in [0, 2**64)."""
    z = (x + GOLDEN_GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def dropout_key(seed, step, layer):
    """The 64-bit key of one layer's mask at one training step (host-side, Python ints)."""
    return splitmix64(splitmix64(splitmix64(int(seed) & MASK64) ^ int(step)) ^ int(layer))


def keep_threshold(keep_prob):
    """Keep an element when the top 32 bits of its hash are below this (2**32 keeps all)."""
    return int(keep_prob * 2.0**32)
