"""Weight initializers. W is (n_out, n_in); rng is a numpy.random.Generator."""
import numpy as np

from .._validation import check_choice, check_int, check_real


def _std(kind, n_in, n_out, scale):
    return {
        "random": scale,
        "he": np.sqrt(2.0 / n_in),
        "xavier": np.sqrt(1.0 / n_in),
        "glorot": np.sqrt(2.0 / (n_in + n_out)),
    }[kind]


INITIALIZERS = ("zeros", "random", "he", "xavier", "glorot")


def initialize_weights(kind, n_in, n_out, rng, dtype=np.float64, scale=0.01):
    """An (n_out, n_in) weight matrix.

    zeros; random: normal * scale; he: normal * sqrt(2 / n_in) (for ReLU);
    xavier: normal * sqrt(1 / n_in) (for tanh); glorot: normal * sqrt(2 / (n_in + n_out)).
    """
    check_choice("init", kind, INITIALIZERS)
    check_int("n_in", n_in, 1)
    check_int("n_out", n_out, 1)
    if kind == "zeros":
        return np.zeros((n_out, n_in), dtype=dtype)
    check_real("scale", scale, 0.0)
    W = rng.standard_normal((n_out, n_in)) * _std(kind, n_in, n_out, scale)
    return W.astype(dtype)
