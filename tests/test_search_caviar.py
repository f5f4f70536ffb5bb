"""Caviar: K models trained together equal K single MLP trainings.

The NumPy engine (backend="numpy") is checked bit for bit against single-model NumPy
training; the compiled engine (backend="cpu") against the NumPy engine to tolerance."""
import numpy as np
import pytest

import fastdnn
from fastdnn.schedules import InverseTime
from fastdnn.search.caviar import train_caviar


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return X[:150], y[:150], X[150:230], y[150:230]


def single(sizes, h, X, y, dev, epochs, batch_size, dtype, activation="relu"):
    model = fastdnn.MLP(sizes, activation=activation, keep_prob=h.get("keep_prob", 1.0),
                        l2=h.get("l2", 0.0), dtype=dtype, backend="numpy", seed=h["seed"])
    opt = fastdnn.Adam(h["learning_rate"], h.get("beta1", 0.9), h.get("beta2", 0.999))
    sched = InverseTime(h["decay"]) if h.get("decay") else None
    hist = model.fit(X, y, optimizer=opt, epochs=epochs, batch_size=batch_size,
                     schedule=sched, validation_data=dev, verbose=0)
    return model, hist


HYPER = [
    {"learning_rate": 3e-3, "beta1": 0.9, "beta2": 0.999, "seed": 7},
    {"learning_rate": 1e-2, "beta1": 0.8, "beta2": 0.99, "l2": 0.1, "seed": 7},
    {"learning_rate": 1e-3, "beta1": 0.95, "keep_prob": 0.7, "decay": 0.5, "seed": 7},
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes", [[64, 13, 10], [64, 9, 5, 10]])
def test_caviar_equals_single_models(data, dtype, sizes):
    X, y, Xd, yd = data
    batch = 32   # 150 = 4 * 32 + 22: a smaller last batch too
    res = train_caviar(X, y, sizes, HYPER, epochs=3, batch_size=batch, dtype=dtype,
                       validation_data=(Xd, yd), backend="numpy")
    assert len(res) == 3 and res.errors == [None] * 3
    for i, h in enumerate(HYPER):
        model, hist = single(sizes, h, X, y, (Xd, yd), 3, batch, dtype)
        mine = res.get_params(i)
        for name, ref in model.get_weights().items():
            np.testing.assert_array_equal(mine[name], ref, err_msg=f"model {i} {name}")
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
            np.testing.assert_allclose(res.histories[i][key], hist[key], rtol=1e-6,
                                       err_msg=f"model {i} {key}")


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_caviar_models_with_own_seeds_match_when_order_is_shared(data, backend):
    """Different init seeds: the weights start apart and each model still trains as
    MLP with that seed would, given the shared batch order of the first seed."""
    X, y, Xd, yd = data
    hyper = {"learning_rate": [1e-2, 1e-2], "seed": [1, 2]}
    res = train_caviar(X, y, [64, 8, 10], hyper, epochs=0, batch_size=16, backend=backend)
    m2 = fastdnn.MLP([64, 8, 10], backend="numpy", seed=2)
    np.testing.assert_array_equal(res.get_params(1)["W1"], m2.get_weights()["W1"])
    assert not np.array_equal(res.get_params(0)["W1"], res.get_params(1)["W1"])


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_a_diverging_model_does_not_stop_the_others(data, backend):
    X, y, Xd, yd = data
    hyper = [{"learning_rate": 1e-2}, {"learning_rate": 1e30}]
    res = train_caviar(X, y, [64, 16, 10], hyper, epochs=3, batch_size=32,
                       validation_data=(Xd, yd), backend=backend)
    assert res.errors[0] is None and "diverged" in res.errors[1]
    assert np.isfinite(res.histories[0]["loss"]).all()
    alone = train_caviar(X, y, [64, 16, 10], hyper[:1], epochs=3, batch_size=32,
                         validation_data=(Xd, yd), backend=backend)
    if backend == "numpy":
        assert alone.histories[0] == res.histories[0]
    else:
        for key, value in alone.histories[0].items():
            np.testing.assert_allclose(res.histories[0][key], value, rtol=1e-5)



@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_dev_scored_after_the_last_epoch_only(data, backend):
    # dev_curves=False: the same training, the same final dev metrics, NaN before
    X, y, Xd, yd = data
    kw = dict(epochs=3, batch_size=32, validation_data=(Xd, yd), backend=backend)
    every = train_caviar(X, y, [64, 13, 10], HYPER, **kw)
    last = train_caviar(X, y, [64, 13, 10], HYPER, dev_curves=False, **kw)
    for h_every, h_last in zip(every.histories, last.histories):
        assert h_last["loss"] == h_every["loss"]
        for key in ("val_loss", "val_accuracy"):
            assert np.isnan(h_last[key][:-1]).all() and len(h_last[key]) == 3
            assert h_last[key][-1] == h_every[key][-1]
    with pytest.raises(TypeError, match="dev_curves"):
        train_caviar(X, y, [64, 13, 10], HYPER, dev_curves="no", **kw)

def test_caviar_argument_errors(data):
    X, y, _, _ = data
    with pytest.raises(ValueError, match="unknown keys"):
        train_caviar(X, y, [64, 4, 10], [{"lr": 1}])
    with pytest.raises(ValueError, match="keep_prob"):
        train_caviar(X, y, [64, 4, 10], [{"keep_prob": 0}])
    with pytest.raises(ValueError, match=r"X must have shape \(n, 32\)"):
        train_caviar(X, y, [32, 4, 10], [{}])
    with pytest.raises(ValueError, match="backend"):
        train_caviar(X, y, [64, 4, 10], [{}], backend="gpu")


def test_caviar_search_rows_match_the_default_trial(data):
    from fastdnn.search import IntUniform, LogUniform, OneMinusLogUniform, random_search
    from fastdnn.search.caviar import caviar_search
    X, y, Xd, yd = data
    space = {"learning_rate": LogUniform(1e-3, 1e-1), "l2": LogUniform(1e-4, 1),
             "beta1": OneMinusLogUniform(0.8, 0.99), "hidden_units": IntUniform(8, 9)}
    fixed = {"epochs": 2, "batch_size": 32, "dtype": "float64"}
    fast = caviar_search(space, (X, y, Xd, yd), fixed=fixed, n_trials=6, seed=1)  # compiled
    slow = random_search(space=space, data=(X, y, Xd, yd), n_trials=6, seed=1,
                         fixed={**fixed, "backend": "numpy"}, executor="serial")
    assert fast.column("trial") == list(range(6))
    assert fast.column("learning_rate") == slow.column("learning_rate")
    assert len(set(fast.column("hidden_units"))) == 2       # two groups
    np.testing.assert_allclose(fast.column("dev_loss"), slow.column("dev_loss"), rtol=1e-9)
    assert fast.column("dev_accuracy") == slow.column("dev_accuracy")
    with pytest.raises(ValueError, match="cannot vary"):
        caviar_search({"momentum": [0.9]}, (X, y, Xd, yd), n_trials=1)


def test_numba_adam_equals_numpy_adam(data, monkeypatch):
    pytest.importorskip("numba")
    import fastdnn.search.caviar as C
    X, y, Xd, yd = data
    a = train_caviar(X, y, [64, 9, 10], HYPER, epochs=2, batch_size=32, backend="numpy")
    monkeypatch.setattr(C, "USE_NUMBA_ADAM", True)
    b = train_caviar(X, y, [64, 9, 10], HYPER, epochs=2, batch_size=32, backend="numpy")
    for i in range(len(HYPER)):
        for name, value in a.get_params(i).items():
            np.testing.assert_array_equal(b.get_params(i)[name], value)


# ------------------------------------------------------------ the compiled engine
FAST_HYPER = HYPER + [
    {"learning_rate": 5e-3, "beta1": 0.85, "l2": 0.01, "keep_prob": 0.8, "seed": 3},
    {"learning_rate": 2e-2, "eps": 1e-6, "decay": 0.1, "seed": 9},
]


def _compare(a, b, rtol, atol, n_models):
    from helpers import assert_close
    for i in range(n_models):
        pa, pb = a.get_params(i), b.get_params(i)
        for name in pa:
            assert_close(pb[name], pa[name], rtol=rtol, atol=atol, name=f"model {i} {name}")
        for key, value in a.histories[i].items():
            assert_close(b.histories[i][key], value, dtype="float64", rtol=rtol, atol=atol,
                         name=f"model {i} {key}")


@pytest.mark.parametrize("sizes", [[64, 13, 10], [64, 9, 5, 10]])
def test_compiled_engine_matches_numpy_engine_float64(data, sizes):
    """Dropout, L2, decay, own seeds, a smaller last batch (150 = 4 * 32 + 22)."""
    pytest.importorskip("numba")
    X, y, Xd, yd = data
    kw = dict(epochs=3, batch_size=32, dtype="float64", validation_data=(Xd, yd))
    a = train_caviar(X, y, sizes, FAST_HYPER, backend="numpy", **kw)
    b = train_caviar(X, y, sizes, FAST_HYPER, backend="cpu", **kw)
    assert b.errors == [None] * len(FAST_HYPER)
    _compare(a, b, 1e-10, 1e-13, len(FAST_HYPER))


@pytest.mark.parametrize("sizes", [[64, 13, 10], [64, 9, 5, 10]])
def test_compiled_engine_matches_float64_in_float32(data, sizes):
    """float32 compiled engine against the float64 NumPy engine over a few steps."""
    pytest.importorskip("numba")
    X, y, Xd, yd = data
    kw = dict(epochs=1, batch_size=37, validation_data=(Xd, yd))   # 4 full batches + 2
    a = train_caviar(X, y, sizes, FAST_HYPER, backend="numpy", dtype="float64", **kw)
    b = train_caviar(X, y, sizes, FAST_HYPER, backend="cpu", dtype="float32", **kw)
    _compare(a, b, 1e-5, 1e-6, len(FAST_HYPER))


def test_compiled_engine_one_model_equals_the_same_model_in_a_group(data):
    pytest.importorskip("numba")
    X, y, Xd, yd = data
    kw = dict(epochs=2, batch_size=32, dtype="float64", validation_data=(Xd, yd),
              backend="cpu")
    group = train_caviar(X, y, [64, 12, 10], FAST_HYPER[:3], **kw)
    for i in (0, 2):
        alone = train_caviar(X, y, [64, 12, 10], [FAST_HYPER[i]], **kw)
        for name, value in alone.get_params(0).items():
            np.testing.assert_allclose(group.get_params(i)[name], value, rtol=1e-12,
                                       atol=1e-14)


def test_compiled_engine_bits_do_not_depend_on_the_thread_count(data, monkeypatch):
    import fastdnn.search.caviar as C
    from fastdnn.engine.threads import threads
    monkeypatch.setattr(C, "CHUNK_MODELS", 2)   # 3 groups of models
    X, y, Xd, yd = data
    runs = []
    for n in (1, 2, 3):
        with threads(n):
            runs.append(train_caviar(X, y, [64, 9, 5, 10], FAST_HYPER, epochs=2,
                                     batch_size=32, validation_data=(Xd, yd),
                                     backend="cpu"))
    for run in runs[1:]:
        for i in range(len(FAST_HYPER)):
            for name, value in runs[0].get_params(i).items():
                np.testing.assert_array_equal(run.get_params(i)[name], value)
            assert runs[0].histories[i] == run.histories[i]


def test_compiled_engine_other_activations(data):
    pytest.importorskip("numba")
    X, y, Xd, yd = data
    for activation in ("tanh", "sigmoid", "leaky_relu"):
        kw = dict(epochs=1, batch_size=50, dtype="float64", activation=activation,
                  validation_data=(Xd, yd))
        a = train_caviar(X, y, [64, 7, 10], FAST_HYPER[2:4], backend="numpy", **kw)
        b = train_caviar(X, y, [64, 7, 10], FAST_HYPER[2:4], backend="cpu", **kw)
        _compare(a, b, 1e-10, 1e-13, 2)


def test_vectorised_dropout_keys_equal_rng_dropout_key():
    from fastdnn.rng import dropout_key
    from fastdnn.search.caviar import HYPERPARAMETERS, _EngineStack
    seeds, keeps = [3, 4, 5, 2**70], [0.5, 1.0, 0.7, 0.9]
    hyper = [{**HYPERPARAMETERS, "seed": s, "keep_prob": kp} for s, kp in zip(seeds, keeps)]
    keys = _EngineStack([5, 4, 3, 2], "relu", "float32", hyper).dropout_keys(7)
    assert keys.shape == (4, 7, 2)
    for i, seed in enumerate(seeds):
        for s in range(7):
            for layer in (1, 2):
                want = dropout_key(seed, s, layer) if keeps[i] < 1 else 0
                assert int(keys[i, s, layer - 1]) == want


@pytest.mark.parametrize("optimizer", ["adam", "momentum", "rmsprop"])
def test_engine_caviar_with_batchnorm_equals_single_models(data, optimizer):
    """BatchNorm and other optimizers: model i of a group trains as MLP(..., seed=s)
    alone would, given the shared batch order (every model has the first seed here)."""
    X, y, Xd, yd = data
    hyper = [{"learning_rate": 1e-2, "beta1": 0.8, "l2": 0.01, "seed": 7},
             {"learning_rate": 3e-3, "keep_prob": 0.8, "seed": 7},
             {"learning_rate": 5e-3, "beta2": 0.99, "eps": 1e-6, "decay": 0.3, "seed": 7}]
    res = train_caviar(X, y, [64, 12, 6, 10], hyper, epochs=2, batch_size=32,
                       dtype="float64", validation_data=(Xd, yd), backend="cpu",
                       batchnorm=True, optimizer=optimizer)
    from helpers import assert_close
    for i, h in enumerate(hyper):
        model = fastdnn.MLP([64, 12, 6, 10], batchnorm=True, keep_prob=h.get("keep_prob", 1),
                            l2=h.get("l2", 0.0), dtype="float64", backend="numpy",
                            seed=h["seed"])
        opt = fastdnn.optim.get_optimizer(optimizer, lr=h["learning_rate"])
        for attr, key, default in (("beta1", "beta1", 0.9), ("beta", "beta1", 0.9),
                                   ("beta2", "beta2", 0.999), ("eps", "eps", 1e-8)):
            if hasattr(opt, attr):
                setattr(opt, attr, h.get(key, default))
        sched = InverseTime(h["decay"]) if h.get("decay") else None
        hist = model.fit(X, y, optimizer=opt, epochs=2, batch_size=32, schedule=sched,
                         validation_data=(Xd, yd), verbose=0)
        mine = res.get_params(i)
        assert set(mine) == set(model.get_weights())   # the running statistics too
        for name, ref in model.get_weights().items():
            assert_close(mine[name], ref, rtol=1e-10, atol=1e-12, name=f"model {i} {name}")
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert_close(res.histories[i][key], hist[key], rtol=1e-10, atol=1e-12,
                         name=f"model {i} {key}")


def test_batchnorm_and_other_optimizers_need_the_engine(data):
    X, y, Xd, yd = data
    with pytest.raises(ValueError, match="backend='cpu'"):
        train_caviar(X, y, [64, 8, 10], HYPER, epochs=1, backend="numpy", batchnorm=True)
    with pytest.raises(ValueError, match="backend='cpu'"):
        train_caviar(X, y, [64, 8, 10], HYPER, epochs=1, backend="numpy", optimizer="sgd")


def test_progress_with_every_trial_failed_so_far(data, capsys):
    from fastdnn.search.caviar import caviar_search
    X, y, Xd, yd = data
    res = caviar_search({"learning_rate": [1e300]}, (X, y, Xd, yd),
                        fixed={"hidden_units": 8, "epochs": 2}, n_trials=2, verbose=1,
                        backend="numpy")
    assert len(res.ok) == 0
    assert "none finished without error yet" in capsys.readouterr().out


# ------------------------------------------------------------ data augmentation
AUGMENT = fastdnn.Augment((8, 8), flip=True, shift=1, noise=0.05)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_augmented_caviar_equals_augmented_single_models(data, dtype):
    """Each model of the NumPy stack trains as MLP.fit(augment=...) with its seed, bit
    for bit (the models share the seed, so they share the order and the draws)."""
    X, y, Xd, yd = data
    res = train_caviar(X, y, [64, 13, 10], HYPER, epochs=2, batch_size=32, dtype=dtype,
                       validation_data=(Xd, yd), backend="numpy", augment=AUGMENT)
    plain = train_caviar(X, y, [64, 13, 10], HYPER, epochs=2, batch_size=32, dtype=dtype,
                         backend="numpy")
    for i, h in enumerate(HYPER):
        model = fastdnn.MLP([64, 13, 10], keep_prob=h.get("keep_prob", 1.0),
                            l2=h.get("l2", 0.0), dtype=dtype, backend="numpy", seed=h["seed"])
        opt = fastdnn.Adam(h["learning_rate"], h.get("beta1", 0.9), h.get("beta2", 0.999))
        sched = InverseTime(h["decay"]) if h.get("decay") else None
        model.fit(X, y, optimizer=opt, epochs=2, batch_size=32, schedule=sched,
                  verbose=0, augment=AUGMENT)
        for name, ref in model.get_weights().items():
            np.testing.assert_array_equal(res.get_params(i)[name], ref,
                                          err_msg=f"model {i} {name}")
        assert not np.array_equal(res.get_params(i)["W1"], plain.get_params(i)["W1"])


def test_augmented_compiled_engine_matches_numpy_engine(data):
    """Seven models in two groups of the engine, with their own seeds: every group
    trains on the first model's augmented batches, as the NumPy stack does (the draws
    do not depend on how the models are grouped)."""
    pytest.importorskip("numba")
    X, y, Xd, yd = data
    hyper = FAST_HYPER + [dict(h, seed=h["seed"] + 11) for h in FAST_HYPER[:2]]
    assert len(hyper) > __import__("fastdnn.search.caviar").search.caviar.CHUNK_MODELS
    kw = dict(epochs=2, batch_size=32, dtype="float64", validation_data=(Xd, yd),
              augment=AUGMENT)
    a = train_caviar(X, y, [64, 13, 10], hyper, backend="numpy", **kw)
    b = train_caviar(X, y, [64, 13, 10], hyper, backend="cpu", **kw)
    assert b.errors == [None] * len(hyper)
    _compare(a, b, 1e-10, 1e-13, len(hyper))


def test_augment_arguments_are_checked(data):
    X, y, _, _ = data
    with pytest.raises(TypeError, match="augment must be a fastdnn.Augment"):
        train_caviar(X, y, [64, 4, 10], [{}], augment={"flip": True})
    with pytest.raises(ValueError, match=r"augment's image_shape \(4, 4\) holds 16"):
        train_caviar(X, y, [64, 4, 10], [{}], augment=fastdnn.Augment((4, 4), flip=True))


def test_caviar_search_with_augment_matches_the_default_trial(data):
    from fastdnn.search import LogUniform, random_search
    from fastdnn.search.caviar import caviar_search
    X, y, Xd, yd = data
    space = {"learning_rate": LogUniform(1e-3, 1e-1)}
    fixed = {"epochs": 2, "batch_size": 32, "dtype": "float64", "hidden_units": 9}
    fast = caviar_search(space, (X, y, Xd, yd), fixed=fixed, n_trials=3, seed=1,
                         augment=AUGMENT)
    slow = random_search(space=space, data=(X, y, Xd, yd), n_trials=3, seed=1,
                         fixed={**fixed, "backend": "numpy", "augment": AUGMENT},
                         executor="serial")
    plain = caviar_search(space, (X, y, Xd, yd), fixed=fixed, n_trials=3, seed=1)
    np.testing.assert_allclose(fast.column("dev_loss"), slow.column("dev_loss"), rtol=1e-9)
    assert not np.allclose(fast.column("dev_loss"), plain.column("dev_loss"), rtol=1e-6)
    with pytest.raises(TypeError, match="augment must be a fastdnn.Augment"):
        caviar_search(space, (X, y, Xd, yd), n_trials=1, augment="flip")


def test_caviar_search_reruns_failed_trials_unless_told_not_to(data, tmp_path,
                                                               monkeypatch):
    """As random_search: a resumed search runs its error rows again by default."""
    import fastdnn.search.caviar as C
    from fastdnn.search import Choice
    X, y, Xd, yd = data
    path = str(tmp_path / "caviar.csv")
    kw = dict(fixed={"epochs": 1, "batch_size": 32, "hidden_units": 8}, n_trials=6,
              seed=3, results_file=path)
    space = {"learning_rate": Choice([1e-2, 1e30])}    # 1e30 diverges
    first = C.caviar_search(space, (X, y, Xd, yd), **kw)
    failed = sorted(r["trial"] for r in first.failed)
    assert 0 < len(failed) < 6
    rerun, task = [], C._caviar_task

    def counting(data, fixed, trials, *args):
        rerun.extend(t for t, _ in trials)
        return task(data, fixed, trials, *args)

    monkeypatch.setattr(C, "_caviar_task", counting)
    kept = C.caviar_search(space, (X, y, Xd, yd), retry_errors=False, **kw)
    assert rerun == [] and sorted(r["trial"] for r in kept.failed) == failed
    again = C.caviar_search(space, (X, y, Xd, yd), **kw)
    assert sorted(rerun) == failed and len(again) == 6
    with pytest.raises(TypeError, match="retry_errors"):
        C.caviar_search(space, (X, y, Xd, yd), n_trials=1, retry_errors="no")
