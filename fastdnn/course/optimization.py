"""The Optimization Methods notebook (course 2, week 2) with its helper file opt_utils_v1a.

Import this module where the notebook imports opt_utils_v1a and defines its functions::

    from fastdnn.course.optimization import *

gives the graded ``update_parameters_with_gd``, ``random_mini_batches``,
``initialize_velocity``, ``update_parameters_with_momentum``, ``initialize_adam``,
``update_parameters_with_adam``, ``update_lr`` and ``schedule_lr_decay``, the notebook's
``model`` (with its ``decay`` and ``decay_rate``), and opt_utils_v1a's
``load_params_and_grads``, ``initialize_parameters``, ``forward_propagation``,
``backward_propagation``, ``compute_cost``, ``predict``, ``predict_dec``,
``plot_decision_boundary``, ``load_dataset``, ``sigmoid`` and ``relu``, with the notebook's
random draws: ``model(train_X, train_Y, [2, 5, 2, 1], optimizer="adam")`` prints
"Cost after epoch 0: 0.702166", ... The updates run on fastdnn's fused kernels.

Differences from the reg_utils helpers in :mod:`fastdnn.course`: ``compute_cost`` returns
the cross-entropy SUMMED over the examples (``model`` adds it up over an epoch and divides
by m); ``backward_propagation`` takes the 1/m in dz3 and keys its results in lower case
("dz3", "da2", ...), as init_utils does.

Dimension key: m = number of examples; X is (n_x, m) (n_x = 2 for the moons), Y is (1, m).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import Array, Arrays
from . import (_cost_total, forward_propagation, initialize_adam, initialize_parameters_he,
               initialize_velocity, model, predict, predict_dec, random_mini_batches,
               schedule_lr_decay, update_lr, update_parameters_with_adam,
               update_parameters_with_gd, update_parameters_with_momentum)
from ._utils import optional_import, plot_decision_boundary, relu, scatter_dataset, sigmoid
from .initialization import backward_propagation  # opt_utils_v1a's is init_utils' function

__all__ = [
    "update_parameters_with_gd", "random_mini_batches", "initialize_velocity",
    "update_parameters_with_momentum", "initialize_adam", "update_parameters_with_adam",
    "update_lr", "schedule_lr_decay", "model", "load_params_and_grads",
    "initialize_parameters", "forward_propagation", "backward_propagation", "compute_cost",
    "predict", "predict_dec", "plot_decision_boundary", "load_dataset", "sigmoid", "relu",
]


def load_params_and_grads(seed: int = 1) -> tuple[Array, ...]:
    """The notebook's small test network and gradients, drawn after ``np.random.seed(seed)``.

    Draws, in this order: W1 (2, 3), b1 (2, 1), W2 (3, 3), b2 (3, 1), then dW1, db1, dW2,
    db2 of the same shapes, all standard normal.

    Parameters
    ----------
    seed : int

    Returns
    -------
    W1, b1, W2, b2, dW1, db1, dW2, db2 : ndarray
    """
    np.random.seed(seed)
    shapes = [(2, 3), (2, 1), (3, 3), (3, 1)]
    return tuple(np.random.randn(*shape) for shape in shapes + shapes)


def initialize_parameters(layer_dims: Sequence[int]) -> Arrays:
    """opt_utils_v1a's weights, which are He initialization.

    ``np.random.seed(3)``, then randn(n_l, n_{l-1}) * sqrt(2 / n_{l-1}); zero biases.

    Parameters
    ----------
    layer_dims : list of int
        Widths [n_x, n_1, ..., n_L].

    Returns
    -------
    parameters : dict
        "W1", "b1", ..., "WL", "bL", as
        :func:`fastdnn.course.initialize_parameters_he` returns them.
    """
    return initialize_parameters_he(layer_dims)


def compute_cost(a3: Array, Y: Array) -> float:
    """Cross-entropy SUMMED over the examples, ``np.sum(-Y log a3 - (1 - Y) log(1 - a3))``.

    Not divided by m: :func:`model` adds these up over an epoch's mini-batches and divides
    by the number of examples once.

    Parameters
    ----------
    a3 : ndarray (1, k)
        Sigmoid outputs for a mini-batch of k examples.
    Y : ndarray (1, k)

    Returns
    -------
    cost_total : float
    """
    return _cost_total(a3, Y)


def load_dataset(*, plot: bool = True) -> tuple[Array, Array]:
    """The notebook's moons: 300 points, labels 0 / 1.

    ``np.random.seed(3)``, then ``sklearn.datasets.make_moons(n_samples=300, noise=.2)``.

    Parameters
    ----------
    plot : bool, keyword-only
        Scatter the points on the current matplotlib axes, as the notebook shows them
        (skipped when matplotlib is not installed).

    Returns
    -------
    train_X : ndarray (2, 300)
    train_Y : ndarray (1, 300) of int

    Raises
    ------
    ImportError
        When scikit-learn is not installed.
    """
    datasets = optional_import("sklearn.datasets", "load_dataset", "scikit-learn")
    np.random.seed(3)
    train_X, train_Y = datasets.make_moons(n_samples=300, noise=.2)
    train_X, train_Y = train_X.T, train_Y.reshape((1, -1))
    if plot:
        scatter_dataset(train_X, train_Y)
    return train_X, train_Y
