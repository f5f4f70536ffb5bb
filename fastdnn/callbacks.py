"""Training history, early stopping, user callbacks and the progress display."""
import math
import sys
import time

from ._validation import check_int, check_real


class History(dict):
    """Per-epoch logs of ``fit``: history["loss"], ["accuracy"], ["val_loss"],
    ["val_accuracy"], ["lr"], ["epoch_time"]; plus ``best_epoch`` when early stopping."""

    def __init__(self):
        super().__init__()
        self.best_epoch = None
        self.stopped_epoch = None

    @property
    def history(self):  # Keras-style access
        return self

    def append(self, logs):
        for k, v in logs.items():
            self.setdefault(k, []).append(v)


class Callback:
    """Override ``on_epoch_end(model, epoch, logs)``; set ``model.stop_training = True``
    to stop after this epoch."""

    def on_train_begin(self, model):
        pass

    def on_epoch_end(self, model, epoch, logs):
        pass

    def on_train_end(self, model):
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    The best weights (and BatchNorm statistics) are restored at the end of training
    whether it stopped early or ran out of epochs (``restore_best=True``).
    """

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="auto",
                 restore_best=True):
        self.monitor = monitor
        self.patience = check_int("patience", patience, 0)
        self.min_delta = check_real("min_delta", min_delta, 0.0)
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be one of ['auto', 'max', 'min'], got {mode!r}")
        self.mode = mode
        self.restore_best = bool(restore_best)

    def on_train_begin(self, model):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.wait = 0
        self.best_state = None

    def on_epoch_end(self, model, epoch, logs):
        if self.monitor not in logs:
            raise ValueError(f"early stopping monitors {self.monitor!r}, which is not "
                             f"logged (logged: {sorted(logs)}); pass validation_data")
        value = logs[self.monitor]
        better = (value < self.best - self.min_delta if self.mode == "min"
                  else value > self.best + self.min_delta)
        if better:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_state = model.parameters.snapshot()
        else:
            self.wait += 1
            if self.wait > self.patience:
                model.stop_training = True

    def on_train_end(self, model):
        if self.restore_best and self.best_state is not None:
            model.parameters.restore(self.best_state)


def as_early_stopping(early_stopping):
    """None/False, True (defaults), an int patience, a dict of arguments, or an object."""
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


class Progress:
    """Epoch progress: tqdm when installed and on a terminal, else one line per epoch.

    verbose=0: silent; 1: on a terminal only; 2: one line per epoch wherever.
    """

    def __init__(self, epochs, verbose, stream=None):
        self.stream = stream or sys.stderr
        tty = getattr(self.stream, "isatty", lambda: False)()
        self.on = verbose >= 2 or (verbose == 1 and tty)
        self.bar = None
        self.drawn = 0   # length of the line drawn in place
        self.verbose = verbose
        self.epochs = epochs
        if self.on and verbose == 1:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=epochs, unit="epoch", file=self.stream, leave=True)
            except ImportError:
                pass
        self.start = time.perf_counter()

    def update(self, epoch, logs):
        if not self.on:
            return
        text = "  ".join(f"{k} {v:.4g}" for k, v in logs.items() if k != "epoch_time")
        ms = logs.get("epoch_time", 0) * 1e3
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        elif self.verbose == 1:   # a terminal: one line redrawn in place
            done = int(20 * (epoch + 1) / max(self.epochs, 1))
            line = (f"[{'#' * done}{'.' * (20 - done)}] epoch {epoch + 1}/{self.epochs}  "
                    f"{text}  {ms:.0f} ms/epoch")
            print("\r" + line.ljust(self.drawn), end="", file=self.stream, flush=True)
            self.drawn = len(line)
        else:
            print(f"epoch {epoch + 1}/{self.epochs}  {text}  {ms:.0f} ms", file=self.stream,
                  flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.drawn:
            print(file=self.stream, flush=True)
