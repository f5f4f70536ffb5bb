"""Hot-kernel micro-benchmarks: each is warmed up (compiled) before pytest-benchmark times it.

MNIST MLP sizes: m = 256 batch, layer 784 -> 512, float32; Adam on 1e6 parameters.
"""
import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")

from fastdnn.rng import dropout_key  # noqa: E402

M, N_IN, N_OUT, KEEP = 256, 784, 512, 0.8
KEY = dropout_key(0, 1, 0)
F32 = np.float32


def _bench(benchmark, fn):
    fn()  # compile before timing
    benchmark.pedantic(fn, rounds=15, iterations=3, warmup_rounds=2)


def test_dense_forward(benchmark, K, rng):
    X = rng.standard_normal((M, N_IN)).astype(F32)
    W = (rng.standard_normal((N_OUT, N_IN)) * 0.05).astype(F32)
    b = np.zeros(N_OUT, F32)
    out, act = np.empty((M, N_OUT), F32), np.empty((M, N_OUT), F32)
    _bench(benchmark, lambda: K.dense_forward(X, W, b, "relu", KEEP, KEY, out=out,
                                              act_out=act))


def test_dense_backward(benchmark, K, rng):
    X = rng.standard_normal((M, N_IN)).astype(F32)
    W = (rng.standard_normal((N_OUT, N_IN)) * 0.05).astype(F32)
    act = np.maximum(rng.standard_normal((M, N_OUT)), 0).astype(F32)
    d0 = rng.standard_normal((M, N_OUT)).astype(F32)
    d = np.empty_like(d0)
    dX, dW, db = np.empty_like(X), np.empty_like(W), np.empty(N_OUT, F32)

    def call():
        np.copyto(d, d0)  # backward may overwrite d_out
        K.dense_backward(d, X, W, act, "relu", KEEP, KEY, 1e-4, dX_out=dX, dW_out=dW,
                         db_out=db)
    _bench(benchmark, call)


def test_batchnorm_activation_forward(benchmark, K, rng):
    Z = rng.standard_normal((M, N_OUT)).astype(F32)
    gamma, beta = np.ones(N_OUT, F32), np.zeros(N_OUT, F32)
    rm, rv = np.zeros(N_OUT, F32), np.ones(N_OUT, F32)
    _bench(benchmark, lambda: K.batchnorm_activation_forward(
        Z, gamma, beta, rm, rv, 0.9, 1e-5, True, "relu", KEEP, KEY))


def test_batchnorm_activation_backward(benchmark, K, rng):
    from fastdnn import reference as R
    Z = rng.standard_normal((M, N_OUT)).astype(F32)
    gamma, beta = np.ones(N_OUT, F32), np.zeros(N_OUT, F32)
    _, act, x_hat, inv_std = R.batchnorm_activation_forward(
        Z, gamma, beta, np.zeros(N_OUT, F32), np.ones(N_OUT, F32), 0.9, 1e-5, True, "relu",
        KEEP, KEY)
    d0 = rng.standard_normal((M, N_OUT)).astype(F32)
    d = np.empty_like(d0)

    def call():
        np.copyto(d, d0)
        K.batchnorm_activation_backward(d, act, x_hat, inv_std, gamma, "relu", KEEP, KEY)
    _bench(benchmark, call)


def test_softmax_cross_entropy(benchmark, K, rng):
    Z = rng.standard_normal((M, 10)).astype(F32)
    y = rng.integers(0, 10, M)
    _bench(benchmark, lambda: K.softmax_cross_entropy(Z, y))


@pytest.mark.parametrize("name", ["sgd", "momentum", "rmsprop", "adam"])
def test_optimizer_update(benchmark, K, rng, name):
    n = 1_000_000
    p = rng.standard_normal(n).astype(F32)
    g = (0.01 * rng.standard_normal(n)).astype(F32)
    states = [np.zeros(n, F32) for _ in range({"sgd": 0, "adam": 2}.get(name, 1))]
    update = getattr(K, f"{name}_update")
    if name == "adam":
        call = lambda: update(p, g, *states, 10, 1e-3)  # noqa: E731
    else:
        call = lambda: update(p, g, *states, 1e-3)  # noqa: E731
    _bench(benchmark, call)
