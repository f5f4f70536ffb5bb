"""Output losses fused with their output activation, and the L2 cost term.

m = batch size, k = outputs. Z: (m, k) output pre-activations.
Y: (m, k) targets (one-hot or probabilities), or (m,) integer class labels for softmax.
Every loss is the mean over the batch, and every gradient is that of the mean, so
dW = dZ.T @ X needs no further 1/m.
"""
import numpy as np

from .._validation import (check_finite, check_float_array, check_shape, emit,
                          finite_checks_on)
from .activations import _sigmoid


def one_hot(labels, k, dtype=np.float64):
    """(m,) integer labels in [0, k) -> (m, k) one-hot matrix."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    out = np.zeros((labels.size, k), dtype=dtype)
    out[np.arange(labels.size), labels] = 1
    return out


def softmax(Z, *, out=None):
    """Row-wise softmax, with the row maximum subtracted for stability."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return emit(E / E.sum(axis=1, keepdims=True), out)


def sigmoid(Z, *, out=None):
    return emit(_sigmoid(Z), out)


def log_softmax(Z):
    shifted = Z - Z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_cross_entropy(Z, Y, *, sample_weight=None, dZ_out=None):
    """Categorical cross-entropy of softmax(Z); returns (loss, dZ = (softmax(Z) - Y) / m),
    or with ``sample_weight`` the weighted mean (see ``weighted_mean``)."""
    Y = _targets(Z, Y, allow_labels=True)
    if sample_weight is not None:
        return weighted_mean(-(Y * log_softmax(Z)).sum(axis=1), softmax(Z) - Y,
                             sample_weight, dZ_out)
    m = Z.shape[0]
    loss = -(Y * log_softmax(Z)).sum() / m
    return float(loss), emit((softmax(Z) - Y) / Z.dtype.type(m), dZ_out)


def sigmoid_cross_entropy(Z, Y, *, sample_weight=None, dZ_out=None):
    """Binary cross-entropy of sigmoid(Z), summed over outputs and averaged over the batch.

    Uses log(1 + e^z) = max(z, 0) + log1p(e^-|z|) so large |z| neither overflows nor
    takes the log of 0. Returns (loss, dZ = (sigmoid(Z) - Y) / m), or with
    ``sample_weight`` the weighted mean.
    """
    Y = _targets(Z, Y)
    m = Z.shape[0]
    per_element = np.maximum(Z, 0) - Z * Y + np.log1p(np.exp(-np.abs(Z)))
    if sample_weight is not None:
        return weighted_mean(per_element.sum(axis=1), _sigmoid(Z) - Y, sample_weight, dZ_out)
    return float(per_element.sum() / m), emit((_sigmoid(Z) - Y) / Z.dtype.type(m), dZ_out)


def mean_squared_error(A, Y, *, sample_weight=None, dA_out=None):
    """Half the squared error, summed over outputs and averaged over the batch.

    loss = sum((A - Y)**2) / (2m) as in scikit-learn; returns (loss, dA = (A - Y) / m),
    or with ``sample_weight`` the weighted mean.
    """
    Y = _targets(A, Y, name="A")
    m = A.shape[0]
    diff = A - Y
    if sample_weight is not None:
        return weighted_mean((diff * diff).sum(axis=1) / 2, diff, sample_weight, dA_out)
    return float((diff * diff).sum() / (2 * m)), emit(diff / A.dtype.type(m), dA_out)


def poisson_deviance(Z, Y, *, sample_weight=None, dZ_out=None):
    """Half the Poisson deviance of exp(Z) (log link), summed over outputs and averaged
    over the batch, as scikit-learn's Poisson loss: mean over rows of
    sum(Y log(Y / exp(Z)) - Y + exp(Z)) with 0 log 0 = 0. Y holds counts >= 0.

    Returns (loss, dZ = (exp(Z) - Y) / m), or with ``sample_weight`` the weighted mean.
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


def weighted_mean(row_loss, residual, sample_weight, out=None):
    """The loss of a batch whose rows weigh ``sample_weight`` (m,) >= 0 (not all 0), as
    scikit-learn weighs them: sum_i w_i loss_i / sum_i w_i, and its gradient
    residual_i * w_i / sum_i w_i (``residual`` = d loss_i / dz, (m, k))."""
    w = check_sample_weight(sample_weight, residual.shape[0])
    total = w.sum()
    scale = (w / total).astype(residual.dtype)[:, None]
    return float((w * row_loss).sum() / total), emit(residual * scale, out)


def check_sample_weight(sample_weight, m, name="sample_weight"):
    """sample_weight as an (m,) float64 array of finite weights >= 0 with a positive sum."""
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


def l2_cost(weights, lambd, m):
    """(lambd / 2m) * sum of ||W||^2 over the given weight matrices (never biases)."""
    return float(lambd / (2 * m) * sum(float(np.sum(np.square(W, dtype=np.float64)))
                                         for W in weights))


def l2_grad(W, lambd, m):
    """Gradient of l2_cost with respect to one weight matrix: (lambd / m) * W."""
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
