"""fastdnn.cuda kernels against their NumPy reference twins, under the CUDA simulator.

Tiny shapes; 8 threads per block, at most 2 blocks and 3-row reduction chunks, so that
several blocks, grid-stride loops and multi-chunk reductions all run.
"""
import numpy as np
import pytest
from numba import cuda

from fastdnn import config, formulas, reference as R
from fastdnn.rng import dropout_key, keep_threshold
import fastdnn.cuda as fc
from fastdnn.cuda import _device
from helpers import assert_close

DTYPES = [np.float32, np.float64]
ACTS = ["identity", "relu", "leaky_relu", "tanh", "sigmoid"]


@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    monkeypatch.setattr(config, "THREADS_PER_BLOCK", 8)
    monkeypatch.setattr(config, "REDUCTION_CHUNK", 3)
    monkeypatch.setattr(_device, "MAX_BLOCKS", 2)


def data(rng, *shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def ref64(*arrays):
    return [None if a is None else np.asarray(a, dtype=np.float64) for a in arrays]


def close(actual, expected, dtype, name, rtol=None, atol=None):
    assert np.asarray(actual).dtype == np.dtype(dtype), name
    assert_close(actual, expected, dtype=dtype, rtol=rtol, atol=atol, name=name)


# ------------------------------------------------------------------ masks
# (the kernels' element-wise formulas against fastdnn.formulas: test_cuda_formulas.py)

@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (3, 13)])
@pytest.mark.parametrize("keep_prob", [0.5, 0.8, 1.0])
def test_dropout_mask_bit_for_bit(shape, keep_prob):
    key = dropout_key(2024, 17, 3)
    assert np.array_equal(fc.dropout_mask(shape, keep_prob, key),
                          R.dropout_mask(shape, keep_prob, key))


def test_is_kept_from_a_kernel_matches_the_hash_of_fastdnn_rng():
    key = dropout_key(1, 2, 3)
    thr = keep_threshold(0.6)
    mask = cuda.device_array(100, dtype=np.bool_)
    fc.activations._mask[2, 32](np.uint64(key), np.uint64(thr), mask)
    want = [formulas.is_kept(np.uint64(key), np.uint64(i), np.uint64(thr)) for i in range(100)]
    assert mask.copy_to_host().tolist() == want


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTS)
def test_activation_forward_backward(rng, dtype, activation):
    Z = data(rng, 7, 5, dtype=dtype)
    dA = data(rng, 7, 5, dtype=dtype)
    A = fc.activation_forward(Z, activation)
    (z64, da64) = ref64(Z, dA)
    close(A, R.activation_forward(z64, activation), dtype, "A")
    a64 = R.activation_forward(z64, activation)
    close(fc.activation_backward(dA, A, activation),
          R.activation_backward(da64, a64, activation), dtype, "dZ", rtol=1e-5 if dtype ==
          np.float32 else None, atol=1e-5 if dtype == np.float32 else None)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_forward_backward(rng, dtype):
    A = data(rng, 7, 5, dtype=dtype)
    key = dropout_key(5, 1, 0)
    out = fc.dropout_forward(A, 0.6, key)
    close(out, R.dropout_forward(A.astype(np.float64), 0.6, key), dtype, "out")
    assert np.array_equal(out == 0, ~R.dropout_mask(A.shape, 0.6, key))
    close(fc.dropout_backward(A, 0.6, key), out, dtype, "dA")


# ------------------------------------------------------------------ dense

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation,keep_prob,bias", [
    ("identity", 1.0, True), ("relu", 0.7, True), ("tanh", 1.0, False),
    ("sigmoid", 0.5, True), ("leaky_relu", 0.9, False)])
def test_dense_forward_backward(rng, dtype, activation, keep_prob, bias):
    m, n_in, n_out = 7, 5, 4
    X, W = data(rng, m, n_in, dtype=dtype), data(rng, n_out, n_in, dtype=dtype)
    b = data(rng, n_out, dtype=dtype) if bias else None
    d_out = data(rng, m, n_out, dtype=dtype)
    key = dropout_key(7, 3, 1)
    out, act = fc.dense_forward(X, W, b, activation, keep_prob, key)
    x64, w64, b64, d64 = ref64(X, W, b, d_out)
    r_out, r_act = R.dense_forward(x64, w64, b64, activation, keep_prob, key)
    close(out, r_out, dtype, "out")
    close(act, r_act, dtype, "act")
    dX, dW, db = fc.dense_backward(d_out.copy(), X, W, act, activation, keep_prob, key,
                                   lambd=0.3, with_bias=bias)
    rdX, rdW, rdb = R.dense_backward(d64, x64, w64, act.astype(np.float64), activation,
                                     keep_prob, key, lambd=0.3, with_bias=bias)
    close(dX, rdX, dtype, "dX")
    close(dW, rdW, dtype, "dW")
    if bias:
        close(db, rdb, dtype, "db")
    else:
        assert db is None


