"""Data helpers: train/dev/test split, standardizer, one-hot, mini-batches.

n = number of examples, n_x = features. X: (n, n_x); y: (n,) labels or (n, k) targets.
Nothing here changes the caller's arrays.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ._validation import check_int, check_real
from .reference.losses import one_hot as _one_hot


def one_hot(labels: ArrayLike, k: int | None = None,
            dtype: DTypeLike = np.float32) -> NDArray[Any]:
    """(n,) integer labels in [0, k) to an (n, k) one-hot matrix.

    Parameters
    ----------
    labels : array_like of int, (n,)
        Class labels.
    k : int >= 1, optional
        Number of classes; default: the largest label + 1.
    dtype : dtype, default float32
        The result's dtype.

    Returns
    -------
    (n, k) array of ``dtype``
        1 at (i, labels[i]), 0 elsewhere.
    """
    labels = np.asarray(labels)
    if k is None:
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or not labels.size:
            raise ValueError(f"labels must be a non-empty 1-D integer array, got "
                             f"{labels.dtype} {labels.shape}")
        k = int(labels.max()) + 1
    return _one_hot(labels, check_int("k", k, 1), dtype)


def train_dev_test_split(X: ArrayLike, y: ArrayLike,
                         fractions: Sequence[float] = (0.98, 0.01, 0.01), *,
                         stratify: bool = True, seed: int | None = None,
                         ) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any],
                                    NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Split into train, dev and test sets by fractions, stratified by class.

    Parameters
    ----------
    X : array_like, (n, n_x)
        The examples.
    y : array_like, (n,) or (n, k)
        Class labels, or targets (stratified by their argmax).
    fractions : three floats >= 0 summing to 1, default (0.98, 0.01, 0.01)
        The train, dev and test shares; a positive dev or test share gets one example
        at least.
    stratify : bool, default True
        Keep each class's share in every set (within one example).
    seed : int, optional
        Seeds the shuffle.

    Returns
    -------
    X_train, X_dev, X_test, y_train, y_dev, y_test : arrays
        Copies of rows of X and y.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim < 1 or y.ndim < 1 or len(X) != len(y):
        raise ValueError(f"X and y must have the same number of rows, got {X.shape} and "
                         f"{y.shape}")
    fractions = [check_real("fractions", f, 0.0, 1.0) for f in fractions]
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three numbers summing to 1, got {fractions}")
    n = len(y)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if stratify:
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        # group by class (random within a class), then interleave the classes so that
        # every contiguous chunk holds each class in proportion
        grouped = order[np.argsort(labels[order], kind="stable")]
        _, inverse, counts = np.unique(labels[grouped], return_inverse=True,
                                       return_counts=True)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.arange(n) - starts[inverse]
        position = (rank + 0.5) / counts[inverse]
        order = grouped[np.lexsort((rng.random(n), position))]
    n_test = int(round(fractions[2] * n))
    n_dev = int(round(fractions[1] * n))
    if fractions[2] > 0:
        n_test = max(n_test, 1)
    if fractions[1] > 0:
        n_dev = max(n_dev, 1)
    if n_test + n_dev > n:
        raise ValueError(f"{n} examples are too few for fractions {fractions}")
    test, dev, train = order[:n_test], order[n_test:n_test + n_dev], order[n_test + n_dev:]
    return X[train], X[dev], X[test], y[train], y[dev], y[test]


class Standardizer:
    """Zero mean and unit variance per feature, with statistics from the training set.

    Features with zero variance are only centred.

    Parameters
    ----------
    eps : float >= 0, default 0.0
        Added to the variance.

    Attributes
    ----------
    mean_, scale_ : (n_x,) float64 arrays
        The training set's mean and sqrt(var + eps) (1 where that is 0); set by fit.
    """

    def __init__(self, eps: float = 0.0) -> None:
        self.eps = check_real("eps", eps, 0.0)
        self.mean_ = None
        self.scale_ = None

    def fit(self, X: ArrayLike) -> Standardizer:
        """Learn each feature's mean and scale from the training set.

        Parameters
        ----------
        X : array_like, (n, n_x)
            The training set (non-empty).

        Returns
        -------
        Standardizer
            self.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or not len(X):
            raise ValueError(f"X must be a non-empty 2-D array, got shape {X.shape}")
        self.mean_ = X.mean(axis=0)
        std = np.sqrt(X.var(axis=0) + self.eps)
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, X: ArrayLike, dtype: DTypeLike | None = None,
                  ) -> NDArray[np.floating]:
        """A standardized copy of X: (X - mean_) / scale_.

        Parameters
        ----------
        X : array_like, (n, n_x)
            Data with the training set's features.
        dtype : dtype, optional
            The result's dtype; default X's float dtype, or float64.

        Returns
        -------
        (n, n_x) array

        Raises
        ------
        RuntimeError
            When not fitted.
        """
        if self.mean_ is None:
            raise RuntimeError("Standardizer is not fitted: call fit(X_train) first")
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"X must have shape (*, {self.mean_.shape[0]}), got {X.shape}")
        if dtype is None:
            dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        return ((X - self.mean_) / self.scale_).astype(dtype)

    def fit_transform(self, X: ArrayLike, dtype: DTypeLike | None = None,
                      ) -> NDArray[np.floating]:
        """fit(X), then transform(X).

        Parameters
        ----------
        X : array_like, (n, n_x)
            The training set.
        dtype : dtype, optional
            As in transform.

        Returns
        -------
        (n, n_x) array
        """
        return self.fit(X).transform(X, dtype)

    def inverse_transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Undo transform: X * scale_ + mean_.

        Parameters
        ----------
        X : array_like, (n, n_x)
            Standardized data.

        Returns
        -------
        (n, n_x) float64 array
        """
        return np.asarray(X) * self.scale_ + self.mean_


def minibatches(X: ArrayLike, y: ArrayLike, batch_size: int, *, shuffle: bool = True,
                seed: int | None = None) -> Iterator[tuple[NDArray[Any], NDArray[Any]]]:
    """Mini-batches of (X, y): shuffle once, then partition; the last batch is smaller.

    batch_size = n gives batch gradient descent, 1 gives stochastic gradient descent.

    Parameters
    ----------
    X : array_like, (n, n_x)
        The examples.
    y : array_like, (n,) or (n, k)
        Their labels or targets.
    batch_size : int >= 1
        Rows per batch.
    shuffle : bool, default True
        Shuffle the rows first (else keep their order).
    seed : int, optional
        Seeds the shuffle.

    Yields
    ------
    X_batch, y_batch : arrays
        Copies of up to batch_size rows of X and y.
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same number of rows, got {len(X)} and "
                         f"{len(y)}")
    batch_size = check_int("batch_size", batch_size, 1)
    order = np.random.default_rng(seed).permutation(len(X)) if shuffle else np.arange(len(X))
    for start in range(0, len(X), batch_size):
        idx = order[start:start + batch_size]
        yield X[idx], y[idx]
