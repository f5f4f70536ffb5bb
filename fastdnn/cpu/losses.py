"""Output losses fused with their output activation: loss and gradient in one pass.

m = batch size, k = outputs. Z: (m, k) output pre-activations.
Y: (m, k) targets (one-hot or probabilities), or (m,) integer class labels for softmax.
Losses are batch means and gradients are those of the mean: dZ = (y_hat - Y) / m.
Per-row losses are summed in row order, so the loss does not depend on the thread count.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numpy.typing import ArrayLike, NDArray

from .._cache import harden_caches
from .._validation import check_float_array, check_shape
from ..config import CACHE
from .. import formulas
from ..formulas import OUTPUT_CODES
from ..reference.losses import (check_sample_weight, l2_cost, l2_grad,  # noqa: F401
                                log_softmax, one_hot)
from ._common import buffer, contiguous, launch, specialised


@njit(cache=CACHE)
def _sum_rows(row_loss):
    total = 0.0
    for i in range(row_loss.shape[0]):
        total += row_loss[i]
    return total


@specialised
def _softmax_xent(use_labels, weighted):
    @njit(parallel=True, cache=CACHE, error_model="numpy")
    def kernel(Z, Y, labels, w, total, dZ):
        # parallel over rows: max, exp into dZ, sum, then loss and (p - y) / m, or
        # weighted: (p - y) w_i / total (total = sum of the weights)
        m, k = Z.shape
        row_loss = np.empty(m, dtype=np.float64)
        dt = Z.dtype.type
        for i in prange(m):
            wi, mf = (dt(w[i]), dt(total)) if weighted else (dt(1), dt(m))
            mx = Z[i, 0]
            for j in range(1, k):
                mx = max(mx, Z[i, j])
            s = Z[i, 0] * 0
            for j in range(k):
                e = np.exp(Z[i, j] - mx)
                dZ[i, j] = e
                s += e
            log_s = np.log(s)
            loss = 0.0
            if use_labels:
                y_i = labels[i]
                loss = -(Z[i, y_i] - mx - log_s)
                for j in range(k):
                    dZ[i, j] = (dZ[i, j] / s - (1 if j == y_i else 0)) * wi / mf
            else:
                for j in range(k):
                    y = Y[i, j]
                    if y != 0:
                        loss -= y * (Z[i, j] - mx - log_s)
                    dZ[i, j] = (dZ[i, j] / s - y) * wi / mf
            row_loss[i] = loss * w[i] if weighted else loss
        return _sum_rows(row_loss) / (total if weighted else m)
    return kernel


@specialised
def _elementwise_loss(output, weighted):
    """The loss of one output code (formulas.OUTPUT_CODES: sigmoid cross-entropy, half
    squared error, half Poisson deviance) of every element, with the fastdnn.formulas the
    training engine uses; parallel over rows: returns the batch mean, writes
    dZ = (dloss / dz) / m; weighted: the weighted mean, dZ = (dloss / dz) w_i / total."""
    @njit(parallel=True, cache=CACHE, error_model="numpy")
    def kernel(Z, Y, w, total, dZ):
        m, k = Z.shape
        row_loss = np.empty(m, dtype=np.float64)
        dt = Z.dtype.type
        for i in prange(m):
            wi, mf = (dt(w[i]), dt(total)) if weighted else (dt(1), dt(m))
            loss = 0.0
            for j in range(k):
                z, y = Z[i, j], Y[i, j]
                if output == 1:
                    loss += formulas.sigmoid_cross_entropy(z, y)
                    dZ[i, j] = (formulas.sigmoid(z) - y) * wi / mf
                elif output == 2:
                    half_sq, diff = formulas.squared_error(z, y)
                    loss += half_sq
                    dZ[i, j] = diff * wi / mf
                else:
                    deviance, diff = formulas.poisson_deviance(z, y)
                    loss += deviance
                    dZ[i, j] = diff * wi / mf
            row_loss[i] = loss * w[i] if weighted else loss
        return _sum_rows(row_loss) / (total if weighted else m)
    return kernel


def _weights(sample_weight, m):
    """(the weights as float64 (m,) or a placeholder, their sum or m, whether given)."""
    if sample_weight is None:
        return _NO_WEIGHTS, float(m), False
    w = check_sample_weight(sample_weight, m)
    return w, float(w.sum()), True


@njit(parallel=True, cache=CACHE, error_model="numpy")
def _softmax(Z, out):
    # parallel over rows
    m, k = Z.shape
    for i in prange(m):
        mx = Z[i, 0]
        for j in range(1, k):
            mx = max(mx, Z[i, j])
        s = Z[i, 0] * 0
        for j in range(k):
            e = np.exp(Z[i, j] - mx)
            out[i, j] = e
            s += e
        for j in range(k):
            out[i, j] = out[i, j] / s


@njit(parallel=True, cache=CACHE, error_model="numpy")
def _sigmoid(Z, out):
    # parallel over rows
    m, k = Z.shape
    for i in prange(m):
        for j in range(k):
            z = Z[i, j]
            e = np.exp(-abs(z))
            out[i, j] = 1 / (1 + e) if z >= 0 else e / (1 + e)


def _targets(Z, Y, allow_labels=False):
    """(Y as a C-contiguous array of Z's dtype or None, labels or None)."""
    check_float_array("Z", Z, ndim=2)
    if not isinstance(Y, np.ndarray):
        Y = np.asarray(Y)
    if allow_labels and Y.ndim == 1 and np.issubdtype(Y.dtype, np.integer):
        check_shape("Y", Y, (Z.shape[0],))
        if Y.min() < 0 or Y.max() >= Z.shape[1]:
            raise ValueError(f"Y labels must lie in [0, {Z.shape[1]}), got values in "
                             f"[{Y.min()}, {Y.max()}]")
        # one compiled specialisation: int64 labels (a copy only for other int types)
        return None, np.ascontiguousarray(Y, dtype=np.int64)
    check_shape("Y", Y, Z.shape)
    if Y.dtype != Z.dtype:
        Y = Y.astype(Z.dtype)
    return contiguous(Y), None


_NO_LABELS = np.zeros(1, dtype=np.int64)
_NO_WEIGHTS = np.zeros(1, dtype=np.float64)


def softmax_cross_entropy(Z: NDArray[np.floating], Y: ArrayLike, *,
                          sample_weight: ArrayLike | None = None,
                          dZ_out: NDArray[np.floating] | None = None,
                          ) -> tuple[float, NDArray[np.floating]]:
    """Categorical cross-entropy of softmax(Z) and its gradient, in one pass.

    Parameters
    ----------
    Z : (m, k) float32 or float64 array
        Output pre-activations.
    Y : array_like, (m, k) or (m,)
        One-hot or probability targets, or integer labels in [0, k).
    sample_weight : array_like, (m,), optional
        Row weights >= 0, not all 0: the loss is then the weighted mean
        sum_i w_i loss_i / sum_i w_i, and row i's gradient is scaled by w_i / sum(w)
        instead of 1 / m.
    dZ_out : (m, k) C-contiguous array of Z's dtype, optional
        Buffer for dZ.

    Returns
    -------
    loss : float
        The batch mean.
    dZ : (m, k) array of Z's dtype
        (softmax(Z) - Y) / m.
    """
    Y, labels = _targets(Z, Y, allow_labels=True)
    Z = contiguous(Z)
    dZ = buffer("dZ_out", dZ_out, Z.shape, Z.dtype)
    w, total, weighted = _weights(sample_weight, Z.shape[0])
    if labels is None:
        loss = launch(_softmax_xent(False, weighted), Z, Y, _NO_LABELS, w, total, dZ)
    else:
        loss = launch(_softmax_xent(True, weighted), Z, Z, labels, w, total, dZ)
    return float(loss), dZ


def _elementwise(output, Z, Y, sample_weight, out, out_name):
    Y, _ = _targets(Z, Y)
    if output == OUTPUT_CODES["exp"] and (Y < 0).any():
        raise ValueError("Y must be >= 0 for a Poisson loss (counts), got a negative value")
    Z = contiguous(Z)
    dZ = buffer(out_name, out, Z.shape, Z.dtype)
    w, total, weighted = _weights(sample_weight, Z.shape[0])
    return float(launch(_elementwise_loss(output, weighted), Z, Y, w, total, dZ)), dZ


def sigmoid_cross_entropy(Z: NDArray[np.floating], Y: ArrayLike, *,
                          sample_weight: ArrayLike | None = None,
                          dZ_out: NDArray[np.floating] | None = None,
                          ) -> tuple[float, NDArray[np.floating]]:
    """Binary cross-entropy of sigmoid(Z), summed over outputs, averaged over the batch.

    Parameters
    ----------
    Z : (m, k) float32 or float64 array
        Output pre-activations.
    Y : array_like, (m, k)
        Targets in [0, 1].
    sample_weight : array_like, (m,), optional
        Row weights >= 0, not all 0: the loss is then the weighted mean
        sum_i w_i loss_i / sum_i w_i, and row i's gradient is scaled by w_i / sum(w)
        instead of 1 / m.
    dZ_out : (m, k) C-contiguous array of Z's dtype, optional
        Buffer for dZ.

    Returns
    -------
    loss : float
        The batch mean (weighted as in the reference).
    dZ : (m, k) array of Z's dtype
        (sigmoid(Z) - Y) / m.
    """
    return _elementwise(OUTPUT_CODES["sigmoid"], Z, Y, sample_weight, dZ_out, "dZ_out")


def mean_squared_error(A: NDArray[np.floating], Y: ArrayLike, *,
                       sample_weight: ArrayLike | None = None,
                       dA_out: NDArray[np.floating] | None = None,
                       ) -> tuple[float, NDArray[np.floating]]:
    """Half the squared error, summed over outputs and averaged over the batch.

    Parameters
    ----------
    A : (m, k) float32 or float64 array
        Outputs (identity activation).
    Y : array_like, (m, k)
        Targets.
    sample_weight : array_like, (m,), optional
        Row weights >= 0, not all 0: the loss is then the weighted mean
        sum_i w_i loss_i / sum_i w_i, and row i's gradient is scaled by w_i / sum(w)
        instead of 1 / m.
    dA_out : (m, k) C-contiguous array of A's dtype, optional
        Buffer for dA.

    Returns
    -------
    loss : float
        sum((A - Y)**2) / (2m).
    dA : (m, k) array of A's dtype
        (A - Y) / m.
    """
    return _elementwise(OUTPUT_CODES["identity"], A, Y, sample_weight, dA_out, "dA_out")


def poisson_deviance(Z: NDArray[np.floating], Y: ArrayLike, *,
                     sample_weight: ArrayLike | None = None,
                     dZ_out: NDArray[np.floating] | None = None,
                     ) -> tuple[float, NDArray[np.floating]]:
    """Half the Poisson deviance of exp(Z) against counts Y, averaged over the batch.

    Summed over outputs, as scikit-learn's Poisson loss.

    Parameters
    ----------
    Z : (m, k) float32 or float64 array
        Output pre-activations, the log of the predicted means.
    Y : array_like, (m, k)
        Counts >= 0.
    sample_weight : array_like, (m,), optional
        Row weights >= 0, not all 0: the loss is then the weighted mean
        sum_i w_i loss_i / sum_i w_i, and row i's gradient is scaled by w_i / sum(w)
        instead of 1 / m.
    dZ_out : (m, k) C-contiguous array of Z's dtype, optional
        Buffer for dZ.

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
    return _elementwise(OUTPUT_CODES["exp"], Z, Y, sample_weight, dZ_out, "dZ_out")


def softmax(Z: NDArray[np.floating], *,
            out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """Row-wise softmax of an (m, k) array, with the row maximum subtracted.

    Parameters
    ----------
    Z : (m, k) float32 or float64 array
        Pre-activations.
    out : (m, k) C-contiguous array of Z's dtype, optional
        Buffer for the result.

    Returns
    -------
    (m, k) array of Z's dtype
        ``out`` when given.
    """
    check_float_array("Z", Z, ndim=2)
    Z = contiguous(Z)
    out = buffer("out", out, Z.shape, Z.dtype)
    launch(_softmax, Z, out)
    return out


def sigmoid(Z: NDArray[np.floating], *,
            out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """Element-wise logistic function of an (m, k) array, overflow-free.

    Parameters
    ----------
    Z : (m, k) float32 or float64 array
        Pre-activations.
    out : (m, k) C-contiguous array of Z's dtype, optional
        Buffer for the result.

    Returns
    -------
    (m, k) array of Z's dtype
        ``out`` when given.
    """
    check_float_array("Z", Z, ndim=2)
    Z = contiguous(Z)
    out = buffer("out", out, Z.shape, Z.dtype)
    launch(_sigmoid, Z, out)
    return out


harden_caches(__name__)
