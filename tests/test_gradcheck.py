"""gradient_check: passes on correct models, catches a planted bug and names the block."""
import numpy as np
import pytest

import fastdnn
from fastdnn import MLP, Activation, BatchNorm, Dense, Dropout, Sequential


def data(n=8, n_x=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n_x)), rng.integers(0, k, n)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(batchnorm=True, keep_prob=0.5, l2=0.5),
    dict(activation="tanh", init="xavier", l2=0.1, keep_prob=[0.9, 0.7]),
    dict(activation="sigmoid", batchnorm=True),
])
def test_correct_models_pass(kwargs):
    X, y = data()
    m = MLP([4, 5, 4, 3], backend="numpy", seed=1, **kwargs)
    before = m.get_batchnorm_stats()
    r = fastdnn.gradient_check(m, X, y)
    assert r.difference < 1e-6, str(r)
    assert r.passed() and r.verdict == "fine"
    assert all(b["difference"] < 1e-6 for b in r.blocks.values())
    assert set(r.blocks) == set(m.get_weights(statistics=False))
    after = m.get_batchnorm_stats()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_sequential_and_other_outputs():
    X, _ = data()
    rng = np.random.default_rng(1)
    m = Sequential([Dense(5), BatchNorm(), Activation("leaky_relu"), Dropout(keep_prob=0.6),
                    Dense(2), Activation("sigmoid")], input_dim=4, l2=0.2, backend="numpy", seed=0)
    assert fastdnn.gradient_check(m, X, rng.integers(0, 2, (8, 2))).difference < 1e-6
    r = Sequential([Dense(3), Activation("tanh"), Dense(2)], input_dim=4, backend="numpy",
                   seed=0)
    assert fastdnn.gradient_check(r, X, rng.standard_normal((8, 2))).difference < 1e-6


def test_catches_a_planted_bug_and_names_the_block(monkeypatch):
    X, y = data()
    m = MLP([4, 5, 4, 3], batchnorm=True, l2=0.1, backend="numpy", seed=1)
    real = fastdnn.reference.dense_backward

    def buggy(d_out, X, W, *args, **kwargs):
        dX, dW, db = real(d_out, X, W, *args, **kwargs)
        if W.shape == (4, 5):          # layer 2
            dW *= 1.01
        return dX, dW, db

    monkeypatch.setattr(fastdnn.reference, "dense_backward", buggy)
    r = fastdnn.gradient_check(m, X, y)
    assert r.difference > 1e-4 and not r.passed()
    assert r.worst_block == "W2"
    assert r.blocks["W2"]["difference"] > 1e-3
    assert r.blocks["W1"]["difference"] < 1e-6
    assert "W2" in str(r) and "bug" in str(r)


def test_float32_model_is_checked_in_float64_and_left_alone():
    X, y = data()
    m = MLP([4, 3, 3], dtype="float32", keep_prob=0.5, backend="numpy", seed=0)
    p = m.get_weights()
    r = fastdnn.gradient_check(m, X, y, epsilon=1e-6)
    assert r.difference < 1e-6
    assert all(np.array_equal(p[k], v) for k, v in m.get_weights().items())
    assert m.blocks[0].keep_prob == 0.5
    with pytest.raises(ValueError, match="epsilon"):
        fastdnn.gradient_check(m, X, y, epsilon=0)
