"""MLP and Sequential: parameters, gradients, training, prediction, errors."""
import numpy as np
import pytest

import fastdnn
from fastdnn import MLP, Activation, BatchNorm, Dense, Dropout, Sequential
from fastdnn import reference as R
from fastdnn.rng import dropout_key
from helpers import assert_close


@pytest.fixture(params=["numpy", "cpu"])
def backend(request):
    if request.param == "cpu":
        pytest.importorskip("fastdnn.cpu")
    return request.param


def blobs(n=60, n_x=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, n_x)) * 3
    y = np.arange(n) % k
    X = centers[y] + rng.standard_normal((n, n_x))
    return X, y


def test_params_keys_shapes_and_no_bias_with_batchnorm(backend):
    m = MLP([5, 4, 3, 2], batchnorm=True, backend=backend, seed=0)
    p = m.get_weights()
    assert set(p) == {"W1", "gamma1", "beta1", "running_mean1", "running_var1", "W2", "gamma2",
                      "beta2", "running_mean2", "running_var2", "W3", "b3"}
    assert p["W1"].shape == (4, 5) and p["W2"].shape == (3, 4) and p["W3"].shape == (2, 3)
    assert p["gamma1"].shape == (4,) and p["b3"].shape == (2,)
    assert p["W1"].dtype == np.float32
    m2 = MLP([5, 4, 2], backend=backend, seed=0)
    assert set(m2.get_weights()) == {"W1", "b1", "W2", "b2"}


def test_get_params_returns_copies_and_set_params_sets(backend):
    m = MLP([5, 4, 2], backend=backend, seed=0)
    p = m.get_weights()
    p["W1"][...] = 7
    assert not np.any(m.get_weights()["W1"] == 7)
    m.set_weights({"W1": np.ones((4, 5)), "b2": np.arange(2.0)})
    assert np.all(m.get_weights()["W1"] == 1)
    assert np.array_equal(m.get_weights()["b2"], [0, 1])
    with pytest.raises(KeyError, match="gamma1"):
        m.set_weights({"gamma1": np.ones(4)})
    with pytest.raises(ValueError, match="W1"):
        m.set_weights({"W1": np.ones((5, 4))})


def test_loss_and_grads_match_reference_by_hand():
    X, y = blobs(12)
    m = MLP([5, 4, 3], l2=0.2, dtype="float64", backend="numpy", seed=3)
    p = m.get_weights()
    A1, act1 = R.dense_forward(X, p["W1"], p["b1"], "relu")
    Z2, _ = R.dense_forward(A1, p["W2"], p["b2"])
    loss, dZ = R.softmax_cross_entropy(Z2, y)
    loss += R.l2_cost([p["W1"], p["W2"]], 0.2, 12)
    dA1, dW2, db2 = R.dense_backward(dZ, A1, p["W2"], Z2, lambd=0.2)
    _, dW1, db1 = R.dense_backward(dA1, X, p["W1"], act1, "relu", lambd=0.2)
    got_loss, g = m.loss_and_grads(X, y)
    assert got_loss == pytest.approx(loss, rel=1e-12)
    for name, want in [("dW1", dW1), ("db1", db1), ("dW2", dW2), ("db2", db2)]:
        assert_close(g[name], want, name=name)


def test_loss_and_grads_updates_nothing(backend):
    X, y = blobs(20)
    m = MLP([5, 6, 3], batchnorm=True, keep_prob=0.7, backend=backend, seed=1)
    before, stats, step = m.get_weights(), m.get_batchnorm_stats(), m.step_
    l1, g1 = m.loss_and_grads(X, y)
    l2, g2 = m.loss_and_grads(X, y)
    assert l1 == l2 and all(np.array_equal(g1[k], g2[k]) for k in g1)
    assert all(np.array_equal(before[k], v) for k, v in m.get_weights().items())
    assert all(np.array_equal(stats[k], v) for k, v in m.get_batchnorm_stats().items())
    assert m.step_ == step


