"""Training history, callbacks with Keras's hook names, and the progress display.

L = number of dense layers (blocks), l = 1..L.

Epoch numbers: the ``epoch`` a hook receives and ``History.epoch`` are 0-based indices,
as in Keras. What a person reads counts from 1: the progress lines ("epoch 3/10"), the
early-stopping message, ``History.best_epoch`` and ``stopped_epoch``, CSVLogger's epoch
column and ModelCheckpoint's ``{epoch}``.

Batches: ``on_batch_end(batch, logs)`` is called each time the fit loop regains control
within an epoch. On the "numpy" and "cuda" backends that is after every batch; on "cpu"
the engine trains a run of batches in one compiled call (about 50 ms of them,
fastdnn.engine.cpu), so the hook comes once per run: ``batch`` is the 0-based index of
the run's last batch in the epoch and ``logs["steps"]`` how many batches the run trained.
As in Keras, ``logs`` also hold the epoch's running "loss" (and "accuracy" for softmax
and sigmoid outputs): the means over the rows trained so far, L2 term included, which
after the epoch's last batch are its logged "loss" and "accuracy". On "cuda" they are
left out: the sums stay on the GPU, and reading them every batch would make the host
wait for it each step. ``on_train_batch_begin(batch, logs)`` (and its older name
``on_batch_begin``) likewise comes once per engine run, before it: ``batch`` is the
index of the run's first batch (0 at the epoch's start, then the batch after the last
run's last one), since the engine tells the fit loop where a run ends, not where the next
begins.

Messages: the epoch's line is printed before the callbacks' ``on_epoch_end``, so what a
callback prints there comes after it. ``Callback.note`` prints through the fit's progress
display, closing its bar first; the ``verbose=1`` messages of EarlyStopping,
ReduceLROnPlateau, ModelCheckpoint and LearningRateScheduler go that way.
"""
from __future__ import annotations

import csv
import inspect
import math
import numbers
import os
import shutil
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, Union

import numpy as np

from ._validation import check_bool, check_int, check_real, warn_user

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .model import Sequential

#: What a hook receives as ``logs``: logged name -> value ("loss", "val_accuracy",
#: "epoch_time", ...; ``on_batch_end``'s "steps" and running "loss", "accuracy").
Logs = dict[str, Any]
#: A History, or any mapping of logged name -> per-epoch values.
Curves = Mapping[str, Sequence[float]]
#: What ``epoch_line`` keeps between lines: (short names, columns left out).
LineStyle = tuple[bool, frozenset[str]]
#: What ``fit(early_stopping=...)`` takes (see ``as_early_stopping``).
EarlyStoppingSpec = Union[None, bool, int, Mapping[str, Any], "EarlyStopping"]

# A layer's gradients vanish below VANISHING * ||W_l|| and explode above
# EXPLODING * ||W_l|| (see GradientMonitor for why these two).
VANISHING = 1e-7
EXPLODING = 1e3


class History(dict):
    """Per-epoch logs of ``fit``, a dict of lists as Keras's ``history.history``.

    Keys: "loss", "accuracy" (classification), "val_loss", "val_accuracy" (with a dev
    set), "lr", "epoch_time" (seconds), and whatever callbacks add (GradientMonitor:
    "grad_norm_1", "weight_norm_1", ...).

    Attributes
    ----------
    history : dict of lists
        The History itself (Keras's spelling).
    epoch : list of int
        The 0-based index of each recorded epoch (as Keras's ``history.epoch``).
    params : dict
        epochs, steps (batches per epoch), verbose.
    best_epoch : int or None
        With early stopping: the epoch whose weights were kept, counted from 1 as the
        progress lines show it, so ``history["val_loss"][best_epoch - 1]`` is its loss.
    stopped_epoch : int or None
        The epoch (from 1) after which a callback stopped training; None if none did.
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch = []
        self.params = {}
        self.best_epoch = None
        self.stopped_epoch = None

    @property
    def history(self) -> History:
        """The History itself (Keras's ``history.history``)."""
        return self

    def append(self, logs: Mapping[str, Any], epoch: int | None = None) -> None:
        """Record one epoch's ``logs``.

        Parameters
        ----------
        logs : dict
            Logged name -> value; each value is appended to its list.
        epoch : int, optional
            The epoch's 0-based index; default the next.
        """
        self.epoch.append(len(self.epoch) if epoch is None else int(epoch))
        for k, v in logs.items():
            self.setdefault(k, []).append(v)

    def plot(self, kind: str = "metrics") -> Figure:
        """Plot the learning curves and return the matplotlib Figure.

        Parameters
        ----------
        kind : "metrics" or "gradients"
            "metrics": loss and accuracy per epoch, train and dev, the best epoch marked;
            "gradients": the per-layer norms a GradientMonitor recorded.

        Returns
        -------
        matplotlib.figure.Figure

        Raises
        ------
        ValueError
            For another ``kind``, or when the history holds nothing to plot.
        ImportError
            When matplotlib is not installed.
        """
        if kind == "gradients":
            return plot_gradient_norms(self)
        if kind != "metrics":
            raise ValueError(f"kind must be 'metrics' or 'gradients', got {kind!r}")
        if "loss" not in self:
            raise ValueError("the history holds no 'loss': plot a History returned by fit")
        plt = _pyplot("History.plot")
        metrics = [m for m in ("loss", "accuracy") if m in self]
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5),
                                 squeeze=False)
        x = [e + 1 for e in self.epoch] or list(range(1, len(self["loss"]) + 1))
        for ax, metric in zip(axes[0], metrics):
            for key, label in ((metric, "train"), ("val_" + metric, "dev")):
                if key in self:
                    ax.plot(x, self[key], marker=".", label=label)
            if self.best_epoch is not None:
                ax.axvline(self.best_epoch, color="grey", linestyle=":", label="best epoch")
            _epoch_axis(ax)
            ax.set_ylabel(metric)
            ax.legend()
        fig.tight_layout()
        return fig


