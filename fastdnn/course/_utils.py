"""What the course's helper files (init_utils, reg_utils, gc_utils, opt_utils_v1a) share.

The notebook modules re-export these under the helper files' names. Column layout as in
:mod:`fastdnn.course`: X is (n_x, m), Y is (1, m), m = number of examples.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import Array, Arrays, _relu, _sigmoid, course_names, update_parameters_with_gd


def sigmoid(x: ArrayLike) -> float | NDArray[Any]:
    """Element-wise logistic function, ``1 / (1 + np.exp(-x))``.

    Parameters
    ----------
    x : scalar or ndarray

    Returns
    -------
    s : scalar or ndarray of x's shape
    """
    return _sigmoid(x)


def relu(x: ArrayLike) -> float | NDArray[Any]:
    """Element-wise ``np.maximum(0, x)``.

    Parameters
    ----------
    x : scalar or ndarray

    Returns
    -------
    s : scalar or ndarray of x's shape
    """
    return _relu(x)


@course_names
def update_parameters(parameters: Arrays, grads: Arrays, learning_rate: float) -> Arrays:
    """One gradient-descent step on every "W1", "b1", ..., "WL", "bL".

    The helper files' ``update_parameters``: W_l - learning_rate * dW_l, stored as new arrays
    in ``parameters``, which is returned (the caller's arrays are not changed). Runs on the
    same kernel as :func:`fastdnn.course.update_parameters_with_gd`.

    Parameters
    ----------
    parameters : dict
        "W1", "b1", ...
    grads : dict
        "dW1", "db1", ... of the same shapes (other keys such as "dZ3" are ignored).
    learning_rate : float

    Returns
    -------
    parameters : dict
    """
    return update_parameters_with_gd(parameters, grads, learning_rate)


def optional_import(module: str, needed_by: str, package: str) -> ModuleType:
    """Import ``module`` or raise an ImportError saying which function needs which package.

    Parameters
    ----------
    module : str
        The module to import.
    needed_by : str
        The function that needs it.
    package : str
        What to pip install.

    Returns
    -------
    module
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{needed_by} needs {package}, which is not installed "
                          f"(pip install {package})") from None


def scatter_dataset(X: Array, Y: Array) -> None:
    """The helper files' picture of a freshly loaded data set, when matplotlib is installed.

    Parameters
    ----------
    X : ndarray (2, m)
    Y : ndarray (1, m)
        Labels, used as colours.
    """
    try:
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        return
    plt.scatter(X[0, :], X[1, :], c=np.ravel(Y), s=40, cmap=plt.cm.Spectral)


def plot_decision_boundary(model: Callable[[Array], ArrayLike], X: Array, y: Array) -> None:
    """Colour the plane by ``model``'s predictions and scatter the examples over it.

    The grid spans each coordinate of X widened by 1 on both sides, in steps of 0.01, as
    in the helper files. Draws on the current matplotlib axes and calls ``plt.show()``.

    Parameters
    ----------
    model : callable
        Takes points as rows, shape (k, 2), and returns k labels (any shape with k entries),
        e.g. ``lambda x: predict_dec(parameters, x.T)``.
    X : ndarray (2, m)
    y : ndarray (1, m) or (m,)
        Labels, used as colours.

    Raises
    ------
    ImportError
        When matplotlib is not installed.
    """
    plt = optional_import("matplotlib.pyplot", "plot_decision_boundary", "matplotlib")
    step = 0.01
    first = np.arange(X[0, :].min() - 1, X[0, :].max() + 1, step)
    second = np.arange(X[1, :].min() - 1, X[1, :].max() + 1, step)
    grid_first, grid_second = np.meshgrid(first, second)
    labels = model(np.c_[grid_first.ravel(), grid_second.ravel()])
    plt.contourf(grid_first, grid_second, np.reshape(labels, grid_first.shape),
                 cmap=plt.cm.Spectral)
    plt.ylabel("x2")
    plt.xlabel("x1")
    # ravel: matplotlib wants one colour per point, and the notebooks pass y as (1, m)
    plt.scatter(X[0, :], X[1, :], c=np.ravel(y), cmap=plt.cm.Spectral)
    plt.show()