def test_train_step_is_one_adam_step_on_the_reference():
    X, y = blobs(16)
    m = MLP([5, 4, 3], keep_prob=0.5, dtype="float64", backend="numpy", seed=2)
    p = m.get_weights()
    # by hand: the dropout key of layer 1 at step 0
    key = dropout_key(m.seed, 0, 1)
    A1, act1 = R.dense_forward(X, p["W1"], p["b1"], "relu", 0.5, key)
    Z2, _ = R.dense_forward(A1, p["W2"], p["b2"])
    loss, dZ = R.softmax_cross_entropy(Z2, y)
    dA1, dW2, db2 = R.dense_backward(dZ, A1, p["W2"], Z2)
    _, dW1, db1 = R.dense_backward(dA1, X, p["W1"], act1, "relu", 0.5, key)
    for name, g in [("W1", dW1), ("b1", db1), ("W2", dW2), ("b2", db2)]:
        R.adam_update(p[name], g, np.zeros_like(g), np.zeros_like(g), 1, 0.01)
    got = m.train_step(X, y, fastdnn.Adam(lr=0.01))
    assert got == pytest.approx(loss, rel=1e-12)
    for name, want in p.items():
        assert_close(m.get_weights()[name], want, name=name)
    assert m.step_ == 1


def test_fit_learns_and_history(backend):
    X, y = blobs(90)
    m = MLP([5, 16, 3], batchnorm=True, keep_prob=0.9, backend=backend, seed=0)
    h = m.fit(X, y, optimizer=fastdnn.Adam(0.01), epochs=15, batch_size=16,
              validation_data=(X, y), verbose=0)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_time"):
        assert len(h[key]) == 15, key
    assert h["loss"][-1] < h["loss"][0]
    assert m.evaluate(X, y)["accuracy"] > 0.95
    assert m.score(X, y) == m.evaluate(X, y)["accuracy"]


def test_one_hot_labels_equal_class_indices():
    X, y = blobs(30)
    a = MLP([5, 4, 3], backend="numpy", seed=0)
    b = MLP([5, 4, 3], backend="numpy", seed=0)
    a.fit(X, y, epochs=2, batch_size=8, verbose=0)
    b.fit(X, R.one_hot(y, 3), epochs=2, batch_size=8, verbose=0)
    for k, v in a.get_weights().items():
        assert np.array_equal(v, b.get_weights()[k])


def test_batch_sizes_partition_with_a_smaller_last_batch():
    X, y = blobs(10)
    m = MLP([5, 3, 3], backend="numpy", seed=0)
    m.fit(X, y, epochs=2, batch_size=4, verbose=0)
    assert m.step_ == 6            # 4 + 4 + 2 per epoch
    m.fit(X, y, epochs=1, batch_size=1, verbose=0)
    assert m.step_ == 16           # stochastic gradient descent: one example per step
    m.fit(X, y, epochs=3, batch_size=100, verbose=0)
    assert m.step_ == 19           # batch gradient descent: one step per epoch


def test_batch_gradient_descent_equals_full_batch_train_steps():
    X, y = blobs(20)
    a = MLP([5, 4, 3], backend="numpy", dtype="float64", seed=5)
    b = MLP([5, 4, 3], backend="numpy", dtype="float64", seed=5)
    a.fit(X, y, optimizer=fastdnn.SGD(0.1), epochs=3, batch_size=20, verbose=0)
    opt = fastdnn.SGD(0.1)
    for _ in range(3):
        b.train_step(X, y, opt)
    for k, v in a.get_weights().items():
        assert_close(v, b.get_weights()[k], name=k)


def test_same_seed_same_result_and_user_data_untouched(backend):
    X, y = blobs(40)
    X32 = X.astype(np.float32)
    X_copy, y_copy = X32.copy(), y.copy()
    runs = []
    for seed in (7, 7, 8):
        m = MLP([5, 6, 3], batchnorm=True, keep_prob=0.8, backend=backend, seed=seed)
        m.fit(X32, y, optimizer="adam", epochs=3, batch_size=16, verbose=0)
        runs.append(m.get_weights())
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not np.array_equal(runs[0]["W1"], runs[2]["W1"])
    assert np.array_equal(X32, X_copy) and np.array_equal(y, y_copy)


def test_backends_agree():
    pytest.importorskip("fastdnn.cpu")
    X, y = blobs(40)
    out = {}
    for backend in ("numpy", "cpu"):
        m = MLP([5, 7, 3], batchnorm=True, keep_prob=0.8, l2=0.1, dtype="float64",
                backend=backend, seed=3)
        m.fit(X, y, optimizer="adam", epochs=3, batch_size=16, verbose=0)
        out[backend] = m.get_weights()
    for k in out["numpy"]:
        assert_close(out["cpu"][k], out["numpy"][k], rtol=1e-8, atol=1e-10, name=k)


