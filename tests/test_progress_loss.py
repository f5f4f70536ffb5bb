"""The fit progress bar and the batch hooks show the epoch's running loss (and accuracy),
as Keras's do."""
import re
import sys
import time

import numpy as np
import pytest

import fastdnn
from fastdnn.callbacks import Progress
from helpers import Terminal


class Record(fastdnn.Callback):
    """Keeps every on_train_batch_end's (batch, logs) and each epoch's logs."""

    def __init__(self, pause=0.0):
        super().__init__()
        self.batches, self.epochs, self.pause = [], [], pause

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.append([])

    def on_train_batch_end(self, batch, logs=None):
        self.batches[-1].append((batch, dict(logs)))
        time.sleep(self.pause)   # lets tqdm's mininterval pass: the next update redraws

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(dict(logs))


def data(output, n=50, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.standard_normal((n, 5)) + y[:, None]
    if output == "identity":
        return X, (X @ rng.standard_normal((5, 2)) + 0.1 * rng.standard_normal((n, 2)))
    if output == "sigmoid":   # 3 labels a row: accuracy over rows x 3
        return X, (X[:, :3] + rng.standard_normal((n, 3)) > 1).astype(float)
    return X, y


def mlp(output, backend, **kw):
    if backend == "cpu":
        pytest.importorskip("fastdnn.cpu")
    k = 2 if output == "identity" else 3
    return fastdnn.MLP([5, 8, k], output=output, backend=backend, seed=0, **kw)


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity"])
def test_the_last_running_logs_are_the_epochs(backend, output):
    X, y = data(output)
    record = Record()
    mlp(output, backend, l2=0.01).fit(X, y, epochs=3, batch_size=16, verbose=0,
                                      callbacks=[record])
    classify = output != "identity"
    for runs, epoch in zip(record.batches, record.epochs):
        batch, last = runs[-1]
        assert batch == 3 and sum(logs["steps"] for _, logs in runs) == 4
        assert last["loss"] == epoch["loss"]   # exactly: the same sums over the same rows
        assert ("accuracy" in last) == classify
        if classify:
            assert last["accuracy"] == epoch["accuracy"]


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_batch_hooks_get_the_running_means(backend):
    X, y = data("softmax", n=80)
    batch_size, n = 16, len(X)
    record = Record()
    mlp("softmax", backend, l2=0.01).fit(X, y, epochs=2, batch_size=batch_size,
                                         shuffle=False, verbose=0, callbacks=[record])
    # the same steps one at a time: each batch's loss (L2 term included)
    twin, opt = mlp("softmax", backend, l2=0.01), fastdnn.Adam()
    losses = [[twin.train_step(X[s:s + batch_size], y[s:s + batch_size], opt)
               for s in range(0, n, batch_size)] for _ in range(2)]
    for runs, epoch_losses in zip(record.batches, losses):
        rows = np.minimum(np.arange(1, len(epoch_losses) + 1) * batch_size, n)
        sizes = np.diff(rows, prepend=0)
        running = np.cumsum(np.array(epoch_losses) * sizes) / rows
        correct = -1
        for batch, logs in runs:
            assert logs["loss"] == pytest.approx(running[batch], rel=1e-9)
            # a mean of right answers over the rows done: a whole count, never falling
            count = logs["accuracy"] * rows[batch]
            assert count == pytest.approx(round(count), abs=1e-9)
            assert round(count) >= correct
            correct = round(count)
    assert len(record.batches[0]) > 1   # more than the last run was checked


def test_the_bar_shows_the_running_logs_within_the_width(monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(sys, "stdout", Terminal())
    X, y = data("softmax")
    record = Record(pause=0.11)
    mlp("softmax", "numpy").fit(X, y, epochs=1, batch_size=16, callbacks=[record])
    out = sys.stdout.getvalue()
    drawn = out.replace("\r", "\n").split("\n")
    assert max(len(part) for part in drawn) <= 79
    shown = [float(v) for v in re.findall(r"loss=(\d+\.\d{4})", out)]
    assert shown, out
    running = [f"{logs['loss']:.4f}" for _, logs in record.batches[0]]
    assert all(f"{v:.4f}" in running for v in shown)
    bars = [part for part in drawn if "loss=" in part]
    # the bar keeps room for itself: at least 10 columns between the bars' edges
    assert all(len(part.split("|")[1]) >= 10 for part in bars), bars
    assert out.count("\n") == 1 and "\repoch 1/1  loss" in out   # then the epoch's line


def test_a_wide_terminal_shows_loss_and_accuracy(monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.setattr(sys, "stdout", Terminal())
    X, y = data("softmax")
    mlp("softmax", "numpy").fit(X, y, epochs=1, batch_size=16, callbacks=[Record(0.11)])
    out = sys.stdout.getvalue()
    assert re.search(r"loss=\d+\.\d{4} accuracy=\d\.\d{4}", out), out
    assert max(len(p) for p in out.replace("\r", "\n").split("\n")) <= 159


def test_narrow_terminals_shorten_then_drop_the_figures():
    pytest.importorskip("tqdm")
    logs = {"loss": 0.23456, "accuracy": 0.9123}
    texts = {}
    for columns in (200, 93, 82, 70):
        progress = Progress(10, 1, Terminal(), steps=938, notebook=False)
        progress.width = columns
        progress.bar_options["ncols"] = columns - 1
        progress.epoch_begin(2)
        progress.show_running(logs)
        texts[columns] = progress.bar.postfix
        # the bar at the epoch's end, at a rate of as many digits as _postfix assumed
        line = progress.bar.format_meter(**dict(progress.bar.format_dict, n=938,
                                                rate=1234.56))
        assert len(line) <= columns - 1 and len(line.split("|")[1]) >= 10, line
        progress.close()
    assert texts[200] == "loss=0.2346 accuracy=0.9123"
    assert texts[93] == "loss=0.2346 acc=0.9123"
    assert texts[82] == "loss=0.2346"
    assert texts[70] == ""


def test_showing_the_logs_draws_nothing_itself():
    pytest.importorskip("tqdm")
    stream = Terminal()
    progress = Progress(1, 1, stream, steps=4, notebook=False)
    progress.epoch_begin(0)
    before = stream.getvalue()
    progress.show_running({"loss": 1.5})
    assert stream.getvalue() == before   # tqdm's mininterval alone decides the redraws
    progress.close()


def test_off_a_terminal_the_lines_do_not_change(capsys):
    X, y = data("softmax")
    mlp("softmax", "numpy").fit(X, y, epochs=2, batch_size=16)
    err = capsys.readouterr().out
    assert "loss=" not in err and "\r" not in err and err.count("\n") == 2


def test_on_the_gpu_the_totals_are_read_once_per_epoch(monkeypatch):
    """The decision for cuda: its totals are on the device, and reading them per step
    would make the host wait for the GPU every step; the hooks get "steps" only. A host
    engine posing as a device one shows it without a GPU."""
    X, y = data("softmax")
    model = mlp("softmax", "numpy")
    host = model._engine.E
    reads = []

    class Totals(type(host.totals())):
        def loss_sum(self):
            reads.append(1)
            return super().loss_sum()

    class DeviceLike(type(host)):
        device = True

        def totals(self):
            return Totals()

    monkeypatch.setattr(model._engine, "E", DeviceLike())
    record = Record()
    model.fit(X, y, epochs=2, batch_size=16, verbose=0, callbacks=[record])
    assert len(reads) == 2
    assert [logs for runs in record.batches for _, logs in runs] == [{"steps": 1}] * 8
    assert "loss" in record.epochs[-1]
