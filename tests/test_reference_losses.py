"""Reference losses: hand values, gradients by central differences, huge logits."""
import warnings

import numpy as np
import pytest
from helpers import assert_close, numerical_gradient, relative_difference

from fastdnn.reference import (l2_cost, l2_grad, log_softmax, mean_squared_error, one_hot,
                               poisson_deviance, sigmoid, sigmoid_cross_entropy, softmax,
                               softmax_cross_entropy)

LOSSES = [softmax_cross_entropy, sigmoid_cross_entropy, mean_squared_error]


def targets(rng, kind, m=5, k=4):
    labels = rng.integers(0, k, m)
    if kind == "labels":
        return labels
    if kind == "one_hot":
        return one_hot(labels, k)
    if kind == "probabilities":
        P = rng.random((m, k))
        return P / P.sum(axis=1, keepdims=True)
    if kind == "binary":
        return (rng.random((m, k)) < 0.5).astype(np.float64)
    if kind == "counts":   # zeros among them (0 log 0)
        return rng.poisson(1.0, (m, k)).astype(np.float64)
    return rng.standard_normal((m, k))


@pytest.mark.parametrize("loss_fn,kind", [
    (softmax_cross_entropy, "one_hot"),
    (softmax_cross_entropy, "labels"),
    (softmax_cross_entropy, "probabilities"),
    (sigmoid_cross_entropy, "binary"),
    (sigmoid_cross_entropy, "probabilities"),
    (mean_squared_error, "real"),
    (poisson_deviance, "counts"),
])
def test_gradient_matches_central_differences(loss_fn, kind, rng):
    Z = 2 * rng.standard_normal((5, 4))
    Y = targets(rng, kind)
    _, dZ = loss_fn(Z, Y)
    numeric = numerical_gradient(lambda: loss_fn(Z, Y)[0], Z)
    assert relative_difference(dZ, numeric) < 1e-7


def test_softmax_cross_entropy_by_hand():
    Z = np.zeros((2, 4))
    loss, dZ = softmax_cross_entropy(Z, np.array([1, 3]))
    assert loss == pytest.approx(np.log(4), rel=1e-15)
    assert_close(dZ, (np.full((2, 4), 0.25) - one_hot([1, 3], 4)) / 2)
    Z = np.array([[np.log(1.0), np.log(3.0)]])  # softmax = [0.25, 0.75]
    loss, dZ = softmax_cross_entropy(Z, np.array([[0.0, 1.0]]))
    assert loss == pytest.approx(-np.log(0.75), rel=1e-14)
    assert_close(dZ, [[0.25, -0.25]])


@pytest.mark.parametrize("loss_fn,kind", [
    (softmax_cross_entropy, "labels"), (sigmoid_cross_entropy, "binary"),
    (mean_squared_error, "real"), (poisson_deviance, "counts")])
def test_sample_weight_is_scikit_learns_weighted_mean(loss_fn, kind, rng):
    Z = rng.standard_normal((5, 4))
    Y = targets(rng, kind)
    w = np.array([2.0, 0.0, 1.0, 3.0, 0.5])
    loss, dZ = loss_fn(Z, Y, sample_weight=w)
    numeric = numerical_gradient(lambda: loss_fn(Z, Y, sample_weight=w)[0], Z)
    assert relative_difference(dZ, numeric) < 1e-7
    # integer weights are repeated rows; the zero-weight row has no gradient
    rows = np.repeat(np.arange(5), [2, 0, 1, 3, 0])
    plain, _ = loss_fn(Z[rows], Y[rows])
    half_row, _ = loss_fn(Z[4:], Y[4:])
    assert loss == pytest.approx((plain * 6 + 0.5 * half_row) / 6.5, rel=1e-12)
    assert not dZ[1].any()
    ones = loss_fn(Z, Y, sample_weight=np.ones(5))
    assert ones[0] == pytest.approx(loss_fn(Z, Y)[0], rel=1e-14)
    assert_close(ones[1], loss_fn(Z, Y)[1])
    for bad in (np.ones(4), -np.ones(5), np.zeros(5), np.full(5, np.nan)):
        with pytest.raises(ValueError, match="sample_weight"):
            loss_fn(Z, Y, sample_weight=bad)


