"""Data augmentation on backend="cuda" (the device kernel _augment_rows) against the
NumPy reference, and a sparse X (densified per batch on the host), under the CUDA
simulator: tiny shapes, 8 threads per block, 2 blocks."""
import numpy as np
import pytest
from numba import cuda

import fastdnn
from fastdnn import Augment, config
from fastdnn.cuda import _device, engine
from fastdnn.reference.augment import augment_rows
from helpers import assert_close


@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    monkeypatch.setattr(config, "THREADS_PER_BLOCK", 8)
    monkeypatch.setattr(_device, "MAX_BLOCKS", 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kw", [((2, 3, 2), dict(flip=True, shift=1, noise=0.4)),
                                        ((3, 3), dict(shift=2)), ((2, 2), dict(noise=1.0))])
def test_device_augment_equals_the_reference_bit_for_bit(dtype, shape, kw):
    X = np.random.default_rng(0).standard_normal((5, int(np.prod(shape)))).astype(dtype)
    ws = {"X": cuda.to_device(X)}
    engine.DeviceArrays().augment(ws, Augment(shape, **kw), (2**63 + 5, 9))
    got = ws["X"].copy_to_host()
    want = augment_rows(X, (2**63 + 5, 9), shape, **kw)
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def test_augmented_fit_matches_numpy():
    rng = np.random.default_rng(7)
    X, y = rng.standard_normal((11, 4)), rng.integers(0, 3, 11)
    aug = Augment((2, 2), flip=True, shift=1, noise=0.3)
    models = [fastdnn.MLP([4, 3, 3], keep_prob=0.75, dtype="float64", backend=b, seed=3)
              for b in ("numpy", "cuda")]
    for m in models:
        m.fit(X, y, optimizer=fastdnn.Adam(0.02), epochs=2, batch_size=5, verbose=0,
              augment=aug)
    for k, v in models[0].get_weights().items():
        assert_close(models[1].get_weights()[k], v, dtype="float64", name=k)


def test_sparse_fit_is_the_dense_fit():
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((11, 4)) * (rng.random((11, 4)) < 0.5), rng.integers(0, 3, 11)
    models = [fastdnn.MLP([4, 3, 3], dtype="float64", backend="cuda", seed=3)
              for _ in range(2)]
    for m, Xm in zip(models, (X, sp.csr_matrix(X))):
        m.fit(Xm, y, optimizer=fastdnn.Adam(0.02), epochs=2, batch_size=5, verbose=0)
    for k, v in models[0].get_weights().items():
        np.testing.assert_array_equal(models[1].get_weights()[k], v)
    np.testing.assert_array_equal(models[1].predict_proba(sp.csr_matrix(X)),
                                  models[0].predict_proba(X))
