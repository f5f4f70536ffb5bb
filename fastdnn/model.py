"""Models: Sequential (Dense, BatchNorm, Activation, Dropout) and the MLP built on it.

m = batch size, n = number of examples, n_x = input width, k = output width,
L = number of dense blocks. X: (n, n_x); W_l: (n_out, n_in); b_l, gamma_l, beta_l: (n_out,).

The layers compile into blocks, each Dense [-> BatchNorm] [-> Activation] [-> Dropout],
run by the fused kernels of one backend module (fastdnn.backend.kernels). Parameters,
gradients and optimizer state each live in one flat buffer with per-layer views, so an
optimizer step is one kernel call; workspaces are preallocated per batch size and passed
as the kernels' ``*_out`` buffers, so a steady-state training step allocates no arrays
on the fast backends.

Where those arrays live is the kernel module's business: the engine allocates, fills
and reads them through ``ENGINE`` of the module (``_HostArrays`` below when it has none:
NumPy arrays, the numpy and cpu backends). fastdnn.cuda's keeps them on the GPU
(fastdnn.cuda.engine); the public methods take and return NumPy arrays either way.
"""
import contextlib
import copy
import math
import time

import numpy as np

from . import config as _config
from ._validation import (check_choice, check_int, check_keep_prob, check_real,
                          finite_checks_skipped)
from .backend import kernels as _kernels, resolve as _resolve
from .callbacks import Callback, History, Progress, as_early_stopping
from .layers import (HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS, Activation, BatchNorm, Dense,
                     Dropout, Layer, layer_from_config)
from .optim import Adam, get_optimizer
from .reference.init import INITIALIZERS, initialize_weights
from .rng import dropout_key
from .schedules import Schedule

PREDICT_CHUNK = 4096
MAX_WORKSPACES = 8    # batch sizes with cached workspaces


