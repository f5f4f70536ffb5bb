"""Reference optimizers: one or two steps worked by hand for each update rule."""
import numpy as np
import pytest
from helpers import assert_close

from fastdnn.reference import (adam_update, adamw_update, momentum_update, nesterov_update,
                               rmsprop_update, sgd_update)

EPS = 1e-8


def arr(*values, dtype=np.float64):
    return np.array(values, dtype=dtype)


def test_sgd_by_hand():
    p = arr(1.0, 2.0, 3.0)
    sgd_update(p, arr(0.5, -1.0, 2.0), lr=0.1)
    assert_close(p, [0.95, 2.1, 2.8])


def test_sgd_weight_decay_by_hand():
    # g + wd * p = [0.5 + 0.1, -1 + 0.2, 2 + 0.3] = [0.6, -0.8, 2.3]
    p = arr(1.0, 2.0, 3.0)
    sgd_update(p, arr(0.5, -1.0, 2.0), lr=0.1, weight_decay=0.1)
    assert_close(p, [0.94, 2.08, 2.77])


def test_sgd_zero_lr_changes_nothing():
    p = arr(1.0, 2.0)
    sgd_update(p, arr(3.0, 4.0), lr=0.0)
    assert p.tolist() == [1.0, 2.0]


def test_momentum_two_steps_by_hand():
    p, g, v = arr(1.0, 2.0, 3.0), arr(0.5, -1.0, 2.0), np.zeros(3)
    momentum_update(p, g, v, lr=0.1, beta=0.9)
    assert_close(v, [0.05, -0.1, 0.2])        # 0.1 * g
    assert_close(p, [0.995, 2.01, 2.98])
    momentum_update(p, g, v, lr=0.1, beta=0.9)
    assert_close(v, [0.095, -0.19, 0.38])     # 0.9 * v + 0.1 * g
    assert_close(p, [0.9855, 2.029, 2.942])


def test_momentum_weight_decay_by_hand():
    # g' = g + 0.5 p = [1 + 1, 0 + 1] = [2, 1]; v = 0.5 * 0 + 0.5 * g' = [1, 0.5]
    p, v = arr(2.0, 2.0), np.zeros(2)
    momentum_update(p, arr(1.0, 0.0), v, lr=1.0, beta=0.5, weight_decay=0.5)
    assert_close(v, [1.0, 0.5])
    assert_close(p, [1.0, 1.5])


def test_nesterov_by_hand():
    p, g, v = arr(1.0, 2.0), arr(1.0, -2.0), arr(0.5, 0.5)
    nesterov_update(p, g, v, lr=0.1, beta=0.9)
    assert_close(v, [0.55, 0.25])             # 0.9 * 0.5 + 0.1 * g
    # step = 0.9 * v + 0.1 * g = [0.495 + 0.1, 0.225 - 0.2] = [0.595, 0.025]
    assert_close(p, [0.9405, 1.9975])


def test_nesterov_weight_decay_by_hand():
    # g' = g + 1 * p = [1 + 1]; v = 0 + 0.5 * 2 = 1; step = 0.5 * 1 + 0.5 * 2 = 1.5
    p, v = arr(1.0), arr(0.0)
    nesterov_update(p, arr(1.0), v, lr=0.1, beta=0.5, weight_decay=1.0)
    assert_close(v, [1.0])
    assert_close(p, [0.85])


def test_rmsprop_by_hand():
    p, g, s = arr(1.0, 2.0), arr(0.5, -2.0), np.zeros(2)
    rmsprop_update(p, g, s, lr=0.01, beta2=0.9, eps=EPS)
    assert_close(s, [0.025, 0.4])             # 0.1 * g^2
    # sqrt(s) = [0.158113883, 0.632455532], so g / sqrt(s) = +-1 / sqrt(0.1) = +-3.16227766
    # up to eps: 0.5 / (0.158113883 + 1e-8) = 3.16227746
    assert_close(p, [1 - 0.01 * 0.5 / (np.sqrt(0.025) + EPS),
                     2 + 0.01 * 2.0 / (np.sqrt(0.4) + EPS)])
    assert_close(p, [0.9683772254, 2.0316227761], rtol=1e-10)
    rmsprop_update(p, g, s, lr=0.01, beta2=0.9, eps=EPS)
    assert_close(s, [0.0475, 0.76])           # 0.9 * s + 0.1 * g^2


def test_rmsprop_weight_decay_by_hand():
    # g' = 0 + 1 * 3 = 3; s = 0.75 * 9 = 6.75 (beta2 = 0.25)
    p, s = arr(3.0), arr(0.0)
    rmsprop_update(p, arr(0.0), s, lr=0.1, beta2=0.25, eps=EPS, weight_decay=1.0)
    assert_close(s, [6.75])
    assert_close(p, [3 - 0.1 * 3 / (np.sqrt(6.75) + EPS)])


