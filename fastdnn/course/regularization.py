"""The Regularization notebook (course 2, week 1) with its helper file reg_utils.

Import this module where the notebook imports reg_utils and defines its functions::

    from fastdnn.course.regularization import *

gives the graded ``compute_cost_with_regularization``,
``backward_propagation_with_regularization``, ``forward_propagation_with_dropout`` and
``backward_propagation_with_dropout``, the notebook's ``model``, and reg_utils' ``sigmoid``,
``relu``, ``plot_decision_boundary``, ``initialize_parameters``, ``load_2D_dataset``,
``predict_dec``, ``compute_cost``, ``predict``, ``forward_propagation``,
``backward_propagation`` and ``update_parameters``, with the notebook's random draws
(dropout masks from ``np.random.seed(1)`` on every forward pass, weights from
``np.random.seed(3)``).

The notebook's data (``datasets/data.mat``, a football field's 2-D positions) ships with
the notebook and cannot be generated: :func:`load_2D_dataset` reads your copy.

Dimension key: m = number of examples; X is (n_x, m) (n_x = 2 in the notebook), Y is (1, m).
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .._validation import check_int, check_keep_prob
from . import Array, Arrays
from . import (_check_layers_dims, backward_propagation, backward_propagation_with_dropout,
               backward_propagation_with_regularization, check_columns, compute_cost,
               compute_cost_with_regularization, course_names, forward_propagation,
               forward_propagation_with_dropout, predict, predict_dec)
from ._utils import (optional_import, plot_decision_boundary, relu, scatter_dataset, sigmoid,
                     update_parameters)

__all__ = [
    "compute_cost_with_regularization", "backward_propagation_with_regularization",
    "forward_propagation_with_dropout", "backward_propagation_with_dropout", "model",
    "sigmoid", "relu", "plot_decision_boundary", "initialize_parameters", "load_2D_dataset",
    "predict_dec", "compute_cost", "predict", "forward_propagation", "backward_propagation",
    "update_parameters",
]


def initialize_parameters(layer_dims: Sequence[int]) -> Arrays:
    """reg_utils' weights: ``np.random.seed(3)``, then randn(n_l, n_{l-1}) / sqrt(n_{l-1}).

    Biases are zeros. Reseeds NumPy's global generator, as reg_utils does (divides by the
    square root, where He initialization multiplies by sqrt(2 / n_{l-1})).

    Parameters
    ----------
    layer_dims : list of int
        Widths [n_x, n_1, ..., n_L].

    Returns
    -------
    parameters : dict
        "W1" (n_1, n_x) ... "WL", "b1" (n_1, 1) ... "bL", float64.
    """
    dims = _check_layers_dims(layer_dims)
    np.random.seed(3)
    parameters = {}
    for l in range(1, len(dims)):
        parameters["W" + str(l)] = np.random.randn(dims[l], dims[l - 1]) / np.sqrt(dims[l - 1])
        parameters["b" + str(l)] = np.zeros((dims[l], 1))
    return parameters


def load_2D_dataset(path: str | os.PathLike[str] = os.path.join("datasets", "data.mat"), *,
                    plot: bool = True) -> tuple[Array, Array, Array, Array]:
    """Read the notebook's data set from its ``data.mat`` (keys "X", "y", "Xval", "yval").

    The file ships with the notebook and cannot be generated; pass ``path`` when your copy
    is not at ``datasets/data.mat`` below the working directory (the notebook's layout).

    Parameters
    ----------
    path : str or os.PathLike
    plot : bool, keyword-only
        Scatter the training set on the current matplotlib axes (skipped when matplotlib is
        not installed).

    Returns
    -------
    train_X : ndarray (2, m_train)
    train_Y : ndarray (1, m_train)
    test_X : ndarray (2, m_test)
    test_Y : ndarray (1, m_test)

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    ImportError
        When SciPy (which reads .mat files) is not installed.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"load_2D_dataset: no file at path={os.fspath(path)!r}. The Regularization "
            f"notebook's data set ships with the notebook as datasets/data.mat and cannot be "
            f"generated; pass path= to your copy")
    io = optional_import("scipy.io", "load_2D_dataset", "scipy")
    data = io.loadmat(path)
    train_X, train_Y = data["X"].T, data["y"].T
    test_X, test_Y = data["Xval"].T, data["yval"].T
    if plot:
        scatter_dataset(train_X, train_Y)
    return train_X, train_Y, test_X, test_Y


@course_names
def model(X: Array, Y: Array, learning_rate: float = 0.3, num_iterations: int = 30000,
          print_cost: bool = True, lambd: float = 0, keep_prob: float = 1) -> Arrays:
    """The notebook's network [n_x, 20, 3, 1] trained by full-batch gradient descent.

    With ``lambd`` != 0 the cost and gradients carry the L2 term; with ``keep_prob`` < 1 the
    hidden layers get inverted dropout (the same masks every iteration, as
    :func:`forward_propagation_with_dropout` reseeds). Prints
    "Cost after iteration i: <cost>" every 10000 iterations when ``print_cost`` (the
    notebook also plots the cost every 1000 iterations; this does not).

    Parameters
    ----------
    X : ndarray (n_x, m)
    Y : ndarray (1, m)
    learning_rate : float
    num_iterations : int
    print_cost : bool
    lambd : float
        L2 regularization strength; 0 for none.
    keep_prob : float in (0, 1]
        Probability of keeping a hidden unit; 1 for no dropout.

    Returns
    -------
    parameters : dict
        "W1", "b1", "W2", "b2", "W3", "b3".

    Raises
    ------
    ValueError
        When both ``lambd`` and dropout are asked for (the notebook explores one at a time).
    """
    check_int("num_iterations", num_iterations, 0)
    check_keep_prob("keep_prob", keep_prob)
    if lambd != 0 and keep_prob != 1:
        raise ValueError(f"use either lambd or keep_prob < 1, not both (the notebook explores "
                         f"one at a time), got lambd={lambd!r} and keep_prob={keep_prob!r}")
    check_columns(X, Y)
    layers_dims = [X.shape[0], 20, 3, 1]
    parameters = initialize_parameters(layers_dims)
    for i in range(num_iterations):
        if keep_prob == 1:
            a3, cache = forward_propagation(X, parameters)
        else:
            a3, cache = forward_propagation_with_dropout(X, parameters, keep_prob)
        if lambd == 0:
            cost = compute_cost(a3, Y)
        else:
            cost = compute_cost_with_regularization(a3, Y, parameters, lambd)
        if lambd != 0:
            grads = backward_propagation_with_regularization(X, Y, cache, lambd)
        elif keep_prob < 1:
            grads = backward_propagation_with_dropout(X, Y, cache, keep_prob)
        else:
            grads = backward_propagation(X, Y, cache)
        parameters = update_parameters(parameters, grads, learning_rate)
        if print_cost and i % 10000 == 0:
            print("Cost after iteration {}: {}".format(i, cost))
    return parameters
