"""Tests for fastdnn.sklearn: scikit-learn's estimator checks, agreement with
sklearn.neural_network (float64 fits follow it to rounding error), model selection,
pickling, partial_fit / warm_start, stopping rules and argument errors.

n = samples, k = outputs.
"""
import importlib.util
import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastdnn.sklearn import MLPClassifier, MLPRegressor

HAS_CPU = importlib.util.find_spec("fastdnn.cpu") is not None

def _available_backends():
    from fastdnn.backend import cuda_available
    return ["numpy"] + (["cpu"] if HAS_CPU else []) + (["cuda"] if cuda_available() else [])


# scikit-learn's own settings for its MLPs' checks (max_iter=100, all else default), on
# the default backend and on every backend this machine has; and training in float32
# whatever X is (a row's float32 prediction must not depend on the other rows either).
CHECKED = [cls(max_iter=100, **({} if backend == "auto" else {"backend": backend}))
           for backend in ["auto"] + _available_backends()
           for cls in (MLPClassifier, MLPRegressor)] + [
    cls(max_iter=100, dtype="float32") for cls in (MLPClassifier, MLPRegressor)]


@parametrize_with_checks(CHECKED)
def test_sklearn_estimator_checks(estimator, check):
    name = getattr(check, "func", check).__name__
    if estimator.dtype == "float32" and name.startswith("check_sample_weight_equivalence"):
        pytest.skip("float32 training sums weighted and repeated rows in another order: "
                    "3e-7 apart, where the check allows 1e-7 (it is run on float64)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# ---------------------------------------------------------------- agreement with sklearn
@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X[:600] / 16.0
    return train_test_split(X, y[:600], random_state=0)


def _pair(ours_cls, sk_cls, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_cls(**kw, backend="numpy", dtype="float64").fit(X, y)
        ref = sk_cls(**kw).fit(X, y)
    return ours, ref


def _assert_same_fit(ours, ref, rtol=1e-9, atol=1e-11):
    assert ours.n_iter_ == ref.n_iter_
    assert ours.t_ == ref.t_
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=rtol, atol=atol)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol * 1e3, atol=atol * 1e3)


@pytest.mark.parametrize("kw", [
    dict(solver="adam"),
    dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
    dict(solver="sgd", momentum=0.5, nesterovs_momentum=False),
    dict(solver="sgd", momentum=0.0),
    dict(solver="adam", early_stopping=True, validation_fraction=0.2),
    dict(solver="adam", activation="tanh", hidden_layer_sizes=(7, 5), alpha=0.1),
    dict(solver="adam", activation="logistic", batch_size=37, shuffle=False),
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_classifier_follows_sklearn_in_float64(digits, kw):
    Xtr, Xte, ytr, yte = digits
    params = dict(hidden_layer_sizes=(16,), max_iter=6, random_state=0,
                  learning_rate_init=0.01)
    params.update(kw)
    ours, ref = _pair(MLPClassifier, SkMLPClassifier, Xtr, ytr, **params)
    _assert_same_fit(ours, ref)
    np.testing.assert_allclose(ours.predict_proba(Xte), ref.predict_proba(Xte),
                               rtol=1e-7, atol=1e-9)
    assert (ours.predict(Xte) == ref.predict(Xte)).all()
    if kw.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_)
        assert ours.best_validation_score_ == ref.best_validation_score_
        assert ours.best_loss_ is None and ours.validation_scores_ is not None
    else:
        assert ours.best_loss_ == pytest.approx(ref.best_loss_, rel=1e-9)
        assert ours.validation_scores_ is None and ours.best_validation_score_ is None


@pytest.mark.parametrize("learning_rate", ["invscaling", "adaptive"])
def test_sgd_schedules_follow_sklearn_without_momentum(digits, learning_rate):
    # the schedules change the rate, where momentum forms differ (see the docstring)
    Xtr, _, ytr, _ = digits
    kw = dict(hidden_layer_sizes=(8,), solver="sgd", momentum=0.0, max_iter=12,
              learning_rate=learning_rate, learning_rate_init=0.5, random_state=1,
              n_iter_no_change=2, tol=0.05, power_t=0.25)
    ours, ref = _pair(MLPClassifier, SkMLPClassifier, Xtr, ytr, **kw)
    _assert_same_fit(ours, ref)


def test_binary_and_multilabel_follow_sklearn():
    X, y = make_classification(n_samples=120, n_features=6, random_state=0)
    kw = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0,
              learning_rate_init=0.01)
    ours, ref = _pair(MLPClassifier, SkMLPClassifier, X, np.where(y, "yes", "no"), **kw)
    _assert_same_fit(ours, ref)
    assert ours.out_activation_ == "logistic" and ours.n_outputs_ == 1
    P = ours.predict_proba(X)
    assert P.shape == (120, 2)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert set(ours.predict(X)) <= {"yes", "no"}
    Y = np.column_stack([y, 1 - y, (X[:, 0] > 0).astype(int)])
    ours, ref = _pair(MLPClassifier, SkMLPClassifier, X, Y, **kw)
    _assert_same_fit(ours, ref)
    assert ours.predict(X).shape == (120, 3)
    assert ours.predict_proba(X).shape == (120, 3)


