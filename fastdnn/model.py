"""Models: Sequential (Dense, BatchNorm, Activation, Dropout) and the MLP built on it.

m = batch size, n = number of examples, n_x = input width, k = output width,
L = number of dense blocks. X: (n, n_x); W_l: (n_out, n_in); b_l, gamma_l, beta_l: (n_out,).

The model is a face: it checks what users give it and keeps the training loop (epochs,
schedules, validation, callbacks, progress). The layers compile into blocks, each
Dense [-> BatchNorm] [-> Activation] [-> Dropout]; the parameters live in flat buffers
with per-layer views (``parameters``: fastdnn.engine.layout.Parameters), and the
backend's engine trains and predicts on them (fastdnn.backend): on "cpu" a run of
training steps is one compiled call (fastdnn.engine.cpu), on "numpy" and "cuda" a loop
of kernel calls (fastdnn.engine.stepwise). The public methods take and return NumPy
arrays on every backend.
"""
import copy
import time
import warnings

import numpy as np

from . import backend as _backends
from . import config as _config
from ._validation import (check_bool, check_choice, check_dtype, check_finite, check_int,
                          check_keep_prob, check_real)
from .callbacks import Callback, History, Progress, as_early_stopping
from .engine.layout import Block, Parameters
from .layers import (HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS, Activation, BatchNorm, Dense,
                     Dropout, Layer, layer_from_config)
from .optim import Adam, get_optimizer
from .reference.init import INITIALIZERS, initialize_weights
from .reference.losses import check_sample_weight, sigmoid as _sigmoid, softmax as _softmax
from .schedules import Schedule


_WEIGHTS = object()   # get_params() called without deep: the old meaning, the weights


class NotFittedError(ValueError, AttributeError):
    """A model was asked to predict before it was trained or given weights (the same
    bases as scikit-learn's NotFittedError)."""