def test_dense_shapes_batch_one_width_one_and_noncontiguous(rng):
    X = data(rng, 9, 6)[::3, ::2]  # (3, 3), non-contiguous
    W = data(rng, 1, 3)
    b = data(rng, 1)
    out, act = fc.dense_forward(X, W, b, "tanh")
    r_out, r_act = R.dense_forward(X, W, b, "tanh")
    close(out, r_out, np.float64, "out")
    dX, dW, db = fc.dense_backward(np.ones((3, 1)), X, W, act, "tanh", need_dX=False)
    rdX, rdW, rdb = R.dense_backward(np.ones((3, 1)), X, W, r_act, "tanh", need_dX=False)
    assert dX is None
    close(dW, rdW, np.float64, "dW")
    close(db, rdb, np.float64, "db")
    X1 = data(rng, 1, 4)
    W1 = data(rng, 3, 4)
    close(fc.dense_forward(X1, W1, None, "relu")[0], R.dense_forward(X1, W1, None, "relu")[0],
          np.float64, "batch 1")


def test_dense_device_arrays_and_out_buffers(rng):
    X, W, b = data(rng, 7, 5), data(rng, 3, 5), data(rng, 3)
    Xd, Wd, bd = (cuda.to_device(a) for a in (X, W, b))
    out, act = cuda.device_array((7, 3)), cuda.device_array((7, 3))
    r = fc.dense_forward(Xd, Wd, bd, "relu", 0.5, 11, out=out, act_out=act)
    assert r[0] is out and r[1] is act
    r_out, r_act = R.dense_forward(X, W, b, "relu", 0.5, 11)
    close(out.copy_to_host(), r_out, np.float64, "out")
    d = data(rng, 7, 3)
    dd = cuda.to_device(d)
    dX_out, dW_out, db_out = np.empty((7, 5)), np.empty((3, 5)), np.empty(3)
    dX, dW, db = fc.dense_backward(dd, Xd, Wd, act, "relu", 0.5, 11, dX_out=dX_out,
                                   dW_out=dW_out, db_out=db_out)
    assert dX is dX_out and dW is dW_out and db is db_out
    rdX, rdW, rdb = R.dense_backward(d, X, W, r_act, "relu", 0.5, 11)
    close(dX, rdX, np.float64, "dX")
    close(dW, rdW, np.float64, "dW")
    close(db, rdb, np.float64, "db")


def test_reductions_do_not_depend_on_launch_geometry(rng, monkeypatch):
    X, W, b = data(rng, 11, 5, dtype=np.float32), data(rng, 6, 5, dtype=np.float32), None
    out, act = fc.dense_forward(X, W, b, "relu")
    d = data(rng, 11, 6, dtype=np.float32)
    first = fc.dense_backward(d.copy(), X, W, act, "relu")
    g, be = np.ones(6, np.float32), np.zeros(6, np.float32)
    bn_first = fc.batchnorm_activation_forward(out, g, be, np.zeros(6, np.float32),
                                               np.ones(6, np.float32), activation="relu")
    bn_back = fc.batchnorm_activation_backward(d.copy(), *bn_first[1:], g, "relu")
    monkeypatch.setattr(config, "THREADS_PER_BLOCK", 32)
    monkeypatch.setattr(_device, "MAX_BLOCKS", 1)
    second = fc.dense_backward(d.copy(), X, W, act, "relu")
    for a, b_ in zip(first, second):
        assert np.array_equal(a, b_)
    bn_second = fc.batchnorm_activation_forward(out, g, be, np.zeros(6, np.float32),
                                                np.ones(6, np.float32), activation="relu")
    for a, b_ in zip(bn_first, bn_second):
        assert np.array_equal(a, b_)
    for a, b_ in zip(bn_back, fc.batchnorm_activation_backward(d.copy(), *bn_second[1:], g,
                                                               "relu")):
        assert np.array_equal(a, b_)