@pytest.mark.parametrize("n_targets", [1, 3])
def test_regressor_follows_sklearn(n_targets):
    # with 3 targets sklearn reports the loss averaged over targets but steps on the
    # gradient of their sum; both solvers, with L2 (the batch-by-batch loss path)
    X, y = make_regression(n_samples=150, n_features=5, n_targets=n_targets, noise=0.1,
                           random_state=0)
    y = y / y.std()
    for solver in ("adam", "sgd"):
        kw = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=0, solver=solver,
                  learning_rate_init=0.01, alpha=0.5)
        ours, ref = _pair(MLPRegressor, SkMLPRegressor, X, y, **kw)
        _assert_same_fit(ours, ref)
        np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-7, atol=1e-9)
        assert ours.predict(X).shape == y.shape


def test_partial_fit_follows_sklearn(digits):
    Xtr, _, ytr, _ = digits
    kw = dict(hidden_layer_sizes=(10,), random_state=0, learning_rate_init=0.01)
    ours = MLPClassifier(**kw, backend="numpy", dtype="float64")
    ref = SkMLPClassifier(**kw)
    classes = np.unique(ytr)
    for s in range(0, 400, 100):
        ours.partial_fit(Xtr[s:s + 100], ytr[s:s + 100], classes=classes)
        ref.partial_fit(Xtr[s:s + 100], ytr[s:s + 100], classes=classes)
    _assert_same_fit(ours, ref)
    assert ours.n_iter_ == 1 and ours.t_ == 400


