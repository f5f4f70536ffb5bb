"""Data helpers: split, standardizer, one-hot, mini-batches."""
import numpy as np
import pytest

from fastdnn import Standardizer, minibatches, one_hot, train_dev_test_split


def test_split_sizes_cover_and_stratify():
    y = np.repeat(np.arange(4), [100, 200, 300, 400])
    X = np.arange(len(y) * 2, dtype=float).reshape(-1, 2)
    X0, y0 = X.copy(), y.copy()
    Xtr, Xd, Xte, ytr, yd, yte = train_dev_test_split(X, y, (0.8, 0.1, 0.1), seed=0)
    assert (len(ytr), len(yd), len(yte)) == (800, 100, 100)
    rows = np.concatenate([Xtr[:, 0], Xd[:, 0], Xte[:, 0]])
    assert np.array_equal(np.sort(rows), X[:, 0])          # disjoint and complete
    for part in (yd, yte):
        assert np.array_equal(np.bincount(part, minlength=4), [10, 20, 30, 40])
    assert np.array_equal(ytr, (Xtr[:, 0] // 2 >= 100).astype(int) + (Xtr[:, 0] // 2 >= 300)
                          + (Xtr[:, 0] // 2 >= 600))      # rows keep their labels
    assert np.array_equal(X, X0) and np.array_equal(y, y0)
    again = train_dev_test_split(X, y, (0.8, 0.1, 0.1), seed=0)
    assert np.array_equal(again[0], Xtr)


def test_split_tiny_fractions_and_errors():
    y = np.arange(1000) % 3
    _, Xd, Xte, *_ = train_dev_test_split(np.zeros((1000, 1)), y, (0.98, 0.01, 0.01))
    assert len(Xd) == 10 and len(Xte) == 10
    with pytest.raises(ValueError, match="fractions"):
        train_dev_test_split(np.zeros((10, 1)), np.zeros(10), (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="same number of rows"):
        train_dev_test_split(np.zeros((10, 1)), np.zeros(9))


def test_standardizer_fits_on_train_only(rng):
    X = rng.standard_normal((50, 3)) * [1, 5, 0] + [2, -1, 7]
    s = Standardizer().fit(X)
    Z = s.transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), [1, 1, 0], atol=1e-12)
    other = rng.standard_normal((4, 3))
    np.testing.assert_allclose(s.transform(other), (other - s.mean_) / s.scale_)
    np.testing.assert_allclose(s.inverse_transform(s.transform(other)), other)
    assert s.transform(X, "float32").dtype == np.float32
    with pytest.raises(RuntimeError, match="not fitted"):
        Standardizer().transform(X)
    with pytest.raises(ValueError, match="X must have shape"):
        s.transform(X[:, :2])


def test_one_hot():
    assert np.array_equal(one_hot([2, 0]), [[0, 0, 1], [1, 0, 0]])
    assert one_hot([1], k=4).shape == (1, 4)
    with pytest.raises(ValueError, match="labels"):
        one_hot([0.5])


def test_minibatches_shuffle_then_partition():
    X, y = np.arange(10)[:, None], np.arange(10)
    batches = list(minibatches(X, y, 4, seed=1))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    seen = np.concatenate([b[1] for b in batches])
    assert sorted(seen) == list(range(10)) and list(seen) != list(range(10))
    for xb, yb in batches:
        assert np.array_equal(xb[:, 0], yb)
    assert [len(b[1]) for b in minibatches(X, y, 1)] == [1] * 10
    with pytest.raises(ValueError, match="batch_size"):
        list(minibatches(X, y, 0))