def test_inference_uses_running_statistics_and_no_dropout(backend):
    X, y = blobs(30)
    m = MLP([5, 4, 3], batchnorm=True, keep_prob=0.5, dtype="float64", backend=backend,
            seed=0)
    m.fit(X, y, epochs=2, batch_size=10, verbose=0)
    p, s = m.get_weights(), m.get_batchnorm_stats()
    Z1 = X @ p["W1"].T
    A1 = np.maximum((Z1 - s["running_mean1"]) / np.sqrt(s["running_var1"] + 1e-5)
                    * p["gamma1"] + p["beta1"], 0)
    Z2 = A1 @ p["W2"].T + p["b2"]
    assert_close(m.decision_function(X), Z2, name="logits")
    proba = m.predict_proba(X)
    assert_close(proba, R.softmax(Z2), name="proba")
    assert np.array_equal(m.predict(X), Z2.argmax(axis=1))
    assert np.array_equal(m.predict(X), m.predict(X))
    assert m.get_batchnorm_stats()["running_mean1"].tolist() == s["running_mean1"].tolist()


def test_sigmoid_and_identity_outputs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    m = MLP([3, 8, 1], output="sigmoid", backend="numpy", seed=0)
    m.fit(X, y, optimizer=fastdnn.Adam(0.05), epochs=30, batch_size=8, verbose=0)
    assert m.predict(X).shape == (40,)
    assert m.predict_proba(X).shape == (40, 1)
    assert m.evaluate(X, y)["accuracy"] > 0.9
    t = X @ np.array([1.0, -2.0, 0.5])
    r = MLP([3, 8, 1], output="identity", activation="tanh", backend="numpy", seed=0)
    h = r.fit(X, t, optimizer=fastdnn.Adam(0.02), epochs=40, batch_size=8, verbose=0)
    assert h["loss"][-1] < 0.2 * h["loss"][0]
    assert r.predict(X).shape == (40,)
    with pytest.raises(ValueError, match="predict_proba"):
        r.predict_proba(X)


def test_schedules_set_the_learning_rate():
    X, y = blobs(20)
    m = MLP([5, 3, 3], backend="numpy", seed=0)
    h = m.fit(X, y, optimizer=fastdnn.SGD(0.1), epochs=3, batch_size=10, verbose=0,
              schedule=fastdnn.schedules.InverseTime(decay_rate=1.0))
    assert h["lr"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    m2 = MLP([5, 3, 3], backend="numpy", seed=0)
    h2 = m2.fit(X, y, optimizer=fastdnn.SGD(0.1), epochs=2, batch_size=10, verbose=0,
                schedule=fastdnn.schedules.Exponential(0.5, per="iteration"))
    assert h2["lr"] == pytest.approx([0.1 * 0.5**1, 0.1 * 0.5**3])   # last step's lr


def test_early_stopping_restores_the_best_weights():
    X, y = blobs(40, seed=1)
    X_dev, y_dev = blobs(30, seed=2)

    class Record(fastdnn.Callback):
        def __init__(self):
            self.params = []

        def on_epoch_end(self, model, epoch, logs):
            self.params.append(model.get_weights())

    for patience, epochs in [(1, 40), (100, 8)]:   # stops early / runs out of epochs
        rec = Record()
        m = MLP([5, 32, 3], backend="numpy", seed=0)
        h = m.fit(X, y, optimizer=fastdnn.Adam(0.1), epochs=epochs, batch_size=8,
                  validation_data=(X_dev, y_dev), verbose=0, callbacks=[rec],
                  early_stopping=fastdnn.EarlyStopping(patience=patience))
        best = int(np.argmin(h["val_loss"]))
        assert h.best_epoch == best + 1   # counted from 1, as displayed
        if patience == 1:
            assert len(h["val_loss"]) < epochs and h.stopped_epoch is not None
        assert best != len(h["val_loss"]) - 1, "want a case where the best is not the last"
        for k, v in m.get_weights().items():
            assert np.array_equal(v, rec.params[best][k]), k
        assert m.evaluate(X_dev, y_dev)["loss"] == pytest.approx(h["val_loss"][best])


def test_min_delta_counts_small_gains_as_no_gain():
    X, y = blobs(40, seed=1)
    m = MLP([5, 8, 3], backend="numpy", seed=0)
    h = m.fit(X, y, optimizer=fastdnn.SGD(0.01), epochs=50, batch_size=40,
              validation_data=(X, y), verbose=0,
              early_stopping={"patience": 2, "min_delta": 10.0})
    assert len(h["loss"]) == 3 and h.best_epoch == 1   # Keras's count: 2 without a gain


def test_divergence_raises_clearly():
    X, y = blobs(20)
    m = MLP([5, 4, 3], backend="numpy", seed=0)
    with pytest.raises(FloatingPointError, match=r"diverged.*epoch 1, step"):
        with np.errstate(all="ignore"):
            m.fit(X * 1e30, y, optimizer=fastdnn.SGD(1e30), epochs=3, batch_size=5,
                  verbose=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(activation="relux"), "activation"),
    (dict(output="softmaxx"), "output"),
    (dict(keep_prob=1.5), "keep_prob"),
    (dict(keep_prob=[0.5, 0.5]), "keep_prob"),
    (dict(dtype="float16"), "dtype"),
    (dict(dtype="floaty"), "dtype"),
    (dict(init="magic"), "init"),
    (dict(backend="tpu"), "backend"),
    (dict(l2=-1.0), "l2"),
])
def test_bad_model_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP([5, 4, 3], **kwargs)


