"""Keras's and PyTorch's names and habits: what fastdnn takes, and what it refuses.

- ``optimizer.learning_rate`` is ``lr`` (a Keras callback sets it between epochs);
- Adam's ``beta_1``, ``beta_2``, ``epsilon`` are ``beta1``, ``beta2``, ``eps``;
- ``SGD(momentum=...)`` is refused with the equivalent fastdnn optimizer, whose claim
  (``Momentum(lr / (1 - b), beta=b)`` steps as Keras's and PyTorch's momentum) is checked;
- ``Dropout(rate=...)`` drops as Keras's does; a positional value stays keep_prob, warned.
"""
import warnings

import numpy as np
import pytest

import fastdnn
from fastdnn import MLP, Activation, Dense, Dropout, Sequential
from fastdnn.layers import layer_from_config
from fastdnn.optim import OPTIMIZERS, get_optimizer, optimizer_from_config


def blobs(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    return rng.standard_normal((3, 4))[y] * 2 + rng.standard_normal((n, 4)), y


# ---------------------------------------------------------------------- learning_rate
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_learning_rate_reads_and_writes_lr(name):
    opt = OPTIMIZERS[name](lr=0.02)
    assert opt.learning_rate == 0.02
    opt.learning_rate = 1e-4
    assert opt.lr == 1e-4 and opt.learning_rate == 1e-4
    assert "learning_rate" not in vars(opt)   # an alias, not a second, unused attribute
    assert opt.initial_lr == pytest.approx(1e-4, rel=1e-12)   # a schedule goes on from it
    opt.lr = 0.5
    assert opt.learning_rate == 0.5
    assert opt.initial_lr == pytest.approx(1e-4, rel=1e-12)   # lr = (schedules') leaves it
    with pytest.raises(ValueError, match=r"learning_rate must be in \[0, inf\), got -1"):
        opt.learning_rate = -1.0
    with pytest.raises(TypeError, match="learning_rate must be a real number"):
        opt.learning_rate = "0.1"
    assert opt.lr == 0.5


def test_learning_rate_survives_state_dict_and_config():
    opt = fastdnn.Adam(learning_rate=0.01)
    opt.learning_rate = 0.003
    copy = fastdnn.Adam()
    copy.load_state_dict(opt.state_dict())
    assert copy.learning_rate == copy.lr == 0.003
    assert "learning_rate" not in opt.get_config()
    assert optimizer_from_config(opt.get_config()).learning_rate == 0.003


class SetRate(fastdnn.Callback):
    """A Keras-style callback: divide the rate by 10 after the first epoch."""

    def __init__(self, attribute):
        self.attribute = attribute

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            setattr(self.model.optimizer, self.attribute, 0.1 * self.model.optimizer.lr)


def fit_with(attribute, backend):
    X, y = blobs()
    model = MLP([4, 8, 3], backend=backend, seed=1)
    callbacks = [] if attribute is None else [SetRate(attribute)]
    history = model.fit(X, y, optimizer=fastdnn.Momentum(0.2), epochs=3, batch_size=16,
                        shuffle=False, callbacks=callbacks, verbose=0)
    return history.history["lr"], model.get_weights()


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_a_callback_setting_learning_rate_acts_as_setting_lr(backend):
    if backend == "cpu":
        pytest.importorskip("fastdnn.cpu")
    lrs, weights = fit_with("learning_rate", backend)
    lrs_lr, weights_lr = fit_with("lr", backend)
    _, weights_unchanged = fit_with(None, backend)
    assert lrs == pytest.approx([0.2, 0.02, 0.02])   # recorded before on_epoch_end
    assert lrs == lrs_lr
    for k, w in weights_lr.items():
        assert np.array_equal(weights[k], w), k
    assert any(not np.array_equal(weights[k], w) for k, w in weights_unchanged.items())


@pytest.mark.parametrize("per", ["epoch", "iteration"])
def test_under_a_schedule_a_new_learning_rate_carries_on(per):
    """The model's schedule sets lr each epoch (or step) from initial_lr: a callback's
    learning_rate = 0.1 * lr scales what follows by 0.1, as ReduceLROnPlateau's cuts do,
    where it used to be replaced at the next epoch."""
    from fastdnn.schedules import InverseTime
    X, y = blobs()

    def lrs(callbacks):
        model = MLP([4, 8, 3], backend="numpy", seed=1)
        return model.fit(X, y, optimizer=fastdnn.Adam(0.01), epochs=4, batch_size=16,
                         schedule=InverseTime(0.5, per=per), callbacks=callbacks,
                         verbose=0).history["lr"]

    plain, cut = lrs([]), lrs([SetRate("learning_rate")])
    assert cut[0] == plain[0] and len(set(plain)) == 4
    assert cut[1:] == pytest.approx([0.1 * r for r in plain[1:]], rel=1e-12)


# ---------------------------------------------------------------------- Adam's names
@pytest.mark.parametrize("cls", [fastdnn.Adam, fastdnn.AdamW])
def test_adam_takes_keras_names(cls):
    keras = cls(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-7)
    ours = cls(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-7)
    assert keras.get_config() == ours.get_config()
    assert (keras.beta1, keras.beta2, keras.eps) == (0.8, 0.99, 1e-7)
    assert get_optimizer(cls.__name__.lower(), beta_2=0.95).beta2 == 0.95
    default = cls()
    assert (default.beta1, default.beta2, default.eps) == (0.9, 0.999, 1e-8)
    assert cls(0.01, 0.7, 0.9, 1e-6).get_config()["beta1"] == 0.7   # positional as before


@pytest.mark.parametrize("cls", [fastdnn.Adam, fastdnn.AdamW])
@pytest.mark.parametrize("ours, keras", [("beta1", "beta_1"), ("beta2", "beta_2"),
                                         ("eps", "epsilon")])
def test_adam_refuses_both_spellings(cls, ours, keras):
    with pytest.raises(TypeError, match=rf"give {ours} or {keras} .*not both"):
        cls(**{ours: 0.9, keras: 0.8})


def test_adam_keras_names_are_validated_under_fastdnns_names():
    with pytest.raises(ValueError, match=r"beta1 must be in \[0, 1\), got 1.0"):
        fastdnn.Adam(beta_1=1.0)
    with pytest.raises(ValueError, match=r"eps must be in \(0, inf\)"):
        fastdnn.Adam(epsilon=0.0)


# ---------------------------------------------------------------------- SGD's momentum
@pytest.mark.parametrize("kwargs, cls", [
    (dict(momentum=0.9), "Momentum"),
    (dict(momentum=0.5, nesterov=True), "Nesterov"),
    (dict(nesterov=True), "Nesterov"),
])
def test_sgd_refuses_classical_momentum_and_names_the_equivalent(kwargs, cls):
    with pytest.raises(TypeError) as info:
        fastdnn.SGD(0.01, **kwargs)
    message = str(info.value)
    b = kwargs.get("momentum", 0.9)
    assert "SGD takes no momentum" in message
    assert f"fastdnn.{cls}(lr / (1 - {b:g}), beta={b:g})" in message
    assert "(1 - beta) times" in message


def test_sgd_takes_momentum_zero_as_plain_descent():
    opt = fastdnn.SGD(learning_rate=0.1, momentum=0.0, nesterov=False)
    assert opt.get_config() == fastdnn.SGD(0.1).get_config()
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\), got 1.5"):
        fastdnn.SGD(momentum=1.5)
    with pytest.raises(TypeError, match="nesterov must be True or False"):
        fastdnn.SGD(nesterov="yes")