class Callback:
    """Base class of callbacks, with Keras's hooks; override those you need.

    ``fit`` sets ``self.model`` (``set_model``) and ``self.params`` (epochs, steps,
    verbose) before training. Set ``self.model.stop_training = True`` to stop after the
    current epoch. Keys a hook adds to ``logs`` in ``on_epoch_end`` are recorded in the
    History. See the module docstring for what ``epoch`` and ``batch`` count.

    fastdnn's first form, ``on_epoch_end(self, model, epoch, logs)``,
    ``on_train_begin(self, model)`` and ``on_train_end(self, model)``, still works
    (told apart by the method's signature) with a DeprecationWarning.
    """

    model = None
    params = {}
    _progress = None   # the fit's Progress (callback_list sets it), for note

    def note(self, text: str) -> None:
        """Print ``text`` as a line of the fit's output.

        Through the fit's progress display when it shows anything (its bar is closed
        first, so the line does not land on it), else with ``print``.

        Parameters
        ----------
        text : str
        """
        progress = self._progress
        if progress is not None and progress.on:
            progress.note(text)
        else:
            print(text, flush=True)

    def set_model(self, model: Sequential) -> None:
        """Set ``self.model``, the model being trained (``fit`` calls it).

        Parameters
        ----------
        model : Sequential
        """
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        """Set ``self.params`` (``fit`` calls it).

        Parameters
        ----------
        params : dict
            epochs, steps (batches per epoch), verbose.
        """
        self.params = params

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Called once before the first epoch.

        Parameters
        ----------
        logs : dict or None
        """

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Called once after the last epoch, also when training stopped early.

        Parameters
        ----------
        logs : dict or None
        """

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Called at the start of every epoch.

        Parameters
        ----------
        epoch : int
            The epoch's 0-based index.
        logs : dict or None
        """

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Called at the end of every epoch, after the dev set was scored.

        Parameters
        ----------
        epoch : int
            The epoch's 0-based index.
        logs : dict
            The epoch's logs (loss, accuracy, val_loss, val_accuracy, lr, epoch_time);
            keys added here are recorded in the History.
        """

    def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Called before each engine run of batches (see the module docstring).

        Calls ``on_batch_begin``, Keras's older name for it.

        Parameters
        ----------
        batch : int
            0-based index in the epoch of the run's first batch.
        logs : dict or None
        """
        self.on_batch_begin(batch, logs)   # Keras: on_batch_begin is its older name

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Keras's older name of ``on_train_batch_begin``, which calls it.

        Parameters
        ----------
        batch : int
            0-based index in the epoch of the run's first batch.
        logs : dict or None
        """

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Called each time the fit loop regains control within an epoch.

        Calls ``on_batch_end``, Keras's older name for it (see the module docstring for
        how often the hook comes on each backend).

        Parameters
        ----------
        batch : int
            0-based index in the epoch of the last batch trained.
        logs : dict or None
            "steps": how many batches were trained since the last call; "loss" (and
            "accuracy"): the epoch's running means so far (not on "cuda").
        """
        self.on_batch_end(batch, logs)   # Keras: on_batch_end is its older name

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Keras's older name of ``on_train_batch_end``, which calls it.

        Parameters
        ----------
        batch : int
            0-based index in the epoch of the last batch trained.
        logs : dict or None
            "steps": how many batches were trained since the last call; "loss" (and
            "accuracy"): the epoch's running means so far (not on "cuda").
        """


def _in_first_form(callback):
    """The hooks ``callback`` overrides in fastdnn's first form (the model passed as
    the first argument)."""
    found = []
    for name, new_arity in (("on_epoch_end", 2), ("on_train_begin", 1),
                            ("on_train_end", 1)):
        method = getattr(type(callback), name, None)
        if method is None or method is getattr(Callback, name):
            continue
        try:
            params = list(inspect.signature(method).parameters.values())[1:]   # no self
        except (TypeError, ValueError):
            continue
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY,
                                                      p.POSITIONAL_OR_KEYWORD)]
        if len(positional) > new_arity or (positional and positional[0].name == "model"):
            found.append(name)
    return found