def test_poisson_deviance_by_hand():
    # z = log 2: mu = 2; y = 2 -> 0; y = 0 -> mu = 2; y = 4 -> 4 log 2 - 4 + 2
    Z = np.log(np.array([[2.0, 2.0, 2.0]]))
    loss, dZ = poisson_deviance(Z, np.array([[2.0, 0.0, 4.0]]))
    assert loss == pytest.approx(2 + 4 * np.log(2) - 2, rel=1e-14)
    assert_close(dZ, [[0.0, 2.0, -2.0]])
    with pytest.raises(ValueError, match=">= 0"):
        poisson_deviance(Z, -np.ones((1, 3)))


def test_labels_equal_one_hot(rng):
    Z = rng.standard_normal((6, 3))
    labels = np.array([0, 2, 1, 1, 0, 2])
    l1, d1 = softmax_cross_entropy(Z, labels)
    l2, d2 = softmax_cross_entropy(Z, one_hot(labels, 3))
    assert l1 == l2
    assert_close(d1, d2)


def test_sigmoid_cross_entropy_by_hand():
    loss, dZ = sigmoid_cross_entropy(np.zeros((2, 3)), np.ones((2, 3)))
    assert loss == pytest.approx(3 * np.log(2), rel=1e-15)  # summed over outputs, mean over m
    assert_close(dZ, np.full((2, 3), -0.25))
    z = np.log(3.0)  # sigmoid = 0.75
    loss, dZ = sigmoid_cross_entropy(np.array([[z]]), np.array([[0.0]]))
    assert loss == pytest.approx(-np.log(0.25), rel=1e-14)
    assert_close(dZ, [[0.75]])


def test_mean_squared_error_by_hand():
    A = np.array([[1.0, 2.0], [3.0, 5.0]])
    Y = np.array([[0.0, 2.0], [1.0, 1.0]])
    loss, dA = mean_squared_error(A, Y)
    assert loss == (1 + 0 + 4 + 16) / (2 * 2)
    assert_close(dA, [[0.5, 0.0], [1.0, 2.0]])


def test_softmax_and_log_softmax(rng):
    Z = rng.standard_normal((4, 5))
    S = softmax(Z)
    assert_close(S.sum(axis=1), np.ones(4))
    assert_close(S, np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True))
    assert_close(log_softmax(Z), np.log(S))
    assert_close(sigmoid(Z), 1 / (1 + np.exp(-Z)))


def test_huge_logits_are_stable():
    Z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dZ = softmax_cross_entropy(Z, np.array([0, 2]))
        assert loss == 2500.0  # row 0 right with certainty, row 1 off by 1e4 - 5e3
        assert_close(dZ, [[0.0, 0.0, 0.0], [0.0, 0.5, -0.5]])
        loss, dZ = sigmoid_cross_entropy(Z, np.ones_like(Z))
        assert loss == pytest.approx((2e4 + np.log(2)) / 2, rel=1e-15)
        assert_close(dZ, [[0.0, -0.5, -0.25], [-0.5, 0.0, 0.0]])
        for f in (softmax, sigmoid, log_softmax):
            assert np.isfinite(f(Z)).all()
        for dtype in (np.float32, np.float64):
            for loss_fn, Y in [(softmax_cross_entropy, np.array([1, 0])),
                               (sigmoid_cross_entropy, np.zeros((2, 3)))]:
                loss, dZ = loss_fn(Z.astype(dtype), Y)
                assert np.isfinite(loss) and np.isfinite(dZ).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype, rng):
    Z = rng.standard_normal((4, 3)).astype(dtype)
    Y = one_hot(np.array([0, 1, 2, 0]), 3)  # float64 targets must not promote
    for loss_fn in LOSSES:
        loss, dZ = loss_fn(Z, Y)
        assert isinstance(loss, float)
        assert dZ.dtype == dtype
    assert softmax_cross_entropy(Z, np.array([0, 1, 2, 0]))[1].dtype == dtype
    for f in (softmax, sigmoid, log_softmax):
        assert f(Z).dtype == dtype
    assert one_hot([0, 1], 2, dtype=dtype).dtype == dtype


def test_float32_close_to_float64(rng):
    Z = rng.standard_normal((6, 4))
    Y = targets(rng, "one_hot", 6, 4)
    for loss_fn in LOSSES:
        l64, d64 = loss_fn(Z, Y)
        l32, d32 = loss_fn(Z.astype(np.float32), Y.astype(np.float32))
        assert l32 == pytest.approx(l64, rel=1e-5)
        assert_close(d32, d64, dtype=np.float32)


