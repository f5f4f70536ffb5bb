"""A SciPy sparse X in fit, predict and evaluate: densified a batch (or a block of rows)
at a time, never whole, and trained bit for bit as the dense X is."""
import numpy as np
import pytest

import fastdnn
from fastdnn import MLP
from fastdnn.engine import sparse as sparse_rows
from helpers import assert_close

sp = pytest.importorskip("scipy.sparse")


def data(n=70, n_x=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_x)) * (rng.random((n, n_x)) < 0.15)
    X[5] = 0                                  # an empty row
    return X, rng.integers(0, 3, n)


def pair(backend, dtype, **kw):
    return [MLP([30, 16, 3], batchnorm=True, keep_prob=0.8, l2=0.01, dtype=dtype,
                backend=backend, seed=4, **kw) for _ in range(2)]


@pytest.fixture
def toarray_rows(monkeypatch):
    """Rows of every sparse matrix densified during the test."""
    seen = []
    real = sp.csr_matrix.toarray

    def record(self, *args, **kwargs):
        seen.append(self.shape[0])
        return real(self, *args, **kwargs)
    monkeypatch.setattr(sp.csr_matrix, "toarray", record)
    return seen


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_sparse_fit_is_the_dense_fit_bit_for_bit(backend, dtype, toarray_rows):
    X, y = data()
    w = np.random.default_rng(1).random(len(X)) + 0.5
    dense, sparse = pair(backend, dtype)
    kw = dict(epochs=2, batch_size=16, verbose=0, sample_weight=w)
    hd = dense.fit(X, y, optimizer=fastdnn.Adam(0.01), validation_data=(X[:25], y[:25]),
                   **kw)
    toarray_rows.clear()
    hs = sparse.fit(sp.csr_matrix(X), y, optimizer=fastdnn.Adam(0.01),
                    validation_data=(sp.csr_matrix(X[:25]), y[:25]), **kw)
    # batches (the cpu engine scatters CSR rows itself) and the dev set's block
    assert set(toarray_rows) == ({16, 70 % 16, 25} if backend == "numpy" else {25})
    for k, v in dense.get_weights().items():
        np.testing.assert_array_equal(sparse.get_weights()[k], v, err_msg=k)
    for k, v in dense.get_batchnorm_stats().items():
        np.testing.assert_array_equal(sparse.get_batchnorm_stats()[k], v, err_msg=k)
    assert hs["loss"] == hd["loss"] and hs["accuracy"] == hd["accuracy"]
    assert_close(hs["val_loss"], hd["val_loss"], rtol=1e-6 if dtype == "float32" else 1e-12)
    Xt = sp.csc_matrix(X[::-3])                      # any format, any rows
    np.testing.assert_array_equal(sparse.predict_proba(Xt), dense.predict_proba(X[::-3]))
    np.testing.assert_array_equal(sparse.predict(Xt), dense.predict(X[::-3]))
    ev_s, ev_d = sparse.evaluate(Xt, y[::-3]), dense.evaluate(X[::-3], y[::-3])
    assert ev_s["accuracy"] == ev_d["accuracy"]
    assert_close(ev_s["loss"], ev_d["loss"], rtol=1e-6 if dtype == "float32" else 1e-12)


