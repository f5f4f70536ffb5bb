"""Reference BatchNorm: batch vs running statistics, gradients by central differences."""
import numpy as np
import pytest
from helpers import assert_close, numerical_gradient, relative_difference

from fastdnn.reference import (batchnorm_activation_backward, batchnorm_activation_forward,
                               batchnorm_backward, batchnorm_forward, dropout_mask)

KEY = 987654321


def params(rng, n=3, dtype=np.float64):
    gamma = (1 + 0.5 * rng.standard_normal(n)).astype(dtype)
    beta = rng.standard_normal(n).astype(dtype)
    running_mean = rng.standard_normal(n).astype(dtype)
    running_var = (1 + rng.random(n)).astype(dtype)
    return gamma, beta, running_mean, running_var


def test_training_uses_batch_stats_and_normalises(rng):
    Z = 3 * rng.standard_normal((50, 4)) + np.array([1.0, -2.0, 0.0, 5.0])
    gamma, beta, rm, rv = params(rng, 4)
    out, x_hat, inv_std = batchnorm_forward(Z, gamma, beta, rm, rv)
    assert_close(x_hat.mean(axis=0), np.zeros(4), atol=1e-12)
    # biased variance, and eps = 1e-5 is small next to var ~ 9
    assert_close(x_hat.var(axis=0), Z.var(axis=0) / (Z.var(axis=0) + 1e-5))
    assert_close(x_hat.var(axis=0), np.ones(4), rtol=1e-5)
    assert_close(inv_std, 1 / np.sqrt(Z.var(axis=0) + 1e-5))
    assert_close(x_hat, (Z - Z.mean(axis=0)) * inv_std)
    assert_close(out, gamma * x_hat + beta)


def test_running_stats_course_convention_by_hand():
    Z = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 16.0]])  # mean [3, 12], biased var [8/3, 8]
    gamma, beta = np.ones(2), np.zeros(2)
    rm, rv = np.array([1.0, 2.0]), np.array([4.0, 0.5])
    rm_id, rv_id = id(rm), id(rv)
    batchnorm_forward(Z, gamma, beta, rm, rv, momentum=0.9)
    assert id(rm) == rm_id and id(rv) == rv_id
    assert_close(rm, [0.9 * 1 + 0.1 * 3, 0.9 * 2 + 0.1 * 12])      # [1.2, 3.0]
    assert_close(rv, [0.9 * 4 + 0.1 * 8 / 3, 0.9 * 0.5 + 0.1 * 8])  # [3.8667, 1.25]
    assert_close(rm, [1.2, 3.0])
    assert_close(rv, [3.6 + 0.8 / 3, 1.25])


def test_running_stats_momentum_extremes(rng):
    Z = rng.standard_normal((6, 2))
    gamma, beta, rm, rv = params(rng, 2)
    rm0, rv0 = rm.copy(), rv.copy()
    batchnorm_forward(Z, gamma, beta, rm, rv, momentum=1.0)
    assert np.array_equal(rm, rm0) and np.array_equal(rv, rv0)
    batchnorm_forward(Z, gamma, beta, rm, rv, momentum=0.0)
    assert_close(rm, Z.mean(axis=0))
    assert_close(rv, Z.var(axis=0))


def test_inference_uses_running_stats_and_changes_nothing(rng):
    Z = rng.standard_normal((5, 3))
    gamma, beta, rm, rv = params(rng)
    saved = [a.copy() for a in (Z, gamma, beta, rm, rv)]
    out, x_hat, inv_std = batchnorm_forward(Z, gamma, beta, rm, rv, eps=1e-3, training=False)
    assert x_hat is None and inv_std is None
    assert_close(out, gamma * (Z - rm) / np.sqrt(rv + 1e-3) + beta)
    for a, b in zip((Z, gamma, beta, rm, rv), saved):
        assert np.array_equal(a, b)