class Sequential:
    """A stack of Dense, BatchNorm, Activation and Dropout layers.

    Each Dense may be followed, in this order, by BatchNorm, Activation and Dropout.
    The last Dense's Activation (softmax, sigmoid or none = identity) sets the output and
    loss: softmax cross-entropy, sigmoid (binary) cross-entropy, or mean squared error.

    Parameters
    ----------
    layers : list of Layer
    input_dim : int or None
        n_x; None builds the model on the first data it sees.
    init : str
        Default weight initializer ("he", "xavier", "glorot", "random", "zeros").
    l2 : float
        L2 strength lambda: cost (lambda / 2m) sum ||W||^2 added to the loss.
    dtype : "float32" or "float64"
    backend : "auto", "numpy", "cpu" or "cuda"
    seed : int or None
        Seeds the weights, the shuffling and the dropout masks.
    batch_invariant : bool
        Whether a row's prediction has the same bits whatever other rows are predicted
        with it (default). Float32 products round a row by its lane in BLAS's register
        tile, so on the CPU backends a float32 model then predicts through float64 (the
        result rounded to float32), which costs about 2x the float32 predict
        (kernels/row_invariance.py); False predicts in float32. Float64 predictions
        are batch-invariant either way; CUDA predictions are not made so.
    """

    def __init__(self, layers, *, input_dim=None, init="he", l2=0.0, dtype="float32",
                 backend="auto", seed=None, batch_invariant=True):
        self._init_params = dict(layers=layers, input_dim=input_dim, init=init, l2=l2,
                                 dtype=dtype, backend=backend, seed=seed,
                                 batch_invariant=batch_invariant)
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must be a Dense, BatchNorm, Activation or "
                                f"Dropout, got {layer!r}")
        self.init = check_choice("init", init, INITIALIZERS)
        self.l2 = check_real("l2", l2, 0.0)
        self.dtype = check_dtype("dtype", dtype)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (1 << 63))
        self.seed = check_int("seed", seed, 0)
        self.batch_invariant = check_bool("batch_invariant", batch_invariant)
        self._plan = self._compile(self.layers)
        self.backend = backend
        self._backend = _backends.get(backend)
        self.output = self._output
        self.step_ = 0          # updates done (dropout keys, per-iteration schedules)
        self.epoch_ = 0         # epochs completed (per-epoch schedules)
        self.optimizer = None
        self.schedule = None
        self.stop_training = False
        self._shuffle_rng = np.random.default_rng([self.seed, 1])
        self.input_dim = None
        self.parameters = None
        self._wide = None       # float64 twin for batch-invariant float32 predictions
        self._weights_given = False   # set_weights or load: predictions are meant
        if input_dim is not None:
            self.build(check_int("input_dim", input_dim, 1))

    # ------------------------------------------------------------------ building
    def _compile(self, layers):
        """Group layers into blocks: [(Dense, BatchNorm|None, activation|None, keep)]."""
        groups, stage = [], 0
        for i, layer in enumerate(layers):
            name = type(layer).__name__
            if isinstance(layer, Dense):
                groups.append([layer, None, None, 1.0])
                stage = 1
                continue
            if not groups:
                raise ValueError(f"{name} must come after a Dense layer")
            order = {BatchNorm: 2, Activation: 3, Dropout: 4}[type(layer)]
            if order <= stage:
                previous = type(layers[i - 1]).__name__
                raise ValueError(f"{name} cannot follow {previous}: each Dense "
                                 "may be followed by BatchNorm, Activation and "
                                 "Dropout, once each and in this order")
            stage = order
            if isinstance(layer, BatchNorm):
                groups[-1][1] = layer
            elif isinstance(layer, Activation):
                groups[-1][2] = layer.name
            else:
                groups[-1][3] = layer.keep_prob
        if not groups:
            raise ValueError("layers must contain at least one Dense layer")
        for g in groups[:-1]:
            if g[2] in ("softmax", "exp"):
                raise ValueError(f"{g[2]} is only allowed as the last layer's activation")
        last = groups[-1]
        self._output = last[2] or "identity"
        if self._output not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"the last layer's activation must be one of "
                             f"{list(OUTPUT_ACTIVATIONS)} (none = identity), got {last[2]!r}")
        if last[3] != 1.0:
            raise ValueError("Dropout after the output layer is not supported")
        if self._output == "softmax" and last[0].units < 2:
            raise ValueError("a softmax output needs at least 2 units; use a sigmoid "
                             "output for binary classification")
        return groups

    def build(self, input_dim):
        """Make the parameters for inputs of width ``input_dim`` (fit and the first data
        seen do it; a built model keeps its width)."""
        self.input_dim = input_dim
        self.blocks, n_in = [], input_dim
        for l, (dense, bn, act, keep) in enumerate(self._plan):
            last = l == len(self._plan) - 1
            self.blocks.append(Block(n_in, dense.units, dense.init or self.init,
                                     dense.use_bias and bn is None, bn,
                                     "identity" if last else (act or "identity"), keep))
            n_in = dense.units
        arrays = self._backend.arrays
        host = Parameters(self.blocks, self.dtype)   # initialised on the host
        self._initialize(host)
        self.parameters = Parameters(self.blocks, self.dtype, arrays=arrays)
        self.parameters.set_host_state(host.flat, host.running)
        self.n_params = self.parameters.size
        self._engine = self._backend.engine(self.parameters, self.output, self.seed)
        self._wide = None

    def _initialize(self, params):
        rng = np.random.default_rng([self.seed, 0])
        for l, blk in enumerate(self.blocks, start=1):
            params.p[f"W{l}"][...] = initialize_weights(blk.init, blk.n_in, blk.n_out, rng,
                                                        np.float64)
            if blk.bn is not None:
                params.p[f"gamma{l}"][...] = 1
                params.rv[l][...] = 1

    def _require_built(self, X=None):
        if self.input_dim is None:
            if X is None:
                raise RuntimeError("the model is not built yet: pass input_dim or call "
                                   "fit / train_step first")
            self.build(X.shape[1])

    # ------------------------------------------------------------------ parameters
    def get_weights(self):
        """NumPy copies of the weights: "W1" (n_out, n_in), "b1", "gamma1", "beta1", ..."""
        self._require_built()
        arrays = self.parameters.arrays
        return {name: arrays.get(view) for name, view in self.parameters.p.items()}

    def set_weights(self, weights):
        """Set some or all weights from a dict like ``get_weights()``'s (cast to dtype);
        all are checked before any is set."""
        self._require_built()
        views = self.parameters.p
        for name, value in weights.items():
            if name not in views:
                raise KeyError(f"unknown weight {name!r}; this model has {list(views)}")
            value = _real_array(f"weights[{name!r}]", value)
            if value.shape != views[name].shape:
                raise ValueError(f"weights[{name!r}] must have shape {views[name].shape}, "
                                 f"got {value.shape}")
            check_finite(f"weights[{name!r}]", value)
        for name, value in weights.items():
            self.parameters.arrays.set(views[name], np.asarray(value))
        self._weights_given = True

    def get_params(self, deep=_WEIGHTS):
        """The constructor's arguments, as scikit-learn means ``get_params(deep=...)``
        (so ``sklearn.base.clone`` works). Called without ``deep`` it still returns the
        weights, as before, with a DeprecationWarning: use ``get_weights()``."""
        if deep is _WEIGHTS:
            warnings.warn("MLP.get_params() returning the weights is deprecated; use "
                          "get_weights() (get_params(deep=...) gives the constructor's "
                          "arguments, as in scikit-learn)", DeprecationWarning, stacklevel=2)
            return self.get_weights()
        return dict(self._init_params)

    def set_params(self, weights=None, **params):
        """Change constructor arguments, as scikit-learn's ``set_params(**params)``: the
        model is made anew with them, untrained. Given a dict of weights instead, sets
        them, as before, with a DeprecationWarning: use ``set_weights()``."""
        if weights is not None:
            warnings.warn("MLP.set_params(weights) is deprecated; use set_weights(weights)",
                          DeprecationWarning, stacklevel=2)
            self.set_weights(weights)
            return self
        unknown = sorted(set(params) - set(self._init_params))
        if unknown:
            raise ValueError(f"unknown parameter {unknown[0]!r} for {type(self).__name__}; "
                             f"valid ones are {sorted(self._init_params)}")
        self.__init__(**{**self._init_params, **params})
        return self

    def get_batchnorm_stats(self):
        """Copies of the running statistics: "running_mean1", "running_var1", ..."""
        self._require_built()
        p, out = self.parameters, {}
        for l in p.rm:
            out[f"running_mean{l}"] = p.arrays.get(p.rm[l])
            out[f"running_var{l}"] = p.arrays.get(p.rv[l])
        return out

    def set_batchnorm_stats(self, stats):
        """Set running statistics from a dict like ``get_batchnorm_stats()``'s."""
        self._require_built()
        p, targets = self.parameters, {}
        for l in p.rm:
            targets[f"running_mean{l}"], targets[f"running_var{l}"] = p.rm[l], p.rv[l]
        for name, value in stats.items():
            if name not in targets:
                raise KeyError(f"unknown BatchNorm statistic {name!r}; this model has "
                               f"{list(targets)}")
            value = check_finite(f"stats[{name!r}]", _real_array(f"stats[{name!r}]", value))
            if value.shape != targets[name].shape:
                raise ValueError(f"stats[{name!r}] must have shape {targets[name].shape}, "
                                 f"got {value.shape}")
            if name.startswith("running_var") and (value < 0).any():
                raise ValueError(f"stats[{name!r}] is a variance and must be >= 0, got a "
                                 f"minimum of {value.min()}")
        for name, value in stats.items():
            p.arrays.set(targets[name], np.asarray(value))

    def training_state(self):
        """The counters and shuffling RNG position that resuming training needs."""
        return {"step": self.step_, "epoch": self.epoch_,
                "rng": self._shuffle_rng.bit_generator.state}

    def set_training_state(self, state):
        self.step_, self.epoch_ = int(state["step"]), int(state["epoch"])
        self._shuffle_rng.bit_generator.state = state["rng"]

    # ------------------------------------------------------------------ data checks
    def _inputs(self, X, name="X"):
        """X checked, as a C-contiguous array of the model's dtype (a copy only when X is
        not one already; the engines never write it)."""
        X = _real_array(name, X)
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n examples, n features), got shape {X.shape}")
        if len(X) == 0:
            raise ValueError(f"{name} must not be empty")
        self._require_built(X)
        if X.shape[1] != self.input_dim:
            raise ValueError(f"{name} must have {self.input_dim} features (columns), got "
                             f"shape {X.shape}")
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if _config.CHECK_FINITE and not _all_finite(X):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(X))[0])
            raise ValueError(f"{name} contains NaN or inf (first at index {bad})")
        return X

    def _targets(self, y, n, name="y"):
        """y as an (n, k) target matrix of the model's dtype."""
        y = _real_array(name, y)
        k = self.blocks[-1].n_out
        if y.ndim == 0 or len(y) != n:
            raise ValueError(f"{name} must have one row per example ({n}), got shape {y.shape}")
        if self.output == "softmax":
            if y.ndim == 1:
                if not np.issubdtype(y.dtype, np.integer):
                    if np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)):
                        y = y.astype(np.int64)
                    else:
                        raise ValueError(f"{name} must hold integer class indices in "
                                         f"[0, {k}) or be one-hot of shape ({n}, {k}), "
                                         f"got dtype {y.dtype}")
                if y.min() < 0 or y.max() >= k:
                    raise ValueError(f"{name} class indices must lie in [0, {k}), got "
                                     f"values in [{y.min()}, {y.max()}]")
                Y = np.zeros((n, k), self.dtype)
                Y[np.arange(n), y] = 1
                return Y
            if y.shape != (n, k):
                raise ValueError(f"{name} must be class indices of shape ({n},) or one-hot "
                                 f"of shape ({n}, {k}), got shape {y.shape}")
        else:
            if y.ndim == 1 and k == 1:
                y = y.reshape(n, 1)
            if y.shape != (n, k):
                want = f"({n},) or ({n}, 1)" if k == 1 else f"({n}, {k})"
                raise ValueError(f"{name} must have shape {want}, got shape {y.shape}")
        Y = np.array(y, dtype=self.dtype, order="C", copy=True)
        if not np.isfinite(Y).all():
            raise ValueError(f"{name} contains NaN or inf")
        if self.output == "exp" and (Y < 0).any():
            raise ValueError(f"{name} must be >= 0 for an exp output (Poisson counts), got "
                             f"a minimum of {Y.min()}")
        if self.output in ("softmax", "sigmoid") and ((Y < 0) | (Y > 1)).any():
            what = "one-hot rows" if self.output == "softmax" else "labels 0/1"
            raise ValueError(f"{name} must hold {what} (probabilities in [0, 1]) for a "
                             f"{self.output} output, got values in [{Y.min()}, {Y.max()}]")
        if self.output == "softmax" and not np.allclose(Y.sum(axis=1), 1, atol=1e-3):
            bad = int(np.argmax(np.abs(Y.sum(axis=1) - 1) > 1e-3))
            raise ValueError(f"{name}'s one-hot rows must sum to 1, row {bad} sums to "
                             f"{Y[bad].sum()}")
        return Y

    # ------------------------------------------------------------------ public steps
    def loss_and_grads(self, X, y, sample_weight=None):
        """Loss (L2 term included) and gradients for one batch in training mode.

        Nothing is updated: BatchNorm's running statistics stay as they are and the step
        counter is not advanced (dropout uses the current step's masks).

        Returns
        -------
        loss : float
        grads : dict of copies "dW1", "db1", "dgamma1", "dbeta1", ...
        """
        X = self._inputs(X)
        Y = self._targets(y, len(X))
        loss = self._engine.step(X, Y, None, 0.0, self.step_, self.l2, update=False,
                                 weights=self._sample_weights(sample_weight, len(X)))
        p = self.parameters
        return loss, {"d" + name: p.arrays.get(g) for name, g in p.g.items()}

    def train_step(self, X, y, optimizer, sample_weight=None):
        """One update on the batch (X, y) with ``optimizer`` (rows weighing
        ``sample_weight``, as in ``fit``); returns the loss before it."""
        X = self._inputs(X)
        Y = self._targets(y, len(X))
        weights = self._sample_weights(sample_weight, len(X))
        optimizer = self._optimizer(optimizer)
        lr = self._step_lr(optimizer)(0)
        loss = self._engine.step(X, Y, optimizer, lr, self.step_, self.l2, weights=weights)
        if not np.isfinite(loss):
            _diverged(loss, f"step {self.step_}")
        optimizer.lr = lr
        self.step_ += 1
        return loss

    def _optimizer(self, optimizer):
        if optimizer is None:
            if self.optimizer is None:
                self.optimizer = Adam()
            return self.optimizer
        optimizer = get_optimizer(optimizer)
        self.optimizer = optimizer
        return optimizer

    def _step_lr(self, optimizer):
        """The learning rate of step i of the next pass: the schedule's, per iteration,
        or the optimizer's current one."""
        schedule, step0, lr = self.schedule, self.step_, float(optimizer.lr)
        if schedule is not None and schedule.per == "iteration":
            return lambda i: schedule(step0 + i, optimizer.initial_lr)
        return lambda i: lr

    def _advance(self, steps):
        self.step_ += steps

    # ------------------------------------------------------------------ training
    def fit(self, X, y, *, optimizer=None, epochs=10, batch_size=64, shuffle=True,
            schedule=None, validation_data=None, early_stopping=None, callbacks=None,
            verbose=1, sample_weight=None):
        """Train with mini-batches: each epoch shuffles, then partitions (last batch smaller).

        Parameters
        ----------
        X : (n, n_x) array
        y : (n,) class indices, or (n, k) one-hot / targets
        optimizer : Optimizer, name ("adam", "sgd", ...) or None
            None keeps the model's optimizer (e.g. one restored by load), else Adam().
        epochs : int >= 0
        batch_size : int >= 1
            n (or more) gives batch gradient descent, 1 stochastic gradient descent.
        shuffle : bool
        schedule : Schedule or None
            None keeps the model's schedule (none: constant learning rate).
        validation_data : (X_dev, y_dev) or None
        early_stopping : None, True, int patience, dict or EarlyStopping
            Monitors val_loss by default; the best weights are restored at the end.
        callbacks : list of Callback
        verbose : 0 silent, 1 progress on a terminal, 2 one line per epoch
        sample_weight : (n,) weights >= 0, optional
            How much each example counts: a batch's loss is sum_i w_i loss_i / sum_i w_i
            (scikit-learn's weighting; the L2 term is divided by sum_i w_i in place of
            m). None: every example weighs 1.

        Returns
        -------
        History
            Per epoch: loss, accuracy (classification), val_loss, val_accuracy, lr,
            epoch_time (seconds).
        """
        epochs = check_int("epochs", epochs, 0)
        batch_size = check_int("batch_size", batch_size, 1)
        verbose = check_int("verbose", verbose, 0, 2)
        X = self._inputs(X)
        Y = self._targets(y, len(X))
        weights = self._sample_weights(sample_weight, len(X))
        dev = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (X_dev, y_dev)")
            X_dev = self._inputs(validation_data[0], "validation_data[0]")
            dev = X_dev, self._targets(validation_data[1], len(X_dev), "validation_data[1]")
        optimizer = self._optimizer(optimizer)
        if schedule is not None:
            if not isinstance(schedule, Schedule):
                raise TypeError(f"schedule must be a fastdnn.schedules.Schedule, got "
                                f"{schedule!r}")
            self.schedule = schedule
        stopper = as_early_stopping(early_stopping)
        if stopper is not None and stopper.monitor.startswith("val_") and dev is None:
            raise ValueError("early_stopping monitors the dev set: pass validation_data")
        callbacks = list(callbacks or [])
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be Callback objects, got {cb!r}")
        if stopper is not None:
            callbacks.append(stopper)
        history = self._train((X, Y, weights), optimizer, epochs, min(batch_size, len(X)),
                              shuffle, dev, callbacks, Progress(epochs, verbose))
        if stopper is not None:
            history.best_epoch = stopper.best_epoch
        self.history_ = history
        return history

    def _sample_weights(self, sample_weight, n):
        """sample_weight checked, in the model's dtype; an empty array for None."""
        if sample_weight is None:
            return np.empty(0, self.dtype)
        return check_sample_weight(sample_weight, n).astype(self.dtype)

    def _train(self, data, optimizer, epochs, batch_size, shuffle, dev, callbacks,
               progress):
        """The epoch loop of ``fit`` over data = (X, Y, row weights or empty)."""
        history = History()
        self.stop_training = False
        for cb in callbacks:
            cb.on_train_begin(self)
        saved = None
        try:
            for epoch in range(epochs):
                start = time.perf_counter()
                saved = self._save_finite_state(optimizer, saved)
                try:
                    logs = self._epoch(data, optimizer, batch_size, shuffle)
                    if dev is not None:
                        logs.update({"val_" + k: v
                                     for k, v in self._evaluate(*dev).items()})
                    self._check_finite(logs)
                except FloatingPointError as exc:
                    self._restore_finite_state(optimizer, saved)
                    raise FloatingPointError(
                        f"{exc}. The model is back to its state before epoch "
                        f"{self.epoch_ + 1}, its last finite weights") from None
                logs["lr"] = float(optimizer.lr)
                logs["epoch_time"] = time.perf_counter() - start
                history.append(logs)
                for cb in callbacks:
                    cb.on_epoch_end(self, epoch, logs)
                progress.update(epoch, logs)
                if self.stop_training:
                    history.stopped_epoch = epoch
                    break
        finally:
            progress.close()
        for cb in callbacks:
            cb.on_train_end(self)
        return history

    def _save_finite_state(self, optimizer, saved):
        """Copy what an epoch changes (weights, BatchNorm statistics, the optimizer's
        state and counters) into ``saved`` (made on the first epoch, reused after), to
        go back to if the epoch diverges."""
        p = self.parameters
        arrays = [p.flat, p.running] + [a for held in (optimizer.state or {}).values()
                                        for a in held]
        if saved is None or len(saved[0]) != len(arrays):
            copies = [p.arrays.clone(a) for a in arrays]
        else:
            copies = saved[0]
            for dst, src in zip(copies, arrays):
                p.arrays.copy_into(dst, src)
        return copies, optimizer.state is not None, (self.step_, self.epoch_, optimizer.t)

    def _restore_finite_state(self, optimizer, saved):
        copies, had_state, (self.step_, self.epoch_, optimizer.t) = saved
        p = self.parameters
        p.arrays.copy_into(p.flat, copies[0])
        p.arrays.copy_into(p.running, copies[1])
        if not had_state:
            optimizer.state = None
            return
        held = [a for arrays in optimizer.state.values() for a in arrays]
        for dst, src in zip(held, copies[2:]):
            p.arrays.copy_into(dst, src)

    def _check_finite(self, logs):
        """Raise FloatingPointError when the epoch's last update left a weight that is
        not finite, or the dev loss is not (the loss checks before each update miss it)."""
        if "val_loss" in logs and not np.isfinite(logs["val_loss"]):
            _diverged(logs["val_loss"], f"epoch {self.epoch_} on the validation data")
        flat = self.parameters.flat
        # (device weights: the engine folds their check into the epoch's loss, read once)
        if isinstance(flat, np.ndarray) and not _all_finite(flat):
            _diverged(None, None, f"epoch {self.epoch_}'s last update made weights that "
                      "are not finite")

    def _epoch(self, data, optimizer, batch_size, shuffle):
        """One pass over data = (X, Y, weights); returns the epoch's logs (loss,
        accuracy)."""
        X, Y, weights = data
        n = len(X)
        if self.schedule is not None and self.schedule.per == "epoch":
            optimizer.lr = self.schedule(self.epoch_, optimizer.initial_lr)
        order = self._shuffle_rng.permutation(n) if shuffle else np.arange(n)
        lr = self._step_lr(optimizer)
        result = self._engine.train((X, Y, order, weights), batch_size, optimizer, lr,
                                    self.step_, self.l2, on_run=self._advance)
        if result.steps:
            optimizer.lr = lr(result.steps - 1)
        if result.diverged is not None:
            _diverged(np.nan, f"epoch {self.epoch_ + 1}, step {self.step_}")
        self.epoch_ += 1
        logs = {"loss": float(result.loss[0]) / n}
        if not np.isfinite(logs["loss"]):
            _diverged(logs["loss"], f"epoch {self.epoch_}")
        if self.output in ("softmax", "sigmoid"):
            per = 1 if self.output == "softmax" else Y.shape[1]
            logs["accuracy"] = int(result.correct[0]) / (n * per)
        return logs

    # ------------------------------------------------------------------ inference
    def _require_fitted(self):
        if self.step_ == 0 and not self._weights_given:
            raise NotFittedError(f"this {type(self).__name__} is not trained yet: call fit "
                                 "(or train_step, set_weights, fastdnn.load) before "
                                 "predicting")

    def _logits(self, X):
        """Output pre-activations (n, k) in inference mode."""
        self._require_fitted()
        if not self.batch_invariant or self._backend.name == "cuda":
            return self._engine.infer(X)[:, 0, :]
        if self.dtype == np.float32:
            return self._wide_logits(X)
        return self._engine.infer(X, whole_blocks=True)[:, 0, :]

    def _wide_logits(self, X):
        """Float32 logits computed in float64 and rounded: float64 products give a row
        the same bits at any position of the batch (kernels/row_invariance.py)."""
        if self._wide is None:
            wide = Parameters(self.blocks, np.float64, arrays=self._backend.arrays)
            self._wide = wide, self._backend.engine(wide, self.output, self.seed)
        wide, engine = self._wide
        # every call copies the current weights; threads predicting at once write the
        # same values
        wide.set_host_state(*self.parameters.host_state())
        return engine.infer(X.astype(np.float64), whole_blocks=True)[:, 0, :].astype(
            np.float32)

    def decision_function(self, X):
        """Output pre-activations (logits) (n, k), inference mode."""
        return self._logits(self._inputs(X))

    def predict_proba(self, X):
        """Class probabilities (softmax or sigmoid outputs), (n, k)."""
        if self.output not in ("softmax", "sigmoid"):
            raise ValueError("predict_proba needs a softmax or sigmoid output; use predict")
        Z = self._logits(self._inputs(X))
        return _softmax(Z) if self.output == "softmax" else _sigmoid(Z)

    def predict(self, X):
        """Class indices (softmax), 0/1 labels (sigmoid), values (identity) or means
        exp(z) (exp).

        A single sigmoid, identity or exp output gives shape (n,).
        """
        Z = self._logits(self._inputs(X))
        if self.output == "softmax":
            return Z.argmax(axis=1)
        if self.output == "sigmoid":
            out = (Z > 0).astype(np.int64)
        else:
            out = np.exp(Z) if self.output == "exp" else Z
        return out[:, 0] if out.shape[1] == 1 else out

    def evaluate(self, X, y):
        """Loss (without the L2 term) and accuracy (classification) in inference mode."""
        X = self._inputs(X)
        return self._evaluate(X, self._targets(y, len(X)))

    def _evaluate(self, X, Y):
        self._require_fitted()
        _, loss, right = self._engine.infer(X, Y)
        out = {"loss": float(loss[0]) / len(X)}
        if self.output in ("softmax", "sigmoid"):
            out["accuracy"] = int(right[0]) / (len(X) * (1 if self.output == "softmax"
                                                          else Y.shape[1]))
        return out

    def score(self, X, y):
        """Accuracy (classification) or the negated loss (regression)."""
        r = self.evaluate(X, y)
        return r.get("accuracy", -r["loss"])

    # ------------------------------------------------------------------ config
    def get_config(self):
        return {"class": "Sequential", "layers": [l.get_config() for l in self.layers],
                "input_dim": self.input_dim, "init": self.init, "l2": self.l2,
                "dtype": str(self.dtype), "backend": self.backend, "seed": self.seed,
                "batch_invariant": self.batch_invariant}

    def _clone(self, dtype=None, backend=None):
        """A copy with the same weights and state, optionally another dtype / backend."""
        config = self.get_config()
        if dtype is not None:
            config["dtype"] = str(np.dtype(dtype))
        if backend is not None:
            config["backend"] = backend
        other = model_from_config(config)
        if self.input_dim is not None:
            other._require_built(np.empty((1, self.input_dim)))
            other.parameters.set_host_state(*self.parameters.host_state())
        other.set_training_state(copy.deepcopy(self.training_state()))
        return other

    def __reduce__(self):
        """Pickled as the bytes ``save`` writes (weights, statistics, optimizer, schedule,
        counters; no engine, no code), so a model pickled on one backend unpickles on
        any other; where its own backend is missing, on "auto" with a warning."""
        from .io import dumps
        if self.input_dim is None:   # not built: its configuration is all there is
            return (_unpickle_config, (self.get_config(),))
        return (_unpickle, (dumps(self), self.backend))

    def save(self, path):
        """Save everything to one .npz file (see fastdnn.io.save)."""
        from .io import save
        save(self, path)

    def summary(self):
        """One line per block: shapes and parameter counts."""
        self._require_built()
        lines = [f"{type(self).__name__}: input {self.input_dim}, output {self.output}, "
                 f"{self.n_params} parameters, {self.dtype}, backend {self.backend}"]
        for l, blk in enumerate(self.blocks, start=1):
            parts = [f"Dense({blk.n_in}->{blk.n_out}{'' if blk.bias else ', no bias'})"]
            if blk.bn is not None:
                parts.append("BatchNorm")
            parts.append(blk.activation if l < len(self.blocks) else self.output)
            if blk.keep_prob < 1:
                parts.append(f"Dropout(keep {blk.keep_prob:g})")
            lines.append(f"  {l}: " + " -> ".join(parts))
        return "\n".join(lines)

    def __repr__(self):
        return f"{type(self).__name__}({self.layers!r})"


