"""The panda way: babysit one model, watching its learning curves between epochs and
changing its learning rate or stopping it by hand or by rule.

Uses the model's callback mechanism (fastdnn.callbacks.Callback.on_epoch_end; the
model is ``self.model``, as in Keras).
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, Union

from ..callbacks import Callback, Logs

if TYPE_CHECKING:
    from ..model import Sequential

#: A Panda hook: (model, epoch (0-based), logs, curves) -> None, {"lr": value},
#: {"stop": True} or "stop".
PandaHook = Callable[["Sequential", int, Logs, dict[str, list[float]]],
                     Union[None, dict[str, Any], str]]


class Panda(Callback):
    """Record live learning curves and steer training between epochs.

    Parameters
    ----------
    hook : callable(model, epoch, logs, curves) -> None, dict or "stop", optional
        Called after every epoch. Return {"lr": value} to set the learning rate from
        the next epoch on, "stop" (or {"stop": True}) to stop after this epoch.
    print_every : int
        Print one line of the curves every this many epochs (0: silent).
    plot : bool
        Redraw train and dev curves live when matplotlib is installed.
    stream : file, default sys.stdout
        Where the lines are printed.

    Attributes
    ----------
    curves : dict of lists
        Per epoch: epoch, loss, accuracy, val_loss, val_accuracy, lr (what was logged).
    events : list of str
        What the hook changed, and when.
    """

    def __init__(self, hook: PandaHook | None = None, print_every: int = 1,
                 plot: bool = False, stream: IO[str] | None = None) -> None:
        self.hook = hook
        self.print_every = int(print_every)
        self.plot = plot
        self.stream = stream
        self.curves, self.events = {}, []
        self._fig = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if self.plot:
            try:
                import matplotlib.pyplot as plt
                self._plt = plt
                self._fig, self._ax = plt.subplots(1, 2, figsize=(9, 3.5))
            except ImportError:
                self.plot = False

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        model, logs = self.model, logs or {}
        self.curves.setdefault("epoch", []).append(epoch)
        for k, v in logs.items():
            if k != "epoch_time":
                self.curves.setdefault(k, []).append(float(v))
        if self.print_every and (epoch + 1) % self.print_every == 0:
            text = "  ".join(f"{k} {v:.4g}" for k, v in logs.items() if k != "epoch_time")
            print(f"[panda] epoch {epoch + 1}  {text}", file=self.stream or sys.stdout,
                  flush=True)
        if self.plot:
            self._redraw()
        if self.hook is None:
            return
        action = self.hook(model, epoch, logs, self.curves)
        if action == "stop" or (isinstance(action, dict) and action.get("stop")):
            model.stop_training = True
            self.events.append(f"epoch {epoch + 1}: stop")
        if isinstance(action, dict) and "lr" in action:
            lr = float(action["lr"])
            model.optimizer.lr = lr
            model.optimizer.initial_lr = lr   # a schedule then decays from the new value
            self.events.append(f"epoch {epoch + 1}: lr -> {lr:g}")

    def _redraw(self):
        ax = self._ax
        for a in ax:
            a.clear()
        x = [e + 1 for e in self.curves["epoch"]]
        for i, metric in enumerate(("loss", "accuracy")):
            for prefix, label in (("", "train"), ("val_", "dev")):
                if prefix + metric in self.curves:
                    ax[i].plot(x, self.curves[prefix + metric], label=label)
            ax[i].set_xlabel("epoch")
            ax[i].set_ylabel(metric)
            ax[i].legend()
        self._plt.pause(0.001)


def reduce_lr_on_plateau(factor: float = 0.5, patience: int = 2, monitor: str = "val_loss",
                         min_lr: float = 0.0, stop_after: int | None = None) -> PandaHook:
    """A Panda hook that cuts the learning rate when ``monitor`` stops improving.

    It multiplies the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs, and stops training after ``stop_after`` reductions.

    Parameters
    ----------
    factor : float
        What a cut multiplies the learning rate by.
    patience : int
        Epochs without improvement tolerated before a cut.
    monitor : str
        The logged name to watch; higher is better when it contains "acc".
    min_lr : float
        The lowest learning rate.
    stop_after : int, optional
        Stop, instead of cutting again, once this many cuts were made; None: never.

    Returns
    -------
    callable
        The hook, for ``Panda(hook=...)``.
    """
    state = {"best": float("inf"), "wait": 0, "cuts": 0}
    sign = -1 if "acc" in monitor else 1

    def hook(model, epoch, logs, curves):
        value = sign * logs[monitor]
        if value < state["best"]:
            state["best"], state["wait"] = value, 0
            return None
        state["wait"] += 1
        if state["wait"] <= patience:
            return None
        state["wait"] = 0
        state["cuts"] += 1
        if stop_after is not None and state["cuts"] > stop_after:
            return "stop"
        return {"lr": max(model.optimizer.lr * factor, min_lr)}

    return hook
