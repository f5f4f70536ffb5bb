"""Exponentially weighted averages, with the optional bias correction of Adam."""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_real


def ewa(values: ArrayLike, beta: float,
        bias_correction: bool = True) -> NDArray[np.float64]:
    """Exponentially weighted averages v_t = beta * v_{t-1} + (1 - beta) * x_t, v_0 = 0.

    Parameters
    ----------
    values : array_like, (T,) or (T, ...)
        The series x_1 ... x_T (along the first axis).
    beta : float in [0, 1)
        The weight of the previous average.
    bias_correction : bool, default True
        Divide each v_t by 1 - beta^t, which removes the pull towards 0 of the first
        few averages.

    Returns
    -------
    v : float64 array of ``values``' shape
        v_1 ... v_T.
    """
    check_real("beta", beta, 0.0, 1.0, high_open=True)
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    v = np.zeros_like(values[0]) if values.size else None
    for t, x in enumerate(values, start=1):
        v = beta * v + (1 - beta) * x
        out[t - 1] = v / (1 - beta**t) if bias_correction else v
    return out
