"""fastdnn.cpu batch normalisation and losses against the NumPy reference."""
import numpy as np
import pytest

import fastdnn.cpu as C
import fastdnn.reference as R
from fastdnn.rng import dropout_key
from helpers import assert_close


def _bn(rng, m, n, dtype=np.float64):
    Z = (rng.standard_normal((m, n)) * 2 + 1).astype(dtype)
    gamma = (1 + 0.1 * rng.standard_normal(n)).astype(dtype)
    beta = (0.1 * rng.standard_normal(n)).astype(dtype)
    rm = (0.1 * rng.standard_normal(n)).astype(dtype)
    rv = (1 + rng.random(n)).astype(dtype)
    return Z, gamma, beta, rm, rv


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (37, 13), (130, 5), (1024, 3)])
@pytest.mark.parametrize("activation,keep_prob", [("identity", 1.0), ("relu", 0.8),
                                                  ("tanh", 0.5), ("sigmoid", 1.0)])
def test_batchnorm_activation_matches_reference(rng, shape, activation, keep_prob):
    Z, gamma, beta, rm, rv = _bn(rng, *shape)
    key = dropout_key(3, 4, 5)
    rm_c, rv_c, rm_r, rv_r = rm.copy(), rv.copy(), rm.copy(), rv.copy()
    got = C.batchnorm_activation_forward(Z, gamma, beta, rm_c, rv_c, 0.8, 1e-5, True,
                                         activation, keep_prob, key)
    want = R.batchnorm_activation_forward(Z, gamma, beta, rm_r, rv_r, 0.8, 1e-5, True,
                                          activation, keep_prob, key)
    for name, g, w in zip(("out", "act", "x_hat", "inv_std"), got, want):
        assert_close(g, w, name=name)
    assert_close(rm_c, rm_r, name="running_mean")
    assert_close(rv_c, rv_r, name="running_var")
    d = rng.standard_normal(Z.shape)
    g = C.batchnorm_activation_backward(d.copy(), got[1], got[2], got[3], gamma,
                                        activation, keep_prob, key)
    w = R.batchnorm_activation_backward(d.copy(), want[1], want[2], want[3], gamma,
                                        activation, keep_prob, key)
    for name, a, b in zip(("dZ", "dgamma", "dbeta"), g, w):
        assert_close(a, b, name=name, atol=1e-10)
    # into a separate dZ (the kernel compiled for d_out apart from dZ): the same result
    apart = C.batchnorm_activation_backward(d, got[1], got[2], got[3], gamma, activation,
                                            keep_prob, key, dZ_out=np.empty(Z.shape))
    for name, a, b in zip(("dZ", "dgamma", "dbeta"), apart, g):
        np.testing.assert_array_equal(a, b, err_msg=name)
    # inference: one affine pass with the running statistics, nothing updated
    out, act, x_hat, inv_std = C.batchnorm_activation_forward(
        Z, gamma, beta, rm_c, rv_c, 0.8, 1e-5, False, activation, keep_prob, key)
    r_out, r_act, _, _ = R.batchnorm_activation_forward(
        Z, gamma, beta, rm_r, rv_r, 0.8, 1e-5, False, activation, keep_prob, key)
    assert x_hat is None and inv_std is None
    assert_close(out, r_out)
    assert_close(act, r_act)
    assert_close(rm_c, rm_r)


def test_plain_batchnorm_and_float32(rng):
    Z, gamma, beta, rm, rv = _bn(rng, 200, 7)
    rm2, rv2 = rm.copy(), rv.copy()
    got = C.batchnorm_forward(Z, gamma, beta, rm, rv)
    want = R.batchnorm_forward(Z, gamma, beta, rm2, rv2)
    for g, w in zip(got, want):
        assert_close(g, w)
    d = rng.standard_normal(Z.shape)
    for g, w in zip(C.batchnorm_backward(d.copy(), got[1], got[2], gamma),
                    R.batchnorm_backward(d.copy(), want[1], want[2], gamma)):
        assert_close(g, w, atol=1e-10)
    f = [a.astype(np.float32) for a in (Z, gamma, beta, rm, rv)]
    out, x_hat, inv_std = C.batchnorm_forward(*f)
    assert out.dtype == np.float32
    r_out, r_xhat, r_inv = R.batchnorm_forward(*[a.astype(np.float64) for a in f])
    assert_close(out, r_out, dtype=np.float32, atol=1e-5)
    assert_close(f[3], rm.astype(np.float32) * 0 + f[3])  # updated in place, finite
    d32 = d.astype(np.float32)
    g = C.batchnorm_backward(d32, x_hat, inv_std, f[1])
    w = R.batchnorm_backward(d, r_xhat, r_inv, f[1].astype(np.float64))
    for a, b in zip(g, w):
        assert_close(a, b, dtype=np.float32, rtol=1e-4, atol=1e-5)