def classical_momentum(x0, grad, lrs, b, nesterov, keras):
    """Keras's SGD(momentum=b) (m = b m - lr g; x += m) and PyTorch's (buf = b buf + g;
    x -= lr buf), with their nesterov=True forms."""
    x, velocity = x0.copy(), np.zeros_like(x0)
    for lr in lrs:
        g = grad(x)
        if keras:
            velocity = b * velocity - lr * g
            x += b * velocity - lr * g if nesterov else velocity
        else:
            velocity = b * velocity + g
            x -= lr * (g + b * velocity if nesterov else velocity)
    return x


@pytest.mark.parametrize("nesterov", [False, True])
def test_the_equivalence_the_sgd_message_states(nesterov):
    A = np.diag([1.0, 10.0, 0.3])
    x0, b = np.array([1.0, -2.0, 3.0]), 0.9

    def grad(x):
        return A @ x

    def fastdnn_steps(lrs):
        opt = (fastdnn.Nesterov if nesterov else fastdnn.Momentum)(beta=b, backend="numpy")
        x = x0.copy()
        for lr in lrs:
            opt.lr = lr / (1 - b)
            opt.step(x, grad(x))
        return x

    constant, decaying = [0.01] * 40, list(np.linspace(0.02, 0.001, 40))
    for keras in (True, False):
        want = classical_momentum(x0, grad, constant, b, nesterov, keras)
        np.testing.assert_allclose(fastdnn_steps(constant), want, rtol=1e-12, atol=1e-14)
    # under a changing lr PyTorch's steps still match; Keras's, with lr inside m, do not
    np.testing.assert_allclose(fastdnn_steps(decaying),
                               classical_momentum(x0, grad, decaying, b, nesterov, False),
                               rtol=1e-12, atol=1e-14)
    assert not np.allclose(fastdnn_steps(decaying),
                           classical_momentum(x0, grad, decaying, b, nesterov, True))
    # with the same lr fastdnn's step is (1 - b) times the classical one
    plain = (fastdnn.Nesterov if nesterov else fastdnn.Momentum)(0.01, beta=b)
    x = x0.copy()
    plain.step(x, grad(x))
    np.testing.assert_allclose(x0 - x, (1 - b) * (x0 - classical_momentum(
        x0, grad, [0.01], b, nesterov, False)), rtol=1e-12)


