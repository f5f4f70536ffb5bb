"""fastdnn.cpu optimizer updates against the NumPy reference."""
import numpy as np
import pytest

import fastdnn.cpu as C
import fastdnn.reference as R
from helpers import assert_close

CASES = [
    ("sgd_update", 0, dict(lr=0.1, weight_decay=0.01)),
    ("momentum_update", 1, dict(lr=0.1, beta=0.8, weight_decay=0.01)),
    ("nesterov_update", 1, dict(lr=0.1, beta=0.8, weight_decay=0.0)),
    ("rmsprop_update", 1, dict(lr=0.01, beta2=0.9, eps=1e-8, weight_decay=0.01)),
    ("adam_update", 2, dict(lr=0.01, beta1=0.8, beta2=0.95, weight_decay=0.01)),
    ("adamw_update", 2, dict(lr=0.01, beta1=0.8, beta2=0.95, weight_decay=0.1)),
]


def _run(fn, params, grads, states, n_state, kw, steps=3):
    for t in range(1, steps + 1):
        args = [params, grads] + [states[i] for i in range(n_state)]
        if n_state == 2:
            args.append(t)
        fn(*args, **kw)


@pytest.mark.parametrize("name,n_state,kw", CASES)
@pytest.mark.parametrize("shape", [(1,), (3,), (37, 13), (10007,)])
def test_update_matches_reference(rng, name, n_state, kw, shape):
    p = rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    s = [np.abs(rng.standard_normal(shape)) for _ in range(n_state)]
    pc, sc = p.copy(), [a.copy() for a in s]
    _run(getattr(C, name), pc, g, sc, n_state, kw)
    _run(getattr(R, name), p, g, s, n_state, kw)
    assert_close(pc, p, name="param")
    for a, b in zip(sc, s):
        assert_close(a, b, name="state")
    p32, s32 = pc.astype(np.float32), [a.astype(np.float32) for a in sc]
    p64, s64 = p32.astype(np.float64), [a.astype(np.float64) for a in s32]
    _run(getattr(C, name), p32, g.astype(np.float32), s32, n_state, kw)
    _run(getattr(R, name), p64, g.astype(np.float32).astype(np.float64), s64, n_state, kw)
    assert p32.dtype == np.float32
    assert_close(p32, p64, dtype=np.float32, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,n_state,kw", CASES)
def test_list_of_tensors_equals_flat_buffer(rng, name, n_state, kw):
    shapes = [(5, 3), (5,), (2, 5), (2,)]
    sizes = [int(np.prod(s)) for s in shapes]
    flat = [rng.standard_normal(sum(sizes)) for _ in range(2 + n_state)]
    views = []
    for a in flat:
        parts = np.split(a.copy(), np.cumsum(sizes)[:-1])
        views.append([q.reshape(s) for q, s in zip(parts, shapes)])
    flat[2:] = [np.abs(a) for a in flat[2:]]
    views[2:] = [[np.abs(q) for q in v] for v in views[2:]]
    fn = getattr(C, name)
    _run(fn, flat[0], flat[1], flat[2:], n_state, kw)
    _run(fn, views[0], views[1], views[2:], n_state, kw)
    np.testing.assert_array_equal(np.concatenate([q.ravel() for q in views[0]]), flat[0])


def test_optimizer_errors(rng):
    p = np.zeros(4)
    with pytest.raises(ValueError, match="grad must have the shape of param"):
        C.sgd_update(p, np.zeros(3), 0.1)
    with pytest.raises(TypeError, match="grad has dtype float32 but param is float64"):
        C.sgd_update(p, np.zeros(4, np.float32), 0.1)
    with pytest.raises(ValueError, match="lr must be in"):
        C.sgd_update(p, np.zeros(4), -1.0)
    with pytest.raises(ValueError, match="step must be in"):
        C.adam_update(p, p.copy(), p.copy(), p.copy(), 0, 0.1)
    with pytest.raises(ValueError, match="m must be C-contiguous"):
        C.adam_update(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 4)).T, np.zeros((4, 4)),
                      1, 0.1)
    with pytest.raises(ValueError, match="velocity must be a list of 1 arrays"):
        C.momentum_update([p], [p], p, 0.1)


@pytest.mark.parametrize("name", ["adam_update", "adamw_update", "sgd_update",
                                  "momentum_update", "rmsprop_update"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tensors_across_block_boundaries_update_as_one_flat_buffer(rng, name, dtype):
    """The list path cuts tensors in blocks of LIST_BLOCK elements handed to the threads:
    tensors smaller, larger, exactly one block and empty all update as the flat buffer
    does, on 1, 2 and 3 threads alike."""
    from fastdnn.cpu.optim import LIST_BLOCK as BLOCK
    from fastdnn.engine.threads import threads
    shapes = [(150, 130), (7,), (BLOCK,), (0, 3), (2 * BLOCK + 1,)]
    sizes = [int(np.prod(s)) for s in shapes]
    flat = [rng.standard_normal(sum(sizes)).astype(dtype) for _ in range(4)]
    flat[3] = np.abs(flat[3])
    views = [[q.reshape(s) for q, s in zip(np.split(a.copy(), np.cumsum(sizes)[:-1]), shapes)]
             for a in flat]
    fn = getattr(C, name)
    states = {"adam_update": 2, "adamw_update": 2, "sgd_update": 0}.get(name, 1)
    flat, views = flat[:2 + states], views[:2 + states]
    for step, n in ((1, 1), (2, 2), (3, 3)):
        with threads(n):
            extra = (step,) if "adam" in name else ()
            fn(*flat, *extra, 1e-2, weight_decay=0.1)
            fn(*views, *extra, 1e-2, weight_decay=0.1)
    for a, v in zip(flat, views):
        np.testing.assert_array_equal(np.concatenate([q.ravel() for q in v]), a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_array_in_several_blocks_gives_the_same_bits_on_any_thread_count(rng, dtype):
    from fastdnn.cpu.optim import BLOCK
    from fastdnn.engine.threads import threads
    n = 3 * BLOCK + 17
    start = [rng.standard_normal(n).astype(dtype) for _ in range(4)]
    start[3] = np.abs(start[3])
    results = []
    for count in (1, 2, 3):
        arrays = [a.copy() for a in start]
        with threads(count):
            for step in (1, 2):
                C.adam_update(*arrays, step, 1e-2, weight_decay=0.1)
        results.append(arrays)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
    ref = [a.copy() for a in start]
    for step in (1, 2):
        R.adam_update(*ref, step, 1e-2, weight_decay=0.1)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(results[0][0], ref[0], rtol=tol, atol=tol)
