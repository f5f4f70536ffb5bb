"""What a Keras or PyTorch user's habits meet in fastdnn.MLP / Sequential: get_weights with
BatchNorm's running statistics, model.history and count_params, predict's and evaluate's
batch_size and verbose, a single callback, one fit at a time, and errors that say what
to do (divergence counted per fit, string labels, a missing folder, keep_prob)."""
import copy
import os
import pickle
import threading

import numpy as np
import pytest

import fastdnn
from fastdnn import MLP
from fastdnn.callbacks import EarlyStopping

RNG = np.random.default_rng(0)
X = RNG.standard_normal((60, 5))
Y = np.arange(60) % 3


def _trained(**kw):
    m = MLP([5, 8, 6, 3], seed=1, **{"backend": "cpu", **kw})
    m.fit(X, Y, epochs=3, batch_size=16, verbose=0)
    return m


# ---------------------------------------------------------------------- get_weights
@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_get_weights_carries_batchnorm_statistics_to_another_model(backend):
    m = _trained(batchnorm=True, backend=backend)
    other = MLP([5, 8, 6, 3], batchnorm=True, seed=7, backend=backend)
    other.set_weights(m.get_weights())
    np.testing.assert_array_equal(other.predict_proba(X), m.predict_proba(X))
    for name, value in m.get_batchnorm_stats().items():
        np.testing.assert_array_equal(other.get_batchnorm_stats()[name], value)


def test_get_weights_names_block_by_block_in_keras_order():
    m = _trained(batchnorm=True)
    assert list(m.get_weights()) == [
        "W1", "gamma1", "beta1", "running_mean1", "running_var1",
        "W2", "gamma2", "beta2", "running_mean2", "running_var2", "W3", "b3"]
    assert list(m.get_weights(statistics=False)) == [
        "W1", "gamma1", "beta1", "W2", "gamma2", "beta2", "W3", "b3"]
    assert list(_trained().get_weights()) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    with pytest.raises(TypeError, match="statistics must be True or False"):
        m.get_weights(statistics="no")


@pytest.mark.parametrize("name, value, error, match", [
    ("running_var1", -np.ones(8), ValueError,
     r"weights\['running_var1'\] is a variance and must be >= 0"),
    ("running_mean2", np.zeros(5), ValueError,
     r"weights\['running_mean2'\] must have shape \(6,\), got \(5,\)"),
    ("running_mean1", np.full(8, np.nan), ValueError, r"weights\['running_mean1'\]"),
    ("running_mean3", np.zeros(3), KeyError, r"running_mean3.*running_var2"),
])
def test_set_weights_checks_statistics_before_setting_anything(name, value, error, match):
    m = _trained(batchnorm=True)
    before = m.get_weights()
    with pytest.raises(error, match=match):
        m.set_weights({"W1": np.zeros((8, 5)), "running_mean1": np.ones(8), name: value})
    for key, array in m.get_weights().items():
        np.testing.assert_array_equal(array, before[key], err_msg=key)


def test_set_weights_takes_some_statistics_and_the_old_methods_still_work():
    m = _trained(batchnorm=True)
    m.set_weights({"running_var2": np.full(6, 4.0)})
    np.testing.assert_array_equal(m.get_batchnorm_stats()["running_var2"], np.full(6, 4.0))
    m.set_batchnorm_stats({"running_mean1": np.ones(8)})
    np.testing.assert_array_equal(m.get_weights()["running_mean1"], np.ones(8))
    with pytest.raises(ValueError, match=r"stats\['running_var1'\] is a variance"):
        m.set_batchnorm_stats({"running_var1": -np.ones(8)})
    with pytest.raises(KeyError, match="unknown BatchNorm statistic 'W1'"):
        m.set_batchnorm_stats({"W1": np.ones((8, 5))})


def test_count_params_is_keras_s_name_for_the_trainable_count():
    m = MLP([5, 8, 6, 3], batchnorm=True, seed=0)
    sizes = sum(v.size for v in m.get_weights(statistics=False).values())
    assert m.count_params() == m.n_params == sizes == 5 * 8 + 2 * 8 + 8 * 6 + 2 * 6 + 6 * 3 + 3
    with pytest.raises(RuntimeError, match="not built"):
        fastdnn.Sequential([fastdnn.Dense(3), fastdnn.Activation("softmax")]).count_params()


