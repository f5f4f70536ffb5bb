"""Output losses fused with their output activation, and the L2 cost term.

m = batch size, k = outputs. Z: (m, k) output pre-activations.
Y: (m, k) targets (one-hot or probabilities), or (m,) integer class labels for softmax.
Every loss is the mean over the batch, and every gradient is that of the mean, so
dW = dZ.T @ X needs no further 1/m.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._validation import (check_finite, check_float_array, check_shape, emit,
                          finite_checks_on)
from .activations import _sigmoid


def one_hot(labels: ArrayLike, k: int, dtype: DTypeLike = np.float64) -> NDArray[Any]:
    """(m,) integer labels in [0, k) to an (m, k) one-hot matrix.

    Parameters
    ----------
    labels : array_like of int, (m,)
        Class labels in [0, k).
    k : int
        Number of classes.
    dtype : dtype, default float64
        The result's dtype.

    Returns
    -------
    (m, k) array of ``dtype``
        1 at (i, labels[i]), 0 elsewhere.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    out = np.zeros((labels.size, k), dtype=dtype)
    out[np.arange(labels.size), labels] = 1
    return out


def softmax(Z: NDArray[np.floating], *,
            out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """Row-wise softmax, with the row maximum subtracted for stability.

    Parameters
    ----------
    Z : (m, k) float array
        Pre-activations.
    out : (m, k) array, optional
        Buffer the result is copied into.

    Returns
    -------
    (m, k) array
        exp(Z) / sum of each row's exp(Z); ``out`` when given.
    """
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return emit(E / E.sum(axis=1, keepdims=True), out)


def sigmoid(Z: NDArray[np.floating], *,
            out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """Element-wise logistic function 1 / (1 + exp(-Z)), without overflow.

    Parameters
    ----------
    Z : float array
        Pre-activations, any shape.
    out : array of Z's shape, optional
        Buffer the result is copied into.

    Returns
    -------
    array of Z's shape
        ``out`` when given.
    """
    return emit(_sigmoid(Z), out)


def log_softmax(Z: NDArray[np.floating]) -> NDArray[np.floating]:
    """Row-wise log of softmax(Z), computed from Z minus the row maximum.

    Parameters
    ----------
    Z : (m, k) float array
        Pre-activations.

    Returns
    -------
    (m, k) array
        Z - max - log(sum(exp(Z - max))) per row.
    """
    shifted = Z - Z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_cross_entropy(Z: NDArray[np.floating], Y: ArrayLike, *,
                          sample_weight: ArrayLike | None = None,
                          dZ_out: NDArray[np.floating] | None = None,
                          ) -> tuple[float, NDArray[np.floating]]:
    """Categorical cross-entropy of softmax(Z), averaged over the batch.

    Parameters
    ----------
    Z : (m, k) float32 or float64 array
        Output pre-activations (finite).
    Y : array_like, (m, k) or (m,)
        One-hot or probability targets, or integer class labels in [0, k).
    sample_weight : array_like, (m,), optional
        Row weights >= 0, not all 0: the loss is then the weighted mean
        (see weighted_mean) and each row's gradient is scaled by w_i / sum(w).
    dZ_out : (m, k) array, optional
        Buffer dZ is copied into.

    Returns
    -------
    loss : float
        The batch mean.
    dZ : (m, k) array of Z's dtype
        (softmax(Z) - Y) / m, the gradient of the mean.
    """
    Y = _targets(Z, Y, allow_labels=True)
    if sample_weight is not None:
        return weighted_mean(-(Y * log_softmax(Z)).sum(axis=1), softmax(Z) - Y,
                             sample_weight, dZ_out)
    m = Z.shape[0]
    loss = -(Y * log_softmax(Z)).sum() / m
    return float(loss), emit((softmax(Z) - Y) / Z.dtype.type(m), dZ_out)


def sigmoid_cross_entropy(Z: NDArray[np.floating], Y: ArrayLike, *,
                          sample_weight: ArrayLike | None = None,
                          dZ_out: NDArray[np.floating] | None = None,
                          ) -> tuple[float, NDArray[np.floating]]:
    """Binary cross-entropy of sigmoid(Z), summed over outputs and averaged over the batch.

    Uses log(1 + e^z) = max(z, 0) + log1p(e^-|z|) so large |z| neither overflows nor
    takes the log of 0.

    Parameters
    ----------
    Z : (m, k) float32 or float64 array
        Output pre-activations (finite).
    Y : array_like, (m, k)
        Targets in [0, 1].
    sample_weight : array_like, (m,), optional
        Row weights >= 0, not all 0: the loss is then the weighted mean
        (see weighted_mean) and each row's gradient is scaled by w_i / sum(w).
    dZ_out : (m, k) array, optional
        Buffer dZ is copied into.

    Returns
    -------
    loss : float
        The batch mean.
    dZ : (m, k) array of Z's dtype
        (sigmoid(Z) - Y) / m.
    """
    Y = _targets(Z, Y)
    m = Z.shape[0]
    per_element = np.maximum(Z, 0) - Z * Y + np.log1p(np.exp(-np.abs(Z)))
    if sample_weight is not None:
        return weighted_mean(per_element.sum(axis=1), _sigmoid(Z) - Y, sample_weight, dZ_out)
    return float(per_element.sum() / m), emit((_sigmoid(Z) - Y) / Z.dtype.type(m), dZ_out)


def mean_squared_error(A: NDArray[np.floating], Y: ArrayLike, *,
                       sample_weight: ArrayLike | None = None,
                       dA_out: NDArray[np.floating] | None = None,
                       ) -> tuple[float, NDArray[np.floating]]:
    """Half the squared error, summed over outputs and averaged over the batch.

    loss = sum((A - Y)**2) / (2m), as in scikit-learn.

    Parameters
    ----------
    A : (m, k) float32 or float64 array
        Outputs (identity activation; finite).
    Y : array_like, (m, k)
        Targets.
    sample_weight : array_like, (m,), optional
        Row weights >= 0, not all 0: the loss is then the weighted mean
        (see weighted_mean) and each row's gradient is scaled by w_i / sum(w).
    dA_out : (m, k) array, optional
        Buffer dA is copied into.

    Returns
    -------
    loss : float
        The batch mean.
    dA : (m, k) array of A's dtype
        (A - Y) / m.
    """
    Y = _targets(A, Y, name="A")
    m = A.shape[0]
    diff = A - Y
    if sample_weight is not None:
        return weighted_mean((diff * diff).sum(axis=1) / 2, diff, sample_weight, dA_out)
    return float((diff * diff).sum() / (2 * m)), emit(diff / A.dtype.type(m), dA_out)


def poisson_deviance(Z: NDArray[np.floating], Y: ArrayLike, *,
                     sample_weight: ArrayLike | None = None,
                     dZ_out: NDArray[np.floating] | None = None,
                     ) -> tuple[float, NDArray[np.floating]]:
    """Half the Poisson deviance of exp(Z) (log link), averaged over the batch.

    As scikit-learn's Poisson loss: the mean over rows of
    sum(Y log(Y / exp(Z)) - Y + exp(Z)) (summed over outputs), with 0 log 0 = 0.

    Parameters
    ----------
    Z : (m, k) float32 or float64 array
        Output pre-activations, the log of the predicted means (finite).
    Y : array_like, (m, k)
        Counts >= 0.
    sample_weight : array_like, (m,), optional
        Row weights >= 0, not all 0: the loss is then the weighted mean
        (see weighted_mean) and each row's gradient is scaled by w_i / sum(w).
    dZ_out : (m, k) array, optional
        Buffer dZ is copied into.

    Returns
    -------
    loss : float
        The batch mean.
    dZ : (m, k) array of Z's dtype
        (exp(Z) - Y) / m.

    Raises
    ------
    ValueError
        When Y holds a negative value.
    """
    Y = _targets(Z, Y, name="Z")
    if np.any(Y < 0):
        raise ValueError("Y must be >= 0 for a Poisson loss (counts), got a negative value")
    m = Z.shape[0]
    mu = np.exp(Z)
    with np.errstate(divide="ignore", invalid="ignore"):
        y_log = np.where(Y > 0, Y * np.log(Y / mu), 0.0)
    per_element = y_log - Y + mu
    if sample_weight is not None:
        return weighted_mean(per_element.sum(axis=1), mu - Y, sample_weight, dZ_out)
    return float(per_element.sum() / m), emit((mu - Y) / Z.dtype.type(m), dZ_out)


def weighted_mean(row_loss: NDArray[np.floating], residual: NDArray[np.floating],
                  sample_weight: ArrayLike, out: NDArray[np.floating] | None = None,
                  ) -> tuple[float, NDArray[np.floating]]:
    """The loss of a batch whose rows are weighed, and its gradient, as scikit-learn's.

    Parameters
    ----------
    row_loss : (m,) array
        Each row's loss, loss_i.
    residual : (m, k) array
        d loss_i / dz of each row.
    sample_weight : array_like, (m,)
        Row weights w_i >= 0, not all 0.
    out : (m, k) array, optional
        Buffer the gradient is copied into.

    Returns
    -------
    loss : float
        sum_i w_i loss_i / sum_i w_i.
    grad : (m, k) array of residual's dtype
        residual_i * w_i / sum_i w_i.
    """
    w = check_sample_weight(sample_weight, residual.shape[0])
    total = w.sum()
    scale = (w / total).astype(residual.dtype)[:, None]
    return float((w * row_loss).sum() / total), emit(residual * scale, out)


def check_sample_weight(sample_weight: ArrayLike, m: int,
                        name: str = "sample_weight") -> NDArray[np.float64]:
    """Check row weights: (m,) real, finite, >= 0 and with a positive sum.

    Parameters
    ----------
    sample_weight : array_like, (m,)
        The weights (floats or integers).
    m : int
        Number of rows.
    name : str, default "sample_weight"
        The argument's name in error messages.

    Returns
    -------
    (m,) float64 array
        The weights.

    Raises
    ------
    ValueError
        Naming ``name``, when a condition fails.
    """
    w = np.asarray(sample_weight)
    if w.shape != (m,) or not (np.issubdtype(w.dtype, np.floating)
                               or np.issubdtype(w.dtype, np.integer)):
        raise ValueError(f"{name} must be a real array of shape ({m},), got "
                         f"{w.dtype} {w.shape}")
    w = w.astype(np.float64)
    if not np.isfinite(w).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    if (w < 0).any():
        raise ValueError(f"{name} must be >= 0, got a minimum of {w.min()}")
    if not w.sum() > 0:
        raise ValueError(f"{name} must not be all zero (their sum divides the loss)")
    return w


def l2_cost(weights: Iterable[NDArray[np.floating]], lambd: float, m: int) -> float:
    """The L2 cost term: (lambd / 2m) * sum of ||W||^2 over weight matrices (not biases).

    Parameters
    ----------
    weights : iterable of arrays
        The weight matrices; squares are summed in float64.
    lambd : float
        The L2 strength.
    m : int
        The batch size.

    Returns
    -------
    float
    """
    return float(lambd / (2 * m) * sum(float(np.sum(np.square(W, dtype=np.float64)))
                                         for W in weights))


def l2_grad(W: NDArray[np.floating], lambd: float, m: int) -> NDArray[np.floating]:
    """Gradient of l2_cost with respect to one weight matrix.

    Parameters
    ----------
    W : array
        The weight matrix.
    lambd : float
        The L2 strength.
    m : int
        The batch size.

    Returns
    -------
    array of W's shape
        (lambd / m) * W.
    """
    return (lambd / m) * W


def _targets(Z, Y, allow_labels=False, name="Z"):
    check_float_array(name, Z, ndim=2)
    if finite_checks_on():
        check_finite(name, Z)
    Y = np.asarray(Y)
    if allow_labels and Y.ndim == 1 and np.issubdtype(Y.dtype, np.integer):
        check_shape("Y", Y, (Z.shape[0],))
        return one_hot(Y, Z.shape[1], Z.dtype)
    check_shape("Y", Y, Z.shape)
    if finite_checks_on():
        check_finite("Y", Y)
    return Y.astype(Z.dtype, copy=False)
