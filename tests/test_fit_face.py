"""fit's face (issue #16): progress output, a Keras user's habits, history plots and
the gradient monitor."""
import csv
import io
import sys
import types
import warnings

import numpy as np
import pytest

import fastdnn
from fastdnn import callbacks as cbs
from fastdnn.callbacks import Progress, epoch_line
from helpers import Terminal

def blobs(n=60, seed=0, features=5, classes=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    X = rng.standard_normal((n, features)) + y[:, None]
    return X, y


def model(backend="numpy", **kw):
    return fastdnn.MLP([5, 8, 3], backend=backend, seed=0, **kw)


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")


# ---------------------------------------------------------------------- progress
def test_off_a_terminal_one_fitted_line_per_epoch(capsys):
    X, y = blobs()
    model().fit(X, y, epochs=3, batch_size=16, validation_data=(X, y))   # verbose="auto"
    err = capsys.readouterr().out
    lines = err.splitlines()
    assert "\r" not in err and len(lines) == 3
    assert [l.split()[1] for l in lines] == ["1/3", "2/3", "3/3"]
    assert all(len(l) <= 79 and "val_" in l for l in lines)


def test_lines_shorten_and_keep_their_columns():
    logs = {"loss": 0.3, "accuracy": 0.9, "val_loss": 0.4, "val_accuracy": 0.8,
            "lr": 0.001, "epoch_time": 0.012}
    wide, style = epoch_line(2, 10, logs, 200)
    assert wide == ("epoch 3/10  loss 0.3000  accuracy 0.9000  val_loss 0.4000  "
                    "val_accuracy 0.8000  lr 0.001  12 ms")
    narrow, style = epoch_line(2, 10, logs, 60)
    assert len(narrow) <= 59 and narrow.startswith("epoch 3/10 loss 0.3000 acc 0.9000")
    # a later line that would fit keeps the first line's columns
    again, _ = epoch_line(3, 10, dict(logs, epoch_time=0.001), 60, style)
    assert again.split()[2::2] == narrow.split()[2::2]


def test_terminal_bar_advances_with_the_batches(monkeypatch):
    pytest.importorskip("tqdm")
    steps = []
    advance = Progress.advance
    monkeypatch.setattr(Progress, "advance", lambda self, s: (steps.append(s),
                                                               advance(self, s)))
    monkeypatch.setattr(sys, "stdout", Terminal())
    X, y = blobs(50)
    model().fit(X, y, epochs=2, batch_size=16)
    out = sys.stdout.getvalue()
    assert steps == [1] * 8   # 4 batches an epoch, each reported on the numpy backend
    assert "batch" in out and "\r" in out
    assert out.count("\n") == 2 and "\repoch 2/2  loss" in out   # the bar erased
    assert max(len(part) for part in out.replace("\r", "\n").split("\n")) <= 79


def test_a_notebook_gets_the_bar_too(monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(cbs, "in_notebook", lambda: True)
    monkeypatch.setattr(sys, "stdout", io.StringIO())   # not a terminal
    X, y = blobs(50)
    model().fit(X, y, epochs=1, batch_size=16)
    assert "batch" in sys.stdout.getvalue()


def test_notebooks_are_detected_as_tqdm_does(monkeypatch):
    assert not cbs.in_notebook()
    shell = type("ZMQInteractiveShell", (), {})()
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", types.ModuleType("zmqshell"))
    monkeypatch.setitem(sys.modules, "IPython",
                        types.SimpleNamespace(get_ipython=lambda: shell))
    monkeypatch.delenv("QT_API", raising=False)
    assert cbs.in_notebook()
    monkeypatch.setenv("QT_API", "pyqt5")   # a Qt console draws no widgets
    assert not cbs.in_notebook()


def test_without_tqdm_a_terminal_gets_lines(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)   # import tqdm raises ImportError
    monkeypatch.setattr(sys, "stdout", Terminal())
    X, y = blobs()
    model().fit(X, y, epochs=2, batch_size=16)
    out = sys.stdout.getvalue()
    assert "\r" not in out and out.count("\n") == 2


@pytest.mark.parametrize("verbose, lines", [(True, 2), (False, 0), ("auto", 2), (2, 2),
                                            (0, 0)])
def test_verbose_spellings(capsys, verbose, lines):
    X, y = blobs()
    model().fit(X, y, epochs=2, batch_size=16, verbose=verbose)
    assert capsys.readouterr().out.count("\n") == lines


def test_verbose_refuses_other_words():
    X, y = blobs()
    with pytest.raises(ValueError, match="verbose must be 0, 1, 2, True, False or 'auto'"):
        model().fit(X, y, epochs=1, verbose="loud")


def test_early_stopping_says_so(capsys):
    X, y = blobs(40, seed=1)
    X_dev, y_dev = blobs(30, seed=2)
    m = fastdnn.MLP([5, 32, 3], backend="numpy", seed=0)
    h = m.fit(X, y, optimizer=fastdnn.Adam(0.1), epochs=40, batch_size=8, verbose=2,
              validation_data=(X_dev, y_dev), early_stopping=1)
    err = capsys.readouterr().out
    assert h.stopped_epoch is not None and h.stopped_epoch < 40
    assert h.best_epoch < h.stopped_epoch
    assert h["val_loss"][h.best_epoch - 1] == min(h["val_loss"])   # counted from 1
    assert f"epoch {h.best_epoch}/40" in err                       # as displayed
    text = " ".join(err.split())
    assert f"Early stopping after epoch {h.stopped_epoch}" in text
    assert f"Restored the weights of epoch {h.best_epoch}" in text
    assert m.evaluate(X_dev, y_dev)["loss"] == pytest.approx(h["val_loss"][h.best_epoch - 1])


# ---------------------------------------------------------------------- Keras habits
def test_validation_split_takes_the_last_rows_before_shuffling():
    X, y = blobs(40)
    h = model().fit(X, y, epochs=3, batch_size=8, verbose=0, validation_split=0.25)
    h_ref = model().fit(X[:30], y[:30], epochs=3, batch_size=8, verbose=0,
                        validation_data=(X[30:], y[30:]))
    assert h["val_loss"] == h_ref["val_loss"] and h["loss"] == h_ref["loss"]
    with pytest.raises(ValueError, match="not both"):
        model().fit(X, y, verbose=0, validation_split=0.2, validation_data=(X, y))
    with pytest.raises(ValueError, match="validation_split=0.99 of 40 rows leaves 0"):
        model().fit(X, y, verbose=0, validation_split=0.99)
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\)"):
        model().fit(X, y, verbose=0, validation_split=1.0)


def test_class_weight_multiplies_sample_weight():
    X, y = blobs(40)
    w = np.linspace(0.5, 2.0, 40)
    h = model().fit(X, y, epochs=2, batch_size=8, verbose=0, sample_weight=w,
                    class_weight={0: 3.0, 2: 0.5})
    table = np.array([3.0, 1.0, 0.5])   # class 1 left out: weighs 1
    h_ref = model().fit(X, y, epochs=2, batch_size=8, verbose=0, sample_weight=w * table[y])
    assert h["loss"] == pytest.approx(h_ref["loss"], rel=1e-6)
    binary = fastdnn.MLP([5, 4, 1], output="sigmoid", backend="numpy", seed=0)
    binary.fit(X, y > 0, epochs=1, verbose=0, class_weight={1: 2.0})
    with pytest.raises(ValueError, match="class_weight key"):
        model().fit(X, y, verbose=0, class_weight={3: 1.0})
    with pytest.raises(ValueError, match="softmax output or one sigmoid"):
        fastdnn.MLP([5, 1], output="identity", backend="numpy").fit(
            X, y, verbose=0, class_weight={0: 1.0})
    with pytest.raises(ValueError, match="not be all zero"):
        model().fit(X, y, verbose=0, class_weight={0: 0.0, 1: 0.0, 2: 0.0})


class Recorder(fastdnn.Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin", self.model.step_, self.params["steps"]))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, logs["steps"]))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, round(logs["loss"], 12)))
        logs["twice_loss"] = 2 * logs["loss"]   # recorded in the history
        if epoch == 1:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", "loss" in logs))


def test_keras_hooks_in_order_with_the_model():
    X, y = blobs(24)
    rec = Recorder()
    m = model()
    h = m.fit(X, y, epochs=5, batch_size=8, verbose=0, callbacks=[rec])
    assert rec.model is m and rec.params == {"epochs": 5, "steps": 3, "verbose": 0}
    expected = [("train_begin", 0, 3)]
    for e in range(2):   # stopped after the second epoch
        expected += [("epoch_begin", e)] + [("batch_end", b, 1) for b in range(3)]
        expected.append(("epoch_end", e, round(h["loss"][e], 12)))
    assert rec.calls == expected + [("train_end", True)]
    assert h["twice_loss"] == [2 * v for v in h["loss"]] and h.stopped_epoch == 2


def test_batch_hooks_on_the_cpu_engine_come_per_run():
    pytest.importorskip("fastdnn.cpu")
    X, y = blobs(400)
    rec = Recorder()
    model("cpu").fit(X, y, epochs=2, batch_size=4, verbose=0, callbacks=[rec])
    for e in range(2):
        i = rec.calls.index(("epoch_begin", e))
        runs = []
        for c in rec.calls[i + 1:]:
            if c[0] != "batch_end":
                break
            runs.append(c)
        assert sum(c[2] for c in runs) == 100 and runs[-1][1] == 99
        assert all(later[1] - earlier[1] == later[2]
                   for earlier, later in zip(runs, runs[1:]))


def test_the_first_callback_form_still_works_with_a_warning():
    class Old(fastdnn.Callback):
        def __init__(self):
            self.seen, self.params = [], "mine"   # its own names are left alone

        def on_train_begin(self, model):
            self.seen.append(("begin", model))

        def on_epoch_end(self, model, epoch, logs):
            self.seen.append((epoch, model.epoch_))

    X, y = blobs()
    old, m = Old(), model()
    with pytest.warns(DeprecationWarning,
                      match=r"Old's on_epoch_end, on_train_begin take the model"):
        m.fit(X, y, epochs=2, verbose=0, callbacks=[old])
    assert old.seen == [("begin", m), (0, 1), (1, 2)] and old.params == "mine"


def test_history_as_keras_has_it():
    X, y = blobs()
    h = model().fit(X, y, epochs=3, batch_size=16, verbose=0, validation_data=(X, y))
    assert h.history is h and isinstance(h.history, dict)
    assert all(isinstance(v, list) and len(v) == 3 for v in h.history.values())
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= set(h.history)
    assert h.epoch == [0, 1, 2] and h.params["epochs"] == 3


def test_early_stopping_in_callbacks_as_keras_users_write_it():
    X, y = blobs(40, seed=1)
    stop = fastdnn.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    h = fastdnn.MLP([5, 32, 3], backend="numpy", seed=0).fit(
        X, y, optimizer=fastdnn.Adam(0.1), epochs=40, batch_size=8, verbose=0,
        validation_split=0.25, callbacks=[stop])
    assert h.best_epoch == stop.best_epoch and h.stopped_epoch == stop.stopped_epoch
    assert h["val_loss"][h.best_epoch - 1] == min(h["val_loss"])
    with pytest.raises(ValueError, match="validation_data or validation_split"):
        model().fit(X, y, verbose=0, callbacks=[fastdnn.EarlyStopping()])


def test_model_checkpoint_saves_every_epoch_or_the_best(tmp_path):
    X, y = blobs(40, seed=1)
    every = fastdnn.ModelCheckpoint(tmp_path / "m-{epoch:02d}.npz", monitor="val_loss")
    best = fastdnn.ModelCheckpoint(str(tmp_path / "best.npz"), save_best_only=True)
    m = fastdnn.MLP([5, 32, 3], backend="numpy", seed=0)
    h = m.fit(X, y, optimizer=fastdnn.Adam(0.1), epochs=6, batch_size=8, verbose=0,
              validation_split=0.25, callbacks=[every, best])
    assert every.saved == [str(tmp_path / f"m-{e:02d}.npz") for e in range(1, 7)]
    drops = [i for i, v in enumerate(h["val_loss"]) if v == min(h["val_loss"][:i + 1])]
    assert len(best.saved) == len(drops)
    kept = fastdnn.load(tmp_path / "best.npz")
    assert kept.evaluate(X[30:], y[30:])["loss"] == pytest.approx(min(h["val_loss"]))
    with pytest.raises(ValueError, match="cannot be formatted"):
        m.fit(X, y, epochs=1, verbose=0,
              callbacks=[fastdnn.ModelCheckpoint(tmp_path / "{nope}.npz")])


def test_csv_logger_writes_and_appends(tmp_path):
    X, y = blobs()
    path = tmp_path / "log.csv"
    m = model()
    h = m.fit(X, y, epochs=2, verbose=0, callbacks=[fastdnn.CSVLogger(path)])
    m.fit(X, y, epochs=3, verbose=0, callbacks=[fastdnn.CSVLogger(path, append=True)])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch"] + sorted(h)
    assert [r["epoch"] for r in rows] == ["1", "2", "1", "2", "3"]
    assert float(rows[1]["loss"]) == pytest.approx(h["loss"][1])


def test_reduce_lr_on_plateau_cuts_and_floors():
    X, y = blobs()
    # min_delta so large that no epoch after the first counts as an improvement
    cut = fastdnn.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_lr=0.03,
                                    min_delta=100.0)
    h = model().fit(X, y, optimizer=fastdnn.SGD(learning_rate=0.1), epochs=8, verbose=0,
                    callbacks=[cut])
    assert h["lr"] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.03, 0.03, 0.03])
    assert [e for e, _, _ in cut.events] == [3, 5]
    with pytest.raises(ValueError, match="factor must be in"):
        fastdnn.ReduceLROnPlateau(factor=1.5)