def test_inference_of_one_row_by_hand():
    out, _, _ = batchnorm_forward(np.array([[3.0, -1.0]]), np.array([2.0, 1.0]),
                                  np.array([0.5, 0.0]), np.array([1.0, -1.0]),
                                  np.array([4.0, 1.0]), eps=1e-300, training=False)
    assert_close(out, [[2.0 * (3 - 1) / 2 + 0.5, 0.0]])


def bn_loss(Z, gamma, beta, G):
    out, _, _ = batchnorm_forward(Z, gamma, beta, np.zeros(Z.shape[1]), np.ones(Z.shape[1]))
    return float((G * out).sum())


@pytest.mark.parametrize("m", [2, 5])
def test_backward_matches_central_differences(m, rng):
    Z = 2 * rng.standard_normal((m, 3)) + 1
    gamma, beta, _, _ = params(rng)
    G = rng.standard_normal((m, 3))
    _, x_hat, inv_std = batchnorm_forward(Z, gamma, beta, np.zeros(3), np.ones(3))
    dZ, dgamma, dbeta = batchnorm_backward(G.copy(), x_hat, inv_std, gamma)

    def loss():
        return bn_loss(Z, gamma, beta, G)

    assert relative_difference(dZ, numerical_gradient(loss, Z)) < 1e-7
    assert relative_difference(dgamma, numerical_gradient(loss, gamma)) < 1e-7
    assert relative_difference(dbeta, numerical_gradient(loss, beta)) < 1e-7


@pytest.mark.parametrize("activation,keep_prob", [("identity", 1.0), ("tanh", 1.0),
                                                  ("relu", 0.7), ("sigmoid", 0.5),
                                                  ("leaky_relu", 0.8)])
def test_activation_backward_matches_central_differences(activation, keep_prob, rng):
    Z = rng.standard_normal((6, 4))
    gamma, beta, _, _ = params(rng, 4)
    G = rng.standard_normal((6, 4))

    def loss():
        out, *_ = batchnorm_activation_forward(Z, gamma, beta, np.zeros(4), np.ones(4),
                                               activation=activation, keep_prob=keep_prob,
                                               key=KEY)
        return float((G * out).sum())

    out, act, x_hat, inv_std = batchnorm_activation_forward(
        Z, gamma, beta, np.zeros(4), np.ones(4), activation=activation,
        keep_prob=keep_prob, key=KEY)
    dZ, dgamma, dbeta = batchnorm_activation_backward(G.copy(), act, x_hat, inv_std, gamma,
                                                      activation, keep_prob, KEY)
    assert relative_difference(dZ, numerical_gradient(loss, Z)) < 1e-7
    assert relative_difference(dgamma, numerical_gradient(loss, gamma)) < 1e-7
    assert relative_difference(dbeta, numerical_gradient(loss, beta)) < 1e-7