class _FirstForm(Callback):
    """Calls a first-form callback's hooks with the model as first argument. The
    callback itself is given neither ``model`` nor ``params``: written before they were
    set, it may use those names for its own."""

    def __init__(self, callback):
        self.callback = callback

    def on_train_begin(self, logs=None):
        self.callback.on_train_begin(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        self.callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.callback.on_epoch_end(self.model, epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self.callback.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.callback.on_train_batch_end(batch, logs)

    def on_train_end(self, logs=None):
        self.callback.on_train_end(self.model)


def callback_list(callbacks: Iterable[Callback], model: Sequential,
                  params: dict[str, Any], progress: Progress | None = None) -> list[Callback]:
    """``callbacks`` checked, each given the model and params.

    First-form ones are wrapped, with a DeprecationWarning.

    Parameters
    ----------
    callbacks : iterable of Callback
    model : Sequential
        The model being trained (``set_model``).
    params : dict
        epochs, steps, verbose (``set_params``).
    progress : Progress, optional
        The fit's progress display, through which ``Callback.note`` prints.

    Returns
    -------
    list of Callback
        The callbacks to call, in order.

    Raises
    ------
    TypeError
        When one is not a Callback.
    """
    out = []
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be fastdnn.Callback objects, got {cb!r}")
        old_hooks = _in_first_form(cb)
        if old_hooks:
            warn_user(
                f"{type(cb).__name__}'s {', '.join(old_hooks)} "
                f"{'takes' if len(old_hooks) == 1 else 'take'} the model as first "
                "argument, fastdnn's first callback form; write Keras's "
                "on_epoch_end(epoch, logs), "
                "on_train_begin(logs), on_train_end(logs) and use self.model, which fit "
                "sets. The first form will be removed.", DeprecationWarning)
            cb = _FirstForm(cb)
        cb.set_model(model)
        cb.set_params(params)
        cb._progress = progress
        out.append(cb)
    return out


class _Improvement:
    """Whether a monitored value improved: "min" or "max" mode ("auto": max for
    accuracies), by more than ``min_delta``."""

    def __init__(self, monitor, mode, min_delta):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a logged name such as 'val_loss', got "
                            f"{monitor!r}")
        self.monitor = monitor
        self.min_delta = check_real("min_delta", min_delta, 0.0)
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be one of ['auto', 'max', 'min'], got {mode!r}")
        self.mode = mode
        self.reset()

    def reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf

    def value(self, logs, who):
        if self.monitor not in logs:
            raise ValueError(f"{who} monitors {self.monitor!r}, which is not logged "
                             f"(logged: {sorted(logs)}); pass validation_data or "
                             f"validation_split for the val_ ones")
        return float(logs[self.monitor])

    def improved(self, value):
        """Whether ``value`` beats the best so far (which it then becomes)."""
        better = (value < self.best - self.min_delta if self.mode == "min"
                  else value > self.best + self.min_delta)
        if better:
            self.best = value
        return better


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    As in Keras, training stops after the ``patience``-th epoch in a row without
    improvement (``patience=0``: after the first).

    The best weights (and BatchNorm statistics) are restored at the end of training
    whether it stopped early or ran out of epochs (``restore_best=True``; Keras's
    ``restore_best_weights`` is accepted too). ``best_epoch`` and ``stopped_epoch``
    count from 1, as the progress lines do.

    Parameters
    ----------
    monitor : str, default "val_loss"
        The logged name to watch.
    patience : int >= 0, default 5
        Epochs in a row without improvement after which training stops.
    min_delta : float >= 0, default 0.0
        The least change that counts as an improvement.
    mode : "auto", "min" or "max", default "auto"
        Whether lower or higher is better; "auto": higher for accuracies.
    restore_best : bool, default True
        Restore the best epoch's weights at the end of training.
    restore_best_weights : bool, optional
        Keras's name for ``restore_best``; overrides it when given.
    verbose : 0 or 1, default 0
        1: say when training stopped and whose weights were restored, as Keras does
        (``fit`` then leaves out its own note on this EarlyStopping). 0: ``fit`` says
        so itself when it shows progress.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5,
                 min_delta: float = 0.0, mode: str = "auto", restore_best: bool = True, *,
                 restore_best_weights: bool | None = None, verbose: int = 0) -> None:
        self._watch = _Improvement(monitor, mode, min_delta)
        self.monitor, self.mode = monitor, self._watch.mode
        self.min_delta = self._watch.min_delta
        self.patience = check_int("patience", patience, 0)
        if restore_best_weights is not None:
            restore_best = check_bool("restore_best_weights", restore_best_weights)
        self.restore_best = check_bool("restore_best", restore_best)
        self.verbose = _verbose_flag(verbose)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._watch.reset()
        self.best = self._watch.best
        self.best_epoch = self.stopped_epoch = None
        self.epochs_run = 0
        self.wait = 0
        self.best_state = None
        self.restored = False

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        value = self._watch.value(logs or {}, "early stopping")
        self.epochs_run = epoch + 1
        if self._watch.improved(value):
            self.best, self.best_epoch, self.wait = value, epoch + 1, 0
            if self.restore_best:
                self.best_state = self.model.parameters.snapshot()
        else:
            self.wait += 1
            if self.wait >= self.patience:   # Keras's count (patience=0: at once)
                self.stopped_epoch = epoch + 1
                self.model.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        # restoring the last epoch's own weights would change nothing
        if (self.restore_best and self.best_state is not None
                and self.best_epoch != self.epochs_run):
            self.model.parameters.restore(self.best_state)
            self.restored = True
        if self.verbose:
            if self.stopped_epoch is not None:
                self.note(f"Epoch {self.stopped_epoch}: early stopping")
            if self.restored:
                self.note(f"Restoring model weights from the end of the best epoch: "
                          f"{self.best_epoch}.")

    def report(self) -> str | None:
        """What early stopping did, in words.

        Returns
        -------
        str or None
            The stop and the restored epoch; None when it had nothing to do.
        """
        parts = []
        if self.stopped_epoch is not None:
            parts.append(f"Early stopping after epoch {self.stopped_epoch}: "
                         f"{self.monitor} has not improved for {self.wait} "
                         f"epoch{'' if self.wait == 1 else 's'}.")
        if self.restored:
            parts.append(f"Restored the weights of epoch {self.best_epoch}, the best "
                         f"{self.monitor} ({self.best:.4g}).")
        return " ".join(parts) or None