def test_bad_fit_arguments():
    X, y = blobs(12)
    m = MLP([5, 4, 3], backend="numpy", seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        m.fit(X, y, batch_size=0)
    with pytest.raises(ValueError, match="epochs"):
        m.fit(X, y, epochs=-1)
    with pytest.raises(ValueError, match="optimizer"):
        m.fit(X, y, optimizer="adamm")
    with pytest.raises(ValueError, match="y must have one row per example"):
        m.fit(X, y[:-1])
    with pytest.raises(ValueError, match=r"y must be class indices .* or one-hot"):
        m.fit(X, np.zeros((12, 4)))
    with pytest.raises(ValueError, match=r"y class indices must lie in \[0, 3\)"):
        m.fit(X, np.full(12, 3))
    with pytest.raises(ValueError, match="y must hold integer class indices"):
        m.fit(X, np.full(12, 0.5))
    with pytest.raises(ValueError, match="X must have 5 features"):
        m.fit(X[:, :4], y)
    with pytest.raises(ValueError, match="X must be 2-D"):
        m.fit(X[0], y)
    with pytest.raises(ValueError, match="NaN"):
        m.fit(np.where(X > 2, np.nan, X), y)
    with pytest.raises(ValueError, match=r"X contains NaN or inf \(first at index \(3, 1"):
        bad = X.copy()
        bad[3, 1] = np.inf
        m.train_step(bad, y, "adam")
    with pytest.raises(ValueError, match="NaN or inf"):
        m.predict(np.where(X > 2, np.nan, X))
    with pytest.raises(ValueError, match="validation_data"):
        m.fit(X, y, early_stopping=True)
    assert m.fit(X, y, epochs=0, verbose=0) == {} and m.step_ == 0


def test_sequential_matches_mlp_and_checks_composition():
    X, y = blobs(24)
    mlp = MLP([5, 6, 3], batchnorm=True, keep_prob=0.8, backend="numpy", seed=4)
    seq = Sequential([Dense(6), BatchNorm(), Activation("relu"), Dropout(keep_prob=0.8), Dense(3),
                      Activation("softmax")], backend="numpy", seed=4)
    mlp.fit(X, y, epochs=2, batch_size=8, verbose=0)
    seq.fit(X, y, epochs=2, batch_size=8, verbose=0)   # built on the first data
    for k, v in mlp.get_weights().items():
        assert np.array_equal(v, seq.get_weights()[k]), k
    with pytest.raises(ValueError, match="must come after a Dense"):
        Sequential([Activation("relu"), Dense(3)])
    with pytest.raises(ValueError, match="BatchNorm cannot follow Activation"):
        Sequential([Dense(3), Activation("relu"), BatchNorm(), Dense(2)])
    with pytest.raises(ValueError, match="softmax is only allowed"):
        Sequential([Dense(3), Activation("softmax"), Dense(2)])
    with pytest.raises(ValueError, match="last layer's activation"):
        Sequential([Dense(3), Activation("relu")])
    with pytest.raises(TypeError, match="layers"):
        Sequential([Dense(3), "relu"])
    with pytest.raises(RuntimeError, match="not built"):
        Sequential([Dense(3), Activation("softmax")], backend="numpy").get_weights()


def test_sequential_tanh_without_output_activation_is_regression():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 3))
    m = Sequential([Dense(4, init="xavier"), Activation("tanh"), Dense(2)], input_dim=3,
                   backend="numpy", seed=0)
    assert m.output == "identity"
    loss, g = m.loss_and_grads(X, rng.standard_normal((16, 2)))
    assert set(g) == {"dW1", "db1", "dW2", "db2"}
    lines = []
    assert m.summary(print_fn=lines.append) is None
    assert "Dense(3->4)" in "\n".join(lines)


