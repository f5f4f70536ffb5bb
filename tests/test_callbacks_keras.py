"""fit's callbacks as a Keras user expects them (user trial): the epoch's line before the
callbacks' output, warnings at the user's line, a steady lr column, verbose callbacks,
Keras's patience, LearningRateScheduler, batch-begin hooks, output on stdout, an early
error for a checkpoint folder that is missing, and readable gradient plots."""
import sys
import warnings

import numpy as np
import pytest

import fastdnn
from fastdnn.callbacks import epoch_line, format_lr
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


class Scores(fastdnn.Callback):
    """Logs "score" from a fixed sequence, for the callbacks after it to monitor."""

    def __init__(self, scores):
        self.scores = scores

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.scores[epoch]


# ---------------------------------------------------------------------- 1. order
def test_the_epoch_line_closes_the_bar_before_the_callbacks_print(monkeypatch):
    pytest.importorskip("tqdm")

    class Talker(fastdnn.Callback):
        def on_epoch_end(self, epoch, logs=None):
            print(f"my callback: epoch {epoch}")

    monkeypatch.setattr(sys, "stdout", Terminal())
    X, y = blobs(50)
    model().fit(X, y, epochs=2, batch_size=16, validation_data=(X, y),
                early_stopping={"patience": 0, "min_delta": 1e9}, callbacks=[Talker()])
    out = sys.stdout.getvalue()
    assert "batch" in out   # a bar was drawn
    lines = out.split("\n")
    talk = [i for i, line in enumerate(lines) if "my callback: epoch 0" in line]
    assert len(talk) == 1 and lines[talk[0]] == "my callback: epoch 0"   # a line of its own
    shown = lines[talk[0] - 1].split("\r")   # the bar's redraws, then the epoch's line
    assert shown[-1].startswith("epoch 1/2 ") and "loss" in shown[-1] and "|" in shown[1]
    # the stop's note still comes after the last epoch's line and the callbacks
    assert out.index("my callback: epoch 1") < out.index("Early stopping after epoch 2")


# ---------------------------------------------------------------------- 2. warnings
def test_training_warnings_point_at_the_line_that_called_fit():
    X, y = blobs()

    class Old(fastdnn.Callback):
        def on_epoch_end(self, model, epoch, logs):   # the first form: deprecated
            pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model().fit(X, y, epochs=1, verbose=0, callbacks=[
            fastdnn.GradientMonitor(exploding=1e-12), Old()])
    kinds = {w.category for w in caught}
    assert {RuntimeWarning, DeprecationWarning} <= kinds
    for w in caught:
        if w.category in (RuntimeWarning, DeprecationWarning):
            assert w.filename == __file__, (w.filename, str(w.message))


# ---------------------------------------------------------------------- 3. lr column
def test_learning_rates_are_compact():
    assert [format_lr(v) for v in (0.1, 0.025, 0.0125, 0.00625, 0.001, 1.25e-4, 3e-5)] \
        == ["0.1", "0.025", "0.0125", "0.00625", "0.001", "1.25e-4", "3e-5"]
    assert all(len(format_lr(0.1 / 2 ** k)) <= 7 for k in range(27))   # to 1.5e-9


