"""Reference dense layer: forward by hand, backward against central differences."""
import itertools

import numpy as np
import pytest
from helpers import assert_close, numerical_gradient, relative_difference

from fastdnn.reference import (ACTIVATIONS, activation_backward, activation_forward,
                               dense_backward, dense_forward, dropout_mask, l2_cost)

NAMES = sorted(ACTIVATIONS)
KEY = 0x1234_5678_9ABC_DEF0


def layer(rng, m=5, n_in=4, n_out=3, dtype=np.float64):
    X = rng.standard_normal((m, n_in)).astype(dtype)
    W = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    return X, W, b


def test_forward_by_hand():
    X = np.array([[1.0, 2.0], [-1.0, 0.5]])
    W = np.array([[1.0, -1.0], [0.5, 2.0], [0.0, 1.0]])
    b = np.array([0.5, -4.0, 0.0])
    out, act = dense_forward(X, W, b, "relu")
    Z = np.array([[1 - 2 + 0.5, 0.5 + 4 - 4, 2.0], [-1 - 0.5 + 0.5, -0.5 + 1 - 4, 0.5]])
    assert_close(act, np.maximum(Z, 0))
    assert_close(out, act)
    out, act = dense_forward(X, W, None, "identity")
    assert_close(out, Z - b)


@pytest.mark.parametrize("name", NAMES)
def test_forward_with_dropout_applies_mask(name, rng):
    X, W, b = layer(rng)
    out, act = dense_forward(X, W, b, name, keep_prob=0.6, key=KEY)
    assert_close(act, activation_forward(X @ W.T + b, name))
    mask = dropout_mask(act.shape, 0.6, KEY)
    assert_close(out, np.where(mask, act / 0.6, 0.0))


CASES = list(itertools.product(NAMES, [True, False], [0.0, 0.7], [1.0, 0.6]))


@pytest.mark.parametrize("name,with_bias,lambd,keep_prob", CASES)
def test_backward_matches_central_differences(name, with_bias, lambd, keep_prob, rng):
    X, W, b = layer(rng)
    if not with_bias:
        b = None
    G = rng.standard_normal((X.shape[0], W.shape[0]))
    m = X.shape[0]

    def loss():
        out, _ = dense_forward(X, W, b, name, keep_prob, KEY)
        return float((G * out).sum()) + l2_cost([W], lambd, m)

    _, act = dense_forward(X, W, b, name, keep_prob, KEY)
    dX, dW, db = dense_backward(G.copy(), X, W, act, name, keep_prob, KEY, lambd=lambd,
                                with_bias=with_bias)
    assert relative_difference(dX, numerical_gradient(loss, X)) < 1e-7
    assert relative_difference(dW, numerical_gradient(loss, W)) < 1e-7
    if with_bias:
        assert relative_difference(db, numerical_gradient(loss, b)) < 1e-7
    else:
        assert db is None


def test_backward_l2_term_is_lambd_over_m_times_W(rng):
    X, W, b = layer(rng)
    _, act = dense_forward(X, W, b, "tanh")
    G = rng.standard_normal((5, 3))
    _, dW0, _ = dense_backward(G, X, W, act, "tanh")
    _, dW1, _ = dense_backward(G, X, W, act, "tanh", lambd=2.0)
    assert_close(dW1 - dW0, (2.0 / 5) * W)


def test_need_dX_false_and_d_out_untouched_result(rng):
    X, W, b = layer(rng)
    _, act = dense_forward(X, W, b, "sigmoid")
    G = rng.standard_normal((5, 3))
    dX, dW, db = dense_backward(G.copy(), X, W, act, "sigmoid", need_dX=False)
    assert dX is None
    dX2, dW2, db2 = dense_backward(G.copy(), X, W, act, "sigmoid")
    assert_close(dW, dW2)
    assert_close(db, db2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype, rng):
    X, W, b = layer(rng, dtype=dtype)
    out, act = dense_forward(X, W, b, "leaky_relu", 0.8, KEY)
    assert out.dtype == act.dtype == dtype
    dX, dW, db = dense_backward(out.copy(), X, W, act, "leaky_relu", 0.8, KEY, lambd=0.1)
    assert dX.dtype == dW.dtype == db.dtype == dtype


def test_float32_close_to_float64(rng):
    X, W, b = layer(rng, m=7, n_in=6, n_out=5)
    G = rng.standard_normal((7, 5))
    f32 = [a.astype(np.float32) for a in (X, W, b, G)]
    out64, act64 = dense_forward(X, W, b, "tanh", 0.7, KEY)
    out32, act32 = dense_forward(*f32[:3], "tanh", 0.7, KEY)
    assert_close(out32, out64, dtype=np.float32)
    g64 = dense_backward(G, X, W, act64, "tanh", 0.7, KEY, lambd=0.3)
    g32 = dense_backward(f32[3], *f32[:2], act32, "tanh", 0.7, KEY, lambd=0.3)
    for a, e in zip(g32, g64):
        assert_close(a, e, dtype=np.float32, rtol=1e-4, atol=1e-5)