class MLP(Sequential):
    """A multilayer perceptron.

    Parameters
    ----------
    layer_sizes : sequence of int
        [n_x, n_1, ..., n_L]: the input width, the hidden widths, the output width.
    activation : str
        Hidden activation: relu, leaky_relu, tanh, sigmoid or identity.
    output : "softmax", "sigmoid", "identity" or "exp"
        The output activation, which brings its loss: softmax or sigmoid
        cross-entropy, half squared error, or half Poisson deviance (exp, the log link
        for counts y >= 0; predict gives exp(z)).
    init : str
        Weight initializer: he, xavier, glorot, random or zeros.
    batchnorm : bool
        BatchNorm after every hidden dense layer (those layers then have no bias).
    keep_prob : float or sequence of float
        Dropout keep probability, one for all hidden layers or one per hidden layer.
    l2 : float
        L2 regularisation strength lambda.
    dtype, backend, seed, batch_invariant : see Sequential.
    """

    def __init__(self, layer_sizes, *, activation="relu", output="softmax", init="he",
                 batchnorm=False, keep_prob=1.0, l2=0.0, dtype="float32", backend="auto",
                 seed=None, batch_invariant=True):
        if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__iter__"):
            raise TypeError(f"layer_sizes must be a list of widths [n_x, n_1, ..., n_L], "
                            f"got {layer_sizes!r}")
        sizes = list(layer_sizes)
        if len(sizes) < 2:
            raise ValueError(f"layer_sizes must list at least the input and output widths, "
                             f"got {layer_sizes!r}")
        sizes = [check_int(f"layer_sizes[{i}]", s, 1) for i, s in enumerate(sizes)]
        check_choice("activation", activation, HIDDEN_ACTIVATIONS)
        check_choice("output", output, OUTPUT_ACTIVATIONS)
        use_bn = check_bool("batchnorm", batchnorm)
        n_hidden = len(sizes) - 2
        if np.ndim(keep_prob) == 0:
            keeps = [keep_prob] * n_hidden
        else:
            keeps = list(keep_prob)
            if len(keeps) != n_hidden:
                raise ValueError(f"keep_prob must be a scalar or have one value per hidden "
                                 f"layer ({n_hidden}), got {len(keeps)}")
        keeps = [check_keep_prob("keep_prob", k) for k in keeps]
        layers = []
        for width, keep in zip(sizes[1:-1], keeps):
            layers.append(Dense(width))
            if use_bn:
                layers.append(BatchNorm())
            layers.append(Activation(activation))
            if keep < 1:
                layers.append(Dropout(keep))
        layers.append(Dense(sizes[-1]))
        if output != "identity":
            layers.append(Activation(output))
        self._kwargs = {"layer_sizes": sizes, "activation": activation, "output": output,
                        "init": init, "batchnorm": use_bn, "keep_prob": keeps,
                        "l2": float(l2)}
        super().__init__(layers, input_dim=sizes[0], init=init, l2=l2, dtype=dtype,
                         backend=backend, seed=seed, batch_invariant=batch_invariant)
        self._init_params = dict(layer_sizes=layer_sizes, activation=activation,
                                 output=output, init=init, batchnorm=batchnorm,
                                 keep_prob=keep_prob, l2=l2, dtype=dtype, backend=backend,
                                 seed=seed, batch_invariant=batch_invariant)

    def get_config(self):
        return {"class": "MLP", **self._kwargs, "dtype": str(self.dtype),
                "backend": self.backend, "seed": self.seed,
                "batch_invariant": self.batch_invariant}

    def __repr__(self):
        return f"MLP({self._kwargs['layer_sizes']}, output={self.output!r})"


