"""fastdnn.cuda on a real GPU: larger shapes against the NumPy reference.

Marked ``gpu`` and skipped without a GPU; run them with scripts/gpu_check.sh
(``pytest -m gpu tests/test_cuda_gpu.py``).
"""
import numpy as np
import pytest

from fastdnn import backend, config, reference as R
from fastdnn.rng import dropout_key
from helpers import assert_close

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not backend.cuda_available(), reason="needs an NVIDIA GPU and numba-cuda"),
]

DTYPES = [np.float32, np.float64]
# float32 kernels against a float64 reference, with sums over up to 1000 terms
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-9, atol=1e-12)}


@pytest.fixture(scope="module")
def fc():
    import fastdnn.cuda
    return fastdnn.cuda


def close(actual, expected, dtype, name):
    assert np.asarray(actual).dtype == np.dtype(dtype), name
    assert_close(actual, expected, dtype=dtype, name=name, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_large(fc, rng, dtype):
    m, n_in, n_out = 1000, 300, 257
    X = rng.standard_normal((m, n_in)).astype(dtype)
    W = (rng.standard_normal((n_out, n_in)) * 0.05).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    d = rng.standard_normal((m, n_out)).astype(dtype)
    key = dropout_key(1, 2, 3)
    out, act = fc.dense_forward(X, W, b, "relu", 0.8, key)
    x64, w64, b64, d64 = (a.astype(np.float64) for a in (X, W, b, d))
    r_out, r_act = R.dense_forward(x64, w64, b64, "relu", 0.8, key)
    close(out, r_out, dtype, "out")
    close(act, r_act, dtype, "act")
    got = fc.dense_backward(d.copy(), X, W, act, "relu", 0.8, key, lambd=0.5)
    want = R.dense_backward(d64, x64, w64, act.astype(np.float64), "relu", 0.8, key,
                            lambd=0.5)
    for name, a, e in zip(["dX", "dW", "db"], got, want):
        close(a, e, dtype, name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_large(fc, rng, dtype):
    m, n = 1000, 129
    Z = (rng.standard_normal((m, n)) * 2 + 1).astype(dtype)
    gamma, beta = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    rm, rv = np.zeros(n, dtype), np.ones(n, dtype)
    key = dropout_key(4, 5, 6)
    got = fc.batchnorm_activation_forward(Z, gamma, beta, rm, rv, 0.9, 1e-5, True, "tanh",
                                          0.7, key)
    rm64, rv64 = np.zeros(n), np.ones(n)
    want = R.batchnorm_activation_forward(Z.astype(np.float64), gamma.astype(np.float64),
                                          beta.astype(np.float64), rm64, rv64, 0.9, 1e-5,
                                          True, "tanh", 0.7, key)
    for name, a, e in zip(["out", "act", "x_hat", "inv_std"], got, want):
        close(a, e, dtype, name)
    close(rm, rm64, dtype, "running_mean")
    close(rv, rv64, dtype, "running_var")
    d = rng.standard_normal((m, n)).astype(dtype)
    out, act, x_hat, inv_std = got
    g = fc.batchnorm_activation_backward(d.copy(), act, x_hat, inv_std, gamma, "tanh", 0.7, key)
    w = R.batchnorm_activation_backward(d.astype(np.float64), act.astype(np.float64),
                                        x_hat.astype(np.float64), inv_std.astype(np.float64),
                                        gamma.astype(np.float64), "tanh", 0.7, key)
    for name, a, e in zip(["dZ", "dgamma", "dbeta"], g, w):
        close(a, e, dtype, name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_losses_large(fc, rng, dtype):
    m, k = 1000, 10
    Z = (rng.standard_normal((m, k)) * 4).astype(dtype)
    labels = rng.integers(0, k, m)
    Y = (rng.random((m, k)) > 0.5).astype(dtype)
    cases = [(fc.softmax_cross_entropy, R.softmax_cross_entropy, labels),
             (fc.sigmoid_cross_entropy, R.sigmoid_cross_entropy, Y),
             (fc.mean_squared_error, R.mean_squared_error, Y)]
    for fast, ref, targets in cases:
        loss, dZ = fast(Z, targets)
        r_loss, r_dZ = ref(Z.astype(np.float64), targets)
        assert abs(loss - r_loss) <= TOL[dtype]["rtol"] * abs(r_loss), fast.__name__
        close(dZ, r_dZ, dtype, fast.__name__)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"])
def test_optimizers_large(fc, rng, dtype, name):
    n = 1_000_003
    n_states = {"sgd": 0, "adam": 2, "adamw": 2}.get(name, 1)
    p = rng.standard_normal(n).astype(dtype)
    states = [np.abs(rng.standard_normal(n)).astype(dtype) * 0.1 for _ in range(n_states)]
    p64, s64 = p.astype(np.float64), [s.astype(np.float64) for s in states]
    for step in (1, 2):
        g = rng.standard_normal(n).astype(dtype)
        extra = (step,) if n_states == 2 else ()
        getattr(fc, name + "_update")(p, g, *states, *extra, lr=0.01, weight_decay=0.01)
        getattr(R, name + "_update")(p64, g.astype(np.float64), *s64, *extra, lr=0.01,
                                     weight_decay=0.01)
    close(p, p64, dtype, "param")
    for s, e in zip(states, s64):
        close(s, e, dtype, "state")


@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_agree_with_the_cpu_formulas(fc, dtype):
    """Every activation code compiled for the device (leaky_relu through formulas'
    @overload leaky_slope) against fastdnn.formulas on the CPU, zeros and negatives
    included: the device's exp and tanh may differ in the last bits only."""
    from fastdnn import formulas
    z = np.array([-40.0, -3.0, -1.0, -1e-3, -1e-30, -0.0, 0.0, 1e-30, 1e-3, 1.0, 3.0, 40.0],
                 dtype)
    tol = dict(rtol=2e-6, atol=1e-37) if dtype == np.float32 else dict(rtol=1e-14,
                                                                         atol=1e-300)
    for name, code in formulas.ACTIVATION_CODES.items():
        A = fc.activation_forward(z, name)
        want = np.array([formulas.activate(x, code) for x in z], dtype)
        assert_close(A, want, dtype=dtype, name=name, **tol)
        dZ = fc.activation_backward(np.ones_like(z), A, name)
        want = np.array([formulas.activation_grad(a, code) for a in A], dtype)
        assert_close(dZ, want, dtype=dtype, name=f"{name} grad", **tol)


def test_dropout_mask_bit_for_bit_large(fc):
    key = dropout_key(9, 99, 2)
    assert np.array_equal(fc.dropout_mask((1000, 257), 0.8, key),
                          R.dropout_mask((1000, 257), 0.8, key))


def test_deterministic_across_launch_geometry(fc, rng, monkeypatch):
    m, n_in, n_out = 3000, 64, 200
    X = rng.standard_normal((m, n_in)).astype(np.float32)
    W = rng.standard_normal((n_out, n_in)).astype(np.float32)
    d = rng.standard_normal((m, n_out)).astype(np.float32)
    out, act = fc.dense_forward(X, W, None, "relu")
    first = fc.dense_backward(d.copy(), X, W, act, "relu")
    again = fc.dense_backward(d.copy(), X, W, act, "relu")
    monkeypatch.setattr(config, "THREADS_PER_BLOCK", 64)
    other = fc.dense_backward(d.copy(), X, W, act, "relu")
    for a, b, c in zip(first, again, other):
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_device_arrays_stay_on_device(fc, rng):
    from numba import cuda
    X = cuda.to_device(rng.standard_normal((64, 32)).astype(np.float32))
    W = cuda.to_device(rng.standard_normal((16, 32)).astype(np.float32))
    out, act = fc.dense_forward(X, W, None, "relu")
    assert fc.is_device_array(out) and fc.is_device_array(act)
    loss, dZ = fc.softmax_cross_entropy_on_device(out, cuda.to_device(np.arange(64) % 16))
    assert fc.is_device_array(loss) and fc.is_device_array(dZ)
    cupy = pytest.importorskip("cupy")
    Xc = cupy.asarray(X)
    out2, _ = fc.dense_forward(Xc, W, None, "relu")
    assert np.array_equal(out2.copy_to_host(), out.copy_to_host())


@pytest.mark.parametrize("dtype", DTYPES)
def test_device_resident_model_matches_cpu(rng, dtype, tmp_path):
    import fastdnn
    from fastdnn.cuda import is_device_array
    X = rng.standard_normal((1000, 100)).astype(dtype)
    y = rng.integers(0, 10, 1000)
    models = [fastdnn.MLP([100, 64, 32, 10], batchnorm=True, keep_prob=0.8, l2=0.01,
                          dtype=dtype, backend=b, seed=4) for b in ("cpu", "cuda")]
    hists = [m.fit(X, y, epochs=2, batch_size=128, verbose=0,
                   optimizer=fastdnn.Adam(lr=1e-3)) for m in models]
    cpu, gpu = models
    assert is_device_array(gpu._flat) and is_device_array(gpu._running)
    assert all(is_device_array(a) for arrs in gpu.optimizer.state.values() for a in arrs)
    for name, value in cpu.get_weights().items():
        close(gpu.get_weights()[name], value, dtype, name)
    for name, value in cpu.get_batchnorm_stats().items():
        close(gpu.get_batchnorm_stats()[name], value, dtype, name)
    assert_close(np.array(hists[1].history["loss"]), np.array(hists[0].history["loss"]),
                 dtype=dtype, name="loss", **TOL[dtype])
    close(gpu.predict_proba(X), cpu.predict_proba(X), dtype, "predict_proba")
    path = tmp_path / "gpu.npz"
    gpu.save(path)
    back = fastdnn.load(path)
    for name, value in gpu.get_weights().items():
        assert np.array_equal(back.get_weights()[name], value), name