# ---------------------------------------------------------------- float32 and backends
def test_dtype_follows_the_input_as_in_scikit_learn(digits):
    Xtr, Xte, ytr, yte = digits
    kw = dict(hidden_layer_sizes=(32,), max_iter=30, random_state=0,
              learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours64 = MLPClassifier(**kw, backend="numpy").fit(Xtr, ytr)
        ours32 = MLPClassifier(**kw, backend="numpy").fit(Xtr.astype(np.float32), ytr)
        forced = MLPClassifier(**kw, backend="numpy", dtype="float32").fit(Xtr, ytr)
        reg = MLPRegressor(max_iter=3, backend="numpy").fit(Xtr.astype(np.float32), ytr)
        ref = SkMLPClassifier(**kw).fit(Xtr, ytr)
    assert ours64.coefs_[0].dtype == ours64.predict_proba(Xte).dtype == np.float64
    assert ours32.coefs_[0].dtype == ours32.predict_proba(Xte).dtype == np.float32
    assert forced.coefs_[0].dtype == forced.intercepts_[0].dtype == np.float32
    assert reg.predict(Xte).dtype == np.float32
    np.testing.assert_allclose(ours64.loss_curve_, ref.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(ours32.loss_curve_, ref.loss_curve_, rtol=1e-3)
    assert ours32.score(Xte, yte) > 0.9
    assert abs(ours32.score(Xte, yte) - ref.score(Xte, yte)) < 0.02


@pytest.mark.skipif(not HAS_CPU, reason="fastdnn.cpu is not available")
def test_cpu_backend_matches_numpy_backend(digits):
    Xtr, Xte, ytr, _ = digits
    kw = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(**kw, backend="numpy").fit(Xtr, ytr)
        b = MLPClassifier(**kw, backend="cpu").fit(Xtr, ytr)
    np.testing.assert_allclose(b.predict_proba(Xte), a.predict_proba(Xte), rtol=1e-7,
                               atol=1e-9)


def test_auto_backend_fits(digits):
    Xtr, Xte, ytr, yte = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0,
                            learning_rate_init=0.01).fit(
            Xtr, ytr)
    assert clf.backend == "auto"
    assert clf.model_.backend in (("auto", "cpu") if HAS_CPU else ("numpy",))
    assert clf.score(Xte, yte) > 0.8


@pytest.mark.parametrize("kw", [dict(batchnorm=True), dict(keep_prob=0.8),
                                dict(batchnorm=True, keep_prob=[0.9, 0.8],
                                     hidden_layer_sizes=(32, 16))])
def test_fastdnn_options_train(digits, kw):
    Xtr, Xte, ytr, yte = digits
    params = dict(hidden_layer_sizes=(32,), max_iter=30, random_state=0,
                  learning_rate_init=0.01, backend="numpy")
    params.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(**params).fit(Xtr, ytr)
        b = MLPClassifier(**params).fit(Xtr, ytr)
    assert a.score(Xte, yte) > 0.85
    np.testing.assert_array_equal(a.predict_proba(Xte), b.predict_proba(Xte))
    assert len(a.coefs_) == len(params["hidden_layer_sizes"]) + 1


# ---------------------------------------------------------------- model selection, pickle
def test_pipeline_and_searches(digits):
    Xtr, Xte, ytr, yte = digits
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,),
                                                         max_iter=15, random_state=0,
                                                         learning_rate_init=0.01,
                                                         backend="numpy"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-2],
                                   "mlpclassifier__solver": ["adam", "sgd"]}, cv=2)
        grid.fit(Xtr, ytr)
        rand = RandomizedSearchCV(
            MLPRegressor(max_iter=10, random_state=0, backend="numpy"),
            {"hidden_layer_sizes": [(4,), (8,), (8, 4)],
             "learning_rate_init": [1e-3, 1e-2]}, n_iter=3, cv=2, random_state=0)
        rand.fit(Xtr, Xtr[:, 20])
    assert grid.best_score_ > 0.7 and grid.score(Xte, yte) > 0.7
    assert set(grid.best_params_) == {"mlpclassifier__alpha", "mlpclassifier__solver"}
    assert rand.best_estimator_.n_iter_ == 10


def test_pickle_round_trip_and_resume(digits):
    Xtr, Xte, ytr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(12,), max_iter=3, random_state=0,
                        warm_start=True, backend="numpy", dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(Xtr, ytr)
        copy = pickle.loads(pickle.dumps(clf))
        np.testing.assert_array_equal(copy.predict_proba(Xte), clf.predict_proba(Xte))
        assert copy._optimizer.t == clf._optimizer.t > 0
        clf.fit(Xtr, ytr)
        copy.fit(Xtr, ytr)
    np.testing.assert_array_equal(copy.predict_proba(Xte), clf.predict_proba(Xte))


def test_warm_start_keeps_optimizer_state(digits):
    Xtr, _, ytr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(12,), max_iter=2, random_state=0,
                        warm_start=True, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(Xtr, ytr)
        steps, moments = clf._optimizer.t, clf._optimizer.state["m"][0].copy()
        clf.fit(Xtr, ytr)
        assert clf._optimizer.t == 2 * steps          # Adam's count goes on
        assert not np.array_equal(clf._optimizer.state["m"][0], moments)
        assert len(clf.loss_curve_) == 4 and clf.n_iter_ == 2 and clf.t_ == 4 * len(Xtr)
        clf.set_params(hidden_layer_sizes=(5,))
        with pytest.raises(ValueError, match="warm_start"):
            clf.fit(Xtr, ytr)
        clf.set_params(warm_start=False)
        clf.fit(Xtr, ytr)                              # a fresh network
    assert clf._optimizer.t == steps and clf.coefs_[0].shape == (64, 5)