class _Block:
    """One fused Dense [-> BatchNorm] -> activation [-> dropout]."""

    def __init__(self, n_in, n_out, init, bias, bn, activation, keep_prob):
        self.n_in, self.n_out, self.init = n_in, n_out, init
        self.bias = bias and bn is None
        self.bn = bn                      # BatchNorm spec or None
        self.activation = activation      # kernel activation ("identity" for the output)
        self.keep_prob = keep_prob


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
    """

    def __init__(self, layers, *, input_dim=None, init="he", l2=0.0, dtype="float32",
                 backend="auto", seed=None):
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must be a Dense, BatchNorm, Activation or "
                                f"Dropout, got {layer!r}")
        self.init = check_choice("init", init, INITIALIZERS)
        self.l2 = check_real("l2", l2, 0.0)
        try:
            name = str(np.dtype(dtype))
        except TypeError:
            name = repr(dtype)
        self.dtype = np.dtype(check_choice("dtype", name, _config.DTYPES))
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (1 << 63))
        self.seed = check_int("seed", seed, 0)
        self._plan = self._compile(self.layers)
        self.backend = backend
        self._K = _kernels(_engine_backend(backend))
        self._E = getattr(self._K, "ENGINE", _HOST)   # where the engine's arrays live
        self.output = self._output
        self.step_ = 0          # updates done (dropout keys, per-iteration schedules)
        self.epoch_ = 0         # epochs completed (per-epoch schedules)
        self.optimizer = None
        self.schedule = None
        self.stop_training = False
        self._shuffle_rng = np.random.default_rng([self.seed, 1])
        self.input_dim = None
        if input_dim is not None:
            self._build(check_int("input_dim", input_dim, 1))

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
            if g[2] == "softmax":
                raise ValueError("softmax is only allowed as the last layer's activation")
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

    def _build(self, input_dim):
        """Allocate the flat buffers and views for input width ``input_dim``."""
        self.input_dim = input_dim
        self.blocks, n_in = [], input_dim
        for l, (dense, bn, act, keep) in enumerate(self._plan):
            last = l == len(self._plan) - 1
            self.blocks.append(_Block(n_in, dense.units, dense.init or self.init,
                                      dense.use_bias, bn, "identity" if last else
                                      (act or "identity"), keep))
            n_in = dense.units
        # layout of the flat parameter buffer: W1, b1, gamma1, beta1, W2, ...
        self._layout, size = [], 0
        for l, blk in enumerate(self.blocks, start=1):
            entries = [(f"W{l}", (blk.n_out, blk.n_in))]
            if blk.bias:
                entries.append((f"b{l}", (blk.n_out,)))
            if blk.bn is not None:
                entries += [(f"gamma{l}", (blk.n_out,)), (f"beta{l}", (blk.n_out,))]
            for name, shape in entries:
                self._layout.append((name, size, shape))
                size += int(np.prod(shape))
        self.n_params = size
        n_bn = sum(blk.n_out for blk in self.blocks if blk.bn is not None)
        # initialised on the host, then handed to the engine (no copy on the host engine)
        flat = np.zeros(size, self.dtype)
        running = np.zeros(2 * n_bn, self.dtype)   # running means, then variances
        self._initialize(self._views(flat), self._running_views(running))
        E = self._E
        self._flat = E.put(flat)
        self._flat_grad = E.zeros(size, self.dtype)
        self._p = self._views(self._flat)
        self._g = self._views(self._flat_grad)
        self._running = E.put(running)
        self._rm, self._rv = self._running_views(self._running)
        self._workspaces = {}

    def _views(self, flat):
        return {name: flat[o:o + int(np.prod(s))].reshape(s) for name, o, s in self._layout}

    def _running_views(self, running):
        """Per-layer views of the running means and variances: ({l: mean}, {l: var})."""
        n_bn = running.shape[0] // 2
        rm, rv, offset = {}, {}, 0
        for l, blk in enumerate(self.blocks, start=1):
            if blk.bn is not None:
                rm[l] = running[offset:offset + blk.n_out]
                rv[l] = running[n_bn + offset:n_bn + offset + blk.n_out]
                offset += blk.n_out
        return rm, rv

    def _initialize(self, p, running):
        rng = np.random.default_rng([self.seed, 0])
        for l, blk in enumerate(self.blocks, start=1):
            p[f"W{l}"][...] = initialize_weights(blk.init, blk.n_in, blk.n_out, rng,
                                                 np.float64)
            if blk.bn is not None:
                p[f"gamma{l}"][...] = 1
                running[1][l][...] = 1

    def _require_built(self, X=None):
        if self.input_dim is None:
            if X is None:
                raise RuntimeError("the model is not built yet: pass input_dim or call "
                                   "fit / train_step first")
            self._build(X.shape[1])

    # ------------------------------------------------------------------ parameters
    def get_params(self):
        """NumPy copies of the parameters: "W1" (n_out, n_in), "b1", "gamma1", "beta1", ..."""
        self._require_built()
        return {name: self._E.get(view) for name, view in self._p.items()}

    def set_params(self, params):
        """Set some or all parameters from a dict like ``get_params()``'s (cast to dtype)."""
        self._require_built()
        for name, value in params.items():
            if name not in self._p:
                raise KeyError(f"unknown parameter {name!r}; this model has {list(self._p)}")
            value = np.asarray(value)
            if value.shape != self._p[name].shape:
                raise ValueError(f"params[{name!r}] must have shape {self._p[name].shape}, "
                                 f"got {value.shape}")
            self._E.set(self._p[name], value)

    def get_batchnorm_stats(self):
        """Copies of the running statistics: "running_mean1", "running_var1", ..."""
        self._require_built()
        out = {}
        for l in self._rm:
            out[f"running_mean{l}"] = self._E.get(self._rm[l])
            out[f"running_var{l}"] = self._E.get(self._rv[l])
        return out

    def set_batchnorm_stats(self, stats):
        """Set running statistics from a dict like ``get_batchnorm_stats()``'s."""
        self._require_built()
        targets = {}
        for l in self._rm:
            targets[f"running_mean{l}"], targets[f"running_var{l}"] = self._rm[l], self._rv[l]
        for name, value in stats.items():
            if name not in targets:
                raise KeyError(f"unknown BatchNorm statistic {name!r}; this model has "
                               f"{list(targets)}")
            self._E.set(targets[name], value)

    def _host_state(self):
        """NumPy copies of the flat parameters and the running statistics (for io)."""
        return self._E.get(self._flat), self._E.get(self._running)

    def _set_host_state(self, flat, running):
        """Set the flat parameters and running statistics from host arrays (for io)."""
        self._E.set(self._flat, flat)
        self._E.set(self._running, running)

    def _snapshot(self):
        return self._E.clone(self._flat), self._E.clone(self._running)

    def _restore(self, state):
        self._E.copy_into(self._flat, state[0])
        self._E.copy_into(self._running, state[1])

    # ------------------------------------------------------------------ data checks
    def _inputs(self, X, name="X", copy=True):
        """X checked; a C-contiguous copy in the model's dtype unless ``copy`` is False,
        for callers that copy it into a workspace themselves (never the caller's array
        is written either way)."""
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n examples, n features), got shape {X.shape}")
        if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
            raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
        if len(X) == 0:
            raise ValueError(f"{name} must not be empty")
        self._require_built(X)
        if X.shape[1] != self.input_dim:
            raise ValueError(f"{name} must have {self.input_dim} features (columns), got "
                             f"shape {X.shape}")
        if copy:
            X = np.array(X, dtype=self.dtype, order="C", copy=True)
        if _config.CHECK_FINITE and not _all_finite(X):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(X))[0])
            raise ValueError(f"{name} contains NaN or inf (first at index {bad})")
        return X

    def _targets(self, y, n, name="y"):
        """y as an (n, k) target matrix of the model's dtype."""
        y = np.asarray(y)
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
        return Y

    # ------------------------------------------------------------------ engine
    def _workspace(self, m, training=True):
        key = (m, training)
        ws = self._workspaces.get(key)
        if ws is None:
            e = lambda *shape: self._E.empty(shape, self.dtype)  # noqa: E731
            ws = {"X": e(m, self.input_dim), "Y": e(m, self.blocks[-1].n_out),
                  "dout": e(m, self.blocks[-1].n_out), "blocks": []}
            for l, blk in enumerate(self.blocks):
                b = {"out": e(m, blk.n_out), "act": e(m, blk.n_out)}
                if blk.bn is not None:
                    b["Z"] = e(m, blk.n_out)
                    if training:
                        b["x_hat"], b["inv_std"] = e(m, blk.n_out), e(blk.n_out)
                        b["dZbn"] = e(m, blk.n_out)
                if training:
                    b["dZ"] = e(m, blk.n_out)
                    b["dX"] = e(m, blk.n_in) if l > 0 else None
                ws["blocks"].append(b)
            if len(self._workspaces) >= MAX_WORKSPACES:   # drop the oldest batch size
                self._workspaces.pop(next(iter(self._workspaces)))
            self._workspaces[key] = ws
        return ws

    @finite_checks_skipped()
    def _forward(self, ws, training, keep=True):
        """Forward pass on ws["X"]; returns the output pre-activations (m, k)."""
        K, A = self._K, ws["X"]
        for l, (blk, b) in enumerate(zip(self.blocks, ws["blocks"]), start=1):
            kp = blk.keep_prob if (training and keep) else 1.0
            key = dropout_key(self.seed, self.step_, l) if kp < 1.0 else 0
            W = self._p[f"W{l}"]
            if blk.bn is None:
                K.dense_forward(A, W, self._p.get(f"b{l}"), blk.activation, kp, key,
                                out=b["out"], act_out=b["act"])
            else:
                K.dense_forward(A, W, None, "identity", 1.0, 0, out=b["Z"], act_out=b["Z"])
                bn = blk.bn
                if training:
                    K.batchnorm_activation_forward(
                        b["Z"], self._p[f"gamma{l}"], self._p[f"beta{l}"], self._rm[l],
                        self._rv[l], bn.momentum, bn.eps, True, blk.activation, kp, key,
                        out=b["out"], act_out=b["act"], x_hat_out=b["x_hat"],
                        inv_std_out=b["inv_std"])
                else:
                    K.batchnorm_activation_forward(
                        b["Z"], self._p[f"gamma{l}"], self._p[f"beta{l}"], self._rm[l],
                        self._rv[l], bn.momentum, bn.eps, False, blk.activation, 1.0, 0,
                        out=b["out"], act_out=b["act"])
            A = b["out"]
        return A

    @finite_checks_skipped()
    def _loss(self, Z, Y, dout):
        K = self._K
        if self.output == "softmax":
            loss, _ = K.softmax_cross_entropy(Z, Y, dZ_out=dout)
        elif self.output == "sigmoid":
            loss, _ = K.sigmoid_cross_entropy(Z, Y, dZ_out=dout)
        else:
            loss, _ = K.mean_squared_error(Z, Y, dA_out=dout)
        return float(loss)

    def _l2_term(self, m):
        """(l2 / 2m) sum ||W||^2, computed without temporaries (BLAS dot on views)."""
        if not self.l2:
            return 0.0
        total = 0.0
        for l in range(1, len(self.blocks) + 1):
            w = self._p[f"W{l}"].reshape(-1)
            total += float(np.dot(w, w))
        return self.l2 / (2 * m) * total

    @finite_checks_skipped()
    def _backward(self, ws, keep=True):
        """Gradients of the loss into the flat gradient buffer (after _forward, _loss)."""
        K, d = self._K, ws["dout"]
        for l in range(len(self.blocks), 0, -1):
            blk, b = self.blocks[l - 1], ws["blocks"][l - 1]
            A_in = ws["X"] if l == 1 else ws["blocks"][l - 2]["out"]
            kp = blk.keep_prob if keep else 1.0
            key = dropout_key(self.seed, self.step_, l) if kp < 1.0 else 0
            W = self._p[f"W{l}"]
            if blk.bn is None:
                K.dense_backward(d, A_in, W, b["act"], blk.activation, kp, key, self.l2,
                                 blk.bias, l > 1, dX_out=b["dX"], dW_out=self._g[f"W{l}"],
                                 db_out=self._g.get(f"b{l}"), dZ_out=b["dZ"])
            else:
                K.batchnorm_activation_backward(
                    d, b["act"], b["x_hat"], b["inv_std"], self._p[f"gamma{l}"],
                    blk.activation, kp, key, dZ_out=b["dZbn"],
                    dgamma_out=self._g[f"gamma{l}"], dbeta_out=self._g[f"beta{l}"])
                K.dense_backward(b["dZbn"], A_in, W, b["Z"], "identity", 1.0, 0, self.l2,
                                 False, l > 1, dX_out=b["dX"], dW_out=self._g[f"W{l}"],
                                 db_out=None, dZ_out=b["dZ"])
            d = b["dX"]

    def _grads_on(self, ws, keep=True, optimizer=None):
        """Forward, loss (L2 included) and backward on the batch in ws; returns the loss
        as the engine keeps it (a float on the host engine; see ``ENGINE.item``)."""
        helper = self._compile_ahead(optimizer)
        Z = self._forward(ws, True, keep)
        loss = self._E.batch_loss(self, Z, ws)
        if helper is not None:
            helper.wait()   # the backward kernels are in the disk cache now
        self._backward(ws, keep)
        return loss

    def _compile_ahead(self, optimizer):
        """On the first training step, the kernel module's helper that compiles the
        backward pass and ``optimizer``'s update in another process while this one
        compiles the forward pass (fastdnn.cpu, empty kernel cache); else None."""
        if optimizer is None or getattr(self, "_ahead_tried", False):
            return None
        start = getattr(self._K, "compile_ahead", None)
        if start is None:
            return None
        self._ahead_tried = True
        return start(self, optimizer)

    def _check_loss(self, loss, where):
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"training diverged: the loss is {loss} at {where}; try a smaller learning "
                "rate, standardized inputs or a stronger L2 / BatchNorm")

    def _threads(self):
        """A context for a run of kernel calls: on fastdnn.cpu its matrix products and
        kernels then share Numba's threads (fastdnn.cpu._blas.owned_threads)."""
        return getattr(self._K, "owned_threads", contextlib.nullcontext)()

    def _update(self, optimizer):
        optimizer.step(self._flat, self._flat_grad, kernels=self._K)
        self.step_ += 1

    def _batch(self, X, Y):
        ws = self._workspace(X.shape[0])
        self._E.set(ws["X"], X)
        self._E.set(ws["Y"], Y)
        return ws

    # ------------------------------------------------------------------ public steps
    def loss_and_grads(self, X, y):
        """Loss (L2 included) and gradients for one batch in training mode.

        Nothing is updated: BatchNorm's running statistics are restored and the step
        counter is not advanced (dropout uses the current step's masks).

        Returns
        -------
        loss : float
        grads : dict of copies "dW1", "db1", "dgamma1", "dbeta1", ...
        """
        X = self._inputs(X, copy=False)   # _batch copies it into the workspace
        Y = self._targets(y, len(X))
        E = self._E
        running = E.clone(self._running)
        try:
            with self._threads():
                loss = E.item(self._grads_on(self._batch(X, Y)))
        finally:
            E.copy_into(self._running, running)
        return loss, {"d" + name: E.get(g) for name, g in self._g.items()}

    def train_step(self, X, y, optimizer):
        """One update on the batch (X, y) with ``optimizer``; returns the loss before it."""
        X = self._inputs(X, copy=False)   # _batch copies it into the workspace
        Y = self._targets(y, len(X))
        optimizer = self._optimizer(optimizer)
        with self._threads():
            loss = self._E.item(self._grads_on(self._batch(X, Y), optimizer=optimizer))
            self._check_loss(loss, f"step {self.step_}")
            self._update(optimizer)
        return loss

    def _optimizer(self, optimizer):
        if optimizer is None:
            if self.optimizer is None:
                self.optimizer = Adam()
            return self.optimizer
        optimizer = get_optimizer(optimizer)
        self.optimizer = optimizer
        return optimizer

    # ------------------------------------------------------------------ training
    def fit(self, X, y, *, optimizer=None, epochs=10, batch_size=64, shuffle=True,
            schedule=None, validation_data=None, early_stopping=None, callbacks=None,
            verbose=1):
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
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (X_dev, y_dev)")
            X_dev = self._inputs(validation_data[0], "validation_data[0]")
            Y_dev = self._targets(validation_data[1], len(X_dev), "validation_data[1]")
        optimizer = self._optimizer(optimizer)
        if schedule is not None:
            if not isinstance(schedule, Schedule):
                raise TypeError(f"schedule must be a fastdnn.schedules.Schedule, got "
                                f"{schedule!r}")
            self.schedule = schedule
        schedule = self.schedule
        stopper = as_early_stopping(early_stopping)
        if stopper is not None and stopper.monitor.startswith("val_") and \
                validation_data is None:
            raise ValueError("early_stopping monitors the dev set: pass validation_data")
        callbacks = list(callbacks or [])
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be Callback objects, got {cb!r}")
        if stopper is not None:
            callbacks.append(stopper)

        n = len(X)
        batch_size = min(batch_size, n)
        E = self._E
        feeder = E.feeder(X, Y)   # the device engine moves the data once, when it fits
        classify = self.output in ("softmax", "sigmoid")
        history = History()
        self.stop_training = False
        progress = Progress(epochs, verbose)
        for cb in callbacks:
            cb.on_train_begin(self)
        try:
            for epoch in range(epochs):
                start = time.perf_counter()
                if schedule is not None and schedule.per == "epoch":
                    optimizer.lr = schedule(self.epoch_, optimizer.initial_lr)
                feeder.epoch(self._shuffle_rng.permutation(n) if shuffle
                             else np.arange(n))
                totals = E.totals()   # loss and right predictions, read once per epoch
                with self._threads():
                    for s in range(0, n, batch_size):
                        stop = min(s + batch_size, n)
                        ws = self._workspace(stop - s)
                        feeder.fill(ws, s, stop)
                        if schedule is not None and schedule.per == "iteration":
                            optimizer.lr = schedule(self.step_, optimizer.initial_lr)
                        loss = self._grads_on(ws, optimizer=optimizer)
                        if E.per_step_checks:
                            self._check_loss(loss,
                                             f"epoch {self.epoch_ + 1}, step {self.step_}")
                        if classify:
                            totals.count_correct(self.output, ws["blocks"][-1]["out"],
                                                 ws["Y"])
                        totals.add(loss, stop - s)
                        self._update(optimizer)
                self.epoch_ += 1
                logs = {"loss": totals.loss_sum() / n}
                self._check_loss(logs["loss"], f"epoch {self.epoch_}")
                if classify:
                    logs["accuracy"] = totals.correct() / (n * (1 if self.output == "softmax"
                                                                else Y.shape[1]))
                if validation_data is not None:
                    logs.update({"val_" + k: v for k, v in
                                 self._evaluate(X_dev, Y_dev).items()})
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
        if stopper is not None:
            history.best_epoch = stopper.best_epoch
        self.history_ = history
        return history

    # ------------------------------------------------------------------ inference
    def _logits(self, X):
        """Output pre-activations in inference mode, in chunks."""
        out = np.empty((len(X), self.blocks[-1].n_out), self.dtype)
        with self._threads():
            for s in range(0, len(X), PREDICT_CHUNK):
                chunk = X[s:s + PREDICT_CHUNK]
                ws = self._workspace(len(chunk), training=False)
                self._E.set(ws["X"], chunk)
                out[s:s + len(chunk)] = self._E.get(self._forward(ws, training=False))
        return out

    def decision_function(self, X):
        """Output pre-activations (logits) (n, k), inference mode."""
        return self._logits(self._inputs(X, copy=False))

    def predict_proba(self, X):
        """Class probabilities (softmax or sigmoid outputs), (n, k)."""
        if self.output == "identity":
            raise ValueError("predict_proba needs a softmax or sigmoid output; use predict")
        Z = self._logits(self._inputs(X, copy=False))
        K = self._K
        return K.softmax(Z) if self.output == "softmax" else K.sigmoid(Z)

    def predict(self, X):
        """Class indices (softmax), 0/1 labels (sigmoid) or values (identity).

        A single sigmoid or identity output gives shape (n,).
        """
        Z = self._logits(self._inputs(X, copy=False))
        if self.output == "softmax":
            return Z.argmax(axis=1)
        out = (Z > 0).astype(np.int64) if self.output == "sigmoid" else Z
        return out[:, 0] if out.shape[1] == 1 else out

    def evaluate(self, X, y):
        """Loss (without the L2 term) and accuracy (classification) in inference mode."""
        X = self._inputs(X)
        return self._evaluate(X, self._targets(y, len(X)))

    def _evaluate(self, X, Y):
        Z = self._logits(X)
        loss = self._loss(Z, Y, np.empty_like(Z))
        out = {"loss": loss}
        if self.output != "identity":
            out["accuracy"] = _correct(self.output, Z, Y) / (
                len(X) * (1 if self.output == "softmax" else Y.shape[1]))
        return out

    def score(self, X, y):
        """Accuracy (classification) or the negated loss (regression)."""
        r = self.evaluate(X, y)
        return r.get("accuracy", -r["loss"])

    # ------------------------------------------------------------------ config
    def get_config(self):
        return {"class": "Sequential", "layers": [l.get_config() for l in self.layers],
                "input_dim": self.input_dim, "init": self.init, "l2": self.l2,
                "dtype": str(self.dtype), "backend": self.backend, "seed": self.seed}

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
            other._set_host_state(*self._host_state())
        other.step_, other.epoch_ = self.step_, self.epoch_
        other._shuffle_rng.bit_generator.state = copy.deepcopy(
            self._shuffle_rng.bit_generator.state)
        return other

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
    output : "softmax", "sigmoid" or "identity"
        Output activation, which also sets the loss (cross-entropy or squared error).
    init : str
        Weight initializer: he, xavier, glorot, random or zeros.
    batchnorm : bool
        BatchNorm after every hidden dense layer (those layers then have no bias).
    keep_prob : float or sequence of float
        Dropout keep probability, one for all hidden layers or one per hidden layer.
    l2 : float
        L2 regularisation strength lambda.
    dtype, backend, seed : see Sequential.
    """

    def __init__(self, layer_sizes, *, activation="relu", output="softmax", init="he",
                 batchnorm=False, keep_prob=1.0, l2=0.0, dtype="float32", backend="auto",
                 seed=None):
        sizes = list(layer_sizes)
        if len(sizes) < 2:
            raise ValueError(f"layer_sizes must list at least the input and output widths, "
                             f"got {layer_sizes!r}")
        sizes = [check_int(f"layer_sizes[{i}]", s, 1) for i, s in enumerate(sizes)]
        check_choice("activation", activation, HIDDEN_ACTIVATIONS)
        check_choice("output", output, OUTPUT_ACTIVATIONS)
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
            if batchnorm:
                layers.append(BatchNorm())
            layers.append(Activation(activation))
            if keep < 1:
                layers.append(Dropout(keep))
        layers.append(Dense(sizes[-1]))
        if output != "identity":
            layers.append(Activation(output))
        self._kwargs = {"layer_sizes": sizes, "activation": activation, "output": output,
                        "init": init, "batchnorm": bool(batchnorm), "keep_prob": keeps,
                        "l2": float(l2)}
        super().__init__(layers, input_dim=sizes[0], init=init, l2=l2, dtype=dtype,
                         backend=backend, seed=seed)

    def get_config(self):
        return {"class": "MLP", **self._kwargs, "dtype": str(self.dtype),
                "backend": self.backend, "seed": self.seed}

    def __repr__(self):
        return f"MLP({self._kwargs['layer_sizes']}, output={self.output!r})"


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


def _correct(output, Z, Y):
    """Number of right predictions (softmax: rows; sigmoid: elements)."""
    if output == "softmax":
        return int(np.count_nonzero(Z.argmax(axis=1) == Y.argmax(axis=1)))
    return int(np.count_nonzero((Z > 0) == (Y > 0.5)))


def _engine_backend(backend):
    """The concrete backend the model runs on.

    On "numpy" and "cpu" the engine's arrays are NumPy arrays (``_HostArrays``). On
    "cuda" they stay on the GPU (fastdnn.cuda.engine): parameters, gradients,
    optimizer state, BatchNorm statistics and workspaces are device arrays; fit moves
    the training set to the device once when it fits (else each batch once) and reads
    the loss once per epoch; train_step moves its batch in and its loss out.
    """
    return _resolve(backend)


class _HostArrays:
    """The engine's array operations on NumPy arrays (numpy and cpu backends).

    The same methods as fastdnn.cuda.engine.DeviceArrays: a kernel module that keeps
    its arrays elsewhere exports such an object as ``ENGINE``.
    """

    device = False
    per_step_checks = True    # a NaN loss stops training at the step that made it

    def empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype)

    def put(self, host):
        return host

    def get(self, a):
        return a.copy()

    def set(self, dst, value):
        dst[...] = value

    def clone(self, a):
        return a.copy()

    def copy_into(self, dst, src):
        dst[...] = src

    def item(self, loss):
        return loss

    def batch_loss(self, model, Z, ws):
        return model._loss(Z, ws["Y"], ws["dout"]) + model._l2_term(ws["X"].shape[0])

    def feeder(self, X, Y):
        return _HostFeeder(X, Y)

    def totals(self):
        return _HostTotals()


class _HostFeeder:
    def __init__(self, X, Y):
        self.X, self.Y, self.order = X, Y, None

    def epoch(self, order):
        self.order = order

    def fill(self, ws, start, stop):
        idx = self.order[start:stop]
        np.take(self.X, idx, axis=0, out=ws["X"])
        np.take(self.Y, idx, axis=0, out=ws["Y"])


class _HostTotals:
    def __init__(self):
        self.total, self.right = 0.0, 0

    def add(self, loss, m):
        self.total += loss * m

    def count_correct(self, output, Z, Y):
        self.right += _correct(output, Z, Y)

    def loss_sum(self):
        return self.total

    def correct(self):
        return self.right


_HOST = _HostArrays()


def _all_finite(X):
    """True when X holds no NaN or inf: one read pass and no temporary array (NaN and
    inf carry into the sum); only a sum that overflows on finite values takes the full
    element-wise test."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(X.sum()):
            return True
    return bool(np.isfinite(X).all())
