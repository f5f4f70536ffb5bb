"""Learning-rate schedules as functions of the epoch (or of the step t)."""
from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

from .._validation import check_int, check_real


def constant(lr0: float, epoch: float) -> float:
    """lr0 at every epoch.

    Parameters
    ----------
    lr0 : float
        The initial learning rate.
    epoch : int or float
        Ignored.

    Returns
    -------
    float
    """
    return float(lr0)


def inverse_time(lr0: float, epoch: float, decay_rate: float) -> float:
    """Inverse-time decay: lr0 / (1 + decay_rate * epoch).

    Parameters
    ----------
    lr0 : float
        The initial learning rate.
    epoch : int or float
        The epoch (or any count).
    decay_rate : float >= 0
        The decay rate.

    Returns
    -------
    float
    """
    check_real("decay_rate", decay_rate, 0.0)
    return lr0 / (1 + decay_rate * epoch)


def exponential(lr0: float, epoch: float, base: float = 0.95) -> float:
    """Exponential decay: lr0 * base ** epoch.

    Parameters
    ----------
    lr0 : float
        The initial learning rate.
    epoch : int or float
        The epoch (or any count).
    base : float in (0, 1], default 0.95
        The factor per epoch.

    Returns
    -------
    float
    """
    check_real("base", base, 0.0, 1.0, low_open=True)
    return lr0 * base**epoch


def inverse_sqrt_epoch(lr0: float, epoch: int, k: float = 1.0) -> float:
    """Inverse square-root decay: lr0 * k / sqrt(epoch), for epoch >= 1.

    Parameters
    ----------
    lr0 : float
        The initial learning rate.
    epoch : int >= 1
        The epoch, counted from 1.
    k : float, default 1.0
        A factor.

    Returns
    -------
    float
    """
    check_int("epoch", epoch, 1)
    return lr0 * k / np.sqrt(epoch)


def inverse_sqrt_step(t: int, k: float) -> float:
    """Inverse square-root decay per step: k / sqrt(t), for step t >= 1.

    Parameters
    ----------
    t : int >= 1
        The step, counted from 1.
    k : float
        The learning rate at t = 1.

    Returns
    -------
    float
    """
    check_int("t", t, 1)
    return k / np.sqrt(t)


def staircase(lr0: float, epoch: float, decay_rate: float, interval: int = 1000) -> float:
    """Inverse-time decay in steps: lr0 / (1 + decay_rate * floor(epoch / interval)).

    Parameters
    ----------
    lr0 : float
        The initial learning rate.
    epoch : int or float
        The epoch (or any count).
    decay_rate : float >= 0
        The decay rate.
    interval : int >= 1, default 1000
        Epochs per step.

    Returns
    -------
    float
    """
    check_real("decay_rate", decay_rate, 0.0)
    check_int("interval", interval, 1)
    return lr0 / (1 + decay_rate * np.floor(epoch / interval))


def piecewise(epoch: float, boundaries: Sequence[float], values: Sequence[float]) -> float:
    """Piecewise constant: values[i] for boundaries[i-1] <= epoch < boundaries[i].

    Parameters
    ----------
    epoch : int or float
        The epoch (or any count).
    boundaries : sequence of numbers
        Increasing boundaries.
    values : sequence of float
        len(boundaries) + 1 values.

    Returns
    -------
    float
    """
    if len(values) != len(boundaries) + 1:
        raise ValueError(f"values must have len(boundaries) + 1 = {len(boundaries) + 1} "
                         f"entries, got {len(values)}")
    if list(boundaries) != sorted(boundaries):
        raise ValueError(f"boundaries must be increasing, got {list(boundaries)}")
    return float(values[bisect.bisect_right(boundaries, epoch)])
