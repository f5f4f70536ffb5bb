"""The compiled engine (backend="cpu") against the NumPy reference engine, and its
properties: thread counts, concurrency, no global state, fork, divergence."""
import multiprocessing
import os
import threading

import numpy as np
import pytest

import fastdnn
from fastdnn import MLP, Activation, BatchNorm, Dense, Dropout, Sequential, config
from fastdnn.engine.threads import threads
from helpers import assert_close

pytest.importorskip("fastdnn.cpu")


def data(n, n_x, k, output, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_x))
    if output == "softmax":
        y = rng.integers(0, k, n)
    elif output == "sigmoid":
        y = (rng.random((n, k)) > 0.5).astype(float)
    elif output == "exp":
        y = rng.poisson(1.5, (n, k)).astype(float)
    else:
        y = rng.standard_normal((n, k))
    return X, y


def pair(dtype, **kwargs):
    """The same model on the reference engine and the compiled one."""
    return [MLP(dtype=dtype, backend=backend, seed=7, **kwargs)
            for backend in ("numpy", "cpu")]


CONFIGS = [
    # (layer_sizes, model keywords, optimizer, batch size, n)
    ([5, 16, 8, 3], dict(batchnorm=True, keep_prob=0.8, l2=0.01), "adam", 13, 40),
    ([5, 16, 8, 3], dict(activation="tanh", output="sigmoid", keep_prob=0.7), "rmsprop",
     8, 30),
    ([5, 9, 2], dict(activation="sigmoid", output="identity", l2=0.1), "nesterov", 7, 29),
    ([5, 7, 2], dict(output="exp", batchnorm=True, keep_prob=0.9, l2=0.05), "adam", 9, 31),
    ([5, 3], dict(batchnorm=True), "adamw", 40, 40),
    ([5, 30, 20, 10, 4], dict(activation="leaky_relu", batchnorm=True, keep_prob=[0.9, 1, 0.8]),
     "momentum", 1, 9),
    ([6, 70, 33, 4], dict(batchnorm=True, keep_prob=0.8, l2=0.001), "sgd", 32, 96),
]


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("sizes, kwargs, opt, batch, n", CONFIGS)
def test_compiled_fit_matches_the_reference(sizes, kwargs, opt, batch, n, dtype, rtol):
    output = kwargs.get("output", "softmax")
    X, y = data(n, sizes[0], sizes[-1], output)
    ref, fast = pair("float64", layer_sizes=sizes, **kwargs)
    fast = MLP(sizes, dtype=dtype, backend="cpu", seed=7, **kwargs)
    hr = ref.fit(X, y, optimizer=fastdnn.optim.get_optimizer(opt, lr=0.01), epochs=2,
                 batch_size=batch, verbose=0, validation_data=(X[:5], y[:5]))
    hf = fast.fit(X, y, optimizer=fastdnn.optim.get_optimizer(opt, lr=0.01), epochs=2,
                  batch_size=batch, verbose=0, validation_data=(X[:5], y[:5]))
    for k, v in ref.get_weights().items():
        assert_close(fast.get_weights()[k], v, dtype=dtype, rtol=rtol, atol=rtol / 10, name=k)
    for k, v in ref.get_batchnorm_stats().items():
        assert_close(fast.get_batchnorm_stats()[k], v, dtype=dtype, rtol=rtol,
                     atol=rtol / 10, name=k)
    for k in hr:
        if k != "epoch_time":
            assert_close(hf[k], hr[k], rtol=rtol, atol=rtol, name=k)
    assert fast.step_ == ref.step_ and fast.optimizer.t == ref.optimizer.t
    Xt = X[::-2]    # not contiguous
    regression = output in ("identity", "exp")
    assert_close(fast.predict(Xt) if regression else fast.predict_proba(Xt),
                 ref.predict(Xt) if regression else ref.predict_proba(Xt),
                 rtol=rtol, atol=rtol, name="predictions")


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity", "exp"])
def test_weighted_fit_matches_the_reference(output, dtype, rtol):
    X, y = data(37, 5, 3, output, seed=4)
    w = np.random.default_rng(5).random(37) * 2
    kwargs = dict(layer_sizes=[5, 8, 3], output=output, batchnorm=True, keep_prob=0.9,
                  l2=0.05, seed=7)
    ref = MLP(dtype="float64", backend="numpy", **kwargs)
    fast = MLP(dtype=dtype, backend="cpu", **kwargs)
    hr, hf = (m.fit(X, y, optimizer="adam", epochs=2, batch_size=10, verbose=0,
                    sample_weight=w) for m in (ref, fast))
    assert_close(hf["loss"], hr["loss"], rtol=rtol, atol=rtol, name="loss")
    for k, v in ref.get_weights().items():
        assert_close(fast.get_weights()[k], v, dtype=dtype, rtol=rtol, atol=rtol / 10, name=k)
    (lr_, gr), (lf, gf) = (m.loss_and_grads(X[:9], y[:9], sample_weight=w[:9])
                           for m in (ref, fast))
    assert abs(lf - lr_) <= rtol * abs(lr_)
    for k in gr:
        assert_close(gf[k], gr[k], dtype=dtype, rtol=rtol, atol=rtol, name=k)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_integer_sample_weights_are_repeated_rows(backend):
    X, y = data(23, 4, 3, "softmax", seed=6)
    w = np.random.default_rng(2).integers(0, 4, 23)
    rows = np.repeat(np.arange(23), w)
    a, b = (MLP([4, 6, 3], l2=0.1, dtype="float64", backend=backend, seed=1)
            for _ in range(2))
    ha = a.fit(X, y, epochs=3, batch_size=23, shuffle=False, verbose=0, sample_weight=w)
    hb = b.fit(X[rows], y[rows], epochs=3, batch_size=len(rows), shuffle=False, verbose=0)
    assert_close(ha["loss"], hb["loss"], rtol=1e-12, name="loss")
    for k, v in b.get_weights().items():
        assert_close(a.get_weights()[k], v, rtol=1e-12, atol=1e-14, name=k)
    with pytest.raises(ValueError, match="sample_weight"):
        a.fit(X, y, epochs=1, verbose=0, sample_weight=-np.ones(23))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_loss_and_grads_and_train_step_match_the_reference(dtype):
    X, y = data(11, 5, 3, "softmax")
    ref, fast = pair("float64", layer_sizes=[5, 6, 4, 3], batchnorm=True, keep_prob=0.8,
                     l2=0.05)
    fast = MLP([5, 6, 4, 3], batchnorm=True, keep_prob=0.8, l2=0.05, dtype=dtype,
               backend="cpu", seed=7)
    rtol = 1e-10 if dtype == "float64" else 1e-5
    (lr_, gr), (lf, gf) = ref.loss_and_grads(X, y), fast.loss_and_grads(X, y)
    assert abs(lf - lr_) <= rtol * abs(lr_)
    for k in gr:
        assert_close(gf[k], gr[k], dtype=dtype, rtol=rtol, atol=rtol, name=k)
    assert fast.get_batchnorm_stats()["running_mean1"].sum() == 0   # nothing updated
    for _ in range(3):
        a = ref.train_step(X, y, "momentum" if _ == 0 else ref.optimizer)
        b = fast.train_step(X, y, "momentum" if _ == 0 else fast.optimizer)
        assert abs(a - b) <= rtol * abs(a) + rtol
    for k, v in ref.get_weights().items():
        assert_close(fast.get_weights()[k], v, dtype=dtype, rtol=rtol, atol=rtol, name=k)