def test_adam_first_step_is_lr_times_sign_by_hand():
    # t = 1: m_hat = m / (1 - 0.9) = g and v_hat = v / (1 - 0.999) = g^2, so the
    # step is lr * g / (|g| + eps): the bias correction removes the pull towards 0.
    p, g = arr(1.0, 2.0, 3.0), arr(0.5, -1.0, 2.0)
    m, v = np.zeros(3), np.zeros(3)
    adam_update(p, g, m, v, step=1, lr=0.1, eps=EPS)
    assert_close(m, [0.05, -0.1, 0.2])
    assert_close(v, [0.00025, 0.001, 0.004])
    assert_close(p, [1 - 0.1 * 0.5 / (0.5 + EPS), 2 + 0.1 * 1 / (1 + EPS),
                     3 - 0.1 * 2 / (2 + EPS)])
    assert_close(p, [0.9, 2.1, 2.9], rtol=1e-8)


def test_adam_second_step_by_hand():
    p, m, v = arr(1.0, 2.0), np.zeros(2), np.zeros(2)
    adam_update(p, arr(0.5, -1.0), m, v, step=1, lr=0.1, eps=EPS)
    p1 = p.copy()
    adam_update(p, arr(1.0, 1.0), m, v, step=2, lr=0.1, eps=EPS)
    # m = 0.9 * [0.05, -0.1] + 0.1 * [1, 1] = [0.145, 0.01]
    # v = 0.999 * [0.00025, 0.001] + 0.001 * [1, 1] = [0.00124975, 0.001999]
    assert_close(m, [0.145, 0.01])
    assert_close(v, [0.00124975, 0.001999])
    # bias corrections at t = 2: 1 - 0.9^2 = 0.19 and 1 - 0.999^2 = 0.001999
    m_hat = np.array([0.145 / 0.19, 0.01 / 0.19])          # [0.76315789, 0.05263158]
    v_hat = np.array([0.00124975 / 0.001999, 1.0])         # [0.62518759, 1]
    assert_close(p, p1 - 0.1 * m_hat / (np.sqrt(v_hat) + EPS))
    # 0.1 * 0.76315789 / sqrt(0.62518759) = 0.0965182, 0.1 * 0.05263158 / 1 = 0.0052632
    assert_close(p, [0.9 - 0.0965182, 2.1 - 0.0052632], rtol=1e-7)


def test_adam_constant_gradient_keeps_unit_steps():
    # with a constant g the corrected moments are g and g^2 at every t
    p, m, v = arr(0.0), np.zeros(1), np.zeros(1)
    for t in range(1, 4):
        adam_update(p, arr(-3.0), m, v, step=t, lr=0.01, eps=EPS)
        assert_close(p, [0.01 * t * 3 / (3 + EPS)], rtol=1e-10)


def test_adam_coupled_weight_decay_by_hand():
    # g' = g + 0.5 * p = [0.5 + 1] = 1.5, then a first Adam step: m = 0.15, v = 0.00225
    p, m, v = arr(2.0), np.zeros(1), np.zeros(1)
    adam_update(p, arr(0.5), m, v, step=1, lr=0.1, eps=EPS, weight_decay=0.5)
    assert_close(m, [0.15])
    assert_close(v, [0.00225])
    assert_close(p, [2 - 0.1 * 1.5 / (1.5 + EPS)])


def test_adamw_by_hand():
    # decoupled: p *= 1 - lr * wd = 0.99 first, then Adam on the raw gradient
    p, g, m, v = arr(1.0, 2.0), arr(0.5, -1.0), np.zeros(2), np.zeros(2)
    adamw_update(p, g, m, v, step=1, lr=0.1, eps=EPS, weight_decay=0.1)
    assert_close(m, [0.05, -0.1])             # not the decayed gradient
    assert_close(v, [0.00025, 0.001])
    assert_close(p, [0.99 - 0.1 * 0.5 / (0.5 + EPS), 1.98 + 0.1 / (1 + EPS)])
    assert_close(p, [0.89, 2.08], rtol=1e-8)


def test_adamw_without_decay_is_adam(rng):
    p1, g = rng.standard_normal(5), rng.standard_normal(5)
    p2, m1, v1, m2, v2 = p1.copy(), np.zeros(5), np.zeros(5), np.zeros(5), np.zeros(5)
    for t in (1, 2, 3):
        adam_update(p1, g, m1, v1, t, 0.01)
        adamw_update(p2, g, m2, v2, t, 0.01, weight_decay=0.0)
    assert np.array_equal(p1, p2)


UPDATES = {
    "sgd": lambda p, g, s1, s2, **kw: sgd_update(p, g, 0.1, **kw),
    "momentum": lambda p, g, s1, s2, **kw: momentum_update(p, g, s1, 0.1, **kw),
    "nesterov": lambda p, g, s1, s2, **kw: nesterov_update(p, g, s1, 0.1, **kw),
    "rmsprop": lambda p, g, s1, s2, **kw: rmsprop_update(p, g, s1, 0.1, **kw),
    "adam": lambda p, g, s1, s2, **kw: adam_update(p, g, s1, s2, 1, 0.1, **kw),
    "adamw": lambda p, g, s1, s2, **kw: adamw_update(p, g, s1, s2, 1, 0.1, **kw),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(UPDATES))
