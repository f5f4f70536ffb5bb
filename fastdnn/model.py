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
from __future__ import annotations

import copy
import functools
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from . import backend as _backends
from . import config as _config
from ._validation import (check_bool, check_choice, check_dtype, check_finite, check_int,
                          check_keep_prob, check_real, warn_user)
from .callbacks import (Callback, EarlyStopping, History, Progress, as_early_stopping,
                        callback_list)
from .augment import as_augment
from .engine.layout import Block, Parameters, block_size
from .engine.sparse import CsrRows, is_sparse
from .layers import (HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS, Activation, BatchNorm, Dense,
                     Dropout, Layer, layer_from_config)
from .optim import Adam, get_optimizer
from .reference.init import INITIALIZERS, initialize_weights
from .reference.losses import check_sample_weight, sigmoid as _sigmoid, softmax as _softmax
from .schedules import Schedule

if TYPE_CHECKING:
    import onnx
    from scipy.sparse import sparray, spmatrix

    from .augment import Augment
    from .callbacks import EarlyStoppingSpec
    from .optim import Optimizer

#: What the models take as X: real numbers (n, n_x), or a SciPy sparse matrix, which is
#: densified a batch at a time (fastdnn.engine.sparse).
Inputs = Union[ArrayLike, "spmatrix", "sparray"]
#: Named arrays: "W1", "b1", "gamma1", ... (or "dW1", ..., "running_mean1", ...).
Arrays = dict[str, NDArray[np.floating]]
#: A model's own type, for methods that return it (set_params on an MLP gives an MLP).
ModelT = TypeVar("ModelT", bound="Sequential")

_WEIGHTS: Any = object()   # get_params() called without deep: the old meaning, the weights


def _one_trainer_at_a_time(method):
    """Run ``method`` (fit, train_step) holding the model's training lock, taken without
    waiting: a second call while one runs raises RuntimeError, since two interleaved
    trainings would mix their step counters, optimizer state and weights. Predictions
    take no lock (they may run in many threads at once)."""
    @functools.wraps(method)
    def holding_the_training_lock(self, *args, **kwargs):
        if not self._training_lock.acquire(blocking=False):
            running, owner = self._training_by
            where = ("in this thread (a callback cannot call it on the model it is "
                     "training)" if owner == threading.get_ident() else
                     "in another thread; a model trains in one thread at a time: wait for "
                     "it to return, or train a copy (copy.deepcopy(model))")
            raise RuntimeError(f"{method.__name__} cannot start: {running} is already "
                               f"running on this model {where}")
        try:
            self._training_by = (method.__name__, threading.get_ident())
            return method(self, *args, **kwargs)
        finally:
            self._training_lock.release()
    return holding_the_training_lock


class NotFittedError(ValueError, AttributeError):
    """A model was asked to predict before it was trained or given weights.

    It has the same bases as scikit-learn's NotFittedError.
    """