def _backend_here(name):
    """``name`` when this machine has that backend, else "auto" (with a warning)."""
    if name == "cuda" and not _backends.cuda_available():
        warnings.warn("this model was pickled on backend 'cuda', which this machine lacks;"
                      " it is loaded on backend 'auto'", RuntimeWarning, stacklevel=3)
        return "auto"
    return name


def _unpickle(data, backend):
    from .io import loads
    return loads(data, backend=_backend_here(backend))


def _unpickle_config(config):
    return model_from_config(dict(config, backend=_backend_here(config["backend"])))


def _real_array(name, x):
    """``x`` as an array of real numbers (bool, integer or float), or a clear error."""
    if hasattr(x, "tocsr") or hasattr(x, "todense"):   # SciPy sparse
        raise TypeError(f"{name} is a sparse matrix; pass a dense array (e.g. "
                        f"{name}.toarray())")
    try:
        x = np.asarray(x)
    except ValueError as err:   # a ragged nested list
        raise ValueError(f"{name} must be a rectangular array of numbers: {err}") from None
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers (bool, int or float), got dtype "
                        f"{x.dtype}")
    return x


def model_from_config(config):
    """Rebuild an (untrained) model from ``get_config()``'s dict."""
    config = dict(config)
    kind = config.pop("class")
    if kind == "MLP":
        return MLP(config.pop("layer_sizes"), **config)
    if kind == "Sequential":
        layers = [layer_from_config(c) for c in config.pop("layers")]
        return Sequential(layers, **config)
    raise ValueError(f"unknown model class {kind!r}")


def _diverged(loss, where, what=None):
    raise FloatingPointError(
        f"training diverged: {what or f'the loss is {loss} at {where}'}; try a smaller "
        "learning rate, standardized inputs or a stronger L2 / BatchNorm")


def _all_finite(X):
    """True when X holds no NaN or inf: one read pass and no temporary array (NaN and
    inf carry into the sum); only a sum that overflows on finite values takes the full
    element-wise test."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(X.sum()):
            return True
    return bool(np.isfinite(X).all())