def test_steady_state_cpu_training_allocates_nothing_per_step():
    """The compiled engine's runs allocate nothing per step: neither Numba's allocator
    (its statistics count every array made in compiled code) nor Python's (an epoch of
    4 steps and one of 128 steps on the same data allocate alike)."""
    pytest.importorskip("fastdnn.cpu")
    import tracemalloc

    from numba.core.runtime import _nrt_python, rtsys
    X, y = blobs(2048)
    m = MLP([5, 128, 64, 3], batchnorm=True, keep_prob=0.8, l2=0.01, backend="cpu", seed=0)
    opt = fastdnn.Adam()
    for batch in (512, 16):   # compile, scratch for both batch sizes
        m.fit(X, y, optimizer=opt, epochs=1, batch_size=batch, verbose=0)

    def epoch(batch):
        before = rtsys.get_allocation_stats().alloc
        tracemalloc.start()
        m.fit(X, y, optimizer=opt, epochs=1, batch_size=batch, verbose=0)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return rtsys.get_allocation_stats().alloc - before, peak

    _nrt_python.memsys_enable_stats()
    try:
        few, many = epoch(512), epoch(16)
    finally:
        _nrt_python.memsys_disable_stats()
    # Numba counts a few allocations per call (it wraps each array argument), never
    # per step: 128 steps make fewer than 128, and about as many as 4 steps do
    assert many[0] < 128 and many[0] <= few[0] + 40, \
        f"compiled allocations: {few[0]} for 4 steps, {many[0]} for 128"
    assert many[1] - few[1] < 16 * 1024, f"traced peaks {few[1]} and {many[1]} bytes"


def test_progress_lines_with_verbose_2(capsys):
    X, y = blobs(20)
    m = MLP([5, 3, 3], backend="numpy", seed=0)
    m.fit(X, y, epochs=2, batch_size=10, verbose=2, validation_data=(X, y))
    err = capsys.readouterr().out
    assert "epoch 1/2" in err and "epoch 2/2" in err and "val_loss" in err
    m.fit(X, y, epochs=2, batch_size=10, verbose=1)      # not a terminal: the lines only
    err = capsys.readouterr().out
    assert err.count("\n") == 2 and "\r" not in err and "epoch 2/2" in err
    m.fit(X, y, epochs=2, batch_size=10, verbose=0)
    assert capsys.readouterr().out == ""


def test_progress_bar_on_a_terminal():
    import io

    from fastdnn.callbacks import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    pytest.importorskip("tqdm")
    stream = Terminal()
    p = Progress(4, 1, stream, steps=3)
    for e in range(4):
        p.epoch_begin(e)
        p.advance(3)
        p.update(e, {"loss": 0.5, "epoch_time": 0.01})
    p.close()
    text = stream.getvalue()
    assert "epoch 4/4" in text and "\r" in text and "batch" in text
    quiet = Terminal()
    Progress(4, 0, quiet).update(0, {"loss": 1.0})
    assert quiet.getvalue() == ""


def test_finite_check_of_inputs_is_exact():
    from fastdnn.model import _all_finite
    big = np.full((4, 3), 3e38, np.float32)   # finite, but its sum overflows
    assert _all_finite(big)
    for bad in (np.nan, np.inf, -np.inf):
        x = big.copy()
        x[2, 1] = bad
        assert not _all_finite(x)
    assert _all_finite(np.arange(6).reshape(2, 3))
