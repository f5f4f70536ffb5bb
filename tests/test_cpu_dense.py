"""fastdnn.cpu dense layer, activations and dropout against the NumPy reference."""
import numpy as np
import pytest

import fastdnn.cpu as C
import fastdnn.reference as R
from fastdnn.formulas import ACTIVATION_CODES
from fastdnn.rng import dropout_key
from helpers import assert_close

SHAPES = [(1, 1, 1), (1, 3, 2), (37, 13, 3), (5, 1, 7), (130, 20, 65)]
ACTS = sorted(ACTIVATION_CODES)


def _layer(rng, m, n_in, n_out, dtype=np.float64):
    X = rng.standard_normal((m, n_in))
    W = rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
    b = rng.standard_normal(n_out)
    return X.astype(dtype), W.astype(dtype), b.astype(dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("activation", ACTS)
def test_dense_forward_backward_match_reference_float64(rng, shape, activation):
    X, W, b = _layer(rng, *shape)
    key = dropout_key(7, 3, 1)
    for keep_prob, lambd in [(1.0, 0.0), (0.7, 0.3)]:
        out, act = C.dense_forward(X, W, b, activation, keep_prob, key)
        r_out, r_act = R.dense_forward(X, W, b, activation, keep_prob, key)
        assert_close(act, r_act, name="act")
        assert_close(out, r_out, name="out")
        d = rng.standard_normal(out.shape)
        got = C.dense_backward(d.copy(), X, W, act, activation, keep_prob, key, lambd)
        want = R.dense_backward(d.copy(), X, W, r_act, activation, keep_prob, key, lambd)
        for name, g, w in zip(("dX", "dW", "db"), got, want):
            assert_close(g, w, name=name)


@pytest.mark.parametrize("activation", ACTS)
def test_dense_float32_against_float64_reference(rng, activation):
    X, W, b = _layer(rng, 1024, 17, 33)
    key = dropout_key(1, 2, 3)
    X32, W32, b32 = (a.astype(np.float32) for a in (X, W, b))
    out, act = C.dense_forward(X32, W32, b32, activation, 0.8, key)
    assert out.dtype == act.dtype == np.float32
    r_out, r_act = R.dense_forward(X32.astype(np.float64), W32.astype(np.float64),
                                   b32.astype(np.float64), activation, 0.8, key)
    assert_close(act, r_act, dtype=np.float32, atol=1e-5)
    assert_close(out, r_out, dtype=np.float32, atol=1e-5)
    d = rng.standard_normal(out.shape)
    dX, dW, db = C.dense_backward(d.astype(np.float32), X32, W32, act, activation, 0.8, key,
                                  0.5)
    rX, rW, rb = R.dense_backward(d, X32.astype(np.float64), W32.astype(np.float64),
                                  act.astype(np.float64), activation, 0.8, key, 0.5)
    assert dX.dtype == dW.dtype == db.dtype == np.float32
    assert_close(dX, rX, dtype=np.float32, atol=1e-5)
    assert_close(dW, rW, dtype=np.float32, rtol=1e-4, atol=1e-4)
    assert_close(db, rb, dtype=np.float32, rtol=1e-4, atol=1e-4)


def test_dense_non_contiguous_inputs(rng):
    X, W, b = _layer(rng, 20, 22, 9)
    Xs = X[:, ::2]                      # strided view
    Xt = np.asfortranarray(X[:, :11])   # transposed layout
    Ws = W[:, ::2]
    for Xn in (Xs, Xt):
        out, act = C.dense_forward(Xn, Ws, b, "tanh", 0.9, 5)
        r_out, r_act = R.dense_forward(Xn, Ws, b, "tanh", 0.9, 5)
        assert_close(out, r_out)
        d = rng.standard_normal(out.shape)[:, :]
        d_nc = np.asfortranarray(d)
        got = C.dense_backward(d_nc, Xn, Ws, act, "tanh", 0.9, 5, 0.1)
        want = R.dense_backward(d.copy(), Xn, Ws, r_act, "tanh", 0.9, 5, 0.1)
        for g, w in zip(got, want):
            assert_close(g, w)


def test_dense_options_and_buffers(rng):
    X, W, b = _layer(rng, 9, 4, 3)
    buf_out, buf_act = np.empty((9, 3)), np.empty((9, 3))
    out, act = C.dense_forward(X, W, None, "relu", 0.5, 11, out=buf_out, act_out=buf_act)
    assert out is buf_out and act is buf_act
    r_out, r_act = R.dense_forward(X, W, None, "relu", 0.5, 11)
    assert_close(out, r_out)
    bufs = dict(dX_out=np.empty((9, 4)), dW_out=np.empty((3, 4)), db_out=np.empty(3),
                dZ_out=np.empty((9, 3)))
    d = rng.standard_normal((9, 3))
    dX, dW, db = C.dense_backward(d, X, W, act, "relu", 0.5, 11, **bufs)
    assert dX is bufs["dX_out"] and dW is bufs["dW_out"] and db is bufs["db_out"]
    want = R.dense_backward(d.copy(), X, W, r_act, "relu", 0.5, 11, dZ_out=np.empty((9, 3)))
    assert_close(bufs["dZ_out"], d * R.dropout_mask((9, 3), 0.5, 11) / 0.5 * (act > 0))
    for g, w in zip((dX, dW, db), want):
        assert_close(g, w)
    dX, dW, db = C.dense_backward(d.copy(), X, W, act, "relu", 0.5, 11, with_bias=False,
                                  need_dX=False)
    assert dX is None and db is None
    assert_close(dW, want[1])


def test_dense_errors_name_the_argument(rng):
    X, W, b = _layer(rng, 4, 3, 2)
    with pytest.raises(ValueError, match="W must have shape"):
        C.dense_forward(X, W.T.copy(), b)
    with pytest.raises(TypeError, match="W has dtype float32"):
        C.dense_forward(X, W.astype(np.float32), b)
    with pytest.raises(ValueError, match="b must have shape"):
        C.dense_forward(X, W, b[:1])
    with pytest.raises(ValueError, match="activation must be one of"):
        C.dense_forward(X, W, b, "swish")
    with pytest.raises(ValueError, match="keep_prob"):
        C.dense_forward(X, W, b, "relu", 0.0)
    with pytest.raises(ValueError, match="out must have shape"):
        C.dense_forward(X, W, b, out=np.empty((4, 3)))
    with pytest.raises(TypeError, match="act_out must have dtype"):
        C.dense_forward(X, W, b, act_out=np.empty((4, 2), np.float32))
    with pytest.raises(ValueError, match="d_out must have shape"):
        C.dense_backward(np.ones((4, 3)), X, W, np.ones((4, 2)))
    bad = X.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or inf \(first at index \(2, 1\)\)"):
        C.dense_forward(bad, W, b)
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        C.dense_forward(bad, W, b)


def test_finite_check_can_be_switched_off(rng, monkeypatch):
    from fastdnn import config
    X, W, b = _layer(rng, 4, 3, 2)
    X[0, 0] = np.nan
    monkeypatch.setattr(config, "CHECK_FINITE", False)
    out, _ = C.dense_forward(X, W, b)
    assert np.isnan(out[0]).all()


@pytest.mark.parametrize("shape", [(1,), (37, 13), (1024, 3), (4, 3, 5)])
def test_dropout_mask_bit_for_bit(shape):
    key = dropout_key(2026, 5, 2)
    for keep_prob in (0.5, 0.8, 1.0):
        np.testing.assert_array_equal(C.dropout_mask(shape, keep_prob, key),
                                      R.dropout_mask(shape, keep_prob, key))


def test_dropout_forward_backward(rng):
    A = rng.standard_normal((37, 13))
    key = dropout_key(1, 1, 1)
    assert_close(C.dropout_forward(A, 0.6, key), R.dropout_forward(A, 0.6, key))
    assert_close(C.dropout_backward(A, 0.6, key), R.dropout_backward(A, 0.6, key))
    assert_close(C.dropout_forward(A, 1.0, key), A)
    A32 = A.astype(np.float32)[:, ::2]
    assert_close(C.dropout_forward(A32, 0.6, key), R.dropout_forward(A32.astype(float), 0.6, key),
                 dtype=np.float32)


@pytest.mark.parametrize("activation", ACTS)
def test_activations(rng, activation):
    Z = rng.standard_normal((7, 5)) * 3
    A = C.activation_forward(Z, activation)
    assert_close(A, R.activation_forward(Z, activation))
    dA = rng.standard_normal(Z.shape)
    assert_close(C.activation_backward(dA, A, activation),
                 R.activation_backward(dA, A, activation))
    Z32 = Z.astype(np.float32)
    A32 = C.activation_forward(Z32, activation)
    assert A32.dtype == np.float32
    assert_close(A32, R.activation_forward(Z32.astype(float), activation), dtype=np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_keeps_its_relative_accuracy_near_zero(dtype):
    # a (1 - e^-2z) / (1 + e^-2z) formula cancels here: 3e-4 relative error in float32
    from fastdnn import cpu

    Z = np.array([[1e-4, -1e-6, 3e-8, 0.5]], dtype=dtype)
    got = cpu.activation_forward(Z, "tanh")
    want = np.tanh(Z.astype(np.float64))
    assert np.all(np.abs(got - want) <= (1e-6 if dtype == np.float32 else 1e-15) * np.abs(want))