# ---------------------------------------------------------------------- Dropout
def test_dropout_rate_drops_as_in_keras():
    assert Dropout(rate=0.2).keep_prob == pytest.approx(0.8)
    assert Dropout(keep_prob=0.2).keep_prob == 0.2
    assert Dropout(rate=0.0).keep_prob == 1.0
    assert repr(Dropout(rate=0.5)) == "Dropout(keep_prob=0.5)"
    assert Dropout(rate=0.25) == Dropout(keep_prob=0.75)


def test_dropout_by_position_keeps_meaning_keep_prob_and_warns():
    with pytest.warns(FutureWarning) as record:
        layer = Dropout(0.2)
    assert layer.keep_prob == 0.2
    message = str(record[0].message)
    assert "Dropout(0.2) keeps 20% of the units (keep_prob)" in message
    assert "Keras's Dropout(0.2) drops 20%" in message
    assert "Dropout(keep_prob=0.2) or Dropout(rate=0.8)" in message
    assert record[0].filename == __file__   # points at the caller's line


@pytest.mark.parametrize("make, match", [
    (lambda: Dropout(), r"one of keep_prob .* and rate .*got keep_prob=None and rate=None"),
    (lambda: Dropout(keep_prob=0.8, rate=0.2), r"got keep_prob=0.8 and rate=0.2"),
    (lambda: Dropout(0.8, keep_prob=0.8), r"keep_prob twice"),
    (lambda: Dropout(0.8, 0.2), r"positional argument"),
])
def test_dropout_wants_exactly_one_of_keep_prob_and_rate(make, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with pytest.raises(TypeError, match=match):
            make()


@pytest.mark.parametrize("kwargs, match", [
    (dict(rate=1.0), r"rate must be in \[0, 1\), got 1.0"),
    (dict(rate=-0.1), r"rate must be in \[0, 1\), got -0.1"),
    (dict(keep_prob=0.0), r"keep_prob must be in \(0, 1\], got 0.0"),
])
def test_dropout_values_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Dropout(**kwargs)


def test_dropout_config_save_and_load_do_not_warn(tmp_path):
    X, y = blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = Sequential([Dense(6), Activation("relu"), Dropout(rate=0.3), Dense(3),
                            Activation("softmax")], backend="numpy", seed=0)
        mlp = MLP([4, 6, 3], keep_prob=0.7, backend="numpy", seed=0)
        assert layer_from_config(Dropout(rate=0.3).get_config()) == Dropout(keep_prob=0.7)
        model.fit(X, y, epochs=1, batch_size=16, verbose=0)
        model.save(tmp_path / "m.npz")
        loaded = fastdnn.load(tmp_path / "m.npz")
        mlp.save(tmp_path / "mlp.npz")
        fastdnn.load(tmp_path / "mlp.npz")
    dropouts = [layer for layer in loaded.layers if isinstance(layer, Dropout)]
    assert [d.keep_prob for d in dropouts] == [pytest.approx(0.7)]