def test_activation_forward_composes(rng):
    Z = rng.standard_normal((6, 4))
    gamma, beta, rm, rv = params(rng, 4)
    rm2, rv2 = rm.copy(), rv.copy()
    out, act, x_hat, inv_std = batchnorm_activation_forward(
        Z, gamma, beta, rm, rv, activation="relu", keep_prob=0.5, key=KEY)
    y, x_hat2, _ = batchnorm_forward(Z, gamma, beta, rm2, rv2)
    assert_close(act, np.maximum(y, 0))
    assert_close(out, np.where(dropout_mask(act.shape, 0.5, KEY), act / 0.5, 0.0))
    assert_close(rm, rm2)
    assert_close(rv, rv2)
    # inference: no dropout, running stats unchanged
    saved = rm.copy(), rv.copy()
    out, act, x_hat, inv_std = batchnorm_activation_forward(
        Z, gamma, beta, rm, rv, training=False, activation="tanh", keep_prob=0.5, key=KEY)
    assert x_hat is None and inv_std is None
    assert_close(out, act)
    assert_close(act, np.tanh(gamma * (Z - rm) / np.sqrt(rv + 1e-5) + beta))
    assert np.array_equal(rm, saved[0]) and np.array_equal(rv, saved[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype, rng):
    Z = rng.standard_normal((5, 3)).astype(dtype)
    gamma, beta, rm, rv = params(rng, dtype=dtype)
    out, x_hat, inv_std = batchnorm_forward(Z, gamma, beta, rm, rv)
    assert out.dtype == x_hat.dtype == inv_std.dtype == rm.dtype == rv.dtype == dtype
    assert batchnorm_forward(Z, gamma, beta, rm, rv, training=False)[0].dtype == dtype
    assert all(g.dtype == dtype for g in batchnorm_backward(out, x_hat, inv_std, gamma))
    res = batchnorm_activation_forward(Z, gamma, beta, rm, rv, activation="sigmoid",
                                       keep_prob=0.6, key=KEY)
    assert all(r.dtype == dtype for r in res)
    grads = batchnorm_activation_backward(res[0], *res[1:], gamma, "sigmoid", 0.6, KEY)
    assert all(g.dtype == dtype for g in grads)


def test_float32_gamma_float64_keeps_Z_dtype(rng):
    """float64 parameters with a float32 batch: outputs follow Z in both modes."""
    Z = rng.standard_normal((5, 3)).astype(np.float32)
    gamma, beta, rm, rv = params(rng)
    assert batchnorm_forward(Z, gamma, beta, rm, rv)[0].dtype == np.float32
    assert batchnorm_forward(Z, gamma, beta, rm, rv, training=False)[0].dtype == np.float32


def test_float32_close_to_float64(rng):
    Z = rng.standard_normal((9, 5))
    gamma, beta, rm, rv = params(rng, 5)
    G = rng.standard_normal((9, 5))
    f = lambda a: a.astype(np.float32)  # noqa: E731
    out64, xh64, is64 = batchnorm_forward(Z, gamma, beta, rm.copy(), rv.copy())
    out32, xh32, is32 = batchnorm_forward(f(Z), f(gamma), f(beta), f(rm), f(rv))
    assert_close(out32, out64, dtype=np.float32, rtol=1e-5, atol=1e-5)
    for a, e in zip(batchnorm_backward(f(G), xh32, is32, f(gamma)),
                    batchnorm_backward(G, xh64, is64, gamma)):
        assert_close(a, e, dtype=np.float32, rtol=1e-4, atol=1e-5)


def test_out_buffers(rng):
    Z = rng.standard_normal((5, 3))
    gamma, beta, rm, rv = params(rng)
    ref = batchnorm_forward(Z, gamma, beta, rm.copy(), rv.copy())
    bufs = dict(out=np.empty((5, 3)), x_hat_out=np.empty((5, 3)), inv_std_out=np.empty(3))
    got = batchnorm_forward(Z, gamma, beta, rm.copy(), rv.copy(), **bufs)
    for g, b, r in zip(got, bufs.values(), ref):
        assert g is b
        assert_close(g, r)
    G = rng.standard_normal((5, 3))
    ref = batchnorm_backward(G.copy(), ref[1], ref[2], gamma)
    bufs = dict(dZ_out=np.empty((5, 3)), dgamma_out=np.empty(3), dbeta_out=np.empty(3))
    got = batchnorm_backward(G.copy(), got[1], got[2], gamma, **bufs)
    for g, b, r in zip(got, bufs.values(), ref):
        assert g is b
        assert_close(g, r)

    ref = batchnorm_activation_forward(Z, gamma, beta, rm.copy(), rv.copy(),
                                       activation="relu", keep_prob=0.5, key=KEY)
    bufs = dict(out=np.empty((5, 3)), act_out=np.empty((5, 3)), x_hat_out=np.empty((5, 3)),
                inv_std_out=np.empty(3))
    got = batchnorm_activation_forward(Z, gamma, beta, rm.copy(), rv.copy(),
                                       activation="relu", keep_prob=0.5, key=KEY, **bufs)
    for g, b, r in zip(got, bufs.values(), ref):
        assert g is b
        assert_close(g, r)
    ref = batchnorm_activation_backward(G.copy(), *ref[1:], gamma, "relu", 0.5, KEY)
    bufs = dict(dZ_out=np.empty((5, 3)), dgamma_out=np.empty(3), dbeta_out=np.empty(3))
    got = batchnorm_activation_backward(G.copy(), *got[1:], gamma, "relu", 0.5, KEY, **bufs)
    for g, b, r in zip(got, bufs.values(), ref):
        assert g is b
        assert_close(g, r)


def test_bad_arguments(rng):
    Z = rng.standard_normal((5, 3))
    gamma, beta, rm, rv = params(rng)
    for name, i in [("gamma", 0), ("beta", 1), ("running_mean", 2), ("running_var", 3)]:
        args = [gamma, beta, rm, rv]
        args[i] = args[i][:2]
        with pytest.raises(ValueError, match=f"{name} must have shape"):
            batchnorm_forward(Z, *args)
    with pytest.raises(ValueError, match="momentum"):
        batchnorm_forward(Z, gamma, beta, rm, rv, momentum=1.5)
    with pytest.raises(ValueError, match="eps"):
        batchnorm_forward(Z, gamma, beta, rm, rv, eps=0.0)
    with pytest.raises(TypeError, match="Z must have dtype"):
        batchnorm_forward(Z.astype(np.int32), gamma, beta, rm, rv)
    with pytest.raises(ValueError, match="Z must not be empty"):
        batchnorm_forward(Z[:0], gamma, beta, rm, rv)
    with pytest.raises(ValueError, match="activation"):
        batchnorm_activation_forward(Z, gamma, beta, rm, rv, activation="gelu")
    with pytest.raises(ValueError, match="keep_prob"):
        batchnorm_activation_forward(Z, gamma, beta, rm, rv, keep_prob=0)
    out, x_hat, inv_std = batchnorm_forward(Z, gamma, beta, rm, rv)
    with pytest.raises(ValueError, match="d_out must have shape"):
        batchnorm_backward(out[:, :2], x_hat, inv_std, gamma)
    with pytest.raises(ValueError, match="inv_std must have shape"):
        batchnorm_backward(out, x_hat, inv_std[:2], gamma)
    with pytest.raises(ValueError, match="gamma must have shape"):
        batchnorm_backward(out, x_hat, inv_std, gamma[:2])


def test_bad_argument_leaves_running_stats_untouched(rng):
    Z = rng.standard_normal((5, 3))
    gamma, beta, rm, rv = params(rng)
    saved = rm.copy(), rv.copy()
    with pytest.raises(ValueError, match="activation"):
        batchnorm_activation_forward(Z, gamma, beta, rm, rv, activation="gelu")
    with pytest.raises(ValueError, match="keep_prob"):
        batchnorm_activation_forward(Z, gamma, beta, rm, rv, keep_prob=1.5)
    assert np.array_equal(rm, saved[0]) and np.array_equal(rv, saved[1])


def test_batch_of_one_gives_beta_and_zero_dZ(rng):
    Z = rng.standard_normal((1, 3))
    gamma, beta, rm, rv = params(rng)
    out, x_hat, inv_std = batchnorm_forward(Z, gamma, beta, rm, rv)
    assert_close(out, beta[None, :])
    dZ, dgamma, dbeta = batchnorm_backward(np.ones((1, 3)), x_hat, inv_std, gamma)
    assert np.abs(dZ).max() == 0
    assert_close(dbeta, np.ones(3))
    assert_close(dgamma, np.zeros(3))


def test_non_contiguous_batch(rng):
    big = rng.standard_normal((12, 8))
    Z = big[::2, 1::2]
    gamma, beta, rm, rv = params(rng, 4)
    got = batchnorm_forward(Z, gamma, beta, rm.copy(), rv.copy())
    ref = batchnorm_forward(np.ascontiguousarray(Z), gamma, beta, rm.copy(), rv.copy())
    for a, e in zip(got, ref):
        assert_close(a, e)