def test_gradients_of_the_compiled_engine_are_numerically_right():
    X, y = data(6, 4, 3, "softmax")
    m = MLP([4, 5, 3], batchnorm=True, l2=0.1, dtype="float64", backend="cpu", seed=1)
    _, grads = m.loss_and_grads(X, y)
    eps = 1e-6
    W = m.get_weights()["W1"]
    for i, j in [(0, 0), (2, 3), (4, 1)]:
        for sign, store in ((1, "plus"), (-1, "minus")):
            Wp = W.copy()
            Wp[i, j] += sign * eps
            m.set_weights({"W1": Wp})
            if sign == 1:
                plus = m.loss_and_grads(X, y)[0]
            else:
                minus = m.loss_and_grads(X, y)[0]
        m.set_weights({"W1": W})
        assert abs((plus - minus) / (2 * eps) - grads["dW1"][i, j]) < 1e-6


def _fit_bits(n_threads, **kwargs):
    X, y = data(200, 12, 4, "softmax", seed=3)
    m = MLP([12, 70, 40, 4], batchnorm=True, keep_prob=0.8, l2=0.01, backend="cpu", seed=2,
            **kwargs)
    with threads(n_threads):
        m.fit(X, y, epochs=2, batch_size=64, verbose=0)
        return m.parameters.flat.copy(), m.predict_proba(X)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_results_do_not_depend_on_the_thread_count(dtype, monkeypatch):
    from fastdnn.engine import cpu, program
    # small blocks, so that every phase has several items for the threads to share
    monkeypatch.setattr(program, "MIN_WORK", 1)
    monkeypatch.setattr(program, "MIN_COLUMNS", 4)
    monkeypatch.setattr(program, "ROW_BLOCK", 16)
    monkeypatch.setattr(cpu, "SMALL_STEP", 0)
    monkeypatch.setattr(cpu, "INFER_ROWS", 32)
    one = _fit_bits(1, dtype=dtype)
    for n in (2, 3):
        other = _fit_bits(n, dtype=dtype)
        assert np.array_equal(one[0], other[0]), n
        assert np.array_equal(one[1], other[1]), n


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_predictions_do_not_depend_on_the_other_rows(batchnorm, dtype, backend):
    """BLAS gives the last row of an odd count other bits in float64, and in float32
    other bits by a row's lane in its register tile (kernels/row_invariance.py);
    inference pads odd counts and predicts float32 models through float64, so a row's
    outputs are the same in any batch."""
    X, y = data(300, 12, 3, "softmax", seed=8)
    m = MLP([12, 100, 50, 3], batchnorm=batchnorm, dtype=dtype, backend=backend, seed=3)
    m.fit(X, y, epochs=1, batch_size=64, verbose=0)
    full = m.decision_function(X)
    for rows in [slice(0, 1), slice(37, 38), slice(0, 37), slice(1, 300), slice(127, 130),
                 slice(5, 134), np.arange(0, 300, 3), np.arange(299, -1, -1)]:
        np.testing.assert_array_equal(m.decision_function(X[rows]), full[rows])