def test_the_lr_column_stays_when_the_rate_changes():
    style, lines = (False, frozenset()), []
    for epoch in range(30):
        logs = {"loss": 0.3, "accuracy": 0.9, "val_loss": 0.4, "val_accuracy": 0.8,
                "lr": 0.05 / 2 ** (epoch // 5), "epoch_time": 0.0012}
        line, style = epoch_line(epoch, 30, logs, 80, style)
        lines.append(line)
    assert all(len(line) <= 79 for line in lines)
    assert all(f" lr {format_lr(0.05 / 2 ** (e // 5))}" in line
               for e, line in enumerate(lines)), lines
    assert "1.2 ms" in lines[0]   # all six fit at first; the time yields to lr


def test_fit_lines_show_each_epochs_rate(capsys):
    X, y = blobs()
    halve = fastdnn.LearningRateScheduler(lambda epoch, lr: lr / 2 if epoch else lr)
    h = model().fit(X, y, optimizer=fastdnn.SGD(0.05), epochs=12, batch_size=16,
                    validation_data=(X, y), verbose=2, callbacks=[halve])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12 and all(len(line) <= 79 for line in lines)
    for line, lr in zip(lines, h["lr"]):
        assert f" lr {format_lr(lr)}" in line, line


# ---------------------------------------------------------------------- 4. verbose
def test_verbose_callbacks_say_what_they_do(capsys, tmp_path):
    X, y = blobs()
    scores = [1.0, 0.5, 0.6, 0.4, 0.7, 0.8]
    best = tmp_path / "best.npz"
    h = model().fit(X, y, optimizer=fastdnn.SGD(0.1), epochs=6, verbose=0, callbacks=[
        Scores(scores),
        fastdnn.ReduceLROnPlateau(monitor="score", factor=0.5, patience=1, verbose=1),
        fastdnn.ModelCheckpoint(best, monitor="score", save_best_only=True, verbose=1),
        fastdnn.EarlyStopping(monitor="score", patience=2, verbose=1)])
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"Epoch 1: score improved from inf to 1, saving model to {best}",
        f"Epoch 2: score improved from 1 to 0.5, saving model to {best}",
        "Epoch 3: ReduceLROnPlateau reducing learning rate to 0.05.",
        "Epoch 3: score did not improve from 0.5",
        f"Epoch 4: score improved from 0.5 to 0.4, saving model to {best}",
        "Epoch 5: ReduceLROnPlateau reducing learning rate to 0.025.",
        "Epoch 5: score did not improve from 0.4",
        "Epoch 6: ReduceLROnPlateau reducing learning rate to 0.0125.",
        "Epoch 6: score did not improve from 0.4",
        "Epoch 6: early stopping",
        "Restoring model weights from the end of the best epoch: 4."]
    assert h.stopped_epoch == 6 and h.best_epoch == 4


def test_verbose_messages_go_through_the_fits_progress(capsys):
    X, y = blobs()
    model().fit(X, y, epochs=3, verbose=2, callbacks=[
        Scores([1.0, 2.0, 3.0]),
        fastdnn.EarlyStopping(monitor="score", patience=1, verbose=1)])
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out[:2]] == [["epoch", "1/3"], ["epoch", "2/3"]]
    # the Keras words once, not fastdnn's own note besides
    assert out[2:] == ["Epoch 2: early stopping",
                       "Restoring model weights from the end of the best epoch: 1."]


@pytest.mark.parametrize("make", [fastdnn.EarlyStopping, fastdnn.ReduceLROnPlateau,
                                  lambda **kw: fastdnn.ModelCheckpoint("m.npz", **kw),
                                  lambda **kw: fastdnn.LearningRateScheduler(abs, **kw)])
def test_verbose_is_0_or_1(make):
    assert make(verbose=True).verbose == 1 and make(verbose=0).verbose == 0
    with pytest.raises(ValueError, match=r"verbose must be in \[0, 1\], got 2"):
        make(verbose=2)
    with pytest.raises(TypeError, match="verbose must be an integer, got 'yes'"):
        make(verbose="yes")


# ---------------------------------------------------------------------- 5. patience
@pytest.mark.parametrize("patience, stopped", [(0, 3), (1, 3), (2, 4), (3, 5)])
def test_early_stopping_counts_patience_as_keras(patience, stopped):
    X, y = blobs()
    stop = fastdnn.EarlyStopping(monitor="score", patience=patience)
    h = model().fit(X, y, epochs=8, verbose=0,
                    callbacks=[Scores([1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]), stop])
    assert h.stopped_epoch == stopped and len(h["loss"]) == stopped
    assert h.best_epoch == 2
    waited = max(patience, 1)
    assert f"has not improved for {waited} epoch{'s' * (waited > 1)}." in stop.report()