# ---------------------------------------------------------------------- history, divergence
class _RaiseTheLearningRate(fastdnn.Callback):
    """Makes the epoch after ``epoch`` (0-based) diverge."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.optimizer.lr = 1e30


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_divergence_counts_the_epochs_of_this_fit_and_history_keeps_those_before(backend):
    m = MLP([5, 8, 3], backend=backend, seed=0)
    first = m.fit(X, Y, optimizer=fastdnn.SGD(0.01), epochs=2, batch_size=8, verbose=0)
    assert m.history is first and len(first["loss"]) == 2
    with np.errstate(all="ignore"), pytest.raises(
            FloatingPointError, match=r"at epoch 3 of this fit \(the model's epoch 5\), "
                                      r"step \d+ of the model"):
        m.fit(X * 1e3, Y, epochs=5, batch_size=8, verbose=0,
              callbacks=[_RaiseTheLearningRate(1)])
    assert m.history is not first
    assert len(m.history["loss"]) == 2 and m.history.epoch == [0, 1]
    assert np.isfinite(m.history["loss"]).all() and m.history.params["epochs"] == 5


def test_model_history_is_what_fit_returns_and_fills_as_it_goes():
    seen = []

    class Look(fastdnn.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(len(self.model.history.get("loss", [])))

    m = MLP([5, 8, 3], seed=0)
    assert m.history is None
    h = m.fit(X, Y, epochs=3, verbose=0, callbacks=[Look()])
    assert m.history is h and seen == [0, 1, 2] and len(h["loss"]) == 3


# ---------------------------------------------------------------------- one fit at a time
def _fit_held_in_a_thread(m):
    """Start m.fit in a thread that waits in its first epoch; returns (release, join)."""
    started, release, errors = threading.Event(), threading.Event(), []

    class Hold(fastdnn.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            started.set()
            release.wait(30)

    def run():
        try:
            m.fit(X, Y, epochs=1, verbose=0, callbacks=[Hold()])
        except Exception as exc:   # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(30)

    def join():
        release.set()
        thread.join(30)
        assert not errors, errors
    return join


def test_a_second_fit_from_another_thread_is_refused_and_predict_still_works():
    m = _trained()
    want = m.predict_proba(X)
    join = _fit_held_in_a_thread(m)
    try:
        step = m.step_
        with pytest.raises(RuntimeError, match="fit cannot start: fit is already running "
                                               "on this model in another thread"):
            m.fit(X, Y, epochs=1, verbose=0)
        with pytest.raises(RuntimeError, match="train_step cannot start: fit is already "
                                               "running on this model in another thread"):
            m.train_step(X, Y, None)
        assert m.step_ == step
        np.testing.assert_array_equal(m.predict_proba(X), want)   # predict takes no lock
        # a copy made meanwhile has a lock of its own, free
        for other in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
            assert other._training_lock is not m._training_lock
            other.fit(X, Y, epochs=1, verbose=0)
    finally:
        join()
    m.fit(X, Y, epochs=1, verbose=0)   # the lock was released
    with pytest.raises(ValueError, match="epochs"):
        m.fit(X, Y, epochs=-1)
    m.train_step(X, Y, None)   # released after an error too


def test_a_callback_cannot_train_the_model_it_is_in():
    class Meddle(fastdnn.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.train_step(X, Y, None)

    m = MLP([5, 8, 3], seed=0)
    with pytest.raises(RuntimeError, match="train_step cannot start: fit is already "
                                           "running on this model in this thread"):
        m.fit(X, Y, epochs=1, verbose=0, callbacks=[Meddle()])
    m.fit(X, Y, epochs=1, verbose=0)


# ---------------------------------------------------------------------- arguments
@pytest.mark.parametrize("keep_prob", [1.5, 0.0, -0.1])
def test_keep_prob_is_checked_without_a_hidden_layer(keep_prob):
    with pytest.raises(ValueError, match="keep_prob must be in"):
        MLP([64, 10], keep_prob=keep_prob)
    assert MLP([64, 10], keep_prob=1.0).count_params() == 650


@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function"])
def test_predict_takes_keras_s_batch_size_and_verbose(method):
    m = _trained()
    want = getattr(m, method)(X)
    for kwargs in ({"verbose": 0}, {"batch_size": 256}, {"batch_size": 1, "verbose": 2},
                   {"batch_size": None, "verbose": "auto"}, {"verbose": False}):
        np.testing.assert_array_equal(getattr(m, method)(X, **kwargs), want)
    with pytest.raises(ValueError, match=r"batch_size must be None or an integer >= 1, "
                                         r"got 0"):
        getattr(m, method)(X, batch_size=0)
    with pytest.raises(TypeError, match=r"batch_size must be None or an integer >= 1, "
                                        r"got 2.5"):
        getattr(m, method)(X, batch_size=2.5)
    with pytest.raises(ValueError, match="verbose must be"):
        getattr(m, method)(X, verbose="loud")


def test_evaluate_takes_keras_s_batch_size_and_verbose():
    m = _trained()
    assert m.evaluate(X, Y, batch_size=32, verbose=0) == m.evaluate(X, Y)
    with pytest.raises(ValueError, match="verbose must be"):
        m.evaluate(X, Y, verbose=3)


def test_one_callback_without_a_list_is_taken():
    m = MLP([5, 8, 3], seed=0)
    h = m.fit(X, Y, epochs=20, verbose=0, optimizer=fastdnn.SGD(0.0),
              callbacks=EarlyStopping(monitor="loss", patience=1))
    assert len(h["loss"]) < 20 and h.best_epoch is not None
    for bad in (5, "EarlyStopping", {"cb": EarlyStopping()}):
        with pytest.raises(TypeError, match="callbacks must be a list of fastdnn.Callback "
                                            "objects"):
            m.fit(X, Y, epochs=1, verbose=0, callbacks=bad)


def test_string_labels_get_a_hint():
    labels = np.array(["cat", "dog", "cow"])[Y]
    m = MLP([5, 8, 3], seed=0)
    with pytest.raises(TypeError, match=r"got dtype <U3; encode the labels as class "
                                        r"indices.*LabelEncoder.*MLPClassifier"):
        m.fit(X, labels, epochs=1, verbose=0)


# ---------------------------------------------------------------------- files
def test_saving_into_a_missing_folder_names_the_path(tmp_path):
    m = _trained()
    path = os.path.join(tmp_path, "missing", "m.npz")
    with pytest.raises(FileNotFoundError) as caught:
        m.save(path)
    message = str(caught.value)
    assert caught.value.filename == path
    assert "does not exist" in message and path in message and "fastdnn-tmp" not in message
    assert "os.makedirs" in message
    file = tmp_path / "a file"
    file.write_text("")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        m.save(os.path.join(file, "m.npz"))


def test_set_weights_says_it_wants_a_dict():
    model = fastdnn.MLP([4, 3, 2], seed=0)
    with pytest.raises(TypeError, match="weights must be a dict of name -> array"):
        model.set_weights(list(model.get_weights().values()))


def test_a_diverging_loss_keeps_the_epoch_line_short():
    from fastdnn.callbacks import epoch_line
    line, _ = epoch_line(0, 3, {"loss": 4.585e34, "val_loss": 2.0, "lr": 0.01,
                                "epoch_time": 0.0012}, 80)
    assert "loss 4.5850e+34" in line and "1.2 ms" in line


def test_a_whole_batchnorm_model_set_without_its_statistics_warns():
    """A dict from get_weights() before it held the running statistics (or from
    get_weights(statistics=False)) sets the weights but leaves the statistics: say so."""
    X = np.random.default_rng(0).standard_normal((40, 4))
    y = np.arange(40) % 2
    trained = fastdnn.MLP([4, 6, 2], batchnorm=True, seed=0)
    trained.fit(X, y, epochs=2, verbose=0)
    fresh = fastdnn.MLP([4, 6, 2], batchnorm=True, seed=1)
    with pytest.warns(UserWarning, match="none of its running statistics"):
        fresh.set_weights(trained.get_weights(statistics=False))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh.set_weights(trained.get_weights())             # the whole state: silent
        fresh.set_weights({"W1": trained.get_weights()["W1"]})   # a part: silent
    np.testing.assert_array_equal(fresh.predict_proba(X), trained.predict_proba(X))