def test_one_model_predicts_right_from_several_threads_at_once():
    X, y = data(600, 8, 3, "softmax")
    m = MLP([8, 32, 3], batchnorm=True, keep_prob=0.8, backend="cpu", seed=0)
    m.fit(X, y, epochs=2, verbose=0)
    _assert_right_from_threads(m.predict_proba, [X[i::7] for i in range(7)], calls=40)


def _assert_right_from_threads(predict, batches, calls, threads_=4):
    """Each of ``threads_`` threads calls predict ``calls`` times on the batches (of
    other sizes) in turn; every answer must equal the serial one."""
    want = [predict(b) for b in batches]
    wrong = []

    def work(t):
        for i in range(calls):
            r = (t + i) % len(batches)
            if not np.array_equal(predict(batches[r]), want[r]):
                wrong.append((t, i))

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads_)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not wrong, f"{len(wrong)} wrong answers of {threads_ * calls}"


def test_no_global_setting_changes_during_or_after_a_call():
    """A thread watching the process-wide settings while another trains and predicts
    sees them unchanged (config flags, Numba's thread count, NumPy's BLAS threads)."""
    import numba
    from threadpoolctl import threadpool_info
    X, y = data(400, 10, 3, "softmax")
    m = MLP([10, 64, 3], batchnorm=True, backend="cpu", seed=0)
    state = lambda: (config.CHECK_FINITE, numba.get_num_threads(),  # noqa: E731
                     [p["num_threads"] for p in threadpool_info()])
    before = state()
    seen, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            seen.append((config.CHECK_FINITE,
                         [p["num_threads"] for p in threadpool_info()]))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        m.fit(X, y, epochs=3, batch_size=32, verbose=0)
        m.predict(X)
        fastdnn.MLP([10, 3], backend="numpy", seed=0).fit(X, y, epochs=1, verbose=0)
    finally:
        stop.set()
        watcher.join()
    assert seen and all(s == (before[0], before[2]) for s in seen)
    assert state() == before


