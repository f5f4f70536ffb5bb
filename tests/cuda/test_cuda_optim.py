"""fastdnn.cuda optimizer kernels against the reference, under the CUDA simulator.

300-element buffers with 32 threads per block and at most 2 blocks: grid-stride loops.
"""
import numpy as np
import pytest
from numba import cuda

from fastdnn import config, reference as R
import fastdnn.cuda as fc
from fastdnn.cuda import _device
from helpers import assert_close

DTYPES = [np.float32, np.float64]

OPTIMIZERS = {
    "sgd": (0, dict(lr=0.1, weight_decay=0.01)),
    "momentum": (1, dict(lr=0.1, beta=0.8, weight_decay=0.01)),
    "nesterov": (1, dict(lr=0.1, beta=0.8)),
    "rmsprop": (1, dict(lr=0.01, beta2=0.9, eps=1e-6, weight_decay=0.02)),
    "adam": (2, dict(lr=0.01, beta1=0.8, beta2=0.95, eps=1e-6, weight_decay=0.01)),
    "adamw": (2, dict(lr=0.01, beta1=0.8, beta2=0.95, eps=1e-6, weight_decay=0.1)),
}


@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    monkeypatch.setattr(config, "THREADS_PER_BLOCK", 32)
    monkeypatch.setattr(_device, "MAX_BLOCKS", 2)


def _state(rng, n_states, shape, dtype):
    states = [np.zeros(shape, dtype) for _ in range(n_states)]
    if n_states == 2:  # Adam's v must stay non-negative
        states = [rng.standard_normal(shape).astype(dtype) * 0.1,
                  rng.random(shape).astype(dtype) * 0.1]
    elif n_states == 1:
        states = [np.abs(rng.standard_normal(shape)).astype(dtype) * 0.1]
    return states


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("shape", [(300,), (15, 20)])
def test_optimizer_matches_reference_over_steps(rng, dtype, name, shape):
    n_states, kw = OPTIMIZERS[name]
    fast, ref = getattr(fc, name + "_update"), getattr(R, name + "_update")
    p = rng.standard_normal(shape).astype(dtype)
    states = _state(rng, n_states, shape, dtype)
    p64, states64 = p.astype(np.float64), [s.astype(np.float64) for s in states]
    for step in (1, 2, 3):
        g = rng.standard_normal(shape).astype(dtype)
        step_arg = (step,) if n_states == 2 else ()
        fast(p, g, *states, *step_arg, **kw)
        ref(p64, g.astype(np.float64), *states64, *step_arg, **kw)
    assert p.dtype == dtype
    assert_close(p, p64, dtype=dtype, name="param")
    for i, (s, s64) in enumerate(zip(states, states64)):
        assert_close(s, s64, dtype=dtype, name=f"state {i}")


@pytest.mark.parametrize("name", ["adam", "momentum"])
def test_optimizer_in_place_on_device(rng, name):
    n_states, kw = OPTIMIZERS[name]
    p = rng.standard_normal(300)
    g = rng.standard_normal(300)
    states = _state(rng, n_states, 300, np.float64)
    want_p, want_states = p.copy(), [s.copy() for s in states]
    step_arg = (1,) if n_states == 2 else ()
    getattr(R, name + "_update")(want_p, g, *want_states, *step_arg, **kw)
    pd, gd = cuda.to_device(p), cuda.to_device(g)
    sd = [cuda.to_device(s) for s in states]
    assert getattr(fc, name + "_update")(pd, gd, *sd, *step_arg, **kw) is None
    assert_close(pd.copy_to_host(), want_p, name="param")
    for s, w in zip(sd, want_states):
        assert_close(s.copy_to_host(), w, name="state")
    assert np.array_equal(gd.copy_to_host(), g)


def test_optimizer_errors_name_the_argument(rng):
    p, g = np.zeros(5), np.zeros(5)
    with pytest.raises(ValueError, match="lr"):
        fc.sgd_update(p, g, -1.0)
    with pytest.raises(ValueError, match="grad must have the shape"):
        fc.sgd_update(p, np.zeros(4), 0.1)
    with pytest.raises(ValueError, match="step"):
        fc.adam_update(p, g, np.zeros(5), np.zeros(5), 0, 0.1)
    with pytest.raises(ValueError, match="v must have the shape of param"):
        fc.adam_update(p, g, np.zeros(5), np.zeros(4), 1, 0.1)
    with pytest.raises(ValueError, match="beta"):
        fc.momentum_update(p, g, np.zeros(5), 0.1, beta=1.0)
