"""Data augmentation in the scikit-learn estimators (``augment=fastdnn.Augment(...)``):
fits repeat bit for bit, differ from plain ones and agree across backends; a fit equals
plain partial_fits on batches augmented by hand with fastdnn.reference.augment
(MLP.train_step(augment=) too, on which the k-targets-with-L2 epochs run); partial_fit,
warm_start, clone, pickle; validation data and predictions untouched; bad settings named.

n = samples (8x8 digits, one image a row), k = outputs.
"""
import importlib.util
import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score

import fastdnn
import fastdnn.sklearn as fsk
from fastdnn import MLP, Augment
from fastdnn.reference.augment import augment_rows
from fastdnn.sklearn import MLPClassifier, MLPRegressor
from helpers import assert_close

HAS_CPU = importlib.util.find_spec("fastdnn.cpu") is not None
BACKENDS = ["numpy"] + (["cpu"] if HAS_CPU else [])
needs_cpu = pytest.mark.skipif(not HAS_CPU, reason="fastdnn.cpu is not available")

AUG = Augment((8, 8), flip=True, shift=1, noise=0.1)
TOLERANCES = {"float64": 1e-10, "float32": 1e-5}   # cpu against numpy, as test_augment


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X[:150] / 16.0
    W = np.random.default_rng(0).standard_normal((64, 3))
    return X, y[:150], X @ W          # images, labels, three regression targets


def fitted(cls, X, y, augment=AUG, **kw):
    params = dict(hidden_layer_sizes=(16,), max_iter=3, batch_size=40, random_state=0,
                  learning_rate_init=0.01, augment=augment)
    params.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cls(**params).fit(X, y)


def weights(est):
    return [np.array(a) for a in est.coefs_ + est.intercepts_]


def assert_same_bits(a, b):
    for x, y in zip(weights(a), weights(b), strict=True):
        np.testing.assert_array_equal(x, y)


def assert_differ(a, b):
    assert not np.allclose(a.coefs_[0], b.coefs_[0], rtol=1e-3, atol=1e-4)


def targets(data, cls, n_targets=1):
    X, labels, Y = data
    if cls is MLPClassifier:
        return X, labels
    return X, (Y[:, 0] if n_targets == 1 else Y[:, :n_targets])


# ----------------------------------------------------------------------------- fits
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_augmented_fit_repeats_and_differs_from_a_plain_one(digits, cls, backend, dtype):
    X, y = targets(digits, cls)
    kw = dict(backend=backend, dtype=dtype)
    a, b = fitted(cls, X, y, **kw), fitted(cls, X, y, **kw)
    assert_same_bits(a, b)
    assert a.coefs_[0].dtype == dtype
    assert_differ(a, fitted(cls, X, y, random_state=1, **kw))
    # without shuffles (whose order the augmentation's seed draw changes), only the
    # augmentation tells the fits apart
    in_order = fitted(cls, X, y, shuffle=False, **kw)
    assert_differ(in_order, fitted(cls, X, y, augment=None, shuffle=False, **kw))


@needs_cpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cls, n_targets, alpha", [
    (MLPClassifier, 1, 1e-4), (MLPRegressor, 1, 1e-4),
    (MLPRegressor, 3, 0.1)])   # (the train_step path)
def test_cpu_agrees_with_numpy(digits, cls, n_targets, alpha, dtype):
    X, y = targets(digits, cls, n_targets)
    ref = fitted(cls, X, y, backend="numpy", dtype=dtype, alpha=alpha)
    fast = fitted(cls, X, y, backend="cpu", dtype=dtype, alpha=alpha)
    rtol = TOLERANCES[dtype]
    for i, (got, want) in enumerate(zip(weights(fast), weights(ref), strict=True)):
        assert_close(got, want, dtype=dtype, rtol=rtol, atol=rtol / 10, name=f"param {i}")
    np.testing.assert_allclose(fast.loss_curve_, ref.loss_curve_, rtol=rtol * 10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_augment_that_changes_nothing_leaves_the_bits(digits, backend):
    X, y = targets(digits, MLPClassifier)
    assert_same_bits(fitted(MLPClassifier, X, y, augment=Augment((8, 8)), backend=backend),
                     fitted(MLPClassifier, X, y, augment=None, backend=backend))


# ----------------------------------------------------------------------------- twins
def by_hand(X, seed, step0, batch_size, aug=AUG):
    """X's rows as an epoch without shuffling augments them: batch b at step step0 + b."""
    out = np.empty_like(X)
    for b, s in enumerate(range(0, len(X), batch_size)):
        out[s:s + batch_size] = augment_rows(X[s:s + batch_size], (seed, step0 + b),
                                             aug.image_shape, aug.flip, aug.shift,
                                             aug.noise)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls, n_targets, alpha", [
    (MLPClassifier, 1, 1e-4), (MLPRegressor, 1, 1e-4),
    (MLPRegressor, 3, 0.1)])   # (the train_step path)