def test_summary_prints_the_backend_in_use(capsys):
    m = fastdnn.MLP([4, 6, 3], batchnorm=True, seed=0)   # backend "auto"
    assert m.summary() is None
    out = capsys.readouterr().out
    used = fastdnn.resolve_backend("auto")
    assert f"backend {used} (from 'auto')" in out
    lines = []
    m.summary(print_fn=lines.append)
    assert lines == out.splitlines()
    assert "Dense(4->6, no bias) -> BatchNorm -> relu" in lines[1]
    assert lines[-1].split()[-2] == f"{m.n_params:,}"


def test_repr_shows_what_differs_from_the_defaults():
    m = fastdnn.MLP([64, 256, 10], batchnorm=True, keep_prob=0.8, l2=1e-4, seed=0)
    assert repr(m) == "MLP([64, 256, 10], batchnorm=True, keep_prob=0.8, l2=0.0001)"
    assert repr(fastdnn.MLP([3, 2], output="sigmoid", backend="numpy")) == \
        "MLP([3, 2], output='sigmoid', backend='numpy')"
    seq = fastdnn.Sequential([fastdnn.Dense(2), fastdnn.Activation("softmax")], l2=0.01)
    assert repr(seq).endswith("], l2=0.01)")


@pytest.mark.parametrize("cls", [fastdnn.SGD, fastdnn.Momentum, fastdnn.Nesterov,
                                 fastdnn.RMSprop, fastdnn.Adam, fastdnn.AdamW])
