"""Exponentially weighted averages, with the optional bias correction of Adam."""
import numpy as np

from .._validation import check_real


def ewa(values, beta, bias_correction=True):
    """v_t = beta * v_{t-1} + (1 - beta) * x_t from v_0 = 0, for every t.

    With ``bias_correction`` each v_t is divided by 1 - beta^t, which removes the pull
    towards 0 of the first few averages. ``values`` is (T,) or (T, ...); returns the same
    shape in float64.
    """
    check_real("beta", beta, 0.0, 1.0, high_open=True)
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    v = np.zeros_like(values[0]) if values.size else None
    for t, x in enumerate(values, start=1):
        v = beta * v + (1 - beta) * x
        out[t - 1] = v / (1 - beta**t) if bias_correction else v
    return out
