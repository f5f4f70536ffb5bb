"""Reference activations: hand values, derivatives against central differences, dtypes."""
import warnings

import numpy as np
import pytest
from helpers import assert_close, numerical_gradient, relative_difference

from fastdnn.reference import ACTIVATIONS, activation_backward, activation_forward
from fastdnn.reference.activations import LEAKY_RELU_SLOPE

NAMES = sorted(ACTIVATIONS)


def away_from_zero(rng, shape, margin=0.05):
    """Normal draws with |z| >= margin, so finite differences never straddle a kink."""
    Z = rng.standard_normal(shape)
    return np.where(np.abs(Z) < margin, np.copysign(margin, Z) + Z, Z)


def test_hand_values():
    Z = np.array([[-2.0, 0.0, 3.0]])
    assert_close(activation_forward(Z, "identity"), Z)
    assert_close(activation_forward(Z, "relu"), [[0.0, 0.0, 3.0]])
    assert_close(activation_forward(Z, "leaky_relu"), [[-2 * LEAKY_RELU_SLOPE, 0.0, 3.0]])
    assert_close(activation_forward(Z, "tanh"), np.tanh(Z))
    assert_close(activation_forward(Z, "sigmoid"), 1 / (1 + np.exp(-Z)))
    assert activation_forward(Z, "sigmoid")[0, 1] == 0.5


def test_identity_returns_a_copy():
    Z = np.ones((2, 2))
    A = activation_forward(Z, "identity")
    A[0, 0] = 5
    assert Z[0, 0] == 1


def test_sigmoid_huge_inputs_no_overflow():
    Z = np.array([[-1e4, -800.0, 0.0, 800.0, 1e4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A = activation_forward(Z, "sigmoid")
        dZ = activation_backward(np.ones_like(Z), A, "sigmoid")
    assert np.isfinite(A).all() and np.isfinite(dZ).all()
    assert A[0, 0] == 0.0 and A[0, -1] == 1.0 and A[0, 2] == 0.5


@pytest.mark.parametrize("name", NAMES)
def test_backward_matches_central_differences(name, rng):
    Z = away_from_zero(rng, (4, 3))
    G = rng.standard_normal((4, 3))
    numeric = numerical_gradient(lambda: float((G * activation_forward(Z, name)).sum()), Z)
    analytic = activation_backward(G, activation_forward(Z, name), name)
    assert relative_difference(analytic, numeric) < 1e-7


@pytest.mark.parametrize("name", NAMES)
def test_derivative_hand_values(name):
    Z = np.array([[-1.0, 2.0]])
    A = activation_forward(Z, name)
    expected = {
        "identity": [1.0, 1.0],
        "relu": [0.0, 1.0],
        "leaky_relu": [LEAKY_RELU_SLOPE, 1.0],
        "tanh": 1 - np.tanh([-1.0, 2.0]) ** 2,
        "sigmoid": A[0] * (1 - A[0]),
    }[name]
    assert_close(activation_backward(np.ones_like(Z), A, name)[0], np.asarray(expected))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_dtype_is_kept(name, dtype, rng):
    Z = rng.standard_normal((3, 2)).astype(dtype)
    A = activation_forward(Z, name)
    assert A.dtype == dtype
    assert activation_backward(Z, A, name).dtype == dtype


@pytest.mark.parametrize("name", NAMES)
def test_out_buffers(name, rng):
    Z = rng.standard_normal((3, 2))
    buf = np.empty_like(Z)
    A = activation_forward(Z, name, out=buf)
    assert A is buf
    assert_close(buf, activation_forward(Z, name))
    dbuf = np.empty_like(Z)
    dZ = activation_backward(Z, A, name, out=dbuf)
    assert dZ is dbuf
    assert_close(dbuf, activation_backward(Z, A, name))


def test_float32_matches_float64(rng):
    Z = rng.standard_normal((5, 4))
    for name in NAMES:
        A64 = activation_forward(Z, name)
        A32 = activation_forward(Z.astype(np.float32), name)
        assert_close(A32, A64, dtype=np.float32)
        assert_close(activation_backward(Z.astype(np.float32), A32, name),
                     activation_backward(Z, A64, name), dtype=np.float32)


def test_unknown_activation():
    Z = np.ones((2, 2))
    with pytest.raises(ValueError, match="activation.*'softplus'"):
        activation_forward(Z, "softplus")
    with pytest.raises(ValueError, match="activation"):
        activation_backward(Z, Z, "Relu")


def test_bad_arrays():
    with pytest.raises(TypeError, match="Z"):
        activation_forward(np.ones((2, 2), dtype=np.int64), "relu")
    with pytest.raises(ValueError, match="Z.*empty"):
        activation_forward(np.ones((0, 2)), "relu")
    with pytest.raises(ValueError, match="dA"):
        activation_backward(np.ones((2, 3)), np.ones((2, 2)), "relu")
    with pytest.raises(TypeError, match="dA"):
        activation_backward(np.ones((2, 2), dtype=np.int32), np.ones((2, 2)), "relu")


def test_derivative_at_the_kink():
    """At z = 0 relu' = 0 and leaky_relu' = slope, as fastdnn.formulas.activation_grad."""
    Z = np.zeros((1, 2))
    assert activation_backward(np.ones_like(Z), activation_forward(Z, "relu"), "relu").tolist() \
        == [[0.0, 0.0]]
    A = activation_forward(Z, "leaky_relu")
    assert activation_backward(np.ones_like(Z), A, "leaky_relu").tolist() == \
        [[LEAKY_RELU_SLOPE, LEAKY_RELU_SLOPE]]