def test_batchnorm_buffers_and_errors(rng):
    Z, gamma, beta, rm, rv = _bn(rng, 6, 4)
    bufs = dict(out=np.empty((6, 4)), act_out=np.empty((6, 4)), x_hat_out=np.empty((6, 4)),
                inv_std_out=np.empty(4))
    got = C.batchnorm_activation_forward(Z, gamma, beta, rm, rv, activation="relu",
                                         keep_prob=0.5, key=9, **bufs)
    assert all(g is b for g, b in zip(got, bufs.values()))
    with pytest.raises(ValueError, match="gamma must have shape"):
        C.batchnorm_forward(Z, gamma[:2], beta, rm, rv)
    with pytest.raises(TypeError, match="beta has dtype float32"):
        C.batchnorm_forward(Z, gamma, beta.astype(np.float32), rm, rv)
    Z[1, 1] = np.nan
    with pytest.raises(ValueError, match="Z contains NaN"):
        C.batchnorm_forward(Z, gamma, beta, rm, rv)


@pytest.mark.parametrize("m,k", [(1, 1), (1, 3), (37, 13), (1024, 10)])
def test_losses_match_reference(rng, m, k):
    Z = rng.standard_normal((m, k)) * 4
    labels = rng.integers(0, k, m)
    Y = R.one_hot(labels, k)
    P = rng.random((m, k))
    for Ytarget in (labels, Y, labels.astype(np.int32)):
        loss, dZ = C.softmax_cross_entropy(Z, Ytarget)
        r_loss, r_dZ = R.softmax_cross_entropy(Z, Ytarget)
        assert abs(loss - r_loss) <= 1e-10 * abs(r_loss) + 1e-12
        assert_close(dZ, r_dZ)
    w = rng.random(m) * 2
    for fast, ref in [(C.sigmoid_cross_entropy, R.sigmoid_cross_entropy),
                      (C.mean_squared_error, R.mean_squared_error),
                      (C.poisson_deviance, R.poisson_deviance),
                      (C.softmax_cross_entropy, R.softmax_cross_entropy)]:
        for weights in (None, w):
            loss, dZ = fast(Z, P, sample_weight=weights)
            r_loss, r_dZ = ref(Z, P, sample_weight=weights)
            assert abs(loss - r_loss) <= 1e-10 * abs(r_loss) + 1e-12
            assert_close(dZ, r_dZ)
    loss, dZ = C.softmax_cross_entropy(Z, labels, sample_weight=w)
    r_loss, r_dZ = R.softmax_cross_entropy(Z, labels, sample_weight=w)
    assert abs(loss - r_loss) <= 1e-10 * abs(r_loss)
    assert_close(dZ, r_dZ)
    assert_close(C.softmax(Z), R.softmax(Z))
    assert_close(C.sigmoid(Z), R.sigmoid(Z))
    Z32 = Z.astype(np.float32)
    loss, dZ = C.softmax_cross_entropy(Z32, labels, dZ_out=np.empty((m, k), np.float32))
    r_loss, r_dZ = R.softmax_cross_entropy(Z32.astype(np.float64), labels)
    assert dZ.dtype == np.float32
    assert abs(loss - r_loss) <= 1e-5 * abs(r_loss) + 1e-6
    assert_close(dZ, r_dZ, dtype=np.float32, atol=1e-7)


def test_loss_errors(rng):
    Z = rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match="Y labels must lie in"):
        C.softmax_cross_entropy(Z, np.array([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="Y must have shape"):
        C.softmax_cross_entropy(Z, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="dZ_out must have shape"):
        C.softmax_cross_entropy(Z, np.array([0, 1, 2, 0]), dZ_out=np.empty((3, 3)))