def test_a_diverging_fit_stops_before_the_step_that_diverged():
    X, y = data(64, 5, 3, "softmax")
    m = MLP([5, 8, 3], backend="cpu", seed=0)
    with pytest.raises(FloatingPointError, match=r"diverged.*epoch \d+, step \d+"):
        m.fit(X * 1e3, y, optimizer=fastdnn.SGD(lr=1e30), epochs=5, batch_size=8, verbose=0)
    # both engines stop at the same step, and go back to the same epoch's start
    ref = MLP([5, 8, 3], backend="numpy", seed=0)
    with pytest.raises(FloatingPointError):
        ref.fit(X * 1e3, y, optimizer=fastdnn.SGD(lr=1e30), epochs=5, batch_size=8,
                verbose=0)
    assert m.step_ == ref.step_


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_a_fit_never_returns_weights_that_are_not_finite(backend, batchnorm):
    """The last update of an epoch can make weights that are not finite although every
    loss before it was (#15): fit says so and the model is back to its last finite
    state, its optimizer state and counters too."""
    X, y = data(64, 5, 3, "softmax")
    m = MLP([5, 8, 3], batchnorm=batchnorm, backend=backend, seed=0)
    opt = fastdnn.Adam(lr=0.01)
    m.fit(X, y, optimizer=opt, epochs=2, batch_size=16, verbose=0)
    params, stats, state = m.get_weights(), m.get_batchnorm_stats(), opt.state_dict()
    step, t = m.step_, opt.t
    with pytest.raises(FloatingPointError, match=r"epoch 1 of this fit \(the model's "
                                                 r"epoch 3\).*not finite.*back to its "
                                                 "state before that epoch"):
        with np.errstate(all="ignore"):
            m.fit(X * 100, y, optimizer=fastdnn.SGD(lr=1e45), epochs=1, batch_size=64,
                  verbose=0)
    for k, v in params.items():
        np.testing.assert_array_equal(m.get_weights()[k], v, err_msg=k)
    for k, v in stats.items():
        np.testing.assert_array_equal(m.get_batchnorm_stats()[k], v, err_msg=k)
    assert m.step_ == step and np.isfinite(m.predict_proba(X)).all()
    # a dev loss that is not finite is caught too, and the optimizer's state restored
    opt.lr = 1e38
    with pytest.raises(FloatingPointError, match="validation data"):
        with np.errstate(all="ignore"):
            m.fit(X, y, optimizer=opt, epochs=1, batch_size=64, verbose=0,
                  validation_data=(X * 10, y))
    assert opt.t == t and m.step_ == step
    for name, arrays in state["state"].items():
        for a, b in zip(opt.state_dict()["state"][name], arrays):
            np.testing.assert_array_equal(a, b)
    for k, v in params.items():
        np.testing.assert_array_equal(m.get_weights()[k], v, err_msg=k)


_FORKED = {}   # the model and data the fork pool's children inherit


def _predict_in_child(_):
    return _FORKED["model"].predict(_FORKED["X"]).tolist()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_fork_after_training_runs_a_fork_pool():
    X, y = data(300, 6, 3, "softmax")
    m = MLP([6, 64, 3], batchnorm=True, backend="cpu", seed=0)
    m.fit(X, y, epochs=2, verbose=0)          # the engine's threads are running now
    want = m.predict(X).tolist()
    _FORKED.update(model=m, X=X)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        got = pool.map_async(_predict_in_child, [0, 1]).get(timeout=120)
    assert got == [want, want]


@pytest.mark.parametrize("layers", [
    [Dense(6), BatchNorm(0.8), Activation("tanh"), Dropout(keep_prob=0.9), Dense(3),
     Activation("softmax")],
    [Dense(6, use_bias=False), Activation("relu"), Dense(5), Dropout(keep_prob=0.7), Dense(2),
     Activation("sigmoid")],
])
def test_sequential_layers_on_the_compiled_engine(layers):
    import copy
    X, y = data(30, 4, 3, "softmax")
    if layers[-1].name == "sigmoid":
        y = (np.random.default_rng(0).random((30, 2)) > 0.5).astype(float)
    ref = Sequential(copy.deepcopy(layers), backend="numpy", dtype="float64", seed=1)
    fast = Sequential(copy.deepcopy(layers), backend="cpu", dtype="float64", seed=1)
    for m in (ref, fast):
        m.fit(X, y, epochs=2, batch_size=8, verbose=0)
    for k, v in ref.get_weights().items():
        assert_close(fast.get_weights()[k], v, rtol=1e-10, atol=1e-12, name=k)


def test_sklearn_estimator_predicts_right_from_several_threads_at_once():
    pytest.importorskip("sklearn")
    from fastdnn.sklearn import MLPClassifier
    X, y = data(500, 6, 3, "softmax")
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=5, random_state=0).fit(X, y)
    _assert_right_from_threads(clf.predict_proba, [X[i::5] for i in range(5)], calls=30)
