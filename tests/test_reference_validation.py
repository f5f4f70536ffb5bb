"""Argument checks: messages name the argument, the value and what is allowed."""
import numpy as np
import pytest

import fastdnn.reference as R
from fastdnn import _validation as v
from fastdnn import config


def test_check_float_array():
    x = np.ones((2, 3), dtype=np.float32)
    assert v.check_float_array("X", x, ndim=2) is x
    with pytest.raises(TypeError, match="X must be a NumPy array, got list"):
        v.check_float_array("X", [[1.0]])
    with pytest.raises(TypeError, match="X must have dtype float32 or float64, got int64"):
        v.check_float_array("X", np.ones(2, dtype=np.int64))
    with pytest.raises(TypeError, match="got float16"):
        v.check_float_array("X", np.ones(2, dtype=np.float16))
    with pytest.raises(ValueError, match="X must be 2-D, got shape \\(3,\\)"):
        v.check_float_array("X", np.ones(3), ndim=2)
    with pytest.raises(ValueError, match="X must not be empty, got shape \\(2, 0\\)"):
        v.check_float_array("X", np.ones((2, 0)))


def test_check_finite():
    assert v.check_finite("Z", np.ones(3)) is not None
    with pytest.raises(ValueError, match=r"Z contains NaN or inf \(first at index \(1, 0\)\)"):
        v.check_finite("Z", np.array([[1.0, 2.0], [np.nan, np.inf]]))


def test_check_shape():
    v.check_shape("b", np.ones((2, 3)), (2, None))
    with pytest.raises(ValueError, match=r"b must have shape \(3,\), got \(2,\)"):
        v.check_shape("b", np.ones(2), (3,))
    with pytest.raises(ValueError, match=r"Y must have shape \(4, \*\), got \(4,\)"):
        v.check_shape("Y", np.ones(4), (4, None))


def test_check_same_dtype():
    with pytest.raises(TypeError, match="W has dtype float32 but the other operands are float64"):
        v.check_same_dtype("W", np.ones(1, np.float32), np.float64)


@pytest.mark.parametrize("kwargs,value,message", [
    (dict(low=0.0), -1.0, r"lr must be in \[0, inf\), got -1.0"),
    (dict(low=0.0, high=1.0, low_open=True), 0.0, r"lr must be in \(0, 1\], got 0.0"),
    (dict(low=0.0, high=1.0, high_open=True), 1.0, r"lr must be in \[0, 1\), got 1.0"),
    (dict(), float("nan"), r"lr must be in \(-inf, inf\), got nan"),
    (dict(low=0.0), float("inf"), r"lr must be in \[0, inf\), got inf"),
    (dict(high=0.0), float("-inf"), r"lr must be in \(-inf, 0\], got -inf"),
])
def test_check_real_errors(kwargs, value, message):
    with pytest.raises(ValueError, match=message):
        v.check_real("lr", value, **kwargs)


def test_check_real_accepts_and_types():
    assert v.check_real("lr", 1, 0.0) == 1.0
    assert v.check_real("lr", np.float32(0.5), 0.0) == 0.5
    for bad in (True, "0.1", None, 1j):
        with pytest.raises(TypeError, match="lr must be a real number"):
            v.check_real("lr", bad)


def test_check_int():
    assert v.check_int("step", np.int64(3), 1) == 3
    with pytest.raises(ValueError, match=r"step must be in \[1, inf\], got 0"):
        v.check_int("step", 0, 1)
    for bad in (1.0, True, "1"):
        with pytest.raises(TypeError, match="step must be an integer"):
            v.check_int("step", bad, 1)


def test_check_choice_and_keep_prob():
    with pytest.raises(ValueError, match=r"activation must be one of \['a', 'b'\], got 'c'"):
        v.check_choice("activation", "c", {"a", "b"})
    assert v.check_keep_prob("keep_prob", 1) == 1.0
    with pytest.raises(ValueError, match=r"keep_prob must be in \(0, 1\], got 0.0"):
        v.check_keep_prob("keep_prob", 0)


def test_emit():
    r = np.arange(3.0)
    assert v.emit(r, None) is r
    out = np.empty(3)
    assert v.emit(r, out) is out and out.tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="output buffer has shape \\(2,\\), expected \\(3,\\)"):
        v.emit(r, np.empty(2))
    with pytest.raises(TypeError):
        v.emit(r, np.empty(3, dtype=np.int64))  # float into int is refused, not truncated


def _calls(A):
    """Every reference entry point that takes an array, called with A."""
    n = A.shape[1] if A.ndim == 2 else 1
    W = np.ones((2, n))
    p = np.ones(n)
    return {
        "activation_forward": lambda: R.activation_forward(A, "relu"),
        "dropout_forward": lambda: R.dropout_forward(A, 0.5, 1),
        "dense_forward": lambda: R.dense_forward(A, W),
        "batchnorm_forward": lambda: R.batchnorm_forward(A, p, p, p.copy(), p.copy()),
        "softmax_cross_entropy": lambda: R.softmax_cross_entropy(A, np.ones(A.shape)),
        "sigmoid_cross_entropy": lambda: R.sigmoid_cross_entropy(A, np.ones(A.shape)),
        "mean_squared_error": lambda: R.mean_squared_error(A, np.ones(A.shape)),
    }


ARG = {"activation_forward": "Z", "dropout_forward": "A", "dense_forward": "X",
       "batchnorm_forward": "Z", "softmax_cross_entropy": "Z",
       "sigmoid_cross_entropy": "Z", "mean_squared_error": "A"}


@pytest.mark.parametrize("name", sorted(ARG))
def test_non_float_dtype_is_named(name):
    with pytest.raises(TypeError, match=f"^{ARG[name]} must have dtype float32 or float64"):
        _calls(np.ones((3, 2), dtype=np.int32))[name]()


@pytest.mark.parametrize("name", sorted(ARG))
def test_empty_array_is_named(name):
    with pytest.raises(ValueError, match=f"^{ARG[name]} must not be empty"):
        _calls(np.ones((0, 2)))[name]()


def test_check_finite_can_be_switched_off(monkeypatch):
    X = np.array([[np.nan, 1.0]])
    W = np.ones((1, 2))
    with pytest.raises(ValueError, match="X contains NaN"):
        R.dense_forward(X, W)
    with pytest.raises(ValueError, match="A contains NaN"):
        R.mean_squared_error(X, np.ones((1, 2)))
    monkeypatch.setattr(config, "CHECK_FINITE", False)
    out, _ = R.dense_forward(X, W)
    assert np.isnan(out).all()
    loss, _ = R.mean_squared_error(X, np.ones((1, 2)))
    assert np.isnan(loss)
