"""The Gradient Checking notebook (course 2, week 1) with its helper file gc_utils.

Import this module where the notebook imports gc_utils and defines its functions::

    from fastdnn.course.gradient_checking import *

gives the graded 1-D ``forward_propagation(x, theta)``, ``backward_propagation(x, theta)``
and ``gradient_check(x, theta, epsilon=1e-7, print_msg=False)``, the N-dimensional
``forward_propagation_n``, ``backward_propagation_n`` and ``gradient_check_n``, and gc_utils'
``sigmoid``, ``relu``, ``dictionary_to_vector``, ``vector_to_dictionary`` and
``gradients_to_vector``. ``gradient_check(3, 4, print_msg=True)`` prints the notebook's
"Your backward propagation works perfectly fine! difference = 7.814075313343006e-11".

``backward_propagation_n`` here is the corrected one: the notebook hands out a version with
two planted mistakes (dW2 doubled, db1 four times too large) for the student to find with
``gradient_check_n``, which then reports 0.2850931567761623; this one gives about 1.19e-07.

Dimension key (N-dimensional part): m = number of examples; X is (4, m), Y is (1, m) or (m,),
parameters of the network [4, 5, 3, 1].
"""
from __future__ import annotations

from .._validation import check_real
from . import (_print_verdict, _relative_difference, backward_propagation_n, course_names,
               dictionary_to_vector, forward_propagation_n, gradient_check_n,
               gradients_to_vector, vector_to_dictionary)
from ._utils import relu, sigmoid

__all__ = [
    "forward_propagation", "backward_propagation", "gradient_check", "forward_propagation_n",
    "backward_propagation_n", "gradient_check_n", "sigmoid", "relu", "dictionary_to_vector",
    "vector_to_dictionary", "gradients_to_vector",
]


def forward_propagation(x: float, theta: float) -> float:
    """The notebook's 1-D cost J(theta) = theta * x.

    Parameters
    ----------
    x : float
        The input.
    theta : float
        The parameter.

    Returns
    -------
    J : float
    """
    return theta * x


def backward_propagation(x: float, theta: float) -> float:
    """dJ/dtheta of :func:`forward_propagation`, which is x.

    Parameters
    ----------
    x, theta : float

    Returns
    -------
    dtheta : float
    """
    return x


@course_names
def gradient_check(x: float, theta: float, epsilon: float = 1e-7,
                   print_msg: bool = False) -> float:
    """Compare :func:`backward_propagation` with a centred difference at theta.

    The centred difference is of :func:`forward_propagation`.

    difference = |grad - gradapprox| / (|grad| + |gradapprox|), with
    gradapprox = (J(theta + epsilon) - J(theta - epsilon)) / (2 epsilon).

    Parameters
    ----------
    x, theta : float
    epsilon : float
        Half the width of the centred difference, > 0.
    print_msg : bool
        Print the notebook's verdict (threshold 2e-7).

    Returns
    -------
    difference : float
    """
    check_real("epsilon", epsilon, 0.0, low_open=True)
    J_plus = forward_propagation(x, theta + epsilon)
    J_minus = forward_propagation(x, theta - epsilon)
    gradapprox = (J_plus - J_minus) / (2 * epsilon)
    grad = backward_propagation(x, theta)
    difference = _relative_difference(grad, gradapprox)
    if print_msg:
        _print_verdict(difference)
    return difference