def test_learning_rate_is_an_alias_of_lr(cls):
    assert cls(learning_rate=0.02).lr == 0.02 == cls(0.02).lr == cls(lr=0.02).lr
    assert cls().lr == (0.01 if cls in (fastdnn.SGD, fastdnn.Momentum, fastdnn.Nesterov)
                        else 0.001)
    with pytest.raises(TypeError, match="give lr or learning_rate .*not both"):
        cls(lr=0.1, learning_rate=0.1)
    with pytest.raises(ValueError, match="lr must be"):
        cls(learning_rate=-1.0)


# ---------------------------------------------------------------------- plots
def test_history_plot_draws_loss_and_accuracy(tmp_path, pyplot):
    import matplotlib.image
    X, y = blobs()
    h = model().fit(X, y, epochs=3, verbose=0, validation_split=0.2, early_stopping=5)
    fig = h.plot()
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy"]
    assert [len(line.get_xdata()) for line in fig.axes[0].lines[:2]] == [3, 3]
    fig.savefig(tmp_path / "curves.png")
    image = matplotlib.image.imread(tmp_path / "curves.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0
    with pytest.raises(ValueError, match="kind must be"):
        h.plot(kind="weights")


def test_plot_without_matplotlib_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    h = fastdnn.History()
    h.append({"loss": 1.0})
    with pytest.raises(ImportError, match="needs matplotlib: pip install matplotlib"):
        h.plot()


# ---------------------------------------------------------------------- gradients
def deep(activation, init, backend="numpy"):
    return fastdnn.MLP([20] + [32] * 6 + [2], activation=activation, init=init,
                       backend=backend, seed=0)


def gradient_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 20))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_a_deep_sigmoid_net_with_tiny_weights_warns_of_vanishing_gradients(backend):
    if backend == "cpu":
        pytest.importorskip("fastdnn.cpu")
    X, y = gradient_data()
    monitor = fastdnn.GradientMonitor()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = deep("sigmoid", "random", backend).fit(
            X, y, epochs=2, batch_size=64, verbose=0, validation_split=0.25,
            callbacks=[monitor])
    said = [str(w.message) for w in caught if w.category is RuntimeWarning]
    assert said[0].startswith("layer 1's gradients are vanishing at epoch 1: "
                              "||dW1|| / ||W1|| = ")
    assert len(said) == len({w.split(" at ")[0] for w in said})   # once per layer
    assert len(h["grad_norm_1"]) == len(h["weight_norm_7"]) == 2
    assert h["grad_norm_1"][-1] < 1e-7 * h["weight_norm_1"][-1]
    assert {(layer, kind) for _, layer, kind, _ in monitor.events} >= {(1, "vanishing")}
    diagnosis = fastdnn.diagnose(h)
    assert diagnosis.gradients[0][:3] == (1, "vanishing", 1)
    assert "layer 1's gradients were vanishing from epoch 1" in str(diagnosis)
    assert any("init='he'" in r for r in diagnosis.remedies)


