"""Caviar: K models trained together equal K single MLP trainings."""
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
                       validation_data=(Xd, yd))
    assert len(res) == 3 and res.errors == [None] * 3
    for i, h in enumerate(HYPER):
        model, hist = single(sizes, h, X, y, (Xd, yd), 3, batch, dtype)
        mine = res.get_params(i)
        for name, ref in model.get_params().items():
            np.testing.assert_array_equal(mine[name], ref, err_msg=f"model {i} {name}")
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
            np.testing.assert_allclose(res.histories[i][key], hist[key], rtol=1e-6,
                                       err_msg=f"model {i} {key}")


def test_caviar_models_with_own_seeds_match_when_order_is_shared(data):
    """Different init seeds: the weights start apart and each model still trains as
    MLP with that seed would, given the shared batch order of the first seed."""
    X, y, Xd, yd = data
    hyper = {"learning_rate": [1e-2, 1e-2], "seed": [1, 2]}
    res = train_caviar(X, y, [64, 8, 10], hyper, epochs=0, batch_size=16)
    m2 = fastdnn.MLP([64, 8, 10], backend="numpy", seed=2)
    np.testing.assert_array_equal(res.get_params(1)["W1"], m2.get_params()["W1"])
    assert not np.array_equal(res.get_params(0)["W1"], res.get_params(1)["W1"])


def test_a_diverging_model_does_not_stop_the_others(data):
    X, y, Xd, yd = data
    hyper = [{"learning_rate": 1e-2}, {"learning_rate": 1e30}]
    res = train_caviar(X, y, [64, 16, 10], hyper, epochs=3, batch_size=32,
                       validation_data=(Xd, yd))
    assert res.errors[0] is None and "diverged" in res.errors[1]
    assert np.isfinite(res.histories[0]["loss"]).all()
    alone = train_caviar(X, y, [64, 16, 10], hyper[:1], epochs=3, batch_size=32,
                         validation_data=(Xd, yd))
    assert alone.histories[0] == res.histories[0]


def test_caviar_argument_errors(data):
    X, y, _, _ = data
    with pytest.raises(ValueError, match="unknown keys"):
        train_caviar(X, y, [64, 4, 10], [{"lr": 1}])
    with pytest.raises(ValueError, match="keep_prob"):
        train_caviar(X, y, [64, 4, 10], [{"keep_prob": 0}])
    with pytest.raises(ValueError, match=r"X must have shape \(n, 32\)"):
        train_caviar(X, y, [32, 4, 10], [{}])


def test_caviar_search_rows_match_the_default_trial(data):
    from fastdnn.search import IntUniform, LogUniform, OneMinusLogUniform, random_search
    from fastdnn.search.caviar import caviar_search
    X, y, Xd, yd = data
    space = {"learning_rate": LogUniform(1e-3, 1e-1), "l2": LogUniform(1e-4, 1),
             "beta1": OneMinusLogUniform(0.8, 0.99), "hidden_units": IntUniform(8, 9)}
    fixed = {"epochs": 2, "batch_size": 32, "dtype": "float64"}
    fast = caviar_search(space, (X, y, Xd, yd), fixed=fixed, n_trials=6, seed=1)
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
    a = train_caviar(X, y, [64, 9, 10], HYPER, epochs=2, batch_size=32)
    monkeypatch.setattr(C, "USE_NUMBA_ADAM", True)
    b = train_caviar(X, y, [64, 9, 10], HYPER, epochs=2, batch_size=32)
    for i in range(len(HYPER)):
        for name, value in a.get_params(i).items():
            np.testing.assert_array_equal(b.get_params(i)[name], value)