def test_out_buffers(rng):
    X, W, b = layer(rng)
    ref_out, ref_act = dense_forward(X, W, b, "relu", 0.5, KEY)
    out_buf, act_buf = np.empty((5, 3)), np.empty((5, 3))
    out, act = dense_forward(X, W, b, "relu", 0.5, KEY, out=out_buf, act_out=act_buf)
    assert out is out_buf and act is act_buf
    assert_close(out_buf, ref_out)
    assert_close(act_buf, ref_act)

    G = rng.standard_normal((5, 3))
    ref = dense_backward(G.copy(), X, W, act, "relu", 0.5, KEY, lambd=0.2)
    bufs = dict(dX_out=np.empty((5, 4)), dW_out=np.empty((3, 4)), db_out=np.empty(3),
                dZ_out=np.empty((5, 3)))
    got = dense_backward(G.copy(), X, W, act, "relu", 0.5, KEY, lambd=0.2, **bufs)
    assert got[0] is bufs["dX_out"] and got[1] is bufs["dW_out"] and got[2] is bufs["db_out"]
    for a, e in zip(got, ref):
        assert_close(a, e)
    mask = dropout_mask((5, 3), 0.5, KEY)
    assert_close(bufs["dZ_out"], activation_backward(np.where(mask, G / 0.5, 0.0), act, "relu"))


def test_wrong_out_buffer_shape(rng):
    X, W, b = layer(rng)
    with pytest.raises(ValueError, match="shape"):
        dense_forward(X, W, b, out=np.empty((3, 5)))


def test_awkward_shapes(rng):
    for m, n_in, n_out in [(1, 1, 1), (1, 3, 1), (3, 1, 5)]:
        X, W, b = layer(rng, m, n_in, n_out)
        out, act = dense_forward(X, W, b, "tanh")
        assert out.shape == (m, n_out)
        dX, dW, db = dense_backward(np.ones_like(out), X, W, act, "tanh")
        assert dX.shape == X.shape and dW.shape == W.shape and db.shape == b.shape


def test_non_contiguous_input(rng):
    big = rng.standard_normal((10, 8))
    X = big[::2, ::2]
    W = rng.standard_normal((3, 4))
    out, _ = dense_forward(X, W)
    assert_close(out, np.ascontiguousarray(X) @ W.T)


def test_bad_arguments(rng):
    X, W, b = layer(rng)
    with pytest.raises(ValueError, match="W must have shape"):
        dense_forward(X, W.T, b)
    with pytest.raises(ValueError, match="b must have shape"):
        dense_forward(X, W, b[:2])
    with pytest.raises(TypeError, match="W has dtype"):
        dense_forward(X, W.astype(np.float32), b)
    with pytest.raises(TypeError, match="b has dtype"):
        dense_forward(X, W, b.astype(np.float32))
    with pytest.raises(TypeError, match="X must have dtype"):
        dense_forward(X.astype(np.int64), W, b)
    with pytest.raises(ValueError, match="X must be 2-D"):
        dense_forward(X[0], W, b)
    with pytest.raises(ValueError, match="X must not be empty"):
        dense_forward(X[:0], W, b)
    with pytest.raises(TypeError, match="X must be a NumPy array"):
        dense_forward(X.tolist(), W, b)
    with pytest.raises(ValueError, match="activation"):
        dense_forward(X, W, b, "swish")
    for keep_prob in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match="keep_prob"):
            dense_forward(X, W, b, "relu", keep_prob, KEY)
    out, act = dense_forward(X, W, b, "relu")
    with pytest.raises(ValueError, match="d_out must have shape"):
        dense_backward(out[:, :2], X, W, act, "relu")
    with pytest.raises(ValueError, match="act must have shape"):
        dense_backward(out, X, W, act[:2], "relu")
    with pytest.raises(ValueError, match="keep_prob"):
        dense_backward(out, X, W, act, "relu", keep_prob=0.0)
    with pytest.raises(ValueError, match="lambd"):
        dense_backward(out, X, W, act, "relu", lambd=-1.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X_is_rejected(bad, rng):
    X, W, b = layer(rng)
    X[2, 1] = bad
    with pytest.raises(ValueError, match=r"X contains NaN or inf \(first at index \(2, 1\)\)"):
        dense_forward(X, W, b)


@pytest.mark.parametrize("m,n_in,n_out", [(1, 1, 1), (1, 3, 1), (3, 1, 5), (2, 3, 1)])
def test_backward_awkward_shapes_match_central_differences(m, n_in, n_out, rng):
    X, W, b = layer(rng, m, n_in, n_out)
    G = rng.standard_normal((m, n_out))

    def loss():
        out, _ = dense_forward(X, W, b, "tanh", 0.75, KEY)
        return float((G * out).sum()) + l2_cost([W], 0.3, m)

    _, act = dense_forward(X, W, b, "tanh", 0.75, KEY)
    dX, dW, db = dense_backward(G.copy(), X, W, act, "tanh", 0.75, KEY, lambd=0.3)
    for analytic, x in [(dX, X), (dW, W), (db, b)]:
        numeric = numerical_gradient(loss, x)
        if np.abs(numeric).max() == 0:  # every unit dropped: both must be exactly zero
            assert np.abs(analytic).max() == 0
        else:
            assert relative_difference(analytic, numeric) < 1e-7