def test_he_init_on_relu_keeps_gradients_healthy(pyplot, tmp_path):
    X, y = gradient_data()
    monitor = fastdnn.GradientMonitor()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        h = deep("relu", "he").fit(X, y, epochs=2, batch_size=64, verbose=0,
                                   validation_split=0.25, callbacks=[monitor])
    assert monitor.events == [] and fastdnn.diagnose(h).gradients == []
    assert h["grad_norm_7"][-1] > 0 and np.isfinite(h["grad_norm_1"]).all()
    for fig in (monitor.plot(), h.plot(kind="gradients")):
        assert len(fig.axes[0].lines) == 7
        fig.savefig(tmp_path / "g.png")


def test_gradient_norms_are_the_last_steps():
    X, y = gradient_data()
    m = deep("relu", "he")
    h = m.fit(X, y, epochs=1, batch_size=256, shuffle=False, verbose=0,
              optimizer=fastdnn.SGD(0.0), callbacks=[fastdnn.GradientMonitor()])
    _, grads = m.loss_and_grads(X, y)   # SGD(0): the weights did not move
    for l in (1, 4, 7):
        assert h[f"grad_norm_{l}"][0] == pytest.approx(np.linalg.norm(grads[f"dW{l}"]),
                                                       rel=1e-5)
