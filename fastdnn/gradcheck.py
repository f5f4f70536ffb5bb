"""Gradient checking: backprop's gradients against central differences of the loss.

The check runs on a float64 copy of the model on the NumPy reference backend, with
dropout switched off and BatchNorm in training mode (running statistics restored), and
includes the L2 term. Reading of the relative difference
||g - g_approx|| / (||g|| + ||g_approx||): about 1e-7 fine, 1e-5 suspicious, 1e-3 a bug.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ._validation import check_real

if TYPE_CHECKING:
    from .model import Sequential


class GradientCheckResult:
    """Outcome of gradient_check.

    Parameters
    ----------
    difference : float
        The relative difference over all parameters.
    blocks : dict
        Per parameter block, as the attribute.

    Attributes
    ----------
    difference : float
        The relative difference over all parameters.
    blocks : dict
        Per parameter block ("W1", "b1", "gamma1", ...): {"difference", "worst_index",
        "worst_abs_error", "grad", "approx"}.
    """

    def __init__(self, difference: float, blocks: dict[str, dict[str, Any]]) -> None:
        self.difference = difference
        self.blocks = blocks

    @property
    def worst_block(self) -> str:
        """The name of the block with the largest relative difference."""
        return max(self.blocks, key=lambda k: self.blocks[k]["difference"])

    @property
    def verdict(self) -> str:
        """``reading(difference)``: "fine", "suspicious" or "probably a bug"."""
        return reading(self.difference)

    def passed(self, threshold: float = 1e-5) -> bool:
        """Whether the relative difference is below ``threshold``.

        Parameters
        ----------
        threshold : float, default 1e-5
            The largest difference that passes (excluded).

        Returns
        -------
        bool
        """
        return self.difference < threshold

    def __str__(self):
        lines = [f"gradient check: relative difference {self.difference:.3e} "
                 f"({self.verdict})"]
        for name, b in self.blocks.items():
            lines.append(f"  {name:>8}: {b['difference']:.3e}  worst at "
                         f"{b['worst_index']} (|error| {b['worst_abs_error']:.3e})")
        return "\n".join(lines)

    __repr__ = __str__


def reading(difference: float) -> str:
    """The usual reading of a relative difference of gradients.

    Parameters
    ----------
    difference : float
        ||g - g_approx|| / (||g|| + ||g_approx||).

    Returns
    -------
    str
        "fine" below 1e-6, "suspicious" below 1e-4, else "probably a bug".
    """
    if difference < 1e-6:
        return "fine"
    if difference < 1e-4:
        return "suspicious"
    return "probably a bug"


def _relative(a, b):
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else 0.0


def gradient_check(model: Sequential, X: ArrayLike, y: ArrayLike,
                   epsilon: float = 1e-7) -> GradientCheckResult:
    """Compare ``model``'s backprop gradients with central differences on (X, y).

    Parameters
    ----------
    model : Sequential or MLP
        The model to check (the check runs on a float64 copy of it).
    X : array_like, (m, n_x)
        The inputs.
    y : array_like
        Their labels or targets.
    epsilon : float > 0, default 1e-7
        The central-difference step.

    Returns
    -------
    GradientCheckResult
    """
    epsilon = check_real("epsilon", epsilon, 0.0, low_open=True)
    check = model._clone(dtype="float64", backend="numpy")
    for blk in check.blocks:
        blk.keep_prob = 1.0  # dropout off for the check
    X = np.asarray(X, dtype=np.float64)

    def loss():   # training mode (batch statistics), running statistics untouched
        return check.loss_and_grads(X, y)[0]

    loss()
    params = check.parameters
    grad = params.grad.copy()
    approx = np.empty_like(grad)
    flat = params.flat
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + epsilon
        plus = loss()
        flat[i] = old - epsilon
        minus = loss()
        flat[i] = old
        approx[i] = (plus - minus) / (2 * epsilon)
    blocks = {}
    for name, offset, shape in params.layout:
        size = int(np.prod(shape))
        g, a = grad[offset:offset + size], approx[offset:offset + size]
        err = np.abs(g - a)
        worst = int(err.argmax())
        blocks[name] = {"difference": _relative(g, a),
                        "worst_index": tuple(int(i) for i in np.unravel_index(worst, shape)),
                        "worst_abs_error": float(err[worst]),
                        "grad": g.reshape(shape), "approx": a.reshape(shape)}
    return GradientCheckResult(_relative(grad, approx), blocks)