def test_backward_overwrites_device_d_out_with_dZ(rng):
    X, W = data(rng, 5, 4), data(rng, 3, 4)
    out, act = fc.dense_forward(X, W, None, "tanh")
    d = data(rng, 5, 3)
    dd = cuda.to_device(d)
    fc.dense_backward(dd, cuda.to_device(X), cuda.to_device(W), cuda.to_device(act), "tanh")
    assert_close(dd.copy_to_host(), R.activation_backward(d, act, "tanh"), name="dZ")


def test_dense_errors_name_the_argument(rng):
    X = data(rng, 4, 3)
    with pytest.raises(ValueError, match="W must have shape"):
        fc.dense_forward(X, data(rng, 2, 4))
    with pytest.raises(TypeError, match="W has dtype"):
        fc.dense_forward(X, data(rng, 2, 3, dtype=np.float32))
    with pytest.raises(ValueError, match="activation"):
        fc.dense_forward(X, data(rng, 2, 3), activation="swish")
    with pytest.raises(ValueError, match="keep_prob"):
        fc.dense_forward(X, data(rng, 2, 3), keep_prob=0.0)
    with pytest.raises(TypeError, match="X must be"):
        fc.dense_forward([[1.0]], data(rng, 2, 3))


# ------------------------------------------------------------------ batchnorm

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation,keep_prob", [("identity", 1.0), ("relu", 0.6),
                                                  ("tanh", 0.8)])
