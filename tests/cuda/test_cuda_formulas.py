"""The CUDA kernels compute with fastdnn.formulas, the CPU backend's own scalar functions.

Under the simulator a kernel runs as Python and calls the very @njit formulas the CPU
engine compiles, so the kernels' element-wise results must equal the formulas' bit for
bit: any CUDA-side twin with its own arithmetic (a float64 constant, another arrangement
of the sigmoid) shows up here as a mismatch. On a GPU the device's exp and tanh may
differ in the last bits; tests/test_cuda_gpu.py checks that with a tolerance.
Dropout masks are compared with fastdnn.reference's, bit for bit.
"""
import numpy as np
import pytest

from fastdnn import config, formulas, reference as R
from fastdnn.rng import dropout_key
import fastdnn.cuda as fc
from fastdnn.cuda import _device

DTYPES = [np.float32, np.float64]
# zeros of both signs, negatives, tiny and large magnitudes (the sigmoid's and tanh's
# saturated ends), values around the leaky ReLU's kink
VALUES = [-40.0, -3.0, -1.0, -0.25, -1e-3, -1e-30, -0.0, 0.0, 1e-30, 1e-3, 0.25, 1.0,
          3.0, 40.0]


@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    monkeypatch.setattr(config, "THREADS_PER_BLOCK", 8)
    monkeypatch.setattr(config, "REDUCTION_CHUNK", 3)
    monkeypatch.setattr(_device, "MAX_BLOCKS", 2)


def identical(actual, expected, name):
    """Same dtype, same bits (NaN where NaN, the sign of zeros included)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, name
    assert np.array_equal(actual, expected, equal_nan=True), \
        f"{name}:\n{actual!r}\n!=\n{expected!r}"
    assert np.array_equal(np.signbit(actual), np.signbit(expected)), f"{name}: signs of zeros"


def cpu_formula(fn, dtype, *columns):
    """fn applied element by element on the CPU, the arguments in ``dtype``."""
    t = np.dtype(dtype).type
    return np.array([fn(*(t(a) for a in args)) for args in zip(*columns)], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,code", sorted(formulas.ACTIVATION_CODES.items()))
def test_activation_kernels_equal_the_cpu_formulas(dtype, name, code):
    z = np.array(VALUES, dtype)
    dA = np.linspace(-2.0, 3.0, z.size).astype(dtype)
    A = fc.activation_forward(z.reshape(2, -1), name).ravel()
    identical(A, cpu_formula(lambda x: formulas.activate(x, code), dtype, z), f"{name} A")
    dZ = fc.activation_backward(dA.reshape(2, -1), A.reshape(2, -1), name).ravel()
    want = cpu_formula(lambda d, a: d * dtype(formulas.activation_grad(a, code)), dtype,
                       dA, A)
    identical(dZ, want, f"{name} dZ")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,code", sorted(formulas.ACTIVATION_CODES.items()))
def test_fused_dense_epilogues_equal_the_cpu_formulas(dtype, name, code):
    # X @ [[1]] is X (but for -0, which a product's sum turns into +0), so the
    # epilogues see the values themselves
    X = np.array(VALUES, dtype).reshape(-1, 1)
    W = np.ones((1, 1), dtype)
    out, act = fc.dense_forward(X, W, None, name)
    want = cpu_formula(lambda x: formulas.activate(x, code), dtype, (X @ W.T).ravel())
    identical(act.ravel(), want, f"{name} act")
    identical(out, act, f"{name} out without dropout")
    d_out = np.linspace(-1.0, 2.0, X.size).astype(dtype).reshape(-1, 1)
    dZ = np.empty_like(d_out)
    fc.dense_backward(d_out, X, W, act, name, dZ_out=dZ)
    want = cpu_formula(lambda d, a: d * dtype(formulas.activation_grad(a, code)), dtype,
                       d_out.ravel(), act.ravel())
    identical(dZ.ravel(), want, f"{name} dZ")


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_losses_equal_the_cpu_formulas(dtype):
    Z = np.array(VALUES, dtype).reshape(2, -1)
    identical(fc.sigmoid(Z).ravel(), cpu_formula(formulas.sigmoid, dtype, Z.ravel()),
              "sigmoid")
    Y = (np.arange(Z.size) % 2).astype(dtype).reshape(Z.shape)
    m = dtype(Z.shape[0])
    _, dZ = fc.sigmoid_cross_entropy(Z, Y)
    want = cpu_formula(lambda z, y: (formulas.sigmoid(z) - y) / m, dtype, Z.ravel(),
                       Y.ravel())
    identical(dZ.ravel(), want, "sigmoid cross-entropy dZ")
    _, dA = fc.mean_squared_error(Z, Y)
    want = cpu_formula(lambda a, y: formulas.squared_error(a, y)[1] / m, dtype, Z.ravel(),
                       Y.ravel())
    identical(dA.ravel(), want, "squared error dA")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keep_prob", [0.3, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (3, 13), (64, 3)])
def test_dropout_masks_equal_the_reference_bit_for_bit(dtype, keep_prob, shape):
    key = dropout_key(2024, 17, 3)
    mask = R.dropout_mask(shape, keep_prob, key)
    assert np.array_equal(fc.dropout_mask(shape, keep_prob, key), mask)
    # the mask as the fused kernels apply it: formulas.dropout = the reference's
    # A * mask / keep_prob in A's dtype, inf and NaN included (inf * 0 is NaN)
    rng = np.random.default_rng(sum(shape))
    A = rng.standard_normal(shape).astype(dtype)
    A.flat[::5] = -0.0
    A.flat[1::7] = np.inf
    A.flat[2::11] = np.nan
    with np.errstate(invalid="ignore"):   # the reference's inf * 0
        identical(fc.dropout_forward(A, keep_prob, key),
                  R.dropout_forward(A, keep_prob, key), "dropout_forward")
        identical(fc.dropout_backward(A, keep_prob, key),
                  R.dropout_backward(A, keep_prob, key), "dropout_backward")
        W = np.ones((1, 1), dtype)
        for j in range(min(shape[1], 2)):   # dense_forward's epilogue masks its (m, 1)
            col = np.ascontiguousarray(A[:, j:j + 1])
            out, act = fc.dense_forward(col, W, None, "identity", keep_prob, key)
            identical(out, R.dropout_forward(act, keep_prob, key), f"dense column {j}")
