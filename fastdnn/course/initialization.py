"""The Initialization notebook (course 2, week 1) with its helper file init_utils.

Import this module where the notebook imports init_utils and defines its functions::

    from fastdnn.course.initialization import *

gives the graded ``initialize_parameters_zeros``, ``initialize_parameters_random`` and
``initialize_parameters_he``, the notebook's ``model``, and init_utils' ``sigmoid``,
``relu``, ``compute_loss``, ``forward_propagation``, ``backward_propagation``,
``update_parameters``, ``predict``, ``load_dataset``, ``plot_decision_boundary`` and
``predict_dec``, with the notebook's random draws, so its cells print its numbers
(``model(train_X, train_Y, initialization="he")`` prints "Cost after iteration 0:
0.8830537463419761", ...).

Differences from the reg_utils helpers in :mod:`fastdnn.course`: ``backward_propagation``
takes the 1/m in dz3 (dz3 = 1./m * (a3 - Y); dW3 = dz3 a2^T) and keys its results in lower
case ("dz3", "dW3", "db3", "da2", ...).

Dimension key: m = number of examples; X is (n_x, m) (n_x = 2 for the circles), Y is (1, m).
"""
from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_int
from . import Array, Arrays, Cache
from . import (_backward, _unpack, check_columns, compute_cost, course_names,
               forward_propagation, initialize_parameters_he, initialize_parameters_random,
               initialize_parameters_zeros, predict, predict_dec)
from ._utils import (optional_import, plot_decision_boundary, relu, scatter_dataset, sigmoid,
                     update_parameters)

__all__ = [
    "initialize_parameters_zeros", "initialize_parameters_random", "initialize_parameters_he",
    "model", "sigmoid", "relu", "compute_loss", "forward_propagation", "backward_propagation",
    "update_parameters", "predict", "load_dataset", "plot_decision_boundary", "predict_dec",
]


def compute_loss(a3: Array, Y: Array) -> float:
    """Mean cross-entropy, ``1./m * np.nansum(-Y log a3 - (1 - Y) log(1 - a3))``.

    Parameters
    ----------
    a3 : ndarray (1, m)
        Sigmoid outputs.
    Y : ndarray (1, m)
        0/1 labels.

    Returns
    -------
    loss : float
        inf where a3 rounds to exactly 0 or 1 on a wrong label (the notebook's large random
        initialization prints "Cost after iteration 0: inf").
    """
    return compute_cost(a3, Y)


def backward_propagation(X: Array, Y: Array, cache: Cache) -> Arrays:
    """Gradients of the mean cross-entropy for :func:`forward_propagation`'s cache.

    Parameters
    ----------
    X : ndarray (n_x, m)
    Y : ndarray (1, m)
    cache : tuple
        (z1, a1, W1, b1, z2, a2, W2, b2, z3, a3, W3, b3) from :func:`forward_propagation`.

    Returns
    -------
    gradients : dict
        "dz3", "dW3", "db3", "da2", "dz2", "dW2", "db2", "da1", "dz1", "dW1", "db1" (for 3
        layers), with dz3 = 1./m * (a3 - Y), dW_l = dz_l a_{l-1}^T, db_l = sum(dz_l).
    """
    return _backward(X, Y, _unpack(cache, dropout=False), mean_first=True, lower=True)


def load_dataset(*, plot: bool = True) -> tuple[Array, Array, Array, Array]:
    """The notebook's circles: 300 training and 100 test points, labels 0 (outer) / 1 (inner).

    ``np.random.seed(1)`` then ``sklearn.datasets.make_circles(n_samples=300, noise=.05)``
    for training, ``np.random.seed(2)`` then 100 samples for test, as init_utils draws them.

    Parameters
    ----------
    plot : bool, keyword-only
        Scatter the training set on the current matplotlib axes, as the notebook shows it
        (skipped when matplotlib is not installed).

    Returns
    -------
    train_X : ndarray (2, 300)
    train_Y : ndarray (1, 300) of int
    test_X : ndarray (2, 100)
    test_Y : ndarray (1, 100) of int

    Raises
    ------
    ImportError
        When scikit-learn is not installed.
    """
    datasets = optional_import("sklearn.datasets", "load_dataset", "scikit-learn")
    np.random.seed(1)
    train_X, train_Y = datasets.make_circles(n_samples=300, noise=.05)
    np.random.seed(2)
    test_X, test_Y = datasets.make_circles(n_samples=100, noise=.05)
    train_X, test_X = train_X.T, test_X.T
    train_Y, test_Y = train_Y.reshape((1, -1)), test_Y.reshape((1, -1))
    if plot:
        scatter_dataset(train_X, train_Y)
    return train_X, train_Y, test_X, test_Y


_INITIALIZERS = {
    "zeros": initialize_parameters_zeros,
    "random": initialize_parameters_random,
    "he": initialize_parameters_he,
}


@course_names
def model(X: Array, Y: Array, learning_rate: float = 0.01, num_iterations: int = 15000,
          print_cost: bool = True, initialization: str = "he") -> Arrays:
    """The notebook's network [n_x, 10, 5, 1] trained by full-batch gradient descent.

    Each iteration: :func:`forward_propagation`, :func:`compute_loss`,
    :func:`backward_propagation`, :func:`update_parameters`. Prints
    "Cost after iteration i: <cost>" every 1000 iterations when ``print_cost`` (the
    notebook also plots those costs; this does not).

    Parameters
    ----------
    X : ndarray (n_x, m)
    Y : ndarray (1, m)
    learning_rate : float
    num_iterations : int
    print_cost : bool
    initialization : {"zeros", "random", "he"}
        Which graded initializer draws the starting weights.

    Returns
    -------
    parameters : dict
        "W1", "b1", "W2", "b2", "W3", "b3".
    """
    check_choice("initialization", initialization, _INITIALIZERS)
    check_int("num_iterations", num_iterations, 0)
    check_columns(X, Y)
    layers_dims = [X.shape[0], 10, 5, 1]
    parameters = _INITIALIZERS[initialization](layers_dims)
    for i in range(num_iterations):
        a3, cache = forward_propagation(X, parameters)
        cost = compute_loss(a3, Y)
        grads = backward_propagation(X, Y, cache)
        parameters = update_parameters(parameters, grads, learning_rate)
        if print_cost and i % 1000 == 0:
            print("Cost after iteration {}: {}".format(i, cost))
    return parameters
