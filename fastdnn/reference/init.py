"""Weight initializers. W is (n_out, n_in); rng is a numpy.random.Generator."""
from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .._validation import check_choice, check_int, check_real


def _std(kind, n_in, n_out, scale):
    return {
        "random": scale,
        "he": np.sqrt(2.0 / n_in),
        "xavier": np.sqrt(1.0 / n_in),
        "glorot": np.sqrt(2.0 / (n_in + n_out)),
    }[kind]


INITIALIZERS = ("zeros", "random", "he", "xavier", "glorot")


def initialize_weights(kind: str, n_in: int, n_out: int, rng: np.random.Generator,
                       dtype: DTypeLike = np.float64,
                       scale: float = 0.01) -> NDArray[np.floating]:
    """An (n_out, n_in) weight matrix drawn by one of INITIALIZERS.

    Parameters
    ----------
    kind : str
        zeros; random: normal * scale; he: normal * sqrt(2 / n_in) (for ReLU);
        xavier: normal * sqrt(1 / n_in) (for tanh); glorot: normal *
        sqrt(2 / (n_in + n_out)).
    n_in, n_out : int >= 1
        The layer's input and output widths.
    rng : numpy.random.Generator
        Source of the normal draws (unused for zeros).
    dtype : dtype, default float64
        The result's dtype.
    scale : float >= 0, default 0.01
        The standard deviation of "random".

    Returns
    -------
    W : (n_out, n_in) array of ``dtype``
    """
    check_choice("init", kind, INITIALIZERS)
    check_int("n_in", n_in, 1)
    check_int("n_out", n_out, 1)
    if kind == "zeros":
        return np.zeros((n_out, n_in), dtype=dtype)
    check_real("scale", scale, 0.0)
    W = rng.standard_normal((n_out, n_in)) * _std(kind, n_in, n_out, scale)
    return W.astype(dtype)
