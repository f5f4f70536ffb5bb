"""Caviar on CUDA (fastdnn.cuda.caviar) against the NumPy and compiled CPU engines,
under the CUDA simulator: tiny shapes, a few steps, 32 threads per block and at most 2
blocks so the grid-stride loops wrap."""
import numpy as np
import pytest

from fastdnn import config
from fastdnn.cuda import _device
from fastdnn.search.caviar import train_caviar
from helpers import assert_close

HYPER = [
    {"learning_rate": 3e-2, "beta1": 0.9, "seed": 7},
    {"learning_rate": 1e-1, "beta1": 0.8, "beta2": 0.99, "l2": 0.1, "seed": 3},
    {"learning_rate": 1e-2, "keep_prob": 0.7, "decay": 0.5, "eps": 1e-6, "seed": 7},
]


@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    monkeypatch.setattr(config, "THREADS_PER_BLOCK", 32)
    monkeypatch.setattr(_device, "MAX_BLOCKS", 2)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((23, 7))     # 23 = 2 * 8 + 7: a smaller last batch
    y = rng.integers(0, 3, 23)
    return X, y, rng.standard_normal((9, 7)), rng.integers(0, 3, 9)


def _compare(a, b, rtol, atol, n_models):
    for i in range(n_models):
        pa, pb = a.get_params(i), b.get_params(i)
        for name in pa:
            assert_close(pb[name], pa[name], rtol=rtol, atol=atol, name=f"model {i} {name}")
        for key, value in a.histories[i].items():
            assert_close(b.histories[i][key], value, dtype="float64", rtol=rtol, atol=atol,
                         name=f"model {i} {key}")


@pytest.mark.parametrize("sizes", [[7, 5, 3], [7, 4, 6, 3]])
def test_cuda_caviar_matches_the_numpy_engine_float64(data, sizes):
    X, y, Xd, yd = data
    kw = dict(epochs=2, batch_size=8, dtype="float64", validation_data=(Xd, yd))
    a = train_caviar(X, y, sizes, HYPER, backend="numpy", **kw)
    b = train_caviar(X, y, sizes, HYPER, backend="cuda", **kw)
    assert b.errors == [None] * 3
    _compare(a, b, 1e-10, 1e-13, 3)


def test_cuda_caviar_float32_against_float64(data):
    X, y, Xd, yd = data
    kw = dict(epochs=1, batch_size=8, validation_data=(Xd, yd))
    a = train_caviar(X, y, [7, 4, 6, 3], HYPER, backend="numpy", dtype="float64", **kw)
    b = train_caviar(X, y, [7, 4, 6, 3], HYPER, backend="cuda", dtype="float32", **kw)
    _compare(a, b, 1e-5, 1e-6, 3)


def test_cuda_caviar_matches_the_compiled_cpu_engine(data):
    pytest.importorskip("scipy")
    X, y, Xd, yd = data
    kw = dict(epochs=1, batch_size=8, dtype="float64", validation_data=(Xd, yd),
              activation="tanh")
    a = train_caviar(X, y, [7, 5, 3], HYPER[:2], backend="cpu", **kw)
    b = train_caviar(X, y, [7, 5, 3], HYPER[:2], backend="cuda", **kw)
    _compare(a, b, 1e-10, 1e-13, 2)


def test_cuda_caviar_one_model_without_dev_set(data):
    X, y, _, _ = data
    kw = dict(epochs=1, batch_size=23, dtype="float64")
    a = train_caviar(X, y, [7, 3], HYPER[1:2], backend="numpy", **kw)
    b = train_caviar(X, y, [7, 3], HYPER[1:2], backend="cuda", **kw)
    assert set(b.histories[0]) == {"loss", "accuracy", "lr"}
    _compare(a, b, 1e-10, 1e-13, 1)


def test_cuda_caviar_augments_as_the_numpy_engine(data):
    """The device gathers the batch, then augments it with the first model's draws
    (fastdnn.cuda.engine.augment_batch), as the NumPy stack does on the host."""
    from fastdnn import Augment
    X, y, Xd, yd = data
    kw = dict(epochs=2, batch_size=8, dtype="float64", validation_data=(Xd, yd),
              augment=Augment((1, 7), flip=True, shift=1, noise=0.2))
    a = train_caviar(X, y, [7, 5, 3], HYPER, backend="numpy", **kw)
    b = train_caviar(X, y, [7, 5, 3], HYPER, backend="cuda", **kw)
    _compare(a, b, 1e-10, 1e-13, 3)
    plain = train_caviar(X, y, [7, 5, 3], HYPER, backend="numpy", epochs=2, batch_size=8,
                         dtype="float64")
    assert not np.array_equal(a.get_params(0)["W1"], plain.get_params(0)["W1"])