def as_early_stopping(early_stopping: EarlyStoppingSpec) -> EarlyStopping | None:
    """The EarlyStopping that ``fit``'s ``early_stopping`` argument asks for.

    Parameters
    ----------
    early_stopping : None, bool, int, dict or EarlyStopping
        None/False, True (defaults), an int patience, a dict of arguments, or an object.

    Returns
    -------
    EarlyStopping or None

    Raises
    ------
    TypeError
        For anything else.
    """
    if early_stopping is None or early_stopping is False:
        return None
    if early_stopping is True:
        return EarlyStopping()
    if isinstance(early_stopping, bool) is False and isinstance(early_stopping, int):
        return EarlyStopping(patience=early_stopping)
    if isinstance(early_stopping, dict):
        return EarlyStopping(**early_stopping)
    if isinstance(early_stopping, EarlyStopping):
        return early_stopping
    raise TypeError(f"early_stopping must be None, True, an int patience, a dict or an "
                    f"EarlyStopping, got {early_stopping!r}")


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving.

    It does so when ``monitor`` has not improved (by more than ``min_delta``) for
    ``patience`` epochs, never below ``min_lr``. A schedule keeps its shape: its
    starting rate (``optimizer.initial_lr``) is scaled by the same factor. After a cut,
    ``cooldown`` epochs pass before counting again. ``events`` lists the cuts: (epoch
    from 1, old rate, new rate).

    Parameters
    ----------
    monitor : str, default "val_loss"
        The logged name to watch.
    factor : float in (0, 1), default 0.1
        What a cut multiplies the learning rate by.
    patience : int >= 0, default 10
        Epochs without improvement before a cut.
    min_lr : float >= 0, default 0.0
        The lowest learning rate.
    min_delta : float >= 0, default 1e-4
        The least change that counts as an improvement.
    mode : "auto", "min" or "max", default "auto"
        Whether lower or higher is better; "auto": higher for accuracies.
    cooldown : int >= 0, default 0
        Epochs after a cut before counting again.
    verbose : 0 or 1, default 0
        1: say each cut, as Keras does ("Epoch 7: ReduceLROnPlateau reducing learning
        rate to 0.0125.").
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 min_lr: float = 0.0, *, min_delta: float = 1e-4, mode: str = "auto",
                 cooldown: int = 0, verbose: int = 0) -> None:
        self._watch = _Improvement(monitor, mode, min_delta)
        self.monitor = monitor
        self.factor = check_real("factor", factor, 0.0, 1.0, low_open=True, high_open=True)
        self.patience = check_int("patience", patience, 0)
        self.min_lr = check_real("min_lr", min_lr, 0.0)
        self.cooldown = check_int("cooldown", cooldown, 0)
        self.verbose = _verbose_flag(verbose)
        self.events = []

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._watch.reset()
        self.wait = self.cooling = 0

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        value = self._watch.value(logs or {}, "ReduceLROnPlateau")
        if self.cooling:
            self.cooling -= 1
            self.wait = 0
        if self._watch.improved(value):
            self.wait = 0
            return
        if self.cooling:
            return
        self.wait += 1
        optimizer = self.model.optimizer
        old = float(optimizer.lr)
        if self.wait >= self.patience and old > self.min_lr:
            new = max(old * self.factor, self.min_lr)
            optimizer.lr = new
            optimizer.initial_lr *= new / old
            self.events.append((epoch + 1, old, new))
            self.wait, self.cooling = 0, self.cooldown
            if self.verbose:
                self.note(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                          f"to {format_lr(new)}.")