def test_in_place_and_dtype_kept(name, dtype, rng):
    p = rng.standard_normal((3, 2)).astype(dtype)
    g = rng.standard_normal((3, 2)).astype(dtype)
    s1, s2 = np.zeros_like(p), np.zeros_like(p)
    before = p.copy()
    ids = id(p), id(s1), id(s2)
    assert UPDATES[name](p, g, s1, s2, weight_decay=0.01) is None
    assert (id(p), id(s1), id(s2)) == ids
    assert p.dtype == s1.dtype == s2.dtype == dtype
    assert not np.array_equal(p, before)


@pytest.mark.parametrize("name", sorted(UPDATES))
def test_float32_close_to_float64(name, rng):
    p, g = rng.standard_normal(6), rng.standard_normal(6)
    p32, g32 = p.astype(np.float32), g.astype(np.float32)
    s = [np.zeros(6), np.zeros(6)]
    s32 = [np.zeros(6, np.float32), np.zeros(6, np.float32)]
    UPDATES[name](p, g, *s)
    UPDATES[name](p32, g32, *s32)
    assert_close(p32, p, dtype=np.float32)


@pytest.mark.parametrize("name", sorted(UPDATES))
def test_bad_arguments(name):
    p, s1, s2 = np.ones(3), np.zeros(3), np.zeros(3)
    with pytest.raises(ValueError, match="grad must have the shape of param"):
        UPDATES[name](p, np.ones(2), s1, s2)
    with pytest.raises(ValueError, match="weight_decay"):
        UPDATES[name](p, np.ones(3), s1, s2, weight_decay=-0.1)
    assert p.tolist() == [1.0, 1.0, 1.0]


def test_bad_lr_and_hyperparameters():
    p, g, a, b = np.ones(2), np.ones(2), np.zeros(2), np.zeros(2)
    for call in (lambda: sgd_update(p, g, -0.1),
                 lambda: momentum_update(p, g, a, -1.0),
                 lambda: nesterov_update(p, g, a, -1.0),
                 lambda: rmsprop_update(p, g, a, -1e-3),
                 lambda: adam_update(p, g, a, b, 1, -1e-3),
                 lambda: adamw_update(p, g, a, b, 1, -1e-3)):
        with pytest.raises(ValueError, match="lr must be in \\[0, inf\\), got -"):
            call()
    with pytest.raises(ValueError, match="lr must be in \\[0, inf\\), got inf"):
        sgd_update(p, g, float("inf"))
    with pytest.raises(TypeError, match="lr"):
        sgd_update(p, g, "0.1")
    with pytest.raises(ValueError, match="lr"):
        sgd_update(p, g, float("nan"))
    with pytest.raises(ValueError, match="beta"):
        momentum_update(p, g, a, 0.1, beta=1.0)
    with pytest.raises(ValueError, match="beta"):
        nesterov_update(p, g, a, 0.1, beta=-0.5)
    with pytest.raises(ValueError, match="beta2"):
        rmsprop_update(p, g, a, 0.1, beta2=1.0)
    with pytest.raises(ValueError, match="eps"):
        rmsprop_update(p, g, a, 0.1, eps=0.0)
    with pytest.raises(ValueError, match="step"):
        adam_update(p, g, a, b, 0, 0.1)
    with pytest.raises(TypeError, match="step"):
        adam_update(p, g, a, b, 1.0, 0.1)
    with pytest.raises(ValueError, match="beta1"):
        adam_update(p, g, a, b, 1, 0.1, beta1=1.0)
    with pytest.raises(ValueError, match="beta2"):
        adamw_update(p, g, a, b, 1, 0.1, beta2=1.5)
    assert p.tolist() == [1.0, 1.0] and a.tolist() == [0.0, 0.0]


def test_state_shape_mismatch_is_named():
    p, g = np.ones((2, 3)), np.ones((2, 3))
    bad = np.zeros((1, 3))  # would broadcast silently into param
    with pytest.raises(ValueError, match="velocity"):
        momentum_update(p, g, bad, 0.1)
    with pytest.raises(ValueError, match="velocity"):
        nesterov_update(p, g, bad, 0.1)
    with pytest.raises(ValueError, match="sq_avg"):
        rmsprop_update(p, g, bad, 0.1)
    with pytest.raises(ValueError, match="m must"):
        adam_update(p, g, bad, np.zeros((2, 3)), 1, 0.1)
    with pytest.raises(ValueError, match="v must"):
        adamw_update(p, g, np.zeros((2, 3)), bad, 1, 0.1)
    assert (p == 1).all()


def test_adamw_bad_step_leaves_param_untouched():
    p, g, m, v = np.ones(2), np.ones(2), np.zeros(2), np.zeros(2)
    with pytest.raises(ValueError, match="step"):
        adamw_update(p, g, m, v, 0, 0.1, weight_decay=0.5)
    assert p.tolist() == [1.0, 1.0]