# ---------------------------------------------------------------- stopping, errors
def test_stopping_rules(digits):
    Xtr, _, ytr, _ = digits
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, backend="numpy",
                      random_state=0).fit(Xtr, ytr)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, tol=10.0,
                        n_iter_no_change=3, backend="numpy", random_state=0).fit(Xtr, ytr)
    # epoch 1 improves on inf; epochs 2..5 do not: the count then exceeds 3
    assert clf.n_iter_ == 5 and clf.best_loss_ == min(clf.loss_curve_)
    with pytest.warns(ConvergenceWarning):
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=6, tol=10.0,
                            n_iter_no_change=np.inf, backend="numpy").fit(Xtr, ytr)
    assert clf.n_iter_ == 6
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True, backend="numpy").partial_fit(
            Xtr, ytr, classes=np.arange(10))


def test_partial_fit_needs_classes_first(digits):
    Xtr, _, ytr, _ = digits
    clf = MLPClassifier(backend="numpy")
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(Xtr, ytr)
    clf.partial_fit(Xtr[:50], ytr[:50], classes=np.arange(10))
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(Xtr, ytr + 20)


@pytest.mark.parametrize("param, value, match", [
    ("solver", "newton", "solver"),
    ("max_fun", 0, "max_fun"),
    ("solver", "newton", "solver"),
    ("activation", "softplus", "activation"),
    ("alpha", -1.0, "alpha"),
    ("batch_size", 0, "batch_size"),
    ("learning_rate", "cosine", "learning_rate"),
    ("learning_rate_init", 0.0, "learning_rate_init"),
    ("max_iter", 0, "max_iter"),
    ("momentum", 1.0, "momentum"),
    ("beta_1", 1.0, "beta_1"),
    ("epsilon", 0.0, "epsilon"),
    ("n_iter_no_change", 0, "n_iter_no_change"),
    ("hidden_layer_sizes", (8, 0), "hidden_layer_sizes"),
    ("keep_prob", 0.0, "keep_prob"),
    ("backend", "tpu", "backend"),
    ("dtype", "float16", "dtype"),
])
def test_bad_parameters_name_the_argument(param, value, match):
    X, y = np.random.default_rng(0).random((20, 3)), np.arange(20) % 2
    with pytest.raises((ValueError, TypeError), match=match):
        MLPClassifier(**{"solver": "sgd", "backend": "numpy", param: value}).fit(X, y)


@pytest.mark.parametrize("backend", ["numpy"] + (["cpu"] if HAS_CPU else []))
def test_lbfgs_follows_scikit_learn(digits, backend):
    Xtr, _, ytr, _ = digits
    Xr, yr = make_regression(n_samples=80, n_features=5, n_targets=3, random_state=0)
    yr = yr / 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for ours_cls, sk_cls, X, y in ((MLPClassifier, SkMLPClassifier, Xtr[:300], ytr[:300]),
                                       (MLPRegressor, SkMLPRegressor, Xr, yr)):
            kw = dict(solver="lbfgs", hidden_layer_sizes=(16,), max_iter=20, random_state=0)
            ours, ref = ours_cls(**kw, backend=backend).fit(X, y), sk_cls(**kw).fit(X, y)
            assert ours.n_iter_ == ref.n_iter_
            np.testing.assert_allclose(ours.loss_, ref.loss_, rtol=1e-9)
            for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
                np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPClassifier(solver="adam"), "partial_fit")
    with pytest.raises(ValueError, match="batchnorm"):
        MLPClassifier(solver="lbfgs", batchnorm=True).fit(Xtr[:50], ytr[:50])


def test_coefs_are_the_live_parameters(digits):
    Xtr, Xte, ytr, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                            backend="numpy").fit(Xtr, ytr)
    clf.coefs_[1][:] = 0                   # edited in place
    clf.intercepts_[1][:] = 0
    np.testing.assert_allclose(clf.predict_proba(Xte), 0.1)
    clf.coefs_[1] = np.ones((8, 10))       # replaced
    np.testing.assert_allclose(clf.predict_proba(Xte), 0.1)
    assert clf.model_.get_params()["W2"].sum() == 80
    first = clf.coefs_[0]
    clf.coefs_[0] = np.ones((3, 8))
    with pytest.raises(ValueError, match=r"coefs_\[0\] must have shape \(64, 8\)"):
        clf.predict(Xte)
    clf.coefs_[0] = first
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.coefs_[1], 1)
    restored.coefs_[1][:] = 2
    assert restored.model_.get_params()["W2"].sum() == 160
    assert clf.model_.get_params()["W2"].sum() == 80