class ModelCheckpoint(Callback):
    """Save the model (``model.save``: one .npz file, no suffix added) after epochs.

    Parameters
    ----------
    filepath : str or path
        May hold ``{epoch}`` (counted from 1) and logged names, formatted as
        ``str.format`` does: "model-{epoch:02d}-{val_loss:.3f}.npz".
    monitor : str
        What ``save_best_only`` compares ("auto" mode: higher is better for accuracies).
    save_best_only : bool
        Save only when ``monitor`` improves (by more than ``min_delta``).
    mode : "auto", "min" or "max", default "auto"
        Whether lower or higher ``monitor`` is better.
    min_delta : float >= 0, default 0.0
        The least change that counts as an improvement.
    verbose : 0 or 1, default 0
        1: say each save (and, with ``save_best_only``, each epoch that did not
        improve), as Keras does.

    Raises
    ------
    FileNotFoundError
        At the start of training, when the folder of ``filepath`` does not exist
        (rather than after the first epoch's work).
    """

    def __init__(self, filepath: str | os.PathLike[str], monitor: str = "val_loss",
                 save_best_only: bool = False, mode: str = "auto",
                 min_delta: float = 0.0, *, verbose: int = 0) -> None:
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.save_best_only = check_bool("save_best_only", save_best_only)
        self._watch = _Improvement(monitor, mode, min_delta)
        self.verbose = _verbose_flag(verbose)
        self.saved = []   # the paths written, in order

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._watch.reset()
        folder = os.path.dirname(self.filepath)
        # a folder named by a template ("run-{epoch}/") exists only once formatted
        if folder and "{" not in folder and not os.path.isdir(folder):
            raise FileNotFoundError(f"ModelCheckpoint's filepath {self.filepath!r} is in "
                                    f"the folder {folder!r}, which does not exist: create "
                                    "it first (os.makedirs)")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        before = self._watch.best
        if self.save_best_only:
            value = self._watch.value(logs, "ModelCheckpoint")
            if not self._watch.improved(value):
                if self.verbose:
                    self.note(f"Epoch {epoch + 1}: {self.monitor} did not improve from "
                              f"{before:.5g}")
                return
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"filepath {self.filepath!r} cannot be formatted with epoch "
                             f"and the logged names {sorted(logs)}: {err!r}") from None
        if self.verbose:
            self.note(f"Epoch {epoch + 1}: {self.monitor} improved from {before:.5g} to "
                      f"{value:.5g}, saving model to {path}" if self.save_best_only else
                      f"Epoch {epoch + 1}: saving model to {path}")
        self.model.save(path)
        self.saved.append(path)


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)``.

    Keras's callback: ``epoch`` is the 0-based index and ``lr`` the current rate; a
    ``schedule(epoch)`` of one argument works too. It writes ``model.optimizer.lr``,
    which the epoch's steps then use. Use it or the model's own ``schedule``
    (``fit(schedule=...)``, which sets the rate each epoch or step), not both: fit
    refuses the two together, since the model's schedule would overwrite the rate.

    Parameters
    ----------
    schedule : callable
        (epoch, lr) -> new rate, a real number >= 0; or epoch -> new rate.
    verbose : 0 or 1, default 0
        1: say each epoch's rate, as Keras does.
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        if not callable(schedule):
            raise TypeError(f"schedule must be a function (epoch, lr) -> learning rate, "
                            f"got {schedule!r}")
        self.schedule = schedule
        self.verbose = _verbose_flag(verbose)
        self._takes_lr = _takes_two_arguments(schedule)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if getattr(self.model, "schedule", None) is not None:
            raise ValueError(f"LearningRateScheduler sets the learning rate each epoch, "
                             f"and so does the model's schedule {self.model.schedule!r}, "
                             "which would overwrite it: use one or the other (set "
                             "model.schedule = None to keep the callback)")

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        optimizer = self.model.optimizer
        lr = (self.schedule(epoch, float(optimizer.lr)) if self._takes_lr
              else self.schedule(epoch))
        if (isinstance(lr, bool) or not isinstance(lr, numbers.Real)
                or not math.isfinite(lr) or lr < 0):
            raise ValueError(f"LearningRateScheduler's schedule must return a learning "
                             f"rate >= 0, got {lr!r} for epoch {epoch}")
        optimizer.lr = lr = float(lr)
        if self.verbose:
            self.note(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                      f"{format_lr(lr)}.")


def _takes_two_arguments(function):
    """Whether ``function`` can be called with (epoch, lr); one that cannot be
    inspected (a builtin) is taken to, as Keras's schedules do."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return True
    try:
        signature.bind(0, 0.0)
    except TypeError:
        return False
    return True


def _verbose_flag(verbose):
    """A callback's ``verbose``: 0 or 1 (True and False too), as Keras's take."""
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    return check_int("verbose", verbose, 0, 1)


class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file.

    The columns are "epoch" (from 1) then the logged names in sorted order; rows are
    flushed as they come.

    Parameters
    ----------
    filename : str or path
    separator : str, default ","
        The CSV delimiter.
    append : bool, default False
        Add to an existing file (its header kept) instead of replacing it.
    """

    def __init__(self, filename: str | os.PathLike[str], separator: str = ",",
                 append: bool = False) -> None:
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = check_bool("append", append)
        self._file = self._writer = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        header = None
        if self.append and os.path.exists(self.filename):
            with open(self.filename, newline="") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._fields = header
        self._writer = None

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        if self._writer is None:
            if self._fields is None:
                self._fields = ["epoch"] + sorted(logs)
                self._writer = csv.DictWriter(self._file, self._fields, restval="",
                                              extrasaction="ignore",
                                              delimiter=self.separator)
                self._writer.writeheader()
            else:
                self._writer = csv.DictWriter(self._file, self._fields, restval="",
                                              extrasaction="ignore",
                                              delimiter=self.separator)
        self._writer.writerow({"epoch": epoch + 1, **logs})
        self._file.flush()

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class GradientMonitor(Callback):
    """Per-layer gradient and weight norms each epoch, with vanishing/exploding warnings.

    At each epoch's end it reads the gradients the engine left from the epoch's last
    step (``model.parameters.g``; every backend keeps all layers'): one pass over the
    parameters per epoch and nothing per step, cheap enough to leave on. It adds to the
    epoch's logs, and so to the History, ``grad_norm_l`` = ||dW_l|| and
    ``weight_norm_l`` = ||W_l|| (Frobenius norms) for each dense layer l = 1..L.

    A layer's gradients *vanish* when ||dW_l|| < vanishing * ||W_l||: with the default
    1e-7, about float32's resolution, an SGD step (lr <= 1) no longer changes the
    weights. They *explode* when ||dW_l|| > exploding * ||W_l|| or is not finite: with
    the default 1e3, one SGD step of lr 1e-3 already moves the weights by as much as
    their own size. The first time a layer does either, a RuntimeWarning names the layer
    and the epoch (counted from 1); ``events`` lists every occurrence as (epoch, layer,
    "vanishing" or "exploding", ratio). A layer whose weights are all 0 is not judged.
    ``fastdnn.diagnose(history)`` reads the same norms.

    Parameters
    ----------
    vanishing : float >= 0, default VANISHING (1e-7)
        The ratio ||dW_l|| / ||W_l|| below which gradients vanish.
    exploding : float > 0, default EXPLODING (1e3)
        The ratio above which they explode.
    warn : bool, default True
        Warn the first time a layer does either.
    """

    def __init__(self, vanishing: float = VANISHING, exploding: float = EXPLODING,
                 warn: bool = True) -> None:
        self.vanishing = check_real("vanishing", vanishing, 0.0)
        self.exploding = check_real("exploding", exploding, 0.0, low_open=True)
        self.warn = check_bool("warn", warn)
        self.norms = History()
        self.events = []

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.norms = History()
        self.events = []
        self._warned = set()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        p = self.model.parameters
        record = {}
        for l in range(1, len(p.blocks) + 1):
            grad = _norm(p.arrays, p.g[f"W{l}"])
            weight = _norm(p.arrays, p.p[f"W{l}"])
            record[f"grad_norm_{l}"], record[f"weight_norm_{l}"] = grad, weight
            kind = gradient_trouble(grad, weight, self.vanishing, self.exploding)
            if kind is None:
                continue
            ratio = grad / weight
            self.events.append((epoch + 1, l, kind, ratio))
            if self.warn and (l, kind) not in self._warned:
                self._warned.add((l, kind))
                bound = (f"below {self.vanishing:g}" if kind == "vanishing"
                         else f"above {self.exploding:g}")
                warn_user(f"layer {l}'s gradients are {kind} at epoch {epoch + 1}: "
                          f"||dW{l}|| / ||W{l}|| = {ratio:.3g}, {bound} "
                          f"(fastdnn.diagnose(history) suggests remedies)", RuntimeWarning)
        if logs is not None:
            logs.update(record)
        self.norms.append(record, epoch)

    def plot(self) -> Figure:
        """Plot the recorded norms (see ``plot_gradient_norms``).

        Returns
        -------
        matplotlib.figure.Figure
        """
        return plot_gradient_norms(self.norms, self.vanishing, self.exploding)


