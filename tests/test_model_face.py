"""What scikit-learn and Keras users expect of a model object: cloning, the constructor's
parameters under get_params, weights under get_weights, pickling on any backend, and an
error (not random answers) from a model that was never trained."""
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone

import fastdnn
from fastdnn import MLP, BatchNorm, Dense, Dropout, Activation, Sequential

RNG = np.random.default_rng(0)
X = RNG.standard_normal((60, 5))
Y = np.arange(60) % 3


def _trained(**kw):
    m = MLP([5, 16, 3], seed=1, **{"backend": "cpu", **kw})
    m.fit(X, Y, epochs=2, batch_size=16, verbose=0)
    return m


def test_get_params_gives_the_constructor_s_arguments_and_clone_works():
    m = MLP([5, 16, 3], batchnorm=True, keep_prob=0.9, l2=1e-3, seed=4)
    params = m.get_params(deep=False)
    assert params["layer_sizes"] == [5, 16, 3] and params["batchnorm"] is True
    assert params["keep_prob"] == 0.9 and params["seed"] == 4
    other = clone(m)
    assert type(other) is MLP and other is not m
    assert other.get_params(deep=True) == params
    assert other.get_config() == m.get_config()


def test_clone_of_a_sequential():
    m = Sequential([Dense(8), BatchNorm(), Activation("relu"), Dropout(keep_prob=0.8), Dense(3),
                    Activation("softmax")], input_dim=5, seed=2)
    other = clone(m)
    assert other.get_config() == m.get_config()


def test_set_params_remakes_the_model_with_new_arguments():
    m = _trained()
    assert m.set_params(l2=0.5, layer_sizes=[5, 7, 3]) is m
    assert m.l2 == 0.5 and m.blocks[0].n_out == 7 and m.step_ == 0
    with pytest.raises(ValueError, match="unknown parameter 'lr' for MLP"):
        m.set_params(lr=0.1)


def test_the_old_weight_dicts_still_work_with_a_deprecation_warning():
    m = _trained()
    with pytest.warns(DeprecationWarning, match="use get_weights"):
        weights = m.get_params()
    assert weights.keys() == m.get_weights().keys()
    weights["W1"] = np.zeros_like(weights["W1"])
    with pytest.warns(DeprecationWarning, match="use set_weights"):
        m.set_params(weights)
    assert not m.get_weights()["W1"].any()


@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function"])
def test_an_untrained_model_refuses_to_predict(method):
    m = MLP([5, 16, 3], seed=0)
    with pytest.raises(fastdnn.NotFittedError, match="not trained yet"):
        getattr(m, method)(X)
    with pytest.raises(fastdnn.NotFittedError):
        m.evaluate(X, Y)
    assert issubclass(fastdnn.NotFittedError, (ValueError,))
    assert issubclass(fastdnn.NotFittedError, (AttributeError,))


def test_weights_given_by_hand_count_as_trained():
    m = MLP([5, 16, 3], seed=0)
    m.set_weights(m.get_weights())
    assert m.predict(X).shape == (60,)


def test_one_train_step_counts_as_trained():
    m = MLP([5, 16, 3], seed=0, backend="numpy")
    m.train_step(X, Y, fastdnn.SGD(lr=0.1))
    assert m.predict(X).shape == (60,)


def test_nothing_warns_on_the_new_names():
    m = _trained()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.set_weights(m.get_weights())
        m.get_params(deep=False)


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_a_trained_model_pickles_and_predicts_the_same(backend):
    m = _trained(backend=backend, batchnorm=True)
    m.fit(X, Y, epochs=1, verbose=0, optimizer=fastdnn.Adam(lr=1e-2))
    other = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(other.predict_proba(X), m.predict_proba(X))
    assert other.step_ == m.step_ and other.get_config() == m.get_config()
    # training goes on from the same optimizer state and shuffling position: same bits
    m.fit(X, Y, epochs=1, verbose=0)
    other.fit(X, Y, epochs=1, verbose=0)
    for name, value in m.get_weights().items():
        np.testing.assert_array_equal(other.get_weights()[name], value)


def test_a_model_pickled_on_one_backend_loads_on_another():
    m = _trained(backend="numpy", dtype="float64")
    data = pickle.dumps(m)
    other = pickle.loads(data)
    moved = fastdnn.io.loads(fastdnn.io.dumps(other), backend="cpu")
    np.testing.assert_allclose(moved.predict_proba(X), m.predict_proba(X), rtol=1e-12)


def test_a_model_pickled_on_cuda_unpickles_here_with_a_warning(monkeypatch):
    from fastdnn import backend as backends
    from fastdnn import model as model_module
    m = _trained(backend="numpy")
    monkeypatch.setattr(backends, "cuda_available", lambda: False)
    reduced = m.__reduce__()
    with pytest.warns(RuntimeWarning, match="pickled on backend 'cuda'"):
        other = reduced[0](reduced[1][0], "cuda")
    assert other.backend == "auto"
    np.testing.assert_allclose(other.predict_proba(X), m.predict_proba(X), rtol=1e-5)
    assert model_module._backend_here("cpu") == "cpu"


def test_an_unbuilt_model_pickles():
    m = Sequential([Dense(4), Activation("relu"), Dense(2), Activation("softmax")], seed=3)
    other = pickle.loads(pickle.dumps(m))
    assert other.input_dim is None and other.get_config() == m.get_config()


def test_joblib_and_deepcopy_work():
    import copy
    joblib = pytest.importorskip("joblib")
    m = _trained()
    for other in (copy.deepcopy(m), joblib.load(_dump(joblib, m))):
        np.testing.assert_array_equal(other.predict(X), m.predict(X))


def _dump(joblib, m):
    import io
    buffer = io.BytesIO()
    joblib.dump(m, buffer)
    buffer.seek(0)
    return buffer
