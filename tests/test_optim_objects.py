"""Optimizer objects: same updates as the reference functions, state, validation."""
import numpy as np
import pytest

import fastdnn
from fastdnn import reference as R
from fastdnn.optim import OPTIMIZERS, get_optimizer


@pytest.fixture(params=["numpy", "cpu"])
def backend(request):
    if request.param == "cpu":
        pytest.importorskip("fastdnn.cpu")
    return request.param


def by_hand(name, params, grads_seq, **hyper):
    """The reference functions applied step by step to a list of params."""
    state = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    for t, grads in enumerate(grads_seq, start=1):
        for p, g, (a, b) in zip(params, grads, state):
            lr = hyper.get("lr")
            if name == "sgd":
                R.sgd_update(p, g, lr, hyper.get("weight_decay", 0.0))
            elif name in ("momentum", "nesterov"):
                getattr(R, f"{name}_update")(p, g, a, lr, hyper.get("beta", 0.9),
                                             hyper.get("weight_decay", 0.0))
            elif name == "rmsprop":
                R.rmsprop_update(p, g, a, lr, 0.999, 1e-8, hyper.get("weight_decay", 0.0))
            else:
                wd = hyper.get("weight_decay", 0.0 if name == "adam" else 0.01)
                getattr(R, f"{name}_update")(p, g, a, b, t, lr, 0.9, 0.999, 1e-8, wd)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("flat", [True, False])
def test_matches_reference_functions(name, flat, backend, rng):
    shapes = [(3, 4), (4,), (1,)]
    params = [rng.standard_normal(s) for s in shapes]
    grads_seq = [[rng.standard_normal(s) for s in shapes] for _ in range(3)]
    want = [p.copy() for p in params]
    by_hand(name, want, grads_seq, lr=0.05, weight_decay=0.1)
    opt = get_optimizer(name, lr=0.05, weight_decay=0.1, backend=backend)
    if flat:
        p_flat = np.concatenate([p.ravel() for p in params])
        for grads in grads_seq:
            opt.step(p_flat, np.concatenate([g.ravel() for g in grads]))
        got = np.concatenate([p.ravel() for p in want])
        np.testing.assert_allclose(p_flat, got, rtol=1e-12, atol=1e-14)
    else:
        for grads in grads_seq:
            opt.step(params, grads)
        for p, w in zip(params, want):
            np.testing.assert_allclose(p, w, rtol=1e-12, atol=1e-14)
    assert opt.t == 3


def test_state_dict_round_trip(rng):
    p = rng.standard_normal(5)
    a = fastdnn.Adam(lr=0.1, backend="numpy")
    a.step(p, rng.standard_normal(5))
    b = fastdnn.Adam(backend="numpy")
    b.load_state_dict(a.state_dict())
    assert b.lr == 0.1 and b.t == 1
    g = rng.standard_normal(5)
    p2 = p.copy()
    a.step(p, g)
    b.step(p2, g)
    assert np.array_equal(p, p2)
    with pytest.raises(ValueError, match="state is for Adam"):
        fastdnn.SGD(backend="numpy").load_state_dict(a.state_dict())


@pytest.mark.parametrize("cls, kwargs, match", [
    (fastdnn.SGD, dict(lr=-1.0), "lr"),
    (fastdnn.Momentum, dict(beta=1.0), "beta"),
    (fastdnn.RMSprop, dict(eps=0.0), "eps"),
    (fastdnn.Adam, dict(beta1=1.5), "beta1"),
    (fastdnn.Adam, dict(beta2=-0.1), "beta2"),
    (fastdnn.AdamW, dict(weight_decay=-0.1), "weight_decay"),
])
def test_bad_hyperparameters(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_names_and_errors(rng):
    assert isinstance(get_optimizer("ADAM"), fastdnn.Adam)
    assert isinstance(get_optimizer("adamw", lr=0.1), fastdnn.AdamW)
    with pytest.raises(ValueError, match=r"optimizer must be .* got 'adm'"):
        get_optimizer("adm")
    opt = fastdnn.Momentum(backend="numpy")
    with pytest.raises(ValueError, match="grads must have one array per param"):
        opt.step([np.zeros(2), np.zeros(2)], [np.zeros(2)])
    with pytest.raises(ValueError, match="grads\\[0\\] must match"):
        opt.step(np.zeros(2), np.zeros(3))
    opt.step(np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="holds state"):
        opt.step(np.zeros(3), np.ones(3))
    assert "Momentum(lr=0.01" in repr(opt)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_same_arrays_step_after_step(name, backend, rng):
    # a training loop's pattern: the same param and grad arrays each step, the grads
    # rewritten in place (fastdnn.cpu then reuses the lists it checked), and once a grad
    # array swapped for a new one, which must be read from then on
    shapes = [(3, 4), (4,), (1,)]
    params = [rng.standard_normal(s) for s in shapes]
    grads_seq = [[rng.standard_normal(s) for s in shapes] for _ in range(4)]
    want = [p.copy() for p in params]
    by_hand(name, want, grads_seq, lr=0.05, weight_decay=0.1)
    opt = get_optimizer(name, lr=0.05, weight_decay=0.1, backend=backend)
    grads = [np.empty(s) for s in shapes]
    for k, new in enumerate(grads_seq):
        if k == 2:
            grads[1] = np.empty(shapes[1])
        for g, n in zip(grads, new):
            g[...] = n
        opt.step(params, grads)
    for p, w in zip(params, want):
        np.testing.assert_allclose(p, w, rtol=1e-12, atol=1e-14)


def test_reset_pickle_and_state_load_after_list_steps(rng):
    import pickle
    shapes = [(3, 4), (4,)]
    params = [rng.standard_normal(s) for s in shapes]
    grads = [rng.standard_normal(s) for s in shapes]
    opt = fastdnn.Adam(lr=0.1, backend="cpu")
    opt.step(params, grads)
    opt.step(params, grads)
    clone = pickle.loads(pickle.dumps(opt))
    assert clone._lists is None    # the last step's arrays are not pickled
    restored = fastdnn.Adam(backend="cpu")
    restored.load_state_dict(opt.state_dict())
    copies = [[p.copy() for p in params] for _ in range(2)]
    opt.step(params, grads)
    for other, ps in zip((clone, restored), copies):
        other.step(ps, grads)
        for p, q in zip(ps, params):
            assert np.array_equal(p, q)
    opt.reset()                    # fresh state: the next step is a first step again
    fresh = fastdnn.Adam(lr=0.1, backend="cpu")
    copy = [p.copy() for p in params]
    opt.step(params, grads)
    fresh.step(copy, grads)
    for p, q in zip(params, copy):
        assert np.array_equal(p, q)