def _norm(arrays, view):
    a = view if isinstance(view, np.ndarray) else arrays.get(view)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.linalg.norm(a.ravel()))


def gradient_trouble(grad_norm: float, weight_norm: float, vanishing: float = VANISHING,
                     exploding: float = EXPLODING) -> str | None:
    """Whether one layer's gradients vanish or explode (see GradientMonitor).

    Parameters
    ----------
    grad_norm, weight_norm : float
        ||dW_l|| and ||W_l||.
    vanishing, exploding : float
        The bounds on their ratio.

    Returns
    -------
    str or None
        "vanishing", "exploding" (also for a gradient norm that is not finite) or None
        (also when the weights are all 0).
    """
    if not math.isfinite(grad_norm):
        return "exploding"
    if weight_norm == 0 or not math.isfinite(weight_norm):
        return None
    ratio = grad_norm / weight_norm
    if ratio < vanishing:
        return "vanishing"
    if ratio > exploding:
        return "exploding"
    return None


def gradient_layers(history: Curves) -> list[int]:
    """The layers l whose "grad_norm_l" and "weight_norm_l" ``history`` holds.

    Parameters
    ----------
    history : History or dict of lists

    Returns
    -------
    list of int
        1, 2, ... up to the first layer missing.
    """
    layers = []
    while f"grad_norm_{len(layers) + 1}" in history and \
            f"weight_norm_{len(layers) + 1}" in history:
        layers.append(len(layers) + 1)
    return layers


def plot_gradient_norms(history: Curves, vanishing: float = VANISHING,
                        exploding: float = EXPLODING) -> Figure:
    """Plot per-layer gradient norms and their ratio to the weight norms per epoch.

    Log scale, the vanishing and exploding bounds dashed.

    Parameters
    ----------
    history : History or dict of lists
        With "grad_norm_l" and "weight_norm_l" (a GradientMonitor's).
    vanishing, exploding : float
        The bounds drawn.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When ``history`` holds no gradient norms.
    ImportError
        When matplotlib is not installed.
    """
    layers = gradient_layers(history)
    if not layers:
        raise ValueError("the history holds no gradient norms: pass "
                         "callbacks=[fastdnn.GradientMonitor()] to fit")
    plt = _pyplot("plotting gradient norms")
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    n = len(history[f"grad_norm_{layers[0]}"])
    x = [e + 1 for e in getattr(history, "epoch", [])] or list(range(1, n + 1))
    tiny = np.finfo(np.float64).tiny   # 0 on a log axis
    colours = _distinct_colours(len(layers))
    for l, colour in zip(layers, colours):
        grad = np.asarray(history[f"grad_norm_{l}"], float)
        weight = np.asarray(history[f"weight_norm_{l}"], float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(weight > 0, grad / weight, np.nan)
        left.plot(x, np.maximum(grad, tiny), marker=".", color=colour, label=f"layer {l}")
        right.plot(x, np.maximum(ratio, tiny), marker=".", color=colour, label=f"layer {l}")
    for bound in (vanishing, exploding):
        right.axhline(bound, color="grey", linestyle="--")
    left.set_ylabel("||dW_l||")
    right.set_ylabel("||dW_l|| / ||W_l||")
    for ax in (left, right):
        ax.set_yscale("log")
        _epoch_axis(ax)
    left.legend(fontsize="small")
    fig.tight_layout()
    return fig


def _epoch_axis(ax):
    """Label the x axis "epoch", with whole-number ticks (no epoch 1.5)."""
    from matplotlib.ticker import MaxNLocator
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _distinct_colours(n):
    """``n`` colours told apart: matplotlib's 10-colour cycle up to 10 (its look),
    "tab20" up to 20, then evenly spaced along "turbo"."""
    import matplotlib
    if n <= 10:
        return [f"C{i}" for i in range(n)]
    if n <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(n)]
    return [matplotlib.colormaps["turbo"](t) for t in np.linspace(0, 1, n)]