def test_out_buffers(rng):
    Z = rng.standard_normal((4, 3))
    Y = targets(rng, "one_hot", 4, 3)
    for loss_fn, kw in [(softmax_cross_entropy, "dZ_out"), (sigmoid_cross_entropy, "dZ_out"),
                        (mean_squared_error, "dA_out")]:
        buf = np.empty_like(Z)
        loss, d = loss_fn(Z, Y, **{kw: buf})
        assert d is buf
        assert loss == loss_fn(Z, Y)[0]
        assert_close(buf, loss_fn(Z, Y)[1])
    for f in (softmax, sigmoid):
        buf = np.empty_like(Z)
        assert f(Z, out=buf) is buf
        assert_close(buf, f(Z))


def test_one_hot():
    assert one_hot(np.array([2, 0, 1]), 3).tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0]]
    assert one_hot(np.array([], dtype=int), 3).shape == (0, 3)
    with pytest.raises(ValueError, match="labels must lie in \\[0, 3\\)"):
        one_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="labels must lie"):
        one_hot(np.array([-1, 0]), 3)
    with pytest.raises(ValueError, match="labels must be a 1-D integer array"):
        one_hot(np.array([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="labels must be a 1-D integer array"):
        one_hot(np.array([[0, 1]]), 3)


def test_l2_cost_and_grad_by_hand():
    W1 = np.array([[1.0, 2.0], [3.0, 4.0]])  # sum of squares 30
    W2 = np.array([[2.0]])                   # 4
    assert l2_cost([W1], 0.5, 2) == 0.5 / 4 * 30
    assert l2_cost([W1, W2], 0.5, 2) == 0.5 / 4 * 34
    assert l2_cost([], 0.5, 2) == 0.0
    assert_close(l2_grad(W1, 0.5, 2), 0.25 * W1)
    numeric = numerical_gradient(lambda: l2_cost([W1, W2], 0.5, 2), W1)
    assert relative_difference(l2_grad(W1, 0.5, 2), numeric) < 1e-7


def test_l2_cost_of_float32_is_summed_in_float64():
    W = np.full((1000, 100), 0.1, dtype=np.float32)
    assert l2_cost([W], 2.0, 1) == pytest.approx(1e5 * float(np.float32(0.1)) ** 2, rel=1e-12)


def test_bad_arguments(rng):
    Z = rng.standard_normal((4, 3))
    for loss_fn, name in zip(LOSSES, "ZZA"):
        with pytest.raises(ValueError, match="Y must have shape \\(4, 3\\)"):
            loss_fn(Z, np.ones((4, 2)))
        with pytest.raises(ValueError, match=name + " must be 2-D"):
            loss_fn(Z[0], np.ones(3))
        with pytest.raises(TypeError, match=name + " must have dtype"):
            loss_fn(Z.astype(np.int64), np.ones((4, 3)))
        with pytest.raises(ValueError, match=name + " must not be empty"):
            loss_fn(Z[:0], np.ones((0, 3)))
    with pytest.raises(ValueError, match="Y must have shape \\(4,\\)"):
        softmax_cross_entropy(Z, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="labels must lie"):
        softmax_cross_entropy(Z, np.array([0, 1, 2, 3]))
    # integer labels are only for softmax: elsewhere a 1-D Y is the wrong shape
    with pytest.raises(ValueError, match="Y must have shape"):
        sigmoid_cross_entropy(Z, np.array([0, 1, 2, 0]))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_inputs_are_rejected(bad, rng):
    Z = rng.standard_normal((4, 3))
    Y = targets(rng, "one_hot", 4, 3)
    for loss_fn, name in zip(LOSSES, "ZZA"):
        Zb = Z.copy()
        Zb[1, 2] = bad
        message = name + r" contains NaN or inf \(first at index \(1, 2\)\)"
        with pytest.raises(ValueError, match=message):
            loss_fn(Zb, Y)
        Yb = Y.copy()
        Yb[3, 0] = bad
        with pytest.raises(ValueError, match=r"Y contains NaN or inf \(first at index \(3, 0\)\)"):
            loss_fn(Z, Yb)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l2_grad_dtype(dtype):
    assert l2_grad(np.ones((2, 2), dtype=dtype), 0.1, 3).dtype == dtype