def test_batchnorm_activation_forward_backward(rng, dtype, activation, keep_prob):
    m, n = 7, 5
    Z = (data(rng, m, n) * 3 + 1).astype(dtype)
    gamma, beta = data(rng, n, dtype=dtype), data(rng, n, dtype=dtype)
    rm, rv = data(rng, n, dtype=dtype), (rng.random(n) + 0.5).astype(dtype)
    key = dropout_key(3, 9, 2)
    z64, g64, b64, rm64, rv64 = ref64(Z, gamma, beta, rm, rv)
    out, act, x_hat, inv_std = fc.batchnorm_activation_forward(
        Z, gamma, beta, rm, rv, 0.8, 1e-5, True, activation, keep_prob, key)
    r = R.batchnorm_activation_forward(z64, g64, b64, rm64, rv64, 0.8, 1e-5, True,
                                       activation, keep_prob, key)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else {}
    for name, a, e in zip(["out", "act", "x_hat", "inv_std"], [out, act, x_hat, inv_std], r):
        close(a, e, dtype, name, **tol)
    close(rm, rm64, dtype, "running_mean", **tol)
    close(rv, rv64, dtype, "running_var", **tol)
    d = data(rng, m, n, dtype=dtype)
    dZ, dgamma, dbeta = fc.batchnorm_activation_backward(d.copy(), act, x_hat, inv_std, gamma,
                                                         activation, keep_prob, key)
    r = R.batchnorm_activation_backward(d.astype(np.float64), *ref64(act, x_hat, inv_std),
                                        g64, activation, keep_prob, key)
    tol = dict(rtol=1e-4, atol=2e-5) if dtype == np.float32 else {}
    for name, a, e in zip(["dZ", "dgamma", "dbeta"], [dZ, dgamma, dbeta], r):
        close(a, e, dtype, name, **tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_inference_and_plain(rng, dtype):
    m, n = 6, 3
    Z = data(rng, m, n, dtype=dtype)
    gamma, beta = data(rng, n, dtype=dtype), data(rng, n, dtype=dtype)
    rm, rv = data(rng, n, dtype=dtype), (rng.random(n) + 0.5).astype(dtype)
    rm0, rv0 = rm.copy(), rv.copy()
    out, x_hat, inv_std = fc.batchnorm_forward(Z, gamma, beta, rm, rv, training=False)
    assert x_hat is None and inv_std is None
    assert np.array_equal(rm, rm0) and np.array_equal(rv, rv0)
    close(out, R.batchnorm_forward(*ref64(Z, gamma, beta, rm, rv), training=False)[0],
          dtype, "out")
    res = fc.batchnorm_activation_forward(Z, gamma, beta, rm, rv, training=False,
                                          activation="sigmoid", keep_prob=0.5, key=4)
    r = R.batchnorm_activation_forward(*ref64(Z, gamma, beta, rm, rv), training=False,
                                       activation="sigmoid", keep_prob=0.5, key=4)
    close(res[0], r[0], dtype, "inference out (no dropout)")
    out, x_hat, inv_std = fc.batchnorm_forward(Z, gamma, beta, rm, rv)
    r = R.batchnorm_forward(*ref64(Z, gamma, beta, rm0, rv0))
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else {}
    close(out, r[0], dtype, "out", **tol)
    d = data(rng, m, n, dtype=dtype)
    got = fc.batchnorm_backward(d, x_hat, inv_std, gamma)
    want = R.batchnorm_backward(*ref64(d, x_hat, inv_std, gamma))
    for name, a, e in zip(["dZ", "dgamma", "dbeta"], got, want):
        close(a, e, dtype, name, **tol)


def test_batchnorm_batch_of_one_width_one(rng):
    Z, g, b = data(rng, 1, 1), np.ones(1), np.zeros(1)
    rm, rv = np.zeros(1), np.ones(1)
    out, x_hat, inv_std = fc.batchnorm_forward(Z, g, b, rm, rv)
    r = R.batchnorm_forward(Z, g, b, np.zeros(1), np.ones(1))
    close(out, r[0], np.float64, "out")
    close(inv_std, r[2], np.float64, "inv_std")


# ------------------------------------------------------------------ losses

@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_one_hot_and_labels(rng, dtype):
    Z = (data(rng, 7, 4) * 3).astype(dtype)
    labels = rng.integers(0, 4, 7)
    Y = R.one_hot(labels, 4, dtype)
    for targets in (Y, labels):
        loss, dZ = fc.softmax_cross_entropy(Z, targets)
        r_loss, r_dZ = R.softmax_cross_entropy(Z.astype(np.float64), targets)
        assert abs(loss - r_loss) <= (1e-5 if dtype == np.float32 else 1e-12) * abs(r_loss)
        close(dZ, r_dZ, dtype, "dZ")
    loss_dev, _ = fc.softmax_cross_entropy_on_device(cuda.to_device(Z), cuda.to_device(labels))
    assert loss_dev.shape == (1,)
    assert np.isclose(loss_dev.copy_to_host()[0], r_loss, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_cross_entropy_and_mse(rng, dtype):
    Z = (data(rng, 7, 3) * 20).astype(dtype)  # large |z| too
    Y = (rng.random((7, 3)) > 0.5).astype(dtype)
    w = rng.random(7) * 2
    for fast, ref in [(fc.sigmoid_cross_entropy, R.sigmoid_cross_entropy),
                      (fc.mean_squared_error, R.mean_squared_error),
                      (fc.poisson_deviance, R.poisson_deviance),
                      (fc.softmax_cross_entropy, R.softmax_cross_entropy)]:
        if fast is fc.poisson_deviance:
            Z = Z / 10   # exp(z) within range
        for weights in (None, w):
            loss, dZ = fast(Z, Y, sample_weight=weights)
            r_loss, r_dZ = ref(Z.astype(np.float64), Y.astype(np.float64),
                               sample_weight=weights)
            assert abs(loss - r_loss) <= (1e-5 if dtype == np.float32 else 1e-12) * \
                abs(r_loss)
            close(dZ, r_dZ, dtype, "dZ")


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_sigmoid_log_softmax_l2(rng, dtype):
    Z = data(rng, 5, 3, dtype=dtype)
    z64 = Z.astype(np.float64)
    close(fc.softmax(Z), R.softmax(z64), dtype, "softmax")
    close(fc.log_softmax(Z), R.log_softmax(z64), dtype, "log_softmax")
    close(fc.sigmoid(Z), R.sigmoid(z64), dtype, "sigmoid")
    close(fc.l2_grad(Z, 0.5, 7), R.l2_grad(z64, 0.5, 7), dtype, "l2_grad")
    assert np.isclose(fc.l2_cost([cuda.to_device(Z), Z], 0.5, 7),
                      R.l2_cost([z64, z64], 0.5, 7), rtol=1e-12)


def test_loss_errors_name_the_argument(rng):
    Z = data(rng, 4, 3)
    with pytest.raises(ValueError, match="Y must have shape"):
        fc.softmax_cross_entropy(Z, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="labels must lie"):
        fc.softmax_cross_entropy(Z, np.array([0, 1, 2, 3]))


@pytest.mark.parametrize("transA,transB", [(False, False), (True, False), (False, True)])
def test_gemm_transposes_alpha_beta(rng, transA, transB):
    A, B = data(rng, 4, 3), data(rng, 3, 5)
    A = A.T.copy() if transA else A
    B = B.T.copy() if transB else B
    C = data(rng, 4, 5)
    out = cuda.to_device(C)
    _device.gemm(cuda.to_device(A), cuda.to_device(B), out, transA, transB, 0.5, 2.0)
    want = 0.5 * (A.T if transA else A) @ (B.T if transB else B) + 2.0 * C
    assert_close(out.copy_to_host(), want, name="gemm")