class Sequential:
    """A stack of Dense, BatchNorm, Activation and Dropout layers.

    Each Dense may be followed, in this order, by BatchNorm, Activation and Dropout.
    The last Dense's Activation (softmax, sigmoid or none = identity) sets the output and
    loss: softmax cross-entropy, sigmoid (binary) cross-entropy, or mean squared error.

    Parameters
    ----------
    layers : sequence of Layer
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

    def __init__(self, layers: Sequence[Layer], *, input_dim: int | None = None,
                 init: str = "he", l2: float = 0.0, dtype: DTypeLike = "float32",
                 backend: str = "auto", seed: int | None = None,
                 batch_invariant: bool = True) -> None:
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
        # held by fit and train_step; kept when set_params re-initialises the model, so
        # that a fit running in another thread still refuses a second one
        self._training_lock = getattr(self, "_training_lock", None) or threading.Lock()
        self._training_by = getattr(self, "_training_by", ("", 0))
        self.history = None     # the History of the last (or running) fit, as in Keras
        self._fit_first_epoch = None   # epoch_ when the running fit began
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

    def build(self, input_dim: int) -> None:
        """Make the parameters for inputs of width ``input_dim``.

        Fit and the first data seen do it; a built model keeps its width.

        Parameters
        ----------
        input_dim : int >= 1
            n_x, the width of X.
        """
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
    def get_weights(self, *, statistics: bool = True) -> Arrays:
        """NumPy copies of what the model predicts with: weights and running statistics.

        "W1" (n_out, n_in), "b1", "gamma1", "beta1", "running_mean1", "running_var1",
        "W2", ... block by block. As Keras's ``get_weights`` includes BatchNorm's moving
        mean and variance and PyTorch's ``state_dict`` its running buffers, giving them
        to ``set_weights`` of a model of the same architecture gives the same
        predictions.

        Parameters
        ----------
        statistics : bool, default True
            Include BatchNorm's running statistics (named as ``get_batchnorm_stats``
            names them); False gives the trainable parameters only.

        Returns
        -------
        dict of str to ndarray
            In the model's dtype; a dense layer without bias (followed by BatchNorm,
            or ``Dense(use_bias=False)``) has no "b" entry, a model without BatchNorm
            no running statistics.
        """
        statistics = check_bool("statistics", statistics)
        self._require_built()
        p, out = self.parameters, {}
        for name, view in p.p.items():
            out[name] = p.arrays.get(view)
            if statistics and name.startswith("beta"):   # after gamma, beta: Keras's order
                layer = int(name[len("beta"):])
                out[f"running_mean{layer}"] = p.arrays.get(p.rm[layer])
                out[f"running_var{layer}"] = p.arrays.get(p.rv[layer])
        return out

    def set_weights(self, weights: Mapping[str, ArrayLike]) -> None:
        """Set some or all weights from a dict like ``get_weights()``'s (cast to dtype).

        BatchNorm's running statistics included ("running_mean1", ...); the names left
        out keep their values. All are checked before any is set.

        Parameters
        ----------
        weights : mapping of str to array-like
            Names of ``get_weights()`` ("W1", "b1", ..., "running_var1", ...) to arrays
            of the same shapes, finite (running variances >= 0).

        Raises
        ------
        TypeError
            For weights that are not a mapping (Keras's list of arrays).
        KeyError
            For a name the model does not have.
        ValueError
            For a wrong shape, a value that is not finite or a negative variance.
        """
        self._require_built()
        if not isinstance(weights, Mapping):   # Keras's list of arrays has no names
            raise TypeError(f"weights must be a dict of name -> array, as get_weights() "
                            f"gives, got {type(weights).__name__}")
        views, statistics = self.parameters.p, self._statistics_views()
        for name, value in weights.items():
            if name in statistics:
                self._check_statistic("weights", name, value, statistics[name])
                continue
            if name not in views:
                raise KeyError(f"unknown weight {name!r}; this model has "
                               f"{[*views, *statistics]}")
            value = _real_array(f"weights[{name!r}]", value)
            if value.shape != views[name].shape:
                raise ValueError(f"weights[{name!r}] must have shape {views[name].shape}, "
                                 f"got {value.shape}")
            check_finite(f"weights[{name!r}]", value)
        for name, value in weights.items():
            target = views[name] if name in views else statistics[name]
            self.parameters.arrays.set(target, np.asarray(value))
        self._weights_given = True
        if statistics and set(views) <= set(weights) and not set(statistics) & set(weights):
            # a whole model's weights without its statistics: most likely a dict from
            # get_weights() before it included them, or get_weights(statistics=False)
            warn_user("set_weights set every weight of this BatchNorm model but none of "
                      "its running statistics, which keep their values, so predictions "
                      "mix the new weights with the old statistics: pass the dict "
                      "get_weights() gives (with running_mean1, running_var1, ...), or "
                      "call set_batchnorm_stats() too")

    def get_params(self, deep: bool = _WEIGHTS) -> dict[str, Any]:
        """The constructor's arguments, as scikit-learn means ``get_params(deep=...)``.

        So ``sklearn.base.clone`` works. Called without ``deep`` it still returns the
        weights, as before, with a DeprecationWarning: use ``get_weights()``.

        Parameters
        ----------
        deep : bool
            Ignored (a model holds no estimators); give it, True or False, to get the
            arguments.

        Returns
        -------
        dict of str to object
            The constructor's arguments as given; without ``deep``, the weights.
        """
        if deep is _WEIGHTS:
            warnings.warn("MLP.get_params() returning the weights is deprecated; use "
                          "get_weights() (get_params(deep=...) gives the constructor's "
                          "arguments, as in scikit-learn)", DeprecationWarning, stacklevel=2)
            return self.get_weights()
        return dict(self._init_params)

    def set_params(self: ModelT, weights: Mapping[str, ArrayLike] | None = None,
                   **params: Any) -> ModelT:
        """Change constructor arguments, as scikit-learn's ``set_params(**params)``.

        The model is made anew with them, untrained. Given a dict of weights instead,
        sets them, as before, with a DeprecationWarning: use ``set_weights()``.

        Parameters
        ----------
        weights : mapping of str to array-like, optional
            Deprecated: weights for ``set_weights``.
        **params
            Constructor arguments by name.

        Returns
        -------
        Sequential
            This model.

        Raises
        ------
        ValueError
            For a name the constructor does not take.
        """
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

    def get_batchnorm_stats(self) -> Arrays:
        """Copies of the running statistics: "running_mean1", "running_var1", ...

        ``get_weights()`` includes them too.

        Returns
        -------
        dict of str to ndarray
            (n_out,) arrays for each dense layer followed by BatchNorm; empty without
            BatchNorm.
        """
        self._require_built()
        p, out = self.parameters, {}
        for l in p.rm:
            out[f"running_mean{l}"] = p.arrays.get(p.rm[l])
            out[f"running_var{l}"] = p.arrays.get(p.rv[l])
        return out

    def set_batchnorm_stats(self, stats: Mapping[str, ArrayLike]) -> None:
        """Set running statistics from a dict like ``get_batchnorm_stats()``'s.

        Parameters
        ----------
        stats : mapping of str to array-like
            Names of ``get_batchnorm_stats()`` to (n_out,) arrays, finite (variances
            >= 0); all are checked before any is set.

        Raises
        ------
        KeyError
            For a name the model does not have.
        ValueError
            For a wrong shape, a value that is not finite or a negative variance.
        """
        self._require_built()
        targets = self._statistics_views()
        for name, value in stats.items():
            if name not in targets:
                raise KeyError(f"unknown BatchNorm statistic {name!r}; this model has "
                               f"{list(targets)}")
            self._check_statistic("stats", name, value, targets[name])
        for name, value in stats.items():
            self.parameters.arrays.set(targets[name], np.asarray(value))

    def _statistics_views(self):
        """{"running_mean1": view, "running_var1": view, ...} of the BatchNorm layers."""
        p, views = self.parameters, {}
        for l in p.rm:
            views[f"running_mean{l}"], views[f"running_var{l}"] = p.rm[l], p.rv[l]
        return views

    @staticmethod
    def _check_statistic(argument, name, value, target):
        """Raise unless ``value`` fits running statistic ``name`` (its view ``target``):
        real, finite, of its shape, and >= 0 for a variance."""
        where = f"{argument}[{name!r}]"
        value = check_finite(where, _real_array(where, value))
        if value.shape != target.shape:
            raise ValueError(f"{where} must have shape {target.shape}, got {value.shape}")
        if name.startswith("running_var") and (value < 0).any():
            raise ValueError(f"{where} is a variance and must be >= 0, got a minimum of "
                             f"{value.min()}")

    def training_state(self) -> dict[str, Any]:
        """The counters and shuffling RNG position that resuming training needs.

        Returns
        -------
        dict
            "step" (updates done), "epoch" (epochs completed) and "rng" (the shuffling
            generator's ``bit_generator.state``), for ``set_training_state``.
        """
        return {"step": self.step_, "epoch": self.epoch_,
                "rng": self._shuffle_rng.bit_generator.state}

    def set_training_state(self, state: Mapping[str, Any]) -> None:
        """Restore what ``training_state()`` returned, to resume training where it was.

        Parameters
        ----------
        state : mapping
            "step", "epoch" and "rng", as ``training_state()`` gives them.
        """
        self.step_, self.epoch_ = int(state["step"]), int(state["epoch"])
        self._shuffle_rng.bit_generator.state = state["rng"]

    # ------------------------------------------------------------------ data checks
    def _inputs(self, X, name="X"):
        """X checked, as a C-contiguous array of the model's dtype (a copy only when X is
        not one already; the engines never write it); a SciPy sparse X as CsrRows, which
        the engines densify a batch at a time (fastdnn.engine.sparse)."""
        if is_sparse(X):
            return self._sparse_inputs(X, name)
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

    def _sparse_inputs(self, X, name):
        """A sparse X checked, as fastdnn.engine.sparse.CsrRows of the model's dtype."""
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"{name} must be 2-D (n examples, n features) and not empty, "
                             f"got shape {X.shape}")
        if X.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers (bool, int or float), got "
                            f"dtype {X.dtype}")
        self._require_built(X)
        if X.shape[1] != self.input_dim:
            raise ValueError(f"{name} must have {self.input_dim} features (columns), got "
                             f"shape {X.shape}")
        X = CsrRows.from_sparse(X, self.dtype)
        if _config.CHECK_FINITE and not _all_finite(X.values):
            raise ValueError(f"{name} contains NaN or inf (in its stored values)")
        return X

    def _targets(self, y, n, name="y"):
        """y as an (n, k) target matrix of the model's dtype."""
        y = _real_array(name, y, "; encode the labels as class indices 0 .. k-1 (e.g. with "
                        "sklearn.preprocessing.LabelEncoder), or use "
                        "fastdnn.sklearn.MLPClassifier, which takes any labels"
                        if self.output in ("softmax", "sigmoid") else "")
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
        if self.output in ("softmax", "sigmoid") and (Y.min() < 0 or Y.max() > 1):
            what = "one-hot rows" if self.output == "softmax" else "labels 0/1"
            raise ValueError(f"{name} must hold {what} (probabilities in [0, 1]) for a "
                             f"{self.output} output, got values in [{Y.min()}, {Y.max()}]")
        if self.output == "softmax":
            off = np.abs(Y.sum(axis=1) - 1)
            if off.max() > 1e-3:
                bad = int(np.argmax(off))
                raise ValueError(f"{name}'s one-hot rows must sum to 1, row {bad} sums to "
                                 f"{Y[bad].sum()}")
        return Y

    # ------------------------------------------------------------------ public steps
    def loss_and_grads(self, X: Inputs, y: ArrayLike,
                       sample_weight: ArrayLike | None = None) -> tuple[float, Arrays]:
        """Loss (L2 term included) and gradients for one batch in training mode.

        Nothing is updated: BatchNorm's running statistics stay as they are and the step
        counter is not advanced (dropout uses the current step's masks).

        Parameters
        ----------
        X : (m, n_x) array or SciPy sparse matrix
            The batch.
        y : (m,) class indices, or (m, k) one-hot / targets
        sample_weight : (m,) weights >= 0, optional
            As in ``fit``.

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

    @_one_trainer_at_a_time
    def train_step(self, X: Inputs, y: ArrayLike, optimizer: Optimizer | str | None,
                   sample_weight: ArrayLike | None = None, *,
                   augment: Augment | None = None) -> float:
        """One update on the batch (X, y) with ``optimizer``.

        Parameters
        ----------
        X : (m, n_x) array or SciPy sparse matrix
            The batch.
        y : (m,) class indices, or (m, k) one-hot / targets
        optimizer : Optimizer, name ("adam", "sgd", ...) or None
            None keeps the model's optimizer, else Adam(); it becomes the model's.
        sample_weight : (m,) weights >= 0, optional
            How much each row counts, as in ``fit``.
        augment : fastdnn.Augment, optional
            Augment the rows first, as ``fit`` does with the batch of this step: row i
            gets the draws of position i of step ``step_``. X itself is not changed.

        Returns
        -------
        float
            The loss (L2 term included) before the update.

        Raises
        ------
        FloatingPointError
            When the loss is not finite (training diverged).
        RuntimeError
            When fit or train_step is already running on this model (in another
            thread, or this call comes from one of its callbacks).
        """
        X = self._inputs(X)
        Y = self._targets(y, len(X))
        weights = self._sample_weights(sample_weight, len(X))
        augment = as_augment(augment, X)
        optimizer = self._optimizer(optimizer)
        lr = self._step_lr(optimizer)(0)
        loss = self._engine.step(X, Y, optimizer, lr, self.step_, self.l2, weights=weights,
                                 augment=augment)
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

    def _advance(self, steps, running=None):
        """Count ``steps`` more training steps (``_epoch``'s default ``on_run``; the
        running logs are not shown)."""
        self.step_ += steps

    # ------------------------------------------------------------------ training
    @_one_trainer_at_a_time
    def fit(self, X: Inputs, y: ArrayLike, *, optimizer: Optimizer | str | None = None,
            epochs: int = 10, batch_size: int = 64, shuffle: bool = True,
            schedule: Schedule | None = None,
            validation_data: tuple[Inputs, ArrayLike] | None = None,
            validation_split: float = 0.0, early_stopping: EarlyStoppingSpec = None,
            callbacks: Iterable[Callback] | Callback | None = None,
            verbose: int | str = "auto", sample_weight: ArrayLike | None = None,
            class_weight: dict[int, float] | None = None,
            augment: Augment | None = None) -> History:
        """Train with mini-batches: each epoch shuffles, then partitions (last batch smaller).

        Parameters
        ----------
        X : (n, n_x) array or SciPy sparse matrix
            A sparse X is densified a batch at a time (the same bits as X.toarray()).
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
        validation_split : float in [0, 1)
            Keep this fraction of the rows, the last ones before any shuffling (as Keras
            does), as the dev set instead of training on them. Not with validation_data.
        early_stopping : None, True, int patience, dict or EarlyStopping
            Monitors val_loss by default; the best weights are restored at the end. An
            EarlyStopping in ``callbacks`` works the same.
        callbacks : list of Callback, or one Callback
            fastdnn.callbacks' or your own, with Keras's hooks (fastdnn.Callback).
        verbose : 0, 1, 2, True, False or "auto"
            0 (False): silent. 1 (True, "auto"): a bar advancing with the batches on a
            terminal or in a notebook, when tqdm is installed, and one line per epoch
            (the only output elsewhere). 2: one line per epoch. See
            fastdnn.callbacks.Progress.
        sample_weight : (n,) weights >= 0, optional
            How much each example counts: a batch's loss is sum_i w_i loss_i / sum_i w_i
            (scikit-learn's weighting; the L2 term is divided by sum_i w_i in place of
            m). None: every example weighs 1. The dev loss is not weighted.
        class_weight : dict {class: weight}, optional
            Weighs each example by its class's weight (a class left out weighs 1), times
            its sample_weight. Classes are the softmax's indices, or 0 and 1 for one
            sigmoid output.
        augment : fastdnn.Augment, optional
            Flip, shift and add noise to the rows of every training batch, as images of
            ``augment.image_shape``, with draws from the seed and the step (a fit
            repeats and resumes bit for bit). Dev data and predictions are untouched.

        Returns
        -------
        History
            Per epoch: loss, accuracy (classification), val_loss, val_accuracy, lr,
            epoch_time (seconds), and what callbacks add. ``best_epoch`` (with early
            stopping) counts from 1, as the progress lines do. Also ``model.history``
            (as in Keras), which holds the epochs done so far from the start of
            training: after a FloatingPointError (training diverged), those before it.

        Raises
        ------
        FloatingPointError
            When the loss or the weights stop being finite (training diverged); the
            model is back to its weights before the epoch.
        RuntimeError
            When fit or train_step is already running on this model (in another
            thread, or this call comes from one of its callbacks).
        """
        epochs = check_int("epochs", epochs, 0)
        callbacks = _callback_sequence(callbacks)
        batch_size = check_int("batch_size", batch_size, 1)
        verbose = _verbosity(verbose)
        split = check_real("validation_split", validation_split, 0.0, 1.0, high_open=True)
        X = self._inputs(X)
        Y = self._targets(y, len(X))
        weights = self._sample_weights(sample_weight, len(X))
        self._augment = as_augment(augment, X)
        dev = None
        if validation_data is not None:
            if split:
                raise ValueError("pass validation_data or validation_split, not both")
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (X_dev, y_dev)")
            X_dev = self._inputs(validation_data[0], "validation_data[0]")
            dev = X_dev, self._targets(validation_data[1], len(X_dev), "validation_data[1]")
        elif split:
            n_train = int(len(X) * (1 - split))   # Keras's cut
            if n_train < 1 or n_train == len(X):
                raise ValueError(f"validation_split={split:g} of {len(X)} rows leaves "
                                 f"{n_train} to train on and {len(X) - n_train} for the dev "
                                 "set; both need at least one")
            dev = X[n_train:], Y[n_train:]
            X, Y, weights = X[:n_train], Y[:n_train], weights[:n_train]
        if class_weight is not None:
            weights = self._class_weights(class_weight, Y, weights)
        if len(weights) and (split or class_weight is not None):   # still not all zero
            check_sample_weight(weights, len(X), "the training rows' sample_weight "
                                "times class_weight")
        optimizer = self._optimizer(optimizer)
        if schedule is not None:
            if not isinstance(schedule, Schedule):
                raise TypeError(f"schedule must be a fastdnn.schedules.Schedule, got "
                                f"{schedule!r}")
            self.schedule = schedule
        stopper = as_early_stopping(early_stopping)
        callbacks = callbacks + ([stopper] if stopper is not None else [])
        stoppers = [cb for cb in callbacks if isinstance(cb, EarlyStopping)]
        if dev is None and any(s.monitor.startswith("val_") for s in stoppers):
            raise ValueError("early_stopping monitors the dev set: pass validation_data "
                             "or validation_split")
        batch_size = min(batch_size, len(X))
        params = {"epochs": epochs, "steps": -(-len(X) // batch_size), "verbose": verbose}
        self.history = history = History()   # filled as training goes, kept if it diverges
        history.params = params
        self._fit_first_epoch = self.epoch_   # errors count this fit's epochs from 1
        progress = Progress(epochs, verbose, steps=params["steps"])
        callbacks = callback_list(callbacks, self, params, progress)
        self._train((X, Y, weights), optimizer, epochs, batch_size, shuffle, dev, callbacks,
                    progress, history)
        for s in stoppers:
            history.best_epoch = s.best_epoch
            if not getattr(s, "verbose", 0):   # a verbose one said so itself, as Keras's
                progress.note(s.report())
        self.history_ = history
        return history

    def _class_weights(self, class_weight, Y, weights):
        """Row weights from class_weight {class: weight} (a class left out weighs 1)
        times ``weights`` (empty: all 1), in the model's dtype."""
        if not isinstance(class_weight, dict):
            raise TypeError(f"class_weight must be a dict {{class: weight}}, got "
                            f"{class_weight!r}")
        if self.output == "softmax":
            n_classes, labels = Y.shape[1], Y.argmax(axis=1)
        elif self.output == "sigmoid" and Y.shape[1] == 1:
            n_classes, labels = 2, (Y[:, 0] >= 0.5).astype(np.int64)
        else:
            raise ValueError(f"class_weight needs a softmax output or one sigmoid output, "
                             f"this model has {Y.shape[1]} {self.output} output(s); use "
                             "sample_weight")
        table = np.ones(n_classes)
        for c, w in class_weight.items():
            c = check_int("a class_weight key", c, 0, n_classes - 1)
            table[c] = check_real(f"class_weight[{c}]", w, 0.0)
        rows = table[labels]
        return (rows if len(weights) == 0 else rows * weights).astype(self.dtype)

    def _sample_weights(self, sample_weight, n):
        """sample_weight checked, in the model's dtype; an empty array for None."""
        if sample_weight is None:
            return np.empty(0, self.dtype)
        return check_sample_weight(sample_weight, n).astype(self.dtype)

    def _train(self, data, optimizer, epochs, batch_size, shuffle, dev, callbacks,
               progress, history):
        """The epoch loop of ``fit`` over data = (X, Y, row weights or empty), each
        epoch's logs appended to ``history``."""
        self.stop_training = False
        for cb in callbacks:
            cb.on_train_begin({})
        saved, logs = None, {}
        try:
            for epoch in range(epochs):
                for cb in callbacks:
                    cb.on_epoch_begin(epoch, {})
                progress.epoch_begin(epoch)
                start = time.perf_counter()
                saved = self._save_finite_state(optimizer, saved)
                for cb in callbacks:   # the first engine run's (the others': _run_hooks)
                    cb.on_train_batch_begin(0, {})
                try:
                    logs = self._epoch(data, optimizer, batch_size, shuffle,
                                       self._run_hooks(callbacks, progress,
                                                       -(-len(data[0]) // batch_size)))
                    if dev is not None:
                        logs.update({"val_" + k: v
                                     for k, v in self._evaluate(*dev).items()})
                    self._check_finite(logs)
                except FloatingPointError as exc:
                    self._restore_finite_state(optimizer, saved)
                    raise FloatingPointError(
                        f"{exc}. The model is back to its state before that epoch, its "
                        "last finite weights") from None
                logs["lr"] = float(optimizer.lr)
                logs["epoch_time"] = time.perf_counter() - start
                # the epoch's line first: it closes the bar, and what the callbacks print
                # (or warn) then follows it, as in Keras
                progress.epoch_end(epoch, logs)
                for cb in callbacks:   # before append, so that what they add is recorded
                    cb.on_epoch_end(epoch, logs)
                history.append(logs, epoch)
                if self.stop_training:
                    history.stopped_epoch = epoch + 1
                    break
        finally:
            progress.close()
        for cb in callbacks:
            cb.on_train_end(logs)
        return history

    def _run_hooks(self, callbacks, progress, epoch_steps):
        """``_epoch``'s ``on_run(steps, running)`` for one epoch of ``epoch_steps``
        batches: count the steps, show the running loss (and accuracy) beside the
        progress bar and advance it, call the callbacks' batch-end hooks with those and
        "steps" (once per engine run: see fastdnn.callbacks), then, while batches
        remain, their batch-begin hooks with the next run's first batch (the engine
        calls back only after a run)."""
        done = 0

        def on_run(steps, running):
            nonlocal done
            self._advance(steps)
            done += steps
            progress.show_running(running)   # before the advance that may redraw
            progress.advance(steps)
            for cb in callbacks:
                cb.on_train_batch_end(done - 1, {**running, "steps": steps})
            if done < epoch_steps:
                for cb in callbacks:
                    cb.on_train_batch_begin(done, {})
        return on_run

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
            _diverged(logs["val_loss"], f"{self._epoch_name(self.epoch_)} on the "
                      "validation data")
        flat = self.parameters.flat
        # (device weights: the engine folds their check into the epoch's loss, read once)
        if isinstance(flat, np.ndarray) and not _all_finite(flat):
            _diverged(None, None, f"the last update of {self._epoch_name(self.epoch_)} "
                      "made weights that are not finite")

    def _epoch_name(self, epoch, step=None):
        """The model's epoch ``epoch`` (from 1) for an error message, counted as the
        progress lines count it, from 1 in each fit, and as the model counts it."""
        first = self._fit_first_epoch
        if not first:   # the model's first fit (or none): both counts agree
            return f"epoch {epoch}" + ("" if step is None else f", step {step}")
        return (f"epoch {epoch - first} of this fit (the model's epoch {epoch})"
                + ("" if step is None else f", step {step} of the model"))

    def _epoch(self, data, optimizer, batch_size, shuffle, on_run=None):
        """One pass over data = (X, Y, weights); returns the epoch's logs (loss,
        accuracy). ``on_run(steps, running)`` after each engine run, ``running`` the
        logs of the rows trained so far, the same figures as the epoch's logs once all
        are (empty where the engine gives no sums: cuda); default: count the steps."""
        X, Y, weights = data
        n = len(X)
        per = 1 if self.output == "softmax" else Y.shape[1]
        classify = self.output in ("softmax", "sigmoid")

        def logs_of(loss, correct, rows):   # the engine's sums -> loss, accuracy
            logs = {"loss": float(loss[0]) / rows}
            if classify:
                logs["accuracy"] = int(correct[0]) / (rows * per)
            return logs

        report = on_run or self._advance

        def on_engine_run(steps, sums):
            report(steps, logs_of(sums.loss, sums.correct, sums.rows)
                   if sums is not None and sums.rows else {})

        if self.schedule is not None and self.schedule.per == "epoch":
            optimizer.lr = self.schedule(self.epoch_, optimizer.initial_lr)
        order = self._shuffle_rng.permutation(n) if shuffle else np.arange(n)
        lr = self._step_lr(optimizer)
        result = self._engine.train((X, Y, order, weights), batch_size, optimizer, lr,
                                    self.step_, self.l2, on_run=on_engine_run,
                                    augment=getattr(self, "_augment", None))
        if result.steps:
            optimizer.lr = lr(result.steps - 1)
        if result.diverged is not None:
            _diverged(np.nan, self._epoch_name(self.epoch_ + 1, self.step_))
        self.epoch_ += 1
        logs = logs_of(result.loss, result.correct, n)
        if not np.isfinite(logs["loss"]):
            _diverged(logs["loss"], self._epoch_name(self.epoch_))
        return logs

    # ------------------------------------------------------------------ inference
    def _require_fitted(self):
        if self.step_ == 0 and not self._weights_given:
            raise NotFittedError(f"this {type(self).__name__} is not trained yet: call fit "
                                 "(or train_step, set_weights, fastdnn.load) before "
                                 "predicting")

    def _logits(self, X):
        """Output pre-activations (n, k) in inference mode."""
        if isinstance(X, CsrRows):   # dense blocks of rows
            return np.concatenate([self._logits(block) for _, block in X.blocks()])
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

    def decision_function(self, X: Inputs, *, batch_size: int | None = None,
                          verbose: int | str = "auto") -> NDArray[np.floating]:
        """Output pre-activations (logits) (n, k), inference mode.

        Parameters
        ----------
        X : (n, n_x) array or SciPy sparse matrix
        batch_size, verbose
            Accepted for Keras code, as in ``predict``: they change nothing.

        Returns
        -------
        (n, k) ndarray
            In the model's dtype.
        """
        _keras_inference_options(batch_size, verbose)
        return self._logits(self._inputs(X))

    def predict_proba(self, X: Inputs, *, batch_size: int | None = None,
                      verbose: int | str = "auto") -> NDArray[np.floating]:
        """Class probabilities (softmax or sigmoid outputs), (n, k).

        What Keras's ``predict`` returns for a classifier.

        Parameters
        ----------
        X : (n, n_x) array or SciPy sparse matrix
        batch_size, verbose
            Accepted for Keras code, as in ``predict``: they change nothing.

        Returns
        -------
        (n, k) ndarray
            Softmax rows summing to 1, or each sigmoid unit's probability of 1.

        Raises
        ------
        ValueError
            For a model with an identity or exp output.
        """
        _keras_inference_options(batch_size, verbose)
        if self.output not in ("softmax", "sigmoid"):
            raise ValueError("predict_proba needs a softmax or sigmoid output; use predict")
        Z = self._logits(self._inputs(X))
        return _softmax(Z) if self.output == "softmax" else _sigmoid(Z)

    def predict(self, X: Inputs, *, batch_size: int | None = None,
                verbose: int | str = "auto") -> NDArray[Any]:
        """Predictions of the output: class indices, 0/1 labels, values or means.

        Class indices (softmax), 0/1 labels (sigmoid), values (identity) or means
        exp(z) (exp). A single sigmoid, identity or exp output gives shape (n,). For a
        classifier these are labels, as scikit-learn's ``predict`` gives;
        ``predict_proba`` gives the probabilities Keras's ``predict`` returns.

        Parameters
        ----------
        X : (n, n_x) array or SciPy sparse matrix
        batch_size : int >= 1 or None
            Accepted for Keras code; it does not change the result (fastdnn predicts in
            blocks of rows of its own choosing).
        verbose : 0, 1, 2, True, False or "auto"
            Accepted for Keras code, as ``fit`` takes it; prints nothing and does not
            change the result.

        Returns
        -------
        ndarray
            int64 (n,) class indices or (n,) / (n, k) labels; (n,) or (n, k) values in
            the model's dtype.
        """
        _keras_inference_options(batch_size, verbose)
        Z = self._logits(self._inputs(X))
        if self.output == "softmax":
            return Z.argmax(axis=1)
        if self.output == "sigmoid":
            out = (Z > 0).astype(np.int64)
        else:
            out = np.exp(Z) if self.output == "exp" else Z
        return out[:, 0] if out.shape[1] == 1 else out

    def evaluate(self, X: Inputs, y: ArrayLike, *, batch_size: int | None = None,
                 verbose: int | str = "auto") -> dict[str, float]:
        """Loss (without the L2 term) and accuracy (classification) in inference mode.

        Parameters
        ----------
        X : (n, n_x) array or SciPy sparse matrix
        y : (n,) class indices, or (n, k) one-hot / targets
        batch_size, verbose
            Accepted for Keras code, as in ``predict``: they change nothing.

        Returns
        -------
        dict
            "loss" (the mean over rows) and, for a softmax or sigmoid output,
            "accuracy".
        """
        _keras_inference_options(batch_size, verbose)
        X = self._inputs(X)
        return self._evaluate(X, self._targets(y, len(X)))

    def _evaluate(self, X, Y):
        self._require_fitted()
        if isinstance(X, CsrRows):   # dense blocks of rows
            loss, right = 0.0, 0
            for start, block in X.blocks():
                _, block_loss, block_right = self._engine.infer(
                    block, Y[start:start + len(block)])
                loss, right = loss + block_loss, right + block_right
        else:
            _, loss, right = self._engine.infer(X, Y)
        out = {"loss": float(loss[0]) / len(X)}
        if self.output in ("softmax", "sigmoid"):
            out["accuracy"] = int(right[0]) / (len(X) * (1 if self.output == "softmax"
                                                          else Y.shape[1]))
        return out

    def score(self, X: Inputs, y: ArrayLike) -> float:
        """Accuracy (classification) or the negated loss (regression).

        Parameters
        ----------
        X : (n, n_x) array or SciPy sparse matrix
        y : (n,) class indices, or (n, k) one-hot / targets

        Returns
        -------
        float
            Greater is better: ``evaluate``'s accuracy, else minus its loss.
        """
        r = self.evaluate(X, y)
        return r.get("accuracy", -r["loss"])

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """The architecture and settings, JSON-serialisable, without weights.

        Returns
        -------
        dict
            "class": "Sequential", the layers' configs and the constructor's
            arguments; ``model_from_config`` rebuilds the (untrained) model.
        """
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

    def to_onnx(self, path: str | os.PathLike[str] | None = None, *,
                fold_batchnorm: bool = True, opset: int | None = None) -> onnx.ModelProto:
        """The model as an ONNX graph for serving, written to ``path`` if given.

        See fastdnn.export.to_onnx; needs ``pip install fastdnn[onnx]``.

        Parameters
        ----------
        path : str or os.PathLike, optional
            Where to write the graph too.
        fold_batchnorm : bool, default True
            Fold BatchNorm into the preceding Gemm; False writes BatchNormalization
            nodes.
        opset : int, optional
            The ONNX opset; default fastdnn.export.DEFAULT_OPSET.

        Returns
        -------
        onnx.ModelProto
            Outputs "predictions", "logits" and, for classification,
            "probabilities".

        Raises
        ------
        NotFittedError
            Before the model is trained or given weights.
        """
        from .export import to_onnx
        self._require_fitted()
        return to_onnx(self, path, fold_batchnorm=fold_batchnorm, opset=opset)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save everything to one .npz file (see fastdnn.io.save).

        Parameters
        ----------
        path : str or os.PathLike
            The file, written whole or not at all; ``fastdnn.load`` reads it back.
        """
        from .io import save
        save(self, path)

    def count_params(self) -> int:
        """The number of trainable parameters (Keras's name; also ``n_params``).

        BatchNorm's running statistics are not counted (they are not trained; Keras's
        ``count_params`` counts its moving mean and variance too), as in ``summary``.

        Returns
        -------
        int
            The size of the weights W, b, gamma and beta of all layers together.

        Raises
        ------
        RuntimeError
            When the model is not built yet (no input width).
        """
        self._require_built()
        return int(self.n_params)

    def summary(self, print_fn: Callable[[str], object] | None = None) -> None:
        """Print one line per block (its layers and parameter count).

        Under a line on the model: input width, output, dtype, L2 and the backend in use
        ("auto" resolved). Returns None, as Keras's does.

        Parameters
        ----------
        print_fn : callable(str), optional
            Called with each line instead of ``print``; ``summary(print_fn=lines.append)``
            collects the text.
        """
        self._require_built()
        print_fn = print if print_fn is None else print_fn
        used = self._backend.name
        backend = used if used == self.backend else f"{used} (from {self.backend!r})"
        rows = []
        for l, blk in enumerate(self.blocks, start=1):
            parts = [f"Dense({blk.n_in}->{blk.n_out}{'' if blk.bias else ', no bias'})"]
            if blk.bn is not None:
                parts.append("BatchNorm")
            parts.append(blk.activation if l < len(self.blocks) else self.output)
            if blk.keep_prob < 1:
                parts.append(f"Dropout(keep {blk.keep_prob:g})")
            count = block_size(blk.n_in, blk.n_out, blk.bias, blk.bn is not None)
            rows.append((f"{l}: " + " -> ".join(parts), f"{count:,}"))
        left = max(len(r[0]) for r in rows)
        right = max(len(f"{self.n_params:,}"), max(len(r[1]) for r in rows))
        print_fn(f"{type(self).__name__}: input {self.input_dim}, output {self.output}, "
                 f"{self.dtype}, l2 {self.l2:g}, backend {backend}")
        for text, count in rows:
            print_fn(f"  {text.ljust(left)}  {count.rjust(right)} parameters")
        print_fn(f"  {'total'.ljust(left)}  {f'{self.n_params:,}'.rjust(right)} parameters")

    def __repr__(self):
        options = _non_defaults(self, {"init": "he", "l2": 0.0, "backend": "auto",
                                       "batch_invariant": True})
        if self.dtype != np.float32:
            options.append(f"dtype='{self.dtype}'")
        return f"{type(self).__name__}({', '.join([repr(self.layers)] + options)})"


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

    def __init__(self, layer_sizes: Sequence[int], *, activation: str = "relu",
                 output: str = "softmax", init: str = "he", batchnorm: bool = False,
                 keep_prob: float | Sequence[float] = 1.0, l2: float = 0.0,
                 dtype: DTypeLike = "float32", backend: str = "auto",
                 seed: int | None = None, batch_invariant: bool = True) -> None:
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
        if np.ndim(keep_prob) == 0:   # checked even without a hidden layer to use it
            keeps = [check_keep_prob("keep_prob", keep_prob)] * n_hidden
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
                layers.append(Dropout(keep_prob=keep))
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

    def get_config(self) -> dict[str, Any]:
        """The architecture and settings, JSON-serialisable, without weights.

        Returns
        -------
        dict
            "class": "MLP" and the constructor's arguments; ``model_from_config``
            rebuilds the (untrained) model.
        """
        return {"class": "MLP", **self._kwargs, "dtype": str(self.dtype),
                "backend": self.backend, "seed": self.seed,
                "batch_invariant": self.batch_invariant}

    def __repr__(self):
        """The arguments that differ from their defaults, e.g. MLP([64, 256, 10],
        batchnorm=True, keep_prob=0.8, l2=0.0001)."""
        keeps = self._kwargs["keep_prob"]
        keep = keeps[0] if len(set(keeps)) == 1 else keeps or 1.0   # one value once
        options = _non_defaults(self._kwargs | {"keep_prob": keep}, {
            "activation": "relu", "output": "softmax", "init": "he", "batchnorm": False,
            "keep_prob": 1.0, "l2": 0.0})
        options += _non_defaults(self, {"backend": "auto", "batch_invariant": True})
        if self.dtype != np.float32:
            options.append(f"dtype='{self.dtype}'")
        return f"MLP({', '.join([str(self._kwargs['layer_sizes'])] + options)})"


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


def _non_defaults(source, defaults):
    """["name=value", ...] for the ``defaults`` whose value in ``source`` (a dict or an
    object's attributes) differs."""
    get = source.get if isinstance(source, dict) else lambda k: getattr(source, k)
    return [f"{k}={get(k)!r}" for k, default in defaults.items()
            if get(k) is not None and get(k) != default]


def _verbosity(verbose):
    """fit's ``verbose`` as 0, 1 or 2: False is 0, True and "auto" are 1 (as in Keras)."""
    if isinstance(verbose, str):
        if verbose != "auto":
            raise ValueError(f"verbose must be 0, 1, 2, True, False or 'auto', got "
                             f"{verbose!r}")
        return 1
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    return check_int("verbose", verbose, 0, 2)


def _keras_inference_options(batch_size, verbose):
    """Check predict's and evaluate's ``batch_size`` (None or an integer >= 1) and
    ``verbose`` (as fit's), which they take for Keras code and otherwise ignore."""
    if batch_size is not None:
        try:
            check_int("batch_size", batch_size, 1)
        except (TypeError, ValueError) as err:
            raise type(err)(f"batch_size must be None or an integer >= 1, got "
                            f"{batch_size!r}") from None
    _verbosity(verbose)


def _callback_sequence(callbacks):
    """fit's ``callbacks`` as a new list: None gives none, one Callback a list of it
    (Keras 3 takes one too)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    if isinstance(callbacks, (str, bytes, Mapping)) or not isinstance(callbacks, Iterable):
        raise TypeError(f"callbacks must be a list of fastdnn.Callback objects (or one "
                        f"Callback), got {callbacks!r}")
    return list(callbacks)


def _real_array(name, x, hint=""):
    """``x`` as an array of real numbers (bool, integer or float), or a clear error
    (``hint`` appended to the one on its dtype)."""
    if hasattr(x, "tocsr") or hasattr(x, "todense"):   # SciPy sparse
        raise TypeError(f"{name} is a sparse matrix; pass a dense array (e.g. "
                        f"{name}.toarray())")
    try:
        x = np.asarray(x)
    except ValueError as err:   # a ragged nested list
        raise ValueError(f"{name} must be a rectangular array of numbers: {err}") from None
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers (bool, int or float), got dtype "
                        f"{x.dtype}{hint}")
    return x


def model_from_config(config: Mapping[str, Any]) -> Sequential:
    """Rebuild an (untrained) model from ``get_config()``'s dict.

    Parameters
    ----------
    config : mapping
        What ``Sequential.get_config()`` or ``MLP.get_config()`` returned.

    Returns
    -------
    Sequential
        An MLP or a Sequential, as "class" says, with fresh weights.

    Raises
    ------
    ValueError
        For an unknown "class".
    """
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
