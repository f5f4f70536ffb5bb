"""Learning-rate schedules as functions of the epoch (or of the step t)."""
import bisect

import numpy as np

from .._validation import check_int, check_real


def constant(lr0, epoch):
    return float(lr0)


def inverse_time(lr0, epoch, decay_rate):
    """lr0 / (1 + decay_rate * epoch)."""
    check_real("decay_rate", decay_rate, 0.0)
    return lr0 / (1 + decay_rate * epoch)


def exponential(lr0, epoch, base=0.95):
    """lr0 * base ** epoch."""
    check_real("base", base, 0.0, 1.0, low_open=True)
    return lr0 * base**epoch


def inverse_sqrt_epoch(lr0, epoch, k=1.0):
    """lr0 * k / sqrt(epoch), for epoch >= 1."""
    check_int("epoch", epoch, 1)
    return lr0 * k / np.sqrt(epoch)


def inverse_sqrt_step(t, k):
    """k / sqrt(t), for step t >= 1."""
    check_int("t", t, 1)
    return k / np.sqrt(t)


def staircase(lr0, epoch, decay_rate, interval=1000):
    """Inverse-time decay applied in steps: lr0 / (1 + decay_rate * floor(epoch / interval))."""
    check_real("decay_rate", decay_rate, 0.0)
    check_int("interval", interval, 1)
    return lr0 / (1 + decay_rate * np.floor(epoch / interval))


def piecewise(epoch, boundaries, values):
    """values[i] for boundaries[i-1] <= epoch < boundaries[i]; len(values) = len(boundaries) + 1."""
    if len(values) != len(boundaries) + 1:
        raise ValueError(f"values must have len(boundaries) + 1 = {len(boundaries) + 1} "
                         f"entries, got {len(values)}")
    if list(boundaries) != sorted(boundaries):
        raise ValueError(f"boundaries must be increasing, got {list(boundaries)}")
    return float(values[bisect.bisect_right(boundaries, epoch)])