def test_fit_equals_plain_partial_fits_on_rows_augmented_by_hand(digits, backend, cls,
                                                                 n_targets, alpha):
    X, y = targets(digits, cls, n_targets)
    kw = dict(backend=backend, dtype="float64", alpha=alpha, shuffle=False)
    aug = fitted(cls, X, y, **kw)
    # the plain twin draws no seed: the same initial weights, and no shuffle to differ
    plain = cls(**{k: v for k, v in aug.get_params().items() if k != "augment"})
    seed, steps = aug.model_.seed, -(-len(X) // 40)
    assert seed != 0
    extra = {"classes": np.unique(y)} if cls is MLPClassifier else {}
    for epoch in range(3):
        plain.partial_fit(by_hand(X, seed, epoch * steps, 40), y, **extra)
    assert aug.model_.step_ == plain.model_.step_ == 3 * steps
    assert_same_bits(aug, plain)
    np.testing.assert_array_equal(aug.loss_curve_, plain.loss_curve_)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_train_step_with_augment_is_a_step_of_fit_and_of_rows_augmented_by_hand(
        digits, backend, dtype):
    X, labels, _ = digits
    X, y = X[:50].astype(dtype), labels[:50]
    X_before = X.copy()
    models = [MLP([64, 16, 10], dtype=dtype, backend=backend, seed=7) for _ in range(4)]
    for m in models:   # one plain step first: the augmented one is step 1
        m.train_step(X, y, fastdnn.Adam(0.01))
    step_loss = models[0].train_step(X, y, None, augment=AUG)
    models[1].fit(X, y, epochs=1, batch_size=len(X), shuffle=False, verbose=0,
                  augment=AUG)
    hand = augment_rows(X, (7, 1), AUG.image_shape, AUG.flip, AUG.shift, AUG.noise)
    hand_loss = models[2].train_step(hand, y, None)
    plain_loss = models[3].train_step(X, y, None)
    np.testing.assert_array_equal(X, X_before)
    assert step_loss == hand_loss != plain_loss
    assert models[0].step_ == models[1].step_ == 2
    for name, w in models[0].get_weights().items():
        np.testing.assert_array_equal(models[1].get_weights()[name], w, err_msg=name)
        np.testing.assert_array_equal(models[2].get_weights()[name], w, err_msg=name)
        assert not np.array_equal(models[3].get_weights()[name], w), name


def test_train_step_checks_augment(digits):
    X, labels, _ = digits
    m = MLP([64, 10], backend="numpy", seed=0)
    with pytest.raises(TypeError, match="augment must be a fastdnn.Augment or None"):
        m.train_step(X, labels, "sgd", augment=(8, 8))
    with pytest.raises(ValueError, match=r"augment's image_shape \(4, 4\) holds 16"):
        m.train_step(X, labels, "sgd", augment=Augment((4, 4), flip=True))
    with pytest.raises(ValueError, match="augment needs a dense X"):
        m.train_step(scipy.sparse.csr_matrix(X), labels, "sgd", augment=AUG)
    assert m.step_ == 0


# ----------------------------------------------------------------------------- workflows
@pytest.mark.parametrize("backend", BACKENDS)
def test_partial_fits_continue_the_draws_of_a_fit(digits, backend):
    X, y = targets(digits, MLPClassifier)
    kw = dict(backend=backend, shuffle=False)
    whole = fitted(MLPClassifier, X, y, max_iter=2, **kw)
    parts = MLPClassifier(**{**whole.get_params(), "max_iter": 1})
    for _ in range(2):   # each partial_fit continues the step count, and so the draws
        parts.partial_fit(X, y, classes=np.unique(y))
    assert_same_bits(whole, parts)
    again = clone(parts).partial_fit(X, y, classes=np.unique(y))
    again.partial_fit(X, y)
    assert_same_bits(parts, again)


@pytest.mark.parametrize("backend", BACKENDS)
def test_warm_start_continues_the_draws(digits, backend):
    X, y = targets(digits, MLPRegressor)
    whole = fitted(MLPRegressor, X, y, max_iter=2, shuffle=False, backend=backend)
    warm = fitted(MLPRegressor, X, y, max_iter=1, shuffle=False, backend=backend,
                  warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm.fit(X, y)
    assert warm.model_.step_ == whole.model_.step_ == 8
    assert_same_bits(whole, warm)


def test_clone_and_get_params_keep_augment():
    clf = MLPClassifier(augment=AUG, backend="numpy")
    assert clf.get_params()["augment"] is AUG
    copy = clone(clf)
    assert copy.augment == AUG and isinstance(copy.augment, Augment)
    other = Augment((8, 8), noise=0.5)
    assert copy.set_params(augment=other).augment is other
    assert MLPRegressor().get_params()["augment"] is None
    assert "augment=Augment((8, 8), flip=True, shift=1, noise=0.1)" in repr(clf)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_pickled_estimator_predicts_and_trains_on_the_same(digits, cls):
    X, y = targets(digits, cls)
    est = fitted(cls, X, y, backend=BACKENDS[-1], warm_start=True, max_iter=2)
    copy = pickle.loads(pickle.dumps(est))
    assert copy.augment == AUG
    np.testing.assert_array_equal(copy.predict(X), est.predict(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        copy.fit(X, y)
    assert_same_bits(est, copy)


def test_sparse_X_is_densified_for_augmentation(digits):
    X, y = targets(digits, MLPClassifier)
    dense = fitted(MLPClassifier, X, y, backend=BACKENDS[-1])
    sparse = fitted(MLPClassifier, scipy.sparse.csr_matrix(X), y, backend=BACKENDS[-1])
    assert_same_bits(dense, sparse)


@pytest.mark.parametrize("backend", BACKENDS)
def test_validation_data_and_predictions_are_not_augmented(digits, backend, monkeypatch):
    X, y = targets(digits, MLPRegressor)
    splits, real_split = [], fsk.train_test_split

    def recording_split(*arrays, **kw):   # the early-stopping split, kept to score on
        splits.append(real_split(*arrays, **kw))
        return splits[-1]

    monkeypatch.setattr(fsk, "train_test_split", recording_split)
    X_before = X.copy()
    reg = fitted(MLPRegressor, X, y, backend=backend, early_stopping=True, max_iter=4,
                 validation_fraction=0.3)
    np.testing.assert_array_equal(X, X_before)
    X_val, y_val = splits[0][1], splits[0][3].ravel()
    # the best weights are restored: their score is the best validation score
    assert reg.best_validation_score_ == max(reg.validation_scores_)
    assert r2_score(y_val, reg.predict(X_val)) == reg.best_validation_score_
    # predict is the forward pass of coefs_ on the rows as given
    hidden = np.maximum(X @ reg.coefs_[0] + reg.intercepts_[0], 0)
    assert_close(reg.predict(X), (hidden @ reg.coefs_[1] + reg.intercepts_[1]).ravel(),
                 rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- bad input
def test_lbfgs_refuses_augmentation(digits):
    X, y = targets(digits, MLPClassifier)
    with pytest.raises(ValueError, match=r"solver='lbfgs'.*augment=Augment\(\(8, 8\)"):
        MLPClassifier(solver="lbfgs", augment=AUG).fit(X, y)
    # an Augment that changes nothing is no augmentation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPRegressor(solver="lbfgs", augment=Augment((8, 8)), max_iter=5,
                     backend="numpy").fit(X, y)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("value", [(8, 8), {"flip": True}, "flip", True])
def test_augment_of_another_type_is_named(digits, cls, value):
    X, y = targets(digits, cls)
    with pytest.raises(TypeError, match=re.escape(
            f"augment must be a fastdnn.Augment or None, got {value!r}")):
        cls(augment=value, backend="numpy").fit(X, y)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_image_size_must_match_n_features(digits, cls):
    X, y = targets(digits, cls)
    for aug in (Augment((7, 7), flip=True), Augment((8, 8, 3)), Augment((4, 4))):
        with pytest.raises(ValueError, match=rf"augment's image_shape .* holds "
                                             rf"{aug.size} values, the rows of X have 64"):
            cls(augment=aug, backend="numpy", max_iter=1).fit(X, y)
        if not aug.active:   # checked even where lbfgs would not use it
            with pytest.raises(ValueError, match="augment's image_shape"):
                cls(augment=aug, solver="lbfgs", backend="numpy", max_iter=1).fit(X, y)
    clf = fitted(cls, X, y, backend="numpy", warm_start=True, max_iter=1)
    with pytest.raises(ValueError, match="augment's image_shape"):   # and on partial_fit
        clf.set_params(augment=Augment((4, 4), shift=1)).partial_fit(X, y)