def test_predict_and_evaluate_densify_blocks_of_rows(monkeypatch, toarray_rows):
    monkeypatch.setattr(sparse_rows, "INFER_ROWS", 32)
    X, y = data(n=100)
    model = MLP([30, 8, 3], backend="cpu", seed=0)
    model.fit(X, y, epochs=1, verbose=0)
    toarray_rows.clear()
    np.testing.assert_array_equal(model.predict_proba(sp.csr_matrix(X)),
                                  model.predict_proba(X))
    assert toarray_rows == [32, 32, 32, 4]
    ev_s, ev_d = model.evaluate(sp.csr_matrix(X), y), model.evaluate(X, y)
    assert ev_s["accuracy"] == ev_d["accuracy"]
    assert_close(ev_s["loss"], ev_d["loss"], rtol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_validation_split_train_step_and_loss_and_grads_take_sparse(backend):
    X, y = data()
    dense, sparse = pair(backend, "float64")
    for model, Xm in ((dense, X), (sparse, sp.coo_matrix(X))):
        model.fit(Xm, y, epochs=1, batch_size=10, validation_split=0.2, verbose=0)
        model.train_step(X[:7] if Xm is X else Xm.tocsr()[:7], y[:7], None)
    for k, v in dense.get_weights().items():
        np.testing.assert_array_equal(sparse.get_weights()[k], v, err_msg=k)
    (ld, gd), (ls, gs) = dense.loss_and_grads(X[:9], y[:9]), \
        sparse.loss_and_grads(sp.csr_matrix(X[:9]), y[:9])
    assert ld == ls
    for k, v in gd.items():
        np.testing.assert_array_equal(gs[k], v, err_msg=k)


def test_duplicates_integers_and_the_callers_matrix():
    X, y = data()
    rows, cols = np.nonzero(X != 0)
    vals = X[rows, cols]
    half = vals / 2        # each value stored twice, as halves: summed like toarray
    coo = sp.coo_matrix((np.r_[half, vals - half], (np.r_[rows, rows], np.r_[cols, cols])),
                        shape=X.shape)
    a, b = pair("cpu", "float64")
    a.fit(coo.toarray(), y, epochs=1, verbose=0)
    before = coo.copy()
    b.fit(coo, y, epochs=1, verbose=0)
    for k, v in a.get_weights().items():
        np.testing.assert_array_equal(b.get_weights()[k], v, err_msg=k)
    assert (coo != before).nnz == 0                  # the caller's matrix untouched
    Xi = sp.csr_matrix((np.abs(X) > 1).astype(np.int64))
    c, d = pair("numpy", "float64")
    c.fit(Xi, y, epochs=1, verbose=0)
    d.fit(Xi.toarray(), y, epochs=1, verbose=0)
    np.testing.assert_array_equal(c.get_weights()["W1"], d.get_weights()["W1"])


def test_bad_sparse_input_is_named():
    X, y = data()
    m = MLP([30, 3], backend="numpy", seed=0)
    with pytest.raises(ValueError, match="must have 30 features"):
        m.fit(sp.csr_matrix(X[:, :29]), y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"X contains NaN or inf \(in its stored values\)"):
        m.fit(sp.csr_matrix(np.where(X > 1, np.inf, X)), y, epochs=1, verbose=0)
    with pytest.raises(TypeError, match="X must hold real numbers"):
        m.fit(sp.csr_matrix(X.astype(complex)), y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="augment needs a dense X"):
        m.fit(sp.csr_matrix(X), y, epochs=1, verbose=0,
              augment=fastdnn.Augment((5, 6), flip=True))
    assert m.step_ == 0


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sklearn_estimators_keep_x_sparse(solver, toarray_rows):
    from fastdnn.sklearn import MLPClassifier, MLPRegressor
    X, y = data(n=90)
    kw = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=3, random_state=0,
              batch_size=20, backend="cpu")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = MLPClassifier(**kw).fit(X, y)
        toarray_rows.clear()
        b = MLPClassifier(**kw).fit(sp.csr_matrix(X), y)
        if solver == "adam":
            assert not toarray_rows                  # the cpu engine scatters CSR rows
        r1 = MLPRegressor(**kw, early_stopping=solver == "adam").fit(X, y * 1.0)
        r2 = MLPRegressor(**kw, early_stopping=solver == "adam").fit(sp.csc_matrix(X),
                                                                     y * 1.0)
    np.testing.assert_array_equal(b.predict_proba(sp.csr_matrix(X)), a.predict_proba(X))
    np.testing.assert_array_equal(r2.predict(sp.csr_matrix(X)), r1.predict(X))