def _pyplot(what):
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f"{what} needs matplotlib: pip install matplotlib (or "
                          "'fastdnn[plot]')") from None
    return plt


# ---------------------------------------------------------------------- progress
def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel whose front end draws widgets.

    The test tqdm.autonotebook makes: ipykernel loaded, and not a Qt console or Spyder.

    Returns
    -------
    bool
    """
    if "ipykernel.zmqshell" not in sys.modules:
        return False
    if any(k == "QT_API" or k.startswith("SPYDER") for k in os.environ):
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    name = type(shell).__name__.lower()
    return "qt" not in name and "spyder" not in name


def _tqdm(notebook):
    """tqdm's bar class (its notebook widget in a notebook with ipywidgets), or None
    when tqdm is not installed."""
    try:
        if notebook:
            from tqdm import notebook as tqdm_notebook
            if getattr(tqdm_notebook, "IProgress", None) is not None:
                return tqdm_notebook.tqdm
        from tqdm import tqdm
        return tqdm
    except ImportError:
        return None


def _is_widget(bar_class):
    return bar_class is not None and bar_class.__module__ == "tqdm.notebook"


def format_lr(lr: float) -> str:
    """A learning rate in at most 7 characters (down to 1e-9), 3 significant digits.

    "0.001", "0.0125", "0.00625", and "1.25e-4" where the decimals would be longer.

    Parameters
    ----------
    lr : float

    Returns
    -------
    str
    """
    plain = f"{lr:.3g}"
    mantissa, _, exponent = f"{lr:.2e}".partition("e")
    scientific = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    if "e" not in plain and (len(plain) <= 6 or len(plain) <= len(scientific)):
        return plain
    return scientific


# the logs an epoch line shows: (key, short name, format, priority: the lowest goes
# first when the line is too long). The time yields before lr: lr is what callbacks
# and schedules change, while the time hardly varies and its width does (1.2 ms, 12 ms).
def _format_loss(loss):
    """A loss with 4 decimals, or as 4.5850e+34 when those would run long (a diverging
    loss would push the other columns off the line)."""
    return f"{loss:.4f}" if abs(loss) < 1e5 else f"{loss:.4e}"


_COLUMNS = [("loss", "loss", _format_loss, 6), ("accuracy", "acc", "{:.4f}", 4),
            ("val_loss", "val_loss", _format_loss, 5),
            ("val_accuracy", "val_acc", "{:.4f}", 3), ("lr", "lr", format_lr, 2)]


def epoch_line(epoch: int, epochs: int, logs: Logs, width: int,
               style: LineStyle = (False, frozenset())) -> tuple[str, LineStyle]:
    """One line of at most ``width - 1`` characters showing an epoch's logs.

    A terminal wraps a line that fills its last column. The line reads
    "epoch 3/10  loss 0.3012  accuracy 0.9120 ...  12 ms"; short names, then fewer
    columns, when it does not fit.

    Parameters
    ----------
    epoch : int
        0-based (shown from 1).
    epochs : int
        How many the fit runs.
    logs : dict
        The epoch's logs.
    width : int
        The terminal's width.
    style : (bool, frozenset of str)
        (short names, columns left out) that earlier lines took, kept so that the lines
        of one fit show the same columns.

    Returns
    -------
    line : str
    style : (bool, frozenset of str)
        For the next line.
    """
    short, dropped = style
    seconds = logs.get("epoch_time")
    parts = [(f"epoch {epoch + 1}/{epochs}", f"epoch {epoch + 1}/{epochs}", "epoch", 9)]
    for key, abbreviation, fmt, priority in _COLUMNS:
        if key in logs:
            value = fmt(logs[key]) if callable(fmt) else fmt.format(logs[key])
            parts.append((f"{key} {value}", f"{abbreviation} {value}", key, priority))
    if seconds is not None:
        ms = seconds * 1e3
        text = (f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms" if ms < 1000
                else f"{seconds:.1f} s")
        parts.append((text, text, "epoch_time", 1))
    parts = [p for p in parts if p[2] not in dropped]
    limit = max(width - 1, 20)
    line = "  ".join(p[0] for p in parts)
    if not short and len(line) <= limit:
        return line, style
    while True:
        line = " ".join(p[1] for p in parts)
        if len(line) <= limit or len(parts) == 1:
            return line[:limit], (True, frozenset(dropped))
        lowest = min(parts, key=lambda p: p[3])
        parts.remove(lowest)
        dropped = dropped | {lowest[2]}


# what the bar shows of the running logs: (key, short name, format), dropped from the
# last when the text bar would get narrower than _MIN_BAR columns
_RUNNING = [("loss", "loss", "{:.4f}"), ("accuracy", "acc", "{:.4f}")]
_MIN_BAR = 10


def _running_text(logs, short, count):
    """'loss=0.2345 accuracy=0.9123': the first ``count`` of _RUNNING in ``logs``."""
    shown = [(abbreviation if short else key, fmt.format(logs[key]))
             for key, abbreviation, fmt in _RUNNING if key in logs]
    return " ".join(f"{name}={value}" for name, value in shown[:count])


class Progress:
    """What ``fit`` shows while it trains, on ``stream`` (default sys.stdout, as Keras).

    verbose 0: nothing. 1: on a terminal or in a Jupyter notebook, a bar per epoch
    advancing with the batches (tqdm; its widget in notebooks) and showing the epoch's
    running loss and accuracy, as Keras's does, replaced at the epoch's end by one line
    of its logs; elsewhere (logs, CI, pipes) or without tqdm, just the line. 2: the line
    only, everywhere. Lines and the bar fit the width shutil.get_terminal_size() gives
    (COLUMNS when set).

    Parameters
    ----------
    epochs : int
    verbose : 0, 1 or 2
    stream : file, optional
    steps : int, optional
        Batches per epoch (the bar's length; no bar without it).
    notebook : bool, optional
        Whether to draw for a notebook; default: ``in_notebook()``.
    """

    def __init__(self, epochs: int, verbose: int, stream: IO[str] | None = None, *,
                 steps: int | None = None, notebook: bool | None = None) -> None:
        self.stream = stream or sys.stdout   # Keras's too: `python train.py > log` keeps it
        self.epochs, self.steps, self.verbose = epochs, steps, verbose
        self.width = shutil.get_terminal_size().columns
        self.bar_class, self.bar_options = None, {}
        if verbose == 1 and steps:
            notebook = in_notebook() if notebook is None else notebook
            terminal = getattr(self.stream, "isatty", lambda: False)()
            if notebook or terminal:
                self.bar_class = _tqdm(notebook)
            if not _is_widget(self.bar_class):   # a text bar: fit it to the width
                self.bar_options = {"ncols": self.width - 1, "file": self.stream}
        self.bar = None
        self.style = (False, frozenset())   # the lines' names and columns (epoch_line)
        # how the running logs are shown (names, how many) and until when (see _postfix)
        self._postfix_form, self._postfix_until = (False, len(_RUNNING)), 0.0

    @property
    def on(self) -> bool:
        """Whether anything is shown (verbose > 0)."""
        return self.verbose > 0

    def epoch_begin(self, epoch: int) -> None:
        """Start the epoch's bar, when there is one.

        Parameters
        ----------
        epoch : int
            0-based.
        """
        if self.bar_class is None:
            return
        self.bar = self.bar_class(total=self.steps, desc=f"epoch {epoch + 1}/{self.epochs}",
                                  unit="batch", leave=False, mininterval=0.1,
                                  **self.bar_options)
        self._postfix_until = 0.0

    def advance(self, steps: int) -> None:
        """``steps`` more batches of the epoch are done.

        Parameters
        ----------
        steps : int
        """
        if self.bar is not None:
            self.bar.update(steps)

    def show_running(self, logs: Logs) -> None:
        """Show the epoch's running logs beside the bar from its next redraw.

        As "loss=0.2345 accuracy=0.9123", shortened to fit the width; nothing without a
        bar. The redraws stay tqdm's (at most one per 0.1 s): call this before
        ``advance``, which may draw.

        Parameters
        ----------
        logs : dict
            "loss" and, for classifiers, "accuracy": the means over the epoch's rows
            trained so far; others are not shown.
        """
        if self.bar is not None and logs:
            self.bar.set_postfix_str(self._postfix(logs), refresh=False)

    def _postfix(self, logs):
        """The running logs as text that leaves the text bar _MIN_BAR columns: the
        names shortened, then the last figures dropped, when the whole does not fit.
        The form is measured at most once per 0.1 s (a tqdm format, ~15 us) and kept in
        between, so that a bar advanced every step pays for it only as tqdm redraws."""
        ncols = self.bar_options.get("ncols")   # None: a widget, which has room
        now = time.monotonic()
        if ncols is not None and now >= self._postfix_until:
            self._postfix_until = now + 0.1
            self._postfix_form = (True, 0)
            # measured as at the epoch's end (the widest count) and with a rate of 7
            # characters until tqdm has one
            bar = dict(self.bar.format_dict, ncols=None, n=self.bar.total)
            bar["rate"] = bar.get("rate") or 9999.99
            for count in range(len(_RUNNING), 0, -1):
                for short in (False, True):
                    bar["postfix"] = _running_text(logs, short, count)
                    # without ncols tqdm draws a bar of 10 columns; the rest is text
                    if len(self.bar.format_meter(**bar)) - 10 + _MIN_BAR <= ncols:
                        self._postfix_form = (short, count)
                        return bar["postfix"]
        return _running_text(logs, *self._postfix_form)

    def epoch_end(self, epoch: int, logs: Logs) -> None:
        """Replace the bar by the epoch's line (see ``epoch_line``; nothing when silent).

        Parameters
        ----------
        epoch : int
            0-based.
        logs : dict
            The epoch's logs.
        """
        if not self.on:
            return
        self._close_bar()
        line, self.style = epoch_line(epoch, self.epochs, logs, self.width, self.style)
        self._write(line)

    update = epoch_end   # the name it had before the bar came

    def note(self, text: str) -> None:
        """Show a message, wrapped to the width (nothing when silent).

        Parameters
        ----------
        text : str
        """
        if self.on and text:
            self._close_bar()
            self._write(textwrap.fill(text, max(self.width - 1, 20)))

    def close(self) -> None:
        """Close the bar, if one is open."""
        self._close_bar()

    def _close_bar(self):
        if self.bar is not None:
            self.bar.close()   # leave=False: the bar is erased, the line takes its place
            self.bar = None

    def _write(self, line):
        print(line, file=self.stream, flush=True)