@pytest.mark.parametrize("backend", ["numpy"] + (["cpu"] if HAS_CPU else []))
def test_sample_weight_follows_scikit_learn(digits, backend):
    Xtr, _, ytr, _ = digits
    X, y = Xtr[:200], ytr[:200]
    w = np.random.default_rng(0).random(len(X)) * 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for solver, early_stopping in (("sgd", False), ("adam", True), ("lbfgs", False)):
            kw = dict(solver=solver, hidden_layer_sizes=(16,), max_iter=6, random_state=0,
                      early_stopping=early_stopping, learning_rate_init=0.01)
            ours = MLPClassifier(**kw, backend=backend).fit(X, y, sample_weight=w)
            ref = SkMLPClassifier(**kw).fit(X, y, sample_weight=w)
            np.testing.assert_allclose(ours.loss_, ref.loss_, rtol=1e-9)
            np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X),
                                       rtol=1e-7, atol=1e-12)
            if early_stopping:
                np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_)
        part = MLPRegressor(max_iter=3, random_state=0, backend=backend)
        part.partial_fit(X, y.astype(float), sample_weight=w)
    with pytest.raises(ValueError, match="sample_weight"):
        MLPClassifier(backend=backend).fit(X, y, sample_weight=np.ones(3))


def test_poisson_follows_scikit_learn():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    y = rng.poisson(np.exp(0.4 * X[:, 0] + 0.3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for solver in ("lbfgs", "sgd", "adam"):
            kw = dict(loss="poisson", solver=solver, hidden_layer_sizes=(6,), max_iter=15,
                      random_state=0, learning_rate_init=0.01)
            ours = MLPRegressor(**kw, backend="numpy").fit(X, y)
            ref = SkMLPRegressor(**kw).fit(X, y)
            assert ours.out_activation_ == ref.out_activation_ == "exp"
            np.testing.assert_allclose(ours.loss_, ref.loss_, rtol=1e-9)
            np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-9)
    with pytest.raises(ValueError, match=">= 0"):
        MLPRegressor(loss="poisson", max_iter=2).fit(X, -np.ones(len(X)))


def test_feature_names_in_from_a_frame():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0) % 7})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(max_iter=2, backend="numpy").fit(X, np.arange(30) % 2)
    assert list(clf.feature_names_in_) == ["a", "b"] and clf.n_features_in_ == 2


def test_sparse_input_is_densified(digits):
    sparse = pytest.importorskip("scipy.sparse")
    Xtr, Xte, ytr, _ = digits
    kw = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(**kw).fit(sparse.csr_matrix(Xtr), ytr)
        b = MLPClassifier(**kw).fit(Xtr, ytr)
    np.testing.assert_array_equal(a.predict_proba(sparse.csc_matrix(Xte)),
                                  b.predict_proba(Xte))


def test_verbose_prints_sklearn_lines(digits, capsys):
    Xtr, _, ytr, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, verbose=True, early_stopping=True,
                      backend="numpy").fit(Xtr, ytr)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Iteration 1, loss = ")
    assert lines[1].startswith("Validation score: ") and len(lines) == 4


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_ctrl_c_ends_fit_as_in_scikit_learn(cls, early_stopping, monkeypatch):
    """A KeyboardInterrupt during training ends fit with scikit-learn's warning and
    the epochs done (the best ones with early stopping), not with the exception."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16.0, y[:300]
    est = cls(hidden_layer_sizes=(16,), max_iter=50, random_state=0,
              early_stopping=early_stopping, n_iter_no_change=100)
    epoch, calls = cls._epoch, []

    def interrupted_third(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return epoch(self, *args)

    monkeypatch.setattr(cls, "_epoch", interrupted_third)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        try:
            assert est.fit(X, y) is est
        except KeyboardInterrupt:   # not up to pytest, which would end the session
            pytest.fail("the KeyboardInterrupt came out of fit")
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    assert est.predict(X).shape == (300,)