# ---------------------------------------------------------------------- 6. scheduler
def test_learning_rate_scheduler_as_keras():
    X, y = blobs()
    seen = []

    def schedule(epoch, lr):
        seen.append((epoch, lr))
        return lr * 0.5 if epoch >= 2 else lr

    h = model().fit(X, y, optimizer=fastdnn.SGD(0.1), epochs=4, verbose=0,
                    callbacks=[fastdnn.LearningRateScheduler(schedule)])
    assert seen == [(0, 0.1), (1, 0.1), (2, 0.1), (3, 0.05)]
    assert h["lr"] == [0.1, 0.1, 0.05, 0.025]
    m = model()
    h = m.fit(X, y, optimizer="sgd", epochs=3, verbose=0,
              callbacks=[fastdnn.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))])
    assert h["lr"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert m.optimizer.lr == pytest.approx(0.1 / 3)


def test_learning_rate_scheduler_says_and_checks(capsys):
    X, y = blobs()
    model().fit(X, y, epochs=2, verbose=0, callbacks=[
        fastdnn.LearningRateScheduler(lambda epoch: 1e-3 * (epoch + 1), verbose=1)])
    assert capsys.readouterr().out.splitlines() == [
        "Epoch 1: LearningRateScheduler setting learning rate to 0.001.",
        "Epoch 2: LearningRateScheduler setting learning rate to 0.002."]
    with pytest.raises(ValueError, match=r"must return a learning rate >= 0, got -1.0 "
                                         r"for epoch 0"):
        model().fit(X, y, epochs=1, verbose=0,
                    callbacks=[fastdnn.LearningRateScheduler(lambda epoch: -1.0)])
    with pytest.raises(TypeError, match="schedule must be a function"):
        fastdnn.LearningRateScheduler(0.1)


def test_learning_rate_scheduler_and_a_model_schedule_are_not_mixed():
    X, y = blobs()
    m = model()
    with pytest.raises(ValueError, match="use one or the other"):
        m.fit(X, y, epochs=2, verbose=0, schedule=fastdnn.schedules.Exponential(0.5),
              callbacks=[fastdnn.LearningRateScheduler(lambda epoch, lr: lr)])
    assert m.epoch_ == 0   # refused before training


# ---------------------------------------------------------------------- 7. batch begin
class Batches(fastdnn.Callback):
    def __init__(self):
        self.calls = []

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch", epoch))

    def on_batch_begin(self, batch, logs=None):   # Keras's older name
        self.calls.append(("begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("end", batch, logs["steps"]))


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_batch_begin_comes_before_each_engine_run(backend):
    if backend == "cpu":
        pytest.importorskip("fastdnn.cpu")
    X, y = blobs(400)
    rec = Batches()
    model(backend).fit(X, y, epochs=2, batch_size=4, verbose=0, callbacks=[rec])
    for epoch in range(2):
        start = rec.calls.index(("epoch", epoch))
        stop = rec.calls.index(("epoch", 1)) if epoch == 0 else len(rec.calls)
        calls = rec.calls[start + 1:stop]
        assert [c[0] for c in calls] == ["begin", "end"] * (len(calls) // 2)
        begins, ends = calls[0::2], calls[1::2]
        for (_, first), (_, last, steps) in zip(begins, ends):
            assert last - first + 1 == steps   # begin: the run's first batch
        assert begins[0][1] == 0 and ends[-1][1] == 99
    if backend == "numpy":
        assert len(rec.calls) == 2 * (1 + 2 * 100)   # every batch, as Keras


# ---------------------------------------------------------------------- 8. stdout
def test_progress_goes_to_stdout_as_keras(capsys):
    X, y = blobs()
    model().fit(X, y, epochs=2, verbose=2)
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 2 and "epoch 2/2" in captured.out
    assert captured.err == ""


# ---------------------------------------------------------------------- 9. checkpoint
def test_a_checkpoint_into_a_missing_folder_fails_before_training(tmp_path):
    X, y = blobs()
    m = model()
    path = tmp_path / "no such folder" / "best.npz"
    with pytest.raises(FileNotFoundError, match="filepath .*best.npz.* does not exist"):
        m.fit(X, y, epochs=2, verbose=0, callbacks=[fastdnn.ModelCheckpoint(path)])
    assert m.epoch_ == 0
    # a folder named by a template is made by the formatting, not checked
    fastdnn.ModelCheckpoint(tmp_path / "run-{epoch}" / "m.npz").on_train_begin()


# ---------------------------------------------------------------------- 10. plots
def test_gradient_plots_tell_many_layers_apart_on_whole_epochs(pyplot):
    from matplotlib.colors import to_rgba
    h = fastdnn.History()
    for epoch in range(3):
        h.append({**{f"grad_norm_{l}": 0.1 * l for l in range(1, 13)},
                  **{f"weight_norm_{l}": 1.0 for l in range(1, 13)}})
    fig = h.plot(kind="gradients")
    for ax in fig.axes:
        colours = [to_rgba(line.get_color()) for line in ax.lines
                   if line.get_label().startswith("layer")]
        assert len(colours) == 12 and len(set(colours)) == 12
        fig.canvas.draw()
        assert all(float(t).is_integer() for t in ax.get_xticks())


def test_metric_plots_tick_whole_epochs(pyplot):
    h = fastdnn.History()
    for loss in (1.0, 0.5, 0.4):
        h.append({"loss": loss, "accuracy": 0.5})
    fig = h.plot()
    fig.canvas.draw()
    for ax in fig.axes:
        assert all(float(t).is_integer() for t in ax.get_xticks())
